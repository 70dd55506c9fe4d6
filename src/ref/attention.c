/* Plain C reference of the flash attention kernel (kernels/attention.cu,
 * include/rtr/ops_bf16.h): the fp32 attention of src/ref/encoder.c on bf16
 * q, k, v (their bias added and rounded as the kernel stages them), with the
 * probabilities rounded to bf16 where the kernel feeds them to the tensor
 * cores, and nothing of size T x T kept. */
#include "rtr/ops_bf16.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Element i of row n of qkv with its bias, as the kernel stages it: bf16. */
static float qkv_at(const rtr_bf16 *qkv, const float *qkv_bias, size_t n, int C, int i) {
    float x = rtr_bf16_float(qkv[n * 3 * C + i]);
    return qkv_bias ? rtr_bf16_float(rtr_bf16_round(x + qkv_bias[i])) : x;
}

void rtr_attention_bf16(rtr_bf16 *out, const rtr_bf16 *qkv, const float *qkv_bias, const float *bias,
                        const int32_t *lens, int B, int T, int C, int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int len = lens[b];
            float *p = malloc(((size_t)T + 1) * sizeof *p), *o = malloc((size_t)hs * sizeof *o);
            if (!p || !o) abort(); /* a reference has no error path: test-sized inputs only */
            for (int t = 0; t < T; t++) {
                rtr_bf16 *dst = out + ((size_t)b * T + t) * C + h * hs;
                if (t >= len) {
                    memset(dst, 0, (size_t)hs * sizeof *dst); /* bf16 zero is all-zero bits */
                    continue;
                }
                size_t qrow = (size_t)b * T + t;
                float maxv = -INFINITY;
                for (int s = 0; s < len; s++) {
                    size_t krow = (size_t)b * T + s;
                    float dot = 0.0f;
                    for (int i = 0; i < hs; i++)
                        dot += qkv_at(qkv, qkv_bias, qrow, C, h * hs + i) * qkv_at(qkv, qkv_bias, krow, C, C + h * hs + i);
                    dot *= scale;
                    if (bias) dot += bias[((size_t)h * T + t) * T + s];
                    p[s] = dot;
                    if (dot > maxv) maxv = dot;
                }
                float sum = 0.0f;
                for (int i = 0; i < hs; i++) o[i] = 0.0f;
                for (int s = 0; s < len; s++) {
                    float e = expf(p[s] - maxv), eb = rtr_bf16_float(rtr_bf16_round(e));
                    size_t vrow = (size_t)b * T + s;
                    sum += e;
                    for (int i = 0; i < hs; i++) o[i] += eb * qkv_at(qkv, qkv_bias, vrow, C, 2 * C + h * hs + i);
                }
                for (int i = 0; i < hs; i++) dst[i] = rtr_bf16_round(o[i] / sum);
            }
            free(p);
            free(o);
        }
}
