/* `rtr info`: what a corpus holds — queries per dataset and split, and per
 * (model, strategy) pair the accuracy, mean tokens, mean cost and how many
 * outcomes are missing. */
#include "cli/args.h"
#include "rtr/ingest.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

static double mean_or_nan(double sum, int64_t n) { return n ? sum / (double)n : NAN; }

/* NaN has no JSON spelling: missing means become null. */
static void add_number(cJSON *o, const char *key, double v) {
    if (isnan(v)) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, v);
}

static void print_json(const char *dir, const rtr_corpus_summary *s) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "corpus", dir);
    cJSON_AddNumberToObject(root, "n_queries", (double)s->n_queries);
    cJSON_AddNumberToObject(root, "n_shards", s->n_shards);
    cJSON_AddNumberToObject(root, "n_models", s->cat.n_models);
    cJSON_AddNumberToObject(root, "n_strategies", s->cat.n_strategies);
    cJSON *groups = cJSON_AddArrayToObject(root, "groups");
    for (int g = 0; g < s->n_groups; g++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dataset", s->groups[g].dataset);
        cJSON_AddStringToObject(o, "split", s->groups[g].split);
        cJSON_AddNumberToObject(o, "n_queries", (double)s->groups[g].n);
        cJSON_AddItemToArray(groups, o);
    }
    cJSON *pairs = cJSON_AddArrayToObject(root, "pairs");
    for (int k = 0; k < s->cat.n_pairs; k++) {
        const rtr_pair_summary *p = &s->pairs[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", s->cat.models[s->cat.pair_model[k]].name);
        cJSON_AddStringToObject(o, "strategy", s->cat.strategies[s->cat.pair_strategy[k]].name);
        add_number(o, "accuracy", mean_or_nan(p->sum_correct, p->n_correct));
        add_number(o, "mean_tokens", mean_or_nan(p->sum_tokens, p->n_tokens));
        add_number(o, "mean_cost", mean_or_nan(p->sum_cost, p->n_cost));
        cJSON_AddNumberToObject(o, "n_correct", (double)p->n_correct);
        cJSON_AddNumberToObject(o, "missing_correct", (double)(s->n_queries - p->n_correct));
        cJSON_AddNumberToObject(o, "missing_tokens", (double)(s->n_queries - p->n_tokens));
        cJSON_AddNumberToObject(o, "missing_cost", (double)(s->n_queries - p->n_cost));
        cJSON_AddItemToArray(pairs, o);
    }
    char *text = cJSON_PrintUnformatted(root);
    if (text) puts(text);
    free(text);
    cJSON_Delete(root);
}

static void print_table(const char *dir, const rtr_corpus_summary *s) {
    printf("corpus %s: %lld queries in %d shard(s); %d models x %d strategies -> %d pairs\n\n", dir,
           (long long)s->n_queries, s->n_shards, s->cat.n_models, s->cat.n_strategies, s->cat.n_pairs);
    printf("%-28s %-10s %10s\n", "dataset", "split", "queries");
    for (int g = 0; g < s->n_groups; g++)
        printf("%-28s %-10s %10lld\n", s->groups[g].dataset, s->groups[g].split, (long long)s->groups[g].n);
    printf("\n%-48s %9s %11s %12s %8s\n", "pair (model|strategy)", "accuracy", "mean tokens", "mean cost $",
           "missing");
    for (int k = 0; k < s->cat.n_pairs; k++) {
        const rtr_pair_summary *p = &s->pairs[k];
        char *name = rtr_catalog_pair_name(&s->cat, k);
        printf("%-48s %9.4f %11.1f %12.6f %8lld\n", name ? name : "?", mean_or_nan(p->sum_correct, p->n_correct),
               mean_or_nan(p->sum_tokens, p->n_tokens), mean_or_nan(p->sum_cost, p->n_cost),
               (long long)(s->n_queries - p->n_correct));
        free(name);
    }
}

int cmd_info(int argc, char **argv) {
    const rtr_opt opts[] = {{0}};
    const rtr_cmd_spec spec = {"info", "CORPUS_DIR",
                               "Summarise a corpus: queries per dataset and split; per pair the accuracy,\n"
                               "mean output tokens, mean cost (USD) and the number of missing outcomes.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    bool json = a.json;
    rtr_corpus_summary s;
    if (rtr_corpus_summarize(dir, &s)) {
        fprintf(stderr, "rtr info: error: %s\n", rtr_last_error());
        return 1;
    }
    if (json) print_json(dir, &s);
    else print_table(dir, &s);
    rtr_corpus_summary_free(&s);
    return 0;
}
