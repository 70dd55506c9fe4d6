/* `rtr sweep CORPUS_DIR --out DIR`: the exact accuracy-versus-cost path over
 * λ ∈ [0,1] (rtr_path_compute), predicted and, where the corpus has
 * outcomes, realised; its Pareto front; an optional λ grid; and, with
 * outcomes, the reference routers (single pairs, Random, Oracle, best single)
 * with AIQ, APGR, CPT, cost-to-match and oracle gap. Writes DIR/path.csv,
 * DIR/grid.csv (--grid), DIR/summary.json and DIR/plot.svg. The envelopes
 * behind the path are computed on a backend (--device). */
#include "cli/cli.h"
#include "eval/evaluate.h"
#include "eval/svg.h"
#include "route/route_data.h"
#include "rtr/metrics.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Reference routers and metrics on the realised outcomes. */
typedef struct {
    eval_refs r;
    eval_curve m;
    double x_max, aiq_single;
} sweep_refs;

/* The path's points as plain (cost, accuracy) arrays: realised when the
 * corpus has outcomes, else predicted. */
static void path_xy(const rtr_path *p, const double **cost, const double **acc) {
    *cost = p->real_cost ? p->real_cost : p->pred_cost;
    *acc = p->real_acc ? p->real_acc : p->pred_acc;
}

static rtr_status refs_compute(sweep_refs *s, const route_data *d, const rtr_path *path) {
    rtr_status st = eval_refs_compute(&s->r, d->true_correct, d->true_cost, d->n, d->k);
    double *sc = rtr_malloc((size_t)d->k * sizeof *sc), *sa = rtr_malloc((size_t)d->k * sizeof *sa);
    if (!st && (!sc || !sa)) st = RTR_ERR_NOMEM;
    const double *cost, *acc;
    path_xy(path, &cost, &acc);
    s->x_max = st ? 0 : eval_refs_x_max(&s->r);
    for (int64_t t = 0; t < path->n_points; t++)
        if (!isnan(cost[t])) s->x_max = fmax(s->x_max, cost[t]);
    for (int32_t j = 0; !st && j < d->k; j++) {
        sc[j] = s->r.single[j].cost;
        sa[j] = s->r.single[j].acc;
    }
    if (!st) st = eval_curve_compute(&s->m, &s->r, cost, acc, path->n_points, s->x_max);
    s->aiq_single = NAN;
    if (!st && s->r.best >= 0 && s->x_max > 0) st = rtr_metric_aiq(sc, sa, d->k, s->x_max, &s->aiq_single);
    free(sc);
    free(sa);
    return st;
}

/* ------------------------------------------------------------- tables */

static void csv_num(FILE *f, double v, const char *sep) {
    if (isnan(v)) fputs(sep, f); /* empty field: no value */
    else fprintf(f, "%.10g%s", v, sep);
}

/* One path/grid row: predicted, then realised values when present. */
static void csv_point(FILE *f, const rtr_path *p, int64_t j) {
    csv_num(f, p->pred_acc[j], ",");
    csv_num(f, p->pred_cost[j], p->real_acc ? "," : "");
    if (p->real_acc) {
        csv_num(f, p->real_acc[j], ",");
        csv_num(f, p->real_cost[j], ",");
        fprintf(f, "%lld", (long long)p->n_missing[j]);
    }
}

static rtr_status write_path_csv(const char *path_csv, const rtr_path *p, const bool *front) {
    char *tmp;
    FILE *f = route_file_open(path_csv, &tmp);
    if (!f) { free(tmp); return RTR_ERR_IO; }
    fprintf(f, "point,lambda_lo,lambda_hi,pareto,pred_accuracy,pred_mean_cost%s\n",
            p->real_acc ? ",accuracy,mean_cost,n_missing" : "");
    for (int64_t j = 0; j < p->n_points; j++) {
        fprintf(f, "%lld,%.17g,%.17g,%d,", (long long)j, j ? p->lambda[j - 1] : 0.0, p->lambda[j], front[j]);
        csv_point(f, p, j);
        fputc('\n', f);
    }
    rtr_status st = route_file_commit(f, tmp, path_csv);
    free(tmp);
    return st;
}

static rtr_status write_grid_csv(const char *grid_csv, const rtr_path *p, long grid) {
    char *tmp;
    FILE *f = route_file_open(grid_csv, &tmp);
    if (!f) { free(tmp); return RTR_ERR_IO; }
    fprintf(f, "lambda,point,pred_accuracy,pred_mean_cost%s\n", p->real_acc ? ",accuracy,mean_cost,n_missing" : "");
    for (long g = 0; g < grid; g++) {
        double lambda = grid > 1 ? (double)g / (double)(grid - 1) : 1.0;
        int64_t j = rtr_path_at(p, lambda);
        fprintf(f, "%.10g,%lld,", lambda, (long long)j);
        csv_point(f, p, j);
        fputc('\n', f);
    }
    rtr_status st = route_file_commit(f, tmp, grid_csv);
    free(tmp);
    return st;
}

/* ------------------------------------------------------------- summary */

static void add_num(cJSON *o, const char *key, double v) {
    if (isnan(v)) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, v);
}

static cJSON *op_json(const rtr_op_point *o) {
    cJSON *j = cJSON_CreateObject();
    add_num(j, "accuracy", o->acc);
    add_num(j, "mean_cost", o->cost);
    cJSON_AddNumberToObject(j, "n_missing", (double)o->n_missing);
    return j;
}

static cJSON *summary_json(const char *dir, const cli_route *cli, const route_data *d, const rtr_path *p,
                           const int64_t *front, int64_t n_front, const sweep_refs *r, const char *device) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "corpus", dir);
    cJSON_AddStringToObject(o, "device", device);
    cJSON_AddStringToObject(o, "split", cli->split && *cli->split ? cli->split : "(all)");
    cJSON_AddNumberToObject(o, "n_queries", (double)d->n);
    cJSON_AddNumberToObject(o, "n_pairs", d->k);
    cJSON_AddStringToObject(o, "cost_model", cli->cost ? cli->cost : "tokens");
    cJSON_AddNumberToObject(o, "cost_scale", d->cost_scale);
    cJSON_AddStringToObject(o, "checkpoint_hash", d->checkpoint_hash ? d->checkpoint_hash : "");
    cJSON_AddNumberToObject(o, "n_points", (double)p->n_points);
    cJSON_AddNumberToObject(o, "n_switches", (double)p->n_switches);
    cJSON_AddStringToObject(o, "pareto_on", p->real_acc ? "realised" : "predicted");
    const double *cost, *acc;
    path_xy(p, &cost, &acc);
    cJSON *pf = cJSON_AddArrayToObject(o, "pareto_front");
    for (int64_t t = 0; t < n_front; t++) {
        int64_t j = front[t];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "lambda_lo", j ? p->lambda[j - 1] : 0.0);
        cJSON_AddNumberToObject(e, "lambda_hi", p->lambda[j]);
        add_num(e, "accuracy", acc[j]);
        add_num(e, "mean_cost", cost[j]);
        add_num(e, "pred_accuracy", p->pred_acc[j]);
        add_num(e, "pred_mean_cost", p->pred_cost[j]);
        cJSON_AddItemToArray(pf, e);
    }
    if (!r) return o;
    cJSON *refs = cJSON_AddObjectToObject(o, "reference");
    cJSON *singles = cJSON_AddArrayToObject(refs, "single_pairs");
    for (int32_t j = 0; j < d->k; j++) {
        cJSON *e = op_json(&r->r.single[j]);
        char *name = rtr_catalog_pair_name(&d->cat, j);
        cJSON_AddStringToObject(e, "pair", name ? name : "?");
        free(name);
        cJSON_AddItemToArray(singles, e);
    }
    cJSON_AddItemToObject(refs, "random", op_json(&r->r.random));
    cJSON_AddItemToObject(refs, "oracle", op_json(&r->r.oracle));
    char *best = r->r.best >= 0 ? rtr_catalog_pair_name(&d->cat, r->r.best) : NULL;
    char *cheap = r->r.cheapest >= 0 ? rtr_catalog_pair_name(&d->cat, r->r.cheapest) : NULL;
    cJSON_AddStringToObject(refs, "best_single", best ? best : "");
    cJSON_AddStringToObject(refs, "cheapest_single", cheap ? cheap : "");
    free(best);
    free(cheap);
    cJSON *m = cJSON_AddObjectToObject(o, "metrics");
    add_num(m, "x_max", r->x_max);
    add_num(m, "aiq", r->m.aiq);
    add_num(m, "aiq_single_pairs", r->aiq_single);
    add_num(m, "apgr_normalised_cost", r->m.apgr);
    add_num(m, "cpt50_normalised_cost", r->m.cpt50);
    add_num(m, "cpt80_normalised_cost", r->m.cpt80);
    add_num(m, "cost_to_match_best_single", r->m.to_match);
    add_num(m, "oracle_gap", r->m.oracle_gap);
    return o;
}

/* ----------------------------------------------------------------- plot */

/* The path (predicted dashed, realised solid) with the reference routers. */
static char *plot_svg(const route_data *d, const rtr_path *p, const sweep_refs *r, const char *unit) {
    const double *cost, *acc;
    path_xy(p, &cost, &acc);
    int32_t k = d->k;
    double *sx = rtr_malloc(((size_t)k + 2) * sizeof *sx), *sy = rtr_malloc(((size_t)k + 2) * sizeof *sy);
    char **names = rtr_calloc((size_t)k, sizeof *names);
    rtr_buf b = {0};
    if (!sx || !sy || !names) b.failed = true;
    rtr_series s[5] = {{"RTR predicted", p->pred_cost, p->pred_acc, p->n_points, RTR_SERIES_DASHED, NULL}};
    int ns = 1;
    if (p->real_acc) s[ns++] = (rtr_series){"RTR realised", cost, acc, p->n_points, RTR_SERIES_LINE, NULL};
    if (r && !b.failed) {
        for (int32_t j = 0; j < k; j++) {
            sx[j] = r->r.single[j].cost;
            sy[j] = r->r.single[j].acc;
            names[j] = rtr_catalog_pair_name(&d->cat, j);
        }
        sx[k] = r->r.random.cost, sy[k] = r->r.random.acc;
        sx[k + 1] = r->r.oracle.cost, sy[k + 1] = r->r.oracle.acc;
        s[ns++] = (rtr_series){"single pairs", sx, sy, k, RTR_SERIES_POINTS, (const char *const *)names};
        s[ns++] = (rtr_series){"Random (expectation)", sx + k, sy + k, 1, RTR_SERIES_POINTS, NULL};
        s[ns++] = (rtr_series){"Oracle", sx + k + 1, sy + k + 1, 1, RTR_SERIES_POINTS, NULL};
    }
    char title[160], xl[96];
    snprintf(title, sizeof title, "Accuracy vs mean cost over lambda (%lld queries, %lld path points)", (long long)d->n,
             (long long)p->n_points);
    snprintf(xl, sizeof xl, "mean cost per query (%s)", unit);
    rtr_chart c = {title, xl, "accuracy", 0, NAN, NAN, NAN, 860, 500};
    if (!b.failed) rtr_svg_chart(&b, &c, s, ns);
    for (int32_t j = 0; names && j < k; j++) free(names[j]);
    free(names);
    free(sx);
    free(sy);
    if (b.failed) { rtr_buf_free(&b); return NULL; }
    return b.buf;
}

/* ---------------------------------------------------------------- main */

static char *out_path(const char *dir, const char *name) { return rtr_sprintf("%s/%s", dir, name); }

int cmd_sweep(int argc, char **argv) {
    const char *out = NULL, *device = "auto";
    long grid = 0;
    cli_route cli = {.split = "test", .cost = "tokens"};
    const rtr_opt opts[] = {
        {"out", RTR_OPT_REQUIRED, &out, "output directory (path.csv, grid.csv, summary.json, plot.svg)"},
        {"grid", RTR_OPT_INT, &grid, "also tabulate N evenly spaced lambdas in [0,1] (0: none)"},
        RTR_OPT_DEVICE(&device),
        CLI_ROUTE_OPTS(cli),
        {0},
    };
    const rtr_cmd_spec spec = {"sweep", "CORPUS_DIR --out DIR",
                               "The exact accuracy-vs-cost path over lambda in [0,1]: one point per switch of\n"
                               "any query's choice, predicted and (with outcomes) realised, its Pareto front,\n"
                               "reference routers and AIQ/APGR/CPT metrics (docs/ROUTING.md).",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    bool json = a.json;
    if (grid < 0 || grid > 100000000) { fprintf(stderr, "rtr sweep: error: --grid %ld out of range\n", grid); return 1; }

    route_load_params prm = {0};
    route_data d = {0};
    rtr_backend be = {0};
    rtr_path p = {0};
    sweep_refs refs = {0};
    bool *front_flag = NULL;
    int64_t *front = NULL, n_front = 0;
    cJSON *sum = NULL;
    char *svg = NULL, *text = NULL;
    char *files[4] = {out_path(out, "path.csv"), out_path(out, "grid.csv"), out_path(out, "summary.json"), out_path(out, "plot.svg")};
    double t0 = rtr_now();
    rtr_status st = cli_route_options(&cli, &prm.o);
    if (!st) st = rtr_backend_init(&be, device);
    if (!st) st = route_data_load(&d, dir, &prm);
    if (!st) { rtr_route_table t = route_data_table(&d); st = rtr_path_compute_on(&p, &t, &be, 0); }
    if (!st && d.has_truth) st = refs_compute(&refs, &d, &p);
    if (!st) {
        front = rtr_malloc((size_t)p.n_points * sizeof *front);
        front_flag = rtr_calloc((size_t)p.n_points, sizeof *front_flag);
        const double *cost, *acc;
        path_xy(&p, &cost, &acc);
        if (!front || !front_flag || (n_front = rtr_pareto_front(cost, acc, p.n_points, front)) < 0) st = RTR_ERR_NOMEM;
        for (int64_t t = 0; !st && t < n_front; t++) front_flag[front[t]] = true;
    }
    if (!st && mkdir(out, 0755) && errno != EEXIST) st = rtr_fail(RTR_ERR_IO, "%s: cannot create directory: %s", out, strerror(errno));
    if (!st) st = write_path_csv(files[0], &p, front_flag);
    if (!st && grid > 0) st = write_grid_csv(files[1], &p, grid);
    if (!st) {
        const char *unit = prm.o.cost_model == RTR_COST_USD ? "USD" : prm.o.cost_model == RTR_COST_USER ? "user cost" : "output tokens";
        sum = summary_json(dir, &cli, &d, &p, front, n_front, d.has_truth ? &refs : NULL, be.device);
        cJSON_AddNumberToObject(sum, "seconds", rtr_now() - t0);
        text = cJSON_Print(sum);
        svg = plot_svg(&d, &p, d.has_truth ? &refs : NULL, unit);
        if (!text || !svg) st = rtr_fail(RTR_ERR_NOMEM, "sweep: out of memory");
    }
    if (!st) st = rtr_write_file_atomic(files[2], text, strlen(text));
    if (!st) st = rtr_write_file_atomic(files[3], svg, strlen(svg));
    if (st) {
        fprintf(stderr, "rtr sweep: error: %s\n", rtr_last_error());
    } else if (json) {
        char *line = cJSON_PrintUnformatted(sum);
        if (line) puts(line);
        free(line);
    } else {
        printf("exact path on %s: %lld queries x %d pairs, %lld switches, %lld points, %lld on the Pareto front\n",
               be.device, (long long)d.n, (int)d.k, (long long)p.n_switches, (long long)p.n_points, (long long)n_front);
        printf("lambda 0: accuracy %.4f cost %.6g   lambda 1: accuracy %.4f cost %.6g (%s)\n",
               (p.real_acc ? p.real_acc : p.pred_acc)[0], (p.real_cost ? p.real_cost : p.pred_cost)[0],
               (p.real_acc ? p.real_acc : p.pred_acc)[p.n_points - 1], (p.real_cost ? p.real_cost : p.pred_cost)[p.n_points - 1],
               p.real_acc ? "realised" : "predicted");
        if (d.has_truth && refs.r.best >= 0) {
            const eval_refs *rr = &refs.r;
            char *best = rtr_catalog_pair_name(&d.cat, rr->best);
            printf("best single %s: accuracy %.4f cost %.6g; oracle: accuracy %.4f cost %.6g\n", best ? best : "?",
                   rr->single[rr->best].acc, rr->single[rr->best].cost, rr->oracle.acc, rr->oracle.cost);
            printf("AIQ %.4f (single pairs %.4f, x_max %.6g)  APGR %.4f  CPT50 %.4f  CPT80 %.4f  cost-to-match %.4f  oracle gap %.4f\n",
                   refs.m.aiq, refs.aiq_single, refs.x_max, refs.m.apgr, refs.m.cpt50, refs.m.cpt80, refs.m.to_match, refs.m.oracle_gap);
            free(best);
        }
        printf("wrote %s/{path.csv,%ssummary.json,plot.svg}\n", out, grid > 0 ? "grid.csv," : "");
    }
    for (int t = 0; t < 4; t++) free(files[t]);
    cJSON_Delete(sum);
    free(text);
    free(svg);
    free(front);
    free(front_flag);
    eval_refs_free(&refs.r);
    rtr_path_free(&p);
    route_data_free(&d);
    rtr_backend_free(&be);
    return st ? 1 : 0;
}
