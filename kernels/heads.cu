/* heads.cu — the fused concat-MLP predictor heads on the GPU: forward over a
 * tile of queries × all pairs (both heads in one pass over A), its folded
 * scoring form (two operations per unit instead of three), the loss and
 * its gradient, the backward into A, C, w2 and b2, and the activation. Each
 * launcher has the name and arguments of its plain-C reference in
 * src/ref/heads.c (see include/rtr/predictor.h) plus a stream.
 *
 * Forward: a block computes a tile of 64 queries × 32 pairs of both heads,
 * streaming A and C through shared memory 32 hidden units at a time, like a
 * GEMM whose inner product is w2·relu(a + c): every A element loaded serves
 * 32 pairs, every C element 64 queries. No N×K×H tensor ever exists.
 * Scoring (heads_score, the hot loop of `rtr score`) has its own
 * register-tiled kernel with a pair tile matched to K (below). */
#include "launchers.cuh"

#include "rtr/predictor.h"

namespace RTR_KNS {

/* Forward tile: QT queries × PT pairs per block of 16 × 16 threads, each
 * thread owning QPT × PPT outputs of both heads; the hidden units stream
 * through shared memory JT at a time, stored [unit][query|pair] so the inner
 * loop reads one broadcast row per unit. */
constexpr int QT = 64, PT = 32, JT = 32, QPT = QT / 16, PPT = PT / 16;

__global__ void __launch_bounds__(256) heads_tile_kernel(float *out_c, float *out_t, const float *A_c,
                                                         const float *A_t, const float *C_c, const float *C_t,
                                                         const float *w_c, const float *w_t, const float *bias_c,
                                                         const float *bias_t, int N, int K, int H) {
    __shared__ float a_s[2][JT][QT + 1], c_s[2][JT][PT + 1], w_s[2][JT];
    int tid = threadIdx.x, tq = tid % 16, tp = tid / 16;
    int q0 = blockIdx.x * QT, p0 = blockIdx.y * PT;
    float acc[2][QPT][PPT] = {};
    for (int j0 = 0; j0 < H; j0 += JT) {
        /* units past H load as zero with weight 0: they add nothing */
        for (int e = tid; e < QT * JT; e += blockDim.x) {
            int q = e / JT, jj = e % JT, n = q0 + q, j = j0 + jj;
            bool in = n < N && j < H;
            a_s[0][jj][q] = in ? A_c[(size_t)n * H + j] : 0.0f;
            a_s[1][jj][q] = in ? A_t[(size_t)n * H + j] : 0.0f;
        }
        for (int e = tid; e < PT * JT; e += blockDim.x) {
            int p = e / JT, jj = e % JT, k = p0 + p, j = j0 + jj;
            bool in = k < K && j < H;
            c_s[0][jj][p] = in ? C_c[(size_t)k * H + j] : 0.0f;
            c_s[1][jj][p] = in ? C_t[(size_t)k * H + j] : 0.0f;
        }
        if (tid < JT) {
            w_s[0][tid] = j0 + tid < H ? w_c[j0 + tid] : 0.0f;
            w_s[1][tid] = j0 + tid < H ? w_t[j0 + tid] : 0.0f;
        }
        __syncthreads();
        for (int jj = 0; jj < JT; jj++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                float w = w_s[h][jj], a[QPT], c[PPT];
#pragma unroll
                for (int i = 0; i < QPT; i++) a[i] = a_s[h][jj][tq + 16 * i];
#pragma unroll
                for (int r = 0; r < PPT; r++) c[r] = c_s[h][jj][tp + 16 * r];
#pragma unroll
                for (int i = 0; i < QPT; i++)
#pragma unroll
                    for (int r = 0; r < PPT; r++) acc[h][i][r] += w * fmaxf(a[i] + c[r], 0.0f); /* 3 instructions */
            }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < QPT; i++)
#pragma unroll
        for (int r = 0; r < PPT; r++) {
            int n = q0 + tq + 16 * i, k = p0 + tp + 16 * r;
            if (n < N && k < K) {
                out_c[(size_t)n * K + k] = bias_c[0] + acc[0][i][r];
                out_t[(size_t)n * K + k] = bias_t[0] + acc[1][i][r];
            }
        }
}

rtr_status rtr_heads_forward(float *out_c, float *out_t, const float *A_c, const float *A_t, const float *C_c,
                         const float *C_t, const float *w2_c, const float *b2_c, const float *w2_t, const float *b2_t,
                         int N, int K, int H, cudaStream_t stream) {
    if ((size_t)N * K == 0) return RTR_OK;
    if (K > 65535 * PT) return rtr_fail(RTR_ERR_UNSUPPORTED, "heads_forward: K=%d pairs in one call", K);
    dim3 grid(rtr_ceil_div((size_t)N, QT), rtr_ceil_div((size_t)K, PT));
    RTR_LAUNCH(heads_tile_kernel, grid, 256, 0, stream, out_c, out_t, A_c, A_t, C_c, C_t, w2_c, w2_t, b2_c, b2_t, N, K,
               H);
    RTR_LAUNCH_CHECK("heads_forward", "N=%d K=%d H=%d", N, K, H);
    return RTR_OK;
}

/* heads_score, register-tiled: a thread owns SQ queries × 8 pairs of both
 * heads (64 accumulators); a block is SN × KG threads covering SN·SQ = 128
 * queries × 8·KG pairs, KG = ceil(min(K, 32) / 8): the pair tile matches K
 * (K = 24 pairs run in one tile of 24, none padded). The pair tables G and
 * signs s stream through shared memory SJ units at a time, stored
 * [unit][pair], so a thread's 8 pairs are two 16-byte broadcast loads; its
 * queries' rows of X come from global memory (L1) 4 units at a time, one
 * 16-byte load each when H % 4 == 0 (VEC). Per 4 units: 8 X loads and 18
 * shared loads (16-byte) feed 512 max/FMA instructions, so the kernel runs
 * at the fp32 pipe's rate (2 instructions per unit, head and prediction:
 * the floor in docs/CUDA.md). Sums in unit order, as the reference. */
constexpr int SQ = 4, SN = 32, SJ = 32;

template <int KG, bool VEC>
__global__ void __launch_bounds__(SN *KG) heads_score_kernel(float *out_c, float *out_t, const float *X_c,
                                                             const float *X_t, const float *G_c, const float *G_t,
                                                             const float *s_c, const float *s_t, const float *beta_c,
                                                             const float *beta_t, int N, int K, int H) {
    __shared__ __align__(16) float g_s[2][SJ][8 * KG];
    __shared__ float s_s[2][SJ];
    int tn = threadIdx.x, tk = threadIdx.y, tid = tk * SN + tn;
    int q0 = blockIdx.x * SN * SQ + tn, k0 = blockIdx.y * 8 * KG;
    const float *xr[2][SQ]; /* this thread's query rows (past N: row N - 1, never stored) */
#pragma unroll
    for (int i = 0; i < SQ; i++) {
        size_t n = (size_t)min(q0 + SN * i, N - 1);
        xr[0][i] = X_c + n * H, xr[1][i] = X_t + n * H;
    }
    float acc[2][SQ][8] = {};
    for (int j0 = 0; j0 < H; j0 += SJ) {
        __syncthreads(); /* the previous stage consumed */
        /* units past H and pairs past K stage as 0 (sign 0: they add nothing) */
        for (int e = tid; e < 8 * KG * SJ; e += SN * KG) {
            int p = e / SJ, jj = e % SJ, k = k0 + p, j = j0 + jj;
            bool in = k < K && j < H;
            g_s[0][jj][p] = in ? G_c[(size_t)k * H + j] : 0.0f;
            g_s[1][jj][p] = in ? G_t[(size_t)k * H + j] : 0.0f;
        }
        if (tid < SJ) {
            s_s[0][tid] = j0 + tid < H ? s_c[j0 + tid] : 0.0f;
            s_s[1][tid] = j0 + tid < H ? s_t[j0 + tid] : 0.0f;
        }
        __syncthreads();
        for (int jj = 0; jj < SJ; jj += 4) {
            float x[2][SQ][4];
#pragma unroll
            for (int h = 0; h < 2; h++)
#pragma unroll
                for (int i = 0; i < SQ; i++) {
                    if (VEC && j0 + jj < H) {
                        float4 v = *reinterpret_cast<const float4 *>(xr[h][i] + j0 + jj);
                        x[h][i][0] = v.x, x[h][i][1] = v.y, x[h][i][2] = v.z, x[h][i][3] = v.w;
                    } else {
#pragma unroll
                        for (int u = 0; u < 4; u++) x[h][i][u] = j0 + jj + u < H ? xr[h][i][j0 + jj + u] : 0.0f;
                    }
                }
#pragma unroll
            for (int u = 0; u < 4; u++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    float4 ga = *reinterpret_cast<const float4 *>(&g_s[h][jj + u][tk * 8]);
                    float4 gb = *reinterpret_cast<const float4 *>(&g_s[h][jj + u][tk * 8 + 4]);
                    float g[8] = {ga.x, ga.y, ga.z, ga.w, gb.x, gb.y, gb.z, gb.w}, sgn = s_s[h][jj + u];
#pragma unroll
                    for (int i = 0; i < SQ; i++)
#pragma unroll
                        for (int r = 0; r < 8; r++)
                            acc[h][i][r] = fmaf(sgn, fmaxf(x[h][i][u], g[r]), acc[h][i][r]); /* 2 instructions */
                }
        }
    }
#pragma unroll
    for (int i = 0; i < SQ; i++)
#pragma unroll
        for (int r = 0; r < 8; r++) {
            int n = q0 + SN * i, k = k0 + tk * 8 + r;
            if (n < N && k < K) {
                out_c[(size_t)n * K + k] = beta_c[k] + acc[0][i][r];
                out_t[(size_t)n * K + k] = beta_t[k] + acc[1][i][r];
            }
        }
}

template <int KG>
static rtr_status launch_heads_score(float *out_c, float *out_t, const float *X_c, const float *X_t, const float *G_c,
                                     const float *G_t, const float *s_c, const float *s_t, const float *beta_c,
                                     const float *beta_t, int N, int K, int H, cudaStream_t stream) {
    dim3 grid(rtr_ceil_div((size_t)N, SN * SQ), rtr_ceil_div((size_t)K, 8 * KG)), block(SN, KG);
    /* 16-byte loads of X rows: H a multiple of 4 and both bases 16-byte aligned */
    bool vec = H % 4 == 0 && (uintptr_t)X_c % 16 == 0 && (uintptr_t)X_t % 16 == 0;
    auto kernel = vec ? heads_score_kernel<KG, true> : heads_score_kernel<KG, false>;
    RTR_LAUNCH(kernel, grid, block, 0, stream, out_c, out_t, X_c, X_t, G_c, G_t, s_c, s_t, beta_c, beta_t, N, K, H);
    RTR_LAUNCH_CHECK("heads_score", "N=%d K=%d H=%d", N, K, H);
    return RTR_OK;
}

rtr_status rtr_heads_score(float *out_c, float *out_t, const float *X_c, const float *X_t, const float *G_c,
                       const float *G_t, const float *s_c, const float *s_t, const float *beta_c,
                       const float *beta_t, int N, int K, int H, cudaStream_t stream) {
    if ((size_t)N * K == 0) return RTR_OK;
    if (K > 65535 * 32) return rtr_fail(RTR_ERR_UNSUPPORTED, "heads_score: K=%d pairs in one call", K);
    switch (K >= 32 ? 4 : (K + 7) / 8) {
    case 1: return launch_heads_score<1>(out_c, out_t, X_c, X_t, G_c, G_t, s_c, s_t, beta_c, beta_t, N, K, H, stream);
    case 2: return launch_heads_score<2>(out_c, out_t, X_c, X_t, G_c, G_t, s_c, s_t, beta_c, beta_t, N, K, H, stream);
    case 3: return launch_heads_score<3>(out_c, out_t, X_c, X_t, G_c, G_t, s_c, s_t, beta_c, beta_t, N, K, H, stream);
    default:
        return launch_heads_score<4>(out_c, out_t, X_c, X_t, G_c, G_t, s_c, s_t, beta_c, beta_t, N, K, H, stream);
    }
}

__device__ __forceinline__ double softplus_d(double z) { return (z > 0 ? z : 0) + log1p(exp(-fabs(z))); }
__device__ __forceinline__ double sigmoid_d(double z) {
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

/* Elementwise gradients in double as the reference; each block adds its
 * partial losses to loss[0..1] with one atomic per head. */
__global__ void heads_loss_kernel(float *dout_c, float *dout_t, double *loss, const float *out_c, const float *out_t,
                                  const float *y_c, const float *y_t, float gscale_c, float gscale_t, size_t NK,
                                  const rtr_batch_step *step) {
    __shared__ double scratch[32];
    if (step) gscale_c = step->gscale_c, gscale_t = step->gscale_t; /* the trainer's batch table */
    double bce = 0.0, sq = 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < NK; i += (size_t)gridDim.x * blockDim.x) {
        double z = out_c[i], y = y_c[i];
        if (isnan(y)) {
            dout_c[i] = 0.0f;
        } else {
            bce += softplus_d(z) - z * y;
            dout_c[i] = (float)(gscale_c * (sigmoid_d(z) - y));
        }
        z = out_t[i], y = y_t[i];
        if (isnan(y)) {
            dout_t[i] = 0.0f;
        } else {
            double err = softplus_d(z) - y;
            sq += err * err;
            dout_t[i] = (float)(gscale_t * 2.0 * err * sigmoid_d(z));
        }
    }
    bce = block_reduce(bce, 0.0, scratch, op_sum());
    sq = block_reduce(sq, 0.0, scratch, op_sum());
    if (threadIdx.x == 0) {
        atomicAdd(&loss[0], bce);
        atomicAdd(&loss[1], sq);
    }
}

/* gscale_c, gscale_t, or step's where step is given. */
static rtr_status heads_loss_launch(float *dout_c, float *dout_t, double *loss, const float *out_c, const float *out_t,
                                   const float *y_c, const float *y_t, float gscale_c, float gscale_t,
                                   const rtr_batch_step *step, int N, int K, cudaStream_t stream) {
    size_t NK = (size_t)N * K;
    if (NK == 0) return RTR_OK;
    unsigned grid = rtr_ceil_div(NK, 256);
    RTR_LAUNCH(heads_loss_kernel, grid < 1024 ? grid : 1024, 256, 0, stream, dout_c, dout_t, loss, out_c, out_t, y_c,
               y_t, gscale_c, gscale_t, NK, step);
    RTR_LAUNCH_CHECK(step ? "heads_loss_step" : "heads_loss", "N=%d K=%d", N, K);
    return RTR_OK;
}

rtr_status rtr_heads_loss(float *dout_c, float *dout_t, double *loss, const float *out_c, const float *out_t,
                      const float *y_c, const float *y_t, float gscale_c, float gscale_t, int N, int K,
                      cudaStream_t stream) {
    return heads_loss_launch(dout_c, dout_t, loss, out_c, out_t, y_c, y_t, gscale_c, gscale_t, nullptr, N, K, stream);
}

rtr_status rtr_heads_loss_step(float *dout_c, float *dout_t, double *loss, const float *out_c, const float *out_t,
                               const float *y_c, const float *y_t, const rtr_batch_step *step, int N, int K,
                               cudaStream_t stream) {
    return heads_loss_launch(dout_c, dout_t, loss, out_c, out_t, y_c, y_t, 0.0f, 0.0f, step, N, K, stream);
}

/* dA[n,j] += Σ_k dout[n,k]·w2[j]·[A[n,j] + C[k,j] > 0], both heads; one
 * thread per unit j and query n (queries strided over grid.y). */
__global__ void heads_backward_dA_kernel(float *dA_c, float *dA_t, const float *dout_c, const float *dout_t,
                                         const float *A_c, const float *A_t, const float *C_c, const float *C_t,
                                         const float *w2_c, const float *w2_t, int N, int K, int H) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= H) return;
    for (int n = blockIdx.y; n < N; n += gridDim.y) {
        size_t nj = (size_t)n * H + j;
        float a_c = A_c[nj], a_t = A_t[nj], gc = 0.0f, gt = 0.0f;
        for (int k = 0; k < K; k++) {
            if (a_c + C_c[(size_t)k * H + j] > 0.0f) gc += dout_c[(size_t)n * K + k];
            if (a_t + C_t[(size_t)k * H + j] > 0.0f) gt += dout_t[(size_t)n * K + k];
        }
        dA_c[nj] += gc * w2_c[j];
        dA_t[nj] += gt * w2_t[j];
    }
}

/* One thread per unit j and pair k (pairs strided over grid.y) sums over the
 * queries: dC[k,j] directly, dw2[j] and db2 (thread j == 0) through atomics
 * across pairs. */
__global__ void heads_backward_dC_kernel(float *dC_c, float *dC_t, float *dw2_c, float *db2_c, float *dw2_t,
                                         float *db2_t, const float *dout_c, const float *dout_t, const float *A_c,
                                         const float *A_t, const float *C_c, const float *C_t, const float *w2_c,
                                         const float *w2_t, int N, int K, int H) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= H) return;
    for (int k = blockIdx.y; k < K; k += gridDim.y) {
        size_t kj = (size_t)k * H + j;
        float c_c = C_c[kj], c_t = C_t[kj], gc = 0.0f, gt = 0.0f, wc = 0.0f, wt = 0.0f, bc = 0.0f, bt = 0.0f;
        for (int n = 0; n < N; n++) {
            float dc = dout_c[(size_t)n * K + k], dt = dout_t[(size_t)n * K + k];
            float hc = A_c[(size_t)n * H + j] + c_c, ht = A_t[(size_t)n * H + j] + c_t;
            if (hc > 0.0f) gc += dc, wc += dc * hc;
            if (ht > 0.0f) gt += dt, wt += dt * ht;
            bc += dc, bt += dt;
        }
        dC_c[kj] += gc * w2_c[j];
        dC_t[kj] += gt * w2_t[j];
        atomicAdd(&dw2_c[j], wc);
        atomicAdd(&dw2_t[j], wt);
        if (j == 0) {
            atomicAdd(db2_c, bc);
            atomicAdd(db2_t, bt);
        }
    }
}

rtr_status rtr_heads_backward(float *dA_c, float *dA_t, float *dC_c, float *dC_t, float *dw2_c, float *db2_c,
                          float *dw2_t, float *db2_t, const float *dout_c, const float *dout_t, const float *A_c,
                          const float *A_t, const float *C_c, const float *C_t, const float *w2_c, const float *w2_t,
                          int N, int K, int H, cudaStream_t stream) {
    if ((size_t)N * K * H == 0) return RTR_OK;
    unsigned gx = rtr_ceil_div((size_t)H, 128);
    RTR_LAUNCH(heads_backward_dA_kernel, dim3(gx, (unsigned)(N < 65535 ? N : 65535)), 128, 0, stream, dA_c, dA_t,
               dout_c, dout_t, A_c, A_t, C_c, C_t, w2_c, w2_t, N, K, H);
    RTR_LAUNCH_CHECK("heads_backward (dA)", "N=%d K=%d H=%d", N, K, H);
    RTR_LAUNCH(heads_backward_dC_kernel, dim3(gx, (unsigned)(K < 65535 ? K : 65535)), 128, 0, stream, dC_c, dC_t, dw2_c, db2_c, dw2_t,
               db2_t, dout_c, dout_t, A_c, A_t, C_c, C_t, w2_c, w2_t, N, K, H);
    RTR_LAUNCH_CHECK("heads_backward (dC)", "N=%d K=%d H=%d", N, K, H);
    return RTR_OK;
}

__global__ void heads_activate_kernel(float *p_correct, float *tokens, const float *out_c, const float *out_t,
                                      int token_target, float token_scale, size_t NK) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < NK; i += (size_t)gridDim.x * blockDim.x) {
        double target = softplus_d(out_t[i]) * token_scale;
        p_correct[i] = (float)sigmoid_d(out_c[i]);
        tokens[i] = (float)(token_target == RTR_TOKENS_LOG ? expm1(target) : target);
    }
}

rtr_status rtr_heads_activate(float *p_correct, float *tokens, const float *out_c, const float *out_t, int token_target,
                          float token_scale, int N, int K, cudaStream_t stream) {
    size_t NK = (size_t)N * K;
    if (NK == 0) return RTR_OK;
    unsigned grid = rtr_ceil_div(NK, 256);
    RTR_LAUNCH(heads_activate_kernel, grid < 65536 ? grid : 65536, 256, 0, stream, p_correct, tokens, out_c, out_t,
               token_target, token_scale, NK);
    RTR_LAUNCH_CHECK("heads_activate", "N=%d K=%d", N, K);
    return RTR_OK;
}

} /* namespace RTR_KNS */
