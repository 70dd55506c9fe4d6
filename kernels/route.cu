/* route.cu — per-query routing decision for one λ on the GPU: the best pair
 * maximising λ·(p + c) − c over K pairs, NaN entries never chosen, ties as in
 * include/rtr/route.h. Same name and arguments as the C reference in
 * src/route.c plus a stream; scores are computed in double with the same
 * expression, so the choice agrees exactly. One thread per query: K is small
 * (tens of pairs) and rows are contiguous. */
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

rtr_status route_argmax(int32_t *choice, const float *p, const float *c, double lambda, int64_t n, int32_t k,
                        cudaStream_t stream) {
    if (n <= 0) return RTR_OK;
    if (n > (int64_t)256 * 2147483647)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "route_argmax: %lld queries in one call", (long long)n);
    RTR_LAUNCH(route_argmax_kernel, rtr_ceil_div((size_t)n, 256), 256, 0, stream, choice, p, c, lambda, n, k);
    RTR_LAUNCH_CHECK("route_argmax", "n=%lld k=%d", (long long)n, k);
    return RTR_OK;
}

} /* namespace RTR_KNS */
