/* `rtr route CORPUS_DIR --lambda L | --budget B --out FILE.csv|.jsonl|.h5`:
 * the routing stage (rtr_route_corpus, src/route/route_corpus.c): one
 * decision per query from a routing table of `rtr score`, streamed. Online
 * (--model, --checkpoint) the queries are stdin lines routed in memory
 * (rtr_route_texts), the decisions JSON lines on stdout. Decisions, paths
 * and the online scores are computed on a backend (--device). */
#include "cli/cli.h"
#include "rtr/stages.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Online input: one query per stdin line, the raw text or a JSON object
 * {"text": ..., "id": ...} (id defaults to the line number); blank lines
 * are skipped. texts, ids: n owned strings each. */
static rtr_status read_stdin_queries(char ***texts, char ***ids, int64_t *n) {
    size_t cap = 0, len = 0;
    char *line = NULL;
    ssize_t got;
    int64_t lineno = 0, m = 0, room = 0;
    rtr_status st = RTR_OK;
    *texts = *ids = NULL;
    while (!st && (got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!len) continue;
        size_t bad;
        if (!rtr_utf8_valid(line, len, &bad)) { st = rtr_fail(RTR_ERR_FORMAT, "stdin:%lld: invalid UTF-8 at byte %zu", (long long)lineno, bad); break; }
        if (m == room) {
            room = room ? 2 * room : 256;
            char **t = realloc(*texts, (size_t)room * sizeof *t), **d = t ? realloc(*ids, (size_t)room * sizeof *d) : NULL;
            if (t) *texts = t;
            if (d) *ids = d;
            if (!t || !d) { st = rtr_fail(RTR_ERR_NOMEM, "stdin: out of memory"); break; }
        }
        char *text = NULL, *id = NULL;
        if (line[0] == '{') {
            cJSON *o = cJSON_Parse(line);
            const cJSON *jt = cJSON_GetObjectItemCaseSensitive(o, "text"), *ji = cJSON_GetObjectItemCaseSensitive(o, "id");
            if (!cJSON_IsString(jt)) st = rtr_fail(RTR_ERR_FORMAT, "stdin:%lld: a JSON line needs a string \"text\"", (long long)lineno);
            else {
                text = rtr_strdup(jt->valuestring);
                id = cJSON_IsString(ji) ? rtr_strdup(ji->valuestring) : cJSON_IsNumber(ji) ? rtr_sprintf("%.17g", ji->valuedouble) : NULL;
            }
            cJSON_Delete(o);
        } else {
            text = rtr_strdup(line);
        }
        if (!st && !id) id = rtr_sprintf("%lld", (long long)lineno);
        if (!st && (!text || !id)) st = RTR_ERR_NOMEM;
        if (st) { free(text); free(id); break; }
        (*texts)[m] = text;
        (*ids)[m++] = id;
    }
    free(line);
    *n = m;
    return st;
}

/* Print (or --json) what was decided: λ, predicted and realised means, mix. */
static void report(const rtr_route_summary *s, const char *device, bool json) {
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n_queries", (double)s->n_queries);
        cJSON_AddNumberToObject(o, "lambda", s->lambda);
        cJSON_AddStringToObject(o, "chosen_by", s->chosen_by);
        cJSON_AddStringToObject(o, "device", device);
        cJSON_AddNumberToObject(o, "cost_scale", s->cost_scale);
        cJSON_AddStringToObject(o, "checkpoint_hash", s->checkpoint_hash);
        cJSON_AddNumberToObject(o, "pred_accuracy", s->pred_acc);
        cJSON_AddNumberToObject(o, "pred_mean_cost", s->pred_cost);
        if (!isnan(s->acc)) {
            cJSON_AddNumberToObject(o, "accuracy", s->acc);
            cJSON_AddNumberToObject(o, "mean_cost", s->cost);
            cJSON_AddNumberToObject(o, "n_missing", (double)s->n_missing);
        }
        cJSON *mix = cJSON_AddObjectToObject(o, "pairs");
        for (int32_t j = 0; j < s->k; j++) cJSON_AddNumberToObject(mix, s->pair_names[j], (double)s->count[j]);
        cli_print_json(o);
        return;
    }
    printf("routed %lld queries at lambda %.9g (%s; cost scale %.6g) on %s\n", (long long)s->n_queries, s->lambda,
           s->chosen_by, s->cost_scale, device);
    printf("predicted: accuracy %.4f, mean cost %.6g\n", s->pred_acc, s->pred_cost);
    if (!isnan(s->acc))
        printf("realised:  accuracy %.4f, mean cost %.6g (%lld missing outcomes)\n", s->acc, s->cost, (long long)s->n_missing);
    for (int32_t j = 0; j < s->k; j++)
        if (s->count[j])
            printf("  %-48s %10lld  %5.1f%%\n", s->pair_names[j], (long long)s->count[j],
                   100.0 * (double)s->count[j] / (double)s->n_queries);
}

/* Online output: one JSON line per query with the choice and every pair's predictions. */
static void print_online(const rtr_text_routes *r, char *const *ids) {
    const rtr_catalog *cat = &r->cat;
    for (int64_t i = 0; i < r->n; i++) {
        cJSON *o = cJSON_CreateObject();
        int32_t j = r->choice[i];
        cJSON_AddStringToObject(o, "id", ids[i]);
        cJSON_AddStringToObject(o, "model", cat->models[cat->pair_model[j]].name);
        cJSON_AddStringToObject(o, "strategy", cat->strategies[cat->pair_strategy[j]].name);
        cJSON_AddNumberToObject(o, "lambda", r->lambda);
        cJSON *pairs = cJSON_AddArrayToObject(o, "pairs");
        for (int32_t t = 0; t < r->k; t++) {
            size_t at = (size_t)i * (size_t)r->k + (size_t)t;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "model", cat->models[cat->pair_model[t]].name);
            cJSON_AddStringToObject(e, "strategy", cat->strategies[cat->pair_strategy[t]].name);
            rtr_json_add_number(e, "p_correct", r->p_correct[at]); /* null: excluded */
            cJSON_AddNumberToObject(e, "tokens", r->tokens[at]);
            cJSON_AddNumberToObject(e, "cost", r->cost[at]);
            cJSON_AddItemToArray(pairs, e);
        }
        cli_print_json(o);
    }
}

/* `rtr route --model DIR --checkpoint CKPT`: stdin's queries routed in memory. */
static rtr_status route_online(rtr_backend *be, const char *model_dir, const char *ckpt, const char *out,
                               const rtr_route_params *prm) {
    rtr_predictor pred = {0};
    rtr_encoder *enc = NULL;
    rtr_text_routes r = {0};
    char **texts = NULL, **ids = NULL, hash[17] = "";
    int64_t n = 0;
    rtr_encoder_params ep = rtr_encoder_default_params();
    rtr_status st = rtr_predictor_load(&pred, ckpt);
    if (!st) st = rtr_encoder_load_on(be, &enc, model_dir, &ep); /* fp32 GEMMs: as close to the corpus as it gets */
    if (!st) st = read_stdin_queries(&texts, &ids, &n);
    if (!st && n == 0) st = rtr_fail(RTR_ERR_INVALID, "stdin: no query to route");
    if (!st && (st = rtr_route_texts(be, &r, enc, &pred, (const char *const *)texts, n, prm)))
        rtr_fail_prefix(st, "%s: ", ckpt);
    if (!st) rtr_predictor_hash_hex(&pred, hash);
    if (!st && out) st = rtr_text_routes_write(out, &r, (const char *const *)ids, rtr_cost_model_name(prm->o.cost_model), hash);
    if (!st && !out) {
        print_online(&r, ids);
        /* a full or closed stdout loses every decision: an error, not a success */
        if (fflush(stdout) != 0 || ferror(stdout)) st = rtr_fail(RTR_ERR_IO, "stdout: write error");
    }
    for (int64_t i = 0; i < n; i++) free(texts[i]), free(ids[i]);
    free(texts);
    free(ids);
    rtr_text_routes_free(&r);
    rtr_encoder_free(enc);
    rtr_predictor_free(&pred);
    return st;
}

int cmd_route(int argc, char **argv) {
    rtr_route_params rp = rtr_route_default_params();
    const char *mode = "mean", *out = NULL, *model = NULL, *ckpt = NULL;
    double lambda = NAN, budget = NAN; /* NaN: not given */
    const char *device = "auto";
    long threads = 0;
    cli_route cli = {.cost = "tokens"};
    const rtr_opt opts[] = {
        {"lambda", RTR_OPT_UNIT, &lambda, "trade-off in [0,1]: 1 = accuracy only, 0 = cost only"},
        {"budget", RTR_OPT_NONNEG, &budget, "instead of --lambda: the most accurate routing whose predicted cost fits"},
        {"budget-mode", RTR_OPT_STR, &mode, "mean (per query) or total (over the routed queries)"},
        {"out", RTR_OPT_STR, &out, "decisions file: .csv, .jsonl or .h5 (online: JSON lines on stdout when absent)"},
        {"model", RTR_OPT_STR, &model, "online: sentence-encoder folder; queries come from stdin"},
        {"checkpoint", RTR_OPT_STR, &ckpt, "online: predictor checkpoint from `rtr train`"},
        RTR_OPT_DEVICE(&device),
        CLI_OPT_THREADS(&threads),
        CLI_ROUTE_OPTS(cli),
        {0},
    };
    const rtr_cmd_spec spec = {"route", "CORPUS_DIR (--lambda L | --budget B) --out FILE.csv|.jsonl|.h5\n"
                                        "       rtr route --model MODEL_DIR --checkpoint CKPT (--lambda L | --budget B) < queries",
                               "Choose one (model, strategy) pair per query from a routing table of\n"
                               "`rtr score`: the highest lambda*p - (1-lambda)*cost, costs divided by the\n"
                               "cost scale (docs/ROUTING.md). With --budget, lambda is found on the exact path.\n"
                               "Online, each stdin line (a text, or {\"text\": ..., \"id\": ...}) is encoded,\n"
                               "scored and routed in one call: one JSON line per query with every pair's\n"
                               "predictions.",
                               opts, 0, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.npos ? a.pos[0] : NULL;
    cli_set_threads(threads);
    bool online = model || ckpt;
    if (online == (dir != NULL) || (online && (!model || !ckpt))) {
        fprintf(stderr, "rtr route: give a CORPUS_DIR, or --model and --checkpoint (queries on stdin)\n");
        return 2;
    }
    static const char *const exts[] = {".csv", ".jsonl", ".h5", NULL};
    if (!online && !out) {
        fprintf(stderr, "rtr route: --out FILE.csv, FILE.jsonl or FILE.h5 is required\n");
        return 2;
    }
    if (out && (rc = rtr_args_check_ext(&spec, "out", out, exts))) return rc;
    if (isnan(lambda) == isnan(budget)) {
        fprintf(stderr, "rtr route: give exactly one of --lambda and --budget\n");
        return 2;
    }
    if (strcmp(mode, "total") && strcmp(mode, "mean")) {
        fprintf(stderr, "rtr route: --budget-mode '%s': expected mean or total\n", mode);
        return 2;
    }
    rp.lambda = isnan(lambda) ? 0 : lambda;
    rp.budget = budget;
    rp.budget_total = !strcmp(mode, "total");

    rtr_backend be = {0};
    rtr_route_summary s = {0};
    rtr_status st = cli_route_options(&cli, &rp.o);
    if (!st && !online) st = cli_check_names(dir, rp.o.split, NULL, 0);
    if (!st) st = rtr_backend_init(&be, device);
    if (!st && online) st = route_online(&be, model, ckpt, out, &rp);
    else if (!st) st = rtr_route_corpus(&be, out, &s, dir, &rp);
    if (st) {
        rtr_backend_free(&be);
        return cli_error("route");
    }
    if (!online) report(&s, be.device, a.json);
    rtr_route_summary_free(&s);
    rtr_backend_free(&be);
    return 0;
}
