/* WordPiece tokenizer reproducing Hugging Face `tokenizers` for BERT-style
 * models (BertNormalizer + BertPreTokenizer + WordPiece + the single-sequence
 * template <cls> … <sep>), with Unicode data from utf8proc.
 *
 * Pipeline for one text: decode UTF-8 (an invalid sequence becomes U+FFFD)
 * → split off added tokens matched on the raw text ("[CLS]", "<s>", …) →
 * normalise each remaining segment (clean, CJK spacing, NFD + drop Mn,
 * lower-case) → split off added tokens matched on normalised text → split on
 * whitespace and punctuation → WordPiece, longest match first → truncate. */
#include "rtr/encoder.h"
#include "common/json.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

typedef struct {
    int32_t *cps; /* content as code points */
    int n;
    int32_t id;
    bool lstrip, rstrip, normalized;
} added_token;

struct rtr_tokenizer {
    char **keys;       /* open-addressing table of vocabulary strings */
    int32_t *vals;
    size_t cap;        /* power of two */
    int32_t vocab_size; /* 1 + the largest id */
    int32_t cls_id, sep_id, pad_id, unk_id;
    bool clean_text, chinese, strip_accents, lowercase;
    int max_chars_per_word;
    char prefix[16];   /* continuing-subword prefix, "##" */
    added_token *added;
    int n_added;
    int max_len;          /* 0: the folder's is one rtr cannot honour (max_len_error says why) */
    char *max_len_error;
};

/* ---- vocabulary table --------------------------------------------------- */

static size_t vocab_slot(const rtr_tokenizer *t, const char *s, size_t len) {
    size_t i = (size_t)rtr_hash64(RTR_FNV_SEED, s, len) & (t->cap - 1);
    while (t->keys[i] && (strncmp(t->keys[i], s, len) != 0 || t->keys[i][len] != 0))
        i = (i + 1) & (t->cap - 1);
    return i;
}

/* Id of the len-byte string s, or -1. */
static int32_t vocab_get(const rtr_tokenizer *t, const char *s, size_t len) {
    size_t i = vocab_slot(t, s, len);
    return t->keys[i] ? t->vals[i] : -1;
}

static rtr_status vocab_init(rtr_tokenizer *t, size_t n) {
    t->cap = 16;
    while (t->cap < 2 * n) t->cap *= 2;
    t->keys = rtr_calloc(t->cap, sizeof *t->keys);
    t->vals = rtr_calloc(t->cap, sizeof *t->vals);
    return t->keys && t->vals ? RTR_OK : RTR_ERR_NOMEM;
}

static rtr_status vocab_put(rtr_tokenizer *t, const char *s, int32_t id, const char *file) {
    if (id < 0 || id > (1 << 24)) return rtr_fail(RTR_ERR_FORMAT, "%s: token '%s' has id %d out of range", file, s, id);
    size_t i = vocab_slot(t, s, strlen(s));
    /* a token listed twice takes its last id, as in Hugging Face's loaders
     * (a map insert per line of vocab.txt or per key of the JSON object) */
    if (!t->keys[i] && !(t->keys[i] = rtr_strdup(s))) return RTR_ERR_NOMEM;
    t->vals[i] = id;
    if (id >= t->vocab_size) t->vocab_size = id + 1;
    return RTR_OK;
}

/* ---- Unicode classes (Hugging Face tokenizers' definitions) --------------- */

/* Rust char::is_whitespace: the White_Space property. */
static bool is_ws(int32_t c) {
    if ((c >= 9 && c <= 13) || c == 0x85) return true;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

/* Cc, Cf, Co, Cs except tab, newline, carriage return. Unassigned code
 * points (Cn) are kept, as the tokenizers library does (they become unk). */
static bool is_control(int32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CS:
        return true;
    default:
        return false;
    }
}

/* ASCII symbols count as punctuation as well as the Unicode P* categories. */
static bool is_punct(int32_t c) {
    if (c < 128) return c > 32 && ispunct(c);
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/* The CJK blocks BERT spaces out (as written in tokenizers' bert normaliser). */
static bool is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* ---- growable code point buffer ------------------------------------------ */

typedef struct {
    int32_t *v;
    size_t n, cap;
} cpbuf;

static bool cp_push(cpbuf *b, int32_t c) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        int32_t *v = rtr_realloc(b->v, cap * sizeof *v);
        if (!v) return false;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = c;
    return true;
}

/* Bytes to code points; each invalid byte becomes U+FFFD (dropped later). */
static bool decode_utf8(cpbuf *out, const char *s, size_t len) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0) {
            c = 0xFFFD;
            k = 1;
        }
        if (!cp_push(out, c)) return false;
        i += (size_t)k;
    }
    return true;
}

/* BertNormalizer on in[0..n) appended to out. */
static bool normalize(const rtr_tokenizer *t, const int32_t *in, size_t n, cpbuf *out) {
    size_t start = out->n;
    for (size_t i = 0; i < n; i++) {
        int32_t c = in[i];
        if (t->clean_text) {
            if (c == 0 || c == 0xFFFD || is_control(c)) continue;
            if (is_ws(c)) c = ' ';
        }
        bool pad = t->chinese && is_cjk(c);
        if ((pad && !cp_push(out, ' ')) || !cp_push(out, c) || (pad && !cp_push(out, ' '))) return false;
    }
    if (t->strip_accents) {
        /* NFD: decompose, then canonical ordering of combining classes */
        cpbuf d = {0};
        for (size_t i = start; i < out->n; i++) {
            utf8proc_int32_t tmp[32];
            int last = 0;
            utf8proc_ssize_t k = utf8proc_decompose_char(out->v[i], tmp, 32, UTF8PROC_DECOMPOSE, &last);
            if (k < 0 || k > 32) { tmp[0] = out->v[i]; k = 1; }
            for (utf8proc_ssize_t j = 0; j < k; j++)
                if (!cp_push(&d, tmp[j])) { free(d.v); return false; }
        }
        for (size_t i = 1; i < d.n; i++) {
            for (size_t j = i; j > 0; j--) {
                int ca = utf8proc_get_property(d.v[j - 1])->combining_class;
                int cb = utf8proc_get_property(d.v[j])->combining_class;
                if (cb == 0 || ca <= cb) break;
                int32_t x = d.v[j - 1];
                d.v[j - 1] = d.v[j];
                d.v[j] = x;
            }
        }
        out->n = start;
        for (size_t i = 0; i < d.n; i++)
            if (utf8proc_category(d.v[i]) != UTF8PROC_CATEGORY_MN && !cp_push(out, d.v[i])) {
                free(d.v);
                return false;
            }
        free(d.v);
    }
    if (t->lowercase)
        for (size_t i = start; i < out->n; i++) out->v[i] = utf8proc_tolower(out->v[i]);
    return true;
}

/* ---- encoding --------------------------------------------------------- */

typedef struct {
    const rtr_tokenizer *t;
    int32_t *ids;
    int n, limit; /* limit: body tokens wanted before the closing special */
    char *word;   /* scratch UTF-8 for WordPiece lookups */
    size_t word_cap;
    bool nomem;
} enc_ctx;

static bool full(const enc_ctx *e) { return e->n >= e->limit || e->nomem; }

static void emit(enc_ctx *e, int32_t id) {
    if (!full(e)) e->ids[e->n++] = id;
}

/* WordPiece on one pre-token w[0..n): longest vocabulary match first, later
 * pieces with the continuing prefix; a word with no full cover is one unk. */
static void wordpiece(enc_ctx *e, const int32_t *w, size_t n) {
    const rtr_tokenizer *t = e->t;
    if (n == 0) return;
    if ((int)n > t->max_chars_per_word) {
        emit(e, t->unk_id);
        return;
    }
    size_t plen = strlen(t->prefix), need = 2 * (plen + 4 * n + 1);
    if (need > e->word_cap) {
        char *nw = rtr_realloc(e->word, need);
        if (!nw) {
            e->nomem = true;
            return;
        }
        e->word = nw;
        e->word_cap = need;
    }
    /* word: UTF-8 of the whole word, off[i] = byte offset of char i;
     * key: the candidate piece, with the prefix after the first piece */
    char *word = e->word, *key = e->word + need / 2;
    size_t off[101], pos = 0;
    for (size_t i = 0; i < n; i++) {
        off[i] = pos;
        pos += (size_t)utf8proc_encode_char(w[i], (utf8proc_uint8_t *)word + pos);
    }
    off[n] = pos;
    int32_t pieces[101];
    int np = 0;
    for (size_t start = 0; start < n;) {
        size_t kp = start ? plen : 0, end = n;
        int32_t id = -1;
        memcpy(key, t->prefix, kp);
        for (; end > start && id < 0; end--) {
            memcpy(key + kp, word + off[start], off[end] - off[start]);
            id = vocab_get(t, key, kp + off[end] - off[start]);
        }
        if (id < 0) {
            emit(e, t->unk_id);
            return;
        }
        pieces[np++] = id;
        start = end + 1;
    }
    for (int i = 0; i < np; i++) emit(e, pieces[i]);
}

/* Pre-tokenise a normalised segment (whitespace and punctuation) + WordPiece. */
static void pretokenize(enc_ctx *e, const int32_t *s, size_t n) {
    size_t word = 0;
    for (size_t i = 0; i < n && !full(e); i++) {
        if (is_ws(s[i]) || is_punct(s[i])) {
            wordpiece(e, s + word, i - word);
            if (is_punct(s[i])) wordpiece(e, s + i, 1);
            word = i + 1;
        }
    }
    if (!full(e)) wordpiece(e, s + word, n - word);
}

/* Longest added token (of the given normalized stage) matching at s[i]. */
static const added_token *match_added(const rtr_tokenizer *t, const int32_t *s, size_t n, size_t i,
                                      bool normalized) {
    const added_token *best = NULL;
    for (int k = 0; k < t->n_added; k++) {
        const added_token *a = &t->added[k];
        if (a->normalized != normalized || a->n == 0 || (size_t)a->n > n - i || (best && best->n >= a->n)) continue;
        if (memcmp(s + i, a->cps, (size_t)a->n * sizeof *s) == 0) best = a;
    }
    return best;
}

static void segment(enc_ctx *e, const int32_t *s, size_t n, bool normalized);

/* Split s on added tokens of one stage; gaps go to the next stage. */
static void split_added(enc_ctx *e, const int32_t *s, size_t n, bool normalized) {
    if (n == 0) return; /* s may be NULL */
    size_t gap = 0;
    for (size_t i = 0; i < n && !full(e);) {
        const added_token *a = match_added(e->t, s, n, i, normalized);
        if (!a) {
            i++;
            continue;
        }
        size_t gap_end = i;
        if (a->lstrip)
            while (gap_end > gap && is_ws(s[gap_end - 1])) gap_end--;
        segment(e, s + gap, gap_end - gap, normalized);
        emit(e, a->id);
        i += (size_t)a->n;
        if (a->rstrip)
            while (i < n && is_ws(s[i])) i++;
        gap = i;
    }
    if (!full(e)) segment(e, s + gap, n - gap, normalized);
}

/* A gap between raw-text added tokens is normalised, then split again on
 * normalised added tokens; a gap at that stage is pre-tokenised. */
static void segment(enc_ctx *e, const int32_t *s, size_t n, bool normalized) {
    if (n == 0 || full(e)) return;
    if (normalized) {
        pretokenize(e, s, n);
        return;
    }
    cpbuf norm = {0};
    if (!normalize(e->t, s, n, &norm)) e->nomem = true;
    else split_added(e, norm.v, norm.n, true);
    free(norm.v);
}

rtr_status rtr_tokenizer_encode(const rtr_tokenizer *tok, int32_t *ids, int *n_ids,
                                const char *text, size_t len, int max_len) {
    if (max_len <= 0 && tok->max_len_error) return rtr_fail(RTR_ERR_INVALID, "%s", tok->max_len_error);
    if (max_len <= 0) max_len = tok->max_len;
    if (max_len < 2) return rtr_fail(RTR_ERR_INVALID, "tokenizer: max_len %d < 2", max_len);
    enc_ctx e = {.t = tok, .ids = ids, .limit = max_len - 1};
    emit(&e, tok->cls_id);
    cpbuf raw = {0};
    if (!decode_utf8(&raw, text, len)) e.nomem = true;
    else split_added(&e, raw.v, raw.n, false);
    free(raw.v);
    free(e.word);
    if (e.nomem) return RTR_ERR_NOMEM;
    ids[e.n++] = tok->sep_id;
    *n_ids = e.n;
    return RTR_OK;
}

/* ---- loading ------------------------------------------------------------ */

static rtr_status add_token(rtr_tokenizer *t, const char *content, int32_t id, bool lstrip, bool rstrip,
                            bool normalized) {
    if (id < 0 || id > (1 << 24)) return rtr_fail(RTR_ERR_FORMAT, "tokenizer: added token '%s' has id %d out of range", content, id);
    added_token *na = rtr_realloc(t->added, (size_t)(t->n_added + 1) * sizeof *na);
    if (!na) return RTR_ERR_NOMEM;
    t->added = na;
    added_token *a = &na[t->n_added];
    memset(a, 0, sizeof *a);
    cpbuf b = {0};
    if (!decode_utf8(&b, content, strlen(content))) return RTR_ERR_NOMEM;
    t->n_added++;
    *a = (added_token){b.v, (int)b.n, id, lstrip, rstrip, normalized};
    if (id >= t->vocab_size) t->vocab_size = id + 1;
    return RTR_OK;
}

static bool json_bool(const cJSON *o, const char *key, bool dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static const char *json_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content"); /* AddedToken form */
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Id of a special token named in a file, which must be in the vocabulary. */
static rtr_status special_id(rtr_tokenizer *t, const char *name, const char *file, const char *field,
                             int32_t *id) {
    *id = name ? vocab_get(t, name, strlen(name)) : -1;
    if (*id < 0)
        return rtr_fail(RTR_ERR_FORMAT, "%s: %s '%s' is not in the vocabulary", file, field, name ? name : "(missing)");
    return RTR_OK;
}

static rtr_status load_tokenizer_json(rtr_tokenizer *t, const char *path, const char *text) {
    const char *why;
    cJSON *root = rtr_json_parse(text, &why, NULL);
    if (!root) return rtr_fail(RTR_ERR_FORMAT, "%s: not valid JSON%s", path, why);
    rtr_status s = RTR_OK;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const char *type = json_str(model, "type");
    if (!type || strcmp(type, "WordPiece") != 0 || !cJSON_IsObject(vocab)) {
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field 'model.type' is '%s', only WordPiece is supported", path,
                     type ? type : "(missing)");
        goto done;
    }
    if ((s = vocab_init(t, (size_t)cJSON_GetArraySize(vocab)))) goto done;
    for (const cJSON *v = vocab->child; v && !s; v = v->next) {
        double id = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        if (!(id >= 0 && id <= (1 << 24) && id == floor(id))) /* checked before the conversion: NaN, huge */
            s = rtr_fail(RTR_ERR_FORMAT, "%s: model.vocab['%s'] is not an id (an integer in [0, 2^24])", path, v->string);
        else s = vocab_put(t, v->string, (int32_t)id, path);
    }
    if (s) goto done;
    const char *prefix = json_str(model, "continuing_subword_prefix");
    snprintf(t->prefix, sizeof t->prefix, "%s", prefix ? prefix : "##");
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
    t->max_chars_per_word = 100;
    if (mc && !cJSON_IsNull(mc)) {
        /* WordPiece keeps a word's pieces on the stack: up to 100 characters
         * (every released BERT and MPNet); another limit would tokenize
         * differently, so it is refused rather than changed. */
        double v = cJSON_IsNumber(mc) ? mc->valuedouble : NAN;
        if (!(v >= 1 && v <= 100 && v == floor(v))) {
            s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field 'model.max_input_chars_per_word' must be an integer in [1, 100]",
                         path);
            goto done;
        }
        t->max_chars_per_word = (int)v;
    }
    if ((s = special_id(t, json_str(model, "unk_token"), path, "model.unk_token", &t->unk_id))) goto done;

    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (cJSON_IsObject(norm)) {
        const char *nt = json_str(norm, "type");
        if (!nt || strcmp(nt, "BertNormalizer") != 0) {
            s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field 'normalizer.type' is '%s', only BertNormalizer is supported",
                         path, nt ? nt : "(missing)");
            goto done;
        }
        t->clean_text = json_bool(norm, "clean_text", true);
        t->chinese = json_bool(norm, "handle_chinese_chars", true);
        t->lowercase = json_bool(norm, "lowercase", true);
        t->strip_accents = json_bool(norm, "strip_accents", t->lowercase);
    }
    const char *pt = json_str(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), "type");
    if (!pt || strcmp(pt, "BertPreTokenizer") != 0) {
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field 'pre_tokenizer.type' is '%s', only BertPreTokenizer is supported",
                     path, pt ? pt : "(missing)");
        goto done;
    }

    /* special tokens around a single sequence */
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    const char *ppt = json_str(post, "type");
    if (ppt && (!strcmp(ppt, "RobertaProcessing") || !strcmp(ppt, "BertProcessing"))) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(post, "cls"), *sep = cJSON_GetObjectItemCaseSensitive(post, "sep");
        if (!cJSON_IsNumber(cJSON_GetArrayItem(cls, 1)) || !cJSON_IsNumber(cJSON_GetArrayItem(sep, 1))) {
            s = rtr_fail(RTR_ERR_FORMAT, "%s: field 'post_processor.cls'/'sep' is not [token, id]", path);
            goto done;
        }
        t->cls_id = cJSON_GetArrayItem(cls, 1)->valueint;
        t->sep_id = cJSON_GetArrayItem(sep, 1)->valueint;
    } else if (ppt && !strcmp(ppt, "TemplateProcessing")) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(post, "single");
        const cJSON *specials = cJSON_GetObjectItemCaseSensitive(post, "special_tokens");
        int32_t found[2] = {-1, -1};
        if (cJSON_GetArraySize(single) == 3) {
            for (int k = 0; k < 2; k++) {
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(single, k * 2), "SpecialToken");
                const cJSON *ids = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(specials, json_str(st, "id") ? json_str(st, "id") : ""), "ids");
                if (cJSON_GetArraySize(ids) == 1 && cJSON_IsNumber(ids->child)) found[k] = ids->child->valueint;
            }
        }
        if (found[0] < 0 || found[1] < 0) {
            s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field 'post_processor.single' is not [special, A, special]", path);
            goto done;
        }
        t->cls_id = found[0];
        t->sep_id = found[1];
    } else {
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field 'post_processor.type' is '%s' (want TemplateProcessing, "
                     "RobertaProcessing or BertProcessing)", path, ppt ? ppt : "(missing)");
        goto done;
    }
    if (t->cls_id < 0 || t->sep_id < 0 || t->cls_id >= t->vocab_size || t->sep_id >= t->vocab_size) {
        s = rtr_fail(RTR_ERR_FORMAT, "%s: post_processor special token ids %d/%d outside the vocabulary", path,
                     t->cls_id, t->sep_id);
        goto done;
    }
    const cJSON *padding = cJSON_GetObjectItemCaseSensitive(root, "padding");
    const cJSON *pad_id = cJSON_GetObjectItemCaseSensitive(padding, "pad_id");
    t->pad_id = cJSON_IsNumber(pad_id) ? pad_id->valueint : 0;

    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    for (const cJSON *a = cJSON_IsArray(added) ? added->child : NULL; a && !s; a = a->next) {
        const char *content = json_str(a, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (!content || !cJSON_IsNumber(id)) {
            s = rtr_fail(RTR_ERR_FORMAT, "%s: an entry of 'added_tokens' lacks 'content' or 'id'", path);
            break;
        }
        s = add_token(t, content, id->valueint, json_bool(a, "lstrip", false), json_bool(a, "rstrip", false),
                      json_bool(a, "normalized", true));
    }
done:
    cJSON_Delete(root);
    return s;
}

/* A JSON file of the folder, NULL (and RTR_OK) when it is not there. */
static rtr_status read_json_opt(const char *dir, const char *name, cJSON **out) {
    *out = NULL;
    char *path = rtr_sprintf("%s/%s", dir, name), *text = NULL;
    if (!path) return RTR_ERR_NOMEM;
    rtr_status s = RTR_OK;
    if (rtr_path_exists(path)) {
        const char *why;
        s = rtr_read_file(path, &text, NULL);
        if (!s && !(*out = rtr_json_parse(text, &why, NULL))) s = rtr_fail(RTR_ERR_FORMAT, "%s: not valid JSON%s", path, why);
    }
    free(text);
    free(path);
    return s;
}

/* A word piece with an upper-case ASCII letter, special tokens ("[CLS]",
 * "<s>") aside: a cased model's vocabulary, which an uncased one lacks. */
static bool cased_piece(const char *w) {
    size_t n = strlen(w);
    if (n >= 2 && ((w[0] == '[' && w[n - 1] == ']') || (w[0] == '<' && w[n - 1] == '>'))) return false;
    for (; *w; w++)
        if (*w >= 'A' && *w <= 'Z') return true;
    return false;
}

/* vocab.txt (one token per line, id = line number) + tokenizer_config.json.
 * Without tokenizer_config.json, as transformers' BertTokenizer: the special
 * tokens of special_tokens_map.json, else BERT's ([CLS], [SEP], [PAD],
 * [UNK], [MASK]), and lower-casing, which is right for an uncased
 * vocabulary only: one holding cased pieces is refused (transformers would
 * lower-case every text for it, a model trained on cased text). */
static rtr_status load_vocab_txt(rtr_tokenizer *t, const char *dir) {
    char *vpath = rtr_sprintf("%s/vocab.txt", dir), *cpath = rtr_sprintf("%s/tokenizer_config.json", dir);
    char *vtext = NULL, *cased = NULL;
    cJSON *cfg = NULL, *map = NULL;
    rtr_status s = vpath && cpath ? rtr_read_file(vpath, &vtext, NULL) : RTR_ERR_NOMEM;
    if (!s) s = read_json_opt(dir, "tokenizer_config.json", &cfg);
    if (!s && !cfg) s = read_json_opt(dir, "special_tokens_map.json", &map);
    if (s) goto done;
    size_t lines = 1;
    for (const char *p = vtext; *p; p++) lines += *p == '\n';
    if ((s = vocab_init(t, lines))) goto done;
    int32_t id = 0;
    for (char *line = vtext, *next; line && *line && !s; line = next, id++) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r') line[n - 1] = 0;
        if (!cfg && !cased && cased_piece(line) && !(cased = rtr_sprintf("line %d: '%s'", id + 1, line))) s = RTR_ERR_NOMEM;
        if (!s) s = vocab_put(t, line, id, vpath);
    }
    if (s) goto done;
    if (cased) {
        s = rtr_fail(RTR_ERR_FORMAT,
                     "%s: no tokenizer_config.json to say whether to lower-case, and vocab.txt holds cased tokens "
                     "(%s), so it may not be BERT's default (lower-case): add the model's tokenizer_config.json "
                     "(with do_lower_case) or tokenizer.json",
                     dir, cased);
        goto done;
    }
    snprintf(t->prefix, sizeof t->prefix, "##");
    t->max_chars_per_word = 100;
    t->clean_text = true;
    t->lowercase = json_bool(cfg, "do_lower_case", true);
    t->chinese = json_bool(cfg, "tokenize_chinese_chars", true);
    t->strip_accents = json_bool(cfg, "strip_accents", t->lowercase);
    const char *fields[5] = {"cls_token", "sep_token", "pad_token", "unk_token", "mask_token"};
    const char *bert[5] = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"};
    int32_t *dest[4] = {&t->cls_id, &t->sep_id, &t->pad_id, &t->unk_id};
    for (int k = 0; k < 5 && !s; k++) {
        const char *name = cfg ? json_str(cfg, fields[k]) : json_str(map, fields[k]), *from = cfg ? cpath : NULL;
        int32_t sid;
        bool dflt = !cfg && !name;
        if (dflt) name = bert[k];
        if (k == 4 && (!name || (dflt && vocab_get(t, name, strlen(name)) < 0))) break; /* a mask token is optional */
        if (from) s = special_id(t, name, from, fields[k], &sid);
        else if ((sid = vocab_get(t, name, strlen(name))) < 0)
            s = rtr_fail(RTR_ERR_FORMAT,
                         "%s: no tokenizer_config.json, and %s's %s '%s' is not in vocab.txt: add the model's "
                         "tokenizer_config.json (naming its special tokens) or tokenizer.json",
                         dir, dflt ? "BERT's default" : "special_tokens_map.json", fields[k], name);
        if (!s && k < 4) *dest[k] = sid;
        if (!s) s = add_token(t, name, sid, false, false, false);
    }
done:
    cJSON_Delete(cfg);
    cJSON_Delete(map);
    free(vtext);
    free(cased);
    free(vpath);
    free(cpath);
    return s;
}

/* The max length: sentence_bert_config.json's max_seq_length, else the
 * tokenizer's model_max_length, else 512. A value rtr cannot honour (not a
 * whole number >= 2, or a max_seq_length past 512) leaves the max length 0
 * and says why in *why (caller frees): a length the caller gives overrides
 * it, and without one it is refused naming the file and key (it used to be
 * skipped silently, so the folder embedded with another length than it asks
 * for). A file that does not parse is refused here. A model_max_length past
 * 512 is capped at 512 (Hugging Face writes 1e30 there for "no limit"); the
 * encoder then refuses a length past its positions. */
static rtr_status folder_max_len(const char *dir, int *out, char **why) {
    const char *files[2] = {"sentence_bert_config.json", "tokenizer_config.json"};
    const char *keys[2] = {"max_seq_length", "model_max_length"};
    rtr_status s = RTR_OK;
    *out = 0;
    for (int k = 0; k < 2 && !s && !*out; k++) {
        char *path = rtr_sprintf("%s/%s", dir, files[k]), *text = NULL;
        cJSON *j = NULL;
        if (!path) return RTR_ERR_NOMEM;
        if (rtr_path_exists(path)) {
            s = rtr_read_file(path, &text, NULL);
            const char *bad;
            if (!s && !(j = rtr_json_parse(text, &bad, NULL))) s = rtr_fail(RTR_ERR_FORMAT, "%s: not valid JSON%s", path, bad);
        }
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
        if (!s && v && !cJSON_IsNull(v)) {
            double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            if (x >= 2 && x == floor(x) && (k == 1 || x <= 512))
                *out = x > 512 ? 512 : (int)x;
            else {
                *why = cJSON_IsNumber(v) ? rtr_sprintf("%s: %s %g: want a whole number %s (or give a max length: "
                                                       "--max-length)", path, keys[k], x, k ? ">= 2" : "in [2, 512]")
                                         : rtr_sprintf("%s: %s: not a number (or give a max length: --max-length)",
                                                       path, keys[k]);
                s = *why ? RTR_OK : RTR_ERR_NOMEM;
                k = 2; /* no fallback to the next file: the folder says a length, a wrong one */
            }
        }
        cJSON_Delete(j);
        free(text);
        free(path);
    }
    if (!s && !*out && !*why) *out = 512;
    return s;
}

rtr_status rtr_tokenizer_load(rtr_tokenizer **out, const char *model_dir) {
    *out = NULL;
    rtr_tokenizer *t = rtr_calloc(1, sizeof *t);
    char *path = rtr_sprintf("%s/tokenizer.json", model_dir), *text = NULL;
    if (!t || !path) {
        free(t);
        free(path);
        return RTR_ERR_NOMEM;
    }
    rtr_status s;
    if (rtr_path_exists(path)) {
        s = rtr_read_file(path, &text, NULL);
        if (!s) s = load_tokenizer_json(t, path, text);
    } else {
        char *vpath = rtr_sprintf("%s/vocab.txt", model_dir);
        s = vpath && rtr_path_exists(vpath)
                ? load_vocab_txt(t, model_dir)
                : rtr_fail(RTR_ERR_IO, "%s: no tokenizer.json or vocab.txt in the model folder", model_dir);
        free(vpath);
    }
    free(text);
    free(path);
    if (!s) s = folder_max_len(model_dir, &t->max_len, &t->max_len_error);
    if (s) {
        rtr_tokenizer_free(t);
        return s;
    }
    *out = t;
    return RTR_OK;
}

void rtr_tokenizer_free(rtr_tokenizer *t) {
    if (!t) return;
    for (size_t i = 0; t->keys && i < t->cap; i++) free(t->keys[i]);
    for (int k = 0; k < t->n_added; k++) free(t->added[k].cps);
    free(t->added);
    free(t->keys);
    free(t->vals);
    free(t->max_len_error);
    free(t);
}

int rtr_tokenizer_max_length(const rtr_tokenizer *t) { return t->max_len; }
const char *rtr_tokenizer_max_length_error(const rtr_tokenizer *t) { return t->max_len_error; }
int32_t rtr_tokenizer_pad_id(const rtr_tokenizer *t) { return t->pad_id; }
int32_t rtr_tokenizer_vocab_size(const rtr_tokenizer *t) { return t->vocab_size; }
