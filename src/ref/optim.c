/* Optimiser steps (include/rtr/ops.h): the plain-C reference of the Adam
 * update; kernels/optim.cu does the same float arithmetic, operation for
 * operation (no fused multiply-add on either side: C11 compiles without
 * contraction, the kernel uses round-to-nearest intrinsics), so the two agree
 * bit for bit.
 *
 * The update is memory-bound (7 floats move per parameter, ~165 MB per step
 * at the paper's sizes), so it is written to stream: float arithmetic,
 * vectorised, and split over the OpenMP threads in fixed chunks. Every
 * element is computed on its own with the same operations whichever path or
 * thread takes it, so the result does not depend on the thread count. */
#include "rtr/ops.h"

#include <math.h>

#if defined(__AVX__) && !defined(__NO_MATH_ERRNO__)
#include <immintrin.h>
#define ADAM_AVX 1
#endif

float rtr_adam_step_size(double lr, int64_t t) {
    return (float)(lr * sqrt(1.0 - pow(RTR_ADAM_B2, (double)t)) / (1.0 - pow(RTR_ADAM_B1, (double)t)));
}

/* The constants as the kernel rounds them. */
#define B1 ((float)RTR_ADAM_B1)
#define C1 ((float)(1 - RTR_ADAM_B1))
#define B2 ((float)RTR_ADAM_B2)
#define C2 ((float)(1 - RTR_ADAM_B2))
#define EPS ((float)RTR_ADAM_EPS)

/* Elements [0, n) of one chunk. The loop is the definition; with errno-setting
 * math (GCC's default) sqrtf keeps the compiler from vectorising it, so on
 * AVX the same operations run eight at a time with IEEE vector sqrt and
 * divide (bit-identical to the scalar ones). */
static void adam_chunk(float *param, const float *grad, float *m, float *v, size_t n, float step) {
    size_t i = 0;
#ifdef ADAM_AVX
    const __m256 b1 = _mm256_set1_ps(B1), c1 = _mm256_set1_ps(C1), b2 = _mm256_set1_ps(B2),
                 c2 = _mm256_set1_ps(C2), eps = _mm256_set1_ps(EPS), st = _mm256_set1_ps(step);
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(grad + i);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(c1, g));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(c2, g), g));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 den = _mm256_add_ps(_mm256_sqrt_ps(vi), eps);
        _mm256_storeu_ps(param + i, _mm256_sub_ps(_mm256_loadu_ps(param + i), _mm256_div_ps(_mm256_mul_ps(st, mi), den)));
    }
#endif
    for (; i < n; i++) {
        float g = grad[i];
        float mi = B1 * m[i] + C1 * g;
        float vi = B2 * v[i] + C2 * g * g;
        m[i] = mi, v[i] = vi;
        param[i] -= step * mi / (sqrtf(vi) + EPS);
    }
}

/* Elements per chunk: 256 KB per array, enough to amortise a chunk's start. */
#define ADAM_CHUNK ((size_t)1 << 16)

/* The update with step size `step`, chunk by chunk over the threads. */
static void adam_apply(float *param, const float *grad, float *m, float *v, size_t n, float step) {
    size_t chunks = (n + ADAM_CHUNK - 1) / ADAM_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (size_t c = 0; c < chunks; c++) {
        size_t i0 = c * ADAM_CHUNK, len = n - i0 < ADAM_CHUNK ? n - i0 : ADAM_CHUNK;
        adam_chunk(param + i0, grad + i0, m + i0, v + i0, len, step);
    }
}

void rtr_adam_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, int64_t t) {
    adam_apply(param, grad, m, v, n, rtr_adam_step_size(lr, t));
}

void rtr_adam_update_step(float *param, const float *grad, float *m, float *v, size_t n, const rtr_batch_step *step) {
    adam_apply(param, grad, m, v, n, step->adam_step);
}
