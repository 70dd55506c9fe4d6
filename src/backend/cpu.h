/* What the CPU backend (cpu.c) shows of its weight cache, for tests and
 * benches: the int8 and oneDNN forms it made of B operands. */
#ifndef RTR_BACKEND_CPU_H
#define RTR_BACKEND_CPU_H

#include "rtr/backend.h"

/* *cached: the packed or reordered weight matrices b keeps now; *made: how
 * many it ever made (a cache that is reused stops counting up). Both 0 for
 * a backend that is not the fast CPU one (or a copy of its table). */
void cpu_backend_cache_stats(const rtr_backend *b, int *cached, long *made);

#endif
