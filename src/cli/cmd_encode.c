/* `rtr encode --model MODEL_DIR CORPUS_DIR`: the encoding stage. Every shard
 * gets /embedding/query [n x D] (its queries' texts) and the catalog's
 * /embedding/model_desc [n_models x D] and /embedding/strategy_desc
 * [n_strategies x D], each with the attributes encoder (folder name) and
 * encoder_hash (hash of the weights). A shard whose three datasets already
 * carry this encoder's hash is skipped, so an interrupted run resumes where it
 * stopped; each shard is rewritten atomically (rtr_shard_put_matrices).
 * --device picks the backend the encoder computes on (default auto: a GPU
 * when one answers), --precision its GEMM inputs (default auto: bf16 on a
 * GPU, fp32 on the CPU). */
#include "cli/args.h"
#include "rtr/encoder.h"
#include "rtr/store.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *const EMB_NAMES[3] = {"/embedding/query", "/embedding/model_desc", "/embedding/strategy_desc"};

/* Texts per encoder call: at least this many, so the progress line moves
 * within a shard, and about 16 batches of 64-token texts (batch_tokens / 4),
 * so a GPU is not left waiting on the host between calls. */
#define ENCODE_STEP 1024

/* Whether all three datasets of the shard come from this encoder. */
static bool shard_up_to_date(const char *path, const char *hash) {
    for (int k = 0; k < 3; k++) {
        char *h = rtr_shard_has(path, EMB_NAMES[k]) ? rtr_shard_read_attr(path, EMB_NAMES[k], "encoder_hash") : NULL;
        bool same = h && strcmp(h, hash) == 0;
        free(h);
        if (!same) return false;
    }
    return true;
}

/* Embed the catalog entries' descriptions (the name when a description is
 * empty) into out [n x D]. */
static rtr_status embed_entries(rtr_encoder *enc, const rtr_catalog_entry *e, int32_t n, float *out) {
    const char **texts = rtr_malloc(sizeof *texts * (size_t)(n ? n : 1));
    if (!texts) return RTR_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) texts[i] = e[i].description && *e[i].description ? e[i].description : e[i].name;
    rtr_status s = rtr_encoder_encode(enc, texts, NULL, (size_t)n, out);
    free(texts);
    return s;
}

/* Encode one shard's queries and write them with the catalog's description
 * embeddings; *encode_secs accumulates the time inside the encoder. */
static rtr_status encode_shard(rtr_encoder *enc, const char *path, const float *desc[2], const rtr_catalog *cat,
                               rtr_progress *prog, int64_t *done, double *encode_secs) {
    rtr_shard sh = {0};
    rtr_status s = rtr_shard_read(path, &sh, NULL);
    int D = rtr_encoder_dim(enc);
    int64_t step = rtr_encoder_batch_tokens(enc) / 4 > ENCODE_STEP ? rtr_encoder_batch_tokens(enc) / 4 : ENCODE_STEP;
    float *emb = s ? NULL : rtr_malloc(sizeof(float) * (size_t)(sh.n ? sh.n : 1) * (size_t)D);
    if (!s && !emb) s = RTR_ERR_NOMEM;
    for (int64_t i = 0; !s && i < sh.n; i += step) {
        int64_t m = sh.n - i < step ? sh.n - i : step;
        double t0 = rtr_now();
        s = rtr_encoder_encode(enc, (const char *const *)sh.text + i, NULL, (size_t)m, emb + i * D);
        *encode_secs += rtr_now() - t0;
        *done += m;
        rtr_progress_update(prog, (double)*done);
    }
    if (s) rtr_fail_prefix(s, "%s: ", path);
    if (!s) {
        const char *keys[] = {"encoder", "encoder_hash"};
        const char *vals[] = {rtr_encoder_name(enc), rtr_encoder_hash(enc)};
        rtr_matrix_out m[3] = {{EMB_NAMES[0], emb, sh.n, D, 2, keys, vals},
                               {EMB_NAMES[1], desc[0], cat->n_models, D, 2, keys, vals},
                               {EMB_NAMES[2], desc[1], cat->n_strategies, D, 2, keys, vals}};
        s = rtr_shard_put_matrices(path, m, 3);
    }
    free(emb);
    rtr_shard_free(&sh);
    return s;
}

int cmd_encode(int argc, char **argv) {
    const char *model = NULL, *device = "auto", *precision = "auto";
    long threads = 0;
    bool force = false;
    const rtr_opt opts[] = {{"model", RTR_OPT_REQUIRED, &model, "sentence-transformers model folder (tools/fetch-encoder)"},
                            RTR_OPT_DEVICE(&device),
                            {"precision", RTR_OPT_STR, &precision,
                             "GEMM inputs: fp32, bf16 or fp16 (CUDA only), auto (bf16 on CUDA, fp32 on the CPU)"},
                            {"threads", RTR_OPT_INT, &threads, "CPU threads (0: all)"},
                            {"force", RTR_OPT_FLAG, &force, "re-encode shards that are already up to date"},
                            {0}};
    const rtr_cmd_spec spec = {"encode", "--model MODEL_DIR CORPUS_DIR",
                               "Add query embeddings (/embedding/query) and the catalog's model and strategy\n"
                               "description embeddings to every shard, with the encoder's name and weights hash\n"
                               "as attributes. Shards already encoded by the same weights are skipped.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    bool json = a.json;
    double t0 = rtr_now();
    rtr_corpus *c = NULL;
    rtr_encoder *enc = NULL;
    rtr_encoder_params p = rtr_encoder_default_params();
    p.n_threads = (int)threads;
    p.device = device;
    p.precision = precision;
    rtr_status s = rtr_corpus_open(&c, dir);
    if (!s) s = rtr_encoder_load(model, &p, &enc);
    double load_secs = rtr_now() - t0, encode_secs = 0;
    const rtr_catalog *cat = c ? rtr_corpus_catalog(c) : NULL;
    float *desc[2] = {NULL, NULL};
    if (!s) {
        int D = rtr_encoder_dim(enc);
        desc[0] = rtr_malloc(sizeof(float) * (size_t)(cat->n_models + 1) * (size_t)D);
        desc[1] = rtr_malloc(sizeof(float) * (size_t)(cat->n_strategies + 1) * (size_t)D);
        s = desc[0] && desc[1] ? embed_entries(enc, cat->models, cat->n_models, desc[0]) : RTR_ERR_NOMEM;
        if (!s) s = embed_entries(enc, cat->strategies, cat->n_strategies, desc[1]);
    }
    rtr_progress prog;
    rtr_progress_init(&prog, "encode", (double)(c ? rtr_corpus_n_queries(c) : 0));
    int64_t done = 0, encoded = 0;
    int skipped = 0;
    for (int i = 0; !s && i < rtr_corpus_n_shards(c); i++) {
        const char *path = rtr_corpus_shard_path(c, i);
        if (!force && shard_up_to_date(path, rtr_encoder_hash(enc))) {
            skipped++;
            done += rtr_corpus_shard_queries(c, i);
            rtr_progress_update(&prog, (double)done);
            continue;
        }
        int64_t before = done;
        s = encode_shard(enc, path, (const float *[2]){desc[0], desc[1]}, cat, &prog, &done, &encode_secs);
        encoded += done - before;
    }
    rtr_progress_end(&prog);
    double secs = rtr_now() - t0;
    if (s) {
        fprintf(stderr, "rtr encode: error: %s\n", rtr_last_error());
    } else if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "corpus", dir);
        cJSON_AddStringToObject(o, "encoder", rtr_encoder_name(enc));
        cJSON_AddStringToObject(o, "encoder_hash", rtr_encoder_hash(enc));
        cJSON_AddNumberToObject(o, "dim", rtr_encoder_dim(enc));
        cJSON_AddStringToObject(o, "device", rtr_encoder_device(enc));
        cJSON_AddStringToObject(o, "precision", rtr_encoder_precision(enc));
        cJSON_AddNumberToObject(o, "batch_tokens", rtr_encoder_batch_tokens(enc));
        cJSON_AddNumberToObject(o, "n_shards", rtr_corpus_n_shards(c));
        cJSON_AddNumberToObject(o, "shards_skipped", skipped);
        cJSON_AddNumberToObject(o, "queries_encoded", (double)encoded);
        cJSON_AddNumberToObject(o, "seconds", secs);
        cJSON_AddNumberToObject(o, "load_seconds", load_secs);     /* corpus, weights, device */
        cJSON_AddNumberToObject(o, "encode_seconds", encode_secs); /* inside the encoder, queries only */
        char *text = cJSON_PrintUnformatted(o);
        if (text) puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        printf("encoded %lld queries in %d of %d shard(s) with %s (weights %s, %d-d) on %s (%s GEMMs) in %.2fs",
               (long long)encoded, rtr_corpus_n_shards(c) - skipped, rtr_corpus_n_shards(c), rtr_encoder_name(enc),
               rtr_encoder_hash(enc), rtr_encoder_dim(enc), rtr_encoder_device(enc), rtr_encoder_precision(enc),
               secs);
        if (skipped) printf("; %d shard(s) already up to date", skipped);
        if (encoded && secs > 0) printf("; %.1f queries/s", (double)encoded / secs);
        putchar('\n');
    }
    free(desc[0]);
    free(desc[1]);
    rtr_encoder_free(enc);
    if (c) rtr_corpus_close(c);
    return s ? 1 : 0;
}
