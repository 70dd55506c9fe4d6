/* The training stage (rtr_train_corpus, include/rtr/stages.h): one split's
 * query embeddings and outcomes gathered through the store's row reader
 * (memory-mapped above the budget), the catalog's description embeddings of
 * the same encoding, training on a backend (train.c) and the checkpoint
 * saved (checkpoint.c) with the encoder it was trained on.
 *
 * Under MPI (docs/SCALING.md) every rank reads only its range of rows
 * (the split of src/dist), trains on them data-parallel (train_int.h's
 * train_share) and ends with the same parameters; rank 0 logs the epochs
 * and writes the checkpoint. */
#include "rtr/dist.h"
#include "rtr/stages.h"
#include "predictor/train_int.h"
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

/* This rank's rows of a job over several ranks: the selected rows of its
 * range of the corpus's rows (rtr_part_range: about one rank's share of
 * the rows, whatever the shards), in corpus order, on the heap (rows; empty
 * when it has none), *share where they lie among the job's (the ranks'
 * ranges follow each other in rank order), and *src the reader, whose
 * source names the encoding. */
static rtr_status gather_share(rtr_rows *rows, rtr_row_share *share, rtr_row_reader **src, const rtr_corpus *c,
                               const rtr_row_query *q0) {
    rtr_part part;
    rtr_row_range range;
    rtr_row_query q = *q0;
    rtr_status st = rtr_part_range(&range, &part, c, NULL, 1);
    /* the ids unique across the corpus, as one process's reader checks them:
     * each rank's pass checks its range's, together with the other ranks'
     * (the row reader: a range's pass under MPI), so all refuse alike */
    q.rows = &range;
    q.skip_id_check = false;
    if (!st) st = rtr_row_reader_open(src, c, &q);
    if (st) return st;
    int64_t upper = range.end - range.first, *held = rtr_calloc((size_t)part.count, sizeof *held);
    int *owner = rtr_malloc(sizeof *owner * (size_t)part.count);
    st = held && owner ? RTR_OK : RTR_ERR_NOMEM;
    for (int i = 0; !st && i < part.count; i++) owner[i] = i;
    rows->k = rtr_corpus_catalog(c)->n_pairs;
    rows->dim = rtr_row_reader_source(*src)->dim;
    size_t K = (size_t)rows->k, D = (size_t)rows->dim;
    if (!st) {
        rows->emb = rtr_malloc(sizeof(float) * (size_t)(upper ? upper : 1) * D);
        rows->correct = rtr_malloc(sizeof(float) * (size_t)(upper ? upper : 1) * K);
        rows->tokens = rtr_malloc(sizeof(float) * (size_t)(upper ? upper : 1) * K);
        if (!rows->emb || !rows->correct || !rows->tokens) st = RTR_ERR_NOMEM;
    }
    rtr_rows ch;
    while (!st && !(st = rtr_row_reader_next(*src, &ch, NULL, NULL)) && ch.n) {
        memcpy(rows->emb + (size_t)rows->n * D, ch.emb, sizeof(float) * (size_t)ch.n * D);
        memcpy(rows->correct + (size_t)rows->n * K, ch.correct, sizeof(float) * (size_t)ch.n * K);
        memcpy(rows->tokens + (size_t)rows->n * K, ch.tokens, sizeof(float) * (size_t)ch.n * K);
        rows->n += ch.n;
    }
    /* every part's selected rows, each counted by the rank that read them */
    if (!st) held[part.index] = rows->n, st = rtr_dist_sum_i64(held, (size_t)part.count);
    if (!st) st = rtr_row_share_init(share, held, owner, part.count, part.index);
    if (!st && share->n == 0)
        st = rtr_corpus_no_query(rtr_corpus_dir(c), q0->split, NULL);
    free(held);
    free(owner);
    return st;
}

rtr_status rtr_train_corpus(rtr_backend *b, rtr_predictor *p, rtr_train_summary *s, const char *checkpoint_path,
                            const char *corpus_dir, const rtr_train_corpus_params *prm) {
    memset(p, 0, sizeof *p);
    memset(s, 0, sizeof *s);
    rtr_corpus *c = NULL;
    rtr_rows rows = {0};
    rtr_row_source src = {0};
    rtr_row_share share = {0};
    rtr_row_reader *share_src = NULL;
    bool dist = rtr_dist_size() > 1, lead = rtr_dist_rank() == 0;
    float *dm = NULL, *ds = NULL;
    int32_t dim = 0;
    rtr_status st = rtr_corpus_open(&c, corpus_dir);
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_EMBEDDING | RTR_COL_CORRECT | RTR_COL_TOKENS;
    q.split = prm->split;
    q.skip_dataset = prm->skip_dataset;
    q.encoder = prm->encoder;
    if (!st && dist) {
        st = gather_share(&rows, &share, &share_src, c, &q);
        if (!st) src = *rtr_row_reader_source(share_src); /* the reader's strings: not freed here */
    } else if (!st) {
        st = rtr_rows_gather(&rows, &src, c, &q, prm->memory_budget);
    }
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
        s->n_queries = dist ? share.n : rows.n;
        s->dim = rows.dim;
        s->n_pairs = rows.k;
        s->mapped = rows.emb_mapped != 0;
        snprintf(s->encoder, sizeof s->encoder, "%s", src.encoder ? src.encoder : "");
        if (prm->on_start && lead) prm->on_start(s, prm->user);
        /* a mapped gather lets the trainer release each window's pages (rtr_train_data) */
        rtr_train_data data = {rows.n, rows.dim, rows.k, rows.emb, rows.correct, rows.tokens, rows.emb_mapped != 0};
        rtr_epoch_fn log = lead ? prm->log : NULL;
        st = dist ? rtr_train_share_run_(b, p, &data, &share, log, prm->user)
                  : rtr_predictor_train_on(b, p, &data, log, prm->user);
    }
    /* every rank holds the same parameters; one file, and no rank ends before it is written */
    if (!st && lead) st = rtr_predictor_save(p, checkpoint_path);
    if (!st) st = rtr_dist_barrier();
    if (!st) rtr_predictor_hash_hex(p, s->checkpoint_hash);
    free(dm);
    free(ds);
    rtr_rows_free(&rows);
    if (share_src) rtr_row_reader_close(share_src);
    else rtr_row_source_free(&src);
    rtr_row_share_free(&share);
    rtr_corpus_close(c);
    if (st) rtr_predictor_free(p);
    return st;
}
