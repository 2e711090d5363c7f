/* libFuzzer target for the frame codec (common/frame.h).
 *
 * Input layout, so the fuzzer picks the split as well as the bytes:
 *   byte 0      max_frame = 16 * (byte + 1), 16..4096, so TOO_LARGE is near;
 *   byte 1      low nibble: k, the number of chunk-size bytes that follow;
 *               high nibble: 0, or v to fail every allocation after v - 1
 *               successful ones while the chunked decoder runs;
 *   k bytes     chunk sizes, used in turn and cycled: b < 0x80 is b bytes
 *               (0 is a call with no bytes), b >= 0x80 is (b - 0x7f) * 32;
 *               with k = 0 the stream is fed one byte at a time;
 *   the rest    the byte stream.
 *
 * The stream is decoded whole, chunked and a byte at a time; all three must
 * give the same frames and the same final error. Every frame decoded whole
 * must point into the input, and must encode (ph_frame_encode,
 * ph_frame_append, ph_frame_begin/end) back to exactly the bytes it came
 * from, which in turn decode to the same frame. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/unit_util.h"
#include "frame.h"
#include "platform.h"

#define ASSERT(cond)                                                          \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: ASSERT(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                   \
            abort();                                                          \
        }                                                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Log a decoded frame in wire form, in bytes on the C heap (unit_util.h) so
 * that injected allocation failures only ever hit the codec. Written field
 * by field here, not with the encoder under test. */
static void log_frame(bytes *l, const ph_frame *f)
{
    uint8_t h[PH_FRAME_HEADER_LEN];
    uint32_t frame_len = (uint32_t)ph_frame_size(f->route_len, f->payload_len);
    uint32_t fields[3] = {frame_len, f->id, f->status};
    int i;

    for (i = 0; i < 3; i++) {
        size_t at = i == 0 ? 0 : 4 + 4 * (size_t)i;

        h[at] = (uint8_t)fields[i];
        h[at + 1] = (uint8_t)(fields[i] >> 8);
        h[at + 2] = (uint8_t)(fields[i] >> 16);
        h[at + 3] = (uint8_t)(fields[i] >> 24);
    }
    h[4] = PH_PROTOCOL_VERSION;
    h[5] = f->kind;
    h[6] = f->route_len;
    h[7] = 0;
    bytes_put(l, h, sizeof h);
    bytes_put(l, f->route, f->route_len);
    bytes_put(l, f->payload, f->payload_len);
}

/* What one decoder made of the stream. */
typedef struct result {
    bytes frames;
    size_t count;
    ph_err err;   /* PH_EAGAIN when the stream ran out, else the error */
    char why[sizeof(((ph_decoder *)0)->why)];
    int idle;     /* ph_decoder_idle at the end, when err is PH_EAGAIN */
} result;

static int same_frame(const ph_frame *a, const ph_frame *b)
{
    return a->kind == b->kind && a->id == b->id && a->status == b->status &&
           a->route_len == b->route_len && a->payload_len == b->payload_len &&
           (a->route_len == 0 ||
            memcmp(a->route, b->route, a->route_len) == 0) &&
           (a->payload_len == 0 ||
            memcmp(a->payload, b->payload, a->payload_len) == 0);
}

/* What the decoder promises of every frame it returns. */
static void check_frame(const ph_frame *f, uint32_t max_frame)
{
    ASSERT(f->kind >= PH_REQUEST && f->kind <= PH_ERROR);
    ASSERT(ph_route_valid(f->route, f->route_len));
    ASSERT(f->route_len > 0 || f->kind == PH_REPLY || f->kind == PH_ERROR);
    ASSERT(ph_frame_size(f->route_len, f->payload_len) <= max_frame);
}

/* The frame came from wire[0..n): every encoder must give those bytes back,
 * and they must decode to the same frame again. */
static void check_reencode(const ph_frame *f, const uint8_t *wire, size_t n,
                           uint32_t max_frame)
{
    uint8_t *out = malloc(n);
    size_t out_len = 0, start = 0, used = 0;
    ph_buf b = {0};
    ph_decoder d;
    ph_frame g;

    ASSERT(out != NULL);
    ASSERT(ph_frame_encode(f, out, n - 1, &out_len) == PH_ETOOBIG);
    ASSERT(ph_frame_encode(f, out, n, &out_len) == PH_OK);
    ASSERT(out_len == n && memcmp(out, wire, n) == 0);

    ASSERT(ph_buf_append(&b, "x", 1) == PH_OK);
    ASSERT(ph_frame_append(&b, f) == PH_OK);
    ASSERT(b.len == n + 1 && memcmp(b.data + 1, wire, n) == 0);
    b.len = 1;
    ASSERT(ph_frame_begin(&b, f->kind, f->id, f->status, f->route,
                          f->route_len, &start) == PH_OK);
    ASSERT(start == 1);
    ASSERT(ph_buf_append(&b, f->payload, f->payload_len) == PH_OK);
    ASSERT(ph_frame_end(&b, start, max_frame) == PH_OK);
    ASSERT(b.len == n + 1 && memcmp(b.data + 1, wire, n) == 0);
    if (n > PH_FRAME_HEADER_LEN) {
        /* One byte under its size: rolled back, the "x" stays. */
        ASSERT(ph_frame_end(&b, start, (uint32_t)n - 1) == PH_ETOOBIG);
        ASSERT(b.len == 1 && b.data[0] == 'x');
    }
    ph_buf_free(&b);

    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, max_frame);
    ASSERT(ph_decoder_next(&d, out, n, &used, &g) == PH_OK);
    ASSERT(used == n);
    ASSERT(same_frame(f, &g));
    ph_decoder_free(&d);
    free(out);
}

/* A broken stream stays broken, with the same reason. */
static void check_sticky(ph_decoder *d, ph_err err, const uint8_t *rest,
                         size_t n)
{
    static const uint8_t good[] = {17, 0, 0, 0, 1, PH_REPLY, 1, 0,
                                   0,  0, 0, 0, 0, 0,        0, 0, 'r'};
    char why[sizeof d->why];
    size_t used;
    ph_frame f;

    ASSERT(memchr(d->why, 0, sizeof d->why) != NULL && d->why[0] != 0);
    memcpy(why, d->why, sizeof why);
    ASSERT(ph_decoder_next(d, rest, n, &used, &f) == err);
    ASSERT(ph_decoder_next(d, good, sizeof good, &used, &f) == err);
    ASSERT(ph_decoder_next(d, good, 0, &used, &f) == err);
    ASSERT(strcmp(d->why, why) == 0);
}

/* The decode whole: every call gets all the rest of the stream. */
static void decode_whole(const uint8_t *s, size_t len, uint32_t max_frame,
                         result *r)
{
    ph_decoder d;
    size_t pos = 0;

    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, max_frame);
    for (;;) {
        size_t used = SIZE_MAX;
        ph_frame f;
        ph_err err = ph_decoder_next(&d, s + pos, len - pos, &used, &f);

        if (err == PH_OK) {
            size_t n = ph_frame_size(f.route_len, f.payload_len);

            ASSERT(used == n && used <= len - pos);
            /* Whole in the input, so not copied. */
            ASSERT(f.route == (const char *)s + pos + PH_FRAME_HEADER_LEN);
            ASSERT(f.payload == s + pos + PH_FRAME_HEADER_LEN + f.route_len);
            check_frame(&f, max_frame);
            check_reencode(&f, s + pos, n, max_frame);
            log_frame(&r->frames, &f);
            r->count++;
            pos += used;
            continue;
        }
        r->err = err;
        if (err == PH_EAGAIN) {
            ASSERT(used == len - pos);
            r->idle = ph_decoder_idle(&d);
            break;
        }
        ASSERT(err == PH_EBADFRAME || err == PH_ETOOBIG);
        memcpy(r->why, d.why, sizeof r->why);
        check_sticky(&d, err, s + pos, len - pos);
        break;
    }
    ph_decoder_free(&d);
}

/* The decode in pieces. With fail_at >= 0 allocations fail after fail_at
 * successful ones until the first PH_ENOMEM, which is then retried. */
static void decode_chunked(const uint8_t *s, size_t len, uint32_t max_frame,
                           const uint8_t *sizes, size_t nsizes, long fail_at,
                           result *r)
{
    ph_decoder d;
    size_t pos = 0, next = 0, i;
    int failing = fail_at >= 0, any = 0;

    for (i = 0; i < nsizes; i++)
        any |= sizes[i] != 0;
    memset(&d, 0, sizeof d);
    ph_decoder_init(&d, max_frame);
    ph_alloc_fail_after(fail_at);
    r->err = PH_EAGAIN;
    do {
        size_t n = 1;
        const uint8_t *p = s + pos;

        if (any) {
            uint8_t b = sizes[next++ % nsizes];
            n = b < 0x80 ? b : ((size_t)b - 0x7f) * 32;
        }
        if (n > len - pos)
            n = len - pos;
        pos += n;
        for (;;) {
            int was_idle = ph_decoder_idle(&d);
            size_t used = SIZE_MAX;
            ph_frame f;
            ph_err err = ph_decoder_next(&d, p, n, &used, &f);

            if (err == PH_OK) {
                size_t size = ph_frame_size(f.route_len, f.payload_len);

                ASSERT(used <= n && used <= size);
                ASSERT(!was_idle || used == size);
                if (was_idle)
                    ASSERT(f.payload == p + PH_FRAME_HEADER_LEN + f.route_len);
                check_frame(&f, max_frame);
                log_frame(&r->frames, &f);
                r->count++;
                p += used;
                n -= used;
                continue;
            }
            if (err == PH_EAGAIN) {
                ASSERT(used == n);
                break;
            }
            if (err == PH_ENOMEM) {
                /* Only the injection can starve a frame of at most 4 KiB. */
                ASSERT(failing && used <= n);
                failing = 0;
                ph_alloc_fail_after(-1);
                p += used;
                n -= used;
                continue;
            }
            ASSERT(err == PH_EBADFRAME || err == PH_ETOOBIG);
            r->err = err;
            memcpy(r->why, d.why, sizeof r->why);
            check_sticky(&d, err, p, n);
            goto done;
        }
    } while (pos < len);
    r->idle = ph_decoder_idle(&d);
done:
    ph_alloc_fail_after(-1);
    ph_decoder_free(&d);
}

static void check_same(const result *a, const result *b)
{
    ASSERT(a->err == b->err);
    ASSERT(a->count == b->count);
    ASSERT(a->frames.len == b->frames.len);
    ASSERT(a->frames.len == 0 ||
           memcmp(a->frames.data, b->frames.data, a->frames.len) == 0);
    if (a->err == PH_EAGAIN)
        ASSERT(a->idle == b->idle);
    else
        ASSERT(strcmp(a->why, b->why) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t one_byte = 1;
    uint32_t max_frame;
    size_t nsizes;
    long fail_at;
    const uint8_t *sizes, *s;
    size_t len;
    result whole, chunked, bytewise;

    if (size < 2)
        return 0;
    max_frame = 16u * ((uint32_t)data[0] + 1);
    nsizes = data[1] & 0x0f;
    fail_at = (long)(data[1] >> 4) - 1;
    if (size < 2 + nsizes)
        return 0;
    sizes = data + 2;
    s = data + 2 + nsizes;
    len = size - 2 - nsizes;

    memset(&whole, 0, sizeof whole);
    memset(&chunked, 0, sizeof chunked);
    memset(&bytewise, 0, sizeof bytewise);
    decode_whole(s, len, max_frame, &whole);
    /* A clean decode logs exactly the bytes it consumed. */
    ASSERT(whole.frames.len <= len &&
           (whole.frames.len == 0 ||
            memcmp(whole.frames.data, s, whole.frames.len) == 0));
    ASSERT(whole.err != PH_EAGAIN || whole.idle == (whole.frames.len == len));

    decode_chunked(s, len, max_frame, sizes, nsizes, fail_at, &chunked);
    check_same(&whole, &chunked);
    if (nsizes != 0) {
        decode_chunked(s, len, max_frame, &one_byte, 1, -1, &bytewise);
        check_same(&whole, &bytewise);
    }
    bytes_free(&whole.frames);
    bytes_free(&chunked.frames);
    bytes_free(&bytewise.frames);
    return 0;
}
