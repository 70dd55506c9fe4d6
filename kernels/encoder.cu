/* encoder.cu — the sentence encoder's non-GEMM ops on the GPU. Each launcher
 * has the name and arguments of its plain-C reference in src/ref/encoder.c (see
 * include/rtr/ops.h for shapes and meaning; the bf16 forms at the end,
 * include/rtr/ops_bf16.h) plus a stream; the GEMMs between them go through
 * cuBLASLt in backend_cuda.cu, attention on bf16 through attention.cu.
 *
 * Row ops (LayerNorms, pooling) run one block of ROW_THREADS per row and keep
 * each element in the thread that loaded it, so `out` may alias an input as
 * the references allow. Attention fuses scores, bias, mask, softmax and P·V
 * in one kernel per tile of queries (see attention_kernel). */
#include "launchers.cuh"

#include <mutex>

#include "rtr/ops.h"

namespace RTR_KNS {

constexpr unsigned ROW_THREADS = 128;
constexpr unsigned ELT_THREADS = 256;
constexpr unsigned ATT_THREADS = 128;

/* In place: o[0..C) = LayerNorm(o) with weight w, bias b (biased variance, two
 * passes as the reference). Each thread touches only c ≡ threadIdx.x. */
__device__ void layernorm_row_inplace(float *o, const float *w, const float *b, float eps, int C, float *scratch) {
    float s = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += o[c];
    float mean = block_sum(s, scratch) / (float)C;
    float v = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) v += (o[c] - mean) * (o[c] - mean);
    float rstd = 1.0f / sqrtf(block_sum(v, scratch) / (float)C + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = (o[c] - mean) * rstd * w[c] + b[c];
}

__global__ void embedding_layernorm_kernel(float *out, const int32_t *ids, const int32_t *pos_ids, const float *wte,
                                           const float *wpe, const float *wtt, const float *ln_w, const float *ln_b,
                                           float eps, int C) {
    __shared__ float scratch[32];
    size_t n = blockIdx.x;
    const float *we = wte + (size_t)ids[n] * C, *pe = wpe + (size_t)pos_ids[n] * C;
    float *o = out + n * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = we[c] + pe[c] + (wtt ? wtt[c] : 0.0f);
    layernorm_row_inplace(o, ln_w, ln_b, eps, C, scratch);
}

rtr_status rtr_embedding_layernorm_forward(float *out, const int32_t *ids, const int32_t *pos_ids, const float *wte,
                                       const float *wpe, const float *wtt, const float *ln_w, const float *ln_b,
                                       float eps, int B, int T, int C, cudaStream_t stream) {
    if ((size_t)B * T == 0) return RTR_OK;
    if ((size_t)B * T > 2147483647u) /* one block per row: grid.x limit */
        return rtr_fail(RTR_ERR_UNSUPPORTED, "embedding_layernorm_forward: B=%d T=%d rows in one call", B, T);
    RTR_LAUNCH(embedding_layernorm_kernel, (unsigned)((size_t)B * T), ROW_THREADS, 0, stream, out, ids, pos_ids,
               wte, wpe, wtt, ln_w, ln_b, eps, C);
    RTR_LAUNCH_CHECK("embedding_layernorm_forward", "B=%d T=%d C=%d", B, T, C);
    return RTR_OK;
}

/* bias[h,i,j] = table[bucket[i - j + half] * NH + h] (bucket covers the
 * offsets −half..half, half >= T − 1). */
__global__ void position_bias_kernel(float *bias, const float *table, const int32_t *bucket, int half, int T,
                                     int NH) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)T * T) return;
    int i = (int)(idx / T), j = (int)(idx % T), bk = bucket[i - j + half];
    for (int h = 0; h < NH; h++) bias[((size_t)h * T + i) * T + j] = table[(size_t)bk * NH + h];
}

/* The bucket of each offset i − j comes from the C reference on the host:
 * its float32 log must match torch's exactly at the bucket edges, which the
 * device's logf (1 ulp) does not promise. The table depends on the offset
 * only, so it is built once for offsets −half..half and kept on the device:
 * the encoder asks for it every batch, and a fresh upload would stall the
 * stream each time. Rebuilt only for a longer T, other settings or another
 * device, with the whole device idle first (kernels of any stream or thread
 * may still read the old table); the lock is held until the kernel that
 * reads it is queued, so a rebuild by another thread waits for that too. */
static struct {
    std::mutex lock;
    int32_t *dev;
    int half, num_buckets, max_distance, device;
} bucket_cache;

/* With bucket_cache.lock held. */
static rtr_status bucket_table(int T, int num_buckets, int max_distance, cudaStream_t stream) {
    auto &c = bucket_cache;
    int device = 0;
    RTR_CUDA_CHECK(cudaGetDevice(&device), "position_bias_forward", "T=%d", T);
    if (c.dev && c.half >= T - 1 && c.num_buckets == num_buckets && c.max_distance == max_distance &&
        c.device == device)
        return RTR_OK;
    int h = T - 1 > 511 ? T - 1 : 511, n = 2 * h + 1;
    int32_t *host = (int32_t *)rtr_malloc((size_t)n * sizeof *host);
    if (!host) return RTR_ERR_NOMEM;
    for (int d = 0; d < n; d++) host[d] = rtr_relative_position_bucket(d - h, 0, num_buckets, max_distance);
    cudaError_t e = cudaDeviceSynchronize(); /* nothing may still read the old table */
    if (c.dev) cudaFree(c.dev);
    c.dev = nullptr;
    if (e == cudaSuccess) e = cudaMalloc(&c.dev, (size_t)n * sizeof *host);
    if (e == cudaSuccess) e = cudaMemcpyAsync(c.dev, host, (size_t)n * sizeof *host, cudaMemcpyHostToDevice, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream); /* landed, and the host copy may go */
    free(host);
    if (e != cudaSuccess) {
        cudaFree(c.dev);
        c.dev = nullptr;
    }
    RTR_CUDA_CHECK(e, "position_bias_forward", "T=%d: bucket table of %d offsets", T, n);
    c.half = h, c.num_buckets = num_buckets, c.max_distance = max_distance, c.device = device;
    return RTR_OK;
}

rtr_status rtr_position_bias_forward(float *bias, const float *table, int T, int NH, int num_buckets,
                                 int max_distance, cudaStream_t stream) {
    if (T <= 0) return RTR_OK;
    std::lock_guard<std::mutex> hold(bucket_cache.lock);
    rtr_status st = bucket_table(T, num_buckets, max_distance, stream);
    if (st != RTR_OK) return st;
    RTR_LAUNCH(position_bias_kernel, rtr_ceil_div((size_t)T * T, ELT_THREADS), ELT_THREADS, 0, stream, bias, table,
               bucket_cache.dev, bucket_cache.half, T, NH);
    RTR_LAUNCH_CHECK("position_bias_forward", "T=%d NH=%d", T, NH);
    return RTR_OK;
}

/* out = act(inp + bias[c]) elementwise over N x C; GELU is the exact erf form. */
template <bool GELU>
__global__ void bias_act_kernel(float *out, const float *inp, const float *bias, size_t NC, int C) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < NC; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i] + bias[i % C];
        out[i] = GELU ? 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)) : x;
    }
}

template <bool GELU>
static rtr_status bias_act(const char *op, float *out, const float *inp, const float *bias, int N, int C,
                           cudaStream_t stream) {
    size_t NC = (size_t)N * C;
    if (NC == 0) return RTR_OK;
    unsigned grid = rtr_ceil_div(NC, ELT_THREADS);
    RTR_LAUNCH(bias_act_kernel<GELU>, grid < 65536 ? grid : 65536, ELT_THREADS, 0, stream, out, inp, bias, NC, C);
    RTR_LAUNCH_CHECK(op, "N=%d C=%d", N, C);
    return RTR_OK;
}

rtr_status rtr_bias_add_forward(float *out, const float *inp, const float *bias, int N, int C, cudaStream_t stream) {
    return bias_act<false>("bias_add_forward", out, inp, bias, N, C, stream);
}

rtr_status rtr_bias_gelu_forward(float *out, const float *inp, const float *bias, int N, int C, cudaStream_t stream) {
    return bias_act<true>("bias_gelu_forward", out, inp, bias, N, C, stream);
}

/* One block per tile of ATT_QB queries of one (row b, head h). The tile's
 * queries sit in shared memory; keys, then values, stream through it
 * ATT_KC rows at a time, so each K/V row is read once per tile rather than
 * once per query. Scores go straight into this tile's rows of att (the
 * output), the softmax runs one warp per query over them, and the P·V pass
 * reads them back a chunk at a time. Padded queries (t >= len) get zero
 * output and their att rows are left alone, as in the reference. */
constexpr int ATT_QB = 16, ATT_KC = 32, ATT_MAX_HS = 128, ATT_OUT_PER_THREAD = ATT_QB * ATT_MAX_HS / ATT_THREADS;

__global__ void __launch_bounds__(ATT_THREADS) attention_kernel(float *out, float *att, const float *qkv,
                                                                const float *bias, const int32_t *lens, int T, int C,
                                                                int NH) {
    RTR_DYNAMIC_SHARED(float, smem);
    int h = blockIdx.y, b = blockIdx.z, t0 = blockIdx.x * ATT_QB, hs = C / NH, ld = hs + 1, len = lens[b];
    int nq = min(ATT_QB, T - t0), nv = max(0, min(nq, len - t0)); /* queries, of which unpadded */
    float *q_s = smem, *kv_s = q_s + ATT_QB * ld, *p_s = kv_s + ATT_KC * ld;
    const float *row = qkv + (size_t)b * T * 3 * C;
    float *att_tile = att + (((size_t)b * NH + h) * T + t0) * T;
    int tid = threadIdx.x;
    for (int e = tid; e < (nq - nv) * hs; e += blockDim.x)
        out[((size_t)b * T + t0 + nv + e / hs) * C + h * hs + e % hs] = 0.0f;
    if (nv == 0) return; /* block-uniform, before any barrier */
    for (int e = tid; e < nv * hs; e += blockDim.x) q_s[e / hs * ld + e % hs] = row[(size_t)(t0 + e / hs) * 3 * C + h * hs + e % hs];
    float scale = 1.0f / sqrtf((float)hs);
    for (int s0 = 0; s0 < len; s0 += ATT_KC) { /* scores of this key chunk */
        int ns = min(ATT_KC, len - s0);
        __syncthreads(); /* q_s written; the previous chunk consumed */
        for (int e = tid; e < ns * hs; e += blockDim.x)
            kv_s[e / hs * ld + e % hs] = row[(size_t)(s0 + e / hs) * 3 * C + C + h * hs + e % hs];
        __syncthreads();
        for (int e = tid; e < nv * ns; e += blockDim.x) {
            int q = e / ns, s = e % ns;
            float dot = 0.0f;
            for (int i = 0; i < hs; i++) dot += q_s[q * ld + i] * kv_s[s * ld + i];
            dot *= scale;
            if (bias) dot += bias[((size_t)h * T + t0 + q) * T + s0 + s];
            att_tile[(size_t)q * T + s0 + s] = dot;
        }
    }
    __syncthreads(); /* every score of the tile written */
    unsigned lane = tid % 32, warp = tid / 32, nwarps = blockDim.x / 32;
    for (int q = warp; q < nv; q += nwarps) { /* softmax, one warp per query */
        float *a = att_tile + (size_t)q * T, m = -INFINITY, sum = 0.0f;
        for (int s = lane; s < len; s += 32) m = fmaxf(m, a[s]);
        m = warp_reduce(m, op_max());
        for (int s = lane; s < len; s += 32) sum += a[s] = expf(a[s] - m);
        float inv = 1.0f / warp_reduce(sum, op_sum());
        for (int s = lane; s < T; s += 32) a[s] = s < len ? a[s] * inv : 0.0f;
    }
    float acc[ATT_OUT_PER_THREAD] = {};
    for (int s0 = 0; s0 < len; s0 += ATT_KC) { /* out += P·V over this value chunk */
        int ns = min(ATT_KC, len - s0);
        __syncthreads(); /* probabilities final; the previous chunk consumed */
        for (int e = tid; e < ns * hs; e += blockDim.x)
            kv_s[e / hs * ld + e % hs] = row[(size_t)(s0 + e / hs) * 3 * C + 2 * C + h * hs + e % hs];
        for (int e = tid; e < nv * ATT_KC; e += blockDim.x)
            p_s[e] = e % ATT_KC < ns ? att_tile[(size_t)(e / ATT_KC) * T + s0 + e % ATT_KC] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int r = 0; r < ATT_OUT_PER_THREAD; r++) {
            int e = tid + r * ATT_THREADS, q = e / hs, i = e % hs;
            if (e < nv * hs)
                for (int s = 0; s < ns; s++) acc[r] += p_s[q * ATT_KC + s] * kv_s[s * ld + i];
        }
    }
#pragma unroll
    for (int r = 0; r < ATT_OUT_PER_THREAD; r++) {
        int e = tid + r * ATT_THREADS;
        if (e < nv * hs) out[((size_t)b * T + t0 + e / hs) * C + h * hs + e % hs] = acc[r];
    }
}

rtr_status rtr_attention_forward(float *out, float *att, const float *qkv, const float *bias, const int32_t *lens, int B,
                             int T, int C, int NH, cudaStream_t stream) {
    if ((size_t)B * T == 0) return RTR_OK;
    if (NH <= 0 || C % NH || NH > 65535 || B > 65535)
        return rtr_fail(RTR_ERR_INVALID, "attention_forward: B=%d T=%d C=%d NH=%d out of range", B, T, C, NH);
    int hs = C / NH;
    if (hs > ATT_MAX_HS)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "attention_forward: head size %d above the kernel's %d", hs, ATT_MAX_HS);
    size_t smem = (size_t)((ATT_QB + ATT_KC) * (hs + 1) + ATT_QB * ATT_KC) * sizeof(float);
    RTR_LAUNCH(attention_kernel, dim3(rtr_ceil_div((size_t)T, ATT_QB), (unsigned)NH, (unsigned)B), ATT_THREADS, smem,
               stream, out, att, qkv, bias, lens, T, C, NH);
    RTR_LAUNCH_CHECK("attention_forward", "B=%d T=%d C=%d NH=%d", B, T, C, NH);
    return RTR_OK;
}

__global__ void residual_layernorm_kernel(float *out, const float *inp, const float *bias, const float *residual,
                                          const float *ln_w, const float *ln_b, float eps, int C) {
    __shared__ float scratch[32];
    size_t off = (size_t)blockIdx.x * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[off + c] = inp[off + c] + bias[c] + residual[off + c];
    layernorm_row_inplace(out + off, ln_w, ln_b, eps, C, scratch);
}

rtr_status rtr_residual_layernorm_forward(float *out, const float *inp, const float *bias, const float *residual,
                                      const float *ln_w, const float *ln_b, float eps, int N, int C,
                                      cudaStream_t stream) {
    if (N == 0) return RTR_OK;
    RTR_LAUNCH(residual_layernorm_kernel, (unsigned)N, ROW_THREADS, 0, stream, out, inp, bias, residual, ln_w, ln_b,
               eps, C);
    RTR_LAUNCH_CHECK("residual_layernorm_forward", "N=%d C=%d", N, C);
    return RTR_OK;
}

/* The pooled row's token count and divisor (rtr_pool_forward): CLS takes
 * the first token alone, the means divide the sum by len or sqrt(len). */
__device__ int pool_tokens(rtr_pool_mode mode, int len) { return mode == RTR_POOL_CLS && len > 0 ? 1 : len; }

__device__ float pool_divisor(rtr_pool_mode mode, int len) {
    if (len <= 0) return 1.0f;
    return mode == RTR_POOL_MEAN ? (float)len : mode == RTR_POOL_MEAN_SQRT_LEN ? sqrtf((float)len) : 1.0f;
}

__global__ void pool_kernel(float *out, const float *inp, const int32_t *lens, int T, int C, rtr_pool_mode mode,
                            bool normalize) {
    __shared__ float scratch[32];
    int b = blockIdx.x, len = lens[b], n = pool_tokens(mode, len);
    float *o = out + (size_t)b * C, denom = pool_divisor(mode, len), sq = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = 0.0f;
        for (int t = 0; t < n; t++) acc += inp[((size_t)b * T + t) * C + c];
        o[c] = acc / denom;
        sq += o[c] * o[c];
    }
    if (!normalize) return; /* the same for the whole block: no thread waits alone */
    float norm = sqrtf(block_sum(sq, scratch));
    float inv = 1.0f / (norm > 1e-12f ? norm : 1e-12f);
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] *= inv;
}

rtr_status rtr_pool_forward(float *out, const float *inp, const int32_t *lens, int B, int T, int C, rtr_pool_mode mode,
                            bool normalize, cudaStream_t stream) {
    if (B == 0) return RTR_OK;
    RTR_LAUNCH(pool_kernel, (unsigned)B, ROW_THREADS, 0, stream, out, inp, lens, T, C, mode, normalize);
    RTR_LAUNCH_CHECK("pool_forward", "B=%d T=%d C=%d mode=%d normalize=%d", B, T, C, (int)mode, (int)normalize);
    return RTR_OK;
}

/* ---- the bf16 path (include/rtr/ops_bf16.h) ------------------------------
 * Rows of C bf16 move as 16-byte pieces of 8: one thread per piece holds
 * its 8 values in registers through the row's reductions, so out may alias
 * an input, and the block is C/8 threads rounded up to whole warps (threads
 * past the row only join the reductions). fp32 parameters (embeddings,
 * biases, LayerNorm weights) are read element by element: their offsets in
 * the weight block promise no 16-byte alignment. C must be a multiple of 8. */

static unsigned bf16_row_threads(int C) { return (unsigned)((C / 8 + 31) / 32 * 32); }

static rtr_status bf16_row_check(const char *op, int C) {
    if (C % 8 || C <= 0 || C > 8192)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "%s: C=%d (the bf16 kernels take multiples of 8 up to 8192)", op, C);
    return RTR_OK;
}

/* x[0..8) of each active thread (piece c0 = 8·threadIdx.x < C) replaced by
 * LayerNorm over the row (biased variance, mean first, as the reference). */
__device__ void layernorm8(float *x, bool on, int c0, const float *w, const float *b, float eps, int C,
                           float *scratch) {
    float s = 0.0f;
    if (on)
        for (int k = 0; k < 8; k++) s += x[k];
    float mean = block_sum(s, scratch) / (float)C, v = 0.0f;
    if (on)
        for (int k = 0; k < 8; k++) v += (x[k] - mean) * (x[k] - mean);
    float rstd = 1.0f / sqrtf(block_sum(v, scratch) / (float)C + eps);
    if (on)
        for (int k = 0; k < 8; k++) x[k] = (x[k] - mean) * rstd * w[c0 + k] + b[c0 + k];
}

__global__ void embedding_layernorm_bf16_kernel(__nv_bfloat16 *out, const int32_t *ids, const int32_t *pos_ids,
                                                const float *wte, const float *wpe, const float *wtt,
                                                const float *ln_w, const float *ln_b, float eps, int C) {
    __shared__ float scratch[32];
    size_t n = blockIdx.x;
    int c0 = threadIdx.x * 8;
    bool on = c0 < C;
    float x[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (on) {
        const float *we = wte + (size_t)ids[n] * C + c0, *pe = wpe + (size_t)pos_ids[n] * C + c0;
        for (int k = 0; k < 8; k++) x[k] = we[k] + pe[k] + (wtt ? wtt[c0 + k] : 0.0f);
    }
    layernorm8(x, on, c0, ln_w, ln_b, eps, C, scratch);
    if (on) store_bf16x8(out + n * C + c0, x);
}

rtr_status rtr_embedding_layernorm_bf16(rtr_bf16 *out, const int32_t *ids, const int32_t *pos_ids, const float *wte,
                                        const float *wpe, const float *wtt, const float *ln_w, const float *ln_b,
                                        float eps, int B, int T, int C, cudaStream_t stream) {
    if ((size_t)B * T == 0) return RTR_OK;
    rtr_status st = bf16_row_check("embedding_layernorm_bf16", C);
    if (st != RTR_OK) return st;
    if ((size_t)B * T > 2147483647u)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "embedding_layernorm_bf16: B=%d T=%d rows in one call", B, T);
    RTR_LAUNCH(embedding_layernorm_bf16_kernel, (unsigned)((size_t)B * T), bf16_row_threads(C), 0, stream,
               reinterpret_cast<__nv_bfloat16 *>(out), ids, pos_ids, wte, wpe, wtt, ln_w, ln_b, eps, C);
    RTR_LAUNCH_CHECK("embedding_layernorm_bf16", "B=%d T=%d C=%d", B, T, C);
    return RTR_OK;
}

/* out = gelu(inp + bias) over N x C, 8 elements (one 16-byte piece) a step. */
__global__ void bias_gelu_bf16_kernel(__nv_bfloat16 *out, const __nv_bfloat16 *inp, const float *bias, size_t pieces,
                                      int C) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < pieces; i += (size_t)gridDim.x * blockDim.x) {
        float x[8];
        int c0 = (int)(i * 8 % (size_t)C);
        load_bf16x8(x, inp + i * 8);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float v = x[k] + bias[c0 + k];
            x[k] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        }
        store_bf16x8(out + i * 8, x);
    }
}

rtr_status rtr_bias_gelu_bf16(rtr_bf16 *out, const rtr_bf16 *inp, const float *bias, int N, int C,
                              cudaStream_t stream) {
    size_t pieces = (size_t)N * C / 8;
    if (pieces == 0) return RTR_OK;
    rtr_status st = bf16_row_check("bias_gelu_bf16", C);
    if (st != RTR_OK) return st;
    unsigned grid = rtr_ceil_div(pieces, ELT_THREADS);
    RTR_LAUNCH(bias_gelu_bf16_kernel, grid < 65536 ? grid : 65536, ELT_THREADS, 0, stream,
               reinterpret_cast<__nv_bfloat16 *>(out), reinterpret_cast<const __nv_bfloat16 *>(inp), bias, pieces, C);
    RTR_LAUNCH_CHECK("bias_gelu_bf16", "N=%d C=%d", N, C);
    return RTR_OK;
}

__global__ void residual_layernorm_bf16_kernel(__nv_bfloat16 *out, const __nv_bfloat16 *inp, const float *bias,
                                               const __nv_bfloat16 *residual, const float *ln_w, const float *ln_b,
                                               float eps, int C) {
    __shared__ float scratch[32];
    size_t off = (size_t)blockIdx.x * C;
    int c0 = threadIdx.x * 8;
    bool on = c0 < C;
    float x[8] = {0, 0, 0, 0, 0, 0, 0, 0}, r[8];
    if (on) {
        load_bf16x8(x, inp + off + c0);
        load_bf16x8(r, residual + off + c0);
        for (int k = 0; k < 8; k++) x[k] = x[k] + bias[c0 + k] + r[k];
    }
    layernorm8(x, on, c0, ln_w, ln_b, eps, C, scratch);
    if (on) store_bf16x8(out + off + c0, x);
}

rtr_status rtr_residual_layernorm_bf16(rtr_bf16 *out, const rtr_bf16 *inp, const float *bias, const rtr_bf16 *residual,
                                       const float *ln_w, const float *ln_b, float eps, int N, int C,
                                       cudaStream_t stream) {
    if (N == 0) return RTR_OK;
    rtr_status st = bf16_row_check("residual_layernorm_bf16", C);
    if (st != RTR_OK) return st;
    RTR_LAUNCH(residual_layernorm_bf16_kernel, (unsigned)N, bf16_row_threads(C), 0, stream,
               reinterpret_cast<__nv_bfloat16 *>(out), reinterpret_cast<const __nv_bfloat16 *>(inp), bias,
               reinterpret_cast<const __nv_bfloat16 *>(residual), ln_w, ln_b, eps, C);
    RTR_LAUNCH_CHECK("residual_layernorm_bf16", "N=%d C=%d", N, C);
    return RTR_OK;
}

__global__ void pool_bf16_kernel(float *out, const __nv_bfloat16 *inp, const int32_t *lens, int T, int C,
                                 rtr_pool_mode mode, bool normalize) {
    __shared__ float scratch[32];
    int b = blockIdx.x, len = lens[b], n = pool_tokens(mode, len), c0 = threadIdx.x * 8;
    bool on = c0 < C;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sq = 0.0f, denom = pool_divisor(mode, len);
    if (on) {
        for (int t = 0; t < n; t++) {
            float x[8];
            load_bf16x8(x, inp + ((size_t)b * T + t) * C + c0);
            for (int k = 0; k < 8; k++) acc[k] += x[k];
        }
        for (int k = 0; k < 8; k++) acc[k] /= denom, sq += acc[k] * acc[k];
    }
    float inv = 1.0f;
    if (normalize) { /* the same for the whole block */
        float norm = sqrtf(block_sum(sq, scratch));
        inv = 1.0f / (norm > 1e-12f ? norm : 1e-12f);
    }
    if (on)
        for (int k = 0; k < 8; k++) out[(size_t)b * C + c0 + k] = acc[k] * inv;
}

rtr_status rtr_pool_bf16(float *out, const rtr_bf16 *inp, const int32_t *lens, int B, int T, int C, rtr_pool_mode mode,
                         bool normalize, cudaStream_t stream) {
    if (B == 0) return RTR_OK;
    rtr_status st = bf16_row_check("pool_bf16", C);
    if (st != RTR_OK) return st;
    RTR_LAUNCH(pool_bf16_kernel, (unsigned)B, bf16_row_threads(C), 0, stream, out,
               reinterpret_cast<const __nv_bfloat16 *>(inp), lens, T, C, mode, normalize);
    RTR_LAUNCH_CHECK("pool_bf16", "B=%d T=%d C=%d mode=%d normalize=%d", B, T, C, (int)mode, (int)normalize);
    return RTR_OK;
}

} /* namespace RTR_KNS */
