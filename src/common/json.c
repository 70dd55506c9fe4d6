/* JSON helpers (json.h). */
#include "common/json.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

void rtr_json_add_number(cJSON *o, const char *key, double v) {
    if (isnan(v) || isinf(v)) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, v);
}

static int key_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

const char *rtr_json_duplicate_key(const cJSON *obj) {
    if (!cJSON_IsObject(obj)) return NULL;
    size_t m = 0;
    for (const cJSON *a = obj->child; a; a = a->next) m++;
    if (m <= 16) { /* the usual object: pairwise */
        for (const cJSON *a = obj->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (a->string && b->string && !strcmp(a->string, b->string)) return a->string;
        return NULL;
    }
    /* many keys (hostile input): sorted, so it stays O(m log m) */
    const char **keys = malloc(m * sizeof *keys), *dup = NULL;
    if (!keys) return NULL;
    size_t i = 0;
    for (const cJSON *a = obj->child; a; a = a->next) keys[i++] = a->string ? a->string : "";
    qsort(keys, m, sizeof *keys, key_cmp);
    for (i = 1; i < m && !dup; i++)
        if (!strcmp(keys[i - 1], keys[i])) dup = keys[i];
    free(keys);
    return dup;
}

bool rtr_json_integer(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double x = v->valuedouble;
    if (!(fabs(x) <= 9007199254740992.0) || x != floor(x)) return false;
    *out = (int64_t)x;
    return true;
}

cJSON *rtr_json_parse(const char *text, const char **why, int *line) {
    static char buf[128];
    const char *end = text + strspn(text, " \t\r\n");
    *why = "";
    if (line) *line = 0;
    if (!*end) {
        *why = ": the file is empty (or only white space)";
        return NULL;
    }
    cJSON *root = cJSON_ParseWithOpts(text, &end, false);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        *why = rtr_json_error_hint(at, text + strlen(text));
        if (line) *line = 1;
        for (const char *p = text; line && at && p < at; p++) *line += *p == '\n';
        return NULL;
    }
    while (*end && strchr(" \t\r\n", *end)) end++;
    if (!*end) return root;
    cJSON_Delete(root);
    int n = 1;
    for (const char *p = text; p < end; p++) n += *p == '\n';
    snprintf(buf, sizeof buf, ": more text after the JSON value, at line %d (one JSON value per file)", n);
    *why = buf;
    return NULL;
}

const char *rtr_json_error_hint(const char *at, const char *end) {
    if (!at) return "";
    const char *p = at;
    while (p < end && strchr(" \t\r\n", *p)) p++;
    /* cJSON stops at the value it cannot read, or just before its sign */
    if (p < end && *p == '-') p++;
    if ((end - p >= 3 && !strncmp(p, "NaN", 3)) || (end - p >= 8 && !strncmp(p, "Infinity", 8)))
        return ": NaN and Infinity are not JSON (Python's json.dumps writes them): write null for a missing value";
    if (p == end) return ": the text ends before the JSON value closes (pretty-printed over several lines, or cut short?)";
    return "";
}
