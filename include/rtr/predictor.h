/* rtr predictor: the RTR paper's two heads (correctness, output tokens) over
 * [e_q; d_m; d_s; u_m; u_s], evaluated with the fused concat-MLP identity
 *   W1·[e_q; r_m; r_s] + b1 = A[q] + C[pair],  A = W_q·e_q,
 *   C[k] = W_m·r_m(k) + W_s·r_s(k) + b1,  r_m = [d_m; u_m], r_s = [d_s; u_s],
 *   out[q,k] = w2 · relu(A[q] + C[k]) + b2.
 * The heads_* functions are the plain-C references of the CUDA kernels in
 * kernels/ (same names, same argument order; the CUDA ones add a stream).
 * The rtr_predictor_* functions train, score, save and load a predictor.
 *
 * Shapes: N queries, K pairs, H hidden units, D query-embedding dim (also the
 * description-embedding dim), U learnable-embedding dim. Every matrix is
 * row-major float32. Ownership: an rtr_predictor owns all its buffers and is
 * released by rtr_predictor_free. */
#ifndef RTR_PREDICTOR_H
#define RTR_PREDICTOR_H

#include "rtr/rtr.h"
#include "rtr/store.h"
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------ kernel references (heads) */

/* Pre-activation outputs of both heads for every (query, pair):
 *   out_c[n*K+k] = b2_c[0] + sum_j w2_c[j] * relu(A_c[n*H+j] + C_c[k*H+j])
 *   out_t[n*K+k] = the same with the token head's A_t, C_t, w2_t, b2_t.
 * A_*: N x H, C_*: K x H, w2_*: H, b2_*: one float (a pointer so it can live
 * on the device). out_c, out_t: N x K, overwritten. out_c is a logit
 * (p = sigmoid), out_t goes through softplus to the token target. */
void heads_forward(float *out_c, float *out_t,
                   const float *A_c, const float *A_t, const float *C_c, const float *C_t,
                   const float *w2_c, const float *b2_c, const float *w2_t, const float *b2_t,
                   int N, int K, int H);

/* Scoring form of heads_forward, two operations per hidden unit instead of
 * three. With α = |w2|·A (fold |w2| into W_q's rows), γ = −|w2|·C,
 * s = sign(w2) and β[k] = b2 + Σ_j w2_j·C[k,j], the identity
 *   w2_j·relu(a + c) = s_j·max(|w2_j|·a, −|w2_j|·c) + w2_j·c
 * gives out[n,k] = β[k] + Σ_j s_j·max(α[n,j], γ[k,j]) for each head
 * (rtr_predictor_fold_head builds α's weights, γ, s and β). X_*: N x H,
 * G_*: K x H, s_*: H, beta_*: K; out_*: N x K, overwritten. Equal to
 * heads_forward up to float rounding. */
void heads_score(float *out_c, float *out_t,
                 const float *X_c, const float *X_t, const float *G_c, const float *G_t,
                 const float *s_c, const float *s_t, const float *beta_c, const float *beta_t,
                 int N, int K, int H);

/* Loss of one batch and its gradient with respect to the pre-activations.
 * Correctness: BCE of sigmoid(out_c) against y_c in [0,1] (fractional labels
 * allowed). Tokens: squared error of softplus(out_t) against y_t (already in
 * target space: scaled raw or log tokens). A NaN label contributes no loss and
 * a zero gradient. loss[0] += sum of BCE terms, loss[1] += sum of squared
 * errors (accumulated, so a caller can add batches). dout_* (N*K entries,
 * overwritten) = gscale_* x d(sum of that head's terms)/d(out_*); pass
 * gscale = 1/(number of labelled entries) to get the gradient of the mean. */
void heads_loss(float *dout_c, float *dout_t, double *loss,
                const float *out_c, const float *out_t, const float *y_c, const float *y_t,
                float gscale_c, float gscale_t, int N, int K);

/* Backward of heads_forward, given dout_* = dL/dout_* (N x K).
 * dA_* (N x H) and dC_* (K x H), dw2_* (H) and db2_* (1) are ACCUMULATED
 * (+=, as in llm.c): zero them first for a fresh gradient. */
void heads_backward(float *dA_c, float *dA_t, float *dC_c, float *dC_t,
                    float *dw2_c, float *db2_c, float *dw2_t, float *db2_t,
                    const float *dout_c, const float *dout_t,
                    const float *A_c, const float *A_t, const float *C_c, const float *C_t,
                    const float *w2_c, const float *w2_t,
                    int N, int K, int H);

/* Pre-activations to predictions, elementwise over N*K entries:
 * p_correct = sigmoid(out_c); tokens = target_to_tokens(softplus(out_t)),
 * i.e. softplus·scale for RTR_TOKENS_RAW and expm1(softplus·scale) for
 * RTR_TOKENS_LOG. In place is allowed (p_correct == out_c, tokens == out_t). */
void heads_activate(float *p_correct, float *tokens, const float *out_c, const float *out_t,
                    int token_target, float token_scale, int N, int K);

/* The folded tables of heads_score for head h from a pair table C (K x H,
 * rtr_predictor_pair_table), W_q (H x D), w2 (H) and b2: Wq_f = |w2|·W_q
 * row by row (H x D), G = −|w2|·C (K x H), s = sign(w2) (H) and
 * beta[k] = b2 + Σ_j w2_j·C[k,j] summed in double (K). */
void rtr_predictor_fold_head(const float *C, const float *W_q, const float *w2, const float *b2, int K, int H,
                             int D, float *Wq_f, float *G, float *s, float *beta);

/* ------------------------------------ kernel references (the trainer's glue) */

/* out[r,:] = in[idx[r],:] for r < n; rows of `cols` floats. */
void gather_rows(float *out, const float *in, const int64_t *idx, int n, int cols);

/* One head's pair table from per-model and per-strategy products:
 * C[k,j] = (P_m[pair_model[k],j] + P_s[pair_strategy[k],j]) + b1[j], in that
 * order. P_m: n_models x H (R_m·W_mᵀ), P_s: n_strategies x H, C: K x H. */
void pair_table_forward(float *C, const float *P_m, const float *P_s, const float *b1,
                        const int32_t *pair_model, const int32_t *pair_strategy, int K, int H);

/* Backward of pair_table_forward, ACCUMULATED in pair order k = 0..K−1:
 * dP_m[pair_model[k],:] += dC[k,:], dP_s[pair_strategy[k],:] += dC[k,:],
 * db1 += dC[k,:]. dP_m: n_models x H, dP_s: n_strategies x H. */
void pair_table_backward(float *dP_m, float *dP_s, float *db1, const float *dC,
                         const int32_t *pair_model, const int32_t *pair_strategy, int K, int H,
                         int n_models, int n_strategies);

/* ----------------------------------------------------------- the predictor */

typedef enum {
    RTR_TOKENS_RAW = 0, /* target = tokens / scale (the paper: scale 1) */
    RTR_TOKENS_LOG = 1  /* target = log1p(tokens) / scale */
} rtr_token_target;

/* Training configuration. Defaults (rtr_train_default_params): the paper's
 * sizes and optimiser, plus the token-target choice measured in
 * docs/PREDICTOR.md. */
typedef struct {
    int32_t hidden;       /* H, 768 */
    int32_t learn_dim;    /* U, learnable model/strategy embedding dim, 768 */
    double lr;            /* Adam learning rate, 1e-3 */
    int32_t batch;        /* queries per step (each with all its pairs), 32 */
    int32_t max_epochs;   /* 100 */
    int32_t patience;     /* epochs without validation improvement, 10 */
    double val_frac;      /* share of the training rows held out for early stopping, 0.1 */
    uint64_t seed;        /* init, validation carve and batch order */
    int32_t token_target; /* rtr_token_target */
    bool token_normalize; /* scale = std of the target on the fit rows (else 1) */
} rtr_train_params;

rtr_train_params rtr_train_default_params(void);

/* One head's parameters (pointers into rtr_predictor.params). */
typedef struct {
    float *W_q; /* H x D */
    float *W_m; /* H x (D+U) */
    float *W_s; /* H x (D+U) */
    float *b1;  /* H */
    float *w2;  /* H */
    float *b2;  /* 1 */
} rtr_head;

enum { RTR_HEAD_CORRECT = 0, RTR_HEAD_TOKENS = 1 };

typedef struct {
    rtr_train_params cfg;
    int32_t D, H, U;
    int32_t n_models, n_strategies, n_pairs;
    int32_t *pair_model, *pair_strategy; /* n_pairs each */
    /* All parameters in one allocation: the trainable ones first
     * (n_trainable floats: both heads, then u_model, u_strategy), then the
     * frozen description embeddings d_model, d_strategy. */
    float *params;
    size_t n_params, n_trainable;
    rtr_head head[2];
    float *u_model;    /* n_models x U */
    float *u_strategy; /* n_strategies x U */
    float *d_model;    /* n_models x D, frozen */
    float *d_strategy; /* n_strategies x D, frozen */
    float token_scale; /* target = f(tokens) / token_scale */
    /* Provenance, all owned (NULL when unknown). */
    char *encoder, *encoder_hash; /* of the query/description embeddings */
    char *catalog_json;           /* rtr_catalog_to_json of the training catalog */
    uint64_t catalog_hash;        /* rtr_catalog_hash of that catalog */
    char *train_split;            /* split name of the training rows */
    char *train_skip_dataset;     /* dataset left out of training (out of distribution), NULL: none */
} rtr_predictor;

/* Allocate a predictor for a catalog with D-dim embeddings; parameters get a
 * seeded random init (uniform ±1/sqrt(fan_in), as torch.nn.Linear; u ~ N(0,1)
 * scaled by 1/sqrt(U)). d_model (n_models x D) and d_strategy
 * (n_strategies x D) are copied. The catalog is copied as JSON. */
rtr_status rtr_predictor_init(rtr_predictor *p, const rtr_train_params *cfg, const rtr_catalog *cat,
                              int32_t D, const float *d_model, const float *d_strategy);
void rtr_predictor_free(rtr_predictor *p);

/* Training rows in memory: emb n x D, correct / tokens n x K (NaN: missing). */
typedef struct {
    int64_t n;
    int32_t D, K;
    const float *emb, *correct, *tokens;
} rtr_train_data;

/* Per-epoch record passed to the log callback. Losses are means over labelled
 * entries; token losses are in target space; val_* on the validation rows. */
typedef struct {
    int32_t epoch;
    double train_bce, train_tok, val_bce, val_tok;
    double val_score;  /* val_bce/naive_bce + val_tok/naive_tok: early-stopping criterion */
    bool best;         /* this epoch improved val_score (its parameters are kept) */
    double seconds;
} rtr_epoch_log;

typedef void (*rtr_epoch_fn)(const rtr_epoch_log *log, void *user);

/* Train p on data (p from rtr_predictor_init with the same D and K) on the
 * CPU backend: rtr_predictor_train_on with rtr_backend_cpu_open's backend.
 * The validation rows (cfg.val_frac, seeded) are carved from data; at the
 * end p holds the parameters of the best validation epoch. Sets
 * p->token_scale. log (optional) is called after each epoch. Fails with
 * RTR_ERR_NUMERIC on NaN/inf in the inputs or a diverging run (non-finite
 * loss), naming the row or epoch; RTR_ERR_INVALID on inconsistent shapes or
 * too few rows. */
rtr_status rtr_predictor_train(rtr_predictor *p, const rtr_train_data *data, rtr_epoch_fn log, void *user);

struct rtr_backend;
/* rtr_predictor_train on a compute backend b (rtr_backend_init,
 * include/rtr/backend.h).
 * The parameters, Adam's moments, the gradient and the rows' embeddings and
 * targets live in backend memory for the whole run (on the CPU backend: the
 * host arrays themselves); losses and parameters come back once per epoch.
 * The same seed gives the same row order, validation split and init on every
 * backend; losses agree to float rounding (docs/PREDICTOR.md). Backend
 * failures are returned as the failing op reports them. */
rtr_status rtr_predictor_train_on(struct rtr_backend *b, rtr_predictor *p, const rtr_train_data *data,
                                  rtr_epoch_fn log, void *user);

/* Predictions for N queries (emb N x D): p_correct and tokens, N x K each
 * (caller-allocated). RTR_ERR_NUMERIC when emb holds NaN/inf. */
rtr_status rtr_predictor_score(const rtr_predictor *p, const float *emb, int64_t N,
                               float *p_correct, float *tokens);

/* The C tables (K x H) of one head: C[k] = W_m·r_m(k) + W_s·r_s(k) + b1. */
void rtr_predictor_pair_table(const rtr_predictor *p, int head, float *C);

/* Safetensors checkpoint: tensors head.{correct,tokens}.{W_q,W_m,W_s,b1,w2,b2},
 * u_model, u_strategy, d_model, d_strategy, pair_model, pair_strategy; the
 * metadata holds the configuration, catalog JSON and hash, encoder name and
 * hash, token target and scale, and the training split name. Written through a
 * temporary name: an existing file is replaced only by a complete one. */
rtr_status rtr_predictor_save(const rtr_predictor *p, const char *path);
/* Load a checkpoint (p is overwritten; free it with rtr_predictor_free). */
rtr_status rtr_predictor_load(rtr_predictor *p, const char *path);
/* Hash of a checkpoint's parameters and metadata, hex in *hex (17 bytes). */
void rtr_predictor_hash_hex(const rtr_predictor *p, char hex[17]);

/* ------------------------------------------------------- prediction quality */

/* Quality of predictions against realised outcomes (docs/METRICS.md,
 * "Predictors"). Entries whose label is NaN are skipped; fractional
 * correctness labels count as they are (accuracy credits y when p >= 0.5 and
 * 1-y otherwise; AUC weighs an entry as y positive and 1-y negative). */
typedef struct {
    int64_t n_correct, n_tokens; /* labelled entries used by each head */
    double accuracy, auc, log_loss, brier, ece; /* ece: 10 equal-width bins */
    double mae, median_ae, within_200, within_600; /* tokens; within_*: shares */
} rtr_pred_metrics;

/* Metrics over n entries taken every `stride` floats from each array (stride
 * K with the arrays offset by k: pair k of an N x K table; stride 1: all).
 * p_correct is clamped to [1e-7, 1-1e-7] for the log-loss. Metrics with no
 * labelled entry (or AUC with one class only) are NaN. */
rtr_status rtr_pred_metrics_compute(rtr_pred_metrics *m, const float *p_correct, const float *tokens,
                                    const float *y_correct, const float *y_tokens, int64_t n, int64_t stride);

/* The naive predictor: per-pair mean correctness (mean_c, K) and median
 * tokens (median_t, K) over the labelled rows of N x K outcome tables; NaN
 * for a pair with no labelled row. */
rtr_status rtr_naive_fit(float *mean_c, float *median_t, const float *y_correct, const float *y_tokens,
                         int64_t N, int32_t K);

#ifdef __cplusplus
}
#endif
#endif
