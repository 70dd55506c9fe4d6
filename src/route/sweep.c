/* The sweep stage (rtr_sweep_corpus, include/rtr/stages.h): the exact
 * accuracy-versus-cost path over λ ∈ [0,1] of a selection, predicted and,
 * where the corpus has outcomes, realised; its Pareto front; an optional λ
 * grid; and with outcomes the reference routers (single pairs, Random,
 * Oracle, best single) with AIQ, APGR, CPT, cost-to-match and oracle gap.
 * The table is streamed twice (the λ scale, then the path builder and the
 * reference routers, chunk by chunk), and the path is never held: its
 * points go, in λ order as the builder's merge makes them, to path.csv,
 * grid.csv, the plot's thinned copy and a sorter on cost (runs.h, spilled
 * to temporary files past a bound), whose one pass gives the Pareto front
 * and every curve metric; path.csv's pareto flags are then set in place.
 * Memory does not grow with the queries (docs/FORMAT.md "Memory"). Writes
 * OUT/path.csv, OUT/grid.csv (with a grid), OUT/summary.json and
 * OUT/plot.svg, built together in OUT.tmp.PID and swapped into place. */
#define _GNU_SOURCE /* renameat2: swap the finished folder with the old one in one step */
#include "rtr/stages.h"
#include "rtr/dist.h"
#include "common/json.h"
#include "common/util.h"
#include "eval/curve_scan.h"
#include "eval/evaluate.h"
#include "eval/svg.h"
#include "route/route_data.h"
#include "rtr/metrics.h"
#include "store/runs.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
    memset(s, 0, sizeof *s);
}

/* Reference routers and metrics on the realised outcomes. */
typedef struct {
    eval_refs r;
    eval_curve m;
    double x_max, aiq_single;
} sweep_refs;

/* A point of the path in cost order (the Pareto front and the curve
 * metrics: curve_point_cmp on its first member): 64 bytes, runs.h's largest
 * record. */
typedef struct {
    curve_point pt;
    int64_t off; /* the byte of its pareto flag in path.csv */
    double lambda_lo, lambda_hi, pred_acc, pred_cost;
} cost_rec;

/* ------------------------------------------------------------- tables */

/* Close a file written in the output folder, reporting a failed write. */
static rtr_status file_close(FILE *f, const char *path) {
    bool bad = ferror(f) != 0;
    bad |= fclose(f) != 0;
    return bad ? rtr_fail(RTR_ERR_IO, "%s: write failed (disk full?)", path) : RTR_OK;
}

/* Bytes written (path.csv's flags are set later at their offsets). */
static int csv_num(FILE *f, double v, const char *sep) {
    if (isnan(v)) return fputs(sep, f) < 0 ? 0 : (int)strlen(sep); /* empty field: no value */
    return fprintf(f, "%.10g%s", v, sep);
}

/* One path/grid row: predicted, then realised values when present. */
static int csv_point(FILE *f, const rtr_path_point *p, bool truth) {
    int n = csv_num(f, p->pred_acc, ",");
    n += csv_num(f, p->pred_cost, truth ? "," : "");
    if (truth) {
        n += csv_num(f, p->real_acc, ",");
        n += csv_num(f, p->real_cost, ",");
        n += fprintf(f, "%lld", (long long)p->n_missing);
    }
    return n;
}

static rtr_status csv_open(FILE **f, const char *path, const char *head, bool truth) {
    if (!(*f = fopen(path, "w"))) return rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(*f, "%spred_accuracy,pred_mean_cost%s\n", head, truth ? ",accuracy,mean_cost,n_missing" : "");
    return RTR_OK;
}

/* ------------------------------------------------------------- summary */

static cJSON *op_json(const rtr_op_point *o) {
    cJSON *j = cJSON_CreateObject();
    rtr_json_add_number(j, "accuracy", o->acc);
    rtr_json_add_number(j, "mean_cost", o->cost);
    cJSON_AddNumberToObject(j, "n_missing", (double)o->n_missing);
    return j;
}

/* The summary without its Pareto front (summary_write adds it). */
static cJSON *summary_json(const char *dir, const rtr_sweep_params *prm, const route_source *rs,
                           const rtr_sweep_summary *sum, const sweep_refs *r, const char *device) {
    const rtr_catalog *cat = rtr_corpus_catalog(rs->corp);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "corpus", dir);
    cJSON_AddStringToObject(o, "device", device);
    cJSON_AddStringToObject(o, "split", prm->o.split && *prm->o.split ? prm->o.split : "(all)");
    cJSON_AddNumberToObject(o, "n_queries", (double)sum->n_queries);
    cJSON_AddNumberToObject(o, "n_pairs", cat->n_pairs);
    cJSON_AddStringToObject(o, "cost_model", rtr_cost_model_name(prm->o.cost_model));
    cJSON_AddNumberToObject(o, "cost_scale", rs->cost_scale);
    cJSON_AddStringToObject(o, "checkpoint_hash", rs->checkpoint_hash ? rs->checkpoint_hash : "");
    cJSON_AddNumberToObject(o, "n_points", (double)sum->n_points);
    cJSON_AddNumberToObject(o, "n_switches", (double)sum->n_switches);
    cJSON_AddStringToObject(o, "pareto_on", sum->realised ? "realised" : "predicted");
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

static void json_num(FILE *f, const char *key, double v, const char *sep) {
    if (isnan(v) || isinf(v)) fprintf(f, "\"%s\":null%s", key, sep);
    else fprintf(f, "\"%s\":%.17g%s", key, v, sep);
}

/* The Pareto front in cost order: a point is on it when it is more
 * accurate than every cheaper-or-equal point before it. */
static bool front_next(double *front_acc, int64_t *n_front, double acc) {
    if (*n_front && !(acc > *front_acc)) return false;
    *front_acc = acc;
    (*n_front)++;
    return true;
}

/* summary.json: o, then its Pareto front, one entry per front point, from
 * a pass over the points in cost order (the front grows with the path:
 * 570,935 points of 1,969,981 at 1,000,000 queries, never held). */
static rtr_status summary_write(const char *path, const cJSON *o, run_merge *by_cost) {
    char *head = cJSON_PrintUnformatted(o);
    if (!head) return rtr_fail(RTR_ERR_NOMEM, "sweep: out of memory");
    FILE *f = fopen(path, "w");
    rtr_status st = f ? RTR_OK : rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    if (!st) {
        fwrite(head, 1, strlen(head) - 1, f); /* without its closing brace */
        fputs(",\"pareto_front\":[", f);
    }
    free(head);
    if (!st) st = run_merge_start(by_cost);
    const char *rec;
    double front_acc = 0;
    int64_t n_front = 0;
    while (!st && !(st = run_merge_next(by_cost, &rec)) && rec) {
        cost_rec e;
        memcpy(&e, rec, sizeof e);
        if (!front_next(&front_acc, &n_front, e.pt.acc)) continue;
        fprintf(f, "%s{", n_front > 1 ? "," : "");
        json_num(f, "lambda_lo", e.lambda_lo, ",");
        json_num(f, "lambda_hi", e.lambda_hi, ",");
        json_num(f, "accuracy", e.pt.acc, ",");
        json_num(f, "mean_cost", e.pt.cost, ",");
        json_num(f, "pred_accuracy", e.pred_acc, ",");
        json_num(f, "pred_mean_cost", e.pred_cost, "}");
    }
    if (f) fputs("]}", f);
    if (f && !st) st = file_close(f, path);
    else if (f) fclose(f);
    return st;
}

/* ----------------------------------------------------------------- plot */

/* What the plot draws of the path: every point up to PLOT_POINTS (then
 * the chart is the one of the whole path), else one in step and the last,
 * at most PLOT_POINTS, so that the chart, which thins a longer line to as
 * many, draws every one of them. */
#define PLOT_POINTS 2000
typedef struct {
    double *x, *y, *rx, *ry; /* predicted, realised */
    int64_t n, step;
} plot_path;

/* The path (predicted dashed, realised solid) with the reference routers. */
static char *plot_svg(const rtr_catalog *cat, const plot_path *p, const rtr_sweep_summary *sum, const sweep_refs *r,
                      const char *unit) {
    int32_t k = cat->n_pairs;
    double *sx = rtr_malloc(((size_t)k + 2) * sizeof *sx), *sy = rtr_malloc(((size_t)k + 2) * sizeof *sy);
    char **names = rtr_calloc((size_t)k, sizeof *names);
    rtr_buf b = {0};
    if (!sx || !sy || !names) b.failed = true;
    rtr_series s[5] = {{.name = "RTR predicted", .x = p->x, .y = p->y, .n = p->n, .style = RTR_SERIES_DASHED}};
    int ns = 1;
    if (sum->realised)
        s[ns++] = (rtr_series){.name = "RTR realised", .x = p->rx, .y = p->ry, .n = p->n, .style = RTR_SERIES_LINE};
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
    snprintf(title, sizeof title, "Accuracy vs mean cost over lambda (%lld queries, %lld path points)",
             (long long)sum->n_queries, (long long)sum->n_points);
    snprintf(xl, sizeof xl, "mean cost per query (%s)", unit);
    /* a log cost axis when costs span more than a decade, as the report's: a linear one squeezed the
     * cheap pairs and RTR's rise into the left edge */
    rtr_chart c = {.title = title, .xlabel = xl, .ylabel = "accuracy", .xmin = 0, .xmax = NAN, .ymin = NAN, .ymax = NAN,
                   .width = 860, .height = 500, .xscale = RTR_AXIS_AUTO};
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

/* Stream the selection into the path builder (and with outcomes the
 * reference routers). Under MPI each rank reads only its own range of rows
 * (rs->rows) into its builder and its reference routers' sums, which are
 * then added; the ranks' breakpoints are merged when the path is walked. */
static rtr_status build_path(rtr_backend *b, route_source *rs, int64_t spill, rtr_path_builder **out, sweep_refs *refs,
                             bool *truth) {
    int32_t k = rtr_corpus_catalog(rs->corp)->n_pairs;
    rtr_path_builder *pb = NULL;
    eval_refs_acc acc;
    rtr_status st = eval_refs_acc_init(&acc, k);
    if (!st) st = rtr_path_builder_open(b, &pb, k, true, 0);
    if (!st && spill) rtr_path_builder_spill(pb, spill);
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
    if (!st && rs->rows) st = eval_refs_acc_sum_ranks(&acc);
    if (!st && rs->rows) st = rtr_dist_sum_i64(&any_truth, 1);
    *truth = any_truth > 0; /* without a single outcome there is nothing realised to report */
    rtr_progress_end(&prog);
    if (!st) st = eval_refs_acc_finish(&acc, &refs->r);
    else eval_refs_acc_free(&acc);
    if (st) rtr_path_builder_free(pb);
    else *out = pb;
    return st;
}

/* The pass over the path in λ order: path.csv and grid.csv (files NULL on
 * ranks that do not write), the plot's points, the largest cost, the
 * points at λ = 0 and 1, and every point with a cost and an accuracy into
 * the sorter on cost. */
typedef struct {
    bool truth;
    FILE *path_f, *grid_f;
    int64_t off;     /* bytes of path.csv so far */
    int64_t grid, g; /* grid rows, the next one */
    run_sorter by_cost;
    double x_max;
    rtr_path_point first, last;
    plot_path plot;
} sweep_pass;

/* Realised values when the corpus has outcomes, else predicted. */
static void point_xy(const sweep_pass *w, const rtr_path_point *p, double *cost, double *acc) {
    *cost = w->truth ? p->real_cost : p->pred_cost;
    *acc = w->truth ? p->real_acc : p->pred_acc;
}

static rtr_status sweep_point(void *ctx, const rtr_path_point *p) {
    sweep_pass *w = ctx;
    rtr_path_point pt = *p;
    if (!w->truth) pt.real_acc = pt.real_cost = NAN, pt.n_missing = 0;
    plot_path *pl = &w->plot;
    if (!pt.j) {
        w->first = pt;
        int64_t n = pt.n_points > PLOT_POINTS ? PLOT_POINTS : pt.n_points;
        /* points 0, step, ... up to the last (at most PLOT_POINTS - 1 of them), and the last */
        pl->step = pt.n_points > PLOT_POINTS ? (pt.n_points - 1 + PLOT_POINTS - 3) / (PLOT_POINTS - 2) : 1;
        pl->x = rtr_malloc((size_t)n * sizeof(double)), pl->y = rtr_malloc((size_t)n * sizeof(double));
        pl->rx = rtr_malloc((size_t)n * sizeof(double)), pl->ry = rtr_malloc((size_t)n * sizeof(double));
        if (!pl->x || !pl->y || !pl->rx || !pl->ry) return RTR_ERR_NOMEM;
    }
    w->last = pt;
    double cost, acc;
    point_xy(w, &pt, &cost, &acc);
    if (!isnan(cost)) w->x_max = fmax(w->x_max, cost);
    if (pt.j % pl->step == 0 || pt.j == pt.n_points - 1) {
        pl->x[pl->n] = pt.pred_cost, pl->y[pl->n] = pt.pred_acc;
        pl->rx[pl->n] = pt.real_cost, pl->ry[pl->n++] = pt.real_acc;
    }
    cost_rec e = {{cost, acc, pt.j}, 0, pt.lambda_lo, pt.lambda_hi, pt.pred_acc, pt.pred_cost};
    if (w->path_f) {
        int n = fprintf(w->path_f, "%lld,%.17g,%.17g,", (long long)pt.j, pt.lambda_lo, pt.lambda_hi);
        e.off = w->off + n;
        n += fprintf(w->path_f, "0,"); /* 1 on the front: set once it is known */
        n += csv_point(w->path_f, &pt, w->truth);
        n += fputc('\n', w->path_f) == EOF ? 0 : 1;
        w->off += n;
    }
    /* the grid's λ that this point holds: those up to its right end */
    for (; w->g < w->grid; w->g++) {
        double lambda = w->grid > 1 ? (double)w->g / (double)(w->grid - 1) : 1.0;
        if (lambda > pt.lambda_hi) break;
        if (!w->grid_f) continue;
        fprintf(w->grid_f, "%.10g,%lld,", lambda, (long long)pt.j);
        csv_point(w->grid_f, &pt, w->truth);
        fputc('\n', w->grid_f);
    }
    return isnan(cost) || isnan(acc) ? RTR_OK : run_sorter_add(&w->by_cost, &e);
}

/* The pass over the points in cost order: the front (its flags set in
 * path.csv, fd -1: none) and, with outcomes, the curve metrics. */
static rtr_status cost_pass(run_merge *m, int fd, const char *path_csv, sweep_refs *refs, bool truth,
                            int64_t *n_front) {
    eval_curve_stream cs;
    eval_curve_stream_init(&cs, &refs->r);
    rtr_status st = run_merge_start(m);
    const char *rec;
    double front_acc = 0;
    *n_front = 0;
    while (!st && !(st = run_merge_next(m, &rec)) && rec) {
        cost_rec e;
        memcpy(&e, rec, sizeof e);
        eval_curve_stream_add(&cs, e.pt.cost, e.pt.acc);
        if (front_next(&front_acc, n_front, e.pt.acc) && fd >= 0 && pwrite(fd, "1", 1, (off_t)e.off) != 1)
            st = rtr_fail(RTR_ERR_IO, "%s: write failed (disk full?): %s", path_csv, strerror(errno));
    }
    if (!st && truth) st = eval_curve_stream_finish(&cs, &refs->m, NULL, refs->x_max);
    eval_curve_stream_free(&cs);
    return st;
}

/* The metrics of the single pairs (their AIQ) and x_max, the reference
 * routers' costs and the path's. */
static rtr_status refs_metrics(sweep_refs *s, double path_x_max, int32_t k) {
    double *sc = rtr_malloc((size_t)k * sizeof *sc), *sa = rtr_malloc((size_t)k * sizeof *sa);
    rtr_status st = sc && sa ? RTR_OK : RTR_ERR_NOMEM;
    s->x_max = fmax(eval_refs_x_max(&s->r), path_x_max);
    for (int32_t j = 0; !st && j < k; j++) {
        sc[j] = s->r.single[j].cost;
        sa[j] = s->r.single[j].acc;
    }
    s->aiq_single = NAN;
    if (!st && s->r.best >= 0 && s->x_max > 0) st = rtr_metric_aiq(&s->aiq_single, sc, sa, k, s->x_max);
    free(sc);
    free(sa);
    return st;
}

/* Records the sorters hold before they spill: RTR_SWEEP_SPILL (a test's
 * knob: a few records make every run go through disk), else the defaults. */
static rtr_status spill_records(int64_t *n) {
    const char *v = getenv("RTR_SWEEP_SPILL");
    *n = 0;
    if (!v || !*v) return RTR_OK;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end || x < 1) return rtr_fail(RTR_ERR_INVALID, "RTR_SWEEP_SPILL=%s: must be a positive number of records", v);
    *n = x;
    return RTR_OK;
}

#define SWEEP_COST_RECORDS ((size_t)1 << 16) /* 4 MiB of cost_rec before a run goes to disk */

rtr_status rtr_sweep_corpus(rtr_backend *b, const char *out_dir, rtr_sweep_summary *sum, const char *corpus_dir,
                            const rtr_sweep_params *prm) {
    memset(sum, 0, sizeof *sum);
    if (prm->grid < 0 || prm->grid > RTR_SWEEP_MAX_GRID)
        return rtr_fail(RTR_ERR_INVALID, "--grid %lld: must be in 0 .. %d", (long long)prm->grid, RTR_SWEEP_MAX_GRID);
    int64_t spill;
    rtr_status st = spill_records(&spill);
    if (!st) st = check_out_dir(out_dir);
    if (st) return st;
    route_source rs;
    route_load_params lp = {.o = prm->o};
    st = route_source_open(&rs, corpus_dir, &lp, prm->chunk_rows);
    if (st) return st;
    const rtr_catalog *cat = rtr_corpus_catalog(rs.corp);
    int32_t k = cat->n_pairs;
    double t0 = rtr_now();
    sweep_refs refs = {0};
    sweep_pass w = {.grid = prm->grid};
    run_sorter_init(&w.by_cost, sizeof(cost_rec), spill ? (size_t)spill : SWEEP_COST_RECORDS, curve_point_cmp,
                    "sweep's Pareto front");
    rtr_path_builder *pb = NULL;
    run_merge *by_cost = NULL;
    cJSON *js = NULL;
    char *svg = NULL, *tmp = NULL, *files[4] = {NULL, NULL, NULL, NULL};
    /* under MPI: every rank sums the cost scale over its whole shards (one
     * process's bits), then takes its range of rows, whose pass checks the
     * ids together with the other ranks' (the row reader: a range's pass
     * under MPI) */
    bool *mine = NULL, ranks = rtr_dist_size() > 1;
    rtr_part part;
    rtr_row_range range;
    if (!st && ranks) st = rtr_part_shards(&mine, &part, rs.corp, NULL);
    if (!st && ranks) st = rtr_part_range(&range, &part, rs.corp, NULL, rs.chunk_rows);
    rs.shards = mine;
    if (!st) st = route_source_scale(&rs);
    rs.shards = NULL;
    if (ranks) rs.rows = &range;
    if (!st) st = build_path(b, &rs, spill, &pb, &refs, &w.truth);
    /* every file into one temporary folder, then the folder into place (by rank 0 alone) */
    bool writer = rtr_dist_rank() == 0;
    if (!st && writer) {
        tmp = rtr_tmp_path(out_dir);
        for (int i = 0; tmp && i < 4; i++) files[i] = rtr_sprintf("%s/%s", tmp, SWEEP_FILES[i]);
        if (!tmp || !files[3]) st = RTR_ERR_NOMEM;
        else if (mkdir(tmp, 0755) != 0) st = rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        if (!st) st = csv_open(&w.path_f, files[0], "point,lambda_lo,lambda_hi,pareto,", w.truth);
        if (!st) w.off = ftello(w.path_f); /* the rows' bytes are counted from here */
        if (!st && prm->grid > 0) st = csv_open(&w.grid_f, files[1], "lambda,point,", w.truth);
    }
    /* under MPI the ranks' breakpoints stream to rank 0, which alone walks the path (SCALING.md) */
    if (!st) st = rtr_path_builder_walk_ranks(pb, sweep_point, &w, &sum->n_queries, &sum->n_switches);
    pb = NULL;
    if (!st && w.path_f && fflush(w.path_f) != 0)
        st = rtr_fail(RTR_ERR_IO, "%s: write failed (disk full?): %s", files[0], strerror(errno));
    sum->n_points = w.last.n_points;
    sum->realised = w.truth;
    /* what follows needs the points: rank 0's alone */
    if (!st && writer && w.truth) st = refs_metrics(&refs, w.x_max, k);
    if (!st && writer) st = run_sorter_merge(&w.by_cost, &by_cost);
    if (!st && writer) st = cost_pass(by_cost, w.path_f ? fileno(w.path_f) : -1, files[0], &refs, w.truth, &sum->n_front);
    if (w.path_f) {
        rtr_status c = file_close(w.path_f, files[0]);
        if (!st) st = c;
    }
    if (w.grid_f) {
        rtr_status c = file_close(w.grid_f, files[1]);
        if (!st) st = c;
    }
    if (!st && writer) {
        const char *unit = prm->o.cost_model == RTR_COST_USD ? "USD" : prm->o.cost_model == RTR_COST_USER ? "user cost" : "output tokens";
        js = summary_json(corpus_dir, prm, &rs, sum, w.truth ? &refs : NULL, b->device);
        cJSON_AddNumberToObject(js, "seconds", rtr_now() - t0);
        svg = plot_svg(cat, &w.plot, sum, w.truth ? &refs : NULL, unit);
        if (!js || !svg) st = rtr_fail(RTR_ERR_NOMEM, "sweep: out of memory");
    }
    if (!st && writer) st = summary_write(files[2], js, by_cost);
    if (!st && writer) st = rtr_write_file_atomic(files[3], svg, strlen(svg));
    if (!st && writer) st = commit_dir(tmp, out_dir);
    if (st && tmp && rtr_path_exists(tmp)) rtr_remove_tree(tmp);
    if (!st) {
        double c0, a0, c1, a1;
        point_xy(&w, &w.first, &c0, &a0);
        point_xy(&w, &w.last, &c1, &a1);
        sum->k = k;
        sum->cost_scale = rs.cost_scale;
        sum->acc0 = a0, sum->cost0 = c0;
        sum->acc1 = a1, sum->cost1 = c1;
        sum->best_acc = sum->best_cost = sum->oracle_acc = sum->oracle_cost = NAN;
        sum->x_max = sum->aiq = sum->aiq_single = sum->apgr = sum->cpt50 = sum->cpt80 = NAN;
        sum->cost_to_match = sum->oracle_gap = NAN;
        if (w.truth && refs.r.best >= 0) {
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
    free(svg);
    free(w.plot.x), free(w.plot.y), free(w.plot.rx), free(w.plot.ry);
    run_sorter_free(&w.by_cost);
    rtr_path_builder_free(pb);
    eval_refs_free(&refs.r);
    route_source_close(&rs);
    free(mine);
    return st;
}
