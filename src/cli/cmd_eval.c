/* `rtr eval CORPUS_DIR --out EVAL.json`: RTR against every baseline on one
 * evaluated split (rtr_eval_corpus, src/eval/evaluation.c), written as the
 * file `rtr report` renders, and its table of routers printed. */
#include "cli/cli.h"
#include "rtr/eval.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int cmd_eval(int argc, char **argv) {
    rtr_eval_params ep = rtr_eval_default_params();
    const char *out = NULL, *device = "auto";
    long knn_k = ep.knn_k, boot = ep.bootstrap, seed = (long)ep.seed;
    bool no_embedllm = false;
    const char *arch = "default";
    cli_route cli = {.split = ep.route.split, .cost = "tokens"};
    const rtr_opt opts[] = {
        {"out", RTR_OPT_REQUIRED, &out, "evaluation file to write (JSON; `rtr report` renders it)"},
        {"train-split", RTR_OPT_STR, &ep.train_split, "split the baselines are fitted on"},
        {"test-dataset", RTR_OPT_STR, &ep.route.dataset, "evaluate only queries of this dataset"},
        {"train-skip-dataset", RTR_OPT_STR, &ep.train_skip_dataset, "fit baselines without this dataset (out of distribution)"},
        {"knn", RTR_OPT_INT, &knn_k, "neighbours of the kNN router"},
        {"no-embedllm", RTR_OPT_FLAG, &no_embedllm, "skip the EmbedLLM-style baseline (it trains for a few seconds)"},
        {"title", RTR_OPT_STR, &ep.title, "report title"},
        {"checkpoint", RTR_OPT_STR, &ep.checkpoint,
         "the checkpoint that scored the table: its validation rows choose the default router's blend"},
        {"arch", RTR_OPT_STR, &arch, "default (RTR's default router beside the paper's model) or paper (only the paper's)"},
        {"bootstrap", RTR_OPT_INT, &boot, "paired bootstrap resamples of the evaluated queries (0: no intervals)"},
        {"seed", RTR_OPT_INT, &seed, "seed of the bootstrap"},
        RTR_OPT_DEVICE(&device),
        CLI_ROUTE_OPTS(cli),
        {0},
    };
    const rtr_cmd_spec spec = {"eval", "CORPUS_DIR --out EVAL.json",
                               "Evaluate RTR's routing tables (from `rtr score`) against single pairs, Random,\n"
                               "Oracle, the dataset prior, kNN, EmbedLLM-style and RouteLLM-style routers fitted on\n"
                               "the training split; AIQ, APGR, CPT, cost-to-match, oracle gap and accuracy at\n"
                               "budgets on realised outcomes of --split, with paired-bootstrap 95% intervals.\n"
                               "\"RTR\" is the default router (docs/PREDICTOR.md), \"RTR (paper)\" the tables as\n"
                               "scored. --table A,B compares several predictors' tables, one RTR row each.\n"
                               "Render the result with `rtr report EVAL.json`.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    if (knn_k < 1 || knn_k > 100000) { fprintf(stderr, "rtr eval: --knn must be in 1 .. 100000\n"); return 2; }
    ep.knn_k = (int32_t)knn_k;
    ep.embedllm = !no_embedllm;
    if (strcmp(arch, "default") && strcmp(arch, "paper")) {
        fprintf(stderr, "rtr eval: --arch must be default or paper\n");
        return 2;
    }
    ep.paper_only = !strcmp(arch, "paper");
    if (boot < 0 || boot > 100000) { fprintf(stderr, "rtr eval: --bootstrap must be in 0 .. 100000\n"); return 2; }
    ep.bootstrap = (int32_t)boot;
    ep.seed = (uint64_t)seed;

    rtr_backend be = {0};
    rtr_eval_summary s = {0};
    const char *dataset = ep.route.dataset;
    rtr_status st = cli_route_options(&cli, &ep.route);
    ep.route.dataset = dataset;
    if (!st) st = rtr_backend_init(&be, device);
    if (!st) st = rtr_eval_corpus(&be, out, &s, dir, &ep);
    if (st) {
        rtr_backend_free(&be);
        return cli_error("eval");
    }
    if (a.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "out", out);
        cJSON_AddStringToObject(o, "device", be.device);
        rtr_json_add_number(o, "x_max", s.x_max);
        cJSON *arr = cJSON_AddArrayToObject(o, "routers");
        for (int i = 0; i < s.n_routers; i++) {
            const rtr_eval_router *r = &s.routers[i];
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "name", r->name);
            rtr_json_add_number(x, "acc", r->acc);
            rtr_json_add_number(x, "cost", r->cost);
            rtr_json_add_number(x, "aiq", r->aiq);
            rtr_json_add_number(x, "aiq_from_zero", r->aiq_from_zero);
            rtr_json_add_number(x, "cost_to_match", r->cost_to_match);
            cJSON_AddNumberToObject(x, "n_missing", (double)r->n_missing);
            if (r->unavailable) cJSON_AddStringToObject(x, "unavailable", r->unavailable);
            cJSON_AddItemToArray(arr, x);
        }
        cli_print_json(o);
    } else {
        printf("%s split: %lld queries (baselines fitted on %lld %s queries); cost in %s, AIQ x_max %.6g; paths on %s\n",
               cli.split, (long long)s.n_queries, (long long)s.n_train, ep.train_split, s.cost_unit, s.x_max, be.device);
        if (s.default_router) printf("default router: %s\n", s.default_router);
        if (s.bootstrap) printf("[95%% intervals: %d paired bootstrap resamples of the evaluated queries]\n", s.bootstrap);
        printf("%-36s %-22s %-26s %-22s %-20s %s\n", "router", "accuracy", "mean cost", "AIQ", "to match", "missing");
        for (int i = 0; i < s.n_routers; i++) {
            const rtr_eval_router *r = &s.routers[i];
            if (r->unavailable) {
                printf("%-36.36s not built: %s\n", r->name, r->unavailable);
                continue;
            }
            char acc[64], cost[64], aiq[64], ctm[64];
            snprintf(acc, sizeof acc, "%.2f%%", 100 * r->acc);
            snprintf(cost, sizeof cost, "%.6g", r->cost);
            snprintf(aiq, sizeof aiq, "%.4f", r->aiq);
            snprintf(ctm, sizeof ctm, isnan(r->cost_to_match) ? "never" : "%.3f", r->cost_to_match);
            if (s.bootstrap) {
                size_t l;
                l = strlen(acc), snprintf(acc + l, sizeof acc - l, " [%.1f, %.1f]", 100 * r->acc_ci[0], 100 * r->acc_ci[1]);
                l = strlen(cost), snprintf(cost + l, sizeof cost - l, " [%.4g, %.4g]", r->cost_ci[0], r->cost_ci[1]);
                l = strlen(aiq), snprintf(aiq + l, sizeof aiq - l, " [%.3f, %.3f]", r->aiq_ci[0], r->aiq_ci[1]);
                l = strlen(ctm);
                if (isfinite(r->cost_to_match_ci[1]))
                    snprintf(ctm + l, sizeof ctm - l, " [%.2f, %.2f]", r->cost_to_match_ci[0], r->cost_to_match_ci[1]);
                else if (isfinite(r->cost_to_match_ci[0]))
                    snprintf(ctm + l, sizeof ctm - l, " [%.2f, never]", r->cost_to_match_ci[0]);
            }
            printf("%-36.36s %-22s %-26s %-22s %-20s %lld\n", r->name, acc, cost, aiq, ctm, (long long)r->n_missing);
        }
        printf("wrote %s (render with: rtr report %s)\n", out, out);
    }
    rtr_eval_summary_free(&s);
    rtr_backend_free(&be);
    return 0;
}
