/* Predictor construction, training and scoring on the CPU. Training follows
 * the paper (Adam, batches of queries each with all its pairs, early stopping
 * on a validation split carved from the training rows) on the fused heads of
 * heads.c: one GEMM per batch gives A = E·W_qᵀ, the pair tables C come from
 * per-model and per-strategy products, and the backward pass folds dC back
 * into W_m, W_s, b1 and the learnable embeddings u_m, u_s. */
#include "rtr/optim.h"
#include "rtr/predictor.h"
#include "predictor_int.h"
#include "util.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------ parameter layout */

/* Pointers of the parameter layout into any buffer of n_params floats:
 * used for the parameters, their gradients and Adam's moments alike. */
typedef struct {
    rtr_head head[2];
    float *u_model, *u_strategy, *d_model, *d_strategy;
} param_view;

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
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------ forward pieces */

/* R = [d; u] rows (n x (D+U)) for models or strategies. */
static void concat_repr(float *R, const float *d, const float *u, int32_t n, int32_t D, int32_t U) {
    for (int32_t i = 0; i < n; i++) {
        memcpy(R + (size_t)i * (D + U), d + (size_t)i * D, sizeof(float) * (size_t)D);
        memcpy(R + (size_t)i * (D + U) + D, u + (size_t)i * U, sizeof(float) * (size_t)U);
    }
}

/* Work buffers of the pair-table computation: R_m, R_s and per-model /
 * per-strategy products P_m = R_m·W_mᵀ, P_s = R_s·W_sᵀ. */
typedef struct {
    float *R_m, *R_s, *P_m, *P_s;
} table_ws;

static rtr_status table_ws_init(table_ws *w, const rtr_predictor *p) {
    size_t R = (size_t)p->D + p->U;
    w->R_m = rtr_malloc(sizeof(float) * p->n_models * R);
    w->R_s = rtr_malloc(sizeof(float) * p->n_strategies * R);
    w->P_m = rtr_malloc(sizeof(float) * p->n_models * p->H);
    w->P_s = rtr_malloc(sizeof(float) * p->n_strategies * p->H);
    return w->R_m && w->R_s && w->P_m && w->P_s ? RTR_OK : RTR_ERR_NOMEM;
}
static void table_ws_free(table_ws *w) {
    free(w->R_m);
    free(w->R_s);
    free(w->P_m);
    free(w->P_s);
}

/* C (K x H) of one head from the current parameters; fills w->R_* too. */
static void pair_table(const rtr_predictor *p, int head, table_ws *w, float *C) {
    const rtr_head *hd = &p->head[head];
    int R = p->D + p->U, H = p->H;
    concat_repr(w->R_m, p->d_model, p->u_model, p->n_models, p->D, p->U);
    concat_repr(w->R_s, p->d_strategy, p->u_strategy, p->n_strategies, p->D, p->U);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->n_models, H, R, 1.0f, w->R_m, R, hd->W_m, R,
                0.0f, w->P_m, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->n_strategies, H, R, 1.0f, w->R_s, R, hd->W_s, R,
                0.0f, w->P_s, H);
    for (int k = 0; k < p->n_pairs; k++) {
        const float *pm = w->P_m + (size_t)p->pair_model[k] * H, *ps = w->P_s + (size_t)p->pair_strategy[k] * H;
        for (int j = 0; j < H; j++) C[(size_t)k * H + j] = pm[j] + ps[j] + hd->b1[j];
    }
}

void rtr_predictor_pair_table(const rtr_predictor *p, int head, float *C) {
    table_ws w;
    if (table_ws_init(&w, p) == RTR_OK) pair_table(p, head, &w, C);
    table_ws_free(&w);
}

/* Pre-activations for N rows of emb (N x D), both heads, in chunks so the
 * A buffers stay small; Cc/Ct are the pair tables. */
#define SCORE_CHUNK 4096
static rtr_status forward_rows(const rtr_predictor *p, const float *Cc, const float *Ct, const float *emb,
                               int64_t N, float *out_c, float *out_t) {
    int H = p->H, D = p->D, K = p->n_pairs;
    int64_t chunk = N < SCORE_CHUNK ? N : SCORE_CHUNK;
    float *A = rtr_malloc(sizeof(float) * 2 * (size_t)(chunk > 0 ? chunk : 1) * H);
    if (!A) return RTR_ERR_NOMEM;
    float *At = A + (size_t)chunk * H;
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        int n = (int)(N - n0 < chunk ? N - n0 : chunk);
        const float *E = emb + (size_t)n0 * D;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, H, D, 1.0f, E, D, p->head[0].W_q, D, 0.0f, A, H);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, H, D, 1.0f, E, D, p->head[1].W_q, D, 0.0f, At, H);
        heads_forward(out_c + (size_t)n0 * K, out_t + (size_t)n0 * K, A, At, Cc, Ct, p->head[0].w2,
                      p->head[0].b2, p->head[1].w2, p->head[1].b2, n, K, H);
    }
    free(A);
    return RTR_OK;
}

/* Index of the first non-finite value in x[0..n), or -1. */
static int64_t first_nonfinite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (int64_t)i;
    return -1;
}

rtr_status rtr_predictor_score(const rtr_predictor *p, const float *emb, int64_t N, float *p_correct,
                               float *tokens) {
    int64_t bad = first_nonfinite(emb, (size_t)N * p->D);
    if (bad >= 0)
        return rtr_fail(RTR_ERR_NUMERIC, "score: query embedding row %lld holds NaN/inf", (long long)(bad / p->D));
    size_t KH = (size_t)p->n_pairs * p->H;
    float *C = rtr_malloc(sizeof(float) * 2 * KH);
    table_ws w = {0};
    rtr_status st = C ? table_ws_init(&w, p) : RTR_ERR_NOMEM;
    if (!st) {
        pair_table(p, 0, &w, C);
        pair_table(p, 1, &w, C + KH);
        st = forward_rows(p, C, C + KH, emb, N, p_correct, tokens);
    }
    if (!st) heads_activate(p_correct, tokens, p_correct, tokens, p->cfg.token_target, p->token_scale, (int)N,
                            p->n_pairs);
    table_ws_free(&w);
    free(C);
    return st;
}

/* ------------------------------------------------------------ training */

/* Everything a training run allocates, freed in one place. */
typedef struct {
    float *grad, *adam_m, *adam_v, *best;
    float *y_c, *y_t;        /* n x K targets (token target space) */
    int64_t *order;          /* fit rows then validation rows */
    float *E, *Yc, *Yt;      /* batch gathers */
    float *A, *dA, *out, *dout; /* 2 heads each: B x H or B x K */
    float *C, *dC;           /* 2 x K x H */
    float *G_m, *G_s, *dR_m, *dR_s;
    table_ws tw;
} train_ws;

static void train_ws_free(train_ws *w) {
    float *bufs[] = {w->grad, w->adam_m, w->adam_v, w->best, w->y_c, w->y_t, w->E, w->Yc, w->Yt, w->A,
                     w->dA, w->out, w->dout, w->C, w->dC, w->G_m, w->G_s, w->dR_m, w->dR_s};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(w->order);
    table_ws_free(&w->tw);
}

static rtr_status train_ws_init(train_ws *w, const rtr_predictor *p, int64_t n) {
    size_t B = (size_t)p->cfg.batch, K = (size_t)p->n_pairs, H = (size_t)p->H, D = (size_t)p->D;
    size_t R = D + (size_t)p->U, nm = (size_t)p->n_models, ns = (size_t)p->n_strategies;
    memset(w, 0, sizeof *w);
    w->grad = rtr_calloc(p->n_params, sizeof(float));
    w->adam_m = rtr_calloc(p->n_trainable, sizeof(float));
    w->adam_v = rtr_calloc(p->n_trainable, sizeof(float));
    w->best = rtr_malloc(sizeof(float) * p->n_trainable);
    w->y_c = rtr_malloc(sizeof(float) * (size_t)n * K);
    w->y_t = rtr_malloc(sizeof(float) * (size_t)n * K);
    w->order = rtr_malloc(sizeof(int64_t) * (size_t)n);
    w->E = rtr_malloc(sizeof(float) * B * D);
    w->Yc = rtr_malloc(sizeof(float) * B * K);
    w->Yt = rtr_malloc(sizeof(float) * B * K);
    w->A = rtr_malloc(sizeof(float) * 2 * B * H);
    w->dA = rtr_malloc(sizeof(float) * 2 * B * H);
    w->out = rtr_malloc(sizeof(float) * 2 * B * K);
    w->dout = rtr_malloc(sizeof(float) * 2 * B * K);
    w->C = rtr_malloc(sizeof(float) * 2 * K * H);
    w->dC = rtr_malloc(sizeof(float) * 2 * K * H);
    w->G_m = rtr_malloc(sizeof(float) * nm * H);
    w->G_s = rtr_malloc(sizeof(float) * ns * H);
    w->dR_m = rtr_malloc(sizeof(float) * nm * R);
    w->dR_s = rtr_malloc(sizeof(float) * ns * R);
    rtr_status st = table_ws_init(&w->tw, p);
    if (st || !w->grad || !w->adam_m || !w->adam_v || !w->best || !w->y_c || !w->y_t || !w->order || !w->E ||
        !w->Yc || !w->Yt || !w->A || !w->dA || !w->out || !w->dout || !w->C || !w->dC || !w->G_m || !w->G_s ||
        !w->dR_m || !w->dR_s)
        return RTR_ERR_NOMEM;
    return RTR_OK;
}

/* Checks the inputs and fills the targets: y_c = correct, y_t = f(tokens)/scale
 * with the scale the RMS of f(tokens) over the fit rows when normalising. */
static rtr_status prepare_targets(rtr_predictor *p, const rtr_train_data *d, train_ws *w, int64_t n_fit) {
    size_t K = (size_t)d->K;
    int64_t bad = first_nonfinite(d->emb, (size_t)d->n * d->D);
    if (bad >= 0)
        return rtr_fail(RTR_ERR_NUMERIC, "train: query embedding row %lld holds NaN/inf", (long long)(bad / d->D));
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
            w->y_c[(size_t)i * K + k] = c;
            w->y_t[(size_t)i * K + k] = (float)f;
        }
    for (int64_t r = 0; r < n_fit; r++)
        for (size_t k = 0; k < K; k++) {
            float f = w->y_t[(size_t)w->order[r] * K + k];
            if (!isnan(f)) sum_sq += (double)f * f, count++;
        }
    p->token_scale = 1.0f;
    if (p->cfg.token_normalize && count > 0 && sum_sq > 0) p->token_scale = (float)sqrt(sum_sq / (double)count);
    float inv = 1.0f / p->token_scale;
    for (size_t i = 0; i < (size_t)d->n * K; i++) w->y_t[i] *= inv;
    return RTR_OK;
}

/* Gather rows idx[0..B) of the data into the batch buffers. */
static void gather(train_ws *w, const rtr_train_data *d, const int64_t *idx, int B) {
    size_t K = (size_t)d->K, D = (size_t)d->D;
    for (int b = 0; b < B; b++) {
        memcpy(w->E + b * D, d->emb + (size_t)idx[b] * D, sizeof(float) * D);
        memcpy(w->Yc + b * K, w->y_c + (size_t)idx[b] * K, sizeof(float) * K);
        memcpy(w->Yt + b * K, w->y_t + (size_t)idx[b] * K, sizeof(float) * K);
    }
}

static int64_t count_labelled(const float *y, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += !isnan(y[i]);
    return c;
}

/* Parameter gradient of one head from dA (B x H) and dC (K x H). */
static void head_param_grad(const rtr_predictor *p, train_ws *w, const param_view *g, int h, int B,
                            const float *dA, const float *dC, const float *W_m, const float *W_s) {
    int H = p->H, D = p->D, R = p->D + p->U, U = p->U;
    const rtr_head *gh = &g->head[h];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, D, B, 1.0f, dA, H, w->E, D, 0.0f, gh->W_q, D);
    memset(w->G_m, 0, sizeof(float) * (size_t)p->n_models * H);
    memset(w->G_s, 0, sizeof(float) * (size_t)p->n_strategies * H);
    for (int k = 0; k < p->n_pairs; k++) {
        float *gm = w->G_m + (size_t)p->pair_model[k] * H, *gs = w->G_s + (size_t)p->pair_strategy[k] * H;
        const float *dc = dC + (size_t)k * H;
        for (int j = 0; j < H; j++) gm[j] += dc[j], gs[j] += dc[j], gh->b1[j] += dc[j];
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, R, p->n_models, 1.0f, w->G_m, H, w->tw.R_m, R, 0.0f,
                gh->W_m, R);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, R, p->n_strategies, 1.0f, w->G_s, H, w->tw.R_s, R,
                0.0f, gh->W_s, R);
    if (U == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->n_models, R, H, 1.0f, w->G_m, H, W_m, R, 0.0f,
                w->dR_m, R);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->n_strategies, R, H, 1.0f, w->G_s, H, W_s, R, 0.0f,
                w->dR_s, R);
    for (int m = 0; m < p->n_models; m++)
        for (int u = 0; u < U; u++) g->u_model[(size_t)m * U + u] += w->dR_m[(size_t)m * R + D + u];
    for (int s = 0; s < p->n_strategies; s++)
        for (int u = 0; u < U; u++) g->u_strategy[(size_t)s * U + u] += w->dR_s[(size_t)s * R + D + u];
}

/* Gradient of the batch's mean losses into w->grad (trainable part); adds the
 * loss sums to loss[2] and labelled counts to cnt[2]. Exposed for the
 * gradient-check test through rtr_predictor_batch_grad_. */
static void batch_grad(const rtr_predictor *p, train_ws *w, int B, double *loss, int64_t *cnt) {
    int H = p->H, K = p->n_pairs, D = p->D;
    size_t BH = (size_t)B * H, BK = (size_t)B * K, KH = (size_t)K * H;
    param_view g;
    view_of(&g, p, w->grad);
    memset(w->grad, 0, sizeof(float) * p->n_trainable);
    pair_table(p, 0, &w->tw, w->C);
    pair_table(p, 1, &w->tw, w->C + KH);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, D, 1.0f, w->E, D, p->head[0].W_q, D, 0.0f, w->A, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, D, 1.0f, w->E, D, p->head[1].W_q, D, 0.0f,
                w->A + BH, H);
    heads_forward(w->out, w->out + BK, w->A, w->A + BH, w->C, w->C + KH, p->head[0].w2, p->head[0].b2,
                  p->head[1].w2, p->head[1].b2, B, K, H);
    int64_t nc = count_labelled(w->Yc, BK), nt = count_labelled(w->Yt, BK);
    heads_loss(w->dout, w->dout + BK, loss, w->out, w->out + BK, w->Yc, w->Yt, nc ? 1.0f / (float)nc : 0.0f,
               nt ? 1.0f / (float)nt : 0.0f, B, K);
    cnt[0] += nc, cnt[1] += nt;
    memset(w->dA, 0, sizeof(float) * 2 * BH);
    memset(w->dC, 0, sizeof(float) * 2 * KH);
    heads_backward(w->dA, w->dA + BH, w->dC, w->dC + KH, g.head[0].w2, g.head[0].b2, g.head[1].w2, g.head[1].b2,
                   w->dout, w->dout + BK, w->A, w->A + BH, w->C, w->C + KH, p->head[0].w2, p->head[1].w2, B, K, H);
    for (int h = 0; h < 2; h++)
        head_param_grad(p, w, &g, h, B, w->dA + h * BH, w->dC + h * KH, p->head[h].W_m, p->head[h].W_s);
}

/* Test hook: the mean-loss gradient of rows 0..n of d (targets as given, no
 * scaling) into grad (n_trainable floats); returns the two mean losses. */
rtr_status rtr_predictor_batch_grad_(const rtr_predictor *p, const rtr_train_data *d, float *grad, double loss[2]) {
    rtr_predictor q = *p;
    q.cfg.batch = (int32_t)d->n;
    train_ws w;
    rtr_status st = train_ws_init(&w, &q, d->n);
    if (!st) {
        memcpy(w.y_c, d->correct, sizeof(float) * (size_t)d->n * d->K);
        memcpy(w.y_t, d->tokens, sizeof(float) * (size_t)d->n * d->K);
        for (int64_t i = 0; i < d->n; i++) w.order[i] = i;
        gather(&w, d, w.order, (int)d->n);
        double l[2] = {0, 0};
        int64_t c[2] = {0, 0};
        batch_grad(&q, &w, (int)d->n, l, c);
        memcpy(grad, w.grad, sizeof(float) * p->n_trainable);
        loss[0] = c[0] ? l[0] / (double)c[0] : 0.0;
        loss[1] = c[1] ? l[1] / (double)c[1] : 0.0;
    }
    train_ws_free(&w);
    return st;
}

/* Mean losses of the rows rows[0..n) with the current parameters. */
static rtr_status eval_rows(const rtr_predictor *p, train_ws *w, const rtr_train_data *d, const int64_t *rows,
                            int64_t n, double mean[2]) {
    size_t K = (size_t)p->n_pairs, KH = K * p->H, D = (size_t)p->D, nK = (size_t)n * K;
    float *E = rtr_malloc(sizeof(float) * (size_t)n * D), *Y = rtr_malloc(sizeof(float) * nK * 6);
    if (!E || !Y) { free(E); free(Y); return RTR_ERR_NOMEM; }
    /* labels, pre-activations and the (unused) gradients, two heads each */
    float *Yc = Y, *Yt = Y + nK, *out = Y + 2 * nK, *dout = Y + 4 * nK;
    for (int64_t r = 0; r < n; r++) {
        memcpy(E + r * D, d->emb + (size_t)rows[r] * D, sizeof(float) * D);
        memcpy(Yc + r * K, w->y_c + (size_t)rows[r] * K, sizeof(float) * K);
        memcpy(Yt + r * K, w->y_t + (size_t)rows[r] * K, sizeof(float) * K);
    }
    pair_table(p, 0, &w->tw, w->C);
    pair_table(p, 1, &w->tw, w->C + KH);
    rtr_status st = forward_rows(p, w->C, w->C + KH, E, n, out, out + nK);
    if (!st) {
        double l[2] = {0, 0};
        heads_loss(dout, dout + nK, l, out, out + nK, Yc, Yt, 0, 0, (int)n, (int)K);
        int64_t nc = count_labelled(Yc, nK), nt = count_labelled(Yt, nK);
        mean[0] = nc ? l[0] / (double)nc : 0.0;
        mean[1] = nt ? l[1] / (double)nt : 0.0;
    }
    free(E);
    free(Y);
    return st;
}

/* Losses of the naive predictor (per-pair mean of the fit rows) on the
 * validation rows: the yardstick that puts both heads on one scale. */
static void naive_losses(const train_ws *w, int64_t K, const int64_t *fit, int64_t n_fit, const int64_t *val,
                         int64_t n_val, double out[2]) {
    double bce = 0, sq = 0;
    int64_t nc = 0, nt = 0;
    for (int64_t k = 0; k < K; k++) {
        double sc = 0, st = 0;
        int64_t cc = 0, ct = 0;
        for (int64_t r = 0; r < n_fit; r++) {
            float c = w->y_c[fit[r] * K + k], t = w->y_t[fit[r] * K + k];
            if (!isnan(c)) sc += c, cc++;
            if (!isnan(t)) st += t, ct++;
        }
        double pc = cc ? sc / (double)cc : 0.5, mt = ct ? st / (double)ct : 0.0;
        pc = fmin(fmax(pc, 1e-4), 1 - 1e-4);
        for (int64_t r = 0; r < n_val; r++) {
            float c = w->y_c[val[r] * K + k], t = w->y_t[val[r] * K + k];
            if (!isnan(c)) bce -= c * log(pc) + (1 - c) * log(1 - pc), nc++;
            if (!isnan(t)) sq += (t - mt) * (t - mt), nt++;
        }
    }
    out[0] = nc && bce > 0 ? bce / (double)nc : 1.0;
    out[1] = nt && sq > 0 ? sq / (double)nt : 1.0;
}

rtr_status rtr_predictor_train(rtr_predictor *p, const rtr_train_data *d, rtr_epoch_fn log, void *user) {
    if (d->D != p->D || d->K != p->n_pairs)
        return rtr_fail(RTR_ERR_INVALID, "train: data has D=%d K=%d, predictor expects D=%d K=%d", d->D, d->K,
                        p->D, p->n_pairs);
    int64_t n_val = (int64_t)llround(p->cfg.val_frac * (double)d->n);
    if (p->cfg.val_frac > 0 && n_val < 1) n_val = 1;
    int64_t n_fit = d->n - n_val;
    if (n_fit < 1) return rtr_fail(RTR_ERR_INVALID, "train: %lld rows are too few to train on", (long long)d->n);
    train_ws w;
    rtr_status st = train_ws_init(&w, p, d->n);
    if (st) { train_ws_free(&w); return st; }
    uint64_t rng = p->cfg.seed ^ 0x5ca1ab1e0ddba11ULL;
    for (int64_t i = 0; i < d->n; i++) w.order[i] = i;
    rng_shuffle(&rng, w.order, d->n);
    int64_t *fit = w.order, *val = w.order + n_fit;
    st = prepare_targets(p, d, &w, n_fit);
    double naive[2] = {1, 1};
    if (!st && n_val) naive_losses(&w, p->n_pairs, fit, n_fit, val, n_val, naive);

    /* Batch GEMMs are small (32 x 768 x 768): OpenBLAS's threads cost more
     * than they give, many times more on a shared machine (measured in
     * docs/PREDICTOR.md), so training runs them on one thread. */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    double best = INFINITY;
    int since_best = 0;
    int64_t t = 0;
    memcpy(w.best, p->params, sizeof(float) * p->n_trainable);
    for (int epoch = 1; !st && epoch <= p->cfg.max_epochs; epoch++) {
        double t0 = rtr_now(), loss[2] = {0, 0};
        int64_t cnt[2] = {0, 0};
        rng_shuffle(&rng, fit, n_fit);
        for (int64_t b0 = 0; b0 < n_fit; b0 += p->cfg.batch) {
            int B = (int)(n_fit - b0 < p->cfg.batch ? n_fit - b0 : p->cfg.batch);
            gather(&w, d, fit + b0, B);
            batch_grad(p, &w, B, loss, cnt);
            adam_update(p->params, w.grad, w.adam_m, w.adam_v, p->n_trainable, p->cfg.lr, ++t);
        }
        rtr_epoch_log e = {.epoch = epoch, .train_bce = cnt[0] ? loss[0] / (double)cnt[0] : 0,
                           .train_tok = cnt[1] ? loss[1] / (double)cnt[1] : 0};
        if (!isfinite(e.train_bce) || !isfinite(e.train_tok) || first_nonfinite(p->params, p->n_trainable) >= 0) {
            st = rtr_fail(RTR_ERR_NUMERIC, "train: diverged in epoch %d (loss %g / %g is not finite); "
                          "try a lower --lr", epoch, e.train_bce, e.train_tok);
            break;
        }
        double vm[2] = {e.train_bce, e.train_tok};
        if (n_val) st = eval_rows(p, &w, d, val, n_val, vm);
        if (st) break;
        e.val_bce = vm[0], e.val_tok = vm[1];
        e.val_score = vm[0] / naive[0] + vm[1] / naive[1];
        if (!isfinite(e.val_score)) {
            st = rtr_fail(RTR_ERR_NUMERIC, "train: diverged in epoch %d (validation loss not finite); "
                          "try a lower --lr", epoch);
            break;
        }
        if (e.val_score < best || !n_val) {
            best = e.val_score, since_best = 0, e.best = true;
            memcpy(w.best, p->params, sizeof(float) * p->n_trainable);
        } else {
            since_best++;
        }
        e.seconds = rtr_now() - t0;
        if (log) log(&e, user);
        if (n_val && since_best >= p->cfg.patience) break;
    }
    openblas_set_num_threads(blas_threads);
    if (!st) memcpy(p->params, w.best, sizeof(float) * p->n_trainable);
    train_ws_free(&w);
    return st;
}
