/* Internals of the trainer shared by train.c (the epoch loop, the generic
 * step on any backend) and train_host.c (the step on host backends); not
 * part of the API. */
#ifndef RTR_TRAIN_INT_H
#define RTR_TRAIN_INT_H

#include "rtr/backend.h"
#include "rtr/predictor.h"

#include <stdbool.h>
#include <stdint.h>

/* Pointers of the parameter layout into any buffer of n_params floats:
 * used for the parameters, their gradients and Adam's moments alike. */
typedef struct {
    rtr_head head[2];
    float *u_model, *u_strategy, *d_model, *d_strategy;
} param_view;

/* An op of backend b, and an early return on the first failing call. */
#define OP(b, op, ...) ((b)->iface->op((b)->ctx, __VA_ARGS__))
#define TRY(call)                                                                                                  \
    do {                                                                                                           \
        rtr_status try_st_ = (call);                                                                               \
        if (try_st_ != RTR_OK) return try_st_;                                                                     \
    } while (0)

/* Row-major C = op(A)·op(B) + beta·C on b. */
static inline rtr_status gemm(rtr_backend *b, bool ta, bool tb, int M, int N, int K, const float *A, int lda,
                              const float *B, int ldb, float beta, float *C, int ldc) {
    return OP(b, sgemm, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* The predictor on a backend: its parameters (p->params layout, one buffer)
 * and pair indices in backend memory, and the work buffers of a forward pass
 * over up to `rows` queries. On a host backend the parameters and pairs are
 * p's own arrays, not copies. */
typedef struct {
    rtr_backend *b;
    const rtr_predictor *p;
    float *params;
    param_view v;                   /* views into params */
    int32_t *pair_model, *pair_strategy;
    float *work;                    /* one allocation: */
    float *P_m, *P_s;               /*   per-model / per-strategy products of each head (2 x n_models x H,
                                     *   2 x n_strategies x H: the heads' tables may be built at once) */
    float *C;                       /*   both heads' pair tables, 2 x K x H */
    float *A;                       /*   A = E·W_qᵀ of both heads, 2 x rows x H */
    int rows;
    bool host;
} net;

/* Validation rows are scored this many at a time. */
#define EVAL_ROWS 4096
/* The host step's blocks (train_host.c): columns of H or U per GEMM task, parameter
 * rows per gradient+Adam task (ROW_BLOCK x (D + U) floats of scratch: 192 KB
 * at D = U = 768, within a core's L2), and the most blocks of queries a
 * batch's pairs are cut into. */
#define COL_BLOCK 128
#define ROW_BLOCK 32
#define QUERY_BLOCKS 16

/* A training run on a backend: the predictor (net, with rows = the larger of
 * a batch and a validation chunk), gradient and Adam moments, the rows'
 * embeddings and targets resident in backend memory, the row order, and the
 * batch buffers. */
typedef struct {
    net n;
    int batch;
    float *grad;                 /* the parameter layout (n_params floats; the trainable part is used) */
    param_view g;                /* views into grad */
    float *adam_m, *adam_v;      /* n_trainable each, one allocation */
    const float *emb, *y_c, *y_t; /* all rows: n x D, n x K, n x K */
    float *data;                 /* their backend copy (NULL on a host backend, which reads the host arrays) */
    int64_t *order;              /* backend copy of the row order (the host array on a host backend) */
    float *work;                 /* one allocation: */
    float *E, *Y_c, *Y_t;        /*   gathered rows: rows x D, rows x K, rows x K */
    float *out, *dout;           /*   pre-activations and their gradients, 2 x rows x K each */
    float *acc;                  /*   zeroed before each backward, as rows of H floats: */
    float *dA, *dC, *G_m, *G_s;  /*     2 x batch, 2 x K, 2 x n_models, 2 x n_strategies rows */
    int acc_rows;
    double *loss;                /* sums: train bce, tok, validation bce, tok */
    int32_t *labels;             /* host: labelled correctness and token entries of each row */
    bool host_step;              /* batches take the host step (train_host.c), else batch_grad + adam_update */
    float *part;                 /* host step: per query block, dC (2 x K x H), dw2 (2 x H), db2 (2) */
    double *part_loss;           /*   per query block, the loss sums (2) */
    float *scratch;              /*   per thread, ROW_BLOCK rows of a gradient (ROW_BLOCK x (D + U)) */
    int threads;
} trainer;

/* Head h's pair table into t->C + h·K·H (train.c). */
rtr_status rtr_train_net_table_(net *t, int h);
/* Gather rows idx[0..n) (backend memory) into tr->E, Y_c, Y_t (train.c). */
rtr_status rtr_train_gather_(trainer *tr, const int64_t *idx, int n);

/* The host step's buffers in tr (train_host.c): part, part_loss, scratch. */
rtr_status rtr_train_host_open_(trainer *tr);
/* One training step on host backend memory: the B rows idx[0..B) (host
 * memory), n_c and n_t their labelled entries, Adam step number `step`;
 * the loss sums are added to tr->loss[0..1] (train_host.c). */
rtr_status rtr_train_host_step_(trainer *tr, const int64_t *idx, int B, int64_t n_c, int64_t n_t, int64_t step);

#endif
