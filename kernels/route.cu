/* route.cu — per-query routing on the GPU: the decision for one λ (the best
 * pair maximising λ·(p + c) − c over K pairs, NaN entries never chosen, ties
 * as in include/rtr/route.h) and every query's upper envelope over λ ∈ [0,1]
 * (the pieces the exact λ path and the sweep are built from). Same names and
 * arguments as the C references in src/ref/route.c plus a stream; the arithmetic
 * is the reference's, step by step in double with round-to-nearest
 * intrinsics (no FMA contraction), so results agree exactly. One thread per
 * query: K is small (tens of pairs) and rows are contiguous. */
#include "launchers.cuh"

#include "rtr/route.h"

namespace RTR_KNS {

__global__ void route_argmax_kernel(int32_t *choice, const float *p, const float *c, double lambda, int64_t n,
                                    int32_t k) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float *pi = p + i * k, *ci = c + i * k;
    int32_t best = -1;
    double bs = 0, bc = 0, bp = 0;
    for (int32_t j = 0; j < k; j++) {
        if (isnan(pi[j]) || isnan(ci[j])) continue;
        /* the reference's rounding, step by step: no FMA contraction */
        double pj = pi[j], cj = ci[j], s = __dsub_rn(__dmul_rn(lambda, __dadd_rn(pj, cj)), cj);
        bool better = best < 0 || (s != bs ? s > bs : cj != bc ? cj < bc : pj > bp);
        if (better) best = j, bs = s, bc = cj, bp = pj;
    }
    choice[i] = best;
}

rtr_status rtr_route_argmax(int32_t *choice, const float *p, const float *c, double lambda, int64_t n, int32_t k,
                        cudaStream_t stream) {
    if (n <= 0) return RTR_OK;
    if (n > (int64_t)256 * 2147483647)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "route_argmax: %lld queries in one call", (long long)n);
    RTR_LAUNCH(route_argmax_kernel, rtr_ceil_div((size_t)n, 256), 256, 0, stream, choice, p, c, lambda, n, k);
    RTR_LAUNCH_CHECK("route_argmax", "n=%lld k=%d", (long long)n, k);
    return RTR_OK;
}

/* Line order of the envelope (route.c's line_cmp): slope ascending, then
 * the higher intercept, then the lower index. */
__device__ bool line_before(const rtr_line &u, const rtr_line &v) {
    if (u.a != v.a) return u.a < v.a;
    if (u.b != v.b) return u.b > v.b;
    return u.j < v.j;
}

/* rtr_envelope for query i, with its k lines in thread-local memory: the
 * same sort order (insertion sort; the order is total, so any sort agrees),
 * hull scan and clipping. */
__global__ void route_envelope_kernel(int32_t *pair, double *start, int32_t *m, const float *p, const float *c,
                                      int64_t n, int32_t k) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    rtr_line l[RTR_ENVELOPE_KMAX];
    const float *pi = p + i * k, *ci = c + i * k;
    int32_t cnt = 0;
    for (int32_t j = 0; j < k; j++) {
        if (isnan(pi[j]) || isnan(ci[j])) continue;
        rtr_line x = {__dadd_rn((double)pi[j], (double)ci[j]), -(double)ci[j], j};
        int32_t t = cnt++;
        for (; t > 0 && line_before(x, l[t - 1]); t--) l[t] = l[t - 1];
        l[t] = x;
    }
    int32_t h = 0;
    for (int32_t t = 0; t < cnt; t++) {
        if (h && l[h - 1].a == l[t].a) continue;
        while (h >= 2 && __dmul_rn(__dsub_rn(l[h - 2].b, l[h - 1].b), __dsub_rn(l[t].a, l[h - 1].a)) >=
                             __dmul_rn(__dsub_rn(l[h - 1].b, l[t].b), __dsub_rn(l[h - 1].a, l[h - 2].a)))
            h--;
        l[h++] = l[t];
    }
    int32_t out = 0;
    double cur = 0;
    int32_t *pair_i = pair + i * k;
    double *start_i = start + i * k;
    for (int32_t t = 0; t < h; t++) {
        double end = t + 1 < h ? __dsub_rn(l[t].b, l[t + 1].b) / __dsub_rn(l[t + 1].a, l[t].a) : INFINITY;
        if (end <= cur) continue;
        pair_i[out] = l[t].j;
        start_i[out++] = cur;
        if (end >= 1) break;
        cur = end;
    }
    m[i] = out;
}

rtr_status rtr_route_envelope(int32_t *pair, double *start, int32_t *m, const float *p, const float *c, int64_t n,
                          int32_t k, cudaStream_t stream) {
    if (n <= 0) return RTR_OK;
    if (k < 1 || k > RTR_ENVELOPE_KMAX)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "route_envelope: %d pairs; the GPU kernel takes 1 to %d", (int)k,
                        RTR_ENVELOPE_KMAX);
    if (n > (int64_t)128 * 2147483647)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "route_envelope: %lld queries in one call", (long long)n);
    RTR_LAUNCH(route_envelope_kernel, rtr_ceil_div((size_t)n, 128), 128, 0, stream, pair, start, m, p, c, n, k);
    RTR_LAUNCH_CHECK("route_envelope", "n=%lld k=%d", (long long)n, k);
    return RTR_OK;
}

} /* namespace RTR_KNS */
