/* pipehub clients and doctor: what an administrator asks about a hub.
 *
 * clients: sys.clients as a table (or its JSON as it is).
 *
 * doctor: a diagnosis of one pipe name, one line per check:
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
 * not the config's text. Rights are mapped with the file generic mapping
 * (what NPFS uses). Per ACE it says who (LookupAccountSidW, or the SID) and
 * what: "may connect" needs FILE_READ_DATA / FILE_WRITE_DATA; "may create
 * instances" is FILE_CREATE_PIPE_INSTANCE (the same bit as FILE_APPEND_DATA,
 * so GENERIC_WRITE and GENERIC_ALL grant it); WRITE_DAC and WRITE_OWNER are
 * counted with it, as they let the holder grant it to itself. Who may
 * create instances may serve clients in the hub's place (pipe squatting),
 * so that is a WARN for anyone but:
 *   - the serving process's own account (it is the server),
 *   - SYSTEM and Administrators (they can take any object anyway: owning
 *     every object and debugging every process is already theirs), and
 *   - OWNER RIGHTS (S-1-3-4) when the owner is one of those.
 * When the server's account cannot be read (OpenProcess refused: a
 * non-administrator looking at a service), an ACE that only that account
 * would explain is INFO, not WARN. The owner is judged by the same rule:
 * an owner may always rewrite the DACL.
 * Everyone, Anonymous, Network, Guests and ALL APPLICATION PACKAGES with any
 * access are a WARN too: the hub's audience is local, authenticated, not
 * sandboxed users. A deny ACE earlier in the list for the same SID, or for
 * Everyone, takes its bits off a later allow before these rules apply.
 * Inherit-only ACEs do not apply to the pipe and are listed as such. */
#include <windows.h>

#include <aclapi.h>
#include <sddl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- small helpers ------------------------------------------------------- */

#define CELL_MAX 128u
#define EXE_SHOWN 28u    /* longest executable name shown in the table */
#define NAMES_SHOWN 40u  /* longest list of route / topic names shown */
#define NAME_MAX_UTF8 512u

/* Unix time in ms now. */
static uint64_t unix_ms_now(void)
{
    FILETIME ft;
    ULARGE_INTEGER u;

    GetSystemTimeAsFileTime(&ft);
    u.LowPart = ft.dwLowDateTime;
    u.HighPart = ft.dwHighDateTime;
    return u.QuadPart / 10000u - 11644473600000ull;
}

/* A Unix time in ms as local time: "HH:MM:SS" when it is today, else
 * "YYYY-MM-DD HH:MM". */
static void local_time(uint64_t ms, char *out, size_t cap)
{
    ULARGE_INTEGER u;
    FILETIME ft;
    SYSTEMTIME utc, lt, now_utc, now;

    u.QuadPart = (ms + 11644473600000ull) * 10000u;
    ft.dwLowDateTime = u.LowPart;
    ft.dwHighDateTime = u.HighPart;
    GetSystemTime(&now_utc);
    if (!FileTimeToSystemTime(&ft, &utc) ||
        !SystemTimeToTzSpecificLocalTime(NULL, &utc, &lt) ||
        !SystemTimeToTzSpecificLocalTime(NULL, &now_utc, &now)) {
        snprintf(out, cap, "?");
        return;
    }
    if (lt.wYear == now.wYear && lt.wMonth == now.wMonth &&
        lt.wDay == now.wDay)
        snprintf(out, cap, "%02u:%02u:%02u", lt.wHour, lt.wMinute,
                 lt.wSecond);
    else
        snprintf(out, cap, "%04u-%02u-%02u %02u:%02u", lt.wYear, lt.wMonth,
                 lt.wDay, lt.wHour, lt.wMinute);
}

/* A duration in ms, two units at most: "0s", "59s", "3m05s", "2h14m",
 * "3d04h". */
static void age(uint64_t ms, char *out, size_t cap)
{
    uint64_t s = ms / 1000u;

    if (s < 60)
        snprintf(out, cap, "%us", (unsigned)s);
    else if (s < 3600)
        snprintf(out, cap, "%um%02us", (unsigned)(s / 60), (unsigned)(s % 60));
    else if (s < 86400)
        snprintf(out, cap, "%uh%02um", (unsigned)(s / 3600),
                 (unsigned)(s % 3600 / 60));
    else
        snprintf(out, cap, "%ud%02uh", (unsigned)(s / 86400),
                 (unsigned)(s % 86400 / 3600));
}

/* A byte count for a table: exact below 10000, else K/M/G (1024s) with one
 * decimal below 100. */
static void bytes_short(uint64_t n, char *out, size_t cap)
{
    static const char units[] = "KMGTP";
    double v = (double)n;
    int u = -1;

    if (n < 10000) {
        snprintf(out, cap, "%llu", (unsigned long long)n);
        return;
    }
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (v < 100.0)
        snprintf(out, cap, "%.1f%c", v, units[u]);
    else
        snprintf(out, cap, "%.0f%c", v, units[u]);
}

static uint64_t to_u64(const char *s)
{
    return strtoull(s, NULL, 10);
}

/* UTF-16 -> UTF-8, cut to fit; "?" when it cannot be converted. */
static void utf8(const WCHAR *w, char *out, size_t cap)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)cap, NULL, NULL);

    if (n <= 0) {
        /* Too long for out, most likely: convert into a big buffer. */
        int need = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
        char *tmp = need > 0 ? malloc((size_t)need) : NULL;
        if (tmp != NULL &&
            WideCharToMultiByte(CP_UTF8, 0, w, -1, tmp, need, NULL, NULL) > 0)
            snprintf(out, cap, "%s", tmp);
        else
            snprintf(out, cap, "?");
        free(tmp);
    }
}

/* The system's text for a Win32 error, one line, no final period. */
static void win_msg(DWORD code, char *out, size_t cap)
{
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
                                 FORMAT_MESSAGE_IGNORE_INSERTS,
                             NULL, code, 0, out, (DWORD)cap, NULL);

    while (n > 0 && (out[n - 1] == '\r' || out[n - 1] == '\n' ||
                     out[n - 1] == ' ' || out[n - 1] == '.'))
        n--;
    out[n] = '\0';
    if (n == 0)
        snprintf(out, cap, "no text for this code");
}

/* ---- clients ------------------------------------------------------------- */

enum {
    COL_ID, COL_PID, COL_ACCOUNT, COL_INTEGRITY, COL_EXE, COL_CONNECTED,
    COL_FRAMES, COL_BYTES, COL_QUEUED, COL_ROUTES, COL_SUBS, COL_FLAGS, NCOL
};

static const char *const client_heads[NCOL] = {
    "ID", "PID", "ACCOUNT", "INTEGRITY", "EXE", "CONNECTED",
    "FRAMES IN/OUT", "BYTES IN/OUT", "QUEUED", "ROUTES", "SUBSCRIPTIONS",
    "FLAGS",
};

typedef char row_cells[NCOL][CELL_MAX];

/* A row of the table and the connection id it is sorted by. */
typedef struct client_row {
    uint64_t id;
    row_cells cells;
} client_row;

static int cmp_row(const void *a, const void *b)
{
    uint64_t x = ((const client_row *)a)->id, y = ((const client_row *)b)->id;

    return x < y ? -1 : x > y;
}

/* The file name of an executable path, at most EXE_SHOWN bytes ("..." in
 * the middle when longer); "-" when empty. */
static void exe_short(const char *path, char *out, size_t cap)
{
    const char *base = path, *p;
    size_t n, keep;

    for (p = path; *p != '\0'; p++)
        if (*p == '\\' || *p == '/')
            base = p + 1;
    n = strlen(base);
    if (n == 0) {
        snprintf(out, cap, "-");
    } else if (n <= EXE_SHOWN) {
        snprintf(out, cap, "%s", base);
    } else {
        /* Keep the start and the end (".exe" and what precedes it). */
        keep = (EXE_SHOWN - 3) / 2;
        snprintf(out, cap, "%.*s...%s", (int)keep, base,
                 base + n - (EXE_SHOWN - 3 - keep));
    }
}

/* A JSON string element of a name array: its text without the quotes.
 * Route and topic names have no characters that need escapes; any escape
 * is decoded as the character after the backslash, \uXXXX as '?'. */
static void json_name(const char *s, size_t n, char *out, size_t cap)
{
    size_t i, k = 0;

    if (n < 2 || s[0] != '"') {
        snprintf(out, cap, "%.*s", (int)n, s);
        return;
    }
    for (i = 1; i + 1 < n && k + 1 < cap; i++) {
        if (s[i] == '\\' && i + 2 < n) {
            i++;
            if (s[i] == 'u') {
                out[k++] = '?';
                i += 4;
                continue;
            }
        }
        out[k++] = s[i];
    }
    out[k] = '\0';
}

/* The cell of a name array: "0", "2 (a.b, c.*)" when the names are short,
 * else as many as fit and "+K more", or just the count. -1 when the value
 * is not an array. */
static int names_cell(const char *arr, size_t n, char *out, size_t cap)
{
    char name[256], list[CELL_MAX];
    size_t pos = 0, start, len, count = 0, shown = 0, used = 0;
    int more;

    list[0] = '\0';
    while ((more = ph_cli_json_next(arr, n, &pos, &start, &len)) == 1) {
        count++;
        json_name(arr + start, len, name, sizeof name);
        if (shown + 1 == count &&
            used + (shown ? 2 : 0) + strlen(name) <= NAMES_SHOWN) {
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                                     shown ? ", " : "", name);
            shown++;
        }
    }
    if (more < 0)
        return -1;
    if (count == 0)
        snprintf(out, cap, "0");
    else if (shown == 0)
        snprintf(out, cap, "%u", (unsigned)count);
    else if (shown == count)
        snprintf(out, cap, "%u (%s)", (unsigned)count, list);
    else
        snprintf(out, cap, "%u (%s, +%u more)", (unsigned)count, list,
                 (unsigned)(count - shown));
    return 0;
}

/* One connection's cells from its JSON object. -1 when it is not one. */
static int client_cells(const char *obj, size_t len, uint64_t now_ms,
                        uint32_t self, client_row *row)
{
    char (*cells)[CELL_MAX] = row->cells;
    char v[CELL_MAX], v2[CELL_MAX], t[64], a[32], *arr;
    uint64_t since;
    size_t flen = 0;
    int rc = 0;

    if (ph_cli_json_get(obj, len, "conn_id", v, sizeof v) != 1)
        return -1;
    row->id = to_u64(v);
    snprintf(cells[COL_ID], CELL_MAX, "%s%s", v,
             self != 0 && to_u64(v) == self ? "*" : "");
    if (ph_cli_json_get(obj, len, "pid", cells[COL_PID], CELL_MAX) != 1)
        snprintf(cells[COL_PID], CELL_MAX, "-");
    if (ph_cli_json_get(obj, len, "account", cells[COL_ACCOUNT], CELL_MAX) !=
            1 ||
        cells[COL_ACCOUNT][0] == '\0') {
        /* No name: the SID is the next best thing. */
        if (ph_cli_json_get(obj, len, "sid", cells[COL_ACCOUNT], CELL_MAX) !=
                1 ||
            cells[COL_ACCOUNT][0] == '\0')
            snprintf(cells[COL_ACCOUNT], CELL_MAX, "-");
    }
    if (ph_cli_json_get(obj, len, "integrity", cells[COL_INTEGRITY],
                        CELL_MAX) != 1 ||
        cells[COL_INTEGRITY][0] == '\0')
        snprintf(cells[COL_INTEGRITY], CELL_MAX, "-");
    if (ph_cli_json_get(obj, len, "exe", v, sizeof v) == 1)
        exe_short(v, cells[COL_EXE], CELL_MAX);
    else
        snprintf(cells[COL_EXE], CELL_MAX, "-");

    if (ph_cli_json_get(obj, len, "connected_ms", v, sizeof v) == 1 &&
        (since = to_u64(v)) != 0) {
        local_time(since, t, sizeof t);
        age(now_ms > since ? now_ms - since : 0, a, sizeof a);
        snprintf(cells[COL_CONNECTED], CELL_MAX, "%s (%s)", t, a);
    } else {
        snprintf(cells[COL_CONNECTED], CELL_MAX, "-");
    }

    if (ph_cli_json_get(obj, len, "frames_in", v, sizeof v) != 1)
        snprintf(v, sizeof v, "-");
    if (ph_cli_json_get(obj, len, "frames_out", v2, sizeof v2) != 1)
        snprintf(v2, sizeof v2, "-");
    snprintf(cells[COL_FRAMES], CELL_MAX, "%s/%s", v, v2);
    if (ph_cli_json_get(obj, len, "bytes_in", v, sizeof v) == 1)
        bytes_short(to_u64(v), v, sizeof v);
    else
        snprintf(v, sizeof v, "-");
    if (ph_cli_json_get(obj, len, "bytes_out", v2, sizeof v2) == 1)
        bytes_short(to_u64(v2), v2, sizeof v2);
    else
        snprintf(v2, sizeof v2, "-");
    snprintf(cells[COL_BYTES], CELL_MAX, "%s/%s", v, v2);
    if (ph_cli_json_get(obj, len, "queued", v, sizeof v) == 1)
        bytes_short(to_u64(v), cells[COL_QUEUED], CELL_MAX);
    else
        snprintf(cells[COL_QUEUED], CELL_MAX, "-");

    /* The arrays may be long: read them whole (they fit in the object). */
    if ((arr = malloc(len + 1)) == NULL)
        return -1;
    if (ph_cli_json_get(obj, len, "routes", arr, len + 1) != 1)
        snprintf(cells[COL_ROUTES], CELL_MAX, "-");
    else if (names_cell(arr, strlen(arr), cells[COL_ROUTES], CELL_MAX) < 0)
        rc = -1;
    if (ph_cli_json_get(obj, len, "subscriptions", arr, len + 1) != 1)
        snprintf(cells[COL_SUBS], CELL_MAX, "-");
    else if (names_cell(arr, strlen(arr), cells[COL_SUBS], CELL_MAX) < 0)
        rc = -1;
    free(arr);

    cells[COL_FLAGS][0] = '\0';
    if (ph_cli_json_get(obj, len, "admin", v, sizeof v) == 1 &&
        strcmp(v, "true") == 0)
        flen += (size_t)snprintf(cells[COL_FLAGS] + flen, CELL_MAX - flen,
                                 "%sadmin", flen ? "," : "");
    if (ph_cli_json_get(obj, len, "monitor", v, sizeof v) == 1 &&
        strcmp(v, "true") == 0)
        flen += (size_t)snprintf(cells[COL_FLAGS] + flen, CELL_MAX - flen,
                                 "%smonitor", flen ? "," : "");
    if (ph_cli_json_get(obj, len, "inflight", v, sizeof v) == 1 &&
        to_u64(v) != 0)
        flen += (size_t)snprintf(cells[COL_FLAGS] + flen, CELL_MAX - flen,
                                 "%sinflight=%s", flen ? "," : "", v);
    if (flen == 0)
        snprintf(cells[COL_FLAGS], CELL_MAX, "-");
    return rc;
}

/* This connection's conn_id, from sys.hello; 0 when it cannot be had. */
static uint32_t own_conn_id(const cli *o, ph_client *c)
{
    char v[32];
    ph_reply r;
    uint32_t id = 0;

    if (ph_client_call(c, "sys.hello", "pipehub clients", 15, o->timeout_ms,
                       &r) != PH_OK)
        return 0;
    if (r.kind == PH_REPLY &&
        ph_cli_json_get((const char *)r.payload, r.payload_len, "conn_id", v,
                        sizeof v) == 1)
        id = (uint32_t)to_u64(v);
    ph_reply_free(&r);
    return id;
}

int ph_cli_clients(const cli *o, int argc, char **argv)
{
    size_t width[NCOL], pos = 0, start, len, k, nrows = 0, cap = 0, i;
    client_row *rows = NULL, *t;
    int json = 0, rc, more, a;
    uint32_t self = 0;
    uint64_t now;
    ph_client *c;
    ph_reply r;
    ph_err err;

    for (a = 0; a < argc; a++) {
        if (strcmp(argv[a], "--json") == 0)
            json = 1;
        else
            return ph_cli_usage_error("clients takes only --json, not '%s'",
                                      argv[a]);
    }
    if ((rc = ph_cli_connect(o, &c)) != EXIT_OK)
        return rc;
    if (!json)
        self = own_conn_id(o, c);
    err = ph_client_call(c, "sys.clients", NULL, 0, o->timeout_ms, &r);
    ph_client_close(c);
    if (err != PH_OK)
        return ph_cli_report_failure(o, "sys.clients", err);
    if (r.kind == PH_ERROR) {
        rc = ph_cli_report_error_reply(&r);
        ph_reply_free(&r);
        return rc;
    }
    if (json) {
        fwrite(r.payload, 1, r.payload_len, stdout);
        if (r.payload_len == 0 || r.payload[r.payload_len - 1] != '\n')
            putchar('\n');
        ph_reply_free(&r);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_NO_ANSWER;
    }

    now = unix_ms_now();
    while ((more = ph_cli_json_next((const char *)r.payload, r.payload_len,
                                    &pos, &start, &len)) == 1) {
        if (nrows == cap) {
            cap = cap ? cap * 2 : 16;
            if ((t = realloc(rows, cap * sizeof *rows)) == NULL) {
                fputs("pipehub: out of memory\n", stderr);
                free(rows);
                ph_reply_free(&r);
                return EXIT_NO_ANSWER;
            }
            rows = t;
        }
        if (client_cells((const char *)r.payload + start, len, now, self,
                         &rows[nrows]) < 0) {
            more = -1;
            break;
        }
        nrows++;
    }
    if (more < 0) {
        fprintf(stderr, "pipehub: sys.clients answered something other than "
                "a JSON array of connections: %.200s\n",
                (const char *)r.payload);
        free(rows);
        ph_reply_free(&r);
        return EXIT_NO_ANSWER;
    }
    ph_reply_free(&r);

    /* The hub lists them in its own order; ids give the order they came. */
    if (nrows > 1)
        qsort(rows, nrows, sizeof *rows, cmp_row);
    for (k = 0; k < NCOL; k++) {
        width[k] = strlen(client_heads[k]);
        for (i = 0; i < nrows; i++)
            if (strlen(rows[i].cells[k]) > width[k])
                width[k] = strlen(rows[i].cells[k]);
    }
    for (k = 0; k < NCOL; k++)
        printf(k + 1 < NCOL ? "%-*s  " : "%.*s\n",
               (int)(k + 1 < NCOL ? width[k] : strlen(client_heads[k])),
               client_heads[k]);
    for (i = 0; i < nrows; i++)
        for (k = 0; k < NCOL; k++)
            printf(k + 1 < NCOL ? "%-*s  " : "%.*s\n",
                   (int)(k + 1 < NCOL ? width[k] : strlen(rows[i].cells[k])),
                   rows[i].cells[k]);
    printf("%u connection%s%s\n", (unsigned)nrows, nrows == 1 ? "" : "s",
           self != 0 ? " (* is this command's own)" : "");
    free(rows);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_NO_ANSWER;
}

/* ---- doctor -------------------------------------------------------------- */

typedef struct doctor {
    const cli *o;
    int findings;            /* WARN and FAIL lines */
    /* From the pipe handle. */
    DWORD server_pid;        /* 0: unknown */
    char server_sid[256];    /* the serving process's account, "" unknown */
    char owner_sid[256];     /* the pipe's owner, "" unknown */
    char owner_text[NAME_MAX_UTF8 * 2 + 300]; /* its name and SID */
} doctor;

enum { ST_OK, ST_INFO, ST_WARN, ST_FAIL };

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
        utf8(name, n8, sizeof n8);
        utf8(domain, d8, sizeof d8);
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
        utf8(wpath, path, sizeof path);
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

/* ---- the DACL in plain words --------------------------------------------- */

static int sid_is(const char *sid, const char *want)
{
    return strcmp(sid, want) == 0;
}

/* SYSTEM and Administrators: they can take any object anyway. */
static int sid_all_powerful(const char *sid)
{
    return sid_is(sid, "S-1-5-18") || sid_is(sid, "S-1-5-32-544");
}

/* Who a local hub should not let in at all: the text, or NULL. */
static const char *sid_too_broad(const char *sid)
{
    if (sid_is(sid, "S-1-1-0"))
        return "Everyone";
    if (sid_is(sid, "S-1-5-7"))
        return "anonymous logons";
    if (sid_is(sid, "S-1-5-2"))
        return "network logons (remote users)";
    if (sid_is(sid, "S-1-5-32-546"))
        return "Guests";
    if (sid_is(sid, "S-1-15-2-1") || sid_is(sid, "S-1-15-2-2"))
        return "sandboxed (AppContainer) processes";
    return NULL;
}

/* May this SID create instances without that being a finding? 1 yes,
 * 0 no, -1 cannot tell (the server's account is unknown). */
static int sid_may_create(const doctor *d, const char *sid)
{
    if (sid_is(sid, "S-1-3-4")) {
        /* OWNER RIGHTS is whoever owns the pipe. */
        if (d->owner_sid[0] == '\0')
            return 0;
        sid = d->owner_sid;
    }
    if (sid_all_powerful(sid))
        return 1;
    if (d->server_sid[0] == '\0')
        return -1;
    return sid_is(sid, d->server_sid);
}

#define RIGHTS_ESCALATE (FILE_CREATE_PIPE_INSTANCE | WRITE_DAC | WRITE_OWNER)

/* What mask m (generic rights already mapped) lets its holder do. */
static void rights_text(ACCESS_MASK m, char *out, size_t cap)
{
    size_t n = 0;
    int rd = (m & FILE_READ_DATA) != 0, wr = (m & FILE_WRITE_DATA) != 0;

#define ADD(...) \
    n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__)
    if ((m & FILE_ALL_ACCESS) == FILE_ALL_ACCESS) {
        ADD("full control (may connect, create instances, change the DACL)");
    } else {
        if (rd && wr)
            ADD("may connect (read/write)");
        else if (rd)
            ADD("may connect (read only)");
        else if (wr)
            ADD("may connect (write only)");
        else
            ADD("may not connect");
        if (m & FILE_CREATE_PIPE_INSTANCE)
            ADD(", may create instances");
        if (m & WRITE_DAC)
            ADD(", may change the DACL");
        if (m & WRITE_OWNER)
            ADD(", may take ownership");
    }
    ADD(" [0x%lx]", (unsigned long)m);
#undef ADD
}

/* The allowed bits of the ACE at index i, less those denied earlier to the
 * same SID or to Everyone. */
static ACCESS_MASK effective_allow(PACL dacl, DWORD i, ACCESS_MASK m,
                                   PSID sid, const GENERIC_MAPPING *map)
{
    SID_IDENTIFIER_AUTHORITY world = {SECURITY_WORLD_SID_AUTHORITY};
    PSID everyone = NULL;
    DWORD k;
    void *p;

    AllocateAndInitializeSid(&world, 1, SECURITY_WORLD_RID, 0, 0, 0, 0, 0, 0,
                             0, &everyone);
    for (k = 0; k < i; k++) {
        ACCESS_DENIED_ACE *den;
        ACCESS_MASK dm;
        if (!GetAce(dacl, k, &p))
            continue;
        den = p;
        if (den->Header.AceType != ACCESS_DENIED_ACE_TYPE ||
            (den->Header.AceFlags & INHERIT_ONLY_ACE))
            continue;
        if (!EqualSid((PSID)&den->SidStart, sid) &&
            (everyone == NULL || !EqualSid((PSID)&den->SidStart, everyone)))
            continue;
        dm = den->Mask;
        MapGenericMask(&dm, (GENERIC_MAPPING *)map);
        m &= ~dm;
    }
    if (everyone != NULL)
        FreeSid(everyone);
    return m;
}

static void check_ace(doctor *d, PACL dacl, DWORD i, const GENERIC_MAPPING *map)
{
    char who[NAME_MAX_UTF8 * 2 + 300], sid[256], what[256], label[16];
    const char *broad;
    int may;
    ACCESS_ALLOWED_ACE *ace;
    ACCESS_MASK m;
    void *p;

    snprintf(label, sizeof label, "ace %lu", (unsigned long)i + 1);
    if (!GetAce(dacl, i, &p)) {
        say(d, ST_WARN, label, "unreadable: error %lu",
            (unsigned long)GetLastError());
        return;
    }
    ace = p; /* allowed and denied ACEs share this layout */
    if (ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE &&
        ace->Header.AceType != ACCESS_DENIED_ACE_TYPE) {
        say(d, ST_INFO, label, "ACE type %u, not read by doctor",
            (unsigned)ace->Header.AceType);
        return;
    }
    sid_text((PSID)&ace->SidStart, who, sizeof who, sid, sizeof sid);
    m = ace->Mask;
    MapGenericMask(&m, (GENERIC_MAPPING *)map);
    if (ace->Header.AceFlags & INHERIT_ONLY_ACE) {
        say(d, ST_OK, label, "%s: inherit-only, does not apply to the pipe",
            who);
        return;
    }
    if (ace->Header.AceType == ACCESS_DENIED_ACE_TYPE) {
        rights_text(m, what, sizeof what);
        say(d, ST_OK, label, "%s denied: %s", who, what);
        return;
    }
    m = effective_allow(dacl, i, m, (PSID)&ace->SidStart, map);
    rights_text(m, what, sizeof what);
    broad = (m & (FILE_READ_DATA | FILE_WRITE_DATA | RIGHTS_ESCALATE)) != 0
                ? sid_too_broad(sid)
                : NULL;
    may = (m & RIGHTS_ESCALATE) != 0 ? sid_may_create(d, sid) : 1;
    if (may < 0 && broad == NULL)
        say(d, ST_INFO, label,
            "%s: %s; it may create instances: fine if it is the server's "
            "account, which is unknown here", who, what);
    else if (may <= 0)
        say(d, ST_WARN, label,
            "%s: %s; it may create instances of this pipe and serve "
            "clients in the hub's place (pipe squatting)%s%s%s%s",
            who, what, broad != NULL ? ", and it lets in " : "",
            broad != NULL ? broad : "",
            sid_is(sid, "S-1-3-4") ? "; OWNER RIGHTS is the owner: " : "",
            sid_is(sid, "S-1-3-4") ? (d->owner_text[0] != '\0'
                                          ? d->owner_text
                                          : "unknown")
                                   : "");
    else if (broad != NULL)
        say(d, ST_WARN, label,
            "%s: %s; that lets %s in (the hub's audience is local, "
            "authenticated users)", who, what, broad);
    else
        say(d, ST_OK, label, "%s: %s", who, what);
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

/* The live descriptor of the pipe, read through the client handle. */
static void check_security(doctor *d, HANDLE h)
{
    GENERIC_MAPPING map = {FILE_GENERIC_READ, FILE_GENERIC_WRITE,
                           FILE_GENERIC_EXECUTE, FILE_ALL_ACCESS};
    PSECURITY_DESCRIPTOR sd = NULL;
    SECURITY_DESCRIPTOR_CONTROL ctl = 0;
    DWORD rev, e, i;
    PSID owner = NULL;
    PACL dacl = NULL;
    char msg[256], who[NAME_MAX_UTF8 * 2 + 300], *sddl = NULL;

    e = GetSecurityInfo(h, SE_KERNEL_OBJECT,
                        OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                        &owner, NULL, &dacl, NULL, &sd);
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
        LocalFree(sddl);
    } else {
        e = GetLastError();
        say(d, ST_INFO, "sddl", "not shown: error %lu", (unsigned long)e);
    }

    if (owner != NULL) {
        sid_text(owner, who, sizeof who, d->owner_sid, sizeof d->owner_sid);
        snprintf(d->owner_text, sizeof d->owner_text, "%s", who);
        if (sid_all_powerful(d->owner_sid) ||
            (d->server_sid[0] != '\0' && sid_is(d->owner_sid, d->server_sid)))
            say(d, ST_OK, "owner", "%s", who);
        else if (d->server_sid[0] == '\0')
            say(d, ST_INFO, "owner",
                "%s (the server's account is unknown, so not compared)", who);
        else
            say(d, ST_WARN, "owner",
                "%s: not the server's account, SYSTEM or Administrators; an "
                "owner may always change the DACL", who);
    } else {
        say(d, ST_INFO, "owner", "none reported");
    }

    GetSecurityDescriptorControl(sd, &ctl, &rev);
    if (dacl == NULL) {
        say(d, ST_WARN, "dacl",
            "%s: everyone, also anonymous and remote users, has full "
            "control and may create instances",
            (ctl & SE_DACL_PRESENT) ? "NULL DACL" : "no DACL");
    } else if (dacl->AceCount == 0) {
        say(d, ST_OK, "dacl", "empty: nobody is granted access");
    } else {
        say(d, ST_OK, "dacl", "%u entries%s:", (unsigned)dacl->AceCount,
            (ctl & SE_DACL_PROTECTED) ? ", protected" : "");
        for (i = 0; i < dacl->AceCount; i++)
            check_ace(d, dacl, i, &map);
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
        age(to_u64(up), upt, sizeof upt);
    else
        snprintf(upt, sizeof upt, "?");
    if (ph_cli_json_get(j, n, "config_generation", gen, sizeof gen) != 1)
        snprintf(gen, sizeof gen, "?");
    if (ph_cli_json_get(j, n, "config_loaded_ms", loaded, sizeof loaded) ==
            1 &&
        to_u64(loaded) != 0)
        local_time(to_u64(loaded), when, sizeof when);
    else
        snprintf(when, sizeof when, "?");
    say(d, ST_OK, "load",
        "%s clients now, %s since start, %s instances listening, up %s; "
        "configuration generation %s, loaded %s",
        cur, total, pend, upt, gen, when);

    fired[0] = '\0';
    for (k = 0; k < sizeof limits / sizeof limits[0]; k++)
        if (ph_cli_json_get(j, n, limits[k], v, sizeof v) == 1 &&
            to_u64(v) != 0 && used < sizeof fired)
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
        bytes_short(to_u64(priv), mem, sizeof mem);
    else
        snprintf(mem, sizeof mem, "?");
    if (d->server_pid == 0)
        say(d, ST_INFO, "hub pid",
            "%s by sys.process (the pipe's serving pid is unknown: not "
            "compared); %s handles, %s private bytes", pid, handles, mem);
    else if (to_u64(pid) == d->server_pid)
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
