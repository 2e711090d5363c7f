/* The hub's JSON views: sys.routes, sys.subscriptions, sys.client and
 * sys.clients. Each reply is written straight into the asker's queue. */
#include "hub_int.h"

#include <stdio.h>
#include <string.h>

#include "json.h"

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
        hub_send_error(h, h->cur, id, PH_EINTERNAL, route, route_len,
                       "reply exceeds max frame");
    else
        h->cur_err = PH_ENOMEM;
}

void hub_sys_routes(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                    size_t len)
{
    ph_buf *b = h->cur_out;
    ph_err err;
    size_t start, i, n = 0;
    char item[PH_ROUTE_MAX + 200];
    const ph_sys_route *s;
    hnode *e;

    err = ph_frame_begin(b, PH_REPLY, id, 0, NULL, 0, &start);
    if (err != PH_OK) {
        h->cur_err = err;
        return;
    }
    put(b, &err, "[", 1);
    for (s = ph_sys_routes; s->name != NULL; s++) {
        int k = snprintf(item, sizeof item, "%s{\"route\":\"%s\",\"kind\":"
                         "\"builtin\"}", n++ ? "," : "", s->name);
        put(b, &err, item, (size_t)k);
    }
    /* Routes a service would serve once started: while nobody does. */
    for (i = 0; i < h->lim.nrules; i++) {
        const ph_route_rule *rule = &h->lim.rules[i];
        int k;
        if (rule->activate_service == NULL ||
            named_find(&h->routes, rule->name, strlen(rule->name)) != NULL)
            continue;
        k = snprintf(item, sizeof item, "%s{\"route\":\"%s\",\"kind\":"
                     "\"activatable\",\"service\":", n++ ? "," : "",
                     rule->name);
        put(b, &err, item, (size_t)k);
        if (err == PH_OK)
            err = ph_json_append_string(b, rule->activate_service,
                                        strlen(rule->activate_service));
        put(b, &err, "}", 1);
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

void hub_sys_subscriptions(ph_hub *h, hconn *c, uint32_t id,
                           const char *arg, size_t len)
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

void hub_sys_client(ph_hub *h, hconn *c, uint32_t id, const char *arg,
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
        hub_send_error(h, c, id, PH_EBADREQ, "sys.client", 10,
                       "expected a connection id");
        return;
    }
    /* Only a provider that holds a request from that connection may ask:
     * identity is for deciding what a caller may do, not for browsing. */
    for (e = c->serving.next; e != &c->serving && t == NULL; e = e->next) {
        pending *p = PH_CONTAINER(e, pending, by_provider);
        if (p->caller != NULL && p->caller_id == (uint32_t)want)
            t = p->caller;
    }
    if (t == NULL) {
        hub_send_error(h, c, id, PH_EFORBIDDEN, "sys.client", 10,
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

/* key: an array of the names of a's entries (routes or topics, which both
 * start like named). */
static void names_array(ph_json *j, const char *key, const parr *a)
{
    uint32_t k;

    ph_json_key(j, key);
    put(j->out, &j->err, "[", 1);
    for (k = 0; k < a->n && j->err == PH_OK; k++) {
        const named *e = a->v[k];
        if (k)
            put(j->out, &j->err, ",", 1);
        if (j->err == PH_OK)
            j->err = ph_json_append_string(j->out, e->name, e->len);
    }
    put(j->out, &j->err, "]", 1);
}

/* sys.clients: every connection the hub knows, for administrators (the
 * table's PH_SYS_ADMIN: control() has checked). */
void hub_sys_clients(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                     size_t len)
{
    ph_buf *b = h->cur_out;
    ph_conn_stats cs;
    ph_err err;
    size_t start, i, n = 0;
    hnode *e;
    ph_json j;

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
            names_array(&j, "routes", &t->regs);
            names_array(&j, "subscriptions", &t->subs);
            ph_json_bool(&j, "monitor", t->monitor);
            err = ph_json_end(&j);
        }
    }
    put(b, &err, "]", 1);
    json_done(h, id, "sys.clients", 11, start, err);
}

