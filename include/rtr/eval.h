/* The evaluation stage (`rtr eval`): RTR's routing tables against every
 * baseline on one evaluated split, judged on realised outcomes, written as
 * the evaluation file `rtr report` renders (docs/ROUTING.md, "Evaluation
 * file"). The baselines (dataset prior, kNN, EmbedLLM-style, RouteLLM-style)
 * are fitted on the training split only; the reference points (Random,
 * Oracle, best single pair) come from the evaluated split.
 *
 * Ownership: rtr_eval_corpus fills an rtr_eval_summary that owns its
 * strings and arrays; rtr_eval_summary_free releases them. */
#ifndef RTR_EVAL_H
#define RTR_EVAL_H

#include "rtr/backend.h"
#include "rtr/route.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The fewest queries an m-out-of-n bootstrap may resample
 * (rtr_eval_params.bootstrap_queries; `rtr eval --bootstrap-queries`). With
 * few queries it degenerates: a Poisson resample weights none of M queries
 * with probability e^-M (M = 1: 37% of resamples empty, so the intervals'
 * upper ends were undefined), and a rate over M 0/1 outcomes moves in steps
 * of 1/M, so its percentiles are those of a few values. At 50 an empty
 * resample has probability 2e-22 and a step is 2% before the sqrt(M/N)
 * scaling (bench/eval_boot_compare.py measured M = 95 on RouterBench:
 * docs/METRICS.md). A split of fewer queries is resampled whole anyway. */
#define RTR_EVAL_MIN_BOOTSTRAP_QUERIES 50

typedef struct {
    /* The evaluated queries and how they are routed: split (default "test"),
     * dataset (the evaluated dataset, out of distribution), cost model,
     * exclusions, scale, checkpoint hash. table: the routing table to judge,
     * or several separated by commas (one RTR row each, "RTR: NAME");
     * NULL: the corpus's only table, one row "RTR". */
    rtr_route_options route;
    const char *train_split;        /* split the baselines are fitted on ("train") */
    const char *train_skip_dataset; /* fit the baselines without this dataset; NULL: none */
    /* The baselines may be fitted on the evaluated split itself, on purpose:
     * a hindsight bound (tools/run-results draws one with --train-split test).
     * false: that overlap is refused (an `eval --split train` by mistake). */
    bool fit_on_evaluated;
    const char *title;              /* report title; NULL: "RTR on CORPUS_DIR" */
    int32_t knn_k;                  /* neighbours of the kNN router (10) */
    bool embedllm;                  /* include the EmbedLLM-style router (trains for a few seconds) */
    /* The checkpoint that scored the (first) table: its recorded validation
     * rows let the default router choose its blend (rtr_stack_table,
     * include/rtr/metrics.h); NULL: the default router keeps the network as
     * it is (and still guards unseen datasets). Its hash must be the
     * tables'. */
    const char *checkpoint;
    bool paper_only;                /* no default router: "RTR" is the paper's model as scored */
    /* Ablations of the default router (rtr_stack_params.only, .no_guard):
     * stack_only >= 0 keeps that RTR_STACK_* candidate whatever validation
     * says (-1, the default: the rule chooses); no_guard drops the guard. */
    int32_t stack_only;
    bool no_guard;
    int32_t bootstrap;              /* paired bootstrap resamples of the evaluated queries (1000); 0: none */
    uint64_t seed;                  /* of the bootstrap (1) */
    /* The most evaluated queries the bootstrap resamples (100000): above it,
     * the m-out-of-n bootstrap over the bootstrap_queries queries with the
     * smallest hash of (seed, id), its deviations scaled by sqrt(M/N)
     * around the estimates on every query (docs/METRICS.md), so its memory
     * and time stop growing with the split. At least
     * RTR_EVAL_MIN_BOOTSTRAP_QUERIES. */
    int64_t bootstrap_queries;
    /* The most training queries the baselines are fitted on (50000):
     * above it the kNN router, dataset prior, default router and
     * EmbedLLM-style are fitted on the baseline_train_max training queries
     * with the smallest hash of (seed, id) (the bootstrap's sample rule), so
     * the training split's memory stops growing with it; the budget and the
     * reference pairs still come from every training query (streamed sums). */
    int64_t baseline_train_max;
} rtr_eval_params;

RTR_API rtr_eval_params rtr_eval_default_params(void);

/* One router's row of the evaluation: its operating point (realised
 * accuracy and mean cost, queries left out for a missing outcome) and
 * curve metrics (NaN where undefined), with 95% paired-bootstrap intervals
 * (NaN without a bootstrap). unavailable: why the router could not be
 * built (NULL when it was; then every number is NaN). */
typedef struct {
    char *name, *unavailable;
    double acc, cost, aiq, aiq_from_zero, cost_to_match;
    double acc_ci[2], cost_ci[2], aiq_ci[2], cost_to_match_ci[2];
    int64_t n_missing;
} rtr_eval_router;

typedef struct {
    int64_t n_queries, n_train; /* evaluated and training queries */
    int64_t n_train_baselines;  /* the training queries the baselines were fitted on (baseline_train_max at most) */
    const char *cost_unit;      /* "output tokens", "USD" or "user cost" (static) */
    double x_max;               /* AIQ's cost range, shared by every router */
    int32_t bootstrap;          /* resamples behind the intervals (0: none) */
    int64_t bootstrap_queries;  /* the queries they resample: n_queries, or the sample of M when fewer */
    int bootstrap_no_interval;  /* statistics left without an interval: the sample of M showed no variation
                                   where the split varies (docs/METRICS.md) */
    char *default_router;       /* what the default router kept (rtr_stack_name), NULL: none built */
    int n_routers;
    rtr_eval_router *routers;
} rtr_eval_summary;

/* Evaluate corpus_dir and write the evaluation file out_path (JSON, through
 * a temporary name) on backend b, which computes every router's exact path
 * and RTR's mix of choices (the kNN and EmbedLLM-style tables are fitted on
 * the CPU's BLAS either way). RTR_ERR_INVALID for an evaluated split that
 * is the training split (unless fit_on_evaluated, or route.dataset is
 * train_skip_dataset, held out of the fit), bootstrap_queries below the minimum, an empty split, a split
 * without outcomes (or without costs in the chosen unit, saying so), a
 * dataset option naming a dataset the corpus lacks (listing those it has),
 * two splits embedded by different encoders, a checkpoint mismatch; the
 * loader's errors otherwise. Nothing is written on failure.
 * Under MPI (docs/SCALING.md) call it on every rank with the same
 * arguments: each rank reads its own range of the evaluated split (and the
 * whole training split, fitting every baseline), the sums and paths are
 * put together over the ranks (rank 0 walks every router's path), every
 * rank holds the bootstrap's sample and computes its share of the
 * resamples, and rank 0 writes out_path; the result equals one process's
 * up to the order of floating-point additions. RTR_ERR_INVALID (on every
 * rank) when the ranks' options or fitted baselines differ. */
RTR_API rtr_status rtr_eval_corpus(rtr_backend *b, const char *out_path, rtr_eval_summary *summary,
                                   const char *corpus_dir, const rtr_eval_params *prm);
RTR_API void rtr_eval_summary_free(rtr_eval_summary *s);

#ifdef __cplusplus
}
#endif
#endif
