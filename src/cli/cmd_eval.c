/* `rtr eval CORPUS_DIR --out EVAL.json`: RTR against every baseline on one
 * evaluated split (rtr_eval_corpus, src/eval/evaluation.c), written as the
 * file `rtr report` renders, and its table of routers printed. */
#include "cli/cli.h"
#include "rtr/eval.h"
#include "common/util.h"

#include <stdlib.h>

int cmd_eval(int argc, char **argv) {
    rtr_eval_params ep = rtr_eval_default_params();
    const char *out = NULL, *device = "auto";
    long knn_k = ep.knn_k;
    bool no_embedllm = false;
    cli_route cli = {.split = ep.route.split, .cost = "tokens"};
    const rtr_opt opts[] = {
        {"out", RTR_OPT_REQUIRED, &out, "evaluation file to write (JSON; `rtr report` renders it)"},
        {"train-split", RTR_OPT_STR, &ep.train_split, "split the baselines are fitted on"},
        {"test-dataset", RTR_OPT_STR, &ep.route.dataset, "evaluate only queries of this dataset"},
        {"train-skip-dataset", RTR_OPT_STR, &ep.train_skip_dataset, "fit baselines without this dataset (out of distribution)"},
        {"knn", RTR_OPT_INT, &knn_k, "neighbours of the kNN router"},
        {"no-embedllm", RTR_OPT_FLAG, &no_embedllm, "skip the EmbedLLM-style baseline (it trains for a few seconds)"},
        {"title", RTR_OPT_STR, &ep.title, "report title"},
        RTR_OPT_DEVICE(&device),
        CLI_ROUTE_OPTS(cli),
        {0},
    };
    const rtr_cmd_spec spec = {"eval", "CORPUS_DIR --out EVAL.json",
                               "Evaluate RTR's routing tables (from `rtr score`) against single pairs, Random,\n"
                               "Oracle, the dataset prior, kNN, EmbedLLM-style and RouteLLM-style routers fitted on\n"
                               "the training split; AIQ, APGR, CPT, cost-to-match and oracle gap on realised\n"
                               "outcomes of --split. --table A,B compares several predictors' tables, one RTR row\n"
                               "each. Render the result with `rtr report EVAL.json`.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    if (knn_k < 1 || knn_k > 100000) { fprintf(stderr, "rtr eval: --knn must be in 1 .. 100000\n"); return 2; }
    ep.knn_k = (int32_t)knn_k;
    ep.embedllm = !no_embedllm;

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
            rtr_json_add_number(x, "cost_to_match", r->cost_to_match);
            cJSON_AddItemToArray(arr, x);
        }
        cli_print_json(o);
    } else {
        printf("%s split: %lld queries (baselines fitted on %lld %s queries); cost in %s, AIQ x_max %.6g; paths on %s\n",
               cli.split, (long long)s.n_queries, (long long)s.n_train, ep.train_split, s.cost_unit, s.x_max, be.device);
        printf("%-40s %9s %12s %8s %9s\n", "router", "accuracy", "mean cost", "AIQ", "to match");
        for (int i = 0; i < s.n_routers; i++) {
            const rtr_eval_router *r = &s.routers[i];
            printf("%-40.40s %8.2f%% %12.6g %8.4f %9.3f\n", r->name, 100 * r->acc, r->cost, r->aiq, r->cost_to_match);
        }
        printf("wrote %s (render with: rtr report %s)\n", out, out);
    }
    rtr_eval_summary_free(&s);
    rtr_backend_free(&be);
    return 0;
}
