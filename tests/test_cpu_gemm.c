/* The CPU backend's int8-weight GEMM (src/backend/cpu_gemm_packed.c)
 * against an independent plain-C model of the same quantisation at awkward
 * shapes (identical results expected), against the exact product within the
 * quantisation error bound, through the backend's sgemm slot (weight cache,
 * fp32 fallbacks, refusals), and the whole encoder in int8 against
 * sentence-transformers on the golden texts (cosine >= 0.99 per text). The
 * int8 parts skip (77) on a CPU without AVX2 + FMA.
 *
 * And the bound of the CPU's bf16 path (oneDNN, src/backend/cpu_dnnl.c) on
 * every CPU, whether it has AVX-512 BF16 or not: the whole encoder with its
 * linear layers' operands rounded to bf16 and summed in fp32 (the model of
 * that path, CPU_GEMM_BF16_MODEL) against sentence-transformers, cosine >=
 * 0.999 per golden text. test_cpu_gemm_dnnl.c runs the path itself where
 * it can, and checks the model's rounding. */
#include "rtr/backend.h"
#include "rtr/encoder.h"
#include "backend/cpu_dnnl.h"
#include "backend/cpu_features.h"
#include "backend/cpu_gemm_packed.h"
#include "encoder_fixture.h"
#include "test.h"

#include <omp.h>
#include <string.h>

#define SENTINEL 12345.0f

static float *rand_matrix(int rows, int ld, double scale) {
    float *x = malloc(sizeof *x * (size_t)rows * (size_t)ld);
    for (size_t i = 0; i < (size_t)rows * (size_t)ld; i++) x[i] = (float)(scale * (2 * test_urand() - 1));
    return x;
}

/* The quantisation as documented in cpu_gemm_i8.h, written independently:
 * per row, scale max|x| / levels and q = rint(x · levels / max|x|), with 127
 * levels for weights and the most that keep int32 sums exact for
 * activations. */
static int a_levels(int K) {
    int64_t kp = K + (K & 1), l = 2147483647LL / (127 * kp);
    return l < 32767 ? (int)l : 32767;
}
static void model_quantize(const float *x, int K, int levels, int16_t *q, float *scale) {
    float maxabs = 0;
    for (int k = 0; k < K; k++) maxabs = fmaxf(maxabs, fabsf(x[k]));
    float inv = maxabs > 0 ? (float)levels / maxabs : 0.0f;
    *scale = maxabs > 0 ? maxabs / (float)levels : 0.0f;
    for (int k = 0; k < K; k++) q[k] = (int16_t)nearbyintf(x[k] * inv);
}

/* C = alpha · A · Bᵀ from the model quantisation, the int sums exact. */
static void model_gemm(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float *C,
                       int ldc) {
    int16_t *qa = malloc(2 * ((size_t)M * K + 1)), *qb = malloc(2 * ((size_t)N * K + 1));
    float *sa = malloc(sizeof *sa * M), *sb = malloc(sizeof *sb * N);
    CHECK(cpu_i8_a_levels(K) == a_levels(K));
    for (int m = 0; m < M; m++) model_quantize(A + (size_t)m * lda, K, a_levels(K), qa + (size_t)m * K, &sa[m]);
    for (int n = 0; n < N; n++) model_quantize(B + (size_t)n * ldb, K, 127, qb + (size_t)n * K, &sb[n]);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            int64_t acc = 0;
            for (int k = 0; k < K; k++) acc += (int64_t)qa[(size_t)m * K + k] * qb[(size_t)n * K + k];
            C[(size_t)m * ldc + n] = (float)acc * ((alpha * sa[m]) * sb[n]);
        }
    free(qa), free(qb), free(sa), free(sb);
}

static const int shapes[][3] = {{1, 1, 1},     {1, 16, 2},     {5, 15, 3},      {6, 16, 31},
                                {7, 17, 64},   {13, 33, 385},  {64, 48, 768},   {97, 130, 1536},
                                {300, 40, 17}, {2, 3, 3072},   {3, 18, 20001}};

static bool have_i8(void) { return cpu_packed_available(); }

static void *scratch_for(const cpu_packed *B, int M) {
    return aligned_alloc(32, (cpu_packed_scratch_bytes(B, M) + 31) / 32 * 32);
}

/* Kernel = model, exactly, serial and parallel; nothing written outside
 * the M x N block of C. */
static void test_kernel_matches_model(void) {
    if (!have_i8()) TEST_SKIP("no AVX2 + FMA on this CPU");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], lda = K + 3, ldb = K + 1, ldc = N + 5;
        float *A = rand_matrix(M, lda, 2.0), *B = rand_matrix(N, ldb, 0.1);
        float *want = malloc(sizeof *want * (size_t)M * ldc), *got = malloc(sizeof *got * (size_t)M * ldc);
        model_gemm(M, N, K, 0.5f, A, lda, B, ldb, want, ldc);
        cpu_packed packed;
        CHECK(cpu_pack_b(&packed, B, ldb, N, K) == RTR_OK);
        void *scratch = scratch_for(&packed, M);
        for (int par = 0; par < 2; par++) {
            for (size_t i = 0; i < (size_t)M * ldc; i++) got[i] = SENTINEL;
            cpu_packed_gemm(&packed, M, 0.5f, A, lda, got, ldc, scratch, par);
            int bad = 0, touched = 0;
            for (int m = 0; m < M; m++)
                for (int n = 0; n < ldc; n++) {
                    float g = got[(size_t)m * ldc + n];
                    if (n >= N) touched += g != SENTINEL;
                    else if (!(fabsf(g - want[(size_t)m * ldc + n]) <= 1e-6f * fabsf(want[(size_t)m * ldc + n])))
                        if (bad++ < 3) fprintf(stderr, "M=%d N=%d K=%d [%d,%d]: %.9g vs %.9g\n", M, N, K, m, n, g,
                                               want[(size_t)m * ldc + n]);
                }
            CHECK_MSG(bad == 0 && touched == 0, "M=%d N=%d K=%d parallel=%d: %d differ, %d written past N", M, N, K,
                      par, bad, touched);
        }
        cpu_packed_free(&packed);
        free(scratch), free(A), free(B), free(want), free(got);
    }
}

/* Against the exact product: within Σ_k |a|·sb/2 + |b|·sa/2 + sa·sb/4
 * (the rounding of both operands), and not trivially far inside it. */
static void test_error_bound(void) {
    if (!have_i8()) TEST_SKIP("no AVX2 + FMA on this CPU");
    int M = 37, N = 70, K = 768;
    float *A = rand_matrix(M, K, 3.0), *B = rand_matrix(N, K, 0.05), *C = malloc(sizeof *C * M * N);
    cpu_packed packed;
    CHECK(cpu_pack_b(&packed, B, K, N, K) == RTR_OK);
    void *scratch = scratch_for(&packed, M);
    cpu_packed_gemm(&packed, M, 1.0f, A, K, C, N, scratch, true);
    double worst = 0, mean_err = 0;
    int bad = 0;
    for (int m = 0; m < M; m++) {
        double amax = 0;
        for (int k = 0; k < K; k++) amax = fmax(amax, fabs(A[m * K + k]));
        for (int n = 0; n < N; n++) {
            double bmax = 0, exact = 0, sum_a = 0, sum_b = 0;
            for (int k = 0; k < K; k++) {
                bmax = fmax(bmax, fabs(B[n * K + k]));
                exact += (double)A[m * K + k] * B[n * K + k];
                sum_a += fabs(A[m * K + k]);
                sum_b += fabs(B[n * K + k]);
            }
            double sa = amax / a_levels(K), sb = bmax / 127;
            double bound = sum_a * sb / 2 + sum_b * sa / 2 + K * sa * sb / 4 + 1e-5 * fabs(exact);
            double err = fabs(C[m * N + n] - exact);
            bad += !(err <= bound);
            worst = fmax(worst, err / bound);
            mean_err += err / (M * N);
        }
    }
    fprintf(stderr, "int8 vs exact, K=%d: worst error %.2f of the bound, mean |error| %.2e\n", K, worst, mean_err);
    CHECK(bad == 0);
    CHECK(worst > 0.01); /* a bound this loose would prove nothing */
    cpu_packed_free(&packed);
    free(scratch), free(A), free(B), free(C);
}

/* A NaN in a row of A shows in that row of C only. */
static void test_nan_propagates(void) {
    if (!have_i8()) TEST_SKIP("no AVX2 + FMA on this CPU");
    int M = 8, N = 20, K = 40;
    float *A = rand_matrix(M, K, 1.0), *B = rand_matrix(N, K, 1.0), *C = malloc(sizeof *C * M * N);
    A[3 * K + 7] = NAN;
    cpu_packed packed;
    CHECK(cpu_pack_b(&packed, B, K, N, K) == RTR_OK);
    void *scratch = scratch_for(&packed, M);
    cpu_packed_gemm(&packed, M, 1.0f, A, K, C, N, scratch, false);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) CHECK(isnan(C[m * N + n]) == (m == 3));
    cpu_packed_free(&packed);
    free(scratch), free(A), free(B), free(C);
}

/* Through the backend: int8 only for A · Bᵀ with β = 0, fp32 for every
 * other form; B packed once and reused until the precision changes. */
static void test_backend_slot(void) {
    rtr_gemm_precision p = CPU_GEMM_I8;
    rtr_backend cpu, ref;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK && rtr_backend_ref_open(&ref) == RTR_OK);
    /* fp16 is refused on the CPU rather than computed in fp32 (bf16:
     * test_cpu_gemm_dnnl.c) */
    CHECK(rtr_backend_set_gemm_precision(&cpu, RTR_GEMM_F16) == RTR_ERR_INVALID);
    CHECK(rtr_backend_set_gemm_precision(&ref, RTR_GEMM_F16) == RTR_ERR_INVALID);
    CHECK(rtr_backend_set_gemm_precision(&ref, p) != RTR_OK);
    if (!have_i8()) {
        CHECK(rtr_backend_set_gemm_precision(&cpu, p) == RTR_ERR_UNSUPPORTED);
        rtr_backend_free(&cpu), rtr_backend_free(&ref);
        TEST_SKIP("no AVX2 + FMA on this CPU");
    }
    int M = 50, N = 40, K = 33;
    float *A = rand_matrix(M, K, 1.0), *B = rand_matrix(N, K, 1.0), *C = malloc(sizeof *C * M * N);
    float *want = malloc(sizeof *want * M * N), *fp = malloc(sizeof *fp * M * N);
    model_gemm(M, N, K, 1.0f, A, K, B, K, want, N);
    CHECK(rtr_backend_set_gemm_precision(&cpu, p) == RTR_OK);
    CHECK(cpu.iface->sgemm(cpu.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N) == RTR_OK);
    double md = 0;
    for (int i = 0; i < M * N; i++) md = fmax(md, fabs(C[i] - want[i]));
    CHECK_MSG(md <= 1e-5, "first call: %.2e", md);
    /* the same B pointer again: served from the cache (so a change to B is
     * not seen, the documented contract) until the precision changes */
    B[0] += 1.0f;
    CHECK(cpu.iface->sgemm(cpu.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N) == RTR_OK);
    md = 0;
    for (int i = 0; i < M * N; i++) md = fmax(md, fabs(C[i] - want[i]));
    CHECK_MSG(md <= 1e-5, "cached call: %.2e", md);
    CHECK(rtr_backend_set_gemm_precision(&cpu, RTR_GEMM_F32) == RTR_OK);
    CHECK(rtr_backend_set_gemm_precision(&cpu, p) == RTR_OK);
    model_gemm(M, N, K, 1.0f, A, K, B, K, want, N);
    CHECK(cpu.iface->sgemm(cpu.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N) == RTR_OK);
    md = 0;
    for (int i = 0; i < M * N; i++) md = fmax(md, fabs(C[i] - want[i]));
    CHECK_MSG(md <= 1e-5, "after the cache was emptied: %.2e", md);
    /* the other forms stay BLAS fp32: equal to the reference backend */
    struct {
        bool ta, tb;
        float beta;
    } other[] = {{false, false, 0.0f}, {true, true, 0.0f}, {false, true, 0.5f}};
    float *Bsq = rand_matrix(K, K, 1.0), *Asq = rand_matrix(K, K, 1.0);
    for (size_t o = 0; o < sizeof other / sizeof *other; o++) {
        for (int i = 0; i < K * K; i++) C[i] = fp[i] = 0.25f;
        CHECK(cpu.iface->sgemm(cpu.ctx, other[o].ta, other[o].tb, K, K, K, 1.0f, Asq, K, Bsq, K, other[o].beta, C,
                               K) == RTR_OK);
        CHECK(ref.iface->sgemm(ref.ctx, other[o].ta, other[o].tb, K, K, K, 1.0f, Asq, K, Bsq, K, other[o].beta, fp,
                               K) == RTR_OK);
        md = 0;
        for (int i = 0; i < K * K; i++) md = fmax(md, fabs(C[i] - fp[i]));
        CHECK_MSG(md <= 1e-5, "form %zu: %.2e from fp32", o, md);
    }
    rtr_backend_set_gemm_precision(&cpu, RTR_GEMM_F32);
    free(A), free(B), free(C), free(want), free(fp), free(Bsq), free(Asq);
    rtr_backend_free(&cpu), rtr_backend_free(&ref);
}


/* ---- the encoder on packed weights -------------------------------------- */

/* The encoder sets fp32 on its backend (its precision names are the CUDA
 * ones); this copy of the CPU table turns that into `forced`, so the whole
 * encoder runs its linear layers on the int8 path. */
static rtr_backend_iface forced_iface;
static rtr_gemm_precision forced;
static rtr_status (*cpu_set_precision)(void *ctx, rtr_gemm_precision p);
static rtr_status force_precision(void *ctx, rtr_gemm_precision p) {
    (void)p;
    return cpu_set_precision(ctx, forced);
}

/* The whole encoder with its linear layers in precision p (int8, or the
 * model of bf16: CPU_GEMM_BF16_MODEL, src/backend/cpu_dnnl.h) against
 * sentence-transformers: cosine >= min_cos and max |diff| <= max_diff per
 * text, and at least min_moved from it somewhere (the reduced precision
 * really ran: fp32 is within 3e-7). */
static void golden_packed(const char *name, rtr_gemm_precision p, double min_cos, double max_diff, double min_moved) {
    bool model = p == CPU_GEMM_BF16_MODEL;
    if (!model && !have_i8()) TEST_SKIP("no AVX2 + FMA on this CPU");
    const char *dir = fixture_model_dir(name);
    if (!dir) TEST_SKIP("model folder absent (tools/fetch-encoder)");
    fixture fx;
    if (fixture_load(name, &fx) != 0 || !fx.emb) {
        CHECK_MSG(0, "fixture of %s missing", name);
        return;
    }
    rtr_backend b;
    CHECK(rtr_backend_cpu_open(&b) == RTR_OK);
    forced_iface = *b.iface;
    forced = p;
    cpu_set_precision = b.iface->set_gemm_precision;
    forced_iface.set_gemm_precision = force_precision;
    b.iface = &forced_iface;
    /* no longer "the host" to the encoder: keep the CPU's batch size */
    rtr_encoder_params ep = rtr_encoder_default_params();
    ep.batch_tokens = 4096;
    rtr_encoder *enc = NULL;
    CHECK(rtr_encoder_load_on(&b, &enc, dir, &ep) == RTR_OK);
    const char **texts = malloc(sizeof *texts * (size_t)fx.n);
    size_t *lens = malloc(sizeof *lens * (size_t)fx.n);
    int *which = malloc(sizeof *which * (size_t)fx.n), m = 0;
    for (int i = 0; i < fx.n; i++)
        if (fx.items[i].text) texts[m] = fx.items[i].text, lens[m] = fx.items[i].len, which[m++] = i;
    float *out = malloc(sizeof *out * (size_t)m * fx.dim);
    CHECK(enc && rtr_encoder_encode(enc, out, texts, lens, (size_t)m) == RTR_OK);
    double worst = 1, mean = 0, worst_diff = 0;
    int bad = 0;
    for (int k = 0; k < m; k++) {
        const float *a = out + (size_t)k * fx.dim, *e = fx.emb + (size_t)which[k] * fx.dim;
        double dot = 0, na = 0, ne = 0, md = 0;
        for (int c = 0; c < fx.dim; c++) {
            dot += (double)a[c] * e[c], na += (double)a[c] * a[c], ne += (double)e[c] * e[c];
            double d = fabs((double)a[c] - e[c]);
            if (!(d <= md)) md = d; /* NaN propagates */
        }
        double cosv = dot / sqrt(na * ne);
        if (!(cosv >= min_cos && md <= max_diff) && bad++ < 5)
            fprintf(stderr, "%s %s: cosine %.7f max|diff| %.2e\n", name, fx.items[which[k]].label, cosv, md);
        worst = cosv < worst || isnan(cosv) ? cosv : worst;
        worst_diff = md > worst_diff || isnan(md) ? md : worst_diff;
        mean += cosv / m;
    }
    fprintf(stderr, "%s %s vs sentence-transformers: %d texts, worst cosine %.7f, mean %.7f, worst max|diff| %.2e\n",
            name, model ? "bf16 (model)" : p == CPU_GEMM_I8 ? "int8" : "fp32", m, worst, mean, worst_diff);
    CHECK(bad == 0 && m >= 15);
    CHECK_MSG(worst_diff >= min_moved, "worst max|diff| %.2e: the reduced precision did not run", worst_diff);
    /* int8's per-row scales: a text alone gives the row it got in the
     * batch. In bf16 the fp32 rows differ by OpenBLAS's last bits alone and
     * in a batch (docs/ENCODER.md), and rounding to bf16 can turn such a
     * last bit into one bf16 step (2^-8 relative): 2.6e-4 and 3.0e-4 here */
    float single[1024];
    CHECK(fx.dim <= 1024 && rtr_encoder_encode(enc, single, texts, lens, 1) == RTR_OK);
    double md = 0;
    for (int c = 0; c < fx.dim && c < 1024; c++) md = fmax(md, fabs(single[c] - out[c]));
    CHECK_MSG(md <= (model ? 1e-3 : 1e-5), "alone vs batched: %.2e", md);
    rtr_encoder_free(enc);
    rtr_backend_free(&b);
    free(out), free(which), free(lens), free(texts);
    fixture_free(&fx);
}

static void test_golden_i8_minilm(void) { golden_packed("all-MiniLM-L6-v2", CPU_GEMM_I8, 0.99, 1.0, 1e-4); }
static void test_golden_i8_mpnet(void) { golden_packed("all-mpnet-base-v2", CPU_GEMM_I8, 0.99, 1.0, 1e-4); }
/* the bound of the CPU's bf16 GEMMs (`--precision bf16`, cpu.c) */
static void test_golden_bf16_minilm(void) { golden_packed("all-MiniLM-L6-v2", CPU_GEMM_BF16_MODEL, 0.999, 1.0, 1e-4); }
static void test_golden_bf16_mpnet(void) { golden_packed("all-mpnet-base-v2", CPU_GEMM_BF16_MODEL, 0.999, 1.0, 1e-4); }

TEST_MAIN(T(test_kernel_matches_model), T(test_error_bound), T(test_nan_propagates), T(test_backend_slot),
          T(test_golden_i8_minilm), T(test_golden_i8_mpnet), T(test_golden_bf16_minilm), T(test_golden_bf16_mpnet))
