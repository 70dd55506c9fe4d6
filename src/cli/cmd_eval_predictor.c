/* `rtr eval-predictor --checkpoint CKPT CORPUS_DIR [--split test]`: how good
 * the predictions are on held-out queries, per pair and overall, always next
 * to the naive predictor (per-pair mean correctness, per-pair median tokens)
 * fitted on the checkpoint's training split (docs/METRICS.md, "Predictors"). */
#include "cli/cli.h"
#include "rtr/backend.h"
#include "rtr/predictor.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static cJSON *metrics_json(const rtr_pred_metrics *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n_correct", (double)m->n_correct);
    cJSON_AddNumberToObject(o, "n_tokens", (double)m->n_tokens);
    rtr_json_add_number(o, "accuracy", m->accuracy);
    rtr_json_add_number(o, "auc", m->auc);
    rtr_json_add_number(o, "log_loss", m->log_loss);
    rtr_json_add_number(o, "brier", m->brier);
    rtr_json_add_number(o, "ece", m->ece);
    rtr_json_add_number(o, "token_mae", m->mae);
    rtr_json_add_number(o, "token_median_ae", m->median_ae);
    rtr_json_add_number(o, "within_200", m->within_200);
    rtr_json_add_number(o, "within_600", m->within_600);
    return o;
}

static void print_row(const char *name, const char *who, const rtr_pred_metrics *m) {
    char b[10][32]; /* a metric that does not exist (AUC when every outcome agrees) is — */
    printf("%-44s %-5s %6lld %6s %6s %7s %6s %6s %8s %8s %6s %6s\n", name, who, (long long)m->n_correct,
           CLI_NUM(b[0], "%.3f", m->accuracy), CLI_NUM(b[1], "%.3f", m->auc), CLI_NUM(b[2], "%.4f", m->log_loss),
           CLI_NUM(b[3], "%.4f", m->brier), CLI_NUM(b[4], "%.4f", m->ece), CLI_NUM(b[5], "%.1f", m->mae),
           CLI_NUM(b[6], "%.1f", m->median_ae), CLI_NUM(b[7], "%.3f", m->within_200),
           CLI_NUM(b[8], "%.3f", m->within_600));
}

/* Metrics of predictor and naive tables (N x K) for pair k (k < 0: all). */
static void compare(rtr_pred_metrics out[2], const float *pc, const float *pt, const float *nc, const float *nt,
                    const rtr_rows *r, int k) {
    int64_t n = k < 0 ? r->n * r->k : r->n, stride = k < 0 ? 1 : r->k, off = k < 0 ? 0 : k;
    rtr_pred_metrics_compute(&out[0], pc + off, pt + off, r->correct + off, r->tokens + off, n, stride);
    rtr_pred_metrics_compute(&out[1], nc + off, nt + off, r->correct + off, r->tokens + off, n, stride);
}

int cmd_eval_predictor(int argc, char **argv) {
    const char *ckpt = NULL, *split = "test", *device = "auto";
    long threads = 0;
    const rtr_opt opts[] = {{"checkpoint", RTR_OPT_REQUIRED, &ckpt, "predictor checkpoint from `rtr train`"},
                            {"split", RTR_OPT_STR, &split, "evaluate on the queries of this split"},
                            RTR_OPT_DEVICE(&device),
                            CLI_OPT_THREADS(&threads),
                            {0}};
    const rtr_cmd_spec spec = {
        "eval-predictor", "--checkpoint CHECKPOINT CORPUS_DIR",
        "Prediction quality on one split: correctness accuracy at 0.5, ROC AUC, log-loss,\n"
        "Brier score, ECE (10 bins); token MAE, median absolute error, share within\n"
        "200 and 600 tokens. Per pair and overall, next to the naive per-pair predictor\n"
        "fitted on the checkpoint's training split.",
        opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    cli_set_threads(threads);
    bool json = a.json;

    rtr_predictor p = {0};
    rtr_corpus *c = NULL;
    rtr_rows test = {0}, train = {0};
    float *tab = NULL;
    rtr_backend be = {0};
    rtr_status s = rtr_corpus_check_names(dir, split, NULL, 0);
    if (!s) s = rtr_predictor_load(&p, ckpt);
    if (!s) s = rtr_corpus_open(&c, dir);
    if (!s && (rtr_catalog_hash(rtr_corpus_catalog(c)) != p.catalog_hash || rtr_corpus_catalog(c)->n_pairs != p.n_pairs))
        s = rtr_fail(RTR_ERR_INVALID, "%s: the corpus's catalog (%d pairs) is not the catalog the checkpoint was "
                     "trained on (%d pairs, another hash)", dir, rtr_corpus_catalog(c)->n_pairs, p.n_pairs);
    /* the evaluated split with the embeddings of the checkpoint's encoder; the training split's outcomes */
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_EMBEDDING | RTR_COL_CORRECT | RTR_COL_TOKENS;
    q.split = split;
    q.encoder_hash = p.encoder_hash;
    if (!s) s = rtr_rows_gather(&test, NULL, c, &q, 0);
    if (!s && test.dim != p.D)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: query embeddings have %d dims, the checkpoint %d", dir, test.dim, p.D);
    rtr_row_query tq = rtr_row_query_default();
    tq.columns = RTR_COL_CORRECT | RTR_COL_TOKENS;
    tq.split = p.train_split;
    tq.skip_dataset = p.train_skip_dataset;
    if (!s) s = rtr_rows_gather(&train, NULL, c, &tq, 0);
    size_t nk = (size_t)test.n * test.k;
    if (!s && !(tab = rtr_malloc(sizeof(float) * (4 * nk + 2 * (size_t)test.k)))) s = RTR_ERR_NOMEM;
    /* offsets only into an allocated table (arithmetic on NULL is undefined) */
    float *pc = tab, *pt = tab ? tab + nk : NULL, *nc = tab ? tab + 2 * nk : NULL, *nt = tab ? tab + 3 * nk : NULL,
          *mean_c = tab ? tab + 4 * nk : NULL, *med_t = tab ? mean_c + test.k : NULL;
    if (!s) s = rtr_backend_init(&be, device);
    if (!s) s = rtr_predictor_score_backend(&be, pc, pt, &p, test.emb, test.n, 0);
    if (!s) s = rtr_naive_fit(mean_c, med_t, train.correct, train.tokens, train.n, train.k);
    if (s) {
        cli_error("eval-predictor");
    } else {
        for (size_t i = 0; i < nk; i++) nc[i] = mean_c[i % test.k], nt[i] = med_t[i % test.k];
        const rtr_catalog *cat = rtr_corpus_catalog(c);
        rtr_pred_metrics m[2];
        char hash[17];
        rtr_predictor_hash_hex(&p, hash);
        cJSON *root = json ? cJSON_CreateObject() : NULL, *pairs = NULL;
        if (json) {
            cJSON_AddStringToObject(root, "checkpoint_hash", hash);
            cJSON_AddStringToObject(root, "split", split);
            cJSON_AddStringToObject(root, "device", be.device);
            cJSON_AddStringToObject(root, "train_split", p.train_split ? p.train_split : "");
            cJSON_AddNumberToObject(root, "n_queries", (double)test.n);
            cJSON_AddNumberToObject(root, "n_train_queries", (double)train.n);
            pairs = cJSON_AddArrayToObject(root, "pairs");
        } else {
            printf("split '%s': %lld queries; naive predictor fitted on split '%s' (%lld queries); scored on %s\n\n",
                   split, (long long)test.n, p.train_split ? p.train_split : "", (long long)train.n, be.device);
            printf("%-44s %-5s %6s %6s %6s %7s %6s %6s %8s %8s %6s %6s\n", "pair", "who", "n", "acc", "auc",
                   "logloss", "brier", "ece", "tok MAE", "tok MdAE", "<=200", "<=600");
        }
        for (int k = -1; k < test.k; k++) {
            compare(m, pc, pt, nc, nt, &test, k);
            char *name = k < 0 ? rtr_strdup("overall") : rtr_catalog_pair_name(cat, k);
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddItemToObject(o, "predictor", metrics_json(&m[0]));
                cJSON_AddItemToObject(o, "naive", metrics_json(&m[1]));
                if (k < 0) {
                    cJSON_AddItemToObject(root, "overall", o);
                } else {
                    cJSON_AddStringToObject(o, "pair", name ? name : "");
                    cJSON_AddItemToArray(pairs, o);
                }
            } else {
                print_row(name ? name : "?", "rtr", &m[0]);
                print_row("", "naive", &m[1]);
            }
            free(name);
        }
        if (json) cli_print_json(root);
    }
    free(tab);
    rtr_rows_free(&test);
    rtr_rows_free(&train);
    if (c) rtr_corpus_close(c);
    if (be.iface) rtr_backend_free(&be);
    rtr_predictor_free(&p);
    return s ? 1 : 0;
}
