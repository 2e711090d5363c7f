/* The shared-memory lane (docs/PROTOCOL.md, "The lane"): the layout of a
 * lane section and the two rings in it, as either side sees them.
 *
 * A lane is one section of memory shared by the hub and one client. Its
 * first PH_LANE_HEADER_BYTES hold the header: a magic number, the layout
 * version, the ring size, and four 64-bit counters, each on its own cache
 * line. Two rings of equal size follow: client-to-hub, then hub-to-client.
 * Each ring has a tail (bytes ever written, set by its writer) and a head
 * (bytes ever given back, set by its reader). Frames on the pipe still
 * carry order and wake-ups; a frame with PH_FLAG_LANE carries, instead of
 * its payload, an 8-byte descriptor: the payload's offset in the ring and
 * its length.
 *
 * Never trust the other side. Each side keeps its own position (a writer
 * its tail, a reader its head) and never reads it back from the section;
 * it reads the other side's counter once per operation, checks it against
 * the ring's bounds before touching a byte, and a reader copies a payload
 * out before anything looks at it. Counters that make no sense are
 * PH_EBADFRAME: the hub then disconnects that client, whose own lane is all
 * it could spoil.
 *
 * Portable: the platform maps the section and hands over its address. */
#ifndef PH_LANE_H
#define PH_LANE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PH_LANE_VERSION 1
#define PH_LANE_MAGIC 0x4e4c4850u  /* "PHLN" read as a little-endian u32 */
#define PH_LANE_HEADER_BYTES 4096u
/* The smallest lane: the header and two 4 KiB rings. */
#define PH_LANE_MIN_BYTES (PH_LANE_HEADER_BYTES + 2u * 4096u)
/* The largest a layout can describe (the descriptor's fields are 32-bit). */
#define PH_LANE_MAX_BYTES (PH_LANE_HEADER_BYTES + 2u * 0x7ffff000u)

/* Header fields: byte offsets into the section. */
#define PH_LANE_OFF_MAGIC 0       /* u32 PH_LANE_MAGIC */
#define PH_LANE_OFF_VERSION 4     /* u32 PH_LANE_VERSION */
#define PH_LANE_OFF_RING_BYTES 8  /* u32 bytes of each ring */
#define PH_LANE_OFF_C2H_TAIL 64   /* u64, written by the client */
#define PH_LANE_OFF_C2H_HEAD 128  /* u64, written by the hub */
#define PH_LANE_OFF_H2C_TAIL 192  /* u64, written by the hub */
#define PH_LANE_OFF_H2C_HEAD 256  /* u64, written by the client */
#define PH_LANE_OFF_H2C_WAIT 320  /* u64: 1 while the hub waits for room in
                                     the hub-to-client ring (see
                                     ph_lane_wait, ph_lane_wake_due) */

/* A frame's flags bit: the payload is a lane descriptor. */
#define PH_FLAG_LANE 0x01u
/* The descriptor: u32 offset into the ring, u32 length. */
#define PH_LANE_DESC_BYTES 8u

/* One ring as one side sees it. */
typedef struct ph_lane_ring {
    uint8_t *data;            /* the ring's bytes in the section */
    uint32_t size;            /* bytes of the ring */
    uint64_t *mine;           /* the counter this side writes */
    const uint64_t *theirs;   /* the counter the other side writes */
    uint64_t pos;             /* this side's own value of *mine */
} ph_lane_ring;

/* Both rings of a lane, from one side: out is the ring this side writes,
 * in the one it reads. */
typedef struct ph_lane {
    ph_lane_ring out, in;
    uint64_t *wait;           /* PH_LANE_OFF_H2C_WAIT in the section */
} ph_lane;

/* The section's bytes for rings of ring bytes each (rounded up to 64):
 * the header and both rings. 0 when that is out of range. */
size_t ph_lane_section_bytes(uint32_t ring);

/* Bytes of each ring in a section of size bytes; 0 when size is below
 * PH_LANE_MIN_BYTES or above PH_LANE_MAX_BYTES. Rings are a multiple of
 * 64 bytes. */
uint32_t ph_lane_ring_bytes(size_t size);

/* The hub: write a fresh header into a zeroed section of size bytes and
 * take the hub's side of it. PH_EINVAL for a size ph_lane_ring_bytes
 * refuses. */
ph_err ph_lane_format(void *base, size_t size, ph_lane *hub);

/* The client: check the header of the section it was given (size: the
 * bytes it mapped) and take the client's side. PH_EBADFRAME when the
 * header is not a version-1 lane that fits size. */
ph_err ph_lane_attach(void *base, size_t size, ph_lane *client);

/* Write len bytes at p into ring w: on PH_OK *off is the payload's offset
 * in the ring, for the descriptor, and the tail has moved past it.
 * A payload never wraps: one that does not fit before the ring's end goes
 * to offset 0, and the bytes skipped count as used until the reader passes
 * them; an empty ring takes any payload up to its size.
 * PH_EAGAIN: no room until the reader gives some back (nothing changed).
 * PH_ETOOBIG: len is more than the ring holds. PH_EBADFRAME: the reader's
 * head makes no sense (ahead of the tail, or two rings or more behind). */
ph_err ph_lane_write(ph_lane_ring *w, const void *p, uint32_t len,
                     uint32_t *off);

/* Room for one payload of len bytes now, without writing: 1 or 0, or -1
 * when the reader's head makes no sense. */
int ph_lane_fits(ph_lane_ring *w, uint32_t len);

/* Read the payload a descriptor (off, len) names in ring r into dst (len
 * bytes) and give its space back. The payload must be the next one: at
 * the reader's position, or at offset 0 when the writer wrapped. Anything
 * else, or a writer's tail that does not cover it, is PH_EBADFRAME and
 * nothing is read or given back. */
ph_err ph_lane_read(ph_lane_ring *r, uint32_t off, uint32_t len, void *dst);

/* The hub, when a payload for the client does not fit its ring: mark the
 * lane as waiting, then look again. Returns 1 when the payload fits after
 * all (the mark is taken back), 0 when the hub must wait for the client's
 * wake-up frame, -1 when the client's head makes no sense. The mark and
 * the client's head are both read and written sequentially consistent, so
 * a client that gives room back either sees the mark or is seen here. */
int ph_lane_wait(ph_lane *hub, uint32_t len);

/* The client, after giving room back in the hub-to-client ring: 1 when the
 * hub was waiting (the mark is cleared), and the client must send the
 * wake-up frame (an EVENT "sys.lane", empty). */
int ph_lane_wake_due(ph_lane *client);

/* The frame at fr (an encoding of this side's own, so its lengths are
 * trusted) gets its payload moved into ring w: the frame becomes header,
 * route and descriptor, with PH_FLAG_LANE set, and is then *len bytes.
 * Errors as ph_lane_write, and the frame is unchanged. */
ph_err ph_lane_put_frame(ph_lane_ring *w, uint8_t *fr, uint32_t *len);

/* ph_lane_read in two steps, for a reader that only copies the bytes on
 * and never looks at them (sys.echo): peek checks the descriptor exactly as
 * read does and gives the payload's place in the ring and where the head
 * goes after it; consume gives the space back once the bytes are copied.
 * Nothing else may be read from r in between. */
ph_err ph_lane_peek(ph_lane_ring *r, uint32_t off, uint32_t len,
                    const uint8_t **p, uint64_t *end);
void ph_lane_consume(ph_lane_ring *r, uint64_t end);

/* The descriptor's two fields, in and out of a frame's payload. */
void ph_lane_desc_put(uint8_t *p, uint32_t off, uint32_t len);
void ph_lane_desc_get(const uint8_t *p, uint32_t *off, uint32_t *len);

#endif
