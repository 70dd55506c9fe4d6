/* libFuzzer harness: predictor checkpoints (safetensors header, metadata JSON:
 * configuration, catalog, encoder, token scale, validation hashes; then the
 * tensors) through rtr_predictor_load, what `rtr score`, `route --checkpoint`
 * and `eval-predictor` read. Seeds are checkpoints `rtr train` wrote. An
 * accepted checkpoint must be consistent (pairs inside the catalog it
 * names) and score a query to a probability and a non-negative token count. */
#include "fuzz_common.h"
#include "rtr/predictor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    fuzz_path(path, "ck.safetensors");
    fuzz_write(path, data, size);
    rtr_predictor p;
    memset(&p, 0, sizeof p);
    rtr_status st = rtr_predictor_load(&p, path);
    if (st != RTR_OK) fuzz_refused("checkpoint");
    if (st == RTR_OK) {
        FUZZ_ASSERT(p.D > 0 && p.H > 0 && p.U >= 0 && p.n_pairs > 0, "D %d H %d U %d K %d", p.D, p.H, p.U, p.n_pairs);
        for (int32_t k = 0; k < p.n_pairs; k++)
            FUZZ_ASSERT(p.pair_model[k] >= 0 && p.pair_model[k] < p.n_models && p.pair_strategy[k] >= 0 &&
                            p.pair_strategy[k] < p.n_strategies,
                        "pair %d -> (%d, %d) outside %d x %d", k, p.pair_model[k], p.pair_strategy[k], p.n_models,
                        p.n_strategies);
        char hex[17];
        rtr_predictor_hash_hex(&p, hex);
        if ((int64_t)p.D * p.H < (1 << 22) && (int64_t)p.n_pairs * p.H < (1 << 22)) {
            float *emb = malloc(sizeof(float) * (size_t)p.D), *pc = malloc(sizeof(float) * (size_t)p.n_pairs),
                  *tok = malloc(sizeof(float) * (size_t)p.n_pairs);
            fuzz_unit_rows(emb, 1, p.D, 3);
            if (rtr_predictor_score(pc, tok, &p, emb, 1) == RTR_OK)
                for (int32_t k = 0; k < p.n_pairs; k++)
                    FUZZ_ASSERT(pc[k] >= 0 && pc[k] <= 1 && tok[k] >= 0 && isfinite(tok[k]),
                                "pair %d: p %g tokens %g from an accepted checkpoint", k, pc[k], tok[k]);
            free(emb), free(pc), free(tok);
        }
    }
    rtr_predictor_free(&p);
    return 0;
}
