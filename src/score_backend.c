/* Scoring a predictor on a compute backend (CPU or CUDA): the same result as
 * rtr_predictor_score (train.c) computed with the backend's ops, so `rtr
 * score --device cuda` runs the fused heads on the GPU. Weights go up once;
 * queries stream through in chunks. */
#include "rtr/backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Backend buffers of one scoring run, released together. */
typedef struct {
    float *wq, *w2, *b2, *C, *E, *A, *out;
} score_bufs;

static void score_bufs_free(rtr_backend *b, score_bufs *d) {
    float *all[] = {d->wq, d->w2, d->b2, d->C, d->E, d->A, d->out};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) rtr_backend_free_mem(b, all[i]);
}

static rtr_status alloc_upload(rtr_backend *b, float **dev, const float *host, size_t n) {
    rtr_status st = rtr_backend_alloc(b, (void **)dev, n * sizeof(float));
    if (st == RTR_OK && host) st = rtr_backend_upload(b, *dev, host, n * sizeof(float));
    return st;
}

rtr_status rtr_predictor_score_backend(rtr_backend *b, const rtr_predictor *p, const float *emb, int64_t N,
                                       int64_t chunk_rows, float *p_correct, float *tokens) {
    int H = p->H, D = p->D, K = p->n_pairs;
    for (size_t i = 0; i < (size_t)N * D; i++)
        if (!isfinite(emb[i]))
            return rtr_fail(RTR_ERR_NUMERIC, "score: query embedding row %lld holds NaN/inf", (long long)(i / D));
    if (N <= 0) return RTR_OK;
    int64_t chunk = chunk_rows > 0 ? chunk_rows : 16384;
    if (chunk > N) chunk = N;
    size_t KH = (size_t)K * H, HD = (size_t)H * D, cH = (size_t)chunk * H, cK = (size_t)chunk * K;
    /* host staging of what goes up once: both heads' W_q, w2, b2 and pair tables */
    float *host = rtr_malloc(sizeof(float) * (2 * HD + 2 * H + 2 + 2 * KH));
    if (!host) return RTR_ERR_NOMEM;
    float *wq = host, *w2 = wq + 2 * HD, *b2 = w2 + 2 * H, *C = b2 + 2;
    for (int h = 0; h < 2; h++) {
        memcpy(wq + h * HD, p->head[h].W_q, HD * sizeof(float));
        memcpy(w2 + (size_t)h * H, p->head[h].w2, (size_t)H * sizeof(float));
        b2[h] = p->head[h].b2[0];
        rtr_predictor_pair_table(p, h, C + h * KH);
    }
    score_bufs d = {0};
    rtr_status st = alloc_upload(b, &d.wq, wq, 2 * HD);
    if (!st) st = alloc_upload(b, &d.w2, w2, 2 * (size_t)H);
    if (!st) st = alloc_upload(b, &d.b2, b2, 2);
    if (!st) st = alloc_upload(b, &d.C, C, 2 * KH);
    if (!st) st = alloc_upload(b, &d.E, NULL, (size_t)chunk * D);
    if (!st) st = alloc_upload(b, &d.A, NULL, 2 * cH);
    if (!st) st = alloc_upload(b, &d.out, NULL, 2 * cK);
    free(host);
    const rtr_backend_iface *f = b->iface;
    for (int64_t n0 = 0; !st && n0 < N; n0 += chunk) {
        int n = (int)(N - n0 < chunk ? N - n0 : chunk);
        size_t nK = (size_t)n * K;
        st = rtr_backend_upload(b, d.E, emb + (size_t)n0 * D, (size_t)n * D * sizeof(float));
        for (int h = 0; h < 2 && !st; h++)
            st = f->sgemm(b->ctx, false, true, n, H, D, 1.0f, d.E, D, d.wq + h * HD, D, 0.0f, d.A + h * cH, H);
        if (!st)
            st = f->heads_forward(b->ctx, d.out, d.out + cK, d.A, d.A + cH, d.C, d.C + KH, d.w2, d.b2, d.w2 + H,
                                  d.b2 + 1, n, K, H);
        if (!st)
            st = f->heads_activate(b->ctx, d.out, d.out + cK, d.out, d.out + cK, p->cfg.token_target,
                                   p->token_scale, n, K);
        if (!st) st = rtr_backend_download(b, p_correct + (size_t)n0 * K, d.out, nK * sizeof(float));
        if (!st) st = rtr_backend_download(b, tokens + (size_t)n0 * K, d.out + cK, nK * sizeof(float));
    }
    score_bufs_free(b, &d);
    return st;
}
