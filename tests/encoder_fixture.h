/* Shared by the tokenizer and encoder golden tests: locate a model folder,
 * load tests/fixtures/encoder/<model>/ (made by tools/make-golden-encoder.py)
 * and rebuild each item's text (a question of the shared data set, read from
 * RTR_SHARED_DATA, or a stored adversarial string). */
#ifndef RTR_TEST_ENCODER_FIXTURE_H
#define RTR_TEST_ENCODER_FIXTURE_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *text; /* NULL when the question could not be read */
    size_t len;
    char label[64];
    int32_t *ids;
    int n_ids;
} fixture_item;

typedef struct {
    fixture_item *items;
    int n, dim, max_len;
    float *emb; /* [n x dim] or NULL */
} fixture;

static char *fixture_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

/* The source tree and the shared data: $RTR_SOURCE_DIR / $RTR_SHARED_DATA
 * when set (a test binary run away from the tree it was built in, as on a
 * lent GPU machine: tools/device-bundle), else the configure-time paths. */
static const char *fixture_source_dir(void) {
    const char *env = getenv("RTR_SOURCE_DIR");
    return env && *env ? env : RTR_SOURCE_DIR;
}
static const char *fixture_shared_dir(void) {
    const char *env = getenv("RTR_SHARED_DATA");
    return env && *env ? env : RTR_SHARED_DATA;
}

/* The model folder: $RTR_MODELS_DIR/<name>, else <source>/data/models/<name>. */
static const char *fixture_model_dir(const char *name) {
    static char path[1024];
    const char *env = getenv("RTR_MODELS_DIR");
    if (env && *env) snprintf(path, sizeof path, "%s/%s/model.safetensors", env, name);
    else snprintf(path, sizeof path, "%s/data/models/%s/model.safetensors", fixture_source_dir(), name);
    if (access(path, R_OK) != 0) return NULL;
    *strrchr(path, '/') = 0;
    return path;
}

/* Question texts by question_id from the shared CSV (RFC 4180), or NULL. */
static char **fixture_questions(int *count) {
    char csv_path[1024];
    snprintf(csv_path, sizeof csv_path, "%s/rtr_questions/all_questions_merged.csv", fixture_shared_dir());
    char *csv = fixture_slurp(csv_path, NULL);
    if (!csv) return NULL;
    int cap = 4096;
    char **q = calloc((size_t)cap, sizeof *q);
    char *p = csv, field[4][1 << 16];
    int first = 1;
    *count = 0;
    while (*p) {
        int nf = 0;
        size_t fl = 0;
        int quoted = 0;
        for (; *p; p++) { /* one record */
            if (quoted) {
                if (*p == '"' && p[1] == '"') { if (fl + 1 < sizeof field[0]) field[nf][fl++] = '"'; p++; }
                else if (*p == '"') quoted = 0;
                else if (fl + 1 < sizeof field[0]) field[nf][fl++] = *p;
            } else if (*p == '"') {
                quoted = 1;
            } else if (*p == ',' || *p == '\n') {
                if (nf < 4) field[nf][fl] = 0;
                if (*p == '\n') { nf++; p++; break; }
                if (nf < 3) nf++;
                fl = 0;
            } else if (*p != '\r' && nf < 4 && fl + 1 < sizeof field[0]) {
                field[nf][fl++] = *p;
            }
        }
        if (first) { first = 0; continue; } /* header */
        if (nf < 4) continue;
        int id = atoi(field[0]);
        if (id >= 0 && id < cap) {
            q[id] = strdup(field[3]);
            if (id + 1 > *count) *count = id + 1;
        }
    }
    free(csv);
    return q;
}

static size_t fixture_b64_decode(const char *in, char *out) {
    static const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *in && *in != '='; in++) {
        const char *c = strchr(tab, *in);
        if (!c) continue;
        acc = acc << 6 | (uint32_t)(c - tab);
        bits += 6;
        if (bits >= 8) { bits -= 8; out[n++] = (char)(acc >> bits); }
    }
    return n;
}

/* Load the fixture of model `name`; 0 on success. */
static inline int fixture_load(const char *name, fixture *fx) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/encoder/%s/tokens.json", fixture_source_dir(), name);
    char *text = fixture_slurp(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!root) return -1;
    int nq = 0;
    char **questions = fixture_questions(&nq);
    const cJSON *items = cJSON_GetObjectItem(root, "items");
    memset(fx, 0, sizeof *fx);
    fx->n = cJSON_GetArraySize(items);
    fx->dim = cJSON_GetObjectItem(root, "dim")->valueint;
    fx->max_len = cJSON_GetObjectItem(root, "max_seq_length")->valueint;
    fx->items = calloc((size_t)fx->n, sizeof *fx->items);
    int i = 0;
    for (const cJSON *it = items->child; it; it = it->next, i++) {
        fixture_item *x = &fx->items[i];
        const cJSON *qid = cJSON_GetObjectItem(it, "qid"), *b64 = cJSON_GetObjectItem(it, "text_b64");
        if (qid) {
            snprintf(x->label, sizeof x->label, "question %d", qid->valueint);
            if (questions && qid->valueint < nq && questions[qid->valueint])
                x->text = strdup(questions[qid->valueint]);
        } else {
            snprintf(x->label, sizeof x->label, "%s", cJSON_GetObjectItem(it, "label")->valuestring);
            x->text = malloc(strlen(b64->valuestring) + 1);
            x->len = fixture_b64_decode(b64->valuestring, x->text);
        }
        if (qid && x->text) x->len = strlen(x->text);
        const cJSON *ids = cJSON_GetObjectItem(it, "ids");
        x->n_ids = cJSON_GetArraySize(ids);
        x->ids = malloc(sizeof *x->ids * (size_t)(x->n_ids ? x->n_ids : 1));
        int k = 0;
        for (const cJSON *v = ids->child; v; v = v->next) x->ids[k++] = v->valueint;
    }
    for (int k = 0; questions && k < nq; k++) free(questions[k]);
    free(questions);
    cJSON_Delete(root);
    snprintf(path, sizeof path, "%s/tests/fixtures/encoder/%s/embeddings.f32", fixture_source_dir(), name);
    size_t nbytes = 0;
    fx->emb = (float *)fixture_slurp(path, &nbytes);
    if (fx->emb && nbytes != (size_t)fx->n * (size_t)fx->dim * sizeof(float)) {
        free(fx->emb);
        fx->emb = NULL;
    }
    return 0;
}

static inline void fixture_free(fixture *fx) {
    for (int i = 0; i < fx->n; i++) {
        free(fx->items[i].text);
        free(fx->items[i].ids);
    }
    free(fx->items);
    free(fx->emb);
}

#endif
