/* train.cu — the predictor trainer's glue on the GPU around the fused heads:
 * the batch gather and one head's pair table with its backward. Same names
 * and arguments as the C references in src/ref/heads.c plus a stream; each output
 * element is computed by one thread with the reference's operations in its
 * order (the backward walks the pairs k = 0..K−1 as the reference does), so
 * results are bit-identical. Tables are small (tens of pairs x H): a plain
 * grid-stride loop over outputs is enough. */
#include "launchers.cuh"

#include "rtr/predictor.h"

namespace RTR_KNS {

static unsigned grid_for(size_t n) {
    unsigned g = rtr_ceil_div(n, 256);
    return g < 65536 ? (g ? g : 1) : 65536;
}

__global__ void gather_rows_kernel(float *out, const float *in, const int64_t *idx, int n, int cols) {
    size_t total = (size_t)n * cols;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / cols, c = i % cols;
        out[i] = in[(size_t)idx[r] * cols + c];
    }
}

rtr_status rtr_gather_rows(float *out, const float *in, const int64_t *idx, int n, int cols, cudaStream_t stream) {
    if (n <= 0 || cols <= 0) return RTR_OK;
    RTR_LAUNCH(gather_rows_kernel, grid_for((size_t)n * cols), 256, 0, stream, out, in, idx, n, cols);
    RTR_LAUNCH_CHECK("gather_rows", "n=%d cols=%d", n, cols);
    return RTR_OK;
}

/* One block: every thread reads the cursor before thread 0 advances it. */
__global__ void batch_select_kernel(int64_t *idx, rtr_batch_step *step, int64_t *cursor, const int64_t *order,
                                    const rtr_batch_step *table, int n) {
    int64_t s = *cursor, first = table[s].first;
    for (int i = threadIdx.x; i < n; i += blockDim.x) idx[i] = order[first + i];
    __syncthreads();
    if (threadIdx.x == 0) *step = table[s], *cursor = s + 1;
}

rtr_status rtr_batch_select(int64_t *idx, rtr_batch_step *step, int64_t *cursor, const int64_t *order,
                            const rtr_batch_step *table, int n, cudaStream_t stream) {
    RTR_LAUNCH(batch_select_kernel, 1, 256, 0, stream, idx, step, cursor, order, table, n);
    RTR_LAUNCH_CHECK("batch_select", "n=%d", n);
    return RTR_OK;
}

__global__ void pair_table_forward_kernel(float *C, const float *P_m, const float *P_s, const float *b1,
                                          const int32_t *pair_model, const int32_t *pair_strategy, int K, int H) {
    size_t total = (size_t)K * H;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t k = i / H, j = i % H;
        C[i] = __fadd_rn(__fadd_rn(P_m[(size_t)pair_model[k] * H + j], P_s[(size_t)pair_strategy[k] * H + j]), b1[j]);
    }
}

rtr_status rtr_pair_table_forward(float *C, const float *P_m, const float *P_s, const float *b1,
                              const int32_t *pair_model, const int32_t *pair_strategy, int K, int H,
                              cudaStream_t stream) {
    if (K <= 0 || H <= 0) return RTR_OK;
    RTR_LAUNCH(pair_table_forward_kernel, grid_for((size_t)K * H), 256, 0, stream, C, P_m, P_s, b1, pair_model,
               pair_strategy, K, H);
    RTR_LAUNCH_CHECK("pair_table_forward", "K=%d H=%d", K, H);
    return RTR_OK;
}

/* One thread per output element of dP_m (rows 0..n_models−1), dP_s (the next
 * n_strategies rows) and db1 (the last row): it adds the dC rows of the pairs
 * that use it, in pair order, to the value already there. */
__global__ void pair_table_backward_kernel(float *dP_m, float *dP_s, float *db1, const float *dC,
                                           const int32_t *pair_model, const int32_t *pair_strategy, int K, int H,
                                           int n_models, int n_strategies) {
    size_t total = (size_t)(n_models + n_strategies + 1) * H;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        int row = (int)(i / H), j = (int)(i % H);
        float *dst = row < n_models ? dP_m + (size_t)row * H + j
                     : row < n_models + n_strategies ? dP_s + (size_t)(row - n_models) * H + j
                                                     : db1 + j;
        float acc = *dst;
        for (int k = 0; k < K; k++) {
            bool uses = row < n_models ? pair_model[k] == row
                        : row < n_models + n_strategies ? pair_strategy[k] == row - n_models
                                                        : true;
            if (uses) acc = __fadd_rn(acc, dC[(size_t)k * H + j]);
        }
        *dst = acc;
    }
}

rtr_status rtr_pair_table_backward(float *dP_m, float *dP_s, float *db1, const float *dC, const int32_t *pair_model,
                               const int32_t *pair_strategy, int K, int H, int n_models, int n_strategies,
                               cudaStream_t stream) {
    if (K <= 0 || H <= 0) return RTR_OK;
    size_t total = (size_t)(n_models + n_strategies + 1) * H;
    RTR_LAUNCH(pair_table_backward_kernel, grid_for(total), 256, 0, stream, dP_m, dP_s, db1, dC, pair_model,
               pair_strategy, K, H, n_models, n_strategies);
    RTR_LAUNCH_CHECK("pair_table_backward", "K=%d H=%d models=%d strategies=%d", K, H, n_models, n_strategies);
    return RTR_OK;
}

} /* namespace RTR_KNS */
