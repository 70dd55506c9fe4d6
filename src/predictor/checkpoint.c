/* Predictor checkpoints as safetensors: every parameter block as an F32
 * tensor, and in "__metadata__" the training configuration (JSON), the
 * catalog (JSON and hash) the pairs refer to, the encoder that made the
 * embeddings, the token target and scale, and the split the training rows
 * came from (eval-predictor fits its naive baseline on the same rows). */
#include "predictor/predictor_int.h"
#include "rtr/safetensors.h"
#include "common/json.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_FORMAT "rtr-predictor-1"
static const char *const head_names[2] = {"correct", "tokens"};

/* The tensors of p in file order; names are written into names[] (storage
 * for 12 "head.x.y" strings). pair_f receives the pair indices as floats
 * (2 x n_pairs; exact for any realistic catalog). Returns the count. */
static size_t tensor_list(const rtr_predictor *p, rtr_st_write_tensor *t, char names[12][32], float *pair_f) {
    size_t n = 0;
    int64_t H = p->H, D = p->D, R = (int64_t)p->D + p->U;
    for (int h = 0; h < 2; h++) {
        const rtr_head *hd = &p->head[h];
        const struct { const char *field; const float *data; int ndim; int64_t d0, d1; } blocks[] = {
            {"W_q", hd->W_q, 2, H, D}, {"W_m", hd->W_m, 2, H, R}, {"W_s", hd->W_s, 2, H, R},
            {"b1", hd->b1, 1, H, 0},   {"w2", hd->w2, 1, H, 0},   {"b2", hd->b2, 1, 1, 0},
        };
        for (size_t b = 0; b < 6; b++) {
            snprintf(names[n], 32, "head.%s.%s", head_names[h], blocks[b].field);
            t[n] = (rtr_st_write_tensor){names[n], blocks[b].data, blocks[b].ndim, {blocks[b].d0, blocks[b].d1}};
            n++;
        }
    }
    for (int k = 0; k < p->n_pairs; k++) {
        pair_f[k] = (float)p->pair_model[k];
        pair_f[p->n_pairs + k] = (float)p->pair_strategy[k];
    }
    t[n++] = (rtr_st_write_tensor){"u_model", p->u_model, 2, {p->n_models, p->U}};
    t[n++] = (rtr_st_write_tensor){"u_strategy", p->u_strategy, 2, {p->n_strategies, p->U}};
    t[n++] = (rtr_st_write_tensor){"d_model", p->d_model, 2, {p->n_models, p->D}};
    t[n++] = (rtr_st_write_tensor){"d_strategy", p->d_strategy, 2, {p->n_strategies, p->D}};
    t[n++] = (rtr_st_write_tensor){"pair_model", pair_f, 1, {p->n_pairs}};
    t[n++] = (rtr_st_write_tensor){"pair_strategy", pair_f + p->n_pairs, 1, {p->n_pairs}};
    return n;
}

static char *config_json(const rtr_train_params *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "hidden", c->hidden);
    cJSON_AddNumberToObject(o, "learn_dim", c->learn_dim);
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddNumberToObject(o, "batch", c->batch);
    cJSON_AddNumberToObject(o, "max_epochs", c->max_epochs);
    cJSON_AddNumberToObject(o, "patience", c->patience);
    cJSON_AddNumberToObject(o, "val_frac", c->val_frac);
    char seed[24];
    snprintf(seed, sizeof seed, "%" PRIu64, c->seed); /* a string: doubles lose 64-bit seeds */
    cJSON_AddStringToObject(o, "seed", seed);
    cJSON_AddStringToObject(o, "token_target", c->token_target == RTR_TOKENS_LOG ? "log" : "raw");
    cJSON_AddBoolToObject(o, "token_normalize", c->token_normalize);
    cJSON_AddNumberToObject(o, "window_rows", (double)c->window_rows);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static rtr_status config_parse(rtr_train_params *c, const char *json, const char *path) {
    if (!json) return rtr_fail(RTR_ERR_FORMAT, "%s: metadata 'config' missing", path);
    const char *why;
    cJSON *o = rtr_json_parse(json, &why, NULL);
    if (!o) return rtr_fail(RTR_ERR_FORMAT, "%s: metadata 'config' is not valid JSON%s", path, why);
    *c = rtr_train_default_params();
    const cJSON *v;
    rtr_status st = RTR_OK;
    /* An integer field is a whole number within its type: converting any
     * other double (1e20, NaN) to an integer is undefined behaviour. */
    int64_t iv;
#define INT(field, key, max)                                                                       \
    if (!st && (v = cJSON_GetObjectItemCaseSensitive(o, key)) && cJSON_IsNumber(v)) {            \
        if (!rtr_json_integer(v, &iv) || iv < 0 || iv > (max))                                   \
            st = rtr_fail(RTR_ERR_FORMAT, "%s: config.%s is %g, not a whole number in [0, %lld]", \
                          path, key, v->valuedouble, (long long)(max));                          \
        else c->field = iv;                                                                      \
    }
    INT(hidden, "hidden", INT32_MAX) INT(learn_dim, "learn_dim", INT32_MAX) INT(batch, "batch", INT32_MAX)
    INT(max_epochs, "max_epochs", INT32_MAX) INT(patience, "patience", INT32_MAX)
    INT(window_rows, "window_rows", INT64_MAX)
#undef INT
    if (!st && (v = cJSON_GetObjectItemCaseSensitive(o, "lr")) && cJSON_IsNumber(v)) c->lr = v->valuedouble;
    if (!st && (v = cJSON_GetObjectItemCaseSensitive(o, "val_frac")) && cJSON_IsNumber(v)) c->val_frac = v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "seed")) && cJSON_IsString(v))
        c->seed = strtoull(v->valuestring, NULL, 10);
    v = cJSON_GetObjectItemCaseSensitive(o, "token_target");
    if (!st) {
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "log")) c->token_target = RTR_TOKENS_LOG;
        else if (cJSON_IsString(v) && !strcmp(v->valuestring, "raw")) c->token_target = RTR_TOKENS_RAW;
        else st = rtr_fail(RTR_ERR_FORMAT, "%s: config.token_target must be \"log\" or \"raw\"", path);
    }
    c->token_normalize = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "token_normalize"));
    cJSON_Delete(o);
    return st;
}

void rtr_predictor_hash_hex(const rtr_predictor *p, char hex[17]) {
    uint64_t h = rtr_hash64(RTR_FNV_SEED, p->params, sizeof(float) * p->n_params);
    h = rtr_hash64(h, &p->token_scale, sizeof p->token_scale);
    h = rtr_hash64(h, &p->cfg.token_target, sizeof p->cfg.token_target);
    h = rtr_hash64(h, &p->catalog_hash, sizeof p->catalog_hash);
    h = rtr_hash64(h, p->pair_model, sizeof(int32_t) * (size_t)p->n_pairs);
    h = rtr_hash64(h, p->pair_strategy, sizeof(int32_t) * (size_t)p->n_pairs);
    if (p->encoder_hash) h = rtr_hash64(h, p->encoder_hash, strlen(p->encoder_hash));
    snprintf(hex, 17, "%016" PRIx64, h);
}

/* The validation rows' hashes as "h1,h2,..." (16 hex digits each). */
static char *val_hash_text(const rtr_predictor *p) {
    char *s = rtr_malloc((size_t)p->n_val_hash * 17 + 1);
    if (!s) return NULL;
    s[0] = 0;
    for (int64_t i = 0; i < p->n_val_hash; i++) /* entry i at 17·i, a comma before all but the first */
        snprintf(s + (i ? 17 * i - 1 : 0), 18, "%s%016" PRIx64, i ? "," : "", p->val_hash[i]);
    return s;
}

static rtr_status val_hash_parse(rtr_predictor *p, const char *s, const char *path) {
    p->val_hash = NULL, p->n_val_hash = 0;
    if (!s || !*s) return RTR_OK;
    size_t len = strlen(s), n = (len + 1) / 17;
    if ((len + 1) % 17 || n > RTR_VAL_HASH_MAX)
        return rtr_fail(RTR_ERR_FORMAT, "%s: metadata validation_rows is not a list of at most %d hashes", path,
                        RTR_VAL_HASH_MAX);
    if (!(p->val_hash = rtr_malloc(sizeof *p->val_hash * n))) return RTR_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *h = s + 17 * i;
        char *end;
        p->val_hash[i] = strtoull(h, &end, 16);
        if (end != h + 16 || (*end && *end != ','))
            return rtr_fail(RTR_ERR_FORMAT, "%s: metadata validation_rows: entry %zu is not 16 hex digits", path, i);
    }
    p->n_val_hash = (int64_t)n;
    return RTR_OK;
}

/* The pairs' training mean tokens as a JSON array, null for a pair with
 * none ("" when the predictor has none). */
static char *mean_tokens_text(const rtr_predictor *p) {
    if (!p->pair_mean_tokens) return rtr_strdup("");
    char *s = rtr_malloc((size_t)p->n_pairs * 24 + 3);
    if (!s) return NULL;
    size_t at = 0;
    s[at++] = '[';
    for (int32_t k = 0; k < p->n_pairs; k++) {
        float m = p->pair_mean_tokens[k];
        at += (size_t)(isnan(m) ? snprintf(s + at, 24, "%snull", k ? "," : "")
                                : snprintf(s + at, 24, "%s%.9g", k ? "," : "", (double)m));
    }
    s[at++] = ']';
    s[at] = '\0';
    return s;
}

static rtr_status mean_tokens_parse(rtr_predictor *p, const char *s, const char *path) {
    p->pair_mean_tokens = NULL;
    if (!s || !*s) return RTR_OK; /* saved before checkpoints kept it */
    const char *why;
    cJSON *a = rtr_json_parse(s, &why, NULL);
    rtr_status st = cJSON_IsArray(a) && cJSON_GetArraySize(a) == p->n_pairs ? RTR_OK
                    : rtr_fail(RTR_ERR_FORMAT, "%s: metadata pair_mean_tokens is not an array of %d entries%s", path,
                               p->n_pairs, why);
    if (!st && !(p->pair_mean_tokens = rtr_malloc(sizeof(float) * (size_t)p->n_pairs))) st = RTR_ERR_NOMEM;
    int32_t k = 0;
    for (const cJSON *v = st ? NULL : a->child; v && !st; v = v->next, k++) {
        if (cJSON_IsNull(v)) p->pair_mean_tokens[k] = NAN;
        else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= FLT_MAX)
            p->pair_mean_tokens[k] = (float)v->valuedouble;
        else st = rtr_fail(RTR_ERR_FORMAT, "%s: metadata pair_mean_tokens: entry %d is neither a token count nor null", path, k);
    }
    cJSON_Delete(a);
    return st;
}

rtr_status rtr_predictor_save(const rtr_predictor *p, const char *path) {
    rtr_st_write_tensor t[18];
    char names[12][32];
    float *pair_f = rtr_malloc(sizeof(float) * 2 * (size_t)p->n_pairs);
    char *cfg = config_json(&p->cfg), *vals_text = val_hash_text(p), *means = mean_tokens_text(p);
    if (!pair_f || !cfg || !vals_text || !means) {
        free(pair_f), free(cfg), free(vals_text), free(means);
        return RTR_ERR_NOMEM;
    }
    size_t n = tensor_list(p, t, names, pair_f);
    char scale[32], cat_hash[24], hash[17];
    snprintf(scale, sizeof scale, "%.9g", p->token_scale);
    snprintf(cat_hash, sizeof cat_hash, "%016" PRIx64, p->catalog_hash);
    rtr_predictor_hash_hex(p, hash);
    const char *keys[] = {"format", "config", "token_target", "token_scale", "catalog", "catalog_hash",
                          "encoder", "encoder_hash", "train_split", "train_skip_dataset", "checkpoint_hash",
                          "validation_rows", "pair_mean_tokens"};
    const char *vals[] = {CKPT_FORMAT, cfg, p->cfg.token_target == RTR_TOKENS_LOG ? "log" : "raw", scale,
                          p->catalog_json ? p->catalog_json : "", cat_hash, p->encoder ? p->encoder : "",
                          p->encoder_hash ? p->encoder_hash : "", p->train_split ? p->train_split : "",
                          p->train_skip_dataset ? p->train_skip_dataset : "", hash, vals_text, means};
    rtr_status st = rtr_safetensors_write(path, t, n, keys, vals, sizeof keys / sizeof *keys);
    free(pair_f);
    free(cfg);
    free(vals_text);
    free(means);
    return st;
}

static bool params_finite(const rtr_predictor *p) {
    for (size_t i = 0; i < p->n_params; i++)
        if (!isfinite(p->params[i])) return false;
    return true;
}

/* A metadata string copied (NULL when absent or empty). */
static char *meta_dup(const rtr_safetensors *st, const char *key) {
    const char *v = rtr_safetensors_metadata(st, key);
    return v && *v ? rtr_strdup(v) : NULL;
}

/* Sizes from the tensor shapes, checked against each other. */
static rtr_status read_sizes(rtr_predictor *p, const rtr_safetensors *st, const char *path) {
    const rtr_st_tensor *wq = rtr_safetensors_find(st, "head.correct.W_q");
    const rtr_st_tensor *um = rtr_safetensors_find(st, "u_model");
    const rtr_st_tensor *ds = rtr_safetensors_find(st, "d_strategy");
    const rtr_st_tensor *pm = rtr_safetensors_find(st, "pair_model");
    if (!wq || !um || !ds || !pm || wq->ndim != 2 || um->ndim != 2 || ds->ndim != 2 || pm->ndim != 1)
        return rtr_fail(RTR_ERR_FORMAT, "%s: not an rtr predictor checkpoint (missing or malformed "
                        "head.correct.W_q / u_model / d_strategy / pair_model)", path);
    p->H = (int32_t)wq->shape[0], p->D = (int32_t)wq->shape[1];
    p->n_models = (int32_t)um->shape[0], p->U = (int32_t)um->shape[1];
    p->n_strategies = (int32_t)ds->shape[0], p->n_pairs = (int32_t)pm->shape[0];
    if (p->H < 1 || p->D < 1 || p->n_models < 1 || p->n_strategies < 1 || p->n_pairs < 1 ||
        p->H != p->cfg.hidden || p->U != p->cfg.learn_dim)
        return rtr_fail(RTR_ERR_FORMAT, "%s: tensor shapes disagree with the config", path);
    return RTR_OK;
}

rtr_status rtr_predictor_load(rtr_predictor *p, const char *path) {
    memset(p, 0, sizeof *p);
    rtr_safetensors *st = NULL;
    rtr_status s = rtr_safetensors_open(&st, path);
    if (s) return s;
    const char *fmt = rtr_safetensors_metadata(st, "format");
    if (!fmt || strcmp(fmt, CKPT_FORMAT))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: metadata format is '%s', expected '%s'", path, fmt ? fmt : "(none)",
                     CKPT_FORMAT);
    if (!s) s = config_parse(&p->cfg, rtr_safetensors_metadata(st, "config"), path);
    if (!s) s = read_sizes(p, st, path);
    if (!s) s = rtr_predictor_alloc_(p);
    float *pair_f = s ? NULL : rtr_malloc(sizeof(float) * 2 * (size_t)p->n_pairs);
    if (!s && !pair_f) s = RTR_ERR_NOMEM;
    if (!s) {
        rtr_st_write_tensor t[18];
        char names[12][32];
        size_t n = tensor_list(p, t, names, pair_f);
        for (size_t i = 0; i < n && !s; i++)
            s = rtr_safetensors_read_f32(st, (float *)t[i].data, t[i].name, t[i].ndim, t[i].shape);
    }
    for (int k = 0; !s && k < p->n_pairs; k++) {
        /* checked as floats first: casting a NaN or out-of-range float is undefined */
        float fm = pair_f[k], fs = pair_f[p->n_pairs + k];
        if (!(fm >= 0 && fm < (float)p->n_models && fs >= 0 && fs < (float)p->n_strategies) || fm != floorf(fm) ||
            fs != floorf(fs))
            s = rtr_fail(RTR_ERR_FORMAT, "%s: pair %d: model/strategy indices (%g, %g) are not indices of the catalog", path, k,
                         (double)fm, (double)fs);
        else p->pair_model[k] = (int32_t)fm, p->pair_strategy[k] = (int32_t)fs;
    }
    free(pair_f);
    if (!s) {
        const char *scale = rtr_safetensors_metadata(st, "token_scale");
        const char *ch = rtr_safetensors_metadata(st, "catalog_hash");
        p->token_scale = scale ? strtof(scale, NULL) : NAN;
        p->catalog_hash = ch ? strtoull(ch, NULL, 16) : 0;
        p->catalog_json = meta_dup(st, "catalog");
        p->encoder = meta_dup(st, "encoder");
        p->encoder_hash = meta_dup(st, "encoder_hash");
        p->train_split = meta_dup(st, "train_split");
        p->train_skip_dataset = meta_dup(st, "train_skip_dataset");
        if (p->train_skip_dataset && !*p->train_skip_dataset) { free(p->train_skip_dataset); p->train_skip_dataset = NULL; }
        s = val_hash_parse(p, rtr_safetensors_metadata(st, "validation_rows"), path);
        if (!s) s = mean_tokens_parse(p, rtr_safetensors_metadata(st, "pair_mean_tokens"), path);
        if (s) {
        } else if (!(p->token_scale > 0 && isfinite(p->token_scale)) || !p->catalog_json)
            s = rtr_fail(RTR_ERR_FORMAT, "%s: metadata token_scale or catalog missing or invalid", path);
        else if (!params_finite(p))
            s = rtr_fail(RTR_ERR_NUMERIC, "%s: parameters hold NaN/inf", path);
    }
    /* The stored hash covers the parameters, token scale and target, catalog
     * and encoder: routing tables carry it, so a file changed after saving
     * must not pass as the checkpoint they name. */
    if (!s) {
        const char *stored = rtr_safetensors_metadata(st, "checkpoint_hash");
        char actual[17];
        rtr_predictor_hash_hex(p, actual);
        if (!stored || !*stored)
            s = rtr_fail(RTR_ERR_FORMAT, "%s: metadata checkpoint_hash missing", path);
        else if (strcmp(stored, actual))
            s = rtr_fail(RTR_ERR_FORMAT, "%s: stored checkpoint_hash %s but the contents hash to %s "
                         "(the file was changed or damaged after it was saved)", path, stored, actual);
    }
    rtr_safetensors_close(st);
    if (s) rtr_predictor_free(p);
    return s;
}
