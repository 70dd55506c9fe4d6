/* Corpus rows for the predictor commands: one split's outcomes and query
 * embeddings gathered from every shard, with the encoder and catalog checks
 * that keep a checkpoint from being applied to embeddings it was not trained
 * on. See pred_data.h. */
#include "predictor/pred_data.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

#define EMB_QUERY "/embedding/query"

void pred_rows_free(pred_rows *r) {
    free(r->emb);
    free(r->correct);
    free(r->tokens);
    free(r->encoder);
    free(r->encoder_hash);
    memset(r, 0, sizeof *r);
}

static bool has_dataset(const char *path, const char *name) {
    return rtr_shard_has(path, "/embedding") && rtr_shard_has(path, name);
}

/* Append shard rows (selected by split) to r, growing the arrays. */
/* Row i is selected: in the split (any when NULL), not in skip_dataset. */
static bool selected(const rtr_shard *sh, int64_t i, const char *split, const char *skip_dataset) {
    return (!split || !strcmp(sh->split[i], split)) && (!skip_dataset || strcmp(sh->dataset[i], skip_dataset));
}

static rtr_status append_rows(pred_rows *r, const rtr_shard *sh, const float *emb, const char *split,
                              const char *skip_dataset) {
    int64_t take = 0;
    for (int64_t i = 0; i < sh->n; i++) take += selected(sh, i, split, skip_dataset);
    if (!take) return RTR_OK;
    size_t K = (size_t)r->K, D = (size_t)r->D, n = (size_t)(r->n + take);
    float *c = rtr_realloc(r->correct, sizeof(float) * n * K), *t = c ? rtr_realloc(r->tokens, sizeof(float) * n * K) : NULL;
    if (c) r->correct = c;
    if (t) r->tokens = t;
    float *e = emb && t ? rtr_realloc(r->emb, sizeof(float) * n * D) : NULL;
    if (e) r->emb = e;
    if (!c || !t || (emb && !e)) return RTR_ERR_NOMEM;
    for (int64_t i = 0; i < sh->n; i++) {
        if (!selected(sh, i, split, skip_dataset)) continue;
        memcpy(r->correct + (size_t)r->n * K, sh->correct + (size_t)i * K, sizeof(float) * K);
        memcpy(r->tokens + (size_t)r->n * K, sh->tokens + (size_t)i * K, sizeof(float) * K);
        if (emb) memcpy(r->emb + (size_t)r->n * D, emb + (size_t)i * D, sizeof(float) * D);
        r->n++;
    }
    return RTR_OK;
}

rtr_status pred_shard_encoder_hash(const char *path, char **hash) {
    *hash = NULL;
    rtr_status s = rtr_shard_check(path);
    if (s) return s;
    if (!has_dataset(path, EMB_QUERY))
        return rtr_fail(RTR_ERR_FORMAT, "%s: no %s dataset: run `rtr encode` on the corpus first", path, EMB_QUERY);
    *hash = rtr_shard_read_attr(path, EMB_QUERY, "encoder_hash");
    if (!*hash) return rtr_fail(RTR_ERR_FORMAT, "%s: %s has no encoder_hash attribute", path, EMB_QUERY);
    return RTR_OK;
}

/* The query embeddings of one shard, checked against the shard's size and
 * the encoder hash of the shards before it. */
static rtr_status shard_embeddings(pred_rows *r, const char *path, int64_t n, float **emb) {
    char *hash;
    rtr_status s = pred_shard_encoder_hash(path, &hash);
    if (!s && r->encoder_hash && strcmp(hash, r->encoder_hash))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: embedded by encoder %s, earlier shards by %s: re-encode the corpus",
                     path, hash, r->encoder_hash);
    if (s) { free(hash); return s; }
    if (!r->encoder_hash) {
        r->encoder_hash = hash;
        r->encoder = rtr_shard_read_attr(path, EMB_QUERY, "encoder");
    } else {
        free(hash);
    }
    int64_t rows, cols;
    s = rtr_shard_read_matrix(path, EMB_QUERY, emb, &rows, &cols);
    if (s) return s;
    if (rows != n || cols < 1 || (r->D && cols != r->D))
        return rtr_fail(RTR_ERR_FORMAT, "%s: %s is %lld x %lld, expected %lld rows%s", path, EMB_QUERY,
                        (long long)rows, (long long)cols, (long long)n, r->D ? " of the first shard's width" : "");
    r->D = (int32_t)cols;
    return RTR_OK;
}

rtr_status pred_rows_load(pred_rows *r, const rtr_corpus *c, const char *split, const char *skip_dataset,
                          bool want_emb) {
    memset(r, 0, sizeof *r);
    r->K = rtr_corpus_catalog(c)->n_pairs;
    rtr_status s = RTR_OK;
    for (int i = 0; i < rtr_corpus_n_shards(c) && !s; i++) {
        const char *path = rtr_corpus_shard_path(c, i);
        rtr_shard sh;
        float *emb = NULL;
        s = rtr_shard_read(path, &sh, NULL);
        if (s) break;
        if (sh.k != r->K) s = rtr_fail(RTR_ERR_FORMAT, "%s: %d pairs, the corpus catalog has %d", path, sh.k, r->K);
        if (!s && want_emb) s = shard_embeddings(r, path, sh.n, &emb);
        if (!s) s = append_rows(r, &sh, emb, split, skip_dataset);
        free(emb);
        rtr_shard_free(&sh);
    }
    if (!s && r->n == 0)
        s = rtr_fail(RTR_ERR_INVALID, "%s: no query has split '%s'", rtr_corpus_dir(c), split ? split : "(any)");
    if (s) pred_rows_free(r);
    return s;
}

rtr_status pred_desc_load(const rtr_corpus *c, int32_t D, float **d_model, float **d_strategy) {
    const rtr_catalog *cat = rtr_corpus_catalog(c);
    const char *path = rtr_corpus_shard_path(c, 0);
    const char *names[2] = {"/embedding/model_desc", "/embedding/strategy_desc"};
    const int64_t want[2] = {cat->n_models, cat->n_strategies};
    float **out[2] = {d_model, d_strategy};
    *d_model = *d_strategy = NULL;
    for (int i = 0; i < 2; i++) {
        int64_t rows, cols;
        if (!has_dataset(path, names[i]))
            return rtr_fail(RTR_ERR_FORMAT, "%s: no %s dataset: run `rtr encode` on the corpus first", path, names[i]);
        rtr_status s = rtr_shard_read_matrix(path, names[i], out[i], &rows, &cols);
        if (!s && (rows != want[i] || cols != D))
            s = rtr_fail(RTR_ERR_FORMAT, "%s: %s is %lld x %lld, expected %lld x %d", path, names[i],
                         (long long)rows, (long long)cols, (long long)want[i], D);
        if (s) {
            free(*d_model), free(*d_strategy);
            *d_model = *d_strategy = NULL;
            return s;
        }
    }
    return RTR_OK;
}

rtr_status pred_check_compatible(const rtr_predictor *p, const rtr_corpus *c, const char *encoder_hash) {
    const rtr_catalog *cat = rtr_corpus_catalog(c);
    if (rtr_catalog_hash(cat) != p->catalog_hash || cat->n_pairs != p->n_pairs)
        return rtr_fail(RTR_ERR_INVALID, "%s: the corpus catalog (%d pairs) is not the catalog the checkpoint "
                        "was trained on (%d pairs)", rtr_corpus_dir(c), cat->n_pairs, p->n_pairs);
    if (p->encoder_hash && encoder_hash && strcmp(p->encoder_hash, encoder_hash))
        return rtr_fail(RTR_ERR_INVALID, "%s: query embeddings come from encoder %s, the checkpoint was trained "
                        "on encoder %s", rtr_corpus_dir(c), encoder_hash, p->encoder_hash);
    return RTR_OK;
}
