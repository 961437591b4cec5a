/* SPDX-License-Identifier: Apache-2.0 */
/* alert: alert evaluation (alert.c) and an alert as JSON (alert_json.c). */
#ifndef TP_ALERT_H
#define TP_ALERT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"

/*
 * Use, once per evaluation (every flush and every bucket boundary):
 *
 *   alert_eval_begin(ae, now_ms, NULL);
 *   for each rule r of the set:
 *       alert_rule_needs(r, &needs);
 *       for each row (tenant, channel, queue) that alert_row_matches:
 *           fill a struct alert_obs as needs says;
 *           alert_eval_observe(ae, r, &obs);
 *   alert_eval_end(ae);
 *
 * Transitions arrive through the notify callback given to alert_eval_new.
 * Only groups whose condition holds (pending) or that fire are kept, so memory
 * is bounded by active alerts and the work by rules x rows observed.
 */

#define ALERT_FINGERPRINT_LEN 16
#define ALERT_TENANT_MAX 64
#define ALERT_DIM_MAX 32

/* "No such time" in the _ms fields of struct alert. */
#define ALERT_NO_TIME INT64_MIN

/* Pseudo-metric of no_data_for alerts: ms since the group's last event. */
#define ALERT_NO_DATA_METRIC "last_event_age_ms"

enum alert_status {
    ALERT_INACTIVE, /* no alert; a pending one was dropped */
    ALERT_PENDING,  /* holds, but not yet for `for` */
    ALERT_FIRING,
    ALERT_RESOLVED,
};

/* ---- what the caller reads ---- */

enum alert_source {
    ALERT_SRC_KPI,   /* tp:{T}:kpi:WINDOW:C:Q */
    ALERT_SRC_LIVE,  /* tp:{T}:live:C:Q */
    ALERT_SRC_EVENTS /* the row's newest event time (no_data_for) */
};

/* Everything borrowed from the rule. */
struct alert_needs {
    enum alert_source source;
    const char *field;    /* hash field of the value; NULL for no_data_for */
    const char *window;   /* KPI: the window in the key ("5m"), else NULL */
    const char *count[2]; /* fields summed into alert_obs.samples, NULL-
                             terminated; count[0] NULL: no sample count */
    bool baseline_value;  /* ratio kinds: fill alert_obs.baseline* from
                             tp:{T}:kpi:BASELINE:C:Q (field and count[]) */
    bool baseline_stats;  /* z-score kinds: fill alert_obs.stats_* */
    const char *baseline; /* ratio: the baseline window; z-score: the span */
    int64_t slice_ms;     /* z-score: slice length (the rule's window) */
    unsigned by;          /* RULE_BY_* dims that are concrete in a group row;
                             the others are _all */
};

/* Fills *out for rule r (borrowed; out's strings live as long as r). */
void alert_rule_needs(const struct rule *r, struct alert_needs *out);

/* True when the row is a group of r: every dimension in r->by is a concrete
 * value (not _all) matching r->match, every other one is _all. Tenant is
 * always in by; tenant values are never roll-ups. Values longer than
 * ALERT_TENANT_MAX / ALERT_DIM_MAX bytes never match. All borrowed. */
bool alert_row_matches(const struct rule *r, const char *tenant,
                       const char *channel, const char *queue);

/*
 * One group row of one rule at one evaluation. Zero it, then set what the
 * rule needs (alert_rule_needs); anything not set reads as absent.
 *
 * - value: the metric field of the row (KPI window or live gauge). Absent when
 *   the hash lacks the field (no samples, nobody waiting).
 * - samples: the sum of needs.count fields of the same hash (0 if absent).
 *   Gates min_samples and is the Wilson n of confidence.
 * - baseline*: ratio kinds: the same row's metric and sample count in the
 *   baseline window's KPI hash. Gated by min_samples like the value.
 * - stats_*: z-score kinds: the mean and sample standard deviation (n - 1) of
 *   the metric over the window-long slices of the baseline span that precede
 *   the current window ((baseline - window) / window slices ending where the
 *   current window starts, so a spike does not raise its own baseline),
 *   leaving out slices without a value or with fewer than min_samples
 *   samples; stats_slices is how many were used. Fewer than 2 slices or a
 *   zero stddev read as absent. The slices change only at slice boundaries;
 *   cache them.
 * - last_event_ms: no_data_for: the newest event time of the row, on the same
 *   clock as now_ms (event time in backtest). Absent for rows never seen, so
 *   only a group that used to send events can go quiet.
 */
struct alert_obs {
    const char *tenant; /* borrowed for the call */
    const char *channel;
    const char *queue;
    bool has_value;
    double value;
    int64_t samples;
    bool has_baseline;
    double baseline;
    int64_t baseline_samples;
    bool has_stats;
    double stats_mean;
    double stats_stddev;
    int64_t stats_slices;
    bool has_last_event;
    int64_t last_event_ms;
};

/* ---- alerts and transitions ---- */

/* One alert: a transition (notify callback) or an active alert (foreach).
 * Every pointer is borrowed and valid only during the callback. */
struct alert {
    const struct rule *rule;
    const char *fingerprint; /* ALERT_FINGERPRINT_LEN hex digits */
    const char *tenant;
    const char *channel; /* _all when not in the rule's by */
    const char *queue;
    enum alert_status status;   /* after the transition */
    enum alert_status previous; /* before it (== status in foreach) */
    bool has_value;             /* the metric (no_data: ms since last event) */
    double value;
    /* The line of the condition in metric units: above/below, factor x
     * baseline, mean +- z x stddev, or no_data_for ms. */
    bool has_threshold;
    double threshold;
    bool has_baseline; /* baseline kinds: baseline value or mean */
    double baseline;
    int64_t samples;
    int64_t active_at_ms;   /* the condition began to hold */
    int64_t starts_at_ms;   /* fired; ALERT_NO_TIME while pending */
    int64_t ends_at_ms;     /* resolved; ALERT_NO_TIME otherwise */
    int64_t clear_since_ms; /* firing, cleared since (keep_firing_for runs) */
};

/* Whether a transition is a notification (Kafka, Alertmanager, history
 * stream): to firing or to resolved. Exactly one per firing and one per
 * resolve. The other transitions (to pending, pending to inactive) only
 * change the persisted state. */
bool alert_notifies(const struct alert *a);

struct alert_eval;

/* Called once per transition, from observe, end and set_rules. It must not
 * call back into the evaluator. a is borrowed for the call. */
typedef void alert_notify_fn(const struct alert *a, void *opaque);

/* rs is borrowed and must outlive the evaluator (or the next set_rules).
 * Returns NULL on out of memory. */
struct alert_eval *alert_eval_new(const struct rules *rs,
                                  alert_notify_fn *notify, void *opaque);

/* Frees the evaluator; no transitions. NULL is a no-op. */
void alert_eval_destroy(struct alert_eval *ae);

/* Swaps in a reloaded rule set; rs is borrowed as in alert_eval_new, and the
 * old set must stay alive until this returns. State follows a rule by name.
 * Alerts of rules no longer present end now: firing ones resolve (notified),
 * pending ones go inactive. */
void alert_eval_set_rules(struct alert_eval *ae, const struct rules *rs,
                          int64_t now_ms);

/* Starts an evaluation at now_ms. tenant (borrowed, copied) limits end's
 * absence handling to one tenant; NULL means all. */
void alert_eval_begin(struct alert_eval *ae, int64_t now_ms,
                      const char *tenant);

/* Judges one row for rule r (an element of the current set). Rows that are
 * not groups of r (alert_row_matches) are ignored. Observe each group once
 * per evaluation. obs is borrowed. Returns 0, or -1 on out of memory or when
 * r is not in the set. */
int alert_eval_observe(struct alert_eval *ae, const struct rule *r,
                       const struct alert_obs *obs);

/* Ends the evaluation: each pending or firing group in scope that was not
 * observed is judged with its value absent, so a group that disappeared
 * drops from pending at once and resolves after keep_firing_for. */
void alert_eval_end(struct alert_eval *ae);

/* Visits every pending and firing alert (e.g. Alertmanager re-sends, with the
 * newest known value). a is borrowed for the call. */
void alert_eval_foreach(const struct alert_eval *ae,
                        void (*fn)(const struct alert *a, void *opaque),
                        void *opaque);

/* Pending plus firing alerts held. */
size_t alert_eval_count(const struct alert_eval *ae);

/* Drops the state of one tenant (NULL: all) without transitions, when
 * another instance takes it over. */
void alert_eval_forget(struct alert_eval *ae, const char *tenant);

/* ---- persisted state (tp:{TENANT}:alerts:active) ---- */

/* The state of a pending or firing alert: the alert message with status
 * "pending" or "firing" plus "active_at" and "clear_since" (RFC 3339 or
 * null). Store it under a->fingerprint on every transition to PENDING or
 * FIRING; delete the field on INACTIVE or RESOLVED. A running keep_firing_for
 * is not rewritten on each evaluation, so a restart in that span restarts it.
 * Returns a new reference, or NULL for other statuses or out of memory. */
json_t *alert_state_to_json(const struct alert *a);

/* Restores one stored state (borrowed) before evaluations resume, without
 * any notification: a firing alert stays firing (its start kept) and a
 * pending one keeps its active_at. A fingerprint already held is left as it
 * is. Returns 0; 1 when its rule is not in the set (see
 * alert_state_resolved); -1 with errstr when it is malformed or its
 * fingerprint does not match its rule and group. */
int alert_state_restore(struct alert_eval *ae, const json_t *state,
                        char *errstr, size_t errstr_size);

/* For a stored state whose rule is gone: the resolved message to send (value
 * null, ends_at now_ms), or NULL when it was only pending (nothing was
 * notified) or malformed. New reference. */
json_t *alert_state_resolved(const json_t *state, int64_t now_ms);

/* ---- output ---- */

/* The alert message of a firing or resolved alert (schemas/alert.schema.json).
 * New reference; NULL for other statuses or out of memory. Dump it with
 * JSON_REAL_PRECISION(10), the precision of the Redis hashes, or 0.1 prints
 * as 0.10000000000000001. */
json_t *alert_to_json(const struct alert *a);

/* One Alertmanager v2 alert (POST /api/v2/alerts takes an array of them):
 * labels alertname, severity, tenant, channel, queue and the rule's labels;
 * annotations summary and the rule's; startsAt; endsAt = now_ms +
 * valid_for_ms while firing (re-send well within it), ends_at when
 * resolved; generatorURL when generator_url (borrowed) is not NULL. New
 * reference; NULL for other statuses or out of memory. */
json_t *alert_to_alertmanager(const struct alert *a, int64_t now_ms,
                              int64_t valid_for_ms, const char *generator_url);

/* Renders a template (borrowed) for a; see enum rule_field. Numbers as by
 * alert_format_number, absent ones "n/a"; window "" for live gauges and
 * no_data. Returns a new string (free it), or NULL on out of memory or a
 * malformed template. */
char *alert_render(const char *tmpl, const struct alert *a);

/* Formats a number for people: integral values as integers ("120000"),
 * others of magnitude >= 1000 rounded to an integer ("125433"), the rest
 * with 4 significant digits ("0.3333", "2.5"); "NaN", "+Inf", "-Inf". buf
 * should hold 32 bytes. */
void alert_format_number(double v, char *buf, size_t size);

/* The fingerprint: FNV-1a 64 over rule, tenant, channel and queue, each
 * followed by a NUL byte (0 becomes 1), as 16 lowercase hex digits into out
 * (17 bytes). Also the key of the evaluator's map. */
void alert_fingerprint(const char *rule, const char *tenant,
                       const char *channel, const char *queue, char *out);

/* The bound of the two-sided Wilson score interval at confidence level c
 * (z = the normal quantile of (1 + c) / 2) for rate p of n samples: the
 * lower bound when lower, else the upper one. n must be > 0. */
double alert_wilson_bound(double p, int64_t n, double c, bool lower);

#endif
