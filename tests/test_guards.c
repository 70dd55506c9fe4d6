/* Checks that pin down behaviour the rest of the suite left free: each case
 * here kills a deliberate bug (a mutant) that survived every other test
 * (docs/robustness.md, "Mutation pass"), on inputs chosen so the answer is
 * exact in floating point. */
#include "rtr/metrics.h"
#include "rtr/ops.h"
#include "rtr/predictor.h"
#include "rtr/route.h"
#include "rtr/store.h"
#include "test.h"

#include <string.h>

/* An exact tie at λ = 0.5: pair 0 scores 0.5·(0.75 + 0.25) − 0.25 = 0.25,
 * pair 1 scores 0.5·(0.5 + 0) − 0 = 0.25. The tie rule (route.h) takes the
 * cheaper pair (1), not the more accurate one (0); a reordered rule flips it. */
static void test_argmax_tie_prefers_cheaper(void) {
    const float p[2] = {0.75f, 0.5f}, c[2] = {0.25f, 0.0f};
    int32_t choice = -7;
    rtr_route_argmax(&choice, p, c, 0.5, 1, 2);
    CHECK_MSG(choice == 1, "argmax chose %d", (int)choice);
    /* the envelope agrees: 0.5 is the switch point, which belongs to the
     * routing just left of it (the cheaper one) */
    CHECK(rtr_envelope_choose(&choice, p, c, 0.5, 1, 2) == RTR_OK);
    CHECK_MSG(choice == 1, "envelope chose %d", (int)choice);
    /* equal scores and equal costs: the more accurate, then the lower index */
    const float p2[3] = {0.5f, 0.75f, 0.75f}, c2[3] = {0.25f, 0.25f, 0.25f};
    rtr_route_argmax(&choice, p2, c2, 0.0, 1, 3);
    CHECK_MSG(choice == 1, "equal cost: argmax chose %d", (int)choice);
}

/* A budget equal to a path point's predicted mean cost affords that point:
 * two queries, pairs costing 1 (p 0.5) and 3 (p 1); the path's points cost
 * 1, 2 and 3 on average. */
static void test_budget_equal_to_a_point(void) {
    const float p[4] = {0.5f, 1.0f, 0.5f, 1.0f}, c[4] = {0.25f, 0.75f, 0.125f, 0.875f};
    const float cost[4] = {1, 3, 1, 3};
    rtr_route_table t = {.n = 2, .k = 2, .p = p, .c = c, .cost = cost};
    rtr_path path;
    CHECK(rtr_path_compute(&path, &t) == RTR_OK);
    CHECK_MSG(path.n_points == 3, "%lld points", (long long)path.n_points);
    if (path.n_points != 3) { rtr_path_free(&path); return; }
    CHECK(path.pred_cost[0] == 1.0 && path.pred_cost[1] == 2.0 && path.pred_cost[2] == 3.0);
    int64_t point = -1;
    for (int64_t j = 0; j < 3; j++) {
        CHECK(rtr_path_budget(&point, &path, path.pred_cost[j]) == RTR_OK);
        CHECK_MSG(point == j, "budget %g: point %lld, want %lld", path.pred_cost[j], (long long)point, (long long)j);
    }
    CHECK(rtr_path_budget(&point, &path, 2.5) == RTR_OK && point == 1);
    CHECK(rtr_path_budget(&point, &path, 0.999) == RTR_ERR_INVALID);
    rtr_path_free(&path);
}

/* ECE adds |accuracy − confidence| per bin: one over-confident bin and one
 * under-confident bin must not cancel. */
static void test_ece_absolute(void) {
    const float p[2] = {0.25f, 0.75f}, y[2] = {1.0f, 0.0f}, tok[2] = {10, 10};
    rtr_pred_metrics m;
    CHECK(rtr_pred_metrics_compute(&m, p, tok, y, tok, 2, 1) == RTR_OK);
    CHECK_CLOSE(m.ece, 0.75, 1e-12, 0);
    /* the same miscalibration in one direction only */
    const float p1[2] = {0.25f, 0.25f}, y1[2] = {1.0f, 1.0f};
    CHECK(rtr_pred_metrics_compute(&m, p1, tok, y1, tok, 2, 1) == RTR_OK);
    CHECK_CLOSE(m.ece, 0.75, 1e-12, 0);
}

/* The cost scale is the largest per-pair mean over the entries that have a
 * cost: a NaN (excluded or missing) entry is left out, not counted as 0. */
static void test_cost_scale_skips_nan(void) {
    const float c[4] = {NAN, 1.0f, 6.0f, 1.0f}; /* pair 0: mean 6 over one entry; pair 1: 1 */
    double scale = 0;
    CHECK(rtr_route_cost_scale(&scale, c, 2, 2) == RTR_OK);
    CHECK_MSG(scale == 6.0, "scale %g", scale);
}

/* --max-tokens T keeps a pair predicted at exactly T tokens ("above T" goes). */
static void test_max_tokens_keeps_the_cap(void) {
    float p[3] = {0.5f, 0.6f, 0.7f};
    const float tokens[3] = {99.0f, 100.0f, 100.5f};
    rtr_route_exclude(p, tokens, 1, 3, NULL, 100.0);
    CHECK(p[0] == 0.5f && p[1] == 0.6f && isnan(p[2]));
}

/* USD per call: input tokens at the input price, output tokens at the
 * output price (USD per million tokens). */
static void test_usd_cost_prices(void) {
    rtr_catalog cat;
    memset(&cat, 0, sizeof cat);
    CHECK(rtr_catalog_parse_json(&cat, "{\"models\": [{\"name\": \"m\", \"price_in\": 1, \"price_out\": 3}],"
                                       " \"strategies\": [{\"name\": \"s\"}]}", "test") == RTR_OK);
    const float tokens_in[2] = {1e6f, 0.0f}, tokens_out[2] = {0.0f, 2e6f};
    float usd[2] = {0, 0};
    CHECK(rtr_cost_usd(usd, tokens_out, tokens_in, &cat, 2) == RTR_OK);
    CHECK_MSG(usd[0] == 1.0f && usd[1] == 6.0f, "usd %g %g", usd[0], usd[1]);
    rtr_catalog_free(&cat);
}

/* Random is the mean of the single-pair points that exist: a pair without
 * outcomes is left out, not counted as accuracy 0. */
static void test_random_skips_missing_pairs(void) {
    const rtr_op_point single[3] = {{0.5, 10, 4, 0}, {NAN, NAN, 4, 4}, {1.0, 20, 4, 0}};
    rtr_op_point r = rtr_router_random(single, 3);
    CHECK_MSG(r.acc == 0.75 && r.cost == 15.0, "random %g, %g", r.acc, r.cost);
}

/* AIQ: the hull is cut at its highest accuracy, the most expensive point
 * reaching it; that point beyond x_max is an error (metrics.h), not a curve
 * quietly cut at the cheaper point of equal accuracy. */
static void test_aiq_peak_is_the_last_top_point(void) {
    const double cost[3] = {0, 1, 2}, acc[3] = {0.5, 0.8, 0.8};
    double aiq = 0;
    CHECK(rtr_metric_aiq(&aiq, cost, acc, 3, 4.0) == RTR_OK);
    CHECK_CLOSE(aiq, (0.65 + 0.8 + 0.8 * 2) / 4.0, 1e-12, 0);
    CHECK(rtr_metric_aiq(&aiq, cost, acc, 3, 1.5) == RTR_ERR_INVALID);
}

/* Oracle gap counts a point costing exactly the Oracle's cost. */
static void test_oracle_gap_at_equal_cost(void) {
    const double cost[2] = {1, 2}, acc[2] = {0.5, 0.875};
    CHECK_CLOSE(rtr_metric_oracle_gap(cost, acc, 2, 2.0, 1.0), 0.125, 1e-12, 0);
}

/* CPT: the first x where the curve reaches the target, also when it reaches
 * it exactly and stays flat (a mutant that needs "above" finds none). */
static void test_cpt_exact_target(void) {
    const double x[2] = {0.25, 0.5}, acc[2] = {0.75, 0.75};
    CHECK_CLOSE(rtr_metric_cpt(x, acc, 2, 0.5, 1.0, 0.5), 0.25, 1e-12, 0);
}

/* The dataset prior uses the training queries of each query's own dataset. */
static void test_prior_per_dataset(void) {
    const char *train_ds[3] = {"a", "a", "b"}, *ds[2] = {"a", "b"};
    const float correct[3] = {1, 1, 0}, cost[3] = {1, 1, 3};
    float p[2], c[2];
    CHECK(rtr_router_prior_table(p, c, ds, 2, train_ds, correct, cost, 3, 1) == RTR_OK);
    CHECK_MSG(p[0] == 1.0f && c[0] == 1.0f && p[1] == 0.0f && c[1] == 3.0f, "p %g %g c %g %g", p[0], p[1], c[0], c[1]);
}

/* kNN ties go to the lower index (metrics.h): three identical rows. */
static void test_knn_ties_lower_index(void) {
    const float ref[6] = {1, 0, 1, 0, 1, 0}, q[2] = {1, 0};
    int64_t idx[2] = {-1, -1};
    float sim[2];
    CHECK(rtr_knn_search(idx, sim, q, 1, ref, 3, 2, 2) == RTR_OK);
    CHECK_MSG(idx[0] == 0 && idx[1] == 1, "neighbours %lld %lld", (long long)idx[0], (long long)idx[1]);
}

/* Prediction metrics at their edges: ECE's ten bins of width 0.1 (0.79 and
 * 0.81 fall in different bins, their errors of opposite sign do not mix),
 * p = 0.5 predicts "correct", an error of exactly 200 tokens is within 200,
 * the median of an even count is the mean of the middle two. */
static void test_pred_metrics_edges(void) {
    const float p[2] = {0.79f, 0.81f}, y[2] = {1, 0}, tok[2] = {10, 10};
    rtr_pred_metrics m;
    CHECK(rtr_pred_metrics_compute(&m, p, tok, y, tok, 2, 1) == RTR_OK);
    CHECK_CLOSE(m.ece, (0.21 + 0.81) / 2, 1e-6, 0);
    const float half[1] = {0.5f}, one[1] = {1};
    CHECK(rtr_pred_metrics_compute(&m, half, tok, one, tok, 1, 1) == RTR_OK);
    CHECK_MSG(m.accuracy == 1.0, "accuracy %g", m.accuracy);
    const float pred[2] = {300, 10}, truth[2] = {100, 13};
    CHECK(rtr_pred_metrics_compute(&m, p, pred, y, truth, 2, 1) == RTR_OK);
    CHECK_MSG(m.within_200 == 1.0 && m.median_ae == 101.5 && m.mae == 101.5, "within %g median %g mae %g",
              m.within_200, m.median_ae, m.mae);
}

TEST_MAIN(T(test_argmax_tie_prefers_cheaper), T(test_budget_equal_to_a_point), T(test_ece_absolute),
          T(test_cost_scale_skips_nan), T(test_max_tokens_keeps_the_cap), T(test_usd_cost_prices),
          T(test_random_skips_missing_pairs), T(test_aiq_peak_is_the_last_top_point), T(test_oracle_gap_at_equal_cost),
          T(test_cpt_exact_target), T(test_prior_per_dataset), T(test_knn_ties_lower_index), T(test_pred_metrics_edges))
