/* The lane's rings (common/lane.c): layout, order, wrap, back-pressure, and
 * a peer that scribbles on its counters or descriptors. */
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "harness.h"
#include "lane.h"

#define SECTION (PH_LANE_HEADER_BYTES + 2u * 4096u)

static uint8_t *section(void)
{
    uint8_t *s = calloc(1, SECTION);

    if (s == NULL)
        abort();
    return s;
}

static uint64_t *at(uint8_t *s, size_t off)
{
    return (uint64_t *)(void *)(s + off);
}

static void test_layout(void)
{
    uint8_t *s = section();
    ph_lane hub, cli;

    CHECK_EQ(ph_lane_ring_bytes(PH_LANE_MIN_BYTES - 1), 0);
    CHECK_EQ(ph_lane_ring_bytes(PH_LANE_MIN_BYTES), 4096);
    CHECK_EQ(ph_lane_ring_bytes(PH_LANE_HEADER_BYTES + 2 * 4096 + 100), 4096);
    CHECK_EQ(ph_lane_ring_bytes((size_t)16 << 20),
             ((16u << 20) - PH_LANE_HEADER_BYTES) / 2);
    CHECK_EQ(ph_lane_format(s, PH_LANE_MIN_BYTES - 1, &hub), PH_EINVAL);
    CHECK_EQ(ph_lane_format(s, SECTION, &hub), PH_OK);
    CHECK_EQ(ph_get_u32le(s), PH_LANE_MAGIC);
    CHECK_EQ(ph_get_u32le(s + 4), PH_LANE_VERSION);
    CHECK_EQ(ph_get_u32le(s + 8), 4096);
    CHECK_EQ(ph_lane_attach(s, SECTION, &cli), PH_OK);
    /* Each side writes what the other reads, and nothing else. */
    CHECK(cli.out.data == hub.in.data);
    CHECK(cli.in.data == hub.out.data);
    CHECK(cli.out.mine == hub.in.theirs);
    CHECK(hub.out.mine == cli.in.theirs);
    CHECK(cli.out.data == s + PH_LANE_HEADER_BYTES);
    CHECK(hub.out.data == s + PH_LANE_HEADER_BYTES + 4096);
    /* A client refuses what is not a lane, or a ring bigger than it mapped. */
    CHECK_EQ(ph_lane_attach(s, SECTION - 64, &cli), PH_EBADFRAME);
    s[0] ^= 1;
    CHECK_EQ(ph_lane_attach(s, SECTION, &cli), PH_EBADFRAME);
    s[0] ^= 1;
    ph_put_u32le(s + 4, 2);
    CHECK_EQ(ph_lane_attach(s, SECTION, &cli), PH_EBADFRAME);
    ph_put_u32le(s + 4, 1);
    ph_put_u32le(s + 8, 4000);
    CHECK_EQ(ph_lane_attach(s, SECTION, &cli), PH_EBADFRAME);
    free(s);
}

/* Payloads of every size go around the ring many times, in order, each
 * read back byte for byte, with the writer told to wait when it is full. */
static void test_order_and_wrap(void)
{
    uint8_t *s = section(), buf[4096], got[4096];
    ph_lane hub, cli;
    uint32_t off[16], len[16], n = 0, head = 0, i, total = 0, waits = 0;
    uint32_t sizes[] = {1, 100, 1000, 3000, 4096, 17, 2500, 64};
    unsigned k;

    CHECK_EQ(ph_lane_format(s, SECTION, &hub), PH_OK);
    CHECK_EQ(ph_lane_attach(s, SECTION, &cli), PH_OK);
    for (k = 0; k < 400; k++) {
        uint32_t l = sizes[k % 8];
        ph_err err;
        for (i = 0; i < l; i++)
            buf[i] = (uint8_t)(k + i);
        err = ph_lane_write(&cli.out, buf, l, &off[n % 16]);
        if (err == PH_EAGAIN) {
            CHECK(n > head);
            /* Read the oldest, then try again. */
            CHECK_EQ(ph_lane_read(&hub.in, off[head % 16], len[head % 16],
                                  got), PH_OK);
            for (i = 0; i < len[head % 16]; i++)
                CHECK_EQ(got[i], (uint8_t)(head + i));
            head++;
            waits++;
            k--;
            continue;
        }
        CHECK_EQ(err, PH_OK);
        CHECK(off[n % 16] + l <= 4096);
        len[n % 16] = l;
        n++;
        total += l;
        CHECK(n - head <= 16);
        (void)total;
    }
    while (head < n) {
        CHECK_EQ(ph_lane_read(&hub.in, off[head % 16], len[head % 16], got),
                 PH_OK);
        for (i = 0; i < len[head % 16]; i++)
            CHECK_EQ(got[i], (uint8_t)(head + i));
        head++;
    }
    CHECK(waits > 10);
    /* Everything was given back: the writer has the whole ring again. */
    CHECK(cli.out.pos % 4096 != 0);
    CHECK_EQ(ph_lane_fits(&cli.out, 4096), 1);
    CHECK_EQ(ph_lane_write(&cli.out, buf, 4097, &off[0]), PH_ETOOBIG);
    /* An empty ring takes a payload of its whole size, at offset 0, and the
     * reader finds it there. */
    memset(buf, 'w', sizeof buf);
    CHECK_EQ(ph_lane_write(&cli.out, buf, 4096, &off[0]), PH_OK);
    CHECK_EQ(off[0], 0);
    CHECK_EQ(ph_lane_fits(&cli.out, 1), 0);
    CHECK_EQ(ph_lane_read(&hub.in, 0, 4096, got), PH_OK);
    CHECK(memcmp(got, buf, 4096) == 0);
    CHECK_EQ(ph_lane_write(&cli.out, buf, 10, &off[0]), PH_OK);
    CHECK_EQ(ph_lane_read(&hub.in, off[0], 10, got), PH_OK);
    free(s);
}

/* A reader takes only the next payload: not one further on, not twice, not
 * past what the writer wrote, not past the ring's end. */
static void test_reader_refuses_bad_descriptors(void)
{
    uint8_t *s = section(), buf[512], got[512];
    ph_lane hub, cli;
    uint32_t o1, o2;

    memset(buf, 'x', sizeof buf);
    CHECK_EQ(ph_lane_format(s, SECTION, &hub), PH_OK);
    CHECK_EQ(ph_lane_attach(s, SECTION, &cli), PH_OK);
    CHECK_EQ(ph_lane_write(&cli.out, buf, 100, &o1), PH_OK);
    CHECK_EQ(ph_lane_write(&cli.out, buf, 200, &o2), PH_OK);
    CHECK_EQ(o1, 0);
    CHECK_EQ(o2, 100);
    CHECK_EQ(ph_lane_read(&hub.in, o2, 200, got), PH_EBADFRAME); /* not next */
    CHECK_EQ(ph_lane_read(&hub.in, 4000, 200, got), PH_EBADFRAME); /* past end */
    CHECK_EQ(ph_lane_read(&hub.in, 0, 301, got), PH_EBADFRAME); /* unwritten */
    CHECK_EQ(ph_lane_read(&hub.in, 0, 0xffffffffu, got), PH_EBADFRAME);
    CHECK_EQ(*at(s, PH_LANE_OFF_C2H_HEAD), 0); /* nothing given back */
    CHECK_EQ(ph_lane_read(&hub.in, o1, 100, got), PH_OK);
    CHECK_EQ(ph_lane_read(&hub.in, o1, 100, got), PH_EBADFRAME); /* twice */
    CHECK_EQ(ph_lane_read(&hub.in, o2, 200, got), PH_OK);
    CHECK_EQ(*at(s, PH_LANE_OFF_C2H_HEAD), 300);
    free(s);
}

/* Counters written by a hostile peer: a tail behind the reader or more than
 * a ring ahead, a head ahead of the writer or a ring behind. Each is
 * refused, and the honest side's own position is untouched. */
static void test_scribbled_counters(void)
{
    uint8_t *s = section(), buf[256], got[256];
    ph_lane hub, cli;
    uint32_t o;

    memset(buf, 'y', sizeof buf);
    CHECK_EQ(ph_lane_format(s, SECTION, &hub), PH_OK);
    CHECK_EQ(ph_lane_attach(s, SECTION, &cli), PH_OK);
    CHECK_EQ(ph_lane_write(&cli.out, buf, 256, &o), PH_OK);
    *at(s, PH_LANE_OFF_C2H_TAIL) = 100000; /* more than a ring ahead */
    CHECK_EQ(ph_lane_read(&hub.in, 0, 256, got), PH_EBADFRAME);
    *at(s, PH_LANE_OFF_C2H_TAIL) = 10; /* does not cover the payload */
    CHECK_EQ(ph_lane_read(&hub.in, 0, 256, got), PH_EBADFRAME);
    CHECK_EQ(hub.in.pos, 0);
    *at(s, PH_LANE_OFF_C2H_TAIL) = 256;
    CHECK_EQ(ph_lane_read(&hub.in, 0, 256, got), PH_OK);
    /* The hub writes; the client's head lies. */
    CHECK_EQ(ph_lane_write(&hub.out, buf, 256, &o), PH_OK);
    *at(s, PH_LANE_OFF_H2C_HEAD) = 1000; /* ahead of the hub's tail */
    CHECK_EQ(ph_lane_write(&hub.out, buf, 10, &o), PH_EBADFRAME);
    CHECK_EQ(ph_lane_fits(&hub.out, 10), -1);
    *at(s, PH_LANE_OFF_H2C_HEAD) = (uint64_t)-1;
    CHECK_EQ(ph_lane_write(&hub.out, buf, 10, &o), PH_EBADFRAME);
    CHECK_EQ(hub.out.pos, 256);
    /* A tail the client set back, below what the hub already read. */
    *at(s, PH_LANE_OFF_C2H_TAIL) = 0;
    CHECK_EQ(ph_lane_read(&hub.in, 256, 1, got), PH_EBADFRAME);
    free(s);
}

static void test_descriptor(void)
{
    uint8_t d[PH_LANE_DESC_BYTES];
    uint32_t off, len;

    ph_lane_desc_put(d, 0x01020304u, 0xa0b0c0d0u);
    CHECK_EQ(d[0], 4);
    CHECK_EQ(d[7], 0xa0);
    ph_lane_desc_get(d, &off, &len);
    CHECK_EQ(off, 0x01020304u);
    CHECK_EQ(len, 0xa0b0c0d0u);
}

int main(void)
{
    PH_RUN(test_layout);
    PH_RUN(test_order_and_wrap);
    PH_RUN(test_reader_refuses_bad_descriptors);
    PH_RUN(test_scribbled_counters);
    PH_RUN(test_descriptor);
    return ph_test_summary();
}
