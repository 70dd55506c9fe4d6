/* The two CPU backends (include/rtr/backend.h). "cpu-ref" is the plain-C
 * references plus one OpenBLAS sgemm per GEMM, in fp32 only: the yardstick
 * every other backend is tested against, adding nothing; its op slots are
 * generated from the op list. "cpu" is what rtr computes with: the same
 * table, except that large GEMMs are split over the OpenMP threads, the
 * encoder's three hot ops take their fast paths (ops_cpu.c, tested against
 * the references in test_ops), in int8 precision the weight GEMMs run on
 * int8 weights quantised and packed once (cpu_gemm_packed.c,
 * tests/test_cpu_gemm.c), and in bf16 on bf16 weights converted and
 * reordered once for oneDNN (cpu_dnnl.c, tests/test_cpu_gemm_dnnl.c). Both
 * keep their arrays in host memory. */
#include "rtr/backend.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtr/ops.h"
#include "backend/cpu.h"
#include "backend/cpu_dnnl.h"
#include "backend/cpu_features.h"
#include "backend/cpu_gemm_packed.h"
#include "backend/ops_cpu.h"
#include "common/limits.h"
#include "common/util.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* ------------------------------------------------------------ memory */

/* A byte range [lo, hi) of weights a caller holds constant (hold_weights). */
typedef struct {
    const char *lo, *hi;
} cpu_range;

/* The fast backend's state: its GEMM precision and, in int8, every weight
 * matrix it has packed and the scratch the activations are quantised into;
 * in bf16 (and the oneDNN fp32 of the tests) oneDNN's state, made on first
 * use. A packed matrix lives until the precision changes, or, when it was
 * made from held weights, until they are forgotten (forget_weights) or the
 * backend is freed. n_made counts the matrices packed or reordered (the
 * cache's reuse is tested through it). The reference backend has none
 * (ctx NULL). */
typedef struct {
    rtr_gemm_precision precision;
    cpu_packed *packed;
    int n_packed, cap_packed;
    void *scratch;
    size_t scratch_bytes;
    cpu_dnnl *dnnl;
    cpu_range *held;
    int n_held, cap_held;
    long n_made;
} cpu_state;

static bool in_range(const cpu_range *r, const void *p) {
    return (const char *)p >= r->lo && (const char *)p < r->hi;
}

/* Whether weights at src are held (kept across precision changes). */
static bool held(const cpu_state *st, const void *src) {
    for (int i = 0; i < st->n_held; i++)
        if (in_range(&st->held[i], src)) return true;
    return false;
}

/* Which packed and reordered weights packed_drop forgets, by their source:
 * all of them (drop NULL), those not held (unheld, arg the state) or those
 * inside a range (in_dropped, arg the range). */
static bool unheld(const void *arg, const void *src) { return !held(arg, src); }
static bool in_dropped(const void *arg, const void *src) { return in_range(arg, src); }

static void packed_drop(cpu_state *st, bool (*drop)(const void *arg, const void *src), const void *arg) {
    int kept = 0;
    for (int i = 0; i < st->n_packed; i++) {
        if (!drop || drop(arg, st->packed[i].src)) cpu_packed_free(&st->packed[i]);
        else st->packed[kept++] = st->packed[i];
    }
    st->n_packed = kept;
    cpu_dnnl_drop(st->dnnl, drop, arg);
}

static void cpu_destroy(void *ctx) {
    cpu_state *st = ctx;
    if (!st) return;
    packed_drop(st, NULL, NULL);
    cpu_dnnl_free(st->dnnl);
    free(st->packed);
    free(st->scratch);
    free(st->held);
    free(st);
}

/* Held ranges may not overlap, so a forget names exactly one hold. */
static rtr_status cpu_hold_weights(void *ctx, const void *ptr, size_t bytes) {
    cpu_state *st = ctx;
    cpu_range r = {ptr, (const char *)ptr + bytes};
    if (!st || !bytes) return RTR_OK; /* the reference backend keeps nothing */
    for (int i = 0; i < st->n_held; i++)
        if (r.lo < st->held[i].hi && st->held[i].lo < r.hi)
            return rtr_fail(RTR_ERR_INVALID, "cpu backend: weights at %p (%zu bytes) overlap weights already held",
                            ptr, bytes);
    if (st->n_held == st->cap_held) {
        int cap = st->cap_held ? 2 * st->cap_held : 4;
        cpu_range *grown = realloc(st->held, (size_t)cap * sizeof *grown);
        if (!grown) return RTR_ERR_NOMEM;
        st->held = grown;
        st->cap_held = cap;
    }
    st->held[st->n_held++] = r;
    return RTR_OK;
}

static void cpu_forget_weights(void *ctx, const void *ptr, size_t bytes) {
    cpu_state *st = ctx;
    if (!st) return;
    cpu_range r = {ptr, (const char *)ptr + bytes};
    int kept = 0;
    for (int i = 0; i < st->n_held; i++)
        if (!(st->held[i].lo == r.lo && st->held[i].hi == r.hi)) st->held[kept++] = st->held[i];
    st->n_held = kept;
    packed_drop(st, in_dropped, &r);
}

void cpu_backend_cache_stats(const rtr_backend *b, int *cached, long *made) {
    const cpu_state *st = b->iface->hold_weights == cpu_hold_weights ? b->ctx : NULL;
    long dnnl_made = 0;
    *cached = st ? st->n_packed + cpu_dnnl_cached(st->dnnl, &dnnl_made) : 0;
    *made = st ? st->n_made + dnnl_made : 0;
}

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

/* Whether precision p runs on the oneDNN path. */
static bool on_dnnl(rtr_gemm_precision p) { return p == RTR_GEMM_BF16 || p == CPU_GEMM_DNNL_F32; }

/* The reference backend computes fp32 only; the fast one fp32, int8 (when
 * the CPU has the kernel's instructions) or bf16 (oneDNN and AVX-512 BF16,
 * cpu_dnnl_check). What cannot run here is refused with the reason, never
 * silently computed in fp32. Any change of precision drops the packed
 * weights made from B operands nobody holds, so such weights freed or
 * changed meanwhile are never served stale; held ones (an encoder's) stay
 * until forgotten. */
static rtr_status cpu_set_gemm_precision(void *ctx, rtr_gemm_precision p) {
    cpu_state *st = ctx;
    rtr_status s = RTR_OK;
    if (p == CPU_GEMM_I8 && !(st && cpu_packed_available()))
        return rtr_fail(RTR_ERR_UNSUPPORTED, "int8 GEMMs need %s (this CPU: %s)",
                        st ? "AVX2 and FMA" : "the fast CPU backend", cpu_features_describe());
    if (on_dnnl(p)) {
        if (!st)
            return rtr_fail(RTR_ERR_UNSUPPORTED, "gemm precision %s needs the fast CPU backend (this one computes "
                            "the plain-C references in fp32)", p == RTR_GEMM_BF16 ? "bf16" : "oneDNN fp32");
        s = cpu_dnnl_check(p);
        if (!s && !st->dnnl) s = cpu_dnnl_create(&st->dnnl);
        if (s) return s;
    }
    if (p == RTR_GEMM_F16)
        return rtr_fail(RTR_ERR_INVALID, "gemm precision fp16 needs a CUDA device: the CPU computes in fp32, "
                        "int8 or bf16");
    if (p == CPU_GEMM_BF16_MODEL && !st)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "gemm precision bf16 (model) needs the fast CPU backend");
    if (p != RTR_GEMM_F32 && p != CPU_GEMM_I8 && p != CPU_GEMM_BF16_MODEL && !on_dnnl(p))
        return rtr_fail(RTR_ERR_INVALID, "gemm precision %d unknown", (int)p);
    if (st && st->precision != p) packed_drop(st, unheld, st);
    if (st) st->precision = p;
    return RTR_OK;
}

/* fp32 and oneDNN (bf16, and its fp32 test precision): every op computes
 * on its calling thread, oneDNN's GEMMs with a slot per thread and their
 * weight cache under a lock (cpu_dnnl.h). Not int8 nor the bf16 model,
 * whose packed weights and scratch are shared. bf16 where it runs
 * (cpu_dnnl_bf16_runs), its bound in tests/test_cpu_gemm_dnnl.c. */
static unsigned cpu_caps(void *ctx) {
    cpu_state *st = ctx;
    unsigned c = st->precision == RTR_GEMM_F32 || on_dnnl(st->precision) ? RTR_CAP_CONCURRENT_OPS : 0;
    if (cpu_dnnl_bf16_runs()) c |= RTR_CAP_FAST_BF16;
    return c;
}

/* ------------------------------------------------------- the references */

static rtr_status cpu_ref_sgemm(void *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                                const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    (void)ctx;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
    return RTR_OK;
}

/* cpu_ref_<op>: forward the slot to the reference rtr_<op>. */
#define CPU_REF_RETURN_VOID(call) \
    call;                         \
    return RTR_OK
#define CPU_REF_RETURN_STATUS(call) return call
#define CPU_REF_ADAPTER(E, name, ret, params, args)     \
    static rtr_status cpu_ref_##name RTR_OP_PARAMS params { \
        (void)ctx;                                      \
        CPU_REF_RETURN_##ret(rtr_##name args);          \
    }
RTR_BACKEND_OPS(CPU_REF_ADAPTER)
#undef CPU_REF_ADAPTER

/* ------------------------------------------------------ the fast paths */

/* Below this many multiply-adds a GEMM is one BLAS call: a training batch's
 * GEMMs (32 x 768 x 768, 19M) are faster serial than paying a parallel
 * region (2.4x slower epochs when they were split); an encoder batch's are
 * in the billions. */
#define CPU_GEMM_SPLIT_MIN (1 << 26)

/* The fast CPU backend owns BLAS threading: its BLAS calls always run on one
 * OpenBLAS thread and parallelism is OpenMP's (one thread pool instead of
 * OpenBLAS's threads competing with OpenMP's spinning ones; small GEMMs are
 * faster serial anyway). The caller's OpenBLAS setting is put back when the
 * last op in flight ends: ops may run on several threads at once (the
 * encoder's texts split over the threads), and one op putting the setting
 * back must not hand another op's BLAS calls OpenBLAS's threads. */
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_ops, blas_saved;

void cpu_blas_serial_begin(void) {
    pthread_mutex_lock(&blas_lock);
    if (blas_ops++ == 0) {
        blas_saved = openblas_get_num_threads();
        openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_lock);
}
void cpu_blas_serial_end(void) {
    pthread_mutex_lock(&blas_lock);
    if (--blas_ops == 0) openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_lock);
}

/* B quantised for the int8 kernel: from the cache, or packed now and kept.
 * In int8 a B operand is taken to be constant weights until the precision
 * changes, or while held (the contract of set_gemm_precision). */
static rtr_status packed_weights(cpu_state *st, const float *B, int ldb, int N, int K, const cpu_packed **out) {
    for (int i = 0; i < st->n_packed; i++) {
        const cpu_packed *m = &st->packed[i];
        if (m->src == B && m->ldb == ldb && m->N == N && m->K == K) {
            *out = m;
            return RTR_OK;
        }
    }
    if (st->n_packed == st->cap_packed) {
        int cap = st->cap_packed ? 2 * st->cap_packed : 64;
        cpu_packed *grown = realloc(st->packed, (size_t)cap * sizeof *grown);
        if (!grown) return RTR_ERR_NOMEM;
        st->packed = grown;
        st->cap_packed = cap;
    }
    rtr_status s = cpu_pack_b(&st->packed[st->n_packed], B, ldb, N, K);
    if (s) return s;
    st->n_made++;
    *out = &st->packed[st->n_packed++];
    return RTR_OK;
}

/* st->scratch of at least `need` bytes, 32-byte aligned. */
static rtr_status scratch_reserve(cpu_state *st, size_t need) {
    if (need <= st->scratch_bytes) return RTR_OK;
    free(st->scratch);
    st->scratch = aligned_alloc(32, (need + 31) / 32 * 32);
    st->scratch_bytes = st->scratch ? need : 0;
    return st->scratch ? RTR_OK : RTR_ERR_NOMEM;
}

/* C = alpha · A · Bᵀ on the int8 kernel. */
static rtr_status sgemm_i8(cpu_state *st, int M, int N, int K, float alpha, const float *A, int lda,
                               const float *B, int ldb, float *C, int ldc) {
    const cpu_packed *packed;
    rtr_status s = packed_weights(st, B, ldb, N, K, &packed);
    if (!s) s = scratch_reserve(st, cpu_packed_scratch_bytes(packed, M));
    if (s) return s;
    bool split = (double)M * N * K >= CPU_GEMM_SPLIT_MIN && omp_get_max_threads() > 1;
    cpu_packed_gemm(packed, M, alpha, A, lda, C, ldc, st->scratch, split);
    return RTR_OK;
}

/* The smallest p such that OpenBLAS's sgemm gives a row of C = A·Bᵀ the
 * same bits whatever the call, as long as the call's M is a multiple of p
 * and the row's offset in it is the same modulo p: found once by computing
 * 192 rows (a multiple of every candidate) in one call, then rows from p on
 * as calls of p, 2p and 3p rows. Zen's kernel (OpenBLAS 0.3.21) takes rows
 * in tiles of 12 whose two halves round differently, and rows past the last
 * full tile through narrower kernels, so a row's bits depended on where it
 * fell in the batch; p = 12 there. 0 when no candidate holds. */
static int row_block;

static void row_block_probe(void) {
    enum { PN = 48, PK = 96, PM = 192 };
    static const int candidates[] = {1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96};
    float *a = malloc(sizeof *a * PM * PK), *b = malloc(sizeof *b * PN * PK);
    float *full = malloc(sizeof *full * PM * PN), *part = malloc(sizeof *part * PM * PN);
    if (!a || !b || !full || !part) goto done;
    uint32_t x = 12345;
    for (int i = 0; i < PM * PK; i++) a[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    for (int i = 0; i < PN * PK; i++) b[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, PM, PN, PK, 1.0f, a, PK, b, PK, 0.0f, full, PN);
    for (size_t c = 0; c < sizeof candidates / sizeof *candidates && !row_block; c++) {
        int p = candidates[c];
        bool same = true;
        /* p rows at p, 2p rows at 2p, 3p rows at 3p, as far as they fit */
        for (int j = 1; j <= 3 && same && (2 * j) * p <= PM; j++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j * p, PN, PK, 1.0f, a + (size_t)j * p * PK, PK, b,
                        PK, 0.0f, part, PN);
            same = !memcmp(part, full + (size_t)j * p * PN, sizeof *part * j * p * PN);
        }
        if (same) row_block = p;
    }
    openblas_set_num_threads(threads);
done:
    free(a), free(b), free(full), free(part);
}

int cpu_sgemm_row_block(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, row_block_probe);
    return row_block;
}

/* fp32 GEMMs: the rows of C are split over the OpenMP threads when large,
 * each calling a single-threaded sgemm on a multiple of the row block, so a
 * row gets the bits it would get unsplit. */
static rtr_status sgemm_f32(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                            const float *B, int ldb, float beta, float *C, int ldc) {
    CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    cpu_blas_serial_begin();
    bool split = (double)M * N * K >= CPU_GEMM_SPLIT_MIN && omp_get_max_threads() > 1;
    int p = split ? cpu_sgemm_row_block() : 0;
#pragma omp parallel if (split)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int rows = (M + nt - 1) / nt;
        if (p > 1) rows = (rows + p - 1) / p * p;
        int r0 = t * rows < M ? t * rows : M, r1 = r0 + rows < M ? r0 + rows : M;
        /* row r of op(A) starts at A + r·lda, or at column r when A is transposed */
        const float *a = trans_a ? A + r0 : A + (size_t)r0 * lda;
        if (r1 > r0)
            cblas_sgemm(CblasRowMajor, ta, tb, r1 - r0, N, K, alpha, a, lda, B, ldb, beta, C + (size_t)r0 * ldc, ldc);
    }
    cpu_blas_serial_end();
    return RTR_OK;
}

/* The bf16 path's arithmetic on OpenBLAS (CPU_GEMM_BF16_MODEL): A and B
 * rounded to bf16 as cpu_dnnl.c rounds them, their products (exact in
 * fp32) summed in fp32 by sgemm, so it runs, slowly, on every CPU. */
static rtr_status sgemm_bf16_model(cpu_state *st, int M, int N, int K, float alpha, const float *A, int lda,
                                   const float *B, int ldb, float *C, int ldc) {
    rtr_status s = scratch_reserve(st, sizeof(float) * ((size_t)M + N) * K);
    if (s) return s;
    float *a = st->scratch, *b = a + (size_t)M * K;
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++) a[(size_t)m * K + k] = rtr_bf16_float(rtr_bf16_round(A[(size_t)m * lda + k]));
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) b[(size_t)n * K + k] = rtr_bf16_float(rtr_bf16_round(B[(size_t)n * ldb + k]));
    return sgemm_f32(false, true, M, N, K, alpha, a, K, b, K, 0.0f, C, ldc);
}

/* The weight GEMMs (A · Bᵀ, β = 0: every linear layer) go to the int8
 * kernel in int8 and, with C's rows dense as well, to oneDNN in bf16 (or
 * its model); every other GEMM stays fp32. */
static rtr_status cpu_sgemm(void *ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cpu_state *st = ctx;
    bool weights = !trans_a && trans_b && beta == 0.0f && M > 0 && N > 0 && K > 0;
    if (st->precision == CPU_GEMM_I8 && weights && K <= CPU_I8_MAX_K)
        return sgemm_i8(st, M, N, K, alpha, A, lda, B, ldb, C, ldc);
    if (on_dnnl(st->precision) && weights && ldc == N)
        return cpu_dnnl_gemm(st->dnnl, st->precision == RTR_GEMM_BF16,
                             (double)M * N * K >= CPU_GEMM_SPLIT_MIN && omp_get_max_threads() > 1, M, N, K, alpha, A,
                             lda, B, ldb, C);
    if (st->precision == CPU_GEMM_BF16_MODEL && weights && ldc == N)
        return sgemm_bf16_model(st, M, N, K, alpha, A, lda, B, ldb, C, ldc);
    return sgemm_f32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static rtr_status cpu_attention(void *ctx, float *out, float *att, const float *qkv, const float *bias,
                                const int32_t *lens, int B, int T, int C, int NH) {
    (void)ctx;
    cpu_blas_serial_begin(); /* its per-thread GEMMs need it (backend/ops_cpu.h) */
    attention_forward_cpu(out, att, qkv, bias, lens, B, T, C, NH);
    cpu_blas_serial_end();
    return RTR_OK;
}

static rtr_status cpu_bias_gelu(void *ctx, float *out, const float *inp, const float *bias, int N, int C) {
    (void)ctx;
    bias_gelu_forward_cpu(out, inp, bias, N, C);
    return RTR_OK;
}

static rtr_status cpu_residual_layernorm(void *ctx, float *out, const float *inp, const float *bias,
                                         const float *residual, const float *ln_w, const float *ln_b, float eps,
                                         int N, int C) {
    (void)ctx;
    residual_layernorm_forward_cpu(out, inp, bias, residual, ln_w, ln_b, eps, N, C);
    return RTR_OK;
}

/* ------------------------------------------------------------- tables */

static rtr_backend_iface ref_iface, fast_iface;

static void ifaces_init(void) {
    ref_iface = (rtr_backend_iface){
        .name = "cpu-ref",
        .destroy = cpu_destroy,
        .alloc = cpu_alloc,
        .free_mem = cpu_free_mem,
        .upload = cpu_copy,
        .download = cpu_copy,
        .zero = cpu_zero,
        .synchronize = cpu_synchronize,
        .host_alloc = cpu_alloc,
        .host_free = cpu_free_mem,
        .upload_async = cpu_copy,
        .download_async = cpu_copy,
        .set_gemm_precision = cpu_set_gemm_precision,
        .sgemm = cpu_ref_sgemm,
#define CPU_REF_SLOT(E, name, ret, params, args) .name = cpu_ref_##name,
        RTR_BACKEND_OPS(CPU_REF_SLOT)
#undef CPU_REF_SLOT
    };
    fast_iface = ref_iface;
    fast_iface.name = "cpu";
    fast_iface.sgemm = cpu_sgemm;
    fast_iface.caps = cpu_caps;
    fast_iface.hold_weights = cpu_hold_weights;
    fast_iface.forget_weights = cpu_forget_weights;
    fast_iface.attention_forward = cpu_attention;
    fast_iface.bias_gelu_forward = cpu_bias_gelu;
    fast_iface.residual_layernorm_forward = cpu_residual_layernorm;
}

static rtr_status cpu_open(rtr_backend *b, bool fast) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ifaces_init);
    memset(b, 0, sizeof *b);
    rtr_status s = rtr_cpu_threads_fit(); /* under ulimit -v: threads whose BLAS buffers fit, or a clear error */
    if (s) return s;
    if (fast && !(b->ctx = rtr_calloc(1, sizeof(cpu_state)))) return RTR_ERR_NOMEM;
    b->iface = fast ? &fast_iface : &ref_iface;
    snprintf(b->device, sizeof b->device, "CPU, %d threads%s", omp_get_max_threads(),
             fast ? "" : " (plain-C references)");
    return RTR_OK;
}

rtr_status rtr_backend_cpu_open(rtr_backend *b) { return cpu_open(b, true); }
rtr_status rtr_backend_ref_open(rtr_backend *b) { return cpu_open(b, false); }

bool rtr_backend_is_host(const rtr_backend *b) { return b->iface == &fast_iface || b->iface == &ref_iface; }
