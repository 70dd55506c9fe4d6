/* libFuzzer harness: one shard of a complete corpus (ingested, embedded,
 * trained and scored by rtr itself) replaced by the fuzz input — seeds are
 * the real writer's shards, so mutations are truncations, bit flips and
 * splices of real HDF5 — then read by the store's readers directly and by
 * every command that reads a corpus (fuzz_every_reader). */
#include "fuzz_common.h"

static const char *pristine;
static char ck[512];

/* The store's readers on the damaged file itself. */
static void store_readers(const char *path) {
    int64_t n = 0, rows = 0, cols = 0;
    (void)rtr_shard_check(path);
    (void)rtr_shard_count(path, &n);
    rtr_shard sh;
    rtr_catalog cat;
    memset(&sh, 0, sizeof sh);
    memset(&cat, 0, sizeof cat);
    if (rtr_shard_read(path, &sh, &cat) == RTR_OK) {
        FUZZ_ASSERT(sh.n >= 0 && sh.k == cat.n_pairs, "shard read: %lld x %d with %d pairs", (long long)sh.n, sh.k,
                    cat.n_pairs);
        for (int64_t i = 0; i < sh.n; i++)
            FUZZ_ASSERT(sh.id[i] && sh.text[i] && sh.dataset[i] && sh.split[i], "row %lld has a NULL string", (long long)i);
        rtr_shard_free(&sh);
        rtr_catalog_free(&cat);
    }
    static const char *names[] = {"/embedding/query", "/embedding/model_desc", "/routing/p_correct", "/routing/tokens",
                                  "/outcomes/correct"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        float *m = NULL;
        if (rtr_shard_read_matrix(path, names[i], &m, &rows, &cols) == RTR_OK)
            FUZZ_ASSERT(rows >= 0 && cols >= 0 && (m || !rows || !cols), "%s: %lld x %lld", names[i], (long long)rows,
                        (long long)cols);
        free(m);
        (void)rtr_shard_has(path, names[i]);
        free(rtr_shard_read_attr(path, names[i], "encoder_hash"));
    }
    rtr_matrix_reader *r = NULL;
    if (rtr_matrix_reader_open(&r, path, "/embedding/query", &rows, &cols) == RTR_OK && rows > 0 && cols > 0 &&
        rows * cols < (1 << 20)) {
        float *buf = malloc(sizeof(float) * (size_t)(rows * cols));
        (void)rtr_matrix_reader_read(r, 0, rows, buf);
        free(buf);
    }
    rtr_matrix_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!pristine) {
        pristine = fuzz_make_corpus("pristine");
        fuzz_path(ck, "pristine.safetensors");
    }
    char dir[512], from[512], to[512];
    fuzz_path(dir, "work");
    fuzz_rmtree(dir);
    mkdir(dir, 0755);
    snprintf(from, sizeof from, "%s/manifest.json", pristine);
    snprintf(to, sizeof to, "%s/manifest.json", dir);
    fuzz_copy(from, to);
    for (int s = 1; s < 3; s++) {
        snprintf(from, sizeof from, "%s/shard-%05d.h5", pristine, s);
        snprintf(to, sizeof to, "%s/shard-%05d.h5", dir, s);
        fuzz_copy(from, to);
    }
    snprintf(to, sizeof to, "%s/shard-00000.h5", dir);
    fuzz_write(to, data, size);
    store_readers(to);
    fuzz_every_reader(dir, ck);
    return 0;
}
