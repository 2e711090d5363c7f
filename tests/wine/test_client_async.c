/* The client library's asynchronous calls (client/pipehub.h), against a real
 * pipehubd and against a scripted fake server in this process.
 *
 *   test_client_async PATH_TO_PIPEHUBD_EXE
 *
 * Against pipehubd: 1000 pipelined sys.echo calls with distinct payloads
 * (each callback exactly once, with its own payload, in issue order), large
 * payloads, calls queued from inside callbacks, blocking calls mixed in, the
 * daemon killed with calls in flight, and close with calls outstanding.
 * Against the fake server (which answers exactly when and how the test
 * says): call timeouts and late answers, replies split byte by byte, and an
 * id-0 ERROR followed by a close.
 *
 * Every wait is bounded, so a broken library fails a check instead of
 * hanging; the daemon runs in a job object that dies with this process. */
#include <windows.h>

#include "hubtest.h"
#include "pipehub.h"

#define WAIT_MS            10000u /* any single wait of the test */
#define PIPELINED_CALLS    1000

/* ---- what each callback saw ------------------------------------------------
 */

typedef struct rec {
    const uint8_t *sent; /* the payload, len bytes (not owned) */
    uint32_t len;
    int calls; /* times the callback ran: must end as 1 */
    int order; /* g_order when it ran */
    ph_err err;
    uint8_t kind;
    uint32_t status;
    int match; /* the reply payload equals sent */
} rec;

static int g_order;

static void on_done(void *ctx, ph_err err, const ph_frame *f)
{
    rec *r = ctx;

    r->calls++;
    r->order = g_order++;
    r->err = err;
    if (err == PH_OK) {
        r->kind = f->kind;
        r->status = f->status;
        r->match = f->payload_len == r->len &&
                   (r->len == 0 || memcmp(f->payload, r->sent, r->len) == 0);
    }
}

/* Distinct payloads: "call N:" then (N * 37) % 500 pseudo-random bytes. */
static uint8_t *make_payload(int n, uint32_t *len)
{
    uint32_t extra = (uint32_t)(n * 37) % 500, i, x = (uint32_t)n * 2654435761u;
    char head[32];
    int h = snprintf(head, sizeof head, "call %d:", n);
    uint8_t *p = malloc((size_t)h + extra);

    if (p == NULL)
        return NULL;
    memcpy(p, head, (size_t)h);
    for (i = 0; i < extra; i++) {
        x = x * 1103515245u + 12345u;
        p[h + i] = (uint8_t)(x >> 16);
    }
    *len = (uint32_t)h + extra;
    return p;
}

/* ---- cases against pipehubd ------------------------------------------------
 */

static void pipelined_echo(void)
{
    static rec recs[PIPELINED_CALLS];
    static uint8_t *payloads[PIPELINED_CALLS];
    ht_daemon *d;
    ph_client *c = NULL;
    size_t n = 0;
    ph_err err;
    int i;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    memset(recs, 0, sizeof recs);
    g_order = 0;
    for (i = 0; i < PIPELINED_CALLS; i++) {
        /* Every 100th call goes to a route nobody serves: its ERROR must
         * reach its own callback, between the others. */
        const char *route = i % 100 == 99 ? "no.such.route" : "sys.echo";

        payloads[i] = make_payload(i, &recs[i].len);
        CHECK(payloads[i] != NULL);
        recs[i].sent = payloads[i];
        err = ph_client_call_async(c, route, payloads[i], recs[i].len, WAIT_MS,
                                   on_done, &recs[i]);
        CHECK_EQ(err, PH_OK);
    }
    CHECK_EQ(ph_client_pending(c), PIPELINED_CALLS);
    /* Nothing is sent before a poll, so nothing can be answered yet. */
    CHECK_EQ(g_order, 0);
    /* One poll that must not wait: it writes the queue and may read. */
    CHECK_EQ(ph_client_poll(c, 0, &n), PH_OK);
    CHECK_EQ(ph_client_pending(c) + n, PIPELINED_CALLS);
    CHECK_EQ(ph_client_flush(c, 3 * WAIT_MS), PH_OK);
    CHECK_EQ(ph_client_pending(c), 0);
    for (i = 0; i < PIPELINED_CALLS; i++) {
        CHECK_EQ(recs[i].calls, 1);
        CHECK_EQ(recs[i].order, i);
        CHECK_EQ(recs[i].err, PH_OK);
        if (i % 100 == 99) {
            CHECK_EQ(recs[i].kind, PH_ERROR);
            CHECK_EQ(recs[i].status, PH_ENOROUTE);
        } else {
            CHECK_EQ(recs[i].kind, PH_REPLY);
            CHECK_EQ(recs[i].match, 1);
        }
        free(payloads[i]);
    }
    ht_say("%d pipelined calls: each callback once, in order, right payload",
           PIPELINED_CALLS);
    /* Polling with nothing outstanding returns at once. */
    CHECK_EQ(ph_client_poll(c, WAIT_MS, &n), PH_OK);
    CHECK_EQ(n, 0);
    ph_client_close(c);
    CHECK_ALIVE(d);
    ht_daemon_stop(d);
}

static void large_payloads(void)
{
    enum { N = 4, BIG = 300 * 1024 };
    static rec recs[N];
    uint8_t *p[N];
    ht_daemon *d;
    ph_client *c = NULL;
    ph_reply r;
    int i, j;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    memset(recs, 0, sizeof recs);
    g_order = 0;
    /* Larger than the pipe's buffer, so the write pends while replies come
     * back: writing and reading must go on at once. */
    for (i = 0; i < N; i++) {
        p[i] = malloc(BIG + i);
        CHECK(p[i] != NULL);
        for (j = 0; j < BIG + i; j++)
            p[i][j] = (uint8_t)(j * 7 + i);
        recs[i].sent = p[i];
        recs[i].len = BIG + i;
        CHECK_EQ(ph_client_call_async(c, "sys.echo", p[i], BIG + i, WAIT_MS,
                                      on_done, &recs[i]),
                 PH_OK);
    }
    /* A blocking call behind them: it waits for its own answer, and the
     * callbacks of the calls before it run inside it. */
    memset(&r, 0, sizeof r);
    CHECK_EQ(ph_client_call(c, "sys.echo", "tail", 4, WAIT_MS, &r), PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.payload_len, 4);
    CHECK_MEM(r.payload, "tail", 4);
    ph_reply_free(&r);
    for (i = 0; i < N; i++) {
        CHECK_EQ(recs[i].calls, 1);
        CHECK_EQ(recs[i].order, i);
        CHECK_EQ(recs[i].err, PH_OK);
        CHECK_EQ(recs[i].kind, PH_REPLY);
        CHECK_EQ(recs[i].match, 1);
        free(p[i]);
    }
    ht_say("%d x %d KiB pipelined, then a blocking call: all answered in order",
           N, BIG / 1024);
    ph_client_close(c);
    ht_daemon_stop(d);
}

/* A callback that queues the next call, until CHAIN calls have run. It also
 * tries the functions a callback may not call. */
#define CHAIN 200
typedef struct chain {
    ph_client *c;
    int done, bad, reentry_refused;
    char payload[16];
} chain;

static void on_chain(void *ctx, ph_err err, const ph_frame *f)
{
    chain *ch = ctx;
    char want[16];
    ph_reply r;

    snprintf(want, sizeof want, "link %d", ch->done);
    if (err != PH_OK || f->kind != PH_REPLY || f->payload_len != strlen(want) ||
        memcmp(f->payload, want, f->payload_len) != 0)
        ch->bad++;
    ch->done++;
    if (ph_client_poll(ch->c, 0, NULL) == PH_EINVAL &&
        ph_client_flush(ch->c, 0) == PH_EINVAL &&
        ph_client_call(ch->c, "sys.ping", NULL, 0, 10, &r) == PH_EINVAL)
        ch->reentry_refused++;
    if (ch->done < CHAIN) {
        snprintf(ch->payload, sizeof ch->payload, "link %d", ch->done);
        if (ph_client_call_async(ch->c, "sys.echo", ch->payload,
                                 strlen(ch->payload), WAIT_MS, on_chain,
                                 ch) != PH_OK)
            ch->bad++;
    }
}

static void calls_from_callbacks(void)
{
    ht_daemon *d;
    chain ch;

    CHECK_DAEMON_INI(NULL, d);
    memset(&ch, 0, sizeof ch);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &ch.c), PH_OK);
    snprintf(ch.payload, sizeof ch.payload, "link 0");
    CHECK_EQ(ph_client_call_async(ch.c, "sys.echo", ch.payload,
                                  strlen(ch.payload), WAIT_MS, on_chain, &ch),
             PH_OK);
    CHECK_EQ(ph_client_flush(ch.c, 3 * WAIT_MS), PH_OK);
    CHECK_EQ(ch.done, CHAIN);
    CHECK_EQ(ch.bad, 0);
    CHECK_EQ(ch.reentry_refused, CHAIN);
    ht_say(
        "%d calls each queued by the previous callback; poll, flush and call "
        "refused inside callbacks",
        CHAIN);
    ph_client_close(ch.c);
    ht_daemon_stop(d);
}

/* The daemon is killed with calls in flight. answered_first: wait until
 * some calls have been answered before the kill; otherwise kill as soon as
 * the calls are written. Either way LATE more calls are queued after the
 * kill: the client accepts them (it does not know yet) and they can never be
 * answered. (Without them the first case could see every answer: the daemon
 * can answer all 1000 before it dies, and then nothing is left to fail.) */
#define LATE 100
static void server_dies(int answered_first)
{
    static rec recs[PIPELINED_CALLS + LATE];
    static uint8_t *payloads[PIPELINED_CALLS + LATE];
    int total = PIPELINED_CALLS + LATE;
    ht_daemon *d;
    ph_client *c = NULL;
    int i, answered = 0, failed = 0;
    size_t n = 0;
    rec extra;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    memset(recs, 0, sizeof recs);
    g_order = 0;
    for (i = 0; i < total; i++) {
        payloads[i] = make_payload(i, &recs[i].len);
        CHECK(payloads[i] != NULL);
        recs[i].sent = payloads[i];
        if (i < PIPELINED_CALLS)
            CHECK_EQ(ph_client_call_async(c, "sys.echo", payloads[i],
                                          recs[i].len, WAIT_MS, on_done,
                                          &recs[i]),
                     PH_OK);
    }
    if (answered_first) {
        CHECK_EQ(ph_client_poll(c, WAIT_MS, &n), PH_OK);
        CHECK(n > 0);
    } else {
        /* Send them (the poll does not wait) and kill before the answers
         * are read. */
        CHECK_EQ(ph_client_poll(c, 0, NULL), PH_OK);
    }
    ht_daemon_stop(d);
    for (i = PIPELINED_CALLS; i < total; i++)
        CHECK_EQ(ph_client_call_async(c, "sys.echo", payloads[i], recs[i].len,
                                      WAIT_MS, on_done, &recs[i]),
                 PH_OK);
    /* Answers already in the pipe may still be read: those must be right;
     * every other call must get PH_ECLOSED, once. */
    CHECK_EQ(ph_client_flush(c, WAIT_MS), PH_ECLOSED);
    CHECK_EQ(ph_client_pending(c), 0);
    for (i = 0; i < total; i++) {
        CHECK_EQ(recs[i].calls, 1);
        CHECK_EQ(recs[i].order, i);
        if (recs[i].err == PH_OK) {
            /* Answers come in order: none after the first failure. */
            CHECK_EQ(failed, 0);
            CHECK_EQ(recs[i].kind, PH_REPLY);
            CHECK_EQ(recs[i].match, 1);
            answered++;
        } else {
            CHECK_EQ(recs[i].err, PH_ECLOSED);
            failed++;
        }
        free(payloads[i]);
    }
    CHECK(failed >= total - PIPELINED_CALLS);
    if (answered_first)
        CHECK((size_t)answered >= n);
    ht_say("daemon killed with %d calls outstanding (%zu answered before): %d "
           "answered in all, %d got PH_ECLOSED, each callback once",
           total, n, answered, failed);
    /* The client stays broken: new calls are refused (no callback), polls
     * report why. */
    memset(&extra, 0, sizeof extra);
    CHECK_EQ(
        ph_client_call_async(c, "sys.ping", NULL, 0, WAIT_MS, on_done, &extra),
        PH_ECLOSED);
    CHECK_EQ(ph_client_poll(c, 0, NULL), PH_ECLOSED);
    ph_client_close(c);
    CHECK_EQ(extra.calls, 0);
}

static void server_dies_mid_flight(void)
{
    server_dies(0);
}
static void server_dies_after_answers(void)
{
    server_dies(1);
}

static void close_with_calls_pending(void)
{
    enum { N = 50 };
    static rec recs[N];
    ht_daemon *d;
    ph_client *c = NULL;
    int i;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    memset(recs, 0, sizeof recs);
    g_order = 0;
    for (i = 0; i < N; i++)
        CHECK_EQ(ph_client_call_async(c, "sys.ping", NULL, 0, WAIT_MS, on_done,
                                      &recs[i]),
                 PH_OK);
    /* Half of them written, a read in flight, then close. */
    CHECK_EQ(ph_client_poll(c, 0, NULL), PH_OK);
    ph_client_close(c);
    for (i = 0; i < N; i++) {
        CHECK_EQ(recs[i].calls, 1);
        CHECK(recs[i].err == PH_OK || recs[i].err == PH_ECLOSED);
    }
    ht_say("close with %d calls outstanding: each callback once", N);
    CHECK_ALIVE(d);
    ht_daemon_stop(d);
}

/* ---- a fake server: answers exactly when and how the test says ------------
 */

typedef struct fake {
    HANDLE pipe; /* server end, overlapped */
    HANDLE event;
    OVERLAPPED ov;
    char path[PH_PIPE_PATH_MAX + 1];
    ph_decoder dec;
    uint8_t in[64 * 1024];
    size_t in_len, in_off;
} fake;

static void fake_close(fake *f)
{
    if (f->pipe != NULL && f->pipe != INVALID_HANDLE_VALUE) {
        CancelIoEx(f->pipe, NULL);
        CloseHandle(f->pipe);
    }
    if (f->event != NULL)
        CloseHandle(f->event);
    ph_decoder_free(&f->dec);
    f->pipe = NULL;
    f->event = NULL;
}

/* Finish the operation on f->ov that started with ok: -1 on failure or
 * timeout (the operation is then cancelled and waited for). */
static int fake_finish(fake *f, BOOL ok, DWORD *n)
{
    if (!ok && GetLastError() != ERROR_IO_PENDING)
        return -1;
    if (WaitForSingleObject(f->event, WAIT_MS) != WAIT_OBJECT_0)
        CancelIoEx(f->pipe, &f->ov);
    return GetOverlappedResult(f->pipe, &f->ov, n, TRUE) ? 0 : -1;
}

static void fake_reset_ov(fake *f)
{
    memset(&f->ov, 0, sizeof f->ov);
    f->ov.hEvent = f->event;
}

/* Create the instance and start listening; the client connects next. */
static int fake_listen(fake *f, const char *name)
{
    char bare[128];

    memset(f, 0, sizeof *f);
    snprintf(bare, sizeof bare, "ph-async-fake-%s-%lu", name,
             (unsigned long)GetCurrentProcessId());
    if (ph_pipe_path(bare, f->path, sizeof f->path) != PH_OK)
        return -1;
    ph_decoder_init(&f->dec, PH_MAX_FRAME_DEFAULT);
    f->event = CreateEventA(NULL, TRUE, FALSE, NULL);
    f->pipe =
        CreateNamedPipeA(f->path, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                         PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1,
                         64 * 1024, 64 * 1024, 0, NULL);
    if (f->event == NULL || f->pipe == INVALID_HANDLE_VALUE)
        return -1;
    fake_reset_ov(f);
    if (ConnectNamedPipe(f->pipe, &f->ov) ||
        GetLastError() == ERROR_PIPE_CONNECTED) {
        SetEvent(f->event);
        return 0;
    }
    return GetLastError() == ERROR_IO_PENDING ? 0 : -1;
}

static int fake_accept(fake *f)
{
    DWORD n;

    if (WaitForSingleObject(f->event, WAIT_MS) != WAIT_OBJECT_0)
        return -1;
    return GetOverlappedResult(f->pipe, &f->ov, &n, FALSE) ||
                   GetLastError() == ERROR_PIPE_CONNECTED
               ? 0
               : -1;
}

static int fake_write(fake *f, const void *data, size_t len)
{
    DWORD n = 0;

    fake_reset_ov(f);
    if (fake_finish(f, WriteFile(f->pipe, data, (DWORD)len, NULL, &f->ov),
                    &n) != 0)
        return -1;
    return n == len ? 0 : -1;
}

/* The next request the client sent. The client writes only inside its
 * polls, so the caller polls it first. */
static int fake_read_request(fake *f, ph_frame *out)
{
    for (;;) {
        size_t used = 0;
        DWORD n = 0;
        ph_err err;

        if (f->in_off < f->in_len) {
            err = ph_decoder_next(&f->dec, f->in + f->in_off,
                                  f->in_len - f->in_off, &used, out);
            f->in_off += used;
            if (err == PH_OK)
                return 0;
            if (err != PH_EAGAIN)
                return -1;
        }
        f->in_off = f->in_len = 0;
        fake_reset_ov(f);
        if (fake_finish(f, ReadFile(f->pipe, f->in, sizeof f->in, NULL, &f->ov),
                        &n) != 0)
            return -1;
        f->in_len = n;
    }
}

static int fake_reply(fake *f, uint8_t kind, uint32_t id, uint32_t status,
                      const void *payload, size_t len, int byte_by_byte,
                      ph_client *c)
{
    ph_buf b = {0};
    size_t i;
    int rc = 0;

    if (ht_append_frame(&b, kind, NULL, id, status, payload, len) != 0)
        return -1;
    if (!byte_by_byte) {
        rc = fake_write(f, b.data, b.len);
    } else {
        /* One byte per write, and the client polls after each: every split
         * point of the frame is seen by its decoder. */
        for (i = 0; i < b.len && rc == 0; i++) {
            rc = fake_write(f, b.data + i, 1);
            if (rc == 0 && i + 1 < b.len)
                ph_client_poll(c, 0, NULL);
        }
    }
    ph_buf_free(&b);
    return rc;
}

static void timeouts_and_late_answers(void)
{
    enum { N = 10 };
    static rec recs[N];
    rec next, split;
    fake f;
    ph_client *c = NULL;
    ph_frame req;
    ph_reply r;
    ULONGLONG t0, took;
    size_t n;
    int i;

    CHECK_EQ(fake_listen(&f, "timeouts"), 0);
    CHECK_EQ(ph_client_connect(f.path, WAIT_MS, &c), PH_OK);
    CHECK_EQ(fake_accept(&f), 0);
    memset(recs, 0, sizeof recs);
    g_order = 0;
    t0 = GetTickCount64();
    for (i = 0; i < N; i++)
        CHECK_EQ(ph_client_call_async(c, "slow.route", "x", 1,
                                      300 + (uint32_t)i * 20, on_done,
                                      &recs[i]),
                 PH_OK);
    /* The server reads them all and answers none. */
    CHECK_EQ(ph_client_poll(c, 0, &n), PH_OK);
    CHECK_EQ(n, 0);
    for (i = 0; i < N; i++) {
        CHECK_EQ(fake_read_request(&f, &req), 0);
        CHECK_EQ(req.id, (uint32_t)i + 1);
    }
    CHECK_EQ(ph_client_flush(c, WAIT_MS), PH_OK);
    took = GetTickCount64() - t0;
    for (i = 0; i < N; i++) {
        CHECK_EQ(recs[i].calls, 1);
        CHECK_EQ(recs[i].err, PH_ETIMEDOUT);
        CHECK_EQ(recs[i].order, i);
    }
    CHECK(took >= 300 && took < 5000);
    ht_say("%d unanswered calls: each timed out once, in order, after %llu ms",
           N, (unsigned long long)took);

    /* A late answer to call 1 is dropped; the next call gets its own. */
    memset(&next, 0, sizeof next);
    next.sent = (const uint8_t *)"fresh";
    next.len = 5;
    CHECK_EQ(ph_client_call_async(c, "sys.echo", "fresh", 5, WAIT_MS, on_done,
                                  &next),
             PH_OK);
    CHECK_EQ(ph_client_poll(c, 0, NULL), PH_OK);
    CHECK_EQ(fake_read_request(&f, &req), 0);
    CHECK_EQ(req.id, N + 1);
    CHECK_EQ(fake_reply(&f, PH_REPLY, 1, 0, "stale", 5, 0, c), 0);
    CHECK_EQ(fake_reply(&f, PH_REPLY, N + 1, 0, "fresh", 5, 0, c), 0);
    CHECK_EQ(ph_client_flush(c, WAIT_MS), PH_OK);
    CHECK_EQ(next.calls, 1);
    CHECK_EQ(next.err, PH_OK);
    CHECK_EQ(next.match, 1);
    for (i = 0; i < N; i++)
        CHECK_EQ(recs[i].calls, 1);
    ht_say("a late answer is dropped; the next call gets its own");

    /* A reply that arrives one byte per write. */
    memset(&split, 0, sizeof split);
    split.sent = (const uint8_t *)"byte by byte";
    split.len = 12;
    CHECK_EQ(ph_client_call_async(c, "sys.echo", "byte by byte", 12, WAIT_MS,
                                  on_done, &split),
             PH_OK);
    CHECK_EQ(ph_client_poll(c, 0, NULL), PH_OK);
    CHECK_EQ(fake_read_request(&f, &req), 0);
    CHECK_EQ(fake_reply(&f, PH_REPLY, req.id, 0, "byte by byte", 12, 1, c), 0);
    CHECK_EQ(split.calls, 0); /* the last byte is not read yet */
    CHECK_EQ(ph_client_flush(c, WAIT_MS), PH_OK);
    CHECK_EQ(split.calls, 1);
    CHECK_EQ(split.err, PH_OK);
    CHECK_EQ(split.match, 1);
    ht_say("a reply written one byte at a time is decoded whole");

    /* A blocking call that times out leaves the client usable. */
    t0 = GetTickCount64();
    memset(&r, 0, sizeof r);
    CHECK_EQ(ph_client_call(c, "sys.ping", NULL, 0, 200, &r), PH_ETIMEDOUT);
    took = GetTickCount64() - t0;
    /* GetTickCount64 moves in steps of about 16 ms on Windows. */
    CHECK(took >= 150 && took < 5000);
    CHECK_EQ(fake_read_request(&f, &req), 0);
    CHECK_EQ(fake_reply(&f, PH_REPLY, req.id, 0, NULL, 0, 0, c), 0);
    CHECK_EQ(ph_client_call_async(c, "sys.echo", "fresh", 5, WAIT_MS, on_done,
                                  &next),
             PH_OK);
    next.calls = 0;
    CHECK_EQ(ph_client_poll(c, 0, NULL), PH_OK);
    CHECK_EQ(fake_read_request(&f, &req), 0);
    CHECK_EQ(fake_reply(&f, PH_REPLY, req.id, 0, "fresh", 5, 0, c), 0);
    CHECK_EQ(ph_client_flush(c, WAIT_MS), PH_OK);
    CHECK_EQ(next.calls, 1);
    CHECK_EQ(next.match, 1);
    ht_say("a blocking call timed out after %llu ms; the client goes on",
           (unsigned long long)took);
    ph_client_close(c);
    fake_close(&f);
}

static void refused_stream(void)
{
    enum { N = 3 };
    static rec recs[N];
    fake f;
    ph_client *c = NULL;
    ph_frame req;
    int i;

    CHECK_EQ(fake_listen(&f, "refused"), 0);
    CHECK_EQ(ph_client_connect(f.path, WAIT_MS, &c), PH_OK);
    CHECK_EQ(fake_accept(&f), 0);
    memset(recs, 0, sizeof recs);
    g_order = 0;
    for (i = 0; i < N; i++)
        CHECK_EQ(ph_client_call_async(c, "sys.ping", NULL, 0, WAIT_MS, on_done,
                                      &recs[i]),
                 PH_OK);
    CHECK_EQ(ph_client_poll(c, 0, NULL), PH_OK);
    CHECK_EQ(fake_read_request(&f, &req), 0);
    /* The first is answered; then the server refuses the stream as a whole
     * (an ERROR with id 0) and closes. */
    CHECK_EQ(fake_reply(&f, PH_REPLY, req.id, 0, NULL, 0, 0, c), 0);
    CHECK_EQ(fake_reply(&f, PH_ERROR, 0, PH_EBADFRAME, "bad", 3, 0, c), 0);
    fake_close(&f);
    CHECK_EQ(ph_client_flush(c, WAIT_MS), PH_ECLOSED);
    CHECK_EQ(recs[0].calls, 1);
    CHECK_EQ(recs[0].err, PH_OK);
    CHECK_EQ(recs[0].kind, PH_REPLY);
    /* The id-0 ERROR answers the oldest call left. */
    CHECK_EQ(recs[1].calls, 1);
    CHECK_EQ(recs[1].err, PH_OK);
    CHECK_EQ(recs[1].kind, PH_ERROR);
    CHECK_EQ(recs[1].status, PH_EBADFRAME);
    CHECK_EQ(recs[2].calls, 1);
    CHECK_EQ(recs[2].err, PH_ECLOSED);
    ht_say("an id-0 ERROR answers the oldest call; the rest get PH_ECLOSED");
    ph_client_close(c);
}

static void bad_arguments(void)
{
    ht_daemon *d;
    ph_client *c = NULL;
    rec x;
    char route[300];

    CHECK_DAEMON_INI(NULL, d);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    memset(&x, 0, sizeof x);
    memset(route, 'a', sizeof route - 1);
    route[sizeof route - 1] = '\0';
    CHECK_EQ(ph_client_call_async(NULL, "sys.ping", NULL, 0, 10, on_done, &x),
             PH_EINVAL);
    CHECK_EQ(ph_client_call_async(c, "sys.ping", NULL, 0, 10, NULL, &x),
             PH_EINVAL);
    CHECK_EQ(ph_client_call_async(c, "", NULL, 0, 10, on_done, &x), PH_EINVAL);
    CHECK_EQ(ph_client_call_async(c, route, NULL, 0, 10, on_done, &x),
             PH_EINVAL);
    CHECK_EQ(ph_client_call_async(c, "bad route", NULL, 0, 10, on_done, &x),
             PH_EINVAL);
    CHECK_EQ(ph_client_call_async(c, "sys.echo", NULL, 5, 10, on_done, &x),
             PH_EINVAL);
    CHECK_EQ(ph_client_pending(c), 0);
    CHECK_EQ(ph_client_poll(NULL, 0, NULL), PH_EINVAL);
    CHECK_EQ(x.calls, 0);
    /* Refused calls left nothing behind: the stream is still good. */
    CHECK_EQ(ph_client_call_async(c, "sys.echo", "ok", 2, WAIT_MS, on_done, &x),
             PH_OK);
    x.sent = (const uint8_t *)"ok";
    x.len = 2;
    CHECK_EQ(ph_client_flush(c, WAIT_MS), PH_OK);
    CHECK_EQ(x.calls, 1);
    CHECK_EQ(x.match, 1);
    ht_say("bad arguments refused without a callback; the stream stays good");
    ph_client_close(c);
    ht_daemon_stop(d);
}

static const ht_case cases[] = {
    HT_CASE("pipelined_echo", pipelined_echo),
    HT_CASE("large_payloads", large_payloads),
    HT_CASE("calls_from_callbacks", calls_from_callbacks),
    HT_CASE("server_dies_mid_flight", server_dies_mid_flight),
    HT_CASE("server_dies_after_answers", server_dies_after_answers),
    HT_CASE("close_with_calls_pending", close_with_calls_pending),
    HT_CASE("timeouts_and_late_answers", timeouts_and_late_answers),
    HT_CASE("refused_stream", refused_stream),
    HT_CASE("bad_arguments", bad_arguments),
};

int main(int argc, char **argv)
{
    return ht_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
