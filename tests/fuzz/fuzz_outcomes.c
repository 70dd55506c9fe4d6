/* libFuzzer harness: outcome logs (JSON Lines) through `rtr ingest` with a
 * fixed catalog and shards of 3 queries. An accepted log gives a corpus that
 * opens with as many queries as ingest counted; a refused one leaves nothing
 * under the output name and no temporary behind. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char cat[512], in[512], out[512];
    fuzz_path(cat, "catalog.json");
    fuzz_path(in, "in.jsonl");
    fuzz_path(out, "corpus");
    if (access(cat, F_OK) != 0) fuzz_write(cat, fuzz_catalog_json, strlen(fuzz_catalog_json));
    fuzz_write(in, data, size);
    rtr_ingest_params p = rtr_ingest_default_params();
    p.shard_size = 3;
    const char *inputs[1] = {in};
    rtr_ingest_result res;
    memset(&res, 0, sizeof res);
    rtr_status st = rtr_ingest(&res, cat, inputs, 1, out, &p);
    if (st != RTR_OK) fuzz_refused("log");
    if (st == RTR_OK) {
        rtr_corpus *c = NULL;
        FUZZ_ASSERT(rtr_corpus_open(&c, out) == RTR_OK, "ingested corpus does not open: %s", rtr_last_error());
        FUZZ_ASSERT(rtr_corpus_n_queries(c) == res.n_queries, "%lld queries ingested, %lld in the corpus",
                    (long long)res.n_queries, (long long)rtr_corpus_n_queries(c));
        int64_t sum = 0;
        for (int s = 0; s < rtr_corpus_n_shards(c); s++) sum += rtr_corpus_shard_queries(c, s);
        FUZZ_ASSERT(sum == res.n_queries, "shards hold %lld queries, ingest counted %lld", (long long)sum,
                    (long long)res.n_queries);
        rtr_corpus_close(c);
    } else {
        FUZZ_ASSERT(access(out, F_OK) != 0, "a refused ingest left %s", out);
    }
    FUZZ_ASSERT(!fuzz_has_tmp(fuzz_root()), "ingest left a temporary in %s", fuzz_root());
    fuzz_rmtree(out);
    return 0;
}
