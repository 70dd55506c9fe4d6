/* `rtr route CORPUS_DIR --lambda L | --budget B --out FILE.csv|.jsonl|.h5`: one
 * decision per query from the routing tables of `rtr score`. Under --lambda
 * each query takes its highest λ·p − (1−λ)·c (rtr_route_argmax); under --budget
 * the exact λ path is computed and the most accurate routing whose predicted
 * cost fits is taken (rtr_path_budget), so the budget is met exactly as
 * predicted. Decisions go to CSV, JSONL or HDF5 through a temporary file.
 * Online (--model, --checkpoint) the queries are stdin lines, encoded and
 * scored here, and the decisions JSON lines on stdout. Decisions, paths and
 * the online scores are computed on a backend (--device). */
#include "cli/cli.h"
#include "route/route_data.h"
#include "rtr/backend.h"
#include "rtr/encoder.h"
#include "rtr/predictor.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One CSV field, quoted when it holds a separator, quote or line break. */
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static rtr_status write_decisions(const char *path, bool jsonl, const route_data *d, const int32_t *choice) {
    char *tmp;
    FILE *f = route_file_open(path, &tmp);
    if (!f) { free(tmp); return RTR_ERR_IO; }
    if (!jsonl) fputs("id,dataset,split,model,strategy,p_correct,pred_tokens,pred_cost\n", f);
    for (int64_t i = 0; i < d->n; i++) {
        int32_t j = choice[i];
        size_t at = (size_t)i * (size_t)d->k + (size_t)j;
        const char *model = d->cat.models[d->cat.pair_model[j]].name;
        const char *strategy = d->cat.strategies[d->cat.pair_strategy[j]].name;
        if (jsonl) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", d->id[i]);
            cJSON_AddStringToObject(o, "dataset", d->dataset[i]);
            cJSON_AddStringToObject(o, "split", d->split[i]);
            cJSON_AddStringToObject(o, "model", model);
            cJSON_AddStringToObject(o, "strategy", strategy);
            cJSON_AddNumberToObject(o, "p_correct", d->p[at]);
            cJSON_AddNumberToObject(o, "pred_tokens", d->tokens[at]);
            cJSON_AddNumberToObject(o, "pred_cost", d->cost[at]);
            char *text = cJSON_PrintUnformatted(o);
            if (text) { fputs(text, f); fputc('\n', f); }
            free(text);
            cJSON_Delete(o);
        } else {
            const char *cols[] = {d->id[i], d->dataset[i], d->split[i], model, strategy};
            for (int c = 0; c < 5; c++) { csv_field(f, cols[c]); fputc(',', f); }
            fprintf(f, "%.9g,%.9g,%.9g\n", d->p[at], d->tokens[at], d->cost[at]);
        }
    }
    rtr_status st = route_file_commit(f, tmp, path);
    free(tmp);
    return st;
}

/* One 1-D dataset of n values: memory type mt, file type ft. */
static herr_t h5_column(hid_t file, const char *name, hid_t ft, hid_t mt, const void *v, int64_t n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(file, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = d < 0 ? -1 : H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return e;
}

static herr_t h5_attr(hid_t loc, const char *key, hid_t t, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, key, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, t, v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return e;
}

/* HDF5 decisions: /id, /dataset, /split (strings), /pair (int32 index into
 * /pairs, the "model|strategy" names), /p_correct, /pred_tokens, /pred_cost
 * (float32), with lambda, cost_model, cost_scale, checkpoint_hash as root
 * attributes; readable with h5py. */
static rtr_status write_decisions_h5(const char *path, const route_data *d, const int32_t *choice,
                                     double lambda, const char *cost_model) {
    char *tmp = rtr_tmp_path(path), **names = rtr_calloc((size_t)d->k, sizeof *names);
    float *col = rtr_malloc((size_t)(d->n ? d->n : 1) * sizeof *col);
    if (!tmp || !names || !col) { free(tmp); free(names); free(col); return RTR_ERR_NOMEM; }
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    herr_t e = f < 0 ? -1 : 0;
    for (int32_t j = 0; j < d->k; j++) if (!(names[j] = rtr_catalog_pair_name(&d->cat, j))) e = -1;
    const char *hash = d->checkpoint_hash ? d->checkpoint_hash : "";
    if (e >= 0) e = h5_column(f, "pairs", st, st, names, d->k);
    if (e >= 0) e = h5_column(f, "id", st, st, d->id, d->n);
    if (e >= 0) e = h5_column(f, "dataset", st, st, d->dataset, d->n);
    if (e >= 0) e = h5_column(f, "split", st, st, d->split, d->n);
    if (e >= 0) e = h5_column(f, "pair", H5T_STD_I32LE, H5T_NATIVE_INT32, choice, d->n);
    const float *src[3] = {d->p, d->tokens, d->cost};
    const char *cols[3] = {"p_correct", "pred_tokens", "pred_cost"};
    for (int c = 0; c < 3 && e >= 0; c++) {
        for (int64_t i = 0; i < d->n; i++) col[i] = src[c][(size_t)i * (size_t)d->k + (size_t)choice[i]];
        e = h5_column(f, cols[c], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, col, d->n);
    }
    if (e >= 0) e = h5_attr(f, "lambda", H5T_NATIVE_DOUBLE, &lambda);
    if (e >= 0) e = h5_attr(f, "cost_scale", H5T_NATIVE_DOUBLE, &d->cost_scale);
    if (e >= 0) e = h5_attr(f, "cost_model", st, &cost_model);
    if (e >= 0) e = h5_attr(f, "checkpoint_hash", st, &hash);
    H5Tclose(st);
    if (f >= 0 && H5Fclose(f) < 0) e = -1;
    rtr_status s = e < 0 ? rtr_fail(RTR_ERR_IO, "%s: cannot write HDF5 decisions", tmp) : rtr_commit_file(tmp, path);
    if (s) remove(tmp);
    for (int32_t j = 0; j < d->k; j++) free(names[j]);
    free(names);
    free(col);
    free(tmp);
    return s;
}

/* Print (or --json) what was decided: λ, predicted and realised means, mix. */
static void report(const route_data *d, const int32_t *choice, double lambda, const char *how, const char *device,
                   bool json) {
    double pa = 0, pc = 0;
    int32_t *count = calloc((size_t)d->k, sizeof *count);
    for (int64_t i = 0; i < d->n; i++) {
        size_t at = (size_t)i * (size_t)d->k + (size_t)choice[i];
        pa += d->p[at];
        pc += d->cost[at];
        if (count) count[choice[i]]++;
    }
    pa /= (double)d->n;
    pc /= (double)d->n;
    double ra = NAN, rc = NAN;
    int64_t missing = 0;
    if (d->has_truth) {
        double sa = 0, sc = 0;
        for (int64_t i = 0; i < d->n; i++) {
            size_t at = (size_t)i * (size_t)d->k + (size_t)choice[i];
            if (isnan(d->true_correct[at]) || isnan(d->true_cost[at])) { missing++; continue; }
            sa += d->true_correct[at];
            sc += d->true_cost[at];
        }
        if (missing < d->n) { ra = sa / (double)(d->n - missing); rc = sc / (double)(d->n - missing); }
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n_queries", (double)d->n);
        cJSON_AddNumberToObject(o, "lambda", lambda);
        cJSON_AddStringToObject(o, "chosen_by", how);
        cJSON_AddStringToObject(o, "device", device);
        cJSON_AddNumberToObject(o, "cost_scale", d->cost_scale);
        cJSON_AddNumberToObject(o, "pred_accuracy", pa);
        cJSON_AddNumberToObject(o, "pred_mean_cost", pc);
        if (!isnan(ra)) {
            cJSON_AddNumberToObject(o, "accuracy", ra);
            cJSON_AddNumberToObject(o, "mean_cost", rc);
            cJSON_AddNumberToObject(o, "n_missing", (double)missing);
        }
        cJSON *mix = cJSON_AddObjectToObject(o, "pairs");
        for (int32_t j = 0; j < d->k && count; j++) {
            char *name = rtr_catalog_pair_name(&d->cat, j);
            if (name) cJSON_AddNumberToObject(mix, name, count[j]);
            free(name);
        }
        char *text = cJSON_PrintUnformatted(o);
        if (text) puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        printf("routed %lld queries at lambda %.9g (%s; cost scale %.6g) on %s\n", (long long)d->n, lambda, how,
               d->cost_scale, device);
        printf("predicted: accuracy %.4f, mean cost %.6g\n", pa, pc);
        if (!isnan(ra)) printf("realised:  accuracy %.4f, mean cost %.6g (%lld missing outcomes)\n", ra, rc, (long long)missing);
        for (int32_t j = 0; j < d->k && count; j++) {
            if (!count[j]) continue;
            char *name = rtr_catalog_pair_name(&d->cat, j);
            printf("  %-48s %10d  %5.1f%%\n", name ? name : "?", count[j], 100.0 * count[j] / (double)d->n);
            free(name);
        }
    }
    free(count);
}

/* A number option given as text (so that "not given" needs no sentinel in
 * --help): NaN when absent, false when it does not parse. */
static bool parse_number(const char *s, double *v) {
    char *end = NULL;
    *v = s ? strtod(s, &end) : NAN;
    return !s || (end != s && !*end);
}

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

/* `rtr route --model DIR --checkpoint CKPT`: encode and score stdin's
 * queries, then fill d as route_data_load would from a corpus. */
static rtr_status load_online(route_data *d, rtr_backend *be, const char *model_dir, const char *ckpt,
                              const route_load_params *prm, char ***texts_out, int64_t *n_texts) {
    rtr_predictor pred = {0};
    rtr_encoder *enc = NULL;
    rtr_catalog cat = {0};
    char **texts = NULL, **ids = NULL, hash[17] = "";
    float *emb = NULL, *p = NULL, *tok = NULL;
    int64_t n = 0;
    rtr_encoder_params ep = rtr_encoder_default_params();
    rtr_status st = rtr_predictor_load(&pred, ckpt);
    if (!st) st = rtr_encoder_load_on(model_dir, &ep, be, &enc); /* fp32 GEMMs: as close to the corpus as it gets */
    if (!st && pred.encoder_hash && strcmp(pred.encoder_hash, rtr_encoder_hash(enc)))
        st = rtr_fail(RTR_ERR_INVALID, "%s was trained on embeddings of encoder %s, %s is encoder %s", ckpt,
                      pred.encoder_hash, model_dir, rtr_encoder_hash(enc));
    if (!st && rtr_encoder_dim(enc) != pred.D)
        st = rtr_fail(RTR_ERR_INVALID, "%s expects %d-dim embeddings, %s gives %d", ckpt, pred.D, model_dir, rtr_encoder_dim(enc));
    if (!st) rtr_predictor_hash_hex(&pred, hash);
    if (!st && prm->o.checkpoint_hash && strcmp(hash, prm->o.checkpoint_hash))
        st = rtr_fail(RTR_ERR_INVALID, "%s has hash '%s', not '%s' (--checkpoint-hash)", ckpt, hash, prm->o.checkpoint_hash);
    if (!st) st = pred.catalog_json ? rtr_catalog_parse_json(&cat, pred.catalog_json, ckpt)
                                    : rtr_fail(RTR_ERR_FORMAT, "%s: no catalog in the checkpoint metadata", ckpt);
    if (!st) st = read_stdin_queries(&texts, &ids, &n);
    if (!st && n == 0) st = rtr_fail(RTR_ERR_INVALID, "stdin: no query to route");
    size_t nk = (size_t)(n ? n : 1) * (size_t)pred.n_pairs;
    if (!st) {
        emb = rtr_malloc((size_t)n * (size_t)pred.D * sizeof *emb);
        p = rtr_malloc(nk * sizeof *p);
        tok = rtr_malloc(nk * sizeof *tok);
        if (!emb || !p || !tok) st = RTR_ERR_NOMEM;
    }
    if (!st) st = rtr_encoder_encode(enc, (const char *const *)texts, NULL, (size_t)n, emb);
    if (!st) st = rtr_predictor_score_backend(be, &pred, emb, n, 0, p, tok);
    if (!st) {
        st = route_data_from_predictions(d, &cat, ids, n, p, tok, (const char *const *)texts, hash, prm);
        ids = NULL; /* owned by d now, also on failure */
        p = tok = NULL;
    }
    for (int64_t i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(emb);
    free(p);
    free(tok);
    rtr_catalog_free(&cat);
    rtr_encoder_free(enc);
    rtr_predictor_free(&pred);
    *texts_out = texts;
    *n_texts = n;
    return st;
}

/* Online output: one JSON line per query with the choice and every pair's predictions. */
static void print_online(const route_data *d, const int32_t *choice, double lambda) {
    for (int64_t i = 0; i < d->n; i++) {
        cJSON *o = cJSON_CreateObject();
        int32_t j = choice[i];
        cJSON_AddStringToObject(o, "id", d->id[i]);
        cJSON_AddStringToObject(o, "model", d->cat.models[d->cat.pair_model[j]].name);
        cJSON_AddStringToObject(o, "strategy", d->cat.strategies[d->cat.pair_strategy[j]].name);
        cJSON_AddNumberToObject(o, "lambda", lambda);
        cJSON *pairs = cJSON_AddArrayToObject(o, "pairs");
        for (int32_t t = 0; t < d->k; t++) {
            size_t at = (size_t)i * (size_t)d->k + (size_t)t;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "model", d->cat.models[d->cat.pair_model[t]].name);
            cJSON_AddStringToObject(e, "strategy", d->cat.strategies[d->cat.pair_strategy[t]].name);
            if (isnan(d->p[at])) cJSON_AddNullToObject(e, "p_correct"); /* excluded */
            else cJSON_AddNumberToObject(e, "p_correct", d->p[at]);
            cJSON_AddNumberToObject(e, "tokens", d->tokens[at]);
            cJSON_AddNumberToObject(e, "cost", d->cost[at]);
            cJSON_AddItemToArray(pairs, e);
        }
        char *text = cJSON_PrintUnformatted(o);
        if (text) puts(text);
        free(text);
        cJSON_Delete(o);
    }
}

/* rtr_route_argmax on backend b, host arrays in and out (on the host: as they are). */
static rtr_status argmax_on(rtr_backend *b, int32_t *choice, const float *p, const float *c, double lambda, int64_t n,
                            int32_t k) {
    const rtr_backend_iface *f = b->iface;
    if (rtr_backend_is_host(b)) return f->route_argmax(b->ctx, choice, p, c, lambda, n, k);
    size_t nk = (size_t)n * (size_t)k * sizeof(float);
    float *dp = NULL, *dc = NULL;
    int32_t *dch = NULL;
    rtr_status st = rtr_backend_alloc(b, (void **)&dp, nk);
    if (!st) st = rtr_backend_alloc(b, (void **)&dc, nk);
    if (!st) st = rtr_backend_alloc(b, (void **)&dch, (size_t)n * sizeof *dch);
    if (!st) st = rtr_backend_upload(b, dp, p, nk);
    if (!st) st = rtr_backend_upload(b, dc, c, nk);
    if (!st) st = f->route_argmax(b->ctx, dch, dp, dc, lambda, n, k);
    if (!st) st = rtr_backend_download(b, choice, dch, (size_t)n * sizeof *dch);
    rtr_backend_free_mem(b, dp);
    rtr_backend_free_mem(b, dc);
    rtr_backend_free_mem(b, dch);
    return st;
}

/* The decision for every query: rtr_route_argmax at --lambda, or under a budget
 * the largest λ of the most expensive path point within it. */
static rtr_status decide(route_data *d, rtr_backend *be, bool by_lambda, double *lambda, double budget, bool total,
                         int32_t *choice, const char **how) {
    if (by_lambda) {
        *how = "--lambda";
        return argmax_on(be, choice, d->p, d->c, *lambda, d->n, d->k);
    }
    rtr_route_table t = route_data_table(d);
    rtr_path path;
    int64_t pt = 0;
    rtr_status st = rtr_path_compute_on(&path, &t, be, 0);
    if (st) return st;
    st = rtr_path_budget(&path, total ? budget / (double)d->n : budget, &pt);
    if (!st) {
        *lambda = path.lambda[pt];
        *how = total ? "--budget total, largest lambda within it" : "--budget mean, largest lambda within it";
        st = rtr_envelope_choose_on(choice, d->p, d->c, *lambda, d->n, d->k, be, 0);
    }
    rtr_path_free(&path);
    return st;
}

int cmd_route(int argc, char **argv) {
    double lambda, budget;
    const char *lambda_s = NULL, *budget_s = NULL, *mode = "mean", *out = NULL, *model = NULL, *ckpt = NULL;
    const char *device = "auto";
    cli_route cli = {.cost = "tokens"};
    const rtr_opt opts[] = {
        {"lambda", RTR_OPT_STR, &lambda_s, "trade-off in [0,1]: 1 = accuracy only, 0 = cost only"},
        {"budget", RTR_OPT_STR, &budget_s, "instead of --lambda: the most accurate routing whose predicted cost fits"},
        {"budget-mode", RTR_OPT_STR, &mode, "mean (per query) or total (over the routed queries)"},
        {"out", RTR_OPT_STR, &out, "decisions file: .csv, .jsonl or .h5 (online: JSON lines on stdout when absent)"},
        {"model", RTR_OPT_STR, &model, "online: sentence-encoder folder; queries come from stdin"},
        {"checkpoint", RTR_OPT_STR, &ckpt, "online: predictor checkpoint from `rtr train`"},
        RTR_OPT_DEVICE(&device),
        CLI_ROUTE_OPTS(cli),
        {0},
    };
    const rtr_cmd_spec spec = {"route", "CORPUS_DIR (--lambda L | --budget B) --out FILE.csv|.jsonl|.h5\n"
                                        "       rtr route --model MODEL_DIR --checkpoint CKPT (--lambda L | --budget B) < queries",
                               "Choose one (model, strategy) pair per query from the routing tables of\n"
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
    bool json = a.json, online = model || ckpt;
    if (online == (dir != NULL) || (online && (!model || !ckpt))) {
        fprintf(stderr, "rtr route: give a CORPUS_DIR, or --model and --checkpoint (queries on stdin)\n");
        return 2;
    }
    size_t ol = out ? strlen(out) : 0;
    bool jsonl = ol > 6 && !strcmp(out + ol - 6, ".jsonl"), h5 = ol > 3 && !strcmp(out + ol - 3, ".h5");
    if ((!online && !out) || (out && !jsonl && !h5 && !(ol > 4 && !strcmp(out + ol - 4, ".csv")))) {
        fprintf(stderr, "rtr route: --out FILE.csv, FILE.jsonl or FILE.h5 is required\n");
        return 2;
    }
    if (!parse_number(lambda_s, &lambda) || !parse_number(budget_s, &budget)) {
        fprintf(stderr, "rtr route: --lambda and --budget take a number\n");
        return 2;
    }
    if (!lambda_s == !budget_s) {
        fprintf(stderr, "rtr route: give exactly one of --lambda and --budget\n");
        return 2;
    }
    if (lambda_s && !(lambda >= 0 && lambda <= 1)) {
        fprintf(stderr, "rtr route: error: --lambda %g is outside [0, 1]\n", lambda);
        return 1;
    }
    bool total = !strcmp(mode, "total");
    if (!total && strcmp(mode, "mean")) {
        fprintf(stderr, "rtr route: error: --budget-mode '%s': expected mean or total\n", mode);
        return 1;
    }
    if (budget_s && !(budget >= 0 && isfinite(budget))) {
        fprintf(stderr, "rtr route: error: --budget %g must be a finite number >= 0\n", budget);
        return 1;
    }

    route_load_params prm = {0};
    route_data d = {0};
    rtr_backend be = {0};
    int32_t *choice = NULL;
    char **texts = NULL;
    int64_t n_texts = 0;
    const char *how = "--lambda";
    rtr_status st = cli_route_options(&cli, &prm.o);
    if (!st) st = rtr_backend_init(&be, device);
    if (!st) st = online ? load_online(&d, &be, model, ckpt, &prm, &texts, &n_texts) : route_data_load(&d, dir, &prm);
    if (!st && !(choice = rtr_malloc((size_t)d.n * sizeof *choice))) st = RTR_ERR_NOMEM;
    if (!st) st = decide(&d, &be, lambda_s != NULL, &lambda, budget, total, choice, &how);
    if (!st && out) st = h5 ? write_decisions_h5(out, &d, choice, lambda, rtr_cost_model_name(prm.o.cost_model))
                            : write_decisions(out, jsonl, &d, choice);
    if (st) fprintf(stderr, "rtr route: error: %s\n", rtr_last_error());
    else if (online && !out) print_online(&d, choice, lambda);
    else report(&d, choice, lambda, how, be.device, json);
    for (int64_t i = 0; i < n_texts; i++) free(texts[i]);
    free(texts);
    free(choice);
    route_data_free(&d);
    rtr_backend_free(&be);
    return st ? 1 : 0;
}
