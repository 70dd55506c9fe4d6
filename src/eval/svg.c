/* SVG charts: axes with "nice" linear or logarithmic ticks, series with
 * error bars and operating points, labels placed clear of each other, and
 * legends that grow the chart instead of running off its edge. See svg.h. */
#include "eval/svg.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The ten colours everyone knows from matplotlib first (the routers of a
 * chart rarely need more), then eighteen picked greedily from an sRGB grid
 * (lightness 25..78, visible on white) to maximise the smallest CIEDE2000
 * distance to those already chosen: every two are >= 16 apart. */
static const char *const PALETTE[RTR_SVG_COLORS] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#334400", "#1100cc", "#aabbff", "#005555", "#771155", "#886600", "#444455", "#99ccaa", "#ccbbaa", "#ff8888",
    "#448877", "#dd0077", "#eeaa00", "#663300", "#22aaff", "#888855", "#44dd00", "#771122"};
#define MAX_DRAWN 2000 /* path vertices drawn per series (paths of millions of points are thinned) */
#define MAX_HOVER 150  /* invisible hover markers along a long line */
#define FONT "DejaVu Sans,Helvetica,Arial,sans-serif"

const char *rtr_svg_color(int i) { return PALETTE[((i % RTR_SVG_COLORS) + RTR_SVG_COLORS) % RTR_SVG_COLORS]; }

/* Advance widths of printable ASCII in 1/100 em, rounded up from DejaVu
 * Sans (the widest of the fonts the charts name). */
static const unsigned char ASCII_W[95] = {
    32, 40, 46, 84, 64, 95, 78, 28, 39, 39, 50, 84, 32, 36, 32, 34, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 34, 34,
    84, 84, 84, 53, 100, 68, 69, 70, 77, 63, 58, 78, 75, 30, 30, 66, 56, 86, 75, 79, 60, 79, 70, 64, 61, 73, 68, 99,
    69, 61, 69, 39, 34, 39, 84, 50, 50, 61, 64, 55, 64, 62, 35, 64, 63, 28, 28, 58, 28, 97, 63, 61, 64, 64, 41, 52,
    39, 63, 59, 82, 59, 59, 53, 64, 34, 64, 84};

double rtr_svg_text_width(const char *text, double px) {
    double w = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        if (*p < 0x80) { w += *p >= 32 && *p < 127 ? ASCII_W[*p - 32] : 60; p++; continue; }
        int len = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : *p >= 0xC0 ? 2 : 1;
        unsigned cp = *p & (len == 4 ? 0x07 : len == 3 ? 0x0F : 0x1F);
        int i = 1;
        for (; i < len && (p[i] & 0xC0) == 0x80; i++) cp = cp << 6 | (p[i] & 0x3F);
        w += cp >= 0x2E80 ? 100 : 80; /* CJK and beyond are square; other scripts roughly Latin capitals */
        p += i;
    }
    return w / 100 * px * 1.04;
}

/* ------------------------------------------------------------ geometry */

typedef struct {
    double x0, y0, x1, y1;
} box;

static bool boxes_meet(box a, box b, double gap) {
    return a.x0 < b.x1 + gap && b.x0 < a.x1 + gap && a.y0 < b.y1 + gap && b.y0 < a.y1 + gap;
}
static bool box_inside(box a, box frame) { return a.x0 >= frame.x0 && a.x1 <= frame.x1 && a.y0 >= frame.y0 && a.y1 <= frame.y1; }

/* Boxes already taken (markers, labels), grown as labels are placed. */
typedef struct {
    box *b;
    int64_t n, cap;
} box_list;

static void box_add(box_list *l, box b) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 64;
        box *nb = realloc(l->b, (size_t)cap * sizeof *nb);
        if (!nb) return; /* a missed obstacle only risks a touching label */
        l->b = nb, l->cap = cap;
    }
    l->b[l->n++] = b;
}

static bool box_free(const box_list *l, box b) {
    for (int64_t i = 0; i < l->n; i++)
        if (boxes_meet(l->b[i], b, 1.5)) return false;
    return true;
}

/* ---------------------------------------------------------------- axes */

typedef struct {
    bool log;
    double lo, hi;   /* data range shown (log: > 0) */
    double p0, p1;   /* pixels of lo and hi */
    double ticks[64];
    int n_ticks;
    int decimals;    /* linear tick labels */
} axis;

static double ax_px(const axis *a, double v) {
    double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
    return a->p0 + t * (a->p1 - a->p0);
}

static bool ax_shows(const axis *a, double v) { return isfinite(v) && (!a->log || v > 0); }

/* Tick step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double nice_step(double span, int want) {
    double raw = span / want, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

static void fix_range(double *lo, double *hi, bool log) {
    if (!isfinite(*lo) || !isfinite(*hi) || (log && !(*lo > 0))) { *lo = log ? 1 : 0; *hi = log ? 10 : 1; }
    if (log && *hi / *lo < 1 + 1e-9) { *lo /= 2; *hi *= 2; }
    if (!log && *hi - *lo < 1e-12) { double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1; *lo -= d; *hi += d; }
}

static void tick_label(char *out, size_t n, const axis *a, double v) {
    if (!(a->log || fabs(v) >= 1e5 || (v != 0 && fabs(v) < 1e-4))) { snprintf(out, n, "%.*f", a->decimals, v); return; }
    char t[32], *e;
    snprintf(t, sizeof t, "%g", v);
    if ((e = strchr(t, 'e'))) { /* 1e-05 -> 1e-5, 1e+06 -> 1e6 */
        char *d = e + 1 + (e[1] == '-'), *src = e + 2;
        while (*src == '0' && src[1]) src++;
        memmove(d, src, strlen(src) + 1);
    }
    snprintf(out, n, "%s", t);
}

/* Ticks over [lo, hi] with `want` of them; the range is widened to whole
 * steps (linear) or to 1-2-5 values (log). */
static void make_ticks(axis *a, double lo, double hi, int want, bool log) {
    a->log = log;
    fix_range(&lo, &hi, log);
    a->n_ticks = 0;
    if (!log) {
        double st = nice_step(hi - lo, want);
        a->lo = floor(lo / st + 1e-9) * st;
        a->hi = ceil(hi / st - 1e-9) * st;
        a->decimals = st >= 1 ? 0 : (int)ceil(-log10(st) - 1e-9);
        for (double v = a->lo; v <= a->hi + st * 1e-6 && a->n_ticks < 64; v += st)
            a->ticks[a->n_ticks++] = fabs(v) < st * 1e-9 ? 0 : v;
        return;
    }
    static const double MANT[3] = {1, 2, 5};
    double e0 = floor(log10(lo)), e1 = ceil(log10(hi));
    a->lo = pow(10, e0), a->hi = pow(10, e1);
    for (int m = 2; m >= 0; m--) /* tighten to the 1-2-5 value at or below lo */
        if (MANT[m] * pow(10, e0) <= lo * (1 + 1e-9)) { a->lo = MANT[m] * pow(10, e0); break; }
    for (int m = 0; m < 3; m++)
        if (MANT[m] * pow(10, e1 - 1) >= hi * (1 - 1e-9)) { a->hi = MANT[m] * pow(10, e1 - 1); break; }
    double decades = log10(a->hi / a->lo);
    int every = decades > 10 ? (int)ceil(decades / 8) : 1;
    for (double e = e0; e <= e1 && a->n_ticks < 64; e++)
        for (int m = 0; m < 3 && a->n_ticks < 64; m++) {
            double v = MANT[m] * pow(10, e);
            if (v < a->lo * (1 - 1e-9) || v > a->hi * (1 + 1e-9)) continue;
            if (m > 0 && decades > 3.5) continue;
            if (m == 0 && (long)(e - e0) % every) continue;
            a->ticks[a->n_ticks++] = v;
        }
}

/* Drop every other tick label until the x labels have room between them. */
static int x_tick_stride(const axis *a) {
    char t[32];
    for (int stride = 1;; stride++) {
        bool fits = true;
        double last_right = -INFINITY;
        for (int i = 0; i < a->n_ticks && fits; i += stride) {
            tick_label(t, sizeof t, a, a->ticks[i]);
            double X = ax_px(a, a->ticks[i]), w = rtr_svg_text_width(t, 12);
            if (X - w / 2 < last_right + 8) fits = false;
            last_right = X + w / 2;
        }
        if (fits || stride >= a->n_ticks) return stride;
    }
}

/* ------------------------------------------------------------ text */

/* Split text into lines no wider than max_px, breaking after '|', '/', '-',
 * '_', ',' or a space where possible; starts[i], lens[i] per line. */
static int wrap_text(const char *s, double max_px, double px, int *starts, int *lens, int max_lines) {
    int n = 0, len = (int)strlen(s), pos = 0;
    while (pos < len && n < max_lines) {
        int end = pos, brk = -1;
        char tmp[512];
        while (end < len) {
            int next = end + 1;
            while (next < len && ((unsigned char)s[next] & 0xC0) == 0x80) next++; /* whole code points */
            int l = next - pos < (int)sizeof tmp - 1 ? next - pos : (int)sizeof tmp - 1;
            memcpy(tmp, s + pos, (size_t)l);
            tmp[l] = 0;
            if (rtr_svg_text_width(tmp, px) > max_px && end > pos) break;
            if (strchr("|/-_, ", s[end])) brk = next;
            end = next;
        }
        if (end < len && brk > pos) end = brk;
        if (n == max_lines - 1) end = len; /* never drop text: the last line takes the rest */
        starts[n] = pos, lens[n] = end - pos, n++;
        pos = end;
    }
    return n;
}

static void xml_n(rtr_buf *b, const char *s, int n) {
    char tmp[1024];
    int l = n < (int)sizeof tmp - 1 ? n : (int)sizeof tmp - 1;
    memcpy(tmp, s, (size_t)l);
    tmp[l] = 0;
    rtr_buf_xml(b, tmp);
}

/* A (possibly wrapped) text block with its first baseline at y. */
static void text_lines(rtr_buf *b, double x, double y, double px, const char *attrs, const char *s, const int *starts,
                       const int *lens, int n, double line_h) {
    rtr_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%g\"%s%s>", x, y, px, attrs ? " " : "", attrs ? attrs : "");
    for (int i = 0; i < n; i++) {
        rtr_buf_printf(b, "<tspan x=\"%.1f\" dy=\"%.1f\">", x, i ? line_h : 0.0);
        xml_n(b, s + starts[i], lens[i]);
        rtr_buf_printf(b, "</tspan>");
    }
    rtr_buf_printf(b, "</text>\n");
}

/* ------------------------------------------------------------ legends */

typedef enum { SW_LINE, SW_DASHED, SW_POINT, SW_AREA, SW_RING, SW_NONE } swatch;

typedef struct {
    const char *name;
    const char *color;
    const char *fill; /* area fill (a colour or a pattern url) */
    swatch kind;
    int starts[8], lens[8], n_lines;
} legend_item;

typedef struct {
    legend_item *it;
    int n;
    bool bottom;
    int cols;
    double col_w, text_w, height;
} legend;

#define LEG_PX 12
#define LEG_LINE 15

static double legend_item_h(const legend_item *it) { return it->n_lines * LEG_LINE + 4; }

/* Height of row r of a bottom legend laid out column by column. */
static double legend_row_h(const legend *l, int r, int rows) {
    double h = 0;
    for (int c = 0; c < l->cols; c++)
        if (c * rows + r < l->n) h = fmax(h, legend_item_h(&l->it[c * rows + r]));
    return h;
}

/* Lay the legend out on the right of the plot when it fits in at most 30%
 * of the width and the plot's height, else below it in columns read top to
 * bottom (rows as high as their tallest entry). */
static void legend_layout(legend *l, int W, double plot_h) {
    double longest = 0;
    for (int i = 0; i < l->n; i++) longest = fmax(longest, rtr_svg_text_width(l->it[i].name, LEG_PX));
    l->bottom = false;
    l->text_w = fmin(longest, 0.30 * W - 34);
    l->cols = 1;
    l->height = 0;
    for (int i = 0; i < l->n; i++) {
        legend_item *it = &l->it[i];
        it->n_lines = wrap_text(it->name, l->text_w, LEG_PX, it->starts, it->lens, 8);
        l->height += legend_item_h(it);
    }
    l->col_w = l->n ? l->text_w + 34 : 0;
    if (l->height <= plot_h || !l->n) return;
    l->bottom = true;
    l->text_w = fmin(longest, W / 2.0 - 60);
    l->col_w = l->text_w + 34;
    l->cols = (int)((W - 32) / l->col_w);
    if (l->cols < 1) l->cols = 1;
    if (l->cols > l->n) l->cols = l->n;
    for (int i = 0; i < l->n; i++)
        l->it[i].n_lines = wrap_text(l->it[i].name, l->text_w, LEG_PX, l->it[i].starts, l->it[i].lens, 8);
    l->height = 0;
    int rows = (l->n + l->cols - 1) / l->cols;
    for (int r = 0; r < rows; r++) l->height += legend_row_h(l, r, rows);
}

static void legend_draw(rtr_buf *b, const legend *l, double x, double y) {
    int rows = l->bottom ? (l->n + l->cols - 1) / l->cols : l->n;
    double row_y = y;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < (l->bottom ? l->cols : 1); c++) {
            int i = c * rows + r;
            if (i >= l->n) continue;
            const legend_item *it = &l->it[i];
            double X = x + c * l->col_w, Y = row_y + 9; /* Y: middle of the first line */
            switch (it->kind) {
            case SW_AREA:
                rtr_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"10\" fill=\"%s\" stroke=\"%s\"/>", X,
                               Y - 5, it->fill ? it->fill : it->color, it->color);
                break;
            case SW_POINT:
                rtr_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\"/>", X + 7, Y, it->color);
                break;
            case SW_RING:
                rtr_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"none\" stroke=\"#333\" stroke-width=\"2\"/>",
                               X + 7, Y);
                break;
            case SW_NONE: break;
            default:
                rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>",
                               X, Y, X + 14, Y, it->color, it->kind == SW_DASHED ? " stroke-dasharray=\"5,3\"" : "");
            }
            double tx = it->kind == SW_NONE ? X : X + 20;
            text_lines(b, tx, Y + 4, LEG_PX, NULL, it->name, it->starts, it->lens, it->n_lines, LEG_LINE);
        }
        row_y += l->bottom ? legend_row_h(l, r, rows) : legend_item_h(&l->it[r]);
    }
}

/* ------------------------------------------------------------ frame */

typedef struct {
    int W, H;           /* final size */
    double left, top, w, h;
    double gap;         /* between the plot and a legend on its right */
    axis x, y;
    int title_lines, title_starts[4], title_lens[4];
    int id;             /* unique per chart in this process: clip and pattern ids */
} frame;

static atomic_int chart_serial;

/* Compute the frame: title lines, tick labels' room, plot box; extra_below
 * is what goes under the x axis label (a bottom legend, a key). */
static frame frame_layout(const rtr_chart *c, double x0, double x1, bool xlog, double y0, double y1, double right_w) {
    frame f = {0};
    f.id = atomic_fetch_add(&chart_serial, 1);
    f.W = c->width ? c->width : 720;
    int H = c->height ? c->height : 440;
    f.title_lines = c->title ? wrap_text(c->title, f.W - 24, 16.5 /* bold 15 px */, f.title_starts, f.title_lens, 4) : 0;
    f.top = 14 + 19 * f.title_lines;
    make_ticks(&f.y, y0, y1, 5, false);
    double yw = 0;
    char t[32];
    for (int i = 0; i < f.y.n_ticks; i++) {
        tick_label(t, sizeof t, &f.y, f.y.ticks[i]);
        yw = fmax(yw, rtr_svg_text_width(t, 12));
    }
    f.left = 8 + (c->ylabel ? 20 : 0) + yw + 8;
    /* The tick label at the right end of the x axis is centred on it: the
     * plot stops early enough for its right half (and the legend keeps off). */
    make_ticks(&f.x, x0, x1, 6, xlog);
    double tail = 0;
    if (f.x.n_ticks && fabs(f.x.ticks[f.x.n_ticks - 1] - f.x.hi) <= 1e-9 * fmax(1, fabs(f.x.hi))) {
        tick_label(t, sizeof t, &f.x, f.x.hi);
        tail = rtr_svg_text_width(t, 12) / 2 + 3;
    }
    f.gap = fmax(14, tail);
    f.w = f.W - f.left - (right_w > 0 ? 16 + right_w - 14 + f.gap : fmax(16, tail));
    f.h = H - f.top - 50;
    if (f.h < 120) f.h = 120;
    f.x.p0 = f.left, f.x.p1 = f.left + f.w;
    f.y.p0 = f.top + f.h, f.y.p1 = f.top;
    f.H = (int)ceil(f.top + f.h + 50);
    return f;
}

static box frame_box(const frame *f) { return (box){f->left, f->top, f->left + f->w, f->top + f->h}; }

static void draw_axes(rtr_buf *b, const rtr_chart *c, const frame *f, int height) {
    rtr_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                      "font-family=\"" FONT "\" font-size=\"12\">\n", f->W, height, f->W, height);
    rtr_buf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", f->W, height);
    rtr_buf_printf(b, "<defs><clipPath id=\"rtr-chart%d-plot\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
                      "</clipPath></defs>\n", f->id, f->left, f->top, f->w, f->h);
    if (c->title)
        text_lines(b, 12, 20, 15, "font-weight=\"bold\"", c->title, f->title_starts, f->title_lens, f->title_lines, 19);
    char t[32];
    int stride = x_tick_stride(&f->x);
    for (int i = 0; i < f->x.n_ticks; i++) {
        double X = ax_px(&f->x, f->x.ticks[i]);
        rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", X, f->top, X,
                       f->top + f->h);
        if (i % stride) continue;
        tick_label(t, sizeof t, &f->x, f->x.ticks[i]);
        rtr_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#444\">%s</text>\n", X,
                       f->top + f->h + 19, t);
    }
    for (int i = 0; i < f->y.n_ticks; i++) {
        double Y = ax_px(&f->y, f->y.ticks[i]);
        tick_label(t, sizeof t, &f->y, f->y.ticks[i]);
        rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#444\">%s</text>\n",
                       f->left, Y, f->left + f->w, Y, f->left - 6, Y + 4, t);
    }
    rtr_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n",
                   f->left, f->top, f->w, f->h);
    if (c->xlabel) {
        char xl[256];
        snprintf(xl, sizeof xl, "%s%s", c->xlabel, f->x.log ? ", log scale" : "");
        rtr_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", f->left + f->w / 2, f->top + f->h + 41);
        rtr_buf_xml(b, xl);
        rtr_buf_printf(b, "</text>\n");
    }
    if (c->ylabel) {
        rtr_buf_printf(b, "<text transform=\"translate(20,%.1f) rotate(-90)\" text-anchor=\"middle\">", f->top + f->h / 2);
        rtr_buf_xml(b, c->ylabel);
        rtr_buf_printf(b, "</text>\n");
    }
}

/* ------------------------------------------------------------ charts */

static void range_add(double *lo, double *hi, double v, bool log) {
    if (!isfinite(v) || (log && v <= 0)) return;
    if (v < *lo) *lo = v;
    if (v > *hi) *hi = v;
}

/* Range of x (or y) over every drawn point, interval end and mark. */
static void data_range(const rtr_series *s, int ns, bool use_x, bool log, double *lo, double *hi) {
    *lo = INFINITY, *hi = -INFINITY;
    for (int i = 0; i < ns; i++) {
        const double *v = use_x ? s[i].x : s[i].y, *other = use_x ? s[i].y : s[i].x, *ci = use_x ? s[i].x_ci : s[i].y_ci;
        for (int64_t j = 0; j < s[i].n; j++) {
            if (!isfinite(other[j])) continue;
            range_add(lo, hi, v[j], log);
            if (ci) range_add(lo, hi, ci[2 * j], log), range_add(lo, hi, ci[2 * j + 1], log);
        }
        const rtr_mark *m = s[i].op;
        if (m && isfinite(m->x) && isfinite(m->y)) {
            range_add(lo, hi, use_x ? m->x : m->y, log);
            range_add(lo, hi, use_x ? m->x_lo : m->y_lo, log);
            range_add(lo, hi, use_x ? m->x_hi : m->y_hi, log);
        }
    }
}

static bool want_log(const rtr_chart *c, const rtr_series *s, int ns) {
    if (c->xscale != RTR_AXIS_AUTO) return c->xscale == RTR_AXIS_LOG;
    double lo, hi;
    data_range(s, ns, true, false, &lo, &hi);
    return lo > 0 && isfinite(hi) && hi / lo > 10;
}

static bool point_shown(const frame *f, double x, double y) { return ax_shows(&f->x, x) && ax_shows(&f->y, y); }

/* Pixel ends of the interval [lo, hi] at a point, clipped to the axis
 * range (an open end stops at the point); false when neither end is set. */
static bool bar_ends(const frame *f, double x, double y, double lo, double hi, bool horizontal, double *P0, double *P1) {
    if (!isfinite(lo) && !isfinite(hi)) return false;
    const axis *a = horizontal ? &f->x : &f->y;
    double at = horizontal ? x : y, v[2] = {isfinite(lo) ? lo : at, isfinite(hi) ? hi : at};
    for (int e = 0; e < 2; e++) v[e] = fmin(fmax(v[e], a->lo), a->hi);
    *P0 = ax_px(a, v[0]), *P1 = ax_px(a, v[1]);
    return true;
}

/* The box an interval bar and its caps cover (an obstacle for labels). */
static bool bar_box(const frame *f, double x, double y, double lo, double hi, bool horizontal, box *out) {
    double P0, P1;
    if (!bar_ends(f, x, y, lo, hi, horizontal, &P0, &P1)) return false;
    double X = ax_px(&f->x, x), Y = ax_px(&f->y, y);
    *out = horizontal ? (box){fmin(P0, P1), Y - 3, fmax(P0, P1), Y + 3} : (box){X - 3, fmin(P0, P1), X + 3, fmax(P0, P1)};
    return true;
}

/* An interval bar with caps on its closed ends. */
static void error_bar(rtr_buf *b, const frame *f, double x, double y, double lo, double hi, bool horizontal,
                      const char *col) {
    double P0, P1;
    if (!bar_ends(f, x, y, lo, hi, horizontal, &P0, &P1)) return;
    double X = ax_px(&f->x, x), Y = ax_px(&f->y, y);
    rtr_buf_printf(b, "<g stroke=\"%s\" stroke-width=\"1.3\">", col);
    if (horizontal) rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", P0, Y, P1, Y);
    else rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", X, P0, X, P1);
    double end[2] = {P0, P1};
    bool closed[2] = {isfinite(lo), isfinite(hi)};
    for (int e = 0; e < 2; e++) {
        if (!closed[e]) continue;
        if (horizontal) rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", end[e], Y - 3, end[e], Y + 3);
        else rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", X - 3, end[e], X + 3, end[e]);
    }
    rtr_buf_printf(b, "</g>\n");
}

static void ci_text(rtr_buf *b, const char *axis_name, double lo, double hi) {
    if (!isfinite(lo) && !isfinite(hi)) return;
    rtr_buf_printf(b, "; %s interval [", axis_name);
    if (isfinite(lo)) rtr_buf_printf(b, "%.6g", lo); else rtr_buf_printf(b, "open");
    rtr_buf_printf(b, ", ");
    if (isfinite(hi)) rtr_buf_printf(b, "%.6g", hi); else rtr_buf_printf(b, "open");
    rtr_buf_printf(b, "]");
}

/* Hover text of a point: "name: (x, y)" and its intervals. */
static void point_title(rtr_buf *b, const char *name, const char *note, double x, double y, double xlo, double xhi,
                        double ylo, double yhi) {
    rtr_buf_printf(b, "<title>");
    if (name) rtr_buf_xml(b, name);
    if (note) { rtr_buf_printf(b, " "); rtr_buf_xml(b, note); }
    rtr_buf_printf(b, ": (%.6g, %.4g)", x, y);
    ci_text(b, "x", xlo, xhi);
    ci_text(b, "y", ylo, yhi);
    rtr_buf_printf(b, "</title>");
}

static double ci_at(const double *ci, int64_t j, int end) { return ci ? ci[2 * j + end] : NAN; }

/* Whether the segment (x0,y0)-(x1,y1) passes through b grown by gap
 * (Liang-Barsky clipping). */
static bool segment_meets(double x0, double y0, double x1, double y1, box b, double gap) {
    double t0 = 0, t1 = 1, dx = x1 - x0, dy = y1 - y0;
    double p[4] = {-dx, dx, -dy, dy}, q[4] = {x0 - (b.x0 - gap), (b.x1 + gap) - x0, y0 - (b.y0 - gap), (b.y1 + gap) - y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) { if (q[i] < 0) return false; continue; }
        double t = q[i] / p[i];
        if (p[i] < 0) { if (t > t1) return false; if (t > t0) t0 = t; }
        else { if (t < t0) return false; if (t < t1) t1 = t; }
    }
    return true;
}

/* Leader lines already drawn: later labels keep off them. */
typedef struct {
    double (*seg)[4];
    int64_t n, cap;
} seg_list;

static bool segs_clear(const seg_list *l, box b) {
    for (int64_t i = 0; i < l->n; i++)
        if (segment_meets(l->seg[i][0], l->seg[i][1], l->seg[i][2], l->seg[i][3], b, 1.5)) return false;
    return true;
}

/* A label next to (X, Y) clear of every taken box and leader line and
 * inside the plot: beside the marker first, then further out with a leader
 * line that crosses nothing taken. */
static bool place_label(box_list *taken, seg_list *segs, box area, double X, double Y, double r, double w, double h,
                        box *out, bool *leader) {
    static const double DIR[8][2] = {{1, 0}, {-1, 0}, {0, -1}, {0, 1}, {1, -1}, {1, 1}, {-1, -1}, {-1, 1}};
    static const double DIST[6] = {0, 14, 26, 42, 60, 84};
    for (int d = 0; d < 6; d++)
        for (int k = 0; k < 8; k++) {
            double dx = DIR[k][0], dy = DIR[k][1], g = r + 3 + DIST[d];
            /* the box edge nearest the point sits g away from it along the direction */
            double cx = X + dx * (g + w / 2), cy = Y + dy * (g + h / 2);
            box bb = {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
            if (!box_inside(bb, area) || !box_free(taken, bb) || !segs_clear(segs, bb)) continue;
            double len = hypot(dx, dy), sx = X + dx / len * (r + 3), sy = Y + dy / len * (r + 3);
            double ex = fmin(fmax(X, bb.x0), bb.x1), ey = fmin(fmax(Y, bb.y0), bb.y1);
            if (d > 0) {
                bool crosses = false;
                for (int64_t i = 0; i < taken->n && !crosses; i++) crosses = segment_meets(sx, sy, ex, ey, taken->b[i], 0.5);
                if (crosses) continue;
                if (segs->n == segs->cap) {
                    int64_t cap = segs->cap ? 2 * segs->cap : 32;
                    double(*ns)[4] = realloc(segs->seg, (size_t)cap * sizeof *ns);
                    if (!ns) continue;
                    segs->seg = ns, segs->cap = cap;
                }
                segs->seg[segs->n][0] = sx, segs->seg[segs->n][1] = sy, segs->seg[segs->n][2] = ex, segs->seg[segs->n][3] = ey;
                segs->n++;
            }
            *out = bb;
            *leader = d > 0;
            box_add(taken, bb);
            return true;
        }
    return false;
}

typedef struct {
    int number;         /* 1-based, in the key */
    const char *name;
} key_entry;

void rtr_svg_chart(rtr_buf *b, const rtr_chart *c, const rtr_series *s, int ns) {
    bool xlog = want_log(c, s, ns);
    double x0, x1, y0, y1;
    data_range(s, ns, true, xlog, &x0, &x1);
    data_range(s, ns, false, false, &y0, &y1);
    if (!isnan(c->xmin) && (!xlog || c->xmin > 0)) x0 = c->xmin;
    if (!isnan(c->xmax)) x1 = c->xmax;
    if (!isnan(c->ymin)) y0 = c->ymin;
    if (!isnan(c->ymax)) y1 = c->ymax;

    /* Legend: every named series, then one entry for operating points. */
    legend_item *items = calloc((size_t)ns + 1, sizeof *items);
    key_entry *keys = NULL;
    box_list taken = {0};
    seg_list segs = {0};
    if (!items) { b->failed = true; return; }
    legend lg = {items, 0, false, 1, 0, 0, 0};
    bool any_op = false;
    for (int i = 0; i < ns; i++) {
        any_op |= s[i].op && isfinite(s[i].op->x) && isfinite(s[i].op->y);
        if (!s[i].name) continue;
        items[lg.n++] = (legend_item){.name = s[i].name, .color = rtr_svg_color(i),
                                      .kind = s[i].style == RTR_SERIES_POINTS ? SW_POINT
                                              : s[i].style == RTR_SERIES_DASHED || i >= RTR_SVG_COLORS ? SW_DASHED
                                                                                                      : SW_LINE};
    }
    if (any_op) items[lg.n++] = (legend_item){.name = "operating point", .color = "#333", .kind = SW_RING};
    int W = c->width ? c->width : 720, H = c->height ? c->height : 440;
    legend_layout(&lg, W, H - 64 - 50);
    frame f = frame_layout(c, x0, x1, xlog, y0, y1, lg.bottom ? 0 : lg.col_w);
    box area = frame_box(&f);

    /* Obstacles for labels: every marker that will be drawn. */
    int64_t n_labels = 0;
    for (int i = 0; i < ns; i++) {
        const rtr_series *r = &s[i];
        bool markers = r->style == RTR_SERIES_POINTS || (r->style == RTR_SERIES_LINE && r->n <= 60);
        for (int64_t j = 0; markers && j < r->n; j++) {
            if (!point_shown(&f, r->x[j], r->y[j])) continue;
            double X = ax_px(&f.x, r->x[j]), Y = ax_px(&f.y, r->y[j]), rad = r->style == RTR_SERIES_POINTS ? 5 : 3;
            box_add(&taken, (box){X - rad, Y - rad, X + rad, Y + rad});
            if (r->labels && r->labels[j]) n_labels++;
        }
        box bar;
        for (int64_t j = 0; j < r->n && (r->x_ci || r->y_ci); j++) {
            if (!point_shown(&f, r->x[j], r->y[j])) continue;
            if (bar_box(&f, r->x[j], r->y[j], ci_at(r->x_ci, j, 0), ci_at(r->x_ci, j, 1), true, &bar)) box_add(&taken, bar);
            if (bar_box(&f, r->x[j], r->y[j], ci_at(r->y_ci, j, 0), ci_at(r->y_ci, j, 1), false, &bar)) box_add(&taken, bar);
        }
        const rtr_mark *m = r->op;
        if (m && point_shown(&f, m->x, m->y)) {
            double X = ax_px(&f.x, m->x), Y = ax_px(&f.y, m->y);
            box_add(&taken, (box){X - 8, Y - 8, X + 8, Y + 8});
            if (bar_box(&f, m->x, m->y, m->x_lo, m->x_hi, true, &bar)) box_add(&taken, bar);
            if (bar_box(&f, m->x, m->y, m->y_lo, m->y_hi, false, &bar)) box_add(&taken, bar);
        }
    }

    /* Labels: names where they fit; numbers (keyed below) where not. */
    typedef struct { box bb; bool leader, number; double X, Y; const char *text; int num; } placed;
    placed *pl = calloc((size_t)(n_labels ? n_labels : 1), sizeof *pl);
    keys = calloc((size_t)(n_labels ? n_labels : 1), sizeof *keys);
    if (!pl || !keys) { b->failed = true; free(items); free(pl); free(keys); free(taken.b); free(segs.seg); return; }
    int64_t np = 0, nk = 0;
    for (int i = 0; i < ns; i++) {
        const rtr_series *r = &s[i];
        if (!r->labels || r->style != RTR_SERIES_POINTS) continue;
        for (int64_t j = 0; j < r->n; j++) {
            if (!r->labels[j] || !point_shown(&f, r->x[j], r->y[j])) continue;
            double X = ax_px(&f.x, r->x[j]), Y = ax_px(&f.y, r->y[j]);
            placed *p = &pl[np]; /* whole: a number that found no place left its fields in this slot */
            *p = (placed){.X = X, .Y = Y, .text = r->labels[j]};
            if (place_label(&taken, &segs, area, X, Y, 5, rtr_svg_text_width(r->labels[j], 10), 12, &p->bb, &p->leader)) {
                np++;
                continue;
            }
            char num[24];
            snprintf(num, sizeof num, "%lld", (long long)nk + 1);
            keys[nk] = (key_entry){(int)nk + 1, r->labels[j]};
            p->number = true, p->num = (int)nk + 1;
            nk++;
            if (place_label(&taken, &segs, area, X, Y, 5, rtr_svg_text_width(num, 10), 12, &p->bb, &p->leader)) np++;
            /* else: the number stays in the key and the marker's title only */
        }
    }

    /* The key of numbered points, in columns like a bottom legend. */
    legend key = {0};
    legend_item *key_items = nk ? calloc((size_t)nk, sizeof *key_items) : NULL;
    char (*key_text)[160] = nk ? calloc((size_t)nk, sizeof *key_text) : NULL;
    if (nk && (!key_items || !key_text)) b->failed = true;
    for (int64_t i = 0; key_items && key_text && i < nk; i++) {
        snprintf(key_text[i], sizeof key_text[i], "%d  %s", keys[i].number, keys[i].name);
        key_items[i] = (legend_item){.name = key_text[i], .color = "#333", .kind = SW_NONE};
    }
    if (key_items) {
        key = (legend){key_items, (int)nk, true, 1, 0, 0, 0};
        legend_layout(&key, W, 0); /* 0: always below */
    }
    double below = f.top + f.h + 50 + (lg.bottom ? lg.height + 8 : 0);
    double key_y = below + (nk ? 18 : 0);
    int height = (int)ceil(key_y + (nk ? key.height : 0) + 6);
    if (!lg.bottom && f.top + lg.height + 8 > height) height = (int)ceil(f.top + lg.height + 8);
    if (height < f.H) height = f.H;

    draw_axes(b, c, &f, height);
    rtr_buf_printf(b, "<g clip-path=\"url(#rtr-chart%d-plot)\">\n", f.id);
    for (int i = 0; i < ns; i++) {
        const rtr_series *r = &s[i];
        if (r->style == RTR_SERIES_POINTS) continue;
        const char *col = rtr_svg_color(i);
        bool dashed = r->style == RTR_SERIES_DASHED || i >= RTR_SVG_COLORS;
        rtr_buf_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s d=\"", col, dashed ? "1.5" : "2",
                       dashed ? " stroke-dasharray=\"5,4\"" : "");
        bool pen = false;
        double last_y = 0;
        int64_t step = r->n > MAX_DRAWN ? (r->n + MAX_DRAWN - 1) / MAX_DRAWN : 1;
        for (int64_t j = 0; j < r->n; j = (j + step < r->n || j == r->n - 1) ? j + step : r->n - 1) {
            if (!point_shown(&f, r->x[j], r->y[j])) { pen = false; continue; }
            double X = ax_px(&f.x, r->x[j]), Y = ax_px(&f.y, r->y[j]);
            if (pen && r->style == RTR_SERIES_STEPS) rtr_buf_printf(b, "L%.1f,%.1f", X, last_y);
            rtr_buf_printf(b, "%c%.1f,%.1f", pen ? 'L' : 'M', X, Y);
            pen = true;
            last_y = Y;
        }
        rtr_buf_printf(b, "\">");
        if (r->name) { rtr_buf_printf(b, "<title>"); rtr_buf_xml(b, r->name); rtr_buf_printf(b, "</title>"); }
        rtr_buf_printf(b, "</path>\n");
    }
    for (int i = 0; i < ns; i++) { /* error bars under the markers */
        const rtr_series *r = &s[i];
        for (int64_t j = 0; j < r->n && (r->x_ci || r->y_ci); j++) {
            if (!point_shown(&f, r->x[j], r->y[j])) continue;
            error_bar(b, &f, r->x[j], r->y[j], ci_at(r->x_ci, j, 0), ci_at(r->x_ci, j, 1), true, rtr_svg_color(i));
            error_bar(b, &f, r->x[j], r->y[j], ci_at(r->y_ci, j, 0), ci_at(r->y_ci, j, 1), false, rtr_svg_color(i));
        }
        const rtr_mark *m = r->op;
        if (m && point_shown(&f, m->x, m->y)) {
            error_bar(b, &f, m->x, m->y, m->x_lo, m->x_hi, true, rtr_svg_color(i));
            error_bar(b, &f, m->x, m->y, m->y_lo, m->y_hi, false, rtr_svg_color(i));
        }
    }
    rtr_buf_printf(b, "</g>\n");
    for (int i = 0; i < ns; i++) {
        const rtr_series *r = &s[i];
        const char *col = rtr_svg_color(i);
        bool markers = r->style == RTR_SERIES_POINTS || (r->style == RTR_SERIES_LINE && r->n <= 60);
        /* A long line gets invisible markers along it, so hovering anywhere names it. */
        int64_t step = markers ? 1 : r->n > MAX_HOVER ? (r->n + MAX_HOVER - 1) / MAX_HOVER : 1;
        for (int64_t j = 0; r->style != RTR_SERIES_DASHED && j < r->n; j += step) {
            if (!point_shown(&f, r->x[j], r->y[j])) continue;
            double X = ax_px(&f.x, r->x[j]), Y = ax_px(&f.y, r->y[j]);
            if (markers)
                rtr_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\">", X, Y,
                               r->style == RTR_SERIES_POINTS ? "4.5" : "2.5", col);
            else
                rtr_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\" fill-opacity=\"0\">", X, Y, col);
            point_title(b, r->labels && r->labels[j] ? r->labels[j] : r->name, NULL, r->x[j], r->y[j],
                        ci_at(r->x_ci, j, 0), ci_at(r->x_ci, j, 1), ci_at(r->y_ci, j, 0), ci_at(r->y_ci, j, 1));
            rtr_buf_printf(b, "</circle>\n");
        }
        const rtr_mark *m = r->op;
        if (m && point_shown(&f, m->x, m->y)) {
            rtr_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6.5\" fill=\"white\" fill-opacity=\"0.6\" stroke=\"%s\" "
                              "stroke-width=\"2.5\">", ax_px(&f.x, m->x), ax_px(&f.y, m->y), col);
            char what[64];
            snprintf(what, sizeof what, "operating point%s", m->note ? ":" : "");
            rtr_buf_printf(b, "<title>");
            if (r->name) { rtr_buf_xml(b, r->name); rtr_buf_printf(b, " "); }
            rtr_buf_printf(b, "%s", what);
            if (m->note) { rtr_buf_printf(b, " "); rtr_buf_xml(b, m->note); }
            rtr_buf_printf(b, " (%.6g, %.4g)", m->x, m->y);
            ci_text(b, "x", m->x_lo, m->x_hi);
            ci_text(b, "y", m->y_lo, m->y_hi);
            rtr_buf_printf(b, "</title></circle>\n");
        }
    }
    for (int64_t i = 0; i < np; i++) { /* labels last, on top, with a white halo over lines */
        const placed *p = &pl[i];
        double cx = (p->bb.x0 + p->bb.x1) / 2, cy = (p->bb.y0 + p->bb.y1) / 2;
        if (p->leader) {
            double ex = fmin(fmax(p->X, p->bb.x0), p->bb.x1), ey = fmin(fmax(p->Y, p->bb.y0), p->bb.y1);
            rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-width=\"0.8\"/>",
                           p->X, p->Y, ex, ey);
        }
        char num[24];
        snprintf(num, sizeof num, "%d", p->num);
        rtr_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\" fill=\"#222\" stroke=\"white\" "
                          "stroke-width=\"3\" paint-order=\"stroke\"%s>", cx, cy + 3.5,
                       p->number ? " font-weight=\"bold\"" : "");
        rtr_buf_xml(b, p->number ? num : p->text);
        rtr_buf_printf(b, "</text>\n");
    }
    if (lg.bottom) legend_draw(b, &lg, 16, f.top + f.h + 50);
    else legend_draw(b, &lg, f.left + f.w + f.gap, f.top);
    if (nk && key_items) {
        rtr_buf_printf(b, "<text x=\"16\" y=\"%.1f\" fill=\"#444\">Points numbered where their names do not fit:</text>\n",
                       key_y - 4);
        legend_draw(b, &key, 16, key_y + 2);
    }
    rtr_buf_printf(b, "</svg>\n");
    free(items);
    free(pl);
    free(keys);
    free(key_items);
    free(key_text);
    free(taken.b);
    free(segs.seg);
}

/* Fill of stacked area j: its colour, hatched for the repeats beyond the
 * palette (pattern defined once per chart). */
static void area_fill(char *out, size_t n, const frame *f, int j) {
    if (j < RTR_SVG_COLORS) snprintf(out, n, "%s", rtr_svg_color(j));
    else snprintf(out, n, "url(#rtr-chart%d-hatch%d)", f->id, j);
}

void rtr_svg_stacked(rtr_buf *b, const rtr_chart *c, const double *x, int64_t nx, const double *frac, int k,
                     const char *const *names) {
    double x0 = nx ? x[0] : 0, x1 = nx ? x[nx - 1] : 1;
    if (!isnan(c->xmin)) x0 = c->xmin;
    if (!isnan(c->xmax)) x1 = c->xmax;
    bool *used = calloc((size_t)(k ? k : 1), sizeof *used);
    legend_item *items = calloc((size_t)(k ? k : 1), sizeof *items);
    char (*fills)[48] = calloc((size_t)(k ? k : 1), sizeof *fills);
    if (!used || !items || !fills) { b->failed = true; free(used); free(items); free(fills); return; }
    int W = c->width ? c->width : 720, H = c->height ? c->height : 440;
    legend lg = {items, 0, false, 1, 0, 0, 0};
    for (int j = k - 1; j >= 0; j--) { /* top of the stack first, as the eye reads it */
        for (int64_t i = 0; i < nx; i++) used[j] |= frac[i * k + j] > 0;
        if (used[j]) items[lg.n++] = (legend_item){.name = names[j], .color = rtr_svg_color(j), .kind = SW_AREA};
    }
    legend_layout(&lg, W, H - 64 - 50);
    frame f = frame_layout(c, x0, x1, false, 0, 1, lg.bottom ? 0 : lg.col_w);
    for (int j = 0; j < k; j++) area_fill(fills[j], sizeof fills[j], &f, j);
    for (int i = 0; i < lg.n; i++)
        for (int j = 0; j < k; j++)
            if (items[i].name == names[j] && used[j]) items[i].fill = fills[j];
    int height = (int)ceil(f.top + f.h + 50 + (lg.bottom ? lg.height + 8 : 0));
    if (!lg.bottom && f.top + lg.height + 8 > height) height = (int)ceil(f.top + lg.height + 8);
    draw_axes(b, c, &f, height);
    if (k > RTR_SVG_COLORS) {
        rtr_buf_printf(b, "<defs>");
        for (int j = RTR_SVG_COLORS; j < k; j++) /* repeats: the colour under white stripes, one angle per round */
            rtr_buf_printf(b, "<pattern id=\"rtr-chart%d-hatch%d\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
                              "patternTransform=\"rotate(%d)\"><rect width=\"6\" height=\"6\" fill=\"%s\"/>"
                              "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"white\" stroke-width=\"2\"/></pattern>",
                           f.id, j, 45 + 90 * ((j / RTR_SVG_COLORS - 1) % 2) + 30 * ((j / RTR_SVG_COLORS - 1) / 2),
                           rtr_svg_color(j));
        rtr_buf_printf(b, "</defs>\n");
    }
    for (int j = 0; j < k; j++) {
        if (!used[j]) continue;
        double peak = 0;
        rtr_buf_printf(b, "<path fill=\"%s\" fill-opacity=\"0.9\" stroke=\"white\" stroke-width=\"0.5\" d=\"", fills[j]);
        for (int64_t i = 0; i < nx; i++) { /* upper edge left to right */
            double top = 0;
            for (int t = 0; t <= j; t++) top += frac[i * k + t];
            peak = fmax(peak, frac[i * k + j]);
            rtr_buf_printf(b, "%c%.1f,%.1f", i ? 'L' : 'M', ax_px(&f.x, x[i]), ax_px(&f.y, fmin(top, 1)));
        }
        for (int64_t i = nx - 1; i >= 0; i--) { /* lower edge back */
            double bot = 0;
            for (int t = 0; t < j; t++) bot += frac[i * k + t];
            rtr_buf_printf(b, "L%.1f,%.1f", ax_px(&f.x, x[i]), ax_px(&f.y, fmin(bot, 1)));
        }
        rtr_buf_printf(b, "Z\"><title>");
        rtr_buf_xml(b, names[j]);
        rtr_buf_printf(b, ": up to %.1f%% of queries</title></path>\n", 100 * peak);
    }
    if (lg.bottom) legend_draw(b, &lg, 16, f.top + f.h + 50);
    else legend_draw(b, &lg, f.left + f.w + f.gap, f.top);
    rtr_buf_printf(b, "</svg>\n");
    free(used);
    free(items);
    free(fills);
}
