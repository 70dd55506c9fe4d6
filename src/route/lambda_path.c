/* The exact accuracy-versus-cost path over λ ∈ [0,1] (ARCHITECTURE.md, "The
 * λ path, exactly"). Each query's upper envelope gives at most k−1 switch
 * events: the envelopes are computed on a compute backend in chunks
 * (rtr_envelopes_on, route.c) and each chunk's pieces become events on the
 * host while the next chunk computes. A piece keeps the table values of its
 * pair, so tables can be streamed through rtr_path_builder_add and dropped.
 * All queries' events are radix-sorted on λ and swept once, updating running
 * sums of predicted and realised accuracy and cost, so every point of the
 * path is exact with no λ grid. Memory is bounded: past a number of events
 * the builder sorts what it holds and writes it to a temporary file (a run),
 * and the sweep reads the runs back through one k-way merge, the same merge
 * that joins the parts of MPI ranks. Also: budget search on the path, the λ
 * lookup and the Pareto front. */
#include "rtr/route.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "eval/curve_scan.h"
#include "rtr/dist.h"
#include "store/runs.h"

/* One switch of one query's choice: key holds the bits of λ (a double in
 * (0,1), whose bit patterns sort like the values), val the index of the
 * piece switched to; the piece switched from is the one before it. */
typedef struct {
    uint64_t key, val;
} path_event;

/* What a query contributes while one piece of its envelope is chosen: the
 * table's values of that piece's pair, so the sweep never needs the table
 * (which may be streamed and gone). */
typedef struct {
    float p, cost, tc, tk;
} path_piece;

/* A switch event as a run on disk keeps it: λ's bits, and the pieces
 * switched from and to (the pieces in memory are reused once spilled). */
typedef struct {
    uint64_t key;
    path_piece from, to;
} spill_event;

/* Running sums along the path. */
typedef struct {
    double pred_acc, pred_cost, real_acc, real_cost;
    int64_t missing;
} path_sums;

static void sums_add(path_sums *s, const path_piece *v, bool truth, double sign) {
    s->pred_acc += sign * v->p;
    s->pred_cost += sign * v->cost;
    if (!truth) return;
    if (isnan(v->tc) || isnan(v->tk)) { s->missing += (int64_t)sign; return; }
    s->real_acc += sign * v->tc;
    s->real_cost += sign * v->tk;
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

/* What one record changes in the sums. */
typedef void (*rec_apply)(path_sums *s, const char *rec, const void *ctx, bool truth);

/* What a pass does with point j of the path: the sums while it holds, and
 * the right end of its λ interval. */
typedef rtr_status (*point_fn)(void *pctx, int64_t j, const path_sums *s, double lambda);

/* One pass over the merged records, a group per distinct λ: with point, it
 * gets point j, the sums before group j (the last point: λ = 1); *n_groups
 * always. */
static rtr_status merge_walk(run_merge *m, rec_apply apply, const void *ctx, bool truth, path_sums sums,
                             point_fn point, void *pctx, int64_t *n_groups);

/* The path under construction. Kept across rtr_path_builder_add calls: the
 * switch events and the pieces they point at (both in query order) not yet
 * spilled, the runs spilled, the sums at λ = 0 of the blocks finished so
 * far and of the one still open. */
struct rtr_path_builder {
    rtr_backend *b;
    int32_t k;
    bool truth;
    int64_t chunk_rows, n; /* queries added so far */
    int64_t n_switches;    /* events so far, spilled ones included */
    int64_t spill_at;      /* events held before they go to a run on disk (0: never) */
    run_files files;       /* the runs on disk (spill_event records), in query order */
    sorted_run mem;          /* the events in memory as a run */
    path_event *ev;
    size_t n_ev, cap_ev;
    path_piece *pc;
    size_t n_pc, cap_pc;
    path_sums total;     /* blocks before block `open` */
    int64_t open;        /* the first block not merged into total */
    path_sums *block;    /* blocks open .. of the current call */
    size_t block_cap;
    size_t *seg_ev, *seg_pc; /* per segment of a chunk: where its events and pieces start */
    int64_t seg_cap;
    /* the table of the current call, and its first query's index */
    const rtr_route_table *t;
    int64_t base;
};

static bool grow(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? 2 * *cap : 1 << 16;
    while (c < need) c *= 2;
    void *p = rtr_realloc(*buf, c * elem); /* growth only reserves address space until written */
    if (!p) return false;
    *buf = p;
    *cap = c;
    return true;
}

static rtr_status builder_spill(rtr_path_builder *pb);

static rtr_status path_sink(void *ctx, int64_t q0, int64_t n, int32_t k, const int32_t *pair, const double *start,
                            const int32_t *m) {
    rtr_path_builder *pb = ctx;
    const rtr_route_table *t = pb->t;
    const float *cost = t->cost ? t->cost : t->c;
    int64_t g0 = pb->base + q0; /* global index of the chunk's first query */
    int64_t b0 = g0 / PATH_BLOCK, nseg = (g0 + n - 1) / PATH_BLOCK - b0 + 1;
    if (nseg > pb->seg_cap) {
        size_t *a = rtr_realloc(pb->seg_ev, (size_t)nseg * sizeof *a), *c = a ? rtr_realloc(pb->seg_pc, (size_t)nseg * sizeof *c) : NULL;
        if (a) pb->seg_ev = a;
        if (c) pb->seg_pc = c;
        if (!a || !c) return RTR_ERR_NOMEM;
        pb->seg_cap = nseg;
    }
    /* The piece counts give each segment's events and pieces and where they
     * start (a serial pass over m: cheaper than a parallel region on a busy machine). */
    size_t ev_total = 0, pc_total = 0;
    for (int64_t g = 0; g < nseg; g++) {
        int64_t lo = (b0 + g) * PATH_BLOCK, hi = lo + PATH_BLOCK;
        if (lo < g0) lo = g0;
        if (hi > g0 + n) hi = g0 + n;
        pb->seg_ev[g] = pb->n_ev + ev_total;
        pb->seg_pc[g] = pb->n_pc + pc_total;
        for (int64_t i = lo; i < hi; i++) {
            int32_t mi = m[i - g0];
            if (!mi)
                return rtr_fail(RTR_ERR_INVALID, "λ path: query %lld has no allowed pair (every pair excluded or NaN)",
                                (long long)i);
            ev_total += (size_t)(mi - 1);
            pc_total += (size_t)mi;
        }
    }
    if (!grow((void **)&pb->ev, &pb->cap_ev, pb->n_ev + ev_total, sizeof *pb->ev) ||
        !grow((void **)&pb->pc, &pb->cap_pc, pb->n_pc + pc_total, sizeof *pb->pc))
        return rtr_fail(RTR_ERR_NOMEM, "λ path: out of memory for switch events");
    /* In parallel: each segment writes its pieces and events where the
     * counts put them and adds its queries' choices at λ = 0 to its block's sums. */
    path_sums *blocks = pb->block;
    int64_t open = pb->open;
    bool truth = pb->truth;
#pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < nseg; g++) {
        int64_t lo = (b0 + g) * PATH_BLOCK, hi = lo + PATH_BLOCK;
        if (lo < g0) lo = g0;
        if (hi > g0 + n) hi = g0 + n;
        path_event *out = pb->ev + pb->seg_ev[g];
        size_t at = pb->seg_pc[g];
        for (int64_t i = lo; i < hi; i++) {
            int64_t r = i - pb->base; /* row of the call's table */
            const int32_t *pi = pair + (size_t)(i - g0) * (size_t)k;
            const double *si = start + (size_t)(i - g0) * (size_t)k;
            for (int32_t s = 0; s < m[i - g0]; s++) {
                size_t cell = (size_t)r * (size_t)t->k + (size_t)pi[s];
                path_piece *v = &pb->pc[at + (size_t)s];
                v->p = t->p[cell];
                v->cost = cost[cell];
                v->tc = truth ? t->true_correct[cell] : NAN;
                v->tk = truth ? t->true_cost[cell] : NAN;
                if (s) {
                    uint64_t key;
                    memcpy(&key, &si[s], sizeof key);
                    *out++ = (path_event){key, (uint64_t)(at + (size_t)s)};
                }
            }
            sums_add(&blocks[b0 + g - open], &pb->pc[at], truth, 1.0);
            at += (size_t)m[i - g0];
        }
    }
    pb->n_ev += ev_total;
    pb->n_pc += pc_total;
    pb->n_switches += (int64_t)ev_total;
    return pb->spill_at > 0 && pb->n_ev >= (size_t)pb->spill_at ? builder_spill(pb) : RTR_OK;
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

/* Point j's values from the sums while it holds, over n queries. */
static rtr_path_point point_of(int64_t j, const path_sums *s, double n, double lambda_lo, double lambda, bool truth) {
    rtr_path_point pt = {.j = j, .lambda_lo = lambda_lo, .lambda_hi = lambda, .pred_acc = s->pred_acc / n,
                         .pred_cost = s->pred_cost / n, .real_acc = NAN, .real_cost = NAN};
    if (!truth) return pt;
    double have = n - (double)s->missing;
    pt.real_acc = have > 0 ? s->real_acc / have : NAN;
    pt.real_cost = have > 0 ? s->real_cost / have : NAN;
    pt.n_missing = s->missing;
    return pt;
}

static void path_emit(rtr_path *path, int64_t j, const path_sums *s, double lambda) {
    rtr_path_point pt = point_of(j, s, (double)path->n_queries, 0, lambda, path->real_acc != NULL);
    path->lambda[j] = lambda;
    path->pred_acc[j] = pt.pred_acc;
    path->pred_cost[j] = pt.pred_cost;
    if (!path->real_acc) return;
    path->real_acc[j] = pt.real_acc;
    path->real_cost[j] = pt.real_cost;
    path->n_missing[j] = pt.n_missing;
}

static rtr_path_break break_of(const path_sums *d, double lambda) {
    return (rtr_path_break){lambda, d->pred_acc, d->pred_cost, d->real_acc, d->real_cost, d->missing};
}

/* The records: an event in memory (its pieces in ctx), one spilled, a part's break. */
static void apply_event(path_sums *s, const char *rec, const void *ctx, bool truth) {
    path_event e;
    memcpy(&e, rec, sizeof e);
    const path_piece *to = (const path_piece *)ctx + e.val;
    sums_add(s, to - 1, truth, -1.0);
    sums_add(s, to, truth, 1.0);
}

static void apply_spilled(path_sums *s, const char *rec, const void *ctx, bool truth) {
    (void)ctx;
    spill_event e;
    memcpy(&e, rec, sizeof e);
    sums_add(s, &e.from, truth, -1.0);
    sums_add(s, &e.to, truth, 1.0);
}

static void apply_break(path_sums *s, const char *rec, const void *ctx, bool truth) {
    (void)ctx, (void)truth;
    rtr_path_break b;
    memcpy(&b, rec, sizeof b);
    s->pred_acc += b.pred_acc;
    s->pred_cost += b.pred_cost;
    s->real_acc += b.real_acc;
    s->real_cost += b.real_cost;
    s->missing += b.n_missing;
}

static double key_lambda(uint64_t key) {
    double lambda;
    memcpy(&lambda, &key, sizeof lambda);
    return lambda;
}

static rtr_status emit_point(void *pctx, int64_t j, const path_sums *s, double lambda) {
    path_emit(pctx, j, s, lambda);
    return RTR_OK;
}

static rtr_status merge_walk(run_merge *m, rec_apply apply, const void *ctx, bool truth, path_sums sums,
                             point_fn point, void *pctx, int64_t *n_groups) {
    rtr_status st = run_merge_start(m);
    const char *rec;
    int64_t j = 0;
    uint64_t key = 0;
    while (!st && !(st = run_merge_next(m, &rec)) && rec) {
        uint64_t k;
        memcpy(&k, rec, sizeof k);
        if (!j || k != key) {
            if (point && (st = point(pctx, j, &sums, key_lambda(k)))) return st;
            j++;
            key = k;
        }
        apply(&sums, rec, ctx, truth);
    }
    if (st) return st;
    if (point && (st = point(pctx, j, &sums, 1.0))) return st;
    *n_groups = j;
    return RTR_OK;
}

/* The path of the merged records from the sums at λ = 0: a pass counts its
 * points, a second fills them (path->n_queries and n_switches set before). */
static rtr_status path_from_merge(rtr_path *path, run_merge *m, rec_apply apply, const void *ctx, bool truth,
                                  path_sums sums) {
    int64_t groups;
    rtr_status st = merge_walk(m, apply, ctx, truth, sums, NULL, NULL, &groups);
    if (!st) st = path_alloc(path, groups + 1, truth);
    if (!st) st = merge_walk(m, apply, ctx, truth, sums, emit_point, path, &groups);
    return st;
}

/* The events held, sorted on λ (stable: query order at equal λ). */
static rtr_status events_sorted(rtr_path_builder *pb) {
    size_t n_ev = pb->n_ev;
    if (n_ev < 2) return RTR_OK;
    path_event *tmp = rtr_malloc(n_ev * sizeof *tmp);
    if (!tmp) return RTR_ERR_NOMEM;
    events_sort(pb->ev, tmp, n_ev);
    free(tmp);
    return RTR_OK;
}

/* The events held, sorted, written as a run on disk with the pieces they
 * switch between; the memory is then reused. */
static rtr_status builder_spill(rtr_path_builder *pb) {
    FILE *f = NULL;
    rtr_status st = events_sorted(pb);
    if (!st) st = run_temp_file(&f, "λ path");
    if (st) return st;
    for (size_t e = 0; e < pb->n_ev; e++) {
        const path_piece *to = &pb->pc[pb->ev[e].val];
        spill_event x = {pb->ev[e].key, to[-1], to[0]};
        if (fwrite(&x, sizeof x, 1, f) != 1) break; /* run_files_push reports it */
    }
    st = run_files_push(&pb->files, f, pb->n_ev);
    pb->n_ev = pb->n_pc = 0;
    return st;
}

void rtr_path_builder_spill(rtr_path_builder *pb, int64_t max_events) {
    pb->spill_at = max_events > 0 ? max_events : 0;
}

void rtr_path_builder_free(rtr_path_builder *pb) {
    if (!pb) return;
    run_files_free(&pb->files);
    free(pb->ev);
    free(pb->pc);
    free(pb->block);
    free(pb->seg_ev);
    free(pb->seg_pc);
    free(pb);
}

rtr_status rtr_path_builder_open(rtr_backend *b, rtr_path_builder **out, int32_t k, bool truth, int64_t chunk_rows) {
    *out = NULL;
    /* switch events index pieces; the envelope op takes at most 65535 pairs */
    if (k <= 0 || k > 65535) return rtr_fail(RTR_ERR_INVALID, "λ path: %d pairs, 1 to 65535 supported", (int)k);
    rtr_path_builder *pb = rtr_calloc(1, sizeof *pb);
    if (!pb) return RTR_ERR_NOMEM;
    *pb = (rtr_path_builder){.b = b, .k = k, .truth = truth, .chunk_rows = chunk_rows, .spill_at = RTR_PATH_SPILL_EVENTS,
                                .files = {.rec = sizeof(spill_event), .what = "λ path"}};
    *out = pb;
    return RTR_OK;
}

rtr_status rtr_path_builder_add(rtr_path_builder *pb, const rtr_route_table *t) {
    if (t->k != pb->k) return rtr_fail(RTR_ERR_INVALID, "λ path: a table of %d pairs added to a path of %d", (int)t->k, (int)pb->k);
    if (pb->truth && (!t->true_correct || !t->true_cost))
        return rtr_fail(RTR_ERR_INVALID, "λ path: true_correct and true_cost must be given together");
    if (t->n <= 0) return RTR_OK;
    /* the open block sums: from the first unmerged block to this call's last */
    int64_t last = (pb->n + t->n - 1) / PATH_BLOCK;
    size_t need = (size_t)(last - pb->open + 1);
    if (need > pb->block_cap) {
        path_sums *bl = rtr_realloc(pb->block, need * sizeof *bl);
        if (!bl) return RTR_ERR_NOMEM;
        memset(bl + pb->block_cap, 0, (need - pb->block_cap) * sizeof *bl);
        pb->block = bl;
        pb->block_cap = need;
    }
    pb->t = t;
    pb->base = pb->n;
    rtr_status st = rtr_envelopes_on(pb->b, t->p, t->c, t->n, t->k, pb->chunk_rows, path_sink, pb);
    if (st) return st;
    pb->n += t->n;
    /* blocks wholly added are final: merge them in order and keep the open one */
    int64_t done = pb->n / PATH_BLOCK; /* blocks before this are complete */
    int64_t merge = done - pb->open;
    for (int64_t i = 0; i < merge; i++) sums_merge(&pb->total, &pb->block[i]);
    if (merge > 0) {
        size_t keep = pb->block_cap - (size_t)merge;
        memmove(pb->block, pb->block + merge, keep * sizeof *pb->block);
        memset(pb->block + keep, 0, (size_t)merge * sizeof *pb->block);
        pb->open = done;
    }
    return RTR_OK;
}

/* The sums at λ = 0 of every query added (blocks in order), the per-call
 * buffers freed, and the events as sorted runs opened in m: with none
 * spilled, the events in memory (*apply = apply_event, their pieces in
 * *ctx); else the rest spilled too and every run on disk. */
static rtr_status builder_runs(rtr_path_builder *pb, path_sums *sums, run_merge *m, rec_apply *apply,
                               const void **ctx) {
    *sums = pb->total;
    for (int64_t i = 0; i * PATH_BLOCK < pb->n - pb->open * PATH_BLOCK; i++) sums_merge(sums, &pb->block[i]);
    free(pb->block), pb->block = NULL;
    free(pb->seg_ev), pb->seg_ev = NULL;
    free(pb->seg_pc), pb->seg_pc = NULL;
    *m = (run_merge){0};
    rtr_status st = RTR_OK;
    if (pb->files.n) {
        if (pb->n_ev) st = builder_spill(pb);
        free(pb->ev), pb->ev = NULL; /* the merge reads the runs only */
        free(pb->pc), pb->pc = NULL;
        pb->cap_ev = pb->cap_pc = 0;
        *apply = apply_spilled;
        *ctx = NULL;
        if (!st) st = run_merge_open(m, pb->files.runs, pb->files.n);
        return st;
    }
    size_t n_ev = pb->n_ev;
    path_event *fit = n_ev && n_ev < pb->cap_ev ? realloc(pb->ev, n_ev * sizeof *pb->ev) : NULL; /* give back the slack */
    if (fit) pb->ev = fit, pb->cap_ev = n_ev;
    st = events_sorted(pb);
    pb->mem = (sorted_run){.mem = (const char *)pb->ev, .n = n_ev, .rec = sizeof *pb->ev};
    *apply = apply_event;
    *ctx = pb->pc;
    if (!st) st = run_merge_open(m, &pb->mem, 1);
    return st;
}

/* What finish and the budget search start from: the added rows checked,
 * the sums and the merge of the sorted runs. */
static rtr_status builder_start(rtr_path_builder *pb, path_sums *sums, run_merge *m, rec_apply *apply,
                                const void **ctx) {
    if (pb->n <= 0) return rtr_fail(RTR_ERR_INVALID, "λ path: empty routing table (0 queries x %d pairs)", (int)pb->k);
    if (pb->n > (int64_t)UINT32_MAX)
        return rtr_fail(RTR_ERR_INVALID, "λ path: %lld queries, at most 2^32 - 1 in one path", (long long)pb->n);
    return builder_runs(pb, sums, m, apply, ctx);
}

rtr_status rtr_path_builder_finish(rtr_path_builder *pb, rtr_path *path) {
    memset(path, 0, sizeof *path);
    path_sums sums = {0};
    run_merge m = {0};
    rec_apply apply = NULL;
    const void *ctx = NULL;
    rtr_status st = builder_start(pb, &sums, &m, &apply, &ctx);
    /* the sweep: point j holds until the group of events sharing the j-th
     * distinct λ, which becomes its right end */
    if (!st) {
        path->n_queries = pb->n;
        path->n_switches = pb->n_switches;
        st = path_from_merge(path, &m, apply, ctx, pb->truth, sums);
    }
    run_merge_free(&m);
    rtr_path_builder_free(pb);
    if (st) rtr_path_free(path);
    return st;
}

/* A walk's points handed on as they come (rtr_path_builder_walk). */
typedef struct {
    rtr_path_point_fn fn;
    void *ctx;
    double n, lambda_lo;
    int64_t n_points;
    bool truth;
} point_walk;

static rtr_status walk_point(void *pctx, int64_t j, const path_sums *s, double lambda) {
    point_walk *w = pctx;
    rtr_path_point pt = point_of(j, s, w->n, w->lambda_lo, lambda, w->truth);
    pt.n_points = w->n_points;
    w->lambda_lo = lambda;
    return w->fn(w->ctx, &pt);
}

/* The points of merge m from the sums at λ = 0 over n queries, to fn; with
 * count a first pass counts them, so that each comes with their number
 * (else n_points is 0). */
static rtr_status walk_merge(run_merge *m, rec_apply apply, const void *actx, bool truth, path_sums sums, int64_t n,
                             rtr_path_point_fn fn, void *ctx, bool count) {
    point_walk w = {.fn = fn, .ctx = ctx, .n = (double)n, .truth = truth};
    int64_t groups = 0;
    rtr_status st = count ? merge_walk(m, apply, actx, truth, sums, NULL, NULL, &groups) : RTR_OK;
    w.n_points = count ? groups + 1 : 0;
    if (!st) st = merge_walk(m, apply, actx, truth, sums, walk_point, &w, &groups);
    return st;
}

/* rtr_path_builder_walk (count: with the points' number) in one process. */
static rtr_status walk_local(rtr_path_builder *pb, rtr_path_point_fn fn, void *ctx, int64_t *n_queries,
                             int64_t *n_switches, bool count) {
    path_sums sums = {0};
    run_merge m = {0};
    rec_apply apply = NULL;
    const void *actx = NULL;
    *n_queries = pb->n;
    *n_switches = pb->n_switches;
    rtr_status st = builder_start(pb, &sums, &m, &apply, &actx);
    if (!st) st = walk_merge(&m, apply, actx, pb->truth, sums, pb->n, fn, ctx, count);
    run_merge_free(&m);
    rtr_path_builder_free(pb);
    return st;
}

rtr_status rtr_path_builder_walk(rtr_path_builder *pb, rtr_path_point_fn fn, void *ctx, int64_t *n_queries,
                                 int64_t *n_switches) {
    return walk_local(pb, fn, ctx, n_queries, n_switches, true);
}

rtr_status rtr_path_walk(const rtr_path *p, rtr_path_point_fn fn, void *ctx) {
    rtr_status st = RTR_OK;
    for (int64_t j = 0; !st && j < p->n_points; j++) {
        rtr_path_point pt = {j, p->n_points, j ? p->lambda[j - 1] : 0.0, p->lambda[j], p->pred_acc[j], p->pred_cost[j],
                             p->real_acc ? p->real_acc[j] : NAN, p->real_cost ? p->real_cost[j] : NAN,
                             p->n_missing ? p->n_missing[j] : 0};
        st = fn(ctx, &pt);
    }
    return st;
}

rtr_status rtr_path_compute_on(rtr_backend *b, rtr_path *path, const rtr_route_table *t, int64_t chunk_rows) {
    memset(path, 0, sizeof *path);
    if (t->n <= 0 || t->k <= 0) return rtr_fail(RTR_ERR_INVALID, "λ path: empty routing table (%lld queries x %d pairs)", (long long)t->n, (int)t->k);
    if (t->n > (int64_t)UINT32_MAX) return rtr_fail(RTR_ERR_INVALID, "λ path: %lld queries, at most 2^32 - 1 in one path", (long long)t->n);
    if (!t->true_correct != !t->true_cost) return rtr_fail(RTR_ERR_INVALID, "λ path: true_correct and true_cost must be given together");
    rtr_path_builder *pb;
    rtr_status st = rtr_path_builder_open(b, &pb, t->k, t->true_correct != NULL, chunk_rows);
    if (!st) st = rtr_path_builder_add(pb, t);
    if (st) {
        rtr_path_builder_free(pb);
        return st;
    }
    return rtr_path_builder_finish(pb, path);
}

rtr_status rtr_path_compute(rtr_path *path, const rtr_route_table *t) {
    rtr_backend cpu;
    rtr_backend_cpu_open(&cpu);
    rtr_status st = rtr_path_compute_on(&cpu, path, t, 0);
    rtr_backend_free(&cpu);
    return st;
}

/* ----------------------------------------- a path from parts of a table */

/* The breakpoints of a merge of records, pulled one at a time: each is a
 * distinct λ with what its records change in the sums (the order of the
 * additions merge_walk's, so a part's breaks are the same however read). */
typedef struct {
    run_merge *m;
    rec_apply apply;
    const void *ctx;
    bool truth;
    const char *rec; /* the next record (the merge's copy), NULL at the end */
} break_gen;

static rtr_status break_gen_start(break_gen *g) {
    rtr_status st = run_merge_start(g->m);
    g->rec = NULL;
    return st ? st : run_merge_next(g->m, &g->rec);
}

/* The next breakpoint into *b; *got false at the end. */
static rtr_status break_gen_next(break_gen *g, rtr_path_break *b, bool *got) {
    *got = g->rec != NULL;
    if (!*got) return RTR_OK;
    uint64_t key, k = 0;
    memcpy(&key, g->rec, sizeof key);
    path_sums d = {0};
    rtr_status st = RTR_OK;
    do {
        g->apply(&d, g->rec, g->ctx, g->truth);
        st = run_merge_next(g->m, &g->rec);
        if (g->rec) memcpy(&k, g->rec, sizeof k);
    } while (!st && g->rec && k == key);
    *b = break_of(&d, key_lambda(key));
    return st;
}

/* A part's sums at λ = 0, its queries, switches and truth: what a rank
 * tells the others before its breakpoints. */
static rtr_path_part part_head(const rtr_path_builder *pb, const path_sums *at0) {
    return (rtr_path_part){.n_queries = pb->n, .n_switches = pb->n_switches, .truth = pb->truth,
                           .at0 = break_of(at0, 0.0)};
}

rtr_status rtr_path_builder_part(rtr_path_builder *pb, rtr_path_part *part) {
    memset(part, 0, sizeof *part);
    path_sums sums;
    run_merge m;
    rec_apply apply;
    const void *ctx;
    rtr_status st = builder_runs(pb, &sums, &m, &apply, &ctx);
    break_gen g = {.m = &m, .apply = apply, .ctx = ctx, .truth = pb->truth};
    if (!st) *part = part_head(pb, &sums), st = break_gen_start(&g);
    size_t cap = 0;
    for (bool got = true; !st && got;) {
        rtr_path_break b;
        st = break_gen_next(&g, &b, &got);
        if (st || !got) break;
        if (!grow((void **)&part->breaks, &cap, (size_t)part->n_breaks + 1, sizeof b)) st = RTR_ERR_NOMEM;
        else part->breaks[part->n_breaks++] = b;
    }
    run_merge_free(&m);
    rtr_path_builder_free(pb);
    if (st) rtr_path_part_free(part);
    return st;
}

void rtr_path_part_free(rtr_path_part *part) {
    free(part->breaks);
    memset(part, 0, sizeof *part);
}

/* The queries of every part together: one path holds at least one and less than 2^32. */
static rtr_status parts_check(int64_t n) {
    if (n <= 0) return rtr_fail(RTR_ERR_INVALID, "λ path: empty routing table (0 queries)");
    if (n > (int64_t)UINT32_MAX) return rtr_fail(RTR_ERR_INVALID, "λ path: %lld queries, at most 2^32 - 1 in one path", (long long)n);
    return RTR_OK;
}

/* The sums at λ = 0 of the parts' queries: the parts' sums added in part order. */
static path_sums parts_at0(const rtr_path_part *heads, int n, bool truth) {
    path_sums sums = {0};
    for (int r = 0; r < n; r++) apply_break(&sums, (const char *)&heads[r].at0, NULL, truth);
    return sums;
}

rtr_status rtr_path_merge(rtr_path *path, const rtr_path_part *parts, int n_parts) {
    memset(path, 0, sizeof *path);
    int64_t n = 0, n_sw = 0;
    bool truth = n_parts > 0 && parts[0].truth;
    for (int r = 0; r < n_parts; r++) {
        if (parts[r].truth != truth) return rtr_fail(RTR_ERR_INVALID, "λ path: parts with and without outcomes merged");
        n += parts[r].n_queries;
        n_sw += parts[r].n_switches;
    }
    rtr_status st = parts_check(n);
    if (st) return st;
    /* each part's breaks a run (parts in order at equal λ), then one pass
     * from the sums at λ = 0, as rtr_path_builder_finish's */
    sorted_run *runs = rtr_calloc((size_t)n_parts, sizeof *runs);
    run_merge m = {0};
    st = runs ? run_merge_open(&m, runs, n_parts) : RTR_ERR_NOMEM;
    for (int r = 0; !st && r < n_parts; r++)
        runs[r] = (sorted_run){.mem = (const char *)parts[r].breaks, .n = (size_t)parts[r].n_breaks, .rec = sizeof(rtr_path_break)};
    path->n_queries = n;
    path->n_switches = n_sw;
    if (!st) st = path_from_merge(path, &m, apply_break, NULL, truth, parts_at0(parts, n_parts, truth));
    run_merge_free(&m);
    free(runs);
    if (st) rtr_path_free(path);
    return st;
}

/* ------------------------------------- the path of every rank, streamed */

/* Breakpoints per message from a rank to rank 0 (rtr_dist_stream): 48 KiB,
 * within the 64 KiB a pulled run reads at a time (runs.h). */
#define STREAM_BREAKS 1024
#define STREAM_TAG 71

/* A rank's own breakpoints as a pulled run (runs.h): the next ones of its merge. */
static rtr_status pull_own(void *ctx, char *buf, size_t max, size_t *got, bool first) {
    break_gen *g = ctx;
    rtr_status st = first ? break_gen_start(g) : RTR_OK;
    *got = 0;
    for (bool more = true; !st && more && *got < max;) {
        rtr_path_break b;
        st = break_gen_next(g, &b, &more);
        if (!st && more) memcpy(buf + (*got)++ * sizeof b, &b, sizeof b);
    }
    return st;
}

/* A rank other than 0: its breakpoints to rank 0, once per pass of rank 0's walk. */
static rtr_status serve_breaks(break_gen *g, int passes) {
    rtr_dist_stream s;
    rtr_dist_stream_open(&s, rtr_dist_rank(), sizeof(rtr_path_break), STREAM_BREAKS * sizeof(rtr_path_break), STREAM_TAG);
    rtr_status st = RTR_OK;
    for (int p = 0; !st && p < passes; p++) {
        st = break_gen_start(g);
        for (bool more = true; !st && more;) {
            rtr_path_break b;
            st = break_gen_next(g, &b, &more);
            if (!st && more) st = rtr_dist_stream_put(&s, &b, sizeof b);
        }
        if (!st) st = rtr_dist_stream_end(&s);
    }
    rtr_dist_stream_close(&s);
    return st;
}

/* Rank 0: every rank's breakpoints merged as they arrive (rank order at
 * equal λ, as rtr_path_merge), walked from the sums at λ = 0 of heads. */
static rtr_status merge_ranks(break_gen *own, const rtr_path_part *heads, int n, int64_t n_queries, bool truth,
                              rtr_path_point_fn fn, void *ctx, bool count) {
    sorted_run *runs = rtr_calloc((size_t)n, sizeof *runs);
    rtr_dist_stream *src = rtr_calloc((size_t)n, sizeof *src);
    run_merge m = {0};
    rtr_status st = runs && src ? run_merge_open(&m, runs, n) : RTR_ERR_NOMEM;
    for (int r = 0; !st && r < n; r++) {
        rtr_dist_stream_open(&src[r], r, sizeof(rtr_path_break), STREAM_BREAKS * sizeof(rtr_path_break), STREAM_TAG);
        runs[r] = (sorted_run){.pull = r ? rtr_dist_stream_pull : pull_own, .pull_ctx = r ? (void *)&src[r] : (void *)own,
                               .rec = sizeof(rtr_path_break)};
    }
    if (!st) st = walk_merge(&m, apply_break, NULL, truth, parts_at0(heads, n, truth), n_queries, fn, ctx, count);
    for (int r = 0; runs && r < n; r++) sorted_run_close(&runs[r]);
    for (int r = 0; src && r < n; r++) rtr_dist_stream_close(&src[r]);
    run_merge_free(&m);
    free(runs);
    free(src);
    return st;
}

/* rtr_path_builder_walk_ranks (count: with the points' number). */
static rtr_status walk_ranks(rtr_path_builder *pb, rtr_path_point_fn fn, void *ctx, int64_t *n_queries,
                             int64_t *n_switches, bool count) {
    int size = rtr_dist_size();
    if (size == 1) return walk_local(pb, fn, ctx, n_queries, n_switches, count);
    path_sums sums = {0};
    run_merge local = {0};
    rec_apply apply = NULL;
    const void *actx = NULL;
    rtr_status st = builder_runs(pb, &sums, &local, &apply, &actx);
    break_gen g = {.m = &local, .apply = apply, .ctx = actx, .truth = pb->truth};
    /* the totals on every rank, so that every rank refuses the same paths */
    rtr_path_part head = part_head(pb, &sums);
    int64_t tot[3] = {pb->n, pb->n_switches, pb->truth};
    if (!st) st = rtr_dist_sum_i64(tot, 3);
    *n_queries = tot[0];
    *n_switches = tot[1];
    if (!st && tot[2] != 0 && tot[2] != size) st = rtr_fail(RTR_ERR_INVALID, "λ path: parts with and without outcomes merged");
    if (!st) st = parts_check(tot[0]);
    void *heads = NULL;
    size_t len = 0;
    if (!st) st = rtr_dist_gather(&heads, &len, NULL, &head, sizeof head);
    if (!st && rtr_dist_rank() != 0) st = serve_breaks(&g, count ? 2 : 1);
    else if (!st) st = merge_ranks(&g, heads, size, tot[0], tot[2] != 0, fn, ctx, count);
    free(heads);
    run_merge_free(&local);
    rtr_path_builder_free(pb);
    return st;
}

rtr_status rtr_path_builder_walk_ranks(rtr_path_builder *pb, rtr_path_point_fn fn, void *ctx, int64_t *n_queries,
                                       int64_t *n_switches) {
    return walk_ranks(pb, fn, ctx, n_queries, n_switches, true);
}

/* The budget search of rtr_path_budget on points as a walk gives them. */
typedef struct {
    const int64_t *n; /* the path's queries, known when the first point comes */
    double budget, mean, cost0, lambda;
    bool total;
} budget_scan;

static rtr_status budget_point(void *ctx, const rtr_path_point *pt) {
    budget_scan *b = ctx;
    if (!pt->j) {
        b->cost0 = pt->pred_cost;
        b->mean = b->total ? b->budget / (double)*b->n : b->budget;
    }
    if (!pt->j || pt->pred_cost <= b->mean) b->lambda = pt->lambda_hi;
    return RTR_OK;
}

rtr_status rtr_path_builder_budget(rtr_path_builder *pb, double budget, bool total, double *lambda) {
    int64_t n = 0, n_sw = 0;
    budget_scan b = {.n = &n, .budget = budget, .total = total};
    rtr_status st = walk_ranks(pb, budget_point, &b, &n, &n_sw, false);
    /* rank 0 walked the path: its figures to every rank, so that every rank
     * returns the same λ or the same error */
    double got[3] = {b.mean, b.cost0, b.lambda};
    if (!st) st = rtr_dist_bcast(got, sizeof got, 0);
    if (!st && !(got[0] >= got[1]))
        st = rtr_fail(RTR_ERR_INVALID, "budget %.6g per query is below the cheapest possible routing (%.6g per query)",
                      got[0], got[1]);
    if (!st) *lambda = got[2];
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

rtr_status rtr_path_budget(int64_t *point, const rtr_path *path, double mean_budget) {
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

int64_t rtr_pareto_front(int64_t *idx, const double *cost, const double *acc, int64_t n) {
    curve_point *it = malloc(sizeof *it * (size_t)(n ? n : 1));
    if (!it) return -1;
    int64_t m = 0, out = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(cost[i]) && !isnan(acc[i])) it[m++] = (curve_point){cost[i], acc[i], i};
    qsort(it, (size_t)m, sizeof *it, curve_point_cmp);
    /* In cost order, a point survives when it is more accurate than every
     * cheaper-or-equal point before it. */
    for (int64_t t = 0; t < m; t++)
        if (!out || it[t].acc > acc[idx[out - 1]]) idx[out++] = it[t].j;
    free(it);
    return out;
}
