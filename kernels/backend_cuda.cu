/* backend_cuda.cu — the CUDA backend's operation table (include/rtr/backend.h):
 * device memory, one stream, cuBLASLt GEMMs (fp32, or bf16/fp16 inputs with
 * fp32 accumulation on tensor cores) and the custom kernels of encoder.cu,
 * heads.cu, route.cu and optim.cu.
 *
 * The same file, built by the host compiler against kernels/emu/cuda_emu.h,
 * is the "cuda-emu" backend of the kernel tests: every custom kernel runs on
 * the emulator and the GEMM calls the CPU BLAS (there is no cuBLAS there).
 * The entry point is rtr_backend_cuda_open, or rtr_backend_emu_open in the
 * emulated build. */
#include "launchers.cuh"

#ifdef RTR_CUDA_EMU
#include <cblas.h>
#else
#include <cublasLt.h>
#include <dlfcn.h>
#include <pthread.h>
#endif

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace RTR_KNS {

#ifndef RTR_CUDA_EMU
/* cuBLASLt is loaded when the first CUDA backend opens, not by the dynamic
 * loader at start: the library is ~540 MB of address space, which a
 * CUDA-built rtr would otherwise map for every command, so CPU-only
 * commands could not run under a small `ulimit -v` (a CPU build's can).
 * Its functions are called through this table, resolved once. */
#define RTR_LT_FUNCS(X)                                                                                  \
    X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtMatmul) X(cublasLtMatmulDescCreate)                  \
    X(cublasLtMatmulDescDestroy) X(cublasLtMatmulDescSetAttribute) X(cublasLtMatrixLayoutCreate)         \
    X(cublasLtMatrixLayoutDestroy) X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy) \
    X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatmulAlgoGetHeuristic)
static struct {
#define LT_MEMBER(f) decltype(&::f) f;
    RTR_LT_FUNCS(LT_MEMBER)
#undef LT_MEMBER
} lt_api;
static char lt_error[512]; /* why loading failed; empty when it did not */

#define LT_STR2(x) #x
#define LT_STR(x) LT_STR2(x)
/* The soname the toolkit rtr was built with links against. */
#define LT_SONAME "libcublasLt.so." LT_STR(CUBLAS_VER_MAJOR)

/* dlopen searches the caller's RPATH/RUNPATH, LD_LIBRARY_PATH and the linker
 * cache, which finds the library wherever the loader found it before (the
 * device bundle's lib/ through its RPATH); failing that, beside cudart
 * (toolkits and CUDA 13 wheels keep both in one folder). */
static void lt_load_once(void) {
    void *h = dlopen(LT_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) snprintf(lt_error, sizeof lt_error, "%s could not be loaded (%s)", LT_SONAME, dlerror());
    Dl_info info;
    if (!h && dladdr((void *)&cudaGetDeviceCount, &info) && info.dli_fname && strrchr(info.dli_fname, '/')) {
        char path[4096];
        int dir = (int)(strrchr(info.dli_fname, '/') - info.dli_fname);
        snprintf(path, sizeof path, "%.*s/%s", dir, info.dli_fname, LT_SONAME);
        if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) lt_error[0] = 0;
    }
    if (!h) return;
#define LT_RESOLVE(f)                                                                                      \
    if (!(lt_api.f = (decltype(lt_api.f))dlsym(h, #f))) {                                                  \
        snprintf(lt_error, sizeof lt_error, "%s has no %s: not the cuBLAS rtr was built with", LT_SONAME, #f); \
        return;                                                                                            \
    }
    RTR_LT_FUNCS(LT_RESOLVE)
#undef LT_RESOLVE
}

static rtr_status lt_load(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lt_load_once);
    return lt_error[0] ? rtr_fail(RTR_ERR_DEVICE, "cuBLASLt: %s", lt_error) : RTR_OK;
}

/* A cuBLASLt matmul in column-major terms, D[m x n] = op(first)·op(second)
 * (+ β·C), and everything its plan depends on (a cache key: no padding). */
struct lt_shape {
    int op_first, op_second, m, n, k, ld_first, ld_second, ld_d;
    int in_type, d_type, epilogue;
    uint32_t al_first, al_second, al_d; /* the buffers' real alignment (cuBLASLt assumes 256 unless told) */
};
#endif

struct cuda_ctx {
    cudaStream_t stream; /* every op and download */
    cudaStream_t copy;   /* asynchronous uploads, beside the ops */
    cudaEvent_t uploaded; /* the last asynchronous upload; ops queued later wait for it */
    rtr_gemm_precision precision;
#ifndef RTR_CUDA_EMU
    cublasLtHandle_t lt;
    void *workspace; /* cuBLASLt scratch */
    size_t workspace_bytes;
    void *half_buf; /* bf16/fp16 copies of A and B for low-precision sgemm */
    size_t half_bytes;
    bool gelu_epilogue; /* RTR_CUDA_GELU_EPILOGUE=1: gemm_bf16's GELU in cuBLASLt */
    /* cuBLASLt plans (descriptor, layouts, algorithm) per GEMM shape */
    struct lt_plan {
        cublasLtMatmulDesc_t op;
        cublasLtMatrixLayout_t la, lb, ld;
        cublasLtMatmulAlgo_t algo;
        struct lt_shape shape;
    } plans[64];
#endif
};

static cuda_ctx *ctx_of(void *ctx) { return (cuda_ctx *)ctx; }

#ifndef RTR_CUDA_EMU
static void plan_free(cuda_ctx::lt_plan *p) {
    if (p->ld) lt_api.cublasLtMatrixLayoutDestroy(p->ld);
    if (p->lb) lt_api.cublasLtMatrixLayoutDestroy(p->lb);
    if (p->la) lt_api.cublasLtMatrixLayoutDestroy(p->la);
    if (p->op) lt_api.cublasLtMatmulDescDestroy(p->op);
    memset(p, 0, sizeof *p);
}
#endif

static void cuda_destroy(void *ctx) {
    cuda_ctx *x = ctx_of(ctx);
    if (!x) return;
#ifndef RTR_CUDA_EMU
    for (auto &p : x->plans) plan_free(&p);
    cudaFree(x->workspace);
    cudaFree(x->half_buf);
    if (x->lt) lt_api.cublasLtDestroy(x->lt);
#endif
    if (x->uploaded) cudaEventDestroy(x->uploaded);
    if (x->copy) cudaStreamDestroy(x->copy);
    if (x->stream) cudaStreamDestroy(x->stream);
    free(x);
}

static rtr_status cuda_alloc(void *ctx, void **ptr, size_t bytes) {
    (void)ctx;
    RTR_CUDA_CHECK(cudaMalloc(ptr, bytes ? bytes : 1), "alloc", "%zu bytes", bytes);
    return RTR_OK;
}

static void cuda_free_mem(void *ctx, void *ptr) {
    (void)ctx;
    cudaFree(ptr);
}

/* Synchronous copies: the host buffer may be reused as soon as they return. */
static rtr_status cuda_copy(cuda_ctx *x, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            const char *what) {
    RTR_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, x->stream), what, "%zu bytes", bytes);
    RTR_CUDA_CHECK(cudaStreamSynchronize(x->stream), what, "%zu bytes", bytes);
    return RTR_OK;
}

static rtr_status cuda_upload(void *ctx, void *dst, const void *src, size_t bytes) {
    return cuda_copy(ctx_of(ctx), dst, src, bytes, cudaMemcpyHostToDevice, "upload");
}

static rtr_status cuda_download(void *ctx, void *dst, const void *src, size_t bytes) {
    return cuda_copy(ctx_of(ctx), dst, src, bytes, cudaMemcpyDeviceToHost, "download");
}

static rtr_status cuda_zero(void *ctx, void *ptr, size_t bytes) {
    RTR_CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, ctx_of(ctx)->stream), "zero", "%zu bytes", bytes);
    return RTR_OK;
}

static rtr_status cuda_synchronize(void *ctx) {
    RTR_CUDA_CHECK(cudaStreamSynchronize(ctx_of(ctx)->copy), "synchronize", "copy stream");
    RTR_CUDA_CHECK(cudaStreamSynchronize(ctx_of(ctx)->stream), "synchronize", "stream");
    return RTR_OK;
}

static rtr_status cuda_host_alloc(void *ctx, void **ptr, size_t bytes) {
    (void)ctx;
    RTR_CUDA_CHECK(cudaMallocHost(ptr, bytes ? bytes : 1), "host_alloc", "%zu pinned bytes", bytes);
    return RTR_OK;
}

static void cuda_host_free(void *ctx, void *ptr) {
    (void)ctx;
    cudaFreeHost(ptr);
}

/* On the copy stream, then the op stream waits for it (an event): the copy
 * overlaps the ops queued before it and gates the ones queued after. */
static rtr_status cuda_upload_async(void *ctx, void *dst, const void *src, size_t bytes) {
    cuda_ctx *x = ctx_of(ctx);
    RTR_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, x->copy), "upload_async", "%zu bytes",
                   bytes);
    RTR_CUDA_CHECK(cudaEventRecord(x->uploaded, x->copy), "upload_async", "%zu bytes", bytes);
    RTR_CUDA_CHECK(cudaStreamWaitEvent(x->stream, x->uploaded, 0), "upload_async", "%zu bytes", bytes);
    return RTR_OK;
}

static rtr_status cuda_download_async(void *ctx, void *dst, const void *src, size_t bytes) {
    RTR_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx_of(ctx)->stream), "download_async",
                   "%zu bytes", bytes);
    return RTR_OK;
}

static rtr_status cuda_set_gemm_precision(void *ctx, rtr_gemm_precision p) {
    if (p < RTR_GEMM_F32 || p > RTR_GEMM_F16) return rtr_fail(RTR_ERR_INVALID, "gemm precision %d unknown", (int)p);
    ctx_of(ctx)->precision = p;
    return RTR_OK;
}

#ifdef RTR_CUDA_EMU
/* A copy of the rows x cols matrix m (leading dimension ld) rounded to p's
 * 16-bit format and widened back, as the GPU's tensor cores see it. */
static float *rounded_copy(const float *m, int rows, int cols, int ld, rtr_gemm_precision p) {
    float *r = (float *)rtr_malloc(((size_t)rows * ld + 1) * sizeof *r);
    if (!r) return nullptr;
    for (size_t i = 0; i < (size_t)rows * ld; i++)
        r[i] = (int)(i % (size_t)ld) >= cols ? 0.0f
               : p == RTR_GEMM_BF16       ? rtr_emu::bf16_bits_to_float(rtr_emu::float_to_bf16_bits(m[i]))
                                          : rtr_emu::half_bits_to_float(rtr_emu::float_to_half_bits(m[i]));
    return r;
}

/* Emulated build: the GEMM is the CPU BLAS on host memory, in fp32; at
 * bf16/fp16 precision on inputs rounded as the GPU rounds them (fp32
 * accumulation, as cuBLASLt's), so the emulator shows their numerics. */
static rtr_status cuda_sgemm(void *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                             int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    rtr_gemm_precision p = ctx_of(ctx)->precision;
    float *ra = nullptr, *rb = nullptr;
    if (p != RTR_GEMM_F32 && (size_t)M * N * K != 0) {
        ra = rounded_copy(A, trans_a ? K : M, trans_a ? M : K, lda, p);
        rb = rounded_copy(B, trans_b ? N : K, trans_b ? K : N, ldb, p);
        if (!ra || !rb) {
            free(ra), free(rb);
            return RTR_ERR_NOMEM;
        }
        A = ra, B = rb;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
    free(ra), free(rb);
    return RTR_OK;
}

/* The bf16 GEMM as the GPU's default path computes it: the product of the
 * bf16 values in fp32 (the CPU BLAS), rounded to bf16, then the bias and
 * GELU kernel on it (emulated). */
static rtr_status cuda_gemm_bf16(void *ctx, rtr_bf16 *out, const rtr_bf16 *inp, const rtr_bf16 *w,
                                 const float *gelu_bias, int N, int IC, int OC) {
    (void)ctx;
    size_t ni = (size_t)N * IC, nw = (size_t)OC * IC, no = (size_t)N * OC;
    float *fi = (float *)rtr_malloc((ni + nw + no + 1) * sizeof(float));
    if (!fi) return RTR_ERR_NOMEM;
    float *fw = fi + ni, *fo = fw + nw;
    for (size_t i = 0; i < ni; i++) fi[i] = rtr_bf16_float(inp[i]);
    for (size_t i = 0; i < nw; i++) fw[i] = rtr_bf16_float(w[i]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, fi, IC, fw, IC, 0.0f, fo, OC);
    for (size_t i = 0; i < no; i++) out[i] = rtr_bf16_round(fo[i]);
    free(fi);
    return gelu_bias ? rtr_bias_gelu_bf16(out, out, gelu_bias, N, OC, nullptr) : RTR_OK;
}
#else
/* The alignment of a device pointer in bytes, as a power of two up to 256. */
static uint32_t align_of(const void *p) {
    uintptr_t v = (uintptr_t)p;
    uint32_t a = 1;
    while (a < 256 && !(v & a)) a <<= 1;
    return a;
}

/* The plan of shape s: its descriptor, layouts and algorithm are built once
 * (tens of microseconds of host time: an encoder batch makes ~50 GEMMs of a
 * handful of shapes, a training batch 24) and kept in a direct-mapped table;
 * a collision rebuilds. */
static rtr_status lt_plan_for(cuda_ctx *x, const lt_shape &s, cuda_ctx::lt_plan **out, const char *what) {
    unsigned h = 2166136261u;
    const unsigned char *bytes = (const unsigned char *)&s;
    for (size_t i = 0; i < sizeof s; i++) h = (h ^ bytes[i]) * 16777619u;
    cuda_ctx::lt_plan *p = &x->plans[h % (sizeof x->plans / sizeof *x->plans)];
    *out = p;
    if (p->op && !memcmp(&p->shape, &s, sizeof s)) return RTR_OK;
    plan_free(p);
    cublasLtMatmulPreference_t pref = nullptr;
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    cublasStatus_t e;
    cublasOperation_t of = (cublasOperation_t)s.op_first, os = (cublasOperation_t)s.op_second;
    cublasLtEpilogue_t epi = (cublasLtEpilogue_t)s.epilogue;
    cudaDataType_t bias_type = CUDA_R_32F;
    bool first_t = of == CUBLAS_OP_T, second_t = os == CUBLAS_OP_T;
#define LT_TRY(call) \
    if ((e = (call)) != CUBLAS_STATUS_SUCCESS) goto fail
    LT_TRY(lt_api.cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT_TRY(lt_api.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &of, sizeof of));
    LT_TRY(lt_api.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &os, sizeof os));
    LT_TRY(lt_api.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (epi != CUBLASLT_EPILOGUE_DEFAULT)
        LT_TRY(lt_api.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type));
    LT_TRY(lt_api.cublasLtMatrixLayoutCreate(&p->la, (cudaDataType_t)s.in_type, first_t ? s.k : s.m, first_t ? s.m : s.k,
                                      s.ld_first));
    LT_TRY(lt_api.cublasLtMatrixLayoutCreate(&p->lb, (cudaDataType_t)s.in_type, second_t ? s.n : s.k, second_t ? s.k : s.n,
                                      s.ld_second));
    LT_TRY(lt_api.cublasLtMatrixLayoutCreate(&p->ld, (cudaDataType_t)s.d_type, s.m, s.n, s.ld_d));
    LT_TRY(lt_api.cublasLtMatmulPreferenceCreate(&pref));
    LT_TRY(lt_api.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &x->workspace_bytes,
                                                sizeof x->workspace_bytes));
    LT_TRY(lt_api.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &s.al_first,
                                                sizeof s.al_first));
    LT_TRY(lt_api.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &s.al_second,
                                                sizeof s.al_second));
    LT_TRY(lt_api.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &s.al_d,
                                                sizeof s.al_d));
    LT_TRY(lt_api.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &s.al_d,
                                                sizeof s.al_d));
    LT_TRY(lt_api.cublasLtMatmulAlgoGetHeuristic(x->lt, p->op, p->la, p->lb, p->ld, p->ld, pref, 1, &heur, &found));
#undef LT_TRY
    lt_api.cublasLtMatmulPreferenceDestroy(pref);
    if (!found) {
        plan_free(p);
        return rtr_fail(RTR_ERR_UNSUPPORTED, "%s (m=%d n=%d k=%d, epilogue %d): no cuBLASLt algorithm for these strides",
                        what, s.m, s.n, s.k, s.epilogue);
    }
    p->algo = heur.algo;
    p->shape = s;
    return RTR_OK;
fail:
    if (pref) lt_api.cublasLtMatmulPreferenceDestroy(pref);
    plan_free(p);
    return rtr_fail(RTR_ERR_DEVICE, "%s (m=%d n=%d k=%d, epilogue %d): cuBLASLt status %d", what, s.m, s.n, s.k,
                    s.epilogue, (int)e);
}

/* Run plan p: D = α·op(first)·op(second) + β·D (bias: the epilogue's, or NULL). */
static rtr_status lt_run(cuda_ctx *x, cuda_ctx::lt_plan *p, const void *first, const void *second, void *d,
                         float alpha, float beta, const float *bias, const char *what) {
    cublasStatus_t e = CUBLAS_STATUS_SUCCESS;
    if (bias) e = lt_api.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    if (e == CUBLAS_STATUS_SUCCESS)
        e = lt_api.cublasLtMatmul(x->lt, p->op, &alpha, first, p->la, second, p->lb, &beta, d, p->ld, d, p->ld, &p->algo,
                           x->workspace, x->workspace_bytes, x->stream);
    if (e != CUBLAS_STATUS_SUCCESS)
        return rtr_fail(RTR_ERR_DEVICE, "%s (m=%d n=%d k=%d): cuBLASLt status %d", what, p->shape.m, p->shape.n,
                        p->shape.k, (int)e);
    return RTR_OK;
}

/* Row-major C = α·op(A)·op(B) + β·C is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: B goes
 * first. Low precision: A and B are rounded into half_buf, packed with
 * leading dimensions padded to 8 elements (16 bytes, as tensor cores want),
 * and multiplied with fp32 accumulation and output. */
static rtr_status cuda_sgemm(void *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                             int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cuda_ctx *x = ctx_of(ctx);
    const char *prec_name = x->precision == RTR_GEMM_BF16 ? "bf16" : x->precision == RTR_GEMM_F16 ? "fp16" : "fp32";
    if ((size_t)M * N == 0) return RTR_OK;
    cudaDataType_t in_type = x->precision == RTR_GEMM_BF16 ? CUDA_R_16BF
                             : x->precision == RTR_GEMM_F16 ? CUDA_R_16F
                                                            : CUDA_R_32F;
    /* stored shapes, row-major: A is a_rows x a_cols, B is b_rows x b_cols */
    int a_rows = trans_a ? K : M, a_cols = trans_a ? M : K, b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
    const void *a = A, *b = B;
    if (x->precision != RTR_GEMM_F32) {
        int lda16 = (a_cols + 7) & ~7, ldb16 = (b_cols + 7) & ~7;
        size_t a_elems = (size_t)a_rows * lda16, need = (a_elems + (size_t)b_rows * ldb16) * 2;
        if (need > x->half_bytes) {
            /* earlier GEMMs on the stream may still read the old copies */
            RTR_CUDA_CHECK(cudaStreamSynchronize(x->stream), "sgemm", "M=%d N=%d K=%d", M, N, K);
            cudaFree(x->half_buf);
            x->half_buf = nullptr;
            x->half_bytes = 0;
            RTR_CUDA_CHECK(cudaMalloc(&x->half_buf, need), "sgemm", "M=%d N=%d K=%d: %zu bytes for %s copies", M, N,
                           K, need, prec_name);
            x->half_bytes = need;
        }
        uint16_t *ha = (uint16_t *)x->half_buf, *hb = ha + a_elems;
        rtr_status cs = convert_f32(ha, lda16, A, lda, a_rows, a_cols, x->precision, x->stream);
        if (cs == RTR_OK) cs = convert_f32(hb, ldb16, B, ldb, b_rows, b_cols, x->precision, x->stream);
        if (cs != RTR_OK) return cs;
        a = ha, b = hb, lda = lda16, ldb = ldb16;
    }
    lt_shape s;
    memset(&s, 0, sizeof s);
    s.op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, s.op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    s.m = N, s.n = M, s.k = K, s.ld_first = ldb, s.ld_second = lda, s.ld_d = ldc;
    s.in_type = in_type, s.d_type = CUDA_R_32F, s.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    s.al_first = align_of(b), s.al_second = align_of(a), s.al_d = align_of(C);
    char what[48];
    snprintf(what, sizeof what, "sgemm %s", prec_name);
    cuda_ctx::lt_plan *p;
    rtr_status st = lt_plan_for(x, s, &p, what);
    return st != RTR_OK ? st : lt_run(x, p, b, a, C, alpha, beta, nullptr, what);
}

/* out[N x OC] = inp·wᵀ in bf16 (fp32 accumulation). The feed-forward's bias
 * and GELU: by default one elementwise kernel after the GEMM (the exact erf
 * form, rtr_bias_gelu_bf16); with RTR_CUDA_GELU_EPILOGUE=1 at open, cuBLASLt's
 * GELU_BIAS epilogue instead (fp32 bias) — the documentation does not say
 * which GELU it computes, so test_gpu compares the two on the device and
 * bench_backend times both. */
static rtr_status cuda_gemm_bf16(void *ctx, rtr_bf16 *out, const rtr_bf16 *inp, const rtr_bf16 *w,
                                 const float *gelu_bias, int N, int IC, int OC) {
    cuda_ctx *x = ctx_of(ctx);
    if ((size_t)N * OC == 0) return RTR_OK;
    if (IC % 8 || OC % 8)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "gemm_bf16: IC=%d OC=%d (multiples of 8 only)", IC, OC);
    bool epi = gelu_bias && x->gelu_epilogue;
    lt_shape s;
    memset(&s, 0, sizeof s);
    s.op_first = CUBLAS_OP_T, s.op_second = CUBLAS_OP_N; /* column-major: outᵀ = w·inpᵀ */
    s.m = OC, s.n = N, s.k = IC, s.ld_first = IC, s.ld_second = IC, s.ld_d = OC;
    s.in_type = CUDA_R_16BF, s.d_type = CUDA_R_16BF;
    s.epilogue = epi ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    s.al_first = align_of(w), s.al_second = align_of(inp), s.al_d = align_of(out);
    cuda_ctx::lt_plan *p;
    rtr_status st = lt_plan_for(x, s, &p, epi ? "gemm_bf16 (GELU_BIAS epilogue)" : "gemm_bf16");
    if (st == RTR_OK) st = lt_run(x, p, w, inp, out, 1.0f, 0.0f, epi ? gelu_bias : nullptr, "gemm_bf16");
    if (st == RTR_OK && gelu_bias && !epi) st = rtr_bias_gelu_bf16(out, out, gelu_bias, N, OC, x->stream);
    return st;
}
#endif

#ifndef RTR_CUDA_EMU
/* CUDA graphs: the stream's ops between begin and end are recorded, not
 * run, then instantiated once and replayed by one cudaGraphLaunch (a few µs
 * of host time however many kernels it holds). Thread-local capture mode:
 * other threads' CUDA calls are not affected. The emulator has no graphs
 * (its slots stay NULL): it runs every op as it is queued. */
static rtr_status cuda_capture_begin(void *ctx) {
    RTR_CUDA_CHECK(cudaStreamBeginCapture(ctx_of(ctx)->stream, cudaStreamCaptureModeThreadLocal), "capture_begin",
                   "%s", "stream");
    return RTR_OK;
}

static rtr_status cuda_capture_end(void *ctx, void **graph) {
    cudaGraph_t g = nullptr;
    cudaGraphExec_t exec = nullptr;
    *graph = nullptr;
    /* ends the capture whatever happened during it, so the stream runs ops again */
    cudaError_t e = cudaStreamEndCapture(ctx_of(ctx)->stream, &g);
    if (e == cudaSuccess && g) e = cudaGraphInstantiate(&exec, g, 0);
    if (g) cudaGraphDestroy(g);
    if (e != cudaSuccess || !exec) {
        cudaGetLastError(); /* a failed capture's error is reported here, not by the next op */
        return rtr_fail(RTR_ERR_DEVICE, "capture_end: %s", e != cudaSuccess ? cudaGetErrorString(e) : "empty graph");
    }
    *graph = exec;
    return RTR_OK;
}

static rtr_status cuda_graph_launch(void *ctx, void *graph) {
    RTR_CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, ctx_of(ctx)->stream), "graph_launch", "%p", graph);
    return RTR_OK;
}

static void cuda_graph_free(void *ctx, void *graph) {
    (void)ctx;
    cudaGraphExecDestroy((cudaGraphExec_t)graph);
}
#endif

/* ---- the custom kernels, on this backend's stream ---- */

/* cuda_<op>: the launcher of the same name as the op's reference, with the
 * reference's arguments and this backend's stream. */
#define RTR_WITH_STREAM(...) (__VA_ARGS__, ctx_of(ctx)->stream)
#define CUDA_ADAPTER(E, name, ret, params, args) \
    static rtr_status cuda_##name RTR_OP_PARAMS params { return RTR_KNS::rtr_##name RTR_WITH_STREAM args; }
RTR_BACKEND_OPS(CUDA_ADAPTER)
#undef CUDA_ADAPTER

static rtr_backend_iface make_iface() {
    rtr_backend_iface f;
    memset(&f, 0, sizeof f);
#ifdef RTR_CUDA_EMU
    f.name = "cuda-emu";
#else
    f.name = "cuda";
#endif
    f.destroy = cuda_destroy;
    f.alloc = cuda_alloc;
    f.free_mem = cuda_free_mem;
    f.upload = cuda_upload;
    f.download = cuda_download;
    f.zero = cuda_zero;
    f.synchronize = cuda_synchronize;
    f.host_alloc = cuda_host_alloc;
    f.host_free = cuda_host_free;
    f.upload_async = cuda_upload_async;
    f.download_async = cuda_download_async;
    f.set_gemm_precision = cuda_set_gemm_precision;
#ifndef RTR_CUDA_EMU
    f.capture_begin = cuda_capture_begin;
    f.capture_end = cuda_capture_end;
    f.graph_launch = cuda_graph_launch;
    f.graph_free = cuda_graph_free;
#endif
    f.sgemm = cuda_sgemm;
    f.gemm_bf16 = cuda_gemm_bf16;
#define CUDA_SLOT(E, name, ret, params, args) f.name = cuda_##name;
    RTR_BACKEND_OPS(CUDA_SLOT)
#undef CUDA_SLOT
    return f;
}

static const rtr_backend_iface cuda_iface = make_iface();

} /* namespace RTR_KNS */

using namespace RTR_KNS;

#ifdef RTR_CUDA_EMU
/* The emulated CUDA backend of the kernel tests. */
extern "C" rtr_status rtr_backend_emu_open(rtr_backend *b) {
    memset(b, 0, sizeof *b);
    cuda_ctx *x = (cuda_ctx *)rtr_calloc(1, sizeof *x);
    if (!x) return RTR_ERR_NOMEM;
    b->iface = &cuda_iface;
    b->ctx = x;
    snprintf(b->device, sizeof b->device, "CUDA emulator on the CPU (kernels/emu)");
    return RTR_OK;
}
#else
/* This process's rank among those on its node, as the launchers say it
 * (Open MPI, MPICH/Intel MPI, Slurm); 0 when started alone. */
static int local_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        long r = v && *v ? strtol(v, &end, 10) : -1;
        if (v && *v && !*end && r >= 0 && r < INT_MAX) return (int)r;
    }
    return 0;
}

extern "C" rtr_status rtr_backend_cuda_open(rtr_backend *b, int device) {
    memset(b, 0, sizeof *b);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0))
        return rtr_fail(RTR_ERR_DEVICE, "no CUDA device");
    if (e == cudaErrorInsufficientDriver) {
        /* cudart says "driver version is insufficient" also when there is no
         * driver at all (every machine without a GPU): tell the two apart */
        int driver = 0, runtime = 0;
        cudaDriverGetVersion(&driver);
        cudaRuntimeGetVersion(&runtime);
        if (driver == 0) return rtr_fail(RTR_ERR_DEVICE, "no CUDA device (no NVIDIA driver is loaded)");
        return rtr_fail(RTR_ERR_DEVICE,
                        "the NVIDIA driver supports CUDA %d.%d, older than the CUDA %d.%d runtime rtr was built with",
                        driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
    }
    if (e != cudaSuccess) return rtr_fail(RTR_ERR_DEVICE, "CUDA: %s", cudaGetErrorString(e));
    if (device == -1) device = local_rank() % count;
    if (device < 0 || device >= count)
        return rtr_fail(RTR_ERR_DEVICE, "CUDA device %d requested, %d present", device, count);
    cudaDeviceProp prop;
    RTR_CUDA_CHECK(cudaSetDevice(device), "open", "device %d", device);
    RTR_CUDA_CHECK(cudaGetDeviceProperties(&prop, device), "open", "device %d", device);
    if (prop.major < 8)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "CUDA device %d (%s) is sm_%d%d; rtr needs sm_80 or newer", device,
                        prop.name, prop.major, prop.minor);
    cuda_ctx *x = (cuda_ctx *)rtr_calloc(1, sizeof *x);
    if (!x) return RTR_ERR_NOMEM;
    b->iface = &cuda_iface;
    b->ctx = x;
    x->workspace_bytes = 32u << 20;
    const char *epi = getenv("RTR_CUDA_GELU_EPILOGUE");
    x->gelu_epilogue = epi && !strcmp(epi, "1");
    rtr_status st = RTR_OK;
    if ((e = cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&x->copy, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaEventCreateWithFlags(&x->uploaded, cudaEventDisableTiming)) != cudaSuccess ||
        (e = cudaMalloc(&x->workspace, x->workspace_bytes)) != cudaSuccess)
        st = rtr_fail(RTR_ERR_DEVICE, "CUDA device %d (%s): %s", device, prop.name, cudaGetErrorString(e));
    else if ((st = lt_load()) != RTR_OK)
        ;
    else if (lt_api.cublasLtCreate(&x->lt) != CUBLAS_STATUS_SUCCESS)
        st = rtr_fail(RTR_ERR_DEVICE, "CUDA device %d (%s): cuBLASLt would not initialise", device, prop.name);
    if (st != RTR_OK) {
        rtr_backend_free(b);
        return st;
    }
    snprintf(b->device, sizeof b->device, "%.80s (sm_%d%d, %.0f GiB)", prop.name, prop.major, prop.minor,
             prop.totalGlobalMem / 1073741824.0);
    return RTR_OK;
}
#endif
