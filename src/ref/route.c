/* The plain-C references of the routing kernels (kernels/route.cu): the
 * decision at one λ (rtr_route_argmax, with the tie rule of include/rtr/ops.h)
 * and every query's upper envelope of score lines over λ ∈ [0,1]
 * (rtr_route_envelope, one rtr_envelope per query). The kernels use the same
 * double arithmetic in the same order, so their results are bit-identical. */
#include "rtr/ops.h"
#include "rtr/route.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/util.h"

/* Whether candidate (s, c, p, j) beats the incumbent under the header's tie
 * rule; j > incumbent index always holds in the scans below. */
static bool beats(double s, double c, double p, double bs, double bc, double bp) {
    if (s != bs) return s > bs;
    if (c != bc) return c < bc;
    return p > bp;
}

void rtr_route_argmax(int32_t *choice, const float *p, const float *c, double lambda,
                  int64_t n, int32_t k) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *pi = p + i * k, *ci = c + i * k;
        int32_t best = -1;
        double bs = 0, bc = 0, bp = 0;
        for (int32_t j = 0; j < k; j++) {
            if (isnan(pi[j]) || isnan(ci[j])) continue;
            double pj = pi[j], cj = ci[j], s = lambda * (pj + cj) - cj;
            if (best < 0 || beats(s, cj, pj, bs, bc, bp)) { best = j; bs = s; bc = cj; bp = pj; }
        }
        choice[i] = best;
    }
}

/* ------------------------------------------------------------ envelope */

/* Slope ascending; for equal slopes the higher intercept (cheaper) first,
 * then the lower index, so the first of a run of equal slopes dominates. */
static int line_cmp(const void *x, const void *y) {
    const rtr_line *u = x, *v = y;
    if (u->a != v->a) return u->a < v->a ? -1 : 1;
    if (u->b != v->b) return u->b > v->b ? -1 : 1;
    return (u->j > v->j) - (u->j < v->j);
}

static void lines_sort(rtr_line *l, int32_t m) {
    if (m > 32) { qsort(l, (size_t)m, sizeof *l, line_cmp); return; }
    for (int32_t i = 1; i < m; i++) { /* insertion sort: faster for the usual k <= 32 */
        rtr_line x = l[i];
        int32_t t = i;
        for (; t > 0 && line_cmp(&l[t - 1], &x) > 0; t--) l[t] = l[t - 1];
        l[t] = x;
    }
}

/* λ where line v overtakes line u (u->a < v->a). */
static double cross_at(const rtr_line *u, const rtr_line *v) { return (u->b - v->b) / (v->a - u->a); }

int32_t rtr_envelope(int32_t *pair, double *start, rtr_line *l, const float *p, const float *c,
                     int32_t k) {
    int32_t m = 0;
    for (int32_t j = 0; j < k; j++)
        if (!isnan(p[j]) && !isnan(c[j])) l[m++] = (rtr_line){(double)p[j] + c[j], -(double)c[j], j};
    if (!m) return 0;
    lines_sort(l, m);
    /* Convex-hull scan over slopes: h (in place in l) keeps the lines that
     * are the maximum somewhere on the real line, in slope order. A middle
     * line that only touches the envelope at one point is dropped. */
    int32_t h = 0;
    for (int32_t t = 0; t < m; t++) {
        if (h && l[h - 1].a == l[t].a) continue; /* same slope, dominated */
        while (h >= 2 && (l[h - 2].b - l[h - 1].b) * (l[t].a - l[h - 1].a) >=
                             (l[h - 1].b - l[t].b) * (l[h - 1].a - l[h - 2].a))
            h--;
        l[h++] = l[t];
    }
    /* Clip to [0,1]: a piece ending at or before 0 or starting at or after 1
     * is outside; rounding may leave a piece of no length, which is skipped. */
    int32_t out = 0;
    double cur = 0;
    for (int32_t t = 0; t < h; t++) {
        double end = t + 1 < h ? cross_at(&l[t], &l[t + 1]) : INFINITY;
        if (end <= cur) continue;
        pair[out] = l[t].j;
        start[out++] = cur;
        if (end >= 1) break;
        cur = end;
    }
    return out;
}

rtr_status rtr_route_envelope(int32_t *pair, double *start, int32_t *m, const float *p, const float *c, int64_t n,
                          int32_t k) {
    bool nomem = false;
#pragma omp parallel
    {
        rtr_line *l = malloc(sizeof *l * (size_t)k);
        if (!l) nomem = true; /* benign race: every writer stores true */
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++)
            if (l) m[i] = rtr_envelope(pair + i * k, start + i * k, l, p + i * k, c + i * k, k);
        free(l);
    }
    return nomem ? rtr_fail(RTR_ERR_NOMEM, "route_envelope: out of memory for %d lines", (int)k) : RTR_OK;
}

