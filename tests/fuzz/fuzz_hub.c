/* libFuzzer target for the hub: the input is a script of operations across
 * eight connections (connect, disconnect, register, unregister, subscribe,
 * requests, answers, events, time passing, stalled readers, monitors,
 * activations that succeed, fail or time out).
 * After every step the hub's own invariants must hold, and at the end:
 *  - every REQUEST a live client sent got exactly one REPLY or ERROR (the
 *    fake aborts on a second one, and on a frame for a closed connection);
 *  - nothing leaks (LeakSanitizer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/hub_fake.h"

#define NCONN 8
#define MAX_OUT 512   /* requests a connection may have outstanding here */
#define MAX_HELD 512  /* forwarded requests a provider holds */

typedef struct side {
    uint32_t next_id;            /* request ids it uses */
    uint8_t out[MAX_OUT];        /* 1: request id i+1 is unanswered */
    uint32_t held[MAX_HELD];     /* hub ids of requests it holds */
    int nheld;
} side;

static side S[NCONN + 1];

static const char *const names[] = {
    "a", "a.b", "a.b.c", "a.*", "a.b.*", "b", "b.*", "sys.x",
};
static const char *const patterns[] = {"a", "a.*", "*", "a.b", "b.*", "sys.route.*"};

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_hub: %s\n", what);
    abort();
}

/* Read everything queued for conn i and check the answers. */
static void consume(uint32_t i)
{
    ph_frame f;

    while (fake_next(i, &f)) {
        if (f.kind == PH_REQUEST) {
            if (S[i].nheld < MAX_HELD)
                S[i].held[S[i].nheld++] = f.id;
            continue;
        }
        if (f.kind == PH_EVENT || f.id == 0)
            continue;
        if (f.id > MAX_OUT || !S[i].out[f.id - 1])
            fail("an answer to a request that is not outstanding");
        S[i].out[f.id - 1] = 0;
    }
    fake_drain(i);
}

static void request(uint32_t i, const char *route, const char *arg)
{
    uint32_t id;

    if (S[i].next_id >= MAX_OUT)
        return;
    id = ++S[i].next_id;
    S[i].out[id - 1] = 1;
    if (fake_req(i, route, id, arg) != PH_OK) {
        fprintf(stderr, "conn %u: %s '%s'\n", (unsigned)i, route, arg);
        fail("ph_hub_frame failed without an allocation failure");
    }
}

static void gone(uint32_t i)
{
    fake_disconnect(i);
    memset(&S[i], 0, sizeof S[i]);
    F.c[i].q.len = F.c[i].rd = 0;
    F.c[i].extra = 0;
    F.c[i].closed = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ph_hub_limits l = fake_limits();
    ph_route_rule rules[3];
    size_t pos = 0;
    uint32_t i, k;
    const char *why;
    char arg[64];

    memset(rules, 0, sizeof rules);
    rules[0].name = "b.*";
    rules[0].request_timeout_ms = 50;
    rules[0].subscribe = "S-1-5-32-544";
    rules[1].name = "a.b";
    rules[1].call = "S-1-5-21-1-2-3-1001";
    rules[1].min_integrity = 0x2000;
    /* a.b, a.b.c (and the a.* the harness never serves exactly) are
     * activatable: requests for them wait for a provider. */
    rules[2].name = "a.*";
    rules[2].activate_service = "svc";
    rules[2].activate_timeout_ms = 200;
    l.max_inflight_per_client = 8;
    l.max_routes_per_client = 3;
    l.max_subscriptions_per_client = 3;
    l.max_connections_per_user = 6;
    l.send_queue_bytes = 2048;
    l.request_timeout_ms = 1000;
    l.rules = rules;
    l.nrules = 3;
    memset(S, 0, sizeof S);
    if (fake_start(&l) != PH_OK)
        return 0;
    F.quiet = 1;
    while (pos + 2 <= size) {
        uint8_t op = data[pos], x = data[pos + 1];
        pos += 2;
        i = 1 + (x % NCONN);
        k = (uint32_t)(x >> 3);
        if (op % 16 != 0 && !F.c[i].live)
            continue;
        switch (op % 16) {
        case 0:
            if (!F.c[i].live)
                (void)fake_connect_as(i, (int)(k & 1), 100 + i);
            else
                gone(i);
            break;
        case 1:
            snprintf(arg, sizeof arg, "%s%s", names[k % 8],
                     (op >> 4) & 1 ? " exclusive" : "");
            request(i, "sys.register", arg);
            break;
        case 2:
            request(i, "sys.unregister", names[k % 8]);
            break;
        case 3:
            request(i, "sys.subscribe", patterns[k % 6]);
            break;
        case 4:
            request(i, "sys.unsubscribe", patterns[k % 6]);
            break;
        case 5:
        case 6:
            request(i, names[k % 3], "payload");
            break;
        case 7:
            if (S[i].nheld > 0) {
                uint32_t at = k % (uint32_t)S[i].nheld, h = S[i].held[at];
                S[i].held[at] = S[i].held[--S[i].nheld];
                (void)fake_frame(i, (op >> 4) & 1 ? PH_ERROR : PH_REPLY, "", h,
                                 (op >> 4) & 1 ? 300 : 0, "r", 1);
            }
            break;
        case 8:
            (void)fake_frame(i, PH_EVENT, names[k % 3], 0, 0, "event", 5);
            break;
        case 9:
            if ((op >> 4) & 1) {
                /* The service the hub started last stops. */
                ph_hub_activation_failed(F.hub, F.activation_id, "stopped");
                ph_hub_flush(F.hub);
                break;
            }
            F.now += (uint64_t)k * 37;
            ph_hub_tick(F.hub);
            ph_hub_flush(F.hub);
            break;
        case 10:
            F.c[i].extra = F.c[i].extra ? 0 : 4096; /* stall or resume */
            break;
        case 11:
            request(i, "sys.monitor", (op >> 4) & 1 ? "* sys" : "a.*");
            break;
        case 12:
            snprintf(arg, sizeof arg, "%u", 1 + (unsigned)(k % NCONN));
            request(i, "sys.client", arg);
            break;
        case 13:
            request(i, (op >> 4) & 1 ? "sys.routes" : "sys.subscriptions", "");
            break;
        case 14:
            if ((op >> 4) & 1) {
                /* A hub-assigned id the provider never got. */
                (void)fake_frame(i, PH_REPLY, "", k * 7919u, 0, "", 0);
                break;
            }
            /* An abusive frame: a control route or an event with bytes
             * straight from the input as its payload, any kind. */
            {
                static const char *const routes[] = {
                    "sys.register", "sys.subscribe", "sys.unsubscribe",
                    "sys.unregister", "sys.client", "sys.monitor",
                    "sys.route.up", "a"};
                size_t n = size - pos < 24 ? size - pos : 24;
                uint8_t kind = (uint8_t)(1 + (k & 3));
                const char *r = routes[(k >> 2) % 8];
                if (kind == PH_REQUEST) {
                    if (S[i].next_id >= MAX_OUT)
                        break;
                    S[i].out[S[i].next_id++] = 1;
                    (void)fake_frame(i, kind, r, S[i].next_id, 0, data + pos, n);
                } else {
                    (void)fake_frame(i, kind, kind == PH_EVENT ? r : "", 0,
                                     (uint32_t)n, data + pos, n);
                }
                pos += n;
            }
            break;
        default:
            request(i, names[3 + k % 5], "");
            break;
        }
        /* A connection the hub closed goes away, as the server does; its
         * going may close others, so sweep until none is left. */
        for (k = 1; k <= NCONN; k++) {
            if (!F.c[k].live)
                continue;
            consume(k);
            if (F.c[k].closed) {
                gone(k);
                k = 0;
            }
        }
        if ((why = ph_hub_check(F.hub)) != NULL)
            fail(why);
    }
    /* Everything still due is answered by the deadline at the latest. */
    F.now += 1000000;
    ph_hub_tick(F.hub);
    ph_hub_flush(F.hub);
    for (i = 1; i <= NCONN; i++) {
        if (!F.c[i].live)
            continue;
        consume(i);
        if (F.c[i].closed)
            continue;
        for (k = 0; k < MAX_OUT; k++)
            if (S[i].out[k])
                fail("a request was never answered");
    }
    fake_stop();
    return 0;
}
