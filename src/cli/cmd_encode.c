/* `rtr encode --model MODEL_DIR CORPUS_DIR`: the encoding stage
 * (rtr_encode_corpus, src/encoder/encode_corpus.c). --device picks the
 * backend the encoder computes on (default auto: a GPU when one answers),
 * --precision its GEMM inputs (default auto: bf16 on a GPU and on a CPU with
 * bf16 GEMMs, else fp32; docs/ENCODER.md). */
#include "cli/cli.h"
#include "rtr/stages.h"
#include "common/util.h"

#include <stdlib.h>

int cmd_encode(int argc, char **argv) {
    const char *model = NULL, *device = "auto", *precision = "auto";
    long threads = 0, max_len = 0;
    rtr_encode_params ep = {0};
    const char *part = NULL;
    const rtr_opt opts[] = {{"model", RTR_OPT_REQUIRED, &model, "sentence-transformers model folder (tools/fetch-encoder)"},
                            {"name", RTR_OPT_STR, &ep.name, "the encoding's name (embeddings/NAME; default: the model folder's name)"},
                            RTR_OPT_DEVICE(&device),
                            {"precision", RTR_OPT_STR, &precision,
                             "GEMM inputs: fp32, bf16 or fp16 (CUDA only), auto (bf16 on CUDA and on CPUs with AVX-512 BF16, else fp32)"},
                            CLI_OPT_THREADS(&threads),
                            {"max-length", RTR_OPT_INT, &max_len,
                             "tokens per text incl. specials (0: the model's; another length is part of the encoder hash)"},
                            {"force", RTR_OPT_FLAG, &ep.force, "re-encode shards that are already up to date"},
                            {"part", RTR_OPT_STR, &part, "encode only part I of N of the shards (I/N; docs/SCALING.md)"},
                            {0}};
    const rtr_cmd_spec spec = {"encode", "--model MODEL_DIR CORPUS_DIR",
                               "Embed every query and the catalog's model and strategy descriptions into\n"
                               "CORPUS_DIR/embeddings/NAME/ (one file per shard, beside it; the shards are not\n"
                               "touched), with the encoder's name and weights hash. Shards already encoded by\n"
                               "the same weights are skipped, so an interrupted run resumes.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    if (part && rtr_part_parse(&ep.part, part)) {
        fprintf(stderr, "rtr encode: %s\n", rtr_last_error());
        return 2;
    }
    double t0 = rtr_now();
    rtr_encoder *enc = NULL;
    rtr_encoder_params p = rtr_encoder_default_params();
    p.n_threads = (int)threads;
    p.max_seq_length = max_len > 1 << 20 ? 1 << 20 : (int)max_len; /* the encoder refuses what exceeds the model */
    p.device = device;
    p.precision = precision;
    rtr_encode_summary s;
    rtr_status st = rtr_encoder_load(&enc, model, &p);
    double load_secs = rtr_now() - t0;
    if (!st) st = rtr_encode_corpus(enc, &s, dir, &ep);
    double secs = rtr_now() - t0;
    if (st) {
        rtr_encoder_free(enc);
        return cli_error("encode");
    }
    if (a.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "corpus", dir);
        cJSON_AddStringToObject(o, "encoding", s.name);
        cJSON_AddStringToObject(o, "encoder", rtr_encoder_name(enc));
        cJSON_AddStringToObject(o, "encoder_hash", rtr_encoder_hash(enc));
        cJSON_AddNumberToObject(o, "dim", rtr_encoder_dim(enc));
        cJSON_AddStringToObject(o, "device", rtr_encoder_device(enc));
        cJSON_AddStringToObject(o, "precision", rtr_encoder_precision(enc));
        cJSON_AddNumberToObject(o, "batch_tokens", rtr_encoder_batch_tokens(enc));
        cJSON_AddNumberToObject(o, "n_shards", s.n_shards);
        cJSON_AddNumberToObject(o, "shards_skipped", s.shards_skipped);
        cJSON_AddNumberToObject(o, "queries_encoded", (double)s.queries_encoded);
        cJSON_AddNumberToObject(o, "seconds", secs);
        cJSON_AddNumberToObject(o, "load_seconds", load_secs);         /* weights, device */
        cJSON_AddNumberToObject(o, "encode_seconds", s.encode_seconds); /* inside the encoder, queries only */
        cli_print_json(o);
    } else {
        printf("encoded %lld queries in %d of %d shard(s) with %s (weights %s, %d-d) on %s (%s GEMMs) in %.2fs",
               (long long)s.queries_encoded, s.n_shards - s.shards_skipped, s.n_shards, rtr_encoder_name(enc),
               rtr_encoder_hash(enc), rtr_encoder_dim(enc), rtr_encoder_device(enc), rtr_encoder_precision(enc), secs);
        if (s.shards_skipped) printf("; %d shard(s) already up to date", s.shards_skipped);
        if (s.queries_encoded && secs > 0) printf("; %.1f queries/s", (double)s.queries_encoded / secs);
        printf(" -> %s/embeddings/%s\n", dir, s.name);
    }
    rtr_encoder_free(enc);
    return 0;
}
