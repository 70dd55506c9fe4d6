/* Every kernel in kernels/, run on the CUDA emulator, against its plain-C
 * reference: the emulated CUDA backend ("cuda-emu") and the CPU backend go
 * through backend_suite (all ops, awkward shapes, guard bytes). Then what the
 * suite cannot reach: the bf16/fp16 rounding kernel bit for bit, launch
 * errors that name the op and sizes, and backend selection without a GPU. */
#include "launchers.cuh"
#include "backend_suite.h"
#include "test.h"

#include <string.h>

static void test_every_op_against_reference(void) {
    rtr_backend emu, ref;
    CHECK(rtr_backend_emu_open(&emu) == RTR_OK);
    CHECK(rtr_backend_ref_open(&ref) == RTR_OK);
    CHECK(backend_suite_run(&emu, &ref) == 0);
    rtr_backend_free(&emu);
    rtr_backend_free(&ref);
}

/* The CPU backend rtr computes with (fast attention and GELU, GEMMs split
 * over threads) against the same references. */
static void test_cpu_backend_against_reference(void) {
    rtr_backend cpu, ref;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    CHECK(rtr_backend_ref_open(&ref) == RTR_OK);
    CHECK(backend_suite_run(&cpu, &ref) == 0);
    rtr_backend_free(&cpu);
    rtr_backend_free(&ref);
}

/* bf16 round-to-nearest-even of a float, written out: keep the top 16 bits,
 * add half an ulp minus one plus the kept lsb (ties to even), NaN stays NaN. */
static uint16_t bf16_reference(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if (isnan(f)) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

static void test_convert_f32(void) {
    /* a strided 333 x 211 matrix (not a multiple of the block, several grid strides) */
    const int rows = 333, cols = 211, ld_in = 215, ld_out = 216;
    size_t n_in = (size_t)rows * ld_in, n_out = (size_t)rows * ld_out;
    float *in = (float *)malloc(n_in * sizeof *in);
    uint16_t *out = (uint16_t *)malloc(n_out * sizeof *out);
    uint64_t s = 7;
    for (size_t i = 0; i < n_in; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int e = (int)(s % 60) - 40; /* normals, fp16 subnormals and overflow */
        in[i] = ldexpf((float)((int64_t)(s >> 20) % 16777216) / 16777216.0f, e) * ((s >> 8) & 1 ? -1.0f : 1.0f);
    }
    in[0] = NAN, in[1] = INFINITY, in[2] = 65520.0f, in[3] = 1.0f + 1.0f / 256;
    for (int prec = RTR_GEMM_BF16; prec <= RTR_GEMM_F16; prec++) {
        for (size_t i = 0; i < n_out; i++) out[i] = 0xBEEF;
        CHECK(RTR_KNS::convert_f32(out, ld_out, in, ld_in, rows, cols, (rtr_gemm_precision)prec, 0) == RTR_OK);
        size_t bad = 0, pad_touched = 0;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                float f = in[(size_t)r * ld_in + c];
                uint16_t got = out[(size_t)r * ld_out + c], want;
                if (prec == RTR_GEMM_BF16) want = bf16_reference(f);
                else {
                    _Float16 h = (_Float16)f;
                    memcpy(&want, &h, 2);
                    if (isnan(f)) want = (got & 0x7c00) == 0x7c00 && (got & 0x3ff) ? got : 0; /* any NaN */
                }
                bad += got != want;
            }
            for (int c = cols; c < ld_out; c++) pad_touched += out[(size_t)r * ld_out + c] != 0xBEEF;
        }
        CHECK_MSG(bad == 0, "%s: %zu of %d differ", prec == RTR_GEMM_BF16 ? "bf16" : "fp16", bad, rows * cols);
        CHECK(pad_touched == 0);
    }
    CHECK(RTR_KNS::convert_f32(out, ld_out, in, ld_in, rows, cols, RTR_GEMM_F32, 0) == RTR_ERR_INVALID);
    free(in);
    free(out);
}

/* A launch the device refuses comes back through RTR_LAUNCH_CHECK as
 * RTR_ERR_DEVICE naming the op and sizes; launchers refuse what their kernels
 * cannot do before launching. */
__global__ void one_kernel(int *x) { x[threadIdx.x] = 1; }

static rtr_status launch_too_wide(int *x, int threads) {
    RTR_LAUNCH(one_kernel, 1, threads, 0, 0, x);
    RTR_LAUNCH_CHECK("one_kernel", "threads=%d", threads);
    return RTR_OK;
}

static void test_launch_errors_name_op(void) {
    int x[2048] = {0};
    CHECK(launch_too_wide(x, 1024) == RTR_OK && x[1023] == 1);
    CHECK(launch_too_wide(x, 2048) == RTR_ERR_DEVICE);
    CHECK(strstr(rtr_last_error(), "one_kernel") && strstr(rtr_last_error(), "threads=2048") &&
          strstr(rtr_last_error(), "invalid configuration"));
    float buf[64] = {0};
    int32_t lens[1] = {1};
    CHECK(RTR_KNS::rtr_attention_forward(buf, buf, buf, NULL, lens, 1, 1, 30, 4, 0) == RTR_ERR_INVALID);      /* C % NH */
    CHECK(RTR_KNS::rtr_attention_forward(buf, buf, buf, NULL, lens, 1, 1, 256, 1, 0) == RTR_ERR_UNSUPPORTED); /* hs */
    CHECK(strstr(rtr_last_error(), "attention_forward") != NULL);
}

/* Without a GPU: auto is the CPU, cuda is a clear error; with one, auto is CUDA. */
static void test_backend_selection(void) {
    rtr_backend b;
    bool have_gpu = rtr_backend_init(&b, "cuda") == RTR_OK;
    if (have_gpu) {
        CHECK(!strcmp(b.iface->name, "cuda"));
    } else {
        CHECK(strlen(rtr_last_error()) > 0);
    }
    rtr_backend_free(&b);
    CHECK(rtr_backend_init(&b, "auto") == RTR_OK);
    CHECK(!strcmp(b.iface->name, have_gpu ? "cuda" : "cpu"));
    rtr_backend_free(&b);
    CHECK(rtr_backend_init(&b, "cpu") == RTR_OK && !strcmp(b.iface->name, "cpu"));
    CHECK(rtr_backend_supports(&b, RTR_OP_ATTENTION_FORWARD) && !rtr_backend_supports(&b, RTR_OP_COUNT));
    /* supports answers from the table: a backend without an op says so */
    rtr_backend_iface partial = *b.iface;
    partial.heads_score = NULL;
    const rtr_backend_iface *full = b.iface;
    b.iface = &partial;
    CHECK(!rtr_backend_supports(&b, RTR_OP_HEADS_SCORE) && rtr_backend_supports(&b, RTR_OP_HEADS_FORWARD));
    b.iface = full;
    /* the CPU has every op but the bf16 GEMM (it computes in fp32) */
    for (int op = 0; op < RTR_OP_COUNT; op++) CHECK(rtr_backend_supports(&b, (rtr_op)op) == (op != RTR_OP_GEMM_BF16));
    CHECK(!strcmp(rtr_op_name(RTR_OP_HEADS_SCORE), "heads_score") && !strcmp(rtr_op_name(RTR_OP_SGEMM), "sgemm"));
    rtr_backend_free(&b);
    CHECK(rtr_backend_init(&b, "tpu") == RTR_ERR_INVALID);
}

TEST_MAIN(T(test_every_op_against_reference), T(test_cpu_backend_against_reference), T(test_convert_f32), T(test_launch_errors_name_op),
          T(test_backend_selection))
