/* `rtr score --checkpoint CKPT CORPUS_DIR`: the routing tables. For every
 * shard, the predicted correctness probability and output tokens of every
 * (query, pair) go to /routing/p_correct and /routing/tokens (n x K float32,
 * attribute checkpoint_hash), added to the shard atomically. Every shard is
 * checked (embeddings present, encoder and catalog match the checkpoint)
 * before the first one is written, so a refused run changes nothing.
 * The arithmetic runs on a compute backend (--device; score_backend.c). */
#include "args.h"
#include "pred_data.h"
#include "rtr/backend.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pass 1: the catalog matches, and every shard carries finite query
 * embeddings of the checkpoint's encoder. Reading the embeddings twice costs
 * I/O but means a bad shard is found before any table is replaced. */
static rtr_status check_shards(const rtr_predictor *p, const rtr_corpus *c) {
    rtr_status s = pred_check_compatible(p, c, NULL);
    for (int i = 0; !s && i < rtr_corpus_n_shards(c); i++) {
        const char *path = rtr_corpus_shard_path(c, i);
        char *hash;
        float *emb = NULL;
        int64_t n = 0, D = 0;
        s = pred_shard_encoder_hash(path, &hash);
        if (!s && p->encoder_hash && strcmp(hash, p->encoder_hash))
            s = rtr_fail(RTR_ERR_INVALID, "%s: query embeddings come from encoder %s, the checkpoint was "
                         "trained on encoder %s", path, hash, p->encoder_hash);
        if (!s) s = rtr_shard_read_matrix(path, "/embedding/query", &emb, &n, &D);
        for (size_t j = 0; !s && j < (size_t)(n * D); j++)
            if (!isfinite(emb[j]))
                s = rtr_fail(RTR_ERR_NUMERIC, "%s: /embedding/query row %lld holds NaN/inf", path, (long long)(j / D));
        free(hash);
        free(emb);
    }
    return s;
}

static rtr_status score_shard(rtr_backend *be, const rtr_predictor *p, const char *path, const char *hash) {
    float *emb = NULL;
    int64_t n, D;
    rtr_status s = rtr_shard_read_matrix(path, "/embedding/query", &emb, &n, &D);
    if (!s && D != p->D)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: query embeddings have %lld dims, the checkpoint %d", path, (long long)D, p->D);
    size_t nk = (size_t)n * p->n_pairs;
    float *pc = s ? NULL : rtr_malloc(sizeof(float) * 2 * (nk ? nk : 1));
    if (!s && !pc) s = RTR_ERR_NOMEM;
    if (!s) s = rtr_predictor_score_backend(be, p, emb, n, 0, pc, pc + nk);
    if (s) rtr_fail_prefix(s, "%s: ", path);
    if (!s) {
        const char *keys[] = {"checkpoint_hash"}, *vals[] = {hash};
        rtr_matrix_out m[2] = {{"/routing/p_correct", pc, n, p->n_pairs, 1, keys, vals},
                               {"/routing/tokens", pc + nk, n, p->n_pairs, 1, keys, vals}};
        s = rtr_shard_put_matrices(path, m, 2);
    }
    free(emb);
    free(pc);
    return s;
}

int cmd_score(int argc, char **argv) {
    const char *ckpt = NULL, *device = "auto";
    const rtr_opt opts[] = {{"checkpoint", RTR_OPT_REQUIRED, &ckpt, "predictor checkpoint from `rtr train`"},
                            RTR_OPT_DEVICE(&device),
                            {0}};
    const rtr_cmd_spec spec = {"score", "--checkpoint CHECKPOINT CORPUS_DIR",
                               "Predict correctness and output tokens of every (query, pair) of an encoded\n"
                               "corpus and store them per shard as /routing/p_correct and /routing/tokens.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    bool json = a.json;

    rtr_predictor p = {0};
    rtr_corpus *c = NULL;
    rtr_backend be = {0};
    double t0 = rtr_now();
    rtr_status s = rtr_predictor_load(&p, ckpt);
    if (!s) s = rtr_corpus_open(&c, dir);
    if (!s) s = check_shards(&p, c);
    if (!s) s = rtr_backend_init(&be, device);
    char hash[17] = "";
    if (!s) rtr_predictor_hash_hex(&p, hash);
    rtr_progress prog;
    rtr_progress_init(&prog, "score", (double)(c ? rtr_corpus_n_queries(c) : 0));
    int64_t done = 0;
    for (int i = 0; !s && i < rtr_corpus_n_shards(c); i++) {
        s = score_shard(&be, &p, rtr_corpus_shard_path(c, i), hash);
        done += rtr_corpus_shard_queries(c, i);
        rtr_progress_update(&prog, (double)done);
    }
    rtr_progress_end(&prog);
    double secs = rtr_now() - t0;
    if (s) {
        fprintf(stderr, "rtr score: error: %s\n", rtr_last_error());
    } else if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "corpus", dir);
        cJSON_AddStringToObject(o, "checkpoint_hash", hash);
        cJSON_AddNumberToObject(o, "n_queries", (double)done);
        cJSON_AddNumberToObject(o, "n_pairs", p.n_pairs);
        cJSON_AddStringToObject(o, "device", be.device);
        cJSON_AddNumberToObject(o, "seconds", secs);
        char *text = cJSON_PrintUnformatted(o);
        if (text) puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        printf("scored %lld queries x %d pairs in %.2fs on %s (checkpoint %s)\n", (long long)done, p.n_pairs, secs,
               be.device, hash);
    }
    rtr_backend_free(&be);
    if (c) rtr_corpus_close(c);
    rtr_predictor_free(&p);
    return s ? 1 : 0;
}
