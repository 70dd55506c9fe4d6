/* The CPU backend's oneDNN GEMMs (optional: CMake RTR_DNNL, Debian
 * libdnnl-dev): C = alpha · A · Bᵀ for the encoder's linear layers (torch
 * Linear layout, β = 0) through a oneDNN matmul primitive.
 *
 *   B (the weights, N x K): converted to the GEMM's input type and reordered
 *     into the layout the primitive asks for on first use, then cached until
 *     the backend drops it (a precision change, or the weights forgotten:
 *     cpu.c; B operands are taken to be constant weights in these
 *     precisions, as in int8).
 *   A (activations, M x K): converted per call (bf16: round to nearest even,
 *     rtr_bf16_round), M a run-time dimension of the primitive, so one
 *     primitive per weight matrix serves every batch size.
 *   C: fp32, accumulated in fp32 by oneDNN.
 *
 * bf16 (RTR_GEMM_BF16) runs only where the CPU has AVX-512 BF16 (cpuid):
 * oneDNN 2.6 has no bf16 matmul at all on an AVX2 CPU (primitive creation
 * answers "unimplemented", reference implementation included), and on
 * AVX-512 without BF16 it emulates the instructions, slower than OpenBLAS
 * fp32. CPU_GEMM_DNNL_F32 is the same path with fp32 inputs: it runs on any
 * CPU and is how the conversion, reorder, cache and call code is tested
 * against OpenBLAS where bf16 cannot run (tests/test_cpu_gemm_dnnl.c).
 *
 * Built without oneDNN, cpu_dnnl_check refuses both precisions and nothing
 * else here is called. */
#ifndef RTR_CPU_DNNL_H
#define RTR_CPU_DNNL_H

#include <stdbool.h>

#include "rtr/backend.h"

/* The oneDNN path with fp32 inputs: a CPU GEMM precision for tests (after
 * CPU_GEMM_I8 = 3, cpu_gemm_packed.h), not offered to users. */
#define CPU_GEMM_DNNL_F32 ((rtr_gemm_precision)4)

/* The bf16 path's arithmetic modelled on OpenBLAS, on every CPU: the same
 * weight GEMMs get both operands rounded to bf16 (rtr_bf16_round, as
 * here), and their products, exact in fp32, are summed by OpenBLAS's fp32
 * sgemm. That is what the AVX-512 BF16 instructions compute up to the
 * order of the sums (and their flushing of denormals), so the accuracy of
 * bf16 is checked through it where the hardware is absent
 * (tests/test_cpu_gemm.c; bench_encode_cpu --precision bf16-model). A CPU
 * GEMM precision for tests and benches, not offered to users. */
#define CPU_GEMM_BF16_MODEL ((rtr_gemm_precision)5)

typedef struct cpu_dnnl cpu_dnnl;

/* Whether this rtr was built with oneDNN, and its version ("2.6.3"; "" when
 * not built with it). */
bool cpu_dnnl_built(void);
const char *cpu_dnnl_version(void);

/* Whether bf16 runs here: oneDNN in the build, AVX-512 BF16 in the CPU, and
 * oneDNN making the bf16 matmul (asked once). */
bool cpu_dnnl_bf16_runs(void);

/* RTR_OK when precision p (RTR_GEMM_BF16 or CPU_GEMM_DNNL_F32) can run here;
 * else RTR_ERR_UNSUPPORTED with a message naming what is missing (oneDNN in
 * the build, AVX-512 BF16 in the CPU, a oneDNN that makes the primitive,
 * with the CPU's features). */
rtr_status cpu_dnnl_check(rtr_gemm_precision p);

/* State: oneDNN's engine, the cached weights and primitives, and per
 * calling thread a stream, the activation scratch and the primitives'
 * scratchpad. cpu_dnnl_gemm may be called from several threads of one
 * OpenMP team at once (each its own slot, omp_get_thread_num(); the cache
 * under a lock), as the encoder does when it splits a batch's texts over
 * the threads; create, drop and free may not overlap any call. */
rtr_status cpu_dnnl_create(cpu_dnnl **out);
/* Forget the cached weight matrices whose source matrix `drop` names
 * (drop(arg, src) true; drop NULL: all of them). */
void cpu_dnnl_drop(cpu_dnnl *d, bool (*drop)(const void *arg, const void *src), const void *arg);
/* The weight matrices cached now; *made: how many were ever made. 0 for NULL. */
int cpu_dnnl_cached(const cpu_dnnl *d, long *made);
void cpu_dnnl_free(cpu_dnnl *d);

/* C[M x N] (row stride N) = alpha · A[M x K] (row stride lda) · Bᵀ, B
 * [N x K] (row stride ldb), inputs in bf16 or fp32, on the calling thread,
 * or (split) its rows cut over the OpenMP threads, each run one
 * single-threaded oneDNN call: a row's bits are the same in any call and
 * at any thread count (tests/test_cpu_gemm_dnnl.c). RTR_ERR_NOMEM, or
 * RTR_ERR_UNSUPPORTED naming oneDNN's status when it has no primitive. */
rtr_status cpu_dnnl_gemm(cpu_dnnl *d, bool bf16, bool split, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float *C);

#endif
