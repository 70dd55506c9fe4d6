/* EmbedLLM-style reference router (include/rtr/metrics.h): a learned
 * embedding per pair and a learned projection of the query embedding,
 * P(correct) = σ(v_j·(W·e) + b_j), trained full-batch with Adam on the
 * training outcomes. Parameters live in one allocation [W | V | b] so the
 * gradient and both Adam moments are flat arrays of the same layout. */
#include "rtr/metrics.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu.h"
#include "common/util.h"

/* Training rows per block. Each block's part of the loss and gradient is
 * computed alone (one-thread BLAS calls on its rows), and the parts are
 * added in block order: the model has the same bits for any number of
 * OpenMP or OpenBLAS threads. One threaded sgemm over every row summed in
 * an order that followed the thread count (mpirun's ranks, with fewer
 * threads each, got EmbedLLM-style's AIQ 6e-5 apart). */
#define EML_BLOCK 1024

rtr_embedllm_params rtr_embedllm_default_params(void) {
    return (rtr_embedllm_params){.dim = 32, .epochs = 300, .lr = 1e-2, .weight_decay = 1e-4, .seed = 1};
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Uniform in [-a, a] from a splitmix64 stream. */
static float uniform(uint64_t *s, double a) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (float)(a * (2.0 * (double)(z >> 11) / 9007199254740992.0 - 1.0));
}

/* logits [n x k] = (emb·Wᵀ)·Vᵀ + b; z [n x h] receives emb·Wᵀ. Training
 * only: its rows are always the same block of the training split, so
 * BLAS's tiling sees the same rows every time. */
static void forward(float *logits, float *z, const float *emb, int64_t n, int32_t d, int32_t h, int32_t k,
                    const float *w, const float *v, const float *b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, h, d, 1.0f, emb, d, w, d, 0.0f, z, h);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, k, h, 1.0f, z, h, v, h, 0.0f, logits, k);
    for (int64_t i = 0; i < n; i++)
        for (int32_t j = 0; j < k; j++) logits[i * k + j] += b[j];
}

/* One block's part of the fit's sums over m training rows (emb, y, c):
 * the BCE loss, the gradients gw [h x d], gv [k x h] and gb [k] of the mean
 * loss over n_obs outcomes; z, dz [m x h] and g [m x k] are scratch. */
static void block_grad(double *loss, float *gw, float *gv, double *gb, float *z, float *dz, float *g, const float *emb,
                       const float *y, const float *c, int64_t m, int32_t d, int32_t h, int32_t k, const float *w,
                       const float *v, const float *b, double n_obs) {
    forward(g, z, emb, m, d, h, k, w, v, b);
    double l_sum = 0;
    for (int64_t i = 0; i < m; i++) /* g: logits -> dLoss/dlogit */
        for (int32_t j = 0; j < k; j++) {
            size_t at = (size_t)i * (size_t)k + (size_t)j;
            if (isnan(y[at]) || isnan(c[at])) { g[at] = 0; continue; }
            double yy = y[at], l = g[at], s = sigmoid(l);
            l_sum += fmax(l, 0) - l * yy + log1p(exp(-fabs(l))); /* stable BCE with logits */
            g[at] = (float)((s - yy) / n_obs);
        }
    *loss = l_sum;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, h, (int)m, 1.0f, g, k, z, h, 0.0f, gv, h);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, h, k, 1.0f, g, k, v, h, 0.0f, dz, h);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h, d, (int)m, 1.0f, dz, h, emb, d, 0.0f, gw, d);
    for (int32_t j = 0; j < k; j++) {
        double sum = 0;
        for (int64_t i = 0; i < m; i++) sum += g[(size_t)i * (size_t)k + (size_t)j];
        gb[j] = sum;
    }
}

void rtr_embedllm_free(rtr_embedllm_model *m) {
    free(m->par);
    free(m->pair_cost);
    memset(m, 0, sizeof *m);
}

rtr_status rtr_embedllm_fit(rtr_embedllm_model *m, double train_loss[2], const float *train_emb,
                            const float *train_correct, const float *train_cost, int64_t n_train, int32_t d, int32_t k,
                            const rtr_embedllm_params *prm) {
    memset(m, 0, sizeof *m);
    int32_t h = prm->dim;
    if (n_train <= 0) return rtr_fail(RTR_ERR_INVALID, "EmbedLLM router: empty training split");
    if (h <= 0 || prm->epochs <= 0 || !(prm->lr > 0)) return rtr_fail(RTR_ERR_INVALID, "EmbedLLM router: dim, epochs and lr must be > 0");
    size_t nw = (size_t)h * (size_t)d, nv = (size_t)k * (size_t)h, np = nw + nv + (size_t)k;
    int64_t nb = (n_train + EML_BLOCK - 1) / EML_BLOCK;
    int nth = omp_get_max_threads();
    size_t per_thread = (size_t)EML_BLOCK * (2 * (size_t)h + (size_t)k); /* z, dz, g of one block */
    float *par = rtr_calloc(4 * np, sizeof *par); /* params, grad, Adam m, Adam v */
    float *scratch = rtr_malloc((size_t)nth * per_thread * sizeof *scratch);
    float *part = rtr_malloc((size_t)nb * (nw + nv) * sizeof *part); /* each block's [gw | gv] */
    double *dpart = rtr_malloc((size_t)nb * ((size_t)k + 1) * sizeof *dpart); /* each block's [gb | loss] */
    double *pc = rtr_calloc((size_t)k, sizeof *pc), *pcnt = rtr_calloc((size_t)k, sizeof *pcnt), *py = rtr_calloc((size_t)k, sizeof *py);
    float *pair_cost = rtr_malloc((size_t)k * sizeof *pair_cost);
    if (!par || !scratch || !part || !dpart || !pc || !pcnt || !py || !pair_cost) {
        free(par); free(scratch); free(part); free(dpart); free(pc); free(pcnt); free(py); free(pair_cost);
        return RTR_ERR_NOMEM;
    }
    float *w = par, *v = par + nw, *b = par + nw + nv, *grad = par + np, *m1 = par + 2 * np, *m2 = par + 3 * np;
    float *gb = grad + nw + nv;

    /* Observed outcomes, per-pair means (cost for the table, the prior for b). */
    double n_obs = 0;
    for (int64_t i = 0; i < n_train; i++)
        for (int32_t j = 0; j < k; j++) {
            size_t at = (size_t)i * (size_t)k + (size_t)j;
            if (isnan(train_correct[at]) || isnan(train_cost[at])) continue;
            py[j] += train_correct[at];
            pc[j] += train_cost[at];
            pcnt[j]++;
            n_obs++;
        }
    uint64_t seed = prm->seed;
    for (size_t t = 0; t < nw; t++) w[t] = uniform(&seed, 1.0 / sqrt((double)d));
    for (size_t t = 0; t < nv; t++) v[t] = uniform(&seed, 0.1);
    for (int32_t j = 0; j < k; j++) {
        double mean = pcnt[j] ? (py[j] + 0.5) / (pcnt[j] + 1.0) : 0.5; /* smoothed: finite logit */
        b[j] = (float)log(mean / (1.0 - mean));
    }

    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    cpu_blas_serial_begin(); /* the blocks' BLAS calls on one thread each: parallelism is over the blocks */
    for (int32_t ep = 0; ep < prm->epochs && n_obs > 0; ep++) {
#pragma omp parallel for schedule(static)
        for (int64_t bi = 0; bi < nb; bi++) {
            int64_t i0 = bi * EML_BLOCK, rows = n_train - i0 < EML_BLOCK ? n_train - i0 : EML_BLOCK;
            float *z = scratch + (size_t)omp_get_thread_num() * per_thread, *dz = z + (size_t)EML_BLOCK * h;
            float *pw = part + (size_t)bi * (nw + nv);
            double *pd = dpart + (size_t)bi * ((size_t)k + 1);
            block_grad(pd + k, pw, pw + nw, pd, z, dz, dz + (size_t)EML_BLOCK * h, train_emb + (size_t)i0 * d,
                       train_correct + (size_t)i0 * k, train_cost + (size_t)i0 * k, rows, d, h, k, w, v, b, n_obs);
        }
        /* the blocks' parts added in block order (grad's [gw | gv] is each part's layout) */
        double loss = 0;
        for (size_t t = 0; t < nw + nv; t++) {
            double sum = 0;
            for (int64_t bi = 0; bi < nb; bi++) sum += part[(size_t)bi * (nw + nv) + t];
            grad[t] = (float)sum;
        }
        for (int32_t j = 0; j <= k; j++) {
            double sum = 0;
            for (int64_t bi = 0; bi < nb; bi++) sum += dpart[(size_t)bi * ((size_t)k + 1) + (size_t)j];
            if (j < k) gb[j] = (float)sum;
            else loss = sum;
        }
        if (train_loss && ep == 0) train_loss[0] = loss / n_obs;
        if (train_loss) train_loss[1] = loss / n_obs;
        double c1 = 1 - pow(beta1, ep + 1), c2 = 1 - pow(beta2, ep + 1);
        for (size_t t = 0; t < np; t++) {
            double gt = grad[t] + (t < nw + nv ? prm->weight_decay * par[t] : 0.0);
            m1[t] = (float)(beta1 * m1[t] + (1 - beta1) * gt);
            m2[t] = (float)(beta2 * m2[t] + (1 - beta2) * gt * gt);
            par[t] -= (float)(prm->lr * (m1[t] / c1) / (sqrt(m2[t] / c2) + eps));
        }
    }
    cpu_blas_serial_end();

    /* a pair never observed in training is never chosen: NaN cost */
    for (int32_t j = 0; j < k; j++) pair_cost[j] = pcnt[j] ? (float)(pc[j] / pcnt[j]) : NAN;
    free(scratch); free(part); free(dpart); free(pc); free(pcnt); free(py);
    /* only the parameters stay: the gradient and the Adam moments go */
    float *kept = rtr_realloc(par, np * sizeof *par);
    *m = (rtr_embedllm_model){.d = d, .h = h, .k = k, .par = kept ? kept : par, .pair_cost = pair_cost};
    return RTR_OK;
}

/* The prediction, one row at a time in a fixed order (double sums over the
 * embedding, then over the projection), not a BLAS product: a BLAS row's
 * result may depend on the rows computed with it (a 2-thread OpenBLAS
 * sgemm changed a row's last bits with its neighbours), and a row's
 * estimate must not depend on the chunk or the rank that holds it. */
rtr_status rtr_embedllm_apply(const rtr_embedllm_model *m, float *p, float *c, const float *emb, int64_t n) {
    int32_t d = m->d, h = m->h, k = m->k;
    const float *w = m->par, *v = m->par + (size_t)h * d, *b = v + (size_t)k * h;
    float *z = rtr_malloc((size_t)h * sizeof *z);
    if (!z) return RTR_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        const float *e = emb + (size_t)i * d;
        for (int32_t t = 0; t < h; t++) {
            double s = 0;
            for (int32_t u = 0; u < d; u++) s += (double)e[u] * w[(size_t)t * d + u];
            z[t] = (float)s; /* stored as the training's z is */
        }
        for (int32_t j = 0; j < k; j++) {
            size_t at = (size_t)i * (size_t)k + (size_t)j;
            double s = 0;
            for (int32_t t = 0; t < h; t++) s += (double)z[t] * v[(size_t)j * h + t];
            float logit = (float)s + b[j]; /* float, as the training's logits */
            p[at] = isnan(m->pair_cost[j]) ? NAN : (float)sigmoid(logit);
            c[at] = m->pair_cost[j];
        }
    }
    free(z);
    return RTR_OK;
}

rtr_status rtr_router_embedllm_table(float *p, float *c, double train_loss[2], const float *emb,
                                     int64_t n, const float *train_emb,
                                     const float *train_correct, const float *train_cost, int64_t n_train, int32_t d,
                                     int32_t k, const rtr_embedllm_params *prm) {
    rtr_embedllm_model m;
    rtr_status st = rtr_embedllm_fit(&m, train_loss, train_emb, train_correct, train_cost, n_train, d, k, prm);
    if (!st) st = rtr_embedllm_apply(&m, p, c, emb, n);
    rtr_embedllm_free(&m);
    return st;
}
