/* backend_suite — compares every op of a backend under test with the
 * reference backend (rtr_backend_ref_open: the plain-C references) on seeded random inputs in [-1, 1] at
 * awkward shapes (1, odd, not a multiple of any block size), per element
 * |dut − ref| <= atol + rtol·|ref|, NaN always failing, with guard bytes
 * around every output that must come back untouched. Shared by the emulated
 * kernel test and the GPU test. */
#ifndef RTR_BACKEND_SUITE_H
#define RTR_BACKEND_SUITE_H

#include "rtr/backend.h"
#include "rtr/ops.h"
#include "rtr/predictor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Run every op both backends support; prints one line per op and case.
 * Returns the number of failed checks (0: all agree). */
int backend_suite_run(rtr_backend *dut, rtr_backend *ref);

/* The emulated CUDA backend (kernels/backend_cuda.cu built on the emulator). */
rtr_status rtr_backend_emu_open(rtr_backend *b);

#ifdef __cplusplus
}
#endif
#endif
