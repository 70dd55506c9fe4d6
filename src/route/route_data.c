/* A corpus read for routing (route_data.h): one preparation of table rows
 * (cost model, exclusions), the streamed passes over a selection through the
 * store's row reader, and the same passes gathered into memory. */
#include "route/route_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "rtr/dist.h"

/* ------------------------------------------------------------- preparing */

/* Input tokens of a query for USD costs: the text's UTF-8 bytes / 4, the
 * usual rule of thumb for BPE tokenizers on English (docs/ROUTING.md). */
static float input_tokens(const char *text) { return text ? (float)strlen(text) / 4.0f : 0.0f; }

void route_prep_free(route_prep *x) {
    free(x->user_cost);
    free(x->excluded);
    memset(x, 0, sizeof *x);
}

rtr_status route_prep_init(route_prep *x, const rtr_catalog *cat, const rtr_route_options *o) {
    memset(x, 0, sizeof *x);
    /* NaN or infinity would silently mean "automatic" or "no cap" */
    if (!(o->cost_scale >= 0 && isfinite(o->cost_scale)))
        return rtr_fail(RTR_ERR_INVALID, "cost scale %g: must be a finite number > 0 (or 0: automatic)", o->cost_scale);
    if (!(o->max_tokens >= 0 && isfinite(o->max_tokens)))
        return rtr_fail(RTR_ERR_INVALID, "max tokens %g: must be a finite number >= 0 (0: no cap)", o->max_tokens);
    x->cat = cat;
    x->model = o->cost_model;
    x->max_tokens = o->max_tokens;
    x->excluded = rtr_calloc((size_t)cat->n_pairs, sizeof *x->excluded);
    if (!x->excluded) return RTR_ERR_NOMEM;
    rtr_status st = o->exclude ? rtr_route_parse_exclude(x->excluded, cat, o->exclude) : RTR_OK;
    if (!st && x->model == RTR_COST_USER) {
        char *json = NULL;
        if (!o->pair_cost_path) st = rtr_fail(RTR_ERR_INVALID, "cost model 'user' needs --pair-cost FILE.json");
        else if (!(x->user_cost = rtr_malloc((size_t)cat->n_pairs * sizeof *x->user_cost))) st = RTR_ERR_NOMEM;
        if (!st) st = rtr_read_file(o->pair_cost_path, &json, NULL);
        if (!st) st = rtr_cost_user_parse(x->user_cost, json, o->pair_cost_path, cat);
        free(json);
    }
    if (st) route_prep_free(x);
    return st;
}

rtr_status route_costs(const route_prep *x, int64_t n, const float *tokens, const float *p_usd,
                       const char *const *texts, float *cost) {
    int32_t k = x->cat->n_pairs;
    size_t nk = (size_t)n * (size_t)k;
    if (x->model == RTR_COST_TOKENS) {
        memcpy(cost, tokens, nk * sizeof(float));
    } else if (x->model == RTR_COST_USD && p_usd) {
        memcpy(cost, p_usd, nk * sizeof(float));
    } else if (x->model == RTR_COST_USD) {
        float *tin = texts ? rtr_malloc(sizeof *tin * (size_t)(n ? n : 1)) : NULL;
        if (texts && !tin) return RTR_ERR_NOMEM;
        for (int64_t i = 0; tin && i < n; i++) tin[i] = input_tokens(texts[i]);
        rtr_status st = rtr_cost_usd(cost, tokens, tin, x->cat, n);
        free(tin);
        return st;
    } else {
        for (size_t i = 0; i < nk; i++) cost[i] = (float)x->user_cost[i % (size_t)k];
    }
    return RTR_OK;
}

rtr_status route_allowed(const route_prep *x, int64_t n, const float *p_correct, const float *tokens,
                         char *const *ids, float *p) {
    int32_t k = x->cat->n_pairs;
    memcpy(p, p_correct, (size_t)n * (size_t)k * sizeof(float));
    rtr_route_exclude(p, tokens, n, k, x->excluded, x->max_tokens);
    for (int64_t i = 0; i < n; i++) {
        bool any = false;
        for (int32_t j = 0; j < k; j++) any |= !isnan(p[i * k + j]);
        if (!any)
            return ids ? rtr_fail(RTR_ERR_INVALID, "query '%s': every pair is excluded (--exclude / --max-tokens)", ids[i])
                       : rtr_fail(RTR_ERR_INVALID, "query %lld: every pair is excluded (--exclude / --max-tokens)", (long long)i);
    }
    return RTR_OK;
}

/* Realised costs in the model's unit: tokens, USD, or the user's per-pair
 * constant wherever the outcome exists. */
static void realised_cost(const route_prep *x, const rtr_rows *ch, float *true_cost) {
    size_t nk = (size_t)ch->n * (size_t)ch->k;
    if (x->model == RTR_COST_USER)
        for (size_t i = 0; i < nk; i++) true_cost[i] = isnan(ch->correct[i]) ? NAN : (float)x->user_cost[i % (size_t)ch->k];
    else
        memcpy(true_cost, x->model == RTR_COST_USD ? ch->cost : ch->tokens, nk * sizeof(float));
}

/* ------------------------------------------------------------- streaming */

#define ROUTE_CHUNK_ROWS 16384

static rtr_row_query source_query(const route_source *rs, unsigned columns) {
    const route_load_params *prm = &rs->prm;
    rtr_row_query q = rtr_row_query_default();
    q.columns = columns;
    q.split = prm->o.split;
    q.dataset = prm->o.dataset;
    q.skip_dataset = prm->o.skip_dataset;
    q.table = prm->o.table;
    q.encoder_hash = prm->encoder_hash;
    q.chunk_rows = rs->chunk_rows;
    q.shards = rs->shards;
    q.rows = rs->rows;
    return q;
}

void route_source_close(route_source *rs) {
    rtr_row_reader_close(rs->r);
    rtr_corpus_close(rs->corp);
    route_prep_free(&rs->prep);
    free(rs->checkpoint_hash);
    free(rs->encoder_hash);
    free(rs->buf);
    memset(rs, 0, sizeof *rs);
}

rtr_status route_source_open(route_source *rs, const char *corpus_dir, const route_load_params *prm,
                             int64_t chunk_rows) {
    memset(rs, 0, sizeof *rs);
    rs->prm = *prm;
    rs->chunk_rows = chunk_rows > 0 ? chunk_rows : ROUTE_CHUNK_ROWS;
    rs->cost_scale = prm->o.cost_scale > 0 ? prm->o.cost_scale : 0;
    rtr_status st = rtr_corpus_open(&rs->corp, corpus_dir);
    if (!st) st = route_prep_init(&rs->prep, rtr_corpus_catalog(rs->corp), &prm->o);
    /* open a reader once to resolve the table and embeddings and check them */
    unsigned cols = (prm->no_tables ? 0 : RTR_COL_P_CORRECT | RTR_COL_P_COST) | (prm->embeddings ? RTR_COL_EMBEDDING : 0);
    rtr_row_query q = source_query(rs, cols);
    rtr_row_reader *r = NULL;
    if (!st && cols) st = rtr_row_reader_open(&r, rs->corp, &q);
    if (!st && r) {
        const rtr_row_source *src = rtr_row_reader_source(r);
        rs->table_usd = src->table_has_cost;
        rs->dim = src->dim;
        if (!(rs->checkpoint_hash = rtr_strdup(src->checkpoint_hash ? src->checkpoint_hash : ""))) st = RTR_ERR_NOMEM;
        if (!st && src->encoder_hash && !(rs->encoder_hash = rtr_strdup(src->encoder_hash))) st = RTR_ERR_NOMEM;
        if (!st && !prm->no_tables && prm->o.checkpoint_hash && strcmp(rs->checkpoint_hash, prm->o.checkpoint_hash))
            st = rtr_fail(RTR_ERR_INVALID, "%s: routing table %s was scored by checkpoint '%s', not '%s' (--checkpoint-hash)",
                          corpus_dir, src->table, rs->checkpoint_hash, prm->o.checkpoint_hash);
    }
    rtr_row_reader_close(r);
    if (!st && !rs->checkpoint_hash && !(rs->checkpoint_hash = rtr_strdup(""))) st = RTR_ERR_NOMEM;
    if (st) route_source_close(rs);
    return st;
}

/* The columns a pass needs for what it computes. */
static unsigned pass_columns(const route_source *rs, bool scale_only) {
    const route_load_params *prm = &rs->prm;
    unsigned cols = 0;
    if (!prm->no_tables) {
        cols |= RTR_COL_P_TOKENS;
        if (prm->o.cost_model == RTR_COST_USD) cols |= rs->table_usd ? RTR_COL_P_COST : RTR_COL_TEXT;
    }
    if (scale_only) return cols;
    if (!prm->no_tables) cols |= RTR_COL_P_CORRECT | RTR_COL_ID;
    if (!prm->no_truth) cols |= RTR_COL_CORRECT | (prm->o.cost_model == RTR_COST_USD ? RTR_COL_COST : RTR_COL_TOKENS);
    if (prm->embeddings) cols |= RTR_COL_EMBEDDING;
    return cols;
}

/* Room for rows of one chunk: p, cost, c and true_cost. */
static rtr_status source_buffers(route_source *rs, size_t rows) {
    if (rows <= rs->buf_rows) return RTR_OK;
    size_t nk = rows * (size_t)rtr_corpus_catalog(rs->corp)->n_pairs;
    float *b = rtr_realloc(rs->buf, 4 * nk * sizeof *b);
    if (!b) return RTR_ERR_NOMEM;
    rs->buf = b;
    rs->buf_rows = rows;
    return RTR_OK;
}

rtr_status route_source_scale(route_source *rs) {
    if (rs->cost_scale > 0 || rs->prm.no_tables) return RTR_OK;
    int32_t k = rtr_corpus_catalog(rs->corp)->n_pairs;
    size_t ns = (size_t)rtr_corpus_n_shards(rs->corp), nk = (size_t)rs->chunk_rows * (size_t)k;
    /* per shard and pair: the sum and count of the costs (the counts end with the rows read) */
    double *sum = rtr_calloc(ns * (size_t)k, sizeof *sum);
    int64_t *cnt = rtr_calloc(ns * (size_t)k + 1, sizeof *cnt), *rows = cnt + ns * (size_t)k;
    route_scale_acc acc = {0};
    rtr_status st = sum && cnt ? route_scale_init(&acc, k) : RTR_ERR_NOMEM;
    rtr_row_query q = source_query(rs, pass_columns(rs, true));
    q.skip_id_check = true; /* the routing pass that follows checks them: one check, one set of runs on disk */
    q.rows = NULL;          /* whole shards: a shard's sums split over ranks would round otherwise */
    rtr_row_reader *r = NULL;
    if (!st) st = rtr_row_reader_open(&r, rs->corp, &q);
    if (!st) st = source_buffers(rs, (size_t)rs->chunk_rows);
    rtr_rows ch;
    int shard;
    while (!st && !(st = rtr_row_reader_next(r, &ch, &shard, NULL)) && ch.n) {
        *rows += ch.n;
        /* the costs only: exclusions do not change the scale */
        float *cost = rs->buf + nk;
        st = route_costs(&rs->prep, ch.n, ch.p_tokens, ch.p_cost, (const char *const *)ch.text, cost);
        route_scale_acc part = {k, sum + (size_t)shard * (size_t)k, cnt + (size_t)shard * (size_t)k};
        if (!st) route_scale_add(&part, cost, ch.n);
    }
    rtr_row_reader_close(r);
    /* a shard is read by one rank: the others add zeros, exactly */
    if (!st && rs->shards) st = rtr_dist_sum_f64(sum, ns * (size_t)k);
    if (!st && rs->shards) st = rtr_dist_sum_i64(cnt, ns * (size_t)k + 1);
    if (!st && !*rows)
        st = rtr_corpus_no_query(rtr_corpus_dir(rs->corp), rs->prm.o.split, NULL);
    for (size_t i = 0; !st && i < ns; i++)
        for (int32_t j = 0; j < k; j++) {
            acc.sum[j] += sum[i * (size_t)k + (size_t)j];
            acc.cnt[j] += cnt[i * (size_t)k + (size_t)j];
        }
    free(sum);
    free(cnt);
    if (st) {
        route_scale_free(&acc);
        return st;
    }
    return route_scale_finish(&acc, &rs->cost_scale);
}

rtr_status route_source_begin(route_source *rs, unsigned columns) {
    rtr_row_reader_close(rs->r);
    rs->r = NULL;
    rtr_row_query q = source_query(rs, pass_columns(rs, false) | columns);
    q.skip_id_check = rs->prm.ids_checked;
    rtr_status st = rtr_row_reader_open(&rs->r, rs->corp, &q);
    if (!st) st = source_buffers(rs, (size_t)rs->chunk_rows);
    return st;
}

rtr_status route_source_next(route_source *rs, route_chunk *out) {
    memset(out, 0, sizeof *out);
    rtr_rows ch;
    rtr_status st = rtr_row_reader_next(rs->r, &ch, NULL, NULL);
    if (st || !ch.n) return st;
    size_t nk = rs->buf_rows * (size_t)ch.k;
    float *p = rs->buf, *cost = rs->buf + nk, *c = rs->buf + 2 * nk, *true_cost = rs->buf + 3 * nk;
    *out = (route_chunk){.n = ch.n, .k = ch.k, .id = ch.id, .dataset = ch.dataset, .split = ch.split,
                         .true_correct = ch.correct, .emb = ch.emb};
    if (!rs->prm.no_truth) {
        realised_cost(&rs->prep, &ch, true_cost);
        out->true_cost = true_cost;
    }
    if (rs->prm.no_tables) return RTR_OK;
    st = route_costs(&rs->prep, ch.n, ch.p_tokens, ch.p_cost, (const char *const *)ch.text, cost);
    if (!st) st = route_allowed(&rs->prep, ch.n, ch.p_correct, ch.p_tokens, ch.id, p);
    if (st) return st;
    out->p = p;
    out->tokens = ch.p_tokens;
    out->cost = cost;
    if (rs->cost_scale > 0) {
        st = route_scale_costs(c, cost, (size_t)ch.n * (size_t)ch.k, rs->cost_scale);
        out->c = c;
    }
    return st;
}

rtr_route_table route_chunk_table(const route_chunk *ch, bool truth) {
    return (rtr_route_table){ch->n, ch->k, ch->p, ch->c, ch->cost, truth ? ch->true_correct : NULL,
                             truth ? ch->true_cost : NULL};
}

/* ------------------------------------------------------------- in memory */

void route_data_free(route_data *d) {
    for (int64_t i = 0; d->id && i < d->n; i++) free(d->id[i]);
    for (int32_t i = 0; i < d->n_dataset_names; i++) free(d->dataset_names[i]);
    free(d->dataset_names);
    free(d->id);
    free(d->dataset);
    free(d->p);
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

/* Grow d's kept arrays to hold need rows (exact: room for need alone,
 * else doubling). */
static rtr_status data_reserve(route_data *d, int64_t *cap, int64_t need, unsigned keep, bool exact) {
    if (need <= *cap) return RTR_OK;
    int64_t c = *cap ? 2 * *cap : 4096;
    while (c < need) c *= 2;
    if (exact) c = need;
    size_t nk = (size_t)c * (size_t)d->k;
    char ***strs[2] = {&d->id, &d->dataset};
    const unsigned str_keep[2] = {ROUTE_KEEP_ID, ROUTE_KEEP_DATASET};
    for (int i = 0; i < 2; i++) {
        if (!(keep & str_keep[i])) continue;
        char **p = rtr_realloc(*strs[i], sizeof(char *) * (size_t)c);
        if (!p) return RTR_ERR_NOMEM;
        *strs[i] = p;
    }
    float **mats[5] = {&d->true_correct, &d->true_cost, &d->p, &d->cost, &d->emb};
    const unsigned mat_keep[4] = {ROUTE_KEEP_TRUTH, ROUTE_KEEP_TRUTH, ROUTE_KEEP_P, ROUTE_KEEP_COST};
    for (int m = 0; m < 5; m++) {
        if (m < 4 ? !(keep & mat_keep[m]) : !d->emb_dim) continue;
        float *p = rtr_realloc(*mats[m], sizeof(float) * (m == 4 ? (size_t)c * (size_t)d->emb_dim : nk));
        if (!p) return RTR_ERR_NOMEM;
        *mats[m] = p;
    }
    *cap = c;
    return RTR_OK;
}

/* The one copy of dataset name s in d (rows come grouped by dataset, so the
 * last name found is tried first; a corpus has tens of datasets). */
static const char *data_dataset(route_data *d, const char *s, int32_t *last) {
    if (*last >= 0 && !strcmp(d->dataset_names[*last], s)) return d->dataset_names[*last];
    for (int32_t i = 0; i < d->n_dataset_names; i++)
        if (!strcmp(d->dataset_names[i], s)) return d->dataset_names[*last = i];
    char **names = rtr_realloc(d->dataset_names, sizeof *names * ((size_t)d->n_dataset_names + 1));
    if (!names) return NULL;
    d->dataset_names = names;
    if (!(names[d->n_dataset_names] = rtr_strdup(s))) return NULL;
    return names[*last = d->n_dataset_names++];
}

/* The m kept rows of chunk ch (its rows sel[0..m), or its first m when sel
 * is NULL) into d's kept id and dataset columns (rows d->n on). On failure
 * no id of these rows is left (route_data_free frees d->n rows). */
static rtr_status data_strings(route_data *d, const route_chunk *ch, const int64_t *sel, int64_t m, unsigned keep,
                               int32_t *last) {
    int64_t done = 0; /* ids copied */
    rtr_status st = RTR_OK;
    for (; (keep & ROUTE_KEEP_ID) && done < m; done++)
        if (!(d->id[d->n + done] = rtr_strdup(ch->id[sel ? sel[done] : done]))) {
            st = RTR_ERR_NOMEM;
            break;
        }
    for (int64_t i = 0; !st && (keep & ROUTE_KEEP_DATASET) && i < m; i++)
        if (!(d->dataset[d->n + i] = (char *)data_dataset(d, ch->dataset[sel ? sel[i] : i], last))) st = RTR_ERR_NOMEM;
    for (int64_t i = 0; st && i < done; i++) free(d->id[d->n + i]);
    return st;
}

/* Rows of width floats: from's rows sel[0..m) (NULL: its first m) to to. */
static void copy_rows(float *to, const float *from, const int64_t *sel, int64_t m, size_t width) {
    if (!sel) {
        memcpy(to, from, (size_t)m * width * sizeof *to);
        return;
    }
    for (int64_t i = 0; i < m; i++) memcpy(to + (size_t)i * width, from + (size_t)sel[i] * width, width * sizeof *to);
}

rtr_status route_data_load(route_data *d, const char *corpus_dir, const route_load_params *prm) {
    memset(d, 0, sizeof *d);
    unsigned keep = prm->keep ? prm->keep : ROUTE_KEEP_ALL;
    bool tables = !prm->no_tables;
    if (keep & ROUTE_KEEP_C) keep |= ROUTE_KEEP_COST; /* c is made from the costs once the scale is known */
    if (!tables) keep &= ~(unsigned)(ROUTE_KEEP_P | ROUTE_KEEP_COST | ROUTE_KEEP_C);
    if (prm->no_truth) keep &= ~(unsigned)ROUTE_KEEP_TRUTH;
    route_source rs;
    rtr_status st = route_source_open(&rs, corpus_dir, prm, 0);
    if (st) return st;
    st = rtr_catalog_copy(&d->cat, rtr_corpus_catalog(rs.corp));
    d->k = d->cat.n_pairs;
    d->emb_dim = prm->embeddings ? rs.dim : 0;
    if (!st && !((d->checkpoint_hash = rtr_strdup(rs.checkpoint_hash)) &&
                 (!rs.encoder_hash || (d->encoder_hash = rtr_strdup(rs.encoder_hash)))))
        st = RTR_ERR_NOMEM;
    /* the scale from every row's predicted costs, chunk by chunk in row order (the sums of
       rtr_route_cost_scale over the whole table, whether the costs are kept or not) */
    d->cost_scale = prm->o.cost_scale;
    bool scale = tables && !(prm->o.cost_scale > 0);
    route_scale_acc acc = {0};
    if (!st && scale) st = route_scale_init(&acc, d->k);
    unsigned cols = (keep & ROUTE_KEEP_ID ? RTR_COL_ID : 0) | (keep & ROUTE_KEEP_DATASET ? RTR_COL_DATASET : 0);
    if (!st) st = route_source_begin(&rs, cols);
    int64_t cap = 0, pos = 0, next = 0; /* pos: the chunk's first row in the selection; next: in only_rows */
    int32_t last = -1;
    bool truth = false;
    int64_t *sel = NULL, sel_cap = 0; /* with only_rows: the chunk's kept rows */
    /* with only_rows, room for exactly those (doubling would hold up to twice, and copy on each growth) */
    if (!st && prm->only_rows) st = data_reserve(d, &cap, prm->n_only_rows, keep, true);
    route_chunk ch;
    while (!st && !(st = route_source_next(&rs, &ch)) && ch.n) {
        int64_t m = ch.n;
        if (prm->only_rows && ch.n > sel_cap) {
            int64_t *g = rtr_realloc(sel, (size_t)ch.n * sizeof *g);
            if (!g) {
                st = RTR_ERR_NOMEM;
                break;
            }
            sel = g, sel_cap = ch.n;
        }
        if (prm->only_rows)
            for (m = 0; next < prm->n_only_rows && prm->only_rows[next] < pos + ch.n; next++)
                sel[m++] = prm->only_rows[next] - pos;
        pos += ch.n;
        if ((st = data_reserve(d, &cap, d->n + m, keep, false)) || (st = data_strings(d, &ch, sel, m, keep, &last))) break;
        size_t at = (size_t)d->n * (size_t)d->k, k = (size_t)d->k;
        for (int64_t i = 0; ch.true_correct && i < m && !truth; i++)
            for (size_t j = 0, r = (size_t)(sel ? sel[i] : i); j < k && !truth; j++)
                truth = !isnan(ch.true_correct[r * k + j]);
        const float *from[4] = {ch.true_correct, ch.true_cost, ch.p, ch.cost};
        float *to[4] = {d->true_correct, d->true_cost, d->p, d->cost};
        for (int t = 0; t < 4; t++)
            if (to[t]) copy_rows(to[t] + at, from[t], sel, m, k);
        if (scale) route_scale_add(&acc, ch.cost, ch.n); /* every selected row's costs, kept or not */
        if (d->emb_dim) copy_rows(d->emb + (size_t)d->n * (size_t)d->emb_dim, ch.emb, sel, m, (size_t)d->emb_dim);
        d->n += m;
    }
    free(sel);
    if (!st && next < prm->n_only_rows)
        st = rtr_fail(RTR_ERR_INVALID, "%s: row %lld of the selection asked for, %lld read (did the corpus change?)",
                      corpus_dir, (long long)prm->only_rows[next], (long long)pos);
    if (!st && d->n == 0)
        st = rtr_corpus_no_query(corpus_dir, prm->o.split, NULL);
    /* The scale ignores exclusions, so excluding a pair does not change what λ means. */
    if (scale) {
        if (!st) st = route_scale_finish(&acc, &d->cost_scale);
        else route_scale_free(&acc);
    }
    size_t nk = (size_t)d->n * (size_t)d->k;
    if (!st && (keep & ROUTE_KEEP_C) && !(d->c = rtr_malloc((nk ? nk : 1) * sizeof(float)))) st = RTR_ERR_NOMEM;
    if (!st && d->c) st = route_scale_costs(d->c, d->cost, nk, d->cost_scale);
    route_source_close(&rs);
    if (st) {
        route_data_free(d);
        return st;
    }
    d->has_truth = truth;
    if (!d->has_truth) {
        free(d->true_correct);
        free(d->true_cost);
        d->true_correct = d->true_cost = NULL;
    }
    return RTR_OK;
}

