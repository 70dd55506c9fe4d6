/* Small SVG charts for rtr's plots (sweep curves, the HTML report): line and
 * point series on linear or logarithmic axes, error bars, operating points,
 * point labels that never overlap, and stacked areas. Output is
 * self-contained SVG text appended to an rtr_buf, readable in any browser
 * and by rsvg-convert. Text sizes are estimated from the widths of DejaVu
 * Sans (wider than Helvetica and Arial), so labels keep clear of each other
 * and of the edges whichever of these fonts the viewer has. */
#ifndef RTR_SVG_H
#define RTR_SVG_H

#include "common/util.h"

typedef enum {
    RTR_SERIES_LINE,   /* polyline through the points in order, with markers */
    RTR_SERIES_STEPS,  /* staircase (a path that only changes at points) */
    RTR_SERIES_POINTS, /* markers only */
    RTR_SERIES_DASHED  /* dashed polyline, no markers (references, diagonals) */
} rtr_series_style;

/* The x axis: linear, logarithmic, or AUTO: logarithmic when every x value
 * is > 0 and they span more than a decade (costs), else linear. */
typedef enum { RTR_AXIS_LINEAR, RTR_AXIS_LOG, RTR_AXIS_AUTO } rtr_axis_scale;

/* An operating point of a series: drawn as a ring in the series' colour with
 * its interval (NaN ends: none) and a hover title. */
typedef struct {
    double x, y;
    double x_lo, x_hi, y_lo, y_hi;
    const char *note; /* hover text after the series name; NULL: none */
} rtr_mark;

typedef struct {
    const char *name;   /* legend text; NULL: not in the legend */
    const double *x, *y;
    int64_t n;          /* NaN points are skipped */
    rtr_series_style style;
    /* Optional per-point names (POINTS): written beside the markers where
     * they fit without touching another label or marker, else as a number
     * keyed below the chart; always in the marker's hover title. */
    const char *const *labels;
    /* Optional intervals, [n x 2] (lo, hi) per point: error bars; NaN ends
     * are left open. */
    const double *x_ci, *y_ci;
    const rtr_mark *op; /* optional operating point */
} rtr_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax; /* NaN: from the data (a log axis ignores xmin <= 0) */
    int width, height;             /* pixels; 0: 720 x 440 (grown to fit legends and keys) */
    rtr_axis_scale xscale;
} rtr_chart;

/* A chart of ns series; colours follow the series order (rtr_svg_color). */
void rtr_svg_chart(rtr_buf *out, const rtr_chart *c, const rtr_series *s, int ns);

/* Stacked areas: at each x[i] the k fractions frac[i*k + j] (summing to 1)
 * are stacked bottom-up in pair order, in colour rtr_svg_color(j); names[j]
 * labels the legend (listed top-down like the stack) and each area's hover
 * title. Pairs never chosen are left out. */
void rtr_svg_stacked(rtr_buf *out, const rtr_chart *c, const double *x, int64_t nx, const double *frac, int k,
                     const char *const *names);

/* Colour of series i: RTR_SVG_COLORS colours at least 16 CIEDE2000 units
 * apart (every pair distinguishable side by side), then repeated; charts
 * with more series add a hatch or dash pattern to the repeats. */
#define RTR_SVG_COLORS 28
const char *rtr_svg_color(int i);

/* Estimated width in pixels of text in the charts' font at size px
 * (UTF-8; an upper bound for DejaVu Sans, Helvetica and Arial). */
double rtr_svg_text_width(const char *text, double px);

#endif
