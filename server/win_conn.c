/* One connection's life: reads into the decoder, frames to the router,
 * replies gathered in the send queue and written many per WriteFile, and
 * close -> drain -> finish.
 *
 * Every handle has FILE_SKIP_COMPLETION_PORT_ON_SUCCESS set, so a ReadFile or
 * WriteFile that completes at once is handled inline (no packet comes for
 * it) and only operations that really pend cost a completion. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "platform.h"
#include "sysroutes.h"
#include "win_error.h"
#include "wintime.h"

static void op_init(ph_op *op, ph_op_type type, ph_conn *c)
{
    memset(op, 0, sizeof *op);
    op->type = type;
    op->conn = c;
}

ph_conn *ph_conn_new(ph_server *srv, HANDLE pipe)
{
    ph_conn *c = ph_alloc(sizeof *c);

    if (c == NULL)
        return NULL;
    memset(c, 0, sizeof *c);
    c->srv = srv;
    c->pipe = pipe;
    InitializeCriticalSection(&c->lock);
    InitializeCriticalSection(&c->inbox_lock);
    op_init(&c->op_connect, PH_OP_CONNECT, c);
    op_init(&c->op_kick, PH_OP_KICK, c);
    op_init(&c->op_read, PH_OP_READ, c);
    op_init(&c->op_write, PH_OP_WRITE, c);
    op_init(&c->op_close, PH_OP_CLOSE, c);
    ph_decoder_init(&c->decoder, PH_MAX_FRAME_DEFAULT); /* set per read */
    return c;
}

void ph_conn_free(ph_conn *c)
{
    ph_conn_lane_close(c);
    if (c->pipe != INVALID_HANDLE_VALUE)
        CloseHandle(c->pipe);
    ph_decoder_free(&c->decoder);
    ph_buf_free(&c->send_queue);
    ph_buf_free(&c->in_flight);
    ph_buf_free(&c->inbox);
    ph_free(c->rbuf);
    DeleteCriticalSection(&c->inbox_lock);
    DeleteCriticalSection(&c->lock);
    ph_free(c);
}

/* Forget the last client so the instance can serve the next one. Large
 * buffers are dropped: the next client may well be idle. */
void ph_conn_reset(ph_conn *c)
{
    ph_decoder_free(&c->decoder);
    ph_decoder_init(&c->decoder, PH_MAX_FRAME_DEFAULT); /* set per read */
    if (c->send_queue.cap > PH_READ_LARGE)
        ph_buf_free(&c->send_queue);
    if (c->in_flight.cap > PH_READ_LARGE)
        ph_buf_free(&c->in_flight);
    if (c->inbox.cap > PH_READ_LARGE)
        ph_buf_free(&c->inbox);
    c->send_queue.len = c->in_flight.len = c->in_flight_done = 0;
    c->inbox.len = 0;
    c->hub_close = NULL;
    c->attention = 0;
    c->owner_queued = 0;
    c->in_hub = c->holds_hub = c->kick_posted = 0;
    c->got_frame = 0;
    c->partial_since = c->stall_since = c->close_by = 0;
    c->who[0] = c->sid[0] = '\0';
    ph_conn_lane_close(c);
    c->frames_in = c->frames_out = c->bytes_in = c->bytes_out = 0;
    if (c->rcap > PH_READ_SMALL) {
        ph_free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
    c->reading = c->writing = c->close_after_flush = c->reusable = 0;
    c->close_why = NULL;
    memset(&c->peer, 0, sizeof c->peer);
    c->state = PH_CONN_IDLE;
}

ph_err ph_conn_listen(ph_conn *c)
{
    DWORD e;
    int tries = 0;

    c->state = PH_CONN_LISTENING;
    c->ops_pending = 1;
    do {
        memset(&c->op_connect.ov, 0, sizeof c->op_connect.ov);
        if (ConnectNamedPipe(c->pipe, &c->op_connect.ov))
            e = ERROR_PIPE_CONNECTED;
        else
            e = GetLastError();
        /* ERROR_NO_DATA: a client connected and already went away (one
         * that only probes whether the name is served does exactly this).
         * The instance is fine once disconnected. */
    } while (e == ERROR_NO_DATA && ++tries < 4 && DisconnectNamedPipe(c->pipe));
    switch (e) {
    case ERROR_IO_PENDING:
        break;
    case ERROR_PIPE_CONNECTED:
        /* The client connected between CreateNamedPipe (or the last
         * DisconnectNamedPipe) and now: no completion will come for it, so
         * queue one, and the connection starts like every other. */
        if (!PostQueuedCompletionStatus(c->srv->port, 0, 0, &c->op_connect.ov)) {
            e = GetLastError();
            goto fail;
        }
        break;
    default:
        goto fail;
    }
    ph_list_push(&c->srv->listening, c);
    return PH_OK;
fail:
    c->ops_pending = 0;
    c->state = PH_CONN_IDLE;
    return ph_win_err(e);
}

/* c->lock held. Begin closing: cancel what is outstanding; whoever takes the
 * last completion finishes the connection. */
static void close_locked(ph_conn *c, int reusable, const char *why)
{
    if (c->state != PH_CONN_OPEN)
        return;
    c->state = PH_CONN_CLOSING;
    c->reusable = reusable;
    ph_log(PH_LOG_INFO, "conn %llu pid %lu%s%s%s: disconnected (%s)",
           (unsigned long long)c->peer.conn_id, (unsigned long)c->peer.pid,
           c->who[0] ? " (" : "", c->who, c->who[0] ? ")" : "", why);
    if (c->ops_pending > 0)
        CancelIoEx(c->pipe, NULL);
}

/* Close for a Win32 error from a read or write. */
static void close_for(ph_conn *c, DWORD e)
{
    char why[64];

    switch (e) {
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED:
        close_locked(c, 1, "client closed");
        return;
    default:
        snprintf(why, sizeof why, "I/O error %lu", (unsigned long)e);
        close_locked(c, 0, why);
    }
}

static void ensure_finish(ph_conn *c);
static void pump(ph_counters *k, ph_conn *c);
static void conn_unlock(ph_conn *c);
static uint64_t io_wall(void *ctx);

/* The counters of the worker running this thread (set by
 * ph_conn_thread_init); a frame written on behalf of another connection is
 * counted by the thread that wrote it. */
static __thread ph_counters *t_counters;

void ph_conn_thread_init(ph_counters *k)
{
    t_counters = k;
}

static ph_counters *counters(ph_conn *c)
{
    return t_counters != NULL ? t_counters : &c->srv->control;
}

void ph_conn_close(ph_conn *c, const char *why)
{
    EnterCriticalSection(&c->lock);
    /* Only the call that moves c from OPEN to CLOSING may queue its finish:
     * a connection already CLOSING with nothing outstanding is being
     * finished by the worker that saw its last completion. */
    if (c->state == PH_CONN_OPEN) {
        close_locked(c, 0, why);
        ensure_finish(c);
    }
    conn_unlock(c);
}

void ph_conn_shutdown(ph_conn *c)
{
    static const char msg[] = "server stopping";
    ph_frame ev;

    EnterCriticalSection(&c->lock);
    if (c->state == PH_CONN_OPEN && !c->close_after_flush) {
        memset(&ev, 0, sizeof ev);
        ev.kind = PH_EVENT;
        ev.route = "sys.shutdown";
        ev.route_len = 12;
        ev.payload = (const uint8_t *)msg;
        ev.payload_len = sizeof msg - 1;
        if (ph_frame_append(&c->send_queue, &ev) == PH_OK)
            c->srv->control.frames_out++;
        c->close_after_flush = 1;
        c->close_why = "server stopping";
        pump(&c->srv->control, c);
        ensure_finish(c);
    }
    conn_unlock(c);
}

static void count(volatile LONG64 *counter)
{
    InterlockedIncrement64(counter);
}

/* A deadline passed: ERROR TIMEOUT, then close (fail_stream). */
static void timed_out(ph_conn *c, volatile LONG64 *counter, const char *fmt,
                      unsigned ms)
{
    char why[160];

    snprintf(why, sizeof why, fmt, ms);
    count(counter);
    if (ph_log_limit_allow())
        ph_log(PH_LOG_WARN, "conn %llu pid %lu (%s): %s; closing",
               (unsigned long long)c->peer.conn_id, (unsigned long)c->peer.pid,
               c->who, why);
    if (ph_frame_append_error(&c->send_queue, 0, PH_ETIMEDOUT, why) == PH_OK) {
        counters(c)->frames_out++;
        counters(c)->errors_sent++;
    }
    c->close_after_flush = 1;
    c->close_why = "deadline passed";
    c->close_by = GetTickCount64() + PH_CLOSE_GRACE_MS;
    pump(counters(c), c);
    ensure_finish(c);
}

size_t ph_conn_check(ph_conn *c, ULONGLONG now, const ph_options *live)
{
    ph_limit_counters *lim = &c->srv->limits;
    size_t queued = c->check_queued;
    char why[96];

    /* Never wait here (the caller holds srv->lock): a connection whose lock
     * is busy is being served, and is looked at again next second. */
    if (!TryEnterCriticalSection(&c->lock))
        return queued;
    queued = 0;
    /* Read under c's lock: a deadline field set after a clock read taken
     * earlier would make "now - field" wrap and fire at once. */
    now = GetTickCount64();
    if (c->state != PH_CONN_OPEN)
        goto out;
    if (c->close_after_flush) {
        /* Its last frame was not read in time: cut it off. */
        if (c->close_by != 0 && now >= c->close_by) {
            close_locked(c, 0, c->close_why ? c->close_why : "closing");
            ensure_finish(c);
        }
        goto out;
    }
    if (live->idle_timeout_ms != 0 && now >= c->last_active &&
        now - c->last_active >= live->idle_timeout_ms) {
        snprintf(why, sizeof why, "idle for %u ms",
                 (unsigned)live->idle_timeout_ms);
        close_locked(c, 0, why);
        ensure_finish(c);
        goto out;
    }
    if (!c->got_frame && now >= c->connected_at &&
        now - c->connected_at >= live->first_frame_timeout_ms) {
        timed_out(c, &lim->first_frame_timeout, "no whole frame within "
                  "first_frame_timeout_ms (%u ms) of connecting",
                  (unsigned)live->first_frame_timeout_ms);
        goto out;
    }
    if (c->partial_since != 0 && now >= c->partial_since &&
        now - c->partial_since >= live->frame_timeout_ms) {
        timed_out(c, &lim->frame_timeout, "a frame begun was not complete "
                  "within frame_timeout_ms (%u ms)",
                  (unsigned)live->frame_timeout_ms);
        goto out;
    }
    if (c->stall_since != 0 && now >= c->stall_since &&
        now - c->stall_since >= live->send_stall_timeout_ms) {
        count(&lim->send_stall);
        if (ph_log_limit_allow())
            ph_log(PH_LOG_WARN, "conn %llu pid %lu (%s): %lld bytes queued "
                   "and not read for send_stall_timeout_ms (%u ms); closing",
                   (unsigned long long)c->peer.conn_id,
                   (unsigned long)c->peer.pid, c->who,
                   (long long)c->owner_queued,
                   (unsigned)live->send_stall_timeout_ms);
        close_locked(c, 0, "send stall");
        ensure_finish(c);
        goto out;
    }
    EnterCriticalSection(&c->inbox_lock);
    queued = (size_t)c->owner_queued + c->inbox.len;
    LeaveCriticalSection(&c->inbox_lock);
out:
    conn_unlock(c);
    return queued;
}

void ph_conn_close_for_memory(ph_conn *c, size_t queued, uint32_t cap)
{
    EnterCriticalSection(&c->lock);
    if (c->state == PH_CONN_OPEN) {
        count(&c->srv->limits.max_queued_bytes);
        if (ph_log_limit_allow())
            ph_log(PH_LOG_WARN, "conn %llu pid %lu (%s): output queued for "
                   "all clients passed max_queued_bytes (%u); this one holds "
                   "the most (%llu bytes); closing",
                   (unsigned long long)c->peer.conn_id,
                   (unsigned long)c->peer.pid, c->who, (unsigned)cap,
                   (unsigned long long)queued);
        close_locked(c, 0, "max_queued_bytes");
        ensure_finish(c);
    }
    conn_unlock(c);
}

/* A frame-level failure: tell the client why, then close once the ERROR
 * frame has been written. The pipe is then closed, not disconnected, so the
 * client can still read the ERROR (DisconnectNamedPipe would discard it). */
static void fail_stream(ph_counters *k, ph_conn *c, ph_err code,
                        const char *why)
{
    ph_log(PH_LOG_WARN, "conn %llu pid %lu: %s: %s; closing",
           (unsigned long long)c->peer.conn_id, (unsigned long)c->peer.pid,
           ph_strerror(code), why);
    if (ph_frame_append_error(&c->send_queue, 0, code, why) == PH_OK) {
        k->frames_out++;
        k->errors_sent++;
    }
    c->close_after_flush = 1;
    c->close_why = "protocol error";
    c->close_by = GetTickCount64() + PH_CLOSE_GRACE_MS;
}

/* Take the hub's lock for the rest of this read's frames (c->lock held). */
static void hub_enter(ph_conn *c)
{
    if (!c->holds_hub) {
        EnterCriticalSection(&c->srv->hub_lock);
        c->holds_hub = 1;
    }
}

/* The read's frames are done: let the hub go, then start the writes they
 * caused on other connections. */
static void hub_leave(ph_conn *c)
{
    if (c->holds_hub) {
        ph_hub_flush(c->srv->hub);
        c->holds_hub = 0;
        ph_server_hub_unlock(c->srv);
    }
}

/* The client's first bytes: read who it is (its token can be read once a
 * message has arrived) and introduce it to the hub. */
static int join_hub(ph_counters *k, ph_conn *c)
{
    ph_conn_identity id;
    char why[200];
    ph_err err;

    ph_identity_capture(c->pipe, c->peer.pid, &id);
    c->peer.pid = id.who.pid;
    snprintf(c->who, sizeof c->who, "%s", id.account[0] ? id.account : id.sid);
    snprintf(c->sid, sizeof c->sid, "%s", id.sid);
    hub_enter(c);
    err = ph_hub_connect(c->srv->hub, (uint32_t)c->peer.conn_id, c, &id.who,
                         why, sizeof why);
    if (err == PH_OK) {
        c->in_hub = 1;
    } else if (err == PH_EBUSY) {
        if (ph_log_limit_allow())
            ph_log(PH_LOG_WARN, "conn %llu pid %lu (%s): refused: %s",
                   (unsigned long long)c->peer.conn_id,
                   (unsigned long)c->peer.pid, c->who, why);
        fail_stream(k, c, PH_EBUSY, why);
        return -1;
    } else {
        fail_stream(k, c, PH_EINTERNAL, "server out of memory");
        return -1;
    }
    ph_log(PH_LOG_DEBUG, "conn %llu pid %lu: %s, %s, integrity %s%s, %s",
           (unsigned long long)c->peer.conn_id, (unsigned long)id.who.pid,
           id.sid, id.account[0] ? id.account : "(no account name)",
           id.integrity[0] ? id.integrity : "?", id.who.admin ? ", admin" : "",
           id.exe);
    return 0;
}

/* The result of one decoder call: route a whole frame, or fail the stream.
 * Returns 0 to go on decoding, -1 when the stream is done for. */
static int decoded(ph_counters *k, ph_conn *c, ph_err err, const ph_frame *f)
{
    const ph_sys_route *row;
    ph_route_result res;
    ph_frame lf;
    uint64_t lane_end = 0;
    int in_place = 0;
    char why[160];

    if (err == PH_EAGAIN)
        return 0;
    if (err == PH_ENOMEM) {
        fail_stream(k, c, PH_EINTERNAL, "server out of memory");
        return -1;
    }
    if (err != PH_OK) {
        fail_stream(k, c, err, c->decoder.why);
        return -1;
    }
    k->frames_in++;
    c->frames_in++;
    c->got_frame = 1;
    row = f->kind == PH_REQUEST ? ph_sys_route_find(f->route, f->route_len)
                                : NULL;
    if (f->flags & PH_FLAG_LANE) {
        /* The payload waits in the client's ring: its descriptor is
         * checked, and the frame is routed as if it had come whole. What
         * only copies the payload on and never looks at it reads it in
         * place, and the space goes back once it has: a built-in route
         * marked opaque (sys.echo), and every frame for the hub that is
         * not for one of its sys. routes (requests, replies and events for
         * other clients: the hub copies the payload once, into the
         * receiver's ring when it can, ph_hub_io.send_parts). The sys.
         * routes the hub answers read their payload: it is copied out
         * first, so nothing looks at bytes the client can still change. */
        in_place = row != NULL ? row->local != NULL &&
                                     (row->flags & PH_SYS_OPAQUE)
                               : !(f->route_len >= 4 &&
                                   memcmp(f->route, "sys.", 4) == 0);
        err = ph_conn_lane_take(c, f, in_place, &lf, &lane_end, why,
                                sizeof why);
        if (err != PH_OK) {
            fail_stream(k, c, err == PH_ENOMEM ? PH_EINTERNAL : err, why);
            return -1;
        }
        f = &lf;
        /* sys.echo's answer is the payload as it came: from the client's
         * ring straight into its other one, when nothing waits ahead of it
         * and no monitor wants a copy of it. */
        if (row != NULL && (row->flags & PH_SYS_ECHO) &&
            !(c->in_hub && ph_hub_watching_builtins(c->srv->hub)) &&
            ph_conn_lane_echo(c, f) == PH_OK) {
            k->frames_out++;
            c->frames_out++;
            ph_lane_consume(&c->lane.rings.in, lane_end);
            return 0;
        }
    } else if (f->kind == PH_EVENT && c->lane.view != NULL &&
               f->route_len == 8 && memcmp(f->route, "sys.lane", 8) == 0) {
        /* The client gave room back in its ring while we waited. */
        c->lane.blocked = 0;
        return 0;
    }
    if (row != NULL && row->local != NULL) {
        /* The fast path: built-in routes that need no hub never touch the
         * hub's lock, unless a monitor asked to see them. */
        size_t at = c->send_queue.len;
        err = ph_router_handle(&c->srv->router, &c->peer, f, &c->send_queue,
                               &res);
        k->frames_out += res.frames;
        k->errors_sent += res.errors;
        c->frames_out += res.frames;
        if (err == PH_OK && c->in_hub && ph_hub_watching_builtins(c->srv->hub)) {
            hub_enter(c);
            ph_hub_observe_builtin(c->srv->hub, (uint32_t)c->peer.conn_id, f,
                                   c->send_queue.data + at,
                                   c->send_queue.len - at);
        }
    } else if (!c->in_hub) {
        err = PH_ENOMEM; /* joining the hub failed for want of memory */
    } else {
        hub_enter(c);
        err = ph_hub_frame(c->srv->hub, (uint32_t)c->peer.conn_id, f,
                           &c->send_queue);
    }
    if (in_place)
        ph_lane_consume(&c->lane.rings.in, lane_end);
    if (err != PH_OK) {
        fail_stream(k, c, PH_EINTERNAL, "server out of memory");
        return -1;
    }
    return 0;
}

/* Returns -1 when c was refused (its bytes are then not decoded). */
static int received(ph_counters *k, ph_conn *c, uint32_t n)
{
    if (!c->in_hub && n > 0 && join_hub(k, c) != 0)
        return -1;
    k->bytes_in += n;
    c->bytes_in += n;
    c->last_active = GetTickCount64();
    /* A reload may have changed the frame limit: it applies from the next
     * frame on, also to clients that stay connected. */
    c->peer.max_frame = ph_server_live(c->srv)->max_frame_bytes;
    c->decoder.max_frame = c->peer.max_frame;
    return 0;
}

/* After a read: is a frame left half-arrived, and since when? (The frame
 * deadline runs from its first byte; a whole frame in this read means the
 * partial one after it began here.) */
static void note_partial(ph_conn *c, uint64_t frames_before)
{
    if (ph_decoder_idle(&c->decoder))
        c->partial_since = 0;
    else if (c->partial_since == 0 || (uint64_t)c->frames_in != frames_before)
        c->partial_since = GetTickCount64();
}

/* n bytes of a large frame's tail arrived straight in the decoder. */
static void on_tail(ph_counters *k, ph_conn *c, uint32_t n)
{
    ph_frame f;

    uint64_t before = (uint64_t)c->frames_in;

    if (received(k, c, n) == 0)
        decoded(k, c, ph_decoder_commit(&c->decoder, n, &f), &f);
    note_partial(c, before);
    hub_leave(c);
}

/* n bytes arrived in rbuf: decode every whole frame and route it. */
static void on_data(ph_counters *k, ph_conn *c, uint32_t n)
{
    size_t off = 0, used;
    uint64_t before = (uint64_t)c->frames_in;
    ph_frame f;
    ph_err err;

    if (received(k, c, n) != 0) {
        hub_leave(c);
        return;
    }
    while (off < n) {
        err = ph_decoder_next(&c->decoder, c->rbuf + off, n - off, &used, &f);
        if (err == PH_EAGAIN || decoded(k, c, err, &f) != 0)
            break;
        off += used;
    }
    note_partial(c, before);
    hub_leave(c);
    /* A read that filled the buffer says more is coming: read bigger. The
     * frames above may point into rbuf, so this waits until they are done. */
    if (n == c->rcap && c->rcap < PH_READ_LARGE) {
        uint8_t *p = ph_realloc(c->rbuf, PH_READ_LARGE);
        if (p != NULL) {
            c->rbuf = p;
            c->rcap = PH_READ_LARGE;
        }
    }
}

static void wrote(ph_counters *k, ph_conn *c, DWORD n)
{
    k->bytes_out += n;
    c->bytes_out += n;
    /* The client reads: a stall, if any, starts over. */
    if (n > 0 && c->stall_since != 0)
        c->stall_since = GetTickCount64();
    c->in_flight_done += n;
    if (c->in_flight_done >= c->in_flight.len)
        c->in_flight.len = c->in_flight_done = 0;
}

/* Write what is queued. The whole send queue goes in one WriteFile: every
 * reply produced since the last write shares one call. */
static void start_write(ph_counters *k, ph_conn *c)
{
    ph_err err;
    DWORD e;

    if (c->in_flight.len == 0) {
        ph_buf t = c->in_flight;
        c->in_flight = c->send_queue;
        c->send_queue = t;
        c->in_flight_done = 0;
        if (c->lane.view != NULL) {
            err = ph_conn_lane_outgoing(c);
            if (err != PH_OK) {
                ph_log(PH_LOG_WARN, "conn %llu pid %lu (%s): lane: %s; "
                       "closing", (unsigned long long)c->peer.conn_id,
                       (unsigned long)c->peer.pid, c->who,
                       err == PH_ENOMEM ? "server out of memory"
                                        : "the client's ring head makes no "
                                          "sense");
                close_locked(c, 0, "lane broken");
                return;
            }
            if (c->in_flight.len == 0)
                return; /* all of it waits for room in the ring */
        }
    }
    memset(&c->op_write.ov, 0, sizeof c->op_write.ov);
    if (WriteFile(c->pipe, c->in_flight.data + c->in_flight_done,
                  (DWORD)(c->in_flight.len - c->in_flight_done), NULL,
                  &c->op_write.ov)) {
        wrote(k, c, (DWORD)c->op_write.ov.InternalHigh);
        return;
    }
    e = GetLastError();
    if (e == ERROR_IO_PENDING) {
        c->writing = 1;
        c->ops_pending++;
        return;
    }
    close_for(c, e);
}

/* Returns 1 when data was read and handled at once, 0 when the read is now
 * pending or the connection is closing. */
static int read_now(ph_counters *k, ph_conn *c)
{
    uint8_t *tail;
    size_t missing;
    DWORD e;

    /* The rest of a frame larger than the read buffer goes straight into the
     * decoder's copy of it, in as few reads as the pipe allows, instead of a
     * read buffer's worth at a time and a copy. */
    missing = ph_decoder_tail(&c->decoder, &tail);
    if (missing > c->rcap) {
        /* Bounded, because Wine makes a pending read's whole buffer
         * resident: a client that sends one large header and then nothing
         * holds this much, not the whole frame. */
        if (missing > PH_TAIL_READ_MAX)
            missing = PH_TAIL_READ_MAX;
        memset(&c->op_read.ov, 0, sizeof c->op_read.ov);
        c->read_into_tail = 1;
        if (ReadFile(c->pipe, tail, (DWORD)missing, NULL, &c->op_read.ov)) {
            on_tail(k, c, (uint32_t)c->op_read.ov.InternalHigh);
            return 1;
        }
        goto check;
    }
    c->read_into_tail = 0;

    if (c->rbuf == NULL) {
        c->rbuf = ph_alloc(PH_READ_SMALL);
        if (c->rbuf == NULL) {
            close_locked(c, 0, "out of memory");
            return 0;
        }
        c->rcap = PH_READ_SMALL;
    }
    memset(&c->op_read.ov, 0, sizeof c->op_read.ov);
    if (ReadFile(c->pipe, c->rbuf, c->rcap, NULL, &c->op_read.ov)) {
        on_data(k, c, (uint32_t)c->op_read.ov.InternalHigh);
        return 1;
    }
check:
    e = GetLastError();
    if (e == ERROR_IO_PENDING) {
        c->reading = 1;
        c->ops_pending++;
        return 0;
    }
    close_for(c, e);
    return 0;
}

/* What the hub sees of c's backlog (ph_hub_io.queued). */
static void publish_queued(ph_conn *c)
{
    size_t q = c->send_queue.len + c->in_flight.len - c->in_flight_done;

    c->owner_queued = (LONG64)q;
    if (q < ph_server_live(c->srv)->send_queue_bytes)
        c->stall_since = 0;
    else if (c->stall_since == 0)
        c->stall_since = GetTickCount64();
}

/* c->lock held. Move what other connections routed to c into its send
 * queue (swapping buffers when the queue is empty, so the bytes are not
 * copied again), and act on a close the hub asked for. Returns -1 when c
 * was closed. */
static int take_inbox(ph_conn *c)
{
    const char *why;
    ph_buf t;

    EnterCriticalSection(&c->inbox_lock);
    InterlockedExchange(&c->attention, 0);
    why = c->hub_close;
    c->hub_close = NULL;
    if (c->inbox.len > 0 && c->state == PH_CONN_OPEN && why == NULL) {
        if (c->send_queue.len == 0) {
            t = c->send_queue;
            c->send_queue = c->inbox;
            c->inbox = t;
        } else if (ph_buf_append(&c->send_queue, c->inbox.data,
                                 c->inbox.len) != PH_OK) {
            why = "out of memory";
        }
    }
    c->inbox.len = 0;
    LeaveCriticalSection(&c->inbox_lock);
    if (why == NULL || c->state != PH_CONN_OPEN)
        return 0;
    close_locked(c, 0, why);
    ensure_finish(c);
    return -1;
}

/* c->lock held: queue a PH_OP_KICK, so a worker pumps c later (once). */
static void post_kick(ph_conn *c)
{
    if (c->kick_posted)
        return;
    c->kick_posted = 1;
    c->ops_pending++;
    if (!PostQueuedCompletionStatus(c->srv->port, 0, 0, &c->op_kick.ov)) {
        c->kick_posted = 0;
        c->ops_pending--;
    }
}

/* c->lock held by a thread that is not c's reader (the hub kicked c, or an
 * unlock found work): take the inbox and write, but never read here: reading
 * would route c's frames with another connection's locks held. When c's
 * reads were paused (its queue was full) and the write made room, a queued
 * kick lets a worker resume them. */
static void service_locked(ph_counters *k, ph_conn *c)
{
    int was_open = c->state == PH_CONN_OPEN;

    if (take_inbox(c) != 0)
        return;
    /* A payload waiting for room in c's ring holds the queue (as in
     * pump): start_write would only put it back, again and again. */
    while (c->state == PH_CONN_OPEN && !c->writing &&
           (c->in_flight.len > 0 ||
            (c->send_queue.len > 0 && !c->lane.blocked)))
        start_write(k, c);
    /* A write that failed here closed c; only the call that moved it from
     * OPEN to CLOSING may queue its finish. */
    if (was_open && c->state == PH_CONN_CLOSING)
        ensure_finish(c);
    publish_queued(c);
    if (c->state == PH_CONN_OPEN && !c->reading && !c->close_after_flush &&
        c->send_queue.len < ph_server_live(c->srv)->send_queue_bytes)
        post_kick(c);
}

/* Leave c->lock, then look once more: a frame routed to c while it was held
 * found the lock taken and left the work (attention) to the holder. The
 * holder's last look comes after its unlock, and the router set attention
 * before trying the lock, so one of the two always sees it. */
static void conn_unlock(ph_conn *c)
{
    for (;;) {
        LeaveCriticalSection(&c->lock);
        if (!c->attention || !TryEnterCriticalSection(&c->lock))
            return;
        service_locked(counters(c), c);
    }
}

/* c->lock held. Move the connection along as far as it can go without
 * waiting: write what is queued, then read (and handle) what is waiting,
 * until something pends. Reading stops while the send queue is over its
 * limit, which is how a client that does not read its replies is held back. */
static void pump(ph_counters *k, ph_conn *c)
{
    int reads = 0;

    while (c->state == PH_CONN_OPEN) {
        if (c->attention && take_inbox(c) != 0)
            break;
        if (!c->writing && (c->in_flight.len > 0 ||
                            (c->send_queue.len > 0 && !c->lane.blocked))) {
            start_write(k, c);
            continue;
        }
        if (c->close_after_flush) {
            if (!c->writing)
                close_locked(c, 0, c->close_why);
            break;
        }
        /* A connection waiting for room in its lane keeps reading: the
         * client's wake-up frame comes that way (the stall deadline still
         * closes one that never reads). */
        if (c->reading ||
            (c->send_queue.len >= ph_server_live(c->srv)->send_queue_bytes &&
             !c->lane.blocked))
            break;
        /* A client that always has data waiting would keep this worker and
         * its lock (and whoever waits for them) forever: after a few reads
         * it goes to the back of the completion queue. */
        if (reads == PH_PUMP_READS_MAX) {
            post_kick(c);
            break;
        }
        if (!read_now(k, c))
            break;
        reads++;
    }
    publish_queued(c);
}

/* c->lock held: nothing outstanding means no completion would ever come to
 * finish a closing connection, so queue one. */
static void ensure_finish(ph_conn *c)
{
    if (c->state != PH_CONN_CLOSING || c->ops_pending != 0)
        return;
    c->ops_pending++;
    if (!PostQueuedCompletionStatus(c->srv->port, 0, 0, &c->op_close.ov)) {
        c->ops_pending--;
        ph_log(PH_LOG_ERROR, "conn %llu: cannot queue its close (error %lu)",
               (unsigned long long)c->peer.conn_id, GetLastError());
    }
}

/* Every completion has come back from a closed connection: take it off the
 * open list and give its instance back to the listener. No lock held. */
static void finish(ph_conn *c)
{
    ph_server *srv = c->srv;

    /* After this no other connection can route to c: the hub forgets it
     * under its lock, which every router holds while it touches c. */
    if (c->in_hub) {
        EnterCriticalSection(&srv->hub_lock);
        /* Kicks started before this may still name c: wait for them. No
         * kicker waits for hub_lock, and new ones need it to begin. */
        AcquireSRWLockExclusive(&srv->kick_lock);
        ph_hub_disconnect(srv->hub, (uint32_t)c->peer.conn_id);
        ReleaseSRWLockExclusive(&srv->kick_lock);
        ph_hub_flush(srv->hub);
        ph_server_hub_unlock(srv);
        c->in_hub = 0;
    }

    EnterCriticalSection(&srv->lock);
    ph_list_remove(&srv->open, c);
    LeaveCriticalSection(&srv->lock);
    ph_listener_recycle(srv, c);
}

static void on_connect(ph_worker *w, ph_conn *c, DWORD error)
{
    ph_server *srv = c->srv;
    const ph_options *live = ph_server_live(srv);
    ULONG pid = 0;
    int accept, over;

    EnterCriticalSection(&srv->lock);
    ph_list_remove(&srv->listening, c);
    c->ops_pending = 0;
    accept = error == 0 && !srv->stopping;
    over = srv->open.count >= live->max_connections;
    if (accept) {
        /* Once c is on the open list, others (shutdown, the deadline check,
         * the hub) may close it; this count, dropped under c->lock below,
         * keeps any of them from finishing (and freeing) it before this
         * thread is done with it. */
        c->ops_pending = 1;
        c->state = PH_CONN_OPEN;
        c->peer.conn_id = ++srv->next_conn_id;
        c->peer.max_frame = live->max_frame_bytes;
        c->last_active = c->connected_at = GetTickCount64();
        c->connected_ms = io_wall(NULL);
        srv->connections_total++;
        ph_list_push(&srv->open, c);
    }
    LeaveCriticalSection(&srv->lock);

    if (!accept) {
        /* Cancelled at shutdown, or the instance broke: it is not reused. */
        if (error != ERROR_OPERATION_ABORTED && error != 0)
            ph_log(PH_LOG_WARN, "pipe instance failed to connect (error %lu)",
                   (unsigned long)error);
        c->state = PH_CONN_IDLE;
        ph_listener_recycle(srv, c);
        return;
    }
    if (GetNamedPipeClientProcessId(c->pipe, &pid))
        c->peer.pid = pid;
    ph_log(PH_LOG_INFO, "conn %llu pid %lu: connected",
           (unsigned long long)c->peer.conn_id, (unsigned long)pid);
    /* Keep the name served before serving this client. */
    ph_listener_refill(srv);

    EnterCriticalSection(&c->lock);
    c->ops_pending--;
    if (over) {
        /* Said with a frame rather than a refused connect, so the client
         * learns why instead of seeing a broken pipe. */
        count(&srv->limits.max_connections);
        if (ph_log_limit_allow())
            ph_log(PH_LOG_WARN, "conn %llu pid %lu: refused: max_connections "
                   "(%u) reached", (unsigned long long)c->peer.conn_id,
                   (unsigned long)pid, (unsigned)live->max_connections);
        fail_stream(&w->counters, c, PH_EBUSY,
                    "server busy: max_connections reached");
    }
    pump(&w->counters, c);
    /* Shutdown may have closed c between the two locks above. */
    accept = c->state == PH_CONN_CLOSING && c->ops_pending == 0;
    conn_unlock(c);
    if (accept)
        finish(c);
}

void ph_conn_complete(ph_worker *w, ph_op *op, DWORD bytes, DWORD error)
{
    ph_conn *c = op->conn;
    int done;

    if (op->type == PH_OP_CONNECT) {
        on_connect(w, c, error);
        return;
    }
    EnterCriticalSection(&c->lock);
    c->ops_pending--;
    switch (op->type) {
    case PH_OP_READ:
        c->reading = 0;
        if (c->state != PH_CONN_OPEN)
            break;
        if (error)
            close_for(c, error);
        else if (c->read_into_tail)
            on_tail(&w->counters, c, bytes);
        else
            on_data(&w->counters, c, bytes);
        break;
    case PH_OP_WRITE:
        c->writing = 0;
        if (c->state != PH_CONN_OPEN)
            break;
        if (error)
            close_for(c, error);
        else
            wrote(&w->counters, c, bytes);
        break;
    case PH_OP_KICK:
        c->kick_posted = 0;
        break;
    default:
        break;
    }
    pump(&w->counters, c);
    done = c->state == PH_CONN_CLOSING && c->ops_pending == 0;
    conn_unlock(c);
    if (done)
        finish(c);
}

void ph_list_push(ph_conn_list *l, ph_conn *c)
{
    c->prev = NULL;
    c->next = l->head;
    if (l->head)
        l->head->prev = c;
    l->head = c;
    l->count++;
}

void ph_list_remove(ph_conn_list *l, ph_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    l->count--;
}

/* ---- the transport the hub drives (ph_hub_io) ---------------------------
 * Called with srv->hub_lock held, often with another connection's lock
 * held too: nothing here waits for a connection lock. */

static ph_err io_send(void *ctx, void *conn, const uint8_t *data, size_t len)
{
    ph_conn *c = conn;
    ph_err err;

    EnterCriticalSection(&c->inbox_lock);
    err = ph_buf_append(&c->inbox, data, len);
    if (err == PH_OK)
        InterlockedExchange(&c->attention, 1);
    LeaveCriticalSection(&c->inbox_lock);
    return err;
}

/* A frame in two parts (ph_hub_io.send_parts): its payload straight into
 * c's lane when c's lock is free and nothing waits ahead of it
 * (ph_conn_lane_direct), else head and payload into the inbox as one
 * frame. Only tried: this thread holds hub_lock. Either way c has work
 * (attention), and the hub kicks it once this thread leaves hub_lock. */
static ph_err io_send_parts(void *ctx, void *conn, const uint8_t *head,
                            size_t head_len, const uint8_t *payload,
                            size_t plen)
{
    ph_conn *c = conn;
    ph_err err = PH_EAGAIN;

    if (c->lane.view != NULL && head_len + plen <= UINT32_MAX &&
        TryEnterCriticalSection(&c->lock)) {
        err = ph_conn_lane_direct(c, head, (uint32_t)head_len, payload,
                                  (uint32_t)plen);
        if (err == PH_OK)
            InterlockedExchange(&c->attention, 1);
        /* Not conn_unlock: its work would write to the pipe under
         * hub_lock. attention is set, so the kick or the next holder's
         * unlock writes it. */
        LeaveCriticalSection(&c->lock);
    }
    if (err == PH_OK)
        return PH_OK;
    EnterCriticalSection(&c->inbox_lock);
    err = ph_buf_reserve(&c->inbox, head_len + plen);
    if (err == PH_OK) {
        (void)ph_buf_append(&c->inbox, head, head_len);
        (void)ph_buf_append(&c->inbox, payload, plen);
        InterlockedExchange(&c->attention, 1);
    }
    LeaveCriticalSection(&c->inbox_lock);
    return err;
}

static size_t io_queued(void *ctx, void *conn)
{
    ph_conn *c = conn;
    size_t n;

    EnterCriticalSection(&c->inbox_lock);
    n = c->inbox.len;
    LeaveCriticalSection(&c->inbox_lock);
    return n + (size_t)c->owner_queued;
}

/* Start writing what was routed to c, if nobody holds it; a holder sees the
 * attention flag when it unlocks. */
static void kick_now(ph_conn *c)
{
    if (!TryEnterCriticalSection(&c->lock))
        return;
    service_locked(counters(c), c);
    conn_unlock(c);
}

/* The hub's kicks, deferred until this thread leaves hub_lock: writing
 * while holding it made every other routed call wait for a fan-out's
 * WriteFiles. */
static __thread ph_conn **t_kicks;
static __thread size_t t_nkicks, t_kicks_cap;

static void io_kick(void *ctx, void *conn)
{
    ph_conn **v;
    size_t cap;

    if (t_nkicks == t_kicks_cap) {
        cap = t_kicks_cap ? t_kicks_cap * 2 : 64;
        v = ph_realloc(t_kicks, cap * sizeof *v);
        if (v == NULL) {
            kick_now(conn); /* out of memory: write under the lock, as before */
            return;
        }
        t_kicks = v;
        t_kicks_cap = cap;
    }
    t_kicks[t_nkicks++] = conn;
}

void ph_server_hub_unlock(ph_server *srv)
{
    size_t i;

    if (t_nkicks == 0) {
        LeaveCriticalSection(&srv->hub_lock);
        return;
    }
    /* Shared before hub_lock goes: finish() takes hub_lock, then this
     * exclusive, so the connections named here outlive the kicks. */
    AcquireSRWLockShared(&srv->kick_lock);
    LeaveCriticalSection(&srv->hub_lock);
    for (i = 0; i < t_nkicks; i++)
        kick_now(t_kicks[i]);
    t_nkicks = 0;
    ReleaseSRWLockShared(&srv->kick_lock);
}

static void io_close(void *ctx, void *conn, const char *why)
{
    ph_conn *c = conn;

    EnterCriticalSection(&c->inbox_lock);
    c->hub_close = why;
    InterlockedExchange(&c->attention, 1);
    LeaveCriticalSection(&c->inbox_lock);
    io_kick(ctx, conn);
}

static uint64_t io_now(void *ctx)
{
    return GetTickCount64();
}

static uint64_t io_wall(void *ctx)
{
    return ph_win_unix_ms();
}

static void io_log(void *ctx, int level, const char *msg)
{
    if ((level & PH_HUB_LOG_LIMITED) && !ph_log_limit_allow())
        return;
    ph_log((ph_log_level)(level & ~PH_HUB_LOG_LIMITED), "%s", msg);
}

static void io_conn_stats(void *ctx, void *conn, ph_conn_stats *out)
{
    ph_conn *c = conn;

    /* Read without c's lock (the caller may hold another connection's):
     * each is one aligned word, so a value is at worst a little old. */
    out->connected_ms = c->connected_ms;
    out->frames_in = (uint64_t)c->frames_in;
    out->frames_out = (uint64_t)c->frames_out;
    out->bytes_in = (uint64_t)c->bytes_in;
    out->bytes_out = (uint64_t)c->bytes_out;
    out->queued = (uint64_t)c->owner_queued;
}

const ph_hub_io ph_conn_hub_io = {NULL,     io_send, io_queued, io_kick,
                                  io_close, io_now,  io_wall,   io_log,
                                  io_conn_stats, NULL, io_send_parts};
