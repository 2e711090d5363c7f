/* Unit tests of the growable byte buffer (common/buf.h), including what it
 * does when the allocator fails (ph_alloc_fail_after). */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "harness.h"
#include "platform.h"
#include "unit_util.h"

static void test_zero_is_empty(void)
{
    ph_buf b = {0};

    /* Nothing to make room for: no allocation, even when none may happen. */
    ph_alloc_fail_after(0);
    CHECK_EQ(ph_buf_reserve(&b, 0), PH_OK);
    CHECK_EQ(ph_buf_append(&b, "x", 0), PH_OK);
    CHECK_EQ(ph_buf_append(&b, NULL, 0), PH_OK);
    ph_alloc_fail_after(-1);
    CHECK(b.data == NULL);
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b.cap, 0);
    ph_buf_consume(&b, 0);
    CHECK_EQ(b.len, 0);
    ph_buf_free(&b);
    ph_buf_free(&b); /* freeing an empty buffer, twice, is harmless */
    CHECK(b.data == NULL);
}

static void test_append_and_grow(void)
{
    static uint8_t src[100000];
    ph_buf b = {0};
    size_t pos = 0, step = 1;

    fill(src, sizeof src, 1);
    /* Pieces of growing, uneven sizes, so growth happens mid-piece too. */
    while (pos < sizeof src) {
        size_t n = step < sizeof src - pos ? step : sizeof src - pos;

        CHECK_EQ(ph_buf_append(&b, src + pos, n), PH_OK);
        pos += n;
        CHECK_EQ(b.len, pos);
        CHECK(b.cap >= b.len);
        step = step * 3 + 1;
        if (step > 5000)
            step = 7;
    }
    CHECK(memcmp(b.data, src, sizeof src) == 0);
    ph_buf_free(&b);
    CHECK(b.data == NULL);
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b.cap, 0);
}

/* Growth is geometric: a byte at a time costs a logarithmic number of
 * reallocations, not one per byte. */
static void test_growth_is_geometric(void)
{
    ph_buf b = {0};
    size_t i, prev_cap = 0, grows = 0;

    for (i = 0; i < 200000; i++) {
        uint8_t c = (uint8_t)i;

        CHECK_EQ(ph_buf_append(&b, &c, 1), PH_OK);
        if (b.cap != prev_cap) {
            grows++;
            prev_cap = b.cap;
        }
    }
    CHECK_EQ(b.len, 200000);
    CHECK(grows <= 20);
    for (i = 0; i < 200000; i++)
        CHECK_EQ(b.data[i], (uint8_t)i);
    ph_buf_free(&b);
}

/* After reserve(n), n bytes go in without another allocation. */
static void test_reserve_makes_room(void)
{
    uint8_t src[5000];
    ph_buf b = {0};
    uint8_t *data;

    fill(src, sizeof src, 2);
    CHECK_EQ(ph_buf_append(&b, src, 10), PH_OK);
    CHECK_EQ(ph_buf_reserve(&b, sizeof src - 10), PH_OK);
    CHECK(b.cap - b.len >= sizeof src - 10);
    CHECK_EQ(b.len, 10);
    data = b.data;
    ph_alloc_fail_after(0);
    CHECK_EQ(ph_buf_append(&b, src + 10, 1000), PH_OK);
    CHECK_EQ(ph_buf_append(&b, src + 1010, sizeof src - 1010), PH_OK);
    /* Reserving room that is already there allocates nothing either. */
    CHECK_EQ(ph_buf_reserve(&b, b.cap - b.len), PH_OK);
    CHECK_EQ(ph_buf_reserve(&b, 0), PH_OK);
    ph_alloc_fail_after(-1);
    CHECK(b.data == data);
    CHECK_EQ(b.len, sizeof src);
    CHECK(memcmp(b.data, src, sizeof src) == 0);
    ph_buf_free(&b);
}

static void test_consume(void)
{
    static const char text[] = "0123456789abcdef";
    ph_buf b = {0};
    size_t cap;

    CHECK_EQ(ph_buf_append(&b, text, 16), PH_OK);
    cap = b.cap;
    ph_buf_consume(&b, 0);
    CHECK_EQ(b.len, 16);
    CHECK(memcmp(b.data, text, 16) == 0);
    ph_buf_consume(&b, 3);
    CHECK_EQ(b.len, 13);
    CHECK(memcmp(b.data, text + 3, 13) == 0);
    ph_buf_consume(&b, 12);
    CHECK_EQ(b.len, 1);
    CHECK_EQ(b.data[0], 'f');
    ph_buf_consume(&b, 1);
    CHECK_EQ(b.len, 0);
    /* The memory is kept for reuse: consuming is not freeing. */
    CHECK_EQ(b.cap, cap);
    CHECK(b.data != NULL);
    CHECK_EQ(ph_buf_append(&b, "xy", 2), PH_OK);
    CHECK_EQ(b.len, 2);
    CHECK(memcmp(b.data, "xy", 2) == 0);
    ph_buf_free(&b);
}

/* A consume over a large buffer moves overlapping bytes: the memmove case. */
static void test_consume_overlapping(void)
{
    static uint8_t src[10000];
    ph_buf b = {0};

    fill(src, sizeof src, 3);
    CHECK_EQ(ph_buf_append(&b, src, sizeof src), PH_OK);
    ph_buf_consume(&b, 1);
    CHECK_EQ(b.len, sizeof src - 1);
    CHECK(memcmp(b.data, src + 1, sizeof src - 1) == 0);
    ph_buf_consume(&b, 4000);
    CHECK_EQ(b.len, sizeof src - 4001);
    CHECK(memcmp(b.data, src + 4001, sizeof src - 4001) == 0);
    ph_buf_free(&b);
}

/* PH_ENOMEM leaves the buffer exactly as it was: pointer, length, capacity
 * and contents; and the buffer works again once memory is back. */
static void test_enomem_leaves_buffer_unchanged(void)
{
    uint8_t src[4096];
    ph_buf b = {0};
    uint8_t *data;
    size_t len, cap;

    fill(src, sizeof src, 4);

    /* The very first allocation. */
    ph_alloc_fail_after(0);
    CHECK_EQ(ph_buf_reserve(&b, 1), PH_ENOMEM);
    CHECK_EQ(ph_buf_append(&b, src, 1), PH_ENOMEM);
    ph_alloc_fail_after(-1);
    CHECK(b.data == NULL);
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b.cap, 0);

    /* A growth. */
    CHECK_EQ(ph_buf_append(&b, src, 100), PH_OK);
    data = b.data;
    len = b.len;
    cap = b.cap;
    ph_alloc_fail_after(0);
    CHECK_EQ(ph_buf_append(&b, src + 100, sizeof src - 100), PH_ENOMEM);
    CHECK_EQ(ph_buf_reserve(&b, cap - len + 1), PH_ENOMEM);
    ph_alloc_fail_after(-1);
    CHECK(b.data == data);
    CHECK_EQ(b.len, len);
    CHECK_EQ(b.cap, cap);
    CHECK(memcmp(b.data, src, 100) == 0);

    CHECK_EQ(ph_buf_append(&b, src + 100, sizeof src - 100), PH_OK);
    CHECK_EQ(b.len, sizeof src);
    CHECK(memcmp(b.data, src, sizeof src) == 0);
    ph_buf_free(&b);
}

/* ph_alloc_fail_after(n) lets n allocations through, then fails them all. */
static void test_fail_after_counts(void)
{
    uint8_t src[2048];
    ph_buf b = {0};
    size_t cap;

    fill(src, sizeof src, 5);
    ph_alloc_fail_after(2);
    CHECK_EQ(ph_buf_append(&b, src, 1), PH_OK);     /* first allocation */
    cap = b.cap;
    CHECK_EQ(ph_buf_append(&b, src + 1, cap), PH_OK); /* one growth */
    CHECK(b.cap > cap);
    cap = b.cap;
    CHECK_EQ(ph_buf_reserve(&b, cap - b.len + 1), PH_ENOMEM);
    CHECK_EQ(ph_buf_reserve(&b, cap - b.len + 1), PH_ENOMEM);
    CHECK_EQ(b.cap, cap);
    ph_alloc_fail_after(-1);
    CHECK_EQ(ph_buf_reserve(&b, cap - b.len + 1), PH_OK);
    CHECK(memcmp(b.data, src, b.len) == 0);
    ph_buf_free(&b);
}

/* Sizes near SIZE_MAX: an overflowing request is refused rather than wrapped
 * into a small one, and the doubling loop ends. Injection keeps the huge
 * requests away from the real allocator (ASan would abort on them). */
static void test_reserve_overflow(void)
{
    ph_buf b = {0};
    uint8_t *data;
    size_t cap;

    CHECK_EQ(ph_buf_append(&b, "abc", 3), PH_OK);
    data = b.data;
    cap = b.cap;
    ph_alloc_fail_after(0);
    CHECK_EQ(ph_buf_reserve(&b, SIZE_MAX), PH_ENOMEM);
    CHECK_EQ(ph_buf_reserve(&b, SIZE_MAX - 2), PH_ENOMEM);
    CHECK_EQ(ph_buf_reserve(&b, SIZE_MAX - 3), PH_ENOMEM);
    CHECK_EQ(ph_buf_reserve(&b, SIZE_MAX / 2 + 1), PH_ENOMEM);
    CHECK_EQ(ph_buf_append(&b, "x", SIZE_MAX), PH_ENOMEM);
    ph_alloc_fail_after(-1);
    CHECK(b.data == data);
    CHECK_EQ(b.len, 3);
    CHECK_EQ(b.cap, cap);
    CHECK(memcmp(b.data, "abc", 3) == 0);
    ph_buf_free(&b);
}

/* A freed buffer is an empty one and can be used again. */
static void test_free_and_reuse(void)
{
    ph_buf b = {0};

    CHECK_EQ(ph_buf_append(&b, "first", 5), PH_OK);
    ph_buf_free(&b);
    CHECK(b.data == NULL);
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b.cap, 0);
    CHECK_EQ(ph_buf_append(&b, "second", 6), PH_OK);
    CHECK_EQ(b.len, 6);
    CHECK(memcmp(b.data, "second", 6) == 0);
    ph_buf_free(&b);
}

int main(void)
{
    PH_RUN_ALLOC_RESET(test_zero_is_empty);
    PH_RUN_ALLOC_RESET(test_append_and_grow);
    PH_RUN_ALLOC_RESET(test_growth_is_geometric);
    PH_RUN_ALLOC_RESET(test_reserve_makes_room);
    PH_RUN_ALLOC_RESET(test_consume);
    PH_RUN_ALLOC_RESET(test_consume_overlapping);
    PH_RUN_ALLOC_RESET(test_enomem_leaves_buffer_unchanged);
    PH_RUN_ALLOC_RESET(test_fail_after_counts);
    PH_RUN_ALLOC_RESET(test_reserve_overflow);
    PH_RUN_ALLOC_RESET(test_free_and_reuse);
    return ph_test_summary();
}
