/* Every counter sys.stats reports, one row each, in the order of its reply.
 * The router's ph_stats, the hub's ph_hub_stats, the server's summing and
 * the JSON writer are all made from this one list, so a new counter is one
 * row here, the line that counts it, and its line in docs/PROTOCOL.md (a
 * unit test holds the list and the document together).
 *
 * X(name, owner), where owner says who counts it:
 *   SERVER  the platform layer (transport, limits it enforces itself);
 *   HUB     the hub (ph_hub_stats), copied as it is;
 *   BOTH    both count; sys.stats shows the sum. */
#ifndef PH_STATS_H
#define PH_STATS_H

#include <stdint.h>

#define PH_STATS(X)                              \
    X(uptime_ms, SERVER)                         \
    X(connections_current, SERVER)               \
    X(connections_total, SERVER)                 \
    X(frames_in, SERVER)                         \
    X(frames_out, BOTH)                          \
    X(bytes_in, SERVER)                          \
    X(bytes_out, SERVER)                         \
    X(errors_sent, BOTH)                         \
    X(pending_instances, SERVER)                 \
    X(config_generation, SERVER)                 \
    X(config_loaded_ms, SERVER)                  \
    X(requests_forwarded, HUB)                   \
    X(replies_dropped, HUB)                      \
    X(requests_timed_out, HUB)                   \
    X(requests_unavailable, HUB)                 \
    X(requests_busy, HUB)                        \
    X(events_published, HUB)                     \
    X(events_delivered, HUB)                     \
    X(events_unheard, HUB)                       \
    X(slow_disconnects, HUB)                     \
    X(limit_max_connections, SERVER)             \
    X(limit_max_connections_per_user, HUB)       \
    X(limit_first_frame_timeout, SERVER)         \
    X(limit_frame_timeout, SERVER)               \
    X(limit_send_stall, SERVER)                  \
    X(limit_max_queued_bytes, SERVER)            \
    X(limit_max_inflight, HUB)                   \
    X(limit_provider_queue, HUB)                 \
    X(limit_max_routes, HUB)                     \
    X(limit_max_subscriptions, HUB)              \
    X(access_denied, HUB)                        \
    X(activations, HUB)                          \
    X(activation_failures, HUB)                  \
    X(activation_held, HUB)                      \
    X(lanes_current, SERVER)                     \
    X(lane_bytes_in, SERVER)                     \
    X(lane_bytes_out, SERVER)                    \
    X(lane_bytes_direct, SERVER)

/* Helpers for X-macros that keep only some owners' rows. */
#define PH_STATS_IF_SERVER(x)
#define PH_STATS_IF_HUB(x) x
#define PH_STATS_IF_BOTH(x) x

/* All of them, as sys.stats reports them. */
typedef struct ph_stats {
#define PH_STATS_FIELD(name, owner) uint64_t name;
    PH_STATS(PH_STATS_FIELD)
#undef PH_STATS_FIELD
} ph_stats;

/* The hub's share: the HUB and BOTH rows. */
typedef struct ph_hub_stats {
#define PH_STATS_FIELD(name, owner) PH_STATS_IF_##owner(uint64_t name;)
    PH_STATS(PH_STATS_FIELD)
#undef PH_STATS_FIELD
} ph_hub_stats;

/* Add the hub's counters into s: HUB rows are copied, BOTH rows added. */
static inline void ph_stats_add_hub(ph_stats *s, const ph_hub_stats *h)
{
#define PH_STATS_ADD_SERVER(name)
#define PH_STATS_ADD_HUB(name) s->name = h->name;
#define PH_STATS_ADD_BOTH(name) s->name += h->name;
#define PH_STATS_ADD(name, owner) PH_STATS_ADD_##owner(name)
    PH_STATS(PH_STATS_ADD)
#undef PH_STATS_ADD
#undef PH_STATS_ADD_SERVER
#undef PH_STATS_ADD_HUB
#undef PH_STATS_ADD_BOTH
}

#endif
