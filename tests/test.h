/* Minimal test harness: CHECK records a failure with file and line and goes
 * on; TEST_MAIN runs the listed tests and ends with "N passed, N failed,
 * N skipped". A test case fails when a check failed or when it ran no check
 * at all (it proved nothing). TEST_SKIP ends a case for missing input;
 * TEST_SKIP_PART says a part of a case could not run and lets it go on.
 * Exit status: 1 when a case failed, else 77 (ctest's SKIP) when any case or
 * part was skipped, else 0, so a skipped part never reports as a pass. */
#ifndef RTR_TEST_H
#define RTR_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int test_checks_failed_;
static int test_checks_run_;
static int test_skipped_;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        test_checks_run_++;                                                             \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
            test_checks_failed_++;                                                      \
        }                                                                               \
    } while (0)

#define CHECK_MSG(cond, ...)                                                            \
    do {                                                                                \
        test_checks_run_++;                                                             \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            test_checks_failed_++;                                                      \
        }                                                                               \
    } while (0)

/* |a - b| <= atol + rtol*|b|, NaN always fails. */
#define CHECK_CLOSE(a, b, atol, rtol)                                                   \
    do {                                                                                \
        double a_ = (a), b_ = (b);                                                      \
        CHECK_MSG(!isnan(a_) && !isnan(b_) && fabs(a_ - b_) <= (atol) + (rtol)*fabs(b_),\
                  "%.9g vs %.9g", a_, b_);                                              \
    } while (0)

#define TEST_SKIP(why)                                                                  \
    do {                                                                                \
        fprintf(stderr, "SKIP: %s\n", why);                                             \
        test_skipped_ = 1;                                                              \
        return;                                                                         \
    } while (0)

#define TEST_SKIP_PART(why)                                                             \
    do {                                                                                \
        fprintf(stderr, "SKIP (part): %s\n", why);                                      \
        test_skipped_ = 1;                                                              \
    } while (0)

typedef struct { const char *name; void (*fn)(void); } test_case;

static inline int test_run_all_(const test_case *tests, int n) {
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n; i++) {
        int before = test_checks_failed_, run_before = test_checks_run_;
        test_skipped_ = 0;
        tests[i].fn();
        if (test_checks_failed_ > before) { failed++; fprintf(stderr, "FAIL %s\n", tests[i].name); }
        else if (test_skipped_) { skipped++; fprintf(stderr, "skip %s\n", tests[i].name); }
        else if (test_checks_run_ == run_before) { failed++; fprintf(stderr, "FAIL %s: ran no check\n", tests[i].name); }
        else { passed++; fprintf(stderr, "ok   %s\n", tests[i].name); }
    }
    printf("%d passed, %d failed", passed, failed);
    if (skipped) printf(", %d skipped", skipped);
    printf("\n");
    if (failed) return 1;
    return skipped ? 77 : 0;
}

#define TEST_MAIN(...)                                                                  \
    int main(void) {                                                                    \
        static const test_case tests_[] = {__VA_ARGS__};                                \
        return test_run_all_(tests_, (int)(sizeof tests_ / sizeof *tests_));            \
    }
#define T(fn) {#fn, fn}

/* Seeded test data, the same on every platform: uniform draws in [0, 1)
 * from a 64-bit LCG (set test_rng to pick the sequence), standard normals
 * (Box-Muller) and rows of normals scaled to unit length, as an
 * L2-normalised encoder gives. */
static uint64_t test_rng = 99;
static inline double test_urand(void) {
    test_rng = test_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(test_rng >> 11) / 9007199254740992.0;
}
static inline double test_nrand(void) {
    return sqrt(-2 * log(test_urand() + 1e-300)) * cos(6.283185307179586 * test_urand());
}
static inline void test_unit_rows(float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) x[r * cols + c] = (float)test_nrand(), s += x[r * cols + c] * x[r * cols + c];
        for (int c = 0; c < cols; c++) x[r * cols + c] /= (float)sqrt(s);
    }
}

/* Path of ../shared/data relative to the source tree, or NULL when absent. */
#ifndef RTR_SHARED_DATA
#define RTR_SHARED_DATA ""
#endif

#endif
