/* `rtr train CORPUS_DIR --out CKPT`: the training stage (rtr_train_corpus,
 * src/predictor/train_corpus.c) on the compute backend --device opens. Logs
 * one line per epoch on stderr (its progress: none under --quiet); the
 * summary goes to stdout, as one JSON object with every epoch under --json.
 * A failed run leaves an existing checkpoint untouched. */
#include "cli/cli.h"
#include "rtr/stages.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cJSON *epochs; /* NULL without --json */
    const char *target, *device;
    bool normalize;
    int hidden, learn_dim;
} epoch_sink;

static void log_start(const rtr_train_summary *s, void *user) {
    const epoch_sink *k = user;
    if (rtr_quiet()) return;
    fprintf(stderr, "rtr train: %lld queries x %d pairs, D=%d (%s%s), hidden %d, learnable %d, token target %s%s, on %s\n",
            (long long)s->n_queries, s->n_pairs, s->dim, s->encoder, s->mapped ? ", memory-mapped" : "", k->hidden,
            k->learn_dim, k->target, k->normalize ? " (RMS-scaled)" : "", k->device);
}

static void log_epoch(const rtr_epoch_log *e, void *user) {
    epoch_sink *sink = user;
    if (!rtr_quiet())
        fprintf(stderr, "epoch %3d  train bce %.4f tok %.4f | val bce %.4f tok %.4f | score %.4f%s  (%.2fs)\n", e->epoch,
                e->train_bce, e->train_tok, e->val_bce, e->val_tok, e->val_score, e->best ? " *" : "", e->seconds);
    if (!sink->epochs) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", e->epoch);
    cJSON_AddNumberToObject(o, "train_bce", e->train_bce);
    cJSON_AddNumberToObject(o, "train_tok", e->train_tok);
    cJSON_AddNumberToObject(o, "val_bce", e->val_bce);
    cJSON_AddNumberToObject(o, "val_tok", e->val_tok);
    cJSON_AddNumberToObject(o, "val_score", e->val_score);
    cJSON_AddBoolToObject(o, "best", e->best);
    cJSON_AddNumberToObject(o, "seconds", e->seconds);
    cJSON_AddItemToArray(sink->epochs, o);
}

int cmd_train(int argc, char **argv) {
    rtr_train_corpus_params tp = rtr_train_corpus_default_params();
    rtr_train_params *cfg = &tp.train;
    const char *out = NULL, *device = "auto", *target = cfg->token_target == RTR_TOKENS_LOG ? "log" : "raw";
    long hidden = cfg->hidden, learn_dim = cfg->learn_dim, batch = cfg->batch, epochs = cfg->max_epochs,
         patience = cfg->patience, seed = (long)cfg->seed;
    double budget_mb = (double)(tp.memory_budget >> 20);
    long threads = 0;
    bool no_norm = false;
    const rtr_opt opts[] = {
        {"out", RTR_OPT_REQUIRED, &out, "checkpoint to write (.safetensors; replaced only on success)"},
        {"split", RTR_OPT_STR, &tp.split, "train on the queries of this split"},
        {"skip-dataset", RTR_OPT_STR, &tp.skip_dataset, "leave this dataset out of training (out-of-distribution runs)"},
        {"encoder", RTR_OPT_STR, &tp.encoder, "the embeddings to train on (embeddings/NAME; default: the only ones)"},
        {"memory-budget", RTR_OPT_NONNEG, &budget_mb, "MiB of query embeddings held in memory; beyond it they are memory-mapped (0: no limit)"},
        {"hidden", RTR_OPT_COUNT, &hidden, "hidden units of each head"},
        {"learn-dim", RTR_OPT_INT, &learn_dim, "learnable model/strategy embedding size (0: none)"},
        {"lr", RTR_OPT_POSITIVE, &cfg->lr, "Adam learning rate"},
        {"batch", RTR_OPT_COUNT, &batch, "queries per step (each with all its pairs)"},
        {"epochs", RTR_OPT_COUNT, &epochs, "maximum epochs"},
        {"patience", RTR_OPT_INT, &patience, "stop after this many epochs without validation gain"},
        {"val-frac", RTR_OPT_UNIT, &cfg->val_frac, "share of the training queries held out for early stopping"},
        {"seed", RTR_OPT_SEED, &seed, "seed of init, validation carve and batch order"},
        {"token-target", RTR_OPT_STR, &target, "token head target: log (log1p tokens) or raw (the paper)"},
        {"no-token-scale", RTR_OPT_FLAG, &no_norm, "do not divide the token target by its RMS (the paper)"},
        RTR_OPT_DEVICE(&device),
        CLI_OPT_THREADS(&threads),
        {0}};
    const rtr_cmd_spec spec = {
        "train", "CORPUS_DIR --out CHECKPOINT",
        "Train the RTR predictor (correctness and token heads over the query embedding and\n"
        "the model/strategy representations) on one split of an encoded corpus. A\n"
        "validation share of that split, drawn with --seed, drives early stopping.\n"
        "The paper's setting is --token-target raw --no-token-scale.",
        opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    static const char *const exts[] = {".safetensors", NULL};
    if ((rc = rtr_args_check_ext(&spec, "out", out, exts))) return rc;
    const char *dir = a.pos[0];
    cli_set_threads(threads);
    if (strcmp(target, "log") && strcmp(target, "raw")) {
        fprintf(stderr, "rtr train: --token-target '%s': expected log or raw\n", target);
        return 2;
    }
    cfg->hidden = (int32_t)hidden, cfg->learn_dim = (int32_t)learn_dim, cfg->batch = (int32_t)batch;
    cfg->max_epochs = (int32_t)epochs, cfg->patience = (int32_t)patience, cfg->seed = (uint64_t)seed;
    cfg->token_target = strcmp(target, "log") ? RTR_TOKENS_RAW : RTR_TOKENS_LOG;
    cfg->token_normalize = !no_norm;
    /* a budget beyond the address space is no limit at all */
    tp.memory_budget = budget_mb * (1 << 20) < (double)SIZE_MAX ? (size_t)(budget_mb * (1 << 20)) : 0;

    rtr_predictor p = {0};
    rtr_backend be = {0};
    rtr_train_summary s;
    epoch_sink sink = {a.json ? cJSON_CreateArray() : NULL, target, NULL, cfg->token_normalize, cfg->hidden, cfg->learn_dim};
    tp.log = log_epoch;
    tp.on_start = log_start;
    tp.user = &sink;
    double t0 = rtr_now();
    rtr_status st = rtr_corpus_check_names(dir, tp.split, &tp.skip_dataset, 1);
    if (!st) st = rtr_backend_init(&be, device);
    sink.device = be.device;
    if (!st) st = rtr_train_corpus(&be, &p, &s, out, dir, &tp);
    if (st) {
        cJSON_Delete(sink.epochs);
        rtr_backend_free(&be);
        return cli_error("train");
    }
    double seconds = rtr_now() - t0; /* the whole run: reading, training, writing */
    if (a.json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "checkpoint", out);
        cJSON_AddStringToObject(root, "checkpoint_hash", s.checkpoint_hash);
        cJSON_AddNumberToObject(root, "n_queries", (double)s.n_queries);
        cJSON_AddStringToObject(root, "encoder", s.encoder);
        cJSON_AddBoolToObject(root, "memory_mapped", s.mapped);
        cJSON_AddStringToObject(root, "device", be.device);
        cJSON_AddNumberToObject(root, "token_scale", p.token_scale);
        cJSON_AddNumberToObject(root, "seconds", seconds);
        cJSON_AddItemToObject(root, "epochs", sink.epochs);
        cli_print_json(root);
    } else {
        printf("wrote %s (checkpoint %s, token scale %g) in %.1fs on %s\n", out, s.checkpoint_hash, p.token_scale,
               seconds, be.device);
    }
    rtr_backend_free(&be);
    rtr_predictor_free(&p);
    return 0;
}
