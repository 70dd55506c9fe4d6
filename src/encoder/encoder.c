/* Sentence encoder: loads a Hugging Face / sentence-transformers folder
 * (BERT or MPNet) and runs the post-LN transformer on a compute backend
 * (include/rtr/backend.h): every linear layer is the backend's sgemm and the
 * rest its encoder ops (on the CPU the C ops of src/ref/encoder.c with the fast paths
 * of src/backend/ops_cpu.c, on a GPU the kernels of kernels/encoder.cu), ending in
 * the folder's sentence-transformers pooling (mean, mean_sqrt_len_tokens or
 * CLS) and, when its modules.json lists Normalize, L2 normalisation; a default
 * prompt of config_sentence_transformers.json (E5's "query: ") is prepended
 * to every text. Texts are sorted by token count and cut into batches of
 * similar length, so almost no padding is computed.
 *
 * Weights: every tensor is converted to float32 into one allocation (Q, K, V
 * fused into one [3C x C] matrix so each layer's projections are one GEMM).
 * A host backend (the CPU) computes on that allocation; any other gets one
 * copy, uploaded at load. Scratch for batch_tokens padded tokens lives in
 * backend memory; each batch's ids go up from pinned host memory and its
 * pooled rows come back the same way.
 *
 * Two forward passes. fp32 activations (forward): the CPU, and a GPU at
 * fp32 or fp16 (GEMM inputs rounded per call) — the reference path. bf16
 * activations end to end (forward_bf16): a GPU at bf16, where the encoder
 * is bound by memory traffic: the four linear layers' weights are kept in
 * bf16 (converted once at load), every activation between ops is bf16
 * (half the bytes), the QKV bias is added inside the flash attention
 * kernel, the feed-forward's bias and GELU follow its GEMM in one pass, and
 * each LayerNorm writes the next GEMM's bf16 input (docs/CUDA.md, roofline). */
#include "rtr/encoder.h"
#include "rtr/safetensors.h"
#include "common/json.h"
#include "common/util.h"
#include "encoder/batching.h"
#include "encoder/weights_hash.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef enum { ARCH_BERT, ARCH_MPNET } arch_kind;

typedef struct {
    rtr_bf16 *qkv_h, *o_h, *fc_h, *proj_h; /* the GEMM weights in bf16 (bf16 path) */
    float *qkv_w, *qkv_b; /* [3C x C], [3C] */
    float *o_w, *o_b;     /* [C x C], [C] */
    float *ln1_w, *ln1_b; /* after attention */
    float *fc_w, *fc_b;   /* [F x C], [F] */
    float *proj_w, *proj_b; /* [C x F], [C] */
    float *ln2_w, *ln2_b; /* after the feed-forward */
} layer_weights;

/* Default batch_tokens: the CPU's bounds its activations to cache-friendly
 * sizes; a GPU needs about 64k tokens in flight to fill an H100. */
#define BATCH_TOKENS_CPU 4096
#define BATCH_TOKENS_GPU 65536
/* On the CPU a batch is full at batch_tokens, or earlier once it holds
 * BATCH_MIN_PER_THREAD padded tokens per thread and the next text would
 * pad it past BATCH_PAD_MAX of its real tokens (encoder_batch_texts). */
#define BATCH_MIN_PER_THREAD 512
#define BATCH_PAD_MAX 0.05
/* Texts per batch at most: the CUDA attention's grid has one z-slice per text. */
#define BATCH_TEXTS_MAX 65535

struct rtr_encoder {
    arch_kind arch;
    int L, C, NH, F, V, P;   /* layers, hidden, heads, FFN, vocab, positions */
    float eps;
    int num_buckets, max_distance; /* MPNet relative position bias */
    int32_t pad_id;
    int max_len, batch_tokens, max_texts, n_threads;
    int batch_min;           /* padded tokens a batch takes whatever its padding (encoder_batch_texts) */
    rtr_backend own;         /* the backend when the encoder opened it */
    rtr_backend *b;          /* where everything runs: &own or the caller's */
    rtr_gemm_precision precision;
    float *params;           /* host float32 weights, one allocation (NULL once uploaded) */
    float *dev_params;       /* the backend's copy; NULL on a host backend */
    size_t n_params;
    bool held;               /* params or dev_params held on the backend (hold_weights) */
    /* the weights in the memory the backend computes on (params or dev_params) */
    float *wte, *wpe, *wtt, *emb_ln_w, *emb_ln_b, *rel_bias;
    layer_weights *layers;
    rtr_tokenizer *tok;
    /* the sentence-transformers modules after the transformer (read_modules) */
    rtr_pool_mode pool;
    bool normalize;
    bool prompt_excluded; /* Pooling's include_prompt false */
    char *prompt;         /* prepended to every text; NULL: none */
    size_t prompt_len;
    char *name;
    uint64_t weights_hash;
    char hash[17];
    /* backend scratch for batch_tokens rows; `in` holds a batch's ids,
     * position ids and lengths back to back, as staged in h_in */
    float *x, *qkv, *att_out, *tmp, *ffn, *att, *bias, *pooled;
    int32_t *in;
    /* the bf16 path (bf16 true): weights in bf16 (one allocation) and the
     * activations, instead of the fp32 ones above */
    bool bf16;
    rtr_bf16 *dev_bf16, *xh, *qkvh, *atth, *tmph, *ffnh;
    /* pinned host staging, two of each so the host prepares one batch and
     * reads back another while the backend computes: h_in [2 batch_tokens +
     * max_texts], h_pooled [max_texts x C] */
    int32_t *h_in[2];
    float *h_pooled[2];
};

rtr_encoder_params rtr_encoder_default_params(void) {
    return (rtr_encoder_params){.n_threads = 0, .max_seq_length = 0, .batch_tokens = 0, .device = "cpu",
                                .precision = "fp32"};
}

/* ---- loading -------------------------------------------------------------- */

/* An integer field; -1 (out of every field's range) when it is a number but
 * not an integer that fits, so 384.5 is refused rather than truncated. */
static int json_int(const cJSON *o, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return dflt;
    double d = v->valuedouble;
    return d >= -1 && d <= 1 << 30 && d == (double)(int)d ? (int)d : -1;
}

/* Why a model type sentence-transformers folders often have is refused
 * (appended to the error), or "". */
static const char *model_type_reason(const char *type) {
    static const struct {
        const char *type, *why;
    } known[] = {
        {"xlm-roberta", " (its tokenizer is a SentencePiece Unigram model; rtr tokenizes with WordPiece only)"},
        {"camembert", " (its tokenizer is a SentencePiece Unigram model; rtr tokenizes with WordPiece only)"},
        {"roberta", " (its tokenizer is byte-level BPE; rtr tokenizes with WordPiece only)"},
        {"nomic_bert", " (rotary position embeddings, which rtr does not implement)"},
        {"new", " (rotary position embeddings, which rtr does not implement)"},
        {"modernbert", " (rotary position embeddings and gated feed-forward layers, which rtr does not implement)"},
        {"distilbert", " (its weights are laid out differently from BERT's; not implemented)"},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(type, known[i].type)) return known[i].why;
    return "";
}

/* A JSON file of the folder, parsed; *cfg NULL when it does not exist. */
static rtr_status read_json(const char *path, cJSON **cfg) {
    *cfg = NULL;
    if (!rtr_path_exists(path)) return RTR_OK;
    char *text = NULL;
    rtr_status s = rtr_read_file(path, &text, NULL);
    const char *why;
    if (!s && !(*cfg = rtr_json_parse(text, &why, NULL))) s = rtr_fail(RTR_ERR_FORMAT, "%s: not valid JSON%s", path, why);
    /* cJSON keeps a key's first value, Python's json (transformers) its last */
    const char *dup = s ? NULL : rtr_json_duplicate_key(*cfg);
    if (dup) s = rtr_fail(RTR_ERR_FORMAT, "%s: field '%s' given twice", path, dup);
    free(text);
    if (s) {
        cJSON_Delete(*cfg);
        *cfg = NULL;
    }
    return s;
}

/* Read config.json into enc's sizes; errors name the field. */
static rtr_status read_config(rtr_encoder *enc, const char *dir) {
    char *path = rtr_sprintf("%s/config.json", dir);
    if (!path) return RTR_ERR_NOMEM;
    cJSON *cfg = NULL;
    rtr_status s = read_json(path, &cfg);
    if (!s && !cfg) s = rtr_fail(RTR_ERR_IO, "%s: cannot open: no such file", path);
    if (s) goto done;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cfg, "model_type");
    const char *type = cJSON_IsString(mt) ? mt->valuestring : "(missing)";
    if (!strcmp(type, "bert")) {
        enc->arch = ARCH_BERT;
    } else if (!strcmp(type, "mpnet")) {
        enc->arch = ARCH_MPNET;
    } else {
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field 'model_type' is '%s': only bert and mpnet are supported%s", path,
                     type, model_type_reason(type));
        goto done;
    }
    /* absent: transformers' BertConfig and MPNetConfig take gelu */
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(cfg, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu") != 0)) {
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field 'hidden_act' must be \"gelu\"", path);
        goto done;
    }
    const cJSON *pet = cJSON_GetObjectItemCaseSensitive(cfg, "position_embedding_type");
    if (cJSON_IsString(pet) && strcmp(pet->valuestring, "absolute") != 0) {
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field 'position_embedding_type' is '%s', only absolute is supported",
                     path, pet->valuestring);
        goto done;
    }
    enc->C = json_int(cfg, "hidden_size", 0);
    enc->L = json_int(cfg, "num_hidden_layers", 0);
    enc->NH = json_int(cfg, "num_attention_heads", 0);
    enc->F = json_int(cfg, "intermediate_size", 0);
    enc->V = json_int(cfg, "vocab_size", 0);
    enc->P = json_int(cfg, "max_position_embeddings", 0);
    enc->pad_id = json_int(cfg, "pad_token_id", enc->arch == ARCH_MPNET ? 1 : 0);
    enc->num_buckets = json_int(cfg, "relative_attention_num_buckets", 32);
    enc->max_distance = 128; /* fixed in transformers' MPNet */
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(cfg, "layer_norm_eps");
    enc->eps = cJSON_IsNumber(eps) ? (float)eps->valuedouble : 1e-12f;
    const char *bad = !(enc->eps > 0 && enc->eps < 1) ? "layer_norm_eps" /* else NaN embeddings */
                      : enc->C <= 0 || enc->C > 65536 ? "hidden_size"
                      : enc->L <= 0 || enc->L > 256 ? "num_hidden_layers"
                      : enc->NH <= 0 || enc->C % enc->NH ? "num_attention_heads"
                      : enc->F <= 0 || enc->F > 1 << 20 ? "intermediate_size"
                      : enc->V <= 0 || enc->V > 1 << 24 ? "vocab_size"
                      : enc->P <= 2 || enc->P > 1 << 20 ? "max_position_embeddings"
                      : enc->num_buckets < 4 || enc->num_buckets > 1024 ? "relative_attention_num_buckets"
                      : enc->pad_id < 0 || enc->pad_id >= enc->V ? "pad_token_id" /* padding looks it up */
                      : NULL;
    if (bad) s = rtr_fail(RTR_ERR_FORMAT, "%s: field '%s' missing or out of range", path, bad);
done:
    cJSON_Delete(cfg);
    free(path);
    return s;
}

/* ---- the sentence-transformers modules -------------------------------------
 * modules.json lists what runs after the transformer. rtr runs Transformer,
 * then Pooling (cls, mean or mean_sqrt_len_tokens), then optionally
 * Normalize, as sentence-transformers does; anything else would change the
 * embedding, so the folder is refused naming the module. Without
 * modules.json, sentence-transformers (and so rtr) uses mean pooling and no
 * normalisation. */

/* One pooling mode name (sentence-transformers' names) into *mode. */
static rtr_status pooling_mode(const char *path, const char *name, rtr_pool_mode *mode) {
    static const struct {
        const char *name;
        int mode; /* -1: refused */
        const char *why;
    } modes[] = {
        {"mean", RTR_POOL_MEAN, NULL},
        {"mean_sqrt_len_tokens", RTR_POOL_MEAN_SQRT_LEN, NULL},
        {"cls", RTR_POOL_CLS, NULL},
        {"max", -1, "max pooling is not implemented"},
        {"weightedmean", -1, "position-weighted mean pooling is not implemented"},
        {"lasttoken", -1, "last-token pooling is for decoder models, which rtr does not run"},
    };
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        if (!strcmp(name, modes[i].name)) {
            if (modes[i].mode < 0)
                return rtr_fail(RTR_ERR_UNSUPPORTED,
                                "%s: pooling mode '%s': %s (rtr pools with cls, mean or mean_sqrt_len_tokens)", path,
                                name, modes[i].why);
            *mode = (rtr_pool_mode)modes[i].mode;
            return RTR_OK;
        }
    return rtr_fail(RTR_ERR_FORMAT, "%s: unknown pooling mode '%s'", path, name);
}

/* The Pooling module's config.json: its one mode, either as "pooling_mode"
 * (a name or a list of names) or as the older pooling_mode_*_tokens flags
 * (none set: mean, as sentence-transformers reads them). Several modes
 * (their outputs concatenated) are refused. */
static rtr_status read_pooling(rtr_encoder *enc, const char *path) {
    cJSON *cfg = NULL;
    rtr_status s = read_json(path, &cfg);
    if (!s && !cfg) s = rtr_fail(RTR_ERR_IO, "%s: no such file (modules.json lists a Pooling module there)", path);
    if (!s && !cJSON_IsObject(cfg)) s = rtr_fail(RTR_ERR_FORMAT, "%s: not a JSON object", path);
    const char *names[8];
    int n = 0;
    if (!s) {
        const cJSON *pm = cJSON_GetObjectItemCaseSensitive(cfg, "pooling_mode"), *m;
        static const struct {
            const char *flag, *mode;
        } legacy[] = {{"pooling_mode_cls_token", "cls"},
                      {"pooling_mode_max_tokens", "max"},
                      {"pooling_mode_mean_tokens", "mean"},
                      {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"},
                      {"pooling_mode_weightedmean_tokens", "weightedmean"},
                      {"pooling_mode_lasttoken", "lasttoken"}};
        if (cJSON_IsString(pm)) {
            names[n++] = pm->valuestring;
        } else if (cJSON_IsArray(pm)) {
            cJSON_ArrayForEach(m, pm) {
                if (!cJSON_IsString(m)) {
                    s = rtr_fail(RTR_ERR_FORMAT, "%s: field 'pooling_mode' holds a non-string", path);
                    break;
                }
                if (n < 8) names[n++] = m->valuestring;
            }
        } else if (pm) {
            s = rtr_fail(RTR_ERR_FORMAT, "%s: field 'pooling_mode' is neither a name nor a list of names", path);
        } else {
            for (size_t i = 0; i < sizeof legacy / sizeof *legacy && !s; i++) {
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(cfg, legacy[i].flag);
                /* Python takes "yes" or 1 as set: anything but a boolean would pool otherwise here */
                if (f && !cJSON_IsBool(f))
                    s = rtr_fail(RTR_ERR_FORMAT, "%s: field '%s' must be true or false", path, legacy[i].flag);
                else if (cJSON_IsTrue(f))
                    names[n++] = legacy[i].mode;
            }
            if (!n) names[n++] = "mean";
        }
    }
    if (!s && n != 1)
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: %d pooling modes%s%s%s: rtr pools with one mode, not a concatenation",
                     path, n, n ? " (" : "", n ? names[0] : "", n ? ", ...)" : "");
    if (!s) s = pooling_mode(path, names[0], &enc->pool);
    if (!s) {
        const cJSON *dim = cJSON_GetObjectItemCaseSensitive(cfg, "embedding_dimension");
        const char *field = dim ? "embedding_dimension" : "word_embedding_dimension";
        if (!dim) dim = cJSON_GetObjectItemCaseSensitive(cfg, field);
        if (dim && (!cJSON_IsNumber(dim) || dim->valuedouble != enc->C))
            s = rtr_fail(RTR_ERR_FORMAT, "%s: field '%s' is not config.json's hidden_size %d", path, field, enc->C);
        enc->prompt_excluded = cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cfg, "include_prompt"));
    }
    cJSON_Delete(cfg);
    return s;
}

/* The module kind of a modules.json "type" ("sentence_transformers.models.Pooling",
 * "sentence_transformers.sentence_transformer.modules.Pooling", ...): its last
 * component when the class is sentence-transformers' own, else NULL. */
static const char *module_kind(const char *type) {
    if (strncmp(type, "sentence_transformers.", 22) != 0) return NULL;
    return strrchr(type, '.') + 1;
}

/* The folder of the Transformer module, where config.json, the tokenizer
 * and the weights are (*tdir, caller frees): dir itself, or the subfolder
 * modules.json's first module names (older sentence-transformers folders
 * keep them in 0_Transformer/; refused before as "config.json: cannot
 * open"). read_modules checks the rest of modules.json. */
static rtr_status transformer_dir(const char *dir, char **tdir) {
    char *path = rtr_sprintf("%s/modules.json", dir);
    cJSON *mods = NULL;
    rtr_status s = path ? read_json(path, &mods) : RTR_ERR_NOMEM;
    const cJSON *p = cJSON_IsArray(mods) ? cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(mods, 0), "path") : NULL;
    const char *sub = cJSON_IsString(p) ? p->valuestring : "";
    if (!s) *tdir = sub[0] ? rtr_sprintf("%s/%s", dir, sub) : rtr_strdup(dir);
    if (!s && !*tdir) s = RTR_ERR_NOMEM;
    char *why = s || !sub[0] ? NULL : rtr_why_not_folder(*tdir);
    if (why) {
        s = rtr_fail(RTR_ERR_FORMAT, "%s: the Transformer module is in '%s': %s", path, sub, why);
        free(why);
        free(*tdir);
        *tdir = NULL;
    }
    cJSON_Delete(mods);
    free(path);
    return s;
}

static rtr_status read_modules(rtr_encoder *enc, const char *dir) {
    char *path = rtr_sprintf("%s/modules.json", dir), *sub = NULL;
    if (!path) return RTR_ERR_NOMEM;
    cJSON *mods = NULL;
    enc->pool = RTR_POOL_MEAN;
    enc->normalize = false;
    rtr_status s = read_json(path, &mods);
    if (s || !mods) goto done;
    if (!cJSON_IsArray(mods)) {
        s = rtr_fail(RTR_ERR_FORMAT, "%s: not a JSON array of modules", path);
        goto done;
    }
    static const char *expected[] = {"Transformer", "Pooling", "Normalize"};
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, mods) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "type"), *p = cJSON_GetObjectItemCaseSensitive(m, "path");
        const char *type = cJSON_IsString(t) ? t->valuestring : NULL, *mpath = cJSON_IsString(p) ? p->valuestring : "";
        if (!type) {
            s = rtr_fail(RTR_ERR_FORMAT, "%s: module %d has no string field 'type'", path, i);
            goto done;
        }
        const char *kind = module_kind(type);
        if (!kind || i > 2 || strcmp(kind, expected[i]) != 0) {
            s = rtr_fail(RTR_ERR_UNSUPPORTED,
                         "%s: module %d is %s: rtr runs Transformer, Pooling and an optional Normalize, in that "
                         "order%s",
                         path, i, type,
                         kind && !strcmp(kind, "Dense") ? " (a Dense projection after pooling is not implemented)"
                         : !kind                        ? " (a class outside sentence-transformers)"
                                                        : "");
            goto done;
        }
        free(sub);
        if (!(sub = rtr_sprintf("%s/%s/config.json", dir, mpath))) {
            s = RTR_ERR_NOMEM;
            goto done;
        }
        if (i == 1) s = read_pooling(enc, sub);
        if (i == 2) {
            /* Normalize acts on the pooled vector unless told otherwise */
            cJSON *cfg = NULL;
            s = read_json(sub, &cfg);
            const cJSON *in = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "module_input_name") : NULL;
            if (!s && cJSON_IsString(in) && strcmp(in->valuestring, "sentence_embedding") != 0)
                s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: Normalize of '%s': rtr normalises the pooled vector only", sub,
                             in->valuestring);
            cJSON_Delete(cfg);
            enc->normalize = true;
        }
        if (s) goto done;
        i++;
    }
    if (i < 2)
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: no Pooling module: the model gives one vector per token, not per text",
                     path);
done:
    cJSON_Delete(mods);
    free(sub);
    free(path);
    return s;
}

/* config_sentence_transformers.json: the prompt sentence-transformers'
 * encode() prepends by default (default_prompt_name, a key of prompts), as
 * E5 folders set "query: ". rtr prepends it to every text it embeds. */
static rtr_status read_prompt(rtr_encoder *enc, const char *dir) {
    char *path = rtr_sprintf("%s/config_sentence_transformers.json", dir);
    if (!path) return RTR_ERR_NOMEM;
    cJSON *cfg = NULL;
    rtr_status s = read_json(path, &cfg);
    if (s || !cfg) goto done;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cfg, "model_type");
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "SentenceTransformer") != 0) {
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field 'model_type' is '%s': rtr runs SentenceTransformer folders only",
                     path, mt->valuestring);
        goto done;
    }
    const cJSON *dn = cJSON_GetObjectItemCaseSensitive(cfg, "default_prompt_name");
    if (!dn || cJSON_IsNull(dn)) goto done;
    const cJSON *prompt = cJSON_IsString(dn)
                              ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "prompts"),
                                                                 dn->valuestring)
                              : NULL;
    if (!cJSON_IsString(prompt)) {
        s = rtr_fail(RTR_ERR_FORMAT, "%s: field 'default_prompt_name' names no string of field 'prompts'", path);
        goto done;
    }
    if (!prompt->valuestring[0]) goto done;
    if (enc->prompt_excluded) {
        s = rtr_fail(RTR_ERR_UNSUPPORTED,
                     "%s: the default prompt '%s' is to be left out of the pooling (the Pooling module's "
                     "include_prompt is false), which rtr does not do",
                     path, dn->valuestring);
        goto done;
    }
    enc->prompt_len = strlen(prompt->valuestring);
    if (!(enc->prompt = rtr_malloc(enc->prompt_len + 1))) s = RTR_ERR_NOMEM;
    else memcpy(enc->prompt, prompt->valuestring, enc->prompt_len + 1);
done:
    cJSON_Delete(cfg);
    free(path);
    return s;
}

/* The encoder hash: the weights' hash, and for any pipeline other than
 * mean pooling + normalisation with no prompt (all-MiniLM-L6-v2's and
 * all-mpnet-base-v2's, whose shards keep their hash) also the pooling, the
 * normalisation and the prompt, and for a max length other than the
 * folder's that length, so a shard embedded another way never counts as up
 * to date and a checkpoint trained on it refuses another encoder. */
static void set_hash(rtr_encoder *enc) {
    uint64_t h = enc->weights_hash;
    if (enc->pool != RTR_POOL_MEAN || !enc->normalize || enc->prompt) {
        char desc[64];
        int n = snprintf(desc, sizeof desc, "pooling %d normalize %d prompt ", (int)enc->pool, (int)enc->normalize);
        h = rtr_hash64(h, desc, (size_t)n);
        if (enc->prompt) h = rtr_hash64(h, enc->prompt, enc->prompt_len);
    }
    if (enc->max_len != rtr_tokenizer_max_length(enc->tok)) {
        char desc[32];
        int n = snprintf(desc, sizeof desc, "max_length %d", enc->max_len);
        h = rtr_hash64(h, desc, (size_t)n);
    }
    snprintf(enc->hash, sizeof enc->hash, "%016llx", (unsigned long long)h);
}

/* The tensor name prefix ("", "bert.", "mpnet.") the file uses. */
static const char *tensor_prefix(const rtr_safetensors *st) {
    static const char *prefixes[] = {"", "bert.", "mpnet.", "model."};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        char name[128];
        snprintf(name, sizeof name, "%sembeddings.word_embeddings.weight", prefixes[i]);
        if (rtr_safetensors_find(st, name)) return prefixes[i];
    }
    return "";
}

typedef struct {
    const rtr_safetensors *st;
    const char *prefix;
    float *next; /* bump pointer in enc->params */
    rtr_status s;
} loader;

/* Copy tensor prefix+name (shape rows x cols, cols 0: 1-D) to the bump
 * pointer and return where it went. Errors stick in ld->s. */
static float *load_tensor(loader *ld, const char *name, int64_t rows, int64_t cols) {
    if (ld->s) return NULL;
    char full[256];
    snprintf(full, sizeof full, "%s%s", ld->prefix, name);
    int64_t shape[2] = {rows, cols};
    float *dst = ld->next;
    ld->s = rtr_safetensors_read_f32(ld->st, dst, full, cols ? 2 : 1, shape);
    ld->next += rows * (cols ? cols : 1);
    return dst;
}

/* Why dir has no model.safetensors when it holds the weights in another
 * form ("cannot open: No such file" said nothing of it); NULL otherwise. */
static rtr_status weights_elsewhere(const char *dir) {
    static const struct {
        const char *file, *what;
    } forms[] = {
        {"model.safetensors.index.json", "sharded safetensors (model.safetensors.index.json and its shards): rtr "
                                         "reads one model.safetensors; save it unsharded (save_pretrained(DIR, "
                                         "max_shard_size=\"10GB\"))"},
        {"pytorch_model.bin", "PyTorch weights (pytorch_model.bin, a pickle rtr does not read): convert them "
                              "(AutoModel.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True))"},
        {"pytorch_model.bin.index.json", "sharded PyTorch weights (pytorch_model.bin.index.json): convert them "
                                         "(AutoModel.from_pretrained(DIR).save_pretrained(DIR, "
                                         "safe_serialization=True, max_shard_size=\"10GB\"))"},
        {"tf_model.h5", "TensorFlow weights (tf_model.h5): rtr reads model.safetensors"},
        {"flax_model.msgpack", "Flax weights (flax_model.msgpack): rtr reads model.safetensors"},
        {"model.onnx", "an ONNX model (model.onnx): rtr reads model.safetensors"},
    };
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        char *p = rtr_sprintf("%s/%s", dir, forms[i].file);
        bool there = p && rtr_path_exists(p);
        free(p);
        if (there) return rtr_fail(RTR_ERR_UNSUPPORTED, "%s: no model.safetensors; the folder holds %s", dir, forms[i].what);
    }
    return RTR_OK;
}

static rtr_status load_weights(rtr_encoder *enc, const char *dir) {
    char *path = rtr_sprintf("%s/model.safetensors", dir);
    if (!path) return RTR_ERR_NOMEM;
    rtr_safetensors *st = NULL;
    rtr_status s = rtr_path_exists(path) ? RTR_OK : weights_elsewhere(dir);
    if (!s) s = rtr_safetensors_open(&st, path);
    if (s) {
        free(path);
        return s;
    }
    size_t nbytes;
    const void *data = rtr_safetensors_data(st, &nbytes);
    /* hashing mpnet's 438 MB costs about a second per process: a file of
     * 64 MB or more keeps its hash in the cache (src/encoder/weights_hash.h) */
    enc->weights_hash = rtr_weights_hash(path, data, nbytes, (size_t)64 << 20, NULL);
    free(path);

    size_t C = (size_t)enc->C, F = (size_t)enc->F;
    size_t per_layer = 3 * C * C + 3 * C + C * C + C + 2 * C + F * C + F + C * F + C + 2 * C;
    size_t total = (size_t)enc->V * C + (size_t)enc->P * C + C + 2 * C + (size_t)enc->num_buckets * enc->NH +
                   (size_t)enc->L * per_layer;
    enc->n_params = total;
    enc->params = rtr_malloc(total * sizeof(float));
    enc->layers = rtr_calloc((size_t)enc->L, sizeof *enc->layers);
    if (!enc->params || !enc->layers) {
        rtr_safetensors_close(st);
        return RTR_ERR_NOMEM;
    }
    loader ld = {st, tensor_prefix(st), enc->params, RTR_OK};
    int64_t c = enc->C, f = enc->F;
    enc->wte = load_tensor(&ld, "embeddings.word_embeddings.weight", enc->V, c);
    enc->wpe = load_tensor(&ld, "embeddings.position_embeddings.weight", enc->P, c);
    if (enc->arch == ARCH_BERT) {
        /* token type 0 only: one row of the [type_vocab_size x C] table */
        char full[256];
        snprintf(full, sizeof full, "%sembeddings.token_type_embeddings.weight", ld.prefix);
        const rtr_st_tensor *t = rtr_safetensors_find(st, full);
        int64_t types = t && t->ndim == 2 ? t->shape[0] : 1;
        float *all = types > 0 && !ld.s ? rtr_malloc((size_t)(types * c) * sizeof(float)) : NULL;
        if (!ld.s && !all) ld.s = RTR_ERR_NOMEM;
        enc->wtt = ld.next;
        if (!ld.s) ld.s = rtr_safetensors_read_f32(st, all, full, 2, (int64_t[]){types, c});
        if (!ld.s) memcpy(enc->wtt, all, C * sizeof(float));
        ld.next += c;
        free(all);
    }
    enc->emb_ln_w = load_tensor(&ld, "embeddings.LayerNorm.weight", c, 0);
    enc->emb_ln_b = load_tensor(&ld, "embeddings.LayerNorm.bias", c, 0);
    if (enc->arch == ARCH_MPNET)
        enc->rel_bias = load_tensor(&ld, "encoder.relative_attention_bias.weight", enc->num_buckets, enc->NH);
    for (int l = 0; l < enc->L && !ld.s; l++) {
        layer_weights *w = &enc->layers[l];
        char n[160];
        const char *qkv_names[2][3] = {{"attention.self.query", "attention.self.key", "attention.self.value"},
                                       {"attention.attn.q", "attention.attn.k", "attention.attn.v"}};
        const char *const *qn = qkv_names[enc->arch == ARCH_MPNET];
        w->qkv_w = ld.next;
        for (int k = 0; k < 3; k++) {
            snprintf(n, sizeof n, "encoder.layer.%d.%s.weight", l, qn[k]);
            load_tensor(&ld, n, c, c);
        }
        w->qkv_b = ld.next;
        for (int k = 0; k < 3; k++) {
            snprintf(n, sizeof n, "encoder.layer.%d.%s.bias", l, qn[k]);
            load_tensor(&ld, n, c, 0);
        }
#define LAYER_TENSOR(dst, suffix, rows, cols)                                 \
    snprintf(n, sizeof n, "encoder.layer.%d.%s", l, suffix);                  \
    dst = load_tensor(&ld, n, rows, cols)
        bool bert = enc->arch == ARCH_BERT;
        LAYER_TENSOR(w->o_w, bert ? "attention.output.dense.weight" : "attention.attn.o.weight", c, c);
        LAYER_TENSOR(w->o_b, bert ? "attention.output.dense.bias" : "attention.attn.o.bias", c, 0);
        LAYER_TENSOR(w->ln1_w, bert ? "attention.output.LayerNorm.weight" : "attention.LayerNorm.weight", c, 0);
        LAYER_TENSOR(w->ln1_b, bert ? "attention.output.LayerNorm.bias" : "attention.LayerNorm.bias", c, 0);
        LAYER_TENSOR(w->fc_w, "intermediate.dense.weight", f, c);
        LAYER_TENSOR(w->fc_b, "intermediate.dense.bias", f, 0);
        LAYER_TENSOR(w->proj_w, "output.dense.weight", c, f);
        LAYER_TENSOR(w->proj_b, "output.dense.bias", c, 0);
        LAYER_TENSOR(w->ln2_w, "output.LayerNorm.weight", c, 0);
        LAYER_TENSOR(w->ln2_b, "output.LayerNorm.bias", c, 0);
#undef LAYER_TENSOR
    }
    rtr_safetensors_close(st);
    return ld.s;
}

/* Off a host backend: one backend allocation holding the float32 weights,
 * uploaded once; every weight pointer moves to the same offset in it and the
 * host copy goes. */
/* The bf16 path's GEMM weights: each layer's four matrices rounded to bf16
 * on the host (from the float32 weights, before they leave) and uploaded as
 * one allocation. */
static rtr_status place_bf16_weights(rtr_encoder *enc) {
    size_t C = (size_t)enc->C, F = (size_t)enc->F, per_layer = 3 * C * C + C * C + 2 * F * C;
    size_t n = per_layer * (size_t)enc->L;
    rtr_bf16 *host = rtr_malloc(n * sizeof *host);
    if (!host) return RTR_ERR_NOMEM;
    rtr_status s = rtr_backend_alloc(enc->b, (void **)&enc->dev_bf16, n * sizeof *host);
    for (int l = 0; l < enc->L && !s; l++) {
        layer_weights *w = &enc->layers[l];
        size_t off = per_layer * (size_t)l;
        struct {
            rtr_bf16 **dst;
            const float *src;
            size_t n;
        } m[] = {{&w->qkv_h, w->qkv_w, 3 * C * C}, {&w->o_h, w->o_w, C * C}, {&w->fc_h, w->fc_w, F * C},
                 {&w->proj_h, w->proj_w, C * F}};
        for (size_t k = 0; k < sizeof m / sizeof *m; k++) {
            for (size_t i = 0; i < m[k].n; i++) host[off + i] = rtr_bf16_round(m[k].src[i]);
            *m[k].dst = enc->dev_bf16 + off;
            off += m[k].n;
        }
    }
    if (!s) s = rtr_backend_upload(enc->b, enc->dev_bf16, host, n * sizeof *host);
    free(host);
    if (s) return rtr_fail_prefix(s, "encoder bf16 weights (%.0f MiB): ", n * 2 / 1048576.0);
    return RTR_OK;
}

/* The float weights the backend computes on, declared constant until
 * rtr_encoder_free: what a backend derives from them for its reduced
 * precisions (the CPU's int8 and bf16 packed weights) is then made once per
 * encoder, not again in every rtr_encoder_encode call, whose precision
 * change at its end would otherwise drop it. */
static float *computed_weights(const rtr_encoder *enc) { return enc->dev_params ? enc->dev_params : enc->params; }

static rtr_status hold_weights(rtr_encoder *enc) {
    rtr_status s = rtr_backend_hold_weights(enc->b, computed_weights(enc), enc->n_params * sizeof(float));
    enc->held = s == RTR_OK;
    return s;
}

static rtr_status place_weights(rtr_encoder *enc) {
    if (rtr_backend_is_host(enc->b)) return RTR_OK;
    if (enc->bf16) {
        rtr_status s = place_bf16_weights(enc);
        if (s) return s;
    }
    size_t bytes = enc->n_params * sizeof(float);
    rtr_status s = rtr_backend_alloc(enc->b, (void **)&enc->dev_params, bytes);
    if (!s) s = rtr_backend_upload(enc->b, enc->dev_params, enc->params, bytes);
    if (s) return rtr_fail_prefix(s, "encoder weights (%.0f MiB): ", bytes / 1048576.0);
    float **top[] = {&enc->wte, &enc->wpe, &enc->wtt, &enc->emb_ln_w, &enc->emb_ln_b, &enc->rel_bias};
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        if (*top[i]) *top[i] = enc->dev_params + (*top[i] - enc->params);
    for (int l = 0; l < enc->L; l++) {
        layer_weights *w = &enc->layers[l];
        float **lw[] = {&w->qkv_w, &w->qkv_b, &w->o_w,    &w->o_b,    &w->ln1_w, &w->ln1_b,
                        &w->fc_w,  &w->fc_b,  &w->proj_w, &w->proj_b, &w->ln2_w, &w->ln2_b};
        for (size_t i = 0; i < sizeof lw / sizeof *lw; i++) *lw[i] = enc->dev_params + (*lw[i] - enc->params);
    }
    free(enc->params);
    enc->params = NULL;
    return RTR_OK;
}

/* Backend scratch for batches of up to batch_tokens padded tokens (at most
 * max_texts texts), and the pinned host buffers a batch travels through. */
static rtr_status alloc_scratch(rtr_encoder *enc) {
    size_t N = (size_t)enc->batch_tokens, C = (size_t)enc->C, T = (size_t)enc->max_len, NH = (size_t)enc->NH,
           Bm = (size_t)enc->max_texts;
    size_t f32 = enc->bf16 ? 0 : sizeof(float), h16 = enc->bf16 ? sizeof(rtr_bf16) : 0; /* one path's scratch */
    struct {
        void **ptr;
        size_t bytes;
    } dev[] = {
        {(void **)&enc->x, N * C * f32},
        {(void **)&enc->qkv, 3 * N * C * f32},
        {(void **)&enc->att_out, N * C * f32},
        {(void **)&enc->tmp, N * C * f32},
        {(void **)&enc->ffn, N * (size_t)enc->F * f32},
        {(void **)&enc->att, N * NH * T * f32},
        {(void **)&enc->xh, N * C * h16},
        {(void **)&enc->qkvh, 3 * N * C * h16},
        {(void **)&enc->atth, N * C * h16},
        {(void **)&enc->tmph, N * C * h16},
        {(void **)&enc->ffnh, N * (size_t)enc->F * h16},
        {(void **)&enc->bias, enc->arch == ARCH_MPNET ? NH * T * T * sizeof(float) : 0},
        {(void **)&enc->pooled, Bm * C * sizeof(float)},
        {(void **)&enc->in, (2 * N + Bm) * sizeof(int32_t)},
    };
    rtr_status s = RTR_OK;
    size_t total = 0;
    for (size_t i = 0; i < sizeof dev / sizeof *dev && !s; i++) {
        total += dev[i].bytes;
        if (dev[i].bytes) s = rtr_backend_alloc(enc->b, dev[i].ptr, dev[i].bytes);
    }
    for (int k = 0; k < 2 && !s; k++) {
        s = rtr_backend_host_alloc(enc->b, (void **)&enc->h_in[k], (2 * N + Bm) * sizeof(int32_t));
        if (!s) s = rtr_backend_host_alloc(enc->b, (void **)&enc->h_pooled[k], Bm * C * sizeof(float));
    }
    if (s)
        return rtr_fail_prefix(s, "encoder scratch for %d tokens (%.0f MiB on %s): ", enc->batch_tokens,
                               total / 1048576.0, enc->b->device);
    return RTR_OK;
}

/* The GEMM precision name on backend b. "auto" is bf16 on a GPU, and on
 * the CPU where it has bf16 GEMMs (RTR_CAP_FAST_BF16: oneDNN and AVX-512
 * BF16), else fp32: the rule of docs/ENCODER.md ("What auto picks on a
 * CPU with bf16"), measured on an AMD EPYC Zen 4: bf16 1.5-2.8x rtr fp32,
 * every golden text within cosine 0.999 of sentence-transformers (worst
 * 0.9995, mpnet), and a text's embedding alone the bits of its row in a
 * batch (tests/test_cpu_gemm_dnnl.c), so online routing and a corpus
 * encoded on the same CPU agree. A reduced precision the host backend
 * cannot compute is refused with its reason (the CPU's features, or a
 * build without oneDNN), never computed in fp32 under the name asked for. */
static rtr_status parse_precision(const char *name, rtr_backend *b, rtr_gemm_precision *p) {
    bool host = rtr_backend_is_host(b);
    if (!name || !strcmp(name, "fp32")) *p = RTR_GEMM_F32;
    else if (!strcmp(name, "auto"))
        *p = !host || (rtr_backend_caps(b) & RTR_CAP_FAST_BF16) ? RTR_GEMM_BF16 : RTR_GEMM_F32;
    else if (!strcmp(name, "bf16")) *p = RTR_GEMM_BF16;
    else if (!strcmp(name, "fp16")) *p = RTR_GEMM_F16;
    else return rtr_fail(RTR_ERR_INVALID, "precision '%s': expected fp32, bf16, fp16 or auto", name);
    if (host && *p != RTR_GEMM_F32) {
        rtr_status s = rtr_backend_set_gemm_precision(b, *p);
        rtr_backend_set_gemm_precision(b, RTR_GEMM_F32); /* set again per encode call */
        if (s && *p == RTR_GEMM_F16)
            return rtr_fail_prefix(RTR_ERR_INVALID, "precision %s needs a CUDA device (%s): ", name, b->device);
        if (s)
            return rtr_fail_prefix(RTR_ERR_INVALID, "precision %s needs a CUDA device or bf16 GEMMs on the CPU "
                                   "(%s): ", name, b->device);
    }
    return RTR_OK;
}

/* Whether the encoder runs the bf16 path: bf16 asked for, on a backend with
 * the bf16 GEMM and ops, at shapes their kernels take (C and F multiples of
 * 8, head size 32, 64 or 128: every BERT/MPNet sentence encoder in use).
 * Otherwise bf16 means bf16 GEMM inputs on fp32 activations. */
static bool bf16_path(const rtr_encoder *enc) {
    static const rtr_op ops[] = {RTR_OP_GEMM_BF16, RTR_OP_EMBEDDING_LAYERNORM_BF16, RTR_OP_ATTENTION_BF16,
                                 RTR_OP_BIAS_GELU_BF16, RTR_OP_RESIDUAL_LAYERNORM_BF16,
                                 RTR_OP_POOL_BF16, RTR_OP_POSITION_BIAS_FORWARD};
    int hs = enc->C / enc->NH;
    if (enc->precision != RTR_GEMM_BF16 || enc->C % 8 || enc->F % 8 || (hs != 32 && hs != 64 && hs != 128))
        return false;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (!rtr_backend_supports(enc->b, ops[i])) return false;
    return true;
}

/* Everything after the backend is chosen: config, tokenizer, weights (placed
 * on the backend), scratch. */
static rtr_status load(rtr_encoder *enc, const char *model_dir, const rtr_encoder_params *p) {
    if (!rtr_is_dir(model_dir)) return rtr_fail(RTR_ERR_IO, "%s: not a model folder", model_dir);
    char *tdir = NULL; /* the Transformer module's folder */
    rtr_status s = parse_precision(p->precision, enc->b, &enc->precision);
    if (!s) s = transformer_dir(model_dir, &tdir);
    if (!s) s = read_config(enc, tdir);
    if (!s) s = read_modules(enc, model_dir);
    if (!s) s = read_prompt(enc, model_dir);
    if (!s) s = rtr_tokenizer_load(&enc->tok, tdir);
    if (!s) {
        enc->max_len = p->max_seq_length > 0 ? p->max_seq_length : rtr_tokenizer_max_length(enc->tok);
        /* MPNet positions start after the padding index */
        int first_pos = enc->arch == ARCH_MPNET ? enc->pad_id + 1 : 0;
        if (!enc->max_len && rtr_tokenizer_max_length_error(enc->tok))
            s = rtr_fail(RTR_ERR_INVALID, "%s", rtr_tokenizer_max_length_error(enc->tok));
        else if (enc->max_len < 2 || enc->max_len + first_pos > enc->P)
            s = rtr_fail(RTR_ERR_INVALID, "%s: max_seq_length %d exceeds the model's %d positions", model_dir,
                         enc->max_len, enc->P - first_pos);
        else if (rtr_tokenizer_vocab_size(enc->tok) > enc->V)
            s = rtr_fail(RTR_ERR_FORMAT, "%s: the tokenizer has %d ids but config.json's vocab_size is %d",
                         model_dir, rtr_tokenizer_vocab_size(enc->tok), enc->V);
    }
    if (!s) {
        int want = p->batch_tokens > 0                ? p->batch_tokens
                   : rtr_backend_is_host(enc->b) ? BATCH_TOKENS_CPU
                                                      : BATCH_TOKENS_GPU;
        if (want > 1 << 20) {
            free(tdir);
            return rtr_fail(RTR_ERR_INVALID, "batch_tokens %d: at most %d", want, 1 << 20);
        }
        enc->batch_tokens = want > enc->max_len ? want : enc->max_len;
        /* a GPU takes every batch full: it is fast at any padding, slow at small batches */
        int threads = p->n_threads > 0 ? p->n_threads : omp_get_max_threads();
        enc->batch_min = rtr_backend_is_host(enc->b) && BATCH_MIN_PER_THREAD * threads < enc->batch_tokens
                             ? BATCH_MIN_PER_THREAD * threads
                             : enc->batch_tokens;
        /* every text has at least 2 tokens ([CLS] and [SEP]) */
        enc->max_texts = enc->batch_tokens / 2 < BATCH_TEXTS_MAX ? enc->batch_tokens / 2 : BATCH_TEXTS_MAX;
        s = load_weights(enc, tdir);
    }
    free(tdir);
    if (!s) set_hash(enc);
    if (!s) enc->bf16 = bf16_path(enc);
    if (!s) s = place_weights(enc);
    if (!s) s = hold_weights(enc);
    if (!s) s = alloc_scratch(enc);
    if (!s) {
        /* the folder's base name, ignoring trailing slashes */
        size_t end = strlen(model_dir), start;
        while (end > 1 && model_dir[end - 1] == '/') end--;
        for (start = end; start > 0 && model_dir[start - 1] != '/'; start--) {}
        enc->name = rtr_malloc(end - start + 1);
        if (!enc->name) return RTR_ERR_NOMEM;
        memcpy(enc->name, model_dir + start, end - start);
        enc->name[end - start] = 0;
    }
    return s;
}

/* Load onto backend b, or (b NULL) onto the one params->device names, which
 * the encoder then owns. */
static rtr_status encoder_open(const char *model_dir, const rtr_encoder_params *params, rtr_backend *b,
                               rtr_encoder **out) {
    *out = NULL;
    rtr_encoder_params p = params ? *params : rtr_encoder_default_params();
    /* libgomp asked for 100000 threads dies of a signal, not an error */
    if (p.n_threads < 0 || p.n_threads > 1024)
        return rtr_fail(RTR_ERR_INVALID, "threads %d: must be in 0 .. 1024 (0: all cores)", p.n_threads);
    rtr_encoder *enc = rtr_calloc(1, sizeof *enc);
    if (!enc) return RTR_ERR_NOMEM;
    enc->n_threads = p.n_threads;
    if (p.n_threads > 0) omp_set_num_threads(p.n_threads); /* before the CPU backend reports its threads */
    rtr_status s = RTR_OK;
    if (b) {
        enc->b = b;
    } else if (!(s = rtr_backend_init(&enc->own, p.device ? p.device : "cpu"))) {
        enc->b = &enc->own;
    }
    /* the CPU backend lowers the threads under an address-space limit (common/limits.h): keep to them */
    if (enc->n_threads > omp_get_max_threads()) enc->n_threads = omp_get_max_threads();
    if (!s) s = load(enc, model_dir, &p);
    if (s) {
        rtr_encoder_free(enc);
        return s;
    }
    *out = enc;
    return RTR_OK;
}

rtr_status rtr_encoder_load(rtr_encoder **out, const char *model_dir, const rtr_encoder_params *params) {
    return encoder_open(model_dir, params, NULL, out);
}

rtr_status rtr_encoder_load_on(rtr_backend *b, rtr_encoder **out, const char *model_dir,
                               const rtr_encoder_params *params) {
    return encoder_open(model_dir, params, b, out);
}

void rtr_encoder_free(rtr_encoder *enc) {
    if (!enc) return;
    /* before the weights go: a backend shared with others keeps nothing made of them */
    if (enc->held) rtr_backend_forget_weights(enc->b, computed_weights(enc), enc->n_params * sizeof(float));
    rtr_tokenizer_free(enc->tok);
    free(enc->params);
    free(enc->layers);
    free(enc->prompt);
    free(enc->name);
    if (enc->b) {
        void *dev[] = {enc->dev_params, enc->x,    enc->qkv,  enc->att_out, enc->tmp,  enc->ffn,
                       enc->att,        enc->bias, enc->pooled, enc->in,     enc->dev_bf16, enc->xh,
                       enc->qkvh,       enc->atth, enc->tmph,  enc->ffnh};
        for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) rtr_backend_free_mem(enc->b, dev[i]);
        for (int k = 0; k < 2; k++) {
            rtr_backend_host_free(enc->b, enc->h_in[k]);
            rtr_backend_host_free(enc->b, enc->h_pooled[k]);
        }
    }
    if (enc->b == &enc->own) rtr_backend_free(&enc->own);
    free(enc);
}

int rtr_encoder_dim(const rtr_encoder *enc) { return enc->C; }
const char *rtr_encoder_name(const rtr_encoder *enc) { return enc->name; }
const char *rtr_encoder_hash(const rtr_encoder *enc) { return enc->hash; }
const rtr_tokenizer *rtr_encoder_tokenizer(const rtr_encoder *enc) { return enc->tok; }
const char *rtr_encoder_device(const rtr_encoder *enc) { return enc->b->device; }
int rtr_encoder_batch_tokens(const rtr_encoder *enc) { return enc->batch_tokens; }

const char *rtr_encoder_precision(const rtr_encoder *enc) {
    return enc->precision == RTR_GEMM_BF16 ? "bf16" : enc->precision == RTR_GEMM_F16 ? "fp16" : "fp32";
}

/* ---- forward ---------------------------------------------------------------- */

/* out[N x OC] = inp[N x IC] · W[OC x IC]ᵀ (torch Linear layout). */
static rtr_status linear(rtr_backend *b, float *out, const float *inp, const float *w, int N, int IC, int OC) {
    return b->iface->sgemm(b->ctx, false, true, N, OC, IC, 1.0f, inp, IC, w, IC, 0.0f, out, OC);
}

/* Texts [b0, b0 + nb) of a batch padded to T tokens (ids, pos_ids [B x T]
 * and lens [B] in backend memory), every step on those texts' rows of the
 * scratch; pooled rows to enc->pooled + b0·C. MPNet's position bias must be
 * in enc->bias already. */
static rtr_status forward_texts(rtr_encoder *enc, const int32_t *ids, const int32_t *pos_ids, const int32_t *lens,
                                int b0, int nb, int T) {
    rtr_backend *b = enc->b;
    const rtr_backend_iface *f = b->iface;
    int C = enc->C, NH = enc->NH, F = enc->F, N = nb * T;
    size_t r0 = (size_t)b0 * T;
    float eps = enc->eps, *x = enc->x + r0 * C, *qkv = enc->qkv + r0 * 3 * C, *att_out = enc->att_out + r0 * C;
    float *tmp = enc->tmp + r0 * C, *ffn = enc->ffn + r0 * F, *att = enc->att + r0 * NH * T;
    lens += b0;
    rtr_status s = f->embedding_layernorm_forward(b->ctx, x, ids + r0, pos_ids + r0, enc->wte, enc->wpe, enc->wtt,
                                                  enc->emb_ln_w, enc->emb_ln_b, eps, nb, T, C);
    for (int l = 0; l < enc->L && !s; l++) {
        const layer_weights *w = &enc->layers[l];
        s = linear(b, qkv, x, w->qkv_w, N, C, 3 * C);
        if (!s) s = f->bias_add_forward(b->ctx, qkv, qkv, w->qkv_b, N, 3 * C);
        if (!s) s = f->attention_forward(b->ctx, att_out, att, qkv, enc->bias, lens, nb, T, C, NH);
        if (!s) s = linear(b, tmp, att_out, w->o_w, N, C, C);
        if (!s) s = f->residual_layernorm_forward(b->ctx, x, tmp, w->o_b, x, w->ln1_w, w->ln1_b, eps, N, C);
        if (!s) s = linear(b, ffn, x, w->fc_w, N, C, F);
        if (!s) s = f->bias_gelu_forward(b->ctx, ffn, ffn, w->fc_b, N, F);
        if (!s) s = linear(b, tmp, ffn, w->proj_w, N, F, C);
        if (!s) s = f->residual_layernorm_forward(b->ctx, x, tmp, w->proj_b, x, w->ln2_w, w->ln2_b, eps, N, C);
    }
    if (!s) s = f->pool_forward(b->ctx, enc->pooled + (size_t)b0 * C, x, lens, nb, T, C, enc->pool, enc->normalize);
    return s;
}

/* Forward B texts padded to T tokens on the encoder's backend; pooled rows
 * to enc->pooled [B x C]. Queued, not waited for. On a backend whose ops
 * may run concurrently (RTR_CAP_CONCURRENT_OPS: the CPU in fp32 and bf16), each
 * OpenMP thread runs the whole forward of its share of the texts (one
 * thread each inside): no barrier between the ~60 ops of a batch,
 * where a thread the OS has descheduled kept its partner waiting (or
 * spinning) at every one on a busy machine. Rows are per text, so this
 * changes which GEMM call a row is in, not what it computes. */
static rtr_status forward(rtr_encoder *enc, const int32_t *ids, const int32_t *pos_ids, const int32_t *lens, int B,
                          int T) {
    rtr_backend *b = enc->b;
    rtr_status s = RTR_OK;
    if (enc->arch == ARCH_MPNET)
        s = b->iface->position_bias_forward(b->ctx, enc->bias, enc->rel_bias, T, enc->NH, enc->num_buckets,
                                            enc->max_distance);
    int nt = omp_get_max_threads() < B ? omp_get_max_threads() : B;
    /* a backend whose ops may run on several threads at once (the CPU in
     * fp32 and bf16; not in int8, whose packed weights are shared) */
    bool split = nt > 1 && (rtr_backend_caps(b) & RTR_CAP_CONCURRENT_OPS);
    if (s || !split) return s ? s : forward_texts(enc, ids, pos_ids, lens, 0, B, T);
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads(), b0 = B * t / n, b1 = B * (t + 1) / n;
        omp_set_num_threads(1); /* the ops' own regions: one thread each */
        rtr_status st = b1 > b0 ? forward_texts(enc, ids, pos_ids, lens, b0, b1 - b0, T) : RTR_OK;
        if (st) {
#pragma omp critical /* unnamed: a named one exports a symbol from librtr.so (test_install.sh) */
            if (!s) s = st;
        }
    }
    return s;
}

/* forward with bf16 activations (the bf16 path): same contract. */
static rtr_status forward_bf16(rtr_encoder *enc, const int32_t *ids, const int32_t *pos_ids, const int32_t *lens,
                               int B, int T) {
    rtr_backend *b = enc->b;
    const rtr_backend_iface *f = b->iface;
    int C = enc->C, NH = enc->NH, F = enc->F, N = B * T;
    float eps = enc->eps;
    const float *pos_bias = enc->arch == ARCH_MPNET ? enc->bias : NULL;
    rtr_status s = f->embedding_layernorm_bf16(b->ctx, enc->xh, ids, pos_ids, enc->wte, enc->wpe, enc->wtt,
                                               enc->emb_ln_w, enc->emb_ln_b, eps, B, T, C);
    if (!s && pos_bias)
        s = f->position_bias_forward(b->ctx, enc->bias, enc->rel_bias, T, NH, enc->num_buckets, enc->max_distance);
    for (int l = 0; l < enc->L && !s; l++) {
        const layer_weights *w = &enc->layers[l];
        s = f->gemm_bf16(b->ctx, enc->qkvh, enc->xh, w->qkv_h, NULL, N, C, 3 * C);
        if (!s) s = f->attention_bf16(b->ctx, enc->atth, enc->qkvh, w->qkv_b, pos_bias, lens, B, T, C, NH);
        if (!s) s = f->gemm_bf16(b->ctx, enc->tmph, enc->atth, w->o_h, NULL, N, C, C);
        if (!s)
            s = f->residual_layernorm_bf16(b->ctx, enc->xh, enc->tmph, w->o_b, enc->xh, w->ln1_w, w->ln1_b, eps, N,
                                           C);
        if (!s) s = f->gemm_bf16(b->ctx, enc->ffnh, enc->xh, w->fc_h, w->fc_b, N, C, F); /* + bias, GELU */
        if (!s) s = f->gemm_bf16(b->ctx, enc->tmph, enc->ffnh, w->proj_h, NULL, N, F, C);
        if (!s)
            s = f->residual_layernorm_bf16(b->ctx, enc->xh, enc->tmph, w->proj_b, enc->xh, w->ln2_w, w->ln2_b, eps,
                                           N, C);
    }
    if (!s) s = f->pool_bf16(b->ctx, enc->pooled, enc->xh, lens, B, T, C, enc->pool, enc->normalize);
    return s;
}

static int cmp_len_desc(const void *a, const void *b) {
    const tokenized *x = a, *y = b;
    if (x->n != y->n) return y->n - x->n;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* t's ids (at most max_len) for text: the folder's prompt, if any, and the
 * text, as sentence-transformers tokenizes prompt + text. */
static rtr_status tokenize(const rtr_encoder *enc, const char *text, size_t len, tokenized *t) {
    if (!enc->prompt) return rtr_tokenizer_encode(enc->tok, t->ids, &t->n, text, len, enc->max_len);
    char *joined = malloc(enc->prompt_len + len + 1);
    if (!joined) return RTR_ERR_NOMEM;
    memcpy(joined, enc->prompt, enc->prompt_len);
    memcpy(joined + enc->prompt_len, text, len);
    rtr_status s = rtr_tokenizer_encode(enc->tok, t->ids, &t->n, joined, enc->prompt_len + len, enc->max_len);
    free(joined);
    return s;
}

/* Texts per tokenisation chunk: bounds the id buffers, not the batch size. */
#define ENCODE_CHUNK 8192
/* Batches of at most this many padded tokens run on one thread on the host
 * (launch_batch), and fewer texts than SERIAL_TEXTS are tokenized on one. */
#define SERIAL_TOKENS 128
#define SERIAL_TEXTS 8

/* A batch: B tokenized texts padded to T, in pinned slot `slot`. */
typedef struct {
    const tokenized *toks;
    int B, T, slot;
} batch;

/* Texts are sorted longest first and a batch is padded to its first, so
 * the shorter texts a batch takes, the more padding it computes: 40 mpnet
 * questions (54 tokens on average, 105 the longest) were 1.92x their real
 * tokens in batches filled to 4096, 1.25x when a batch stops at 1024 or
 * past 1024 where the next text adds more than 5% padding (200: 1.24x,
 * 1.06x; 2,100: 1.04x, 1.03x). Texts of one length (384-token inputs)
 * still fill batch_tokens: nothing is padded. */
int encoder_batch_texts(const tokenized *toks, size_t m, int max_texts, int batch_tokens, int batch_min) {
    int B = 0, T = m ? toks[0].n : 0;
    long real = 0;
    while ((size_t)B < m && B < max_texts && (B + 1) * T <= batch_tokens) {
        long padded = (long)(B + 1) * T, with = real + toks[B].n;
        if (padded > batch_min && padded > (1 + BATCH_PAD_MAX) * with) break;
        real = with;
        B++;
    }
    return B;
}

/* The next batch of a length-sorted chunk from toks[0..m); B = 0 when none left. */
static batch next_batch(const rtr_encoder *enc, const tokenized *toks, size_t m, int slot) {
    return (batch){toks, encoder_batch_texts(toks, m, enc->max_texts, enc->batch_tokens, enc->batch_min),
                   m ? toks[0].n : 0, slot};
}

/* Host side of a batch, into its pinned slot: ids, position ids (BERT:
 * 0..T-1; MPNet: fairseq's, from pad_id + 1, pads staying at pad_id) and
 * lengths, back to back so they go up in one copy. */
static void stage_batch(rtr_encoder *enc, const batch *bt) {
    size_t BT = (size_t)bt->B * bt->T;
    int32_t *ids = enc->h_in[bt->slot], *pos = ids + BT, *lens = pos + BT;
    for (int b = 0; b < bt->B; b++) {
        int next = enc->pad_id + 1, n = bt->toks[b].n;
        lens[b] = n;
        for (int t = 0; t < bt->T; t++) {
            int32_t id = t < n ? bt->toks[b].ids[t] : enc->pad_id;
            ids[(size_t)b * bt->T + t] = id;
            pos[(size_t)b * bt->T + t] = enc->arch == ARCH_BERT ? t : id != enc->pad_id ? next++ : enc->pad_id;
        }
    }
}

/* Queue a staged batch: its upload, the forward pass and the download of
 * the pooled rows [B x C] into its slot of h_pooled (complete at the next
 * synchronize). */
static rtr_status launch_batch(rtr_encoder *enc, const batch *bt) {
    size_t BT = (size_t)bt->B * bt->T;
    rtr_backend *bk = enc->b;
    /* A batch this small (one short text: online route, embed) runs on the
     * calling thread alone on the host: each op is less work than a parallel
     * region's hand-over, and the other thread would spin between the ops
     * (libgomp's default wait), taking the CPU time the working one needs
     * on a busy machine. The host backend computes within the call, so the
     * thread count can be put back after it. */
    int threads = omp_get_max_threads();
    bool serial = BT <= SERIAL_TOKENS && threads > 1 && rtr_backend_is_host(bk);
    if (serial) omp_set_num_threads(1);
    rtr_status s = rtr_backend_upload_async(bk, enc->in, enc->h_in[bt->slot], (2 * BT + (size_t)bt->B) * sizeof(int32_t));
    if (!s)
        s = (enc->bf16 ? forward_bf16 : forward)(enc, enc->in, enc->in + BT, enc->in + 2 * BT, bt->B, bt->T);
    if (serial) omp_set_num_threads(threads);
    if (!s) s = rtr_backend_download_async(bk, enc->h_pooled[bt->slot], enc->pooled, (size_t)bt->B * enc->C * sizeof(float));
    return s;
}

rtr_status rtr_encoder_encode(rtr_encoder *enc, float *out, const char *const *texts, const size_t *lens,
                              size_t n) {
    if (enc->n_threads > 0) omp_set_num_threads(enc->n_threads);
    int T_max = enc->max_len, C = enc->C;
    size_t chunk = n < ENCODE_CHUNK ? n : ENCODE_CHUNK;
    tokenized *toks = rtr_malloc((chunk ? chunk : 1) * sizeof *toks);
    int32_t *idbuf = rtr_malloc((chunk ? chunk : 1) * (size_t)T_max * sizeof *idbuf);
    rtr_status s = toks && idbuf ? rtr_backend_set_gemm_precision(enc->b, enc->precision) : RTR_ERR_NOMEM;
    for (size_t base = 0; base < n && !s; base += chunk) {
        size_t m = n - base < chunk ? n - base : chunk;
        int failed = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(| : failed) if (m >= SERIAL_TEXTS)
        for (size_t i = 0; i < m; i++) {
            const char *text = texts[base + i] ? texts[base + i] : "";
            size_t len = lens ? lens[base + i] : strlen(text);
            toks[i] = (tokenized){idbuf + i * (size_t)T_max, 0, base + i};
            failed |= tokenize(enc, text, len, &toks[i]) != RTR_OK;
        }
        if (failed) {
            s = rtr_fail(RTR_ERR_NOMEM, "encoder: tokenisation ran out of memory");
            break;
        }
        qsort(toks, m, sizeof *toks, cmp_len_desc);
        /* Longest first, each batch padded to its first text. While the
         * backend computes batch j, the host stages batch j + 1; once j is
         * done, j + 1 is queued at once and j's rows are copied out while it
         * computes (only synchronize is needed: the slots alternate). */
        batch cur = next_batch(enc, toks, m, 0);
        if (cur.B) {
            stage_batch(enc, &cur);
            s = launch_batch(enc, &cur);
        }
        for (size_t i = 0; cur.B && !s;) {
            i += (size_t)cur.B;
            batch nxt = next_batch(enc, toks + i, m - i, !cur.slot);
            if (nxt.B) stage_batch(enc, &nxt);
            s = rtr_backend_synchronize(enc->b);
            if (!s && nxt.B) s = launch_batch(enc, &nxt);
            for (int b = 0; b < cur.B && !s; b++)
                memcpy(out + cur.toks[b].index * (size_t)C, enc->h_pooled[cur.slot] + (size_t)b * C,
                       (size_t)C * sizeof *out);
            cur = nxt;
        }
        if (s) rtr_backend_synchronize(enc->b); /* nothing in flight may outlive this call's buffers */
    }
    /* NaN or infinite weights give NaN rows, which would be stored or printed */
    for (size_t i = 0; !s && i < n * (size_t)C; i++)
        if (!isfinite(out[i]))
            s = rtr_fail(RTR_ERR_FORMAT, "%s: text %zu gives a non-finite embedding (NaN or infinite weights in "
                         "model.safetensors?)", enc->name, i / (size_t)C);
    /* the precision is the backend's state: give a shared backend back with
     * its default, so a scorer or trainer after us does not inherit bf16 */
    rtr_backend_set_gemm_precision(enc->b, RTR_GEMM_F32);
    free(toks);
    free(idbuf);
    return s;
}
