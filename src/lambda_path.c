/* The exact accuracy-versus-cost path over λ ∈ [0,1] (ARCHITECTURE.md, "The
 * λ path, exactly"). Each query's upper envelope (route.c) gives at most k−1
 * switch events (λ, query, from-pair, to-pair); all queries' events are
 * radix-sorted on λ and swept once, updating running sums of predicted and
 * realised accuracy and cost, so every point of the path is exact with no λ
 * grid. Also: budget search on the path, the λ lookup and the Pareto front. */
#include "rtr/route.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* One switch of one query's choice: key holds the bits of λ (a double in
 * (0,1), whose bit patterns sort like the values), val = query<<32 | from<<16 | to. */
typedef struct {
    uint64_t key, val;
} path_event;

/* Running sums along the path. */
typedef struct {
    double pred_acc, pred_cost, real_acc, real_cost;
    int64_t missing;
} path_sums;

static void sums_add(path_sums *s, const rtr_route_table *t, int64_t i, int32_t j, double sign) {
    size_t at = (size_t)i * (size_t)t->k + (size_t)j;
    s->pred_acc += sign * t->p[at];
    s->pred_cost += sign * (t->cost ? t->cost : t->c)[at];
    if (!t->true_correct) return;
    float tc = t->true_correct[at], tk = t->true_cost[at];
    if (isnan(tc) || isnan(tk)) { s->missing += (int64_t)sign; return; }
    s->real_acc += sign * tc;
    s->real_cost += sign * tk;
}

/* Per-thread output of the envelope pass. */
typedef struct {
    path_event *ev;
    size_t n, cap;
    path_sums first; /* sums of every query's choice at λ = 0 */
    int64_t bad;     /* first query with no allowed pair, or −1 */
    bool nomem;
} path_part;

static bool part_push(path_part *pp, uint64_t key, uint64_t val) {
    if (pp->n == pp->cap) {
        size_t cap = pp->cap ? 2 * pp->cap : 4096;
        path_event *ev = realloc(pp->ev, cap * sizeof *ev);
        if (!ev) return false;
        pp->ev = ev;
        pp->cap = cap;
    }
    pp->ev[pp->n++] = (path_event){key, val};
    return true;
}

/* Envelopes of queries [lo, hi) into pp. */
static void part_build(path_part *pp, const rtr_route_table *t, int64_t lo, int64_t hi) {
    int32_t k = t->k;
    int32_t *pair = malloc(sizeof *pair * (size_t)k);
    double *start = malloc(sizeof *start * (size_t)k);
    rtr_line *l = malloc(sizeof *l * (size_t)k);
    if (!pair || !start || !l) pp->nomem = true;
    for (int64_t i = lo; i < hi && !pp->nomem && pp->bad < 0; i++) {
        size_t at = (size_t)i * (size_t)k;
        int32_t m = rtr_envelope(t->p + at, t->c + at, k, pair, start, l);
        if (!m) { pp->bad = i; break; }
        sums_add(&pp->first, t, i, pair[0], 1.0);
        for (int32_t s = 1; s < m; s++) {
            uint64_t key;
            memcpy(&key, &start[s], sizeof key);
            if (!part_push(pp, key, (uint64_t)i << 32 | (uint64_t)pair[s - 1] << 16 | (uint64_t)pair[s])) {
                pp->nomem = true;
                break;
            }
        }
    }
    free(pair);
    free(start);
    free(l);
}

/* LSD radix sort on key, 8 bits a pass; passes where every key has the same
 * byte are skipped (λ ∈ (0,1) shares its top exponent bits). */
static void events_sort(path_event *a, path_event *tmp, size_t n) {
    size_t hist[8][256] = {{0}};
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) hist[b][(a[i].key >> (8 * b)) & 255]++;
    for (int b = 0; b < 8; b++) {
        if (hist[b][(a[0].key >> (8 * b)) & 255] == n) continue;
        size_t pos[256], sum = 0;
        for (int d = 0; d < 256; d++) { pos[d] = sum; sum += hist[b][d]; }
        for (size_t i = 0; i < n; i++) tmp[pos[(a[i].key >> (8 * b)) & 255]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

static rtr_status path_alloc(rtr_path *path, int64_t n_points, bool truth) {
    size_t np = (size_t)n_points;
    path->n_points = n_points;
    path->lambda = rtr_malloc(np * sizeof(double));
    path->pred_acc = rtr_malloc(np * sizeof(double));
    path->pred_cost = rtr_malloc(np * sizeof(double));
    if (truth) {
        path->real_acc = rtr_malloc(np * sizeof(double));
        path->real_cost = rtr_malloc(np * sizeof(double));
        path->n_missing = rtr_malloc(np * sizeof(int64_t));
    }
    bool ok = path->lambda && path->pred_acc && path->pred_cost &&
              (!truth || (path->real_acc && path->real_cost && path->n_missing));
    return ok ? RTR_OK : RTR_ERR_NOMEM;
}

static void path_emit(rtr_path *path, int64_t j, const path_sums *s, double lambda) {
    double n = (double)path->n_queries;
    path->lambda[j] = lambda;
    path->pred_acc[j] = s->pred_acc / n;
    path->pred_cost[j] = s->pred_cost / n;
    if (!path->real_acc) return;
    double have = n - (double)s->missing;
    path->real_acc[j] = have > 0 ? s->real_acc / have : NAN;
    path->real_cost[j] = have > 0 ? s->real_cost / have : NAN;
    path->n_missing[j] = s->missing;
}

rtr_status rtr_path_compute(rtr_path *path, const rtr_route_table *t) {
    memset(path, 0, sizeof *path);
    if (t->n <= 0 || t->k <= 0) return rtr_fail(RTR_ERR_INVALID, "λ path: empty routing table (%lld queries x %d pairs)", (long long)t->n, (int)t->k);
    /* switch events pack (query, from, to) into 32 + 16 + 16 bits */
    if (t->k > 65535) return rtr_fail(RTR_ERR_INVALID, "λ path: %d pairs, at most 65535 supported", (int)t->k);
    if (t->n > (int64_t)UINT32_MAX) return rtr_fail(RTR_ERR_INVALID, "λ path: %lld queries, at most 2^32 - 1 in one path", (long long)t->n);
    if (!t->true_correct != !t->true_cost) return rtr_fail(RTR_ERR_INVALID, "λ path: true_correct and true_cost must be given together");

    int nt = omp_get_max_threads();
    path_part *parts = rtr_calloc((size_t)nt, sizeof *parts);
    if (!parts) return RTR_ERR_NOMEM;
    for (int p = 0; p < nt; p++) parts[p].bad = -1; /* the runtime may start fewer threads than asked */
#pragma omp parallel num_threads(nt)
    {
        int id = omp_get_thread_num(), cnt = omp_get_num_threads();
        part_build(&parts[id], t, t->n * id / cnt, t->n * (id + 1) / cnt);
    }
    rtr_status st = RTR_OK;
    path_sums sums = {0};
    size_t n_ev = 0;
    for (int p = 0; p < nt; p++) {
        if (parts[p].nomem && st == RTR_OK) st = rtr_fail(RTR_ERR_NOMEM, "λ path: out of memory for switch events");
        if (parts[p].bad >= 0 && st == RTR_OK)
            st = rtr_fail(RTR_ERR_INVALID, "λ path: query %lld has no allowed pair (every pair excluded or NaN)", (long long)parts[p].bad);
        sums.pred_acc += parts[p].first.pred_acc;
        sums.pred_cost += parts[p].first.pred_cost;
        sums.real_acc += parts[p].first.real_acc;
        sums.real_cost += parts[p].first.real_cost;
        sums.missing += parts[p].first.missing;
        n_ev += parts[p].n;
    }
    path_event *ev = NULL, *tmp = NULL;
    if (st == RTR_OK) {
        ev = rtr_malloc((n_ev ? n_ev : 1) * sizeof *ev);
        tmp = rtr_malloc((n_ev ? n_ev : 1) * sizeof *tmp);
        if (!ev || !tmp) st = RTR_ERR_NOMEM;
    }
    size_t off = 0;
    for (int p = 0; p < nt; p++) {
        if (st == RTR_OK && parts[p].n) memcpy(ev + off, parts[p].ev, parts[p].n * sizeof *ev);
        off += parts[p].n;
        free(parts[p].ev);
    }
    free(parts);
    if (st == RTR_OK && n_ev > 1) events_sort(ev, tmp, n_ev);
    free(tmp);

    int64_t n_points = 1;
    for (size_t e = 0; e < n_ev; e++) n_points += e == 0 || ev[e].key != ev[e - 1].key;
    path->n_queries = t->n;
    path->n_switches = (int64_t)n_ev;
    if (st == RTR_OK) st = path_alloc(path, n_points, t->true_correct != NULL);
    if (st != RTR_OK) {
        free(ev);
        rtr_path_free(path);
        return st;
    }
    /* Sweep: point j holds until the group of events sharing the j-th
     * distinct λ, which becomes its right end. */
    int64_t j = 0;
    for (size_t e = 0; e < n_ev;) {
        double lambda;
        memcpy(&lambda, &ev[e].key, sizeof lambda);
        path_emit(path, j++, &sums, lambda);
        for (uint64_t key = ev[e].key; e < n_ev && ev[e].key == key; e++) {
            int64_t i = (int64_t)(ev[e].val >> 32);
            sums_add(&sums, t, i, (int32_t)(ev[e].val >> 16 & 0xffff), -1.0);
            sums_add(&sums, t, i, (int32_t)(ev[e].val & 0xffff), 1.0);
        }
    }
    path_emit(path, j, &sums, 1.0);
    free(ev);
    return RTR_OK;
}

void rtr_path_free(rtr_path *path) {
    free(path->lambda);
    free(path->pred_acc);
    free(path->pred_cost);
    free(path->real_acc);
    free(path->real_cost);
    free(path->n_missing);
    memset(path, 0, sizeof *path);
}

int64_t rtr_path_at(const rtr_path *path, double lambda) {
    int64_t lo = 0, hi = path->n_points - 1; /* first point whose right end >= lambda */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (path->lambda[mid] >= lambda) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

rtr_status rtr_path_budget(const rtr_path *path, double mean_budget, int64_t *point) {
    if (!(mean_budget >= path->pred_cost[0]))
        return rtr_fail(RTR_ERR_INVALID, "budget %.6g per query is below the cheapest possible routing (%.6g per query)",
                        mean_budget, path->pred_cost[0]);
    /* Predicted cost never decreases along the path in exact arithmetic; a
     * scan (not a bisection) stays right if rounding breaks a tie. */
    int64_t best = 0;
    for (int64_t j = 1; j < path->n_points; j++)
        if (path->pred_cost[j] <= mean_budget) best = j;
    *point = best;
    return RTR_OK;
}

typedef struct {
    double cost, acc;
    int64_t i;
} pareto_item;

static int pareto_cmp(const void *x, const void *y) {
    const pareto_item *u = x, *v = y;
    if (u->cost != v->cost) return u->cost < v->cost ? -1 : 1;
    if (u->acc != v->acc) return u->acc > v->acc ? -1 : 1;
    return (u->i > v->i) - (u->i < v->i);
}

int64_t rtr_pareto_front(const double *cost, const double *acc, int64_t n, int64_t *idx) {
    pareto_item *it = malloc(sizeof *it * (size_t)(n ? n : 1));
    if (!it) return -1;
    int64_t m = 0, out = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(cost[i]) && !isnan(acc[i])) it[m++] = (pareto_item){cost[i], acc[i], i};
    qsort(it, (size_t)m, sizeof *it, pareto_cmp);
    /* In cost order, a point survives when it is more accurate than every
     * cheaper-or-equal point before it. */
    for (int64_t t = 0; t < m; t++)
        if (!out || it[t].acc > acc[idx[out - 1]]) idx[out++] = it[t].i;
    free(it);
    return out;
}
