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
#endif

#include <stdio.h>
#include <string.h>

namespace RTR_KNS {

struct cuda_ctx {
    cudaStream_t stream; /* every op and download */
    cudaStream_t copy;   /* asynchronous uploads, beside the ops */
    cudaEvent_t uploaded; /* the last asynchronous upload; ops queued later wait for it */
    rtr_gemm_precision precision;
#ifndef RTR_CUDA_EMU
    cublasLtHandle_t lt;
    void *workspace; /* cuBLASLt scratch */
    size_t workspace_bytes;
    void *half_buf; /* bf16/fp16 copies of A and B for low-precision GEMMs */
    size_t half_bytes;
    /* cuBLASLt's algorithm choice per GEMM shape: asking the heuristic costs
     * tens of microseconds of host time, and an encoder batch makes ~50 GEMMs
     * of a handful of shapes. Direct-mapped; a collision just asks again. */
    struct algo_entry {
        bool valid;
        int key[12];
        cublasLtMatmulAlgo_t algo;
    } algos[64];
#endif
};

static cuda_ctx *ctx_of(void *ctx) { return (cuda_ctx *)ctx; }

static void cuda_destroy(void *ctx) {
    cuda_ctx *x = ctx_of(ctx);
    if (!x) return;
#ifndef RTR_CUDA_EMU
    cudaFree(x->workspace);
    cudaFree(x->half_buf);
    if (x->lt) cublasLtDestroy(x->lt);
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
/* Emulated build: the GEMM is the CPU BLAS on host memory, in fp32. */
static rtr_status cuda_sgemm(void *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                             int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    (void)ctx;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
    return RTR_OK;
}
#else
#define LT_CHECK(call, ...)                                                                                \
    do {                                                                                                   \
        cublasStatus_t s_ = (call);                                                                        \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                                 \
            st = rtr_fail(RTR_ERR_DEVICE, "%s:%d: sgemm (M=%d N=%d K=%d, %s): cuBLASLt status %d", __FILE__, \
                          __LINE__, M, N, K, prec_name, (int)s_);                                          \
            goto done;                                                                                     \
        }                                                                                                  \
    } while (0)

/* The alignment of a device pointer in bytes, as a power of two up to 256. */
static uint32_t align_of(const void *p) {
    uintptr_t v = (uintptr_t)p;
    uint32_t a = 1;
    while (a < 256 && !(v & a)) a <<= 1;
    return a;
}

/* Row-major C = α·op(A)·op(B) + β·C is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: B goes
 * first. Low precision: A and B are rounded into half_buf, packed with
 * leading dimensions padded to 8 elements (16 bytes, as tensor cores want),
 * and multiplied with fp32 accumulation and output. */
static rtr_status cuda_sgemm(void *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                             int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cuda_ctx *x = ctx_of(ctx);
    rtr_status st = RTR_OK;
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
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    cublasOperation_t op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    LT_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof op_first));
    LT_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof op_second));
    LT_CHECK(cublasLtMatrixLayoutCreate(&la, in_type, trans_b ? K : N, trans_b ? N : K, ldb));
    LT_CHECK(cublasLtMatrixLayoutCreate(&lb, in_type, trans_a ? M : K, trans_a ? K : M, lda));
    LT_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, N, M, ldc));
    {
        /* the algorithm must suit the buffers' real alignment (cuBLASLt
         * assumes 256 bytes unless told), so it is part of the key */
        uint32_t al_first = align_of(b), al_second = align_of(a), al_c = align_of(C);
        int key[12] = {trans_a, trans_b, M, N, K, lda, ldb, ldc, (int)x->precision, (int)al_first, (int)al_second,
                       (int)al_c};
        unsigned h = 2166136261u;
        for (int i = 0; i < 12; i++) h = (h ^ (unsigned)key[i]) * 16777619u;
        cuda_ctx::algo_entry *slot = &x->algos[h % (sizeof x->algos / sizeof *x->algos)];
        if (!slot->valid || memcmp(slot->key, key, sizeof key)) {
            LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
            LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &x->workspace_bytes, sizeof x->workspace_bytes));
            LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_first,
                                                          sizeof al_first));
            LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                          &al_second, sizeof al_second));
            LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c,
                                                          sizeof al_c));
            LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c,
                                                          sizeof al_c));
            LT_CHECK(cublasLtMatmulAlgoGetHeuristic(x->lt, op, la, lb, lc, lc, pref, 1, &heur, &found));
            if (!found) {
                st = rtr_fail(RTR_ERR_UNSUPPORTED,
                              "sgemm (M=%d N=%d K=%d, %s): no cuBLASLt algorithm for these strides", M, N, K,
                              prec_name);
                goto done;
            }
            slot->valid = true;
            memcpy(slot->key, key, sizeof key);
            slot->algo = heur.algo;
        }
        LT_CHECK(cublasLtMatmul(x->lt, op, &alpha, b, la, a, lb, &beta, C, lc, C, lc, &slot->algo, x->workspace,
                                x->workspace_bytes, x->stream));
    }
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    return st;
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
    f.sgemm = cuda_sgemm;
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
extern "C" rtr_status rtr_backend_cuda_open(rtr_backend *b, int device) {
    memset(b, 0, sizeof *b);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return rtr_fail(RTR_ERR_DEVICE, "CUDA: %s", cudaGetErrorString(e));
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
    rtr_status st = RTR_OK;
    if ((e = cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&x->copy, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaEventCreateWithFlags(&x->uploaded, cudaEventDisableTiming)) != cudaSuccess ||
        (e = cudaMalloc(&x->workspace, x->workspace_bytes)) != cudaSuccess)
        st = rtr_fail(RTR_ERR_DEVICE, "CUDA device %d (%s): %s", device, prop.name, cudaGetErrorString(e));
    else if (cublasLtCreate(&x->lt) != CUBLAS_STATUS_SUCCESS)
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
