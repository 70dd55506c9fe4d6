/* rtr compute backends: one table of operations (function pointers plus a
 * context, as in ggml's backend) with a CPU implementation that is always
 * built (OpenBLAS + the plain-C references) and a CUDA one (cuBLASLt + the
 * kernels in kernels/) registered when rtr is built with CUDA.
 *
 * Every array an op reads or writes lives in the backend's memory: allocate
 * it with rtr_backend_alloc and move data with upload/download (on the CPU
 * these are malloc and memcpy). Ops take the same arguments, in the same
 * order, as the plain-C references they stand for (include/rtr/ops.h); the
 * CUDA ones run on the backend's stream, so a result is ready after
 * rtr_backend_synchronize or a download. Whether a backend has an op is
 * rtr_backend_supports (a NULL slot: it has not).
 *
 * No GPU or no driver is a normal case: "auto" falls back to the CPU with one
 * line on stderr (rtr_note: "rtr: no CUDA device; computing on the CPU",
 * silent under --quiet); "cuda" then fails with RTR_ERR_DEVICE. A failing op returns
 * RTR_ERR_DEVICE naming the op, its sizes and the CUDA error (never a silent
 * wrong result). Ownership: rtr_backend_init fills a caller-owned struct;
 * rtr_backend_free releases what it holds (not the memory allocated through
 * it, which the caller frees with rtr_backend_free_mem first). */
#ifndef RTR_BACKEND_H
#define RTR_BACKEND_H

#include "rtr/export.h"
#include "rtr/ops.h"
#include "rtr/ops_bf16.h"
#include "rtr/rtr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ops, written once. Each row is X(ENUM, name, ret, params, args):
 * name is the op, the iface slot, and (prefixed rtr_) both its plain-C
 * reference in include/rtr/ops.h and the CUDA launcher of the same name in
 * kernels/launchers.cuh; params are the reference's parameters and args their
 * names, in order; ret is VOID or STATUS, what the reference returns. The
 * enum, the op names, the interface slots and the adapters that forward a
 * slot to the reference (CPU) or to the launcher with the backend's stream
 * (CUDA) all follow from this list. */
#define RTR_BACKEND_OPS(X)                                                                                        \
    X(EMBEDDING_LAYERNORM_FORWARD, embedding_layernorm_forward, VOID,                                            \
      (float *out, const int32_t *ids, const int32_t *pos_ids, const float *wte, const float *wpe,                \
       const float *wtt, const float *ln_w, const float *ln_b, float eps, int B, int T, int C),                  \
      (out, ids, pos_ids, wte, wpe, wtt, ln_w, ln_b, eps, B, T, C))                                              \
    X(POSITION_BIAS_FORWARD, position_bias_forward, VOID,                                                        \
      (float *bias, const float *table, int T, int NH, int num_buckets, int max_distance),                       \
      (bias, table, T, NH, num_buckets, max_distance))                                                           \
    X(BIAS_ADD_FORWARD, bias_add_forward, VOID, (float *out, const float *inp, const float *bias, int N, int C),  \
      (out, inp, bias, N, C))                                                                                    \
    X(ATTENTION_FORWARD, attention_forward, VOID,                                                                \
      (float *out, float *att, const float *qkv, const float *bias, const int32_t *lens, int B, int T, int C,    \
       int NH),                                                                                                  \
      (out, att, qkv, bias, lens, B, T, C, NH))                                                                  \
    X(BIAS_GELU_FORWARD, bias_gelu_forward, VOID, (float *out, const float *inp, const float *bias, int N, int C), \
      (out, inp, bias, N, C))                                                                                    \
    X(RESIDUAL_LAYERNORM_FORWARD, residual_layernorm_forward, VOID,                                              \
      (float *out, const float *inp, const float *bias, const float *residual, const float *ln_w,                \
       const float *ln_b, float eps, int N, int C),                                                              \
      (out, inp, bias, residual, ln_w, ln_b, eps, N, C))                                                         \
    X(POOL_FORWARD, pool_forward, VOID,                                                                          \
      (float *out, const float *inp, const int32_t *lens, int B, int T, int C, rtr_pool_mode mode,               \
       bool normalize),                                                                                          \
      (out, inp, lens, B, T, C, mode, normalize))                                                                \
    X(HEADS_FORWARD, heads_forward, VOID,                                                                        \
      (float *out_c, float *out_t, const float *A_c, const float *A_t, const float *C_c, const float *C_t,       \
       const float *w2_c, const float *b2_c, const float *w2_t, const float *b2_t, int N, int K, int H),         \
      (out_c, out_t, A_c, A_t, C_c, C_t, w2_c, b2_c, w2_t, b2_t, N, K, H))                                       \
    X(HEADS_SCORE, heads_score, VOID,                                                                            \
      (float *out_c, float *out_t, const float *X_c, const float *X_t, const float *G_c, const float *G_t,       \
       const float *s_c, const float *s_t, const float *beta_c, const float *beta_t, int N, int K, int H),       \
      (out_c, out_t, X_c, X_t, G_c, G_t, s_c, s_t, beta_c, beta_t, N, K, H))                                     \
    X(HEADS_LOSS, heads_loss, VOID,                                                                              \
      (float *dout_c, float *dout_t, double *loss, const float *out_c, const float *out_t, const float *y_c,     \
       const float *y_t, float gscale_c, float gscale_t, int N, int K),                                          \
      (dout_c, dout_t, loss, out_c, out_t, y_c, y_t, gscale_c, gscale_t, N, K))                                  \
    X(HEADS_BACKWARD, heads_backward, VOID,                                                                      \
      (float *dA_c, float *dA_t, float *dC_c, float *dC_t, float *dw2_c, float *db2_c, float *dw2_t,             \
       float *db2_t, const float *dout_c, const float *dout_t, const float *A_c, const float *A_t,               \
       const float *C_c, const float *C_t, const float *w2_c, const float *w2_t, int N, int K, int H),           \
      (dA_c, dA_t, dC_c, dC_t, dw2_c, db2_c, dw2_t, db2_t, dout_c, dout_t, A_c, A_t, C_c, C_t, w2_c, w2_t, N, K, \
       H))                                                                                                       \
    X(HEADS_ACTIVATE, heads_activate, VOID,                                                                      \
      (float *p_correct, float *tokens, const float *out_c, const float *out_t, int token_target,                \
       float token_scale, int N, int K),                                                                         \
      (p_correct, tokens, out_c, out_t, token_target, token_scale, N, K))                                        \
    X(GATHER_ROWS, gather_rows, VOID, (float *out, const float *in, const int64_t *idx, int n, int cols),        \
      (out, in, idx, n, cols))                                                                                   \
    X(BATCH_SELECT, batch_select, VOID,                                                                          \
      (int64_t * idx, rtr_batch_step * step, int64_t * cursor, const int64_t *order, const rtr_batch_step *table,  \
       int n),                                                                                                   \
      (idx, step, cursor, order, table, n))                                                                      \
    X(HEADS_LOSS_STEP, heads_loss_step, VOID,                                                                    \
      (float *dout_c, float *dout_t, double *loss, const float *out_c, const float *out_t, const float *y_c,     \
       const float *y_t, const rtr_batch_step *step, int N, int K),                                              \
      (dout_c, dout_t, loss, out_c, out_t, y_c, y_t, step, N, K))                                                \
    X(PAIR_TABLE_FORWARD, pair_table_forward, VOID,                                                              \
      (float *C, const float *P_m, const float *P_s, const float *b1, const int32_t *pair_model,                 \
       const int32_t *pair_strategy, int K, int H),                                                              \
      (C, P_m, P_s, b1, pair_model, pair_strategy, K, H))                                                        \
    X(PAIR_TABLE_BACKWARD, pair_table_backward, VOID,                                                            \
      (float *dP_m, float *dP_s, float *db1, const float *dC, const int32_t *pair_model,                         \
       const int32_t *pair_strategy, int K, int H, int n_models, int n_strategies),                              \
      (dP_m, dP_s, db1, dC, pair_model, pair_strategy, K, H, n_models, n_strategies))                            \
    X(ROUTE_ARGMAX, route_argmax, VOID,                                                                          \
      (int32_t *choice, const float *p, const float *c, double lambda, int64_t n, int32_t k),                    \
      (choice, p, c, lambda, n, k))                                                                              \
    X(ROUTE_ENVELOPE, route_envelope, STATUS,                                                                    \
      (int32_t *pair, double *start, int32_t *m, const float *p, const float *c, int64_t n, int32_t k),          \
      (pair, start, m, p, c, n, k))                                                                              \
    X(ADAM_UPDATE, adam_update, VOID,                                                                            \
      (float *param, const float *grad, float *m, float *v, size_t n, double lr, int64_t t),                     \
      (param, grad, m, v, n, lr, t))                                                                             \
    X(ADAM_UPDATE_STEP, adam_update_step, VOID,                                                                  \
      (float *param, const float *grad, float *m, float *v, size_t n, const rtr_batch_step *step),               \
      (param, grad, m, v, n, step))                                                                              \
    X(EMBEDDING_LAYERNORM_BF16, embedding_layernorm_bf16, VOID,                                                  \
      (rtr_bf16 * out, const int32_t *ids, const int32_t *pos_ids, const float *wte, const float *wpe,           \
       const float *wtt, const float *ln_w, const float *ln_b, float eps, int B, int T, int C),                  \
      (out, ids, pos_ids, wte, wpe, wtt, ln_w, ln_b, eps, B, T, C))                                              \
    X(ATTENTION_BF16, attention_bf16, VOID,                                                                      \
      (rtr_bf16 * out, const rtr_bf16 *qkv, const float *qkv_bias, const float *bias, const int32_t *lens, int B, \
       int T, int C, int NH),                                                                                    \
      (out, qkv, qkv_bias, bias, lens, B, T, C, NH))                                                             \
    X(BIAS_GELU_BF16, bias_gelu_bf16, VOID, (rtr_bf16 * out, const rtr_bf16 *inp, const float *bias, int N, int C), \
      (out, inp, bias, N, C))                                                                                    \
    X(RESIDUAL_LAYERNORM_BF16, residual_layernorm_bf16, VOID,                                                    \
      (rtr_bf16 * out, const rtr_bf16 *inp, const float *bias, const rtr_bf16 *residual, const float *ln_w,      \
       const float *ln_b, float eps, int N, int C),                                                              \
      (out, inp, bias, residual, ln_w, ln_b, eps, N, C))                                                         \
    X(POOL_BF16, pool_bf16, VOID,                                                                                \
      (float *out, const rtr_bf16 *inp, const int32_t *lens, int B, int T, int C, rtr_pool_mode mode,            \
       bool normalize),                                                                                          \
      (out, inp, lens, B, T, C, mode, normalize))

/* "(void *ctx, <params>)": a slot's parameter list from an op's params. */
#define RTR_OP_PARAMS(...) (void *ctx, __VA_ARGS__)

/* The two GEMMs (references: BLAS, and rtr_gemm_bf16; on the GPU both are
 * cuBLASLt, which needs the backend's handle: no launcher) then one per row
 * of the list. */
typedef enum {
    RTR_OP_SGEMM = 0,
    RTR_OP_GEMM_BF16,
#define RTR_X_ENUM(E, name, ret, params, args) RTR_OP_##E,
    RTR_BACKEND_OPS(RTR_X_ENUM)
#undef RTR_X_ENUM
    RTR_OP_COUNT
} rtr_op;

/* Input precision of sgemm: CUDA rounds A and B to bf16 or fp16 for tensor
 * cores and accumulates in fp32; the CPU computes in fp32, or in bf16 (its
 * linear layers through oneDNN, fp32 accumulation) where the build has
 * oneDNN and the CPU AVX-512 BF16 (src/backend/cpu_dnnl.h). */
typedef enum { RTR_GEMM_F32 = 0, RTR_GEMM_BF16, RTR_GEMM_F16 } rtr_gemm_precision;

/* What a backend reports of itself (rtr_backend_caps), so callers ask for a
 * capability instead of recognising a backend by name. */
enum {
    /* Its ops may be called from several host threads at once on disjoint
     * arrays, each call computing on its calling thread with no state kept
     * between calls, at the GEMM precision now set (the CPU in fp32): the
     * encoder then runs each thread's share of a batch's texts alone. */
    RTR_CAP_CONCURRENT_OPS = 1u << 0,
    /* Its sgemm computes in bf16 at a speed worth it, within the accuracy
     * bound the encoder's bf16 is held to (the CPU with oneDNN and AVX-512
     * BF16), with a row's result independent of the other rows in the
     * call: the encoder's "auto" then picks bf16 (docs/ENCODER.md). */
    RTR_CAP_FAST_BF16 = 1u << 1,
};

/* The operation table. ctx is the backend's own state. A NULL op slot means
 * the backend does not implement that op (rtr_backend_supports says so). */
typedef struct rtr_backend_iface {
    const char *name; /* "cpu", "cpu-ref", "cuda", "cuda-emu" */
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
    /* Weights a caller keeps constant (hold) until it names them again
     * (forget), which it must do before it frees or changes them: what the
     * backend derives from the bytes [ptr, ptr + bytes) (the CPU's int8 and
     * bf16 packed weights) may then outlive precision changes, so an
     * encoder's packed weights are made once per encoder, not per encode
     * call. Derived forms of bytes not held are dropped at every precision
     * change, as before. NULL (the GPU backends, which derive nothing): a
     * no-op. */
    rtr_status (*hold_weights)(void *ctx, const void *ptr, size_t bytes);
    void (*forget_weights)(void *ctx, const void *ptr, size_t bytes);
    /* RTR_CAP_* bits (NULL: none) */
    unsigned (*caps)(void *ctx);
    /* Graphs (CUDA graphs; NULL where the backend has none, as the CPU and
     * the emulator): between capture_begin and capture_end the ops queued
     * are recorded, not run, into *graph (NULL, with an error, when the
     * capture failed; the backend then runs ops again); graph_launch queues
     * the recorded ops once more with the same arguments. */
    rtr_status (*capture_begin)(void *ctx);
    rtr_status (*capture_end)(void *ctx, void **graph);
    rtr_status (*graph_launch)(void *ctx, void *graph);
    void (*graph_free)(void *ctx, void *graph);

    /* Row-major C[M x N] = alpha · op(A) · op(B) + beta · C, as
     * cblas_sgemm(CblasRowMajor, ...): op(A) is M x K, op(B) is K x N. */
    rtr_status (*sgemm)(void *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
    /* The bf16 linear layer, as rtr_gemm_bf16 (include/rtr/ops_bf16.h):
     * out[N x OC] = bf16(inp[N x IC]·w[OC x IC]ᵀ), or with gelu_bias
     * bf16(gelu(· + gelu_bias)); fp32 accumulation. Pointers 16-byte
     * aligned, IC and OC multiples of 8. NULL on the CPU backends (their
     * bf16 is sgemm's, on fp32 activations): the bf16 encoder path needs a
     * backend that has it. */
    rtr_status (*gemm_bf16)(void *ctx, rtr_bf16 *out, const rtr_bf16 *inp, const rtr_bf16 *w,
                            const float *gelu_bias, int N, int IC, int OC);

    /* Every op of the list, as its reference in include/rtr/ops.h. */
#define RTR_X_SLOT(E, name, ret, params, args) rtr_status(*name) RTR_OP_PARAMS params;
    RTR_BACKEND_OPS(RTR_X_SLOT)
#undef RTR_X_SLOT
} rtr_backend_iface;

typedef struct rtr_backend {
    const rtr_backend_iface *iface;
    void *ctx;
    char device[128]; /* what runs the ops, e.g. "NVIDIA H100 80GB HBM3 (sm_90)" or "CPU, 16 threads" */
} rtr_backend;

/* Open a backend by name: "cpu", "cuda" (device 0) or "auto" (CUDA when a
 * device answers, else the CPU with one line on stderr saying why: "no CUDA
 * device", "no CUDA device (no NVIDIA driver is loaded)", "the NVIDIA driver
 * supports CUDA a.b, older than the CUDA c.d runtime rtr was built with", a
 * card older than sm_80, or a build without CUDA).
 * RTR_ERR_DEVICE for "cuda" without a usable device or a build without CUDA;
 * RTR_ERR_INVALID for another name. */
RTR_API rtr_status rtr_backend_init(rtr_backend *b, const char *name);
RTR_API void rtr_backend_free(rtr_backend *b);

/* The CPU backend, always available: the fast CPU paths where they exist
 * (src/backend/ops_cpu.c, GEMMs split over the OpenMP threads). */
RTR_API rtr_status rtr_backend_cpu_open(rtr_backend *b);
/* The reference backend: every op is its plain-C reference, one BLAS call
 * per GEMM. The yardstick the kernel tests compare other backends with. */
RTR_API rtr_status rtr_backend_ref_open(rtr_backend *b);
#ifdef RTR_WITH_CUDA
/* The CUDA backend on `device` (kernels/backend_cuda.cu); device -1: the
 * process's local rank on its node (OMPI_COMM_WORLD_LOCAL_RANK, else
 * MPI_LOCALRANKID, else SLURM_LOCALID, else 0) modulo the devices present,
 * so ranks of one node each take their own GPU. */
RTR_API rtr_status rtr_backend_cuda_open(rtr_backend *b, int device);
#endif

/* Whether b implements op (callers ask before they call). */
RTR_API bool rtr_backend_supports(const rtr_backend *b, rtr_op op);
RTR_API const char *rtr_op_name(rtr_op op);

/* Memory in the backend: *ptr NULL on failure (RTR_ERR_NOMEM / _DEVICE). */
RTR_API rtr_status rtr_backend_alloc(rtr_backend *b, void **ptr, size_t bytes);
RTR_API void rtr_backend_free_mem(rtr_backend *b, void *ptr);
RTR_API rtr_status rtr_backend_upload(rtr_backend *b, void *dst, const void *src, size_t bytes);
RTR_API rtr_status rtr_backend_download(rtr_backend *b, void *dst, const void *src, size_t bytes);
RTR_API rtr_status rtr_backend_zero(rtr_backend *b, void *ptr, size_t bytes);
RTR_API rtr_status rtr_backend_synchronize(rtr_backend *b);
RTR_API rtr_status rtr_backend_host_alloc(rtr_backend *b, void **ptr, size_t bytes);
RTR_API void rtr_backend_host_free(rtr_backend *b, void *ptr);
RTR_API rtr_status rtr_backend_upload_async(rtr_backend *b, void *dst, const void *src, size_t bytes);
RTR_API rtr_status rtr_backend_download_async(rtr_backend *b, void *dst, const void *src, size_t bytes);
/* Whether b's memory is the host's (upload/download are plain copies and
 * host arrays may be passed to ops directly). */
RTR_API bool rtr_backend_is_host(const rtr_backend *b);
/* Input precision of later sgemm calls (default RTR_GEMM_F32). */
RTR_API rtr_status rtr_backend_set_gemm_precision(rtr_backend *b, rtr_gemm_precision p);
/* The iface's hold_weights / forget_weights (no-ops where b has none).
 * hold: RTR_ERR_NOMEM, or RTR_ERR_INVALID for a range overlapping one
 * already held. forget drops what b derived from those bytes and ends the
 * hold; the caller frees them only after it. */
RTR_API rtr_status rtr_backend_hold_weights(rtr_backend *b, const void *ptr, size_t bytes);
RTR_API void rtr_backend_forget_weights(rtr_backend *b, const void *ptr, size_t bytes);
/* b's RTR_CAP_* bits at its current GEMM precision. */
static inline unsigned rtr_backend_caps(const rtr_backend *b) {
    return b->iface->caps ? b->iface->caps(b->ctx) : 0;
}
/* Graphs (the iface's capture_begin .. graph_free): whether b has them, and
 * the calls (RTR_ERR_UNSUPPORTED where b has none). The graph is b's until
 * rtr_backend_graph_free. */
RTR_API bool rtr_backend_has_graphs(const rtr_backend *b);
RTR_API rtr_status rtr_backend_capture_begin(rtr_backend *b);
RTR_API rtr_status rtr_backend_capture_end(rtr_backend *b, void **graph);
RTR_API rtr_status rtr_backend_graph_launch(rtr_backend *b, void *graph);
RTR_API void rtr_backend_graph_free(rtr_backend *b, void *graph);

#ifdef __cplusplus
}
#endif
#endif
