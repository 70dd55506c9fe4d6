/* `rtr info`: what a corpus holds — queries per dataset and split, and per
 * (model, strategy) pair the accuracy, mean tokens, mean cost and how many
 * outcomes are missing. */
#include "cli/cli.h"
#include "rtr/ingest.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double mean_or_nan(double sum, int64_t n) { return n ? sum / (double)n : NAN; }

/* The encodings or tables of the corpus as JSON. */
static cJSON *outputs_json(const rtr_output_info *o, int n, bool tables) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", o[i].name);
        cJSON_AddStringToObject(x, "encoder", o[i].encoder ? o[i].encoder : "");
        cJSON_AddStringToObject(x, "encoder_hash", o[i].encoder_hash ? o[i].encoder_hash : "");
        if (tables) {
            cJSON_AddStringToObject(x, "checkpoint", o[i].checkpoint ? o[i].checkpoint : "");
            cJSON_AddStringToObject(x, "checkpoint_hash", o[i].checkpoint_hash ? o[i].checkpoint_hash : "");
        } else {
            cJSON_AddNumberToObject(x, "dim", o[i].dim);
        }
        cJSON_AddNumberToObject(x, "shards_done", o[i].n_done);
        cJSON_AddNumberToObject(x, "n_shards", o[i].n_shards);
        cJSON_AddBoolToObject(x, "complete", o[i].complete);
        cJSON_AddBoolToObject(x, "usable", !o[i].problem);
        if (o[i].problem) cJSON_AddStringToObject(x, "problem", o[i].problem);
        cJSON_AddItemToArray(arr, x);
    }
    return arr;
}

static void print_outputs(const char *title, const rtr_output_info *o, int n, bool tables) {
    printf("\n%s:%s\n", title, n ? "" : " none");
    for (int i = 0; i < n; i++) {
        printf("  %-24s %s %s", o[i].name, tables ? "checkpoint" : "encoder",
               tables ? (o[i].checkpoint_hash ? o[i].checkpoint_hash : "?") : (o[i].encoder ? o[i].encoder : "?"));
        if (tables) printf(" (%s), embeddings %s %s", o[i].checkpoint && *o[i].checkpoint ? o[i].checkpoint : "?",
                           o[i].encoder ? o[i].encoder : "?", o[i].encoder_hash ? o[i].encoder_hash : "?");
        else printf(" %s, %d-d", o[i].encoder_hash ? o[i].encoder_hash : "?", o[i].dim);
        printf(", %d of %d shards%s\n", o[i].n_done, o[i].n_shards, o[i].problem ? "" : ", complete");
        if (o[i].problem) printf("    not usable: %s\n", o[i].problem);
    }
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
        rtr_json_add_number(o, "accuracy", mean_or_nan(p->sum_correct, p->n_correct));
        rtr_json_add_number(o, "mean_tokens", mean_or_nan(p->sum_tokens, p->n_tokens));
        rtr_json_add_number(o, "mean_cost", mean_or_nan(p->sum_cost, p->n_cost));
        cJSON_AddNumberToObject(o, "n_correct", (double)p->n_correct);
        cJSON_AddNumberToObject(o, "missing_correct", (double)(s->n_queries - p->n_correct));
        cJSON_AddNumberToObject(o, "missing_tokens", (double)(s->n_queries - p->n_tokens));
        cJSON_AddNumberToObject(o, "missing_cost", (double)(s->n_queries - p->n_cost));
        cJSON_AddItemToArray(pairs, o);
    }
    cJSON_AddItemToObject(root, "encodings", outputs_json(s->encodings, s->n_encodings, false));
    cJSON_AddItemToObject(root, "tables", outputs_json(s->tables, s->n_tables, true));
    cli_print_json(root);
}

static void print_table(const char *dir, const rtr_corpus_summary *s) {
    printf("corpus %s: %lld queries in %d shard(s); %d models x %d strategies -> %d pairs\n\n", dir,
           (long long)s->n_queries, s->n_shards, s->cat.n_models, s->cat.n_strategies, s->cat.n_pairs);
    printf("%-28s %-10s %10s\n", "dataset", "split", "queries");
    for (int g = 0; g < s->n_groups; g++)
        printf("%-28s %-10s %10lld\n", s->groups[g].dataset, s->groups[g].split, (long long)s->groups[g].n);
    int w = (int)strlen("pair (model|strategy)");
    for (int k = 0; k < s->cat.n_pairs; k++) {
        char *name = rtr_catalog_pair_name(&s->cat, k);
        if (name && (int)strlen(name) > w) w = (int)strlen(name);
        free(name);
    }
    printf("\n%-*s %9s %11s %12s %8s\n", w, "pair (model|strategy)", "accuracy", "mean tokens", "mean cost $",
           "missing");
    for (int k = 0; k < s->cat.n_pairs; k++) {
        const rtr_pair_summary *p = &s->pairs[k];
        char *name = rtr_catalog_pair_name(&s->cat, k), b[3][32];
        /* a mean with no outcome behind it (no price, say) is —, never nan */
        const char *v[3] = {CLI_NUM(b[0], "%.4f", mean_or_nan(p->sum_correct, p->n_correct)),
                            CLI_NUM(b[1], "%.1f", mean_or_nan(p->sum_tokens, p->n_tokens)),
                            CLI_NUM(b[2], "%.6f", mean_or_nan(p->sum_cost, p->n_cost))};
        int cw[3] = {9, 11, 12};
        printf("%-*s", w, name ? name : "?");
        for (int i = 0; i < 3; i++) printf(" %*s", cli_width(v[i], cw[i]), v[i]);
        printf(" %8lld\n", (long long)(s->n_queries - p->n_correct));
        free(name);
    }
    print_outputs("encodings (embeddings/)", s->encodings, s->n_encodings, false);
    print_outputs("routing tables (tables/)", s->tables, s->n_tables, true);
}

int cmd_info(int argc, char **argv) {
    const rtr_opt opts[] = {{0}};
    const rtr_cmd_spec spec = {"info", "CORPUS_DIR",
                               "Summarise a corpus: queries per dataset and split; per pair the accuracy,\n"
                               "mean output tokens, mean cost (USD) and the number of missing outcomes; its\n"
                               "encodings (encoder, hash) and routing tables (checkpoint, hash), and whether\n"
                               "each is complete. Reads and checks every row.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    bool json = a.json;
    rtr_corpus_summary s;
    if (rtr_corpus_summarize(&s, dir)) return cli_error("info");
    if (json) print_json(dir, &s);
    else print_table(dir, &s);
    rtr_corpus_summary_free(&s);
    return 0;
}
