#include "sysroutes.h"

#include <string.h>

#define LOCAL(name, fn) {name, sizeof name - 1, 0, fn, NULL}
#define LOCAL_OPAQUE(name, fn) {name, sizeof name - 1, PH_SYS_OPAQUE, fn, NULL}
#define HUB(name, flags, fn) {name, sizeof name - 1, flags, NULL, fn}

/* sys.routes lists them in this order. */
const ph_sys_route ph_sys_routes[] = {
    LOCAL("sys.ping", ph_router_sys_ping),
    LOCAL_OPAQUE("sys.echo", ph_router_sys_echo),
    LOCAL("sys.hello", ph_router_sys_hello),
    LOCAL("sys.stats", ph_router_sys_stats),
    LOCAL("sys.process", ph_router_sys_process),
    LOCAL("sys.config", ph_router_sys_config),
    LOCAL("sys.lane", ph_router_sys_lane),
    HUB("sys.register", 0, hub_sys_register),
    HUB("sys.unregister", 0, hub_sys_unregister),
    HUB("sys.subscribe", 0, hub_sys_subscribe),
    HUB("sys.unsubscribe", 0, hub_sys_unsubscribe),
    HUB("sys.routes", 0, hub_sys_routes),
    HUB("sys.subscriptions", 0, hub_sys_subscriptions),
    HUB("sys.client", 0, hub_sys_client),
    HUB("sys.monitor", PH_SYS_ADMIN, hub_sys_monitor),
    HUB("sys.clients", PH_SYS_ADMIN, hub_sys_clients),
    {NULL, 0, 0, NULL, NULL}};

const ph_sys_route *ph_sys_route_find(const char *route, size_t len)
{
    const ph_sys_route *s;

    /* Most requests are not built-in: one compare turns them away. */
    if (len < 5 || memcmp(route, "sys.", 4) != 0)
        return NULL;
    for (s = ph_sys_routes; s->name != NULL; s++)
        if (s->len == len && memcmp(s->name, route, len) == 0)
            return s;
    return NULL;
}
