/* The default router (rtr_stack_table): on a synthetic corpus where the
 * outcome depends on the query embedding, a network estimate that is
 * useless is blended away (kNN chosen on validation, test log-loss better),
 * a good one is kept as it is (one-standard-error rule), too few
 * validation rows keep the network, and a dataset absent from training
 * gets the pairs' overall training means. */
#include "rtr/metrics.h"
#include "rtr/predictor.h"
#include "test.h"

#include <string.h>

enum { D = 8, K = 3, NT = 800, NE = 400 };

static float emb[NT * D], temb[NE * D], y[NT * K], ty[NT * K], cst[NT * K], tcst[NE * K];
static float truth[NT * K], ttruth[NE * K];
static const char *ds[NT], *tds[NE];
static uint64_t val[NT];
static int64_t nval;

static void make(void) {
    static bool done;
    if (done) return;
    done = true;
    float dir[K * D];
    test_unit_rows(dir, K, D);
    test_unit_rows(emb, NT, D);
    test_unit_rows(temb, NE, D);
    for (int i = 0; i < NT + NE; i++) {
        const float *e = i < NT ? emb + i * D : temb + (i - NT) * D;
        for (int j = 0; j < K; j++) {
            double a = 0;
            for (int t = 0; t < D; t++) a += dir[j * D + t] * e[t];
            double p = 1 / (1 + exp(-6 * a));
            float lab = test_urand() < p ? 1.0f : 0.0f;
            if (i < NT) truth[i * K + j] = (float)p, y[i * K + j] = lab, cst[i * K + j] = (float)(j + 1);
            else ttruth[(i - NT) * K + j] = (float)p, ty[(i - NT) * K + j] = lab, tcst[(i - NT) * K + j] = (float)(j + 1);
        }
        if (i < NT) ds[i] = i % 2 ? "a" : "b";
        else tds[i - NT] = "a";
    }
    nval = 0;
    for (int i = 0; i < NT; i += 5) val[nval++] = rtr_embedding_hash(emb + i * D, D); /* 160 validation rows */
}

static double logloss(const float *p, const float *yy, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) {
        double q = fmin(fmax(p[i], 1e-7), 1 - 1e-7);
        s -= yy[i] * log(q) + (1 - yy[i]) * log(1 - q);
    }
    return s / n;
}

static void test_useless_network_blended_away(void) {
    make();
    static float flat[NT * K], tflat[NE * K], p[NE * K], c[NE * K];
    for (int i = 0; i < NT * K; i++) flat[i] = 0.5f;
    for (int i = 0; i < NE * K; i++) tflat[i] = 0.5f;
    rtr_stack_report rep;
    CHECK(rtr_stack_table(p, c, &rep, tflat, tcst, temb, tds, NE, flat, emb, ds, y, cst, NT, val, nval, D, K, NULL) ==
          RTR_OK);
    CHECK(rep.n_val == nval && rep.n_unseen == 0);
    CHECK_MSG(rep.chosen == RTR_STACK_KNN || rep.chosen == RTR_STACK_ALL, "chose %s", rtr_stack_name(rep.chosen));
    CHECK(rep.cv_logloss[rep.chosen] < rep.cv_logloss[RTR_STACK_MLP] - 0.05);
    double before = logloss(tflat, ty, NE * K), after = logloss(p, ty, NE * K);
    fprintf(stderr, "  useless network: %s, test log-loss %.4f -> %.4f\n", rtr_stack_name(rep.chosen), before, after);
    CHECK(after < before - 0.05);
    CHECK(!memcmp(c, tcst, sizeof c)); /* costs are the network's */
}

static void test_good_network_kept(void) {
    make();
    static float p[NE * K], c[NE * K];
    rtr_stack_report rep;
    CHECK(rtr_stack_table(p, c, &rep, ttruth, tcst, temb, tds, NE, truth, emb, ds, y, cst, NT, val, nval, D, K, NULL) ==
          RTR_OK);
    /* the true probabilities cannot be beaten beyond the noise of 160 rows */
    CHECK_MSG(rep.chosen == RTR_STACK_MLP, "chose %s (cv %.4f vs %.4f)", rtr_stack_name(rep.chosen),
              rep.cv_logloss[rep.chosen], rep.cv_logloss[RTR_STACK_MLP]);
    CHECK(!memcmp(p, ttruth, sizeof p));
}

static void test_few_validation_rows_keep_network(void) {
    make();
    static float flat[NT * K], p[NE * K], c[NE * K];
    for (int i = 0; i < NT * K; i++) flat[i] = 0.5f;
    rtr_stack_report rep;
    CHECK(rtr_stack_table(p, c, &rep, flat, tcst, temb, tds, NE, flat, emb, ds, y, cst, NT, val, 9, D, K, NULL) ==
          RTR_OK);
    CHECK(rep.n_val == 9 && rep.chosen == RTR_STACK_MLP && isnan(rep.cv_logloss[0]));
    CHECK(p[0] == 0.5f);
}

static void test_unseen_dataset_guarded(void) {
    make();
    static float p[NE * K], c[NE * K], mp[NE * K];
    static const char *other[NE];
    for (int i = 0; i < NE; i++) other[i] = i < 10 ? "new" : "a";
    for (int i = 0; i < NE * K; i++) mp[i] = ttruth[i];
    mp[5 * K + 1] = NAN; /* an excluded pair stays excluded */
    rtr_stack_report rep;
    CHECK(rtr_stack_table(p, c, &rep, mp, tcst, temb, other, NE, truth, emb, ds, y, cst, NT, val, nval, D, K, NULL) ==
          RTR_OK);
    CHECK(rep.n_unseen == 10);
    for (int j = 0; j < K; j++) {
        double m = 0;
        for (int i = 0; i < NT; i++) m += y[i * K + j];
        CHECK_CLOSE(p[3 * K + j], m / NT, 1e-6, 0);
        CHECK_CLOSE(c[3 * K + j], j + 1, 1e-6, 0);
    }
    CHECK(isnan(p[5 * K + 1]));
    CHECK(p[20 * K] == ttruth[20 * K]); /* a seen dataset keeps its estimate */
}

TEST_MAIN(T(test_useless_network_blended_away), T(test_good_network_kept), T(test_few_validation_rows_keep_network),
          T(test_unseen_dataset_guarded))
