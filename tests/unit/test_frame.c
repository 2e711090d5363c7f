/* Unit tests of the frame codec (common/frame.h).
 *
 * Expected wire bytes are written by hand here (put_header, put_frame), never
 * by ph_frame_encode, so that an encoder bug cannot hide a decoder bug or the
 * other way round. The decoder is driven through decode_chunks, which checks
 * the ph_decoder_next contract on every call and records what came out in the
 * same canonical form, so a clean decode of a valid stream must give back the
 * stream itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "harness.h"
#include "platform.h"
#include "unit_util.h"

/* ---- expected wire bytes, written by hand ------------------------------- */

static void put_u32(bytes *b, uint32_t v)
{
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                     (uint8_t)(v >> 24)};
    bytes_put(b, le, 4);
}

/* Every header field given explicitly, so broken headers can be written. */
static void put_header(bytes *b, uint32_t frame_len, uint8_t version,
                       uint8_t kind, uint8_t route_len, uint8_t flags,
                       uint32_t id, uint32_t status)
{
    uint8_t mid[4] = {version, kind, route_len, flags};

    put_u32(b, frame_len);
    bytes_put(b, mid, 4);
    put_u32(b, id);
    put_u32(b, status);
}

static void put_frame(bytes *b, uint8_t kind, uint32_t id, uint32_t status,
                      const char *route, size_t route_len, const void *payload,
                      size_t payload_len)
{
    put_header(b, (uint32_t)(PH_FRAME_HEADER_LEN + route_len + payload_len),
               PH_PROTOCOL_VERSION, kind, (uint8_t)route_len, 0, id, status);
    bytes_put(b, route, route_len);
    bytes_put(b, payload, payload_len);
}

static void put_str_frame(bytes *b, uint8_t kind, uint32_t id, uint32_t status,
                          const char *route, const char *payload)
{
    put_frame(b, kind, id, status, route, strlen(route), payload,
              strlen(payload));
}

/* memcmp that tolerates empty (possibly NULL) ranges and says where two
 * byte strings part. */
static int same_bytes(const uint8_t *a, size_t alen, const uint8_t *b,
                      size_t blen)
{
    size_t i, n = alen < blen ? alen : blen;

    for (i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            fprintf(stderr, "  bytes differ at %zu: 0x%02x != 0x%02x\n", i,
                    a[i], b[i]);
            return 0;
        }
    }
    if (alen != blen) {
        fprintf(stderr, "  lengths differ: %zu != %zu\n", alen, blen);
        return 0;
    }
    return 1;
}

static int same_frame(const ph_frame *a, const ph_frame *b)
{
    if (a->kind != b->kind || a->id != b->id || a->status != b->status) {
        fprintf(stderr, "  kind/id/status %u/%u/%u != %u/%u/%u\n", a->kind,
                (unsigned)a->id, (unsigned)a->status, b->kind,
                (unsigned)b->id, (unsigned)b->status);
        return 0;
    }
    return same_bytes((const uint8_t *)a->route, a->route_len,
                      (const uint8_t *)b->route, b->route_len) &&
           same_bytes(a->payload, a->payload_len, b->payload, b->payload_len);
}

/* One ph_decoder_next call on the n bytes of s at *pos, which must return
 * want. *pos moves on by what the call used: when it waits (PH_EAGAIN) that
 * must be all n, when it returns a frame or runs out of memory at most n
 * (after PH_EBADFRAME and PH_ETOOBIG it is unspecified and not looked at).
 * 1 when so; 0, saying what happened, when not. */
static int next_piece(ph_decoder *d, const bytes *s, size_t *pos, size_t n,
                      ph_err want, ph_frame *f)
{
    size_t used = SIZE_MAX;
    ph_err err = ph_decoder_next(d, s->data + *pos, n, &used, f);
    int broken = err == PH_EBADFRAME || err == PH_ETOOBIG;

    if (err != want || (!broken && used > n) ||
        (err == PH_EAGAIN && used != n)) {
        fprintf(stderr, "  %zu bytes at %zu: %s (used %zu), want %s\n", n,
                *pos, ph_strerror(err), broken ? 0 : used, ph_strerror(want));
        return 0;
    }
    if (!broken)
        *pos += used;
    return 1;
}

/* ---- the stream driver --------------------------------------------------- */

/* What a decoder made of a stream. */
typedef struct decoded {
    bytes frames;     /* each frame written back with put_frame, in order */
    size_t count;     /* frames decoded */
    ph_err err;       /* PH_EAGAIN when the input ran out, else the error */
    char why[sizeof(((ph_decoder *)0)->why)];
    int idle;         /* ph_decoder_idle at the end (PH_EAGAIN only) */
    int retry_nomem;  /* on PH_ENOMEM: injection off, retry the rest */
    int nomem;        /* PH_ENOMEMs seen and retried */
    int broken;       /* a call broke the ph_decoder_next contract */
} decoded;

static void decoded_free(decoded *r) { bytes_free(&r->frames); }

/* The n bytes at p are the next piece of the stream: take every frame out.
 * Returns 1 when the stream failed (r->err set), 0 to go on. */
static int feed(ph_decoder *d, const uint8_t *p, size_t n, decoded *r)
{
    for (;;) {
        int was_idle = ph_decoder_idle(d);
        size_t used = SIZE_MAX;
        ph_frame f;
        ph_err err;

        memset(&f, 0, sizeof f);
        err = ph_decoder_next(d, p, n, &used, &f);
        if (err == PH_OK) {
            /* used counts this call's bytes only: all of a frame that was
             * whole in p, the rest of one that was being assembled. */
            size_t size = ph_frame_size(f.route_len, f.payload_len);

            if (used > n || used > size || (was_idle && used != size)) {
                fprintf(stderr, "  PH_OK with used %zu of %zu for a %zu-byte "
                        "frame\n", used, n, size);
                r->broken = 1;
                r->err = err;
                return 1;
            }
            /* An idle decoder has seen nothing of this frame before, so it lay
             * whole inside p: the contract says it is not copied. */
            if (was_idle &&
                (f.route != (const char *)p + PH_FRAME_HEADER_LEN ||
                 f.payload != p + PH_FRAME_HEADER_LEN + f.route_len)) {
                fprintf(stderr, "  a frame whole in the input was copied\n");
                r->broken = 1;
            }
            put_frame(&r->frames, f.kind, f.id, f.status, f.route,
                      f.route_len, f.payload, f.payload_len);
            r->count++;
            p += used;
            n -= used;
            continue; /* even when n is 0: that call must say PH_EAGAIN */
        }
        if (err == PH_EAGAIN) {
            if (used != n) {
                fprintf(stderr, "  PH_EAGAIN with used %zu of %zu\n", used, n);
                r->broken = 1;
            }
            return 0;
        }
        if (err == PH_ENOMEM && r->retry_nomem) {
            if (used > n) {
                fprintf(stderr, "  PH_ENOMEM with used %zu of %zu\n", used, n);
                r->broken = 1;
                r->err = err;
                return 1;
            }
            r->nomem++;
            ph_alloc_fail_after(-1);
            p += used;
            n -= used;
            continue;
        }
        r->err = err;
        if (err == PH_EBADFRAME || err == PH_ETOOBIG) {
            uint8_t valid[PH_FRAME_HEADER_LEN + 1];
            bytes one = {0};

            memcpy(r->why, d->why, sizeof r->why);
            if (memchr(d->why, 0, sizeof d->why) == NULL || d->why[0] == 0) {
                fprintf(stderr, "  error %d without a why\n", (int)err);
                r->broken = 1;
            }
            /* Sticky: the same bytes again, nothing, or a valid frame. */
            put_str_frame(&one, PH_REPLY, 1, 0, "r", "");
            memcpy(valid, one.data, sizeof valid);
            bytes_free(&one);
            if (ph_decoder_next(d, p, n, &used, &f) != err ||
                ph_decoder_next(d, valid, 0, &used, &f) != err ||
                ph_decoder_next(d, valid, sizeof valid, &used, &f) != err ||
                strcmp(d->why, r->why) != 0) {
                fprintf(stderr, "  error %d is not sticky\n", (int)err);
                r->broken = 1;
            }
        } else {
            fprintf(stderr, "  unexpected %s\n", ph_strerror(err));
            r->broken = 1;
        }
        return 1;
    }
}

/* Decode data[0..len) with a fresh decoder, fed in pieces of sizes[0],
 * sizes[1], ... (cycled; 0 or a missing list means all the rest). */
static void decode_chunks(const uint8_t *data, size_t len, uint32_t max_frame,
                          const size_t *sizes, size_t nsizes, decoded *r)
{
    ph_decoder d;
    size_t pos = 0, i = 0;
    int retry = r->retry_nomem;

    memset(r, 0, sizeof *r);
    r->retry_nomem = retry;
    r->err = PH_EAGAIN;
    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, max_frame);
    do {
        size_t n = nsizes ? sizes[i++ % nsizes] : 0;

        if (n == 0 || n > len - pos)
            n = len - pos;
        if (feed(&d, data + pos, n, r))
            break;
        pos += n;
    } while (pos < len);
    if (r->err == PH_EAGAIN)
        r->idle = ph_decoder_idle(&d);
    ph_decoder_free(&d);
}

static int same_result(const decoded *a, const decoded *b, const char *how)
{
    if (a->broken || b->broken) {
        fprintf(stderr, "  %s: the decoder broke its contract\n", how);
        return 0;
    }
    if (a->err != b->err || a->count != b->count || a->idle != b->idle ||
        (a->err != PH_EAGAIN && strcmp(a->why, b->why) != 0)) {
        fprintf(stderr, "  %s: %s, %zu frames, idle %d, \"%s\" != %s, %zu "
                "frames, idle %d, \"%s\"\n", how, ph_strerror(a->err),
                a->count, a->idle, a->why, ph_strerror(b->err), b->count,
                b->idle, b->why);
        return 0;
    }
    if (!same_bytes(a->frames.data, a->frames.len, b->frames.data,
                    b->frames.len)) {
        fprintf(stderr, "  %s: the frames differ\n", how);
        return 0;
    }
    return 1;
}

/* Decode data whole into *whole, then split at every point, three ways at
 * every pair of points (when pairs is set), a byte at a time and in a few
 * cycled chunk sizes: every way must give exactly what the whole decode did. */
static int split_invariant(const uint8_t *data, size_t len, uint32_t max_frame,
                           int pairs, decoded *whole)
{
    static const size_t odd[] = {3, 1, 16, 2, 17, 5, 15, 64, 4};
    static const size_t one = 1;
    size_t i, j, sizes[3];
    decoded r;
    char how[64];
    int ok = 1;

    memset(whole, 0, sizeof *whole);
    decode_chunks(data, len, max_frame, NULL, 0, whole);
    if (whole->broken)
        return 0;
    memset(&r, 0, sizeof r);
    for (i = 1; i < len && ok; i++) {
        sizes[0] = i;
        sizes[1] = 0;
        decode_chunks(data, len, max_frame, sizes, 2, &r);
        snprintf(how, sizeof how, "split at %zu", i);
        ok = same_result(whole, &r, how);
        decoded_free(&r);
        for (j = i + 1; pairs && j < len && ok; j++) {
            sizes[1] = j - i;
            sizes[2] = 0;
            decode_chunks(data, len, max_frame, sizes, 3, &r);
            snprintf(how, sizeof how, "split at %zu and %zu", i, j);
            ok = same_result(whole, &r, how);
            decoded_free(&r);
        }
    }
    if (ok) {
        decode_chunks(data, len, max_frame, &one, 1, &r);
        ok = same_result(whole, &r, "a byte at a time");
        decoded_free(&r);
    }
    for (i = 0; i < sizeof odd / sizeof odd[0] && ok; i++) {
        decode_chunks(data, len, max_frame, odd + i,
                      sizeof odd / sizeof odd[0] - i, &r);
        snprintf(how, sizeof how, "cycled sizes from %zu", i);
        ok = same_result(whole, &r, how);
        decoded_free(&r);
    }
    return ok;
}

/* The index-th frame of a canonical log (decoded.frames). */
static int frame_at(const bytes *log, size_t index, ph_frame *out)
{
    size_t pos = 0;

    while (pos + PH_FRAME_HEADER_LEN <= log->len) {
        const uint8_t *h = log->data + pos;
        uint32_t frame_len = ph_get_u32le(h);

        if (index-- == 0) {
            out->kind = h[5];
            out->route_len = h[6];
            out->id = ph_get_u32le(h + 8);
            out->status = ph_get_u32le(h + 12);
            out->route = (const char *)h + PH_FRAME_HEADER_LEN;
            out->payload = h + PH_FRAME_HEADER_LEN + h[6];
            out->payload_len = frame_len - PH_FRAME_HEADER_LEN - h[6];
            return 1;
        }
        pos += frame_len;
    }
    return 0;
}

/* A stream with every kind, empty and 255-byte routes, header-only frames,
 * extreme ids and a payload bigger than the assembly buffer's first size. */
static void mixed_stream(bytes *s)
{
    char route255[PH_ROUTE_MAX + 1];
    uint8_t payload[300];
    size_t i;

    for (i = 0; i < PH_ROUTE_MAX; i++)
        route255[i] = "abcXYZ019._-/"[i % 13];
    route255[PH_ROUTE_MAX] = 0;
    fill(payload, sizeof payload, 7);
    put_str_frame(s, PH_REQUEST, 1, 0, "svc.echo", "hello");
    put_str_frame(s, PH_REPLY, 1, 0, "", "");
    put_frame(s, PH_EVENT, 0, 0, "topic/a-b_c.d", 13, payload, sizeof payload);
    put_str_frame(s, PH_ERROR, 7, PH_ENOROUTE, "", "no route");
    put_frame(s, PH_REQUEST, UINT32_MAX, UINT32_MAX, route255, PH_ROUTE_MAX,
              payload, 40);
    put_str_frame(s, PH_REPLY, 0x80000000u, 0, "r", "x");
    put_str_frame(s, PH_EVENT, 0, 0, "e", "");
}

/* A short one, for the three-way splits. */
static void short_stream(bytes *s)
{
    put_str_frame(s, PH_REQUEST, 2, 0, "a/b", "ping");
    put_str_frame(s, PH_REPLY, 2, 0, "", "");
    put_str_frame(s, PH_ERROR, 3, PH_EBUSY, "", "busy");
    put_str_frame(s, PH_EVENT, 0, 0, "t", "!");
}

/* ---- encoder ------------------------------------------------------------- */

static void test_u32le_helpers(void)
{
    uint8_t b[4];

    ph_put_u32le(b, 0x04030201u);
    CHECK_EQ(b[0], 1);
    CHECK_EQ(b[1], 2);
    CHECK_EQ(b[2], 3);
    CHECK_EQ(b[3], 4);
    CHECK_EQ(ph_get_u32le(b), 0x04030201u);
    ph_put_u32le(b, 0xFFFFFFFEu);
    CHECK_EQ(b[0], 0xFE);
    CHECK_EQ(b[3], 0xFF);
    CHECK_EQ(ph_get_u32le(b), 0xFFFFFFFEu);
    CHECK_EQ(ph_frame_size(0, 0), PH_FRAME_HEADER_LEN);
    CHECK_EQ(ph_frame_size(255, 1000), PH_FRAME_HEADER_LEN + 1255);
}

/* The wire layout, written out byte by byte: frame_len, version, kind,
 * route_len, flags, id, status (all little-endian), route, payload. */
static void test_encode_layout(void)
{
    static const uint8_t want[] = {
        0x16, 0x00, 0x00, 0x00, /* frame_len 22 */
        0x01,                   /* version */
        0x01,                   /* kind REQUEST */
        0x03,                   /* route_len */
        0x00,                   /* flags */
        0x01, 0x02, 0x03, 0x04, /* id 0x04030201 */
        0x0a, 0x0b, 0x0c, 0x0d, /* status 0x0d0c0b0a */
        'a', '.', 'b',          /* route */
        'x', 'y', 'z',          /* payload */
    };
    ph_frame f = make_frame(PH_REQUEST, 0x04030201u, 0x0d0c0b0au, "a.b",
                            "xyz", 3);
    uint8_t out[64];
    size_t n = 0;

    memset(out, 0xEE, sizeof out);
    CHECK_EQ(ph_frame_encode(&f, out, sizeof out, &n), PH_OK);
    CHECK_EQ(n, sizeof want);
    CHECK(same_bytes(out, n, want, sizeof want));
    CHECK_EQ(out[sizeof want], 0xEE); /* nothing written past the frame */

    /* A header-only REPLY with a large id. */
    {
        static const uint8_t want2[] = {0x10, 0, 0, 0, 1, 2, 0, 0,
                                        0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80};
        ph_frame g =
            make_frame(PH_REPLY, UINT32_MAX, 0x80000000u, NULL, NULL, 0);

        CHECK_EQ(ph_frame_encode(&g, out, sizeof out, &n), PH_OK);
        CHECK(same_bytes(out, n, want2, sizeof want2));
    }
}

/* The example in docs/PROTOCOL.md, both ways. */
static void test_protocol_example(void)
{
    static const uint8_t request[] = {
        0x1a, 0, 0, 0, 1, 1, 8, 0, 7, 0, 0, 0, 0, 0, 0, 0,
        's', 'y', 's', '.', 'e', 'c', 'h', 'o', 'h', 'i'};
    static const uint8_t reply[] = {
        0x12, 0, 0, 0, 1, 2, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 'h', 'i'};
    ph_frame f = make_frame(PH_REQUEST, 7, 0, "sys.echo", "hi", 2);
    ph_frame out;
    uint8_t buf[64];
    size_t n = 0, used = 0;
    ph_decoder d;

    CHECK_EQ(ph_frame_encode(&f, buf, sizeof buf, &n), PH_OK);
    CHECK(same_bytes(buf, n, request, sizeof request));
    f = make_frame(PH_REPLY, 7, 0, NULL, "hi", 2);
    CHECK_EQ(ph_frame_encode(&f, buf, sizeof buf, &n), PH_OK);
    CHECK(same_bytes(buf, n, reply, sizeof reply));

    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, PH_MAX_FRAME_DEFAULT);
    CHECK_EQ(ph_decoder_next(&d, request, sizeof request, &used, &out), PH_OK);
    CHECK_EQ(used, sizeof request);
    f = make_frame(PH_REQUEST, 7, 0, "sys.echo", "hi", 2);
    CHECK(same_frame(&out, &f));
    CHECK_EQ(ph_decoder_next(&d, reply, sizeof reply, &used, &out), PH_OK);
    f = make_frame(PH_REPLY, 7, 0, NULL, "hi", 2);
    CHECK(same_frame(&out, &f));
    ph_decoder_free(&d);
}

static void test_encode_round_trip_each_kind(void)
{
    static const uint8_t body[] = {0, 1, 2, 0xff, 'p'};
    ph_frame in[6];
    uint8_t buf[512];
    size_t i;

    in[0] = make_frame(PH_REQUEST, 42, 0, "svc.echo", body, sizeof body);
    in[1] = make_frame(PH_REPLY, 42, 0, NULL, body, sizeof body);
    in[2] = make_frame(PH_REPLY, 43, 0, "with/route", NULL, 0);
    in[3] = make_frame(PH_EVENT, 0, 0, "topic.x", body, 2);
    in[4] = make_frame(PH_ERROR, 44, PH_ENOROUTE, NULL, "no route", 8);
    in[5] = make_frame(PH_ERROR, 45, PH_EINTERNAL, "r", NULL, 0);
    for (i = 0; i < sizeof in / sizeof in[0]; i++) {
        ph_decoder d;
        ph_frame out;
        size_t n = 0, used = 0;

        CHECK_EQ(ph_frame_encode(&in[i], buf, sizeof buf, &n), PH_OK);
        CHECK_EQ(n, ph_frame_size(in[i].route_len, in[i].payload_len));
        memset(&d, 0, sizeof d);
        ph_decoder_init(&d, PH_MAX_FRAME_DEFAULT);
        CHECK_EQ(ph_decoder_next(&d, buf, n, &used, &out), PH_OK);
        ph_decoder_free(&d);
        CHECK_EQ(used, n);
        CHECK(same_frame(&in[i], &out));
    }
}

static void test_route_charset(void)
{
    int c;

    for (c = 0; c < 256; c++) {
        char ch = (char)c;
        int want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                   c == '-' || c == '/';
        char route[3] = {'a', ch, 'b'};

        CHECK_EQ(ph_route_valid(&ch, 1), want);
        CHECK_EQ(ph_route_valid(route, 3), want);
    }
    CHECK_EQ(ph_route_valid("", 0), 1);
    CHECK_EQ(ph_route_valid("ab", 2), 1);
    CHECK_EQ(ph_route_valid("ab c", 4), 0);
    /* Only len bytes count: what follows them is not looked at. */
    CHECK_EQ(ph_route_valid("ab c", 2), 1);
}

static void test_encode_invalid(void)
{
    static const char *const bad_routes[] = {"a b", "a*", "a:b", "\\x",
                                             "caf\xc3\xa9", "tab\t", "\x7f"};
    static const uint8_t bad_kinds[] = {0, 5, 6, 0x80, 0xff};
    uint8_t buf[512];
    size_t i, n;
    ph_frame f;

    for (i = 0; i < sizeof bad_kinds; i++) {
        f = make_frame(PH_REPLY, 1, 0, "r", "p", 1);
        f.kind = bad_kinds[i];
        n = 12345;
        CHECK_EQ(ph_frame_encode(&f, buf, sizeof buf, &n), PH_EINVAL);
        CHECK_EQ(n, 12345); /* out-parameters are written only on success */
    }
    for (i = 0; i < sizeof bad_routes / sizeof bad_routes[0]; i++) {
        f = make_frame(PH_REQUEST, 1, 0, bad_routes[i], "p", 1);
        CHECK_EQ(ph_frame_encode(&f, buf, sizeof buf, &n), PH_EINVAL);
        f.kind = PH_REPLY; /* the route must be valid in every kind */
        CHECK_EQ(ph_frame_encode(&f, buf, sizeof buf, &n), PH_EINVAL);
    }
    {
        /* A NUL inside the route is a bad character, not an end. */
        char nul[2] = {'a', 0};

        f = make_frame(PH_EVENT, 0, 0, "ab", NULL, 0);
        f.route = nul;
        CHECK_EQ(ph_frame_encode(&f, buf, sizeof buf, &n), PH_EINVAL);
    }
    f = make_frame(PH_REQUEST, 1, 0, NULL, "p", 1);
    CHECK_EQ(ph_frame_encode(&f, buf, sizeof buf, &n), PH_EINVAL);
    f = make_frame(PH_EVENT, 0, 0, "", "p", 1);
    CHECK_EQ(ph_frame_encode(&f, buf, sizeof buf, &n), PH_EINVAL);
    f = make_frame(PH_REPLY, 1, 0, NULL, "p", 1);
    CHECK_EQ(ph_frame_encode(&f, buf, sizeof buf, &n), PH_OK);
    f = make_frame(PH_ERROR, 1, PH_EBUSY, "", "p", 1);
    CHECK_EQ(ph_frame_encode(&f, buf, sizeof buf, &n), PH_OK);
}

static void test_encode_cap(void)
{
    ph_frame f = make_frame(PH_REQUEST, 9, 0, "route", "payload", 7);
    size_t size = ph_frame_size(5, 7), n;
    uint8_t buf[64], zero = 0;

    memset(buf, 0xEE, sizeof buf);
    n = 777;
    CHECK_EQ(ph_frame_encode(&f, buf, size - 1, &n), PH_ETOOBIG);
    CHECK_EQ(n, 777);
    CHECK_EQ(ph_frame_encode(&f, buf, 0, &n), PH_ETOOBIG);
    CHECK_EQ(ph_frame_encode(&f, buf, PH_FRAME_HEADER_LEN - 1, &n), PH_ETOOBIG);
    CHECK_EQ(ph_frame_encode(&f, &zero, 0, &n), PH_ETOOBIG);
    CHECK_EQ(n, 777);
    CHECK_EQ(ph_frame_encode(&f, buf, size, &n), PH_OK);
    CHECK_EQ(n, size);

    /* Over 4 GiB on the wire: refused before any byte of the (short) payload
     * is read, even when the caller claims room for it. */
    f = make_frame(PH_REPLY, 1, 0, NULL, "tiny", 0);
    f.payload_len = UINT32_MAX - PH_FRAME_HEADER_LEN + 1;
    CHECK_EQ(ph_frame_encode(&f, buf, SIZE_MAX, &n), PH_ETOOBIG);
    f = make_frame(PH_REQUEST, 1, 0, "r", "tiny", 0);
    f.payload_len = UINT32_MAX;
    CHECK_EQ(ph_frame_encode(&f, buf, SIZE_MAX, &n), PH_ETOOBIG);
    CHECK_EQ(n, size);
}

static void test_append(void)
{
    ph_frame a = make_frame(PH_REQUEST, 1, 0, "svc", "abc", 3);
    ph_frame b = make_frame(PH_ERROR, 1, PH_EBUSY, NULL, NULL, 0);
    ph_frame bad = make_frame(PH_REQUEST, 1, 0, NULL, "abc", 3);
    ph_buf buf = {0};
    bytes want = {0};
    uint8_t *data;
    size_t len, cap;

    put_str_frame(&want, PH_REQUEST, 1, 0, "svc", "abc");
    CHECK_EQ(ph_frame_append(&buf, &a), PH_OK);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));
    put_str_frame(&want, PH_ERROR, 1, PH_EBUSY, "", "");
    CHECK_EQ(ph_frame_append(&buf, &b), PH_OK);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    /* Failures leave what is there alone. */
    len = buf.len;
    CHECK_EQ(ph_frame_append(&buf, &bad), PH_EINVAL);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));
    bad = make_frame(PH_REPLY, 1, 0, NULL, "x", 0);
    bad.payload_len = UINT32_MAX;
    CHECK_EQ(ph_frame_append(&buf, &bad), PH_ETOOBIG);
    CHECK_EQ(buf.len, len);

    /* Out of memory while growing: nothing moves. */
    {
        uint8_t big[4096];

        fill(big, sizeof big, 1);
        a = make_frame(PH_REPLY, 2, 0, NULL, big, sizeof big);
        data = buf.data;
        cap = buf.cap;
        ph_alloc_fail_after(0);
        CHECK_EQ(ph_frame_append(&buf, &a), PH_ENOMEM);
        ph_alloc_fail_after(-1);
        CHECK(buf.data == data);
        CHECK_EQ(buf.cap, cap);
        CHECK(same_bytes(buf.data, buf.len, want.data, want.len));
        CHECK_EQ(ph_frame_append(&buf, &a), PH_OK);
        put_frame(&want, PH_REPLY, 2, 0, NULL, 0, big, sizeof big);
        CHECK(same_bytes(buf.data, buf.len, want.data, want.len));
    }
    ph_buf_free(&buf);
    bytes_free(&want);
}

/* frame.h: "On failure b is unchanged." A caller may rely on that to skip
 * freeing a buffer that was empty before a failed append. */
static void test_append_invalid_leaves_buf_unchanged(void)
{
    ph_frame bad = make_frame(PH_EVENT, 0, 0, NULL, "abc", 3);
    ph_buf buf = {0};
    int untouched;
    size_t start = 99;

    CHECK_EQ(ph_frame_append(&buf, &bad), PH_EINVAL);
    untouched = buf.data == NULL && buf.len == 0 && buf.cap == 0;
    ph_buf_free(&buf); /* so that this test does not leak when it fails */
    CHECK(untouched);

    CHECK_EQ(ph_frame_begin(&buf, 0, 1, 0, NULL, 0, &start), PH_EINVAL);
    untouched = buf.data == NULL && buf.len == 0 && buf.cap == 0;
    ph_buf_free(&buf);
    CHECK(untouched);
    CHECK_EQ(start, 99);
}

static void test_append_error(void)
{
    char longmsg[301];
    ph_buf buf = {0};
    ph_frame f;
    bytes want = {0};

    memset(longmsg, 'm', 300);
    longmsg[300] = 0;
    longmsg[199] = 'L'; /* the last byte kept */
    longmsg[200] = 'X'; /* the first byte cut */

    CHECK_EQ(ph_frame_append_error(&buf, 17, PH_ENOROUTE, "no such route"),
             PH_OK);
    put_str_frame(&want, PH_ERROR, 17, PH_ENOROUTE, "", "no such route");
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    CHECK_EQ(ph_frame_append_error(&buf, 18, PH_EBADFRAME, longmsg), PH_OK);
    put_frame(&want, PH_ERROR, 18, PH_EBADFRAME, NULL, 0, longmsg, 200);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    longmsg[200] = 0; /* exactly 200 bytes: kept whole */
    CHECK_EQ(ph_frame_append_error(&buf, 19, PH_ETOOBIG, longmsg), PH_OK);
    put_frame(&want, PH_ERROR, 19, PH_ETOOBIG, NULL, 0, longmsg, 200);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    longmsg[199] = 0; /* 199 bytes */
    CHECK_EQ(ph_frame_append_error(&buf, 20, PH_EBUSY, longmsg), PH_OK);
    put_frame(&want, PH_ERROR, 20, PH_EBUSY, NULL, 0, longmsg, 199);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    CHECK_EQ(ph_frame_append_error(&buf, 0, PH_EINTERNAL, ""), PH_OK);
    put_frame(&want, PH_ERROR, 0, PH_EINTERNAL, NULL, 0, NULL, 0);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    /* What the codec writes, the codec reads. */
    {
        decoded r;

        memset(&r, 0, sizeof r);
        decode_chunks(buf.data, buf.len, PH_MAX_FRAME_DEFAULT, NULL, 0, &r);
        CHECK(!r.broken);
        CHECK_EQ(r.count, 5);
        CHECK(frame_at(&r.frames, 1, &f));
        CHECK_EQ(f.kind, PH_ERROR);
        CHECK_EQ(f.id, 18);
        CHECK_EQ(f.status, PH_EBADFRAME);
        CHECK_EQ(f.payload_len, 200);
        CHECK_EQ(f.payload[199], 'L');
        decoded_free(&r);
    }
    ph_buf_free(&buf);
    bytes_free(&want);
}

static void test_begin_end(void)
{
    static const char prefix[] = "earlier bytes";
    ph_buf buf = {0};
    bytes want = {0};
    size_t start = 0;
    uint8_t body[2000];

    fill(body, sizeof body, 3);
    CHECK_EQ(ph_buf_append(&buf, prefix, sizeof prefix - 1), PH_OK);
    bytes_put(&want, prefix, sizeof prefix - 1);

    /* A payload written straight into the buffer. */
    CHECK_EQ(ph_frame_begin(&buf, PH_REPLY, 5, 0, "r/x", 3, &start), PH_OK);
    CHECK_EQ(start, sizeof prefix - 1);
    CHECK_EQ(ph_buf_append(&buf, body, 100), PH_OK);
    CHECK_EQ(ph_frame_end(&buf, start, PH_MAX_FRAME_DEFAULT), PH_OK);
    put_frame(&want, PH_REPLY, 5, 0, "r/x", 3, body, 100);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    /* No payload at all. */
    CHECK_EQ(ph_frame_begin(&buf, PH_EVENT, 0, 0, "t", 1, &start), PH_OK);
    CHECK_EQ(ph_frame_end(&buf, start, PH_MAX_FRAME_DEFAULT), PH_OK);
    put_frame(&want, PH_EVENT, 0, 0, "t", 1, NULL, 0);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    /* Exactly max_frame bytes: kept. */
    CHECK_EQ(ph_frame_begin(&buf, PH_ERROR, 6, PH_EBUSY, NULL, 0, &start),
             PH_OK);
    CHECK_EQ(ph_buf_append(&buf, body, 1024 - PH_FRAME_HEADER_LEN), PH_OK);
    CHECK_EQ(ph_frame_end(&buf, start, 1024), PH_OK);
    put_frame(&want, PH_ERROR, 6, PH_EBUSY, NULL, 0, body,
              1024 - PH_FRAME_HEADER_LEN);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    /* One byte over: the whole frame goes, what came before stays. */
    CHECK_EQ(ph_frame_begin(&buf, PH_REPLY, 7, 0, "big", 3, &start), PH_OK);
    CHECK_EQ(ph_buf_append(&buf, body, 1024 - PH_FRAME_HEADER_LEN - 3 + 1),
             PH_OK);
    CHECK_EQ(ph_frame_end(&buf, start, 1024), PH_ETOOBIG);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));
    CHECK_EQ(ph_frame_begin(&buf, PH_REPLY, 8, 0, "big", 3, &start), PH_OK);
    CHECK_EQ(ph_buf_append(&buf, body, sizeof body), PH_OK);
    CHECK_EQ(ph_frame_end(&buf, start, 1024), PH_ETOOBIG);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    /* And the buffer still takes frames after a rollback. */
    CHECK_EQ(ph_frame_begin(&buf, PH_REPLY, 9, 0, NULL, 0, &start), PH_OK);
    CHECK_EQ(ph_buf_append(&buf, "ok", 2), PH_OK);
    CHECK_EQ(ph_frame_end(&buf, start, 1024), PH_OK);
    put_frame(&want, PH_REPLY, 9, 0, NULL, 0, "ok", 2);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));

    /* Bad arguments are refused, like ph_frame_encode refuses them. */
    start = 4242;
    CHECK_EQ(ph_frame_begin(&buf, PH_REQUEST, 1, 0, NULL, 0, &start),
             PH_EINVAL);
    CHECK_EQ(ph_frame_begin(&buf, 5, 1, 0, "r", 1, &start), PH_EINVAL);
    CHECK_EQ(ph_frame_begin(&buf, PH_REPLY, 1, 0, "r r", 3, &start),
             PH_EINVAL);
    CHECK_EQ(start, 4242);
    CHECK(same_bytes(buf.data, buf.len, want.data, want.len));
    ph_buf_free(&buf);
    bytes_free(&want);
}

/* ---- decoder: good streams ----------------------------------------------- */

static void test_decode_one_whole(void)
{
    bytes s = {0};
    ph_decoder d;
    ph_frame f;
    size_t used = 0;

    put_str_frame(&s, PH_REQUEST, 77, 0, "svc.echo", "hello");
    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, PH_MAX_FRAME_DEFAULT);
    CHECK_EQ(ph_decoder_next(&d, s.data, s.len, &used, &f), PH_OK);
    CHECK_EQ(used, s.len);
    CHECK_EQ(f.kind, PH_REQUEST);
    CHECK_EQ(f.id, 77);
    CHECK_EQ(f.status, 0);
    CHECK_EQ(f.route_len, 8);
    CHECK(same_bytes((const uint8_t *)f.route, f.route_len,
                     (const uint8_t *)"svc.echo", 8));
    CHECK(same_bytes(f.payload, f.payload_len, (const uint8_t *)"hello", 5));
    /* Zero-copy: the frame points into the input. */
    CHECK(f.route == (const char *)s.data + PH_FRAME_HEADER_LEN);
    CHECK(f.payload == s.data + PH_FRAME_HEADER_LEN + 8);
    CHECK(ph_decoder_idle(&d));
    CHECK_EQ(ph_decoder_next(&d, s.data + used, 0, &used, &f), PH_EAGAIN);
    CHECK_EQ(used, 0);
    ph_decoder_free(&d);
    bytes_free(&s);
}

static void test_decode_many(void)
{
    bytes s = {0};
    decoded r;
    ph_frame f;

    mixed_stream(&s);
    memset(&r, 0, sizeof r);
    decode_chunks(s.data, s.len, PH_MAX_FRAME_DEFAULT, NULL, 0, &r);
    CHECK(!r.broken);
    CHECK_EQ(r.err, PH_EAGAIN);
    CHECK_EQ(r.count, 7);
    CHECK(r.idle);
    CHECK(same_bytes(r.frames.data, r.frames.len, s.data, s.len));
    CHECK(frame_at(&r.frames, 4, &f));
    CHECK_EQ(f.kind, PH_REQUEST);
    CHECK_EQ(f.id, UINT32_MAX);
    CHECK_EQ(f.route_len, PH_ROUTE_MAX);
    CHECK_EQ(f.payload_len, 40);
    CHECK(frame_at(&r.frames, 1, &f));
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK_EQ(f.route_len, 0); /* empty routes are fine in REPLY */
    CHECK(frame_at(&r.frames, 3, &f));
    CHECK_EQ(f.kind, PH_ERROR);
    CHECK_EQ(f.route_len, 0); /* and in ERROR */
    CHECK_EQ(f.status, PH_ENOROUTE);
    decoded_free(&r);
    bytes_free(&s);
}

static void test_decode_every_split(void)
{
    /* The short stream is also split three ways at every pair of points. */
    static const struct {
        void (*make)(bytes *s);
        int pairs;
        size_t count;
    } streams[] = {{mixed_stream, 0, 7}, {short_stream, 1, 4}};
    size_t i;

    for (i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        bytes s = {0};
        decoded whole;

        streams[i].make(&s);
        CHECK(split_invariant(s.data, s.len, PH_MAX_FRAME_DEFAULT,
                              streams[i].pairs, &whole));
        CHECK_EQ(whole.count, streams[i].count);
        CHECK(same_bytes(whole.frames.data, whole.frames.len, s.data, s.len));
        decoded_free(&whole);
        bytes_free(&s);
    }
}

/* A stream cut short keeps what it has and waits, whatever the cut. */
static void test_decode_partial_tail(void)
{
    bytes s = {0};
    size_t cut, first;
    decoded whole;

    short_stream(&s);
    first = 16 + 3 + 4; /* the first frame's size */
    for (cut = 0; cut < s.len; cut++) {
        CHECK(split_invariant(s.data, cut, PH_MAX_FRAME_DEFAULT, 0, &whole));
        CHECK_EQ(whole.err, PH_EAGAIN);
        CHECK_EQ(whole.count, cut < first ? 0 : whole.count);
        CHECK(same_bytes(whole.frames.data, whole.frames.len, s.data,
                         whole.frames.len));
        /* Idle exactly when the cut falls between frames. */
        CHECK_EQ(whole.idle, whole.frames.len == cut);
        decoded_free(&whole);
    }
    bytes_free(&s);
}

/* A frame split over calls is copied; the next one, whole in the input, is
 * not. The copy stays readable until the next call. */
static void test_decode_zero_copy(void)
{
    bytes s = {0};
    ph_decoder d;
    ph_frame f;
    size_t used = 0, first;

    put_str_frame(&s, PH_REQUEST, 1, 0, "first", "split over two calls");
    first = s.len;
    put_str_frame(&s, PH_REPLY, 1, 0, "", "whole");
    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, PH_MAX_FRAME_DEFAULT);
    CHECK_EQ(ph_decoder_next(&d, s.data, 10, &used, &f), PH_EAGAIN);
    CHECK_EQ(used, 10);
    CHECK(!ph_decoder_idle(&d));
    CHECK_EQ(ph_decoder_next(&d, s.data + 10, s.len - 10, &used, &f), PH_OK);
    CHECK_EQ(used, first - 10);
    CHECK(ph_decoder_idle(&d));
    CHECK(same_bytes(f.payload, f.payload_len,
                     (const uint8_t *)"split over two calls", 20));
    CHECK(f.payload < s.data || f.payload >= s.data + s.len);
    CHECK_EQ(ph_decoder_next(&d, s.data + first, s.len - first, &used, &f),
             PH_OK);
    CHECK(f.payload == s.data + first + PH_FRAME_HEADER_LEN);
    CHECK(same_bytes(f.payload, f.payload_len, (const uint8_t *)"whole", 5));
    ph_decoder_free(&d);
    bytes_free(&s);
}

static void test_decode_exact_max_frame(void)
{
    uint32_t max = PH_MAX_FRAME_MIN;
    uint8_t body[PH_MAX_FRAME_MIN];
    bytes s = {0};
    decoded whole;

    fill(body, sizeof body, 11);
    /* Three frames of exactly max bytes: one per route shape. */
    put_frame(&s, PH_REQUEST, 1, 0, "x", 1, body,
              max - PH_FRAME_HEADER_LEN - 1);
    put_frame(&s, PH_REPLY, 1, 0, NULL, 0, body, max - PH_FRAME_HEADER_LEN);
    {
        char route[PH_ROUTE_MAX];

        memset(route, 'r', sizeof route);
        put_frame(&s, PH_EVENT, 0, 0, route, sizeof route, body,
                  max - PH_FRAME_HEADER_LEN - sizeof route);
    }
    CHECK(split_invariant(s.data, s.len, max, 0, &whole));
    CHECK_EQ(whole.err, PH_EAGAIN);
    CHECK_EQ(whole.count, 3);
    CHECK(same_bytes(whole.frames.data, whole.frames.len, s.data, s.len));
    decoded_free(&whole);

    /* One byte more is TOO_LARGE. */
    put_frame(&s, PH_REPLY, 2, 0, NULL, 0, body, max - PH_FRAME_HEADER_LEN + 1);
    CHECK(split_invariant(s.data, s.len, max, 0, &whole));
    CHECK_EQ(whole.err, PH_ETOOBIG);
    CHECK_EQ(whole.count, 3);
    decoded_free(&whole);
    bytes_free(&s);
}

/* Payloads up to 1 MiB, whole and in pieces of several sizes. */
static void test_decode_megabyte(void)
{
    static const size_t chunk_sets[][3] = {
        {65536, 0, 0}, {4093, 0, 0}, {1, 0, 0}, {15, 2, 1048576},
        {16, 0, 0},    {17, 0, 0},   {1048575, 0, 0},
    };
    size_t mib = 1024 * 1024, i;
    uint8_t *body = malloc(mib);
    bytes s = {0};
    decoded whole, r;

    CHECK(body != NULL);
    fill(body, mib, 5);
    /* Exactly the default limit, then a payload of a whole MiB. */
    put_frame(&s, PH_REQUEST, 1, 0, "bulk", 4, body,
              PH_MAX_FRAME_DEFAULT - PH_FRAME_HEADER_LEN - 4);
    put_frame(&s, PH_REPLY, 1, 0, NULL, 0, body, mib);
    put_str_frame(&s, PH_EVENT, 0, 0, "after", "x");

    memset(&whole, 0, sizeof whole);
    memset(&r, 0, sizeof r);
    decode_chunks(s.data, s.len, 2 * PH_MAX_FRAME_DEFAULT, NULL, 0, &whole);
    CHECK(!whole.broken);
    CHECK_EQ(whole.count, 3);
    CHECK(same_bytes(whole.frames.data, whole.frames.len, s.data, s.len));
    for (i = 0; i < sizeof chunk_sets / sizeof chunk_sets[0]; i++) {
        size_t n = chunk_sets[i][1] ? 3 : 1;

        decode_chunks(s.data, s.len, 2 * PH_MAX_FRAME_DEFAULT, chunk_sets[i],
                      n, &r);
        CHECK(same_result(&whole, &r, "megabyte chunks"));
        decoded_free(&r);
    }
    decoded_free(&whole);

    /* Under the default limit the MiB payload no longer fits. */
    decode_chunks(s.data, s.len, PH_MAX_FRAME_DEFAULT, NULL, 0, &r);
    CHECK(!r.broken);
    CHECK_EQ(r.count, 1);
    CHECK_EQ(r.err, PH_ETOOBIG);
    decoded_free(&r);
    bytes_free(&s);
    free(body);
}

/* ---- decoder: broken streams --------------------------------------------- */

typedef struct bad_case {
    const char *name;
    ph_err err;
    uint32_t frame_len;
    uint8_t version, kind, route_len, flags;
    const char *tail; /* the bytes after the header */
    size_t tail_len;
} bad_case;

#define TAIL(s) s, sizeof(s) - 1

static const bad_case bad_cases[] = {
    {"frame_len 0", PH_EBADFRAME, 0, 1, PH_REQUEST, 1, 0, TAIL("a")},
    {"frame_len 1", PH_EBADFRAME, 1, 1, PH_REPLY, 0, 0, TAIL("")},
    {"frame_len 15", PH_EBADFRAME, 15, 1, PH_REPLY, 0, 0, TAIL("")},
    {"frame_len max+1", PH_ETOOBIG, 1025, 1, PH_REPLY, 0, 0, TAIL("abc")},
    {"frame_len 2^31", PH_ETOOBIG, 0x80000000u, 1, PH_REPLY, 0, 0, TAIL("")},
    {"frame_len 2^32-1", PH_ETOOBIG, 0xFFFFFFFFu, 1, PH_REQUEST, 1, 0,
     TAIL("a")},
    {"too large and a bad header", PH_ETOOBIG, 5000, 9, 9, 9, 9, TAIL("")},
    {"version 0", PH_EBADFRAME, 17, 0, PH_REQUEST, 1, 0, TAIL("a")},
    {"version 2", PH_EBADFRAME, 17, 2, PH_REQUEST, 1, 0, TAIL("a")},
    {"version 255", PH_EBADFRAME, 16, 255, PH_REPLY, 0, 0, TAIL("")},
    {"kind 0", PH_EBADFRAME, 17, 1, 0, 1, 0, TAIL("a")},
    {"kind 5", PH_EBADFRAME, 17, 1, 5, 1, 0, TAIL("a")},
    {"kind 255", PH_EBADFRAME, 16, 1, 255, 0, 0, TAIL("")},
    {"flags 0x01", PH_EBADFRAME, 17, 1, PH_REQUEST, 1, 1, TAIL("a")},
    {"flags 0x80", PH_EBADFRAME, 16, 1, PH_REPLY, 0, 0x80, TAIL("")},
    {"route_len past end", PH_EBADFRAME, 18, 1, PH_REQUEST, 3, 0, TAIL("ab")},
    {"route_len in header-only", PH_EBADFRAME, 16, 1, PH_REPLY, 1, 0,
     TAIL("")},
    {"route_len 255 past end", PH_EBADFRAME, 100, 1, PH_ERROR, 255, 0,
     TAIL("0123456789012345678901234567890123456789012345678901234567890123"
          "456789012345678901234567890123")},
    {"route with space", PH_EBADFRAME, 19, 1, PH_REQUEST, 3, 0, TAIL("a b")},
    {"route with NUL", PH_EBADFRAME, 18, 1, PH_REQUEST, 2, 0, TAIL("a\0")},
    {"route with *", PH_EBADFRAME, 18, 1, PH_EVENT, 2, 0, TAIL("*a")},
    {"route with :", PH_EBADFRAME, 18, 1, PH_REPLY, 2, 0, TAIL("a:")},
    {"route with 0x7f", PH_EBADFRAME, 17, 1, PH_ERROR, 1, 0, TAIL("\x7f")},
    {"route with 0x80", PH_EBADFRAME, 17, 1, PH_REQUEST, 1, 0, TAIL("\x80")},
    {"route with 0xff", PH_EBADFRAME, 17, 1, PH_REQUEST, 1, 0, TAIL("\xff")},
    {"route bad in last byte", PH_EBADFRAME, 21, 1, PH_REQUEST, 3, 0,
     TAIL("ab!xy")},
    {"REQUEST without route", PH_EBADFRAME, 20, 1, PH_REQUEST, 0, 0,
     TAIL("body")},
    {"EVENT without route", PH_EBADFRAME, 16, 1, PH_EVENT, 0, 0, TAIL("")},
};

/* Each broken frame, first in the stream or after good ones, with a good
 * frame after it: the good ones before it come out, then the error, the same
 * for every split. */
static void test_decode_errors(void)
{
    size_t i;
    int lead;

    for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];

        for (lead = 0; lead < 2; lead++) {
            bytes s = {0};
            size_t good = 0;
            decoded whole;
            int ok;

            if (lead) {
                put_str_frame(&s, PH_REQUEST, 1, 0, "svc.a", "p1");
                put_str_frame(&s, PH_REPLY, 1, 0, "", "");
                good = s.len;
            }
            put_header(&s, c->frame_len, c->version, c->kind, c->route_len,
                       c->flags, 5, 0);
            bytes_put(&s, c->tail, c->tail_len);
            put_str_frame(&s, PH_REPLY, 1, 0, "", "after");

            ok = split_invariant(s.data, s.len, 1024, 0, &whole);
            if (!ok || whole.err != c->err || whole.count != (lead ? 2u : 0u) ||
                !same_bytes(whole.frames.data, whole.frames.len, s.data, good))
                fprintf(stderr, "  case \"%s\" (lead %d): %s, %zu frames\n",
                        c->name, lead, ph_strerror(whole.err), whole.count);
            CHECK(ok);
            CHECK_EQ(whole.err, c->err);
            CHECK_EQ(whole.count, lead ? 2 : 0);
            CHECK(same_bytes(whole.frames.data, whole.frames.len, s.data,
                             good));
            decoded_free(&whole);
            bytes_free(&s);
        }
    }
}

/* A frame_len over the limit is refused as soon as its four bytes are in,
 * without touching the allocator: every allocation fails here. */
static void test_too_large_needs_four_bytes_and_no_memory(void)
{
    static const uint32_t lens[] = {1025, 4096, 0x7FFFFFFFu, 0xFFFFFFFFu};
    /* The sizes of the calls (SIZE_MAX: all the rest): every call but the
     * last waits for more, the last refuses. */
    static const struct {
        const char *how;
        size_t sizes[4];
        size_t n;
    } ways[] = {
        {"four bytes in one call", {4}, 1},
        {"a byte at a time", {1, 1, 1, 1}, 4},
        {"two bytes, then the rest of the header and some body",
         {2, SIZE_MAX}, 2},
        {"the whole header and more in one call", {SIZE_MAX}, 1},
    };
    size_t i, w, k, pos, used;
    ph_decoder d;
    ph_frame f;

    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        bytes s = {0};

        put_header(&s, lens[i], 1, PH_REPLY, 0, 0, 1, 0);
        bytes_put(&s, "more bytes", 10);
        ph_alloc_fail_after(0);
        for (w = 0; w < sizeof ways / sizeof ways[0]; w++) {
            memset(&d, 0, sizeof d);
            ph_decoder_init(&d, 1024);
            for (k = pos = 0; k < ways[w].n; k++) {
                size_t n = ways[w].sizes[k] == SIZE_MAX ? s.len - pos
                                                        : ways[w].sizes[k];
                int last = k + 1 == ways[w].n;

                if (!next_piece(&d, &s, &pos, n, last ? PH_ETOOBIG : PH_EAGAIN,
                                &f)) {
                    PH_FAIL_HERE("frame_len %u, %s: call %zu failed",
                                 (unsigned)lens[i], ways[w].how, k + 1);
                    return;
                }
            }
            CHECK(d.why[0] != 0);
            CHECK(d.assembly.data == NULL);
            ph_decoder_free(&d);
        }
        ph_alloc_fail_after(-1);
        bytes_free(&s);
    }

    /* The injection is live: an in-limit split frame does need memory. */
    {
        bytes s = {0};

        put_header(&s, 100, 1, PH_REPLY, 0, 0, 1, 0);
        bytes_put(&s, "body", 4);
        ph_decoder_init(&d, 1024);
        ph_alloc_fail_after(0);
        CHECK_EQ(ph_decoder_next(&d, s.data, s.len, &used, &f), PH_ENOMEM);
        ph_alloc_fail_after(-1);
        ph_decoder_free(&d);
        bytes_free(&s);
    }
}

static void test_errors_sticky(void)
{
    bytes s = {0}, good = {0};
    ph_decoder d;
    ph_frame f;
    size_t used;
    char why[sizeof d.why];

    put_header(&s, 17, 1, 0, 1, 0, 1, 0); /* kind 0 */
    bytes_put(&s, "a", 1);
    put_str_frame(&good, PH_REPLY, 1, 0, "", "fine");
    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, 1024);
    CHECK_EQ(ph_decoder_next(&d, s.data, s.len, &used, &f), PH_EBADFRAME);
    CHECK(d.why[0] != 0);
    memcpy(why, d.why, sizeof why);
    CHECK_EQ(ph_decoder_next(&d, good.data, good.len, &used, &f), PH_EBADFRAME);
    CHECK_EQ(ph_decoder_next(&d, good.data, 0, &used, &f), PH_EBADFRAME);
    CHECK_EQ(ph_decoder_next(&d, good.data, 3, &used, &f), PH_EBADFRAME);
    CHECK_STR(d.why, why);
    ph_decoder_free(&d);
    bytes_free(&s);
    bytes_free(&good);
}

/* ---- decoder: memory ----------------------------------------------------- */

/* Out of memory while assembling: the call says how far it got, and feeding
 * the rest once memory is back gives the frames a clean decode gives. */
static void test_enomem_then_retry(void)
{
    static const size_t chunks[] = {700, 1, 3, 999};
    uint8_t body[5000];
    bytes s = {0};
    decoded clean, r;
    long n;
    int saw_nomem = 0;

    fill(body, sizeof body, 9);
    put_str_frame(&s, PH_REQUEST, 1, 0, "first", "small");
    put_frame(&s, PH_REPLY, 1, 0, NULL, 0, body, sizeof body);
    put_frame(&s, PH_EVENT, 0, 0, "t", 1, body, 300);
    put_str_frame(&s, PH_REPLY, 2, 0, "", "");

    memset(&clean, 0, sizeof clean);
    memset(&r, 0, sizeof r);
    decode_chunks(s.data, s.len, 8192, chunks, 4, &clean);
    CHECK(!clean.broken);
    CHECK_EQ(clean.count, 4);
    for (n = 0; n < 12; n++) {
        r.retry_nomem = 1;
        ph_alloc_fail_after(n);
        decode_chunks(s.data, s.len, 8192, chunks, 4, &r);
        ph_alloc_fail_after(-1);
        CHECK(same_result(&clean, &r, "after PH_ENOMEM"));
        saw_nomem += r.nomem;
        decoded_free(&r);
    }
    CHECK(saw_nomem >= 3); /* some growths, not only the first, did fail */
    decoded_free(&clean);
    bytes_free(&s);
}

/* The two places an assembly can run out of memory, step by step. */
static void test_enomem_steps(void)
{
    uint8_t body[3000];
    bytes s = {0};
    ph_decoder d;
    ph_frame f;
    size_t pos = 0;

    fill(body, sizeof body, 4);
    put_frame(&s, PH_REQUEST, 3, 0, "svc", 3, body, sizeof body);
    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, 4096);

    /* The header is gathered without memory; storing it needs some. */
    ph_alloc_fail_after(0);
    CHECK(next_piece(&d, &s, &pos, 10, PH_EAGAIN, &f));
    CHECK(next_piece(&d, &s, &pos, 10, PH_ENOMEM, &f));
    /* Still no memory: still PH_ENOMEM, and nothing lost. */
    CHECK(next_piece(&d, &s, &pos, 10, PH_ENOMEM, &f));

    /* Memory for the header's buffer, none to grow it for the body. */
    ph_alloc_fail_after(1);
    CHECK(next_piece(&d, &s, &pos, 1000, PH_ENOMEM, &f));
    CHECK(next_piece(&d, &s, &pos, 1000, PH_ENOMEM, &f));

    ph_alloc_fail_after(-1);
    CHECK(next_piece(&d, &s, &pos, 1000, PH_EAGAIN, &f));
    CHECK(next_piece(&d, &s, &pos, s.len - pos, PH_OK, &f));
    CHECK_EQ(pos, s.len);
    CHECK_EQ(f.kind, PH_REQUEST);
    CHECK_EQ(f.id, 3);
    CHECK(same_bytes((const uint8_t *)f.route, f.route_len,
                     (const uint8_t *)"svc", 3));
    CHECK(same_bytes(f.payload, f.payload_len, body, sizeof body));
    ph_decoder_free(&d);
    bytes_free(&s);
}

/* A large split frame is handed out from the assembly buffer, which is let go
 * by the next call rather than pinned to the connection. */
static void test_assembly_released(void)
{
    size_t big = 300 * 1024;
    uint8_t *body = malloc(big);
    bytes s = {0};
    ph_decoder d;
    ph_frame f;
    size_t used = 0, first;

    CHECK(body != NULL);
    fill(body, big, 2);
    put_frame(&s, PH_REPLY, 1, 0, NULL, 0, body, big);
    first = s.len;
    put_str_frame(&s, PH_REQUEST, 2, 0, "small", "split too");
    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, PH_MAX_FRAME_DEFAULT);
    CHECK_EQ(ph_decoder_next(&d, s.data, 1000, &used, &f), PH_EAGAIN);
    CHECK_EQ(ph_decoder_next(&d, s.data + 1000, first - 1000, &used, &f),
             PH_OK);
    CHECK(d.assembly.cap >= big);
    /* Valid until the next call: read every byte (ASan watches). */
    CHECK(same_bytes(f.payload, f.payload_len, body, big));

    CHECK_EQ(ph_decoder_next(&d, s.data + first, 5, &used, &f), PH_EAGAIN);
    CHECK(d.assembly.cap <= 64 * 1024);
    CHECK_EQ(ph_decoder_next(&d, s.data + first + 5, s.len - first - 5, &used,
                             &f),
             PH_OK);
    CHECK(same_bytes(f.payload, f.payload_len, (const uint8_t *)"split too",
                     9));

    /* Freeing mid-frame releases the assembly too (LeakSanitizer checks). */
    CHECK_EQ(ph_decoder_next(&d, s.data, 5000, &used, &f), PH_EAGAIN);
    ph_decoder_free(&d);
    CHECK(d.assembly.data == NULL);
    CHECK(ph_decoder_idle(&d));
    ph_decoder_free(&d); /* twice is harmless */
    bytes_free(&s);
    free(body);
}

/* A large frame read partly through ph_decoder_next and the rest straight
 * into ph_decoder_tail gives the same frame, and the tail never reaches into
 * the next frame. */
static void test_tail_reads(void)
{
    size_t big = 200 * 1024, first, off, room, step;
    uint8_t *body = malloc(big), *dst;
    bytes s = {0};
    ph_decoder d;
    ph_frame f;
    size_t used = 0;
    ph_err err;

    CHECK(body != NULL);
    fill(body, big, 7);
    put_frame(&s, PH_REPLY, 1, 0, NULL, 0, body, big);
    first = s.len;
    put_str_frame(&s, PH_REQUEST, 2, 0, "next", "after");
    ph_decoder_init(&d, PH_MAX_FRAME_DEFAULT);
    CHECK_EQ(ph_decoder_tail(&d, &dst), 0); /* nothing started */
    CHECK_EQ(ph_decoder_next(&d, s.data, 10, &used, &f), PH_EAGAIN);
    CHECK_EQ(ph_decoder_tail(&d, &dst), 0); /* header not complete */
    CHECK_EQ(ph_decoder_next(&d, s.data + 10, 990, &used, &f), PH_EAGAIN);
    off = 1000;
    /* Uneven steps through the tail, as reads would come. */
    for (step = 1; ; step = step * 3 + 1) {
        room = ph_decoder_tail(&d, &dst);
        CHECK_EQ(room, first - off);
        if (step > room)
            step = room;
        memcpy(dst, s.data + off, step);
        off += step;
        err = ph_decoder_commit(&d, step, &f);
        if (err == PH_OK)
            break;
        CHECK_EQ(err, PH_EAGAIN);
    }
    CHECK_EQ(off, first);
    CHECK_EQ(f.kind, PH_REPLY);
    CHECK(same_bytes(f.payload, f.payload_len, body, big));
    CHECK_EQ(ph_decoder_tail(&d, &dst), 0);
    /* Committing more than was offered is refused. */
    CHECK_EQ(ph_decoder_commit(&d, 1, &f), PH_EINVAL);
    CHECK_EQ(ph_decoder_next(&d, s.data + first, s.len - first, &used, &f), PH_OK);
    CHECK_EQ(f.id, 2);
    ph_decoder_free(&d);
    bytes_free(&s);
    free(body);
}

int main(void)
{
    PH_RUN_ALLOC_RESET(test_u32le_helpers);
    PH_RUN_ALLOC_RESET(test_encode_layout);
    PH_RUN_ALLOC_RESET(test_protocol_example);
    PH_RUN_ALLOC_RESET(test_encode_round_trip_each_kind);
    PH_RUN_ALLOC_RESET(test_route_charset);
    PH_RUN_ALLOC_RESET(test_encode_invalid);
    PH_RUN_ALLOC_RESET(test_encode_cap);
    PH_RUN_ALLOC_RESET(test_append);
    PH_RUN_ALLOC_RESET(test_append_invalid_leaves_buf_unchanged);
    PH_RUN_ALLOC_RESET(test_append_error);
    PH_RUN_ALLOC_RESET(test_begin_end);
    PH_RUN_ALLOC_RESET(test_decode_one_whole);
    PH_RUN_ALLOC_RESET(test_decode_many);
    PH_RUN_ALLOC_RESET(test_decode_every_split);
    PH_RUN_ALLOC_RESET(test_decode_partial_tail);
    PH_RUN_ALLOC_RESET(test_decode_zero_copy);
    PH_RUN_ALLOC_RESET(test_decode_exact_max_frame);
    PH_RUN_ALLOC_RESET(test_decode_megabyte);
    PH_RUN_ALLOC_RESET(test_decode_errors);
    PH_RUN_ALLOC_RESET(test_too_large_needs_four_bytes_and_no_memory);
    PH_RUN_ALLOC_RESET(test_errors_sticky);
    PH_RUN_ALLOC_RESET(test_enomem_then_retry);
    PH_RUN_ALLOC_RESET(test_enomem_steps);
    PH_RUN_ALLOC_RESET(test_assembly_released);
    PH_RUN_ALLOC_RESET(test_tail_reads);
    return ph_test_summary();
}
