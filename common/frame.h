/* Wire protocol v1: the frame codec (docs/PROTOCOL.md).
 *
 * The decoder is sans-I/O: bytes in, whole frames out. Any split of the input
 * gives the same frames and the same error. A frame_len over the limit is
 * refused as soon as its four bytes are seen, before anything is allocated. */
#ifndef PH_FRAME_H
#define PH_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* PH_PROTOCOL_VERSION, PH_FRAME_HEADER_LEN, PH_ROUTE_MAX, the frame kinds
 * and ph_frame are in err.h, the public header the client library shares. */

/* To be read by any peer, the header must be exactly 16 bytes on the wire. It
 * is read and written field by field with the helpers below, never overlaid. */
_Static_assert(PH_FRAME_HEADER_LEN == 4 + 1 + 1 + 1 + 1 + 4 + 4,
               "frame header layout");

static inline uint32_t ph_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void ph_put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Route characters: ASCII letters, digits and "._-/". Returns 1 when every
 * one of the len bytes is allowed (an empty route is valid here; whether a
 * kind may have one is the caller's rule). */
int ph_route_valid(const char *route, size_t len);

/* n, or less when more than max: cut so that no UTF-8 character is split
 * (an ERROR's message is at most 200 bytes of UTF-8). */
static inline size_t ph_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Bytes a frame with this route and payload occupies on the wire. */
static inline size_t ph_frame_size(size_t route_len, size_t payload_len)
{
    return PH_FRAME_HEADER_LEN + route_len + payload_len;
}

/* Encode f into dst, which has room for cap bytes. Fails with PH_EINVAL on a
 * bad kind, a route that is too long or has bad characters, or a REQUEST or
 * EVENT without a route; PH_ETOOBIG when the frame would exceed cap or 4 GiB.
 * *out_len gets the bytes written on success. */
ph_err ph_frame_encode(const ph_frame *f, uint8_t *dst, size_t cap,
                       size_t *out_len);

/* Append the encoding of f to b (growing it). On failure b is unchanged. */
ph_err ph_frame_append(ph_buf *b, const ph_frame *f);

/* Append an ERROR frame answering request id, with code and a human message
 * (cut to at most 200 bytes, on a UTF-8 character boundary). A code that is
 * not a protocol code (1..PH_PROTO_MAX) is sent as PH_EINTERNAL. */
ph_err ph_frame_append_error(ph_buf *b, uint32_t id, ph_err code,
                             const char *msg);

/* Build a frame in place when the payload is written straight into b:
 * ph_frame_begin appends the header and route and returns (in *start) where
 * the frame starts; the caller appends the payload; ph_frame_end patches
 * frame_len. Used for JSON replies, so they are not built twice. */
ph_err ph_frame_begin(ph_buf *b, uint8_t kind, uint32_t id, uint32_t status,
                      const char *route, uint8_t route_len, size_t *start);
/* PH_ETOOBIG (and the frame removed from b) when it grew past max_frame. */
ph_err ph_frame_end(ph_buf *b, size_t start, uint32_t max_frame);

/* The decoder. Zero-initialise, then call ph_decoder_init. */
typedef struct ph_decoder {
    uint32_t max_frame;           /* frames longer than this are TOO_LARGE */
    uint8_t flags_ok;             /* flag bits a frame may carry (0 until a
                                     lane is set up: PH_FLAG_LANE) */
    uint8_t header[PH_FRAME_HEADER_LEN]; /* header bytes gathered so far */
    uint32_t have;                /* bytes of the current frame seen */
    uint32_t frame_len;           /* of the current frame, once known */
    ph_buf assembly;              /* a frame that arrived in pieces */
    ph_err failed;                /* sticky: PH_OK until a format error */
    char why[96];                 /* what was wrong, for the ERROR frame */
} ph_decoder;

void ph_decoder_init(ph_decoder *d, uint32_t max_frame);
void ph_decoder_free(ph_decoder *d);

/* Decode from data[0..len).
 *   PH_OK:        *used bytes were consumed and *out holds a whole frame.
 *   PH_EAGAIN:    all len bytes were consumed (*used == len); no frame yet.
 *   PH_EBADFRAME, PH_ETOOBIG: the stream is broken; d->why says why. Every
 *                 later call returns the same error. *used is unspecified.
 *   PH_ENOMEM:    no memory to assemble a split frame; may be retried.
 * A frame that lies whole inside data is returned without copying: its route
 * and payload then point into data. */
ph_err ph_decoder_next(ph_decoder *d, const uint8_t *data, size_t len,
                       size_t *used, ph_frame *out);

/* Reading a large frame straight into place. While a frame whose header is
 * in is still incomplete, ph_decoder_tail returns how many bytes it still
 * lacks and sets *dst to where they go (the frame's own buffer, grown to the
 * whole frame); it returns 0 otherwise. The caller reads at most that many
 * bytes into *dst and passes the count to ph_decoder_commit, which then
 * acts like ph_decoder_next on those bytes: PH_OK with the whole frame in
 * *out, PH_EAGAIN while more is needed, or an error. This saves a copy and,
 * more to the point, lets one read take the rest of a large frame. A tail
 * never reaches past the current frame, so the next frame's bytes stay in
 * the pipe for an ordinary read. */
size_t ph_decoder_tail(ph_decoder *d, uint8_t **dst);
ph_err ph_decoder_commit(ph_decoder *d, size_t n, ph_frame *out);

/* 1 when the decoder is between frames (no partial frame held). */
static inline int ph_decoder_idle(const ph_decoder *d) { return d->have == 0; }

#endif
