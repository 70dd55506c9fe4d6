/* `rtr train CORPUS_DIR --out CKPT`: fit the RTR predictor on one split of an
 * encoded corpus (rows, embeddings via pred_data.c; training in train.c, on
 * the compute backend --device opens) and save a safetensors checkpoint
 * (checkpoint.c). Logs one line per epoch on stderr; --json prints the run
 * summary with every epoch on stdout. A failed run leaves an existing
 * checkpoint untouched. */
#include "cli/args.h"
#include "predictor/pred_data.h"
#include "rtr/backend.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cJSON *epochs; /* NULL without --json */
} epoch_sink;

static void log_epoch(const rtr_epoch_log *e, void *user) {
    epoch_sink *sink = user;
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
    rtr_train_params cfg = rtr_train_default_params();
    const char *out = NULL, *split = "train", *skip_dataset = NULL, *device = "auto",
               *target = cfg.token_target == RTR_TOKENS_LOG ? "log" : "raw";
    long hidden = cfg.hidden, learn_dim = cfg.learn_dim, batch = cfg.batch, epochs = cfg.max_epochs,
         patience = cfg.patience, seed = (long)cfg.seed;
    bool no_norm = false;
    const rtr_opt opts[] = {
        {"out", RTR_OPT_REQUIRED, &out, "checkpoint to write (.safetensors; replaced only on success)"},
        {"split", RTR_OPT_STR, &split, "train on the queries of this split"},
        {"skip-dataset", RTR_OPT_STR, &skip_dataset, "leave this dataset out of training (out-of-distribution runs)"},
        {"hidden", RTR_OPT_INT, &hidden, "hidden units of each head"},
        {"learn-dim", RTR_OPT_INT, &learn_dim, "learnable model/strategy embedding size (0: none)"},
        {"lr", RTR_OPT_DOUBLE, &cfg.lr, "Adam learning rate"},
        {"batch", RTR_OPT_INT, &batch, "queries per step (each with all its pairs)"},
        {"epochs", RTR_OPT_INT, &epochs, "maximum epochs"},
        {"patience", RTR_OPT_INT, &patience, "stop after this many epochs without validation gain"},
        {"val-frac", RTR_OPT_DOUBLE, &cfg.val_frac, "share of the training queries held out for early stopping"},
        {"seed", RTR_OPT_INT, &seed, "seed of init, validation carve and batch order"},
        {"token-target", RTR_OPT_STR, &target, "token head target: log (log1p tokens) or raw (the paper)"},
        {"no-token-scale", RTR_OPT_FLAG, &no_norm, "do not divide the token target by its RMS (the paper)"},
        RTR_OPT_DEVICE(&device),
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
    const char *dir = a.pos[0];
    bool json = a.json;
    if (strcmp(target, "log") && strcmp(target, "raw")) {
        fprintf(stderr, "rtr train: --token-target must be log or raw\n");
        return 2;
    }
    cfg.hidden = (int32_t)hidden, cfg.learn_dim = (int32_t)learn_dim, cfg.batch = (int32_t)batch;
    cfg.max_epochs = (int32_t)epochs, cfg.patience = (int32_t)patience, cfg.seed = (uint64_t)seed;
    cfg.token_target = strcmp(target, "log") ? RTR_TOKENS_RAW : RTR_TOKENS_LOG;
    cfg.token_normalize = !no_norm;

    rtr_corpus *c = NULL;
    pred_rows rows = {0};
    rtr_predictor p = {0};
    rtr_backend be = {0};
    float *dm = NULL, *ds = NULL;
    epoch_sink sink = {json ? cJSON_CreateArray() : NULL};
    double t0 = rtr_now();
    rtr_status s = rtr_corpus_open(&c, dir);
    if (!s) s = pred_rows_load(&rows, c, split, skip_dataset, true);
    if (!s) s = pred_desc_load(c, rows.D, &dm, &ds);
    if (!s) s = rtr_predictor_init(&p, &cfg, rtr_corpus_catalog(c), rows.D, dm, ds);
    if (!s) s = rtr_backend_init(&be, device);
    if (!s) {
        p.encoder = rows.encoder ? rtr_strdup(rows.encoder) : NULL;
        p.encoder_hash = rtr_strdup(rows.encoder_hash);
        p.train_split = rtr_strdup(split);
        p.train_skip_dataset = skip_dataset ? rtr_strdup(skip_dataset) : NULL;
        fprintf(stderr, "rtr train: %lld queries x %d pairs, D=%d, hidden %d, learnable %d, token target %s%s, "
                "on %s\n", (long long)rows.n, rows.K, rows.D, cfg.hidden, cfg.learn_dim, target,
                cfg.token_normalize ? " (RMS-scaled)" : "", be.device);
        rtr_train_data data = {rows.n, rows.D, rows.K, rows.emb, rows.correct, rows.tokens};
        s = rtr_predictor_train_on(&be, &p, &data, log_epoch, &sink);
    }
    if (!s) s = rtr_predictor_save(&p, out);
    if (s) {
        fprintf(stderr, "rtr train: error: %s\n", rtr_last_error());
    } else {
        char hash[17];
        rtr_predictor_hash_hex(&p, hash);
        fprintf(stderr, "rtr train: wrote %s (checkpoint %s, token scale %g) in %.1fs on %s\n", out, hash,
                p.token_scale, rtr_now() - t0, be.device);
        if (json) {
            cJSON *root = cJSON_CreateObject();
            cJSON_AddStringToObject(root, "checkpoint", out);
            cJSON_AddStringToObject(root, "checkpoint_hash", hash);
            cJSON_AddNumberToObject(root, "n_queries", (double)rows.n);
            cJSON_AddStringToObject(root, "device", be.device);
            cJSON_AddNumberToObject(root, "token_scale", p.token_scale);
            cJSON_AddItemToObject(root, "epochs", sink.epochs);
            sink.epochs = NULL;
            char *text = cJSON_PrintUnformatted(root);
            if (text) puts(text);
            free(text);
            cJSON_Delete(root);
        }
    }
    cJSON_Delete(sink.epochs);
    rtr_backend_free(&be);
    free(dm);
    free(ds);
    rtr_predictor_free(&p);
    pred_rows_free(&rows);
    if (c) rtr_corpus_close(c);
    return s ? 1 : 0;
}
