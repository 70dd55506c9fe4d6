/* The training stage (rtr_train_corpus, include/rtr/stages.h): one split's
 * query embeddings and outcomes gathered through the store's row reader
 * (memory-mapped above the budget), the catalog's description embeddings of
 * the same encoding, training on a backend (train.c) and the checkpoint
 * saved (checkpoint.c) with the encoder it was trained on. */
#include "rtr/stages.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

rtr_train_corpus_params rtr_train_corpus_default_params(void) {
    rtr_train_corpus_params p = {0};
    p.train = rtr_train_default_params();
    p.split = "train";
    p.memory_budget = (size_t)4 << 30;
    return p;
}

rtr_status rtr_train_corpus(rtr_backend *b, rtr_predictor *p, rtr_train_summary *s, const char *checkpoint_path,
                            const char *corpus_dir, const rtr_train_corpus_params *prm) {
    memset(p, 0, sizeof *p);
    memset(s, 0, sizeof *s);
    rtr_corpus *c = NULL;
    rtr_rows rows = {0};
    rtr_row_source src = {0};
    float *dm = NULL, *ds = NULL;
    int32_t dim = 0;
    rtr_status st = rtr_corpus_open(&c, corpus_dir);
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_EMBEDDING | RTR_COL_CORRECT | RTR_COL_TOKENS;
    q.split = prm->split;
    q.skip_dataset = prm->skip_dataset;
    q.encoder = prm->encoder;
    if (!st) st = rtr_rows_gather(&rows, &src, c, &q, prm->memory_budget);
    if (!st) st = rtr_descriptions_read(&dm, &ds, &dim, c, src.encoding);
    if (!st && dim != rows.dim)
        st = rtr_fail(RTR_ERR_FORMAT, "%s: description embeddings are %d-d, query embeddings %d-d", corpus_dir, dim, rows.dim);
    if (!st) st = rtr_predictor_init(p, &prm->train, rtr_corpus_catalog(c), rows.dim, dm, ds);
    if (!st) {
        p->encoder = src.encoder ? rtr_strdup(src.encoder) : NULL;
        p->encoder_hash = rtr_strdup(src.encoder_hash);
        p->train_split = rtr_strdup(prm->split);
        p->train_skip_dataset = prm->skip_dataset ? rtr_strdup(prm->skip_dataset) : NULL;
        if (!p->encoder_hash || !p->train_split) st = RTR_ERR_NOMEM;
    }
    if (!st) {
        s->n_queries = rows.n;
        s->dim = rows.dim;
        s->n_pairs = rows.k;
        s->mapped = rows.emb_mapped != 0;
        snprintf(s->encoder, sizeof s->encoder, "%s", src.encoder ? src.encoder : "");
        if (prm->on_start) prm->on_start(s, prm->user);
        /* a mapped gather lets the trainer release each window's pages (rtr_train_data) */
        rtr_train_data data = {rows.n, rows.dim, rows.k, rows.emb, rows.correct, rows.tokens, rows.emb_mapped != 0};
        st = rtr_predictor_train_on(b, p, &data, prm->log, prm->user);
    }
    if (!st) st = rtr_predictor_save(p, checkpoint_path);
    if (!st) rtr_predictor_hash_hex(p, s->checkpoint_hash);
    free(dm);
    free(ds);
    rtr_rows_free(&rows);
    rtr_row_source_free(&src);
    rtr_corpus_close(c);
    if (st) rtr_predictor_free(p);
    return st;
}
