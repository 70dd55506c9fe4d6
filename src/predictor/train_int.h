/* Internals of the trainer shared by train.c (the epoch loop, the generic
 * step on any backend) and train_host.c (the step on host backends); not
 * part of the API. */
#ifndef RTR_TRAIN_INT_H
#define RTR_TRAIN_INT_H

#include "rtr/backend.h"
#include "rtr/dist.h"
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

/* A data-parallel run (src/dist/train_share.c, docs/SCALING.md): each rank
 * holds the rows of its shards (rows), the data's rows 0 .. rows->n_local,
 * of the job's rows in the order one process gathers them. Every rank draws
 * the same order of the job's rows and takes the same global batches as one
 * process; each computes the gradient of the rows of a batch it holds, with
 * the whole batch's scale, and the gradients are summed over the ranks
 * before the update (one allreduce of the trainable gradient per step). The
 * targets' statistics and the loss sums are summed over the ranks too, so
 * early stopping is decided on the same figures everywhere. */
typedef struct {
    const rtr_row_share *rows;
    int64_t *order;       /* local rows: the epoch's fit rows in its global order, then the validation rows */
    int64_t n_fit, n_val; /* this rank's fit and validation rows */
    int64_t n_steps;
    int64_t *step;        /* n_steps + 1: global batch s is this rank's order[step[s] .. step[s + 1]) */
    int64_t *count;       /* 2 x n_steps: the labelled entries of both heads in global batch s */
    float *host_grad;     /* the gradient's host copy where the backend's memory is not the host's */
    int nccl;             /* device gradients summed with NCCL: -1 not decided yet, 0 no, 1 yes */
    int batch;
} train_share;

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
    train_share *share;          /* a data-parallel run's (NULL: this process holds every row) */
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

/* rtr_predictor_train_on for a data-parallel run: d holds this rank's rows
 * of the job's (rows); every rank of the job calls it (train.c). */
rtr_status rtr_train_share_run_(rtr_backend *b, rtr_predictor *p, const rtr_train_data *d, const rtr_row_share *rows,
                                rtr_epoch_fn log, void *user);

/* src/dist/train_share.c. The local order of the rows of `rows` among the
 * job's order[0..n): fit rows (order[0..n_fit)) then validation rows. */
rtr_status rtr_train_share_open_(train_share *s, const rtr_row_share *rows, const int64_t *order, int64_t n_fit,
                                 int batch);
void rtr_train_share_close_(train_share *s);
/* An epoch's global fit order fit[0..n_fit) (the job's rows): this rank's
 * part of it into s->order in that order, cut at the global batches, and
 * each batch's labelled entries summed over the ranks (one allreduce). */
rtr_status rtr_train_share_epoch_(trainer *tr, const int64_t *fit);
/* Global batch `step`: this rank's rows are tr->order[*at .. *at + *B); c
 * the whole batch's labelled entries. */
void rtr_train_share_batch_(const trainer *tr, int64_t step, int64_t *at, int *B, int64_t c[2]);
/* The trainable gradient tr->grad summed over the ranks (a no-op alone):
 * MPI_Allreduce on host memory, NCCL on device memory where rtr was built
 * with it, else through a host copy. */
rtr_status rtr_train_sum_grad_(trainer *tr);
/* The job's row hashes, in global order, on rank 0 (*all, n, the caller
 * frees; other ranks: NULL) from each rank's local ones. */
rtr_status rtr_train_share_hashes_(uint64_t **all, const rtr_row_share *rows, const uint64_t *local);

#endif
