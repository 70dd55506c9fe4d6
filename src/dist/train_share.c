/* Data-parallel training (train_int.h's train_share, docs/SCALING.md): which
 * rows of each global batch this rank holds, the batches' labelled counts
 * and the gradient summed over the ranks. The epoch loop is train.c's; it
 * calls these where a run holds only its share of the rows. */
#include "predictor/train_int.h"
#include "rtr/dist.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

/* Row g's local row where this rank holds it, else -1. */
#define LOCAL(s, g) rtr_row_share_local((s)->rows, (g))

rtr_status rtr_train_share_open_(train_share *s, const rtr_row_share *rows, const int64_t *order, int64_t n_fit,
                                 int batch) {
    memset(s, 0, sizeof *s);
    s->rows = rows;
    s->batch = batch;
    s->nccl = -1;
    s->n_steps = (n_fit + batch - 1) / batch;
    s->order = rtr_malloc(sizeof(int64_t) * (size_t)rows->n_local);
    s->step = rtr_malloc(sizeof(int64_t) * (size_t)(s->n_steps + 1));
    s->count = rtr_malloc(sizeof(int64_t) * 2 * (size_t)s->n_steps);
    if (!s->order || !s->step || !s->count) return RTR_ERR_NOMEM;
    for (int64_t i = 0; i < rows->n; i++) {
        int64_t l = LOCAL(s, order[i]);
        if (l < 0) continue;
        s->order[s->n_fit + s->n_val] = l;
        if (i < n_fit) s->n_fit++;
        else s->n_val++;
    }
    return RTR_OK;
}

void rtr_train_share_close_(train_share *s) {
    free(s->order);
    free(s->step);
    free(s->count);
    free(s->host_grad);
    memset(s, 0, sizeof *s);
}

rtr_status rtr_train_share_epoch_(trainer *tr, const int64_t *fit) {
    train_share *s = tr->share;
    int64_t at = 0;
    for (int64_t st = 0; st < s->n_steps; st++) {
        int64_t b0 = st * s->batch, c[2] = {0, 0};
        s->step[st] = at;
        /* the last batch ends where the fit rows do: this rank's fit rows all lie before */
        for (int64_t i = b0; i < b0 + s->batch && at < s->n_fit; i++) {
            int64_t l = LOCAL(s, fit[i]);
            if (l < 0) continue;
            s->order[at++] = l;
            c[0] += tr->labels[2 * l], c[1] += tr->labels[2 * l + 1];
        }
        s->count[2 * st] = c[0], s->count[2 * st + 1] = c[1];
    }
    s->step[s->n_steps] = at;
    return rtr_dist_sum_i64(s->count, 2 * (size_t)s->n_steps);
}

void rtr_train_share_batch_(const trainer *tr, int64_t step, int64_t *at, int *B, int64_t c[2]) {
    const train_share *s = tr->share;
    *at = s->step[step];
    *B = (int)(s->step[step + 1] - s->step[step]);
    c[0] = s->count[2 * step], c[1] = s->count[2 * step + 1];
}

rtr_status rtr_train_sum_grad_(trainer *tr) {
    train_share *s = tr->share;
    if (!s) return RTR_OK;
    size_t n = tr->n.p->n_trainable;
    if (tr->n.host) return rtr_dist_sum_f32(tr->grad, n);
    if (s->nccl < 0) {
        /* NCCL is loaded at run time, so a node may lack it: decided once
         * and by every rank together, since a sum that is NCCL's on some
         * ranks and MPI's on others would never complete */
        rtr_status ld = rtr_dist_nccl_built() ? rtr_dist_nccl_load() : RTR_ERR_UNSUPPORTED;
        int64_t ok = ld == RTR_OK;
        rtr_status st = rtr_dist_sum_i64(&ok, 1);
        if (st) return st;
        s->nccl = ok == rtr_dist_size();
        if (!s->nccl && rtr_dist_nccl_built() && rtr_dist_rank() == 0)
            rtr_warn("NCCL could not be loaded on %d of %d ranks%s%s: gradients are summed through the host",
                     rtr_dist_size() - (int)ok, rtr_dist_size(), ld ? ", here: " : "", ld ? rtr_last_error() : "");
    }
    if (s->nccl) return rtr_dist_nccl_sum_f32(tr->n.b, tr->grad, n);
    /* no collective on device memory: through the host */
    if (!s->host_grad && !(s->host_grad = rtr_malloc(sizeof(float) * n))) return RTR_ERR_NOMEM;
    rtr_status st = rtr_backend_download(tr->n.b, s->host_grad, tr->grad, sizeof(float) * n);
    if (!st) st = rtr_dist_sum_f32(s->host_grad, n);
    if (!st) st = rtr_backend_upload(tr->n.b, tr->grad, s->host_grad, sizeof(float) * n);
    return st;
}

rtr_status rtr_train_share_hashes_(uint64_t **all, const rtr_row_share *rows, const uint64_t *local) {
    *all = NULL;
    void *got = NULL;
    size_t len = 0;
    rtr_status st = rtr_dist_gather(&got, &len, NULL, local, sizeof(uint64_t) * (size_t)rows->n_local);
    if (st || rtr_dist_rank() != 0) {
        free(got);
        return st;
    }
    uint64_t *h = rtr_malloc(sizeof *h * (size_t)(rows->n ? rows->n : 1));
    if (!h) {
        free(got);
        return RTR_ERR_NOMEM;
    }
    /* rank r's block holds its shards' rows in shard order, from local row 0 */
    const uint64_t *block = got;
    for (int r = 0; r < rtr_dist_size(); r++) {
        int64_t held = 0;
        for (int i = 0; i < rows->n_shards; i++) {
            if (rows->owner[i] != r) continue;
            int64_t m = rows->start[i + 1] - rows->start[i];
            memcpy(h + rows->start[i], block + rows->local[i], sizeof *h * (size_t)m);
            held += m;
        }
        block += held;
    }
    free(got);
    *all = h;
    return RTR_OK;
}
