/* Loading a corpus for routing: queries of one split, their routing tables
 * (/routing/p_correct, /routing/tokens from `rtr score`), the ground truth,
 * the chosen cost model with its λ scale, and the user's exclusions. Shared
 * by `rtr route`, `rtr sweep` and the evaluation/report commands built on
 * them. Internal (not part of the public API). */
#ifndef RTR_ROUTE_DATA_H
#define RTR_ROUTE_DATA_H

#include "rtr/route.h"

#include <stdio.h>

typedef struct {
    rtr_route_options o;      /* the queries, table, cost model, exclusions and scale (route.h) */
    bool no_tables;           /* outcomes only (a training split for the baselines): p, tokens,
                                 cost, c stay NULL and exclusions are ignored */
    bool embeddings;          /* also read the query embeddings into emb */
    const char *encoder_hash; /* with embeddings: those of this encoder; NULL: any (one per corpus) */
} route_load_params;

/* All matrices n x k row-major (k = cat.n_pairs), owned. p has NaN where a
 * pair is excluded; cost is the predicted cost in the model's unit and c =
 * cost / cost_scale; true_correct / true_cost (NaN: missing) are realised
 * outcomes in the same unit (NULL when has_truth is false: no outcome at all).
 * emb [n x emb_dim] with its encoder hash when asked for. */
typedef struct {
    rtr_catalog cat;
    int64_t n;
    int32_t k;
    char **id, **dataset, **split;
    float *p, *tokens, *cost, *c;
    float *true_correct, *true_cost;
    bool has_truth;
    double cost_scale;
    char *checkpoint_hash; /* of the tables read ("" when the shards carry none) */
    float *emb;
    int32_t emb_dim;
    char *encoder_hash;
} route_data;

/* Load every shard of corpus_dir. RTR_ERR_INVALID for an empty split, a
 * checkpoint mismatch (naming both hashes), a query with every pair
 * excluded; RTR_ERR_FORMAT for a shard without routing tables (unless
 * no_tables) or embeddings (when asked for), tables of the wrong shape, or
 * embeddings of different encoders. On failure d is left empty. */
rtr_status route_data_load(route_data *d, const char *corpus_dir, const route_load_params *prm);
void route_data_free(route_data *d);

/* The same from predictions made in memory (`rtr route --model`): takes
 * ownership of *cat (left empty), ids (n strings), p and tokens ([n x k]),
 * also on failure; texts [n] give the input tokens of USD costs. Applies the
 * cost model, exclusions and scale as route_data_load does; no truth. */
rtr_status route_data_from_predictions(route_data *d, rtr_catalog *cat, char **ids, int64_t n, float *p,
                                       float *tokens, const char *const *texts, const char *checkpoint_hash,
                                       const route_load_params *prm);

/* Output through a temporary name: route_file_open creates "<path>.tmp.<pid>"
 * (*tmp, caller frees); route_file_commit closes it and renames it over
 * path when every write succeeded, else removes it. */
FILE *route_file_open(const char *path, char **tmp);
rtr_status route_file_commit(FILE *f, const char *tmp, const char *path);

/* The route table view of d for rtr_path_compute (truth included when present). */
rtr_route_table route_data_table(const route_data *d);

#endif
