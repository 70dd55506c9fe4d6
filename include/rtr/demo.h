/* The embedded demo corpus generator (docs/DEMO.md states its latent model). */
#ifndef RTR_DEMO_H
#define RTR_DEMO_H

#include "rtr/rtr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write a catalog (4 models x 4 strategies) and n_queries JSONL lines of
 * arithmetic word problems with outcomes for all 16 pairs. Deterministic for
 * a given seed; both files are written through temporary names. */
RTR_API rtr_status rtr_demo_generate(const char *catalog_path, const char *outcomes_path, int64_t n_queries, uint64_t seed,
                             double test_fraction);

#ifdef __cplusplus
}
#endif
#endif
