/* Glue: start and stop one server; the counters behind sys.stats. */
#include "internal.h"

#include <string.h>

#include "log.h"
#include "platform.h"

#define PH_VERSION "0.1.0"
/* How long a stop waits for connections to drain before giving up on them.
 * Cancelled I/O completes promptly, so this is only a guard. */
#define DRAIN_TIMEOUT_MS 10000

/* Runs on a worker that holds a connection's lock, so it must not take
 * srv->lock (whose holders take connection locks): the list counts are read
 * without it, as single aligned words. */
static void collect_stats(void *ctx, ph_stats *s)
{
    ph_server *srv = ctx;
    unsigned i;

    s->uptime_ms = GetTickCount64() - srv->started_ms;
    s->connections_current = *(volatile unsigned *)&srv->open.count;
    s->connections_total = *(volatile uint64_t *)&srv->connections_total;
    s->pending_instances = *(volatile unsigned *)&srv->listening.count;
    for (i = 0; i < srv->nworkers; i++) {
        const ph_counters *k = &srv->workers[i].counters;
        s->frames_in += (uint64_t)k->frames_in;
        s->frames_out += (uint64_t)k->frames_out;
        s->bytes_in += (uint64_t)k->bytes_in;
        s->bytes_out += (uint64_t)k->bytes_out;
        s->errors_sent += (uint64_t)k->errors_sent;
    }
}

static void free_spares(ph_server *srv)
{
    ph_conn *c;

    while ((c = srv->spare.head) != NULL) {
        ph_list_remove(&srv->spare, c);
        ph_conn_free(c);
    }
}

ph_err ph_server_start(const ph_options *opts, ph_server **out)
{
    ph_server *srv = ph_alloc(sizeof *srv);
    ph_err err;

    if (srv == NULL)
        return PH_ENOMEM;
    memset(srv, 0, sizeof *srv);
    srv->opts = *opts;
    srv->router.max_frame = opts->max_frame_bytes;
    srv->router.server_version = PH_VERSION;
    srv->router.stats = collect_stats;
    srv->router.stats_ctx = srv;
    srv->started_ms = GetTickCount64();
    InitializeCriticalSection(&srv->lock);
    srv->drained = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (srv->drained == NULL) {
        err = PH_EINTERNAL;
        goto fail_event;
    }
    err = ph_iocp_start(srv);
    if (err != PH_OK)
        goto fail_iocp;
    err = ph_listener_create_first(srv);
    if (err != PH_OK)
        goto fail_listen;
    ph_log(PH_LOG_INFO, "pipehubd %s listening on %s (%u workers, %u pending "
           "instances, max frame %u bytes)", PH_VERSION, opts->pipe_name,
           srv->nworkers, opts->pending_instances, opts->max_frame_bytes);
    *out = srv;
    return PH_OK;

fail_listen:
    /* Instances that did start listening drain like at any stop. */
    ph_listener_stop(srv);
    WaitForSingleObject(srv->drained, DRAIN_TIMEOUT_MS);
    ph_iocp_stop(srv);
    free_spares(srv);
fail_iocp:
    CloseHandle(srv->drained);
fail_event:
    DeleteCriticalSection(&srv->lock);
    ph_free(srv);
    return err;
}

void ph_server_stop(ph_server *srv)
{
    unsigned open_count;

    ph_log(PH_LOG_INFO, "stopping: %u connections to close",
           srv->open.count);
    ph_listener_stop(srv);
    if (WaitForSingleObject(srv->drained, DRAIN_TIMEOUT_MS) != WAIT_OBJECT_0) {
        /* Freeing a connection with I/O still due would be a use after
         * free; leaking it at exit is the lesser harm. */
        EnterCriticalSection(&srv->lock);
        open_count = srv->open.count + srv->listening.count;
        LeaveCriticalSection(&srv->lock);
        ph_log(PH_LOG_ERROR, "%u connections did not drain in %u ms; "
               "leaving them", open_count, DRAIN_TIMEOUT_MS);
        return;
    }
    ph_iocp_stop(srv);
    free_spares(srv);
    CloseHandle(srv->drained);
    DeleteCriticalSection(&srv->lock);
    ph_log(PH_LOG_INFO, "stopped");
    ph_free(srv);
}
