/* SPDX-License-Identifier: Apache-2.0 */
/* scan: a single-pass, allocation-free validating decoder of one touchpoint event, the fast twin of event_parse(). */
#ifndef TP_SCAN_H
#define TP_SCAN_H

#include <stddef.h>

#include "event.h"

/* Parses and fully validates one message of len bytes (not NUL-terminated;
 * buf is borrowed and only buf[0..len) is read) exactly as event_parse()
 * does: the same accept/reject decision, the same err->reason and
 * err->field, and the same values in *ev — on success and, field by field,
 * on failure too (event_parse fills *ev in contract order up to the first
 * error). Only err->text may be worded differently for not_json.
 *
 * The JSON accepted is jansson 2.14's json_loadb(JSON_DECODE_ANY): RFC 8259
 * with strict UTF-8, no \u0000 and no unpaired surrogate escapes, integers
 * within int64 (an integer is a number without '.', 'e' or 'E'), reals that
 * do not overflow a double, at most 2048 levels of nested values; with
 * duplicate keys the last one wins.
 *
 * One deliberate difference: a NUL byte anywhere is not_json here, while
 * jansson 2.14 skips one NUL right after a number or true/false/null (a
 * jansson bug, reported; tests/fuzz/fuzz_event_diff.c applies the same rule
 * to the reference until event.c does).
 *
 * Returns 0 and fills *ev, or -1 and fills *err. Never allocates. */
int scan_event(const char *buf, size_t len, size_t max_bytes, struct event *ev,
               struct event_error *err);

#endif
