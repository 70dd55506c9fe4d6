/* Ingest: canonical JSON catalog + JSON Lines outcome logs (docs/DATA.md)
 * into a corpus directory of HDF5 shards (docs/FORMAT.md), and the corpus
 * summary printed by `rtr info`. Outputs first, then inputs (store.h). */
#ifndef RTR_INGEST_H
#define RTR_INGEST_H

#include "rtr/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t shard_size;          /* queries per shard */
    const char *default_split;   /* split of lines without one */
    const char *default_dataset; /* dataset of lines without one */
} rtr_ingest_params;

RTR_API rtr_ingest_params rtr_ingest_default_params(void);

typedef struct {
    int64_t n_queries, n_outcomes;
    int n_shards;
    int64_t n_without_outcomes; /* queries whose line gave no outcome (ingest warns on stderr) */
} rtr_ingest_result;

/* Build the corpus out_dir from a catalog and JSONL files ("-" = stdin).
 * The corpus is assembled in a temporary directory beside out_dir and renamed
 * into place only when every line has been accepted; any error (naming the
 * file, line and field) leaves nothing under out_dir, and temporary
 * directories of earlier killed runs (out_dir.tmp.PID, PID dead) are
 * removed. Memory: the query ids (for uniqueness) plus one block of 1,024
 * rows, whatever the shard size and catalog. Fails with RTR_ERR_EXISTS when
 * out_dir already holds a corpus or other files. */
RTR_API rtr_status rtr_ingest(rtr_ingest_result *result, const char *catalog_path, const char *const *inputs,
                              int n_inputs, const char *out_dir, const rtr_ingest_params *params);

/* Per-pair outcome summary over a whole corpus (`rtr info`). */
typedef struct {
    int64_t n_correct, n_tokens, n_cost; /* present (non-missing) values */
    double sum_correct, sum_tokens, sum_cost;
} rtr_pair_summary;

typedef struct {
    char *dataset, *split;
    int64_t n;
} rtr_group_count;

typedef struct {
    int64_t n_queries;
    int n_shards;
    rtr_catalog cat;
    rtr_pair_summary *pairs; /* cat.n_pairs entries */
    rtr_group_count *groups; /* sorted by dataset, then split */
    int n_groups;
    rtr_output_info *encodings, *tables; /* what the stages added (rtr_corpus_outputs) */
    int n_encodings, n_tables;
} rtr_corpus_summary;

/* Read every row of the corpus dir (the full check: every value, ids
 * unique across shards) into its summary, with its encodings and tables. */
RTR_API rtr_status rtr_corpus_summarize(rtr_corpus_summary *out, const char *dir);
RTR_API void rtr_corpus_summary_free(rtr_corpus_summary *s);

#ifdef __cplusplus
}
#endif
#endif
