/* Reference routers and curve metrics on realised outcomes (evaluate.h). */
#include "eval/evaluate.h"
#include "eval/knn.h"
#include "eval/curve_scan.h"
#include "common/util.h"
#include "rtr/dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

rtr_status eval_refs_acc_init(eval_refs_acc *a, int32_t k) {
    memset(a, 0, sizeof *a);
    a->k = k;
    a->acc = rtr_calloc((size_t)k, sizeof *a->acc);
    a->cost = rtr_calloc((size_t)k, sizeof *a->cost);
    a->missing = rtr_calloc((size_t)k, sizeof *a->missing);
    if (a->acc && a->cost && a->missing) return RTR_OK;
    eval_refs_acc_free(a);
    return RTR_ERR_NOMEM;
}

void eval_refs_acc_free(eval_refs_acc *a) {
    free(a->acc);
    free(a->cost);
    free(a->missing);
    free(a->choice);
    memset(a, 0, sizeof *a);
}

/* An outcome counts when both its correctness and its cost are known (as in
 * rtr_router_single and rtr_eval_choice, whose sums these are, chunked). */
static bool have(const float *correct, const float *cost, size_t at) { return !isnan(correct[at]) && !isnan(cost[at]); }

rtr_status eval_refs_acc_add(eval_refs_acc *a, const float *tc, const float *tk, int64_t n) {
    int32_t k = a->k;
    for (int32_t j = 0; j < k; j++)
        for (int64_t i = 0; i < n; i++) {
            size_t at = (size_t)i * (size_t)k + (size_t)j;
            if (!have(tc, tk, at)) { a->missing[j]++; continue; }
            a->acc[j] += tc[at];
            a->cost[j] += tk[at];
        }
    if (n > a->choice_cap) {
        int32_t *c = rtr_realloc(a->choice, sizeof *c * (size_t)n);
        if (!c) return RTR_ERR_NOMEM;
        a->choice = c;
        a->choice_cap = n;
    }
    /* the Oracle chooses among known outcomes only; -1 when a query has none */
    rtr_router_oracle(a->choice, tc, tk, n, k);
    for (int64_t i = 0; i < n; i++) {
        size_t at = (size_t)i * (size_t)k + (size_t)a->choice[i];
        if (a->choice[i] < 0) { a->o_missing++; continue; }
        a->o_acc += tc[at];
        a->o_cost += tk[at];
    }
    a->n += n;
    return RTR_OK;
}

rtr_status eval_refs_acc_sum_ranks(eval_refs_acc *a) {
    if (rtr_dist_size() == 1) return RTR_OK;
    size_t k = (size_t)a->k;
    double *f = rtr_malloc(sizeof *f * (2 * k + 2));
    int64_t *i = rtr_malloc(sizeof *i * (k + 2));
    rtr_status st = f && i ? RTR_OK : RTR_ERR_NOMEM;
    if (!st) {
        memcpy(f, a->acc, sizeof *f * k);
        memcpy(f + k, a->cost, sizeof *f * k);
        f[2 * k] = a->o_acc, f[2 * k + 1] = a->o_cost;
        memcpy(i, a->missing, sizeof *i * k);
        i[k] = a->o_missing, i[k + 1] = a->n;
        st = rtr_dist_sum_f64(f, 2 * k + 2);
    }
    if (!st) st = rtr_dist_sum_i64(i, k + 2);
    if (!st) {
        memcpy(a->acc, f, sizeof *f * k);
        memcpy(a->cost, f + k, sizeof *f * k);
        a->o_acc = f[2 * k], a->o_cost = f[2 * k + 1];
        memcpy(a->missing, i, sizeof *i * k);
        a->o_missing = i[k], a->n = i[k + 1];
    }
    free(f);
    free(i);
    return st;
}

static rtr_op_point mean_point(double acc, double cost, int64_t n, int64_t missing) {
    int64_t have_n = n - missing;
    return (rtr_op_point){have_n ? acc / have_n : NAN, have_n ? cost / have_n : NAN, n, missing};
}

rtr_status eval_refs_acc_finish(eval_refs_acc *a, eval_refs *r) {
    memset(r, 0, sizeof *r);
    r->k = a->k;
    if (!(r->single = rtr_malloc((size_t)a->k * sizeof *r->single))) {
        eval_refs_acc_free(a);
        return RTR_ERR_NOMEM;
    }
    for (int32_t j = 0; j < a->k; j++) r->single[j] = mean_point(a->acc[j], a->cost[j], a->n, a->missing[j]);
    r->random = rtr_router_random(r->single, a->k);
    r->oracle = mean_point(a->o_acc, a->o_cost, a->n, a->o_missing);
    r->best = rtr_router_best_single(r->single, a->k);
    r->cheapest = rtr_router_cheapest_single(r->single, a->k);
    eval_refs_acc_free(a);
    return RTR_OK;
}

rtr_status eval_refs_compute(eval_refs *r, const float *true_correct, const float *true_cost, int64_t n, int32_t k) {
    eval_refs_acc a;
    rtr_status st = eval_refs_acc_init(&a, k);
    if (!st) st = eval_refs_acc_add(&a, true_correct, true_cost, n);
    if (st) {
        eval_refs_acc_free(&a);
        memset(r, 0, sizeof *r);
        return st;
    }
    return eval_refs_acc_finish(&a, r);
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
    rtr_status st = rtr_metric_aiq(&m->aiq, cost, acc, n, x_max);
    if (st) return st;
    const rtr_op_point *b = &r->single[r->best], *w = &r->single[r->cheapest];
    if (b->cost > w->cost) {
        double *x = rtr_malloc((size_t)n * sizeof *x);
        if (!x) return RTR_ERR_NOMEM;
        for (int64_t t = 0; t < n; t++) x[t] = curve_norm_cost(cost[t], w->cost, b->cost);
        m->apgr = rtr_metric_apgr(x, acc, n, w->acc, b->acc);
        m->cpt50 = rtr_metric_cpt(x, acc, n, w->acc, b->acc, 0.5);
        m->cpt80 = rtr_metric_cpt(x, acc, n, w->acc, b->acc, 0.8);
        free(x);
    }
    m->to_match = rtr_metric_cost_to_match(cost, acc, n, b->acc, b->cost);
    m->oracle_gap = rtr_metric_oracle_gap(cost, acc, n, r->oracle.cost, r->oracle.acc);
    return RTR_OK;
}

void eval_curve_stream_init(eval_curve_stream *c, const eval_refs *r) {
    *c = (eval_curve_stream){.r = r, .on = r->best >= 0};
    if (!c->on) return;
    const rtr_op_point *b = &r->single[r->best], *w = &r->single[r->cheapest];
    c->norm = b->cost > w->cost;
    double target[2] = {curve_target(w->acc, b->acc, 0.5), curve_target(w->acc, b->acc, 0.8)};
    area_scan_init(&c->area, target, 2);
    match_scan_init(&c->match, b->acc, r->oracle.cost);
}

void eval_curve_stream_add(eval_curve_stream *c, double cost, double acc) {
    c->n++;
    if (!c->on || isnan(cost) || isnan(acc)) return;
    const rtr_op_point *b = &c->r->single[c->r->best], *w = &c->r->single[c->r->cheapest];
    hull_scan_add(&c->hull, cost, acc);
    if (c->norm) area_scan_add(&c->area, curve_norm_cost(cost, w->cost, b->cost), acc);
    match_scan_add(&c->match, cost, acc);
}

rtr_status eval_curve_stream_finish(eval_curve_stream *c, eval_curve *m, double *aiq0, double x_max) {
    *m = (eval_curve){NAN, NAN, NAN, NAN, NAN, NAN};
    if (aiq0) *aiq0 = NAN;
    rtr_status st = RTR_OK;
    if (c->on && x_max > 0 && c->n > 0) {
        const rtr_op_point *b = &c->r->single[c->r->best], *w = &c->r->single[c->r->cheapest];
        hull_scan h0 = c->hull; /* AIQ from zero: the same hull, a copy (hull_scan_aiq frees its own) */
        h0.pt = NULL;
        if (aiq0 && c->hull.n) {
            if (!(h0.pt = rtr_malloc((size_t)c->hull.n * sizeof *h0.pt))) st = RTR_ERR_NOMEM;
            else memcpy(h0.pt, c->hull.pt, (size_t)c->hull.n * sizeof *h0.pt);
        }
        if (!st) st = hull_scan_aiq(&c->hull, x_max, false, &m->aiq);
        if (!st && aiq0 && hull_scan_aiq(&h0, x_max, true, aiq0) != RTR_OK) *aiq0 = NAN;
        free(h0.pt);
        if (!st && c->norm) {
            double area = area_scan_finish(&c->area);
            m->apgr = curve_apgr(area, w->acc, b->acc);
            m->cpt50 = c->area.cpt[0];
            m->cpt80 = c->area.cpt[1];
        }
        if (!st) {
            m->to_match = match_scan_to_match(&c->match, b->cost);
            m->oracle_gap = match_scan_gap(&c->match, c->r->oracle.acc);
        }
    }
    eval_curve_stream_free(c);
    return st;
}

void eval_curve_stream_free(eval_curve_stream *c) {
    free(c->hull.pt);
    c->hull.pt = NULL;
    c->hull.n = c->hull.cap = 0;
}

rtr_status eval_knn_table(float *p, float *c, rtr_knn_info *info, const float *emb, int64_t n,
                          const float *train_emb, const float *train_correct, const float *train_cost,
                          int64_t n_train, int32_t d, int32_t k, int32_t nn) {
    eval_knn_model m;
    knn_params prm = knn_default_params();
    rtr_status st = eval_knn_fit(&m, train_emb, train_correct, train_cost, n_train, d, k, nn, &prm);
    for (int64_t i0 = 0; !st && i0 < n; i0 += EVAL_KNN_BLOCK) {
        int64_t m_rows = n - i0 < EVAL_KNN_BLOCK ? n - i0 : EVAL_KNN_BLOCK;
        st = eval_knn_apply(&m, p + (size_t)i0 * k, c + (size_t)i0 * k, emb + (size_t)i0 * d, m_rows);
    }
    if (!st && info) *info = m.info;
    eval_knn_free(&m);
    return st;
}
