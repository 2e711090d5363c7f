/* The message router: the built-in routes that need no hub (the rows of
 * sysroutes.h with a local handler: sys.ping, sys.echo, sys.hello, ...),
 * answered on the connection's own thread. It decides and never does I/O:
 * given one decoded frame from a peer it appends the frames to send back to
 * an output buffer, which the platform layer then writes (many frames per
 * write). Every other frame belongs to the hub (hub.h). */
#ifndef PH_ROUTER_H
#define PH_ROUTER_H

#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "frame.h"
#include "json.h"
#include "stats.h"

#define PH_PEER_NAME_MAX 64

/* The server process itself, for sys.process (soak tests watch it). */
typedef struct ph_process_info {
    uint64_t pid;
    uint64_t handles;        /* open handles */
    uint64_t private_bytes;  /* committed private memory */
    uint64_t working_set;    /* resident memory */
} ph_process_info;

struct ph_peer;

/* A lane set up for a peer (sys.lane's answer). */
typedef struct ph_lane_offer {
    uint64_t handle;        /* the section's handle in the client's process */
    uint32_t ring_bytes;    /* each ring */
    uint64_t section_bytes; /* the whole section, header included */
    uint32_t threshold;     /* payloads from this size go to the ring */
} ph_lane_offer;

typedef struct ph_router {
    const char *server_version;  /* reported by sys.hello, e.g. "0.1.0" */
    /* Fills a snapshot for sys.stats. Called on a worker thread; must not
     * block for long. */
    void (*stats)(void *ctx, ph_stats *out);
    void *stats_ctx;
    /* Fills sys.process's answer (stats_ctx is passed). May be NULL. */
    void (*process)(void *ctx, ph_process_info *out);
    /* Writes the settings in force into j as "section.key":"value" members,
     * for sys.config (stats_ctx is passed). The server owns the settings'
     * table; the router only frames the answer. May be NULL. */
    void (*config)(void *ctx, ph_json *j);
    /* sys.lane: set up a lane with rings of ring bytes for peer. PH_OK with
     * *offer, or an error code with why (for the client's ERROR). May be
     * NULL: no lanes. */
    ph_err (*lane)(void *ctx, struct ph_peer *peer, uint32_t ring,
                   ph_lane_offer *offer, char *why, size_t cap);
    /* sys.hello's lane terms: 1 and the largest ring and the threshold when
     * lanes are offered, else 0. May be NULL. */
    int (*lane_terms)(void *ctx, uint32_t *max_bytes, uint32_t *threshold);
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

/* Handle frame f from peer, appending replies to out: a REQUEST for a row of
 * sysroutes.h with a local handler gets its answer; anything else (which the
 * server gives the hub instead) gets ERROR NO_ROUTE. PH_ENOMEM when a reply
 * could not be appended (out is then unchanged by that reply and the caller
 * should close the connection). */
ph_err ph_router_handle(const ph_router *r, ph_peer *peer, const ph_frame *f,
                        ph_buf *out, ph_route_result *res);

#endif
