/* `rtr score --checkpoint CKPT CORPUS_DIR [--name NAME]`: the scoring stage
 * (rtr_score_corpus, src/predictor/score.c): a named routing table of the
 * checkpoint's predictions for every (query, pair), computed on a backend
 * (--device) from the embeddings of the checkpoint's encoder, streamed in
 * chunks. */
#include "cli/cli.h"
#include "rtr/stages.h"
#include "common/util.h"

#include <stdlib.h>

int cmd_score(int argc, char **argv) {
    const char *ckpt = NULL, *device = "auto";
    rtr_score_params sp = {0};
    long chunk = 16384, threads = 0;
    const char *part = NULL;
    const rtr_opt opts[] = {{"checkpoint", RTR_OPT_REQUIRED, &ckpt, "predictor checkpoint from `rtr train`"},
                            {"name", RTR_OPT_STR, &sp.name, "table name (tables/NAME; default: the checkpoint's file name)"},
                            RTR_OPT_DEVICE(&device),
                            CLI_OPT_THREADS(&threads),
                            {"chunk-rows", RTR_OPT_ROWS, &chunk, "queries per chunk read and scored at a time"},
                            {"part", RTR_OPT_STR, &part, "score only part I of N of the shards (I/N; docs/SCALING.md)"},
                            {0}};
    const rtr_cmd_spec spec = {"score", "--checkpoint CHECKPOINT CORPUS_DIR",
                               "Predict correctness and output tokens of every (query, pair) of an encoded\n"
                               "corpus into the routing table CORPUS_DIR/tables/NAME/ (one file per shard,\n"
                               "beside it). A corpus keeps many tables; route, sweep and eval choose one\n"
                               "with --table. A table of the same name is replaced only by a complete one.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    cli_set_threads(threads);
    sp.chunk_rows = chunk;
    if (part && rtr_part_parse(&sp.part, part)) {
        fprintf(stderr, "rtr score: %s\n", rtr_last_error());
        return 2;
    }
    sp.checkpoint_path = ckpt;
    rtr_predictor p = {0};
    rtr_backend be = {0};
    rtr_score_summary s;
    double t0 = rtr_now();
    rtr_status st = rtr_predictor_load(&p, ckpt);
    if (!st) st = rtr_backend_init(&be, device);
    if (!st) st = rtr_score_corpus(&be, &s, dir, &p, &sp);
    double secs = rtr_now() - t0;
    if (st) {
        rtr_backend_free(&be);
        rtr_predictor_free(&p);
        return cli_error("score");
    }
    if (a.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "corpus", dir);
        cJSON_AddStringToObject(o, "table", s.table);
        cJSON_AddStringToObject(o, "checkpoint_hash", s.checkpoint_hash);
        cJSON_AddStringToObject(o, "encoder", s.encoder);
        cJSON_AddNumberToObject(o, "n_queries", (double)s.n_queries);
        cJSON_AddNumberToObject(o, "n_pairs", s.n_pairs);
        cJSON_AddStringToObject(o, "device", be.device);
        cJSON_AddNumberToObject(o, "seconds", secs);
        cli_print_json(o);
    } else {
        printf("scored %lld queries x %d pairs in %.2fs on %s (checkpoint %s) -> table %s\n", (long long)s.n_queries,
               s.n_pairs, secs, be.device, s.checkpoint_hash, s.table);
    }
    rtr_backend_free(&be);
    rtr_predictor_free(&p);
    return 0;
}
