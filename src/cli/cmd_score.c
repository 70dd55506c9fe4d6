/* `rtr score --checkpoint CKPT CORPUS_DIR`: the routing tables. For every
 * shard, the predicted correctness probability and output tokens of every
 * (query, pair) go to /routing/p_correct and /routing/tokens (n x K float32,
 * attribute checkpoint_hash), added to the shard atomically. Every shard is
 * checked (embeddings present, encoder and catalog match the checkpoint)
 * before the first one is written, so a refused run changes nothing.
 * The arithmetic runs on a compute backend (--device; score_backend.c),
 * the embeddings streamed from the shard in chunks through pinned double
 * buffers so HDF5 reads overlap the compute. */
#include "cli/args.h"
#include "predictor/pred_data.h"
#include "rtr/backend.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows per chunk, of the checking pass and of the stream, by default. */
#define CHUNK_ROWS 16384

/* Pass 1: the catalog matches, and every shard carries finite query
 * embeddings of the checkpoint's encoder. Reading the embeddings twice costs
 * I/O but means a bad shard is found before any table is replaced. */
static rtr_status check_shards(const rtr_predictor *p, const rtr_corpus *c, int64_t chunk) {
    rtr_status s = pred_check_compatible(p, c, NULL);
    float *buf = s ? NULL : rtr_malloc(sizeof(float) * (size_t)chunk * (size_t)p->D);
    if (!s && !buf) s = RTR_ERR_NOMEM;
    for (int i = 0; !s && i < rtr_corpus_n_shards(c); i++) {
        const char *path = rtr_corpus_shard_path(c, i);
        char *hash;
        rtr_matrix_reader *r = NULL;
        int64_t n = 0, D = 0;
        s = pred_shard_encoder_hash(path, &hash);
        if (!s && p->encoder_hash && strcmp(hash, p->encoder_hash))
            s = rtr_fail(RTR_ERR_INVALID, "%s: query embeddings come from encoder %s, the checkpoint was "
                         "trained on encoder %s", path, hash, p->encoder_hash);
        if (!s) s = rtr_matrix_reader_open(&r, path, "/embedding/query", &n, &D);
        if (!s && D != p->D)
            s = rtr_fail(RTR_ERR_FORMAT, "%s: query embeddings have %lld dims, the checkpoint %d", path, (long long)D, p->D);
        for (int64_t r0 = 0; !s && r0 < n; r0 += chunk) {
            int64_t rows = n - r0 < chunk ? n - r0 : chunk;
            s = rtr_matrix_reader_read(r, r0, rows, buf);
            for (size_t j = 0; !s && j < (size_t)(rows * D); j++)
                if (!isfinite(buf[j]))
                    s = rtr_fail(RTR_ERR_NUMERIC, "%s: /embedding/query row %lld holds NaN/inf", path,
                                 (long long)(r0 + (int64_t)(j / D)));
        }
        rtr_matrix_reader_close(r);
        free(hash);
    }
    free(buf);
    return s;
}

/* Pass 2: one shard's tables, streamed from its embeddings, then added to
 * the shard through a temporary copy. */
static rtr_status score_shard(rtr_backend *be, const rtr_predictor *p, const char *path, const char *hash,
                              int64_t chunk) {
    float *pc = NULL, *tok = NULL;
    int64_t n = 0;
    rtr_status s = rtr_predictor_score_shard(be, p, path, chunk, &n, &pc, &tok);
    if (!s) {
        const char *keys[] = {"checkpoint_hash"}, *vals[] = {hash};
        rtr_matrix_out m[2] = {{"/routing/p_correct", pc, n, p->n_pairs, 1, keys, vals},
                               {"/routing/tokens", tok, n, p->n_pairs, 1, keys, vals}};
        s = rtr_shard_put_matrices(path, m, 2);
    }
    free(pc);
    free(tok);
    return s;
}

int cmd_score(int argc, char **argv) {
    const char *ckpt = NULL, *device = "auto";
    long chunk = CHUNK_ROWS;
    const rtr_opt opts[] = {{"checkpoint", RTR_OPT_REQUIRED, &ckpt, "predictor checkpoint from `rtr train`"},
                            RTR_OPT_DEVICE(&device),
                            {"chunk-rows", RTR_OPT_INT, &chunk, "queries per chunk read and scored at a time"},
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
    if (chunk < 1 || chunk > (1 << 24)) {
        fprintf(stderr, "rtr score: --chunk-rows must be in 1 .. %d\n", 1 << 24);
        return 2;
    }

    rtr_predictor p = {0};
    rtr_corpus *c = NULL;
    rtr_backend be = {0};
    double t0 = rtr_now();
    rtr_status s = rtr_predictor_load(&p, ckpt);
    if (!s) s = rtr_corpus_open(&c, dir);
    if (!s) s = check_shards(&p, c, chunk);
    if (!s) s = rtr_backend_init(&be, device);
    char hash[17] = "";
    if (!s) rtr_predictor_hash_hex(&p, hash);
    rtr_progress prog;
    rtr_progress_init(&prog, "score", (double)(c ? rtr_corpus_n_queries(c) : 0));
    int64_t done = 0;
    for (int i = 0; !s && i < rtr_corpus_n_shards(c); i++) {
        s = score_shard(&be, &p, rtr_corpus_shard_path(c, i), hash, chunk);
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
