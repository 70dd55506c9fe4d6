/* Ingest of canonical outcome logs into a sharded corpus, and the corpus
 * summary behind `rtr info`. One JSONL line is one query with all of its
 * (model, strategy) outcomes; docs/DATA.md gives the format. Every value is
 * validated before anything is renamed into place. */
#include "rtr/ingest.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

rtr_ingest_params rtr_ingest_default_params(void) {
    return (rtr_ingest_params){RTR_DEFAULT_SHARD_SIZE, "train", "default"};
}

/* ---------------------------------------------- set of seen query ids */

typedef struct {
    char **slot;
    size_t cap, n;
} id_set;

/* Insert id; returns 1 if it was already present, 0 if inserted, -1 on OOM. */
static int id_set_insert(id_set *s, const char *id) {
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        char **slot = rtr_calloc(cap, sizeof(char *));
        if (!slot) return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slot[i]) continue;
            size_t h = rtr_hash64(RTR_FNV_SEED, s->slot[i], strlen(s->slot[i])) & (cap - 1);
            while (slot[h]) h = (h + 1) & (cap - 1);
            slot[h] = s->slot[i];
        }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    size_t h = rtr_hash64(RTR_FNV_SEED, id, strlen(id)) & (s->cap - 1);
    for (; s->slot[h]; h = (h + 1) & (s->cap - 1))
        if (!strcmp(s->slot[h], id)) return 1;
    if (!(s->slot[h] = rtr_strdup(id))) return -1;
    s->n++;
    return 0;
}

static void id_set_free(id_set *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->slot[i]);
    free(s->slot);
}

/* ------------------------------------------------------ line parsing */

typedef struct {
    const char *file;
    long line;
} where;

#define LINE_FAIL(w, ...) line_fail(w, __VA_ARGS__)
static rtr_status line_fail(where w, const char *fmt, ...) RTR_PRINTF(2, 3);
static rtr_status line_fail(where w, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rtr_fail(RTR_ERR_FORMAT, "%s:%ld: %s", w.file, w.line, msg);
}

/* A required or optional UTF-8 string field; numbers are accepted for "id". */
static rtr_status get_string(where w, const cJSON *obj, const char *key, const char *dflt, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char num[64];
    const char *str;
    if (!v || cJSON_IsNull(v)) {
        if (!dflt) return LINE_FAIL(w, "field %s: missing", key);
        str = dflt;
    } else if (cJSON_IsString(v)) {
        str = v->valuestring;
    } else if (!strcmp(key, "id") && cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
               fabs(v->valuedouble) < 9e15) {
        snprintf(num, sizeof num, "%.0f", v->valuedouble);
        str = num;
    } else {
        return LINE_FAIL(w, "field %s: must be a string", key);
    }
    size_t bad, len = strlen(str);
    if (!rtr_utf8_valid(str, len, &bad)) return LINE_FAIL(w, "field %s: invalid UTF-8 at byte %zu", key, bad);
    if (strcmp(key, "text") && (len == 0 || len > RTR_MAX_NAME))
        return LINE_FAIL(w, "field %s: must have 1..%d bytes", key, RTR_MAX_NAME);
    *out = rtr_strdup(str);
    return *out ? RTR_OK : RTR_ERR_NOMEM;
}

/* An optional outcome number: absent or null = missing (NaN). */
static rtr_status get_value(where w, const cJSON *o, int idx, const char *key, double hi, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return RTR_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return LINE_FAIL(w, "field outcomes[%d].%s: must be a finite number or null", idx, key);
    if (v->valuedouble < 0 || v->valuedouble > hi)
        return LINE_FAIL(w, "field outcomes[%d].%s: %g is outside [0, %g]", idx, key, v->valuedouble, hi);
    *out = (float)v->valuedouble;
    return RTR_OK;
}

static rtr_status parse_outcomes(where w, const cJSON *root, const rtr_catalog *cat, rtr_shard *sh, int64_t row,
                                 int64_t *n_outcomes) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "outcomes");
    if (!arr || cJSON_IsNull(arr)) return RTR_OK;
    if (!cJSON_IsArray(arr)) return LINE_FAIL(w, "field outcomes: must be an array");
    int i = 0;
    for (const cJSON *o = arr->child; o; o = o->next, i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "strategy");
        if (!cJSON_IsObject(o) || !cJSON_IsString(m) || !cJSON_IsString(st))
            return LINE_FAIL(w, "field outcomes[%d]: needs string fields model and strategy", i);
        int32_t k = rtr_catalog_find_pair(cat, m->valuestring, st->valuestring);
        if (k < 0) {
            bool model_known = false, strat_known = false;
            for (int j = 0; j < cat->n_models; j++) model_known |= !strcmp(cat->models[j].name, m->valuestring);
            for (int j = 0; j < cat->n_strategies; j++) strat_known |= !strcmp(cat->strategies[j].name, st->valuestring);
            if (!model_known) return LINE_FAIL(w, "field outcomes[%d].model: unknown model \"%s\"", i, m->valuestring);
            if (!strat_known)
                return LINE_FAIL(w, "field outcomes[%d].strategy: unknown strategy \"%s\"", i, st->valuestring);
            return LINE_FAIL(w, "field outcomes[%d]: pair %s|%s is not in the catalog's pairs", i, m->valuestring,
                             st->valuestring);
        }
        size_t cell = (size_t)row * (size_t)sh->k + (size_t)k;
        if (!isnan(sh->correct[cell]) || !isnan(sh->tokens[cell]) || !isnan(sh->cost[cell]))
            return LINE_FAIL(w, "field outcomes[%d]: pair %s|%s given twice", i, m->valuestring, st->valuestring);
        rtr_status s = get_value(w, o, i, "correct", 1.0, &sh->correct[cell]);
        if (!s) s = get_value(w, o, i, "tokens", INFINITY, &sh->tokens[cell]);
        if (!s) s = get_value(w, o, i, "cost", INFINITY, &sh->cost[cell]);
        if (s) return s;
        (*n_outcomes)++;
    }
    return RTR_OK;
}

/* Parse one JSONL line into row `row` of the shard being filled. */
static rtr_status parse_line(where w, const char *line, const rtr_catalog *cat, const rtr_ingest_params *p,
                             id_set *ids, rtr_shard *sh, int64_t row, int64_t *n_outcomes) {
    cJSON *root = cJSON_Parse(line);
    if (!root) return LINE_FAIL(w, "malformed JSON near byte %ld", (long)(cJSON_GetErrorPtr() - line));
    rtr_status s = cJSON_IsObject(root) ? RTR_OK : LINE_FAIL(w, "a line must be a JSON object");
    if (!s) s = get_string(w, root, "id", NULL, &sh->id[row]);
    if (!s) s = get_string(w, root, "text", NULL, &sh->text[row]);
    if (!s) s = get_string(w, root, "dataset", p->default_dataset, &sh->dataset[row]);
    if (!s) s = get_string(w, root, "split", p->default_split, &sh->split[row]);
    if (!s) {
        int dup = id_set_insert(ids, sh->id[row]);
        if (dup < 0) s = RTR_ERR_NOMEM;
        else if (dup) s = LINE_FAIL(w, "field id: duplicate query id \"%s\"", sh->id[row]);
    }
    if (!s) s = parse_outcomes(w, root, cat, sh, row, n_outcomes);
    cJSON_Delete(root);
    return s;
}

/* ----------------------------------------------------------- ingest */

typedef struct {
    const char *dir;
    const rtr_catalog *cat;
    rtr_shard buf;
    int64_t fill;
    int n_shards;
    char **files;
    int64_t *counts;
} shard_writer;

static rtr_status writer_flush(shard_writer *sw) {
    if (sw->fill == 0) return RTR_OK;
    char name[64];
    snprintf(name, sizeof name, "shard-%05d.h5", sw->n_shards);
    char *path = rtr_sprintf("%s/%s", sw->dir, name);
    char **files = rtr_realloc(sw->files, sizeof(char *) * (size_t)(sw->n_shards + 1));
    int64_t *counts = files ? rtr_realloc(sw->counts, sizeof(int64_t) * (size_t)(sw->n_shards + 1)) : NULL;
    if (files) sw->files = files;
    if (counts) sw->counts = counts;
    if (!path || !files || !counts) { free(path); return RTR_ERR_NOMEM; }
    /* Write only the filled rows: the buffer's matrices are row-major. */
    int64_t cap = sw->buf.n;
    sw->buf.n = sw->fill;
    rtr_status s = rtr_shard_write(path, sw->cat, &sw->buf);
    sw->buf.n = cap;
    free(path);
    if (s) return s;
    sw->files[sw->n_shards] = rtr_strdup(name);
    sw->counts[sw->n_shards++] = sw->fill;
    /* Reset the buffer for the next shard. */
    rtr_shard fresh;
    rtr_shard_free(&sw->buf);
    s = rtr_shard_alloc(&fresh, cap, sw->cat->n_pairs);
    sw->buf = fresh;
    sw->fill = 0;
    return s;
}

static rtr_status ingest_file(const char *path, const rtr_catalog *cat, const rtr_ingest_params *p, id_set *ids,
                              shard_writer *sw, rtr_ingest_result *res, rtr_progress *prog) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return rtr_fail(RTR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    where w = {strcmp(path, "-") ? path : "<stdin>", 0};
    rtr_status s = RTR_OK;
    while (!s && (len = getline(&line, &cap, f)) >= 0) {
        w.line++;
        size_t bad;
        if (!rtr_utf8_valid(line, (size_t)len, &bad)) {
            s = LINE_FAIL(w, "invalid UTF-8 at byte %zu", bad);
            break;
        }
        if (strspn(line, " \t\r\n") == (size_t)len) continue; /* blank line */
        if (memchr(line, 0, (size_t)len)) { s = LINE_FAIL(w, "NUL byte in line"); break; }
        s = parse_line(w, line, cat, p, ids, &sw->buf, sw->fill, &res->n_outcomes);
        if (s) break;
        sw->fill++;
        res->n_queries++;
        rtr_progress_update(prog, (double)res->n_queries);
        if (sw->fill == sw->buf.n) s = writer_flush(sw);
    }
    if (!s && ferror(f)) s = rtr_fail(RTR_ERR_IO, "%s: read error", path);
    free(line);
    if (f != stdin) fclose(f);
    return s;
}

/* out_dir must not hold anything; an empty directory is replaced. */
static rtr_status check_out_dir(const char *out_dir) {
    if (!rtr_path_exists(out_dir)) return RTR_OK;
    if (rtr_corpus_exists(out_dir))
        return rtr_fail(RTR_ERR_EXISTS, "%s: already holds a corpus (remove it or choose another --out)", out_dir);
    if (!rtr_is_dir(out_dir) || rmdir(out_dir) != 0)
        return rtr_fail(RTR_ERR_EXISTS, "%s: exists and is not an empty directory", out_dir);
    return RTR_OK;
}

rtr_status rtr_ingest(const char *catalog_path, const char *const *inputs, int n_inputs, const char *out_dir,
                      const rtr_ingest_params *params, rtr_ingest_result *result) {
    memset(result, 0, sizeof *result);
    if (params->shard_size < 1) return rtr_fail(RTR_ERR_INVALID, "shard size must be at least 1");
    if (n_inputs < 1) return rtr_fail(RTR_ERR_INVALID, "no outcome files given");
    rtr_catalog cat;
    rtr_status s = rtr_catalog_load_json(&cat, catalog_path);
    if (s) return s;
    if ((s = check_out_dir(out_dir))) { rtr_catalog_free(&cat); return s; }
    char *tmp_dir = rtr_tmp_path(out_dir);
    if (!tmp_dir || mkdir(tmp_dir, 0755) != 0) {
        s = tmp_dir ? rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", tmp_dir, strerror(errno)) : RTR_ERR_NOMEM;
        free(tmp_dir);
        rtr_catalog_free(&cat);
        return s;
    }
    shard_writer sw = {.dir = tmp_dir, .cat = &cat};
    id_set ids = {0};
    rtr_progress prog;
    rtr_progress_init(&prog, "ingest", 0);
    s = rtr_shard_alloc(&sw.buf, params->shard_size, cat.n_pairs);
    for (int i = 0; i < n_inputs && !s; i++) s = ingest_file(inputs[i], &cat, params, &ids, &sw, result, &prog);
    if (!s) s = writer_flush(&sw);
    rtr_progress_end(&prog);
    if (!s && result->n_queries == 0) s = rtr_fail(RTR_ERR_FORMAT, "%s: no queries in the input", inputs[0]);
    if (!s) s = rtr_manifest_write(tmp_dir, &cat, sw.n_shards, (const char *const *)sw.files, sw.counts,
                                   params->shard_size);
    if (!s && rename(tmp_dir, out_dir) != 0)
        s = rtr_fail(RTR_ERR_IO, "%s: cannot rename into place: %s", out_dir, strerror(errno));
    if (s) rtr_remove_tree(tmp_dir);
    result->n_shards = sw.n_shards;
    for (int i = 0; i < sw.n_shards; i++) free(sw.files[i]);
    free(sw.files);
    free(sw.counts);
    rtr_shard_free(&sw.buf);
    id_set_free(&ids);
    free(tmp_dir);
    rtr_catalog_free(&cat);
    return s;
}

/* ---------------------------------------------------------- summary */

static int group_cmp(const void *a, const void *b) {
    const rtr_group_count *x = a, *y = b;
    int c = strcmp(x->dataset, y->dataset);
    return c ? c : strcmp(x->split, y->split);
}

static rtr_status count_group(rtr_corpus_summary *out, const char *dataset, const char *split) {
    for (int g = 0; g < out->n_groups; g++)
        if (!strcmp(out->groups[g].dataset, dataset) && !strcmp(out->groups[g].split, split)) {
            out->groups[g].n++;
            return RTR_OK;
        }
    rtr_group_count *gr = rtr_realloc(out->groups, sizeof *gr * (size_t)(out->n_groups + 1));
    if (!gr) return RTR_ERR_NOMEM;
    out->groups = gr;
    gr[out->n_groups] = (rtr_group_count){rtr_strdup(dataset), rtr_strdup(split), 1};
    out->n_groups++;
    return RTR_OK;
}

rtr_status rtr_corpus_summarize(const char *dir, rtr_corpus_summary *out) {
    memset(out, 0, sizeof *out);
    rtr_corpus *c;
    rtr_status s = rtr_corpus_open(&c, dir);
    if (s) return s;
    out->n_shards = rtr_corpus_n_shards(c);
    char *cj = rtr_catalog_to_json(rtr_corpus_catalog(c));
    s = cj ? rtr_catalog_parse_json(&out->cat, cj, dir) : RTR_ERR_NOMEM;
    free(cj);
    int32_t k = out->cat.n_pairs;
    if (!s && !(out->pairs = rtr_calloc((size_t)k, sizeof *out->pairs))) s = RTR_ERR_NOMEM;
    for (int i = 0; i < out->n_shards && !s; i++) {
        rtr_shard sh;
        if ((s = rtr_shard_read(rtr_corpus_shard_path(c, i), &sh, NULL))) break;
        if (sh.k != k) s = rtr_fail(RTR_ERR_FORMAT, "%s: %d pairs, manifest says %d", rtr_corpus_shard_path(c, i), sh.k, k);
        for (int64_t q = 0; q < sh.n && !s; q++) {
            s = count_group(out, sh.dataset[q], sh.split[q]);
            for (int32_t j = 0; j < k; j++) {
                size_t cell = (size_t)q * (size_t)k + (size_t)j;
                rtr_pair_summary *p = &out->pairs[j];
                if (!isnan(sh.correct[cell])) { p->n_correct++; p->sum_correct += sh.correct[cell]; }
                if (!isnan(sh.tokens[cell])) { p->n_tokens++; p->sum_tokens += sh.tokens[cell]; }
                if (!isnan(sh.cost[cell])) { p->n_cost++; p->sum_cost += sh.cost[cell]; }
            }
        }
        out->n_queries += sh.n;
        rtr_shard_free(&sh);
    }
    rtr_corpus_close(c);
    if (s) { rtr_corpus_summary_free(out); return s; }
    qsort(out->groups, (size_t)out->n_groups, sizeof *out->groups, group_cmp);
    return RTR_OK;
}

void rtr_corpus_summary_free(rtr_corpus_summary *s) {
    for (int g = 0; g < s->n_groups; g++) { free(s->groups[g].dataset); free(s->groups[g].split); }
    free(s->groups);
    free(s->pairs);
    rtr_catalog_free(&s->cat);
    memset(s, 0, sizeof *s);
}
