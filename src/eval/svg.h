/* Small SVG charts for rtr's plots (sweep curves, the HTML report): line and
 * point series on linear axes, and stacked areas. Output is self-contained
 * SVG text appended to an rtr_buf, readable in any browser. */
#ifndef RTR_SVG_H
#define RTR_SVG_H

#include "common/util.h"

typedef enum {
    RTR_SERIES_LINE,   /* polyline through the points in order, with markers */
    RTR_SERIES_STEPS,  /* staircase (a path that only changes at points) */
    RTR_SERIES_POINTS, /* markers only */
    RTR_SERIES_DASHED  /* dashed polyline, no markers (references, diagonals) */
} rtr_series_style;

typedef struct {
    const char *name;   /* legend text; NULL: not in the legend */
    const double *x, *y;
    int64_t n;          /* NaN points are skipped */
    rtr_series_style style;
    const char *const *labels; /* optional per-point text (POINTS only) */
} rtr_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax; /* NaN: from the data */
    int width, height;             /* pixels; 0: 720 x 440 */
} rtr_chart;

/* A chart of ns series; colours follow the series order. */
void rtr_svg_chart(rtr_buf *out, const rtr_chart *c, const rtr_series *s, int ns);

/* Stacked areas: at each x[i] the k fractions frac[i*k + j] (summing to 1)
 * are stacked bottom-up in pair order; names[j] labels the legend. */
void rtr_svg_stacked(rtr_buf *out, const rtr_chart *c, const double *x, int64_t nx, const double *frac, int k,
                     const char *const *names);

/* Colour of series i (shared by the legend and any HTML table that refers to it). */
const char *rtr_svg_color(int i);

#endif
