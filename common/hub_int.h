/* The hub's insides, shared by its files and by nothing else: the records
 * (connections, routes, topics, forwarded requests), struct ph_hub, and the
 * functions one concept's file offers the others. hub.h is the contract the
 * server sees; this header is not part of it.
 *
 * The files, one concept each (docs/ARCHITECTURE.md has the map):
 *   hub.c          entry points: new, free, limits, a frame, tick, flush
 *   hub_conn.c     connections: identity, per-account counts, disconnect
 *   hub_send.c     the way out: delivery under quota, errors, encode, logs
 *   hub_route.c    routes and the exclusive waiting line; sys.register
 *   hub_call.c     forwarded requests, answers and their deadlines
 *   hub_topic.c    topics and fan-out; sys.subscribe; route events
 *   hub_rules.c    [route.NAME] rules: access and request timeouts
 *   hub_monitor.c  the monitor's copies; sys.monitor
 *   hub_views.c    JSON views: sys.routes, sys.subscriptions, sys.client(s)
 *   hub_check.c    invariants, for tests and the fuzzer */
#ifndef PH_HUB_INT_H
#define PH_HUB_INT_H

#include "containers.h"
#include "hub.h"
#include "sysroutes.h"

typedef struct hconn hconn;

/* A registered route ("billing.get") or prefix ("billing.*"). Exists while
 * it has a provider or someone waiting. */
typedef struct hroute {
    hnode node;
    char *name;        /* owned, NUL-terminated */
    size_t len;
    int exclusive;     /* prov holds one holder; others wait in line */
    parr prov;         /* hconn *: providers, in registration order */
    parr wait;         /* hconn *: the exclusive waiting line */
    uint32_t rr;       /* round-robin position */
    uint64_t forwarded;
    char *describe;    /* owned: what its providers say it is (sys.describe);
                          NULL when none said */
} hroute;

/* A subscription pattern and its subscribers. */
typedef struct topic {
    hnode node;
    char *name;        /* owned */
    size_t len;
    parr subs;         /* hconn * */
} topic;

/* A timeout value in use and the requests waiting with it, oldest first:
 * every request in one queue has the same timeout, so appending keeps the
 * queue in deadline order and the tick only looks at heads. */
typedef struct tqueue {
    uint32_t timeout_ms;
    dlink head;
} tqueue;

/* A request forwarded to a provider and not answered yet. */
typedef struct pending {
    hnode node;           /* by hub_id */
    uint32_t hub_id;      /* the id the provider sees */
    uint32_t caller_id;   /* the caller's connection id */
    uint32_t caller_req;  /* the caller's own request id */
    hconn *caller;        /* NULL once the caller has gone */
    hconn *provider;
    hroute *reg;           /* the registration that took it */
    uint64_t deadline;
    uint32_t timeout_ms;
    dlink by_caller, by_provider, by_timer;
    uint8_t route_len;
    char route[];         /* the route as the caller asked for it */
} pending;

/* A service being started for requests nobody serves yet (hub_activate.c),
 * keyed by the service's name. */
typedef struct activation {
    hnode node;
    char *name;           /* owned: the service */
    size_t len;
    uint32_t id;          /* the platform's handle on it */
    uint64_t deadline;
    uint32_t timeout_ms;
    uint32_t first_caller, first_pid; /* who caused it, for the log */
    dlink held;           /* held requests, oldest first */
} activation;

/* Connections per account (user SID). */
typedef struct ucount {
    hnode node;
    char *sid;            /* owned */
    size_t len;
    uint32_t n;
} ucount;

struct hconn {
    hnode node;           /* by id */
    uint32_t id;
    void *handle;         /* the platform's connection */
    ph_identity who;      /* strings point into strs */
    char *strs;           /* owned */
    parr regs;            /* hroute *: served or waited for */
    parr subs;            /* topic * */
    dlink calls;          /* pending.by_caller: requests it made */
    dlink serving;        /* pending.by_provider: requests it holds */
    dlink held;           /* its requests held for an activation */
    uint32_t inflight;    /* entries of calls */
    uint64_t event_mark;  /* the last event delivered (once per event) */
    int touched;          /* on the hub's touched list */
    hconn *touched_next;
    int closing;          /* being closed: nothing more is sent to it */
    int monitor;          /* receives copies of routed traffic */
    int monitor_sys;      /* ...including sys. traffic */
    char *monitor_pattern; /* owned */
    size_t monitor_plen;
    ucount *user;         /* its account's connection count */
    uint32_t logged;      /* limits already logged for it (LOGGED_*) */
    uint64_t frames_routed; /* frames the hub queued for it */
    int lane;             /* has a lane: takes frames over max_frame */
};

struct ph_hub {
    ph_hub_io io;
    ph_hub_limits lim;
    htab conns, routes, topics, pend;
    tqueue **tqs;         /* owned, each owned */
    size_t ntq;
    parr monitors;        /* hconn * */
    uint32_t monitors_sys; /* of them, those that want sys. traffic */
    hconn *touched;       /* connections to kick at the next flush */
    uint32_t next_hub_id;
    uint64_t event_seq;
    ph_buf enc;           /* the frame being routed, encoded once: all
                             of it, or its head when enc_tail is set */
    const uint8_t *enc_tail; /* the payload of the frame in enc, not
                                copied (see hub_encode); NULL: none */
    size_t enc_tail_len;
    ph_buf mon;           /* a monitor copy */
    hconn *cur;           /* the sender of the frame being handled */
    ph_buf *cur_out;      /* its send queue */
    ph_err cur_err;       /* ENOMEM on cur_out */
    ph_hub_stats st;
    htab users;           /* ucount by SID */
    htab acts;            /* activation by service name */
    uint32_t next_act_id;
    uint32_t missed;      /* subscribers the event being published could
                             not reach (too large, no lane) */
};

/* Each limit is logged once per connection (and all of them rate-limited by
 * the platform, PH_HUB_LOG_LIMITED), so a client hammering a limit cannot
 * fill the disk. */
enum {
    LOGGED_INFLIGHT = 1, LOGGED_ROUTES = 2, LOGGED_SUBS = 4,
    LOGGED_DENIED = 8, LOGGED_PROVIDER = 16
};

/* The longest description a registration may carry (sys.describe). */
#define HUB_DESCRIBE_MAX (16u * 1024u)

/* What a [route.NAME] rule can speak of; the most specific rule that speaks
 * of it wins (hub_rules.c). */
enum {
    ACT_CALL, ACT_PROVIDE, ACT_PUBLISH, ACT_SUBSCRIBE, ACT_TIMEOUT,
    ACT_ACTIVATE
};

/* The hub formats with the C library's vsnprintf and uses %zu; mingw's
 * "printf" check means Microsoft's older dialect, which lacks it. */
#if defined(__MINGW32__)
#define HUB_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#elif defined(__GNUC__)
#define HUB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HUB_PRINTF(a, b)
#endif

/* hub_send.c: the way out. */
void hub_log(ph_hub *h, int level, const char *fmt, ...) HUB_PRINTF(3, 4);
void hub_log_limit(ph_hub *h, hconn *c, uint32_t which, const char *fmt, ...)
    HUB_PRINTF(4, 5);
void hub_close(ph_hub *h, hconn *c, const char *why);
int hub_deliver(ph_hub *h, hconn *c, const uint8_t *data, size_t len,
                const char *role);
/* hub_deliver for the frame in h->enc, with its payload when hub_encode
 * left it apart (h->enc_tail). */
int hub_deliver_enc(ph_hub *h, hconn *c, const char *role);
/* Encode a frame into h->enc. A payload of PH_HUB_SPLIT_BYTES or more,
 * when the transport takes frames in parts, is not copied: h->enc gets the
 * head and h->enc_tail points at the payload, which must stay valid until
 * the frame has been delivered. Anything else that writes h->enc sets
 * enc_tail to NULL first. */
ph_err hub_encode(ph_hub *h, uint8_t kind, uint32_t id, uint32_t status,
                  const char *route, size_t route_len,
                  const uint8_t *payload, size_t payload_len);
void hub_send_error(ph_hub *h, hconn *c, uint32_t id, ph_err code,
                    const char *route, size_t route_len, const char *fmt, ...)
    HUB_PRINTF(7, 8);
void hub_reply(ph_hub *h, uint32_t id, const void *payload, size_t len);
int hub_is_sys(const char *name, size_t len);
int hub_pattern_valid(const char *p, size_t len, int allow_star);

/* 1 when the frame in h->enc is too large for c: over max_frame, and c has
 * no lane to take it (hub_send.c). */
int hub_too_large_for(const ph_hub *h, const hconn *c);

/* hub_conn.c */
hconn *hub_conn_find(const ph_hub *h, uint32_t id);

/* hub_rules.c */
const ph_route_rule *hub_rule_for(const ph_hub *h, const char *name,
                                  size_t len, int act);
int hub_rule_allows(const hconn *c, const ph_route_rule *r, int act);
int hub_access_ok(ph_hub *h, hconn *c, int act, const char *name, size_t len,
                  uint32_t id);
int hub_admin_ok(ph_hub *h, hconn *c, const char *name, uint32_t id);
uint32_t hub_route_timeout(const ph_hub *h, const char *name, size_t len);

/* hub_route.c */
hroute *hub_route_lookup(const ph_hub *h, const char *name, size_t len);
void hub_drop_registration(ph_hub *h, hroute *r, hconn *c);

/* hub_call.c */
void hub_forward(ph_hub *h, hconn *c, const ph_frame *f);
void hub_answer(ph_hub *h, hconn *c, const ph_frame *f);
pending *hub_pending_find(const ph_hub *h, uint32_t hub_id);
void hub_pending_free(ph_hub *h, pending *p);
void hub_pending_fail(ph_hub *h, pending *p, ph_err code, const char *fmt,
                      ...) HUB_PRINTF(4, 5);
void hub_calls_free(ph_hub *h);

/* hub_activate.c: hold f from c for its route's service (1), or 0 when no
 * rule activates it; a provider registered (forward what it serves now);
 * deadlines (returns ms to the next, UINT32_MAX for none); c is gone;
 * everything freed. */
int hub_activate(ph_hub *h, hconn *c, const ph_frame *f);
void hub_activation_served(ph_hub *h);
uint32_t hub_activation_tick(ph_hub *h, uint64_t now);
void hub_activation_forget(ph_hub *h, hconn *c);
void hub_activations_free(ph_hub *h);
uint32_t hub_held_count(const hconn *c);

/* hub_topic.c */
void hub_publish(ph_hub *h, uint32_t from, const char *name, size_t len,
                 const uint8_t *payload, size_t plen);
void hub_route_event(ph_hub *h, const char *topic_name, const hroute *r);
void hub_topic_drop_sub(ph_hub *h, topic *t, hconn *c);

/* hub_monitor.c */
void hub_monitor_copy(ph_hub *h, uint32_t from, uint32_t to,
                      const char *route, size_t route_len,
                      const uint8_t *frame, size_t len);
/* hub_monitor_copy of the frame in h->enc (with h->enc_tail). */
void hub_monitor_copy_enc(ph_hub *h, uint32_t from, uint32_t to,
                          const char *route, size_t route_len);
void hub_monitor_off(ph_hub *h, hconn *c);


#endif
