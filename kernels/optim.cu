/* optim.cu — the Adam update on the GPU, same name and arguments as the C
 * reference in src/ref/optim.c plus a stream. Every operation is the
 * reference's float operation, in its order, with round-to-nearest
 * intrinsics so nvcc fuses nothing: the result is bit-identical. The step
 * size comes from the reference itself. */
#include "launchers.cuh"

#include "rtr/ops.h"

namespace RTR_KNS {

/* The step size is `step`, or bstep->adam_step where given (the trainer's
 * batch table: the same launch for every batch). */
__global__ void adam_update_kernel(float *param, const float *grad, float *m, float *v, size_t n, float step,
                                   const rtr_batch_step *bstep) {
    if (bstep) step = bstep->adam_step;
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

static rtr_status adam_launch(float *param, const float *grad, float *m, float *v, size_t n, float step,
                              const rtr_batch_step *bstep, cudaStream_t stream) {
    if (n == 0) return RTR_OK;
    unsigned grid = rtr_ceil_div(n, 256);
    RTR_LAUNCH(adam_update_kernel, grid < 65536 ? grid : 65536, 256, 0, stream, param, grad, m, v, n, step, bstep);
    RTR_LAUNCH_CHECK(bstep ? "adam_update_step" : "adam_update", "n=%zu step %g", n, (double)step);
    return RTR_OK;
}

rtr_status rtr_adam_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, int64_t t,
                       cudaStream_t stream) {
    return adam_launch(param, grad, m, v, n, rtr_adam_step_size(lr, t), nullptr, stream);
}

rtr_status rtr_adam_update_step(float *param, const float *grad, float *m, float *v, size_t n,
                                const rtr_batch_step *step, cudaStream_t stream) {
    return adam_launch(param, grad, m, v, n, 0.0f, step, stream);
}

} /* namespace RTR_KNS */
