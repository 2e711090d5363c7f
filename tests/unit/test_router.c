/* The router's built-in routes, driven without any I/O. */
#include "harness.h"

#include "frame.h"
#include "platform.h"
#include "router.h"
#include "unit_util.h"

static void fake_stats(void *ctx, ph_stats *s)
{
    s->uptime_ms = 1234;
    s->connections_current = 3;
    s->frames_in = *(uint64_t *)ctx;
    s->config_generation = 2;
}

static uint64_t frames_seen = 42;
static const ph_router router = {"9.9.9", fake_stats, &frames_seen, NULL,
                                 NULL, NULL, NULL};

/* A peer talking to the router: what it wrote back for the last request,
 * and that written frame decoded. */
typedef struct exchange {
    ph_peer peer;
    ph_buf out;          /* the bytes the router wrote */
    ph_frame r;          /* the one frame in out (pointing into it) */
    ph_route_result res;
} exchange;

/* Connection 7, pid 100, nameless, with the default frame limit. */
static exchange exchange_new(void)
{
    exchange x = {{7, PH_MAX_FRAME_DEFAULT, 100, ""}, {0}, {0}, {0, 0}};

    return x;
}

static void exchange_free(exchange *x) { ph_buf_free(&x->out); }

/* Run one frame through the router and decode the single frame it wrote
 * into x->r. */
static ph_err one(exchange *x, uint8_t kind, const char *route, uint32_t id,
                  const char *payload)
{
    ph_frame f = make_frame(kind, id, 0, route, payload,
                            (uint32_t)strlen(payload));
    ph_decoder d;
    size_t used;
    ph_err err;

    x->out.len = 0;
    err = ph_router_handle(&router, &x->peer, &f, &x->out, &x->res);
    if (err != PH_OK)
        return err;
    /* A frame whole in the input is not copied: x->r points into x->out,
     * and the decoder may go. */
    ph_decoder_init(&d, PH_MAX_FRAME_DEFAULT);
    err = ph_decoder_next(&d, x->out.data, x->out.len, &used, &x->r);
    ph_decoder_free(&d);
    if (err == PH_OK && used != x->out.len)
        return PH_EINVAL; /* exactly one frame expected */
    return err;
}

/* one() must succeed, the router's frame being of kind want and answering
 * the frame's id. */
#define CHECK_ONE(x, frame_kind, route, frame_id, payload, want)              \
    do {                                                                      \
        CHECK_EQ(one((x), (frame_kind), (route), (frame_id), (payload)),      \
                 PH_OK);                                                      \
        CHECK_EQ((x)->r.kind, (want));                                        \
        CHECK_EQ((x)->r.id, (frame_id));                                      \
    } while (0)

static void test_ping(void)
{
    exchange x = exchange_new();

    CHECK_ONE(&x, PH_REQUEST, "sys.ping", 5, "", PH_REPLY);
    CHECK_EQ(x.r.route_len, 0);
    CHECK_EQ(x.r.payload_len, 0);
    CHECK_EQ(x.res.frames, 1);
    CHECK_EQ(x.res.errors, 0);
    exchange_free(&x);
}

static void test_echo(void)
{
    exchange x = exchange_new();

    CHECK_ONE(&x, PH_REQUEST, "sys.echo", 9, "hello\001", PH_REPLY);
    CHECK_EQ(x.r.payload_len, 6);
    CHECK_MEM(x.r.payload, "hello\001", 6);
    exchange_free(&x);
}

static void test_hello_records_name(void)
{
    exchange x = exchange_new();

    CHECK_ONE(&x, PH_REQUEST, "sys.hello", 1, "my\"tool", PH_REPLY);
    CHECK_STR(x.peer.name, "my\"tool");
    CHECK(payload_has(&x.r, "\"protocol\":1"));
    CHECK(payload_has(&x.r, "\"max_frame\":1048576"));
    CHECK(payload_has(&x.r, "\"version\":\"9.9.9\""));
    CHECK(payload_has(&x.r, "\"client\":\"my\\\"tool\""));
    /* No lane terms from this router: features without "lane". */
    CHECK(payload_has(&x.r, "\"features\":[\"hub\",\"describe\"]"));
    CHECK(!payload_has(&x.r, "lane"));
    CHECK(x.r.payload[0] == '{' && x.r.payload[x.r.payload_len - 1] == '}');
    exchange_free(&x);
}

static void test_hello_name_truncated(void)
{
    exchange x = exchange_new();
    char longname[200];

    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_ONE(&x, PH_REQUEST, "sys.hello", 1, longname, PH_REPLY);
    CHECK_EQ(strlen(x.peer.name), PH_PEER_NAME_MAX - 1);
    exchange_free(&x);
}

static void test_hello_reports_peer_limit(void)
{
    /* The limit is the connection's: a reload can change it for one peer
     * while another still runs on the old value. */
    exchange x = exchange_new();

    x.peer.max_frame = 4096;
    CHECK_ONE(&x, PH_REQUEST, "sys.hello", 1, "", PH_REPLY);
    CHECK(payload_has(&x.r, "\"max_frame\":4096"));
    exchange_free(&x);
}

static void test_stats(void)
{
    exchange x = exchange_new();
    static const char *const keys[] = {
        "\"uptime_ms\":1234", "\"connections_current\":3",
        "\"connections_total\":", "\"frames_in\":42", "\"frames_out\":",
        "\"bytes_in\":", "\"bytes_out\":", "\"errors_sent\":",
        "\"pending_instances\":", "\"config_generation\":2",
        "\"config_loaded_ms\":"};
    size_t i;

    CHECK_ONE(&x, PH_REQUEST, "sys.stats", 3, "", PH_REPLY);
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!payload_has(&x.r, keys[i]))
            PH_FAIL_HERE("stats reply lacks %s: %.*s", keys[i],
                         (int)x.r.payload_len, (const char *)x.r.payload);
    }
    exchange_free(&x);
}

static void test_no_route(void)
{
    exchange x = exchange_new();

    CHECK_ONE(&x, PH_REQUEST, "sys.pingx", 77, "", PH_ERROR);
    CHECK_EQ(x.r.status, PH_ENOROUTE);
    CHECK(payload_has(&x.r, "sys.pingx"));
    CHECK_EQ(x.res.errors, 1);
    /* A prefix of a built-in is not that built-in. */
    CHECK_ONE(&x, PH_REQUEST, "sys.pin", 78, "", PH_ERROR);
    CHECK_EQ(x.r.status, PH_ENOROUTE);
    exchange_free(&x);
}

static void test_unsolicited_kinds(void)
{
    exchange x = exchange_new();

    CHECK_ONE(&x, PH_EVENT, "news", 0, "x", PH_ERROR);
    CHECK_EQ(x.r.status, PH_ENOROUTE);
    CHECK_ONE(&x, PH_REPLY, "", 12, "x", PH_ERROR);
    CHECK(payload_has(&x.r, "12"));
    exchange_free(&x);
}

static void test_replies_in_order(void)
{
    /* Several requests handled into one buffer come out in request order. */
    exchange x = exchange_new();
    ph_frame f, r;
    ph_decoder d;
    size_t off = 0, used;
    uint32_t id;

    for (id = 1; id <= 50; id++) {
        f = make_frame(PH_REQUEST, id, 0, id % 2 ? "sys.ping" : "sys.echo",
                       &id, sizeof id);
        CHECK_EQ(ph_router_handle(&router, &x.peer, &f, &x.out, &x.res),
                 PH_OK);
    }
    ph_decoder_init(&d, PH_MAX_FRAME_DEFAULT);
    for (id = 1; id <= 50; id++) {
        CHECK_EQ(ph_decoder_next(&d, x.out.data + off, x.out.len - off, &used,
                                 &r),
                 PH_OK);
        off += used;
        CHECK_EQ(r.id, id);
        CHECK_EQ(r.payload_len, id % 2 ? 0 : 4);
    }
    CHECK_EQ(off, x.out.len);
    ph_decoder_free(&d);
    exchange_free(&x);
}

static void test_out_of_memory(void)
{
    exchange x = exchange_new();
    ph_frame f = make_frame(PH_REQUEST, 1, 0, "sys.stats", NULL, 0);

    ph_alloc_fail_after(0);
    CHECK_EQ(ph_router_handle(&router, &x.peer, &f, &x.out, &x.res),
             PH_ENOMEM);
    ph_alloc_fail_after(-1);
    CHECK_EQ(x.out.len, 0);
    exchange_free(&x);
}

int main(void)
{
    PH_RUN(test_ping);
    PH_RUN(test_echo);
    PH_RUN(test_hello_records_name);
    PH_RUN(test_hello_name_truncated);
    PH_RUN(test_hello_reports_peer_limit);
    PH_RUN(test_stats);
    PH_RUN(test_no_route);
    PH_RUN(test_unsolicited_kinds);
    PH_RUN(test_replies_in_order);
    PH_RUN(test_out_of_memory);
    return ph_test_summary();
}
