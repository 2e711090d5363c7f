/* Helpers the unit tests and the fuzzers share: test-side byte arrays,
 * deterministic filler, and building and looking at frames (common/frame.h).
 *
 * Plain C, no harness: the fuzzers include it too (as "../unit/unit_util.h"),
 * so nothing here CHECKs; the functions answer 1 or 0 and the caller checks. */
#ifndef PH_UNIT_UTIL_H
#define PH_UNIT_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* ---- bytes on the C heap ------------------------------------------------- */

/* A growable byte array that uses malloc, not ph_alloc, so that injected
 * allocation failures (ph_alloc_fail_after) aimed at the code under test
 * never hit the test's own bookkeeping. Zero-initialise it; out of memory
 * aborts. */
typedef struct bytes {
    uint8_t *data;
    size_t len;
    size_t cap;
} bytes;

static inline void bytes_put(bytes *b, const void *src, size_t n)
{
    if (n == 0)
        return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 64;
        uint8_t *p;

        while (cap - b->len < n)
            cap *= 2;
        p = realloc(b->data, cap);
        if (p == NULL) {
            fprintf(stderr, "test: out of memory\n");
            abort();
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static inline void bytes_free(bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Deterministic filler, so a misplaced byte shows up as a mismatch. */
static inline void fill(uint8_t *p, size_t n, uint32_t seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* ---- frames --------------------------------------------------------------- */

/* A frame with these fields; a NULL route has length 0. */
static inline ph_frame make_frame(uint8_t kind, uint32_t id, uint32_t status,
                                  const char *route, const void *payload,
                                  uint32_t payload_len)
{
    ph_frame f = {.kind = kind,
                  .route_len = (uint8_t)(route ? strlen(route) : 0),
                  .id = id,
                  .status = status,
                  .route = route,
                  .payload = payload,
                  .payload_len = payload_len};

    return f;
}

/* 1 when f's payload is exactly s. */
static inline int payload_is(const ph_frame *f, const char *s)
{
    return f->payload_len == strlen(s) &&
           memcmp(f->payload, s, f->payload_len) == 0;
}

/* 1 when s occurs in f's payload. */
static inline int payload_has(const ph_frame *f, const char *s)
{
    size_t n = strlen(s), i;

    for (i = 0; i + n <= f->payload_len; i++)
        if (memcmp(f->payload + i, s, n) == 0)
            return 1;
    return 0;
}

/* 1 when f's route is exactly s. */
static inline int route_is(const ph_frame *f, const char *s)
{
    return f->route_len == strlen(s) && memcmp(f->route, s, f->route_len) == 0;
}

#endif
