/* The CPU backend's oneDNN GEMMs; see cpu_dnnl.h. */
#include "backend/cpu_dnnl.h"

#include <stdio.h>
#include <stdlib.h>

#include "backend/cpu_features.h"
#include "common/util.h"

#ifndef RTR_HAVE_DNNL

bool cpu_dnnl_built(void) { return false; }
const char *cpu_dnnl_version(void) { return ""; }
bool cpu_dnnl_bf16_runs(void) { return false; }

rtr_status cpu_dnnl_check(rtr_gemm_precision p) {
    return rtr_fail(RTR_ERR_UNSUPPORTED, "%s GEMMs on the CPU need oneDNN: this rtr was built without it "
                    "(CMake RTR_DNNL, Debian libdnnl-dev)", p == RTR_GEMM_BF16 ? "bf16" : "oneDNN fp32");
}

rtr_status cpu_dnnl_create(cpu_dnnl **out) {
    *out = NULL;
    return cpu_dnnl_check(RTR_GEMM_BF16);
}
void cpu_dnnl_drop(cpu_dnnl *d, bool (*drop)(const void *arg, const void *src), const void *arg) {
    (void)d, (void)drop, (void)arg;
}
int cpu_dnnl_cached(const cpu_dnnl *d, long *made) {
    (void)d;
    *made = 0;
    return 0;
}
void cpu_dnnl_free(cpu_dnnl *d) { (void)d; }

rtr_status cpu_dnnl_gemm(cpu_dnnl *d, bool bf16, bool split, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float *C) {
    (void)d, (void)split, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb, (void)C;
    return cpu_dnnl_check(bf16 ? RTR_GEMM_BF16 : CPU_GEMM_DNNL_F32);
}

#else

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

/* One weight matrix as the primitive wants it, with its primitive. */
typedef struct {
    const float *src; /* the float matrix it was made from (cache key with ldb, N, K, bf16) */
    int ldb, N, K;
    bool bf16;
    dnnl_primitive_t matmul;
    dnnl_memory_t weights; /* reordered, owned by oneDNN */
    size_t pad_bytes;      /* the primitive's scratchpad (user mode: each caller passes its own) */
} dnnl_weights;

/* What one calling thread uses alone: its stream, A converted (M x K of the
 * input type) and the primitives' scratchpad. */
typedef struct {
    dnnl_stream_t stream;
    void *a, *pad;
    size_t a_bytes, pad_bytes;
} dnnl_slot;

/* Calls may come from this many threads of one OpenMP team at once (slot =
 * omp_get_thread_num()); the encoder's threads are capped at 1024. */
#define DNNL_SLOTS 1024

struct cpu_dnnl {
    dnnl_engine_t engine;
    pthread_mutex_t lock; /* the weight cache, and the making of slots' streams */
    dnnl_weights *w;
    int n_w, cap_w;
    long n_made;
    dnnl_slot slot[DNNL_SLOTS];
};

bool cpu_dnnl_built(void) { return true; }

const char *cpu_dnnl_version(void) {
    static _Thread_local char v[32];
    const dnnl_version_t *dv = dnnl_version();
    snprintf(v, sizeof v, "%d.%d.%d", dv->major, dv->minor, dv->patch);
    return v;
}

/* oneDNN's status as an rtr error naming the call. */
static rtr_status dnnl_fail(dnnl_status_t st, const char *what) {
    if (st == dnnl_success) return RTR_OK;
    if (st == dnnl_out_of_memory) return rtr_fail(RTR_ERR_NOMEM, "oneDNN %s: out of memory", what);
    return rtr_fail(st == dnnl_unimplemented ? RTR_ERR_UNSUPPORTED : RTR_ERR_INVALID,
                    "oneDNN %s %s: %s (status %d)", cpu_dnnl_version(), what,
                    st == dnnl_unimplemented ? "no implementation on this CPU" : "failed", (int)st);
}

rtr_status cpu_dnnl_create(cpu_dnnl **out) {
    cpu_dnnl *d = rtr_calloc(1, sizeof *d);
    if (!d) return RTR_ERR_NOMEM;
    pthread_mutex_init(&d->lock, NULL);
    rtr_status s = dnnl_fail(dnnl_engine_create(&d->engine, dnnl_cpu, 0), "engine");
    if (s) {
        cpu_dnnl_free(d);
        d = NULL;
    }
    *out = d;
    return s;
}

void cpu_dnnl_drop(cpu_dnnl *d, bool (*drop)(const void *arg, const void *src), const void *arg) {
    if (!d) return;
    int kept = 0;
    for (int i = 0; i < d->n_w; i++) {
        if (drop && !drop(arg, d->w[i].src)) {
            d->w[kept++] = d->w[i];
            continue;
        }
        dnnl_primitive_destroy(d->w[i].matmul);
        dnnl_memory_destroy(d->w[i].weights);
    }
    d->n_w = kept;
}

int cpu_dnnl_cached(const cpu_dnnl *d, long *made) {
    *made = d ? d->n_made : 0;
    return d ? d->n_w : 0;
}

void cpu_dnnl_free(cpu_dnnl *d) {
    if (!d) return;
    cpu_dnnl_drop(d, NULL, NULL);
    free(d->w);
    for (int i = 0; i < DNNL_SLOTS; i++) {
        free(d->slot[i].a);
        free(d->slot[i].pad);
        if (d->slot[i].stream) dnnl_stream_destroy(d->slot[i].stream);
    }
    if (d->engine) dnnl_engine_destroy(d->engine);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* rows x cols of x (row stride ld) into dst, dense, as bf16 or fp32. */
static void convert(void *dst, bool bf16, const float *x, int rows, int cols, int ld) {
#pragma omp parallel for if ((double)rows * cols >= 1 << 18)
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * ld;
        if (bf16) {
            rtr_bf16 *o = (rtr_bf16 *)dst + (size_t)r * cols;
            for (int c = 0; c < cols; c++) o[c] = rtr_bf16_round(row[c]);
        } else {
            memcpy((float *)dst + (size_t)r * cols, row, sizeof(float) * (size_t)cols);
        }
    }
}

/* A row-major rows x cols matrix with row stride ld (rows may be
 * DNNL_RUNTIME_DIM_VAL). oneDNN's dims are K x N for the weights, so the
 * weights' N x K rows are described as columns: swap = true. */
static dnnl_status_t md_init(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int64_t ld, dnnl_data_type_t dt,
                             bool swap) {
    dnnl_dims_t dims = {rows, cols}, strides = {ld, 1};
    if (swap) dims[0] = cols, dims[1] = rows, strides[0] = 1, strides[1] = ld;
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

/* The matmul for N x K weights (run-time rows, dense fp32 output, weights
 * in the layout oneDNN chooses) on engine e. Its scratchpad is the
 * caller's (user mode), so threads can run it at once, each with its own. */
static rtr_status matmul_pd(dnnl_engine_t e, bool bf16, int N, int K, dnnl_primitive_desc_t *pd) {
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a_md, w_any, c_md;
    dnnl_dims_t wdims = {K, N};
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    *pd = NULL;
    rtr_status s = dnnl_fail(md_init(&a_md, DNNL_RUNTIME_DIM_VAL, K, K, dt, false), "source descriptor");
    if (!s) s = dnnl_fail(md_init(&c_md, DNNL_RUNTIME_DIM_VAL, N, N, dnnl_f32, false), "destination descriptor");
    if (!s) s = dnnl_fail(dnnl_memory_desc_init_by_tag(&w_any, 2, wdims, dt, dnnl_format_tag_any), "weights");
    if (!s) s = dnnl_fail(dnnl_matmul_desc_init(&desc, &a_md, &w_any, NULL, &c_md), "matmul descriptor");
    if (!s) s = dnnl_fail(dnnl_primitive_attr_create(&attr), "matmul attributes");
    if (!s) s = dnnl_fail(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    if (!s) s = dnnl_fail(dnnl_primitive_desc_create(pd, &desc, attr, e, NULL), bf16 ? "bf16 matmul" : "fp32 matmul");
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s;
}

/* Whether oneDNN makes the bf16 matmul here, asked once (an encoder's
 * layer shape): a CPU that reports AVX-512 BF16 to a oneDNN that still has
 * no such primitive is refused at set_gemm_precision, not at the first
 * GEMM, so "auto" never picks a bf16 that then fails. */
static bool bf16_made;
static void bf16_probe(void) {
    dnnl_engine_t e;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_engine_create(&e, dnnl_cpu, 0) != dnnl_success) return;
    bf16_made = matmul_pd(e, true, 1152, 384, &pd) == RTR_OK;
    if (pd) dnnl_primitive_desc_destroy(pd);
    dnnl_engine_destroy(e);
}

bool cpu_dnnl_bf16_runs(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (!cpu_features_get()->avx512_bf16) return false;
    pthread_once(&once, bf16_probe);
    return bf16_made;
}

rtr_status cpu_dnnl_check(rtr_gemm_precision p) {
    if (p == RTR_GEMM_BF16 && !cpu_features_get()->avx512_bf16)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "bf16 GEMMs on the CPU need AVX-512 BF16 (this CPU: %s; oneDNN %s "
                        "has no bf16 matmul on it, or only an emulated one slower than fp32)",
                        cpu_features_describe(), cpu_dnnl_version());
    if (p == RTR_GEMM_BF16 && !cpu_dnnl_bf16_runs())
        return rtr_fail(RTR_ERR_UNSUPPORTED, "bf16 GEMMs on the CPU: oneDNN %s makes no bf16 matmul on this CPU "
                        "(%s)", cpu_dnnl_version(), cpu_features_describe());
    return RTR_OK;
}

/* The primitive for B and B reordered into the layout it chose (format
 * "any"), made once per weight matrix, on the caller's stream. */
static rtr_status make_weights(cpu_dnnl *d, dnnl_stream_t stream, dnnl_weights *w, bool bf16, const float *B,
                               int ldb, int N, int K) {
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t w_plain;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t plain = NULL;
    *w = (dnnl_weights){.src = B, .ldb = ldb, .N = N, .K = K, .bf16 = bf16};
    void *dense = malloc((bf16 ? 2 : 4) * (size_t)N * K);
    if (!dense) return RTR_ERR_NOMEM;
    rtr_status s = matmul_pd(d->engine, bf16, N, K, &pd);
    if (!s) s = dnnl_fail(dnnl_primitive_create(&w->matmul, pd), "matmul primitive");
    if (!s) w->pad_bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
    const dnnl_memory_desc_t *w_md = s ? NULL : dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!s) s = dnnl_fail(dnnl_memory_create(&w->weights, w_md, d->engine, DNNL_MEMORY_ALLOCATE), "weights memory");
    /* B's rows are the weights' columns: dense N x K, then oneDNN's reorder */
    if (!s) convert(dense, bf16, B, N, K, ldb);
    if (!s) s = dnnl_fail(md_init(&w_plain, N, K, K, dt, true), "weights descriptor");
    if (!s) s = dnnl_fail(dnnl_memory_create(&plain, &w_plain, d->engine, dense), "weights memory");
    if (!s) s = dnnl_fail(dnnl_reorder_primitive_desc_create(&rpd, &w_plain, d->engine, w_md, d->engine, NULL),
                          "weights reorder");
    if (!s) s = dnnl_fail(dnnl_primitive_create(&reorder, rpd), "weights reorder");
    if (!s) {
        dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, w->weights}};
        s = dnnl_fail(dnnl_primitive_execute(reorder, stream, 2, args), "weights reorder");
    }
    if (!s) s = dnnl_fail(dnnl_stream_wait(stream), "weights reorder");
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (plain) dnnl_memory_destroy(plain);
    free(dense);
    if (s) {
        if (w->matmul) dnnl_primitive_destroy(w->matmul);
        if (w->weights) dnnl_memory_destroy(w->weights);
    }
    return s;
}

/* B's cache entry, made now when absent, copied to *out: the cache may
 * grow (and move) under another thread's call meanwhile, its primitives
 * and memories stay. */
static rtr_status weights_locked(cpu_dnnl *d, dnnl_stream_t stream, bool bf16, const float *B, int ldb, int N,
                                 int K, dnnl_weights *out) {
    for (int i = 0; i < d->n_w; i++) {
        const dnnl_weights *w = &d->w[i];
        if (w->src == B && w->ldb == ldb && w->N == N && w->K == K && w->bf16 == bf16) {
            *out = *w;
            return RTR_OK;
        }
    }
    if (d->n_w == d->cap_w) {
        int cap = d->cap_w ? 2 * d->cap_w : 64;
        dnnl_weights *grown = realloc(d->w, (size_t)cap * sizeof *grown);
        if (!grown) return RTR_ERR_NOMEM;
        d->w = grown;
        d->cap_w = cap;
    }
    rtr_status s = make_weights(d, stream, &d->w[d->n_w], bf16, B, ldb, N, K);
    if (s) return s;
    d->n_made++;
    *out = d->w[d->n_w++];
    return RTR_OK;
}

/* The calling thread's slot, its stream made on first use. */
static rtr_status slot_for(cpu_dnnl *d, dnnl_slot **out) {
    int t = omp_get_thread_num();
    if (t >= DNNL_SLOTS)
        return rtr_fail(RTR_ERR_INVALID, "oneDNN GEMM called from OpenMP thread %d: at most %d", t, DNNL_SLOTS);
    dnnl_slot *sl = &d->slot[t];
    rtr_status s = RTR_OK;
    if (!sl->stream) {
        pthread_mutex_lock(&d->lock);
        s = dnnl_fail(dnnl_stream_create(&sl->stream, d->engine, dnnl_stream_default_flags), "stream");
        pthread_mutex_unlock(&d->lock);
    }
    *out = sl;
    return s;
}

/* *buf of at least `need` bytes, 64-byte aligned (oneDNN's scratchpad). */
static rtr_status reserve(void **buf, size_t *bytes, size_t need) {
    if (need <= *bytes) return RTR_OK;
    free(*buf);
    *buf = aligned_alloc(64, (need + 63) / 64 * 64);
    *bytes = *buf ? need : 0;
    return *buf ? RTR_OK : RTR_ERR_NOMEM;
}

/* cpu_dnnl_gemm on the calling thread alone (oneDNN sees one thread). */
static rtr_status gemm_rows(cpu_dnnl *d, bool bf16, int M, int N, int K, float alpha, const float *A, int lda,
                            const float *B, int ldb, float *C) {
    dnnl_slot *sl = NULL; /* set by slot_for when it succeeds (gcc cannot see that) */
    dnnl_weights w;
    rtr_status s = slot_for(d, &sl);
    if (s) return s;
    pthread_mutex_lock(&d->lock);
    s = weights_locked(d, sl->stream, bf16, B, ldb, N, K, &w);
    pthread_mutex_unlock(&d->lock);
    if (!s) s = reserve(&sl->a, &sl->a_bytes, (bf16 ? 2 : 4) * (size_t)M * K);
    if (!s) s = reserve(&sl->pad, &sl->pad_bytes, w.pad_bytes);
    if (s) return s;
    convert(sl->a, bf16, A, M, K, lda);
    dnnl_memory_desc_t a_md, c_md, pad_md;
    dnnl_memory_t a = NULL, c = NULL, pad = NULL;
    dnnl_dims_t pad_dims = {(dnnl_dim_t)w.pad_bytes};
    s = dnnl_fail(md_init(&a_md, M, K, K, bf16 ? dnnl_bf16 : dnnl_f32, false), "source descriptor");
    if (!s) s = dnnl_fail(md_init(&c_md, M, N, N, dnnl_f32, false), "destination descriptor");
    if (!s) s = dnnl_fail(dnnl_memory_create(&a, &a_md, d->engine, sl->a), "source memory");
    if (!s) s = dnnl_fail(dnnl_memory_create(&c, &c_md, d->engine, C), "destination memory");
    if (!s && w.pad_bytes) s = dnnl_fail(dnnl_memory_desc_init_by_tag(&pad_md, 1, pad_dims, dnnl_u8, dnnl_a),
                                         "scratchpad descriptor");
    if (!s && w.pad_bytes) s = dnnl_fail(dnnl_memory_create(&pad, &pad_md, d->engine, sl->pad), "scratchpad");
    if (!s) {
        dnnl_exec_arg_t args[] = {
            {DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w.weights}, {DNNL_ARG_DST, c}, {DNNL_ARG_SCRATCHPAD, pad}};
        s = dnnl_fail(dnnl_primitive_execute(w.matmul, sl->stream, pad ? 4 : 3, args), "matmul");
    }
    if (!s) s = dnnl_fail(dnnl_stream_wait(sl->stream), "matmul");
    if (a) dnnl_memory_destroy(a);
    if (c) dnnl_memory_destroy(c);
    if (pad) dnnl_memory_destroy(pad);
    /* alpha after the product (the encoder's linear layers have 1): one
     * primitive serves every alpha */
    if (!s && alpha != 1.0f)
        for (size_t i = 0; i < (size_t)M * N; i++) C[i] *= alpha;
    return s;
}

/* Split, the rows go to the OpenMP threads in equal runs, each run one
 * single-threaded call: oneDNN never cuts a row's sum (its gemm driver may
 * split K over threads, by shape and thread count), so a row's bits do not
 * depend on the call it is in or on the thread count, as when the
 * encoder's threads each compute their own texts' rows. */
rtr_status cpu_dnnl_gemm(cpu_dnnl *d, bool bf16, bool split, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float *C) {
    int nt = split ? omp_get_max_threads() : 1;
    if (nt > M) nt = M;
    if (nt <= 1) {
        int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        rtr_status s = gemm_rows(d, bf16, M, N, K, alpha, A, lda, B, ldb, C);
        omp_set_num_threads(threads);
        return s;
    }
    rtr_status s = RTR_OK;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int r0 = (int)((long)M * t / n), r1 = (int)((long)M * (t + 1) / n);
        omp_set_num_threads(1); /* oneDNN's own regions: this thread alone */
        rtr_status st = r1 > r0 ? gemm_rows(d, bf16, r1 - r0, N, K, alpha, A + (size_t)r0 * lda, lda, B, ldb,
                                            C + (size_t)r0 * N)
                                : RTR_OK;
        if (st) {
#pragma omp critical /* unnamed: a named one exports a symbol from librtr.so (test_install.sh) */
            if (!s) s = st;
        }
    }
    return s;
}

#endif
