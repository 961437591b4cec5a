/* SPDX-License-Identifier: Apache-2.0 */
/* mem: growing arrays, and advice to the kernel about big ones (huge pages, faulting pages in ahead of use). */
#ifndef TP_MEM_H
#define TP_MEM_H

#include <stddef.h>

/* For an array of bytes at p probed at random (a big hash index): with 4 KiB
 * pages nearly every lookup also misses the TLB, so from 4 MiB on the whole
 * 2 MiB pages inside it are asked to be transparent huge pages, where the
 * kernel allows it (THP "madvise" mode). Give it before the first fault.
 * Also for an array that becomes resident whole anyway (dedupe's ring): one
 * page fault per 2 MiB instead of 512. */
void mem_ask_huge(void *p, size_t bytes);

/* Has the kernel fault in the whole pages inside [p, p + bytes) as if they
 * were written, contents unchanged, so another thread may be using them.
 * Does nothing where the kernel lacks MADV_POPULATE_WRITE (Linux < 5.14). */
void mem_populate(const void *p, size_t bytes);

/* Makes the array *arr (realloc'd, *cap elements of elem bytes) hold at
 * least need elements, doubling its capacity from 16. Returns 0, or -1 when
 * out of memory (*arr and *cap unchanged). */
int mem_grow(void **arr, size_t *cap, size_t need, size_t elem);

#endif
