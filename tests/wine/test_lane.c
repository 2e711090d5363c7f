/* The shared-memory lane (docs/PROTOCOL.md, "The lane") against a real
 * pipehubd: negotiation and refusal, big payloads each way byte for byte,
 * order with small frames, a client that corrupts its own ring, a provider
 * without a lane, and lanes that come and go without leaking.
 *
 *   test_lane CASE PATH_TO_PIPEHUBD_EXE
 *
 * The daemons keep max_frame_bytes at its 1 MiB default: a 16 MiB payload
 * can only have come through the lane. */
#include <windows.h>

#include <stdlib.h>
#include <string.h>

#include "hubtest_client.h"
#include "lane.h"

#define MB (1024u * 1024u)
#define WAIT_MS 20000u
#define BIG_WAIT_MS 120000u

static uint8_t *pattern(size_t n, uint8_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    size_t i;

    for (i = 0; p != NULL && i < n; i++)
        p[i] = (uint8_t)(i % 251 + seed);
    return p;
}

/* One sys.stats number, through a connection of its own. */
static int stat_of(const char *pipe, const char *key, uint64_t *v)
{
    ph_client *c;
    ph_reply r;
    int rc = -1;

    if (ph_client_connect_ex(pipe, WAIT_MS, PH_CONNECT_NO_LANE, &c) != PH_OK)
        return -1;
    if (ph_client_call(c, "sys.stats", NULL, 0, WAIT_MS, &r) == PH_OK) {
        if (r.kind == PH_REPLY &&
            ht_json_u64((const char *)r.payload, key, v) == 0)
            rc = 0;
        ph_reply_free(&r);
    }
    ph_client_close(c);
    return rc;
}

/* sys.echo of n bytes through c, checked byte for byte. */
static int echo_ok(ph_client *c, size_t n, uint8_t seed)
{
    uint8_t *p = pattern(n, seed);
    ph_reply r;
    int ok;

    if (p == NULL || ph_client_call(c, "sys.echo", p, n, BIG_WAIT_MS, &r) !=
                         PH_OK) {
        free(p);
        return 0;
    }
    ok = r.kind == PH_REPLY && r.payload_len == n &&
         memcmp(r.payload, p, n) == 0;
    if (!ok)
        ht_say("echo of %zu bytes: kind %u, %u bytes back: %.120s", n,
               (unsigned)r.kind, (unsigned)r.payload_len,
               r.kind == PH_ERROR ? (const char *)r.payload : "");
    ph_reply_free(&r);
    free(p);
    return ok;
}

/* sys.hello offers the lane; the library takes it for its first big
 * payload; 64 KiB, 1 MiB and 16 MiB go both ways through it, checked. */
static void negotiated(void)
{
    ph_client *c = NULL;
    uint64_t lanes = 0, in = 0, out = 0, max = 0;
    ht_conn *raw;
    ph_frame f;
    ht_daemon *d;

    CHECK_DAEMON_INI(NULL, d);
    CHECK((raw = ht_conn_open(d->pipe)) != NULL);
    CHECK_EQ(ht_send_request(raw, "sys.hello", 1, "", 0), 0);
    CHECK_EQ(ht_read(raw, &f, WAIT_MS), PH_OK);
    CHECK_EQ(f.kind, PH_REPLY);
    {
        char j[512];
        snprintf(j, sizeof j, "%.*s", (int)f.payload_len,
                 (const char *)f.payload);
        CHECK(strstr(j, "\"features\":[\"hub\",\"describe\",\"lane\"]") !=
              NULL);
        CHECK_EQ(ht_json_u64(j, "lane_version", &max), 0);
        CHECK_EQ(max, 1);
        CHECK_EQ(ht_json_u64(j, "lane_max_bytes", &max), 0);
        CHECK_EQ(max, 16 * MB);
    }
    ht_conn_close(raw);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    CHECK(echo_ok(c, 100, 1));          /* small: the pipe */
    CHECK(echo_ok(c, 64 * 1024, 2));    /* asks for the lane */
    CHECK(echo_ok(c, 1 * MB, 3));
    CHECK(echo_ok(c, 16 * MB, 4));      /* 16x max_frame_bytes */
    CHECK(echo_ok(c, 16 * MB, 5));
    CHECK(echo_ok(c, 100, 6));
    CHECK_EQ(stat_of(d->pipe, "lanes_current", &lanes), 0);
    CHECK_EQ(lanes, 1);
    CHECK_EQ(stat_of(d->pipe, "lane_bytes_in", &in), 0);
    CHECK_EQ(stat_of(d->pipe, "lane_bytes_out", &out), 0);
    CHECK_EQ(in, 64 * 1024 + MB + 32 * MB);
    CHECK_EQ(out, in);
    ht_say("64 KiB, 1 MiB and 2 x 16 MiB echoed through the lane (%llu bytes "
           "each way) with max_frame_bytes 1 MiB",
           (unsigned long long)in);
    ph_client_close(c);
    CHECK_ALIVE(d);
}

/* [lane] enabled = false: sys.lane is FORBIDDEN and the library keeps to
 * the pipe; PH_CONNECT_NO_LANE does the same with lanes on. */
static void refused(void)
{
    ph_client *c = NULL;
    uint64_t lanes = 9;
    ht_conn *raw;
    ht_daemon *d;

    CHECK_DAEMON_INI("[lane]\nenabled = false\n", d);
    CHECK((raw = ht_conn_open(d->pipe)) != NULL);
    CHECK_EQ(ht_send_request(raw, "sys.lane", 1, "65536", 5), 0);
    CHECK_EQ(ht_expect_error(raw, 1, PH_EFORBIDDEN, "enabled = false"), 0);
    ht_conn_close(raw);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    CHECK(echo_ok(c, 512 * 1024, 7));
    CHECK(echo_ok(c, 512 * 1024, 8));
    ph_client_close(c);
    CHECK_EQ(stat_of(d->pipe, "lanes_current", &lanes), 0);
    CHECK_EQ(lanes, 0);
    ht_daemon_stop(d);

    CHECK_DAEMON_INI(NULL, d);
    CHECK_EQ(ph_client_connect_ex(d->pipe, WAIT_MS, PH_CONNECT_NO_LANE, &c),
             PH_OK);
    CHECK(echo_ok(c, 512 * 1024, 9));
    CHECK_EQ(stat_of(d->pipe, "lanes_current", &lanes), 0);
    CHECK_EQ(lanes, 0);
    ph_client_close(c);
    ht_say("lanes off: sys.lane FORBIDDEN, and the library used the pipe");
    CHECK_ALIVE(d);
}

typedef struct ordered {
    volatile int n;
    int bad;                  /* first out-of-order or wrong answer + 1 */
} ordered;

typedef struct one_call {
    ordered *o;
    int index;
    size_t len;
} one_call;

static void on_ordered(void *ctx, ph_err err, const ph_frame *f)
{
    one_call *k = ctx;
    const uint8_t *p = f ? f->payload : NULL;
    size_t i;
    int ok = err == PH_OK && f->kind == PH_REPLY && f->payload_len == k->len &&
             k->o->n == k->index;

    for (i = 0; ok && i < k->len; i++)
        ok = p[i] == (uint8_t)(i % 251 + k->index);
    if (!ok && !k->o->bad)
        k->o->bad = k->index + 1;
    k->o->n++;
}

/* Big and small calls, pipelined: the answers come in order, each right. */
static void mixed_order(void)
{
    static one_call calls[40];
    static uint8_t *bufs[40];
    ph_client *c = NULL;
    ordered o;
    ULONGLONG deadline;
    ht_daemon *d;
    int i;

    memset(&o, 0, sizeof o);
    CHECK_DAEMON_INI(NULL, d);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    CHECK(echo_ok(c, 200 * 1024, 1)); /* the lane is set up */
    for (i = 0; i < 40; i++) {
        calls[i].o = &o;
        calls[i].index = i;
        calls[i].len = i % 3 == 0 ? (size_t)(300 * 1024 + i) : (size_t)(10 + i);
        bufs[i] = pattern(calls[i].len, (uint8_t)i);
        CHECK(bufs[i] != NULL);
        CHECK_EQ(ph_client_call_async(c, "sys.echo", bufs[i], calls[i].len,
                                      BIG_WAIT_MS, on_ordered, &calls[i]),
                 PH_OK);
    }
    deadline = GetTickCount64() + BIG_WAIT_MS;
    while (o.n < 40 && GetTickCount64() < deadline)
        CHECK_EQ(ph_client_poll(c, 500, NULL), PH_OK);
    CHECK_EQ(o.n, 40);
    CHECK_EQ(o.bad, 0);
    for (i = 0; i < 40; i++)
        free(bufs[i]);
    ht_say("40 pipelined calls, every third 300 KiB, answered in order");
    ph_client_close(c);
    CHECK_ALIVE(d);
}

/* A raw connection asks for a lane with a 64 KiB ring and maps it: the
 * view, with the handle and the section's size, or NULL. */
static uint8_t *raw_lane(ht_conn *raw, uint64_t *handle, uint64_t *bytes)
{
    char j[512];
    ph_frame f;

    if (ht_send_request(raw, "sys.lane", 1, "65536", 5) != 0 ||
        ht_read(raw, &f, WAIT_MS) != PH_OK || f.kind != PH_REPLY)
        return NULL;
    snprintf(j, sizeof j, "%.*s", (int)f.payload_len, (const char *)f.payload);
    if (ht_json_u64(j, "handle", handle) != 0 ||
        ht_json_u64(j, "section_bytes", bytes) != 0)
        return NULL;
    return MapViewOfFile((HANDLE)(uintptr_t)*handle,
                         FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, (size_t)*bytes);
}

/* A raw client that takes a lane and lies in it: a tail far ahead, then a
 * descriptor past what it wrote. It is closed with BAD_FRAME; another
 * client's lane traffic goes on. */
static void corrupt(void)
{
    ph_client *good = NULL;
    ht_conn *raw;
    ph_frame lf;
    uint64_t handle = 0, bytes = 0;
    uint8_t *view, desc[PH_LANE_DESC_BYTES];
    ph_buf b = {0};
    ht_daemon *d;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &good), PH_OK);
    CHECK(echo_ok(good, 1 * MB, 1));
    CHECK((raw = ht_conn_open(d->pipe)) != NULL);
    CHECK((view = raw_lane(raw, &handle, &bytes)) != NULL);
    CHECK_EQ(ph_get_u32le(view), PH_LANE_MAGIC);
    /* 100 bytes "written", and a tail that says a gigabyte. */
    *(volatile uint64_t *)(view + PH_LANE_OFF_C2H_TAIL) = 1ull << 30;
    ph_lane_desc_put(desc, 0, 100);
    lf = (ph_frame){.kind = PH_REQUEST, .flags = PH_FLAG_LANE, .id = 2,
                    .route = "sys.echo", .route_len = 8, .payload = desc,
                    .payload_len = sizeof desc};
    CHECK_EQ(ph_frame_append(&b, &lf), PH_OK);
    CHECK_EQ(ht_write(raw, b.data, b.len), 0);
    CHECK_EQ(ht_expect_error(raw, 0, PH_EBADFRAME, "make no sense"), 0);
    ht_say("a client whose ring tail makes no sense got BAD_FRAME");
    UnmapViewOfFile(view);
    CloseHandle((HANDLE)(uintptr_t)handle);
    ph_buf_free(&b);
    ht_conn_close(raw);
    CHECK(echo_ok(good, 1 * MB, 2));
    CHECK(echo_ok(good, 4 * MB, 3));
    ph_client_close(good);
    CHECK_ALIVE(d);
}

/* A provider without a lane gets a lane caller's payload through the pipe
 * when it fits max_frame_bytes; one that does not fit is TOO_LARGE to the
 * caller. A provider with a lane gets 8 MiB. */
static int call_ok(ph_client *c, const char *route, size_t n, ph_err *code)
{
    uint8_t *p = pattern(n, 3);
    ph_reply r;
    int ok = 0;

    *code = PH_OK;
    if (p != NULL &&
        ph_client_call(c, route, p, n, BIG_WAIT_MS, &r) == PH_OK) {
        ok = r.kind == PH_REPLY && r.payload_len == n &&
             memcmp(r.payload, p, n) == 0;
        if (r.kind == PH_ERROR)
            *code = (ph_err)r.status;
        ph_reply_free(&r);
    }
    free(p);
    return ok;
}

static void provider_without_lane(void)
{
    static ht_provider plain, laned;
    ph_client *caller = NULL;
    ph_err code;
    ht_daemon *d;

    memset(&plain, 0, sizeof plain);
    memset(&laned, 0, sizeof laned);
    CHECK_DAEMON_INI(NULL, d);
    /* The laned provider takes its lane with its first big reply. */
    CHECK_EQ(ht_provider_start(&plain, d->pipe, PH_CONNECT_NO_LANE,
                               "plain.echo"),
             0);
    CHECK_EQ(ht_provider_start(&laned, d->pipe, 0, "laned.echo"), 0);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &caller), PH_OK);
    CHECK(call_ok(caller, "plain.echo", 512 * 1024, &code));
    CHECK_EQ(plain.got, 512 * 1024);
    CHECK(!call_ok(caller, "plain.echo", 2 * MB, &code));
    CHECK_EQ(code, PH_ETOOBIG);
    CHECK(call_ok(caller, "laned.echo", 200 * 1024, &code)); /* its lane */
    CHECK(call_ok(caller, "laned.echo", 8 * MB, &code));
    CHECK_EQ(laned.got, 8 * MB);
    ht_say("512 KiB reached a provider without a lane through the pipe; 2 MiB "
           "was TOO_LARGE; 8 MiB reached one with a lane");
    ph_client_close(caller);
    ht_provider_stop(&plain);
    ht_provider_stop(&laned);
    CHECK_ALIVE(d);
}

/* Lanes come and go: the server's handles and private bytes stay flat. */
static void churn(void)
{
    ph_client *c, *watch = NULL;
    uint64_t h0 = 0, h1 = 0, m0 = 0, m1 = 0, lanes = 9;
    ph_reply r;
    ht_daemon *d;
    int i;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_EQ(ph_client_connect_ex(d->pipe, WAIT_MS, PH_CONNECT_NO_LANE,
                                  &watch),
             PH_OK);
    for (i = 0; i < 1000; i++) {
        CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
        CHECK(echo_ok(c, 70 * 1024, (uint8_t)i));
        ph_client_close(c);
        if (i == 99) {
            CHECK_EQ(ph_client_call(watch, "sys.process", NULL, 0, WAIT_MS,
                                    &r),
                     PH_OK);
            CHECK_EQ(ht_json_u64((const char *)r.payload, "handles", &h0), 0);
            CHECK_EQ(ht_json_u64((const char *)r.payload, "private_bytes",
                                 &m0),
                     0);
            ph_reply_free(&r);
        }
    }
    CHECK_EQ(ph_client_call(watch, "sys.process", NULL, 0, WAIT_MS, &r),
             PH_OK);
    CHECK_EQ(ht_json_u64((const char *)r.payload, "handles", &h1), 0);
    CHECK_EQ(ht_json_u64((const char *)r.payload, "private_bytes", &m1), 0);
    ph_reply_free(&r);
    ht_say("1000 lane connections: handles %llu -> %llu, private bytes %llu "
           "-> %llu (after the first 100, and at the end)",
           (unsigned long long)h0, (unsigned long long)h1,
           (unsigned long long)m0, (unsigned long long)m1);
    CHECK(h1 <= h0 + 4);
    CHECK(m1 <= m0 + m0 / 10);
    CHECK_EQ(stat_of(d->pipe, "lanes_current", &lanes), 0);
    CHECK_EQ(lanes, 0);
    ph_client_close(watch);
    CHECK_ALIVE(d);
}

/* A ring too small for what is due: the hub holds the frames, in order,
 * and goes on when the client gives room back and wakes it (a raw client
 * playing the library's part, with a 64 KiB ring and 40 KiB replies). */
static void wake(void)
{
    ht_conn *raw;
    ph_frame f, ev;
    ph_lane lane;
    uint64_t handle = 0, bytes = 0;
    uint8_t *view, *got = malloc(64 * 1024), *req[4];
    uint32_t off, len;
    ph_buf b = {0};
    ht_daemon *d;
    int i, wakes = 0;

    CHECK(got != NULL);
    CHECK_DAEMON_INI("[lane]\nthreshold_bytes = 1024\n", d);
    CHECK((raw = ht_conn_open(d->pipe)) != NULL);
    CHECK((view = raw_lane(raw, &handle, &bytes)) != NULL);
    CHECK_EQ(ph_lane_attach(view, (size_t)bytes, &lane), PH_OK);
    raw->dec.flags_ok = PH_FLAG_LANE;
    /* Four 40 KiB echoes, inline; their replies go to the 64 KiB ring. */
    for (i = 0; i < 4; i++) {
        req[i] = pattern(40 * 1024, (uint8_t)(10 + i));
        CHECK(req[i] != NULL);
        CHECK_EQ(ht_send_request(raw, "sys.echo", (uint32_t)(10 + i), req[i],
                                 40 * 1024),
                 0);
    }
    for (i = 0; i < 4; i++) {
        CHECK_EQ(ht_read(raw, &f, WAIT_MS), PH_OK);
        CHECK_EQ(f.kind, PH_REPLY);
        CHECK_EQ(f.id, (uint32_t)(10 + i));
        CHECK_EQ(f.flags, PH_FLAG_LANE);
        CHECK_EQ(f.payload_len, PH_LANE_DESC_BYTES);
        ph_lane_desc_get(f.payload, &off, &len);
        CHECK_EQ(len, 40 * 1024);
        CHECK_EQ(ph_lane_read(&lane.in, off, len, got), PH_OK);
        CHECK(memcmp(got, req[i], len) == 0);
        if (ph_lane_wake_due(&lane)) {
            wakes++;
            memset(&ev, 0, sizeof ev);
            ev.kind = PH_EVENT;
            ev.route = "sys.lane";
            ev.route_len = 8;
            b.len = 0;
            CHECK_EQ(ph_frame_append(&b, &ev), PH_OK);
            CHECK_EQ(ht_write(raw, b.data, b.len), 0);
        }
    }
    CHECK(wakes >= 1);
    ht_say("four 40 KiB replies through a 64 KiB ring, in order, with %d "
           "wake-up(s)", wakes);
    for (i = 0; i < 4; i++)
        free(req[i]);
    free(got);
    ph_buf_free(&b);
    UnmapViewOfFile(view);
    CloseHandle((HANDLE)(uintptr_t)handle);
    ht_conn_close(raw);
    CHECK_ALIVE(d);
}

/* R, a raw subscriber with a 64 KiB ring, reads the next event: kind,
 * topic and payload (pattern(len, seed), from the ring when it came through
 * the lane, which then gives room back and wakes the hub when it waits). 1
 * when it came through the lane, 0 inline, -1 wrong. */
static int next_event(ht_conn *r, ph_lane *lane, uint8_t *got, size_t len,
                      uint8_t seed, int *wakes)
{
    uint8_t *want = pattern(len, seed);
    uint32_t off, n;
    ph_frame f, ev;
    ph_buf b = {0};
    int rc = -1;

    if (want == NULL || ht_read(r, &f, WAIT_MS) != PH_OK ||
        f.kind != PH_EVENT || !ht_route_is(&f, "direct.t")) {
        ht_say("event %u: not the event expected", (unsigned)seed);
        goto out;
    }
    if (f.flags & PH_FLAG_LANE) {
        ph_lane_desc_get(f.payload, &off, &n);
        if (f.payload_len != PH_LANE_DESC_BYTES || n != len ||
            ph_lane_read(&lane->in, off, n, got) != PH_OK ||
            memcmp(got, want, len) != 0) {
            ht_say("event %u: lane payload of %u bytes wrong", (unsigned)seed,
                   (unsigned)n);
            goto out;
        }
        if (ph_lane_wake_due(lane)) {
            memset(&ev, 0, sizeof ev);
            ev.kind = PH_EVENT;
            ev.route = "sys.lane";
            ev.route_len = 8;
            if (ph_frame_append(&b, &ev) != PH_OK ||
                ht_write(r, b.data, b.len) != 0)
                goto out;
            (*wakes)++;
        }
        rc = 1;
    } else if (f.payload_len == len && memcmp(f.payload, want, len) == 0) {
        rc = 0;
    } else {
        ht_say("event %u: %u bytes inline, wrong", (unsigned)seed,
               (unsigned)f.payload_len);
    }
out:
    free(want);
    ph_buf_free(&b);
    return rc;
}

/* A lane payload for a receiver with a lane is copied once, from the
 * sender's ring straight into the receiver's (lane_bytes_direct counts
 * it): sys.echo, a routed call and its reply. When the receiver's ring is
 * nearly full, or a frame waits ahead of it, the hub queues it instead:
 * a raw subscriber with a 64 KiB ring gets 40 KiB events and small ones
 * in the order published, byte for byte. */
/* Everything c sent before has been routed: its frames are handled in
 * order, and a sys.ping's answer comes after them. */
static int routed(ph_client *c)
{
    ph_reply r;
    ph_err err = ph_client_call(c, "sys.ping", NULL, 0, WAIT_MS, &r);

    if (err != PH_OK) {
        ht_say("sys.ping: %s", ph_strerror(err));
        return 0;
    }
    ph_reply_free(&r);
    return 1;
}

static void direct(void)
{
    static ht_provider prov;
    ph_client *c = NULL;
    uint64_t d0 = 0, d1 = 0, d2 = 0, d3 = 0, handle = 0, bytes = 0;
    uint8_t *view, *got = malloc(64 * 1024), *p;
    size_t sizes[8] = {40960, 40960, 100, 40960, 40960, 40960, 7, 40960};
    ph_lane lane;
    ht_conn *raw;
    ph_err code;
    ht_daemon *d;
    int i, laned = 0, wakes = 0;

    memset(&prov, 0, sizeof prov);
    CHECK(got != NULL);
    CHECK_DAEMON_INI("[lane]\nthreshold_bytes = 1024\n", d);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    CHECK(echo_ok(c, 1 * MB, 1)); /* sets up the lane */
    CHECK_EQ(stat_of(d->pipe, "lane_bytes_direct", &d0), 0);
    for (i = 0; i < 3; i++)
        CHECK(echo_ok(c, 1 * MB, (uint8_t)(2 + i)));
    CHECK_EQ(stat_of(d->pipe, "lane_bytes_direct", &d1), 0);
    /* Each echo is one ring-to-ring copy, unless the client's lock was
     * busy at the time: most of them are. */
    CHECK(d1 - d0 >= 2 * MB);
    CHECK(d1 - d0 <= 3 * MB);
    /* A provider with a lane: it takes it with its first big reply. */
    CHECK_EQ(ht_provider_start(&prov, d->pipe, 0, "direct.echo"), 0);
    CHECK(call_ok(c, "direct.echo", 200 * 1024, &code));
    CHECK_EQ(stat_of(d->pipe, "lane_bytes_direct", &d2), 0);
    for (i = 0; i < 4; i++)
        CHECK(call_ok(c, "direct.echo", 2 * MB, &code));
    CHECK_EQ(prov.got, 2 * MB);
    CHECK_EQ(stat_of(d->pipe, "lane_bytes_direct", &d3), 0);
    /* Request and reply, 2 MiB each way, four times. */
    CHECK(d3 - d2 >= 8 * MB);
    CHECK(d3 - d2 <= 16 * MB);
    ht_say("sys.echo: %llu KiB, routed calls: %llu KiB copied ring to ring",
           (unsigned long long)((d1 - d0) / 1024),
           (unsigned long long)((d3 - d2) / 1024));

    /* The fallback: a subscriber whose 64 KiB ring holds one 40 KiB event
     * at a time. */
    CHECK((raw = ht_conn_open(d->pipe)) != NULL);
    CHECK((view = raw_lane(raw, &handle, &bytes)) != NULL);
    CHECK_EQ(ph_lane_attach(view, (size_t)bytes, &lane), PH_OK);
    raw->dec.flags_ok = PH_FLAG_LANE;
    CHECK_EQ(ht_send_request(raw, "sys.subscribe", 2, "direct.*", 8), 0);
    CHECK_EQ(ht_expect_reply(raw, 2, "", 0), 0);
    /* One alone: the ring is empty and nothing waits, so it goes straight
     * in, unless the subscriber's lock was busy at that moment (its reads,
     * the once-a-second deadline check): then it is queued, and the next
     * try goes straight in. */
    CHECK((p = pattern(sizes[0], 20)) != NULL);
    for (i = 0; i < 5; i++) {
        CHECK_EQ(stat_of(d->pipe, "lane_bytes_direct", &d0), 0);
        CHECK_EQ(ph_client_publish(c, "direct.t", p, sizes[0]), PH_OK);
        CHECK(routed(c));
        CHECK_EQ(next_event(raw, &lane, got, sizes[0], 20, &wakes), 1);
        CHECK_EQ(stat_of(d->pipe, "lane_bytes_direct", &d1), 0);
        CHECK(d1 - d0 == 0 || d1 - d0 == sizes[0]);
        if (d1 - d0 == sizes[0])
            break;
    }
    free(p);
    CHECK(i < 5);
    CHECK_EQ(wakes, 0);
    /* The rest, all routed before the subscriber reads any: the first
     * fills the ring to 40 KiB (or waits queued), and every later one
     * waits queued behind it, the next 40 KiB for room in the ring. */
    for (i = 1; i < 8; i++) {
        CHECK((p = pattern(sizes[i], (uint8_t)(20 + i))) != NULL);
        CHECK_EQ(ph_client_publish(c, "direct.t", p, sizes[i]), PH_OK);
        free(p);
    }
    CHECK(routed(c));
    for (i = 1; i < 8; i++) {
        int r = next_event(raw, &lane, got, sizes[i], (uint8_t)(20 + i),
                           &wakes);
        CHECK(r >= 0);
        laned += r;
        CHECK_EQ(r, sizes[i] >= 1024 ? 1 : 0);
    }
    CHECK_EQ(stat_of(d->pipe, "lane_bytes_direct", &d2), 0);
    /* At most the first of them went straight in; the queued path ran for
     * the others, and waited for room (the wake-ups). */
    CHECK(d2 - d1 <= sizes[1]);
    CHECK(wakes >= 1);
    ht_say("a 64 KiB ring: 1 event copied ring to ring, then %d of 40 KiB "
           "(%llu bytes of them direct) and 2 small ones in order, queued, "
           "with %d wake-up(s)",
           laned, (unsigned long long)(d2 - d1), wakes);
    UnmapViewOfFile(view);
    CloseHandle((HANDLE)(uintptr_t)handle);
    ht_conn_close(raw);
    ph_client_close(c);
    ht_provider_stop(&prov);
    free(got);
    CHECK_ALIVE(d);
}

static const ht_case cases[] = {
    HT_CASE("direct", direct),
    HT_CASE("wake", wake),
    HT_CASE("negotiated", negotiated),
    HT_CASE("refused", refused),
    HT_CASE("mixed_order", mixed_order),
    HT_CASE("corrupt", corrupt),
    HT_CASE("provider_without_lane", provider_without_lane),
    HT_CASE("churn", churn),
};

int main(int argc, char **argv)
{
    return ht_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
