/* attention.cu — flash attention for the bf16 encoder path on tensor cores
 * (WMMA 16x16x16, bf16 operands, fp32 accumulation): scores, MPNet's
 * relative position bias, the padding mask, an online softmax and P·V in
 * one kernel; no score matrix is ever written to memory. Reference:
 * rtr_attention_bf16 (src/ref/attention.c, include/rtr/ops_bf16.h).
 *
 * One block of 4 warps per tile of 64 queries of one (row b, head h); each
 * warp owns 16 queries. The block walks the keys 64 at a time (K and V
 * tiles staged in shared memory with 16-byte loads, rows past the text's
 * length zero-filled so 0·garbage never reaches an accumulator):
 *   S = Q·Kᵀ   (Q's fragments held in registers for the whole walk)
 *   S → shared; two lanes per query row scale it, add the bias, mask keys
 *       >= len, update the row's running max m and sum l, and write
 *       P = exp(S − m) as bf16 (the tensor cores' operand);
 *   O = α·O + P·V, where the per-row rescale α = exp(m_old − m_new) goes
 *       through shared memory (store O, scale rows, load O): WMMA does not
 *       say which lane holds which element, so rows are only addressable
 *       in memory. A text of <= 64 tokens never rescales.
 * At the end O / l is written as bf16; queries t >= len get zeros. The
 * kernel touches fragment elements only through load/store/mma/fill, so it
 * holds on any lane layout (the emulator deals elements out in a scrambled
 * order to prove it: kernels/emu/README.md).
 *
 * The QKV GEMM's bias is added here as the tiles are staged (fp32, rounded
 * to bf16), so the GEMM needs no bias pass.
 *
 * Bytes: q, k, v read once per (b, h, 64-query tile) and the output written
 * once: 8·hs bytes per token and head; FLOPs 4·hs per query-key pair. */
#include "launchers.cuh"

#ifndef RTR_CUDA_EMU
#include <mma.h>
#endif

namespace RTR_KNS {

using namespace nvcuda;

constexpr int FA_WARPS = 4, FA_Q = 16 * FA_WARPS, FA_K = 64, FA_THREADS = 32 * FA_WARPS;

/* Shared memory of one block for head size HS (bytes), laid out as
 *   QV  [FA_Q x (HS+8)] bf16   Q first, then each V tile (Q lives in registers by then)
 *   K   [FA_K x (HS+8)] bf16
 *   per warp: F [16 x (max(FA_K, HS)+4)] fp32 (S, then O on its way through)
 *             P [16 x (FA_K+8)] bf16, alpha [16] fp32
 * Row strides are padded by 16 bytes (bank spread) and keep every 16-row
 * tile 32-byte aligned, as WMMA wants. */
template <int HS> struct fa_smem {
    static constexpr int LDB = HS + 8, LDF = (FA_K > HS ? FA_K : HS) + 4, LDP = FA_K + 8;
    static constexpr size_t qv = (size_t)FA_Q * LDB * 2, k = (size_t)FA_K * LDB * 2;
    static constexpr size_t f = (size_t)16 * LDF * 4, p = (size_t)16 * LDP * 2, a = 16 * 4;
    static constexpr size_t warp = f + p + a, bytes = qv + k + FA_WARPS * warp;
};

/* Rows [0, nrows) of a q, k or v tile (columns col.. of each qkv row) into
 * dst, 16 bytes at a time, plus their bias (NULL: none) in fp32, rounded
 * to bf16; rows r >= valid are zeros. */
template <int HS>
__device__ void load_tile(__nv_bfloat16 *dst, const __nv_bfloat16 *rows, const float *qkv_bias, int row0, int valid,
                          int nrows, int C, int col) {
    constexpr int V = HS / 8; /* 16-byte pieces per row */
    for (int e = threadIdx.x; e < nrows * V; e += FA_THREADS) {
        int r = e / V, c = col + e % V * 8;
        float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (r < valid) {
            load_bf16x8(v, rows + (size_t)(row0 + r) * 3 * C + c);
            if (qkv_bias)
#pragma unroll
                for (int k = 0; k < 8; k++) v[k] += qkv_bias[c + k];
        }
        store_bf16x8(dst + r * fa_smem<HS>::LDB + (c - col), v);
    }
}

template <int HS>
__global__ void __launch_bounds__(FA_THREADS) attention_bf16_kernel(__nv_bfloat16 *out, const __nv_bfloat16 *qkv,
                                                                    const float *qkv_bias, const float *bias,
                                                                    const int32_t *lens, int T, int C) {
    using L = fa_smem<HS>;
    RTR_DYNAMIC_SHARED_ALIGNED(unsigned char, smem);
    int h = blockIdx.y, b = blockIdx.z, t0 = blockIdx.x * FA_Q, len = lens[b];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __nv_bfloat16 *qv_s = reinterpret_cast<__nv_bfloat16 *>(smem);
    __nv_bfloat16 *k_s = reinterpret_cast<__nv_bfloat16 *>(smem + L::qv);
    unsigned char *mine = smem + L::qv + L::k + warp * L::warp;
    float *f_s = reinterpret_cast<float *>(mine);
    __nv_bfloat16 *p_s = reinterpret_cast<__nv_bfloat16 *>(mine + L::f);
    float *alpha_s = reinterpret_cast<float *>(mine + L::f + L::p);
    const __nv_bfloat16 *rows = qkv + (size_t)b * T * 3 * C;
    __nv_bfloat16 *orow = out + (size_t)b * T * C + h * HS;
    if (t0 >= len) { /* a tile of padding (block-uniform, before any barrier) */
        for (int e = threadIdx.x; e < min(FA_Q, T - t0) * (HS / 8); e += FA_THREADS)
            *reinterpret_cast<int4 *>(orow + (size_t)(t0 + e / (HS / 8)) * C + e % (HS / 8) * 8) = make_int4(0, 0, 0, 0);
        return;
    }
    load_tile<HS>(qv_s, rows, qkv_bias, t0, min(FA_Q, T - t0), FA_Q, C, h * HS);
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> q[HS / 16];
#pragma unroll
    for (int kk = 0; kk < HS / 16; kk++) wmma::load_matrix_sync(q[kk], qv_s + warp * 16 * L::LDB + kk * 16, L::LDB);
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> o[HS / 16];
#pragma unroll
    for (int j = 0; j < HS / 16; j++) wmma::fill_fragment(o[j], 0.0f);

    /* lane's query row (two lanes per row, each half of the columns) */
    int r = lane / 2, half = lane % 2, t = t0 + warp * 16 + r;
    float m = -INFINITY, l = 0.0f, scale = 1.0f / sqrtf((float)HS);
    const float *brow = bias && t < T ? bias + ((size_t)h * T + t) * T : nullptr;
    for (int s0 = 0; s0 < len; s0 += FA_K) {
        __syncthreads(); /* Q in registers / the previous K, V consumed */
        int nk = min(FA_K, len - s0);
        load_tile<HS>(k_s, rows, qkv_bias, s0, nk, FA_K, C, C + h * HS);
        load_tile<HS>(qv_s, rows, qkv_bias, s0, nk, FA_K, C, 2 * C + h * HS);
        __syncthreads();
        /* S = Q·Kᵀ for this warp's 16 queries and the tile's 64 keys */
#pragma unroll
        for (int j = 0; j < FA_K / 16; j++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> s;
            wmma::fill_fragment(s, 0.0f);
#pragma unroll
            for (int kk = 0; kk < HS / 16; kk++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> kf;
                wmma::load_matrix_sync(kf, k_s + j * 16 * L::LDB + kk * 16, L::LDB);
                wmma::mma_sync(s, q[kk], kf, s);
            }
            wmma::store_matrix_sync(f_s + j * 16, s, L::LDF, wmma::mem_row_major);
        }
        __syncwarp();
        /* the online softmax of row r over this tile (this lane's 32 keys) */
        float *srow = f_s + r * L::LDF + half * 32, tmax = -INFINITY;
        for (int c = 0; c < 32; c++) {
            int key = s0 + half * 32 + c;
            float x = key < len ? srow[c] * scale + (brow ? brow[key] : 0.0f) : -INFINITY;
            srow[c] = x;
            tmax = fmaxf(tmax, x);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        float m_new = fmaxf(m, tmax), alpha = expf(m - m_new), sum = 0.0f; /* key s0 < len: m_new finite */
        __nv_bfloat16 *prow = p_s + r * L::LDP + half * 32;
        for (int c = 0; c < 32; c++) {
            float p = expf(srow[c] - m_new);
            sum += p;
            prow[c] = __float2bfloat16_rn(p);
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * alpha + sum;
        m = m_new;
        if (half == 0) alpha_s[r] = alpha;
        __syncwarp();
        if (s0 > 0) { /* O = α·O, row by row through shared memory */
#pragma unroll
            for (int j = 0; j < HS / 16; j++) wmma::store_matrix_sync(f_s + j * 16, o[j], L::LDF, wmma::mem_row_major);
            __syncwarp();
            for (int c = half * (HS / 2); c < (half + 1) * (HS / 2); c++) f_s[r * L::LDF + c] *= alpha_s[r];
            __syncwarp();
#pragma unroll
            for (int j = 0; j < HS / 16; j++) wmma::load_matrix_sync(o[j], f_s + j * 16, L::LDF, wmma::mem_row_major);
        }
        /* O += P·V */
#pragma unroll
        for (int kk = 0; kk < FA_K / 16; kk++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> pf;
            wmma::load_matrix_sync(pf, p_s + kk * 16, L::LDP);
#pragma unroll
            for (int j = 0; j < HS / 16; j++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> vf;
                wmma::load_matrix_sync(vf, qv_s + kk * 16 * L::LDB + j * 16, L::LDB);
                wmma::mma_sync(o[j], pf, vf, o[j]);
            }
        }
        __syncwarp(); /* p_s and f_s are rewritten by the next tile */
    }
    /* out = O / l, 16 bytes at a time; queries past the length get zeros */
#pragma unroll
    for (int j = 0; j < HS / 16; j++) wmma::store_matrix_sync(f_s + j * 16, o[j], L::LDF, wmma::mem_row_major);
    __syncwarp();
    if (t < T) {
        float inv = t < len ? 1.0f / l : 0.0f;
        for (int c = half * (HS / 2); c < (half + 1) * (HS / 2); c += 8) {
            float v[8];
#pragma unroll
            for (int k = 0; k < 8; k++) v[k] = f_s[r * L::LDF + c + k] * inv;
            store_bf16x8(orow + (size_t)t * C + c, v);
        }
    }
}

template <int HS>
static rtr_status launch_attention_bf16(__nv_bfloat16 *out, const __nv_bfloat16 *qkv, const float *qkv_bias,
                                        const float *bias, const int32_t *lens, int B, int T, int C, int NH,
                                        cudaStream_t stream) {
    size_t smem = fa_smem<HS>::bytes;
    if (smem > (48u << 10)) /* above the default: opt in (sm_80: 163 KB, sm_90: 227 KB per block) */
        RTR_CUDA_CHECK(cudaFuncSetAttribute(attention_bf16_kernel<HS>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            (int)smem),
                       "attention_bf16", "hs=%d: %zu bytes of shared memory", HS, smem);
    RTR_LAUNCH(attention_bf16_kernel<HS>, dim3(rtr_ceil_div((size_t)T, FA_Q), (unsigned)NH, (unsigned)B), FA_THREADS,
               smem, stream, out, qkv, qkv_bias, bias, lens, T, C);
    RTR_LAUNCH_CHECK("attention_bf16", "B=%d T=%d C=%d NH=%d", B, T, C, NH);
    return RTR_OK;
}

rtr_status rtr_attention_bf16(rtr_bf16 *out, const rtr_bf16 *qkv, const float *qkv_bias, const float *bias,
                              const int32_t *lens, int B, int T, int C, int NH, cudaStream_t stream) {
    if ((size_t)B * T == 0) return RTR_OK;
    if (NH <= 0 || C % NH || C % 8 || NH > 65535 || B > 65535)
        return rtr_fail(RTR_ERR_INVALID, "attention_bf16: B=%d T=%d C=%d NH=%d out of range", B, T, C, NH);
    __nv_bfloat16 *o = reinterpret_cast<__nv_bfloat16 *>(out);
    const __nv_bfloat16 *x = reinterpret_cast<const __nv_bfloat16 *>(qkv);
    switch (C / NH) {
    case 32: return launch_attention_bf16<32>(o, x, qkv_bias, bias, lens, B, T, C, NH, stream);
    case 64: return launch_attention_bf16<64>(o, x, qkv_bias, bias, lens, B, T, C, NH, stream);
    case 128: return launch_attention_bf16<128>(o, x, qkv_bias, bias, lens, B, T, C, NH, stream);
    }
    return rtr_fail(RTR_ERR_UNSUPPORTED, "attention_bf16: head size %d (the kernel has 32, 64 and 128)", C / NH);
}

} /* namespace RTR_KNS */
