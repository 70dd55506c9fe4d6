/* Reference routers and routing metrics (include/rtr/metrics.h): operating
 * points on ground truth, Random/Oracle/best-single, the dataset-prior and
 * kNN routing tables (kNN through blocked SGEMM), the RouteLLM-style
 * two-pair sweep, and AIQ, APGR, CPT, cost-to-match and oracle gap. */
#include "rtr/metrics.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "eval/knn.h"
#include "eval/curve_scan.h"
#include "eval/evaluate.h"

static bool outcome_missing(const float *correct, const float *cost, size_t at) {
    return isnan(correct[at]) || isnan(cost[at]);
}

rtr_op_point rtr_eval_choice(const int32_t *choice, const float *correct, const float *cost,
                             int64_t n, int32_t k) {
    double acc = 0, cst = 0;
    int64_t missing = 0;
    for (int64_t i = 0; i < n; i++) {
        if (choice[i] < 0) { missing++; continue; }
        size_t at = (size_t)i * (size_t)k + (size_t)choice[i];
        if (outcome_missing(correct, cost, at)) { missing++; continue; }
        acc += correct[at];
        cst += cost[at];
    }
    int64_t have = n - missing;
    return (rtr_op_point){have ? acc / have : NAN, have ? cst / have : NAN, n, missing};
}

/* ---------------------------------------------------- reference routers */

void rtr_router_single(rtr_op_point *out, const float *correct, const float *cost, int64_t n, int32_t k) {
    for (int32_t j = 0; j < k; j++) {
        double acc = 0, cst = 0;
        int64_t missing = 0;
        for (int64_t i = 0; i < n; i++) {
            size_t at = (size_t)i * (size_t)k + (size_t)j;
            if (outcome_missing(correct, cost, at)) { missing++; continue; }
            acc += correct[at];
            cst += cost[at];
        }
        int64_t have = n - missing;
        out[j] = (rtr_op_point){have ? acc / have : NAN, have ? cst / have : NAN, n, missing};
    }
}

rtr_op_point rtr_router_random(const rtr_op_point *single, int32_t k) {
    rtr_op_point r = {0, 0, single[0].n, 0};
    int32_t used = 0;
    for (int32_t j = 0; j < k; j++)
        if (!isnan(single[j].acc)) { r.acc += single[j].acc; r.cost += single[j].cost; used++; }
    r.acc = used ? r.acc / used : NAN;
    r.cost = used ? r.cost / used : NAN;
    /* the expected number of missing outcomes under a uniform choice */
    double missing = 0;
    for (int32_t j = 0; j < k; j++) missing += (double)single[j].n_missing;
    r.n_missing = (int64_t)llround(missing / k);
    return r;
}

int32_t rtr_router_best_single(const rtr_op_point *single, int32_t k) {
    int32_t best = -1;
    for (int32_t j = 0; j < k; j++) {
        if (isnan(single[j].acc)) continue;
        if (best < 0 || single[j].acc > single[best].acc ||
            (single[j].acc == single[best].acc && single[j].cost < single[best].cost)) best = j;
    }
    return best;
}

int32_t rtr_router_cheapest_single(const rtr_op_point *single, int32_t k) {
    int32_t best = -1;
    for (int32_t j = 0; j < k; j++) {
        if (isnan(single[j].acc)) continue;
        if (best < 0 || single[j].cost < single[best].cost ||
            (single[j].cost == single[best].cost && single[j].acc > single[best].acc)) best = j;
    }
    return best;
}

void rtr_router_oracle(int32_t *choice, const float *correct, const float *cost, int64_t n, int32_t k) {
    for (int64_t i = 0; i < n; i++) {
        const float *ci = correct + i * k, *ki = cost + i * k;
        float top = -INFINITY;
        for (int32_t j = 0; j < k; j++)
            if (!isnan(ci[j]) && !isnan(ki[j]) && ci[j] > top) top = ci[j];
        int32_t best = -1;
        for (int32_t j = 0; j < k; j++) {
            if (isnan(ci[j]) || isnan(ki[j]) || (top > 0 && ci[j] != top)) continue;
            if (best < 0 || ki[j] < ki[best]) best = j;
        }
        choice[i] = best;
    }
}

/* Per-pair means of outcomes over the rows listed in rows (all rows when
 * NULL): p, c [k]; NaN where a pair has no outcome. */
static void pair_means(float *p, float *c, const float *correct, const float *cost, int32_t k,
                       const int64_t *rows, int64_t n_rows) {
    for (int32_t j = 0; j < k; j++) {
        double sp = 0, sc = 0;
        int64_t cnt = 0;
        for (int64_t r = 0; r < n_rows; r++) {
            size_t at = (size_t)(rows ? rows[r] : r) * (size_t)k + (size_t)j;
            if (outcome_missing(correct, cost, at)) continue;
            sp += correct[at];
            sc += cost[at];
            cnt++;
        }
        p[j] = cnt ? (float)(sp / cnt) : NAN;
        c[j] = cnt ? (float)(sc / cnt) : NAN;
    }
}

/* Replace NaN entries of a [k] row by the fallback row. */
static void fill_missing(float *p, float *c, const float *fp, const float *fc, int32_t k) {
    for (int32_t j = 0; j < k; j++)
        if (isnan(p[j])) { p[j] = fp[j]; c[j] = fc[j]; }
}

rtr_status rtr_router_prior_table(float *p, float *c, const char *const *dataset, int64_t n,
                                  const char *const *train_dataset, const float *train_correct,
                                  const float *train_cost, int64_t n_train, int32_t k) {
    if (n_train <= 0) return rtr_fail(RTR_ERR_INVALID, "dataset prior: empty training split");
    size_t ku = (size_t)k;
    float *gp = rtr_malloc(ku * sizeof *gp), *gc = rtr_malloc(ku * sizeof *gc);
    float *dp = rtr_malloc(ku * sizeof *dp), *dc = rtr_malloc(ku * sizeof *dc);
    int64_t *rows = rtr_malloc((size_t)n_train * sizeof *rows);
    bool *done = rtr_calloc((size_t)(n ? n : 1), sizeof *done);
    rtr_status st = gp && gc && dp && dc && rows && done ? RTR_OK : RTR_ERR_NOMEM;
    if (st == RTR_OK) pair_means(gp, gc, train_correct, train_cost, k, NULL, n_train);
    /* One pass per distinct dataset among the queries: datasets are few. */
    for (int64_t i = 0; i < n && st == RTR_OK; i++) {
        if (done[i]) continue;
        int64_t nr = 0;
        for (int64_t r = 0; r < n_train; r++)
            if (!strcmp(train_dataset[r], dataset[i])) rows[nr++] = r;
        pair_means(dp, dc, train_correct, train_cost, k, rows, nr);
        fill_missing(dp, dc, gp, gc, k);
        for (int64_t q = i; q < n; q++) {
            if (done[q] || strcmp(dataset[q], dataset[i])) continue;
            memcpy(p + (size_t)q * ku, dp, ku * sizeof *dp);
            memcpy(c + (size_t)q * ku, dc, ku * sizeof *dc);
            done[q] = true;
        }
    }
    free(gp); free(gc); free(dp); free(dc); free(rows); free(done);
    return st;
}

/* Rows scaled to unit L2 norm (zero rows stay zero). */
static float *normalised_copy(const float *x, int64_t n, int32_t d) {
    float *y = rtr_malloc((size_t)n * (size_t)d * sizeof *y);
    if (!y) return NULL;
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        double ss = 0;
        for (int32_t t = 0; t < d; t++) ss += (double)xi[t] * xi[t];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int32_t t = 0; t < d; t++) y[i * d + t] = xi[t] * inv;
    }
    return y;
}

rtr_status rtr_knn_search(int64_t *idx, float *sim, const float *q, int64_t n_q, const float *ref,
                          int64_t n_ref, int32_t d, int32_t nn) {
    if (nn <= 0 || nn > n_ref) return rtr_fail(RTR_ERR_INVALID, "kNN: k = %d neighbours but %lld reference rows", (int)nn, (long long)n_ref);
    enum { BLOCK = 256 }; /* query rows per GEMM: bounds the score block to BLOCK x n_ref */
    float *qn = normalised_copy(q, n_q, d), *rn = normalised_copy(ref, n_ref, d);
    float *s = rtr_malloc((size_t)BLOCK * (size_t)n_ref * sizeof *s);
    if (!qn || !rn || !s) { free(qn); free(rn); free(s); return RTR_ERR_NOMEM; }
    for (int64_t b0 = 0; b0 < n_q; b0 += BLOCK) {
        int64_t nb = n_q - b0 < BLOCK ? n_q - b0 : BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)n_ref, d, 1.0f,
                    qn + b0 * d, d, rn, d, 0.0f, s, (int)n_ref);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < nb; r++) {
            /* Insertion into a sorted list of nn: nn is small (10). */
            int64_t *bi = idx + (b0 + r) * nn;
            float *bs = sim + (b0 + r) * nn;
            int32_t have = 0;
            const float *sr = s + r * n_ref;
            for (int64_t t = 0; t < n_ref; t++) {
                if (have == nn && sr[t] <= bs[nn - 1]) continue;
                int32_t pos = have < nn ? have++ : nn - 1;
                for (; pos > 0 && bs[pos - 1] < sr[t]; pos--) { bs[pos] = bs[pos - 1]; bi[pos] = bi[pos - 1]; }
                bs[pos] = sr[t];
                bi[pos] = t;
            }
        }
    }
    free(qn); free(rn); free(s);
    return RTR_OK;
}

/* pair_means over the neighbours rows[0..n_rows) that exist: an index search
 * pads with -1 when its probed lists hold fewer than nn rows. */
static void neighbour_means(float *p, float *c, const float *correct, const float *cost, int32_t k,
                            const int64_t *rows, int32_t n_rows) {
    while (n_rows > 0 && rows[n_rows - 1] < 0) n_rows--; /* padding comes last */
    pair_means(p, c, correct, cost, k, rows, n_rows);
}

void eval_knn_free(eval_knn_model *m) {
    knn_index_free(m->ix);
    free(m->gp);
    free(m->gc);
    memset(m, 0, sizeof *m);
}

rtr_status eval_knn_fit(eval_knn_model *m, const float *train_emb, const float *train_correct,
                        const float *train_cost, int64_t n_train, int32_t d, int32_t k, int32_t nn,
                        const knn_params *prm) {
    memset(m, 0, sizeof *m);
    if (n_train <= 0) return rtr_fail(RTR_ERR_INVALID, "kNN router: empty training split");
    if (nn > n_train) nn = (int32_t)n_train;
    *m = (eval_knn_model){.train_emb = train_emb, .train_correct = train_correct, .train_cost = train_cost,
                          .n_train = n_train, .d = d, .k = k, .nn = nn,
                          .info = {.exact = true, .exact_max = prm->exact_max, .recall = 1}};
    m->gp = rtr_malloc((size_t)k * sizeof *m->gp), m->gc = rtr_malloc((size_t)k * sizeof *m->gc);
    rtr_status st = m->gp && m->gc ? RTR_OK : RTR_ERR_NOMEM;
    if (!st) pair_means(m->gp, m->gc, train_correct, train_cost, k, NULL, n_train);
    if (!st && n_train > prm->exact_max) { /* quadratic beyond the threshold: the IVF index (src/eval/knn.c) */
        knn_params ip = *prm;
        ip.exact_max = 0, ip.k = nn;
        st = knn_index_build(&m->ix, train_emb, n_train, d, &ip);
        if (!st) {
            m->info = (rtr_knn_info){.exact = false, .exact_max = prm->exact_max, .lists = knn_index_lists(m->ix),
                                     .nprobe = knn_index_nprobe(m->ix), .recall = knn_index_recall(m->ix)};
            rtr_note("kNN router: IVF index over %lld training rows (%d lists, %d probed; recall@%d %.3f against "
                     "exact search on a calibration sample)", (long long)n_train, (int)m->info.lists,
                     (int)m->info.nprobe, (int)nn, m->info.recall);
        }
    }
    if (st) eval_knn_free(m);
    return st;
}

rtr_status eval_knn_apply(const eval_knn_model *m, float *p, float *c, const float *emb, int64_t n) {
    int32_t nn = m->nn, k = m->k;
    int64_t *idx = rtr_malloc((size_t)(n ? n : 1) * (size_t)nn * sizeof *idx);
    float *sim = rtr_malloc((size_t)(n ? n : 1) * (size_t)nn * sizeof *sim);
    rtr_status st = idx && sim ? RTR_OK : RTR_ERR_NOMEM;
    if (!st && n) st = m->ix ? knn_index_search(m->ix, idx, sim, emb, n, nn)
                             : rtr_knn_search(idx, sim, emb, n, m->train_emb, m->n_train, m->d, nn);
    for (int64_t i = 0; !st && i < n; i++) {
        neighbour_means(p + i * k, c + i * k, m->train_correct, m->train_cost, k, idx + i * nn, nn);
        fill_missing(p + i * k, c + i * k, m->gp, m->gc, k);
    }
    free(idx); free(sim);
    return st;
}

rtr_status knn_router_table(float *p, float *c, const float *emb, int64_t n, const float *train_emb,
                            const float *train_correct, const float *train_cost, int64_t n_train, int32_t d,
                            int32_t k, int32_t nn, const knn_params *prm, rtr_knn_info *info) {
    eval_knn_model m;
    rtr_status st = eval_knn_fit(&m, train_emb, train_correct, train_cost, n_train, d, k, nn, prm);
    if (!st) st = eval_knn_apply(&m, p, c, emb, n);
    if (!st && info) *info = m.info;
    eval_knn_free(&m);
    return st;
}

rtr_status rtr_router_knn_table_info(float *p, float *c, rtr_knn_info *info, const float *emb, int64_t n,
                                     const float *train_emb, const float *train_correct, const float *train_cost, int64_t n_train,
                                     int32_t d, int32_t k, int32_t nn) {
    knn_params prm = knn_default_params();
    return knn_router_table(p, c, emb, n, train_emb, train_correct, train_cost, n_train, d, k, nn, &prm, info);
}

rtr_status rtr_router_knn_table(float *p, float *c, const float *emb, int64_t n,
                                const float *train_emb, const float *train_correct,
                                const float *train_cost, int64_t n_train, int32_t d, int32_t k,
                                int32_t nn) {
    return rtr_router_knn_table_info(p, c, NULL, emb, n, train_emb, train_correct, train_cost, n_train, d, k, nn);
}

typedef struct {
    float s;
    int64_t i;
} scored;

static int scored_desc(const void *x, const void *y) {
    const scored *u = x, *v = y;
    if (u->s != v->s) return u->s > v->s ? -1 : 1;
    return (u->i > v->i) - (u->i < v->i);
}

rtr_status rtr_router_two_pair_sweep(rtr_curve *out, const float *score, const float *correct,
                                     const float *cost, int64_t n, int32_t k, int32_t weak,
                                     int32_t strong) {
    memset(out, 0, sizeof *out);
    if (n <= 0) return rtr_fail(RTR_ERR_INVALID, "two-pair sweep: no queries");
    for (int64_t i = 0; i < n; i++)
        if (isnan(score[i])) return rtr_fail(RTR_ERR_NUMERIC, "two-pair sweep: score of query %lld is NaN", (long long)i);
    scored *ord = rtr_malloc((size_t)n * sizeof *ord);
    out->x = rtr_malloc((size_t)(n + 1) * sizeof(double));
    out->acc = rtr_malloc((size_t)(n + 1) * sizeof(double));
    out->cost = rtr_malloc((size_t)(n + 1) * sizeof(double));
    if (!ord || !out->x || !out->acc || !out->cost) { free(ord); rtr_curve_free(out); return RTR_ERR_NOMEM; }
    for (int64_t i = 0; i < n; i++) ord[i] = (scored){score[i], i};
    qsort(ord, (size_t)n, sizeof *ord, scored_desc);
    /* Start with everything on weak, move queries to strong in score order,
     * one point per group of equal scores (a threshold cannot split them). */
    double sa = 0, sc = 0;
    int64_t missing = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t at = (size_t)i * (size_t)k + (size_t)weak;
        if (outcome_missing(correct, cost, at)) missing++;
        else { sa += correct[at]; sc += cost[at]; }
    }
    int64_t np = 0;
    for (int64_t m = 0;;) {
        int64_t have = n - missing;
        out->x[np] = (double)m / (double)n;
        out->acc[np] = have ? sa / have : NAN;
        out->cost[np++] = have ? sc / have : NAN;
        if (m == n) break;
        for (float s0 = ord[m].s; m < n && ord[m].s == s0; m++) {
            size_t row = (size_t)ord[m].i * (size_t)k, aw = row + (size_t)weak, as = row + (size_t)strong;
            if (outcome_missing(correct, cost, aw)) missing--;
            else { sa -= correct[aw]; sc -= cost[aw]; }
            if (outcome_missing(correct, cost, as)) missing++;
            else { sa += correct[as]; sc += cost[as]; }
        }
    }
    out->n_points = np;
    free(ord);
    return RTR_OK;
}

void rtr_curve_free(rtr_curve *c) {
    free(c->x);
    free(c->acc);
    free(c->cost);
    memset(c, 0, sizeof *c);
}

/* --------------------------------------------------------------- metrics */

int curve_point_cmp(const void *x, const void *y) {
    const curve_point *a = x, *b = y;
    if (a->cost != b->cost) return a->cost < b->cost ? -1 : 1;
    if (a->acc != b->acc) return a->acc > b->acc ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

static int xy_cmp(const void *a, const void *b) {
    const curve_xy *u = a, *v = b;
    if (u->x != v->x) return u->x < v->x ? -1 : 1;
    return (u->y < v->y) - (u->y > v->y); /* higher y first */
}

/* Finite points sorted by x (ties: higher y first); caller frees. */
static curve_xy *points_sorted(const double *x, const double *y, int64_t n, int64_t *m) {
    curve_xy *pt = malloc(sizeof *pt * (size_t)(n ? n : 1));
    *m = 0;
    if (!pt) return NULL;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) pt[(*m)++] = (curve_xy){x[i], y[i]};
    qsort(pt, (size_t)*m, sizeof *pt, xy_cmp);
    return pt;
}

void hull_scan_add(hull_scan *h, double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return;
    h->any = true;
    /* Upper concave hull (monotone chain); at equal cost only the most
     * accurate point (the first in order) can be on it. */
    if (h->n && h->pt[h->n - 1].x == x) return;
    curve_xy *p = h->pt;
    while (h->n >= 2 && (p[h->n - 1].x - p[h->n - 2].x) * (y - p[h->n - 2].y) -
                                (p[h->n - 1].y - p[h->n - 2].y) * (x - p[h->n - 2].x) >= 0)
        h->n--;
    if (h->n == h->cap) {
        int64_t cap = h->cap ? 2 * h->cap : 64;
        curve_xy *q = realloc(h->pt, sizeof *q * (size_t)cap);
        if (!q) { h->nomem = true; return; }
        h->pt = q, h->cap = cap;
    }
    h->pt[h->n++] = (curve_xy){x, y};
}

rtr_status hull_scan_aiq(hull_scan *h, double x_max, bool from_zero, double *aiq) {
    rtr_status st = RTR_OK;
    if (!(x_max > 0)) st = rtr_fail(RTR_ERR_INVALID, "AIQ: x_max must be > 0 (got %g)", x_max);
    else if (h->nomem) st = rtr_fail(RTR_ERR_NOMEM, "AIQ: out of memory");
    else if (!h->any) st = rtr_fail(RTR_ERR_INVALID, "AIQ: no finite (cost, accuracy) point");
    const curve_xy *pt = h->pt;
    /* Non-decreasing: a concave hull falls only after its peak. */
    int64_t top = 0;
    for (int64_t t = 1; !st && t < h->n; t++)
        if (pt[t].y >= pt[top].y) top = t;
    if (!st && pt[top].x > x_max) st = rtr_fail(RTR_ERR_INVALID, "AIQ: hull point at cost %g lies beyond x_max %g", pt[top].x, x_max);
    if (!st) {
        double area = pt[top].y * (x_max - pt[top].x);
        for (int64_t t = 0; t < top; t++) area += 0.5 * (pt[t].y + pt[t + 1].y) * (pt[t + 1].x - pt[t].x);
        if (from_zero) area += pt[0].y * fmax(pt[0].x, 0.0);
        *aiq = area / x_max;
    }
    free(h->pt);
    memset(h, 0, sizeof *h);
    return st;
}

/* AIQ (RouterBench) or, with from_zero, the variant extended flat down to
 * cost 0 (metrics.h). */
static rtr_status aiq_of(const double *cost, const double *acc, int64_t n, double x_max, bool from_zero, double *aiq) {
    if (!(x_max > 0)) return rtr_fail(RTR_ERR_INVALID, "AIQ: x_max must be > 0 (got %g)", x_max);
    int64_t m;
    curve_xy *pt = points_sorted(cost, acc, n, &m);
    if (!pt) return rtr_fail(RTR_ERR_NOMEM, "AIQ: out of memory");
    hull_scan h = {0};
    for (int64_t t = 0; t < m; t++) hull_scan_add(&h, pt[t].x, pt[t].y);
    free(pt);
    return hull_scan_aiq(&h, x_max, from_zero, aiq);
}

void area_scan_init(area_scan *a, const double *target, int n_target) {
    *a = (area_scan){.n_target = n_target};
    for (int i = 0; i < n_target; i++) a->target[i] = target[i], a->cpt[i] = NAN;
}

/* The group of points at one x ends: in x then y order the segment from
 * the previous group arrives at its highest y and the next leaves from its
 * lowest; the segments between have no width. */
static void area_group_end(area_scan *a) {
    double x = a->gx, y = a->gmax;
    if (!a->prev) {
        a->area = y * fmin(fmax(x, 0.0), 1.0); /* flat before the first point */
    } else {
        double x0 = a->px, y0 = a->py, lo = fmax(x0, 0.0), hi = fmin(x, 1.0);
        if (hi > lo) {
            double slope = (y - y0) / (x - x0);
            a->area += 0.5 * (2 * y0 + slope * (lo - x0 + hi - x0)) * (hi - lo);
        }
    }
    /* the first point at or above a target: its x, or where the segment to it crosses the target */
    for (int i = 0; i < a->n_target; i++)
        if (isnan(a->cpt[i]) && !(y < a->target[i]))
            a->cpt[i] = a->prev ? a->px + (a->target[i] - a->py) * (x - a->px) / (y - a->py) : x;
    a->px = x, a->py = a->gmin, a->prev = true;
}

void area_scan_add(area_scan *a, double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return;
    if (a->open && x == a->gx) { /* the same x (a sorter on another key may give its points in any order) */
        a->gmax = fmax(a->gmax, y);
        a->gmin = fmin(a->gmin, y);
        return;
    }
    if (a->open) area_group_end(a);
    a->open = true;
    a->gx = x, a->gmax = a->gmin = y;
}

double area_scan_finish(area_scan *a) {
    if (!a->open) return NAN;
    area_group_end(a);
    a->open = false;
    return a->area + a->py * (1.0 - fmin(fmax(a->px, 0.0), 1.0)); /* flat after the last */
}

rtr_status rtr_metric_aiq(double *aiq, const double *cost, const double *acc, int64_t n, double x_max) {
    return aiq_of(cost, acc, n, x_max, false, aiq);
}

rtr_status rtr_metric_aiq_from_zero(double *aiq, const double *cost, const double *acc, int64_t n, double x_max) {
    return aiq_of(cost, acc, n, x_max, true, aiq);
}

/* area_scan over the finite points of (x, y) in order. */
static double area_of(const double *x, const double *y, int64_t n, const double *target, int n_target, double *cpt) {
    int64_t m;
    curve_xy *pt = points_sorted(x, y, n, &m);
    if (!pt) return NAN;
    area_scan a;
    area_scan_init(&a, target, n_target);
    for (int64_t t = 0; t < m; t++) area_scan_add(&a, pt[t].x, pt[t].y);
    free(pt);
    double area = area_scan_finish(&a);
    for (int i = 0; i < n_target; i++) cpt[i] = a.cpt[i];
    return area;
}

double rtr_curve_area01(const double *x, const double *y, int64_t n) { return area_of(x, y, n, NULL, 0, NULL); }

double curve_target(double acc_weak, double acc_strong, double frac) {
    return acc_weak + frac * (acc_strong - acc_weak);
}

double curve_norm_cost(double cost, double cost_cheapest, double cost_best) {
    return (cost - cost_cheapest) / (cost_best - cost_cheapest);
}

double curve_apgr(double area, double acc_weak, double acc_strong) {
    return acc_strong == acc_weak ? NAN : (area - acc_weak) / (acc_strong - acc_weak);
}

double rtr_metric_apgr(const double *x, const double *acc, int64_t n, double acc_weak, double acc_strong) {
    if (acc_strong == acc_weak) return NAN;
    return curve_apgr(rtr_curve_area01(x, acc, n), acc_weak, acc_strong);
}

double rtr_metric_cpt(const double *x, const double *acc, int64_t n, double acc_weak,
                      double acc_strong, double frac) {
    double target = curve_target(acc_weak, acc_strong, frac), res = NAN;
    area_of(x, acc, n, &target, 1, &res);
    return res;
}

void match_scan_init(match_scan *m, double acc_best, double cost_oracle) {
    *m = (match_scan){acc_best, cost_oracle, INFINITY, -INFINITY};
}

void match_scan_add(match_scan *m, double cost, double acc) {
    if (acc >= m->acc_best - RTR_ACC_ATOL && cost < m->cheapest) m->cheapest = cost;
    if (cost <= m->cost_oracle && acc > m->best) m->best = acc;
}

double match_scan_to_match(const match_scan *m, double cost_best) {
    return isinf(m->cheapest) ? NAN : m->cheapest / cost_best;
}

double match_scan_gap(const match_scan *m, double acc_oracle) { return isinf(m->best) ? NAN : acc_oracle - m->best; }

double rtr_metric_cost_to_match(const double *cost, const double *acc, int64_t n, double acc_best,
                                double cost_best) {
    match_scan m;
    match_scan_init(&m, acc_best, -INFINITY); /* no oracle gap asked */
    for (int64_t i = 0; i < n; i++) match_scan_add(&m, cost[i], acc[i]);
    return match_scan_to_match(&m, cost_best);
}

double rtr_metric_oracle_gap(const double *cost, const double *acc, int64_t n, double cost_oracle,
                             double acc_oracle) {
    match_scan m;
    match_scan_init(&m, INFINITY, cost_oracle); /* no cost to match asked */
    for (int64_t i = 0; i < n; i++) match_scan_add(&m, cost[i], acc[i]);
    return match_scan_gap(&m, acc_oracle);
}

/* ------------------------------------------------ operating points */

bool rtr_cost_within(double cost, double budget) {
    return cost <= budget + RTR_COST_RTOL * fabs(budget);
}

int64_t rtr_point_within(const double *x, int64_t n, double budget) {
    int64_t best = -1;
    for (int64_t t = 0; t < n; t++)
        if (rtr_cost_within(x[t], budget)) best = t;
    return best;
}
