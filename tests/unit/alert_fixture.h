/* SPDX-License-Identifier: Apache-2.0 */
/* alert_fixture: rules from YAML text and an evaluator that records transitions, shared by the alert unit tests. */
#ifndef TP_ALERT_FIXTURE_H
#define TP_ALERT_FIXTURE_H

/* Include after <cmocka.h> and "alert.h". static inline: a test that uses
 * only some helpers compiles without unused-function warnings. */

#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

/* ---- helpers ---- */

/* Rules from YAML text whose top level is alerts:. */
static inline struct rules *rules_from(const char *yaml)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    struct rules *rs = rules_new();
    char err[512];

    assert_non_null(rs);
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml,
                                 strlen(yaml));
    assert_true(yaml_parser_load(&parser, &doc));
    root = yaml_document_get_root_node(&doc);
    assert_non_null(root);
    assert_int_equal(root->type, YAML_MAPPING_NODE);
    if (rules_parse_yaml(
            rs, &doc,
            yaml_document_get_node(&doc, root->data.mapping.pairs.start->value),
            "test.yaml", err, sizeof(err)) != 0) {
        fail_msg("rules rejected: %s", err);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rs;
}

/* One recorded transition, with its JSON as the caller would store it. */
struct rec {
    char fingerprint[ALERT_FINGERPRINT_LEN + 1];
    char rule[RULE_NAME_MAX + 1];
    char tenant[ALERT_TENANT_MAX + 1], channel[ALERT_DIM_MAX + 1],
        queue[ALERT_DIM_MAX + 1];
    enum alert_status status, previous;
    bool has_value, has_threshold, has_baseline;
    double value, threshold, baseline;
    int64_t active_at_ms, starts_at_ms, ends_at_ms;
    bool notifies;
    json_t *message; /* alert_to_json, NULL unless firing/resolved */
    json_t *state;   /* alert_state_to_json, NULL unless pending/firing */
};

#define MAX_RECS 64

struct recorder {
    struct rec v[MAX_RECS];
    size_t n;
    size_t total; /* also those beyond MAX_RECS */
};

static inline void record(const struct alert *a, void *opaque)
{
    struct recorder *r = opaque;
    struct rec *t;

    r->total++;
    if (r->n == MAX_RECS) {
        return;
    }
    t = &r->v[r->n++];
    memset(t, 0, sizeof(*t));
    snprintf(t->fingerprint, sizeof(t->fingerprint), "%s", a->fingerprint);
    snprintf(t->rule, sizeof(t->rule), "%s", a->rule->name);
    snprintf(t->tenant, sizeof(t->tenant), "%s", a->tenant);
    snprintf(t->channel, sizeof(t->channel), "%s", a->channel);
    snprintf(t->queue, sizeof(t->queue), "%s", a->queue);
    t->status = a->status;
    t->previous = a->previous;
    t->has_value = a->has_value;
    t->value = a->value;
    t->has_threshold = a->has_threshold;
    t->threshold = a->threshold;
    t->has_baseline = a->has_baseline;
    t->baseline = a->baseline;
    t->active_at_ms = a->active_at_ms;
    t->starts_at_ms = a->starts_at_ms;
    t->ends_at_ms = a->ends_at_ms;
    t->notifies = alert_notifies(a);
    t->message = alert_to_json(a);
    t->state = alert_state_to_json(a);
}

static inline void recorder_clear(struct recorder *r)
{
    for (size_t i = 0; i < r->n; i++) {
        json_decref(r->v[i].message);
        json_decref(r->v[i].state);
    }
    r->n = 0;
    r->total = 0;
}

/* An observation of the row acme/phone/billing. */
static inline struct alert_obs row(double value, int64_t samples)
{
    struct alert_obs o;

    memset(&o, 0, sizeof(o));
    o.tenant = "acme";
    o.channel = "phone";
    o.queue = "billing";
    o.has_value = !isnan(value);
    o.value = isnan(value) ? 0 : value;
    o.samples = samples;
    return o;
}

/* One evaluation at at_ms of one observation (NULL: the group is gone). */
static inline void evaluate(struct alert_eval *ae, const struct rule *r, int64_t at_ms,
                     const struct alert_obs *o)
{
    alert_eval_begin(ae, at_ms, NULL);
    if (o != NULL) {
        assert_int_equal(alert_eval_observe(ae, r, o), 0);
    }
    alert_eval_end(ae);

#endif
