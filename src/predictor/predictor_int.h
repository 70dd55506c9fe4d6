/* Internals of the predictor shared by train.c, checkpoint.c and the tests;
 * not part of the public API. */
#ifndef RTR_PREDICTOR_INT_H
#define RTR_PREDICTOR_INT_H

#include "rtr/predictor.h"

/* Allocate p's parameter block and pair arrays for the sizes already set in
 * p (D, H, U, n_models, n_strategies, n_pairs) and point the views into it. */
rtr_status rtr_predictor_alloc_(rtr_predictor *p);

/* Gradient check hook: treats rows 0..n of d as one batch with the targets
 * exactly as given (no token transform or scaling), writes the gradient of
 * the two mean losses into grad (n_trainable floats, parameter layout) and
 * the mean losses into loss. */
rtr_status rtr_predictor_batch_grad_(const rtr_predictor *p, const rtr_train_data *d, float *grad,
                                     double loss[2]);

#endif
