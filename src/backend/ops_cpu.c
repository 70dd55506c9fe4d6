/* Faster CPU paths of the encoder ops; see ops_cpu.h. The references in
 * ops.c stay the definition: these must agree with them to float rounding. */
#include "backend/ops_cpu.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* e^x for x in about [-87, 88], Cephes' expf (within 2 ulp) written without
 * branches or calls so loops around it vectorise. */
static inline float exp_vec(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* round to nearest with the 1.5 * 2^23 trick (no rintf call) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    /* 2^n from the exponent bits: n is an integer in [-126, 127] except for
     * a NaN x, whose p is NaN whatever the scale; take n = 0 then, since
     * converting NaN to an integer is undefined (and would shift a negative
     * value). A select, so the loop still vectorises. */
    float e = n == n ? n : 0.0f;
    uint32_t bits = (uint32_t)((int32_t)e + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* erf(x) through erfc's Chebyshev fit (Numerical Recipes' erfcc). */
static inline float erf_vec(float x) {
    float z = fabsf(x), t = 1.0f / (1.0f + 0.5f * z);
    float poly = -0.82215223f + t * 0.17087277f;
    poly = 1.48851587f + t * poly;
    poly = -1.13520398f + t * poly;
    poly = 0.27886807f + t * poly;
    poly = -0.18628806f + t * poly;
    poly = 0.09678418f + t * poly;
    poly = 0.37409196f + t * poly;
    poly = 1.00002368f + t * poly;
    float erfc = t * exp_vec(-z * z - 1.26551223f + t * poly);
    return x >= 0.0f ? 1.0f - erfc : erfc - 1.0f;
}

void bias_gelu_forward_cpu(float *out, const float *inp, const float *bias, int N, int C) {
    const float inv_sqrt2 = 0.70710678118654752f;
#pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            float v = x[c] + bias[c];
            o[c] = 0.5f * v * (1.0f + erf_vec(v * inv_sqrt2));
        }
    }
}

void attention_forward_cpu(float *out, float *att, const float *qkv, const float *bias,
                           const int32_t *lens, int B, int T, int C, int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int len = lens[b];
            const float *q = qkv + (size_t)b * T * 3 * C + h * hs, *k = q + C, *v = q + 2 * C;
            float *p = att + ((size_t)b * NH + h) * T * T;
            float *o = out + (size_t)b * T * C + h * hs;
            for (int t = len; t < T; t++) memset(o + (size_t)t * C, 0, (size_t)hs * sizeof *o);
            if (len == 0) continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, hs, scale, q, 3 * C, k, 3 * C, 0.0f,
                        p, T);
            for (int t = 0; t < len; t++) {
                float *row = p + (size_t)t * T, maxv = -INFINITY, sum = 0.0f;
                if (bias) {
                    const float *br = bias + ((size_t)h * T + t) * T;
                    for (int s = 0; s < len; s++) row[s] += br[s];
                }
                for (int s = 0; s < len; s++) maxv = row[s] > maxv ? row[s] : maxv;
#pragma omp simd
                for (int s = 0; s < len; s++) row[s] = exp_vec(row[s] - maxv);
                for (int s = 0; s < len; s++) sum += row[s];
                float inv = 1.0f / sum;
                for (int s = 0; s < len; s++) row[s] *= inv;
                for (int s = len; s < T; s++) row[s] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, hs, len, 1.0f, p, T, v, 3 * C, 0.0f, o, C);
        }
}

void residual_layernorm_forward_cpu(float *out, const float *inp, const float *bias, const float *residual,
                                    const float *ln_w, const float *ln_b, float eps, int N, int C) {
#pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *r = residual + (size_t)n * C;
        float *o = out + (size_t)n * C, sum = 0.0f, var = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < C; c++) {
            o[c] = x[c] + bias[c] + r[c];
            sum += o[c];
        }
        float mean = sum / (float)C;
#pragma omp simd reduction(+ : var)
        for (int c = 0; c < C; c++) var += (o[c] - mean) * (o[c] - mean);
        float rstd = 1.0f / sqrtf(var / (float)C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (o[c] - mean) * rstd * ln_w[c] + ln_b[c];
    }
}
