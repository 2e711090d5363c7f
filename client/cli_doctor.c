/* pipehub doctor: a diagnosis of one pipe name, one line per check:
 *   OK    the check passed
 *   INFO  something to know that is not a finding (a value, or a check
 *         that cannot be made from a client)
 *   WARN  a finding: something is looser or odder than it should be
 *   FAIL  a finding: something is broken, or the name is not served by the
 *         hub it claims to be
 * Exit status: 0 no finding, 1 any WARN or FAIL (also: the pipe refuses
 * this account), 3 nothing serves the name (or every instance stayed busy),
 * 2 bad usage. Checks that need the hub (sys.hello, sys.ping, sys.stats,
 * sys.process) run on a connection of the client library; those that need
 * the pipe handle (server pid, executable, account, pipe type, descriptor)
 * on a second, raw connection. A name served by something that does not
 * answer sys.hello is a FAIL, and the process checks still say what it is.
 *
 * How doctor reads the pipe's access rules. It opens the pipe as a client
 * and calls GetSecurityInfo on that handle: the live descriptor NPFS checks,
 * not the config's text. It shows the owner and DACL as SDDL and hands that
 * text to client/sddl_judge.c, which says what each entry lets whom do and
 * which are findings (the rules are in sddl_judge.h). What needs Win32 stays
 * here: the serving process's account the judgement compares with, the
 * names of SIDs (LookupAccountSidW) and of the machine's SID aliases, and
 * the integrity label. */
#include <windows.h>

#include <aclapi.h>
#include <sddl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sddl_judge.h"
#include "wintext.h"

#define NAME_MAX_UTF8 512u

/* UTF-16 -> UTF-8, cut to fit; "?" when it cannot be converted. */
/* The system's text for a Win32 error, one line, no final period. */
static void win_msg(DWORD code, char *out, size_t cap)
{
    size_t n = strlen(ph_wintext_syserr(code, out, cap));

    while (n > 0 && out[n - 1] == '.')
        out[--n] = '\0';
}

typedef struct doctor {
    const cli *o;
    int findings;            /* WARN and FAIL lines */
    /* From the pipe handle. */
    DWORD server_pid;        /* 0: unknown */
    char server_sid[256];    /* the serving process's account, "" unknown */
} doctor;

/* The judgement's statuses, and FAIL, which only doctor's own checks say. */
enum { ST_OK = PH_SDDL_OK, ST_INFO = PH_SDDL_INFO, ST_WARN = PH_SDDL_WARN,
       ST_FAIL };

/* One line of the diagnosis: "STATUS CHECK TEXT". */
static void say(doctor *d, int st, const char *check, const char *fmt, ...)
{
    static const char *const names[] = {"OK", "INFO", "WARN", "FAIL"};
    va_list ap;

    if (st >= ST_WARN)
        d->findings++;
    printf("%-4s  %-10s  ", names[st], check);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* Names of well-known SIDs that LookupAccountSidW may not know (Wine). */
static const char *well_known_name(const char *sid)
{
    static const struct {
        const char *sid, *name;
    } names[] = {
        {"S-1-3-4", "OWNER RIGHTS"},
        {"S-1-15-2-1", "APPLICATION PACKAGE AUTHORITY\\ALL APPLICATION "
                       "PACKAGES"},
        {"S-1-15-2-2", "APPLICATION PACKAGE AUTHORITY\\ALL RESTRICTED "
                       "APPLICATION PACKAGES"},
    };
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(sid, names[i].sid) == 0)
            return names[i].name;
    return NULL;
}

/* "DOMAIN\name (S-...)" or the SID alone; the SID string also in sid_out. */
static void sid_text(PSID sid, char *out, size_t cap, char *sid_out,
                     size_t sid_cap)
{
    WCHAR name[256], domain[256];
    DWORD nn = 256, dn = 256;
    SID_NAME_USE use;
    char *s = NULL, n8[NAME_MAX_UTF8], d8[NAME_MAX_UTF8];
    char sidstr[256];

    if (ConvertSidToStringSidA(sid, &s)) {
        snprintf(sidstr, sizeof sidstr, "%s", s);
        LocalFree(s);
    } else {
        snprintf(sidstr, sizeof sidstr, "(unreadable SID)");
    }
    if (sid_out != NULL)
        snprintf(sid_out, sid_cap, "%s", sidstr);
    if (LookupAccountSidW(NULL, sid, name, &nn, domain, &dn, &use) &&
        name[0] != L'\0') {
        ph_wintext_utf8(name, n8, sizeof n8);
        ph_wintext_utf8(domain, d8, sizeof d8);
        if (d8[0] != '\0')
            snprintf(out, cap, "%s\\%s (%s)", d8, n8, sidstr);
        else
            snprintf(out, cap, "%s (%s)", n8, sidstr);
    } else if (well_known_name(sidstr) != NULL) {
        snprintf(out, cap, "%s (%s)", well_known_name(sidstr), sidstr);
    } else {
        snprintf(out, cap, "%s", sidstr);
    }
}

/* The process's account: its token's user. 0 or a Win32 error. */
static DWORD process_account(HANDLE proc, char *text, size_t cap,
                             char *sid_out, size_t sid_cap)
{
    HANDLE tok;
    BYTE buf[512];
    DWORD n;

    if (!OpenProcessToken(proc, TOKEN_QUERY, &tok))
        return GetLastError();
    if (!GetTokenInformation(tok, TokenUser, buf, sizeof buf, &n)) {
        n = GetLastError();
        CloseHandle(tok);
        return n;
    }
    CloseHandle(tok);
    sid_text(((TOKEN_USER *)buf)->User.Sid, text, cap, sid_out, sid_cap);
    return 0;
}

/* Which process serves the connection h: pid, executable, account. */
static void check_server_process(doctor *d, HANDLE h)
{
    WCHAR wpath[MAX_PATH * 4];
    char path[MAX_PATH * 4 * 3], msg[256], acct[NAME_MAX_UTF8 * 2 + 300];
    const char *base, *p;
    DWORD n = sizeof wpath / sizeof wpath[0], e;
    ULONG pid = 0;
    HANDLE proc;

    if (!GetNamedPipeServerProcessId(h, &pid)) {
        e = GetLastError();
        win_msg(e, msg, sizeof msg);
        say(d, ST_WARN, "server pid",
            "GetNamedPipeServerProcessId failed: error %lu: %s",
            (unsigned long)e, msg);
        return;
    }
    d->server_pid = pid;
    proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (proc == NULL) {
        e = GetLastError();
        win_msg(e, msg, sizeof msg);
        say(d, ST_INFO, "server pid", "%lu serves the pipe", (unsigned long)pid);
        say(d, ST_INFO, "executable",
            "unknown: OpenProcess(%lu) failed: error %lu: %s (an "
            "administrator sees more)",
            (unsigned long)pid, (unsigned long)e, msg);
        return;
    }
    say(d, ST_OK, "server pid",
        "%lu serves the pipe (GetNamedPipeServerProcessId)",
        (unsigned long)pid);
    if (QueryFullProcessImageNameW(proc, 0, wpath, &n)) {
        ph_wintext_utf8(wpath, path, sizeof path);
        base = path;
        for (p = path; *p != '\0'; p++)
            if (*p == '\\' || *p == '/')
                base = p + 1;
        if (_stricmp(base, "pipehubd.exe") == 0)
            say(d, ST_OK, "executable", "%s", path);
        else
            say(d, ST_WARN, "executable",
                "%s: not pipehubd.exe (another program serves this name?)",
                path);
    } else {
        e = GetLastError();
        win_msg(e, msg, sizeof msg);
        say(d, ST_INFO, "executable",
            "unknown: QueryFullProcessImageNameW failed: error %lu: %s",
            (unsigned long)e, msg);
    }
    e = process_account(proc, acct, sizeof acct, d->server_sid,
                        sizeof d->server_sid);
    if (e == 0) {
        say(d, ST_OK, "account", "the server runs as %s", acct);
    } else {
        d->server_sid[0] = '\0';
        win_msg(e, msg, sizeof msg);
        say(d, ST_INFO, "account",
            "unknown: OpenProcessToken failed: error %lu: %s (an "
            "administrator sees more)",
            (unsigned long)e, msg);
    }
    CloseHandle(proc);
}

/* The pipe's type and instances, as a client sees them. */
static void check_pipe_info(doctor *d, HANDLE h)
{
    DWORD flags = 0, out_size = 0, in_size = 0, max_inst = 0, cur = 0, e;
    char msg[256], now[64];

    if (!GetNamedPipeInfo(h, &flags, &out_size, &in_size, &max_inst)) {
        e = GetLastError();
        win_msg(e, msg, sizeof msg);
        say(d, ST_INFO, "pipe", "GetNamedPipeInfo failed: error %lu: %s",
            (unsigned long)e, msg);
        return;
    }
    if (GetNamedPipeHandleStateA(h, NULL, &cur, NULL, NULL, NULL, 0))
        snprintf(now, sizeof now, "%lu instances now", (unsigned long)cur);
    else
        snprintf(now, sizeof now, "instances now unknown (error %lu)",
                 (unsigned long)GetLastError());
    if (flags & PIPE_TYPE_MESSAGE)
        say(d, ST_WARN, "pipe",
            "message-type pipe: pipehubd serves byte-mode pipes (another "
            "program serves this name?); %s", now);
    else if (max_inst == PIPE_UNLIMITED_INSTANCES || max_inst == 0xffffffffu)
        say(d, ST_OK, "pipe",
            "byte mode, %s, no instance limit, buffers %lu in / %lu out",
            now, (unsigned long)in_size, (unsigned long)out_size);
    else
        say(d, ST_OK, "pipe",
            "byte mode, %s, at most %lu, buffers %lu in / %lu out", now,
            (unsigned long)max_inst, (unsigned long)in_size,
            (unsigned long)out_size);
}

/* ---- remote clients: a network open of the pipe through the loopback ---- */

typedef struct remote_probe {
    char path[PH_PIPE_PATH_MAX + 32];
    volatile LONG done;
    DWORD err; /* 0: opened */
} remote_probe;

static DWORD WINAPI remote_probe_run(void *arg)
{
    remote_probe *p = arg;
    HANDLE h = CreateFileA(p->path, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                           OPEN_EXISTING,
                           SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                           NULL);

    p->err = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    InterlockedExchange(&p->done, 1);
    return 0;
}

/* A server's pipe flags are not visible to a client, so this tries what a
 * remote client would do: open \\127.0.0.1\pipe\NAME, which goes through
 * the SMB server, and the pipe server sees that client as remote (so
 * PIPE_REJECT_REMOTE_CLIENTS refuses it). The open runs on its own thread
 * for at most the --timeout: a slow redirector must not hang the doctor. */
static void check_remote(doctor *d)
{
    static const char unknown[] =
        "unknown from a client; see [security] allow_remote in the config";
    const char *name = d->o->path + PH_PIPE_PREFIX_LEN;
    remote_probe *p;
    HANDLE t;
    char msg[256];

    /* Left to the thread if it does not finish in time: never freed. */
    if ((p = calloc(1, sizeof *p)) == NULL) {
        say(d, ST_INFO, "remote", "%s", unknown);
        return;
    }
    snprintf(p->path, sizeof p->path, "\\\\127.0.0.1\\pipe\\%s", name);
    t = CreateThread(NULL, 0, remote_probe_run, p, 0, NULL);
    if (t == NULL) {
        say(d, ST_INFO, "remote", "%s", unknown);
        free(p);
        return;
    }
    if (WaitForSingleObject(t, d->o->timeout_ms) != WAIT_OBJECT_0 ||
        !p->done) {
        CloseHandle(t);
        say(d, ST_INFO, "remote",
            "%s (a network open of %s got no answer in %u ms)", unknown,
            p->path, (unsigned)d->o->timeout_ms);
        return;
    }
    CloseHandle(t);
    if (p->err == 0) {
        say(d, ST_WARN, "remote",
            "a network open of %s (a remote client to the server) was "
            "accepted: remote clients are not rejected (allow_remote = "
            "true?)", p->path);
    } else if (p->err == ERROR_ACCESS_DENIED) {
        say(d, ST_OK, "remote",
            "a network open of %s (a remote client to the server) was "
            "refused (error 5): remote clients are rejected", p->path);
    } else {
        win_msg(p->err, msg, sizeof msg);
        say(d, ST_INFO, "remote",
            "%s (a network open of %s failed: error %lu: %s)", unknown,
            p->path, (unsigned long)p->err, msg);
    }
    free(p);
}

/* The integrity label: who below it may write (connect). */
static void check_label(doctor *d, HANDLE h)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL sacl = NULL;
    DWORD e, i, rid;
    void *p;
    int found = 0;

    e = GetSecurityInfo(h, SE_KERNEL_OBJECT, LABEL_SECURITY_INFORMATION, NULL,
                        NULL, NULL, &sacl, &sd);
    if (e != ERROR_SUCCESS) {
        say(d, ST_INFO, "label",
            "unknown: GetSecurityInfo(LABEL) failed: error %lu",
            (unsigned long)e);
        return;
    }
    for (i = 0; sacl != NULL && i < sacl->AceCount; i++) {
        SYSTEM_MANDATORY_LABEL_ACE *ace;
        PSID s;
        if (!GetAce(sacl, i, &p))
            continue;
        ace = p;
        if (ace->Header.AceType != SYSTEM_MANDATORY_LABEL_ACE_TYPE)
            continue;
        found = 1;
        s = (PSID)&ace->SidStart;
        rid = *GetSidSubAuthority(s, *GetSidSubAuthorityCount(s) - 1);
        if (rid <= SECURITY_MANDATORY_LOW_RID)
            say(d, ST_WARN, "label",
                "integrity 0x%lx (low or below): sandboxed low-integrity "
                "processes may connect", (unsigned long)rid);
        else if (!(ace->Mask & SYSTEM_MANDATORY_LABEL_NO_WRITE_UP))
            say(d, ST_WARN, "label",
                "integrity 0x%lx without no-write-up: lower-integrity "
                "processes may write to it", (unsigned long)rid);
        else
            say(d, ST_OK, "label",
                "integrity 0x%lx, no-write-up: processes below it may not "
                "connect", (unsigned long)rid);
    }
    if (!found)
        say(d, ST_OK, "label",
            "none (medium, no-write-up by default: low-integrity processes "
            "may not connect)");
    LocalFree(sd);
}

/* The judgement's names for a SID in S-1-... form: as sid_text gives them
 * for the process's account. */
static void judge_describe(void *ctx, const char *sid, char *out, size_t cap)
{
    PSID p = NULL;

    if (ConvertStringSidToSidA(sid, &p)) {
        sid_text(p, out, cap, NULL, 0);
        LocalFree(p);
    } else if (well_known_name(sid) != NULL) {
        snprintf(out, cap, "%s (%s)", well_known_name(sid), sid);
    } else {
        snprintf(out, cap, "%s", sid);
    }
}

/* SDDL writes the SIDs of this machine's or domain's accounts and groups
 * as aliases (LA, DU, ...) that only Windows can expand. */
static int judge_resolve(void *ctx, const char *alias, char *out, size_t cap)
{
    PSID p = NULL;
    char *s = NULL;
    int ok = 0;

    if (!ConvertStringSidToSidA(alias, &p))
        return 0;
    if (ConvertSidToStringSidA(p, &s)) {
        snprintf(out, cap, "%s", s);
        LocalFree(s);
        ok = 1;
    }
    LocalFree(p);
    return ok;
}

static void judge_say(void *ctx, ph_sddl_status st, const char *check,
                      const char *text)
{
    say(ctx, (int)st, check, "%s", text);
}

/* The live descriptor of the pipe, read through the client handle, shown
 * as SDDL and judged. */
static void check_security(doctor *d, HANDLE h)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    ph_sddl_env env;
    DWORD e;
    char msg[256], *sddl = NULL;

    e = GetSecurityInfo(h, SE_KERNEL_OBJECT,
                        OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                        NULL, NULL, NULL, NULL, &sd);
    if (e != ERROR_SUCCESS) {
        win_msg(e, msg, sizeof msg);
        say(d, ST_WARN, "dacl",
            "cannot read the pipe's security descriptor: GetSecurityInfo "
            "failed: error %lu: %s", (unsigned long)e, msg);
        return;
    }
    if (ConvertSecurityDescriptorToStringSecurityDescriptorA(
            sd, SDDL_REVISION_1,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &sddl,
            NULL)) {
        say(d, ST_INFO, "sddl", "%s", sddl[0] != '\0' ? sddl : "(empty)");
        memset(&env, 0, sizeof env);
        env.server_sid = d->server_sid;
        env.describe = judge_describe;
        env.resolve = judge_resolve;
        env.say = judge_say;
        env.ctx = d;
        ph_sddl_judge(sddl, &env);
        LocalFree(sddl);
    } else {
        e = GetLastError();
        say(d, ST_INFO, "sddl", "not shown: error %lu", (unsigned long)e);
        win_msg(e, msg, sizeof msg);
        say(d, ST_WARN, "dacl",
            "cannot judge the pipe's access rules: the descriptor could not "
            "be converted to SDDL: error %lu: %s", (unsigned long)e, msg);
    }
    LocalFree(sd);
    check_label(d, h);
}

/* Open the pipe's client end as the library does, waiting while every
 * instance is busy, until timeout_ms. ERROR_SUCCESS or the last error. */
static DWORD open_pipe(const char *path, uint32_t timeout_ms, HANDLE *out)
{
    ULONGLONG deadline = GetTickCount64() + timeout_ms, now;
    DWORD e;
    HANDLE h;

    for (;;) {
        h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                        OPEN_EXISTING,
                        SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
        if (h != INVALID_HANDLE_VALUE) {
            *out = h;
            return ERROR_SUCCESS;
        }
        e = GetLastError();
        now = GetTickCount64();
        if (e != ERROR_PIPE_BUSY || now >= deadline)
            return e;
        if (!WaitNamedPipeA(path, (DWORD)(deadline - now)))
            Sleep(10);
    }
}

/* ---- what the hub says about itself ------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* A call whose REPLY is wanted: the reply, or a line saying why not (as
 * st) and 0. */
static int hub_call(doctor *d, ph_client *c, const char *route,
                    const char *check, int st, ph_reply *r)
{
    ph_err err = ph_client_call(c, route, NULL, 0, d->o->timeout_ms, r);
    const char *name;

    if (err != PH_OK) {
        if (err == PH_ETIMEDOUT)
            say(d, st, check, "%s: no answer within %u ms%s", route,
                (unsigned)d->o->timeout_ms,
                st == ST_FAIL ? " (not a pipehub server?)" : "");
        else
            say(d, st, check, "%s failed: %s", route, ph_strerror(err));
        return 0;
    }
    if (r->kind == PH_ERROR) {
        name = ph_err_name((ph_err)r->status);
        say(d, st, check, "%s answered ERROR %s: %s%s", route,
            name != NULL ? name : "?", (const char *)r->payload,
            st == ST_FAIL ? " (not a pipehub server?)" : "");
        ph_reply_free(r);
        return 0;
    }
    return 1;
}

static void check_hello(doctor *d, ph_client *c, int *ok)
{
    char server[64], version[64], proto[32], maxf[32], conn[32];
    const char *j;
    ph_reply r;
    size_t n;

    *ok = 0;
    if (!hub_call(d, c, "sys.hello", "server", ST_FAIL, &r))
        return;
    j = (const char *)r.payload;
    n = r.payload_len;
    if (ph_cli_json_get(j, n, "server", server, sizeof server) != 1 ||
        ph_cli_json_get(j, n, "version", version, sizeof version) != 1 ||
        ph_cli_json_get(j, n, "protocol", proto, sizeof proto) != 1 ||
        ph_cli_json_get(j, n, "max_frame", maxf, sizeof maxf) != 1) {
        say(d, ST_FAIL, "server",
            "sys.hello answered something that is not pipehubd's: %.200s", j);
    } else if (strcmp(server, "pipehubd") != 0) {
        say(d, ST_FAIL, "server",
            "answers as '%s' %s, not pipehubd", server, version);
    } else {
        if (ph_cli_json_get(j, n, "conn_id", conn, sizeof conn) != 1)
            snprintf(conn, sizeof conn, "?");
        say(d, strcmp(proto, "1") == 0 ? ST_OK : ST_WARN, "server",
            "pipehubd %s answers, protocol %s%s, max frame %s bytes "
            "(this is conn %s)", version, proto,
            strcmp(proto, "1") == 0 ? "" : " (this client speaks 1)", maxf,
            conn);
        *ok = 1;
    }
    ph_reply_free(&r);
}

#define PINGS 3
#define PING_SLOW_US 500000u

static void check_ping(doctor *d, ph_client *c)
{
    LARGE_INTEGER f, t0, t1;
    uint64_t us[PINGS];
    ph_reply r;
    int i;

    QueryPerformanceFrequency(&f);
    for (i = 0; i < PINGS; i++) {
        QueryPerformanceCounter(&t0);
        if (!hub_call(d, c, "sys.ping", "round trip", ST_FAIL, &r))
            return;
        QueryPerformanceCounter(&t1);
        ph_reply_free(&r);
        us[i] = (uint64_t)(t1.QuadPart - t0.QuadPart) * 1000000u /
                (uint64_t)f.QuadPart;
    }
    qsort(us, PINGS, sizeof us[0], cmp_u64);
    say(d, us[0] > PING_SLOW_US ? ST_WARN : ST_OK, "round trip",
        "sys.ping %llu us (best of %d; median %llu, worst %llu)%s",
        (unsigned long long)us[0], PINGS, (unsigned long long)us[PINGS / 2],
        (unsigned long long)us[PINGS - 1],
        us[0] > PING_SLOW_US ? ": slow, the hub or the machine is "
                               "overloaded" : "");
}

/* The hub's load and configuration, and the limits that fired. */
static void check_stats(doctor *d, ph_client *c)
{
    static const char *const limits[] = {
        "limit_max_connections", "limit_max_connections_per_user",
        "limit_first_frame_timeout", "limit_frame_timeout",
        "limit_send_stall", "limit_max_queued_bytes", "limit_max_inflight",
        "limit_provider_queue", "limit_max_routes",
        "limit_max_subscriptions", "access_denied", "slow_disconnects",
    };
    char cur[32], total[32], pend[32], up[32], gen[32], loaded[32], v[32],
        upt[32], when[64], fired[512];
    size_t k, n, used = 0;
    const char *j;
    ph_reply r;

    if (!hub_call(d, c, "sys.stats", "load", ST_WARN, &r))
        return;
    j = (const char *)r.payload;
    n = r.payload_len;
    if (ph_cli_json_get(j, n, "connections_current", cur, sizeof cur) != 1)
        snprintf(cur, sizeof cur, "?");
    if (ph_cli_json_get(j, n, "connections_total", total, sizeof total) != 1)
        snprintf(total, sizeof total, "?");
    if (ph_cli_json_get(j, n, "pending_instances", pend, sizeof pend) != 1)
        snprintf(pend, sizeof pend, "?");
    if (ph_cli_json_get(j, n, "uptime_ms", up, sizeof up) == 1)
        ph_cli_age(ph_cli_to_u64(up), upt, sizeof upt);
    else
        snprintf(upt, sizeof upt, "?");
    if (ph_cli_json_get(j, n, "config_generation", gen, sizeof gen) != 1)
        snprintf(gen, sizeof gen, "?");
    if (ph_cli_json_get(j, n, "config_loaded_ms", loaded, sizeof loaded) ==
            1 &&
        ph_cli_to_u64(loaded) != 0)
        ph_cli_local_time(ph_cli_to_u64(loaded), when, sizeof when);
    else
        snprintf(when, sizeof when, "?");
    say(d, ST_OK, "load",
        "%s clients now, %s since start, %s instances listening, up %s; "
        "configuration generation %s, loaded %s",
        cur, total, pend, upt, gen, when);

    fired[0] = '\0';
    for (k = 0; k < sizeof limits / sizeof limits[0]; k++)
        if (ph_cli_json_get(j, n, limits[k], v, sizeof v) == 1 &&
            ph_cli_to_u64(v) != 0 && used < sizeof fired)
            used += (size_t)snprintf(fired + used, sizeof fired - used,
                                     "%s%s %s", used ? ", " : "", limits[k],
                                     v);
    say(d, ST_INFO, "limits", "fired since start: %s",
        used ? fired : "none");
    ph_reply_free(&r);
}

/* sys.config: the limits this server holds its clients to. */
static void check_config(doctor *d, ph_client *c)
{
    static const char *const keys[] = {
        "server.max_connections", "limits.max_connections_per_user",
        "limits.send_queue_bytes", "limits.max_queued_bytes",
        "limits.first_frame_timeout_ms", "limits.frame_timeout_ms",
        "limits.send_stall_timeout_ms", "limits.idle_timeout_ms",
        "limits.request_timeout_ms", "limits.max_inflight_per_client",
        "limits.max_routes_per_client", "limits.max_subscriptions_per_client",
    };
    char v[64], line[1024], remote[16];
    size_t k, n, used = 0;
    const char *j;
    ph_reply r;

    if (!hub_call(d, c, "sys.config", "settings", ST_INFO, &r))
        return;
    j = (const char *)r.payload;
    n = r.payload_len;
    line[0] = '\0';
    for (k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (ph_cli_json_get(j, n, keys[k], v, sizeof v) == 1 &&
            used < sizeof line)
            used += (size_t)snprintf(line + used, sizeof line - used,
                                     "%s%s %s", used ? ", " : "",
                                     strchr(keys[k], '.') + 1, v);
    say(d, ST_INFO, "settings", "%s", used ? line : "(none reported)");
    if (ph_cli_json_get(j, n, "security.allow_remote", remote,
                        sizeof remote) == 1)
        say(d, strcmp(remote, "true") == 0 ? ST_WARN : ST_OK, "allow_remote",
            "the server says allow_remote = %s%s", remote,
            strcmp(remote, "true") == 0
                ? ": clients from other machines are accepted"
                : ": remote clients are rejected (PIPE_REJECT_REMOTE_CLIENTS)");
    ph_reply_free(&r);
}

/* sys.process: the hub's own pid, against the pipe's serving process. */
static void check_process(doctor *d, ph_client *c)
{
    char pid[32], handles[32], priv[32], mem[32];
    const char *j;
    ph_reply r;
    size_t n;

    if (!hub_call(d, c, "sys.process", "hub pid", ST_INFO, &r))
        return;
    j = (const char *)r.payload;
    n = r.payload_len;
    if (ph_cli_json_get(j, n, "pid", pid, sizeof pid) != 1) {
        say(d, ST_WARN, "hub pid", "sys.process has no pid: %.200s", j);
        ph_reply_free(&r);
        return;
    }
    if (ph_cli_json_get(j, n, "handles", handles, sizeof handles) != 1)
        snprintf(handles, sizeof handles, "?");
    if (ph_cli_json_get(j, n, "private_bytes", priv, sizeof priv) == 1)
        ph_cli_bytes_short(ph_cli_to_u64(priv), mem, sizeof mem);
    else
        snprintf(mem, sizeof mem, "?");
    if (d->server_pid == 0)
        say(d, ST_INFO, "hub pid",
            "%s by sys.process (the pipe's serving pid is unknown: not "
            "compared); %s handles, %s private bytes", pid, handles, mem);
    else if (ph_cli_to_u64(pid) == d->server_pid)
        say(d, ST_OK, "hub pid",
            "%s by sys.process, the same process; %s handles, %s private "
            "bytes", pid, handles, mem);
    else
        say(d, ST_FAIL, "hub pid",
            "%s by sys.process, but pid %lu serves the pipe: another "
            "process serves instances of this name (pipe squatting?)",
            pid, (unsigned long)d->server_pid);
    ph_reply_free(&r);
}

int ph_cli_doctor(const cli *o, int argc, char **argv)
{
    cli local = *o;
    doctor d;
    HANDLE h = INVALID_HANDLE_VALUE;
    ph_client *c = NULL;
    const char *pipe = NULL;
    char msg[256];
    DWORD e;
    ph_err err;
    int a, hello_ok = 0;

    for (a = 0; a < argc; a++) {
        if (strcmp(argv[a], "--pipe") == 0 && a + 1 < argc)
            pipe = argv[++a];
        else if (strncmp(argv[a], "--pipe=", 7) == 0)
            pipe = argv[a] + 7;
        else if (strcmp(argv[a], "--pipe") == 0)
            return ph_cli_usage_error("%s needs a value", argv[a]);
        else
            return ph_cli_usage_error("doctor takes only --pipe NAME, not "
                                      "'%s'", argv[a]);
    }
    if (pipe != NULL &&
        ph_pipe_path(pipe, local.path, sizeof local.path) != PH_OK)
        return ph_cli_usage_error("'%s' is not a local pipe name (a bare "
                                  "name or \\\\.\\pipe\\NAME)", pipe);
    memset(&d, 0, sizeof d);
    d.o = &local;

    printf("doctor: %s\n", local.path);
    /* The raw handle first: it tells "nothing serves the name" from "it
     * serves but does not speak the protocol", and it is what the Win32
     * queries need (the library keeps its own handle to itself). */
    e = open_pipe(local.path, local.timeout_ms, &h);
    if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) {
        say(&d, ST_FAIL, "server", "nothing serves %s (is pipehubd running?)",
            local.path);
        return EXIT_NO_ANSWER;
    }
    if (e == ERROR_PIPE_BUSY) {
        say(&d, ST_FAIL, "server", "every instance of %s stayed busy for %u "
            "ms", local.path, (unsigned)local.timeout_ms);
        return EXIT_NO_ANSWER;
    }
    if (e != ERROR_SUCCESS) {
        win_msg(e, msg, sizeof msg);
        say(&d, ST_FAIL, "server", "cannot open %s: error %lu: %s%s",
            local.path, (unsigned long)e, msg,
            e == ERROR_ACCESS_DENIED ? " (the pipe's DACL does not let this "
                                       "account in)" : "");
        printf("doctor: %d finding%s\n", d.findings,
               d.findings == 1 ? "" : "s");
        return e == ERROR_ACCESS_DENIED ? EXIT_ERROR_REPLY : EXIT_NO_ANSWER;
    }

    /* What the hub says about itself, on a connection of the library. */
    err = ph_client_connect(local.path, local.timeout_ms, &c);
    if (err != PH_OK) {
        say(&d, ST_FAIL, "server", "the library cannot connect: %s",
            ph_strerror(err));
    } else {
        check_hello(&d, c, &hello_ok);
        if (hello_ok)
            check_ping(&d, c);
    }

    check_server_process(&d, h);
    if (hello_ok)
        check_process(&d, c);
    check_pipe_info(&d, h);
    check_remote(&d);
    check_security(&d, h);
    if (hello_ok) {
        check_config(&d, c);
        check_stats(&d, c);
    }
    CloseHandle(h);
    ph_client_close(c);

    if (d.findings == 0)
        printf("doctor: no findings\n");
    else
        printf("doctor: %d finding%s (WARN or FAIL above)\n", d.findings,
               d.findings == 1 ? "" : "s");
    if (fflush(stdout) != 0)
        return EXIT_NO_ANSWER;
    return d.findings ? EXIT_ERROR_REPLY : EXIT_OK;
}
