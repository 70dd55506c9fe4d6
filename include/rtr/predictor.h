/* rtr predictor: the RTR paper's two heads (correctness, output tokens) over
 * [e_q; d_m; d_s; u_m; u_s], evaluated with the fused concat-MLP identity
 *   W1·[e_q; r_m; r_s] + b1 = A[q] + C[pair],  A = W_q·e_q,
 *   C[k] = W_m·r_m(k) + W_s·r_s(k) + b1,  r_m = [d_m; u_m], r_s = [d_s; u_s],
 *   out[q,k] = w2 · relu(A[q] + C[k]) + b2.
 * The heads themselves are the kernel references rtr_heads_* of
 * include/rtr/ops.h; the rtr_predictor_* functions here train, score, save
 * and load a predictor.
 *
 * Shapes: N queries, K pairs, H hidden units, D query-embedding dim (also the
 * description-embedding dim), U learnable-embedding dim. Every matrix is
 * row-major float32. Ownership: an rtr_predictor owns all its buffers and is
 * released by rtr_predictor_free. */
#ifndef RTR_PREDICTOR_H
#define RTR_PREDICTOR_H

#include "rtr/backend.h"
#include "rtr/export.h"
#include "rtr/rtr.h"
#include "rtr/store.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

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
    int64_t window_rows;  /* rows per shuffle window (0: all rows, one shuffle): each epoch visits windows of
                           * this many consecutive rows in a shuffled order, each one's rows shuffled, so the
                           * embeddings are read a window at a time (rtr_predictor_train) */
} rtr_train_params;

RTR_API rtr_train_params rtr_train_default_params(void);

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
    /* Each pair's mean output tokens over the training rows (NaN: none had
     * a token outcome), kept so that online routing takes its cost scale
     * from the checkpoint, never from the queries routed with a query
     * (rtr_route_texts). [n_pairs], owned; NULL in a checkpoint saved before
     * it was kept. Not in the checkpoint hash: it changes no prediction. */
    float *pair_mean_tokens;
    /* Provenance, all owned (NULL when unknown). */
    char *encoder, *encoder_hash; /* of the query/description embeddings */
    char *catalog_json;           /* rtr_catalog_to_json of the training catalog */
    uint64_t catalog_hash;        /* rtr_catalog_hash of that catalog */
    char *train_split;            /* split name of the training rows */
    char *train_skip_dataset;     /* dataset left out of training (out of distribution), NULL: none */
    /* The validation rows carved from the training rows, as hashes of their
     * query embeddings (rtr_embedding_hash), so later stages can fit on
     * predictions the network was not trained on (the default router's
     * calibration and blend, src/eval/stack.c). At most RTR_VAL_HASH_MAX,
     * in carve order; rows whose embedding equals a fitted row's are left
     * out. NULL / 0 without validation rows. */
    uint64_t *val_hash;
    int64_t n_val_hash;
} rtr_predictor;

#define RTR_VAL_HASH_MAX 20000
/* FNV-1a hash of one D-float embedding row (the key of val_hash). */
RTR_API uint64_t rtr_embedding_hash(const float *row, int32_t D);

/* Allocate a predictor for a catalog with D-dim embeddings; parameters get a
 * seeded random init (uniform ±1/sqrt(fan_in), as torch.nn.Linear; u ~ N(0,1)
 * scaled by 1/sqrt(U)). d_model (n_models x D) and d_strategy
 * (n_strategies x D) are copied. The catalog is copied as JSON. */
RTR_API rtr_status rtr_predictor_init(rtr_predictor *p, const rtr_train_params *cfg, const rtr_catalog *cat,
                              int32_t D, const float *d_model, const float *d_strategy);
RTR_API void rtr_predictor_free(rtr_predictor *p);

/* Training rows: emb n x D, correct / tokens n x K (NaN: missing). emb may
 * be a shared file mapping (emb_mapped, as rtr_rows_gather makes above its
 * budget): the trainer then releases each window's pages once read, so the
 * process holds the embeddings of about two windows (cfg.window_rows), not
 * of every row; the file keeps them. */
typedef struct {
    int64_t n;
    int32_t D, K;
    const float *emb, *correct, *tokens;
    bool emb_mapped;
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
RTR_API rtr_status rtr_predictor_train(rtr_predictor *p, const rtr_train_data *data, rtr_epoch_fn log, void *user);

/* rtr_predictor_train on a compute backend b (rtr_backend_init,
 * include/rtr/backend.h).
 * The parameters, Adam's moments, the gradient and the rows' embeddings and
 * targets live in backend memory for the whole run (on the CPU backend: the
 * host arrays themselves); losses and parameters come back once per epoch.
 * The same seed gives the same row order, validation split and init on every
 * backend; losses agree to float rounding (docs/PREDICTOR.md). Backend
 * failures are returned as the failing op reports them. */
RTR_API rtr_status rtr_predictor_train_on(rtr_backend *b, rtr_predictor *p, const rtr_train_data *data,
                                  rtr_epoch_fn log, void *user);

/* Predictions for N queries (emb N x D): p_correct and tokens, N x K each
 * (caller-allocated). RTR_ERR_NUMERIC when emb holds NaN/inf, or when a score
 * is not a probability with a finite token count >= 0 (weights that overflow
 * float: a damaged or diverged checkpoint), naming the row and pair. */
RTR_API rtr_status rtr_predictor_score(float *p_correct, float *tokens, const rtr_predictor *p,
                               const float *emb, int64_t N);

/* The C tables (K x H) of one head: C[k] = W_m·r_m(k) + W_s·r_s(k) + b1. */
RTR_API void rtr_predictor_pair_table(float *C, const rtr_predictor *p, int head);

/* Safetensors checkpoint: tensors head.{correct,tokens}.{W_q,W_m,W_s,b1,w2,b2},
 * u_model, u_strategy, d_model, d_strategy, pair_model, pair_strategy; the
 * metadata holds the configuration, catalog JSON and hash, encoder name and
 * hash, token target and scale, and the training split name. Written through a
 * temporary name: an existing file is replaced only by a complete one. */
RTR_API rtr_status rtr_predictor_save(const rtr_predictor *p, const char *path);
/* Load a checkpoint (p is overwritten; free it with rtr_predictor_free). */
RTR_API rtr_status rtr_predictor_load(rtr_predictor *p, const char *path);
/* Hash of a checkpoint's parameters and metadata, hex in *hex (17 bytes). */
RTR_API void rtr_predictor_hash_hex(const rtr_predictor *p, char hex[17]);

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
RTR_API rtr_status rtr_pred_metrics_compute(rtr_pred_metrics *m, const float *p_correct, const float *tokens,
                                    const float *y_correct, const float *y_tokens, int64_t n, int64_t stride);

/* The naive predictor: per-pair mean correctness (mean_c, K) and median
 * tokens (median_t, K) over the labelled rows of N x K outcome tables; NaN
 * for a pair with no labelled row. */
RTR_API rtr_status rtr_naive_fit(float *mean_c, float *median_t, const float *y_correct, const float *y_tokens,
                         int64_t N, int32_t K);

/* ------------------------------------------------------ scoring on a backend */

/* The folded tables of rtr_heads_score for head h from a pair table C (K x H,
 * rtr_predictor_pair_table), W_q (H x D), w2 (H) and b2: Wq_f = |w2|·W_q
 * row by row (H x D), G = −|w2|·C (K x H), s = sign(w2) (H) and
 * beta[k] = b2 + Σ_j w2_j·C[k,j] summed in double (K). */
RTR_API void rtr_predictor_fold_head(float *Wq_f, float *G, float *s, float *beta, const float *C, const float *W_q,
                             const float *w2, const float *b2, int K, int H, int D);

/* rtr_predictor_score on backend b: p_correct and tokens (N x K each, host
 * memory, caller-allocated) for the N query embeddings emb (N x D, host).
 * The folded tables of rtr_heads_score are built on the host once and uploaded
 * once; queries stream through in chunks of chunk_rows (0: 16384, about
 * 150 MB of backend memory at D = H = 768) with pinned double buffers, each
 * chunk as two GEMMs (A = E·(|w2|·W_q)ᵀ), rtr_heads_score and rtr_heads_activate.
 * Equal to rtr_predictor_score up to float rounding. RTR_ERR_NUMERIC when
 * emb holds NaN/inf, naming the row (found when its chunk is read, so
 * earlier chunks may have been computed), and for scores that are not a
 * probability and a finite count, as rtr_predictor_score; backend errors as the failing op
 * reports them. */
RTR_API rtr_status rtr_predictor_score_backend(rtr_backend *b, float *p_correct, float *tokens, const rtr_predictor *p,
                                       const float *emb, int64_t N, int64_t chunk_rows);

/* rtr_predictor_score_backend on a shard's /embedding/query (n x p->D),
 * streamed: chunks of chunk_rows (0: 16384) read from HDF5 into the pinned
 * double buffers, each uploaded beside the previous chunk's compute, scores
 * downloaded and copied out while the next chunk computes. *N = n;
 * *p_correct, *tokens (n x K, the caller frees). RTR_ERR_FORMAT naming the
 * file (and rows) for an unreadable shard or a wrong width; RTR_ERR_NUMERIC
 * naming the row for NaN/inf; nothing returned on error. */
RTR_API rtr_status rtr_predictor_score_shard(rtr_backend *b, int64_t *N, float **p_correct, float **tokens,
                                     const rtr_predictor *p, const char *path, int64_t chunk_rows);

#ifdef __cplusplus
}
#endif
#endif
