/* The hub (hub.h): route table, subscriptions, forwarded requests and their
 * deadlines, fan-out and monitor copies. Every decision is made here, in
 * portable code; every byte leaves through ph_hub_io. */
#include "hub.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "platform.h"

/* ---- hash tables and lists -------------------------------------------- */

/* An intrusive chained hash table: each entry embeds an hnode first. Keys
 * are compared by the callers; the table only keeps the chains. */
typedef struct hnode {
    struct hnode *next;
    uint32_t hash;
} hnode;

typedef struct htab {
    hnode **b;   /* owned; nb chains */
    size_t nb;   /* a power of two, or 0 */
    size_t n;    /* entries */
} htab;

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static uint32_t hash_u32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    return x ^ (x >> 16);
}

static hnode *htab_chain(const htab *t, uint32_t hash)
{
    return t->nb ? t->b[hash & (t->nb - 1)] : NULL;
}

static ph_err htab_add(htab *t, hnode *e)
{
    size_t i, nb;
    hnode **b, *x, *next;

    if (t->n + 1 > t->nb) {
        nb = t->nb ? t->nb * 2 : 16;
        b = ph_alloc(nb * sizeof *b);
        if (b == NULL)
            return PH_ENOMEM;
        memset(b, 0, nb * sizeof *b);
        for (i = 0; i < t->nb; i++) {
            for (x = t->b[i]; x != NULL; x = next) {
                next = x->next;
                x->next = b[x->hash & (nb - 1)];
                b[x->hash & (nb - 1)] = x;
            }
        }
        ph_free(t->b);
        t->b = b;
        t->nb = nb;
    }
    e->next = t->b[e->hash & (t->nb - 1)];
    t->b[e->hash & (t->nb - 1)] = e;
    t->n++;
    return PH_OK;
}

static void htab_del(htab *t, hnode *e)
{
    hnode **p = &t->b[e->hash & (t->nb - 1)];

    while (*p != e)
        p = &(*p)->next;
    *p = e->next;
    t->n--;
}

/* A circular doubly linked list with a sentinel. */
typedef struct dlink {
    struct dlink *prev, *next;
} dlink;

static void dl_init(dlink *l) { l->prev = l->next = l; }
static int dl_empty(const dlink *l) { return l->next == l; }

static void dl_push(dlink *l, dlink *e)
{
    e->prev = l->prev;
    e->next = l;
    l->prev->next = e;
    l->prev = e;
}

static void dl_del(dlink *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

#define CONTAINER(p, type, member) \
    ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* A growable array of pointers. */
typedef struct parr {
    void **v;
    uint32_t n, cap;
} parr;

static ph_err parr_push(parr *a, void *x)
{
    void **v;
    uint32_t cap;

    if (a->n == a->cap) {
        cap = a->cap ? a->cap * 2 : 4;
        v = ph_realloc(a->v, cap * sizeof *v);
        if (v == NULL)
            return PH_ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return PH_OK;
}

static int parr_find(const parr *a, const void *x)
{
    uint32_t i;

    for (i = 0; i < a->n; i++)
        if (a->v[i] == x)
            return (int)i;
    return -1;
}

/* Remove entry i keeping the order (round-robin and waiting lines rely on
 * it). */
static void parr_remove_at(parr *a, uint32_t i)
{
    memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof a->v[0]);
    a->n--;
}

static void parr_free(parr *a)
{
    ph_free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* ---- the hub's records ------------------------------------------------- */

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
    uint32_t inflight;    /* entries of calls */
    uint64_t event_mark;  /* the last event delivered (once per event) */
    int touched;          /* on the hub's touched list */
    hconn *touched_next;
    int closing;          /* being closed: nothing more is sent to it */
    int monitor;          /* receives copies of routed traffic */
    int monitor_sys;      /* ...including sys. traffic */
    char *monitor_pattern; /* owned */
    size_t monitor_plen;
    struct ucount *user;  /* its account's connection count */
    uint32_t logged;      /* limits already logged for it (LOGGED_*) */
    uint64_t frames_routed; /* frames the hub queued for it */
};

/* Connections per account (user SID). */
typedef struct ucount {
    hnode node;
    char *sid;            /* owned */
    size_t len;
    uint32_t n;
} ucount;

/* Each limit is logged once per connection (and all of them rate-limited),
 * so a client hammering a limit cannot fill the disk. */
enum {
    LOGGED_INFLIGHT = 1, LOGGED_ROUTES = 2, LOGGED_SUBS = 4,
    LOGGED_DENIED = 8, LOGGED_PROVIDER = 16
};
/* The rate limit for limit log lines: a burst, then this many a second. */
#define LOG_BURST 20
#define LOG_PER_SECOND 5

struct ph_hub {
    ph_hub_io io;
    ph_hub_limits lim;
    const char *const *builtins;
    htab conns, routes, topics, pend;
    tqueue **tqs;         /* owned, each owned */
    size_t ntq;
    parr monitors;        /* hconn * */
    uint32_t monitors_sys; /* of them, those that want sys. traffic */
    hconn *touched;       /* connections to kick at the next flush */
    uint32_t next_hub_id;
    uint64_t event_seq;
    ph_buf enc;           /* the frame being routed, encoded once */
    ph_buf mon;           /* a monitor copy */
    hconn *cur;           /* the sender of the frame being handled */
    ph_buf *cur_out;      /* its send queue */
    ph_err cur_err;       /* ENOMEM on cur_out */
    ph_hub_stats st;
    htab users;           /* ucount by SID */
    double log_tokens;    /* limit log lines allowed now */
    uint64_t log_refilled; /* when log_tokens was last topped up */
    uint64_t log_suppressed; /* limit lines not written since */
};

/* The hub's own control routes, answered here rather than by the router. */
static const char *const control_routes[] = {
    "sys.register", "sys.unregister", "sys.subscribe", "sys.unsubscribe",
    "sys.routes", "sys.subscriptions", "sys.client", "sys.monitor",
    "sys.clients", NULL};

static void logf_(ph_hub *h, int level, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    if (h->io.log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->io.log(h->io.ctx, level, msg);
}

/* A limit fired for c: log it once per connection and limit, and no more
 * than LOG_PER_SECOND lines a second overall. */
static void log_limit(ph_hub *h, hconn *c, uint32_t which, const char *fmt,
                      ...)
{
    char msg[400];
    uint64_t now;
    va_list ap;
    int n;

    if (h->io.log == NULL || (c->logged & which))
        return;
    c->logged |= which;
    now = h->io.now_ms(h->io.ctx);
    h->log_tokens += (double)(now - h->log_refilled) * LOG_PER_SECOND / 1000.0;
    h->log_refilled = now;
    if (h->log_tokens > LOG_BURST)
        h->log_tokens = LOG_BURST;
    if (h->log_tokens < 1.0) {
        h->log_suppressed++;
        return;
    }
    h->log_tokens -= 1.0;
    n = snprintf(msg, sizeof msg, "conn %u pid %u (%s): ", (unsigned)c->id,
                 (unsigned)c->who.pid,
                 c->who.account[0] ? c->who.account : c->who.sid);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    if (h->log_suppressed > 0) {
        logf_(h, 1, "%llu more limit messages were not logged (rate limit)",
              (unsigned long long)h->log_suppressed);
        h->log_suppressed = 0;
    }
    h->io.log(h->io.ctx, 1, msg);
}

static int is_sys(const char *name, size_t len)
{
    return len >= 4 && memcmp(name, "sys.", 4) == 0;
}

int ph_pattern_match(const char *pattern, size_t plen, const char *name,
                     size_t nlen)
{
    if (plen == 1 && pattern[0] == '*')
        return 1;
    if (plen >= 2 && pattern[plen - 1] == '*')
        return nlen > plen - 1 && memcmp(pattern, name, plen - 1) == 0;
    return plen == nlen && memcmp(pattern, name, nlen) == 0;
}

/* A pattern is a name, "name.*" or "*" (allow_star). Returns 1 when valid. */
static int pattern_valid(const char *p, size_t len, int allow_star)
{
    if (len == 1 && p[0] == '*')
        return allow_star;
    if (len >= 2 && p[len - 1] == '*')
        return len >= 3 && p[len - 2] == '.' && ph_route_valid(p, len - 1);
    return len > 0 && len <= PH_ROUTE_MAX && ph_route_valid(p, len);
}

/* ---- lookups ------------------------------------------------------------ */

static hconn *conn_find(const ph_hub *h, uint32_t id)
{
    uint32_t hash = hash_u32(id);
    hnode *e;

    for (e = htab_chain(&h->conns, hash); e != NULL; e = e->next)
        if (e->hash == hash && ((hconn *)e)->id == id)
            return (hconn *)e;
    return NULL;
}

static pending *pending_find(const ph_hub *h, uint32_t hub_id)
{
    uint32_t hash = hash_u32(hub_id);
    hnode *e;

    for (e = htab_chain(&h->pend, hash); e != NULL; e = e->next)
        if (e->hash == hash && ((pending *)e)->hub_id == hub_id)
            return (pending *)e;
    return NULL;
}

/* Routes, topics and ucounts all start with an hnode, then name and len. */
typedef struct named {
    hnode node;
    char *name;
    size_t len;
} named;

static void *named_find(const htab *t, const char *name, size_t len)
{
    uint32_t hash = hash_bytes(name, len);
    hnode *e;

    for (e = htab_chain(t, hash); e != NULL; e = e->next) {
        named *n = (named *)e;
        if (e->hash == hash && n->len == len && memcmp(n->name, name, len) == 0)
            return n;
    }
    return NULL;
}

/* A new zeroed entry of size bytes (a route, topic or ucount, which all
 * start like named) holding a copy of name, added to t. NULL when out of
 * memory, with nothing added. */
static void *named_new(htab *t, size_t size, const char *name, size_t len)
{
    named *n = ph_alloc(size);

    if (n == NULL)
        return NULL;
    memset(n, 0, size);
    n->name = ph_alloc(len + 1);
    if (n->name == NULL) {
        ph_free(n);
        return NULL;
    }
    memcpy(n->name, name, len);
    n->name[len] = '\0';
    n->len = len;
    n->node.hash = hash_bytes(name, len);
    if (htab_add(t, &n->node) != PH_OK) {
        ph_free(n->name);
        ph_free(n);
        return NULL;
    }
    return n;
}

/* Take n out of t and free it (its own arrays are the caller's). */
static void named_free(htab *t, named *n)
{
    htab_del(t, &n->node);
    ph_free(n->name);
    ph_free(n);
}

/* The registration that serves route: exact, then the longest prefix. */
static hroute *route_lookup(const ph_hub *h, const char *name, size_t len)
{
    char key[PH_ROUTE_MAX + 2];
    hroute *r = named_find(&h->routes, name, len);
    size_t i;

    if (r != NULL)
        return r;
    for (i = len; i-- > 1;) {
        if (name[i] != '.')
            continue;
        memcpy(key, name, i + 1);
        key[i + 1] = '*';
        r = named_find(&h->routes, key, i + 2);
        if (r != NULL)
            return r;
    }
    return NULL;
}

/* The timeout for a request to route: the most specific [route.NAME]. */
static uint32_t route_timeout(const ph_hub *h, const char *name, size_t len)
{
    size_t i, best_len = 0;
    uint32_t t = h->lim.request_timeout_ms;
    int found = 0;

    for (i = 0; i < h->lim.nrules; i++) {
        const ph_route_rule *rule = &h->lim.rules[i];
        size_t rl = strlen(rule->name);
        int exact = rl == len && memcmp(rule->name, name, len) == 0;
        /* Exact beats any prefix: rank exact as longer than any name. */
        size_t rank = exact ? PH_ROUTE_MAX + 10 : rl;
        if (rule->request_timeout_ms == 0)
            continue;
        if (!exact && !(rl >= 2 && rule->name[rl - 1] == '*' &&
                        ph_pattern_match(rule->name, rl, name, len)))
            continue;
        if (!found || rank > best_len) {
            best_len = rank;
            t = rule->request_timeout_ms;
            found = 1;
        }
    }
    return t;
}

/* ---- access rules ------------------------------------------------------- */

enum { ACT_CALL, ACT_PROVIDE, ACT_PUBLISH, ACT_SUBSCRIBE };
static const char *const act_names[] = {"call", "provide", "publish",
                                        "subscribe"};

static const char *rule_list(const ph_route_rule *r, int act)
{
    switch (act) {
    case ACT_CALL: return r->call;
    case ACT_PROVIDE: return r->provide;
    case ACT_PUBLISH: return r->publish;
    default: return r->subscribe;
    }
}

/* The most specific [route.NAME] that says something about act on name (a
 * route, or a pattern when subscribing: a rule's prefix covers the patterns
 * under it). */
static const ph_route_rule *rule_for(const ph_hub *h, const char *name,
                                     size_t len, int act)
{
    const ph_route_rule *best = NULL;
    size_t i, best_rank = 0;

    for (i = 0; i < h->lim.nrules; i++) {
        const ph_route_rule *r = &h->lim.rules[i];
        size_t rl = strlen(r->name), rank;
        if (rule_list(r, act) == NULL && r->min_integrity == 0)
            continue;
        if (rl == len && memcmp(r->name, name, len) == 0)
            rank = PH_ROUTE_MAX + 10;
        else if (rl >= 2 && r->name[rl - 1] == '*' &&
                 ph_pattern_match(r->name, rl, name, len))
            rank = rl;
        else
            continue;
        if (best == NULL || rank > best_rank) {
            best = r;
            best_rank = rank;
        }
    }
    return best;
}

/* 1 when sid is one of the comma-separated SIDs of list. */
static int sid_listed(const char *list, const char *sid, size_t len)
{
    const char *p = list;

    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && len > 0 && memcmp(p, sid, len) == 0)
            return 1;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

static int rule_allows(const hconn *c, const ph_route_rule *r, int act)
{
    const char *list = rule_list(r, act), *g;

    if (r->min_integrity != 0 && c->who.integrity_rid < r->min_integrity)
        return 0;
    if (list == NULL)
        return 1;
    if (sid_listed(list, c->who.sid, strlen(c->who.sid)))
        return 1;
    for (g = c->who.groups; g != NULL && *g;) {
        const char *end = strchr(g, ',');
        size_t n = end ? (size_t)(end - g) : strlen(g);
        if (sid_listed(list, g, n))
            return 1;
        if (end == NULL)
            break;
        g = end + 1;
    }
    return 0;
}

static void send_error(ph_hub *h, hconn *c, uint32_t id, ph_err code,
                       const char *route, size_t route_len,
                       const char *fmt, ...);

/* May c do act on name? When not, c gets ERROR FORBIDDEN naming the rule
 * (answering id), and the refusal is counted and logged. */
static int access_ok(ph_hub *h, hconn *c, int act, const char *name,
                     size_t len, uint32_t id)
{
    const ph_route_rule *r = rule_for(h, name, len, act);
    const char *why;

    if (r == NULL || rule_allows(c, r, act))
        return 1;
    why = r->min_integrity != 0 && c->who.integrity_rid < r->min_integrity
              ? "min_integrity"
              : act_names[act];
    h->st.access_denied++;
    log_limit(h, c, LOGGED_DENIED, "refused: %s '%.*s' by [route.%s] %s",
              act_names[act], (int)len, name, r->name, why);
    send_error(h, c, id, PH_EFORBIDDEN, name, len,
               "[route.%s] %s does not allow conn %u (%s, integrity %s) to "
               "%s '%.*s'", r->name, why, (unsigned)c->id,
               c->who.account[0] ? c->who.account : c->who.sid,
               c->who.integrity[0] ? c->who.integrity : "unknown",
               act_names[act], (int)len, name);
    return 0;
}

/* Admin routes (sys.monitor, sys.clients): a [route.NAME] call rule when
 * there is one, else the service's own account and administrators only. */
static int admin_ok(ph_hub *h, hconn *c, const char *name, uint32_t id)
{
    size_t len = strlen(name);

    if (rule_for(h, name, len, ACT_CALL) != NULL)
        return access_ok(h, c, ACT_CALL, name, len, id);
    if (c->who.admin)
        return 1;
    h->st.access_denied++;
    log_limit(h, c, LOGGED_DENIED, "refused: %s is for administrators", name);
    send_error(h, c, id, PH_EFORBIDDEN, name, len,
               "%s is for the service's account and administrators", name);
    return 0;
}

/* ---- sending ------------------------------------------------------------ */

static void touch(ph_hub *h, hconn *c)
{
    if (c->touched)
        return;
    c->touched = 1;
    c->touched_next = h->touched;
    h->touched = c;
}

static void close_conn(ph_hub *h, hconn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    h->io.close(h->io.ctx, c->handle, why);
}

/* c does not read what it asked for: disconnect it, loudly. */
static void slow(ph_hub *h, hconn *c, const char *role, size_t queued,
                 size_t len)
{
    logf_(h, 1, "conn %u pid %u (%s): disconnected: %s not reading: "
          "%zu bytes queued, %zu more due, send_queue_bytes %u",
          (unsigned)c->id, (unsigned)c->who.pid, c->who.account, role,
          queued, len, (unsigned)h->lim.send_queue_bytes);
    h->st.slow_disconnects++;
    close_conn(h, c, "not reading");
}

/* Queue one or more encoded frames for c. role, when not NULL, says that c
 * asked for them (a subscriber, a caller, a monitor): if they do not fit its
 * quota, c is disconnected. Returns 0 when queued. */
static int deliver(ph_hub *h, hconn *c, const uint8_t *data, size_t len,
                   const char *role)
{
    size_t q;

    if (c->closing)
        return -1;
    c->frames_routed++;
    if (c == h->cur) {
        /* The sender's own queue: it is bounded by the sender's reading
         * being paused while the queue is over quota. */
        if (ph_buf_append(h->cur_out, data, len) != PH_OK) {
            h->cur_err = PH_ENOMEM;
            return -1;
        }
        return 0;
    }
    if (role != NULL) {
        q = h->io.queued(h->io.ctx, c->handle);
        if (q + len > h->lim.send_queue_bytes) {
            slow(h, c, role, q, len);
            return -1;
        }
    }
    if (h->io.send(h->io.ctx, c->handle, data, len) != PH_OK) {
        logf_(h, 0, "conn %u: out of memory queueing %zu bytes",
              (unsigned)c->id, len);
        close_conn(h, c, "out of memory");
        return -1;
    }
    touch(h, c);
    return 0;
}

/* A copy of a routed frame for every monitor whose pattern matches route.
 * from/to are connection ids, 0 for the hub. */
static void monitor_copy(ph_hub *h, uint32_t from, uint32_t to,
                         const char *route, size_t route_len,
                         const uint8_t *frame, size_t len)
{
    uint8_t head[16];
    size_t start, room;
    uint32_t i;
    int sys = is_sys(route, route_len), any = 0;
    uint64_t t;

    if (h->monitors.n == 0 || (sys && h->monitors_sys == 0))
        return;
    for (i = 0; i < h->monitors.n && !any; i++) {
        hconn *m = h->monitors.v[i];
        any = (!sys || m->monitor_sys) &&
              ph_pattern_match(m->monitor_pattern, m->monitor_plen, route,
                               route_len);
    }
    if (!any)
        return;
    h->mon.len = 0;
    if (ph_frame_begin(&h->mon, PH_EVENT, 0, 0, "sys.monitor", 11, &start) !=
        PH_OK)
        return;
    t = h->io.wall_ms(h->io.ctx);
    ph_put_u32le(head, (uint32_t)t);
    ph_put_u32le(head + 4, (uint32_t)(t >> 32));
    ph_put_u32le(head + 8, from);
    ph_put_u32le(head + 12, to);
    /* A copy of a frame near the size limit is cut to fit one frame. */
    room = h->lim.max_frame - (h->mon.len + sizeof head);
    if (len > room)
        len = room;
    if (ph_buf_append(&h->mon, head, sizeof head) != PH_OK ||
        ph_buf_append(&h->mon, frame, len) != PH_OK ||
        ph_frame_end(&h->mon, start, h->lim.max_frame) != PH_OK)
        return;
    for (i = 0; i < h->monitors.n; i++) {
        hconn *m = h->monitors.v[i];
        if ((sys && !m->monitor_sys) ||
            !ph_pattern_match(m->monitor_pattern, m->monitor_plen, route,
                              route_len))
            continue;
        if (deliver(h, m, h->mon.data, h->mon.len, "monitor") == 0)
            h->st.frames_out++;
    }
}

/* Encode a frame into h->enc. */
static ph_err encode(ph_hub *h, uint8_t kind, uint32_t id, uint32_t status,
                     const char *route, size_t route_len,
                     const uint8_t *payload, size_t payload_len)
{
    ph_frame f;

    memset(&f, 0, sizeof f);
    f.kind = kind;
    f.id = id;
    f.status = status;
    f.route = route;
    f.route_len = (uint8_t)route_len;
    f.payload = payload;
    f.payload_len = (uint32_t)payload_len;
    h->enc.len = 0;
    return ph_frame_append(&h->enc, &f);
}

/* An ERROR from the hub to c, answering its request id. route names what
 * the request was for (monitor copies). */
static void send_error(ph_hub *h, hconn *c, uint32_t id, ph_err code,
                       const char *route, size_t route_len,
                       const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->enc.len = 0;
    if (ph_frame_append_error(&h->enc, id, code, msg) != PH_OK) {
        if (c == h->cur)
            h->cur_err = PH_ENOMEM;
        return;
    }
    if (deliver(h, c, h->enc.data, h->enc.len, "caller") != 0)
        return;
    h->st.frames_out++;
    h->st.errors_sent++;
    monitor_copy(h, 0, c->id, route, route_len, h->enc.data, h->enc.len);
}

/* A REPLY to the sender, with a payload. */
static void reply_cur(ph_hub *h, uint32_t id, const void *payload, size_t len)
{
    if (encode(h, PH_REPLY, id, 0, NULL, 0, payload, len) != PH_OK ||
        deliver(h, h->cur, h->enc.data, h->enc.len, NULL) != 0) {
        h->cur_err = PH_ENOMEM;
        return;
    }
    h->st.frames_out++;
}

/* ---- publish ------------------------------------------------------------ */

static int deliver_topic(ph_hub *h, topic *t, uint64_t seq,
                         const ph_route_rule *rule)
{
    int n = 0;
    uint32_t i;

    if (t == NULL)
        return 0;
    for (i = 0; i < t->subs.n; i++) {
        hconn *s = t->subs.v[i];
        if (s->event_mark == seq)
            continue;
        s->event_mark = seq;
        /* A broad pattern ("*") does not get around a topic's subscribe
         * rule: it is checked for every event too. */
        if (rule != NULL && !rule_allows(s, rule, ACT_SUBSCRIBE))
            continue;
        if (deliver(h, s, h->enc.data, h->enc.len, "subscriber") == 0)
            n++;
    }
    return n;
}

/* Deliver an EVENT on topic name to every matching subscriber, once each.
 * from is the publisher's id, 0 for the hub. */
static void publish(ph_hub *h, uint32_t from, const char *name, size_t len,
                    const uint8_t *payload, size_t plen)
{
    char key[PH_ROUTE_MAX + 2];
    uint64_t seq = ++h->event_seq;
    const ph_route_rule *rule = rule_for(h, name, len, ACT_SUBSCRIBE);
    size_t i;
    int n = 0;

    if (encode(h, PH_EVENT, 0, 0, name, len, payload, plen) != PH_OK)
        return;
    n += deliver_topic(h, named_find(&h->topics, name, len), seq, rule);
    for (i = len; i-- > 1;) {
        if (name[i] != '.')
            continue;
        memcpy(key, name, i + 1);
        key[i + 1] = '*';
        n += deliver_topic(h, named_find(&h->topics, key, i + 2), seq, rule);
    }
    n += deliver_topic(h, named_find(&h->topics, "*", 1), seq, rule);
    h->st.events_delivered += (uint64_t)n;
    h->st.frames_out += (uint64_t)n;
    if (n == 0)
        h->st.events_unheard++;
    monitor_copy(h, from, 0, name, len, h->enc.data, h->enc.len);
}

static void route_event(ph_hub *h, const char *topic_name, const hroute *r)
{
    publish(h, 0, topic_name, strlen(topic_name), (const uint8_t *)r->name,
            r->len);
}

/* ---- forwarded requests ------------------------------------------------- */

static tqueue *tqueue_get(ph_hub *h, uint32_t timeout_ms)
{
    tqueue **v, *q;
    size_t i;

    for (i = 0; i < h->ntq; i++)
        if (h->tqs[i]->timeout_ms == timeout_ms)
            return h->tqs[i];
    /* Queues are few (one per distinct timeout) and live as long as the
     * hub; each is allocated alone so its sentinel never moves. */
    q = ph_alloc(sizeof *q);
    if (q == NULL)
        return NULL;
    v = ph_realloc(h->tqs, (h->ntq + 1) * sizeof *v);
    if (v == NULL) {
        ph_free(q);
        return NULL;
    }
    h->tqs = v;
    h->tqs[h->ntq++] = q;
    q->timeout_ms = timeout_ms;
    dl_init(&q->head);
    return q;
}

static void pending_free(ph_hub *h, pending *p)
{
    htab_del(&h->pend, &p->node);
    dl_del(&p->by_provider);
    dl_del(&p->by_timer);
    if (p->caller != NULL) {
        dl_del(&p->by_caller);
        p->caller->inflight--;
    }
    ph_free(p);
}

/* Answer p's caller with an error from the hub and forget p. */
static void pending_fail(ph_hub *h, pending *p, ph_err code, const char *fmt,
                         ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->caller != NULL)
        send_error(h, p->caller, p->caller_req, code, p->route, p->route_len,
                   "%s", msg);
    pending_free(h, p);
}

static hconn *pick_provider(hroute *r)
{
    uint32_t i, n = r->prov.n;

    for (i = 0; i < n; i++) {
        hconn *c = r->prov.v[(r->rr + i) % n];
        if (!c->closing) {
            r->rr = (r->rr + i + 1) % n;
            return c;
        }
    }
    return NULL;
}

static uint32_t next_hub_id(ph_hub *h)
{
    do {
        h->next_hub_id++;
    } while (h->next_hub_id == 0 || pending_find(h, h->next_hub_id) != NULL);
    return h->next_hub_id;
}

static void forward(ph_hub *h, hconn *c, const ph_frame *f)
{
    hroute *r;
    hconn *prov;
    pending *p;
    tqueue *q;
    size_t queued;
    uint32_t timeout;

    if (c->inflight >= h->lim.max_inflight_per_client) {
        h->st.requests_busy++;
        h->st.limit_max_inflight++;
        log_limit(h, c, LOGGED_INFLIGHT, "max_inflight_per_client (%u) "
                  "reached", (unsigned)h->lim.max_inflight_per_client);
        send_error(h, c, f->id, PH_EBUSY, f->route, f->route_len,
                   "max_inflight_per_client (%u) reached: this connection "
                   "has %u requests unanswered",
                   (unsigned)h->lim.max_inflight_per_client,
                   (unsigned)c->inflight);
        return;
    }
    if (!access_ok(h, c, ACT_CALL, f->route, f->route_len, f->id))
        return;
    r = route_lookup(h, f->route, f->route_len);
    if (r == NULL) {
        send_error(h, c, f->id, PH_ENOROUTE, f->route, f->route_len,
                   "no route '%.*s'", (int)f->route_len, f->route);
        return;
    }
    prov = pick_provider(r);
    if (prov == NULL) {
        h->st.requests_unavailable++;
        send_error(h, c, f->id, PH_EUNAVAIL, f->route, f->route_len,
                   "the provider of '%s' is disconnecting", r->name);
        return;
    }
    queued = prov != c ? h->io.queued(h->io.ctx, prov->handle) : 0;
    if (queued >= h->lim.send_queue_bytes) {
        h->st.requests_busy++;
        h->st.limit_provider_queue++;
        log_limit(h, prov, LOGGED_PROVIDER, "provider of '%s' not reading: "
                  "%zu bytes queued; callers get BUSY", r->name, queued);
        send_error(h, c, f->id, PH_EBUSY, f->route, f->route_len,
                   "provider of '%s' (conn %u) is not keeping up: %zu bytes "
                   "queued", r->name, (unsigned)prov->id, queued);
        return;
    }
    timeout = route_timeout(h, f->route, f->route_len);
    q = tqueue_get(h, timeout);
    p = ph_alloc(sizeof *p + f->route_len);
    if (q == NULL || p == NULL) {
        ph_free(p);
        send_error(h, c, f->id, PH_EINTERNAL, f->route, f->route_len,
                   "server out of memory");
        return;
    }
    memset(p, 0, sizeof *p);
    p->hub_id = next_hub_id(h);
    p->node.hash = hash_u32(p->hub_id);
    if (htab_add(&h->pend, &p->node) != PH_OK ||
        encode(h, PH_REQUEST, p->hub_id, c->id, f->route, f->route_len,
               f->payload, f->payload_len) != PH_OK) {
        if (h->pend.nb && pending_find(h, p->hub_id) == p)
            htab_del(&h->pend, &p->node);
        ph_free(p);
        send_error(h, c, f->id, PH_EINTERNAL, f->route, f->route_len,
                   "server out of memory");
        return;
    }
    p->caller_id = c->id;
    p->caller_req = f->id;
    p->caller = c;
    p->provider = prov;
    p->reg = r;
    p->timeout_ms = timeout;
    p->deadline = h->io.now_ms(h->io.ctx) + timeout;
    p->route_len = f->route_len;
    memcpy(p->route, f->route, f->route_len);
    dl_push(&c->calls, &p->by_caller);
    dl_push(&prov->serving, &p->by_provider);
    dl_push(&q->head, &p->by_timer);
    c->inflight++;
    if (deliver(h, prov, h->enc.data, h->enc.len, NULL) != 0) {
        pending_fail(h, p, PH_EUNAVAIL, "the provider of '%s' went away",
                     r->name);
        h->st.requests_unavailable++;
        return;
    }
    r->forwarded++;
    h->st.requests_forwarded++;
    h->st.frames_out++;
    monitor_copy(h, c->id, prov->id, f->route, f->route_len, h->enc.data,
                 h->enc.len);
}

/* A REPLY or ERROR from a provider. */
static void answer(ph_hub *h, hconn *c, const ph_frame *f)
{
    pending *p = pending_find(h, f->id);
    hconn *caller;

    if (p == NULL || p->provider != c) {
        h->st.replies_dropped++;
        logf_(h, 3, "conn %u: %s id %u answers nothing outstanding; dropped",
              (unsigned)c->id, f->kind == PH_REPLY ? "REPLY" : "ERROR",
              (unsigned)f->id);
        return;
    }
    caller = p->caller;
    if (caller == NULL) {
        h->st.replies_dropped++;
        pending_free(h, p);
        return;
    }
    if (encode(h, f->kind, p->caller_req, f->kind == PH_ERROR ? f->status : 0,
               NULL, 0, f->payload, f->payload_len) != PH_OK) {
        pending_fail(h, p, PH_EINTERNAL, "server out of memory");
        return;
    }
    if (deliver(h, caller, h->enc.data, h->enc.len, "caller") == 0) {
        h->st.frames_out++;
        if (f->kind == PH_ERROR)
            h->st.errors_sent++;
        monitor_copy(h, c->id, caller->id, p->route, p->route_len,
                     h->enc.data, h->enc.len);
    }
    pending_free(h, p);
}

/* ---- registrations ------------------------------------------------------ */

static void route_free(ph_hub *h, hroute *r)
{
    parr_free(&r->prov);
    parr_free(&r->wait);
    named_free(&h->routes, (named *)r);
}

static void reply_register_state(ph_hub *h, uint32_t id, const hroute *r,
                                 const hconn *c)
{
    char json[PH_ROUTE_MAX + 128];
    int w = parr_find(&r->wait, c), n;

    if (w < 0)
        n = snprintf(json, sizeof json,
                     "{\"route\":\"%s\",\"mode\":\"%s\",\"state\":\"serving\"}",
                     r->name, r->exclusive ? "exclusive" : "shared");
    else
        n = snprintf(json, sizeof json,
                     "{\"route\":\"%s\",\"mode\":\"exclusive\",\"state\":"
                     "\"waiting\",\"position\":%d}", r->name, w + 1);
    reply_cur(h, id, json, (size_t)n);
}

static void cmd_register(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                         size_t len)
{
    const char *sp = memchr(arg, ' ', len);
    size_t nlen = sp ? (size_t)(sp - arg) : len;
    int exclusive = 0;
    hroute *r;
    hconn *holder;

    if (sp != NULL) {
        if (len - nlen - 1 == 9 && memcmp(sp + 1, "exclusive", 9) == 0)
            exclusive = 1;
        else {
            send_error(h, c, id, PH_EBADREQ, "sys.register", 12,
                       "expected 'ROUTE' or 'ROUTE exclusive'");
            return;
        }
    }
    if (!pattern_valid(arg, nlen, 0)) {
        send_error(h, c, id, PH_EBADREQ, "sys.register", 12,
                   "'%.*s' is not a route or a 'prefix.*' pattern",
                   (int)nlen, arg);
        return;
    }
    if (is_sys(arg, nlen) || (nlen == 5 && memcmp(arg, "sys.*", 5) == 0)) {
        send_error(h, c, id, PH_EFORBIDDEN, "sys.register", 12,
                   "routes under 'sys.' belong to the hub");
        return;
    }
    r = named_find(&h->routes, arg, nlen);
    if (r != NULL && (parr_find(&r->prov, c) >= 0 || parr_find(&r->wait, c) >= 0)) {
        reply_register_state(h, id, r, c);
        return;
    }
    if (!access_ok(h, c, ACT_PROVIDE, arg, nlen, id))
        return;
    if (h->lim.max_routes_per_client != 0 &&
        c->regs.n >= h->lim.max_routes_per_client) {
        h->st.limit_max_routes++;
        log_limit(h, c, LOGGED_ROUTES, "max_routes_per_client (%u) reached",
                  (unsigned)h->lim.max_routes_per_client);
        send_error(h, c, id, PH_EBUSY, "sys.register", 12,
                   "max_routes_per_client (%u) reached",
                   (unsigned)h->lim.max_routes_per_client);
        return;
    }
    if (r != NULL && r->prov.n > 0) {
        holder = r->prov.v[0];
        if (r->exclusive && !exclusive) {
            send_error(h, c, id, PH_EFORBIDDEN, "sys.register", 12,
                       "route '%s' is held exclusively by conn %u (pid %u)",
                       r->name, (unsigned)holder->id, (unsigned)holder->who.pid);
            return;
        }
        if (!r->exclusive && exclusive) {
            send_error(h, c, id, PH_EFORBIDDEN, "sys.register", 12,
                       "route '%s' is served by %u shared provider(s)",
                       r->name, (unsigned)r->prov.n);
            return;
        }
    }
    if (r == NULL && (r = named_new(&h->routes, sizeof *r, arg, nlen)) == NULL)
        goto nomem;
    if (parr_push(&c->regs, r) != PH_OK)
        goto nomem_route;
    if (r->prov.n == 0) {
        r->exclusive = exclusive;
        if (parr_push(&r->prov, c) != PH_OK) {
            c->regs.n--;
            goto nomem_route;
        }
        reply_register_state(h, id, r, c);
        route_event(h, "sys.route.up", r);
        return;
    }
    if (parr_push(exclusive ? &r->wait : &r->prov, c) != PH_OK) {
        c->regs.n--;
        goto nomem_route;
    }
    reply_register_state(h, id, r, c);
    return;
nomem_route:
    if (r->prov.n == 0 && r->wait.n == 0)
        route_free(h, r);
nomem:
    send_error(h, c, id, PH_EINTERNAL, "sys.register", 12,
               "server out of memory");
}

/* c stops serving (or waiting for) r: its requests on r become UNAVAILABLE,
 * an exclusive route passes to the next in line, route events go out, and
 * an empty route is freed. */
static void drop_registration(ph_hub *h, hroute *r, hconn *c)
{
    int i = parr_find(&c->regs, r), w;
    dlink *e, *next;
    hconn *next_holder;

    if (i >= 0)
        parr_remove_at(&c->regs, (uint32_t)i);
    w = parr_find(&r->wait, c);
    if (w >= 0) {
        parr_remove_at(&r->wait, (uint32_t)w);
    } else if ((w = parr_find(&r->prov, c)) >= 0) {
        parr_remove_at(&r->prov, (uint32_t)w);
        if (r->rr > (uint32_t)w)
            r->rr--;
        if (r->prov.n && r->rr >= r->prov.n)
            r->rr = 0;
        for (e = c->serving.next; e != &c->serving; e = next) {
            pending *p = CONTAINER(e, pending, by_provider);
            next = e->next;
            if (p->reg != r)
                continue;
            h->st.requests_unavailable++;
            pending_fail(h, p, PH_EUNAVAIL,
                         "the provider of '%s' (conn %u) went away",
                         r->name, (unsigned)c->id);
        }
        if (r->prov.n == 0 && r->wait.n > 0) {
            /* The owner changes: down for the one that left, then up for
             * the next in line (D-Bus says both in one NameOwnerChanged). */
            route_event(h, "sys.route.down", r);
            next_holder = r->wait.v[0];
            parr_remove_at(&r->wait, 0);
            /* Cannot fail: prov had room for the one that left. */
            (void)parr_push(&r->prov, next_holder);
            r->rr = 0;
            if (encode(h, PH_EVENT, 0, 0, "sys.route.acquired", 18,
                       (const uint8_t *)r->name, r->len) == PH_OK &&
                deliver(h, next_holder, h->enc.data, h->enc.len,
                        "provider") == 0)
                h->st.frames_out++;
            route_event(h, "sys.route.up", r);
        } else if (r->prov.n == 0) {
            route_event(h, "sys.route.down", r);
        }
    }
    if (r->prov.n == 0 && r->wait.n == 0)
        route_free(h, r);
}

static void cmd_unregister(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                           size_t len)
{
    hroute *r = named_find(&h->routes, arg, len);

    if (r == NULL || parr_find(&c->regs, r) < 0) {
        send_error(h, c, id, PH_ENOROUTE, "sys.unregister", 14,
                   "this connection does not serve '%.*s'", (int)len, arg);
        return;
    }
    /* Reply first, so the provider sees the unregister answered before any
     * event the change causes. */
    reply_cur(h, id, NULL, 0);
    drop_registration(h, r, c);
}

/* ---- subscriptions ------------------------------------------------------ */

static void topic_drop_sub(ph_hub *h, topic *t, hconn *c)
{
    int i = parr_find(&t->subs, c);

    if (i >= 0)
        parr_remove_at(&t->subs, (uint32_t)i);
    if (t->subs.n == 0) {
        parr_free(&t->subs);
        named_free(&h->topics, (named *)t);
    }
}

static void cmd_subscribe(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                          size_t len)
{
    topic *t;

    if (!pattern_valid(arg, len, 1)) {
        send_error(h, c, id, PH_EBADREQ, "sys.subscribe", 13,
                   "'%.*s' is not a topic, a 'prefix.*' pattern or '*'",
                   (int)len, arg);
        return;
    }
    t = named_find(&h->topics, arg, len);
    if (t != NULL && parr_find(&c->subs, t) >= 0) {
        reply_cur(h, id, NULL, 0);
        return;
    }
    if (!access_ok(h, c, ACT_SUBSCRIBE, arg, len, id))
        return;
    if (h->lim.max_subscriptions_per_client != 0 &&
        c->subs.n >= h->lim.max_subscriptions_per_client) {
        h->st.limit_max_subscriptions++;
        log_limit(h, c, LOGGED_SUBS, "max_subscriptions_per_client (%u) "
                  "reached", (unsigned)h->lim.max_subscriptions_per_client);
        send_error(h, c, id, PH_EBUSY, "sys.subscribe", 13,
                   "max_subscriptions_per_client (%u) reached",
                   (unsigned)h->lim.max_subscriptions_per_client);
        return;
    }
    if (t == NULL && (t = named_new(&h->topics, sizeof *t, arg, len)) == NULL)
        goto nomem;
    if (parr_push(&t->subs, c) != PH_OK) {
        if (t->subs.n == 0)
            topic_drop_sub(h, t, c);
        goto nomem;
    }
    if (parr_push(&c->subs, t) != PH_OK) {
        topic_drop_sub(h, t, c);
        goto nomem;
    }
    reply_cur(h, id, NULL, 0);
    return;
nomem:
    send_error(h, c, id, PH_EINTERNAL, "sys.subscribe", 13,
               "server out of memory");
}

static void cmd_unsubscribe(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                            size_t len)
{
    topic *t = named_find(&h->topics, arg, len);
    int i = t ? parr_find(&c->subs, t) : -1;

    if (i < 0) {
        send_error(h, c, id, PH_ENOROUTE, "sys.unsubscribe", 15,
                   "not subscribed to '%.*s'", (int)len, arg);
        return;
    }
    parr_remove_at(&c->subs, (uint32_t)i);
    topic_drop_sub(h, t, c);
    reply_cur(h, id, NULL, 0);
}

/* ---- views: sys.routes, sys.subscriptions, sys.client ------------------- */

static void put(ph_buf *b, ph_err *err, const char *s, size_t n)
{
    if (*err == PH_OK)
        *err = ph_buf_append(b, s, n);
}

/* Finish a JSON reply built in h->cur_out from start. */
static void json_done(ph_hub *h, uint32_t id, const char *route,
                      size_t route_len, size_t start, ph_err err)
{
    if (err == PH_OK)
        err = ph_frame_end(h->cur_out, start, h->lim.max_frame);
    else
        h->cur_out->len = start;
    if (err == PH_OK) {
        h->st.frames_out++;
        return;
    }
    if (err == PH_ETOOBIG)
        send_error(h, h->cur, id, PH_EINTERNAL, route, route_len,
                   "reply exceeds max frame");
    else
        h->cur_err = PH_ENOMEM;
}

static void cmd_routes(ph_hub *h, hconn *c, uint32_t id)
{
    ph_buf *b = h->cur_out;
    ph_err err;
    size_t start, i, n = 0;
    char item[PH_ROUTE_MAX + 200];
    hnode *e;

    err = ph_frame_begin(b, PH_REPLY, id, 0, NULL, 0, &start);
    if (err != PH_OK) {
        h->cur_err = err;
        return;
    }
    put(b, &err, "[", 1);
    for (i = 0; h->builtins != NULL && h->builtins[i] != NULL; i++) {
        int k = snprintf(item, sizeof item, "%s{\"route\":\"%s\",\"kind\":"
                         "\"builtin\"}", n++ ? "," : "", h->builtins[i]);
        put(b, &err, item, (size_t)k);
    }
    for (i = 0; control_routes[i] != NULL; i++) {
        int k = snprintf(item, sizeof item, "%s{\"route\":\"%s\",\"kind\":"
                         "\"builtin\"}", n++ ? "," : "", control_routes[i]);
        put(b, &err, item, (size_t)k);
    }
    for (i = 0; i < h->routes.nb; i++) {
        for (e = h->routes.b[i]; e != NULL; e = e->next) {
            hroute *r = (hroute *)e;
            int k = snprintf(item, sizeof item,
                             "%s{\"route\":\"%s\",\"kind\":\"provided\","
                             "\"mode\":\"%s\",\"providers\":%u,\"waiting\":%u,"
                             "\"forwarded\":%llu}", n++ ? "," : "", r->name,
                             r->exclusive ? "exclusive" : "shared",
                             (unsigned)r->prov.n, (unsigned)r->wait.n,
                             (unsigned long long)r->forwarded);
            put(b, &err, item, (size_t)k);
        }
    }
    put(b, &err, "]", 1);
    json_done(h, id, "sys.routes", 10, start, err);
}

static void cmd_subscriptions(ph_hub *h, hconn *c, uint32_t id)
{
    ph_buf *b = h->cur_out;
    ph_err err;
    size_t start, i, n = 0;
    char item[PH_ROUTE_MAX + 64];
    hnode *e;

    err = ph_frame_begin(b, PH_REPLY, id, 0, NULL, 0, &start);
    if (err != PH_OK) {
        h->cur_err = err;
        return;
    }
    put(b, &err, "[", 1);
    for (i = 0; i < h->topics.nb; i++) {
        for (e = h->topics.b[i]; e != NULL; e = e->next) {
            topic *t = (topic *)e;
            int k = snprintf(item, sizeof item,
                             "%s{\"pattern\":\"%s\",\"subscribers\":%u}",
                             n++ ? "," : "", t->name, (unsigned)t->subs.n);
            put(b, &err, item, (size_t)k);
        }
    }
    put(b, &err, "]", 1);
    json_done(h, id, "sys.subscriptions", 17, start, err);
}

static const char *nz(const char *s) { return s ? s : ""; }

static void cmd_client(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                       size_t len)
{
    uint64_t want = 0;
    size_t i, start;
    dlink *e;
    hconn *t = NULL;
    ph_json j;
    ph_err err;

    for (i = 0; i < len && i < 10 && arg[i] >= '0' && arg[i] <= '9'; i++)
        want = want * 10 + (uint64_t)(arg[i] - '0');
    if (len == 0 || i != len || want == 0 || want > UINT32_MAX) {
        send_error(h, c, id, PH_EBADREQ, "sys.client", 10,
                   "expected a connection id");
        return;
    }
    /* Only a provider that holds a request from that connection may ask:
     * identity is for deciding what a caller may do, not for browsing. */
    for (e = c->serving.next; e != &c->serving && t == NULL; e = e->next) {
        pending *p = CONTAINER(e, pending, by_provider);
        if (p->caller != NULL && p->caller_id == (uint32_t)want)
            t = p->caller;
    }
    if (t == NULL) {
        send_error(h, c, id, PH_EFORBIDDEN, "sys.client", 10,
                   "conn %u holds no request from conn %llu",
                   (unsigned)c->id, (unsigned long long)want);
        return;
    }
    err = ph_frame_begin(h->cur_out, PH_REPLY, id, 0, NULL, 0, &start);
    if (err != PH_OK) {
        h->cur_err = err;
        return;
    }
    ph_json_begin(&j, h->cur_out);
    ph_json_u64(&j, "conn_id", t->id);
    ph_json_u64(&j, "pid", t->who.pid);
    ph_json_u64(&j, "process_start", t->who.process_start);
    ph_json_str(&j, "sid", nz(t->who.sid), strlen(nz(t->who.sid)));
    ph_json_str(&j, "account", nz(t->who.account), strlen(nz(t->who.account)));
    ph_json_str(&j, "logon_session", nz(t->who.logon_session),
                strlen(nz(t->who.logon_session)));
    ph_json_str(&j, "integrity", nz(t->who.integrity),
                strlen(nz(t->who.integrity)));
    ph_json_u64(&j, "integrity_rid", t->who.integrity_rid);
    ph_json_str(&j, "exe", nz(t->who.exe), strlen(nz(t->who.exe)));
    ph_json_bool(&j, "admin", t->who.admin);
    json_done(h, id, "sys.client", 10, start, ph_json_end(&j));
}

/* sys.clients: every connection the hub knows, for administrators. */
static void cmd_clients(ph_hub *h, hconn *c, uint32_t id)
{
    ph_buf *b = h->cur_out;
    ph_conn_stats cs;
    ph_err err;
    size_t start, i, n = 0;
    uint32_t k;
    hnode *e;
    ph_json j;

    if (!admin_ok(h, c, "sys.clients", id))
        return;
    err = ph_frame_begin(b, PH_REPLY, id, 0, NULL, 0, &start);
    if (err != PH_OK) {
        h->cur_err = err;
        return;
    }
    put(b, &err, "[", 1);
    for (i = 0; i < h->conns.nb && err == PH_OK; i++) {
        for (e = h->conns.b[i]; e != NULL && err == PH_OK; e = e->next) {
            hconn *t = (hconn *)e;
            memset(&cs, 0, sizeof cs);
            if (h->io.conn_stats != NULL)
                h->io.conn_stats(h->io.ctx, t->handle, &cs);
            if (n++)
                put(b, &err, ",", 1);
            if (err != PH_OK)
                break;
            ph_json_begin(&j, b);
            ph_json_u64(&j, "conn_id", t->id);
            ph_json_u64(&j, "pid", t->who.pid);
            ph_json_str(&j, "account", t->who.account, strlen(t->who.account));
            ph_json_str(&j, "sid", t->who.sid, strlen(t->who.sid));
            ph_json_str(&j, "integrity", t->who.integrity,
                        strlen(t->who.integrity));
            ph_json_str(&j, "exe", t->who.exe, strlen(t->who.exe));
            ph_json_bool(&j, "admin", t->who.admin);
            ph_json_u64(&j, "connected_ms", cs.connected_ms);
            ph_json_u64(&j, "frames_in", cs.frames_in);
            ph_json_u64(&j, "frames_out", cs.frames_out + t->frames_routed);
            ph_json_u64(&j, "bytes_in", cs.bytes_in);
            ph_json_u64(&j, "bytes_out", cs.bytes_out);
            ph_json_u64(&j, "queued", cs.queued);
            ph_json_u64(&j, "inflight", t->inflight);
            ph_json_key(&j, "routes");
            put(b, &j.err, "[", 1);
            for (k = 0; k < t->regs.n && j.err == PH_OK; k++) {
                hroute *r = t->regs.v[k];
                if (k)
                    put(b, &j.err, ",", 1);
                if (j.err == PH_OK)
                    j.err = ph_json_append_string(b, r->name, r->len);
            }
            put(b, &j.err, "]", 1);
            ph_json_key(&j, "subscriptions");
            put(b, &j.err, "[", 1);
            for (k = 0; k < t->subs.n && j.err == PH_OK; k++) {
                topic *tp = t->subs.v[k];
                if (k)
                    put(b, &j.err, ",", 1);
                if (j.err == PH_OK)
                    j.err = ph_json_append_string(b, tp->name, tp->len);
            }
            put(b, &j.err, "]", 1);
            ph_json_bool(&j, "monitor", t->monitor);
            err = ph_json_end(&j);
        }
    }
    put(b, &err, "]", 1);
    json_done(h, id, "sys.clients", 11, start, err);
}

/* ---- the monitor -------------------------------------------------------- */

static void monitor_off(ph_hub *h, hconn *c)
{
    int i = parr_find(&h->monitors, c);

    if (i >= 0)
        parr_remove_at(&h->monitors, (uint32_t)i);
    if (c->monitor_sys)
        h->monitors_sys--;
    c->monitor = c->monitor_sys = 0;
    ph_free(c->monitor_pattern);
    c->monitor_pattern = NULL;
}

static void cmd_monitor(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                        size_t len)
{
    const char *pat = "*", *w = arg, *end = arg + len;
    size_t plen = 1, n;
    int sys = 0, have_pat = 0;
    char *copy;

    if (!admin_ok(h, c, "sys.monitor", id))
        return;
    while (w < end) {
        const char *sp = memchr(w, ' ', (size_t)(end - w));
        n = sp ? (size_t)(sp - w) : (size_t)(end - w);
        if (n == 3 && memcmp(w, "sys", 3) == 0) {
            sys = 1;
        } else if (n > 0 && !have_pat && pattern_valid(w, n, 1)) {
            pat = w;
            plen = n;
            have_pat = 1;
        } else if (n > 0) {
            send_error(h, c, id, PH_EBADREQ, "sys.monitor", 11,
                       "expected '[PATTERN] [sys]'");
            return;
        }
        w += n + 1;
    }
    copy = ph_alloc(plen + 1);
    if (copy == NULL || (!c->monitor && parr_push(&h->monitors, c) != PH_OK)) {
        ph_free(copy);
        send_error(h, c, id, PH_EINTERNAL, "sys.monitor", 11,
                   "server out of memory");
        return;
    }
    memcpy(copy, pat, plen);
    copy[plen] = '\0';
    ph_free(c->monitor_pattern);
    c->monitor_pattern = copy;
    c->monitor_plen = plen;
    if (c->monitor_sys != sys)
        h->monitors_sys += sys ? 1 : (uint32_t)-1;
    c->monitor_sys = sys;
    c->monitor = 1;
    reply_cur(h, id, NULL, 0);
}

/* ---- entry points ------------------------------------------------------- */

static void control(ph_hub *h, hconn *c, const ph_frame *f)
{
    const char *arg = (const char *)f->payload;
    size_t len = f->payload_len, at = h->cur_out->len, i;
    const char *r = f->route;
    size_t rl = f->route_len;

    /* Arguments are short text; a trailing newline (from a shell) is
     * forgiven. */
    while (len > 0 && (arg[len - 1] == '\n' || arg[len - 1] == '\r' ||
                       arg[len - 1] == ' '))
        len--;
    if (len > PH_ROUTE_MAX + 16) {
        send_error(h, c, f->id, PH_EBADREQ, r, rl, "argument too long");
        return;
    }
    for (i = 0; control_routes[i] != NULL; i++)
        if (strlen(control_routes[i]) == rl &&
            memcmp(control_routes[i], r, rl) == 0)
            break;
    switch (i) {
    case 0: cmd_register(h, c, f->id, arg, len); break;
    case 1: cmd_unregister(h, c, f->id, arg, len); break;
    case 2: cmd_subscribe(h, c, f->id, arg, len); break;
    case 3: cmd_unsubscribe(h, c, f->id, arg, len); break;
    case 4: cmd_routes(h, c, f->id); break;
    case 5: cmd_subscriptions(h, c, f->id); break;
    case 6: cmd_client(h, c, f->id, arg, len); break;
    case 7: cmd_monitor(h, c, f->id, arg, len); break;
    case 8: cmd_clients(h, c, f->id); break;
    default:
        send_error(h, c, f->id, PH_ENOROUTE, r, rl, "no route '%.*s'",
                   (int)rl, r);
        return;
    }
    if (h->monitors_sys > 0 && h->cur_out->len >= at + PH_FRAME_HEADER_LEN) {
        /* The answer is the first frame after at; events for the sender
         * itself may follow it, and have had their own copies. */
        size_t n = ph_get_u32le(h->cur_out->data + at);
        if (n > h->cur_out->len - at)
            n = h->cur_out->len - at;
        h->enc.len = 0;
        if (ph_frame_append(&h->enc, f) == PH_OK)
            monitor_copy(h, c->id, 0, r, rl, h->enc.data, h->enc.len);
        monitor_copy(h, 0, c->id, r, rl, h->cur_out->data + at, n);
    }
}

ph_err ph_hub_frame(ph_hub *h, uint32_t id, const ph_frame *f, ph_buf *out)
{
    hconn *c = conn_find(h, id);

    if (c == NULL)
        return PH_EINVAL;
    /* The hub has asked to close c (it did not read): what it still sends
     * is ignored, as the platform will be told nothing more of it. */
    if (c->closing)
        return PH_OK;
    h->cur = c;
    h->cur_out = out;
    h->cur_err = PH_OK;
    switch (f->kind) {
    case PH_REQUEST:
        if (is_sys(f->route, f->route_len))
            control(h, c, f);
        else
            forward(h, c, f);
        break;
    case PH_EVENT:
        if (is_sys(f->route, f->route_len)) {
            send_error(h, c, f->id, PH_EFORBIDDEN, f->route, f->route_len,
                       "topics under 'sys.' belong to the hub");
            break;
        }
        if (!access_ok(h, c, ACT_PUBLISH, f->route, f->route_len, f->id))
            break;
        h->st.events_published++;
        publish(h, c->id, f->route, f->route_len, f->payload, f->payload_len);
        break;
    default:
        answer(h, c, f);
        break;
    }
    h->cur = NULL;
    h->cur_out = NULL;
    return h->cur_err;
}

void ph_hub_observe_builtin(ph_hub *h, uint32_t id, const ph_frame *f,
                            const uint8_t *reply, size_t reply_len)
{
    if (h->monitors_sys == 0)
        return;
    h->enc.len = 0;
    if (ph_frame_append(&h->enc, f) == PH_OK)
        monitor_copy(h, id, 0, f->route, f->route_len, h->enc.data,
                     h->enc.len);
    if (reply_len >= PH_FRAME_HEADER_LEN) {
        size_t n = ph_get_u32le(reply);
        monitor_copy(h, 0, id, f->route, f->route_len, reply,
                     n < reply_len ? n : reply_len);
    }
}

int ph_hub_watching_builtins(const ph_hub *h)
{
    return __atomic_load_n(&h->monitors_sys, __ATOMIC_RELAXED) != 0;
}

static size_t str_size(const char *s) { return s ? strlen(s) + 1 : 1; }

static const char *str_put(char **at, const char *s)
{
    char *r = *at;
    size_t n = str_size(s);

    memcpy(r, s ? s : "", n);
    *at += n;
    return r;
}

static ucount *user_get(ph_hub *h, const char *sid, int create)
{
    size_t len = strlen(sid);
    ucount *u = named_find(&h->users, sid, len);

    if (u != NULL || !create)
        return u;
    return named_new(&h->users, sizeof *u, sid, len);
}

static void user_put(ph_hub *h, ucount *u)
{
    if (u == NULL || --u->n > 0)
        return;
    named_free(&h->users, (named *)u);
}

ph_err ph_hub_connect(ph_hub *h, uint32_t id, void *conn,
                      const ph_identity *who, char *why, size_t why_cap)
{
    hconn *c;
    ucount *u;
    char *at;
    size_t n;

    if (id == 0 || conn_find(h, id) != NULL)
        return PH_EINVAL;
    u = user_get(h, who->sid ? who->sid : "", 0);
    if (u != NULL && h->lim.max_connections_per_user != 0 &&
        u->n >= h->lim.max_connections_per_user) {
        h->st.limit_max_connections_per_user++;
        if (why != NULL)
            snprintf(why, why_cap, "server busy: max_connections_per_user "
                     "(%u) reached for %s",
                     (unsigned)h->lim.max_connections_per_user,
                     who->account && who->account[0] ? who->account : u->sid);
        return PH_EBUSY;
    }
    c = ph_alloc(sizeof *c);
    if (c == NULL)
        return PH_ENOMEM;
    memset(c, 0, sizeof *c);
    n = str_size(who->sid) + str_size(who->account) +
        str_size(who->logon_session) + str_size(who->integrity) +
        str_size(who->exe) + str_size(who->groups);
    c->strs = ph_alloc(n);
    if (c->strs == NULL) {
        ph_free(c);
        return PH_ENOMEM;
    }
    c->id = id;
    c->handle = conn;
    c->who = *who;
    at = c->strs;
    c->who.sid = str_put(&at, who->sid);
    c->who.account = str_put(&at, who->account);
    c->who.logon_session = str_put(&at, who->logon_session);
    c->who.integrity = str_put(&at, who->integrity);
    c->who.exe = str_put(&at, who->exe);
    c->who.groups = str_put(&at, who->groups);
    dl_init(&c->calls);
    dl_init(&c->serving);
    c->node.hash = hash_u32(id);
    u = user_get(h, c->who.sid, 1);
    if (u == NULL || htab_add(&h->conns, &c->node) != PH_OK) {
        if (u != NULL && u->n == 0) {
            u->n = 1;
            user_put(h, u);
        }
        ph_free(c->strs);
        ph_free(c);
        return PH_ENOMEM;
    }
    u->n++;
    c->user = u;
    return PH_OK;
}

void ph_hub_disconnect(ph_hub *h, uint32_t id)
{
    hconn *c = conn_find(h, id), **tp;
    dlink *e;

    if (c == NULL)
        return;
    /* Nothing more goes to it, whatever its leaving causes. */
    c->closing = 1;
    if (c->monitor)
        monitor_off(h, c);
    while (c->regs.n > 0)
        drop_registration(h, c->regs.v[c->regs.n - 1], c);
    while (!dl_empty(&c->serving)) {
        pending *p = CONTAINER(c->serving.next, pending, by_provider);
        h->st.requests_unavailable++;
        pending_fail(h, p, PH_EUNAVAIL, "the provider (conn %u) went away",
                     (unsigned)c->id);
    }
    while (c->subs.n > 0)
        topic_drop_sub(h, c->subs.v[--c->subs.n], c);
    /* Its own requests stay until answered or timed out, so a provider's
     * late answer is recognised and dropped; they just have no caller. */
    while (!dl_empty(&c->calls)) {
        e = c->calls.next;
        CONTAINER(e, pending, by_caller)->caller = NULL;
        dl_del(e);
    }
    for (tp = &h->touched; *tp != NULL; tp = &(*tp)->touched_next) {
        if (*tp == c) {
            *tp = c->touched_next;
            break;
        }
    }
    htab_del(&h->conns, &c->node);
    user_put(h, c->user);
    parr_free(&c->regs);
    parr_free(&c->subs);
    ph_free(c->strs);
    ph_free(c);
}

uint32_t ph_hub_tick(ph_hub *h)
{
    uint64_t now = h->io.now_ms(h->io.ctx), next = UINT64_MAX;
    size_t i;

    for (i = 0; i < h->ntq; i++) {
        tqueue *q = h->tqs[i];
        while (!dl_empty(&q->head)) {
            pending *p = CONTAINER(q->head.next, pending, by_timer);
            if (p->deadline > now) {
                if (p->deadline < next)
                    next = p->deadline;
                break;
            }
            if (p->caller != NULL)
                h->st.requests_timed_out++;
            pending_fail(h, p, PH_ETIMEDOUT,
                         "no answer from conn %u within %u ms",
                         (unsigned)p->provider->id, (unsigned)p->timeout_ms);
        }
    }
    if (next == UINT64_MAX)
        return UINT32_MAX;
    return next - now >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)(next - now);
}

void ph_hub_flush(ph_hub *h)
{
    hconn *c;

    while ((c = h->touched) != NULL) {
        h->touched = c->touched_next;
        c->touched = 0;
        c->touched_next = NULL;
        h->io.kick(h->io.ctx, c->handle);
    }
}

void ph_hub_set_limits(ph_hub *h, const ph_hub_limits *limits)
{
    h->lim = *limits;
    if (h->lim.max_frame < PH_MAX_FRAME_MIN)
        h->lim.max_frame = PH_MAX_FRAME_MIN;
}

ph_err ph_hub_new(const ph_hub_io *io, const ph_hub_limits *limits,
                  const char *const *builtins, ph_hub **out)
{
    ph_hub *h = ph_alloc(sizeof *h);

    if (h == NULL)
        return PH_ENOMEM;
    memset(h, 0, sizeof *h);
    h->io = *io;
    h->builtins = builtins;
    ph_hub_set_limits(h, limits);
    *out = h;
    return PH_OK;
}

void ph_hub_free(ph_hub *h)
{
    size_t i;
    hnode *e, *next;

    if (h == NULL)
        return;
    /* Connections first: that empties routes and topics. */
    for (i = 0; i < h->conns.nb; i++) {
        for (e = h->conns.b[i]; e != NULL; e = next) {
            next = e->next;
            ph_hub_disconnect(h, ((hconn *)e)->id);
        }
    }
    /* Requests whose callers and providers are gone. */
    for (i = 0; i < h->pend.nb; i++) {
        for (e = h->pend.b[i]; e != NULL; e = next) {
            next = e->next;
            pending_free(h, (pending *)e);
        }
    }
    ph_free(h->conns.b);
    ph_free(h->routes.b);
    ph_free(h->topics.b);
    ph_free(h->pend.b);
    ph_free(h->users.b);
    for (i = 0; i < h->ntq; i++)
        ph_free(h->tqs[i]);
    ph_free(h->tqs);
    parr_free(&h->monitors);
    ph_buf_free(&h->enc);
    ph_buf_free(&h->mon);
    ph_free(h);
}

void ph_hub_get_stats(const ph_hub *h, ph_hub_stats *out)
{
    *out = h->st;
}

/* ---- invariants (tests and the fuzzer) ---------------------------------- */

const char *ph_hub_check(const ph_hub *h)
{
    size_t i, npend = 0;
    hnode *e;
    dlink *l;

    for (i = 0; i < h->conns.nb; i++) {
        for (e = h->conns.b[i]; e != NULL; e = e->next) {
            hconn *c = (hconn *)e;
            uint32_t n = 0, k;
            for (l = c->calls.next; l != &c->calls; l = l->next) {
                pending *p = CONTAINER(l, pending, by_caller);
                if (p->caller != c)
                    return "a request in a caller's list names another caller";
                n++;
            }
            if (n != c->inflight)
                return "a caller's in-flight count is wrong";
            for (l = c->serving.next; l != &c->serving; l = l->next) {
                pending *p = CONTAINER(l, pending, by_provider);
                if (p->provider != c)
                    return "a request in a provider's list names another provider";
                if (parr_find(&c->regs, p->reg) < 0)
                    return "a provider holds a request for a route it left";
                if (pending_find(h, p->hub_id) != p)
                    return "a request is missing from the table";
            }
            for (k = 0; k < c->regs.n; k++) {
                hroute *r = c->regs.v[k];
                if (parr_find(&r->prov, c) < 0 && parr_find(&r->wait, c) < 0)
                    return "a registration is not in its route";
                if (named_find(&h->routes, r->name, r->len) != r)
                    return "a route is missing from the table";
            }
            for (k = 0; k < c->subs.n; k++)
                if (parr_find(&((topic *)c->subs.v[k])->subs, c) < 0)
                    return "a subscription is not in its topic";
            if (c->monitor != (parr_find(&h->monitors, c) >= 0))
                return "a monitor is not in the monitor list";
        }
    }
    for (i = 0; i < h->routes.nb; i++) {
        for (e = h->routes.b[i]; e != NULL; e = e->next) {
            hroute *r = (hroute *)e;
            uint32_t k;
            if (r->prov.n == 0)
                return "a route without a provider";
            if (r->exclusive && r->prov.n != 1)
                return "an exclusive route with several holders";
            if (!r->exclusive && r->wait.n != 0)
                return "a shared route with a waiting line";
            for (k = 0; k < r->prov.n; k++)
                if (parr_find(&((hconn *)r->prov.v[k])->regs, r) < 0)
                    return "a provider does not know its route";
        }
    }
    for (i = 0; i < h->topics.nb; i++)
        for (e = h->topics.b[i]; e != NULL; e = e->next)
            if (((topic *)e)->subs.n == 0)
                return "a topic without subscribers";
    for (i = 0; i < h->pend.nb; i++) {
        for (e = h->pend.b[i]; e != NULL; e = e->next) {
            pending *p = (pending *)e;
            npend++;
            if (conn_find(h, p->provider->id) != p->provider)
                return "a request is held by a provider that left";
            if (p->caller != NULL && conn_find(h, p->caller_id) != p->caller)
                return "a request's caller left but is still named";
        }
    }
    if (npend != h->pend.n)
        return "the request table's count is wrong";
    return NULL;
}
