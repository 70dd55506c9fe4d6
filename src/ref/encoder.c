/* Plain C reference ops of the sentence encoder (see include/rtr/ops.h),
 * and their bf16 forms (include/rtr/ops_bf16.h): the fp32 op on the widened
 * inputs, its output rounded once. Loops are written for clarity; OpenMP
 * pragmas only spread independent rows over threads and do not change any
 * result. */
#include "rtr/ops.h"
#include "rtr/ops_bf16.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LayerNorm of one row x[0..C) into out, as torch: biased variance. */
static void layernorm_row(float *out, const float *x, const float *w, const float *b,
                          float eps, int C) {
    float mean = 0.0f;
    for (int c = 0; c < C; c++) mean += x[c];
    mean /= (float)C;
    float var = 0.0f;
    for (int c = 0; c < C; c++) {
        float d = x[c] - mean;
        var += d * d;
    }
    var /= (float)C;
    float rstd = 1.0f / sqrtf(var + eps);
    for (int c = 0; c < C; c++) out[c] = (x[c] - mean) * rstd * w[c] + b[c];
}

void rtr_embedding_layernorm_forward(float *out, const int32_t *ids, const int32_t *pos_ids,
                                 const float *wte, const float *wpe, const float *wtt,
                                 const float *ln_w, const float *ln_b, float eps,
                                 int B, int T, int C) {
#pragma omp parallel for schedule(static)
    for (long n = 0; n < (long)B * T; n++) {
        const float *we = wte + (size_t)ids[n] * C;
        const float *pe = wpe + (size_t)pos_ids[n] * C;
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = we[c] + pe[c] + (wtt ? wtt[c] : 0.0f);
        layernorm_row(o, o, ln_w, ln_b, eps, C);
    }
}

int rtr_relative_position_bucket(int i, int j, int num_buckets, int max_distance) {
    int n = i - j, half = num_buckets / 2, ret = 0;
    if (n < 0) ret += half;
    int m = n < 0 ? -n : n;
    int max_exact = half / 2;
    if (m < max_exact) return ret + m;
    /* float32 arithmetic, truncated toward zero, as torch's .to(long) */
    float v = logf((float)m / (float)max_exact) / logf((float)max_distance / (float)max_exact) *
              (float)(half - max_exact);
    int large = max_exact + (int)v;
    return ret + (large < half - 1 ? large : half - 1);
}

void rtr_position_bias_forward(float *bias, const float *table, int T, int NH,
                           int num_buckets, int max_distance) {
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            int bucket = rtr_relative_position_bucket(i, j, num_buckets, max_distance);
            for (int h = 0; h < NH; h++)
                bias[((size_t)h * T + i) * T + j] = table[(size_t)bucket * NH + h];
        }
}

void rtr_bias_add_forward(float *out, const float *inp, const float *bias, int N, int C) {
#pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[n * C + c] = inp[n * C + c] + bias[c];
}

void rtr_attention_forward(float *out, float *att, const float *qkv, const float *bias,
                       const int32_t *lens, int B, int T, int C, int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int len = lens[b];
            for (int t = 0; t < T; t++) {
                float *o = out + ((size_t)b * T + t) * C + h * hs;
                if (t >= len) {
                    memset(o, 0, (size_t)hs * sizeof *o);
                    continue;
                }
                const float *q = qkv + ((size_t)b * T + t) * 3 * C + h * hs;
                float *p = att + (((size_t)b * NH + h) * T + t) * T;
                float maxv = -INFINITY;
                for (int s = 0; s < len; s++) {
                    const float *k = qkv + ((size_t)b * T + s) * 3 * C + C + h * hs;
                    float dot = 0.0f;
                    for (int i = 0; i < hs; i++) dot += q[i] * k[i];
                    dot *= scale;
                    if (bias) dot += bias[((size_t)h * T + t) * T + s];
                    p[s] = dot;
                    if (dot > maxv) maxv = dot;
                }
                float sum = 0.0f;
                for (int s = 0; s < len; s++) {
                    p[s] = expf(p[s] - maxv);
                    sum += p[s];
                }
                for (int s = len; s < T; s++) p[s] = 0.0f;
                float inv = 1.0f / sum;
                for (int i = 0; i < hs; i++) o[i] = 0.0f;
                for (int s = 0; s < len; s++) {
                    const float *v = qkv + ((size_t)b * T + s) * 3 * C + 2 * C + h * hs;
                    float ps = p[s] * inv;
                    p[s] = ps;
                    for (int i = 0; i < hs; i++) o[i] += ps * v[i];
                }
            }
        }
}

void rtr_bias_gelu_forward(float *out, const float *inp, const float *bias, int N, int C) {
    const float inv_sqrt2 = 0.70710678118654752f;
#pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float x = inp[n * C + c] + bias[c];
            out[n * C + c] = 0.5f * x * (1.0f + erff(x * inv_sqrt2));
        }
}

void rtr_residual_layernorm_forward(float *out, const float *inp, const float *bias,
                                const float *residual, const float *ln_w,
                                const float *ln_b, float eps, int N, int C) {
#pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++)
            o[c] = inp[(size_t)n * C + c] + bias[c] + residual[(size_t)n * C + c];
        layernorm_row(o, o, ln_w, ln_b, eps, C);
    }
}

void rtr_pool_forward(float *out, const float *inp, const int32_t *lens, int B, int T, int C,
                      rtr_pool_mode mode, bool normalize) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C;
        int len = lens[b], n = mode == RTR_POOL_CLS && len > 0 ? 1 : len;
        float denom = len <= 0                         ? 1.0f
                      : mode == RTR_POOL_MEAN          ? (float)len
                      : mode == RTR_POOL_MEAN_SQRT_LEN ? sqrtf((float)len)
                                                       : 1.0f;
        for (int c = 0; c < C; c++) o[c] = 0.0f;
        for (int t = 0; t < n; t++)
            for (int c = 0; c < C; c++) o[c] += inp[((size_t)b * T + t) * C + c];
        for (int c = 0; c < C; c++) o[c] /= denom;
        if (!normalize) continue;
        float norm = 0.0f;
        for (int c = 0; c < C; c++) norm += o[c] * o[c];
        norm = sqrtf(norm);
        float inv = 1.0f / (norm > 1e-12f ? norm : 1e-12f);
        for (int c = 0; c < C; c++) o[c] *= inv;
    }
}

void rtr_mean_pool_l2norm_forward(float *out, const float *inp, const int32_t *lens, int B, int T, int C) {
    rtr_pool_forward(out, inp, lens, B, T, C, RTR_POOL_MEAN, true);
}

/* ---- the bf16 forms: widen, compute as above, round once ---- */

static float *scratch(size_t n) {
    float *w = calloc(n ? n : 1, sizeof *w);
    if (!w) abort(); /* a reference has no error path: test-sized inputs only */
    return w;
}

static float *widen(const rtr_bf16 *x, size_t n) {
    float *w = scratch(n);
    for (size_t i = 0; i < n; i++) w[i] = rtr_bf16_float(x[i]);
    return w;
}

static void round_into(rtr_bf16 *out, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = rtr_bf16_round(x[i]);
    free(x);
}

void rtr_embedding_layernorm_bf16(rtr_bf16 *out, const int32_t *ids, const int32_t *pos_ids, const float *wte,
                                  const float *wpe, const float *wtt, const float *ln_w, const float *ln_b, float eps,
                                  int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    float *o = scratch(n);
    rtr_embedding_layernorm_forward(o, ids, pos_ids, wte, wpe, wtt, ln_w, ln_b, eps, B, T, C);
    round_into(out, o, n);
}

void rtr_bias_gelu_bf16(rtr_bf16 *out, const rtr_bf16 *inp, const float *bias, int N, int C) {
    size_t n = (size_t)N * C;
    float *x = widen(inp, n);
    rtr_bias_gelu_forward(x, x, bias, N, C);
    round_into(out, x, n);
}

void rtr_residual_layernorm_bf16(rtr_bf16 *out, const rtr_bf16 *inp, const float *bias, const rtr_bf16 *residual,
                                 const float *ln_w, const float *ln_b, float eps, int N, int C) {
    size_t n = (size_t)N * C;
    float *x = widen(inp, n), *r = widen(residual, n);
    rtr_residual_layernorm_forward(x, x, bias, r, ln_w, ln_b, eps, N, C);
    free(r);
    round_into(out, x, n);
}

void rtr_pool_bf16(float *out, const rtr_bf16 *inp, const int32_t *lens, int B, int T, int C, rtr_pool_mode mode,
                   bool normalize) {
    float *x = widen(inp, (size_t)B * T * C);
    rtr_pool_forward(out, x, lens, B, T, C, mode, normalize);
    free(x);
}
