/* Connections as the hub sees them: identity frozen at connect, per
 * account counts (max_connections_per_user), and everything a
 * disconnect ends. */
#include "hub_int.h"

#include <stdio.h>
#include <string.h>

#include "platform.h"

hconn *hub_conn_find(const ph_hub *h, uint32_t id)
{
    uint32_t hash = ph_hash_u32(id);
    hnode *e;

    for (e = htab_chain(&h->conns, hash); e != NULL; e = e->next)
        if (e->hash == hash && ((hconn *)e)->id == id)
            return (hconn *)e;
    return NULL;
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

    if (id == 0 || hub_conn_find(h, id) != NULL)
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
    dl_init(&c->held);
    c->node.hash = ph_hash_u32(id);
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
    hconn *c = hub_conn_find(h, id), **tp;
    dlink *e;

    if (c == NULL)
        return;
    /* Nothing more goes to it, whatever its leaving causes. */
    c->closing = 1;
    hub_activation_forget(h, c);
    if (c->monitor)
        hub_monitor_off(h, c);
    while (c->regs.n > 0)
        hub_drop_registration(h, c->regs.v[c->regs.n - 1], c);
    while (!dl_empty(&c->serving)) {
        pending *p = PH_CONTAINER(c->serving.next, pending, by_provider);
        h->st.requests_unavailable++;
        hub_pending_fail(h, p, PH_EUNAVAIL, "the provider (conn %u) went away",
                         (unsigned)c->id);
    }
    while (c->subs.n > 0)
        hub_topic_drop_sub(h, c->subs.v[--c->subs.n], c);
    /* Its own requests stay until answered or timed out, so a provider's
     * late answer is recognised and dropped; they just have no caller. */
    while (!dl_empty(&c->calls)) {
        e = c->calls.next;
        PH_CONTAINER(e, pending, by_caller)->caller = NULL;
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

void ph_hub_set_lane(ph_hub *h, uint32_t id)
{
    hconn *c = hub_conn_find(h, id);

    if (c != NULL)
        c->lane = 1;
}
