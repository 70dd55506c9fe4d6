/* Predictor construction, training and scoring. Training follows the paper
 * (Adam, batches of queries each with all its pairs, early stopping on a
 * validation split carved from the training rows) on the fused heads, and
 * runs once, on any compute backend (include/rtr/backend.h): one GEMM per
 * head gives A = E·W_qᵀ for a batch, the pair tables C come from
 * per-model and per-strategy products (rtr_pair_table_forward), rtr_heads_forward,
 * rtr_heads_loss and rtr_heads_backward do the (query, pair) work, and the backward
 * folds dC into W_m, W_s, b1 and the learnable embeddings u_m, u_s
 * (rtr_pair_table_backward and GEMMs); rtr_adam_update steps. That generic
 * step runs on every backend; on the host (CPU) backends each batch is
 * instead cut into tasks over the threads (train_host.c), the same ops on
 * blocks. The C scoring path is the same forward on the reference backend. */
#include "rtr/backend.h"
#include "rtr/ops.h"
#include "rtr/predictor.h"
#include "predictor/predictor_int.h"
#include "predictor/train_int.h"
#include "common/util.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

rtr_train_params rtr_train_default_params(void) {
    rtr_train_params c = {
        .hidden = 768, .learn_dim = 768, .lr = 1e-3, .batch = 32, .max_epochs = 100,
        .patience = 10, .val_frac = 0.1, .seed = 42,
        .token_target = RTR_TOKENS_RAW, .token_normalize = true,
    };
    return c;
}

/* ------------------------------------------------------------ random numbers */

/* splitmix64: small, seedable, identical on every platform. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
static double rng_normal(uint64_t *s) {
    double u1 = rng_uniform(s), u2 = rng_uniform(s);
    return sqrt(-2.0 * log(u1 + 1e-300)) * cos(6.283185307179586 * u2);
}
/* Fisher-Yates shuffle of idx[0..n). */
static void rng_shuffle(uint64_t *s, int64_t *idx, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rng_next(s) % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* ------------------------------------------------------------ row windows */

/* Rows r0..r1 of d's embeddings are not needed for a while. Where they are a
 * shared file mapping (d->emb_mapped), their pages leave the process (the
 * file and the page cache keep them; a later read faults them back), so
 * resident memory follows the window in use, not the array; with `soon`
 * they are read ahead instead. Elsewhere nothing happens. */
static void advise_rows(const rtr_train_data *d, int64_t r0, int64_t r1, bool soon) {
    if (!d->emb_mapped || r1 <= r0) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)(d->emb + (size_t)r0 * d->D), z = (uintptr_t)(d->emb + (size_t)r1 * d->D);
    if (soon) a &= ~(page - 1); /* read ahead whole pages; release only pages inside the rows */
    else a = (a + page - 1) & ~(page - 1), z &= ~(page - 1);
    if (z > a) madvise((void *)a, z - a, soon ? MADV_WILLNEED : MADV_DONTNEED);
}

/* The order of an epoch's fit rows. With one window (window_rows 0, or not
 * fewer than the rows) the fit rows are reshuffled as a whole. Otherwise the
 * embedding array is cut into windows of window_rows consecutive rows; an
 * epoch visits the windows in a shuffled order and each window's fit rows in
 * a shuffled order, so it reads the embeddings one window at a time (from a
 * file mapping: at most about two windows resident, advise_rows) at the
 * price of a shuffle that mixes rows within a window only. */
typedef struct {
    int64_t window, n_win;
    int64_t *rows;  /* the fit rows, ascending: window w's are rows[start[w] .. start[w + 1]) */
    int64_t *start; /* n_win + 1 */
    int64_t *visit; /* this epoch's window order; its segments end at seg_end[i] in the epoch's order */
    int64_t *seg_end;
} row_plan;

static void plan_free(row_plan *pl) {
    free(pl->rows);
    free(pl->start);
    free(pl->visit);
    free(pl->seg_end);
    memset(pl, 0, sizeof *pl);
}

static int i64_cmp(const void *x, const void *y) {
    int64_t u = *(const int64_t *)x, v = *(const int64_t *)y;
    return (u > v) - (u < v);
}

/* The plan over the fit rows fit[0..n_fit) of n rows; one window (nothing
 * allocated) when window_rows is 0 or covers every row. */
static rtr_status plan_open(row_plan *pl, const int64_t *fit, int64_t n_fit, int64_t n, int64_t window_rows) {
    memset(pl, 0, sizeof *pl);
    if (window_rows <= 0 || window_rows >= n) return RTR_OK;
    pl->window = window_rows;
    pl->n_win = (n + window_rows - 1) / window_rows;
    pl->rows = rtr_malloc(sizeof(int64_t) * (size_t)n_fit);
    pl->start = rtr_malloc(sizeof(int64_t) * (size_t)(pl->n_win + 1));
    pl->visit = rtr_malloc(sizeof(int64_t) * (size_t)pl->n_win);
    pl->seg_end = rtr_malloc(sizeof(int64_t) * (size_t)pl->n_win);
    if (!pl->rows || !pl->start || !pl->visit || !pl->seg_end) { plan_free(pl); return RTR_ERR_NOMEM; }
    memcpy(pl->rows, fit, sizeof(int64_t) * (size_t)n_fit);
    qsort(pl->rows, (size_t)n_fit, sizeof(int64_t), i64_cmp);
    for (int64_t w = 0, r = 0; w <= pl->n_win; w++) {
        while (r < n_fit && pl->rows[r] < w * window_rows) r++;
        pl->start[w] = r;
    }
    return RTR_OK;
}

/* The next epoch's order of the n_fit fit rows into fit. */
static void plan_epoch(row_plan *pl, uint64_t *rng, int64_t *fit, int64_t n_fit) {
    if (!pl->window) { rng_shuffle(rng, fit, n_fit); return; }
    for (int64_t w = 0; w < pl->n_win; w++) pl->visit[w] = w;
    rng_shuffle(rng, pl->visit, pl->n_win);
    int64_t at = 0;
    for (int64_t i = 0; i < pl->n_win; i++) {
        int64_t w = pl->visit[i], m = pl->start[w + 1] - pl->start[w];
        memcpy(fit + at, pl->rows + pl->start[w], sizeof(int64_t) * (size_t)m);
        rng_shuffle(rng, fit + at, m);
        pl->seg_end[i] = at += m;
    }
}

/* advise_rows over window w of the plan. */
static void advise_window(const rtr_train_data *d, const row_plan *pl, int64_t w, bool soon) {
    int64_t r1 = (w + 1) * pl->window;
    advise_rows(d, w * pl->window, r1 < d->n ? r1 : d->n, soon);
}

rtr_status rtr_train_row_order_(int64_t *out, const int64_t *fit, int64_t n_fit, int64_t n, int64_t window_rows,
                                uint64_t seed, int epochs) {
    row_plan pl;
    TRY(plan_open(&pl, fit, n_fit, n, window_rows));
    uint64_t rng = seed;
    memcpy(out, fit, sizeof(int64_t) * (size_t)n_fit);
    for (int e = 0; e < epochs; e++) plan_epoch(&pl, &rng, out, n_fit);
    plan_free(&pl);
    return RTR_OK;
}

/* ------------------------------------------------------------ parameter layout */

static size_t layout(param_view *v, float *base, int32_t D, int32_t H, int32_t U, int32_t nm, int32_t ns,
                     size_t *n_trainable) {
    size_t off = 0, R = (size_t)D + (size_t)U;
#define TAKE(ptr, count) ((ptr) = base ? base + off : NULL, off += (size_t)(count))
    for (int h = 0; h < 2; h++) {
        rtr_head *hd = &v->head[h];
        TAKE(hd->W_q, (size_t)H * D);
        TAKE(hd->W_m, (size_t)H * R);
        TAKE(hd->W_s, (size_t)H * R);
        TAKE(hd->b1, H);
        TAKE(hd->w2, H);
        TAKE(hd->b2, 1);
    }
    TAKE(v->u_model, (size_t)nm * U);
    TAKE(v->u_strategy, (size_t)ns * U);
    if (n_trainable) *n_trainable = off;
    TAKE(v->d_model, (size_t)nm * D);
    TAKE(v->d_strategy, (size_t)ns * D);
#undef TAKE
    return off;
}

static void view_of(param_view *v, const rtr_predictor *p, float *base) {
    layout(v, base, p->D, p->H, p->U, p->n_models, p->n_strategies, NULL);
}

/* Allocate p's buffers for the sizes already set in p (D, H, U, counts). */
static rtr_status predictor_alloc(rtr_predictor *p) {
    param_view v;
    p->n_params = layout(&v, NULL, p->D, p->H, p->U, p->n_models, p->n_strategies, &p->n_trainable);
    p->params = rtr_calloc(p->n_params, sizeof(float));
    p->pair_model = rtr_calloc((size_t)p->n_pairs, sizeof(int32_t));
    p->pair_strategy = rtr_calloc((size_t)p->n_pairs, sizeof(int32_t));
    if (!p->params || !p->pair_model || !p->pair_strategy) return RTR_ERR_NOMEM;
    view_of(&v, p, p->params);
    p->head[0] = v.head[0];
    p->head[1] = v.head[1];
    p->u_model = v.u_model;
    p->u_strategy = v.u_strategy;
    p->d_model = v.d_model;
    p->d_strategy = v.d_strategy;
    return RTR_OK;
}

rtr_status rtr_predictor_alloc_(rtr_predictor *p) { return predictor_alloc(p); }

rtr_status rtr_predictor_init(rtr_predictor *p, const rtr_train_params *cfg, const rtr_catalog *cat,
                              int32_t D, const float *d_model, const float *d_strategy) {
    memset(p, 0, sizeof *p);
    if (cfg->hidden < 1 || cfg->learn_dim < 0 || D < 1 || cfg->batch < 1 || cfg->max_epochs < 1 ||
        cfg->patience < 1 || !(cfg->lr > 0) || !(cfg->val_frac >= 0 && cfg->val_frac < 1) ||
        (cfg->token_target != RTR_TOKENS_RAW && cfg->token_target != RTR_TOKENS_LOG))
        return rtr_fail(RTR_ERR_INVALID, "predictor: invalid configuration (hidden %d, learn_dim %d, D %d, "
                        "batch %d, epochs %d, patience %d, lr %g, val_frac %g)", cfg->hidden, cfg->learn_dim,
                        D, cfg->batch, cfg->max_epochs, cfg->patience, cfg->lr, cfg->val_frac);
    if (cat->n_pairs < 1) return rtr_fail(RTR_ERR_INVALID, "predictor: the catalog has no pairs");
    p->cfg = *cfg;
    p->D = D, p->H = cfg->hidden, p->U = cfg->learn_dim;
    p->n_models = cat->n_models, p->n_strategies = cat->n_strategies, p->n_pairs = cat->n_pairs;
    p->token_scale = 1.0f;
    rtr_status st = predictor_alloc(p);
    if (st) { rtr_predictor_free(p); return st; }
    memcpy(p->pair_model, cat->pair_model, sizeof(int32_t) * (size_t)p->n_pairs);
    memcpy(p->pair_strategy, cat->pair_strategy, sizeof(int32_t) * (size_t)p->n_pairs);
    memcpy(p->d_model, d_model, sizeof(float) * (size_t)p->n_models * D);
    memcpy(p->d_strategy, d_strategy, sizeof(float) * (size_t)p->n_strategies * D);
    p->catalog_json = rtr_catalog_to_json(cat);
    p->catalog_hash = rtr_catalog_hash(cat);
    if (!p->catalog_json) { rtr_predictor_free(p); return RTR_ERR_NOMEM; }

    /* torch.nn.Linear's init over the full concatenated input (fan-in D+2R). */
    uint64_t rng = cfg->seed;
    size_t R = (size_t)D + (size_t)p->U;
    double b_in = 1.0 / sqrt((double)D + 2.0 * (double)R), b_hid = 1.0 / sqrt((double)p->H);
    for (int h = 0; h < 2; h++) {
        rtr_head *hd = &p->head[h];
        float *first = hd->W_q; /* W_q, W_m, W_s, b1 are contiguous */
        size_t n_first = (size_t)p->H * (D + 2 * R + 1);
        for (size_t i = 0; i < n_first; i++) first[i] = (float)((2 * rng_uniform(&rng) - 1) * b_in);
        for (int j = 0; j <= p->H; j++) hd->w2[j] = (float)((2 * rng_uniform(&rng) - 1) * b_hid); /* w2, b2 */
    }
    /* u ~ N(0, 1/U): the same norm (about 1) as the L2-normalised descriptions. */
    size_t n_u = (size_t)(p->n_models + p->n_strategies) * p->U;
    double su = p->U ? 1.0 / sqrt((double)p->U) : 0.0;
    for (size_t i = 0; i < n_u; i++) p->u_model[i] = (float)(rng_normal(&rng) * su);
    return RTR_OK;
}

void rtr_predictor_free(rtr_predictor *p) {
    free(p->params);
    free(p->pair_model);
    free(p->pair_strategy);
    free(p->encoder);
    free(p->encoder_hash);
    free(p->catalog_json);
    free(p->train_split);
    free(p->train_skip_dataset);
    free(p->val_hash);
    free(p->pair_mean_tokens);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------ the heads on a backend */

/* Host <-> backend copies that vanish where the backend array is the host one. */
static rtr_status put(rtr_backend *b, void *dev, const void *host, size_t bytes) {
    return dev == host ? RTR_OK : rtr_backend_upload(b, dev, host, bytes);
}
static rtr_status get(rtr_backend *b, void *host, const void *dev, size_t bytes) {
    return dev == host ? RTR_OK : rtr_backend_download(b, host, dev, bytes);
}

/* Callers ask before they call: a backend lacking an op is refused up front. */
static rtr_status require_ops(const rtr_backend *b, const rtr_op *ops, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!rtr_backend_supports(b, ops[i]))
            return rtr_fail(RTR_ERR_UNSUPPORTED, "predictor: backend %s has no %s", b->iface->name,
                            rtr_op_name(ops[i]));
    return RTR_OK;
}

static void net_close(net *t) {
    if (!t->b) return;
    rtr_backend_free_mem(t->b, t->work);
    if (!t->host) {
        rtr_backend_free_mem(t->b, t->params);
        rtr_backend_free_mem(t->b, t->pair_model);
    }
    memset(t, 0, sizeof *t);
}

static rtr_status net_open(net *t, rtr_backend *b, const rtr_predictor *p, int rows) {
    static const rtr_op ops[] = {RTR_OP_SGEMM, RTR_OP_PAIR_TABLE_FORWARD, RTR_OP_HEADS_FORWARD};
    memset(t, 0, sizeof *t);
    TRY(require_ops(b, ops, sizeof ops / sizeof *ops));
    t->b = b, t->p = p, t->rows = rows, t->host = rtr_backend_is_host(b);
    size_t H = (size_t)p->H, K = (size_t)p->n_pairs;
    size_t n_work = 2 * (size_t)(p->n_models + p->n_strategies) * H + 2 * K * H + 2 * (size_t)rows * H;
    TRY(rtr_backend_alloc(b, (void **)&t->work, sizeof(float) * n_work));
    t->P_m = t->work;
    t->P_s = t->P_m + 2 * (size_t)p->n_models * H;
    t->C = t->P_s + 2 * (size_t)p->n_strategies * H;
    t->A = t->C + 2 * K * H;
    if (t->host) {
        t->params = p->params, t->pair_model = p->pair_model, t->pair_strategy = p->pair_strategy;
    } else {
        TRY(rtr_backend_alloc(b, (void **)&t->params, sizeof(float) * p->n_params));
        TRY(rtr_backend_upload(b, t->params, p->params, sizeof(float) * p->n_params));
        TRY(rtr_backend_alloc(b, (void **)&t->pair_model, sizeof(int32_t) * 2 * K));
        t->pair_strategy = t->pair_model + K;
        TRY(rtr_backend_upload(b, t->pair_model, p->pair_model, sizeof(int32_t) * K));
        TRY(rtr_backend_upload(b, t->pair_strategy, p->pair_strategy, sizeof(int32_t) * K));
    }
    view_of(&t->v, p, t->params);
    return RTR_OK;
}

/* Head h's pair table into t->C + h·K·H: P_m = R_m·W_mᵀ with R_m = [d_m | u_m]
 * as two GEMMs over the column blocks of W_m (no concatenated copy), the same
 * for strategies, then C[k] = P_m[m(k)] + P_s[s(k)] + b1. */
rtr_status rtr_train_net_table_(net *t, int h) {
    const rtr_predictor *p = t->p;
    const rtr_head *hd = &t->v.head[h];
    int D = p->D, U = p->U, R = D + U, H = p->H;
    float *P_m = t->P_m + (size_t)h * p->n_models * H, *P_s = t->P_s + (size_t)h * p->n_strategies * H;
    TRY(gemm(t->b, false, true, p->n_models, H, D, t->v.d_model, D, hd->W_m, R, 0.0f, P_m, H));
    TRY(gemm(t->b, false, true, p->n_strategies, H, D, t->v.d_strategy, D, hd->W_s, R, 0.0f, P_s, H));
    if (U > 0) {
        TRY(gemm(t->b, false, true, p->n_models, H, U, t->v.u_model, U, hd->W_m + D, R, 1.0f, P_m, H));
        TRY(gemm(t->b, false, true, p->n_strategies, H, U, t->v.u_strategy, U, hd->W_s + D, R, 1.0f, P_s, H));
    }
    return OP(t->b, pair_table_forward, t->C + (size_t)h * p->n_pairs * H, P_m, P_s, hd->b1, t->pair_model,
              t->pair_strategy, p->n_pairs, H);
}

/* Pre-activations of both heads for n <= rows queries E (n x D, backend
 * memory) against the pair tables in t->C: A = E·W_qᵀ, then rtr_heads_forward. */
static rtr_status net_forward(net *t, const float *E, int n, float *out_c, float *out_t) {
    const rtr_predictor *p = t->p;
    int D = p->D, H = p->H;
    size_t RH = (size_t)t->rows * H, KH = (size_t)p->n_pairs * H;
    for (int h = 0; h < 2; h++)
        TRY(gemm(t->b, false, true, n, H, D, E, D, t->v.head[h].W_q, D, 0.0f, t->A + h * RH, H));
    return OP(t->b, heads_forward, out_c, out_t, t->A, t->A + RH, t->C, t->C + KH, t->v.head[0].w2,
              t->v.head[0].b2, t->v.head[1].w2, t->v.head[1].b2, n, p->n_pairs, H);
}

/* The C path of scoring and the pair table: the same code on the reference
 * backend (plain C, one BLAS call per GEMM) on p's own arrays. */
void rtr_predictor_pair_table(float *C, const rtr_predictor *p, int head) {
    rtr_backend b;
    net t;
    rtr_backend_ref_open(&b);
    if (net_open(&t, &b, p, 0) == RTR_OK && rtr_train_net_table_(&t, head) == RTR_OK) {
        size_t KH = (size_t)p->n_pairs * p->H;
        memcpy(C, t.C + head * KH, sizeof(float) * KH);
    }
    net_close(&t);
    rtr_backend_free(&b);
}

/* Index of the first non-finite value in x[0..n), or -1. */
static int64_t first_nonfinite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (int64_t)i;
    return -1;
}

#define SCORE_CHUNK 4096

static rtr_status score_on(net *t, const float *emb, int64_t N, float *p_correct, float *tokens) {
    const rtr_predictor *p = t->p;
    size_t D = (size_t)p->D, K = (size_t)p->n_pairs;
    for (int h = 0; h < 2; h++) TRY(rtr_train_net_table_(t, h));
    for (int64_t n0 = 0; n0 < N; n0 += t->rows) {
        int n = (int)(N - n0 < t->rows ? N - n0 : t->rows);
        TRY(net_forward(t, emb + n0 * D, n, p_correct + n0 * K, tokens + n0 * K));
    }
    TRY(OP(t->b, heads_activate, p_correct, tokens, p_correct, tokens, p->cfg.token_target, p->token_scale, (int)N,
           (int)K));
    return rtr_predictor_check_scores_(p_correct, tokens, 0, N, (int)K);
}

/* Every score a checkpoint gives must be a probability and a finite count
 * >= 0. Finite weights can still overflow float (a damaged or diverged
 * checkpoint: E·W_q past 3e38, expm1 of a large log-token output), and a NaN
 * or inf in a routing table would route silently; both scoring paths check
 * on the host, whatever backend computed the scores. */
rtr_status rtr_predictor_check_scores_(const float *p_correct, const float *tokens, int64_t row0, int64_t rows, int K) {
    for (size_t i = 0; i < (size_t)rows * K; i++)
        if (!(p_correct[i] >= 0.0f && p_correct[i] <= 1.0f) || !(tokens[i] >= 0.0f && isfinite(tokens[i])))
            return rtr_fail(RTR_ERR_NUMERIC,
                            "score: row %lld pair %d: the checkpoint gives p_correct %g tokens %g, not a probability "
                            "and a finite count (its weights overflow float: a damaged or diverged checkpoint)",
                            (long long)(row0 + (int64_t)(i / (size_t)K)), (int)(i % (size_t)K), p_correct[i], tokens[i]);
    return RTR_OK;
}

rtr_status rtr_predictor_score(float *p_correct, float *tokens, const rtr_predictor *p, const float *emb,
                               int64_t N) {
    int64_t bad = first_nonfinite(emb, (size_t)N * p->D);
    if (bad >= 0)
        return rtr_fail(RTR_ERR_NUMERIC, "score: query embedding row %lld holds NaN/inf", (long long)(bad / p->D));
    if (N <= 0) return RTR_OK;
    rtr_backend b;
    net t;
    rtr_backend_ref_open(&b);
    rtr_status st = net_open(&t, &b, p, (int)(N < SCORE_CHUNK ? N : SCORE_CHUNK));
    if (!st) st = score_on(&t, emb, N, p_correct, tokens);
    net_close(&t);
    rtr_backend_free(&b);
    return st;
}

/* ------------------------------------------------------------ training */

static void trainer_close(trainer *tr) {
    rtr_backend *b = tr->n.b;
    if (b) {
        void *mem[] = {tr->grad, tr->adam_m, tr->data, tr->work, tr->loss};
        for (size_t i = 0; i < sizeof mem / sizeof *mem; i++) rtr_backend_free_mem(b, mem[i]);
        if (!tr->n.host) rtr_backend_free_mem(b, tr->order);
    }
    free(tr->labels);
    free(tr->part);
    free(tr->part_loss);
    free(tr->scratch);
    net_close(&tr->n);
    memset(tr, 0, sizeof *tr);
}

/* Backend memory of `bytes` set to zero. */
static rtr_status alloc_zeroed(rtr_backend *b, void **dev, size_t bytes) {
    TRY(rtr_backend_alloc(b, dev, bytes));
    return rtr_backend_zero(b, *dev, bytes);
}

/* Set up a run over n rows (emb, y_c, y_t host arrays; order the host row
 * order) on b, with `batch` queries per step and forward buffers of `rows`;
 * host_step: take the host step where b is a host backend. */
static rtr_status trainer_open(trainer *tr, rtr_backend *b, const rtr_predictor *p, const float *emb,
                               const float *y_c, const float *y_t, int64_t n, int64_t *order, int batch, int rows,
                               bool host_step) {
    static const rtr_op ops[] = {RTR_OP_GATHER_ROWS, RTR_OP_HEADS_LOSS, RTR_OP_HEADS_BACKWARD,
                                 RTR_OP_PAIR_TABLE_BACKWARD, RTR_OP_ADAM_UPDATE};
    memset(tr, 0, sizeof *tr);
    TRY(require_ops(b, ops, sizeof ops / sizeof *ops));
    TRY(net_open(&tr->n, b, p, rows));
    tr->batch = batch;
    size_t H = (size_t)p->H, K = (size_t)p->n_pairs, D = (size_t)p->D, R = (size_t)rows;
    size_t nms = (size_t)p->n_models + (size_t)p->n_strategies;
    tr->acc_rows = (int)(2 * (size_t)batch + 2 * K + 2 * nms);
    tr->labels = rtr_malloc(sizeof(int32_t) * 2 * (size_t)n);
    if (!tr->labels) return RTR_ERR_NOMEM;
    TRY(alloc_zeroed(b, (void **)&tr->grad, sizeof(float) * p->n_params));
    TRY(alloc_zeroed(b, (void **)&tr->adam_m, sizeof(float) * 2 * p->n_trainable));
    tr->adam_v = tr->adam_m + p->n_trainable;
    view_of(&tr->g, p, tr->grad);
    TRY(rtr_backend_alloc(b, (void **)&tr->loss, 4 * sizeof(double)));

    size_t n_work = R * D + 2 * R * K + 4 * R * K + (size_t)tr->acc_rows * H;
    TRY(rtr_backend_alloc(b, (void **)&tr->work, sizeof(float) * n_work));
    tr->E = tr->work;
    tr->Y_c = tr->E + R * D;
    tr->Y_t = tr->Y_c + R * K;
    tr->out = tr->Y_t + R * K;
    tr->dout = tr->out + 2 * R * K;
    tr->acc = tr->dout + 2 * R * K;
    tr->dA = tr->acc;
    tr->dC = tr->dA + 2 * (size_t)batch * H;
    tr->G_m = tr->dC + 2 * K * H;
    tr->G_s = tr->G_m + 2 * (size_t)p->n_models * H;
    tr->host_step = host_step && tr->n.host;
    if (tr->host_step) TRY(rtr_train_host_open_(tr));

    size_t nD = (size_t)n * D, nK = (size_t)n * K;
    if (tr->n.host) {
        tr->emb = emb, tr->y_c = y_c, tr->y_t = y_t, tr->order = order;
    } else {
        TRY(rtr_backend_alloc(b, (void **)&tr->data, sizeof(float) * (nD + 2 * nK)));
        TRY(rtr_backend_upload(b, tr->data, emb, sizeof(float) * nD));
        TRY(rtr_backend_upload(b, tr->data + nD, y_c, sizeof(float) * nK));
        TRY(rtr_backend_upload(b, tr->data + nD + nK, y_t, sizeof(float) * nK));
        tr->emb = tr->data, tr->y_c = tr->data + nD, tr->y_t = tr->data + nD + nK;
        TRY(rtr_backend_alloc(b, (void **)&tr->order, sizeof(int64_t) * (size_t)n));
        TRY(rtr_backend_upload(b, tr->order, order, sizeof(int64_t) * (size_t)n));
    }
    /* the gradient scale of a batch needs its labelled counts: kept per row
     * on the host, so no batch waits for the backend */
    for (int64_t i = 0; i < n; i++) {
        int32_t c = 0, t = 0;
        for (size_t k = 0; k < K; k++) c += !isnan(y_c[i * K + k]), t += !isnan(y_t[i * K + k]);
        tr->labels[2 * i] = c, tr->labels[2 * i + 1] = t;
    }
    return RTR_OK;
}

/* Labelled entries of both heads over rows[0..n) (host indices). */
static void label_counts(const trainer *tr, const int64_t *rows, int64_t n, int64_t cnt[2]) {
    cnt[0] = cnt[1] = 0;
    for (int64_t r = 0; r < n; r++) cnt[0] += tr->labels[2 * rows[r]], cnt[1] += tr->labels[2 * rows[r] + 1];
}

/* Gather rows idx[0..n) (backend memory) into E, Y_c, Y_t. */
rtr_status rtr_train_gather_(trainer *tr, const int64_t *idx, int n) {
    rtr_backend *b = tr->n.b;
    int D = tr->n.p->D, K = tr->n.p->n_pairs;
    TRY(OP(b, gather_rows, tr->E, tr->emb, idx, n, D));
    TRY(OP(b, gather_rows, tr->Y_c, tr->y_c, idx, n, K));
    return OP(b, gather_rows, tr->Y_t, tr->y_t, idx, n, K);
}

/* heads_loss's gradient scale for n labelled entries: their mean's. */
static float grad_scale(int64_t n) { return n ? 1.0f / (float)n : 0.0f; }

/* Parameter gradient of head h from dA (B x H) and dC (K x H). Everything is
 * written (beta 0) except b1, which rtr_pair_table_backward accumulates into the
 * zeroed gradient, and du, which the second head adds to the first's. */
static rtr_status head_param_grad(trainer *tr, int h, int B) {
    net *t = &tr->n;
    const rtr_predictor *p = t->p;
    int H = p->H, D = p->D, U = p->U, R = D + U, nm = p->n_models, ns = p->n_strategies;
    const rtr_head *w = &t->v.head[h], *gh = &tr->g.head[h];
    const float *dA = tr->dA + (size_t)h * tr->batch * H, *dC = tr->dC + (size_t)h * p->n_pairs * H;
    float *G_m = tr->G_m + (size_t)h * nm * H, *G_s = tr->G_s + (size_t)h * ns * H;
    rtr_backend *b = t->b;
    TRY(gemm(b, true, false, H, D, B, dA, H, tr->E, D, 0.0f, gh->W_q, D));
    TRY(OP(b, pair_table_backward, G_m, G_s, gh->b1, dC, t->pair_model, t->pair_strategy, p->n_pairs, H, nm, ns));
    /* dW_m = G_mᵀ·[d_m | u_m], one GEMM per column block */
    TRY(gemm(b, true, false, H, D, nm, G_m, H, t->v.d_model, D, 0.0f, gh->W_m, R));
    TRY(gemm(b, true, false, H, D, ns, G_s, H, t->v.d_strategy, D, 0.0f, gh->W_s, R));
    if (U == 0) return RTR_OK;
    TRY(gemm(b, true, false, H, U, nm, G_m, H, t->v.u_model, U, 0.0f, gh->W_m + D, R));
    TRY(gemm(b, true, false, H, U, ns, G_s, H, t->v.u_strategy, U, 0.0f, gh->W_s + D, R));
    /* du_m (+)= G_m·W_m[:, D:] */
    float beta = h ? 1.0f : 0.0f;
    TRY(gemm(b, false, false, nm, U, H, G_m, H, w->W_m + D, R, beta, tr->g.u_model, U));
    return gemm(b, false, false, ns, U, H, G_s, H, w->W_s + D, R, beta, tr->g.u_strategy, U);
}

/* Gradient of the mean losses of the B rows idx[0..B) (backend memory) into
 * tr->grad; their loss sums are added to tr->loss[0..1]. n_c, n_t: the rows'
 * labelled entries (the gradient scale), or with step (backend memory) the
 * scales it holds. Exposed for the gradient-check test through
 * rtr_predictor_batch_grad_. */
static rtr_status batch_grad(trainer *tr, const int64_t *idx, int B, int64_t n_c, int64_t n_t,
                             const rtr_batch_step *step) {
    net *t = &tr->n;
    const rtr_predictor *p = t->p;
    rtr_backend *b = t->b;
    int H = p->H, K = p->n_pairs;
    size_t RH = (size_t)t->rows * H, RK = (size_t)t->rows * K, KH = (size_t)K * H;
    for (int h = 0; h < 2; h++) {
        TRY(rtr_train_net_table_(t, h));
        /* b1, w2, b2 (adjacent in the layout): accumulated below */
        TRY(rtr_backend_zero(b, tr->g.head[h].b1, sizeof(float) * (2 * (size_t)H + 1)));
    }
    TRY(rtr_backend_zero(b, tr->acc, sizeof(float) * (size_t)tr->acc_rows * H));
    TRY(rtr_train_gather_(tr, idx, B));
    TRY(net_forward(t, tr->E, B, tr->out, tr->out + RK));
    if (step)
        TRY(OP(b, heads_loss_step, tr->dout, tr->dout + RK, tr->loss, tr->out, tr->out + RK, tr->Y_c, tr->Y_t, step,
               B, K));
    else
        TRY(OP(b, heads_loss, tr->dout, tr->dout + RK, tr->loss, tr->out, tr->out + RK, tr->Y_c, tr->Y_t,
               grad_scale(n_c), grad_scale(n_t), B, K));
    size_t BH = (size_t)tr->batch * H;
    TRY(OP(b, heads_backward, tr->dA, tr->dA + BH, tr->dC, tr->dC + KH, tr->g.head[0].w2, tr->g.head[0].b2,
           tr->g.head[1].w2, tr->g.head[1].b2, tr->dout, tr->dout + RK, t->A, t->A + RH, t->C, t->C + KH,
           t->v.head[0].w2, t->v.head[1].w2, B, K, H));
    for (int h = 0; h < 2; h++) TRY(head_param_grad(tr, h, B));
    return RTR_OK;
}

/* Loss sums of rows idx[0..n) (backend memory) with the current parameters,
 * added to tr->loss[2..3], a chunk of forward rows at a time. With release
 * (host memory, idx ascending) a chunk stays within one window of `window`
 * rows and its rows are released once read. */
static rtr_status eval_rows(trainer *tr, const int64_t *idx, int64_t n, const rtr_train_data *release,
                            int64_t window) {
    net *t = &tr->n;
    int K = t->p->n_pairs;
    size_t RK = (size_t)t->rows * K;
    for (int h = 0; h < 2; h++) TRY(rtr_train_net_table_(t, h));
    for (int64_t r0 = 0, m; r0 < n; r0 += m) {
        m = n - r0 < t->rows ? n - r0 : t->rows;
        if (release) /* a chunk within one window */
            for (int64_t end = idx[r0] / window * window + window, j = 1; j < m; j++)
                if (idx[r0 + j] >= end) { m = j; break; }
        TRY(rtr_train_gather_(tr, idx + r0, (int)m));
        TRY(net_forward(t, tr->E, (int)m, tr->out, tr->out + RK));
        TRY(OP(t->b, heads_loss, tr->dout, tr->dout + RK, tr->loss + 2, tr->out, tr->out + RK, tr->Y_c, tr->Y_t,
               0.0f, 0.0f, (int)m, K));
        if (release) advise_rows(release, idx[r0], idx[r0 + m - 1] + 1, false);
    }
    return RTR_OK;
}

/* Test hook: the mean-loss gradient of rows 0..n of d (targets as given, no
 * scaling) into grad (n_trainable floats); returns the two mean losses. */
rtr_status rtr_predictor_batch_grad_(const rtr_predictor *p, const rtr_train_data *d, float *grad, double loss[2]) {
    rtr_backend b;
    trainer tr;
    rtr_backend_cpu_open(&b);
    int64_t *order = rtr_malloc(sizeof(int64_t) * (size_t)(d->n > 0 ? d->n : 1));
    if (!order) return RTR_ERR_NOMEM;
    for (int64_t i = 0; i < d->n; i++) order[i] = i;
    static const double zero[4] = {0, 0, 0, 0};
    double sums[4];
    int64_t cnt[2] = {0, 0};
    rtr_status st = trainer_open(&tr, &b, p, d->emb, d->correct, d->tokens, d->n, order, (int)d->n, (int)d->n, false);
    if (!st) st = rtr_backend_upload(&b, tr.loss, zero, sizeof zero);
    if (!st) label_counts(&tr, order, d->n, cnt);
    if (!st) st = batch_grad(&tr, tr.order, (int)d->n, cnt[0], cnt[1], NULL);
    if (!st) st = rtr_backend_download(&b, grad, tr.grad, sizeof(float) * p->n_trainable);
    if (!st) st = rtr_backend_download(&b, sums, tr.loss, sizeof sums);
    if (!st) {
        loss[0] = cnt[0] ? sums[0] / (double)cnt[0] : 0.0;
        loss[1] = cnt[1] ? sums[1] / (double)cnt[1] : 0.0;
    }
    trainer_close(&tr);
    rtr_backend_free(&b);
    free(order);
    return st;
}

/* Checks the outcomes and fills the targets (n x K each): y_c = correct,
 * y_t = f(tokens)/scale with the scale the RMS of f(tokens) over the fit rows
 * when normalising (with dist, those of every rank's share). */
static rtr_status prepare_targets(rtr_predictor *p, const rtr_train_data *d, float *y_c, float *y_t,
                                  const int64_t *fit, int64_t n_fit, bool dist) {
    size_t K = (size_t)d->K;
    double sum_sq = 0.0;
    int64_t count = 0;
    for (int64_t i = 0; i < d->n; i++)
        for (size_t k = 0; k < K; k++) {
            float c = d->correct[(size_t)i * K + k], t = d->tokens[(size_t)i * K + k];
            if (!isnan(c) && !(c >= 0.0f && c <= 1.0f))
                return rtr_fail(RTR_ERR_NUMERIC, "train: row %lld pair %zu: correctness %g outside [0,1]",
                                (long long)i, k, c);
            if (!isnan(t) && !(t >= 0.0f && isfinite(t)))
                return rtr_fail(RTR_ERR_NUMERIC, "train: row %lld pair %zu: tokens %g not a finite count >= 0",
                                (long long)i, k, t);
            double f = isnan(t) ? NAN : p->cfg.token_target == RTR_TOKENS_LOG ? log1p(t) : t;
            y_c[(size_t)i * K + k] = c;
            y_t[(size_t)i * K + k] = (float)f;
        }
    for (int64_t r = 0; r < n_fit; r++)
        for (size_t k = 0; k < K; k++) {
            float f = y_t[(size_t)fit[r] * K + k];
            if (!isnan(f)) sum_sq += (double)f * f, count++;
        }
    if (dist) {
        TRY(rtr_dist_sum_f64(&sum_sq, 1));
        TRY(rtr_dist_sum_i64(&count, 1));
    }
    if (count == 0)
        return rtr_fail(RTR_ERR_INVALID, "train: none of the %lld training rows has a token outcome, so the token "
                        "head has nothing to learn (the tokens and usd cost models route on predicted output "
                        "tokens: add `tokens` to the outcomes)", (long long)n_fit);
    p->token_scale = 1.0f;
    if (p->cfg.token_normalize && sum_sq > 0) p->token_scale = (float)sqrt(sum_sq / (double)count);
    float inv = 1.0f / p->token_scale;
    for (size_t i = 0; i < (size_t)d->n * K; i++) y_t[i] *= inv;
    return RTR_OK;
}

/* Each pair's mean raw tokens over the fit rows (NaN: none) into
 * p->pair_mean_tokens, the cost scale of online routing (predictor.h);
 * with dist, the sums are every rank's. */
static rtr_status record_mean_tokens(rtr_predictor *p, const rtr_train_data *d, const int64_t *fit, int64_t n_fit,
                                     bool dist) {
    size_t K = (size_t)d->K;
    double *sum = rtr_calloc(2 * K, sizeof *sum); /* per pair: the sum of its tokens, then their count */
    float *mean = rtr_malloc(sizeof *mean * K);
    rtr_status st = sum && mean ? RTR_OK : RTR_ERR_NOMEM;
    for (int64_t r = 0; !st && r < n_fit; r++)
        for (size_t k = 0; k < K; k++) {
            float t = d->tokens[(size_t)fit[r] * K + k];
            if (!isnan(t)) sum[k] += t, sum[K + k]++;
        }
    if (!st && dist) st = rtr_dist_sum_f64(sum, 2 * K);
    for (size_t k = 0; !st && k < K; k++) mean[k] = sum[K + k] ? (float)(sum[k] / sum[K + k]) : NAN;
    free(sum);
    if (st) {
        free(mean);
        return st;
    }
    free(p->pair_mean_tokens);
    p->pair_mean_tokens = mean;
    return RTR_OK;
}

/* Losses of the naive predictor (per-pair mean of the fit rows) on the
 * validation rows: the yardstick that puts both heads on one scale. With
 * dist, fit and val are this rank's share and the sums are every rank's. */
static rtr_status naive_losses(const float *y_c, const float *y_t, int64_t K, const int64_t *fit, int64_t n_fit,
                               const int64_t *val, int64_t n_val, bool dist, double out[2]) {
    double *fs = rtr_calloc(4 * (size_t)K, sizeof *fs); /* per pair: sum and count of y_c, then of y_t */
    if (!fs) return RTR_ERR_NOMEM;
    for (int64_t k = 0; k < K; k++)
        for (int64_t r = 0; r < n_fit; r++) {
            float c = y_c[fit[r] * K + k], t = y_t[fit[r] * K + k];
            if (!isnan(c)) fs[4 * k] += c, fs[4 * k + 1]++;
            if (!isnan(t)) fs[4 * k + 2] += t, fs[4 * k + 3]++;
        }
    rtr_status st = dist ? rtr_dist_sum_f64(fs, 4 * (size_t)K) : RTR_OK;
    double v[4] = {0, 0, 0, 0}; /* bce, squares, their counts */
    for (int64_t k = 0; !st && k < K; k++) {
        double pc = fs[4 * k + 1] ? fs[4 * k] / fs[4 * k + 1] : 0.5, mt = fs[4 * k + 3] ? fs[4 * k + 2] / fs[4 * k + 3] : 0.0;
        pc = fmin(fmax(pc, 1e-4), 1 - 1e-4);
        for (int64_t r = 0; r < n_val; r++) {
            float c = y_c[val[r] * K + k], t = y_t[val[r] * K + k];
            if (!isnan(c)) v[0] -= c * log(pc) + (1 - c) * log(1 - pc), v[2]++;
            if (!isnan(t)) v[1] += (t - mt) * (t - mt), v[3]++;
        }
    }
    free(fs);
    if (!st && dist) st = rtr_dist_sum_f64(v, 4);
    out[0] = v[2] && v[0] > 0 ? v[0] / v[2] : 1.0;
    out[1] = v[3] && v[1] > 0 ? v[1] / v[3] : 1.0;
    return st;
}

/* How a device step's batches are launched. Per batch the generic step is
 * 39 launches (24 GEMMs, 15 kernels: pair tables, gather, forward, loss,
 * backward, Adam; docs/CUDA.md): with arguments from the host (args), each is a launch
 * whose batch-dependent arguments (the rows' offset, the gradient scales,
 * Adam's step) change every batch. With the epoch's batch table in backend
 * memory (table: rtr_batch_step, uploaded once per epoch; batch_select
 * copies the next batch's rows and parameters into fixed buffers) every
 * full batch's launches are identical, so on a backend with graphs (graph)
 * one full batch is captured once (after a first one has run plainly, so
 * cuBLASLt's plans exist) and replayed by one launch per batch; the last,
 * partial batch is launched plainly. The ops and their order are the same
 * in all three: the model is bit-identical. RTR_TRAIN_LAUNCH=args|table|graph
 * forces one (graph, the default, where the backend has graphs; a
 * data-parallel run, whose gradient is summed over the ranks between the
 * ops, always takes args). */
typedef enum { LAUNCH_ARGS, LAUNCH_TABLE, LAUNCH_GRAPH } launch_mode;

typedef struct {
    launch_mode mode;
    int64_t n_steps;          /* batches per epoch */
    void *host;               /* cursor, step, table: the epoch's upload */
    void *dev;                /* backend memory: */
    int64_t *cursor;          /*   the next batch of the table */
    rtr_batch_step *step;     /*   the batch being run */
    rtr_batch_step *table;    /*   n_steps */
    int64_t *idx;             /*   the batch's rows */
    void *graph;              /* a full batch, captured */
    bool warm;                /* a full batch has run plainly */
} batch_launch;

static size_t launch_table_bytes(int64_t n_steps) {
    return sizeof(int64_t) + sizeof(rtr_batch_step) * (size_t)(n_steps + 1);
}

static void launch_close(batch_launch *bl, rtr_backend *b) {
    rtr_backend_graph_free(b, bl->graph);
    rtr_backend_free_mem(b, bl->dev);
    free(bl->host);
    memset(bl, 0, sizeof *bl);
}

static rtr_status launch_open(batch_launch *bl, const trainer *tr, int64_t n_fit) {
    static const rtr_op ops[] = {RTR_OP_BATCH_SELECT, RTR_OP_HEADS_LOSS_STEP, RTR_OP_ADAM_UPDATE_STEP};
    rtr_backend *b = tr->n.b;
    memset(bl, 0, sizeof *bl);
    const char *v = getenv("RTR_TRAIN_LAUNCH");
    if (v && *v && strcmp(v, "args") && strcmp(v, "table") && strcmp(v, "graph"))
        return rtr_fail(RTR_ERR_INVALID, "RTR_TRAIN_LAUNCH=%s: expected args, table or graph", v);
    bool table = !tr->host_step && !tr->share;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) table = table && rtr_backend_supports(b, ops[i]);
    bl->mode = !table || (v && !strcmp(v, "args")) ? LAUNCH_ARGS
               : (v && !strcmp(v, "table")) || !rtr_backend_has_graphs(b) ? LAUNCH_TABLE
                                                                           : LAUNCH_GRAPH;
    if (bl->mode == LAUNCH_ARGS) return RTR_OK;
    bl->n_steps = (n_fit + tr->batch - 1) / tr->batch;
    size_t bytes = launch_table_bytes(bl->n_steps);
    bl->host = rtr_calloc(1, bytes);
    if (!bl->host) return RTR_ERR_NOMEM;
    TRY(rtr_backend_alloc(b, &bl->dev, bytes + sizeof(int64_t) * (size_t)tr->batch));
    bl->cursor = bl->dev;
    bl->step = (rtr_batch_step *)(bl->cursor + 1);
    bl->table = bl->step + 1;
    bl->idx = (int64_t *)(bl->table + bl->n_steps);
    return RTR_OK;
}

/* The epoch's batch table over the fit rows fit[0..n_fit) (host indices),
 * Adam's steps following t, uploaded with the cursor at its first batch;
 * the batches' labelled entries are added to cnt. */
static rtr_status launch_epoch(batch_launch *bl, const trainer *tr, const int64_t *fit, int64_t n_fit, int64_t t,
                               int64_t cnt[2]) {
    const rtr_predictor *p = tr->n.p;
    /* the host copy has the device layout launch_open set */
    rtr_batch_step *table = (rtr_batch_step *)((char *)bl->host + ((char *)bl->table - (char *)bl->dev));
    for (int64_t s = 0; s < bl->n_steps; s++) {
        int64_t b0 = s * tr->batch, B = n_fit - b0 < tr->batch ? n_fit - b0 : tr->batch, c[2];
        label_counts(tr, fit + b0, B, c);
        cnt[0] += c[0], cnt[1] += c[1];
        table[s] = (rtr_batch_step){.first = b0, .gscale_c = grad_scale(c[0]), .gscale_t = grad_scale(c[1]),
                                    .adam_step = rtr_adam_step_size(p->cfg.lr, t + s + 1)};
    }
    return rtr_backend_upload(tr->n.b, bl->dev, bl->host, launch_table_bytes(bl->n_steps));
}

/* One batch of B rows from the table: every argument fixed but B. */
static rtr_status launch_step(batch_launch *bl, trainer *tr, int B) {
    rtr_backend *b = tr->n.b;
    TRY(OP(b, batch_select, bl->idx, bl->step, bl->cursor, tr->order, bl->table, B));
    TRY(batch_grad(tr, bl->idx, B, 0, 0, bl->step));
    return OP(b, adam_update_step, tr->n.params, tr->grad, tr->adam_m, tr->adam_v, tr->n.p->n_trainable, bl->step);
}

/* The next batch (B rows) of the table: a full one as the graph where there
 * is one (captured at the second full batch); a capture that fails leaves
 * plain launches for the rest of the run, with a note. */
static rtr_status launch_batch(batch_launch *bl, trainer *tr, int B) {
    rtr_backend *b = tr->n.b;
    if (bl->mode != LAUNCH_GRAPH || B != tr->batch) return launch_step(bl, tr, B);
    if (bl->graph) return rtr_backend_graph_launch(b, bl->graph);
    if (!bl->warm) {
        bl->warm = true;
        return launch_step(bl, tr, B);
    }
    rtr_status st = rtr_backend_capture_begin(b);
    if (!st) {
        st = launch_step(bl, tr, B); /* recorded, not run */
        rtr_status end = rtr_backend_capture_end(b, &bl->graph);
        if (!st) st = end;
        if (!st) return rtr_backend_graph_launch(b, bl->graph);
    }
    rtr_note("train: a batch could not be captured as a graph (%s); launching its ops one by one", rtr_last_error());
    bl->mode = LAUNCH_TABLE;
    return launch_step(bl, tr, B);
}

/* The epoch loop over the rows order[0..n_fit) (reshuffled every epoch),
 * validating on order[n_fit..n): batches are gathered on the backend from
 * the order uploaded once per epoch; loss sums and the parameters come back
 * once per epoch, for the log, the divergence check and the host snapshot of
 * the best epoch (which costs no backend memory, and the download is needed
 * for the check anyway). */
static rtr_status epoch_loop(trainer *tr, batch_launch *bl, rtr_predictor *p, const rtr_train_data *d,
                             row_plan *plan, uint64_t *rng, int64_t *order, int64_t n_fit, int64_t n_val,
                             const double naive[2], float *best, rtr_epoch_fn log, void *user) {
    rtr_backend *b = tr->n.b;
    static const double zero[4] = {0, 0, 0, 0};
    int64_t *fit = order, n_c_val[2];
    /* a data-parallel run's rows here (train_int.h): local fit rows, then validation rows */
    train_share *sh = tr->share;
    int64_t *here = sh ? sh->order : order, n_here_fit = sh ? sh->n_fit : n_fit, n_here_val = sh ? sh->n_val : n_val;
    label_counts(tr, here + n_here_fit, n_here_val, n_c_val);
    if (sh) TRY(rtr_dist_sum_i64(n_c_val, 2));
    double best_score = INFINITY;
    int since_best = 0;
    int64_t t = 0;
    memcpy(best, p->params, sizeof(float) * p->n_trainable);
    for (int epoch = 1; epoch <= p->cfg.max_epochs; epoch++) {
        double t0 = rtr_now(), sums[4];
        int64_t cnt[2] = {0, 0};
        plan_epoch(plan, rng, fit, n_fit);
        if (sh) TRY(rtr_train_share_epoch_(tr, fit));
        TRY(put(b, tr->order, here, sizeof(int64_t) * (size_t)n_here_fit));
        TRY(rtr_backend_upload(b, tr->loss, zero, sizeof zero));
        if (bl->mode != LAUNCH_ARGS) TRY(launch_epoch(bl, tr, fit, n_fit, t, cnt));
        int64_t seg = 0; /* the window being visited (with a plan); the next one is read ahead */
        for (int64_t i = 0; i < 2 && i < plan->n_win; i++) advise_window(d, plan, plan->visit[i], true);
        for (int64_t b0 = 0; b0 < n_fit; b0 += p->cfg.batch) {
            int B = (int)(n_fit - b0 < p->cfg.batch ? n_fit - b0 : p->cfg.batch);
            for (; plan->window && seg < plan->n_win && plan->seg_end[seg] <= b0; seg++) {
                advise_window(d, plan, plan->visit[seg], false); /* every batch of it has run */
                if (seg + 2 < plan->n_win) advise_window(d, plan, plan->visit[seg + 2], true);
            }
            if (bl->mode != LAUNCH_ARGS) {
                TRY(launch_batch(bl, tr, B));
                t++;
                continue;
            }
            int64_t c[2], at = b0;
            if (sh) rtr_train_share_batch_(tr, b0 / p->cfg.batch, &at, &B, c); /* this rank's rows of it */
            else label_counts(tr, fit + b0, B, c);
            cnt[0] += c[0], cnt[1] += c[1];
            if (tr->host_step) {
                TRY(rtr_train_host_step_(tr, tr->order + at, B, c[0], c[1], ++t));
            } else {
                TRY(B ? batch_grad(tr, tr->order + at, B, c[0], c[1], NULL)
                      : rtr_backend_zero(b, tr->grad, sizeof(float) * p->n_trainable));
                TRY(rtr_train_sum_grad_(tr)); /* over the ranks: a no-op alone */
                TRY(OP(b, adam_update, tr->n.params, tr->grad, tr->adam_m, tr->adam_v, p->n_trainable, p->cfg.lr, ++t));
            }
        }
        if (plan->window) advise_window(d, plan, plan->visit[plan->n_win - 1], false);
        if (n_val)
            TRY(eval_rows(tr, tr->order + n_here_fit, n_here_val, tr->n.host && plan->window ? d : NULL, plan->window));
        TRY(rtr_backend_download(b, sums, tr->loss, sizeof sums));
        if (sh) TRY(rtr_dist_sum_f64(sums, 4));
        if (tr->n.host) advise_rows(d, 0, d->n, false);
        TRY(get(b, p->params, tr->n.params, sizeof(float) * p->n_trainable));
        rtr_epoch_log e = {.epoch = epoch, .train_bce = cnt[0] ? sums[0] / (double)cnt[0] : 0,
                           .train_tok = cnt[1] ? sums[1] / (double)cnt[1] : 0};
        if (!isfinite(e.train_bce) || !isfinite(e.train_tok) || first_nonfinite(p->params, p->n_trainable) >= 0)
            return rtr_fail(RTR_ERR_NUMERIC, "train: diverged in epoch %d (loss %g / %g is not finite); "
                            "try a lower --lr", epoch, e.train_bce, e.train_tok);
        e.val_bce = n_val ? (n_c_val[0] ? sums[2] / (double)n_c_val[0] : 0.0) : e.train_bce;
        e.val_tok = n_val ? (n_c_val[1] ? sums[3] / (double)n_c_val[1] : 0.0) : e.train_tok;
        e.val_score = e.val_bce / naive[0] + e.val_tok / naive[1];
        if (!isfinite(e.val_score))
            return rtr_fail(RTR_ERR_NUMERIC, "train: diverged in epoch %d (validation loss not finite); "
                            "try a lower --lr", epoch);
        if (e.val_score < best_score || !n_val) {
            best_score = e.val_score, since_best = 0, e.best = true;
            memcpy(best, p->params, sizeof(float) * p->n_trainable);
        } else {
            since_best++;
        }
        e.seconds = rtr_now() - t0;
        if (log) log(&e, user);
        if (n_val && since_best >= p->cfg.patience) break;
    }
    return RTR_OK;
}

static rtr_status run_epochs(trainer *tr, rtr_predictor *p, const rtr_train_data *d, row_plan *plan, uint64_t *rng,
                             int64_t *order, int64_t n_fit, int64_t n_val, const double naive[2], float *best,
                             rtr_epoch_fn log, void *user) {
    batch_launch bl;
    rtr_status st = launch_open(&bl, tr, n_fit);
    if (!st) st = epoch_loop(tr, &bl, p, d, plan, rng, order, n_fit, n_val, naive, best, log, user);
    launch_close(&bl, tr->n.b);
    return st;
}

uint64_t rtr_embedding_hash(const float *row, int32_t D) {
    return rtr_hash64(RTR_FNV_SEED, row, sizeof(float) * (size_t)D);
}

static int u64_cmp(const void *x, const void *y) {
    uint64_t u = *(const uint64_t *)x, v = *(const uint64_t *)y;
    return (u > v) - (u < v);
}

/* p->val_hash: the validation rows' embedding hashes (at most
 * RTR_VAL_HASH_MAX, carve order), leaving out any equal to a fitted row's
 * (a duplicate query text would let the network's fit leak into them). */
static rtr_status record_validation(rtr_predictor *p, const uint64_t *h, const int64_t *fit, int64_t n_fit,
                                    const int64_t *val, int64_t n_val) {
    free(p->val_hash);
    p->val_hash = NULL, p->n_val_hash = 0;
    if (!n_val) return RTR_OK;
    uint64_t *fh = rtr_malloc(sizeof *fh * (size_t)n_fit);
    p->val_hash = rtr_malloc(sizeof *p->val_hash * (size_t)(n_val < RTR_VAL_HASH_MAX ? n_val : RTR_VAL_HASH_MAX));
    if (!fh || !p->val_hash) { free(fh); return RTR_ERR_NOMEM; }
    for (int64_t r = 0; r < n_fit; r++) fh[r] = h[fit[r]];
    qsort(fh, (size_t)n_fit, sizeof *fh, u64_cmp);
    for (int64_t r = 0; r < n_val && p->n_val_hash < RTR_VAL_HASH_MAX; r++)
        if (!bsearch(&h[val[r]], fh, (size_t)n_fit, sizeof *fh, u64_cmp)) p->val_hash[p->n_val_hash++] = h[val[r]];
    free(fh);
    return RTR_OK;
}

/* One pass over the embeddings in array order, `window` rows at a time
 * (0: all), each window released once read: every value finite, and each
 * row's hash into h (n) for the validation record. */
static rtr_status scan_rows(const rtr_train_data *d, int64_t window, uint64_t *h) {
    int64_t step = window > 0 ? window : d->n;
    for (int64_t r0 = 0; r0 < d->n; r0 += step) {
        int64_t r1 = d->n - r0 < step ? d->n : r0 + step;
        int64_t bad = first_nonfinite(d->emb + (size_t)r0 * d->D, (size_t)(r1 - r0) * d->D);
        if (bad >= 0)
            return rtr_fail(RTR_ERR_NUMERIC, "train: query embedding row %lld holds NaN/inf",
                            (long long)(r0 + bad / d->D));
        for (int64_t i = r0; i < r1; i++) h[i] = rtr_embedding_hash(d->emb + (size_t)i * d->D, d->D);
        advise_rows(d, r0, r1, false);
    }
    return RTR_OK;
}

/* share: a data-parallel run, whose job's rows are carved and ordered here;
 * d holds this rank's (train_int.h). NULL: d holds every row. */
static rtr_status train_run(rtr_backend *b, rtr_predictor *p, const rtr_train_data *d, const rtr_row_share *share,
                            bool use_host_step, rtr_epoch_fn log, void *user) {
    if (d->D != p->D || d->K != p->n_pairs)
        return rtr_fail(RTR_ERR_INVALID, "train: data has D=%d K=%d, predictor expects D=%d K=%d", d->D, d->K,
                        p->D, p->n_pairs);
    int64_t n = share ? share->n : d->n;
    int64_t n_val = (int64_t)llround(p->cfg.val_frac * (double)n);
    if (p->cfg.val_frac > 0 && n_val < 1) n_val = 1;
    int64_t n_fit = n - n_val;
    if (n_fit < 1) return rtr_fail(RTR_ERR_INVALID, "train: %lld rows are too few to train on", (long long)n);
    size_t nK = (size_t)d->n * d->K;
    int64_t *order = rtr_malloc(sizeof(int64_t) * (size_t)n);
    float *y = rtr_malloc(sizeof(float) * 2 * nK), *best = rtr_malloc(sizeof(float) * p->n_trainable);
    uint64_t *hash = rtr_malloc(sizeof(uint64_t) * (size_t)d->n);
    trainer tr = {0};
    train_share sh = {0};
    rtr_status st = order && y && best && hash ? RTR_OK : RTR_ERR_NOMEM;
    uint64_t rng = p->cfg.seed ^ 0x5ca1ab1e0ddba11ULL;
    double naive[2] = {1, 1};
    if (!st) {
        for (int64_t i = 0; i < n; i++) order[i] = i;
        rng_shuffle(&rng, order, n);
        st = scan_rows(d, p->cfg.window_rows, hash);
    }
    /* the rows here: local fit rows, then validation rows */
    if (!st && share) st = rtr_train_share_open_(&sh, share, order, n_fit, p->cfg.batch);
    int64_t *here = share ? sh.order : order, n_here_fit = share ? sh.n_fit : n_fit, n_here_val = share ? sh.n_val : n_val;
    if (!st) st = prepare_targets(p, d, y, y + nK, here, n_here_fit, share != NULL);
    if (!st) st = record_mean_tokens(p, d, here, n_here_fit, share != NULL);
    if (!st && n_val) st = naive_losses(y, y + nK, p->n_pairs, here, n_here_fit, here + n_here_fit, n_here_val, share != NULL, naive);
    if (!st && share) { /* the job's hashes on rank 0, which writes the checkpoint */
        uint64_t *all = NULL;
        st = rtr_train_share_hashes_(&all, share, hash);
        free(hash);
        hash = all;
    }
    if (!st && hash) st = record_validation(p, hash, order, n_fit, order + n_fit, n_val);
    free(hash);
    row_plan plan = {0};
    if (!st) st = plan_open(&plan, order, n_fit, n, p->cfg.window_rows);
    /* with windows, validation reads its rows in array order too */
    if (!st && plan.window) qsort(order + n_fit, (size_t)n_val, sizeof(int64_t), i64_cmp);
    if (!st && plan.window && share) qsort(here + n_here_fit, (size_t)n_here_val, sizeof(int64_t), i64_cmp);
    /* forward buffers: a batch, or a validation chunk when that is larger */
    int64_t chunk = n_here_val < EVAL_ROWS ? n_here_val : EVAL_ROWS;
    int rows = chunk > p->cfg.batch ? (int)chunk : p->cfg.batch;
    if (!st) st = trainer_open(&tr, b, p, d->emb, y, y + nK, d->n, here, p->cfg.batch, rows, use_host_step);
    tr.share = share ? &sh : NULL;
    if (!st && !tr.n.host) advise_rows(d, 0, d->n, false); /* uploaded */
    /* Batch GEMMs are small (32 x 768 x 768): the CPU backend runs them
     * serially (measured in docs/PREDICTOR.md; src/backend/backend.c). */
    if (!st) st = run_epochs(&tr, p, d, &plan, &rng, order, n_fit, n_val, naive, best, log, user);
    if (!st) memcpy(p->params, best, sizeof(float) * p->n_trainable);
    plan_free(&plan);
    trainer_close(&tr);
    rtr_train_share_close_(&sh);
    free(order);
    free(y);
    free(best);
    return st;
}

rtr_status rtr_predictor_train_on(rtr_backend *b, rtr_predictor *p, const rtr_train_data *d, rtr_epoch_fn log,
                                  void *user) {
    return train_run(b, p, d, NULL, true, log, user);
}

rtr_status rtr_train_share_run_(rtr_backend *b, rtr_predictor *p, const rtr_train_data *d, const rtr_row_share *rows,
                                rtr_epoch_fn log, void *user) {
    return train_run(b, p, d, rows, true, log, user);
}

rtr_status rtr_predictor_train_generic_(rtr_backend *b, rtr_predictor *p, const rtr_train_data *d, rtr_epoch_fn log,
                                        void *user) {
    return train_run(b, p, d, NULL, false, log, user);
}

rtr_status rtr_predictor_train(rtr_predictor *p, const rtr_train_data *d, rtr_epoch_fn log, void *user) {
    rtr_backend b;
    rtr_status st = rtr_backend_cpu_open(&b);
    if (!st) st = rtr_predictor_train_on(&b, p, d, log, user);
    rtr_backend_free(&b);
    return st;
}
