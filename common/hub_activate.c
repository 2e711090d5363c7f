/* Activation (docs/PROTOCOL.md, "Activation"): a request for a route that
 * nobody serves, under a [route.NAME] with activate_service, makes the
 * platform start that Windows service; the request (and every other one
 * for the service's routes) is held until a provider registers a route that
 * serves it, then forwarded in order. A service that stops or fails to
 * start fails them at once, with what the SCM said; one that does not
 * register in time fails them at its deadline. Nothing sticks: the next
 * request tries again. */
#include "hub_int.h"

#include <stdio.h>
#include <string.h>

#include "platform.h"

/* A request waiting for its route's provider. */
typedef struct held {
    dlink by_act;         /* in its activation, oldest first */
    dlink by_caller;      /* in the caller's held list */
    hconn *caller;
    uint32_t caller_req;
    uint8_t route_len;
    char route[PH_ROUTE_MAX + 1];
    uint32_t payload_len;
    uint8_t payload[];
} held;

static activation *act_find_id(const ph_hub *h, uint32_t id)
{
    size_t i;
    hnode *e;

    for (i = 0; i < h->acts.nb; i++)
        for (e = h->acts.b[i]; e != NULL; e = e->next)
            if (((activation *)e)->id == id)
                return (activation *)e;
    return NULL;
}

static void held_free(held *q)
{
    dl_del(&q->by_act);
    if (q->caller != NULL) {
        dl_del(&q->by_caller);
        q->caller->inflight--;
    }
    ph_free(q);
}

static void act_free(ph_hub *h, activation *a)
{
    while (!dl_empty(&a->held))
        held_free(PH_CONTAINER(a->held.next, held, by_act));
    named_free(&h->acts, (named *)a);
}

/* Every held request of a gets ERROR UNAVAILABLE with why, and a goes. */
static void act_fail(ph_hub *h, activation *a, const char *why)
{
    h->st.activation_failures++;
    hub_log(h, 1, "activation of service '%s' (for conn %u pid %u) failed: "
            "%s", a->name, (unsigned)a->first_caller,
            (unsigned)a->first_pid, why);
    while (!dl_empty(&a->held)) {
        held *q = PH_CONTAINER(a->held.next, held, by_act);
        if (q->caller != NULL)
            hub_send_error(h, q->caller, q->caller_req, PH_EUNAVAIL, q->route,
                           q->route_len, "service '%s': %s", a->name, why);
        held_free(q);
    }
    named_free(&h->acts, (named *)a);
}

int hub_activate(ph_hub *h, hconn *c, const ph_frame *f)
{
    const ph_route_rule *rule =
        hub_rule_for(h, f->route, f->route_len, ACT_ACTIVATE);
    const char *svc;
    activation *a;
    held *q;

    if (rule == NULL || h->io.activate == NULL)
        return 0;
    svc = rule->activate_service;
    if (c->inflight >= h->lim.max_inflight_per_client) {
        h->st.requests_busy++;
        h->st.limit_max_inflight++;
        hub_send_error(h, c, f->id, PH_EBUSY, f->route, f->route_len,
                       "max_inflight_per_client (%u) reached",
                       (unsigned)h->lim.max_inflight_per_client);
        return 1;
    }
    q = ph_alloc(sizeof *q + f->payload_len);
    a = named_find(&h->acts, svc, strlen(svc));
    if (q != NULL && a == NULL &&
        (a = named_new(&h->acts, sizeof *a, svc, strlen(svc))) != NULL) {
        dl_init(&a->held);
        do {
            h->next_act_id++;
        } while (h->next_act_id == 0 || act_find_id(h, h->next_act_id));
        a->id = h->next_act_id;
        a->timeout_ms = rule->activate_timeout_ms ? rule->activate_timeout_ms
                                                  : PH_ACTIVATE_TIMEOUT_MS;
        a->deadline = h->io.now_ms(h->io.ctx) + a->timeout_ms;
        a->first_caller = c->id;
        a->first_pid = c->who.pid;
        h->st.activations++;
        hub_log(h, 2, "conn %u pid %u: '%.*s' is not served: starting "
                "service '%s' ([route.%s])", (unsigned)c->id,
                (unsigned)c->who.pid, (int)f->route_len, f->route, a->name,
                rule->name);
        h->io.activate(h->io.ctx, a->name, a->id);
    }
    if (q == NULL || a == NULL) {
        ph_free(q);
        hub_send_error(h, c, f->id, PH_EINTERNAL, f->route, f->route_len,
                       "server out of memory");
        return 1;
    }
    memset(q, 0, sizeof *q);
    q->caller = c;
    q->caller_req = f->id;
    q->route_len = f->route_len;
    memcpy(q->route, f->route, f->route_len);
    q->payload_len = f->payload_len;
    memcpy(q->payload, f->payload, f->payload_len);
    dl_push(&a->held, &q->by_act);
    dl_push(&c->held, &q->by_caller);
    c->inflight++;
    h->st.activation_held++;
    return 1;
}

void hub_activation_served(ph_hub *h)
{
    size_t i;
    hnode *e, *next;
    dlink *l, *ln;

    for (i = 0; i < h->acts.nb; i++) {
        for (e = h->acts.b[i]; e != NULL; e = next) {
            activation *a = (activation *)e;
            next = e->next;
            /* In order: the first held request whose route is served now
             * goes, and so does each after it that is served too. */
            for (l = a->held.next; l != &a->held; l = ln) {
                held *q = PH_CONTAINER(l, held, by_act);
                ph_frame f;
                ln = l->next;
                if (hub_route_lookup(h, q->route, q->route_len) == NULL)
                    break;
                if (q->caller != NULL) {
                    hconn *c = q->caller;
                    memset(&f, 0, sizeof f);
                    f.kind = PH_REQUEST;
                    f.id = q->caller_req;
                    f.route = q->route;
                    f.route_len = q->route_len;
                    f.payload = q->payload;
                    f.payload_len = q->payload_len;
                    /* Its in-flight slot goes back first: forwarding takes
                     * one again. */
                    dl_del(&q->by_caller);
                    q->caller = NULL;
                    c->inflight--;
                    hub_forward(h, c, &f); /* copies the request */
                }
                held_free(q);
            }
            if (dl_empty(&a->held)) {
                hub_log(h, 2, "activation of service '%s' (for conn %u pid "
                        "%u) succeeded: it registered within %llu ms",
                        a->name, (unsigned)a->first_caller,
                        (unsigned)a->first_pid,
                        (unsigned long long)(h->io.now_ms(h->io.ctx) +
                                             a->timeout_ms - a->deadline));
                named_free(&h->acts, (named *)a);
            }
        }
    }
}

uint32_t hub_activation_tick(ph_hub *h, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    char why[PH_ROUTE_MAX + 64];
    size_t i;
    hnode *e, *nx;

    for (i = 0; i < h->acts.nb; i++) {
        for (e = h->acts.b[i]; e != NULL; e = nx) {
            activation *a = (activation *)e;
            nx = e->next;
            if (a->deadline > now) {
                if (a->deadline < next)
                    next = a->deadline;
                continue;
            }
            if (dl_empty(&a->held)) {
                /* Its callers left: nobody to tell. */
                named_free(&h->acts, (named *)a);
                continue;
            }
            {
                held *q = PH_CONTAINER(a->held.next, held, by_act);
                snprintf(why, sizeof why, "did not register '%.*s' within "
                         "%u ms", (int)q->route_len, q->route,
                         (unsigned)a->timeout_ms);
            }
            act_fail(h, a, why);
        }
    }
    if (next == UINT64_MAX)
        return UINT32_MAX;
    return next - now >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)(next - now);
}

void hub_activation_forget(ph_hub *h, hconn *c)
{
    (void)h;
    while (!dl_empty(&c->held))
        held_free(PH_CONTAINER(c->held.next, held, by_caller));
}

void hub_activations_free(ph_hub *h)
{
    size_t i;
    hnode *e, *nx;

    for (i = 0; i < h->acts.nb; i++)
        for (e = h->acts.b[i]; e != NULL; e = nx) {
            nx = e->next;
            act_free(h, (activation *)e);
        }
    htab_free(&h->acts);
}

uint32_t hub_held_count(const hconn *c)
{
    const dlink *l;
    uint32_t n = 0;

    for (l = c->held.next; l != &c->held; l = l->next)
        n++;
    return n;
}

void ph_hub_activation_failed(ph_hub *h, uint32_t id, const char *why)
{
    activation *a = act_find_id(h, id);

    if (a != NULL)
        act_fail(h, a, why);
}

int ph_hub_activation_live(const ph_hub *h, uint32_t id)
{
    return act_find_id(h, id) != NULL;
}
