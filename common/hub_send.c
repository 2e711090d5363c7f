/* The way out of the hub: every frame for a connection goes through
 * hub_deliver, which applies the output quota; errors, replies to the
 * sender and the hub's log lines. */
#include "hub_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void hub_log(ph_hub *h, int level, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    if (h->io.log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->io.log(h->io.ctx, level, msg);
}

/* A limit fired for c: log it once per connection and limit. The line is
 * marked PH_HUB_LOG_LIMITED, so the platform's one rate limit for such lines
 * (a burst, then a few a second) applies to it as to its own. */
void hub_log_limit(ph_hub *h, hconn *c, uint32_t which, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    int n;

    if (h->io.log == NULL || (c->logged & which))
        return;
    c->logged |= which;
    n = snprintf(msg, sizeof msg, "conn %u pid %u (%s): ", (unsigned)c->id,
                 (unsigned)c->who.pid,
                 c->who.account[0] ? c->who.account : c->who.sid);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    h->io.log(h->io.ctx, 1 | PH_HUB_LOG_LIMITED, msg);
}

int hub_too_large_for(const ph_hub *h, const hconn *c)
{
    return h->enc.len + h->enc_tail_len > h->lim.max_frame && !c->lane;
}

int hub_is_sys(const char *name, size_t len)
{
    return len >= 4 && memcmp(name, "sys.", 4) == 0;
}

static void touch(ph_hub *h, hconn *c)
{
    if (c->touched)
        return;
    c->touched = 1;
    c->touched_next = h->touched;
    h->touched = c;
}

void hub_close(ph_hub *h, hconn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    h->io.close(h->io.ctx, c->handle, why);
}

/* c does not read what it asked for: disconnect it, loudly. */
static void slow(ph_hub *h, hconn *c, const char *role, size_t queued,
                 size_t len)
{
    hub_log(h, 1, "conn %u pid %u (%s): disconnected: %s not reading: "
            "%zu bytes queued, %zu more due, send_queue_bytes %u",
            (unsigned)c->id, (unsigned)c->who.pid, c->who.account, role,
            queued, len, (unsigned)h->lim.send_queue_bytes);
    h->st.slow_disconnects++;
    hub_close(h, c, "not reading");
}

/* Queue one or more encoded frames for c. role, when not NULL, says that c
 * asked for them (a subscriber, a caller, a monitor): if c's queue is
 * already at its quota, c is not reading what it asked for and is
 * disconnected. The quota is the pipe path's: a queue below it takes the
 * next frame whatever its size (every frame is within max_frame), so one
 * reply or event bigger than send_queue_bytes reaches a reader; only output
 * that keeps piling up past the quota counts as not reading, and
 * send_stall_timeout_ms closes a client that never reads at all. Returns 0
 * when queued. */
static int deliver(ph_hub *h, hconn *c, const uint8_t *data, size_t len,
                   const uint8_t *tail, size_t tail_len, const char *role)
{
    size_t q;
    ph_err err;

    if (c->closing)
        return -1;
    c->frames_routed++;
    if (c == h->cur) {
        /* The sender's own queue: it is bounded by the sender's reading
         * being paused while the queue is over quota. Room for both parts
         * first, so a frame is never queued in half. */
        if (ph_buf_reserve(h->cur_out, len + tail_len) != PH_OK) {
            h->cur_err = PH_ENOMEM;
            return -1;
        }
        (void)ph_buf_append(h->cur_out, data, len);
        (void)ph_buf_append(h->cur_out, tail, tail_len);
        return 0;
    }
    if (role != NULL) {
        q = h->io.queued(h->io.ctx, c->handle);
        if (q >= h->lim.send_queue_bytes) {
            slow(h, c, role, q, len + tail_len);
            return -1;
        }
    }
    err = tail_len > 0 ? h->io.send_parts(h->io.ctx, c->handle, data, len,
                                          tail, tail_len)
                       : h->io.send(h->io.ctx, c->handle, data, len);
    if (err != PH_OK) {
        hub_log(h, 0, "conn %u: out of memory queueing %zu bytes",
                (unsigned)c->id, len + tail_len);
        hub_close(h, c, "out of memory");
        return -1;
    }
    touch(h, c);
    return 0;
}

int hub_deliver(ph_hub *h, hconn *c, const uint8_t *data, size_t len,
                const char *role)
{
    return deliver(h, c, data, len, NULL, 0, role);
}

int hub_deliver_enc(ph_hub *h, hconn *c, const char *role)
{
    return deliver(h, c, h->enc.data, h->enc.len, h->enc_tail,
                   h->enc_tail_len, role);
}

ph_err hub_encode(ph_hub *h, uint8_t kind, uint32_t id, uint32_t status,
                  const char *route, size_t route_len,
                  const uint8_t *payload, size_t payload_len)
{
    ph_frame f = {.kind = kind, .route_len = (uint8_t)route_len, .id = id,
                  .status = status, .route = route, .payload = payload,
                  .payload_len = (uint32_t)payload_len};
    size_t total = ph_frame_size(route_len, payload_len);
    ph_err err;

    h->enc.len = 0;
    h->enc_tail = NULL;
    h->enc_tail_len = 0;
    if (h->io.send_parts == NULL || payload_len < PH_HUB_SPLIT_BYTES)
        return ph_frame_append(&h->enc, &f);
    if (total > UINT32_MAX)
        return PH_ETOOBIG;
    /* The head alone, its length field counting the payload. */
    f.payload = NULL;
    f.payload_len = 0;
    err = ph_frame_append(&h->enc, &f);
    if (err != PH_OK)
        return err;
    ph_put_u32le(h->enc.data, (uint32_t)total);
    h->enc_tail = payload;
    h->enc_tail_len = payload_len;
    return PH_OK;
}

/* An ERROR from the hub to c, answering its request id. route names what
 * the request was for (monitor copies). */
void hub_send_error(ph_hub *h, hconn *c, uint32_t id, ph_err code,
                    const char *route, size_t route_len,
                    const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->enc.len = 0;
    h->enc_tail = NULL;
    h->enc_tail_len = 0;
    if (ph_frame_append_error(&h->enc, id, code, msg) != PH_OK) {
        if (c == h->cur)
            h->cur_err = PH_ENOMEM;
        return;
    }
    if (hub_deliver(h, c, h->enc.data, h->enc.len, "caller") != 0)
        return;
    h->st.frames_out++;
    h->st.errors_sent++;
    hub_monitor_copy(h, 0, c->id, route, route_len, h->enc.data, h->enc.len);
}

/* A REPLY to the sender, with a payload. */
void hub_reply(ph_hub *h, uint32_t id, const void *payload, size_t len)
{
    if (hub_encode(h, PH_REPLY, id, 0, NULL, 0, payload, len) != PH_OK ||
        hub_deliver_enc(h, h->cur, NULL) != 0) {
        h->cur_err = PH_ENOMEM;
        return;
    }
    h->st.frames_out++;
}

