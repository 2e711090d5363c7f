/* Helpers for tests/wine/service.sh: the checks a shell cannot make.
 *
 *   test_service hold-reload PIPE SIGNAL_FILE
 *       Opens one connection and keeps it open across a reload: echoes
 *       8000 bytes (must come back whole), prints "ready", waits until
 *       SIGNAL_FILE exists (the script has edited the INI to
 *       max_frame_bytes = 4096 and sent the reload), then sends the same
 *       8000 bytes on the same connection and requires ERROR TOO_LARGE. A
 *       new connection must then see max_frame 4096 in sys.hello.
 *
 *   test_service stop-watch NAME LIMIT_MS
 *       Asks service NAME (RUNNING) what it is (INTERROGATE), sends
 *       SERVICE_CONTROL_STOP, and polls its status every 5 ms: after the
 *       control it must never be RUNNING again, STOP_PENDING checkpoints
 *       must not go back, and STOPPED must come within LIMIT_MS. Prints
 *       the states it saw and the time.
 *
 *   test_service msgtable PATH_TO_PIPEHUBD_EXE
 *       Formats event id 1 from the exe's message table the way Event Viewer
 *       does, and requires the insertion string back unchanged.
 *
 * Each prints one line per check ("ok ..." or "FAIL ...") and exits 0 only
 * when every check passed. Every wait is bounded. */
#include <windows.h>

#include <aclapi.h>
#include <sddl.h>

#include "hubtest.h"
#include "pipehub.h"

#define CALL_TIMEOUT_MS 10000u
#define CONNECT_TIMEOUT_MS 20000u
#define SIGNAL_TIMEOUT_MS 120000u
#define BIG 8000u         /* over 4096, well under 1048576 */
#define SMALL_LIMIT 4096u /* what the edited INI sets */

static int failures;

static void ok(const char *what)
{
    printf("ok   %s\n", what);
    fflush(stdout);
}

static void fail(const char *what, const char *detail)
{
    printf("FAIL %s: %s\n", what, detail);
    fflush(stdout);
    failures++;
}

static int wait_for_file(const char *path, DWORD limit_ms)
{
    uint64_t deadline = ht_ms_now() + limit_ms;

    while (GetFileAttributesA(path) == INVALID_FILE_ATTRIBUTES) {
        if (ht_ms_left(deadline) == 0)
            return -1;
        Sleep(50);
    }
    return 0;
}

/* Echo payload on c; 0 when the same bytes come back. */
static int echo_back(ph_client *c, const uint8_t *payload, size_t len,
                     char *why, size_t why_cap)
{
    ph_reply r = {0};
    ph_err err = ph_client_call(c, "sys.echo", payload, len, CALL_TIMEOUT_MS,
                                &r);
    int rc = -1;

    if (err != PH_OK)
        snprintf(why, why_cap, "call failed: %s", ph_strerror(err));
    else if (r.kind != PH_REPLY)
        snprintf(why, why_cap, "ERROR %s: %s", ht_err_name(r.status),
                 (const char *)r.payload);
    else if (r.payload_len != len || memcmp(r.payload, payload, len) != 0)
        snprintf(why, why_cap, "reply of %lu bytes, expected the same %lu",
                 (unsigned long)r.payload_len, (unsigned long)len);
    else
        rc = 0;
    ph_reply_free(&r);
    return rc;
}

static int hold_reload(const char *pipe, const char *signal_file)
{
    static uint8_t payload[BIG];
    char why[512], want[64];
    ph_client *c = NULL, *fresh = NULL;
    ph_reply r = {0};
    ph_err err;
    size_t i;

    for (i = 0; i < BIG; i++)
        payload[i] = (uint8_t)('a' + i % 26);
    err = ph_client_connect(pipe, CONNECT_TIMEOUT_MS, &c);
    if (err != PH_OK) {
        fail("connect", ph_strerror(err));
        return 1;
    }
    if (echo_back(c, payload, BIG, why, sizeof why) == 0)
        ok("before the reload: 8000 bytes echo whole on the held connection");
    else
        fail("before the reload: 8000-byte echo", why);
    printf("ready\n");
    fflush(stdout);

    if (wait_for_file(signal_file, SIGNAL_TIMEOUT_MS) != 0) {
        fail("signal", "the script never created the signal file");
        goto out;
    }
    err = ph_client_call(c, "sys.echo", payload, BIG, CALL_TIMEOUT_MS, &r);
    if (err != PH_OK) {
        fail("after the reload: 8000-byte echo on the held connection",
             ph_strerror(err));
    } else if (r.kind != PH_ERROR || r.status != PH_ETOOBIG) {
        snprintf(why, sizeof why, "got kind %u status %lu (%s), wanted "
                 "ERROR TOO_LARGE", (unsigned)r.kind, (unsigned long)r.status,
                 ht_err_name(r.status));
        fail("after the reload: 8000-byte echo on the held connection", why);
    } else {
        ok("after the reload: the same connection gets TOO_LARGE for 8000 "
           "bytes");
    }
    ph_reply_free(&r);

    /* A new client hears of the new limit in sys.hello. */
    err = ph_client_connect(pipe, CONNECT_TIMEOUT_MS, &fresh);
    if (err == PH_OK)
        err = ph_client_call(fresh, "sys.hello", "test_service", 12,
                             CALL_TIMEOUT_MS, &r);
    snprintf(want, sizeof want, "\"max_frame\":%u", SMALL_LIMIT);
    if (err != PH_OK)
        fail("after the reload: sys.hello", ph_strerror(err));
    else if (r.kind != PH_REPLY || strstr((const char *)r.payload, want) == NULL)
        fail("after the reload: sys.hello reports max_frame 4096",
             (const char *)r.payload);
    else
        ok("after the reload: sys.hello reports max_frame 4096");
    ph_reply_free(&r);

out:
    ph_client_close(fresh);
    ph_client_close(c);
    return failures ? 1 : 0;
}

static int msgtable(const char *exe)
{
    HMODULE m;
    wchar_t out[256];
    const wchar_t *text = L"pipehub message table check";
    DWORD_PTR args[1];
    char got[512];
    DWORD n;

    /* As Event Viewer does: load as data, format the record's id with its
     * insertion strings. */
    m = LoadLibraryExA(exe, NULL, LOAD_LIBRARY_AS_DATAFILE);
    if (m == NULL) {
        snprintf(got, sizeof got, "LoadLibraryEx failed (error %lu)",
                 GetLastError());
        fail("message table", got);
        return 1;
    }
    args[0] = (DWORD_PTR)text;
    n = FormatMessageW(FORMAT_MESSAGE_FROM_HMODULE |
                           FORMAT_MESSAGE_ARGUMENT_ARRAY,
                       m, 1, 0, out, sizeof out / sizeof out[0],
                       (va_list *)args);
    FreeLibrary(m);
    if (n == 0) {
        snprintf(got, sizeof got, "FormatMessage of id 1 failed (error %lu)",
                 GetLastError());
        fail("message table", got);
        return 1;
    }
    if (wcscmp(out, L"pipehub message table check\r\n") != 0) {
        WideCharToMultiByte(CP_ACP, 0, out, -1, got, sizeof got, NULL, NULL);
        fail("message table: id 1 formats to the insertion string", got);
        return 1;
    }
    ok("message table: event id 1 formats to the logged line as it is");
    return 0;
}

static const char *state_name(DWORD s)
{
    switch (s) {
    case SERVICE_STOPPED:       return "STOPPED";
    case SERVICE_START_PENDING: return "START_PENDING";
    case SERVICE_STOP_PENDING:  return "STOP_PENDING";
    case SERVICE_RUNNING:       return "RUNNING";
    default:                    return "OTHER";
    }
}

static int stop_watch(const char *name, DWORD limit_ms)
{
    SC_HANDLE scm = NULL, svc = NULL;
    SERVICE_STATUS st;
    SERVICE_STATUS_PROCESS sp;
    char seen[2048], why[256];
    size_t used = 0;
    DWORD need, last_state = 0, last_cp = 0;
    ULONGLONG t0, now, deadline;
    int rc = 1;

    seen[0] = '\0';
    scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT);
    if (scm)
        svc = OpenServiceA(scm, name, SERVICE_STOP | SERVICE_QUERY_STATUS |
                                          SERVICE_INTERROGATE);
    if (svc == NULL) {
        snprintf(why, sizeof why, "cannot open service %s (error %lu)", name,
                 GetLastError());
        fail("stop-watch", why);
        goto out;
    }
    if (!ControlService(svc, SERVICE_CONTROL_INTERROGATE, &st) ||
        st.dwCurrentState != SERVICE_RUNNING) {
        snprintf(why, sizeof why, "INTERROGATE: error %lu, state %s",
                 GetLastError(), state_name(st.dwCurrentState));
        fail("INTERROGATE answers RUNNING", why);
    } else {
        ok("INTERROGATE answers RUNNING");
    }
    {
        DWORD want = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN |
                     SERVICE_ACCEPT_PRESHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE;

        if ((st.dwControlsAccepted & want) != want) {
            snprintf(why, sizeof why, "accepts 0x%lx, wanted 0x%lx",
                     (unsigned long)st.dwControlsAccepted,
                     (unsigned long)want);
            fail("RUNNING accepts STOP, SHUTDOWN, PRESHUTDOWN, PARAMCHANGE",
                 why);
        } else {
            ok("RUNNING accepts STOP, SHUTDOWN, PRESHUTDOWN and PARAMCHANGE");
        }
    }

    t0 = GetTickCount64();
    deadline = t0 + limit_ms;
    if (!ControlService(svc, SERVICE_CONTROL_STOP, &st)) {
        snprintf(why, sizeof why, "error %lu", GetLastError());
        fail("SERVICE_CONTROL_STOP", why);
        goto out;
    }
    /* The handler reports STOP_PENDING before it returns, so the status
     * that comes back with the control is already past RUNNING. */
    if (st.dwCurrentState != SERVICE_STOP_PENDING &&
        st.dwCurrentState != SERVICE_STOPPED) {
        snprintf(why, sizeof why, "ControlService returned state %s",
                 state_name(st.dwCurrentState));
        fail("STOP is answered with STOP_PENDING", why);
        goto out;
    }
    ok("STOP is answered with STOP_PENDING (reported before the handler "
       "returned)");
    for (;;) {
        if (!QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&sp,
                                  sizeof sp, &need)) {
            snprintf(why, sizeof why, "error %lu", GetLastError());
            fail("QueryServiceStatusEx", why);
            goto out;
        }
        now = GetTickCount64();
        if (sp.dwCurrentState != last_state || sp.dwCheckPoint != last_cp) {
            int k = snprintf(seen + used, sizeof seen - used, "%s%s(%lu)@%llums",
                             used ? " " : "", state_name(sp.dwCurrentState),
                             (unsigned long)sp.dwCheckPoint,
                             (unsigned long long)(now - t0));
            if (k > 0 && (size_t)k < sizeof seen - used)
                used += (size_t)k;
            if (sp.dwCurrentState == SERVICE_RUNNING) {
                fail("never RUNNING again after STOP", seen);
                goto out;
            }
            if (sp.dwCurrentState == SERVICE_STOP_PENDING &&
                last_state == SERVICE_STOP_PENDING &&
                sp.dwCheckPoint < last_cp) {
                fail("STOP_PENDING checkpoints only advance", seen);
                goto out;
            }
            last_state = sp.dwCurrentState;
            last_cp = sp.dwCheckPoint;
        }
        if (sp.dwCurrentState == SERVICE_STOPPED)
            break;
        if (now >= deadline) {
            fail("STOPPED in time", seen);
            goto out;
        }
        Sleep(5);
    }
    printf("     states: %s\n", seen);
    snprintf(why, sizeof why, "STOPPED %llu ms after STOP (limit %lu ms), "
                              "exit code %lu",
             (unsigned long long)(GetTickCount64() - t0),
             (unsigned long)limit_ms, (unsigned long)sp.dwWin32ExitCode);
    if (sp.dwWin32ExitCode != NO_ERROR) {
        fail("a clean stop", why);
        goto out;
    }
    ok(why);
    rc = 0;
out:
    if (svc)
        CloseServiceHandle(svc);
    if (scm)
        CloseServiceHandle(scm);
    return rc;
}

/* Print the DACL of a file or folder as SDDL (for msi.sh); with set, first
 * give it that one (protected), to see whether the file system keeps one. */
static int dacl(const char *path, const char *set)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    char *text = NULL;
    PACL acl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    DWORD rc;

    if (set != NULL) {
        if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(
                set, SDDL_REVISION_1, &sd, NULL) ||
            !GetSecurityDescriptorDacl(sd, &present, &acl, &defaulted)) {
            fprintf(stderr, "bad SDDL %s\n", set);
            return 2;
        }
        rc = SetNamedSecurityInfoA((char *)path, SE_FILE_OBJECT,
                                   DACL_SECURITY_INFORMATION |
                                       PROTECTED_DACL_SECURITY_INFORMATION,
                                   NULL, NULL, acl, NULL);
        LocalFree(sd);
        sd = NULL;
        if (rc != ERROR_SUCCESS) {
            fprintf(stderr, "SetNamedSecurityInfo %s: %lu\n", path,
                    (unsigned long)rc);
            return 1;
        }
    }

    rc = GetNamedSecurityInfoA(path, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION,
                               NULL, NULL, NULL, NULL, &sd);
    if (rc != ERROR_SUCCESS) {
        fprintf(stderr, "GetNamedSecurityInfo %s: %lu\n", path,
                (unsigned long)rc);
        return 1;
    }
    if (!ConvertSecurityDescriptorToStringSecurityDescriptorA(
            sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text, NULL)) {
        LocalFree(sd);
        return 1;
    }
    printf("%s\n", text);
    LocalFree(text);
    LocalFree(sd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "hold-reload") == 0)
        return hold_reload(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "stop-watch") == 0)
        return stop_watch(argv[2], (DWORD)strtoul(argv[3], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "msgtable") == 0)
        return msgtable(argv[2]);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "dacl") == 0)
        return dacl(argv[2], argc == 4 ? argv[3] : NULL);
    fprintf(stderr, "usage: test_service hold-reload PIPE SIGNAL_FILE\n"
                    "       test_service stop-watch NAME LIMIT_MS\n"
                    "       test_service msgtable PATH_TO_PIPEHUBD_EXE\n"
                    "       test_service dacl PATH [SDDL_TO_SET]\n");
    return 2;
}
