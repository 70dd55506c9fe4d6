/* bench_cpu_gemm — the CPU backend's sgemm slot at the encoder's linear-layer
 * shapes (M = 4096 tokens, the CPU batch; MiniLM and mpnet's N x K): fp32
 * through OpenBLAS (rows split over the OpenMP threads) against int8
 * (src/backend/cpu_gemm_packed.c, weights packed once), interleaved A B A B
 * over --rounds rounds, medians with min-max, GFLOP/s, the ratio and the
 * one-time cost of packing each weight matrix. Load average printed.
 *
 *     bench_cpu_gemm [--rounds 7] [--threads 2] [--m 4096] */
#include "rtr/backend.h"
#include "backend/cpu_features.h"
#include "backend/cpu_gemm_packed.h"
#include "bench_util.h"

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

static double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static double time_gemm(rtr_backend *b, int M, int N, int K, const float *A, const float *W, float *C) {
    double t0 = now();
    if (b->iface->sgemm(b->ctx, false, true, M, N, K, 1.0f, A, K, W, K, 0.0f, C, N) != RTR_OK) {
        fprintf(stderr, "sgemm failed: %s\n", rtr_last_error());
        exit(1);
    }
    return now() - t0;
}

int main(int argc, char **argv) {
    int rounds = 7, threads = 2, M = 4096;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--m")) M = atoi(argv[i + 1]);
        else return fprintf(stderr, "usage: bench_cpu_gemm [--rounds R] [--threads T] [--m M]\n"), 2;
    }
    if (rounds < 1 || threads < 1 || M < 1) return fprintf(stderr, "bench_cpu_gemm: bad option value\n"), 2;
    omp_set_num_threads(threads);
    rtr_backend fp, i8;
    if (rtr_backend_cpu_open(&fp) || rtr_backend_cpu_open(&i8)) return fprintf(stderr, "%s\n", rtr_last_error()), 1;
    if (rtr_backend_set_gemm_precision(&i8, CPU_GEMM_I8) != RTR_OK) {
        printf("int8 GEMM unavailable: %s\n", rtr_last_error());
        return 77;
    }
    printf("bench_cpu_gemm: C[M x N] = A[M x K] · W[N x K]^T, M = %d, %d threads, CPU features: %s; "
           "load average %.2f at start\n", M, threads, cpu_features_describe(), loadavg());
    printf("%-16s %5s %5s | %-26s | %-26s | %6s | %s\n", "layer", "N", "K", "OpenBLAS fp32 ms (min-max)",
           "int8 ms median (min-max)", "ratio", "GFLOP/s fp32 / int8, pack ms");
    static const struct {
        const char *name;
        int N, K;
    } shapes[] = {{"MiniLM qkv", 1152, 384}, {"MiniLM out", 384, 384}, {"MiniLM ffn up", 1536, 384},
                  {"MiniLM ffn down", 384, 1536}, {"mpnet qkv", 2304, 768}, {"mpnet out", 768, 768},
                  {"mpnet ffn up", 3072, 768}, {"mpnet ffn down", 768, 3072}};
    double *tf = malloc(sizeof *tf * rounds), *ti = malloc(sizeof *ti * rounds);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int N = shapes[s].N, K = shapes[s].K;
        float *A = malloc(sizeof *A * (size_t)M * K), *W = malloc(sizeof *W * (size_t)N * K);
        float *C = malloc(sizeof *C * (size_t)M * N);
        for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)(2 * rnd() - 1);
        for (size_t i = 0; i < (size_t)N * K; i++) W[i] = (float)(0.1 * (2 * rnd() - 1));
        double pack = time_gemm(&i8, 1, N, K, A, W, C); /* first use packs W (M = 1: the pack dominates) */
        time_gemm(&fp, M, N, K, A, W, C);
        for (int r = 0; r < rounds; r++) {
            tf[r] = time_gemm(&fp, M, N, K, A, W, C);
            ti[r] = time_gemm(&i8, M, N, K, A, W, C);
        }
        qsort(tf, rounds, sizeof *tf, cmp_double);
        qsort(ti, rounds, sizeof *ti, cmp_double);
        double flop = 2.0 * M * N * K, mf = tf[rounds / 2], mi = ti[rounds / 2];
        printf("%-16s %5d %5d | %7.1f (%7.1f-%7.1f)    | %7.1f (%7.1f-%7.1f)    | %5.2fx | %5.0f / %5.0f, %.0f\n",
               shapes[s].name, N, K, mf * 1e3, tf[0] * 1e3, tf[rounds - 1] * 1e3, mi * 1e3, ti[0] * 1e3,
               ti[rounds - 1] * 1e3, mf / mi, flop / mf / 1e9, flop / mi / 1e9, pack * 1e3);
        free(A), free(W), free(C);
    }
    printf("load average %.2f at the end; ratio = fp32 median / int8 median (above 1: int8 faster)\n", loadavg());
    free(tf), free(ti);
    rtr_backend_free(&fp), rtr_backend_free(&i8);
    return 0;
}
