/* SPDX-License-Identifier: Apache-2.0 */
/* metrics: a thread-safe registry of counters, gauges and histograms with bounded labels, rendered in the Prometheus text format. */
#ifndef TP_METRICS_H
#define TP_METRICS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Threading. Every value is a C11 atomic, updated with relaxed ordering:
 * updating a series never takes a lock, and metrics_render may run on any
 * thread (the HTTP server's) while other threads update. The only lock is
 * taken when a label value is seen for the first time (a new partition, a new
 * rule): the value is copied into its slot and published. Registration is
 * meant for start-up but is safe at any time.
 *
 * The service has two ways to feed a series, and uses one per series:
 *  - snapshots: the main loop already counts in plain integers (struct
 *    pipeline_stats, struct store_stats); after each poll/flush cycle it copies
 *    the absolute values in with metrics_counter_set / metrics_gauge_set. The
 *    per-event path is not touched at all.
 *  - events that happen rarely (an alert transition, a flush) are counted where
 *    they happen with metrics_counter_add / metrics_observe.
 *
 * Labels. A family has up to METRICS_MAX_LABELS labels. Each label either has a
 * fixed set of values declared up front (event type, reject reason) or takes
 * values as they come up to a cap (rule, topic, partition, sink). A value that
 * finds no room (cap reached, unknown fixed value, NULL, not UTF-8, longer than
 * METRICS_VALUE_MAX) is folded into the reserved value "_other" and counted in
 * the registry's overflow counter for that family, so sums stay exact and the
 * number of series is bounded by the product of (values + 1) per label.
 *
 * Visibility. Series whose labels are all fixed values (and unlabelled
 * series) are rendered from registration on, 0 until set. A series with a
 * capped label, or the "_other" slot, is rendered once it was first updated;
 * metrics_series_hide and metrics_family_retain take series away again (a
 * revoked partition's lag), until the next update.
 */

#define METRICS_MAX_LABELS 2
#define METRICS_MAX_FAMILIES 64
#define METRICS_MAX_BUCKETS 32
#define METRICS_VALUE_MAX 255 /* bytes in one label value */
#define METRICS_OTHER "_other"

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

/* "counter", "gauge", "histogram" (the # TYPE word); NULL if out of range. */
const char *metrics_type_name(enum metrics_type type);

struct metrics_label {
    const char *name;
    /* Fixed set: values[0..n_values) (borrowed; must outlive the registry).
     * values == NULL: values come as they are used, at most cap of them. */
    const char *const *values;
    size_t n_values;
    size_t cap;
};

/* What metrics_register declares. Strings and arrays are borrowed for the
 * call only, except label value sets (see struct metrics_label). */
struct metrics_desc {
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total */
    enum metrics_type type;
    const char *help; /* one line, not empty */
    struct metrics_label labels[METRICS_MAX_LABELS];
    size_t n_labels;
    const double *buckets; /* histograms: strictly increasing upper bounds */
    size_t n_buckets;      /* (+Inf is implied) */
};

struct metrics;
struct metrics_family;
struct metrics_series;

/* A new, empty registry. overflow_name (borrowed; may be NULL for none) names
 * the counter family, labelled {metric}, that renders how many label values of
 * each labelled family were folded into "_other". Returns NULL with errstr. */
struct metrics *metrics_new(const char *overflow_name, char *errstr,
                            size_t errstr_size);
void metrics_destroy(struct metrics *m);

/* Registers a family. Validates the name (syntax, type suffixes, no
 * duplicate), label names ("__" prefix and histogram "le" are reserved), the
 * fixed values and the buckets. Returns the family (owned by m) or NULL with
 * errstr naming the metric and what is wrong. */
struct metrics_family *metrics_register(struct metrics *m,
                                        const struct metrics_desc *desc,
                                        char *errstr, size_t errstr_size);

/* The family registered under name, or NULL. */
struct metrics_family *metrics_find(struct metrics *m, const char *name);

/* The series for label values v0, v1 (borrowed; copied when new; pass NULL
 * for labels the family does not have). Never NULL for a family; folds into
 * "_other" as described above. Lock-free unless a value is new. The series
 * stays valid until metrics_destroy: callers may keep it. f == NULL gives
 * NULL. */
struct metrics_series *metrics_series(struct metrics_family *f, const char *v0,
                                      const char *v1);

/* The series at value indexes i0, i1 of fixed-set labels (e.g. an enum
 * event_type), O(1). Out-of-range indexes fold into "_other". */
struct metrics_series *metrics_series_at(struct metrics_family *f, size_t i0,
                                         size_t i1);

/* Updates. All accept s == NULL (no-op), so an unconfigured registry costs a
 * branch. A counter is fed either by add or by set, never both. */
void metrics_counter_add(struct metrics_series *s, uint64_t n);
void metrics_counter_set(struct metrics_series *s, uint64_t value);
void metrics_gauge_set(struct metrics_series *s, double value);
void metrics_gauge_add(struct metrics_series *s, double delta);
/* Histograms: counts v in the first bucket whose bound is >= v; NaN is
 * ignored. */
void metrics_observe(struct metrics_series *s, double v);

/* Stops rendering s until its next update (values are kept). */
void metrics_series_hide(struct metrics_series *s);

/* Hides every series of f that is not among keep[0..n) (borrowed). For
 * gauges that mirror a changing set, e.g. lag of the assigned partitions. */
void metrics_family_retain(struct metrics_family *f,
                           struct metrics_series *const *keep, size_t n);

/* Current values, for tests and for the caller's own checks. */
uint64_t metrics_counter_value(const struct metrics_series *s);
double metrics_gauge_value(const struct metrics_series *s);
/* Histogram: the observation count and sum. */
uint64_t metrics_histogram_count(const struct metrics_series *s);
double metrics_histogram_sum(const struct metrics_series *s);

/* Label values folded into "_other" in f so far. */
uint64_t metrics_family_overflows(const struct metrics_family *f);

/* Renders every family in registration order in the Prometheus text format
 * 0.0.4 (# HELP, # TYPE, samples; label values and help escaped). Returns 0
 * with *out a new NUL-terminated string (the caller frees it) of *len bytes,
 * or -1 on out of memory. */
int metrics_render(struct metrics *m, char **out, size_t *len);

/* The Content-Type of what metrics_render writes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
