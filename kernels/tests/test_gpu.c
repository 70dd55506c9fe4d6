/* The CUDA backend on a real GPU against the reference backend: every op through
 * backend_suite (fp32, bf16 and fp16 GEMMs, every custom kernel, guard bytes
 * around outputs). Exits 77 (skipped) when no CUDA device answers — a build
 * without CUDA, no driver or no GPU — which is every CI machine; run it on a
 * GPU node (bench/gpu_check.sh does). */
#include "backend_suite.h"
#include "test.h"

#include <string.h>

static void test_cuda_backend_against_cpu(void) {
    rtr_backend gpu, ref;
    if (rtr_backend_init(&gpu, "cuda") != RTR_OK) {
        fprintf(stderr, "no CUDA device: %s\n", rtr_last_error());
        TEST_SKIP("no CUDA device");
    }
    CHECK(rtr_backend_ref_open(&ref) == RTR_OK);
    CHECK(backend_suite_run(&gpu, &ref) == 0);
    rtr_backend_free(&gpu);
    rtr_backend_free(&ref);
}

TEST_MAIN(T(test_cuda_backend_against_cpu))
