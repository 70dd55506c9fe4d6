/* libFuzzer harness: one shard of a complete corpus (ingested, embedded,
 * trained and scored by rtr itself; schema 2, its embeddings and routing
 * tables beside the shards) replaced by the fuzz input — seeds are the real
 * writer's shards, so mutations are truncations, bit flips and splices of
 * real HDF5 — then read by the store's row reader directly (every column,
 * the damaged shard alone and the whole corpus gathered) and by every
 * command that reads a corpus (fuzz_every_reader). */
#include "fuzz_common.h"

static const char *pristine;
static char ck[512];

/* Every column of the rows the reader returns is there and well formed. */
static void check_rows(const rtr_rows *r, unsigned cols) {
    FUZZ_ASSERT(r->n >= 0 && r->k == 4, "rows: %lld x %d pairs", (long long)r->n, r->k);
    char **strs[4] = {r->id, r->text, r->dataset, r->split};
    for (int c = 0; c < 4; c++)
        for (int64_t i = 0; strs[c] && i < r->n; i++) FUZZ_ASSERT(strs[c][i], "row %lld: string column %d NULL", (long long)i, c);
    for (int64_t i = 0; r->correct && i < r->n * r->k; i++)
        FUZZ_ASSERT(isnan(r->correct[i]) || (r->correct[i] >= 0 && r->correct[i] <= 1), "correct %g", (double)r->correct[i]);
    for (int64_t i = 0; r->p_correct && i < r->n * r->k; i++)
        FUZZ_ASSERT(r->p_correct[i] >= 0 && r->p_correct[i] <= 1, "p_correct %g", (double)r->p_correct[i]);
    for (int64_t i = 0; r->emb && i < r->n * r->dim; i++) FUZZ_ASSERT(isfinite(r->emb[i]), "embedding %g", (double)r->emb[i]);
    FUZZ_ASSERT(!(cols & RTR_COL_EMBEDDING) || !r->n || (r->emb && r->dim == FUZZ_DIM), "embeddings %d wide", r->dim);
}

/* The store's row reader on the damaged corpus: shard 0 alone, then all. */
static void store_readers(const char *dir) {
    rtr_corpus *c = NULL;
    if (rtr_corpus_open(&c, dir) != RTR_OK) {
        fuzz_refused("corpus open");
        return;
    }
    const unsigned all = RTR_COL_ID | RTR_COL_TEXT | RTR_COL_DATASET | RTR_COL_SPLIT | RTR_COL_CORRECT | RTR_COL_TOKENS |
                         RTR_COL_COST | RTR_COL_EMBEDDING | RTR_COL_P_CORRECT | RTR_COL_P_TOKENS;
    rtr_row_query q = rtr_row_query_default();
    q.columns = all;
    q.shard = 0;
    q.chunk_rows = 2; /* several chunks per shard */
    rtr_row_reader *r = NULL;
    if (rtr_row_reader_open(&r, c, &q) == RTR_OK) {
        rtr_rows ch;
        int64_t n = 0;
        while (rtr_row_reader_next(r, &ch, NULL, NULL) == RTR_OK && ch.n) {
            check_rows(&ch, all);
            n += ch.n;
        }
        FUZZ_ASSERT(n <= rtr_corpus_shard_queries(c, 0), "%lld rows read of a shard of %lld", (long long)n,
                    (long long)rtr_corpus_shard_queries(c, 0));
    } else {
        fuzz_refused("row reader");
    }
    rtr_row_reader_close(r);
    q.shard = -1;
    q.split = "train";
    rtr_rows got;
    if (rtr_rows_gather(&got, NULL, c, &q, 0) == RTR_OK) {
        check_rows(&got, all);
        rtr_rows_free(&got);
    } else {
        fuzz_refused("gather");
    }
    rtr_corpus_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!pristine) {
        pristine = fuzz_make_corpus("pristine");
        fuzz_path(ck, "pristine.safetensors");
    }
    char dir[512], to[600];
    fuzz_path(dir, "work");
    fuzz_rmtree(dir);
    fuzz_copy_tree(pristine, dir); /* the manifest, shards 1 and 2, embeddings/ and tables/ */
    snprintf(to, sizeof to, "%s/shard-00000.h5", dir);
    fuzz_write(to, data, size);
    store_readers(dir);
    fuzz_every_reader(dir, ck);
    return 0;
}
