/* Checks that pin down behaviour the rest of the suite left free: each case
 * here kills a deliberate bug (a mutant) that survived every other test
 * (docs/robustness.md, "Mutation pass"), on inputs chosen so the answer is
 * exact in floating point. */
#include "rtr/ops.h"
#include "rtr/predictor.h"
#include "rtr/route.h"
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
        CHECK(rtr_path_budget(&path, path.pred_cost[j], &point) == RTR_OK);
        CHECK_MSG(point == j, "budget %g: point %lld, want %lld", path.pred_cost[j], (long long)point, (long long)j);
    }
    CHECK(rtr_path_budget(&path, 2.5, &point) == RTR_OK && point == 1);
    CHECK(rtr_path_budget(&path, 0.999, &point) == RTR_ERR_INVALID);
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

TEST_MAIN(T(test_argmax_tie_prefers_cheaper), T(test_budget_equal_to_a_point), T(test_ece_absolute))
