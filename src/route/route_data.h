/* A corpus read for routing: the queries of one selection with their
 * routing table (tables/NAME from `rtr score`), the ground truth, the chosen
 * cost model with its λ scale, and the user's exclusions. Read a chunk of
 * rows at a time through the store's row reader (route_source: `rtr route`
 * and `rtr sweep` stream it, memory independent of the number of queries),
 * or gathered into memory (route_data_load: the evaluation, whose baselines
 * need the whole split). One preparation (route_costs, route_allowed) turns table rows
 * into costs and allowed entries for both, and for texts routed in memory.
 * Internal (not part of the public API). */
#ifndef RTR_ROUTE_DATA_H
#define RTR_ROUTE_DATA_H

#include "rtr/route.h"

#include <stdio.h>

typedef struct {
    rtr_route_options o;      /* the queries, table, cost model, exclusions and scale (route.h) */
    bool no_tables;           /* outcomes only (a training split for the baselines): p, tokens,
                                 cost, c stay NULL and exclusions are ignored */
    bool embeddings;          /* also read the query embeddings into emb */
    const char *encoder_hash; /* with embeddings: those of this encoder; NULL: the table's, or the only ones */
    bool ids_checked;         /* an earlier pass of the command read every shard and checked the ids: skip the
                                 check (one set of id runs on disk per command, not one per load) */
    bool no_truth;            /* read no outcome: true_correct and true_cost stay NULL (a table alone) */
    unsigned keep;            /* route_data_load: the ROUTE_KEEP_* fields it holds (and the columns it reads for
                                 them); 0: every field */
    const int64_t *only_rows; /* route_data_load: hold only these rows of the selection (ascending indices, as
                                 a pass over it numbers them: the evaluation's sample of its training split);
                                 NULL: every row */
    int64_t n_only_rows;
} route_load_params;

/* The fields of route_data a caller holds. A field not kept stays NULL and
 * the column only it needs is not read: an evaluated split of a million
 * queries held 4·k bytes a query for each table nobody used. */
enum {
    ROUTE_KEEP_ID = 1 << 0,
    ROUTE_KEEP_DATASET = 1 << 1, /* pointers into d->dataset_names: one copy of each name */
    ROUTE_KEEP_P = 1 << 2,
    ROUTE_KEEP_COST = 1 << 3,
    ROUTE_KEEP_TRUTH = 1 << 4, /* true_correct, true_cost (unless no_truth) */
    ROUTE_KEEP_C = 1 << 5,     /* c = cost / cost_scale (cost is kept with it) */
    ROUTE_KEEP_ALL = (1 << 6) - 1
};

/* ------------------------------------------------------- the cost scale */

/* rtr_route_cost_scale a chunk of rows at a time (the same sums, in the
 * same order, as over the whole table): init, add every chunk, finish
 * (which frees; free alone abandons). */
typedef struct {
    int32_t k;
    double *sum;
    int64_t *cnt;
} route_scale_acc;
rtr_status route_scale_init(route_scale_acc *a, int32_t k);
void route_scale_add(route_scale_acc *a, const float *cost, int64_t n);
rtr_status route_scale_finish(route_scale_acc *a, double *scale);
void route_scale_free(route_scale_acc *a);
/* c[i] = cost[i] / scale as floats, for i < n; RTR_ERR_INVALID naming the
 * scale when a finite cost overflows (a given scale so small that costs
 * become +inf: every pair then costs the same and λ routes by accuracy
 * alone, silently). */
rtr_status route_scale_costs(float *c, const float *cost, size_t n, double scale);

/* --------------------------------------------------- preparing a table */

/* What turns predictions into a routing table: the catalog (prices, pair
 * names), the cost model with the user's per-pair costs, the exclusions. */
typedef struct {
    const rtr_catalog *cat;
    rtr_cost_model model;
    double *user_cost; /* [k] for RTR_COST_USER */
    bool *excluded;    /* [k] */
    double max_tokens;
} route_prep;

/* Parse the cost model's inputs and the exclusions of o against cat. */
rtr_status route_prep_init(route_prep *x, const rtr_catalog *cat, const rtr_route_options *o);
void route_prep_free(route_prep *x);

/* The predicted costs of n rows in the model's unit: from the predicted
 * tokens [n x k], the table's predicted USD p_usd (NULL: none) or the
 * catalog's prices with input tokens from texts [n] (NULL: none), or the
 * user's per-pair costs. */
rtr_status route_costs(const route_prep *x, int64_t n, const float *tokens, const float *p_usd,
                       const char *const *texts, float *cost);
/* The allowed accuracies: p = p_correct with NaN where a pair is excluded
 * or predicted above the token cap. RTR_ERR_INVALID naming the query
 * (ids[i], or its row when ids is NULL) when every pair of one is excluded. */
rtr_status route_allowed(const route_prep *x, int64_t n, const float *p_correct, const float *tokens,
                         char *const *ids, float *p);

/* ------------------------------------------------------- streaming */

/* One chunk of routed rows: views valid until the next call. */
typedef struct {
    int64_t n;
    int32_t k;
    char **id, **dataset, **split;  /* n each */
    float *p, *tokens, *cost, *c;   /* n x k (NULL with no_tables); c once the scale is known */
    float *true_correct, *true_cost; /* n x k, NaN: missing (NULL with no_truth) */
    float *emb;                     /* n x dim with embeddings */
} route_chunk;

typedef struct {
    rtr_corpus *corp;
    route_load_params prm;
    route_prep prep;
    double cost_scale;   /* > 0 once known (given, or route_source_scale) */
    char *checkpoint_hash; /* of the table ("" without one) */
    bool table_usd;      /* the table carries predicted USD */
    int32_t dim;         /* embedding width */
    char *encoder_hash;  /* of the embeddings read */
    const bool *shards;  /* only these shards (a rank's part, rtr_part_shards); NULL: all */
    const rtr_row_range *rows; /* the passes: only these rows (a rank's range, rtr_part_range; not the
                                  scale, which reads whole shards); NULL: all */
    rtr_row_reader *r;   /* the pass in progress */
    float *buf;          /* p, cost, c, true_cost of one chunk */
    size_t buf_rows;
    int64_t chunk_rows;
} route_source;

/* Open corpus_dir for routing: resolve the table (and embeddings), parse
 * the cost model and exclusions. chunk_rows: rows per chunk (0: 16384). */
rtr_status route_source_open(route_source *rs, const char *corpus_dir, const route_load_params *prm,
                             int64_t chunk_rows);
/* The default λ scale over the selected rows (a pass reading the predicted
 * costs only), unless the options give one. Each pair's costs are summed
 * shard by shard and the shards' sums added in shard order, so ranks that
 * each read their own shards (rs->shards; the sums added over the ranks)
 * get the one process's scale bit for bit. */
rtr_status route_source_scale(route_source *rs);
/* Start a pass over the selected rows; `columns` adds RTR_COL_ID,
 * RTR_COL_DATASET, RTR_COL_SPLIT to what routing needs. */
rtr_status route_source_begin(route_source *rs, unsigned columns);
/* The next chunk of the pass (ch->n == 0 at the end). */
rtr_status route_source_next(route_source *rs, route_chunk *ch);
void route_source_close(route_source *rs);

/* The route table view of a chunk (truth included when given). */
rtr_route_table route_chunk_table(const route_chunk *ch, bool truth);

/* ------------------------------------------------------- in memory */

/* A whole selection in memory. All matrices n x k row-major (k =
 * cat.n_pairs), owned. p has NaN where a pair is excluded; cost is the
 * predicted cost in the model's unit and c = cost / cost_scale; true_correct
 * / true_cost (NaN: missing) are realised outcomes in the same unit (NULL
 * when has_truth is false: no outcome at all). emb [n x emb_dim] with its
 * encoder hash when asked for. */
typedef struct {
    rtr_catalog cat;
    int64_t n;
    int32_t k;
    char **id, **dataset;   /* dataset[i] points into dataset_names */
    char **dataset_names;   /* each dataset name once, n_dataset_names, owned */
    int32_t n_dataset_names;
    float *p, *cost, *c;
    float *true_correct, *true_cost;
    bool has_truth;
    double cost_scale;
    char *checkpoint_hash; /* of the tables read ("" without tables) */
    float *emb;
    int32_t emb_dim;
    char *encoder_hash;
} route_data;

/* Every selected row of corpus_dir (or those of prm->only_rows): route_source's
 * passes gathered, the fields prm->keep names held (the others NULL). The cost scale, when the
 * options give none, is computed from the predicted costs whether they are
 * kept or not.
 * RTR_ERR_INVALID for an empty split, a checkpoint mismatch (naming both
 * hashes), a query with every pair excluded, a missing, incomplete or stale
 * table or encoding; RTR_ERR_FORMAT for a value out of range (naming the
 * file and row). On failure d is left empty. */
rtr_status route_data_load(route_data *d, const char *corpus_dir, const route_load_params *prm);
void route_data_free(route_data *d);

#endif
