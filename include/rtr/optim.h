/* Optimiser steps of the predictor trainer, as plain-C references shared by
 * the CPU trainer and the CUDA kernel of the same name (kernels/optim.cu).
 * All arrays are caller-owned float32 of n elements. */
#ifndef RTR_OPTIM_H
#define RTR_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RTR_ADAM_B1 0.9
#define RTR_ADAM_B2 0.999
#define RTR_ADAM_EPS 1e-8

/* Adam's bias-corrected step size for step t >= 1:
 * lr · sqrt(1 − β2^t) / (1 − β1^t), rounded to float. */
float adam_step_size(double lr, int64_t t);

/* One Adam step (t >= 1, counting from 1) over n parameters, in the Adam
 * paper's efficient form (bias corrections folded into the step size, ε
 * added to sqrt(v) rather than to sqrt(v̂)):
 *   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²   (in double, stored float)
 *   param −= adam_step_size(lr, t) · m / (sqrt(v) + ε)  (in float).
 * param, m, v are updated in place; grad is read. */
void adam_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, int64_t t);

#ifdef __cplusplus
}
#endif
#endif
