/* The transport: a real pipehubd.exe driven over its named pipe, the pipe
 * server and the built-in routes (sys.ping, sys.echo, sys.stats, sys.hello),
 * framing errors, limits on connections and frames, settings from a config
 * file, a second server on the name, and clients that probe and leave.
 *
 *   test_transport CASE PATH_TO_PIPEHUBD_EXE   run one case (see cases[])
 *   test_transport hold N PIPE                 helper for ctrl_c.sh and
 *                                              service.sh
 *
 * Each case starts its own daemon on its own pipe name (ph-CASE-PID), talks to
 * it through the raw client of hubtest.h, and finally checks that the daemon
 * is still alive: a server must survive any client, however broken. Frames
 * are built with the common/ codec, except where a test needs bytes the codec
 * refuses to produce (malformed headers), which are built by hand. */
#include <windows.h>

#include "hubtest.h"
#include "pipehub.h"

/* ---- small utilities ------------------------------------------------------ */

/* xorshift64*: reproducible payloads from a printed seed. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

static uint64_t g_seed;

static void fill_random(uint64_t *s, uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(rng_next(s) >> 56);
}

/* ---- background echo workers ---------------------------------------------- */

/* One thread with its own connection doing echo round trips, either a fixed
 * number (rounds) or until *stop is set. */
typedef struct worker {
    const char *pipe;
    int index;
    int rounds;             /* 0: until stop */
    volatile LONG *stop;
    volatile LONG done;     /* round trips that succeeded */
    int failed;
    char why[500];
    HANDLE thread;
} worker;

static DWORD WINAPI worker_main(void *arg)
{
    worker *w = arg;
    uint64_t seed = g_seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(w->index + 1));
    uint8_t payload[1024];
    ht_conn *c = ht_conn_open(w->pipe);
    int i;

    if (!c) {
        w->failed = 1;
        snprintf(w->why, sizeof w->why, "worker %d could not connect",
                 w->index);
        return 0;
    }
    for (i = 0; w->rounds ? i < w->rounds : !*w->stop; i++) {
        /* Distinct payloads: random bytes led by the worker and round, so a
         * reply routed to the wrong connection or round cannot match. */
        size_t len = 8 + (size_t)(rng_next(&seed) % (sizeof payload - 8));
        uint32_t id = ((uint32_t)w->index << 20) | (uint32_t)(i + 1);

        fill_random(&seed, payload, len);
        ph_put_u32le(payload, (uint32_t)w->index);
        ph_put_u32le(payload + 4, (uint32_t)i);
        if (ht_echo(c, id, payload, len) != 0) {
            w->failed = 1;
            snprintf(w->why, sizeof w->why, "worker %d round %d: %s",
                     w->index, i, c->why);
            break;
        }
        InterlockedIncrement(&w->done);
    }
    ht_conn_close(c);
    return 0;
}

static int workers_start(worker *ws, int n, const char *pipe, int rounds,
                         volatile LONG *stop)
{
    int i;

    for (i = 0; i < n; i++) {
        memset(&ws[i], 0, sizeof ws[i]);
        ws[i].pipe = pipe;
        ws[i].index = i;
        ws[i].rounds = rounds;
        ws[i].stop = stop;
        ws[i].thread = CreateThread(NULL, 0, worker_main, &ws[i], 0, NULL);
        if (!ws[i].thread)
            return -1;
    }
    return 0;
}

/* Join all workers; returns the number still running at the deadline. */
static int workers_join(worker *ws, int n, uint32_t timeout_ms)
{
    uint64_t deadline = ht_ms_now() + timeout_ms;
    int i, hung = 0;

    for (i = 0; i < n; i++) {
        if (!ws[i].thread)
            continue;
        if (WaitForSingleObject(ws[i].thread, ht_ms_left(deadline)) !=
            WAIT_OBJECT_0) {
            hung++;
            continue;
        }
        CloseHandle(ws[i].thread);
        ws[i].thread = NULL;
    }
    return hung;
}

/* Wait until every worker has done at least min round trips (so they are
 * really busy when the test starts misbehaving). */
static int workers_warm(worker *ws, int n, LONG min, uint32_t timeout_ms)
{
    uint64_t deadline = ht_ms_now() + timeout_ms;
    int i;

    for (;;) {
        int ready = 1;
        for (i = 0; i < n; i++) {
            if (ws[i].failed)
                return -1;
            if (ws[i].done < min)
                ready = 0;
        }
        if (ready)
            return 0;
        if (ht_ms_left(deadline) == 0)
            return -1;
        Sleep(10);
    }
}

#define CHECK_WORKERS(ws, n)                                                  \
    do {                                                                      \
        int ph__i;                                                            \
        for (ph__i = 0; ph__i < (n); ph__i++) {                               \
            if ((ws)[ph__i].failed) {                                         \
                PH_FAIL_HERE("%s", (ws)[ph__i].why);                          \
                return;                                                       \
            }                                                                 \
        }                                                                     \
    } while (0)

/* Start n workers on pipe that go on until *stop, and wait (30 s at most)
 * until each has done min round trips: they are busy before the test
 * starts misbehaving. */
#define CHECK_WORKERS_GOING(ws, n, pipe, stop, min)                           \
    do {                                                                      \
        *(stop) = 0;                                                          \
        CHECK(workers_start((ws), (n), (pipe), 0, (stop)) == 0);              \
        if (workers_warm((ws), (n), (min), 30000) != 0) {                     \
            *(stop) = 1;                                                      \
            workers_join((ws), (n), 30000);                                   \
            CHECK_WORKERS((ws), (n));                                         \
            PH_FAIL_HERE("the echo workers did not get going");               \
            return;                                                           \
        }                                                                     \
    } while (0)

/* ---- hand-built headers, for frames the codec refuses to encode --------- */

static void raw_header(uint8_t *h, uint32_t frame_len, uint8_t version,
                       uint8_t kind, uint8_t route_len, uint8_t flags,
                       uint32_t id)
{
    ph_put_u32le(h, frame_len);
    h[4] = version;
    h[5] = kind;
    h[6] = route_len;
    h[7] = flags;
    ph_put_u32le(h + 8, id);
    ph_put_u32le(h + 12, 0);
}

/* ---- cases ---------------------------------------------------------------- */

static void case_ping_echo_stats(void)
{
    ht_daemon *d;
    ht_conn *c;
    uint64_t seed = g_seed;
    const size_t route_len = strlen("sys.echo");
    const size_t sizes[] = {0, 1, 2, 255, 4096, 64 * 1024, 64 * 1024 + 1,
                            PH_MAX_FRAME_DEFAULT - PH_FRAME_HEADER_LEN -
                                route_len};
    static const char *keys[] = {"uptime_ms", "connections_current",
                                 "connections_total", "frames_in",
                                 "frames_out", "bytes_in", "bytes_out",
                                 "errors_sent", "pending_instances"};
    uint64_t before[9], after[9];
    uint8_t *payload;
    char *s1, *s2;
    size_t i;
    uint32_t id = 1;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_CONN(c, d->pipe);

    CHECK_OK(c, ht_ping(c, id++));
    ht_say("sys.ping ok");

    payload = malloc(PH_MAX_FRAME_DEFAULT);
    CHECK(payload != NULL);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        fill_random(&seed, payload, sizes[i]);
        CHECK_OK(c, ht_echo(c, id++, payload, sizes[i]));
        ht_say("sys.echo of %lu bytes ok", (unsigned long)sizes[i]);
    }
    free(payload);

    s1 = ht_call_text(c, "sys.stats", NULL);
    CHECK_OK(c, s1 == NULL);
    ht_say("stats: %s", s1);
    CHECK(ht_json_is_object(s1));
    for (i = 0; i < 9; i++) {
        if (ht_json_u64(s1, keys[i], &before[i]) != 0) {
            PH_FAIL_HERE("sys.stats has no number for \"%s\": %s", keys[i], s1);
            return;
        }
    }
    CHECK_OK(c, ht_ping(c, id++));
    CHECK_OK(c, ht_echo(c, id++, "counted", 7));
    s2 = ht_call_text(c, "sys.stats", NULL);
    CHECK_OK(c, s2 == NULL);
    ht_say("stats: %s", s2);
    for (i = 0; i < 9; i++) {
        if (ht_json_u64(s2, keys[i], &after[i]) != 0) {
            PH_FAIL_HERE("sys.stats has no number for \"%s\": %s", keys[i], s2);
            return;
        }
    }
    /* Between the two calls: ping, echo and the second stats came in (the
     * first stats' reply went out after it was counted, or not: >= 2). */
    CHECK(after[3] >= before[3] + 3);     /* frames_in */
    CHECK(after[4] >= before[4] + 2);     /* frames_out */
    CHECK(after[5] > before[5]);          /* bytes_in */
    CHECK(after[6] > before[6]);          /* bytes_out */
    CHECK(after[0] >= before[0]);         /* uptime_ms */
    CHECK(after[1] >= 1);                 /* connections_current: us */
    CHECK(after[2] >= 2);                 /* connections_total: probe + us */
    CHECK(after[2] >= after[1]);
    /* The echoes alone moved more than a megabyte each way. */
    CHECK(after[5] >= PH_MAX_FRAME_DEFAULT);
    CHECK(after[6] >= PH_MAX_FRAME_DEFAULT - PH_FRAME_HEADER_LEN);
    free(s1);
    free(s2);
    ht_conn_close(c);
    CHECK_ALIVE(d);
}

static void case_concurrent64(void)
{
    enum { THREADS = 64, ROUNDS = 200 };
    static worker ws[THREADS];
    ht_daemon *d;
    uint64_t t0;
    int hung, i;
    long total = 0;

    CHECK_DAEMON_INI(NULL, d);
    t0 = ht_ms_now();
    CHECK(workers_start(ws, THREADS, d->pipe, ROUNDS, NULL) == 0);
    hung = workers_join(ws, THREADS, 150000);
    CHECK_EQ(hung, 0);
    CHECK_WORKERS(ws, THREADS);
    for (i = 0; i < THREADS; i++) {
        CHECK_EQ(ws[i].done, ROUNDS);
        total += ws[i].done;
    }
    ht_say("%ld echo round trips on %d connections in %lu ms", total, THREADS,
           (unsigned long)(ht_ms_now() - t0));
    CHECK_ALIVE(d);
    CHECK_SERVES(d);
}

static void case_byte_at_a_time(void)
{
    ht_daemon *d;
    ht_conn *c;
    ph_buf b = {0};
    uint64_t seed = g_seed;
    uint8_t big[300];
    static const char hello_name[] = "bytewise";
    size_t i;
    char *s;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_CONN(c, d->pipe);

    fill_random(&seed, big, sizeof big);
    CHECK(ht_append_frame(&b, PH_REQUEST, "sys.ping", 11, 0, NULL, 0) == 0);
    CHECK(ht_append_frame(&b, PH_REQUEST, "sys.echo", 12, 0, "x", 1) == 0);
    CHECK(ht_append_frame(&b, PH_REQUEST, "sys.echo", 13, 0, big, sizeof big) == 0);
    CHECK(ht_append_frame(&b, PH_REQUEST, "sys.echo", 14, 0, NULL, 0) == 0);
    CHECK(ht_append_frame(&b, PH_REQUEST, "no.such.route", 15, 0, "?", 1) == 0);
    CHECK(ht_append_frame(&b, PH_REQUEST, "sys.hello", 16, 0, hello_name,
                         sizeof hello_name - 1) == 0);
    CHECK(ht_append_frame(&b, PH_REQUEST, "sys.echo", 17, 0, big, 100) == 0);
    ht_say("writing %lu bytes of 7 frames, one byte per WriteFile",
           (unsigned long)b.len);
    for (i = 0; i < b.len; i++)
        CHECK_OK(c, ht_write(c, b.data + i, 1));
    ph_buf_free(&b);

    CHECK_OK(c, ht_expect_reply(c, 11, NULL, 0));
    CHECK_OK(c, ht_expect_reply(c, 12, "x", 1));
    CHECK_OK(c, ht_expect_reply(c, 13, big, sizeof big));
    CHECK_OK(c, ht_expect_reply(c, 14, NULL, 0));
    CHECK_OK(c, ht_expect_error(c, 15, PH_ENOROUTE, NULL));
    {
        ph_frame f;
        char dsc[300];
        CHECK_EQ(ht_read(c, &f, HT_IO_TIMEOUT_MS), PH_OK);
        ht_describe(&f, dsc, sizeof dsc);
        if (f.kind != PH_REPLY || f.id != 16) {
            PH_FAIL_HERE("expected the sys.hello REPLY id 16, got %s", dsc);
            return;
        }
        s = malloc(f.payload_len + 1u);
        CHECK(s != NULL);
        memcpy(s, f.payload, f.payload_len);
        s[f.payload_len] = '\0';
        CHECK(ht_json_is_string(s, "client", hello_name));
        free(s);
    }
    CHECK_OK(c, ht_expect_reply(c, 17, big, 100));
    ht_say("7 replies in order");
    /* And the connection is still in step afterwards. */
    CHECK_OK(c, ht_ping(c, 18));
    ht_conn_close(c);
    CHECK_ALIVE(d);
}

static void case_batch100(void)
{
    enum { N = 100 };
    ht_daemon *d;
    ht_conn *c;
    ph_buf b = {0};
    uint64_t seed = g_seed;
    static uint8_t payloads[N][512];
    size_t lens[N];
    uint32_t ids[N];
    int i;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_CONN(c, d->pipe);

    /* Ids are not sequential, so a server that makes them up (or reorders)
     * cannot pass by accident. */
    for (i = 0; i < N; i++) {
        ids[i] = (uint32_t)(rng_next(&seed) & 0x7fffffffu) | 1u;
        if (i % 3 == 2) {
            lens[i] = 0;
            CHECK(ht_append_frame(&b, PH_REQUEST, "sys.ping", ids[i], 0, NULL, 0) == 0);
        } else {
            lens[i] = (size_t)(rng_next(&seed) % sizeof payloads[i]);
            fill_random(&seed, payloads[i], lens[i]);
            CHECK(ht_append_frame(&b, PH_REQUEST, "sys.echo", ids[i], 0, payloads[i],
                                 lens[i]) == 0);
        }
    }
    ht_say("one WriteFile of %lu bytes holding %d requests",
           (unsigned long)b.len, N);
    /* Read the replies while the write is in flight: a server may apply
     * back-pressure and stop reading until its replies are taken. */
    CHECK_OK(c, ht_write_start(c, b.data, b.len));
    for (i = 0; i < N; i++) {
        if (ht_expect_reply(c, ids[i], payloads[i], lens[i]) != 0) {
            PH_FAIL_HERE("reply %d of %d: %s", i + 1, N, c->why);
            return;
        }
    }
    CHECK_OK(c, ht_write_finish(c, HT_IO_TIMEOUT_MS));
    ph_buf_free(&b);
    ht_say("%d replies in order with the right ids and payloads", N);
    CHECK_OK(c, ht_ping(c, 1));
    ht_conn_close(c);
    CHECK_ALIVE(d);
}

static void case_disconnect_midframe(void)
{
    enum { WORKERS = 4 };
    static worker ws[WORKERS];
    static volatile LONG stop;
    ht_daemon *d;
    ht_conn *c;
    ph_buf b = {0};
    uint8_t payload[200], big_header[24];
    /* Cut points: inside frame_len, inside the header, right after it,
     * inside the route, inside the payload, one byte short. */
    const size_t cuts[] = {1, 3, 9, 16, 20, 100, 223};
    size_t i;
    int hung;
    LONG before = 0, after = 0;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_WORKERS_GOING(ws, WORKERS, d->pipe, &stop, 10);
    for (i = 0; i < WORKERS; i++)
        before += ws[i].done;

    memset(payload, 'p', sizeof payload);
    CHECK(ht_append_frame(&b, PH_REQUEST, "sys.echo", 99, 0, payload, sizeof payload) == 0);
    CHECK_EQ(b.len, 224);
    for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK_CONN(c, d->pipe);
        CHECK_OK(c, ht_write(c, b.data, cuts[i]));
        Sleep(20); /* let the server read the piece before the close */
        ht_conn_close(c);
        ht_say("wrote %lu of %lu bytes, closed", (unsigned long)cuts[i],
               (unsigned long)b.len);
    }
    /* A header announcing a full megabyte, then a close: the server may
     * have reserved room for it, and must let it go. */
    raw_header(big_header, PH_MAX_FRAME_DEFAULT, 1, PH_REQUEST, 8, 0, 7);
    memcpy(big_header + 16, "sys.echo", 8);
    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ht_write(c, big_header, sizeof big_header));
    CHECK_OK(c, ht_write(c, payload, sizeof payload));
    Sleep(20);
    ht_conn_close(c);
    ht_say("announced 1 MiB, sent 224 bytes, closed");
    ph_buf_free(&b);

    /* The workers must keep going after all that. */
    Sleep(200);
    stop = 1;
    hung = workers_join(ws, WORKERS, 60000);
    CHECK_EQ(hung, 0);
    CHECK_WORKERS(ws, WORKERS);
    for (i = 0; i < WORKERS; i++)
        after += ws[i].done;
    ht_say("workers did %ld round trips, %ld after the first cut", (long)after,
           (long)(after - before));
    CHECK(after > before);
    CHECK_ALIVE(d);

    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ht_ping(c, 1));
    CHECK_OK(c, ht_echo(c, 2, "after", 5));
    ht_conn_close(c);
    ht_say("a new client works afterwards");
}

/* Send a header announcing frame_len and the route that follows it, and
 * require ERROR TOO_LARGE id 0 and then a closed pipe. */
static int too_large_once(ht_conn *c, uint32_t frame_len)
{
    uint8_t h[24];

    raw_header(h, frame_len, 1, PH_REQUEST, 8, 0, 1234);
    memcpy(h + 16, "sys.echo", 8);
    if (ht_write(c, h, sizeof h) != 0)
        return -1;
    if (ht_expect_error(c, 0, PH_ETOOBIG, NULL) != 0)
        return -1;
    return ht_expect_closed(c, HT_IO_TIMEOUT_MS);
}

static void case_too_large(void)
{
    enum { WORKERS = 2 };
    static worker ws[WORKERS];
    static volatile LONG stop;
    char name_b[64], full_b[PH_PIPE_PATH_MAX + 1];
    ht_daemon *d, *d2;
    ht_conn *c;
    uint8_t *payload;
    uint64_t max_frame = 0;
    char *s;
    int hung;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_WORKERS_GOING(ws, WORKERS, d->pipe, &stop, 5);

    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ht_ping(c, 1)); /* the connection was fine before */
    CHECK_OK(c, too_large_once(c, 0xFFFFFFFFu));
    ht_conn_close(c);
    ht_say("frame_len 0xFFFFFFFF: ERROR TOO_LARGE id 0, then closed");

    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, too_large_once(c, PH_MAX_FRAME_DEFAULT + 1));
    ht_conn_close(c);
    ht_say("frame_len 1 MiB + 1: ERROR TOO_LARGE id 0, then closed");

    stop = 1;
    hung = workers_join(ws, WORKERS, 60000);
    CHECK_EQ(hung, 0);
    CHECK_WORKERS(ws, WORKERS);
    ht_say("the other clients kept working (%ld + %ld round trips)",
           (long)ws[0].done, (long)ws[1].done);
    CHECK_ALIVE(d);

    /* A second daemon with a small limit, named by its full path. */
    ht_pipe_name(name_b, sizeof name_b, "-b");
    snprintf(full_b, sizeof full_b, "%s%s", PH_PIPE_PREFIX, name_b);
    CHECK_DAEMON(full_b, "--max-frame 4096", d2);
    CHECK_CONN(c, d2->pipe);
    s = ht_call_text(c, "sys.hello", NULL);
    CHECK_OK(c, s == NULL);
    ht_say("hello: %s", s);
    CHECK(ht_json_u64(s, "max_frame", &max_frame) == 0);
    CHECK_EQ(max_frame, 4096);
    free(s);
    /* Exactly the limit is allowed... */
    payload = calloc(1, 4096);
    CHECK(payload != NULL);
    CHECK_OK(c, ht_echo(c, 2, payload, 4096 - PH_FRAME_HEADER_LEN - 8));
    free(payload);
    ht_say("--max-frame 4096: a 4096-byte frame is echoed");
    /* ...one more byte is not. */
    CHECK_OK(c, too_large_once(c, 4097));
    ht_conn_close(c);
    ht_say("--max-frame 4096: frame_len 4097 gets TOO_LARGE id 0, then closed");
    CHECK_ALIVE(d2);
}

static void case_no_route(void)
{
    ht_daemon *d;
    ht_conn *c;
    ph_buf b = {0};
    char long_route[PH_ROUTE_MAX + 1];
    static const char *routes[] = {"no.such.route", "sys.nothing", "sys",
                                   "a/b-c_d.e", "SYS.PING.X"};
    size_t i;
    uint32_t id = 100;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_CONN(c, d->pipe);

    for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        CHECK_OK(c, ht_send_request(c, routes[i], id, "x", 1));
        CHECK_OK(c, ht_expect_error(c, id, PH_ENOROUTE, NULL));
        id++;
        /* The connection stays usable. */
        CHECK_OK(c, ht_ping(c, id++));
        ht_say("%s: ERROR NO_ROUTE with its id; ping works after it",
               routes[i]);
    }
    memset(long_route, 'r', PH_ROUTE_MAX);
    long_route[PH_ROUTE_MAX] = '\0';
    CHECK_OK(c, ht_send_request(c, long_route, 777, NULL, 0));
    CHECK_OK(c, ht_expect_error(c, 777, PH_ENOROUTE, NULL));
    ht_say("a 255-byte route: ERROR NO_ROUTE");

    /* Errors keep their place among replies sent together. */
    CHECK(ht_append_frame(&b, PH_REQUEST, "sys.echo", 201, 0, "a", 1) == 0);
    CHECK(ht_append_frame(&b, PH_REQUEST, "nope", 202, 0, NULL, 0) == 0);
    CHECK(ht_append_frame(&b, PH_REQUEST, "sys.echo", 203, 0, "b", 1) == 0);
    CHECK(ht_append_frame(&b, PH_REQUEST, "nope", 204, 0, NULL, 0) == 0);
    CHECK_OK(c, ht_write(c, b.data, b.len));
    ph_buf_free(&b);
    CHECK_OK(c, ht_expect_reply(c, 201, "a", 1));
    CHECK_OK(c, ht_expect_error(c, 202, PH_ENOROUTE, NULL));
    CHECK_OK(c, ht_expect_reply(c, 203, "b", 1));
    CHECK_OK(c, ht_expect_error(c, 204, PH_ENOROUTE, NULL));
    CHECK_OK(c, ht_echo(c, 205, "still", 5));
    ht_say("pipelined: replies and errors in request order");
    ht_conn_close(c);
    CHECK_ALIVE(d);
}

typedef struct malformed {
    const char *what;
    uint8_t bytes[64];
    size_t len;
} malformed;

static void case_bad_frame(void)
{
    ht_daemon *d;
    ht_conn *c;
    malformed m[16];
    size_t n = 0, i;
    ph_buf b = {0};

    CHECK_DAEMON_INI(NULL, d);

    /* Each is a sys.ping REQUEST (id 42) broken in one way. */
#define PING(what_, len_, ver_, kind_, rlen_, flags_, route_)                 \
    do {                                                                      \
        m[n].what = (what_);                                                  \
        raw_header(m[n].bytes, (len_), (ver_), (kind_), (rlen_), (flags_), 42); \
        memcpy(m[n].bytes + 16, (route_), strlen(route_));                    \
        m[n].len = 16 + strlen(route_);                                       \
        n++;                                                                  \
    } while (0)
    PING("version 2", 24, 2, PH_REQUEST, 8, 0, "sys.ping");
    PING("version 0", 24, 0, PH_REQUEST, 8, 0, "sys.ping");
    PING("flags 0x01", 24, 1, PH_REQUEST, 8, 0x01, "sys.ping");
    PING("flags 0x80", 24, 1, PH_REQUEST, 8, 0x80, "sys.ping");
    PING("kind 9", 24, 1, 9, 8, 0, "sys.ping");
    PING("kind 0", 24, 1, 0, 8, 0, "sys.ping");
    PING("frame_len 8", 8, 1, PH_REQUEST, 0, 0, "");
    PING("frame_len 0", 0, 1, PH_REQUEST, 0, 0, "");
    PING("route_len 10 past frame_len 20", 20, 1, PH_REQUEST, 10, 0, "sys.");
    PING("route with a space", 24, 1, PH_REQUEST, 8, 0, "sys ping");
    PING("route with byte 0xC3", 24, 1, PH_REQUEST, 8, 0, "sys.\xC3ing");
    PING("REQUEST without a route", 16, 1, PH_REQUEST, 0, 0, "");
#undef PING

    for (i = 0; i < n; i++) {
        CHECK_CONN(c, d->pipe);
        CHECK_OK(c, ht_write(c, m[i].bytes, m[i].len));
        if (ht_expect_error(c, 0, PH_EBADFRAME, NULL) != 0 ||
            ht_expect_closed(c, HT_IO_TIMEOUT_MS) != 0) {
            PH_FAIL_HERE("%s: %s", m[i].what, c->why);
            ht_conn_close(c);
            return;
        }
        ht_conn_close(c);
        ht_say("%s: ERROR BAD_FRAME id 0, then closed", m[i].what);
    }

    /* A good request and a bad frame in one write: the good one is answered
     * first, then the error, then the close. */
    CHECK(ht_append_frame(&b, PH_REQUEST, "sys.echo", 5, 0, "good", 4) == 0);
    CHECK(ph_buf_append(&b, m[0].bytes, m[0].len) == PH_OK);
    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ht_write(c, b.data, b.len));
    ph_buf_free(&b);
    CHECK_OK(c, ht_expect_reply(c, 5, "good", 4));
    CHECK_OK(c, ht_expect_error(c, 0, PH_EBADFRAME, NULL));
    CHECK_OK(c, ht_expect_closed(c, HT_IO_TIMEOUT_MS));
    ht_conn_close(c);
    ht_say("good then bad: REPLY, ERROR BAD_FRAME, closed");

    CHECK_ALIVE(d);
    CHECK_SERVES(d);
}

static void case_hello(void)
{
    ht_daemon *d;
    ht_conn *c;
    uint64_t v = 0;
    char *s;

    CHECK_DAEMON_INI(NULL, d);
    CHECK_CONN(c, d->pipe);

    s = ht_call_text(c, "sys.hello", NULL);
    CHECK_OK(c, s == NULL);
    ht_say("hello: %s", s);
    CHECK(ht_json_is_object(s));
    CHECK(ht_json_is_string(s, "server", NULL));
    CHECK(ht_json_value(s, "version") != NULL);
    CHECK(ht_json_u64(s, "protocol", &v) == 0);
    CHECK_EQ(v, 1);
    CHECK(ht_json_u64(s, "max_frame", &v) == 0);
    CHECK_EQ(v, PH_MAX_FRAME_DEFAULT);
    free(s);

    s = ht_call_text(c, "sys.hello", "mytool");
    CHECK_OK(c, s == NULL);
    ht_say("hello mytool: %s", s);
    CHECK(ht_json_is_object(s));
    CHECK(strstr(s, "mytool") != NULL);
    CHECK(ht_json_is_string(s, "client", "mytool"));
    CHECK(ht_json_u64(s, "protocol", &v) == 0);
    CHECK_EQ(v, 1);
    free(s);
    ht_conn_close(c);
    CHECK_ALIVE(d);
}

static void case_client_library(void)
{
    char name[64], missing[64];
    ht_daemon *d;
    ph_client *cl = NULL;
    ph_reply r;
    ph_err err;
    uint8_t *big;
    uint64_t seed = g_seed;
    const size_t big_len = 64 * 1024;

    ht_pipe_name(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);

    /* Bare name. */
    err = ph_client_connect(name, 5000, &cl);
    CHECK_EQ(err, PH_OK);
    CHECK(cl != NULL);

    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "sys.echo", "abc", 3, 5000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.payload_len, 3);
    CHECK_MEM(r.payload, "abc", 3);
    CHECK_EQ(r.payload[3], '\0'); /* NUL-terminated for convenience */
    ph_reply_free(&r);
    ht_say("sys.echo \"abc\" ok");

    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "sys.ping", NULL, 0, 5000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.payload_len, 0);
    ph_reply_free(&r);
    ht_say("sys.ping ok");

    big = malloc(big_len);
    CHECK(big != NULL);
    fill_random(&seed, big, big_len);
    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "sys.echo", big, big_len, 10000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.payload_len, big_len);
    CHECK_MEM(r.payload, big, big_len);
    ph_reply_free(&r);
    free(big);
    ht_say("sys.echo of 64 KiB ok");

    /* An ERROR frame is an answer: PH_OK with kind ERROR. */
    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "no.such.route", "x", 1, 5000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_ERROR);
    CHECK_EQ(r.status, PH_ENOROUTE);
    ph_reply_free(&r);
    ht_say("unknown route: kind ERROR status NO_ROUTE");

    /* And the connection still works after it. */
    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "sys.echo", "again", 5, 5000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.payload_len, 5);
    CHECK_MEM(r.payload, "again", 5);
    ph_reply_free(&r);
    ph_client_close(cl);
    cl = NULL;

    /* Full path name. */
    err = ph_client_connect(d->pipe, 5000, &cl);
    CHECK_EQ(err, PH_OK);
    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "sys.ping", NULL, 0, 5000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    ph_reply_free(&r);
    ph_client_close(cl);
    cl = NULL;
    ht_say("connect by full path ok");

    /* Nothing serves this name: PH_ENOTFOUND, and promptly. */
    ht_pipe_name(missing, sizeof missing, "-missing");
    {
        uint64_t t0 = ht_ms_now();
        err = ph_client_connect(missing, 3000, &cl);
        CHECK_EQ(err, PH_ENOTFOUND);
        CHECK(cl == NULL);
        ht_say("missing pipe: PH_ENOTFOUND after %lu ms",
               (unsigned long)(ht_ms_now() - t0));
    }
    CHECK_ALIVE(d);
}

/* ---- settings from a config file (issue 3) --------------------------------- */

/* Run "pipehubd run ARGS" and wait for it to exit on its own; *code gets its
 * exit code. -1 when it is still running after timeout_ms (it is killed). */
static int run_to_exit(const char *args, uint32_t timeout_ms, DWORD *code)
{
    PROCESS_INFORMATION pi;
    STARTUPINFOA si;
    char cmd[1024];
    int rc = 0;

    snprintf(cmd, sizeof cmd, "\"%s\" run %s", ht_daemon_exe(), args);
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    ht_say("running: %s", cmd);
    if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
        return -1;
    ht_adopt(pi.hProcess);
    if (WaitForSingleObject(pi.hProcess, timeout_ms) != WAIT_OBJECT_0) {
        TerminateProcess(pi.hProcess, 1);
        WaitForSingleObject(pi.hProcess, 5000);
        rc = -1;
    } else if (!GetExitCodeProcess(pi.hProcess, code)) {
        rc = -1;
    }
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    return rc;
}

static void case_max_connections(void)
{
    ht_conn *a, *b, *c;
    ht_daemon *d;

    CHECK_DAEMON_INI("[server]\npending_instances = 1\nmax_connections = 2\n",
                     d);
    CHECK_CONN(a, d->pipe);
    CHECK_OK(a, ht_ping(a, 1));
    CHECK_CONN(b, d->pipe);
    CHECK_OK(b, ht_ping(b, 1));
    /* The third is told why, then closed; the first two do not notice. */
    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ht_expect_error(c, 0, PH_EBUSY, NULL));
    CHECK_OK(c, ht_expect_closed(c, HT_IO_TIMEOUT_MS));
    ht_conn_close(c);
    CHECK_OK(a, ht_echo(a, 2, "still here", 10));
    CHECK_OK(b, ht_echo(b, 2, "me too", 6));
    /* A freed slot serves the next client. */
    ht_conn_close(b);
    Sleep(300);
    CHECK_SERVES(d);
    ht_conn_close(a);
    CHECK_ALIVE(d);
}

static void case_idle_timeout(void)
{
    ht_conn *idle, *busy;
    ht_daemon *d;
    uint64_t start;
    int i;

    CHECK_DAEMON_INI("[limits]\nidle_timeout_ms = 1500\n", d);
    CHECK_CONN(idle, d->pipe);
    CHECK_OK(idle, ht_ping(idle, 1));
    CHECK_CONN(busy, d->pipe);
    start = ht_ms_now();
    /* busy talks every 250 ms for 4 s; idle says nothing and is closed
     * between 1.5 s and 1.5 s + one check (1 s) + slack. */
    for (i = 0; i < 16; i++) {
        CHECK_OK(busy, ht_ping(busy, (uint32_t)i + 1));
        Sleep(250);
    }
    CHECK_OK(idle, ht_expect_closed(idle, HT_IO_TIMEOUT_MS));
    ht_say("idle connection closed; busy one still served after %llu ms",
           (unsigned long long)(ht_ms_now() - start));
    CHECK_OK(busy, ht_ping(busy, 99));
    ht_conn_close(idle);
    ht_conn_close(busy);
    CHECK_ALIVE(d);
}

static void case_second_server(void)
{
    char name[64], args[200];
    DWORD code = 0;
    ht_daemon *d;

    ht_pipe_name(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);
    /* On Windows FILE_FLAG_FIRST_PIPE_INSTANCE refuses the second server;
     * Wine ignores that flag, and the probe open catches it there. */
    snprintf(args, sizeof args, "--pipe %s", name);
    CHECK_EQ(run_to_exit(args, 15000, &code), 0);
    CHECK(code != 0);
    CHECK_SERVES(d);
    CHECK_ALIVE(d);
}

static void case_bad_config_refused(void)
{
    char ini[MAX_PATH + 64], args[MAX_PATH + 200], name[64];
    DWORD code = 0;

    ht_pipe_name(name, sizeof name, "");
    /* An invalid security descriptor: the daemon must not start with some
     * other DACL than the one asked for. */
    CHECK(ht_write_ini("[security]\nsddl = D:(this is not SDDL)\n", ini,
                       sizeof ini) == 0);
    snprintf(args, sizeof args, "--pipe %s --config \"%s\"", name, ini);
    CHECK_EQ(run_to_exit(args, 15000, &code), 0);
    CHECK(code != 0);
    DeleteFileA(ini);
    /* A file with a typo. */
    CHECK(ht_write_ini("[server]\nmax_conections = 5\n", ini, sizeof ini) == 0);
    snprintf(args, sizeof args, "--pipe %s --config \"%s\"", name, ini);
    CHECK_EQ(run_to_exit(args, 15000, &code), 0);
    CHECK(code != 0);
    DeleteFileA(ini);
}

/* Clients that open the name and close it at once while the daemon starts
 * and refills (what a readiness probe does) must not stop it: a client that
 * came and went before ConnectNamedPipe leaves the instance in a state
 * (ERROR_NO_DATA) the server has to get past. */
typedef struct prober {
    const char *pipe;
    volatile LONG *stop;
    LONG opened;
} prober;

static DWORD WINAPI prober_main(void *arg)
{
    prober *p = arg;
    HANDLE h;

    while (!*p->stop) {
        h = CreateFileA(p->pipe, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                        OPEN_EXISTING, 0, NULL);
        if (h != INVALID_HANDLE_VALUE) {
            CloseHandle(h);
            p->opened++;
        }
    }
    return 0;
}

static void case_probe_storm(void)
{
    char name[64], full[PH_PIPE_PATH_MAX + 1];
    volatile LONG stop = 0;
    prober ps[4];
    HANDLE th[4];
    ht_daemon *d;
    int i, round;
    LONG opened = 0;

    ht_pipe_name(name, sizeof name, "");
    CHECK(ph_pipe_path(name, full, sizeof full) == PH_OK);
    for (i = 0; i < 4; i++) {
        ps[i].pipe = full;
        ps[i].stop = &stop;
        ps[i].opened = 0;
        th[i] = CreateThread(NULL, 0, prober_main, &ps[i], 0, NULL);
        CHECK(th[i] != NULL);
    }
    CHECK_DAEMON(name, NULL, d);
    /* Keep probing through connects and refills for a while. */
    for (round = 0; round < 20; round++) {
        CHECK_SERVES(d);
        CHECK_ALIVE(d);
    }
    stop = 1;
    WaitForMultipleObjects(4, th, TRUE, 10000);
    for (i = 0; i < 4; i++) {
        opened += ps[i].opened;
        CloseHandle(th[i]);
    }
    ht_say("probers opened and closed the pipe %ld times", (long)opened);
    CHECK(opened > 0);
    CHECK_SERVES(d);
    CHECK_ALIVE(d);
}

/* The [security] sddl is the pipe's DACL: a client it denies cannot open the
 * pipe. Real Windows only: Wine lets every client through any DACL. */
static void case_dacl_denies(void)
{
    char name[64], ini[MAX_PATH + 64], extra[MAX_PATH + 80], text[512];
    char sid[256];
    DWORD e = 0;
    HANDLE h;
    ht_daemon *d;

    if (ht_under_wine())
        SKIP("Wine ignores pipe DACLs: every client connects");
    /* Deny this user reading and writing the pipe's data, but not creating
     * instances of it (0x4), which the daemon, running as this user too,
     * needs. Deny ACEs come first, so being an administrator does not help. */
    CHECK(ht_own_sid(sid, sizeof sid) == 0);
    snprintf(text, sizeof text,
             "[security]\nsddl = D:P(D;;0x3;;;%s)(A;;GA;;;OW)(A;;GA;;;SY)"
             "(A;;GA;;;BA)\n", sid);
    CHECK(ht_write_ini(text, ini, sizeof ini) == 0);
    snprintf(extra, sizeof extra, "--config \"%s\"", ini);
    ht_pipe_name(name, sizeof name, "");
    CHECK_STARTED(ht_daemon_start_denied(name, extra, &d), name);
    h = ht_open_pipe(d->pipe, 2000, &e, NULL);
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    CHECK(h == INVALID_HANDLE_VALUE);
    CHECK_EQ(e, ERROR_ACCESS_DENIED);
    DeleteFileA(ini);
    CHECK_ALIVE(d);
}

/* ---- hold mode, for ctrl_c.sh ------------------------------------------- */

/* Open n connections, ping each, print "ready", then wait until the server
 * closes every one of them (it is being stopped with Ctrl+C). */
static int hold_main(int n, const char *name)
{
    char pipe[PH_PIPE_PATH_MAX + 1];
    ht_conn **cs;
    uint64_t deadline;
    int i, closed = 0, told = 0;

    if (n <= 0 || ph_pipe_path(name, pipe, sizeof pipe) != PH_OK) {
        fprintf(stderr, "hold: bad arguments\n");
        return 2;
    }
    cs = calloc((size_t)n, sizeof *cs);
    if (!cs)
        return 2;
    for (i = 0; i < n; i++) {
        cs[i] = ht_conn_open(pipe);
        if (!cs[i]) {
            fprintf(stderr, "hold: connection %d could not open %s\n", i, pipe);
            return 2;
        }
        if (ht_ping(cs[i], (uint32_t)i + 1) != 0) {
            fprintf(stderr, "hold: ping on connection %d: %s\n", i, cs[i]->why);
            return 2;
        }
    }
    printf("ready\n");
    fflush(stdout);

    /* The closes come all at once, so one shared deadline is enough. */
    deadline = ht_ms_now() + 30000;
    for (i = 0; i < n; i++) {
        for (;;) {
            ph_frame f;
            char d[300];
            ph_err err = ht_read(cs[i], &f, ht_ms_left(deadline));
            if (err == PH_ECLOSED) {
                closed++;
                break;
            }
            if (err != PH_OK) {
                fprintf(stderr, "hold: connection %d: %s\n", i, cs[i]->why);
                break;
            }
            if (f.kind == PH_EVENT && f.route_len == 12 &&
                memcmp(f.route, "sys.shutdown", 12) == 0) {
                told++;
                continue;
            }
            ht_describe(&f, d, sizeof d);
            fprintf(stderr, "hold: connection %d got an unasked frame: %s\n", i,
                    d);
        }
    }
    printf("%d of %d connections closed by the server, %d told sys.shutdown "
           "first\n", closed, n, told);
    fflush(stdout);
    for (i = 0; i < n; i++)
        ht_conn_close(cs[i]);
    free(cs);
    return closed == n && told == n ? 0 : 1;
}

/* ---- main ----------------------------------------------------------------- */

static const ht_case cases[] = {
    HT_CASE("ping_echo_stats", case_ping_echo_stats),
    HT_CASE("concurrent64", case_concurrent64),
    HT_CASE("byte_at_a_time", case_byte_at_a_time),
    HT_CASE("batch100", case_batch100),
    HT_CASE("disconnect_midframe", case_disconnect_midframe),
    HT_CASE("too_large", case_too_large),
    HT_CASE("no_route", case_no_route),
    HT_CASE("bad_frame", case_bad_frame),
    HT_CASE("hello", case_hello),
    HT_CASE("client_library", case_client_library),
    HT_CASE("max_connections", case_max_connections),
    HT_CASE("idle_timeout", case_idle_timeout),
    HT_CASE("second_server", case_second_server),
    HT_CASE("bad_config_refused", case_bad_config_refused),
    HT_CASE("probe_storm", case_probe_storm),
    HT_CASE("dacl_denies", case_dacl_denies),
};

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "hold") == 0)
        return hold_main(atoi(argv[2]), argv[3]);
    /* Payloads are random; the seed printed makes a run reproducible. */
    g_seed = ((uint64_t)GetTickCount64() << 20) ^ GetCurrentProcessId() ^
             0x5DEECE66Dull;
    printf("seed 0x%016llx\n", (unsigned long long)g_seed);
    return ht_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
