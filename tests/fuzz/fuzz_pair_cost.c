/* libFuzzer harness: the user cost file (`--cost user --pair-cost FILE`,
 * rtr_cost_user_parse) against a fixed 2 x 2 catalog. An accepted file gives
 * every pair a finite cost >= 0. */
#include "fuzz_common.h"
#include "rtr/route.h"

static rtr_catalog cat;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!cat.n_pairs && rtr_catalog_parse_json(&cat, fuzz_catalog_json, "catalog") != RTR_OK) abort();
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    double cost[4] = {NAN, NAN, NAN, NAN};
    rtr_status st = rtr_cost_user_parse(cost, text, "fuzz.json", &cat);
    if (st != RTR_OK) fuzz_refused("cost file");
    if (st == RTR_OK)
        for (int k = 0; k < cat.n_pairs; k++)
            FUZZ_ASSERT(isfinite(cost[k]) && cost[k] >= 0, "pair %d: cost %g accepted", k, cost[k]);
    free(text);
    return 0;
}
