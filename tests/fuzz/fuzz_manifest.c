/* libFuzzer harness: manifest.json of a complete corpus (ingested, embedded,
 * trained and scored by rtr itself; schema 2, its embeddings and routing
 * tables beside the shards) replaced by the fuzz input, then the
 * corpus opened through every reader (fuzz_every_reader: info, train,
 * eval-predictor, score, route, sweep, eval). */
#include "fuzz_common.h"

static const char *pristine;
static char ck[512];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!pristine) {
        pristine = fuzz_make_corpus("pristine");
        fuzz_path(ck, "pristine.safetensors");
    }
    char dir[512], to[600];
    fuzz_path(dir, "work");
    fuzz_rmtree(dir);
    fuzz_copy_tree(pristine, dir); /* the shards, embeddings/ and tables/ */
    snprintf(to, sizeof to, "%s/manifest.json", dir);
    fuzz_write(to, data, size);
    fuzz_every_reader(dir, ck);
    return 0;
}
