/* backend_suite — every op of a backend under test against the reference backend
 * (see backend_suite.h). Each case builds host inputs once, runs the op on
 * both backends through the same rtr_backend calls, and compares. */
#include "backend_suite.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtr/ops_bf16.h"
#include "rtr/predictor.h"
#include "rtr/route.h"

#define GUARD 64            /* bytes of sentinel on each side of every output */
#define SENTINEL 0xA5
#define MAX_BUFS 32

static int failures;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double urand(void) { /* [0, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static float frand(void) { return (float)(2.0 * urand() - 1.0); } /* [-1, 1) */
static int irand(int n) { return (int)(urand() * n); }

static float *frand_vec(size_t n) {
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = frand();
    return v;
}

static void fail_status(const char *what, rtr_backend *b, rtr_status st) {
    fprintf(stderr, "FAIL %s on %s: %s (%s)\n", what, b->iface->name, rtr_status_name(st), rtr_last_error());
    failures++;
}

/* ---- one backend's buffers for a case: inputs and guarded outputs ---- */
typedef struct {
    rtr_backend *b;
    void *base[MAX_BUFS];
    size_t bytes[MAX_BUFS];
    bool guarded[MAX_BUFS];
    int n;
    bool ok;
} arena;

static void arena_init(arena *a, rtr_backend *b) {
    memset(a, 0, sizeof *a);
    a->b = b;
    a->ok = true;
}

static void *arena_put(arena *a, const void *host, size_t bytes, bool guarded) {
    size_t total = bytes + (guarded ? 2 * GUARD : 0);
    unsigned char *stage = malloc(total ? total : 1);
    memset(stage, SENTINEL, total);
    if (host) memcpy(stage + (guarded ? GUARD : 0), host, bytes);
    void *dev = NULL;
    rtr_status st = rtr_backend_alloc(a->b, &dev, total);
    if (st == RTR_OK) st = rtr_backend_upload(a->b, dev, stage, total);
    free(stage);
    if (st != RTR_OK) {
        fail_status("alloc/upload", a->b, st);
        a->ok = false;
        return NULL;
    }
    a->base[a->n] = dev, a->bytes[a->n] = total, a->guarded[a->n] = guarded, a->n++;
    return (unsigned char *)dev + (guarded ? GUARD : 0);
}

/* An input (copied to the backend). */
static void *in(arena *a, const void *host, size_t bytes) { return host ? arena_put(a, host, bytes, false) : NULL; }
/* An output with guards; init (may be NULL: sentinel bytes) is its starting content. */
static void *out(arena *a, const void *init, size_t bytes) { return arena_put(a, init, bytes, true); }

/* Copy output `dev` back into host; false (and a failure) when a guard byte changed. */
static bool fetch(arena *a, const void *dev, void *host, size_t bytes, const char *what) {
    int i = 0;
    while (i < a->n && (unsigned char *)a->base[i] + GUARD != dev) i++;
    if (i == a->n || !a->guarded[i]) return false;
    unsigned char *stage = malloc(a->bytes[i]);
    rtr_status st = rtr_backend_download(a->b, stage, a->base[i], a->bytes[i]);
    bool ok = st == RTR_OK;
    if (!ok) fail_status(what, a->b, st);
    for (size_t j = 0; ok && j < GUARD; j++)
        if (stage[j] != SENTINEL || stage[a->bytes[i] - 1 - j] != SENTINEL) {
            fprintf(stderr, "FAIL %s on %s: guard byte %s the output overwritten\n", what, a->b->iface->name,
                    stage[j] != SENTINEL ? "before" : "after");
            failures++;
            ok = false;
        }
    memcpy(host, stage + GUARD, bytes);
    free(stage);
    return ok;
}

static void arena_free(arena *a) {
    for (int i = 0; i < a->n; i++) rtr_backend_free_mem(a->b, a->base[i]);
    a->n = 0;
}

/* |got − ref| <= atol + rtol·|ref| for every element, NaN failing. */
static void compare_f64(const char *what, const double *got, const double *ref, size_t n, double atol, double rtol) {
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs(got[i] - ref[i]);
        bool ok = !isnan(got[i]) && !isnan(ref[i]) && err <= atol + rtol * fabs(ref[i]);
        if (!isnan(err) && err > worst) worst = err;
        if (!ok && bad++ < 3) fprintf(stderr, "  %s[%zu]: %.9g vs reference %.9g\n", what, i, got[i], ref[i]);
    }
    printf("%s %-64s max |err| %.3g\n", bad ? "FAIL" : "ok  ", what, worst);
    if (bad) failures++, fprintf(stderr, "FAIL %s: %zu of %zu elements out of tolerance\n", what, bad, n);
}

static void compare_f32(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol) {
    double *g = malloc((n ? n : 1) * sizeof *g), *r = malloc((n ? n : 1) * sizeof *r);
    for (size_t i = 0; i < n; i++) g[i] = got[i], r[i] = ref[i];
    compare_f64(what, g, r, n, atol, rtol);
    free(g), free(r);
}

static void compare_i32(const char *what, const int32_t *got, const int32_t *ref, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != ref[i] && bad++ < 3) fprintf(stderr, "  %s[%zu]: %d vs reference %d\n", what, i, got[i], ref[i]);
    printf("%s %-64s exact\n", bad ? "FAIL" : "ok  ", what);
    if (bad) failures++;
}

#define CHECK_ST(expr)                                                                  \
    do {                                                                                \
        rtr_status st_ = (expr);                                                        \
        if (st_ != RTR_OK) fprintf(stderr, "FAIL %s: %s\n", #expr, rtr_last_error()), failures++; \
    } while (0)

#define CALL(a, expr)                                                   \
    do {                                                                \
        rtr_status st_ = (a)->b->iface->expr;                            \
        if (st_ == RTR_OK) st_ = rtr_backend_synchronize((a)->b);        \
        if (st_ != RTR_OK) fail_status(#expr, (a)->b, st_), (a)->ok = false; \
    } while (0)

/* ------------------------------------------------------------------ GEMM */

static void case_sgemm(rtr_backend *dut, rtr_backend *ref, rtr_gemm_precision prec, bool ta, bool tb, int M, int N,
                       int K) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = frand_vec(na), *B = frand_vec(nb), *C0 = frand_vec(nc), *res[2];
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 2; w++) {
        arena a;
        arena_init(&a, bs[w]);
        const float *dA = in(&a, A, na * 4), *dB = in(&a, B, nb * 4);
        float *dC = out(&a, C0, nc * 4);
        res[w] = malloc(nc * 4);
        rtr_backend_set_gemm_precision(bs[w], w ? prec : RTR_GEMM_F32);
        if (a.ok) CALL(&a, sgemm(a.b->ctx, ta, tb, M, N, K, 0.5f, dA, lda, dB, ldb, 0.25f, dC, ldc));
        if (a.ok) fetch(&a, dC, res[w], nc * 4, "sgemm");
        rtr_backend_set_gemm_precision(bs[w], RTR_GEMM_F32);
        arena_free(&a);
    }
    /* inputs in [-1,1]: a K-term dot product rounds by about sqrt(K)·ulp(input) */
    double atol = prec == RTR_GEMM_BF16 ? 8e-3 * sqrt(K) : prec == RTR_GEMM_F16 ? 1e-3 * sqrt(K) : 2e-6 * sqrt(K);
    char what[128];
    snprintf(what, sizeof what, "sgemm %s%s M=%d N=%d K=%d %s", ta ? "T" : "N", tb ? "T" : "N", M, N, K,
             prec == RTR_GEMM_BF16 ? "bf16" : prec == RTR_GEMM_F16 ? "fp16" : "fp32");
    compare_f32(what, res[1], res[0], nc, atol, 1e-5);
    free(A), free(B), free(C0), free(res[0]), free(res[1]);
}

/* -------------------------------------------------------------- encoder */

typedef struct {
    int B, T, C, NH;
} enc_shape;

static int32_t *random_lens(int B, int T) {
    int32_t *lens = malloc(B * sizeof *lens);
    for (int b = 0; b < B; b++) lens[b] = b == 0 ? T : b == 2 ? 0 : 1 + irand(T);
    return lens;
}

static void case_encoder(rtr_backend *dut, rtr_backend *ref, enc_shape s) {
    int B = s.B, T = s.T, C = s.C, NH = s.NH, V = 50, P = T + 2, N = B * T, nb = 32;
    size_t NC = (size_t)N * C;
    int32_t *ids = malloc(N * sizeof *ids), *pos = malloc(N * sizeof *pos), *lens = random_lens(B, T);
    for (int i = 0; i < N; i++) ids[i] = irand(V), pos[i] = irand(P);
    float *wte = frand_vec((size_t)V * C), *wpe = frand_vec((size_t)P * C), *wtt = frand_vec(C);
    float *lnw = frand_vec(C), *lnb = frand_vec(C), *bias = frand_vec(3 * C), *x = frand_vec(NC * 3);
    float *resid = frand_vec(NC), *table = frand_vec((size_t)nb * NH);
    size_t natt = (size_t)B * NH * T * T;
    float *att0 = frand_vec(natt); /* padded query rows must keep this */
    enum { EMB, EMB_NOTT, PB, BADD, ATT, ATT_P, ATT_NOB, ATT_P_NOB, GELU, RLN, NOUT };
    float *res[2][NOUT];
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 2; w++) {
        arena a;
        arena_init(&a, bs[w]);
        const int32_t *d_ids = in(&a, ids, N * 4), *d_pos = in(&a, pos, N * 4), *d_lens = in(&a, lens, B * 4);
        const float *d_wte = in(&a, wte, (size_t)V * C * 4), *d_wpe = in(&a, wpe, (size_t)P * C * 4);
        const float *d_wtt = in(&a, wtt, C * 4), *d_lnw = in(&a, lnw, C * 4), *d_lnb = in(&a, lnb, C * 4);
        const float *d_bias = in(&a, bias, 3 * C * 4), *d_x = in(&a, x, NC * 3 * 4), *d_tab = in(&a, table, nb * NH * 4);
        float *o_emb = out(&a, NULL, NC * 4), *o_emb2 = out(&a, NULL, NC * 4);
        float *o_pb = out(&a, NULL, (size_t)NH * T * T * 4), *o_badd = out(&a, NULL, NC * 3 * 4);
        float *o_att = out(&a, NULL, NC * 4), *o_p = out(&a, att0, natt * 4);
        float *o_att2 = out(&a, NULL, NC * 4), *o_p2 = out(&a, att0, natt * 4);
        float *o_gelu = out(&a, NULL, NC * 4), *o_rln = out(&a, resid, NC * 4);
        if (a.ok) {
            CALL(&a, embedding_layernorm_forward(a.b->ctx, o_emb, d_ids, d_pos, d_wte, d_wpe, d_wtt, d_lnw, d_lnb,
                                                 1e-12f, B, T, C));
            CALL(&a, embedding_layernorm_forward(a.b->ctx, o_emb2, d_ids, d_pos, d_wte, d_wpe, NULL, d_lnw, d_lnb,
                                                 1e-5f, B, T, C));
            CALL(&a, position_bias_forward(a.b->ctx, o_pb, d_tab, T, NH, nb, 128));
            CALL(&a, bias_add_forward(a.b->ctx, o_badd, d_x, d_bias, N, 3 * C));
            /* attention on the bias-added qkv, with and without the position bias */
            CALL(&a, attention_forward(a.b->ctx, o_att, o_p, o_badd, o_pb, d_lens, B, T, C, NH));
            CALL(&a, attention_forward(a.b->ctx, o_att2, o_p2, o_badd, NULL, d_lens, B, T, C, NH));
            CALL(&a, bias_gelu_forward(a.b->ctx, o_gelu, d_x, d_bias, N, C));
            /* out aliases residual, as the encoder calls it */
            CALL(&a, residual_layernorm_forward(a.b->ctx, o_rln, o_att, d_bias, o_rln, d_lnw, d_lnb, 1e-5f, N, C));
        }
        float *outs[NOUT] = {o_emb, o_emb2, o_pb, o_badd, o_att, o_p, o_att2, o_p2, o_gelu, o_rln};
        size_t sizes[NOUT] = {NC, NC, (size_t)NH * T * T, NC * 3, NC, natt, NC, natt, NC, NC};
        for (int o = 0; o < NOUT; o++) {
            res[w][o] = calloc(sizes[o], 4);
            if (a.ok) fetch(&a, outs[o], res[w][o], sizes[o] * 4, "encoder op");
        }
        arena_free(&a);
    }
    static const char *names[NOUT] = {"embedding_layernorm_forward", "embedding_layernorm_forward (no wtt)",
                                      "position_bias_forward", "bias_add_forward", "attention_forward (bias) out",
                                      "attention_forward (bias) att", "attention_forward out",
                                      "attention_forward att", "bias_gelu_forward",
                                      "residual_layernorm_forward (out = residual)"};
    size_t sizes[NOUT] = {NC, NC, (size_t)NH * T * T, NC * 3, NC, natt, NC, natt, NC, NC};
    for (int o = 0; o < NOUT; o++) {
        char what[160];
        snprintf(what, sizeof what, "%s B=%d T=%d C=%d NH=%d", names[o], B, T, C, NH);
        /* LayerNorm with eps 1e-12 divides by a small std: relative 1e-4 */
        compare_f32(what, res[1][o], res[0][o], sizes[o], 2e-5, 2e-4);
        free(res[0][o]), free(res[1][o]);
    }
    free(ids), free(pos), free(lens), free(wte), free(wpe), free(wtt), free(lnw), free(lnb), free(bias), free(x);
    free(resid), free(table), free(att0);
}

/* ------------------------------------------------------- the bf16 path */

static rtr_bf16 *bf16_vec(size_t n) {
    rtr_bf16 *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = rtr_bf16_round(frand());
    return v;
}

static float *widen_bf16(const rtr_bf16 *x, size_t n) {
    float *w = malloc((n ? n : 1) * sizeof *w);
    for (size_t i = 0; i < n; i++) w[i] = rtr_bf16_float(x[i]);
    return w;
}

/* bf16 outputs compared as floats: one rounding of the output is 2^-9
 * relative; the kernels sum in other orders than the references. */
static void compare_bf16(const char *what, const rtr_bf16 *got, const rtr_bf16 *ref, size_t n, double atol,
                         double rtol) {
    float *g = widen_bf16(got, n), *r = widen_bf16(ref, n);
    compare_f32(what, g, r, n, atol, rtol);
    free(g), free(r);
}

/* Every bf16 encoder op of dut against its reference (through ref), on
 * bf16 inputs; the flash attention also against the fp32 attention of the
 * reference path on the same (bias-added, rounded) q, k, v: the bf16 path's
 * own error. Shapes: head sizes 32, 64, 128; T past one 64-key tile (the
 * online softmax rescales) and not a multiple of it; padded and empty rows. */
static void case_encoder_bf16(rtr_backend *dut, rtr_backend *ref, enc_shape s) {
    int B = s.B, T = s.T, C = s.C, NH = s.NH, V = 50, P = T + 2, N = B * T, nb = 32;
    size_t NC = (size_t)N * C;
    int32_t *ids = malloc(N * sizeof *ids), *pos = malloc(N * sizeof *pos), *lens = random_lens(B, T);
    for (int i = 0; i < N; i++) ids[i] = irand(V), pos[i] = irand(P);
    float *wte = frand_vec((size_t)V * C), *wpe = frand_vec((size_t)P * C), *wtt = frand_vec(C);
    float *lnw = frand_vec(C), *lnb = frand_vec(C), *bias = frand_vec(3 * C), *table = frand_vec((size_t)nb * NH);
    rtr_bf16 *x = bf16_vec(NC * 3), *resid = bf16_vec(NC);
    float *pbias = malloc((size_t)NH * T * T * sizeof *pbias);
    rtr_position_bias_forward(pbias, table, T, NH, nb, 128);
    enum { EMB, ATT, ATT_NOB, GELU, RLN, NOUT };
    rtr_bf16 *res[2][NOUT];
    size_t sizes[NOUT] = {NC, NC, NC, NC, NC};
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 2; w++) {
        arena a;
        arena_init(&a, bs[w]);
        const int32_t *d_ids = in(&a, ids, N * 4), *d_pos = in(&a, pos, N * 4), *d_lens = in(&a, lens, B * 4);
        const float *d_wte = in(&a, wte, (size_t)V * C * 4), *d_wpe = in(&a, wpe, (size_t)P * C * 4);
        const float *d_wtt = in(&a, wtt, C * 4), *d_lnw = in(&a, lnw, C * 4), *d_lnb = in(&a, lnb, C * 4);
        const float *d_bias = in(&a, bias, 3 * C * 4), *d_pb = in(&a, pbias, (size_t)NH * T * T * 4);
        const rtr_bf16 *d_x = in(&a, x, NC * 3 * 2);
        rtr_bf16 *o[NOUT];
        for (int k = 0; k < NOUT; k++) o[k] = out(&a, k == RLN ? resid : NULL, sizes[k] * 2);
        if (a.ok) {
            CALL(&a, embedding_layernorm_bf16(a.b->ctx, o[EMB], d_ids, d_pos, d_wte, d_wpe, d_wtt, d_lnw, d_lnb,
                                              1e-12f, B, T, C));
            CALL(&a, attention_bf16(a.b->ctx, o[ATT], d_x, d_bias, d_pb, d_lens, B, T, C, NH));
            CALL(&a, attention_bf16(a.b->ctx, o[ATT_NOB], d_x, NULL, NULL, d_lens, B, T, C, NH));
            CALL(&a, bias_gelu_bf16(a.b->ctx, o[GELU], d_x, d_bias, N, C));
            /* out aliases residual, as the encoder calls it */
            CALL(&a, residual_layernorm_bf16(a.b->ctx, o[RLN], o[ATT], d_bias, o[RLN], d_lnw, d_lnb, 1e-5f, N, C));
        }
        for (int k = 0; k < NOUT; k++) {
            res[w][k] = calloc(sizes[k], 2);
            if (a.ok) fetch(&a, o[k], res[w][k], sizes[k] * 2, "bf16 encoder op");
        }
        arena_free(&a);
    }
    static const char *names[NOUT] = {"embedding_layernorm_bf16", "attention_bf16 (qkv bias, position bias)",
                                      "attention_bf16", "bias_gelu_bf16",
                                      "residual_layernorm_bf16 (out = residual)"};
    /* attention: p rounded to bf16 against different running maxima and
     * sums in other orders, then the output's own rounding */
    static const double atol[NOUT] = {2e-2, 8e-3, 8e-3, 4e-3, 2e-2}, rtol[NOUT] = {8e-3, 1e-2, 1e-2, 8e-3, 8e-3};
    char what[160];
    for (int k = 0; k < NOUT; k++) {
        snprintf(what, sizeof what, "%s B=%d T=%d C=%d NH=%d", names[k], B, T, C, NH);
        compare_bf16(what, res[1][k], res[0][k], sizes[k], atol[k], rtol[k]);
    }
    /* the flash kernel against the fp32 reference path on the same q, k, v */
    float *xq = malloc(NC * 3 * sizeof *xq), *o32 = malloc(NC * sizeof *o32);
    float *att = malloc((size_t)B * NH * T * T * sizeof *att);
    for (size_t i = 0; i < NC * 3; i++) xq[i] = rtr_bf16_float(rtr_bf16_round(rtr_bf16_float(x[i]) + bias[i % (3 * C)]));
    rtr_attention_forward(o32, att, xq, pbias, lens, B, T, C, NH);
    float *got = widen_bf16(res[1][ATT], NC);
    snprintf(what, sizeof what, "attention_bf16 against the fp32 attention B=%d T=%d C=%d NH=%d", B, T, C, NH);
    compare_f32(what, got, o32, NC, 1.5e-2, 1.5e-2);
    free(xq), free(o32), free(att), free(got);
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < NOUT; k++) free(res[w][k]);
    free(ids), free(pos), free(lens), free(wte), free(wpe), free(wtt), free(lnw), free(lnb), free(bias), free(table);
    free(x), free(resid), free(pbias);
}

/* pool_forward, and pool_bf16 on bf16 rows, against the references for
 * every mode with and without the normalisation; rows of full, random and
 * zero length (random_lens). C a multiple of 8 (the bf16 kernel's pieces). */
static void case_pool(rtr_backend *dut, rtr_backend *ref, int B, int T, int C) {
    size_t n = (size_t)B * T * C, no = (size_t)B * C;
    int32_t *lens = random_lens(B, T);
    float *x = frand_vec(n);
    rtr_bf16 *xh = bf16_vec(n);
    static const rtr_pool_mode modes[] = {RTR_POOL_MEAN, RTR_POOL_MEAN_SQRT_LEN, RTR_POOL_CLS};
    static const char *mode_names[] = {"mean", "mean_sqrt_len", "cls"};
    rtr_backend *bs[2] = {ref, dut};
    for (int m = 0; m < 3; m++)
        for (int norm = 0; norm < 2; norm++)
            for (int h = 0; h < 2; h++) {
                float *res[2];
                for (int w = 0; w < 2; w++) {
                    arena a;
                    arena_init(&a, bs[w]);
                    const void *d_x = h ? in(&a, xh, n * 2) : in(&a, x, n * 4);
                    const int32_t *d_lens = in(&a, lens, B * 4);
                    float *o = out(&a, NULL, no * 4);
                    if (a.ok && h) CALL(&a, pool_bf16(a.b->ctx, o, d_x, d_lens, B, T, C, modes[m], norm));
                    if (a.ok && !h) CALL(&a, pool_forward(a.b->ctx, o, d_x, d_lens, B, T, C, modes[m], norm));
                    res[w] = calloc(no, 4);
                    if (a.ok) fetch(&a, o, res[w], no * 4, h ? "pool_bf16" : "pool_forward");
                    arena_free(&a);
                }
                char what[160];
                snprintf(what, sizeof what, "%s %s%s B=%d T=%d C=%d", h ? "pool_bf16" : "pool_forward",
                         mode_names[m], norm ? " normalize" : "", B, T, C);
                compare_f32(what, res[1], res[0], no, 1e-5, 1e-4);
                free(res[0]), free(res[1]);
            }
    free(lens), free(x), free(xh);
}

/* dut's gemm_bf16 against rtr_gemm_bf16 on the host (the CPU backends have
 * no bf16 GEMM), plain and with the feed-forward's bias and GELU. */
static void case_gemm_bf16(rtr_backend *dut, int N, int IC, int OC) {
    size_t ni = (size_t)N * IC, nw = (size_t)OC * IC, no = (size_t)N * OC;
    rtr_bf16 *inp = bf16_vec(ni), *w = bf16_vec(nw), *want = malloc(no * 2), *got = malloc(no * 2);
    float *gb = frand_vec(OC);
    for (int gelu = 0; gelu < 2; gelu++) {
        rtr_gemm_bf16(want, inp, w, gelu ? gb : NULL, N, IC, OC);
        arena a;
        arena_init(&a, dut);
        const rtr_bf16 *d_in = in(&a, inp, ni * 2), *d_w = in(&a, w, nw * 2);
        const float *d_gb = in(&a, gb, OC * 4);
        rtr_bf16 *d_out = out(&a, NULL, no * 2);
        memset(got, 0, no * 2);
        if (a.ok) CALL(&a, gemm_bf16(a.b->ctx, d_out, d_in, d_w, gelu ? d_gb : NULL, N, IC, OC));
        if (a.ok) fetch(&a, d_out, got, no * 2, "gemm_bf16");
        arena_free(&a);
        char what[128];
        snprintf(what, sizeof what, "gemm_bf16%s N=%d IC=%d OC=%d", gelu ? " + bias + GELU" : "", N, IC, OC);
        /* sums of IC products in [-1, 1] in another order, then bf16 (and
         * for GELU the product rounded once more before the bias) */
        compare_bf16(what, got, want, no, 2e-3 * sqrt(IC), 1e-2);
    }
    free(inp), free(w), free(want), free(got), free(gb);
}

/* The position bias alone at lengths around the device's cached bucket
 * table (built for offsets up to 511, grown for longer T, reused after). */
static void case_position_bias(rtr_backend *dut, rtr_backend *ref, int T, int num_buckets) {
    int NH = 2;
    float *table = frand_vec((size_t)num_buckets * NH), *res[2];
    size_t n = (size_t)NH * T * T;
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 2; w++) {
        arena a;
        arena_init(&a, bs[w]);
        const float *d_tab = in(&a, table, (size_t)num_buckets * NH * 4);
        float *o = out(&a, NULL, n * 4);
        res[w] = calloc(n, 4);
        if (a.ok) CALL(&a, position_bias_forward(a.b->ctx, o, d_tab, T, NH, num_buckets, 128));
        if (a.ok) fetch(&a, o, res[w], n * 4, "position_bias_forward");
        arena_free(&a);
    }
    char what[128];
    snprintf(what, sizeof what, "position_bias_forward T=%d buckets=%d", T, num_buckets);
    compare_f32(what, res[1], res[0], n, 0, 0);
    free(table), free(res[0]), free(res[1]);
}

/* ---------------------------------------------------------------- heads */

static void case_heads(rtr_backend *dut, rtr_backend *ref, int N, int K, int H) {
    size_t NH_ = (size_t)N * H, KH = (size_t)K * H, NK = (size_t)N * K;
    float *Ac = frand_vec(NH_), *At = frand_vec(NH_), *Cc = frand_vec(KH), *Ct = frand_vec(KH);
    float *w2c = frand_vec(H), *w2t = frand_vec(H), *b2 = frand_vec(2);
    float *yc = malloc(NK * 4), *yt = malloc(NK * 4);
    for (size_t i = 0; i < NK; i++) {
        yc[i] = i % 7 == 3 ? NAN : (float)urand(), yt[i] = i % 5 == 1 ? NAN : (float)(2 * urand());
    }
    float *gA = frand_vec(2 * NH_), *gC = frand_vec(2 * KH), *gw = frand_vec(2 * H), *gb = frand_vec(2);
    double loss0[2] = {0.5, 0.25};
    enum { OC, OT, DC, DT, DAC, DAT, DCC, DCT, DWC, DWT, DB, PC, TK, PC_LOG, TK_LOG, NOUT };
    float *res[2][NOUT];
    double loss[2][2];
    size_t sizes[NOUT] = {NK, NK, NK, NK, NH_, NH_, KH, KH, (size_t)H, (size_t)H, 2, NK, NK, NK, NK};
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 2; w++) {
        arena a;
        arena_init(&a, bs[w]);
        const float *dAc = in(&a, Ac, NH_ * 4), *dAt = in(&a, At, NH_ * 4), *dCc = in(&a, Cc, KH * 4);
        const float *dCt = in(&a, Ct, KH * 4), *dw2c = in(&a, w2c, H * 4), *dw2t = in(&a, w2t, H * 4);
        const float *db2 = in(&a, b2, 8), *dyc = in(&a, yc, NK * 4), *dyt = in(&a, yt, NK * 4);
        float *o_c = out(&a, NULL, NK * 4), *o_t = out(&a, NULL, NK * 4);
        float *o_dc = out(&a, NULL, NK * 4), *o_dt = out(&a, NULL, NK * 4);
        double *o_loss = out(&a, loss0, 16);
        float *o_dAc = out(&a, gA, NH_ * 4), *o_dAt = out(&a, gA + NH_, NH_ * 4);
        float *o_dCc = out(&a, gC, KH * 4), *o_dCt = out(&a, gC + KH, KH * 4);
        float *o_dwc = out(&a, gw, H * 4), *o_dwt = out(&a, gw + H, H * 4), *o_db = out(&a, gb, 8);
        float *o_pc = out(&a, NULL, NK * 4), *o_tk = out(&a, NULL, NK * 4);
        if (a.ok) {
            CALL(&a, heads_forward(a.b->ctx, o_c, o_t, dAc, dAt, dCc, dCt, dw2c, db2, dw2t, db2 + 1, N, K, H));
            CALL(&a, heads_loss(a.b->ctx, o_dc, o_dt, o_loss, o_c, o_t, dyc, dyt, 1.0f / (float)NK, 0.5f, N, K));
            CALL(&a, heads_backward(a.b->ctx, o_dAc, o_dAt, o_dCc, o_dCt, o_dwc, o_db, o_dwt, o_db + 1, o_dc, o_dt,
                                    dAc, dAt, dCc, dCt, dw2c, dw2t, N, K, H));
            CALL(&a, heads_activate(a.b->ctx, o_pc, o_tk, o_c, o_t, RTR_TOKENS_RAW, 300.0f, N, K));
        }
        float *outs[NOUT] = {o_c, o_t, o_dc, o_dt, o_dAc, o_dAt, o_dCc, o_dCt, o_dwc, o_dwt, o_db, o_pc, o_tk, NULL, NULL};
        for (int o = 0; o < PC_LOG; o++) {
            res[w][o] = calloc(sizes[o], 4);
            if (a.ok) fetch(&a, outs[o], res[w][o], sizes[o] * 4, "heads op");
        }
        if (a.ok) fetch(&a, o_loss, loss[w], 16, "heads_loss");
        /* log target, in place over the forward outputs — the reference's on
         * both backends: expm1(1.5·softplus(out)) would magnify the forwards'
         * own rounding differences (e^28 at out = 19), which are not this op's */
        if (a.ok && w == 1) {
            CHECK_ST(rtr_backend_upload(a.b, o_c, res[0][OC], NK * 4));
            CHECK_ST(rtr_backend_upload(a.b, o_t, res[0][OT], NK * 4));
        }
        if (a.ok) CALL(&a, heads_activate(a.b->ctx, o_c, o_t, o_c, o_t, RTR_TOKENS_LOG, 1.5f, N, K));
        res[w][PC_LOG] = calloc(NK, 4), res[w][TK_LOG] = calloc(NK, 4);
        if (a.ok) fetch(&a, o_c, res[w][PC_LOG], NK * 4, "heads_activate"), fetch(&a, o_t, res[w][TK_LOG], NK * 4, "heads_activate");
        arena_free(&a);
    }
    static const char *names[NOUT] = {"heads_forward out_c", "heads_forward out_t", "heads_loss dout_c",
                                      "heads_loss dout_t", "heads_backward dA_c", "heads_backward dA_t",
                                      "heads_backward dC_c", "heads_backward dC_t", "heads_backward dw2_c",
                                      "heads_backward dw2_t", "heads_backward db2", "heads_activate p (raw)",
                                      "heads_activate tokens (raw)", "heads_activate p (log, in place)",
                                      "heads_activate tokens (log, in place)"};
    for (int o = 0; o < NOUT; o++) {
        char what[160];
        snprintf(what, sizeof what, "%s N=%d K=%d H=%d", names[o], N, K, H);
        /* each output sums this many terms, in another order than the reference */
        double terms[NOUT] = {H, H, 1, 1, K, K, N, N, (double)N * K, (double)N * K, (double)N * K, 1, 1, 1, 1};
        compare_f32(what, res[1][o], res[0][o], sizes[o], 2e-6 * terms[o], 2e-5);
        free(res[0][o]), free(res[1][o]);
    }
    char what[160];
    snprintf(what, sizeof what, "heads_loss loss N=%d K=%d", N, K);
    /* from each backend's own forward outputs, which agree to float rounding */
    compare_f64(what, loss[1], loss[0], 2, 1e-6, 1e-5);
    free(Ac), free(At), free(Cc), free(Ct), free(w2c), free(w2t), free(b2), free(yc), free(yt);
    free(gA), free(gC), free(gw), free(gb);
}

/* rtr_heads_score on both backends, and its identity with rtr_heads_forward: the
 * folded tables built from the same A, C, w2, b2 give the same outputs. */
static void case_heads_score(rtr_backend *dut, rtr_backend *ref, int N, int K, int H) {
    size_t NH_ = (size_t)N * H, KH = (size_t)K * H, NK = (size_t)N * K;
    float *A = frand_vec(2 * NH_), *C = frand_vec(2 * KH), *w2 = frand_vec(2 * H), *b2 = frand_vec(2);
    if (H > 3) w2[1] = 0.0f, w2[H + 2] = 0.0f; /* a unit with no weight */
    float *X = malloc(2 * NH_ * 4), *G = malloc(2 * KH * 4), *sg = malloc(2 * H * 4), *beta = malloc(2 * K * 4);
    for (int h = 0; h < 2; h++) {
        rtr_predictor_fold_head(NULL, G + h * KH, sg + h * H, beta + h * K, C + h * KH, NULL, w2 + h * H, b2 + h, K, H,
                                0);
        for (size_t i = 0; i < NH_; i++) X[h * NH_ + i] = fabsf(w2[h * H + i % H]) * A[h * NH_ + i];
    }
    float *res[3];
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 3; w++) {
        arena a;
        arena_init(&a, bs[w == 1]);
        float *o = out(&a, NULL, 2 * NK * 4);
        res[w] = calloc(2 * NK, 4);
        if (w < 2) {
            const float *dX = in(&a, X, 2 * NH_ * 4), *dG = in(&a, G, 2 * KH * 4), *ds = in(&a, sg, 2 * H * 4);
            const float *db = in(&a, beta, 2 * K * 4);
            if (a.ok) CALL(&a, heads_score(a.b->ctx, o, o + NK, dX, dX + NH_, dG, dG + KH, ds, ds + H, db, db + K, N, K, H));
        } else { /* the unfolded forward on the reference backend */
            const float *dA = in(&a, A, 2 * NH_ * 4), *dC = in(&a, C, 2 * KH * 4), *dw = in(&a, w2, 2 * H * 4);
            const float *db = in(&a, b2, 8);
            if (a.ok) CALL(&a, heads_forward(a.b->ctx, o, o + NK, dA, dA + NH_, dC, dC + KH, dw, db, dw + H, db + 1, N, K, H));
        }
        if (a.ok) fetch(&a, o, res[w], 2 * NK * 4, "heads_score");
        arena_free(&a);
    }
    char what[160];
    snprintf(what, sizeof what, "heads_score N=%d K=%d H=%d", N, K, H);
    compare_f32(what, res[1], res[0], 2 * NK, 2e-6 * H, 2e-5);
    snprintf(what, sizeof what, "heads_score = rtr_heads_forward (folding identity) N=%d K=%d H=%d", N, K, H);
    compare_f32(what, res[0], res[2], 2 * NK, 4e-6 * H, 2e-5);
    free(A), free(C), free(w2), free(b2), free(X), free(G), free(sg), free(beta);
    for (int w = 0; w < 3; w++) free(res[w]);
}

/* ---------------------------------------------------------------- route */

static void case_route(rtr_backend *dut, rtr_backend *ref, int64_t n, int32_t k, double lambda) {
    size_t nk = (size_t)n * k;
    float *p = malloc(nk * 4), *c = malloc(nk * 4);
    for (size_t i = 0; i < nk; i++) {
        /* coarse values make exact ties; some entries not allowed */
        p[i] = i % 3 ? (float)urand() : (float)irand(4) / 4;
        c[i] = i % 4 ? (float)urand() : (float)irand(4) / 4;
        if (i % 11 == 5) p[i] = NAN;
        if (i % 13 == 7) c[i] = NAN;
    }
    int32_t *res[2];
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 2; w++) {
        arena a;
        arena_init(&a, bs[w]);
        const float *dp = in(&a, p, nk * 4), *dc = in(&a, c, nk * 4);
        int32_t *o = out(&a, NULL, n * 4);
        res[w] = calloc(n, 4);
        if (a.ok) CALL(&a, route_argmax(a.b->ctx, o, dp, dc, lambda, n, k));
        if (a.ok) fetch(&a, o, res[w], n * 4, "route_argmax");
        arena_free(&a);
    }
    char what[128];
    snprintf(what, sizeof what, "route_argmax n=%lld k=%d lambda=%g", (long long)n, k, lambda);
    compare_i32(what, res[1], res[0], n);
    free(p), free(c), free(res[0]), free(res[1]);
}

/* λ envelopes: piece counts, pairs and start points exactly (slots past a
 * query's count are not part of the result). */
static void case_envelope(rtr_backend *dut, rtr_backend *ref, int64_t n, int32_t k) {
    size_t nk = (size_t)n * k;
    float *p = malloc(nk * 4), *c = malloc(nk * 4);
    for (size_t i = 0; i < nk; i++) {
        /* coarse values make equal slopes and coincident crossings */
        p[i] = i % 3 ? (float)urand() : (float)irand(4) / 4;
        c[i] = i % 4 ? (float)urand() : (float)irand(4) / 4;
        if (i % 11 == 5) p[i] = NAN;
        if (i % 13 == 7 || (i / k) % 17 == 3) c[i] = NAN; /* every 17th query has nothing allowed */
    }
    int32_t *pair[2], *m[2];
    double *start[2];
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 2; w++) {
        arena a;
        arena_init(&a, bs[w]);
        const float *dp = in(&a, p, nk * 4), *dc = in(&a, c, nk * 4);
        int32_t *o_pair = out(&a, NULL, nk * 4), *o_m = out(&a, NULL, n * 4);
        double *o_start = out(&a, NULL, nk * 8);
        pair[w] = calloc(nk, 4), m[w] = calloc(n, 4), start[w] = calloc(nk, 8);
        if (a.ok) CALL(&a, route_envelope(a.b->ctx, o_pair, o_start, o_m, dp, dc, n, k));
        if (a.ok) fetch(&a, o_pair, pair[w], nk * 4, "route_envelope"), fetch(&a, o_m, m[w], n * 4, "route_envelope"),
            fetch(&a, o_start, start[w], nk * 8, "route_envelope");
        arena_free(&a);
    }
    char what[128];
    snprintf(what, sizeof what, "route_envelope n=%lld k=%d piece counts", (long long)n, k);
    compare_i32(what, m[1], m[0], n);
    size_t bad = 0, pieces = 0;
    for (int64_t i = 0; i < n; i++)
        for (int32_t t = 0; t < m[0][i] && t < k; t++, pieces++) {
            size_t at = (size_t)i * k + t;
            if ((pair[1][at] != pair[0][at] || start[1][at] != start[0][at]) && bad++ < 3)
                fprintf(stderr, "  query %lld piece %d: pair %d from %.17g vs reference %d from %.17g\n",
                        (long long)i, t, pair[1][at], start[1][at], pair[0][at], start[0][at]);
        }
    printf("%s rtr_route_envelope n=%lld k=%d: %zu pieces, pairs and starts exact\n", bad ? "FAIL" : "ok  ",
           (long long)n, k, pieces);
    if (bad) failures++;
    free(p), free(c);
    for (int w = 0; w < 2; w++) free(pair[w]), free(m[w]), free(start[w]);
}

/* ----------------------------------------------------- the trainer's glue */

/* rtr_gather_rows, rtr_pair_table_forward and rtr_pair_table_backward: bit-identical
 * (the kernels add in the reference's order). */
static void case_train_glue(rtr_backend *dut, rtr_backend *ref, int n_models, int n_strategies, int K, int H) {
    int n_rows = 41, n = 19;
    int32_t *pm = malloc(K * 4), *ps = malloc(K * 4);
    for (int k = 0; k < K; k++) pm[k] = irand(n_models), ps[k] = irand(n_strategies);
    int64_t *idx = malloc(n * 8);
    for (int r = 0; r < n; r++) idx[r] = irand(n_rows);
    idx[0] = n_rows - 1;
    size_t KH = (size_t)K * H, mH = (size_t)n_models * H, sH = (size_t)n_strategies * H;
    float *rows = frand_vec((size_t)n_rows * H), *Pm = frand_vec(mH), *Ps = frand_vec(sH), *b1 = frand_vec(H);
    float *dC = frand_vec(KH), *g0 = frand_vec(mH + sH + H);
    enum { GATHER, TABLE, DPM, DPS, DB1, NOUT };
    size_t sizes[NOUT] = {(size_t)n * H, KH, mH, sH, (size_t)H};
    float *res[2][NOUT];
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 2; w++) {
        arena a;
        arena_init(&a, bs[w]);
        const int32_t *d_pm = in(&a, pm, K * 4), *d_ps = in(&a, ps, K * 4);
        const int64_t *d_idx = in(&a, idx, n * 8);
        const float *d_rows = in(&a, rows, (size_t)n_rows * H * 4), *d_Pm = in(&a, Pm, mH * 4);
        const float *d_Ps = in(&a, Ps, sH * 4), *d_b1 = in(&a, b1, H * 4), *d_dC = in(&a, dC, KH * 4);
        float *o_g = out(&a, NULL, sizes[GATHER] * 4), *o_C = out(&a, NULL, KH * 4);
        float *o_dPm = out(&a, g0, mH * 4), *o_dPs = out(&a, g0 + mH, sH * 4), *o_db1 = out(&a, g0 + mH + sH, H * 4);
        if (a.ok) {
            CALL(&a, gather_rows(a.b->ctx, o_g, d_rows, d_idx, n, H));
            CALL(&a, pair_table_forward(a.b->ctx, o_C, d_Pm, d_Ps, d_b1, d_pm, d_ps, K, H));
            CALL(&a, pair_table_backward(a.b->ctx, o_dPm, o_dPs, o_db1, d_dC, d_pm, d_ps, K, H, n_models,
                                         n_strategies));
        }
        float *outs[NOUT] = {o_g, o_C, o_dPm, o_dPs, o_db1};
        for (int o = 0; o < NOUT; o++) {
            res[w][o] = calloc(sizes[o], 4);
            if (a.ok) fetch(&a, outs[o], res[w][o], sizes[o] * 4, "trainer glue");
        }
        arena_free(&a);
    }
    static const char *names[NOUT] = {"gather_rows", "pair_table_forward", "pair_table_backward dP_m",
                                      "pair_table_backward dP_s", "pair_table_backward db1"};
    for (int o = 0; o < NOUT; o++) {
        char what[160];
        snprintf(what, sizeof what, "%s models=%d strategies=%d K=%d H=%d", names[o], n_models, n_strategies, K, H);
        compare_f32(what, res[1][o], res[0][o], sizes[o], 0, 0);
        free(res[0][o]), free(res[1][o]);
    }
    free(pm), free(ps), free(idx), free(rows), free(Pm), free(Ps), free(b1), free(dC), free(g0);
}

/* ------------------------------------------------- asynchronous copies */

/* Page-locked staging, an upload queued behind nothing, an op that reads it,
 * a download queued behind the op; all complete after synchronize. */
static void case_async(rtr_backend *dut, size_t n) {
    float *h_in = NULL, *h_out = NULL, *d_in = NULL, *d_out = NULL;
    rtr_status st = rtr_backend_host_alloc(dut, (void **)&h_in, n * 4);
    if (!st) st = rtr_backend_host_alloc(dut, (void **)&h_out, n * 4);
    if (!st) st = rtr_backend_alloc(dut, (void **)&d_in, n * 4);
    if (!st) st = rtr_backend_alloc(dut, (void **)&d_out, n * 4);
    float bias = 0.5f;
    float *d_bias = NULL;
    if (!st) st = rtr_backend_alloc(dut, (void **)&d_bias, 4);
    if (!st) st = rtr_backend_upload(dut, d_bias, &bias, 4);
    size_t bad = 0;
    for (int round = 0; !st && round < 3; round++) {
        for (size_t i = 0; i < n; i++) h_in[i] = (float)(i % 1000) + round, h_out[i] = -1;
        st = rtr_backend_upload_async(dut, d_in, h_in, n * 4);
        if (!st) st = dut->iface->bias_add_forward(dut->ctx, d_out, d_in, d_bias, (int)n, 1);
        if (!st) st = rtr_backend_download_async(dut, h_out, d_out, n * 4);
        if (!st) st = rtr_backend_synchronize(dut);
        for (size_t i = 0; !st && i < n; i++) bad += h_out[i] != (float)(i % 1000) + round + 0.5f;
    }
    if (st) fail_status("asynchronous copies", dut, st);
    printf("%s upload_async -> rtr_bias_add_forward -> download_async, n=%zu, 3 rounds\n", bad ? "FAIL" : "ok  ", n);
    if (bad) failures++;
    rtr_backend_host_free(dut, h_in), rtr_backend_host_free(dut, h_out);
    rtr_backend_free_mem(dut, d_in), rtr_backend_free_mem(dut, d_out), rtr_backend_free_mem(dut, d_bias);
}

/* ----------------------------------------------------------------- Adam */

/* Several steps from the same state on both backends: bit-identical. */
static void case_adam(rtr_backend *dut, rtr_backend *ref, size_t n) {
    float *p0 = frand_vec(n), *g = frand_vec(n), *m0 = frand_vec(n), *v0 = frand_vec(n), *res[2];
    for (size_t i = 0; i < n; i++) v0[i] = fabsf(v0[i]) * 1e-3f, m0[i] *= 1e-2f;
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 2; w++) {
        arena a;
        arena_init(&a, bs[w]);
        const float *dg = in(&a, g, n * 4);
        float *dp = out(&a, p0, n * 4), *dm = out(&a, m0, n * 4), *dv = out(&a, v0, n * 4);
        for (int64_t t = 1; a.ok && t <= 3; t++) CALL(&a, adam_update(a.b->ctx, dp, dg, dm, dv, n, 1e-3, t));
        res[w] = calloc(3 * n, 4);
        if (a.ok) fetch(&a, dp, res[w], n * 4, "adam_update"), fetch(&a, dm, res[w] + n, n * 4, "adam_update"),
            fetch(&a, dv, res[w] + 2 * n, n * 4, "adam_update");
        arena_free(&a);
    }
    char what[128];
    snprintf(what, sizeof what, "adam_update n=%zu, 3 steps (param, m, v)", n);
    compare_f32(what, res[1], res[0], 3 * n, 0, 0);
    free(p0), free(g), free(m0), free(v0), free(res[0]), free(res[1]);
}

/* ------------------------------------------------ the batch table */

/* Three batches of a table through batch_select, heads_loss_step and
 * adam_update_step, as the trainer runs them: the selected rows, the step
 * slot and the cursor exact, the gradients, loss sums and Adam state
 * bit-identical (each batch has its own scales and step size, so a kernel
 * that read another batch's, or the host's, would differ). */
static void case_batch_table(rtr_backend *dut, rtr_backend *ref, int n, int N, int K) {
    enum { STEPS = 3, ROWS = 200 };
    int n_order = 3 * n + 5, NK = N * K;
    int64_t *order = malloc(sizeof(int64_t) * n_order);
    for (int i = 0; i < n_order; i++) order[i] = irand(ROWS);
    rtr_batch_step table[STEPS];
    for (int s = 0; s < STEPS; s++)
        table[s] = (rtr_batch_step){.first = s == 1 ? n_order - n : s * n / 2, .gscale_c = (float)(urand() + 0.1),
                                    .gscale_t = (float)(urand() + 0.1), .adam_step = (float)(1e-3 * (s + 1))};
    float *o = frand_vec(2 * (size_t)NK), *y = frand_vec(2 * (size_t)NK), *g = frand_vec(NK), *p0 = frand_vec(NK);
    for (int i = 0; i < NK; i++) y[i] = y[i] < -0.8f ? NAN : fabsf(y[i]); /* missing labels; BCE targets in [0,1] */
    enum { IDX, STEP, CURSOR, DOUT, LOSS, PARAM, NOUT };
    size_t sizes[NOUT] = {sizeof(int64_t) * n, sizeof(rtr_batch_step), 8, 8 * (size_t)NK, 16, 12 * (size_t)NK};
    unsigned char *res[2][NOUT];
    rtr_backend *bs[2] = {ref, dut};
    for (int w = 0; w < 2; w++) {
        arena a;
        arena_init(&a, bs[w]);
        const int64_t *d_order = in(&a, order, sizeof(int64_t) * n_order);
        const rtr_batch_step *d_table = in(&a, table, sizeof table);
        const float *d_o = in(&a, o, 8 * (size_t)NK), *d_y = in(&a, y, 8 * (size_t)NK), *d_g = in(&a, g, 4 * (size_t)NK);
        static const int64_t zero64 = 0;
        static const double zero_loss[2] = {0, 0};
        int64_t *o_idx = out(&a, NULL, sizes[IDX]), *o_cursor = out(&a, &zero64, 8);
        rtr_batch_step *o_step = out(&a, NULL, sizes[STEP]);
        float *o_dout = out(&a, NULL, sizes[DOUT]), *o_p = out(&a, NULL, sizes[PARAM]);
        double *o_loss = out(&a, zero_loss, 16);
        if (a.ok) CHECK_ST(rtr_backend_upload(a.b, o_p, p0, 4 * (size_t)NK));
        if (a.ok) CHECK_ST(rtr_backend_zero(a.b, o_p + NK, 8 * (size_t)NK));
        for (int s = 0; a.ok && s < STEPS; s++) {
            CALL(&a, batch_select(a.b->ctx, o_idx, o_step, o_cursor, d_order, d_table, n));
            CALL(&a, heads_loss_step(a.b->ctx, o_dout, o_dout + NK, o_loss, d_o, d_o + NK, d_y, d_y + NK, o_step, N, K));
            CALL(&a, adam_update_step(a.b->ctx, o_p, d_g, o_p + NK, o_p + 2 * NK, NK, o_step));
        }
        void *outs[NOUT] = {o_idx, o_step, o_cursor, o_dout, o_loss, o_p};
        for (int k = 0; k < NOUT; k++) {
            res[w][k] = calloc(1, sizes[k]);
            if (a.ok) fetch(&a, outs[k], res[w][k], sizes[k], "batch table");
        }
        arena_free(&a);
    }
    int64_t cursor;
    memcpy(&cursor, res[1][CURSOR], 8);
    bool same_sel = !memcmp(res[1][IDX], res[0][IDX], sizes[IDX]) && !memcmp(res[1][STEP], &table[STEPS - 1], sizeof *table) &&
                    !memcmp(res[0][STEP], &table[STEPS - 1], sizeof *table) && cursor == STEPS;
    for (int i = 0; i < n; i++) same_sel = same_sel && ((int64_t *)res[1][IDX])[i] == order[table[STEPS - 1].first + i];
    printf("%s batch_select n=%d, %d batches (rows, step, cursor exact)\n", same_sel ? "ok  " : "FAIL", n, STEPS);
    if (!same_sel) failures++;
    char what[128];
    snprintf(what, sizeof what, "heads_loss_step N=%d K=%d after %d batches (dout)", N, K, STEPS);
    compare_f32(what, (float *)res[1][DOUT], (float *)res[0][DOUT], 2 * (size_t)NK, 0, 0);
    snprintf(what, sizeof what, "heads_loss_step N=%d K=%d (loss sums)", N, K);
    compare_f64(what, (double *)res[1][LOSS], (double *)res[0][LOSS], 2, 1e-12, 1e-12);
    snprintf(what, sizeof what, "adam_update_step n=%d, %d steps (param, m, v)", NK, STEPS);
    compare_f32(what, (float *)res[1][PARAM], (float *)res[0][PARAM], 3 * (size_t)NK, 0, 0);
    for (int k = 0; k < NOUT; k++) free(res[0][k]), free(res[1][k]);
    free(order), free(o), free(y), free(g), free(p0);
}

/* -------------------------------------------------- scoring a predictor */

/* rtr_predictor_score_backend on the backend under test against
 * rtr_predictor_score (the C path), for a randomly initialised predictor,
 * in one chunk and in several (the last partial). */
static void case_score(rtr_backend *dut, int token_target) {
    enum { D = 24, N = 77 };
    rtr_catalog cat;
    if (rtr_catalog_parse_json(&cat, "{\"models\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}],"
                               "\"strategies\":[{\"name\":\"x\"},{\"name\":\"y\"}]}", "suite") != RTR_OK) {
        fail_status("catalog", dut, RTR_ERR_FORMAT);
        return;
    }
    rtr_train_params cfg = rtr_train_default_params();
    cfg.hidden = 40, cfg.learn_dim = 8, cfg.seed = 5, cfg.token_target = token_target;
    float *dm = frand_vec(3 * D), *ds = frand_vec(2 * D), *emb = frand_vec((size_t)N * D);
    rtr_predictor p;
    rtr_status st = rtr_predictor_init(&p, &cfg, &cat, D, dm, ds);
    if (st) {
        fail_status("rtr_predictor_init", dut, st);
        rtr_catalog_free(&cat);
        free(dm), free(ds), free(emb);
        return;
    }
    p.token_scale = token_target == RTR_TOKENS_LOG ? 2.0f : 300.0f;
    int K = p.n_pairs;
    float *ref = malloc(sizeof(float) * 4 * N * K), *got = ref + 2 * N * K;
    CHECK_ST(rtr_predictor_score(ref, ref + N * K, &p, emb, N));
    static const int64_t chunks[] = {0, 10};
    for (int c = 0; c < 2; c++) {
        memset(got, 0xA5, sizeof(float) * 2 * N * K);
        st = rtr_predictor_score_backend(dut, got, got + N * K, &p, emb, N, chunks[c]);
        if (st) fail_status("rtr_predictor_score_backend", dut, st);
        char what[128];
        snprintf(what, sizeof what, "rtr_predictor_score_backend %s chunk=%lld", token_target ? "log" : "raw",
                 (long long)chunks[c]);
        compare_f32(what, got, ref, 2 * (size_t)N * K, 1e-5, 1e-4);
    }
    emb[5 * D + 3] = NAN;
    st = rtr_predictor_score_backend(dut, got, got + N * K, &p, emb, N, 0);
    if (st != RTR_ERR_NUMERIC || !strstr(rtr_last_error(), "row 5")) {
        fprintf(stderr, "FAIL rtr_predictor_score_backend: NaN row gave %s (%s)\n", rtr_status_name(st),
                rtr_last_error());
        failures++;
    }
    rtr_predictor_free(&p);
    rtr_catalog_free(&cat);
    free(dm), free(ds), free(emb), free(ref);
}

int backend_suite_run(rtr_backend *dut, rtr_backend *ref) {
    failures = 0;
    printf("backend %s (%s) against %s (%s)\n", dut->iface->name, dut->device, ref->iface->name, ref->device);
    if (rtr_backend_supports(dut, RTR_OP_SGEMM)) {
        /* the last is above the CPU backend's threshold for splitting a GEMM over threads */
        static const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 129}, {100, 37, 768}, {257, 256, 300}};
        rtr_gemm_precision precs[3] = {RTR_GEMM_F32, RTR_GEMM_BF16, RTR_GEMM_F16};
        /* GPU and emulator round bf16/fp16 inputs; the CPU backends compute in fp32 */
        int nprec = rtr_backend_is_host(dut) ? 1 : 3;
        for (int s = 0; s < 5; s++)
            for (int t = 0; t < 4; t++)
                for (int q = 0; q < nprec; q++)
                    case_sgemm(dut, ref, precs[q], t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2]);
    }
    /* attention tiles are 16 queries × 32 keys: T = 13, 37, 130 leave partial tiles; head sizes 32, 36, 128 */
    static const enc_shape enc[] = {{1, 1, 32, 1}, {3, 13, 96, 3}, {2, 37, 72, 2}, {3, 130, 64, 2}, {2, 20, 256, 2}};
    for (int s = 0; s < 5; s++) case_encoder(dut, ref, enc[s]);
    static const int pools[][3] = {{1, 1, 8}, {3, 13, 96}, {5, 130, 768}, {4, 37, 264}};
    for (int s = 0; s < 4; s++) case_pool(dut, ref, pools[s][0], pools[s][1], pools[s][2]);
    if (rtr_backend_supports(dut, RTR_OP_GEMM_BF16)) {
        /* head sizes 32, 64, 128; 64-query tiles and 64-key tiles: T = 13, 130, 64 */
        static const enc_shape encb[] = {{3, 13, 96, 3}, {3, 130, 128, 2}, {2, 64, 256, 2}, {1, 1, 32, 1}};
        for (int s = 0; s < 4; s++) case_encoder_bf16(dut, ref, encb[s]);
        static const int gb[][3] = {{1, 8, 8}, {37, 64, 24}, {130, 256, 72}, {64, 384, 1536}};
        for (int s = 0; s < 4; s++) case_gemm_bf16(dut, gb[s][0], gb[s][1], gb[s][2]);
    }
    static const int pb[][2] = {{600, 32}, {7, 32}, {512, 32}, {9, 16}};
    for (int s = 0; s < 4; s++) case_position_bias(dut, ref, pb[s][0], pb[s][1]);
    /* the forward tile is 64 queries × 32 pairs × 32 units: cover partial and multiple tiles */
    static const int heads[][3] = {{1, 1, 1}, {7, 5, 13}, {33, 24, 96}, {3, 4, 1000}, {130, 33, 40}};
    for (int s = 0; s < 5; s++) case_heads(dut, ref, heads[s][0], heads[s][1], heads[s][2]);
    for (int s = 0; s < 5; s++) case_heads_score(dut, ref, heads[s][0], heads[s][1], heads[s][2]);
    static const int routes[][2] = {{1, 1}, {257, 7}, {1000, 24}};
    static const double lambdas[] = {0.0, 0.3, 1.0};
    for (int s = 0; s < 3; s++)
        for (int l = 0; l < 3; l++) case_route(dut, ref, routes[s][0], routes[s][1], lambdas[l]);
    static const int envelopes[][2] = {{1, 1}, {257, 7}, {1000, 24}, {60, RTR_ENVELOPE_KMAX}};
    for (int s = 0; s < 4; s++) case_envelope(dut, ref, envelopes[s][0], envelopes[s][1]);
    case_adam(dut, ref, 1);
    case_adam(dut, ref, 70001);
    case_train_glue(dut, ref, 1, 1, 1, 1);
    case_train_glue(dut, ref, 5, 3, 13, 40);
    case_train_glue(dut, ref, 11, 4, 44, 300);
    case_batch_table(dut, ref, 1, 1, 1);
    case_batch_table(dut, ref, 19, 19, 6);
    case_batch_table(dut, ref, 300, 37, 24); /* more rows than the selecting block's threads */
    case_async(dut, 1);
    case_async(dut, 1 << 20);
    case_score(dut, RTR_TOKENS_RAW);
    case_score(dut, RTR_TOKENS_LOG);
    printf("%d failed checks\n", failures);
    return failures;
}
