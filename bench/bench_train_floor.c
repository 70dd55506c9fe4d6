/* bench_train_floor — the arithmetic floor of one training epoch on this CPU
 * (what src/predictor/train.c must compute, at the best rate this machine
 * gives each kind of work), to hold `bench_train --device cpu` against.
 *
 * An epoch over N queries x K pairs (K = models x strategies) with the
 * paper's predictor (D = H = U = 768, two heads, batches of B = 32 queries,
 * Adam after every batch) needs, per batch:
 *   GEMMs: A = E·W_qᵀ and dW_q = dAᵀ·E for each head (4 · B·H·D
 *     multiply-adds), the pair tables P = R·Wᵀ for models and strategies and
 *     their weight gradients (each head: 2 · (nm + ns)·H·(D + U)), du
 *     (2 heads · (nm + ns)·H·U);
 *   per-pair terms: heads forward, loss, backward over B·K pairs x H;
 *   Adam over every parameter (2 heads · H·(D + 2(D + U)) + (nm + ns)·U):
 *     7 floats moved per parameter per batch.
 * Each part is timed here at its best: the GEMM multiply-adds at the rate
 * of one large GEMM split over the threads (M = 4096, 768 x 768), the
 * per-pair ops on a batch (plain C references, scaled by the threads), Adam
 * as the faster of a parallel streaming loop over all parameters and the
 * trainer's own one-thread op.
 * The floor is their sum over N/B batches; the per-batch parts show which
 * one bounds an epoch.
 *
 *     bench_train_floor [--queries 800000] [--models 4] [--strategies 4] [--threads 2] */
#include "rtr/backend.h"
#include "rtr/ops.h"
#include "bench_util.h"

#include <math.h>
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

static float *rnd_vec(size_t n) {
    float *x = malloc(sizeof *x * n);
    for (size_t i = 0; i < n; i++) x[i] = (float)(2 * rnd() - 1);
    return x;
}

/* Adam's arithmetic and memory traffic, parallel over the threads. */
static void adam_stream(float *p, const float *g, float *m, float *v, size_t n, int64_t step) {
    const float b1 = 0.9f, b2 = 0.999f, lr = 1e-3f, c1 = 1 - powf(b1, (float)step), c2 = 1 - powf(b2, (float)step);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + 1e-8f);
    }
}

/* median seconds of `reps` runs of the statement(s) */
#define MEDIAN_OF(reps, out, ...)                                   \
    do {                                                            \
        double t_[64];                                              \
        for (int r_ = 0; r_ < (reps); r_++) {                       \
            double t0_ = now();                                     \
            __VA_ARGS__;                                            \
            t_[r_] = now() - t0_;                                   \
        }                                                           \
        qsort(t_, (reps), sizeof *t_, cmp_double);                  \
        out = t_[(reps) / 2];                                       \
    } while (0)

int main(int argc, char **argv) {
    long N = 800000, nm = 4, ns = 4, threads = 2;
    const long D = 768, H = 768, U = 768, B = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        long v = atol(argv[i + 1]);
        if (!strcmp(argv[i], "--queries")) N = v;
        else if (!strcmp(argv[i], "--models")) nm = v;
        else if (!strcmp(argv[i], "--strategies")) ns = v;
        else if (!strcmp(argv[i], "--threads")) threads = v;
        else return fprintf(stderr, "usage: bench_train_floor [--queries N] [--models M] [--strategies S] [--threads T]\n"), 2;
    }
    if (N < B || nm < 1 || ns < 1 || threads < 1) return fprintf(stderr, "bench_train_floor: bad option value\n"), 2;
    omp_set_num_threads((int)threads);
    long K = nm * ns, batches = N / B, R = nm + ns;
    double l0[3];
    if (getloadavg(l0, 3) < 1) l0[0] = -1;

    /* GEMM rate: one large split GEMM, the best this backend does */
    rtr_backend cpu;
    if (rtr_backend_cpu_open(&cpu)) return fprintf(stderr, "%s\n", rtr_last_error()), 1;
    long M = 4096;
    float *A = rnd_vec((size_t)M * D), *W = rnd_vec((size_t)H * D), *C = rnd_vec((size_t)M * H);
    double t_gemm;
    cpu.iface->sgemm(cpu.ctx, false, true, (int)M, (int)H, (int)D, 1.0f, A, (int)D, W, (int)D, 0.0f, C, (int)H);
    MEDIAN_OF(5, t_gemm,
              cpu.iface->sgemm(cpu.ctx, false, true, (int)M, (int)H, (int)D, 1.0f, A, (int)D, W, (int)D, 0.0f, C,
                               (int)H));
    double rate = 2.0 * M * H * D / t_gemm; /* FLOP/s */
    double gemm_flop = 2.0 * (4.0 * B * H * D + 2 * 2.0 * R * H * (D + U) + 2.0 * R * H * U);
    double t_gemm_batch = gemm_flop / rate;

    /* per-pair terms on one batch (references, one thread), shared out over the threads */
    float *Ac = rnd_vec((size_t)B * H), *At = rnd_vec((size_t)B * H), *Cc = rnd_vec((size_t)K * H),
          *Ct = rnd_vec((size_t)K * H), *w2c = rnd_vec(H), *w2t = rnd_vec(H), b2[2] = {0.1f, 0.2f};
    float *oc = rnd_vec((size_t)B * K), *ot = rnd_vec((size_t)B * K), *yc = rnd_vec((size_t)B * K),
          *yt = rnd_vec((size_t)B * K), *dc = rnd_vec((size_t)B * K), *dt = rnd_vec((size_t)B * K);
    float *dAc = rnd_vec((size_t)B * H), *dAt = rnd_vec((size_t)B * H), *dCc = rnd_vec((size_t)K * H),
          *dCt = rnd_vec((size_t)K * H), *dw2c = rnd_vec(H), *dw2t = rnd_vec(H), db2[2];
    for (long i = 0; i < B * K; i++) yc[i] = yc[i] > 0, yt[i] = fabsf(yt[i]);
    double loss[2] = {0, 0}, t_pairs;
    MEDIAN_OF(9, t_pairs, {
        rtr_heads_forward(oc, ot, Ac, At, Cc, Ct, w2c, b2, w2t, b2 + 1, (int)B, (int)K, (int)H);
        rtr_heads_loss(dc, dt, loss, oc, ot, yc, yt, 1.0f / (B * K), 1.0f / (B * K), (int)B, (int)K);
        rtr_heads_backward(dAc, dAt, dCc, dCt, dw2c, db2, dw2t, db2 + 1, dc, dt, Ac, At, Cc, Ct, w2c, w2t, (int)B,
                           (int)K, (int)H);
    });
    double t_pairs_batch = t_pairs / threads;

    /* Adam over every parameter: the trainer's op, and a parallel streaming loop (the floor) */
    size_t P = (size_t)(2 * (H * (D + 2 * (D + U)) + 2 * H + 1) + R * U);
    float *p = rnd_vec(P), *g = rnd_vec(P), *m = calloc(P, sizeof *m), *v = calloc(P, sizeof *v);
    double t_adam_op, t_adam;
    int64_t step = 1;
    MEDIAN_OF(9, t_adam_op, rtr_adam_update(p, g, m, v, P, 1e-3, step++));
    MEDIAN_OF(9, t_adam, adam_stream(p, g, m, v, P, step++));

    /* the floor takes the faster Adam: on a loaded machine the parallel loop
     * can lose to the one-thread op */
    if (t_adam_op < t_adam) t_adam = t_adam_op;
    double floor_batch = t_gemm_batch + t_pairs_batch + t_adam;
    double l1[3];
    if (getloadavg(l1, 3) < 1) l1[0] = -1;
    printf("bench_train_floor: %ld queries x %ld pairs (%ld models x %ld strategies), D = H = U = %ld, batch %ld "
           "(%ld batches), %ld threads; load average %.2f at start, %.2f at the end\n", N, K, nm, ns, D, B, batches,
           threads, l0[0], l1[0]);
    printf("GEMM rate: %.0f GFLOP/s (%ld x %ld x %ld, rows split over the threads)\n", rate / 1e9, M, H, D);
    printf("per batch: GEMMs %.1f MFLOP -> %.3f ms at that rate; per-pair ops %.3f ms (%.3f ms on one thread); "
           "Adam over %zu parameters %.3f ms streaming on %ld threads (%.3f ms as rtr_adam_update, one thread; "
           "%.1f GB/s moved)\n", gemm_flop / 1e6, t_gemm_batch * 1e3, t_pairs_batch * 1e3, t_pairs * 1e3, P,
           t_adam * 1e3, threads, t_adam_op * 1e3, 7.0 * 4 * P / t_adam / 1e9);
    printf("floor of one epoch: %.1f s = GEMMs %.1f s + per-pair %.1f s + Adam %.1f s "
           "(Adam's share %.0f%%: at batch %ld the optimizer, not the arithmetic, bounds an epoch)\n",
           floor_batch * batches, t_gemm_batch * batches, t_pairs_batch * batches, t_adam * batches,
           100 * t_adam / floor_batch, B);
    printf("resident per training row: %.0f bytes (embedding %ld floats + 2 x %ld labels)\n",
           4.0 * (D + 2 * K), D, K);
    rtr_backend_free(&cpu);
    free(A), free(W), free(C), free(Ac), free(At), free(Cc), free(Ct), free(w2c), free(w2t), free(oc), free(ot);
    free(yc), free(yt), free(dc), free(dt), free(dAc), free(dAt), free(dCc), free(dCt), free(dw2c), free(dw2t);
    free(p), free(g), free(m), free(v);
    return 0;
}
