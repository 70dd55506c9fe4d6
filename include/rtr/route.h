/* rtr routing: per-query decisions between K (model, strategy) pairs, the
 * cost models they trade accuracy against, and the exact accuracy-versus-cost
 * path over λ ∈ [0,1] (docs/ROUTING.md).
 *
 * A routing table is two n x k row-major float matrices: p (predicted
 * probability of a correct answer) and c (predicted cost). The score of pair
 * j for query i is  λ·p − (1−λ)·c = λ·(p + c) − c,  a line in λ; the chosen
 * pair is the highest. An entry with p or c NaN is "not allowed" (excluded by
 * the user or by a cap) and is never chosen. The cost c entering decisions is
 * the unit cost divided by a scale (rtr_route_cost_scale) so that λ ∈ [0,1]
 * spans the useful range.
 *
 * Ties, everywhere (rtr_route_argmax, envelopes, paths): the higher score wins;
 * among equal scores the cheaper pair, then the more accurate, then the lower
 * index. So the routing at a switch point λ* is the one just left of it, and
 * at λ = 0 it is the one just right of 0: path point j covers λ in
 * (λ_{j−1}, λ_j] and the first point covers [0, λ_0].
 *
 * Ownership: structs filled by *_compute/_build own their arrays and are
 * released with the matching *_free; input pointers are only read.
 *
 * Argument order (as everywhere in the API, docs/LIBRARY.md): the backend
 * first, then outputs, then inputs, then options (as the kernel references
 * of ops.h). */
#ifndef RTR_ROUTE_H
#define RTR_ROUTE_H

#include "rtr/backend.h"
#include "rtr/ops.h"
#include "rtr/rtr.h"
#include "rtr/store.h"
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------- cost models */

typedef enum {
    RTR_COST_TOKENS = 0, /* predicted output tokens (the paper)                  */
    RTR_COST_USD,        /* USD from the catalog's per-million-token prices     */
    RTR_COST_USER        /* a fixed cost per pair given by the user             */
} rtr_cost_model;

/* Parse "tokens" | "usd" | "user" (RTR_ERR_INVALID otherwise). */
RTR_API rtr_status rtr_cost_model_parse(rtr_cost_model *out, const char *s);
RTR_API const char *rtr_cost_model_name(rtr_cost_model m);

/* USD per call: usd[i,j] = (tokens_in[i]·price_in(m_j) + tokens_out[i,j]·price_out(m_j)) / 1e6,
 * m_j the model of pair j. tokens_in: [n] or NULL (input cost left out);
 * tokens_out, usd: [n x k] with k = cat->n_pairs (usd may alias tokens_out).
 * NaN tokens stay NaN. RTR_ERR_INVALID naming the model when a price it
 * needs is unknown (NaN). */
RTR_API rtr_status rtr_cost_usd(float *usd, const float *tokens_out, const float *tokens_in,
                        const rtr_catalog *cat, int64_t n);

/* Per-pair user costs from a JSON object {"model|strategy": cost, ...} that
 * must name every pair of the catalog with a finite cost >= 0. cost: [k]. */
RTR_API rtr_status rtr_cost_user_parse(double *cost, const char *json, const char *origin,
                               const rtr_catalog *cat);

/* The scale that makes λ ∈ [0,1] span the useful range: the largest per-pair
 * mean of c over the n queries (NaN entries skipped), so scaled costs are
 * mostly in [0, 1] like p. RTR_ERR_INVALID when no entry is finite or every
 * mean is 0 (then cost cannot matter). */
RTR_API rtr_status rtr_route_cost_scale(double *scale, const float *c, int64_t n, int32_t k);

/* ------------------------------------------------- what a routing stage reads */

/* Which queries of a corpus a routing stage (route, sweep, eval) takes, from
 * which routing table, against which cost. Strings are borrowed: they must
 * outlive the call. */
typedef struct {
    const char *table;           /* routing table (`rtr score --name`); NULL: the corpus's only one */
    const char *split;           /* only queries of this split; NULL or "": all */
    const char *dataset;         /* only queries of this dataset; NULL: all */
    const char *skip_dataset;    /* leave out the queries of this dataset; NULL: none */
    rtr_cost_model cost_model;   /* what the cost is (tokens by default) */
    const char *pair_cost_path;  /* JSON {"model|strategy": cost} for RTR_COST_USER */
    const char *exclude;         /* pairs, models or strategies never chosen (comma-separated); NULL: none */
    double max_tokens;           /* never choose a pair predicted above this many tokens; <= 0: no cap */
    double cost_scale;           /* costs are divided by it against λ; <= 0: rtr_route_cost_scale */
    const char *checkpoint_hash; /* refuse tables scored by another checkpoint; NULL: any */
} rtr_route_options;

/* ----------------------------------------------------------- exclusions */

/* Mark pairs named in a comma-separated list: each item is "model|strategy"
 * (one pair), or a model or strategy name (all of its pairs). excluded: [k],
 * set to true for named pairs (other entries untouched). RTR_ERR_INVALID
 * naming an unknown item. */
RTR_API rtr_status rtr_route_parse_exclude(bool *excluded, const rtr_catalog *cat, const char *list);

/* Disallow entries by setting p to NaN: every pair with pair_excluded[j]
 * (NULL: none), and every (i, j) whose predicted tokens exceed max_tokens
 * (tokens NULL or max_tokens <= 0: no cap). p, tokens: [n x k]. */
RTR_API void rtr_route_exclude(float *p, const float *tokens, int64_t n, int32_t k,
                       const bool *pair_excluded, double max_tokens);

/* --------------------------------------------------- one query's envelope */

/* The upper envelope over λ ∈ [0,1] of one query's k lines λ·(p_j + c_j) − c_j.
 * Writes m pieces (returned, 0 when no pair is allowed, at most k): pair[t]
 * is chosen for λ in (start[t], start[t+1]] (start[0] = 0 and the first piece
 * also holds λ = 0; the last ends at 1). start is strictly increasing, and
 * successive pieces are strictly more expensive and more accurate.
 * p, c: [k]; pair, start: room for k; scratch: room for k rtr_line.
 * O(k log k) (sort by slope, then a convex-hull scan). */
typedef struct {
    double a, b; /* slope p + c and intercept −c */
    int32_t j;
} rtr_line;
RTR_API int32_t rtr_envelope(int32_t *pair, double *start, rtr_line *scratch, const float *p, const float *c,
                     int32_t k);

/* -------------------------------------------------- envelopes on a backend */

/* What rtr_envelopes_on hands over for each chunk of queries: rows
 * [q0, q0 + n) of the table, row i's m[i] pieces in pair[i*k ...] and
 * start[i*k ...] as rtr_route_envelope writes them (host memory, valid during
 * the call only). Any status but RTR_OK stops the stream and is returned. */
typedef rtr_status (*rtr_envelope_sink)(void *ctx, int64_t q0, int64_t n, int32_t k, const int32_t *pair,
                                        const double *start, const int32_t *m);

/* Every query's envelope (rtr_route_envelope) computed on backend b, chunk_rows
 * queries at a time (0: 4M / k, which bounds memory: 48 MB of pieces per
 * chunk buffer), each chunk handed to sink in query order on the calling
 * thread. On a device, p and c go up through two pinned staging buffers
 * (upload_async: the next chunk's copy overlaps this chunk's kernel) and
 * the pieces come back with download_async; the sink of chunk i runs while
 * the device computes chunk i + 1. On a host backend p and c are passed to
 * the op as they are (no copies). A device that cannot take k
 * (k > RTR_ENVELOPE_KMAX) computes on the CPU instead and says so once on
 * stderr: the results are the same, only slower. */
RTR_API rtr_status rtr_envelopes_on(rtr_backend *b, const float *p, const float *c, int64_t n, int32_t k,
                            int64_t chunk_rows, rtr_envelope_sink sink, void *ctx);

/* choice[i] = the envelope's pair at λ for every query (−1: none allowed).
 * Agrees with the exact path (rtr_path) at every λ including its switch
 * points; rtr_route_argmax agrees with it except on floating-point near-ties.
 * Envelopes on backend b (rtr_envelopes_on, chunk_rows as there); the piece
 * at λ is picked on the host. rtr_envelope_choose is the same on the CPU. */
RTR_API rtr_status rtr_envelope_choose_on(rtr_backend *b, int32_t *choice, const float *p, const float *c, double lambda,
                                  int64_t n, int32_t k, int64_t chunk_rows);
RTR_API rtr_status rtr_envelope_choose(int32_t *choice, const float *p, const float *c, double lambda,
                               int64_t n, int32_t k);

/* ---------------------------------------------------------- exact λ path */

/* What a path is computed from. p, c decide (c already scaled); cost is the
 * predicted cost in its unit for reporting (NULL: c is reported); truth
 * (true_correct with true_cost, both NULL or both given) gives realised
 * accuracy and cost, NaN marking a missing outcome. All [n x k]. */
typedef struct {
    int64_t n;
    int32_t k;
    const float *p, *c, *cost;
    const float *true_correct, *true_cost;
} rtr_route_table;

/* The exact path: point j is the routing for λ in (lambda[j−1], lambda[j]]
 * (the first also holds λ = 0; the last has lambda = 1). Predicted values are
 * means over the n queries; realised ones are means over the queries whose
 * chosen pair has an outcome, n_missing counting the others (NULL arrays when
 * the table has no truth; NaN when every chosen outcome is missing). Along
 * the path predicted accuracy and cost never decrease. */
typedef struct {
    int64_t n_points, n_queries, n_switches; /* n_switches: query-level switch events */
    double *lambda;
    double *pred_acc, *pred_cost;
    double *real_acc, *real_cost;
    int64_t *n_missing;
} rtr_path;

/* Compute the exact path in O(n·k log k + S log S) for S switch events. The
 * envelopes are computed on backend b (rtr_envelopes_on, chunk_rows as
 * there), the switch events built from each chunk's pieces on the host
 * (OpenMP) while the next chunk computes, then radix-sorted and swept. The
 * path is the same on every backend, for every chunk size and thread count.
 * Working memory: 16 bytes per envelope piece and 32 per switch event at peak, plus the chunk buffers.
 * RTR_ERR_INVALID when n or k is 0, k > 65535, n >= 2^32, or a query has no
 * allowed pair (naming it); the backend's errors as it reports them.
 * rtr_path_compute is the same on the CPU backend. */
RTR_API rtr_status rtr_path_compute_on(rtr_backend *b, rtr_path *path, const rtr_route_table *t, int64_t chunk_rows);

/* The same path built from a table given a chunk of queries at a time
 * (streamed from a corpus: the caller can drop each chunk once added).
 * Memory: 16 bytes per piece of the envelopes held (a piece keeps its
 * pair's p, cost and truth) and 32 per switch event while sorting, at most
 * RTR_PATH_SPILL_EVENTS events before they go to disk (rtr_path_builder_spill),
 * plus the envelope buffers and the path itself (48 bytes a point); none
 * per table entry. open: k pairs, truth given with
 * every chunk or never; add: the next t->n queries (t->k == k); finish: the
 * path (exactly rtr_path_compute_on's over the concatenated table), and
 * frees pb; free: abandon it (NULL: no-op). */
typedef struct rtr_path_builder rtr_path_builder;
RTR_API rtr_status rtr_path_builder_open(rtr_backend *b, rtr_path_builder **pb, int32_t k, bool truth,
                                         int64_t chunk_rows);
RTR_API rtr_status rtr_path_builder_add(rtr_path_builder *pb, const rtr_route_table *t);
/* Bounded memory: once the builder holds max_events switch events (at the
 * end of an envelope chunk) it sorts them and writes them, with the pieces
 * they switch between (40 bytes an event), to a temporary file in $TMPDIR
 * (else /tmp), unlinked at creation so that nothing outlives the process;
 * finish and part read the files back through one k-way merge (runs beyond
 * 64 are merged into one first, so the merge holds at most 64 x 64 KiB).
 * The path is the same bit for bit whether or where it spills. max_events
 * <= 0: never spill. RTR_PATH_SPILL_EVENTS by default: about 12 MB of
 * events, pieces and sort buffer. */
#define RTR_PATH_SPILL_EVENTS ((int64_t)1 << 18)
RTR_API void rtr_path_builder_spill(rtr_path_builder *pb, int64_t max_events);
RTR_API rtr_status rtr_path_builder_finish(rtr_path_builder *pb, rtr_path *path);
/* One point of the path as a walk gives it: rtr_path's values at j
 * (lambda_lo the previous point's lambda, 0 for the first), of n_points. */
typedef struct {
    int64_t j, n_points;
    double lambda_lo, lambda_hi, pred_acc, pred_cost;
    double real_acc, real_cost; /* NaN without truth */
    int64_t n_missing;          /* 0 without truth */
} rtr_path_point;
typedef rtr_status (*rtr_path_point_fn)(void *ctx, const rtr_path_point *pt);
/* finish without the path in memory: fn gets every point in λ order (a
 * status from fn stops the walk and is returned), the path's queries and
 * switch events are stored in *n_queries, *n_switches; frees pb. Memory:
 * the merge's buffers (at most 64 x 64 KiB once spilled), none per point.
 * The values are finish's, bit for bit. */
RTR_API rtr_status rtr_path_builder_walk(rtr_path_builder *pb, rtr_path_point_fn fn, void *ctx, int64_t *n_queries,
                                         int64_t *n_switches);
/* The same walk over a path in memory. */
RTR_API rtr_status rtr_path_walk(const rtr_path *path, rtr_path_point_fn fn, void *ctx);
RTR_API void rtr_path_builder_free(rtr_path_builder *pb);
RTR_API rtr_status rtr_path_compute(rtr_path *path, const rtr_route_table *t);
RTR_API void rtr_path_free(rtr_path *path);

/* A path over a table split into parts (MPI ranks, docs/SCALING.md): each
 * part's builder gives its breakpoints, the distinct λ where its queries
 * switch with what the switches change in the sums, in increasing λ; the
 * global path is the merge of every part's breakpoints (sorted on λ, then
 * one pass from the sums at λ = 0), never the tables themselves. Equal to
 * rtr_path_builder_finish over the whole table up to the order of the
 * floating-point sums: the same λ, points and switches. */
typedef struct {
    double lambda;                                   /* where (0 for the sums at λ = 0) */
    double pred_acc, pred_cost, real_acc, real_cost; /* change of the sums there (or the sums) */
    int64_t n_missing;
} rtr_path_break;
typedef struct {
    int64_t n_queries, n_switches, n_breaks;
    bool truth;
    rtr_path_break at0;     /* the sums over the part's queries at λ = 0 */
    rtr_path_break *breaks; /* [n_breaks], increasing λ */
} rtr_path_part;
/* The breakpoints of the queries added to pb (none: an empty part); frees pb. */
RTR_API rtr_status rtr_path_builder_part(rtr_path_builder *pb, rtr_path_part *part);
RTR_API void rtr_path_part_free(rtr_path_part *part);
/* The path of the parts' queries together. RTR_ERR_INVALID as
 * rtr_path_builder_finish (no query, too many). */
RTR_API rtr_status rtr_path_merge(rtr_path *path, const rtr_path_part *parts, int n_parts);
/* The walk of the path of every rank's queries (each rank added its own
 * to pb; every rank calls it): fn gets every point in λ order on rank 0
 * alone, as rtr_path_builder_walk gives them; the other ranks return once
 * rank 0 has walked the path (a status from fn stops the walk on rank 0
 * only: the caller stops the job, rtr_dist_abort). *n_queries and
 * *n_switches: the totals over the ranks, on every rank. Each rank merges
 * its own runs into breakpoints (rtr_path_builder_part's) and streams them
 * to rank 0 in messages of 1,024 (48 KiB), twice (a first pass counts the
 * points); rank 0 merges them as they arrive, never holding the path or a
 * rank's whole list, so its memory is its own builder's plus 64 KiB per
 * rank, and a rank's the merge of its own runs plus one message. The
 * values equal rtr_path_merge over every rank's part, bit for bit (rank
 * order at equal λ), and one process's walk up to the order of the
 * floating-point sums. Alone (or one rank): rtr_path_builder_walk. Frees
 * pb. RTR_ERR_INVALID on every rank when no rank has a query or the ranks
 * disagree on truth. */
RTR_API rtr_status rtr_path_builder_walk_ranks(rtr_path_builder *pb, rtr_path_point_fn fn, void *ctx,
                                               int64_t *n_queries, int64_t *n_switches);

/* rtr_path_budget on the path of the queries added to pb without holding
 * the path (a pass over its points): *lambda = the largest λ of the most
 * expensive point whose predicted mean cost fits budget (a mean per query,
 * or with total the sum over the queries); the same λ and errors as
 * rtr_path_builder_finish then rtr_path_budget. Under MPI every rank calls
 * it with its own queries in pb: the path is every rank's (one pass of
 * rtr_path_builder_walk_ranks), and every rank gets rank 0's λ or error.
 * Frees pb. */
RTR_API rtr_status rtr_path_builder_budget(rtr_path_builder *pb, double budget, bool total, double *lambda);

/* The point whose λ interval holds lambda ∈ [0,1]. */
RTR_API int64_t rtr_path_at(const rtr_path *path, double lambda);

/* Budget search: the most expensive point whose predicted mean cost is at
 * most mean_budget (a total budget B is B / n_queries per query). *point
 * receives it; its largest λ is path->lambda[*point]. RTR_ERR_INVALID when
 * the budget is below the cheapest possible routing (point 0), giving both. */
RTR_API rtr_status rtr_path_budget(int64_t *point, const rtr_path *path, double mean_budget);

/* Pareto front of n (cost, acc) points: indices of the points no other point
 * dominates (cost <= and acc >), ordered by increasing cost; equal points
 * keep the first. NaN points are skipped. idx: room for n; returns the count,
 * or −1 when out of memory. */
RTR_API int64_t rtr_pareto_front(int64_t *idx, const double *cost, const double *acc, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
