/* Routing evaluation on realised outcomes, shared by `rtr sweep` and
 * `rtr eval`: the reference routers of METRICS.md (single pairs, Random,
 * Oracle, best and cheapest single) and the curve metrics of one router's
 * (cost, accuracy) points against them. Internal. */
#ifndef RTR_EVALUATE_H
#define RTR_EVALUATE_H

#include "rtr/metrics.h"
#include "rtr/route.h"
#include "eval/knn.h"

typedef struct {
    int32_t k;
    rtr_op_point *single; /* k points */
    rtr_op_point random, oracle;
    int32_t best, cheapest; /* -1 when no pair has outcomes */
} eval_refs;

/* Reference routers over true_correct / true_cost [n x k] (NaN: missing). */
rtr_status eval_refs_compute(eval_refs *r, const float *true_correct, const float *true_cost, int64_t n, int32_t k);

/* The same a chunk of rows at a time (a streamed split): each pair's and
 * the Oracle's sums run over the rows in order, so the result is
 * eval_refs_compute's over the concatenated rows, bit for bit. finish
 * frees the accumulator; free alone abandons it. */
typedef struct {
    int32_t k;
    int64_t n;
    double *acc, *cost, o_acc, o_cost; /* per pair; the Oracle's */
    int64_t *missing, o_missing;
    int32_t *choice;
    int64_t choice_cap;
} eval_refs_acc;
rtr_status eval_refs_acc_init(eval_refs_acc *a, int32_t k);
rtr_status eval_refs_acc_add(eval_refs_acc *a, const float *true_correct, const float *true_cost, int64_t n);
rtr_status eval_refs_acc_finish(eval_refs_acc *a, eval_refs *r);
/* Under MPI: every rank's sums added (each rank added its own rows), the
 * total on every rank; one process: unchanged. The means then agree with
 * one process's up to the order of the additions. */
rtr_status eval_refs_acc_sum_ranks(eval_refs_acc *a);
void eval_refs_acc_free(eval_refs_acc *a);
void eval_refs_free(eval_refs *r);

/* The largest cost among the reference routers' points (the start of x_max;
 * callers widen it with every router compared in the same table). */
double eval_refs_x_max(const eval_refs *r);

typedef struct {
    double aiq, apgr, cpt50, cpt80, to_match, oracle_gap;
} eval_curve;

/* Metrics of one router's points (cost, acc; n of them; NaN points skipped)
 * against the references: AIQ up to x_max; APGR and CPT on x = mean cost
 * normalised between the cheapest and the best single pair (METRICS.md,
 * multi-pair form); cost to match the best single pair; oracle gap. NaN for
 * what is undefined. */
rtr_status eval_curve_compute(eval_curve *m, const eval_refs *r, const double *cost, const double *acc, int64_t n,
                              double x_max);

/* eval_curve_compute over points given one at a time in cost order (ties:
 * highest accuracy first), through the scans its metrics use
 * (curve_scan.h), so a curve too long to hold (a streamed path) gets the
 * same values bit for bit; the hull kept is its vertices only. x_max is
 * needed only at finish, so a caller can stream several curves before it
 * knows their common x_max. finish (aiq0: AIQ from zero, optional) and
 * free release the stream. */
#include "eval/curve_scan.h"
typedef struct {
    const eval_refs *r;
    bool on, norm; /* any metric; the normalised cost of APGR and CPT exists */
    int64_t n;     /* points given, NaN ones included */
    hull_scan hull;
    area_scan area;
    match_scan match;
} eval_curve_stream;
void eval_curve_stream_init(eval_curve_stream *c, const eval_refs *r);
void eval_curve_stream_add(eval_curve_stream *c, double cost, double acc);
rtr_status eval_curve_stream_finish(eval_curve_stream *c, eval_curve *m, double *aiq0, double x_max);
void eval_curve_stream_free(eval_curve_stream *c);

/* The kNN router fitted once (the training rows it searches, each pair's
 * mean as the fallback, and above knn_params.exact_max training rows the
 * IVF index, built once) and applied to any block of evaluated rows. It
 * keeps pointers to the training arrays: they must outlive it. */
typedef struct {
    const float *train_emb, *train_correct, *train_cost;
    int64_t n_train;
    int32_t d, k, nn;
    knn_index *ix; /* NULL: exact search */
    float *gp, *gc;
    rtr_knn_info info;
} eval_knn_model;
rtr_status eval_knn_fit(eval_knn_model *m, const float *train_emb, const float *train_correct,
                        const float *train_cost, int64_t n_train, int32_t d, int32_t k, int32_t nn,
                        const knn_params *prm);
/* p, c [n x k] for emb [n x d]. A row's exact-search scores come from a
 * GEMM over its block of 256 rows (src/eval/metrics.c), so blocks starting
 * at multiples of EVAL_KNN_BLOCK give one call's table bit for bit. */
rtr_status eval_knn_apply(const eval_knn_model *m, float *p, float *c, const float *emb, int64_t n);
void eval_knn_free(eval_knn_model *m);

#define EVAL_KNN_BLOCK 16384 /* 64 of the exact search's 256-row GEMM blocks */

/* rtr_router_knn_table_info (include/rtr/metrics.h) over the n evaluated
 * rows a chunk at a time, so the search's normalised copy of the rows and
 * their neighbour lists are held for one chunk (4·d + 12·nn bytes a row),
 * not for every row. A chunk is a multiple of the exact search's GEMM block
 * of query rows (256, src/eval/metrics.c), so every row's scores, and its
 * table, are one call's bit for bit. Above the exact search's training
 * rows (knn_params.exact_max) the index is built once and searched a chunk
 * at a time too: its GEMMs then group other rows than one call's, which
 * may change a similarity's last bits and so a neighbour on a near tie. */
rtr_status eval_knn_table(float *p, float *c, rtr_knn_info *info, const float *emb, int64_t n,
                          const float *train_emb, const float *train_correct, const float *train_cost,
                          int64_t n_train, int32_t d, int32_t k, int32_t nn);

/* Resample b's weight of each of n queries, w[n]: a Poisson(1) count drawn
 * from a hash of (seed, key[i], b), key[i] a hash of the query's id (NULL:
 * the row index). A query's weight depends on nothing else, so any order,
 * chunking or split of the queries gives the same resamples; every router
 * sees the same weights (paired). The one place weights are drawn. */
void eval_boot_weights(double *w, const uint64_t *key, int64_t n, uint64_t seed, int32_t b);
/* rtr_bootstrap (include/rtr/metrics.h) with query keys (as above) and
 * split into parts (MPI ranks): part `part` of n_parts computes resamples
 * part, part + n_parts, ... and leaves the others' entries 0, so the parts'
 * arrays summed are the whole bootstrap's, bit for bit. Part 0 shows the
 * progress line. */
rtr_status eval_bootstrap_part(rtr_boot *out, const rtr_boot_router *r, int32_t n_routers, const float *correct,
                               const float *cost, const uint64_t *key, int64_t n, int32_t k, int32_t best,
                               int32_t resamples, uint64_t seed, int part, int n_parts);

/* The statistics of the bootstrap (as one resample computes them) with
 * every query weighted 1: the sample's own values, θ̂_M of the m-out-of-n
 * bootstrap (out has one resample). */
rtr_status eval_boot_point(rtr_boot *out, const rtr_boot_router *r, int32_t n_routers, const float *correct,
                           const float *cost, int64_t n, int32_t k, int32_t best);

/* The bootstrap's sample when the evaluated split has more queries than it
 * may use (rtr_eval_params.bootstrap_queries = M): the M queries with the
 * smallest eval_boot_sample_hash(seed, key), key a hash of the query's id.
 * A query's hash depends on nothing else, so the sample is the same set for
 * any order, chunking or split of the rows, and the bottom M of parts'
 * bottom-M sets is the whole's. */
uint64_t eval_boot_sample_hash(uint64_t seed, uint64_t key);
typedef struct {
    uint64_t h;
    int64_t row; /* the query's row in the evaluated split */
} eval_boot_pick;
typedef struct {
    int64_t cap, n, alloc; /* at most cap (M) kept, n now, room for alloc */
    eval_boot_pick *pick;  /* a max-heap on (h, row) until eval_boot_bottom_rows */
} eval_boot_bottom;
rtr_status eval_boot_bottom_init(eval_boot_bottom *s, int64_t M);
rtr_status eval_boot_bottom_add(eval_boot_bottom *s, uint64_t h, int64_t row);
/* The kept picks in ascending row order (no more adds after this). */
void eval_boot_bottom_rows(eval_boot_bottom *s);
/* The kept picks' rows, ascending: *rows (owned, allocated even when
 * empty), *n of them (no more adds after this). */
rtr_status eval_boot_bottom_take(eval_boot_bottom *s, int64_t **rows, int64_t *n);
void eval_boot_bottom_free(eval_boot_bottom *s);


/* rtr_choice_path_lambda (include/rtr/metrics.h) a block of queries at a
 * time: open (k pairs, about n_hint queries in all), add the next n
 * queries' p, c [n x k] (their envelopes on backend b), finish: the path of
 * every query added, in order, equal to one rtr_choice_path_lambda over
 * them bit for bit; finish and free release cb. */
typedef struct eval_choice_builder eval_choice_builder;
rtr_status eval_choice_builder_open(eval_choice_builder **cb, int32_t k, int64_t n_hint);
rtr_status eval_choice_builder_add(eval_choice_builder *cb, rtr_backend *b, const float *p, const float *c, int64_t n);
/* Under MPI (every rank calls it, each having added its own queries, the
 * ranks' queries in rank order being the whole's): every rank's queries
 * into every rank's cb, in rank order, so finish gives one process's path
 * over all of them, bit for bit (their envelopes were computed per query).
 * Alone: nothing. */
rtr_status eval_choice_builder_gather_ranks(eval_choice_builder *cb);
rtr_status eval_choice_builder_finish(eval_choice_builder *cb, rtr_choice_path *cp);
void eval_choice_builder_free(eval_choice_builder *cb);

#endif
