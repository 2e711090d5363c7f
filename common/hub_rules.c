/* [route.NAME] rules: who may call, provide, publish and subscribe, and
 * each route's request timeout. One lookup, hub_rule_for, finds the most
 * specific rule that says something about the question asked. */
#include "hub_int.h"

#include <stdio.h>
#include <string.h>

static const char *const act_names[] = {"call", "provide", "publish",
                                        "subscribe", "request_timeout_ms",
                                        "activate_service"};

static const char *rule_list(const ph_route_rule *r, int act)
{
    switch (act) {
    case ACT_CALL: return r->call;
    case ACT_PROVIDE: return r->provide;
    case ACT_PUBLISH: return r->publish;
    default: return r->subscribe;
    }
}

/* Does rule r say something about act? An access rule does when it has a
 * list for act or a min_integrity; a timeout when it sets one. */
static int rule_speaks(const ph_route_rule *r, int act)
{
    if (act == ACT_TIMEOUT)
        return r->request_timeout_ms != 0;
    if (act == ACT_ACTIVATE)
        return r->activate_service != NULL;
    return rule_list(r, act) != NULL || r->min_integrity != 0;
}

/* The most specific [route.NAME] that says something about act on name (a
 * route, or a pattern when subscribing: a rule's prefix covers the patterns
 * under it). An exact name beats any prefix, a longer prefix a shorter one;
 * of two equal ones the first in the file wins. NULL when none speaks. */
const ph_route_rule *hub_rule_for(const ph_hub *h, const char *name,
                                  size_t len, int act)
{
    const ph_route_rule *best = NULL;
    size_t i, best_rank = 0;

    for (i = 0; i < h->lim.nrules; i++) {
        const ph_route_rule *r = &h->lim.rules[i];
        size_t rl = strlen(r->name), rank;
        if (!rule_speaks(r, act))
            continue;
        if (rl == len && memcmp(r->name, name, len) == 0)
            rank = PH_ROUTE_MAX + 10; /* longer than any prefix */
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

/* The timeout for a request to route: the most specific [route.NAME] that
 * sets one, else the global default. */
uint32_t hub_route_timeout(const ph_hub *h, const char *name, size_t len)
{
    const ph_route_rule *r = hub_rule_for(h, name, len, ACT_TIMEOUT);

    return r != NULL ? r->request_timeout_ms : h->lim.request_timeout_ms;
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

int hub_rule_allows(const hconn *c, const ph_route_rule *r, int act)
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

/* May c do act on name? When not, c gets ERROR FORBIDDEN naming the rule
 * (answering id), and the refusal is counted and logged. */
int hub_access_ok(ph_hub *h, hconn *c, int act, const char *name,
                  size_t len, uint32_t id)
{
    const ph_route_rule *r = hub_rule_for(h, name, len, act);
    const char *why;

    if (r == NULL || hub_rule_allows(c, r, act))
        return 1;
    why = r->min_integrity != 0 && c->who.integrity_rid < r->min_integrity
              ? "min_integrity"
              : act_names[act];
    h->st.access_denied++;
    hub_log_limit(h, c, LOGGED_DENIED, "refused: %s '%.*s' by [route.%s] %s",
                  act_names[act], (int)len, name, r->name, why);
    hub_send_error(h, c, id, PH_EFORBIDDEN, name, len,
                   "[route.%s] %s does not allow conn %u (%s, integrity %s) to "
                   "%s '%.*s'", r->name, why, (unsigned)c->id,
                   c->who.account[0] ? c->who.account : c->who.sid,
                   c->who.integrity[0] ? c->who.integrity : "unknown",
                   act_names[act], (int)len, name);
    return 0;
}

/* Admin routes (sys.monitor, sys.clients): a [route.NAME] call rule when
 * there is one, else the service's own account and administrators only. */
int hub_admin_ok(ph_hub *h, hconn *c, const char *name, uint32_t id)
{
    size_t len = strlen(name);

    if (hub_rule_for(h, name, len, ACT_CALL) != NULL)
        return hub_access_ok(h, c, ACT_CALL, name, len, id);
    if (c->who.admin)
        return 1;
    h->st.access_denied++;
    hub_log_limit(h, c, LOGGED_DENIED, "refused: %s is for administrators", name);
    hub_send_error(h, c, id, PH_EFORBIDDEN, name, len,
                   "%s is for the service's account and administrators", name);
    return 0;
}

