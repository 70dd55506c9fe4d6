/* Routing decisions for one λ: the plain argmax (reference of the CUDA
 * kernel), each query's upper envelope of score lines in λ, cost models
 * (tokens, USD, user per-pair) with the scale that puts costs against λ, and
 * exclusions. The exact path over all λ is in lambda_path.c. */
#include "rtr/route.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Whether candidate (s, c, p, j) beats the incumbent under the header's tie
 * rule; j > incumbent index always holds in the scans below. */
static bool beats(double s, double c, double p, double bs, double bc, double bp) {
    if (s != bs) return s > bs;
    if (c != bc) return c < bc;
    return p > bp;
}

void route_argmax(int32_t *choice, const float *p, const float *c, double lambda,
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

/* ---------------------------------------------------------------- costs */

rtr_status rtr_cost_model_parse(const char *s, rtr_cost_model *out) {
    static const char *const names[] = {"tokens", "usd", "user"};
    for (int m = 0; m < 3; m++)
        if (!strcmp(s, names[m])) { *out = (rtr_cost_model)m; return RTR_OK; }
    return rtr_fail(RTR_ERR_INVALID, "cost model '%s': expected tokens, usd or user", s);
}

const char *rtr_cost_model_name(rtr_cost_model m) {
    return m == RTR_COST_USD ? "usd" : m == RTR_COST_USER ? "user" : "tokens";
}

rtr_status rtr_cost_usd(float *usd, const float *tokens_out, const float *tokens_in,
                        const rtr_catalog *cat, int64_t n) {
    int32_t k = cat->n_pairs;
    for (int32_t j = 0; j < k; j++) {
        const rtr_catalog_entry *m = &cat->models[cat->pair_model[j]];
        if (isnan(m->price_out) || (tokens_in && isnan(m->price_in)))
            return rtr_fail(RTR_ERR_INVALID, "catalog: model '%s' has no %s price, needed for USD costs",
                            m->name, isnan(m->price_out) ? "price_out" : "price_in");
    }
    for (int64_t i = 0; i < n; i++)
        for (int32_t j = 0; j < k; j++) {
            const rtr_catalog_entry *m = &cat->models[cat->pair_model[j]];
            double in = tokens_in ? tokens_in[i] * m->price_in : 0.0;
            usd[i * k + j] = (float)((in + tokens_out[i * k + j] * m->price_out) / 1e6);
        }
    return RTR_OK;
}

rtr_status rtr_cost_user_parse(const char *json, const char *origin, const rtr_catalog *cat,
                               double *cost) {
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return rtr_fail(RTR_ERR_FORMAT, "%s: expected a JSON object {\"model|strategy\": cost}", origin);
    }
    rtr_status st = RTR_OK;
    for (int32_t j = 0; j < cat->n_pairs; j++) cost[j] = NAN;
    for (const cJSON *it = root->child; it && st == RTR_OK; it = it->next) {
        const char *bar = strchr(it->string, '|');
        int32_t j = -1;
        if (bar) {
            char *model = rtr_strdup(it->string);
            if (!model) { st = RTR_ERR_NOMEM; break; }
            model[bar - it->string] = '\0';
            j = rtr_catalog_find_pair(cat, model, bar + 1);
            free(model);
        }
        if (j < 0)
            st = rtr_fail(RTR_ERR_INVALID, "%s: '%s' is not a pair of the catalog (model|strategy)", origin, it->string);
        else if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0)
            st = rtr_fail(RTR_ERR_INVALID, "%s: cost of '%s' must be a finite number >= 0", origin, it->string);
        else
            cost[j] = it->valuedouble;
    }
    for (int32_t j = 0; j < cat->n_pairs && st == RTR_OK; j++)
        if (isnan(cost[j])) {
            char *name = rtr_catalog_pair_name(cat, j);
            st = rtr_fail(RTR_ERR_INVALID, "%s: no cost for pair '%s'", origin, name ? name : "?");
            free(name);
        }
    cJSON_Delete(root);
    return st;
}

rtr_status rtr_route_cost_scale(const float *c, int64_t n, int32_t k, double *scale) {
    double best = 0;
    bool any = false;
    for (int32_t j = 0; j < k; j++) {
        double sum = 0;
        int64_t cnt = 0;
        for (int64_t i = 0; i < n; i++)
            if (!isnan(c[i * k + j])) { sum += c[i * k + j]; cnt++; }
        if (cnt) { any = true; if (sum / cnt > best) best = sum / cnt; }
    }
    if (!any) return rtr_fail(RTR_ERR_INVALID, "cost scale: no finite predicted cost");
    if (!(best > 0)) return rtr_fail(RTR_ERR_INVALID, "cost scale: every pair's mean cost is 0, cost cannot be traded against accuracy");
    *scale = best;
    return RTR_OK;
}

/* ----------------------------------------------------------- exclusions */

rtr_status rtr_route_parse_exclude(const rtr_catalog *cat, const char *list, bool *excluded) {
    char *copy = rtr_strdup(list);
    if (!copy) return RTR_ERR_NOMEM;
    rtr_status st = RTR_OK;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && st == RTR_OK; item = strtok_r(NULL, ",", &save)) {
        char *bar = strchr(item, '|');
        bool found = false;
        if (bar) {
            *bar = '\0';
            int32_t j = rtr_catalog_find_pair(cat, item, bar + 1);
            *bar = '|';
            if (j >= 0) { excluded[j] = true; found = true; }
        } else {
            for (int32_t j = 0; j < cat->n_pairs; j++)
                if (!strcmp(cat->models[cat->pair_model[j]].name, item) ||
                    !strcmp(cat->strategies[cat->pair_strategy[j]].name, item)) { excluded[j] = true; found = true; }
        }
        if (!found) st = rtr_fail(RTR_ERR_INVALID, "--exclude: '%s' is neither a pair (model|strategy), a model nor a strategy of the catalog", item);
    }
    free(copy);
    return st;
}

void rtr_route_exclude(float *p, const float *tokens, int64_t n, int32_t k,
                       const bool *pair_excluded, double max_tokens) {
    bool cap = tokens && max_tokens > 0;
    for (int64_t i = 0; i < n; i++)
        for (int32_t j = 0; j < k; j++)
            if ((pair_excluded && pair_excluded[j]) || (cap && tokens[i * k + j] > max_tokens))
                p[i * k + j] = NAN;
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

int32_t rtr_envelope(const float *p, const float *c, int32_t k, int32_t *pair, double *start,
                     rtr_line *l) {
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

rtr_status route_envelope(int32_t *pair, double *start, int32_t *m, const float *p, const float *c, int64_t n,
                          int32_t k) {
    bool nomem = false;
#pragma omp parallel
    {
        rtr_line *l = malloc(sizeof *l * (size_t)k);
        if (!l) nomem = true; /* benign race: every writer stores true */
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++)
            if (l) m[i] = rtr_envelope(p + i * k, c + i * k, k, pair + i * k, start + i * k, l);
        free(l);
    }
    return nomem ? rtr_fail(RTR_ERR_NOMEM, "route_envelope: out of memory for %d lines", (int)k) : RTR_OK;
}

rtr_status rtr_envelope_choose(int32_t *choice, const float *p, const float *c, double lambda,
                               int64_t n, int32_t k) {
    bool nomem = false;
#pragma omp parallel
    {
        int32_t *pair = malloc(sizeof *pair * (size_t)k);
        double *start = malloc(sizeof *start * (size_t)k);
        rtr_line *l = malloc(sizeof *l * (size_t)k);
        if (!pair || !start || !l) nomem = true; /* benign race: every writer stores true */
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            if (!l || !pair || !start) continue;
            int32_t m = rtr_envelope(p + i * k, c + i * k, k, pair, start, l), t = 0;
            while (t + 1 < m && start[t + 1] < lambda) t++;
            choice[i] = m ? pair[t] : -1;
        }
        free(pair);
        free(start);
        free(l);
    }
    return nomem ? rtr_fail(RTR_ERR_NOMEM, "envelope: out of memory") : RTR_OK;
}
