/* Corpus access shared by `rtr train`, `rtr score` and `rtr eval-predictor`:
 * the rows of one split with their query embeddings and outcomes, and the
 * checks that a corpus fits a checkpoint (catalog hash, encoder hash). */
#ifndef RTR_PRED_DATA_H
#define RTR_PRED_DATA_H

#include "rtr/predictor.h"
#include "rtr/store.h"

/* Rows of a corpus in memory, shard order. All arrays owned. */
typedef struct {
    int64_t n;
    int32_t D, K;
    float *emb;              /* n x D (NULL when loaded without embeddings) */
    float *correct, *tokens; /* n x K, NaN: missing */
    char *encoder, *encoder_hash; /* attributes of /embedding/query */
} pred_rows;

/* Load the rows whose split equals `split` (every row when split is NULL),
 * leaving out those of dataset skip_dataset (none when NULL).
 * With want_emb, /embedding/query is read too and every shard must carry
 * one, all with the same encoder hash (RTR_ERR_FORMAT naming the shard
 * otherwise). An empty selection is RTR_ERR_INVALID naming the split. */
rtr_status pred_rows_load(pred_rows *r, const rtr_corpus *c, const char *split, const char *skip_dataset,
                          bool want_emb);
void pred_rows_free(pred_rows *r);

/* The catalog description embeddings of the corpus's first shard
 * (/embedding/model_desc n_models x D, /embedding/strategy_desc
 * n_strategies x D); caller frees both. */
rtr_status pred_desc_load(const rtr_corpus *c, int32_t D, float **d_model, float **d_strategy);

/* The encoder hash of a shard's /embedding/query (caller frees *hash);
 * RTR_ERR_FORMAT naming the shard when it has no embeddings or no hash. */
rtr_status pred_shard_encoder_hash(const char *path, char **hash);

/* RTR_ERR_INVALID with a clear message when the corpus's catalog or the
 * embeddings' encoder differ from the checkpoint's. */
rtr_status pred_check_compatible(const rtr_predictor *p, const rtr_corpus *c, const char *encoder_hash);

#endif
