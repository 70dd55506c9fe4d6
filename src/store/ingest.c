/* Ingest of canonical outcome logs into a sharded corpus, and the corpus
 * summary behind `rtr info`. One JSONL line is one query with all of its
 * (model, strategy) outcomes; docs/DATA.md gives the format. Every value is
 * validated before anything is renamed into place. */
#include "rtr/ingest.h"
#include "common/json.h"
#include "common/util.h"
#include "store/store_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

rtr_ingest_params rtr_ingest_default_params(void) {
    return (rtr_ingest_params){RTR_DEFAULT_SHARD_SIZE, "train", "default"};
}

/* ------------------------------------------------------ line parsing */

typedef struct {
    const char *file;
    long line;
} where;

/* An input's name in messages ("-" is standard input). */
static const char *input_name(const char *path) { return strcmp(path, "-") ? path : "<stdin>"; }

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
    /* names as the catalog's: a table or message showing one must not
     * recolour the terminal or break its line (ids and texts may hold any) */
    int cc = strcmp(key, "dataset") && strcmp(key, "split") ? -1 : rtr_control_char(str, &bad);
    if (cc >= 0)
        return LINE_FAIL(w, "field %s: control character U+%04X at byte %zu (names must not hold them)", key,
                         (unsigned)cc, bad);
    *out = rtr_strdup(str);
    return *out ? RTR_OK : RTR_ERR_NOMEM;
}

/* An optional outcome number: absent or null = missing (NaN). */
static rtr_status get_value(where w, const cJSON *o, int idx, const char *key, double hi, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return RTR_OK;
    bool is_correct = !strcmp(key, "correct");
    if (cJSON_IsBool(v) && is_correct) { /* true/false as 1/0 */
        *out = cJSON_IsTrue(v) ? 1.0f : 0.0f;
        return RTR_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return LINE_FAIL(w, "field outcomes[%d].%s: must be a finite number or null%s", idx, key,
                         is_correct ? " (or true/false)" : "");
    if (v->valuedouble < 0 || v->valuedouble > hi)
        return LINE_FAIL(w, "field outcomes[%d].%s: %g is outside [0, %g]", idx, key, v->valuedouble, hi);
    if (v->valuedouble > FLT_MAX) /* stored as float32: it would become +inf */
        return LINE_FAIL(w, "field outcomes[%d].%s: %g is too large (float32 holds at most %g)", idx, key,
                         v->valuedouble, (double)FLT_MAX);
    *out = (float)v->valuedouble;
    return RTR_OK;
}

/* Keys of a line and of an outcome. Other keys are allowed (converters add
 * provenance), but one that is a near miss of a key the object lacks is
 * refused: "corect" would store the outcome as missing, "outcome" the query
 * without its outcomes, without a word. */
static const char *const LINE_KEYS[] = {"id", "text", "dataset", "split", "outcomes"};
static const char *const OUTCOME_KEYS[] = {"model", "strategy", "correct", "tokens", "cost"};

static rtr_status check_keys(where w, const cJSON *obj, const char *const *known, size_t n, const char *field,
                             int idx) {
    const cJSON *k;
    cJSON_ArrayForEach(k, obj) {
        const char *near = rtr_closest_name(k->string, known, n);
        if (!near || !strcmp(near, k->string) || cJSON_GetObjectItemCaseSensitive(obj, near)) continue;
        return idx < 0 ? LINE_FAIL(w, "field %s: unknown; did you mean \"%s\"?", k->string, near)
                       : LINE_FAIL(w, "field %s[%d].%s: unknown; did you mean \"%s\"?", field, idx, k->string, near);
    }
    return RTR_OK;
}

static rtr_status parse_outcomes(where w, const cJSON *root, const rtr_catalog *cat, rtr_shard *sh, int64_t row,
                                 int64_t *n_outcomes) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "outcomes");
    /* a flat line (one outcome's fields beside id and text, no outcomes
     * array) would lose its outcome; beside an array they are provenance */
    for (size_t j = 0; !arr && j < sizeof OUTCOME_KEYS / sizeof *OUTCOME_KEYS; j++)
        if (cJSON_GetObjectItemCaseSensitive(root, OUTCOME_KEYS[j]))
            return LINE_FAIL(w, "field %s: outcome fields go inside an \"outcomes\" array, one line per query "
                                "with all its outcomes (docs/DATA.md)", OUTCOME_KEYS[j]);
    if (!arr || cJSON_IsNull(arr)) return RTR_OK; /* a query without outcomes (counted by the caller) */
    if (!cJSON_IsArray(arr)) return LINE_FAIL(w, "field outcomes: must be an array");
    int i = 0;
    for (const cJSON *o = arr->child; o; o = o->next, i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "strategy");
        if (!cJSON_IsObject(o) || !cJSON_IsString(m) || !cJSON_IsString(st))
            return LINE_FAIL(w, "field outcomes[%d]: needs string fields model and strategy", i);
        const char *dup = rtr_json_duplicate_key(o);
        if (dup) return LINE_FAIL(w, "field outcomes[%d].%s: given twice", i, dup);
        rtr_status ks = check_keys(w, o, OUTCOME_KEYS, sizeof OUTCOME_KEYS / sizeof *OUTCOME_KEYS, "outcomes", i);
        if (ks) return ks;
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


/* Parse one JSONL line into row `row` of the block being filled. */
static rtr_status parse_line(where w, const char *line, const rtr_catalog *cat, const rtr_ingest_params *p,
                             rtr_shard *sh, int64_t row, int64_t *n_outcomes) {
    const char *end = NULL; /* where it ended, or failed (not cJSON_GetErrorPtr(): one for all threads) */
    cJSON *root = cJSON_ParseWithOpts(line, &end, false);
    if (!root) {
        const char *at = end ? end : line;
        return LINE_FAIL(w, "malformed JSON near byte %ld%s", (long)(at - line), rtr_json_error_hint(line, at, line + strlen(line)));
    }
    rtr_status s = cJSON_IsObject(root) ? RTR_OK : LINE_FAIL(w, "a line must be a JSON object");
    /* one object per line: anything after it (a second object) would be lost */
    if (!s && end[strspn(end, " \t\r\n")])
        s = LINE_FAIL(w, "unexpected text after the JSON object at byte %ld (one object per line%s)", (long)(end - line),
                      /* getline splits at LF only: a file of CR line ends is one line */
                      strchr(end, '\r') && !strchr(end, '\n') ? "; these lines end in CR alone: convert them to LF" : "");
    const char *dup = s ? NULL : rtr_json_duplicate_key(root);
    if (dup) s = LINE_FAIL(w, "field %s: given twice", dup);
    if (!s) s = check_keys(w, root, LINE_KEYS, sizeof LINE_KEYS / sizeof *LINE_KEYS, NULL, -1);
    if (!s && rtr_json_escaped_nul(line)) s = LINE_FAIL(w, "a string holds \\u0000 (NUL), which rtr does not store");
    const char *bad = s ? NULL : rtr_json_bad_escape(line, end); /* cJSON read it as \u0000 */
    if (bad) s = LINE_FAIL(w, "the escape at byte %ld: \\u is not followed by 4 hex digits", (long)(bad - line));
    if (!s) s = get_string(w, root, "id", NULL, &sh->id[row]);
    if (!s) s = get_string(w, root, "text", NULL, &sh->text[row]);
    if (!s) s = get_string(w, root, "dataset", p->default_dataset, &sh->dataset[row]);
    if (!s) s = get_string(w, root, "split", p->default_split, &sh->split[row]);
    if (!s) s = parse_outcomes(w, root, cat, sh, row, n_outcomes);
    cJSON_Delete(root);
    return s;
}

/* ----------------------------------------------------------- ingest */

/* Rows parsed per block: what ingest holds in memory besides the id
 * check's bounded buffer, whatever the shard size and catalog (BLOCK x
 * pairs x 3 floats). */
#define BLOCK 1024

/* Shards being written: the open one and what the manifest will list. */
typedef struct {
    const char *dir;
    const rtr_catalog *cat;
    int64_t shard_size;
    rtr_shard block; /* rows parsed, not yet appended */
    int64_t fill;    /* rows in block */
    rtr_shard_writer *w;
    int64_t in_shard; /* rows appended to the open shard */
    int n_shards;
    char **files;
    int64_t *counts;
    uint64_t *hashes;
    id_check ids; /* every id with its shard and row, and its input file and line */
} shard_writer;

/* Empty the block for the next rows. */
static rtr_status block_reset(shard_writer *sw) {
    rtr_shard_free(&sw->block);
    sw->fill = 0;
    return rtr_shard_alloc(&sw->block, BLOCK, sw->cat->n_pairs);
}

/* Commit the open shard and record it for the manifest. */
static rtr_status shard_close(shard_writer *sw) {
    if (!sw->w) return RTR_OK;
    int i = sw->n_shards;
    char **files = rtr_realloc(sw->files, sizeof(char *) * (size_t)(i + 1));
    if (files) sw->files = files;
    int64_t *counts = files ? rtr_realloc(sw->counts, sizeof(int64_t) * (size_t)(i + 1)) : NULL;
    if (counts) sw->counts = counts;
    uint64_t *hashes = counts ? rtr_realloc(sw->hashes, sizeof(uint64_t) * (size_t)(i + 1)) : NULL;
    if (hashes) sw->hashes = hashes;
    rtr_shard_writer *w = sw->w;
    sw->w = NULL;
    if (!hashes) {
        rtr_shard_writer_abort(w);
        return RTR_ERR_NOMEM;
    }
    rtr_status s = rtr_shard_writer_commit(w, &counts[i], &hashes[i]);
    if (!s && !(files[i] = rtr_sprintf("shard-%05d.h5", i))) s = RTR_ERR_NOMEM;
    if (!s) sw->n_shards = i + 1;
    sw->in_shard = 0;
    return s;
}

/* Append the block to the open shard (opening one first), cutting shards
 * at shard_size rows. */
static rtr_status block_flush(shard_writer *sw) {
    rtr_status s = RTR_OK;
    for (int64_t done = 0; done < sw->fill && !s;) {
        if (!sw->w) {
            char *path = rtr_sprintf("%s/shard-%05d.h5", sw->dir, sw->n_shards);
            s = path ? rtr_shard_writer_open(&sw->w, path, sw->cat) : RTR_ERR_NOMEM;
            free(path);
            if (s) break;
        }
        int64_t room = sw->shard_size - sw->in_shard, m = sw->fill - done < room ? sw->fill - done : room;
        /* a view of rows [done, done + m) of the block */
        size_t K = (size_t)sw->cat->n_pairs;
        rtr_shard part = {m, sw->block.k, sw->block.id + done, sw->block.text + done, sw->block.dataset + done,
                          sw->block.split + done, sw->block.correct + done * K, sw->block.tokens + done * K,
                          sw->block.cost + done * K};
        s = rtr_shard_writer_append(sw->w, &part);
        sw->in_shard += m;
        done += m;
        if (!s && sw->in_shard == sw->shard_size) s = shard_close(sw);
    }
    return s ? s : block_reset(sw);
}

/* An input line as the id check keeps it: the input's number and the line. */
#define SRC_LINE_BITS 40

static rtr_status ingest_file(const char *path, int input, const rtr_catalog *cat, const rtr_ingest_params *p,
                              shard_writer *sw, rtr_ingest_result *res, rtr_progress *prog) {
    if (strcmp(path, "-") && rtr_is_dir(path)) return rtr_fail(RTR_ERR_IO, "%s: is a directory, not a file", path);
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return rtr_fail(RTR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    where w = {input_name(path), 0};
    rtr_status s = RTR_OK;
    for (;;) {
        errno = 0;
        if ((len = getline(&line, &cap, f)) < 0) {
            /* end of input, or a line too long to hold: never mistake the second for the first */
            if (errno == ENOMEM || errno == EOVERFLOW)
                s = rtr_fail(RTR_ERR_NOMEM, "%s:%ld: line too long to read: %s", w.file, w.line + 1, strerror(errno));
            break;
        }
        w.line++;
        const char *kind = w.line == 1 ? rtr_binary_kind(line, (size_t)len) : NULL;
        if (kind) {
            s = rtr_fail(RTR_ERR_FORMAT, "%s: %s, not JSON lines", w.file, kind);
            break;
        }
        size_t bad;
        if (!rtr_utf8_valid(line, (size_t)len, &bad)) {
            s = LINE_FAIL(w, "invalid UTF-8 at byte %zu", bad);
            break;
        }
        if (strspn(line, " \t\r\n") == (size_t)len) continue; /* blank line */
        if (memchr(line, 0, (size_t)len)) { s = LINE_FAIL(w, "NUL byte in line"); break; }
        int64_t before = res->n_outcomes;
        s = parse_line(w, line, cat, p, &sw->block, sw->fill, &res->n_outcomes);
        /* the row's place: shards are cut at exactly shard_size rows */
        int64_t g = res->n_queries;
        if (!s) s = id_check_add(&sw->ids, sw->block.id[sw->fill], (int)(g / sw->shard_size), g % sw->shard_size,
                                 (uint64_t)input << SRC_LINE_BITS | (uint64_t)w.line);
        if (s) break;
        /* legal (a corpus to score only), but a flat log line looks just like it */
        if (res->n_outcomes == before && res->n_without_outcomes++ == 0)
            rtr_warn("%s:%ld: no outcomes (no \"outcomes\" array, or an empty one): ingested as a query with no "
                     "outcome; docs/DATA.md has the line format", w.file, w.line);
        sw->fill++;
        res->n_queries++;
        rtr_progress_update(prog, (double)res->n_queries);
        if (sw->fill == BLOCK && (s = block_flush(sw))) break;
    }
    if (!s && ferror(f)) s = rtr_fail(RTR_ERR_IO, "%s: read error after line %ld", w.file, w.line);
    free(line);
    if (f != stdin) fclose(f);
    return s;
}

static rtr_status ingest_dup(void *ctx, const char *id, const id_rec *first, const id_rec *again) {
    const char *const *inputs = ctx;
    uint64_t line_mask = ((uint64_t)1 << SRC_LINE_BITS) - 1;
    where w = {input_name(inputs[again->src >> SRC_LINE_BITS]), (long)(again->src & line_mask)};
    return LINE_FAIL(w, "field id: duplicate query id \"%s\" (first at %s:%ld)", id,
                     input_name(inputs[first->src >> SRC_LINE_BITS]), (long)(first->src & line_mask));
}

/* Every id unique: the bounded check of the row reader (store_int.h) over
 * the shards just written, naming both input lines of a repeated id. */
static rtr_status ids_unique(shard_writer *sw, const char *const *inputs) {
    char **paths = rtr_calloc((size_t)(sw->n_shards ? sw->n_shards : 1), sizeof *paths);
    rtr_status s = paths ? RTR_OK : RTR_ERR_NOMEM;
    for (int i = 0; !s && i < sw->n_shards; i++)
        if (!(paths[i] = rtr_sprintf("%s/%s", sw->dir, sw->files[i]))) s = RTR_ERR_NOMEM;
    id_shards sh = {(const char *const *)paths, sw->counts, ingest_dup, (void *)inputs};
    if (!s) s = id_check_finish(&sw->ids, &sh);
    for (int i = 0; paths && i < sw->n_shards; i++) free(paths[i]);
    free(paths);
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

rtr_status rtr_ingest(rtr_ingest_result *result, const char *catalog_path, const char *const *inputs, int n_inputs,
                      const char *out_dir, const rtr_ingest_params *params) {
    memset(result, 0, sizeof *result);
    if (params->shard_size < 1) return rtr_fail(RTR_ERR_INVALID, "shard size must be at least 1");
    if (n_inputs < 1) return rtr_fail(RTR_ERR_INVALID, "no outcome files given");
    size_t at;
    const char *dflt[2] = {params->default_dataset, params->default_split};
    for (int i = 0; i < 2; i++) { /* else each line without the field would be blamed */
        int cc = dflt[i] ? rtr_control_char(dflt[i], &at) : -1;
        if (cc >= 0)
            return rtr_fail(RTR_ERR_INVALID, "default_%s (--default-%s): control character U+%04X at byte %zu (names "
                            "must not hold them)", i ? "split" : "dataset", i ? "split" : "dataset", (unsigned)cc, at);
    }
    rtr_catalog cat;
    rtr_status s = rtr_catalog_load_json(&cat, catalog_path);
    if (s) return s;
    if ((s = check_out_dir(out_dir))) { rtr_catalog_free(&cat); return s; }
    char *tmp_dir = rtr_tmp_path(out_dir); /* also removes corpora half-built by killed runs */
    if (!tmp_dir || mkdir(tmp_dir, 0755) != 0) {
        s = tmp_dir ? rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", tmp_dir, strerror(errno)) : RTR_ERR_NOMEM;
        free(tmp_dir);
        rtr_catalog_free(&cat);
        return s;
    }
    shard_writer sw = {.dir = tmp_dir, .cat = &cat, .shard_size = params->shard_size};
    id_check_init(&sw.ids, 0, 0, true);
    rtr_progress prog;
    rtr_progress_init(&prog, "ingest", 0);
    s = block_reset(&sw);
    for (int i = 0; i < n_inputs && !s; i++) s = ingest_file(inputs[i], i, &cat, params, &sw, result, &prog);
    if (!s) s = block_flush(&sw);
    if (!s) s = shard_close(&sw);
    if (!s) s = ids_unique(&sw, inputs);
    rtr_progress_end(&prog);
    if (!s && result->n_without_outcomes > 1)
        rtr_warn("%lld of %lld queries have no outcomes", (long long)result->n_without_outcomes,
                 (long long)result->n_queries);
    if (!s && result->n_queries == 0) s = rtr_fail(RTR_ERR_FORMAT, "%s: no queries in the input", inputs[0]);
    if (!s) s = rtr_manifest_write(tmp_dir, &cat, sw.n_shards, (const char *const *)sw.files, sw.counts, sw.hashes,
                                   params->shard_size);
    if (!s && rename(tmp_dir, out_dir) != 0)
        s = rtr_fail(RTR_ERR_IO, "%s: cannot rename into place: %s", out_dir, strerror(errno));
    rtr_shard_writer_abort(sw.w);
    if (s) rtr_remove_tree(tmp_dir);
    result->n_shards = sw.n_shards;
    for (int i = 0; i < sw.n_shards; i++) free(sw.files[i]);
    free(sw.files);
    free(sw.counts);
    free(sw.hashes);
    rtr_shard_free(&sw.block);
    id_check_free(&sw.ids);
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

rtr_status rtr_corpus_summarize(rtr_corpus_summary *out, const char *dir) {
    memset(out, 0, sizeof *out);
    rtr_corpus *c;
    rtr_status s = rtr_corpus_open(&c, dir);
    if (s) return s;
    out->n_shards = rtr_corpus_n_shards(c);
    s = rtr_catalog_copy(&out->cat, rtr_corpus_catalog(c));
    int32_t k = out->cat.n_pairs;
    if (!s && !(out->pairs = rtr_calloc((size_t)k, sizeof *out->pairs))) s = RTR_ERR_NOMEM;
    /* every column of every row: the full check (values; the reader checks that ids are unique across shards) */
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_ID | RTR_COL_DATASET | RTR_COL_SPLIT | RTR_COL_CORRECT | RTR_COL_TOKENS | RTR_COL_COST;
    rtr_row_reader *r = NULL;
    if (!s) s = rtr_row_reader_open(&r, c, &q);
    rtr_rows ch;
    while (!s && !(s = rtr_row_reader_next(r, &ch, NULL, NULL)) && ch.n) {
        for (int64_t i = 0; i < ch.n && !s; i++) {
            s = count_group(out, ch.dataset[i], ch.split[i]);
            for (int32_t j = 0; j < k; j++) {
                size_t cell = (size_t)i * (size_t)k + (size_t)j;
                rtr_pair_summary *p = &out->pairs[j];
                if (!isnan(ch.correct[cell])) { p->n_correct++; p->sum_correct += ch.correct[cell]; }
                if (!isnan(ch.tokens[cell])) { p->n_tokens++; p->sum_tokens += ch.tokens[cell]; }
                if (!isnan(ch.cost[cell])) { p->n_cost++; p->sum_cost += ch.cost[cell]; }
            }
        }
        out->n_queries += ch.n;
    }
    rtr_row_reader_close(r);
    if (!s) s = rtr_corpus_outputs(&out->encodings, &out->n_encodings, c, EMB_DIR);
    if (!s) s = rtr_corpus_outputs(&out->tables, &out->n_tables, c, TABLE_DIR);
    rtr_corpus_close(c);
    if (s) { rtr_corpus_summary_free(out); return s; }
    qsort(out->groups, (size_t)out->n_groups, sizeof *out->groups, group_cmp);
    return RTR_OK;
}

void rtr_corpus_summary_free(rtr_corpus_summary *s) {
    for (int g = 0; g < s->n_groups; g++) { free(s->groups[g].dataset); free(s->groups[g].split); }
    free(s->groups);
    free(s->pairs);
    rtr_output_info_free(s->encodings, s->n_encodings);
    rtr_output_info_free(s->tables, s->n_tables);
    free(s->encodings);
    free(s->tables);
    rtr_catalog_free(&s->cat);
    memset(s, 0, sizeof *s);
}
