/* The service's life under the SCM.
 *
 * Two threads take part. The dispatcher thread (main's, inside
 * StartServiceCtrlDispatcherW) runs the control handler; the service thread
 * (the one the dispatcher creates for service_main) does all the work: it
 * loads the config, starts the server, reloads it, stops it. The handler
 * only records what was asked and wakes the service thread, so it returns
 * at once however long a drain takes, and the SCM is never kept waiting on
 * a control.
 *
 *   START_PENDING (checkpoints: config loaded, log set up, server starting)
 *     -> RUNNING once ph_server_start returns, i.e. the pipe is served
 *     -> STOP_PENDING (STOP, SHUTDOWN or PRESHUTDOWN), its checkpoint
 *        advanced by ph_server_stop's progress calls while clients drain
 *     -> STOPPED only after ph_server_stop has returned: every connection
 *        closed and drained, every worker joined.
 *
 * A start that fails reports STOPPED with a service-specific exit code
 * (svc.h) after writing the reason to the Event Log. */
#include "svc.h"

#include <stdio.h>
#include <string.h>

#include "daemon_config.h"
#include "eventlog.h"
#include "log.h"
#include "server.h"
#include "wintext.h"

/* Each START_PENDING step is quick (read a file, open a log, create a few
 * pipe instances); 10 s leaves room for a slow disk. */
#define START_WAIT_HINT_MS 10000
/* ph_server_stop calls back at least every 500 ms while it drains, and each
 * call advances the checkpoint; 5 s also covers joining the workers after
 * the last callback. */
#define STOP_WAIT_HINT_MS 5000

#define ACCEPTED_WHILE_RUNNING                                                \
    (SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN |                          \
     SERVICE_ACCEPT_PRESHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE)

static struct {
    char name[PH_SVC_NAME_MAX + 1];      /* --name: also the event source */
    wchar_t wname[PH_SVC_NAME_MAX + 1];
    const char *config;                  /* --config, or NULL: the default */
    SERVICE_STATUS_HANDLE handle;
    SRWLOCK lock;            /* guards status and orders SetServiceStatus */
    SERVICE_STATUS status;
    HANDLE wake;             /* auto-reset: the handler has recorded a control */
    volatile LONG stop;      /* STOP, SHUTDOWN or PRESHUTDOWN came */
    volatile LONG reloads;   /* PARAMCHANGEs not yet acted on */
    int exit_code;           /* the process's, once the dispatcher returns */
} svc = {.lock = SRWLOCK_INIT};

const char *ph_svc_exit_text(DWORD code)
{
    switch (code) {
    case PH_SVC_EXIT_CONFIG_INVALID:
        return "the config file has problems";
    case PH_SVC_EXIT_CONFIG_MISSING:
        return "the config file does not exist or cannot be read";
    case PH_SVC_EXIT_SERVER:
        return "the pipe server did not start";
    case PH_SVC_EXIT_SETUP:
        return "the service could not set itself up";
    default:
        return "unknown service-specific error";
    }
}

int ph_svc_name_ok(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > PH_SVC_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* Tell the SCM where the service is. Pending states advance the checkpoint
 * by one per call, so every call is progress the SCM can see; RUNNING and
 * STOPPED reset it. Controls are accepted only while RUNNING: during a
 * pending state the SCM would queue them behind a service that cannot act
 * on them yet. Called from both threads, hence the lock. */
static void report_locked(DWORD state, DWORD exit_code, DWORD wait_hint)
{
    SERVICE_STATUS *s = &svc.status;

    s->dwCurrentState = state;
    s->dwControlsAccepted = state == SERVICE_RUNNING ? ACCEPTED_WHILE_RUNNING
                                                     : 0;
    s->dwWin32ExitCode = exit_code == 0 ? NO_ERROR
                                        : ERROR_SERVICE_SPECIFIC_ERROR;
    s->dwServiceSpecificExitCode = exit_code;
    s->dwWaitHint = wait_hint;
    if (state == SERVICE_RUNNING || state == SERVICE_STOPPED)
        s->dwCheckPoint = 0;
    else
        s->dwCheckPoint++;
    SetServiceStatus(svc.handle, s);
}

static void report(DWORD state, DWORD exit_code, DWORD wait_hint)
{
    AcquireSRWLockExclusive(&svc.lock);
    report_locked(state, exit_code, wait_hint);
    ReleaseSRWLockExclusive(&svc.lock);
}

/* ph_server_stop's progress callback, on the service thread. */
static void on_stop_progress(void *ctx)
{
    report(SERVICE_STOP_PENDING, 0, STOP_WAIT_HINT_MS);
}

/* The control handler, on the dispatcher thread. It must return quickly:
 * the SCM waits for it, and a handler that drained here would hold up every
 * other control (and, at shutdown, the whole machine). */
static DWORD WINAPI on_control(DWORD control, DWORD event_type,
                               void *event_data, void *ctx)
{
    switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
    case SERVICE_CONTROL_PRESHUTDOWN:
        /* Report STOP_PENDING before waking the service thread. Woken
         * first, the service thread could drain and report STOPPED before
         * this report; the SCM would then see STOPPED followed by
         * STOP_PENDING from a process that is exiting, and wait for a
         * STOPPED that never comes again (error 1053 for whoever waits on
         * the stop). */
        AcquireSRWLockExclusive(&svc.lock);
        if (svc.status.dwCurrentState == SERVICE_RUNNING)
            report_locked(SERVICE_STOP_PENDING, 0, STOP_WAIT_HINT_MS);
        ReleaseSRWLockExclusive(&svc.lock);
        InterlockedExchange(&svc.stop, 1);
        SetEvent(svc.wake);
        return NO_ERROR;
    case SERVICE_CONTROL_PARAMCHANGE:
        /* Reloading reads a file and takes the server's locks: not for this
         * thread. */
        InterlockedIncrement(&svc.reloads);
        SetEvent(svc.wake);
        return NO_ERROR;
    case SERVICE_CONTROL_INTERROGATE:
        /* Answer with the current status, checkpoint unchanged (there is
         * none before the first report). */
        AcquireSRWLockExclusive(&svc.lock);
        if (svc.status.dwCurrentState != 0)
            SetServiceStatus(svc.handle, &svc.status);
        ReleaseSRWLockExclusive(&svc.lock);
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

/* Config problems at start go to the Event Log: the service has no
 * console, and the file log is named by the very file that failed. */
static void on_config_problem(void *ctx, const char *message)
{
    ph_log_event(PH_LOG_ERROR, "%s", message);
}

static void WINAPI service_main(DWORD argc, wchar_t **argv)
{
    char config_used[PH_PATH_MAX];
    ph_options opts;
    ph_server *srv = NULL;
    HANDLE events = NULL;
    DWORD fail_code;
    ph_err err;

    /* For an own-process service the SCM does not check this name, but
     * use the one it started us under where there is one. */
    svc.handle = RegisterServiceCtrlHandlerExW(
        argc > 0 && argv[0] != NULL ? argv[0] : svc.wname, on_control, NULL);
    if (svc.handle == NULL) {
        /* Nobody to report to: the SCM will see the process end. */
        svc.exit_code = PH_SVC_EXIT_SETUP;
        return;
    }
    svc.status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    report(SERVICE_START_PENDING, 0, START_WAIT_HINT_MS);

    /* A service has no console; until the config names a file, the Event
     * Log is the only place a failed start can be explained. */
    ph_log_console(0);
    events = ph_eventlog_open(svc.wname);
    if (events != NULL)
        ph_log_set_sink(ph_eventlog_sink, events);

    err = ph_daemon_config_load(svc.config, &opts, config_used,
                                sizeof config_used, on_config_problem, NULL);
    if (err != PH_OK) {
        fail_code = err == PH_ENOTFOUND ? PH_SVC_EXIT_CONFIG_MISSING
                                        : PH_SVC_EXIT_CONFIG_INVALID;
        ph_log_event(PH_LOG_ERROR,
                     "service %s refuses to start: %s (%s); run "
                     "`pipehubd check-config` on it",
                     svc.name, ph_svc_exit_text(fail_code),
                     svc.config ? svc.config : "the default config file");
        goto fail;
    }
    report(SERVICE_START_PENDING, 0, START_WAIT_HINT_MS);

    /* Level, file and whether the sink is used ([log] event_log); a reload
     * applies them again. A log file that cannot be opened is logged and is
     * no reason to refuse service. */
    (void)ph_log_configure(&opts);
    report(SERVICE_START_PENDING, 0, START_WAIT_HINT_MS);

    err = ph_server_start(&opts, config_used, &srv);
    if (err != PH_OK) {
        fail_code = PH_SVC_EXIT_SERVER;
        /* The server has logged why. */
        ph_log_event(PH_LOG_ERROR, "service %s refuses to start: %s on %s (%s)",
                     svc.name, ph_svc_exit_text(fail_code), opts.pipe_name,
                     ph_strerror(err));
        goto fail;
    }
    report(SERVICE_RUNNING, 0, 0);
    ph_log_event(PH_LOG_INFO,
                 "service %s started: serving %s, config %s (generation %u)",
                 svc.name, opts.pipe_name,
                 config_used[0] ? config_used : "built-in defaults",
                 (unsigned)ph_server_generation(srv));

    for (;;) {
        WaitForSingleObject(svc.wake, INFINITE);
        if (InterlockedCompareExchange(&svc.stop, 0, 0))
            break;
        /* PARAMCHANGEs that came together make one reload: it reads the
         * file as it is now. The server logs the outcome (each problem, or
         * the new generation) to the file log and the Event Log. */
        if (InterlockedExchange(&svc.reloads, 0) > 0)
            (void)ph_server_reload(srv);
    }

    /* The handler reported STOP_PENDING when it took the control. Should
     * one arrive while RUNNING was not yet reported (the SCM sends none,
     * since nothing is accepted before RUNNING), STOP_PENDING still comes
     * before STOPPED. */
    AcquireSRWLockExclusive(&svc.lock);
    if (svc.status.dwCurrentState == SERVICE_RUNNING)
        report_locked(SERVICE_STOP_PENDING, 0, STOP_WAIT_HINT_MS);
    ReleaseSRWLockExclusive(&svc.lock);
    ph_log_event(PH_LOG_INFO, "service %s stopping: draining clients",
                 svc.name);
    ph_server_stop(srv, on_stop_progress, NULL);
    ph_log_event(PH_LOG_INFO, "service %s stopped", svc.name);
    /* The SCM may end the process as soon as it sees STOPPED, so everything
     * is closed before that report. */
    ph_log_set_sink(NULL, NULL);
    ph_eventlog_close(events);
    ph_log_shutdown();
    svc.exit_code = 0;
    report(SERVICE_STOPPED, 0, 0);
    return;

fail:
    ph_log_set_sink(NULL, NULL);
    ph_eventlog_close(events);
    ph_log_shutdown();
    svc.exit_code = (int)fail_code;
    report(SERVICE_STOPPED, fail_code, 0);
}

int ph_svc_run(const char *name, const char *config)
{
    SERVICE_TABLE_ENTRYW table[2];

    if (!ph_svc_name_ok(name) ||
        ph_wintext_wide(name, svc.wname, PH_SVC_NAME_MAX + 1) != 0)
        return PH_SVC_EXIT_SETUP;
    strcpy(svc.name, name);
    svc.config = config;
    svc.wake = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (svc.wake == NULL)
        return PH_SVC_EXIT_SETUP;

    memset(table, 0, sizeof table);
    table[0].lpServiceName = svc.wname;
    table[0].lpServiceProc = service_main;
    /* Returns once the service has reported STOPPED and service_main has
     * returned. */
    if (!StartServiceCtrlDispatcherW(table)) {
        DWORD code = GetLastError();

        CloseHandle(svc.wake);
        if (code == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
            return -1;
        return PH_SVC_EXIT_SETUP;
    }
    CloseHandle(svc.wake);
    return svc.exit_code;
}
