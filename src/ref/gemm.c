/* Plain C reference of the bf16 linear layer (the backend's gemm_bf16;
 * cuBLASLt on the GPU, include/rtr/ops_bf16.h): products of bf16 values
 * are exact in double, so the sum below is the exact one up to double
 * rounding; the result (with the bias and GELU of the feed-forward's first
 * layer, in float) rounded once to bf16. */
#include "rtr/ops_bf16.h"

#include <math.h>

void rtr_gemm_bf16(rtr_bf16 *out, const rtr_bf16 *inp, const rtr_bf16 *w, const float *gelu_bias, int N, int IC,
                   int OC) {
#pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double acc = 0.0;
            for (int i = 0; i < IC; i++)
                acc += (double)rtr_bf16_float(inp[(size_t)n * IC + i]) * rtr_bf16_float(w[(size_t)o * IC + i]);
            float x = (float)acc;
            if (gelu_bias) {
                x += gelu_bias[o];
                x = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
            }
            out[(size_t)n * OC + o] = rtr_bf16_round(x);
        }
}
