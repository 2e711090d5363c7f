/* The hub's invariants, checked by the unit tests after every step and by
 * the fuzzer after every input. */
#include "hub_int.h"

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
                pending *p = PH_CONTAINER(l, pending, by_caller);
                if (p->caller != c)
                    return "a request in a caller's list names another caller";
                n++;
            }
            if (n + hub_held_count(c) != c->inflight)
                return "a caller's in-flight count is wrong";
            for (l = c->serving.next; l != &c->serving; l = l->next) {
                pending *p = PH_CONTAINER(l, pending, by_provider);
                if (p->provider != c)
                    return "a request in a provider's list names another provider";
                if (parr_find(&c->regs, p->reg) < 0)
                    return "a provider holds a request for a route it left";
                if (hub_pending_find(h, p->hub_id) != p)
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
            if (hub_conn_find(h, p->provider->id) != p->provider)
                return "a request is held by a provider that left";
            if (p->caller != NULL && hub_conn_find(h, p->caller_id) != p->caller)
                return "a request's caller left but is still named";
        }
    }
    if (npend != h->pend.n)
        return "the request table's count is wrong";
    return NULL;
}

