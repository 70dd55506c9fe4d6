/* The kNN router's search (src/eval/metrics.c over src/eval/knn.c): exact up
 * to the threshold (the same table as before the index existed); above it an
 * inverted-file index, exercised here with the threshold lowered: every list
 * probed gives the exact table, the calibrated probes reach their recall
 * target and stay close to it, one probe changes the table (so the index is
 * really what searched), and neighbours missing from probed lists that hold
 * fewer than k rows are left out, not read. */
#include "eval/knn.h"
#include "rtr/metrics.h"
#include "test.h"

#include <math.h>
#include <string.h>

enum { NT = 3000, NQ = 300, DIM = 32, KP = 4, NN = 10, CENTRES = 40 };

static float train_emb[NT * DIM], query_emb[NQ * DIM], correct[NT * KP], cost[NT * KP];

/* Unit rows around CENTRES random centres; outcomes follow the centre. */
static void make_rows(void) {
    static float centre[CENTRES * DIM];
    for (int i = 0; i < CENTRES * DIM; i++) centre[i] = (float)test_nrand();
    for (int set = 0; set < 2; set++) {
        int n = set ? NQ : NT;
        float *x = set ? query_emb : train_emb;
        for (int i = 0; i < n; i++) {
            int c = (int)(test_urand() * CENTRES);
            double s = 0;
            for (int t = 0; t < DIM; t++) x[i * DIM + t] = centre[c * DIM + t] + (float)(0.8 * test_nrand()), s += (double)x[i * DIM + t] * x[i * DIM + t];
            for (int t = 0; t < DIM; t++) x[i * DIM + t] /= (float)sqrt(s);
            for (int j = 0; !set && j < KP; j++) {
                bool missing = test_urand() < 0.1;
                correct[i * KP + j] = missing ? NAN : test_urand() < (double)((c + j) % 5) / 5 ? 1.0f : 0.0f;
                cost[i * KP + j] = missing ? NAN : (float)(100 * j + c + test_urand());
            }
        }
    }
}

static double max_diff(const float *a, const float *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(a[i]) != isnan(b[i])) return INFINITY;
        if (!isnan(a[i]) && fabs(a[i] - b[i]) > m) m = fabs(a[i] - b[i]);
    }
    return m;
}

static void test_router_search(void) {
    make_rows();
    static float p0[NQ * KP], c0[NQ * KP], p[NQ * KP], c[NQ * KP];
    rtr_knn_info info;
    /* below the threshold: exact, and what the public call gives */
    CHECK(rtr_router_knn_table(p0, c0, query_emb, NQ, train_emb, correct, cost, NT, DIM, KP, NN) == RTR_OK);
    CHECK(rtr_router_knn_table_info(p, c, &info, query_emb, NQ, train_emb, correct, cost, NT, DIM, KP, NN) == RTR_OK);
    CHECK(info.exact && info.exact_max == 50000 && info.lists == 0 && info.recall == 1);
    CHECK(!memcmp(p, p0, sizeof p) && !memcmp(c, c0, sizeof c));

    /* threshold lowered, every list probed: the exact table */
    knn_params prm = knn_default_params();
    prm.exact_max = 100, prm.lists = 25, prm.nprobe = 25;
    CHECK(knn_router_table(p, c, query_emb, NQ, train_emb, correct, cost, NT, DIM, KP, NN, &prm, &info) == RTR_OK);
    CHECK(!info.exact && info.exact_max == 100 && info.lists == 25 && info.nprobe == 25);
    CHECK_MSG(info.recall > 0.999, "every list probed: recall %g", info.recall);
    double dp = max_diff(p, p0, NQ * KP), dc = max_diff(c, c0, NQ * KP);
    CHECK_MSG(dp < 1e-6 && dc < 1e-3, "all lists probed vs exact: %g %g", dp, dc);

    /* calibrated probes: fewer than every list, recall at its target, the table near the exact one */
    prm.lists = 0, prm.nprobe = 0;
    CHECK(knn_router_table(p, c, query_emb, NQ, train_emb, correct, cost, NT, DIM, KP, NN, &prm, &info) == RTR_OK);
    double mean_dp = 0;
    for (int i = 0; i < NQ * KP; i++) mean_dp += fabs(p[i] - p0[i]) / (NQ * KP);
    fprintf(stderr, "  index: %d lists, %d probed, calibrated recall@%d %.3f; mean |p - exact p| %.4f\n", info.lists,
            info.nprobe, NN, info.recall, mean_dp);
    CHECK(!info.exact && info.lists > 50 && info.nprobe >= 1 && info.nprobe < info.lists);
    CHECK(info.recall >= 0.97);
    CHECK(mean_dp < 0.02);

    /* one probe: really the index (the table moves), and lists shorter than
     * NN leave padding that is skipped: every entry stays a mean of outcomes */
    prm.lists = 600, prm.nprobe = 1;
    CHECK(knn_router_table(p, c, query_emb, NQ, train_emb, correct, cost, NT, DIM, KP, NN, &prm, &info) == RTR_OK);
    CHECK(!info.exact && info.nprobe == 1 && info.recall < 0.97);
    CHECK(max_diff(p, p0, NQ * KP) > 0.05);
    for (int i = 0; i < NQ * KP; i++) CHECK(p[i] >= 0 && p[i] <= 1 && c[i] >= 0 && c[i] < 100 * KP + CENTRES + 1);
}

TEST_MAIN(T(test_router_search))
