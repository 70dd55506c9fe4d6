/* Routing metrics and reference routers, as docs/design METRICS.md defines
 * them (docs/ROUTING.md says how each is implemented): operating points on
 * ground truth, single pairs, Random (exact expectation), Oracle, best
 * single, the dataset-prior and kNN routers (which produce routing tables
 * for the same λ rule and path as RTR), a RouteLLM-style two-pair threshold
 * sweep, and the curve metrics AIQ, APGR, CPT, cost-to-match and oracle gap.
 *
 * Conventions: outcome matrices are [n x k] row-major float with NaN for a
 * missing outcome; a query whose chosen pair is missing is left out of
 * accuracy and cost and counted in n_missing. Curves are given as parallel
 * arrays of n points. Functions that can fail return rtr_status; pure
 * formulas return NaN where the metric is undefined ("not reached"). */
#ifndef RTR_METRICS_H
#define RTR_METRICS_H

#include "rtr/backend.h"
#include "rtr/rtr.h"
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One operating point on ground truth: means over the n − n_missing queries
 * whose chosen outcome exists (NaN when none does). */
typedef struct {
    double acc, cost;
    int64_t n, n_missing;
} rtr_op_point;

/* Evaluate per-query choices (choice[i] in [0,k), or −1: counted missing)
 * against correct/cost [n x k]. */
RTR_API rtr_op_point rtr_eval_choice(const int32_t *choice, const float *correct, const float *cost,
                             int64_t n, int32_t k);

/* ---------------------------------------------------- reference routers */

/* Every query to pair j, for each j: out[k]. */
RTR_API void rtr_router_single(rtr_op_point *out, const float *correct, const float *cost, int64_t n, int32_t k);
/* Random: the exact expectation of a uniform choice, i.e. the mean of the k
 * single-pair points (pairs whose point is NaN are left out). */
RTR_API rtr_op_point rtr_router_random(const rtr_op_point *single, int32_t k);
/* Best single: highest accuracy, ties to the cheaper, then the lower index;
 * −1 when every point is NaN. */
RTR_API int32_t rtr_router_best_single(const rtr_op_point *single, int32_t k);
/* Cheapest single: lowest mean cost, ties to the more accurate. */
RTR_API int32_t rtr_router_cheapest_single(const rtr_op_point *single, int32_t k);
/* Oracle: per query the cheapest pair with the query's best outcome when
 * that outcome is > 0 (for 0/1 labels: the cheapest correct pair), else the
 * cheapest pair with an outcome (counted as its outcome, i.e. wrong); −1
 * when every outcome of the query is missing. choice: [n]. */
RTR_API void rtr_router_oracle(int32_t *choice, const float *correct, const float *cost, int64_t n, int32_t k);

/* Dataset prior as a routing table: p[i,j], c[i,j] = mean correctness and
 * cost of pair j over the training queries of query i's dataset (outcomes
 * present only). A dataset absent from training, or a pair with no outcome
 * in it, falls back to the pair's mean over all training queries; a pair
 * with no training outcome at all is NaN (never chosen). p, c: [n x k]. */
RTR_API rtr_status rtr_router_prior_table(float *p, float *c, const char *const *dataset, int64_t n,
                                  const char *const *train_dataset, const float *train_correct,
                                  const float *train_cost, int64_t n_train, int32_t k);

/* The nn most cosine-similar rows of ref for each row of q (rows need not be
 * normalised; zero rows have similarity 0), through blocked cblas_sgemm.
 * idx, sim: [n_q x nn], best first, ties to the lower index; nn <= n_ref. */
RTR_API rtr_status rtr_knn_search(int64_t *idx, float *sim, const float *q, int64_t n_q, const float *ref,
                          int64_t n_ref, int32_t d, int32_t nn);

/* kNN router table (the paper's KNN-Router): p, c [n x k] = mean training
 * correctness and cost over each query's nn nearest training queries
 * (outcomes present only; a pair missing in every neighbour falls back to
 * its training mean, NaN when it has none). emb: [n x d], train_emb:
 * [n_train x d]. Up to 50,000 training rows the neighbours are exact
 * (rtr_knn_search); beyond, exact search is quadratic and they come from an
 * inverted-file index whose probes are calibrated to recall@nn >= 0.97
 * against exact search on a sample of the training rows (src/eval/knn.h),
 * with one rtr_note line saying so. */
RTR_API rtr_status rtr_router_knn_table(float *p, float *c, const float *emb, int64_t n,
                                const float *train_emb, const float *train_correct,
                                const float *train_cost, int64_t n_train, int32_t d, int32_t k,
                                int32_t nn);

/* How a kNN router table was searched. */
typedef struct {
    bool exact;        /* exact search, or the inverted-file index */
    int64_t exact_max; /* training rows up to which the search is exact */
    int32_t lists, nprobe; /* the index's lists and lists probed per query (0 when exact) */
    double recall;     /* recall@nn the index's calibration measured (1 when exact) */
} rtr_knn_info;

/* rtr_router_knn_table, and into info how it searched. */
RTR_API rtr_status rtr_router_knn_table_info(float *p, float *c, rtr_knn_info *info, const float *emb,
                                             int64_t n, const float *train_emb,
                                             const float *train_correct, const float *train_cost, int64_t n_train, int32_t d,
                                             int32_t k, int32_t nn);

/* EmbedLLM-style router: a learned embedding v_j per pair and a learned
 * projection W of the query embedding, P(correct) = σ(v_j·(W·e) + b_j),
 * fitted by Adam on the binary cross-entropy of the training outcomes
 * (missing ones skipped; fractional labels allowed) with L2 weight decay;
 * cost is the pair's training mean (NaN when it has none: never chosen).
 * Every product is a cblas_sgemm. Deterministic for a given seed. */
typedef struct {
    int32_t dim;         /* learned embedding size h                    */
    int32_t epochs;      /* full-batch Adam steps                       */
    double lr;           /* Adam step size                              */
    double weight_decay; /* L2 penalty on W and the pair embeddings     */
    uint64_t seed;       /* initialisation                              */
} rtr_embedllm_params;
RTR_API rtr_embedllm_params rtr_embedllm_default_params(void);

/* The fitted model: W [h x d], V [k x h], b [k] in par; each pair's mean
 * training cost (NaN: a pair never observed, never chosen). */
typedef struct {
    int32_t d, h, k;
    float *par;
    float *pair_cost;
} rtr_embedllm_model;

/* Train on (train_emb [n_train x d], train_correct/train_cost [n_train x k]).
 * *train_loss (optional) receives the mean BCE of the first and the last
 * epoch, loss[0] and loss[1]. */
RTR_API rtr_status rtr_embedllm_fit(rtr_embedllm_model *m, double train_loss[2], const float *train_emb,
                                    const float *train_correct, const float *train_cost, int64_t n_train, int32_t d,
                                    int32_t k, const rtr_embedllm_params *prm);
/* Fill p, c [n x k] for emb [n x d]. Each row is computed alone in a fixed
 * order, so any chunking of the rows (or split across ranks) gives the
 * same bits. */
RTR_API rtr_status rtr_embedllm_apply(const rtr_embedllm_model *m, float *p, float *c, const float *emb, int64_t n);
RTR_API void rtr_embedllm_free(rtr_embedllm_model *m);

/* rtr_embedllm_fit, then rtr_embedllm_apply to emb [n x d]. */
RTR_API rtr_status rtr_router_embedllm_table(float *p, float *c, double train_loss[2], const float *emb,
                                     int64_t n, const float *train_emb,
                                     const float *train_correct, const float *train_cost, int64_t n_train, int32_t d,
                                     int32_t k, const rtr_embedllm_params *prm);

/* RTR's default router (docs/PREDICTOR.md, "The default router"): the
 * network's correctness estimates combined with what the training outcomes
 * say directly, chosen per corpus on validation rows the network was not
 * fitted on (rtr_predictor.val_hash), and a guard for unseen datasets.
 * Candidates, simplest first: the network as it is (the paper's model);
 * Platt scaling of its logit; a logistic blend of its logit with the logit
 * of the kNN estimate; with the dataset prior's; with both. Each is scored
 * by its cross-validated log-loss over the validation rows (folds of
 * queries; kNN and prior estimates from the other training rows), and the
 * simplest candidate within one standard error of the best is kept (the
 * one-standard-error rule: no gain smaller than the noise of validation is
 * bought with a more complex model). The kept blend is refitted on all
 * validation rows and applied with kNN and prior estimates from every
 * training row. Guard: a query whose dataset no training row has gets the
 * pairs' overall training means (correctness and cost) instead, the only
 * estimate that does not rest on transfer from other datasets. */
enum { RTR_STACK_MLP, RTR_STACK_PLATT, RTR_STACK_KNN, RTR_STACK_PRIOR, RTR_STACK_ALL, RTR_STACK_N };
RTR_API const char *rtr_stack_name(int32_t kind);
/* A candidate's option name ("network", "platt", "knn", "prior",
 * "knn+prior"), and the candidate an option name names (-1: none). */
RTR_API const char *rtr_stack_option(int32_t kind);
RTR_API int32_t rtr_stack_from_option(const char *option);
typedef struct {
    int32_t knn;   /* neighbours of the kNN estimate, 10 */
    int32_t folds; /* cross-validation folds over the validation queries, 5 */
    /* Ablations (bench/predictor_ablation.py): only >= 0 keeps that
     * RTR_STACK_* candidate whatever validation says (it is still scored
     * and fitted on the validation rows; -1, the default, lets the rule
     * choose); no_guard leaves unseen datasets to the candidate. */
    int32_t only;
    bool no_guard;
} rtr_stack_params;
RTR_API rtr_stack_params rtr_stack_default_params(void);
typedef struct {
    int32_t chosen;                                    /* RTR_STACK_* kept */
    double cv_logloss[RTR_STACK_N], cv_se[RTR_STACK_N]; /* NaN: not evaluated */
    double weight[4];   /* the kept blend: intercept, then the logit weights of network, kNN, prior */
    int64_t n_val;      /* validation rows found among the training rows */
    int64_t n_unseen;   /* evaluated queries of a dataset training lacks (guarded) */
} rtr_stack_report;

/* The default router fitted on the training rows (rtr_stack_fit), applied
 * to any chunk of evaluated rows (rtr_stack_apply). It keeps pointers into
 * train_dataset: those strings must outlive it. */
typedef struct {
    int32_t k;
    int32_t knn;               /* neighbours of the kNN estimate its apply needs (nn) */
    bool no_guard;
    rtr_stack_report rep;      /* n_unseen counts the rows applied so far */
    float *gp, *gc;            /* [k] the guard's overall training means */
    const char **datasets;     /* the training datasets, each once */
    int64_t n_datasets;
} rtr_stack_model;

/* Choose and fit the blend (the training side of rtr_stack_table). */
RTR_API rtr_status rtr_stack_fit(rtr_stack_model *m, const float *train_mlp_p, const float *train_emb,
                                 const char *const *train_dataset, const float *train_correct,
                                 const float *train_cost, int64_t n_train, const uint64_t *val_hash,
                                 int64_t n_val_hash, int32_t d, int32_t k, const rtr_stack_params *prm);
/* Whether apply reads the kNN and the dataset-prior estimates (NULL may be
 * passed for those it does not). */
RTR_API bool rtr_stack_uses_knn(const rtr_stack_model *m);
RTR_API bool rtr_stack_uses_prior(const rtr_stack_model *m);
/* Fill p, cost [n x k] for n evaluated rows from the network's mlp_p /
 * mlp_cost, the kNN router's estimates knn_p with m->knn neighbours over
 * every training row, and the dataset prior's prior_p (rtr_router_prior_table
 * over every training row); each row alone, so any chunking gives the same
 * table. */
RTR_API rtr_status rtr_stack_apply(rtr_stack_model *m, float *p, float *cost, const float *mlp_p,
                                   const float *mlp_cost, const float *knn_p, const float *prior_p,
                                   const char *const *dataset, int64_t n);
RTR_API void rtr_stack_free(rtr_stack_model *m);

/* rtr_stack_fit, the estimates over every training row, rtr_stack_apply:
 * fill p, cost [n x k] for the evaluated queries (emb [n x d], dataset [n])
 * from the network's estimates mlp_p (NaN: excluded, stays NaN) and
 * predicted costs mlp_cost, and the training rows (train_*: n_train rows;
 * train_mlp_p the network's estimates on them; outcomes NaN when missing).
 * Validation rows are the training rows whose rtr_embedding_hash is in
 * val_hash; with fewer than 2·folds of them the network is kept as it is.
 * rep (optional) says what was chosen and why. */
RTR_API rtr_status rtr_stack_table(float *p, float *cost, rtr_stack_report *rep, const float *mlp_p,
                                   const float *mlp_cost, const float *emb, const char *const *dataset,
                                   int64_t n, const float *train_mlp_p,
                                   const float *train_emb, const char *const *train_dataset,
                                   const float *train_correct, const float *train_cost, int64_t n_train,
                                   const uint64_t *val_hash, int64_t n_val_hash, int32_t d, int32_t k,
                                   const rtr_stack_params *prm);

/* A threshold sweep between two pairs (RouteLLM style): queries sorted by
 * score, highest first (the router's belief that `strong` is worth it), and
 * the top m sent to strong, the rest to weak, for every threshold between
 * distinct scores. Writes n_points = (distinct scores + 1) points, from all
 * weak (x = 0) to all strong (x = 1): x = fraction sent to strong, acc and
 * cost realised (outcomes present only). Arrays are allocated (caller
 * frees x, acc, cost). */
typedef struct {
    int64_t n_points;
    double *x, *acc, *cost;
} rtr_curve;
RTR_API rtr_status rtr_router_two_pair_sweep(rtr_curve *out, const float *score, const float *correct,
                                     const float *cost, int64_t n, int32_t k, int32_t weak,
                                     int32_t strong);
RTR_API void rtr_curve_free(rtr_curve *c);

/* --------------------------------------------------------------- metrics */

/* AIQ (RouterBench): the upper concave hull of the (cost, acc) points, cut
 * at its highest accuracy (non-decreasing), extended flat to x_max; the
 * trapezoid area from its first point to x_max, divided by x_max.
 * RTR_ERR_INVALID when no point is finite, x_max <= 0, or a hull point lies
 * beyond x_max. */
RTR_API rtr_status rtr_metric_aiq(double *aiq, const double *cost, const double *acc, int64_t n, double x_max);

/* AIQ from zero: the same hull, extended flat to the left down to cost 0
 * as well as to the right up to x_max, its area divided by x_max: the mean
 * accuracy over budgets spread evenly on [0, x_max], a router being allowed
 * its cheapest routing under any budget below it. RouterBench's AIQ counts
 * nothing before a router's cheapest point, so a single point (the Oracle)
 * scores below a curve that starts cheaper, and every router scores 0 when
 * all pairs cost the same; this variant has neither surprise (a router's
 * value never exceeds its best accuracy, so the Oracle tops it), and equals
 * the accuracy of a router whose points all cost the same. Same errors. */
RTR_API rtr_status rtr_metric_aiq_from_zero(double *aiq, const double *cost, const double *acc, int64_t n,
                                            double x_max);

/* Area under the piecewise-linear curve through (x, y) over x ∈ [0, 1]
 * (points sorted by x here; the curve extends flat beyond its end points
 * and is cut at 0 and 1). NaN when no point is finite. */
RTR_API double rtr_curve_area01(const double *x, const double *y, int64_t n);

/* APGR (RouteLLM) = (area01 − acc_weak) / (acc_strong − acc_weak), x being
 * the fraction sent to the strong pair, or for a multi-pair router the mean
 * cost normalised as (cost − cost_cheapest)/(cost_best − cost_cheapest).
 * NaN when acc_strong == acc_weak. */
RTR_API double rtr_metric_apgr(const double *x, const double *acc, int64_t n, double acc_weak, double acc_strong);

/* CPT(frac) (RouteLLM): the smallest x at which the curve (points in x order,
 * linear between them) reaches acc_weak + frac·(acc_strong − acc_weak);
 * NaN when it never does. */
RTR_API double rtr_metric_cpt(const double *x, const double *acc, int64_t n, double acc_weak,
                      double acc_strong, double frac);

/* Cost to match: the lowest cost among the points whose accuracy reaches
 * acc_best (within RTR_ACC_ATOL: the same routing summed in another order
 * must not miss it), divided by cost_best; NaN when not reached. */
RTR_API double rtr_metric_cost_to_match(const double *cost, const double *acc, int64_t n, double acc_best,
                                double cost_best);

/* Oracle gap: acc_oracle minus the router's best accuracy among its points
 * costing at most cost_oracle; NaN when none does. */
RTR_API double rtr_metric_oracle_gap(const double *cost, const double *acc, int64_t n, double cost_oracle,
                             double acc_oracle);

/* ------------------------------------------------ operating points */

/* Comparisons of means that passed through float storage: a cost is within
 * a budget when cost <= budget·(1 + RTR_COST_RTOL) (float holds 7 digits, so
 * a prior whose stored mean equals the budget must not fall outside it by
 * rounding); an accuracy reaches a target when acc >= target − RTR_ACC_ATOL
 * (far below 1/n for any n this program handles). */
#define RTR_COST_RTOL 1e-6
#define RTR_ACC_ATOL 1e-9
RTR_API bool rtr_cost_within(double cost, double budget);

/* The last of n points (in path order) whose value x (predicted mean cost,
 * or share sent to the strong pair) is within budget (rtr_cost_within);
 * −1 when none is. Along a λ path predicted cost and accuracy never
 * decrease, so this is the most accurate predicted routing within it. */
RTR_API int64_t rtr_point_within(const double *x, int64_t n, double budget);

/* ------------------------------------------------ curves as choices */

/* A router's curve as per-query choices, so it can be re-evaluated under
 * any weighting of the queries (the bootstrap) and on any outcome table:
 * point 0 sends query i to choice0[i] (−1: nothing, counted missing);
 * point t moves query ev_query[e] to pair ev_to[e] for every event e in
 * [ev_off[t], ev_off[t + 1]) (ev_off has n_points + 1 entries, ev_off[0] =
 * ev_off[1] = 0). lambda[t] (NULL for non-λ routers) is the largest λ of
 * point t, as in rtr_path. All arrays owned. A query's index takes 32 bits
 * (n < 2^32; RTR_ERR_INVALID beyond): eval holds every router's events at
 * once, several a query for a λ router. */
typedef struct {
    int64_t n, n_points;
    int32_t k;
    int32_t *choice0;
    int64_t *ev_off;
    uint32_t *ev_query;
    int32_t *ev_to;
    double *lambda;
} rtr_choice_path;
RTR_API void rtr_choice_path_free(rtr_choice_path *cp);

/* The exact λ path of a routing table (p, c [n x k], c scaled as for
 * rtr_path_compute) as choices, from the envelopes on backend b: the same
 * points as rtr_path_compute_on (switch events at the same λ form one
 * point). RTR_ERR_INVALID naming a query with no allowed pair. */
RTR_API rtr_status rtr_choice_path_lambda(rtr_backend *b, rtr_choice_path *cp, const float *p, const float *c,
                                          int64_t n, int32_t k);
/* One point: every query to choice[i] (a single pair, the Oracle). */
RTR_API rtr_status rtr_choice_path_fixed(rtr_choice_path *cp, const int32_t *choice, int64_t n, int32_t k);
/* The RouteLLM-style two-pair threshold sweep of rtr_router_two_pair_sweep
 * as choices (the same points); *x (n_points, owned by the caller) gets the
 * share sent to strong. */
RTR_API rtr_status rtr_choice_path_two_pair(rtr_choice_path *cp, double **x, const float *score, int64_t n,
                                            int32_t k, int32_t weak, int32_t strong);

/* Mean outcome and cost of every point of cp over (correct, cost) [n x k]
 * with query weights w (NULL: 1 each), entries missing in either table left
 * out; acc, cst: [n_points] (NaN when every chosen outcome is missing);
 * missing (optional): the weight left out at each point. Running sums in
 * double, updated per event: O(n + events). Pass the predicted tables to
 * get the predicted curve. */
RTR_API rtr_status rtr_choice_path_curve(double *acc, double *cst, double *missing,
                                         const rtr_choice_path *cp, const float *correct, const float *cost, const double *w);

/* ------------------------------------------------ paired bootstrap */

/* One router of a bootstrap: its curve (NULL: Random's exact expectation,
 * the mean over the k pairs) and up to RTR_BOOT_MARKS points of it whose
 * accuracy and cost are resampled (its operating point, budget points...;
 * −1: unused). */
#define RTR_BOOT_MARKS 8
typedef struct {
    const rtr_choice_path *path;
    int32_t n_marks;
    int64_t marks[RTR_BOOT_MARKS];
} rtr_boot_router;

/* Per resample b and router r: aiq[b·R + r] (RouterBench's), aiq0[b·R + r]
 * (from zero), to_match[b·R + r] (NaN: not reached), and for mark m
 * acc/cost[(b·R + r)·RTR_BOOT_MARKS + m]; per resample b and pair j of the
 * k: pair_acc/pair_cost[b·k + j] (NaN: no outcome in the resample). */
typedef struct {
    int32_t n_routers, resamples, k;
    double *aiq, *aiq0, *to_match, *acc, *cost, *pair_acc, *pair_cost;
} rtr_boot;
RTR_API void rtr_boot_free(rtr_boot *b);

/* Seeded paired bootstrap over the n evaluated queries: each resample
 * weights every query by a Poisson(1) count drawn from a hash of (seed, its
 * row, resample) (the same weights for every router, so differences are
 * paired; `rtr eval` keys the draw by the query's id instead of its row, so
 * a query's weight does not depend on its place) and recomputes every
 * router's curve, its AIQ (x_max = the largest cost of any router's curve
 * or single pair in that resample, as in the point estimate), its cost to
 * match pair `best` (that pair's accuracy and cost in the same resample)
 * and its marks. O(resamples · (n·k + Σ events + Σ points·log points)). */
RTR_API rtr_status rtr_bootstrap(rtr_boot *out, const rtr_boot_router *r, int32_t n_routers, const float *correct,
                                 const float *cost, int64_t n, int32_t k, int32_t best, int32_t resamples,
                                 uint64_t seed);

/* Percentile interval [q, 1 − q] of v[0], v[stride], ... (n values); NaN
 * values (not reached) count as +inf, so lo or hi may be inf. */
RTR_API void rtr_boot_interval(double *lo, double *hi, const double *v, int32_t n, int64_t stride, double q);
/* Share of the n paired resamples in which a beats b (ties count one half):
 * higher is better, or lower when lower_better; NaN (not reached, undefined)
 * is the worst value, so a cost never reached loses to any reached one. */
RTR_API double rtr_boot_p_beats(const double *a, const double *b, int32_t n, int64_t stride, bool lower_better);

#ifdef __cplusplus
}
#endif
#endif
