/* Prediction-quality metrics of the two heads (accuracy, ROC AUC, log-loss,
 * Brier, ECE; token MAE, median error, share within ±200/±600 tokens) and the
 * naive per-pair predictor they are always reported next to. */
#include "rtr/predictor.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double score, y;
} scored;

static int cmp_scored(const void *a, const void *b) {
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x > y) - (x < y);
}
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Weighted Mann-Whitney AUC: each entry is y positive and 1-y negative; tied
 * scores count one half. e is sorted by score in place. */
static double auc_of(scored *e, int64_t n) {
    qsort(e, (size_t)n, sizeof *e, cmp_scored);
    double neg_below = 0, pos_total = 0, neg_total = 0, area = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        double pos = 0, neg = 0;
        for (; j < n && e[j].score == e[i].score; j++) pos += e[j].y, neg += 1 - e[j].y;
        area += pos * (neg_below + 0.5 * neg);
        neg_below += neg, pos_total += pos, neg_total += neg;
        i = j;
    }
    return pos_total > 0 && neg_total > 0 ? area / (pos_total * neg_total) : NAN;
}

/* Median of x[0..n) (sorted in place); NaN when n == 0. */
static double median_of(float *x, int64_t n) {
    if (n == 0) return NAN;
    qsort(x, (size_t)n, sizeof *x, cmp_float);
    return n % 2 ? x[n / 2] : 0.5 * ((double)x[n / 2 - 1] + x[n / 2]);
}

rtr_status rtr_pred_metrics_compute(rtr_pred_metrics *m, const float *p_correct, const float *tokens,
                                    const float *y_correct, const float *y_tokens, int64_t n, int64_t stride) {
    memset(m, 0, sizeof *m);
    scored *e = rtr_malloc(sizeof *e * (size_t)(n > 0 ? n : 1));
    float *err = rtr_malloc(sizeof *err * (size_t)(n > 0 ? n : 1));
    if (!e || !err) { free(e); free(err); return RTR_ERR_NOMEM; }
    double acc = 0, ll = 0, brier = 0, bin_p[10] = {0}, bin_y[10] = {0}, bin_n[10] = {0};
    double abs_sum = 0, w200 = 0, w600 = 0;
    int64_t nc = 0, nt = 0;
    for (int64_t i = 0; i < n; i++) {
        double y = y_correct[i * stride], p = p_correct[i * stride];
        if (!isnan(y)) {
            double pc = fmin(fmax(p, 1e-7), 1 - 1e-7);
            acc += p >= 0.5 ? y : 1 - y;
            ll -= y * log(pc) + (1 - y) * log(1 - pc);
            brier += (p - y) * (p - y);
            int b = p >= 1.0 ? 9 : p <= 0.0 ? 0 : (int)(p * 10);
            bin_p[b] += p, bin_y[b] += y, bin_n[b] += 1;
            e[nc++] = (scored){p, y};
        }
        double t = y_tokens[i * stride];
        if (!isnan(t)) {
            double d = fabs((double)tokens[i * stride] - t);
            abs_sum += d, w200 += d <= 200, w600 += d <= 600;
            err[nt++] = (float)d;
        }
    }
    m->n_correct = nc, m->n_tokens = nt;
    if (nc) {
        m->accuracy = acc / (double)nc, m->log_loss = ll / (double)nc, m->brier = brier / (double)nc;
        double ece = 0;
        for (int b = 0; b < 10; b++)
            if (bin_n[b] > 0) ece += fabs(bin_y[b] - bin_p[b]) / (double)nc;
        m->ece = ece;
        m->auc = auc_of(e, nc);
    } else {
        m->accuracy = m->log_loss = m->brier = m->ece = m->auc = NAN;
    }
    if (nt) {
        m->mae = abs_sum / (double)nt, m->within_200 = w200 / (double)nt, m->within_600 = w600 / (double)nt;
        m->median_ae = median_of(err, nt);
    } else {
        m->mae = m->median_ae = m->within_200 = m->within_600 = NAN;
    }
    free(e);
    free(err);
    return RTR_OK;
}

rtr_status rtr_naive_fit(float *mean_c, float *median_t, const float *y_correct, const float *y_tokens,
                         int64_t N, int32_t K) {
    float *col = rtr_malloc(sizeof(float) * (size_t)(N > 0 ? N : 1));
    if (!col) return RTR_ERR_NOMEM;
    for (int32_t k = 0; k < K; k++) {
        double s = 0;
        int64_t nc = 0, nt = 0;
        for (int64_t i = 0; i < N; i++) {
            float c = y_correct[i * K + k], t = y_tokens[i * K + k];
            if (!isnan(c)) s += c, nc++;
            if (!isnan(t)) col[nt++] = t;
        }
        mean_c[k] = nc ? (float)(s / (double)nc) : NAN;
        median_t[k] = (float)median_of(col, nt);
    }
    free(col);
    return RTR_OK;
}
