/* bench_knn — the kNN baselines' search (src/eval/knn.c) on --n reference
 * rows and --queries held-out query rows of dimension --d: exact search
 * against the inverted-file index, in the same run, with recall@k of the
 * index measured against the exact answer on every query, build and search
 * seconds, the speed-up, and the index's own calibration figure.
 *
 * Data: unit vectors in clusters of clusters, like sentence embeddings
 * (--clusters centres grouped around --clusters/40 topics, cosine about 0.9
 * to their topic; a row's cosine to its centre is about 0.7, so a row's
 * nearest neighbours spread over several clusters), drawn from a fixed
 * seed. Queries come from the same distribution but are not reference rows.
 *
 *     bench_knn [--n 100000] [--queries 10000] [--d 384] [--k 10] [--clusters 2000]
 *               [--threads 2] [--exact-queries Q]
 *
 * --exact-queries times exact search on only the first Q queries (recall is
 * then measured on those) and scales its time to all queries: at 1M rows
 * exact search of every query would take hours, which is the point. */
#include "eval/knn.h"
#include "bench_util.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double nrand(void) { return sqrt(-2 * log(rnd() + 1e-300)) * cos(6.283185307179586 * rnd()); }

static void unit(float *x, int d) {
    double s = 0;
    for (int t = 0; t < d; t++) s += (double)x[t] * x[t];
    for (int t = 0; t < d; t++) x[t] = (float)(x[t] / sqrt(s));
}

/* row = normalise(centre + sigma · g / sqrt(d)) */
static void around(float *row, const float *centre, double sigma, int d) {
    for (int t = 0; t < d; t++) row[t] = (float)(centre[t] + sigma * nrand() / sqrt(d));
    unit(row, d);
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

int main(int argc, char **argv) {
    long n = 100000, nq = 10000, d = 384, k = 10, clusters = 2000, threads = 2, exact_q = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        long v = atol(argv[i + 1]);
        if (!strcmp(argv[i], "--n")) n = v;
        else if (!strcmp(argv[i], "--queries")) nq = v;
        else if (!strcmp(argv[i], "--d")) d = v;
        else if (!strcmp(argv[i], "--k")) k = v;
        else if (!strcmp(argv[i], "--clusters")) clusters = v;
        else if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--exact-queries")) exact_q = v;
        else return fprintf(stderr, "bench_knn: unknown option %s\n", argv[i]), 2;
    }
    if (n < 1 || nq < 1 || d < 1 || k < 1 || k > n || clusters < 40 || threads < 1)
        return fprintf(stderr, "bench_knn: bad option value\n"), 2;
    if (exact_q <= 0 || exact_q > nq) exact_q = nq;
    omp_set_num_threads((int)threads);
    long topics = clusters / 40;
    float *topic = malloc(sizeof *topic * topics * d), *centre = malloc(sizeof *centre * clusters * d);
    float *ref = malloc(sizeof *ref * n * d), *q = malloc(sizeof *q * nq * d);
    for (long i = 0; i < topics * d; i++) topic[i] = (float)nrand();
    for (long t = 0; t < topics; t++) unit(topic + t * d, (int)d);
    for (long c = 0; c < clusters; c++) around(centre + c * d, topic + (c % topics) * d, 0.5, (int)d);
    for (long i = 0; i < n; i++) around(ref + i * d, centre + (long)(rnd() * clusters) * d, 1.0, (int)d);
    for (long i = 0; i < nq; i++) around(q + i * d, centre + (long)(rnd() * clusters) * d, 1.0, (int)d);

    printf("bench_knn: %ld reference rows, %ld queries, d = %ld, k = %ld, %ld clusters in %ld topics, %d threads; "
           "load average %.2f at start\n", n, nq, d, k, clusters, topics, (int)threads, loadavg());
    knn_params ep = knn_default_params(), ip = knn_default_params();
    ep.exact_max = n;     /* exact, whatever n */
    ip.exact_max = 0;     /* an index, whatever n */
    ip.k = (int32_t)k;
    int64_t *ei = malloc(sizeof *ei * exact_q * k), *ii = malloc(sizeof *ii * nq * k);
    float *es = malloc(sizeof *es * exact_q * k), *is = malloc(sizeof *is * nq * k);
    knn_index *ex = NULL, *ix = NULL;
    double t0 = now();
    if (knn_index_build(&ex, ref, n, (int32_t)d, &ep)) return fprintf(stderr, "%s\n", rtr_last_error()), 1;
    double t_exact_build = now() - t0;
    t0 = now();
    if (knn_index_search(ex, ei, es, q, exact_q, (int32_t)k)) return fprintf(stderr, "%s\n", rtr_last_error()), 1;
    double t_exact = (now() - t0) * ((double)nq / exact_q);
    t0 = now();
    if (knn_index_build(&ix, ref, n, (int32_t)d, &ip)) return fprintf(stderr, "%s\n", rtr_last_error()), 1;
    double t_build = now() - t0;
    t0 = now();
    if (knn_index_search(ix, ii, is, q, nq, (int32_t)k)) return fprintf(stderr, "%s\n", rtr_last_error()), 1;
    double t_search = now() - t0;
    /* recall@k: a returned row counts when it is at least as similar as the
     * exact k-th, to float rounding (ties are equally good answers) */
    double hits = 0;
    for (long i = 0; i < exact_q; i++) {
        float kth = es[i * k + k - 1];
        for (long j = 0; j < k; j++) hits += ii[i * k + j] >= 0 && is[i * k + j] >= kth - 1e-5f;
    }
    double recall = hits / ((double)exact_q * k);
    printf("exact search: %.2f s to normalise, %.2f s for %ld queries%s\n", t_exact_build, t_exact, nq,
           exact_q < nq ? " (scaled from the timed share)" : "");
    printf("IVF index: %d lists, nprobe %d (calibrated: recall@%ld %.4f on reference rows); build %.2f s, search "
           "%.2f s\n", knn_index_lists(ix), knn_index_nprobe(ix), k, knn_index_recall(ix), t_build, t_search);
    printf("recall@%ld of the index on %ld held-out queries: %.4f; search speed-up over exact %.1fx "
           "(%.1fx with the build)\n", k, exact_q, recall, t_exact / t_search, (t_exact_build + t_exact) / (t_build + t_search));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* both searches' rows and the index are held at once here; eval holds one */
    printf("load average %.2f at the end; peak RSS %.0f MiB (the data %.0f MiB)\n", loadavg(), ru.ru_maxrss / 1024.0,
           (double)(n + nq) * d * sizeof(float) / (1 << 20));
    knn_index_free(ex), knn_index_free(ix);
    free(topic), free(centre), free(ref), free(q), free(ei), free(ii), free(es), free(is);
    return recall >= 0.95 ? 0 : 1;
}
