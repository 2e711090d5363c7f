/* What the portable core asks of its host. No system headers beyond libc.
 *
 * All core allocations go through ph_alloc/ph_realloc/ph_free so that tests
 * can inject allocation failure (ph_alloc_fail_after). */
#ifndef PH_PLATFORM_H
#define PH_PLATFORM_H

#include <stddef.h>

void *ph_alloc(size_t size);
void *ph_realloc(void *ptr, size_t size);
void ph_free(void *ptr);

/* Test hook: after n more successful allocations every allocation fails;
 * a negative n turns injection off (the default). */
void ph_alloc_fail_after(long n);

#endif
