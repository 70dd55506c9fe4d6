/* The evaluation stage (include/rtr/eval.h): RTR against every baseline on
 * one evaluated split, with the metrics of METRICS.md, written as the file
 * `rtr report` renders (docs/ROUTING.md, "Evaluation file").
 *
 * Every router is fitted on the training split only and judged on realised
 * outcomes of the evaluated split. Routers that predict per-query accuracy and
 * cost (RTR, kNN, dataset prior, EmbedLLM-style) go through the same λ rule
 * and exact path, with the same cost scale, so λ means the same for all; the
 * RouteLLM-style router sweeps its threshold. Each router's operating point is
 * the one a user would pick without seeing test outcomes: the most accurate
 * predicted routing whose predicted mean cost stays within the training mean
 * cost of the best single pair on the training split. Several routing tables
 * of one corpus (one per predictor) are each an RTR row of the same table.
 * The paths and RTR's mix of choices are computed on a backend. */
#include "rtr/eval.h"
#include "common/json.h"
#include "common/util.h"
#include "eval/evaluate.h"
#include "route/route_data.h"
#include "rtr/metrics.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TABLES 8   /* RTR rows (routing tables compared) */
#define MAX_ROUTERS (MAX_TABLES + 7)
#define JSON_POINTS 1500 /* points per curve in the file (metrics use all of them) */

typedef struct {
    char name[320];
    double *cost, *acc; /* realised curve, owned */
    int64_t n;
    eval_curve m;
    rtr_op_point op;
    double op_lambda; /* NaN for threshold routers */
    char note[160];
} router_result;

static void router_free(router_result *r) {
    free(r->cost);
    free(r->acc);
}

/* A router given as per-query predicted accuracy p and cost (in the unit):
 * exact path on the test split, realised curve, operating point at budget. */
static rtr_status table_router(router_result *out, const char *name, const route_data *te, float *p,
                               const float *cost_unit, double budget, rtr_backend *be) {
    size_t nk = (size_t)te->n * (size_t)te->k;
    float *c = rtr_malloc(nk * sizeof *c);
    if (!c) return RTR_ERR_NOMEM;
    for (size_t i = 0; i < nk; i++) {
        c[i] = (float)(cost_unit[i] / te->cost_scale);
        if (isnan(c[i])) p[i] = NAN; /* a pair without a cost estimate is never chosen */
    }
    rtr_route_table t = {te->n, te->k, p, c, cost_unit, te->true_correct, te->true_cost};
    rtr_path path = {0};
    rtr_status st = rtr_path_compute_on(&path, &t, be, 0);
    free(c);
    if (st) return rtr_fail_prefix(st, "%s: ", name);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->n = path.n_points;
    out->cost = path.real_cost;
    out->acc = path.real_acc;
    path.real_cost = path.real_acc = NULL;
    int64_t pt = 0;
    if (rtr_path_budget(&path, budget, &pt) != RTR_OK) {
        pt = 0;
        snprintf(out->note, sizeof out->note, "cheapest routing: budget below it");
    } else {
        snprintf(out->note, sizeof out->note, "λ ≤ %.4g", path.lambda[pt]);
    }
    out->op_lambda = path.lambda[pt];
    out->op.acc = out->acc[pt];
    out->op.cost = out->cost[pt];
    out->op.n_missing = path.n_missing[pt];
    rtr_path_free(&path);
    return RTR_OK;
}

/* RouteLLM-style: strong vs weak pair, queries ranked by the kNN estimate of
 * how much more often the strong pair is right; the operating point sends as
 * many as the budget allows by the training means. */
static rtr_status routellm_router(router_result *out, const route_data *te, const float *knn_p, int32_t weak,
                                  int32_t strong, const eval_refs *train_refs, double budget) {
    int64_t n = te->n;
    int32_t k = te->k;
    float *score = rtr_malloc((size_t)n * sizeof *score);
    if (!score) return RTR_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) score[i] = knn_p[i * k + strong] - knn_p[i * k + weak];
    rtr_curve cv = {0};
    rtr_status st = rtr_router_two_pair_sweep(&cv, score, te->true_correct, te->true_cost, n, k, weak, strong);
    free(score);
    if (st) return st;
    snprintf(out->name, sizeof out->name, "RouteLLM-style (kNN win estimate)");
    out->n = cv.n_points;
    out->cost = cv.cost;
    out->acc = cv.acc;
    double cw = train_refs->single[weak].cost, cs = train_refs->single[strong].cost;
    double xstar = cs > cw ? (budget - cw) / (cs - cw) : 1.0;
    int64_t pt = 0;
    for (int64_t t = 0; t < cv.n_points; t++)
        if (cv.x[t] <= xstar + 1e-12) pt = t;
    out->op.acc = cv.acc[pt];
    out->op.cost = cv.cost[pt];
    out->op_lambda = NAN;
    snprintf(out->note, sizeof out->note, "%.0f%% of queries to the strong pair", 100 * cv.x[pt]);
    free(cv.x);
    return RTR_OK;
}

static cJSON *points_json(const double *x, const double *y, int64_t n) {
    cJSON *arr = cJSON_CreateArray();
    int64_t step = n > JSON_POINTS ? (n + JSON_POINTS - 1) / JSON_POINTS : 1;
    for (int64_t t = 0; t < n; t = (t + step < n || t == n - 1) ? t + step : n - 1) {
        if (isnan(x[t]) || isnan(y[t])) continue;
        cJSON *p = cJSON_CreateArray();
        cJSON_AddItemToArray(p, cJSON_CreateNumber(x[t]));
        cJSON_AddItemToArray(p, cJSON_CreateNumber(y[t]));
        cJSON_AddItemToArray(arr, p);
    }
    return arr;
}

static cJSON *router_json(const router_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddItemToObject(o, "points", points_json(r->cost, r->acc, r->n));
    rtr_json_add_number(o, "aiq", r->m.aiq);
    rtr_json_add_number(o, "apgr", r->m.apgr);
    rtr_json_add_number(o, "cpt50", r->m.cpt50);
    rtr_json_add_number(o, "cpt80", r->m.cpt80);
    rtr_json_add_number(o, "cost_to_match", r->m.to_match);
    rtr_json_add_number(o, "oracle_gap", r->m.oracle_gap);
    cJSON *op = cJSON_AddObjectToObject(o, "op");
    rtr_json_add_number(op, "acc", r->op.acc);
    rtr_json_add_number(op, "cost", r->op.cost);
    rtr_json_add_number(op, "lambda", r->op_lambda);
    if (r->note[0]) cJSON_AddStringToObject(op, "note", r->note);
    return o;
}

/* Single-point reference router (Random, Oracle, best single). */
static rtr_status point_router(router_result *out, const char *name, rtr_op_point op, const char *note) {
    snprintf(out->name, sizeof out->name, "%s", name);
    out->n = 1;
    out->cost = rtr_malloc(sizeof(double));
    out->acc = rtr_malloc(sizeof(double));
    if (!out->cost || !out->acc) return RTR_ERR_NOMEM;
    out->cost[0] = op.cost;
    out->acc[0] = op.acc;
    out->op = op;
    out->op_lambda = NAN;
    snprintf(out->note, sizeof out->note, "%s", note);
    return RTR_OK;
}

/* Counts of the λ grid's choices, filled from each query's envelope: the
 * envelopes are computed once, not once per grid point. */
typedef struct {
    int grid;
    double inv_n, *count; /* grid x k shares */
} mix_acc;

/* The piece at λ as rtr_envelope_choose picks it: the last whose start is
 * below λ (the first also holds λ = 0); the grid ascends, so one walk. */
static rtr_status mix_sink(void *ctx, int64_t q0, int64_t n, int32_t k, const int32_t *pair, const double *start,
                           const int32_t *m) {
    mix_acc *a = ctx;
    (void)q0;
    for (int64_t i = 0; i < n; i++) {
        const int32_t *pi = pair + (size_t)i * k;
        const double *si = start + (size_t)i * k;
        for (int g = 0, t = 0; m[i] && g < a->grid; g++) {
            double lambda = (double)g / (a->grid - 1);
            while (t + 1 < m[i] && si[t + 1] < lambda) t++;
            a->count[(size_t)g * k + pi[t]] += a->inv_n;
        }
    }
    return RTR_OK;
}

/* Share of queries routed to each pair along a λ grid (RTR's choices). */
static cJSON *mix_json(const route_data *te, int grid, rtr_backend *be) {
    int32_t k = te->k;
    mix_acc acc = {grid, 1.0 / (double)te->n, rtr_calloc((size_t)grid * k, sizeof(double))};
    if (!acc.count || rtr_envelopes_on(be, te->p, te->c, te->n, k, 0, mix_sink, &acc)) {
        free(acc.count);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject(), *lam = cJSON_AddArrayToObject(o, "lambda");
    cJSON *names = cJSON_AddArrayToObject(o, "pairs"), *frac = cJSON_AddArrayToObject(o, "fraction");
    for (int32_t j = 0; j < k; j++) {
        char *nm = rtr_catalog_pair_name(&te->cat, j);
        cJSON_AddItemToArray(names, cJSON_CreateString(nm ? nm : "?"));
        free(nm);
    }
    for (int g = 0; g < grid; g++) {
        cJSON_AddItemToArray(lam, cJSON_CreateNumber((double)g / (grid - 1)));
        cJSON_AddItemToArray(frac, cJSON_CreateDoubleArray(acc.count + (size_t)g * k, k));
    }
    free(acc.count);
    return o;
}

/* Reliability of the correctness head over 10 equal-width bins. */
static cJSON *calibration_json(const route_data *te) {
    double sp[10] = {0}, st[10] = {0}, cnt[10] = {0}, total = 0;
    for (size_t i = 0; i < (size_t)te->n * (size_t)te->k; i++) {
        double p = te->p[i], y = te->true_correct[i];
        if (isnan(p) || isnan(y)) continue;
        int b = p >= 1 ? 9 : (int)(p * 10);
        sp[b] += p;
        st[b] += y;
        cnt[b] += 1;
        total += 1;
    }
    cJSON *o = cJSON_CreateObject(), *mp = cJSON_AddArrayToObject(o, "mean_pred");
    cJSON *mt = cJSON_AddArrayToObject(o, "mean_true"), *c = cJSON_AddArrayToObject(o, "count");
    double ece = 0;
    for (int b = 0; b < 10; b++) {
        if (!cnt[b]) continue;
        cJSON_AddItemToArray(mp, cJSON_CreateNumber(sp[b] / cnt[b]));
        cJSON_AddItemToArray(mt, cJSON_CreateNumber(st[b] / cnt[b]));
        cJSON_AddItemToArray(c, cJSON_CreateNumber(cnt[b]));
        ece += cnt[b] / total * fabs(sp[b] / cnt[b] - st[b] / cnt[b]);
    }
    rtr_json_add_number(o, "ece", total ? ece : NAN);
    return o;
}

static const char *unit_name(rtr_cost_model m) {
    return m == RTR_COST_USD ? "USD" : m == RTR_COST_USER ? "user cost" : "output tokens";
}


rtr_eval_params rtr_eval_default_params(void) {
    rtr_eval_params p = {0};
    p.route.split = "test";
    p.route.cost_model = RTR_COST_TOKENS;
    p.train_split = "train";
    p.knn_k = 10;
    p.embedllm = true;
    return p;
}

void rtr_eval_summary_free(rtr_eval_summary *s) {
    for (int i = 0; i < s->n_routers; i++) free(s->routers[i].name);
    free(s->routers);
    memset(s, 0, sizeof *s);
}

/* The routing tables to judge: route.table split at commas into names[]
 * (pointers into *buf, caller frees it); one NULL name when none is given. */
static rtr_status table_names(const char *list, char **buf, const char *names[MAX_TABLES], int *n) {
    *buf = NULL;
    *n = 1;
    names[0] = NULL;
    if (!list) return RTR_OK;
    if (!(*buf = rtr_strdup(list))) return RTR_ERR_NOMEM;
    *n = 0;
    char *save = NULL;
    for (char *t = strtok_r(*buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_TABLES) return rtr_fail(RTR_ERR_INVALID, "--table: at most %d routing tables at once", MAX_TABLES);
        names[(*n)++] = t;
    }
    return *n ? RTR_OK : rtr_fail(RTR_ERR_INVALID, "--table '%s' names no table", list);
}

static cJSON *eval_json(const char *corpus_dir, const rtr_eval_params *ep, const route_data *te, const route_data *tr,
                        const eval_refs *refs, const eval_refs *train_refs, double budget, double x_max,
                        const router_result *R, int nr, const char *device) {
    cJSON *root = cJSON_CreateObject();
    char deflt[256];
    snprintf(deflt, sizeof deflt, "RTR on %s", corpus_dir);
    const char *split = ep->route.split, *unit = unit_name(ep->route.cost_model);
    cJSON_AddStringToObject(root, "title", ep->title ? ep->title : deflt);
    cJSON_AddStringToObject(root, "corpus", corpus_dir);
    cJSON_AddStringToObject(root, "split", split && *split ? split : "(all)");
    cJSON_AddStringToObject(root, "train_split", ep->train_split);
    if (ep->route.dataset) cJSON_AddStringToObject(root, "test_dataset", ep->route.dataset);
    if (ep->train_skip_dataset) cJSON_AddStringToObject(root, "train_skip_dataset", ep->train_skip_dataset);
    cJSON_AddNumberToObject(root, "n_queries", (double)te->n);
    cJSON_AddNumberToObject(root, "n_train", (double)tr->n);
    cJSON_AddStringToObject(root, "cost_unit", unit);
    cJSON_AddNumberToObject(root, "cost_scale", te->cost_scale);
    cJSON_AddStringToObject(root, "checkpoint_hash", te->checkpoint_hash ? te->checkpoint_hash : "");
    cJSON_AddStringToObject(root, "device", device);
    rtr_json_add_number(root, "x_max", x_max);
    char *bt = rtr_catalog_pair_name(&te->cat, train_refs->best);
    char notes[600];
    snprintf(notes, sizeof notes,
             "Operating points: each router's most accurate predicted routing within a mean cost of %.6g %s, "
             "the training mean cost of the best training pair (%s). Baselines are fitted on the %s split%s%s; "
             "APGR and CPT use mean cost normalised between the cheapest and the best single pair, except the "
             "RouteLLM-style router, whose x is the share sent to the strong pair.",
             budget, unit, bt ? bt : "?", ep->train_split, ep->train_skip_dataset ? " without " : "",
             ep->train_skip_dataset ? ep->train_skip_dataset : "");
    free(bt);
    cJSON_AddStringToObject(root, "notes", notes);
    cJSON *pairs = cJSON_AddArrayToObject(root, "pairs");
    for (int32_t j = 0; j < te->k; j++) {
        cJSON *o = cJSON_CreateObject();
        char *nm = rtr_catalog_pair_name(&te->cat, j);
        cJSON_AddStringToObject(o, "name", nm ? nm : "?");
        free(nm);
        rtr_json_add_number(o, "acc", refs->single[j].acc);
        rtr_json_add_number(o, "cost", refs->single[j].cost);
        cJSON_AddItemToArray(pairs, o);
    }
    cJSON *routers = cJSON_AddArrayToObject(root, "routers");
    for (int i = 0; i < nr; i++) cJSON_AddItemToArray(routers, router_json(&R[i]));
    return root;
}

rtr_status rtr_eval_corpus(rtr_backend *be, const char *out_path, rtr_eval_summary *summary, const char *corpus_dir,
                           const rtr_eval_params *ep) {
    memset(summary, 0, sizeof *summary);
    if (ep->knn_k < 1) return rtr_fail(RTR_ERR_INVALID, "eval: the kNN router needs k >= 1, not %d", (int)ep->knn_k);
    route_data te = {0}, tr = {0}, extra[MAX_TABLES];
    eval_refs refs = {0}, train_refs = {0};
    router_result R[MAX_ROUTERS];
    memset(extra, 0, sizeof extra);
    memset(R, 0, sizeof R);
    const char *tables[MAX_TABLES];
    char *table_buf = NULL;
    int nr = 0, nt = 0;
    size_t nk = 0;
    float *bp = NULL, *bc = NULL, *knn_p = NULL;
    cJSON *root = NULL;
    char *text = NULL;
    double t0 = rtr_now();
    rtr_status st = table_names(ep->route.table, &table_buf, tables, &nt);
    /* The evaluated split with the first table and the embeddings; the
     * training split's outcomes and embeddings of the same encoder. */
    route_load_params prm = {.o = ep->route, .embeddings = true}, trp;
    prm.o.table = tables[0];
    if (!st) st = route_data_load(&te, corpus_dir, &prm);
    if (!st) {
        trp = prm;
        trp.o.split = ep->train_split;
        trp.o.dataset = NULL;
        trp.o.skip_dataset = ep->train_skip_dataset;
        trp.o.checkpoint_hash = NULL;
        trp.o.table = NULL;
        trp.no_tables = true;
        trp.encoder_hash = te.encoder_hash;
        st = route_data_load(&tr, corpus_dir, &trp);
    }
    /* Every further table over the same queries, with the same cost scale. */
    for (int t = 1; !st && t < nt; t++) {
        route_load_params xp = {.o = prm.o};
        xp.o.table = tables[t];
        xp.o.cost_scale = te.cost_scale;
        st = route_data_load(&extra[t], corpus_dir, &xp);
        if (!st && extra[t].n != te.n)
            st = rtr_fail(RTR_ERR_FORMAT, "%s: table %s covers %lld queries of the split, table %s %lld", corpus_dir,
                          tables[t], (long long)extra[t].n, tables[0], (long long)te.n);
    }
    if (!st && (!te.has_truth || !tr.has_truth))
        st = rtr_fail(RTR_ERR_INVALID, "%s: the %s split has no outcomes to evaluate against", corpus_dir,
                      te.has_truth ? ep->train_split : ep->route.split);
    if (!st) st = eval_refs_compute(&refs, te.true_correct, te.true_cost, te.n, te.k);
    if (!st) st = eval_refs_compute(&train_refs, tr.true_correct, tr.true_cost, tr.n, tr.k);
    if (!st && (refs.best < 0 || train_refs.best < 0))
        st = rtr_fail(RTR_ERR_INVALID, "%s: no pair has outcomes in both splits", corpus_dir);
    nk = (size_t)te.n * (size_t)te.k;
    double budget = st ? 0 : train_refs.single[train_refs.best].cost;
    if (!st) {
        bp = rtr_malloc(nk * sizeof *bp);
        bc = rtr_malloc(nk * sizeof *bc);
        knn_p = rtr_malloc(nk * sizeof *knn_p);
        if (!bp || !bc || !knn_p) st = RTR_ERR_NOMEM;
    }
    /* RTR itself, one row per table: the scored tables (p already carries any exclusions). */
    for (int t = 0; !st && t < nt; t++) {
        const route_data *d = t ? &extra[t] : &te;
        char name[300];
        snprintf(name, sizeof name, nt > 1 ? "RTR: %s" : "RTR", tables[t]);
        memcpy(bp, d->p, nk * sizeof *bp);
        st = table_router(&R[nr++], name, &te, bp, d->cost, budget, be);
    }
    if (!st) st = rtr_router_prior_table(bp, bc, (const char *const *)te.dataset, te.n,
                                         (const char *const *)tr.dataset, tr.true_correct, tr.true_cost, tr.n, te.k);
    if (!st) st = table_router(&R[nr++], "Dataset prior", &te, bp, bc, budget, be);
    if (!st) st = rtr_router_knn_table(bp, bc, te.emb, te.n, tr.emb, tr.true_correct, tr.true_cost, tr.n, te.emb_dim,
                                       te.k, (int32_t)(ep->knn_k < tr.n ? ep->knn_k : tr.n));
    if (!st) {
        memcpy(knn_p, bp, nk * sizeof *bp);
        st = table_router(&R[nr++], "kNN router", &te, bp, bc, budget, be);
    }
    if (!st && ep->embedllm) {
        rtr_embedllm_params emp = rtr_embedllm_default_params();
        st = rtr_router_embedllm_table(bp, bc, te.emb, te.n, tr.emb, tr.true_correct, tr.true_cost, tr.n, te.emb_dim,
                                       te.k, &emp, NULL);
        if (!st) st = table_router(&R[nr++], "EmbedLLM-style", &te, bp, bc, budget, be);
    }
    if (!st && train_refs.cheapest != train_refs.best)
        st = routellm_router(&R[nr++], &te, knn_p, train_refs.cheapest, train_refs.best, &train_refs, budget);
    char *best_name = st ? NULL : rtr_catalog_pair_name(&te.cat, refs.best);
    char best_label[300];
    snprintf(best_label, sizeof best_label, "Best single: %s", best_name ? best_name : "?");
    free(best_name);
    if (!st) st = point_router(&R[nr++], "Random (expectation)", refs.random, "");
    if (!st) st = point_router(&R[nr++], "Oracle", refs.oracle, "cheapest correct pair");
    if (!st) st = point_router(&R[nr++], best_label, refs.single[refs.best], "best on the evaluated split");

    /* One x_max for every router of the table, then each router's metrics. */
    double x_max = st ? 0 : eval_refs_x_max(&refs);
    for (int i = 0; i < nr; i++)
        for (int64_t t = 0; t < R[i].n; t++)
            if (!isnan(R[i].cost[t])) x_max = fmax(x_max, R[i].cost[t]);
    for (int i = 0; !st && i < nr; i++) st = eval_curve_compute(&R[i].m, &refs, R[i].cost, R[i].acc, R[i].n, x_max);

    if (!st) {
        root = eval_json(corpus_dir, ep, &te, &tr, &refs, &train_refs, budget, x_max, R, nr, be->device);
        if (ep->route.table) {
            cJSON *tabs = cJSON_AddArrayToObject(root, "tables");
            for (int t = 0; t < nt; t++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "name", tables[t]);
                cJSON_AddStringToObject(o, "checkpoint_hash", (t ? &extra[t] : &te)->checkpoint_hash);
                cJSON_AddItemToArray(tabs, o);
            }
        }
        cJSON *mix = mix_json(&te, 101, be);
        if (mix) cJSON_AddItemToObject(root, "mix", mix);
        cJSON_AddItemToObject(root, "calibration", calibration_json(&te));
        cJSON_AddNumberToObject(root, "seconds", rtr_now() - t0);
        text = cJSON_Print(root);
        st = text ? rtr_write_file_atomic(out_path, text, strlen(text)) : rtr_fail(RTR_ERR_NOMEM, "eval: out of memory");
    }
    if (!st && !(summary->routers = rtr_calloc((size_t)nr, sizeof *summary->routers))) st = RTR_ERR_NOMEM;
    for (int i = 0; !st && i < nr; i++) {
        rtr_eval_router *o = &summary->routers[summary->n_routers++];
        *o = (rtr_eval_router){rtr_strdup(R[i].name), R[i].op.acc, R[i].op.cost, R[i].m.aiq, R[i].m.to_match};
        if (!o->name) st = RTR_ERR_NOMEM;
    }
    if (!st) {
        summary->n_queries = te.n;
        summary->n_train = tr.n;
        summary->cost_unit = unit_name(ep->route.cost_model);
        summary->x_max = x_max;
    } else {
        rtr_eval_summary_free(summary);
    }
    for (int i = 0; i < nr; i++) router_free(&R[i]);
    cJSON_Delete(root);
    free(text);
    free(bp);
    free(bc);
    free(knn_p);
    free(table_buf);
    eval_refs_free(&refs);
    eval_refs_free(&train_refs);
    route_data_free(&te);
    route_data_free(&tr);
    for (int t = 0; t < MAX_TABLES; t++) route_data_free(&extra[t]);
    return st;
}
