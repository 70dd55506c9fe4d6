/* The plain-C references of the bf16 encoder path: the GPU encoder's
 * activations live in bf16 between ops (half the bytes of fp32, the
 * encoder's memory traffic being what limits it), every op computes in
 * fp32 and rounds its output to bf16 once (round to nearest even, as
 * __float2bfloat16_rn). Kernels of the same names and argument order (plus
 * a stream): kernels/encoder.cu (the elementwise and LayerNorm ops, 16-byte
 * accesses, 8 elements a thread) and kernels/attention.cu (flash attention on
 * tensor cores); references: src/ref/encoder.c, src/ref/attention.c,
 * src/ref/gemm.c. Shapes and masking as their fp32 counterparts in
 * include/rtr/ops.h; weights (embeddings, biases, LayerNorm parameters)
 * stay fp32, the GEMM weights are bf16. */
#ifndef RTR_OPS_BF16_H
#define RTR_OPS_BF16_H

#include "rtr/export.h"
#include "rtr/ops.h"

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A bf16 value as its 16 bits (the top half of the fp32 pattern). */
typedef uint16_t rtr_bf16;

/* f rounded to the nearest bf16, ties to even; NaN stays NaN (quiet). */
static inline rtr_bf16 rtr_bf16_round(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (rtr_bf16)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (rtr_bf16)(x >> 16);
}

static inline float rtr_bf16_float(rtr_bf16 h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* rtr_embedding_layernorm_forward with the output rounded to bf16. */
RTR_API void rtr_embedding_layernorm_bf16(rtr_bf16 *out, const int32_t *ids, const int32_t *pos_ids,
                                          const float *wte, const float *wpe, const float *wtt, const float *ln_w,
                                          const float *ln_b, float eps, int B, int T, int C);

/* rtr_attention_forward on the bf16 output of the QKV GEMM, its bias not
 * yet added: qkv [B x T x 3C] (q | k | v per row), qkv_bias [3C] (NULL: none)
 * added here in fp32 and the sum rounded to bf16 (the tensor cores' operand),
 * so the GEMM needs no bias pass; bias: the position bias [NH x T x T] or
 * NULL. out [B x T x C] in bf16, rows t >= lens[b] zero; no probabilities:
 * nothing of size T x T is written (the kernel is flash-style). Scores,
 * softmax and the weighted sum in fp32, except that the probabilities
 * multiply V as bf16 (tensor-core operands; the kernel rounds them relative
 * to the running maximum of its key tile, this reference relative to the
 * final one) and their normalisation (Σ of the unrounded p) divides the
 * fp32 sum. Head size C / NH: 32, 64 or 128 (C a multiple of 8). */
RTR_API void rtr_attention_bf16(rtr_bf16 *out, const rtr_bf16 *qkv, const float *qkv_bias, const float *bias,
                                const int32_t *lens, int B, int T, int C, int NH);

/* rtr_bias_gelu_forward on bf16 (exact erf GELU). out may alias inp. */
RTR_API void rtr_bias_gelu_bf16(rtr_bf16 *out, const rtr_bf16 *inp, const float *bias, int N, int C);

/* rtr_residual_layernorm_forward on bf16 inp and residual, bf16 out (out
 * may alias residual or inp): the LayerNorm emits the next GEMM's input. */
RTR_API void rtr_residual_layernorm_bf16(rtr_bf16 *out, const rtr_bf16 *inp, const float *bias,
                                         const rtr_bf16 *residual, const float *ln_w, const float *ln_b, float eps,
                                         int N, int C);

/* rtr_pool_forward of bf16 rows; out [B x C] in fp32. */
RTR_API void rtr_pool_bf16(float *out, const rtr_bf16 *inp, const int32_t *lens, int B, int T, int C,
                           rtr_pool_mode mode, bool normalize);

/* The bf16 linear layer (the backend's gemm_bf16, cuBLASLt on the GPU):
 * out[n,o] = bf16(Σ_i inp[n,i]·w[o,i]) with inp [N x IC], w [OC x IC]
 * (torch Linear layout) and fp32 accumulation; with gelu_bias [OC] (the
 * feed-forward's first layer) out[n,o] = bf16(gelu(Σ + gelu_bias[o])), exact
 * erf GELU, rounded once. */
RTR_API void rtr_gemm_bf16(rtr_bf16 *out, const rtr_bf16 *inp, const rtr_bf16 *w, const float *gelu_bias, int N,
                           int IC, int OC);

#ifdef __cplusplus
}
#endif
#endif
