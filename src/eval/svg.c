/* SVG charts: axes with "nice" ticks, grid, series, legend. See svg.h. */
#include "eval/svg.h"

#include <math.h>
#include <string.h>

static const char *PALETTE[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                                "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
                                "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"};
#define N_COLORS (int)(sizeof PALETTE / sizeof *PALETTE)
#define MAX_DRAWN 2000

const char *rtr_svg_color(int i) { return PALETTE[((i % N_COLORS) + N_COLORS) % N_COLORS]; }

/* Plot frame: pixel box and data ranges. */
typedef struct {
    double left, top, w, h;
    double x0, x1, y0, y1;
} frame;

static double px(const frame *f, double x) { return f->left + (x - f->x0) / (f->x1 - f->x0) * f->w; }
static double py(const frame *f, double y) { return f->top + f->h - (y - f->y0) / (f->y1 - f->y0) * f->h; }

/* Tick step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double nice_step(double span, int want) {
    double raw = span / want, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

static void fix_range(double *lo, double *hi) {
    if (!isfinite(*lo) || !isfinite(*hi)) { *lo = 0; *hi = 1; }
    if (*hi - *lo < 1e-12) { double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1; *lo -= d; *hi += d; }
}

static void data_range(const rtr_series *s, int ns, bool use_x, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (int64_t j = 0; j < s[i].n; j++) {
            double v = use_x ? s[i].x[j] : s[i].y[j];
            if (isfinite(v) && isfinite(use_x ? s[i].y[j] : s[i].x[j])) {
                if (v < *lo) *lo = v;
                if (v > *hi) *hi = v;
            }
        }
}

static void fmt_tick(char *out, size_t n, double v, double step) {
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) >= 1e5 || (v != 0 && fabs(v) < 1e-4)) snprintf(out, n, "%.2g", v);
    else snprintf(out, n, "%.*f", decimals, v);
}

/* Background, grid, ticks, axis labels and title; returns the frame. */
static frame draw_axes(rtr_buf *b, const rtr_chart *c, double x0, double x1, double y0, double y1, int legend_w) {
    int W = c->width ? c->width : 720, H = c->height ? c->height : 440;
    frame f = {64, c->title ? 34 : 14, W - 64 - 16 - legend_w, H - (c->title ? 34 : 14) - 50, x0, x1, y0, y1};
    double xs = nice_step(x1 - x0, 6), ys = nice_step(y1 - y0, 5);
    f.x0 = floor(x0 / xs) * xs;
    f.x1 = ceil(x1 / xs) * xs;
    f.y0 = floor(y0 / ys) * ys;
    f.y1 = ceil(y1 / ys) * ys;
    rtr_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                      "font-family=\"Helvetica,Arial,sans-serif\" font-size=\"12\">\n", W, H, W, H);
    rtr_buf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    if (c->title) {
        rtr_buf_printf(b, "<text x=\"%.1f\" y=\"20\" font-size=\"15\" font-weight=\"bold\">", f.left);
        rtr_buf_xml(b, c->title);
        rtr_buf_printf(b, "</text>\n");
    }
    char t[32];
    for (double v = f.x0; v <= f.x1 + xs * 1e-6; v += xs) {
        double X = px(&f, v);
        fmt_tick(t, sizeof t, fabs(v) < xs * 1e-9 ? 0 : v, xs);
        rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#444\">%s</text>\n",
                       X, f.top, X, f.top + f.h, X, f.top + f.h + 16, t);
    }
    for (double v = f.y0; v <= f.y1 + ys * 1e-6; v += ys) {
        double Y = py(&f, v);
        fmt_tick(t, sizeof t, fabs(v) < ys * 1e-9 ? 0 : v, ys);
        rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#444\">%s</text>\n",
                       f.left, Y, f.left + f.w, Y, f.left - 6, Y + 4, t);
    }
    rtr_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n",
                   f.left, f.top, f.w, f.h);
    if (c->xlabel) {
        rtr_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", f.left + f.w / 2, f.top + f.h + 38);
        rtr_buf_xml(b, c->xlabel);
        rtr_buf_printf(b, "</text>\n");
    }
    if (c->ylabel) {
        rtr_buf_printf(b, "<text transform=\"translate(16,%.1f) rotate(-90)\" text-anchor=\"middle\">", f.top + f.h / 2);
        rtr_buf_xml(b, c->ylabel);
        rtr_buf_printf(b, "</text>\n");
    }
    return f;
}

static void legend_entry(rtr_buf *b, const frame *f, int row, const char *color, const char *name, bool area) {
    double x = f->left + f->w + 14, y = f->top + 8 + 18 * row;
    if (area)
        rtr_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"10\" fill=\"%s\"/>", x, y - 5, color);
    else
        rtr_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"/>",
                       x, y, x + 14, y, color);
    rtr_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 20, y + 4);
    rtr_buf_xml(b, name);
    rtr_buf_printf(b, "</text>\n");
}

static int legend_width(const char *const *names, int n) {
    size_t longest = 0;
    int any = 0;
    for (int i = 0; i < n; i++)
        if (names[i]) { any = 1; if (strlen(names[i]) > longest) longest = strlen(names[i]); }
    return any ? 40 + (int)(longest > 34 ? 34 : longest) * 7 : 0;
}

void rtr_svg_chart(rtr_buf *b, const rtr_chart *c, const rtr_series *s, int ns) {
    double x0, x1, y0, y1;
    data_range(s, ns, true, &x0, &x1);
    data_range(s, ns, false, &y0, &y1);
    if (!isnan(c->xmin)) x0 = c->xmin;
    if (!isnan(c->xmax)) x1 = c->xmax;
    if (!isnan(c->ymin)) y0 = c->ymin;
    if (!isnan(c->ymax)) y1 = c->ymax;
    fix_range(&x0, &x1);
    fix_range(&y0, &y1);
    const char *names[64];
    int nn = ns < 64 ? ns : 64;
    for (int i = 0; i < nn; i++) names[i] = s[i].name;
    int right = legend_width(names, nn);
    for (int i = 0; i < ns; i++)
        if (s[i].labels && right < 110) right = 110; /* room for point labels at the right edge */
    frame f = draw_axes(b, c, x0, x1, y0, y1, right);
    int row = 0;
    for (int i = 0; i < ns; i++) {
        const char *col = rtr_svg_color(i);
        const rtr_series *r = &s[i];
        if (r->style != RTR_SERIES_POINTS) {
            rtr_buf_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s d=\"", col,
                           r->style == RTR_SERIES_DASHED ? "1.5" : "2",
                           r->style == RTR_SERIES_DASHED ? " stroke-dasharray=\"5,4\"" : "");
            bool pen = false;
            double last_y = 0;
            /* Paths of millions of points are thinned to about MAX_DRAWN, keeping the last. */
            int64_t step = r->n > MAX_DRAWN ? (r->n + MAX_DRAWN - 1) / MAX_DRAWN : 1;
            for (int64_t j = 0; j < r->n; j = (j + step < r->n || j == r->n - 1) ? j + step : r->n - 1) {
                if (!isfinite(r->x[j]) || !isfinite(r->y[j])) { pen = false; continue; }
                double X = px(&f, r->x[j]), Y = py(&f, r->y[j]);
                if (pen && r->style == RTR_SERIES_STEPS) rtr_buf_printf(b, "L%.1f,%.1f", X, last_y);
                rtr_buf_printf(b, "%c%.1f,%.1f", pen ? 'L' : 'M', X, Y);
                pen = true;
                last_y = Y;
            }
            rtr_buf_printf(b, "\"/>\n");
        }
        if (r->style == RTR_SERIES_POINTS || (r->style == RTR_SERIES_LINE && r->n <= 60)) {
            for (int64_t j = 0; j < r->n; j++) {
                if (!isfinite(r->x[j]) || !isfinite(r->y[j])) continue;
                double X = px(&f, r->x[j]), Y = py(&f, r->y[j]);
                rtr_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"><title>", X, Y,
                               r->style == RTR_SERIES_POINTS ? "4.5" : "2.5", col);
                if (r->labels && r->labels[j]) rtr_buf_xml(b, r->labels[j]);
                else if (r->name) rtr_buf_xml(b, r->name);
                rtr_buf_printf(b, ": (%.6g, %.4g)</title></circle>\n", r->x[j], r->y[j]);
                if (r->labels && r->labels[j]) {
                    rtr_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#333\">", X + 6, Y - 5);
                    rtr_buf_xml(b, r->labels[j]);
                    rtr_buf_printf(b, "</text>\n");
                }
            }
        }
        if (r->name) legend_entry(b, &f, row++, col, r->name, false);
    }
    rtr_buf_printf(b, "</svg>\n");
}

void rtr_svg_stacked(rtr_buf *b, const rtr_chart *c, const double *x, int64_t nx, const double *frac, int k,
                     const char *const *names) {
    double x0 = nx ? x[0] : 0, x1 = nx ? x[nx - 1] : 1;
    if (!isnan(c->xmin)) x0 = c->xmin;
    if (!isnan(c->xmax)) x1 = c->xmax;
    fix_range(&x0, &x1);
    /* Only pairs that are ever chosen get a legend row. */
    const char *shown[64];
    int ns = 0;
    for (int j = 0; j < k && ns < 64; j++) {
        double mx = 0;
        for (int64_t i = 0; i < nx; i++) mx = fmax(mx, frac[i * k + j]);
        shown[ns++] = mx > 0 ? names[j] : NULL;
    }
    frame f = draw_axes(b, c, x0, x1, 0, 1, legend_width(shown, ns));
    int row = 0;
    for (int j = 0; j < k; j++) {
        bool used = false;
        for (int64_t i = 0; i < nx; i++) used |= frac[i * k + j] > 0;
        if (!used) continue;
        rtr_buf_printf(b, "<path fill=\"%s\" fill-opacity=\"0.85\" stroke=\"none\" d=\"", rtr_svg_color(j));
        for (int64_t i = 0; i < nx; i++) { /* upper edge left to right */
            double top = 0;
            for (int t = 0; t <= j; t++) top += frac[i * k + t];
            rtr_buf_printf(b, "%c%.1f,%.1f", i ? 'L' : 'M', px(&f, x[i]), py(&f, fmin(top, 1)));
        }
        for (int64_t i = nx - 1; i >= 0; i--) { /* lower edge back */
            double bot = 0;
            for (int t = 0; t < j; t++) bot += frac[i * k + t];
            rtr_buf_printf(b, "L%.1f,%.1f", px(&f, x[i]), py(&f, fmin(bot, 1)));
        }
        rtr_buf_printf(b, "Z\"/>\n");
        legend_entry(b, &f, row++, rtr_svg_color(j), names[j], true);
    }
    rtr_buf_printf(b, "</svg>\n");
}
