/* libFuzzer harness: a model folder's config.json (architecture, sizes,
 * layer_norm_eps, buckets...) through rtr_encoder_load, what `rtr encode`,
 * `embed` and online `route` read, against a tiny folder whose weights fit
 * both a BERT and an MPNet config (fuzz_model.h). An accepted folder must
 * embed texts into finite unit-length rows. */
#include "fuzz_model.h"
#include "rtr/encoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char dir[512], cfg[600];
    fuzz_path(dir, "model");
    if (access(dir, F_OK) != 0) {
        mkdir(dir, 0755);
        fuzz_write_vocab(dir);
        fuzz_write_weights(dir);
    }
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    fuzz_write(cfg, data, size);
    rtr_encoder_params prm = rtr_encoder_default_params();
    prm.device = "cpu";
    rtr_encoder *enc = NULL;
    rtr_status st = rtr_encoder_load(&enc, dir, &prm);
    if (st != RTR_OK) fuzz_refused("config.json");
    if (st == RTR_OK) {
        const char *texts[2] = {"what the cafe", "unable, a b!"};
        size_t lens[2] = {strlen(texts[0]), strlen(texts[1])};
        int d = rtr_encoder_dim(enc);
        FUZZ_ASSERT(d == FM_C, "dim %d", d);
        float out[2 * FM_C];
        if (rtr_encoder_encode(enc, out, texts, lens, 2) == RTR_OK)
            for (int r = 0; r < 2; r++) {
                double s = 0;
                for (int c = 0; c < d; c++) s += (double)out[r * d + c] * out[r * d + c];
                FUZZ_ASSERT(fabs(s - 1) < 1e-3, "an accepted config embeds text %d to a row of norm² %g", r, s);
            }
        rtr_encoder_free(enc);
    }
    return 0;
}
