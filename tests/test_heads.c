/* Tests of the fused concat-MLP heads: the fused forward equals a naive
 * double-precision MLP over the explicit concatenation [e_q; d_m; d_s; u_m; u_s],
 * and every analytic gradient (rtr_heads_loss, rtr_heads_backward's dA/dC/dw2/db2, and
 * the full parameter gradient of W_q, W_m, W_s, b1, w2, b2, u_m, u_s for both
 * heads) matches central finite differences at awkward sizes; the host
 * step's one-pass backward equals rtr_heads_backward. */
#include "rtr/ops.h"
#include "predictor/predictor_int.h"
#include "test.h"

#include <string.h>

static uint64_t rng_state = 12345;
static float frand(void) { /* uniform in [-1, 1] */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rng_state >> 11) / 4503599627370496.0 - 1.0);
}
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * frand();
}

/* 3 models x 2 strategies with 5 of the 6 pairs: pairs do not cover a grid. */
static const char *CATALOG =
    "{\"models\":[{\"name\":\"m0\"},{\"name\":\"m1\"},{\"name\":\"m2\"}],"
    "\"strategies\":[{\"name\":\"s0\"},{\"name\":\"s1\"}],"
    "\"pairs\":[[\"m0\",\"s0\"],[\"m0\",\"s1\"],[\"m1\",\"s1\"],[\"m2\",\"s0\"],[\"m2\",\"s1\"]]}";

/* A small predictor with random parameters (D=5, H=7, U=3). */
static void make_predictor(rtr_predictor *p, int D, int H, int U, int token_target) {
    rtr_catalog cat;
    CHECK(rtr_catalog_parse_json(&cat, CATALOG, "test") == RTR_OK);
    float dm[3 * 16], ds[2 * 16];
    fill(dm, sizeof dm / sizeof *dm, 0.5f);
    fill(ds, sizeof ds / sizeof *ds, 0.5f);
    rtr_train_params cfg = rtr_train_default_params();
    cfg.hidden = H, cfg.learn_dim = U, cfg.token_target = token_target, cfg.seed = 7;
    CHECK(rtr_predictor_init(p, &cfg, &cat, D, dm, ds) == RTR_OK);
    rtr_catalog_free(&cat);
    fill(p->params, p->n_trainable, 0.6f); /* larger than init: more active units, nonzero b1/b2 */
}

/* The paper's MLP written out: x = [e_q; d_m; d_s; u_m; u_s], h = relu(W1 x + b1). */
static double naive_head(const rtr_predictor *p, int h, const float *e, int k) {
    const rtr_head *hd = &p->head[h];
    int D = p->D, U = p->U, R = D + U, m = p->pair_model[k], s = p->pair_strategy[k];
    double x[5 * 16], out = hd->b2[0];
    int n = 0;
    for (int i = 0; i < D; i++) x[n++] = e[i];
    for (int i = 0; i < D; i++) x[n++] = p->d_model[m * D + i];
    for (int i = 0; i < D; i++) x[n++] = p->d_strategy[s * D + i];
    for (int i = 0; i < U; i++) x[n++] = p->u_model[m * U + i];
    for (int i = 0; i < U; i++) x[n++] = p->u_strategy[s * U + i];
    for (int j = 0; j < p->H; j++) {
        /* row j of W1 = [W_q | W_m[:, :D] | W_s[:, :D] | W_m[:, D:] | W_s[:, D:]] */
        double a = hd->b1[j];
        int c = 0;
        for (int i = 0; i < D; i++) a += hd->W_q[j * D + i] * x[c++];
        for (int i = 0; i < D; i++) a += hd->W_m[j * R + i] * x[c++];
        for (int i = 0; i < D; i++) a += hd->W_s[j * R + i] * x[c++];
        for (int i = 0; i < U; i++) a += hd->W_m[j * R + D + i] * x[c++];
        for (int i = 0; i < U; i++) a += hd->W_s[j * R + D + i] * x[c++];
        out += hd->w2[j] * (a > 0 ? a : 0);
    }
    return out;
}

static void test_fused_equals_concat_mlp(void) {
    const int sizes[][3] = {{5, 7, 3}, {1, 1, 1}, {16, 13, 0}}; /* D, H, U */
    for (int c = 0; c < 3; c++) {
        for (int target = 0; target < 2; target++) {
            rtr_predictor p;
            make_predictor(&p, sizes[c][0], sizes[c][1], sizes[c][2], target);
            p.token_scale = 3.5f;
            int N = 9, K = p.n_pairs;
            float e[9 * 16], pc[9 * 5], tok[9 * 5];
            fill(e, (size_t)N * p.D, 1.0f);
            CHECK(rtr_predictor_score(pc, tok, &p, e, N) == RTR_OK);
            for (int n = 0; n < N; n++)
                for (int k = 0; k < K; k++) {
                    double zc = naive_head(&p, 0, e + n * p.D, k), zt = naive_head(&p, 1, e + n * p.D, k);
                    double sp = (zt > 0 ? zt : 0) + log1p(exp(-fabs(zt)));
                    double t = target == RTR_TOKENS_LOG ? expm1(sp * 3.5) : sp * 3.5;
                    CHECK_CLOSE(pc[n * K + k], 1.0 / (1.0 + exp(-zc)), 1e-6, 1e-5);
                    CHECK_CLOSE(tok[n * K + k], t, 1e-5, 1e-5);
                }
            rtr_predictor_free(&p);
        }
    }
}

static void test_score_rejects_nan(void) {
    rtr_predictor p;
    make_predictor(&p, 5, 7, 3, RTR_TOKENS_LOG);
    float e[2 * 5], pc[2 * 5], tok[2 * 5];
    fill(e, 10, 1.0f);
    e[7] = NAN;
    CHECK(rtr_predictor_score(pc, tok, &p, e, 2) == RTR_ERR_NUMERIC);
    CHECK(strstr(rtr_last_error(), "row 1") != NULL);
    rtr_predictor_free(&p);
}

/* rtr_heads_loss: gradient vs finite differences of the summed losses; NaN labels
 * give no loss and no gradient. */
static void test_loss_gradient(void) {
    enum { N = 3, K = 4 };
    float oc[N * K], ot[N * K], yc[N * K], yt[N * K], dc[N * K], dt[N * K], s1[N * K], s2[N * K];
    fill(oc, N * K, 3.0f);
    fill(ot, N * K, 3.0f);
    for (int i = 0; i < N * K; i++) yc[i] = 0.5f + 0.5f * frand(), yt[i] = 2.0f + frand();
    yc[5] = NAN, yt[2] = NAN;
    double l[2] = {0, 0};
    rtr_heads_loss(dc, dt, l, oc, ot, yc, yt, 1.0f, 1.0f, N, K);
    CHECK(dc[5] == 0.0f && dt[2] == 0.0f);
    const double eps = 1e-2;
    for (int i = 0; i < N * K; i++) {
        for (int h = 0; h < 2; h++) {
            float *o = h ? ot : oc, keep = o[i];
            double lp[2] = {0, 0}, lm[2] = {0, 0};
            o[i] = keep + (float)eps;
            rtr_heads_loss(s1, s2, lp, oc, ot, yc, yt, 1, 1, N, K);
            o[i] = keep - (float)eps;
            rtr_heads_loss(s1, s2, lm, oc, ot, yc, yt, 1, 1, N, K);
            o[i] = keep;
            double fd = (lp[h] - lm[h]) / (2 * eps);
            CHECK_CLOSE(h ? dt[i] : dc[i], fd, 2e-4, 2e-3);
        }
    }
    /* fractional label 0.5 at logit 0 is the minimum: zero gradient */
    float z = 0, y = 0.5f, d0, d1, t = 1;
    double l2[2] = {0, 0};
    rtr_heads_loss(&d0, &d1, l2, &z, &t, &y, &t, 1, 1, 1, 1);
    CHECK_CLOSE(d0, 0.0, 1e-7, 0);
    CHECK_CLOSE(l2[0], log(2.0), 1e-7, 1e-7);
}

/* L = Σ g_c·out_c + Σ g_t·out_t; rtr_heads_backward with dout = g is dL/d(A, C, w2, b2). */
static double linear_functional(const float *A, const float *C, const float *w2, const float *b2, const float *g,
                                int N, int K, int H) {
    float *out = malloc(sizeof(float) * 2 * N * K);
    rtr_heads_forward(out, out + N * K, A, A + N * H, C, C + K * H, w2, b2, w2 + H, b2 + 1, N, K, H);
    double L = 0;
    for (int i = 0; i < 2 * N * K; i++) L += (double)g[i] * out[i];
    free(out);
    return L;
}

static void test_backward_dA_dC(void) {
    enum { N = 3, K = 5, H = 7 };
    float A[2 * N * H], C[2 * K * H], w2[2 * H], b2[2], g[2 * N * K];
    fill(A, 2 * N * H, 1.0f);
    fill(C, 2 * K * H, 1.0f);
    fill(w2, 2 * H, 1.0f);
    fill(b2, 2, 1.0f);
    fill(g, 2 * N * K, 1.0f);
    float dA[2 * N * H] = {0}, dC[2 * K * H] = {0}, dw2[2 * H] = {0}, db2[2] = {0};
    rtr_heads_backward(dA, dA + N * H, dC, dC + K * H, dw2, db2, dw2 + H, db2 + 1, g, g + N * K, A, A + N * H, C,
                   C + K * H, w2, w2 + H, N, K, H);
    struct { float *x, *dx; int n; const char *name; } blocks[] = {
        {A, dA, 2 * N * H, "A"}, {C, dC, 2 * K * H, "C"}, {w2, dw2, 2 * H, "w2"}, {b2, db2, 2, "b2"}};
    const float eps = 1e-3f;
    int checked = 0;
    for (int b = 0; b < 4; b++)
        for (int i = 0; i < blocks[b].n; i++) {
            float keep = blocks[b].x[i];
            blocks[b].x[i] = keep + eps;
            double lp = linear_functional(A, C, w2, b2, g, N, K, H);
            blocks[b].x[i] = keep - eps;
            double lm = linear_functional(A, C, w2, b2, g, N, K, H);
            blocks[b].x[i] = keep;
            /* a perturbation across a ReLU kink breaks the difference quotient;
             * such entries are skipped, the others must agree tightly */
            bool kink = false;
            if (b < 2) {
                int head = b == 0 ? i / (N * H) : i / (K * H), j = i % H;
                const float *other = b == 0 ? C + head * K * H : A + head * N * H;
                int cnt = b == 0 ? K : N;
                for (int r = 0; r < cnt; r++) kink |= fabsf(keep + other[r * H + j]) < 2 * eps;
            }
            if (kink) continue;
            CHECK_MSG(fabs(blocks[b].dx[i] - (lp - lm) / (2 * eps)) <= 2e-3 + 2e-3 * fabs(blocks[b].dx[i]),
                      "d%s[%d]: %g vs fd %g", blocks[b].name, i, blocks[b].dx[i], (lp - lm) / (2 * eps));
            checked++;
        }
    CHECK(checked > 2 * N * H); /* the kink filter did not hide the test */
    /* accumulation: a second call doubles the gradients */
    float dA1 = dA[4], dC1 = dC[9], dw1 = dw2[3];
    rtr_heads_backward(dA, dA + N * H, dC, dC + K * H, dw2, db2, dw2 + H, db2 + 1, g, g + N * K, A, A + N * H, C,
                   C + K * H, w2, w2 + H, N, K, H);
    CHECK_CLOSE(dA[4], 2 * dA1, 1e-6, 1e-6);
    CHECK_CLOSE(dC[9], 2 * dC1, 1e-6, 1e-6);
    CHECK_CLOSE(dw2[3], 2 * dw1, 1e-6, 1e-6);
}

/* The host step's one-pass backward (rtr_heads_backward_rows_) equals the
 * reference on awkward sizes (H not a multiple of the vector width), with
 * unlabelled (zero) entries, accumulating onto what dA, dC and db2 hold. */
static void test_backward_rows_equal(void) {
    enum { N = 6, K = 5, H = 37 };
    float A[2 * N * H], C[2 * K * H], w2[2 * H], g[2 * N * K];
    float dA[2][2 * N * H], dC[2][2 * K * H], dw2[2][2 * H], db2[2][2];
    fill(A, 2 * N * H, 1.0f);
    fill(C, 2 * K * H, 1.0f);
    fill(w2, 2 * H, 1.0f);
    fill(g, 2 * N * K, 1.0f);
    for (int i = 0; i < 2 * N * K; i += 4) g[i] = 0.0f;
    fill(dA[0], 2 * N * H, 0.5f);
    fill(dC[0], 2 * K * H, 0.5f);
    fill(db2[0], 2, 0.5f);
    memset(dw2[0], 0, sizeof dw2[0]); /* the reference adds its dw2 sums in one go: equal from zero */
    memcpy(dA[1], dA[0], sizeof dA[0]), memcpy(dC[1], dC[0], sizeof dC[0]);
    memcpy(dw2[1], dw2[0], sizeof dw2[0]), memcpy(db2[1], db2[0], sizeof db2[0]);
    rtr_heads_backward(dA[0], dA[0] + N * H, dC[0], dC[0] + K * H, dw2[0], db2[0], dw2[0] + H, db2[0] + 1, g,
                       g + N * K, A, A + N * H, C, C + K * H, w2, w2 + H, N, K, H);
    rtr_heads_backward_rows_(dA[1], dA[1] + N * H, dC[1], dC[1] + K * H, dw2[1], db2[1], dw2[1] + H, db2[1] + 1, g,
                             g + N * K, A, A + N * H, C, C + K * H, w2, w2 + H, N, K, H);
    struct { const float *ref, *got; int n; const char *name; } out[] = {
        {dA[0], dA[1], 2 * N * H, "dA"}, {dC[0], dC[1], 2 * K * H, "dC"}, {dw2[0], dw2[1], 2 * H, "dw2"},
        {db2[0], db2[1], 2, "db2"}};
    for (int b = 0; b < 4; b++) {
        int bad = 0;
        for (int i = 0; i < out[b].n; i++) bad += out[b].got[i] != out[b].ref[i];
        CHECK_MSG(bad == 0, "%s: %d of %d entries differ from rtr_heads_backward", out[b].name, bad, out[b].n);
    }
}

typedef struct { const char *name; float *x; size_t n; } param_block;

/* Every parameter block of the predictor, both heads: analytic gradient of
 * mean BCE + mean token MSE vs central differences. */
static void test_parameter_gradients(void) {
    enum { N = 3 };
    rtr_predictor p;
    make_predictor(&p, 5, 7, 3, RTR_TOKENS_RAW);
    int K = p.n_pairs;
    float e[N * 5], yc[N * 5], yt[N * 5];
    fill(e, N * 5, 1.0f);
    for (int i = 0; i < N * K; i++) yc[i] = (i % 3) ? (float)(i % 2) : 0.25f, yt[i] = 1.5f + frand();
    yc[4] = NAN, yt[7] = NAN;
    rtr_train_data d = {.n = N, .D = p.D, .K = K, .emb = e, .correct = yc, .tokens = yt};
    float *grad = malloc(sizeof(float) * p.n_trainable), *scratch = malloc(sizeof(float) * p.n_trainable);
    double l0[2];
    CHECK(rtr_predictor_batch_grad_(&p, &d, grad, l0) == RTR_OK);
    CHECK(l0[0] > 0 && l0[1] > 0);

    param_block blocks[16];
    int nb = 0;
    for (int h = 0; h < 2; h++) {
        rtr_head *hd = &p.head[h];
        size_t R = (size_t)p.D + p.U;
        blocks[nb++] = (param_block){h ? "t.W_q" : "c.W_q", hd->W_q, (size_t)p.H * p.D};
        blocks[nb++] = (param_block){h ? "t.W_m" : "c.W_m", hd->W_m, (size_t)p.H * R};
        blocks[nb++] = (param_block){h ? "t.W_s" : "c.W_s", hd->W_s, (size_t)p.H * R};
        blocks[nb++] = (param_block){h ? "t.b1" : "c.b1", hd->b1, (size_t)p.H};
        blocks[nb++] = (param_block){h ? "t.w2" : "c.w2", hd->w2, (size_t)p.H};
        blocks[nb++] = (param_block){h ? "t.b2" : "c.b2", hd->b2, 1};
    }
    blocks[nb++] = (param_block){"u_m", p.u_model, (size_t)p.n_models * p.U};
    blocks[nb++] = (param_block){"u_s", p.u_strategy, (size_t)p.n_strategies * p.U};
    const float eps = 2e-3f;
    for (int b = 0; b < nb; b++) {
        int bad = 0, nonzero = 0;
        for (size_t i = 0; i < blocks[b].n; i++) {
            float keep = blocks[b].x[i];
            double lp[2], lm[2];
            blocks[b].x[i] = keep + eps;
            rtr_predictor_batch_grad_(&p, &d, scratch, lp);
            blocks[b].x[i] = keep - eps;
            rtr_predictor_batch_grad_(&p, &d, scratch, lm);
            blocks[b].x[i] = keep;
            double fd = (lp[0] + lp[1] - lm[0] - lm[1]) / (2 * eps);
            float g = grad[blocks[b].x + i - p.params];
            nonzero += g != 0.0f;
            if (fabs(g - fd) > 2e-3 + 1e-2 * fabs(fd)) {
                bad++;
                fprintf(stderr, "  %s[%zu]: analytic %g vs fd %g\n", blocks[b].name, i, g, fd);
            }
        }
        CHECK_MSG(bad == 0, "%s: %d of %zu entries disagree", blocks[b].name, bad, blocks[b].n);
        CHECK_MSG(nonzero > 0, "%s: gradient is all zero", blocks[b].name);
    }
    free(grad);
    free(scratch);
    rtr_predictor_free(&p);
}

TEST_MAIN(T(test_fused_equals_concat_mlp), T(test_score_rejects_nan), T(test_loss_gradient),
          T(test_backward_dA_dC), T(test_backward_rows_equal), T(test_parameter_gradients))
