/* Benchmark of the exact λ path (lambda_path.c) on generated routing tables,
 * by default 1M queries x 24 pairs with ground truth (the targets:
 * under 10 s on the 2-core development machine, under 1 s with an H100).
 * Times rtr_path_compute_on on the chosen backend (--device, default cpu),
 * median of 3. Peers, measured in the same run on the same tables: with a
 * device other than the CPU, the CPU backend (ratio, and the two paths must
 * be identical point for point); and a NumPy sweep over a λ grid
 * (bench_sweep_numpy.py), whose points are also checked against the path.
 *
 * usage: bench_sweep [--device cpu|cuda|auto] [N] [K] [GRID]   (GRID 0 skips NumPy) */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "rtr/backend.h"
#include "rtr/route.h"

#ifndef RTR_SOURCE_DIR
#define RTR_SOURCE_DIR "."
#endif

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
    if (rtr_route_cost_scale(&scale, cost, n, k) != RTR_OK) scale = 1;
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

/* The path on backend b, 3 runs; *secs receives the median. The last run's
 * path is kept in *path. */
static bool time_path(rtr_backend *b, const rtr_route_table *tab, rtr_path *path, double *secs) {
    double t[3];
    for (int rep = 0; rep < 3; rep++) {
        if (rep) rtr_path_free(path);
        double t0 = omp_get_wtime();
        if (rtr_path_compute_on(b, path, tab, 0) != RTR_OK) {
            fprintf(stderr, "bench_sweep: %s: %s\n", b->device, rtr_last_error());
            return false;
        }
        t[rep] = omp_get_wtime() - t0;
    }
    qsort(t, 3, sizeof *t, cmp_double);
    *secs = t[1];
    printf("exact path on %s: %lld queries x %d pairs, %lld switch events, %lld points, median %.3f s of 3 (%.3f .. %.3f)\n",
           b->device, (long long)tab->n, (int)tab->k, (long long)path->n_switches, (long long)path->n_points, t[1],
           t[0], t[2]);
    return true;
}

/* Whether two paths have the same points, bit for bit. */
static bool paths_identical(const rtr_path *a, const rtr_path *b) {
    size_t np = (size_t)a->n_points, d = np * sizeof(double);
    if (a->n_points != b->n_points || a->n_switches != b->n_switches || !a->real_acc != !b->real_acc) return false;
    bool same = !memcmp(a->lambda, b->lambda, d) && !memcmp(a->pred_acc, b->pred_acc, d) &&
                !memcmp(a->pred_cost, b->pred_cost, d);
    if (a->real_acc)
        same = same && !memcmp(a->real_acc, b->real_acc, d) && !memcmp(a->real_cost, b->real_cost, d) &&
               !memcmp(a->n_missing, b->n_missing, np * sizeof(int64_t));
    return same;
}

int main(int argc, char **argv) {
    const char *device = "cpu";
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--device") && a + 1 < argc) device = argv[++a];
        else if (npos < 3 && argv[a][0] != '-') pos[npos++] = argv[a];
        else { fprintf(stderr, "usage: bench_sweep [--device cpu|cuda|auto] [N] [K] [GRID]\n"); return 2; }
    }
    int64_t n = pos[0] ? atoll(pos[0]) : 1000000;
    int32_t k = pos[1] ? atoi(pos[1]) : 24;
    int grid = pos[2] ? atoi(pos[2]) : 1000;
    if (n <= 0 || k <= 0 || grid < 0) { fprintf(stderr, "usage: bench_sweep [--device cpu|cuda|auto] [N] [K] [GRID]\n"); return 2; }
    rtr_backend dev;
    if (rtr_backend_init(&dev, device) != RTR_OK) { fprintf(stderr, "bench_sweep: %s\n", rtr_last_error()); return 1; }
    size_t nk = (size_t)n * (size_t)k;
    float *t = malloc(5 * nk * sizeof *t);
    if (!t) { fprintf(stderr, "bench_sweep: out of memory\n"); return 1; }
    generate(t, n, k);
    print_machine();

    rtr_route_table tab = {n, k, t, t + nk, t + 2 * nk, t + 3 * nk, t + 4 * nk};
    rtr_path path, cpu_path;
    double secs, cpu_secs;
    int rc = 0;
    if (!time_path(&dev, &tab, &path, &secs)) return 1;
    printf("target: < 10 s on the 2-core development machine's CPU, < 1 s with an H100: %s\n",
           secs < (rtr_backend_is_host(&dev) ? 10.0 : 1.0) ? "met" : "NOT met");
    if (!rtr_backend_is_host(&dev)) { /* the CPU as the peer, same run, same tables */
        rtr_backend cpu;
        rtr_backend_cpu_open(&cpu);
        if (!time_path(&cpu, &tab, &cpu_path, &cpu_secs)) return 1;
        bool same = paths_identical(&path, &cpu_path);
        printf("ratio: CPU %.3f s / %s %.3f s = %.2fx; paths %s\n", cpu_secs, dev.device, secs, cpu_secs / secs,
               same ? "identical point for point" : "DIFFER");
        if (!same) rc = 1;
        rtr_path_free(&cpu_path);
        rtr_backend_free(&cpu);
    }
    if (grid > 0) {
        double peer = run_numpy(t, n, k, grid, &path);
        if (isnan(peer)) printf("peer: NumPy grid sweep failed (python3 with numpy needed)\n");
        else printf("ratio: NumPy %d-point grid %.3f s / exact path %.3f s = %.1fx\n", grid, peer, secs, peer / secs);
    }
    rtr_path_free(&path);
    rtr_backend_free(&dev);
    free(t);
    return rc;
}
