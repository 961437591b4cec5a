/* SPDX-License-Identifier: Apache-2.0 */
/* metrics: a thread-safe registry of counters, gauges and histograms with bounded labels, rendered in the Prometheus text format. */
#include "metrics.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Layout. Every family allocates all its series up front: one per
 * combination of label slots, where a label has its values plus one "_other"
 * slot. A series' values are a run of atomics in one array: one for a counter
 * or gauge (a gauge keeps the bits of a double); for a histogram one count per
 * bucket, one for +Inf and one for the sum (double bits). Bucket counts are
 * kept per bucket, not cumulative, so an observation is one atomic add; the
 * renderer accumulates them and derives _count from the same reads, so
 * _count always equals the +Inf bucket even while other threads observe.
 *
 * Capped label values are published like this: under the registry lock the
 * value is copied into slot n, then n is stored with release order. Readers
 * load n with acquire order and only look at slots below it, so neither a
 * lookup nor the renderer takes the lock, and a series is never rendered
 * with a label value that is not fully written.
 */

#define MAX_SERIES ((size_t)1 << 20)
#define MAX_CAP ((size_t)1 << 16)

struct label_slots {
    char *name;
    const char *const *fixed; /* borrowed fixed set, or NULL */
    size_t n_fixed;
    size_t cap;        /* capped: room for this many values */
    char **vals;       /* capped: cap slots, owned */
    atomic_size_t n;   /* capped: published values */
    size_t n_slots;    /* values + 1 ("_other" is the last) */
};

struct metrics_series {
    struct metrics_family *fam;
    size_t index;
    atomic_bool shown;
    _Atomic uint64_t *v;
};

struct metrics_family {
    struct metrics *m;
    char *name;
    char *help;
    enum metrics_type type;
    size_t n_labels;
    struct label_slots labels[METRICS_MAX_LABELS];
    double buckets[METRICS_MAX_BUCKETS];
    size_t n_buckets;
    size_t width; /* atomics per series */
    size_t n_series;
    struct metrics_series *series;
    _Atomic uint64_t *values;
    _Atomic uint64_t overflows;
};

struct metrics {
    pthread_mutex_t lock; /* registration and new label values */
    char *overflow_name;
    struct metrics_family *fams[METRICS_MAX_FAMILIES];
    atomic_size_t n_fams;
};

/* ---- names and values -------------------------------------------------- */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool valid_metric_name(const char *s)
{
    if (s == NULL || (!is_alpha(s[0]) && s[0] != ':')) {
        return false;
    }
    for (s++; *s != '\0'; s++) {
        if (!is_alpha(*s) && !is_digit(*s) && *s != ':') {
            return false;
        }
    }
    return true;
}

static bool valid_label_name(const char *s)
{
    if (s == NULL || !is_alpha(s[0]) || strncmp(s, "__", 2) == 0) {
        return false;
    }
    for (s++; *s != '\0'; s++) {
        if (!is_alpha(*s) && !is_digit(*s)) {
            return false;
        }
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Length of the UTF-8 sequence at s (at most left bytes), 0 if invalid:
 * overlong forms, surrogates and code points past U+10FFFF are refused. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    size_t n;
    uint32_t cp;

    if (s[0] < 0x80) {
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        n = 2, cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3, cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4, cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n > left) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
        (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

/* A label value the registry accepts: UTF-8, not too long, not reserved. */
static bool valid_value(const char *v)
{
    size_t len, i, k;

    if (v == NULL || strcmp(v, METRICS_OTHER) == 0) {
        return false;
    }
    len = strlen(v);
    if (len > METRICS_VALUE_MAX) {
        return false;
    }
    for (i = 0; i < len; i += k) {
        k = utf8_seq((const unsigned char *)v + i, len - i);
        if (k == 0) {
            return false;
        }
    }
    return true;
}

/* ---- registry ---------------------------------------------------------- */

struct metrics *metrics_new(const char *overflow_name, char *errstr,
                            size_t errstr_size)
{
    struct metrics *m;

    if (overflow_name != NULL && (!valid_metric_name(overflow_name) ||
                                  !ends_with(overflow_name, "_total"))) {
        snprintf(errstr, errstr_size,
                 "metric %s: overflow counter needs a valid name ending in "
                 "_total",
                 overflow_name);
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        goto out_oom;
    }
    if (overflow_name != NULL) {
        m->overflow_name = strdup(overflow_name);
        if (m->overflow_name == NULL) {
            goto out_free_m;
        }
    }
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        goto out_free_name;
    }
    atomic_init(&m->n_fams, 0);
    return m;

out_free_name:
    free(m->overflow_name);
out_free_m:
    free(m);
out_oom:
    snprintf(errstr, errstr_size, "metrics: out of memory");
    return NULL;
}

static void family_free(struct metrics_family *f)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->n_labels; i++) {
        struct label_slots *l = &f->labels[i];

        if (l->vals != NULL) {
            size_t n = atomic_load(&l->n);

            for (size_t j = 0; j < n; j++) {
                free(l->vals[j]);
            }
            free(l->vals);
        }
        free(l->name);
    }
    free(f->series);
    free(f->values);
    free(f->help);
    free(f->name);
    free(f);
}

void metrics_destroy(struct metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < atomic_load(&m->n_fams); i++) {
        family_free(m->fams[i]);
    }
    pthread_mutex_destroy(&m->lock);
    free(m->overflow_name);
    free(m);
}

static struct metrics_family *find_locked(struct metrics *m, const char *name)
{
    size_t n = atomic_load_explicit(&m->n_fams, memory_order_acquire);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(m->fams[i]->name, name) == 0) {
            return m->fams[i];
        }
    }
    return NULL;
}

struct metrics_family *metrics_find(struct metrics *m, const char *name)
{
    return m == NULL || name == NULL ? NULL : find_locked(m, name);
}

/* Checks the name against the Prometheus rules and our conventions. */
static int check_name(const struct metrics *m, const struct metrics_desc *d,
                      char *errstr, size_t errstr_size)
{
    static const char *const reserved[] = {"_bucket", "_sum", "_count"};
    const char *why = NULL;

    if (!valid_metric_name(d->name)) {
        why = "name must match [a-zA-Z_:][a-zA-Z0-9_:]*";
    } else if (d->type == METRICS_COUNTER && !ends_with(d->name, "_total")) {
        why = "counter names end in _total";
    } else if (d->type != METRICS_COUNTER && ends_with(d->name, "_total")) {
        why = "only counter names end in _total";
    } else if (m->overflow_name != NULL &&
               strcmp(d->name, m->overflow_name) == 0) {
        why = "name taken by the overflow counter";
    } else if (d->help == NULL || d->help[0] == '\0') {
        why = "help text is empty";
    } else if ((unsigned)d->type > METRICS_HISTOGRAM) {
        why = "unknown type";
    }
    for (size_t i = 0; why == NULL && i < 3; i++) {
        if (ends_with(d->name, reserved[i])) {
            why = "the suffixes _bucket, _sum and _count are reserved";
        }
    }
    if (why != NULL) {
        snprintf(errstr, errstr_size, "metric %s: %s",
                 d->name ? d->name : "(null)", why);
        return -1;
    }
    return 0;
}

static const char *check_label(const struct metrics_desc *d, size_t k)
{
    const struct metrics_label *l = &d->labels[k];

    if (!valid_label_name(l->name)) {
        return "label name must match [a-zA-Z_][a-zA-Z0-9_]* without a "
               "leading __";
    }
    if (strcmp(l->name, "le") == 0 || strcmp(l->name, "quantile") == 0) {
        return "label names le and quantile are reserved";
    }
    if (k == 1 && strcmp(l->name, d->labels[0].name) == 0) {
        return "label names repeat";
    }
    if (l->values == NULL) {
        return l->cap == 0 || l->cap > MAX_CAP ? "label cap must be 1..65536"
                                               : NULL;
    }
    if (l->n_values == 0 || l->n_values > MAX_CAP) {
        return "a fixed label needs 1..65536 values";
    }
    for (size_t i = 0; i < l->n_values; i++) {
        if (!valid_value(l->values[i])) {
            return "fixed label values must be UTF-8, at most 255 bytes and "
                   "not _other";
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(l->values[i], l->values[j]) == 0) {
                return "fixed label values repeat";
            }
        }
    }
    return NULL;
}

static const char *check_buckets(const struct metrics_desc *d)
{
    if (d->type != METRICS_HISTOGRAM) {
        return d->n_buckets == 0 ? NULL : "only histograms have buckets";
    }
    if (d->buckets == NULL || d->n_buckets == 0 ||
        d->n_buckets > METRICS_MAX_BUCKETS) {
        return "a histogram needs 1..32 buckets";
    }
    for (size_t i = 0; i < d->n_buckets; i++) {
        if (!isfinite(d->buckets[i]) ||
            (i > 0 && d->buckets[i] <= d->buckets[i - 1])) {
            return "buckets must be finite and strictly increasing";
        }
    }
    return NULL;
}

static int check_desc(const struct metrics *m, const struct metrics_desc *d,
                      char *errstr, size_t errstr_size)
{
    const char *why = NULL;

    if (check_name(m, d, errstr, errstr_size) < 0) {
        return -1;
    }
    if (d->n_labels > METRICS_MAX_LABELS) {
        why = "at most 2 labels";
    }
    for (size_t k = 0; why == NULL && k < d->n_labels; k++) {
        why = check_label(d, k);
    }
    if (why == NULL) {
        why = check_buckets(d);
    }
    if (why != NULL) {
        snprintf(errstr, errstr_size, "metric %s: %s", d->name, why);
        return -1;
    }
    return 0;
}

static int family_labels(struct metrics_family *f, const struct metrics_desc *d)
{
    f->n_series = 1;
    f->n_labels = d->n_labels;
    for (size_t k = 0; k < d->n_labels; k++) {
        const struct metrics_label *src = &d->labels[k];
        struct label_slots *l = &f->labels[k];

        l->name = strdup(src->name);
        if (l->name == NULL) {
            return -1;
        }
        atomic_init(&l->n, 0);
        if (src->values != NULL) {
            l->fixed = src->values;
            l->n_fixed = src->n_values;
            l->n_slots = src->n_values + 1;
        } else {
            l->cap = src->cap;
            l->vals = calloc(src->cap, sizeof(*l->vals));
            if (l->vals == NULL) {
                return -1;
            }
            l->n_slots = src->cap + 1;
        }
        f->n_series *= l->n_slots;
    }
    return f->n_series > MAX_SERIES ? -2 : 0;
}

/* Index of label k's slot in series index i. */
static size_t slot_of(const struct metrics_family *f, size_t i, size_t k)
{
    if (f->n_labels == 2) {
        return k == 0 ? i / f->labels[1].n_slots : i % f->labels[1].n_slots;
    }
    return i;
}

/* True when slot j of label l is a declared fixed value. */
static bool fixed_slot(const struct label_slots *l, size_t j)
{
    return l->fixed != NULL && j < l->n_fixed;
}

static int family_series(struct metrics_family *f)
{
    size_t n_values;

    f->width = f->type == METRICS_HISTOGRAM ? f->n_buckets + 2 : 1;
    n_values = f->n_series * f->width;
    f->series = calloc(f->n_series, sizeof(*f->series));
    f->values = calloc(n_values, sizeof(*f->values));
    if (f->series == NULL || f->values == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n_values; i++) {
        atomic_init(&f->values[i], 0);
    }
    for (size_t i = 0; i < f->n_series; i++) {
        struct metrics_series *s = &f->series[i];
        bool shown = true;

        for (size_t k = 0; k < f->n_labels; k++) {
            shown = shown && fixed_slot(&f->labels[k], slot_of(f, i, k));
        }
        s->fam = f;
        s->index = i;
        s->v = &f->values[i * f->width];
        atomic_init(&s->shown, shown);
    }
    return 0;
}

static struct metrics_family *family_new(struct metrics *m,
                                         const struct metrics_desc *d,
                                         char *errstr, size_t errstr_size)
{
    struct metrics_family *f = calloc(1, sizeof(*f));
    int rc;

    if (f == NULL) {
        goto out_oom;
    }
    f->m = m;
    f->type = d->type;
    f->n_buckets = d->n_buckets;
    for (size_t i = 0; i < d->n_buckets; i++) {
        f->buckets[i] = d->buckets[i];
    }
    atomic_init(&f->overflows, 0);
    f->name = strdup(d->name);
    f->help = strdup(d->help);
    if (f->name == NULL || f->help == NULL) {
        goto out_free_family;
    }
    rc = family_labels(f, d);
    if (rc == -2) {
        snprintf(errstr, errstr_size,
                 "metric %s: label slots allow more than %zu series", d->name,
                 MAX_SERIES);
        family_free(f);
        return NULL;
    }
    if (rc < 0 || family_series(f) < 0) {
        goto out_free_family;
    }
    return f;

out_free_family:
    family_free(f);
out_oom:
    snprintf(errstr, errstr_size, "metric %s: out of memory", d->name);
    return NULL;
}

struct metrics_family *metrics_register(struct metrics *m,
                                        const struct metrics_desc *desc,
                                        char *errstr, size_t errstr_size)
{
    struct metrics_family *f = NULL;
    size_t n;

    if (check_desc(m, desc, errstr, errstr_size) < 0) {
        return NULL;
    }
    pthread_mutex_lock(&m->lock);
    n = atomic_load_explicit(&m->n_fams, memory_order_relaxed);
    if (find_locked(m, desc->name) != NULL) {
        snprintf(errstr, errstr_size, "metric %s: registered twice",
                 desc->name);
    } else if (n == METRICS_MAX_FAMILIES) {
        snprintf(errstr, errstr_size, "metric %s: more than %d families",
                 desc->name, METRICS_MAX_FAMILIES);
    } else {
        f = family_new(m, desc, errstr, errstr_size);
    }
    if (f != NULL) {
        m->fams[n] = f;
        atomic_store_explicit(&m->n_fams, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&m->lock);
    return f;
}

/* ---- series lookup ----------------------------------------------------- */

static size_t fold(struct metrics_family *f, const struct label_slots *l,
                   const char *v)
{
    if (v == NULL || strcmp(v, METRICS_OTHER) != 0) {
        atomic_fetch_add_explicit(&f->overflows, 1, memory_order_relaxed);
    }
    return l->n_slots - 1;
}

/* Publishes v in the next free slot of capped label l, or folds it. */
static size_t label_add(struct metrics_family *f, struct label_slots *l,
                        const char *v)
{
    size_t n, i, slot = SIZE_MAX;

    if (!valid_value(v)) {
        return fold(f, l, v);
    }
    pthread_mutex_lock(&f->m->lock);
    n = atomic_load_explicit(&l->n, memory_order_relaxed);
    for (i = 0; i < n && slot == SIZE_MAX; i++) {
        if (strcmp(l->vals[i], v) == 0) {
            slot = i; /* another thread added it meanwhile */
        }
    }
    if (slot == SIZE_MAX && n < l->cap) {
        l->vals[n] = strdup(v);
        if (l->vals[n] != NULL) {
            slot = n;
            atomic_store_explicit(&l->n, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&f->m->lock);
    return slot == SIZE_MAX ? fold(f, l, v) : slot;
}

static size_t label_slot(struct metrics_family *f, struct label_slots *l,
                         const char *v)
{
    size_t n;

    if (v == NULL) {
        return fold(f, l, v);
    }
    if (l->fixed != NULL) {
        for (size_t i = 0; i < l->n_fixed; i++) {
            if (strcmp(l->fixed[i], v) == 0) {
                return i;
            }
        }
        return fold(f, l, v);
    }
    n = atomic_load_explicit(&l->n, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l->vals[i], v) == 0) {
            return i;
        }
    }
    return label_add(f, l, v);
}

static struct metrics_series *series_of(struct metrics_family *f, size_t j0,
                                        size_t j1)
{
    if (f->n_labels == 0) {
        return &f->series[0];
    }
    if (f->n_labels == 1) {
        return &f->series[j0];
    }
    return &f->series[j0 * f->labels[1].n_slots + j1];
}

struct metrics_series *metrics_series(struct metrics_family *f, const char *v0,
                                      const char *v1)
{
    size_t j[METRICS_MAX_LABELS] = {0, 0};
    const char *v[METRICS_MAX_LABELS] = {v0, v1};

    if (f == NULL) {
        return NULL;
    }
    for (size_t k = 0; k < f->n_labels; k++) {
        j[k] = label_slot(f, &f->labels[k], v[k]);
    }
    return series_of(f, j[0], j[1]);
}

struct metrics_series *metrics_series_at(struct metrics_family *f, size_t i0,
                                         size_t i1)
{
    size_t j[METRICS_MAX_LABELS] = {i0, i1};

    if (f == NULL) {
        return NULL;
    }
    for (size_t k = 0; k < f->n_labels; k++) {
        struct label_slots *l = &f->labels[k];
        size_t n = l->fixed != NULL
                       ? l->n_fixed
                       : atomic_load_explicit(&l->n, memory_order_acquire);

        if (j[k] >= n) {
            atomic_fetch_add_explicit(&f->overflows, 1, memory_order_relaxed);
            j[k] = l->n_slots - 1;
        }
    }
    return series_of(f, j[0], j[1]);
}

/* ---- updates ----------------------------------------------------------- */

static void show(struct metrics_series *s)
{
    if (!atomic_load_explicit(&s->shown, memory_order_relaxed)) {
        atomic_store_explicit(&s->shown, true, memory_order_relaxed);
    }
}

static uint64_t bits_of(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

static double double_of(uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

/* Adds delta to the double kept as bits in *a. */
static void add_double(_Atomic uint64_t *a, double delta)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(
        a, &old, bits_of(double_of(old) + delta), memory_order_relaxed,
        memory_order_relaxed)) {
    }
}

void metrics_counter_add(struct metrics_series *s, uint64_t n)
{
    if (s == NULL) {
        return;
    }
    assert(s->fam->type == METRICS_COUNTER);
    atomic_fetch_add_explicit(&s->v[0], n, memory_order_relaxed);
    show(s);
}

void metrics_counter_set(struct metrics_series *s, uint64_t value)
{
    if (s == NULL) {
        return;
    }
    assert(s->fam->type == METRICS_COUNTER);
    atomic_store_explicit(&s->v[0], value, memory_order_relaxed);
    show(s);
}

void metrics_gauge_set(struct metrics_series *s, double value)
{
    if (s == NULL) {
        return;
    }
    assert(s->fam->type == METRICS_GAUGE);
    atomic_store_explicit(&s->v[0], bits_of(value), memory_order_relaxed);
    show(s);
}

void metrics_gauge_add(struct metrics_series *s, double delta)
{
    if (s == NULL) {
        return;
    }
    assert(s->fam->type == METRICS_GAUGE);
    add_double(&s->v[0], delta);
    show(s);
}

void metrics_observe(struct metrics_series *s, double v)
{
    const struct metrics_family *f;
    size_t i = 0;

    if (s == NULL || isnan(v)) {
        return;
    }
    f = s->fam;
    assert(f->type == METRICS_HISTOGRAM);
    while (i < f->n_buckets && v > f->buckets[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&s->v[i], 1, memory_order_relaxed);
    add_double(&s->v[f->n_buckets + 1], v);
    show(s);
}

void metrics_series_hide(struct metrics_series *s)
{
    if (s != NULL) {
        atomic_store_explicit(&s->shown, false, memory_order_relaxed);
    }
}

void metrics_family_retain(struct metrics_family *f,
                           struct metrics_series *const *keep, size_t n)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->n_series; i++) {
        struct metrics_series *s = &f->series[i];
        bool kept = false;

        if (!atomic_load_explicit(&s->shown, memory_order_relaxed)) {
            continue;
        }
        for (size_t k = 0; k < n && !kept; k++) {
            kept = keep[k] == s;
        }
        if (!kept) {
            metrics_series_hide(s);
        }
    }
}

uint64_t metrics_counter_value(const struct metrics_series *s)
{
    return s == NULL ? 0 : atomic_load_explicit(&s->v[0], memory_order_relaxed);
}

double metrics_gauge_value(const struct metrics_series *s)
{
    return s == NULL ? 0.0
                     : double_of(atomic_load_explicit(&s->v[0],
                                                      memory_order_relaxed));
}

uint64_t metrics_histogram_count(const struct metrics_series *s)
{
    uint64_t total = 0;

    if (s == NULL) {
        return 0;
    }
    for (size_t i = 0; i <= s->fam->n_buckets; i++) {
        total += atomic_load_explicit(&s->v[i], memory_order_relaxed);
    }
    return total;
}

double metrics_histogram_sum(const struct metrics_series *s)
{
    return s == NULL ? 0.0
                     : double_of(atomic_load_explicit(
                           &s->v[s->fam->n_buckets + 1], memory_order_relaxed));
}

uint64_t metrics_family_overflows(const struct metrics_family *f)
{
    return f == NULL ? 0
                     : atomic_load_explicit(&f->overflows,
                                            memory_order_relaxed);
}

/* ---- exposition -------------------------------------------------------- */

const char *metrics_type_name(enum metrics_type type)
{
    static const char *const names[] = {"counter", "gauge", "histogram"};

    return (unsigned)type <= METRICS_HISTOGRAM ? names[type] : NULL;
}

struct out {
    char *p;
    size_t len, cap;
    bool oom;
};

static void out_mem(struct out *o, const char *s, size_t n)
{
    if (o->oom) {
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        char *p;

        while (o->len + n + 1 > cap) {
            cap *= 2;
        }
        p = realloc(o->p, cap);
        if (p == NULL) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

/* Writes s with backslash and newline escaped, and the double quote too
 * when quote (label values; help text keeps its quotes). */
static void out_escaped(struct out *o, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            out_str(o, "\\\\");
        } else if (*s == '\n') {
            out_str(o, "\\n");
        } else if (*s == '"' && quote) {
            out_str(o, "\\\"");
        } else {
            out_mem(o, s, 1);
        }
    }
}

static void out_u64(struct out *o, uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    out_str(o, buf);
}

/* The shortest %g form that reads back as the same double; Prometheus'
 * spellings for the non-finite values. */
static void format_double(char buf[32], double v)
{
    if (isnan(v)) {
        strcpy(buf, "NaN");
    } else if (isinf(v)) {
        strcpy(buf, v > 0 ? "+Inf" : "-Inf");
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, 32, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) {
                break;
            }
        }
    }
}

static void out_double(struct out *o, double v)
{
    char buf[32];

    format_double(buf, v);
    out_str(o, buf);
}

/* The value of label k in series i; NULL while not published. */
static const char *label_value(const struct metrics_family *f, size_t i,
                               size_t k, const size_t *published)
{
    const struct label_slots *l = &f->labels[k];
    size_t j = slot_of(f, i, k);

    if (j == l->n_slots - 1) {
        return METRICS_OTHER;
    }
    if (l->fixed != NULL) {
        return l->fixed[j];
    }
    return j < published[k] ? l->vals[j] : NULL;
}

/* Writes {name="value",...} for series i, with le="..." last when le. */
static void out_labels(struct out *o, const struct metrics_family *f,
                       const char *const *values, const char *le)
{
    const char *sep = "{";

    for (size_t k = 0; k < f->n_labels; k++) {
        out_str(o, sep);
        out_str(o, f->labels[k].name);
        out_str(o, "=\"");
        out_escaped(o, values[k], true);
        out_str(o, "\"");
        sep = ",";
    }
    if (le != NULL) {
        out_str(o, sep);
        out_str(o, "le=\"");
        out_str(o, le);
        out_str(o, "\"");
        sep = ",";
    }
    if (sep[0] == ',') {
        out_str(o, "}");
    }
}

static void out_sample(struct out *o, const char *name, const char *suffix,
                       const struct metrics_family *f,
                       const char *const *values, const char *le)
{
    out_str(o, name);
    out_str(o, suffix);
    out_labels(o, f, values, le);
    out_str(o, " ");
}

static void render_histogram(struct out *o, const struct metrics_family *f,
                             const struct metrics_series *s,
                             const char *const *values)
{
    uint64_t counts[METRICS_MAX_BUCKETS + 1], cum = 0;
    char le[32];

    for (size_t i = 0; i <= f->n_buckets; i++) {
        counts[i] = atomic_load_explicit(&s->v[i], memory_order_relaxed);
    }
    for (size_t i = 0; i <= f->n_buckets; i++) {
        cum += counts[i];
        if (i < f->n_buckets) {
            format_double(le, f->buckets[i]);
        } else {
            strcpy(le, "+Inf");
        }
        out_sample(o, f->name, "_bucket", f, values, le);
        out_u64(o, cum);
        out_str(o, "\n");
    }
    out_sample(o, f->name, "_sum", f, values, NULL);
    out_double(o, metrics_histogram_sum(s));
    out_str(o, "\n");
    out_sample(o, f->name, "_count", f, values, NULL);
    out_u64(o, cum);
    out_str(o, "\n");
}

static void render_series(struct out *o, const struct metrics_family *f,
                          const struct metrics_series *s,
                          const char *const *values)
{
    if (f->type == METRICS_HISTOGRAM) {
        render_histogram(o, f, s, values);
        return;
    }
    out_sample(o, f->name, "", f, values, NULL);
    if (f->type == METRICS_COUNTER) {
        out_u64(o, metrics_counter_value(s));
    } else {
        out_double(o, metrics_gauge_value(s));
    }
    out_str(o, "\n");
}

static void render_header(struct out *o, const char *name, const char *help,
                          const char *type)
{
    out_str(o, "# HELP ");
    out_str(o, name);
    out_str(o, " ");
    out_escaped(o, help, false);
    out_str(o, "\n# TYPE ");
    out_str(o, name);
    out_str(o, " ");
    out_str(o, type);
    out_str(o, "\n");
}

static void render_family(struct out *o, const struct metrics_family *f)
{
    size_t published[METRICS_MAX_LABELS] = {0, 0};

    render_header(o, f->name, f->help, metrics_type_name(f->type));
    for (size_t k = 0; k < f->n_labels; k++) {
        published[k] =
            atomic_load_explicit(&f->labels[k].n, memory_order_acquire);
    }
    for (size_t i = 0; i < f->n_series; i++) {
        const struct metrics_series *s = &f->series[i];
        const char *values[METRICS_MAX_LABELS] = {NULL, NULL};
        bool ready = atomic_load_explicit(&s->shown, memory_order_relaxed);

        for (size_t k = 0; ready && k < f->n_labels; k++) {
            values[k] = label_value(f, i, k, published);
            ready = values[k] != NULL;
        }
        if (ready) {
            render_series(o, f, s, values);
        }
    }
}

static void render_overflows(struct out *o, struct metrics *m, size_t n_fams)
{
    render_header(o, m->overflow_name,
                  "Label values folded into _other (label cap reached or "
                  "value not allowed), by metric.",
                  "counter");
    for (size_t i = 0; i < n_fams; i++) {
        const struct metrics_family *f = m->fams[i];

        if (f->n_labels == 0) {
            continue;
        }
        out_str(o, m->overflow_name);
        out_str(o, "{metric=\"");
        out_str(o, f->name);
        out_str(o, "\"} ");
        out_u64(o, metrics_family_overflows(f));
        out_str(o, "\n");
    }
}

int metrics_render(struct metrics *m, char **out, size_t *len)
{
    struct out o = {NULL, 0, 0, false};
    size_t n = atomic_load_explicit(&m->n_fams, memory_order_acquire);

    out_mem(&o, "", 0);
    for (size_t i = 0; i < n; i++) {
        render_family(&o, m->fams[i]);
    }
    if (m->overflow_name != NULL) {
        render_overflows(&o, m, n);
    }
    if (o.oom) {
        free(o.p);
        return -1;
    }
    *out = o.p;
    *len = o.len;
    return 0;
}
