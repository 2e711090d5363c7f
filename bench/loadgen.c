/* pipehub bench: the load generator of bench/run.sh, linked into
 * pipehub.exe (client/cli_main.c dispatches "bench" here; the modes and
 * options are in its usage text).
 *
 * Each run prints one line, "bench mode=... key=value ...", that scripts can
 * parse. Framed runs talk to pipehubd (sys.echo); --raw runs send plain
 * bytes and expect them echoed, for bench/baseline.exe. Both use the same
 * calls in the same order (overlapped WriteFile, overlapped ReadFile, one
 * wait), so the client's own cost is the same on both sides of a
 * comparison. */
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
    BENCH_IDLE      /* open -c connections, hold, check each answers */
} bench_mode;

typedef struct bench {
    const cli *o;
    bench_mode mode;
    const char *name; /* the mode's name as given */
    int raw;          /* --raw: plain echo bytes, no frames */
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
    printf("bench mode=%s proto=%s clients=%u size=%u", b->name,
           b->raw ? "raw" : "framed", (unsigned)b->clients, (unsigned)b->size);
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
            err = ph_client_connect(b->o->path, b->o->timeout_ms, &c->lib);
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

    err = ph_client_call(c->lib, BENCH_ROUTE, b->msg, b->size, b->o->timeout_ms,
                         &r);
    if (err != PH_OK)
        return bfail(c, "sys.echo: %s (%d)", ph_strerror(err), err);
    if (r.kind != PH_REPLY || r.payload_len != b->size ||
        memcmp(r.payload, b->msg, b->size) != 0)
        rc = bfail(c, "sys.echo: wrong answer (kind %u, %u bytes)",
                   (unsigned)r.kind, (unsigned)r.payload_len);
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
        samples_add(&w->lat,
                    (uint64_t)((t1 - t0) * 1000000 / b->freq.QuadPart));
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
    b->start = now_ticks();
    b->end = b->start + (LONGLONG)b->seconds * b->freq.QuadPart;
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

/* Replies received: whole messages so far. */
static int pipeline_consume(bench *b, bconn *c, DWORD n, uint64_t *bytes,
                            uint64_t *msgs)
{
    size_t off = 0, used;
    ph_frame f;
    ph_err err;

    if (b->raw) {
        *bytes += n;
        *msgs = *bytes / b->size;
        return 0;
    }
    while (off < n) {
        err = ph_decoder_next(&c->dec, c->in + off, n - off, &used, &f);
        if (err == PH_EAGAIN)
            break;
        if (err != PH_OK)
            return bfail(c, "bad reply stream: %s", ph_strerror(err));
        off += used;
        if (f.kind != PH_REPLY || f.payload_len != b->size)
            return bfail(c, "wrong reply (kind %u, %u bytes)", (unsigned)f.kind,
                         (unsigned)f.payload_len);
        (*msgs)++;
    }
    *bytes += n;
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

static int bench_pipeline(bench *b)
{
    bconn c;
    ph_buf chunk = {0};
    size_t one;
    uint64_t sent = 0, got = 0, bytes = 0, writes = 0, reads = 0;
    uint32_t next_id = 1, i;
    LONGLONG t;
    double secs;
    int stopping = 0, r, rc = EXIT_NO_ANSWER;
    DWORD n = 0;

    if (bconn_open(b, 0, &c) < 0)
        goto fail;
    /* The chunk: pack messages, written again and again (framed: with fresh
     * ids each time). */
    for (i = 0; i < b->pack; i++) {
        ph_frame f;

        memset(&f, 0, sizeof f);
        f.kind = PH_REQUEST;
        f.route = BENCH_ROUTE;
        f.route_len = BENCH_ROUTE_LEN;
        f.payload = b->msg;
        f.payload_len = b->size;
        if ((b->raw ? ph_buf_append(&chunk, b->msg, b->size)
                    : ph_frame_append(&chunk, &f)) != PH_OK) {
            bfail(&c, "out of memory");
            goto fail;
        }
    }
    one = chunk.len / b->pack;
    b->start = now_ticks();
    b->end = b->start + (LONGLONG)b->seconds * b->freq.QuadPart;
    for (;;) {
        int progress = 0;

        if (!stopping && ((b->count && sent >= b->count) ||
                          (!b->count && now_ticks() >= b->end)))
            stopping = 1;
        r = raw_reap(&c, &n);
        if (r < 0)
            goto fail;
        if (r == 1) {
            reads++;
            if (pipeline_consume(b, &c, n, &bytes, &got) < 0 ||
                raw_resize(&c, n, pipeline_rest(b, &c, bytes)) < 0)
                goto fail;
            progress = 1;
        } else if (r == 2) {
            progress = 1;
        }
        if (!c.writing && !stopping && sent - got + b->pack <= b->window) {
            if (!b->raw)
                for (i = 0; i < b->pack; i++)
                    ph_put_u32le(chunk.data + i * one + 8, next_id++);
            if ((r = raw_write(&c, chunk.data, (DWORD)chunk.len)) < 0)
                goto fail;
            sent += b->pack;
            writes++;
            progress = 1;
        }
        if (!c.reading && got < sent) {
            if ((r = raw_read(&c, &n)) < 0)
                goto fail;
            if (r == 1) {
                reads++;
                if (pipeline_consume(b, &c, n, &bytes, &got) < 0 ||
                    raw_resize(&c, n, pipeline_rest(b, &c, bytes)) < 0)
                    goto fail;
                progress = 1;
            }
        }
        if (stopping && got >= sent && !c.writing)
            break;
        if (!progress && raw_wait(&c, b->o->timeout_ms) < 0)
            goto fail;
    }
    t = now_ticks();
    secs = ticks_to_s(b, t - b->start);
    print_head(b);
    printf(" pack=%u window=%u msgs=%llu secs=%.3f msgs_per_s=%.0f "
           "writes=%llu reads=%llu\n",
           (unsigned)b->pack, (unsigned)b->window, (unsigned long long)got,
           secs, got / secs, (unsigned long long)writes,
           (unsigned long long)reads);
    rc = EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "pipehub: bench: %s\n", c.why);
done:
    bconn_close(&c);
    ph_buf_free(&chunk);
    return rc;
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
        a->first_err = err != PH_OK ? err : PH_EINTERNAL;
}

static int bench_async(bench *b)
{
    async_run a;
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
    b->start = now_ticks();
    b->end = b->start + (LONGLONG)b->seconds * b->freq.QuadPart;
    for (;;) {
        while (!stopping && ph_client_pending(c.lib) < b->window) {
            err = ph_client_call_async(c.lib, BENCH_ROUTE, b->msg, b->size,
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

    b->start = now_ticks();
    b->end = b->start + (LONGLONG)b->seconds * b->freq.QuadPart;
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
        samples_add(&lat, (uint64_t)((t1 - t0) * 1000000 / b->freq.QuadPart));
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
    t0 = now_ticks();
    for (i = 0; i < b->clients; i++) {
        if (bconn_open(b, !b->raw, &c[i]) < 0 || echo(b, &c[i]) < 0) {
            fprintf(stderr, "pipehub: bench: connection %u: %s\n", (unsigned)i,
                    c[i].why);
            opened = i + 1;
            goto done;
        }
    }
    opened = b->clients;
    open_s = ticks_to_s(b, now_ticks() - t0);
    /* The line bench/run.sh waits for before it reads the server's memory. */
    print_head(b);
    printf(" phase=held open_s=%.3f hold_s=%u\n", open_s, (unsigned)b->hold);
    fflush(stdout);
    Sleep(b->hold * 1000u);
    for (i = 0; i < b->clients; i++) {
        t0 = now_ticks();
        if (echo(b, &c[i]) < 0) {
            fprintf(stderr, "pipehub: bench: held connection %u: %s\n",
                    (unsigned)i, c[i].why);
            continue;
        }
        t1 = now_ticks();
        answered++;
        samples_add(&lat, (uint64_t)((t1 - t0) * 1000000 / b->freq.QuadPart));
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

int ph_cli_bench(const cli *o, int argc, char **argv)
{
    static const struct {
        const char *name;
        bench_mode mode;
    } modes[] = {
        {"pingpong", BENCH_PINGPONG}, {"clients", BENCH_PINGPONG},
        {"big", BENCH_PINGPONG},      {"pipeline", BENCH_PIPELINE},
        {"async", BENCH_ASYNC},       {"churn", BENCH_CHURN},
        {"idle", BENCH_IDLE},
    };
    bench b;
    size_t k;
    int i, r, rc;
    uint32_t clients = 0, size = 0;

    if (argc < 1)
        return ph_cli_usage_error("%s", "bench needs a MODE");
    memset(&b, 0, sizeof b);
    b.o = o;
    for (k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        if (strcmp(argv[0], modes[k].name) == 0)
            break;
    }
    if (k == sizeof modes / sizeof modes[0])
        return ph_cli_usage_error("unknown bench mode '%s'", argv[0]);
    b.mode = modes[k].mode;
    b.name = modes[k].name;
    b.seconds = BENCH_SECONDS_DEFAULT;
    b.pack = 1;
    b.window = BENCH_WINDOW_DEFAULT;
    b.hold = BENCH_HOLD_DEFAULT;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--raw") == 0) {
            b.raw = 1;
            continue;
        }
        if ((r = bench_value(argc, argv, &i, "-c", 1, BENCH_CLIENTS_MAX,
                             &clients)) == 0 &&
            (r = bench_value(argc, argv, &i, "-d", 1, 3600, &b.seconds)) == 0 &&
            (r = bench_value(argc, argv, &i, "-n", 1, UINT32_MAX, &b.count)) ==
                0 &&
            (r = bench_value(argc, argv, &i, "-s", 1, BENCH_SIZE_MAX, &size)) ==
                0 &&
            (r = bench_value(argc, argv, &i, "--pack", 1, 65536, &b.pack)) ==
                0 &&
            (r = bench_value(argc, argv, &i, "--window", 1, 1000000,
                             &b.window)) == 0 &&
            (r = bench_value(argc, argv, &i, "--hold", 0, 3600, &b.hold)) == 0)
            return ph_cli_usage_error("unknown bench option '%s'", argv[i]);
        if (r < 0)
            return EXIT_USAGE;
    }
    if (b.raw && b.mode == BENCH_ASYNC)
        return ph_cli_usage_error("%s", "bench async uses the library's "
                                        "frames; it has no --raw form");
    b.size = size                         ? size
             : strcmp(b.name, "big") == 0 ? BENCH_BIG_SIZE
                                          : BENCH_SIZE_DEFAULT;
    b.clients = clients                          ? clients
                : strcmp(b.name, "clients") == 0 ? BENCH_CLIENTS_DEFAULT
                : b.mode == BENCH_IDLE           ? BENCH_IDLE_DEFAULT
                                                 : 1;
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
    switch (b.mode) {
    case BENCH_PINGPONG:
        rc = bench_roundtrips(&b);
        break;
    case BENCH_PIPELINE:
        rc = bench_pipeline(&b);
        break;
    case BENCH_ASYNC:
        rc = bench_async(&b);
        break;
    case BENCH_CHURN:
        rc = bench_churn(&b);
        break;
    default:
        rc = bench_idle(&b);
        break;
    }
    fflush(stdout);
    CloseHandle(b.go);
    free(b.msg);
    return rc;
}
