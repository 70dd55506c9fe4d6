/* Reference routers and curve metrics on realised outcomes (evaluate.h). */
#include "eval/evaluate.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

rtr_status eval_refs_compute(eval_refs *r, const float *true_correct, const float *true_cost, int64_t n, int32_t k) {
    memset(r, 0, sizeof *r);
    r->k = k;
    r->single = rtr_malloc((size_t)k * sizeof *r->single);
    int32_t *choice = rtr_malloc((size_t)(n ? n : 1) * sizeof *choice);
    if (!r->single || !choice) {
        free(choice);
        eval_refs_free(r);
        return RTR_ERR_NOMEM;
    }
    rtr_router_single(r->single, true_correct, true_cost, n, k);
    r->random = rtr_router_random(r->single, k);
    rtr_router_oracle(choice, true_correct, true_cost, n, k);
    r->oracle = rtr_eval_choice(choice, true_correct, true_cost, n, k);
    r->best = rtr_router_best_single(r->single, k);
    r->cheapest = rtr_router_cheapest_single(r->single, k);
    free(choice);
    return RTR_OK;
}

void eval_refs_free(eval_refs *r) {
    free(r->single);
    memset(r, 0, sizeof *r);
}

double eval_refs_x_max(const eval_refs *r) {
    double x = fmax(isnan(r->oracle.cost) ? 0 : r->oracle.cost, isnan(r->random.cost) ? 0 : r->random.cost);
    for (int32_t j = 0; j < r->k; j++)
        if (!isnan(r->single[j].cost)) x = fmax(x, r->single[j].cost);
    return x;
}

rtr_status eval_curve_compute(eval_curve *m, const eval_refs *r, const double *cost, const double *acc, int64_t n,
                              double x_max) {
    m->aiq = m->apgr = m->cpt50 = m->cpt80 = m->to_match = m->oracle_gap = NAN;
    if (r->best < 0 || !(x_max > 0) || n < 1) return RTR_OK;
    rtr_status st = rtr_metric_aiq(cost, acc, n, x_max, &m->aiq);
    if (st) return st;
    const rtr_op_point *b = &r->single[r->best], *w = &r->single[r->cheapest];
    if (b->cost > w->cost) {
        double *x = rtr_malloc((size_t)n * sizeof *x);
        if (!x) return RTR_ERR_NOMEM;
        for (int64_t t = 0; t < n; t++) x[t] = (cost[t] - w->cost) / (b->cost - w->cost);
        m->apgr = rtr_metric_apgr(x, acc, n, w->acc, b->acc);
        m->cpt50 = rtr_metric_cpt(x, acc, n, w->acc, b->acc, 0.5);
        m->cpt80 = rtr_metric_cpt(x, acc, n, w->acc, b->acc, 0.8);
        free(x);
    }
    m->to_match = rtr_metric_cost_to_match(cost, acc, n, b->acc, b->cost);
    m->oracle_gap = rtr_metric_oracle_gap(cost, acc, n, r->oracle.cost, r->oracle.acc);
    return RTR_OK;
}
