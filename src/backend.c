/* Backend selection and the two CPU backends (see include/rtr/backend.h).
 * "cpu-ref" is the plain-C references plus one OpenBLAS sgemm per GEMM: the
 * yardstick every other backend is tested against, adding nothing. "cpu" is
 * what rtr computes with: the same table, but the encoder's two hot ops take
 * their fast paths (ops_cpu.c, tested against the references in test_ops)
 * and large GEMMs are split over the OpenMP threads. The two share one
 * operation table; the context says which one runs. */
#include "rtr/backend.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtr/ops.h"
#include "rtr/optim.h"
#include "rtr/predictor.h"
#include "rtr/route.h"
#include "ops_cpu.h"
#include "util.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

static const char *const op_names[RTR_OP_COUNT] = {
    "sgemm", "embedding_layernorm_forward", "position_bias_forward", "bias_add_forward",
    "attention_forward", "bias_gelu_forward", "residual_layernorm_forward", "mean_pool_l2norm_forward",
    "heads_forward", "heads_loss", "heads_backward", "heads_activate", "route_argmax", "adam_update",
    "gather_rows", "pair_table_forward", "pair_table_backward", "route_envelope", "heads_score"};

const char *rtr_op_name(rtr_op op) { return op >= 0 && op < RTR_OP_COUNT ? op_names[op] : "?"; }

/* ------------------------------------------------------------- CPU backend */

/* The context of the two CPU backends: whether the fast paths are taken. */
static const bool cpu_fast = true, cpu_ref = false;
static bool is_fast(void *ctx) { return *(const bool *)ctx; }

static bool cpu_supports_op(void *ctx, rtr_op op) {
    (void)ctx;
    return op >= 0 && op < RTR_OP_COUNT;
}

static void cpu_destroy(void *ctx) { (void)ctx; }

static rtr_status cpu_alloc(void *ctx, void **ptr, size_t bytes) {
    (void)ctx;
    *ptr = rtr_malloc(bytes ? bytes : 1);
    return *ptr ? RTR_OK : RTR_ERR_NOMEM;
}

static void cpu_free_mem(void *ctx, void *ptr) {
    (void)ctx;
    free(ptr);
}

static rtr_status cpu_copy(void *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    memmove(dst, src, bytes);
    return RTR_OK;
}

static rtr_status cpu_zero(void *ctx, void *ptr, size_t bytes) {
    (void)ctx;
    memset(ptr, 0, bytes);
    return RTR_OK;
}

static rtr_status cpu_synchronize(void *ctx) {
    (void)ctx;
    return RTR_OK;
}

static rtr_status cpu_set_gemm_precision(void *ctx, rtr_gemm_precision p) {
    (void)ctx;
    return p >= RTR_GEMM_F32 && p <= RTR_GEMM_F16 ? RTR_OK
                                                   : rtr_fail(RTR_ERR_INVALID, "gemm precision %d unknown", (int)p);
}

static rtr_status cpu_host_alloc(void *ctx, void **ptr, size_t bytes) { return cpu_alloc(ctx, ptr, bytes); }
static void cpu_host_free(void *ctx, void *ptr) { cpu_free_mem(ctx, ptr); }

/* Below this many multiply-adds a GEMM is one BLAS call: a training batch's
 * GEMMs (32 x 768 x 768, 19M) are faster serial than paying a parallel
 * region (2.4x slower epochs when they were split); an encoder batch's are
 * in the billions. */
#define CPU_GEMM_SPLIT_MIN (1 << 26)

/* The fast CPU backend owns BLAS threading: its BLAS calls always run on one
 * OpenBLAS thread and parallelism is OpenMP's (one thread pool instead of
 * OpenBLAS's threads competing with OpenMP's spinning ones; small GEMMs are
 * faster serial anyway). The caller's OpenBLAS setting is put back after
 * each op (a toggle costs nanoseconds). */
static int blas_serial_begin(void) {
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return threads;
}
static void blas_serial_end(int threads) { openblas_set_num_threads(threads); }

/* Large GEMMs: the rows of C are split over the OpenMP threads, each calling
 * a single-threaded sgemm. */
static rtr_status cpu_sgemm(void *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    if (!is_fast(ctx)) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return RTR_OK;
    }
    int blas_threads = blas_serial_begin();
    bool split = (double)M * N * K >= CPU_GEMM_SPLIT_MIN && omp_get_max_threads() > 1;
#pragma omp parallel if (split)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int rows = (M + nt - 1) / nt, r0 = t * rows, r1 = r0 + rows < M ? r0 + rows : M;
        /* row r of op(A) starts at A + r·lda, or at column r when A is transposed */
        const float *a = trans_a ? A + r0 : A + (size_t)r0 * lda;
        if (r1 > r0)
            cblas_sgemm(CblasRowMajor, ta, tb, r1 - r0, N, K, alpha, a, lda, B, ldb, beta, C + (size_t)r0 * ldc, ldc);
    }
    blas_serial_end(blas_threads);
    return RTR_OK;
}

static rtr_status cpu_embedding_layernorm(void *ctx, float *out, const int32_t *ids, const int32_t *pos_ids,
                                          const float *wte, const float *wpe, const float *wtt, const float *ln_w,
                                          const float *ln_b, float eps, int B, int T, int C) {
    (void)ctx;
    embedding_layernorm_forward(out, ids, pos_ids, wte, wpe, wtt, ln_w, ln_b, eps, B, T, C);
    return RTR_OK;
}

static rtr_status cpu_position_bias(void *ctx, float *bias, const float *table, int T, int NH, int num_buckets,
                                    int max_distance) {
    (void)ctx;
    position_bias_forward(bias, table, T, NH, num_buckets, max_distance);
    return RTR_OK;
}

static rtr_status cpu_bias_add(void *ctx, float *out, const float *inp, const float *bias, int N, int C) {
    (void)ctx;
    bias_add_forward(out, inp, bias, N, C);
    return RTR_OK;
}

static rtr_status cpu_attention(void *ctx, float *out, float *att, const float *qkv, const float *bias,
                                const int32_t *lens, int B, int T, int C, int NH) {
    if (is_fast(ctx)) {
        int blas_threads = blas_serial_begin(); /* its per-thread GEMMs need it (src/ops_cpu.h) */
        attention_forward_cpu(out, att, qkv, bias, lens, B, T, C, NH);
        blas_serial_end(blas_threads);
    } else {
        attention_forward(out, att, qkv, bias, lens, B, T, C, NH);
    }
    return RTR_OK;
}

static rtr_status cpu_bias_gelu(void *ctx, float *out, const float *inp, const float *bias, int N, int C) {
    if (is_fast(ctx)) bias_gelu_forward_cpu(out, inp, bias, N, C);
    else bias_gelu_forward(out, inp, bias, N, C);
    return RTR_OK;
}

static rtr_status cpu_residual_layernorm(void *ctx, float *out, const float *inp, const float *bias,
                                         const float *residual, const float *ln_w, const float *ln_b, float eps,
                                         int N, int C) {
    (void)ctx;
    residual_layernorm_forward(out, inp, bias, residual, ln_w, ln_b, eps, N, C);
    return RTR_OK;
}

static rtr_status cpu_mean_pool_l2norm(void *ctx, float *out, const float *inp, const int32_t *lens, int B, int T,
                                       int C) {
    (void)ctx;
    mean_pool_l2norm_forward(out, inp, lens, B, T, C);
    return RTR_OK;
}

static rtr_status cpu_heads_forward(void *ctx, float *out_c, float *out_t, const float *A_c, const float *A_t,
                                    const float *C_c, const float *C_t, const float *w2_c, const float *b2_c,
                                    const float *w2_t, const float *b2_t, int N, int K, int H) {
    (void)ctx;
    heads_forward(out_c, out_t, A_c, A_t, C_c, C_t, w2_c, b2_c, w2_t, b2_t, N, K, H);
    return RTR_OK;
}

static rtr_status cpu_heads_score(void *ctx, float *out_c, float *out_t, const float *X_c, const float *X_t,
                                  const float *G_c, const float *G_t, const float *s_c, const float *s_t,
                                  const float *beta_c, const float *beta_t, int N, int K, int H) {
    (void)ctx;
    heads_score(out_c, out_t, X_c, X_t, G_c, G_t, s_c, s_t, beta_c, beta_t, N, K, H);
    return RTR_OK;
}

static rtr_status cpu_heads_loss(void *ctx, float *dout_c, float *dout_t, double *loss, const float *out_c,
                                 const float *out_t, const float *y_c, const float *y_t, float gscale_c,
                                 float gscale_t, int N, int K) {
    (void)ctx;
    heads_loss(dout_c, dout_t, loss, out_c, out_t, y_c, y_t, gscale_c, gscale_t, N, K);
    return RTR_OK;
}

static rtr_status cpu_heads_backward(void *ctx, float *dA_c, float *dA_t, float *dC_c, float *dC_t, float *dw2_c,
                                     float *db2_c, float *dw2_t, float *db2_t, const float *dout_c,
                                     const float *dout_t, const float *A_c, const float *A_t, const float *C_c,
                                     const float *C_t, const float *w2_c, const float *w2_t, int N, int K, int H) {
    (void)ctx;
    heads_backward(dA_c, dA_t, dC_c, dC_t, dw2_c, db2_c, dw2_t, db2_t, dout_c, dout_t, A_c, A_t, C_c, C_t, w2_c,
                   w2_t, N, K, H);
    return RTR_OK;
}

static rtr_status cpu_heads_activate(void *ctx, float *p_correct, float *tokens, const float *out_c,
                                     const float *out_t, int token_target, float token_scale, int N, int K) {
    (void)ctx;
    heads_activate(p_correct, tokens, out_c, out_t, token_target, token_scale, N, K);
    return RTR_OK;
}

static rtr_status cpu_route_argmax(void *ctx, int32_t *choice, const float *p, const float *c, double lambda,
                                   int64_t n, int32_t k) {
    (void)ctx;
    route_argmax(choice, p, c, lambda, n, k);
    return RTR_OK;
}

static rtr_status cpu_adam_update(void *ctx, float *param, const float *grad, float *m, float *v, size_t n,
                                  double lr, int64_t t) {
    (void)ctx;
    adam_update(param, grad, m, v, n, lr, t);
    return RTR_OK;
}

static rtr_status cpu_gather_rows(void *ctx, float *out, const float *in, const int64_t *idx, int n, int cols) {
    (void)ctx;
    gather_rows(out, in, idx, n, cols);
    return RTR_OK;
}

static rtr_status cpu_pair_table_forward(void *ctx, float *C, const float *P_m, const float *P_s, const float *b1,
                                         const int32_t *pair_model, const int32_t *pair_strategy, int K, int H) {
    (void)ctx;
    pair_table_forward(C, P_m, P_s, b1, pair_model, pair_strategy, K, H);
    return RTR_OK;
}

static rtr_status cpu_pair_table_backward(void *ctx, float *dP_m, float *dP_s, float *db1, const float *dC,
                                          const int32_t *pair_model, const int32_t *pair_strategy, int K, int H,
                                          int n_models, int n_strategies) {
    (void)ctx;
    pair_table_backward(dP_m, dP_s, db1, dC, pair_model, pair_strategy, K, H, n_models, n_strategies);
    return RTR_OK;
}

static rtr_status cpu_route_envelope(void *ctx, int32_t *pair, double *start, int32_t *m, const float *p,
                                     const float *c, int64_t n, int32_t k) {
    (void)ctx;
    return route_envelope(pair, start, m, p, c, n, k);
}

static const rtr_backend_iface cpu_iface = {
    .name = "cpu",
    .supports_op = cpu_supports_op,
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free_mem = cpu_free_mem,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .synchronize = cpu_synchronize,
    .host_alloc = cpu_host_alloc,
    .host_free = cpu_host_free,
    .upload_async = cpu_copy,
    .download_async = cpu_copy,
    .set_gemm_precision = cpu_set_gemm_precision,
    .sgemm = cpu_sgemm,
    .embedding_layernorm_forward = cpu_embedding_layernorm,
    .position_bias_forward = cpu_position_bias,
    .bias_add_forward = cpu_bias_add,
    .attention_forward = cpu_attention,
    .bias_gelu_forward = cpu_bias_gelu,
    .residual_layernorm_forward = cpu_residual_layernorm,
    .mean_pool_l2norm_forward = cpu_mean_pool_l2norm,
    .heads_forward = cpu_heads_forward,
    .heads_score = cpu_heads_score,
    .heads_loss = cpu_heads_loss,
    .heads_backward = cpu_heads_backward,
    .heads_activate = cpu_heads_activate,
    .route_argmax = cpu_route_argmax,
    .adam_update = cpu_adam_update,
    .gather_rows = cpu_gather_rows,
    .pair_table_forward = cpu_pair_table_forward,
    .pair_table_backward = cpu_pair_table_backward,
    .route_envelope = cpu_route_envelope,
};

static rtr_status cpu_open(rtr_backend *b, bool fast) {
    memset(b, 0, sizeof *b);
    b->iface = &cpu_iface;
    b->ctx = (void *)(fast ? &cpu_fast : &cpu_ref);
    snprintf(b->device, sizeof b->device, "CPU, %d threads%s", omp_get_max_threads(),
             fast ? "" : " (plain-C references)");
    return RTR_OK;
}

rtr_status rtr_backend_cpu_open(rtr_backend *b) { return cpu_open(b, true); }
rtr_status rtr_backend_ref_open(rtr_backend *b) { return cpu_open(b, false); }

/* ----------------------------------------------------------- selection */

rtr_status rtr_backend_init(rtr_backend *b, const char *name) {
    memset(b, 0, sizeof *b);
    if (!strcmp(name, "cpu")) return rtr_backend_cpu_open(b);
    if (strcmp(name, "cuda") && strcmp(name, "auto"))
        return rtr_fail(RTR_ERR_INVALID, "device '%s': expected cpu, cuda or auto", name);
#ifdef RTR_WITH_CUDA
    rtr_status st = rtr_backend_cuda_open(b, 0);
#else
    rtr_status st = rtr_fail(RTR_ERR_DEVICE, "this rtr was built without CUDA (configure with nvcc present)");
#endif
    if (st == RTR_OK || !strcmp(name, "cuda")) return st;
    fprintf(stderr, "rtr: no usable GPU (%s); computing on the CPU\n", rtr_last_error());
    return rtr_backend_cpu_open(b);
}

void rtr_backend_free(rtr_backend *b) {
    if (b->iface) b->iface->destroy(b->ctx);
    memset(b, 0, sizeof *b);
}

bool rtr_backend_supports(const rtr_backend *b, rtr_op op) { return b->iface->supports_op(b->ctx, op); }

rtr_status rtr_backend_alloc(rtr_backend *b, void **ptr, size_t bytes) {
    *ptr = NULL;
    return b->iface->alloc(b->ctx, ptr, bytes);
}

void rtr_backend_free_mem(rtr_backend *b, void *ptr) {
    if (ptr) b->iface->free_mem(b->ctx, ptr);
}

rtr_status rtr_backend_upload(rtr_backend *b, void *dst, const void *src, size_t bytes) {
    return b->iface->upload(b->ctx, dst, src, bytes);
}

rtr_status rtr_backend_download(rtr_backend *b, void *dst, const void *src, size_t bytes) {
    return b->iface->download(b->ctx, dst, src, bytes);
}

rtr_status rtr_backend_zero(rtr_backend *b, void *ptr, size_t bytes) { return b->iface->zero(b->ctx, ptr, bytes); }

rtr_status rtr_backend_synchronize(rtr_backend *b) { return b->iface->synchronize(b->ctx); }

rtr_status rtr_backend_host_alloc(rtr_backend *b, void **ptr, size_t bytes) {
    *ptr = NULL;
    return b->iface->host_alloc(b->ctx, ptr, bytes);
}

void rtr_backend_host_free(rtr_backend *b, void *ptr) {
    if (ptr) b->iface->host_free(b->ctx, ptr);
}

rtr_status rtr_backend_upload_async(rtr_backend *b, void *dst, const void *src, size_t bytes) {
    return b->iface->upload_async(b->ctx, dst, src, bytes);
}

rtr_status rtr_backend_download_async(rtr_backend *b, void *dst, const void *src, size_t bytes) {
    return b->iface->download_async(b->ctx, dst, src, bytes);
}

bool rtr_backend_is_host(const rtr_backend *b) { return b->iface == &cpu_iface; }

rtr_status rtr_backend_set_gemm_precision(rtr_backend *b, rtr_gemm_precision p) {
    return b->iface->set_gemm_precision(b->ctx, p);
}
