/* optim.cu — the Adam update on the GPU, same name and arguments as the C
 * reference in src/ref/optim.c plus a stream. Every operation is the
 * reference's float operation, in its order, with round-to-nearest
 * intrinsics so nvcc fuses nothing: the result is bit-identical. The step
 * size comes from the reference itself. */
#include "launchers.cuh"

#include "rtr/ops.h"

namespace RTR_KNS {

__global__ void adam_update_kernel(float *param, const float *grad, float *m, float *v, size_t n, float step) {
    const float b1 = (float)RTR_ADAM_B1, c1 = (float)(1 - RTR_ADAM_B1), b2 = (float)RTR_ADAM_B2,
                c2 = (float)(1 - RTR_ADAM_B2), eps = (float)RTR_ADAM_EPS;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = grad[i];
        float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(c1, g));
        float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(c2, g), g));
        m[i] = mi, v[i] = vi;
        float denom = __fadd_rn(__fsqrt_rn(vi), eps);
        param[i] = __fsub_rn(param[i], __fdiv_rn(__fmul_rn(step, mi), denom));
    }
}

rtr_status rtr_adam_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, int64_t t,
                       cudaStream_t stream) {
    if (n == 0) return RTR_OK;
    unsigned grid = rtr_ceil_div(n, 256);
    RTR_LAUNCH(adam_update_kernel, grid < 65536 ? grid : 65536, 256, 0, stream, param, grad, m, v, n,
               rtr_adam_step_size(lr, t));
    RTR_LAUNCH_CHECK("adam_update", "n=%zu t=%lld", n, (long long)t);
    return RTR_OK;
}

} /* namespace RTR_KNS */
