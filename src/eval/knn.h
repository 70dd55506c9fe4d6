/* Nearest neighbours by cosine similarity for the kNN-based baselines (kNN
 * router, RouteLLM-style): exact search (blocked GEMM over every reference
 * row) for small reference sets, an inverted-file index above that.
 *
 * Inverted file (IVF): spherical k-means (seeded) splits the reference rows
 * into about 2·sqrt(n) lists; a query is compared with every list centre
 * and searched exactly within the `nprobe` closest lists. Queries are
 * processed in blocks, and within a block every probed list is one GEMM
 * against the block's queries that probe it, so the work is GEMMs either
 * way: about n_q · (lists + nprobe · n / lists) · d multiply-adds instead of
 * n_q · n · d.
 *
 * Recall is measured, not assumed: at build time a seeded sample of the
 * reference rows is searched both exactly and through the index (each row
 * excluding itself) and nprobe is doubled until recall@k on that sample
 * reaches the target (default 0.97, so a held-out query set keeps >= 0.95
 * with margin); knn_index_recall() reports the value reached. Results are
 * deterministic for a given input and seed, and an IVF's answer for a query
 * is the same bits whatever queries are searched with it and on however many
 * threads: the GEMMs only preselect candidates (their rounding depends on a
 * query's row in the call), and the lists probed and neighbours returned
 * are the best by a dot product summed in a fixed order, with every row
 * that could tie within the GEMM's rounding among the candidates (knn.c,
 * dot_fixed; tests/test_knn.c). Exact search orders by the GEMM's scores. */
#ifndef RTR_EVAL_KNN_H
#define RTR_EVAL_KNN_H

#include <stdint.h>

#include "rtr/metrics.h"
#include "rtr/rtr.h"

typedef struct knn_index knn_index;

typedef struct {
    int64_t exact_max;    /* at most this many reference rows: exact search (default 50,000) */
    int32_t lists;        /* IVF lists (0: about 2·sqrt(n)) */
    int32_t nprobe;       /* lists searched per query (0: calibrated to reach target_recall) */
    int32_t k;            /* neighbours the calibration is for (default 10) */
    double target_recall; /* calibration target for recall@k (default 0.97) */
    uint64_t seed;
} knn_params;

knn_params knn_default_params(void);

/* Index the n x d rows of ref (copied, normalised; ref may be freed after).
 * RTR_ERR_NOMEM, RTR_ERR_INVALID for n < 1 or d < 1. */
rtr_status knn_index_build(knn_index **out, const float *ref, int64_t n, int32_t d, const knn_params *params);
void knn_index_free(knn_index *ix);

/* The nn most similar reference rows of each of the n_q query rows, most
 * similar first: idx[i·nn + j] (row numbers of ref) and sim[i·nn + j]
 * (cosine). Same contract as rtr_knn_search (include/rtr/metrics.h). */
rtr_status knn_index_search(const knn_index *ix, int64_t *idx, float *sim, const float *q, int64_t n_q, int32_t nn);

/* Whether the index is exact, its lists and nprobe, and the recall@k its
 * calibration measured (1 when exact). */
int knn_index_is_exact(const knn_index *ix);
int32_t knn_index_lists(const knn_index *ix);
int32_t knn_index_nprobe(const knn_index *ix);
double knn_index_recall(const knn_index *ix);

/* rtr_router_knn_table (include/rtr/metrics.h) with the search's parameters:
 * exact up to prm->exact_max training rows, else an index built with prm
 * (its k set to nn); info (may be NULL) says which. */
rtr_status knn_router_table(float *p, float *c, const float *emb, int64_t n, const float *train_emb,
                            const float *train_correct, const float *train_cost, int64_t n_train, int32_t d,
                            int32_t k, int32_t nn, const knn_params *prm, rtr_knn_info *info);

#endif
