/* libFuzzer harness: the catalog JSON parser (rtr_catalog_parse_json, what
 * `rtr ingest --catalog` reads). An accepted catalog must be consistent (pair
 * indices in range, each pair findable by its names) and survive its own
 * canonical JSON unchanged (same hash). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    rtr_catalog cat;
    memset(&cat, 0, sizeof cat);
    rtr_status st = rtr_catalog_parse_json(&cat, text, "fuzz.json");
    if (st != RTR_OK) fuzz_refused("catalog");
    if (st == RTR_OK) {
        FUZZ_ASSERT(cat.n_models > 0 && cat.n_strategies > 0 && cat.n_pairs > 0, "empty catalog accepted");
        for (int32_t k = 0; k < cat.n_pairs; k++) {
            int32_t m = cat.pair_model[k], s = cat.pair_strategy[k];
            FUZZ_ASSERT(m >= 0 && m < cat.n_models && s >= 0 && s < cat.n_strategies, "pair %d out of range", k);
            FUZZ_ASSERT(rtr_catalog_find_pair(&cat, cat.models[m].name, cat.strategies[s].name) == k,
                        "pair %d not found by its names", k);
            char *name = rtr_catalog_pair_name(&cat, k);
            FUZZ_ASSERT(name != NULL, "pair name");
            free(name);
        }
        char *json = rtr_catalog_to_json(&cat);
        FUZZ_ASSERT(json != NULL, "to_json");
        rtr_catalog again;
        memset(&again, 0, sizeof again);
        FUZZ_ASSERT(rtr_catalog_parse_json(&again, json, "canonical") == RTR_OK, "canonical form refused: %s",
                    rtr_last_error());
        FUZZ_ASSERT(rtr_catalog_hash(&again) == rtr_catalog_hash(&cat), "canonical form has another hash");
        rtr_catalog_free(&again);
        free(json);
    }
    rtr_catalog_free(&cat);
    free(text);
    return 0;
}
