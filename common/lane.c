#include "lane.h"

#include <string.h>

#include "frame.h"

/* The section is shared with a process that may change any byte at any
 * time: every counter is read once, with one atomic load, into a local. */
static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void store(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint64_t *counter(void *base, size_t off)
{
    return (uint64_t *)(void *)((uint8_t *)base + off);
}

uint32_t ph_lane_ring_bytes(size_t size)
{
    size_t ring;

    if (size < PH_LANE_MIN_BYTES || size > PH_LANE_MAX_BYTES)
        return 0;
    ring = (size - PH_LANE_HEADER_BYTES) / 2;
    return (uint32_t)(ring & ~(size_t)63);
}

size_t ph_lane_section_bytes(uint32_t ring)
{
    uint64_t r = ((uint64_t)ring + 63) & ~(uint64_t)63;
    uint64_t n = PH_LANE_HEADER_BYTES + 2 * r;

    return r == 0 || n > PH_LANE_MAX_BYTES || n > (size_t)-1 ? 0 : (size_t)n;
}

static void sides(void *base, uint32_t ring, int hub, ph_lane *l)
{
    uint8_t *c2h = (uint8_t *)base + PH_LANE_HEADER_BYTES;
    uint8_t *h2c = c2h + ring;
    uint64_t *c2h_tail = counter(base, PH_LANE_OFF_C2H_TAIL);
    uint64_t *c2h_head = counter(base, PH_LANE_OFF_C2H_HEAD);
    uint64_t *h2c_tail = counter(base, PH_LANE_OFF_H2C_TAIL);
    uint64_t *h2c_head = counter(base, PH_LANE_OFF_H2C_HEAD);

    memset(l, 0, sizeof *l);
    l->out.size = l->in.size = ring;
    if (hub) {
        l->out = (ph_lane_ring){h2c, ring, h2c_tail, h2c_head, 0};
        l->in = (ph_lane_ring){c2h, ring, c2h_head, c2h_tail, 0};
    } else {
        l->out = (ph_lane_ring){c2h, ring, c2h_tail, c2h_head, 0};
        l->in = (ph_lane_ring){h2c, ring, h2c_head, h2c_tail, 0};
    }
    l->wait = counter(base, PH_LANE_OFF_H2C_WAIT);
}

ph_err ph_lane_format(void *base, size_t size, ph_lane *hub)
{
    uint32_t ring = ph_lane_ring_bytes(size);
    uint8_t *b = base;

    if (ring == 0)
        return PH_EINVAL;
    memset(b, 0, PH_LANE_HEADER_BYTES);
    ph_put_u32le(b + PH_LANE_OFF_MAGIC, PH_LANE_MAGIC);
    ph_put_u32le(b + PH_LANE_OFF_VERSION, PH_LANE_VERSION);
    ph_put_u32le(b + PH_LANE_OFF_RING_BYTES, ring);
    sides(base, ring, 1, hub);
    return PH_OK;
}

ph_err ph_lane_attach(void *base, size_t size, ph_lane *client)
{
    const uint8_t *b = base;
    uint32_t ring;

    if (size < PH_LANE_MIN_BYTES ||
        ph_get_u32le(b + PH_LANE_OFF_MAGIC) != PH_LANE_MAGIC ||
        ph_get_u32le(b + PH_LANE_OFF_VERSION) != PH_LANE_VERSION)
        return PH_EBADFRAME;
    ring = ph_get_u32le(b + PH_LANE_OFF_RING_BYTES);
    if (ring == 0 || ring % 64 != 0 || ring > ph_lane_ring_bytes(size))
        return PH_EBADFRAME;
    sides(base, ring, 0, client);
    /* A client attaches to a fresh lane: its own counters start at 0, and
     * so must the hub's, or they make no sense. */
    client->out.pos = 0;
    client->in.pos = 0;
    return PH_OK;
}

/* Where a payload of len bytes written at position pos starts, counted like
 * the tail: at pos, or at the ring's next start when it would not fit
 * before the end (the bytes skipped count as used). */
static uint64_t place(uint64_t pos, uint32_t size, uint32_t len)
{
    uint32_t off = (uint32_t)(pos % size);

    return (uint64_t)off + len > size ? pos + (size - off) : pos;
}

/* The reader's head as the writer may trust it: at most the writer's own
 * tail and less than two rings behind it (one ring of data, and the bytes a
 * wrap into an empty ring skipped). */
static int head_sane(const ph_lane_ring *w, uint64_t head)
{
    return head <= w->pos && w->pos - head < 2 * (uint64_t)w->size;
}

/* Room for len bytes placed at start, the reader's head being head: the
 * payload must not reach bytes not yet given back. An empty ring takes any
 * payload up to its size, wherever the skip to offset 0 puts it. */
static int room(const ph_lane_ring *w, uint64_t head, uint64_t start,
                uint32_t len)
{
    return start + len - head <= w->size || (head == w->pos && len <= w->size);
}

int ph_lane_fits(ph_lane_ring *w, uint32_t len)
{
    uint64_t head = load(w->theirs);

    if (!head_sane(w, head))
        return -1;
    if (len > w->size)
        return 0;
    return room(w, head, place(w->pos, w->size, len), len);
}

ph_err ph_lane_write(ph_lane_ring *w, const void *p, uint32_t len,
                     uint32_t *off)
{
    uint64_t head = load(w->theirs), start;

    if (!head_sane(w, head))
        return PH_EBADFRAME;
    if (len > w->size)
        return PH_ETOOBIG;
    start = place(w->pos, w->size, len);
    if (!room(w, head, start, len))
        return PH_EAGAIN;
    *off = (uint32_t)(start % w->size);
    memcpy(w->data + *off, p, len);
    w->pos = start + len;
    store(w->mine, w->pos);
    return PH_OK;
}

ph_err ph_lane_peek(ph_lane_ring *r, uint32_t off, uint32_t len,
                    const uint8_t **p, uint64_t *end)
{
    uint32_t at = (uint32_t)(r->pos % r->size);
    uint64_t tail, start;

    if (len > r->size || (uint64_t)off + len > r->size)
        return PH_EBADFRAME;
    if (off == at)
        start = r->pos;
    else if (off == 0)
        start = r->pos + (r->size - at); /* the writer wrapped */
    else
        return PH_EBADFRAME;
    /* The writer's tail, read once: it must cover the payload and be less
     * than two rings ahead of what this side has given back (see
     * head_sane). */
    tail = load(r->theirs);
    if (tail < r->pos || tail - r->pos >= 2 * (uint64_t)r->size ||
        start + len > tail)
        return PH_EBADFRAME;
    *p = r->data + off;
    *end = start + len;
    return PH_OK;
}

void ph_lane_consume(ph_lane_ring *r, uint64_t end)
{
    r->pos = end;
    /* Sequentially consistent, against the hub's wait mark (ph_lane_wait):
     * release alone would let the mark's load pass this store. */
    __atomic_store_n(r->mine, r->pos, __ATOMIC_SEQ_CST);
}

ph_err ph_lane_read(ph_lane_ring *r, uint32_t off, uint32_t len, void *dst)
{
    const uint8_t *p;
    uint64_t end;
    ph_err err = ph_lane_peek(r, off, len, &p, &end);

    if (err != PH_OK)
        return err;
    memcpy(dst, p, len);
    ph_lane_consume(r, end);
    return PH_OK;
}

int ph_lane_wait(ph_lane *hub, uint32_t len)
{
    int fits;

    __atomic_store_n(hub->wait, 1, __ATOMIC_SEQ_CST);
    fits = ph_lane_fits(&hub->out, len); /* reads the head once more */
    if (fits != 0)
        __atomic_store_n(hub->wait, 0, __ATOMIC_SEQ_CST);
    return fits;
}

int ph_lane_wake_due(ph_lane *client)
{
    return __atomic_exchange_n(client->wait, 0, __ATOMIC_SEQ_CST) != 0;
}

void ph_lane_desc_put(uint8_t *p, uint32_t off, uint32_t len)
{
    ph_put_u32le(p, off);
    ph_put_u32le(p + 4, len);
}

void ph_lane_desc_get(const uint8_t *p, uint32_t *off, uint32_t *len)
{
    *off = ph_get_u32le(p);
    *len = ph_get_u32le(p + 4);
}

ph_err ph_lane_put_frame(ph_lane_ring *w, uint8_t *fr, uint32_t *len)
{
    uint32_t at = PH_FRAME_HEADER_LEN + fr[6], off;
    ph_err err = ph_lane_write(w, fr + at, ph_get_u32le(fr) - at, &off);

    if (err != PH_OK)
        return err;
    ph_lane_desc_put(fr + at, off, ph_get_u32le(fr) - at);
    ph_put_u32le(fr, at + PH_LANE_DESC_BYTES);
    fr[7] = PH_FLAG_LANE;
    *len = at + PH_LANE_DESC_BYTES;
    return PH_OK;
}
