#include "sysroutes.h"

#include <string.h>

#define LOCAL(name, fn, text) {name, sizeof name - 1, 0, fn, NULL, text}
#define LOCAL_OPAQUE(name, flags, fn, text)                               \
    {name, sizeof name - 1, PH_SYS_OPAQUE | (flags), fn, NULL, text}
#define HUB(name, flags, fn, text) {name, sizeof name - 1, flags, NULL, fn, text}

/* sys.routes lists them in this order. The descriptions follow the grammar
 * docs/PROTOCOL.md recommends ("Describing a route"). */
const ph_sys_route ph_sys_routes[] = {
    LOCAL("sys.ping", ph_router_sys_ping,
          "# Answers at once: a round trip and nothing else.\n"
          "method sys.ping() -> ()\n"),
    LOCAL_OPAQUE("sys.echo", PH_SYS_ECHO, ph_router_sys_echo,
                 "# Sends the payload back as it came.\n"
                 "method sys.echo(bytes) -> (bytes)\n"),
    LOCAL("sys.hello", ph_router_sys_hello,
          "# Names this client (the first 63 bytes) and tells what the "
          "server is.\n"
          "method sys.hello(name: text?) -> (server: text, version: text, "
          "protocol: int, max_frame: int, conn_id: int, client: text?, "
          "features: [text], lane_version: int?, lane_max_bytes: int?, "
          "lane_threshold: int?)\n"),
    LOCAL("sys.stats", ph_router_sys_stats,
          "# The server's counters (docs/PROTOCOL.md lists each).\n"
          "method sys.stats() -> (object of int)\n"),
    LOCAL("sys.process", ph_router_sys_process,
          "# The server process's handles and memory.\n"
          "method sys.process() -> (pid: int, handles: int, "
          "private_bytes: int, working_set: int)\n"),
    LOCAL("sys.config", ph_router_sys_config,
          "# Every setting in force, as text.\n"
          "method sys.config() -> (object of text)\n"),
    LOCAL("sys.lane", ph_router_sys_lane,
          "# A shared-memory lane for big payloads (docs/PROTOCOL.md, "
          "\"The lane\").\n"
          "method sys.lane(ring_bytes: int) -> (version: int, handle: int, "
          "section_bytes: int, ring_bytes: int, threshold: int, "
          "max_frame: int)\n"
          "error FORBIDDEN, BAD_REQUEST, BUSY\n"),
    HUB("sys.register", 0, hub_sys_register,
        "# Serve a route or prefix.* pattern; a second line on describes "
        "it.\n"
        "method sys.register(route: text, mode: \"exclusive\"?, "
        "description: text?) -> (route: text, mode: text, state: text, "
        "position: int?)\n"
        "error BAD_REQUEST, FORBIDDEN, BUSY\n"),
    HUB("sys.unregister", 0, hub_sys_unregister,
        "# Stop serving a route.\n"
        "method sys.unregister(route: text) -> ()\n"
        "error NO_ROUTE\n"),
    HUB("sys.subscribe", 0, hub_sys_subscribe,
        "# Receive the EVENTs of a topic, prefix.* pattern or *.\n"
        "method sys.subscribe(pattern: text) -> ()\n"
        "error BAD_REQUEST, FORBIDDEN, BUSY\n"),
    HUB("sys.unsubscribe", 0, hub_sys_unsubscribe,
        "# Stop receiving a pattern's EVENTs.\n"
        "method sys.unsubscribe(pattern: text) -> ()\n"
        "error NO_ROUTE\n"),
    HUB("sys.routes", 0, hub_sys_routes,
        "# Every route: built in, provided or activatable.\n"
        "method sys.routes() -> ([object])\n"),
    HUB("sys.subscriptions", 0, hub_sys_subscriptions,
        "# Every subscription pattern and its subscriber count.\n"
        "method sys.subscriptions() -> ([object])\n"),
    HUB("sys.client", 0, hub_sys_client,
        "# Who is the caller of a request this provider holds.\n"
        "method sys.client(conn_id: int) -> (object)\n"
        "error BAD_REQUEST, FORBIDDEN\n"),
    HUB("sys.monitor", PH_SYS_ADMIN, hub_sys_monitor,
        "# Copies of routed frames, as EVENTs sys.monitor (admins).\n"
        "method sys.monitor(pattern: text?, \"sys\"?) -> ()\n"
        "error FORBIDDEN\n"),
    HUB("sys.clients", PH_SYS_ADMIN, hub_sys_clients,
        "# Every connection the hub knows (admins).\n"
        "method sys.clients() -> ([object])\n"
        "error FORBIDDEN\n"),
    HUB("sys.describe", 0, hub_sys_describe,
        "# What a route says it is: its providers' description, or the "
        "hub's for a built-in route.\n"
        "method sys.describe(route: text) -> (text)\n"
        "error NO_ROUTE, BAD_REQUEST\n"),
    {NULL, 0, 0, NULL, NULL, NULL}};

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
