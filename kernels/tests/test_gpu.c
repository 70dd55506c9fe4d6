/* The CUDA backend on a real GPU against the reference backend: every op through
 * backend_suite (fp32, bf16 and fp16 GEMMs, every custom kernel, guard bytes
 * around outputs). Then the whole sentence encoder on the GPU against the CPU
 * encoder on the golden fixture's texts (real questions and adversarial
 * strings, tests/fixtures/encoder), for each model folder present. Exits 77
 * (skipped) when no CUDA device answers — a build without CUDA, no driver or
 * no GPU — which is every CI machine; run it on a GPU node
 * (bench/gpu_check.sh does). */
#include "backend_suite.h"
#include "encoder_fixture.h"
#include "rtr/encoder.h"
#include "test.h"

#include <string.h>
#include <time.h>

static void test_cuda_backend_against_cpu(void) {
    rtr_backend gpu, ref;
    if (rtr_backend_init(&gpu, "cuda") != RTR_OK) {
        fprintf(stderr, "no CUDA device: %s\n", rtr_last_error());
        TEST_SKIP("no CUDA device");
    }
    CHECK(rtr_backend_ref_open(&ref) == RTR_OK);
    CHECK(backend_suite_run(&gpu, &ref) == 0);
    rtr_backend_free(&gpu);
    rtr_backend_free(&ref);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Model `name` on the GPU (its default batch, fp32 then bf16 and fp16 GEMMs)
 * against the CPU encoder in fp32: fp32 max|diff| <= 1e-4 per element, bf16
 * and fp16 cosine >= 0.999 per text. False when the model folder is absent. */
static bool encoder_gpu_against_cpu(rtr_backend *gpu, const char *name) {
    const char *dir = fixture_model_dir(name);
    fixture fx;
    if (!dir || fixture_load(name, &fx) != 0) {
        fprintf(stderr, "%s: model folder or fixture absent, not compared\n", name);
        return false;
    }
    const char **texts = malloc(sizeof *texts * (size_t)fx.n);
    size_t *lens = malloc(sizeof *lens * (size_t)fx.n);
    int m = 0;
    for (int i = 0; i < fx.n; i++)
        if (fx.items[i].text) texts[m] = fx.items[i].text, lens[m++] = fx.items[i].len;
    rtr_encoder_params p = rtr_encoder_default_params();
    rtr_encoder *cpu = NULL;
    CHECK(rtr_encoder_load(dir, &p, &cpu) == RTR_OK);
    int D = fx.dim;
    float *want = malloc(sizeof *want * (size_t)m * D), *got = malloc(sizeof *got * (size_t)m * D);
    CHECK(cpu && rtr_encoder_encode(cpu, texts, lens, (size_t)m, want) == RTR_OK);
    static const char *precisions[] = {"fp32", "bf16", "fp16"};
    for (int k = 0; k < 3 && cpu; k++) {
        p.precision = precisions[k];
        rtr_encoder *enc = NULL;
        CHECK(rtr_encoder_load_on(dir, &p, gpu, &enc) == RTR_OK);
        if (!enc) {
            fprintf(stderr, "%s on %s: %s\n", name, gpu->device, rtr_last_error());
            continue;
        }
        double t0 = now();
        rtr_status st = rtr_encoder_encode(enc, texts, lens, (size_t)m, got);
        double secs = now() - t0;
        CHECK_MSG(st == RTR_OK, "%s %s: %s", name, precisions[k], rtr_last_error());
        double worst = 0, min_cos = 1;
        int bad = 0;
        for (int i = 0; i < m && st == RTR_OK; i++) {
            const float *g = got + (size_t)i * D, *w = want + (size_t)i * D;
            double dot = 0, ng = 0, nw = 0, md = 0;
            for (int c = 0; c < D; c++) {
                dot += (double)g[c] * w[c], ng += (double)g[c] * g[c], nw += (double)w[c] * w[c];
                double d = fabs((double)g[c] - w[c]);
                if (!(d <= md)) md = d; /* NaN propagates */
            }
            double cs = dot / sqrt(ng * nw);
            bool ok = k == 0 ? md <= 1e-4 : cs >= 0.999;
            if (!ok && bad++ < 5) fprintf(stderr, "%s %s text %d: max|diff| %.2e cosine %.7f\n", name, precisions[k], i, md, cs);
            if (!(md <= worst)) worst = md;
            if (!(cs >= min_cos)) min_cos = cs;
        }
        CHECK(bad == 0);
        fprintf(stderr, "%s on %s, %s GEMMs, %d texts (batch %d tokens): max|diff| %.2e, min cosine %.7f "
                "against the CPU; %.3f s\n", name, gpu->device, rtr_encoder_precision(enc), m,
                rtr_encoder_batch_tokens(enc), worst, min_cos, secs);
        rtr_encoder_free(enc);
    }
    rtr_encoder_free(cpu);
    free(got);
    free(want);
    free(lens);
    free(texts);
    fixture_free(&fx);
    return true;
}

static void test_cuda_encoder_against_cpu(void) {
    rtr_backend gpu;
    if (rtr_backend_init(&gpu, "cuda") != RTR_OK) {
        fprintf(stderr, "no CUDA device: %s\n", rtr_last_error());
        TEST_SKIP("no CUDA device");
    }
    bool minilm = encoder_gpu_against_cpu(&gpu, "all-MiniLM-L6-v2");
    bool mpnet = encoder_gpu_against_cpu(&gpu, "all-mpnet-base-v2");
    rtr_backend_free(&gpu);
    if (!minilm && !mpnet) TEST_SKIP("no model folder (tools/fetch-encoder)");
}

TEST_MAIN(T(test_cuda_backend_against_cpu), T(test_cuda_encoder_against_cpu))
