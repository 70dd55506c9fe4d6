/* bench_encode_cpu — one timed encode on the CPU backend, for
 * bench/bench_encode.py's interleaved runs: texts from stdin (one per line),
 * the encoder loaded with its linear layers on OpenBLAS fp32 ("fp32"), on
 * int8 weights ("int8", src/backend/cpu_gemm_packed.c), in bf16 through
 * oneDNN ("bf16": AVX-512 BF16 CPUs only, src/backend/cpu_dnnl.c) or on the
 * model of bf16's arithmetic ("bf16-model": operands rounded to bf16,
 * OpenBLAS fp32 sums; any CPU, slow), one warm-up call on the first 32 texts, then every text encoded in one call (--each: one call per
 * text, as online `route --batch-size 1` encodes). Prints one JSON line
 * (load and encode seconds, texts, real tokens); --out writes the
 * embeddings as raw float32 [n x D] so the caller can compare them with its
 * peers'.
 *
 *     bench_encode_cpu --model DIR [--precision fp32|int8|bf16|bf16-model] [--threads N]
 *                      [--max-len L] [--batch-tokens N] [--out FILE] [--each] < texts
 *
 * --batch-tokens: rtr_encoder_params.batch_tokens (default: the encoder's).
 *
 * int8 and bf16-model: not precisions the encoder offers, so the encoder
 * runs on a copy of the CPU backend's table whose set_gemm_precision always
 * selects them (as tests/test_cpu_gemm.c does); that copy does not count as
 * the host, so the encoder keeps a second copy of the float weights. */
#include "rtr/backend.h"
#include "rtr/encoder.h"
#include "backend/cpu_dnnl.h"
#include "backend/cpu_gemm_packed.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static rtr_gemm_precision forced;
static rtr_status (*cpu_set_precision)(void *ctx, rtr_gemm_precision p);
static rtr_status force_precision(void *ctx, rtr_gemm_precision p) {
    (void)p;
    return cpu_set_precision(ctx, forced);
}

static int usage(void) {
    fprintf(stderr, "usage: bench_encode_cpu --model DIR [--precision fp32|int8|bf16|bf16-model] [--threads N] [--max-len L] "
                    "[--batch-tokens N] [--out FILE] [--each] < texts\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *model = NULL, *precision = "fp32", *out_path = NULL;
    int threads = 2, max_len = 0, batch_tokens = 0;
    bool each = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--each")) {
            each = true;
            continue;
        }
        if (i + 1 >= argc) return usage();
        if (!strcmp(argv[i], "--model")) model = argv[++i];
        else if (!strcmp(argv[i], "--precision")) precision = argv[++i];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-len")) max_len = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch-tokens")) batch_tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out")) out_path = argv[++i];
        else return usage();
    }
    bool i8 = !strcmp(precision, "int8"), bf16_model = !strcmp(precision, "bf16-model");
    if (!model || threads < 1 || max_len < 0 || batch_tokens < 0 ||
        (!i8 && !bf16_model && strcmp(precision, "fp32") && strcmp(precision, "bf16")))
        return usage();

    /* texts: one per line */
    size_t cap = 1024, n = 0, line_cap = 0;
    char **texts = malloc(cap * sizeof *texts), *line = NULL;
    size_t *lens = malloc(cap * sizeof *lens);
    ssize_t got;
    while ((got = getline(&line, &line_cap, stdin)) >= 0) {
        if (got > 0 && line[got - 1] == '\n') line[--got] = 0;
        if (n == cap) {
            cap *= 2;
            texts = realloc(texts, cap * sizeof *texts);
            lens = realloc(lens, cap * sizeof *lens);
        }
        texts[n] = strdup(line);
        lens[n++] = (size_t)got;
    }
    free(line);

    omp_set_num_threads(threads);
    double t0 = now();
    rtr_backend b;
    static rtr_backend_iface forced_iface;
    if (rtr_backend_cpu_open(&b) != RTR_OK) return fprintf(stderr, "%s\n", rtr_last_error()), 1;
    rtr_encoder_params p = rtr_encoder_default_params();
    p.n_threads = threads;
    p.max_seq_length = max_len;
    if (i8 || bf16_model) {
        forced_iface = *b.iface;
        forced = i8 ? CPU_GEMM_I8 : CPU_GEMM_BF16_MODEL;
        cpu_set_precision = b.iface->set_gemm_precision;
        forced_iface.set_gemm_precision = force_precision;
        b.iface = &forced_iface;
        p.batch_tokens = 4096; /* the CPU's default, which the copy would not get */
    } else {
        p.precision = precision;
    }
    if (batch_tokens) p.batch_tokens = batch_tokens;
    rtr_encoder *enc = NULL;
    if (rtr_encoder_load_on(&b, &enc, model, &p) != RTR_OK) return fprintf(stderr, "%s\n", rtr_last_error()), 1;
    double load = now() - t0;
    int D = rtr_encoder_dim(enc);
    float *emb = malloc(sizeof *emb * (n ? n : 1) * D);
    size_t warm = n < 32 ? n : 32;
    if (rtr_encoder_encode(enc, emb, (const char *const *)texts, lens, warm) != RTR_OK)
        return fprintf(stderr, "%s\n", rtr_last_error()), 1;
    t0 = now();
    for (size_t i = 0, step = each ? 1 : n; i < n; i += step)
        if (rtr_encoder_encode(enc, emb + i * D, (const char *const *)texts + i, lens + i, step) != RTR_OK)
            return fprintf(stderr, "%s\n", rtr_last_error()), 1;
    double secs = now() - t0;
    /* real tokens, as the encoder truncates them */
    const rtr_tokenizer *tok = rtr_encoder_tokenizer(enc);
    int T = max_len > 0 ? max_len : rtr_tokenizer_max_length(tok);
    int32_t *ids = malloc(sizeof *ids * T);
    long tokens = 0;
    for (size_t i = 0; i < n; i++) {
        int m = 0;
        if (rtr_tokenizer_encode(tok, ids, &m, texts[i], lens[i], T) == RTR_OK) tokens += m;
    }
    if (out_path) {
        FILE *f = fopen(out_path, "wb");
        if (!f || fwrite(emb, sizeof *emb * D, n, f) != n || fclose(f))
            return fprintf(stderr, "%s: cannot write\n", out_path), 1;
    }
    printf("{\"precision\": \"%s\", \"threads\": %d, \"load\": %.4f, \"secs\": %.4f, \"texts\": %zu, \"tokens\": %ld, "
           "\"dim\": %d}\n", precision, threads, load, secs, n, tokens, D);
    rtr_encoder_free(enc);
    rtr_backend_free(&b);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts), free(lens), free(emb), free(ids);
    return 0;
}
