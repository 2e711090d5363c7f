/* The hub: routes served by clients, publish/subscribe, route events, caller
 * identity and the monitor (docs/PROTOCOL.md, "The hub").
 *
 * Portable and sans-I/O like the codec: it decides and never does I/O. The
 * platform layer drives it through a few calls (a client connected, a frame
 * arrived, a client is gone, time passed) and it answers through ph_hub_io:
 * "queue these bytes on connection N", "close N", "start writing N".
 *
 * Not thread safe: the caller serialises every call on one hub (the server
 * holds one lock around them, docs/ARCHITECTURE.md). No call blocks, and
 * none calls back into the hub. */
#ifndef PH_HUB_H
#define PH_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "frame.h"
#include "names.h"
#include "stats.h"

/* What the hub knows of a client, taken from the pipe and the client's token
 * when it connected and never changed afterwards. Strings are UTF-8, "" when
 * unknown; the hub copies them. */
typedef struct ph_identity {
    uint32_t pid;
    uint64_t process_start;   /* FILETIME of the process's creation, 0 unknown */
    const char *sid;          /* "S-1-5-21-..." */
    const char *account;      /* "DOMAIN\\name" */
    const char *logon_session; /* "0xHIGH:0xLOW" */
    const char *integrity;    /* "low", "medium", "high", "system", "" */
    uint32_t integrity_rid;   /* SECURITY_MANDATORY_*_RID, 0 unknown */
    const char *exe;          /* full image path */
    const char *groups;       /* the token's enabled group SIDs, comma
                                 separated ("S-1-1-0,S-1-5-32-545") */
    int admin;                /* the service's own account or an admin */
} ph_identity;

/* Per-route settings from [route.NAME] sections. NAME is a route or a prefix
 * pattern ("billing.*"); the most specific one applies. */
typedef struct ph_route_rule {
    const char *name;
    uint32_t request_timeout_ms; /* 0: the global default */
    /* Who may use the route, each a comma-separated list of SIDs (resolved
     * from names when the config was loaded), matched against the caller's
     * user and enabled group SIDs; NULL: no rule, everyone. */
    const char *call, *provide, *publish, *subscribe;
    uint32_t min_integrity;      /* integrity RID required; 0: none */
    /* Activation: a request nobody serves starts this Windows service
     * (NULL: none), which has activate_timeout_ms (0: 25000) to register a
     * route that serves it. */
    const char *activate_service;
    uint32_t activate_timeout_ms;
} ph_route_rule;

#define PH_ACTIVATE_TIMEOUT_MS 25000u

typedef struct ph_hub_limits {
    uint32_t send_queue_bytes;        /* a connection's output quota */
    uint32_t request_timeout_ms;      /* default for forwarded requests */
    uint32_t max_inflight_per_client; /* forwarded requests per caller */
    uint32_t max_frame;               /* largest frame the hub sends */
    uint32_t max_connections_per_user; /* per user SID; 0: no limit */
    uint32_t max_routes_per_client;   /* 0: no limit */
    uint32_t max_subscriptions_per_client; /* 0: no limit */
    const ph_route_rule *rules;       /* not owned; must outlive the limits */
    size_t nrules;
} ph_hub_limits;

/* What the transport counts per connection (sys.clients). */
typedef struct ph_conn_stats {
    uint64_t connected_ms;  /* when it connected, Unix time in ms */
    uint64_t frames_in, frames_out, bytes_in, bytes_out;
    uint64_t queued;        /* output bytes not yet written */
} ph_conn_stats;

/* Added to a log line's level: a limit fired (docs/PROTOCOL.md: a burst of
 * 20 such lines, then 5 a second). */
#define PH_HUB_LOG_LIMITED 0x100

/* The transport, as the hub sees it. conn is the platform's own handle given
 * to ph_hub_connect. None of these may call back into the hub. */
typedef struct ph_hub_io {
    void *ctx;
    /* Queue len bytes (whole encoded frames) on conn without writing yet.
     * PH_OK or PH_ENOMEM. */
    ph_err (*send)(void *ctx, void *conn, const uint8_t *data, size_t len);
    /* Bytes queued on conn and not yet written (an estimate is fine). */
    size_t (*queued)(void *ctx, void *conn);
    /* Start writing what send queued on conn (called once per touched
     * connection by ph_hub_flush). */
    void (*kick)(void *ctx, void *conn);
    /* Close conn for why (static text). The platform later calls
     * ph_hub_disconnect for it; frames may be sent to it until then. */
    void (*close)(void *ctx, void *conn, const char *why);
    /* Milliseconds: monotonic, and wall clock (Unix time) for the monitor. */
    uint64_t (*now_ms)(void *ctx);
    uint64_t (*wall_ms)(void *ctx);
    /* One log line; level as ph_log_level (0 error .. 3 debug), with
     * PH_HUB_LOG_LIMITED added for a limit that fired: the platform applies
     * its rate limit for such lines. May be NULL. */
    void (*log)(void *ctx, int level, const char *msg);
    /* The transport's view of conn for sys.clients. May be NULL. */
    void (*conn_stats)(void *ctx, void *conn, struct ph_conn_stats *out);
    /* Start the Windows service service for activation id, and report what
     * becomes of it with ph_hub_activation_failed (ph_hub_activation_live
     * says when to stop watching). Must not block. May be NULL: no
     * activation. */
    void (*activate)(void *ctx, const char *service, uint32_t id);
    /* Queue one encoded frame on conn in two parts: head (header and route,
     * its length field counting the payload too) and the payload's plen
     * bytes. The payload may lie in the sender's lane, memory its client
     * can change at any time: the transport copies it and never looks at
     * it, and may copy it straight into conn's own lane (docs/PROTOCOL.md,
     * "The lane"). PH_OK or PH_ENOMEM. May be NULL: the hub then encodes
     * every frame whole and uses send. */
    ph_err (*send_parts)(void *ctx, void *conn, const uint8_t *head,
                         size_t head_len, const uint8_t *payload,
                         size_t plen);
} ph_hub_io;

/* Payloads from this size are handed to ph_hub_io.send_parts apart from
 * their frame's head instead of being encoded with it: one copy fewer. */
#define PH_HUB_SPLIT_BYTES 4096u

/* The hub's counters for sys.stats, ph_hub_stats, are the HUB and BOTH rows
 * of stats.h's list. */

typedef struct ph_hub ph_hub;

/* A new hub; *out owns it until ph_hub_free. sys.routes lists the built-in
 * routes from sysroutes.h's table. */
ph_err ph_hub_new(const ph_hub_io *io, const ph_hub_limits *limits,
                  ph_hub **out);
/* Free everything. Pending requests are dropped without answers: call it
 * only when no connection is left to answer. */
void ph_hub_free(ph_hub *h);

/* Swap in new limits (a config reload). They apply to requests forwarded
 * from now on. */
void ph_hub_set_limits(ph_hub *h, const ph_hub_limits *limits);

/* A client connected. id is never 0 and never reused. PH_ENOMEM, PH_EINVAL
 * (id in use), or PH_EBUSY when its account already has
 * max_connections_per_user connections (why, if not NULL, gets a message
 * for the client naming the limit); the hub then does not know it. */
ph_err ph_hub_connect(ph_hub *h, uint32_t id, void *conn,
                      const ph_identity *who, char *why, size_t why_cap);

/* Connection id has set up a lane: frames over max_frame may be sent to it
 * (their payloads go into its lane). Unknown ids are ignored. */
void ph_hub_set_lane(ph_hub *h, uint32_t id);

/* A client is gone: its routes, subscriptions and monitor end, requests it
 * was serving get ERROR UNAVAILABLE, replies still due to it will be
 * dropped. After this the hub never names conn again. Unknown ids are
 * ignored. */
void ph_hub_disconnect(ph_hub *h, uint32_t id);

/* A frame from connection id that the router did not answer: a REQUEST for
 * a provided route or a hub control route, an EVENT, a REPLY or an ERROR.
 * Frames for the sender itself are appended to out (its send queue); frames
 * for others go through io->send, and the connections touched are kicked by
 * ph_hub_flush. PH_ENOMEM when out could not take a frame (the caller closes
 * the sender). */
ph_err ph_hub_frame(ph_hub *h, uint32_t id, const ph_frame *f, ph_buf *out);

/* Copies of a built-in request and its answer for monitors that asked for
 * sys traffic: request f from id and the reply bytes (one encoded frame) the
 * router produced. */
void ph_hub_observe_builtin(ph_hub *h, uint32_t id, const ph_frame *f,
                            const uint8_t *reply, size_t reply_len);
/* Nonzero while some monitor wants built-in traffic: the platform then
 * calls ph_hub_observe_builtin for each built-in request. Cheap; may be read
 * without the hub's lock as a hint. */
int ph_hub_watching_builtins(const ph_hub *h);

/* Activation id failed (the service stopped or could not start; why says
 * what the SCM said): its held requests get ERROR UNAVAILABLE naming the
 * service. Unknown or finished ids are ignored. */
void ph_hub_activation_failed(ph_hub *h, uint32_t id, const char *why);
/* 1 while activation id still holds requests (the platform watches the
 * service until then). */
int ph_hub_activation_live(const ph_hub *h, uint32_t id);

/* Answer every forwarded request whose deadline has passed with ERROR
 * TIMEOUT. Returns the milliseconds until the next deadline (UINT32_MAX for
 * none). */
uint32_t ph_hub_tick(ph_hub *h);

/* Kick every connection that frames were sent to since the last flush. Call
 * after a batch of ph_hub_frame calls (one read's worth), after
 * ph_hub_disconnect and after ph_hub_tick. */
void ph_hub_flush(ph_hub *h);

void ph_hub_get_stats(const ph_hub *h, ph_hub_stats *out);

/* For tests and the fuzzer: check the hub's internal invariants; returns
 * NULL or a description of the first one broken. */
const char *ph_hub_check(const ph_hub *h);

#endif
