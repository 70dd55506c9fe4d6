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
 * gets point j, the sums before group j (the last point: λ = 1); with
 * breaks, breaks[j] gets what group j changes in the sums; *n_groups always. */
static rtr_status merge_walk(run_merge *m, rec_apply apply, const void *ctx, bool truth, path_sums sums,
                             point_fn point, void *pctx, rtr_path_break *breaks, int64_t *n_groups);

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
                             point_fn point, void *pctx, rtr_path_break *breaks, int64_t *n_groups) {
    rtr_status st = run_merge_start(m);
    const char *rec;
    int64_t j = 0;
    uint64_t key = 0;
    path_sums d = {0};
    while (!st && !(st = run_merge_next(m, &rec)) && rec) {
        uint64_t k;
        memcpy(&k, rec, sizeof k);
        if (!j || k != key) {
            if (breaks && j) breaks[j - 1] = break_of(&d, key_lambda(key));
            if (point && (st = point(pctx, j, &sums, key_lambda(k)))) return st;
            j++;
            key = k;
            d = (path_sums){0};
        }
        apply(breaks ? &d : &sums, rec, ctx, truth);
    }
    if (st) return st;
    if (breaks && j) breaks[j - 1] = break_of(&d, key_lambda(key));
    if (point && (st = point(pctx, j, &sums, 1.0))) return st;
    *n_groups = j;
    return RTR_OK;
}

/* The path of the merged records from the sums at λ = 0: a pass counts its
 * points, a second fills them (path->n_queries and n_switches set before). */
static rtr_status path_from_merge(rtr_path *path, run_merge *m, rec_apply apply, const void *ctx, bool truth,
                                  path_sums sums) {
    int64_t groups;
    rtr_status st = merge_walk(m, apply, ctx, truth, sums, NULL, NULL, NULL, &groups);
    if (!st) st = path_alloc(path, groups + 1, truth);
    if (!st) st = merge_walk(m, apply, ctx, truth, sums, emit_point, path, NULL, &groups);
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

rtr_status rtr_path_builder_walk(rtr_path_builder *pb, rtr_path_point_fn fn, void *ctx, int64_t *n_queries,
                                 int64_t *n_switches) {
    path_sums sums = {0};
    run_merge m = {0};
    rec_apply apply = NULL;
    const void *actx = NULL;
    point_walk w = {.fn = fn, .ctx = ctx, .n = (double)pb->n, .truth = pb->truth};
    *n_queries = pb->n;
    *n_switches = pb->n_switches;
    int64_t groups = 0; /* read below even when the first walk failed */
    /* a first pass counts the points, so that each point comes with their number */
    rtr_status st = builder_start(pb, &sums, &m, &apply, &actx);
    if (!st) st = merge_walk(&m, apply, actx, pb->truth, sums, NULL, NULL, NULL, &groups);
    w.n_points = groups + 1;
    if (!st) st = merge_walk(&m, apply, actx, pb->truth, sums, walk_point, &w, NULL, &groups);
    run_merge_free(&m);
    rtr_path_builder_free(pb);
    return st;
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

/* The budget search of rtr_path_budget on points as a pass makes them. */
typedef struct {
    double n, mean_budget, cost0, lambda;
} budget_scan;

static rtr_status budget_point(void *pctx, int64_t j, const path_sums *s, double lambda) {
    budget_scan *b = pctx;
    double cost = s->pred_cost / b->n; /* path_emit's pred_cost */
    if (!j) b->cost0 = cost;
    if (!j || cost <= b->mean_budget) b->lambda = lambda;
    return RTR_OK;
}

rtr_status rtr_path_builder_budget(rtr_path_builder *pb, double budget, bool total, double *lambda) {
    path_sums sums = {0};
    run_merge m = {0};
    rec_apply apply = NULL;
    const void *ctx = NULL;
    budget_scan b = {.n = (double)pb->n, .mean_budget = total ? budget / (double)pb->n : budget};
    int64_t groups;
    rtr_status st = builder_start(pb, &sums, &m, &apply, &ctx);
    if (!st) st = merge_walk(&m, apply, ctx, pb->truth, sums, budget_point, &b, NULL, &groups);
    if (!st && !(b.mean_budget >= b.cost0))
        st = rtr_fail(RTR_ERR_INVALID, "budget %.6g per query is below the cheapest possible routing (%.6g per query)",
                      b.mean_budget, b.cost0);
    if (!st) *lambda = b.lambda;
    run_merge_free(&m);
    rtr_path_builder_free(pb);
    return st;
}

/* ----------------------------------------- a path from parts of a table */

rtr_status rtr_path_builder_part(rtr_path_builder *pb, rtr_path_part *part) {
    memset(part, 0, sizeof *part);
    path_sums sums;
    run_merge m;
    rec_apply apply;
    const void *ctx;
    int64_t n_breaks = 0;
    rtr_status st = builder_runs(pb, &sums, &m, &apply, &ctx);
    /* each distinct λ: what its switches change in the sums */
    if (!st) st = merge_walk(&m, apply, ctx, pb->truth, sums, NULL, NULL, NULL, &n_breaks);
    if (!st && !(part->breaks = rtr_malloc(sizeof *part->breaks * (size_t)(n_breaks ? n_breaks : 1)))) st = RTR_ERR_NOMEM;
    if (!st) st = merge_walk(&m, apply, ctx, pb->truth, sums, NULL, NULL, part->breaks, &n_breaks);
    if (!st) {
        part->n_queries = pb->n;
        part->n_switches = pb->n_switches;
        part->n_breaks = n_breaks;
        part->truth = pb->truth;
        part->at0 = break_of(&sums, 0.0);
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

rtr_status rtr_path_merge(rtr_path *path, const rtr_path_part *parts, int n_parts) {
    memset(path, 0, sizeof *path);
    int64_t n = 0, n_sw = 0;
    bool truth = n_parts > 0 && parts[0].truth;
    for (int r = 0; r < n_parts; r++) {
        if (parts[r].truth != truth) return rtr_fail(RTR_ERR_INVALID, "λ path: parts with and without outcomes merged");
        n += parts[r].n_queries;
        n_sw += parts[r].n_switches;
    }
    if (n <= 0) return rtr_fail(RTR_ERR_INVALID, "λ path: empty routing table (0 queries)");
    if (n > (int64_t)UINT32_MAX) return rtr_fail(RTR_ERR_INVALID, "λ path: %lld queries, at most 2^32 - 1 in one path", (long long)n);
    /* each part's breaks a run (parts in order at equal λ), then one pass
     * from the sums at λ = 0, as rtr_path_builder_finish's */
    sorted_run *runs = rtr_calloc((size_t)n_parts, sizeof *runs);
    run_merge m = {0};
    rtr_status st = runs ? run_merge_open(&m, runs, n_parts) : RTR_ERR_NOMEM;
    path_sums sums = {0};
    for (int r = 0; !st && r < n_parts; r++) {
        runs[r] = (sorted_run){.mem = (const char *)parts[r].breaks, .n = (size_t)parts[r].n_breaks, .rec = sizeof(rtr_path_break)};
        apply_break(&sums, (const char *)&parts[r].at0, NULL, truth);
    }
    path->n_queries = n;
    path->n_switches = n_sw;
    if (!st) st = path_from_merge(path, &m, apply_break, NULL, truth, sums);
    run_merge_free(&m);
    free(runs);
    if (st) rtr_path_free(path);
    return st;
}


/* A part as bytes (ranks share one architecture): the struct, then its breaks. */
static rtr_status part_pack(const rtr_path_part *part, void **buf, size_t *len) {
    size_t nb = sizeof *part->breaks * (size_t)part->n_breaks;
    char *b = rtr_malloc(sizeof *part + nb);
    if (!b) return RTR_ERR_NOMEM;
    memcpy(b, part, sizeof *part);
    if (nb) memcpy(b + sizeof *part, part->breaks, nb);
    *buf = b;
    *len = sizeof *part + nb;
    return RTR_OK;
}

/* Rank 0: the gathered bytes as n parts whose breaks point into buf. */
static rtr_status parts_unpack(rtr_path_part *parts, int n, char *buf, const size_t *counts) {
    for (int r = 0; r < n; r++) {
        if (counts[r] < sizeof *parts) return rtr_fail(RTR_ERR_FORMAT, "λ path: rank %d sent %zu bytes", r, counts[r]);
        memcpy(&parts[r], buf, sizeof *parts);
        if (counts[r] != sizeof *parts + sizeof *parts->breaks * (size_t)parts[r].n_breaks)
            return rtr_fail(RTR_ERR_FORMAT, "λ path: rank %d sent %zu bytes for %lld breaks", r, counts[r],
                            (long long)parts[r].n_breaks);
        parts[r].breaks = (rtr_path_break *)(void *)(buf + sizeof *parts);
        buf += counts[r];
    }
    return RTR_OK;
}

/* The path's arrays from rank 0 to every rank. */
static rtr_status path_bcast(rtr_path *path) {
    int64_t head[4] = {path->n_points, path->n_queries, path->n_switches, path->real_acc != NULL};
    rtr_status st = rtr_dist_bcast(head, sizeof head, 0);
    if (!st && rtr_dist_rank() != 0) {
        path->n_queries = head[1];
        path->n_switches = head[2];
        st = path_alloc(path, head[0], head[3] != 0);
    }
    size_t np = (size_t)head[0] * sizeof(double);
    double *arr[] = {path->lambda, path->pred_acc, path->pred_cost, path->real_acc, path->real_cost};
    for (int i = 0; !st && i < 5; i++)
        if (arr[i]) st = rtr_dist_bcast(arr[i], np, 0);
    if (!st && path->n_missing) st = rtr_dist_bcast(path->n_missing, (size_t)head[0] * sizeof(int64_t), 0);
    return st;
}

rtr_status rtr_path_builder_finish_ranks(rtr_path_builder *pb, rtr_path *path) {
    if (rtr_dist_size() == 1) return rtr_path_builder_finish(pb, path);
    memset(path, 0, sizeof *path);
    rtr_path_part mine;
    void *bytes = NULL, *all = NULL;
    size_t len = 0, total = 0;
    int n = rtr_dist_size();
    size_t *counts = rtr_calloc((size_t)n, sizeof *counts);
    rtr_path_part *parts = rtr_calloc((size_t)n, sizeof *parts);
    rtr_status st = rtr_path_builder_part(pb, &mine);
    if (!st && (!counts || !parts)) st = RTR_ERR_NOMEM;
    if (!st) st = part_pack(&mine, &bytes, &len);
    rtr_path_part_free(&mine);
    if (!st) st = rtr_dist_gather(&all, &total, counts, bytes, len);
    free(bytes);
    if (!st && rtr_dist_rank() == 0) st = parts_unpack(parts, n, all, counts);
    if (!st && rtr_dist_rank() == 0) st = rtr_path_merge(path, parts, n);
    free(all);
    free(parts);
    free(counts);
    /* a rank that failed stops the job (rtr_dist_abort): the others never wait here for it */
    if (!st) st = path_bcast(path);
    if (st) rtr_path_free(path);
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

int64_t rtr_pareto_front(int64_t *idx, const double *cost, const double *acc, int64_t n) {
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
