/* The catalog: which models and strategies exist, their description texts
 * (embedded by the encoder) and prices, and the (model, strategy) pairs a
 * router chooses among. Parsed from JSON (docs/DATA.md) with cJSON. */
#include "rtr/store.h"
#include "common/json.h"
#include "common/util.h"
#include "store/store_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void rtr_catalog_free(rtr_catalog *cat) {
    if (!cat) return;
    for (int i = 0; i < cat->n_models; i++) { free(cat->models[i].name); free(cat->models[i].description); }
    for (int i = 0; i < cat->n_strategies; i++) { free(cat->strategies[i].name); free(cat->strategies[i].description); }
    free(cat->models);
    free(cat->strategies);
    free(cat->pair_model);
    free(cat->pair_strategy);
    memset(cat, 0, sizeof *cat);
}

/* A name is a non-empty, valid UTF-8 string without '|' (the pair separator)
 * and without control characters. */
static rtr_status check_name(const char *name, const char *origin, const char *field) {
    size_t n = strlen(name), bad;
    if (n == 0 || n > RTR_MAX_NAME)
        return rtr_fail(RTR_ERR_FORMAT, "%s: %s: name must have 1..%d bytes", origin, field, RTR_MAX_NAME);
    if (!rtr_utf8_valid(name, n, &bad))
        return rtr_fail(RTR_ERR_FORMAT, "%s: %s: invalid UTF-8 at byte %zu", origin, field, bad);
    if (strchr(name, '|') || rtr_control_char(name, &bad) >= 0)
        return rtr_fail(RTR_ERR_FORMAT, "%s: %s: name \"%s\" contains '|' or a control character",
                        origin, field, name);
    return RTR_OK;
}

static int find_entry(const rtr_catalog_entry *e, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(e[i].name, name)) return i;
    return -1;
}

#define RTR_CATALOG_MAX_PRICE 1e20 /* USD per 10^6 tokens: a call of 10^18 tokens costs 10^32, within float */

static rtr_status parse_price(const cJSON *obj, const char *key, double *out, const char *origin, const char *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NAN;
    if (!v || cJSON_IsNull(v)) return RTR_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0)
        return rtr_fail(RTR_ERR_FORMAT, "%s: %s.%s: must be a non-negative number or null", origin, field, key);
    /* USD per million tokens; costs from it are float32, and at 1e308 every
     * predicted cost was infinite (route ran with an infinite cost scale) */
    if (v->valuedouble > RTR_CATALOG_MAX_PRICE)
        return rtr_fail(RTR_ERR_FORMAT, "%s: %s.%s: %g is implausibly large (USD per million tokens; at most %g, "
                        "so that costs stay within float's range)", origin, field, key, v->valuedouble,
                        RTR_CATALOG_MAX_PRICE);
    *out = v->valuedouble;
    return RTR_OK;
}

static rtr_status parse_entries(const cJSON *root, const char *key, rtr_catalog_entry **out, int32_t *count,
                                const char *origin) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return rtr_fail(RTR_ERR_FORMAT, "%s: \"%s\" must be a non-empty array", origin, key);
    int n = cJSON_GetArraySize(arr);
    rtr_catalog_entry *e = rtr_calloc((size_t)n, sizeof *e);
    if (!e) return RTR_ERR_NOMEM;
    *out = e;
    *count = 0;
    int i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char field[64];
        snprintf(field, sizeof field, "%s[%d]", key, i);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(it, "description");
        if (!cJSON_IsObject(it) || !cJSON_IsString(name))
            return rtr_fail(RTR_ERR_FORMAT, "%s: %s: needs a string \"name\"", origin, field);
        const char *dup = rtr_json_duplicate_key(it); /* cJSON would keep the first silently */
        if (dup) return rtr_fail(RTR_ERR_FORMAT, "%s: %s.%s: given twice", origin, field, dup);
        if (desc && !cJSON_IsString(desc) && !cJSON_IsNull(desc))
            return rtr_fail(RTR_ERR_FORMAT, "%s: %s.description: must be a string", origin, field);
        rtr_status s = check_name(name->valuestring, origin, field);
        if (s) return s;
        if (find_entry(e, i, name->valuestring) >= 0)
            return rtr_fail(RTR_ERR_FORMAT, "%s: %s: duplicate name \"%s\"", origin, field, name->valuestring);
        const char *d = cJSON_IsString(desc) ? desc->valuestring : name->valuestring;
        size_t bad;
        if (!rtr_utf8_valid(d, strlen(d), &bad))
            return rtr_fail(RTR_ERR_FORMAT, "%s: %s.description: invalid UTF-8 at byte %zu", origin, field, bad);
        e[i].name = rtr_strdup(name->valuestring);
        e[i].description = rtr_strdup(d);
        *count = i + 1;
        if (!e[i].name || !e[i].description) return RTR_ERR_NOMEM;
        if ((s = parse_price(it, "price_in", &e[i].price_in, origin, field))) return s;
        if ((s = parse_price(it, "price_out", &e[i].price_out, origin, field))) return s;
    }
    return RTR_OK;
}

static rtr_status parse_pairs(rtr_catalog *cat, const cJSON *root, const char *origin) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "pairs");
    int n = arr ? cJSON_GetArraySize(arr) : cat->n_models * cat->n_strategies;
    if (arr && (!cJSON_IsArray(arr) || n == 0))
        return rtr_fail(RTR_ERR_FORMAT, "%s: \"pairs\" must be a non-empty array of [model, strategy]", origin);
    cat->pair_model = rtr_malloc(sizeof(int32_t) * (size_t)n);
    cat->pair_strategy = rtr_malloc(sizeof(int32_t) * (size_t)n);
    if (!cat->pair_model || !cat->pair_strategy) return RTR_ERR_NOMEM;
    cat->n_pairs = n;
    if (!arr) {
        for (int k = 0; k < n; k++) {
            cat->pair_model[k] = k / cat->n_strategies;
            cat->pair_strategy[k] = k % cat->n_strategies;
        }
        return RTR_OK;
    }
    int k = 0;
    for (const cJSON *it = arr->child; it; it = it->next, k++) {
        const cJSON *m = cJSON_GetArrayItem(it, 0), *s = cJSON_GetArrayItem(it, 1);
        if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsString(m) || !cJSON_IsString(s))
            return rtr_fail(RTR_ERR_FORMAT, "%s: pairs[%d]: must be [\"model\", \"strategy\"]", origin, k);
        int mi = find_entry(cat->models, cat->n_models, m->valuestring);
        int si = find_entry(cat->strategies, cat->n_strategies, s->valuestring);
        if (mi < 0) return rtr_fail(RTR_ERR_FORMAT, "%s: pairs[%d]: unknown model \"%s\"", origin, k, m->valuestring);
        if (si < 0) return rtr_fail(RTR_ERR_FORMAT, "%s: pairs[%d]: unknown strategy \"%s\"", origin, k, s->valuestring);
        for (int j = 0; j < k; j++)
            if (cat->pair_model[j] == mi && cat->pair_strategy[j] == si)
                return rtr_fail(RTR_ERR_FORMAT, "%s: pairs[%d]: duplicate pair %s|%s", origin, k, m->valuestring,
                                s->valuestring);
        cat->pair_model[k] = mi;
        cat->pair_strategy[k] = si;
    }
    return RTR_OK;
}

static void warn_unknown_keys(const cJSON *root, const char *path);

/* The catalog in json; warn_path (when not NULL) names it in warnings of
 * unknown keys, from the same parse. */
static rtr_status parse_catalog(rtr_catalog *cat, const char *json, const char *origin, const char *warn_path) {
    memset(cat, 0, sizeof *cat);
    const char *why;
    int line;
    cJSON *root = rtr_json_parse(json, &why, &line);
    if (!root) {
        /* the terminator counts: xz's magic ends in a NUL byte */
        const char *kind = rtr_binary_kind(json, strlen(json) + 1);
        if (kind) return rtr_fail(RTR_ERR_FORMAT, "%s: %s, not a JSON catalog", origin, kind);
        /* a parse error's line (text after a whole value names its own) */
        if (!line) return rtr_fail(RTR_ERR_FORMAT, "%s: not valid JSON%s", origin, why);
        return rtr_fail(RTR_ERR_FORMAT, "%s:%d: not valid JSON%s", origin, line, why);
    }
    rtr_status s = cJSON_IsObject(root) ? RTR_OK : rtr_fail(RTR_ERR_FORMAT, "%s: top level must be an object", origin);
    const char *nul = s ? NULL : rtr_json_escaped_nul(json);
    if (nul) {
        int l = 1;
        for (const char *p = json; p < nul; p++) l += *p == '\n';
        s = rtr_fail(RTR_ERR_FORMAT, "%s:%d: a string holds \\u0000 (NUL), which rtr does not store (a name would end "
                     "there)", origin, l);
    }
    const char *dup = s ? NULL : rtr_json_duplicate_key(root); /* cJSON would keep the first silently */
    if (dup) s = rtr_fail(RTR_ERR_FORMAT, "%s: field %s: given twice", origin, dup);
    if (!s) s = parse_entries(root, "models", &cat->models, &cat->n_models, origin);
    if (!s) s = parse_entries(root, "strategies", &cat->strategies, &cat->n_strategies, origin);
    if (!s) s = parse_pairs(cat, root, origin);
    if (!s && warn_path) warn_unknown_keys(root, warn_path);
    cJSON_Delete(root);
    if (s) rtr_catalog_free(cat);
    return s;
}

rtr_status rtr_catalog_parse_json(rtr_catalog *cat, const char *json, const char *origin) {
    return parse_catalog(cat, json, origin, NULL);
}

/* A user's catalog: keys rtr does not read are warned about, not refused.
 * In a model or strategy entry every unknown key is (a misspelt price_in
 * would leave costs missing without a word); at the top level only a near
 * miss of a key rtr reads ("pair" for "pairs"), since converters record
 * their provenance there (source, price_fit, ...). */
static void warn_unknown_keys(const cJSON *root, const char *path) {
    static const char *const top[] = {"models", "strategies", "pairs"};
    static const char *const entry[] = {"name", "description", "price_in", "price_out"};
    const cJSON *k, *it;
    cJSON_ArrayForEach(k, root) {
        const char *near = rtr_closest_name(k->string, top, 3);
        if (near && strcmp(near, k->string))
            rtr_warn("%s: unknown key \"%s\" ignored; did you mean \"%s\"?", path, k->string, near);
    }
    for (int t = 0; t < 2; t++) {
        int i = 0;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, top[t])) {
            cJSON_ArrayForEach(k, it) {
                bool known = false;
                for (int j = 0; j < 4; j++) known |= !strcmp(k->string, entry[j]);
                if (known) continue;
                const char *near = rtr_closest_name(k->string, entry, 4);
                rtr_warn("%s: %s[%d]: unknown key \"%s\" ignored%s%s%s", path, top[t], i, k->string,
                         near ? "; did you mean \"" : " (an entry has name, description, price_in, price_out)",
                         near ? near : "", near ? "\"?" : "");
            }
            i++;
        }
    }
}

rtr_status rtr_catalog_load_json(rtr_catalog *cat, const char *path) {
    char *text;
    rtr_status s = rtr_read_file(path, &text, NULL);
    if (s) return s;
    s = parse_catalog(cat, text, path, path);
    free(text);
    return s;
}

static cJSON *entries_to_json(const rtr_catalog_entry *e, int n) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", e[i].name);
        cJSON_AddStringToObject(o, "description", e[i].description);
        if (!isnan(e[i].price_in)) cJSON_AddNumberToObject(o, "price_in", e[i].price_in);
        if (!isnan(e[i].price_out)) cJSON_AddNumberToObject(o, "price_out", e[i].price_out);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

char *rtr_catalog_to_json(const rtr_catalog *cat) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "models", entries_to_json(cat->models, cat->n_models));
    cJSON_AddItemToObject(root, "strategies", entries_to_json(cat->strategies, cat->n_strategies));
    cJSON *pairs = cJSON_AddArrayToObject(root, "pairs");
    for (int k = 0; k < cat->n_pairs; k++) {
        cJSON *p = cJSON_CreateArray();
        cJSON_AddItemToArray(p, cJSON_CreateString(cat->models[cat->pair_model[k]].name));
        cJSON_AddItemToArray(p, cJSON_CreateString(cat->strategies[cat->pair_strategy[k]].name));
        cJSON_AddItemToArray(pairs, p);
    }
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!out) rtr_fail(RTR_ERR_NOMEM, "out of memory serialising the catalog");
    return out;
}

int32_t rtr_catalog_find_pair(const rtr_catalog *cat, const char *model, const char *strategy) {
    for (int32_t k = 0; k < cat->n_pairs; k++)
        if (!strcmp(cat->models[cat->pair_model[k]].name, model) &&
            !strcmp(cat->strategies[cat->pair_strategy[k]].name, strategy))
            return k;
    return -1;
}

char *rtr_catalog_pair_name(const rtr_catalog *cat, int32_t k) {
    return rtr_sprintf("%s|%s", cat->models[cat->pair_model[k]].name, cat->strategies[cat->pair_strategy[k]].name);
}

uint64_t rtr_catalog_hash(const rtr_catalog *cat) {
    char *json = rtr_catalog_to_json(cat);
    uint64_t h = json ? rtr_hash64(RTR_FNV_SEED, json, strlen(json)) : 0;
    free(json);
    return h;
}

static rtr_status copy_entries(rtr_catalog_entry **dst, const rtr_catalog_entry *src, int32_t n) {
    *dst = rtr_calloc((size_t)(n ? n : 1), sizeof **dst);
    if (!*dst) return RTR_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        (*dst)[i] = src[i];
        (*dst)[i].name = rtr_strdup(src[i].name);
        (*dst)[i].description = rtr_strdup(src[i].description);
        if (!(*dst)[i].name || !(*dst)[i].description) return RTR_ERR_NOMEM;
    }
    return RTR_OK;
}

rtr_status rtr_catalog_copy(rtr_catalog *dst, const rtr_catalog *src) {
    memset(dst, 0, sizeof *dst);
    rtr_status s = copy_entries(&dst->models, src->models, src->n_models);
    /* entries not yet copied are NULL: rtr_catalog_free copes */
    if (dst->models) dst->n_models = src->n_models;
    if (!s) s = copy_entries(&dst->strategies, src->strategies, src->n_strategies);
    if (dst->strategies) dst->n_strategies = src->n_strategies;
    size_t k = (size_t)src->n_pairs;
    if (!s && !((dst->pair_model = rtr_malloc(k * sizeof(int32_t))) && (dst->pair_strategy = rtr_malloc(k * sizeof(int32_t)))))
        s = RTR_ERR_NOMEM;
    if (s) {
        rtr_catalog_free(dst);
        return s;
    }
    memcpy(dst->pair_model, src->pair_model, k * sizeof(int32_t));
    memcpy(dst->pair_strategy, src->pair_strategy, k * sizeof(int32_t));
    dst->n_pairs = src->n_pairs;
    return RTR_OK;
}
