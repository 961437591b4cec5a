/* SPDX-License-Identifier: Apache-2.0 */
/* mem: growing arrays, and advice to the kernel about big ones (huge pages, faulting pages in ahead of use). */
/* madvise and its MADV_HUGEPAGE and MADV_POPULATE_WRITE are Linux
 * extensions. */
#define _DEFAULT_SOURCE
#include "mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_BYTES ((size_t)4 << 20)
#define HUGE_PAGE ((uintptr_t)2 << 20)

/* madvise over the whole units (a power of two) inside [p, p + bytes). */
static void advise_units(const void *p, size_t bytes, uintptr_t unit,
                         int advice)
{
    uintptr_t lo = ((uintptr_t)p + unit - 1) & ~(unit - 1);
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(unit - 1);

    if (p != NULL && hi > lo) {
        (void)madvise((void *)lo, hi - lo, advice);
    }
}

void mem_ask_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_BYTES) {
        advise_units(p, bytes, HUGE_PAGE, MADV_HUGEPAGE);
    }
#else
    (void)p;
    (void)bytes;
#endif
}

void mem_populate(const void *p, size_t bytes)
{
#ifdef MADV_POPULATE_WRITE
    advise_units(p, bytes, (uintptr_t)sysconf(_SC_PAGESIZE),
                 MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)bytes;
#endif
}

int mem_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    size_t ncap = *cap ? *cap : 16;
    void *p;

    if (need <= *cap) {
        return 0;
    }
    while (ncap < need) {
        ncap *= 2;
    }
    p = realloc(*arr, ncap * elem);
    if (p == NULL) {
        return -1;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}
