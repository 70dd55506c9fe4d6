/* CPU feature detection for run-time kernel selection; see cpu_features.h. */
#include "backend/cpu_features.h"

#include <pthread.h>
#include <stdio.h>

static cpu_features features;
static char description[96];

static void detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* libgcc also checks XGETBV, so a feature the OS does not save counts as absent */
    features.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    features.avx512_vnni = __builtin_cpu_supports("avx512vnni");
    features.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
#endif
    snprintf(description, sizeof description, "%s%s%s", features.avx2_fma ? "AVX2+FMA" : "no AVX2",
             features.avx512_vnni ? " AVX512-VNNI" : "", features.avx512_bf16 ? " AVX512-BF16" : "");
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

const cpu_features *cpu_features_get(void) {
    pthread_once(&once, detect);
    return &features;
}

const char *cpu_features_describe(void) {
    pthread_once(&once, detect);
    return description;
}
