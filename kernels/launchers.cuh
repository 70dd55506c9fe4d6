/* launchers.cuh — the host-side launchers of every kernel in kernels/, one
 * per plain-C reference with the same name and argument order plus a stream
 * (references: include/rtr/ops.h). Each returns RTR_OK
 * or RTR_ERR_DEVICE naming the op and its sizes. Pointers are device memory. */
#ifndef RTR_KERNELS_LAUNCHERS_CUH
#define RTR_KERNELS_LAUNCHERS_CUH

#include "common.cuh"

#include "rtr/backend.h"
#include "rtr/ops.h"

namespace RTR_KNS {

/* encoder.cu */
rtr_status rtr_embedding_layernorm_forward(float *out, const int32_t *ids, const int32_t *pos_ids, const float *wte,
                                       const float *wpe, const float *wtt, const float *ln_w, const float *ln_b,
                                       float eps, int B, int T, int C, cudaStream_t stream);
rtr_status rtr_position_bias_forward(float *bias, const float *table, int T, int NH, int num_buckets, int max_distance,
                                 cudaStream_t stream);
rtr_status rtr_bias_add_forward(float *out, const float *inp, const float *bias, int N, int C, cudaStream_t stream);
rtr_status rtr_attention_forward(float *out, float *att, const float *qkv, const float *bias, const int32_t *lens, int B,
                             int T, int C, int NH, cudaStream_t stream);
rtr_status rtr_bias_gelu_forward(float *out, const float *inp, const float *bias, int N, int C, cudaStream_t stream);
rtr_status rtr_residual_layernorm_forward(float *out, const float *inp, const float *bias, const float *residual,
                                      const float *ln_w, const float *ln_b, float eps, int N, int C,
                                      cudaStream_t stream);
rtr_status rtr_pool_forward(float *out, const float *inp, const int32_t *lens, int B, int T, int C, rtr_pool_mode mode,
                            bool normalize, cudaStream_t stream);

/* encoder.cu, the bf16 path (include/rtr/ops_bf16.h) */
rtr_status rtr_embedding_layernorm_bf16(rtr_bf16 *out, const int32_t *ids, const int32_t *pos_ids, const float *wte,
                                        const float *wpe, const float *wtt, const float *ln_w, const float *ln_b,
                                        float eps, int B, int T, int C, cudaStream_t stream);
rtr_status rtr_bias_gelu_bf16(rtr_bf16 *out, const rtr_bf16 *inp, const float *bias, int N, int C,
                              cudaStream_t stream);
rtr_status rtr_residual_layernorm_bf16(rtr_bf16 *out, const rtr_bf16 *inp, const float *bias, const rtr_bf16 *residual,
                                       const float *ln_w, const float *ln_b, float eps, int N, int C,
                                       cudaStream_t stream);
rtr_status rtr_pool_bf16(float *out, const rtr_bf16 *inp, const int32_t *lens, int B, int T, int C, rtr_pool_mode mode,
                         bool normalize, cudaStream_t stream);

/* attention.cu */
rtr_status rtr_attention_bf16(rtr_bf16 *out, const rtr_bf16 *qkv, const float *qkv_bias, const float *bias,
                              const int32_t *lens, int B, int T, int C, int NH, cudaStream_t stream);

/* heads.cu */
rtr_status rtr_heads_forward(float *out_c, float *out_t, const float *A_c, const float *A_t, const float *C_c,
                         const float *C_t, const float *w2_c, const float *b2_c, const float *w2_t, const float *b2_t,
                         int N, int K, int H, cudaStream_t stream);
rtr_status rtr_heads_score(float *out_c, float *out_t, const float *X_c, const float *X_t, const float *G_c,
                       const float *G_t, const float *s_c, const float *s_t, const float *beta_c,
                       const float *beta_t, int N, int K, int H, cudaStream_t stream);
rtr_status rtr_heads_loss(float *dout_c, float *dout_t, double *loss, const float *out_c, const float *out_t,
                      const float *y_c, const float *y_t, float gscale_c, float gscale_t, int N, int K,
                      cudaStream_t stream);
rtr_status rtr_heads_loss_step(float *dout_c, float *dout_t, double *loss, const float *out_c, const float *out_t,
                               const float *y_c, const float *y_t, const rtr_batch_step *step, int N, int K,
                               cudaStream_t stream);
rtr_status rtr_heads_backward(float *dA_c, float *dA_t, float *dC_c, float *dC_t, float *dw2_c, float *db2_c,
                          float *dw2_t, float *db2_t, const float *dout_c, const float *dout_t, const float *A_c,
                          const float *A_t, const float *C_c, const float *C_t, const float *w2_c, const float *w2_t,
                          int N, int K, int H, cudaStream_t stream);
rtr_status rtr_heads_activate(float *p_correct, float *tokens, const float *out_c, const float *out_t, int token_target,
                          float token_scale, int N, int K, cudaStream_t stream);

/* route.cu */
rtr_status rtr_route_argmax(int32_t *choice, const float *p, const float *c, double lambda, int64_t n, int32_t k,
                        cudaStream_t stream);
rtr_status rtr_route_envelope(int32_t *pair, double *start, int32_t *m, const float *p, const float *c, int64_t n,
                          int32_t k, cudaStream_t stream);

/* train.cu */
rtr_status rtr_gather_rows(float *out, const float *in, const int64_t *idx, int n, int cols, cudaStream_t stream);
rtr_status rtr_batch_select(int64_t *idx, rtr_batch_step *step, int64_t *cursor, const int64_t *order,
                            const rtr_batch_step *table, int n, cudaStream_t stream);
rtr_status rtr_pair_table_forward(float *C, const float *P_m, const float *P_s, const float *b1,
                              const int32_t *pair_model, const int32_t *pair_strategy, int K, int H,
                              cudaStream_t stream);
rtr_status rtr_pair_table_backward(float *dP_m, float *dP_s, float *db1, const float *dC, const int32_t *pair_model,
                               const int32_t *pair_strategy, int K, int H, int n_models, int n_strategies,
                               cudaStream_t stream);

/* optim.cu */
rtr_status rtr_adam_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, int64_t t,
                       cudaStream_t stream);
rtr_status rtr_adam_update_step(float *param, const float *grad, float *m, float *v, size_t n,
                                const rtr_batch_step *step, cudaStream_t stream);

/* convert.cu: out[r*ld_out + c] = in[r*ld_in + c] rounded to nearest-even
 * bf16 or fp16 (16-bit words) for r < rows, c < cols; other words of out are
 * left alone. The inputs of low-precision GEMMs; p must not be RTR_GEMM_F32. */
rtr_status convert_f32(void *out, int ld_out, const float *in, int ld_in, int rows, int cols, rtr_gemm_precision p,
                       cudaStream_t stream);

} /* namespace RTR_KNS */

#endif
