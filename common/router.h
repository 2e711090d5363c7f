/* The message router. It decides and never does I/O: given one decoded frame
 * from a peer it appends the frames to send back to an output buffer, which
 * the platform layer then writes (many frames per write).
 *
 * Built-in routes (docs/PROTOCOL.md): sys.ping, sys.echo, sys.hello,
 * sys.stats. Anything else belongs to the hub (hub.h); without one it gets
 * ERROR NO_ROUTE. */
#ifndef PH_ROUTER_H
#define PH_ROUTER_H

#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "frame.h"

#define PH_PEER_NAME_MAX 64

/* Counters for sys.stats, summed by the platform layer on request. */
typedef struct ph_stats {
    uint64_t uptime_ms;
    uint64_t connections_current;
    uint64_t connections_total;
    uint64_t frames_in;
    uint64_t frames_out;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t errors_sent;
    uint64_t pending_instances;
    uint64_t config_generation;  /* 1 at start, +1 per applied reload */
    uint64_t config_loaded_ms;   /* when it was loaded, Unix time in ms */
    /* The hub's (hub.h, ph_hub_stats). */
    uint64_t requests_forwarded;
    uint64_t replies_dropped;
    uint64_t requests_timed_out;
    uint64_t requests_unavailable;
    uint64_t requests_busy;
    uint64_t events_published;
    uint64_t events_delivered;
    uint64_t events_unheard;
    uint64_t slow_disconnects;
    /* Limits that fired, one counter each (docs/PROTOCOL.md). */
    uint64_t limit_max_connections;
    uint64_t limit_max_connections_per_user;
    uint64_t limit_first_frame_timeout;
    uint64_t limit_frame_timeout;
    uint64_t limit_send_stall;
    uint64_t limit_max_queued_bytes;
    uint64_t limit_max_inflight;
    uint64_t limit_provider_queue;
    uint64_t limit_max_routes;
    uint64_t limit_max_subscriptions;
    uint64_t access_denied;
} ph_stats;

/* The server process itself, for sys.process (soak tests watch it). */
typedef struct ph_process_info {
    uint64_t pid;
    uint64_t handles;        /* open handles */
    uint64_t private_bytes;  /* committed private memory */
    uint64_t working_set;    /* resident memory */
} ph_process_info;

typedef struct ph_router {
    const char *server_version;  /* reported by sys.hello, e.g. "0.1.0" */
    /* Fills a snapshot for sys.stats. Called on a worker thread; must not
     * block for long. */
    void (*stats)(void *ctx, ph_stats *out);
    void *stats_ctx;
    /* Fills sys.process's answer (stats_ctx is passed). May be NULL. */
    void (*process)(void *ctx, ph_process_info *out);
    /* The settings in force, for sys.config (stats_ctx is passed). May be
     * NULL. */
    const struct ph_options *(*options)(void *ctx);
} ph_router;

/* What the router knows of the sender. Owned by the connection. */
typedef struct ph_peer {
    uint64_t conn_id;               /* server-wide connection number */
    uint32_t max_frame;             /* the limit in force for this peer:
                                       reported by sys.hello, bounds replies */
    uint32_t pid;                   /* client process id, 0 if unknown */
    char name[PH_PEER_NAME_MAX];    /* from sys.hello; "" until then */
} ph_peer;

/* What one ph_router_handle call produced, for the counters. */
typedef struct ph_route_result {
    uint32_t frames;   /* frames appended to out */
    uint32_t errors;   /* of which ERROR frames */
} ph_route_result;

/* The built-in routes answered here, NULL-terminated (for sys.routes). */
extern const char *const ph_router_builtins[];

/* 1 when f is a REQUEST for a built-in route: ph_router_handle answers it
 * and the hub is not needed. */
int ph_router_is_builtin(const ph_frame *f);

/* Handle frame f from peer, appending replies to out. PH_ENOMEM when a reply
 * could not be appended (out is then unchanged by that reply and the caller
 * should close the connection). */
ph_err ph_router_handle(const ph_router *r, ph_peer *peer, const ph_frame *f,
                        ph_buf *out, ph_route_result *res);

#endif
