/* The CPU backend's oneDNN GEMMs (src/backend/cpu_dnnl.c):
 * - what runs where: bf16 refused with the CPU's features where it cannot
 *   run (without oneDNN in the build, or without AVX-512 BF16), the
 *   capabilities the encoder reads (bf16 available, ops run concurrently);
 * - the integration code (conversion, weight reorder and cache, run-time M,
 *   strides, fallbacks) through the same path in fp32 (CPU_GEMM_DNNL_F32)
 *   against OpenBLAS, at the encoder's layer shapes and over the whole
 *   encoder on the golden texts: max |diff| <= 1e-5 (relative per GEMM);
 *   calls from several threads at once, weights made under contention,
 *   give the bits of the same calls one after another;
 * - the model of bf16's arithmetic (CPU_GEMM_BF16_MODEL), through which
 *   test_cpu_gemm.c checks the bound on every CPU, against that arithmetic
 *   written out per element;
 * - the bf16 path itself where the CPU has AVX-512 BF16: each GEMM against
 *   the same arithmetic, and the whole encoder against
 *   sentence-transformers (cosine >= 0.999 per text). Elsewhere that part
 *   skips (77), saying why.
 * Without oneDNN in the build every part but the refusals and the model
 * skips. */
#include "rtr/backend.h"
#include "rtr/encoder.h"
#include "backend/cpu.h"
#include "backend/cpu_dnnl.h"
#include "backend/cpu_features.h"
#include "backend/cpu_gemm_packed.h"
#include "encoder_fixture.h"
#include "test.h"

#include <omp.h>

#include <string.h>

static const char *const models[] = {"all-MiniLM-L6-v2", "all-mpnet-base-v2"};

static bool have_bf16(void) { return cpu_dnnl_built() && cpu_features_get()->avx512_bf16; }

static float *rand_matrix(int rows, int ld, double scale) {
    float *x = malloc(sizeof *x * (size_t)rows * (size_t)ld);
    for (size_t i = 0; i < (size_t)rows * (size_t)ld; i++) x[i] = (float)(scale * (2 * test_urand() - 1));
    return x;
}

/* ---- what runs where -------------------------------------------------- */

static void test_refusals_and_caps(void) {
    rtr_backend cpu, ref;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK && rtr_backend_ref_open(&ref) == RTR_OK);
    unsigned caps = rtr_backend_caps(&cpu);
    CHECK(caps & RTR_CAP_CONCURRENT_OPS);
    CHECK(!!(caps & RTR_CAP_FAST_BF16) == have_bf16());
    CHECK(rtr_backend_caps(&ref) == 0);
    rtr_status s = rtr_backend_set_gemm_precision(&cpu, RTR_GEMM_BF16);
    if (have_bf16()) {
        CHECK(s == RTR_OK);
    } else {
        /* refused, naming what is missing: oneDNN, or the CPU's features */
        CHECK(s == RTR_ERR_UNSUPPORTED);
        const char *why = cpu_dnnl_built() ? cpu_features_describe() : "built without it";
        CHECK_MSG(strstr(rtr_last_error(), why) && strstr(rtr_last_error(), "bf16"), "message: %s",
                  rtr_last_error());
        fprintf(stderr, "bf16 refused here: %s\n", rtr_last_error());
    }
    s = rtr_backend_set_gemm_precision(&cpu, CPU_GEMM_DNNL_F32);
    CHECK(s == (cpu_dnnl_built() ? RTR_OK : RTR_ERR_UNSUPPORTED));
    /* oneDNN's GEMMs run on several threads at once (a slot each, the cache
     * under a lock: test_concurrent_calls); int8's packed weights are shared */
    if (!s) CHECK(rtr_backend_caps(&cpu) & RTR_CAP_CONCURRENT_OPS);
    if (cpu_packed_available()) {
        CHECK(rtr_backend_set_gemm_precision(&cpu, CPU_GEMM_I8) == RTR_OK);
        CHECK(!(rtr_backend_caps(&cpu) & RTR_CAP_CONCURRENT_OPS));
    }
    CHECK(rtr_backend_set_gemm_precision(&ref, RTR_GEMM_BF16) == RTR_ERR_UNSUPPORTED);
    CHECK(rtr_backend_set_gemm_precision(&cpu, RTR_GEMM_F32) == RTR_OK);
    CHECK(rtr_backend_caps(&cpu) & RTR_CAP_CONCURRENT_OPS);

    /* the encoder: "bf16" refused with the same reason where it cannot run,
     * "auto" bf16 where it runs, else fp32 */
    const char *dir = fixture_model_dir(models[0]);
    if (dir) {
        rtr_encoder_params ep = rtr_encoder_default_params();
        rtr_encoder *enc = NULL;
        ep.precision = "bf16";
        s = rtr_encoder_load_on(&cpu, &enc, dir, &ep);
        CHECK(s == (have_bf16() ? RTR_OK : RTR_ERR_INVALID));
        if (s)
            CHECK_MSG(strstr(rtr_last_error(), "bf16 needs a CUDA device or bf16 GEMMs on the CPU") &&
                          strstr(rtr_last_error(), cpu_dnnl_built() ? cpu_features_describe() : "oneDNN"),
                      "message: %s", rtr_last_error());
        rtr_encoder_free(enc);
        ep.precision = "auto";
        CHECK(rtr_encoder_load_on(&cpu, &enc, dir, &ep) == RTR_OK);
        CHECK_MSG(enc && !strcmp(rtr_encoder_precision(enc), have_bf16() ? "bf16" : "fp32"), "auto: %s",
                  enc ? rtr_encoder_precision(enc) : rtr_last_error());
        rtr_encoder_free(enc);
    } else {
        TEST_SKIP_PART("model folder absent (tools/fetch-encoder): the encoder's precision choice not checked");
    }
    rtr_backend_free(&cpu), rtr_backend_free(&ref);
}

/* ---- one GEMM through the backend's slot ---------------------------------- */

/* max |got - want| / max |want| over M x N (NaN: infinite) */
static double rel_diff(const float *got, const float *want, int M, int N, int ldc) {
    double md = 0, mw = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double d = fabs((double)got[(size_t)m * ldc + n] - want[(size_t)m * ldc + n]);
            md = d > md || isnan(d) ? d : md;
            mw = fmax(mw, fabs(want[(size_t)m * ldc + n]));
        }
    return isnan(md) ? INFINITY : md / (mw > 0 ? mw : 1);
}

/* The encoders' linear layers (N x K: qkv, attention output, FFN up and
 * down, MiniLM then mpnet) at batch rows 1, 57 and 500, A with a row
 * stride past K: the oneDNN fp32 path equals OpenBLAS within 1e-5 of the
 * largest |C|; a weight matrix is converted once and served from the cache
 * (a change to B is not seen, the contract) until the precision changes. */
static void test_f32_layers(void) {
    if (!cpu_dnnl_built()) TEST_SKIP("built without oneDNN (RTR_DNNL, libdnnl-dev)");
    static const int layers[][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536},
                                    {2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};
    static const int rows[] = {1, 57, 500};
    rtr_backend cpu, ref;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK && rtr_backend_ref_open(&ref) == RTR_OK);
    CHECK(rtr_backend_set_gemm_precision(&cpu, CPU_GEMM_DNNL_F32) == RTR_OK);
    double worst = 0;
    for (size_t l = 0; l < sizeof layers / sizeof *layers; l++) {
        int N = layers[l][0], K = layers[l][1], lda = K + 5, ldb = K + 3;
        float *B = rand_matrix(N, ldb, 0.05);
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
            int M = rows[r];
            float alpha = r == 1 ? 0.5f : 1.0f;
            float *A = rand_matrix(M, lda, 2.0);
            float *got = malloc(sizeof *got * (size_t)M * N), *want = malloc(sizeof *want * (size_t)M * N);
            CHECK(cpu.iface->sgemm(cpu.ctx, false, true, M, N, K, alpha, A, lda, B, ldb, 0.0f, got, N) == RTR_OK);
            CHECK(ref.iface->sgemm(ref.ctx, false, true, M, N, K, alpha, A, lda, B, ldb, 0.0f, want, N) == RTR_OK);
            double d = rel_diff(got, want, M, N, N);
            CHECK_MSG(d <= 1e-5, "M=%d N=%d K=%d alpha=%g: %.2e of max |C|", M, N, K, alpha, d);
            worst = fmax(worst, d);
            free(A), free(got), free(want);
        }
        free(B);
    }
    fprintf(stderr, "oneDNN fp32 vs OpenBLAS, the encoders' 8 layer shapes x M = 1, 57, 500: worst %.2e of max |C|\n",
            worst);

    int M = 40, N = 48, K = 64;
    float *A = rand_matrix(M, K, 1.0), *B = rand_matrix(N, K, 1.0);
    float *C = malloc(sizeof *C * (size_t)M * (N + 7)), *want = malloc(sizeof *want * (size_t)M * (N + 7));
    CHECK(ref.iface->sgemm(ref.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, want, N) == RTR_OK);
    CHECK(cpu.iface->sgemm(cpu.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N) == RTR_OK);
    B[0] += 1.0f; /* the same pointer again: the cached conversion */
    CHECK(cpu.iface->sgemm(cpu.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N) == RTR_OK);
    CHECK_MSG(rel_diff(C, want, M, N, N) <= 1e-5, "cached call: %.2e", rel_diff(C, want, M, N, N));
    CHECK(rtr_backend_set_gemm_precision(&cpu, RTR_GEMM_F32) == RTR_OK);
    CHECK(rtr_backend_set_gemm_precision(&cpu, CPU_GEMM_DNNL_F32) == RTR_OK);
    CHECK(ref.iface->sgemm(ref.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, want, N) == RTR_OK);
    CHECK(cpu.iface->sgemm(cpu.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N) == RTR_OK);
    CHECK_MSG(rel_diff(C, want, M, N, N) <= 1e-5, "after the cache was emptied: %.2e", rel_diff(C, want, M, N, N));
    /* the forms the path does not take stay OpenBLAS fp32: β != 0, a
     * transposed A, C's rows not dense */
    for (int i = 0; i < M * (N + 7); i++) C[i] = want[i] = 0.25f;
    CHECK(cpu.iface->sgemm(cpu.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.5f, C, N) == RTR_OK);
    CHECK(ref.iface->sgemm(ref.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.5f, want, N) == RTR_OK);
    CHECK(rel_diff(C, want, M, N, N) <= 1e-6);
    for (int i = 0; i < M * (N + 7); i++) C[i] = want[i] = 0.25f;
    CHECK(cpu.iface->sgemm(cpu.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N + 7) == RTR_OK);
    CHECK(ref.iface->sgemm(ref.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, want, N + 7) == RTR_OK);
    CHECK(rel_diff(C, want, M, N, N + 7) <= 1e-6);
    CHECK(C[N] == 0.25f); /* nothing written between the rows */
    rtr_backend_set_gemm_precision(&cpu, RTR_GEMM_F32);
    free(A), free(B), free(C), free(want);
    rtr_backend_free(&cpu), rtr_backend_free(&ref);
}

/* Calls from 4 threads at once (as the encoder's threads make them, each
 * its share of a batch's texts), in oneDNN fp32 (any CPU) and in bf16 where
 * it runs: 6 weight matrices met first by several threads at once (made
 * under the cache's lock), each thread its own rows and sizes: every C
 * has the bits of the same call made alone, after the cache is emptied,
 * and each matrix was made once. */
static void test_concurrent_calls(void) {
    if (!cpu_dnnl_built()) TEST_SKIP("built without oneDNN (RTR_DNNL, libdnnl-dev)");
    enum { NW = 6, NT = 4, CALLS = 12 };
    static const int shapes[NW][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}, {768, 768}, {96, 64}};
    rtr_gemm_precision precisions[] = {CPU_GEMM_DNNL_F32, RTR_GEMM_BF16};
    float *B[NW];
    for (int w = 0; w < NW; w++) B[w] = rand_matrix(shapes[w][0], shapes[w][1], 0.05);
    int Ms[NT * CALLS];
    float *A[NT * CALLS], *got[NT * CALLS], *want[NT * CALLS];
    for (int c = 0; c < NT * CALLS; c++) {
        int w = c % NW, N = shapes[w][0], K = shapes[w][1];
        Ms[c] = 1 + (int)(test_urand() * 200);
        A[c] = rand_matrix(Ms[c], K, 2.0);
        got[c] = malloc(sizeof(float) * (size_t)Ms[c] * N);
        want[c] = malloc(sizeof(float) * (size_t)Ms[c] * N);
    }
    for (size_t p = 0; p < sizeof precisions / sizeof *precisions; p++) {
        if (precisions[p] == RTR_GEMM_BF16 && !have_bf16()) {
            TEST_SKIP_PART("no AVX-512 BF16 on this CPU: bf16's concurrent calls not checked");
            continue;
        }
        rtr_backend cpu;
        CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
        CHECK(rtr_backend_set_gemm_precision(&cpu, precisions[p]) == RTR_OK);
        int failed = 0;
#pragma omp parallel num_threads(NT) reduction(+ : failed)
        {
            omp_set_num_threads(1); /* as the encoder's threads: each call on its thread */
            for (int k = 0; k < CALLS; k++) {
                int c = omp_get_thread_num() * CALLS + k, w = c % NW, N = shapes[w][0], K = shapes[w][1];
                failed += cpu.iface->sgemm(cpu.ctx, false, true, Ms[c], N, K, 1.0f, A[c], K, B[w], K, 0.0f, got[c],
                                           N) != RTR_OK;
            }
        }
        CHECK_MSG(!failed, "%d concurrent calls failed: %s", failed, rtr_last_error());
        int cached;
        long made;
        cpu_backend_cache_stats(&cpu, &cached, &made);
        CHECK_MSG(cached == NW && made == NW, "%d matrices cached, %ld made, for %d weights", cached, made, NW);
        /* the cache emptied (a precision change), then each call alone */
        CHECK(rtr_backend_set_gemm_precision(&cpu, RTR_GEMM_F32) == RTR_OK);
        CHECK(rtr_backend_set_gemm_precision(&cpu, precisions[p]) == RTR_OK);
        int threads = omp_get_max_threads(), differ = 0;
        omp_set_num_threads(1);
        for (int c = 0; c < NT * CALLS; c++) {
            int w = c % NW, N = shapes[w][0], K = shapes[w][1];
            CHECK(cpu.iface->sgemm(cpu.ctx, false, true, Ms[c], N, K, 1.0f, A[c], K, B[w], K, 0.0f, want[c], N) ==
                  RTR_OK);
            differ += memcmp(got[c], want[c], sizeof(float) * (size_t)Ms[c] * N) != 0;
        }
        omp_set_num_threads(threads);
        fprintf(stderr, "%s: %d calls on %d threads at once, %d of them not the bits of the call alone\n",
                precisions[p] == RTR_GEMM_BF16 ? "bf16" : "oneDNN fp32", NT * CALLS, NT, differ);
        CHECK_MSG(differ == 0, "%d of %d concurrent calls differ from the same call alone", differ, NT * CALLS);
        rtr_backend_set_gemm_precision(&cpu, RTR_GEMM_F32);
        rtr_backend_free(&cpu);
    }
    for (int c = 0; c < NT * CALLS; c++) free(A[c]), free(got[c]), free(want[c]);
    for (int w = 0; w < NW; w++) free(B[w]);
}

/* ---- the whole encoder ---------------------------------------------------- */

/* The encoder sets the precision its name asks for; this copy of the CPU
 * table turns fp32 into `forced`, so the encoder runs its linear layers on
 * the oneDNN fp32 path. */
static rtr_backend_iface forced_iface;
static rtr_gemm_precision forced;
static rtr_status (*cpu_set_precision)(void *ctx, rtr_gemm_precision p);
static rtr_status force_precision(void *ctx, rtr_gemm_precision p) {
    return cpu_set_precision(ctx, p == RTR_GEMM_F32 ? forced : p);
}

/* Every stride-th golden text of `name` encoded on backend b in
 * `precision`: [m x dim] rows, m, their fixture indices and the fixture;
 * NULL when the model folder is absent. */
static float *encode_golden(rtr_backend *b, const char *name, const char *precision, int stride, fixture *fx,
                            int *m, int **which) {
    const char *dir = fixture_model_dir(name);
    if (!dir) return NULL;
    if (fixture_load(name, fx) != 0 || !fx->emb) {
        CHECK_MSG(0, "fixture of %s missing", name);
        return NULL;
    }
    rtr_encoder_params ep = rtr_encoder_default_params();
    ep.precision = precision;
    ep.batch_tokens = 4096; /* a copied table is no longer "the host": keep the CPU's batch size */
    rtr_encoder *enc = NULL;
    CHECK(rtr_encoder_load_on(b, &enc, dir, &ep) == RTR_OK);
    const char **texts = malloc(sizeof *texts * (size_t)fx->n);
    size_t *lens = malloc(sizeof *lens * (size_t)fx->n);
    *which = malloc(sizeof **which * (size_t)fx->n);
    *m = 0;
    for (int i = 0; i < fx->n; i += stride)
        if (fx->items[i].text) texts[*m] = fx->items[i].text, lens[*m] = fx->items[i].len, (*which)[(*m)++] = i;
    float *out = malloc(sizeof *out * (size_t)*m * fx->dim);
    CHECK(enc && rtr_encoder_encode(enc, out, texts, lens, (size_t)*m) == RTR_OK);
    rtr_encoder_free(enc);
    free(texts), free(lens);
    return out;
}

/* Over the whole encoder on every third golden text (108 of 323, short,
 * long and adversarial; all of them took minutes on a loaded 2-core
 * machine), both models: the oneDNN fp32 path equals the OpenBLAS one
 * within 1e-5 per element. */
static void test_f32_encoder(void) {
    if (!cpu_dnnl_built()) TEST_SKIP("built without oneDNN (RTR_DNNL, libdnnl-dev)");
    for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
        rtr_backend b;
        CHECK(rtr_backend_cpu_open(&b) == RTR_OK);
        fixture fx;
        int m, *which = NULL;
        float *want = encode_golden(&b, models[k], "fp32", 3, &fx, &m, &which);
        if (!want) {
            rtr_backend_free(&b);
            TEST_SKIP_PART("model folder absent (tools/fetch-encoder)");
            continue;
        }
        free(which);
        fixture_free(&fx);
        forced_iface = *b.iface;
        forced = CPU_GEMM_DNNL_F32;
        cpu_set_precision = b.iface->set_gemm_precision;
        forced_iface.set_gemm_precision = force_precision;
        b.iface = &forced_iface;
        float *got = encode_golden(&b, models[k], "fp32", 3, &fx, &m, &which);
        double md = got ? 0 : INFINITY;
        for (size_t i = 0; got && i < (size_t)m * fx.dim; i++) {
            double d = fabs((double)got[i] - want[i]);
            md = d > md || isnan(d) ? d : md;
        }
        fprintf(stderr, "%s, %d golden texts: oneDNN fp32 vs OpenBLAS fp32 max |diff| %.2e\n", models[k], m, md);
        CHECK_MSG(md <= 1e-5, "%s: max |diff| %.2e", models[k], md);
        rtr_backend_free(&b);
        free(want), free(got), free(which);
        fixture_free(&fx);
    }
}

/* ---- bf16 itself, where the CPU has it ------------------------------------ */

/* Layer shapes through the slot in precision p (bf16, or its model)
 * against the arithmetic written out: operands rounded to bf16, products
 * (exact) summed in double; fp32 sums may differ from that by their own
 * rounding, at most K · 2^-24 · Σ|a·b|; and the largest difference from
 * the unrounded product is over 10 times the largest from the bf16
 * arithmetic (the rounding ran). */
static void bf16_layers(rtr_gemm_precision p, const char *label) {
    static const int layers[][2] = {{1152, 384}, {1536, 384}, {384, 1536}, {768, 3072}};
    rtr_backend cpu;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    CHECK(rtr_backend_set_gemm_precision(&cpu, p) == RTR_OK);
    for (size_t l = 0; l < sizeof layers / sizeof *layers; l++) {
        int M = 77, N = layers[l][0], K = layers[l][1], bad = 0;
        float *A = rand_matrix(M, K, 2.0), *B = rand_matrix(N, K, 0.05), *C = malloc(sizeof *C * (size_t)M * N);
        CHECK(cpu.iface->sgemm(cpu.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N) == RTR_OK);
        double worst = 0, moved = 0, off = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double sum = 0, mag = 0, exact = 0;
                for (int k = 0; k < K; k++) {
                    float a = A[(size_t)m * K + k], b = B[(size_t)n * K + k];
                    double q = (double)rtr_bf16_float(rtr_bf16_round(a)) * rtr_bf16_float(rtr_bf16_round(b));
                    sum += q, mag += fabs(q), exact += (double)a * b;
                }
                double err = fabs(C[(size_t)m * N + n] - sum), bound = K * 0x1p-24 * mag + 1e-30;
                bad += !(err <= bound);
                worst = fmax(worst, err / bound);
                off = fmax(off, err);
                moved = fmax(moved, fabs(C[(size_t)m * N + n] - exact));
            }
        fprintf(stderr, "%s N=%d K=%d vs the bf16 arithmetic: worst error %.3f of the fp32 summation bound, "
                "max |diff| %.2e (from the unrounded product %.2e)\n", label, N, K, worst, off, moved);
        CHECK_MSG(bad == 0, "%s N=%d K=%d: %d elements outside the bound", label, N, K, bad);
        CHECK_MSG(moved > 10 * off, "%s N=%d K=%d: as close to the unrounded product (%.2e) as to bf16's (%.2e)",
                  label, N, K, moved, off);
        free(A), free(B), free(C);
    }
    rtr_backend_set_gemm_precision(&cpu, RTR_GEMM_F32);
    rtr_backend_free(&cpu);
}

/* The model test_cpu_gemm checks the bound through (every CPU). */
static void test_bf16_model_layers(void) { bf16_layers(CPU_GEMM_BF16_MODEL, "bf16 model (OpenBLAS)"); }

/* The bf16 path itself. */
static void test_bf16_layers(void) {
    if (!have_bf16())
        TEST_SKIP(cpu_dnnl_built() ? "no AVX-512 BF16 on this CPU: the bf16 path cannot run (its bound: test_cpu_gemm)"
                                   : "built without oneDNN (RTR_DNNL, libdnnl-dev)");
    bf16_layers(RTR_GEMM_BF16, "bf16 (oneDNN)");
}

/* The whole encoder in bf16 (asked for by name) against
 * sentence-transformers: cosine >= 0.999 per golden text, both models; and
 * every 8th text encoded alone (one call, as online routing encodes) within
 * 1e-5 of its row in the batch (test_encoder_golden's bound for fp32): the
 * condition for "auto" to pick bf16 on the CPU (docs/ENCODER.md). */
static void test_bf16_encoder(void) {
    if (!have_bf16())
        TEST_SKIP(cpu_dnnl_built() ? "no AVX-512 BF16 on this CPU: the bf16 path cannot run (its bound: test_cpu_gemm)"
                                   : "built without oneDNN (RTR_DNNL, libdnnl-dev)");
    for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
        rtr_backend b;
        CHECK(rtr_backend_cpu_open(&b) == RTR_OK);
        fixture fx;
        int m, *which = NULL;
        float *out = encode_golden(&b, models[k], "bf16", 1, &fx, &m, &which);
        if (!out) {
            rtr_backend_free(&b);
            TEST_SKIP_PART("model folder absent (tools/fetch-encoder)");
            continue;
        }
        double worst = 1, worst_diff = 0;
        for (int t = 0; t < m; t++) {
            const float *a = out + (size_t)t * fx.dim, *e = fx.emb + (size_t)which[t] * fx.dim;
            double dot = 0, na = 0, ne = 0;
            for (int c = 0; c < fx.dim; c++) {
                dot += (double)a[c] * e[c], na += (double)a[c] * a[c], ne += (double)e[c] * e[c];
                worst_diff = fmax(worst_diff, fabs((double)a[c] - e[c]));
            }
            double cosv = dot / sqrt(na * ne);
            worst = cosv < worst || isnan(cosv) ? cosv : worst;
        }
        fprintf(stderr, "%s bf16 (oneDNN) vs sentence-transformers: %d texts, worst cosine %.7f, max|diff| %.2e\n",
                models[k], m, worst, worst_diff);
        CHECK_MSG(worst >= 0.999, "%s: worst cosine %.7f", models[k], worst);
        CHECK_MSG(worst_diff >= 1e-5, "%s: max|diff| %.2e: bf16 did not run", models[k], worst_diff);
        rtr_encoder_params ep = rtr_encoder_default_params();
        ep.precision = "bf16";
        rtr_encoder *enc = NULL;
        CHECK(rtr_encoder_load_on(&b, &enc, fixture_model_dir(models[k]), &ep) == RTR_OK);
        double alone_diff = 0;
        int n_alone = 0, same = 0;
        float *row = malloc(sizeof *row * (size_t)fx.dim);
        for (int t = 0; enc && t < m; t += 8, n_alone++) {
            const char *text = fx.items[which[t]].text;
            CHECK(rtr_encoder_encode(enc, row, &text, &fx.items[which[t]].len, 1) == RTR_OK);
            const float *batched = out + (size_t)t * fx.dim;
            same += !memcmp(row, batched, sizeof *row * (size_t)fx.dim);
            for (int c = 0; c < fx.dim; c++) alone_diff = fmax(alone_diff, fabs((double)row[c] - batched[c]));
        }
        fprintf(stderr, "%s bf16 alone vs batched: %d texts, max|diff| %.2e, %d bit-identical\n", models[k], n_alone,
                alone_diff, same);
        CHECK_MSG(alone_diff <= 1e-5, "%s: bf16 alone vs batched max|diff| %.2e", models[k], alone_diff);
        free(row);
        rtr_encoder_free(enc);
        rtr_backend_free(&b);
        free(out), free(which);
        fixture_free(&fx);
    }
}

TEST_MAIN(T(test_refusals_and_caps), T(test_f32_layers), T(test_concurrent_calls), T(test_f32_encoder), T(test_bf16_model_layers),
          T(test_bf16_layers), T(test_bf16_encoder))
