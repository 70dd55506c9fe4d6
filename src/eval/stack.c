/* RTR's default router (include/rtr/metrics.h, rtr_stack_table): the
 * network's correctness estimates, calibrated and blended with the kNN and
 * dataset-prior estimates when validation rows say it helps, and a guard
 * for datasets training never saw. Every choice is made on validation rows
 * carved from the training split by `rtr train`; the evaluated split is
 * only ever routed. */
#include "rtr/metrics.h"
#include "rtr/predictor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "eval/evaluate.h"

/* Each candidate's name in reports and its option name (rtr eval --stack). */
static const char *const stack_names[RTR_STACK_N][2] = {
    [RTR_STACK_MLP] = {"network (the paper's model)", "network"},
    [RTR_STACK_PLATT] = {"network, Platt-scaled", "platt"},
    [RTR_STACK_KNN] = {"network + kNN blend", "knn"},
    [RTR_STACK_PRIOR] = {"network + dataset-prior blend", "prior"},
    [RTR_STACK_ALL] = {"network + kNN + dataset-prior blend", "knn+prior"}};

const char *rtr_stack_name(int32_t kind) { return kind >= 0 && kind < RTR_STACK_N ? stack_names[kind][0] : "?"; }
const char *rtr_stack_option(int32_t kind) { return kind >= 0 && kind < RTR_STACK_N ? stack_names[kind][1] : "?"; }

int32_t rtr_stack_from_option(const char *option) {
    for (int32_t c = 0; option && c < RTR_STACK_N; c++)
        if (!strcmp(option, stack_names[c][1])) return c;
    return -1;
}

rtr_stack_params rtr_stack_default_params(void) { return (rtr_stack_params){.knn = 10, .folds = 5, .only = -1}; }

/* The logit features each candidate blends: network, kNN, prior. */
static const bool uses[RTR_STACK_N][3] = {
    {1, 0, 0}, {1, 0, 0}, {1, 1, 0}, {1, 0, 1}, {1, 1, 1},
};

#define NF 4 /* intercept + three logits */

static double logit(double p) {
    p = fmin(fmax(p, 1e-4), 1 - 1e-4);
    return log(p / (1 - p));
}

/* Feature rows x[NF] of entry (i, j) of the three estimate tables. */
static void features(double *x, const float *a, const float *b, const float *c, size_t at, int32_t kind) {
    const float *src[3] = {a, b, c};
    x[0] = 1;
    for (int f = 0; f < 3; f++) x[f + 1] = uses[kind][f] ? logit(src[f][at]) : 0;
}

/* Solve the NF x NF system H·s = g in place (Gaussian elimination with
 * partial pivoting; H is positive definite with the ridge). */
static void solve(double H[NF][NF], double *g) {
    for (int c = 0; c < NF; c++) {
        int piv = c;
        for (int r = c + 1; r < NF; r++)
            if (fabs(H[r][c]) > fabs(H[piv][c])) piv = r;
        for (int t = 0; t < NF; t++) { double u = H[c][t]; H[c][t] = H[piv][t]; H[piv][t] = u; }
        double u = g[c]; g[c] = g[piv]; g[piv] = u;
        for (int r = c + 1; r < NF; r++) {
            double f = H[r][c] / H[c][c];
            for (int t = c; t < NF; t++) H[r][t] -= f * H[c][t];
            g[r] -= f * g[c];
        }
    }
    for (int c = NF - 1; c >= 0; c--) {
        for (int t = c + 1; t < NF; t++) g[c] -= H[c][t] * g[t];
        g[c] /= H[c][c];
    }
}

/* Logistic regression of the labels y on the features of the entries of
 * the queries rows[0..nr) (every pair; NaN labels or estimates skipped) by
 * Newton's method with a small ridge (1e-3, so a feature equal to another
 * stays finite). Fractional labels are used as they are. */
static void fit_blend(double *w, int32_t kind, const float *a, const float *b, const float *c, const float *y,
                      const int64_t *rows, int64_t nr, int32_t k) {
    memset(w, 0, NF * sizeof *w);
    for (int it = 0; it < 50; it++) {
        double H[NF][NF] = {{0}}, g[NF] = {0}, x[NF], cnt = 0;
        for (int64_t r = 0; r < nr; r++)
            for (int32_t j = 0; j < k; j++) {
                size_t at = (size_t)rows[r] * k + j;
                if (isnan(y[at]) || isnan(a[at])) continue;
                features(x, a, b, c, at, kind);
                double z = 0;
                for (int f = 0; f < NF; f++) z += w[f] * x[f];
                double p = 1 / (1 + exp(-z)), v = p * (1 - p);
                for (int f = 0; f < NF; f++) {
                    g[f] += (p - y[at]) * x[f];
                    for (int t = 0; t < NF; t++) H[f][t] += v * x[f] * x[t];
                }
                cnt++;
            }
        if (!cnt) return;
        double step = 0;
        for (int f = 0; f < NF; f++) {
            g[f] = g[f] / cnt + 1e-3 * w[f];
            for (int t = 0; t < NF; t++) H[f][t] = H[f][t] / cnt + (f == t ? 1e-3 : 0);
        }
        solve(H, g);
        for (int f = 0; f < NF; f++) w[f] -= g[f], step = fmax(step, fabs(g[f]));
        if (step < 1e-10) break;
    }
}

static double blend_p(const double *w, int32_t kind, const float *a, const float *b, const float *c, size_t at) {
    if (kind == RTR_STACK_MLP) return a[at];
    double x[NF], z = 0;
    features(x, a, b, c, at, kind);
    for (int f = 0; f < NF; f++) z += w[f] * x[f];
    return 1 / (1 + exp(-z));
}

/* Mean log-loss of query r's labelled entries under p(at); NaN when none. */
static double query_loss(const double *w, int32_t kind, const float *a, const float *b, const float *c,
                         const float *y, int64_t row, int32_t k) {
    double s = 0;
    int cnt = 0;
    for (int32_t j = 0; j < k; j++) {
        size_t at = (size_t)row * k + j;
        if (isnan(y[at]) || isnan(a[at])) continue;
        double p = fmin(fmax(blend_p(w, kind, a, b, c, at), 1e-7), 1 - 1e-7);
        s -= y[at] * log(p) + (1 - y[at]) * log(1 - p);
        cnt++;
    }
    return cnt ? s / cnt : NAN;
}

/* Rows listed in idx copied out of a [n x w] table. */
static float *gather(const float *src, const int64_t *idx, int64_t m, int32_t w) {
    float *out = rtr_malloc((size_t)(m ? m : 1) * (size_t)w * sizeof *out);
    if (out)
        for (int64_t r = 0; r < m; r++) memcpy(out + (size_t)r * w, src + (size_t)idx[r] * w, (size_t)w * sizeof *out);
    return out;
}

static int u64_cmp(const void *x, const void *y) {
    uint64_t u = *(const uint64_t *)x, v = *(const uint64_t *)y;
    return (u > v) - (u < v);
}

/* Choose the candidate on the validation rows V (estimates from the fitted
 * rows F only): the folds' held-out per-query losses, their mean and
 * standard error per candidate, the one-standard-error rule. */
static rtr_status choose(rtr_stack_report *rep, const float *train_mlp_p, const float *train_emb,
                         const char *const *train_dataset, const float *train_correct, const float *train_cost,
                         const int64_t *V, int64_t nv, const int64_t *F, int64_t nf, int32_t d, int32_t k,
                         const rtr_stack_params *prm) {
    size_t vk = (size_t)nv * k;
    float *a = gather(train_mlp_p, V, nv, k), *y = gather(train_correct, V, nv, k);
    float *ve = gather(train_emb, V, nv, d), *fe = gather(train_emb, F, nf, d);
    float *fy = gather(train_correct, F, nf, k), *fc = gather(train_cost, F, nf, k);
    float *b = rtr_malloc(vk * sizeof *b), *c = rtr_malloc(vk * sizeof *c), *scratch = rtr_malloc(vk * sizeof *scratch);
    const char **vd = rtr_malloc((size_t)nv * sizeof *vd), **fd = rtr_malloc((size_t)nf * sizeof *fd);
    int64_t *rows = rtr_malloc((size_t)nv * sizeof *rows), *all = rtr_malloc((size_t)nv * sizeof *all);
    double *loss = rtr_malloc((size_t)nv * sizeof *loss);
    rtr_status st = a && y && ve && fe && fy && fc && b && c && scratch && vd && fd && rows && all && loss
                        ? RTR_OK : RTR_ERR_NOMEM;
    if (!st) {
        for (int64_t r = 0; r < nv; r++) vd[r] = train_dataset[V[r]], all[r] = r;
        for (int64_t r = 0; r < nf; r++) fd[r] = train_dataset[F[r]];
        st = rtr_router_knn_table(b, scratch, ve, nv, fe, fy, fc, nf, d, k, prm->knn < nf ? prm->knn : (int32_t)nf);
    }
    if (!st) st = rtr_router_prior_table(c, scratch, vd, nv, fd, fy, fc, nf, k);
    double best = INFINITY, best_se = 0;
    for (int32_t kind = 0; !st && kind < RTR_STACK_N; kind++) {
        double w[NF] = {0}, sum = 0, sq = 0;
        int64_t cnt = 0;
        for (int32_t f = 0; f < prm->folds; f++) {
            int64_t nr = 0;
            for (int64_t r = 0; r < nv; r++)
                if (r % prm->folds != f) rows[nr++] = r;
            if (kind != RTR_STACK_MLP) fit_blend(w, kind, a, b, c, y, rows, nr, k);
            for (int64_t r = f; r < nv; r += prm->folds) loss[r] = query_loss(w, kind, a, b, c, y, r, k);
        }
        for (int64_t r = 0; r < nv; r++)
            if (!isnan(loss[r])) sum += loss[r], sq += loss[r] * loss[r], cnt++;
        double mean = cnt ? sum / cnt : NAN;
        rep->cv_logloss[kind] = mean;
        rep->cv_se[kind] = cnt > 1 ? sqrt(fmax(sq / cnt - mean * mean, 0) / (cnt - 1)) : NAN;
        if (mean < best) best = mean, best_se = rep->cv_se[kind];
    }
    rep->chosen = RTR_STACK_MLP;
    for (int32_t kind = RTR_STACK_N - 1; !st && kind >= 0; kind--)
        if (rep->cv_logloss[kind] <= best + best_se) rep->chosen = kind;
    free(a); free(y); free(ve); free(fe); free(fy); free(fc); free(b); free(c); free(scratch);
    free(vd); free(fd); free(rows); free(all); free(loss);
    return st;
}

void rtr_stack_free(rtr_stack_model *m) {
    free(m->gp);
    free(m->gc);
    free(m->datasets);
    memset(m, 0, sizeof *m);
}

bool rtr_stack_uses_knn(const rtr_stack_model *m) { return uses[m->rep.chosen][1]; }
bool rtr_stack_uses_prior(const rtr_stack_model *m) { return uses[m->rep.chosen][2]; }

rtr_status rtr_stack_fit(rtr_stack_model *m, const float *train_mlp_p, const float *train_emb,
                         const char *const *train_dataset, const float *train_correct, const float *train_cost,
                         int64_t n_train, const uint64_t *val_hash, int64_t n_val_hash, int32_t d, int32_t k,
                         const rtr_stack_params *prm) {
    memset(m, 0, sizeof *m);
    rtr_stack_params defaults = rtr_stack_default_params();
    if (!prm) prm = &defaults;
    if (n_train <= 0 || prm->knn < 1 || prm->folds < 2 || prm->only < -1 || prm->only >= RTR_STACK_N)
        return rtr_fail(RTR_ERR_INVALID, "default router: %lld training rows, kNN %d, %d folds, candidate %d",
                        (long long)n_train, prm->knn, prm->folds, prm->only);
    rtr_stack_report rep = {.chosen = RTR_STACK_MLP};
    for (int i = 0; i < RTR_STACK_N; i++) rep.cv_logloss[i] = rep.cv_se[i] = NAN;
    uint64_t *vh = rtr_malloc((size_t)(n_val_hash ? n_val_hash : 1) * sizeof *vh);
    int64_t *V = rtr_malloc((size_t)n_train * sizeof *V), *F = rtr_malloc((size_t)n_train * sizeof *F);
    m->gp = rtr_malloc((size_t)k * sizeof *m->gp), m->gc = rtr_malloc((size_t)k * sizeof *m->gc);
    rtr_status st = vh && V && F && m->gp && m->gc ? RTR_OK : RTR_ERR_NOMEM;
    int64_t nv = 0, nf = 0;
    if (!st) {
        if (n_val_hash) memcpy(vh, val_hash, (size_t)n_val_hash * sizeof *vh); /* val_hash may be NULL then */
        qsort(vh, (size_t)n_val_hash, sizeof *vh, u64_cmp);
        for (int64_t r = 0; r < n_train; r++) {
            uint64_t h = rtr_embedding_hash(train_emb + (size_t)r * d, d);
            if (n_val_hash && bsearch(&h, vh, (size_t)n_val_hash, sizeof *vh, u64_cmp)) V[nv++] = r;
            else F[nf++] = r;
        }
        rep.n_val = nv;
    }
    if (!st && nv >= 2 * prm->folds && nf > 0)
        st = choose(&rep, train_mlp_p, train_emb, train_dataset, train_correct, train_cost, V, nv, F, nf, d, k, prm);
    if (!st && prm->only > RTR_STACK_MLP && (nv < 1 || nf < 1))
        st = rtr_fail(RTR_ERR_INVALID, "default router: candidate '%s' needs validation rows (%lld found) and fitted "
                      "rows (%lld)", rtr_stack_name(prm->only), (long long)nv, (long long)nf);
    if (!st && prm->only >= 0) rep.chosen = prm->only;
    /* The kept blend, refitted on every validation row with estimates from
     * the fitted rows (applied with estimates from every training row). */
    if (!st && rep.chosen != RTR_STACK_MLP) {
        size_t vk = (size_t)nv * k;
        float *va = gather(train_mlp_p, V, nv, k), *vy = gather(train_correct, V, nv, k);
        float *ve = gather(train_emb, V, nv, d), *fe = gather(train_emb, F, nf, d);
        float *fy = gather(train_correct, F, nf, k), *fc = gather(train_cost, F, nf, k);
        float *vb = rtr_malloc(vk * sizeof *vb), *vc = rtr_malloc(vk * sizeof *vc), *vs = rtr_malloc(vk * sizeof *vs);
        const char **vd = rtr_malloc((size_t)nv * sizeof *vd), **fd = rtr_malloc((size_t)nf * sizeof *fd);
        int64_t *all = rtr_malloc((size_t)nv * sizeof *all);
        st = va && vy && ve && fe && fy && fc && vb && vc && vs && vd && fd && all ? RTR_OK : RTR_ERR_NOMEM;
        if (!st) {
            for (int64_t r = 0; r < nv; r++) vd[r] = train_dataset[V[r]], all[r] = r;
            for (int64_t r = 0; r < nf; r++) fd[r] = train_dataset[F[r]];
            st = rtr_router_knn_table(vb, vs, ve, nv, fe, fy, fc, nf, d, k, prm->knn < nf ? prm->knn : (int32_t)nf);
        }
        if (!st) st = rtr_router_prior_table(vc, vs, vd, nv, fd, fy, fc, nf, k);
        if (!st) fit_blend(rep.weight, rep.chosen, va, vb, vc, vy, all, nv, k);
        free(va); free(vy); free(ve); free(fe); free(fy); free(fc); free(vb); free(vc); free(vs);
        free(vd); free(fd); free(all);
    } else if (!st) {
        rep.weight[1] = 1; /* the network as it is */
    }
    if (!st) {
        /* the guard: a dataset absent from training gets the pairs' overall means */
        for (int32_t j = 0; j < k; j++) {
            double sp = 0, sc = 0;
            int64_t cnt = 0;
            for (int64_t r = 0; r < n_train; r++) {
                size_t at = (size_t)r * k + j;
                if (isnan(train_correct[at]) || isnan(train_cost[at])) continue;
                sp += train_correct[at], sc += train_cost[at], cnt++;
            }
            m->gp[j] = cnt ? (float)(sp / cnt) : NAN, m->gc[j] = cnt ? (float)(sc / cnt) : NAN;
        }
        /* the training datasets, each once (datasets are few) */
        int64_t nd = 0;
        for (int64_t r = 0; r < n_train; r++) {
            int64_t t = 0;
            while (t < nd && strcmp(train_dataset[V[t]], train_dataset[r])) t++;
            if (t == nd) V[nd++] = r;
        }
        if (!(m->datasets = rtr_malloc((size_t)nd * sizeof *m->datasets))) st = RTR_ERR_NOMEM;
        for (int64_t t = 0; !st && t < nd; t++) m->datasets[t] = train_dataset[V[t]];
        m->n_datasets = nd;
    }
    m->k = k, m->no_guard = prm->no_guard, m->rep = rep;
    m->knn = prm->knn < n_train ? prm->knn : (int32_t)n_train;
    free(vh); free(V); free(F);
    if (st) rtr_stack_free(m);
    return st;
}

rtr_status rtr_stack_apply(rtr_stack_model *m, float *p, float *cost, const float *mlp_p, const float *mlp_cost,
                           const float *knn_p, const float *prior_p, const char *const *dataset, int64_t n) {
    int32_t k = m->k, kind = m->rep.chosen;
    if ((rtr_stack_uses_knn(m) && !knn_p) || (rtr_stack_uses_prior(m) && !prior_p))
        return rtr_fail(RTR_ERR_INVALID, "default router: '%s' needs the kNN and dataset-prior estimates",
                        rtr_stack_name(kind));
    for (int64_t i = 0; i < n; i++) {
        int64_t t = 0;
        while (!m->no_guard && t < m->n_datasets && strcmp(m->datasets[t], dataset[i])) t++;
        bool unseen = !m->no_guard && t == m->n_datasets;
        m->rep.n_unseen += unseen;
        for (int32_t j = 0; j < k; j++) {
            size_t at = (size_t)i * k + j;
            if (isnan(mlp_p[at])) p[at] = NAN, cost[at] = mlp_cost[at];
            else if (unseen) p[at] = m->gp[j], cost[at] = isnan(m->gc[j]) ? mlp_cost[at] : m->gc[j];
            else p[at] = (float)blend_p(m->rep.weight, kind, mlp_p, knn_p, prior_p, at), cost[at] = mlp_cost[at];
        }
    }
    return RTR_OK;
}

rtr_status rtr_stack_table(float *p, float *cost, rtr_stack_report *rep_out, const float *mlp_p, const float *mlp_cost,
                           const float *emb, const char *const *dataset, int64_t n, const float *train_mlp_p,
                           const float *train_emb, const char *const *train_dataset, const float *train_correct,
                           const float *train_cost, int64_t n_train, const uint64_t *val_hash, int64_t n_val_hash, int32_t d,
                           int32_t k, const rtr_stack_params *prm) {
    rtr_stack_model m;
    rtr_status st = rtr_stack_fit(&m, train_mlp_p, train_emb, train_dataset, train_correct, train_cost, n_train,
                                  val_hash, n_val_hash, d, k, prm);
    if (st) return st;
    size_t nk = (size_t)n * k;
    bool need = m.rep.chosen != RTR_STACK_MLP; /* as before the split: both estimates whenever a blend is kept */
    float *b = need ? rtr_malloc((nk ? nk : 1) * sizeof *b) : NULL, *c = need ? rtr_malloc((nk ? nk : 1) * sizeof *c) : NULL;
    float *scratch = need ? rtr_malloc((nk ? nk : 1) * sizeof *scratch) : NULL;
    if (need && (!b || !c || !scratch)) st = RTR_ERR_NOMEM;
    if (!st && need) st = eval_knn_table(b, scratch, NULL, emb, n, train_emb, train_correct, train_cost, n_train, d, k, m.knn);
    if (!st && need) st = rtr_router_prior_table(c, scratch, dataset, n, train_dataset, train_correct, train_cost, n_train, k);
    if (!st) st = rtr_stack_apply(&m, p, cost, mlp_p, mlp_cost, b, c, dataset, n);
    if (!st && rep_out) *rep_out = m.rep;
    free(b); free(c); free(scratch);
    rtr_stack_free(&m);
    return st;
}
