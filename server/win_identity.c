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

static void utf8(const WCHAR *w, char *out, size_t cap)
{
    if (WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)cap, NULL, NULL) <= 0)
        out[0] = '\0';
}

typedef BOOL(WINAPI *lookup_local_fn)(PSID, LPWSTR, LPDWORD, LPWSTR, LPDWORD,
                                      PSID_NAME_USE);

static void account_name(PSID sid, char *out, size_t cap)
{
    static lookup_local_fn lookup;
    static LONG resolved;
    WCHAR name[128], domain[128], both[260];
    DWORD nn = 128, nd = 128;
    SID_NAME_USE use;

    out[0] = '\0';
    if (!InterlockedCompareExchange(&resolved, 1, 0)) {
        HMODULE m = GetModuleHandleA("advapi32.dll");
        if (m != NULL)
            lookup = (lookup_local_fn)(void (*)(void))GetProcAddress(
                m, "LookupAccountSidLocalW");
    }
    if (lookup == NULL || !lookup(sid, name, &nn, domain, &nd, &use))
        return;
    if (domain[0])
        _snwprintf(both, 260, L"%ls\\%ls", domain, name);
    else
        _snwprintf(both, 260, L"%ls", name);
    both[259] = 0;
    utf8(both, out, cap);
}

static void *token_info(HANDLE token, TOKEN_INFORMATION_CLASS cls)
{
    DWORD n = 0;
    void *p;

    GetTokenInformation(token, cls, NULL, 0, &n);
    if (n == 0 || (p = HeapAlloc(GetProcessHeap(), 0, n)) == NULL)
        return NULL;
    if (!GetTokenInformation(token, cls, p, n, &n)) {
        HeapFree(GetProcessHeap(), 0, p);
        return NULL;
    }
    return p;
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

/* The service's own account or a member of BUILTIN\Administrators (an
 * enabled group: a filtered UAC token has it deny-only, and is no admin). */
static int is_admin(HANDLE token, PSID user)
{
    static const SID_IDENTIFIER_AUTHORITY nt = {SECURITY_NT_AUTHORITY};
    TOKEN_GROUPS *groups;
    TOKEN_USER *self = NULL;
    HANDLE mine;
    PSID admins = NULL;
    DWORD i;
    int yes = 0;

    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mine)) {
        self = token_info(mine, TokenUser);
        CloseHandle(mine);
    }
    if (self != NULL) {
        yes = EqualSid(self->User.Sid, user);
        HeapFree(GetProcessHeap(), 0, self);
    }
    if (yes || !AllocateAndInitializeSid((PSID_IDENTIFIER_AUTHORITY)&nt, 2,
                                         SECURITY_BUILTIN_DOMAIN_RID,
                                         DOMAIN_ALIAS_RID_ADMINS, 0, 0, 0, 0,
                                         0, 0, &admins))
        return yes;
    groups = token_info(token, TokenGroups);
    for (i = 0; groups != NULL && i < groups->GroupCount && !yes; i++)
        yes = (groups->Groups[i].Attributes & SE_GROUP_ENABLED) &&
              EqualSid(groups->Groups[i].Sid, admins);
    if (groups != NULL)
        HeapFree(GetProcessHeap(), 0, groups);
    FreeSid(admins);
    return yes;
}

/* The token's enabled groups (not deny-only ones) as comma-separated SIDs,
 * for [route.NAME] access rules. Cut at a whole SID if it does not fit. */
static void groups_list(HANDLE token, char *out, size_t cap)
{
    TOKEN_GROUPS *g = token_info(token, TokenGroups);
    size_t len = 0, n;
    DWORD i;
    char *sid;

    out[0] = '\0';
    for (i = 0; g != NULL && i < g->GroupCount; i++) {
        DWORD a = g->Groups[i].Attributes;
        if (!(a & SE_GROUP_ENABLED) || (a & SE_GROUP_USE_FOR_DENY_ONLY) ||
            !ConvertSidToStringSidA(g->Groups[i].Sid, &sid))
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
    if (g != NULL)
        HeapFree(GetProcessHeap(), 0, g);
}

static void from_token(HANDLE token, ph_conn_identity *id)
{
    TOKEN_USER *user = token_info(token, TokenUser);
    TOKEN_MANDATORY_LABEL *label = token_info(token, TokenIntegrityLevel);
    TOKEN_STATISTICS st;
    DWORD n;
    char *sid = NULL;

    if (user != NULL) {
        if (ConvertSidToStringSidA(user->User.Sid, &sid)) {
            snprintf(id->sid, sizeof id->sid, "%s", sid);
            LocalFree(sid);
        }
        account_name(user->User.Sid, id->account, sizeof id->account);
        /* A sandboxed token can carry its user SID deny-only: such a
         * client is not that user for granting anything. */
        id->who.admin = !(user->User.Attributes & SE_GROUP_USE_FOR_DENY_ONLY) &&
                        is_admin(token, user->User.Sid);
        HeapFree(GetProcessHeap(), 0, user);
    }
    groups_list(token, id->groups, sizeof id->groups);
    if (label != NULL) {
        PSID s = label->Label.Sid;
        UCHAR k = *GetSidSubAuthorityCount(s);
        if (k > 0) {
            id->who.integrity_rid = *GetSidSubAuthority(s, k - 1u);
            snprintf(id->integrity, sizeof id->integrity, "%s",
                     integrity_name(id->who.integrity_rid));
        }
        HeapFree(GetProcessHeap(), 0, label);
    }
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

    memset(id, 0, sizeof *id);
    id->who.pid = pid;
    proc = pid ? OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)
               : NULL;
    if (proc != NULL) {
        if (GetProcessTimes(proc, &created, &exited, &kernel, &user))
            id->who.process_start = (uint64_t)created.dwHighDateTime << 32 |
                                    created.dwLowDateTime;
        if (QueryFullProcessImageNameW(proc, 0, path, &n))
            utf8(path, id->exe, sizeof id->exe);
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
