/* JSON helpers (json.h). */
#include "common/json.h"

#include <ctype.h>
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

/* Line and column (in characters: UTF-8 continuation bytes do not count)
 * of at in text, both from 1. */
static void line_col(const char *text, const char *at, int *line, int *col) {
    *line = 1, *col = 1;
    for (const char *p = text; p < at; p++)
        if (*p == '\n') (*line)++, *col = 1;
        else if (((unsigned char)*p & 0xC0) != 0x80) (*col)++;
}

static int hex4(const char *p, const char *end) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (p + i >= end || !isxdigit((unsigned char)p[i])) return -1;
        v = v * 16 + (isdigit((unsigned char)p[i]) ? p[i] - '0' : tolower((unsigned char)p[i]) - 'a' + 10);
    }
    return v;
}

cJSON *rtr_json_parse(const char *text, const char **why, int *line) {
    static _Thread_local char buf[320]; /* *why: valid until this thread's next parse */
    const char *end = text + strspn(text, " \t\r\n");
    *why = "";
    if (line) *line = 0;
    if (!*end) {
        *why = ": the file is empty (or only white space)";
        return NULL;
    }
    /* where the parse ended, or failed, comes back in at: cJSON_GetErrorPtr()
     * is one global for the process, another thread's parse overwrites it */
    const char *at = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &at, false);
    if (root) end = at;
    else {
        const char *stop = text + strlen(text);
        int l = 1, c = 1;
        if (at) line_col(text, at, &l, &c);
        snprintf(buf, sizeof buf, " at line %d, column %d%s", l, c, rtr_json_error_hint(text, at, stop));
        *why = at ? buf : "";
        if (line) *line = l;
        return NULL;
    }
    const char *bad = rtr_json_bad_escape(text, end);
    if (bad) {
        cJSON_Delete(root);
        int l, c;
        line_col(text, bad, &l, &c);
        snprintf(buf, sizeof buf, " at line %d, column %d: \\u is not followed by 4 hex digits", l, c);
        if (line) *line = l;
        *why = buf;
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

const char *rtr_json_escaped_nul(const char *text) {
    for (const char *p = strstr(text, "\\u0000"); p; p = strstr(p + 1, "\\u0000")) {
        size_t run = 0;
        for (const char *q = p; q > text && q[-1] == '\\'; q--) run++;
        if (run % 2 == 0) return p;
    }
    return NULL;
}

const char *rtr_json_bad_escape(const char *text, const char *end) {
    bool in_str = false;
    for (const char *p = text; p < end; p++)
        if (!in_str) in_str = *p == '"';
        else if (*p == '"') in_str = false;
        else if (*p == '\\' && p + 1 < end) {
            if (p[1] == 'u' && hex4(p + 2, end) < 0) return p;
            p++;
        }
    return NULL;
}

/* The arrays and objects open at at (outside strings). */
static int depth_at(const char *text, const char *at) {
    int depth = 0;
    bool in_str = false;
    for (const char *p = text; p < at; p++)
        if (in_str) {
            if (*p == '\\' && p + 1 < at) p++;
            else if (*p == '"') in_str = false;
        } else if (*p == '"') in_str = true;
        else depth += (*p == '[' || *p == '{') - (*p == ']' || *p == '}');
    return depth;
}

const char *rtr_json_error_hint(const char *text, const char *at, const char *end) {
    static _Thread_local char buf[160];
    if (!at) return "";
    const char *p = at;
    /* cJSON stops at the \u escape it cannot turn into UTF-8 */
    if (end - p >= 2 && p[0] == '\\' && p[1] == 'u') {
        int u = hex4(p + 2, end);
        if (u < 0) return ": \\u is not followed by 4 hex digits";
        if (u >= 0xD800 && u <= 0xDFFF) {
            snprintf(buf, sizeof buf, ": lone UTF-16 surrogate \\u%.4s (%s; JSON text must be Unicode)", p + 2,
                     u < 0xDC00 ? "a high surrogate not followed by a low one, \\udc00 to \\udfff"
                                : "a low surrogate without a high one before it");
            return buf;
        }
    }
    /* cJSON refuses to open one more array or object past its limit */
    if ((*p == '[' || *p == '{') && text && depth_at(text, p) >= CJSON_NESTING_LIMIT) {
        snprintf(buf, sizeof buf, ": nesting deeper than %d arrays and objects", CJSON_NESTING_LIMIT);
        return buf;
    }
    while (p < end && strchr(" \t\r\n", *p)) p++;
    /* cJSON stops at the value it cannot read, or just before its sign */
    if (p < end && *p == '-') p++;
    if ((end - p >= 3 && !strncmp(p, "NaN", 3)) || (end - p >= 8 && !strncmp(p, "Infinity", 8)))
        return ": NaN and Infinity are not JSON (Python's json.dumps writes them): write null for a missing value";
    if (p == end) return ": the text ends before the JSON value closes (pretty-printed over several lines, or cut short?)";
    return "";
}
