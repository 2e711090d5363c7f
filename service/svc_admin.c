#include "svc_admin.h"

#include <windows.h>

#include <stdio.h>
#include <string.h>

#include "daemon_config.h"
#include "eventlog.h"
#include "svc.h"
#include "wintext.h"

/* Bounds on waiting for the service. The server's drain gives up after
 * 10 s, so a stop that takes 30 s is not going to finish. */
#define START_LIMIT_MS 30000
#define STOP_LIMIT_MS 30000
#define POLL_MS 100
/* Failure actions: restart 5 s, 10 s, then 30 s after a crash; the count
 * starts over after a day without one. */
#define RESET_PERIOD_S (24 * 60 * 60)
/* How long Windows waits at shutdown between PRESHUTDOWN and STOPPED: the
 * drain's own 10 s limit, plus joining the workers and the last log lines.
 * (The default, minutes on some versions, would hold up a shutdown for a
 * hung service that long.) */
#define PRESHUTDOWN_TIMEOUT_MS 20000

#define CMDLINE_MAX (3 * PH_PATH_MAX)
#define TEXT_MAX 512

/* One service, opened. */
typedef struct target {
    const char *name;
    wchar_t wname[PH_SVC_NAME_MAX + 1];
    SC_HANDLE scm;
    SC_HANDLE svc;
} target;

/* What the SCM holds about a service, and what its command line says. */
typedef struct svc_info {
    DWORD start_type;
    int delayed;                 /* delayed auto-start is on */
    char display[TEXT_MAX];
    char account[TEXT_MAX];
    char cmdline[CMDLINE_MAX];
    char recovery[TEXT_MAX];     /* the failure actions, in words */
    int ours;                    /* runs `pipehubd service --name NAME` */
    char exe[PH_PATH_MAX];       /* the command line's program */
    char config[PH_PATH_MAX];    /* its --config; "" for the default */
} svc_info;

/* ---- messages ----------------------------------------------------------- */

static void complain(const char *what, DWORD code)
{
    char text[TEXT_MAX];

    fprintf(stderr, "pipehubd: %s: %s\n", what,
            ph_wintext_syserr(code, text, sizeof text));
    /* The SCM answers "access denied" to anyone without admin rights; under
     * UAC an administrator's normal console has none either. */
    if (code == ERROR_ACCESS_DENIED)
        fprintf(stderr, "pipehubd: run this from an elevated prompt "
                        "(Run as administrator)\n");
}

static const char *state_name(DWORD state)
{
    switch (state) {
    case SERVICE_STOPPED:          return "STOPPED";
    case SERVICE_START_PENDING:    return "START_PENDING";
    case SERVICE_STOP_PENDING:     return "STOP_PENDING";
    case SERVICE_RUNNING:          return "RUNNING";
    case SERVICE_CONTINUE_PENDING: return "CONTINUE_PENDING";
    case SERVICE_PAUSE_PENDING:    return "PAUSE_PENDING";
    case SERVICE_PAUSED:           return "PAUSED";
    default:                       return "UNKNOWN";
    }
}

/* How the last run ended, or "" when it ended well. */
static const char *exit_text(const SERVICE_STATUS_PROCESS *st, char *out,
                             size_t cap)
{
    char sys[TEXT_MAX];

    out[0] = '\0';
    if (st->dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR)
        snprintf(out, cap, "service-specific error %lu: %s",
                 (unsigned long)st->dwServiceSpecificExitCode,
                 ph_svc_exit_text(st->dwServiceSpecificExitCode));
    /* "Not started since last boot" says nothing went wrong. */
    else if (st->dwWin32ExitCode != NO_ERROR &&
             st->dwWin32ExitCode != ERROR_SERVICE_NEVER_STARTED)
        snprintf(out, cap, "%s",
                 ph_wintext_syserr(st->dwWin32ExitCode, sys, sizeof sys));
    return out;
}

static void print_problem(void *ctx, const char *message)
{
    fprintf(stderr, "%s\n", message);
}

static int bad_name(const char *name)
{
    fprintf(stderr,
            "pipehubd: '%s' is not a usable service name (1 to %d of A-Z a-z "
            "0-9 - _ .)\n",
            name, PH_SVC_NAME_MAX);
    return 2;
}

/* ---- opening and querying ------------------------------------------------ */

/* Open the SCM and the service named in a with svc_access. Returns 0, or the
 * exit code after saying why not. */
static int open_target(const ph_svc_args *a, DWORD svc_access, target *t)
{
    char what[TEXT_MAX];
    DWORD code;

    memset(t, 0, sizeof *t);
    t->name = a->name;
    if (!ph_svc_name_ok(a->name) ||
        ph_wintext_wide(a->name, t->wname, PH_SVC_NAME_MAX + 1) != 0)
        return bad_name(a->name);
    t->scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (t->scm == NULL) {
        complain("cannot open the Service Control Manager", GetLastError());
        return 1;
    }
    t->svc = OpenServiceW(t->scm, t->wname, svc_access);
    if (t->svc == NULL) {
        code = GetLastError();
        if (code == ERROR_SERVICE_DOES_NOT_EXIST) {
            fprintf(stderr, "pipehubd: no service named %s is installed\n",
                    a->name);
        } else {
            snprintf(what, sizeof what, "cannot open service %s", a->name);
            complain(what, code);
        }
        CloseServiceHandle(t->scm);
        t->scm = NULL;
        return 1;
    }
    return 0;
}

static void close_target(target *t)
{
    if (t->svc != NULL)
        CloseServiceHandle(t->svc);
    if (t->scm != NULL)
        CloseServiceHandle(t->scm);
    t->svc = t->scm = NULL;
}

static int query(SC_HANDLE svc, SERVICE_STATUS_PROCESS *st)
{
    DWORD need;

    return QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)st,
                                sizeof *st, &need)
               ? 0
               : -1;
}

/* Poll until the state is want_a or want_b, or limit_ms pass. Returns 0 when
 * it got there (*st holds the status), 1 on timeout, -1 when the query
 * failed (GetLastError). */
static int wait_state(SC_HANDLE svc, DWORD want_a, DWORD want_b,
                      DWORD limit_ms, SERVICE_STATUS_PROCESS *st)
{
    ULONGLONG deadline = GetTickCount64() + limit_ms;

    for (;;) {
        if (query(svc, st) != 0)
            return -1;
        if (st->dwCurrentState == want_a || st->dwCurrentState == want_b)
            return 0;
        if (GetTickCount64() >= deadline)
            return 1;
        Sleep(POLL_MS);
    }
}

/* The failure actions in words: "restart after 5 s, 10 s, 30 s; the count
 * resets after 86400 s". */
static void describe_recovery(SC_HANDLE svc, char *out, size_t cap)
{
    union {
        SERVICE_FAILURE_ACTIONSW f;
        BYTE b[8192];
    } buf;
    DWORD need, i;
    size_t n;

    snprintf(out, cap, "none");
    if (!QueryServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, buf.b,
                              sizeof buf, &need) ||
        buf.f.cActions == 0)
        return;
    n = 0;
    for (i = 0; i < buf.f.cActions && n < cap; i++) {
        const SC_ACTION *act = &buf.f.lpsaActions[i];
        const char *what = act->Type == SC_ACTION_RESTART   ? "restart"
                           : act->Type == SC_ACTION_REBOOT  ? "reboot"
                           : act->Type == SC_ACTION_RUN_COMMAND ? "run a command"
                                                                : "nothing";
        int k = snprintf(out + n, cap - n, "%s%s after %lu s", i ? ", " : "",
                         what, (unsigned long)(act->Delay / 1000));
        if (k < 0)
            break;
        n += (size_t)k;
    }
    if (n < cap)
        snprintf(out + n, cap - n, "; the count resets after %lu s",
                 (unsigned long)buf.f.dwResetPeriod);
}

/* The service's configuration and command line. Needs SERVICE_QUERY_CONFIG.
 * Returns 0, or -1 (GetLastError). */

/* CommandLineToArgvW lives in shell32, which drags user32, gdi32 and (under
 * Wine) the font stack into the process: about 10 MB of resident memory for
 * a daemon that never draws anything. Only the admin verbs need it, so it is
 * loaded when they do. */
static LPWSTR *split_command_line(LPCWSTR cmd, int *argc)
{
    typedef LPWSTR *(WINAPI * split_fn)(LPCWSTR, int *);
    HMODULE shell32 = LoadLibraryW(L"shell32.dll");
    split_fn split;

    if (shell32 == NULL)
        return NULL;
    split = (split_fn)(void (*)(void))GetProcAddress(shell32,
                                                     "CommandLineToArgvW");
    /* shell32 stays loaded: the admin verb exits soon after. */
    return split ? split(cmd, argc) : NULL;
}

static int read_info(const target *t, svc_info *out)
{
    /* The SCM's answer is at most 8 KiB (documented). */
    union {
        QUERY_SERVICE_CONFIGW c;
        BYTE b[8192];
    } buf;
    SERVICE_DELAYED_AUTO_START_INFO delayed;
    wchar_t **argv;
    DWORD need;
    int argc, i, name_matches = 0;

    memset(out, 0, sizeof *out);
    if (!QueryServiceConfigW(t->svc, &buf.c, sizeof buf, &need))
        return -1;
    out->start_type = buf.c.dwStartType;
    if (buf.c.lpDisplayName)
        ph_wintext_narrow(buf.c.lpDisplayName, out->display,
                          sizeof out->display);
    if (buf.c.lpServiceStartName && buf.c.lpServiceStartName[0])
        ph_wintext_narrow(buf.c.lpServiceStartName, out->account,
                          sizeof out->account);
    else
        strcpy(out->account, "LocalSystem");
    ph_wintext_narrow(buf.c.lpBinaryPathName, out->cmdline,
                      sizeof out->cmdline);
    if (QueryServiceConfig2W(t->svc, SERVICE_CONFIG_DELAYED_AUTO_START_INFO,
                             (BYTE *)&delayed, sizeof delayed, &need))
        out->delayed = delayed.fDelayedAutostart != FALSE;

    describe_recovery(t->svc, out->recovery, sizeof out->recovery);

    /* Parse it the way the service's own C runtime will. */
    argv = split_command_line(buf.c.lpBinaryPathName, &argc);
    if (argv == NULL)
        return 0;
    if (argc >= 1)
        ph_wintext_narrow(argv[0], out->exe, sizeof out->exe);
    if (argc >= 2 && wcscmp(argv[1], L"service") == 0) {
        for (i = 2; i + 1 < argc; i += 2) {
            if (wcscmp(argv[i], L"--name") == 0)
                name_matches = _wcsicmp(argv[i + 1], t->wname) == 0;
            else if (wcscmp(argv[i], L"--config") == 0)
                ph_wintext_narrow(argv[i + 1], out->config,
                                  sizeof out->config);
        }
        out->ours = name_matches;
    }
    LocalFree(argv);
    return 0;
}

/* The file the service reads: its --config, else pipehub.ini beside its
 * program when that exists, else "" (built-in defaults). */
static void service_config(const svc_info *in, char *out, size_t cap)
{
    char *slash;
    size_t dir_len;

    out[0] = '\0';
    if (in->config[0]) {
        snprintf(out, cap, "%s", in->config);
        return;
    }
    slash = strrchr(in->exe, '\\');
    dir_len = slash ? (size_t)(slash - in->exe) + 1 : 0;
    if (dir_len + sizeof PH_DEFAULT_CONFIG_NAME > cap)
        return;
    memcpy(out, in->exe, dir_len);
    memcpy(out + dir_len, PH_DEFAULT_CONFIG_NAME,
           sizeof PH_DEFAULT_CONFIG_NAME);
    if (!ph_daemon_file_exists(out))
        out[0] = '\0';
}

/* Ask for a stop unless one is under way, and wait for STOPPED. Returns 0
 * when stopped; 1 after saying why not. */
static int stop_and_wait(const target *t, SERVICE_STATUS_PROCESS *st)
{
    SERVICE_STATUS ignored;
    char what[TEXT_MAX];
    DWORD code;
    int r;

    if (query(t->svc, st) != 0) {
        snprintf(what, sizeof what, "cannot query service %s", t->name);
        complain(what, GetLastError());
        return 1;
    }
    /* A service still starting takes no controls yet: let it finish. */
    if (st->dwCurrentState == SERVICE_START_PENDING)
        (void)wait_state(t->svc, SERVICE_RUNNING, SERVICE_STOPPED,
                         START_LIMIT_MS, st);
    if (st->dwCurrentState != SERVICE_STOPPED &&
        st->dwCurrentState != SERVICE_STOP_PENDING &&
        !ControlService(t->svc, SERVICE_CONTROL_STOP, &ignored)) {
        code = GetLastError();
        /* It stopped on its own meanwhile, or another stop got there. */
        if (code != ERROR_SERVICE_NOT_ACTIVE &&
            code != ERROR_SERVICE_CANNOT_ACCEPT_CTRL) {
            snprintf(what, sizeof what, "cannot stop service %s", t->name);
            complain(what, code);
            return 1;
        }
    }
    r = wait_state(t->svc, SERVICE_STOPPED, SERVICE_STOPPED, STOP_LIMIT_MS,
                   st);
    if (r < 0) {
        snprintf(what, sizeof what, "cannot query service %s", t->name);
        complain(what, GetLastError());
        return 1;
    }
    if (r > 0) {
        fprintf(stderr, "pipehubd: service %s is still %s after %d s\n",
                t->name, state_name(st->dwCurrentState), STOP_LIMIT_MS / 1000);
        return 1;
    }
    return 0;
}

/* ---- install ------------------------------------------------------------ */

/* Append s to buf (cap wide characters). -1 when it does not fit. */
static int wcat(wchar_t *buf, size_t cap, const wchar_t *s)
{
    size_t n = wcslen(buf), m = wcslen(s);

    if (n + m + 1 > cap)
        return -1;
    memcpy(buf + n, s, (m + 1) * sizeof *s);
    return 0;
}

int ph_admin_command_line(const wchar_t *exe, const wchar_t *name,
                          const wchar_t *config, wchar_t *out, size_t cap)
{
    out[0] = L'\0';
    if (wcat(out, cap, L"\"") || wcat(out, cap, exe) ||
        wcat(out, cap, L"\" service --name ") || wcat(out, cap, name) ||
        (config && (wcat(out, cap, L" --config \"") ||
                    wcat(out, cap, config) || wcat(out, cap, L"\""))))
        return -1;
    return 0;
}

int ph_admin_description(const wchar_t *name, const wchar_t *config,
                         wchar_t *out, size_t cap)
{
    out[0] = L'\0';
    if (wcat(out, cap, L"pipehub IPC hub: serves local clients on a named "
                       L"pipe. Settings: ") ||
        wcat(out, cap, config ? config
                              : L"pipehub.ini beside pipehubd.exe, else "
                                L"built-in defaults") ||
        wcat(out, cap, L". Reload: pipehubd reload --name ") ||
        wcat(out, cap, name))
        return -1;
    return 0;
}

int ph_admin_parse_start(const char *start, DWORD *type, int *delayed)
{
    *delayed = 0;
    if (start == NULL || strcmp(start, "auto") == 0) {
        *type = SERVICE_AUTO_START;
    } else if (strcmp(start, "delayed") == 0) {
        *type = SERVICE_AUTO_START;
        *delayed = 1;
    } else if (strcmp(start, "demand") == 0) {
        *type = SERVICE_DEMAND_START;
    } else {
        return -1;
    }
    return 0;
}

/* The settings that CreateService does not take. Returns 0, or -1 with the
 * step's name in *step (GetLastError). *delayed is cleared when the system
 * has no delayed auto-start (Wine 8 answers ERROR_INVALID_LEVEL): the
 * service then starts as plain auto, with a warning. */
int ph_admin_configure(SC_HANDLE svc, const wchar_t *description, int *delayed,
                       const char **step)
{
    SC_ACTION actions[3] = {
        {SC_ACTION_RESTART, 5000},
        {SC_ACTION_RESTART, 10000},
        {SC_ACTION_RESTART, 30000},
    };
    SERVICE_FAILURE_ACTIONSW failure;
    SERVICE_DESCRIPTIONW desc;
    SERVICE_PRESHUTDOWN_INFO pre;
    SERVICE_DELAYED_AUTO_START_INFO delay;

    desc.lpDescription = (wchar_t *)description;
    *step = "set the description";
    if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION, &desc))
        return -1;

    /* Restarts follow a crash (the process ending without STOPPED). A
     * start that fails on a bad config file reports STOPPED with an exit
     * code and is not restarted: a restart cannot fix the file. */
    memset(&failure, 0, sizeof failure);
    failure.dwResetPeriod = RESET_PERIOD_S;
    failure.cActions = 3;
    failure.lpsaActions = actions;
    *step = "set the failure actions";
    if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, &failure))
        return -1;

    pre.dwPreshutdownTimeout = PRESHUTDOWN_TIMEOUT_MS;
    *step = "set the preshutdown timeout";
    if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_PRESHUTDOWN_INFO, &pre))
        return -1;

    if (*delayed) {
        delay.fDelayedAutostart = TRUE;
        *step = "set delayed auto-start";
        if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_DELAYED_AUTO_START_INFO,
                                   &delay)) {
            if (GetLastError() != ERROR_INVALID_LEVEL)
                return -1;
            fprintf(stderr, "pipehubd: warning: this system has no delayed "
                            "auto-start; the service starts as auto\n");
            *delayed = 0;
        }
    }
    return 0;
}

int ph_admin_install(const ph_svc_args *a)
{
    wchar_t wname[PH_SVC_NAME_MAX + 1], exe[PH_PATH_MAX];
    wchar_t wconfig[PH_PATH_MAX], waccount[TEXT_MAX];
    wchar_t cmdline[CMDLINE_MAX], display[TEXT_MAX], description[CMDLINE_MAX];
    char config[PH_PATH_MAX], used[PH_PATH_MAX], what[TEXT_MAX];
    const char *step = NULL;
    const wchar_t *account = NULL;
    SC_HANDLE scm = NULL, svc = NULL;
    ph_options opts;
    DWORD start_type, code;
    ph_err err;
    int delayed, rc = 1;

    if (!ph_svc_name_ok(a->name) ||
        ph_wintext_wide(a->name, wname, PH_SVC_NAME_MAX + 1) != 0)
        return bad_name(a->name);
    if (ph_admin_parse_start(a->start, &start_type, &delayed) != 0) {
        fprintf(stderr, "pipehubd: --start wants auto, delayed or demand, "
                        "not '%s'\n", a->start);
        return 2;
    }
    if (ph_daemon_exe_path(exe, PH_PATH_MAX) != PH_OK) {
        fprintf(stderr, "pipehubd: cannot tell where pipehubd.exe is\n");
        return 1;
    }
    /* A service that cannot start is found out at the next boot; find it
     * out now. The path goes into the command line absolute, because a
     * service starts in system32. */
    config[0] = '\0';
    if (a->config != NULL) {
        if (!ph_daemon_file_exists(a->config)) {
            fprintf(stderr, "pipehubd: the config file %s does not exist\n",
                    a->config);
            return 2;
        }
        if (ph_daemon_full_path(a->config, config, sizeof config) != PH_OK ||
            ph_wintext_wide(config, wconfig, PH_PATH_MAX) != 0) {
            fprintf(stderr, "pipehubd: the config path %s is too long\n",
                    a->config);
            return 2;
        }
    }
    err = ph_daemon_config_load(a->config, &opts, used, sizeof used,
                                print_problem, NULL);
    if (err != PH_OK) {
        fprintf(stderr, "pipehubd: not installing %s: fix the config file "
                        "first\n", a->name);
        return 2;
    }
    if (a->account != NULL && _stricmp(a->account, "LocalSystem") != 0) {
        if (ph_wintext_wide(a->account, waccount, TEXT_MAX) != 0) {
            fprintf(stderr, "pipehubd: --account %s is too long\n",
                    a->account);
            return 2;
        }
        account = waccount;
    }

    display[0] = L'\0';
    if (ph_admin_command_line(exe, wname, config[0] ? wconfig : NULL, cmdline,
                              CMDLINE_MAX) != 0 ||
        wcat(display, TEXT_MAX, L"pipehub (") ||
        wcat(display, TEXT_MAX, wname) || wcat(display, TEXT_MAX, L")") ||
        ph_admin_description(wname, config[0] ? wconfig : NULL, description,
                             CMDLINE_MAX) != 0) {
        fprintf(stderr, "pipehubd: the service's command line is too long\n");
        return 2;
    }

    scm = OpenSCManagerW(NULL, NULL,
                         SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE);
    if (scm == NULL) {
        complain("cannot open the Service Control Manager to install a "
                 "service", GetLastError());
        goto out;
    }
    svc = CreateServiceW(scm, wname, display, SERVICE_ALL_ACCESS,
                         SERVICE_WIN32_OWN_PROCESS, start_type,
                         SERVICE_ERROR_NORMAL, cmdline, NULL, NULL, NULL,
                         account, NULL);
    if (svc == NULL) {
        code = GetLastError();
        switch (code) {
        case ERROR_SERVICE_EXISTS:
            fprintf(stderr, "pipehubd: a service named %s already exists; "
                            "pick another --name or uninstall it first\n",
                    a->name);
            break;
        case ERROR_DUPLICATE_SERVICE_NAME:
            fprintf(stderr, "pipehubd: another service already has the "
                            "display name \"pipehub (%s)\"\n", a->name);
            break;
        case ERROR_SERVICE_MARKED_FOR_DELETE:
            fprintf(stderr, "pipehubd: service %s is still being removed; "
                            "close programs that hold it open (such as "
                            "services.msc) and try again\n", a->name);
            break;
        case ERROR_INVALID_SERVICE_ACCOUNT:
            fprintf(stderr, "pipehubd: the account %s does not exist\n",
                    a->account ? a->account : "LocalSystem");
            break;
        default:
            snprintf(what, sizeof what, "cannot create service %s", a->name);
            complain(what, code);
            break;
        }
        goto out;
    }
    if (ph_admin_configure(svc, description, &delayed, &step) != 0) {
        snprintf(what, sizeof what, "cannot %s of service %s", step, a->name);
        complain(what, GetLastError());
        goto fail;
    }
    err = ph_eventlog_register(wname, exe);
    if (err != PH_OK) {
        fprintf(stderr, "pipehubd: cannot register the event source %s: %s\n",
                a->name, ph_strerror(err));
        goto fail;
    }

    printf("installed service %s (\"pipehub (%s)\")\n", a->name, a->name);
    printf("  start: %s, account: %s, event source: %s\n",
           delayed ? "delayed" : start_type == SERVICE_AUTO_START ? "auto"
                                                                  : "demand",
           a->account ? a->account : "LocalSystem", a->name);
    printf("  config: %s\n",
           config[0] ? config
                     : used[0] ? used
                               : "pipehub.ini beside pipehubd.exe (absent "
                                 "now: built-in defaults)");
    printf("  serves: %s\n", opts.pipe_name);
    printf("start it with: pipehubd start --name %s\n", a->name);
    rc = 0;
    goto out;

fail:
    /* Undo: a half-configured service would surprise whoever finds it. */
    DeleteService(svc);
out:
    if (svc != NULL)
        CloseServiceHandle(svc);
    if (scm != NULL)
        CloseServiceHandle(scm);
    return rc;
}

/* ---- uninstall ---------------------------------------------------------- */

int ph_admin_uninstall(const ph_svc_args *a)
{
    SERVICE_STATUS_PROCESS st;
    char what[TEXT_MAX];
    svc_info info;
    target t;
    DWORD code;
    ph_err err;
    int rc;

    rc = open_target(a, SERVICE_STOP | SERVICE_QUERY_STATUS |
                            SERVICE_QUERY_CONFIG | DELETE, &t);
    if (rc != 0)
        return rc;
    rc = 1;
    if (read_info(&t, &info) != 0) {
        snprintf(what, sizeof what, "cannot read the configuration of "
                                    "service %s", a->name);
        complain(what, GetLastError());
        goto out;
    }
    /* Only ever remove what install made. */
    if (!info.ours) {
        fprintf(stderr, "pipehubd: service %s does not run `pipehubd "
                        "service --name %s` (its command line is %s); not "
                        "removing it\n", a->name, a->name, info.cmdline);
        goto out;
    }
    if (stop_and_wait(&t, &st) != 0) {
        fprintf(stderr, "pipehubd: not removing service %s while it runs\n",
                a->name);
        goto out;
    }
    if (!DeleteService(t.svc)) {
        code = GetLastError();
        if (code != ERROR_SERVICE_MARKED_FOR_DELETE) {
            snprintf(what, sizeof what, "cannot delete service %s", a->name);
            complain(what, code);
            goto out;
        }
    }
    err = ph_eventlog_unregister(t.wname);
    if (err != PH_OK && err != PH_ENOTFOUND) {
        fprintf(stderr, "pipehubd: removed service %s, but not its event "
                        "source: %s\n", a->name, ph_strerror(err));
        goto out;
    }
    printf("removed service %s and its event source\n", a->name);
    rc = 0;
out:
    close_target(&t);
    return rc;
}

/* ---- start, stop -------------------------------------------------------- */

/* After a start that failed on the config file: the same problems the
 * service wrote to the Event Log, here in the console. */
static void print_service_config_problems(const target *t)
{
    char config[PH_PATH_MAX], used[PH_PATH_MAX];
    ph_options opts;
    svc_info info;

    if (read_info(t, &info) != 0 || !info.ours)
        return;
    service_config(&info, config, sizeof config);
    if (config[0] == '\0')
        return;
    fprintf(stderr, "pipehubd: the problems in %s:\n", config);
    (void)ph_daemon_config_load(config, &opts, used, sizeof used,
                                print_problem, NULL);
}

int ph_admin_start(const ph_svc_args *a)
{
    SERVICE_STATUS_PROCESS st;
    char what[TEXT_MAX], why[TEXT_MAX];
    ULONGLONG t0;
    target t;
    DWORD code;
    int rc, r;

    rc = open_target(a, SERVICE_START | SERVICE_QUERY_STATUS |
                            SERVICE_QUERY_CONFIG, &t);
    if (rc != 0)
        return rc;
    rc = 1;
    t0 = GetTickCount64();
    if (!StartServiceW(t.svc, 0, NULL)) {
        code = GetLastError();
        if (code != ERROR_SERVICE_ALREADY_RUNNING) {
            snprintf(what, sizeof what, "cannot start service %s", a->name);
            complain(what, code);
            /* The service may have got as far as reporting why. */
            if (query(t.svc, &st) == 0 && exit_text(&st, why, sizeof why)[0])
                fprintf(stderr, "pipehubd: service %s: %s\n", a->name, why);
            goto out;
        }
        printf("service %s is already running\n", a->name);
    }
    r = wait_state(t.svc, SERVICE_RUNNING, SERVICE_STOPPED, START_LIMIT_MS,
                   &st);
    if (r < 0) {
        snprintf(what, sizeof what, "cannot query service %s", a->name);
        complain(what, GetLastError());
    } else if (r > 0) {
        fprintf(stderr, "pipehubd: service %s is still %s after %d s\n",
                a->name, state_name(st.dwCurrentState), START_LIMIT_MS / 1000);
    } else if (st.dwCurrentState == SERVICE_STOPPED) {
        fprintf(stderr, "pipehubd: service %s stopped instead of starting: "
                        "%s; the Event Log (Application, source %s) says "
                        "why\n",
                a->name,
                exit_text(&st, why, sizeof why)[0] ? why : "no error code",
                a->name);
        if (st.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR &&
            (st.dwServiceSpecificExitCode == PH_SVC_EXIT_CONFIG_INVALID ||
             st.dwServiceSpecificExitCode == PH_SVC_EXIT_CONFIG_MISSING))
            print_service_config_problems(&t);
    } else {
        printf("%s: RUNNING (pid %lu) after %llu ms\n", a->name,
               (unsigned long)st.dwProcessId,
               (unsigned long long)(GetTickCount64() - t0));
        rc = 0;
    }
out:
    close_target(&t);
    return rc;
}

int ph_admin_stop(const ph_svc_args *a)
{
    SERVICE_STATUS_PROCESS st;
    char what[TEXT_MAX], why[TEXT_MAX];
    ULONGLONG t0;
    target t;
    int rc;

    rc = open_target(a, SERVICE_STOP | SERVICE_QUERY_STATUS, &t);
    if (rc != 0)
        return rc;
    rc = 1;
    if (query(t.svc, &st) != 0) {
        snprintf(what, sizeof what, "cannot query service %s", a->name);
        complain(what, GetLastError());
        goto out;
    }
    if (st.dwCurrentState == SERVICE_STOPPED) {
        printf("service %s is not running\n", a->name);
        rc = 0;
        goto out;
    }
    t0 = GetTickCount64();
    if (stop_and_wait(&t, &st) != 0)
        goto out;
    printf("%s: STOPPED after %llu ms\n", a->name,
           (unsigned long long)(GetTickCount64() - t0));
    if (exit_text(&st, why, sizeof why)[0])
        printf("  exit: %s\n", why);
    rc = 0;
out:
    close_target(&t);
    return rc;
}

/* ---- status, reload ----------------------------------------------------- */

int ph_admin_status(const ph_svc_args *a)
{
    SERVICE_STATUS_PROCESS st;
    char what[TEXT_MAX], why[TEXT_MAX], config[PH_PATH_MAX];
    char used[PH_PATH_MAX];
    ph_options opts;
    svc_info info;
    target t;
    int rc;

    rc = open_target(a, SERVICE_QUERY_STATUS | SERVICE_QUERY_CONFIG, &t);
    if (rc != 0)
        return rc;
    rc = 1;
    if (query(t.svc, &st) != 0 || read_info(&t, &info) != 0) {
        snprintf(what, sizeof what, "cannot query service %s", a->name);
        complain(what, GetLastError());
        goto out;
    }
    printf("service: %s (\"%s\")\n", a->name, info.display);
    printf("state: %s\n", state_name(st.dwCurrentState));
    if (st.dwProcessId != 0)
        printf("pid: %lu\n", (unsigned long)st.dwProcessId);
    else
        printf("pid: -\n");
    if (exit_text(&st, why, sizeof why)[0])
        printf("last exit: %s\n", why);

    /* The pipe is the config file's: what a start would serve now. (A
     * running service keeps the pipe it started with; pipe_name needs a
     * restart.) */
    if (!info.ours) {
        printf("pipe: unknown (the service does not run `pipehubd service "
               "--name %s`)\n", a->name);
    } else {
        service_config(&info, config, sizeof config);
        if (ph_daemon_config_load(config[0] ? config : NULL, &opts, used,
                                  sizeof used, NULL, NULL) == PH_OK)
            printf("pipe: %s\n", opts.pipe_name);
        else
            printf("pipe: unknown (the config file has problems: run "
                   "pipehubd check-config \"%s\")\n", config);
        printf("config: %s\n", config[0] ? config : "built-in defaults (no "
                                                    "pipehub.ini beside "
                                                    "pipehubd.exe)");
    }
    printf("start: %s\n",
           info.start_type == SERVICE_AUTO_START
               ? (info.delayed ? "delayed" : "auto")
               : info.start_type == SERVICE_DEMAND_START ? "demand"
               : info.start_type == SERVICE_DISABLED     ? "disabled"
                                                         : "boot/system");
    printf("account: %s\n", info.account);
    printf("on failure: %s\n", info.recovery);
    printf("command line: %s\n", info.cmdline);
    rc = 0;
out:
    close_target(&t);
    return rc;
}

int ph_admin_reload(const ph_svc_args *a)
{
    SERVICE_STATUS_PROCESS st;
    SERVICE_STATUS ignored;
    char what[TEXT_MAX], config[PH_PATH_MAX], used[PH_PATH_MAX];
    ph_options opts;
    svc_info info;
    target t;
    int rc, problems = 0;

    config[0] = '\0';
    /* PARAMCHANGE needs SERVICE_PAUSE_CONTINUE access. */
    rc = open_target(a, SERVICE_PAUSE_CONTINUE | SERVICE_QUERY_STATUS |
                            SERVICE_QUERY_CONFIG, &t);
    if (rc != 0)
        return rc;
    rc = 1;
    if (query(t.svc, &st) != 0 || read_info(&t, &info) != 0) {
        snprintf(what, sizeof what, "cannot query service %s", a->name);
        complain(what, GetLastError());
        goto out;
    }
    if (st.dwCurrentState != SERVICE_RUNNING) {
        fprintf(stderr, "pipehubd: service %s is %s, not RUNNING: nothing to "
                        "reload\n", a->name, state_name(st.dwCurrentState));
        goto out;
    }
    /* The service's answer goes to its logs only; check the file here too,
     * so whoever asked sees the problems at once. */
    if (info.ours) {
        service_config(&info, config, sizeof config);
        if (config[0] == '\0')
            printf("%s: no config file (built-in defaults): nothing "
                   "will change\n", a->name);
        else if (ph_daemon_config_load(config, &opts, used, sizeof used,
                                       print_problem, NULL) != PH_OK)
            problems = 1;
    }
    if (!ControlService(t.svc, SERVICE_CONTROL_PARAMCHANGE, &ignored)) {
        snprintf(what, sizeof what, "cannot send a reload to service %s",
                 a->name);
        complain(what, GetLastError());
        goto out;
    }
    if (problems) {
        fprintf(stderr, "pipehubd: reload sent, but %s has problems (above): "
                        "service %s logs them and keeps its current "
                        "settings\n", config, a->name);
        rc = 2;
        goto out;
    }
    printf("%s: reload sent; the service logs the outcome\n", a->name);
    rc = 0;
out:
    close_target(&t);
    return rc;
}
