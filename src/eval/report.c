/* `rtr report`: one self-contained HTML page (inline SVG) and a markdown
 * summary, rendered from the evaluation JSON that `rtr eval` writes
 * (docs/ROUTING.md, "Evaluation file"). Nothing is recomputed here: the page
 * shows exactly the numbers in that file. */
#include "rtr/report.h"
#include "eval/svg.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key, const char *dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* A list of [x, y] pairs into two arrays (caller frees both). */
static int64_t read_points(const cJSON *arr, double **x, double **y) {
    int64_t n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    *x = rtr_malloc(sizeof(double) * (size_t)(n ? n : 1));
    *y = rtr_malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!*x || !*y) return -1;
    int64_t i = 0;
    for (const cJSON *p = n ? arr->child : NULL; p; p = p->next, i++) {
        const cJSON *a = cJSON_GetArrayItem(p, 0), *b = cJSON_GetArrayItem(p, 1);
        (*x)[i] = cJSON_IsNumber(a) ? a->valuedouble : NAN;
        (*y)[i] = cJSON_IsNumber(b) ? b->valuedouble : NAN;
    }
    return n;
}

/* A numeric array into doubles (caller frees). */
static int64_t read_numbers(const cJSON *arr, double **out) {
    int64_t n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    *out = rtr_malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!*out) return -1;
    int64_t i = 0;
    for (const cJSON *p = n ? arr->child : NULL; p; p = p->next, i++) (*out)[i] = cJSON_IsNumber(p) ? p->valuedouble : NAN;
    return n;
}

static void cell(rtr_buf *b, double v, const char *fmt, bool md) {
    if (isnan(v)) rtr_buf_printf(b, md ? " — |" : "<td>—</td>");
    else {
        rtr_buf_printf(b, md ? " " : "<td>");
        rtr_buf_printf(b, fmt, v);
        rtr_buf_printf(b, md ? " |" : "</td>");
    }
}

/* The routers table, shaped like the paper's Table 2, as HTML and markdown. */
static void routers_table(rtr_buf *b, const cJSON *routers, const char *unit, bool md) {
    const char *head[] = {"router", "accuracy", "mean cost", "AIQ", "APGR", "CPT(50%)", "CPT(80%)",
                          "cost to match best single", "oracle gap"};
    if (md) {
        rtr_buf_printf(b, "| router | accuracy | mean cost (%s) | AIQ | APGR | CPT(50%%) | CPT(80%%) | cost to match best single | oracle gap |\n", unit);
        rtr_buf_printf(b, "|---|---|---|---|---|---|---|---|---|\n");
    } else {
        rtr_buf_printf(b, "<table><tr>");
        for (int i = 0; i < 9; i++) {
            rtr_buf_printf(b, "<th>%s", head[i]);
            if (i == 2) { rtr_buf_printf(b, " ("); rtr_buf_xml(b, unit); rtr_buf_printf(b, ")"); }
            rtr_buf_printf(b, "</th>");
        }
        rtr_buf_printf(b, "</tr>\n");
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, routers) {
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(r, "op");
        if (md) {
            rtr_buf_printf(b, "| %s |", str(r, "name", "?"));
        } else {
            rtr_buf_printf(b, "<tr><td>");
            rtr_buf_xml(b, str(r, "name", "?"));
            const char *note = str(op, "note", NULL);
            if (note) { rtr_buf_printf(b, " <span class=\"note\">("); rtr_buf_xml(b, note); rtr_buf_printf(b, ")</span>"); }
            rtr_buf_printf(b, "</td>");
        }
        cell(b, 100 * num(op, "acc"), "%.2f%%", md);
        cell(b, num(op, "cost"), "%.6g", md);
        cell(b, num(r, "aiq"), "%.4f", md);
        cell(b, num(r, "apgr"), "%.3f", md);
        cell(b, num(r, "cpt50"), "%.3f", md);
        cell(b, num(r, "cpt80"), "%.3f", md);
        cell(b, num(r, "cost_to_match"), "%.3f", md);
        cell(b, 100 * num(r, "oracle_gap"), "%.2f pt", md);
        rtr_buf_printf(b, md ? "\n" : "</tr>\n");
    }
    if (!md) rtr_buf_printf(b, "</table>\n");
}

static void pareto_chart(rtr_buf *b, const cJSON *root, const char *unit) {
    const cJSON *routers = cJSON_GetObjectItemCaseSensitive(root, "routers");
    int n = cJSON_GetArraySize(routers);
    rtr_series *s = rtr_calloc((size_t)(n ? n : 1), sizeof *s);
    double **xs = rtr_calloc((size_t)(n ? n : 1), sizeof *xs), **ys = rtr_calloc((size_t)(n ? n : 1), sizeof *ys);
    if (!s || !xs || !ys) { b->failed = true; free(s); free(xs); free(ys); return; }
    int i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, routers) {
        s[i].name = str(r, "name", "?");
        s[i].n = read_points(cJSON_GetObjectItemCaseSensitive(r, "points"), &xs[i], &ys[i]);
        if (s[i].n < 0) { b->failed = true; s[i].n = 0; }
        s[i].x = xs[i];
        s[i].y = ys[i];
        s[i].style = s[i].n > 1 ? RTR_SERIES_LINE : RTR_SERIES_POINTS;
        i++;
    }
    char xl[96];
    snprintf(xl, sizeof xl, "mean cost per query (%s)", unit);
    rtr_chart c = {"Accuracy versus cost on the evaluated split", xl, "accuracy", 0, num(root, "x_max"), NAN, NAN,
                   940, 480};
    rtr_svg_chart(b, &c, s, n);
    for (int j = 0; j < n; j++) { free(xs[j]); free(ys[j]); }
    free(xs); free(ys); free(s);
}

static void pairs_chart(rtr_buf *b, const cJSON *root, const char *unit) {
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(root, "pairs");
    int n = cJSON_GetArraySize(pairs);
    double *x = rtr_malloc(sizeof(double) * (size_t)(n ? n : 1)), *y = rtr_malloc(sizeof(double) * (size_t)(n ? n : 1));
    const char **labels = rtr_calloc((size_t)(n ? n : 1), sizeof *labels);
    if (!x || !y || !labels) { b->failed = true; free(x); free(y); free(labels); return; }
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pairs) {
        x[i] = num(p, "cost");
        y[i] = num(p, "acc");
        labels[i++] = str(p, "name", "?");
    }
    rtr_series s = {NULL, x, y, n, RTR_SERIES_POINTS, labels};
    char xl[96];
    snprintf(xl, sizeof xl, "mean cost per query (%s)", unit);
    rtr_chart c = {"Every (model, strategy) pair on its own", xl, "accuracy", 0, NAN, NAN, NAN, 940, 440};
    rtr_svg_chart(b, &c, &s, 1);
    free(x); free(y); free(labels);
}

static void mix_chart(rtr_buf *b, const cJSON *mix) {
    double *lam = NULL;
    int64_t nx = read_numbers(cJSON_GetObjectItemCaseSensitive(mix, "lambda"), &lam);
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(mix, "pairs");
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(mix, "fraction");
    int k = cJSON_GetArraySize(names);
    double *frac = rtr_calloc((size_t)(nx > 0 ? nx : 1) * (size_t)(k ? k : 1), sizeof(double));
    const char **nm = rtr_calloc((size_t)(k ? k : 1), sizeof *nm);
    if (nx < 0 || !frac || !nm) { b->failed = true; free(lam); free(frac); free(nm); return; }
    for (int j = 0; j < k; j++) nm[j] = cJSON_IsString(cJSON_GetArrayItem(names, j)) ? cJSON_GetArrayItem(names, j)->valuestring : "?";
    for (int64_t i = 0; i < nx; i++) {
        const cJSON *row = cJSON_GetArrayItem(fr, (int)i);
        for (int j = 0; j < k; j++) {
            const cJSON *v = cJSON_GetArrayItem(row, j);
            frac[i * k + j] = cJSON_IsNumber(v) ? v->valuedouble : 0;
        }
    }
    rtr_chart c = {"Which pairs RTR chooses as λ moves from cost to accuracy", "λ", "fraction of queries", 0, 1, 0,
                   1, 940, 440};
    rtr_svg_stacked(b, &c, lam, nx, frac, k, nm);
    free(lam); free(frac); free(nm);
}

static void calibration_chart(rtr_buf *b, const cJSON *cal) {
    double *pred = NULL, *truth = NULL;
    int64_t n = read_numbers(cJSON_GetObjectItemCaseSensitive(cal, "mean_pred"), &pred);
    int64_t m = read_numbers(cJSON_GetObjectItemCaseSensitive(cal, "mean_true"), &truth);
    double diag[2] = {0, 1};
    rtr_series s[2] = {{"perfect calibration", diag, diag, 2, RTR_SERIES_DASHED, NULL},
                       {"correctness head (10 equal-width bins)", pred, truth, n < m ? n : m, RTR_SERIES_LINE, NULL}};
    char title[96];
    snprintf(title, sizeof title, "Calibration of the correctness head (ECE %.4f)", num(cal, "ece"));
    rtr_chart c = {title, "mean predicted probability", "observed accuracy", 0, 1, 0, 1, 820, 480};
    if (n >= 0 && m >= 0) rtr_svg_chart(b, &c, s, 2);
    else b->failed = true;
    free(pred); free(truth);
}

static const char *CSS =
    "body{font-family:Helvetica,Arial,sans-serif;max-width:1000px;margin:24px auto;color:#222;padding:0 16px}"
    "h1{font-size:24px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}"
    "table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}.note{color:#777;font-size:11px}"
    "p.meta{color:#555}svg{max-width:100%;height:auto;margin:8px 0}";

rtr_status rtr_report_write(const char *eval_json, const char *html_path, const char *md_path) {
    char *text;
    rtr_status s = rtr_read_file(eval_json, &text, NULL);
    if (s) return s;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return rtr_fail(RTR_ERR_FORMAT, "%s: not valid JSON", eval_json);
    const cJSON *routers = cJSON_GetObjectItemCaseSensitive(root, "routers");
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(root, "pairs");
    if (!cJSON_IsArray(routers) || !cJSON_IsArray(pairs)) {
        cJSON_Delete(root);
        return rtr_fail(RTR_ERR_FORMAT, "%s: fields routers and pairs must be arrays (is this an rtr eval file?)",
                        eval_json);
    }
    const char *unit = str(root, "cost_unit", "tokens"), *title = str(root, "title", "rtr routing report");
    rtr_buf h = {0}, md = {0};
    rtr_buf_printf(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    rtr_buf_xml(&h, title);
    rtr_buf_printf(&h, "</title><style>%s</style></head><body>\n<h1>", CSS);
    rtr_buf_xml(&h, title);
    rtr_buf_printf(&h, "</h1>\n<p class=\"meta\">corpus ");
    rtr_buf_xml(&h, str(root, "corpus", "?"));
    rtr_buf_printf(&h, " · split ");
    rtr_buf_xml(&h, str(root, "split", "?"));
    rtr_buf_printf(&h, " · %.0f queries · cost in ", num(root, "n_queries"));
    rtr_buf_xml(&h, unit);
    rtr_buf_printf(&h, " · AIQ normalised by x_max = %.6g</p>\n", num(root, "x_max"));
    const char *notes = str(root, "notes", NULL);
    if (notes) { rtr_buf_printf(&h, "<p>"); rtr_buf_xml(&h, notes); rtr_buf_printf(&h, "</p>\n"); }
    rtr_buf_printf(&h, "<h2>Routers</h2>\n<p>Accuracy and mean cost at each router's operating point; "
                       "curve metrics as defined in METRICS.md (AIQ: RouterBench; APGR and CPT: RouteLLM, "
                       "on cost normalised between the cheapest and the best single pair).</p>\n");
    routers_table(&h, routers, unit, false);
    rtr_buf_printf(&h, "<h2>Accuracy versus cost</h2>\n");
    pareto_chart(&h, root, unit);
    rtr_buf_printf(&h, "<h2>Single pairs</h2>\n");
    pairs_chart(&h, root, unit);
    const cJSON *mix = cJSON_GetObjectItemCaseSensitive(root, "mix");
    if (mix) { rtr_buf_printf(&h, "<h2>Choice of pairs along λ</h2>\n"); mix_chart(&h, mix); }
    const cJSON *cal = cJSON_GetObjectItemCaseSensitive(root, "calibration");
    if (cal) { rtr_buf_printf(&h, "<h2>Calibration</h2>\n"); calibration_chart(&h, cal); }
    rtr_buf_printf(&h, "<p class=\"meta\">Generated by rtr %s from %s.</p>\n</body></html>\n", RTR_VERSION_STRING,
                   eval_json);

    rtr_buf_printf(&md, "# %s\n\ncorpus `%s`, split `%s`, %.0f queries, cost in %s, AIQ x_max = %.6g\n\n", title,
                   str(root, "corpus", "?"), str(root, "split", "?"), num(root, "n_queries"), unit,
                   num(root, "x_max"));
    routers_table(&md, routers, unit, true);
    rtr_buf_printf(&md, "\n| pair | accuracy | mean cost (%s) |\n|---|---|---|\n", unit);
    const cJSON *p;
    cJSON_ArrayForEach(p, pairs) rtr_buf_printf(&md, "| %s | %.2f%% | %.6g |\n", str(p, "name", "?"),
                                               100 * num(p, "acc"), num(p, "cost"));
    cJSON_Delete(root);
    if (h.failed || md.failed) s = RTR_ERR_NOMEM;
    if (!s) s = rtr_write_file_atomic(html_path, h.buf, h.len);
    if (!s && md_path) s = rtr_write_file_atomic(md_path, md.buf, md.len);
    rtr_buf_free(&h);
    rtr_buf_free(&md);
    return s;
}
