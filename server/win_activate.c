/* Activation's Windows side (docs/PROTOCOL.md, "Activation"): start the
 * service the hub names, and watch it until the hub no longer waits for
 * it, saying at once when it stops or cannot start, with what the SCM
 * said. One short-lived thread per activation; activations are rare and
 * each is bounded by its deadline.
 *
 * Least privilege: the service is opened with SERVICE_START and
 * SERVICE_QUERY_STATUS only, and the SCM with SC_MANAGER_CONNECT. The hub
 * can start a service an administrator installed, and nothing else: no
 * route can name a program to run (docs/SECURITY.md, "Activation"). */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "platform.h"
#include "wintext.h"

#define POLL_MS 100

typedef struct watch {
    ph_server *srv;
    uint32_t id;
    char service[PH_SERVICE_NAME_MAX + 1];
} watch;

static void report(watch *w, const char *why)
{
    ph_server *srv = w->srv;

    EnterCriticalSection(&srv->hub_lock);
    ph_hub_activation_failed(srv->hub, w->id, why);
    ph_hub_flush(srv->hub);
    ph_server_hub_unlock(srv);
}

static int live(watch *w)
{
    ph_server *srv = w->srv;
    int on;

    if (*(volatile int *)&srv->stopping)
        return 0;
    EnterCriticalSection(&srv->hub_lock);
    on = ph_hub_activation_live(srv->hub, w->id);
    LeaveCriticalSection(&srv->hub_lock);
    return on;
}

/* What a stopped service's status says, in words. */
static void stopped_text(const SERVICE_STATUS_PROCESS *st, char *out,
                         size_t cap)
{
    char sys[200];

    if (st->dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR)
        snprintf(out, cap, "stopped, service-specific exit code %lu",
                 (unsigned long)st->dwServiceSpecificExitCode);
    else if (st->dwWin32ExitCode != 0)
        snprintf(out, cap, "stopped, exit code %lu (%s)",
                 (unsigned long)st->dwWin32ExitCode,
                 ph_wintext_syserr(st->dwWin32ExitCode, sys, sizeof sys));
    else
        snprintf(out, cap, "stopped (exit code 0) without registering");
}

static DWORD WINAPI watch_run(void *arg)
{
    watch *w = arg;
    SC_HANDLE scm, svc = NULL;
    SERVICE_STATUS_PROCESS st;
    char why[400], sys[200];
    DWORD n, e;

    scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT);
    if (scm != NULL)
        svc = OpenServiceA(scm, w->service,
                           SERVICE_START | SERVICE_QUERY_STATUS);
    if (svc == NULL) {
        e = GetLastError();
        snprintf(why, sizeof why, "cannot open it: %s (error %lu)",
                 ph_wintext_syserr(e, sys, sizeof sys), (unsigned long)e);
        report(w, why);
        goto out;
    }
    if (!StartServiceA(svc, 0, NULL) &&
        (e = GetLastError()) != ERROR_SERVICE_ALREADY_RUNNING) {
        /* A service that stops before it reports RUNNING fails the start
         * (Wine: 1053); its own exit code says more, when it has one. */
        memset(&st, 0, sizeof st);
        if (QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&st,
                                 sizeof st, &n) &&
            st.dwCurrentState == SERVICE_STOPPED && st.dwWin32ExitCode != 0)
            stopped_text(&st, why, sizeof why);
        else
            snprintf(why, sizeof why, "StartService failed: %s (error %lu)",
                     ph_wintext_syserr(e, sys, sizeof sys), (unsigned long)e);
        report(w, why);
        goto out;
    }
    ph_log(PH_LOG_INFO, "activation %u: started service '%s'",
           (unsigned)w->id, w->service);
    /* Until the hub stops waiting (the route registered, or its deadline
     * answered the callers): a service that stops before is reported as
     * it happens. */
    while (live(w)) {
        Sleep(POLL_MS);
        memset(&st, 0, sizeof st);
        if (!QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&st,
                                  sizeof st, &n)) {
            e = GetLastError();
            snprintf(why, sizeof why, "cannot query it: %s (error %lu)",
                     ph_wintext_syserr(e, sys, sizeof sys), (unsigned long)e);
            report(w, why);
            break;
        }
        if (st.dwCurrentState == SERVICE_STOPPED) {
            stopped_text(&st, why, sizeof why);
            report(w, why);
            break;
        }
    }
out:
    if (svc != NULL)
        CloseServiceHandle(svc);
    if (scm != NULL)
        CloseServiceHandle(scm);
    InterlockedDecrement(&w->srv->watches);
    ph_free(w);
    return 0;
}

/* ph_hub_io.activate, under hub_lock: hand the work to a thread of its own
 * (the SCM calls block). Failing that, the activation fails at once. */
void ph_activate_start(void *ctx, const char *service, uint32_t id)
{
    ph_server *srv = ctx;
    watch *w = ph_alloc(sizeof *w);
    HANDLE t = NULL;

    if (w != NULL) {
        w->srv = srv;
        w->id = id;
        snprintf(w->service, sizeof w->service, "%s", service);
        InterlockedIncrement(&srv->watches);
        t = CreateThread(NULL, 64 * 1024, watch_run, w,
                         STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
        if (t == NULL)
            InterlockedDecrement(&srv->watches);
    }
    if (t == NULL) {
        ph_free(w);
        /* Under hub_lock already: fail it directly. */
        ph_hub_activation_failed(srv->hub, id, "cannot start a thread to "
                                 "watch the service");
        return;
    }
    CloseHandle(t);
}
