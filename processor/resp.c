/* SPDX-License-Identifier: Apache-2.0 */
/* resp: a command's arguments framed as RESP for writev, big arguments left in place. */
#include "resp.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

/* "$" or "*", a size_t in decimal, "\r\n" */
#define FRAME_BYTES 24

void resp_init(struct resp *r)
{
    memset(r, 0, sizeof(*r));
}

void resp_release(struct resp *r)
{
    free(r->iov);
    free(r->buf);
    resp_init(r);
}

static char *put_frame(char *o, char lead, size_t n)
{
    char tmp[FRAME_BYTES];
    size_t k = 0;

    *o++ = lead;
    do {
        tmp[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    while (k > 0) {
        *o++ = tmp[--k];
    }
    *o++ = '\r';
    *o++ = '\n';
    return o;
}

static void add_segment(struct resp *r, const char *p, size_t len)
{
    r->iov[r->n++] = (struct iovec){.iov_base = (void *)p, .iov_len = len};
}

int resp_encode(struct resp *r, size_t argc, const char *const *argv,
                const size_t *lens, size_t in_place)
{
    size_t need = FRAME_BYTES, segments = 1;
    const char *seg;
    char *o;

    r->n = 0;
    for (size_t i = 0; i < argc; i++) {
        need += FRAME_BYTES + 2;
        if (lens[i] >= in_place) {
            segments += 2;
        } else {
            need += lens[i];
        }
    }
    if (mem_grow((void **)&r->buf, &r->buf_cap, need, 1) < 0 ||
        mem_grow((void **)&r->iov, &r->cap, segments, sizeof(*r->iov)) < 0) {
        return -1;
    }
    o = put_frame(r->buf, '*', argc);
    seg = r->buf;
    for (size_t i = 0; i < argc; i++) {
        o = put_frame(o, '$', lens[i]);
        if (lens[i] >= in_place) {
            add_segment(r, seg, (size_t)(o - seg));
            add_segment(r, argv[i], lens[i]);
            seg = o;
        } else {
            memcpy(o, argv[i], lens[i]);
            o += lens[i];
        }
        *o++ = '\r';
        *o++ = '\n';
    }
    add_segment(r, seg, (size_t)(o - seg));
    return 0;
}

void resp_advance(struct resp *r, size_t bytes)
{
    size_t gone = 0;

    while (gone < r->n && bytes >= r->iov[gone].iov_len) {
        bytes -= r->iov[gone++].iov_len;
    }
    memmove(r->iov, r->iov + gone, (r->n - gone) * sizeof(*r->iov));
    r->n -= gone;
    if (r->n > 0) {
        r->iov[0].iov_base = (char *)r->iov[0].iov_base + bytes;
        r->iov[0].iov_len -= bytes;
    }
}
