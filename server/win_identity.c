/* Who is on the other end of a pipe: read once, when the client's first
 * bytes arrive, and frozen for the life of the connection (hub.h
 * ph_identity). Nothing here waits on another machine: the account name
 * comes from LookupAccountSidLocalW, which only consults the local
 * machine's accounts, and is left empty where that is not available.
 *
 * The token is the client's impersonation token when the pipe allows it
 * (ImpersonateNamedPipeClient, which needs a first message read: hence the
 * first bytes, not the connect), else its process token. Under Wine the
 * impersonation "succeeds" and yields the server's own token; every Wine
 * user is the same SID, so both give the same answer there. */
#include "internal.h"

#include <sddl.h>
#include <stdio.h>
#include <string.h>

#include "wintext.h"

typedef BOOL(WINAPI *lookup_local_fn)(PSID, LPWSTR, LPDWORD, LPWSTR, LPDWORD,
                                      PSID_NAME_USE);

/* What every capture needs and never changes: the look-up function, the
 * service's own user SID, the Administrators SID. Filled once. */
static INIT_ONCE once = INIT_ONCE_STATIC_INIT;
static lookup_local_fn lookup_local;
static BYTE own_sid[SECURITY_MAX_SID_SIZE];
static BYTE admins_sid[SECURITY_MAX_SID_SIZE];

static BOOL CALLBACK init_once(PINIT_ONCE o, PVOID param, PVOID *ctx)
{
    HMODULE m = GetModuleHandleA("advapi32.dll");
    DWORD n = sizeof admins_sid;
    BYTE buf[512];
    HANDLE mine;

    if (m != NULL)
        lookup_local = (lookup_local_fn)(void (*)(void))GetProcAddress(
            m, "LookupAccountSidLocalW");
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mine)) {
        if (GetTokenInformation(mine, TokenUser, buf, sizeof buf, &n))
            CopySid(sizeof own_sid, own_sid, ((TOKEN_USER *)buf)->User.Sid);
        CloseHandle(mine);
    }
    n = sizeof admins_sid;
    CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, admins_sid, &n);
    return TRUE;
}

/* Account names by SID string, so a busy account costs one look-up, not
 * one per connection. A name that changes (a renamed account) shows up
 * once the entry is overwritten; it is for humans, decisions use SIDs. */
#define NAME_CACHE 32
static SRWLOCK name_lock = SRWLOCK_INIT;
static struct {
    char sid[80];
    char name[128];
} names[NAME_CACHE];
static unsigned name_next;

static void account_name(PSID sid, const char *sid_text, char *out,
                         size_t cap)
{
    WCHAR name[128], domain[128], both[260];
    DWORD nn = 128, nd = 128;
    SID_NAME_USE use;
    unsigned i;

    out[0] = '\0';
    AcquireSRWLockShared(&name_lock);
    for (i = 0; i < NAME_CACHE; i++) {
        if (strcmp(names[i].sid, sid_text) == 0) {
            snprintf(out, cap, "%s", names[i].name);
            ReleaseSRWLockShared(&name_lock);
            return;
        }
    }
    ReleaseSRWLockShared(&name_lock);
    if (lookup_local == NULL || !lookup_local(sid, name, &nn, domain, &nd, &use))
        return;
    if (domain[0])
        _snwprintf(both, 260, L"%ls\\%ls", domain, name);
    else
        _snwprintf(both, 260, L"%ls", name);
    both[259] = 0;
    ph_wintext_utf8(both, out, cap);
    if (strlen(sid_text) < sizeof names[0].sid &&
        strlen(out) < sizeof names[0].name) {
        AcquireSRWLockExclusive(&name_lock);
        i = name_next++ % NAME_CACHE;
        snprintf(names[i].sid, sizeof names[i].sid, "%s", sid_text);
        snprintf(names[i].name, sizeof names[i].name, "%s", out);
        ReleaseSRWLockExclusive(&name_lock);
    }
}

/* GetTokenInformation into buf (cap bytes) when it fits, the usual case
 * (one call); otherwise into a heap block of the size asked for. The
 * caller frees the result with token_free(result, buf). */
static void *token_info(HANDLE token, TOKEN_INFORMATION_CLASS cls, void *buf,
                        DWORD cap)
{
    DWORD n = 0;
    void *p;

    if (GetTokenInformation(token, cls, buf, cap, &n))
        return buf;
    if (GetLastError() != ERROR_INSUFFICIENT_BUFFER || n == 0 ||
        (p = HeapAlloc(GetProcessHeap(), 0, n)) == NULL)
        return NULL;
    if (!GetTokenInformation(token, cls, p, n, &n)) {
        HeapFree(GetProcessHeap(), 0, p);
        return NULL;
    }
    return p;
}

static void token_free(void *p, void *buf)
{
    if (p != NULL && p != buf)
        HeapFree(GetProcessHeap(), 0, p);
}

static const char *integrity_name(DWORD rid)
{
    if (rid >= SECURITY_MANDATORY_SYSTEM_RID)
        return "system";
    if (rid >= SECURITY_MANDATORY_HIGH_RID)
        return "high";
    if (rid >= SECURITY_MANDATORY_MEDIUM_RID)
        return "medium";
    if (rid >= SECURITY_MANDATORY_LOW_RID)
        return "low";
    return "untrusted";
}

/* The token's enabled groups (not deny-only ones) as comma-separated SIDs,
 * for [route.NAME] access rules (cut at a whole SID if they do not fit),
 * and whether Administrators is among them: a filtered UAC token has it
 * deny-only, and is no admin. */
static int groups_list(const TOKEN_GROUPS *g, char *out, size_t cap)
{
    size_t len = 0, n;
    DWORD i;
    char *sid;
    int admin = 0;

    out[0] = '\0';
    for (i = 0; g != NULL && i < g->GroupCount; i++) {
        DWORD a = g->Groups[i].Attributes;
        if (!(a & SE_GROUP_ENABLED) || (a & SE_GROUP_USE_FOR_DENY_ONLY))
            continue;
        if (EqualSid(g->Groups[i].Sid, (PSID)admins_sid))
            admin = 1;
        if (!ConvertSidToStringSidA(g->Groups[i].Sid, &sid))
            continue;
        n = strlen(sid);
        if (len + n + 2 <= cap) {
            if (len)
                out[len++] = ',';
            memcpy(out + len, sid, n + 1);
            len += n;
        }
        LocalFree(sid);
    }
    return admin;
}

static void from_token(HANDLE token, ph_conn_identity *id)
{
    BYTE ubuf[256], lbuf[128], gbuf[4096];
    TOKEN_USER *user = token_info(token, TokenUser, ubuf, sizeof ubuf);
    TOKEN_MANDATORY_LABEL *label =
        token_info(token, TokenIntegrityLevel, lbuf, sizeof lbuf);
    TOKEN_GROUPS *groups = token_info(token, TokenGroups, gbuf, sizeof gbuf);
    TOKEN_STATISTICS st;
    DWORD n;
    char *sid = NULL;
    int admin_group;

    admin_group = groups_list(groups, id->groups, sizeof id->groups);
    if (user != NULL) {
        if (ConvertSidToStringSidA(user->User.Sid, &sid)) {
            snprintf(id->sid, sizeof id->sid, "%s", sid);
            LocalFree(sid);
        }
        account_name(user->User.Sid, id->sid, id->account, sizeof id->account);
        /* The service's own account or an administrator; a sandboxed token
         * can carry its user SID deny-only: such a client is not that user
         * for granting anything. */
        id->who.admin = !(user->User.Attributes & SE_GROUP_USE_FOR_DENY_ONLY) &&
                        (EqualSid(user->User.Sid, (PSID)own_sid) || admin_group);
    }
    if (label != NULL) {
        PSID s = label->Label.Sid;
        UCHAR k = *GetSidSubAuthorityCount(s);
        if (k > 0) {
            id->who.integrity_rid = *GetSidSubAuthority(s, k - 1u);
            snprintf(id->integrity, sizeof id->integrity, "%s",
                     integrity_name(id->who.integrity_rid));
        }
    }
    token_free(user, ubuf);
    token_free(label, lbuf);
    token_free(groups, gbuf);
    if (GetTokenInformation(token, TokenStatistics, &st, sizeof st, &n))
        snprintf(id->logon_session, sizeof id->logon_session, "0x%lx:0x%lx",
                 (unsigned long)st.AuthenticationId.HighPart,
                 (unsigned long)st.AuthenticationId.LowPart);
}

/* The config loader's resolver (config.h ph_sid_resolver): an account or
 * group name from an access list, looked up when the file is loaded (at
 * start, check-config and reload), never while routing. */
int ph_win_resolve_account(void *ctx, const char *name, char *sid, size_t cap,
                           char *why, size_t why_cap)
{
    WCHAR wname[256], domain[256];
    BYTE buf[SECURITY_MAX_SID_SIZE];
    DWORD nsid = sizeof buf, ndom = 256;
    SID_NAME_USE use;
    char *text;

    if (MultiByteToWideChar(CP_UTF8, 0, name, -1, wname, 256) <= 0) {
        snprintf(why, why_cap, "account name '%s' is too long", name);
        return -1;
    }
    if (!LookupAccountNameW(NULL, wname, buf, &nsid, domain, &ndom, &use)) {
        snprintf(why, why_cap, "unknown account '%s' (error %lu)", name,
                 (unsigned long)GetLastError());
        return -1;
    }
    if (!ConvertSidToStringSidA((PSID)buf, &text)) {
        snprintf(why, why_cap, "account '%s': no SID string", name);
        return -1;
    }
    snprintf(sid, cap, "%s", text);
    LocalFree(text);
    return 0;
}

void ph_identity_capture(HANDLE pipe, ULONG pid, ph_conn_identity *id)
{
    HANDLE proc, token = NULL;
    FILETIME created, exited, kernel, user;
    WCHAR path[MAX_PATH * 2];
    DWORD n = MAX_PATH * 2;

    InitOnceExecuteOnce(&once, init_once, NULL, NULL);
    memset(id, 0, sizeof *id);
    id->who.pid = pid;
    proc = pid ? OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)
               : NULL;
    if (proc != NULL) {
        if (GetProcessTimes(proc, &created, &exited, &kernel, &user))
            id->who.process_start = (uint64_t)created.dwHighDateTime << 32 |
                                    created.dwLowDateTime;
        if (QueryFullProcessImageNameW(proc, 0, path, &n))
            ph_wintext_utf8(path, id->exe, sizeof id->exe);
    }
    if (ImpersonateNamedPipeClient(pipe)) {
        if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &token))
            token = NULL;
        /* Back to our own context at once, whatever happened. */
        RevertToSelf();
    }
    if (token == NULL && proc != NULL &&
        !OpenProcessToken(proc, TOKEN_QUERY, &token))
        token = NULL;
    if (token != NULL) {
        from_token(token, id);
        CloseHandle(token);
    }
    if (proc != NULL)
        CloseHandle(proc);
    id->who.sid = id->sid;
    id->who.account = id->account;
    id->who.logon_session = id->logon_session;
    id->who.integrity = id->integrity;
    id->who.exe = id->exe;
    id->who.groups = id->groups;
}
