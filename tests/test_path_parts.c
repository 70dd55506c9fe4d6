/* The λ path of a table split into parts (what MPI ranks build,
 * docs/SCALING.md): each part's breakpoints merged (rtr_path_merge) give
 * the whole table's path (rtr_path_compute): the same λ, points and
 * switches exactly, the sums up to their order (1e-12 relative). Parts of
 * rows in blocks and interleaved chunks, empty parts, tied λ across parts
 * (quantised tables), with and without outcomes; merge errors. Also the
 * splits of src/dist: every shard to exactly one part, balanced; every row
 * to exactly one part's range, balanced whatever the shards; the
 * temporaries named by host (which a run removes). */
#include "rtr/dist.h"
#include "rtr/route.h"
#include "test.h"
#include "common/util.h"
#include "eval/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng_state = 7;
static double rnd(void) { /* xorshift64* in [0,1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

typedef struct {
    int64_t n;
    int32_t k;
    float *p, *c, *tc, *tk;
} table;

static table table_new(int64_t n, int32_t k, bool quantised) {
    table t = {n, k, malloc(sizeof(float) * (size_t)(n * k)), malloc(sizeof(float) * (size_t)(n * k)),
               malloc(sizeof(float) * (size_t)(n * k)), malloc(sizeof(float) * (size_t)(n * k))};
    for (int64_t i = 0; i < n * k; i++) {
        t.p[i] = quantised ? (float)(floor(rnd() * 5) / 4) : (float)rnd();
        t.c[i] = quantised ? (float)(floor(rnd() * 5) / 4) : (float)(rnd() * 1.5);
        bool miss = rnd() < 0.1;
        t.tc[i] = miss ? NAN : (float)(rnd() < t.p[i]);
        t.tk[i] = miss ? NAN : (float)(t.c[i] * 1000 + rnd() * 10);
    }
    return t;
}

static void table_free(table *t) {
    free(t->p), free(t->c), free(t->tc), free(t->tk);
}

static rtr_route_table rows(const table *t, int64_t r0, int64_t m, bool truth) {
    size_t at = (size_t)r0 * (size_t)t->k;
    return (rtr_route_table){m, t->k, t->p + at, t->c + at, NULL, truth ? t->tc + at : NULL, truth ? t->tk + at : NULL};
}

static bool close_to(double a, double b) {
    return (isnan(a) && isnan(b)) || fabs(a - b) <= 1e-12 * (1 + fabs(b));
}

static void check_same(const rtr_path *got, const rtr_path *want, const char *what) {
    CHECK_MSG(got->n_points == want->n_points && got->n_queries == want->n_queries &&
                  got->n_switches == want->n_switches,
              "%s: %lld/%lld points, %lld/%lld switches", what, (long long)got->n_points, (long long)want->n_points,
              (long long)got->n_switches, (long long)want->n_switches);
    if (got->n_points != want->n_points) return;
    bool lam = true, sums = true;
    for (int64_t j = 0; j < got->n_points; j++) {
        lam &= got->lambda[j] == want->lambda[j];
        sums &= close_to(got->pred_acc[j], want->pred_acc[j]) && close_to(got->pred_cost[j], want->pred_cost[j]);
        if (want->real_acc)
            sums &= got->real_acc && close_to(got->real_acc[j], want->real_acc[j]) &&
                    close_to(got->real_cost[j], want->real_cost[j]) && got->n_missing[j] == want->n_missing[j];
    }
    CHECK_MSG(lam, "%s: λ differ", what);
    CHECK_MSG(sums, "%s: sums differ beyond 1e-12", what);
    CHECK_MSG(!want->real_acc == !got->real_acc, "%s: outcomes", what);
}

/* The path of t split into n_parts parts: part of chunk j is owner(j). */
static void check_split(const table *t, bool truth, int n_parts, int64_t chunk, bool interleaved, const char *what) {
    rtr_backend cpu;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    rtr_route_table whole = rows(t, 0, t->n, truth);
    rtr_path want, got;
    CHECK(rtr_path_compute(&want, &whole) == RTR_OK);
    rtr_path_part *parts = calloc((size_t)n_parts, sizeof *parts);
    int64_t per = (t->n + n_parts - 1) / n_parts; /* blocks: part r takes rows [r·per, (r+1)·per) */
    for (int r = 0; r < n_parts; r++) {
        rtr_path_builder *pb;
        CHECK(rtr_path_builder_open(&cpu, &pb, t->k, truth, 0) == RTR_OK);
        for (int64_t j = 0, r0 = 0; r0 < t->n; j++, r0 += chunk) {
            int64_t m = t->n - r0 < chunk ? t->n - r0 : chunk;
            bool mine = interleaved ? j % n_parts == r : r0 / per == r;
            rtr_route_table part = rows(t, r0, m, truth);
            if (mine) CHECK(rtr_path_builder_add(pb, &part) == RTR_OK);
        }
        CHECK(rtr_path_builder_part(pb, &parts[r]) == RTR_OK);
    }
    CHECK(rtr_path_merge(&got, parts, n_parts) == RTR_OK);
    check_same(&got, &want, what);
    rtr_path_free(&got);
    rtr_path_free(&want);
    for (int r = 0; r < n_parts; r++) rtr_path_part_free(&parts[r]);
    free(parts);
    rtr_backend_free(&cpu);
}

static void test_parts_equal_whole(void) {
    for (int q = 0; q < 2; q++) {
        table t = table_new(1500, q ? 5 : 12, q);
        for (int truth = 0; truth < 2; truth++) {
            check_split(&t, truth, 1, 100, false, "one part");
            check_split(&t, truth, 2, 100, true, "2 parts, interleaved chunks of 100");
            check_split(&t, truth, 3, 37, false, "3 parts, blocks");
            check_split(&t, truth, 5, 1000, true, "5 parts, 2 chunks: 3 empty parts");
        }
        table_free(&t);
    }
}

static void test_merge_errors(void) {
    rtr_path path;
    rtr_path_part empty[2] = {{0}, {0}};
    CHECK(rtr_path_merge(&path, empty, 2) == RTR_ERR_INVALID && strstr(rtr_last_error(), "empty"));
    rtr_path_part mixed[2] = {{.n_queries = 1}, {.n_queries = 1, .truth = true}};
    CHECK(rtr_path_merge(&path, mixed, 2) == RTR_ERR_INVALID && strstr(rtr_last_error(), "outcomes"));
}

/* Every shard goes to one part; the split is the same for the same sizes;
 * largest first to the least loaded part. */
static void test_shard_owners(void) {
    const int64_t sizes[] = {100, 100, 100, 100, 100, 40, 100, 7};
    int owner[8], again[8];
    CHECK(rtr_part_owners(owner, sizes, 8, 3) == RTR_OK);
    CHECK(rtr_part_owners(again, sizes, 8, 3) == RTR_OK);
    CHECK(!memcmp(owner, again, sizeof owner));
    int64_t load[3] = {0};
    for (int i = 0; i < 8; i++) {
        CHECK(owner[i] >= 0 && owner[i] < 3);
        load[owner[i]] += sizes[i];
    }
    /* 100s to parts 0,1,2,0,1,2; then 40 to part 0 (200, 200, 200: lowest), 7 to part 1 */
    int want[8] = {0, 1, 2, 0, 1, 0, 2, 1};
    CHECK(!memcmp(owner, want, sizeof want));
    CHECK(load[0] == 240 && load[1] == 207 && load[2] == 200);
    CHECK(rtr_part_owners(owner, sizes, 8, 1) == RTR_OK && owner[7] == 0);
    int many[8];
    CHECK(rtr_part_owners(many, sizes, 8, 20) == RTR_OK); /* more parts than shards: some parts get none */
    bool distinct = true;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < i; j++) distinct &= many[i] != many[j];
    CHECK(distinct);
}

/* The row split (rtr_part_rows): for any shards (empty ones, one shard,
 * fewer shards than parts), grain and number of parts, the parts' ranges
 * follow each other and cover every row exactly once; a range starts at a
 * shard's first row or a multiple of the grain into its shard; every part
 * is within one grain of an even split (so a corpus of one shard gives
 * every part rows, where whole shards left all but one part idle). */
static void test_part_rows(void) {
    const int64_t shards[][6] = {{40000}, {5, 0, 3, 0, 0, 4}, {0, 0, 0}, {100, 100, 100, 100, 100, 40},
                                 {16384, 16384, 7, 40000}};
    const int n_shards[] = {1, 6, 3, 6, 4};
    const int64_t grains[] = {1, 2, 7, 16384};
    for (size_t c = 0; c < sizeof n_shards / sizeof *n_shards; c++)
        for (size_t gi = 0; gi < sizeof grains / sizeof *grains; gi++)
            for (int count = 1; count <= 9; count++) {
                int64_t total = 0, g = grains[gi];
                for (int i = 0; i < n_shards[c]; i++) total += shards[c][i];
                int64_t next = 0;
                for (int p = 0; p < count; p++) {
                    rtr_row_range r = rtr_part_rows(shards[c], n_shards[c], g, p, count);
                    CHECK_MSG(r.first == next && r.end >= r.first, "corpus %zu grain %lld: part %d/%d is %lld..%lld after %lld",
                              c, (long long)g, p, count, (long long)r.first, (long long)r.end, (long long)next);
                    next = r.end;
                    /* its start: a multiple of the grain into the shard holding it, or a shard's end */
                    int64_t base = 0;
                    bool aligned = r.first == 0 || r.first == total;
                    for (int i = 0; i < n_shards[c]; base += shards[c][i++])
                        if (r.first >= base && r.first <= base + shards[c][i])
                            aligned |= (r.first - base) % g == 0 || r.first == base + shards[c][i];
                    CHECK_MSG(aligned, "corpus %zu grain %lld: part %d/%d starts at %lld", c, (long long)g, p, count,
                              (long long)r.first);
                    double even = (double)total * p / count;
                    CHECK_MSG(fabs((double)r.first - even) <= (double)g, "corpus %zu grain %lld: part %d/%d starts at %lld, "
                              "even %.1f", c, (long long)g, p, count, (long long)r.first, even);
                }
                CHECK_MSG(next == total, "corpus %zu: parts end at %lld of %lld", c, (long long)next, (long long)total);
            }
    /* one shard of 40,000 rows on 2 parts by chunks of 16,384: the cut at the chunk nearest 20,000 */
    const int64_t one[] = {40000};
    rtr_row_range a = rtr_part_rows(one, 1, 16384, 0, 2), b = rtr_part_rows(one, 1, 16384, 1, 2);
    CHECK(a.first == 0 && a.end == 16384 && b.first == 16384 && b.end == 40000);
    /* tests/test_route_sweep_mpi.py's one shard of 40,960 rows on 4 ranks: 16384, 0, 16384 and 8192 rows */
    const int64_t four[] = {40960}, want[5] = {0, 16384, 16384, 32768, 40960};
    for (int p = 0; p < 4; p++) {
        rtr_row_range r = rtr_part_rows(four, 1, 16384, p, 4);
        CHECK_MSG(r.first == want[p] && r.end == want[p + 1], "part %d/4: %lld..%lld", p, (long long)r.first,
                  (long long)r.end);
    }
}

static void test_part_parse(void) {
    rtr_part p;
    CHECK(rtr_part_parse(&p, "2/5") == RTR_OK && p.index == 2 && p.count == 5);
    const char *bad[] = {"5/5", "-1/3", "1/0", "1", "1/2x", "a/b", "", "1/100001"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(rtr_part_parse(&p, bad[i]) == RTR_ERR_INVALID && strstr(rtr_last_error(), "--part"), "'%s'", bad[i]);
    rtr_part whole;
    CHECK(rtr_part_resolve(&whole, NULL) == RTR_OK && whole.index == 0 && whole.count == 1);
    rtr_part given = {1, 4}, out;
    CHECK(rtr_part_resolve(&out, &given) == RTR_OK && out.index == 1 && out.count == 4);
}

/* A row share (data-parallel training): every global row is held by exactly
 * one part, at consecutive local rows in global order; empty shards (a
 * split may select no row of a shard) are skipped by the lookup. */
static void test_row_share(void) {
    const int64_t rows[] = {5, 0, 3, 0, 0, 4, 1};
    const int owner[] = {0, 1, 1, 0, 2, 0, 1};
    int64_t seen[13] = {0}, held[3] = {0};
    for (int part = 0; part < 3; part++) {
        rtr_row_share s;
        CHECK(rtr_row_share_init(&s, rows, owner, 7, part) == RTR_OK);
        CHECK(s.n == 13);
        int64_t next = 0;
        for (int64_t g = 0; g < s.n; g++) {
            int64_t l = rtr_row_share_local(&s, g);
            if (l < 0) continue;
            CHECK_MSG(l == next, "part %d: global row %lld is local %lld, want %lld", part, (long long)g, (long long)l,
                      (long long)next);
            next++;
            seen[g]++;
        }
        held[part] = s.n_local;
        CHECK_MSG(next == s.n_local, "part %d holds %lld rows, found %lld", part, (long long)s.n_local, (long long)next);
        CHECK(rtr_row_share_local(&s, -1) == -1 && rtr_row_share_local(&s, 13) == -1);
        rtr_row_share_free(&s);
    }
    for (int g = 0; g < 13; g++) CHECK_MSG(seen[g] == 1, "global row %d held %lld times", g, (long long)seen[g]);
    CHECK(held[0] == 9 && held[1] == 4 && held[2] == 0); /* shards 0, 3, 5; 1, 2, 6; 4 (empty) */
}

/* The bootstrap's weights: a query's weight in a resample depends on its
 * key alone (not its place), so any order, chunk or rank split of the
 * queries gives the same resamples; and they are Poisson(1) counts. */
static void test_boot_weights_any_split(void) {
    enum { N = 20000, CH = 777 };
    static uint64_t key[N], rev[N];
    static double w[N], wr[N], wc[CH], w2[N];
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "q%d", i);
        key[i] = rtr_hash64(RTR_FNV_SEED, id, strlen(id));
        rev[N - 1 - i] = key[i];
    }
    eval_boot_weights(w, key, N, 7, 3);
    eval_boot_weights(wr, rev, N, 7, 3);
    eval_boot_weights(wc, key + 5000, CH, 7, 3);
    int moved = 0, chunk = 0, other = 0;
    for (int i = 0; i < N; i++) moved += w[i] != wr[N - 1 - i];
    for (int i = 0; i < CH; i++) chunk += w[5000 + i] != wc[i];
    CHECK(moved == 0 && chunk == 0);
    eval_boot_weights(w2, key, N, 7, 4); /* another resample: other weights */
    for (int i = 0; i < N; i++) other += w[i] != w2[i];
    CHECK(other > N / 2);
    double sum = 0, sq = 0, zeros = 0;
    int fractional = 0;
    for (int i = 0; i < N; i++) sum += w[i], sq += w[i] * w[i], zeros += w[i] == 0, fractional += w[i] != floor(w[i]);
    CHECK(fractional == 0);
    double mean = sum / N, var = sq / N - mean * mean;
    CHECK(fabs(mean - 1) < 0.03 && fabs(var - 1) < 0.05 && fabs(zeros / N - exp(-1.0)) < 0.015);
    eval_boot_weights(w2, NULL, N, 7, 3); /* no keys: the row index is the key, the same counts otherwise */
    double sum2 = 0;
    for (int i = 0; i < N; i++) sum2 += w2[i];
    CHECK(fabs(sum2 / N - 1) < 0.03);
}

/* eval's kNN table a chunk of evaluated rows at a time is the one call's,
 * bit for bit, over several chunks and a short last one. */
static void test_knn_chunks_equal_whole(void) {
    enum { N = 40000, NT = 700, D = 12, K = 3, NN = 10 };
    float *emb = malloc(sizeof(float) * N * D), *temb = malloc(sizeof(float) * NT * D);
    float *ty = malloc(sizeof(float) * NT * K), *tc = malloc(sizeof(float) * NT * K);
    float *p1 = malloc(sizeof(float) * N * K), *c1 = malloc(sizeof(float) * N * K);
    float *p2 = malloc(sizeof(float) * N * K), *c2 = malloc(sizeof(float) * N * K);
    uint64_t s = 5;
    for (int i = 0; i < N * D; i++) s = s * 6364136223846793005ULL + 1, emb[i] = (float)((s >> 40) % 2001) / 1000 - 1;
    for (int i = 0; i < NT * D; i++) s = s * 6364136223846793005ULL + 1, temb[i] = (float)((s >> 40) % 2001) / 1000 - 1;
    for (int i = 0; i < NT * K; i++) {
        s = s * 6364136223846793005ULL + 1;
        ty[i] = (float)((s >> 40) & 1);
        tc[i] = i % 7 == 0 ? NAN : (float)((s >> 50) % 100);
    }
    rtr_knn_info a, b;
    CHECK(rtr_router_knn_table_info(p1, c1, &a, emb, N, temb, ty, tc, NT, D, K, NN) == RTR_OK);
    CHECK(eval_knn_table(p2, c2, &b, emb, N, temb, ty, tc, NT, D, K, NN) == RTR_OK);
    CHECK(!memcmp(p1, p2, sizeof(float) * N * K) && !memcmp(c1, c2, sizeof(float) * N * K));
    CHECK(a.exact && b.exact && a.recall == b.recall);
    free(emb), free(temb), free(ty), free(tc), free(p1), free(c1), free(p2), free(c2);
}

TEST_MAIN(T(test_parts_equal_whole), T(test_merge_errors), T(test_shard_owners), T(test_part_rows), T(test_part_parse), T(test_row_share),
          T(test_boot_weights_any_split), T(test_knn_chunks_equal_whole))
