/* example_service_provider: a provider that runs as a Windows service, so a
 * route with activate_service in pipehubd's config can start it on demand:
 *   sc create phdemo start= demand binPath= "C:\...\service_provider.exe
 *                                  --pipe pipehub --route demo.svc"
 * Options (in the binary path; the hub passes none): --pipe NAME, --route
 * ROUTE, --reply TEXT (default "hello from service"), --delay-ms N (before
 * registering), --exit CODE (fail at once with that service-specific exit
 * code), --no-register (run, but never serve). */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipehub.h"

#define EXIT_HUB   1 /* service-specific: could not reach or lost the hub */
#define EXIT_USAGE 2 /* service-specific: bad options in the binary path */

static struct {
    const char *pipe, *route, *reply;
    unsigned long delay_ms;
    long exit_code; /* --exit, or -1 */
    int no_register;
} opt = {"pipehub", NULL, "hello from service", 0, -1, 0};

static SERVICE_STATUS_HANDLE handle;
static SERVICE_STATUS status = {.dwServiceType = SERVICE_WIN32_OWN_PROCESS,
                                .dwControlsAccepted = SERVICE_ACCEPT_STOP};
static HANDLE stop_event;

/* Only the service thread reports, so no two reports can cross: a
 * STOP_PENDING from the handler could otherwise land after our own STOPPED
 * (the hub went away), and the SCM would wait for a STOPPED that never
 * comes. */
static void report(DWORD state, DWORD win32_exit, DWORD specific_exit)
{
    status.dwCurrentState = state;
    status.dwWin32ExitCode = win32_exit;
    status.dwServiceSpecificExitCode = specific_exit;
    SetServiceStatus(handle, &status);
}

/* On the dispatcher thread: wake the service thread and return at once. */
static DWORD WINAPI on_control(DWORD control, DWORD type, void *data, void *ctx)
{
    if (control == SERVICE_CONTROL_STOP)
        SetEvent(stop_event);
    return NO_ERROR; /* only STOP is accepted; INTERROGATE needs nothing */
}

static void on_request(void *ctx, ph_request *req, const char *route,
                       const void *payload, size_t len, uint32_t caller)
{
    ph_request_reply(req, opt.reply, strlen(opt.reply));
}

/* Register and answer requests until STOP: 0, or EXIT_HUB. */
static DWORD serve(void)
{
    ph_client *c = NULL;
    ph_reply answer = {0};
    HANDLE wake[2];
    DWORD rc = EXIT_HUB, delay = opt.no_register ? INFINITE : opt.delay_ms;

    if (WaitForSingleObject(stop_event, delay) == WAIT_OBJECT_0)
        return 0; /* STOP came first; with --no-register, nothing else can */
    if (ph_client_connect(opt.pipe, 10000, &c) != PH_OK ||
        ph_client_register(c, opt.route, PH_REGISTER_SHARED, on_request, NULL,
                           10000, &answer) != PH_OK)
        goto out;
    /* The requests the hub held for us may have come with its answer: poll
     * once, then sleep until STOP or until the client has work. */
    wake[0] = stop_event;
    wake[1] = ph_client_waitable(c);
    do {
        if (ph_client_poll(c, 0, NULL) != PH_OK)
            goto out; /* the hub went away */
    } while (WaitForMultipleObjects(2, wake, FALSE, INFINITE) != WAIT_OBJECT_0);
    report(SERVICE_STOP_PENDING, NO_ERROR, 0); /* the close may take a while */
    rc = 0;
out:
    ph_reply_free(&answer);
    ph_client_close(c); /* the hub drops our route with the connection */
    return rc;
}

static void WINAPI service_main(DWORD argc, wchar_t **argv)
{
    DWORD code;

    if ((handle = RegisterServiceCtrlHandlerExW(L"", on_control, NULL)) == NULL)
        return;
    if (opt.exit_code >= 0) { /* --exit, or bad options: fail at once */
        report(SERVICE_STOPPED, ERROR_SERVICE_SPECIFIC_ERROR, opt.exit_code);
        return;
    }
    stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);
    report(SERVICE_RUNNING, NO_ERROR, 0);
    code = serve();
    report(SERVICE_STOPPED, code ? ERROR_SERVICE_SPECIFIC_ERROR : 0, code);
}

static int parse(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--no-register") == 0)
            opt.no_register = 1;
        else if (++i >= argc) /* every other option takes a value */
            return 0;
        else if (strcmp(a, "--pipe") == 0)
            opt.pipe = argv[i];
        else if (strcmp(a, "--route") == 0)
            opt.route = argv[i];
        else if (strcmp(a, "--reply") == 0)
            opt.reply = argv[i];
        else if (strcmp(a, "--delay-ms") == 0)
            opt.delay_ms = strtoul(argv[i], NULL, 10);
        else if (strcmp(a, "--exit") == 0)
            opt.exit_code = strtol(argv[i], NULL, 10);
        else
            return 0;
    }
    return opt.route != NULL || opt.exit_code >= 0;
}

int main(int argc, char **argv)
{
    /* A service in a process of its own needs no name here (nor above). */
    SERVICE_TABLE_ENTRYW table[] = {{L"", service_main}, {NULL, NULL}};

    if (!parse(argc, argv))
        opt.exit_code = EXIT_USAGE;
    if (StartServiceCtrlDispatcherW(table))
        return 0;
    if (GetLastError() != ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
        return 1;
    fprintf(stderr,
            "meant to run as a service: sc create NAME start= demand "
            "binPath= \"%s --pipe PIPE --route ROUTE [options]\"\n",
            argv[0]);
    return 2;
}
