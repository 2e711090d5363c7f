/* The hub (hub.h): entry points. A frame is dispatched here to the file
 * of its concept (hub_int.h has the map); every byte leaves through
 * hub_send.c and ph_hub_io. */
#include "hub_int.h"

#include <string.h>

#include "platform.h"

/* A request for a sys.* route that the router did not answer: the row of
 * the built-in route table (sysroutes.c) says who may ask and who answers. */
static void control(ph_hub *h, hconn *c, const ph_frame *f)
{
    const char *arg = (const char *)f->payload;
    size_t len = f->payload_len, at = h->cur_out->len;
    const char *r = f->route;
    size_t rl = f->route_len;
    const ph_sys_route *row;
    const char *nl;

    /* Arguments are short text; a trailing newline (from a shell) is
     * forgiven. */
    while (len > 0 && (arg[len - 1] == '\n' || arg[len - 1] == '\r' ||
                       arg[len - 1] == ' '))
        len--;
    /* The argument is one short line; sys.register may add a description
     * after it (its handler checks that). */
    nl = memchr(arg, '\n', len);
    if ((nl != NULL ? (size_t)(nl - arg) : len) > PH_ROUTE_MAX + 16 ||
        len > PH_ROUTE_MAX + 17 + HUB_DESCRIBE_MAX) {
        hub_send_error(h, c, f->id, PH_EBADREQ, r, rl, "argument too long");
        return;
    }
    row = ph_sys_route_find(r, rl);
    if (row == NULL || row->hub == NULL) {
        hub_send_error(h, c, f->id, PH_ENOROUTE, r, rl, "no route '%.*s'",
                       (int)rl, r);
        return;
    }
    if ((row->flags & PH_SYS_ADMIN) && !hub_admin_ok(h, c, row->name, f->id))
        return;
    row->hub(h, c, f->id, arg, len);
    if (h->monitors_sys > 0 && h->cur_out->len >= at + PH_FRAME_HEADER_LEN) {
        /* The answer is the first frame after at; events for the sender
         * itself may follow it, and have had their own copies. */
        size_t n = ph_get_u32le(h->cur_out->data + at);
        if (n > h->cur_out->len - at)
            n = h->cur_out->len - at;
        h->enc.len = 0;
        h->enc_tail = NULL;
        h->enc_tail_len = 0;
        if (ph_frame_append(&h->enc, f) == PH_OK)
            hub_monitor_copy_enc(h, c->id, 0, r, rl);
        hub_monitor_copy(h, 0, c->id, r, rl, h->cur_out->data + at, n);
    }
}

ph_err ph_hub_frame(ph_hub *h, uint32_t id, const ph_frame *f, ph_buf *out)
{
    hconn *c = hub_conn_find(h, id);

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
        if (hub_is_sys(f->route, f->route_len))
            control(h, c, f);
        else
            hub_forward(h, c, f);
        break;
    case PH_EVENT:
        if (hub_is_sys(f->route, f->route_len)) {
            hub_send_error(h, c, f->id, PH_EFORBIDDEN, f->route, f->route_len,
                           "topics under 'sys.' belong to the hub");
            break;
        }
        if (!hub_access_ok(h, c, ACT_PUBLISH, f->route, f->route_len, f->id))
            break;
        h->st.events_published++;
        hub_publish(h, c->id, f->route, f->route_len, f->payload, f->payload_len);
        break;
    default:
        hub_answer(h, c, f);
        break;
    }
    h->cur = NULL;
    h->cur_out = NULL;
    return h->cur_err;
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
                  ph_hub **out)
{
    ph_hub *h = ph_alloc(sizeof *h);

    if (h == NULL)
        return PH_ENOMEM;
    memset(h, 0, sizeof *h);
    h->io = *io;
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
    hub_calls_free(h);
    hub_activations_free(h);
    htab_free(&h->conns);
    htab_free(&h->routes);
    htab_free(&h->topics);
    htab_free(&h->users);
    parr_free(&h->monitors);
    ph_buf_free(&h->enc);
    ph_buf_free(&h->mon);
    ph_free(h);
}

void ph_hub_get_stats(const ph_hub *h, ph_hub_stats *out)
{
    *out = h->st;
}

