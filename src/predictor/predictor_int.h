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

/* rtr_predictor_train_on with every batch taking the generic step (one op
 * call per stage over the whole batch, the full gradient, one Adam update),
 * as non-host backends do, also on a host backend: the yardstick of the
 * host step's tasks. */
rtr_status rtr_predictor_train_generic_(rtr_backend *b, rtr_predictor *p, const rtr_train_data *d, rtr_epoch_fn log,
                                        void *user);

/* rtr_heads_backward (include/rtr/ops.h) in one vectorisable pass, as the
 * host step computes it: the same sums in the same order, so equal to the
 * reference (tests/test_heads.c). */
void rtr_heads_backward_rows_(float *dA_c, float *dA_t, float *dC_c, float *dC_t, float *dw2_c, float *db2_c,
                              float *dw2_t, float *db2_t, const float *dout_c, const float *dout_t, const float *A_c,
                              const float *A_t, const float *C_c, const float *C_t, const float *w2_c,
                              const float *w2_t, int N, int K, int H);

/* The fit-row order of epoch `epochs` (1: the first) of a run over n rows
 * whose fit rows are fit[0..n_fit), with window_rows as in rtr_train_params
 * and the order's generator seeded with seed: into out (n_fit). */
rtr_status rtr_train_row_order_(int64_t *out, const int64_t *fit, int64_t n_fit, int64_t n, int64_t window_rows,
                                uint64_t seed, int epochs);

/* RTR_ERR_NUMERIC naming the row (row0 + i) and pair of the first score that
 * is not a probability in [0, 1] with a finite token count >= 0 (rows x K). */
rtr_status rtr_predictor_check_scores_(const float *p_correct, const float *tokens, int64_t row0, int64_t rows, int K);

#endif
