/* Faster CPU paths of three encoder ops (include/rtr/ops.h has the plain
 * references, same arguments): attention through per-head sgemm calls,
 * GELU with a branch-free erf the compiler vectorises, and the residual
 * LayerNorm with vector reductions. tests/test_ops.c
 * checks them against the references. */
#ifndef RTR_OPS_CPU_H
#define RTR_OPS_CPU_H

#include <stdint.h>

/* rtr_attention_forward with q·kᵀ and p·v as sgemm calls on each (row, head),
 * only over the lens[b] real tokens. Same contract as rtr_attention_forward;
 * call it with OpenBLAS set to one thread (it parallelises over heads). */
void attention_forward_cpu(float *out, float *att, const float *qkv, const float *bias,
                           const int32_t *lens, int B, int T, int C, int NH);

/* rtr_bias_gelu_forward with erf from a vectorisable erfc approximation
 * (fractional error < 1.2e-7). */
void bias_gelu_forward_cpu(float *out, const float *inp, const float *bias, int N, int C);

/* rtr_residual_layernorm_forward with the row's sum, mean and variance as
 * vector reductions (the reference's serial sums do not vectorise): the
 * same values up to the order of the float additions. */
void residual_layernorm_forward_cpu(float *out, const float *inp, const float *bias, const float *residual,
                                    const float *ln_w, const float *ln_b, float eps, int N, int C);

/* The row block of OpenBLAS's sgemm on this CPU (probed once, cpu.c): a row
 * of C = A·Bᵀ gets the same bits in every call whose M is a multiple of it,
 * at the same offset modulo it. The CPU backend splits GEMMs at multiples of
 * it, so a split changes no row's bits. A caller padding each text to a
 * multiple of it would embed a text to the same bits alone or in any batch;
 * the encoder does not (+6-7% GEMM rows on short questions, 3.7% slower
 * measured). 0: none found (no such promise). */
int cpu_sgemm_row_block(void);

#endif
