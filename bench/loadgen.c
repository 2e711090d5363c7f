/* pipehub bench: the load generator of bench/run.sh, linked into
 * pipehub.exe (client/cli_main.c dispatches "bench" here; the modes and
 * options are in its usage text).
 *
 * Each run prints one line, "bench mode=... key=value ...", that scripts can
 * parse. Framed runs talk to pipehubd (sys.echo); --raw runs send plain
 * bytes and expect them echoed, for bench/baseline.exe. Both use the same
 * calls in the same order (overlapped WriteFile, overlapped ReadFile, one
 * wait), so the client's own cost is the same on both sides of a
 * comparison.
 *
 * The hub modes (routed, routed-async, fanout, idle-sub, abuse) have no raw
 * form: they measure what only the hub does. The routed modes' callers go
 * through the library as the ping-pong and async modes do, and so do their
 * providers (threads of this process; --provider raw serves the route over
 * a raw pipe handle instead). Subscribers, publishers and abusive clients
 * speak frames over raw pipe handles, so that reads and writes are as large
 * as the load allows and the hub, not a client library, is what is
 * measured. */
#include <windows.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "frame.h"

#define BENCH_SECONDS_DEFAULT 2u
#define BENCH_SIZE_DEFAULT    64u
#define BENCH_BIG_SIZE        (1024u * 1024u)
#define BENCH_WINDOW_DEFAULT  1024u
#define BENCH_CLIENTS_DEFAULT 16u
#define BENCH_IDLE_DEFAULT    1000u
#define BENCH_HOLD_DEFAULT    3u
#define BENCH_CLIENTS_MAX     4096u
#define BENCH_SIZE_MAX        (16u * 1024u * 1024u)
#define BENCH_READ_SMALL      4096u
#define BENCH_READ_LARGE      (64u * 1024u)
#define BENCH_READ_HUGE       (4u * 1024u * 1024u)
#define BENCH_ROUTE           "sys.echo"
#define BENCH_ROUTE_LEN       8u
/* While the name has no instance at all (the baseline between accepting a
 * client and creating its next instance), connecting is retried this often. */
#define BENCH_NOTFOUND_RETRY_MS 1u

typedef enum bench_mode {
    BENCH_PINGPONG, /* -c clients, each: one round trip after another */
    BENCH_PIPELINE, /* one client, a window of messages, --pack per write */
    BENCH_ASYNC,    /* one client, a window of library async calls */
    BENCH_CHURN,    /* connect, one round trip, close; again */
    BENCH_IDLE,     /* open -c connections, hold, check each answers */
    BENCH_ROUTED,   /* pingpong to a route this process provides */
    BENCH_ROUTED_ASYNC, /* async calls to a route this process provides */
    BENCH_PROVIDE,  /* serve --route for other processes' calls */
    BENCH_FANOUT,   /* 1 publisher, -c subscribers (+ --stall stalled) */
    BENCH_IDLE_SUB, /* -c idle connections, each with one subscription */
    BENCH_ABUSE     /* abusive clients of one --kind, dropped by the hub */
} bench_mode;

/* The abusive clients of the abuse mode. */
typedef enum abuse_kind {
    ABUSE_CONNECT_CLOSE, /* connect and close without a whole frame */
    ABUSE_SILENT,        /* connect and send nothing */
    ABUSE_SLOWLORIS,     /* one frame, then a frame a byte at a time */
    ABUSE_NONREADER,     /* requests without ever reading the replies */
    ABUSE_OVERLIMIT      /* connections until max_connections_per_user */
} abuse_kind;

typedef struct bench {
    const cli *o;
    bench_mode mode;
    const char *name; /* the mode's name as given */
    int raw;          /* --raw: plain echo bytes, no frames */
    int no_lane;      /* --no-lane: library clients keep to the pipe */
    uint32_t clients; /* -c */
    uint32_t seconds; /* -d, when count is 0 */
    uint32_t count;   /* -n: round trips per client, messages or
                         connections; 0 = run for seconds */
    uint32_t size;    /* -s: payload bytes per message */
    uint32_t pack;    /* --pack: messages per WriteFile (pipeline) */
    uint32_t window;  /* --window: messages in flight */
    uint32_t hold;    /* --hold: seconds idle connections are held */
    uint8_t *msg;     /* a payload of size bytes */
    LARGE_INTEGER freq;
    HANDLE go;                     /* manual reset: workers start when set */
    LONGLONG start, end;           /* ticks of the timed part */
    volatile LONG connect_retries; /* not-found or busy answers to an open */
    /* The hub modes. */
    const char *route;      /* what lib_echo and bench_async call: sys.echo,
                               --route, or a route of this process's own */
    char route_buf[64];     /* a route or topic of this process's own */
    char extra[160];        /* more " key=value" for print_head */
    uint32_t providers;     /* --providers (routed modes) */
    int provider_lib;       /* --provider lib: serve through the library */
    uint32_t stall;         /* --stall: stalled subscribers (fanout) */
    abuse_kind kind;        /* --kind (abuse) */
    volatile LONG stop;     /* tells provider and reader threads to end */
    volatile LONG pub_waiting; /* the publisher waits for readers */
    HANDLE progress;        /* auto reset: readers made progress */
} bench;

/* A growable array of microsecond samples. */
typedef struct samples {
    uint32_t *us;
    size_t n, cap;
} samples;

/* One benchmark connection: the library's client (framed round trips and
 * async calls) or a raw pipe handle (--raw, and the pipeline modes, where
 * the write pattern itself is what is measured). */
typedef struct bconn {
    ph_client *lib;
    HANDLE pipe;
    HANDLE read_event, write_event;
    OVERLAPPED read_ov, write_ov;
    int reading, writing;
    uint8_t *in;
    uint32_t in_cap;
    ph_decoder dec; /* framed replies read raw */
    char why[200];  /* the last failure */
    /* Frames read raw (raw_next_frame): in[in_off..in_len) not decoded yet. */
    uint32_t in_len, in_off;
    uint32_t next_id;     /* raw_call's request ids */
    uint32_t last_status; /* the code of the last ERROR raw_call got */
} bconn;

static LONGLONG now_ticks(void)
{
    LARGE_INTEGER t;

    QueryPerformanceCounter(&t);
    return t.QuadPart;
}

static double ticks_to_s(const bench *b, LONGLONG t)
{
    return (double)t / (double)b->freq.QuadPart;
}

static uint64_t ticks_to_us(const bench *b, LONGLONG t)
{
    return (uint64_t)(t * 1000000 / b->freq.QuadPart);
}

/* The timed part starts now; without -n it ends -d seconds later. */
static void clock_start(bench *b)
{
    b->start = now_ticks();
    b->end = b->start + (LONGLONG)b->seconds * b->freq.QuadPart;
}

static int samples_add(samples *s, uint64_t us)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        uint32_t *p = realloc(s->us, cap * sizeof *p);
        if (p == NULL)
            return -1;
        s->us = p;
        s->cap = cap;
    }
    s->us[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* " median_us=M p99_us=P" for the samples (sorted here). */
static void print_latency(samples *s)
{
    size_t p99;

    if (s->n == 0) {
        printf(" median_us=0 p99_us=0");
        return;
    }
    qsort(s->us, s->n, sizeof *s->us, cmp_u32);
    p99 = (s->n * 99 + 99) / 100;
    printf(" median_us=%u p99_us=%u max_us=%u", (unsigned)s->us[s->n / 2],
           (unsigned)s->us[p99 > 0 ? p99 - 1 : 0], (unsigned)s->us[s->n - 1]);
}

static void print_head(const bench *b)
{
    printf("bench mode=%s proto=%s clients=%u size=%u%s", b->name,
           b->raw ? "raw" : "framed", (unsigned)b->clients, (unsigned)b->size,
           b->extra);
}

/* Append a frame to b: 0, or -1 (out of memory). */
static int put_frame(ph_buf *b, uint8_t kind, const char *route, uint32_t id,
                     const void *payload, size_t len)
{
    const ph_frame f = {.kind = kind,
                        .route_len = route ? (uint8_t)strlen(route) : 0,
                        .id = id,
                        .route = route,
                        .payload = payload,
                        .payload_len = (uint32_t)len};

    return ph_frame_append(b, &f) == PH_OK ? 0 : -1;
}

static int bfail(bconn *c, const char *fmt, ...)
{
    char tmp[sizeof c->why];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(c->why, tmp, sizeof tmp);
    return -1;
}

static void bconn_close(bconn *c)
{
    DWORD n;

    ph_client_close(c->lib);
    c->lib = NULL;
    if (c->pipe != NULL && c->pipe != INVALID_HANDLE_VALUE) {
        if (c->reading || c->writing) {
            CancelIoEx(c->pipe, NULL);
            if (c->reading)
                GetOverlappedResult(c->pipe, &c->read_ov, &n, TRUE);
            if (c->writing)
                GetOverlappedResult(c->pipe, &c->write_ov, &n, TRUE);
        }
        CloseHandle(c->pipe);
    }
    c->pipe = NULL;
    c->reading = c->writing = 0;
    if (c->read_event)
        CloseHandle(c->read_event);
    if (c->write_event)
        CloseHandle(c->write_event);
    c->read_event = c->write_event = NULL;
    free(c->in);
    c->in = NULL;
    ph_decoder_free(&c->dec);
}

/* Connect, through the library (lib) or as a raw overlapped handle. A name
 * with no instance at all, or every instance busy, is retried until the
 * timeout: a benchmark should measure what the server can do, not fail when
 * its listener lags. */
static int bconn_open(bench *b, int lib, bconn *c)
{
    ULONGLONG deadline = GetTickCount64() + b->o->timeout_ms;
    ph_err err;

    memset(c, 0, sizeof *c);
    ph_decoder_init(&c->dec, PH_MAX_FRAME_DEFAULT * 64u);
    for (;;) {
        DWORD e;

        if (lib) {
            err = ph_client_connect_ex(b->o->path, b->o->timeout_ms,
                                       b->no_lane ? PH_CONNECT_NO_LANE : 0,
                                       &c->lib);
            if (err == PH_OK)
                return 0;
            if (err != PH_ENOTFOUND)
                return bfail(c, "connect: %s (%d)", ph_strerror(err), err);
        } else {
            c->pipe = CreateFileA(b->o->path, GENERIC_READ | GENERIC_WRITE, 0,
                                  NULL, OPEN_EXISTING,
                                  FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
                                      SECURITY_IDENTIFICATION,
                                  NULL);
            if (c->pipe != INVALID_HANDLE_VALUE)
                break;
            e = GetLastError();
            if (e != ERROR_FILE_NOT_FOUND && e != ERROR_PIPE_BUSY)
                return bfail(c, "connect: error %lu", (unsigned long)e);
            if (e == ERROR_PIPE_BUSY) {
                InterlockedIncrement(&b->connect_retries);
                if (GetTickCount64() >= deadline)
                    return bfail(c, "connect: every instance stayed busy");
                WaitNamedPipeA(b->o->path, 100);
                continue;
            }
        }
        InterlockedIncrement(&b->connect_retries);
        if (GetTickCount64() >= deadline)
            return bfail(c, "connect: nothing serves %s", b->o->path);
        Sleep(BENCH_NOTFOUND_RETRY_MS);
    }
    c->read_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    c->write_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    c->in = malloc(BENCH_READ_SMALL);
    c->in_cap = BENCH_READ_SMALL;
    if (c->read_event == NULL || c->write_event == NULL || c->in == NULL)
        return bfail(c, "out of resources");
    return 0;
}

/* Raw I/O. Returns 1 when the operation completed at once (*n bytes), 0
 * when it is now in flight, -1 on failure. */
static int raw_read(bconn *c, DWORD *n)
{
    DWORD e;

    memset(&c->read_ov, 0, sizeof c->read_ov);
    c->read_ov.hEvent = c->read_event;
    if (ReadFile(c->pipe, c->in, c->in_cap, NULL, &c->read_ov)) {
        *n = (DWORD)c->read_ov.InternalHigh;
        return 1;
    }
    if ((e = GetLastError()) == ERROR_IO_PENDING) {
        c->reading = 1;
        return 0;
    }
    return bfail(c, "ReadFile: error %lu", (unsigned long)e);
}

static int raw_write(bconn *c, const void *data, DWORD len)
{
    DWORD e;

    memset(&c->write_ov, 0, sizeof c->write_ov);
    c->write_ov.hEvent = c->write_event;
    if (WriteFile(c->pipe, data, len, NULL, &c->write_ov)) {
        if ((DWORD)c->write_ov.InternalHigh != len)
            return bfail(c, "short write");
        return 1;
    }
    if ((e = GetLastError()) == ERROR_IO_PENDING) {
        c->writing = 1;
        return 0;
    }
    return bfail(c, "WriteFile: error %lu", (unsigned long)e);
}

/* Finish whichever in-flight operation is done: 1 read done (*n bytes),
 * 2 write done, 0 nothing yet, -1 failure. */
static int raw_reap(bconn *c, DWORD *n)
{
    DWORD m = 0;

    if (c->writing && HasOverlappedIoCompleted(&c->write_ov)) {
        c->writing = 0;
        if (!GetOverlappedResult(c->pipe, &c->write_ov, &m, FALSE))
            return bfail(c, "write: error %lu", (unsigned long)GetLastError());
        return 2;
    }
    if (c->reading && HasOverlappedIoCompleted(&c->read_ov)) {
        c->reading = 0;
        if (!GetOverlappedResult(c->pipe, &c->read_ov, n, FALSE))
            return bfail(c, "read: error %lu", (unsigned long)GetLastError());
        return 1;
    }
    return 0;
}

static int raw_wait(bconn *c, uint32_t timeout_ms)
{
    HANDLE h[2];
    DWORD k = 0;

    if (c->reading)
        h[k++] = c->read_event;
    if (c->writing)
        h[k++] = c->write_event;
    if (k == 0)
        return 0;
    if (WaitForMultipleObjects(k, h, FALSE, timeout_ms) == WAIT_TIMEOUT)
        return bfail(c, "no progress within %u ms", (unsigned)timeout_ms);
    return 0;
}

/* The library's read sizes (client.c, resize_in), so raw and framed runs
 * read alike: 4 KiB, 64 KiB once a read fills the buffer, and the rest of
 * a message larger than that (up to 4 MiB) while one is arriving. rest is
 * the bytes of the current message still to come (0 when unknown). */
static int raw_resize(bconn *c, DWORD n, uint32_t rest)
{
    uint32_t want = c->in_cap;
    uint8_t *p;

    if (n == c->in_cap && want < BENCH_READ_LARGE)
        want = BENCH_READ_LARGE;
    if (rest > want)
        want = rest < BENCH_READ_HUGE ? rest : BENCH_READ_HUGE;
    else if (rest == 0 && want > BENCH_READ_LARGE)
        want = BENCH_READ_LARGE;
    if (want == c->in_cap)
        return 0;
    if ((p = realloc(c->in, want)) == NULL)
        return bfail(c, "out of memory");
    c->in = p;
    c->in_cap = want;
    return 0;
}

/* The rest of the frame the decoder is in the middle of, or 0. */
static uint32_t frame_rest(const bconn *c)
{
    return c->dec.have >= 4 ? c->dec.frame_len - c->dec.have : 0;
}

/* The next whole frame in c->in[*off..n), the n bytes a read just brought:
 * 1 and *f, 0 when the rest is part of a frame (which the decoder keeps),
 * -1 when the stream is broken ("bad <what> stream"). */
static int next_frame_in(bconn *c, DWORD n, size_t *off, ph_frame *f,
                         const char *what)
{
    size_t used;
    ph_err err;

    if (*off >= n)
        return 0;
    err = ph_decoder_next(&c->dec, c->in + *off, n - *off, &used, f);
    if (err == PH_EAGAIN)
        return 0;
    if (err != PH_OK)
        return bfail(c, "bad %s stream: %s", what, ph_strerror(err));
    *off += used;
    return 1;
}

/* One round trip of size raw bytes: write them, read them back. */
static int raw_echo(bench *b, bconn *c)
{
    uint32_t got = 0;
    DWORD n = 0;
    int r;

    if ((r = raw_write(c, b->msg, b->size)) < 0)
        return -1;
    while (got < b->size || c->writing) {
        r = raw_reap(c, &n);
        if (r == 0 && !c->reading && got < b->size)
            r = raw_read(c, &n);
        if (r < 0)
            return -1;
        if (r == 1) {
            if (n > b->size - got)
                return bfail(c, "%lu bytes more than were sent",
                             (unsigned long)(n - (b->size - got)));
            if (memcmp(c->in, b->msg + got, n) != 0)
                return bfail(c, "echo differs at byte %u", (unsigned)got);
            got += n;
            if (raw_resize(c, n, b->size - got) < 0)
                return -1;
            continue;
        }
        if (r == 0 && raw_wait(c, b->o->timeout_ms) < 0)
            return -1;
    }
    return 0;
}

static int lib_echo(bench *b, bconn *c)
{
    ph_reply r;
    ph_err err;
    int rc = 0;

    err = ph_client_call(c->lib, b->route, b->msg, b->size, b->o->timeout_ms,
                         &r);
    if (err != PH_OK)
        return bfail(c, "%s: %s (%d)", b->route, ph_strerror(err), err);
    if (r.kind != PH_REPLY || r.payload_len != b->size ||
        memcmp(r.payload, b->msg, b->size) != 0)
        rc = bfail(c, "%s: wrong answer (kind %u, status %u, %u bytes: %.*s)",
                   b->route, (unsigned)r.kind, (unsigned)r.status,
                   (unsigned)r.payload_len,
                   r.kind == PH_ERROR ? (int)r.payload_len : 0,
                   r.payload ? (const char *)r.payload : "");
    ph_reply_free(&r);
    return rc;
}

static int echo(bench *b, bconn *c)
{
    return b->raw ? raw_echo(b, c) : lib_echo(b, c);
}

/* ---- round trips from -c clients ---- */

typedef struct rt_worker {
    bench *b;
    bconn conn;
    uint64_t trips;
    LONGLONG finished; /* ticks when the worker stopped */
    samples lat;
    int failed;
    HANDLE thread;
} rt_worker;

static DWORD WINAPI rt_main(LPVOID arg)
{
    rt_worker *w = arg;
    bench *b = w->b;
    LONGLONG t0, t1;

    WaitForSingleObject(b->go, INFINITE);
    for (;;) {
        t0 = now_ticks();
        if (echo(b, &w->conn) < 0) {
            w->failed = 1;
            break;
        }
        t1 = now_ticks();
        if (b->count == 0 && t1 > b->end)
            break;
        w->trips++;
        samples_add(&w->lat, ticks_to_us(b, t1 - t0));
        if (b->count != 0 && w->trips == b->count)
            break;
    }
    w->finished = now_ticks();
    return 0;
}

static int bench_roundtrips(bench *b)
{
    rt_worker *w = calloc(b->clients, sizeof *w);
    samples all = {0};
    uint64_t trips = 0;
    LONGLONG last = 0;
    double secs;
    uint32_t i, started = 0;
    int rc = EXIT_NO_ANSWER;

    if (w == NULL)
        return EXIT_NO_ANSWER;
    for (i = 0; i < b->clients; i++) {
        w[i].b = b;
        if (bconn_open(b, !b->raw, &w[i].conn) < 0) {
            fprintf(stderr, "pipehub: bench: client %u: %s\n", (unsigned)i,
                    w[i].conn.why);
            goto done;
        }
    }
    for (i = 0; i < b->clients; i++) {
        w[i].thread = CreateThread(NULL, 64 * 1024, rt_main, &w[i],
                                   STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
        if (w[i].thread == NULL) {
            fprintf(stderr, "pipehub: bench: CreateThread failed\n");
            break;
        }
        started++;
    }
    clock_start(b);
    SetEvent(b->go);
    for (i = 0; i < started; i++) {
        WaitForSingleObject(w[i].thread, INFINITE);
        CloseHandle(w[i].thread);
    }
    if (started < b->clients)
        goto done;
    for (i = 0; i < b->clients; i++) {
        if (w[i].failed) {
            fprintf(stderr, "pipehub: bench: client %u: %s\n", (unsigned)i,
                    w[i].conn.why);
            goto done;
        }
        trips += w[i].trips;
        if (w[i].finished > last)
            last = w[i].finished;
        if (all.n + w[i].lat.n > all.cap) {
            uint32_t *p = realloc(all.us, (all.n + w[i].lat.n) * sizeof *p);
            if (p == NULL)
                goto done;
            all.us = p;
            all.cap = all.n + w[i].lat.n;
        }
        memcpy(all.us + all.n, w[i].lat.us, w[i].lat.n * sizeof *all.us);
        all.n += w[i].lat.n;
    }
    secs = b->count ? ticks_to_s(b, last - b->start) : (double)b->seconds;
    print_head(b);
    printf(" msgs=%llu secs=%.3f msgs_per_s=%.0f", (unsigned long long)trips,
           secs, trips / secs);
    print_latency(&all);
    printf(" mb_per_s=%.2f\n", (double)trips * b->size / secs / 1e6);
    rc = EXIT_OK;
done:
    for (i = 0; i < b->clients; i++) {
        bconn_close(&w[i].conn);
        free(w[i].lat.us);
    }
    free(all.us);
    free(w);
    return rc;
}

/* ---- pipelined: a window of messages, --pack of them per WriteFile ---- */

/* What a pipelined run has done so far. */
typedef struct pipe_counts {
    uint64_t sent, got; /* messages: written, and whole replies read */
    uint64_t bytes;     /* read */
    uint64_t writes, reads;
} pipe_counts;

/* Replies received: whole messages so far. */
static int pipeline_consume(bench *b, bconn *c, DWORD n, pipe_counts *k)
{
    size_t off = 0;
    ph_frame f;
    int r;

    if (b->raw) {
        k->bytes += n;
        k->got = k->bytes / b->size;
        return 0;
    }
    while ((r = next_frame_in(c, n, &off, &f, "reply")) > 0) {
        if (f.kind != PH_REPLY || f.payload_len != b->size)
            return bfail(c, "wrong reply (kind %u, %u bytes)", (unsigned)f.kind,
                         (unsigned)f.payload_len);
        k->got++;
    }
    if (r < 0)
        return -1;
    k->bytes += n;
    return 0;
}

/* The rest of the message being received: by the decoder (framed) or by
 * the byte count (raw). */
static uint32_t pipeline_rest(const bench *b, const bconn *c, uint64_t bytes)
{
    uint32_t part;

    if (!b->raw)
        return frame_rest(c);
    part = (uint32_t)(bytes % b->size);
    return part ? b->size - part : 0;
}

/* A read of n bytes is done: take the replies, and size the next read. */
static int pipeline_read(bench *b, bconn *c, DWORD n, pipe_counts *k)
{
    k->reads++;
    if (pipeline_consume(b, c, n, k) < 0)
        return -1;
    return raw_resize(c, n, pipeline_rest(b, c, k->bytes));
}

/* The window of messages on one raw connection: 0, or -1 with c->why. */
static int pipeline_run(bench *b, bconn *c, const ph_buf *chunk)
{
    size_t one = chunk->len / b->pack;
    pipe_counts k = {0, 0, 0, 0, 0};
    uint32_t next_id = 1, i;
    double secs;
    int stopping = 0, progress, r;
    DWORD n = 0;

    clock_start(b);
    for (;;) {
        if (!stopping && ((b->count && k.sent >= b->count) ||
                          (!b->count && now_ticks() >= b->end)))
            stopping = 1;
        /* A read or a write done. */
        if ((r = raw_reap(c, &n)) < 0 ||
            (r == 1 && pipeline_read(b, c, n, &k) < 0))
            return -1;
        progress = r > 0;
        if (!c->writing && !stopping && k.sent - k.got + b->pack <= b->window) {
            if (!b->raw)
                for (i = 0; i < b->pack; i++)
                    ph_put_u32le(chunk->data + i * one + 8, next_id++);
            if (raw_write(c, chunk->data, (DWORD)chunk->len) < 0)
                return -1;
            k.sent += b->pack;
            k.writes++;
            progress = 1;
        }
        /* A read posted, which may be done at once. */
        if (!c->reading && k.got < k.sent) {
            if ((r = raw_read(c, &n)) < 0 ||
                (r == 1 && pipeline_read(b, c, n, &k) < 0))
                return -1;
            progress |= r == 1;
        }
        if (stopping && k.got >= k.sent && !c->writing)
            break;
        if (!progress && raw_wait(c, b->o->timeout_ms) < 0)
            return -1;
    }
    secs = ticks_to_s(b, now_ticks() - b->start);
    print_head(b);
    printf(" pack=%u window=%u msgs=%llu secs=%.3f msgs_per_s=%.0f "
           "writes=%llu reads=%llu\n",
           (unsigned)b->pack, (unsigned)b->window, (unsigned long long)k.got,
           secs, k.got / secs, (unsigned long long)k.writes,
           (unsigned long long)k.reads);
    return 0;
}

static int bench_pipeline(bench *b)
{
    ph_buf chunk = {0};
    bconn c;
    uint32_t i;
    int r;

    r = bconn_open(b, 0, &c);
    /* The chunk: pack messages, written again and again (framed: with fresh
     * ids each time). */
    for (i = 0; r == 0 && i < b->pack; i++)
        if (b->raw ? ph_buf_append(&chunk, b->msg, b->size) != PH_OK
                   : put_frame(&chunk, PH_REQUEST, BENCH_ROUTE, 0, b->msg,
                               b->size) < 0)
            r = bfail(&c, "out of memory");
    if (r == 0)
        r = pipeline_run(b, &c, &chunk);
    if (r < 0)
        fprintf(stderr, "pipehub: bench: %s\n", c.why);
    bconn_close(&c);
    ph_buf_free(&chunk);
    return r < 0 ? EXIT_NO_ANSWER : EXIT_OK;
}

/* ---- pipelined through the library's asynchronous calls ---- */

typedef struct async_run {
    const bench *b;
    uint64_t ok, bad;
    ph_err first_err;
} async_run;

static void async_done(void *ctx, ph_err err, const ph_frame *f)
{
    async_run *a = ctx;

    if (err == PH_OK && f->kind == PH_REPLY && f->payload_len == a->b->size &&
        memcmp(f->payload, a->b->msg, a->b->size) == 0) {
        a->ok++;
        return;
    }
    if (a->bad++ == 0)
        a->first_err = err != PH_OK            ? err
                       : f->kind == PH_ERROR   ? (ph_err)f->status
                                               : PH_EINTERNAL;
}

static int bench_async(bench *b)
{
    async_run a; /* the calls' context: outlives c, whose close ends them */
    bconn c;
    uint64_t issued = 0, polls = 0;
    double secs;
    int stopping = 0, rc = EXIT_NO_ANSWER;
    size_t done;
    ph_err err;

    memset(&a, 0, sizeof a);
    a.b = b;
    if (bconn_open(b, 1, &c) < 0)
        goto fail;
    clock_start(b);
    for (;;) {
        while (!stopping && ph_client_pending(c.lib) < b->window) {
            err = ph_client_call_async(c.lib, b->route, b->msg, b->size,
                                       b->o->timeout_ms, async_done, &a);
            if (err != PH_OK) {
                bfail(&c, "call_async: %s", ph_strerror(err));
                goto fail;
            }
            if (++issued == b->count)
                stopping = 1;
        }
        if (stopping && ph_client_pending(c.lib) == 0)
            break;
        err = ph_client_poll(c.lib, b->o->timeout_ms, &done);
        polls++;
        if (err != PH_OK || done == 0) {
            bfail(&c, "poll: %s", err ? ph_strerror(err) : "no answer in time");
            goto fail;
        }
        if (a.bad) {
            bfail(&c, "%llu wrong answers, the first: %s",
                  (unsigned long long)a.bad, ph_strerror(a.first_err));
            goto fail;
        }
        if (!b->count && now_ticks() >= b->end)
            stopping = 1;
    }
    secs = ticks_to_s(b, now_ticks() - b->start);
    print_head(b);
    printf(" window=%u msgs=%llu secs=%.3f msgs_per_s=%.0f polls=%llu\n",
           (unsigned)b->window, (unsigned long long)a.ok, secs, a.ok / secs,
           (unsigned long long)polls);
    rc = EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "pipehub: bench: %s\n", c.why);
done:
    bconn_close(&c);
    return rc;
}

/* ---- connection churn ---- */

static int bench_churn(bench *b)
{
    samples lat = {0};
    uint64_t conns = 0;
    LONGLONG t0, t1;
    double secs;
    bconn c;
    int rc = EXIT_NO_ANSWER;

    clock_start(b);
    for (;;) {
        t0 = now_ticks();
        if (bconn_open(b, !b->raw, &c) < 0 || echo(b, &c) < 0) {
            fprintf(stderr, "pipehub: bench: connection %llu: %s\n",
                    (unsigned long long)conns + 1, c.why);
            bconn_close(&c);
            goto done;
        }
        bconn_close(&c);
        t1 = now_ticks();
        conns++;
        samples_add(&lat, ticks_to_us(b, t1 - t0));
        if (b->count ? conns >= b->count : t1 >= b->end)
            break;
    }
    secs = ticks_to_s(b, t1 - b->start);
    print_head(b);
    printf(" conns=%llu secs=%.3f conns_per_s=%.0f retries=%ld",
           (unsigned long long)conns, secs, conns / secs,
           (long)b->connect_retries);
    print_latency(&lat);
    putchar('\n');
    rc = EXIT_OK;
done:
    free(lat.us);
    return rc;
}

/* ---- idle connections: open, hold, then each must still answer ---- */

/* Makes connection i of an idle run ready to be held: opens it, then one
 * round trip (idle) or its own subscription (idle-sub). 0, or -1 with
 * c->why. */
typedef int (*idle_ready)(bench *b, bconn *c, uint32_t i);

static int idle_echo(bench *b, bconn *c, uint32_t i)
{
    (void)i;
    return bconn_open(b, !b->raw, c) < 0 ? -1 : echo(b, c);
}

/* Open the -c connections into c, each made ready, say so on the line
 * bench/run.sh waits for before it reads the server's memory, and hold
 * them. The seconds the opening took, or -1 when one failed; *opened: the
 * connections to close. */
static double idle_open_and_hold(bench *b, bconn *c, idle_ready ready,
                                 uint32_t *opened)
{
    LONGLONG t0 = now_ticks();
    double open_s;
    uint32_t i;

    for (i = 0; i < b->clients; i++) {
        if (ready(b, &c[i], i) < 0) {
            fprintf(stderr, "pipehub: bench: connection %u: %s\n", (unsigned)i,
                    c[i].why);
            *opened = i + 1;
            return -1;
        }
    }
    *opened = b->clients;
    open_s = ticks_to_s(b, now_ticks() - t0);
    print_head(b);
    printf(" phase=held open_s=%.3f hold_s=%u\n", open_s, (unsigned)b->hold);
    fflush(stdout);
    Sleep(b->hold * 1000u);
    return open_s;
}

static int bench_idle(bench *b)
{
    bconn *c = calloc(b->clients, sizeof *c);
    samples lat = {0};
    uint32_t i, opened = 0, answered = 0;
    LONGLONG t0, t1;
    double open_s;
    int rc = EXIT_NO_ANSWER;

    if (c == NULL)
        return EXIT_NO_ANSWER;
    if ((open_s = idle_open_and_hold(b, c, idle_echo, &opened)) < 0)
        goto done;
    for (i = 0; i < b->clients; i++) {
        t0 = now_ticks();
        if (echo(b, &c[i]) < 0) {
            fprintf(stderr, "pipehub: bench: held connection %u: %s\n",
                    (unsigned)i, c[i].why);
            continue;
        }
        t1 = now_ticks();
        answered++;
        samples_add(&lat, ticks_to_us(b, t1 - t0));
    }
    print_head(b);
    printf(" phase=checked held=%u answered=%u open_s=%.3f retries=%ld",
           (unsigned)b->clients, (unsigned)answered, open_s,
           (long)b->connect_retries);
    print_latency(&lat);
    putchar('\n');
    rc = answered == b->clients ? EXIT_OK : EXIT_NO_ANSWER;
done:
    for (i = 0; i < opened; i++)
        bconn_close(&c[i]);
    free(lat.us);
    free(c);
    return rc;
}

/* ==== the hub modes ===================================================== */

/* max_inflight_per_client's default: more would be refused BUSY. */
#define BENCH_ROUTED_WINDOW 256u
#define BENCH_FAN_SUBS      50u
#define BENCH_FAN_PACK      256u
#define BENCH_FAN_WINDOW    4096u
/* Subscribers read in large chunks: per-call cost dominates under Wine. */
#define BENCH_FAN_READ      (64u * 1024u)
/* Subscribers per reader thread: one wait takes at most 64 handles. */
#define BENCH_FAN_PER_READER 60u
/* Reads one subscriber may take in a row before the next gets a turn. */
#define BENCH_FAN_TURN      8u
/* How often threads that wait look at b->stop. */
#define BENCH_STOP_POLL_MS  50u
/* How often abusive clients are looked at, and the slowloris byte rate. */
#define BENCH_ABUSE_POLL_MS 10u
#define BENCH_SLOW_BYTE_MS  250u
#define BENCH_SLOW_PAYLOAD  1000u
#define BENCH_NONREAD_CHUNK (32u * 1024u)

/* ---- frames over raw handles ---- */

static uint64_t get_u64le(const uint8_t *p)
{
    return ph_get_u32le(p) | (uint64_t)ph_get_u32le(p + 4) << 32;
}

static void put_u64le(uint8_t *p, uint64_t v)
{
    ph_put_u32le(p, (uint32_t)v);
    ph_put_u32le(p + 4, (uint32_t)(v >> 32));
}

/* Wait for the write in flight, if any. */
static int raw_finish_write(bconn *c, uint32_t timeout_ms)
{
    DWORD n = 0;

    if (!c->writing)
        return 0;
    if (WaitForSingleObject(c->write_event, timeout_ms) != WAIT_OBJECT_0)
        return bfail(c, "a write did not finish within %u ms",
                     (unsigned)timeout_ms);
    c->writing = 0;
    if (!GetOverlappedResult(c->pipe, &c->write_ov, &n, FALSE))
        return bfail(c, "write: error %lu", (unsigned long)GetLastError());
    return 0;
}

/* Write len bytes and wait until they are written. */
static int raw_write_all(bconn *c, const void *data, size_t len,
                         uint32_t timeout_ms)
{
    if (raw_finish_write(c, timeout_ms) < 0 ||
        raw_write(c, data, (DWORD)len) < 0)
        return -1;
    return raw_finish_write(c, timeout_ms);
}

static int raw_in_size(bconn *c, uint32_t cap)
{
    uint8_t *p = realloc(c->in, cap);

    if (p == NULL)
        return bfail(c, "out of memory");
    c->in = p;
    c->in_cap = cap;
    return 0;
}

/* The next frame from the server, waiting up to timeout_ms for it. 0 and
 * *f (valid until the next call), or -1. */
static int raw_next_frame(bconn *c, ph_frame *f, uint32_t timeout_ms)
{
    size_t used;
    ph_err err;
    DWORD n = 0;
    int r;

    for (;;) {
        if (c->in_off < c->in_len) {
            err = ph_decoder_next(&c->dec, c->in + c->in_off,
                                  c->in_len - c->in_off, &used, f);
            if (err == PH_OK) {
                c->in_off += (uint32_t)used;
                return 0;
            }
            if (err != PH_EAGAIN)
                return bfail(c, "bad stream from the server: %s",
                             ph_strerror(err));
        }
        c->in_off = c->in_len = 0;
        if (!c->reading) {
            if ((r = raw_read(c, &n)) < 0)
                return -1;
            if (r == 1) {
                c->in_len = n;
                continue;
            }
        }
        if (WaitForSingleObject(c->read_event, timeout_ms) != WAIT_OBJECT_0)
            return bfail(c, "no frame within %u ms", (unsigned)timeout_ms);
        c->reading = 0;
        if (!GetOverlappedResult(c->pipe, &c->read_ov, &n, FALSE))
            return bfail(c, "read: error %lu", (unsigned long)GetLastError());
        c->in_len = n;
    }
}

/* A request over a raw framed connection, and its answer (frames that
 * arrive meanwhile are skipped). 0 for a REPLY, whose payload (cut to cap - 1
 * bytes) goes to answer when that is not NULL; -1 otherwise, with c->why
 * and, for an ERROR, its code in c->last_status. */
static int raw_call(bconn *c, const char *route, const void *payload,
                    size_t len, uint32_t timeout_ms, char *answer, size_t cap)
{
    ph_buf req = {0};
    ph_frame f;
    uint32_t id = ++c->next_id;
    size_t n;
    int r;

    c->last_status = 0;
    if (put_frame(&req, PH_REQUEST, route, id, payload, len) < 0) {
        ph_buf_free(&req);
        return bfail(c, "out of memory");
    }
    r = raw_write_all(c, req.data, req.len, timeout_ms);
    ph_buf_free(&req);
    if (r < 0)
        return -1;
    for (;;) {
        if (raw_next_frame(c, &f, timeout_ms) < 0)
            return -1;
        if (f.kind == PH_ERROR && (f.id == id || f.id == 0)) {
            c->last_status = f.status;
            return bfail(c, "%s: error %u: %.*s", route, (unsigned)f.status,
                         (int)(f.payload_len > 120 ? 120 : f.payload_len),
                         (const char *)f.payload);
        }
        if (f.kind == PH_REPLY && f.id == id)
            break;
    }
    if (answer != NULL && cap > 0) {
        n = f.payload_len < cap - 1 ? f.payload_len : cap - 1;
        memcpy(answer, f.payload, n);
        answer[n] = '\0';
    }
    return 0;
}

/* ---- providers: threads of this process serving b->route ---- */

typedef struct provider {
    bench *b;
    bconn conn;
    HANDLE thread;
    uint64_t served;
    int failed;
} provider;

static void provider_lib_request(void *ctx, ph_request *req, const char *route,
                                 const void *payload, size_t payload_len,
                                 uint32_t caller)
{
    provider *p = ctx;

    (void)route;
    (void)caller;
    if (ph_request_reply(req, payload, payload_len) == PH_OK)
        p->served++;
}

/* n bytes of forwarded requests arrived: queue a REPLY echoing each. */
static int provider_echo(provider *p, DWORD n, ph_buf *out)
{
    bconn *c = &p->conn;
    size_t off = 0;
    ph_frame f;
    int r;

    while ((r = next_frame_in(c, n, &off, &f, "request")) > 0) {
        if (f.kind != PH_REQUEST)
            continue;
        if (put_frame(out, PH_REPLY, NULL, f.id, f.payload, f.payload_len) <
            0)
            return bfail(c, "out of memory");
        p->served++;
    }
    return r;
}

/* A provider on a raw handle: every read's requests answered in one write,
 * which leaves at once (or when the one before it is done). */
static DWORD WINAPI provider_raw_main(LPVOID arg)
{
    provider *p = arg;
    bconn *c = &p->conn;
    ph_buf out = {0}, wbuf = {0}, t;
    HANDLE h[2];
    DWORD n = 0, k;
    int r;

    while (!p->b->stop) {
        while ((r = raw_reap(c, &n)) != 0) {
            if (r < 0)
                goto fail;
            if (r == 1 && (provider_echo(p, n, &out) < 0 ||
                           raw_resize(c, n, frame_rest(c)) < 0))
                goto fail;
        }
        if (!c->writing && out.len > 0) {
            t = wbuf;
            wbuf = out;
            out = t;
            out.len = 0;
            if (raw_write(c, wbuf.data, (DWORD)wbuf.len) < 0)
                goto fail;
            continue;
        }
        if (!c->reading) {
            if ((r = raw_read(c, &n)) < 0)
                goto fail;
            if (r == 1) {
                if (provider_echo(p, n, &out) < 0 ||
                    raw_resize(c, n, frame_rest(c)) < 0)
                    goto fail;
                continue;
            }
        }
        k = 0;
        if (c->reading)
            h[k++] = c->read_event;
        if (c->writing)
            h[k++] = c->write_event;
        if (k > 0 && WaitForMultipleObjects(k, h, FALSE, BENCH_STOP_POLL_MS) ==
                         WAIT_FAILED) {
            bfail(c, "wait: error %lu", (unsigned long)GetLastError());
            goto fail;
        }
    }
    goto done;
fail:
    p->failed = 1;
done:
    if (c->writing) { /* wbuf must outlive the write */
        CancelIoEx(c->pipe, &c->write_ov);
        GetOverlappedResult(c->pipe, &c->write_ov, &n, TRUE);
        c->writing = 0;
    }
    ph_buf_free(&out);
    ph_buf_free(&wbuf);
    return 0;
}

/* A provider through the library: its handler replies at once, and the
 * replies of one poll leave in one write. */
static DWORD WINAPI provider_lib_main(LPVOID arg)
{
    provider *p = arg;
    ph_err err;

    while (!p->b->stop) {
        err = ph_client_poll(p->conn.lib, BENCH_STOP_POLL_MS, NULL);
        if (err != PH_OK) {
            bfail(&p->conn, "poll: %s", ph_strerror(err));
            p->failed = 1;
            break;
        }
    }
    return 0;
}

static int providers_start(bench *b, provider *p)
{
    ph_reply answer;
    uint32_t i;
    ph_err err;

    for (i = 0; i < b->providers; i++) {
        p[i].b = b;
        if (bconn_open(b, b->provider_lib, &p[i].conn) < 0)
            goto fail;
        if (b->provider_lib) {
            err = ph_client_register(p[i].conn.lib, b->route,
                                     PH_REGISTER_SHARED, provider_lib_request,
                                     &p[i], b->o->timeout_ms, &answer);
            ph_reply_free(&answer);
            if (err != PH_OK) {
                bfail(&p[i].conn, "sys.register %s: %s", b->route,
                      ph_strerror(err));
                goto fail;
            }
        } else if (raw_call(&p[i].conn, "sys.register", b->route,
                            strlen(b->route), b->o->timeout_ms, NULL,
                            0) < 0) {
            goto fail;
        }
        p[i].thread = CreateThread(
            NULL, 64 * 1024, b->provider_lib ? provider_lib_main
                                             : provider_raw_main,
            &p[i], STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
        if (p[i].thread == NULL) {
            bfail(&p[i].conn, "CreateThread failed");
            goto fail;
        }
    }
    return 0;
fail:
    fprintf(stderr, "pipehub: bench: provider %u: %s\n", (unsigned)i,
            p[i].conn.why);
    return -1;
}

/* Stop and close the providers; -1 when one of them failed. */
static int providers_stop(bench *b, provider *p)
{
    uint32_t i;
    int rc = 0;

    InterlockedExchange(&b->stop, 1);
    for (i = 0; i < b->providers; i++) {
        if (p[i].thread != NULL) {
            WaitForSingleObject(p[i].thread, INFINITE);
            CloseHandle(p[i].thread);
            if (p[i].failed) {
                fprintf(stderr, "pipehub: bench: provider %u: %s\n",
                        (unsigned)i, p[i].conn.why);
                rc = -1;
            }
        }
        bconn_close(&p[i].conn);
    }
    InterlockedExchange(&b->stop, 0);
    return rc;
}

/* routed, routed-async: the ping-pong and async loads, to a route served by
 * providers in this process, through the hub. */
static int bench_routed(bench *b)
{
    provider *p = calloc(b->providers, sizeof *p);
    int rc = EXIT_NO_ANSWER;

    if (p == NULL)
        return EXIT_NO_ANSWER;
    snprintf(b->route_buf, sizeof b->route_buf, "bench.echo.%lu",
             (unsigned long)GetCurrentProcessId());
    b->route = b->route_buf;
    snprintf(b->extra, sizeof b->extra, " route=%s provider=%s providers=%u",
             b->route, b->provider_lib ? "lib" : "raw",
             (unsigned)b->providers);
    if (providers_start(b, p) == 0)
        rc = b->mode == BENCH_ROUTED ? bench_roundtrips(b) : bench_async(b);
    if (providers_stop(b, p) != 0 && rc == EXIT_OK)
        rc = EXIT_NO_ANSWER;
    free(p);
    return rc;
}

/* provide: --providers threads serve --route (an echo, as the routed
 * modes' providers) for -d seconds, so that the calls of other processes
 * meet the same provider: bench/node.sh runs `bench async --route` and the
 * Node package's calls against one. "state=serving" once registered. */
static int bench_provide(bench *b)
{
    provider *p = calloc(b->providers, sizeof *p);
    uint64_t served = 0;
    uint32_t i;
    int rc = EXIT_OK;

    if (p == NULL)
        return EXIT_NO_ANSWER;
    snprintf(b->extra, sizeof b->extra, " route=%s provider=lib providers=%u",
             b->route, (unsigned)b->providers);
    if (providers_start(b, p) == 0) {
        print_head(b);
        printf(" state=serving\n");
        fflush(stdout);
        Sleep(b->seconds * 1000u);
    } else {
        rc = EXIT_NO_ANSWER;
    }
    if (providers_stop(b, p) != 0)
        rc = EXIT_NO_ANSWER;
    for (i = 0; i < b->providers; i++)
        served += p[i].served;
    print_head(b);
    printf(" served=%llu\n", (unsigned long long)served);
    free(p);
    return rc;
}

/* ---- fan-out: one publisher, many subscribers ---- */

typedef struct fan_sub {
    bconn conn;
    volatile LONG64 events; /* events received, each checked in order */
} fan_sub;

typedef struct fan_reader {
    bench *b;
    fan_sub *subs; /* n of them, read by this thread */
    uint32_t n;
    HANDLE thread;
    volatile LONG failed;
    char why[240];
} fan_reader;

/* n bytes arrived for s: each event must be the next one published. */
static int fan_consume(const bench *b, fan_sub *s, DWORD n)
{
    bconn *c = &s->conn;
    LONG64 got = s->events;
    size_t off = 0;
    ph_frame f;
    int r;

    while ((r = next_frame_in(c, n, &off, &f, "event")) > 0) {
        if (f.kind == PH_ERROR)
            return bfail(c, "error %u from the hub: %.*s", (unsigned)f.status,
                         (int)(f.payload_len > 120 ? 120 : f.payload_len),
                         (const char *)f.payload);
        if (f.kind != PH_EVENT)
            continue;
        if (f.payload_len != b->size ||
            (b->size >= 8 && get_u64le(f.payload) != (uint64_t)got))
            return bfail(c, "event %lld: wrong or out of order (%u bytes, "
                         "seq %llu)", (long long)got, (unsigned)f.payload_len,
                         f.payload_len >= 8
                             ? (unsigned long long)get_u64le(f.payload)
                             : 0ull);
        got++;
    }
    if (r < 0)
        return -1;
    s->events = got;
    return 0;
}

/* A reader thread: keeps a read posted on each of its subscribers, takes
 * whatever completed, and wakes the publisher when it waits for room. */
static DWORD WINAPI fan_reader_main(LPVOID arg)
{
    fan_reader *r = arg;
    bench *b = r->b;
    HANDLE h[MAXIMUM_WAIT_OBJECTS];
    DWORD n = 0, k;
    uint32_t i, turn;
    int x, progress, busy;

    for (;;) {
        progress = busy = 0;
        for (i = 0; i < r->n; i++) {
            bconn *c = &r->subs[i].conn;
            for (turn = 0; turn < BENCH_FAN_TURN; turn++) {
                if (c->reading) {
                    if (!HasOverlappedIoCompleted(&c->read_ov))
                        break;
                    x = raw_reap(c, &n);
                } else {
                    x = raw_read(c, &n);
                }
                if (x < 0 || (x == 1 && fan_consume(b, &r->subs[i], n) < 0))
                    goto fail;
                if (x == 0)
                    break;
                progress = 1;
            }
            busy |= !c->reading;
        }
        if (progress && b->pub_waiting &&
            InterlockedExchange(&b->pub_waiting, 0))
            SetEvent(b->progress);
        if (b->stop)
            break;
        if (busy)
            continue;
        for (k = 0, i = 0; i < r->n; i++)
            h[k++] = r->subs[i].conn.read_event;
        if (WaitForMultipleObjects(k, h, FALSE, BENCH_STOP_POLL_MS) ==
            WAIT_FAILED) {
            bfail(&r->subs[0].conn, "wait: error %lu",
                  (unsigned long)GetLastError());
            i = 0;
            goto fail;
        }
    }
    return 0;
fail:
    snprintf(r->why, sizeof r->why, "subscriber %u: %s", (unsigned)i,
             r->subs[i].conn.why);
    InterlockedExchange(&r->failed, 1);
    SetEvent(b->progress);
    return 0;
}

/* After the run: did the hub drop this stalled subscriber? A pipe the
 * server closed still hands out what was in its buffer, then fails; one
 * that is still open keeps delivering what the hub has queued for it. 1
 * when a read failed within a second. */
static int fan_stalled_dropped(bconn *c)
{
    ULONGLONG until = GetTickCount64() + 1000;
    DWORD n = 0;
    int r;

    while (GetTickCount64() < until) {
        if (!c->reading) {
            if ((r = raw_read(c, &n)) < 0)
                return 1;
            if (r == 1)
                continue;
        }
        if (WaitForSingleObject(c->read_event, 100) != WAIT_OBJECT_0)
            continue;
        c->reading = 0;
        if (!GetOverlappedResult(c->pipe, &c->read_ov, &n, FALSE))
            return 1;
    }
    return 0;
}

static LONG64 fan_slowest(const fan_sub *s, uint32_t n)
{
    LONG64 m = INT64_MAX;
    uint32_t i;

    for (i = 0; i < n; i++)
        if (s[i].events < m)
            m = s[i].events;
    return m;
}

static const char *fan_failure(const fan_reader *r, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++)
        if (r[i].failed)
            return r[i].why;
    return NULL;
}

/* Wait until the publisher may go on: the slowest subscriber has at least
 * want events, or a reader failed. 0, or -1 (why in pub). */
static int fan_wait(bench *b, fan_sub *subs, uint32_t nsubs, fan_reader *rd,
                    uint32_t nr, LONG64 want, bconn *pub, uint64_t *waits)
{
    const char *why;

    while (fan_slowest(subs, nsubs) < want) {
        if ((why = fan_failure(rd, nr)) != NULL)
            return bfail(pub, "%s", why);
        InterlockedExchange(&b->pub_waiting, 1);
        if (fan_slowest(subs, nsubs) >= want)
            break;
        (*waits)++;
        if (WaitForSingleObject(b->progress, b->o->timeout_ms) ==
            WAIT_TIMEOUT)
            return bfail(pub, "subscribers got nothing for %u ms",
                         (unsigned)b->o->timeout_ms);
    }
    InterlockedExchange(&b->pub_waiting, 0);
    return 0;
}

static int bench_fanout(bench *b)
{
    uint32_t nsubs = b->clients, nall = b->clients + b->stall, nr, per, i;
    fan_sub *subs = calloc(nall, sizeof *subs);
    fan_reader *rd = NULL;
    ph_buf chunk[2] = {{0}, {0}};
    uint64_t published = 0, writes = 0, waits = 0;
    size_t one, seq_at;
    unsigned dropped = 0;
    LONGLONG t;
    double secs;
    bconn pub;
    int cur = 0, rc = EXIT_NO_ANSWER;
    const char *why = NULL;

    memset(&pub, 0, sizeof pub);
    nr = (nsubs + BENCH_FAN_PER_READER - 1) / BENCH_FAN_PER_READER;
    per = (nsubs + nr - 1) / nr;
    rd = calloc(nr, sizeof *rd);
    b->progress = CreateEventA(NULL, FALSE, FALSE, NULL);
    if (subs == NULL || rd == NULL || b->progress == NULL) {
        fputs("pipehub: bench: out of resources\n", stderr);
        goto done;
    }
    snprintf(b->route_buf, sizeof b->route_buf, "bench.fan.%lu",
             (unsigned long)GetCurrentProcessId());
    /* The subscribers, then the stalled ones: subscribed, never read. */
    for (i = 0; i < nall; i++) {
        bconn *c = &subs[i].conn;
        if (bconn_open(b, 0, c) < 0 || raw_in_size(c, BENCH_FAN_READ) < 0 ||
            raw_call(c, "sys.subscribe", b->route_buf, strlen(b->route_buf),
                     b->o->timeout_ms, NULL, 0) < 0) {
            fprintf(stderr, "pipehub: bench: subscriber %u: %s\n",
                    (unsigned)i, c->why);
            goto done;
        }
    }
    if (bconn_open(b, 0, &pub) < 0)
        goto fail;
    for (cur = 0; cur < 2; cur++)
        for (i = 0; i < b->pack; i++)
            if (put_frame(&chunk[cur], PH_EVENT, b->route_buf, 0, b->msg,
                          b->size) < 0) {
                bfail(&pub, "out of memory");
                goto fail;
            }
    cur = 0;
    one = chunk[0].len / b->pack;
    seq_at = PH_FRAME_HEADER_LEN + strlen(b->route_buf);
    for (i = 0; i < nr; i++) {
        rd[i].b = b;
        rd[i].subs = subs + i * per;
        rd[i].n = i * per + per <= nsubs ? per : nsubs - i * per;
        rd[i].thread = CreateThread(NULL, 64 * 1024, fan_reader_main, &rd[i],
                                    STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
        if (rd[i].thread == NULL) {
            bfail(&pub, "CreateThread failed");
            goto fail;
        }
    }
    clock_start(b);
    for (;;) {
        if (b->count ? published >= b->count : now_ticks() >= b->end)
            break;
        /* Room: no subscriber more than window events behind. */
        if (fan_wait(b, subs, nsubs, rd, nr,
                     (LONG64)(published + b->pack) - (LONG64)b->window, &pub,
                     &waits) < 0)
            goto fail;
        if (raw_finish_write(&pub, b->o->timeout_ms) < 0)
            goto fail;
        if (b->size >= 8)
            for (i = 0; i < b->pack; i++)
                put_u64le(chunk[cur].data + i * one + seq_at, published + i);
        if (raw_write(&pub, chunk[cur].data, (DWORD)chunk[cur].len) < 0)
            goto fail;
        published += b->pack;
        writes++;
        cur ^= 1;
    }
    if (raw_finish_write(&pub, b->o->timeout_ms) < 0 ||
        fan_wait(b, subs, nsubs, rd, nr, (LONG64)published, &pub, &waits) < 0)
        goto fail;
    t = now_ticks();
    secs = ticks_to_s(b, t - b->start);
    for (i = nsubs; i < nall; i++)
        dropped += fan_stalled_dropped(&subs[i].conn);
    print_head(b);
    printf(" stalled=%u pack=%u window=%u published=%llu delivered=%llu "
           "secs=%.3f events_per_s=%.0f published_per_s=%.0f writes=%llu "
           "waits=%llu stalled_dropped=%u\n",
           (unsigned)b->stall, (unsigned)b->pack, (unsigned)b->window,
           (unsigned long long)published,
           (unsigned long long)(published * nsubs), secs,
           (double)published * nsubs / secs, (double)published / secs,
           (unsigned long long)writes, (unsigned long long)waits, dropped);
    rc = EXIT_OK;
    goto done;
fail:
    why = pub.why;
    fprintf(stderr, "pipehub: bench: fanout: %s\n", why);
done:
    InterlockedExchange(&b->stop, 1);
    for (i = 0; rd != NULL && i < nr; i++) {
        if (rd[i].thread == NULL)
            continue;
        WaitForSingleObject(rd[i].thread, INFINITE);
        CloseHandle(rd[i].thread);
        if (rd[i].failed && rc == EXIT_OK) {
            fprintf(stderr, "pipehub: bench: fanout: %s\n", rd[i].why);
            rc = EXIT_NO_ANSWER;
        }
    }
    InterlockedExchange(&b->stop, 0);
    bconn_close(&pub);
    for (i = 0; subs != NULL && i < nall; i++)
        bconn_close(&subs[i].conn);
    ph_buf_free(&chunk[0]);
    ph_buf_free(&chunk[1]);
    if (b->progress != NULL)
        CloseHandle(b->progress);
    b->progress = NULL;
    free(subs);
    free(rd);
    return rc;
}

/* ---- idle connections, each with one subscription ---- */

/* The topic of idle-sub's connection i. */
static void idle_topic(char *out, size_t cap, uint32_t i)
{
    snprintf(out, cap, "bench.idle.%lu.%u",
             (unsigned long)GetCurrentProcessId(), (unsigned)i);
}

static int idle_subscribe(bench *b, bconn *c, uint32_t i)
{
    char topic[64];

    idle_topic(topic, sizeof topic, i);
    if (bconn_open(b, 0, c) < 0)
        return -1;
    return raw_call(c, "sys.subscribe", topic, strlen(topic),
                    b->o->timeout_ms, NULL, 0);
}

static int bench_idle_sub(bench *b)
{
    bconn *c = calloc(b->clients, sizeof *c), pub;
    ph_buf events = {0};
    char topic[64];
    uint32_t i, opened = 0, answered = 0;
    double open_s;
    ph_frame f;
    int rc = EXIT_NO_ANSWER;

    memset(&pub, 0, sizeof pub);
    if (c == NULL)
        return EXIT_NO_ANSWER;
    if ((open_s = idle_open_and_hold(b, c, idle_subscribe, &opened)) < 0)
        goto done;
    /* Each subscription must still deliver: one event to every topic, all
     * in one write from a new connection. */
    for (i = 0; i < b->clients; i++) {
        idle_topic(topic, sizeof topic, i);
        if (put_frame(&events, PH_EVENT, topic, 0, b->msg, b->size) < 0) {
            fputs("pipehub: bench: out of memory\n", stderr);
            goto report;
        }
    }
    if (bconn_open(b, 0, &pub) < 0 ||
        raw_write_all(&pub, events.data, events.len, b->o->timeout_ms) < 0) {
        fprintf(stderr, "pipehub: bench: publisher: %s\n", pub.why);
        goto report;
    }
    for (i = 0; i < b->clients; i++) {
        idle_topic(topic, sizeof topic, i);
        if (raw_next_frame(&c[i], &f, b->o->timeout_ms) < 0) {
            fprintf(stderr, "pipehub: bench: held connection %u: %s\n",
                    (unsigned)i, c[i].why);
            continue;
        }
        if (f.kind == PH_EVENT && f.route_len == strlen(topic) &&
            memcmp(f.route, topic, f.route_len) == 0 &&
            f.payload_len == b->size)
            answered++;
        else
            fprintf(stderr, "pipehub: bench: held connection %u: got kind "
                    "%u, not its event\n", (unsigned)i, (unsigned)f.kind);
    }
report:
    print_head(b);
    printf(" phase=checked held=%u answered=%u open_s=%.3f retries=%ld\n",
           (unsigned)b->clients, (unsigned)answered, open_s,
           (long)b->connect_retries);
    rc = answered == b->clients ? EXIT_OK : EXIT_NO_ANSWER;
done:
    for (i = 0; i < opened; i++)
        bconn_close(&c[i]);
    bconn_close(&pub);
    ph_buf_free(&events);
    free(c);
    return rc;
}

/* ---- abusive clients: each kind must be dropped by the hub ---- */

static const char *const abuse_names[] = {"connect-close", "silent",
                                          "slowloris", "nonreader",
                                          "overlimit"};

typedef struct abuse_run {
    uint64_t conns, dropped, not_dropped, timeout_errors, busy, failures;
    samples drop_ms;
    char why[200]; /* the first failure */
} abuse_run;

static void abuse_failed(abuse_run *a, const char *why)
{
    if (a->failures++ == 0)
        snprintf(a->why, sizeof a->why, "%s", why);
}

/* Without waiting: 1 once the server has closed c (a read or the last write
 * failed), 0 while it is open. Reads what the server sent, counting ERROR
 * TIMEOUT frames; with reads off (a client that never reads), only a
 * failed write tells. */
static int abuse_closed(bconn *c, int reads, abuse_run *a)
{
    size_t off;
    ph_frame f;
    DWORD n = 0;
    int r;

    if (c->writing && HasOverlappedIoCompleted(&c->write_ov)) {
        c->writing = 0;
        if (!GetOverlappedResult(c->pipe, &c->write_ov, &n, FALSE))
            return 1;
    }
    while (reads) {
        if (c->reading) {
            if (!HasOverlappedIoCompleted(&c->read_ov))
                return 0;
            c->reading = 0;
            if (!GetOverlappedResult(c->pipe, &c->read_ov, &n, FALSE))
                return 1;
        } else if ((r = raw_read(c, &n)) < 0) {
            return 1;
        } else if (r == 0) {
            return 0;
        }
        off = 0;
        while (next_frame_in(c, n, &off, &f, "server") > 0)
            if (f.kind == PH_ERROR && f.status == PH_ETIMEDOUT)
                a->timeout_errors++;
        if (n == 0)
            return 0;
    }
    return 0;
}

/* One cycle of the connect-and-close kind: clients connections, every
 * other one sending three bytes of a header before it closes. */
static void abuse_connect_close(bench *b, abuse_run *a)
{
    static const uint8_t part[3] = {0x40, 0, 0};
    uint32_t i;
    bconn c;

    for (i = 0; i < b->clients; i++) {
        if (bconn_open(b, 0, &c) < 0) {
            abuse_failed(a, c.why);
        } else {
            if (i % 2)
                raw_write_all(&c, part, sizeof part, b->o->timeout_ms);
            a->conns++;
        }
        bconn_close(&c);
    }
}

/* A client that never reads writes requests while the pipe takes them (a
 * few writes per look). -1 once a write fails: the hub dropped it. */
static int nonreader_write(bconn *x, const uint8_t *chunk, size_t len)
{
    int k, r;

    for (k = 0; k < 8 && !x->writing; k++)
        if ((r = raw_write(x, chunk, (DWORD)len)) < 0)
            return -1;
    return 0;
}

/* One cycle of the other kinds: open clients connections, misbehave, and
 * wait until the hub has dropped each (or the timeout passed). */
static void abuse_cycle(bench *b, abuse_run *a)
{
    bconn *c = calloc(b->clients, sizeof *c);
    ULONGLONG *since = calloc(b->clients, sizeof *since);
    uint8_t *chunk = NULL;
    ph_buf slow = {0};
    size_t chunk_len = 0, slow_at = 0;
    uint32_t i, open = 0, left;
    ULONGLONG deadline, next_byte = 0, now;
    int reads = b->kind != ABUSE_NONREADER;

    if (c == NULL || since == NULL) {
        abuse_failed(a, "out of memory");
        goto done;
    }
    if (b->kind == ABUSE_SLOWLORIS) {
        /* A frame that will never be finished: its header and route now,
         * then one byte of payload every BENCH_SLOW_BYTE_MS. */
        uint8_t *p = calloc(1, BENCH_SLOW_PAYLOAD);
        int bad = p == NULL || put_frame(&slow, PH_REQUEST, BENCH_ROUTE, 1, p,
                                         BENCH_SLOW_PAYLOAD) < 0;
        free(p);
        if (bad) {
            abuse_failed(a, "out of memory");
            goto done;
        }
        slow_at = PH_FRAME_HEADER_LEN + BENCH_ROUTE_LEN;
    } else if (b->kind == ABUSE_NONREADER) {
        ph_buf t = {0};
        uint8_t *p = calloc(1, BENCH_NONREAD_CHUNK);
        int bad = p == NULL;
        for (i = 0; !bad && t.len < BENCH_NONREAD_CHUNK; i++)
            bad = put_frame(&t, PH_REQUEST, BENCH_ROUTE, i + 1, p, 4096) < 0;
        free(p);
        if (bad) {
            ph_buf_free(&t);
            abuse_failed(a, "out of memory");
            goto done;
        }
        chunk = t.data;
        chunk_len = t.len;
    }
    for (open = 0; open < b->clients; open++) {
        bconn *x = &c[open];
        if (bconn_open(b, 0, x) < 0) {
            abuse_failed(a, x->why);
            goto done;
        }
        /* All but the silent kind first send a whole frame, so the first
         * frame deadline is not what drops them. */
        if (b->kind != ABUSE_SILENT &&
            raw_call(x, "sys.ping", "", 0, b->o->timeout_ms, NULL, 0) < 0) {
            abuse_failed(a, x->why);
            open++;
            goto done;
        }
        if (b->kind == ABUSE_SLOWLORIS &&
            raw_write_all(x, slow.data, slow_at, b->o->timeout_ms) < 0) {
            abuse_failed(a, x->why);
            open++;
            goto done;
        }
        since[open] = GetTickCount64();
        a->conns++;
    }
    deadline = GetTickCount64() + b->o->timeout_ms;
    next_byte = GetTickCount64() + BENCH_SLOW_BYTE_MS;
    for (;;) {
        now = GetTickCount64();
        left = 0;
        for (i = 0; i < open; i++) {
            bconn *x = &c[i];
            int closed;

            if (since[i] == 0)
                continue;
            /* Closed, or it keeps misbehaving and a write fails: closed. */
            closed = abuse_closed(x, reads, a) ||
                     (b->kind == ABUSE_NONREADER &&
                      nonreader_write(x, chunk, chunk_len) < 0) ||
                     (b->kind == ABUSE_SLOWLORIS && now >= next_byte &&
                      slow_at < slow.len && !x->writing &&
                      raw_write(x, slow.data + slow_at, 1) < 0);
            if (!closed) {
                left++;
                continue;
            }
            a->dropped++;
            samples_add(&a->drop_ms, now - since[i]);
            since[i] = 0;
        }
        if (b->kind == ABUSE_SLOWLORIS && now >= next_byte) {
            next_byte = now + BENCH_SLOW_BYTE_MS;
            if (slow_at < slow.len - 1)
                slow_at++;
        }
        if (left == 0)
            break;
        if (now >= deadline) {
            a->not_dropped += left;
            abuse_failed(a, "a client was not dropped in time");
            break;
        }
        Sleep(BENCH_ABUSE_POLL_MS);
    }
done:
    for (i = 0; c != NULL && i < open; i++)
        bconn_close(&c[i]);
    free(c);
    free(since);
    free(chunk);
    ph_buf_free(&slow);
}

/* One cycle of the over-the-limit kind: connections, each answering one
 * sys.ping, until the hub says BUSY; then all close. */
static void abuse_overlimit(bench *b, abuse_run *a)
{
    bconn *c = calloc(b->clients, sizeof *c);
    uint32_t open;

    if (c == NULL) {
        abuse_failed(a, "out of memory");
        return;
    }
    for (open = 0; open < b->clients; open++) {
        bconn *x = &c[open];
        if (bconn_open(b, 0, x) < 0) {
            abuse_failed(a, x->why);
            break;
        }
        if (raw_call(x, "sys.ping", "", 0, b->o->timeout_ms, NULL, 0) == 0) {
            a->conns++;
            continue;
        }
        open++;
        if (x->last_status == PH_EBUSY)
            a->busy++;
        else
            abuse_failed(a, x->why);
        break;
    }
    if (open == b->clients)
        abuse_failed(a, "no BUSY within -c connections");
    while (open-- > 0)
        bconn_close(&c[open]);
    free(c);
}

static int bench_abuse(bench *b)
{
    abuse_run a;
    uint64_t cycles = 0;
    LONGLONG t;
    double secs;

    memset(&a, 0, sizeof a);
    snprintf(b->extra, sizeof b->extra, " kind=%s", abuse_names[b->kind]);
    clock_start(b);
    do {
        if (b->kind == ABUSE_CONNECT_CLOSE)
            abuse_connect_close(b, &a);
        else if (b->kind == ABUSE_OVERLIMIT)
            abuse_overlimit(b, &a);
        else
            abuse_cycle(b, &a);
        cycles++;
    } while (a.failures == 0 &&
             (b->count ? cycles < b->count : now_ticks() < b->end));
    t = now_ticks();
    secs = ticks_to_s(b, t - b->start);
    print_head(b);
    printf(" cycles=%llu conns=%llu secs=%.3f conns_per_s=%.0f dropped=%llu "
           "not_dropped=%llu timeout_errors=%llu busy=%llu failures=%llu",
           (unsigned long long)cycles, (unsigned long long)a.conns, secs,
           a.conns / secs, (unsigned long long)a.dropped,
           (unsigned long long)a.not_dropped,
           (unsigned long long)a.timeout_errors, (unsigned long long)a.busy,
           (unsigned long long)a.failures);
    if (a.drop_ms.n > 0) {
        qsort(a.drop_ms.us, a.drop_ms.n, sizeof *a.drop_ms.us, cmp_u32);
        printf(" median_drop_ms=%u max_drop_ms=%u",
               (unsigned)a.drop_ms.us[a.drop_ms.n / 2],
               (unsigned)a.drop_ms.us[a.drop_ms.n - 1]);
    }
    putchar('\n');
    if (a.failures)
        fprintf(stderr, "pipehub: bench: abuse %s: %s\n",
                abuse_names[b->kind], a.why);
    free(a.drop_ms.us);
    return a.failures ? EXIT_NO_ANSWER : EXIT_OK;
}

static int bench_value(int argc, char **argv, int *i, const char *flag,
                       uint32_t min, uint32_t max, uint32_t *out)
{
    if (strcmp(argv[*i], flag) != 0)
        return 0;
    if (*i + 1 >= argc || !ph_cli_parse_u32(argv[*i + 1], min, max, out)) {
        fprintf(stderr, "pipehub: bench: %s wants a number from %u to %u\n",
                flag, (unsigned)min, (unsigned)max);
        return -1;
    }
    (*i)++;
    return 1;
}

/* The floor under any transport: copying the payload once in memory, the
 * same bytes for the same time, so a run can print how far a transport is
 * from it. Touches no server. */
static int bench_memcpy(bench *b)
{
    uint8_t *dst = malloc(b->size);
    LARGE_INTEGER now;
    uint64_t n = 0;
    double secs;

    if (dst == NULL)
        return EXIT_NO_ANSWER;
    clock_start(b);
    do {
        memcpy(dst, b->msg, b->size);
        /* Keep the copy: the next one reads what this one wrote. */
        b->msg[n % b->size] ^= dst[(n * 7) % b->size];
        n++;
        QueryPerformanceCounter(&now);
    } while (b->count ? n < b->count
                      : ticks_to_s(b, now.QuadPart - b->start) < b->seconds);
    secs = ticks_to_s(b, now.QuadPart - b->start);
    printf("bench mode=memcpy size=%u msgs=%llu secs=%.3f msgs_per_s=%.0f "
           "us_per_msg=%.1f\n",
           (unsigned)b->size, (unsigned long long)n, secs, n / secs,
           secs * 1e6 / (double)n);
    free(dst);
    return EXIT_OK;
}

int ph_cli_bench(const cli *o, int argc, char **argv)
{
    static const struct {
        const char *name;
        bench_mode mode;
        int (*run)(bench *b);
    } modes[] = {
        {"pingpong", BENCH_PINGPONG, bench_roundtrips},
        {"clients", BENCH_PINGPONG, bench_roundtrips},
        {"big", BENCH_PINGPONG, bench_roundtrips},
        {"pipeline", BENCH_PIPELINE, bench_pipeline},
        {"async", BENCH_ASYNC, bench_async},
        {"churn", BENCH_CHURN, bench_churn},
        {"idle", BENCH_IDLE, bench_idle},
        {"routed", BENCH_ROUTED, bench_routed},
        {"routed-async", BENCH_ROUTED_ASYNC, bench_routed},
        {"provide", BENCH_PROVIDE, bench_provide},
        {"fanout", BENCH_FANOUT, bench_fanout},
        {"idle-sub", BENCH_IDLE_SUB, bench_idle_sub},
        {"abuse", BENCH_ABUSE, bench_abuse},
        {"memcpy", BENCH_PINGPONG, bench_memcpy},
    };
    /* -c for abuse, per kind: connections per cycle. */
    static const uint32_t abuse_clients[] = {100, 10, 5, 5, 1000};
    bench b;
    size_t m, k;
    int i, r, rc;
    uint32_t clients = 0, size = 0, pack = 0, window = 0;
    const char *route = NULL;

    if (argc < 1)
        return ph_cli_usage_error("%s", "bench needs a MODE");
    memset(&b, 0, sizeof b);
    b.o = o;
    for (m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        if (strcmp(argv[0], modes[m].name) == 0)
            break;
    }
    if (m == sizeof modes / sizeof modes[0])
        return ph_cli_usage_error("unknown bench mode '%s'", argv[0]);
    b.mode = modes[m].mode;
    b.name = modes[m].name;
    b.seconds = BENCH_SECONDS_DEFAULT;
    b.hold = BENCH_HOLD_DEFAULT;
    b.route = BENCH_ROUTE;
    b.providers = 1;
    b.provider_lib = 1;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--raw") == 0) {
            b.raw = 1;
            continue;
        }
        if (strcmp(argv[i], "--no-lane") == 0) {
            b.no_lane = 1;
            continue;
        }
        if (strcmp(argv[i], "--provider") == 0 && i + 1 < argc &&
            (strcmp(argv[i + 1], "raw") == 0 ||
             strcmp(argv[i + 1], "lib") == 0)) {
            b.provider_lib = strcmp(argv[++i], "lib") == 0;
            continue;
        }
        if (strcmp(argv[i], "--route") == 0 && i + 1 < argc) {
            route = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc) {
            for (k = 0; k < sizeof abuse_names / sizeof abuse_names[0]; k++)
                if (strcmp(argv[i + 1], abuse_names[k]) == 0)
                    break;
            if (k == sizeof abuse_names / sizeof abuse_names[0])
                return ph_cli_usage_error("unknown abuse kind '%s'",
                                          argv[i + 1]);
            b.kind = (abuse_kind)k;
            i++;
            continue;
        }
        if ((r = bench_value(argc, argv, &i, "-c", 1, BENCH_CLIENTS_MAX,
                             &clients)) == 0 &&
            (r = bench_value(argc, argv, &i, "-d", 1, 3600, &b.seconds)) == 0 &&
            (r = bench_value(argc, argv, &i, "-n", 1, UINT32_MAX, &b.count)) ==
                0 &&
            (r = bench_value(argc, argv, &i, "-s", 1, BENCH_SIZE_MAX, &size)) ==
                0 &&
            (r = bench_value(argc, argv, &i, "--pack", 1, 65536, &pack)) ==
                0 &&
            (r = bench_value(argc, argv, &i, "--window", 1, 1000000,
                             &window)) == 0 &&
            (r = bench_value(argc, argv, &i, "--hold", 0, 3600, &b.hold)) ==
                0 &&
            (r = bench_value(argc, argv, &i, "--providers", 1, 64,
                             &b.providers)) == 0 &&
            (r = bench_value(argc, argv, &i, "--stall", 0, 64, &b.stall)) ==
                0)
            return ph_cli_usage_error("unknown bench option '%s'", argv[i]);
        if (r < 0)
            return EXIT_USAGE;
    }
    if (b.raw && b.mode == BENCH_ASYNC)
        return ph_cli_usage_error("%s", "bench async uses the library's "
                                        "frames; it has no --raw form");
    if (b.raw && b.mode >= BENCH_ROUTED)
        return ph_cli_usage_error("bench %s measures the hub; it has no --raw "
                                  "form", b.name);
    if (route != NULL) {
        if (b.raw || (b.mode != BENCH_PINGPONG && b.mode != BENCH_ASYNC &&
                      b.mode != BENCH_PROVIDE))
            return ph_cli_usage_error("bench %s: --route is for pingpong, "
                                      "async and provide", b.name);
        if (!ph_route_valid(route, strlen(route)))
            return ph_cli_usage_error("bad route '%s'", route);
        b.route = route;
        snprintf(b.extra, sizeof b.extra, " route=%s", route);
    } else if (b.mode == BENCH_PROVIDE) {
        return ph_cli_usage_error("%s", "bench provide needs --route");
    }
    b.pack = pack                         ? pack
             : b.mode == BENCH_FANOUT     ? BENCH_FAN_PACK
                                          : 1;
    b.window = window                             ? window
               : b.mode == BENCH_FANOUT           ? BENCH_FAN_WINDOW
               : b.mode == BENCH_ROUTED_ASYNC     ? BENCH_ROUTED_WINDOW
                                                  : BENCH_WINDOW_DEFAULT;
    b.size = size                         ? size
             : strcmp(b.name, "big") == 0 ||
                       strcmp(b.name, "memcpy") == 0
                 ? BENCH_BIG_SIZE
                                          : BENCH_SIZE_DEFAULT;
    b.clients = clients                          ? clients
                : strcmp(b.name, "clients") == 0 ? BENCH_CLIENTS_DEFAULT
                : b.mode == BENCH_IDLE           ? BENCH_IDLE_DEFAULT
                : b.mode == BENCH_IDLE_SUB       ? BENCH_IDLE_DEFAULT
                : b.mode == BENCH_FANOUT         ? BENCH_FAN_SUBS
                : b.mode == BENCH_ABUSE          ? abuse_clients[b.kind]
                                                 : 1;
    if (b.mode == BENCH_FANOUT && (b.clients + b.stall > BENCH_CLIENTS_MAX))
        return ph_cli_usage_error("%s", "bench fanout: too many subscribers");
    if (b.window < b.pack)
        b.window = b.pack;
    QueryPerformanceFrequency(&b.freq);
    b.msg = malloc(b.size);
    b.go = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (b.msg == NULL || b.go == NULL) {
        fputs("pipehub: out of memory\n", stderr);
        return EXIT_NO_ANSWER;
    }
    for (k = 0; k < b.size; k++)
        b.msg[k] = (uint8_t)('a' + k % 26);
    rc = modes[m].run(&b);
    fflush(stdout);
    CloseHandle(b.go);
    free(b.msg);
    return rc;
}
