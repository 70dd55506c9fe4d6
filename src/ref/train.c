/* The plain-C references of the trainer's glue ops (kernels/train.cu): a
 * training batch gathered by index, and each head's pair table C built from
 * the per-model and per-strategy products and its gradient scattered back.
 * The kernels add in the same pair order, so the two agree bit for bit. */
#include "rtr/ops.h"

#include <stddef.h>

void rtr_gather_rows(float *out, const float *in, const int64_t *idx, int n, int cols) {
    for (int r = 0; r < n; r++)
        for (int c = 0; c < cols; c++) out[(size_t)r * cols + c] = in[(size_t)idx[r] * cols + c];
}

void rtr_batch_select(int64_t *idx, rtr_batch_step *step, int64_t *cursor, const int64_t *order,
                      const rtr_batch_step *table, int n) {
    const rtr_batch_step *s = &table[*cursor];
    for (int i = 0; i < n; i++) idx[i] = order[s->first + i];
    *step = *s;
    ++*cursor;
}

void rtr_pair_table_forward(float *C, const float *P_m, const float *P_s, const float *b1,
                        const int32_t *pair_model, const int32_t *pair_strategy, int K, int H) {
    for (int k = 0; k < K; k++) {
        const float *pm = P_m + (size_t)pair_model[k] * H, *ps = P_s + (size_t)pair_strategy[k] * H;
        for (int j = 0; j < H; j++) C[(size_t)k * H + j] = pm[j] + ps[j] + b1[j];
    }
}

void rtr_pair_table_backward(float *dP_m, float *dP_s, float *db1, const float *dC,
                         const int32_t *pair_model, const int32_t *pair_strategy, int K, int H,
                         int n_models, int n_strategies) {
    (void)n_models, (void)n_strategies; /* the sizes of dP_m and dP_s; the kernel needs them */
    for (int k = 0; k < K; k++) {
        float *gm = dP_m + (size_t)pair_model[k] * H, *gs = dP_s + (size_t)pair_strategy[k] * H;
        const float *dc = dC + (size_t)k * H;
        for (int j = 0; j < H; j++) gm[j] += dc[j], gs[j] += dc[j], db1[j] += dc[j];
    }
}
