/* Routers' curves as per-query choices, and the seeded paired bootstrap over
 * evaluated queries (include/rtr/metrics.h). A curve stored as "where each
 * query goes at point 0, then which queries move at each later point" can
 * be re-evaluated under any weighting of the queries in O(n + events), so a
 * thousand resamples of every router's whole curve cost about a thousand
 * passes over the switch events, not a thousand λ paths. */
#include "rtr/metrics.h"
#include "rtr/route.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "eval/evaluate.h"
#include "rtr/dist.h"

void rtr_choice_path_free(rtr_choice_path *cp) {
    free(cp->choice0);
    free(cp->ev_off);
    free(cp->ev_query);
    free(cp->ev_to);
    free(cp->lambda);
    memset(cp, 0, sizeof *cp);
}

/* A query's index is stored in 32 bits (ev_query, the events being sorted). */
static rtr_status choice_path_fits(int64_t n) {
    return n <= (int64_t)UINT32_MAX ? RTR_OK
                                    : rtr_fail(RTR_ERR_INVALID, "choice path: %lld queries, more than 2^32 - 1", (long long)n);
}

static rtr_status choice_path_alloc(rtr_choice_path *cp, int64_t n, int32_t k, int64_t n_points, int64_t n_events) {
    memset(cp, 0, sizeof *cp);
    rtr_status st = choice_path_fits(n);
    if (st) return st;
    cp->n = n, cp->k = k, cp->n_points = n_points;
    cp->choice0 = rtr_malloc((size_t)(n ? n : 1) * sizeof *cp->choice0);
    cp->ev_off = rtr_calloc((size_t)n_points + 1, sizeof *cp->ev_off);
    cp->ev_query = rtr_malloc((size_t)(n_events ? n_events : 1) * sizeof *cp->ev_query);
    cp->ev_to = rtr_malloc((size_t)(n_events ? n_events : 1) * sizeof *cp->ev_to);
    if (cp->choice0 && cp->ev_off && cp->ev_query && cp->ev_to) return RTR_OK;
    rtr_choice_path_free(cp);
    return RTR_ERR_NOMEM;
}

rtr_status rtr_choice_path_fixed(rtr_choice_path *cp, const int32_t *choice, int64_t n, int32_t k) {
    rtr_status st = choice_path_alloc(cp, n, k, 1, 0);
    if (!st) memcpy(cp->choice0, choice, (size_t)n * sizeof *choice);
    return st;
}

/* --------------------------------------------------------- the λ path */

/* 16 bytes (a 64-bit query made it 24): every switch event of a path is
 * held at once while they are sorted, which makes eval's peak memory on
 * large splits (docs/SCALE.md). */
typedef struct {
    double lambda;
    uint32_t query;
    int32_t to;
} switch_event;
_Static_assert(sizeof(switch_event) == 16, "one event in 16 bytes");

/* λ, then query order: the same point grouping as the path's sweep. */
static int event_cmp(const void *x, const void *y) {
    const switch_event *u = x, *v = y;
    if (u->lambda != v->lambda) return u->lambda < v->lambda ? -1 : 1;
    return (u->query > v->query) - (u->query < v->query);
}

struct eval_choice_builder {
    int32_t k;
    int64_t n, cap0;   /* queries added; room in choice0 */
    int32_t *choice0;
    switch_event *ev;
    int64_t n_ev, cap;
    int64_t q0;        /* the first query of the block being added */
};

static rtr_status lambda_sink(void *ctx, int64_t q0, int64_t n, int32_t k, const int32_t *pair, const double *start,
                              const int32_t *m) {
    eval_choice_builder *x = ctx;
    q0 += x->q0;
    for (int64_t i = 0; i < n; i++) {
        if (!m[i]) return rtr_fail(RTR_ERR_INVALID, "query %lld has no allowed pair", (long long)(q0 + i));
        const int32_t *pi = pair + (size_t)i * k;
        const double *si = start + (size_t)i * k;
        x->choice0[q0 + i] = pi[0];
        for (int32_t t = 1; t < m[i]; t++) {
            if (x->n_ev == x->cap) {
                int64_t cap = x->cap ? 2 * x->cap : 1024;
                switch_event *grown = rtr_realloc(x->ev, (size_t)cap * sizeof *grown);
                if (!grown) return RTR_ERR_NOMEM;
                x->ev = grown, x->cap = cap;
            }
            x->ev[x->n_ev++] = (switch_event){si[t], (uint32_t)(q0 + i), pi[t]};
        }
    }
    return RTR_OK;
}

rtr_status eval_choice_builder_open(eval_choice_builder **cb, int32_t k, int64_t n_hint) {
    *cb = rtr_calloc(1, sizeof **cb);
    if (!*cb) return RTR_ERR_NOMEM;
    (*cb)->k = k;
    (*cb)->cap0 = n_hint > 0 ? n_hint : 1;
    if (!((*cb)->choice0 = rtr_malloc((size_t)(*cb)->cap0 * sizeof *(*cb)->choice0))) {
        eval_choice_builder_free(*cb);
        *cb = NULL;
        return RTR_ERR_NOMEM;
    }
    return RTR_OK;
}

rtr_status eval_choice_builder_add(eval_choice_builder *cb, rtr_backend *b, const float *p, const float *c, int64_t n) {
    if (n <= 0) return RTR_OK;
    rtr_status fits = choice_path_fits(cb->n + n);
    if (fits) return fits;
    if (cb->n + n > cb->cap0) {
        int64_t cap = 2 * cb->cap0 > cb->n + n ? 2 * cb->cap0 : cb->n + n;
        int32_t *g = rtr_realloc(cb->choice0, (size_t)cap * sizeof *g);
        if (!g) return RTR_ERR_NOMEM;
        cb->choice0 = g, cb->cap0 = cap;
    }
    cb->q0 = cb->n;
    rtr_status st = rtr_envelopes_on(b, p, c, n, cb->k, 0, lambda_sink, cb);
    if (!st) cb->n += n;
    return st;
}

void eval_choice_builder_free(eval_choice_builder *cb) {
    if (!cb) return;
    free(cb->choice0);
    free(cb->ev);
    free(cb);
}

rtr_status eval_choice_builder_gather_ranks(eval_choice_builder *cb) {
    if (rtr_dist_size() == 1) return RTR_OK;
    /* this rank's block: n, n_ev, its events, its first choices */
    size_t ev_bytes = (size_t)cb->n_ev * sizeof *cb->ev, mine_n = 2 * sizeof(int64_t) + ev_bytes + (size_t)cb->n * sizeof(int32_t);
    char *mine = rtr_malloc(mine_n), *all = NULL;
    size_t len = 0;
    rtr_status st = mine ? RTR_OK : RTR_ERR_NOMEM;
    if (!st) {
        int64_t head[2] = {cb->n, cb->n_ev};
        memcpy(mine, head, sizeof head);
        if (ev_bytes) memcpy(mine + sizeof head, cb->ev, ev_bytes);
        if (cb->n) memcpy(mine + sizeof head + ev_bytes, cb->choice0, (size_t)cb->n * sizeof(int32_t));
        st = rtr_dist_gather_all((void **)&all, &len, mine, mine_n);
    }
    free(mine);
    /* the totals, then every rank's block at its offset: rank r's queries
     * follow ranks 0 .. r - 1's, as one process added them */
    int64_t n = 0, n_ev = 0;
    for (size_t at = 0; !st && at < len;) {
        int64_t head[2];
        memcpy(head, all + at, sizeof head);
        n += head[0], n_ev += head[1];
        at += sizeof head + (size_t)head[1] * sizeof *cb->ev + (size_t)head[0] * sizeof(int32_t);
    }
    if (!st) st = choice_path_fits(n);
    int32_t *choice0 = st ? NULL : rtr_malloc((size_t)(n ? n : 1) * sizeof *choice0);
    switch_event *ev = st ? NULL : rtr_malloc((size_t)(n_ev ? n_ev : 1) * sizeof *ev);
    if (!st && (!choice0 || !ev)) st = RTR_ERR_NOMEM;
    int64_t q = 0, e = 0;
    for (size_t at = 0; !st && at < len;) {
        int64_t head[2];
        memcpy(head, all + at, sizeof head);
        at += sizeof head;
        memcpy(ev + e, all + at, (size_t)head[1] * sizeof *ev);
        for (int64_t i = e; i < e + head[1]; i++) ev[i].query += (uint32_t)q;
        at += (size_t)head[1] * sizeof *ev;
        memcpy(choice0 + q, all + at, (size_t)head[0] * sizeof *choice0);
        at += (size_t)head[0] * sizeof *choice0;
        q += head[0], e += head[1];
    }
    free(all);
    if (st) {
        free(choice0);
        free(ev);
        return st;
    }
    free(cb->choice0);
    free(cb->ev);
    cb->choice0 = choice0, cb->ev = ev;
    cb->n = cb->cap0 = n;
    cb->n_ev = cb->cap = n_ev;
    return RTR_OK;
}

rtr_status eval_choice_builder_finish(eval_choice_builder *cb, rtr_choice_path *cp) {
    memset(cp, 0, sizeof *cp);
    int64_t n = cb->n;
    rtr_status st = n > 0 ? RTR_OK : rtr_fail(RTR_ERR_INVALID, "choice path: empty table (0 x %d)", (int)cb->k);
    if (!st && cb->n_ev) qsort(cb->ev, (size_t)cb->n_ev, sizeof *cb->ev, event_cmp); /* ev is NULL without events */
    int64_t n_points = 1;
    for (int64_t e = 0; !st && e < cb->n_ev; e++) n_points += !e || cb->ev[e].lambda != cb->ev[e - 1].lambda;
    if (!st) st = choice_path_alloc(cp, n, cb->k, n_points, cb->n_ev);
    if (!st && !(cp->lambda = rtr_malloc((size_t)n_points * sizeof *cp->lambda))) st = RTR_ERR_NOMEM;
    if (!st) {
        memcpy(cp->choice0, cb->choice0, (size_t)n * sizeof *cb->choice0);
        /* Point t (t >= 1) starts at the t-th distinct switch λ; point t − 1
         * holds λ up to it. */
        int64_t t = 0;
        for (int64_t e = 0; e < cb->n_ev; e++) {
            if (!e || cb->ev[e].lambda != cb->ev[e - 1].lambda) {
                cp->lambda[t++] = cb->ev[e].lambda;
                cp->ev_off[t] = e;
            }
            cp->ev_query[e] = cb->ev[e].query;
            cp->ev_to[e] = cb->ev[e].to;
        }
        cp->ev_off[n_points] = cb->n_ev;
        cp->lambda[n_points - 1] = 1.0;
    }
    if (st) rtr_choice_path_free(cp);
    eval_choice_builder_free(cb);
    return st;
}

rtr_status rtr_choice_path_lambda(rtr_backend *b, rtr_choice_path *cp, const float *p, const float *c, int64_t n,
                                  int32_t k) {
    memset(cp, 0, sizeof *cp);
    if (n <= 0 || k <= 0) return rtr_fail(RTR_ERR_INVALID, "choice path: empty table (%lld x %d)", (long long)n, (int)k);
    rtr_status fits = choice_path_fits(n);
    if (fits) return fits;
    eval_choice_builder *cb;
    rtr_status st = eval_choice_builder_open(&cb, k, n);
    if (!st && (st = eval_choice_builder_add(cb, b, p, c, n))) eval_choice_builder_free(cb);
    return st ? st : eval_choice_builder_finish(cb, cp);
}

/* ------------------------------------------------- the two-pair sweep */

typedef struct {
    float s;
    int64_t i;
} scored_q;

static int scored_desc(const void *x, const void *y) {
    const scored_q *u = x, *v = y;
    if (u->s != v->s) return u->s > v->s ? -1 : 1;
    return (u->i > v->i) - (u->i < v->i);
}

rtr_status rtr_choice_path_two_pair(rtr_choice_path *cp, double **x, const float *score, int64_t n, int32_t k,
                                    int32_t weak, int32_t strong) {
    memset(cp, 0, sizeof *cp);
    *x = NULL;
    if (n <= 0) return rtr_fail(RTR_ERR_INVALID, "two-pair sweep: no queries");
    for (int64_t i = 0; i < n; i++)
        if (isnan(score[i])) return rtr_fail(RTR_ERR_NUMERIC, "two-pair sweep: score of query %lld is NaN", (long long)i);
    scored_q *ord = rtr_malloc((size_t)n * sizeof *ord);
    if (!ord) return RTR_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) ord[i] = (scored_q){score[i], i};
    qsort(ord, (size_t)n, sizeof *ord, scored_desc);
    /* one point per group of equal scores (a threshold cannot split them) */
    int64_t n_points = 1;
    for (int64_t i = 0; i < n; i++) n_points += !i || ord[i].s != ord[i - 1].s;
    rtr_status st = choice_path_alloc(cp, n, k, n_points, n);
    if (!st && !(*x = rtr_malloc((size_t)n_points * sizeof **x))) st = RTR_ERR_NOMEM;
    if (!st) {
        for (int64_t i = 0; i < n; i++) cp->choice0[i] = weak;
        (*x)[0] = 0.0;
        int64_t t = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!i || ord[i].s != ord[i - 1].s) cp->ev_off[++t] = i;
            cp->ev_query[i] = (uint32_t)ord[i].i;
            cp->ev_to[i] = strong;
            (*x)[t] = (double)(i + 1) / (double)n;
        }
        cp->ev_off[n_points] = n;
    }
    if (st) {
        rtr_choice_path_free(cp);
        free(*x);
        *x = NULL;
    }
    free(ord);
    return st;
}

/* ---------------------------------------------------------- curves */

rtr_status rtr_choice_path_curve(double *acc, double *cst, double *missing,
                                 const rtr_choice_path *cp, const float *correct, const float *cost, const double *w) {
    int64_t n = cp->n;
    int32_t k = cp->k;
    int32_t *cur = rtr_malloc((size_t)(n ? n : 1) * sizeof *cur);
    if (!cur) return RTR_ERR_NOMEM;
    memcpy(cur, cp->choice0, (size_t)n * sizeof *cur);
    double sa = 0, sc = 0, have = 0, miss = 0;
#define ENTRY(i, j, sign)                                                                                   \
    do {                                                                                                    \
        double wi_ = w ? w[i] : 1.0;                                                                        \
        size_t at_ = (size_t)(i) * (size_t)k + (size_t)(j);                                                 \
        if ((j) < 0 || isnan(correct[at_]) || isnan(cost[at_])) miss += (sign)*wi_;                          \
        else sa += (sign)*wi_ * correct[at_], sc += (sign)*wi_ * cost[at_], have += (sign)*wi_;             \
    } while (0)
    for (int64_t i = 0; i < n; i++) ENTRY(i, cur[i], 1);
    for (int64_t t = 0; t < cp->n_points; t++) {
        for (int64_t e = cp->ev_off[t]; e < cp->ev_off[t + 1]; e++) {
            int64_t i = cp->ev_query[e];
            ENTRY(i, cur[i], -1);
            cur[i] = cp->ev_to[e];
            ENTRY(i, cur[i], 1);
        }
        /* weights are counts or 1: sums of them are exact, so "none left" is exact too */
        acc[t] = have > 0 ? sa / have : NAN;
        cst[t] = have > 0 ? sc / have : NAN;
        if (missing) missing[t] = miss;
    }
#undef ENTRY
    free(cur);
    return RTR_OK;
}

/* ---------------------------------------------------------- bootstrap */

void rtr_boot_free(rtr_boot *b) {
    free(b->aiq);
    free(b->aiq0);
    free(b->to_match);
    free(b->acc);
    free(b->cost);
    free(b->pair_acc);
    free(b->pair_cost);
    memset(b, 0, sizeof *b);
}

/* Per-pair weighted means (acc, cost) [k] under w; NaN for a pair with no
 * outcome. */
static void pair_points(double *acc, double *cst, const float *correct, const float *cost, const double *w, int64_t n,
                        int32_t k) {
    for (int32_t j = 0; j < k; j++) {
        double sa = 0, sc = 0, have = 0;
        for (int64_t i = 0; i < n; i++) {
            size_t at = (size_t)i * (size_t)k + (size_t)j;
            if (isnan(correct[at]) || isnan(cost[at]) || !w[i]) continue;
            sa += w[i] * correct[at], sc += w[i] * cost[at], have += w[i];
        }
        acc[j] = have > 0 ? sa / have : NAN;
        cst[j] = have > 0 ? sc / have : NAN;
    }
}

/* splitmix64's finaliser: a well-mixed 64-bit function of its input. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A Poisson(1) count from 53 uniform bits (inverse CDF; the terms e^-1/j!
 * are computed the same way everywhere, so the count is too). */
static double poisson1(uint64_t h) {
    double u = (double)(h >> 11) * 0x1.0p-53, p = 0.36787944117144233, cdf = p;
    int j = 0;
    while (u >= cdf && j < 40) p /= ++j, cdf += p;
    return (double)j;
}

/* Each query's weight is a Poisson(1) count drawn from a hash of (seed,
 * its key, resample), not one of n multinomial draws over the queries'
 * places: the weight of a query is the same however the queries are ordered,
 * chunked or split across ranks, so a rank holding only some queries can
 * add their part of any resample. */
void eval_boot_weights(double *w, const uint64_t *key, int64_t n, uint64_t seed, int32_t b) {
    uint64_t sb = mix64(mix64(seed ^ 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)(uint32_t)b + 0x632be59bd9b4e019ULL));
    for (int64_t i = 0; i < n; i++) w[i] = poisson1(mix64(sb ^ mix64(key ? key[i] : (uint64_t)i)));
}

rtr_status rtr_bootstrap(rtr_boot *out, const rtr_boot_router *r, int32_t n_routers, const float *correct,
                         const float *cost, int64_t n, int32_t k, int32_t best, int32_t resamples, uint64_t seed) {
    return eval_bootstrap_part(out, r, n_routers, correct, cost, NULL, n, k, best, resamples, seed, 0, 1);
}

/* Scratch of one resample's statistics: the pairs' points and every
 * router's curve, max_points apart. */
typedef struct {
    double *pa, *pc, *ca, *cc;
    int64_t max_points;
} boot_scratch;

static rtr_status boot_scratch_init(boot_scratch *s, const rtr_boot_router *r, int32_t n_routers, int32_t k) {
    memset(s, 0, sizeof *s);
    s->max_points = 1;
    for (int32_t q = 0; q < n_routers; q++)
        if (r[q].path && r[q].path->n_points > s->max_points) s->max_points = r[q].path->n_points;
    s->pa = rtr_malloc(2 * (size_t)k * sizeof *s->pa);
    s->ca = rtr_malloc(2 * (size_t)n_routers * (size_t)s->max_points * sizeof *s->ca);
    if (!s->pa || !s->ca) return RTR_ERR_NOMEM;
    s->pc = s->pa + k, s->cc = s->ca + (size_t)n_routers * s->max_points;
    return RTR_OK;
}

static void boot_scratch_free(boot_scratch *s) {
    free(s->pa);
    free(s->ca);
}

/* Every statistic of one weighting w of the queries into slot b of out:
 * what a resample computes, and (w = 1) the sample's own value. */
static rtr_status boot_resample(rtr_boot *out, int32_t b, const double *w, boot_scratch *s, const rtr_boot_router *r,
                                int32_t n_routers, const float *correct, const float *cost, int64_t n, int32_t k,
                                int32_t best) {
    double *pa = s->pa, *pc = s->pc;
    pair_points(pa, pc, correct, cost, w, n, k);
    memcpy(out->pair_acc + (size_t)b * k, pa, (size_t)k * sizeof *pa);
    memcpy(out->pair_cost + (size_t)b * k, pc, (size_t)k * sizeof *pc);
    double x_max = 0;
    for (int32_t j = 0; j < k; j++)
        if (!isnan(pc[j])) x_max = fmax(x_max, pc[j]);
    rtr_status st = RTR_OK;
    for (int32_t q = 0; !st && q < n_routers; q++) {
        double *a = s->ca + (size_t)q * s->max_points, *c = s->cc + (size_t)q * s->max_points;
        if (r[q].path) {
            st = rtr_choice_path_curve(a, c, NULL, r[q].path, correct, cost, w);
            for (int64_t t = 0; !st && t < r[q].path->n_points; t++)
                if (!isnan(c[t])) x_max = fmax(x_max, c[t]);
        } else { /* Random: the mean of the pairs' points */
            double sa = 0, sc = 0;
            int32_t used = 0;
            for (int32_t j = 0; j < k; j++)
                if (!isnan(pa[j])) sa += pa[j], sc += pc[j], used++;
            a[0] = used ? sa / used : NAN, c[0] = used ? sc / used : NAN;
        }
    }
    for (int32_t q = 0; !st && q < n_routers; q++) {
        const double *a = s->ca + (size_t)q * s->max_points, *c = s->cc + (size_t)q * s->max_points;
        int64_t np = r[q].path ? r[q].path->n_points : 1;
        size_t at = (size_t)b * n_routers + q;
        out->aiq[at] = out->aiq0[at] = NAN;
        if (x_max > 0 && rtr_metric_aiq(&out->aiq[at], c, a, np, x_max) != RTR_OK) out->aiq[at] = NAN;
        if (x_max > 0 && rtr_metric_aiq_from_zero(&out->aiq0[at], c, a, np, x_max) != RTR_OK) out->aiq0[at] = NAN;
        out->to_match[at] = rtr_metric_cost_to_match(c, a, np, pa[best], pc[best]);
        for (int32_t m = 0; m < RTR_BOOT_MARKS; m++) {
            int64_t t = m < r[q].n_marks ? r[q].marks[m] : -1;
            bool ok = t >= 0 && t < np;
            out->acc[at * RTR_BOOT_MARKS + m] = ok ? a[t] : NAN;
            out->cost[at * RTR_BOOT_MARKS + m] = ok ? c[t] : NAN;
        }
    }
    return st;
}

static rtr_status boot_alloc(rtr_boot *out, int32_t n_routers, int32_t resamples, int32_t k) {
    size_t RB = (size_t)resamples * (size_t)n_routers;
    out->n_routers = n_routers, out->resamples = resamples, out->k = k;
    /* zero where another part computes: the parts' arrays add up to the whole */
    out->aiq = rtr_calloc(RB, sizeof(double));
    out->aiq0 = rtr_calloc(RB, sizeof(double));
    out->to_match = rtr_calloc(RB, sizeof(double));
    out->acc = rtr_calloc(RB * RTR_BOOT_MARKS, sizeof(double));
    out->cost = rtr_calloc(RB * RTR_BOOT_MARKS, sizeof(double));
    out->pair_acc = rtr_calloc((size_t)resamples * (size_t)k, sizeof(double));
    out->pair_cost = rtr_calloc((size_t)resamples * (size_t)k, sizeof(double));
    return out->aiq && out->aiq0 && out->to_match && out->acc && out->cost && out->pair_acc && out->pair_cost
               ? RTR_OK
               : RTR_ERR_NOMEM;
}

static rtr_status boot_check(int32_t n_routers, int64_t n, int32_t k, int32_t best, int32_t resamples) {
    if (n <= 0 || resamples <= 0 || n_routers <= 0 || best < 0 || best >= k)
        return rtr_fail(RTR_ERR_INVALID, "bootstrap: %lld queries, %d resamples, %d routers, best pair %d",
                        (long long)n, (int)resamples, (int)n_routers, (int)best);
    return RTR_OK;
}

rtr_status eval_bootstrap_part(rtr_boot *out, const rtr_boot_router *r, int32_t n_routers, const float *correct,
                               const float *cost, const uint64_t *key, int64_t n, int32_t k, int32_t best, int32_t resamples, uint64_t seed,
                               int part, int n_parts) {
    memset(out, 0, sizeof *out);
    if (part < 0 || n_parts < 1 || part >= n_parts)
        return rtr_fail(RTR_ERR_INVALID, "bootstrap: part %d of %d", part, n_parts);
    rtr_status st = boot_check(n_routers, n, k, best, resamples);
    if (st) return st;
    boot_scratch s;
    st = boot_alloc(out, n_routers, resamples, k);
    rtr_status ss = boot_scratch_init(&s, r, n_routers, k);
    double *w = rtr_malloc((size_t)n * sizeof *w);
    if (!st) st = ss;
    if (!st && !w) st = RTR_ERR_NOMEM;
    rtr_progress prog = {0}; /* eval's longest phase on large sets (part 0's share shown) */
    if (!part) rtr_progress_init(&prog, "eval: bootstrap", resamples);
    for (int32_t b = part; !st && b < resamples; b += n_parts) {
        if (b && !part) rtr_progress_update(&prog, b);
        eval_boot_weights(w, key, n, seed, b);
        st = boot_resample(out, b, w, &s, r, n_routers, correct, cost, n, k, best);
    }
    if (!part) {
        if (!st) rtr_progress_update(&prog, resamples);
        rtr_progress_end(&prog);
    }
    free(w);
    boot_scratch_free(&s);
    if (st) rtr_boot_free(out);
    return st;
}

rtr_status eval_boot_point(rtr_boot *out, const rtr_boot_router *r, int32_t n_routers, const float *correct,
                           const float *cost, int64_t n, int32_t k, int32_t best) {
    memset(out, 0, sizeof *out);
    rtr_status st = boot_check(n_routers, n, k, best, 1);
    if (st) return st;
    boot_scratch s;
    st = boot_alloc(out, n_routers, 1, k);
    rtr_status ss = boot_scratch_init(&s, r, n_routers, k);
    double *w = rtr_malloc((size_t)n * sizeof *w);
    if (!st) st = ss;
    if (!st && !w) st = RTR_ERR_NOMEM;
    for (int64_t i = 0; !st && i < n; i++) w[i] = 1.0;
    if (!st) st = boot_resample(out, 0, w, &s, r, n_routers, correct, cost, n, k, best);
    free(w);
    boot_scratch_free(&s);
    if (st) rtr_boot_free(out);
    return st;
}

/* ------------------------------------------- the bootstrap's sample */

uint64_t eval_boot_sample_hash(uint64_t seed, uint64_t key) {
    /* mix64 and the xor are bijections: distinct keys give distinct hashes,
     * so the bottom M is one set whatever the order of the queries */
    return mix64(mix64(key) ^ mix64(seed ^ 0xd1b54a32d192ed03ULL));
}

/* (h, row) order: the row only breaks a tie of equal keys. */
static bool pick_less(eval_boot_pick a, eval_boot_pick b) { return a.h != b.h ? a.h < b.h : a.row < b.row; }

rtr_status eval_boot_bottom_init(eval_boot_bottom *s, int64_t M) {
    memset(s, 0, sizeof *s);
    if (M < 1) return rtr_fail(RTR_ERR_INVALID, "bootstrap sample of %lld queries", (long long)M);
    s->cap = M;
    return RTR_OK;
}

/* A max-heap of the M smallest (h, row) seen: the root is the first to go. */
rtr_status eval_boot_bottom_add(eval_boot_bottom *s, uint64_t h, int64_t row) {
    eval_boot_pick x = {h, row};
    eval_boot_pick *a = s->pick;
    if (s->n == s->cap) {
        if (!pick_less(x, a[0])) return RTR_OK;
        int64_t i = 0; /* replace the root, sift down */
        for (;;) {
            int64_t c = 2 * i + 1;
            if (c >= s->n) break;
            if (c + 1 < s->n && pick_less(a[c], a[c + 1])) c++;
            if (!pick_less(x, a[c])) break;
            a[i] = a[c], i = c;
        }
        a[i] = x;
        return RTR_OK;
    }
    if (s->n == s->alloc) { /* grown as rows come: a split smaller than M holds only its rows */
        int64_t cap = s->alloc ? 2 * s->alloc : 1024;
        if (cap > s->cap) cap = s->cap;
        eval_boot_pick *g = rtr_realloc(s->pick, (size_t)cap * sizeof *g);
        if (!g) return RTR_ERR_NOMEM;
        s->pick = a = g, s->alloc = cap;
    }
    int64_t i = s->n++; /* sift up */
    while (i > 0 && pick_less(a[(i - 1) / 2], x)) a[i] = a[(i - 1) / 2], i = (i - 1) / 2;
    a[i] = x;
    return RTR_OK;
}

static int pick_row_cmp(const void *x, const void *y) {
    const eval_boot_pick *u = x, *v = y;
    return (u->row > v->row) - (u->row < v->row);
}

void eval_boot_bottom_rows(eval_boot_bottom *s) {
    if (s->n) qsort(s->pick, (size_t)s->n, sizeof *s->pick, pick_row_cmp);
}

rtr_status eval_boot_bottom_take(eval_boot_bottom *s, int64_t **rows, int64_t *n) {
    eval_boot_bottom_rows(s);
    *n = 0;
    if (!(*rows = rtr_malloc((size_t)(s->n ? s->n : 1) * sizeof **rows))) return RTR_ERR_NOMEM;
    for (int64_t i = 0; i < s->n; i++) (*rows)[i] = s->pick[i].row;
    *n = s->n;
    return RTR_OK;
}

void eval_boot_bottom_free(eval_boot_bottom *s) {
    free(s->pick);
    memset(s, 0, sizeof *s);
}

static int double_cmp(const void *x, const void *y) {
    double u = *(const double *)x, v = *(const double *)y;
    return (u > v) - (u < v);
}

void rtr_boot_interval(double *lo, double *hi, const double *v, int32_t n, int64_t stride, double q) {
    *lo = *hi = NAN;
    double *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s);
    if (!s || n <= 0) { free(s); return; }
    for (int32_t i = 0; i < n; i++) s[i] = isnan(v[i * stride]) ? INFINITY : v[i * stride];
    qsort(s, (size_t)n, sizeof *s, double_cmp);
    /* the order statistics at q and 1 − q (nearest rank) */
    int32_t a = (int32_t)floor(q * (n - 1) + 0.5), b = (int32_t)floor((1 - q) * (n - 1) + 0.5);
    *lo = s[a], *hi = s[b];
    free(s);
}

double rtr_boot_p_beats(const double *a, const double *b, int32_t n, int64_t stride, bool lower_better) {
    if (n <= 0) return NAN;
    double wins = 0;
    for (int32_t i = 0; i < n; i++) {
        double worst = lower_better ? INFINITY : -INFINITY;
        double x = isnan(a[i * stride]) ? worst : a[i * stride], y = isnan(b[i * stride]) ? worst : b[i * stride];
        if (x == y) wins += 0.5;
        else wins += lower_better ? x < y : x > y;
    }
    return wins / n;
}
