/* Publish/subscribe: topics (subscription patterns) and their
 * subscribers, fan-out of one encoded EVENT to each once, route events,
 * sys.subscribe and sys.unsubscribe. */
#include "hub_int.h"

#include <string.h>

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
        if (rule != NULL && !hub_rule_allows(s, rule, ACT_SUBSCRIBE))
            continue;
        if (hub_too_large_for(h, s)) {
            h->missed++;
            continue;
        }
        if (hub_deliver_enc(h, s, "subscriber") == 0)
            n++;
    }
    return n;
}

/* Deliver an EVENT on topic name to every matching subscriber, once each.
 * from is the publisher's id, 0 for the hub. */
void hub_publish(ph_hub *h, uint32_t from, const char *name, size_t len,
                 const uint8_t *payload, size_t plen)
{
    char key[PH_ROUTE_MAX + 2];
    uint64_t seq = ++h->event_seq;
    const ph_route_rule *rule = hub_rule_for(h, name, len, ACT_SUBSCRIBE);
    size_t i;
    int n = 0;

    if (hub_encode(h, PH_EVENT, 0, 0, name, len, payload, plen) != PH_OK)
        return;
    h->missed = 0;
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
    hub_monitor_copy_enc(h, from, 0, name, len);
    /* A lane payload over max_frame reaches only subscribers with a lane:
     * the publisher hears, once, how many it missed. */
    if (h->missed > 0 && h->cur != NULL && h->cur->id == from)
        hub_send_error(h, h->cur, 0, PH_ETOOBIG, name, len,
                       "event of %zu bytes is over max_frame_bytes (%u) and "
                       "%u subscriber(s) without a lane did not get it",
                       plen, (unsigned)h->lim.max_frame,
                       (unsigned)h->missed);
}

void hub_route_event(ph_hub *h, const char *topic_name, const hroute *r)
{
    hub_publish(h, 0, topic_name, strlen(topic_name), (const uint8_t *)r->name,
                r->len);
}

void hub_topic_drop_sub(ph_hub *h, topic *t, hconn *c)
{
    int i = parr_find(&t->subs, c);

    if (i >= 0)
        parr_remove_at(&t->subs, (uint32_t)i);
    if (t->subs.n == 0) {
        parr_free(&t->subs);
        named_free(&h->topics, (named *)t);
    }
}

void hub_sys_subscribe(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                       size_t len)
{
    topic *t;

    if (!ph_pattern_valid(arg, len, 1)) {
        hub_send_error(h, c, id, PH_EBADREQ, "sys.subscribe", 13,
                       "'%.*s' is not a topic, a 'prefix.*' pattern or '*'",
                       (int)len, arg);
        return;
    }
    t = named_find(&h->topics, arg, len);
    if (t != NULL && parr_find(&c->subs, t) >= 0) {
        hub_reply(h, id, NULL, 0);
        return;
    }
    if (!hub_access_ok(h, c, ACT_SUBSCRIBE, arg, len, id))
        return;
    if (h->lim.max_subscriptions_per_client != 0 &&
        c->subs.n >= h->lim.max_subscriptions_per_client) {
        h->st.limit_max_subscriptions++;
        hub_log_limit(h, c, LOGGED_SUBS, "max_subscriptions_per_client (%u) "
                      "reached", (unsigned)h->lim.max_subscriptions_per_client);
        hub_send_error(h, c, id, PH_EBUSY, "sys.subscribe", 13,
                       "max_subscriptions_per_client (%u) reached",
                       (unsigned)h->lim.max_subscriptions_per_client);
        return;
    }
    if (t == NULL && (t = named_new(&h->topics, sizeof *t, arg, len)) == NULL)
        goto nomem;
    if (parr_push(&t->subs, c) != PH_OK) {
        if (t->subs.n == 0)
            hub_topic_drop_sub(h, t, c);
        goto nomem;
    }
    if (parr_push(&c->subs, t) != PH_OK) {
        hub_topic_drop_sub(h, t, c);
        goto nomem;
    }
    hub_reply(h, id, NULL, 0);
    return;
nomem:
    hub_send_error(h, c, id, PH_EINTERNAL, "sys.subscribe", 13,
                   "server out of memory");
}

void hub_sys_unsubscribe(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                         size_t len)
{
    topic *t = named_find(&h->topics, arg, len);
    int i = t ? parr_find(&c->subs, t) : -1;

    if (i < 0) {
        hub_send_error(h, c, id, PH_ENOROUTE, "sys.unsubscribe", 15,
                       "not subscribed to '%.*s'", (int)len, arg);
        return;
    }
    parr_remove_at(&c->subs, (uint32_t)i);
    hub_topic_drop_sub(h, t, c);
    hub_reply(h, id, NULL, 0);
}

