#include "frame.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Assembly buffers above this size are released once their frame is done, so
 * one large frame does not pin a megabyte to an otherwise idle connection. */
#define ASSEMBLY_KEEP_MAX (64u * 1024u)
#define ERROR_MSG_MAX 200u

int ph_route_valid(const char *route, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)route[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
              c == '/'))
            return 0;
    }
    return 1;
}

static int kind_valid(unsigned kind)
{
    return kind >= PH_REQUEST && kind <= PH_ERROR;
}

static int kind_needs_route(unsigned kind)
{
    return kind == PH_REQUEST || kind == PH_EVENT;
}

static int encodable(const ph_frame *f)
{
    return kind_valid(f->kind) && ph_route_valid(f->route, f->route_len) &&
           !(kind_needs_route(f->kind) && f->route_len == 0);
}

ph_err ph_frame_encode(const ph_frame *f, uint8_t *dst, size_t cap,
                       size_t *out_len)
{
    size_t total;

    if (!encodable(f))
        return PH_EINVAL;
    total = ph_frame_size(f->route_len, f->payload_len);
    if (total > UINT32_MAX || total > cap)
        return PH_ETOOBIG;
    ph_put_u32le(dst, (uint32_t)total);
    dst[4] = PH_PROTOCOL_VERSION;
    dst[5] = f->kind;
    dst[6] = f->route_len;
    dst[7] = f->flags;
    ph_put_u32le(dst + 8, f->id);
    ph_put_u32le(dst + 12, f->status);
    if (f->route_len)
        memcpy(dst + PH_FRAME_HEADER_LEN, f->route, f->route_len);
    if (f->payload_len)
        memcpy(dst + PH_FRAME_HEADER_LEN + f->route_len, f->payload,
               f->payload_len);
    *out_len = total;
    return PH_OK;
}

ph_err ph_frame_append(ph_buf *b, const ph_frame *f)
{
    size_t total = ph_frame_size(f->route_len, f->payload_len), n;
    ph_err err;

    /* Checked before growing b, so a refused frame leaves b as it was. */
    if (!encodable(f))
        return PH_EINVAL;
    if (total > UINT32_MAX)
        return PH_ETOOBIG;
    err = ph_buf_reserve(b, total);
    if (err != PH_OK)
        return err;
    err = ph_frame_encode(f, b->data + b->len, b->cap - b->len, &n);
    if (err == PH_OK)
        b->len += n;
    return err;
}

ph_err ph_frame_append_error(ph_buf *b, uint32_t id, ph_err code,
                             const char *msg)
{
    ph_frame f;
    size_t n = msg ? strlen(msg) : 0;

    /* Only protocol codes go on the wire; a local one means the server
     * failed. The message is cut on a UTF-8 character boundary. */
    if (code <= PH_OK || code > PH_PROTO_MAX)
        code = PH_EINTERNAL;
    n = ph_utf8_cut(msg, n, ERROR_MSG_MAX);
    memset(&f, 0, sizeof f);
    f.kind = PH_ERROR;
    f.id = id;
    f.status = (uint32_t)code;
    f.payload = (const uint8_t *)msg;
    f.payload_len = (uint32_t)n;
    return ph_frame_append(b, &f);
}

ph_err ph_frame_begin(ph_buf *b, uint8_t kind, uint32_t id, uint32_t status,
                      const char *route, uint8_t route_len, size_t *start)
{
    ph_frame f = {.kind = kind, .route_len = route_len, .id = id,
                  .status = status, .route = route};
    size_t at = b->len;
    ph_err err;

    err = ph_frame_append(b, &f);
    if (err == PH_OK)
        *start = at;
    return err;
}

ph_err ph_frame_end(ph_buf *b, size_t start, uint32_t max_frame)
{
    size_t total = b->len - start;

    if (total > max_frame || total > UINT32_MAX) {
        b->len = start;
        return PH_ETOOBIG;
    }
    ph_put_u32le(b->data + start, (uint32_t)total);
    return PH_OK;
}

void ph_decoder_init(ph_decoder *d, uint32_t max_frame)
{
    memset(d, 0, sizeof *d);
    d->max_frame = max_frame < PH_FRAME_HEADER_LEN ? PH_FRAME_HEADER_LEN
                                                   : max_frame;
}

void ph_decoder_free(ph_decoder *d)
{
    ph_buf_free(&d->assembly);
    d->have = 0;
}

static ph_err fail(ph_decoder *d, ph_err err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(d->why, sizeof d->why, fmt, ap);
    va_end(ap);
    d->failed = err;
    return err;
}

/* The first check, made as soon as four bytes are in: it is what keeps a
 * hostile length from reaching the allocator. */
static ph_err check_len(ph_decoder *d, uint32_t frame_len)
{
    if (frame_len < PH_FRAME_HEADER_LEN)
        return fail(d, PH_EBADFRAME, "frame_len %u is less than the %u-byte header",
                    (unsigned)frame_len, (unsigned)PH_FRAME_HEADER_LEN);
    if (frame_len > d->max_frame)
        return fail(d, PH_ETOOBIG, "frame_len %u exceeds the maximum of %u bytes",
                    (unsigned)frame_len, (unsigned)d->max_frame);
    return PH_OK;
}

static ph_err check_header(ph_decoder *d, const uint8_t *h)
{
    uint32_t frame_len = ph_get_u32le(h);

    if (h[4] != PH_PROTOCOL_VERSION)
        return fail(d, PH_EBADFRAME, "version %u is not %u", h[4],
                    PH_PROTOCOL_VERSION);
    if (!kind_valid(h[5]))
        return fail(d, PH_EBADFRAME, "kind %u is unknown", h[5]);
    if ((h[7] & ~d->flags_ok) != 0)
        return fail(d, PH_EBADFRAME, "flags 0x%02x must be 0 in version 1%s",
                    h[7], d->flags_ok ? " (but for the lane bit 0x01)" : "");
    if (PH_FRAME_HEADER_LEN + (uint32_t)h[6] > frame_len)
        return fail(d, PH_EBADFRAME, "route_len %u runs past frame_len %u", h[6],
                    (unsigned)frame_len);
    if (h[6] == 0 && kind_needs_route(h[5]))
        return fail(d, PH_EBADFRAME, "%s frame without a route",
                    h[5] == PH_REQUEST ? "REQUEST" : "EVENT");
    return PH_OK;
}

/* frame holds a whole frame whose header has passed check_len and
 * check_header. */
static ph_err finish(ph_decoder *d, const uint8_t *frame, ph_frame *out)
{
    uint32_t frame_len = ph_get_u32le(frame);
    size_t i;

    out->kind = frame[5];
    out->flags = frame[7];
    out->route_len = frame[6];
    out->id = ph_get_u32le(frame + 8);
    out->status = ph_get_u32le(frame + 12);
    out->route = (const char *)frame + PH_FRAME_HEADER_LEN;
    out->payload = frame + PH_FRAME_HEADER_LEN + out->route_len;
    out->payload_len = frame_len - PH_FRAME_HEADER_LEN - out->route_len;
    for (i = 0; i < out->route_len; i++) {
        if (!ph_route_valid(out->route + i, 1))
            return fail(d, PH_EBADFRAME,
                        "route byte %u is 0x%02x, not a letter, digit or ._-/",
                        (unsigned)i, (unsigned char)out->route[i]);
    }
    return PH_OK;
}

ph_err ph_decoder_next(ph_decoder *d, const uint8_t *data, size_t len,
                       size_t *used, ph_frame *out)
{
    size_t pos = 0;
    ph_err err;

    if (d->failed != PH_OK)
        return d->failed;
    /* The previous frame may still point into the assembly buffer until
     * this call, so this is the first safe point to shrink it. */
    if (d->have == 0 && d->assembly.cap > ASSEMBLY_KEEP_MAX)
        ph_buf_free(&d->assembly);

    /* Fast path: a whole frame at the front of the input, nothing held. */
    if (d->have == 0 && len >= PH_FRAME_HEADER_LEN) {
        uint32_t frame_len = ph_get_u32le(data);
        if ((err = check_len(d, frame_len)) != PH_OK)
            return err;
        if (len >= frame_len) {
            if ((err = check_header(d, data)) != PH_OK ||
                (err = finish(d, data, out)) != PH_OK)
                return err;
            *used = frame_len;
            return PH_OK;
        }
    }

    /* Slow path: gather the frame piece by piece into d->assembly. */
    while (pos < len) {
        size_t take;

        if (d->have < PH_FRAME_HEADER_LEN) {
            uint32_t before = d->have;
            take = PH_FRAME_HEADER_LEN - d->have;
            if (take > len - pos)
                take = len - pos;
            memcpy(d->header + d->have, data + pos, take);
            d->have += (uint32_t)take;
            pos += take;
            if (before < 4 && d->have >= 4) {
                d->frame_len = ph_get_u32le(d->header);
                if ((err = check_len(d, d->frame_len)) != PH_OK)
                    return err;
            }
            if (d->have < PH_FRAME_HEADER_LEN)
                continue;
            if ((err = check_header(d, d->header)) != PH_OK)
                return err;
            d->assembly.len = 0;
            if (ph_buf_append(&d->assembly, d->header, PH_FRAME_HEADER_LEN) !=
                PH_OK) {
                /* Step back so the caller can retry with the same bytes. */
                d->have = before;
                *used = pos - take;
                return PH_ENOMEM;
            }
        } else {
            take = d->frame_len - d->have;
            if (take > len - pos)
                take = len - pos;
            if (ph_buf_append(&d->assembly, data + pos, take) != PH_OK) {
                *used = pos;
                return PH_ENOMEM;
            }
            d->have += (uint32_t)take;
            pos += take;
        }
        if (d->have == d->frame_len) {
            d->have = 0;
            if ((err = finish(d, d->assembly.data, out)) != PH_OK)
                return err;
            *used = pos;
            return PH_OK;
        }
    }
    *used = pos;
    return PH_EAGAIN;
}

size_t ph_decoder_tail(ph_decoder *d, uint8_t **dst)
{
    size_t missing;

    if (d->failed != PH_OK || d->have < PH_FRAME_HEADER_LEN ||
        d->have >= d->frame_len)
        return 0;
    missing = d->frame_len - d->have;
    if (ph_buf_reserve(&d->assembly, missing) != PH_OK)
        return 0; /* the ordinary path still works, a piece at a time */
    *dst = d->assembly.data + d->assembly.len;
    return missing;
}

ph_err ph_decoder_commit(ph_decoder *d, size_t n, ph_frame *out)
{
    if (d->failed != PH_OK)
        return d->failed;
    if (d->have < PH_FRAME_HEADER_LEN || n > d->frame_len - d->have ||
        d->assembly.len + n > d->assembly.cap)
        return PH_EINVAL;
    d->assembly.len += n;
    d->have += (uint32_t)n;
    if (d->have < d->frame_len)
        return PH_EAGAIN;
    d->have = 0;
    return finish(d, d->assembly.data, out);
}
