/* What the C benchmarks share: a seeded generator for their synthetic data
 * (the same sequence in every benchmark and on every platform) and the
 * comparison that sorts timings for a median. */
#ifndef RTR_BENCH_UTIL_H
#define RTR_BENCH_UTIL_H

#include <stdint.h>

/* Uniform in [0, 1): xorshift64* from a fixed seed. */
static uint64_t bench_rng = 0x9e3779b97f4a7c15ULL;
static inline double rnd(void) {
    bench_rng ^= bench_rng >> 12;
    bench_rng ^= bench_rng << 25;
    bench_rng ^= bench_rng >> 27;
    return (double)((bench_rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* qsort comparison of doubles, ascending. */
static inline int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

#endif
