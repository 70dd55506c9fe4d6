/* Tests of the CUDA emulator itself (kernels/emu/cuda_emu.h): each kernel
 * below is ordinary CUDA source and its
 * emulated result is compared exactly with plain C: block reduction with
 * shared memory, barriers and xor shuffles; votes; atomics across blocks;
 * dynamic shared memory; a barrier inside a loop; shuffles with widths; 3-D
 * indices; vector types and constant memory; half/bfloat16 conversions. Then the emulator's guards: a missing
 * barrier shows as a wrong result, and misuse (divergent barriers, a thread
 * exiting before a barrier, shuffle masks naming absent lanes) aborts. */
#include "../common.cuh"
#include "test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace RTR_KNS;

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static int rand_int(int lo, int hi) { /* [lo, hi] */
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return lo + (int)(rng_state % (uint64_t)(hi - lo + 1));
}

/* ---- block reduction: warp xor-shuffles, shared memory, barrier ---- */
__global__ void reduce_int_kernel(int *out, const int *x, int n) {
    __shared__ int partial[32];
    int v = 0;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v += x[i];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) out[blockIdx.x] = v;
    }
}

static void test_block_reduce(void) {
    const int sizes[] = {1, 33, 1000, 4097}, blocks[] = {32, 96, 256, 1024}, grids[] = {1, 3, 7};
    for (int si = 0; si < 4; si++)
        for (int bi = 0; bi < 4; bi++)
            for (int gi = 0; gi < 3; gi++) {
                int n = sizes[si], g = grids[gi];
                int *x = (int *)malloc(n * sizeof *x), *out = (int *)malloc(g * sizeof *out);
                for (int i = 0; i < n; i++) x[i] = rand_int(-1000, 1000);
                RTR_LAUNCH(reduce_int_kernel, g, blocks[bi], 0, 0, out, x, n);
                CHECK(cudaGetLastError() == cudaSuccess);
                for (int b = 0; b < g; b++) {
                    int ref = 0; /* the grid-stride slice this block owns */
                    for (int i = b * blocks[bi]; i < n; i += g * blocks[bi])
                        for (int j = i; j < i + blocks[bi] && j < n; j++) ref += x[j];
                    CHECK_MSG(out[b] == ref, "n=%d block=%d grid=%d b=%d: %d vs %d", n, blocks[bi], g, b, out[b], ref);
                }
                free(x);
                free(out);
            }
}

/* ---- the float block_sum of common.cuh, against a pairwise-independent bound ---- */
__global__ void block_sum_kernel(float *out, const float *x, int n) {
    __shared__ float scratch[32];
    float v = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += x[i];
    float s = block_sum(v, scratch);
    /* every thread receives the sum: the lowest and highest thread both report it */
    if (threadIdx.x == 0) out[0] = s;
    if (threadIdx.x == blockDim.x - 1) out[1] = s;
}

static void test_block_sum_float(void) {
    const int n = 777;
    float x[n], out[2];
    double ref = 0;
    for (int i = 0; i < n; i++) x[i] = (float)rand_int(-512, 512) / 64.0f, ref += x[i]; /* exact in float */
    for (int bs = 32; bs <= 1024; bs *= 2) {
        RTR_LAUNCH(block_sum_kernel, 1, bs, 0, 0, out, x, n);
        CHECK(out[0] == (float)ref && out[1] == (float)ref);
    }
}

/* ---- votes ---- */
__global__ void vote_kernel(unsigned *ballots, int *any, int *all, const int *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int p = i < n && x[i] > 0;
    unsigned b = __ballot_sync(0xffffffffu, p);
    int a = __any_sync(0xffffffffu, p), l = __all_sync(0xffffffffu, p);
    int w = i / 32;
    if (threadIdx.x % 32 == 0) ballots[w] = b, any[w] = a, all[w] = l;
}

static void test_votes(void) {
    const int n = 200, bs = 64, g = 4, nw = g * bs / 32;
    int x[n];
    unsigned ballots[nw];
    int any[nw], all[nw];
    for (int i = 0; i < n; i++) x[i] = rand_int(-3, 3);
    for (int i = 64; i < 96; i++) x[i] = 1; /* one warp all true */
    for (int i = 96; i < 128; i++) x[i] = -1; /* one warp all false */
    RTR_LAUNCH(vote_kernel, g, bs, 0, 0, ballots, any, all, x, n);
    for (int w = 0; w < nw; w++) {
        unsigned ref = 0;
        for (int l = 0; l < 32; l++)
            if (w * 32 + l < n && x[w * 32 + l] > 0) ref |= 1u << l;
        CHECK_MSG(ballots[w] == ref, "warp %d: %08x vs %08x", w, ballots[w], ref);
        CHECK(any[w] == (ref != 0));
        CHECK(all[w] == (ref == 0xffffffffu));
    }
    CHECK(all[2] == 1 && any[3] == 0);
}

/* ---- atomics across blocks ---- */
__global__ void atomics_kernel(int *hist, int *maxv, unsigned *minv, float *fsum, const int *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    atomicAdd(&hist[(x[i] % 8 + 8) % 8], 1);
    atomicMax(maxv, x[i]);
    atomicMin(minv, (unsigned)(x[i] + 5000));
    atomicAdd(fsum, (float)x[i]);
}

static void test_atomics(void) {
    const int n = 3001;
    int x[n], hist[8] = {0}, ref_hist[8] = {0}, maxv = -(1 << 30), ref_max = -(1 << 30);
    unsigned minv = 0xffffffffu, ref_min = 0xffffffffu;
    float fsum = 0;
    double ref_sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = rand_int(-4000, 4000);
        ref_hist[(x[i] % 8 + 8) % 8]++;
        ref_max = x[i] > ref_max ? x[i] : ref_max;
        ref_min = (unsigned)(x[i] + 5000) < ref_min ? (unsigned)(x[i] + 5000) : ref_min;
        ref_sum += x[i];
    }
    RTR_LAUNCH(atomics_kernel, (n + 127) / 128, 128, 0, 0, hist, &maxv, &minv, &fsum, x, n);
    for (int b = 0; b < 8; b++) CHECK(hist[b] == ref_hist[b]);
    CHECK(maxv == ref_max);
    CHECK(minv == ref_min);
    CHECK(fsum == (float)ref_sum); /* integers below 2^24: exact in any order */
}

/* ---- dynamic shared memory: reverse each block's segment ---- */
__global__ void reverse_kernel(float *out, const float *x, int n) {
    RTR_DYNAMIC_SHARED(float, buf);
    int base = blockIdx.x * blockDim.x, i = base + threadIdx.x;
    buf[threadIdx.x] = i < n ? x[i] : -1.0f;
    __syncthreads();
    int j = base + blockDim.x - 1 - threadIdx.x;
    if (j < n) out[j] = buf[threadIdx.x];
}

static void test_dynamic_shared(void) {
    const int n = 1000, bs = 96, g = (n + bs - 1) / bs;
    float x[n], out[n];
    for (int i = 0; i < n; i++) x[i] = (float)i;
    RTR_LAUNCH(reverse_kernel, g, bs, bs * sizeof(float), 0, out, x, n);
    CHECK(cudaGetLastError() == cudaSuccess);
    for (int i = 0; i < n; i++) {
        int b = i / bs, base = b * bs, src = base + bs - 1 - (i - base);
        CHECK_MSG(out[i] == (src < n ? x[src] : -1.0f), "i=%d", i);
    }
}

/* Above 48 KiB a launch needs cudaFuncSetAttribute first, as on the GPU. */
static void test_dynamic_shared_limit(void) {
    float x[4] = {1, 2, 3, 4}, out[4];
    size_t big = 64u << 10;
    RTR_LAUNCH(reverse_kernel, 1, 4, big, 0, out, x, 4);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    CHECK(cudaFuncSetAttribute(reverse_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)big) == cudaSuccess);
    RTR_LAUNCH(reverse_kernel, 1, 4, big, 0, out, x, 4);
    CHECK(cudaGetLastError() == cudaSuccess);
    CHECK(out[0] == 4 && out[3] == 1);
    RTR_LAUNCH(reverse_kernel, 1, 1025, 0, 0, out, x, 4);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
}

/* ---- barrier inside a loop: Hillis-Steele inclusive scan ---- */
__global__ void scan_kernel(int *out, const int *x, int n) {
    __shared__ int buf[2][1024];
    int t = threadIdx.x, i = blockIdx.x * blockDim.x + t, cur = 0;
    buf[0][t] = i < n ? x[i] : 0;
    __syncthreads();
    for (unsigned off = 1; off < blockDim.x; off <<= 1) {
        buf[cur ^ 1][t] = buf[cur][t] + (t >= (int)off ? buf[cur][t - off] : 0);
        cur ^= 1;
        __syncthreads();
    }
    if (i < n) out[i] = buf[cur][t];
}

static void test_barrier_in_loop(void) {
    const int n = 1500;
    int x[n], out[n];
    for (int i = 0; i < n; i++) x[i] = rand_int(-50, 50);
    const int blocks[] = {32, 160, 512};
    for (int bi = 0; bi < 3; bi++) {
        int bs = blocks[bi];
        RTR_LAUNCH(scan_kernel, (n + bs - 1) / bs, bs, 0, 0, out, x, n);
        int run = 0, bad = 0;
        for (int i = 0; i < n; i++) {
            run = i % bs ? run + x[i] : x[i];
            bad += out[i] != run;
        }
        CHECK_MSG(bad == 0, "block %d: %d wrong", bs, bad);
    }
}

/* ---- shuffles with sub-warp widths, up and idx ---- */
__global__ void shfl_kernel(int *up, int *idx, int *down16) {
    int l = threadIdx.x;
    up[l] = __shfl_up_sync(0xffffffffu, l * 10, 3);
    idx[l] = __shfl_sync(0xffffffffu, l * 10, 5, 8);
    down16[l] = __shfl_down_sync(0xffffffffu, l * 10, 4, 16);
}

static void test_shuffle_widths(void) {
    int up[64], idx[64], down16[64];
    RTR_LAUNCH(shfl_kernel, 1, 64, 0, 0, up, idx, down16);
    for (int t = 0; t < 64; t++) {
        int l = t % 32, w = t / 32 * 32;
        CHECK(up[t] == (l >= 3 ? (w + l - 3) : w + l) * 10);
        CHECK(idx[t] == (w + (l & ~7) + 5) * 10);
        CHECK(down16[t] == (w + ((l % 16) + 4 < 16 ? l + 4 : l)) * 10);
    }
}

/* ---- 3-D grids and blocks ---- */
__global__ void index_kernel(int *out) {
    int bid = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    out[bid * blockDim.x * blockDim.y * blockDim.z + tid] = bid * 1000 + tid;
}

static void test_indices_3d(void) {
    const int nb = 2 * 3 * 2, nt = 4 * 3 * 5;
    int out[nb * nt];
    memset(out, 0xff, sizeof out);
    RTR_LAUNCH(index_kernel, dim3(2, 3, 2), dim3(4, 3, 5), 0, 0, out);
    for (int b = 0; b < nb; b++)
        for (int t = 0; t < nt; t++) CHECK(out[b * nt + t] == b * 1000 + t);
}

/* ---- vector types, aligned shared memory, constant memory ---- */
__constant__ float gain[4];

__global__ void float4_kernel(float4 *out, const float4 *in, int n4) {
    __shared__ __align__(16) float4 stage[64];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    stage[threadIdx.x] = i < n4 ? in[i] : make_float4(0, 0, 0, 0);
    __syncthreads();
    float4 v = stage[threadIdx.x];
    if (i < n4) out[i] = make_float4(v.x * gain[0], v.y * gain[1], v.z * gain[2], v.w * gain[3]);
}

static void test_vector_types_and_constants(void) {
    const int n4 = 150;
    float4 in[n4], out[n4];
    const float g[4] = {1, -2, 0.5f, 3};
    CHECK(cudaMemcpyToSymbol(gain, g, sizeof g) == cudaSuccess);
    CHECK(cudaMemcpyToSymbol(gain, g, sizeof g, 4) == cudaErrorInvalidValue); /* past the symbol */
    for (int i = 0; i < n4; i++) in[i] = make_float4((float)i, (float)-i, (float)(2 * i), 1.0f);
    RTR_LAUNCH(float4_kernel, (n4 + 63) / 64, 64, 0, 0, out, in, n4);
    int bad = 0;
    for (int i = 0; i < n4; i++)
        bad += out[i].x != i || out[i].y != 2.0f * i || out[i].z != (float)i || out[i].w != 3.0f;
    CHECK(bad == 0);
    CHECK(alignof(float4) == 16 && sizeof(float4) == 16);
}

/* ---- half / bfloat16 conversions ---- */
static void test_half_conversions(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) { /* every finite half survives a round trip */
        if ((h & 0x7c00) == 0x7c00) continue;
        bad += __float2half(__half2float(__half{(uint16_t)h})).x != h;
    }
    CHECK(bad == 0);
    for (int i = 0; i < 200000; i++) { /* rounding against the compiler's _Float16 */
        float f = ldexpf((float)rand_int(-(1 << 24), 1 << 24), rand_int(-50, 0));
        _Float16 r = (_Float16)f;
        uint16_t rb;
        memcpy(&rb, &r, 2);
        bad += __float2half(f).x != rb;
    }
    CHECK_MSG(bad == 0, "%d mismatches against _Float16", bad);
    CHECK(__float2half(65520.0f).x == 0x7c00 && __float2half(65519.0f).x == 0x7bff);
    CHECK(__half2float(__float2half(1.0f + 1.0f / 2048)) == 1.0f); /* tie to even */
    CHECK(__float2half(NAN).x == 0x7e00 && __float2half(-INFINITY).x == 0xfc00);
}

static void test_bf16_conversions(void) {
    int bad = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        if ((b & 0x7f80) == 0x7f80) continue;
        bad += __float2bfloat16(__bfloat162float(__nv_bfloat16{(uint16_t)b})).x != b;
    }
    CHECK(bad == 0);
    CHECK(__bfloat162float(__float2bfloat16(1.0f + 1.0f / 256)) == 1.0f);                  /* tie to even */
    CHECK(__bfloat162float(__float2bfloat16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);     /* tie to even, up */
    CHECK(__bfloat162float(__float2bfloat16(1.0f + 1.0f / 256 + 1.0f / 4096)) == 1.0f + 2.0f / 256);
    CHECK(isnan(__bfloat162float(__float2bfloat16(NAN))));
}

/* ---- the emulator's guards ---- */

/* Reads the previous thread's slot with no barrier between write and read:
 * on a GPU a race. Running threads in index order would hide it (thread t-1
 * has always written first); the emulator's backward and shuffled blocks
 * expose it. */
__global__ void racy_kernel(int *out) {
    __shared__ int buf[64];
    buf[threadIdx.x] = (int)(blockIdx.x * 1000 + threadIdx.x);
    out[blockIdx.x * blockDim.x + threadIdx.x] = threadIdx.x ? buf[threadIdx.x - 1] : -1;
}

static void test_missing_barrier_is_visible(void) {
    int out[3 * 64], wrong = 0;
    RTR_LAUNCH(racy_kernel, 3, 64, 0, 0, out);
    for (int b = 0; b < 3; b++)
        for (int t = 0; t < 64; t++) wrong += out[b * 64 + t] != (t ? b * 1000 + t - 1 : -1);
    CHECK(wrong > 0);
}

__global__ void divergent_barrier_kernel(int *out) {
    if (threadIdx.x < 16) __syncthreads();
    else __syncthreads();
    out[threadIdx.x] = 1;
}

__global__ void early_exit_kernel(int *out) {
    if (threadIdx.x == 5) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

__global__ void partial_warp_shuffle_kernel(int *out) {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}

/* Run one launch in a child process; true when the emulator aborted it. */
static bool aborts(void (*fn)(int *)) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        int out[64];
        fn(out);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void launch_divergent(int *out) { RTR_LAUNCH(divergent_barrier_kernel, 1, 32, 0, 0, out); }
static void launch_early_exit(int *out) { RTR_LAUNCH(early_exit_kernel, 1, 32, 0, 0, out); }
static void launch_partial_warp(int *out) { RTR_LAUNCH(partial_warp_shuffle_kernel, 1, 40, 0, 0, out); }
static void launch_full_warp(int *out) { RTR_LAUNCH(partial_warp_shuffle_kernel, 1, 64, 0, 0, out); }

static void test_misuse_aborts(void) {
    CHECK(aborts(launch_divergent));
    CHECK(aborts(launch_early_exit));
    CHECK(aborts(launch_partial_warp));
    CHECK(!aborts(launch_full_warp));
}

static void test_device_memory_poisoned(void) {
    float *d = nullptr;
    CHECK(cudaMalloc(&d, 16 * sizeof(float)) == cudaSuccess);
    CHECK(isnan(d[0]) && isnan(d[15]));
    cudaFree(d);
}

TEST_MAIN(T(test_block_reduce), T(test_block_sum_float), T(test_votes), T(test_atomics), T(test_dynamic_shared),
          T(test_dynamic_shared_limit), T(test_barrier_in_loop), T(test_shuffle_widths), T(test_indices_3d),
          T(test_vector_types_and_constants),
          T(test_half_conversions), T(test_bf16_conversions), T(test_missing_barrier_is_visible),
          T(test_misuse_aborts), T(test_device_memory_poisoned))
