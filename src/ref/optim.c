/* Optimiser steps (include/rtr/ops.h): the plain-C reference of the Adam
 * update; kernels/optim.cu does the same arithmetic, operation for operation,
 * so the two agree bit for bit. */
#include "rtr/ops.h"

#include <math.h>

float rtr_adam_step_size(double lr, int64_t t) {
    return (float)(lr * sqrt(1.0 - pow(RTR_ADAM_B2, (double)t)) / (1.0 - pow(RTR_ADAM_B1, (double)t)));
}

void rtr_adam_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, int64_t t) {
    float step = rtr_adam_step_size(lr, t);
    /* One thread: the update is memory-bound, and a parallel region per step
     * cost more than it gained whenever the machine was shared. */
    for (size_t i = 0; i < n; i++) {
        m[i] = (float)(RTR_ADAM_B1 * m[i] + (1 - RTR_ADAM_B1) * grad[i]);
        v[i] = (float)(RTR_ADAM_B2 * v[i] + (1 - RTR_ADAM_B2) * (double)grad[i] * grad[i]);
        param[i] -= step * m[i] / (sqrtf(v[i]) + (float)RTR_ADAM_EPS);
    }
}
