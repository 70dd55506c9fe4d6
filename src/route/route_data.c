/* Corpus loading for routing (route_data.h): one pass over the shards,
 * keeping the queries of the requested split, then the cost model, the λ
 * scale and the exclusions applied in memory. */
#include "route/route_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Input tokens of a query for USD costs: the text's UTF-8 bytes / 4, the
 * usual rule of thumb for BPE tokenizers on English (docs/ROUTING.md). */
static float input_tokens(const char *text) { return text ? (float)strlen(text) / 4.0f : 0.0f; }

static rtr_status catalog_copy(rtr_catalog *dst, const rtr_catalog *src) {
    char *json = rtr_catalog_to_json(src);
    if (!json) return rtr_fail(RTR_ERR_NOMEM, "catalog: out of memory");
    rtr_status st = rtr_catalog_parse_json(dst, json, "corpus catalog");
    free(json);
    return st;
}

/* Checkpoint hash of a shard's tables: on the p_correct dataset, or on the
 * /routing group; "" when neither carries one. Caller frees. */
static char *table_hash(const char *path) {
    char *h = rtr_shard_read_attr(path, "/routing/p_correct", "checkpoint_hash");
    if (!h) h = rtr_shard_read_attr(path, "/routing", "checkpoint_hash");
    return h ? h : rtr_strdup("");
}

/* Per-load scratch: realised outcomes in both units and input tokens, until
 * the cost model picks one. */
typedef struct {
    float *tin, *true_tokens, *true_usd;
    float *pred_usd; /* /routing/cost rows when the shards carry it (USD model) */
    int shards_with_usd, shards;
    int64_t cap;
} load_scratch;

/* Routing tables of a shard, checked against its size and the checkpoint;
 * *usd receives /routing/cost (predicted USD) when asked for and present. */
static rtr_status read_tables(route_data *d, const char *path, const route_load_params *prm, int64_t n,
                              float **p, float **tok, float **usd) {
    int64_t r1 = 0, c1 = 0, r2 = 0, c2 = 0;
    if (usd && rtr_shard_has(path, "/routing/cost")) {
        rtr_status st = rtr_shard_read_matrix(path, "/routing/cost", usd, &r1, &c1);
        if (st) return st;
        if (r1 != n || c1 != d->k)
            return rtr_fail(RTR_ERR_FORMAT, "%s: /routing/cost is %lldx%lld, expected %lldx%d", path, (long long)r1,
                            (long long)c1, (long long)n, (int)d->k);
        for (size_t i = 0; i < (size_t)n * (size_t)d->k; i++)
            if (!((*usd)[i] >= 0) || isinf((*usd)[i]))
                return rtr_fail(RTR_ERR_NUMERIC, "%s: /routing/cost row %zu pair %zu: %g is not a cost", path,
                                i / (size_t)d->k, i % (size_t)d->k, (double)(*usd)[i]);
    }
    if (!rtr_shard_has(path, "/routing/p_correct") || !rtr_shard_has(path, "/routing/tokens"))
        return rtr_fail(RTR_ERR_FORMAT, "%s: no routing tables (/routing/p_correct, /routing/tokens): run `rtr score` first", path);
    rtr_status st = rtr_shard_read_matrix(path, "/routing/p_correct", p, &r1, &c1);
    if (!st) st = rtr_shard_read_matrix(path, "/routing/tokens", tok, &r2, &c2);
    if (!st && (r1 != n || r2 != n || c1 != d->k || c2 != d->k))
        return rtr_fail(RTR_ERR_FORMAT, "%s: routing tables are %lldx%lld and %lldx%lld, expected %lldx%d", path,
                        (long long)r1, (long long)c1, (long long)r2, (long long)c2, (long long)n, (int)d->k);
    for (size_t i = 0; !st && i < (size_t)n * (size_t)d->k; i++)
        if (isnan((*p)[i]) || (*p)[i] < 0 || (*p)[i] > 1 || isnan((*tok)[i]) || (*tok)[i] < 0)
            return rtr_fail(RTR_ERR_NUMERIC, "%s: /routing row %zu pair %zu: p_correct %g / tokens %g out of range",
                            path, i / (size_t)d->k, i % (size_t)d->k, (double)(*p)[i], (double)(*tok)[i]);
    char *hash = st ? NULL : table_hash(path);
    if (!st && !hash) st = RTR_ERR_NOMEM;
    if (!st && prm->o.checkpoint_hash && strcmp(hash, prm->o.checkpoint_hash))
        st = rtr_fail(RTR_ERR_INVALID, "%s: routing tables were scored by checkpoint '%s', not '%s' (--checkpoint-hash)",
                      path, hash, prm->o.checkpoint_hash);
    if (!st && d->checkpoint_hash && strcmp(hash, d->checkpoint_hash))
        st = rtr_fail(RTR_ERR_INVALID, "%s: routing tables were scored by checkpoint '%s', earlier shards by '%s'",
                      path, hash, d->checkpoint_hash);
    if (!st && !d->checkpoint_hash) { d->checkpoint_hash = hash; hash = NULL; }
    free(hash);
    return st;
}

/* Query embeddings of a shard; one encoder and one width across shards. */
/* want: the encoder hash the caller asks for (NULL: any). */
static rtr_status read_embeddings(route_data *d, const char *path, int64_t n, int64_t cap, const char *want, float **emb) {
    int64_t rows = 0, cols = 0;
    rtr_status st = rtr_shard_read_matrix(path, "/embedding/query", emb, &rows, &cols);
    if (st) return st;
    if (rows != n) return rtr_fail(RTR_ERR_FORMAT, "%s: /embedding/query has %lld rows for %lld queries", path, (long long)rows, (long long)n);
    char *hash = rtr_shard_read_attr(path, "/embedding/query", "encoder_hash");
    if (!hash && !(hash = rtr_strdup(""))) return RTR_ERR_NOMEM;
    if (want && strcmp(hash, want)) {
        st = rtr_fail(RTR_ERR_INVALID, "%s: query embeddings of encoder '%s', not '%s'", path, hash, want);
        free(hash);
        return st;
    }
    if (d->encoder_hash && (strcmp(hash, d->encoder_hash) || cols != d->emb_dim)) {
        st = rtr_fail(RTR_ERR_FORMAT, "%s: query embeddings of encoder '%s' (%lld dims), earlier shards '%s' (%d dims)",
                      path, hash, (long long)cols, d->encoder_hash, (int)d->emb_dim);
        free(hash);
        return st;
    }
    if (!d->encoder_hash) {
        d->encoder_hash = hash;
        d->emb_dim = (int32_t)cols;
        if (!(d->emb = rtr_malloc((size_t)(cap ? cap : 1) * (size_t)cols * sizeof(float)))) return RTR_ERR_NOMEM;
    } else {
        free(hash);
    }
    return RTR_OK;
}

/* Append the rows of one shard that belong to the split. */
static rtr_status load_shard(route_data *d, const char *path, const route_load_params *prm, load_scratch *ls) {
    rtr_shard sh = {0};
    float *p = NULL, *tok = NULL, *emb = NULL, *usd = NULL;
    rtr_status st = rtr_shard_read(path, &sh, NULL);
    if (!st && sh.k != d->k)
        st = rtr_fail(RTR_ERR_FORMAT, "%s: %d pairs, the corpus catalog has %d", path, (int)sh.k, (int)d->k);
    if (!st && !prm->no_tables) st = read_tables(d, path, prm, sh.n, &p, &tok, ls->pred_usd ? &usd : NULL);
    ls->shards++;
    ls->shards_with_usd += usd != NULL;
    if (!st && prm->embeddings) st = read_embeddings(d, path, sh.n, ls->cap, prm->encoder_hash, &emb);
    size_t k = (size_t)d->k, row = k * sizeof(float);
    for (int64_t i = 0; !st && i < sh.n; i++) {
        if (prm->o.split && *prm->o.split && strcmp(sh.split[i], prm->o.split)) continue;
        if (prm->o.dataset && strcmp(sh.dataset[i], prm->o.dataset)) continue;
        if (prm->o.skip_dataset && !strcmp(sh.dataset[i], prm->o.skip_dataset)) continue;
        size_t src = (size_t)i * k, dst = (size_t)d->n * k;
        if (p) {
            memcpy(d->p + dst, p + src, row);
            memcpy(d->tokens + dst, tok + src, row);
        }
        if (usd) memcpy(ls->pred_usd + dst, usd + src, row);
        if (emb) memcpy(d->emb + (size_t)d->n * (size_t)d->emb_dim, emb + (size_t)i * (size_t)d->emb_dim, (size_t)d->emb_dim * sizeof(float));
        memcpy(d->true_correct + dst, sh.correct + src, row);
        memcpy(ls->true_tokens + dst, sh.tokens + src, row);
        memcpy(ls->true_usd + dst, sh.cost + src, row);
        ls->tin[d->n] = input_tokens(sh.text[i]);
        /* take the strings over from the shard */
        d->id[d->n] = sh.id[i];
        d->dataset[d->n] = sh.dataset[i];
        d->split[d->n] = sh.split[i];
        sh.id[i] = sh.dataset[i] = sh.split[i] = NULL;
        d->n++;
    }
    rtr_shard_free(&sh);
    free(p);
    free(tok);
    free(emb);
    free(usd);
    return st;
}

/* Per-pair user costs from --pair-cost: *uc [k] (caller frees). */
static rtr_status user_costs(const rtr_catalog *cat, const route_load_params *prm, double **uc) {
    *uc = NULL;
    if (!prm->o.pair_cost_path) return rtr_fail(RTR_ERR_INVALID, "cost model 'user' needs --pair-cost FILE.json");
    char *json = NULL;
    size_t len;
    if (!(*uc = rtr_malloc((size_t)cat->n_pairs * sizeof **uc))) return RTR_ERR_NOMEM;
    rtr_status st = rtr_read_file(prm->o.pair_cost_path, &json, &len);
    if (!st) st = rtr_cost_user_parse(json, prm->o.pair_cost_path, cat, *uc);
    free(json);
    return st;
}

/* d->cost from the predictions: tokens; USD from pred_usd (the scorer's
 * /routing/cost) when given, else predicted tokens at the catalog's prices
 * with input tokens tin [n]; or the user's per-pair costs. */
static rtr_status predicted_cost(route_data *d, const route_load_params *prm, const float *tin, const float *pred_usd) {
    size_t nk = (size_t)d->n * (size_t)d->k;
    if (prm->o.cost_model == RTR_COST_TOKENS) { memcpy(d->cost, d->tokens, nk * sizeof(float)); return RTR_OK; }
    if (prm->o.cost_model == RTR_COST_USD) {
        if (pred_usd) { memcpy(d->cost, pred_usd, nk * sizeof(float)); return RTR_OK; }
        return rtr_cost_usd(d->cost, d->tokens, tin, &d->cat, d->n);
    }
    double *uc;
    rtr_status st = user_costs(&d->cat, prm, &uc);
    for (size_t i = 0; !st && i < nk; i++) d->cost[i] = (float)uc[i % (size_t)d->k];
    free(uc);
    return st;
}

/* d->true_cost: realised outcomes in the cost model's unit. */
static rtr_status realised_cost(route_data *d, const route_load_params *prm, const load_scratch *ls) {
    size_t nk = (size_t)d->n * (size_t)d->k;
    if (prm->o.cost_model != RTR_COST_USER) {
        memcpy(d->true_cost, prm->o.cost_model == RTR_COST_USD ? ls->true_usd : ls->true_tokens, nk * sizeof(float));
        return RTR_OK;
    }
    double *uc;
    rtr_status st = user_costs(&d->cat, prm, &uc);
    for (size_t i = 0; !st && i < nk; i++) d->true_cost[i] = isnan(d->true_correct[i]) ? NAN : (float)uc[i % (size_t)d->k];
    free(uc);
    return st;
}

/* Exclusions and the λ scale of the predicted costs. */
static rtr_status finish_tables(route_data *d, const route_load_params *prm) {
    size_t nk = (size_t)d->n * (size_t)d->k;
    bool *excl = rtr_calloc((size_t)d->k, sizeof *excl);
    if (!excl) return RTR_ERR_NOMEM;
    rtr_status st = prm->o.exclude ? rtr_route_parse_exclude(&d->cat, prm->o.exclude, excl) : RTR_OK;
    if (!st) rtr_route_exclude(d->p, d->tokens, d->n, d->k, excl, prm->o.max_tokens);
    free(excl);
    for (int64_t i = 0; !st && i < d->n; i++) {
        bool any = false;
        for (int32_t j = 0; j < d->k; j++) any |= !isnan(d->p[i * d->k + j]);
        if (!any) st = rtr_fail(RTR_ERR_INVALID, "query '%s': every pair is excluded (--exclude / --max-tokens)", d->id[i]);
    }
    /* The scale ignores exclusions, so excluding a pair does not change what λ means. */
    d->cost_scale = prm->o.cost_scale;
    if (!st && !(prm->o.cost_scale > 0)) st = rtr_route_cost_scale(d->cost, d->n, d->k, &d->cost_scale);
    for (size_t i = 0; !st && i < nk; i++) d->c[i] = (float)(d->cost[i] / d->cost_scale);
    return st;
}

rtr_status route_data_load(route_data *d, const char *corpus_dir, const route_load_params *prm) {
    memset(d, 0, sizeof *d);
    /* Schema version 1 keeps one unnamed table per corpus. */
    if (prm->o.table && !prm->no_tables)
        return rtr_fail(RTR_ERR_INVALID, "%s: routing table '%s': this corpus's tables have no names", corpus_dir,
                        prm->o.table);
    rtr_corpus *corp = NULL;
    rtr_status st = rtr_corpus_open(&corp, corpus_dir);
    if (st) return st;
    st = catalog_copy(&d->cat, rtr_corpus_catalog(corp));
    d->k = d->cat.n_pairs;
    load_scratch ls = {.cap = rtr_corpus_n_queries(corp)};
    size_t cap = (size_t)(ls.cap ? ls.cap : 1), nk = cap * (size_t)d->k;
    if (!st) {
        d->id = rtr_calloc(cap, sizeof(char *));
        d->dataset = rtr_calloc(cap, sizeof(char *));
        d->split = rtr_calloc(cap, sizeof(char *));
        ls.tin = rtr_malloc(cap * sizeof(float));
        float **mats[] = {&d->true_correct, &d->true_cost, &ls.true_tokens, &ls.true_usd,
                          &d->p, &d->tokens, &d->cost, &d->c}; /* the last four: tables only */
        size_t n_mats = prm->no_tables ? 4 : 8;
        bool ok = d->id && d->dataset && d->split && ls.tin;
        for (size_t m = 0; m < n_mats; m++) ok = (*mats[m] = rtr_malloc(nk * sizeof(float))) && ok;
        if (!prm->no_tables && prm->o.cost_model == RTR_COST_USD) ok = (ls.pred_usd = rtr_malloc(nk * sizeof(float))) && ok;
        if (!ok) st = RTR_ERR_NOMEM;
    }
    for (int s = 0; !st && s < rtr_corpus_n_shards(corp); s++)
        st = load_shard(d, rtr_corpus_shard_path(corp, s), prm, &ls);
    if (!st && d->n == 0)
        st = rtr_fail(RTR_ERR_INVALID, "%s: no query in split '%s'", corpus_dir, prm->o.split && *prm->o.split ? prm->o.split : "(any)");
    if (!st) st = realised_cost(d, prm, &ls);
    if (!st && !prm->no_tables && ls.shards_with_usd && ls.shards_with_usd != ls.shards)
        st = rtr_fail(RTR_ERR_FORMAT, "%s: /routing/cost is in %d of %d shards: rescore the corpus", corpus_dir,
                      ls.shards_with_usd, ls.shards);
    if (!st && !prm->no_tables) st = predicted_cost(d, prm, ls.tin, ls.shards_with_usd ? ls.pred_usd : NULL);
    if (!st && !prm->no_tables) st = finish_tables(d, prm);
    free(ls.tin);
    free(ls.true_tokens);
    free(ls.true_usd);
    free(ls.pred_usd);
    rtr_corpus_close(corp);
    if (st) { route_data_free(d); return st; }
    for (size_t i = 0; i < (size_t)d->n * (size_t)d->k && !d->has_truth; i++) d->has_truth = !isnan(d->true_correct[i]);
    if (!d->has_truth) {
        free(d->true_correct);
        free(d->true_cost);
        d->true_correct = d->true_cost = NULL;
    }
    return RTR_OK;
}

rtr_status route_data_from_predictions(route_data *d, rtr_catalog *cat, char **ids, int64_t n, float *p,
                                       float *tokens, const char *const *texts, const char *checkpoint_hash,
                                       const route_load_params *prm) {
    memset(d, 0, sizeof *d);
    d->cat = *cat;
    memset(cat, 0, sizeof *cat);
    d->n = n;
    d->k = d->cat.n_pairs;
    d->id = ids;
    d->p = p;
    d->tokens = tokens;
    size_t cap = (size_t)(n ? n : 1), nk = cap * (size_t)d->k;
    d->dataset = rtr_calloc(cap, sizeof(char *));
    d->split = rtr_calloc(cap, sizeof(char *));
    d->cost = rtr_malloc(nk * sizeof(float));
    d->c = rtr_malloc(nk * sizeof(float));
    float *tin = rtr_malloc(cap * sizeof *tin);
    d->checkpoint_hash = rtr_strdup(checkpoint_hash ? checkpoint_hash : "");
    rtr_status st = d->dataset && d->split && d->cost && d->c && tin && d->checkpoint_hash ? RTR_OK : RTR_ERR_NOMEM;
    for (int64_t i = 0; !st && i < n; i++) {
        tin[i] = input_tokens(texts[i]);
        if (!(d->dataset[i] = rtr_strdup("")) || !(d->split[i] = rtr_strdup(""))) st = RTR_ERR_NOMEM;
    }
    if (!st && n == 0) st = rtr_fail(RTR_ERR_INVALID, "no query to route");
    if (!st) st = predicted_cost(d, prm, tin, NULL);
    if (!st) st = finish_tables(d, prm);
    free(tin);
    if (st) route_data_free(d);
    return st;
}

void route_data_free(route_data *d) {
    for (int64_t i = 0; i < d->n; i++) {
        if (d->id) free(d->id[i]);
        if (d->dataset) free(d->dataset[i]);
        if (d->split) free(d->split[i]);
    }
    free(d->id);
    free(d->dataset);
    free(d->split);
    free(d->p);
    free(d->tokens);
    free(d->cost);
    free(d->c);
    free(d->true_correct);
    free(d->true_cost);
    free(d->checkpoint_hash);
    free(d->emb);
    free(d->encoder_hash);
    rtr_catalog_free(&d->cat);
    memset(d, 0, sizeof *d);
}

FILE *route_file_open(const char *path, char **tmp) {
    *tmp = rtr_tmp_path(path);
    FILE *f = *tmp ? fopen(*tmp, "w") : NULL;
    if (!f) rtr_fail(RTR_ERR_IO, "%s: cannot create", *tmp ? *tmp : path);
    return f;
}

rtr_status route_file_commit(FILE *f, const char *tmp, const char *path) {
    bool bad = ferror(f) != 0;
    bad |= fclose(f) != 0;
    rtr_status st = bad ? rtr_fail(RTR_ERR_IO, "%s: write failed", tmp) : rtr_commit_file(tmp, path);
    if (st) remove(tmp);
    return st;
}

rtr_route_table route_data_table(const route_data *d) {
    return (rtr_route_table){d->n, d->k, d->p, d->c, d->cost, d->true_correct, d->true_cost};
}
