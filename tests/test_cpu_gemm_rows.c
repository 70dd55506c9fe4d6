/* The fp32 sgemm row block of the CPU backend (src/backend/cpu.c,
 * cpu_sgemm_row_block): found for this OpenBLAS, a block of rows computed
 * alone gets the bits it gets inside a longer call, and the backend's split
 * GEMM (rows over two threads) gives every row the bits a call of its row
 * block alone gives it. What a bit-exact batched encoder would stand on
 * (ops_cpu.h says what it would cost). */
#include "rtr/backend.h"
#include "backend/ops_cpu.h"
#include "test.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

void openblas_set_num_threads(int num_threads);

/* Found on this machine's OpenBLAS, and a block of it computes its rows as
 * they are computed inside a longer call. */
static void test_row_block(void) {
    int p = cpu_sgemm_row_block();
    CHECK_MSG(p > 0, "no sgemm row block found for this OpenBLAS");
    if (p <= 0) return;
    fprintf(stderr, "sgemm row block: %d\n", p);
    enum { N = 200, K = 300 };
    int M = 10 * p;
    float *a = malloc(sizeof *a * (size_t)M * K), *b = malloc(sizeof *b * N * K);
    float *c = malloc(sizeof *c * (size_t)M * N), *one = malloc(sizeof *one * (size_t)p * N);
    for (int i = 0; i < M * K; i++) a[i] = (float)(2 * test_urand() - 1);
    for (int i = 0; i < N * K; i++) b[i] = (float)(2 * test_urand() - 1);
    openblas_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
    int differ = 0;
    for (int r0 = 0; r0 < M; r0 += p) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p, N, K, 1.0f, a + (size_t)r0 * K, K, b, K, 0.0f, one,
                    N);
        differ += memcmp(one, c + (size_t)r0 * N, sizeof *one * (size_t)p * N) != 0;
    }
    CHECK_MSG(differ == 0, "%d of %d row blocks differ from the long call", differ, M / p);
    free(a), free(b), free(c), free(one);
}

/* The backend's split GEMM (rows over two threads) at an M whose even
 * split is not a multiple of the row block: every block of rows as one
 * block alone. */
static void test_split_gemm_rows(void) {
    int p = cpu_sgemm_row_block();
    if (p <= 1) TEST_SKIP("row block 1 or none: no split to align");
    rtr_backend be;
    CHECK(rtr_backend_cpu_open(&be) == RTR_OK);
    omp_set_num_threads(2);
    int M = p * 101, N = 768, K = 768; /* above the split threshold; M / 2 is not a multiple of p */
    float *a = malloc(sizeof *a * (size_t)M * K), *b = malloc(sizeof *b * (size_t)N * K);
    float *c = malloc(sizeof *c * (size_t)M * N), *one = malloc(sizeof *one * (size_t)p * N);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(2 * test_urand() - 1);
    for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)(2 * test_urand() - 1);
    CHECK(be.iface->sgemm(be.ctx, false, true, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N) == RTR_OK);
    int differ = 0;
    for (int r0 = 0; r0 < M; r0 += p) {
        CHECK(be.iface->sgemm(be.ctx, false, true, p, N, K, 1.0f, a + (size_t)r0 * K, K, b, K, 0.0f, one, N) ==
              RTR_OK);
        differ += memcmp(one, c + (size_t)r0 * N, sizeof *one * (size_t)p * N) != 0;
    }
    CHECK_MSG(differ == 0, "%d of %d row blocks of the split GEMM differ from the block alone", differ, M / p);
    free(a), free(b), free(c), free(one);
    rtr_backend_free(&be);
}

TEST_MAIN(T(test_row_block), T(test_split_gemm_rows))
