/* Glue: start, stop and reload one server; the counters behind sys.stats. */
#include "internal.h"

#include <psapi.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "platform.h"
#include "wintime.h"

/* A stop first lets every client read its sys.shutdown EVENT; a client that
 * does not read within this grace is then cut off by cancelling its I/O. */
#define STOP_GRACE_MS 2000
/* After the cut-off, cancelled I/O completes promptly; this is only a guard
 * against a connection that never drains. */
#define DRAIN_TIMEOUT_MS 10000
#define PROGRESS_MS 250

static void add_counters(ph_stats *s, const ph_counters *k)
{
    s->frames_in += (uint64_t)k->frames_in;
    s->frames_out += (uint64_t)k->frames_out;
    s->bytes_in += (uint64_t)k->bytes_in;
    s->bytes_out += (uint64_t)k->bytes_out;
    s->errors_sent += (uint64_t)k->errors_sent;
}

/* Runs on a worker that holds a connection's lock, so it must not take
 * srv->lock (whose holders take connection locks): the list counts are read
 * without it, as single aligned words. */
static void collect_stats(void *ctx, ph_stats *s)
{
    ph_server *srv = ctx;
    const ph_generation *g = __atomic_load_n(&srv->live, __ATOMIC_ACQUIRE);
    unsigned i;

    s->uptime_ms = GetTickCount64() - srv->started_ms;
    s->connections_current = *(volatile unsigned *)&srv->open.count;
    s->connections_total = *(volatile uint64_t *)&srv->connections_total;
    s->pending_instances = *(volatile unsigned *)&srv->listening.count;
    s->config_generation = g->number;
    s->config_loaded_ms = g->loaded_ms;
    ph_hub_stats h;

    for (i = 0; i < srv->nworkers; i++)
        add_counters(s, &srv->workers[i].counters);
    add_counters(s, &srv->control);
    /* Taking hub_lock here keeps the lock order: the caller holds only its
     * own connection's lock (and maybe hub_lock already: it is recursive). */
    EnterCriticalSection(&srv->hub_lock);
    ph_hub_get_stats(srv->hub, &h);
    LeaveCriticalSection(&srv->hub_lock);
    ph_stats_add_hub(s, &h);
    s->limit_max_connections = (uint64_t)srv->limits.max_connections;
    s->limit_first_frame_timeout = (uint64_t)srv->limits.first_frame_timeout;
    s->limit_frame_timeout = (uint64_t)srv->limits.frame_timeout;
    s->limit_send_stall = (uint64_t)srv->limits.send_stall;
    s->limit_max_queued_bytes = (uint64_t)srv->limits.max_queued_bytes;
    s->lanes_current = (uint64_t)srv->lanes_current;
    s->lane_bytes_in = (uint64_t)srv->lane_bytes_in;
    s->lane_bytes_out = (uint64_t)srv->lane_bytes_out;
    s->lane_bytes_direct = (uint64_t)srv->lane_bytes_direct;
}

/* sys.config: the live settings, row by row from the options table. The
 * log file's path is left out: it says nothing about limits and is the
 * admin's business. */
static void write_config(void *ctx, ph_json *j)
{
    const ph_options *o = ph_server_live(ctx);
    const ph_option_def *d;
    char key[96], value[PH_SDDL_MAX + 16];
    uint32_t i;

    for (d = ph_option_defs; d->key != NULL; d++) {
        if (strcmp(d->section, "log") == 0 && strcmp(d->key, "file") == 0)
            continue;
        snprintf(key, sizeof key, "%s.%s", d->section, d->key);
        ph_option_format(d, o, value, sizeof value);
        ph_json_str(j, key, value, strlen(value));
    }
    for (i = 0; i < o->nroutes; i++) {
        snprintf(key, sizeof key, "route.%.60s.request_timeout_ms",
                 o->routes[i].name);
        snprintf(value, sizeof value, "%u",
                 (unsigned)o->routes[i].request_timeout_ms);
        ph_json_str(j, key, value, strlen(value));
    }
}

/* sys.lane, on the asking connection's worker with its lock held. */
static ph_err open_lane(void *ctx, ph_peer *peer, uint32_t ring,
                        ph_lane_offer *offer, char *why, size_t cap)
{
    (void)ctx;
    return ph_conn_lane_open(CONTAINING_RECORD(peer, ph_conn, peer), ring,
                             offer, why, cap);
}

static int lane_terms(void *ctx, uint32_t *max_bytes, uint32_t *threshold)
{
    const ph_options *o = ph_server_live(ctx);

    *max_bytes = o->lane_max_bytes;
    *threshold = o->lane_threshold_bytes;
    return o->lane_enabled != 0;
}

/* sys.process: what a soak test watches. Wine's GetProcessHandleCount
 * answers 0; there the handle values (small multiples of 4) are probed,
 * which takes a while, fine for a question asked now and then. */
static void collect_process(void *ctx, ph_process_info *p)
{
    PROCESS_MEMORY_COUNTERS_EX m;
    DWORD n = 0, flags;
    uintptr_t v;

    p->pid = GetCurrentProcessId();
    if (!GetProcessHandleCount(GetCurrentProcess(), &n) || n == 0) {
        for (v = 4; v < 0x20000; v += 4)
            if (GetHandleInformation((HANDLE)v, &flags))
                n++;
    }
    p->handles = n;
    memset(&m, 0, sizeof m);
    m.cb = sizeof m;
    if (GetProcessMemoryInfo(GetCurrentProcess(),
                             (PROCESS_MEMORY_COUNTERS *)&m, sizeof m)) {
        /* Wine leaves PrivateUsage 0; its PagefileUsage is the same
         * figure (committed private memory). */
        p->private_bytes = m.PrivateUsage ? m.PrivateUsage : m.PagefileUsage;
        p->working_set = m.WorkingSetSize;
    }
}

/* The [security] sddl string becomes the pipe's security descriptor. */
static ph_err make_security(ph_server *srv)
{
    srv->sa.nLength = sizeof srv->sa;
    srv->sa.bInheritHandle = FALSE;
    srv->sa.lpSecurityDescriptor = NULL;
    if (srv->opts.sddl[0] == '\0')
        return PH_OK; /* the system's default for the service's account */
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(
            srv->opts.sddl, SDDL_REVISION_1, &srv->sd, NULL)) {
        ph_log_event(PH_LOG_ERROR, "[security] sddl '%s' is not a valid "
                     "security descriptor (error %lu)", srv->opts.sddl,
                     GetLastError());
        return PH_EINVAL;
    }
    srv->sa.lpSecurityDescriptor = srv->sd;
    return PH_OK;
}

static ph_generation *new_generation(const ph_options *opts, uint32_t number)
{
    ph_generation *g = ph_alloc(sizeof *g);
    uint32_t i;

    if (g == NULL)
        return NULL;
    memset(g, 0, sizeof *g);
    g->opts = *opts;
    for (i = 0; i < opts->nroutes; i++) {
        const ph_route_section *r = &g->opts.routes[i];
        g->rules[i].name = r->name;
        g->rules[i].request_timeout_ms = r->request_timeout_ms;
        g->rules[i].call = r->call[0] ? r->call : NULL;
        g->rules[i].provide = r->provide[0] ? r->provide : NULL;
        g->rules[i].publish = r->publish[0] ? r->publish : NULL;
        g->rules[i].subscribe = r->subscribe[0] ? r->subscribe : NULL;
        g->rules[i].min_integrity = r->min_integrity;
        g->rules[i].activate_service =
            r->activate_service[0] ? r->activate_service : NULL;
        g->rules[i].activate_timeout_ms = r->activate_timeout_ms;
    }
    g->number = number;
    g->loaded_ms = ph_win_unix_ms();
    return g;
}

void ph_server_hub_limits(ph_server *srv, ph_generation *g,
                          ph_hub_limits *out)
{
    memset(out, 0, sizeof *out);
    out->send_queue_bytes = g->opts.send_queue_bytes;
    out->request_timeout_ms = g->opts.request_timeout_ms;
    out->max_inflight_per_client = g->opts.max_inflight_per_client;
    out->max_frame = g->opts.max_frame_bytes;
    out->rules = g->rules;
    out->nrules = g->opts.nroutes;
    out->max_connections_per_user = g->opts.max_connections_per_user;
    out->max_routes_per_client = g->opts.max_routes_per_client;
    out->max_subscriptions_per_client = g->opts.max_subscriptions_per_client;
}

void ph_server_hub_tick(ph_server *srv)
{
    EnterCriticalSection(&srv->hub_lock);
    ph_hub_tick(srv->hub);
    ph_hub_flush(srv->hub);
    ph_server_hub_unlock(srv);
}

static void free_spares(ph_server *srv)
{
    ph_conn *c;

    while ((c = srv->spare.head) != NULL) {
        ph_list_remove(&srv->spare, c);
        ph_conn_free(c);
    }
}

static void free_server(ph_server *srv)
{
    ph_generation *g, *older;

    /* Activation watchers see stopping within their poll and go (bounded,
     * as every wait). One still inside an SCM call (StartService can take
     * the service's whole start time) keeps using the hub and the server:
     * then all of it is left to the process's exit, not freed under it. */
    for (int i = 0; i < 100 && *(volatile LONG *)&srv->watches > 0; i++)
        Sleep(50);
    if (*(volatile LONG *)&srv->watches > 0) {
        ph_log(PH_LOG_WARN, "stop: %ld activation watcher(s) still in an SCM "
               "call after 5 s; the server is not freed",
               (long)srv->watches);
        return;
    }
    for (g = srv->live; g != NULL; g = older) {
        older = g->older;
        ph_free(g);
    }
    if (srv->sd != NULL)
        LocalFree(srv->sd);
    if (srv->drained != NULL)
        CloseHandle(srv->drained);
    /* Every connection has left the hub by now. */
    ph_hub_free(srv->hub);
    DeleteCriticalSection(&srv->hub_lock);
    DeleteCriticalSection(&srv->reload_lock);
    DeleteCriticalSection(&srv->lock);
    ph_free(srv);
}

/* Wait for the drained event, calling progress every PROGRESS_MS. */
static int wait_drained(ph_server *srv, DWORD ms, ph_progress_fn progress,
                        void *ctx)
{
    ULONGLONG end = GetTickCount64() + ms, now;

    for (;;) {
        now = GetTickCount64();
        if (now >= end)
            return 0;
        if (WaitForSingleObject(srv->drained,
                                (DWORD)(end - now < PROGRESS_MS ? end - now
                                                                : PROGRESS_MS)) ==
            WAIT_OBJECT_0)
            return 1;
        if (progress)
            progress(ctx);
    }
}

ph_err ph_server_start(const ph_options *opts, const char *config_path,
                       ph_server **out)
{
    ph_server *srv = ph_alloc(sizeof *srv);
    ph_hub_limits limits;
    ph_hub_io io;
    ph_err err;

    if (srv == NULL)
        return PH_ENOMEM;
    memset(srv, 0, sizeof *srv);
    srv->opts = *opts;
    snprintf(srv->config_path, sizeof srv->config_path, "%s",
             config_path ? config_path : "");
    srv->router.server_version = PH_VERSION;
    srv->router.stats = collect_stats;
    srv->router.stats_ctx = srv;
    srv->router.process = collect_process;
    srv->router.config = write_config;
    srv->router.lane = open_lane;
    srv->router.lane_terms = lane_terms;
    srv->started_ms = GetTickCount64();
    InitializeCriticalSection(&srv->lock);
    InitializeCriticalSection(&srv->reload_lock);
    InitializeCriticalSection(&srv->hub_lock);
    InitializeSRWLock(&srv->kick_lock);
    srv->live = new_generation(opts, 1);
    srv->drained = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (srv->live == NULL || srv->drained == NULL) {
        err = PH_ENOMEM;
        goto fail;
    }
    ph_server_hub_limits(srv, srv->live, &limits);
    io = ph_conn_hub_io;
    io.ctx = srv;
    io.activate = ph_activate_start;
    err = ph_hub_new(&io, &limits, &srv->hub);
    if (err != PH_OK)
        goto fail;
    err = make_security(srv);
    if (err != PH_OK)
        goto fail;
    err = ph_iocp_start(srv);
    if (err != PH_OK)
        goto fail;
    err = ph_listener_create_first(srv);
    if (err != PH_OK)
        goto fail_listen;
    ph_log_event(PH_LOG_INFO, "pipehubd %s listening on %s (%u workers, %u "
                 "pending instances, max frame %u bytes, config %s)",
                 PH_VERSION, opts->pipe_name, srv->nworkers,
                 opts->pending_instances, opts->max_frame_bytes,
                 srv->config_path[0] ? srv->config_path : "built-in defaults");
    *out = srv;
    return PH_OK;

fail_listen:
    /* Instances that did start listening drain like at any stop. */
    ph_listener_stop(srv, 1);
    WaitForSingleObject(srv->drained, DRAIN_TIMEOUT_MS);
    ph_iocp_stop(srv);
    free_spares(srv);
fail:
    free_server(srv);
    return err;
}

void ph_server_stop(ph_server *srv, ph_progress_fn progress, void *ctx)
{
    unsigned left;

    ph_log(PH_LOG_INFO, "stopping: %u connections to close",
           srv->open.count);
    ph_listener_stop(srv, 0);
    if (!wait_drained(srv, STOP_GRACE_MS, progress, ctx)) {
        ph_listener_stop(srv, 1);
        if (!wait_drained(srv, DRAIN_TIMEOUT_MS, progress, ctx)) {
            /* Freeing a connection with I/O still due would be a use after
             * free; leaving it at exit is the lesser harm. */
            EnterCriticalSection(&srv->lock);
            left = srv->open.count + srv->listening.count;
            LeaveCriticalSection(&srv->lock);
            ph_log_event(PH_LOG_ERROR, "%u connections did not drain in %u "
                         "ms; leaving them", left, DRAIN_TIMEOUT_MS);
            return;
        }
    }
    ph_iocp_stop(srv);
    free_spares(srv);
    ph_log_event(PH_LOG_INFO, "stopped");
    free_server(srv);
}

/* A config problem found at a reload, at the level the caller chose; the
 * loader's warnings (": warning: ") stay warnings. */
static void report_to_log(void *ctx, const char *msg)
{
    ph_log_level level = *(ph_log_level *)ctx;

    if (strstr(msg, ": warning: ") != NULL && level < PH_LOG_WARN)
        level = PH_LOG_WARN;
    ph_log_event(level, "%s", msg);
}

ph_err ph_server_reload(ph_server *srv)
{
    ph_hub_limits limits;
    ph_log_level level;
    ph_options loaded, merged;
    ph_generation *g, *cur;
    ph_err err;

    EnterCriticalSection(&srv->reload_lock);
    if (srv->config_path[0] == '\0') {
        ph_log_event(PH_LOG_WARN, "reload: running on built-in defaults, "
                     "there is no config file to read");
        err = PH_EINVAL;
        goto out;
    }
    level = PH_LOG_ERROR;
    err = ph_config_load_file(srv->config_path, &loaded, report_to_log,
                              &level);
    if (err != PH_OK) {
        ph_log_event(PH_LOG_ERROR, "reload: %s has errors; nothing changed",
                     srv->config_path);
        goto out;
    }
    cur = srv->live;
    level = PH_LOG_WARN;
    ph_config_merge_live(&cur->opts, &loaded, &merged, report_to_log, &level);
    g = new_generation(&merged, cur->number + 1);
    if (g == NULL) {
        err = PH_ENOMEM;
        goto out;
    }
    g->older = cur;
    ph_log_configure(&merged);
    __atomic_store_n(&srv->live, g, __ATOMIC_RELEASE);
    ph_server_hub_limits(srv, g, &limits);
    EnterCriticalSection(&srv->hub_lock);
    ph_hub_set_limits(srv->hub, &limits);
    LeaveCriticalSection(&srv->hub_lock);
    /* A larger pending_instances takes effect now, not at the next connect. */
    ph_listener_refill(srv);
    ph_log_event(PH_LOG_INFO, "reload: configuration generation %u loaded "
                 "from %s", (unsigned)g->number, srv->config_path);
out:
    LeaveCriticalSection(&srv->reload_lock);
    return err;
}

void ph_server_init_config(void)
{
    ph_config_set_resolver(ph_win_resolve_account, NULL);
}

uint32_t ph_server_generation(ph_server *srv)
{
    return __atomic_load_n(&srv->live, __ATOMIC_ACQUIRE)->number;
}
