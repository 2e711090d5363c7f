/* The router's built-in routes, driven without any I/O. */
#include "harness.h"

#include "frame.h"
#include "platform.h"
#include "router.h"

static void fake_stats(void *ctx, ph_stats *s)
{
    s->uptime_ms = 1234;
    s->connections_current = 3;
    s->frames_in = *(uint64_t *)ctx;
    s->config_generation = 2;
}

static uint64_t frames_seen = 42;
static const ph_router router = {"9.9.9", fake_stats, &frames_seen, NULL,
                                 NULL};

/* Run one request through the router and decode the single frame it wrote. */
static ph_err one(ph_peer *peer, uint8_t kind, const char *route, uint32_t id,
                  const char *payload, ph_buf *out, ph_frame *reply,
                  ph_route_result *res, ph_decoder *d)
{
    ph_frame f;
    size_t used;
    ph_err err;

    memset(&f, 0, sizeof f);
    f.kind = kind;
    f.id = id;
    f.route = route;
    f.route_len = (uint8_t)strlen(route);
    f.payload = (const uint8_t *)payload;
    f.payload_len = (uint32_t)strlen(payload);
    out->len = 0;
    err = ph_router_handle(&router, peer, &f, out, res);
    if (err != PH_OK)
        return err;
    ph_decoder_init(d, PH_MAX_FRAME_DEFAULT);
    err = ph_decoder_next(d, out->data, out->len, &used, reply);
    if (err == PH_OK && used != out->len)
        return PH_EINVAL; /* exactly one frame expected */
    return err;
}

static int has(const ph_frame *f, const char *text)
{
    size_t n = strlen(text), i;
    for (i = 0; i + n <= f->payload_len; i++)
        if (memcmp(f->payload + i, text, n) == 0)
            return 1;
    return 0;
}

static void test_ping(void)
{
    ph_peer peer = {7, PH_MAX_FRAME_DEFAULT, 100, ""};
    ph_buf out = {0};
    ph_frame r;
    ph_route_result res;
    ph_decoder d;

    CHECK_EQ(one(&peer, PH_REQUEST, "sys.ping", 5, "", &out, &r, &res, &d), PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.id, 5);
    CHECK_EQ(r.route_len, 0);
    CHECK_EQ(r.payload_len, 0);
    CHECK_EQ(res.frames, 1);
    CHECK_EQ(res.errors, 0);
    ph_decoder_free(&d);
    ph_buf_free(&out);
}

static void test_echo(void)
{
    ph_peer peer = {7, PH_MAX_FRAME_DEFAULT, 100, ""};
    ph_buf out = {0};
    ph_frame r;
    ph_route_result res;
    ph_decoder d;

    CHECK_EQ(one(&peer, PH_REQUEST, "sys.echo", 9, "hello\001", &out, &r, &res, &d), PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.id, 9);
    CHECK_EQ(r.payload_len, 6);
    CHECK_MEM(r.payload, "hello\001", 6);
    ph_decoder_free(&d);
    ph_buf_free(&out);
}

static void test_hello_records_name(void)
{
    ph_peer peer = {7, PH_MAX_FRAME_DEFAULT, 100, ""};
    ph_buf out = {0};
    ph_frame r;
    ph_route_result res;
    ph_decoder d;

    CHECK_EQ(one(&peer, PH_REQUEST, "sys.hello", 1, "my\"tool", &out, &r, &res, &d), PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_STR(peer.name, "my\"tool");
    CHECK(has(&r, "\"protocol\":1"));
    CHECK(has(&r, "\"max_frame\":1048576"));
    CHECK(has(&r, "\"version\":\"9.9.9\""));
    CHECK(has(&r, "\"client\":\"my\\\"tool\""));
    CHECK(r.payload[0] == '{' && r.payload[r.payload_len - 1] == '}');
    ph_decoder_free(&d);
    ph_buf_free(&out);
}

static void test_hello_name_truncated(void)
{
    ph_peer peer = {7, PH_MAX_FRAME_DEFAULT, 100, ""};
    char longname[200];
    ph_buf out = {0};
    ph_frame r;
    ph_route_result res;
    ph_decoder d;

    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_EQ(one(&peer, PH_REQUEST, "sys.hello", 1, longname, &out, &r, &res, &d), PH_OK);
    CHECK_EQ(strlen(peer.name), PH_PEER_NAME_MAX - 1);
    ph_decoder_free(&d);
    ph_buf_free(&out);
}

static void test_hello_reports_peer_limit(void)
{
    /* The limit is the connection's: a reload can change it for one peer
     * while another still runs on the old value. */
    ph_peer peer = {7, 4096, 100, ""};
    ph_buf out = {0};
    ph_frame r;
    ph_route_result res;
    ph_decoder d;

    CHECK_EQ(one(&peer, PH_REQUEST, "sys.hello", 1, "", &out, &r, &res, &d), PH_OK);
    CHECK(has(&r, "\"max_frame\":4096"));
    ph_decoder_free(&d);
    ph_buf_free(&out);
}

static void test_stats(void)
{
    ph_peer peer = {7, PH_MAX_FRAME_DEFAULT, 100, ""};
    ph_buf out = {0};
    ph_frame r;
    ph_route_result res;
    ph_decoder d;
    static const char *const keys[] = {
        "\"uptime_ms\":1234", "\"connections_current\":3",
        "\"connections_total\":", "\"frames_in\":42", "\"frames_out\":",
        "\"bytes_in\":", "\"bytes_out\":", "\"errors_sent\":",
        "\"pending_instances\":", "\"config_generation\":2",
        "\"config_loaded_ms\":"};
    size_t i;

    CHECK_EQ(one(&peer, PH_REQUEST, "sys.stats", 3, "", &out, &r, &res, &d), PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.id, 3);
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!has(&r, keys[i]))
            PH_FAIL_HERE("stats reply lacks %s: %.*s", keys[i],
                         (int)r.payload_len, (const char *)r.payload);
    }
    ph_decoder_free(&d);
    ph_buf_free(&out);
}

static void test_no_route(void)
{
    ph_peer peer = {7, PH_MAX_FRAME_DEFAULT, 100, ""};
    ph_buf out = {0};
    ph_frame r;
    ph_route_result res;
    ph_decoder d;

    CHECK_EQ(one(&peer, PH_REQUEST, "sys.pingx", 77, "", &out, &r, &res, &d), PH_OK);
    CHECK_EQ(r.kind, PH_ERROR);
    CHECK_EQ(r.id, 77);
    CHECK_EQ(r.status, PH_ENOROUTE);
    CHECK(has(&r, "sys.pingx"));
    CHECK_EQ(res.errors, 1);
    /* A prefix of a built-in is not that built-in. */
    CHECK_EQ(one(&peer, PH_REQUEST, "sys.pin", 78, "", &out, &r, &res, &d), PH_OK);
    CHECK_EQ(r.status, PH_ENOROUTE);
    ph_decoder_free(&d);
    ph_buf_free(&out);
}

static void test_unsolicited_kinds(void)
{
    ph_peer peer = {7, PH_MAX_FRAME_DEFAULT, 100, ""};
    ph_buf out = {0};
    ph_frame r;
    ph_route_result res;
    ph_decoder d;

    CHECK_EQ(one(&peer, PH_EVENT, "news", 0, "x", &out, &r, &res, &d), PH_OK);
    CHECK_EQ(r.kind, PH_ERROR);
    CHECK_EQ(r.status, PH_ENOROUTE);
    CHECK_EQ(r.id, 0);
    ph_decoder_free(&d);
    CHECK_EQ(one(&peer, PH_REPLY, "", 12, "x", &out, &r, &res, &d), PH_OK);
    CHECK_EQ(r.kind, PH_ERROR);
    CHECK_EQ(r.id, 12);
    CHECK(has(&r, "12"));
    ph_decoder_free(&d);
    ph_buf_free(&out);
}

static void test_replies_in_order(void)
{
    /* Several requests handled into one buffer come out in request order. */
    ph_peer peer = {7, PH_MAX_FRAME_DEFAULT, 100, ""};
    ph_buf out = {0};
    ph_frame f, r;
    ph_route_result res;
    ph_decoder d;
    size_t off = 0, used;
    uint32_t id;

    for (id = 1; id <= 50; id++) {
        memset(&f, 0, sizeof f);
        f.kind = PH_REQUEST;
        f.id = id;
        f.route = id % 2 ? "sys.ping" : "sys.echo";
        f.route_len = 8;
        f.payload = (const uint8_t *)&id;
        f.payload_len = sizeof id;
        CHECK_EQ(ph_router_handle(&router, &peer, &f, &out, &res), PH_OK);
    }
    ph_decoder_init(&d, PH_MAX_FRAME_DEFAULT);
    for (id = 1; id <= 50; id++) {
        CHECK_EQ(ph_decoder_next(&d, out.data + off, out.len - off, &used, &r), PH_OK);
        off += used;
        CHECK_EQ(r.id, id);
        CHECK_EQ(r.payload_len, id % 2 ? 0 : 4);
    }
    CHECK_EQ(off, out.len);
    ph_decoder_free(&d);
    ph_buf_free(&out);
}

static void test_out_of_memory(void)
{
    ph_peer peer = {7, PH_MAX_FRAME_DEFAULT, 100, ""};
    ph_buf out = {0};
    ph_frame f;
    ph_route_result res;

    memset(&f, 0, sizeof f);
    f.kind = PH_REQUEST;
    f.id = 1;
    f.route = "sys.stats";
    f.route_len = 9;
    ph_alloc_fail_after(0);
    CHECK_EQ(ph_router_handle(&router, &peer, &f, &out, &res), PH_ENOMEM);
    ph_alloc_fail_after(-1);
    CHECK_EQ(out.len, 0);
    ph_buf_free(&out);
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
