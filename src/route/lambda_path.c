/* The exact accuracy-versus-cost path over λ ∈ [0,1] (ARCHITECTURE.md, "The
 * λ path, exactly"). Each query's upper envelope gives at most k−1 switch
 * events (λ, query, from-pair, to-pair): the envelopes are computed on a
 * compute backend in chunks (rtr_envelopes_on, route.c) and each chunk's
 * pieces become events on the host while the next chunk computes; all
 * queries' events are radix-sorted on λ and swept once, updating running
 * sums of predicted and realised accuracy and cost, so every point of the
 * path is exact with no λ grid. Also: budget search on the path, the λ
 * lookup and the Pareto front. */
#include "rtr/route.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

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

/* Queries per block of the sums at λ = 0: each block is summed in query
 * order and the blocks in block order, so the path is the same for every
 * thread count, chunk size and backend. */
#define PATH_BLOCK 256

static void sums_merge(path_sums *s, const path_sums *x) {
    s->pred_acc += x->pred_acc;
    s->pred_cost += x->pred_cost;
    s->real_acc += x->real_acc;
    s->real_cost += x->real_cost;
    s->missing += x->missing;
}

/* What the envelope stream builds: the switch events in query order and the
 * per-block sums of every query's choice at λ = 0. A chunk is cut into
 * segments at block boundaries, the unit of parallel work. */
typedef struct {
    const rtr_route_table *t;
    path_event *ev;
    size_t n_ev, cap;
    path_sums *block; /* [ceil(n / PATH_BLOCK)] */
    size_t *seg_at; /* per segment of the chunk: where its events start */
    int64_t seg_cap;
} path_build;

static rtr_status path_sink(void *ctx, int64_t q0, int64_t n, int32_t k, const int32_t *pair, const double *start,
                            const int32_t *m) {
    path_build *pb = ctx;
    const rtr_route_table *t = pb->t;
    int64_t b0 = q0 / PATH_BLOCK, nseg = (q0 + n - 1) / PATH_BLOCK - b0 + 1;
    if (nseg > pb->seg_cap) {
        size_t *at = rtr_realloc(pb->seg_at, (size_t)nseg * sizeof *at);
        if (!at) return RTR_ERR_NOMEM;
        pb->seg_at = at;
        pb->seg_cap = nseg;
    }
    /* The piece counts give each segment's events and where they start (a
     * serial pass over m: cheaper than a parallel region on a busy machine). */
    size_t total = 0;
    for (int64_t g = 0; g < nseg; g++) {
        int64_t lo = (b0 + g) * PATH_BLOCK, hi = lo + PATH_BLOCK;
        if (lo < q0) lo = q0;
        if (hi > q0 + n) hi = q0 + n;
        pb->seg_at[g] = pb->n_ev + total;
        for (int64_t i = lo; i < hi; i++) {
            if (!m[i - q0])
                return rtr_fail(RTR_ERR_INVALID, "λ path: query %lld has no allowed pair (every pair excluded or NaN)",
                                (long long)i);
            total += (size_t)(m[i - q0] - 1);
        }
    }
    if (pb->n_ev + total > pb->cap) { /* growth only reserves address space until written */
        size_t cap = pb->cap ? 2 * pb->cap : 1 << 16;
        while (cap < pb->n_ev + total) cap *= 2;
        path_event *ev = rtr_realloc(pb->ev, cap * sizeof *ev);
        if (!ev) return rtr_fail(RTR_ERR_NOMEM, "λ path: out of memory for switch events");
        pb->ev = ev;
        pb->cap = cap;
    }
    /* In parallel: each segment writes its events where the counts put them
     * and adds its queries' choices at λ = 0 to its block's sums. */
#pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < nseg; g++) {
        int64_t lo = (b0 + g) * PATH_BLOCK, hi = lo + PATH_BLOCK;
        if (lo < q0) lo = q0;
        if (hi > q0 + n) hi = q0 + n;
        path_event *out = pb->ev + pb->seg_at[g];
        for (int64_t i = lo; i < hi; i++) {
            const int32_t *pi = pair + (size_t)(i - q0) * (size_t)k;
            const double *si = start + (size_t)(i - q0) * (size_t)k;
            sums_add(&pb->block[b0 + g], t, i, pi[0], 1.0);
            for (int32_t s = 1; s < m[i - q0]; s++) {
                uint64_t key;
                memcpy(&key, &si[s], sizeof key);
                *out++ = (path_event){key, (uint64_t)i << 32 | (uint64_t)pi[s - 1] << 16 | (uint64_t)pi[s]};
            }
        }
    }
    pb->n_ev += total;
    return RTR_OK;
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

rtr_status rtr_path_compute_on(rtr_path *path, const rtr_route_table *t, rtr_backend *b, int64_t chunk_rows) {
    memset(path, 0, sizeof *path);
    if (t->n <= 0 || t->k <= 0) return rtr_fail(RTR_ERR_INVALID, "λ path: empty routing table (%lld queries x %d pairs)", (long long)t->n, (int)t->k);
    /* switch events pack (query, from, to) into 32 + 16 + 16 bits */
    if (t->k > 65535) return rtr_fail(RTR_ERR_INVALID, "λ path: %d pairs, at most 65535 supported", (int)t->k);
    if (t->n > (int64_t)UINT32_MAX) return rtr_fail(RTR_ERR_INVALID, "λ path: %lld queries, at most 2^32 - 1 in one path", (long long)t->n);
    if (!t->true_correct != !t->true_cost) return rtr_fail(RTR_ERR_INVALID, "λ path: true_correct and true_cost must be given together");

    size_t n_blocks = (size_t)((t->n + PATH_BLOCK - 1) / PATH_BLOCK);
    path_build pb = {.t = t, .block = rtr_calloc(n_blocks, sizeof(path_sums))};
    rtr_status st = pb.block ? rtr_envelopes_on(b, t->p, t->c, t->n, t->k, chunk_rows, path_sink, &pb) : RTR_ERR_NOMEM;
    path_sums sums = {0};
    for (size_t i = 0; pb.block && i < n_blocks; i++) sums_merge(&sums, &pb.block[i]);
    free(pb.block);
    free(pb.seg_at);
    path_event *ev = pb.ev, *tmp = NULL;
    size_t n_ev = pb.n_ev;
    if (st == RTR_OK) {
        path_event *fit = n_ev && n_ev < pb.cap ? realloc(ev, n_ev * sizeof *ev) : NULL; /* give back the slack */
        if (fit) ev = fit;
        tmp = rtr_malloc((n_ev ? n_ev : 1) * sizeof *tmp);
        if (!tmp) st = RTR_ERR_NOMEM;
    }
    if (st == RTR_OK && n_ev > 1) events_sort(ev, tmp, n_ev);
    free(tmp);

    int64_t n_points = 1;
    for (size_t e = 0; st == RTR_OK && e < n_ev; e++) n_points += e == 0 || ev[e].key != ev[e - 1].key;
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

rtr_status rtr_path_compute(rtr_path *path, const rtr_route_table *t) {
    rtr_backend cpu;
    rtr_backend_cpu_open(&cpu);
    rtr_status st = rtr_path_compute_on(path, t, &cpu, 0);
    rtr_backend_free(&cpu);
    return st;
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
