/* The training step on host backends (train_int.h). On a host backend
 * every op is a plain function on host memory that may run on several
 * threads at once, so one batch's step is cut into tasks that the
 * OpenMP threads share (one parallel region per batch):
 *   1. each head's pair tables (a task per head) and A = E·W_qᵀ in blocks of
 *      COL_BLOCK columns;
 *   2. the pairs' forward, loss and backward in blocks of queries, each
 *      block's dC, dw2, db2 and loss sums into a partial of its own (dA rows
 *      are the block's);
 *   3. per head, the partials added in block order, then the pair-table
 *      backward (G_m, G_s, db1);
 *   4. du = Σ_heads G·W[:, D:] in blocks of columns (the old W);
 *   5. per ROW_BLOCK rows of W_q, W_m and W_s: those rows' gradient by one
 *      GEMM into the thread's scratch (cache-sized) and Adam on the same rows
 *      at once, so the gradient of the large matrices never goes to memory
 *      (Adam's 6 floats per parameter move, not 7 plus the GEMM's write);
 *      each head's b1, w2, b2;
 *   6. Adam on u_m, u_s (the old values fed dW above).
 * In a data-parallel run (train_int.h's train_share) the update waits for
 * the gradient of every rank: step 5 writes its rows' gradient into
 * tr->grad instead, the whole trainable gradient is summed over the ranks
 * (one allreduce) and Adam runs once over it. Alone the fused step stays.
 * Blocks follow from the sizes, never from the thread count, and partials
 * are added in a fixed order: a run gives the same bits on any number of
 * threads. Other backends take the generic step (batch_grad, adam_update). */
#include "predictor/predictor_int.h"
#include "predictor/train_int.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* One head of rtr_heads_backward in one pass over (query, pair, unit)
 * instead of three: the reference's sums, each in the reference's order
 * (dA over pairs, dC over queries, dw2 over queries then pairs, db2 over
 * every entry), so the results are equal; a unit that the ReLU shuts adds
 * a zero instead of being skipped, which lets the loop vectorise. */
static inline void unit_backward(float *restrict da, float *restrict dc, float *restrict dw, const float *restrict a,
                                 const float *restrict c, const float *restrict w2, float d, int H) {
    for (int j = 0; j < H; j++) {
        float h = a[j] + c[j], on = h > 0.0f ? 1.0f : 0.0f, g = on * (d * w2[j]);
        da[j] += g;
        dc[j] += g;
        dw[j] += on * (d * h);
    }
}

static void head_backward_rows(float *dA, float *dC, float *dw2, float *db2, const float *dout, const float *A,
                               const float *C, const float *w2, int N, int K, int H) {
    float sum = 0.0f;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float d = dout[(size_t)n * K + k];
            sum += d;
            if (d != 0.0f) /* an unlabelled entry adds nothing anywhere */
                unit_backward(dA + (size_t)n * H, dC + (size_t)k * H, dw2, A + (size_t)n * H, C + (size_t)k * H, w2, d, H);
        }
    db2[0] += sum;
}

void rtr_heads_backward_rows_(float *dA_c, float *dA_t, float *dC_c, float *dC_t, float *dw2_c, float *db2_c,
                              float *dw2_t, float *db2_t, const float *dout_c, const float *dout_t, const float *A_c,
                              const float *A_t, const float *C_c, const float *C_t, const float *w2_c,
                              const float *w2_t, int N, int K, int H) {
    head_backward_rows(dA_c, dC_c, dw2_c, db2_c, dout_c, A_c, C_c, w2_c, N, K, H);
    head_backward_rows(dA_t, dC_t, dw2_t, db2_t, dout_t, A_t, C_t, w2_t, N, K, H);
}

/* Adam on n parameters at x (inside tr->n.params) with gradient g. */
static rtr_status adam_at(trainer *tr, float *x, const float *g, size_t n, int64_t step) {
    size_t at = (size_t)(x - tr->n.params);
    return OP(tr->n.b, adam_update, x, g, tr->adam_m + at, tr->adam_v + at, n, tr->n.p->cfg.lr, step);
}

/* Step 5's task i: a block of rows of W_q, W_m or W_s of one head, or the
 * head's b1, w2, b2: their gradient and Adam (fused), or with `split` only
 * the gradient, into tr->grad. */
static rtr_status host_rows_task(trainer *tr, int i, int B, int64_t step, bool split) {
    net *t = &tr->n;
    const rtr_predictor *p = t->p;
    rtr_backend *b = t->b;
    int H = p->H, D = p->D, U = p->U, R = D + U, nrb = (H + ROW_BLOCK - 1) / ROW_BLOCK, per_head = 3 * nrb + 1;
    int h = i / per_head, r = i % per_head;
    const rtr_head *w = &t->v.head[h], *gh = &tr->g.head[h];
    if (r == 3 * nrb) /* b1, w2, b2: adjacent, their gradient already in tr->grad */
        return split ? RTR_OK : adam_at(tr, w->b1, gh->b1, 2 * (size_t)H + 1, step);
    int which = r / nrb, j0 = (r % nrb) * ROW_BLOCK, rows = H - j0 < ROW_BLOCK ? H - j0 : ROW_BLOCK;
    float *scr = tr->scratch + (size_t)omp_get_thread_num() * ROW_BLOCK * R;
    if (which == 0) { /* dW_q[j0..] = dA[:, j0..]ᵀ·E */
        float *dst = split ? gh->W_q + (size_t)j0 * D : scr;
        TRY(gemm(b, true, false, rows, D, B, tr->dA + (size_t)h * tr->batch * H + j0, H, tr->E, D, 0.0f, dst, D));
        return split ? RTR_OK : adam_at(tr, w->W_q + (size_t)j0 * D, scr, (size_t)rows * D, step);
    }
    /* dW_m[j0..] = G_m[:, j0..]ᵀ·[d_m | u_m], likewise for strategies */
    bool mod = which == 1;
    int n_rows = mod ? p->n_models : p->n_strategies;
    const float *G = (mod ? tr->G_m + (size_t)h * p->n_models * H : tr->G_s + (size_t)h * p->n_strategies * H) + j0;
    float *dst = split ? (mod ? gh->W_m : gh->W_s) + (size_t)j0 * R : scr;
    TRY(gemm(b, true, false, rows, D, n_rows, G, H, mod ? t->v.d_model : t->v.d_strategy, D, 0.0f, dst, R));
    if (U > 0) TRY(gemm(b, true, false, rows, U, n_rows, G, H, mod ? t->v.u_model : t->v.u_strategy, U, 0.0f, dst + D, R));
    return split ? RTR_OK : adam_at(tr, (mod ? w->W_m : w->W_s) + (size_t)j0 * R, scr, (size_t)rows * R, step);
}

/* Step 2's block q of the batch's B rows (blocks of `per` rows). */
static rtr_status host_pairs_task(trainer *tr, int q, int per, int B, float gscale_c, float gscale_t) {
    net *t = &tr->n;
    const rtr_predictor *p = t->p;
    int H = p->H, K = p->n_pairs, r0 = q * per, n = B - r0 < per ? B - r0 : per;
    size_t RH = (size_t)t->rows * H, RK = (size_t)t->rows * K, KH = (size_t)K * H, BH = (size_t)tr->batch * H;
    float *part = tr->part + (size_t)q * (2 * KH + 2 * (size_t)H + 2), *dA = tr->dA + (size_t)r0 * H;
    double *loss = tr->part_loss + 2 * q;
    float *out_c = tr->out + (size_t)r0 * K, *out_t = out_c + RK, *dout_c = tr->dout + (size_t)r0 * K,
          *dout_t = dout_c + RK;
    const float *A_c = t->A + (size_t)r0 * H, *A_t = A_c + RH;
    memset(part, 0, sizeof(float) * (2 * KH + 2 * (size_t)H + 2));
    memset(dA, 0, sizeof(float) * (size_t)n * H);
    memset(dA + BH, 0, sizeof(float) * (size_t)n * H);
    loss[0] = loss[1] = 0.0;
    TRY(OP(t->b, heads_forward, out_c, out_t, A_c, A_t, t->C, t->C + KH, t->v.head[0].w2, t->v.head[0].b2,
           t->v.head[1].w2, t->v.head[1].b2, n, K, H));
    TRY(OP(t->b, heads_loss, dout_c, dout_t, loss, out_c, out_t, tr->Y_c + (size_t)r0 * K, tr->Y_t + (size_t)r0 * K,
           gscale_c, gscale_t, n, K));
    float *dC = part, *dw2 = part + 2 * KH, *db2 = dw2 + 2 * (size_t)H;
    rtr_heads_backward_rows_(dA, dA + BH, dC, dC + KH, dw2, db2, dw2 + H, db2 + 1, dout_c, dout_t, A_c, A_t, t->C,
                             t->C + KH, t->v.head[0].w2, t->v.head[1].w2, n, K, H);
    return RTR_OK;
}

/* Step 3 for head h: the blocks' partials summed in block order, then the
 * pair-table backward; head 0 also adds the loss sums. */
static rtr_status host_reduce_task(trainer *tr, int h, int blocks) {
    net *t = &tr->n;
    const rtr_predictor *p = t->p;
    int H = p->H, K = p->n_pairs;
    size_t KH = (size_t)K * H, stride = 2 * KH + 2 * (size_t)H + 2;
    float *dC = tr->dC + h * KH, *dw2 = tr->g.head[h].w2, *db2 = tr->g.head[h].b2;
    const float *part = tr->part;
    memcpy(dC, part + h * KH, sizeof(float) * KH);
    memcpy(dw2, part + 2 * KH + (size_t)h * H, sizeof(float) * (size_t)H);
    *db2 = part[2 * KH + 2 * (size_t)H + h];
    for (int q = 1; q < blocks; q++) {
        const float *pq = part + (size_t)q * stride;
        for (size_t i = 0; i < KH; i++) dC[i] += pq[h * KH + i];
        for (int j = 0; j < H; j++) dw2[j] += pq[2 * KH + (size_t)h * H + j];
        *db2 += pq[2 * KH + 2 * (size_t)H + h];
    }
    if (h == 0)
        for (int q = 0; q < blocks; q++) tr->loss[0] += tr->part_loss[2 * q], tr->loss[1] += tr->part_loss[2 * q + 1];
    float *G_m = tr->G_m + (size_t)h * p->n_models * H, *G_s = tr->G_s + (size_t)h * p->n_strategies * H;
    memset(G_m, 0, sizeof(float) * (size_t)p->n_models * H);
    memset(G_s, 0, sizeof(float) * (size_t)p->n_strategies * H);
    memset(tr->g.head[h].b1, 0, sizeof(float) * (size_t)H);
    return OP(t->b, pair_table_backward, G_m, G_s, tr->g.head[h].b1, dC, t->pair_model, t->pair_strategy, K, H,
              p->n_models, p->n_strategies);
}

/* Step 1's task i: head i's pair tables (i < 2), else a block of columns of
 * one head's A. */
static rtr_status host_forward_task(trainer *tr, int i, int B) {
    net *t = &tr->n;
    int H = t->p->H, D = t->p->D, ncb = (H + COL_BLOCK - 1) / COL_BLOCK;
    if (i < 2) return rtr_train_net_table_(t, i);
    int h = (i - 2) / ncb, c0 = (i - 2) % ncb * COL_BLOCK, w = H - c0 < COL_BLOCK ? H - c0 : COL_BLOCK;
    return gemm(t->b, false, true, B, w, D, tr->E, D, t->v.head[h].W_q + (size_t)c0 * D, D, 0.0f,
                t->A + (size_t)h * t->rows * H + c0, H);
}

/* Step 4's task i: columns of du_m and du_s, both heads in head order. */
static rtr_status host_du_task(trainer *tr, int i) {
    net *t = &tr->n;
    const rtr_predictor *p = t->p;
    int H = p->H, D = p->D, U = p->U, R = D + U, nm = p->n_models, ns = p->n_strategies;
    int c0 = i * COL_BLOCK, w = U - c0 < COL_BLOCK ? U - c0 : COL_BLOCK;
    for (int h = 0; h < 2; h++) {
        float beta = h ? 1.0f : 0.0f;
        TRY(gemm(t->b, false, false, nm, w, H, tr->G_m + (size_t)h * nm * H, H, t->v.head[h].W_m + D + c0, R, beta,
                 tr->g.u_model + c0, U));
        TRY(gemm(t->b, false, false, ns, w, H, tr->G_s + (size_t)h * ns * H, H, t->v.head[h].W_s + D + c0, R, beta,
                 tr->g.u_strategy + c0, U));
    }
    return RTR_OK;
}

/* The gradient of the B rows idx[0..B) (host memory), and with !split
 * Adam step number `step` fused into it (all but u_m, u_s); loss sums
 * added to tr->loss[0..1]. */
static rtr_status host_step(trainer *tr, const int64_t *idx, int B, int64_t n_c, int64_t n_t, int64_t step,
                            bool split) {
    const rtr_predictor *p = tr->n.p;
    int H = p->H, U = p->U, ncb = (H + COL_BLOCK - 1) / COL_BLOCK, ucb = (U + COL_BLOCK - 1) / COL_BLOCK;
    int per = (B + QUERY_BLOCKS - 1) / QUERY_BLOCKS, blocks = (B + per - 1) / per;
    int n_rows_tasks = 2 * (3 * ((H + ROW_BLOCK - 1) / ROW_BLOCK) + 1);
    float gscale_c = n_c ? 1.0f / (float)n_c : 0.0f, gscale_t = n_t ? 1.0f / (float)n_t : 0.0f;
    TRY(rtr_train_gather_(tr, idx, B));
    rtr_status st = RTR_OK;
    /* each thread calls BLAS on one thread (OpenBLAS's own pool would
     * compete with OpenMP's); set once here, not per call, as calls run at once */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#define HOST_TASKS(n, call)                                                                                        \
    _Pragma("omp for schedule(dynamic)") for (int i_ = 0; i_ < (n); i_++) {                                        \
        rtr_status s_ = call;                                                                                      \
        if (s_ != RTR_OK) {                                                                                        \
            _Pragma("omp critical") st = s_; /* unnamed: a named one exports a symbol */                   \
        }                                                                                                          \
    }
#pragma omp parallel
    {
        HOST_TASKS(2 + 2 * ncb, host_forward_task(tr, i_, B))
        HOST_TASKS(blocks, host_pairs_task(tr, i_, per, B, gscale_c, gscale_t))
        HOST_TASKS(2, host_reduce_task(tr, i_, blocks))
        HOST_TASKS(ucb, host_du_task(tr, i_))
        HOST_TASKS(n_rows_tasks, host_rows_task(tr, i_, B, step, split))
    }
#undef HOST_TASKS
    openblas_set_num_threads(blas_threads);
    return st;
}

/* One training step on the B rows idx[0..B) (host memory) with Adam step
 * number `step`; loss sums added to tr->loss[0..1]. In a data-parallel run
 * B may be 0 (no row of the batch here): the rank adds a zero gradient. */
rtr_status rtr_train_host_step_(trainer *tr, const int64_t *idx, int B, int64_t n_c, int64_t n_t, int64_t step) {
    const rtr_predictor *p = tr->n.p;
    if (tr->share) {
        if (B > 0) TRY(host_step(tr, idx, B, n_c, n_t, step, true));
        else memset(tr->grad, 0, sizeof(float) * p->n_trainable);
        TRY(rtr_train_sum_grad_(tr));
        return adam_at(tr, tr->n.params, tr->grad, p->n_trainable, step);
    }
    TRY(host_step(tr, idx, B, n_c, n_t, step, false));
    /* u_m, u_s (adjacent): after every use of their old values */
    return p->U > 0 ? adam_at(tr, tr->n.v.u_model, tr->g.u_model, (size_t)(p->n_models + p->n_strategies) * p->U, step)
                    : RTR_OK;
}

rtr_status rtr_train_host_open_(trainer *tr) {
    const rtr_predictor *p = tr->n.p;
    size_t H = (size_t)p->H, K = (size_t)p->n_pairs;
    tr->threads = omp_get_max_threads();
    tr->part = rtr_malloc(sizeof(float) * QUERY_BLOCKS * (2 * K * H + 2 * H + 2));
    tr->part_loss = rtr_malloc(sizeof(double) * QUERY_BLOCKS * 2);
    tr->scratch = rtr_malloc(sizeof(float) * (size_t)tr->threads * ROW_BLOCK * ((size_t)p->D + (size_t)p->U));
    return tr->part && tr->part_loss && tr->scratch ? RTR_OK : RTR_ERR_NOMEM;
}
