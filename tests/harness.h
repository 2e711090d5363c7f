/* A small test harness: value-printing asserts and a closing count line.
 *
 * Each test is a function; run them with PH_RUN(fn) or ph_run(name, fn). A
 * failed check prints file:line, the expression and both values, then ends
 * that test (return).
 * ph_test_summary() prints "N passed, N failed" and returns the exit code. */
#ifndef PH_HARNESS_H
#define PH_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ph__passed, ph__failed, ph__skipped, ph__cur_failed;

#define PH_FAIL_HERE(...)                                                     \
    do {                                                                      \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                       \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
        ph__cur_failed = 1;                                                   \
    } while (0)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            PH_FAIL_HERE("CHECK(%s) failed", #cond);                          \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_EQ(a, b)                                                        \
    do {                                                                      \
        int64_t ph__a = (int64_t)(a), ph__b = (int64_t)(b);                   \
        if (ph__a != ph__b) {                                                 \
            PH_FAIL_HERE("CHECK_EQ(%s, %s): %" PRId64 " != %" PRId64, #a, #b, \
                         ph__a, ph__b);                                       \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_STR(a, b)                                                       \
    do {                                                                      \
        const char *ph__a = (a), *ph__b = (b);                                \
        if (strcmp(ph__a, ph__b) != 0) {                                      \
            PH_FAIL_HERE("CHECK_STR(%s, %s): \"%s\" != \"%s\"", #a, #b, ph__a, \
                         ph__b);                                              \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_MEM(a, b, n)                                                    \
    do {                                                                      \
        size_t ph__n = (n);                                                   \
        if (memcmp((a), (b), ph__n) != 0) {                                   \
            PH_FAIL_HERE("CHECK_MEM(%s, %s, %zu): bytes differ", #a, #b, ph__n); \
            return;                                                           \
        }                                                                     \
    } while (0)

/* Mark the running test as skipped, with the reason, and leave it. */
#define SKIP(reason)                                                          \
    do {                                                                      \
        ph__cur_failed = -1;                                                  \
        printf("  skipped: %s\n", (reason));                                  \
        return;                                                               \
    } while (0)

/* Run one test, fn, under name; PH_RUN(fn) names it after the function. */
static inline void ph_run(const char *name, void (*fn)(void))
{
    ph__cur_failed = 0;
    printf("- %s\n", name);
    fflush(stdout);
    fn();
    if (ph__cur_failed > 0) {
        ph__failed++;
        printf("  FAILED: %s\n", name);
    } else if (ph__cur_failed < 0) {
        ph__skipped++;
    } else {
        ph__passed++;
    }
    fflush(stdout);
}

#define PH_RUN(fn) ph_run(#fn, (fn))

/* PH_RUN for tests that inject allocation failures (ph_alloc_fail_after,
 * common/platform.h, which the test includes). Injection is process-wide:
 * a test that fails a CHECK while it is on would starve every later test,
 * so it is turned off before and after each. */
#define PH_RUN_ALLOC_RESET(fn)                                                \
    do {                                                                      \
        ph_alloc_fail_after(-1);                                              \
        PH_RUN(fn);                                                           \
        ph_alloc_fail_after(-1);                                              \
    } while (0)

static inline int ph_test_summary(void)
{
    printf("%d passed, %d failed, %d skipped\n", ph__passed, ph__failed,
           ph__skipped);
    return ph__failed ? 1 : 0;
}

#endif
