/* Benchmark of one training epoch (rtr_predictor_train_on, src/predictor/train.c) on a
 * compute backend: N generated queries x K pairs, the paper-sized predictor
 * rtr trains by default (D = H = U = 768, batch 32, Adam), no validation
 * split, so an epoch is N/32 steps and nothing else. Times each epoch
 * (the log's seconds: from the first batch to the losses and parameters back
 * on the host) and prints the median of --epochs. The target: an
 * epoch over 1M x 24 in under 10 s on an H100.
 *
 * Peer, measured in the same run on the first --peer-queries rows (ratio of
 * queries per second): with a device other than the CPU, the CPU backend
 * (the CPU trainer); on the CPU, the reference backend (plain-C ops, one BLAS
 * call per GEMM: the arithmetic of the CPU trainer before it ran on a
 * backend), which shows what the CPU backend's own choices (GEMMs split over
 * threads) win or lose.
 *
 * usage: bench_train [--device cpu|cuda|auto] [--queries N] [--models M] [--strategies S]
 *                    [--dim D] [--hidden H] [--learn-dim U] [--epochs E] [--peer-queries P] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "rtr/backend.h"
#include "rtr/predictor.h"
#include "common/util.h"

/* Unit rows of random signs and magnitudes (what an L2-normalised encoder gives). */
static void unit_rows(float *x, int64_t rows, int cols) {
    for (int64_t r = 0; r < rows; r++) {
        float *v = x + (size_t)r * cols;
        double s = 0;
        for (int c = 0; c < cols; c++) v[c] = (float)(2 * rnd() - 1), s += (double)v[c] * v[c];
        float inv = (float)(1 / sqrt(s));
        for (int c = 0; c < cols; c++) v[c] *= inv;
    }
}

/* Labels with a per-pair rate, 5% of outcomes missing. */
static void labels(float *correct, float *tokens, int64_t n, int k) {
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            size_t e = (size_t)i * k + j;
            bool missing = rnd() < 0.05;
            correct[e] = missing ? NAN : rnd() < 0.2 + 0.6 * j / k ? 1.0f : 0.0f;
            tokens[e] = missing ? NAN : (float)floor(50 + 40 * j + 200 * rnd());
        }
}

typedef struct {
    double seconds[64];
    int n;
} epoch_times;

static void record(const rtr_epoch_log *e, void *user) {
    epoch_times *t = user;
    if (t->n < 64) t->seconds[t->n++] = e->seconds;
    fprintf(stderr, "  epoch %d: %.3f s (train bce %.4f tok %.4f)\n", e->epoch, e->seconds, e->train_bce,
            e->train_tok);
}

/* Train `epochs` epochs over the first n rows on b; median epoch seconds. */
static rtr_status time_epochs(rtr_backend *b, const rtr_train_params *cfg, const rtr_catalog *cat, int D,
                              const float *dm, const float *ds, const float *emb, const float *correct,
                              const float *tokens, int64_t n, int K, double *median) {
    rtr_predictor p;
    epoch_times t = {.n = 0};
    rtr_status st = rtr_predictor_init(&p, cfg, cat, D, dm, ds);
    rtr_train_data data = {.n = n, .D = D, .K = K, .emb = emb, .correct = correct, .tokens = tokens};
    if (!st) st = rtr_predictor_train_on(b, &p, &data, record, &t);
    rtr_predictor_free(&p);
    if (st) return st;
    qsort(t.seconds, (size_t)t.n, sizeof *t.seconds, cmp_double);
    *median = t.seconds[t.n / 2];
    return RTR_OK;
}

int main(int argc, char **argv) {
    const char *device = "auto";
    long n = 1000000, nm = 6, ns = 4, D = 768, epochs = 3, peer_n = 20000;
    rtr_train_params cfg = rtr_train_default_params();
    long H = cfg.hidden, U = cfg.learn_dim;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *dst = !strcmp(a, "--queries") ? &n : !strcmp(a, "--models") ? &nm : !strcmp(a, "--strategies") ? &ns
                    : !strcmp(a, "--dim") ? &D : !strcmp(a, "--hidden") ? &H : !strcmp(a, "--learn-dim") ? &U
                    : !strcmp(a, "--epochs") ? &epochs : !strcmp(a, "--peer-queries") ? &peer_n : NULL;
        if (v && !strcmp(a, "--device")) device = v, i++;
        else if (v && dst) *dst = atol(v), i++;
        else {
            fprintf(stderr, "usage: bench_train [--device cpu|cuda|auto] [--queries N] [--models M] [--strategies S] "
                            "[--dim D] [--hidden H] [--learn-dim U] [--epochs E] [--peer-queries P]\n");
            return 2;
        }
    }
    if (n < 1 || nm < 1 || ns < 1 || D < 1 || H < 1 || U < 0 || epochs < 1 || epochs > 64) {
        fprintf(stderr, "bench_train: sizes must be positive (epochs at most 64)\n");
        return 2;
    }
    int K = (int)(nm * ns);
    cfg.hidden = (int32_t)H, cfg.learn_dim = (int32_t)U, cfg.max_epochs = (int32_t)epochs, cfg.val_frac = 0;

    /* catalog of nm models x ns strategies */
    size_t cap = 64 + 32 * (size_t)(nm + ns);
    char *json = malloc(cap), *w = json;
    w += sprintf(w, "{\"models\":[");
    for (long i = 0; i < nm; i++) w += sprintf(w, "%s{\"name\":\"m%ld\"}", i ? "," : "", i);
    w += sprintf(w, "],\"strategies\":[");
    for (long i = 0; i < ns; i++) w += sprintf(w, "%s{\"name\":\"s%ld\"}", i ? "," : "", i);
    sprintf(w, "]}");
    rtr_catalog cat;
    if (rtr_catalog_parse_json(&cat, json, "bench") != RTR_OK) {
        fprintf(stderr, "bench_train: %s\n", rtr_last_error());
        return 1;
    }
    free(json);

    /* the device first: without one, fail before generating gigabytes of queries */
    rtr_backend be;
    if (rtr_backend_init(&be, device) != RTR_OK) {
        fprintf(stderr, "bench_train: %s\n", rtr_last_error());
        return 1;
    }

    size_t nD = (size_t)n * D, nK = (size_t)n * K;
    float *emb = malloc(sizeof(float) * nD), *y = malloc(sizeof(float) * 2 * nK);
    float *dm = malloc(sizeof(float) * nm * D), *ds = malloc(sizeof(float) * ns * D);
    if (!emb || !y || !dm || !ds) {
        fprintf(stderr, "bench_train: out of memory for %ld queries\n", n);
        return 1;
    }
    double t0 = rtr_now();
    unit_rows(emb, n, (int)D);
    unit_rows(dm, nm, (int)D);
    unit_rows(ds, ns, (int)D);
    labels(y, y + nK, n, K);
    fprintf(stderr, "generated %ld queries x %d pairs in %.1f s\n", n, K, rtr_now() - t0);

    printf("training epoch: %ld queries x %d pairs, D %ld, H %ld, U %ld, batch %d, Adam; median of %ld epochs\n", n,
           K, D, H, U, cfg.batch, epochs);
    double sec;
    rtr_status st = time_epochs(&be, &cfg, &cat, (int)D, dm, ds, emb, y, y + nK, n, K, &sec);
    if (st) {
        fprintf(stderr, "bench_train: %s: %s\n", be.device, rtr_last_error());
        return 1;
    }
    double qps = (double)n / sec;
    printf("%-40s %10.3f s/epoch  %12.0f queries/s  %14.0f (query, pair)/s\n", be.device, sec, qps, qps * K);
    if (n >= 1000000 && K == 24)
        printf("target (H100): 1M x 24 in < 10 s per epoch: %s\n", sec < 10 ? "met" : "NOT met");

    if (peer_n > 0) {
        rtr_backend peer;
        bool host = rtr_backend_is_host(&be);
        int64_t m = peer_n < n ? peer_n : n;
        double psec;
        cfg.max_epochs = epochs < 2 ? (int32_t)epochs : 2;
        st = host ? rtr_backend_ref_open(&peer) : rtr_backend_cpu_open(&peer);
        if (!st) st = time_epochs(&peer, &cfg, &cat, (int)D, dm, ds, emb, y, y + nK, m, K, &psec);
        if (st) {
            fprintf(stderr, "bench_train: peer: %s\n", rtr_last_error());
            return 1;
        }
        double pqps = (double)m / psec;
        printf("%-40s %10.3f s/epoch  %12.0f queries/s  (peer, %lld queries)\n", peer.device, psec, pqps,
               (long long)m);
        printf("ratio %s / %s: %.2fx queries/s\n", be.device, peer.device, qps / pqps);
        rtr_backend_free(&peer);
    }
    rtr_backend_free(&be);
    rtr_catalog_free(&cat);
    free(emb), free(y), free(dm), free(ds);
    return 0;
}
