#include "router.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "options.h"

/* A built-in route: writes its reply (or error) for f into out. */
typedef ph_err (*builtin_fn)(const ph_router *r, ph_peer *peer,
                             const ph_frame *f, ph_buf *out,
                             ph_route_result *res);

static ph_err reply(ph_buf *out, const ph_frame *f, const void *payload,
                    uint32_t len, ph_route_result *res)
{
    ph_frame rep;
    ph_err err;

    memset(&rep, 0, sizeof rep);
    rep.kind = PH_REPLY;
    rep.id = f->id;
    rep.payload = payload;
    rep.payload_len = len;
    err = ph_frame_append(out, &rep);
    if (err == PH_OK)
        res->frames++;
    return err;
}

static ph_err reply_error(ph_buf *out, uint32_t id, ph_err code, const char *msg,
                    ph_route_result *res)
{
    ph_err err = ph_frame_append_error(out, id, code, msg);

    if (err == PH_OK) {
        res->frames++;
        res->errors++;
    }
    return err;
}

static ph_err sys_ping(const ph_router *r, ph_peer *peer, const ph_frame *f,
                       ph_buf *out, ph_route_result *res)
{
    return reply(out, f, NULL, 0, res);
}

static ph_err sys_echo(const ph_router *r, ph_peer *peer, const ph_frame *f,
                       ph_buf *out, ph_route_result *res)
{
    /* The reply has an empty route, so it is never longer than the request
     * and always fits the frame limit the request passed. */
    return reply(out, f, f->payload, f->payload_len, res);
}

/* JSON replies are written straight into the output buffer. */
static ph_err json_reply_end(const ph_peer *peer, ph_buf *out, size_t start,
                             ph_json *j, const ph_frame *f,
                             ph_route_result *res)
{
    ph_err err = ph_json_end(j);

    if (err == PH_OK)
        err = ph_frame_end(out, start, peer->max_frame);
    else
        out->len = start;
    if (err == PH_ETOOBIG)
        return reply_error(out, f->id, PH_EINTERNAL, "reply exceeds max frame", res);
    if (err == PH_OK)
        res->frames++;
    return err;
}

static ph_err sys_hello(const ph_router *r, ph_peer *peer, const ph_frame *f,
                        ph_buf *out, ph_route_result *res)
{
    size_t start, n = f->payload_len;
    ph_json j;
    ph_err err;

    /* The name is for logs and for sys.hello's answer only; it is cut to fit
     * and never trusted for anything else. */
    if (n > 0) {
        if (n >= sizeof peer->name)
            n = sizeof peer->name - 1;
        memcpy(peer->name, f->payload, n);
        peer->name[n] = '\0';
    }
    err = ph_frame_begin(out, PH_REPLY, f->id, 0, NULL, 0, &start);
    if (err != PH_OK)
        return err;
    ph_json_begin(&j, out);
    ph_json_str(&j, "server", "pipehubd", 8);
    ph_json_str(&j, "version", r->server_version, strlen(r->server_version));
    ph_json_u64(&j, "protocol", PH_PROTOCOL_VERSION);
    ph_json_u64(&j, "max_frame", peer->max_frame);
    ph_json_u64(&j, "conn_id", peer->conn_id);
    if (peer->name[0])
        ph_json_str(&j, "client", peer->name, strlen(peer->name));
    return json_reply_end(peer, out, start, &j, f, res);
}

static ph_err sys_stats(const ph_router *r, ph_peer *peer, const ph_frame *f,
                        ph_buf *out, ph_route_result *res)
{
    ph_stats s;
    size_t start;
    ph_json j;
    ph_err err;

    memset(&s, 0, sizeof s);
    if (r->stats)
        r->stats(r->stats_ctx, &s);
    err = ph_frame_begin(out, PH_REPLY, f->id, 0, NULL, 0, &start);
    if (err != PH_OK)
        return err;
    ph_json_begin(&j, out);
    ph_json_u64(&j, "uptime_ms", s.uptime_ms);
    ph_json_u64(&j, "connections_current", s.connections_current);
    ph_json_u64(&j, "connections_total", s.connections_total);
    ph_json_u64(&j, "frames_in", s.frames_in);
    ph_json_u64(&j, "frames_out", s.frames_out);
    ph_json_u64(&j, "bytes_in", s.bytes_in);
    ph_json_u64(&j, "bytes_out", s.bytes_out);
    ph_json_u64(&j, "errors_sent", s.errors_sent);
    ph_json_u64(&j, "pending_instances", s.pending_instances);
    ph_json_u64(&j, "config_generation", s.config_generation);
    ph_json_u64(&j, "config_loaded_ms", s.config_loaded_ms);
    ph_json_u64(&j, "requests_forwarded", s.requests_forwarded);
    ph_json_u64(&j, "replies_dropped", s.replies_dropped);
    ph_json_u64(&j, "requests_timed_out", s.requests_timed_out);
    ph_json_u64(&j, "requests_unavailable", s.requests_unavailable);
    ph_json_u64(&j, "requests_busy", s.requests_busy);
    ph_json_u64(&j, "events_published", s.events_published);
    ph_json_u64(&j, "events_delivered", s.events_delivered);
    ph_json_u64(&j, "events_unheard", s.events_unheard);
    ph_json_u64(&j, "slow_disconnects", s.slow_disconnects);
    ph_json_u64(&j, "limit_max_connections", s.limit_max_connections);
    ph_json_u64(&j, "limit_max_connections_per_user", s.limit_max_connections_per_user);
    ph_json_u64(&j, "limit_first_frame_timeout", s.limit_first_frame_timeout);
    ph_json_u64(&j, "limit_frame_timeout", s.limit_frame_timeout);
    ph_json_u64(&j, "limit_send_stall", s.limit_send_stall);
    ph_json_u64(&j, "limit_max_queued_bytes", s.limit_max_queued_bytes);
    ph_json_u64(&j, "limit_max_inflight", s.limit_max_inflight);
    ph_json_u64(&j, "limit_provider_queue", s.limit_provider_queue);
    ph_json_u64(&j, "limit_max_routes", s.limit_max_routes);
    ph_json_u64(&j, "limit_max_subscriptions", s.limit_max_subscriptions);
    ph_json_u64(&j, "access_denied", s.access_denied);
    return json_reply_end(peer, out, start, &j, f, res);
}

static ph_err sys_process(const ph_router *r, ph_peer *peer,
                          const ph_frame *f, ph_buf *out,
                          ph_route_result *res)
{
    ph_process_info p;
    size_t start;
    ph_json j;
    ph_err err;

    memset(&p, 0, sizeof p);
    if (r->process)
        r->process(r->stats_ctx, &p);
    err = ph_frame_begin(out, PH_REPLY, f->id, 0, NULL, 0, &start);
    if (err != PH_OK)
        return err;
    ph_json_begin(&j, out);
    ph_json_u64(&j, "pid", p.pid);
    ph_json_u64(&j, "handles", p.handles);
    ph_json_u64(&j, "private_bytes", p.private_bytes);
    ph_json_u64(&j, "working_set", p.working_set);
    return json_reply_end(peer, out, start, &j, f, res);
}

/* sys.config: every setting in force, "section.key": "value", so a client
 * (pipehub doctor) can show the limits it is held to. The log file's path
 * is left out: it says nothing about limits and is the admin's business. */
static ph_err sys_config(const ph_router *r, ph_peer *peer, const ph_frame *f,
                         ph_buf *out, ph_route_result *res)
{
    const ph_options *o = r->options ? r->options(r->stats_ctx) : NULL;
    const ph_option_def *d;
    char key[96], value[PH_SDDL_MAX + 16];
    size_t start;
    uint32_t i;
    ph_json j;
    ph_err err;

    err = ph_frame_begin(out, PH_REPLY, f->id, 0, NULL, 0, &start);
    if (err != PH_OK)
        return err;
    ph_json_begin(&j, out);
    for (d = ph_option_defs; o != NULL && d->key != NULL; d++) {
        if (strcmp(d->section, "log") == 0 && strcmp(d->key, "file") == 0)
            continue;
        snprintf(key, sizeof key, "%s.%s", d->section, d->key);
        ph_option_format(d, o, value, sizeof value);
        ph_json_str(&j, key, value, strlen(value));
    }
    for (i = 0; o != NULL && i < o->nroutes; i++) {
        snprintf(key, sizeof key, "route.%.60s.request_timeout_ms",
                 o->routes[i].name);
        snprintf(value, sizeof value, "%u",
                 (unsigned)o->routes[i].request_timeout_ms);
        ph_json_str(&j, key, value, strlen(value));
    }
    return json_reply_end(peer, out, start, &j, f, res);
}

static const struct {
    const char *route;
    builtin_fn fn;
} builtins[] = {
    {"sys.ping", sys_ping},
    {"sys.echo", sys_echo},
    {"sys.hello", sys_hello},
    {"sys.stats", sys_stats},
    {"sys.process", sys_process},
    {"sys.config", sys_config},
};

const char *const ph_router_builtins[] = {
    "sys.ping", "sys.echo", "sys.hello", "sys.stats", "sys.process",
    "sys.config", NULL};

int ph_router_is_builtin(const ph_frame *f)
{
    size_t i;

    if (f->kind != PH_REQUEST || f->route_len < 8 ||
        memcmp(f->route, "sys.", 4) != 0)
        return 0;
    for (i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        if (strlen(builtins[i].route) == f->route_len &&
            memcmp(builtins[i].route, f->route, f->route_len) == 0)
            return 1;
    }
    return 0;
}

ph_err ph_router_handle(const ph_router *r, ph_peer *peer, const ph_frame *f,
                        ph_buf *out, ph_route_result *res)
{
    char msg[PH_ROUTE_MAX + 64];
    size_t i;

    res->frames = res->errors = 0;
    switch (f->kind) {
    case PH_REQUEST:
        break;
    case PH_EVENT:
        /* Topics come with publish/subscribe; until then an EVENT cannot go
         * anywhere, and saying so beats dropping it silently. */
        snprintf(msg, sizeof msg, "no subscribers for topic '%.*s'",
                 (int)f->route_len, f->route);
        return reply_error(out, 0, PH_ENOROUTE, msg, res);
    default:
        /* A REPLY or ERROR answers a request the server forwarded; there are
         * none yet, so this one answers nothing. */
        snprintf(msg, sizeof msg, "no request %u is outstanding on this "
                 "connection", (unsigned)f->id);
        return reply_error(out, f->id, PH_ENOROUTE, msg, res);
    }
    for (i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        if (strlen(builtins[i].route) == f->route_len &&
            memcmp(builtins[i].route, f->route, f->route_len) == 0)
            return builtins[i].fn(r, peer, f, out, res);
    }
    snprintf(msg, sizeof msg, "no route '%.*s'", (int)f->route_len, f->route);
    return reply_error(out, f->id, PH_ENOROUTE, msg, res);
}
