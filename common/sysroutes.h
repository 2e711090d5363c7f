/* The built-in routes: every `sys.*` route the server answers itself, one
 * row each. The router (answers on the connection's own thread), the hub
 * (answers under its lock, sys.routes lists the rows) and the platform layer
 * (picks the path per request) all read the same row.
 *
 * Adding a built-in route: a row in sysroutes.c, its handler, and its line
 * in docs/PROTOCOL.md's "Built-in routes" table; test_sysroutes checks that
 * the table and the document agree. */
#ifndef PH_SYSROUTES_H
#define PH_SYSROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "frame.h"
#include "router.h"

struct ph_hub;
struct hconn;

/* Answers f for peer without the hub, appending to out (router.c). */
typedef ph_err (*ph_sys_local_fn)(const ph_router *r, ph_peer *peer,
                                  const ph_frame *f, ph_buf *out,
                                  ph_route_result *res);
/* Answers request id from c under the hub's lock; arg is the payload with
 * trailing white space cut (hub_*.c). */
typedef void (*ph_sys_hub_fn)(struct ph_hub *h, struct hconn *c, uint32_t id,
                              const char *arg, size_t len);

enum {
    PH_SYS_ADMIN = 1, /* the service's account and administrators only,
                         unless a [route.NAME] call rule says otherwise */
    PH_SYS_OPAQUE = 2, /* the handler copies the payload on and never looks
                          at it: a lane payload may stay in the client's
                          ring while it does (sys.echo) */
    PH_SYS_ECHO = 4    /* the answer is a REPLY with the request's id and
                          its payload as it came: the platform may write a
                          lane payload from one ring straight into the
                          other without the handler (sys.echo) */
};

typedef struct ph_sys_route {
    const char *name;
    uint8_t len;           /* strlen(name) */
    uint8_t flags;         /* PH_SYS_* */
    ph_sys_local_fn local; /* set for routes answered without the hub */
    ph_sys_hub_fn hub;     /* set for routes that need the hub */
    const char *describe;  /* what sys.describe answers for it */
} ph_sys_route;

/* The table, ended by a row whose name is NULL. */
extern const ph_sys_route ph_sys_routes[];

/* The row for route, or NULL when it is not a built-in route. */
const ph_sys_route *ph_sys_route_find(const char *route, size_t len);

/* The handlers, each of its table's type. */
#define PH_SYS_LOCAL_HANDLER(fn)                                          \
    ph_err fn(const ph_router *r, ph_peer *peer, const ph_frame *f,       \
              ph_buf *out, ph_route_result *res);
#define PH_SYS_HUB_HANDLER(fn)                                            \
    void fn(struct ph_hub *h, struct hconn *c, uint32_t id, const char *arg, \
            size_t len);
PH_SYS_LOCAL_HANDLER(ph_router_sys_ping)
PH_SYS_LOCAL_HANDLER(ph_router_sys_echo)
PH_SYS_LOCAL_HANDLER(ph_router_sys_hello)
PH_SYS_LOCAL_HANDLER(ph_router_sys_stats)
PH_SYS_LOCAL_HANDLER(ph_router_sys_process)
PH_SYS_LOCAL_HANDLER(ph_router_sys_config)
PH_SYS_LOCAL_HANDLER(ph_router_sys_lane)
PH_SYS_HUB_HANDLER(hub_sys_register)
PH_SYS_HUB_HANDLER(hub_sys_unregister)
PH_SYS_HUB_HANDLER(hub_sys_subscribe)
PH_SYS_HUB_HANDLER(hub_sys_unsubscribe)
PH_SYS_HUB_HANDLER(hub_sys_routes)
PH_SYS_HUB_HANDLER(hub_sys_subscriptions)
PH_SYS_HUB_HANDLER(hub_sys_client)
PH_SYS_HUB_HANDLER(hub_sys_monitor)
PH_SYS_HUB_HANDLER(hub_sys_clients)
PH_SYS_HUB_HANDLER(hub_sys_describe)
#undef PH_SYS_LOCAL_HANDLER
#undef PH_SYS_HUB_HANDLER

#endif
