/* convert.cu — fp32 to bf16 / fp16 rounding (nearest even) of a strided
 * matrix into a packed one, the input side of the tensor-core GEMMs in
 * backend_cuda.cu. The reference is the rounding
 * itself (IEEE / bfloat16 round-to-nearest-even), checked bit for bit in
 * kernels/tests/test_kernels_emu.cu. */
#include "launchers.cuh"

namespace RTR_KNS {

__device__ __forceinline__ uint16_t to_bits(__nv_bfloat16 v) { return *reinterpret_cast<uint16_t *>(&v); }
__device__ __forceinline__ uint16_t to_bits(__half v) { return *reinterpret_cast<uint16_t *>(&v); }

template <bool BF16>
__global__ void convert_f32_kernel(uint16_t *out, int ld_out, const float *in, int ld_in, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        size_t r = e / cols, c = e % cols;
        float v = in[r * ld_in + c];
        out[r * ld_out + c] = BF16 ? to_bits(__float2bfloat16(v)) : to_bits(__float2half(v));
    }
}

rtr_status convert_f32(void *out, int ld_out, const float *in, int ld_in, int rows, int cols, rtr_gemm_precision p,
                       cudaStream_t stream) {
    if (p != RTR_GEMM_BF16 && p != RTR_GEMM_F16) return rtr_fail(RTR_ERR_INVALID, "convert_f32: precision %d", (int)p);
    if ((size_t)rows * cols == 0) return RTR_OK;
    unsigned grid = rtr_ceil_div((size_t)rows * cols, 256);
    grid = grid < 65536 ? grid : 65536;
    if (p == RTR_GEMM_BF16)
        RTR_LAUNCH(convert_f32_kernel<true>, grid, 256, 0, stream, (uint16_t *)out, ld_out, in, ld_in, rows, cols);
    else RTR_LAUNCH(convert_f32_kernel<false>, grid, 256, 0, stream, (uint16_t *)out, ld_out, in, ld_in, rows, cols);
    RTR_LAUNCH_CHECK("convert_f32", "%d x %d to %s", rows, cols, p == RTR_GEMM_BF16 ? "bf16" : "fp16");
    return RTR_OK;
}

} /* namespace RTR_KNS */
