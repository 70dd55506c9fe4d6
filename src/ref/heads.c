/* The fused concat-MLP heads, plain C (llm.c style): forward, loss, backward
 * and activation over N queries x K pairs given A = W_q·e_q (N x H) and the
 * pair table C (K x H). These are the references the CUDA kernels in
 * kernels/ are tested against; parallel loops never share an output element,
 * so results do not depend on the thread count. */
#include "rtr/predictor.h"

#include <math.h>
#include <stdbool.h>

/* Below this many N·K·H terms a loop runs on one thread: a training batch
 * (32 x 24 x 768) is faster serial than paying a parallel region, above all
 * on a loaded machine. Scoring chunks are far above it. */
#define HEADS_PARALLEL_MIN (1 << 22)

/* w2 · relu(a + c) over H units: the inner product every output needs. */
static inline float hidden_dot(const float *a, const float *c, const float *w2, int H) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int j = 0; j < H; j++) {
        float h = a[j] + c[j];
        acc += w2[j] * (h > 0.0f ? h : 0.0f);
    }
    return acc;
}

void rtr_heads_forward(float *out_c, float *out_t,
                   const float *A_c, const float *A_t, const float *C_c, const float *C_t,
                   const float *w2_c, const float *b2_c, const float *w2_t, const float *b2_t,
                   int N, int K, int H) {
    bool par = (size_t)N * K * H >= HEADS_PARALLEL_MIN;
#pragma omp parallel for schedule(static) if (par)
    for (int n = 0; n < N; n++) {
        const float *ac = A_c + (size_t)n * H, *at = A_t + (size_t)n * H;
        for (int k = 0; k < K; k++) {
            out_c[(size_t)n * K + k] = b2_c[0] + hidden_dot(ac, C_c + (size_t)k * H, w2_c, H);
            out_t[(size_t)n * K + k] = b2_t[0] + hidden_dot(at, C_t + (size_t)k * H, w2_t, H);
        }
    }
}

/* Σ_j s_j·max(x_j, g_j): rtr_heads_score's inner product. */
static inline float folded_dot(const float *x, const float *g, const float *s, int H) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int j = 0; j < H; j++) acc += s[j] * (x[j] > g[j] ? x[j] : g[j]);
    return acc;
}

void rtr_heads_score(float *out_c, float *out_t,
                 const float *X_c, const float *X_t, const float *G_c, const float *G_t,
                 const float *s_c, const float *s_t, const float *beta_c, const float *beta_t,
                 int N, int K, int H) {
    bool par = (size_t)N * K * H >= HEADS_PARALLEL_MIN;
#pragma omp parallel for schedule(static) if (par)
    for (int n = 0; n < N; n++) {
        const float *xc = X_c + (size_t)n * H, *xt = X_t + (size_t)n * H;
        for (int k = 0; k < K; k++) {
            out_c[(size_t)n * K + k] = beta_c[k] + folded_dot(xc, G_c + (size_t)k * H, s_c, H);
            out_t[(size_t)n * K + k] = beta_t[k] + folded_dot(xt, G_t + (size_t)k * H, s_t, H);
        }
    }
}

/* log(1 + e^z) without overflow. */
static inline double softplus(double z) { return (z > 0 ? z : 0) + log1p(exp(-fabs(z))); }
static inline double sigmoid(double z) {
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

void rtr_heads_loss(float *dout_c, float *dout_t, double *loss,
                const float *out_c, const float *out_t, const float *y_c, const float *y_t,
                float gscale_c, float gscale_t, int N, int K) {
    double bce = 0.0, sq = 0.0;
    size_t NK = (size_t)N * K;
    for (size_t i = 0; i < NK; i++) {
        double z = out_c[i], y = y_c[i];
        if (isnan(y)) {
            dout_c[i] = 0.0f;
        } else {
            bce += softplus(z) - z * y; /* = -y log p - (1-y) log(1-p) */
            dout_c[i] = (float)(gscale_c * (sigmoid(z) - y));
        }
        z = out_t[i], y = y_t[i];
        if (isnan(y)) {
            dout_t[i] = 0.0f;
        } else {
            double err = softplus(z) - y;
            sq += err * err;
            dout_t[i] = (float)(gscale_t * 2.0 * err * sigmoid(z));
        }
    }
    loss[0] += bce;
    loss[1] += sq;
}

void rtr_heads_loss_step(float *dout_c, float *dout_t, double *loss, const float *out_c, const float *out_t,
                         const float *y_c, const float *y_t, const rtr_batch_step *step, int N, int K) {
    rtr_heads_loss(dout_c, dout_t, loss, out_c, out_t, y_c, y_t, step->gscale_c, step->gscale_t, N, K);
}

/* The backward of one head: g[n,k,j] = dout[n,k]·w2[j]·[A[n,j]+C[k,j] > 0]
 * summed over k into dA, over n into dC; dw2 and db2 from dout and relu. */
static void head_backward(float *dA, float *dC, float *dw2, float *db2, const float *dout,
                          const float *A, const float *C, const float *w2, int N, int K, int H) {
    bool par = (size_t)N * K * H >= HEADS_PARALLEL_MIN;
#pragma omp parallel for schedule(static) if (par)
    for (int n = 0; n < N; n++) {
        float *da = dA + (size_t)n * H;
        const float *a = A + (size_t)n * H;
        for (int k = 0; k < K; k++) {
            float d = dout[(size_t)n * K + k];
            if (d == 0.0f) continue;
            const float *c = C + (size_t)k * H;
            for (int j = 0; j < H; j++)
                if (a[j] + c[j] > 0.0f) da[j] += d * w2[j];
        }
    }
#pragma omp parallel for schedule(static) if (par)
    for (int k = 0; k < K; k++) {
        float *dc = dC + (size_t)k * H;
        const float *c = C + (size_t)k * H;
        for (int n = 0; n < N; n++) {
            float d = dout[(size_t)n * K + k];
            if (d == 0.0f) continue;
            const float *a = A + (size_t)n * H;
            for (int j = 0; j < H; j++)
                if (a[j] + c[j] > 0.0f) dc[j] += d * w2[j];
        }
    }
#pragma omp parallel for schedule(static) if (par)
    for (int j = 0; j < H; j++) {
        float acc = 0.0f;
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) {
                float h = A[(size_t)n * H + j] + C[(size_t)k * H + j];
                if (h > 0.0f) acc += dout[(size_t)n * K + k] * h;
            }
        dw2[j] += acc;
    }
    float acc = 0.0f;
    for (size_t i = 0; i < (size_t)N * K; i++) acc += dout[i];
    db2[0] += acc;
}

void rtr_heads_backward(float *dA_c, float *dA_t, float *dC_c, float *dC_t,
                    float *dw2_c, float *db2_c, float *dw2_t, float *db2_t,
                    const float *dout_c, const float *dout_t,
                    const float *A_c, const float *A_t, const float *C_c, const float *C_t,
                    const float *w2_c, const float *w2_t,
                    int N, int K, int H) {
    head_backward(dA_c, dC_c, dw2_c, db2_c, dout_c, A_c, C_c, w2_c, N, K, H);
    head_backward(dA_t, dC_t, dw2_t, db2_t, dout_t, A_t, C_t, w2_t, N, K, H);
}

void rtr_heads_activate(float *p_correct, float *tokens, const float *out_c, const float *out_t,
                    int token_target, float token_scale, int N, int K) {
    size_t NK = (size_t)N * K;
#pragma omp parallel for schedule(static) if (NK >= HEADS_PARALLEL_MIN / 64)
    for (size_t i = 0; i < NK; i++) {
        double target = softplus(out_t[i]) * token_scale;
        p_correct[i] = (float)sigmoid(out_c[i]);
        tokens[i] = (float)(token_target == RTR_TOKENS_LOG ? expm1(target) : target);
    }
}
