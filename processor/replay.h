/* SPDX-License-Identifier: Apache-2.0 */
/* replay: feeds newline-delimited JSON through the same pipeline, on event time. */
#ifndef TP_REPLAY_H
#define TP_REPLAY_H

#include <signal.h>
#include <stdio.h>

#include "engine.h"

/* Reads in (borrowed) line by line into the engine (made with event_clock),
 * flushing as `run` does, then flushes the rest and slides every window to
 * the final clock. name labels the input in logs. Returns 0, or -1 when
 * Redis could not be written (after retries) or stop was raised. */
int replay_stream(struct engine *e, FILE *in, const char *name,
                  volatile sig_atomic_t *stop);

#endif
