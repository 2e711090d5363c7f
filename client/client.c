/* pipehub client library (client/pipehub.h): one connection, any number of
 * calls in flight, every wait bounded by a caller's timeout.
 *
 * The library keeps no global state. Each ph_client has one read and one
 * write OVERLAPPED (each with its own event), and at most one of each is in
 * flight. Their buffers belong to the client, so an operation may stay in
 * flight between calls into the library (a call that timed out does not
 * cancel the write that carries later requests); ph_client_close cancels
 * and waits for both before it frees anything, so the kernel never writes
 * into freed memory.
 *
 * The data path, per poll: every request queued since the last write leaves
 * in one WriteFile; a read is posted only while calls are outstanding, and
 * is retried at once after it finds data (a read that finds data waiting
 * costs one call; one that pends costs several under Wine); every frame of a
 * read is handed to its callback before the next read. */
#include <windows.h>

#include <string.h>

#include "frame.h"
#include "options.h"
#include "pipehub.h"
#include "win_error.h"
#include "platform.h"

/* Reads start small: replies are usually short, and under Wine every page
 * of a pending read buffer is touched. A read that fills the buffer shows
 * data is flowing, and the buffer grows to the large size. While a frame
 * bigger than that is arriving, the buffer is sized to the rest of it (up
 * to READ_HUGE): a server writes a reply in one WriteFile, and Wine then
 * hands all of it to one read, where 64 KiB reads would cost a pending read
 * (several wineserver requests) per 64 KiB. Measured: 1 MiB echoes through
 * pipehubd went from 96 to 124-143 round trips/s. It shrinks back once the
 * big frame is in. */
#define READ_SMALL 4096u
#define READ_LARGE (64u * 1024u)
#define READ_HUGE  (4u * 1024u * 1024u)
/* A write buffer that held a big request is released once written rather
 * than kept for the life of the connection. */
#define KEEP_WRITE_BUFFER (256u * 1024u)
/* The largest frame the client accepts from the server: the top of the
 * server's --max-frame range. The decoder allocates only for a frame that
 * arrives split, and only as much as that frame needs. */
#define CLIENT_MAX_FRAME (64u * 1024u * 1024u)
/* Largest single WriteFile: its length is a DWORD. */
#define WRITE_CHUNK_MAX 0x40000000u
#define CALLS_MIN       16u

/* When WaitNamedPipe fails at once (the last instance went away between our
 * CreateFile and its check) we sleep this long before retrying, so a server
 * restart does not make us spin. */
#define BUSY_RETRY_MS 10u

#define NO_DEADLINE UINT64_MAX

/* One accepted call whose callback has not run. */
typedef struct call {
    uint32_t id;        /* the REQUEST's id */
    ULONGLONG deadline; /* GetTickCount64 value after which it expires */
    ph_call_cb *cb;     /* NULL once completed; the slot then waits to
                           be dropped from the head of the ring */
    void *ctx;
} call;

struct ph_client {
    HANDLE pipe;              /* owned; overlapped, byte read mode */
    HANDLE read_event;        /* owned; manual reset, signals read_ov */
    HANDLE write_event;       /* owned; manual reset, signals write_ov */
    OVERLAPPED read_ov;
    OVERLAPPED write_ov;
    int reading;        /* read_ov is in flight (into in) */
    int writing;        /* write_ov is in flight (from out) */
    ph_decoder decoder; /* frames arriving from the server */
    uint8_t *in;        /* read buffer, in_cap bytes; owned */
    uint32_t in_cap;
    ph_buf queue;    /* encoded requests not yet handed to WriteFile */
    ph_buf out;      /* bytes of the write in flight (or the rest
                        of a write that completed short) */
    size_t out_done; /* of out, bytes already written */
    /* Outstanding calls in issue order: a ring of calls_cap slots (a power
     * of two) from calls_head, calls_count of them in use; completed slots
     * in the middle stay until they reach the head. */
    call *calls;
    size_t calls_cap, calls_head, calls_count;
    size_t npending;          /* slots whose callback has not run */
    ULONGLONG earliest;       /* no live call expires before this (it may be
                                 early: it is recomputed when reached) */
    size_t completed;         /* callbacks run, ever */
    uint32_t next_id;         /* never 0: 0 marks id-less server errors */
    int in_callback;          /* depth of callbacks running now */
    ph_err write_err;         /* sticky: the write side failed; no new calls */
    ph_err broken;            /* sticky: the stream is unusable; every
                                 pending call has been failed with this */
};

/* Milliseconds left before deadline (a GetTickCount64 value); 0 once past. */
static DWORD remaining(ULONGLONG deadline)
{
    ULONGLONG now = GetTickCount64();

    if (now >= deadline)
        return 0;
    /* INFINITE (0xFFFFFFFF) is avoided so no wait ever becomes unbounded. */
    return deadline - now >= INFINITE ? INFINITE - 1 : (DWORD)(deadline - now);
}

static call *slot(ph_client *c, size_t i)
{
    return &c->calls[(c->calls_head + i) & (c->calls_cap - 1)];
}

/* Room for one more call. On failure nothing changes. */
static ph_err calls_reserve(ph_client *c)
{
    size_t cap, i;
    call *n;

    if (c->calls_count < c->calls_cap)
        return PH_OK;
    cap = c->calls_cap ? c->calls_cap * 2 : CALLS_MIN;
    if (cap > SIZE_MAX / sizeof *n)
        return PH_ENOMEM;
    n = ph_alloc(cap * sizeof *n);
    if (n == NULL)
        return PH_ENOMEM;
    for (i = 0; i < c->calls_count; i++)
        n[i] = *slot(c, i);
    ph_free(c->calls);
    c->calls = n;
    c->calls_cap = cap;
    c->calls_head = 0;
    return PH_OK;
}

/* Run the callback of the live call at ring index i. The slot is released
 * before the callback runs, so the callback may queue new calls. Returns how
 * many slots left the head of the ring, so a caller walking the ring can
 * keep its place. */
static size_t complete(ph_client *c, size_t i, ph_err err, const ph_frame *f)
{
    call *k = slot(c, i);
    ph_call_cb *cb = k->cb;
    void *ctx = k->ctx;
    size_t popped = 0;

    k->cb = NULL;
    c->npending--;
    c->completed++;
    while (c->calls_count > 0 && slot(c, 0)->cb == NULL) {
        c->calls_head = (c->calls_head + 1) & (c->calls_cap - 1);
        c->calls_count--;
        popped++;
    }
    c->in_callback++;
    cb(ctx, err, f);
    c->in_callback--;
    return popped;
}

/* Ring index of the oldest live call, or calls_count when there is none. */
static size_t oldest(ph_client *c)
{
    size_t i;

    for (i = 0; i < c->calls_count && slot(c, i)->cb == NULL; i++)
        ;
    return i;
}

static size_t find(ph_client *c, uint32_t id)
{
    size_t i;

    /* Built-in routes answer in order, so this stops at the first slot. */
    for (i = 0; i < c->calls_count; i++) {
        call *k = slot(c, i);
        if (k->cb != NULL && k->id == id)
            return i;
    }
    return c->calls_count;
}

/* The connection cannot go on: every outstanding call gets err, and no new
 * call is accepted. Queued bytes are dropped. */
static void fail_all(ph_client *c, ph_err err)
{
    size_t i;

    if (c->broken == PH_OK)
        c->broken = err;
    c->queue.len = 0;
    while ((i = oldest(c)) < c->calls_count)
        complete(c, i, c->broken, NULL);
}

/* Give every call whose deadline has passed its PH_ETIMEDOUT, and work out
 * the next deadline. */
static void expire(ph_client *c)
{
    ULONGLONG now;
    size_t i, popped;

    if (c->npending == 0 || (now = GetTickCount64()) < c->earliest)
        return;
    c->earliest = NO_DEADLINE;
    for (i = 0; i < c->calls_count;) {
        call *k = slot(c, i);
        if (k->cb != NULL && k->deadline <= now) {
            popped = complete(c, i, PH_ETIMEDOUT, NULL);
            i = i + 1 > popped ? i + 1 - popped : 0;
            continue;
        }
        if (k->cb != NULL && k->deadline < c->earliest)
            c->earliest = k->deadline;
        i++;
    }
}

/* One frame from the server. */
static void dispatch(ph_client *c, const ph_frame *f)
{
    size_t i;

    if (f->kind != PH_REPLY && f->kind != PH_ERROR)
        return; /* EVENTs and REQUESTs to clients are not handled yet */
    /* An ERROR with id 0 is the server refusing the stream (BAD_FRAME,
     * TOO_LARGE: it could not read an id) and closing. The server answers in
     * order, so every call before the refused frame has had its answer and
     * the oldest one left is the one refused. */
    if (f->kind == PH_ERROR && f->id == 0)
        i = oldest(c);
    else
        i = find(c, f->id);
    /* Not found: a late answer to a call that timed out. */
    if (i < c->calls_count)
        complete(c, i, PH_OK, f);
}

/* After a read of n bytes, whose frames have all been handled (they may
 * point into in until then): size the read buffer for what comes next. */
static void resize_in(ph_client *c, uint32_t n)
{
    const ph_decoder *d = &c->decoder;
    uint32_t want = c->in_cap, rest;
    uint8_t *p;

    if (n == c->in_cap && want < READ_LARGE)
        want = READ_LARGE;
    /* The decoder knows a frame's length once it has its first 4 bytes. */
    if (d->have >= 4 && (rest = d->frame_len - d->have) > want)
        want = rest < READ_HUGE ? rest : READ_HUGE;
    else if (ph_decoder_idle(d) && want > READ_LARGE)
        want = READ_LARGE;
    if (want == c->in_cap || (p = ph_realloc(c->in, want)) == NULL)
        return;
    c->in = p;
    c->in_cap = want;
}

/* n bytes arrived in c->in: hand every whole frame to its call. */
static void on_read(ph_client *c, uint32_t n)
{
    size_t off = 0, used;
    ph_frame f;
    ph_err err;

    while (off < n) {
        err = ph_decoder_next(&c->decoder, c->in + off, n - off, &used, &f);
        if (err == PH_EAGAIN)
            break;
        if (err != PH_OK) {
            /* BAD_FRAME, TOO_LARGE: the server's stream cannot be parsed and
             * nothing after this point can be trusted. ENOMEM: the bytes are
             * gone from the pipe, so the stream is lost too. */
            fail_all(c, err);
            return;
        }
        off += used;
        dispatch(c, &f);
    }
    resize_in(c, n);
}

static void read_failed(ph_client *c, DWORD e)
{
    /* Only close cancels a read, and close fails the calls itself. */
    fail_all(c, e == ERROR_OPERATION_ABORTED ? PH_ECLOSED : ph_win_err(e));
}

/* While calls are outstanding keep a read posted; read (and handle) what is
 * waiting until a read pends. */
static void start_read(ph_client *c)
{
    DWORD e;

    while (!c->reading && c->broken == PH_OK && c->npending > 0) {
        memset(&c->read_ov, 0, sizeof c->read_ov);
        c->read_ov.hEvent = c->read_event;
        if (ReadFile(c->pipe, c->in, c->in_cap, NULL, &c->read_ov)) {
            on_read(c, (uint32_t)c->read_ov.InternalHigh);
            continue;
        }
        e = GetLastError();
        if (e == ERROR_IO_PENDING) {
            c->reading = 1;
        } else if (e == ERROR_MORE_DATA) {
            /* Message read mode (a server may force it): a message longer
             * than the buffer fills it; the rest comes on the next read. */
            on_read(c, (uint32_t)c->read_ov.InternalHigh);
        } else {
            read_failed(c, e);
        }
    }
}

static void wrote(ph_client *c, DWORD n)
{
    c->out_done += n;
    if (c->out_done < c->out.len)
        return;
    c->out.len = c->out_done = 0;
    if (c->out.cap > KEEP_WRITE_BUFFER)
        ph_buf_free(&c->out);
}

static void write_failed(ph_client *c, DWORD e)
{
    ph_err err = ph_win_err(e);

    c->write_err = err;
    c->queue.len = 0;
    c->out.len = c->out_done = 0;
    /* A server that refuses a request (TOO_LARGE) sends an ERROR and closes
     * without reading the rest, so our write fails while its answer may
     * still be waiting in the pipe: reads go on, and the calls fail only
     * once the pipe is empty. Any other failure ends the connection. */
    if (err != PH_ECLOSED)
        fail_all(c, err);
}

/* Write everything queued, in one WriteFile, unless a write is in flight. */
static void start_write(ph_client *c)
{
    DWORD len, e;

    while (!c->writing && c->write_err == PH_OK && c->broken == PH_OK) {
        if (c->out_done == c->out.len) {
            ph_buf t = c->out;
            if (c->queue.len == 0)
                return;
            c->out = c->queue;
            c->queue = t;
            c->queue.len = 0;
            c->out_done = 0;
        }
        len = c->out.len - c->out_done > WRITE_CHUNK_MAX
                  ? WRITE_CHUNK_MAX
                  : (DWORD)(c->out.len - c->out_done);
        memset(&c->write_ov, 0, sizeof c->write_ov);
        c->write_ov.hEvent = c->write_event;
        if (WriteFile(c->pipe, c->out.data + c->out_done, len, NULL,
                      &c->write_ov)) {
            wrote(c, (DWORD)c->write_ov.InternalHigh);
            continue;
        }
        e = GetLastError();
        if (e == ERROR_IO_PENDING)
            c->writing = 1;
        else
            write_failed(c, e);
    }
}

/* After a wait: finish whichever operations completed. */
static void finish_io(ph_client *c)
{
    DWORD n = 0;

    if (c->writing && HasOverlappedIoCompleted(&c->write_ov)) {
        c->writing = 0;
        if (GetOverlappedResult(c->pipe, &c->write_ov, &n, FALSE))
            wrote(c, n);
        else
            write_failed(c, GetLastError());
    }
    if (c->reading && HasOverlappedIoCompleted(&c->read_ov)) {
        c->reading = 0;
        if (GetOverlappedResult(c->pipe, &c->read_ov, &n, FALSE) ||
            GetLastError() == ERROR_MORE_DATA)
            on_read(c, n);
        else
            read_failed(c, GetLastError());
    }
}

/* Copy a frame into a reply the caller owns. */
static ph_err make_reply(const ph_frame *f, ph_reply *reply)
{
    uint8_t *copy = ph_alloc((size_t)f->payload_len + 1);

    if (copy == NULL)
        return PH_ENOMEM;
    if (f->payload_len)
        memcpy(copy, f->payload, f->payload_len);
    copy[f->payload_len] = '\0';
    reply->kind = f->kind;
    reply->status = f->kind == PH_ERROR ? f->status : 0;
    reply->payload = copy;
    reply->payload_len = f->payload_len;
    return PH_OK;
}

ph_err ph_client_connect(const char *pipe, uint32_t timeout_ms,
                         ph_client **out)
{
    char path[PH_PIPE_PATH_MAX + 1];
    ULONGLONG deadline = GetTickCount64() + timeout_ms;
    ph_client *c;
    HANDLE h;
    ph_err err;

    if (pipe == NULL || out == NULL)
        return PH_EINVAL;
    if ((err = ph_pipe_path(pipe, path, sizeof path)) != PH_OK)
        return err;

    for (;;) {
        DWORD code, left;

        /* SECURITY_IDENTIFICATION: the server may learn who we are, but
         * must not act as us. */
        h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                        OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
                            SECURITY_IDENTIFICATION,
                        NULL);
        if (h != INVALID_HANDLE_VALUE)
            break;
        code = GetLastError();
        /* No instance at all: nobody serves the name. Answer at once rather
         * than wait, so a missing server is a clear error, not a hang. */
        if (code == ERROR_FILE_NOT_FOUND)
            return PH_ENOTFOUND;
        if (code != ERROR_PIPE_BUSY)
            return ph_win_err(code);
        /* Every instance is taken. WaitNamedPipe treats 0 as "the default
         * wait" (NMPWAIT_USE_DEFAULT_WAIT), so never pass it 0. */
        if ((left = remaining(deadline)) == 0)
            return PH_ETIMEDOUT;
        if (!WaitNamedPipeA(path, left)) {
            code = GetLastError();
            if (code == ERROR_SEM_TIMEOUT)
                return PH_ETIMEDOUT;
            /* FILE_NOT_FOUND here means all instances closed for a moment;
             * the next CreateFile tells whether the server is still there. */
            Sleep(BUSY_RETRY_MS < left ? BUSY_RETRY_MS : left);
        }
    }

    c = ph_alloc(sizeof *c);
    if (c == NULL) {
        err = PH_ENOMEM;
        goto fail;
    }
    memset(c, 0, sizeof *c);
    c->pipe = h;
    c->next_id = 1;
    c->earliest = NO_DEADLINE;
    ph_decoder_init(&c->decoder, CLIENT_MAX_FRAME);
    c->in = ph_alloc(READ_SMALL);
    if (c->in == NULL) {
        err = PH_ENOMEM;
        goto fail;
    }
    c->in_cap = READ_SMALL;
    c->read_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    c->write_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (c->read_event == NULL || c->write_event == NULL) {
        err = ph_win_err(GetLastError());
        goto fail;
    }
    *out = c;
    return PH_OK;

fail:
    CloseHandle(h);
    if (c != NULL) {
        if (c->read_event != NULL)
            CloseHandle(c->read_event);
        if (c->write_event != NULL)
            CloseHandle(c->write_event);
        ph_free(c->in);
        ph_free(c);
    }
    return err;
}

ph_err ph_client_call_async(ph_client *c, const char *route,
                            const void *payload, size_t payload_len,
                            uint32_t timeout_ms, ph_call_cb *cb, void *ctx)
{
    size_t route_len;
    ph_frame f;
    call *k;
    ph_err err;

    if (c == NULL || route == NULL || cb == NULL ||
        (payload == NULL && payload_len > 0))
        return PH_EINVAL;
    if (c->broken != PH_OK)
        return c->broken;
    if (c->write_err != PH_OK)
        return c->write_err;
    route_len = strlen(route);
    if (route_len == 0 || route_len > PH_ROUTE_MAX ||
        payload_len > UINT32_MAX - PH_FRAME_HEADER_LEN - route_len)
        return PH_EINVAL;
    if ((err = calls_reserve(c)) != PH_OK)
        return err;

    memset(&f, 0, sizeof f);
    f.kind = PH_REQUEST;
    f.id = c->next_id;
    f.route = route;
    f.route_len = (uint8_t)route_len;
    f.payload = payload;
    f.payload_len = (uint32_t)payload_len;
    /* Checks the route's characters too; on failure the queue is as it
     * was. */
    if ((err = ph_frame_append(&c->queue, &f)) != PH_OK)
        return err;
    c->next_id = f.id == UINT32_MAX ? 1 : f.id + 1;

    k = slot(c, c->calls_count++);
    k->id = f.id;
    k->deadline = GetTickCount64() + timeout_ms;
    k->cb = cb;
    k->ctx = ctx;
    c->npending++;
    if (k->deadline < c->earliest)
        c->earliest = k->deadline;
    return PH_OK;
}

ph_err ph_client_poll(ph_client *c, uint32_t timeout_ms, size_t *ncompleted)
{
    ULONGLONG deadline;
    size_t before;
    HANDLE wait[2];
    DWORD nwait, ms, r;

    if (c == NULL || c->in_callback)
        return PH_EINVAL;
    deadline = GetTickCount64() + timeout_ms;
    before = c->completed;
    for (;;) {
        /* Write first: the replies to what is written now may already be
         * waiting when the read below is tried. */
        start_write(c);
        start_read(c);
        expire(c);
        if (c->completed != before || c->npending == 0 || c->broken != PH_OK)
            break;
        if ((ms = remaining(deadline)) == 0)
            break;
        if (c->earliest < deadline && remaining(c->earliest) < ms)
            ms = remaining(c->earliest);
        nwait = 0;
        if (c->reading)
            wait[nwait++] = c->read_event;
        if (c->writing)
            wait[nwait++] = c->write_event;
        if (nwait == 0) {
            /* Not reached: with calls outstanding and the stream whole,
             * start_read leaves a read posted. Should that ever change,
             * waiting out the deadlines is still correct. */
            Sleep(ms);
            continue;
        }
        r = WaitForMultipleObjects(nwait, wait, FALSE, ms);
        if (r == WAIT_FAILED) {
            fail_all(c, ph_win_err(GetLastError()));
            break;
        }
        finish_io(c);
    }
    if (ncompleted != NULL)
        *ncompleted = c->completed - before;
    return c->broken;
}

ph_err ph_client_flush(ph_client *c, uint32_t timeout_ms)
{
    ULONGLONG deadline;
    ph_err err;

    if (c == NULL || c->in_callback)
        return PH_EINVAL;
    deadline = GetTickCount64() + timeout_ms;
    for (;;) {
        err = ph_client_poll(c, remaining(deadline), NULL);
        if (err != PH_OK)
            return err;
        if (c->npending == 0) {
            /* Requests queued by the last callbacks (or written short) are
             * sent even when nothing waits for them. */
            start_write(c);
            return PH_OK;
        }
        if (remaining(deadline) == 0)
            return PH_ETIMEDOUT;
    }
}

size_t ph_client_pending(const ph_client *c)
{
    return c == NULL ? 0 : c->npending;
}

/* The blocking call is an asynchronous one whose callback fills this. */
typedef struct sync_call {
    int done;
    ph_err err;
    ph_reply *reply;
} sync_call;

static void sync_done(void *ctx, ph_err err, const ph_frame *f)
{
    sync_call *s = ctx;

    s->done = 1;
    s->err = err == PH_OK ? make_reply(f, s->reply) : err;
}

ph_err ph_client_call(ph_client *c, const char *route, const void *payload,
                      size_t payload_len, uint32_t timeout_ms, ph_reply *reply)
{
    sync_call s;
    ph_err err;

    if (c == NULL || reply == NULL || c->in_callback)
        return PH_EINVAL;
    memset(&s, 0, sizeof s);
    s.reply = reply;
    err = ph_client_call_async(c, route, payload, payload_len, timeout_ms,
                               sync_done, &s);
    if (err != PH_OK)
        return err;
    /* The call's own deadline ends this loop: at the latest, expire() runs
     * its callback with PH_ETIMEDOUT; a broken connection runs it with the
     * error. */
    while (!s.done)
        ph_client_poll(c, timeout_ms, NULL);
    return s.err;
}

void ph_reply_free(ph_reply *reply)
{
    if (reply == NULL)
        return;
    ph_free(reply->payload);
    reply->payload = NULL;
    reply->payload_len = 0;
}

void ph_client_close(ph_client *c)
{
    DWORD n;

    if (c == NULL)
        return;
    /* The buffers of operations in flight are ours: the operations must be
     * over before anything is freed. */
    if (c->reading || c->writing) {
        CancelIoEx(c->pipe, NULL);
        if (c->reading)
            GetOverlappedResult(c->pipe, &c->read_ov, &n, TRUE);
        if (c->writing)
            GetOverlappedResult(c->pipe, &c->write_ov, &n, TRUE);
        c->reading = c->writing = 0;
    }
    fail_all(c, PH_ECLOSED);
    CloseHandle(c->pipe);
    CloseHandle(c->read_event);
    CloseHandle(c->write_event);
    ph_decoder_free(&c->decoder);
    ph_buf_free(&c->queue);
    ph_buf_free(&c->out);
    ph_free(c->in);
    ph_free(c->calls);
    ph_free(c);
}
