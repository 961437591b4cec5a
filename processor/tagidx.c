/* SPDX-License-Identifier: Apache-2.0 */
/* tagidx: a hash index of 8-byte slots over records kept elsewhere (open correlations, remembered event ids). */
/* MAP_ANONYMOUS is not POSIX. */
#define _DEFAULT_SOURCE
#include "tagidx.h"

#include <sys/mman.h>

#include "mem.h"

#define MIN_SLOTS 512 /* one page of slots */

size_t tagidx_slots(const struct tagidx *x)
{
    return x->slots ? (size_t)x->mask + 1 : 0;
}

static void place_tag(struct tagidx_slot *slots, uint32_t mask, uint32_t tag,
                      uint32_t ref)
{
    uint32_t i = tag & mask;

    while (slots[i].ref != 0) {
        i = (i + 1) & mask;
    }
    slots[i] = (struct tagidx_slot){tag, ref};
}

/* Moves the index into a fresh mapping of n slots (a power of two, more
 * than the keys held). */
static int resize(struct tagidx *x, size_t n)
{
    size_t bytes = n * sizeof(struct tagidx_slot), old = tagidx_slots(x);
    struct tagidx_slot *s;

    if (n == 0 || n > (size_t)UINT32_MAX + 1 || (n & (n - 1)) != 0) {
        return -1;
    }
    s = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (s == MAP_FAILED) {
        return -1;
    }
    mem_ask_huge(s, bytes);
    for (size_t i = 0; i < old; i++) {
        if (x->slots[i].ref != 0) {
            place_tag(s, (uint32_t)(n - 1), x->slots[i].tag, x->slots[i].ref);
        }
    }
    tagidx_release(x);
    x->slots = s;
    x->mask = (uint32_t)(n - 1);
    return 0;
}

int tagidx_reserve(struct tagidx *x, size_t n)
{
    size_t slots = tagidx_slots(x);

    if (n * 10 <= slots * 7) {
        return 0;
    }
    slots = MIN_SLOTS;
    while (slots * 7 < n * 10) {
        slots *= 2;
    }
    return resize(x, slots);
}

void tagidx_release(struct tagidx *x)
{
    if (x->slots != NULL) {
        munmap(x->slots, tagidx_slots(x) * sizeof(*x->slots));
    }
    x->slots = NULL;
    x->mask = 0;
}

void tagidx_place(struct tagidx *x, uint64_t key, uint32_t pos)
{
    place_tag(x->slots, x->mask, tagidx_tag(key), pos + 1);
}

void tagidx_remove(struct tagidx *x, uint32_t i)
{
    uint32_t mask = x->mask, h = i;

    /* Backward shift: pull later members of the probe run into the hole. */
    for (uint32_t j = (h + 1) & mask; x->slots[j].ref != 0;
         j = (j + 1) & mask) {
        uint32_t home = x->slots[j].tag & mask;
        if (((j - home) & mask) >= ((j - h) & mask)) {
            x->slots[h] = x->slots[j];
            h = j;
        }
    }
    x->slots[h].ref = 0;
}

void tagidx_prefetch(const struct tagidx *x, uint64_t key)
{
    if (x->slots != NULL) {
        __builtin_prefetch(&x->slots[tagidx_tag(key) & x->mask]);
    }
}
