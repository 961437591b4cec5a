/* SPDX-License-Identifier: Apache-2.0 */
/* gen_bad: tpgen's malformed messages, one kind per rejection class. */
#ifndef TP_GEN_BAD_H
#define TP_GEN_BAD_H

#include <stddef.h>
#include <stdint.h>

#include "gen.h"

/* Smallest buffer gen_bad_render needs (the too_large class is ~70 KB). */
#define GEN_BAD_MIN_SIZE (72 * 1024)

/* Where the malformed messages pretend to come from; all borrowed. */
struct gen_bad_ctx {
    const char *run;    /* run tag used in ids: "x-<run>-<k>" */
    const char *tenant; /* plausible dimensions for the fields left intact */
    const char *channel;
    const char *queue;
    int64_t stamp_ms; /* occurred_at of the fields left intact */
};

/* Class of the k-th malformed message: k cycles through the classes. */
enum gen_invalid_class gen_bad_class(uint64_t k);

/* Renders the k-th malformed message (class gen_bad_class(k), variant
 * k / GEN_BAD_CLASS_COUNT among the class's) into buf (size >=
 * GEN_BAD_MIN_SIZE) and its key into key (key_size >= 64); never a newline.
 * Returns the message length and sets *key_len. */
size_t gen_bad_render(uint64_t k, const struct gen_bad_ctx *ctx, char *buf,
                      size_t size, char *key, size_t key_size, size_t *key_len);

#endif
