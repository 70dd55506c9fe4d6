/* cuda_emu.h — a test-only CUDA emulator: lets the host C++ compiler build and
 * run the kernels in kernels/ (.cu) on a machine without a GPU.
 *
 * Force-included (g++ -x c++ -include cuda_emu.h) before a .cu file. Blocks of
 * a launch run one after another; the threads of a block are cooperative
 * fibers (ucontext) that switch only at __syncthreads(), warp shuffles, votes
 * and __syncwarp(), so shared memory can be static storage. Each round of the
 * block scheduler runs the fibers forward, backward or shuffled (by block
 * index) so a missing barrier shows as a wrong result rather than hiding
 * behind one lucky order. Misuse that a GPU would punish with a hang or
 * garbage (barriers at different call sites, a thread exiting while others
 * wait, a shuffle mask naming absent lanes, too much shared memory) aborts
 * with a message naming the kernel, block, thread and source line.
 * kernels/emu/README.md says what this proves and what it does not. */
#ifndef RTR_CUDA_EMU_H
#define RTR_CUDA_EMU_H

#define RTR_CUDA_EMU 1

#include <ucontext.h>
#include <sys/mman.h>

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
/* Constant memory is ordinary global storage; cudaMemcpyToSymbol copies into it. */
#define __constant__
/* One block is alive at a time, so per-block shared memory is static storage.
 * (Unlike the GPU it starts zeroed; dynamic shared memory is poisoned.) */
#define __shared__ static
#define __syncthreads() rtr_emu::syncthreads(__FILE__, __LINE__, -1)
#define __syncthreads_count(p) rtr_emu::syncthreads(__FILE__, __LINE__, (p) ? 1 : 0)
#define __syncthreads_or(p) (rtr_emu::syncthreads(__FILE__, __LINE__, (p) ? 1 : 0) != 0)
#define __syncthreads_and(p) (rtr_emu::syncthreads(__FILE__, __LINE__, (p) ? 1 : 0) == (int)rtr_emu::g.nthreads)

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef dim3 uint3;

/* Vector types for vectorised loads and stores, aligned as on the device. */
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorNoDevice = 100,
};
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                      cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
typedef struct rtr_emu_stream_ *cudaStream_t;
typedef struct rtr_emu_event_ *cudaEvent_t;
enum { cudaStreamNonBlocking = 1, cudaEventDisableTiming = 2 };

static constexpr int warpSize = 32;

namespace rtr_emu {

constexpr unsigned kWarp = 32;
constexpr unsigned kMaxThreads = 1024;
constexpr size_t kStackBytes = 128u << 10;
constexpr size_t kSmemDefault = 48u << 10;  /* without cudaFuncSetAttribute */
constexpr size_t kSmemOptIn = 227u << 10;   /* sm_90 per-block maximum */
constexpr unsigned char kPoison = 0xff;     /* bytes of fresh device memory: NaN floats */

struct fiber {
    ucontext_t ctx;
    uint3 idx;
    unsigned lane, warp;
    bool done;
};

struct barrier {
    unsigned arrived, gen;
    int acc, result; /* __syncthreads_count: sum of predicates, published at release */
};

struct warp_state {
    barrier bar;
    unsigned mask;
    /* One value per lane for shuffles and votes, double-buffered by barrier
     * generation: a lane can run ahead into the next exchange (writing the
     * other half) but not two ahead, since that needs every lane's arrival. */
    uint64_t slot[2][kWarp];
};

struct state {
    const char *kernel;
    dim3 grid, block, block_idx;
    unsigned nthreads;
    fiber *fibers, *cur;
    unsigned *order;
    ucontext_t sched;
    char *stacks;
    unsigned char *dyn_smem;
    size_t dyn_smem_bytes;
    barrier block_bar;
    const char *bar_file;
    int bar_line;
    warp_state warps[kMaxThreads / kWarp];
    bool progress;
    cudaError_t last_error;
    void (*entry)(void *);
    void *entry_arg;
    struct { const void *fn; size_t bytes; } smem_optin[64];
    unsigned n_optin;
};
inline state g;

[[noreturn]] inline void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda_emu: kernel %s, block (%u,%u,%u)", g.kernel ? g.kernel : "?", g.block_idx.x,
            g.block_idx.y, g.block_idx.z);
    if (g.cur) fprintf(stderr, ", thread (%u,%u,%u)", g.cur->idx.x, g.cur->idx.y, g.cur->idx.z);
    fputs(": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

inline void yield() { swapcontext(&g.cur->ctx, &g.sched); }

/* Arrive at a barrier of `expected` threads and wait for its release.
 * Returns the published accumulator (sum of `pred` over arrivals). */
inline int barrier_wait(barrier &b, unsigned expected, int pred) {
    unsigned gen = b.gen;
    g.progress = true;
    if (pred > 0) b.acc += pred;
    if (++b.arrived == expected) {
        b.result = b.acc;
        b.arrived = 0;
        b.acc = 0;
        b.gen++;
        return b.result;
    }
    while (b.gen == gen) yield();
    return b.result;
}

/* __syncthreads(): every thread of the block, at the same call site. */
inline int syncthreads(const char *file, int line, int pred) {
    if (g.block_bar.arrived == 0) {
        g.bar_file = file;
        g.bar_line = line;
    } else if (line != g.bar_line || strcmp(file, g.bar_file)) {
        fail("__syncthreads at %s:%d while other threads wait at %s:%d", file, line, g.bar_file, g.bar_line);
    }
    return barrier_wait(g.block_bar, g.nthreads, pred);
}

/* Lanes that exist in warp w (the last warp of a block may be partial). */
inline unsigned warp_lanes(unsigned w) {
    unsigned n = g.nthreads - w * kWarp;
    return n >= kWarp ? 0xffffffffu : (1u << n) - 1;
}

/* __syncwarp(mask): the lanes named in mask meet; all must exist and agree. */
inline void syncwarp(unsigned mask, const char *what) {
    fiber &f = *g.cur;
    warp_state &w = g.warps[f.warp];
    if (mask & ~warp_lanes(f.warp)) fail("%s: mask 0x%08x names lanes absent from this warp (0x%08x)", what, mask,
                                         warp_lanes(f.warp));
    if (!(mask >> f.lane & 1)) fail("%s: lane %u calls with mask 0x%08x that excludes it", what, f.lane, mask);
    if (w.bar.arrived == 0) w.mask = mask;
    else if (w.mask != mask) fail("%s: lanes disagree on the mask (0x%08x vs 0x%08x)", what, mask, w.mask);
    barrier_wait(w.bar, (unsigned)__builtin_popcount(mask), 0);
}

enum shfl_kind { SHFL_IDX, SHFL_UP, SHFL_DOWN, SHFL_XOR };

/* One shuffle: publish in this generation's slots, meet, read the source lane. */
template <class T>
T shfl(unsigned mask, T v, shfl_kind kind, int arg, int width) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a type wider than 8 bytes");
    if (width <= 0 || width > (int)kWarp || (width & (width - 1))) fail("shuffle width %d is not a power of 2 <= 32", width);
    fiber &f = *g.cur;
    warp_state &w = g.warps[f.warp];
    uint64_t *slot = w.slot[w.bar.gen & 1];
    memcpy(&slot[f.lane], &v, sizeof(T));
    syncwarp(mask, "shuffle");
    int lane = (int)f.lane, base = lane & ~(width - 1), src = lane;
    switch (kind) {
    case SHFL_IDX: src = base + (arg & (width - 1)); break;
    case SHFL_UP: src = lane - arg >= base ? lane - arg : lane; break;
    case SHFL_DOWN: src = lane + arg < base + width ? lane + arg : lane; break;
    case SHFL_XOR: src = (lane ^ arg) < base + width ? lane ^ arg : lane; break;
    }
    if (!(mask >> src & 1)) fail("shuffle reads lane %d outside mask 0x%08x", src, mask);
    T out;
    memcpy(&out, &slot[src], sizeof(T));
    return out;
}

inline unsigned ballot(unsigned mask, int pred) {
    fiber &f = *g.cur;
    warp_state &w = g.warps[f.warp];
    uint64_t *slot = w.slot[w.bar.gen & 1];
    slot[f.lane] = pred != 0;
    syncwarp(mask, "vote");
    unsigned bits = 0;
    for (unsigned l = 0; l < kWarp; l++)
        if (mask >> l & 1 && slot[l]) bits |= 1u << l;
    return bits;
}

inline void fiber_main() {
    g.entry(g.entry_arg);
    fiber &f = *g.cur;
    if (g.block_bar.arrived) fail("thread exits while %u threads wait at __syncthreads (%s:%d)", g.block_bar.arrived,
                                  g.bar_file, g.bar_line);
    if (g.warps[f.warp].bar.arrived && g.warps[f.warp].mask >> f.lane & 1)
        fail("lane %u exits while its warp waits for it in a shuffle, vote or __syncwarp", f.lane);
    f.done = true;
    g.progress = true;
}

/* Scheduler round order for this block: forward, backward or shuffled. */
inline void order_fill(uint64_t block_linear) {
    unsigned n = g.nthreads;
    for (unsigned i = 0; i < n; i++) g.order[i] = i;
    if (block_linear % 3 == 1) {
        for (unsigned i = 0; i < n; i++) g.order[i] = n - 1 - i;
    } else if (block_linear % 3 == 2) {
        uint64_t s = block_linear * 0x9e3779b97f4a7c15ull + 1;
        for (unsigned i = n - 1; i > 0; i--) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            unsigned j = (unsigned)(s % (i + 1)), t = g.order[i];
            g.order[i] = g.order[j], g.order[j] = t;
        }
    }
}

inline void run_block(uint64_t block_linear) {
    for (unsigned t = 0; t < g.nthreads; t++) {
        fiber &f = g.fibers[t];
        f.idx = uint3(t % g.block.x, t / g.block.x % g.block.y, t / (g.block.x * g.block.y));
        f.lane = t % kWarp;
        f.warp = t / kWarp;
        f.done = false;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = g.stacks + (size_t)t * kStackBytes;
        f.ctx.uc_stack.ss_size = kStackBytes;
        f.ctx.uc_link = &g.sched;
        makecontext(&f.ctx, fiber_main, 0);
    }
    memset(&g.block_bar, 0, sizeof g.block_bar);
    memset(g.warps, 0, sizeof g.warps);
    memset(g.dyn_smem, kPoison, g.dyn_smem_bytes);
    order_fill(block_linear);
    for (unsigned live = g.nthreads; live;) {
        g.progress = false;
        for (unsigned i = 0; i < g.nthreads; i++) {
            fiber &f = g.fibers[g.order[i]];
            if (f.done) continue;
            g.cur = &f;
            swapcontext(&g.sched, &f.ctx);
            if (f.done) live--;
        }
        g.cur = nullptr;
        if (live && !g.progress) fail("deadlock: %u threads wait and none can proceed", live);
    }
}

inline size_t smem_limit(const void *fn) {
    for (unsigned i = 0; i < g.n_optin; i++)
        if (g.smem_optin[i].fn == fn) return g.smem_optin[i].bytes;
    return kSmemDefault;
}

/* Run kernel k over grid × block. Arguments are converted to the kernel's
 * parameter types once, as a real launch copies them. Configuration errors
 * are reported through cudaGetLastError(), like a GPU launch. */
template <class... P, class... A>
void launch(const char *name, dim3 grid, dim3 block, size_t smem, cudaStream_t, void (*k)(P...), A &&...args) {
    std::tuple<P...> params(std::forward<A>(args)...);
    uint64_t nthreads = (uint64_t)block.x * block.y * block.z;
    if (!grid.x || !grid.y || !grid.z || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535 || !nthreads || nthreads > kMaxThreads ||
        block.z > 64 || smem > smem_limit((const void *)k)) {
        g.last_error = cudaErrorInvalidConfiguration;
        return;
    }
    struct call {
        void (*k)(P...);
        std::tuple<P...> *params;
        static void run(void *p) {
            call *c = (call *)p;
            std::apply(c->k, *c->params);
        }
    } c{k, &params};
    if (!g.stacks) {
        void *m = mmap(nullptr, kMaxThreads * kStackBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) fail("cannot map fiber stacks");
        g.stacks = (char *)m;
        /* a guard page under each stack: an overflowing kernel faults instead
         * of silently writing into its neighbour's stack */
        for (unsigned t = 0; t < kMaxThreads; t++) mprotect(g.stacks + (size_t)t * kStackBytes, 4096, PROT_NONE);
        g.fibers = new fiber[kMaxThreads];
        g.order = new unsigned[kMaxThreads];
        /* 128-byte aligned, as RTR_DYNAMIC_SHARED_ALIGNED promises (and
         * RTR_DYNAMIC_SHARED's 16) */
        g.dyn_smem = static_cast<unsigned char *>(aligned_alloc(128, kSmemOptIn));
    }
    g.kernel = name;
    g.grid = grid;
    g.block = block;
    g.nthreads = (unsigned)nthreads;
    g.dyn_smem_bytes = smem;
    g.entry = &call::run;
    g.entry_arg = &c;
    uint64_t b = 0;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++, b++) {
                g.block_idx = dim3(x, y, z);
                run_block(b);
            }
    g.kernel = nullptr;
}

/* IEEE binary16 and bfloat16, round to nearest even, as the CUDA intrinsics. */
inline uint16_t float_to_half_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds past 65504 */
    if (a < 0x38800000u) {                                    /* half subnormal or zero */
        float v;
        memcpy(&v, &a, 4);
        return (uint16_t)(sign | (uint32_t)nearbyintf(v * 16777216.0f));
    }
    uint32_t h = ((a >> 23) - 112) << 10 | (a & 0x7fffffu) >> 13, rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

inline float half_bits_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0) {
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    }
    x = e == 31 ? sign | 0x7f800000u | m << 13 : sign | (e + 112) << 23 | m << 13;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

inline uint16_t float_to_bf16_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

inline float bf16_bits_to_float(uint16_t b) {
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

} /* namespace rtr_emu */

#define threadIdx (static_cast<const uint3 &>(rtr_emu::g.cur->idx))
#define blockIdx (static_cast<const dim3 &>(rtr_emu::g.block_idx))
#define blockDim (static_cast<const dim3 &>(rtr_emu::g.block))
#define gridDim (static_cast<const dim3 &>(rtr_emu::g.grid))

/* The one launch macro; kernels/common.cuh gives the nvcc <<<>>> form. */
#define RTR_LAUNCH(kernel, grid, block, smem, stream, ...) \
    rtr_emu::launch(#kernel, grid, block, smem, stream, kernel, __VA_ARGS__)
/* Dynamic shared memory of the running block (poisoned at block start). */
#define RTR_DYNAMIC_SHARED(type, name) type *name = reinterpret_cast<type *>(rtr_emu::g.dyn_smem)
#define RTR_DYNAMIC_SHARED_ALIGNED(type, name) RTR_DYNAMIC_SHARED(type, name)

/* ---- warp shuffles, votes, warp barrier ---- */
template <class T> inline T __shfl_sync(unsigned m, T v, int src, int w = warpSize) {
    return rtr_emu::shfl(m, v, rtr_emu::SHFL_IDX, src, w);
}
template <class T> inline T __shfl_up_sync(unsigned m, T v, unsigned d, int w = warpSize) {
    return rtr_emu::shfl(m, v, rtr_emu::SHFL_UP, (int)d, w);
}
template <class T> inline T __shfl_down_sync(unsigned m, T v, unsigned d, int w = warpSize) {
    return rtr_emu::shfl(m, v, rtr_emu::SHFL_DOWN, (int)d, w);
}
template <class T> inline T __shfl_xor_sync(unsigned m, T v, int lane_mask, int w = warpSize) {
    return rtr_emu::shfl(m, v, rtr_emu::SHFL_XOR, lane_mask, w);
}
inline unsigned __ballot_sync(unsigned m, int p) { return rtr_emu::ballot(m, p); }
inline int __any_sync(unsigned m, int p) { return rtr_emu::ballot(m, p) != 0; }
inline int __all_sync(unsigned m, int p) { return rtr_emu::ballot(m, p) == m; }
inline void __syncwarp(unsigned m = 0xffffffffu) { rtr_emu::syncwarp(m, "__syncwarp"); }
inline void __threadfence() {}
inline void __threadfence_block() {}

/* ---- atomics: fibers never interleave inside one, so plain read-modify-write ---- */
template <class T> inline T atomicAdd(T *p, T v) { T o = *p; *p = o + v; return o; }
template <class T> inline T atomicSub(T *p, T v) { T o = *p; *p = o - v; return o; }
template <class T> inline T atomicMax(T *p, T v) { T o = *p; *p = o < v ? v : o; return o; }
template <class T> inline T atomicMin(T *p, T v) { T o = *p; *p = v < o ? v : o; return o; }
template <class T> inline T atomicExch(T *p, T v) { T o = *p; *p = v; return o; }
template <class T> inline T atomicCAS(T *p, T cmp, T v) { T o = *p; if (o == cmp) *p = v; return o; }
template <class T> inline T atomicOr(T *p, T v) { T o = *p; *p = o | v; return o; }
template <class T> inline T atomicAnd(T *p, T v) { T o = *p; *p = o & v; return o; }

/* ---- half and bfloat16 (storage types with the conversion intrinsics) ---- */
struct __half { uint16_t x; };
struct __nv_bfloat16 { uint16_t x; };
inline __half __float2half(float f) { return __half{rtr_emu::float_to_half_bits(f)}; }
inline __half __float2half_rn(float f) { return __float2half(f); }
inline float __half2float(__half h) { return rtr_emu::half_bits_to_float(h.x); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16{rtr_emu::float_to_bf16_bits(f)}; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return rtr_emu::bf16_bits_to_float(b.x); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16{u}; }

/* ---- WMMA (nvcuda::wmma), 16 x 16 x 16 tiles of bf16 with fp32 accumulators ----
 * A fragment is a warp's tile spread over its 32 lanes, 8 elements each;
 * which lane holds which element is unspecified by CUDA, and a kernel may
 * only touch fragment elements uniformly (x[i] op= v for every i). To catch
 * a kernel that relies on a layout, the emulator deals the 256 elements of
 * each kind of fragment out in its own scrambled order (element e = 32·i +
 * lane of the fragment sits at tile position (e·mult + add) mod 256, row
 * major, mult odd: a bijection), unlike any real layout and unlike each
 * other. load/store read and write each lane's own elements; mma_sync is a
 * warp exchange (every lane publishes its fragments, meets the others,
 * computes its own d elements in fp32 with k ascending, meets again, writes
 * d). As on the GPU, all 32 lanes must call each *_sync with the same
 * arguments, the pointer must be 32-byte aligned and ldm a multiple of 16
 * bytes; anything else aborts. */
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use> struct frag_map; /* position of element e in the row-major tile */
template <> struct frag_map<matrix_a> { static constexpr unsigned mult = 73, add = 41; };
template <> struct frag_map<matrix_b> { static constexpr unsigned mult = 151, add = 7; };
template <> struct frag_map<accumulator> { static constexpr unsigned mult = 45, add = 200; };

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the emulator models 16x16x16 tiles only");
    static constexpr int num_elements = 8;
    T x[8];
    /* tile position (row, col) of this lane's element i */
    static void pos(unsigned lane, int i, int &r, int &c) {
        unsigned e = (32u * (unsigned)i + lane) * frag_map<Use>::mult + frag_map<Use>::add;
        r = (int)(e % 256u / 16u), c = (int)(e % 16u);
    }
    /* the lane and element holding tile position (r, c) */
    static void owner(int r, int c, unsigned &lane, int &i) {
        unsigned inv = 1; /* mult⁻¹ mod 256 (Newton: each step doubles the correct bits) */
        for (int k = 0; k < 4; k++) inv *= 2u - frag_map<Use>::mult * inv;
        unsigned e = ((unsigned)(r * 16 + c) - frag_map<Use>::add) * inv % 256u;
        lane = e % 32u, i = (int)(e / 32u);
    }
};

inline float wmma_to_float(float v) { return v; }
inline float wmma_to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
inline void wmma_from_float(float &d, float v) { d = v; }

/* A warp-collective call: every lane of a full warp, the same (ptr, ldm). */
inline void wmma_collective(const char *what, const void *ptr, unsigned ldm, size_t elem_bytes) {
    using namespace rtr_emu;
    fiber &f = *g.cur;
    if ((uintptr_t)ptr % 32) fail("%s: pointer %p not 32-byte aligned", what, ptr);
    if (ldm * elem_bytes % 16) fail("%s: ldm %u not a multiple of 16 bytes", what, ldm);
    warp_state &w = g.warps[f.warp];
    uint64_t *slot = w.slot[w.bar.gen & 1];
    slot[f.lane] = (uint64_t)(uintptr_t)ptr ^ ((uint64_t)ldm << 48);
    syncwarp(0xffffffffu, what);
    for (unsigned l = 0; l < kWarp; l++)
        if (slot[l] != slot[f.lane]) fail("%s: lanes %u and %u pass different pointers or ldm", what, l, f.lane);
    syncwarp(0xffffffffu, what); /* nobody reuses the slots before all compared */
}

template <class Use, class T, class L>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, L> &a, const T *p, unsigned ldm) {
    static_assert(!std::is_same<Use, accumulator>::value, "accumulators are loaded with a layout");
    wmma_collective("load_matrix_sync", p, ldm, sizeof(T));
    unsigned lane = rtr_emu::g.cur->lane;
    for (int i = 0; i < 8; i++) {
        int r, c;
        a.pos(lane, i, r, c);
        a.x[i] = std::is_same<L, row_major>::value ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
    }
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &a, const float *p, unsigned ldm,
                             layout_t layout) {
    wmma_collective("load_matrix_sync", p, ldm, sizeof(float));
    unsigned lane = rtr_emu::g.cur->lane;
    for (int i = 0; i < 8; i++) {
        int r, c;
        a.pos(lane, i, r, c);
        a.x[i] = layout == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
    }
}

inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &a, unsigned ldm,
                              layout_t layout) {
    wmma_collective("store_matrix_sync", p, ldm, sizeof(float));
    unsigned lane = rtr_emu::g.cur->lane;
    for (int i = 0; i < 8; i++) {
        int r, c;
        a.pos(lane, i, r, c);
        (layout == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r]) = a.x[i];
    }
}

template <class Use, class T, class L> inline void fill_fragment(fragment<Use, 16, 16, 16, T, L> &a, T v) {
    for (int i = 0; i < 8; i++) a.x[i] = v;
}

/* d = a·b + c over the warp's tiles, fp32 accumulation in k order. */
template <class T, class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, T, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, T, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
    using namespace rtr_emu;
    struct operands {
        const fragment<matrix_a, 16, 16, 16, T, LA> *a;
        const fragment<matrix_b, 16, 16, 16, T, LB> *b;
        const fragment<accumulator, 16, 16, 16, float> *c;
    } mine{&a, &b, &c};
    fiber &f = *g.cur;
    warp_state &w = g.warps[f.warp];
    uint64_t *slot = w.slot[w.bar.gen & 1];
    slot[f.lane] = (uint64_t)(uintptr_t)&mine;
    syncwarp(0xffffffffu, "mma_sync");
    const operands *all[kWarp];
    for (unsigned l = 0; l < kWarp; l++) all[l] = (const operands *)(uintptr_t)slot[l];
    float out[8];
    for (int i = 0; i < 8; i++) {
        int r, n;
        d.pos(f.lane, i, r, n);
        unsigned lc;
        int ic;
        fragment<accumulator, 16, 16, 16, float>::owner(r, n, lc, ic);
        float acc = all[lc]->c->x[ic];
        for (int k = 0; k < 16; k++) {
            unsigned la, lb;
            int ia, ib;
            fragment<matrix_a, 16, 16, 16, T, LA>::owner(r, k, la, ia);
            fragment<matrix_b, 16, 16, 16, T, LB>::owner(k, n, lb, ib);
            acc += wmma_to_float(all[la]->a->x[ia]) * wmma_to_float(all[lb]->b->x[ib]);
        }
        out[i] = acc;
    }
    syncwarp(0xffffffffu, "mma_sync"); /* every lane has read every operand */
    for (int i = 0; i < 8; i++) d.x[i] = out[i];
}
} /* namespace wmma */
} /* namespace nvcuda */

/* ---- device math intrinsics on the host libm ---- */
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
/* Correctly rounded single operations that nvcc never fuses into an FMA
 * (the emulated build compiles with -ffp-contract=off for the same reason). */
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
template <class T> inline T __ldg(const T *p) { return *p; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }

/* ---- runtime API on host memory ---- */
inline cudaError_t cudaMalloc(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    memset(*p, rtr_emu::kPoison, n); /* fresh device memory is garbage: make it NaN */
    return cudaSuccess;
}
template <class T> inline cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
inline cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
inline cudaError_t cudaMallocHost(void **p, size_t n) { return cudaMalloc(p, n); }
inline cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) { memmove(d, s, n); return cudaSuccess; }
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t = nullptr) {
    return cudaMemcpy(d, s, n, k);
}
inline cudaError_t cudaMemset(void *d, int v, size_t n) { memset(d, v, n); return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t = nullptr) { return cudaMemset(d, v, n); }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
/* Streams and events: every call above completes before it returns, so a
 * stream is a name and an event is always reached. */
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = nullptr; return cudaSuccess; }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { *e = nullptr; return cudaSuccess; }
inline cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t = nullptr) { return cudaSuccess; }
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned = 0) { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { cudaError_t e = rtr_emu::g.last_error; rtr_emu::g.last_error = cudaSuccess; return e; }
inline cudaError_t cudaPeekAtLastError() { return rtr_emu::g.last_error; }
inline const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    }
    return "unknown error";
}
template <class T>
inline cudaError_t cudaMemcpyToSymbol(T &symbol, const void *src, size_t bytes, size_t offset = 0,
                                      cudaMemcpyKind = cudaMemcpyHostToDevice) {
    if (offset + bytes > sizeof(T)) return cudaErrorInvalidValue;
    memcpy(reinterpret_cast<char *>(&symbol) + offset, src, bytes);
    return cudaSuccess;
}
/* Raise a kernel's dynamic shared memory limit above 48 KiB, as on sm_90. */
template <class F> inline cudaError_t cudaFuncSetAttribute(F *fn, cudaFuncAttribute, int bytes) {
    using namespace rtr_emu;
    if (bytes < 0 || (size_t)bytes > kSmemOptIn) return cudaErrorInvalidValue;
    unsigned i = 0;
    while (i < g.n_optin && g.smem_optin[i].fn != (const void *)fn) i++;
    if (i == sizeof g.smem_optin / sizeof *g.smem_optin) return cudaErrorInvalidValue;
    g.smem_optin[i].fn = (const void *)fn;
    g.smem_optin[i].bytes = (size_t)bytes;
    if (i == g.n_optin) g.n_optin++;
    return cudaSuccess;
}

#endif
