/* `rtr info`: what a corpus holds — queries per dataset and split, and per
 * (model, strategy) pair the accuracy, mean tokens, mean cost (logged, or
 * priced from the catalog when the outcomes log tokens but no cost) and how
 * many outcomes are missing. */
#include "cli/cli.h"
#include "rtr/ingest.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double mean_or_nan(double sum, int64_t n) { return n ? sum / (double)n : NAN; }

/* Per pair, the mean USD the catalog's prices give over the queries whose
 * outcome has tokens, priced as `--cost usd` prices a call (input tokens =
 * the query's UTF-8 bytes / 4, docs/ROUTING.md): for the pairs whose
 * outcomes log tokens but no cost and whose model has both prices; NaN for
 * the others. One more pass over the rows, only when such a pair exists. */
static rtr_status priced_means(double *usd, const char *dir, const rtr_corpus_summary *s) {
    const rtr_catalog *cat = &s->cat;
    int32_t k = cat->n_pairs;
    bool any = false;
    for (int32_t j = 0; j < k; j++) {
        const rtr_catalog_entry *m = &cat->models[cat->pair_model[j]];
        bool priced = s->pairs[j].n_cost == 0 && s->pairs[j].n_tokens > 0 && isfinite(m->price_in) && isfinite(m->price_out);
        usd[j] = priced ? 0 : NAN;
        any |= priced;
    }
    if (!any) return RTR_OK;
    rtr_corpus *c = NULL;
    rtr_row_reader *r = NULL;
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_TEXT | RTR_COL_TOKENS;
    rtr_status st = rtr_corpus_open(&c, dir);
    if (!st) st = rtr_row_reader_open(&r, c, &q);
    rtr_rows ch;
    while (!st && !(st = rtr_row_reader_next(r, &ch, NULL, NULL)) && ch.n)
        for (int64_t i = 0; i < ch.n; i++) {
            double in = (double)strlen(ch.text[i]) / 4.0;
            for (int32_t j = 0; j < k; j++) {
                const rtr_catalog_entry *m = &cat->models[cat->pair_model[j]];
                float t = ch.tokens[i * k + j];
                if (!isnan(usd[j]) && !isnan(t)) usd[j] += (in * m->price_in + t * m->price_out) / 1e6;
            }
        }
    rtr_row_reader_close(r);
    rtr_corpus_close(c);
    for (int32_t j = 0; j < k; j++) usd[j] /= (double)s->pairs[j].n_tokens; /* NaN stays NaN */
    return st;
}

/* A pair's mean cost: the outcomes' when they log one, else the priced one. */
static double mean_cost(const rtr_pair_summary *p, double priced) {
    return p->n_cost ? p->sum_cost / (double)p->n_cost : priced;
}

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
        if (!o[i].n_done && o[i].problem) { /* nothing read to show: a file where the folder should be, ... */
            printf("  %-24s not usable: %s\n", rtr_shown(o[i].name), rtr_shown(o[i].problem));
            continue;
        }
        const char *encoder = rtr_shown(o[i].encoder ? o[i].encoder : "?");
        const char *encoder_hash = rtr_shown(o[i].encoder_hash ? o[i].encoder_hash : "?");
        printf("  %-24s %s %s", rtr_shown(o[i].name), tables ? "checkpoint" : "encoder",
               tables ? rtr_shown(o[i].checkpoint_hash ? o[i].checkpoint_hash : "?") : encoder);
        if (tables)
            printf(" (%s), embeddings %s %s", rtr_shown(o[i].checkpoint && *o[i].checkpoint ? o[i].checkpoint : "?"),
                   encoder, encoder_hash);
        else printf(" %s, %d-d", encoder_hash, o[i].dim);
        printf(", %d of %d shards%s\n", o[i].n_done, o[i].n_shards, o[i].problem ? "" : ", complete");
        if (o[i].problem) printf("    not usable: %s\n", rtr_shown(o[i].problem));
    }
}

static void print_json(const char *dir, const rtr_corpus_summary *s, const double *priced) {
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
        rtr_json_add_number(o, "mean_cost", mean_cost(p, priced[k]));
        /* where mean_cost comes from: the outcomes' costs, or the catalog's prices */
        if (p->n_cost || !isnan(priced[k])) cJSON_AddStringToObject(o, "mean_cost_from", p->n_cost ? "outcomes" : "prices");
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

static void print_table(const char *dir, const rtr_corpus_summary *s, const double *priced) {
    printf("corpus %s: %lld queries in %d shard(s); %d models x %d strategies -> %d pairs\n\n", rtr_shown(dir),
           (long long)s->n_queries, s->n_shards, s->cat.n_models, s->cat.n_strategies, s->cat.n_pairs);
    printf("%-28s %-10s %10s\n", "dataset", "split", "queries");
    for (int g = 0; g < s->n_groups; g++) {
        const char *d = rtr_shown(s->groups[g].dataset), *sp = rtr_shown(s->groups[g].split);
        printf("%-*s %-*s %10lld\n", cli_width(d, 28), d, cli_width(sp, 10), sp, (long long)s->groups[g].n);
    }
    int w = (int)strlen("pair (model|strategy)");
    for (int k = 0; k < s->cat.n_pairs; k++) {
        char *name = rtr_catalog_pair_name(&s->cat, k);
        if (name && (int)strlen(name) > w) w = (int)strlen(name);
        free(name);
    }
    printf("\n%-*s %9s %11s %12s %8s\n", w, "pair (model|strategy)", "accuracy", "mean tokens", "mean cost $",
           "missing");
    bool any_priced = false;
    for (int k = 0; k < s->cat.n_pairs; k++) {
        const rtr_pair_summary *p = &s->pairs[k];
        char *name = rtr_catalog_pair_name(&s->cat, k), b[3][32];
        bool by_price = !p->n_cost && !isnan(priced[k]);
        any_priced |= by_price;
        /* a mean with no outcome behind it (no price, say) is —, never nan */
        const char *v[3] = {CLI_NUM(b[0], "%.4f", mean_or_nan(p->sum_correct, p->n_correct)),
                            CLI_NUM(b[1], "%.1f", mean_or_nan(p->sum_tokens, p->n_tokens)),
                            CLI_NUM(b[2], by_price ? "%.6f*" : "%.6f", mean_cost(p, priced[k]))};
        int cw[3] = {9, 11, 12};
        printf("%-*s", w, name ? name : "?"); /* catalog names hold no control character (catalog.c) */
        for (int i = 0; i < 3; i++) printf(" %*s", cli_width(v[i], cw[i]), v[i]);
        printf(" %8lld\n", (long long)(s->n_queries - p->n_correct));
        free(name);
    }
    if (any_priced) printf("* priced from the catalog: the outcomes log tokens but no cost (input tokens = query bytes / 4)\n");
    print_outputs("encodings (embeddings/)", s->encodings, s->n_encodings, false);
    print_outputs("routing tables (tables/)", s->tables, s->n_tables, true);
}

int cmd_info(int argc, char **argv) {
    const rtr_opt opts[] = {{0}};
    const rtr_cmd_spec spec = {"info", "CORPUS_DIR",
                               "Summarise a corpus: queries per dataset and split; per pair the accuracy,\n"
                               "mean output tokens, mean cost (USD; from the catalog's prices when the\n"
                               "outcomes log tokens but no cost) and the number of missing outcomes; its\n"
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
    double *priced = rtr_malloc(sizeof *priced * (size_t)(s.cat.n_pairs ? s.cat.n_pairs : 1));
    rtr_status st = priced ? priced_means(priced, dir, &s) : RTR_ERR_NOMEM;
    if (!st && json) print_json(dir, &s, priced);
    else if (!st) print_table(dir, &s, priced);
    free(priced);
    rtr_corpus_summary_free(&s);
    return st ? cli_error("info") : 0;
}
