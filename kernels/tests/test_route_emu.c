/* The pipeline stages that stream through a backend, run end to end on the
 * emulated CUDA backend ("cuda-emu": kernels/route.cu and heads.cu on the
 * CPU emulator, with its asynchronous copies and double buffers) and, in a
 * build with CUDA where a GPU answers, on the GPU, against the CPU backend:
 *
 * - the exact λ path (rtr_path_compute_on): identical points, for one chunk
 *   and many (the last partial), with ties, NaN exclusions, k = 1 and
 *   k = RTR_ENVELOPE_KMAX; k above it falls back to the CPU, same path;
 * - the decisions at λ (rtr_envelope_choose_on), switch points included;
 * - errors from a later chunk (a query with no allowed pair) stop the stream;
 * - scoring a shard streamed from HDF5 (rtr_predictor_score_shard) against
 *   the CPU, in chunks that do not divide the shard, and a shard corrupt in
 *   its middle: an error naming the file and the rows, no tables. */
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_suite.h"
#include "rtr/route.h"
#include "test.h"
#include "common/util.h"
#include "store/h5.h"

static rtr_backend cpu, *dut; /* the backend under test */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* A routing table with truth; quantised values (steps of 1/4) make many
 * lines tie or coincide; ~3% of entries excluded (NaN). */
static rtr_route_table make_table(int64_t n, int32_t k, bool quantised) {
    size_t nk = (size_t)n * (size_t)k;
    float *m = malloc(5 * nk * sizeof *m), *p = m, *c = m + nk, *cost = m + 2 * nk, *tc = m + 3 * nk, *tk = m + 4 * nk;
    for (int64_t i = 0; i < n; i++) {
        bool excluded_one = false;
        for (int32_t j = 0; j < k; j++) {
            size_t at = (size_t)i * (size_t)k + (size_t)j;
            p[at] = quantised ? (float)(floor(urand() * 5) / 4) : (float)urand();
            c[at] = quantised ? (float)(floor(urand() * 5) / 4) : (float)(urand() * 1.5);
            cost[at] = c[at] * 1000;
            bool miss = urand() < 0.1;
            tc[at] = miss ? NAN : (float)(urand() < p[at]);
            tk[at] = miss ? NAN : cost[at];
            if (j && !excluded_one && urand() < 0.03) p[at] = NAN, excluded_one = true;
        }
    }
    return (rtr_route_table){n, k, p, c, cost, tc, tk};
}

static bool same_path(const rtr_path *a, const rtr_path *b) {
    size_t d = (size_t)a->n_points * sizeof(double);
    if (a->n_points != b->n_points || a->n_switches != b->n_switches) return false;
    return !memcmp(a->lambda, b->lambda, d) && !memcmp(a->pred_acc, b->pred_acc, d) &&
           !memcmp(a->pred_cost, b->pred_cost, d) && !memcmp(a->real_acc, b->real_acc, d) &&
           !memcmp(a->real_cost, b->real_cost, d) &&
           !memcmp(a->n_missing, b->n_missing, (size_t)a->n_points * sizeof(int64_t));
}

static void check_path(int64_t n, int32_t k, bool quantised, int64_t chunk) {
    int before = test_checks_failed_;
    rtr_route_table t = make_table(n, k, quantised);
    rtr_path want, got;
    CHECK(rtr_path_compute_on(&cpu, &want, &t, 0) == RTR_OK);
    rtr_status st = rtr_path_compute_on(dut, &got, &t, chunk);
    CHECK_MSG(st == RTR_OK, "%s", rtr_last_error());
    if (st == RTR_OK) {
        CHECK_MSG(same_path(&got, &want), "path n=%lld k=%d chunk=%lld", (long long)n, (int)k, (long long)chunk);
        /* decisions at switch points and between them, on both backends */
        int32_t *a = malloc(sizeof *a * (size_t)n), *b = malloc(sizeof *b * (size_t)n);
        for (int64_t j = 0; j < want.n_points; j += 1 + want.n_points / 7) {
            double lams[2] = {want.lambda[j], j ? 0.5 * (want.lambda[j - 1] + want.lambda[j]) : 0.0};
            for (int l = 0; l < 2; l++) {
                CHECK(rtr_envelope_choose_on(&cpu, a, t.p, t.c, lams[l], n, k, 0) == RTR_OK);
                CHECK(rtr_envelope_choose_on(dut, b, t.p, t.c, lams[l], n, k, chunk) == RTR_OK);
                CHECK_MSG(!memcmp(a, b, sizeof *a * (size_t)n), "choose n=%lld k=%d λ=%.17g", (long long)n, (int)k, lams[l]);
            }
        }
        free(a), free(b);
        rtr_path_free(&got);
    }
    printf("%s path and decisions n=%lld k=%d%s chunk=%lld: %lld points\n", test_checks_failed_ > before ? "FAIL" : "ok  ",
           (long long)n, (int)k, quantised ? " (ties)" : "", (long long)chunk, (long long)want.n_points);
    rtr_path_free(&want);
    free((float *)t.p);
}

static void test_path(void) {
    check_path(1, 1, false, 0);
    check_path(50, 1, false, 7);
    check_path(1000, 24, false, 0);  /* one chunk */
    check_path(1000, 24, false, 97); /* 11 chunks, the last partial: both slots, overlapping copies */
    check_path(333, 7, true, 40);
    check_path(300, RTR_ENVELOPE_KMAX, false, 64);
    /* beyond the kernel: computed on the CPU (one stderr line), the same path */
    check_path(200, RTR_ENVELOPE_KMAX + 2, false, 0);
}

static void test_errors_mid_stream(void) {
    rtr_route_table t = make_table(500, 9, false);
    float *p = (float *)t.p;
    for (int j = 0; j < 9; j++) p[377 * 9 + j] = NAN;
    rtr_path path;
    CHECK(rtr_path_compute_on(dut, &path, &t, 60) == RTR_ERR_INVALID);
    CHECK_MSG(strstr(rtr_last_error(), "query 377") != NULL, "%s", rtr_last_error());
    free(p);
}

/* ------------------------------------------------- scoring from a shard */

/* An embeddings file of n queries whose /embedding/query (n x D) is stored
 * in several checksummed HDF5 chunks (h5_make_dense's ~1 MiB ones), written
 * with the store's own calls, the way an encoded corpus's files are. */
static char *make_embeddings(const char *dir, int64_t n, int D, float **emb) {
    char *path = rtr_sprintf("%s/shard-00000.h5", dir);
    *emb = malloc(sizeof **emb * (size_t)n * D);
    for (size_t i = 0; i < (size_t)n * D; i++) (*emb)[i] = (float)(2 * urand() - 1);
    hid_t f = -1, d = -1;
    rtr_status st = h5_create(path, &f);
    if (!st) st = h5_make_dense(f, "/embedding/query", n, D, &d);
    if (!st) st = h5_write_rows(d, H5_F32, 0, n, D, *emb, "/embedding/query");
    if (d >= 0) H5Dclose(d);
    if (f >= 0 && h5_close(f, path) && !st) st = RTR_ERR_IO;
    CHECK_MSG(st == RTR_OK, "%s", rtr_last_error());
    return path;
}

/* Overwrite bytes in the middle of storage chunk `idx` of /embedding/query. */
static bool corrupt_chunk(const char *path, hsize_t idx) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, "/embedding/query", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t off[2], size = 0;
    haddr_t addr = 0;
    unsigned mask;
    herr_t e = H5Dget_chunk_info(d, sp, idx, off, &mask, &addr, &size);
    H5Sclose(sp), H5Dclose(d), H5Fclose(f);
    FILE *o = e < 0 || size < 64 ? NULL : fopen(path, "r+b");
    if (!o) return false;
    unsigned char junk[48];
    memset(junk, 0x5a, sizeof junk);
    bool ok = fseek(o, (long)(addr + size / 2), SEEK_SET) == 0 && fwrite(junk, 1, sizeof junk, o) == sizeof junk;
    return fclose(o) == 0 && ok;
}

static void test_score_shard(void) {
    enum { N = 20000, D = 16 }; /* 1.25 MiB of embeddings: two HDF5 chunks of 16384 rows */
    char tmpl[] = "/tmp/rtr_route_emu_XXXXXX";
    char *dir = mkdtemp(tmpl);
    rtr_catalog cat;
    CHECK(dir && rtr_catalog_parse_json(&cat, "{\"models\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}],"
                                              "\"strategies\":[{\"name\":\"x\"},{\"name\":\"y\"}]}", "test") == RTR_OK);
    float *emb, *dm = malloc(sizeof *dm * 3 * D), *ds = malloc(sizeof *ds * 2 * D);
    for (int i = 0; i < 3 * D; i++) dm[i] = (float)urand();
    for (int i = 0; i < 2 * D; i++) ds[i] = (float)urand();
    char *path = make_embeddings(dir, N, D, &emb);
    rtr_train_params cfg = rtr_train_default_params();
    cfg.hidden = 32, cfg.learn_dim = 8, cfg.seed = 3;
    rtr_predictor p;
    CHECK(rtr_predictor_init(&p, &cfg, &cat, D, dm, ds) == RTR_OK);
    p.token_scale = 2.0f;
    int K = p.n_pairs;
    float *want = malloc(sizeof *want * 2 * (size_t)N * K), *pc = NULL, *tok = NULL;
    CHECK(rtr_predictor_score_backend(&cpu, want, want + (size_t)N * K, &p, emb, N, 0) == RTR_OK);
    int64_t n = 0;
    rtr_status st = rtr_predictor_score_shard(dut, &n, &pc, &tok, &p, path, 3001); /* 7 chunks, the last partial */
    CHECK_MSG(st == RTR_OK && n == N, "%s", rtr_last_error());
    size_t bad = 0;
    for (size_t i = 0; st == RTR_OK && i < (size_t)N * K; i++) {
        bad += !(fabsf(pc[i] - want[i]) <= 1e-5f + 1e-4f * fabsf(want[i]));
        bad += !(fabsf(tok[i] - want[(size_t)N * K + i]) <= 1e-5f + 1e-4f * fabsf(want[(size_t)N * K + i]));
    }
    CHECK_MSG(bad == 0, "%zu scores differ", bad);
    printf("%s scoring a %d-query shard streamed in chunks of 3001, against the CPU\n", bad ? "FAIL" : "ok  ", N);
    free(pc), free(tok);

    /* the second HDF5 chunk (rows 16384 ..) is corrupt: the stream stops there */
    CHECK(corrupt_chunk(path, 1));
    pc = tok = (float *)&n; /* must come back NULL */
    st = rtr_predictor_score_shard(dut, &n, &pc, &tok, &p, path, 3001);
    CHECK(st == RTR_ERR_FORMAT && pc == NULL && tok == NULL);
    CHECK_MSG(strstr(rtr_last_error(), path) && strstr(rtr_last_error(), "rows 15005 to 18005"), "%s", rtr_last_error());
    CHECK_MSG(!strstr(rtr_last_error() + strlen(path) + 1, path), "the file named once: %s", rtr_last_error());
    printf("%s a shard corrupt mid-stream: %s\n", st == RTR_ERR_FORMAT ? "ok  " : "FAIL", rtr_last_error());

    rtr_predictor_free(&p);
    rtr_catalog_free(&cat);
    free(emb), free(dm), free(ds), free(want), free(path);
    if (dir) rtr_remove_tree(dir);
}

int main(void) {
    static const test_case tests[] = {T(test_path), T(test_errors_mid_stream),
                                      T(test_score_shard)};
    rtr_backend duts[2];
    int n_duts = 0, rc = 0;
    if (rtr_backend_cpu_open(&cpu) != RTR_OK || rtr_backend_emu_open(&duts[n_duts++]) != RTR_OK) {
        fprintf(stderr, "cannot open the backends: %s\n", rtr_last_error());
        return 1;
    }
#ifdef RTR_WITH_CUDA
    if (rtr_backend_cuda_open(&duts[n_duts], 0) == RTR_OK) n_duts++;
    else printf("no GPU (%s): cuda-emu only\n", rtr_last_error());
#endif
    for (int d = 0; d < n_duts; d++) {
        dut = &duts[d];
        printf("== %s (%s) against %s\n", dut->iface->name, dut->device, cpu.device);
        int r = test_run_all_(tests, (int)(sizeof tests / sizeof *tests));
        if (r) rc = r;
        rtr_backend_free(dut);
    }
    rtr_backend_free(&cpu);
    return rc;
}
