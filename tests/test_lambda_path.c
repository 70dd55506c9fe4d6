/* Tests of routing (route.c), the exact λ path (lambda_path.c) and the
 * metrics and reference routers (metrics.c): envelopes against a dense λ grid,
 * the merged path against brute-force routing at every segment, the path and
 * decisions streamed through the CPU backend in chunks (identical for every
 * chunk size and thread count), budget search, hand-computed AIQ/APGR/CPT,
 * and kNN against pairwise loops. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus_fixture.h"
#include "eval/evaluate.h"
#include "route/route_data.h"
#include "rtr/metrics.h"
#include "rtr/route.h"
#include "test.h"
#include "common/util.h"

static uint64_t rng_state = 42;
static double rnd(void) { /* xorshift64*, uniform in [0,1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* Random table; with quantised values (steps of 1/4) many lines tie or
 * coincide. Truth, when asked, is 0/1 with ~10% missing. */
static void fill_table(float *p, float *c, float *tc, float *tk, int64_t n, int32_t k, bool quantised) {
    for (int64_t i = 0; i < n * k; i++) {
        p[i] = quantised ? (float)(floor(rnd() * 5) / 4) : (float)rnd();
        c[i] = quantised ? (float)(floor(rnd() * 5) / 4) : (float)(rnd() * 1.5);
        if (!tc) continue;
        bool miss = rnd() < 0.1;
        tc[i] = miss ? NAN : (float)(rnd() < p[i]);
        tk[i] = miss ? NAN : (float)(c[i] * 1000 + rnd() * 10);
    }
}

static double score(const float *p, const float *c, int32_t j, double lambda) {
    return lambda * ((double)p[j] + c[j]) - c[j];
}

static int32_t piece_at(const int32_t *pair, const double *start, int32_t m, double lambda) {
    int32_t t = 0;
    while (t + 1 < m && start[t + 1] < lambda) t++;
    return pair[t];
}

static void check_envelopes(int32_t k, bool quantised) {
    enum { N = 300, GRID = 2000 };
    float *p = malloc(sizeof *p * N * k), *c = malloc(sizeof *c * N * k);
    int32_t *pair = malloc(sizeof *pair * k), choice;
    double *start = malloc(sizeof *start * k);
    rtr_line *l = malloc(sizeof *l * k);
    fill_table(p, c, NULL, NULL, N, k, quantised);
    for (int64_t i = 0; i < N; i++) {
        const float *pi = p + i * k, *ci = c + i * k;
        int32_t m = rtr_envelope(pair, start, l, pi, ci, k);
        CHECK(m >= 1 && m <= k);
        CHECK(start[0] == 0);
        for (int32_t t = 1; t < m; t++) {
            CHECK(start[t] > start[t - 1] && start[t] < 1);
            CHECK(ci[pair[t]] > ci[pair[t - 1]] && pi[pair[t]] > pi[pair[t - 1]]);
        }
        /* The envelope's pair is the best at every grid λ (ties within
         * rounding), and exactly rtr_route_argmax's at 0, 1 and piece midpoints. */
        for (int g = 0; g <= GRID; g++) {
            double lam = (double)g / GRID, best = -INFINITY;
            for (int32_t j = 0; j < k; j++) best = fmax(best, score(pi, ci, j, lam));
            CHECK_CLOSE(score(pi, ci, piece_at(pair, start, m, lam), lam), best, 1e-12, 0);
        }
        for (int32_t t = 0; t <= m; t++) {
            double lam = t == m ? 1.0 : t == 0 ? 0.0 : 0.5 * (start[t - 1] + start[t]);
            rtr_route_argmax(&choice, pi, ci, lam, 1, k);
            CHECK_MSG(choice == piece_at(pair, start, m, lam), "k=%d query %lld λ=%g", (int)k, (long long)i, lam);
        }
    }
    free(p); free(c); free(pair); free(start); free(l);
}

static void test_envelope_brute_force(void) {
    static const int32_t ks[] = {1, 2, 3, 5, 7, 24, 40};
    for (size_t t = 0; t < sizeof ks / sizeof *ks; t++) {
        check_envelopes(ks[t], false);
        check_envelopes(ks[t], true);
    }
}

static void test_envelope_nan_and_ties(void) {
    const float p[4] = {0.5f, NAN, 0.5f, 0.9f}, c[4] = {0.2f, 0.1f, 0.2f, 0.6f};
    int32_t pair[4];
    double start[4];
    rtr_line l[4];
    int32_t m = rtr_envelope(pair, start, l, p, c, 4);
    /* pairs 0 and 2 coincide: the lower index; pair 1 is excluded (NaN);
     * pair 3 overtakes where λ·0.7 − 0.2 = λ·1.5 − 0.6, λ = 0.5. */
    CHECK(m == 2 && pair[0] == 0 && pair[1] == 3);
    CHECK_CLOSE(start[1], 0.5, 1e-6, 0);
    const float none_p[2] = {NAN, NAN};
    CHECK(rtr_envelope(pair, start, l, none_p, c, 2) == 0);
    int32_t ch[1];
    rtr_route_argmax(ch, none_p, c, 0.5, 1, 2);
    CHECK(ch[0] == -1);
    /* equal cost at λ = 0: the more accurate wins, as it does just above 0 */
    const float p2[2] = {0.3f, 0.6f}, c2[2] = {0.4f, 0.4f};
    rtr_route_argmax(ch, p2, c2, 0.0, 1, 2);
    CHECK(ch[0] == 1);
}

/* Brute force at one λ: predicted means and the realised operating point. */
static void brute_at(const rtr_route_table *t, double lam, int32_t *choice, double *pa, double *pc,
                     rtr_op_point *real) {
    rtr_route_argmax(choice, t->p, t->c, lam, t->n, t->k);
    double sa = 0, sc = 0;
    for (int64_t i = 0; i < t->n; i++) { sa += t->p[i * t->k + choice[i]]; sc += t->cost[i * t->k + choice[i]]; }
    *pa = sa / t->n;
    *pc = sc / t->n;
    *real = rtr_eval_choice(choice, t->true_correct, t->true_cost, t->n, t->k);
}

/* A filled n x k routing table with outcomes and a USD-like cost (c x 1000),
 * owned by the test (table_free). */
static rtr_route_table table_new(int64_t n, int32_t k, bool quantised) {
    size_t nk = (size_t)(n * k);
    float *p = malloc(sizeof *p * nk), *c = malloc(sizeof *c * nk), *cost = malloc(sizeof *cost * nk);
    float *tc = malloc(sizeof *tc * nk), *tk = malloc(sizeof *tk * nk);
    fill_table(p, c, tc, tk, n, k, quantised);
    for (size_t i = 0; i < nk; i++) cost[i] = c[i] * 1000;
    return (rtr_route_table){n, k, p, c, cost, tc, tk};
}

static void table_free(rtr_route_table *t) {
    free((void *)t->p), free((void *)t->c), free((void *)t->cost), free((void *)t->true_correct),
        free((void *)t->true_cost);
}

static void check_path(int64_t n, int32_t k, bool quantised) {
    rtr_route_table t = table_new(n, k, quantised);
    const float *p = t.p, *c = t.c;
    int32_t *choice = malloc(sizeof *choice * n), *env_choice = malloc(sizeof *env_choice * n);
    rtr_path path;
    CHECK(rtr_path_compute(&path, &t) == RTR_OK);
    CHECK(path.n_points >= 1 && path.lambda[path.n_points - 1] == 1.0);
    CHECK(path.n_points <= path.n_switches + 1);
    for (int64_t j = 0; j < path.n_points; j++) {
        double lo = j ? path.lambda[j - 1] : 0.0, pa, pc;
        rtr_op_point real;
        CHECK(path.lambda[j] > lo || (j == 0 && path.lambda[0] >= 0));
        brute_at(&t, 0.5 * (lo + path.lambda[j]), choice, &pa, &pc, &real);
        CHECK_CLOSE(path.pred_acc[j], pa, 1e-9, 1e-9);
        CHECK_CLOSE(path.pred_cost[j], pc, 1e-9, 1e-9);
        CHECK(path.n_missing[j] == real.n_missing);
        if (real.n_missing < n) {
            CHECK_CLOSE(path.real_acc[j], real.acc, 1e-9, 1e-9);
            CHECK_CLOSE(path.real_cost[j], real.cost, 1e-9, 1e-9);
        }
        /* the interval's right end routes like its inside */
        CHECK(rtr_envelope_choose(env_choice, p, c, path.lambda[j], n, k) == RTR_OK);
        CHECK(memcmp(env_choice, choice, sizeof *choice * n) == 0);
        if (j) CHECK(path.pred_cost[j] >= path.pred_cost[j - 1] - 1e-9 && path.pred_acc[j] >= path.pred_acc[j - 1] - 1e-12);
    }
    /* point lookup by λ */
    for (int64_t j = 0; j < path.n_points; j++) CHECK(rtr_path_at(&path, path.lambda[j]) == j);
    CHECK(rtr_path_at(&path, 0.0) == 0);
    rtr_path_free(&path);
    table_free(&t);
    free(choice), free(env_choice);
}

static void test_path_brute_force(void) {
    check_path(1, 1, false);
    check_path(1, 7, false);
    check_path(5, 1, false);
    check_path(200, 7, false);
    check_path(200, 7, true);
    check_path(100, 24, false);
    check_path(50, 2, true);
}

/* Whether two paths have the same points, bit for bit. */
static bool same_path(const rtr_path *a, const rtr_path *b) {
    size_t d = (size_t)a->n_points * sizeof(double);
    if (a->n_points != b->n_points || a->n_switches != b->n_switches || !a->real_acc != !b->real_acc) return false;
    bool same = !memcmp(a->lambda, b->lambda, d) && !memcmp(a->pred_acc, b->pred_acc, d) &&
                !memcmp(a->pred_cost, b->pred_cost, d);
    return same && (!a->real_acc || (!memcmp(a->real_acc, b->real_acc, d) && !memcmp(a->real_cost, b->real_cost, d) &&
                                     !memcmp(a->n_missing, b->n_missing, (size_t)a->n_points * sizeof(int64_t))));
}

/* The path and the decisions through the CPU backend in chunks of every
 * awkward size (1, odd, the last partial, one chunk, more than n), and on
 * one thread: the same as rtr_path_compute / rtr_envelope_choose bit for bit. */
static void check_chunked(int64_t n, int32_t k, bool quantised) {
    rtr_route_table t = table_new(n, k, quantised);
    const float *p = t.p, *c = t.c;
    int32_t *ref = malloc(sizeof *ref * n), *got = malloc(sizeof *got * n);
    rtr_backend cpu;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    rtr_path want, path;
    CHECK(rtr_path_compute(&want, &t) == RTR_OK);
    const int64_t chunks[] = {1, 3, 7, n > 1 ? n - 1 : 1, n, n + 5, 0};
    for (size_t q = 0; q < sizeof chunks / sizeof *chunks; q++) {
        CHECK(rtr_path_compute_on(&cpu, &path, &t, chunks[q]) == RTR_OK);
        CHECK_MSG(same_path(&path, &want), "n=%lld k=%d chunk=%lld", (long long)n, (int)k, (long long)chunks[q]);
        for (int64_t j = 0; j < path.n_points; j += 1 + path.n_points / 5) {
            CHECK(rtr_envelope_choose(ref, p, c, path.lambda[j], n, k) == RTR_OK);
            CHECK(rtr_envelope_choose_on(&cpu, got, p, c, path.lambda[j], n, k, chunks[q]) == RTR_OK);
            CHECK_MSG(!memcmp(ref, got, sizeof *got * n), "choose n=%lld k=%d chunk=%lld", (long long)n, (int)k,
                      (long long)chunks[q]);
        }
        rtr_path_free(&path);
    }
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK(rtr_path_compute_on(&cpu, &path, &t, 5) == RTR_OK);
    CHECK_MSG(same_path(&path, &want), "one thread, n=%lld k=%d", (long long)n, (int)k);
    omp_set_num_threads(threads);
    rtr_path_free(&path);
    rtr_path_free(&want);
    rtr_backend_free(&cpu);
    table_free(&t);
    free(ref), free(got);
}

static void test_path_chunks(void) {
    check_chunked(1, 1, false);
    check_chunked(2, 5, false);
    check_chunked(613, 7, false); /* more than two λ = 0 sum blocks (256 queries), not a multiple of them */
    check_chunked(613, 7, true);
    check_chunked(300, 24, false);
}

/* The path built from the table added a chunk of queries at a time (as a
 * streamed corpus adds it), with and without truth: the same points as
 * from the whole table, bit for bit, wherever the cuts fall against the
 * 256-query sum blocks and the envelope chunks. */
static void check_builder(int64_t n, int32_t k, bool quantised) {
    rtr_route_table t = table_new(n, k, quantised);
    rtr_backend cpu;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    for (int truth = 0; truth < 2; truth++) {
        rtr_route_table whole = t;
        if (!truth) whole.true_correct = whole.true_cost = NULL;
        rtr_path want, got;
        CHECK(rtr_path_compute(&want, &whole) == RTR_OK);
        const int64_t cuts[] = {1, 7, 255, 256, 257, 1000, n};
        for (size_t q = 0; q < sizeof cuts / sizeof *cuts; q++) {
            rtr_path_builder *pb;
            CHECK(rtr_path_builder_open(&cpu, &pb, k, truth, 3) == RTR_OK);
            for (int64_t r0 = 0; r0 < n; r0 += cuts[q]) {
                int64_t m = n - r0 < cuts[q] ? n - r0 : cuts[q];
                size_t at = (size_t)r0 * (size_t)k;
                rtr_route_table part = {m, k, t.p + at, t.c + at, t.cost + at, truth ? t.true_correct + at : NULL,
                                        truth ? t.true_cost + at : NULL};
                CHECK(rtr_path_builder_add(pb, &part) == RTR_OK);
            }
            CHECK(rtr_path_builder_finish(pb, &got) == RTR_OK);
            CHECK_MSG(same_path(&got, &want), "n=%lld k=%d cut %lld truth %d", (long long)n, (int)k, (long long)cuts[q], truth);
            rtr_path_free(&got);
        }
        rtr_path_free(&want);
    }
    /* a chunk of the wrong width, truth promised but not given, nothing added */
    rtr_path_builder *pb;
    rtr_path none;
    CHECK(rtr_path_builder_open(&cpu, &pb, k + 1, true, 0) == RTR_OK);
    CHECK(rtr_path_builder_add(pb, &t) == RTR_ERR_INVALID);
    rtr_path_builder_free(pb);
    rtr_route_table bare = {n, k, t.p, t.c, t.cost, NULL, NULL};
    CHECK(rtr_path_builder_open(&cpu, &pb, k, true, 0) == RTR_OK);
    CHECK(rtr_path_builder_add(pb, &bare) == RTR_ERR_INVALID);
    CHECK(rtr_path_builder_finish(pb, &none) == RTR_ERR_INVALID && strstr(rtr_last_error(), "empty"));
    rtr_backend_free(&cpu);
    table_free(&t);
}

static void test_path_builder(void) {
    check_builder(1, 3, false);
    check_builder(613, 7, false);
    check_builder(613, 5, true);
    check_builder(1000, 16, false);
}

/* A builder fed t in chunks of cut queries (envelope chunks of 3), spilling
 * its events to disk past spill events (0: never). */
static rtr_path_builder *spilled_builder(rtr_backend *cpu, const rtr_route_table *t, bool truth, int64_t cut,
                                         int64_t spill) {
    rtr_path_builder *pb;
    int32_t k = t->k;
    CHECK(rtr_path_builder_open(cpu, &pb, k, truth, 3) == RTR_OK);
    rtr_path_builder_spill(pb, spill);
    for (int64_t r0 = 0; r0 < t->n; r0 += cut) {
        int64_t m = t->n - r0 < cut ? t->n - r0 : cut;
        size_t at = (size_t)r0 * (size_t)k;
        rtr_route_table part = {m, k, t->p + at, t->c + at, t->cost ? t->cost + at : NULL, truth ? t->true_correct + at : NULL,
                                truth ? t->true_cost + at : NULL};
        CHECK(rtr_path_builder_add(pb, &part) == RTR_OK);
    }
    return pb;
}

static int dir_entries(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d) closedir(d);
    return n;
}

/* Bounded memory: a builder that writes its events to temporary runs and
 * merges them back gives the path, and an MPI part's breakpoints, of the
 * builder that never spills, bit for bit: a spill after every envelope
 * chunk (more than 64 runs: merged into one on the way), every few chunks,
 * never; with and without truth; many equal λ (quantised). The runs live
 * in $TMPDIR and leave nothing there, finished or abandoned; a $TMPDIR that
 * cannot take them is an I/O error naming it. */
static void test_path_spill(void) {
    char tmpl[] = "/tmp/rtr-spill-XXXXXX", *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    const char *old = getenv("TMPDIR");
    char *saved = old ? rtr_strdup(old) : NULL;
    setenv("TMPDIR", dir, 1);
    rtr_backend cpu;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    const struct { int64_t n; int32_t k; bool quantised; } shapes[] = {{613, 5, true}, {700, 16, false}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++) {
        rtr_route_table t = table_new(shapes[sh].n, shapes[sh].k, shapes[sh].quantised);
        for (int truth = 0; truth < 2; truth++) {
            rtr_path want, got;
            rtr_path_part pwant, pgot;
            CHECK(rtr_path_builder_finish(spilled_builder(&cpu, &t, truth, 7, 0), &want) == RTR_OK);
            CHECK(rtr_path_builder_part(spilled_builder(&cpu, &t, truth, 7, 0), &pwant) == RTR_OK);
            const int64_t spills[] = {1, 40, 100000};
            const int64_t cuts[] = {7, shapes[sh].n};
            for (size_t q = 0; q < sizeof spills / sizeof *spills; q++)
                for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
                    rtr_path_builder *pb = spilled_builder(&cpu, &t, truth, cuts[c], spills[q]);
                    CHECK(dir_entries(dir) == 0);
                    CHECK(rtr_path_builder_finish(pb, &got) == RTR_OK);
                    CHECK_MSG(same_path(&got, &want), "spill %lld cut %lld n=%lld k=%d truth %d", (long long)spills[q],
                              (long long)cuts[c], (long long)t.n, (int)t.k, truth);
                    rtr_path_free(&got);
                    CHECK(rtr_path_builder_part(spilled_builder(&cpu, &t, truth, cuts[c], spills[q]), &pgot) == RTR_OK);
                    CHECK_MSG(pgot.n_breaks == pwant.n_breaks && pgot.n_switches == pwant.n_switches &&
                                  !memcmp(&pgot.at0, &pwant.at0, sizeof pgot.at0) &&
                                  !memcmp(pgot.breaks, pwant.breaks, sizeof *pgot.breaks * (size_t)pgot.n_breaks),
                              "part: spill %lld cut %lld truth %d", (long long)spills[q], (long long)cuts[c], truth);
                    rtr_path_part_free(&pgot);
                }
            rtr_path_builder_free(spilled_builder(&cpu, &t, truth, 7, 1)); /* abandoned with runs on disk */
            CHECK(dir_entries(dir) == 0);
            rtr_path_free(&want);
            rtr_path_part_free(&pwant);
        }
        table_free(&t);
    }
    /* nowhere to write a run */
    rtr_route_table t = table_new(300, 4, false);
    setenv("TMPDIR", "/nonexistent-rtr-dir", 1);
    rtr_path_builder *pb;
    CHECK(rtr_path_builder_open(&cpu, &pb, t.k, false, 3) == RTR_OK);
    rtr_path_builder_spill(pb, 1);
    rtr_route_table bare = {t.n, t.k, t.p, t.c, t.cost, NULL, NULL};
    CHECK(rtr_path_builder_add(pb, &bare) == RTR_ERR_IO && strstr(rtr_last_error(), "/nonexistent-rtr-dir"));
    rtr_path_builder_free(pb);
    table_free(&t);
    if (saved) setenv("TMPDIR", saved, 1);
    else unsetenv("TMPDIR");
    free(saved);
    CHECK(rmdir(dir) == 0);
    rtr_backend_free(&cpu);
}

/* The reference routers of a split added a chunk of rows at a time (a
 * streamed sweep) are the whole split's, bit for bit, and those are the
 * metrics module's single pairs and Oracle. */
static void test_refs_chunked(void) {
    enum { N = 700, K = 6 };
    rtr_route_table t = table_new(N, K, true);
    eval_refs whole, parts;
    CHECK(eval_refs_compute(&whole, t.true_correct, t.true_cost, N, K) == RTR_OK);
    rtr_op_point single[K];
    int32_t choice[N];
    rtr_router_single(single, t.true_correct, t.true_cost, N, K);
    rtr_router_oracle(choice, t.true_correct, t.true_cost, N, K);
    rtr_op_point oracle = rtr_eval_choice(choice, t.true_correct, t.true_cost, N, K);
    CHECK(!memcmp(whole.single, single, sizeof single) && !memcmp(&whole.oracle, &oracle, sizeof oracle));
    CHECK(whole.best == rtr_router_best_single(single, K) && whole.cheapest == rtr_router_cheapest_single(single, K));
    const int64_t cuts[] = {1, 7, 256, 699};
    for (size_t q = 0; q < sizeof cuts / sizeof *cuts; q++) {
        eval_refs_acc a;
        CHECK(eval_refs_acc_init(&a, K) == RTR_OK);
        for (int64_t r0 = 0; r0 < N; r0 += cuts[q]) {
            int64_t m = N - r0 < cuts[q] ? N - r0 : cuts[q];
            CHECK(eval_refs_acc_add(&a, t.true_correct + r0 * K, t.true_cost + r0 * K, m) == RTR_OK);
        }
        CHECK(eval_refs_acc_finish(&a, &parts) == RTR_OK);
        CHECK_MSG(!memcmp(parts.single, whole.single, sizeof single) && !memcmp(&parts.oracle, &whole.oracle, sizeof oracle) &&
                      !memcmp(&parts.random, &whole.random, sizeof oracle) && parts.best == whole.best,
                  "chunks of %lld", (long long)cuts[q]);
        eval_refs_free(&parts);
    }
    eval_refs_free(&whole);
    table_free(&t);
}

/* What a sink sees: every query once, in order, in chunks of the size asked
 * for; its pieces are rtr_envelope's. A sink's error stops the stream. */
typedef struct {
    const float *p, *c;
    int64_t next, calls, stop_at;
    int64_t bad;
} sink_probe;

static rtr_status probe_sink(void *ctx, int64_t q0, int64_t n, int32_t k, const int32_t *pair, const double *start,
                             const int32_t *m) {
    sink_probe *s = ctx;
    if (q0 != s->next) s->bad++;
    s->next = q0 + n;
    int32_t *want_pair = malloc(sizeof *want_pair * k);
    double *want_start = malloc(sizeof *want_start * k);
    rtr_line *l = malloc(sizeof *l * k);
    for (int64_t i = 0; i < n; i++) {
        int32_t wm = rtr_envelope(want_pair, want_start, l, s->p + (q0 + i) * k, s->c + (q0 + i) * k, k);
        if (wm != m[i] || memcmp(want_pair, pair + i * k, sizeof *want_pair * wm) ||
            memcmp(want_start, start + i * k, sizeof *want_start * wm))
            s->bad++;
    }
    free(want_pair); free(want_start); free(l);
    return ++s->calls == s->stop_at ? rtr_fail(RTR_ERR_IO, "probe: stop") : RTR_OK;
}

static void test_envelope_stream(void) {
    enum { N = 100, K = 6 };
    float p[N * K], c[N * K];
    fill_table(p, c, NULL, NULL, N, K, true);
    p[37 * K + 2] = NAN; /* an excluded pair */
    rtr_backend cpu;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    sink_probe s = {p, c, 0, 0, -1, 0};
    CHECK(rtr_envelopes_on(&cpu, p, c, N, K, 7, probe_sink, &s) == RTR_OK);
    CHECK(s.next == N && s.calls == (N + 6) / 7 && s.bad == 0);
    sink_probe stop = {p, c, 0, 0, 2, 0};
    CHECK(rtr_envelopes_on(&cpu, p, c, N, K, 7, probe_sink, &stop) == RTR_ERR_IO);
    CHECK(stop.calls == 2 && strstr(rtr_last_error(), "probe: stop"));
    /* a query with no allowed pair in a later chunk is named */
    for (int j = 0; j < K; j++) p[61 * K + j] = NAN;
    rtr_route_table t = {N, K, p, c, NULL, NULL, NULL};
    rtr_path path;
    CHECK(rtr_path_compute_on(&cpu, &path, &t, 7) == RTR_ERR_INVALID);
    CHECK(strstr(rtr_last_error(), "query 61") != NULL);
    rtr_backend_free(&cpu);
}

static void test_path_errors(void) {
    float p[2] = {NAN, NAN}, c[2] = {1, 1};
    rtr_route_table t = {1, 2, p, c, NULL, NULL, NULL};
    rtr_path path;
    CHECK(rtr_path_compute(&path, &t) == RTR_ERR_INVALID);
    CHECK(strstr(rtr_last_error(), "query 0") != NULL);
    t.n = 0;
    CHECK(rtr_path_compute(&path, &t) == RTR_ERR_INVALID);
}

static void test_budget(void) {
    enum { N = 300, K = 5 };
    float p[N * K], c[N * K];
    fill_table(p, c, NULL, NULL, N, K, false);
    rtr_route_table t = {N, K, p, c, NULL, NULL, NULL};
    rtr_path path;
    CHECK(rtr_path_compute(&path, &t) == RTR_OK);
    CHECK(path.real_acc == NULL);
    int64_t pt = -1;
    CHECK(rtr_path_budget(&pt, &path, path.pred_cost[0] * 0.99) == RTR_ERR_INVALID);
    CHECK(strstr(rtr_last_error(), "cheapest") != NULL);
    CHECK(rtr_path_budget(&pt, &path, 1e9) == RTR_OK && pt == path.n_points - 1);
    int32_t choice[N];
    for (int64_t j = 0; j < path.n_points; j += 1 + path.n_points / 17) {
        double b = 0.5 * (path.pred_cost[j] + (j + 1 < path.n_points ? path.pred_cost[j + 1] : 1e9));
        CHECK(rtr_path_budget(&pt, &path, b) == RTR_OK && pt == j);
        /* routing at the point's λ spends within the budget */
        CHECK(rtr_envelope_choose(choice, p, c, path.lambda[pt], N, K) == RTR_OK);
        double spent = 0;
        for (int i = 0; i < N; i++) spent += c[i * K + choice[i]];
        CHECK(spent / N <= b + 1e-12);
        CHECK_CLOSE(spent / N, path.pred_cost[pt], 1e-12, 1e-9);
    }
    /* the same search as a pass over the builder's points (route --budget):
     * the same λ for every budget, mean or total, spilled to disk or not,
     * and the same refusal below the cheapest routing */
    rtr_backend cpu;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    for (int64_t j = 0; j < path.n_points; j += 1 + path.n_points / 23)
        for (int total = 0; total < 2; total++)
            for (int64_t spill = 0; spill < 200; spill += 7) {
                double b = 0.5 * (path.pred_cost[j] + (j + 1 < path.n_points ? path.pred_cost[j + 1] : 1e9)), lambda = -1;
                CHECK(rtr_path_budget(&pt, &path, b) == RTR_OK);
                rtr_path_builder *pb = spilled_builder(&cpu, &t, false, 100, spill);
                CHECK(rtr_path_builder_budget(pb, total ? b * N : b, total, &lambda) == RTR_OK);
                CHECK_MSG(lambda == path.lambda[pt], "budget %g total %d spill %lld: %.17g vs %.17g", b, total,
                          (long long)spill, lambda, path.lambda[pt]);
            }
    CHECK(rtr_path_builder_budget(spilled_builder(&cpu, &t, false, 100, 5), path.pred_cost[0] * 0.99, false, &(double){0}) ==
              RTR_ERR_INVALID &&
          strstr(rtr_last_error(), "cheapest"));
    rtr_backend_free(&cpu);
    rtr_path_free(&path);
}

static void test_cost_scale_and_exclusions(void) {
    const float c[6] = {1, 10, 3, 30, NAN, 20}; /* means per pair: 2, 20 */
    double s = 0;
    CHECK(rtr_route_cost_scale(&s, c, 3, 2) == RTR_OK && s == 20);
    const float z[2] = {0, 0};
    CHECK(rtr_route_cost_scale(&s, z, 1, 2) == RTR_ERR_INVALID);

    rtr_catalog cat;
    const char *json = "{\"models\":[{\"name\":\"a\",\"price_in\":1,\"price_out\":2},{\"name\":\"b\",\"price_out\":4}],"
                       "\"strategies\":[{\"name\":\"cot\"},{\"name\":\"pot\"}]}";
    CHECK(rtr_catalog_parse_json(&cat, json, "test") == RTR_OK);
    bool ex[4] = {false};
    CHECK(rtr_route_parse_exclude(ex, &cat, "a|pot,b") == RTR_OK);
    CHECK(!ex[0] && ex[1] && ex[2] && ex[3]);
    CHECK(rtr_route_parse_exclude(ex, &cat, "zz") == RTR_ERR_INVALID);
    float p[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    const float tok[8] = {10, 20, 30, 40, 50, 600, 70, 80};
    bool ex2[4] = {false, false, true, false};
    rtr_route_exclude(p, tok, 2, 4, ex2, 100);
    CHECK(!isnan(p[0]) && isnan(p[2]) && isnan(p[5]) && isnan(p[6]) && !isnan(p[7]));

    float usd[4];
    const float out[4] = {1e6f, 1e6f, 1e6f, 1e6f}, in[1] = {5e5f};
    CHECK(rtr_cost_usd(usd, out, NULL, &cat, 1) == RTR_OK);
    CHECK(usd[0] == 2 && usd[1] == 2 && usd[2] == 4 && usd[3] == 4);
    CHECK(rtr_cost_usd(usd, out, in, &cat, 1) == RTR_ERR_INVALID); /* b has no price_in */

    double uc[4];
    CHECK(rtr_cost_user_parse(uc, "{\"a|cot\":1,\"a|pot\":2,\"b|cot\":3,\"b|pot\":4.5}", "u", &cat) == RTR_OK);
    CHECK(uc[3] == 4.5);
    CHECK(rtr_cost_user_parse(uc, "{\"a|cot\":1}", "u", &cat) == RTR_ERR_INVALID);
    CHECK(rtr_cost_user_parse(uc, "{\"a|cot\":-1,\"a|pot\":2,\"b|cot\":3,\"b|pot\":4}", "u", &cat) == RTR_ERR_INVALID);
    rtr_catalog_free(&cat);
}

static void test_pareto(void) {
    const double cost[6] = {1, 2, 2, 3, 0.5, NAN}, acc[6] = {0.5, 0.7, 0.6, 0.65, 0.4, 1};
    int64_t idx[6];
    int64_t m = rtr_pareto_front(idx, cost, acc, 6);
    CHECK(m == 3 && idx[0] == 4 && idx[1] == 0 && idx[2] == 1);
}

static void test_aiq(void) {
    double aiq = 0;
    const double c1[4] = {1, 2, 3, 4}, a1[4] = {0.5, 0.6, 0.55, 0.9};
    CHECK(rtr_metric_aiq(&aiq, c1, a1, 4, 5) == RTR_OK); /* hull (1,.5)-(4,.9), flat to 5 */
    CHECK_CLOSE(aiq, (0.5 * (0.5 + 0.9) * 3 + 0.9) / 5, 1e-12, 0);
    const double c2[2] = {1, 2}, a2[2] = {0.8, 0.6};
    CHECK(rtr_metric_aiq(&aiq, c2, a2, 2, 4) == RTR_OK); /* cut at the peak */
    CHECK_CLOSE(aiq, 0.8 * 3 / 4, 1e-12, 0);
    const double c3[3] = {0, 1, 2}, a3[3] = {0.2, 0.7, 0.8};
    CHECK(rtr_metric_aiq(&aiq, c3, a3, 3, 2) == RTR_OK); /* concave already */
    CHECK_CLOSE(aiq, (0.45 + 0.75) / 2, 1e-12, 0);
    CHECK(rtr_metric_aiq(&aiq, c3, a3, 3, 1.5) == RTR_ERR_INVALID);
    CHECK(rtr_metric_aiq(&aiq, c3, a3, 0, 2) == RTR_ERR_INVALID);
}

static void test_apgr_cpt(void) {
    const double x[3] = {0, 0.5, 1}, a[3] = {0.5, 0.8, 0.9};
    CHECK_CLOSE(rtr_curve_area01(x, a, 3), 0.75, 1e-12, 0);
    CHECK_CLOSE(rtr_metric_apgr(x, a, 3, 0.5, 0.9), 0.625, 1e-12, 0);
    CHECK_CLOSE(rtr_metric_cpt(x, a, 3, 0.5, 0.9, 0.5), 1.0 / 3, 1e-12, 0);
    CHECK_CLOSE(rtr_metric_cpt(x, a, 3, 0.5, 0.9, 0.8), 0.6, 1e-12, 0);
    CHECK(isnan(rtr_metric_cpt(x, a, 3, 0.5, 0.9, 1.5)));
    /* curve outside [0,1] is cut, and extended flat inside it */
    const double x2[2] = {-1, 0.5}, a2[2] = {0, 1};
    CHECK_CLOSE(rtr_curve_area01(x2, a2, 2), (2.0 / 3 + 1) / 2 * 0.5 + 0.5, 1e-12, 0);
    const double cost[3] = {1, 2, 3}, acc[3] = {0.6, 0.8, 0.85};
    CHECK_CLOSE(rtr_metric_cost_to_match(cost, acc, 3, 0.8, 4), 0.5, 1e-12, 0);
    CHECK(isnan(rtr_metric_cost_to_match(cost, acc, 3, 0.9, 4)));
    CHECK_CLOSE(rtr_metric_oracle_gap(cost, acc, 3, 2.5, 0.95), 0.15, 1e-12, 0);
    CHECK(isnan(rtr_metric_oracle_gap(cost, acc, 3, 0.5, 0.95)));
}

static void test_reference_routers(void) {
    /* 3 queries x 3 pairs; pair 2 is missing on query 1 */
    const float correct[9] = {1, 0, 1, 0, 1, NAN, 0, 0, 1};
    const float cost[9] = {1, 2, 5, 1, 2, 5, 1, 2, 5};
    rtr_op_point single[3];
    rtr_router_single(single, correct, cost, 3, 3);
    CHECK_CLOSE(single[0].acc, 1.0 / 3, 1e-12, 0);
    CHECK(single[2].n_missing == 1 && single[2].acc == 1 && single[2].cost == 5);
    rtr_op_point r = rtr_router_random(single, 3);
    CHECK_CLOSE(r.acc, (1.0 / 3 + 1.0 / 3 + 1) / 3, 1e-12, 0);
    CHECK_CLOSE(r.cost, 8.0 / 3, 1e-12, 0);
    CHECK(rtr_router_best_single(single, 3) == 2);
    CHECK(rtr_router_cheapest_single(single, 3) == 0);
    int32_t ch[3];
    rtr_router_oracle(ch, correct, cost, 3, 3);
    CHECK(ch[0] == 0 && ch[1] == 1 && ch[2] == 2);
    rtr_op_point o = rtr_eval_choice(ch, correct, cost, 3, 3);
    CHECK(o.acc == 1 && o.n_missing == 0);
    CHECK_CLOSE(o.cost, 8.0 / 3, 1e-12, 0);
    const float wrong[2] = {0, 0}, wc[2] = {3, 1};
    rtr_router_oracle(ch, wrong, wc, 1, 2); /* none correct: the cheapest */
    CHECK(ch[0] == 1);
    const int32_t miss[3] = {2, 2, -1};
    rtr_op_point m = rtr_eval_choice(miss, correct, cost, 3, 3);
    CHECK(m.n_missing == 2 && m.acc == 1 && m.cost == 5);

    /* dataset prior: query datasets "x" (seen) and "y" (unseen: global means) */
    const char *train_ds[3] = {"x", "x", "z"}, *ds[2] = {"x", "y"};
    float p[6], c[6];
    CHECK(rtr_router_prior_table(p, c, ds, 2, train_ds, correct, cost, 3, 3) == RTR_OK);
    CHECK(p[0] == 0.5f && p[1] == 0.5f && p[2] == 1 && c[2] == 5);
    CHECK_CLOSE(p[3], 1.0 / 3, 1e-6, 0);
    CHECK(p[5] == 1);

    /* two-pair sweep: weak pair 0, strong pair 2, score puts query 2 first */
    const float sc[3] = {0.5f, 0.1f, 0.9f};
    rtr_curve cv;
    CHECK(rtr_router_two_pair_sweep(&cv, sc, correct, cost, 3, 3, 0, 2) == RTR_OK);
    CHECK(cv.n_points == 4 && cv.x[0] == 0 && cv.x[3] == 1);
    CHECK_CLOSE(cv.acc[0], 1.0 / 3, 1e-12, 0);
    CHECK_CLOSE(cv.acc[1], 2.0 / 3, 1e-12, 0);                   /* query 2 to strong */
    CHECK_CLOSE(cv.acc[2], 2.0 / 3, 1e-12, 0);                   /* query 0: right either way */
    CHECK(cv.acc[3] == 1);                                       /* query 1 on strong is missing */
    CHECK_CLOSE(cv.cost[3], 5, 1e-12, 0);
    rtr_curve_free(&cv);
}

static void test_knn_brute_force(void) {
    enum { NQ = 37, NR = 300, D = 17, NN = 10, K = 3 };
    static float q[NQ * D], ref[NR * D], sim[NQ * NN], rc[NR * K], rk[NR * K], p[NQ * K], c[NQ * K];
    static int64_t idx[NQ * NN];
    for (int i = 0; i < NQ * D; i++) q[i] = (float)(rnd() * 2 - 1);
    for (int i = 0; i < NR * D; i++) ref[i] = (float)(rnd() * 2 - 1);
    for (int i = 0; i < D; i++) ref[5 * D + i] = 0; /* a zero row: similarity 0 */
    CHECK(rtr_knn_search(idx, sim, q, NQ, ref, NR, D, NN) == RTR_OK);
    for (int i = 0; i < NQ; i++) {
        double s[NR];
        for (int r = 0; r < NR; r++) {
            double dot = 0, nq = 0, nr = 0;
            for (int t = 0; t < D; t++) { dot += q[i * D + t] * ref[r * D + t]; nq += q[i * D + t] * q[i * D + t]; nr += ref[r * D + t] * ref[r * D + t]; }
            s[r] = nr > 0 ? dot / sqrt(nq * nr) : 0;
        }
        for (int t = 0; t < NN; t++) {
            int best = -1; /* t-th best by selection, excluding the previous picks */
            for (int r = 0; r < NR; r++) {
                bool taken = false;
                for (int u = 0; u < t; u++) taken |= idx[i * NN + u] == r;
                if (!taken && (best < 0 || s[r] > s[best])) best = r;
            }
            CHECK_CLOSE(sim[i * NN + t], s[best], 1e-5, 0);
            CHECK_CLOSE(s[idx[i * NN + t]], s[best], 1e-5, 0);
            if (t) CHECK(sim[i * NN + t] <= sim[i * NN + t - 1]);
        }
    }
    for (int i = 0; i < NR * K; i++) { rc[i] = (float)(rnd() < 0.6); rk[i] = (float)(rnd() * 100); }
    CHECK(rtr_router_knn_table(p, c, q, NQ, ref, rc, rk, NR, D, K, NN) == RTR_OK);
    for (int i = 0; i < NQ; i++)
        for (int j = 0; j < K; j++) {
            double sp = 0, sk = 0;
            for (int t = 0; t < NN; t++) { sp += rc[idx[i * NN + t] * K + j]; sk += rk[idx[i * NN + t] * K + j]; }
            CHECK_CLOSE(p[i * K + j], sp / NN, 1e-6, 0);
            CHECK_CLOSE(c[i * K + j], sk / NN, 1e-4, 1e-6);
        }
    CHECK(rtr_knn_search(idx, sim, q, NQ, ref, 5, D, NN) == RTR_ERR_INVALID);
}

/* EmbedLLM router on data whose correctness depends on the query embedding:
 * it must fit (training loss falls) and beat the per-pair mean on held-out
 * queries. */
static void test_embedllm_learns(void) {
    enum { NT = 800, NQ = 400, D = 16, K = 4 };
    static float et[NT * D], eq[NQ * D], yt[NT * K], ct[NT * K], yq[NQ * K], p[NQ * K], c[NQ * K], u[K * D];
    for (int i = 0; i < K * D; i++) u[i] = (float)(rnd() * 2 - 1);
    float *embs[2] = {et, eq}, *ys[2] = {yt, yq};
    const int ns[2] = {NT, NQ};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < ns[s]; i++) {
            for (int t = 0; t < D; t++) embs[s][i * D + t] = (float)(rnd() * 2 - 1);
            for (int j = 0; j < K; j++) {
                double z = 0;
                for (int t = 0; t < D; t++) z += u[j * D + t] * embs[s][i * D + t];
                ys[s][i * K + j] = rnd() < 0.1 && s == 0 ? NAN : (float)(rnd() < 1 / (1 + exp(-1.5 * z)));
                if (s == 0) ct[i * K + j] = (float)(j + 1);
            }
        }
    rtr_embedllm_params prm = rtr_embedllm_default_params();
    double loss[2] = {0, 0};
    CHECK(rtr_router_embedllm_table(p, c, loss, eq, NQ, et, yt, ct, NT, D, K, &prm) == RTR_OK);
    CHECK_MSG(loss[1] < loss[0] - 0.1, "train loss %g -> %g", loss[0], loss[1]);
    /* held-out accuracy of thresholding p at 0.5 against the per-pair majority */
    int right = 0, right_prior = 0;
    for (int j = 0; j < K; j++) {
        double mean = 0;
        int cnt = 0;
        for (int i = 0; i < NT; i++) if (!isnan(yt[i * K + j])) { mean += yt[i * K + j]; cnt++; }
        mean /= cnt;
        for (int i = 0; i < NQ; i++) {
            right += (p[i * K + j] > 0.5f) == (yq[i * K + j] > 0.5f);
            right_prior += (mean > 0.5) == (yq[i * K + j] > 0.5f);
        }
        CHECK(c[j] == (float)(j + 1));
    }
    fprintf(stderr, "embedllm: loss %.3f -> %.3f, held-out %d vs prior %d of %d\n", loss[0], loss[1], right, right_prior, NQ * K);
    CHECK_MSG(right > right_prior + NQ * K / 10, "embedllm %d vs prior %d of %d", right, right_prior, NQ * K);
    rtr_embedllm_params bad = prm;
    bad.dim = 0;
    CHECK(rtr_router_embedllm_table(p, c, NULL, eq, NQ, et, yt, ct, NT, D, K, &bad) == RTR_ERR_INVALID);
}

/* A two-shard corpus (2 models x 1 strategy) with a routing table h1 and
 * embeddings enc_a. */
static float fx_emb(int s, int64_t i, int t) { return (float)((s ? 3 + i : i) * 10 + t); }
static float fx_table(int s, int64_t i, int j, int which) { (void)s, (void)i; return which ? (float)(50 * (j + 1)) : 0.5f + 0.1f * (float)j; }

static char *make_corpus(void) {
    char *dir = fixture_dir("route_data");
    rtr_catalog cat;
    CHECK(rtr_catalog_parse_json(&cat, "{\"models\":[{\"name\":\"m1\",\"price_in\":0,\"price_out\":1},"
                                       "{\"name\":\"m2\",\"price_in\":0,\"price_out\":10}],\"strategies\":[{\"name\":\"s\"}]}",
                                 "test") == RTR_OK);
    const int64_t counts[2] = {3, 2};
    const char *splits = "TtTtT"; /* T test, t train */
    rtr_shard rows[2];
    int q = 0;
    for (int s = 0; s < 2; s++) {
        CHECK(rtr_shard_alloc(&rows[s], counts[s], 2) == RTR_OK);
        for (int64_t i = 0; i < counts[s]; i++, q++) {
            rows[s].id[i] = rtr_sprintf("q%d", q);
            rows[s].text[i] = rtr_strdup("some text");
            rows[s].dataset[i] = rtr_strdup(q % 2 ? "b" : "a");
            rows[s].split[i] = rtr_strdup(splits[q] == 'T' ? "test" : "train");
            for (int j = 0; j < 2; j++) {
                rows[s].correct[i * 2 + j] = (float)((q + j) % 2);
                rows[s].tokens[i * 2 + j] = (float)(100 * (j + 1) + q);
                rows[s].cost[i * 2 + j] = (float)(0.001 * (j + 1));
            }
        }
    }
    CHECK(fixture_corpus(dir, &cat, rows, 2, 2) == RTR_OK);
    rtr_corpus *c;
    CHECK(rtr_corpus_open(&c, dir) == RTR_OK);
    rtr_table_meta meta = {"t1", "ck", "h1", "enc", "enc_a", false};
    CHECK(fixture_embeddings(c, "enc", "enc_a", 4, fx_emb) == RTR_OK);
    CHECK(fixture_table(c, &meta, fx_table) == RTR_OK);
    rtr_corpus_close(c);
    for (int s = 0; s < 2; s++) rtr_shard_free(&rows[s]);
    rtr_catalog_free(&cat);
    return dir;
}

static void test_route_data_load(void) {
    char *dir = make_corpus();
    route_data d;
    route_load_params prm = {.o.split = "test", .embeddings = true};
    CHECK(route_data_load(&d, dir, &prm) == RTR_OK);
    CHECK(d.n == 3 && d.k == 2 && !strcmp(d.id[0], "q0") && !strcmp(d.id[1], "q2") && !strcmp(d.id[2], "q4"));
    CHECK(d.emb_dim == 4 && d.emb[1 * 4 + 0] == 20 && d.emb[2 * 4 + 3] == 43 && !strcmp(d.encoder_hash, "enc_a"));
    CHECK(d.cost_scale == 100 && d.c[1] == 1.0f && d.cost[1] == 100); /* tokens 50/100: scale = largest mean */
    CHECK(d.has_truth && d.true_cost[2 * 2 + 1] == 204 && d.true_correct[1] == 1);
    CHECK(!strcmp(d.checkpoint_hash, "h1"));
    route_data_free(&d);

    route_load_params usd = {.o.split = "train", .no_tables = true, .o.cost_model = RTR_COST_USD};
    CHECK(route_data_load(&d, dir, &usd) == RTR_OK);
    CHECK(d.n == 2 && d.p == NULL && d.c == NULL && d.emb == NULL);
    CHECK_CLOSE(d.true_cost[1], 0.002, 1e-9, 0);
    route_data_free(&d);

    route_load_params bad = {.o.checkpoint_hash = "h2"};
    CHECK(route_data_load(&d, dir, &bad) == RTR_ERR_INVALID && strstr(rtr_last_error(), "h2"));
    route_load_params none = {.o.split = "valid"};
    CHECK(route_data_load(&d, dir, &none) == RTR_ERR_INVALID && strstr(rtr_last_error(), "valid"));
    route_load_params excl = {.o.exclude = "m1,m2"};
    CHECK(route_data_load(&d, dir, &excl) == RTR_ERR_INVALID && strstr(rtr_last_error(), "excluded"));
    route_load_params named = {.o.table = "t9"};
    CHECK(route_data_load(&d, dir, &named) == RTR_ERR_INVALID && strstr(rtr_last_error(), "t9"));

    /* shard 1 re-encoded by other weights: the embeddings are mixed, the table stale */
    rtr_corpus *c;
    CHECK(rtr_corpus_open(&c, dir) == RTR_OK);
    rtr_output_writer *w;
    float e[8] = {0};
    CHECK(rtr_embedding_writer_open(&w, c, 1, "enc", "enc_b", 4) == RTR_OK);
    CHECK(rtr_output_writer_append(w, 2, (const float *const[]){e}) == RTR_OK && rtr_output_writer_commit(w) == RTR_OK);
    rtr_corpus_close(c);
    route_load_params emb = {.embeddings = true, .no_tables = true};
    CHECK(route_data_load(&d, dir, &emb) == RTR_ERR_INVALID && strstr(rtr_last_error(), "enc_b"));
    route_load_params plain = {0};
    CHECK(route_data_load(&d, dir, &plain) == RTR_ERR_INVALID && strstr(rtr_last_error(), "stale"));
    route_load_params outcomes = {.no_tables = true};
    CHECK(route_data_load(&d, dir, &outcomes) == RTR_OK && d.n == 5); /* neither asked for */
    route_data_free(&d);
    rtr_remove_tree(dir);
    free(dir);
}

TEST_MAIN(T(test_envelope_brute_force), T(test_envelope_nan_and_ties), T(test_path_brute_force),
          T(test_path_chunks), T(test_path_builder), T(test_path_spill), T(test_refs_chunked), T(test_envelope_stream), T(test_path_errors), T(test_budget), T(test_cost_scale_and_exclusions), T(test_pareto),
          T(test_aiq), T(test_apgr_cpt), T(test_reference_routers), T(test_knn_brute_force),
          T(test_embedllm_learns), T(test_route_data_load))
