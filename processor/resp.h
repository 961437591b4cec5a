/* SPDX-License-Identifier: Apache-2.0 */
/* resp: a command's arguments framed as RESP for writev, big arguments left in place. */
#ifndef TP_RESP_H
#define TP_RESP_H

#include <stddef.h>
#include <sys/uio.h>

/* The encoding of one command: iov[0 .. n) in order is the command as
 * RESP ("*ARGC", then "$LEN" and the bytes of each argument), the same
 * binary-safe bytes hiredis's redisFormatCommandArgv produces. The framing
 * and the small arguments are copied into buf; an argument of at least the
 * in_place size is a segment of its own pointing at the caller's bytes.
 * Both arrays are kept from command to command. */
struct resp {
    struct iovec *iov;
    size_t n, cap;
    char *buf;
    size_t buf_cap;
};

void resp_init(struct resp *r);
void resp_release(struct resp *r);

/* Encodes argc arguments (argv[i], lens[i] bytes each; borrowed, and must
 * stay unchanged until r's segments are written). Returns 0, or -1 when out
 * of memory (r then holds no command). */
int resp_encode(struct resp *r, size_t argc, const char *const *argv,
                const size_t *lens, size_t in_place);

/* Drops the first bytes of the encoding (written already): whole segments
 * go, a partly written one is cut. bytes must not pass the end. */
void resp_advance(struct resp *r, size_t bytes);

#endif
