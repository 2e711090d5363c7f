/* pipehub client library (client/pipehub.h): one connection, any number of
 * calls in flight, subscriptions and served routes, every wait bounded by a
 * caller's timeout.
 *
 * The library keeps no global state. Each ph_client has one read and one
 * write OVERLAPPED, and at most one of each is in flight. Both signal the
 * same manual-reset event, which is also the handle ph_client_waitable
 * gives out and the one other threads set when they queue a reply: one
 * handle says "something to do", so an application can wait on many
 * clients at once. Their buffers belong to the client, so an operation may
 * stay in flight between calls into the library (a call that timed out does
 * not cancel the write that carries later requests); ph_client_close
 * cancels and waits for both before it frees anything, so the kernel never
 * writes into freed memory.
 *
 * The data path, per poll: everything queued since the last write leaves in
 * one WriteFile; a read is posted only while there is something to read for
 * (calls outstanding, subscriptions, routes served), and is retried at once
 * after it finds data (a read that finds data waiting costs one call; one
 * that pends costs several under Wine); every frame of a read is handed to
 * its callback before the next read; what the callbacks queued leaves
 * before the poll returns.
 *
 * Locking: one CRITICAL_SECTION guards what other threads touch: the list of
 * requests handed to handlers and not answered yet, and the queue of
 * replies made on other threads (xqueue). Everything else belongs to the
 * driving thread. A reply made on the thread that is polling goes straight
 * into the write queue, without waking anyone. */
#include <windows.h>

#include <stdio.h>
#include <string.h>

#include "frame.h"
#include "lane.h"
#include "names.h"
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
#define LIST_MIN        4u
/* The protocol's limit for an ERROR frame's message. */
#define ERROR_MSG_MAX 200u
/* A monitor copy: time (8), from (4), to (4), then the frame. */
#define MONITOR_HEAD 16u

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

/* One local subscription. Several may share a pattern; the hub holds one
 * subscription per pattern for all of them. */
typedef struct sub {
    char *pattern;   /* owned, NUL-terminated */
    size_t len;
    int local_only;  /* a topic the hub sends unasked: never told the hub */
    ph_event_cb *cb;
    void *ctx;
} sub;

/* One registered route (or prefix pattern) and its handler. */
typedef struct reg {
    char *route;     /* owned, NUL-terminated */
    size_t len;
    unsigned flags;  /* PH_REGISTER_* */
    ph_request_cb *cb;
    void *ctx;
} reg;

struct ph_request {
    ph_client *c;     /* not owned */
    uint32_t id;      /* the hub's id for the forwarded request */
    uint32_t caller;  /* the caller's conn id */
    ph_request *prev; /* in c->open; guarded by c->lock */
    ph_request *next;
};

struct ph_client {
    HANDLE pipe;              /* owned; overlapped, byte read mode */
    HANDLE event;             /* owned; manual reset: read_ov and write_ov
                                 complete into it, other threads set it */
    OVERLAPPED read_ov;
    OVERLAPPED write_ov;
    int reading;        /* read_ov is in flight (into in) */
    int writing;        /* write_ov is in flight (from out) */
    ph_decoder decoder; /* frames arriving from the server */
    uint8_t *in;        /* read buffer, in_cap bytes; owned */
    uint32_t in_cap;
    ph_buf queue;    /* encoded frames not yet handed to WriteFile */
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
    int stale;                /* event may be set with nothing to do: work
                                 was done since the last operation start
                                 that reset it (drive's comment) */
    ph_err write_err;         /* sticky: the write side failed; no new calls */
    ph_err broken;            /* sticky: the stream is unusable; every
                                 pending call has been failed with this */
    sub *subs;                /* nsubs of them, in subscription order */
    size_t nsubs, subs_cap;
    reg *regs;                /* nregs of them */
    size_t nregs, regs_cap;
    /* The thread inside ph_client_poll/flush now, else 0. Written by that
     * thread only; other threads compare it with their own id, which can
     * only match when they are that thread. */
    volatile DWORD driver;
    CRITICAL_SECTION lock;    /* guards the fields below */
    ph_request *open;         /* requests handed out, not answered yet */
    ph_buf xqueue;            /* replies queued by other threads */
    volatile LONG xpending;   /* xqueue has bytes (a hint when read
                                 without the lock) */
    ph_err xbroken;           /* copy of broken/write_err for replies */
    /* The lane (docs/PROTOCOL.md, "The lane"), driving thread only. */
    int lane_state;           /* LANE_* */
    uint8_t *lane_view;       /* the section, mapped */
    size_t lane_bytes;
    ph_lane lane;             /* the client's side of both rings */
    uint32_t lane_threshold;  /* payloads from this size use the ring */
    uint32_t max_frame;       /* the server's, from sys.lane's answer */
    int lane_blocked;         /* a payload waits for room in our ring */
    int lane_held;            /* the queue may hold a big payload inline,
                                 to be moved at the next write: later ones
                                 must wait their turn behind it */
    uint8_t *lane_in;         /* a payload read from the hub's ring */
    uint32_t lane_in_cap;
};

enum {
    LANE_UNASKED, /* asked for the first time a big payload leaves */
    LANE_ASKING,  /* sys.lane is out: big payloads wait for its answer */
    LANE_READY,
    LANE_OFF      /* refused, or turned off: everything goes inline */
};

/* Payloads from this size make the library ask for a lane; the hub's
 * threshold applies once it has one. */
#define LANE_ASK_BYTES (64u * 1024u)
/* The ring asked for: this (the [lane] max_bytes default), or the first
 * big payload's size rounded up to a power of two when that is more; the
 * hub gives at most its max_bytes, and says how much. Pages of the section
 * that are never used cost no memory. */
#define LANE_RING_MIN (16u * 1024u * 1024u)

static int lane_incoming(ph_client *c, ph_frame *f);

/* Milliseconds left before deadline (a GetTickCount64 value); 0 once past. */
static DWORD remaining(ULONGLONG deadline)
{
    ULONGLONG now = GetTickCount64();

    if (now >= deadline)
        return 0;
    /* INFINITE (0xFFFFFFFF) is avoided so no wait ever becomes unbounded. */
    return deadline - now >= INFINITE ? INFINITE - 1 : (DWORD)(deadline - now);
}

static ULONGLONG deadline_after(uint32_t ms)
{
    return GetTickCount64() + ms;
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

/* Grow an array of elements of size esz so it has room for one more.
 * On failure nothing changes. */
static ph_err array_reserve(void **items, size_t count, size_t *cap,
                            size_t esz)
{
    size_t ncap;
    void *n;

    if (count < *cap)
        return PH_OK;
    ncap = *cap ? *cap * 2 : LIST_MIN;
    if (ncap > SIZE_MAX / esz)
        return PH_ENOMEM;
    n = ph_realloc(*items, ncap * esz);
    if (n == NULL)
        return PH_ENOMEM;
    *items = n;
    *cap = ncap;
    return PH_OK;
}

static char *copy_name(const char *s, size_t len)
{
    char *p = ph_alloc(len + 1);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* ---- names and patterns (docs/PROTOCOL.md, "Names and patterns") ------- */

/* How well pattern matches name: 0 not at all; otherwise larger is more
 * specific (an exact name beats any prefix, a longer prefix a shorter one,
 * and "*" comes last). Matching itself is the hub's own function, so the
 * library fans events out exactly as the hub chose to send them. */
static size_t pattern_score(const char *p, size_t plen, const char *name,
                            size_t nlen)
{
    if (!ph_pattern_match(p, plen, name, nlen))
        return 0;
    if (plen == 1 && p[0] == '*')
        return 1;
    if (p[plen - 1] == '*')
        return plen; /* "billing.*": 3 .. 255 */
    return SIZE_MAX;
}

/* Topics the hub sends without being asked (docs/PROTOCOL.md): a
 * subscription to one of these only listens. */
static int unasked_topic(const char *p)
{
    return strcmp(p, "sys.shutdown") == 0 ||
           strcmp(p, "sys.route.acquired") == 0 ||
           strcmp(p, "sys.monitor") == 0;
}

/* ---- calls --------------------------------------------------------------- */

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

    /* Built-in routes answer in order, so this usually stops at the first
     * slot. */
    for (i = 0; i < c->calls_count; i++) {
        call *k = slot(c, i);
        if (k->cb != NULL && k->id == id)
            return i;
    }
    return c->calls_count;
}

/* Replies from other threads are refused from now on, with err. */
static void refuse_replies(ph_client *c, ph_err err)
{
    EnterCriticalSection(&c->lock);
    if (c->xbroken == PH_OK)
        c->xbroken = err;
    c->xqueue.len = 0;
    c->xpending = 0;
    LeaveCriticalSection(&c->lock);
}

/* The connection cannot go on: every outstanding call gets err, and no new
 * call is accepted. Queued bytes are dropped. */
static void fail_all(ph_client *c, ph_err err)
{
    size_t i;

    if (c->broken == PH_OK) {
        c->broken = err;
        refuse_replies(c, err);
    }
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

/* ---- frames from the hub ------------------------------------------------- */

/* An ERROR with id 0 either refuses an EVENT (FORBIDDEN: a sys. topic or
 * an access rule; NO_ROUTE from servers before publish/subscribe), which
 * answers no call, or is the server refusing the stream before it closes
 * (BAD_FRAME, TOO_LARGE, BUSY, TIMEOUT, INTERNAL: docs/PROTOCOL.md). */
static int refuses_stream(uint32_t status)
{
    return status != PH_EFORBIDDEN && status != PH_ENOROUTE;
}

static void on_answer(ph_client *c, const ph_frame *f)
{
    size_t i;

    /* The server answers in order, so every call before the refused frame
     * has had its answer and the oldest one left is the one refused. */
    if (f->kind == PH_ERROR && f->id == 0) {
        if (!refuses_stream(f->status))
            return;
        i = oldest(c);
    } else {
        i = find(c, f->id);
    }
    /* Not found: a late answer to a call that timed out. */
    if (i < c->calls_count)
        complete(c, i, PH_OK, f);
}

/* An EVENT goes to every local subscription that matches, once each. The
 * callbacks cannot change the list: (un)subscribing is refused inside
 * them. */
static void on_event(ph_client *c, const ph_frame *f)
{
    char topic[PH_ROUTE_MAX + 1];
    size_t i;

    memcpy(topic, f->route, f->route_len);
    topic[f->route_len] = '\0';
    for (i = 0; i < c->nsubs; i++) {
        sub *s = &c->subs[i];
        if (pattern_score(s->pattern, s->len, topic, f->route_len) == 0)
            continue;
        c->completed++;
        c->in_callback++;
        s->cb(s->ctx, topic, f->payload, f->payload_len);
        c->in_callback--;
    }
}

/* Queue an ERROR answering a forwarded request the client cannot hand to
 * anyone. If even that fails the hub times the request out. */
static void refuse_request(ph_client *c, uint32_t id, ph_err code,
                           const char *msg)
{
    ph_frame_append_error(&c->queue, id, code, msg);
}

/* A REQUEST forwarded by the hub: id is the hub's, status the caller's
 * conn id. It goes to the most specific registration that matches. */
static void on_request(ph_client *c, const ph_frame *f)
{
    char route[PH_ROUTE_MAX + 1];
    size_t i, score, best = 0;
    reg *r = NULL;
    ph_request *q;

    memcpy(route, f->route, f->route_len);
    route[f->route_len] = '\0';
    for (i = 0; i < c->nregs; i++) {
        score = pattern_score(c->regs[i].route, c->regs[i].len, route,
                              f->route_len);
        if (score > best) {
            best = score;
            r = &c->regs[i];
        }
    }
    if (r == NULL) {
        /* Unregistered while the request was on its way: the hub has
         * answered the caller already and drops this. */
        refuse_request(c, f->id, PH_EUNAVAIL, "route no longer served");
        return;
    }
    q = ph_alloc(sizeof *q);
    if (q == NULL) {
        refuse_request(c, f->id, PH_EINTERNAL, "provider out of memory");
        return;
    }
    q->c = c;
    q->id = f->id;
    q->caller = f->status;
    q->prev = NULL;
    EnterCriticalSection(&c->lock);
    q->next = c->open;
    if (c->open != NULL)
        c->open->prev = q;
    c->open = q;
    LeaveCriticalSection(&c->lock);
    c->completed++;
    c->in_callback++;
    r->cb(r->ctx, q, route, f->payload, f->payload_len, q->caller);
    c->in_callback--;
}

/* One frame from the server. */
static void dispatch(ph_client *c, const ph_frame *f)
{
    switch (f->kind) {
    case PH_REPLY:
    case PH_ERROR:
        on_answer(c, f);
        break;
    case PH_EVENT:
        on_event(c, f);
        break;
    default:
        on_request(c, f);
        break;
    }
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

/* n bytes arrived in c->in: hand every whole frame to its callback. */
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
        if ((f.flags & PH_FLAG_LANE) && lane_incoming(c, &f) != 0) {
            fail_all(c, PH_EBADFRAME);
            return;
        }
        dispatch(c, &f);
        if (c->broken != PH_OK)
            return;
    }
    resize_in(c, n);
}

static void read_failed(ph_client *c, DWORD e)
{
    /* Only close cancels a read, and close fails the calls itself. */
    fail_all(c, e == ERROR_OPERATION_ABORTED ? PH_ECLOSED : ph_win_err(e));
}

/* Something to read for: answers, events, or requests. */
static int listening(const ph_client *c)
{
    return c->npending > 0 || c->nsubs > 0 || c->nregs > 0;
}

/* While there is something to read for keep a read posted; read (and
 * handle) what is waiting until a read pends. */
static void start_read(ph_client *c)
{
    DWORD e;

    while (!c->reading && c->broken == PH_OK && listening(c)) {
        memset(&c->read_ov, 0, sizeof c->read_ov);
        c->read_ov.hEvent = c->event;
        if (ReadFile(c->pipe, c->in, c->in_cap, NULL, &c->read_ov)) {
            /* Completed at once, and signalled the event all the same. */
            c->stale = 1;
            on_read(c, (uint32_t)c->read_ov.InternalHigh);
            continue;
        }
        e = GetLastError();
        if (e == ERROR_IO_PENDING) {
            c->reading = 1;
            c->stale = 0; /* ReadFile reset the event when it started */
        } else if (e == ERROR_MORE_DATA) {
            /* Message read mode (a server may force it): a message longer
             * than the buffer fills it; the rest comes on the next read. */
            c->stale = 1;
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
    refuse_replies(c, err);
    /* A server that refuses a request (TOO_LARGE) sends an ERROR and closes
     * without reading the rest, so our write fails while its answer may
     * still be waiting in the pipe: reads go on, and the calls fail only
     * once the pipe is empty. Any other failure ends the connection. */
    if (err != PH_ECLOSED)
        fail_all(c, err);
}

/* Move the replies other threads queued into the write queue. */
static void take_replies(ph_client *c)
{
    if (!c->xpending)
        return;
    /* The thread that queued them set the event. */
    c->stale = 1;
    EnterCriticalSection(&c->lock);
    /* Replies made on other threads went inline: they may be big. */
    c->lane_held = 1;
    if (c->queue.len == 0) {
        ph_buf t = c->queue;
        c->queue = c->xqueue;
        c->xqueue = t;
        c->xqueue.len = 0;
    } else if (ph_buf_append(&c->queue, c->xqueue.data, c->xqueue.len) ==
               PH_OK) {
        c->xqueue.len = 0;
    }
    /* Out of memory: they stay in xqueue, to be swapped in once the queue
     * has gone to WriteFile (ready() waits for that write meanwhile). */
    c->xpending = c->xqueue.len > 0;
    LeaveCriticalSection(&c->lock);
}

/* ---- the lane ------------------------------------------------------------ */

static ph_err json_u64(const char *j, size_t n, const char *key, uint64_t *v)
{
    char k[40];
    const char *p, *end = j + n;

    snprintf(k, sizeof k, "\"%s\":", key);
    p = strstr(j, k);
    if (p == NULL || p >= end)
        return PH_EBADFRAME;
    p += strlen(k);
    *v = 0;
    if (p >= end || *p < '0' || *p > '9')
        return PH_EBADFRAME;
    while (p < end && *p >= '0' && *p <= '9')
        *v = *v * 10 + (uint64_t)(*p++ - '0');
    return PH_OK;
}

/* sys.lane's answer: map the section whose handle the hub put into this
 * process, check its header, and use it from now on. Anything wrong turns
 * the lane off; the payloads waiting then go inline. */
static void lane_answered(void *ctx, ph_err err, const ph_frame *f)
{
    ph_client *c = ctx;
    uint64_t handle = 0, bytes = 0, threshold = 0, max_frame = 0;
    const char *j = f != NULL ? (const char *)f->payload : NULL;
    size_t n = f != NULL ? f->payload_len : 0;
    void *view = NULL;

    c->lane_state = LANE_OFF;
    c->lane_blocked = 0;
    if (err != PH_OK || f->kind != PH_REPLY ||
        json_u64(j, n, "handle", &handle) != PH_OK ||
        json_u64(j, n, "section_bytes", &bytes) != PH_OK ||
        json_u64(j, n, "threshold", &threshold) != PH_OK ||
        json_u64(j, n, "max_frame", &max_frame) != PH_OK ||
        bytes > PH_LANE_MAX_BYTES || threshold > UINT32_MAX ||
        max_frame > UINT32_MAX)
        return;
    view = MapViewOfFile((HANDLE)(uintptr_t)handle,
                         FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, (size_t)bytes);
    /* The view keeps the section; the handle has done its work. */
    CloseHandle((HANDLE)(uintptr_t)handle);
    if (view == NULL)
        return;
    if (ph_lane_attach(view, (size_t)bytes, &c->lane) != PH_OK) {
        UnmapViewOfFile(view);
        return;
    }
    c->lane_view = view;
    c->lane_bytes = (size_t)bytes;
    c->lane_threshold = (uint32_t)threshold;
    c->max_frame = (uint32_t)max_frame;
    c->decoder.flags_ok = PH_FLAG_LANE;
    c->lane_state = LANE_READY;
}

/* Append sys.lane asking for a ring for payloads of plen bytes to b, with
 * an internal call slot for its answer. */
static ph_err lane_ask(ph_client *c, ph_buf *b, uint32_t plen)
{
    char size[16];
    uint32_t ring = LANE_RING_MIN;
    ph_frame f;
    call *k;
    ph_err err;

    while (ring < plen && ring < 0x40000000u)
        ring *= 2;
    if ((err = calls_reserve(c)) != PH_OK)
        return err;
    memset(&f, 0, sizeof f);
    f.kind = PH_REQUEST;
    f.id = c->next_id;
    f.route = "sys.lane";
    f.route_len = 8;
    f.payload = (const uint8_t *)size;
    f.payload_len = (uint32_t)snprintf(size, sizeof size, "%u",
                                       (unsigned)ring);
    if ((err = ph_frame_append(b, &f)) != PH_OK)
        return err;
    c->next_id = f.id == UINT32_MAX ? 1 : f.id + 1;
    k = slot(c, c->calls_count++);
    k->id = f.id;
    k->deadline = NO_DEADLINE;
    k->cb = lane_answered;
    k->ctx = c;
    c->npending++;
    return PH_OK;
}

/* c->out was just taken from the queue: move big payloads into our ring,
 * leaving descriptors in the frames, in order. The first big payload asks
 * for the lane; frames from one that must wait (for the answer, or for
 * room the hub has not given back yet) go back to the queue, and writing
 * resumes once it can go. */
static void lane_outgoing(ph_client *c)
{
    ph_buf *b = &c->out, rest = {0};
    size_t rd = 0, wr = 0;
    ph_err err = PH_OK;

    while (rd < b->len) {
        uint8_t *fr = b->data + rd;
        uint32_t n = ph_get_u32le(fr), at = PH_FRAME_HEADER_LEN + fr[6];
        uint32_t plen = n - at, small;
        int big = fr[7] == 0 &&
                  (c->lane_state == LANE_READY
                       ? plen >= c->lane_threshold ||
                             (c->max_frame && n > c->max_frame)
                       : plen >= LANE_ASK_BYTES);
        if (big && c->lane_state == LANE_UNASKED) {
            /* Ask now: the request leaves with the frames before this one;
             * this one and the rest wait for the answer. */
            if (ph_buf_append(&rest, fr, b->len - rd) != PH_OK) {
                c->lane_state = LANE_OFF;
                continue;
            }
            b->len = wr;
            if (lane_ask(c, b, plen) != PH_OK) {
                /* Nothing was added: the frames go inline after all. */
                b->len = wr;
                (void)ph_buf_append(b, rest.data, rest.len);
                rest.len = 0;
                c->lane_state = LANE_OFF;
                rd = wr;
                continue;
            }
            c->lane_state = LANE_ASKING;
            c->lane_blocked = 1;
            wr = b->len;
            rd = b->len;
            break;
        }
        if (big && c->lane_state == LANE_ASKING) {
            c->lane_blocked = 1;
            break;
        }
        if (big && c->lane_state == LANE_READY && plen <= c->lane.out.size) {
            err = ph_lane_put_frame(&c->lane.out, fr, &small);
            if (err == PH_EAGAIN) {
                c->lane_blocked = 1;
                break;
            }
            if (err != PH_OK) {
                fail_all(c, PH_EBADFRAME); /* the hub's head is nonsense */
                return;
            }
            memmove(b->data + wr, fr, small);
            wr += small;
            rd += n;
            continue;
        }
        memmove(b->data + wr, fr, n);
        wr += n;
        rd += n;
    }
    /* What waits goes back in front of whatever was queued since (the
     * queue was empty at the swap, so only frames queued from here on). */
    if (rest.len == 0 && rd < b->len)
        (void)ph_buf_append(&rest, b->data + rd, b->len - rd);
    if (rest.len > 0) {
        if (ph_buf_append(&rest, c->queue.data, c->queue.len) == PH_OK) {
            ph_buf t = c->queue;
            c->queue = rest;
            rest = t;
        }
        ph_buf_free(&rest);
    }
    b->len = wr;
}

/* Append f to the write queue. With a lane and nothing big waiting ahead
 * of it, a big payload goes straight into the ring and only its descriptor
 * into the queue: one copy, and no queue buffer the size of the payload.
 * Driving thread (the ring is its alone). */
static ph_err queue_frame(ph_client *c, const ph_frame *f)
{
    ph_frame d;
    uint8_t desc[PH_LANE_DESC_BYTES];
    uint32_t off;
    ph_err err;
    int big = c->lane_state != LANE_OFF &&
              (c->lane_state == LANE_READY ? f->payload_len >= c->lane_threshold
                                           : f->payload_len >= LANE_ASK_BYTES);

    if (big && c->lane_state == LANE_READY && !c->lane_held &&
        f->payload_len <= c->lane.out.size && ph_route_valid(f->route,
                                                              f->route_len)) {
        err = ph_lane_write(&c->lane.out, f->payload, f->payload_len, &off);
        if (err == PH_OK) {
            d = *f;
            d.flags = PH_FLAG_LANE;
            ph_lane_desc_put(desc, off, f->payload_len);
            d.payload = desc;
            d.payload_len = sizeof desc;
            /* The ring's bytes are spoken for: should the descriptor not
             * fit the queue, the stream cannot go on. */
            if ((err = ph_frame_append(&c->queue, &d)) != PH_OK)
                fail_all(c, err);
            return err;
        }
        if (err == PH_EBADFRAME) {
            fail_all(c, err); /* the hub's head is nonsense */
            return err;
        }
    }
    err = ph_frame_append(&c->queue, f);
    if (err == PH_OK && big)
        c->lane_held = 1;
    return err;
}

/* A big lane payload that ph_client_call hands to its caller comes back
 * through ph_reply_free, and the next one is read into that memory: under
 * Wine every big allocation gets fresh pages, and faulting 16 MiB in took
 * 13-15 ms where copying it into pages already there takes 1 ms
 * (docs/PERFORMANCE.md). One buffer per process: the one lent last, kept
 * once it is back until a lane payload takes it or a client closes. Any
 * thread (ph_reply_free may run on any). */
#define RECYCLE_MIN (1024u * 1024u)
static SRWLOCK recycle_lock = SRWLOCK_INIT;
static uint8_t *recycle_lent;   /* a reply's payload that may come back */
static uint32_t recycle_lent_cap;
static uint8_t *recycle_spare;  /* came back: free for the next payload */
static uint32_t recycle_spare_cap;

static void recycle_lend(uint8_t *p, uint32_t cap)
{
    if (cap < RECYCLE_MIN)
        return;
    AcquireSRWLockExclusive(&recycle_lock);
    recycle_lent = p;
    recycle_lent_cap = cap;
    ReleaseSRWLockExclusive(&recycle_lock);
}

/* 1 when p was the buffer lent: it is kept, not freed. */
static int recycle_return(uint8_t *p)
{
    uint8_t *old = NULL;
    int kept = 0;

    AcquireSRWLockExclusive(&recycle_lock);
    if (p != NULL && p == recycle_lent) {
        old = recycle_spare;
        recycle_spare = p;
        recycle_spare_cap = recycle_lent_cap;
        recycle_lent = NULL;
        kept = 1;
    }
    ReleaseSRWLockExclusive(&recycle_lock);
    ph_free(old);
    return kept;
}

/* The spare buffer when it holds need bytes (its size in *cap), or NULL. */
static uint8_t *recycle_take(uint32_t need, uint32_t *cap)
{
    uint8_t *p = NULL;

    AcquireSRWLockExclusive(&recycle_lock);
    if (recycle_spare != NULL && recycle_spare_cap >= need) {
        p = recycle_spare;
        *cap = recycle_spare_cap;
        recycle_spare = NULL;
    }
    ReleaseSRWLockExclusive(&recycle_lock);
    return p;
}

static void recycle_drop(void)
{
    uint8_t *p;

    AcquireSRWLockExclusive(&recycle_lock);
    p = recycle_spare;
    recycle_spare = NULL;
    ReleaseSRWLockExclusive(&recycle_lock);
    ph_free(p);
}

/* A lane frame from the hub: copy its payload out of the hub's ring into
 * *out's place. -1 when the lane is broken (the stream fails). */
static int lane_incoming(ph_client *c, ph_frame *f)
{
    uint32_t off, len;
    uint8_t *p;

    if (c->lane_state != LANE_READY || f->payload_len != PH_LANE_DESC_BYTES)
        return -1;
    ph_lane_desc_get(f->payload, &off, &len);
    if (len > c->lane.in.size)
        return -1;
    if (len >= c->lane_in_cap) {
        /* One more for the NUL a reply that takes the buffer over adds. */
        uint32_t cap;
        if ((p = recycle_take(len + 1, &cap)) != NULL) {
            ph_free(c->lane_in);
            c->lane_in = p;
            c->lane_in_cap = cap;
        } else if ((p = ph_realloc(c->lane_in, (size_t)len + 1)) != NULL) {
            c->lane_in = p;
            c->lane_in_cap = len + 1;
        } else {
            return -1;
        }
    }
    if (ph_lane_read(&c->lane.in, off, len, c->lane_in) != PH_OK)
        return -1;
    f->payload = c->lane_in;
    f->payload_len = len;
    f->flags = 0;
    /* The hub may be holding a frame for want of the room just given. */
    if (ph_lane_wake_due(&c->lane)) {
        ph_frame w;
        memset(&w, 0, sizeof w);
        w.kind = PH_EVENT;
        w.route = "sys.lane";
        w.route_len = 8;
        if (ph_frame_append(&c->queue, &w) != PH_OK)
            return -1;
    }
    return 0;
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
            if (c->lane_state != LANE_OFF) {
                c->lane_blocked = 0;
                lane_outgoing(c);
                /* What was held is in the ring now, or waits again. */
                c->lane_held = c->lane_blocked || c->lane_state != LANE_READY;
                if (c->broken != PH_OK)
                    return;
                if (c->out.len == 0)
                    return; /* everything waits: see lane_outgoing */
            }
        }
        len = c->out.len - c->out_done > WRITE_CHUNK_MAX
                  ? WRITE_CHUNK_MAX
                  : (DWORD)(c->out.len - c->out_done);
        memset(&c->write_ov, 0, sizeof c->write_ov);
        c->write_ov.hEvent = c->event;
        if (WriteFile(c->pipe, c->out.data + c->out_done, len, NULL,
                      &c->write_ov)) {
            c->stale = 1;
            wrote(c, (DWORD)c->write_ov.InternalHigh);
            continue;
        }
        e = GetLastError();
        if (e == ERROR_IO_PENDING) {
            c->writing = 1;
            c->stale = 0;
        } else {
            write_failed(c, e);
        }
    }
}

/* Finish whichever operations completed. */
static void finish_io(ph_client *c)
{
    DWORD n = 0;

    if (c->writing && HasOverlappedIoCompleted(&c->write_ov)) {
        c->writing = 0;
        c->stale = 1;
        if (GetOverlappedResult(c->pipe, &c->write_ov, &n, FALSE))
            wrote(c, n);
        else
            write_failed(c, GetLastError());
    }
    if (c->reading && HasOverlappedIoCompleted(&c->read_ov)) {
        c->reading = 0;
        c->stale = 1;
        if (GetOverlappedResult(c->pipe, &c->read_ov, &n, FALSE) ||
            GetLastError() == ERROR_MORE_DATA)
            on_read(c, n);
        else
            read_failed(c, GetLastError());
    }
}

/* Work is waiting that needs no wait: an operation completed or another
 * thread queued a reply. Costs no system call. Replies that could not be
 * taken for want of memory count only once the queue is empty again (until
 * then a write is in flight, and its completion is the signal). */
static int ready(ph_client *c)
{
    return (c->reading && HasOverlappedIoCompleted(&c->read_ov)) ||
           (c->writing && HasOverlappedIoCompleted(&c->write_ov)) ||
           (c->xpending && c->queue.len == 0);
}

/* Frames are queued or being written. */
static int writes_left(const ph_client *c)
{
    return c->writing || c->queue.len > 0 || c->out_done < c->out.len ||
           c->xpending;
}

/* The poll loop. Returns when a callback ran (unless flushing), when there
 * is nothing to wait for (flushing: no call outstanding and nothing left to
 * write), when the connection broke, or at deadline.
 *
 * One manual-reset event serves both operations and other threads, and
 * ReadFile/WriteFile reset it when they start. Two rules keep it honest:
 *   - No lost wake-ups: look for work (ready(), no system call) after the
 *     last operation start and before waiting; nothing resets the event
 *     between that look and the wait.
 *   - No stale signal: work done since the last reset (a completion, also
 *     one that happened at once, or replies taken from other threads) left
 *     the event set. Before a wait and before returning, such an event is
 *     reset and the look repeated (and the event set again if work turned
 *     up), so neither this loop nor an application waiting on the waitable
 *     spins on a signal that means nothing. Operation starts that pend
 *     reset it anyway, so on the hot path this costs nothing. */
static void drive(ph_client *c, ULONGLONG deadline, int flushing)
{
    size_t before = c->completed;
    DWORD ms, r;

    c->driver = GetCurrentThreadId();
    for (;;) {
        finish_io(c);
        take_replies(c);
        /* Write first: the replies to what is written now may already be
         * waiting when the read below is tried. */
        start_write(c);
        start_read(c);
        expire(c);
        /* What the callbacks queued leaves now, not at the next poll. */
        take_replies(c);
        start_write(c);
        if (c->broken != PH_OK)
            break;
        if (flushing ? c->npending == 0 && !writes_left(c)
                     : c->completed != before || !listening(c))
            break;
        if ((ms = remaining(deadline)) == 0)
            break;
        if (c->npending > 0 && c->earliest < deadline &&
            remaining(c->earliest) < ms)
            ms = remaining(c->earliest);
        /* Our ring is full: the hub gives room back as it reads, and says
         * nothing, so look again soon. */
        if (c->lane_blocked && c->lane_state == LANE_READY && ms > 1)
            ms = 1;
        if (c->stale) {
            ResetEvent(c->event);
            c->stale = 0;
        }
        if (ready(c))
            continue;
        r = WaitForSingleObject(c->event, ms);
        if (r == WAIT_FAILED) {
            fail_all(c, ph_win_err(GetLastError()));
            break;
        }
    }
    c->driver = 0;
    if (c->broken != PH_OK)
        return;
    if (c->stale) {
        ResetEvent(c->event);
        c->stale = 0;
    }
    /* Work that turned up after the last look, or whose signal an
     * operation start erased: leave the event set for whoever waits on the
     * waitable next. */
    if (ready(c))
        SetEvent(c->event);
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

/* PIPEHUB_LANE=0 in the environment keeps a process's clients off the
 * lane. */
static int lane_env_off(void)
{
    char v[8];
    DWORD n = GetEnvironmentVariableA("PIPEHUB_LANE", v, sizeof v);

    return n > 0 && n < sizeof v && strcmp(v, "0") == 0;
}

ph_err ph_client_connect(const char *pipe, uint32_t timeout_ms,
                         ph_client **out)
{
    return ph_client_connect_ex(pipe, timeout_ms, 0, out);
}

ph_err ph_client_connect_ex(const char *pipe, uint32_t timeout_ms,
                            unsigned flags, ph_client **out)
{
    char path[PH_PIPE_PATH_MAX + 1];
    ULONGLONG deadline = deadline_after(timeout_ms);
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
    c->lane_state = (flags & PH_CONNECT_NO_LANE) || lane_env_off()
                        ? LANE_OFF
                        : LANE_UNASKED;
    ph_decoder_init(&c->decoder, CLIENT_MAX_FRAME);
    c->in = ph_alloc(READ_SMALL);
    if (c->in == NULL) {
        err = PH_ENOMEM;
        goto fail;
    }
    c->in_cap = READ_SMALL;
    c->event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (c->event == NULL) {
        err = ph_win_err(GetLastError());
        goto fail;
    }
    /* Cannot fail on Windows Vista and later. */
    InitializeCriticalSection(&c->lock);
    *out = c;
    return PH_OK;

fail:
    CloseHandle(h);
    if (c != NULL) {
        ph_free(c->in);
        ph_free(c);
    }
    return err;
}

/* Checks shared by the functions that queue a frame. */
static ph_err can_queue(const ph_client *c)
{
    if (c->broken != PH_OK)
        return c->broken;
    return c->write_err;
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
    if ((err = can_queue(c)) != PH_OK)
        return err;
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
    if ((err = queue_frame(c, &f)) != PH_OK)
        return err;
    c->next_id = f.id == UINT32_MAX ? 1 : f.id + 1;

    k = slot(c, c->calls_count++);
    k->id = f.id;
    k->deadline = deadline_after(timeout_ms);
    k->cb = cb;
    k->ctx = ctx;
    c->npending++;
    if (k->deadline < c->earliest)
        c->earliest = k->deadline;
    return PH_OK;
}

ph_err ph_client_poll(ph_client *c, uint32_t timeout_ms, size_t *ncompleted)
{
    size_t before;

    if (c == NULL || c->in_callback)
        return PH_EINVAL;
    before = c->completed;
    drive(c, deadline_after(timeout_ms), 0);
    if (ncompleted != NULL)
        *ncompleted = c->completed - before;
    return c->broken;
}

ph_err ph_client_flush(ph_client *c, uint32_t timeout_ms)
{
    if (c == NULL || c->in_callback)
        return PH_EINVAL;
    drive(c, deadline_after(timeout_ms), 1);
    if (c->broken != PH_OK)
        return c->broken;
    return c->npending == 0 && !writes_left(c) ? PH_OK : PH_ETIMEDOUT;
}

size_t ph_client_pending(const ph_client *c)
{
    return c == NULL ? 0 : c->npending;
}

void *ph_client_waitable(ph_client *c)
{
    return c == NULL ? NULL : c->event;
}

uint32_t ph_client_timeout(const ph_client *c)
{
    ULONGLONG now, next = NO_DEADLINE;
    size_t i;

    if (c == NULL || c->npending == 0)
        return UINT32_MAX;
    /* earliest may be early (it is recomputed when reached): find the
     * real one. */
    for (i = 0; i < c->calls_count; i++) {
        const call *k = &c->calls[(c->calls_head + i) & (c->calls_cap - 1)];
        if (k->cb != NULL && k->deadline < next)
            next = k->deadline;
    }
    now = GetTickCount64();
    if (next <= now)
        return 0;
    return next - now >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)(next - now);
}

/* The blocking call is an asynchronous one whose callback fills this. */
typedef struct sync_call {
    ph_client *c;
    int done;
    ph_err err;
    ph_reply *reply;
} sync_call;

static void sync_done(void *ctx, ph_err err, const ph_frame *f)
{
    sync_call *s = ctx;
    ph_client *c = s->c;

    s->done = 1;
    if (err == PH_OK && f->payload == c->lane_in && c->lane_in != NULL) {
        /* A lane payload was copied out once already, into a buffer with
         * room for the NUL: the reply takes it over. */
        c->lane_in[f->payload_len] = '\0';
        s->reply->kind = f->kind;
        s->reply->status = f->kind == PH_ERROR ? f->status : 0;
        s->reply->payload = c->lane_in;
        s->reply->payload_len = f->payload_len;
        recycle_lend(c->lane_in, c->lane_in_cap);
        c->lane_in = NULL;
        c->lane_in_cap = 0;
        s->err = PH_OK;
        return;
    }
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
    s.c = c;
    s.reply = reply;
    err = ph_client_call_async(c, route, payload, payload_len, timeout_ms,
                               sync_done, &s);
    if (err != PH_OK)
        return err;
    /* The call's own deadline ends this loop: at the latest, expire() runs
     * its callback with PH_ETIMEDOUT; a broken connection runs it with the
     * error. */
    while (!s.done)
        drive(c, deadline_after(timeout_ms), 0);
    return s.err;
}

/* A control request to the hub (sys.subscribe, ...): PH_OK for a REPLY, the
 * ERROR's code for an ERROR, or why no answer came. *answer (may be NULL)
 * gets the hub's answer whenever there was one, and is zeroed otherwise
 * (ph_reply_free on it is then harmless: PH_ETIMEDOUT is both a local
 * error and a protocol code, so the return alone cannot tell). */
static ph_err hub_request(ph_client *c, const char *route, const char *text,
                          uint32_t timeout_ms, ph_reply *answer)
{
    ph_reply r;
    ph_err err;

    if (answer != NULL)
        memset(answer, 0, sizeof *answer);
    err = ph_client_call(c, route, text, strlen(text), timeout_ms, &r);
    if (err != PH_OK)
        return err;
    err = r.kind == PH_ERROR ? (ph_err)r.status : PH_OK;
    /* A provider may not answer a control route, but the status is the
     * hub's own word: 0 in an ERROR would read as success. */
    if (r.kind == PH_ERROR && err == PH_OK)
        err = PH_EINTERNAL;
    if (answer != NULL)
        *answer = r;
    else
        ph_reply_free(&r);
    return err;
}

void ph_reply_free(ph_reply *reply)
{
    if (reply == NULL)
        return;
    if (!recycle_return(reply->payload))
        ph_free(reply->payload);
    reply->payload = NULL;
    reply->payload_len = 0;
}

void ph_client_close(ph_client *c)
{
    ph_request *q, *next;
    DWORD n;
    size_t i;

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
    CloseHandle(c->event);
    /* The hub answers the callers of these UNAVAILABLE when it sees the
     * connection go. */
    for (q = c->open; q != NULL; q = next) {
        next = q->next;
        ph_free(q);
    }
    for (i = 0; i < c->nsubs; i++)
        ph_free(c->subs[i].pattern);
    for (i = 0; i < c->nregs; i++)
        ph_free(c->regs[i].route);
    DeleteCriticalSection(&c->lock);
    ph_decoder_free(&c->decoder);
    ph_buf_free(&c->queue);
    ph_buf_free(&c->xqueue);
    ph_buf_free(&c->out);
    ph_free(c->subs);
    ph_free(c->regs);
    ph_free(c->in);
    ph_free(c->calls);
    ph_free(c->lane_in);
    recycle_drop();
    if (c->lane_view != NULL)
        UnmapViewOfFile(c->lane_view);
    ph_free(c);
}

/* ---- publish / subscribe ------------------------------------------------- */

ph_err ph_client_publish(ph_client *c, const char *topic, const void *payload,
                         size_t payload_len)
{
    size_t len;
    ph_frame f;
    ph_err err;

    if (c == NULL || topic == NULL || (payload == NULL && payload_len > 0))
        return PH_EINVAL;
    len = strlen(topic);
    if (len == 0 || len > PH_ROUTE_MAX || !ph_route_valid(topic, len) ||
        payload_len > UINT32_MAX - PH_FRAME_HEADER_LEN - len)
        return PH_EINVAL;
    if (strncmp(topic, "sys.", 4) == 0)
        return PH_EFORBIDDEN;
    if ((err = can_queue(c)) != PH_OK)
        return err;
    memset(&f, 0, sizeof f);
    f.kind = PH_EVENT;
    f.route = topic;
    f.route_len = (uint8_t)len;
    f.payload = payload;
    f.payload_len = (uint32_t)payload_len;
    return queue_frame(c, &f);
}

/* Index of the subscription (pattern, cb, ctx), or nsubs. */
static size_t find_sub(const ph_client *c, const char *pattern,
                       ph_event_cb *cb, void *ctx)
{
    size_t i;

    for (i = 0; i < c->nsubs; i++) {
        const sub *s = &c->subs[i];
        if (s->cb == cb && s->ctx == ctx && strcmp(s->pattern, pattern) == 0)
            break;
    }
    return i;
}

/* Another local subscription than skip holds pattern. */
static int pattern_held(const ph_client *c, const char *pattern, size_t skip)
{
    size_t i;

    for (i = 0; i < c->nsubs; i++)
        if (i != skip && strcmp(c->subs[i].pattern, pattern) == 0)
            return 1;
    return 0;
}

static void remove_sub(ph_client *c, size_t i)
{
    ph_free(c->subs[i].pattern);
    memmove(&c->subs[i], &c->subs[i + 1],
            (c->nsubs - i - 1) * sizeof c->subs[0]);
    c->nsubs--;
}

ph_err ph_client_subscribe(ph_client *c, const char *pattern, ph_event_cb *cb,
                           void *ctx, uint32_t timeout_ms)
{
    size_t len, i;
    int ask;
    sub *s;
    ph_err err;

    if (c == NULL || pattern == NULL || cb == NULL || c->in_callback)
        return PH_EINVAL;
    len = strlen(pattern);
    if (!ph_pattern_valid(pattern, len, 1))
        return PH_EINVAL;
    if ((err = can_queue(c)) != PH_OK)
        return err;
    if (find_sub(c, pattern, cb, ctx) < c->nsubs)
        return PH_OK;
    if ((err = array_reserve((void **)&c->subs, c->nsubs, &c->subs_cap,
                             sizeof *c->subs)) != PH_OK)
        return err;
    ask = !unasked_topic(pattern) && !pattern_held(c, pattern, SIZE_MAX);
    /* Listed before the hub is asked: an event it sends right after
     * accepting may arrive in the same read as its answer. */
    i = c->nsubs;
    s = &c->subs[i];
    if ((s->pattern = copy_name(pattern, len)) == NULL)
        return PH_ENOMEM;
    s->len = len;
    s->local_only = unasked_topic(pattern);
    s->cb = cb;
    s->ctx = ctx;
    c->nsubs++;
    if (!ask)
        return PH_OK;
    err = hub_request(c, "sys.subscribe", pattern, timeout_ms, NULL);
    /* Nothing else can have changed the list meanwhile: (un)subscribing
     * inside callbacks is refused. */
    if (err != PH_OK)
        remove_sub(c, i);
    return err;
}

ph_err ph_client_unsubscribe(ph_client *c, const char *pattern,
                             ph_event_cb *cb, void *ctx, uint32_t timeout_ms)
{
    size_t i;
    int tell;

    if (c == NULL || pattern == NULL || cb == NULL || c->in_callback)
        return PH_EINVAL;
    if ((i = find_sub(c, pattern, cb, ctx)) == c->nsubs)
        return PH_ENOROUTE;
    tell = !c->subs[i].local_only && !pattern_held(c, pattern, i);
    remove_sub(c, i);
    if (!tell)
        return PH_OK;
    return hub_request(c, "sys.unsubscribe", pattern, timeout_ms, NULL);
}

/* ---- serving routes ------------------------------------------------------ */

static size_t find_reg(const ph_client *c, const char *route)
{
    size_t i;

    for (i = 0; i < c->nregs; i++)
        if (strcmp(c->regs[i].route, route) == 0)
            break;
    return i;
}

static void remove_reg(ph_client *c, size_t i)
{
    ph_free(c->regs[i].route);
    memmove(&c->regs[i], &c->regs[i + 1],
            (c->nregs - i - 1) * sizeof c->regs[0]);
    c->nregs--;
}

ph_err ph_client_register(ph_client *c, const char *route, unsigned flags,
                          ph_request_cb *cb, void *ctx, uint32_t timeout_ms,
                          ph_reply *answer)
{
    return ph_client_register_described(c, route, flags, NULL, cb, ctx,
                                        timeout_ms, answer);
}

ph_err ph_client_register_described(ph_client *c, const char *route,
                                    unsigned flags, const char *description,
                                    ph_request_cb *cb, void *ctx,
                                    uint32_t timeout_ms, ph_reply *answer)
{
    size_t len, i, dlen = description != NULL ? strlen(description) : 0;
    char *text;
    int added = 0;
    reg *r;
    ph_err err;

    if (answer != NULL)
        memset(answer, 0, sizeof *answer);
    if (c == NULL || route == NULL || cb == NULL || c->in_callback ||
        (flags != PH_REGISTER_SHARED && flags != PH_REGISTER_EXCLUSIVE))
        return PH_EINVAL;
    len = strlen(route);
    if (!ph_pattern_valid(route, len, 0) || dlen > PH_DESCRIBE_MAX)
        return PH_EINVAL;
    if ((err = can_queue(c)) != PH_OK)
        return err;
    i = find_reg(c, route);
    if (i < c->nregs) {
        r = &c->regs[i];
        /* The hub keeps the first registration as it was; a second one
         * with another mode or handler could not mean what it says. */
        if (r->flags != flags || r->cb != cb || r->ctx != ctx)
            return PH_EINVAL;
    } else {
        if ((err = array_reserve((void **)&c->regs, c->nregs, &c->regs_cap,
                                 sizeof *c->regs)) != PH_OK)
            return err;
        r = &c->regs[i];
        if ((r->route = copy_name(route, len)) == NULL)
            return PH_ENOMEM;
        r->len = len;
        r->flags = flags;
        r->cb = cb;
        r->ctx = ctx;
        c->nregs++;
        added = 1;
    }
    /* "ROUTE [exclusive]", and the description on the lines after. */
    text = ph_alloc(len + sizeof " exclusive" + 1 + dlen);
    if (text == NULL) {
        err = PH_ENOMEM;
    } else {
        snprintf(text, len + sizeof " exclusive" + 1 + dlen, "%s%s%s%s", route,
                 flags == PH_REGISTER_EXCLUSIVE ? " exclusive" : "",
                 dlen ? "\n" : "", dlen ? description : "");
        err = hub_request(c, "sys.register", text, timeout_ms, answer);
        ph_free(text);
    }
    if (err != PH_OK && added)
        remove_reg(c, i);
    return err;
}

ph_err ph_client_unregister(ph_client *c, const char *route,
                            uint32_t timeout_ms)
{
    char text[PH_ROUTE_MAX + 1];
    size_t i;

    if (c == NULL || route == NULL || c->in_callback)
        return PH_EINVAL;
    if ((i = find_reg(c, route)) == c->nregs)
        return PH_ENOROUTE;
    snprintf(text, sizeof text, "%s", c->regs[i].route);
    remove_reg(c, i);
    return hub_request(c, "sys.unregister", text, timeout_ms, NULL);
}

/* Queue the answer f to req (whose id f carries) and free req. */
static ph_err answer(ph_request *req, ph_frame *f)
{
    ph_client *c = req->c;
    int wake = 0;
    ph_err err;

    f->id = req->id;
    EnterCriticalSection(&c->lock);
    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        c->open = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    if (c->xbroken != PH_OK) {
        err = c->xbroken;
    } else if (c->driver == GetCurrentThreadId()) {
        /* The polling thread, inside a handler: the poll writes the queue
         * before it returns. */
        err = queue_frame(c, f);
        if (err != PH_OK && err != PH_EINVAL)
            ph_frame_append_error(&c->queue, req->id, PH_EINTERNAL,
                                  "reply could not be queued");
    } else {
        err = ph_frame_append(&c->xqueue, f);
        if (err != PH_OK && err != PH_EINVAL)
            ph_frame_append_error(&c->xqueue, req->id, PH_EINTERNAL,
                                  "reply could not be queued");
        if (c->xqueue.len > 0 && !c->xpending) {
            c->xpending = 1;
            wake = 1;
        }
    }
    LeaveCriticalSection(&c->lock);
    /* Outside the lock: under Wine SetEvent is a round trip to the
     * wineserver. One wake per batch: xpending stays set until the driving
     * thread takes the queue. */
    if (wake)
        SetEvent(c->event);
    ph_free(req);
    return err;
}

ph_err ph_request_error(ph_request *req, uint32_t code, const char *msg)
{
    size_t n = msg != NULL ? strlen(msg) : 0;
    ph_frame f;

    if (req == NULL || code == 0)
        return PH_EINVAL;
    n = ph_utf8_cut(msg, n, ERROR_MSG_MAX);
    memset(&f, 0, sizeof f);
    f.kind = PH_ERROR;
    f.status = code;
    f.payload = (const uint8_t *)msg;
    f.payload_len = (uint32_t)n;
    return answer(req, &f);
}

ph_err ph_request_reply(ph_request *req, const void *payload,
                        size_t payload_len)
{
    ph_frame f;

    if (req == NULL || (payload == NULL && payload_len > 0))
        return PH_EINVAL;
    if (payload_len > UINT32_MAX - PH_FRAME_HEADER_LEN) {
        /* Cannot be encoded: the caller gets an ERROR instead. */
        ph_request_error(req, PH_EINTERNAL, "reply too large");
        return PH_ETOOBIG;
    }
    memset(&f, 0, sizeof f);
    f.kind = PH_REPLY;
    f.payload = payload;
    f.payload_len = (uint32_t)payload_len;
    return answer(req, &f);
}

uint32_t ph_request_caller_id(const ph_request *req)
{
    return req == NULL ? 0 : req->caller;
}

ph_err ph_client_caller(ph_client *c, uint32_t conn_id, uint32_t timeout_ms,
                        ph_reply *json)
{
    char text[16];
    ph_reply r;
    ph_err err;

    if (c == NULL || json == NULL || conn_id == 0)
        return PH_EINVAL;
    snprintf(text, sizeof text, "%lu", (unsigned long)conn_id);
    err = hub_request(c, "sys.client", text, timeout_ms, &r);
    if (err != PH_OK) {
        /* The ERROR's message, or nothing (r is zeroed then). */
        ph_reply_free(&r);
        return err;
    }
    *json = r;
    return PH_OK;
}

/* ---- monitor ------------------------------------------------------------- */

ph_err ph_monitor_decode(const void *payload, size_t len,
                         ph_monitor_copy *out)
{
    const uint8_t *p = payload;
    ph_decoder d;
    ph_frame f;
    size_t used = 0;
    ph_err err;

    if (payload == NULL || out == NULL || len < MONITOR_HEAD ||
        len - MONITOR_HEAD > UINT32_MAX)
        return PH_EBADFRAME;
    /* A frame that lies whole in the input is returned without copying,
     * so the decoder allocates nothing here; its limit is the frame's own
     * length, so one that claims more than the copy holds is refused. */
    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, (uint32_t)(len - MONITOR_HEAD));
    err = ph_decoder_next(&d, p + MONITOR_HEAD, len - MONITOR_HEAD, &used, &f);
    ph_decoder_free(&d);
    if (err != PH_OK || used != len - MONITOR_HEAD)
        return PH_EBADFRAME;
    out->time_ms = (uint64_t)ph_get_u32le(p) |
                   (uint64_t)ph_get_u32le(p + 4) << 32;
    out->from = ph_get_u32le(p + 8);
    out->to = ph_get_u32le(p + 12);
    out->frame = f;
    return PH_OK;
}
