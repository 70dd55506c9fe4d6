/* `rtr eval CORPUS_DIR --out EVAL.json`: RTR against every baseline on one
 * evaluated split (rtr_eval_corpus, src/eval/evaluation.c), written as the
 * file `rtr report` renders, and its table of routers printed. */
#include "cli/cli.h"
#include "rtr/eval.h"
#include "rtr/metrics.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A table cell: value·scale in fmt (`missing` when it does not exist) and,
 * when ci, its interval in ci_fmt, an end that does not exist as `missing`. */
static void cell(char *buf, size_t n, const char *fmt, const char *ci_fmt, double scale, double v, const double *ci,
                 const char *missing) {
    char lo[32], hi[32], x[32];
    snprintf(buf, n, "%s", cli_num(x, sizeof x, fmt, scale * v, missing));
    if (!ci || (!isfinite(ci[0]) && !isfinite(ci[1]))) return;
    size_t l = strlen(buf);
    snprintf(buf + l, n - l, " [%s, %s]", cli_num(lo, sizeof lo, ci_fmt, scale * ci[0], missing),
             cli_num(hi, sizeof hi, ci_fmt, scale * ci[1], missing));
}

int cmd_eval(int argc, char **argv) {
    rtr_eval_params ep = rtr_eval_default_params();
    const char *out = NULL, *device = "auto";
    long knn_k = ep.knn_k, boot = ep.bootstrap, seed = (long)ep.seed, threads = 0, boot_queries = (long)ep.bootstrap_queries;
    long train_max = (long)ep.baseline_train_max;
    bool no_embedllm = false;
    const char *arch = "default", *stack = NULL;
    cli_route cli = {.cost = "tokens"};
    const rtr_opt opts[] = {
        {"out", RTR_OPT_REQUIRED, &out, "evaluation file to write (JSON; `rtr report` renders it)"},
        {"train-split", RTR_OPT_STR, &ep.train_split, "split the baselines are fitted on"},
        {"test-dataset", RTR_OPT_STR, &ep.route.dataset, "evaluate only queries of this dataset"},
        {"skip-dataset", RTR_OPT_STR, &ep.train_skip_dataset,
         "fit baselines without this dataset (out of distribution; as rtr train --skip-dataset)"},
        {"train-skip-dataset", RTR_OPT_STR, &ep.train_skip_dataset, "the older name of --skip-dataset"},
        {"knn", RTR_OPT_NEIGHBOURS, &knn_k, "neighbours of the kNN router"},
        {"no-embedllm", RTR_OPT_FLAG, &no_embedllm, "skip the EmbedLLM-style baseline (it trains for a few seconds)"},
        {"title", RTR_OPT_STR, &ep.title, "report title"},
        {"checkpoint", RTR_OPT_STR, &ep.checkpoint,
         "the checkpoint that scored the table: its validation rows choose the default router's blend"},
        {"arch", RTR_OPT_STR, &arch, "default (RTR's default router beside the paper's model) or paper (only the paper's)"},
        {"stack", RTR_OPT_STR, &stack,
         "ablation: the default router keeps this candidate whatever validation says (network, platt, knn, prior, knn+prior)"},
        {"no-guard", RTR_OPT_FLAG, &ep.no_guard, "ablation: no unseen-dataset guard in the default router"},
        {"bootstrap", RTR_OPT_RESAMPLES, &boot, "paired bootstrap resamples of the evaluated queries (0: no intervals)"},
        {"seed", RTR_OPT_SEED, &seed, "seed of the bootstrap"},
        {"bootstrap-queries", RTR_OPT_BOOT_QUERIES, &boot_queries,
         "the most evaluated queries the bootstrap resamples; above it, m-out-of-n over a hash sample of them"},
        {"baseline-train-max", RTR_OPT_COUNT, &train_max,
         "the most training queries the baselines are fitted on; above it, a hash sample of them (the budget still "
         "uses every one)"},
        RTR_OPT_DEVICE(&device),
        CLI_OPT_THREADS(&threads),
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
    const char *default_train = ep.train_split;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    /* --train-split named: whatever it names is meant, the evaluated split
     * too (a hindsight bound); by default an overlap is a mistake */
    ep.fit_on_evaluated = ep.train_split != default_train;
    static const char *const exts[] = {".json", NULL};
    if ((rc = rtr_args_check_ext(&spec, "out", out, exts))) return rc;
    const char *dir = a.pos[0];
    cli_set_threads(threads);
    ep.knn_k = (int32_t)knn_k;
    ep.embedllm = !no_embedllm;
    if (strcmp(arch, "default") && strcmp(arch, "paper")) {
        fprintf(stderr, "rtr eval: --arch '%s': expected default or paper\n", arch);
        return 2;
    }
    ep.paper_only = !strcmp(arch, "paper");
    if (stack && (ep.stack_only = rtr_stack_from_option(stack)) < 0) {
        fprintf(stderr, "rtr eval: --stack '%s': expected", stack);
        for (int32_t c = 0; c < RTR_STACK_N; c++)
            fprintf(stderr, "%s%s", c ? (c + 1 < RTR_STACK_N ? ", " : " or ") : " ", rtr_stack_option(c));
        fputc('\n', stderr);
        return 2;
    }
    ep.bootstrap = (int32_t)boot;
    ep.seed = (uint64_t)seed;
    ep.bootstrap_queries = boot_queries;
    ep.baseline_train_max = train_max;

    rtr_backend be = {0};
    rtr_eval_summary s = {0};
    const char *dataset = ep.route.dataset;
    rtr_status st = cli_route_options(&cli, &ep.route);
    ep.route.dataset = dataset;
    /* the datasets are checked by rtr_eval_corpus, naming the option */
    if (!st)
        st = cli_split("eval", dir, cli.split, "every query is evaluated, the training split's included", &ep.route.split);
    if (!st) st = rtr_corpus_check_names(dir, ep.train_split, NULL, 0);
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
        char sampled[96] = "";
        if (s.n_train_baselines < s.n_train)
            snprintf(sampled, sizeof sampled, ", a hash sample of %lld of them for the kNN, prior, default and EmbedLLM",
                     (long long)s.n_train_baselines);
        printf("%s%s: %lld queries (baselines fitted on %lld %s queries%s); cost in %s, AIQ x_max %.6g; paths on %s\n",
               ep.route.split ? ep.route.split : "all splits", ep.route.split ? " split" : "", (long long)s.n_queries,
               (long long)s.n_train, ep.train_split, sampled, s.cost_unit, s.x_max, be.device);
        if (s.default_router) printf("default router: %s\n", s.default_router);
        if (s.bootstrap && s.bootstrap_queries < s.n_queries) {
            printf("[95%% intervals: %d paired bootstrap resamples of %lld of the %lld evaluated queries (m-out-of-n, "
                   "scaled by sqrt(%lld/%lld))]\n", s.bootstrap, (long long)s.bootstrap_queries, (long long)s.n_queries,
                   (long long)s.bootstrap_queries, (long long)s.n_queries);
            if (s.bootstrap_no_interval)
                printf("[%d intervals left out: the sample showed no variation where the evaluated queries vary; "
                       "a larger --bootstrap-queries holds more of the rarer outcome]\n", s.bootstrap_no_interval);
        } else if (s.bootstrap)
            printf("[95%% intervals: %d paired bootstrap resamples of the evaluated queries]\n", s.bootstrap);
        int w = (int)strlen("router"); /* whole names: "Best single: " and a long pair name */
        for (int i = 0; i < s.n_routers; i++)
            if ((int)strlen(s.routers[i].name) > w) w = (int)strlen(s.routers[i].name);
        printf("%-*s %-22s %-26s %-22s %-20s %s\n", w, "router", "accuracy", "mean cost", "AIQ", "to match", "missing");
        for (int i = 0; i < s.n_routers; i++) {
            const rtr_eval_router *r = &s.routers[i];
            if (r->unavailable) {
                printf("%-*s not built: %s\n", w, r->name, r->unavailable);
                continue;
            }
            char acc[64], cost[64], aiq[64], ctm[64];
            /* as the report writes them: — for a value that does not exist (an
             * AIQ when every cost is 0), never for a cost to match not reached */
            cell(acc, sizeof acc, "%.2f%%", "%.1f", 100, r->acc, s.bootstrap ? r->acc_ci : NULL, "—");
            cell(cost, sizeof cost, "%.6g", "%.4g", 1, r->cost, s.bootstrap ? r->cost_ci : NULL, "—");
            cell(aiq, sizeof aiq, "%.4f", "%.3f", 1, r->aiq, s.bootstrap ? r->aiq_ci : NULL, "—");
            cell(ctm, sizeof ctm, "%.3f", "%.2f", 1, r->cost_to_match, s.bootstrap ? r->cost_to_match_ci : NULL, "never");
            printf("%-*s %-*s %-*s %-*s %-*s %lld\n", w, r->name, cli_width(acc, 22), acc, cli_width(cost, 26), cost,
                   cli_width(aiq, 22), aiq, cli_width(ctm, 20), ctm, (long long)r->n_missing);
        }
        printf("wrote %s (render with: rtr report %s)\n", out, out);
    }
    rtr_eval_summary_free(&s);
    rtr_backend_free(&be);
    return 0;
}
