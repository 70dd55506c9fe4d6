/* The pipeline's stages as library calls (the evaluation is include/rtr/eval.h):
 *
 *   rtr_encode_corpus   embeddings of a corpus's queries and catalog, beside its shards
 *   rtr_train_corpus    load one split, train the predictor, save the checkpoint
 *   rtr_score_corpus    a named routing table from a checkpoint
 *   rtr_route_corpus    one decision per query (λ or budget) into a file
 *   rtr_route_texts     texts routed in memory: encoder + checkpoint + λ or budget
 *   rtr_sweep_corpus    the exact λ path, its Pareto front and reference routers
 *
 * Each stage writes only its own output, through temporary names, and
 * streams the corpus through the store's row reader: score, route and sweep
 * hold a chunk of rows at a time (memory independent of the number of
 * queries, docs/FORMAT.md "Memory"). The `rtr` commands are options -> one
 * of these calls -> print.
 *
 * Split across processes (docs/SCALING.md): encode and score take whole
 * shards, part `part` of a job array (--part) or the rank's share under
 * MPI (rtr_part_owners: the same split either way); a part writes only its
 * shards' files, and a set is usable once every part has run.
 *
 * Argument order: the compute object (backend or encoder) first, then
 * outputs (files written, summaries filled), then inputs, then options.
 * Summaries own their strings and arrays; each has a *_free. */
#ifndef RTR_STAGES_H
#define RTR_STAGES_H

#include "rtr/backend.h"
#include "rtr/dist.h"
#include "rtr/encoder.h"
#include "rtr/predictor.h"
#include "rtr/route.h"
#include "rtr/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- encode */

typedef struct {
    const char *name; /* the encoding's folder (embeddings/NAME); NULL: the encoder's name */
    bool force;       /* re-encode shards already encoded by these weights */
    rtr_part part;    /* encode only this part's shards (count 0: all, or the MPI rank's) */
} rtr_encode_params;

typedef struct {
    char name[129];
    int n_shards, shards_skipped; /* of this part (under MPI: of every rank, summed) */
    int64_t queries_encoded;
    double encode_seconds;  /* inside the encoder, queries only (under MPI: summed over ranks) */
    int shards_missing;     /* shards of the corpus still without a file of this encoding after the run
                               (other parts not run yet); 0: the encoding is complete */
} rtr_encode_summary;

/* Embed every query of corpus_dir (embeddings/NAME/shard-NNNNN.h5, one
 * file committed per shard, so an interrupted run resumes where it
 * stopped: shards already encoded by the same weights are skipped) and the
 * catalog's descriptions once (embeddings/NAME/descriptions.h5, by part
 * 0). With a part, only its shards; the shards still missing are counted
 * and named on stderr. Memory: one batch of texts and their embeddings. */
RTR_API rtr_status rtr_encode_corpus(rtr_encoder *enc, rtr_encode_summary *s, const char *corpus_dir,
                                     const rtr_encode_params *prm);

/* ------------------------------------------------------------------ train */

typedef struct {
    int64_t n_queries;
    int32_t dim, n_pairs;
    bool mapped;             /* the embeddings were memory-mapped (above the budget) */
    char encoder[129];       /* the encoding trained on */
    char checkpoint_hash[17]; /* after training */
} rtr_train_summary;

typedef struct {
    rtr_train_params train;
    const char *split;        /* train on this split ("train") */
    const char *skip_dataset; /* leave this dataset out (out-of-distribution runs); NULL: none */
    const char *encoder;      /* the encoding (embeddings/NAME); NULL: the only one */
    /* Bytes of query embeddings held on the heap; above it they go to a
     * memory-mapped temporary file (0: no limit). Per training query the
     * host holds 4·D bytes of embeddings (mapped or not) and about
     * 16·K + 24 bytes of targets and bookkeeping; a GPU backend holds the
     * embeddings and targets again in device memory. */
    size_t memory_budget;
    rtr_epoch_fn log;                                     /* each epoch (optional) */
    void (*on_start)(const rtr_train_summary *s, void *); /* data loaded, training begins (optional) */
    void *user;
} rtr_train_corpus_params;

RTR_API rtr_train_corpus_params rtr_train_corpus_default_params(void);

/* Train p (overwritten; free with rtr_predictor_free) on one split of an
 * encoded corpus on backend b and save it to checkpoint_path (replaced only
 * by a complete file). */
RTR_API rtr_status rtr_train_corpus(rtr_backend *b, rtr_predictor *p, rtr_train_summary *s,
                                    const char *checkpoint_path, const char *corpus_dir,
                                    const rtr_train_corpus_params *prm);

/* ------------------------------------------------------------------ score */

typedef struct {
    const char *name;            /* table name (tables/NAME); NULL: from checkpoint_path */
    const char *checkpoint_path; /* the checkpoint's file: recorded, and the default name (its stem) */
    int64_t chunk_rows;          /* queries per chunk (0: 16384) */
    rtr_part part;               /* score only this part's shards (count 0: all, or the MPI rank's) */
} rtr_score_params;

typedef struct {
    char table[129];
    char checkpoint_hash[17];
    char encoder[129];
    int64_t n_queries;           /* scored by this part (under MPI: by every rank) */
    int32_t n_pairs;
    int shards_missing;          /* shards still without this table's file from this checkpoint
                                    (other parts not run yet); 0: the table is complete */
} rtr_score_summary;

/* The routing table of predictor p over every query of corpus_dir: p_correct
 * and tokens per (query, pair) in tables/NAME/shard-NNNNN.h5, computed on
 * backend b from the embeddings of p's encoder, streamed in chunks. Every
 * shard's file stays temporary until all are written, then all are
 * renamed: a failed run leaves an existing table of that name as it was.
 * With a part, its own shards are renamed together once written (under
 * MPI after every rank has written its own): until every part has run,
 * the table is incomplete (or mixed, over an older one) and refused.
 * RTR_ERR_INVALID when the corpus's catalog is not p's or no complete
 * embeddings of p's encoder exist. Memory: the chunk buffers. */
RTR_API rtr_status rtr_score_corpus(rtr_backend *b, rtr_score_summary *s, const char *corpus_dir,
                                    const rtr_predictor *p, const rtr_score_params *prm);

/* ------------------------------------------------------------------ route */

typedef struct {
    rtr_route_options o; /* which queries and table, cost model, exclusions, scale */
    double lambda;       /* route at this λ ∈ [0, 1] ... */
    double budget;       /* ... unless this is not NaN: the most accurate routing whose predicted mean cost fits */
    bool budget_total;   /* the budget is for all routed queries together, not per query */
    int64_t chunk_rows;  /* queries per chunk (0: 16384) */
} rtr_route_params;

RTR_API rtr_route_params rtr_route_default_params(void);

typedef struct {
    int64_t n_queries;
    int32_t k;
    double lambda, cost_scale;
    const char *chosen_by;               /* how λ was chosen (static) */
    double pred_acc, pred_cost;          /* predicted means of the choices */
    double acc, cost;                    /* realised means (NaN without outcomes) */
    int64_t n_missing;                   /* choices without an outcome */
    int64_t *count;                      /* [k] queries routed to each pair */
    char **pair_names;                   /* [k] "model|strategy" */
    char *checkpoint_hash;               /* of the table */
} rtr_route_summary;
RTR_API void rtr_route_summary_free(rtr_route_summary *s);

/* One decision per selected query of corpus_dir, in corpus order, into
 * out_path (.csv, .jsonl or .h5; docs/ROUTING.md), through a temporary name.
 * At λ every query takes its highest λ·p − (1−λ)·c (rtr_route_argmax on b);
 * under a budget the exact path is built (a pass over the table) and the
 * largest λ within it taken. Memory: the chunk buffers, and under a budget
 * the path (16 bytes per envelope piece). */
RTR_API rtr_status rtr_route_corpus(rtr_backend *b, const char *out_path, rtr_route_summary *s,
                                    const char *corpus_dir, const rtr_route_params *prm);

/* Texts routed in memory. p_correct (NaN where excluded), tokens and cost
 * are the predictions [n x k]; cat is the checkpoint's catalog. */
typedef struct {
    int64_t n;
    int32_t k;
    int32_t *choice;
    float *p_correct, *tokens, *cost;
    double lambda, cost_scale;
    rtr_catalog cat;
} rtr_text_routes;
RTR_API void rtr_text_routes_free(rtr_text_routes *r);

/* Encode n texts with enc (whose weights must be p's encoder), score them
 * with p and route them as rtr_route_corpus does (prm->o's split, dataset
 * and table do not apply), on backend b. Without a cost scale it is the
 * checkpoint's (from p->pair_mean_tokens: every pair at its training mean
 * tokens, in the cost model, input tokens left out), so a text's decision
 * does not depend on the others; pass the corpus's to get its decisions. A
 * checkpoint without pair_mean_tokens: the scale over these texts. */
RTR_API rtr_status rtr_route_texts(rtr_backend *b, rtr_text_routes *out, rtr_encoder *enc, const rtr_predictor *p,
                                   const char *const *texts, int64_t n, const rtr_route_params *prm);
/* Write the decisions of routed texts (ids [n]) to out_path as
 * rtr_route_corpus does (dataset and split empty; cost_model names the
 * cost model in an HDF5 file's attributes). */
RTR_API rtr_status rtr_text_routes_write(const char *out_path, const rtr_text_routes *r, const char *const *ids,
                                         const char *cost_model, const char *checkpoint_hash);

/* ------------------------------------------------------------------ sweep */

typedef struct {
    rtr_route_options o; /* which queries and table, cost model, exclusions, scale (split "test") */
    int64_t grid;        /* also tabulate this many evenly spaced λ (0: none; at most RTR_SWEEP_MAX_GRID) */
    int64_t chunk_rows;  /* queries per chunk (0: 16384) */
} rtr_sweep_params;

#define RTR_SWEEP_MAX_GRID 10000000 /* grid.csv rows at most (~400 MB of text) */

RTR_API rtr_sweep_params rtr_sweep_default_params(void);

typedef struct {
    int64_t n_queries, n_points, n_switches, n_front;
    int32_t k;
    double cost_scale;
    bool realised;                     /* the corpus has outcomes: the curve and front are realised */
    double acc0, cost0, acc1, cost1;   /* at λ = 0 and λ = 1 */
    char *best_single;                 /* NULL without outcomes */
    double best_acc, best_cost, oracle_acc, oracle_cost;
    double x_max, aiq, aiq_single, apgr, cpt50, cpt80, cost_to_match, oracle_gap;
} rtr_sweep_summary; /* the JSON summary, Pareto front included, is out_dir/summary.json (one line) */
RTR_API void rtr_sweep_summary_free(rtr_sweep_summary *s);

/* The exact accuracy-versus-cost path over λ of the selected queries, its
 * Pareto front, the reference routers and metrics, written to out_dir as
 * path.csv, grid.csv (with a grid), summary.json and plot.svg: all built in
 * out_dir.tmp.PID and put in place together (an earlier sweep's folder is
 * replaced; a folder holding anything else is refused). Memory does not
 * grow with the queries: the chunk buffers, the path builder's bounded
 * buffers, a sorter of the path's points on cost (at most 65,536 points of
 * 64 bytes, spilled past that to unlinked temporary files in $TMPDIR) and
 * the AIQ hull's vertices; none per table entry or path point
 * (docs/FORMAT.md "Memory"). Under MPI each rank reads its own shards,
 * their breakpoints stream to rank 0 (rtr_path_builder_walk_ranks), which
 * alone walks the path, writes out_dir and fills *s; on the other ranks *s
 * holds the counts only (n_queries, n_switches). */
RTR_API rtr_status rtr_sweep_corpus(rtr_backend *b, const char *out_dir, rtr_sweep_summary *s,
                                    const char *corpus_dir, const rtr_sweep_params *prm);

#ifdef __cplusplus
}
#endif
#endif
