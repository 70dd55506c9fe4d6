/* The evaluation stage (include/rtr/eval.h): RTR against every baseline on
 * one evaluated split, with the metrics of METRICS.md, written as the file
 * `rtr report` renders (docs/ROUTING.md, "Evaluation file").
 *
 * Every router is fitted on the training split only and judged on realised
 * outcomes of the evaluated split. Routers that predict per-query accuracy and
 * cost (RTR, kNN, dataset prior, EmbedLLM-style) go through the same λ rule
 * and exact path, with the same cost scale, so λ means the same for all; the
 * RouteLLM-style router sweeps its threshold. Each router's operating point is
 * the one a user would pick without seeing test outcomes: the most accurate
 * predicted routing whose predicted mean cost stays within the training mean
 * cost of the best single pair on the training split. Several routing tables
 * of one corpus (one per predictor) are each an RTR row of the same table.
 * The paths and RTR's mix of choices are computed on a backend. Under MPI
 * each rank reads its own range of the evaluated split (the training split
 * whole, every baseline fitted on every rank): the sums are added over the
 * ranks, each λ router's path and RouteLLM-style's thresholds are merged
 * and walked on rank 0, the bootstrap's sample is gathered on every rank,
 * and its resamples are split across the ranks (docs/SCALING.md). */
#include "rtr/eval.h"
#include "rtr/dist.h"
#include "common/json.h"
#include "common/util.h"
#include "eval/evaluate.h"
#include "route/route_data.h"
#include "rtr/metrics.h"
#include "store/runs.h"
#include "rtr/predictor.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The routers besides one RTR row per table: the default router, dataset
 * prior, kNN, EmbedLLM-style, RouteLLM-style, Random, Oracle, best single. */
#define N_OTHER_ROUTERS 8
#define JSON_POINTS 1500 /* points per curve in the file (metrics use all of them) */
#define N_BUDGETS 4
#define N_SHARES 3
static const double budget_fractions[N_BUDGETS] = {0.25, 0.5, 0.75, 1.0};
static const double share_targets[N_SHARES] = {0.2, 0.5, 0.8};
/* The marks of a router whose accuracy and cost the bootstrap resamples:
 * its operating point, its point at each budget, its share-to-strong points. */
enum { MARK_OP = 0, MARK_BUDGET = 1, MARK_SHARE = MARK_BUDGET + N_BUDGETS, N_MARKS = MARK_SHARE + N_SHARES };
#define N_MARKS_B RTR_BOOT_MARKS /* the bootstrap's room per router (>= N_MARKS) */
_Static_assert(N_MARKS <= RTR_BOOT_MARKS, "the bootstrap holds every mark");

typedef struct {
    char name[320];
    char unavailable[240];  /* why the router could not be built ("" when it was) */
    bool rtr;               /* an RTR row: the bootstrap's "beats" probabilities are its */
    bool random;            /* Random's expectation: a point, no choices */
    bool two_pair;          /* x = share sent to the strong pair */
    int64_t n;              /* points of its curve */
    double *cost, *acc;     /* the file's points of its realised curve (file_points), n_file of them; owned */
    int64_t n_file;
    eval_curve m;
    double aiq0;            /* AIQ from zero */
    rtr_op_point op;
    double op_lambda;       /* NaN for threshold routers */
    int64_t mark[N_MARKS];  /* point index of each mark, −1: none */
    double mark_acc[N_MARKS], mark_cost[N_MARKS]; /* the realised point at each mark (NaN: none) */
    double mark_x[N_MARKS]; /* the share to the strong pair at each mark (two_pair) */
    double mark_lambda[N_MARKS];  /* λ at each mark (NaN: none, or not a λ router) */
    int64_t mark_missing[N_MARKS]; /* realised outcomes missing at each mark */
    rtr_choice_path bp;     /* its choices over the bootstrap's queries (the sample, or every query) */
    int64_t bmark[N_MARKS]; /* each mark as a point of bp */
    bool streamed;          /* a λ router: its metrics come from cs */
    eval_curve_stream cs;   /* a λ router's curve in cost order, until x_max is known */
    char note[160];
} router_result;

static void router_free(router_result *r) {
    rtr_choice_path_free(&r->bp);
    free(r->cost);
    free(r->acc);
    eval_curve_stream_free(&r->cs);
}

/* The file's points of a curve of n points: every step-th and the last, at
 * most JSON_POINTS (the metrics use all of them). */
static int64_t file_step(int64_t n) { return n > JSON_POINTS ? (n + JSON_POINTS - 1) / JSON_POINTS : 1; }
static bool file_point(int64_t t, int64_t n) { return t % file_step(n) == 0 || t == n - 1; }
static int64_t file_count(int64_t n) { return n ? (n - 1) / file_step(n) + 1 + ((n - 1) % file_step(n) != 0) : 0; }

static rtr_status file_alloc(router_result *r) {
    int64_t nf = file_count(r->n);
    r->cost = rtr_malloc((size_t)(nf ? nf : 1) * sizeof *r->cost);
    r->acc = rtr_malloc((size_t)(nf ? nf : 1) * sizeof *r->acc);
    r->n_file = 0;
    return r->cost && r->acc ? RTR_OK : RTR_ERR_NOMEM;
}

/* Where the bootstrap's queries are (include/rtr/eval.h, bootstrap_queries):
 * rows, ascending rows of the evaluated split (NULL: every row), n of them. */
typedef struct {
    const int64_t *rows;
    int64_t n;
} boot_rows;

/* What the evaluation keeps of the evaluated split once it is read: its
 * size, catalog, cost scale and table's checkpoint; under MPI this rank's
 * rows of it (rows first .. first + n_local - 1 of the split's n, in the
 * split's order: its range of stored rows, rtr_part_range; alone all). */
typedef struct {
    const rtr_catalog *cat;
    int64_t n, first, n_local;
    int32_t k;
    double cost_scale;
    const char *checkpoint_hash;
    const rtr_row_range *rows; /* the rank's range (the sources' rows); NULL: every row */
} split_info;

/* A block of evaluated rows [i0, i0 + n) of the split (EVAL_KNN_BLOCK at
 * most, between two multiples of it: one process's blocks, a rank's first
 * one cut at its first row): what every router reads of them. p[t], cost[t]:
 * table t's (nt tables); owned copies, refilled block after block. */
typedef struct {
    int64_t i0, n;
    int32_t k, d, nt;
    char **id, **dataset;
    float **p, **cost, *true_correct, *true_cost, *emb;
} eval_block;

/* --------------------------------------------------------- λ routers */

/* A router given as per-query predicted accuracy p and cost (in the unit),
 * a block of evaluated queries at a time: its exact λ path from an
 * rtr_path_builder (spilled to disk past RTR_PATH_SPILL_EVENTS, so it holds
 * no table and no path), walked once every block is in; its operating
 * point and budget points, each the most accurate *predicted* routing whose
 * predicted mean cost is within the budget (rtr_cost_within: a float-stored
 * mean equal to the budget is within), found during the walk; its curve in
 * cost order through a sorter into the metrics' scans. The bootstrap's
 * queries' choices are built beside it (eval_choice_builder). */
typedef struct {
    router_result *r;
    rtr_path_builder *pb;
    eval_choice_builder *cb; /* NULL: no bootstrap */
} lam_router;

static rtr_status lam_open(lam_router *L, router_result *r, const char *name, rtr_backend *be, int32_t k,
                           const boot_rows *br, bool boot, int64_t n) {
    memset(L, 0, sizeof *L);
    L->r = r;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->streamed = true;
    rtr_status st = rtr_path_builder_open(be, &L->pb, k, true, 0);
    if (!st && boot) st = eval_choice_builder_open(&L->cb, k, br->rows ? br->n : n);
    return st;
}

static void lam_free(lam_router *L) {
    rtr_path_builder_free(L->pb);
    eval_choice_builder_free(L->cb);
    memset(L, 0, sizeof *L);
}

/* The block's rows: p (overwritten: NaN where a
 * pair has no cost estimate, which is then never chosen), cost_unit; c is
 * room for m x k scaled costs; bp_p, bp_c room for the block's sampled rows
 * (m x k each); at: the block's first sampled row's index in br->rows. */
static rtr_status lam_add(lam_router *L, rtr_backend *be, const eval_block *blk, double cost_scale, float *p,
                          const float *cost_unit, float *c, const boot_rows *br, int64_t at, float *bp_p, float *bp_c) {
    int32_t k = blk->k;
    int64_t i0 = blk->i0, m = blk->n;
    size_t mk = (size_t)m * (size_t)k;
    for (size_t i = 0; i < mk; i++) {
        c[i] = (float)(cost_unit[i] / cost_scale);
        if (isnan(c[i])) p[i] = NAN;
    }
    rtr_route_table t = {m, k, p, c, cost_unit, blk->true_correct, blk->true_cost};
    rtr_status st = rtr_path_builder_add(L->pb, &t);
    if (st || !L->cb) return st ? rtr_fail_prefix(st, "%s: ", L->r->name) : st;
    if (!br->rows) return eval_choice_builder_add(L->cb, be, p, c, m);
    int64_t ns = 0;
    for (; at < br->n && br->rows[at] < i0 + m; at++, ns++) {
        size_t r = (size_t)(br->rows[at] - i0) * (size_t)k;
        memcpy(bp_p + (size_t)ns * k, p + r, (size_t)k * sizeof *bp_p);
        memcpy(bp_c + (size_t)ns * k, c + r, (size_t)k * sizeof *bp_c);
    }
    return eval_choice_builder_add(L->cb, be, bp_p, bp_c, ns);
}

/* A curve given point by point (j = 0 .. n − 1, any order of cost): the
 * file's points of it, its largest cost, and its points in cost order
 * (ties: highest accuracy first, then the point: the metrics' order,
 * metrics.c: curve_point_cmp) through a sorter into r->cs, so it is never
 * held. */

#define CURVE_RECORDS ((size_t)1 << 17) /* 3 MiB of curve_point before a run goes to disk */

typedef struct {
    router_result *r;
    run_sorter by_cost;
    double x_max;
} curve_sink;

static void curve_sink_init(curve_sink *c, router_result *r) {
    c->r = r, c->x_max = 0;
    r->streamed = true;
    run_sorter_init(&c->by_cost, sizeof(curve_point), CURVE_RECORDS, curve_point_cmp, "eval's curve in cost order");
}

/* The curve's number of points, known before the first (the file's points). */
static rtr_status curve_sink_size(curve_sink *c, int64_t n_points) {
    c->r->n = n_points;
    return file_alloc(c->r);
}

static rtr_status curve_sink_point(curve_sink *c, int64_t j, double cost, double acc) {
    router_result *r = c->r;
    if (file_point(j, r->n)) r->cost[r->n_file] = cost, r->acc[r->n_file++] = acc;
    if (!isnan(cost)) c->x_max = fmax(c->x_max, cost);
    curve_point e = {cost, acc, j};
    return isnan(cost) || isnan(acc) ? RTR_OK : run_sorter_add(&c->by_cost, &e);
}

/* Every point in: the curve in cost order into r->cs; *x_max widened. */
static rtr_status curve_sink_finish(curve_sink *c, rtr_status st, const eval_refs *refs, double *x_max) {
    router_result *r = c->r;
    run_merge *mg = NULL;
    eval_curve_stream_init(&r->cs, refs);
    if (!st) st = run_sorter_merge(&c->by_cost, &mg);
    if (!st) st = run_merge_start(mg);
    const char *rec;
    while (!st && !(st = run_merge_next(mg, &rec)) && rec) {
        curve_point e;
        memcpy(&e, rec, sizeof e);
        eval_curve_stream_add(&r->cs, e.cost, e.acc);
    }
    run_sorter_free(&c->by_cost);
    if (!st) *x_max = fmax(*x_max, c->x_max);
    return st;
}

typedef struct {
    double budget;
    rtr_path_point first, at[N_BUDGETS];
    curve_sink cs;
    rtr_status st;
} lam_walk;

static rtr_status lam_point(void *ctx, const rtr_path_point *p) {
    lam_walk *w = ctx;
    if (!p->j) {
        w->first = *p;
        if (curve_sink_size(&w->cs, p->n_points)) return RTR_ERR_NOMEM;
    }
    for (int b = 0; b < N_BUDGETS; b++)
        if (rtr_cost_within(p->pred_cost, budget_fractions[b] * w->budget)) w->at[b] = *p;
    return curve_sink_point(&w->cs, p->j, p->real_cost, p->real_acc);
}

/* What rank 0's walk of a router's path or thresholds decides, sent to
 * every rank (under MPI the other ranks' walks see no point: they serve
 * their queries' part of it): the marks, the operating point, the curve's
 * size, and mark_s (RouteLLM-style's score at each mark; NULL: none). */
typedef struct {
    int64_t n, mark[N_MARKS], missing[N_MARKS];
    double acc[N_MARKS], cost[N_MARKS], x[N_MARKS], lambda[N_MARKS], s[N_MARKS], op_lambda;
    rtr_op_point op;
    char note[sizeof ((router_result *)0)->note];
} marks_msg;

static rtr_status share_marks(router_result *r, double *mark_s) {
    if (rtr_dist_size() == 1) return RTR_OK;
    marks_msg m;
    memset(&m, 0, sizeof m);
    m.n = r->n, m.op = r->op, m.op_lambda = r->op_lambda;
    memcpy(m.mark, r->mark, sizeof m.mark), memcpy(m.missing, r->mark_missing, sizeof m.missing);
    memcpy(m.acc, r->mark_acc, sizeof m.acc), memcpy(m.cost, r->mark_cost, sizeof m.cost);
    memcpy(m.x, r->mark_x, sizeof m.x), memcpy(m.lambda, r->mark_lambda, sizeof m.lambda);
    memcpy(m.note, r->note, sizeof m.note);
    if (mark_s) memcpy(m.s, mark_s, sizeof m.s);
    rtr_status st = rtr_dist_bcast(&m, sizeof m, 0);
    if (st) return st;
    r->n = m.n, r->op = m.op, r->op_lambda = m.op_lambda;
    memcpy(r->mark, m.mark, sizeof m.mark), memcpy(r->mark_missing, m.missing, sizeof m.missing);
    memcpy(r->mark_acc, m.acc, sizeof m.acc), memcpy(r->mark_cost, m.cost, sizeof m.cost);
    memcpy(r->mark_x, m.x, sizeof m.x), memcpy(r->mark_lambda, m.lambda, sizeof m.lambda);
    memcpy(r->note, m.note, sizeof m.note);
    if (mark_s) memcpy(mark_s, m.s, sizeof m.s);
    return RTR_OK;
}

/* Every block in: the walk (marks, the file's points, x_max), the curve in
 * cost order into r->cs, and the bootstrap's choices with the marks as
 * their points (by λ: the sample's switch λ are some of the path's).
 * Under MPI rank 0 walks every rank's path (rtr_path_builder_walk_ranks):
 * the file's points, the curve and x_max are its alone, the marks go to
 * every rank, and every rank's sampled queries' choices to every rank. */
static rtr_status lam_finish(lam_router *L, const eval_refs *refs, double budget, double *x_max) {
    router_result *r = L->r;
    lam_walk w = {.budget = budget};
    curve_sink_init(&w.cs, r);
    for (int b = 0; b < N_BUDGETS; b++) w.at[b].j = -1;
    w.first.j = -1; /* a rank other than 0 sees no point */
    int64_t nq, nsw;
    rtr_status st = rtr_path_builder_walk_ranks(L->pb, lam_point, &w, &nq, &nsw);
    L->pb = NULL;
    if (st) st = rtr_fail_prefix(st, "%s: ", r->name);
    for (int m = 0; !st && m < N_MARKS; m++) {
        bool budget_mark = m >= MARK_BUDGET && m < MARK_BUDGET + N_BUDGETS;
        /* no budget fits: the operating point is the cheapest routing */
        const rtr_path_point *p = budget_mark ? &w.at[m - MARK_BUDGET] : m == MARK_OP ? &w.at[N_BUDGETS - 1] : NULL;
        if (m == MARK_OP && p->j < 0) p = &w.first;
        r->mark[m] = p && p->j >= 0 ? p->j : -1;
        r->mark_acc[m] = p && p->j >= 0 ? p->real_acc : NAN;
        r->mark_cost[m] = p && p->j >= 0 ? p->real_cost : NAN;
        r->mark_x[m] = NAN;
        r->mark_lambda[m] = p && p->j >= 0 ? p->lambda_hi : NAN;
        r->mark_missing[m] = p && p->j >= 0 ? p->n_missing : 0;
    }
    if (!st) {
        r->op = (rtr_op_point){r->mark_acc[MARK_OP], r->mark_cost[MARK_OP], nq, r->mark_missing[MARK_OP]};
        r->op_lambda = r->mark_lambda[MARK_OP];
        if (w.at[N_BUDGETS - 1].j < 0) snprintf(r->note, sizeof r->note, "cheapest routing: the budget is below it");
        else snprintf(r->note, sizeof r->note, "λ ≤ %.4g", r->op_lambda);
    }
    if (!st) st = share_marks(r, NULL);
    st = curve_sink_finish(&w.cs, st, refs, x_max);
    if (!st && L->cb && !(st = eval_choice_builder_gather_ranks(L->cb))) {
        st = eval_choice_builder_finish(L->cb, &r->bp);
        L->cb = NULL;
        for (int m = 0; !st && m < N_MARKS; m++) {
            r->bmark[m] = -1;
            if (r->mark[m] < 0) continue;
            int64_t t = 0; /* the first point of bp whose λ interval reaches the mark's right end */
            while (t + 1 < r->bp.n_points && r->bp.lambda[t] < r->mark_lambda[m]) t++;
            r->bmark[m] = t;
        }
    }
    return st;
}

/* A router that could not be built, shown with the reason. */
static void unavailable_router(router_result *out, const char *name, const char *why) {
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->unavailable, sizeof out->unavailable, "%s", why);
    for (int m = 0; m < N_MARKS; m++) out->mark[m] = -1;
}

static cJSON *points_json(const double *x, const double *y, int64_t n) {
    cJSON *arr = cJSON_CreateArray();
    for (int64_t t = 0; t < n; t++) {
        if (isnan(x[t]) || isnan(y[t])) continue;
        cJSON *p = cJSON_CreateArray();
        cJSON_AddItemToArray(p, cJSON_CreateNumber(x[t]));
        cJSON_AddItemToArray(p, cJSON_CreateNumber(y[t]));
        cJSON_AddItemToArray(arr, p);
    }
    return arr;
}

static cJSON *pair_json(double lo, double hi) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, isfinite(lo) ? cJSON_CreateNumber(lo) : cJSON_CreateNull());
    cJSON_AddItemToArray(a, isfinite(hi) ? cJSON_CreateNumber(hi) : cJSON_CreateNull());
    return a;
}

/* The paired bootstrap of every router (rtr_bootstrap) and what the file
 * and the summary show of it. */
typedef struct {
    rtr_boot b;
    int32_t resamples;
    uint64_t seed;
    int *idx; /* router i's index in the bootstrap, −1: not in it (unavailable); owned */
    double *calib; /* [resamples × CALIB_BINS]: each calibration bin's observed rate per resample; owned */
    int64_t n_sample, n_all; /* queries resampled, of n_all evaluated: fewer is the m-out-of-n bootstrap */
    /* Statistics (the first of each one's values) whose sample showed no
     * variation where the whole split varies (boot_scale): no interval. */
    const double **flat;
    int n_flat, cap_flat;
} eval_boot;

#define CI_Q 0.025 /* 95% intervals */

/* The percentile interval of one statistic's resample values (v[0],
 * v[stride], ...); none (NaN) for one boot_scale found flat. */
static void boot_interval(const eval_boot *eb, double *lo, double *hi, const double *v, int64_t stride) {
    for (int f = 0; f < eb->n_flat; f++)
        if (eb->flat[f] == v) {
            *lo = *hi = NAN;
            return;
        }
    rtr_boot_interval(lo, hi, v, eb->resamples, stride, CI_Q);
}

static void boot_ci(const eval_boot *eb, const double *v, int i, int stride_m, int m, double *lo, double *hi) {
    *lo = *hi = NAN;
    if (!eb->resamples || eb->idx[i] < 0) return;
    int32_t R = eb->b.n_routers;
    const double *base = stride_m ? v + (size_t)eb->idx[i] * N_MARKS_B + m : v + eb->idx[i];
    boot_interval(eb, lo, hi, base, stride_m ? (int64_t)R * N_MARKS_B : R);
}

static cJSON *router_json(const router_result *R, int nr, int i, const eval_boot *eb, double budget) {
    const router_result *r = &R[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    if (r->unavailable[0]) {
        cJSON_AddStringToObject(o, "unavailable", r->unavailable);
        return o;
    }
    cJSON_AddItemToObject(o, "points", points_json(r->cost, r->acc, r->n_file));
    rtr_json_add_number(o, "aiq", r->m.aiq);
    rtr_json_add_number(o, "aiq_from_zero", r->aiq0);
    rtr_json_add_number(o, "apgr", r->m.apgr);
    rtr_json_add_number(o, "cpt50", r->m.cpt50);
    rtr_json_add_number(o, "cpt80", r->m.cpt80);
    rtr_json_add_number(o, "cost_to_match", r->m.to_match);
    rtr_json_add_number(o, "oracle_gap", r->m.oracle_gap);
    cJSON *op = cJSON_AddObjectToObject(o, "op");
    rtr_json_add_number(op, "acc", r->op.acc);
    rtr_json_add_number(op, "cost", r->op.cost);
    rtr_json_add_number(op, "lambda", r->op_lambda);
    cJSON_AddNumberToObject(op, "n_missing", (double)r->op.n_missing);
    if (r->note[0]) cJSON_AddStringToObject(op, "note", r->note);
    double lo, hi;
    cJSON *ci = eb->resamples && eb->idx[i] >= 0 ? cJSON_AddObjectToObject(o, "ci") : NULL;
    if (ci) {
        boot_ci(eb, eb->b.acc, i, 1, MARK_OP, &lo, &hi);
        cJSON_AddItemToObject(ci, "acc", pair_json(lo, hi));
        boot_ci(eb, eb->b.cost, i, 1, MARK_OP, &lo, &hi);
        cJSON_AddItemToObject(ci, "cost", pair_json(lo, hi));
        boot_ci(eb, eb->b.aiq, i, 0, 0, &lo, &hi);
        cJSON_AddItemToObject(ci, "aiq", pair_json(lo, hi));
        boot_ci(eb, eb->b.aiq0, i, 0, 0, &lo, &hi);
        cJSON_AddItemToObject(ci, "aiq_from_zero", pair_json(lo, hi));
        boot_ci(eb, eb->b.to_match, i, 0, 0, &lo, &hi);
        cJSON_AddItemToObject(ci, "cost_to_match", pair_json(lo, hi));
    }
    if (!r->random && r->n > 1) {
        cJSON *bud = cJSON_AddArrayToObject(o, "budgets"), *cib = ci ? cJSON_AddArrayToObject(ci, "budgets") : NULL;
        for (int b = 0; b < N_BUDGETS; b++) {
            int64_t pt = r->mark[MARK_BUDGET + b];
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "fraction", budget_fractions[b]);
            rtr_json_add_number(x, "budget", budget_fractions[b] * budget);
            rtr_json_add_number(x, "acc", r->mark_acc[MARK_BUDGET + b]);
            rtr_json_add_number(x, "cost", r->mark_cost[MARK_BUDGET + b]);
            rtr_json_add_number(x, "lambda", r->mark_lambda[MARK_BUDGET + b]);
            if (pt >= 0) cJSON_AddNumberToObject(x, "n_missing", (double)r->mark_missing[MARK_BUDGET + b]);
            cJSON_AddItemToArray(bud, x);
            if (cib) {
                boot_ci(eb, eb->b.acc, i, 1, MARK_BUDGET + b, &lo, &hi);
                cJSON_AddItemToArray(cib, pt >= 0 ? pair_json(lo, hi) : cJSON_CreateNull());
            }
        }
    }
    if (r->two_pair) {
        cJSON *sh = cJSON_AddArrayToObject(o, "shares");
        for (int s = 0; s < N_SHARES; s++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "target", share_targets[s]);
            rtr_json_add_number(x, "share", r->mark_x[MARK_SHARE + s]);
            rtr_json_add_number(x, "acc", r->mark_acc[MARK_SHARE + s]);
            rtr_json_add_number(x, "cost", r->mark_cost[MARK_SHARE + s]);
            if (ci) {
                boot_ci(eb, eb->b.acc, i, 1, MARK_SHARE + s, &lo, &hi);
                cJSON_AddItemToObject(x, "acc_ci", pair_json(lo, hi));
            }
            cJSON_AddItemToArray(sh, x);
        }
    }
    /* How often this RTR row beats each other router in the paired resamples. */
    if (r->rtr && ci) {
        cJSON *pb = cJSON_AddObjectToObject(o, "p_beats");
        int32_t R_ = eb->b.n_routers;
        for (int j = 0; j < nr; j++) {
            if (j == i || eb->idx[j] < 0) continue;
            cJSON *x = cJSON_CreateObject();
            size_t a = (size_t)eb->idx[i], c = (size_t)eb->idx[j];
            rtr_json_add_number(x, "aiq", rtr_boot_p_beats(eb->b.aiq + a, eb->b.aiq + c, eb->resamples, R_, false));
            rtr_json_add_number(x, "aiq_from_zero",
                                rtr_boot_p_beats(eb->b.aiq0 + a, eb->b.aiq0 + c, eb->resamples, R_, false));
            rtr_json_add_number(x, "acc", rtr_boot_p_beats(eb->b.acc + a * N_MARKS_B + MARK_OP,
                                                           eb->b.acc + c * N_MARKS_B + MARK_OP, eb->resamples,
                                                           (int64_t)R_ * N_MARKS_B, false));
            rtr_json_add_number(x, "cost_to_match", rtr_boot_p_beats(eb->b.to_match + a, eb->b.to_match + c,
                                                                     eb->resamples, R_, true));
            cJSON_AddItemToObject(pb, R[j].name, x);
        }
    }
    return o;
}

/* Single-point reference router: Random's expectation (no choices) or
 * every query to one pair each (Oracle, best single): its point pt from
 * the evaluated split's sums, its choices over the bootstrap's n_boot
 * queries (NULL: Random, or no bootstrap). */
static rtr_status point_router(router_result *out, const char *name, rtr_op_point pt, const char *note, bool random,
                               const int32_t *choice, int64_t n_boot, int32_t k) {
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->note, sizeof out->note, "%s", note);
    for (int m = 0; m < N_MARKS; m++) {
        out->mark[m] = out->bmark[m] = m == MARK_OP ? 0 : -1;
        out->mark_acc[m] = m == MARK_OP ? pt.acc : NAN;
        out->mark_cost[m] = m == MARK_OP ? pt.cost : NAN;
        out->mark_x[m] = out->mark_lambda[m] = NAN;
        out->mark_missing[m] = m == MARK_OP ? pt.n_missing : 0;
    }
    out->random = random;
    out->n = out->n_file = 1;
    out->cost = rtr_malloc(sizeof(double));
    out->acc = rtr_malloc(sizeof(double));
    if (!out->cost || !out->acc) return RTR_ERR_NOMEM;
    out->cost[0] = pt.cost, out->acc[0] = pt.acc;
    out->op = pt;
    out->op_lambda = NAN;
    return choice ? rtr_choice_path_fixed(&out->bp, choice, n_boot, k) : RTR_OK;
}

/* Counts of the λ grid's choices, filled from each query's envelope: the
 * envelopes are computed once, not once per grid point. Whole numbers (a
 * double holds them exactly below 2^53), divided by the queries at the end,
 * so the ranks' counts add up to one process's exactly. */
typedef struct {
    int grid;
    double n, *count; /* the queries; grid x k counts */
} mix_acc;

/* The piece at λ as rtr_envelope_choose picks it: the last whose start is
 * below λ (the first also holds λ = 0); the grid ascends, so one walk. */
static rtr_status mix_sink(void *ctx, int64_t q0, int64_t n, int32_t k, const int32_t *pair, const double *start,
                           const int32_t *m) {
    mix_acc *a = ctx;
    (void)q0;
    for (int64_t i = 0; i < n; i++) {
        const int32_t *pi = pair + (size_t)i * k;
        const double *si = start + (size_t)i * k;
        for (int g = 0, t = 0; m[i] && g < a->grid; g++) {
            double lambda = (double)g / (a->grid - 1);
            while (t + 1 < m[i] && si[t + 1] < lambda) t++;
            a->count[(size_t)g * k + pi[t]] += 1;
        }
    }
    return RTR_OK;
}

#define MIX_GRID 101 /* λ = 0, 0.01, ..., 1 */

/* Share of queries routed to each pair along a λ grid (RTR's choices),
 * from the counts every block added (mix_sink). */
static cJSON *mix_json(const rtr_catalog *cat, const mix_acc *acc, int32_t k) {
    cJSON *o = cJSON_CreateObject(), *lam = cJSON_AddArrayToObject(o, "lambda");
    cJSON *names = cJSON_AddArrayToObject(o, "pairs"), *frac = cJSON_AddArrayToObject(o, "fraction");
    for (int32_t j = 0; j < k; j++) {
        char *nm = rtr_catalog_pair_name(cat, j);
        cJSON_AddItemToArray(names, cJSON_CreateString(nm ? nm : "?"));
        free(nm);
    }
    for (int g = 0; g < acc->grid; g++) {
        cJSON_AddItemToArray(lam, cJSON_CreateNumber((double)g / (acc->grid - 1)));
        cJSON *row = cJSON_CreateArray();
        for (int32_t j = 0; j < k; j++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber(acc->count[(size_t)g * k + j] / acc->n));
        cJSON_AddItemToArray(frac, row);
    }
    return o;
}

/* Reliability of the correctness head over 10 equal-width bins. */
#define CALIB_BINS 10

/* The calibration bins' sums over the evaluated split: predictions,
 * outcomes, entries. */
typedef struct {
    double sp[CALIB_BINS], st[CALIB_BINS], cnt[CALIB_BINS], total;
} calib_sums;

/* The calibration bin of predicted probability p (tenths; 1 in the last). */
static int calib_bin(double p) { return p >= 1 ? CALIB_BINS - 1 : (int)(p * CALIB_BINS); }

/* Each calibration bin's observed rate, rate[CALIB_BINS], over (p, y)
 * [n x k] with query weights w (NULL: 1 each); NaN for an empty bin. */
static void calib_rates(double *rate, const float *p, const float *y, const double *w, int64_t n, int32_t k) {
    double sy[CALIB_BINS] = {0}, cnt[CALIB_BINS] = {0};
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++) {
        double pi = p[i], yi = y[i], wi = w ? w[i / (size_t)k] : 1.0;
        if (isnan(pi) || isnan(yi) || !wi) continue;
        sy[calib_bin(pi)] += wi * yi, cnt[calib_bin(pi)] += wi;
    }
    for (int c = 0; c < CALIB_BINS; c++) rate[c] = cnt[c] ? sy[c] / cnt[c] : NAN;
}

/* Each calibration bin's observed rate under the bootstrap's resamples of
 * the queries (p, y) [n x k] keyed by key (this rank's share, summed over
 * the ranks): eb->calib. */
static rtr_status calib_bootstrap(eval_boot *eb, const float *p, const float *y, const uint64_t *key, int64_t n,
                                  int32_t k) {
    eb->calib = rtr_calloc((size_t)eb->resamples * CALIB_BINS, sizeof *eb->calib);
    double *w = rtr_malloc((size_t)(n ? n : 1) * sizeof *w);
    rtr_status st = eb->calib && w ? RTR_OK : RTR_ERR_NOMEM;
    for (int32_t b = rtr_dist_rank(); !st && b < eb->resamples; b += rtr_dist_size()) {
        eval_boot_weights(w, key, n, eb->seed, b);
        calib_rates(eb->calib + (size_t)b * CALIB_BINS, p, y, w, n, k);
    }
    free(w);
    if (!st) st = rtr_dist_sum_f64(eb->calib, (size_t)eb->resamples * CALIB_BINS);
    return st;
}

/* The calibration table from its bins' sums (with eb's resamples, an
 * interval per bin: ci.mean_true, the layout the report reads). */
static cJSON *calibration_json(const calib_sums *cs, const eval_boot *eb) {
    cJSON *o = cJSON_CreateObject(), *mp = cJSON_AddArrayToObject(o, "mean_pred");
    cJSON *mt = cJSON_AddArrayToObject(o, "mean_true"), *c = cJSON_AddArrayToObject(o, "count");
    cJSON *ci = eb->calib ? cJSON_AddArrayToObject(cJSON_AddObjectToObject(o, "ci"), "mean_true") : NULL;
    double ece = 0;
    for (int b = 0; b < CALIB_BINS; b++) {
        if (!cs->cnt[b]) continue;
        cJSON_AddItemToArray(mp, cJSON_CreateNumber(cs->sp[b] / cs->cnt[b]));
        cJSON_AddItemToArray(mt, cJSON_CreateNumber(cs->st[b] / cs->cnt[b]));
        cJSON_AddItemToArray(c, cJSON_CreateNumber(cs->cnt[b]));
        if (ci) {
            double lo, hi;
            boot_interval(eb, &lo, &hi, eb->calib + b, CALIB_BINS);
            cJSON_AddItemToArray(ci, pair_json(lo, hi));
        }
        ece += cs->cnt[b] / cs->total * fabs(cs->sp[b] / cs->cnt[b] - cs->st[b] / cs->cnt[b]);
    }
    rtr_json_add_number(o, "ece", cs->total ? ece : NAN);
    return o;
}

static const char *unit_name(rtr_cost_model m) {
    return m == RTR_COST_USD ? "USD" : m == RTR_COST_USER ? "user cost" : "output tokens";
}


rtr_eval_params rtr_eval_default_params(void) {
    rtr_eval_params p = {0};
    p.route.split = "test";
    p.route.cost_model = RTR_COST_TOKENS;
    p.train_split = "train";
    p.knn_k = 10;
    p.embedllm = true;
    p.stack_only = -1;
    p.bootstrap = 1000;
    p.seed = 1;
    /* every published set's evaluated split (953 queries at most) whole; at
     * 16 pairs the sample's copy is about 0.4 KB a query (40 MB) and a
     * resample's pass over it a few milliseconds (docs/METRICS.md) */
    p.bootstrap_queries = 100000;
    /* every published training split (2,225 queries at most) whole, and
     * the kNN search's exact limit (knn_default_params' exact_max): above
     * it the index's recall cost the kNN router more AIQ than a smaller
     * sample (0.8278 at 100,000 with the index, 0.8292 at 45,000 exact, of
     * 180,181 training queries) and held a second copy of the embeddings;
     * the default router held 335 MB at 45,000 (docs/SCALE.md) */
    p.baseline_train_max = 50000;
    return p;
}

void rtr_eval_summary_free(rtr_eval_summary *s) {
    for (int i = 0; i < s->n_routers; i++) free(s->routers[i].name), free(s->routers[i].unavailable);
    free(s->routers);
    free(s->default_router);
    memset(s, 0, sizeof *s);
}

/* The routing tables to judge: route.table split at commas into *names
 * (pointers into *buf; the caller frees both); one NULL name when none is
 * given. */
static rtr_status table_names(const char *list, char **buf, const char ***names, int *n) {
    *buf = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *c = list; c && *c; c++) cap += *c == ',';
    if (!(*names = rtr_calloc(cap, sizeof **names))) return RTR_ERR_NOMEM;
    if (!list) return *n = 1, RTR_OK;
    if (!(*buf = rtr_strdup(list))) return RTR_ERR_NOMEM;
    char *save = NULL;
    for (char *t = strtok_r(*buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        /* a table named twice would be two routers of one name in eval.json */
        for (int i = 0; i < *n; i++)
            if (!strcmp((*names)[i], t)) return rtr_fail(RTR_ERR_INVALID, "--table '%s' names table '%s' twice", list, t);
        (*names)[(*n)++] = t;
    }
    return *n ? RTR_OK : rtr_fail(RTR_ERR_INVALID, "--table '%s' names no table", list);
}

/* A dataset option must name a dataset of the corpus: a typo would
 * otherwise turn an out-of-distribution run into an in-distribution one.
 * One streamed pass over the dataset and split columns (stopping once the
 * name is seen): no row is held. */
static rtr_status check_datasets(const char *corpus_dir, const rtr_eval_params *ep) {
    const char *given[2] = {ep->route.dataset, ep->train_skip_dataset};
    const char *flag[2] = {"--test-dataset", "--train-skip-dataset"};
    for (int f = 0; f < 2; f++) {
        rtr_status st = given[f] ? rtr_corpus_check_names(corpus_dir, NULL, &given[f], 1) : RTR_OK;
        if (st != RTR_ERR_INVALID) {
            if (st) return st;
            continue;
        }
        char *why = rtr_strdup(rtr_last_error()); /* "DIR: no query in dataset 'x' (datasets: ...)" */
        st = why ? rtr_fail(st, "%s: %s", flag[f], why) : RTR_ERR_NOMEM;
        free(why);
        return st;
    }
    return RTR_OK;
}

/* Outcomes present for correctness but not for cost in the chosen unit:
 * say so rather than "no pair has outcomes". */
static rtr_status check_costs(const char *corpus_dir, int64_t nc, int64_t ncost, const char *split, rtr_cost_model cm) {
    if (nc && !ncost)
        return rtr_fail(RTR_ERR_INVALID, "%s: the %s split has correctness outcomes but no %s: %s", corpus_dir, split,
                        cm == RTR_COST_USD ? "USD costs" : "token counts",
                        cm == RTR_COST_USD ? "give each outcome a cost, or use --cost tokens or --cost user"
                                           : "the outcomes carry no tokens; use --cost usd (with costs) or "
                                             "--cost user --pair-cost FILE");
    return RTR_OK;
}

static const char *const BASELINE_SAMPLE_RULE =
    "the training split has more than max queries: the kNN router, dataset prior, default router (its blend's "
    "fit and validation rows) and EmbedLLM-style are fitted on the max training queries with the smallest hash of "
    "(bootstrap seed, query id), the same set for any order, sharding or split of the rows; the budget, the best "
    "and cheapest training pairs and RouteLLM-style's two pairs come from every training query";

static const char *const AIQ_NOTE =
    "aiq is RouterBench's: the area under the router's non-decreasing concave hull from its cheapest point to "
    "x_max, divided by x_max. Nothing counts before a router's cheapest point, so a single point (the Oracle) can "
    "score below a curve that starts cheaper, and every router scores 0 when all pairs cost the same. "
    "aiq_from_zero extends each hull flat down to cost 0 as well: the mean accuracy over budgets spread evenly on "
    "[0, x_max]; no router exceeds its best accuracy, so the Oracle tops it.";

static cJSON *eval_json(const char *corpus_dir, const rtr_eval_params *ep, const split_info *te, const route_data *tr,
                        int64_t n_train, const eval_refs *refs, const eval_refs *train_refs, double budget, double x_max,
                        const router_result *R, int nr, const eval_boot *eb, const rtr_knn_info *knn,
                        const char *device) {
    cJSON *root = cJSON_CreateObject();
    char deflt[256];
    snprintf(deflt, sizeof deflt, "RTR on %s", corpus_dir);
    const char *split = ep->route.split, *unit = unit_name(ep->route.cost_model);
    cJSON_AddStringToObject(root, "title", ep->title ? ep->title : deflt);
    cJSON_AddStringToObject(root, "corpus", corpus_dir);
    cJSON_AddStringToObject(root, "split", split && *split ? split : "(all)");
    cJSON_AddStringToObject(root, "train_split", ep->train_split);
    if (ep->route.dataset) cJSON_AddStringToObject(root, "test_dataset", ep->route.dataset);
    if (ep->train_skip_dataset) cJSON_AddStringToObject(root, "train_skip_dataset", ep->train_skip_dataset);
    cJSON_AddNumberToObject(root, "n_queries", (double)te->n);
    cJSON_AddNumberToObject(root, "n_train", (double)n_train);
    bool sampled = tr->n < n_train;
    cJSON *bt_o = cJSON_AddObjectToObject(root, "baseline_train");
    cJSON_AddNumberToObject(bt_o, "queries", (double)tr->n);
    cJSON_AddNumberToObject(bt_o, "max", (double)ep->baseline_train_max);
    cJSON_AddStringToObject(bt_o, "rule", sampled ? BASELINE_SAMPLE_RULE : "every training query (at most max)");
    cJSON_AddStringToObject(root, "cost_unit", unit);
    cJSON_AddNumberToObject(root, "cost_scale", te->cost_scale);
    cJSON_AddStringToObject(root, "checkpoint_hash", te->checkpoint_hash ? te->checkpoint_hash : "");
    cJSON_AddStringToObject(root, "device", device);
    rtr_json_add_number(root, "x_max", x_max);
    char *bt = rtr_catalog_pair_name(te->cat, train_refs->best);
    cJSON *ref = cJSON_AddObjectToObject(root, "budget_reference");
    cJSON_AddStringToObject(ref, "pair", bt ? bt : "?");
    rtr_json_add_number(ref, "cost", budget);
    cJSON *fr = cJSON_AddArrayToObject(ref, "fractions");
    for (int b = 0; b < N_BUDGETS; b++) cJSON_AddItemToArray(fr, cJSON_CreateNumber(budget_fractions[b]));
    char notes[1000];
    snprintf(notes, sizeof notes,
             "Operating points: each router's most accurate predicted routing within a mean cost of %.6g %s, "
             "the training mean cost of the best training pair (%s); budgets: the same at 25/50/75/100%% of it, "
             "chosen on predicted costs (no test outcome). Baselines are fitted on the %s split%s%s%s; "
             "APGR and CPT use mean cost normalised between the cheapest and the best single pair, except the "
             "RouteLLM-style router, whose x is the share sent to the strong pair. Queries whose chosen outcome "
             "is missing are left out of accuracy and cost and counted in n_missing.",
             budget, unit, bt ? bt : "?", ep->train_split, ep->train_skip_dataset ? " without " : "",
             ep->train_skip_dataset ? ep->train_skip_dataset : "",
             sampled ? " (those read per training query on a hash sample of it: baseline_train)" : "");
    free(bt);
    cJSON_AddStringToObject(root, "notes", notes);
    cJSON_AddStringToObject(root, "aiq_note", AIQ_NOTE);
    /* how the kNN-based routers found their neighbours: exact below
     * exact_max training rows, else the inverted-file index at the recall
     * its calibration measured */
    cJSON *ks = cJSON_AddObjectToObject(root, "knn_search");
    cJSON_AddStringToObject(ks, "method", knn->exact ? "exact" : "index");
    cJSON_AddNumberToObject(ks, "exact_max", (double)knn->exact_max);
    cJSON_AddNumberToObject(ks, "lists", knn->lists);
    cJSON_AddNumberToObject(ks, "nprobe", knn->nprobe);
    rtr_json_add_number(ks, "recall", knn->recall);
    if (eb->resamples) {
        cJSON *b = cJSON_AddObjectToObject(root, "bootstrap");
        cJSON_AddNumberToObject(b, "resamples", eb->resamples);
        cJSON_AddNumberToObject(b, "seed", (double)eb->seed);
        cJSON_AddNumberToObject(b, "level", 1 - 2 * CI_Q);
        if (eb->n_sample < eb->n_all) {
            cJSON_AddNumberToObject(b, "queries", (double)eb->n_sample);
            if (eb->n_flat) cJSON_AddNumberToObject(b, "no_interval", eb->n_flat);
            cJSON_AddStringToObject(b, "method", "m-out-of-n, paired: the resampled queries are the M with the "
                                                 "smallest hash of (seed, query id); each resample weights each by a "
                                                 "Poisson(1) count drawn from a hash of (seed, query id, resample), "
                                                 "the same weights for every router; a resample's value v of a "
                                                 "statistic counts as θ̂_N + sqrt(M/N)·(v − θ̂_M) (θ̂_N on every "
                                                 "query, θ̂_M on the M), then percentile intervals and P(beats)");
        } else {
            cJSON_AddStringToObject(b, "method", "paired: each resample weights every evaluated query by a Poisson(1) "
                                                 "count drawn from a hash of (seed, query id, resample), the same "
                                                 "weights for every router; percentile intervals");
        }
    }
    cJSON *pairs = cJSON_AddArrayToObject(root, "pairs");
    for (int32_t j = 0; j < te->k; j++) {
        cJSON *o = cJSON_CreateObject();
        char *nm = rtr_catalog_pair_name(te->cat, j);
        cJSON_AddStringToObject(o, "name", nm ? nm : "?");
        free(nm);
        rtr_json_add_number(o, "acc", refs->single[j].acc);
        rtr_json_add_number(o, "cost", refs->single[j].cost);
        cJSON_AddNumberToObject(o, "n_missing", (double)refs->single[j].n_missing);
        if (eb->resamples && eb->b.pair_acc) { /* the same paired resamples as the routers' */
            double lo, hi;
            cJSON *ci = cJSON_AddObjectToObject(o, "ci");
            boot_interval(eb, &lo, &hi, eb->b.pair_acc + j, eb->b.k);
            cJSON_AddItemToObject(ci, "acc", pair_json(lo, hi));
            boot_interval(eb, &lo, &hi, eb->b.pair_cost + j, eb->b.k);
            cJSON_AddItemToObject(ci, "cost", pair_json(lo, hi));
        }
        cJSON_AddItemToArray(pairs, o);
    }
    cJSON *routers = cJSON_AddArrayToObject(root, "routers");
    for (int i = 0; i < nr; i++) cJSON_AddItemToArray(routers, router_json(R, nr, i, eb, budget));
    return root;
}

/* The default router fitted (rtr_stack_fit) from the first table's network
 * estimates on the training rows and the checkpoint's validation rows; it
 * is applied to the evaluated rows as their embeddings are read. */
static rtr_status default_fit(rtr_stack_model *m, const char *corpus_dir, const rtr_eval_params *ep,
                              const char *table, const route_load_params *trp0, const split_info *te,
                              const route_data *tr) {
    memset(m, 0, sizeof *m);
    rtr_predictor ck = {0};
    route_data trt = {0};
    rtr_status st = RTR_OK;
    if (ep->checkpoint) {
        st = rtr_predictor_load(&ck, ep->checkpoint);
        char hash[17];
        if (!st) rtr_predictor_hash_hex(&ck, hash);
        if (!st && te->checkpoint_hash && *te->checkpoint_hash && strcmp(hash, te->checkpoint_hash))
            st = rtr_fail(RTR_ERR_INVALID, "%s: the routing tables were scored by checkpoint %s, %s is %s", corpus_dir,
                          te->checkpoint_hash, ep->checkpoint, hash);
    }
    /* the network's estimates on the training rows: the same table and cost model */
    route_load_params trp = *trp0;
    trp.no_tables = false;
    trp.embeddings = false; /* tr holds them: a second copy cost 4·dim bytes per training query */
    trp.no_truth = true, trp.keep = ROUTE_KEEP_P; /* the estimates alone: tr holds the rest */
    trp.o.table = table;
    trp.o.cost_scale = te->cost_scale;
    if (!st) st = route_data_load(&trt, corpus_dir, &trp);
    if (!st && trt.n != tr->n)
        st = rtr_fail(RTR_ERR_INVALID, "%s: the training split has %lld queries with tables, %lld without", corpus_dir,
                      (long long)trt.n, (long long)tr->n);
    if (!st) {
        rtr_stack_params sp = rtr_stack_default_params();
        sp.only = ep->stack_only, sp.no_guard = ep->no_guard;
        st = rtr_stack_fit(m, trt.p, tr->emb, (const char *const *)tr->dataset, tr->true_correct, tr->true_cost,
                           tr->n, ck.val_hash, ck.n_val_hash, tr->emb_dim, te->k, &sp);
    }
    route_data_free(&trt);
    rtr_predictor_free(&ck);
    return st;
}

/* RouteLLM-style's queries in threshold order (score descending, then row:
 * rtr_choice_path_two_pair's order), with the weak and strong pairs'
 * outcomes, through a sorter: the threshold path without the split in
 * memory. */
typedef struct {
    float s, wc, wk, sc, sk; /* score; weak pair's correct and cost; strong pair's */
    int64_t i;
} rl_rec;

static int rl_cmp(const void *x, const void *y) {
    const rl_rec *u = x, *v = y;
    if (u->s != v->s) return u->s > v->s ? -1 : 1;
    return (u->i > v->i) - (u->i < v->i);
}

#define RL_RECORDS ((size_t)1 << 17) /* 4 MiB of rl_rec before a run goes to disk */

/* The bootstrap's queries as they are read (every one, or the sample):
 * outcomes, the first table's estimates, id keys, RouteLLM-style scores. */
typedef struct {
    int64_t n, cap;
    float *correct, *cost, *p, *score; /* [cap x k] (score [cap], NULL without RouteLLM-style) */
    uint64_t *key;
} boot_sample;

static void boot_sample_free(boot_sample *s) {
    free(s->correct);
    free(s->cost);
    free(s->p);
    free(s->score);
    free(s->key);
    memset(s, 0, sizeof *s);
}

static rtr_status boot_sample_alloc(boot_sample *s, int64_t cap, int32_t k, bool score) {
    size_t ck = (size_t)(cap ? cap : 1) * (size_t)k;
    s->cap = cap;
    s->correct = rtr_malloc(ck * sizeof *s->correct);
    s->cost = rtr_malloc(ck * sizeof *s->cost);
    s->p = rtr_malloc(ck * sizeof *s->p);
    s->key = rtr_malloc((size_t)(cap ? cap : 1) * sizeof *s->key);
    if (score) s->score = rtr_malloc((size_t)(cap ? cap : 1) * sizeof *s->score);
    return s->correct && s->cost && s->p && s->key && (!score || s->score) ? RTR_OK : RTR_ERR_NOMEM;
}

static uint64_t query_key(const char *id) { return rtr_hash64(RTR_FNV_SEED, id, strlen(id)); }

/* Every router, a block of evaluated rows at a time as the evaluated
 * split is read (eval_pass_run): the baselines that read the embeddings
 * (the kNN router, the default router's kNN blend, EmbedLLM-style), each
 * fitted once on the training split, and the dataset prior give the
 * block's tables, which go with RTR's into their λ routers (lam_add) and
 * are dropped; the reference routers, RTR's mix and the calibration are
 * sums; RouteLLM-style's scores go to a sorter; the bootstrap's queries are
 * copied. No table is held for every row. Blocks of EVAL_KNN_BLOCK rows at
 * the offsets eval_knn_table uses, so each table is the in-memory one's
 * bit for bit. */
typedef struct {
    const split_info *si;
    const route_data *tr;
    rtr_backend *be;
    const eval_knn_model *knn;
    const eval_knn_model *stack_knn; /* the default router's, when its neighbours differ from knn's */
    rtr_stack_model *stack;          /* NULL: no default router */
    const rtr_embedllm_model *eml;   /* NULL: no EmbedLLM-style router */
    /* the λ routers (NULL: not built) */
    lam_router *stack_r, *paper_r /* [nt] */, *prior_r, *knn_r, *eml_r;
    bool routellm;
    int32_t weak, strong;
    run_sorter rl;                   /* RouteLLM-style's rl_rec */
    double rl_sa, rl_sc, rl_have, rl_miss; /* its sums with every query on the weak pair, in row order */
    const boot_rows *br;
    int64_t at;                      /* the next sampled row's index in br->rows */
    boot_sample *smp;
    eval_refs_acc refs;
    mix_acc mix;
    calib_sums cal;
    int64_t n_correct, n_cost;       /* outcomes with correctness, with a cost */
    /* [EVAL_KNN_BLOCK x k] each: the block's tables, scaled costs, sampled rows */
    float *knn_p, *knn_c, *stack_p, *stack_c, *skp, *skc, *eml_p, *eml_c, *prior_p, *prior_c, *tp, *c, *bs_p, *bs_c;
} emb_pass;

static rtr_status emb_pass_alloc(emb_pass *x) {
    size_t nkb = (size_t)EVAL_KNN_BLOCK * (size_t)x->si->k;
    float **buf[] = {&x->knn_p, &x->knn_c, &x->stack_p, &x->stack_c, &x->skp, &x->skc, &x->eml_p,
                     &x->eml_c, &x->prior_p, &x->prior_c, &x->tp, &x->c, &x->bs_p, &x->bs_c};
    for (size_t i = 0; i < sizeof buf / sizeof *buf; i++)
        if (!(*buf[i] = rtr_malloc(nkb * sizeof **buf[i]))) return RTR_ERR_NOMEM;
    return RTR_OK;
}

static void emb_pass_free(emb_pass *x) {
    float **buf[] = {&x->knn_p, &x->knn_c, &x->stack_p, &x->stack_c, &x->skp, &x->skc, &x->eml_p,
                     &x->eml_c, &x->prior_p, &x->prior_c, &x->tp, &x->c, &x->bs_p, &x->bs_c};
    for (size_t i = 0; i < sizeof buf / sizeof *buf; i++) free(*buf[i]), *buf[i] = NULL;
}

/* The sums over the block's rows: reference routers, outcome counts, the
 * calibration bins, RTR's mix (its envelopes on the backend). */
static rtr_status block_sums(emb_pass *x, const eval_block *b) {
    int32_t k = b->k;
    size_t mk = (size_t)b->n * (size_t)k;
    const float *p = b->p[0], *y = b->true_correct, *yc = b->true_cost;
    rtr_status st = eval_refs_acc_add(&x->refs, y, yc, b->n);
    for (size_t i = 0; i < mk; i++) {
        x->n_correct += !isnan(y[i]), x->n_cost += !isnan(yc[i]);
        if (isnan(p[i]) || isnan(y[i])) continue;
        int c = calib_bin(p[i]);
        x->cal.sp[c] += p[i];
        x->cal.st[c] += y[i];
        x->cal.cnt[c] += 1;
        x->cal.total += 1;
    }
    if (!st) st = route_scale_costs(x->c, b->cost[0], mk, x->si->cost_scale);
    if (!st) st = rtr_envelopes_on(x->be, p, x->c, b->n, k, 0, mix_sink, &x->mix);
    return st;
}

/* RouteLLM-style's rows of the block: each score (the kNN estimate of how
 * much more often the strong pair is right) into the sorter, and the sums
 * with every query on the weak pair (rtr_choice_path_curve's first, row by
 * row). */
static rtr_status block_routellm(emb_pass *x, const eval_block *b) {
    int32_t k = b->k;
    for (int64_t i = 0; i < b->n; i++) {
        const float *kp = x->knn_p + (size_t)i * k, *y = b->true_correct + (size_t)i * k, *c = b->true_cost + (size_t)i * k;
        rl_rec e = {kp[x->strong] - kp[x->weak], y[x->weak], c[x->weak], y[x->strong], c[x->strong], b->i0 + i};
        if (isnan(e.s))
            return rtr_fail(RTR_ERR_NUMERIC, "two-pair sweep: score of query %lld is NaN", (long long)(b->i0 + i));
        if (isnan(e.wc) || isnan(e.wk)) x->rl_miss += 1;
        else x->rl_sa += e.wc, x->rl_sc += e.wk, x->rl_have += 1;
        rtr_status st = run_sorter_add(&x->rl, &e);
        if (st) return st;
    }
    return RTR_OK;
}

static rtr_status emb_block(emb_pass *x, const eval_block *b) {
    const route_data *tr = x->tr;
    int32_t k = b->k;
    int64_t m = b->n;
    size_t mk = (size_t)m * (size_t)k;
    const char *const *ds = (const char *const *)b->dataset;
    rtr_status st = block_sums(x, b);
    if (!st) st = eval_knn_apply(x->knn, x->knn_p, x->knn_c, b->emb, m);
    if (!st) st = rtr_router_prior_table(x->prior_p, x->prior_c, ds, m, (const char *const *)tr->dataset,
                                         tr->true_correct, tr->true_cost, tr->n, k);
    if (!st && x->stack) {
        const float *kp = x->knn_p;
        if (x->stack_knn && !(st = eval_knn_apply(x->stack_knn, x->skp, x->skc, b->emb, m))) kp = x->skp;
        if (!st)
            st = rtr_stack_apply(x->stack, x->stack_p, x->stack_c, b->p[0], b->cost[0], kp,
                                 rtr_stack_uses_prior(x->stack) ? x->prior_p : NULL, ds, m);
    }
    if (!st && x->eml) st = rtr_embedllm_apply(x->eml, x->eml_p, x->eml_c, b->emb, m);
    if (!st && x->routellm) st = block_routellm(x, b);
    /* the bootstrap's queries among the block's rows (every row without a sample) */
    const boot_rows *br = x->br;
    for (int64_t i = 0, at = x->at; !st && x->smp && i < m; i++) {
        if (br->rows && (at >= br->n || br->rows[at] != b->i0 + i)) continue;
        at++;
        boot_sample *s = x->smp;
        size_t o = (size_t)s->n * (size_t)k, r = (size_t)i * (size_t)k;
        memcpy(s->correct + o, b->true_correct + r, (size_t)k * sizeof *s->correct);
        memcpy(s->cost + o, b->true_cost + r, (size_t)k * sizeof *s->cost);
        memcpy(s->p + o, b->p[0] + r, (size_t)k * sizeof *s->p);
        s->key[s->n] = query_key(b->id[i]);
        if (s->score) s->score[s->n] = x->knn_p[r + (size_t)x->strong] - x->knn_p[r + (size_t)x->weak];
        s->n++;
    }
    /* each λ router's table (lam_add writes NaN into its p) */
#define ADD(L, p, cost) ((L) ? lam_add((L), x->be, b, x->si->cost_scale, (p), (cost), x->c, br, x->at, x->bs_p, x->bs_c) : RTR_OK)
    if (!st) st = ADD(x->stack_r, x->stack_p, x->stack_c);
    for (int t = 0; !st && t < b->nt; t++) {
        memcpy(x->tp, b->p[t], mk * sizeof *x->tp);
        st = ADD(&x->paper_r[t], x->tp, b->cost[t]);
    }
    if (!st) st = ADD(x->prior_r, x->prior_p, x->prior_c);
    if (!st) st = ADD(x->knn_r, x->knn_p, x->knn_c);
    if (!st) st = ADD(x->eml_r, x->eml_p, x->eml_c);
#undef ADD
    while (br->rows && x->at < br->n && br->rows[x->at] < b->i0 + m) x->at++;
    return st;
}

/* A further table's rows in step with the first's (its own chunks). */
typedef struct {
    route_source rs;
    route_chunk ch;
    int64_t pos;
    const char *name;
} tab_cursor;

static rtr_status block_alloc(eval_block *b, int32_t k, int32_t d, int nt) {
    memset(b, 0, sizeof *b);
    b->k = k, b->d = d, b->nt = nt;
    size_t nkb = (size_t)EVAL_KNN_BLOCK * (size_t)k;
    b->id = rtr_calloc(EVAL_KNN_BLOCK, sizeof *b->id);
    b->dataset = rtr_calloc(EVAL_KNN_BLOCK, sizeof *b->dataset);
    b->p = rtr_calloc((size_t)nt, sizeof *b->p);
    b->cost = rtr_calloc((size_t)nt, sizeof *b->cost);
    b->true_correct = rtr_malloc(nkb * sizeof(float));
    b->true_cost = rtr_malloc(nkb * sizeof(float));
    b->emb = rtr_malloc((size_t)EVAL_KNN_BLOCK * (size_t)(d > 0 ? d : 1) * sizeof(float));
    if (!b->id || !b->dataset || !b->p || !b->cost || !b->true_correct || !b->true_cost || !b->emb) return RTR_ERR_NOMEM;
    for (int t = 0; t < nt; t++)
        if (!(b->p[t] = rtr_malloc(nkb * sizeof(float))) || !(b->cost[t] = rtr_malloc(nkb * sizeof(float))))
            return RTR_ERR_NOMEM;
    return RTR_OK;
}

static void block_free(eval_block *b) {
    for (int64_t i = 0; b->id && i < EVAL_KNN_BLOCK; i++) free(b->id[i]);
    for (int64_t i = 0; b->dataset && i < EVAL_KNN_BLOCK; i++) free(b->dataset[i]);
    for (int t = 0; t < b->nt; t++) free(b->p ? b->p[t] : NULL), free(b->cost ? b->cost[t] : NULL);
    free(b->id), free(b->dataset), free(b->p), free(b->cost);
    free(b->true_correct), free(b->true_cost), free(b->emb);
    memset(b, 0, sizeof *b);
}

static rtr_status set_str(char **to, const char *s) {
    free(*to);
    return (*to = rtr_strdup(s ? s : "")) ? RTR_OK : RTR_ERR_NOMEM;
}

/* The evaluated split read once, a chunk of rows at a time (rs0: the first
 * table with the outcomes and embeddings; cur[t], t > 0: the further
 * tables, checked row by row against rs0's ids), re-blocked into
 * EVAL_KNN_BLOCK rows for emb_block. te: this rank's rows (all alone), as
 * the ids' pass counted them; rows are numbered in the whole split, and
 * blocks end where one process's do (at multiples of EVAL_KNN_BLOCK), so a
 * rank's first block may be shorter. */
static rtr_status eval_pass_run(emb_pass *x, route_source *rs0, tab_cursor *cur, eval_block *b, const split_info *te,
                                const char *corpus_dir) {
    int32_t k = b->k, d = b->d;
    rtr_status st = route_source_begin(rs0, RTR_COL_ID | RTR_COL_DATASET);
    for (int t = 1; !st && t < b->nt; t++) st = route_source_begin(&cur[t].rs, RTR_COL_ID);
    int64_t row = te->first;
    route_chunk ch;
    b->i0 = te->first, b->n = 0;
    while (!st && !(st = route_source_next(rs0, &ch)) && ch.n) {
        for (int64_t i = 0; !st && i < ch.n; i++, row++) {
            int64_t r = b->n;
            size_t o = (size_t)r * (size_t)k, q = (size_t)i * (size_t)k;
            if (!(st = set_str(&b->id[r], ch.id[i]))) st = set_str(&b->dataset[r], ch.dataset[i]);
            memcpy(b->p[0] + o, ch.p + q, (size_t)k * sizeof(float));
            memcpy(b->cost[0] + o, ch.cost + q, (size_t)k * sizeof(float));
            for (int32_t j = 0; j < k; j++) /* no outcome read: every one missing (refused after the pass) */
                b->true_correct[o + j] = ch.true_correct ? ch.true_correct[q + j] : NAN,
                b->true_cost[o + j] = ch.true_cost ? ch.true_cost[q + j] : NAN;
            memcpy(b->emb + (size_t)r * d, ch.emb + (size_t)i * d, (size_t)d * sizeof(float));
            for (int t = 1; !st && t < b->nt; t++) {
                tab_cursor *c = &cur[t];
                while (!st && c->pos == c->ch.n) {
                    if (!(st = route_source_next(&c->rs, &c->ch)) && !c->ch.n) {
                        st = rtr_fail(RTR_ERR_FORMAT, "%s: table %s covers %lld queries of the split, the first "
                                      "table more", corpus_dir, c->name, (long long)row);
                    }
                    c->pos = 0;
                }
                if (!st && strcmp(c->ch.id[c->pos], ch.id[i]))
                    st = rtr_fail(RTR_ERR_FORMAT, "%s: table %s has query %s at row %lld, the first table %s",
                                  corpus_dir, c->name, c->ch.id[c->pos], (long long)row, ch.id[i]);
                if (st) break;
                memcpy(b->p[t] + o, c->ch.p + (size_t)c->pos * k, (size_t)k * sizeof(float));
                memcpy(b->cost[t] + o, c->ch.cost + (size_t)c->pos * k, (size_t)k * sizeof(float));
                c->pos++;
            }
            if (!st && (b->i0 + ++b->n) % EVAL_KNN_BLOCK == 0) {
                st = emb_block(x, b);
                b->i0 += b->n, b->n = 0;
            }
        }
    }
    if (!st && b->n) st = emb_block(x, b);
    for (int t = 1; !st && t < b->nt; t++) {
        tab_cursor *c = &cur[t];
        if (c->pos == c->ch.n && !(st = route_source_next(&c->rs, &c->ch))) c->pos = 0;
        if (!st && c->ch.n > c->pos)
            st = rtr_fail(RTR_ERR_FORMAT, "%s: table %s covers more queries of the split than the first table (%lld)",
                          corpus_dir, c->name, (long long)row);
    }
    if (!st && row - te->first != te->n_local)
        st = rtr_fail(RTR_ERR_FORMAT, "%s: the evaluated split's passes read %lld and %lld queries", corpus_dir,
                      (long long)te->n_local, (long long)(row - te->first));
    return st;
}

/* RouteLLM-style's records in threshold order: one process's sorter, or
 * under MPI every rank's merged on rank 0 as they arrive (each rank's own
 * sorted records streamed through rtr_dist_stream, as the λ path's
 * breakpoints are; rl_cmp's order, the rows numbered in the whole split,
 * so the merge is one process's order). m: the merge to walk, twice (rank 0,
 * or alone); NULL on the other ranks, which serve their records for both
 * walks inside rl_merge_open. */
#define RL_STREAM_RECS 1024 /* rl_rec per message: 32 KiB, within the 64 KiB a pulled run reads */
#define RL_STREAM_TAG 74

typedef struct {
    run_merge *m;
    run_merge all;
    sorted_run *runs;
    rtr_dist_stream *src;
    int n;
} rl_merge;

/* Rank 0's own records as a pulled run (store/runs.h). */
static rtr_status rl_pull_own(void *ctx, char *buf, size_t max, size_t *got, bool first) {
    run_merge *own = ctx;
    rtr_status st = first ? run_merge_start(own) : RTR_OK;
    const char *rec;
    *got = 0;
    while (!st && *got < max && !(st = run_merge_next(own, &rec)) && rec) memcpy(buf + (*got)++ * sizeof(rl_rec), rec, sizeof(rl_rec));
    return st;
}

static rtr_status rl_merge_open(rl_merge *rm, run_sorter *rl) {
    memset(rm, 0, sizeof *rm);
    run_merge *own = NULL;
    rtr_status st = run_sorter_merge(rl, &own);
    int size = rtr_dist_size();
    if (st || size == 1) return rm->m = own, st;
    if (rtr_dist_rank() != 0) { /* both of rank 0's walks */
        rtr_dist_stream s;
        rtr_dist_stream_open(&s, rtr_dist_rank(), sizeof(rl_rec), RL_STREAM_RECS * sizeof(rl_rec), RL_STREAM_TAG);
        const char *rec;
        for (int pass = 0; !st && pass < 2; pass++) {
            st = run_merge_start(own);
            while (!st && !(st = run_merge_next(own, &rec)) && rec) st = rtr_dist_stream_put(&s, rec, sizeof(rl_rec));
            if (!st) st = rtr_dist_stream_end(&s);
        }
        rtr_dist_stream_close(&s);
        return st;
    }
    rm->runs = rtr_calloc((size_t)size, sizeof *rm->runs);
    rm->src = rtr_calloc((size_t)size, sizeof *rm->src);
    st = rm->runs && rm->src ? run_merge_open(&rm->all, rm->runs, size) : RTR_ERR_NOMEM;
    for (int r = 0; !st && r < size; r++, rm->n++) {
        rtr_dist_stream_open(&rm->src[r], r, sizeof(rl_rec), RL_STREAM_RECS * sizeof(rl_rec), RL_STREAM_TAG);
        rm->runs[r] = (sorted_run){.pull = r ? rtr_dist_stream_pull : rl_pull_own,
                                   .pull_ctx = r ? (void *)&rm->src[r] : (void *)own, .rec = sizeof(rl_rec)};
    }
    rm->all.cmp = rl_cmp;
    if (!st) rm->m = &rm->all;
    return st;
}

static void rl_merge_close(rl_merge *rm) {
    for (int r = 0; r < rm->n; r++) sorted_run_close(&rm->runs[r]), rtr_dist_stream_close(&rm->src[r]);
    if (rm->runs) run_merge_free(&rm->all);
    free(rm->runs);
    free(rm->src);
    memset(rm, 0, sizeof *rm);
}

/* The walk of RouteLLM-style's thresholds (rank 0, or alone): mg walked
 * twice (the points counted, then made) from the sums with every query on
 * the weak pair; the marks into out, the score at each into mark_s. */
static rtr_status routellm_walk(router_result *out, const emb_pass *x, run_merge *mg, curve_sink *sink,
                                const double *xstar, int64_t n, double *mark_s) {
    const char *rec;
    rl_rec e;
    int64_t n_points = 1;
    float prev = NAN;
    rtr_status st = run_merge_start(mg);
    for (bool first = true; !st && !(st = run_merge_next(mg, &rec)) && rec; first = false) {
        memcpy(&e, rec, sizeof e);
        n_points += first || e.s != prev;
        prev = e.s;
    }
    if (!st) st = curve_sink_size(sink, n_points);
    double sa = x->rl_sa, sc = x->rl_sc, have = x->rl_have, miss = x->rl_miss, share = 0;
    int64_t t = 0;
    float s_t = INFINITY;
#define POINT()                                                                                                  \
    do {                                                                                                         \
        double a_ = have > 0 ? sa / have : NAN, c_ = have > 0 ? sc / have : NAN;                                 \
        for (int m = MARK_BUDGET; m < N_MARKS; m++) {                                                            \
            double lim = m < MARK_SHARE ? xstar[m - MARK_BUDGET] : share_targets[m - MARK_SHARE];                \
            if (!rtr_cost_within(share, lim)) continue;                                                          \
            out->mark[m] = t, mark_s[m] = s_t, out->mark_acc[m] = a_, out->mark_cost[m] = c_;                    \
            out->mark_x[m] = share, out->mark_missing[m] = (int64_t)llround(miss);                               \
        }                                                                                                        \
        if (!t) out->mark_acc[MARK_OP] = a_, out->mark_cost[MARK_OP] = c_, out->mark_x[MARK_OP] = share,         \
                out->mark_missing[MARK_OP] = (int64_t)llround(miss);                                             \
        st = curve_sink_point(sink, t, c_, a_);                                                                    \
    } while (0)
    if (!st) POINT();
    if (!st) st = run_merge_start(mg);
    int64_t i = 0;
    while (!st && !(st = run_merge_next(mg, &rec)) && rec) {
        memcpy(&e, rec, sizeof e);
        if (i && e.s != s_t) {
            POINT(); /* the group before this one is in */
            t++;
        }
        if (!i) t = 1;
        s_t = e.s;
        /* the query moves from the weak pair to the strong: rtr_choice_path_curve's ENTRY, −1 then +1 */
        if (isnan(e.wc) || isnan(e.wk)) miss -= 1;
        else sa -= e.wc, sc -= e.wk, have -= 1;
        if (isnan(e.sc) || isnan(e.sk)) miss += 1;
        else sa += e.sc, sc += e.sk, have += 1;
        share = (double)(++i) / (double)n;
    }
    if (!st && i) POINT();
#undef POINT
    if (!st) {
        int64_t op = out->mark[MARK_BUDGET + N_BUDGETS - 1];
        out->mark[MARK_OP] = op < 0 ? 0 : op;
        if (op >= 0) {
            out->mark_acc[MARK_OP] = out->mark_acc[MARK_BUDGET + N_BUDGETS - 1];
            out->mark_cost[MARK_OP] = out->mark_cost[MARK_BUDGET + N_BUDGETS - 1];
            out->mark_x[MARK_OP] = out->mark_x[MARK_BUDGET + N_BUDGETS - 1];
            out->mark_missing[MARK_OP] = out->mark_missing[MARK_BUDGET + N_BUDGETS - 1];
            mark_s[MARK_OP] = mark_s[MARK_BUDGET + N_BUDGETS - 1];
        }
        for (int m = 0; m < N_MARKS; m++) {
            out->mark_lambda[m] = NAN;
            if (out->mark[m] < 0) out->mark_acc[m] = out->mark_cost[m] = out->mark_x[m] = NAN, out->mark_missing[m] = 0;
        }
        out->op = (rtr_op_point){out->mark_acc[MARK_OP], out->mark_cost[MARK_OP], n, out->mark_missing[MARK_OP]};
        out->op_lambda = NAN;
        snprintf(out->note, sizeof out->note, "%.0f%% of queries to the strong pair", 100 * out->mark_x[MARK_OP]);
    }
    return st;
}

/* RouteLLM-style: strong vs weak pair, queries ranked by the kNN estimate of
 * how much more often the strong pair is right (x->rl, sorted); the
 * operating point sends as many as the budget allows by the training means,
 * and the share-to-strong points send at most 20, 50 and 80% of the queries
 * there. The path of rtr_choice_path_two_pair (one point per group of equal
 * scores) and rtr_choice_path_curve's sums, walked from the sorted records
 * (rl_merge: every rank's, under MPI on rank 0, which sends the marks to
 * the others); the bootstrap's choices from the sample's scores, each mark
 * the sample's point at the same threshold. */
static rtr_status routellm_router(router_result *out, emb_pass *x, const eval_refs *train_refs, double budget,
                                  int64_t n, const boot_sample *smp, int32_t k, const eval_refs *refs, double *x_max) {
    snprintf(out->name, sizeof out->name, "RouteLLM-style (kNN win estimate)");
    out->two_pair = true;
    int32_t weak = x->weak, strong = x->strong;
    double cw = train_refs->single[weak].cost, cs = train_refs->single[strong].cost, xstar[N_BUDGETS];
    for (int b = 0; b < N_BUDGETS; b++) {
        double bud = budget_fractions[b] * budget;
        /* the share whose training-mean cost fits the budget (none when the weak pair alone does not) */
        xstar[b] = !rtr_cost_within(cw, bud) ? -INFINITY : cs > cw ? (bud - cw) / (cs - cw) : 1.0;
    }
    curve_sink sink;
    curve_sink_init(&sink, out);
    double mark_s[N_MARKS]; /* the score group at each mark (+inf: point 0, none to the strong pair) */
    for (int m = 0; m < N_MARKS; m++) out->mark[m] = -1, mark_s[m] = INFINITY;
    rl_merge rm;
    rtr_status st = rl_merge_open(&rm, &x->rl);
    if (!st && rm.m) st = routellm_walk(out, x, rm.m, &sink, xstar, n, mark_s);
    rl_merge_close(&rm);
    if (!st) st = share_marks(out, mark_s);
    st = curve_sink_finish(&sink, st, refs, x_max);
    if (!st && smp->key) { /* the bootstrap's queries: their own threshold path */
        double *xs = NULL;
        st = rtr_choice_path_two_pair(&out->bp, &xs, smp->score, smp->n, k, weak, strong);
        free(xs);
        for (int m = 0; !st && m < N_MARKS; m++) {
            out->bmark[m] = out->mark[m] < 0 ? -1 : 0;
            if (out->mark[m] <= 0) continue;
            const rtr_choice_path *bp = &out->bp; /* its groups descend: the last whose score reaches the mark's */
            for (int64_t u = 1; u < bp->n_points && smp->score[bp->ev_query[bp->ev_off[u]]] >= mark_s[m]; u++)
                out->bmark[m] = u;
        }
    }
    return st;
}

/* Under MPI the ranks must compute the same thing: rank 0 compares every
 * rank's hash h and every rank stops with the same message, naming the
 * first rank that differs (why: what differs). */
static uint64_t hash_str(uint64_t h, const char *s) { return rtr_hash64(h, s ? s : "\1", s ? strlen(s) + 1 : 1); }

static rtr_status ranks_agree(uint64_t h, const char *why) {
    void *all = NULL;
    size_t len = 0;
    rtr_status st = rtr_dist_gather(&all, &len, NULL, &h, sizeof h);
    int differ = 0;
    for (size_t r = 1; !st && !differ && r < len / sizeof h; r++)
        if (memcmp((char *)all + r * sizeof h, &h, sizeof h)) differ = (int)r;
    free(all);
    if (!st) st = rtr_dist_bcast(&differ, sizeof differ, 0);
    if (!st && differ)
        st = rtr_fail(RTR_ERR_INVALID, "rank %d built other routers than rank 0 (%s): every rank must build the same",
                      differ, why);
    return st;
}

/* Every option that changes what a rank reads or computes, compared before
 * the first collective whose sizes they set (the sample's M, the
 * resamples): the route options whole (tables, split, dataset filters,
 * cost model and pair costs, exclusions, token cap, scale, checkpoint
 * hash), the training split's, the baselines' and the bootstrap's. */
static rtr_status check_options_agree(const rtr_eval_params *ep) {
    if (rtr_dist_size() == 1) return RTR_OK;
    const rtr_route_options *o = &ep->route;
    uint64_t h = RTR_FNV_SEED;
    int64_t iv[] = {o->cost_model, ep->knn_k, ep->embedllm, ep->paper_only, ep->stack_only, ep->no_guard,
                    ep->bootstrap, ep->bootstrap_queries, ep->baseline_train_max, (int64_t)ep->seed};
    double dv[] = {o->max_tokens, o->cost_scale};
    const char *sv[] = {o->table, o->split, o->dataset, o->skip_dataset, o->pair_cost_path, o->exclude,
                        o->checkpoint_hash, ep->train_split, ep->train_skip_dataset, ep->checkpoint};
    h = rtr_hash64(h, iv, sizeof iv);
    h = rtr_hash64(h, dv, sizeof dv);
    for (size_t i = 0; i < sizeof sv / sizeof *sv; i++) h = hash_str(h, sv[i]);
    return ranks_agree(h, "it was given other options");
}

/* Every rank fits every baseline on the training split (its sample above
 * --baseline-train-max: the same rows on every rank) and applies it to its
 * own evaluated rows: the fits must be the same too, or the
 * ranks' rows would be judged by different routers (fits that depend on
 * the node, e.g. on its thread count). A hash of the split's size and cost
 * scale, the training references and every fitted model, before the pass. */
static rtr_status check_fits_agree(const split_info *te, double budget, const eval_refs *train_refs,
                                   const emb_pass *x) {
    if (rtr_dist_size() == 1) return RTR_OK;
    uint64_t h = RTR_FNV_SEED;
    int64_t iv[] = {te->n, te->k, train_refs->best, train_refs->cheapest};
    double dv[] = {te->cost_scale, budget};
    h = rtr_hash64(h, iv, sizeof iv);
    h = rtr_hash64(h, dv, sizeof dv);
    size_t k = (size_t)te->k;
    for (size_t j = 0; j < k; j++) h = rtr_hash64(h, &train_refs->single[j].acc, sizeof(double)),
                                   h = rtr_hash64(h, &train_refs->single[j].cost, sizeof(double));
    const eval_knn_model *kn[2] = {x->knn, x->stack_knn};
    for (int i = 0; i < 2; i++) {
        if (!kn[i]) continue;
        int64_t kv[] = {kn[i]->nn, kn[i]->n_train, kn[i]->info.exact, kn[i]->info.lists, kn[i]->info.nprobe};
        h = rtr_hash64(h, kv, sizeof kv);
        h = rtr_hash64(h, kn[i]->gp, k * sizeof *kn[i]->gp);
        h = rtr_hash64(h, kn[i]->gc, k * sizeof *kn[i]->gc);
    }
    if (x->stack) {
        const rtr_stack_model *m = x->stack;
        int64_t mv[] = {m->rep.chosen, m->knn, m->no_guard};
        h = rtr_hash64(h, mv, sizeof mv);
        h = rtr_hash64(h, m->rep.weight, sizeof m->rep.weight);
        h = rtr_hash64(h, m->gp, k * sizeof *m->gp);
        h = rtr_hash64(h, m->gc, k * sizeof *m->gc);
    }
    if (x->eml) {
        const rtr_embedllm_model *m = x->eml;
        size_t np = (size_t)m->h * (size_t)m->d + (size_t)m->k * (size_t)m->h + (size_t)m->k;
        h = rtr_hash64(h, m->par, np * sizeof *m->par);
        h = rtr_hash64(h, m->pair_cost, (size_t)m->k * sizeof *m->pair_cost);
    }
    return ranks_agree(h, "fits that depend on the node: run every rank with the same --threads");
}

/* Under MPI the sums over every rank's rows of the pass, on every rank: the
 * reference routers, the outcome counts, the calibration bins, RTR's mix,
 * RouteLLM-style's sums with every query on the weak pair, the default
 * router's unseen queries (one process's up to the order of the additions;
 * the counts exactly). */
static rtr_status pass_sum_ranks(emb_pass *x) {
    if (rtr_dist_size() == 1) return RTR_OK;
    _Static_assert(sizeof(calib_sums) == (3 * CALIB_BINS + 1) * sizeof(double), "calib_sums: doubles only");
    int64_t cnt[3] = {x->n_correct, x->n_cost, x->stack ? x->stack->rep.n_unseen : 0};
    double rl[4] = {x->rl_sa, x->rl_sc, x->rl_have, x->rl_miss};
    rtr_status st = eval_refs_acc_sum_ranks(&x->refs);
    if (!st) st = rtr_dist_sum_i64(cnt, 3);
    if (!st) st = rtr_dist_sum_f64((double *)&x->cal, 3 * CALIB_BINS + 1);
    if (!st) st = rtr_dist_sum_f64(x->mix.count, (size_t)x->mix.grid * (size_t)x->si->k);
    if (!st) st = rtr_dist_sum_f64(rl, 4);
    if (st) return st;
    x->n_correct = cnt[0], x->n_cost = cnt[1];
    if (x->stack) x->stack->rep.n_unseen = cnt[2];
    x->rl_sa = rl[0], x->rl_sc = rl[1], x->rl_have = rl[2], x->rl_miss = rl[3];
    return RTR_OK;
}

/* Under MPI every rank's sampled rows (its own, in row order) on every
 * rank, in rank order: the bootstrap's sample in row order as one process
 * holds it (at most M rows: 8 + 12k (+ 4) bytes each). */
static rtr_status boot_sample_gather(boot_sample *s, int32_t k) {
    if (rtr_dist_size() == 1) return RTR_OK;
    size_t kb = (size_t)k * sizeof(float), row = sizeof(uint64_t) + 3 * kb + (s->score ? sizeof(float) : 0);
    char *mine = rtr_malloc(row * (size_t)(s->n ? s->n : 1)), *all = NULL;
    size_t len = 0;
    rtr_status st = mine ? RTR_OK : RTR_ERR_NOMEM;
    for (int64_t i = 0; !st && i < s->n; i++) {
        char *o = mine + (size_t)i * row;
        memcpy(o, &s->key[i], sizeof(uint64_t));
        memcpy(o + 8, s->correct + (size_t)i * k, kb);
        memcpy(o + 8 + kb, s->cost + (size_t)i * k, kb);
        memcpy(o + 8 + 2 * kb, s->p + (size_t)i * k, kb);
        if (s->score) memcpy(o + 8 + 3 * kb, &s->score[i], sizeof(float));
    }
    if (!st) st = rtr_dist_gather_all((void **)&all, &len, mine, row * (size_t)s->n);
    free(mine);
    boot_sample g = {0};
    int64_t n = (int64_t)(len / row);
    if (!st) st = boot_sample_alloc(&g, n, k, s->score != NULL);
    for (int64_t i = 0; !st && i < n; i++) {
        const char *o = all + (size_t)i * row;
        memcpy(&g.key[i], o, sizeof(uint64_t));
        memcpy(g.correct + (size_t)i * k, o + 8, kb);
        memcpy(g.cost + (size_t)i * k, o + 8 + kb, kb);
        memcpy(g.p + (size_t)i * k, o + 8 + 2 * kb, kb);
        if (g.score) memcpy(&g.score[i], o + 8 + 3 * kb, sizeof(float));
    }
    free(all);
    if (st) {
        boot_sample_free(&g);
        return st;
    }
    g.n = n;
    boot_sample_free(s);
    *s = g;
    return RTR_OK;
}

/* v[0], v[stride], ... (n resamples' values of one statistic) as the
 * m-out-of-n bootstrap reads them: full + s·(v − sample), kept within the
 * statistic's range [lo, hi] (the shifted and scaled deviations can pass a
 * bound the statistic cannot: an accuracy interval up to 100.24%).
 *
 * A sample can miss what varies in the split: a router wrong on 9 of 3,959
 * queries is right on every one of a 500-query sample about one time in
 * three. Every resample then has the sample's value, and the scaled values
 * a zero-width interval at the split's estimate, which the split's own
 * bootstrap would not give. Such a statistic (no spread, and an estimate
 * on the sample other than the split's, so the split does vary) is
 * recorded in eb->flat and gets no interval; P(beats) still reads its
 * values. A statistic constant over the whole split keeps its zero width. */
static rtr_status boot_scale(eval_boot *eb, double *v, int32_t n, int64_t stride, double full, double sample,
                             double s, double lo, double hi) {
    double least = INFINITY, most = -INFINITY;
    for (int32_t b = 0; b < n; b++) {
        double x = v[(size_t)b * stride];
        if (!isnan(x)) least = fmin(least, x), most = fmax(most, x);
    }
    /* within rounding: a curve statistic (AIQ) of one pair's points can
     * differ in its last bits between resamples */
    double tol = 1e-9 * fmax(1, fabs(sample));
    if (most - least <= tol && isfinite(full) && isfinite(sample) && fabs(full - sample) > tol) {
        if (eb->n_flat == eb->cap_flat) {
            int cap = eb->cap_flat ? 2 * eb->cap_flat : 16;
            const double **g = rtr_realloc(eb->flat, (size_t)cap * sizeof *g);
            if (!g) return RTR_ERR_NOMEM;
            eb->flat = g, eb->cap_flat = cap;
        }
        eb->flat[eb->n_flat++] = v;
    }
    for (int32_t b = 0; b < n; b++) {
        double y = full + s * (v[(size_t)b * stride] - sample);
        v[(size_t)b * stride] = y < lo ? lo : y > hi ? hi : y; /* NaN stays NaN */
    }
    return RTR_OK;
}

/* The m-out-of-n bootstrap (Bickel, Götze and van Zwet 1997): a statistic
 * over a resample of M of the N queries spreads about sqrt(N/M) times as
 * much as over a resample of all N, so each resample's value v becomes
 * θ̂_N + sqrt(M/N)·(v − θ̂_M), θ̂_N the estimate on every query (the file's),
 * θ̂_M the same statistic on the sample (every query weighted 1). The
 * percentile intervals and P(beats) then read the scaled values:
 * [θ̂_N + sqrt(M/N)·(q_2.5% − θ̂_M), θ̂_N + sqrt(M/N)·(q_97.5% − θ̂_M)]. */
static rtr_status boot_rescale(eval_boot *eb, const rtr_boot_router *br, int32_t nb, const router_result *R, int nr,
                               const eval_refs *refs, const split_info *te, const boot_sample *smp,
                               const calib_sums *cal) {
    rtr_boot pt;
    int64_t n = smp->n;
    rtr_status st = eval_boot_point(&pt, br, nb, smp->correct, smp->cost, n, te->k, refs->best);
    if (st) return st;
    double s = sqrt((double)n / (double)te->n);
    int32_t B = eb->resamples;
    for (int i = 0; !st && i < nr; i++) {
        int q = eb->idx[i];
        if (q < 0) continue;
        st = boot_scale(eb, eb->b.aiq + q, B, nb, R[i].m.aiq, pt.aiq[q], s, 0, 1);
        if (!st) st = boot_scale(eb, eb->b.aiq0 + q, B, nb, R[i].aiq0, pt.aiq0[q], s, 0, 1);
        if (!st) st = boot_scale(eb, eb->b.to_match + q, B, nb, R[i].m.to_match, pt.to_match[q], s, 0, INFINITY);
        for (int m = 0; !st && m < N_MARKS_B; m++) {
            size_t at = (size_t)q * N_MARKS_B + m;
            int64_t stride = (int64_t)nb * N_MARKS_B;
            st = boot_scale(eb, eb->b.acc + at, B, stride, m < N_MARKS ? R[i].mark_acc[m] : NAN, pt.acc[at], s, 0, 1);
            if (!st)
                st = boot_scale(eb, eb->b.cost + at, B, stride, m < N_MARKS ? R[i].mark_cost[m] : NAN, pt.cost[at], s,
                                0, INFINITY);
        }
    }
    for (int32_t j = 0; !st && j < te->k; j++) {
        st = boot_scale(eb, eb->b.pair_acc + j, B, te->k, refs->single[j].acc, pt.pair_acc[j], s, 0, 1);
        if (!st) st = boot_scale(eb, eb->b.pair_cost + j, B, te->k, refs->single[j].cost, pt.pair_cost[j], s, 0, INFINITY);
    }
    double full[CALIB_BINS], sample[CALIB_BINS];
    for (int c = 0; c < CALIB_BINS; c++) full[c] = cal->cnt[c] ? cal->st[c] / cal->cnt[c] : NAN;
    calib_rates(sample, smp->p, smp->correct, NULL, n, te->k);
    for (int c = 0; !st && c < CALIB_BINS; c++)
        st = boot_scale(eb, eb->calib + c, B, CALIB_BINS, full[c], sample[c], s, 0, 1);
    rtr_boot_free(&pt);
    return st;
}

/* The bootstrap's sample under MPI: every rank's bottom M (bot, rows
 * global) gathered on rank 0 (at most M x 16 bytes a rank), the bottom M of
 * them (the whole split's: a query's hash depends on its id alone) sent to
 * every rank in row order, each rank keeping those among its rows (*rows,
 * owned, n of them; allocated even when none). */
static rtr_status sample_merge_ranks(eval_boot_bottom *bot, const split_info *te, int64_t M, int64_t **rows,
                                     int64_t *n) {
    void *all = NULL;
    size_t len = 0;
    eval_boot_bottom g = {0};
    int64_t total = 0, *picked = NULL;
    rtr_status st = rtr_dist_gather(&all, &len, NULL, bot->pick, (size_t)bot->n * sizeof *bot->pick);
    if (!st && rtr_dist_rank() == 0) {
        const eval_boot_pick *p = all;
        st = eval_boot_bottom_init(&g, M);
        for (size_t i = 0; !st && i < len / sizeof *p; i++) st = eval_boot_bottom_add(&g, p[i].h, p[i].row);
        if (!st) eval_boot_bottom_rows(&g);
        total = g.n;
    }
    free(all);
    if (!st) st = rtr_dist_bcast(&total, sizeof total, 0);
    if (!st && !(picked = rtr_malloc((size_t)(total ? total : 1) * sizeof *picked))) st = RTR_ERR_NOMEM;
    for (int64_t i = 0; !st && i < g.n; i++) picked[i] = g.pick[i].row;
    eval_boot_bottom_free(&g);
    if (!st) st = rtr_dist_bcast(picked, (size_t)total * sizeof *picked, 0);
    *n = 0;
    for (int64_t i = 0; !st && i < total; i++) /* ascending: this rank's are consecutive */
        if (picked[i] >= te->first && picked[i] < te->first + te->n_local) picked[(*n)++] = picked[i];
    if (st) free(picked), picked = NULL;
    *rows = picked;
    return st;
}

/* The pass over the evaluated split's ids and first table's costs, before
 * the one that reads everything: te->n, te->cost_scale (unless the options
 * give one: route_source_scale's, each shard's costs summed in row order
 * and the shards' sums in shard order, as sweep and route do, so ranks
 * reading their own whole shards, `mine`, get one process's bits), and with
 * a bootstrap its queries (*rows, owned): every row when there are at most
 * M (bootstrap_queries), else the M with the smallest
 * eval_boot_sample_hash of (seed, id), in row order. The first pass over
 * the corpus: it checks the ids. Under MPI each rank reads its range of
 * rows (te->rows) and counts them; the counts summed give every rank the
 * split's size and its first row (te->first), and the sample is merged
 * (sample_merge_ranks), br then holding this rank's sampled rows. */
static rtr_status ids_pass(split_info *te, rtr_row_range *range, int64_t **rows, boot_rows *br,
                           const char *corpus_dir, const route_load_params *prm, const rtr_eval_params *ep) {
    *rows = NULL;
    te->rows = NULL;
    route_load_params p = *prm;
    p.no_truth = true;
    route_source rs;
    rtr_status st = route_source_open(&rs, corpus_dir, &p, 0);
    if (st) return st;
    bool boot = ep->bootstrap > 0, *mine = NULL;
    eval_boot_bottom bot = {0};
    rtr_part part;
    if (rtr_dist_size() > 1 && !(st = rtr_part_shards(&mine, &part, rs.corp, NULL)) &&
        !(st = rtr_part_range(range, &part, rs.corp, NULL, rs.chunk_rows)))
        te->rows = range;
    rs.shards = mine;
    if (!st) st = route_source_scale(&rs);
    rs.shards = NULL;
    free(mine);
    rs.rows = te->rows;
    te->cost_scale = rs.cost_scale;
    if (!st && boot) st = eval_boot_bottom_init(&bot, ep->bootstrap_queries);
    if (!st) st = route_source_begin(&rs, RTR_COL_ID);
    route_chunk ch;
    int64_t n = 0;
    while (!st && !(st = route_source_next(&rs, &ch)) && ch.n) {
        for (int64_t i = 0; boot && !st && i < ch.n; i++) /* rows of this rank's share, shifted below */
            st = eval_boot_bottom_add(&bot, eval_boot_sample_hash(ep->seed, query_key(ch.id[i])), n + i);
        n += ch.n;
    }
    route_source_close(&rs);
    /* every rank's count: the split's size, and this rank's first row in it */
    int size = rtr_dist_size(), rank = rtr_dist_rank();
    int64_t *cnt = st ? NULL : rtr_calloc((size_t)size, sizeof *cnt);
    if (!st && !cnt) st = RTR_ERR_NOMEM;
    if (!st) cnt[rank] = n, st = rtr_dist_sum_i64(cnt, (size_t)size);
    te->n = te->first = 0;
    te->n_local = n;
    for (int r = 0; !st && r < size; r++) te->n += cnt[r], te->first += r < rank ? cnt[r] : 0;
    free(cnt);
    if (!st && !te->n)
        st = rtr_corpus_no_query(corpus_dir, prm->o.split, NULL);
    for (int64_t i = 0; !st && i < bot.n; i++) bot.pick[i].row += te->first; /* the order within the heap holds */
    *br = (boot_rows){NULL, n};
    if (!st && boot && te->n > ep->bootstrap_queries) {
        int64_t ns = 0;
        if (size > 1) st = sample_merge_ranks(&bot, te, ep->bootstrap_queries, rows, &ns);
        else st = eval_boot_bottom_take(&bot, rows, &ns);
        if (!st) *br = (boot_rows){*rows, ns};
    }
    eval_boot_bottom_free(&bot);
    return st;
}

/* The paired bootstrap over every router that was built, over the
 * bootstrap's queries (smp: every evaluated query, or above
 * ep->bootstrap_queries (M) the m-out-of-n bootstrap over the bottom-M
 * sample, so its memory and time stop growing with the split). */
static rtr_status run_bootstrap(eval_boot *eb, const router_result *R, int nr, const split_info *te,
                                const eval_refs *refs, const rtr_eval_params *ep, const boot_sample *smp,
                                const calib_sums *cal) {
    memset(eb, 0, sizeof *eb);
    eb->seed = ep->seed;
    if (!(eb->idx = rtr_malloc((size_t)nr * sizeof *eb->idx))) return RTR_ERR_NOMEM;
    for (int i = 0; i < nr; i++) eb->idx[i] = -1;
    if (ep->bootstrap <= 0) return RTR_OK;
    rtr_boot_router *br = rtr_malloc((size_t)nr * sizeof *br);
    if (!br) return RTR_ERR_NOMEM;
    int32_t nb = 0;
    for (int i = 0; i < nr; i++) {
        if (R[i].unavailable[0]) continue;
        rtr_boot_router *b = &br[nb];
        memset(b, 0, sizeof *b);
        b->path = R[i].random ? NULL : &R[i].bp;
        b->n_marks = N_MARKS;
        for (int m = 0; m < N_MARKS; m++) b->marks[m] = R[i].bmark[m];
        eb->idx[i] = nb++;
    }
    eb->resamples = ep->bootstrap;
    eb->n_all = te->n;
    eb->n_sample = smp->n;
    int64_t n = smp->n;
    /* under MPI each rank computes every size-th resample; the sums put them together */
    rtr_status st = eval_bootstrap_part(&eb->b, br, nb, smp->correct, smp->cost, smp->key, n, te->k, refs->best,
                                        ep->bootstrap, ep->seed, rtr_dist_rank(), rtr_dist_size());
    size_t RB = (size_t)eb->b.resamples * (size_t)eb->b.n_routers;
    if (!st) st = rtr_dist_sum_f64(eb->b.aiq, RB);
    if (!st) st = rtr_dist_sum_f64(eb->b.aiq0, RB);
    if (!st) st = rtr_dist_sum_f64(eb->b.to_match, RB);
    if (!st) st = rtr_dist_sum_f64(eb->b.acc, RB * RTR_BOOT_MARKS);
    if (!st) st = rtr_dist_sum_f64(eb->b.cost, RB * RTR_BOOT_MARKS);
    size_t PB = (size_t)eb->b.resamples * (size_t)eb->b.k;
    if (!st) st = rtr_dist_sum_f64(eb->b.pair_acc, PB);
    if (!st) st = rtr_dist_sum_f64(eb->b.pair_cost, PB);
    if (!st) st = calib_bootstrap(eb, smp->p, smp->correct, smp->key, n, te->k);
    if (!st && n < te->n) st = boot_rescale(eb, br, nb, R, nr, refs, te, smp, cal);
    free(br);
    return st;
}

/* The rows of the training split the baselines are fitted on, from a pass
 * over its ids: every row when there are at most T
 * (ep->baseline_train_max; *rows NULL), else the T with the smallest
 * eval_boot_sample_hash of (seed, id) in row order (*rows, owned: the
 * bootstrap's bottom-M machinery, so the sample is one set for any order,
 * chunking or split of the rows). *n_all: the split's size. */
static rtr_status train_rows_pass(int64_t *n_all, int64_t **rows, int64_t *n_rows, const char *corpus_dir,
                                  const route_load_params *trp, const rtr_eval_params *ep) {
    *rows = NULL, *n_rows = *n_all = 0;
    route_load_params p = *trp;
    p.embeddings = false, p.no_truth = true;
    route_source rs;
    rtr_status st = route_source_open(&rs, corpus_dir, &p, 0);
    if (st) return st;
    eval_boot_bottom bot = {0};
    st = eval_boot_bottom_init(&bot, ep->baseline_train_max);
    if (!st) st = route_source_begin(&rs, RTR_COL_ID);
    route_chunk ch;
    while (!st && !(st = route_source_next(&rs, &ch)) && ch.n) {
        for (int64_t i = 0; !st && i < ch.n; i++)
            st = eval_boot_bottom_add(&bot, eval_boot_sample_hash(ep->seed, query_key(ch.id[i])), *n_all + i);
        *n_all += ch.n;
    }
    route_source_close(&rs);
    if (!st && !*n_all) st = rtr_corpus_no_query(corpus_dir, ep->train_split, NULL);
    if (!st && *n_all > ep->baseline_train_max) st = eval_boot_bottom_take(&bot, rows, n_rows);
    eval_boot_bottom_free(&bot);
    return st;
}

/* What must see every training row: the reference routers on it (refs:
 * the budget, the best and cheapest training pairs, so RouteLLM-style's
 * two) and the outcome checks, as sums. From the rows in memory when the
 * baselines have them all (tr), else from a pass over the outcomes alone,
 * a chunk at a time (the same sums in the same order: eval_refs_acc). */
typedef struct {
    eval_refs_acc acc;
    int64_t nc, ncost; /* outcomes with correctness, with a cost */
} train_sums;

static rtr_status train_sums_add(train_sums *s, const float *y, const float *c, int64_t n) {
    for (size_t i = 0; i < (size_t)n * (size_t)s->acc.k; i++) s->nc += !isnan(y[i]), s->ncost += !isnan(c[i]);
    return eval_refs_acc_add(&s->acc, y, c, n);
}

static rtr_status train_refs_sums(eval_refs *refs, const route_data *tr, const char *corpus_dir,
                                  const route_load_params *trp, const rtr_eval_params *ep) {
    train_sums s = {0};
    route_source rs = {0};
    route_load_params p = *trp;
    p.embeddings = false, p.only_rows = NULL;
    rtr_status st = tr ? RTR_OK : route_source_open(&rs, corpus_dir, &p, 0);
    if (st) return st;
    st = eval_refs_acc_init(&s.acc, tr ? tr->k : rtr_corpus_catalog(rs.corp)->n_pairs);
    if (tr && tr->has_truth && !st) st = train_sums_add(&s, tr->true_correct, tr->true_cost, tr->n);
    if (!tr) {
        route_chunk ch;
        if (!st) st = route_source_begin(&rs, 0);
        while (!st && !(st = route_source_next(&rs, &ch)) && ch.n) st = train_sums_add(&s, ch.true_correct, ch.true_cost, ch.n);
        route_source_close(&rs);
    }
    if (!st && !s.nc)
        st = rtr_fail(RTR_ERR_INVALID, "%s: the %s split has no outcomes to evaluate against", corpus_dir, ep->train_split);
    if (!st) st = check_costs(corpus_dir, s.nc, s.ncost, ep->train_split, ep->route.cost_model);
    if (!st) return eval_refs_acc_finish(&s.acc, refs);
    eval_refs_acc_free(&s.acc);
    return st;
}

rtr_status rtr_eval_corpus(rtr_backend *be, const char *out_path, rtr_eval_summary *summary, const char *corpus_dir,
                           const rtr_eval_params *ep) {
    memset(summary, 0, sizeof *summary);
    if (ep->knn_k < 1) return rtr_fail(RTR_ERR_INVALID, "eval: the kNN router needs k >= 1, not %d", (int)ep->knn_k);
    if (ep->bootstrap < 0) return rtr_fail(RTR_ERR_INVALID, "eval: --bootstrap must be >= 0, not %d", (int)ep->bootstrap);
    if (ep->bootstrap_queries < RTR_EVAL_MIN_BOOTSTRAP_QUERIES)
        return rtr_fail(RTR_ERR_INVALID,
                        "eval: bootstrap_queries (--bootstrap-queries) must be >= %d, not %lld (fewer make the "
                        "m-out-of-n bootstrap degenerate: include/rtr/eval.h)",
                        RTR_EVAL_MIN_BOOTSTRAP_QUERIES, (long long)ep->bootstrap_queries);
    /* Judged on the queries they were fitted on, the baselines look better
     * than they are (the kNN router finds each query among its own
     * neighbours; RTR's network was trained on that split too). Only on
     * purpose (a hindsight bound); a dataset held out of the fit and
     * evaluated alone has no overlap. */
    const char *split = ep->route.split, *held = ep->train_skip_dataset;
    if (split && *split && ep->train_split && !strcmp(split, ep->train_split) && !ep->fit_on_evaluated &&
        !(ep->route.dataset && held && !strcmp(ep->route.dataset, held)))
        return rtr_fail(RTR_ERR_INVALID,
                        "eval: the evaluated split '%s' (--split) is the split the baselines are fitted on "
                        "(--train-split, default 'train'): they would be judged on their own training queries; "
                        "evaluate another split, hold one dataset out of the fit and evaluate it (--test-dataset D "
                        "--skip-dataset D), or, for a hindsight bound, name --train-split %s",
                        split, split);
    if (ep->baseline_train_max < 1)
        return rtr_fail(RTR_ERR_INVALID, "eval: --baseline-train-max must be >= 1, not %lld",
                        (long long)ep->baseline_train_max);
    route_data tr = {0};
    split_info te = {0};
    eval_refs refs = {0}, train_refs = {0};
    router_result *R = NULL;
    eval_boot eb = {0};
    rtr_stack_report rep = {.chosen = -1};
    const char **tables = NULL;
    char *table_buf = NULL;
    int nr = 0, nt = 0;
    emb_pass ex = {0};
    route_source rs0 = {0};
    tab_cursor *cur = NULL;
    eval_block blk = {0};
    boot_sample smp = {0};
    eval_knn_model kn = {0}, skn = {0};
    rtr_stack_model sm = {0};
    rtr_embedllm_model eml = {0};
    char *enc = NULL, **table_hash = NULL;
    rtr_knn_info knn = {.exact = true, .recall = 1.0};
    int32_t *choice = NULL;
    int64_t *sample = NULL, *train_rows = NULL, n_train = 0, n_train_rows = 0;
    cJSON *root = NULL;
    char *text = NULL;
    double t0 = rtr_now();
    bool boot = ep->bootstrap > 0, rs0_open = false;
    rtr_status st = table_names(ep->route.table, &table_buf, &tables, &nt);
    if (!st) st = check_options_agree(ep);
    if (!st && (!(cur = rtr_calloc((size_t)nt, sizeof *cur)) || !(table_hash = rtr_calloc((size_t)nt, sizeof *table_hash)) ||
                !(R = rtr_calloc((size_t)nt + N_OTHER_ROUTERS, sizeof *R))))
        st = RTR_ERR_NOMEM;
    if (!st) st = check_datasets(corpus_dir, ep);
    /* The evaluated split: a pass over its ids and first table's costs (its
     * size, the cost scale, the bootstrap's sample), then one pass reading
     * everything else a block at a time (eval_pass_run). */
    route_load_params prm = {.o = ep->route}, trp = {0};
    prm.o.table = tables ? tables[0] : NULL; /* NULL: table_names failed (st is set) */
    boot_rows br = {NULL, 0};
    rtr_row_range range; /* under MPI this rank's rows (te.rows) */
    if (!st) st = ids_pass(&te, &range, &sample, &br, corpus_dir, &prm, ep);
    prm.o.cost_scale = te.cost_scale, prm.ids_checked = true;
    if (!st) {
        route_load_params p0 = prm;
        p0.embeddings = true; /* of the table's encoder */
        st = route_source_open(&rs0, corpus_dir, &p0, 0);
        rs0_open = !st;
        rs0.rows = te.rows;
        if (!st && rs0.encoder_hash && !(enc = rtr_strdup(rs0.encoder_hash))) st = RTR_ERR_NOMEM;
        if (!st && !(table_hash[0] = rtr_strdup(rs0.checkpoint_hash ? rs0.checkpoint_hash : ""))) st = RTR_ERR_NOMEM;
        te.cat = st ? NULL : rtr_corpus_catalog(rs0.corp);
        te.k = st ? 0 : te.cat->n_pairs;
        te.checkpoint_hash = table_hash[0];
    }
    /* Every further table over the same queries, with the same cost scale. */
    for (int t = 1; !st && t < nt; t++) {
        route_load_params xp = {.o = prm.o, .ids_checked = true, .no_truth = true};
        xp.o.table = tables[t];
        cur[t].name = tables[t];
        st = route_source_open(&cur[t].rs, corpus_dir, &xp, 0);
        cur[t].rs.rows = te.rows;
        if (!st && !(table_hash[t] = rtr_strdup(cur[t].rs.checkpoint_hash ? cur[t].rs.checkpoint_hash : "")))
            st = RTR_ERR_NOMEM;
    }
    /* The training split: a pass over its ids (the baselines' rows), those
     * rows' outcomes and embeddings (of the encoder of the table's
     * embeddings), and train_refs on every row. */
    if (!st) {
        trp = prm;
        trp.embeddings = true;
        trp.o.split = ep->train_split;
        trp.o.dataset = NULL;
        trp.o.skip_dataset = ep->train_skip_dataset;
        trp.o.checkpoint_hash = NULL;
        trp.o.table = NULL;
        trp.o.cost_scale = 0;
        trp.no_tables = true;
        trp.encoder_hash = enc;
        trp.keep = ROUTE_KEEP_DATASET | ROUTE_KEEP_TRUTH; /* the baselines' inputs (and the embeddings) */
        st = train_rows_pass(&n_train, &train_rows, &n_train_rows, corpus_dir, &trp, ep);
        trp.only_rows = train_rows, trp.n_only_rows = n_train_rows;
        if (!st) st = route_data_load(&tr, corpus_dir, &trp);
        if (!st) st = train_refs_sums(&train_refs, train_rows ? NULL : &tr, corpus_dir, &trp, ep);
    }
    if (!st && !tr.has_truth)
        st = rtr_fail(RTR_ERR_INVALID, "%s: the %lld training queries sampled for the baselines have no outcome (raise "
                      "--baseline-train-max)", corpus_dir, (long long)tr.n);
    if (!st && train_refs.best < 0)
        st = rtr_fail(RTR_ERR_INVALID, "%s: no pair has outcomes in both splits", corpus_dir);
    double budget = st ? 0 : train_refs.single[train_refs.best].cost;
    /* Every baseline fitted on the training split, then applied to the
     * evaluated rows as they are read. */
    ex.si = &te, ex.knn = &kn;
    knn_params kp = knn_default_params();
    if (!st) st = eval_knn_fit(&kn, tr.emb, tr.true_correct, tr.true_cost, tr.n, tr.emb_dim, te.k,
                               (int32_t)(ep->knn_k < tr.n ? ep->knn_k : tr.n), &kp);
    if (!st && !ep->paper_only && !(st = default_fit(&sm, corpus_dir, ep, tables[0], &trp, &te, &tr))) {
        ex.stack = &sm;
        if (rtr_stack_uses_knn(&sm) && sm.knn != kn.nn) {
            ex.stack_knn = &skn;
            st = eval_knn_fit(&skn, tr.emb, tr.true_correct, tr.true_cost, tr.n, tr.emb_dim, te.k, sm.knn,
                              &kp);
        }
    }
    if (!st && ep->embedllm) {
        rtr_embedllm_params emp = rtr_embedllm_default_params();
        if (!(st = rtr_embedllm_fit(&eml, NULL, tr.emb, tr.true_correct, tr.true_cost, tr.n, tr.emb_dim, te.k, &emp)))
            ex.eml = &eml;
    }
    if (!st) st = check_fits_agree(&te, budget, &train_refs, &ex);
    /* every λ router opened, in the table's order (the ex.*_r pointers
     * only where lam exists: an offset from NULL is undefined) */
    int n_lam = 0;
    lam_router *lam = NULL;
    if (!st && !(lam = rtr_calloc((size_t)nt + 4, sizeof *lam))) st = RTR_ERR_NOMEM;
    char name[300];
    if (!st && ex.stack) {
        snprintf(name, sizeof name, nt > 1 ? "RTR: %s" : "RTR", tables[0]);
        R[nr].rtr = true;
        ex.stack_r = &lam[n_lam];
        st = lam_open(&lam[n_lam++], &R[nr++], name, be, te.k, &br, boot, te.n_local);
    }
    ex.paper_r = lam ? &lam[n_lam] : NULL;
    for (int t = 0; !st && t < nt; t++) {
        if (ep->paper_only) snprintf(name, sizeof name, nt > 1 ? "RTR: %s" : "RTR", tables[t]);
        else snprintf(name, sizeof name, nt > 1 ? "RTR (paper): %s" : "RTR (paper)", tables[t]);
        R[nr].rtr = true;
        st = lam_open(&lam[n_lam++], &R[nr++], name, be, te.k, &br, boot, te.n_local);
    }
    ex.prior_r = lam ? &lam[n_lam] : NULL;
    if (!st) st = lam_open(&lam[n_lam++], &R[nr++], "Dataset prior", be, te.k, &br, boot, te.n_local);
    ex.knn_r = lam ? &lam[n_lam] : NULL;
    if (!st) st = lam_open(&lam[n_lam++], &R[nr++], "kNN router", be, te.k, &br, boot, te.n_local);
    if (!st && ex.eml) {
        ex.eml_r = &lam[n_lam];
        st = lam_open(&lam[n_lam++], &R[nr++], "EmbedLLM-style", be, te.k, &br, boot, te.n_local);
    }
    ex.routellm = !st && train_refs.cheapest != train_refs.best;
    ex.tr = &tr, ex.be = be, ex.br = &br;
    ex.weak = train_refs.cheapest, ex.strong = train_refs.best;
    run_sorter_init(&ex.rl, sizeof(rl_rec), RL_RECORDS, rl_cmp, "eval's RouteLLM-style thresholds");
    ex.mix = (mix_acc){MIX_GRID, (double)(te.n ? te.n : 1), NULL};
    if (!st) st = eval_refs_acc_init(&ex.refs, te.k);
    if (!st && !(ex.mix.count = rtr_calloc((size_t)MIX_GRID * (size_t)te.k, sizeof *ex.mix.count))) st = RTR_ERR_NOMEM;
    if (!st && boot && !(st = boot_sample_alloc(&smp, br.n, te.k, ex.routellm))) ex.smp = &smp;
    if (!st) st = emb_pass_alloc(&ex);
    if (!st) st = block_alloc(&blk, te.k, rs0.dim, nt);
    if (!st) st = eval_pass_run(&ex, &rs0, cur, &blk, &te, corpus_dir);
    if (!st) st = pass_sum_ranks(&ex);
    if (!st && ex.smp) st = boot_sample_gather(&smp, te.k);
    block_free(&blk);
    emb_pass_free(&ex);
    if (!st) st = eval_refs_acc_finish(&ex.refs, &refs);
    else eval_refs_acc_free(&ex.refs);
    if (!st && !ex.n_correct)
        st = rtr_fail(RTR_ERR_INVALID, "%s: the %s split has no outcomes to evaluate against", corpus_dir, ep->route.split);
    if (!st) st = check_costs(corpus_dir, ex.n_correct, ex.n_cost, ep->route.split, ep->route.cost_model);
    if (!st && refs.best < 0) st = rtr_fail(RTR_ERR_INVALID, "%s: no pair has outcomes in both splits", corpus_dir);
    if (!st) knn = kn.info;
    if (!st && ex.stack) rep = sm.rep;
    /* each λ router's path walked, one at a time */
    double x_max = st ? 0 : eval_refs_x_max(&refs);
    for (int l = 0; !st && l < n_lam; l++) st = lam_finish(&lam[l], &refs, budget, &x_max);
    for (int l = 0; lam && l < n_lam; l++) lam_free(&lam[l]);
    free(lam);
    if (!st && ex.routellm) {
        st = routellm_router(&R[nr++], &ex, &train_refs, budget, te.n, &smp, te.k, &refs, &x_max);
    } else if (!st) {
        char *nm = rtr_catalog_pair_name(te.cat, train_refs.best), why[240];
        snprintf(why, sizeof why, "the best training pair (%s) is also the cheapest: there is no cheaper pair to send "
                 "queries to", nm ? nm : "?");
        free(nm);
        unavailable_router(&R[nr++], "RouteLLM-style (kNN win estimate)", why);
    }
    run_sorter_free(&ex.rl);
    char *best_name = st ? NULL : rtr_catalog_pair_name(te.cat, refs.best);
    char best_label[300];
    snprintf(best_label, sizeof best_label, "Best single: %s", best_name ? best_name : "?");
    free(best_name);
    /* the reference routers: their points from the sums, their choices over the bootstrap's queries */
    if (!st) st = point_router(&R[nr++], "Random (expectation)", refs.random, "", true, NULL, 0, te.k);
    if (!st && boot && !(choice = rtr_malloc((size_t)(smp.n ? smp.n : 1) * sizeof *choice))) st = RTR_ERR_NOMEM;
    if (!st && boot) rtr_router_oracle(choice, smp.correct, smp.cost, smp.n, te.k);
    if (!st) st = point_router(&R[nr++], "Oracle", refs.oracle, "cheapest correct pair", false, choice, smp.n, te.k);
    for (int64_t i = 0; !st && boot && i < smp.n; i++) choice[i] = refs.best;
    if (!st)
        st = point_router(&R[nr++], best_label, refs.single[refs.best], "best on the evaluated split", false, choice,
                          smp.n, te.k);

    /* One x_max for every router of the table, then each router's metrics. */
    for (int i = 0; i < nr; i++)
        for (int64_t t = 0; !R[i].streamed && t < R[i].n; t++)
            if (!isnan(R[i].cost[t])) x_max = fmax(x_max, R[i].cost[t]);
    /* under MPI the streamed curves are rank 0's: its x_max to every rank, its metrics of them after */
    if (!st) st = rtr_dist_bcast(&x_max, sizeof x_max, 0);
    bool rank0 = rtr_dist_rank() == 0;
    for (int i = 0; !st && i < nr; i++) {
        R[i].aiq0 = NAN;
        if (R[i].unavailable[0]) {
            R[i].m = (eval_curve){NAN, NAN, NAN, NAN, NAN, NAN};
            R[i].op = (rtr_op_point){NAN, NAN, 0, 0};
            continue;
        }
        if (R[i].streamed) {
            if (rank0) st = eval_curve_stream_finish(&R[i].cs, &R[i].m, &R[i].aiq0, x_max);
            if (!st) st = rtr_dist_bcast(&R[i].m, sizeof R[i].m, 0);
            if (!st) st = rtr_dist_bcast(&R[i].aiq0, sizeof R[i].aiq0, 0);
            continue;
        }
        st = eval_curve_compute(&R[i].m, &refs, R[i].cost, R[i].acc, R[i].n, x_max);
        if (!st && x_max > 0 && rtr_metric_aiq_from_zero(&R[i].aiq0, R[i].cost, R[i].acc, R[i].n, x_max) != RTR_OK)
            R[i].aiq0 = NAN;
    }
    if (!st) st = run_bootstrap(&eb, R, nr, &te, &refs, ep, &smp, &ex.cal);

    /* one file for the job, from rank 0; no rank ends before it is written */
    if (!st && rtr_dist_rank() == 0) {
        root = eval_json(corpus_dir, ep, &te, &tr, n_train, &refs, &train_refs, budget, x_max, R, nr, &eb, &knn, be->device);
        if (rep.chosen >= 0) {
            cJSON *dr = cJSON_AddObjectToObject(root, "default_router");
            cJSON_AddStringToObject(dr, "chosen", rtr_stack_name(rep.chosen));
            if (ep->stack_only >= 0) cJSON_AddBoolToObject(dr, "forced", true); /* an ablation: not validation's choice */
            if (ep->no_guard) cJSON_AddBoolToObject(dr, "guard", false);
            cJSON_AddStringToObject(dr, "checkpoint", ep->checkpoint ? ep->checkpoint : "");
            cJSON_AddNumberToObject(dr, "n_val", (double)rep.n_val);
            cJSON_AddNumberToObject(dr, "n_unseen", (double)rep.n_unseen);
            cJSON *cv = cJSON_AddObjectToObject(dr, "cv_logloss"), *se = cJSON_AddObjectToObject(dr, "cv_se");
            for (int c = 0; c < RTR_STACK_N; c++) {
                rtr_json_add_number(cv, rtr_stack_name(c), rep.cv_logloss[c]);
                rtr_json_add_number(se, rtr_stack_name(c), rep.cv_se[c]);
            }
            cJSON *w = cJSON_AddArrayToObject(dr, "weights");
            for (int c = 0; c < 4; c++) cJSON_AddItemToArray(w, cJSON_CreateNumber(rep.weight[c]));
            if (!ep->checkpoint)
                cJSON_AddStringToObject(dr, "note", "no --checkpoint: no validation rows, so the network is kept as "
                                                    "it is; the unseen-dataset guard still applies");
        }
        if (ep->route.table) {
            cJSON *tabs = cJSON_AddArrayToObject(root, "tables");
            for (int t = 0; t < nt; t++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "name", tables[t]);
                cJSON_AddStringToObject(o, "checkpoint_hash", table_hash[t]);
                cJSON_AddItemToArray(tabs, o);
            }
        }
        cJSON_AddItemToObject(root, "mix", mix_json(te.cat, &ex.mix, te.k));
        cJSON_AddItemToObject(root, "calibration", calibration_json(&ex.cal, &eb));
        cJSON_AddNumberToObject(root, "seconds", rtr_now() - t0);
        text = cJSON_Print(root);
        st = text ? rtr_write_file_atomic(out_path, text, strlen(text)) : rtr_fail(RTR_ERR_NOMEM, "eval: out of memory");
    }
    if (!st) st = rtr_dist_barrier();
    if (!st && !(summary->routers = rtr_calloc((size_t)nr, sizeof *summary->routers))) st = RTR_ERR_NOMEM;
    for (int i = 0; !st && i < nr; i++) {
        rtr_eval_router *o = &summary->routers[summary->n_routers++];
        *o = (rtr_eval_router){rtr_strdup(R[i].name), R[i].unavailable[0] ? rtr_strdup(R[i].unavailable) : NULL,
                               R[i].op.acc, R[i].op.cost, R[i].m.aiq, R[i].aiq0, R[i].m.to_match,
                               {NAN, NAN}, {NAN, NAN}, {NAN, NAN}, {NAN, NAN}, R[i].op.n_missing};
        boot_ci(&eb, eb.b.acc, i, 1, MARK_OP, &o->acc_ci[0], &o->acc_ci[1]);
        boot_ci(&eb, eb.b.cost, i, 1, MARK_OP, &o->cost_ci[0], &o->cost_ci[1]);
        boot_ci(&eb, eb.b.aiq, i, 0, 0, &o->aiq_ci[0], &o->aiq_ci[1]);
        boot_ci(&eb, eb.b.to_match, i, 0, 0, &o->cost_to_match_ci[0], &o->cost_to_match_ci[1]);
        if (!o->name || (R[i].unavailable[0] && !o->unavailable)) st = RTR_ERR_NOMEM;
    }
    if (!st) {
        summary->n_queries = te.n;
        summary->n_train = n_train;
        summary->n_train_baselines = tr.n;
        summary->cost_unit = unit_name(ep->route.cost_model);
        summary->x_max = x_max;
        summary->bootstrap = eb.resamples;
        summary->bootstrap_queries = eb.n_sample;
        summary->bootstrap_no_interval = eb.n_flat;
        if (rep.chosen >= 0 && !(summary->default_router = rtr_strdup(rtr_stack_name(rep.chosen)))) st = RTR_ERR_NOMEM;
    }
    if (st) rtr_eval_summary_free(summary);
    for (int i = 0; i < nr; i++) router_free(&R[i]);
    rtr_boot_free(&eb.b);
    cJSON_Delete(root);
    free(text);
    free(sample);
    free(train_rows);
    boot_sample_free(&smp);
    free(ex.mix.count);
    if (rs0_open) route_source_close(&rs0);
    for (int t = 1; cur && t < nt; t++)
        if (cur[t].rs.corp) route_source_close(&cur[t].rs);
    free(cur);
    for (int t = 0; table_hash && t < nt; t++) free(table_hash[t]);
    free(table_hash);
    free(enc);
    eval_knn_free(&kn);
    eval_knn_free(&skn);
    rtr_stack_free(&sm);
    rtr_embedllm_free(&eml);
    free(choice);
    free(table_buf);
    eval_refs_free(&refs);
    eval_refs_free(&train_refs);
    route_data_free(&tr);
    free(R);
    free(tables);
    free(eb.idx);
    free(eb.calib);
    free(eb.flat);
    return st;
}
