/* A fake transport for the hub (common/hub.h): connections are numbers
 * 1..FAKE_CONNS, each with the bytes queued for it, a settable queued-bytes
 * figure and flags for close and kick. Shared by the hub's unit tests and
 * its fuzzer. Frames sent to a connection the hub was told is gone abort:
 * that is a bug the tests exist to catch. */
#ifndef PH_HUB_FAKE_H
#define PH_HUB_FAKE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "hub.h"
#include "unit_util.h"

#define FAKE_CONNS 64

typedef struct fconn {
    ph_buf q;          /* every byte queued for it, in order */
    size_t rd;         /* of q, bytes already taken by fake_next */
    size_t extra;      /* pretend this much more is queued (a stalled reader) */
    int live;          /* connected and not yet disconnected */
    int closed;        /* the hub asked to close it */
    int kicks;
    char why[64];
} fconn;

typedef struct fake {
    fconn c[FAKE_CONNS + 1];
    uint64_t now;
    ph_hub *hub;
    int logs;
    int quiet;
    int activations;       /* services the hub asked to start */
    char activated[64];    /* the last one */
    uint32_t activation_id;
} fake;

static fake F;

static inline ph_err fake_send(void *ctx, void *conn, const uint8_t *data, size_t len)
{
    uintptr_t id = (uintptr_t)conn;

    (void)ctx;
    if (id == 0 || id > FAKE_CONNS || !F.c[id].live) {
        fprintf(stderr, "hub sent %zu bytes to conn %u, which is gone\n", len,
                (unsigned)id);
        abort();
    }
    return ph_buf_append(&F.c[id].q, data, len);
}

static inline size_t fake_queued(void *ctx, void *conn)
{
    uintptr_t id = (uintptr_t)conn;

    (void)ctx;
    return F.c[id].q.len - F.c[id].rd + F.c[id].extra;
}

static inline void fake_kick(void *ctx, void *conn)
{
    uintptr_t id = (uintptr_t)conn;

    (void)ctx;
    if (!F.c[id].live)
        abort();
    F.c[id].kicks++;
}

static inline void fake_close(void *ctx, void *conn, const char *why)
{
    uintptr_t id = (uintptr_t)conn;

    (void)ctx;
    if (!F.c[id].live)
        abort();
    F.c[id].closed = 1;
    snprintf(F.c[id].why, sizeof F.c[id].why, "%s", why);
}

static inline uint64_t fake_now(void *ctx)
{
    (void)ctx;
    return F.now;
}

static inline void fake_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    F.logs++;
    if (!F.quiet)
        printf("    log %d: %s\n", level, msg);
}

static inline void fake_conn_stats(void *ctx, void *conn, ph_conn_stats *out)
{
    uintptr_t id = (uintptr_t)conn;

    (void)ctx;
    out->connected_ms = 1000;
    out->bytes_out = F.c[id].q.len;
    out->queued = F.c[id].q.len - F.c[id].rd + F.c[id].extra;
}

static inline void fake_activate(void *ctx, const char *service, uint32_t id)
{
    (void)ctx;
    F.activations++;
    snprintf(F.activated, sizeof F.activated, "%s", service);
    F.activation_id = id;
}

/* A frame in two parts (PH_HUB_SPLIT_BYTES and up): queued as one, and
 * counted, so a test can see the payload was not copied into the hub. */
static int fake_parts;

static inline ph_err fake_send_parts(void *ctx, void *conn,
                                     const uint8_t *head, size_t head_len,
                                     const uint8_t *payload, size_t plen)
{
    uintptr_t id = (uintptr_t)conn;
    ph_err err = fake_send(ctx, conn, head, head_len);

    fake_parts++;
    return err == PH_OK ? ph_buf_append(&F.c[id].q, payload, plen) : err;
}

static const ph_hub_io fake_io = {NULL,       fake_send, fake_queued,
                                  fake_kick,  fake_close, fake_now,
                                  fake_now,   fake_log,  fake_conn_stats,
                                  fake_activate, fake_send_parts};

static inline ph_hub_limits fake_limits(void)
{
    ph_hub_limits l;

    memset(&l, 0, sizeof l);
    l.send_queue_bytes = 64 * 1024;
    l.request_timeout_ms = 30000;
    l.max_inflight_per_client = 128;
    l.max_frame = PH_MAX_FRAME_DEFAULT;
    return l;
}

static inline ph_err fake_start(const ph_hub_limits *l)
{
    memset(&F, 0, sizeof F);
    F.now = 1000;
    return ph_hub_new(&fake_io, l, &F.hub);
}

static inline void fake_stop(void)
{
    int i;

    ph_hub_free(F.hub);
    for (i = 0; i <= FAKE_CONNS; i++)
        ph_buf_free(&F.c[i].q);
    memset(&F, 0, sizeof F);
}

static inline ph_err fake_connect_full(uint32_t id, int admin, uint32_t pid,
                                       const char *sid, uint32_t rid,
                                       char *why, size_t why_cap)
{
    ph_identity who;
    ph_err err;

    memset(&who, 0, sizeof who);
    who.pid = pid;
    who.sid = sid;
    who.account = "";
    who.integrity = rid >= 0x3000 ? "high" : "medium";
    who.integrity_rid = rid;
    who.groups = "S-1-1-0,S-1-5-11";
    who.admin = admin;
    F.c[id].live = 1;
    err = ph_hub_connect(F.hub, id, (void *)(uintptr_t)id, &who, why, why_cap);
    if (err != PH_OK)
        F.c[id].live = 0;
    return err;
}

static inline ph_err fake_connect_as(uint32_t id, int admin, uint32_t pid)
{
    ph_identity who;
    ph_err err;

    memset(&who, 0, sizeof who);
    who.pid = pid;
    who.sid = "S-1-5-21-1-2-3-1001";
    who.account = "TEST\\user";
    who.logon_session = "0x0:0x1234";
    who.integrity = "medium";
    who.integrity_rid = 0x2000;
    who.exe = "C:\\test\\client.exe";
    who.groups = "S-1-1-0,S-1-5-11,S-1-5-32-545";
    who.admin = admin;
    F.c[id].live = 1;
    err = ph_hub_connect(F.hub, id, (void *)(uintptr_t)id, &who, NULL, 0);
    if (err != PH_OK)
        F.c[id].live = 0;
    return err;
}

static inline ph_err fake_connect(uint32_t id)
{
    return fake_connect_as(id, 0, 1000 + id);
}

static inline void fake_disconnect(uint32_t id)
{
    ph_hub_disconnect(F.hub, id);
    ph_hub_flush(F.hub);
    F.c[id].live = 0;
}

/* Frame from conn id; its own answers land in its queue. */
static inline ph_err fake_frame(uint32_t from, uint8_t kind, const char *route,
                         uint32_t id, uint32_t status, const void *payload,
                         size_t len)
{
    ph_frame f = make_frame(kind, id, status, route, payload, (uint32_t)len);
    ph_err err;

    err = ph_hub_frame(F.hub, from, &f, &F.c[from].q);
    ph_hub_flush(F.hub);
    return err;
}

static inline ph_err fake_req(uint32_t from, const char *route, uint32_t id,
                       const char *payload)
{
    return fake_frame(from, PH_REQUEST, route, id, 0, payload,
                      payload ? strlen(payload) : 0);
}

/* The next frame queued for conn id: 1 with *f filled (pointing into the
 * queue, valid until the next send to id), 0 when nothing is queued. */
static inline int fake_next(uint32_t id, ph_frame *f)
{
    fconn *c = &F.c[id];
    ph_decoder d;
    size_t used;
    ph_err err;

    if (c->rd >= c->q.len)
        return 0;
    ph_decoder_init(&d, 64u * 1024u * 1024u);
    err = ph_decoder_next(&d, c->q.data + c->rd, c->q.len - c->rd, &used, f);
    ph_decoder_free(&d);
    if (err != PH_OK) {
        fprintf(stderr, "conn %u holds a broken frame stream (%d)\n",
                (unsigned)id, (int)err);
        abort();
    }
    c->rd += used;
    return 1;
}

/* Drop everything queued for id. */
static inline void fake_drain(uint32_t id)
{
    F.c[id].q.len = F.c[id].rd = 0;
}

#endif
