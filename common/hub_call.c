/* Forwarded requests: a caller's REQUEST goes to a provider under a hub
 * id, its REPLY or ERROR comes back to the caller, and a deadline per
 * request answers TIMEOUT when none does. */
#include "hub_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "platform.h"

pending *hub_pending_find(const ph_hub *h, uint32_t hub_id)
{
    uint32_t hash = ph_hash_u32(hub_id);
    hnode *e;

    for (e = htab_chain(&h->pend, hash); e != NULL; e = e->next)
        if (e->hash == hash && ((pending *)e)->hub_id == hub_id)
            return (pending *)e;
    return NULL;
}

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

void hub_pending_free(ph_hub *h, pending *p)
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
void hub_pending_fail(ph_hub *h, pending *p, ph_err code, const char *fmt,
                      ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->caller != NULL)
        hub_send_error(h, p->caller, p->caller_req, code, p->route, p->route_len,
                       "%s", msg);
    hub_pending_free(h, p);
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
    } while (h->next_hub_id == 0 || hub_pending_find(h, h->next_hub_id) != NULL);
    return h->next_hub_id;
}

void hub_forward(ph_hub *h, hconn *c, const ph_frame *f)
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
        hub_log_limit(h, c, LOGGED_INFLIGHT, "max_inflight_per_client (%u) "
                      "reached", (unsigned)h->lim.max_inflight_per_client);
        hub_send_error(h, c, f->id, PH_EBUSY, f->route, f->route_len,
                       "max_inflight_per_client (%u) reached: this connection "
                       "has %u requests unanswered",
                       (unsigned)h->lim.max_inflight_per_client,
                       (unsigned)c->inflight);
        return;
    }
    if (!hub_access_ok(h, c, ACT_CALL, f->route, f->route_len, f->id))
        return;
    r = hub_route_lookup(h, f->route, f->route_len);
    if (r == NULL && hub_activate(h, c, f))
        return; /* held until its service registers the route */
    if (r == NULL) {
        hub_send_error(h, c, f->id, PH_ENOROUTE, f->route, f->route_len,
                       "no route '%.*s'", (int)f->route_len, f->route);
        return;
    }
    prov = pick_provider(r);
    if (prov == NULL) {
        h->st.requests_unavailable++;
        hub_send_error(h, c, f->id, PH_EUNAVAIL, f->route, f->route_len,
                       "the provider of '%s' is disconnecting", r->name);
        return;
    }
    /* A lane payload over max_frame goes only to a provider with a lane. */
    if (ph_frame_size(f->route_len, f->payload_len) > h->lim.max_frame &&
        !prov->lane) {
        hub_send_error(h, c, f->id, PH_ETOOBIG, f->route, f->route_len,
                       "a request of %u bytes is over max_frame_bytes (%u) "
                       "and the provider of '%s' (conn %u) has no lane",
                       (unsigned)f->payload_len, (unsigned)h->lim.max_frame,
                       r->name, (unsigned)prov->id);
        return;
    }
    queued = prov != c ? h->io.queued(h->io.ctx, prov->handle) : 0;
    if (queued >= h->lim.send_queue_bytes) {
        h->st.requests_busy++;
        h->st.limit_provider_queue++;
        hub_log_limit(h, prov, LOGGED_PROVIDER, "provider of '%s' not reading: "
                      "%zu bytes queued; callers get BUSY", r->name, queued);
        hub_send_error(h, c, f->id, PH_EBUSY, f->route, f->route_len,
                       "provider of '%s' (conn %u) is not keeping up: %zu bytes "
                       "queued", r->name, (unsigned)prov->id, queued);
        return;
    }
    timeout = hub_route_timeout(h, f->route, f->route_len);
    q = tqueue_get(h, timeout);
    p = ph_alloc(sizeof *p + f->route_len);
    if (q == NULL || p == NULL) {
        ph_free(p);
        hub_send_error(h, c, f->id, PH_EINTERNAL, f->route, f->route_len,
                       "server out of memory");
        return;
    }
    memset(p, 0, sizeof *p);
    p->hub_id = next_hub_id(h);
    p->node.hash = ph_hash_u32(p->hub_id);
    if (htab_add(&h->pend, &p->node) != PH_OK ||
        hub_encode(h, PH_REQUEST, p->hub_id, c->id, f->route, f->route_len,
                   f->payload, f->payload_len) != PH_OK) {
        if (h->pend.nb && hub_pending_find(h, p->hub_id) == p)
            htab_del(&h->pend, &p->node);
        ph_free(p);
        hub_send_error(h, c, f->id, PH_EINTERNAL, f->route, f->route_len,
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
    if (hub_deliver_enc(h, prov, NULL) != 0) {
        hub_pending_fail(h, p, PH_EUNAVAIL, "the provider of '%s' went away",
                         r->name);
        h->st.requests_unavailable++;
        return;
    }
    r->forwarded++;
    h->st.requests_forwarded++;
    h->st.frames_out++;
    hub_monitor_copy_enc(h, c->id, prov->id, f->route, f->route_len);
}

/* A REPLY or ERROR from a provider. */
void hub_answer(ph_hub *h, hconn *c, const ph_frame *f)
{
    pending *p = hub_pending_find(h, f->id);
    hconn *caller;

    if (p == NULL || p->provider != c) {
        h->st.replies_dropped++;
        hub_log(h, 3, "conn %u: %s id %u answers nothing outstanding; dropped",
                (unsigned)c->id, f->kind == PH_REPLY ? "REPLY" : "ERROR",
                (unsigned)f->id);
        return;
    }
    caller = p->caller;
    if (caller == NULL) {
        h->st.replies_dropped++;
        hub_pending_free(h, p);
        return;
    }
    if (hub_encode(h, f->kind, p->caller_req, f->kind == PH_ERROR ? f->status : 0,
                   NULL, 0, f->payload, f->payload_len) != PH_OK) {
        hub_pending_fail(h, p, PH_EINTERNAL, "server out of memory");
        return;
    }
    if (hub_too_large_for(h, caller)) {
        /* Both ends hear why: the provider (the sender) and the caller,
         * who would otherwise wait for its deadline. */
        size_t n = f->payload_len;
        hub_send_error(h, c, f->id, PH_ETOOBIG, p->route, p->route_len,
                       "a reply of %zu bytes is over max_frame_bytes (%u) "
                       "and the caller (conn %u) has no lane", n,
                       (unsigned)h->lim.max_frame, (unsigned)caller->id);
        hub_pending_fail(h, p, PH_ETOOBIG, "the reply of %zu bytes is over "
                         "max_frame_bytes (%u) and this connection has no "
                         "lane", n, (unsigned)h->lim.max_frame);
        return;
    }
    if (hub_deliver_enc(h, caller, "caller") == 0) {
        h->st.frames_out++;
        if (f->kind == PH_ERROR)
            h->st.errors_sent++;
        hub_monitor_copy_enc(h, c->id, caller->id, p->route, p->route_len);
    }
    hub_pending_free(h, p);
}

uint32_t ph_hub_tick(ph_hub *h)
{
    uint64_t now = h->io.now_ms(h->io.ctx), next = UINT64_MAX;
    uint32_t act_next = hub_activation_tick(h, now);
    size_t i;

    for (i = 0; i < h->ntq; i++) {
        tqueue *q = h->tqs[i];
        while (!dl_empty(&q->head)) {
            pending *p = PH_CONTAINER(q->head.next, pending, by_timer);
            if (p->deadline > now) {
                if (p->deadline < next)
                    next = p->deadline;
                break;
            }
            if (p->caller != NULL)
                h->st.requests_timed_out++;
            hub_pending_fail(h, p, PH_ETIMEDOUT,
                             "no answer from conn %u within %u ms",
                             (unsigned)p->provider->id, (unsigned)p->timeout_ms);
        }
    }
    if (next == UINT64_MAX)
        return act_next;
    if (next - now >= UINT32_MAX)
        return act_next < UINT32_MAX - 1 ? act_next : UINT32_MAX - 1;
    return (uint32_t)(next - now) < act_next ? (uint32_t)(next - now)
                                              : act_next;
}

/* At ph_hub_free, after every connection has gone: the requests left (whose
 * callers and providers are gone) and the deadline queues. */
void hub_calls_free(ph_hub *h)
{
    size_t i;
    hnode *e, *next;

    for (i = 0; i < h->pend.nb; i++) {
        for (e = h->pend.b[i]; e != NULL; e = next) {
            next = e->next;
            hub_pending_free(h, (pending *)e);
        }
    }
    htab_free(&h->pend);
    for (i = 0; i < h->ntq; i++)
        ph_free(h->tqs[i]);
    ph_free(h->tqs);
    h->tqs = NULL;
    h->ntq = 0;
}
