/* GEMMs on weights packed once, for the CPU backend's sgemm slot when the
 * caller has declared its B operands constant (the encoder's linear layers,
 * C = alpha · A · Bᵀ in the torch Linear layout): int8 weights with dynamic
 * activation quantisation.
 *
 * (An fp32 kind on the same packed panels was measured and dropped: 0.5-1.1x
 * OpenBLAS at the encoder's shapes, bench/bench_cpu_gemm.c; fp32 stays on
 * OpenBLAS. Tried again with K in blocks of 256 (a panel's block in L1),
 * A packed per 6-row tile and no C zeroing pass: 0.65-1.04x, docs/ENCODER.md.)
 *
 * int8 weights, dynamic activations:
 *   B (N x K): int8, one symmetric scale per output channel (row of B),
 *     sb[n] = max_k |B[n,k]| / 127, q = rint(B[n,k] / sb[n]).
 *   A (M x K): one symmetric scale per row, computed per call, on
 *     La = cpu_i8_a_levels(K) levels each side (sa[m] = max_k |A[m,k]| /
 *     La): as many as keep the int32 sums exact, 32767 (16 bits) up to
 *     K = 516, 5504 (13.4 bits) at K = 3072. Transformer activations have a
 *     few outlier features per row; 8-bit rows lost them (MiniLM cosine
 *     0.986, mpnet 0.950 to sentence-transformers on the shortest golden
 *     texts), these do not.
 *   C[m,n] = (float)(Σ_k qa[m,k] · qb[n,k]) · (alpha · sa[m] · sb[n]).
 *   The integer sums are exact, so the only error is the rounding of A and
 *   B: at most Σ_k (|a_k| · sb/2 + |b_k| · sa/2 + sa · sb/4) per element.
 *   Kernel: AVX2 vpmaddwd on int16 pairs, 16 multiply-adds per instruction
 *   (an fp32 FMA does 8) and half the bytes of fp32 per operand. Whether
 *   that is faster depends on the core: Intel AVX2 cores issue vpmaddwd on
 *   two ports, Zen 3 on one (bench/bench_cpu_gemm.c measures it).
 *
 * Per-row work only: each output row depends on its own input row, so a
 * text gives the same embedding alone or in any batch. The kernel needs
 * AVX2 + FMA, checked at run time (cpu_features.h), whatever -march built
 * the library. */
#ifndef RTR_CPU_GEMM_PACKED_H
#define RTR_CPU_GEMM_PACKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtr/backend.h"

/* The CPU's int8 GEMM precision, until include/rtr/backend.h's
 * rtr_gemm_precision has a value for it. It takes B operands of A·Bᵀ to be
 * constant weights until the precision changes. */
#define CPU_GEMM_I8 ((rtr_gemm_precision)3)

/* Weight levels each side of zero (int8). */
#define CPU_I8_B_LEVELS 127
/* Largest K the int8 kernel takes (at least 2 activation levels). */
#define CPU_I8_MAX_K (1 << 20)

/* B quantised and packed: ceil(N/16) panels of 16 columns, each [Kp/2
 * pairs][16 columns][2] int16 (Kp: K rounded up to even), zero-padded in K
 * and N, with per-channel scales. */
typedef struct {
    const float *src;  /* the float matrix it was made from (cache key with ldb, N, K) */
    int ldb, N, K, Kp;
    int16_t *q;        /* 32-byte aligned */
    float *scale;      /* ceil(N/16) · 16 per-channel scales, 0 past N */
} cpu_packed;

/* Whether this CPU runs the int8 kernel (AVX2 + FMA). */
bool cpu_packed_available(void);

/* Activation levels each side of zero for inner dimension K: the most that
 * keep Σ_k |qa · qb| below 2^31, at most 32767. */
int cpu_i8_a_levels(int K);

/* Quantise and pack B (N x K, row n at B + n·ldb) into *out. RTR_ERR_NOMEM,
 * or RTR_ERR_INVALID for K > CPU_I8_MAX_K. Parallel over the OpenMP threads. */
rtr_status cpu_pack_b(cpu_packed *out, const float *B, int ldb, int N, int K);
void cpu_packed_free(cpu_packed *m);

/* C[M x N] = alpha · A[M x K] · Bᵀ (β = 0), A quantised per row into
 * scratch (at least cpu_packed_scratch_bytes(B, M) bytes, 32-byte aligned).
 * Rows are split over the OpenMP threads when `parallel`. Needs
 * cpu_packed_available(). */
size_t cpu_packed_scratch_bytes(const cpu_packed *B, int M);
void cpu_packed_gemm(const cpu_packed *B, int M, float alpha, const float *A, int lda, float *C, int ldc,
                     void *scratch, bool parallel);

#endif
