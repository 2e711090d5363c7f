/* The completion port and the worker threads that drain it. */
#include "internal.h"

#include <string.h>

#include "log.h"
#include "platform.h"
#include "win_error.h"

/* Idle connections are closed by whichever worker first sees the check due,
 * rather than by a timer thread of their own (a thread costs ~1 MiB under
 * Wine). The first worker also wakes once per check period when there is no
 * traffic, so the check runs on an idle server too. */
static void maybe_check_idle(ph_server *srv)
{
    LONG64 due = srv->next_idle_check, now = (LONG64)GetTickCount64();

    if (now < due || InterlockedCompareExchange64(&srv->next_idle_check,
                                                  now + PH_IDLE_CHECK_MS,
                                                  due) != due)
        return;
    ph_listener_check(srv);
}

/* The hub's request deadlines, checked the same way at a finer grain. */
static void maybe_tick_hub(ph_server *srv)
{
    LONG64 due = srv->next_hub_tick, now = (LONG64)GetTickCount64();

    if (now < due || InterlockedCompareExchange64(&srv->next_hub_tick,
                                                  now + PH_HUB_TICK_MS,
                                                  due) != due)
        return;
    ph_server_hub_tick(srv);
}

static DWORD WINAPI worker_main(LPVOID arg)
{
    ph_worker *w = arg;
    ph_server *srv = w->srv;
    DWORD wait = w == &srv->workers[0] ? PH_HUB_TICK_MS : INFINITE;
    OVERLAPPED *ov;
    ULONG_PTR key;
    DWORD bytes, error;
    BOOL ok;

    ph_conn_thread_init(&w->counters);
    for (;;) {
        ok = GetQueuedCompletionStatus(srv->port, &bytes, &key, &ov, wait);
        maybe_check_idle(srv);
        maybe_tick_hub(srv);
        if (ov == NULL) {
            if (key == PH_KEY_QUIT)
                return 0;
            if (!ok && GetLastError() == WAIT_TIMEOUT)
                continue;
            /* The port itself failed: nothing more can be served. */
            ph_log(PH_LOG_ERROR, "completion port failed (error %lu)",
                   GetLastError());
            return 1;
        }
        error = ok ? 0 : GetLastError();
        ph_conn_complete(w, CONTAINING_RECORD(ov, ph_op, ov), bytes, error);
    }
}

ph_err ph_iocp_start(ph_server *srv)
{
    SYSTEM_INFO si;
    unsigned n = srv->opts.worker_threads, i;

    if (n == 0) {
        /* Two per CPU, at least four: a worker spends most of its time
         * waiting on the kernel (under Wine, on wineserver), and with more
         * of them in flight 16 concurrent clients went from 9.1k (2
         * workers) to 10.9k (4) and 13.3k (8) round trips/s here. More is
         * not free under Wine, where each thread costs ~1 MiB resident:
         * 4 keeps 1000 idle clients under 15 MB, 8 does not
         * (docs/PERFORMANCE.md). */
        GetSystemInfo(&si);
        n = 2 * (si.dwNumberOfProcessors ? si.dwNumberOfProcessors : 1);
        if (n < 4)
            n = 4;
    }
    /* WaitForMultipleObjects joins at most 64 threads at once. */
    if (n > MAXIMUM_WAIT_OBJECTS)
        n = MAXIMUM_WAIT_OBJECTS;
    srv->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, n);
    if (srv->port == NULL)
        return ph_win_err(GetLastError());
    srv->workers = ph_alloc(n * sizeof *srv->workers);
    if (srv->workers == NULL)
        goto fail;
    memset(srv->workers, 0, n * sizeof *srv->workers);
    for (i = 0; i < n; i++) {
        srv->workers[i].srv = srv;
        srv->workers[i].thread =
            CreateThread(NULL, PH_WORKER_STACK, worker_main, &srv->workers[i],
                         STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
        if (srv->workers[i].thread == NULL)
            break;
        srv->nworkers++;
    }
    if (srv->nworkers == n)
        return PH_OK;
    ph_iocp_stop(srv);
    return PH_EINTERNAL;
fail:
    CloseHandle(srv->port);
    srv->port = NULL;
    return PH_ENOMEM;
}

void ph_iocp_stop(ph_server *srv)
{
    HANDLE threads[MAXIMUM_WAIT_OBJECTS];
    unsigned i;

    for (i = 0; i < srv->nworkers; i++) {
        PostQueuedCompletionStatus(srv->port, 0, PH_KEY_QUIT, NULL);
        threads[i] = srv->workers[i].thread;
    }
    if (srv->nworkers)
        WaitForMultipleObjects(srv->nworkers, threads, TRUE, INFINITE);
    for (i = 0; i < srv->nworkers; i++)
        CloseHandle(threads[i]);
    srv->nworkers = 0;
    ph_free(srv->workers);
    srv->workers = NULL;
    CloseHandle(srv->port);
    srv->port = NULL;
}
