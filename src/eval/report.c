/* `rtr report`: one self-contained HTML page (inline SVG, no scripts) and a
 * markdown summary, rendered from the evaluation JSON that `rtr eval` writes
 * (docs/ROUTING.md, "Evaluation file"), and each plot as a reusable figure:
 * SVG, a CSV of its curves, PNG and PDF through rsvg-convert when installed
 * (docs/REPORT.md). Nothing is recomputed here: every number shown is one
 * in that file, with its interval when the file has one. */
#include "rtr/report.h"
#include "eval/svg.h"
#include "common/json.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
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

/* ------------------------------------------------------------ two outputs */

/* The page and the summary say the same things in the same order: each
 * sentence and table is written to both, escaped for each. */
typedef struct {
    rtr_buf *h, *md;
} out2;

/* Text made here (numbers and fixed words, no markup characters): the same in both. */
static void both(out2 *o, const char *fmt, ...) RTR_PRINTF(2, 3);
static void both(out2 *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = rtr_vsprintf(fmt, ap);
    va_end(ap);
    if (!s) { o->h->failed = true; return; }
    rtr_buf_append(o->h, s, strlen(s));
    rtr_buf_append(o->md, s, strlen(s));
    free(s);
}

/* Text from the file (names, notes): escaped for each. */
static void both_text(out2 *o, const char *raw) {
    rtr_buf_xml(o->h, raw);
    md_text(o->md, raw);
}

static void para_open(out2 *o) {
    rtr_buf_printf(o->h, "<p class=\"meta\">");
}

static void para_close(out2 *o) {
    rtr_buf_printf(o->h, "</p>\n");
    rtr_buf_printf(o->md, "\n\n");
}

static void heading(out2 *o, const char *id, const char *text) {
    rtr_buf_printf(o->h, "<h2 id=\"%s\">%s</h2>\n", id, text);
    rtr_buf_printf(o->md, "## %s\n\n", text);
}

/* v (a finite number) in fmt, else "—": never "nan" where a value is missing. */
static const char *fnum(char *buf, size_t n, const char *fmt, double v) {
    if (!isfinite(v)) return "—";
    snprintf(buf, n, fmt, v);
    return buf;
}

/* ------------------------------------------------------------ tables */

/* A table built once and written as HTML and as a GitHub markdown table.
 * Row 0 is the header. Column 0 (names) and the header are text from the
 * file, escaped for each output; the other cells are numbers formatted
 * here. A cell is a value, an interval under it (HTML) or after it in
 * brackets (markdown), and a note: beside a name in parentheses (HTML
 * only unless md_note), under a value or after it following a comma. */
typedef struct {
    rtr_buf text, ci, note;
    bool md_note;
} tcell;

#define MAX_TCOLS 16
typedef struct {
    int ncol, nrow, cap;
    tcell *cell;                /* nrow x ncol */
    const char *def[MAX_TCOLS]; /* the definition a header links to (HTML), NULL: none */
    bool failed;
} table;

/* A new row's index, −1 when out of memory (t->failed). */
static int tbl_row(table *t) {
    if (t->nrow == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        tcell *c = rtr_realloc(t->cell, (size_t)cap * (size_t)t->ncol * sizeof *c);
        if (!c) { t->failed = true; return -1; }
        memset(c + (size_t)t->cap * t->ncol, 0, (size_t)(cap - t->cap) * (size_t)t->ncol * sizeof *c);
        t->cell = c, t->cap = cap;
    }
    return t->nrow++;
}

static tcell *tc(table *t, int row, int col) { return &t->cell[(size_t)row * t->ncol + col]; }

static void tbl_free(table *t) {
    for (int i = 0; i < t->nrow * t->ncol; i++)
        rtr_buf_free(&t->cell[i].text), rtr_buf_free(&t->cell[i].ci), rtr_buf_free(&t->cell[i].note);
    free(t->cell);
    memset(t, 0, sizeof *t);
}

static bool tbl_failed(const table *t) {
    for (int i = 0; i < t->nrow * t->ncol; i++)
        if (t->cell[i].text.failed || t->cell[i].ci.failed || t->cell[i].note.failed) return true;
    return t->failed;
}

static const char *txt(const rtr_buf *b) { return b->buf ? b->buf : ""; }

static void tbl_html(rtr_buf *h, const table *t) {
    rtr_buf_printf(h, "<table>");
    for (int r = 0; r < t->nrow; r++) {
        rtr_buf_printf(h, "<tr>");
        for (int c = 0; c < t->ncol; c++) {
            const tcell *x = &t->cell[(size_t)r * t->ncol + c];
            rtr_buf_printf(h, r ? "<td>" : "<th>");
            if (!r && t->def[c]) rtr_buf_printf(h, "<a href=\"#def-%s\">", t->def[c]);
            rtr_buf_xml(h, txt(&x->text));
            if (!r && t->def[c]) rtr_buf_printf(h, "</a>");
            if (x->ci.len) { rtr_buf_printf(h, "<br><span class=\"ci\">"); rtr_buf_xml(h, txt(&x->ci)); rtr_buf_printf(h, "</span>"); }
            if (x->note.len) {
                rtr_buf_printf(h, c ? "<br><span class=\"note\">" : " <span class=\"note\">(");
                rtr_buf_xml(h, txt(&x->note));
                rtr_buf_printf(h, c ? "</span>" : ")</span>");
            }
            rtr_buf_printf(h, r ? "</td>" : "</th>");
        }
        rtr_buf_printf(h, "</tr>\n");
    }
    rtr_buf_printf(h, "</table>\n");
}

/* Characters a monospaced editor shows for s (UTF-8 code points). */
static size_t width(const char *s) {
    size_t w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* The markdown table with its columns padded to one width, so the summary
 * reads as a table in a text editor too: names left, numbers right. */
static void tbl_md(rtr_buf *md, const table *t) {
    int cells = t->nrow * t->ncol;
    rtr_buf *s = rtr_calloc((size_t)(cells > 0 ? cells : 1), sizeof *s);
    size_t w[MAX_TCOLS] = {0};
    if (!s) { md->failed = true; return; }
    for (int r = 0; r < t->nrow; r++)
        for (int c = 0; c < t->ncol; c++) {
            const tcell *x = &t->cell[(size_t)r * t->ncol + c];
            rtr_buf *b = &s[(size_t)r * t->ncol + c];
            if (!r || !c) md_text(b, txt(&x->text));
            else rtr_buf_printf(b, "%s", txt(&x->text));
            if (x->ci.len) rtr_buf_printf(b, " %s", txt(&x->ci));
            if (x->note.len && c) rtr_buf_printf(b, ", %s", txt(&x->note));
            if (x->note.len && !c && x->md_note) { rtr_buf_printf(b, " ("); md_text(b, txt(&x->note)); rtr_buf_printf(b, ")"); }
            size_t n = width(txt(b));
            if (n > w[c]) w[c] = n;
        }
    for (int c = 0; c < t->ncol; c++) if (w[c] < 3) w[c] = 3;
    for (int r = 0; r < t->nrow; r++) {
        rtr_buf_printf(md, "|");
        for (int c = 0; c < t->ncol; c++) {
            const char *v = txt(&s[(size_t)r * t->ncol + c]);
            int pad = (int)(w[c] - width(v));
            if (c && r) rtr_buf_printf(md, " %*s%s |", pad, "", v);
            else rtr_buf_printf(md, " %s%*s |", v, pad, "");
        }
        rtr_buf_printf(md, "\n");
        if (!r) {
            rtr_buf_printf(md, "|");
            for (int c = 0; c < t->ncol; c++) {
                rtr_buf_printf(md, " ");
                for (size_t i = 0; i + (c ? 1 : 0) < w[c]; i++) rtr_buf_append(md, "-", 1);
                rtr_buf_printf(md, c ? ": |" : " |");
            }
            rtr_buf_printf(md, "\n");
        }
    }
    rtr_buf_printf(md, "\n");
    for (int i = 0; i < t->nrow * t->ncol; i++) md->failed |= s[i].failed, rtr_buf_free(&s[i]);
    free(s);
}

static void tbl_emit(out2 *o, table *t) {
    if (tbl_failed(t)) o->h->failed = true;
    else tbl_html(o->h, t), tbl_md(o->md, t);
    tbl_free(t);
}

/* Value v·scale in fmt and unit, or `open` when missing ("—"; "never" for
 * a cost never reached). */
static void put_value(rtr_buf *b, double v, double scale, const char *fmt, const char *unit, const char *open) {
    if (isnan(v)) { rtr_buf_printf(b, "%s", open); return; }
    rtr_buf_printf(b, fmt, scale * v);
    rtr_buf_printf(b, "%s", unit);
}

/* "[lo, hi]", an open end as `open`; nothing when both ends are missing. */
static void put_ci(rtr_buf *b, double lo, double hi, double scale, const char *fmt, const char *open) {
    if (isnan(lo) && isnan(hi)) return;
    rtr_buf_printf(b, "[");
    put_value(b, lo, scale, fmt, "", open);
    rtr_buf_printf(b, ", ");
    put_value(b, hi, scale, fmt, "", open);
    rtr_buf_printf(b, "]");
}

/* Definitions shown under the tables (HTML anchors def-ID, which the table
 * headers link) and in the markdown summary: one text for both. They say in
 * a line what docs/METRICS.md defines in full. A definition with `needs` is
 * listed when some router has that field. */
typedef struct {
    const char *id, *term, *text, *needs;
} definition;
static const definition DEFS[] = {
    {"acc", "accuracy",
     "share of the evaluated queries whose chosen pair answered correctly (realised outcomes; a query whose chosen "
     "pair has no logged outcome is left out of accuracy and cost and counted as missing)", NULL},
    {"cost", "mean cost", "mean realised cost of the chosen pair per query, in the file's cost unit", NULL},
    {"op", "operating point",
     "the single routing each router is judged at in the table, chosen without the evaluated split's outcomes "
     "(the note beside a router says how); rings mark it in the accuracy-versus-cost plot", NULL},
    {"aiq", "AIQ",
     "RouterBench's average improvement in quality: the area under the upper concave hull of the router's "
     "(cost, accuracy) points, kept non-decreasing, extended flat to x_max and divided by x_max; compare AIQs within "
     "one table only", NULL},
    {"aiq0", "AIQ from 0",
     "the same hull also extended flat down to cost 0, its area over [0, x_max] divided by x_max: the mean accuracy "
     "over budgets spread evenly up to x_max, a router keeping its cheapest routing under any budget below it",
     "aiq_from_zero"},
    {"apgr", "APGR",
     "RouteLLM's average performance gap recovered: the area under accuracy over cost normalised to [0, 1] between "
     "the cheapest and the best single pair, less the cheapest pair's accuracy, over the gap between the two pairs' "
     "accuracies", NULL},
    {"cpt", "CPT(p)",
     "RouteLLM's call-performance threshold: the normalised cost at which the router first recovers the share p of "
     "that accuracy gap (linear between points)", NULL},
    {"match", "cost to match best single",
     "the lowest mean cost at which the router's accuracy reaches the best single pair's, as a fraction of that "
     "pair's cost (lower is better; never: not reached, and as an interval end: not reached in some resamples)",
     NULL},
    {"gap", "oracle gap",
     "the Oracle's accuracy less the router's best accuracy at no more than the Oracle's cost, in percentage points",
     NULL},
    {"random", "Random and Oracle",
     "Random is the exact expectation of a uniformly random pair per query; the Oracle sends each query to the "
     "cheapest pair that answered it correctly (the cheapest pair, counted wrong, when none did)", NULL},
    {"budget", "budget",
     "a mean cost per query a router may spend, as a fraction of the best training pair's mean cost on the training "
     "split; the router takes its most accurate routing whose predicted mean cost fits, chosen without the "
     "evaluated split's outcomes; — when no routing fits", "budgets"},
    {"share", "share to the strong pair",
     "for the two-pair RouteLLM-style router: at most that share of the queries, those it ranks most likely to need "
     "it, goes to the strong pair (the best training pair), the rest to the cheapest", "shares"},
    {"pbeats", "P(RTR beats X)",
     "the share of the paired bootstrap resamples in which the RTR row's value is better than router X's (higher; "
     "lower for cost to match, where not reached is worst), ties counting one half: 0.5 for routers that route "
     "alike, near 1 or 0 for a difference the resampling of queries does not explain", "p_beats"},
};
#define N_DEFS (int)(sizeof DEFS / sizeof *DEFS)

static bool any_router_has(const cJSON *routers, const char *key) {
    const cJSON *r;
    cJSON_ArrayForEach(r, routers) if (cJSON_GetObjectItemCaseSensitive(r, key)) return true;
    return false;
}

/* Where the intervals come from: the file's "bootstrap" object, when any. */
static void ci_sentence(out2 *o, const cJSON *root) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "bootstrap");
    if (!cJSON_IsObject(c)) return;
    double level = num(c, "level"), resamples = num(c, "resamples"), seed = num(c, "seed");
    para_open(o);
    both(o, "Brackets: ");
    if (isfinite(level)) both(o, "%g%% ", 100 * level);
    both(o, "intervals");
    if (isfinite(resamples)) both(o, " from %.0f bootstrap resamples", resamples);
    double queries = num(c, "queries"); /* present when the resamples drew on a sample (m-out-of-n) */
    if (isfinite(queries)) both(o, " of a sample of %.0f queries", queries);
    double flat = num(c, "no_interval"); /* statistics the sample showed no variation in */
    const char *method = str(c, "method", NULL);
    if (method || isfinite(seed)) {
        both(o, " (");
        if (isfinite(seed)) both(o, "seed %.0f%s", seed, method ? "; " : "");
        if (method) both_text(o, method);
        both(o, ")");
    }
    both(o, ".");
    if (isfinite(flat) && flat > 0)
        both(o, " %.0f interval%s left out (—): the sample showed no variation where the split varies; a larger "
                "`--bootstrap-queries` holds more of the rarer outcome.", flat, flat == 1 ? " is" : "s are");
    para_close(o);
}

/* The routers table's value columns: from the router's operating point
 * (on_op) or the router itself. An optional column appears only when some
 * router has the field, so files without it keep the paper's shape. */
typedef struct {
    const char *key, *header, *def;
    bool on_op, optional;
    double scale;
    const char *fmt, *ci_fmt, *unit, *open;
} column;
/* Costs keep 6 significant digits, their intervals 4 (enough for an
 * interval, and a table of USD costs stays within the page). The unit
 * " pt" is joined by a no-break space. */
static const column COLUMNS[] = {
    {"acc", "accuracy", "acc", true, false, 100, "%.2f", "%.2f", "%", "—"},
    {"cost", "mean cost", "cost", true, false, 1, "%.6g", "%.4g", "", "—"},
    {"aiq", "AIQ", "aiq", false, false, 1, "%.4f", "%.4f", "", "—"},
    {"aiq_from_zero", "AIQ from 0", "aiq0", false, true, 1, "%.4f", "%.4f", "", "—"},
    {"apgr", "APGR", "apgr", false, false, 1, "%.3f", "%.3f", "", "—"},
    {"cpt50", "CPT(50%)", "cpt", false, false, 1, "%.3f", "%.3f", "", "—"},
    {"cpt80", "CPT(80%)", "cpt", false, false, 1, "%.3f", "%.3f", "", "—"},
    {"cost_to_match", "cost to match best single", "match", false, false, 1, "%.3f", "%.3f", "", "never"},
    {"oracle_gap", "oracle gap", "gap", false, false, 100, "%.2f", "%.2f", "\u00a0pt", "—"},
};
#define N_COLUMNS (int)(sizeof COLUMNS / sizeof *COLUMNS)

static bool column_shown(const column *c, const cJSON *routers) {
    if (!c->optional) return true;
    const cJSON *r;
    cJSON_ArrayForEach(r, routers)
        if (cJSON_GetObjectItemCaseSensitive(c->on_op ? cJSON_GetObjectItemCaseSensitive(r, "op") : r, c->key)) return true;
    return false;
}

/* Missing outcomes (n_missing) in the file: whether it counts them at all,
 * and whether any count of the routers' operating points, of their budgets
 * or of the pairs is above 0 (that table then gets a column or a note). */
typedef struct {
    bool counted, routers, budgets, pairs;
} missing;

static bool count_missing(missing *m, const cJSON *o) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "n_missing");
    m->counted |= cJSON_IsNumber(v);
    return cJSON_IsNumber(v) && v->valuedouble > 0;
}

static missing missing_of(const cJSON *root) {
    missing m = {0};
    const cJSON *r, *x;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(root, "routers")) {
        m.routers |= count_missing(&m, cJSON_GetObjectItemCaseSensitive(r, "op"));
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(r, "budgets")) m.budgets |= count_missing(&m, x);
    }
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(root, "pairs")) m.pairs |= count_missing(&m, x);
    return m;
}

static void header(table *t, int col, const char *text, const char *unit, const char *def) {
    rtr_buf_printf(&tc(t, 0, col)->text, "%s", text);
    if (unit) rtr_buf_printf(&tc(t, 0, col)->text, " (%s)", unit);
    t->def[col] = def;
}

/* Value o[key] with the interval owner.ci[key]; a value the file leaves
 * out is "—", a null one `open`. */
static void metric_cell(tcell *x, const cJSON *o, const cJSON *owner, const char *key, double scale, const char *fmt,
                        const char *ci_fmt, const char *unit, const char *open) {
    double lo, hi;
    ci(owner, key, &lo, &hi);
    put_value(&x->text, num(o, key), scale, fmt, unit, cJSON_GetObjectItemCaseSensitive(o, key) ? open : "—");
    put_ci(&x->ci, lo, hi, scale, ci_fmt, open);
}

static void missing_cell(tcell *x, const cJSON *o) {
    char b[32];
    rtr_buf_printf(&x->text, "%s", fnum(b, sizeof b, "%.0f", num(o, "n_missing")));
}

/* The routers table, shaped like the paper's Table 2. */
static void routers_table(table *t, const cJSON *routers, const char *unit, bool with_missing) {
    bool shown[N_COLUMNS];
    t->ncol = 1 + with_missing;
    for (int i = 0; i < N_COLUMNS; i++) t->ncol += shown[i] = column_shown(&COLUMNS[i], routers);
    if (tbl_row(t) < 0) return;
    header(t, 0, "router", NULL, NULL);
    int col = 1;
    for (int i = 0; i < N_COLUMNS; i++)
        if (shown[i]) header(t, col++, COLUMNS[i].header, strcmp(COLUMNS[i].key, "cost") ? NULL : unit, COLUMNS[i].def);
    if (with_missing) header(t, col, "missing", NULL, "acc");
    const cJSON *r;
    cJSON_ArrayForEach(r, routers) {
        int row = tbl_row(t);
        if (row < 0) return;
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(r, "op");
        const char *unavailable = str(r, "unavailable", NULL), *note = str(op, "note", NULL);
        tcell *name = tc(t, row, 0);
        rtr_buf_printf(&name->text, "%s", str(r, "name", "?"));
        if (unavailable) rtr_buf_printf(&name->note, "not built: %s", unavailable), name->md_note = true;
        else if (note) rtr_buf_printf(&name->note, "%s", note);
        col = 1;
        for (int i = 0; i < N_COLUMNS; i++) {
            const column *c = &COLUMNS[i];
            /* a router not built has no values, not values never reached */
            if (shown[i]) metric_cell(tc(t, row, col++), c->on_op ? op : r, r, c->key, c->scale, c->fmt, c->ci_fmt, c->unit,
                                      unavailable ? "—" : c->open);
        }
        if (with_missing) missing_cell(tc(t, row, col), op);
    }
}

static void pairs_table(table *t, const cJSON *pairs, const char *unit, bool with_missing) {
    t->ncol = 3 + with_missing;
    if (tbl_row(t) < 0) return;
    header(t, 0, "pair", NULL, NULL);
    header(t, 1, "accuracy", NULL, "acc");
    header(t, 2, "mean cost", unit, "cost");
    if (with_missing) header(t, 3, "missing", NULL, "acc");
    const cJSON *p;
    cJSON_ArrayForEach(p, pairs) {
        int row = tbl_row(t);
        if (row < 0) return;
        rtr_buf_printf(&tc(t, row, 0)->text, "%s", str(p, "name", "?"));
        metric_cell(tc(t, row, 1), p, p, "acc", 100, "%.2f", "%.2f", "%", "—");
        metric_cell(tc(t, row, 2), p, p, "cost", 1, "%.6g", "%.4g", "", "—");
        if (with_missing) missing_cell(tc(t, row, 3), p);
    }
}

/* The points of each router along its budgets (key "budgets", intervals in
 * ci.budgets) or, for the two-pair router, at its shares to the strong pair
 * ("shares", intervals in acc_ci): a row per router that has them, a column
 * per point (as many as the first such router has). Each cell: accuracy,
 * its interval, and the realised mean cost with λ or the share sent. */
static void points_table(table *t, const cJSON *routers, const char *key) {
    bool shares = !strcmp(key, "shares");
    const cJSON *r, *first = NULL;
    cJSON_ArrayForEach(r, routers)
        if (!first && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, key)) > 0)
            first = cJSON_GetObjectItemCaseSensitive(r, key);
    int n = cJSON_GetArraySize(first);
    if (n > MAX_TCOLS - 1) n = MAX_TCOLS - 1;
    t->ncol = 1 + n;
    if (!first || tbl_row(t) < 0) return;
    header(t, 0, "router", NULL, NULL);
    for (int j = 0; j < n; j++) {
        const cJSON *p = cJSON_GetArrayItem(first, j);
        char a[32], b[32];
        rtr_buf *h = &tc(t, 0, j + 1)->text;
        if (shares) rtr_buf_printf(h, "≤ %s to strong", fnum(a, sizeof a, "%g%%", 100 * num(p, "target")));
        else rtr_buf_printf(h, "%s (%s)", fnum(a, sizeof a, "%g%%", 100 * num(p, "fraction")),
                            fnum(b, sizeof b, "%.6g", num(p, "budget")));
        t->def[j + 1] = shares ? "share" : "budget";
    }
    cJSON_ArrayForEach(r, routers) {
        const cJSON *pts = cJSON_GetObjectItemCaseSensitive(r, key);
        if (!cJSON_GetArraySize(pts)) continue;
        const cJSON *cis = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "ci"), "budgets");
        int row = tbl_row(t);
        if (row < 0) return;
        rtr_buf_printf(&tc(t, row, 0)->text, "%s", str(r, "name", "?"));
        for (int j = 0; j < n; j++) {
            const cJSON *p = cJSON_GetArrayItem(pts, j);
            tcell *x = tc(t, row, j + 1);
            const cJSON *iv = shares ? cJSON_GetObjectItemCaseSensitive(p, "acc_ci") : cJSON_GetArrayItem(cis, j);
            const cJSON *lo = cJSON_GetArrayItem(iv, 0), *hi = cJSON_GetArrayItem(iv, 1);
            double acc = num(p, "acc"), cost = num(p, "cost");
            put_value(&x->text, acc, 100, "%.2f", "%", "—");
            if (isnan(acc)) continue; /* no routing fits: nothing more to say */
            put_ci(&x->ci, cJSON_IsNumber(lo) ? lo->valuedouble : NAN, cJSON_IsNumber(hi) ? hi->valuedouble : NAN, 100,
                   "%.2f", "—");
            char a[32], b[32];
            rtr_buf_printf(&x->note, "cost %s", fnum(a, sizeof a, "%.6g", cost));
            if (shares) rtr_buf_printf(&x->note, ", share %s", fnum(b, sizeof b, "%.1f%%", 100 * num(p, "share")));
            else if (isfinite(num(p, "lambda"))) rtr_buf_printf(&x->note, ", λ %.4g", num(p, "lambda"));
            if (num(p, "n_missing") > 0) rtr_buf_printf(&x->note, ", %.0f missing", num(p, "n_missing"));
        }
    }
}

static const char *const BEATS[] = {"aiq", "aiq_from_zero", "acc", "cost_to_match"};

/* P(row beats X) for one RTR row's p_beats object: a row per router X. */
static void beats_table(table *t, const cJSON *p_beats) {
    static const char *const HEADS[] = {"AIQ", "AIQ from 0", "accuracy", "cost to match"};
    static const char *const DEF[] = {"aiq", "aiq0", "acc", "match"};
    t->ncol = 5;
    if (tbl_row(t) < 0) return;
    header(t, 0, "router X", NULL, NULL);
    for (int c = 0; c < 4; c++) header(t, c + 1, HEADS[c], NULL, DEF[c]);
    const cJSON *x;
    cJSON_ArrayForEach(x, p_beats) {
        int row = tbl_row(t);
        if (row < 0) return;
        rtr_buf_printf(&tc(t, row, 0)->text, "%s", x->string ? x->string : "?");
        for (int c = 0; c < 4; c++) put_value(&tc(t, row, c + 1)->text, num(x, BEATS[c]), 1, "%.3f", "", "—");
    }
}

/* ------------------------------------------------------------ sentences */

/* What the evaluation rests on: training split, datasets left in or out,
 * the routing tables' checkpoints, the device. */
static void provenance(out2 *o, const cJSON *root) {
    const char *td = str(root, "test_dataset", NULL), *skip = str(root, "train_skip_dataset", NULL);
    const char *split = str(root, "train_split", NULL), *hash = str(root, "checkpoint_hash", "");
    const cJSON *tabs = cJSON_GetObjectItemCaseSensitive(root, "tables"), *t;
    double n_train = num(root, "n_train");
    /* a hand-made file that says none of it gets no sentence, not one of blanks */
    if (!split && !isfinite(n_train) && !td && !skip && !*hash && !cJSON_GetArraySize(tabs) && !str(root, "device", NULL))
        return;
    para_open(o);
    both(o, "Baselines fitted on the ");
    both_text(o, split ? split : "training");
    both(o, " split");
    const cJSON *bt = cJSON_GetObjectItemCaseSensitive(root, "baseline_train");
    double n_used = bt ? num(bt, "queries") : NAN;
    if (isfinite(n_train) && isfinite(n_used) && n_used < n_train)
        both(o, " (%.0f queries; the kNN router, dataset prior, default router and EmbedLLM-style on a hash sample of "
                "%.0f of them)", n_train, n_used);
    else if (isfinite(n_train)) both(o, " (%.0f queries)", n_train);
    if (td) { both(o, "; evaluated on dataset "); both_text(o, td); both(o, " only"); }
    if (skip) { both(o, "; training without dataset "); both_text(o, skip); }
    if (cJSON_GetArraySize(tabs) > 0) {
        both(o, "; routing tables");
        bool first = true;
        cJSON_ArrayForEach(t, tabs) {
            both(o, first ? " " : ", ");
            both_text(o, str(t, "name", "?"));
            const char *h = str(t, "checkpoint_hash", "");
            if (*h) { both(o, " (checkpoint "); both_text(o, h); both(o, ")"); }
            first = false;
        }
    } else if (*hash) {
        both(o, "; routing table scored by checkpoint ");
        both_text(o, hash);
    }
    const char *dev = str(root, "device", NULL);
    if (dev) { both(o, "; computed on "); both_text(o, dev); }
    /* exact neighbour search goes without saying; an index is an approximation */
    const cJSON *ks = cJSON_GetObjectItemCaseSensitive(root, "knn_search");
    if (ks && !strcmp(str(ks, "method", "exact"), "index"))
        both(o, "; kNN neighbours from an inverted-file index (%.0f of %.0f lists probed, recall %.3f)",
             num(ks, "nprobe"), num(ks, "lists"), num(ks, "recall"));
    both(o, ".");
    para_close(o);
}

/* Which rows are RTR, and what the default router kept and why. */
static void default_router_sentence(out2 *o, const cJSON *root, const cJSON *routers) {
    bool paper = false, rtr = false;
    const cJSON *r;
    cJSON_ArrayForEach(r, routers) {
        const char *nm = str(r, "name", "");
        paper |= !strncmp(nm, "RTR (paper)", 11);
        rtr |= !strcmp(nm, "RTR") || !strncmp(nm, "RTR: ", 5);
    }
    const cJSON *dr = cJSON_GetObjectItemCaseSensitive(root, "default_router");
    if (!rtr && !paper) return;
    para_open(o);
    if (!cJSON_IsObject(dr)) {
        both(o, "RTR is the paper's model: each query routed on the network's estimates as scored.");
        para_close(o);
        return;
    }
    both(o, "RTR is rtr's default router%s", paper ? "; RTR (paper) is the paper's model, each query routed on the "
                                                     "network's estimates as scored. " : ". ");
    const char *chosen = str(dr, "chosen", "?");
    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(dr, "cv_logloss"), *se = cJSON_GetObjectItemCaseSensitive(dr, "cv_se");
    const cJSON *best = NULL, *x, *simplest = cJSON_IsObject(cv) ? cv->child : NULL;
    cJSON_ArrayForEach(x, cv) if (cJSON_IsNumber(x) && (!best || x->valuedouble < best->valuedouble)) best = x;
    double c = num(cv, chosen), n_val = num(dr, "n_val"), n_unseen = num(dr, "n_unseen");
    char a[32], b[32], v[32];
    both(o, "The default router kept the ");
    both_text(o, chosen);
    if (isfinite(c) && best) {
        both(o, ": cross-validated log-loss %.3f ± %s over %s validation rows", c, fnum(a, sizeof a, "%.3f", num(se, chosen)),
             fnum(v, sizeof v, "%.0f", n_val));
        if (strcmp(best->string, chosen)) {
            both(o, ", within one standard error of the lowest (the ");
            both_text(o, best->string);
            both(o, ": %.3f ± %s), and simpler", best->valuedouble, fnum(b, sizeof b, "%.3f", num(se, best->string)));
        } else if (simplest && strcmp(simplest->string, chosen)) {
            both(o, ", the lowest: more than one standard error below that of the simplest candidate, the ");
            both_text(o, simplest->string);
            both(o, ", at %s", fnum(b, sizeof b, "%.3f", num(cv, simplest->string)));
        } else {
            both(o, ", the lowest of the candidates");
        }
        both(o, ".");
    } else {
        const char *note = str(dr, "note", NULL);
        both(o, ": ");
        if (note) both_text(o, note);
        else both(o, "%s validation rows, too few to choose among candidates by cross-validation, so the network is "
                     "kept as it is", fnum(v, sizeof v, "%.0f", n_val));
        both(o, ".");
    }
    bool plain = simplest && !strcmp(simplest->string, chosen);
    if (!plain) { /* the kept blend: p = σ(w0 + w1·logit(network) + w2·logit(kNN) + w3·logit(prior)) */
        static const char *const TERMS[] = {"", "logit(network)", "logit(kNN)", "logit(dataset prior)"};
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(dr, "weights");
        if (cJSON_GetArraySize(w) == 4) {
            double w0 = cJSON_GetArrayItem(w, 0)->valuedouble;
            both(o, " Kept blend: p = σ(%s%s", w0 < 0 ? "−" : "", fnum(a, sizeof a, "%.3g", fabs(w0)));
            for (int i = 1; i < 4; i++) {
                double wi = cJSON_GetArrayItem(w, i)->valuedouble;
                if (isfinite(wi) && wi != 0) both(o, " %s %.3g·%s", wi < 0 ? "−" : "+", fabs(wi), TERMS[i]);
            }
            both(o, ").");
        }
    }
    if (n_unseen > 0)
        both(o, " %.0f evaluated queries come from datasets training lacks: they get the pairs' overall training "
                "means (the unseen-dataset guard).", n_unseen);
    else if (plain && paper && n_unseen == 0)
        both(o, " So RTR routes as RTR (paper) does.");
    if (best) {
        para_close(o);
        para_open(o);
        both(o, "Candidates of the default router (cross-validated log-loss ± standard error): ");
        bool first = true;
        cJSON_ArrayForEach(x, cv) {
            both(o, first ? "" : "; ");
            both_text(o, x->string ? x->string : "?");
            both(o, " %s ± %s", fnum(a, sizeof a, "%.3f", cJSON_IsNumber(x) ? x->valuedouble : NAN),
                 fnum(b, sizeof b, "%.3f", num(se, x->string)));
            first = false;
        }
        both(o, ".");
    }
    para_close(o);
}

/* What the budgets are fractions of, then the budgets table and, for the
 * two-pair router, its shares table. */
static void budgets_section(out2 *o, const cJSON *root, const cJSON *routers, const char *unit) {
    if (!any_router_has(routers, "budgets") && !any_router_has(routers, "shares")) return;
    heading(o, "budgets", "Budgets");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(root, "budget_reference");
    char a[32];
    para_open(o);
    both(o, "Budgets are fractions of ");
    if (cJSON_IsObject(ref)) {
        both(o, "the best training pair's mean cost on the training split: ");
        both_text(o, str(ref, "pair", "?"));
        both(o, ", %s ", fnum(a, sizeof a, "%.6g", num(ref, "cost")));
        both_text(o, unit);
    } else {
        both(o, "the best training pair's mean cost on the training split");
    }
    both(o, ". At each budget a router takes its most accurate routing whose predicted mean cost fits; the cell "
            "gives its accuracy on the evaluated split with the interval, its realised mean cost and λ; — where no "
            "routing fits.");
    para_close(o);
    table t = {0};
    points_table(&t, routers, "budgets");
    if (t.nrow > 1) tbl_emit(o, &t); else tbl_free(&t);
    if (!any_router_has(routers, "shares")) return;
    para_open(o);
    both(o, "The RouteLLM-style router sends at most a share of the queries (those it ranks most likely to need it) "
            "to the strong pair");
    if (cJSON_IsObject(ref)) { both(o, ", "); both_text(o, str(ref, "pair", "?")); }
    both(o, ", and the rest to the cheapest training pair: accuracy with the interval, realised mean cost and the "
            "share actually sent.");
    para_close(o);
    points_table(&t, routers, "shares");
    if (t.nrow > 1) tbl_emit(o, &t); else tbl_free(&t);
}

/* Whether RTR row b has P = 0.5 against row a (named a_name) on every
 * count and a's probabilities against every other router. */
static bool ties(const cJSON *a, const char *a_name, const cJSON *b) {
    const cJSON *x;
    cJSON_ArrayForEach(x, b) {
        const cJSON *y = x->string && strcmp(x->string, a_name) ? cJSON_GetObjectItemCaseSensitive(a, x->string) : NULL;
        for (int c = 0; c < 4; c++) {
            double u = num(x, BEATS[c]);
            if (y ? !(u == num(y, BEATS[c]) || (isnan(u) && isnan(num(y, BEATS[c])))) : x->string && u != 0.5) return false;
        }
    }
    return cJSON_GetObjectItemCaseSensitive(b, a_name) != NULL;
}

/* For each RTR row with p_beats: how often it beats every other router; a
 * row whose table would repeat an earlier one's (ties) gets a sentence. */
static void beats_section(out2 *o, const cJSON *root, const cJSON *routers) {
    if (!any_router_has(routers, "p_beats")) return;
    heading(o, "beats", "P(RTR beats X)");
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(root, "bootstrap"), *r;
    char a[32];
    cJSON_ArrayForEach(r, routers) {
        const cJSON *pb = cJSON_GetObjectItemCaseSensitive(r, "p_beats"), *e, *same = NULL;
        if (!cJSON_GetArraySize(pb)) continue;
        for (e = routers->child; e != r && !same; e = e->next)
            if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(e, "p_beats")) &&
                ties(cJSON_GetObjectItemCaseSensitive(e, "p_beats"), str(e, "name", ""), pb))
                same = e;
        if (same) {
            para_open(o);
            both_text(o, str(r, "name", "?"));
            both(o, ": P = 0.500 against ");
            both_text(o, str(same, "name", "?"));
            both(o, " on every count, and against every other router the same as ");
            both_text(o, str(same, "name", "?"));
            both(o, "'s above.");
            para_close(o);
            continue;
        }
        para_open(o);
        both(o, "How often ");
        both_text(o, str(r, "name", "?"));
        both(o, " beats router X in the %s paired resamples: on AIQ, AIQ from 0, accuracy at the operating points "
                "and cost to match (lower wins); ties count one half.", fnum(a, sizeof a, "%.0f", num(bs, "resamples")));
        para_close(o);
        table t = {0};
        beats_table(&t, pb);
        tbl_emit(o, &t);
    }
}

static void missing_sentence(out2 *o, const cJSON *root, missing m) {
    if (!m.counted) return;
    char a[32];
    para_open(o);
    if (m.routers || m.budgets || m.pairs)
        both(o, "missing: the evaluated queries whose chosen pair has no logged outcome, left out of accuracy and "
                "cost; a table without a missing column (or a budget cell without a missing count) has none.");
    else both(o, "No outcome is missing: every router, budget and pair is judged on all %s queries.",
              fnum(a, sizeof a, "%.0f", num(root, "n_queries")));
    para_close(o);
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
    double ece = num(cal, "ece");
    if (isfinite(ece)) snprintf(title, sizeof title, "Calibration of the correctness head (ECE %.4f)", ece);
    else snprintf(title, sizeof title, "Calibration of the correctness head");
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
    "table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 6px;text-align:right}"
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

/* The page and the summary, in one pass (the figures go to the page only). */
static void write_page(out2 *o, const cJSON *root, const char *eval_json, figure *figs, const char *rel, bool png_pdf) {
    const cJSON *routers = cJSON_GetObjectItemCaseSensitive(root, "routers");
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(root, "pairs");
    const char *unit = str(root, "cost_unit", "tokens"), *title = str(root, "title", "rtr routing report");
    missing miss = missing_of(root);
    char a[32], b[32];
    rtr_buf_printf(o->h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    rtr_buf_xml(o->h, title);
    rtr_buf_printf(o->h, "</title><style>%s</style></head><body>\n<h1>", CSS);
    rtr_buf_xml(o->h, title);
    rtr_buf_printf(o->h, "</h1>\n");
    rtr_buf_printf(o->md, "# ");
    md_text(o->md, title);
    rtr_buf_printf(o->md, "\n\n");
    para_open(o);
    both(o, "corpus ");
    both_text(o, str(root, "corpus", "?"));
    both(o, " · split ");
    both_text(o, str(root, "split", "?"));
    both(o, " · %s queries · cost in ", fnum(a, sizeof a, "%.0f", num(root, "n_queries")));
    both_text(o, unit);
    both(o, " · AIQ normalised by x_max = %s", fnum(b, sizeof b, "%.6g", num(root, "x_max")));
    para_close(o);
    provenance(o, root);
    const char *notes = str(root, "notes", NULL);
    if (notes) { rtr_buf_printf(o->h, "<p>"); rtr_buf_xml(o->h, notes); rtr_buf_printf(o->h, "</p>\n"); }

    heading(o, "routers", "Routers");
    rtr_buf_printf(o->h, "<p>Accuracy and mean cost at each router's operating point, and the metrics of its whole "
                         "curve; <a href=\"#definitions\">definitions</a> below.</p>\n");
    table t = {0};
    routers_table(&t, routers, unit, miss.routers);
    tbl_emit(o, &t);
    default_router_sentence(o, root, routers);
    missing_sentence(o, root, miss);
    ci_sentence(o, root);
    const char *aiq_note = str(root, "aiq_note", NULL);
    if (aiq_note) { para_open(o); both_text(o, aiq_note); para_close(o); }
    budgets_section(o, root, routers, unit);
    beats_section(o, root, routers);

    for (int i = 0; i < N_FIGS; i++) {
        if (i == FIG_PAIRS) { /* the pairs table belongs to the summary too */
            heading(o, figs[i].name, figs[i].heading);
            pairs_table(&t, pairs, unit, miss.pairs);
            tbl_emit(o, &t);
        } else if (figs[i].svg.len) {
            rtr_buf_printf(o->h, "<h2 id=\"%s\">%s</h2>\n", figs[i].name, figs[i].heading);
        }
        if (!figs[i].svg.len) continue;
        rtr_buf_append(o->h, figs[i].svg.buf, figs[i].svg.len);
        files_line(o->h, rel, figs[i].name, png_pdf);
    }

    heading(o, "definitions", "Definitions");
    rtr_buf_printf(o->h, "<dl>\n");
    for (int i = 0; i < N_DEFS; i++) {
        if (DEFS[i].needs && !any_router_has(routers, DEFS[i].needs)) continue;
        rtr_buf_printf(o->h, "<dt id=\"def-%s\">%s</dt><dd>%s.</dd>\n", DEFS[i].id, DEFS[i].term, DEFS[i].text);
        rtr_buf_printf(o->md, "- **%s**: %s.\n", DEFS[i].term, DEFS[i].text);
    }
    rtr_buf_printf(o->h, "</dl>\n<p class=\"meta\">The full definitions, and how rtr computes each, are in rtr's "
                         "docs/METRICS.md. Generated by rtr %s from ", RTR_VERSION_STRING);
    rtr_buf_xml(o->h, eval_json);
    rtr_buf_printf(o->h, ".</p>\n</body></html>\n");
    rtr_buf_printf(o->md, "\nFull definitions: rtr's docs/METRICS.md.\n");
}

/* ------------------------------------------------------------ checking */

/* The reader above takes anything it does not understand as missing ("—").
 * A hand-edited or damaged file must not reach it: a string where a number
 * belongs, an accuracy of 7, a negative cost, a key given twice (cJSON keeps
 * the first, Python the last) would be drawn and printed as if true. So the
 * file is checked first, each fault named by its field's path. */
/* The top of [0, 1] for shares and accuracies: eval's sums of shares can
 * round a last bit above 1. */
#define UNIT_HI (1 + 1e-9)

typedef struct {
    const char *file;
    rtr_status s;
} checker;

static bool check_fail(checker *c, const char *path, const char *what) {
    if (!c->s) c->s = rtr_fail(RTR_ERR_FORMAT, "%s: field %s: %s", c->file, path, what);
    return false;
}

/* A number in [lo, hi] (null allowed when null_ok: "not reached", "none"). */
static bool check_num(checker *c, const cJSON *v, const char *path, double lo, double hi, bool null_ok) {
    char what[96];
    if (cJSON_IsNull(v) && null_ok) return true;
    if (!cJSON_IsNumber(v)) return check_fail(c, path, null_ok ? "must be a number or null" : "must be a number");
    if (v->valuedouble >= lo && v->valuedouble <= hi) return true;
    snprintf(what, sizeof what, "%g is outside [%g, %g]", v->valuedouble, lo, hi);
    return check_fail(c, path, what);
}

/* Member key of o, when present, as check_num; path is "PREFIX.key". */
static bool check_member(checker *c, const cJSON *o, const char *prefix, const char *key, double lo, double hi) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    char path[160];
    snprintf(path, sizeof path, "%.100s.%.50s", prefix, key);
    return !v || check_num(c, v, path, lo, hi, true);
}

/* Every object without a key twice, every number finite, all the way down. */
static bool check_tree(checker *c, const cJSON *v, const char *path) {
    char sub[160];
    if (cJSON_IsNumber(v) && !isfinite(v->valuedouble)) return check_fail(c, path, "not a finite number");
    const char *dup = cJSON_IsObject(v) ? rtr_json_duplicate_key(v) : NULL;
    if (dup) {
        snprintf(sub, sizeof sub, "%.100s%s%.50s", path, *path ? "." : "", dup);
        return check_fail(c, sub, "given twice");
    }
    int i = 0;
    for (const cJSON *k = cJSON_IsArray(v) || cJSON_IsObject(v) ? v->child : NULL; k; k = k->next, i++) {
        if (cJSON_IsObject(v)) snprintf(sub, sizeof sub, "%.100s%s%.50s", path, *path ? "." : "", k->string);
        else snprintf(sub, sizeof sub, "%.100s[%d]", path, i);
        if (!check_tree(c, k, sub)) return false;
    }
    return true;
}

/* Member key of o, when present: a count (a whole number >= 0). */
static bool check_count(checker *c, const cJSON *o, const char *prefix, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    char path[160];
    snprintf(path, sizeof path, "%.100s.%.50s", prefix, key);
    if (!v || !check_num(c, v, path, 0, 9e15, true)) return !v;
    return cJSON_IsNull(v) || v->valuedouble == floor(v->valuedouble) || check_fail(c, path, "must be a whole number");
}

/* An operating point or a budget's point: accuracy in [0, 1], cost >= 0,
 * λ in [0, 1], a count of missing outcomes. */
static bool check_point(checker *c, const cJSON *o, const char *path) {
    if (!cJSON_IsObject(o)) return check_fail(c, path, "must be an object");
    return check_member(c, o, path, "acc", 0, UNIT_HI) && check_member(c, o, path, "cost", 0, INFINITY) &&
           check_member(c, o, path, "lambda", 0, 1) && check_member(c, o, path, "fraction", 0, INFINITY) &&
           check_member(c, o, path, "budget", 0, INFINITY) && check_count(c, o, path, "n_missing");
}

/* An interval: null or [lo, hi] (either end null when not reached), lo <= hi. */
static bool check_interval(checker *c, const cJSON *v, const char *path) {
    if (cJSON_IsNull(v)) return true;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2) return check_fail(c, path, "must be [low, high] or null");
    const cJSON *lo = v->child, *hi = v->child->next;
    if (!check_num(c, lo, path, -INFINITY, INFINITY, true) || !check_num(c, hi, path, -INFINITY, INFINITY, true))
        return false;
    return !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) || lo->valuedouble <= hi->valuedouble ||
           check_fail(c, path, "its low end is above its high end");
}

/* A router or a pair: its name, accuracy in [0, 1], cost >= 0, metrics
 * numbers, points [cost, accuracy], operating point, budgets and intervals. */
static bool check_entry(checker *c, const cJSON *o, const char *path) {
    char sub[160];
    if (!cJSON_IsObject(o)) return check_fail(c, path, "must be an object");
    snprintf(sub, sizeof sub, "%.100s.name", path);
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "name"))) return check_fail(c, sub, "must be a string");
    for (int j = 0; j < N_COLUMNS; j++) {
        const char *key = COLUMNS[j].key;
        bool acc = !strcmp(key, "acc"), cost = !strcmp(key, "cost");
        if (!check_member(c, o, path, key, acc || cost ? 0 : -INFINITY, acc ? UNIT_HI : INFINITY)) return false;
    }
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "op"), *b, *ci = cJSON_GetObjectItemCaseSensitive(o, "ci");
    snprintf(sub, sizeof sub, "%.100s.op", path);
    if (op && !check_point(c, op, sub)) return false;
    int bi = 0;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(o, "budgets")) {
        snprintf(sub, sizeof sub, "%.100s.budgets[%d]", path, bi++);
        if (!check_point(c, b, sub)) return false;
    }
    const cJSON *cis = cJSON_IsObject(ci) ? ci : NULL;
    cJSON_ArrayForEach(b, cis) {
        snprintf(sub, sizeof sub, "%.100s.ci.%.40s", path, b->string);
        const cJSON *e, *each = !strcmp(b->string, "budgets") ? b : NULL; /* one interval per budget */
        int ei = 0;
        if (!each && !check_interval(c, b, sub)) return false;
        if (each && !cJSON_IsArray(each)) return check_fail(c, sub, "must be an array");
        cJSON_ArrayForEach(e, each) {
            char el[200];
            snprintf(el, sizeof el, "%.150s[%d]", sub, ei++);
            if (!check_interval(c, e, el)) return false;
        }
    }
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(o, "points"), *p;
    int i = 0;
    cJSON_ArrayForEach(p, pts) {
        snprintf(sub, sizeof sub, "%.100s.points[%d]", path, i++);
        if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2) return check_fail(c, sub, "must be [cost, accuracy]");
        /* a point not reached is null (the reader skips it) */
        if (!check_num(c, p->child, sub, 0, INFINITY, true) || !check_num(c, p->child->next, sub, 0, UNIT_HI, true))
            return false;
    }
    return true;
}

/* Member key of o: an array (of want items unless want < 0) of numbers in
 * [lo, hi] or null, of strings (strings), or of anything (any). */
typedef enum { LIST_NUMBERS, LIST_STRINGS, LIST_ANY } list_kind;
static bool check_list(checker *c, const cJSON *o, const char *path, const char *key, int want, list_kind kind,
                       double lo, double hi) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *v;
    char sub[160];
    snprintf(sub, sizeof sub, "%.100s.%.50s", path, key);
    if (!cJSON_IsArray(a)) return check_fail(c, sub, "must be an array");
    if (want >= 0 && cJSON_GetArraySize(a) != want) return check_fail(c, sub, "has another length than its siblings");
    int i = 0;
    cJSON_ArrayForEach(v, a) {
        snprintf(sub, sizeof sub, "%.90s.%.50s[%d]", path, key, i++);
        if (kind == LIST_STRINGS && !cJSON_IsString(v)) return check_fail(c, sub, "must be a string");
        if (kind == LIST_NUMBERS && !check_num(c, v, sub, lo, hi, true)) return false;
    }
    return true;
}

static rtr_status check_eval(const char *file, const char *text, const cJSON *root) {
    checker c = {file, RTR_OK};
    size_t bad;
    if (!rtr_utf8_valid(text, strlen(text), &bad))
        return rtr_fail(RTR_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu", file, bad);
    if (!check_tree(&c, root, "")) return c.s;
    const cJSON *e;
    int i = 0;
    char path[64];
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "routers")) {
        snprintf(path, sizeof path, "routers[%d]", i++);
        if (!check_entry(&c, e, path)) return c.s;
    }
    i = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "pairs")) {
        snprintf(path, sizeof path, "pairs[%d]", i++);
        if (!check_entry(&c, e, path)) return c.s;
    }
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "n_queries");
    if (n && !(check_num(&c, n, "n_queries", 0, 9e15, false) && n->valuedouble == floor(n->valuedouble)))
        return c.s ? c.s : rtr_fail(RTR_ERR_FORMAT, "%s: field n_queries: must be an integer", file);
    const cJSON *mix = cJSON_GetObjectItemCaseSensitive(root, "mix"), *row;
    if (mix) {
        int nx = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(mix, "lambda"));
        int k = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(mix, "pairs"));
        if (!check_list(&c, mix, "mix", "lambda", -1, LIST_NUMBERS, 0, UNIT_HI) ||
            !check_list(&c, mix, "mix", "pairs", -1, LIST_STRINGS, 0, 0) ||
            !check_list(&c, mix, "mix", "fraction", nx, LIST_ANY, 0, 0))
            return c.s;
        i = 0;
        cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(mix, "fraction")) {
            snprintf(path, sizeof path, "mix.fraction[%d]", i++);
            if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != k)
                return check_fail(&c, path, "must hold one share per pair"), c.s;
            const cJSON *v;
            cJSON_ArrayForEach(v, row) if (!check_num(&c, v, path, 0, UNIT_HI, true)) return c.s;
        }
    }
    const cJSON *cal = cJSON_GetObjectItemCaseSensitive(root, "calibration");
    if (cal) {
        int nb = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cal, "mean_pred"));
        if (!check_list(&c, cal, "calibration", "mean_pred", -1, LIST_NUMBERS, 0, UNIT_HI) ||
            !check_list(&c, cal, "calibration", "mean_true", nb, LIST_NUMBERS, 0, UNIT_HI) ||
            !check_list(&c, cal, "calibration", "count", nb, LIST_NUMBERS, 0, INFINITY) ||
            !check_member(&c, cal, "calibration", "ece", 0, UNIT_HI))
            return c.s;
    }
    return RTR_OK;
}

rtr_status rtr_report_render(const char *eval_json, rtr_report_options *o) {
    o->wrote_png_pdf = false;
    char *text;
    rtr_status s = rtr_read_file(eval_json, &text, NULL);
    if (s) return s;
    const char *why;
    cJSON *root = rtr_json_parse(text, &why, NULL);
    if (!root) {
        free(text);
        return rtr_fail(RTR_ERR_FORMAT, "%s: not valid JSON%s", eval_json, why);
    }
    const cJSON *routers = cJSON_GetObjectItemCaseSensitive(root, "routers");
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(root, "pairs");
    if (!cJSON_IsArray(routers) || !cJSON_IsArray(pairs))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: fields routers and pairs must be arrays (is this an rtr eval file?)",
                     eval_json);
    if (!s) s = check_eval(eval_json, text, root);
    free(text);
    if (s) {
        cJSON_Delete(root);
        return s;
    }
    const char *unit = str(root, "cost_unit", "tokens");
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
    out2 page = {&h, &md};
    if (!s) write_page(&page, root, eval_json, figs, rel, png_pdf);
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

rtr_status rtr_report_write(const char *html_path, const char *md_path, const char *eval_json) {
    rtr_report_options o = {.html_path = html_path, .md_path = md_path};
    return rtr_report_render(eval_json, &o);
}
