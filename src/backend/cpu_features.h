/* What the CPU rtr runs on can do, read once at run time (cpuid and the
 * operating system's saved vector state, through the compiler's
 * __builtin_cpu_supports), so one binary picks its kernels on every x86-64
 * machine whatever -march it was built with. */
#ifndef RTR_CPU_FEATURES_H
#define RTR_CPU_FEATURES_H

#include <stdbool.h>

typedef struct {
    bool avx2_fma;    /* AVX2 + FMA: the int8 GEMM kernel (cpu_gemm_i8.c) */
    bool avx512_vnni; /* AVX-512 VNNI (vpdpbusd): no kernel yet, reported only */
    bool avx512_bf16; /* AVX-512 BF16 (vdpbf16ps): the bf16 GEMMs through oneDNN (cpu_dnnl.c) */
} cpu_features;

/* The running CPU's features (computed on first call, then cached). */
const cpu_features *cpu_features_get(void);

/* "AVX2+FMA", "AVX2+FMA AVX512-VNNI AVX512-BF16", or "no AVX2". */
const char *cpu_features_describe(void);

#endif
