/* bench_backend — times every backend op at production sizes on the CPU
 * backend and, when a CUDA device answers, on the CUDA backend in the same
 * run, and prints one table: time per call on each, the ratio, the GPU's
 * throughput, and the roofline of the op (docs/CUDA.md): its floor on this
 * card (its FLOPs at the peak tensor/fp32 rate or its bytes at the peak
 * memory bandwidth, whichever is larger, plus the bytes of any memory-bound
 * pass the call adds), how much of it the measured time reaches, and the
 * same floor at the H100 SXM and H200 datasheet peaks. Peaks default to an
 * H100 SXM's datasheet (989 TFLOP/s dense bf16, 67 TFLOP/s fp32, 3.35 TB/s
 * HBM3); gpu_check.sh passes the ceilings it measured on the card:
 *   bench_backend [--peak-tc TFLOPS] [--peak-fp32 TFLOPS] [--peak-bw TBPS] [--quick]
 * The bf16 encoder ops (the GPU's bf16 path) are timed on the GPU only, the
 * feed-forward GEMM both with the bias+GELU kernel after it and with
 * cuBLASLt's GELU_BIAS epilogue (RTR_CUDA_GELU_EPILOGUE=1); then the bf16
 * encoder of all-mpnet-base-v2 at 64 tokens is summed from its parts,
 * measured and modelled, in queries/s (the target: 50,000 on an
 * H100). Not part of ctest; bench/gpu_check.sh runs it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtr/backend.h"
#include "rtr/predictor.h"
#include "common/util.h"

static double peak_tc = 989e12, peak_fp32 = 67e12, peak_bw = 3.35e12;
/* datasheet peaks of the roofline columns: H100 SXM and H200 (same SMs and
 * clocks, faster HBM3e) */
static const double H100_TC = 989e12, H100_FP32 = 67e12, H100_BW = 3.35e12, H200_BW = 4.8e12;
static bool quick;

typedef struct {
    const char *op, *shape;
    double flops, bytes; /* per call */
    bool tensor_cores;   /* FLOPs count at the tensor-core peak */
    double unit;         /* items per call for the throughput column */
    const char *unit_name;
    double extra_bytes;  /* a memory-bound pass after the main kernel (GELU after a GEMM) */
    bool gpu_only;       /* the bf16 path: no CPU implementation to time */
} bench_case;

/* The roofline floor of case d at the given peaks (seconds). */
static double floor_of(const bench_case *d, double tc, double fp32, double bw) {
    return fmax(d->flops / (d->tensor_cores ? tc : fp32), d->bytes / bw) + d->extra_bytes / bw;
}

/* Inputs of all cases, uploaded once per backend: one pool of random floats
 * in [-1, 1] that every op reads from (offsets keep the arrays apart). */
typedef struct {
    rtr_backend *b;
    float *pool;  /* backend memory, pool_n floats */
    size_t pool_n;
    rtr_bf16 *hpool; /* bf16 values in [-1, 1] for the bf16 path (GPU only), HPOOL_N of them */
    int32_t *ids, *lens, *choice;
    double *loss;
} bench_env;

static float *P(bench_env *e, size_t off) { return e->pool + off % (e->pool_n / 2); }

static double now_sync(rtr_backend *b) {
    rtr_backend_synchronize(b);
    return rtr_now();
}

enum { GEMM_F32, GEMM_BF16, ATTENTION, GELU, RESID_LN, EMBED_LN, POOL, HEADS_FWD, HEADS_SCORE, HEADS_BWD, HEADS_LOSS, ROUTE,
       ENVELOPE, G16_QKV, G16_O, G16_FC, G16_FC_EPI, G16_PROJ, ATT16, GELU16, RLN16, EMB16, POOL16, NCASES };

/* Sizes: an encoder batch of 256 sequences × 64 tokens of all-mpnet-base-v2
 * (C 768, 12 heads, FFN 3072); heads over 65,536 queries × 24 pairs, H 768. */
enum { SEQ = 256, TOK = 64, HID = 768, NHEAD = 12, FFN = 3072, NQ = 65536, NP = 24, NQB = 4096, LAYERS = 12 };
#define HPOOL_N ((size_t)1 << 27)

/* bf16 pool slices: activations and weights apart (element offsets) */
static rtr_bf16 *H(bench_env *e, size_t off) { return e->hpool + off % (HPOOL_N / 2); }

static rtr_status run_case(bench_env *e, int c) {
    const rtr_backend_iface *f = e->b->iface;
    void *x = e->b->ctx;
    int N = SEQ * TOK;
    switch (c) {
    case GEMM_F32:
    case GEMM_BF16: /* the QKV projection: [N x 768] · [2304 x 768]ᵀ */
        rtr_backend_set_gemm_precision(e->b, c == GEMM_BF16 ? RTR_GEMM_BF16 : RTR_GEMM_F32);
        return f->sgemm(x, false, true, N, 3 * HID, HID, 1.0f, P(e, 0), HID, P(e, 1 << 24), HID, 0.0f,
                        P(e, 3u << 24), 3 * HID);
    case ATTENTION:
        return f->attention_forward(x, P(e, 0), P(e, 1 << 24), P(e, 3u << 24), NULL, e->lens, SEQ, TOK, HID, NHEAD);
    case GELU: return f->bias_gelu_forward(x, P(e, 0), P(e, 1 << 26), P(e, 7), N, FFN);
    case RESID_LN:
        return f->residual_layernorm_forward(x, P(e, 0), P(e, 1 << 24), P(e, 5), P(e, 2u << 24), P(e, 9), P(e, 11),
                                             1e-5f, N, HID);
    case EMBED_LN:
        return f->embedding_layernorm_forward(x, P(e, 0), e->ids, e->ids, P(e, 1 << 24), P(e, 1 << 25), NULL, P(e, 5),
                                              P(e, 9), 1e-5f, SEQ, TOK, HID);
    case POOL: return f->pool_forward(x, P(e, 0), P(e, 1 << 24), e->lens, SEQ, TOK, HID, RTR_POOL_MEAN, true);
    case HEADS_FWD:
        return f->heads_forward(x, P(e, 0), P(e, 1 << 22), P(e, 1 << 24), P(e, 1 << 26), P(e, 5u << 24),
                                P(e, 6u << 24), P(e, 7), P(e, 9), P(e, 11), P(e, 13), NQ, NP, HID);
    case HEADS_SCORE:
        return f->heads_score(x, P(e, 0), P(e, 1 << 22), P(e, 1 << 24), P(e, 1 << 26), P(e, 5u << 24),
                              P(e, 6u << 24), P(e, 7), P(e, 9), P(e, 11), P(e, 13), NQ, NP, HID);
    case HEADS_BWD:
        return f->heads_backward(x, P(e, 0), P(e, 1 << 22), P(e, 1 << 23), P(e, 3u << 22), P(e, 15u << 20),
                                 P(e, (15u << 20) + 1024), P(e, (15u << 20) + 2048), P(e, (15u << 20) + 3072),
                                 P(e, 1 << 24), P(e, 5u << 22), P(e, 1 << 25), P(e, 9u << 22),
                                 P(e, 5u << 24), P(e, 6u << 24), P(e, 7), P(e, 9), NQB, NP, HID);
    case HEADS_LOSS:
        return f->heads_loss(x, P(e, 0), P(e, 1 << 22), e->loss, P(e, 1 << 23), P(e, 3u << 22), P(e, 1 << 24),
                             P(e, 5u << 22), 1e-6f, 1e-6f, NQ, NP);
    case ROUTE:
        return f->route_argmax(x, e->choice, P(e, 1 << 24), P(e, 1 << 25), 0.5, 1 << 20, NP);
    case ENVELOPE: /* pieces: pair ids in the choice buffer's room, starts in the pool's upper half */
        return f->route_envelope(x, e->ids, (double *)P(e, 3u << 25), e->choice, P(e, 1 << 24), P(e, 1 << 25),
                                 1 << 15, NP);
    /* the bf16 path, as forward_bf16 in src/encoder/encoder.c calls it */
    case G16_QKV: return f->gemm_bf16(x, H(e, 1u << 25), H(e, 0), H(e, 1u << 24), NULL, N, HID, 3 * HID);
    case G16_O: return f->gemm_bf16(x, H(e, 1u << 25), H(e, 0), H(e, 1u << 24), NULL, N, HID, HID);
    case G16_FC:
    case G16_FC_EPI: return f->gemm_bf16(x, H(e, 1u << 25), H(e, 0), H(e, 1u << 24), P(e, 7), N, HID, FFN);
    case G16_PROJ: return f->gemm_bf16(x, H(e, 1u << 25), H(e, 0), H(e, 1u << 24), NULL, N, FFN, HID);
    case ATT16:
        return f->attention_bf16(x, H(e, 1u << 25), H(e, 0), P(e, 7), NULL, e->lens, SEQ, TOK, HID, NHEAD);
    case GELU16: return f->bias_gelu_bf16(x, H(e, 1u << 25), H(e, 0), P(e, 7), N, FFN);
    case RLN16:
        return f->residual_layernorm_bf16(x, H(e, 1u << 25), H(e, 0), P(e, 5), H(e, 1u << 24), P(e, 9), P(e, 11),
                                          1e-5f, N, HID);
    case EMB16:
        return f->embedding_layernorm_bf16(x, H(e, 1u << 25), e->ids, e->ids, P(e, 1 << 24), P(e, 1 << 25), NULL,
                                           P(e, 5), P(e, 9), 1e-5f, SEQ, TOK, HID);
    case POOL16: return f->pool_bf16(x, P(e, 0), H(e, 0), e->lens, SEQ, TOK, HID, RTR_POOL_MEAN, true);
    }
    return RTR_ERR_INVALID;
}

static bench_case describe(int c) {
    double N = SEQ * TOK, NK = (double)NQ * NP;
    switch (c) {
    case GEMM_F32: return (bench_case){"sgemm fp32", "16384x2304x768", 2 * N * 3 * HID * HID, 4 * (N * HID + 3.0 * HID * HID + N * 3 * HID), false, 2 * N * 3 * HID * HID, "FLOP", 0, false};
    case GEMM_BF16: return (bench_case){"sgemm bf16", "16384x2304x768", 2 * N * 3 * HID * HID, 2 * (N * HID + 3.0 * HID * HID) + 4 * N * 3 * HID, true, 2 * N * 3 * HID * HID, "FLOP", 0, false};
    case ATTENTION: return (bench_case){"attention_forward", "B256 T64 C768 H12", 4.0 * SEQ * NHEAD * TOK * TOK * (HID / NHEAD), 4 * (N * 4 * HID + (double)SEQ * NHEAD * TOK * TOK), false, N, "tok", 0, false};
    case GELU: return (bench_case){"bias_gelu_forward", "16384x3072", 0, 8 * N * FFN, false, N, "tok", 0, false};
    case RESID_LN: return (bench_case){"residual_layernorm_forward", "16384x768", 0, 12 * N * HID, false, N, "tok", 0, false};
    case EMBED_LN: return (bench_case){"embedding_layernorm_forward", "16384x768", 0, 12 * N * HID, false, N, "tok", 0, false};
    case POOL: return (bench_case){"pool_forward mean+norm", "B256 T64 C768", 0, 4 * N * HID, false, SEQ, "seq", 0, false};
    /* heads: fp32 instructions per unit and head (add, max, FMA: 3; folded max, FMA: 2), each counted as 2 FLOP
     * because the fp32 peak counts an FMA as 2 */
    case HEADS_FWD: return (bench_case){"heads_forward", "N65536 K24 H768", 2 * 2 * 3 * NK * HID, 4 * (2.0 * NQ * HID + 2 * NK), false, NK, "pred", 0, false};
    case HEADS_SCORE: return (bench_case){"heads_score", "N65536 K24 H768", 2 * 2 * 2 * NK * HID, 4 * (2.0 * NQ * HID + 2 * NK), false, NK, "pred", 0, false};
    case HEADS_BWD: return (bench_case){"heads_backward", "N4096 K24 H768", 2 * 6.0 * NQB * NP * HID, 4 * (4.0 * NQB * HID + 2.0 * NQB * NP), false, (double)NQB * NP, "pred", 0, false};
    case HEADS_LOSS: return (bench_case){"heads_loss", "N65536 K24", 0, 4 * 6 * NK, false, NK, "pred", 0, false};
    case ROUTE: return (bench_case){"route_argmax", "n1048576 K24", 0, 8.0 * (1 << 20) * NP, false, 1 << 20, "query", 0, false};
    case ENVELOPE: return (bench_case){"route_envelope", "n32768 K24", 0, 20.0 * (1 << 15) * NP, false, 1 << 15, "query", 0, false};
    /* bf16 path: 2 bytes an element; GEMM bytes are inputs, weights and output once */
    case G16_QKV: return (bench_case){"gemm_bf16 qkv", "16384x2304x768", 2 * N * 3 * HID * HID, 2 * (N * HID + 3.0 * HID * HID + N * 3 * HID), true, N, "tok", 0, true};
    case G16_O: return (bench_case){"gemm_bf16 out-proj", "16384x768x768", 2 * N * HID * HID, 2 * (2 * N * HID + 1.0 * HID * HID), true, N, "tok", 0, true};
    case G16_FC: return (bench_case){"gemm_bf16 fc + gelu kernel", "16384x3072x768", 2 * N * FFN * HID, 2 * (N * HID + 1.0 * FFN * HID + N * FFN), true, N, "tok", 4 * N * FFN, true};
    case G16_FC_EPI: return (bench_case){"gemm_bf16 fc, GELU epilogue", "16384x3072x768", 2 * N * FFN * HID, 2 * (N * HID + 1.0 * FFN * HID + N * FFN), true, N, "tok", 0, true};
    case G16_PROJ: return (bench_case){"gemm_bf16 fc-proj", "16384x768x3072", 2 * N * FFN * HID, 2 * (N * HID + 1.0 * FFN * HID + N * FFN), true, N, "tok", 0, true};
    case ATT16: return (bench_case){"attention_bf16 (flash)", "B256 T64 C768 H12", 4.0 * SEQ * NHEAD * TOK * TOK * (HID / NHEAD), 2 * (N * 4 * HID), true, N, "tok", 0, true};
    case GELU16: return (bench_case){"bias_gelu_bf16", "16384x3072", 0, 4 * N * FFN, false, N, "tok", 0, true};
    case RLN16: return (bench_case){"residual_layernorm_bf16", "16384x768", 0, 6 * N * HID, false, N, "tok", 0, true};
    case EMB16: return (bench_case){"embedding_layernorm_bf16", "16384x768", 0, 10 * N * HID, false, N, "tok", 0, true};
    case POOL16: return (bench_case){"pool_bf16 mean+norm", "B256 T64 C768", 0, 2 * N * HID, false, SEQ, "seq", 0, true};
    }
    return (bench_case){0};
}

static rtr_status env_init(bench_env *e, rtr_backend *b) {
    memset(e, 0, sizeof *e);
    e->b = b;
    e->pool_n = (size_t)1 << 28; /* 1 GiB of floats: the largest case uses ~0.4 GiB */
    size_t chunk = (size_t)1 << 22;
    float *host = malloc(chunk * sizeof *host);
    int32_t *ids = malloc((size_t)(1 << 20) * sizeof *ids);
    if (!host || !ids) return RTR_ERR_NOMEM;
    uint64_t s = 12345;
    for (size_t i = 0; i < chunk; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        host[i] = (float)((double)(s >> 11) / 4503599627370496.0 - 1.0);
    }
    for (int i = 0; i < 1 << 20; i++) ids[i] = i % TOK;
    int32_t lens[SEQ];
    for (int i = 0; i < SEQ; i++) lens[i] = TOK;
    rtr_status st = rtr_backend_alloc(b, (void **)&e->pool, e->pool_n * sizeof(float));
    for (size_t off = 0; st == RTR_OK && off < e->pool_n; off += chunk)
        st = rtr_backend_upload(b, e->pool + off, host, chunk * sizeof(float));
    if (st == RTR_OK) st = rtr_backend_alloc(b, (void **)&e->ids, (size_t)(1 << 20) * sizeof *ids);
    if (st == RTR_OK) st = rtr_backend_upload(b, e->ids, ids, (size_t)(1 << 20) * sizeof *ids);
    if (st == RTR_OK) st = rtr_backend_alloc(b, (void **)&e->lens, sizeof lens);
    if (st == RTR_OK) st = rtr_backend_upload(b, e->lens, lens, sizeof lens);
    if (st == RTR_OK) st = rtr_backend_alloc(b, (void **)&e->loss, 2 * sizeof(double));
    if (st == RTR_OK) st = rtr_backend_alloc(b, (void **)&e->choice, (size_t)(1 << 20) * sizeof *ids);
    if (st == RTR_OK && !rtr_backend_is_host(b)) {
        rtr_bf16 *h16 = (rtr_bf16 *)host; /* chunk floats' room holds 2·chunk bf16 */
        for (size_t i = 0; i < 2 * chunk; i++) h16[i] = rtr_bf16_round(host[i / 2] * (i % 2 ? -0.5f : 1.0f));
        st = rtr_backend_alloc(b, (void **)&e->hpool, HPOOL_N * sizeof *e->hpool);
        for (size_t off = 0; st == RTR_OK && off < HPOOL_N; off += 2 * chunk)
            st = rtr_backend_upload(b, e->hpool + off, h16, 2 * chunk * sizeof *h16);
    }
    free(host);
    free(ids);
    return st;
}

static void env_free(bench_env *e) {
    rtr_backend_free_mem(e->b, e->pool);
    rtr_backend_free_mem(e->b, e->ids);
    rtr_backend_free_mem(e->b, e->lens);
    rtr_backend_free_mem(e->b, e->loss);
    rtr_backend_free_mem(e->b, e->choice);
    rtr_backend_free_mem(e->b, e->hpool);
}

/* Seconds per call: one warm-up, then repeat until 0.3 s (0.05 s quick) or
 * 50 calls. NaN when the op fails (said on stderr) or is GPU-only. */
static double time_case(bench_env *e, int c) {
    if (describe(c).gpu_only && rtr_backend_is_host(e->b)) return NAN;
    if (run_case(e, c) != RTR_OK) {
        fprintf(stderr, "bench_backend: %s on %s: %s\n", describe(c).op, e->b->iface->name, rtr_last_error());
        return NAN;
    }
    double t0 = now_sync(e->b), t = t0;
    int reps = 0;
    while (reps < 50 && t - t0 < (quick ? 0.05 : 0.3)) {
        if (run_case(e, c) != RTR_OK) return NAN;
        reps++;
        t = now_sync(e->b);
    }
    return (t - t0) / reps;
}

/* End to end scoring of a paper-sized predictor (D = H = U = 768, 4 models ×
 * 6 strategies) from host embeddings to host predictions: the C path
 * (rtr_predictor_score) against rtr_predictor_score_backend on the GPU. */
static void bench_score(rtr_backend *gpu) {
    enum { D = 768, NQS = 65536 };
    const char *json = "{\"models\":[{\"name\":\"m1\"},{\"name\":\"m2\"},{\"name\":\"m3\"},{\"name\":\"m4\"}],"
                       "\"strategies\":[{\"name\":\"s1\"},{\"name\":\"s2\"},{\"name\":\"s3\"},{\"name\":\"s4\"},"
                       "{\"name\":\"s5\"},{\"name\":\"s6\"}]}";
    rtr_catalog cat;
    rtr_predictor p;
    rtr_train_params cfg = rtr_train_default_params();
    float *desc = calloc(10 * D, sizeof *desc), *emb = malloc(sizeof(float) * NQS * D);
    float *out = malloc(sizeof(float) * 2 * NQS * 24);
    for (size_t i = 0; i < (size_t)NQS * D; i++) emb[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    if (rtr_catalog_parse_json(&cat, json, "bench") || rtr_predictor_init(&p, &cfg, &cat, D, desc, desc + 4 * D)) {
        fprintf(stderr, "bench_backend: predictor setup failed: %s\n", rtr_last_error());
        return;
    }
    double t0 = rtr_now();
    rtr_status st = rtr_predictor_score(out, out + NQS * 24, &p, emb, NQS);
    double tc = rtr_now() - t0, tg = NAN;
    if (gpu && !st) {
        st = rtr_predictor_score_backend(gpu, out, out + NQS * 24, &p, emb, NQS, 0); /* warm-up */
        t0 = rtr_now();
        if (!st) st = rtr_predictor_score_backend(gpu, out, out + NQS * 24, &p, emb, NQS, 0);
        tg = rtr_now() - t0;
    }
    if (st) fprintf(stderr, "bench_backend: scoring failed: %s\n", rtr_last_error());
    double preds = (double)NQS * 24;
    printf("\nscore end to end (host embeddings -> host predictions), %d queries x 24 pairs, D=H=U=768:\n", NQS);
    printf("  C path (rtr_predictor_score)      %8.1f ms  %.3g predictions/s\n", tc * 1e3, preds / tc);
    if (gpu) printf("  GPU (rtr_predictor_score_backend) %8.1f ms  %.3g predictions/s  (%.1fx)\n", tg * 1e3, preds / tg,
                    tc / tg);
    rtr_predictor_free(&p);
    rtr_catalog_free(&cat);
    free(desc), free(emb), free(out);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (i + 1 < argc && !strcmp(argv[i], "--peak-tc")) peak_tc = atof(argv[++i]) * 1e12;
        else if (i + 1 < argc && !strcmp(argv[i], "--peak-fp32")) peak_fp32 = atof(argv[++i]) * 1e12;
        else if (i + 1 < argc && !strcmp(argv[i], "--peak-bw")) peak_bw = atof(argv[++i]) * 1e12;
        else {
            fprintf(stderr, "usage: bench_backend [--quick] [--peak-tc TFLOPS] [--peak-fp32 TFLOPS] [--peak-bw TBPS]\n");
            return 2;
        }
    }
    rtr_backend cpu, gpu;
    bench_env ecpu, egpu;
    if (rtr_backend_cpu_open(&cpu) != RTR_OK || env_init(&ecpu, &cpu) != RTR_OK) {
        fprintf(stderr, "bench_backend: CPU setup failed: %s\n", rtr_last_error());
        return 1;
    }
    bool have_gpu = rtr_backend_init(&gpu, "cuda") == RTR_OK;
    if (!have_gpu) fprintf(stderr, "bench_backend: %s: CPU column only\n", rtr_last_error());
    if (have_gpu && env_init(&egpu, &gpu) != RTR_OK) {
        fprintf(stderr, "bench_backend: GPU setup failed: %s\n", rtr_last_error());
        return 1;
    }
    /* the GELU epilogue variant: a second CUDA backend opened with it on */
    rtr_backend gpu_epi;
    bench_env eepi;
    bool have_epi = false;
    if (have_gpu) {
        setenv("RTR_CUDA_GELU_EPILOGUE", "1", 1);
        have_epi = rtr_backend_init(&gpu_epi, "cuda") == RTR_OK && env_init(&eepi, &gpu_epi) == RTR_OK;
        unsetenv("RTR_CUDA_GELU_EPILOGUE");
    }
    printf("cpu: %s\ngpu: %s\nroofline: floor = max(FLOPs / %.0f TFLOP/s (tensor) or %.0f TFLOP/s (fp32), bytes / "
           "%.2f TB/s) + bytes of an added pass / bandwidth; H100 / H200: the same at their datasheet peaks "
           "(%.0f, %.0f TFLOP/s, %.2f / %.2f TB/s)\n\n",
           cpu.device, have_gpu ? gpu.device : "none", peak_tc / 1e12, peak_fp32 / 1e12, peak_bw / 1e12,
           H100_TC / 1e12, H100_FP32 / 1e12, H100_BW / 1e12, H200_BW / 1e12);
    printf("%-30s %-18s %10s %10s %8s %14s %10s %8s %9s %9s\n", "op", "shape", "cpu ms", "gpu ms", "cpu/gpu",
           "gpu rate", "floor ms", "of floor", "H100 ms", "H200 ms");
    double measured[NCASES];
    for (int c = 0; c < NCASES; c++) {
        bench_case d = describe(c);
        double tc = time_case(&ecpu, c);
        double tg = c == G16_FC_EPI ? (have_epi ? time_case(&eepi, c) : NAN) : have_gpu ? time_case(&egpu, c) : NAN;
        measured[c] = tg;
        double floor = floor_of(&d, peak_tc, peak_fp32, peak_bw);
        char rate[32] = "-", gpu_ms[16] = "-", ratio[16] = "-", of_floor[16] = "-", cpu_ms[16] = "-";
        if (!isnan(tc)) snprintf(cpu_ms, sizeof cpu_ms, "%.3f", tc * 1e3);
        if (!isnan(tg)) {
            snprintf(rate, sizeof rate, "%.3g %s/s", d.unit / tg, d.unit_name);
            snprintf(gpu_ms, sizeof gpu_ms, "%.3f", tg * 1e3);
            if (!isnan(tc)) snprintf(ratio, sizeof ratio, "%.1f", tc / tg);
            snprintf(of_floor, sizeof of_floor, "%.0f%%", 100 * floor / tg);
        }
        printf("%-30s %-18s %10s %10s %8s %14s %10.4f %8s %9.4f %9.4f\n", d.op, d.shape, cpu_ms, gpu_ms, ratio, rate,
               floor * 1e3, of_floor, floor_of(&d, H100_TC, H100_FP32, H100_BW) * 1e3,
               floor_of(&d, H100_TC, H100_FP32, H200_BW) * 1e3);
    }
    /* the bf16 encoder of all-mpnet-base-v2 from its parts: 12 layers of
     * (qkv, attention, out-proj, LayerNorm, fc + GELU, fc-proj, LayerNorm),
     * then embedding and pooling, for SEQ queries of TOK tokens */
    static const int layer[] = {G16_QKV, ATT16, G16_O, RLN16, G16_FC, G16_PROJ, RLN16};
    for (int epi = 0; epi < 2; epi++) {
        double t_meas = 0, t_here = 0, t_h100 = 0, t_h200 = 0;
        for (int k = 0; k < 2 + LAYERS * 7; k++) {
            int c = k == 0 ? EMB16 : k == 1 ? POOL16 : layer[(k - 2) % 7];
            if (c == G16_FC && epi) c = G16_FC_EPI;
            bench_case d = describe(c);
            t_meas += measured[c];
            t_here += floor_of(&d, peak_tc, peak_fp32, peak_bw);
            t_h100 += floor_of(&d, H100_TC, H100_FP32, H100_BW);
            t_h200 += floor_of(&d, H100_TC, H100_FP32, H200_BW);
        }
        printf("%s bf16 encoder, all-mpnet-base-v2, %d queries x %d tokens, GELU %s: measured parts %.0f q/s "
               "(%.2f ms a batch); model %.0f q/s on this card's peaks (%.0f%% reached), H100 SXM %.0f q/s, H200 "
               "%.0f q/s (target 50000 on an H100)\n",
               epi ? "  " : "\n", SEQ, TOK, epi ? "as cuBLASLt epilogue" : "kernel after the GEMM", SEQ / t_meas,
               t_meas * 1e3, SEQ / t_here, 100 * t_here / t_meas, SEQ / t_h100, SEQ / t_h200);
    }
    bench_score(have_gpu ? &gpu : NULL);
    env_free(&ecpu);
    rtr_backend_free(&cpu);
    if (have_gpu) {
        env_free(&egpu);
        rtr_backend_free(&gpu);
    }
    if (have_epi) {
        env_free(&eepi);
        rtr_backend_free(&gpu_epi);
    }
    return 0;
}
