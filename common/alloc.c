#include "platform.h"

#include <stdlib.h>

/* Not atomic: injection is only used by single-threaded unit tests. */
static long fail_after = -1;

static int should_fail(void)
{
    if (fail_after < 0)
        return 0;
    if (fail_after == 0)
        return 1;
    fail_after--;
    return 0;
}

void ph_alloc_fail_after(long n) { fail_after = n; }

void *ph_alloc(size_t size) { return should_fail() ? NULL : malloc(size); }

void *ph_realloc(void *ptr, size_t size)
{
    return should_fail() ? NULL : realloc(ptr, size);
}

void ph_free(void *ptr) { free(ptr); }
