/* The encoding stage (rtr_encode_corpus, include/rtr/stages.h): the query
 * texts of each shard, read a batch at a time, through the sentence
 * encoder into embeddings/NAME/shard-NNNNN.h5, and the catalog's
 * descriptions into embeddings/NAME/descriptions.h5. Each file is committed
 * on its own, so a rerun after an interruption skips what is done. Split
 * across parts or MPI ranks (rtr_part_shards), each writes its own shards;
 * part 0 the descriptions. */
#include "rtr/stages.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

/* Texts per encoder call: at least this many, so the progress line moves
 * within a shard, and about 16 batches of 64-token texts (batch_tokens / 4),
 * so a GPU is not left waiting on the host between calls. */
#define ENCODE_STEP 1024

/* Whether shard i's file (i = -1: the descriptions) of the encoding comes
 * from these weights and fits the corpus as it is now. */
static bool file_done(const rtr_corpus *c, int i, const char *name, const char *hash, int dim) {
    rtr_output_info o;
    if (rtr_output_file_info(&o, c, "embeddings", name, i)) return false;
    bool done = !strcmp(o.encoder_hash, hash) && o.dim == dim;
    rtr_output_info_free(&o, 1);
    return done;
}

/* Embed the catalog entries' descriptions (the name when a description is
 * empty) into out [n x D]. */
static rtr_status embed_entries(rtr_encoder *enc, const rtr_catalog_entry *e, int32_t n, float *out) {
    const char **texts = rtr_malloc(sizeof *texts * (size_t)(n ? n : 1));
    if (!texts) return RTR_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) texts[i] = e[i].description && *e[i].description ? e[i].description : e[i].name;
    rtr_status s = rtr_encoder_encode(enc, out, texts, NULL, (size_t)n);
    free(texts);
    return s;
}

static rtr_status encode_descriptions(rtr_encoder *enc, const rtr_corpus *c, const char *name) {
    const rtr_catalog *cat = rtr_corpus_catalog(c);
    int D = rtr_encoder_dim(enc);
    float *dm = rtr_malloc(sizeof(float) * (size_t)cat->n_models * (size_t)D);
    float *ds = rtr_malloc(sizeof(float) * (size_t)cat->n_strategies * (size_t)D);
    rtr_status s = dm && ds ? embed_entries(enc, cat->models, cat->n_models, dm) : RTR_ERR_NOMEM;
    if (!s) s = embed_entries(enc, cat->strategies, cat->n_strategies, ds);
    if (!s) s = rtr_descriptions_write(c, name, rtr_encoder_hash(enc), D, dm, ds);
    free(dm);
    free(ds);
    return s;
}

/* One shard's texts, a step at a time, into its embeddings file. */
static rtr_status encode_shard(rtr_encoder *enc, const rtr_corpus *c, int i, const char *name, rtr_progress *prog,
                               int64_t *done, double *secs) {
    int D = rtr_encoder_dim(enc);
    int64_t step = rtr_encoder_batch_tokens(enc) / 4 > ENCODE_STEP ? rtr_encoder_batch_tokens(enc) / 4 : ENCODE_STEP;
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_TEXT;
    q.shard = i;
    q.chunk_rows = step;
    rtr_row_reader *r = NULL;
    rtr_output_writer *w = NULL;
    float *emb = rtr_malloc(sizeof(float) * (size_t)step * (size_t)D);
    rtr_status s = emb ? rtr_row_reader_open(&r, c, &q) : RTR_ERR_NOMEM;
    if (!s) s = rtr_embedding_writer_open(&w, c, i, name, rtr_encoder_hash(enc), D);
    rtr_rows ch;
    while (!s && !(s = rtr_row_reader_next(r, &ch, NULL, NULL)) && ch.n) {
        double t0 = rtr_now();
        s = rtr_encoder_encode(enc, emb, (const char *const *)ch.text, NULL, (size_t)ch.n);
        *secs += rtr_now() - t0;
        if (s) rtr_fail_prefix(s, "%s: ", rtr_corpus_shard_path(c, i));
        if (!s) s = rtr_output_writer_append(w, ch.n, (const float *const[]){emb});
        *done += ch.n;
        rtr_progress_update(prog, (double)*done);
    }
    if (!s) s = rtr_output_writer_commit(w);
    else rtr_output_writer_abort(w);
    rtr_row_reader_close(r);
    free(emb);
    return s;
}

/* What rtr_part_missing asks: shard i's file is from these weights. */
typedef struct {
    const char *name, *hash;
    int dim;
} done_ctx;

static bool shard_done(const rtr_corpus *c, int i, void *ctx) {
    const done_ctx *d = ctx;
    return file_done(c, i, d->name, d->hash, d->dim);
}

rtr_status rtr_encode_corpus(rtr_encoder *enc, rtr_encode_summary *sum, const char *corpus_dir,
                             const rtr_encode_params *prm) {
    memset(sum, 0, sizeof *sum);
    const char *name = prm->name ? prm->name : rtr_encoder_name(enc);
    if (!rtr_output_name_valid(name))
        return rtr_fail(RTR_ERR_INVALID, "encoding name '%s': use 1..128 letters, digits, '.', '_', '-' (--name)", name);
    snprintf(sum->name, sizeof sum->name, "%s", name);
    rtr_corpus *c = NULL;
    rtr_status s = rtr_corpus_open(&c, corpus_dir);
    if (s) return s;
    /* each shard is encoded alone: the ids are checked unique across the corpus first */
    s = rtr_corpus_check_ids(c);
    const char *hash = rtr_encoder_hash(enc);
    int D = rtr_encoder_dim(enc);
    rtr_part part = {0, 1};
    bool *mine = NULL;
    if (!s) s = rtr_part_shards(&mine, &part, c, &prm->part);
    /* the descriptions first: a set with all its shards is then usable at once */
    if (!s && part.index == 0 && (prm->force || !file_done(c, -1, name, hash, D))) s = encode_descriptions(enc, c, name);
    int64_t total = 0;
    for (int i = 0; mine && i < rtr_corpus_n_shards(c); i++) total += mine[i] ? rtr_corpus_shard_queries(c, i) : 0;
    rtr_progress prog;
    rtr_progress_init(&prog, "encode", (double)total);
    int64_t done = 0;
    for (int i = 0; !s && i < rtr_corpus_n_shards(c); i++) {
        if (!mine[i]) continue;
        sum->n_shards++;
        if (!prm->force && file_done(c, i, name, hash, D)) {
            sum->shards_skipped++;
            done += rtr_corpus_shard_queries(c, i);
            rtr_progress_update(&prog, (double)done);
            continue;
        }
        int64_t before = done;
        s = encode_shard(enc, c, i, name, &prog, &done, &sum->encode_seconds);
        sum->queries_encoded += done - before;
    }
    rtr_progress_end(&prog);
    free(mine);
    /* the job's totals; then, once every rank is done, what the set still lacks */
    double t[4] = {sum->n_shards, sum->shards_skipped, (double)sum->queries_encoded, sum->encode_seconds};
    if (!s) s = rtr_dist_sum_f64(t, 4);
    if (!s) {
        sum->n_shards = (int)t[0], sum->shards_skipped = (int)t[1];
        sum->queries_encoded = (int64_t)t[2], sum->encode_seconds = t[3];
    }
    if (!s && part.count > 1 && rtr_dist_rank() == 0) {
        done_ctx d = {name, hash, D};
        char what[160];
        snprintf(what, sizeof what, "embeddings/%s", name);
        sum->shards_missing = rtr_part_missing(c, shard_done, &d, what);
        if (!file_done(c, -1, name, hash, D)) {
            rtr_note("%s: descriptions.h5 still missing: run part 0", what);
            sum->shards_missing += !sum->shards_missing; /* the set is not complete without it */
        }
    }
    rtr_corpus_close(c);
    return s;
}
