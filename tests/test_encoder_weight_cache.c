/* The CPU backend's packed weights (int8, and oneDNN's reordered ones) live
 * as long as the encoder whose weights they are (hold_weights /
 * forget_weights, include/rtr/backend.h): made once, reused by every later
 * rtr_encoder_encode call although each call ends by setting the backend
 * back to fp32, and dropped by rtr_encoder_free while the backend lives on.
 * B operands nobody holds are still dropped at a precision change.
 *
 * The encoder asks for a reduced precision by the name bf16; a copy of the
 * CPU table maps that to the precision under test (int8, or oneDNN with
 * fp32 inputs, which runs on every CPU), fp32 staying fp32, so each encode
 * call changes the backend's precision twice as it does with bf16 on an
 * AVX-512 BF16 CPU. Skips (77) without the model folder, and a part
 * without AVX2 + FMA (int8) or a build without oneDNN. */
#include "rtr/backend.h"
#include "rtr/encoder.h"
#include "backend/cpu.h"
#include "backend/cpu_dnnl.h"
#include "backend/cpu_gemm_packed.h"
#include "encoder_fixture.h"
#include "test.h"

#include <string.h>

static rtr_gemm_precision forced;
static rtr_status (*cpu_set_precision)(void *ctx, rtr_gemm_precision p);
static rtr_status map_bf16(void *ctx, rtr_gemm_precision p) {
    return cpu_set_precision(ctx, p == RTR_GEMM_BF16 ? forced : p);
}

static void cache_lifetime(rtr_gemm_precision p, const char *what) {
    const char *dir = fixture_model_dir("all-MiniLM-L6-v2");
    if (!dir) TEST_SKIP("model folder absent (tools/fetch-encoder all-MiniLM-L6-v2 data/models/all-MiniLM-L6-v2)");
    fixture fx; /* its first texts (several batches' worth is not needed) */
    if (fixture_load("all-MiniLM-L6-v2", &fx) != 0) {
        CHECK_MSG(0, "fixture of all-MiniLM-L6-v2 missing");
        return;
    }
    const char *texts[8];
    size_t lens[8], n = 0;
    for (int i = 0; i < fx.n && n < 8; i++)
        if (fx.items[i].text) texts[n] = fx.items[i].text, lens[n++] = fx.items[i].len;
    CHECK(n == 8);
    rtr_backend b;
    CHECK(rtr_backend_cpu_open(&b) == RTR_OK);
    static rtr_backend_iface iface;
    iface = *b.iface;
    forced = p;
    cpu_set_precision = b.iface->set_gemm_precision;
    iface.set_gemm_precision = map_bf16;
    b.iface = &iface;
    rtr_encoder_params ep = rtr_encoder_default_params();
    ep.precision = "bf16";
    ep.batch_tokens = 4096;
    rtr_encoder *enc = NULL;
    CHECK(rtr_encoder_load_on(&b, &enc, dir, &ep) == RTR_OK);
    if (!enc) {
        rtr_backend_free(&b);
        fixture_free(&fx);
        return;
    }
    int D = rtr_encoder_dim(enc), cached;
    long made, made_first;
    float *first = malloc(sizeof *first * n * D), *again = malloc(sizeof *again * n * D);
    CHECK(rtr_encoder_encode(enc, first, texts, lens, n) == RTR_OK);
    cpu_backend_cache_stats(&b, &cached, &made_first);
    /* 6 layers x 4 linear layers: each packed once */
    CHECK_MSG(made_first == 24 && cached == 24, "%s, first call: %ld made, %d cached (want 24)", what, made_first,
              cached);
    for (int call = 0; call < 2; call++) CHECK(rtr_encoder_encode(enc, again, texts, lens, n) == RTR_OK);
    cpu_backend_cache_stats(&b, &cached, &made);
    CHECK_MSG(made == made_first && cached == 24, "%s, after 3 calls: %ld made, %d cached (reused: 24, 24)", what,
              made, cached);
    CHECK_MSG(!memcmp(first, again, sizeof *first * n * D), "%s: the reused weights give other embeddings", what);
    rtr_encoder_free(enc);
    cpu_backend_cache_stats(&b, &cached, &made);
    CHECK_MSG(cached == 0, "%s: %d packed matrices outlive the encoder", what, cached);

    /* weights nobody holds: dropped at the next precision change, as before */
    enum { M = 8, N = 32, K = 64 };
    float *A = calloc(M * K, sizeof *A), *B = calloc(N * K, sizeof *B), *C = malloc(sizeof *C * M * N);
    for (int i = 0; i < N * K; i++) B[i] = (float)(i % 7) - 3.0f;
    CHECK(rtr_backend_set_gemm_precision(&b, RTR_GEMM_BF16) == RTR_OK);
    CHECK(b.iface->sgemm(b.ctx, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N) == RTR_OK);
    cpu_backend_cache_stats(&b, &cached, &made);
    CHECK_MSG(cached == 1, "%s: an unheld B: %d cached after its GEMM", what, cached);
    CHECK(rtr_backend_set_gemm_precision(&b, RTR_GEMM_F32) == RTR_OK);
    cpu_backend_cache_stats(&b, &cached, &made);
    CHECK_MSG(cached == 0, "%s: an unheld B outlives a precision change", what);
    /* holds may not overlap (a forget names exactly one) */
    CHECK(rtr_backend_hold_weights(&b, B, sizeof *B * N * K) == RTR_OK);
    CHECK(rtr_backend_hold_weights(&b, B + 8, sizeof *B * 8) == RTR_ERR_INVALID);
    rtr_backend_forget_weights(&b, B, sizeof *B * N * K);
    free(A), free(B), free(C), free(first), free(again);
    rtr_backend_free(&b);
    fixture_free(&fx);
}

static void test_int8_cache(void) {
    if (!cpu_packed_available()) TEST_SKIP("no AVX2 + FMA on this CPU (int8)");
    cache_lifetime(CPU_GEMM_I8, "int8");
}

static void test_dnnl_cache(void) {
    if (cpu_dnnl_check(CPU_GEMM_DNNL_F32) != RTR_OK) TEST_SKIP("built without oneDNN");
    cache_lifetime(CPU_GEMM_DNNL_F32, "oneDNN");
}

TEST_MAIN(T(test_int8_cache), T(test_dnnl_cache))
