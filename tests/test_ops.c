/* Encoder ops: MPNet's relative position buckets against values computed by
 * transformers' MPNet, and the faster CPU paths (src/backend/ops_cpu.c) against the
 * plain references (src/ref/encoder.c) on seeded random inputs at awkward shapes,
 * with padded rows and sentinels around the output. */
#include "rtr/ops.h"
#include "backend/ops_cpu.h"
#include "test.h"

#include <cblas.h>
#include <string.h>

void openblas_set_num_threads(int num_threads);

static uint32_t rng = 12345;
static float frand(void) { /* uniform in [-1, 1] */
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / (float)(1 << 23) - 1.0f;
}

static void test_buckets(void) {
    /* transformers' bucket changes at |i-j| = 1..8, 12, 16, 23, 32, 46, 64, 91 */
    static const int edges[] = {12, 16, 23, 32, 46, 64, 91};
    int bad = 0;
    for (int n = -399; n <= 399; n++) {
        int m = n < 0 ? -n : n, want = m < 8 ? m : 8;
        for (int e = 0; e < 7 && m >= 8; e++) want += m >= edges[e];
        if (want > 15) want = 15;
        want += n < 0 ? 16 : 0;
        int i = n > 0 ? n : 0, j = i - n;
        if (rtr_relative_position_bucket(i, j, 32, 128) != want && bad++ < 5)
            fprintf(stderr, "bucket(%d,%d) = %d, want %d\n", i, j, rtr_relative_position_bucket(i, j, 32, 128), want);
    }
    CHECK(bad == 0);
    float table[32 * 2], bias[2 * 5 * 5];
    for (int k = 0; k < 64; k++) table[k] = (float)k;
    rtr_position_bias_forward(bias, table, 5, 2, 32, 128);
    CHECK(bias[(1 * 5 + 4) * 5 + 0] == table[4 * 2 + 1]);  /* head 1, i=4, j=0: bucket 4 */
    CHECK(bias[(0 * 5 + 0) * 5 + 3] == table[19 * 2 + 0]); /* head 0, i=0, j=3: bucket 16+3 */
}

/* max |a-b| / (1e-5 + |b|)-style check with NaN failing */
static int close_all(const float *a, const float *b, size_t n, float atol, float rtol) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= atol + rtol * fabsf(b[i]))) {
            fprintf(stderr, "  [%zu] %.8g vs %.8g\n", i, a[i], b[i]);
            return 0;
        }
    return 1;
}

static void attention_case(int B, int T, int C, int NH, int with_bias) {
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *qkv = malloc(nq * sizeof *qkv), *bias = malloc((size_t)NH * T * T * sizeof *bias);
    float *ref = malloc(no * sizeof *ref), *fast = malloc((no + 8) * sizeof *fast);
    float *att_r = malloc(na * sizeof *att_r), *att_f = malloc(na * sizeof *att_f);
    int32_t *lens = malloc((size_t)B * sizeof *lens);
    for (size_t i = 0; i < nq; i++) qkv[i] = 2.0f * frand();
    for (int i = 0; i < NH * T * T; i++) bias[i] = frand();
    for (int b = 0; b < B; b++) lens[b] = b == 0 ? T : 1 + (int)((frand() + 1.0f) * 0.5f * (T - 1));
    for (int i = 0; i < 8; i++) fast[no + i] = 777.0f; /* sentinels */
    rtr_attention_forward(ref, att_r, qkv, with_bias ? bias : NULL, lens, B, T, C, NH);
    attention_forward_cpu(fast, att_f, qkv, with_bias ? bias : NULL, lens, B, T, C, NH);
    CHECK_MSG(close_all(fast, ref, no, 1e-5f, 1e-4f), "attention B=%d T=%d C=%d NH=%d bias=%d", B, T, C, NH,
              with_bias);
    int sentinels = 1;
    for (int i = 0; i < 8; i++) sentinels &= fast[no + i] == 777.0f;
    CHECK(sentinels);
    /* padded query rows are zero in both */
    int zeros = 1;
    for (int b = 0; b < B; b++)
        for (int t = lens[b]; t < T; t++)
            for (int c = 0; c < C; c++) zeros &= fast[((size_t)b * T + t) * C + c] == 0.0f;
    CHECK(zeros);
    free(qkv); free(bias); free(ref); free(fast); free(att_r); free(att_f); free(lens);
}

static void test_attention_fast(void) {
    openblas_set_num_threads(1);
    attention_case(1, 1, 4, 1, 0);
    attention_case(3, 7, 12, 3, 1);
    attention_case(2, 33, 64, 4, 1);
    attention_case(5, 17, 96, 12, 0);
    attention_case(2, 130, 384, 12, 1);
}

static void test_gelu_fast(void) {
    int N = 7, C = 1031;
    float *x = malloc(sizeof *x * (size_t)N * C), *b = malloc(sizeof *b * (size_t)C);
    float *ref = malloc(sizeof *ref * (size_t)N * C), *fast = malloc(sizeof *fast * (size_t)N * C);
    for (int i = 0; i < N * C; i++) x[i] = 8.0f * frand(); /* covers the tails of erf */
    for (int c = 0; c < C; c++) b[c] = frand();
    x[0] = 0.0f; x[1] = -100.0f; x[2] = 100.0f;
    rtr_bias_gelu_forward(ref, x, b, N, C);
    bias_gelu_forward_cpu(fast, x, b, N, C);
    CHECK(close_all(fast, ref, (size_t)N * C, 2e-7f, 2e-6f));
    bias_gelu_forward_cpu(x, x, b, N, C); /* in place */
    CHECK(memcmp(x, fast, sizeof *x * (size_t)N * C) == 0);
    /* NaN in, NaN out, as the reference (the sanitizer build also checks the
     * fast exp takes no undefined integer conversion or shift on the way) */
    float xn[3] = {NAN, -NAN, INFINITY}, bn[3] = {0}, on[3], rn[3];
    bias_gelu_forward_cpu(on, xn, bn, 1, 3);
    rtr_bias_gelu_forward(rn, xn, bn, 1, 3);
    CHECK(isnan(on[0]) && isnan(on[1]) && isnan(rn[0]) && on[2] == rn[2]);
    free(x); free(b); free(ref); free(fast);
}

/* The fast residual LayerNorm against the reference, in place on the
 * residual as the encoder calls it, at widths that are not a multiple of
 * the vector length; a row with a mean far from 0 checks that the variance
 * is taken about the mean. */
static void test_residual_layernorm_fast(void) {
    static const int widths[] = {1, 7, 384, 769};
    for (int k = 0; k < 4; k++) {
        int N = 5, C = widths[k];
        size_t n = (size_t)N * C;
        float *x = malloc(sizeof *x * n), *r = malloc(sizeof *r * n), *ref = malloc(sizeof *ref * n);
        float *fast = malloc(sizeof *fast * (n + 8)), *p = malloc(sizeof *p * 3 * (size_t)C);
        for (size_t i = 0; i < n; i++) x[i] = 4.0f * frand() + (i / C == 3 ? 10.0f : 0.0f), r[i] = frand();
        for (int i = 0; i < 3 * C; i++) p[i] = frand();
        for (int i = 0; i < 8; i++) fast[n + i] = 777.0f; /* sentinels */
        memcpy(fast, r, sizeof *r * n);
        rtr_residual_layernorm_forward(ref, x, p, r, p + C, p + 2 * C, 1e-5f, N, C);
        residual_layernorm_forward_cpu(fast, x, p, fast, p + C, p + 2 * C, 1e-5f, N, C);
        CHECK_MSG(close_all(fast, ref, n, 2e-5f, 1e-4f), "residual layernorm C=%d", C);
        int sentinels = 1;
        for (int i = 0; i < 8; i++) sentinels &= fast[n + i] == 777.0f;
        CHECK(sentinels);
        free(x); free(r); free(ref); free(fast); free(p);
    }
}

static void test_reference_ops(void) {
    /* mean pooling over the real tokens only, then unit norm */
    float inp[2 * 3 * 2] = {1, 0, 3, 0, 100, 100, /* row 0: len 2 */ 0, 2, 0, 0, 0, 0 /* row 1: len 1 */};
    int32_t lens[2] = {2, 1};
    float out[4];
    rtr_mean_pool_l2norm_forward(out, inp, lens, 2, 3, 2);
    CHECK_CLOSE(out[0], 1.0, 1e-7, 0);
    CHECK_CLOSE(out[1], 0.0, 1e-7, 0);
    CHECK_CLOSE(out[3], 1.0, 1e-7, 0);
    /* residual + bias + LayerNorm: constant row gives the LN bias */
    float a[3] = {1, 2, 3}, r[3] = {2, 1, 0}, bias[3] = {0.5f, 0.5f, 0.5f}, w[3] = {1, 1, 1}, lb[3] = {0, 1, 2};
    rtr_residual_layernorm_forward(r, a, bias, r, w, lb, 1e-12f, 1, 3);
    CHECK(r[0] == 0.0f && r[1] == 1.0f && r[2] == 2.0f);
}

TEST_MAIN(T(test_buckets), T(test_attention_fast), T(test_gelu_fast), T(test_residual_layernorm_fast),
          T(test_reference_ops))
