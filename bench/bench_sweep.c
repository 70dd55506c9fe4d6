/* Benchmark of the exact λ path (lambda_path.c) on generated routing tables,
 * by default 1M queries x 24 pairs with ground truth (the target:
 * under 10 s on the 2-core development machine). Peer, measured in the same
 * run on the same tables: a NumPy sweep over a λ grid
 * (bench_sweep_numpy.py), whose points are also checked against the exact
 * path. Prints the machine, both times and their ratio.
 *
 * usage: bench_sweep [N] [K] [GRID]   (GRID 0 skips the NumPy peer) */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtr/route.h"

#ifndef RTR_SOURCE_DIR
#define RTR_SOURCE_DIR "."
#endif

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double rnd(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* Pairs with a quality/price structure like real catalogs: pair j has a base
 * accuracy and token cost growing with j, plus per-query noise. */
static void generate(float *t, int64_t n, int32_t k) {
    size_t nk = (size_t)n * (size_t)k;
    float *p = t, *c = t + nk, *cost = t + 2 * nk, *tc = t + 3 * nk, *tk = t + 4 * nk;
    for (int64_t i = 0; i < n; i++) {
        double hard = rnd();
        for (int32_t j = 0; j < k; j++) {
            size_t at = (size_t)i * (size_t)k + (size_t)j;
            double q = (double)j / k, acc = fmin(0.98, fmax(0.02, 0.3 + 0.6 * q - 0.4 * hard + 0.2 * rnd()));
            double tok = 200 + 3000 * q * q * (0.5 + rnd()) + 400 * hard;
            p[at] = (float)acc;
            cost[at] = (float)tok;
            bool miss = rnd() < 0.02;
            tc[at] = miss ? NAN : (float)(rnd() < acc);
            tk[at] = miss ? NAN : (float)(tok * (0.8 + 0.4 * rnd()));
        }
    }
    double scale;
    if (rtr_route_cost_scale(cost, n, k, &scale) != RTR_OK) scale = 1;
    for (size_t i = 0; i < nk; i++) c[i] = (float)(cost[i] / scale);
}

static void print_machine(void) {
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *v = strchr(line, ':');
            if (v) snprintf(model, sizeof model, "%s", v + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (f) fclose(f);
    printf("machine: %s, %ld CPUs online, %d OpenMP threads\n", model, sysconf(_SC_NPROCESSORS_ONLN), omp_get_max_threads());
}

/* Run the NumPy peer; returns its seconds (NaN on failure) and checks its
 * grid points against the path (max abs difference of each column). */
static double run_numpy(const float *t, int64_t n, int32_t k, int grid, const rtr_path *path) {
    char file[] = "/tmp/bench_sweep_XXXXXX";
    int fd = mkstemp(file);
    if (fd < 0) return NAN;
    FILE *f = fdopen(fd, "wb");
    size_t total = 5 * (size_t)n * (size_t)k;
    bool ok = f && fwrite(t, sizeof *t, total, f) == total;
    if (f) fclose(f);
    double secs = NAN, dmax[4] = {0};
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "python3 %s/bench/bench_sweep_numpy.py %s %lld %d %d", RTR_SOURCE_DIR, file,
             (long long)n, (int)k, grid);
    FILE *py = ok ? popen(cmd, "r") : NULL;
    int rows = 0;
    while (py && fgets(line, sizeof line, py)) {
        double v[5];
        if (!strncmp(line, "seconds", 7)) { secs = strtod(line + 8, NULL); printf("peer: %s", line); continue; }
        if (sscanf(line, "%lf %lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3], &v[4]) != 5) continue;
        int64_t j = rtr_path_at(path, v[0]);
        const double got[4] = {path->pred_acc[j], path->pred_cost[j], path->real_acc[j], path->real_cost[j]};
        for (int c = 0; c < 4; c++) dmax[c] = fmax(dmax[c], fabs(got[c] - v[c + 1]) / fmax(1.0, fabs(v[c + 1])));
        rows++;
    }
    if (py && pclose(py) != 0) secs = NAN;
    unlink(file);
    printf("check: %d grid points vs exact path, max rel diff pred_acc %.2g pred_cost %.2g real_acc %.2g real_cost %.2g\n",
           rows, dmax[0], dmax[1], dmax[2], dmax[3]);
    return secs;
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : 1000000;
    int32_t k = argc > 2 ? atoi(argv[2]) : 24;
    int grid = argc > 3 ? atoi(argv[3]) : 1000;
    if (n <= 0 || k <= 0 || grid < 0) { fprintf(stderr, "usage: bench_sweep [N] [K] [GRID]\n"); return 2; }
    size_t nk = (size_t)n * (size_t)k;
    float *t = malloc(5 * nk * sizeof *t);
    if (!t) { fprintf(stderr, "bench_sweep: out of memory\n"); return 1; }
    generate(t, n, k);
    print_machine();

    rtr_route_table tab = {n, k, t, t + nk, t + 2 * nk, t + 3 * nk, t + 4 * nk};
    rtr_path path;
    double best = INFINITY;
    for (int rep = 0; rep < 3; rep++) { /* best of 3: the machine is shared */
        double t0 = omp_get_wtime();
        if (rtr_path_compute(&path, &tab) != RTR_OK) { fprintf(stderr, "bench_sweep: %s\n", rtr_last_error()); return 1; }
        best = fmin(best, omp_get_wtime() - t0);
        if (rep < 2) rtr_path_free(&path);
    }
    printf("exact path: %lld queries x %d pairs, %lld switch events, %lld points, %.3f s (best of 3; target < 10 s)\n",
           (long long)n, (int)k, (long long)path.n_switches, (long long)path.n_points, best);
    if (grid > 0) {
        double peer = run_numpy(t, n, k, grid, &path);
        if (isnan(peer)) printf("peer: NumPy grid sweep failed (python3 with numpy needed)\n");
        else printf("ratio: NumPy %d-point grid %.3f s / exact path %.3f s = %.1fx\n", grid, peer, best, peer / best);
    }
    rtr_path_free(&path);
    free(t);
    return best < 10 ? 0 : 1;
}
