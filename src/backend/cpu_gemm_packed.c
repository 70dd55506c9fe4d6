/* Int8-weight GEMMs on packed constant weights (AVX2); see cpu_gemm_packed.h. */
#include "backend/cpu_gemm_packed.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_features.h"
#include "common/util.h"

#define MR 6  /* rows of the register tile */
#define NR 16 /* columns of the register tile (two ymm) */
#define AVX2 __attribute__((target("avx2,fma")))

bool cpu_packed_available(void) { return cpu_features_get()->avx2_fma; }

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

int cpu_i8_a_levels(int K) {
    int64_t kp = (int64_t)round_up((size_t)K, 2), levels = INT32_MAX / (CPU_I8_B_LEVELS * kp);
    return levels < 32767 ? (int)levels : 32767;
}

/* levels / max|x| and max|x| / levels for a row; NaN scale when the row
 * holds a NaN or infinity, so the output says so instead of hiding it. */
static void row_scales(float maxabs, bool finite, float levels, float *inv, float *scale) {
    if (!finite) {
        *inv = 0.0f;
        *scale = NAN;
    } else if (maxabs > 0.0f) {
        *inv = levels / maxabs;
        *scale = maxabs / levels;
    } else {
        *inv = *scale = 0.0f;
    }
}

/* ------------------------------------------------------------------ B */

rtr_status cpu_pack_b(cpu_packed *out, const float *B, int ldb, int N, int K) {
    memset(out, 0, sizeof *out);
    if (K > CPU_I8_MAX_K) return rtr_fail(RTR_ERR_INVALID, "int8 GEMM: K = %d exceeds %d", K, CPU_I8_MAX_K);
    int panels = (N + NR - 1) / NR, Kp = (int)round_up((size_t)K, 2);
    size_t bytes = (size_t)panels * Kp * NR * sizeof(int16_t);
    int16_t *q = aligned_alloc(32, round_up(bytes, 32));
    float *scale = calloc((size_t)panels * NR, sizeof *scale);
    if (!q || !scale) {
        free(q), free(scale);
        return RTR_ERR_NOMEM;
    }
    *out = (cpu_packed){B, ldb, N, K, Kp, q, scale};
    memset(q, 0, bytes);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *row = B + (size_t)n * ldb;
        float maxabs = 0.0f, probe = 0.0f, inv;
        for (int k = 0; k < K; k++) {
            maxabs = fmaxf(maxabs, fabsf(row[k]));
            probe += row[k] * 0.0f; /* NaN if any value is NaN or infinite */
        }
        row_scales(maxabs, probe == 0.0f, (float)CPU_I8_B_LEVELS, &inv, &scale[n]);
        /* panel n/NR, pair k/2, column n%NR, then k's parity */
        int16_t *p = q + (size_t)(n / NR) * Kp * NR;
        for (int k = 0; k < K; k++) p[((size_t)(k / 2) * NR + n % NR) * 2 + (k & 1)] = (int16_t)nearbyintf(row[k] * inv);
    }
    return RTR_OK;
}

void cpu_packed_free(cpu_packed *m) {
    free(m->q);
    free(m->scale);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ A */

size_t cpu_packed_scratch_bytes(const cpu_packed *B, int M) {
    size_t Mp = round_up((size_t)M, MR);
    return round_up(Mp * B->Kp * sizeof(int16_t), 32) + Mp * sizeof(float);
}

/* Rows [r0, r1) of A into q (row m at q + m·Kp, zero past K) and sa[m]. */
AVX2 static void quantize_rows(int16_t *q, float *sa, const float *A, int lda, int K, int Kp, int r0, int r1) {
    const float levels = (float)cpu_i8_a_levels(K);
    const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
    for (int m = r0; m < r1; m++) {
        const float *a = A + (size_t)m * lda;
        int16_t *qr = q + (size_t)m * Kp;
        __m256 vmax = zero, probe = zero;
        int k = 0;
        for (; k + 8 <= K; k += 8) {
            __m256 x = _mm256_loadu_ps(a + k);
            vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, x));
            probe = _mm256_add_ps(probe, _mm256_mul_ps(x, zero));
        }
        float lanes[8], probes[8], maxabs = 0.0f, pr = 0.0f, inv, scale;
        _mm256_storeu_ps(lanes, vmax);
        _mm256_storeu_ps(probes, probe);
        for (int i = 0; i < 8; i++) maxabs = fmaxf(maxabs, lanes[i]), pr += probes[i];
        for (int j = k; j < K; j++) maxabs = fmaxf(maxabs, fabsf(a[j])), pr += a[j] * 0.0f;
        row_scales(maxabs, pr == 0.0f, levels, &inv, &scale);
        sa[m] = scale;
        __m256 vinv = _mm256_set1_ps(inv);
        for (k = 0; k + 16 <= K; k += 16) {
            /* cvtps rounds to nearest even, as nearbyintf does */
            __m256i lo = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a + k), vinv));
            __m256i hi = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a + k + 8), vinv));
            /* packs works per 128-bit lane: put the four 64-bit quarters back in order */
            __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8);
            _mm256_storeu_si256((__m256i *)(qr + k), packed);
        }
        for (; k < K; k++) qr[k] = (int16_t)nearbyintf(a[k] * inv);
        for (; k < Kp; k++) qr[k] = 0;
    }
}

/* ------------------------------------------------------------ kernels */

/* The first mr rows and nr columns of a 6 x 16 tile of v into C. */
AVX2 static inline void store_tile(float *c, int ldc, int mr, int nr, __m256 v[MR][2]) {
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        if (nr == NR) {
            _mm256_storeu_ps(ci, v[i][0]);
            _mm256_storeu_ps(ci + 8, v[i][1]);
        } else {
            float tile[NR];
            _mm256_storeu_ps(tile, v[i][0]);
            _mm256_storeu_ps(tile + 8, v[i][1]);
            memcpy(ci, tile, (size_t)nr * sizeof *ci);
        }
    }
}

/* int8 tile: alpha · sa[i] · sb[j] · Σ_p a_i,p · b_p,j over `pairs` int16
 * pairs, a rows at a + i·lda (pairs adjacent). The twelve accumulators are
 * named so they stay in registers (an indexed array spilled to the stack
 * every step), and each row's broadcast is used at once for the same
 * reason. */
AVX2 static void kernel_i8(int pairs, const int16_t *a, size_t lda, const int16_t *b, const float *sa, const float *sb,
                           float alpha, float *c, int ldc, int mr, int nr) {
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define I8_ROW(ci0, ci1, i)                                             \
    do {                                                                \
        int32_t pair_;                                                  \
        memcpy(&pair_, a + (i) * lda + 2 * (size_t)p, sizeof pair_);    \
        __m256i va_ = _mm256_set1_epi32(pair_);                         \
        ci0 = _mm256_add_epi32(ci0, _mm256_madd_epi16(va_, b0));        \
        ci1 = _mm256_add_epi32(ci1, _mm256_madd_epi16(va_, b1));        \
    } while (0)
    for (int p = 0; p < pairs; p++) {
        __m256i b0 = _mm256_load_si256((const __m256i *)(b + (size_t)p * 2 * NR));
        __m256i b1 = _mm256_load_si256((const __m256i *)(b + (size_t)p * 2 * NR + NR));
        I8_ROW(c00, c01, 0);
        I8_ROW(c10, c11, 1);
        I8_ROW(c20, c21, 2);
        I8_ROW(c30, c31, 3);
        I8_ROW(c40, c41, 4);
        I8_ROW(c50, c51, 5);
    }
#undef I8_ROW
    __m256i acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256 s0 = _mm256_loadu_ps(sb), s1 = _mm256_loadu_ps(sb + 8), v[MR][2];
    for (int i = 0; i < MR; i++) {
        __m256 row = _mm256_set1_ps(alpha * sa[i]);
        v[i][0] = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][0]), _mm256_mul_ps(row, s0));
        v[i][1] = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][1]), _mm256_mul_ps(row, s1));
    }
    store_tile(c, ldc, mr, nr, v);
}

/* ------------------------------------------------------------- driver */

void cpu_packed_gemm(const cpu_packed *B, int M, float alpha, const float *A, int lda, float *C, int ldc,
                     void *scratch, bool parallel) {
    int K = B->K, Kp = B->Kp, N = B->N, panels = (N + NR - 1) / NR, tiles = (M + MR - 1) / MR;
    size_t Mp = (size_t)tiles * MR;
    int16_t *qa = scratch;
    float *sa = (float *)((char *)scratch + round_up(Mp * Kp * sizeof *qa, 32));
    /* rows per block: the block's quantised A stays in L2 (~128 KiB) while
     * every panel of B streams past it */
    int mc = (int)((128 * 1024 / ((size_t)Kp * sizeof *qa)) / MR * MR);
    if (mc < MR) mc = MR;
#pragma omp parallel if (parallel)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num(), per = (tiles + nt - 1) / nt;
        int r0 = t * per * MR, r1 = r0 + per * MR < (int)Mp ? r0 + per * MR : (int)Mp;
        if (r1 > r0) {
            int real = r1 < M ? r1 : M;
            if (real > r0) quantize_rows(qa, sa, A, lda, K, Kp, r0, real);
            for (int m = real > r0 ? real : r0; m < r1; m++) { /* padding rows of the last tile */
                memset(qa + (size_t)m * Kp, 0, (size_t)Kp * sizeof *qa);
                sa[m] = 0.0f;
            }
        }
        for (int i0 = r0; i0 < r1; i0 += mc) {
            int i1 = i0 + mc < r1 ? i0 + mc : r1;
            for (int j = 0; j < panels; j++) {
                int nr = N - j * NR < NR ? N - j * NR : NR;
                for (int i = i0; i < i1 && i < M; i += MR)
                    kernel_i8(Kp / 2, qa + (size_t)i * Kp, (size_t)Kp, B->q + (size_t)j * Kp * NR, sa + i,
                              B->scale + j * NR, alpha, C + (size_t)i * ldc + j * NR, ldc, M - i < MR ? M - i : MR, nr);
            }
        }
    }
}
