/* The CPU's threads under an address-space limit (common/limits.h). */
#include "common/limits.h"
#include "common/util.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* What the computing threads map, measured with OpenBLAS 0.3 on x86_64
 * (tests/test_bad_limits.py): t threads calling it at once hold t + 1 work
 * buffers of BUFFER_SIZE (32 << 22 bytes; kept for the process's life),
 * and each thread but the first a malloc arena (64 MiB of address space)
 * and a stack. */
#define BLAS_BUFFER ((size_t)128 << 20)
#define ARENA ((size_t)64 << 20)
/* Room kept for rtr's own arrays when the threads are sized: half of what
 * the limit leaves, or at least this much with one thread. */
#define MARGIN ((size_t)64 << 20)
#define MIB(x) ((unsigned long long)((x) >> 20))

/* Bytes the process maps now (VmSize), 0 when unknown. */
static size_t mapped_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu", &pages) != 1) pages = 0;
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t thread_stack(void) {
    struct rlimit st;
    if (getrlimit(RLIMIT_STACK, &st) || st.rlim_cur == RLIM_INFINITY || st.rlim_cur > ((rlim_t)64 << 20))
        return (size_t)8 << 20; /* glibc's default when the soft limit is unlimited */
    return (size_t)st.rlim_cur;
}

static size_t threads_need(long t) { return (size_t)(t + 1) * BLAS_BUFFER + (size_t)(t - 1) * (ARENA + thread_stack()); }

/* Every thread of the team makes a malloc (its arena) and, all at once, a
 * GEMM long enough to hold an OpenBLAS buffer while the others take theirs
 * (small ones take none), on one OpenBLAS thread each. */
static void blas_buffers_take(int threads) {
    enum { N = 512 };
    float *a = calloc(N * N, sizeof *a), *b = calloc(N * N, sizeof *b);
    int blas = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(threads)
    {
        float *c = malloc(sizeof(float) * N * N);
#pragma omp barrier
        if (a && b && c) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
        free(c);
    }
    openblas_set_num_threads(blas);
    free(a);
    free(b);
}

static rtr_status fit_status;
static char fit_error[512];
static size_t limit_bytes, blas_pending;

static void fit(void) {
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) || as.rlim_cur == RLIM_INFINITY) return;
    size_t limit = (size_t)as.rlim_cur, used = mapped_now();
    size_t left = limit > used ? limit - used : 0;
    long want = omp_get_max_threads(), t = want;
    while (t > 1 && threads_need(t) > left / 2) t--;
    if (threads_need(t) + MARGIN > left) t = 0;
    if (t < 1) {
        fit_status = RTR_ERR_NOMEM;
        snprintf(fit_error, sizeof fit_error,
                 "the address-space (virtual memory) limit (ulimit -v: %llu MiB) leaves %llu MiB beside the %llu MiB "
                 "rtr maps already, less than one CPU thread needs (%llu MiB for OpenBLAS's work buffers and %llu "
                 "MiB for rtr's arrays); raise the limit",
                 MIB(limit), MIB(left), MIB(used), MIB(threads_need(1)), MIB(MARGIN));
        return;
    }
    if (t < want) {
        rtr_note("the address-space (virtual memory) limit (ulimit -v: %llu MiB) leaves room for %ld of %ld CPU "
                 "threads (OpenBLAS's work buffers, malloc arenas and stacks): computing on %ld",
                 MIB(limit), t, want, t);
        omp_set_num_threads((int)t);
    }
    /* taken now, while the room is there: OpenBLAS retries a buffer it cannot map forever */
    blas_buffers_take((int)t);
    size_t grew = mapped_now() - used, need = threads_need(t);
    limit_bytes = limit;
    blas_pending = grew < need ? need - grew : 0;
}

rtr_status rtr_cpu_threads_fit(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fit);
    return fit_status ? rtr_fail(fit_status, "%s", fit_error) : RTR_OK;
}

const char *rtr_as_limit_note(void) {
    static _Thread_local char note[64];
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) || as.rlim_cur == RLIM_INFINITY) return "";
    snprintf(note, sizeof note, " under the address-space limit (ulimit -v: %llu MiB)", MIB((size_t)as.rlim_cur));
    return note;
}

bool rtr_alloc_leaves_blas_room(size_t bytes) {
    if (!blas_pending || bytes < ((size_t)1 << 20)) return true;
    return mapped_now() + bytes + blas_pending <= limit_bytes;
}

void rtr_exit(int rc) {
    struct rlimit as;
    if (!getrlimit(RLIMIT_AS, &as) && as.rlim_cur != RLIM_INFINITY) {
        fflush(NULL);
        _exit(rc);
    }
    exit(rc);
}
