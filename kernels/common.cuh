/* common.cuh — what every kernels/ .cu file includes first: the CUDA headers
 * (or, in the host-emulated test build, nothing: kernels/emu/cuda_emu.h has
 * been force-included and plays them), the one launch macro, dynamic shared
 * memory, checked CUDA calls, and small block/warp reductions shared by the
 * op families.
 *
 * Every launcher lives in namespace RTR_KNS (rtr_cuda under nvcc, rtr_emu_k in
 * the emulated build) so the two builds can be linked into one test binary
 * beside the plain-C references of the same names. */
#ifndef RTR_KERNELS_COMMON_CUH
#define RTR_KERNELS_COMMON_CUH

#ifdef RTR_CUDA_EMU
#define RTR_KNS rtr_emu_k
#else
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#define RTR_KNS rtr_cuda
/* The one launch macro; the emulator defines the same macro to run on fibers. */
#define RTR_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
/* Dynamic shared memory of the running block, typed. */
#define RTR_DYNAMIC_SHARED(type, name)                     \
    extern __shared__ __align__(16) unsigned char rtr_dyn_smem_[]; \
    type *name = reinterpret_cast<type *>(rtr_dyn_smem_)
/* The same, 128-byte aligned (WMMA tiles want 32). */
#define RTR_DYNAMIC_SHARED_ALIGNED(type, name)                      \
    extern __shared__ __align__(128) unsigned char rtr_dyn_smem128_[]; \
    type *name = reinterpret_cast<type *>(rtr_dyn_smem128_)
#endif

extern "C" {
#include "common/util.h"
}

#include <math.h>
#include <stdarg.h>
#include <stdint.h>

namespace RTR_KNS {

/* Turn a failed CUDA call into RTR_ERR_DEVICE with a message naming the
 * source line, the op and its sizes (printf-style), and CUDA's reason. */
static inline rtr_status cuda_error(cudaError_t e, const char *file, int line, const char *op, const char *sizes, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, sizes);
    vsnprintf(buf, sizeof buf, sizes, ap);
    va_end(ap);
    return rtr_fail(RTR_ERR_DEVICE, "%s:%d: %s (%s): %s", file, line, op, buf, cudaGetErrorString(e));
}

/* Return from the enclosing launcher when a CUDA call fails. */
#define RTR_CUDA_CHECK(call, op, ...)                                                   \
    do {                                                                                \
        cudaError_t e_ = (call);                                                        \
        if (e_ != cudaSuccess) return RTR_KNS::cuda_error(e_, __FILE__, __LINE__, op, __VA_ARGS__); \
    } while (0)

/* Check the launch just made (bad configuration, missing kernel image). */
#define RTR_LAUNCH_CHECK(op, ...) RTR_CUDA_CHECK(cudaGetLastError(), op, __VA_ARGS__)

static inline unsigned rtr_ceil_div(size_t a, unsigned b) { return (unsigned)((a + b - 1) / b); }

/* 8 bf16 <-> 8 floats through one 16-byte access (p 16-byte aligned): the
 * bf16 path's activations move in these pieces. */
__device__ __forceinline__ void load_bf16x8(float *v, const void *p) {
    int4 w = *reinterpret_cast<const int4 *>(p);
    uint32_t u[4] = {(uint32_t)w.x, (uint32_t)w.y, (uint32_t)w.z, (uint32_t)w.w};
#pragma unroll
    for (int k = 0; k < 4; k++) v[2 * k] = __uint_as_float(u[k] << 16), v[2 * k + 1] = __uint_as_float(u[k] & 0xffff0000u);
}
__device__ __forceinline__ void store_bf16x8(void *p, const float *v) {
    uint32_t u[4];
#pragma unroll
    for (int k = 0; k < 4; k++)
        u[k] = (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(v[2 * k])) |
               (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(v[2 * k + 1])) << 16;
    *reinterpret_cast<int4 *>(p) = make_int4((int)u[0], (int)u[1], (int)u[2], (int)u[3]);
}

struct op_sum {
    template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct op_max {
    __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

/* Reduce over a full warp (every lane must call); every lane gets the result. */
template <class T, class Op> __device__ __forceinline__ T warp_reduce(T v, Op op) {
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Reduce over the block; every thread gets the result. blockDim.x must be a
 * multiple of 32 (<= 1024) and every thread must call. scratch: 32 T of
 * shared memory, reusable once the call returns (the trailing barrier
 * guards it). */
template <class T, class Op> __device__ __forceinline__ T block_reduce(T v, T identity, T *scratch, Op op) {
    unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_reduce(v, op);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = warp_reduce(lane < blockDim.x / 32 ? scratch[lane] : identity, op);
    __syncthreads();
    return v;
}

__device__ __forceinline__ float block_sum(float v, float *scratch) { return block_reduce(v, 0.0f, scratch, op_sum()); }
__device__ __forceinline__ float block_max(float v, float *scratch) {
    return block_reduce(v, -INFINITY, scratch, op_max());
}

} /* namespace RTR_KNS */

#endif
