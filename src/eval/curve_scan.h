/* The curve metrics of metrics.c (AIQ's hull, the area over [0,1] behind
 * APGR, CPT) over points given one at a time in order of x, ties highest y
 * first, so that a caller whose points do not fit in memory (rtr sweep's λ
 * path, sorted through runs.h) computes them in one pass; the array
 * functions of metrics.h sort their points and use the same scans, so both
 * give the same values bit for bit. Non-finite points are skipped.
 * Internal. */
#ifndef RTR_CURVE_SCAN_H
#define RTR_CURVE_SCAN_H

#include "rtr/rtr.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    double x, y;
} curve_xy;

/* Point j of a (cost, accuracy) curve in the order the scans below take:
 * cost ascending, then accuracy descending (ties: highest y first), then j,
 * so the order is total and a sort of the points gives one answer. Eval's
 * curves, sweep's path and rtr_pareto_front sort by it; callers leave NaN
 * out. */
typedef struct {
    double cost, acc;
    int64_t j;
} curve_point;

int curve_point_cmp(const void *a, const void *b);

/* The upper concave hull so far (its vertices only: a point that can no
 * longer be on it is dropped). Zero-initialise; aiq frees. */
typedef struct {
    curve_xy *pt;
    int64_t n, cap;
    bool any, nomem;
} hull_scan;

void hull_scan_add(hull_scan *h, double x, double y);
/* rtr_metric_aiq (from_zero: rtr_metric_aiq_from_zero) of the points added,
 * with its errors; frees h. */
rtr_status hull_scan_aiq(hull_scan *h, double x_max, bool from_zero, double *aiq);

/* The area under the piecewise-linear curve over [0,1] (rtr_curve_area01)
 * and, for up to two targets, rtr_metric_cpt's x where the curve first
 * reaches each: O(1) memory. */
typedef struct {
    double area, target[2], cpt[2];
    int n_target;
    bool open, prev;      /* a group at x = gx is open; one ended before it */
    double gx, gmax, gmin; /* the open group: its x, first (highest) and last y */
    double px, py;         /* the group before: its x and last y */
} area_scan;

void area_scan_init(area_scan *a, const double *target, int n_target);
void area_scan_add(area_scan *a, double x, double y);
/* The area (NaN without a point); a->cpt[i] NaN where never reached. */
double area_scan_finish(area_scan *a);

/* The per-point rules of cost to match and the oracle gap (METRICS.md),
 * one point at a time: the cheapest point whose accuracy reaches the best
 * single pair's (to RTR_ACC_ATOL), the most accurate point within the
 * Oracle's cost. rtr_metric_cost_to_match and rtr_metric_oracle_gap run
 * them over arrays, rtr sweep over its streamed path. */
typedef struct {
    double acc_best, cost_oracle; /* the targets */
    double cheapest, best;        /* the running results (±INFINITY: none yet) */
} match_scan;

void match_scan_init(match_scan *m, double acc_best, double cost_oracle);
void match_scan_add(match_scan *m, double cost, double acc);
/* The cost to match as a fraction of cost_best; NaN when never reached. */
double match_scan_to_match(const match_scan *m, double cost_best);
/* acc_oracle minus the best accuracy within the Oracle's cost; NaN when none. */
double match_scan_gap(const match_scan *m, double acc_oracle);

/* APGR's and CPT's pieces (METRICS.md): the accuracy a fraction frac of
 * the way from the weak pair's to the strong pair's; APGR from the area
 * over [0, 1] (NaN when the two accuracies are equal). */
double curve_target(double acc_weak, double acc_strong, double frac);
/* x of the multi-pair form: cost normalised between the cheapest pair's
 * (0) and the best single pair's (1). */
double curve_norm_cost(double cost, double cost_cheapest, double cost_best);
double curve_apgr(double area, double acc_weak, double acc_strong);

#endif
