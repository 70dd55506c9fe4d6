/* The sweep stage (rtr_sweep_corpus, include/rtr/stages.h): the exact
 * accuracy-versus-cost path over λ ∈ [0,1] of a selection, predicted and,
 * where the corpus has outcomes, realised; its Pareto front; an optional λ
 * grid; and with outcomes the reference routers (single pairs, Random,
 * Oracle, best single) with AIQ, APGR, CPT, cost-to-match and oracle gap.
 * The table is streamed twice (the λ scale, then the path builder and the
 * reference routers, chunk by chunk): memory is the path, not the table.
 * Writes OUT/path.csv, OUT/grid.csv (with a grid), OUT/summary.json and
 * OUT/plot.svg, built together in OUT.tmp.PID and swapped into place. */
#define _GNU_SOURCE /* renameat2: swap the finished folder with the old one in one step */
#include "rtr/stages.h"
#include "rtr/dist.h"
#include "common/files.h"
#include "common/json.h"
#include "common/util.h"
#include "eval/evaluate.h"
#include "eval/svg.h"
#include "route/route_data.h"
#include "rtr/metrics.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

rtr_sweep_params rtr_sweep_default_params(void) {
    rtr_sweep_params p = {0};
    p.o.split = "test";
    p.o.cost_model = RTR_COST_TOKENS;
    return p;
}

void rtr_sweep_summary_free(rtr_sweep_summary *s) {
    free(s->best_single);
    free(s->json);
    memset(s, 0, sizeof *s);
}

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

/* The metrics of the path against the reference routers r->r. */
static rtr_status refs_metrics(sweep_refs *s, const rtr_path *path, int32_t k) {
    double *sc = rtr_malloc((size_t)k * sizeof *sc), *sa = rtr_malloc((size_t)k * sizeof *sa);
    rtr_status st = sc && sa ? RTR_OK : RTR_ERR_NOMEM;
    const double *cost, *acc;
    path_xy(path, &cost, &acc);
    s->x_max = eval_refs_x_max(&s->r);
    for (int64_t t = 0; t < path->n_points; t++)
        if (!isnan(cost[t])) s->x_max = fmax(s->x_max, cost[t]);
    for (int32_t j = 0; !st && j < k; j++) {
        sc[j] = s->r.single[j].cost;
        sa[j] = s->r.single[j].acc;
    }
    if (!st) st = eval_curve_compute(&s->m, &s->r, cost, acc, path->n_points, s->x_max);
    s->aiq_single = NAN;
    if (!st && s->r.best >= 0 && s->x_max > 0) st = rtr_metric_aiq(&s->aiq_single, sc, sa, k, s->x_max);
    free(sc);
    free(sa);
    return st;
}

/* ------------------------------------------------------------- tables */

/* Close a file written in the output folder, reporting a failed write. */
static rtr_status file_close(FILE *f, const char *path) {
    bool bad = ferror(f) != 0;
    bad |= fclose(f) != 0;
    return bad ? rtr_fail(RTR_ERR_IO, "%s: write failed (disk full?)", path) : RTR_OK;
}

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
    FILE *f = fopen(path_csv, "w");
    if (!f) return rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", path_csv, strerror(errno));
    fprintf(f, "point,lambda_lo,lambda_hi,pareto,pred_accuracy,pred_mean_cost%s\n",
            p->real_acc ? ",accuracy,mean_cost,n_missing" : "");
    for (int64_t j = 0; j < p->n_points; j++) {
        fprintf(f, "%lld,%.17g,%.17g,%d,", (long long)j, j ? p->lambda[j - 1] : 0.0, p->lambda[j], front[j]);
        csv_point(f, p, j);
        fputc('\n', f);
    }
    return file_close(f, path_csv);
}

static rtr_status write_grid_csv(const char *grid_csv, const rtr_path *p, int64_t grid) {
    FILE *f = fopen(grid_csv, "w");
    if (!f) return rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", grid_csv, strerror(errno));
    fprintf(f, "lambda,point,pred_accuracy,pred_mean_cost%s\n", p->real_acc ? ",accuracy,mean_cost,n_missing" : "");
    for (int64_t g = 0; g < grid; g++) {
        double lambda = grid > 1 ? (double)g / (double)(grid - 1) : 1.0;
        int64_t j = rtr_path_at(p, lambda);
        fprintf(f, "%.10g,%lld,", lambda, (long long)j);
        csv_point(f, p, j);
        fputc('\n', f);
    }
    return file_close(f, grid_csv);
}

/* ------------------------------------------------------------- summary */

static cJSON *op_json(const rtr_op_point *o) {
    cJSON *j = cJSON_CreateObject();
    rtr_json_add_number(j, "accuracy", o->acc);
    rtr_json_add_number(j, "mean_cost", o->cost);
    cJSON_AddNumberToObject(j, "n_missing", (double)o->n_missing);
    return j;
}

/* The summary without its Pareto front (summary_text adds it). */
static cJSON *summary_json(const char *dir, const rtr_sweep_params *prm, const route_source *rs, const rtr_path *p,
                           const sweep_refs *r, const char *device) {
    const rtr_catalog *cat = rtr_corpus_catalog(rs->corp);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "corpus", dir);
    cJSON_AddStringToObject(o, "device", device);
    cJSON_AddStringToObject(o, "split", prm->o.split && *prm->o.split ? prm->o.split : "(all)");
    cJSON_AddNumberToObject(o, "n_queries", (double)p->n_queries);
    cJSON_AddNumberToObject(o, "n_pairs", cat->n_pairs);
    cJSON_AddStringToObject(o, "cost_model", rtr_cost_model_name(prm->o.cost_model));
    cJSON_AddNumberToObject(o, "cost_scale", rs->cost_scale);
    cJSON_AddStringToObject(o, "checkpoint_hash", rs->checkpoint_hash ? rs->checkpoint_hash : "");
    cJSON_AddNumberToObject(o, "n_points", (double)p->n_points);
    cJSON_AddNumberToObject(o, "n_switches", (double)p->n_switches);
    cJSON_AddStringToObject(o, "pareto_on", p->real_acc ? "realised" : "predicted");
    if (!r) return o;
    cJSON *refs = cJSON_AddObjectToObject(o, "reference");
    cJSON *singles = cJSON_AddArrayToObject(refs, "single_pairs");
    for (int32_t j = 0; j < cat->n_pairs; j++) {
        cJSON *e = op_json(&r->r.single[j]);
        char *name = rtr_catalog_pair_name(cat, j);
        cJSON_AddStringToObject(e, "pair", name ? name : "?");
        free(name);
        cJSON_AddItemToArray(singles, e);
    }
    cJSON_AddItemToObject(refs, "random", op_json(&r->r.random));
    cJSON_AddItemToObject(refs, "oracle", op_json(&r->r.oracle));
    char *best = r->r.best >= 0 ? rtr_catalog_pair_name(cat, r->r.best) : NULL;
    char *cheap = r->r.cheapest >= 0 ? rtr_catalog_pair_name(cat, r->r.cheapest) : NULL;
    cJSON_AddStringToObject(refs, "best_single", best ? best : "");
    cJSON_AddStringToObject(refs, "cheapest_single", cheap ? cheap : "");
    free(best);
    free(cheap);
    cJSON *m = cJSON_AddObjectToObject(o, "metrics");
    rtr_json_add_number(m, "x_max", r->x_max);
    rtr_json_add_number(m, "aiq", r->m.aiq);
    rtr_json_add_number(m, "aiq_single_pairs", r->aiq_single);
    rtr_json_add_number(m, "apgr_normalised_cost", r->m.apgr);
    rtr_json_add_number(m, "cpt50_normalised_cost", r->m.cpt50);
    rtr_json_add_number(m, "cpt80_normalised_cost", r->m.cpt80);
    rtr_json_add_number(m, "cost_to_match_best_single", r->m.to_match);
    rtr_json_add_number(m, "oracle_gap", r->m.oracle_gap);
    return o;
}

static void json_num(rtr_buf *b, const char *key, double v, const char *sep) {
    if (isnan(v) || isinf(v)) rtr_buf_printf(b, "\"%s\":null%s", key, sep);
    else rtr_buf_printf(b, "\"%s\":%.17g%s", key, v, sep);
}

/* The summary's text: o, then its Pareto front, one entry per front point,
 * printed straight into the text. The front grows with the path (120,710
 * points of 713,323 at 200,000 queries): as a JSON tree it cost four times
 * its text. NULL when out of memory. */
static char *summary_text(const cJSON *o, const rtr_path *p, const int64_t *front, int64_t n_front) {
    char *head = cJSON_PrintUnformatted(o);
    if (!head) return NULL;
    rtr_buf b = {0};
    rtr_buf_append(&b, head, strlen(head) - 1); /* without its closing brace */
    free(head);
    rtr_buf_printf(&b, ",\"pareto_front\":[");
    const double *cost, *acc;
    path_xy(p, &cost, &acc);
    for (int64_t t = 0; t < n_front && !b.failed; t++) {
        int64_t j = front[t];
        rtr_buf_printf(&b, "%s{", t ? "," : "");
        json_num(&b, "lambda_lo", j ? p->lambda[j - 1] : 0.0, ",");
        json_num(&b, "lambda_hi", p->lambda[j], ",");
        json_num(&b, "accuracy", acc[j], ",");
        json_num(&b, "mean_cost", cost[j], ",");
        json_num(&b, "pred_accuracy", p->pred_acc[j], ",");
        json_num(&b, "pred_mean_cost", p->pred_cost[j], "}");
    }
    rtr_buf_printf(&b, "]}");
    if (b.failed) {
        rtr_buf_free(&b);
        return NULL;
    }
    return b.buf;
}

/* ----------------------------------------------------------------- plot */

/* The path (predicted dashed, realised solid) with the reference routers. */
static char *plot_svg(const rtr_catalog *cat, const rtr_path *p, const sweep_refs *r, const char *unit) {
    const double *cost, *acc;
    path_xy(p, &cost, &acc);
    int32_t k = cat->n_pairs;
    double *sx = rtr_malloc(((size_t)k + 2) * sizeof *sx), *sy = rtr_malloc(((size_t)k + 2) * sizeof *sy);
    char **names = rtr_calloc((size_t)k, sizeof *names);
    rtr_buf b = {0};
    if (!sx || !sy || !names) b.failed = true;
    rtr_series s[5] = {{.name = "RTR predicted", .x = p->pred_cost, .y = p->pred_acc, .n = p->n_points,
                        .style = RTR_SERIES_DASHED}};
    int ns = 1;
    if (p->real_acc)
        s[ns++] = (rtr_series){.name = "RTR realised", .x = cost, .y = acc, .n = p->n_points, .style = RTR_SERIES_LINE};
    if (r && !b.failed) {
        for (int32_t j = 0; j < k; j++) {
            sx[j] = r->r.single[j].cost;
            sy[j] = r->r.single[j].acc;
            names[j] = rtr_catalog_pair_name(cat, j);
        }
        sx[k] = r->r.random.cost, sy[k] = r->r.random.acc;
        sx[k + 1] = r->r.oracle.cost, sy[k + 1] = r->r.oracle.acc;
        s[ns++] = (rtr_series){.name = "single pairs", .x = sx, .y = sy, .n = k, .style = RTR_SERIES_POINTS,
                               .labels = (const char *const *)names};
        s[ns++] = (rtr_series){.name = "Random (expectation)", .x = sx + k, .y = sy + k, .n = 1, .style = RTR_SERIES_POINTS};
        s[ns++] = (rtr_series){.name = "Oracle", .x = sx + k + 1, .y = sy + k + 1, .n = 1, .style = RTR_SERIES_POINTS};
    }
    char title[160], xl[96];
    snprintf(title, sizeof title, "Accuracy vs mean cost over lambda (%lld queries, %lld path points)", (long long)p->n_queries,
             (long long)p->n_points);
    snprintf(xl, sizeof xl, "mean cost per query (%s)", unit);
    rtr_chart c = {.title = title, .xlabel = xl, .ylabel = "accuracy", .xmin = 0, .xmax = NAN, .ymin = NAN, .ymax = NAN,
                   .width = 860, .height = 500};
    if (!b.failed) rtr_svg_chart(&b, &c, s, ns);
    for (int32_t j = 0; names && j < k; j++) free(names[j]);
    free(names);
    free(sx);
    free(sy);
    if (b.failed) { rtr_buf_free(&b); return NULL; }
    return b.buf;
}


/* ------------------------------------------------------- the output folder */

static const char *const SWEEP_FILES[4] = {"path.csv", "grid.csv", "summary.json", "plot.svg"};

/* out_dir may be replaced: absent, or an earlier sweep's (only its files). */
static rtr_status check_out_dir(const char *out_dir) {
    if (!rtr_path_exists(out_dir)) return RTR_OK;
    if (!rtr_is_dir(out_dir)) return rtr_fail(RTR_ERR_EXISTS, "%s: exists and is not a directory", out_dir);
    DIR *d = opendir(out_dir);
    if (!d) return rtr_fail(RTR_ERR_IO, "%s: cannot read: %s", out_dir, strerror(errno));
    rtr_status s = RTR_OK;
    struct dirent *e;
    while (!s && (e = readdir(d))) {
        bool ours = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
        for (int i = 0; i < 4; i++) ours |= !strcmp(e->d_name, SWEEP_FILES[i]);
        if (!ours)
            s = rtr_fail(RTR_ERR_EXISTS, "%s: holds %s, not a sweep's output: choose another --out", out_dir, e->d_name);
    }
    closedir(d);
    return s;
}

/* Put the finished folder tmp in place of out_dir: one atomic swap where
 * the filesystem can (renameat2 RENAME_EXCHANGE), else old aside, new in. */
static rtr_status commit_dir(const char *tmp, const char *out_dir) {
    int fd = open(tmp, O_RDONLY);
    if (fd >= 0) { fsync(fd); close(fd); }
    if (!rtr_path_exists(out_dir)) {
        if (rename(tmp, out_dir) == 0) return RTR_OK;
        return rtr_fail(RTR_ERR_IO, "%s: cannot rename into place: %s", out_dir, strerror(errno));
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out_dir, RENAME_EXCHANGE) == 0) {
        rtr_remove_tree(tmp); /* now the old folder */
        return RTR_OK;
    }
    char *old = rtr_sprintf("%s.old", out_dir), *aside = old ? rtr_tmp_path(old) : NULL;
    rtr_status s = aside ? RTR_OK : RTR_ERR_NOMEM;
    if (!s) rtr_remove_stale_tmp(old);
    if (!s && rename(out_dir, aside) != 0) s = rtr_fail(RTR_ERR_IO, "%s: cannot move aside: %s", out_dir, strerror(errno));
    if (!s && rename(tmp, out_dir) != 0) {
        s = rtr_fail(RTR_ERR_IO, "%s: cannot rename into place: %s", out_dir, strerror(errno));
        rename(aside, out_dir);
    }
    if (!s) rtr_remove_tree(aside);
    free(old);
    free(aside);
    return s;
}

/* ---------------------------------------------------------------- the stage */

/* Stream the selection into the path (and with outcomes the reference
 * routers). Under MPI each rank reads only its own shards (rs->shards) into
 * its path builder and its reference routers' sums; the ranks' breakpoints
 * are then merged (rtr_path_builder_finish_ranks) and the sums added. */
static rtr_status build_path(rtr_backend *b, route_source *rs, rtr_path *path, sweep_refs *refs, bool *truth) {
    int32_t k = rtr_corpus_catalog(rs->corp)->n_pairs;
    rtr_path_builder *pb = NULL;
    eval_refs_acc acc;
    rtr_status st = eval_refs_acc_init(&acc, k);
    if (!st) st = rtr_path_builder_open(b, &pb, k, true, 0);
    if (!st) st = route_source_begin(rs, 0);
    route_chunk ch;
    int64_t any_truth = 0;
    rtr_progress prog; /* the queries read (their number is known only at the end) */
    rtr_progress_init(&prog, "sweep", 0);
    int64_t done = 0;
    while (!st && !(st = route_source_next(rs, &ch)) && ch.n) {
        rtr_progress_update(&prog, (double)(done += ch.n));
        rtr_route_table t = route_chunk_table(&ch, true);
        st = rtr_path_builder_add(pb, &t);
        if (!st) st = eval_refs_acc_add(&acc, ch.true_correct, ch.true_cost, ch.n);
        for (size_t i = 0; !any_truth && i < (size_t)ch.n * (size_t)k; i++) any_truth = !isnan(ch.true_correct[i]);
    }
    if (!st && rs->shards) st = eval_refs_acc_sum_ranks(&acc);
    if (!st && rs->shards) st = rtr_dist_sum_i64(&any_truth, 1);
    *truth = any_truth > 0;
    rtr_progress_end(&prog);
    if (st) {
        rtr_path_builder_free(pb);
        eval_refs_acc_free(&acc);
        return st;
    }
    st = rtr_path_builder_finish_ranks(pb, path);
    if (!st) st = eval_refs_acc_finish(&acc, &refs->r);
    else eval_refs_acc_free(&acc);
    /* without a single outcome there is nothing realised to report */
    if (!st && !*truth) {
        free(path->real_acc), free(path->real_cost), free(path->n_missing);
        path->real_acc = path->real_cost = NULL;
        path->n_missing = NULL;
    }
    return st;
}

rtr_status rtr_sweep_corpus(rtr_backend *b, const char *out_dir, rtr_sweep_summary *sum, const char *corpus_dir,
                            const rtr_sweep_params *prm) {
    memset(sum, 0, sizeof *sum);
    if (prm->grid < 0 || prm->grid > RTR_SWEEP_MAX_GRID)
        return rtr_fail(RTR_ERR_INVALID, "--grid %lld: must be in 0 .. %d", (long long)prm->grid, RTR_SWEEP_MAX_GRID);
    rtr_status st = check_out_dir(out_dir);
    if (st) return st;
    route_source rs;
    route_load_params lp = {.o = prm->o};
    st = route_source_open(&rs, corpus_dir, &lp, prm->chunk_rows);
    if (st) return st;
    const rtr_catalog *cat = rtr_corpus_catalog(rs.corp);
    int32_t k = cat->n_pairs;
    double t0 = rtr_now();
    rtr_path p = {0};
    sweep_refs refs = {0};
    bool truth = false;
    bool *front_flag = NULL;
    int64_t *front = NULL, n_front = 0;
    cJSON *js = NULL;
    char *svg = NULL, *text = NULL, *tmp = NULL, *files[4] = {NULL, NULL, NULL, NULL};
    /* under MPI: every rank checks the ids over the whole corpus (each reads
     * its own shards below, so alone it would see only those), then takes its shards */
    bool *mine = NULL;
    rtr_part part;
    st = rtr_dist_size() > 1 ? rtr_corpus_check_ids(rs.corp) : RTR_OK;
    if (!st && rtr_dist_size() > 1) st = rtr_part_shards(&mine, &part, rs.corp, NULL);
    rs.shards = mine;
    if (!st) st = route_source_scale(&rs);
    if (!st) st = build_path(b, &rs, &p, &refs, &truth);
    if (!st && truth) st = refs_metrics(&refs, &p, k);
    if (!st) {
        front = rtr_malloc((size_t)p.n_points * sizeof *front);
        front_flag = rtr_calloc((size_t)p.n_points, sizeof *front_flag);
        const double *cost, *acc;
        path_xy(&p, &cost, &acc);
        if (!front || !front_flag || (n_front = rtr_pareto_front(front, cost, acc, p.n_points)) < 0) st = RTR_ERR_NOMEM;
        for (int64_t t = 0; !st && t < n_front; t++) front_flag[front[t]] = true;
    }
    /* every file into one temporary folder, then the folder into place (by rank 0 alone) */
    bool writer = rtr_dist_rank() == 0;
    if (!st && writer) {
        rtr_remove_stale_tmp(out_dir);
        tmp = rtr_tmp_path(out_dir);
        for (int i = 0; tmp && i < 4; i++) files[i] = rtr_sprintf("%s/%s", tmp, SWEEP_FILES[i]);
        if (!tmp || !files[3]) st = RTR_ERR_NOMEM;
        else if (mkdir(tmp, 0755) != 0) st = rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    if (!st && writer) st = write_path_csv(files[0], &p, front_flag);
    if (!st && writer && prm->grid > 0) st = write_grid_csv(files[1], &p, prm->grid);
    if (!st) {
        const char *unit = prm->o.cost_model == RTR_COST_USD ? "USD" : prm->o.cost_model == RTR_COST_USER ? "user cost" : "output tokens";
        js = summary_json(corpus_dir, prm, &rs, &p, truth ? &refs : NULL, b->device);
        cJSON_AddNumberToObject(js, "seconds", rtr_now() - t0);
        svg = plot_svg(cat, &p, truth ? &refs : NULL, unit);
        text = summary_text(js, &p, front, n_front);
        if (!text || !svg) st = rtr_fail(RTR_ERR_NOMEM, "sweep: out of memory");
    }
    if (!st && writer) st = rtr_write_file_atomic(files[2], text, strlen(text));
    if (!st && writer) st = rtr_write_file_atomic(files[3], svg, strlen(svg));
    if (!st && writer) st = commit_dir(tmp, out_dir);
    if (!st) sum->json = text, text = NULL; /* one text for the file and the caller (--json) */
    if (st && tmp && rtr_path_exists(tmp)) rtr_remove_tree(tmp);
    if (!st) {
        const double *cost, *acc;
        path_xy(&p, &cost, &acc);
        sum->n_queries = p.n_queries;
        sum->n_points = p.n_points;
        sum->n_switches = p.n_switches;
        sum->n_front = n_front;
        sum->k = k;
        sum->cost_scale = rs.cost_scale;
        sum->realised = truth;
        sum->acc0 = acc[0], sum->cost0 = cost[0];
        sum->acc1 = acc[p.n_points - 1], sum->cost1 = cost[p.n_points - 1];
        sum->best_acc = sum->best_cost = sum->oracle_acc = sum->oracle_cost = NAN;
        sum->x_max = sum->aiq = sum->aiq_single = sum->apgr = sum->cpt50 = sum->cpt80 = NAN;
        sum->cost_to_match = sum->oracle_gap = NAN;
        if (truth && refs.r.best >= 0) {
            sum->best_single = rtr_catalog_pair_name(cat, refs.r.best);
            sum->best_acc = refs.r.single[refs.r.best].acc;
            sum->best_cost = refs.r.single[refs.r.best].cost;
            sum->oracle_acc = refs.r.oracle.acc;
            sum->oracle_cost = refs.r.oracle.cost;
            sum->x_max = refs.x_max, sum->aiq = refs.m.aiq, sum->aiq_single = refs.aiq_single;
            sum->apgr = refs.m.apgr, sum->cpt50 = refs.m.cpt50, sum->cpt80 = refs.m.cpt80;
            sum->cost_to_match = refs.m.to_match, sum->oracle_gap = refs.m.oracle_gap;
        }
    } else {
        rtr_sweep_summary_free(sum);
    }
    for (int i = 0; i < 4; i++) free(files[i]);
    free(tmp);
    cJSON_Delete(js);
    free(text);
    free(svg);
    free(front);
    free(front_flag);
    eval_refs_free(&refs.r);
    rtr_path_free(&p);
    route_source_close(&rs);
    free(mine);
    return st;
}
