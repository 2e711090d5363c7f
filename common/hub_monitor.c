/* The monitor: wrapped copies of routed frames for administrators who
 * asked (sys.monitor), built-in traffic included when they asked for it. */
#include "hub_int.h"

#include <string.h>

#include "platform.h"

/* A frame in two parts, frame and tail (either may be empty). */
static void copy_parts(ph_hub *h, uint32_t from, uint32_t to,
                       const char *route, size_t route_len,
                       const uint8_t *frame, size_t len, const uint8_t *tail,
                       size_t tail_len)
{
    uint8_t head[16];
    size_t start, room;
    uint32_t i;
    int sys = hub_is_sys(route, route_len), any = 0;
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
    if (tail_len > room - len)
        tail_len = room - len;
    /* The tail may be a lane payload its sender can change meanwhile: it
     * is only copied, as the frame's other receivers get it. */
    if (ph_buf_append(&h->mon, head, sizeof head) != PH_OK ||
        ph_buf_append(&h->mon, frame, len) != PH_OK ||
        ph_buf_append(&h->mon, tail, tail_len) != PH_OK ||
        ph_frame_end(&h->mon, start, h->lim.max_frame) != PH_OK)
        return;
    for (i = 0; i < h->monitors.n; i++) {
        hconn *m = h->monitors.v[i];
        if ((sys && !m->monitor_sys) ||
            !ph_pattern_match(m->monitor_pattern, m->monitor_plen, route,
                              route_len))
            continue;
        if (hub_deliver(h, m, h->mon.data, h->mon.len, "monitor") == 0)
            h->st.frames_out++;
    }
}

void hub_monitor_copy(ph_hub *h, uint32_t from, uint32_t to,
                      const char *route, size_t route_len,
                      const uint8_t *frame, size_t len)
{
    copy_parts(h, from, to, route, route_len, frame, len, NULL, 0);
}

void hub_monitor_copy_enc(ph_hub *h, uint32_t from, uint32_t to,
                          const char *route, size_t route_len)
{
    copy_parts(h, from, to, route, route_len, h->enc.data, h->enc.len,
               h->enc_tail, h->enc_tail_len);
}

void hub_monitor_off(ph_hub *h, hconn *c)
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

void hub_sys_monitor(ph_hub *h, hconn *c, uint32_t id, const char *arg,
                     size_t len)
{
    const char *pat = "*", *w = arg, *end = arg + len;
    size_t plen = 1, n;
    int sys = 0, have_pat = 0;
    char *copy;

    while (w < end) {
        const char *sp = memchr(w, ' ', (size_t)(end - w));
        n = sp ? (size_t)(sp - w) : (size_t)(end - w);
        if (n == 3 && memcmp(w, "sys", 3) == 0) {
            sys = 1;
        } else if (n > 0 && !have_pat && ph_pattern_valid(w, n, 1)) {
            pat = w;
            plen = n;
            have_pat = 1;
        } else if (n > 0) {
            hub_send_error(h, c, id, PH_EBADREQ, "sys.monitor", 11,
                           "expected '[PATTERN] [sys]'");
            return;
        }
        w += n + 1;
    }
    copy = ph_alloc(plen + 1);
    if (copy == NULL || (!c->monitor && parr_push(&h->monitors, c) != PH_OK)) {
        ph_free(copy);
        hub_send_error(h, c, id, PH_EINTERNAL, "sys.monitor", 11,
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
    hub_reply(h, id, NULL, 0);
}

void ph_hub_observe_builtin(ph_hub *h, uint32_t id, const ph_frame *f,
                            const uint8_t *reply, size_t reply_len)
{
    if (h->monitors_sys == 0)
        return;
    h->enc.len = 0;
    h->enc_tail = NULL;
    h->enc_tail_len = 0;
    if (ph_frame_append(&h->enc, f) == PH_OK)
        hub_monitor_copy_enc(h, id, 0, f->route, f->route_len);
    if (reply_len >= PH_FRAME_HEADER_LEN) {
        size_t n = ph_get_u32le(reply);
        hub_monitor_copy(h, 0, id, f->route, f->route_len, reply,
                         n < reply_len ? n : reply_len);
    }
}

int ph_hub_watching_builtins(const ph_hub *h)
{
    return __atomic_load_n(&h->monitors_sys, __ATOMIC_RELAXED) != 0;
}

