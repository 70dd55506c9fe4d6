/* rtr compute backends: one table of operations (function pointers plus a
 * context, as in ggml's backend) with a CPU implementation that is always
 * built (OpenBLAS + the plain-C references) and a CUDA one (cuBLASLt + the
 * kernels in kernels/) registered when rtr is built with CUDA.
 *
 * Every array an op reads or writes lives in the backend's memory: allocate
 * it with rtr_backend_alloc and move data with upload/download (on the CPU
 * these are malloc and memcpy). Ops take the same arguments, in the same
 * order, as the plain-C references they stand for (include/rtr/ops.h,
 * predictor.h, route.h, optim.h); the CUDA ones run on the backend's stream, so a
 * result is ready after rtr_backend_synchronize or a download.
 *
 * No GPU or no driver is a normal case: "auto" falls back to the CPU with one
 * line on stderr; "cuda" then fails with RTR_ERR_DEVICE. A failing op returns
 * RTR_ERR_DEVICE naming the op, its sizes and the CUDA error (never a silent
 * wrong result). Ownership: rtr_backend_init fills a caller-owned struct;
 * rtr_backend_free releases what it holds (not the memory allocated through
 * it, which the caller frees with rtr_backend_free_mem first). */
#ifndef RTR_BACKEND_H
#define RTR_BACKEND_H

#include "rtr/predictor.h"
#include "rtr/rtr.h"
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    RTR_OP_SGEMM = 0,
    RTR_OP_EMBEDDING_LAYERNORM,
    RTR_OP_POSITION_BIAS,
    RTR_OP_BIAS_ADD,
    RTR_OP_ATTENTION,
    RTR_OP_BIAS_GELU,
    RTR_OP_RESIDUAL_LAYERNORM,
    RTR_OP_MEAN_POOL_L2NORM,
    RTR_OP_HEADS_FORWARD,
    RTR_OP_HEADS_LOSS,
    RTR_OP_HEADS_BACKWARD,
    RTR_OP_HEADS_ACTIVATE,
    RTR_OP_ROUTE_ARGMAX,
    RTR_OP_ADAM_UPDATE,
    RTR_OP_GATHER_ROWS,
    RTR_OP_PAIR_TABLE_FORWARD,
    RTR_OP_PAIR_TABLE_BACKWARD,
    RTR_OP_ROUTE_ENVELOPE,
    RTR_OP_HEADS_SCORE,
    RTR_OP_COUNT
} rtr_op;

/* Input precision of sgemm: the CPU always computes in fp32; CUDA rounds A
 * and B to bf16 or fp16 for tensor cores and accumulates in fp32. */
typedef enum { RTR_GEMM_F32 = 0, RTR_GEMM_BF16, RTR_GEMM_F16 } rtr_gemm_precision;

/* The operation table. ctx is the backend's own state. Shapes and meaning of
 * each op: see the reference named in its comment. */
typedef struct rtr_backend_iface {
    const char *name; /* "cpu", "cuda", "cuda-emu" */
    bool (*supports_op)(void *ctx, rtr_op op);
    void (*destroy)(void *ctx);

    rtr_status (*alloc)(void *ctx, void **ptr, size_t bytes);
    void (*free_mem)(void *ctx, void *ptr);
    rtr_status (*upload)(void *ctx, void *dst, const void *src, size_t bytes);
    rtr_status (*download)(void *ctx, void *dst, const void *src, size_t bytes);
    /* bytes of backend memory at ptr set to zero, ordered with the ops */
    rtr_status (*zero)(void *ctx, void *ptr, size_t bytes);
    rtr_status (*synchronize)(void *ctx);
    /* Page-locked host memory for the asynchronous copies (malloc on the CPU). */
    rtr_status (*host_alloc)(void *ctx, void **ptr, size_t bytes);
    void (*host_free)(void *ctx, void *ptr);
    /* Asynchronous copies between host_alloc memory and backend memory. An
     * upload runs beside the ops already queued (CUDA: on a copy stream) and
     * ops queued after it wait for it; a download is queued behind the ops
     * before it. Both are complete only after synchronize: the host buffer
     * must not be touched before. */
    rtr_status (*upload_async)(void *ctx, void *dst, const void *src, size_t bytes);
    rtr_status (*download_async)(void *ctx, void *dst, const void *src, size_t bytes);
    rtr_status (*set_gemm_precision)(void *ctx, rtr_gemm_precision p);

    /* Row-major C[M x N] = alpha · op(A) · op(B) + beta · C, as
     * cblas_sgemm(CblasRowMajor, ...): op(A) is M x K, op(B) is K x N. */
    rtr_status (*sgemm)(void *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

    /* ops.h */
    rtr_status (*embedding_layernorm_forward)(void *ctx, float *out, const int32_t *ids, const int32_t *pos_ids,
                                              const float *wte, const float *wpe, const float *wtt,
                                              const float *ln_w, const float *ln_b, float eps, int B, int T, int C);
    rtr_status (*position_bias_forward)(void *ctx, float *bias, const float *table, int T, int NH,
                                        int num_buckets, int max_distance);
    rtr_status (*bias_add_forward)(void *ctx, float *out, const float *inp, const float *bias, int N, int C);
    rtr_status (*attention_forward)(void *ctx, float *out, float *att, const float *qkv, const float *bias,
                                    const int32_t *lens, int B, int T, int C, int NH);
    rtr_status (*bias_gelu_forward)(void *ctx, float *out, const float *inp, const float *bias, int N, int C);
    rtr_status (*residual_layernorm_forward)(void *ctx, float *out, const float *inp, const float *bias,
                                             const float *residual, const float *ln_w, const float *ln_b,
                                             float eps, int N, int C);
    rtr_status (*mean_pool_l2norm_forward)(void *ctx, float *out, const float *inp, const int32_t *lens,
                                           int B, int T, int C);

    /* predictor.h (loss: 2 doubles in backend memory, accumulated) */
    rtr_status (*heads_forward)(void *ctx, float *out_c, float *out_t, const float *A_c, const float *A_t,
                                const float *C_c, const float *C_t, const float *w2_c, const float *b2_c,
                                const float *w2_t, const float *b2_t, int N, int K, int H);
    rtr_status (*heads_score)(void *ctx, float *out_c, float *out_t, const float *X_c, const float *X_t,
                              const float *G_c, const float *G_t, const float *s_c, const float *s_t,
                              const float *beta_c, const float *beta_t, int N, int K, int H);
    rtr_status (*heads_loss)(void *ctx, float *dout_c, float *dout_t, double *loss, const float *out_c,
                             const float *out_t, const float *y_c, const float *y_t, float gscale_c,
                             float gscale_t, int N, int K);
    rtr_status (*heads_backward)(void *ctx, float *dA_c, float *dA_t, float *dC_c, float *dC_t, float *dw2_c,
                                 float *db2_c, float *dw2_t, float *db2_t, const float *dout_c,
                                 const float *dout_t, const float *A_c, const float *A_t, const float *C_c,
                                 const float *C_t, const float *w2_c, const float *w2_t, int N, int K, int H);
    rtr_status (*heads_activate)(void *ctx, float *p_correct, float *tokens, const float *out_c,
                                 const float *out_t, int token_target, float token_scale, int N, int K);

    /* route.h */
    rtr_status (*route_argmax)(void *ctx, int32_t *choice, const float *p, const float *c, double lambda,
                               int64_t n, int32_t k);

    /* optim.h */
    rtr_status (*adam_update)(void *ctx, float *param, const float *grad, float *m, float *v, size_t n, double lr,
                              int64_t t);

    /* predictor.h: the trainer's batch gather and pair tables */
    rtr_status (*gather_rows)(void *ctx, float *out, const float *in, const int64_t *idx, int n, int cols);
    rtr_status (*pair_table_forward)(void *ctx, float *C, const float *P_m, const float *P_s, const float *b1,
                                     const int32_t *pair_model, const int32_t *pair_strategy, int K, int H);
    rtr_status (*pair_table_backward)(void *ctx, float *dP_m, float *dP_s, float *db1, const float *dC,
                                      const int32_t *pair_model, const int32_t *pair_strategy, int K, int H,
                                      int n_models, int n_strategies);

    /* route.h: every query's λ envelope */
    rtr_status (*route_envelope)(void *ctx, int32_t *pair, double *start, int32_t *m, const float *p,
                                 const float *c, int64_t n, int32_t k);
} rtr_backend_iface;

typedef struct rtr_backend {
    const rtr_backend_iface *iface;
    void *ctx;
    char device[128]; /* what runs the ops, e.g. "NVIDIA H100 80GB HBM3 (sm_90)" or "CPU, 16 threads" */
} rtr_backend;

/* Open a backend by name: "cpu", "cuda" (device 0) or "auto" (CUDA when a
 * device answers, else the CPU with one line on stderr saying why).
 * RTR_ERR_DEVICE for "cuda" without a usable device or a build without CUDA;
 * RTR_ERR_INVALID for another name. */
rtr_status rtr_backend_init(rtr_backend *b, const char *name);
void rtr_backend_free(rtr_backend *b);

/* The CPU backend, always available: the fast CPU paths where they exist
 * (src/ops_cpu.c, GEMMs split over the OpenMP threads). */
rtr_status rtr_backend_cpu_open(rtr_backend *b);
/* The reference backend: every op is its plain-C reference, one BLAS call
 * per GEMM. The yardstick the kernel tests compare other backends with. */
rtr_status rtr_backend_ref_open(rtr_backend *b);
#ifdef RTR_WITH_CUDA
/* The CUDA backend on `device` (kernels/backend_cuda.cu). */
rtr_status rtr_backend_cuda_open(rtr_backend *b, int device);
#endif

/* Whether b implements op (callers ask before they call). */
bool rtr_backend_supports(const rtr_backend *b, rtr_op op);
const char *rtr_op_name(rtr_op op);

/* Memory in the backend: *ptr NULL on failure (RTR_ERR_NOMEM / _DEVICE). */
rtr_status rtr_backend_alloc(rtr_backend *b, void **ptr, size_t bytes);
void rtr_backend_free_mem(rtr_backend *b, void *ptr);
rtr_status rtr_backend_upload(rtr_backend *b, void *dst, const void *src, size_t bytes);
rtr_status rtr_backend_download(rtr_backend *b, void *dst, const void *src, size_t bytes);
rtr_status rtr_backend_zero(rtr_backend *b, void *ptr, size_t bytes);
rtr_status rtr_backend_synchronize(rtr_backend *b);
rtr_status rtr_backend_host_alloc(rtr_backend *b, void **ptr, size_t bytes);
void rtr_backend_host_free(rtr_backend *b, void *ptr);
rtr_status rtr_backend_upload_async(rtr_backend *b, void *dst, const void *src, size_t bytes);
rtr_status rtr_backend_download_async(rtr_backend *b, void *dst, const void *src, size_t bytes);
/* Whether b's memory is the host's (upload/download are plain copies and
 * host arrays may be passed to ops directly). */
bool rtr_backend_is_host(const rtr_backend *b);
/* Input precision of later sgemm calls (default RTR_GEMM_F32). */
rtr_status rtr_backend_set_gemm_precision(rtr_backend *b, rtr_gemm_precision p);

/* ------------------------------------------------ pipeline stages on a backend */

/* rtr_predictor_score on backend b: p_correct and tokens (N x K each, host
 * memory, caller-allocated) for the N query embeddings emb (N x D, host).
 * The folded tables of heads_score are built on the host once and uploaded
 * once; queries stream through in chunks of chunk_rows (0: 16384, about
 * 150 MB of backend memory at D = H = 768) with pinned double buffers, each
 * chunk as two GEMMs (A = E·(|w2|·W_q)ᵀ), heads_score and heads_activate.
 * Equal to rtr_predictor_score up to float rounding. RTR_ERR_NUMERIC when
 * emb holds NaN/inf, naming the row (found when its chunk is read, so
 * earlier chunks may have been computed); backend errors as the failing op
 * reports them. */
rtr_status rtr_predictor_score_backend(rtr_backend *b, const rtr_predictor *p, const float *emb, int64_t N,
                                       int64_t chunk_rows, float *p_correct, float *tokens);

/* rtr_predictor_score_backend on a shard's /embedding/query (n x p->D),
 * streamed: chunks of chunk_rows (0: 16384) read from HDF5 into the pinned
 * double buffers, each uploaded beside the previous chunk's compute, scores
 * downloaded and copied out while the next chunk computes. *N = n;
 * *p_correct, *tokens (n x K, the caller frees). RTR_ERR_FORMAT naming the
 * file (and rows) for an unreadable shard or a wrong width; RTR_ERR_NUMERIC
 * naming the row for NaN/inf; nothing returned on error. */
rtr_status rtr_predictor_score_shard(rtr_backend *b, const rtr_predictor *p, const char *path, int64_t chunk_rows,
                                     int64_t *N, float **p_correct, float **tokens);

#ifdef __cplusplus
}
#endif
#endif
