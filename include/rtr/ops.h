/* Plain C reference ops of the sentence encoder (BERT / MPNet forward pass),
 * in the style of llm.c: every op is a loop nest over plain float arrays,
 * readable rather than fast. The CUDA kernels in kernels/ have the SAME names
 * and argument order (adding a stream) and are tested against these.
 *
 * Shapes: B = batch rows, T = padded sequence length, C = hidden size,
 * NH = attention heads (head size C / NH), N = B * T rows of a [N x C] matrix.
 * Every sequence is left-aligned: row b holds lens[b] real tokens followed by
 * padding. GEMMs (x · Wᵀ) are not ops here: they go through cblas_sgemm (CPU)
 * or cuBLAS (GPU). All arrays are row-major, caller-allocated; `out` may not
 * alias an input unless said so. */
#ifndef RTR_OPS_H
#define RTR_OPS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[b,t,:] = LayerNorm(wte[ids[b,t]] + wpe[pos_ids[b,t]] + (wtt ? wtt : 0))
 * with weight ln_w, bias ln_b and eps. ids, pos_ids: [B x T]; wte: [V x C];
 * wpe: [P x C]; wtt: one token-type row [C] or NULL (MPNet has none);
 * out: [B x T x C]. Ids must already be in range (the encoder checks them). */
void embedding_layernorm_forward(float *out, const int32_t *ids, const int32_t *pos_ids,
                                 const float *wte, const float *wpe, const float *wtt,
                                 const float *ln_w, const float *ln_b, float eps,
                                 int B, int T, int C);

/* MPNet's relative position bucket of query i and key j (0-based indices):
 * n = i - j; half the buckets per direction (offset num_buckets/2 when n < 0),
 * exact below num_buckets/4, logarithmic up to max_distance, capped. Computed
 * in float like transformers' MPNet (torch float32 log). */
int relative_position_bucket(int i, int j, int num_buckets, int max_distance);

/* bias[h,i,j] = table[relative_position_bucket(i, j, ...) * NH + h].
 * table: [num_buckets x NH] (MPNet's relative_attention_bias.weight);
 * bias: [NH x T x T]. Computed once per T and shared by every layer. */
void position_bias_forward(float *bias, const float *table, int T, int NH,
                           int num_buckets, int max_distance);

/* out[n,c] = inp[n,c] + bias[c]; inp [N x C], bias [C]. out may alias inp. */
void bias_add_forward(float *out, const float *inp, const float *bias, int N, int C);

/* Scaled dot-product self-attention over a fused qkv = [B x T x 3C] (per row:
 * q | k | v, each C = NH heads x hs). For query t and key s of row b:
 * score = q·k / sqrt(hs) + (bias ? bias[h,t,s] : 0), keys s >= lens[b] are
 * masked out, softmax over keys, out = Σ p · v.
 * att: scratch [B x NH x T x T] (receives the probabilities);
 * out: [B x T x C]; rows t >= lens[b] of out are set to 0. */
void attention_forward(float *out, float *att, const float *qkv, const float *bias,
                       const int32_t *lens, int B, int T, int C, int NH);

/* out[n,c] = gelu(inp[n,c] + bias[c]), exact erf GELU (hidden_act "gelu").
 * inp [N x C], bias [C]. out may alias inp. */
void bias_gelu_forward(float *out, const float *inp, const float *bias, int N, int C);

/* out[n,:] = LayerNorm(inp[n,:] + bias + residual[n,:]) with ln_w, ln_b, eps:
 * the post-LN residual step of a BERT/MPNet block, where inp is the GEMM
 * output before its bias. inp, residual, out: [N x C]; out may alias residual
 * or inp. */
void residual_layernorm_forward(float *out, const float *inp, const float *bias,
                                const float *residual, const float *ln_w,
                                const float *ln_b, float eps, int N, int C);

/* sentence-transformers mean pooling then L2 normalisation:
 * out[b,:] = m / max(|m|, 1e-12) with m = mean of inp[b,t,:] over t < lens[b]
 * (special tokens included); a row with lens[b] == 0 gives zeros.
 * inp [B x T x C], out [B x C]. */
void mean_pool_l2norm_forward(float *out, const float *inp, const int32_t *lens,
                              int B, int T, int C);

#ifdef __cplusplus
}
#endif
#endif
