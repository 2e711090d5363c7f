/* Frames bigger than a client's output quota, through the hub: a daemon
 * with max_frame_bytes at 17 MiB and send_queue_bytes at its 4 MiB default
 * routes a 16 MiB call and reply and a 16 MiB event to two subscribers,
 * and still disconnects a caller that really does not read
 * (docs/CONFIG.md, "How send_queue_bytes and max_frame_bytes relate").
 *
 *   test_big_frames CASE PATH_TO_PIPEHUBD_EXE
 *
 * The clients are the C library's, as an application's would be; the
 * caller that does not read is a raw connection, which reads nothing. */
#include <windows.h>

#include <stdlib.h>
#include <string.h>

#include "hubtest_client.h"

#define BIG (16u * 1024u * 1024u)
#define INI "[server]\nmax_frame_bytes = 17825792\n"
/* 16 MiB crosses wineserver at about 9 MB/s; a round trip moves it four
 * times (caller, hub, provider, hub, caller). Generous, as every wait. */
#define BIG_WAIT_MS 120000u
#define WAIT_MS 20000u

/* Bytes no two positions of which repeat within 251, seeded per sender. */
static uint8_t *pattern(uint8_t seed)
{
    uint8_t *p = malloc(BIG);
    size_t i;

    for (i = 0; p != NULL && i < BIG; i++)
        p[i] = (uint8_t)(i % 251 + seed);
    return p;
}

/* The first byte where got differs from the pattern, or -1. */
static long long mismatch(const void *got, size_t len, uint8_t seed)
{
    const uint8_t *g = got;
    size_t i;

    if (len != BIG)
        return (long long)(len < BIG ? len : BIG);
    for (i = 0; i < len; i++)
        if (g[i] != (uint8_t)(i % 251 + seed))
            return (long long)i;
    return -1;
}

/* sys.stats's slow_disconnects, through a connection of its own. */
static int slow_disconnects(const char *pipe, uint64_t *n)
{
    ph_client *c;
    ph_reply r;
    int rc = -1;

    if (ph_client_connect(pipe, WAIT_MS, &c) != PH_OK)
        return -1;
    if (ph_client_call(c, "sys.stats", NULL, 0, WAIT_MS, &r) == PH_OK) {
        if (r.kind == PH_REPLY &&
            ht_json_u64((const char *)r.payload, "slow_disconnects", n) == 0)
            rc = 0;
        ph_reply_free(&r);
    }
    ph_client_close(c);
    return rc;
}

/* ---- cases ----------------------------------------------------------------- */

typedef struct done_rec {
    volatile int calls;
    ph_err err;
    uint8_t kind;
    long long bad_at;         /* mismatch() of the reply */
} done_rec;

static void on_done(void *ctx, ph_err err, const ph_frame *reply)
{
    done_rec *d = ctx;

    d->err = err;
    if (reply != NULL) {
        d->kind = reply->kind;
        d->bad_at = mismatch(reply->payload, reply->payload_len, 7);
    }
    d->calls++;
}

/* A 16 MiB call through the hub to a provider that answers 16 MiB: the
 * caller reads, so it gets its reply, byte for byte, and nobody is
 * disconnected. */
static void big_routed_call(void)
{
    static ht_provider p;
    ph_client *caller = NULL;
    uint8_t *req = pattern(3), *rep = pattern(7);
    ULONGLONG t0, deadline;
    done_rec rec;
    uint64_t slow = 99;
    ht_daemon *d;

    memset(&p, 0, sizeof p);
    memset(&rec, 0, sizeof rec);
    CHECK(req != NULL && rep != NULL);
    p.reply = rep;
    p.reply_len = BIG;
    CHECK_DAEMON_INI(INI, d);
    CHECK_EQ(ht_provider_start(&p, d->pipe, 0, "blob.echo"), 0);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &caller), PH_OK);
    t0 = GetTickCount64();
    CHECK_EQ(ph_client_call_async(caller, "blob.echo", req, BIG, BIG_WAIT_MS,
                                  on_done, &rec),
             PH_OK);
    deadline = t0 + BIG_WAIT_MS + 5000;
    while (rec.calls == 0 && GetTickCount64() < deadline)
        CHECK_EQ(ph_client_poll(caller, 500, NULL), PH_OK);
    CHECK_EQ(rec.calls, 1);
    CHECK_EQ(rec.err, PH_OK);
    CHECK_EQ(rec.kind, PH_REPLY);
    CHECK_EQ(rec.bad_at, -1);
    CHECK_EQ(p.served, 1);
    ht_say("a 16 MiB call and its 16 MiB reply went through the hub in %llu "
           "ms with send_queue_bytes 4 MiB",
           (unsigned long long)(GetTickCount64() - t0));
    CHECK_EQ(slow_disconnects(d->pipe, &slow), 0);
    CHECK_EQ(slow, 0);
    ph_client_close(caller);
    ht_provider_stop(&p);
    free(req);
    free(rep);
    CHECK_ALIVE(d);
}

typedef struct got_event {
    volatile int n;
    long long bad_at;
} got_event;

static void on_event(void *ctx, const char *topic, const void *payload,
                     size_t len)
{
    got_event *g = ctx;

    (void)topic;
    g->bad_at = mismatch(payload, len, 5);
    g->n++;
}

/* One 16 MiB event to two subscribers that read. */
static void big_event_fanout(void)
{
    ph_client *pub = NULL, *s1 = NULL, *s2 = NULL;
    uint8_t *ev = pattern(5);
    got_event g1, g2;
    ULONGLONG t0, deadline;
    uint64_t slow = 99;
    ht_daemon *d;

    memset(&g1, 0, sizeof g1);
    memset(&g2, 0, sizeof g2);
    CHECK(ev != NULL);
    CHECK_DAEMON_INI(INI, d);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &pub), PH_OK);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &s1), PH_OK);
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &s2), PH_OK);
    CHECK_EQ(ph_client_subscribe(s1, "blob.news", on_event, &g1, WAIT_MS),
             PH_OK);
    CHECK_EQ(ph_client_subscribe(s2, "blob.*", on_event, &g2, WAIT_MS),
             PH_OK);
    t0 = GetTickCount64();
    CHECK_EQ(ph_client_publish(pub, "blob.news", ev, BIG), PH_OK);
    CHECK_EQ(ph_client_flush(pub, BIG_WAIT_MS), PH_OK);
    deadline = t0 + BIG_WAIT_MS;
    while ((g1.n == 0 || g2.n == 0) && GetTickCount64() < deadline) {
        CHECK_EQ(ph_client_poll(s1, 200, NULL), PH_OK);
        CHECK_EQ(ph_client_poll(s2, 200, NULL), PH_OK);
    }
    CHECK_EQ(g1.n, 1);
    CHECK_EQ(g2.n, 1);
    CHECK_EQ(g1.bad_at, -1);
    CHECK_EQ(g2.bad_at, -1);
    ht_say("one 16 MiB event reached two subscribers byte for byte in %llu ms",
           (unsigned long long)(GetTickCount64() - t0));
    CHECK_EQ(slow_disconnects(d->pipe, &slow), 0);
    CHECK_EQ(slow, 0);
    ph_client_close(pub);
    ph_client_close(s1);
    ph_client_close(s2);
    free(ev);
    CHECK_ALIVE(d);
}

/* A caller that asks for two 16 MiB replies and reads nothing: the first
 * fits its empty queue, the second finds it over its quota, and the
 * caller, not the provider, is disconnected and counted. */
static void big_caller_not_reading(void)
{
    static ht_provider p;
    uint8_t *rep = pattern(7);
    ph_client *other = NULL;
    ht_conn *lazy = NULL;
    ULONGLONG deadline;
    uint64_t slow = 0;
    done_rec rec;
    ht_daemon *d;

    memset(&p, 0, sizeof p);
    memset(&rec, 0, sizeof rec);
    CHECK(rep != NULL);
    p.reply = rep;
    p.reply_len = BIG;
    CHECK_DAEMON_INI(INI, d);
    CHECK_EQ(ht_provider_start(&p, d->pipe, 0, "blob.big"), 0);
    CHECK((lazy = ht_conn_open(d->pipe)) != NULL);
    CHECK_EQ(ht_send_request(lazy, "blob.big", 1, "x", 1), 0);
    CHECK_EQ(ht_send_request(lazy, "blob.big", 2, "x", 1), 0);
    deadline = GetTickCount64() + BIG_WAIT_MS;
    while (GetTickCount64() < deadline) {
        CHECK_EQ(slow_disconnects(d->pipe, &slow), 0);
        if (slow > 0)
            break;
        Sleep(250);
    }
    CHECK_EQ(slow, 1);
    CHECK_EQ(p.served, 2);
    ht_say("a caller that read neither of two 16 MiB replies was disconnected");
    /* The provider was not: a reading caller still gets its answer. */
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &other), PH_OK);
    CHECK_EQ(ph_client_call_async(other, "blob.big", "y", 1, BIG_WAIT_MS,
                                  on_done, &rec),
             PH_OK);
    deadline = GetTickCount64() + BIG_WAIT_MS;
    while (rec.calls == 0 && GetTickCount64() < deadline)
        CHECK_EQ(ph_client_poll(other, 500, NULL), PH_OK);
    CHECK_EQ(rec.err, PH_OK);
    CHECK_EQ(rec.kind, PH_REPLY);
    CHECK_EQ(rec.bad_at, -1);
    CHECK_EQ(slow_disconnects(d->pipe, &slow), 0);
    CHECK_EQ(slow, 1);
    ph_client_close(other);
    ht_conn_close(lazy);
    ht_provider_stop(&p);
    free(rep);
    CHECK_ALIVE(d);
}

static const ht_case cases[] = {
    HT_CASE("routed_call", big_routed_call),
    HT_CASE("event_fanout", big_event_fanout),
    HT_CASE("caller_not_reading", big_caller_not_reading),
};

int main(int argc, char **argv)
{
    return ht_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
