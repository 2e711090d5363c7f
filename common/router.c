#include "router.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "lane.h"
#include "sysroutes.h"

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

ph_err ph_router_sys_ping(const ph_router *r, ph_peer *peer, const ph_frame *f,
                          ph_buf *out, ph_route_result *res)
{
    return reply(out, f, NULL, 0, res);
}

ph_err ph_router_sys_echo(const ph_router *r, ph_peer *peer, const ph_frame *f,
                          ph_buf *out, ph_route_result *res)
{
    /* The reply has an empty route, so it is never longer than the request
     * and always fits the frame limit the request passed. */
    return reply(out, f, f->payload, f->payload_len, res);
}

/* JSON replies are written straight into the output buffer: begin the
 * REPLY frame for f and its JSON object. */
static ph_err json_reply_begin(ph_buf *out, const ph_frame *f, size_t *start,
                               ph_json *j)
{
    ph_err err = ph_frame_begin(out, PH_REPLY, f->id, 0, NULL, 0, start);

    if (err == PH_OK)
        ph_json_begin(j, out);
    return err;
}

/* Close the JSON object and the frame begun by json_reply_begin. */
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

ph_err ph_router_sys_hello(const ph_router *r, ph_peer *peer, const ph_frame *f,
                           ph_buf *out, ph_route_result *res)
{
    size_t start, n = f->payload_len;
    uint32_t lane_max = 0, lane_threshold = 0;
    int lane_on;
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
    err = json_reply_begin(out, f, &start, &j);
    if (err != PH_OK)
        return err;
    ph_json_str(&j, "server", "pipehubd", 8);
    ph_json_str(&j, "version", r->server_version, strlen(r->server_version));
    ph_json_u64(&j, "protocol", PH_PROTOCOL_VERSION);
    ph_json_u64(&j, "max_frame", peer->max_frame);
    ph_json_u64(&j, "conn_id", peer->conn_id);
    if (peer->name[0])
        ph_json_str(&j, "client", peer->name, strlen(peer->name));
    /* What a client may rely on, and the lane's terms when it is offered
     * (so a client knows whether to ask: sys.lane). */
    lane_on = r->lane_terms != NULL &&
              r->lane_terms(r->stats_ctx, &lane_max, &lane_threshold);
    ph_json_key(&j, "features");
    if (j.err == PH_OK)
        j.err = ph_buf_append(out, lane_on ? "[\"hub\",\"describe\",\"lane\"]"
                                           : "[\"hub\",\"describe\"]",
                              lane_on ? 25 : 18);
    if (lane_on) {
        ph_json_u64(&j, "lane_version", PH_LANE_VERSION);
        ph_json_u64(&j, "lane_max_bytes", lane_max);
        ph_json_u64(&j, "lane_threshold", lane_threshold);
    }
    return json_reply_end(peer, out, start, &j, f, res);
}

ph_err ph_router_sys_stats(const ph_router *r, ph_peer *peer, const ph_frame *f,
                           ph_buf *out, ph_route_result *res)
{
    ph_stats s;
    size_t start;
    ph_json j;
    ph_err err;

    memset(&s, 0, sizeof s);
    if (r->stats)
        r->stats(r->stats_ctx, &s);
    err = json_reply_begin(out, f, &start, &j);
    if (err != PH_OK)
        return err;
#define STAT(name, owner) ph_json_u64(&j, #name, s.name);
    PH_STATS(STAT)
#undef STAT
    return json_reply_end(peer, out, start, &j, f, res);
}

ph_err ph_router_sys_process(const ph_router *r, ph_peer *peer,
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
    err = json_reply_begin(out, f, &start, &j);
    if (err != PH_OK)
        return err;
    ph_json_u64(&j, "pid", p.pid);
    ph_json_u64(&j, "handles", p.handles);
    ph_json_u64(&j, "private_bytes", p.private_bytes);
    ph_json_u64(&j, "working_set", p.working_set);
    return json_reply_end(peer, out, start, &j, f, res);
}

/* sys.config: every setting in force, "section.key": "value", so a client
 * (pipehub doctor) can show the limits it is held to. */
ph_err ph_router_sys_config(const ph_router *r, ph_peer *peer,
                            const ph_frame *f, ph_buf *out,
                            ph_route_result *res)
{
    size_t start;
    ph_json j;
    ph_err err;

    err = json_reply_begin(out, f, &start, &j);
    if (err != PH_OK)
        return err;
    if (r->config)
        r->config(r->stats_ctx, &j);
    return json_reply_end(peer, out, start, &j, f, res);
}

/* sys.lane SIZE: a shared-memory lane with rings of SIZE bytes each way
 * (docs/PROTOCOL.md, "The lane"). The platform makes it; the answer says
 * where it is. */
ph_err ph_router_sys_lane(const ph_router *r, ph_peer *peer,
                          const ph_frame *f, ph_buf *out,
                          ph_route_result *res)
{
    char why[160];
    ph_lane_offer offer;
    uint64_t ring = 0;
    size_t start;
    uint32_t i;
    ph_json j;
    ph_err err;

    for (i = 0; i < f->payload_len && i < 11; i++) {
        uint8_t ch = f->payload[i];
        if (ch < '0' || ch > '9')
            break;
        ring = ring * 10 + (uint64_t)(ch - '0');
    }
    if (i == 0 || i != f->payload_len || ring > UINT32_MAX)
        return reply_error(out, f->id, PH_EBADREQ,
                           "expected the ring's size in bytes, in decimal",
                           res);
    if (r->lane == NULL)
        return reply_error(out, f->id, PH_EFORBIDDEN,
                           "this server offers no lanes", res);
    memset(&offer, 0, sizeof offer);
    err = r->lane(r->stats_ctx, peer, (uint32_t)ring, &offer, why, sizeof why);
    if (err != PH_OK)
        return reply_error(out, f->id, err, why, res);
    err = json_reply_begin(out, f, &start, &j);
    if (err != PH_OK)
        return err;
    ph_json_u64(&j, "version", PH_LANE_VERSION);
    ph_json_u64(&j, "handle", offer.handle);
    ph_json_u64(&j, "section_bytes", offer.section_bytes);
    ph_json_u64(&j, "ring_bytes", offer.ring_bytes);
    ph_json_u64(&j, "threshold", offer.threshold);
    ph_json_u64(&j, "max_frame", peer->max_frame);
    return json_reply_end(peer, out, start, &j, f, res);
}

ph_err ph_router_handle(const ph_router *r, ph_peer *peer, const ph_frame *f,
                        ph_buf *out, ph_route_result *res)
{
    char msg[PH_ROUTE_MAX + 64];
    const ph_sys_route *row;

    res->frames = res->errors = 0;
    switch (f->kind) {
    case PH_REQUEST:
        break;
    case PH_EVENT:
        /* EVENTs are the hub's (the server never hands one to the router);
         * a router alone has no subscribers, and saying so beats dropping it
         * silently. */
        snprintf(msg, sizeof msg, "no subscribers for topic '%.*s'",
                 (int)f->route_len, f->route);
        return reply_error(out, 0, PH_ENOROUTE, msg, res);
    default:
        /* A REPLY or ERROR answers a request the hub forwarded; the router
         * forwards none, so this one answers nothing. */
        snprintf(msg, sizeof msg, "no request %u is outstanding on this "
                 "connection", (unsigned)f->id);
        return reply_error(out, f->id, PH_ENOROUTE, msg, res);
    }
    row = ph_sys_route_find(f->route, f->route_len);
    if (row != NULL && row->local != NULL)
        return row->local(r, peer, f, out, res);
    snprintf(msg, sizeof msg, "no route '%.*s'", (int)f->route_len, f->route);
    return reply_error(out, f->id, PH_ENOROUTE, msg, res);
}
