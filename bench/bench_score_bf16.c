/* bench_score_bf16 — how many routing decisions change when the scoring
 * GEMM (E·(|w2|·W_q)ᵀ, the one GEMM of `rtr score` per head) takes bf16
 * inputs with fp32 accumulation instead of fp32 ones: the question before
 * putting it on tensor cores (docs/CUDA.md, "bf16 scoring").
 *
 * A paper-sized predictor (D = H = U = 768, 4 models × 6 strategies) is
 * trained on the CPU for a few epochs on seeded, structured data (query
 * embeddings of norm 1, labels a noisy function of them, as test_gpu's
 * training check), then N held-out queries are scored twice through
 * rtr_predictor_score_backend: GEMM precision fp32, then bf16 — on the GPU
 * when one answers (cuBLASLt), else on the CUDA emulator (whose sgemm
 * rounds its inputs to bf16 as the GPU does). For λ over a grid spanning
 * the predictions' accuracy/cost trade-off the decisions (route_argmax's
 * rule) are compared, and a bound is stated: with d_p = max |Δp| and d_c =
 * max |Δtokens| observed, a query's decision can change only if its best
 * and second-best utilities p − λ·c are within 2·(d_p + λ·d_c); the count
 * of such queries bounds the changes at that λ.
 *
 *   bench_score_bf16 [--device cuda|auto] [--queries N] [--train N] [--epochs E]
 *   (defaults auto: the GPU, else the emulator; 20000, 20000, 3). --device
 *   cuda fails at once without a GPU (gpu_check.sh's step). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtr/backend.h"
#include "rtr/ops.h"
#include "rtr/predictor.h"
#include "common/util.h"

rtr_status rtr_backend_emu_open(rtr_backend *b); /* kernels/backend_cuda.cu, emulated build */

static uint64_t rng = 77;
static double urand(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* n query embeddings of norm about 1 (D columns) and their labels (K pairs):
 * correctness a noisy threshold of one coordinate, tokens a noisy exponential. */
static void make_rows(float *emb, float *yc, float *yt, int n, int D, int K, int ns) {
    for (size_t i = 0; i < (size_t)n * D; i++) emb[i] = (float)(2 * urand() - 1) * sqrtf(3.0f / (float)D);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) {
            float a = emb[(size_t)i * D + k % D] * sqrtf((float)D), r = (float)(2 * urand() - 1);
            yc[(size_t)i * K + k] = a + 0.3f * r > 0 ? 1.0f : 0.0f;
            yt[(size_t)i * K + k] = roundf(expf(4.0f + (float)(k % ns) + a + 0.2f * r));
        }
}

int main(int argc, char **argv) {
    int n_test = 20000, n_train = 20000, epochs = 3;
    const char *device = "auto";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--device")) device = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--queries")) n_test = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--train")) n_train = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--epochs")) epochs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_score_bf16 [--device cuda|auto] [--queries N] [--train N] [--epochs E]\n");
            return 2;
        }
    }
    enum { NM = 4, NS = 6, K = NM * NS, D = 768 };
    if (n_test < 1 || n_train < 10 || epochs < 1 || (strcmp(device, "cuda") && strcmp(device, "auto"))) {
        fprintf(stderr, "bench_score_bf16: --device cuda|auto, --queries >= 1, --train >= 10, --epochs >= 1\n");
        return 2;
    }
    rtr_backend dev;
    bool gpu = rtr_backend_init(&dev, "cuda") == RTR_OK;
    if (!gpu && !strcmp(device, "cuda")) {
        fprintf(stderr, "bench_score_bf16: no CUDA device: %s\n", rtr_last_error());
        return 1;
    }
    char json[512], *w = json;
    w += sprintf(w, "{\"models\":[");
    for (int i = 0; i < NM; i++) w += sprintf(w, "%s{\"name\":\"m%d\"}", i ? "," : "", i);
    w += sprintf(w, "],\"strategies\":[");
    for (int i = 0; i < NS; i++) w += sprintf(w, "%s{\"name\":\"s%d\"}", i ? "," : "", i);
    sprintf(w, "]}");
    rtr_catalog cat;
    rtr_predictor p;
    rtr_backend cpu;
    float *desc = malloc(sizeof(float) * (NM + NS) * D);
    float *emb = malloc(sizeof(float) * (size_t)n_train * D), *yc = malloc(sizeof(float) * (size_t)n_train * K);
    float *yt = malloc(sizeof(float) * (size_t)n_train * K);
    float *test = malloc(sizeof(float) * (size_t)n_test * D), *tc = malloc(sizeof(float) * (size_t)n_test * K);
    float *tt = malloc(sizeof(float) * (size_t)n_test * K), *s32 = malloc(sizeof(float) * 4 * (size_t)n_test * K);
    float *p32 = s32, *c32 = p32 + (size_t)n_test * K, *p16 = c32 + (size_t)n_test * K, *c16 = p16 + (size_t)n_test * K;
    int32_t *d32 = malloc(sizeof(int32_t) * 2 * (size_t)n_test), *d16 = d32 + n_test;
    for (int i = 0; i < (NM + NS) * D; i++) desc[i] = (float)(2 * urand() - 1) * sqrtf(3.0f / D);
    make_rows(emb, yc, yt, n_train, D, K, NS);
    make_rows(test, tc, tt, n_test, D, K, NS);
    rtr_train_params cfg = rtr_train_default_params();
    cfg.hidden = 768, cfg.learn_dim = 768, cfg.max_epochs = epochs, cfg.val_frac = 0.1, cfg.seed = 5;
    rtr_train_data data = {.n = n_train, .D = D, .K = K, .emb = emb, .correct = yc, .tokens = yt};
    if (rtr_catalog_parse_json(&cat, json, "bench") || rtr_predictor_init(&p, &cfg, &cat, D, desc, desc + NM * D) ||
        rtr_backend_cpu_open(&cpu)) {
        fprintf(stderr, "bench_score_bf16: setup: %s\n", rtr_last_error());
        return 1;
    }
    if (!gpu && rtr_backend_emu_open(&dev) != RTR_OK) {
        fprintf(stderr, "bench_score_bf16: no emulator: %s\n", rtr_last_error());
        return 1;
    }
    double t0 = rtr_now();
    rtr_status st = rtr_predictor_train_on(gpu ? &dev : &cpu, &p, &data, NULL, NULL);
    printf("predictor D=H=U=%d, %d pairs, trained on %d synthetic queries for %d epochs on %s (%.1f s)\n", D, K,
           n_train, epochs, gpu ? dev.device : cpu.device, rtr_now() - t0);
    if (!st) st = rtr_backend_set_gemm_precision(&dev, RTR_GEMM_F32);
    if (!st) st = rtr_predictor_score_backend(&dev, p32, c32, &p, test, n_test, 0);
    if (!st) st = rtr_backend_set_gemm_precision(&dev, RTR_GEMM_BF16);
    if (!st) st = rtr_predictor_score_backend(&dev, p16, c16, &p, test, n_test, 0);
    rtr_backend_set_gemm_precision(&dev, RTR_GEMM_F32);
    if (st) {
        fprintf(stderr, "bench_score_bf16: %s\n", rtr_last_error());
        return 1;
    }
    double dp = 0, dc = 0, mean_c = 0, sd_p = 0, mean_p = 0, sd_c = 0;
    size_t nk = (size_t)n_test * K;
    for (size_t i = 0; i < nk; i++) {
        dp = fmax(dp, fabs(p16[i] - p32[i]));
        dc = fmax(dc, fabs(c16[i] - c32[i]));
        mean_p += p32[i] / nk, mean_c += c32[i] / nk;
    }
    for (size_t i = 0; i < nk; i++)
        sd_p += (p32[i] - mean_p) * (p32[i] - mean_p) / nk, sd_c += (c32[i] - mean_c) * (c32[i] - mean_c) / nk;
    double lam_ref = sqrt(sd_p / sd_c); /* where accuracy and cost weigh alike */
    printf("scoring GEMM in bf16 on %s, %d queries x %d pairs: max |dp| %.3g, max |dtokens| %.3g (mean tokens %.0f)\n",
           gpu ? dev.device : "the CUDA emulator (bf16 inputs rounded as on the GPU)", n_test, K, dp, dc, mean_c);
    printf("%12s %12s %14s %14s\n", "lambda", "changed", "bound", "of queries");
    static const double grid[] = {0, 0.01, 0.1, 0.3, 1, 3, 10, 100};
    for (size_t g = 0; g < sizeof grid / sizeof *grid; g++) {
        double lam = grid[g] * lam_ref;
        rtr_route_argmax(d32, p32, c32, lam, n_test, K);
        rtr_route_argmax(d16, p16, c16, lam, n_test, K);
        int changed = 0, bound = 0;
        for (int i = 0; i < n_test; i++) {
            changed += d32[i] != d16[i];
            double best = -INFINITY, second = -INFINITY;
            for (int k = 0; k < K; k++) {
                double u = p32[(size_t)i * K + k] - lam * c32[(size_t)i * K + k];
                if (u > best) second = best, best = u;
                else if (u > second) second = u;
            }
            bound += best - second <= 2 * (dp + lam * dc);
        }
        printf("%12.4g %12d %14d %13.3f%%\n", lam, changed, bound, 100.0 * bound / n_test);
        if (changed > bound) printf("  (more changes than the bound: a tie rule or NaN; check)\n");
    }
    rtr_predictor_free(&p);
    rtr_catalog_free(&cat);
    rtr_backend_free(&dev);
    rtr_backend_free(&cpu);
    free(desc), free(emb), free(yc), free(yt), free(test), free(tc), free(tt), free(s32), free(d32);
    return 0;
}
