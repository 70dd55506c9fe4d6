/* What the CPU backend (cpu.c) shows of its weight cache, for tests and
 * benches: the int8 and oneDNN forms it made of B operands. */
#ifndef RTR_BACKEND_CPU_H
#define RTR_BACKEND_CPU_H

#include "rtr/backend.h"

/* *cached: the packed or reordered weight matrices b keeps now; *made: how
 * many it ever made (a cache that is reused stops counting up). Both 0 for
 * a backend that is not the fast CPU one (or a copy of its table). */
void cpu_backend_cache_stats(const rtr_backend *b, int *cached, long *made);

/* OpenBLAS on one thread between begin and end (calls nest and may come
 * from several threads; the caller's setting is put back by the last end):
 * for OpenMP loops whose iterations call BLAS, and for results that must
 * not depend on OpenBLAS's thread count (a threaded sgemm splits the work
 * differently, and a row's last bits can follow; eval/embedllm.c). */
void cpu_blas_serial_begin(void);
void cpu_blas_serial_end(void);

#endif
