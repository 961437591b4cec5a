/* SPDX-License-Identifier: Apache-2.0 */
/* store: the Redis side — connection, the atomic flush of a batch with its offsets, the clock tick, offsets read-back. */
#include "store.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "resp.h"
#include "sketch.h"
#include "tstamp.h"
#include "u64map.h"

/* The server-side script, generated from processor/flush.lua
 * (NUL-terminated). */
static const unsigned char flush_lua_bytes[] = {
#include "flush_lua.h"
};
#define flush_lua ((const char *)flush_lua_bytes)

/* Rows per EVALSHA: keeps one script call short (Redis is single-threaded)
 * while the whole flush stays one MULTI/EXEC. */
#define ARGS_PER_CALL 20000

/* Bytes of commands hiredis may hold before they are written out. Writing
 * as the transaction is built keeps its output buffer to about one command
 * instead of the whole flush (a copy of every correlation log). */
#define WRITE_AHEAD_BYTES (1u << 20)

/* A command whose arguments reach this size (a chunk of a correlation log,
 * a big apply) is written to the socket by write_direct, not by hiredis:
 * hiredis would copy it twice (into a formatted command, then into its
 * output buffer) and free that buffer after every write, so each megabyte
 * came back as fresh pages for the kernel to zero. In a 2 M event `run` that
 * was about 13,000 page faults of the consumer thread. */
#define DIRECT_BYTES (64u << 10)
/* Arguments from this size on are written from args' buffer in place; the
 * rest of the command is encoded into the store's own buffer. */
#define DIRECT_ARG_BYTES 4096
/* Segments per writev: the least IOV_MAX POSIX allows (_XOPEN_IOV_MAX). */
#define WRITEV_SEGMENTS 16

/* Command arguments, stored back to back in one buffer: no allocation per
 * argument, and every argument travels as a binary-safe argv entry (event
 * data is never formatted into a command string). */
struct args {
    char *buf;
    size_t len, cap;
    size_t *off, *lens;
    const char **ptrs;
    size_t n, cap_n;
    int oom;
};

struct store {
    const struct config *cfg;
    struct store_url url;
    redisContext *ctx;
    char sha[41];
    struct args a;
    size_t unwritten; /* bytes of arguments appended since the last write */
    struct store_stats stats;
    int64_t deadline_mono; /* 0, or no call may outlast it (shutdown) */
    char instance[17];     /* this process's name in flush batch keys */
    bool connected_once;   /* a connection was made: later ones reconnect */
    struct store_tx {   /* the flush transaction in flight */
        bool open;
        size_t expect, got; /* replies */
        int rc;
        char err[512];
        int64_t deadline_mono;
    } tx;
    struct resp resp; /* write_direct's encoding, kept between commands */
};

/* ---- URL ---- */

static int url_error(char *errstr, size_t size, const char *url,
                     const char *why)
{
    snprintf(errstr, size, "redis url \"%s\": %s", url, why);
    return -1;
}

/* Splits "[user[:pass]@]" off the front of rest. */
static int parse_userinfo(const char **rest, struct store_url *u)
{
    const char *at = strrchr(*rest, '@');
    const char *colon;
    size_t ulen, plen;

    if (at == NULL) {
        return 0;
    }
    colon = memchr(*rest, ':', (size_t)(at - *rest));
    ulen = (size_t)((colon ? colon : at) - *rest);
    plen = colon ? (size_t)(at - colon - 1) : 0;
    if (ulen >= sizeof(u->user) || plen >= sizeof(u->pass)) {
        return -1;
    }
    memcpy(u->user, *rest, ulen);
    u->user[ulen] = '\0';
    if (colon != NULL) {
        memcpy(u->pass, colon + 1, plen);
        u->pass[plen] = '\0';
    }
    *rest = at + 1;
    return 0;
}

int store_parse_url(const char *url, struct store_url *u, char *errstr,
                    size_t errstr_size)
{
    const char *rest, *colon, *slash;
    char *end;
    size_t hlen;
    long v;

    memset(u, 0, sizeof(*u));
    if (strncmp(url, "redis://", 8) != 0) {
        return url_error(errstr, errstr_size, url,
                         "expected redis://[user[:pass]@]host:port[/db]");
    }
    rest = url + 8;
    if (parse_userinfo(&rest, u) < 0) {
        return url_error(errstr, errstr_size, url, "user or password too long");
    }
    colon = strrchr(rest, ':');
    slash = strchr(rest, '/');
    if (colon == NULL || (slash != NULL && colon > slash)) {
        return url_error(errstr, errstr_size, url, "expected host:port");
    }
    hlen = (size_t)(colon - rest);
    if (hlen == 0 || hlen >= sizeof(u->host)) {
        return url_error(errstr, errstr_size, url, "bad host");
    }
    memcpy(u->host, rest, hlen);
    v = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || v < 1 || v > 65535 || (*end != '\0' && *end != '/')) {
        return url_error(errstr, errstr_size, url, "port must be 1..65535");
    }
    u->port = (int)v;
    if (*end == '/' && end[1] != '\0') {
        const char *db = end + 1;
        v = strtol(db, &end, 10);
        if (end == db || *end != '\0' || v < 0 || v > 1000000) {
            return url_error(errstr, errstr_size, url,
                             "database must be a number");
        }
        u->db = (int)v;
    }
    return 0;
}

/* ---- argument buffer ---- */

static void args_reset(struct args *a)
{
    a->len = 0;
    a->n = 0;
    a->oom = 0;
}

static void args_release(struct args *a)
{
    free(a->buf);
    free(a->off);
    free(a->lens);
    free(a->ptrs);
    memset(a, 0, sizeof(*a));
}

static int args_reserve(struct args *a, size_t bytes)
{
    if (a->n == a->cap_n) {
        size_t ncap = a->cap_n ? a->cap_n * 2 : 256;
        size_t *off = realloc(a->off, ncap * sizeof(*off));
        size_t *lens = off ? realloc(a->lens, ncap * sizeof(*lens)) : NULL;
        if (off) {
            a->off = off;
        }
        if (lens == NULL) {
            return -1;
        }
        a->lens = lens;
        a->cap_n = ncap;
    }
    if (a->len + bytes > a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 4096;
        char *buf;
        while (ncap < a->len + bytes) {
            ncap *= 2;
        }
        buf = realloc(a->buf, ncap);
        if (buf == NULL) {
            return -1;
        }
        a->buf = buf;
        a->cap = ncap;
    }
    return 0;
}

/* Appends one argument; errors are sticky in a->oom. Returns its index. */
static size_t args_add(struct args *a, const char *s, size_t n)
{
    if (a->oom || args_reserve(a, n) < 0) {
        a->oom = 1;
        return 0;
    }
    memcpy(a->buf + a->len, s, n);
    a->off[a->n] = a->len;
    a->lens[a->n] = n;
    a->len += n;
    return a->n++;
}

static size_t args_str(struct args *a, const char *s)
{
    return args_add(a, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static size_t args_fmt(struct args *a, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    return args_add(a, tmp, (size_t)n);
}

static size_t args_i64(struct args *a, int64_t v)
{
    return args_fmt(a, "%lld", (long long)v);
}

/* Rewrites argument idx (a count known only later). */
static void args_set_i64(struct args *a, size_t idx, int64_t v)
{
    size_t tmp = args_i64(a, v);

    if (!a->oom) {
        a->off[idx] = a->off[tmp];
        a->lens[idx] = a->lens[tmp];
        a->n--;
    }
}

/* Writes the commands hiredis holds to the socket. Returns 0, or -1 with
 * ctx->err REDIS_ERR_IO and ctx->errstr saying why. */
static int write_out(struct store *s)
{
    int done = 0;

    while (!done) {
        if (redisBufferWrite(s->ctx, &done) != REDIS_OK) {
            return -1;
        }
    }
    s->unwritten = 0;
    return 0;
}

/* Marks the connection failed the way hiredis does (REDIS_ERR_IO). */
static int write_failed(struct store *s, int err)
{
    s->ctx->err = REDIS_ERR_IO;
    snprintf(s->ctx->errstr, sizeof(s->ctx->errstr), "%s", strerror(err));
    return -1;
}

/* Writes the command in a to the socket after what hiredis holds, in the
 * encoding hiredis would give it (resp.h). Returns 0, or -1 with ctx->err
 * REDIS_ERR_IO as write_out. */
static int write_direct(struct store *s, const struct args *a)
{
    struct resp *r = &s->resp;

    if (write_out(s) < 0) {
        return -1;
    }
    if (resp_encode(r, a->n, a->ptrs, a->lens, DIRECT_ARG_BYTES) < 0) {
        return write_failed(s, ENOMEM);
    }
    while (r->n > 0) {
        int cnt = (int)(r->n < WRITEV_SEGMENTS ? r->n : WRITEV_SEGMENTS);
        ssize_t w = writev(s->ctx->fd, r->iov, cnt);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return write_failed(s, errno);
        }
        resp_advance(r, (size_t)w);
    }
    return 0;
}

static int args_send(struct store *s, struct args *a)
{
    const char **ptrs;

    if (a->oom) {
        return -1;
    }
    ptrs = realloc(a->ptrs, a->n * sizeof(*ptrs));
    if (ptrs == NULL) {
        return -1;
    }
    a->ptrs = ptrs;
    for (size_t i = 0; i < a->n; i++) {
        ptrs[i] = a->buf + a->off[i];
    }
    s->stats.commands++;
    if (a->len >= DIRECT_BYTES) {
        return write_direct(s, a);
    }
    if (redisAppendCommandArgv(s->ctx, (int)a->n, ptrs, a->lens) !=
        REDIS_OK) {
        return -1;
    }
    s->unwritten += a->len;
    return s->unwritten >= WRITE_AHEAD_BYTES ? write_out(s) : 0;
}

/* ---- connection ---- */

/* 16 random hex digits (the kernel's; time and pid if it has none): two
 * processes sharing a batch key would take each other's flush for their
 * own. */
static void name_instance(char *out, size_t size)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");

    if (f == NULL || fread(&v, sizeof(v), 1, f) != 1) {
        v = ((uint64_t)getpid() << 40) ^ (uint64_t)tstamp_now_ms() ^
            (uint64_t)tstamp_mono_ms() << 20;
    }
    if (f != NULL) {
        fclose(f);
    }
    snprintf(out, size, "%016llx", (unsigned long long)v);
}

struct store *store_new(const struct config *cfg, char *errstr,
                        size_t errstr_size)
{
    struct store *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    resp_init(&s->resp);
    s->cfg = cfg;
    name_instance(s->instance, sizeof(s->instance));
    if (store_parse_url(cfg->redis_url, &s->url, errstr, errstr_size) < 0) {
        free(s);
        return NULL;
    }
    if (cfg->redis_password[0] != '\0') {
        snprintf(s->url.pass, sizeof(s->url.pass), "%s", cfg->redis_password);
    }
    return s;
}

static void disconnect(struct store *s)
{
    s->tx.open = false; /* a transaction in flight is lost with it */
    s->unwritten = 0;
    if (s->ctx != NULL) {
        redisFree(s->ctx);
        s->ctx = NULL;
    }
}

void store_destroy(struct store *s)
{
    if (s == NULL) {
        return;
    }
    disconnect(s);
    args_release(&s->a);
    resp_release(&s->resp);
    free(s);
}

/* Runs one command and checks its reply is not an error. */
static int simple(struct store *s, int argc, const char **argv,
                  redisReply **out, char *errstr, size_t errstr_size)
{
    redisReply *r = redisCommandArgv(s->ctx, argc, argv, NULL);

    s->stats.commands++;
    if (r == NULL) {
        snprintf(errstr, errstr_size, "redis %s:%d: %s: %s", s->url.host,
                 s->url.port, argv[0], s->ctx->errstr);
        disconnect(s);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "redis %s: %s", argv[0], r->str);
        freeReplyObject(r);
        return -1;
    }
    if (out != NULL) {
        *out = r;
    } else {
        freeReplyObject(r);
    }
    return 0;
}

static int handshake(struct store *s, char *errstr, size_t errstr_size)
{
    char db[16];
    redisReply *r;

    if (s->url.pass[0] != '\0') {
        const char *auth[] = {"AUTH", s->url.user, s->url.pass};
        int argc = s->url.user[0] ? 3 : 2;
        if (argc == 2) {
            auth[1] = s->url.pass;
        }
        if (simple(s, argc, auth, NULL, errstr, errstr_size) < 0) {
            return -1;
        }
    }
    snprintf(db, sizeof(db), "%d", s->url.db);
    if (simple(s, 2, (const char *[]){"SELECT", db}, NULL, errstr,
               errstr_size) < 0 ||
        simple(s, 3, (const char *[]){"SCRIPT", "LOAD", flush_lua}, &r,
               errstr, errstr_size) < 0) {
        if (strstr(errstr, "compiling") != NULL) { /* the #!lua line */
            size_t n = strlen(errstr);
            snprintf(errstr + n, errstr_size - n,
                     " (touchpointd needs Redis 7.0 or later)");
        }
        return -1;
    }
    snprintf(s->sha, sizeof(s->sha), "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return 0;
}

/* The connect and command timeout in force: redis.timeout, or what is left
 * before the deadline when that is less. */
static int64_t timeout_ms(const struct store *s)
{
    int64_t ms = s->cfg->redis_timeout_ms;

    if (s->deadline_mono > 0) {
        int64_t left = s->deadline_mono - tstamp_mono_ms();
        if (left < ms) {
            ms = left < 1 ? 1 : left;
        }
    }
    return ms;
}

static struct timeval timeout_tv(const struct store *s)
{
    int64_t ms = timeout_ms(s);

    return (struct timeval){(time_t)(ms / 1000),
                            (suseconds_t)(ms % 1000) * 1000};
}

void store_set_deadline(struct store *s, int64_t deadline_mono)
{
    s->deadline_mono = deadline_mono;
    if (s->tx.open && deadline_mono > 0 &&
        deadline_mono < s->tx.deadline_mono) {
        s->tx.deadline_mono = deadline_mono; /* the flush in flight too */
    }
    if (s->ctx != NULL) {
        redisSetTimeout(s->ctx, timeout_tv(s));
    }
}

int store_connect(struct store *s, char *errstr, size_t errstr_size)
{
    struct timeval tv = timeout_tv(s);

    if (s->deadline_mono > 0 && tstamp_mono_ms() >= s->deadline_mono) {
        snprintf(errstr, errstr_size,
                 "redis %s:%d: the shutdown deadline has passed", s->url.host,
                 s->url.port);
        s->stats.errors++;
        return -1;
    }
    if (s->ctx != NULL) {
        if (s->deadline_mono > 0) { /* what is left shrinks call by call */
            redisSetTimeout(s->ctx, tv);
        }
        return 0;
    }
    s->ctx = redisConnectWithTimeout(s->url.host, s->url.port, tv);
    if (s->ctx == NULL || s->ctx->err) {
        snprintf(errstr, errstr_size, "redis %s:%d: cannot connect: %s",
                 s->url.host, s->url.port,
                 s->ctx ? s->ctx->errstr : "out of memory");
        disconnect(s);
        s->stats.errors++;
        return -1;
    }
    redisSetTimeout(s->ctx, tv);
    if (handshake(s, errstr, errstr_size) < 0) {
        disconnect(s);
        s->stats.errors++;
        return -1;
    }
    s->stats.reconnects += s->connected_once; /* failed tries are errors */
    s->connected_once = true;
    return 0;
}

/* ---- flush ---- */

static void begin_script(struct store *s, struct args *a, const char *op)
{
    args_reset(a);
    args_str(a, "EVALSHA");
    args_str(a, s->sha);
    args_str(a, "0");
    args_str(a, op);
    args_str(a, s->cfg->prefix);
}

/* clock wall res retention [slide] nwin {name ms}* */
static void add_timing(struct store *s, struct args *a, int64_t clock,
                       int64_t wall, int slide)
{
    args_i64(a, clock);
    args_i64(a, wall);
    args_i64(a, s->cfg->bucket_ms);
    args_i64(a, s->cfg->retention_ms);
    if (slide >= 0) {
        args_i64(a, slide);
    }
    args_i64(a, (int64_t)s->cfg->n_windows);
    for (size_t i = 0; i < s->cfg->n_windows; i++) {
        args_str(a, s->cfg->windows[i].name);
        args_i64(a, s->cfg->windows[i].ms);
    }
}

struct bin_ctx {
    struct args *a;
    char prefix;
    int64_t n;
};

static void add_bin(int index, uint64_t count, void *arg)
{
    struct bin_ctx *b = arg;

    if (index == SKETCH_ZERO_BIN) {
        args_fmt(b->a, "%c:z", b->prefix);
    } else {
        args_fmt(b->a, "%c:%d", b->prefix, index);
    }
    args_i64(b->a, (int64_t)count);
    b->n++;
}

/* start nf {field value}* of one cell. */
static void add_cell(struct args *a, const struct agg_cell *c)
{
    struct bin_ctx wb = {a, 'w', 0}, tb = {a, 't', 0};
    size_t nf_idx;
    int64_t nf = 0;

    args_i64(a, c->bucket_ms);
    nf_idx = args_i64(a, 0);
    for (int f = 0; f < AGG_NFIELDS; f++) {
        if (c->f[f] != 0) {
            args_str(a, agg_field_name((enum agg_field)f));
            args_i64(a, c->f[f]);
            nf++;
        }
    }
    sketch_foreach(&c->wait, add_bin, &wb);
    sketch_foreach(&c->ttr, add_bin, &tb);
    args_set_i64(a, nf_idx, nf + wb.n + tb.n);
}

/* Appends the apply commands of all rows, chunked. */
static int append_apply(struct store *s, const struct flush_batch *b,
                        int64_t wall_ms)
{
    struct args *a = &s->a;
    struct agg *cells = b->cells;
    size_t i = 0, n = agg_count(cells), nrows_idx = 0;
    int64_t nrows = 0;

    while (i < n) {
        const struct agg_cell *first = agg_at(cells, i);
        const struct dim *row = dims_get(b->dims, (int)first->tenant,
                                         (int)first->dim);
        size_t j, nb_idx;
        if (nrows == 0) {
            begin_script(s, a, "apply");
            add_timing(s, a, b->clock_ms, wall_ms, -1);
            nrows_idx = args_i64(a, 0);
        }
        args_str(a, dims_tenant_name(b->dims, (int)first->tenant));
        args_str(a, row->channel);
        args_str(a, row->queue);
        args_str(a, row->leaf ? "1" : "0");
        nb_idx = args_i64(a, 0);
        for (j = i; j < n && agg_at(cells, j)->tenant == first->tenant &&
                    agg_at(cells, j)->dim == first->dim;
             j++) {
            add_cell(a, agg_at(cells, j));
        }
        args_set_i64(a, nb_idx, (int64_t)(j - i));
        nrows++;
        i = j;
        if (a->n >= ARGS_PER_CALL || i == n) {
            args_set_i64(a, nrows_idx, nrows);
            if (args_send(s, a) < 0) {
                return -1;
            }
            nrows = 0;
        }
    }
    return 0;
}

static void add_row_names(struct args *a, const struct flush_batch *b,
                          uint32_t tenant, uint32_t dim)
{
    const struct dim *row = dims_get(b->dims, (int)tenant, (int)dim);

    args_str(a, dims_tenant_name(b->dims, (int)tenant));
    args_str(a, row->channel);
    args_str(a, row->queue);
}

void store_offsets_key(const struct store *s, const char *group, char *buf,
                       size_t size)
{
    snprintf(buf, size, "%s:offsets:%s", s->cfg->prefix, group);
}

static void corr_prefix(const struct store *s, const char *group, char *buf,
                        size_t size)
{
    snprintf(buf, size, "%s:corr:%s:", s->cfg->prefix, group);
}

/* offkey n {member [start] next}*: the partitions a flush covers (offkey
 * "" and n 0 without a group); without start (the offsets to record) only
 * those with one (next >= 0). */
static void add_offsets(struct store *s, struct args *a,
                        const struct store_offset *offsets, size_t n_off,
                        const char *group, bool with_start)
{
    char key[512];
    size_t n = 0;

    if (group == NULL) {
        args_str(a, "");
        args_i64(a, 0);
        return;
    }
    for (size_t i = 0; i < n_off; i++) {
        n += with_start || offsets[i].next >= 0;
    }
    store_offsets_key(s, group, key, sizeof(key));
    args_str(a, key);
    args_i64(a, (int64_t)n);
    for (size_t i = 0; i < n_off; i++) {
        if (!with_start && offsets[i].next < 0) {
            continue;
        }
        args_str(a, offsets[i].member);
        if (with_start) {
            args_i64(a, offsets[i].start);
        }
        args_i64(a, offsets[i].next);
    }
}

/* Bytes of one element of a correlation log (whole lines; a longer line
 * gets an element of its own). */
#define CORR_CHUNK (1u << 20)

/* corr prefix key reset chunk: one partition's correlation log, the text cut
 * at line ends into chunks of about CORR_CHUNK bytes, a command each (only
 * the first one resets). With the write-ahead, a log of any size costs
 * about three chunks of memory beyond its text. */
static int append_corr_log(struct store *s, const struct corr_log *l,
                           const char *key)
{
    struct args *a = &s->a;
    const char *p = l->text, *end = l->text + l->len;
    bool first = true;

    while (first || p < end) {
        const char *cut = p + CORR_CHUNK < end ? p + CORR_CHUNK : end;
        while (cut < end && cut[-1] != '\n') {
            cut++;
        }
        begin_script(s, a, "corr");
        args_str(a, key);
        args_str(a, first && l->reset ? "1" : "0");
        if (p < end) {
            args_add(a, p, (size_t)(cut - p));
        }
        p = cut;
        if (args_send(s, a) < 0) {
            return -1;
        }
        first = false;
    }
    return 0;
}

static int append_corr(struct store *s, const struct flush_batch *b,
                       const char *group)
{
    char prefix[512], key[1024];

    if (group == NULL) {
        return 0;
    }
    corr_prefix(s, group, prefix, sizeof(prefix));
    for (size_t i = 0; i < b->n_corr; i++) {
        snprintf(key, sizeof(key), "%s%s", prefix, b->corr[i].member);
        if (append_corr_log(s, &b->corr[i], key) < 0) {
            return -1;
        }
    }
    return 0;
}

/* batchkey batch: where live records the flush's batch and the guard looks
 * for it ("" 0 without a group). */
static void add_batch(struct store *s, struct args *a, const char *group,
                      uint64_t batch)
{
    char key[600];

    if (group == NULL) {
        args_str(a, "");
        args_i64(a, 0);
        return;
    }
    snprintf(key, sizeof(key), "%s:flushed:%s:%s", s->cfg->prefix, group,
             s->instance);
    args_str(a, key);
    args_i64(a, (int64_t)batch);
}

static int append_live(struct store *s, const struct flush_batch *b,
                       const struct store_offset *offsets, size_t n_off,
                       const char *group, uint64_t batch)
{
    struct args *a = &s->a;

    begin_script(s, a, "live");
    args_i64(a, b->clock_ms);
    args_i64(a, (int64_t)b->n_live);
    for (size_t i = 0; i < b->n_live; i++) {
        const struct live_delta *d = &b->live[i];
        add_row_names(a, b, d->tenant, d->dim);
        args_i64(a, d->open_tickets);
        args_i64(a, d->waiting_dms);
        args_i64(a, d->waiting_calls);
    }
    args_i64(a, (int64_t)b->n_oldest);
    for (size_t i = 0; i < b->n_oldest; i++) {
        const struct oldest_update *o = &b->oldest[i];
        add_row_names(a, b, o->tenant, o->dim);
        args_str(a, o->member);
        args_i64(a, o->oldest_ms);
    }
    add_offsets(s, a, offsets, n_off, group, false);
    add_batch(s, a, group, batch);
    return args_send(s, a);
}

/* guard offkey n {member start next}* batchkey batch (the first command of a
 * flush). */
static int append_guard(struct store *s, const struct store_offset *offsets,
                        size_t n_off, const char *group, uint64_t batch)
{
    struct args *a = &s->a;

    begin_script(s, a, "guard");
    add_offsets(s, a, offsets, n_off, group, true);
    add_batch(s, a, group, batch);
    return args_send(s, a);
}

/* The guard's verdict, the first reply inside EXEC's. */
static int guard_verdict(const redisReply *exec, char *errstr,
                         size_t errstr_size)
{
    const redisReply *g = exec->elements > 0 ? exec->element[0] : NULL;

    if (g == NULL || (g->type != REDIS_REPLY_STATUS &&
                      g->type != REDIS_REPLY_STRING)) {
        snprintf(errstr, errstr_size, "redis flush: no guard reply");
        return -1;
    }
    if (strcmp(g->str, "apply") == 0) {
        return 0;
    }
    if (strcmp(g->str, "applied") == 0) {
        return STORE_FLUSH_APPLIED_BEFORE;
    }
    snprintf(errstr, errstr_size, "redis flush refused, %s", g->str);
    return STORE_FLUSH_CONFLICT;
}

/* Takes reply i of the n of a transaction (MULTI, n - 2 queued commands,
 * EXEC) into the transaction's result. */
static void take_reply(struct store *s, redisReply *r, size_t i, size_t n)
{
    struct store_tx *t = &s->tx;

    if (r->type == REDIS_REPLY_ERROR && t->rc == 0) {
        snprintf(t->err, sizeof(t->err), "redis flush: %s", r->str);
        t->rc = -1;
    } else if (i == n - 1 && r->type == REDIS_REPLY_ARRAY) {
        for (size_t k = 0; k < r->elements && t->rc == 0; k++) {
            if (r->element[k]->type == REDIS_REPLY_ERROR) {
                snprintf(t->err, sizeof(t->err), "redis flush script: %s",
                         r->element[k]->str);
                t->rc = -1;
            }
        }
        if (t->rc == 0) {
            t->rc = guard_verdict(r, t->err, sizeof(t->err));
        }
    } else if (i == n - 1 && t->rc == 0) {
        snprintf(t->err, sizeof(t->err), "redis flush: transaction aborted");
        t->rc = -1;
    }
    freeReplyObject(r);
}

static int tx_fail(struct store *s, char *errstr, size_t errstr_size,
                   const char *what)
{
    snprintf(errstr, errstr_size, "redis %s:%d: flush: %s", s->url.host,
             s->url.port, what);
    s->tx.open = false;
    disconnect(s);
    s->stats.errors++;
    return -1;
}

int store_flush_send(struct store *s, const struct flush_batch *batch,
                     uint64_t batch_id, const struct store_offset *offsets,
                     size_t n_offsets, const char *group, int64_t wall_ms,
                     char *errstr, size_t errstr_size)
{
    uint64_t before;

    if (store_connect(s, errstr, errstr_size) < 0) {
        return -1;
    }
    before = s->stats.commands;
    if (redisAppendCommand(s->ctx, "MULTI") != REDIS_OK ||
        append_guard(s, offsets, n_offsets, group, batch_id) < 0 ||
        append_apply(s, batch, wall_ms) < 0 ||
        append_corr(s, batch, group) < 0 ||
        append_live(s, batch, offsets, n_offsets, group, batch_id) < 0 ||
        redisAppendCommand(s->ctx, "EXEC") != REDIS_OK) {
        if (s->ctx->err == REDIS_ERR_IO) { /* a write-ahead failed */
            return tx_fail(s, errstr, errstr_size, s->ctx->errstr);
        }
        snprintf(errstr, errstr_size, "out of memory building the flush");
        disconnect(s); /* drops the half-built transaction */
        s->stats.errors++;
        return -1;
    }
    s->stats.commands += 2;
    s->tx = (struct store_tx){
        .open = true,
        .expect = (size_t)(s->stats.commands - before),
        .deadline_mono = tstamp_mono_ms() + timeout_ms(s),
    };
    if (write_out(s) < 0) {
        return tx_fail(s, errstr, errstr_size, s->ctx->errstr);
    }
    return 0;
}

bool store_flush_open(const struct store *s)
{
    return s->tx.open;
}

int store_flush_poll(struct store *s, int wait_ms, char *errstr,
                     size_t errstr_size)
{
    struct store_tx *t = &s->tx;

    if (!t->open) {
        snprintf(errstr, errstr_size, "no flush in flight");
        return -1;
    }
    for (;;) {
        int64_t left;
        struct pollfd pfd = {.fd = s->ctx->fd, .events = POLLIN};
        while (t->got < t->expect) {
            void *r = NULL;
            if (redisGetReplyFromReader(s->ctx, &r) != REDIS_OK) {
                return tx_fail(s, errstr, errstr_size, s->ctx->errstr);
            }
            if (r == NULL) {
                break;
            }
            take_reply(s, r, t->got++, t->expect);
        }
        if (t->got == t->expect) {
            break;
        }
        left = t->deadline_mono - tstamp_mono_ms();
        if (left <= 0) {
            return tx_fail(s, errstr, errstr_size,
                           s->deadline_mono > 0 &&
                                   t->deadline_mono >= s->deadline_mono
                               ? "no reply before the shutdown deadline"
                               : "no reply within redis.timeout");
        }
        if (wait_ms >= 0 && left > wait_ms) {
            left = wait_ms;
        }
        int ready = poll(&pfd, 1, (int)left);
        if (ready < 0) {
            continue; /* a signal; the deadline is checked above */
        }
        if (ready == 0) {
            if (wait_ms >= 0) {
                return STORE_FLUSH_PENDING;
            }
            continue;
        }
        if (redisBufferRead(s->ctx) != REDIS_OK) {
            return tx_fail(s, errstr, errstr_size, s->ctx->errstr);
        }
    }
    t->open = false;
    if (t->rc == -1) {
        snprintf(errstr, errstr_size, "%s", t->err);
        s->stats.errors++;
        if (strstr(t->err, "NOSCRIPT") != NULL) {
            disconnect(s); /* reconnecting loads the script again */
        }
        return -1;
    }
    if (t->rc == STORE_FLUSH_CONFLICT) {
        snprintf(errstr, errstr_size, "%s", t->err);
        s->stats.errors++;
        return t->rc;
    }
    s->stats.flushes++;
    return t->rc;
}

/* Why a command could not be sent or answered: the connection's error,
 * or (building the arguments failed, the connection has none) memory. */
static const char *send_error(const struct store *s)
{
    return s->ctx != NULL && s->ctx->errstr[0] != '\0' ? s->ctx->errstr
                                                       : "out of memory";
}

static redisReply *call_args(struct store *s, char *errstr,
                               size_t errstr_size)
{
    redisReply *r = NULL;

    if (args_send(s, &s->a) < 0 ||
        redisGetReply(s->ctx, (void **)&r) != REDIS_OK) {
        snprintf(errstr, errstr_size, "redis: %s", send_error(s));
        disconnect(s);
        s->stats.errors++;
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "redis: %s", r->str);
        freeReplyObject(r);
        s->stats.errors++;
        return NULL;
    }
    return r;
}

/* Tenants per tick call: one SSCAN step of PREFIX:tenants. A tenant's rows
 * are bounded by limits.max_dims_per_tenant, so each call holds Redis for a
 * bounded time (about 4 ms per tenant of 120 rows and 3 windows here) and
 * readers and the next flush get in between calls. */
#define TICK_TENANTS 8

int store_tick_step(struct store *s, int64_t clock_ms, int64_t wall_ms,
                    bool slide, char cursor[STORE_CURSOR_MAX], char *errstr,
                    size_t errstr_size)
{
    redisReply *r;
    const redisReply *c;

    if (store_connect(s, errstr, errstr_size) < 0) {
        return -1;
    }
    begin_script(s, &s->a, "tick");
    add_timing(s, &s->a, clock_ms, wall_ms, slide ? 1 : 0);
    args_str(&s->a, cursor);
    args_i64(&s->a, TICK_TENANTS);
    if ((r = call_args(s, errstr, errstr_size)) == NULL) {
        return -1;
    }
    c = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]
                                                         : NULL;
    if (c == NULL || c->type != REDIS_REPLY_STRING ||
        c->len >= STORE_CURSOR_MAX) {
        snprintf(errstr, errstr_size,
                 "redis tick: the reply is not {rows, cursor}");
        freeReplyObject(r);
        s->stats.errors++;
        return -1;
    }
    memcpy(cursor, c->str, c->len);
    cursor[c->len] = '\0';
    freeReplyObject(r);
    return 0;
}

int store_read_offsets(struct store *s, const char *offsets_key,
                       const char *const *members, size_t n, int64_t *next,
                       char *errstr, size_t errstr_size)
{
    struct args *a = &s->a;
    redisReply *r;

    if (n == 0) {
        return 0;
    }
    if (store_connect(s, errstr, errstr_size) < 0) {
        return -1;
    }
    args_reset(a);
    args_str(a, "HMGET");
    args_str(a, offsets_key);
    for (size_t i = 0; i < n; i++) {
        args_str(a, members[i]);
    }
    if (args_send(s, a) < 0 ||
        redisGetReply(s->ctx, (void **)&r) != REDIS_OK) {
        snprintf(errstr, errstr_size, "redis HMGET %s: %s", offsets_key,
                 send_error(s));
        disconnect(s);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        snprintf(errstr, errstr_size, "redis HMGET %s: unexpected reply",
                 offsets_key);
        freeReplyObject(r);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        next[i] = r->element[i]->type == REDIS_REPLY_STRING
                      ? strtoll(r->element[i]->str, NULL, 10)
                      : -1;
    }
    freeReplyObject(r);
    return 0;
}

/* One HSCAN page: cursor in, cursor out; fn per field. */
/* A correlation log replayed: the records open at its end, in the order
 * they were first opened (an eviction order like the one they had). */
struct corr_replay {
    struct u64map index; /* key -> entry */
    struct replay_entry {
        uint64_t key;
        size_t off; /* value in text */
        bool open;
    } *e;
    size_t n, cap;
    char *text;
    size_t len, cap_text;
    uint64_t lines;
    size_t bad; /* lines that are no record */
};

/* One line (without its newline) of struct corr_log. */
static int replay_line(struct corr_replay *r, const char *line, size_t n)
{
    char hex[17], *end;
    uint64_t key;
    uint32_t *idx;

    r->lines++;
    if (n < 16 || (n > 16 && line[16] != ' ')) {
        r->bad++;
        return 0;
    }
    memcpy(hex, line, 16);
    hex[16] = '\0';
    key = strtoull(hex, &end, 16);
    if (*end != '\0' || key == 0) {
        r->bad++;
        return 0;
    }
    idx = u64map_get(&r->index, key);
    if (n == 16) { /* closed */
        if (idx != NULL) {
            r->e[*idx].open = false;
            u64map_del(&r->index, key);
        }
        return 0;
    }
    if (mem_grow((void **)&r->text, &r->cap_text, r->len + n - 16, 1) < 0) {
        return -1;
    }
    memcpy(r->text + r->len, line + 17, n - 17);
    r->text[r->len + n - 17] = '\0';
    if (idx != NULL) {
        r->e[*idx].off = r->len;
    } else {
        if (mem_grow((void **)&r->e, &r->cap, r->n + 1, sizeof(*r->e)) < 0 ||
            u64map_put(&r->index, key, (uint32_t)r->n) < 0) {
            return -1;
        }
        r->e[r->n++] = (struct replay_entry){key, r->len, true};
    }
    r->len += n - 16;
    return 0;
}

static int replay_chunk(struct corr_replay *r, const char *p, size_t len)
{
    const char *end = p + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (replay_line(r, p, (size_t)(stop - p)) < 0) {
            return -1;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

/* Elements of a correlation log read per LRANGE. */
#define CORR_READ_PAGE 8

int store_read_corr(struct store *s, const char *group, const char *member,
                    int (*fn)(uint64_t key, const char *value, void *arg),
                    void *arg, struct store_corr_stats *st, char *errstr,
                    size_t errstr_size)
{
    char key[1024], from[24], to[24];
    struct corr_replay r = {0};
    int rc = 0;

    if (store_connect(s, errstr, errstr_size) < 0) {
        return -1;
    }
    corr_prefix(s, group, key, sizeof(key));
    snprintf(key + strlen(key), sizeof(key) - strlen(key), "%s", member);
    u64map_init(&r.index);
    for (long long i = 0; rc == 0; i += CORR_READ_PAGE) {
        const char *argv[] = {"LRANGE", key, from, to};
        redisReply *rep;
        snprintf(from, sizeof(from), "%lld", i);
        snprintf(to, sizeof(to), "%lld", i + CORR_READ_PAGE - 1);
        if (simple(s, 4, argv, &rep, errstr, errstr_size) < 0) {
            rc = -1;
            break;
        }
        if (rep->type != REDIS_REPLY_ARRAY) {
            snprintf(errstr, errstr_size, "redis LRANGE %s: unexpected reply",
                     key);
            rc = -1;
        }
        for (size_t k = 0; rc == 0 && k < rep->elements; k++) {
            const redisReply *el = rep->element[k];
            if (el->type == REDIS_REPLY_STRING &&
                replay_chunk(&r, el->str, el->len) < 0) {
                snprintf(errstr, errstr_size, "%s: out of memory", key);
                rc = -1;
            }
        }
        if (rc == 0 && rep->elements < CORR_READ_PAGE) {
            freeReplyObject(rep);
            break;
        }
        freeReplyObject(rep);
    }
    for (size_t i = 0; rc == 0 && i < r.n; i++) {
        if (r.e[i].open && fn(r.e[i].key, r.text + r.e[i].off, arg) < 0) {
            snprintf(errstr, errstr_size, "%s: bad record %016llx", key,
                     (unsigned long long)r.e[i].key);
            rc = -1;
        }
    }
    if (st != NULL) {
        st->lines = r.lines;
        st->bad_lines = r.bad;
    }
    u64map_release(&r.index);
    free(r.e);
    free(r.text);
    return rc;
}

/* ---- alerts ---- */

/* Sends the command built in s->a and returns its reply (new) or NULL. */
int store_rows(struct store *s,
               void (*fn)(const char *tenant, const char *dim, void *arg),
               void *arg, char *errstr, size_t errstr_size)
{
    redisReply *r;

    if (store_connect(s, errstr, errstr_size) < 0) {
        return -1;
    }
    begin_script(s, &s->a, "rows");
    if ((r = call_args(s, errstr, errstr_size)) == NULL) {
        return -1;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
         i += 2) {
        fn(r->element[i]->str, r->element[i + 1]->str, arg);
    }
    freeReplyObject(r);
    return 0;
}

static bool reply_number(const redisReply *e, double *v)
{
    if (e->type == REDIS_REPLY_INTEGER) {
        *v = (double)e->integer;
        return true;
    }
    if (e->type == REDIS_REPLY_STRING) {
        *v = strtod(e->str, NULL);
        return true;
    }
    return false;
}

static void read_obs(redisReply **e, struct store_obs *o)
{
    double v;

    memset(o, 0, sizeof(*o));
    o->has_value = reply_number(e[0], &o->value);
    o->samples = reply_number(e[1], &v) ? (int64_t)v : 0;
    o->has_baseline = reply_number(e[2], &o->baseline);
    o->baseline_samples = reply_number(e[3], &v) ? (int64_t)v : 0;
    o->has_stats = reply_number(e[4], &o->mean) && reply_number(e[5], &o->stddev);
    o->slices = reply_number(e[6], &v) ? (int64_t)v : 0;
}

int store_alert_read(struct store *s, int64_t clock_ms,
                     const struct store_obs_req *req, size_t n,
                     struct store_obs *out, char *errstr, size_t errstr_size)
{
    struct args *a = &s->a;
    redisReply *r;

    if (store_connect(s, errstr, errstr_size) < 0) {
        return -1;
    }
    begin_script(s, a, "alert_read");
    args_i64(a, clock_ms);
    args_i64(a, s->cfg->bucket_ms);
    args_i64(a, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        const struct store_obs_req *q = &req[i];
        int nc = q->count[0] == NULL ? 0 : q->count[1] == NULL ? 1 : 2;
        char src[2] = {q->source, '\0'};
        args_str(a, q->tenant);
        args_str(a, q->dim);
        args_str(a, src);
        args_str(a, q->field ? q->field : "");
        args_str(a, q->window ? q->window : "");
        args_i64(a, nc);
        for (int k = 0; k < nc; k++) {
            args_str(a, q->count[k]);
        }
        args_str(a, q->baseline ? q->baseline : "");
        args_i64(a, q->span_ms);
        args_i64(a, q->slice_ms > 0 ? q->slice_ms : 1);
        args_i64(a, q->min_samples);
    }
    if ((r = call_args(s, errstr, errstr_size)) == NULL) {
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 7 * n) {
        snprintf(errstr, errstr_size, "redis alert_read: unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        read_obs(&r->element[7 * i], &out[i]);
    }
    freeReplyObject(r);
    return 0;
}

int store_alert_write(struct store *s, const struct store_alert_tx *tx,
                      size_t n, char *errstr, size_t errstr_size)
{
    struct args *a = &s->a;
    redisReply *r;

    if (store_connect(s, errstr, errstr_size) < 0) {
        return -1;
    }
    begin_script(s, a, "alert_write");
    args_i64(a, s->cfg->alert_stream_maxlen);
    args_i64(a, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        args_str(a, tx[i].tenant);
        args_str(a, tx[i].fingerprint);
        args_str(a, tx[i].state ? tx[i].state : "");
        args_str(a, tx[i].notify ? "1" : "0");
        args_str(a, tx[i].message ? tx[i].message : "");
    }
    if ((r = call_args(s, errstr, errstr_size)) == NULL) {
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

int store_alert_states(struct store *s, const char *tenant,
                       void (*fn)(const char *fp, const char *json, void *arg),
                       void *arg, char *errstr, size_t errstr_size)
{
    char key[512];
    redisReply *r;

    if (store_connect(s, errstr, errstr_size) < 0) {
        return -1;
    }
    snprintf(key, sizeof(key), "%s:{%s}:alerts:active", s->cfg->prefix, tenant);
    if (simple(s, 2, (const char *[]){"HGETALL", key}, &r, errstr,
               errstr_size) < 0) {
        return -1;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
         i += 2) {
        fn(r->element[i]->str, r->element[i + 1]->str, arg);
    }
    freeReplyObject(r);
    return 0;
}

int store_delete_all(struct store *s, char *errstr, size_t errstr_size)
{
    char cursor[32] = "0", pattern[300];
    redisReply *r;

    if (store_connect(s, errstr, errstr_size) < 0) {
        return -1;
    }
    snprintf(pattern, sizeof(pattern), "%s:*", s->cfg->prefix);
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
        redisReply *keys;
        if (simple(s, 6, argv, &r, errstr, errstr_size) < 0) {
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        keys = r->element[1];
        if (keys->elements > 0) {
            struct args *a = &s->a;
            redisReply *d;
            args_reset(a);
            args_str(a, "UNLINK");
            for (size_t i = 0; i < keys->elements; i++) {
                args_str(a, keys->element[i]->str);
            }
            if ((d = call_args(s, errstr, errstr_size)) == NULL) {
                freeReplyObject(r);
                return -1;
            }
            freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

const struct store_stats *store_stats(const struct store *s)
{
    return &s->stats;
}
