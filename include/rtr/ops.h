/* The plain-C references of every kernel, in the style of llm.c: each op is
 * a loop nest over plain arrays, readable rather than fast. The CUDA
 * launchers in kernels/ have the SAME names and argument order (adding a
 * stream) and are tested against these on the emulator and on a GPU; the
 * backend op list (RTR_BACKEND_OPS in include/rtr/backend.h) is built from
 * them. One section per kernel file: kernels/X.cu is checked against
 * src/ref/X.c.
 *
 * All arrays are row-major and caller-allocated; `out` may not alias an input
 * unless said so. GEMMs are not ops here: they go through cblas_sgemm (CPU)
 * or cuBLASLt (GPU). */
#ifndef RTR_OPS_H
#define RTR_OPS_H

#include "rtr/export.h"
#include "rtr/rtr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------ encoder.cu: the sentence encoder
 * Shapes: B = batch rows, T = padded sequence length, C = hidden size,
 * NH = attention heads (head size C / NH), N = B * T rows of a [N x C]
 * matrix. Every sequence is left-aligned: row b holds lens[b] real tokens
 * followed by padding. */

/* out[b,t,:] = LayerNorm(wte[ids[b,t]] + wpe[pos_ids[b,t]] + (wtt ? wtt : 0))
 * with weight ln_w, bias ln_b and eps. ids, pos_ids: [B x T]; wte: [V x C];
 * wpe: [P x C]; wtt: one token-type row [C] or NULL (MPNet has none);
 * out: [B x T x C]. Ids must already be in range (the encoder checks them). */
RTR_API void rtr_embedding_layernorm_forward(float *out, const int32_t *ids, const int32_t *pos_ids,
                                 const float *wte, const float *wpe, const float *wtt,
                                 const float *ln_w, const float *ln_b, float eps,
                                 int B, int T, int C);

/* MPNet's relative position bucket of query i and key j (0-based indices):
 * n = i - j; half the buckets per direction (offset num_buckets/2 when n < 0),
 * exact below num_buckets/4, logarithmic up to max_distance, capped. Computed
 * in float like transformers' MPNet (torch float32 log). */
RTR_API int rtr_relative_position_bucket(int i, int j, int num_buckets, int max_distance);

/* bias[h,i,j] = table[rtr_relative_position_bucket(i, j, ...) * NH + h].
 * table: [num_buckets x NH] (MPNet's relative_attention_bias.weight);
 * bias: [NH x T x T]. Computed once per T and shared by every layer. */
RTR_API void rtr_position_bias_forward(float *bias, const float *table, int T, int NH,
                           int num_buckets, int max_distance);

/* out[n,c] = inp[n,c] + bias[c]; inp [N x C], bias [C]. out may alias inp. */
RTR_API void rtr_bias_add_forward(float *out, const float *inp, const float *bias, int N, int C);

/* Scaled dot-product self-attention over a fused qkv = [B x T x 3C] (per row:
 * q | k | v, each C = NH heads x hs). For query t and key s of row b:
 * score = q·k / sqrt(hs) + (bias ? bias[h,t,s] : 0), keys s >= lens[b] are
 * masked out, softmax over keys, out = Σ p · v.
 * att: scratch [B x NH x T x T] (receives the probabilities);
 * out: [B x T x C]; rows t >= lens[b] of out are set to 0. */
RTR_API void rtr_attention_forward(float *out, float *att, const float *qkv, const float *bias,
                       const int32_t *lens, int B, int T, int C, int NH);

/* out[n,c] = gelu(inp[n,c] + bias[c]), exact erf GELU (hidden_act "gelu").
 * inp [N x C], bias [C]. out may alias inp. */
RTR_API void rtr_bias_gelu_forward(float *out, const float *inp, const float *bias, int N, int C);

/* out[n,:] = LayerNorm(inp[n,:] + bias + residual[n,:]) with ln_w, ln_b, eps:
 * the post-LN residual step of a BERT/MPNet block, where inp is the GEMM
 * output before its bias. inp, residual, out: [N x C]; out may alias residual
 * or inp. */
RTR_API void rtr_residual_layernorm_forward(float *out, const float *inp, const float *bias,
                                const float *residual, const float *ln_w,
                                const float *ln_b, float eps, int N, int C);

/* sentence-transformers pooling (its Pooling module's modes; the encoder
 * reads which from the folder's modules.json and Pooling config). Of row b's
 * real tokens t < lens[b] (special tokens included):
 *   RTR_POOL_MEAN           m = Σ inp[b,t,:] / lens[b]
 *   RTR_POOL_MEAN_SQRT_LEN  m = Σ inp[b,t,:] / sqrt(lens[b])
 *   RTR_POOL_CLS            m = inp[b,0,:] (the first token, [CLS] or <s>)
 * then, when normalize (a Normalize module follows), out[b,:] =
 * m / max(|m|, 1e-12), else m. A row with lens[b] == 0 gives zeros.
 * inp [B x T x C], out [B x C]. */
typedef enum { RTR_POOL_MEAN = 0, RTR_POOL_MEAN_SQRT_LEN, RTR_POOL_CLS } rtr_pool_mode;
RTR_API void rtr_pool_forward(float *out, const float *inp, const int32_t *lens, int B, int T, int C,
                              rtr_pool_mode mode, bool normalize);

/* rtr_pool_forward(..., RTR_POOL_MEAN, true), all-MiniLM-L6-v2's and
 * all-mpnet-base-v2's pooling; kept for callers written before
 * rtr_pool_forward (tests/test_ops.c). */
RTR_API void rtr_mean_pool_l2norm_forward(float *out, const float *inp, const int32_t *lens,
                              int B, int T, int C);

/* ------------------------------ heads.cu: the fused concat-MLP heads
 * N queries, K pairs, H hidden units (include/rtr/predictor.h). */

/* Pre-activation outputs of both heads for every (query, pair):
 *   out_c[n*K+k] = b2_c[0] + sum_j w2_c[j] * relu(A_c[n*H+j] + C_c[k*H+j])
 *   out_t[n*K+k] = the same with the token head's A_t, C_t, w2_t, b2_t.
 * A_*: N x H, C_*: K x H, w2_*: H, b2_*: one float (a pointer so it can live
 * on the device). out_c, out_t: N x K, overwritten. out_c is a logit
 * (p = sigmoid), out_t goes through softplus to the token target. */
RTR_API void rtr_heads_forward(float *out_c, float *out_t,
                   const float *A_c, const float *A_t, const float *C_c, const float *C_t,
                   const float *w2_c, const float *b2_c, const float *w2_t, const float *b2_t,
                   int N, int K, int H);

/* Scoring form of rtr_heads_forward, two operations per hidden unit instead of
 * three. With α = |w2|·A (fold |w2| into W_q's rows), γ = −|w2|·C,
 * s = sign(w2) and β[k] = b2 + Σ_j w2_j·C[k,j], the identity
 *   w2_j·relu(a + c) = s_j·max(|w2_j|·a, −|w2_j|·c) + w2_j·c
 * gives out[n,k] = β[k] + Σ_j s_j·max(α[n,j], γ[k,j]) for each head
 * (rtr_predictor_fold_head builds α's weights, γ, s and β). X_*: N x H,
 * G_*: K x H, s_*: H, beta_*: K; out_*: N x K, overwritten. Equal to
 * rtr_heads_forward up to float rounding. */
RTR_API void rtr_heads_score(float *out_c, float *out_t,
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
RTR_API void rtr_heads_loss(float *dout_c, float *dout_t, double *loss,
                const float *out_c, const float *out_t, const float *y_c, const float *y_t,
                float gscale_c, float gscale_t, int N, int K);

/* Backward of rtr_heads_forward, given dout_* = dL/dout_* (N x K).
 * dA_* (N x H) and dC_* (K x H), dw2_* (H) and db2_* (1) are ACCUMULATED
 * (+=, as in llm.c): zero them first for a fresh gradient. */
RTR_API void rtr_heads_backward(float *dA_c, float *dA_t, float *dC_c, float *dC_t,
                    float *dw2_c, float *db2_c, float *dw2_t, float *db2_t,
                    const float *dout_c, const float *dout_t,
                    const float *A_c, const float *A_t, const float *C_c, const float *C_t,
                    const float *w2_c, const float *w2_t,
                    int N, int K, int H);

/* Pre-activations to predictions, elementwise over N*K entries:
 * p_correct = sigmoid(out_c); tokens = target_to_tokens(softplus(out_t)),
 * i.e. softplus·scale for RTR_TOKENS_RAW and expm1(softplus·scale) for
 * RTR_TOKENS_LOG. In place is allowed (p_correct == out_c, tokens == out_t). */
RTR_API void rtr_heads_activate(float *p_correct, float *tokens, const float *out_c, const float *out_t,
                    int token_target, float token_scale, int N, int K);

/* ---------------------------------------- train.cu: the trainer's glue */

/* out[r,:] = in[idx[r],:] for r < n; rows of `cols` floats. */
RTR_API void rtr_gather_rows(float *out, const float *in, const int64_t *idx, int n, int cols);

/* A training batch's changing parameters, kept in backend memory so that a
 * batch's launches all have fixed arguments (one CUDA graph replays every
 * full batch of an epoch; src/predictor/train.c): an epoch's table holds one
 * per batch, uploaded once, and rtr_batch_select copies the next one into a
 * fixed slot. */
typedef struct {
    int64_t first;             /* the batch's first row in the epoch's row order */
    float gscale_c, gscale_t;  /* rtr_heads_loss's gradient scales */
    float adam_step;           /* rtr_adam_step_size(lr, t) of the batch's Adam step t */
    float pad_;
} rtr_batch_step;

/* The batch *cursor of table: *step = table[*cursor], idx[i] =
 * order[table[*cursor].first + i] for i < n, then ++*cursor. */
RTR_API void rtr_batch_select(int64_t *idx, rtr_batch_step *step, int64_t *cursor, const int64_t *order,
                              const rtr_batch_step *table, int n);

/* rtr_heads_loss with its gradient scales read from step (backend memory). */
RTR_API void rtr_heads_loss_step(float *dout_c, float *dout_t, double *loss, const float *out_c, const float *out_t,
                                 const float *y_c, const float *y_t, const rtr_batch_step *step, int N, int K);

/* One head's pair table from per-model and per-strategy products:
 * C[k,j] = (P_m[pair_model[k],j] + P_s[pair_strategy[k],j]) + b1[j], in that
 * order. P_m: n_models x H (R_m·W_mᵀ), P_s: n_strategies x H, C: K x H. */
RTR_API void rtr_pair_table_forward(float *C, const float *P_m, const float *P_s, const float *b1,
                        const int32_t *pair_model, const int32_t *pair_strategy, int K, int H);

/* Backward of rtr_pair_table_forward, ACCUMULATED in pair order k = 0..K−1:
 * dP_m[pair_model[k],:] += dC[k,:], dP_s[pair_strategy[k],:] += dC[k,:],
 * db1 += dC[k,:]. dP_m: n_models x H, dP_s: n_strategies x H. */
RTR_API void rtr_pair_table_backward(float *dP_m, float *dP_s, float *db1, const float *dC,
                         const int32_t *pair_model, const int32_t *pair_strategy, int K, int H,
                         int n_models, int n_strategies);

/* -------------------------------------- route.cu: decisions and envelopes
 * Ties as in include/rtr/route.h: the higher score, then the cheaper, then
 * the more accurate, then the lower index. */

/* choice[i] = argmax_j λ·p[i,j] − (1−λ)·c[i,j] over allowed pairs (ties as in
 * the header comment), or −1 when query i has no allowed pair.
 * p, c: [n x k] row-major; choice: [n]. Scores are evaluated in double as
 * λ·(p + c) − c, the same expression the envelope uses. This is the plain C
 * reference of the CUDA kernel of the same name and argument order. */
RTR_API void rtr_route_argmax(int32_t *choice, const float *p, const float *c, double lambda,
                  int64_t n, int32_t k);

/* The envelopes of n queries (p, c: [n x k]): query i's m[i] pieces (0: no
 * pair allowed) in pair[i*k ...] and start[i*k ...], as rtr_envelope writes
 * them; slots past m[i] are left alone. The reference of the CUDA kernel of
 * the same name (which takes k <= RTR_ENVELOPE_KMAX). RTR_ERR_NOMEM when
 * scratch cannot be had. */
#define RTR_ENVELOPE_KMAX 128
RTR_API rtr_status rtr_route_envelope(int32_t *pair, double *start, int32_t *m, const float *p, const float *c, int64_t n,
                          int32_t k);

/* ------------------------------------------------ optim.cu: the optimiser */

#define RTR_ADAM_B1 0.9
#define RTR_ADAM_B2 0.999
#define RTR_ADAM_EPS 1e-8

/* Adam's bias-corrected step size for step t >= 1:
 * lr · sqrt(1 − β2^t) / (1 − β1^t), rounded to float. */
RTR_API float rtr_adam_step_size(double lr, int64_t t);

/* One Adam step (t >= 1, counting from 1) over n parameters, in the Adam
 * paper's efficient form (bias corrections folded into the step size, ε
 * added to sqrt(v) rather than to sqrt(v̂)):
 *   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²   (in double, stored float)
 *   param −= rtr_adam_step_size(lr, t) · m / (sqrt(v) + ε)  (in float).
 * param, m, v are updated in place; grad is read. */
RTR_API void rtr_adam_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, int64_t t);
/* rtr_adam_update with the step size step->adam_step (backend memory). */
RTR_API void rtr_adam_update_step(float *param, const float *grad, float *m, float *v, size_t n,
                                  const rtr_batch_step *step);

#ifdef __cplusplus
}
#endif
#endif
