/* The hub's decisions, driven through a fake transport (hub_fake.h): no I/O,
 * no threads, every frame checked. */
#include "harness.h"

#include "hub_fake.h"
#include "platform.h"
#include "unit_util.h"

#define EXPECT_NEXT(id, f) CHECK(fake_next((id), (f)))
#define EXPECT_NONE(id)                                                       \
    do {                                                                      \
        ph_frame ph__f;                                                       \
        CHECK(!fake_next((id), &ph__f));                                      \
    } while (0)
#define EXPECT_CHECK()                                                        \
    do {                                                                      \
        const char *ph__why = ph_hub_check(F.hub);                            \
        if (ph__why != NULL) {                                                \
            PH_FAIL_HERE("invariant: %s", ph__why);                           \
            return;                                                           \
        }                                                                     \
    } while (0)

static ph_hub_stats stats(void)
{
    ph_hub_stats s;

    ph_hub_get_stats(F.hub, &s);
    return s;
}

/* Start a hub with these limits and conns 1..n. */
#define START_WITH(limits, n)                                                 \
    do {                                                                      \
        ph_hub_limits ph__l = (limits);                                       \
        uint32_t ph__i;                                                       \
        CHECK_EQ(fake_start(&ph__l), PH_OK);                                  \
        F.quiet = 1;                                                          \
        for (ph__i = 1; ph__i <= (n); ph__i++)                                \
            CHECK_EQ(fake_connect(ph__i), PH_OK);                             \
    } while (0)

/* Start a hub with the fake's limits and conns 1..n. */
#define START(n) START_WITH(fake_limits(), n)

/* Conn from sends a request; the next frame queued for it (its answer,
 * unless something else came first) goes to *f. */
#define ASK(from, route, id, payload, f)                                      \
    do {                                                                      \
        CHECK_EQ(fake_req((from), (route), (id), (payload)), PH_OK);          \
        EXPECT_NEXT((from), (f));                                             \
    } while (0)

/* Setting up: conn id asks route with payload, nothing else being queued
 * for it, and is answered with a REPLY, which is dropped. 1 when so. */
static int set_up(uint32_t id, const char *route, const char *payload)
{
    ph_frame f;
    int ok = fake_req(id, route, 1, payload) == PH_OK && fake_next(id, &f) &&
             f.kind == PH_REPLY;

    fake_drain(id);
    return ok;
}

/* Conn id provides pattern ("name [exclusive]"), or subscribes to it. */
#define REGISTER(id, pattern) CHECK(set_up((id), "sys.register", (pattern)))
#define SUBSCRIBE(id, pattern) CHECK(set_up((id), "sys.subscribe", (pattern)))

static void test_call_through_provider(void)
{
    ph_frame f;
    uint32_t hub_id;

    START(2);
    ASK(1, "sys.register", 1, "calc.add", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK_EQ(f.id, 1);
    CHECK(payload_has(&f, "\"state\":\"serving\""));
    CHECK(payload_has(&f, "\"mode\":\"shared\""));

    CHECK_EQ(fake_req(2, "calc.add", 77, "1 2"), PH_OK);
    EXPECT_NONE(2);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(f.kind, PH_REQUEST);
    CHECK(route_is(&f, "calc.add"));
    CHECK(payload_is(&f, "1 2"));
    CHECK_EQ(f.status, 2); /* the caller's connection id */
    CHECK(f.id != 0);
    CHECK(F.c[1].kicks > 0);
    hub_id = f.id;

    CHECK_EQ(fake_frame(1, PH_REPLY, "", hub_id, 0, "3", 1), PH_OK);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK_EQ(f.id, 77);
    CHECK(payload_is(&f, "3"));
    CHECK_EQ(f.route_len, 0);

    /* Answering again is dropped and counted, never delivered. */
    CHECK_EQ(fake_frame(1, PH_REPLY, "", hub_id, 0, "3", 1), PH_OK);
    EXPECT_NONE(2);
    EXPECT_NONE(1);
    CHECK_EQ(stats().replies_dropped, 1);
    CHECK_EQ(stats().requests_forwarded, 1);

    /* A provider's ERROR passes with its status. */
    CHECK_EQ(fake_req(2, "calc.add", 78, "x"), PH_OK);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(fake_frame(1, PH_ERROR, "", f.id, 300, "bad number", 10), PH_OK);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.kind, PH_ERROR);
    CHECK_EQ(f.id, 78);
    CHECK_EQ(f.status, 300);
    CHECK(payload_is(&f, "bad number"));
    EXPECT_CHECK();
    fake_stop();
}

static void test_no_route_and_sys_refused(void)
{
    /* Requests refused with an ERROR; the first is request id 6. */
    static const struct {
        const char *route, *payload;
        uint32_t status;
    } refused[] = {
        {"sys.register", "sys.ping", PH_EFORBIDDEN},
        {"sys.register", "sys.*", PH_EFORBIDDEN},
        {"sys.register", "*", PH_EBADREQ},
        {"sys.register", "a.*.b", PH_EBADREQ},
        {"sys.register", "a shared", PH_EBADREQ},
        {"sys.register", "", PH_EBADREQ},
        {"sys.nothing", "", PH_ENOROUTE},
        {"sys.unregister", "never.registered", PH_ENOROUTE},
    };
    ph_frame f;
    uint32_t i;

    START(1);
    ASK(1, "nobody.home", 5, "", &f);
    CHECK_EQ(f.kind, PH_ERROR);
    CHECK_EQ(f.status, PH_ENOROUTE);
    CHECK_EQ(f.id, 5);
    CHECK(payload_has(&f, "nobody.home"));

    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ASK(1, refused[i].route, 6 + i, refused[i].payload, &f);
        if (f.kind != PH_ERROR || f.id != 6 + i ||
            f.status != refused[i].status) {
            PH_FAIL_HERE("%s \"%s\": kind %u, id %u, status %u; want ERROR "
                         "%u", refused[i].route, refused[i].payload,
                         (unsigned)f.kind, (unsigned)f.id, (unsigned)f.status,
                         (unsigned)refused[i].status);
            return;
        }
    }
    /* Clients may not publish the hub's topics. */
    CHECK_EQ(fake_frame(1, PH_EVENT, "sys.route.up", 0, 0, "x", 1), PH_OK);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    EXPECT_CHECK();
    fake_stop();
}

static void test_round_robin(void)
{
    ph_frame f;
    int got[4] = {0}, i;
    uint32_t p;

    START(4);
    for (p = 1; p <= 3; p++)
        REGISTER(p, "work");
    /* 100 at a time: the in-flight limit is 128. */
    for (i = 0; i < 300; i++) {
        CHECK_EQ(fake_req(4, "work", (uint32_t)i + 1, "x"), PH_OK);
        if (i % 100 != 99)
            continue;
        for (p = 1; p <= 3; p++) {
            while (fake_next(p, &f)) {
                CHECK_EQ(f.kind, PH_REQUEST);
                got[p]++;
                CHECK_EQ(fake_frame(p, PH_REPLY, "", f.id, 0, "ok", 2), PH_OK);
            }
        }
    }
    CHECK_EQ(got[1], 100);
    CHECK_EQ(got[2], 100);
    CHECK_EQ(got[3], 100);
    for (i = 0; i < 300; i++) {
        EXPECT_NEXT(4, &f);
        CHECK_EQ(f.kind, PH_REPLY);
    }
    EXPECT_CHECK();
    fake_stop();
}

static void test_most_specific_wins(void)
{
    /* Which of the providers 1..3 gets a request for the route. */
    static const struct {
        const char *route;
        uint32_t provider;
    } calls[] = {{"billing.invoice.list", 3},
                 {"billing.invoice.get", 2},
                 {"billing.get", 1}};
    ph_frame f;
    uint32_t i;

    START(4);
    REGISTER(1, "billing.*");
    REGISTER(2, "billing.invoice.*");
    REGISTER(3, "billing.invoice.list");
    for (i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        CHECK_EQ(fake_req(4, calls[i].route, i + 1, ""), PH_OK);
        EXPECT_NEXT(calls[i].provider, &f);
        CHECK(route_is(&f, calls[i].route));
    }
    /* "billing.*" does not serve "billing" itself. */
    ASK(4, "billing", 4, "", &f);
    CHECK_EQ(f.status, PH_ENOROUTE);
    EXPECT_NONE(1);
    EXPECT_NONE(2);
    EXPECT_NONE(3);
    EXPECT_CHECK();
    fake_stop();
}

static void test_exclusive_line(void)
{
    ph_frame f;

    START(5);
    SUBSCRIBE(5, "sys.route.*");
    ASK(1, "sys.register", 1, "db exclusive", &f);
    CHECK(payload_has(&f, "\"mode\":\"exclusive\",\"state\":\"serving\""));
    EXPECT_NEXT(5, &f);
    CHECK(route_is(&f, "sys.route.up"));
    CHECK(payload_is(&f, "db"));

    /* A shared provider is refused, naming the holder. */
    ASK(2, "sys.register", 1, "db", &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    CHECK(payload_has(&f, "conn 1 (pid 1001)"));
    /* Two more exclusive ones wait in line. */
    ASK(3, "sys.register", 1, "db exclusive", &f);
    CHECK(payload_has(&f, "\"state\":\"waiting\",\"position\":1"));
    ASK(4, "sys.register", 1, "db exclusive", &f);
    CHECK(payload_has(&f, "\"position\":2"));
    EXPECT_CHECK();

    /* The holder leaves: 3 takes over, is told, and serves. */
    fake_disconnect(1);
    EXPECT_NEXT(3, &f);
    CHECK_EQ(f.kind, PH_EVENT);
    CHECK(route_is(&f, "sys.route.acquired"));
    CHECK(payload_is(&f, "db"));
    EXPECT_NEXT(5, &f);
    CHECK(route_is(&f, "sys.route.down"));
    EXPECT_NEXT(5, &f);
    CHECK(route_is(&f, "sys.route.up"));
    EXPECT_NONE(4);
    CHECK_EQ(fake_req(2, "db", 9, "q"), PH_OK);
    EXPECT_NEXT(3, &f);
    CHECK_EQ(f.kind, PH_REQUEST);

    /* 3 unregisters with that request unanswered: UNAVAILABLE, 4 next. */
    ASK(3, "sys.unregister", 2, "db", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.status, PH_EUNAVAIL);
    CHECK_EQ(f.id, 9);
    EXPECT_NEXT(4, &f);
    CHECK(route_is(&f, "sys.route.acquired"));
    fake_disconnect(4);
    EXPECT_NEXT(5, &f);
    CHECK(route_is(&f, "sys.route.down"));
    EXPECT_NEXT(5, &f);
    CHECK(route_is(&f, "sys.route.up"));
    EXPECT_NEXT(5, &f);
    CHECK(route_is(&f, "sys.route.down"));
    CHECK(payload_is(&f, "db"));
    EXPECT_NONE(5);
    EXPECT_CHECK();

    /* An exclusive request on a shared route is refused. */
    REGISTER(2, "kv");
    ASK(3, "sys.register", 3, "kv exclusive", &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    /* Registering twice changes nothing. */
    ASK(2, "sys.register", 4, "kv", &f);
    CHECK(payload_has(&f, "\"state\":\"serving\""));
    EXPECT_CHECK();
    fake_stop();
}

static void test_provider_gone(void)
{
    ph_frame f;
    int i, unavailable = 0, replies = 0;

    START(3);
    REGISTER(1, "svc");
    REGISTER(2, "svc");
    for (i = 1; i <= 10; i++)
        CHECK_EQ(fake_req(3, "svc", (uint32_t)i, ""), PH_OK);
    fake_disconnect(1);
    while (fake_next(3, &f)) {
        CHECK_EQ(f.kind, PH_ERROR);
        CHECK_EQ(f.status, PH_EUNAVAIL);
        unavailable++;
    }
    CHECK_EQ(unavailable, 5);
    /* The other keeps serving, new requests too. */
    for (i = 11; i <= 15; i++)
        CHECK_EQ(fake_req(3, "svc", (uint32_t)i, ""), PH_OK);
    while (fake_next(2, &f))
        CHECK_EQ(fake_frame(2, PH_REPLY, "", f.id, 0, "", 0), PH_OK);
    while (fake_next(3, &f)) {
        CHECK_EQ(f.kind, PH_REPLY);
        replies++;
    }
    CHECK_EQ(replies, 10);
    CHECK_EQ(stats().requests_unavailable, 5);
    EXPECT_CHECK();
    fake_stop();
}

static void test_timeout_and_late_reply(void)
{
    ph_frame f;
    ph_hub_limits l = fake_limits();
    ph_route_rule rules[] = {{.name = "slow.*", .request_timeout_ms = 5000},
                             {.name = "slow.fast", .request_timeout_ms = 200}};
    uint32_t a, b;

    l.request_timeout_ms = 1000;
    l.rules = rules;
    l.nrules = 2;
    START_WITH(l, 2);
    REGISTER(1, "slow.*");
    REGISTER(1, "other");
    CHECK_EQ(fake_req(2, "slow.fast", 1, ""), PH_OK);  /* 200 ms */
    CHECK_EQ(fake_req(2, "slow.big", 2, ""), PH_OK);   /* 5000 ms */
    CHECK_EQ(fake_req(2, "other", 3, ""), PH_OK);      /* 1000 ms */
    EXPECT_NEXT(1, &f);
    a = f.id;
    EXPECT_NEXT(1, &f);
    b = f.id;
    F.now += 199;
    CHECK(ph_hub_tick(F.hub) <= 1);
    EXPECT_NONE(2);
    F.now += 1;
    ph_hub_tick(F.hub);
    ph_hub_flush(F.hub);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.status, PH_ETIMEDOUT);
    CHECK_EQ(f.id, 1);
    EXPECT_NONE(2);
    F.now += 800;
    ph_hub_tick(F.hub);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.id, 3);
    CHECK_EQ(f.status, PH_ETIMEDOUT);
    /* The late answer is dropped; the one still due goes through. */
    CHECK_EQ(fake_frame(1, PH_REPLY, "", a, 0, "late", 4), PH_OK);
    EXPECT_NONE(2);
    CHECK_EQ(stats().replies_dropped, 1);
    CHECK_EQ(fake_frame(1, PH_REPLY, "", b, 0, "ok", 2), PH_OK);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.id, 2);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK_EQ(stats().requests_timed_out, 2);
    CHECK_EQ(ph_hub_tick(F.hub), UINT32_MAX);
    EXPECT_CHECK();
    fake_stop();
}

static void test_inflight_and_busy_provider(void)
{
    ph_frame f;
    ph_hub_limits l = fake_limits();
    int i;

    l.max_inflight_per_client = 4;
    START_WITH(l, 2);
    REGISTER(1, "svc");
    for (i = 1; i <= 5; i++)
        CHECK_EQ(fake_req(2, "svc", (uint32_t)i, ""), PH_OK);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.id, 5);
    CHECK_EQ(f.status, PH_EBUSY);
    CHECK(payload_has(&f, "max_inflight_per_client"));
    EXPECT_NEXT(1, &f);
    CHECK_EQ(fake_frame(1, PH_REPLY, "", f.id, 0, "", 0), PH_OK);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.id, 1);
    CHECK_EQ(fake_req(2, "svc", 6, ""), PH_OK);
    EXPECT_NONE(2);

    /* A provider that does not read: callers get BUSY, not a queue. */
    F.c[1].extra = l.send_queue_bytes;
    CHECK_EQ(fake_req(1, "sys.ping", 1, ""), PH_OK); /* unrelated */
    fake_drain(1);
    CHECK_EQ(fake_connect(3), PH_OK);
    ASK(3, "svc", 1, "", &f);
    CHECK_EQ(f.status, PH_EBUSY);
    CHECK(payload_has(&f, "not keeping up"));
    CHECK(!F.c[1].closed);
    CHECK_EQ(stats().requests_busy, 2);
    EXPECT_CHECK();
    fake_stop();
}

static void test_publish_subscribe(void)
{
    ph_frame f;

    START(5);
    SUBSCRIBE(1, "build.done");
    SUBSCRIBE(2, "build.*");
    SUBSCRIBE(3, "*");
    /* Overlapping patterns on one connection: delivered once. */
    CHECK_EQ(fake_req(4, "sys.subscribe", 1, "build.*"), PH_OK);
    CHECK_EQ(fake_req(4, "sys.subscribe", 2, "build.done"), PH_OK);
    CHECK_EQ(fake_req(4, "sys.subscribe", 3, "*"), PH_OK);
    CHECK_EQ(fake_req(4, "sys.subscribe", 4, "*"), PH_OK); /* twice: no-op */
    EXPECT_NEXT(4, &f);
    EXPECT_NEXT(4, &f);
    EXPECT_NEXT(4, &f);
    EXPECT_NEXT(4, &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK_EQ(f.id, 4);

    CHECK_EQ(fake_frame(5, PH_EVENT, "build.done", 0, 0, "ok", 2), PH_OK);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(f.kind, PH_EVENT);
    CHECK(route_is(&f, "build.done"));
    CHECK(payload_is(&f, "ok"));
    EXPECT_NEXT(2, &f);
    EXPECT_NEXT(3, &f);
    EXPECT_NEXT(4, &f);
    EXPECT_NONE(4);
    EXPECT_NONE(5); /* the publisher did not subscribe */

    CHECK_EQ(fake_frame(5, PH_EVENT, "build.start", 0, 0, "", 0), PH_OK);
    EXPECT_NONE(1);
    EXPECT_NEXT(2, &f);
    CHECK(route_is(&f, "build.start"));
    CHECK_EQ(fake_frame(5, PH_EVENT, "build", 0, 0, "", 0), PH_OK);
    EXPECT_NONE(2); /* "build.*" is not "build" */
    EXPECT_NEXT(3, &f);
    EXPECT_NEXT(3, &f);

    /* Unheard topics are counted, not errors. */
    ASK(3, "sys.unsubscribe", 9, "*", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK_EQ(fake_req(4, "sys.unsubscribe", 9, "*"), PH_OK);
    fake_drain(4);
    CHECK_EQ(fake_frame(5, PH_EVENT, "nobody", 0, 0, "", 0), PH_OK);
    EXPECT_NONE(5);
    CHECK_EQ(stats().events_unheard, 1);
    ASK(3, "sys.unsubscribe", 10, "*", &f);
    CHECK_EQ(f.status, PH_ENOROUTE);

    /* The sender gets its own event when it subscribed. */
    SUBSCRIBE(5, "self.*");
    CHECK_EQ(fake_frame(5, PH_EVENT, "self.x", 0, 0, "me", 2), PH_OK);
    EXPECT_NEXT(5, &f);
    CHECK(payload_is(&f, "me"));
    ASK(5, "sys.subscribe", 1, "bad*", &f);
    CHECK_EQ(f.status, PH_EBADREQ);
    EXPECT_CHECK();
    fake_stop();
}

static void test_slow_subscriber_dropped(void)
{
    ph_frame f;
    char payload[1000];
    int i, got = 0;

    START(3);
    memset(payload, 'e', sizeof payload);
    SUBSCRIBE(1, "t");
    SUBSCRIBE(2, "t");
    for (i = 0; i < 200; i++) {
        CHECK_EQ(fake_frame(3, PH_EVENT, "t", 0, 0, payload, sizeof payload),
                 PH_OK);
        while (fake_next(2, &f)) /* 2 reads, 1 does not */
            got++;
    }
    CHECK_EQ(got, 200);
    CHECK(F.c[1].closed);
    CHECK(!F.c[2].closed);
    /* Its queue passed the quota by one event at most. */
    CHECK(F.c[1].q.len <= 64 * 1024 + sizeof payload + 32);
    CHECK_EQ(stats().slow_disconnects, 1);
    fake_disconnect(1);
    EXPECT_CHECK();
    fake_stop();
}

/* A reply, a request or an event bigger than send_queue_bytes reaches a
 * receiver whose queue is empty: the quota is for output that piles up,
 * not for one frame (which max_frame already bounds). A receiver that
 * has not read the first big frame when the second comes is over quota
 * and is disconnected as before. */
static void test_big_frames_pass_quota(void)
{
    size_t big = 200 * 1024; /* the fake's quota is 64 KiB */
    char *payload = malloc(big);
    ph_frame f;
    uint32_t hub_id;

    CHECK(payload != NULL);
    memset(payload, 'b', big);
    START(4);
    REGISTER(1, "blob.get");
    SUBSCRIBE(3, "blob.news");
    SUBSCRIBE(4, "blob.*");
    /* Request and reply, both over the quota. */
    CHECK_EQ(fake_frame(2, PH_REQUEST, "blob.get", 9, 0, payload, big), PH_OK);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(f.kind, PH_REQUEST);
    CHECK_EQ(f.payload_len, big);
    hub_id = f.id;
    CHECK_EQ(fake_frame(1, PH_REPLY, "", hub_id, 0, payload, big), PH_OK);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK_EQ(f.id, 9);
    CHECK_EQ(f.payload_len, big);
    CHECK(!F.c[2].closed);
    /* One event over the quota to two subscribers. */
    CHECK_EQ(fake_frame(2, PH_EVENT, "blob.news", 0, 0, payload, big), PH_OK);
    EXPECT_NEXT(3, &f);
    CHECK_EQ(f.payload_len, big);
    CHECK(F.c[4].q.len > big); /* queued, and 4 does not read it */
    CHECK(!F.c[3].closed && !F.c[4].closed);
    CHECK_EQ(stats().slow_disconnects, 0);
    /* 3 reads what it got, 4 does not: the next one closes 4 only. */
    fake_drain(3);
    CHECK_EQ(fake_frame(2, PH_EVENT, "blob.news", 0, 0, payload, big), PH_OK);
    EXPECT_NEXT(3, &f);
    CHECK(!F.c[3].closed);
    CHECK(F.c[4].closed);
    CHECK_EQ(stats().slow_disconnects, 1);
    /* A caller that has not read its first big reply loses the second. */
    CHECK_EQ(fake_frame(2, PH_REQUEST, "blob.get", 10, 0, "x", 1), PH_OK);
    CHECK_EQ(fake_frame(2, PH_REQUEST, "blob.get", 11, 0, "x", 1), PH_OK);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(fake_frame(1, PH_REPLY, "", f.id, 0, payload, big), PH_OK);
    CHECK(!F.c[2].closed);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(fake_frame(1, PH_REPLY, "", f.id, 0, payload, big), PH_OK);
    CHECK(F.c[2].closed);
    CHECK_EQ(stats().slow_disconnects, 2);
    free(payload);
    fake_disconnect(2);
    fake_disconnect(4);
    EXPECT_CHECK();
    fake_stop();
}

/* Payloads from PH_HUB_SPLIT_BYTES go to the transport apart from their
 * frame's head (send_parts), never copied into the hub: a forwarded
 * request, its reply, an event, and a request a connection routes to
 * itself (its own queue, both parts). Each arrives whole and byte for
 * byte; smaller payloads still go whole through send. */
/* The next frame for id is a kind with the len bytes at p. */
static int split_next(uint32_t id, uint8_t kind, const uint8_t *p, size_t len,
                      ph_frame *f)
{
    return fake_next(id, f) && f->kind == kind && f->payload_len == len &&
           memcmp(f->payload, p, len) == 0;
}

static void test_split_payloads(void)
{
    size_t big = PH_HUB_SPLIT_BYTES + 17, i;
    uint8_t *payload = malloc(big);
    ph_frame f;
    int parts;

    CHECK(payload != NULL);
    for (i = 0; i < big; i++)
        payload[i] = (uint8_t)(i % 251);
    START(3);
    REGISTER(1, "split.get");
    REGISTER(3, "split.self");
    SUBSCRIBE(3, "split.news");
    parts = fake_parts;
    CHECK_EQ(fake_frame(2, PH_REQUEST, "split.get", 5, 0, payload, big),
             PH_OK);
    CHECK(split_next(1, PH_REQUEST, payload, big, &f));
    CHECK(f.route_len == 9 && memcmp(f.route, "split.get", 9) == 0);
    CHECK_EQ(f.status, 2); /* the caller's id */
    CHECK_EQ(fake_parts, parts + 1);
    CHECK_EQ(fake_frame(1, PH_REPLY, "", f.id, 0, payload, big), PH_OK);
    CHECK(split_next(2, PH_REPLY, payload, big, &f));
    CHECK_EQ(f.id, 5);
    CHECK_EQ(fake_parts, parts + 2);
    CHECK_EQ(fake_frame(2, PH_EVENT, "split.news", 0, 0, payload, big),
             PH_OK);
    CHECK(split_next(3, PH_EVENT, payload, big, &f));
    CHECK_EQ(fake_parts, parts + 3);
    /* To itself: both parts into its own queue, no send_parts. */
    CHECK_EQ(fake_frame(3, PH_REQUEST, "split.self", 6, 0, payload, big),
             PH_OK);
    CHECK(split_next(3, PH_REQUEST, payload, big, &f));
    CHECK_EQ(fake_parts, parts + 3);
    /* Below the split size: whole, through send. */
    CHECK_EQ(fake_frame(2, PH_EVENT, "split.news", 0, 0, payload, 100),
             PH_OK);
    CHECK(split_next(3, PH_EVENT, payload, 100, &f));
    CHECK_EQ(fake_parts, parts + 3);
    free(payload);
    EXPECT_CHECK();
    fake_stop();
}

/* sys.describe: a provided route's description (the latest registration
 * that gave one), a prefix's for the routes under it, the hub's own for a
 * built-in route, NO_ROUTE for the rest; a description over 16 KiB is
 * refused. */
static void test_describe(void)
{
    static char big[16 * 1024 + 40];
    ph_frame f;

    START(3);
    REGISTER(1, "calc.add\nmethod calc.add(a: int, b: int) -> (sum: int)");
    REGISTER(2, "img.*\r\n# Images.");
    ASK(3, "sys.describe", 5, "calc.add", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK_EQ(f.id, 5);
    CHECK(payload_is(&f, "method calc.add(a: int, b: int) -> (sum: int)"));
    ASK(3, "sys.describe", 6, "img.resize", &f);
    CHECK(payload_is(&f, "# Images."));
    ASK(3, "sys.describe", 7, "sys.echo", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK(payload_has(&f, "method sys.echo(bytes) -> (bytes)"));
    ASK(3, "sys.describe", 8, "sys.describe", &f);
    CHECK(payload_has(&f, "method sys.describe(route: text)"));
    ASK(3, "sys.describe", 9, "nobody.home", &f);
    CHECK_EQ(f.kind, PH_ERROR);
    CHECK_EQ(f.status, PH_ENOROUTE);
    ASK(3, "sys.describe", 10, "", &f);
    CHECK_EQ(f.status, PH_EBADREQ);
    /* Served without a description: NO_ROUTE says so. */
    REGISTER(3, "plain.x");
    ASK(1, "sys.describe", 11, "plain.x", &f);
    CHECK_EQ(f.status, PH_ENOROUTE);
    CHECK(payload_has(&f, "gave no description"));
    /* A later registration's description wins. */
    REGISTER(3, "plain.x\nsecond");
    ASK(1, "sys.describe", 12, "plain.x", &f);
    CHECK(payload_is(&f, "second"));
    memset(big, 'd', sizeof big - 1);
    memcpy(big, "big.one\n", 8);
    ASK(2, "sys.register", 13, big, &f);
    CHECK_EQ(f.kind, PH_ERROR);
    CHECK_EQ(f.status, PH_EBADREQ);
    /* When its last provider goes, so does the route and what it said. */
    fake_disconnect(1);
    ASK(3, "sys.describe", 14, "calc.add", &f);
    CHECK_EQ(f.status, PH_ENOROUTE);
    EXPECT_CHECK();
    fake_stop();
}

/* Activation: a request nobody serves under a rule with activate_service
 * asks the platform to start the service once, is held with any others
 * for it, and is forwarded in order when a provider registers; a failure
 * or the deadline answers every held caller UNAVAILABLE at once, and the
 * next request tries again; the call rule decides who may cause a start. */
static void test_activation(void)
{
    ph_hub_limits l = fake_limits();
    ph_route_rule rules[] = {
        {.name = "act.*", .activate_service = "svc-a"},
        {.name = "bad.*", .activate_service = "svc-b",
         .activate_timeout_ms = 5000},
        {.name = "locked.*", .activate_service = "svc-c",
         .call = "S-1-5-18"},
    };
    ph_frame f;
    uint32_t first;

    l.rules = rules;
    l.nrules = sizeof rules / sizeof rules[0];
    START_WITH(l, 3);
    /* sys.routes shows what a service would serve. */
    ASK(3, "sys.routes", 1, "", &f);
    CHECK(payload_has(&f, "{\"route\":\"act.*\",\"kind\":\"activatable\","
                          "\"service\":\"svc-a\"}"));
    /* Two requests, one start, nothing answered yet. */
    CHECK_EQ(fake_req(2, "act.x", 5, "one"), PH_OK);
    CHECK_EQ(fake_req(2, "act.y", 6, "two"), PH_OK);
    EXPECT_NONE(2);
    CHECK_EQ(F.activations, 1);
    CHECK_STR(F.activated, "svc-a");
    CHECK(ph_hub_activation_live(F.hub, F.activation_id));
    CHECK_EQ(stats().activations, 1);
    CHECK_EQ(stats().activation_held, 2);
    EXPECT_CHECK();
    /* The service registers: both go to it, in order, after its answer. */
    ASK(1, "sys.register", 1, "act.*", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    EXPECT_NEXT(1, &f);
    CHECK(route_is(&f, "act.x"));
    CHECK(payload_is(&f, "one"));
    first = f.id;
    EXPECT_NEXT(1, &f);
    CHECK(route_is(&f, "act.y"));
    CHECK_EQ(fake_frame(1, PH_REPLY, "", first, 0, "r1", 2), PH_OK);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.id, 5);
    CHECK(payload_is(&f, "r1"));
    CHECK(!ph_hub_activation_live(F.hub, F.activation_id));
    /* Not in sys.routes as activatable while served. */
    ASK(3, "sys.routes", 2, "", &f);
    CHECK(!payload_has(&f, "\"route\":\"act.*\",\"kind\":\"activatable\""));
    /* A service that stops: every held caller hears what the SCM said. */
    CHECK_EQ(fake_req(2, "bad.one", 7, ""), PH_OK);
    CHECK_EQ(fake_req(3, "bad.two", 8, ""), PH_OK);
    CHECK_EQ(F.activations, 2);
    ph_hub_activation_failed(F.hub, F.activation_id,
                             "stopped, exit code 3 (service-specific)");
    ph_hub_flush(F.hub);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.status, PH_EUNAVAIL);
    CHECK(payload_has(&f, "service 'svc-b': stopped, exit code 3"));
    EXPECT_NEXT(3, &f);
    CHECK_EQ(f.id, 8);
    CHECK_EQ(f.status, PH_EUNAVAIL);
    CHECK_EQ(stats().activation_failures, 1);
    /* Nothing sticks: the next request starts it again, and its deadline
     * answers it. */
    CHECK_EQ(fake_req(2, "bad.three", 9, ""), PH_OK);
    CHECK_EQ(F.activations, 3);
    F.now += 4000;
    ph_hub_tick(F.hub);
    EXPECT_NONE(2);
    F.now += 1500;
    ph_hub_tick(F.hub);
    ph_hub_flush(F.hub);
    EXPECT_NEXT(2, &f);
    CHECK_EQ(f.status, PH_EUNAVAIL);
    CHECK(payload_has(&f, "did not register 'bad.three' within 5000 ms"));
    CHECK_EQ(stats().activation_failures, 2);
    /* A caller that leaves while held: its requests go with it. */
    CHECK_EQ(fake_req(3, "bad.four", 10, ""), PH_OK);
    fake_disconnect(3);
    EXPECT_CHECK();
    /* Who may not call may not start it either. */
    ASK(2, "locked.x", 11, "", &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    CHECK_EQ(F.activations, 4);
    EXPECT_CHECK();
    fake_stop();
}

static void test_client_identity(void)
{
    ph_frame f;
    char ask[16];

    START(3);
    REGISTER(1, "who");
    snprintf(ask, sizeof ask, "%u", 2u);
    /* Nobody holds a request from 2 yet. */
    ASK(1, "sys.client", 2, ask, &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    CHECK_EQ(fake_req(2, "who", 5, ""), PH_OK);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(f.status, 2);
    /* The provider holding it may ask; a third connection may not. */
    ASK(1, "sys.client", 3, ask, &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK(payload_has(&f, "\"conn_id\":2"));
    CHECK(payload_has(&f, "\"pid\":1002"));
    CHECK(payload_has(&f, "\"sid\":\"S-1-5-21-1-2-3-1001\""));
    CHECK(payload_has(&f, "\"account\":\"TEST\\\\user\""));
    CHECK(payload_has(&f, "\"integrity\":\"medium\""));
    CHECK(payload_has(&f, "\"admin\":false"));
    ASK(3, "sys.client", 1, ask, &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    ASK(1, "sys.client", 4, "x", &f);
    CHECK_EQ(f.status, PH_EBADREQ);
    EXPECT_CHECK();
    fake_stop();
}

/* The monitor payload: time (8), from (4), to (4), then the frame. */
static int monitor_of(const ph_frame *m, uint32_t *from, uint32_t *to,
                      ph_frame *inner)
{
    ph_decoder d;
    size_t used;
    ph_err err;

    if (!route_is(m, "sys.monitor") || m->payload_len < 16 + 16)
        return 0;
    *from = ph_get_u32le(m->payload + 8);
    *to = ph_get_u32le(m->payload + 12);
    ph_decoder_init(&d, PH_MAX_FRAME_DEFAULT);
    err = ph_decoder_next(&d, m->payload + 16, m->payload_len - 16, &used, inner);
    ph_decoder_free(&d);
    return err == PH_OK;
}

static void test_monitor(void)
{
    ph_frame f, in;
    uint32_t from, to;

    START(3);
    CHECK_EQ(fake_connect_as(4, 1, 4444), PH_OK);
    /* Not for ordinary clients. */
    ASK(3, "sys.monitor", 1, "", &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    ASK(4, "sys.monitor", 1, "", &f);
    CHECK_EQ(f.kind, PH_REPLY);

    REGISTER(1, "calc");
    EXPECT_NONE(4); /* sys. traffic is not watched unless asked */
    CHECK_EQ(fake_req(2, "calc", 42, "2+2"), PH_OK);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(fake_frame(1, PH_REPLY, "", f.id, 0, "4", 1), PH_OK);
    EXPECT_NEXT(4, &f);
    CHECK(monitor_of(&f, &from, &to, &in));
    CHECK_EQ(from, 2);
    CHECK_EQ(to, 1);
    CHECK_EQ(in.kind, PH_REQUEST);
    CHECK(route_is(&in, "calc"));
    CHECK(payload_is(&in, "2+2"));
    EXPECT_NEXT(4, &f);
    CHECK(monitor_of(&f, &from, &to, &in));
    CHECK_EQ(from, 1);
    CHECK_EQ(to, 2);
    CHECK_EQ(in.kind, PH_REPLY);
    CHECK_EQ(in.id, 42);
    CHECK(payload_is(&in, "4"));
    EXPECT_NONE(4);

    /* A pattern narrows it; "sys" adds the hub's own traffic. */
    ASK(4, "sys.monitor", 2, "other.* sys", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK(ph_hub_watching_builtins(F.hub));
    CHECK_EQ(fake_req(2, "calc", 43, ""), PH_OK);
    EXPECT_NONE(4);
    CHECK_EQ(fake_req(4, "sys.monitor", 3, "* sys"), PH_OK);
    fake_drain(4);
    CHECK_EQ(fake_req(2, "sys.subscribe", 1, "x"), PH_OK);
    EXPECT_NEXT(4, &f);
    CHECK(monitor_of(&f, &from, &to, &in));
    CHECK(route_is(&in, "sys.subscribe"));
    EXPECT_NEXT(4, &f);
    CHECK(monitor_of(&f, &from, &to, &in));
    CHECK_EQ(in.kind, PH_REPLY);

    /* A monitor that does not read is disconnected. */
    F.c[4].extra = 64 * 1024;
    CHECK_EQ(fake_frame(3, PH_EVENT, "x", 0, 0, "", 0), PH_OK);
    CHECK(F.c[4].closed);
    fake_disconnect(4);
    CHECK(!ph_hub_watching_builtins(F.hub));
    EXPECT_CHECK();
    fake_stop();
}

static void test_views(void)
{
    ph_frame f;

    START(3);
    REGISTER(1, "a.b");
    REGISTER(2, "a.b");
    SUBSCRIBE(2, "ev.*");
    ASK(3, "sys.routes", 1, "", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK(payload_has(&f, "{\"route\":\"sys.ping\",\"kind\":\"builtin\"}"));
    CHECK(payload_has(&f, "{\"route\":\"a.b\",\"kind\":\"provided\",\"mode\":"
                          "\"shared\",\"providers\":2,\"waiting\":0,"
                          "\"forwarded\":0}"));
    CHECK(f.payload[0] == '[' && f.payload[f.payload_len - 1] == ']');
    ASK(3, "sys.subscriptions", 2, "", &f);
    CHECK(payload_is(&f, "[{\"pattern\":\"ev.*\",\"subscribers\":1}]"));
    EXPECT_CHECK();
    fake_stop();
}

/* A caller that leaves before its answer: the answer is dropped, the
 * timer is forgotten, nothing is sent to the gone connection (the fake
 * aborts if it were). */
static void test_caller_gone(void)
{
    ph_frame f;

    START(2);
    REGISTER(1, "svc");
    CHECK_EQ(fake_req(2, "svc", 1, ""), PH_OK);
    CHECK_EQ(fake_req(2, "svc", 2, ""), PH_OK);
    fake_disconnect(2);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(fake_frame(1, PH_REPLY, "", f.id, 0, "", 0), PH_OK);
    F.now += 60000;
    ph_hub_tick(F.hub);
    ph_hub_flush(F.hub);
    CHECK_EQ(stats().replies_dropped, 1);
    CHECK_EQ(stats().requests_timed_out, 0);
    EXPECT_CHECK();
    fake_stop();
}

/* Every allocation in a busy scenario fails in turn: the hub stays
 * consistent and leaks nothing (ASan checks the latter). */
static void test_allocation_failures(void)
{
    long n;
    ph_frame f;
    int i;

    for (n = 0; n < 400; n++) {
        ph_hub_limits l = fake_limits();
        if (fake_start(&l) != PH_OK)
            continue;
        F.quiet = 1;
        ph_alloc_fail_after(n);
        for (i = 1; i <= 4; i++)
            (void)fake_connect((uint32_t)i);
        if (F.c[1].live) {
            (void)fake_req(1, "sys.register", 1, "svc");
            (void)fake_req(1, "sys.register", 2, "ex exclusive");
            (void)fake_req(1, "sys.subscribe", 3, "t.*");
        }
        if (F.c[2].live) {
            (void)fake_req(2, "sys.register", 1, "ex exclusive");
            (void)fake_req(2, "sys.subscribe", 2, "*");
            (void)fake_req(2, "svc", 3, "x");
            (void)fake_frame(2, PH_EVENT, "t.x", 0, 0, "e", 1);
        }
        if (F.c[1].live)
            while (fake_next(1, &f))
                if (f.kind == PH_REQUEST)
                    (void)fake_frame(1, PH_REPLY, "", f.id, 0, "r", 1);
        if (F.c[3].live)
            (void)fake_req(3, "sys.routes", 1, "");
        ph_alloc_fail_after(-1);
        EXPECT_CHECK();
        for (i = 1; i <= 4; i++)
            if (F.c[i].live)
                fake_disconnect((uint32_t)i);
        EXPECT_CHECK();
        fake_stop();
    }
}

static void test_access_rules(void)
{
    ph_hub_limits l = fake_limits();
    ph_route_rule rules[] = {
        {.name = "pay.*",
         .call = "S-1-5-32-544",                     /* administrators */
         .provide = "S-1-5-18,S-1-5-21-1-2-3-1001"}, /* SYSTEM, conn 1 */
        {.name = "secret", .min_integrity = 0x3000}, /* high */
        {.name = "news.*", .subscribe = "S-1-5-32-544"},
        {.name = "alerts", .publish = "S-1-5-18"},
        {.name = "sys.clients", .call = "S-1-5-11"}, /* authenticated users */
    };
    ph_frame f;

    l.rules = rules;
    l.nrules = sizeof rules / sizeof rules[0];
    START_WITH(l, 1);                               /* S-...-1001, medium */
    CHECK_EQ(fake_connect_full(2, 0, 2002, "S-1-5-21-9-9-9-2000", 0x2000,
                               NULL, 0), PH_OK);
    CHECK_EQ(fake_connect_full(3, 1, 3003, "S-1-5-18", 0x4000, NULL, 0),
             PH_OK);

    /* provide: conn 1 is listed by SID, conn 2 is not. */
    ASK(1, "sys.register", 1, "pay.*", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    ASK(2, "sys.register", 1, "pay.*", &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    CHECK(payload_has(&f, "[route.pay.*] provide"));
    /* call: only administrators (by group); conn 3's groups lack it too. */
    ASK(2, "pay.get", 2, "", &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    CHECK(payload_has(&f, "[route.pay.*] call"));
    EXPECT_NONE(1);
    /* min_integrity: medium refused, system allowed. */
    ASK(2, "sys.register", 3, "secret", &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    CHECK(payload_has(&f, "min_integrity"));
    ASK(3, "sys.register", 1, "secret", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    ASK(1, "secret", 4, "", &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    /* subscribe: refused by name, and "*" does not get around it. */
    ASK(2, "sys.subscribe", 5, "news.today", &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    ASK(2, "sys.subscribe", 6, "*", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK_EQ(fake_frame(1, PH_EVENT, "news.today", 0, 0, "x", 1), PH_OK);
    EXPECT_NONE(2);
    CHECK_EQ(fake_frame(1, PH_EVENT, "weather", 0, 0, "y", 1), PH_OK);
    EXPECT_NEXT(2, &f);
    CHECK(route_is(&f, "weather"));
    /* publish: only SYSTEM. */
    CHECK_EQ(fake_frame(1, PH_EVENT, "alerts", 0, 0, "z", 1), PH_OK);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    EXPECT_NONE(2);
    CHECK_EQ(fake_frame(3, PH_EVENT, "alerts", 0, 0, "z", 1), PH_OK);
    EXPECT_NEXT(2, &f);
    CHECK(route_is(&f, "alerts"));
    /* sys.clients: opened to authenticated users by a rule; sys.monitor
     * stays admin-only. */
    ASK(2, "sys.clients", 7, "", &f);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK(payload_has(&f, "\"conn_id\":1,"));
    CHECK(payload_has(&f, "\"routes\":[\"pay.*\"]"));
    CHECK(payload_has(&f, "\"subscriptions\":[\"*\"]"));
    ASK(2, "sys.monitor", 8, "", &f);
    CHECK_EQ(f.status, PH_EFORBIDDEN);
    CHECK_EQ(stats().access_denied, 7);
    EXPECT_CHECK();
    fake_stop();
}

static void test_limits(void)
{
    ph_hub_limits l = fake_limits();
    char why[160];
    ph_frame f;

    l.max_routes_per_client = 2;
    l.max_subscriptions_per_client = 2;
    l.max_connections_per_user = 2;
    START_WITH(l, 2); /* both S-1-5-21-1-2-3-1001 */
    why[0] = '\0';
    CHECK_EQ(fake_connect_full(3, 0, 3, "S-1-5-21-1-2-3-1001", 0x2000, why,
                               sizeof why), PH_EBUSY);
    CHECK(strstr(why, "max_connections_per_user (2)") != NULL);
    CHECK_EQ(fake_connect_full(4, 0, 4, "S-1-5-21-7-7-7-7", 0x2000, NULL, 0),
             PH_OK);
    fake_disconnect(2);
    CHECK_EQ(fake_connect(3), PH_OK);
    CHECK_EQ(stats().limit_max_connections_per_user, 1);

    CHECK_EQ(fake_req(1, "sys.register", 1, "a"), PH_OK);
    CHECK_EQ(fake_req(1, "sys.register", 2, "b"), PH_OK);
    CHECK_EQ(fake_req(1, "sys.register", 3, "c"), PH_OK);
    CHECK_EQ(fake_req(1, "sys.subscribe", 4, "a"), PH_OK);
    CHECK_EQ(fake_req(1, "sys.subscribe", 5, "b"), PH_OK);
    CHECK_EQ(fake_req(1, "sys.subscribe", 6, "c"), PH_OK);
    EXPECT_NEXT(1, &f);
    EXPECT_NEXT(1, &f);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(f.status, PH_EBUSY);
    CHECK(payload_has(&f, "max_routes_per_client (2)"));
    EXPECT_NEXT(1, &f);
    EXPECT_NEXT(1, &f);
    EXPECT_NEXT(1, &f);
    CHECK_EQ(f.status, PH_EBUSY);
    CHECK(payload_has(&f, "max_subscriptions_per_client (2)"));
    CHECK_EQ(stats().limit_max_routes, 1);
    CHECK_EQ(stats().limit_max_subscriptions, 1);
    EXPECT_CHECK();
    fake_stop();
}

int main(void)
{
    PH_RUN(test_call_through_provider);
    PH_RUN(test_no_route_and_sys_refused);
    PH_RUN(test_round_robin);
    PH_RUN(test_most_specific_wins);
    PH_RUN(test_exclusive_line);
    PH_RUN(test_provider_gone);
    PH_RUN(test_timeout_and_late_reply);
    PH_RUN(test_inflight_and_busy_provider);
    PH_RUN(test_publish_subscribe);
    PH_RUN(test_slow_subscriber_dropped);
    PH_RUN(test_big_frames_pass_quota);
    PH_RUN(test_split_payloads);
    PH_RUN(test_client_identity);
    PH_RUN(test_monitor);
    PH_RUN(test_views);
    PH_RUN(test_describe);
    PH_RUN(test_activation);
    PH_RUN(test_caller_gone);
    PH_RUN(test_access_rules);
    PH_RUN(test_limits);
    PH_RUN(test_allocation_failures);
    return ph_test_summary();
}
