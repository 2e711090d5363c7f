/* The lane's descriptor path (common/lane.c) with a hostile peer: the input
 * is a script of honest writes, reads with descriptors the input chooses,
 * and scribbles on the peer's counters and on the ring's bytes between any
 * two steps. The section is a heap block of its exact size, so ASan fails
 * on any byte touched outside it; and after every step the honest side's
 * own position must only have grown, by at most what it may.
 *
 * Script bytes: an op, then its arguments, little-endian:
 *   0 W len:u16          the client writes len bytes (pattern)
 *   1 R off:u32 len:u32  the hub reads with this descriptor
 *   2 N                  the hub reads the next honest descriptor
 *   3 T v:u64            the client's tail (hub-side "theirs") becomes v
 *   4 D at:u16 b:u8      a ring byte changes
 *   5 H                  the hub writes 1000 bytes to the client
 *   6 C v:u64            the client's head on the hub-to-client ring */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "lane.h"

#define SECTION (PH_LANE_HEADER_BYTES + 2u * 4096u)

typedef struct script {
    const uint8_t *p;
    size_t n;
} script;

static int take(script *s, void *out, size_t len)
{
    if (s->n < len)
        return -1;
    memcpy(out, s->p, len);
    s->p += len;
    s->n -= len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *sec = malloc(SECTION), buf[4096], got[4096];
    uint32_t offs[64], lens[64], nw = 0, nr = 0;
    script s = {data, size};
    ph_lane hub, cli;
    uint8_t op;

    if (sec == NULL)
        return 0;
    memset(sec, 0, SECTION);
    if (ph_lane_format(sec, SECTION, &hub) != PH_OK ||
        ph_lane_attach(sec, SECTION, &cli) != PH_OK)
        abort();
    memset(buf, 0x5a, sizeof buf);
    while (take(&s, &op, 1) == 0) {
        uint64_t before = hub.in.pos, v;
        uint32_t off, len, out;
        uint16_t l16;
        uint8_t b;
        ph_err err;

        switch (op % 7) {
        case 0:
            if (take(&s, &l16, 2) != 0)
                goto done;
            len = l16 % 4200u;
            err = ph_lane_write(&cli.out, buf, len, &out);
            if (err == PH_OK && nw - nr < 64) {
                offs[nw % 64] = out;
                lens[nw % 64] = len;
                nw++;
            }
            break;
        case 1:
            if (take(&s, &off, 4) != 0 || take(&s, &len, 4) != 0)
                goto done;
            if (len <= sizeof got)
                (void)ph_lane_read(&hub.in, off, len, got);
            else if (ph_lane_read(&hub.in, off, len, NULL) == PH_OK)
                abort(); /* more than the ring holds was accepted */
            break;
        case 2:
            if (nr < nw &&
                ph_lane_read(&hub.in, offs[nr % 64], lens[nr % 64], got) ==
                    PH_OK)
                nr++;
            break;
        case 3:
            if (take(&s, &v, 8) != 0)
                goto done;
            memcpy(sec + PH_LANE_OFF_C2H_TAIL, &v, 8);
            break;
        case 4:
            if (take(&s, &l16, 2) != 0 || take(&s, &b, 1) != 0)
                goto done;
            sec[PH_LANE_HEADER_BYTES + l16 % (2u * 4096u)] = b;
            break;
        case 5:
            (void)ph_lane_write(&hub.out, buf, 1000, &out);
            break;
        default:
            if (take(&s, &v, 8) != 0)
                goto done;
            memcpy(sec + PH_LANE_OFF_H2C_HEAD, &v, 8);
            (void)ph_lane_fits(&hub.out, 10);
            break;
        }
        /* The hub's own read position only grows, by at most two rings
         * (a payload and the skip before it). */
        if (hub.in.pos < before || hub.in.pos - before > 2u * 4096u)
            abort();
        if (hub.out.pos > (uint64_t)1 << 40)
            abort();
    }
done:
    free(sec);
    return 0;
}
