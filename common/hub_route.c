/* Routes served by clients: the route table, shared routes' round robin,
 * an exclusive route's waiting line, sys.register and sys.unregister. */
#include "hub_int.h"

#include <stdio.h>
#include <string.h>

/* The registration that serves route: exact, then the longest prefix. */
hroute *hub_route_lookup(const ph_hub *h, const char *name, size_t len)
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

static void route_free(ph_hub *h, hroute *r)
{
    ph_free(r->describe);
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
    hub_reply(h, id, json, (size_t)n);
}

/* A registration's description becomes the route's: the latest one given
 * wins, so a provider that restarts with a new description is believed.
 * An allocation failure keeps the old one (it is only informative). */
static void set_describe(hroute *r, const char *text, size_t n)
{
    char *copy;

    if (n == 0 || (copy = ph_alloc(n + 1)) == NULL)
        return;
    memcpy(copy, text, n);
    copy[n] = '\0';
    ph_free(r->describe);
    r->describe = copy;
}

void hub_sys_register(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                      size_t len)
{
    /* "ROUTE [exclusive]", then optionally a newline and the description. */
    const char *nl = memchr(arg, '\n', len), *text = NULL;
    size_t tlen = 0, nlen;
    const char *sp;
    int exclusive = 0;
    hroute *r;
    hconn *holder;

    if (nl != NULL) {
        text = nl + 1;
        tlen = len - (size_t)(text - arg);
        len = (size_t)(nl - arg);
        if (len > 0 && arg[len - 1] == '\r')
            len--;
    }
    if (tlen > HUB_DESCRIBE_MAX) {
        hub_send_error(h, c, id, PH_EBADREQ, "sys.register", 12,
                       "a description is at most %u bytes, not %zu",
                       (unsigned)HUB_DESCRIBE_MAX, tlen);
        return;
    }
    sp = memchr(arg, ' ', len);
    nlen = sp ? (size_t)(sp - arg) : len;

    if (sp != NULL) {
        if (len - nlen - 1 == 9 && memcmp(sp + 1, "exclusive", 9) == 0)
            exclusive = 1;
        else {
            hub_send_error(h, c, id, PH_EBADREQ, "sys.register", 12,
                           "expected 'ROUTE' or 'ROUTE exclusive'");
            return;
        }
    }
    if (!ph_pattern_valid(arg, nlen, 0)) {
        hub_send_error(h, c, id, PH_EBADREQ, "sys.register", 12,
                       "'%.*s' is not a route or a 'prefix.*' pattern",
                       (int)nlen, arg);
        return;
    }
    if (hub_is_sys(arg, nlen) || (nlen == 5 && memcmp(arg, "sys.*", 5) == 0)) {
        hub_send_error(h, c, id, PH_EFORBIDDEN, "sys.register", 12,
                       "routes under 'sys.' belong to the hub");
        return;
    }
    r = named_find(&h->routes, arg, nlen);
    if (r != NULL && (parr_find(&r->prov, c) >= 0 || parr_find(&r->wait, c) >= 0)) {
        set_describe(r, text, tlen);
        reply_register_state(h, id, r, c);
        return;
    }
    if (!hub_access_ok(h, c, ACT_PROVIDE, arg, nlen, id))
        return;
    if (h->lim.max_routes_per_client != 0 &&
        c->regs.n >= h->lim.max_routes_per_client) {
        h->st.limit_max_routes++;
        hub_log_limit(h, c, LOGGED_ROUTES, "max_routes_per_client (%u) reached",
                      (unsigned)h->lim.max_routes_per_client);
        hub_send_error(h, c, id, PH_EBUSY, "sys.register", 12,
                       "max_routes_per_client (%u) reached",
                       (unsigned)h->lim.max_routes_per_client);
        return;
    }
    if (r != NULL && r->prov.n > 0) {
        holder = r->prov.v[0];
        if (r->exclusive && !exclusive) {
            hub_send_error(h, c, id, PH_EFORBIDDEN, "sys.register", 12,
                           "route '%s' is held exclusively by conn %u (pid %u)",
                           r->name, (unsigned)holder->id, (unsigned)holder->who.pid);
            return;
        }
        if (!r->exclusive && exclusive) {
            hub_send_error(h, c, id, PH_EFORBIDDEN, "sys.register", 12,
                           "route '%s' is served by %u shared provider(s)",
                           r->name, (unsigned)r->prov.n);
            return;
        }
    }
    if (r == NULL && (r = named_new(&h->routes, sizeof *r, arg, nlen)) == NULL)
        goto nomem;
    if (parr_push(&c->regs, r) != PH_OK)
        goto nomem_route;
    set_describe(r, text, tlen);
    if (r->prov.n == 0) {
        r->exclusive = exclusive;
        if (parr_push(&r->prov, c) != PH_OK) {
            c->regs.n--;
            goto nomem_route;
        }
        reply_register_state(h, id, r, c);
        hub_route_event(h, "sys.route.up", r);
        /* Requests held for an activation may be served now. */
        hub_activation_served(h);
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
    hub_send_error(h, c, id, PH_EINTERNAL, "sys.register", 12,
                   "server out of memory");
}

/* c stops serving (or waiting for) r: its requests on r become UNAVAILABLE,
 * an exclusive route passes to the next in line, route events go out, and
 * an empty route is freed. */
void hub_drop_registration(ph_hub *h, hroute *r, hconn *c)
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
            pending *p = PH_CONTAINER(e, pending, by_provider);
            next = e->next;
            if (p->reg != r)
                continue;
            h->st.requests_unavailable++;
            hub_pending_fail(h, p, PH_EUNAVAIL,
                             "the provider of '%s' (conn %u) went away",
                             r->name, (unsigned)c->id);
        }
        if (r->prov.n == 0 && r->wait.n > 0) {
            /* The owner changes: down for the one that left, then up for
             * the next in line (D-Bus says both in one NameOwnerChanged). */
            hub_route_event(h, "sys.route.down", r);
            next_holder = r->wait.v[0];
            parr_remove_at(&r->wait, 0);
            /* Cannot fail: prov had room for the one that left. */
            (void)parr_push(&r->prov, next_holder);
            r->rr = 0;
            if (hub_encode(h, PH_EVENT, 0, 0, "sys.route.acquired", 18,
                           (const uint8_t *)r->name, r->len) == PH_OK &&
                hub_deliver_enc(h, next_holder, "provider") == 0)
                h->st.frames_out++;
            hub_route_event(h, "sys.route.up", r);
        } else if (r->prov.n == 0) {
            hub_route_event(h, "sys.route.down", r);
        }
    }
    if (r->prov.n == 0 && r->wait.n == 0)
        route_free(h, r);
}

void hub_sys_unregister(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                        size_t len)
{
    hroute *r = named_find(&h->routes, arg, len);

    if (r == NULL || parr_find(&c->regs, r) < 0) {
        hub_send_error(h, c, id, PH_ENOROUTE, "sys.unregister", 14,
                       "this connection does not serve '%.*s'", (int)len, arg);
        return;
    }
    /* Reply first, so the provider sees the unregister answered before any
     * event the change causes. */
    hub_reply(h, id, NULL, 0);
    hub_drop_registration(h, r, c);
}

/* sys.describe ROUTE: what a route says it is. A built-in route's text is
 * the hub's own (its row in sysroutes.c); a provided route's is what its
 * providers registered with, found as a request to ROUTE would be. */
void hub_sys_describe(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                      size_t len)
{
    const ph_sys_route *row;
    const hroute *r;

    if (len == 0 || len > PH_ROUTE_MAX || !ph_route_valid(arg, len)) {
        hub_send_error(h, c, id, PH_EBADREQ, "sys.describe", 12,
                       "expected a route");
        return;
    }
    row = ph_sys_route_find(arg, len);
    if (row != NULL) {
        hub_reply(h, id, row->describe, strlen(row->describe));
        return;
    }
    r = hub_route_lookup(h, arg, len);
    if (r == NULL) {
        hub_send_error(h, c, id, PH_ENOROUTE, "sys.describe", 12,
                       "no route '%.*s'", (int)len, arg);
        return;
    }
    if (r->describe == NULL) {
        hub_send_error(h, c, id, PH_ENOROUTE, "sys.describe", 12,
                       "'%s' is served, and its providers gave no "
                       "description", r->name);
        return;
    }
    hub_reply(h, id, r->describe, strlen(r->describe));
}
