/* `rtr report`: one self-contained HTML page (inline SVG, no scripts) and a
 * markdown summary, rendered from the evaluation JSON that `rtr eval` writes
 * (docs/ROUTING.md, "Evaluation file"), and each plot as a reusable figure:
 * SVG, a CSV of its curves, PNG and PDF through rsvg-convert when installed
 * (docs/REPORT.md). Nothing is recomputed here: every number shown is one
 * in that file, with its interval when the file has one. */
#include "rtr/report.h"
#include "eval/svg.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------ reading */

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key, const char *dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* Intervals sit in an object's "ci" member: owner.ci[key] = [lo, hi], for
 * a router the interval of its metric `key` or, for acc and cost, of its
 * operating point's (the layout `rtr eval --bootstrap` writes; pairs and
 * the calibration bins use the same). A null end (unbounded, "not
 * reached") or a missing interval reads as NaN. */
static void ci(const cJSON *owner, const char *key, double *lo, double *hi) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(owner, "ci"), key);
    const cJSON *a = cJSON_GetArrayItem(v, 0), *b = cJSON_GetArrayItem(v, 1);
    *lo = cJSON_IsArray(v) && cJSON_IsNumber(a) ? a->valuedouble : NAN;
    *hi = cJSON_IsArray(v) && cJSON_IsNumber(b) ? b->valuedouble : NAN;
}

static bool has_ci(const cJSON *owner, const char *key) {
    return cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(owner, "ci"), key));
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

/* ------------------------------------------------------------ text */

/* Markdown cell text: the characters that would end the cell or start
 * markup (GFM pipes, emphasis, code, links, HTML, entities) are escaped with
 * a backslash, which CommonMark allows before any ASCII punctuation; line
 * breaks become spaces. */
static void md_text(rtr_buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\n' || *s == '\r') { rtr_buf_append(b, " ", 1); continue; }
        if (strchr("\\|`*_[]<>&~#!", *s)) rtr_buf_append(b, "\\", 1);
        rtr_buf_append(b, s, 1);
    }
}

/* CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
static void csv_text(rtr_buf *b, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { rtr_buf_printf(b, "%s", s); return; }
    rtr_buf_append(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"') rtr_buf_append(b, "\"", 1);
        rtr_buf_append(b, s, 1);
    }
    rtr_buf_append(b, "\"", 1);
}

static void csv_num(rtr_buf *b, double v) {
    if (isfinite(v)) rtr_buf_printf(b, ",%.10g", v);
    else rtr_buf_printf(b, ",");
}

/* ------------------------------------------------------------ tables */

/* A table cell: value and, when the file has one, its interval below it
 * (HTML) or after it in brackets (markdown); "—" for a missing value and
 * for an open interval end. scale multiplies value and interval. */
static void cell(rtr_buf *b, double v, double lo, double hi, double scale, const char *fmt, const char *unit, bool md) {
    rtr_buf_printf(b, md ? " " : "<td>");
    if (isnan(v)) rtr_buf_printf(b, "—");
    else { rtr_buf_printf(b, fmt, scale * v); rtr_buf_printf(b, "%s", unit); }
    if (!isnan(lo) || !isnan(hi)) {
        rtr_buf_printf(b, md ? " [" : "<br><span class=\"ci\">[");
        if (isnan(lo)) rtr_buf_printf(b, "—"); else rtr_buf_printf(b, fmt, scale * lo);
        rtr_buf_printf(b, ", ");
        if (isnan(hi)) rtr_buf_printf(b, "—"); else rtr_buf_printf(b, fmt, scale * hi);
        rtr_buf_printf(b, md ? "]" : "]</span>");
    }
    rtr_buf_printf(b, md ? " |" : "</td>");
}

/* Value o[key] with the interval owner.ci[key]. */
static void metric_cell(rtr_buf *b, const cJSON *o, const cJSON *owner, const char *key, double scale, const char *fmt,
                        const char *unit, bool md) {
    double lo, hi;
    ci(owner, key, &lo, &hi);
    cell(b, num(o, key), lo, hi, scale, fmt, unit, md);
}

/* Definitions shown under the tables (HTML anchors def-ID, which the table
 * headers link) and in the markdown summary: one text for both. They say in
 * a line what docs/METRICS.md defines in full. */
typedef struct {
    const char *id, *term, *text;
} definition;
static const definition DEFS[] = {
    {"acc", "accuracy",
     "share of the evaluated queries whose chosen pair answered correctly (realised outcomes; a query whose chosen "
     "pair has no logged outcome is left out of accuracy and cost and counted as missing)"},
    {"cost", "mean cost", "mean realised cost of the chosen pair per query, in the file's cost unit"},
    {"op", "operating point",
     "the single routing each router is judged at in the table, chosen without the evaluated split's outcomes "
     "(the note beside a router says how); rings mark it in the accuracy-versus-cost plot"},
    {"aiq", "AIQ",
     "RouterBench's average improvement in quality: the area under the upper concave hull of the router's "
     "(cost, accuracy) points, kept non-decreasing, extended flat to x_max and divided by x_max; compare AIQs within "
     "one table only"},
    {"aiq0", "AIQ from 0",
     "the same hull also extended flat down to cost 0, its area over [0, x_max] divided by x_max: the mean accuracy "
     "over budgets spread evenly up to x_max, a router keeping its cheapest routing under any budget below it"},
    {"apgr", "APGR",
     "RouteLLM's average performance gap recovered: the area under accuracy over cost normalised to [0, 1] between "
     "the cheapest and the best single pair, less the cheapest pair's accuracy, over the gap between the two pairs' "
     "accuracies"},
    {"cpt", "CPT(p)",
     "RouteLLM's call-performance threshold: the normalised cost at which the router first recovers the share p of "
     "that accuracy gap (linear between points)"},
    {"match", "cost to match best single",
     "the lowest mean cost at which the router's accuracy reaches the best single pair's, as a fraction of that "
     "pair's cost (lower is better; — when never reached)"},
    {"gap", "oracle gap",
     "the Oracle's accuracy less the router's best accuracy at no more than the Oracle's cost, in percentage points"},
    {"random", "Random and Oracle",
     "Random is the exact expectation of a uniformly random pair per query; the Oracle sends each query to the "
     "cheapest pair that answered it correctly (the cheapest pair, counted wrong, when none did)"},
};
#define N_DEFS (int)(sizeof DEFS / sizeof *DEFS)

/* Where the intervals come from: the file's "bootstrap" object, when any. */
static void ci_sentence(rtr_buf *b, const cJSON *root, bool md) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "bootstrap");
    if (!cJSON_IsObject(c)) return;
    double level = num(c, "level"), resamples = num(c, "resamples");
    rtr_buf_printf(b, md ? "\nBrackets: " : "<p class=\"meta\">Brackets: ");
    if (!isnan(level)) rtr_buf_printf(b, "%g%% ", 100 * level);
    rtr_buf_printf(b, "intervals");
    if (!isnan(resamples)) rtr_buf_printf(b, " from %.0f bootstrap resamples", resamples);
    const char *method = str(c, "method", NULL);
    if (method) {
        rtr_buf_printf(b, " (");
        if (md) md_text(b, method); else rtr_buf_xml(b, method);
        rtr_buf_printf(b, ")");
    }
    rtr_buf_printf(b, md ? ".\n" : ".</p>\n");
}

/* The routers table's value columns: from the router's operating point
 * (on_op) or the router itself. An optional column appears only when some
 * router has the field, so files without it keep the paper's shape. */
typedef struct {
    const char *key, *header, *def;
    bool on_op, optional;
    double scale;
    const char *fmt, *unit;
} column;
static const column COLUMNS[] = {
    {"acc", "accuracy", "acc", true, false, 100, "%.2f", "%"},
    {"cost", "mean cost", "cost", true, false, 1, "%.6g", ""},
    {"aiq", "AIQ", "aiq", false, false, 1, "%.4f", ""},
    {"aiq_from_zero", "AIQ from 0", "aiq0", false, true, 1, "%.4f", ""},
    {"apgr", "APGR", "apgr", false, false, 1, "%.3f", ""},
    {"cpt50", "CPT(50%)", "cpt", false, false, 1, "%.3f", ""},
    {"cpt80", "CPT(80%)", "cpt", false, false, 1, "%.3f", ""},
    {"cost_to_match", "cost to match best single", "match", false, false, 1, "%.3f", ""},
    {"oracle_gap", "oracle gap", "gap", false, false, 100, "%.2f", " pt"},
};
#define N_COLUMNS (int)(sizeof COLUMNS / sizeof *COLUMNS)

static bool column_shown(const column *c, const cJSON *routers) {
    if (!c->optional) return true;
    const cJSON *r;
    cJSON_ArrayForEach(r, routers)
        if (cJSON_GetObjectItemCaseSensitive(c->on_op ? cJSON_GetObjectItemCaseSensitive(r, "op") : r, c->key)) return true;
    return false;
}

/* A definition is listed unless it belongs to an optional column not shown. */
static bool definition_shown(const char *id, const cJSON *routers) {
    for (int i = 0; i < N_COLUMNS; i++)
        if (COLUMNS[i].optional && !strcmp(COLUMNS[i].def, id)) return column_shown(&COLUMNS[i], routers);
    return true;
}

/* The routers table, shaped like the paper's Table 2, as HTML and markdown. */
static void routers_table(rtr_buf *b, const cJSON *routers, const char *unit, bool md) {
    bool shown[N_COLUMNS];
    for (int i = 0; i < N_COLUMNS; i++) shown[i] = column_shown(&COLUMNS[i], routers);
    rtr_buf_printf(b, md ? "| router |" : "<table><tr><th>router</th>");
    for (int i = 0; i < N_COLUMNS; i++) {
        if (!shown[i]) continue;
        bool with_unit = !strcmp(COLUMNS[i].key, "cost");
        if (md) {
            rtr_buf_printf(b, " %s", COLUMNS[i].header);
            if (with_unit) { rtr_buf_printf(b, " ("); md_text(b, unit); rtr_buf_printf(b, ")"); }
            rtr_buf_printf(b, " |");
        } else {
            rtr_buf_printf(b, "<th><a href=\"#def-%s\">%s</a>", COLUMNS[i].def, COLUMNS[i].header);
            if (with_unit) { rtr_buf_printf(b, " ("); rtr_buf_xml(b, unit); rtr_buf_printf(b, ")"); }
            rtr_buf_printf(b, "</th>");
        }
    }
    if (md) {
        rtr_buf_printf(b, "\n|---|");
        for (int i = 0; i < N_COLUMNS; i++) if (shown[i]) rtr_buf_printf(b, "---|");
        rtr_buf_printf(b, "\n");
    } else {
        rtr_buf_printf(b, "</tr>\n");
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, routers) {
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(r, "op");
        const char *unavailable = str(r, "unavailable", NULL), *note = unavailable ? unavailable : str(op, "note", NULL);
        if (md) {
            rtr_buf_printf(b, "| ");
            md_text(b, str(r, "name", "?"));
            if (unavailable) { rtr_buf_printf(b, " (unavailable: "); md_text(b, unavailable); rtr_buf_printf(b, ")"); }
            rtr_buf_printf(b, " |");
        } else {
            rtr_buf_printf(b, "<tr><td>");
            rtr_buf_xml(b, str(r, "name", "?"));
            if (note) {
                rtr_buf_printf(b, " <span class=\"note\">(%s", unavailable ? "unavailable: " : "");
                rtr_buf_xml(b, note);
                rtr_buf_printf(b, ")</span>");
            }
            rtr_buf_printf(b, "</td>");
        }
        for (int i = 0; i < N_COLUMNS; i++) {
            const column *c = &COLUMNS[i];
            if (shown[i]) metric_cell(b, c->on_op ? op : r, r, c->key, c->scale, c->fmt, c->unit, md);
        }
        rtr_buf_printf(b, md ? "\n" : "</tr>\n");
    }
    if (!md) rtr_buf_printf(b, "</table>\n");
}

static void pairs_table(rtr_buf *b, const cJSON *pairs, const char *unit, bool md) {
    if (md) {
        rtr_buf_printf(b, "| pair | accuracy | mean cost (");
        md_text(b, unit);
        rtr_buf_printf(b, ") |\n|---|---|---|\n");
    } else {
        rtr_buf_printf(b, "<table><tr><th>pair</th><th>accuracy</th><th>mean cost (");
        rtr_buf_xml(b, unit);
        rtr_buf_printf(b, ")</th></tr>\n");
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, pairs) {
        rtr_buf_printf(b, md ? "| " : "<tr><td>");
        if (md) md_text(b, str(p, "name", "?")); else rtr_buf_xml(b, str(p, "name", "?"));
        rtr_buf_printf(b, md ? " |" : "</td>");
        metric_cell(b, p, p, "acc", 100, "%.2f", "%", md);
        metric_cell(b, p, p, "cost", 1, "%.6g", "", md);
        rtr_buf_printf(b, md ? "\n" : "</tr>\n");
    }
    if (!md) rtr_buf_printf(b, "</table>\n");
}

/* ------------------------------------------------------------ figures */

/* One plot: its SVG and the CSV of what it draws. */
typedef struct {
    const char *name, *heading;
    rtr_buf svg, csv;
} figure;

enum { FIG_CURVES, FIG_PAIRS, FIG_MIX, FIG_CALIBRATION, N_FIGS };

static rtr_axis_scale axis_of(rtr_cost_axis a) {
    return a == RTR_COST_AXIS_LINEAR ? RTR_AXIS_LINEAR : a == RTR_COST_AXIS_LOG ? RTR_AXIS_LOG : RTR_AXIS_AUTO;
}

/* Every router's curve with its operating point (and its interval). */
static void curves_figure(figure *fg, const cJSON *root, const char *unit, rtr_cost_axis axis) {
    const cJSON *routers = cJSON_GetObjectItemCaseSensitive(root, "routers");
    int n = cJSON_GetArraySize(routers);
    rtr_series *s = rtr_calloc((size_t)(n ? n : 1), sizeof *s);
    rtr_mark *m = rtr_calloc((size_t)(n ? n : 1), sizeof *m);
    double *opci = rtr_calloc(4 * (size_t)(n ? n : 1), sizeof *opci);
    double **xs = rtr_calloc((size_t)(n ? n : 1), sizeof *xs), **ys = rtr_calloc((size_t)(n ? n : 1), sizeof *ys);
    rtr_buf *csv = &fg->csv;
    if (!s || !m || !opci || !xs || !ys) { fg->svg.failed = true; goto done; }
    rtr_buf_printf(csv, "router,kind,cost,accuracy,cost_ci_low,cost_ci_high,accuracy_ci_low,accuracy_ci_high\n");
    int i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, routers) {
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(r, "op");
        bool unavailable = str(r, "unavailable", NULL) != NULL; /* in the table with its reason, not drawn */
        s[i].name = unavailable ? NULL : str(r, "name", "?");
        s[i].n = read_points(cJSON_GetObjectItemCaseSensitive(r, "points"), &xs[i], &ys[i]);
        if (s[i].n < 0) { fg->svg.failed = true; s[i].n = 0; }
        if (unavailable) { s[i].n = 0; i++; continue; }
        s[i].x = xs[i], s[i].y = ys[i];
        s[i].style = s[i].n > 1 ? RTR_SERIES_LINE : RTR_SERIES_POINTS;
        m[i] = (rtr_mark){.x = num(op, "cost"), .y = num(op, "acc"), .note = str(op, "note", NULL)};
        ci(r, "cost", &m[i].x_lo, &m[i].x_hi);
        ci(r, "acc", &m[i].y_lo, &m[i].y_hi);
        /* A one-point router is its own operating point: its interval goes
         * on the point, and only curves get a ring. */
        if (s[i].n == 1) {
            opci[4 * i] = m[i].x_lo, opci[4 * i + 1] = m[i].x_hi, opci[4 * i + 2] = m[i].y_lo, opci[4 * i + 3] = m[i].y_hi;
            s[i].x_ci = &opci[4 * i], s[i].y_ci = &opci[4 * i + 2];
        } else if (s[i].n > 1) s[i].op = &m[i];
        for (int64_t j = 0; j < s[i].n; j++) {
            csv_text(csv, s[i].name);
            rtr_buf_printf(csv, ",path");
            csv_num(csv, xs[i][j]), csv_num(csv, ys[i][j]);
            rtr_buf_printf(csv, ",,,,\n");
        }
        csv_text(csv, s[i].name);
        rtr_buf_printf(csv, ",operating point");
        csv_num(csv, m[i].x), csv_num(csv, m[i].y), csv_num(csv, m[i].x_lo), csv_num(csv, m[i].x_hi);
        csv_num(csv, m[i].y_lo), csv_num(csv, m[i].y_hi);
        rtr_buf_printf(csv, "\n");
        i++;
    }
    char xl[96];
    snprintf(xl, sizeof xl, "mean cost per query (%s)", unit);
    rtr_chart c = {.title = "Accuracy versus cost on the evaluated split", .xlabel = xl, .ylabel = "accuracy",
                   .xmin = 0, .xmax = num(root, "x_max"), .ymin = NAN, .ymax = NAN, .width = 940, .height = 480,
                   .xscale = axis_of(axis)};
    rtr_svg_chart(&fg->svg, &c, s, n);
done:
    for (int j = 0; xs && ys && j < n; j++) { free(xs[j]); free(ys[j]); }
    free(xs), free(ys), free(s), free(m), free(opci);
}

static void pairs_figure(figure *fg, const cJSON *root, const char *unit, rtr_cost_axis axis) {
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(root, "pairs");
    int n = cJSON_GetArraySize(pairs);
    size_t cnt = (size_t)(n ? n : 1);
    double *x = rtr_malloc(sizeof(double) * cnt), *y = rtr_malloc(sizeof(double) * cnt);
    double *xci = rtr_malloc(2 * sizeof(double) * cnt), *yci = rtr_malloc(2 * sizeof(double) * cnt);
    const char **labels = rtr_calloc(cnt, sizeof *labels);
    bool any_ci = false;
    if (!x || !y || !xci || !yci || !labels) { fg->svg.failed = true; goto done; }
    rtr_buf_printf(&fg->csv, "pair,cost,accuracy,cost_ci_low,cost_ci_high,accuracy_ci_low,accuracy_ci_high\n");
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pairs) {
        x[i] = num(p, "cost"), y[i] = num(p, "acc");
        ci(p, "cost", &xci[2 * i], &xci[2 * i + 1]);
        ci(p, "acc", &yci[2 * i], &yci[2 * i + 1]);
        any_ci |= has_ci(p, "cost") || has_ci(p, "acc");
        labels[i] = str(p, "name", "?");
        csv_text(&fg->csv, labels[i]);
        csv_num(&fg->csv, x[i]), csv_num(&fg->csv, y[i]), csv_num(&fg->csv, xci[2 * i]), csv_num(&fg->csv, xci[2 * i + 1]);
        csv_num(&fg->csv, yci[2 * i]), csv_num(&fg->csv, yci[2 * i + 1]);
        rtr_buf_printf(&fg->csv, "\n");
        i++;
    }
    rtr_series s = {.x = x, .y = y, .n = n, .style = RTR_SERIES_POINTS, .labels = labels,
                    .x_ci = any_ci ? xci : NULL, .y_ci = any_ci ? yci : NULL};
    char xl[96];
    snprintf(xl, sizeof xl, "mean cost per query (%s)", unit);
    rtr_chart c = {.title = "Every (model, strategy) pair on its own", .xlabel = xl, .ylabel = "accuracy", .xmin = 0,
                   .xmax = NAN, .ymin = NAN, .ymax = NAN, .width = 940, .height = 480, .xscale = axis_of(axis)};
    rtr_svg_chart(&fg->svg, &c, &s, 1);
done:
    free(x), free(y), free(xci), free(yci), free(labels);
}

static void mix_figure(figure *fg, const cJSON *mix) {
    double *lam = NULL;
    int64_t nx = read_numbers(cJSON_GetObjectItemCaseSensitive(mix, "lambda"), &lam);
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(mix, "pairs");
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(mix, "fraction");
    int k = cJSON_GetArraySize(names);
    double *frac = rtr_calloc((size_t)(nx > 0 ? nx : 1) * (size_t)(k ? k : 1), sizeof(double));
    const char **nm = rtr_calloc((size_t)(k ? k : 1), sizeof *nm);
    if (nx < 0 || !frac || !nm) { fg->svg.failed = true; goto done; }
    rtr_buf_printf(&fg->csv, "lambda");
    for (int j = 0; j < k; j++) {
        const cJSON *v = cJSON_GetArrayItem(names, j);
        nm[j] = cJSON_IsString(v) ? v->valuestring : "?";
        rtr_buf_printf(&fg->csv, ",");
        csv_text(&fg->csv, nm[j]);
    }
    rtr_buf_printf(&fg->csv, "\n");
    for (int64_t i = 0; i < nx; i++) {
        const cJSON *row = cJSON_GetArrayItem(fr, (int)i);
        rtr_buf_printf(&fg->csv, "%.10g", lam[i]);
        for (int j = 0; j < k; j++) {
            const cJSON *v = cJSON_GetArrayItem(row, j);
            frac[i * k + j] = cJSON_IsNumber(v) ? v->valuedouble : 0;
            csv_num(&fg->csv, frac[i * k + j]);
        }
        rtr_buf_printf(&fg->csv, "\n");
    }
    rtr_chart c = {.title = "Which pairs RTR chooses as λ moves from cost to accuracy", .xlabel = "λ",
                   .ylabel = "share of queries", .xmin = 0, .xmax = 1, .ymin = 0, .ymax = 1, .width = 940,
                   .height = 440};
    rtr_svg_stacked(&fg->svg, &c, lam, nx, frac, k, nm);
done:
    free(lam), free(frac), free(nm);
}

static void calibration_figure(figure *fg, const cJSON *cal) {
    double *pred = NULL, *truth = NULL, *count = NULL, *yci = NULL;
    int64_t n = read_numbers(cJSON_GetObjectItemCaseSensitive(cal, "mean_pred"), &pred);
    int64_t m = read_numbers(cJSON_GetObjectItemCaseSensitive(cal, "mean_true"), &truth);
    int64_t nc = read_numbers(cJSON_GetObjectItemCaseSensitive(cal, "count"), &count);
    const cJSON *tci = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cal, "ci"), "mean_true");
    if (n < 0 || m < 0 || nc < 0) { fg->svg.failed = true; goto done; }
    n = n < m ? n : m;
    if (cJSON_IsArray(tci) && (yci = rtr_malloc(2 * sizeof(double) * (size_t)(n ? n : 1))))
        for (int64_t i = 0; i < n; i++) {
            const cJSON *pair = cJSON_GetArrayItem(tci, (int)i);
            const cJSON *lo = cJSON_GetArrayItem(pair, 0), *hi = cJSON_GetArrayItem(pair, 1);
            yci[2 * i] = cJSON_IsNumber(lo) ? lo->valuedouble : NAN;
            yci[2 * i + 1] = cJSON_IsNumber(hi) ? hi->valuedouble : NAN;
        }
    rtr_buf_printf(&fg->csv, "bin,mean_predicted,observed,count,observed_ci_low,observed_ci_high\n");
    for (int64_t i = 0; i < n; i++) {
        rtr_buf_printf(&fg->csv, "%lld", (long long)i + 1);
        csv_num(&fg->csv, pred[i]), csv_num(&fg->csv, truth[i]), csv_num(&fg->csv, i < nc ? count[i] : NAN);
        csv_num(&fg->csv, yci ? yci[2 * i] : NAN), csv_num(&fg->csv, yci ? yci[2 * i + 1] : NAN);
        rtr_buf_printf(&fg->csv, "\n");
    }
    double diag[2] = {0, 1};
    rtr_series s[2] = {{.name = "perfect calibration", .x = diag, .y = diag, .n = 2, .style = RTR_SERIES_DASHED},
                       {.name = "correctness head (10 equal-width bins)", .x = pred, .y = truth, .n = n,
                        .style = RTR_SERIES_LINE, .y_ci = yci}};
    char title[96];
    snprintf(title, sizeof title, "Calibration of the correctness head (ECE %.4f)", num(cal, "ece"));
    rtr_chart c = {.title = title, .xlabel = "mean predicted probability", .ylabel = "observed accuracy", .xmin = 0,
                   .xmax = 1, .ymin = 0, .ymax = 1, .width = 820, .height = 480};
    rtr_svg_chart(&fg->svg, &c, s, 2);
done:
    free(pred), free(truth), free(count), free(yci);
}

/* ------------------------------------------------------------ files */

/* The rsvg-convert on PATH, or NULL (caller frees). */
static char *find_rsvg(void) {
    const char *path = getenv("PATH");
    if (!path) return NULL;
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        char *cand = rtr_sprintf("%.*s/rsvg-convert", (int)len, len ? p : ".");
        if (cand && access(cand, X_OK) == 0) return cand;
        free(cand);
        p += len + (p[len] == ':');
    }
    return NULL;
}

/* svg_path -> out_path ("png" or "pdf") through a temporary name. */
static rtr_status rsvg_convert(const char *tool, const char *svg_path, const char *out_path, const char *format) {
    char *tmp = rtr_tmp_path(out_path);
    if (!tmp) return RTR_ERR_NOMEM;
    /* PNG at twice the SVG's size: sharp on screens and slides. */
    char *argv[] = {(char *)"rsvg-convert", (char *)"--format", (char *)format, (char *)"--zoom",
                    (char *)(strcmp(format, "png") ? "1" : "2"), (char *)"--output", tmp, (char *)svg_path, NULL};
    pid_t pid;
    int err = posix_spawn(&pid, tool, NULL, NULL, argv, environ), wst = 0;
    rtr_status s = RTR_OK;
    if (err) s = rtr_fail(RTR_ERR_IO, "%s: cannot run: %s", tool, strerror(err));
    else if (waitpid(pid, &wst, 0) < 0 || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
        s = rtr_fail(RTR_ERR_IO, "%s: rsvg-convert failed converting %s to %s", out_path, svg_path, format);
    else s = rtr_commit_file(tmp, out_path);
    if (s) unlink(tmp);
    free(tmp);
    return s;
}

static rtr_status write_figures(figure *figs, int n, const char *dir, bool *png_pdf) {
    if (mkdir(dir, 0755) && errno != EEXIST) return rtr_fail(RTR_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    char *tool = find_rsvg();
    rtr_status s = RTR_OK;
    for (int i = 0; i < n && !s; i++) {
        if (!figs[i].svg.len) continue;
        char *svg = rtr_sprintf("%s/%s.svg", dir, figs[i].name), *csv = rtr_sprintf("%s/%s.csv", dir, figs[i].name);
        char *png = rtr_sprintf("%s/%s.png", dir, figs[i].name), *pdf = rtr_sprintf("%s/%s.pdf", dir, figs[i].name);
        if (!svg || !csv || !png || !pdf) s = RTR_ERR_NOMEM;
        if (!s) s = rtr_write_file_atomic(svg, figs[i].svg.buf, figs[i].svg.len);
        if (!s) s = rtr_write_file_atomic(csv, figs[i].csv.buf ? figs[i].csv.buf : "", figs[i].csv.len);
        if (!s && tool) s = rsvg_convert(tool, svg, png, "png");
        if (!s && tool) s = rsvg_convert(tool, svg, pdf, "pdf");
        free(svg), free(csv), free(png), free(pdf);
    }
    *png_pdf = tool && !s;
    free(tool);
    return s;
}

/* dir as a path relative to the directory holding page (both as given,
 * resolved through realpath), for the page's figure links; NULL on failure
 * (caller frees). */
static char *relative_dir(const char *page, const char *dir) {
    char *page_copy = rtr_strdup(page);
    if (!page_copy) return NULL;
    char *slash = strrchr(page_copy, '/');
    const char *page_dir = slash ? (slash == page_copy ? "/" : (*slash = 0, page_copy)) : ".";
    char a[PATH_MAX], b[PATH_MAX];
    char *out = NULL;
    if (realpath(page_dir, a) && realpath(dir, b)) {
        size_t common = 0, i = 0;
        for (; a[i] && a[i] == b[i]; i++)
            if (a[i] == '/') common = i;
        if (!a[i] && (b[i] == '/' || !b[i])) common = i; /* a is a prefix of b */
        int ups = 0;
        for (const char *p = a + common; *p; p++) ups += *p == '/';
        rtr_buf r = {0};
        for (int u = 0; u < ups; u++) rtr_buf_printf(&r, "../");
        const char *rest = b + common + (b[common] == '/');
        rtr_buf_printf(&r, "%s", *rest ? rest : ".");
        out = r.failed ? NULL : r.buf;
    }
    free(page_copy);
    return out;
}

/* ------------------------------------------------------------ page */

static const char *CSS =
    "body{font-family:Helvetica,Arial,sans-serif;max-width:1000px;margin:24px auto;color:#222;padding:0 16px}"
    "h1{font-size:24px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}"
    "table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}th a{color:inherit}.note{color:#777;font-size:11px}"
    ".ci{color:#777;font-size:11px;white-space:nowrap}p.meta,p.files{color:#555}p.files{font-size:13px}"
    "dt{font-weight:bold;margin-top:6px}svg{max-width:100%;height:auto;margin:8px 0}";

static void files_line(rtr_buf *h, const char *rel, const char *name, bool png_pdf) {
    if (!rel) return;
    static const char *const EXT[] = {"svg", "csv", "png", "pdf"};
    rtr_buf_printf(h, "<p class=\"files\">This figure:");
    for (int e = 0; e < (png_pdf ? 4 : 2); e++) {
        rtr_buf_printf(h, " <a href=\"");
        rtr_buf_xml(h, rel);
        rtr_buf_printf(h, "/%s.%s\">%s</a>", name, EXT[e], e == 1 ? "CSV of its curves" : EXT[e]);
    }
    rtr_buf_printf(h, "</p>\n");
}

rtr_status rtr_report_render(const char *eval_json, rtr_report_options *o) {
    o->wrote_png_pdf = false;
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
    const cJSON *mix = cJSON_GetObjectItemCaseSensitive(root, "mix");
    const cJSON *cal = cJSON_GetObjectItemCaseSensitive(root, "calibration");

    figure figs[N_FIGS] = {{.name = "accuracy_cost", .heading = "Accuracy versus cost"},
                           {.name = "pairs", .heading = "Single pairs"},
                           {.name = "mix", .heading = "Choice of pairs along λ"},
                           {.name = "calibration", .heading = "Calibration"}};
    curves_figure(&figs[FIG_CURVES], root, unit, o->cost_axis);
    pairs_figure(&figs[FIG_PAIRS], root, unit, o->cost_axis);
    if (mix) mix_figure(&figs[FIG_MIX], mix);
    if (cal) calibration_figure(&figs[FIG_CALIBRATION], cal);
    bool png_pdf = false;
    char *rel = NULL;
    for (int i = 0; i < N_FIGS; i++) s = s ? s : figs[i].svg.failed || figs[i].csv.failed ? RTR_ERR_NOMEM : RTR_OK;
    if (!s && o->figures_dir) s = write_figures(figs, N_FIGS, o->figures_dir, &png_pdf);
    if (!s && o->figures_dir && !(rel = relative_dir(o->html_path, o->figures_dir)))
        s = rtr_fail(RTR_ERR_IO, "%s: cannot resolve the path from the page to the figures", o->figures_dir);

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
    rtr_buf_printf(&h, "<h2>Routers</h2>\n<p>Accuracy and mean cost at each router's operating point, and the "
                       "metrics of its whole curve; <a href=\"#definitions\">definitions</a> below.</p>\n");
    routers_table(&h, routers, unit, false);
    ci_sentence(&h, root, false);
    for (int i = 0; i < N_FIGS; i++) {
        if (!figs[i].svg.len) continue;
        rtr_buf_printf(&h, "<h2 id=\"%s\">%s</h2>\n", figs[i].name, figs[i].heading);
        if (i == FIG_PAIRS) pairs_table(&h, pairs, unit, false);
        rtr_buf_append(&h, figs[i].svg.buf, figs[i].svg.len);
        files_line(&h, rel, figs[i].name, png_pdf);
    }
    rtr_buf_printf(&h, "<h2 id=\"definitions\">Definitions</h2>\n<dl>\n");
    for (int i = 0; i < N_DEFS; i++)
        if (definition_shown(DEFS[i].id, routers))
            rtr_buf_printf(&h, "<dt id=\"def-%s\">%s</dt><dd>%s.</dd>\n", DEFS[i].id, DEFS[i].term, DEFS[i].text);
    rtr_buf_printf(&h, "</dl>\n<p class=\"meta\">The full definitions, and how rtr computes each, are in rtr's "
                       "docs/METRICS.md. Generated by rtr %s from ", RTR_VERSION_STRING);
    rtr_buf_xml(&h, eval_json);
    rtr_buf_printf(&h, ".</p>\n</body></html>\n");

    rtr_buf_printf(&md, "# ");
    md_text(&md, title);
    rtr_buf_printf(&md, "\n\ncorpus ");
    md_text(&md, str(root, "corpus", "?"));
    rtr_buf_printf(&md, ", split ");
    md_text(&md, str(root, "split", "?"));
    rtr_buf_printf(&md, ", %.0f queries, cost in ", num(root, "n_queries"));
    md_text(&md, unit);
    rtr_buf_printf(&md, ", AIQ x_max = %.6g\n\n", num(root, "x_max"));
    routers_table(&md, routers, unit, true);
    ci_sentence(&md, root, true);
    rtr_buf_printf(&md, "\n");
    pairs_table(&md, pairs, unit, true);
    rtr_buf_printf(&md, "\n## Definitions\n\n");
    for (int i = 0; i < N_DEFS; i++)
        if (definition_shown(DEFS[i].id, routers)) rtr_buf_printf(&md, "- **%s**: %s.\n", DEFS[i].term, DEFS[i].text);
    rtr_buf_printf(&md, "\nFull definitions: rtr's docs/METRICS.md.\n");

    cJSON_Delete(root);
    if (!s && (h.failed || md.failed)) s = RTR_ERR_NOMEM;
    if (!s) s = rtr_write_file_atomic(o->html_path, h.buf, h.len);
    if (!s && o->md_path) s = rtr_write_file_atomic(o->md_path, md.buf, md.len);
    o->wrote_png_pdf = png_pdf && !s;
    rtr_buf_free(&h);
    rtr_buf_free(&md);
    for (int i = 0; i < N_FIGS; i++) rtr_buf_free(&figs[i].svg), rtr_buf_free(&figs[i].csv);
    free(rel);
    return s;
}

rtr_status rtr_report_write(const char *eval_json, const char *html_path, const char *md_path) {
    rtr_report_options o = {.html_path = html_path, .md_path = md_path};
    return rtr_report_render(eval_json, &o);
}
