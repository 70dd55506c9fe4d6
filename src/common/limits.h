/* The CPU's threads under an address-space limit (`ulimit -v`, a batch
 * system's memory limit). OpenBLAS maps a work buffer for each thread that
 * calls it (128 MiB) and, when the mapping fails, retries it forever: under
 * a limit that left no room, embed, train and eval hung instead of failing.
 * Called once per process before the CPU computes (the CPU backend's open):
 * with no limit it does nothing; under one it lowers the OpenMP threads to
 * what the room left allows (said with rtr_note) and has them take their
 * OpenBLAS buffers at once, so a later shortage is an allocation rtr
 * reports; when not even one thread fits it fails naming the limit. */
#ifndef RTR_LIMITS_H
#define RTR_LIMITS_H

#include "rtr/rtr.h"

#include <stdbool.h>
#include <stddef.h>

rtr_status rtr_cpu_threads_fit(void);
/* False when an allocation of bytes would take address space that the
 * OpenBLAS buffers the threads have not taken yet still need (rtr_malloc
 * then fails as out of memory instead of leaving OpenBLAS to hang later);
 * true whenever no limit applies or every buffer is taken. */
bool rtr_alloc_leaves_blas_room(size_t bytes);
/* " under the address-space limit (ulimit -v: N MiB)" when one applies,
 * else "": for out-of-memory messages. */
const char *rtr_as_limit_note(void);
/* main's end: exit(rc), or under an address-space limit stdio flushed and
 * _exit(rc). OpenBLAS's own worker threads, started by its constructor
 * before main, can be stuck for good under such a limit retrying a work
 * buffer it does not allow, and exit() runs OpenBLAS's destructor, which
 * joins them: a command that had finished, or failed with its message, then
 * hung (seen with gdb, a CUDA build at 288-300 MiB; tests/test_bad_limits.py).
 * Every file rtr writes is closed by then; with no limit nothing changes
 * (the sanitizers' leak check runs in exit()). */
_Noreturn void rtr_exit(int rc);

#endif
