/* rtr corpus store: the catalog (models, strategies, pairs), the corpus
 * directory (manifest, HDF5 shards of queries and outcomes written once by
 * ingest), and beside the shards the stage outputs: query embeddings per
 * encoder (`rtr encode`) and named routing tables (`rtr score`), one file
 * per shard, each tied to its shard by the shard's content hash. Every
 * stage reads the store through one row reader (columns by mask, rows in
 * chunks, one filter) and writes its own output only. The on-disk schema is
 * docs/FORMAT.md.
 *
 * Argument order everywhere: the object acted on or filled first (outputs),
 * then inputs, then options.
 *
 * Ownership: every struct filled by a *_load/_read/_open/_gather call owns
 * its memory and is released by the matching *_free/_close; a row reader's
 * chunks are views valid until its next call. */
#ifndef RTR_STORE_H
#define RTR_STORE_H

#include "rtr/rtr.h"
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RTR_SCHEMA_VERSION 2
#define RTR_DEFAULT_SHARD_SIZE 100000
#define RTR_MAX_NAME 256 /* bytes in a model/strategy/dataset/split name */

/* ---------------------------------------------------------------- catalog */

typedef struct {
    char *name;
    char *description; /* text the encoder embeds as the entry's description */
    double price_in;   /* USD per million input tokens; NaN when unknown  */
    double price_out;  /* USD per million output tokens; NaN when unknown */
} rtr_catalog_entry;

/* A pair k is (pair_model[k], pair_strategy[k]). Pairs are the catalog's
 * "pairs" list when given, else every model x strategy, model-major. */
typedef struct {
    int32_t n_models, n_strategies, n_pairs;
    rtr_catalog_entry *models, *strategies;
    int32_t *pair_model, *pair_strategy;
} rtr_catalog;

/* Parse a catalog JSON file (docs/DATA.md). Errors name the file and field. */
RTR_API rtr_status rtr_catalog_load_json(rtr_catalog *cat, const char *path);
/* Same, from a JSON text; `origin` names the source in error messages. */
RTR_API rtr_status rtr_catalog_parse_json(rtr_catalog *cat, const char *json, const char *origin);
/* The catalog as JSON text (caller frees); parse_json(to_json(c)) == c. */
RTR_API char *rtr_catalog_to_json(const rtr_catalog *cat);
/* A deep copy of src into dst (free with rtr_catalog_free). */
RTR_API rtr_status rtr_catalog_copy(rtr_catalog *dst, const rtr_catalog *src);
RTR_API void rtr_catalog_free(rtr_catalog *cat);
/* Pair index of (model, strategy), or -1. */
RTR_API int32_t rtr_catalog_find_pair(const rtr_catalog *cat, const char *model, const char *strategy);
/* "model|strategy" for pair k (caller frees); names never contain "|". */
RTR_API char *rtr_catalog_pair_name(const rtr_catalog *cat, int32_t k);
/* Hash over names, descriptions, prices and pairs: identifies a catalog. */
RTR_API uint64_t rtr_catalog_hash(const rtr_catalog *cat);

/* ----------------------------------------------------------- shard rows */

/* Rows of queries and outcomes in memory: what ingest appends to a shard.
 * Matrices are row-major n x k (k = the catalog's n_pairs) with NaN marking
 * a missing value. */
typedef struct {
    int64_t n;
    int32_t k;
    char **id, **text, **dataset, **split; /* n strings each (UTF-8) */
    float *correct; /* in [0,1], fractional allowed */
    float *tokens;  /* output tokens, >= 0 */
    float *cost;    /* USD, >= 0 */
} rtr_shard;

/* Allocate rows of n queries x k pairs: strings NULL, outcomes NaN. */
RTR_API rtr_status rtr_shard_alloc(rtr_shard *sh, int64_t n, int32_t k);
RTR_API void rtr_shard_free(rtr_shard *sh);

/* A shard file written a block of rows at a time (memory: one block), under
 * a temporary name until rtr_shard_writer_commit renames it to `path`;
 * *hash receives the shard's content hash (ids, texts, datasets, splits and
 * outcomes, in row order), which the manifest and every stage output record.
 * rtr_shard_writer_abort removes the temporary file. */
typedef struct rtr_shard_writer rtr_shard_writer;
RTR_API rtr_status rtr_shard_writer_open(rtr_shard_writer **w, const char *path, const rtr_catalog *cat);
RTR_API rtr_status rtr_shard_writer_append(rtr_shard_writer *w, const rtr_shard *rows);
RTR_API rtr_status rtr_shard_writer_commit(rtr_shard_writer *w, int64_t *n, uint64_t *hash);
RTR_API void rtr_shard_writer_abort(rtr_shard_writer *w);

/* A whole shard file from rows in memory (the writer above, one block). */
RTR_API rtr_status rtr_shard_write(const char *path, const rtr_catalog *cat, const rtr_shard *sh);

/* ----------------------------------------------------------------- corpus */

/* A corpus is a directory: manifest.json, shard-NNNNN.h5 files and the
 * stage outputs under embeddings/ENCODER/ and tables/NAME/. */
typedef struct rtr_corpus rtr_corpus;

/* Open and validate: the manifest (integer schema version 2, counts,
 * catalog and its hash, no shard listed twice) against every shard's
 * header (schema, counts, pairs, catalog hash and content, content hash,
 * dataset shapes). Any disagreement is RTR_ERR_FORMAT naming the file and
 * the field; a version 1 corpus is RTR_ERR_UNSUPPORTED saying to run
 * `rtr upgrade`. Values are checked as a stage reads them (row reader). */
RTR_API rtr_status rtr_corpus_open(rtr_corpus **out, const char *dir);
RTR_API void rtr_corpus_close(rtr_corpus *c);
RTR_API const rtr_catalog *rtr_corpus_catalog(const rtr_corpus *c);
RTR_API int rtr_corpus_n_shards(const rtr_corpus *c);
RTR_API int64_t rtr_corpus_n_queries(const rtr_corpus *c);
RTR_API int64_t rtr_corpus_shard_queries(const rtr_corpus *c, int i);
/* Full path of shard i, its file name and its content hash (hex); valid
 * while the corpus is open. */
RTR_API const char *rtr_corpus_shard_path(const rtr_corpus *c, int i);
RTR_API const char *rtr_corpus_shard_file(const rtr_corpus *c, int i);
RTR_API const char *rtr_corpus_shard_hash(const rtr_corpus *c, int i);
RTR_API const char *rtr_corpus_dir(const rtr_corpus *c);

/* Whether dir holds a corpus (a manifest.json). */
RTR_API bool rtr_corpus_exists(const char *dir);

/* Manifest writer used by ingest and upgrade: shard file names relative to
 * dir, their row counts and content hashes. */
RTR_API rtr_status rtr_manifest_write(const char *dir, const rtr_catalog *cat, int n_shards,
                                      const char *const *files, const int64_t *counts, const uint64_t *hashes,
                                      int64_t shard_size);

/* ------------------------------------------------- stage outputs (a set) */

/* What a corpus holds beside its shards (`rtr info`). An encoding is the
 * query embeddings of one encoder plus the catalog's description
 * embeddings; a routing table the predictions of one checkpoint. A set is
 * complete when every shard has its file, all from the same encoder (or
 * checkpoint) and tied to the shard's current content; a table is stale
 * when the embeddings it was scored from have since been re-encoded. */
typedef struct {
    char *name;                /* folder name: the encoder (embeddings/NAME) or table (tables/NAME) */
    char *encoder, *encoder_hash; /* the embeddings' encoder (for a table: those it was scored from) */
    char *checkpoint, *checkpoint_hash; /* tables only: the checkpoint file name and hash */
    int32_t dim;               /* encodings: embedding width */
    int n_shards, n_done;      /* shards, and how many have a valid file */
    bool complete;
    char *problem;             /* why it cannot be used (incomplete, stale, mixed); NULL when usable */
} rtr_output_info;

/* The encodings (kind "embeddings") or tables (kind "tables") of c, sorted
 * by name; free with rtr_output_info_free. */
RTR_API rtr_status rtr_corpus_outputs(rtr_output_info **out, int *n, const rtr_corpus *c, const char *kind);
RTR_API void rtr_output_info_free(rtr_output_info *info, int n);

/* Shard i's file of one output (kind "embeddings" or "tables", folder
 * name; shard -1: an encoding's descriptions.h5): its header checked
 * against the shard as it is now, its provenance in info (n_done 1). RTR_ERR_IO when it does not exist, RTR_ERR_FORMAT
 * naming the file and field when it does not belong. */
RTR_API rtr_status rtr_output_file_info(rtr_output_info *info, const rtr_corpus *c, const char *kind,
                                        const char *name, int shard);

/* A valid name for an encoding or a table: 1..128 bytes of letters,
 * digits, '.', '_', '-', not starting with '.'. */
RTR_API bool rtr_output_name_valid(const char *name);

/* A stage output file for shard i, written a block of rows at a time under
 * a temporary name; commit renames it into place (encode commits shard by
 * shard; score keeps every shard's file temporary until all are written and
 * then commits them together). Embeddings: one matrix [n x dim]; a table:
 * p_correct and tokens [n x k], plus cost [n x k] when with_cost. */
typedef struct rtr_output_writer rtr_output_writer;
RTR_API rtr_status rtr_embedding_writer_open(rtr_output_writer **w, const rtr_corpus *c, int shard,
                                             const char *encoder, const char *encoder_hash, int32_t dim);
typedef struct {
    const char *name;                           /* table name */
    const char *checkpoint, *checkpoint_hash;   /* what scored it */
    const char *encoder, *encoder_hash;         /* the embeddings it was scored from */
    bool with_cost;                             /* also /routing/cost (predicted USD) */
} rtr_table_meta;
RTR_API rtr_status rtr_table_writer_open(rtr_output_writer **w, const rtr_corpus *c, int shard,
                                         const rtr_table_meta *meta);
/* Append rows: cols[0] (and cols[1], cols[2] for a table) hold rows x width floats. */
RTR_API rtr_status rtr_output_writer_append(rtr_output_writer *w, int64_t rows, const float *const *cols);
/* Close the file, still under its temporary name (every row written). */
RTR_API rtr_status rtr_output_writer_finish(rtr_output_writer *w);
/* Rename a finished file into place, then free the writer. */
RTR_API rtr_status rtr_output_writer_commit(rtr_output_writer *w);
/* Remove the temporary file and free the writer (NULL: no-op). */
RTR_API void rtr_output_writer_abort(rtr_output_writer *w);

/* The catalog's description embeddings of an encoding, written once per
 * corpus (embeddings/ENCODER/descriptions.h5): d_model [n_models x dim],
 * d_strategy [n_strategies x dim]. */
RTR_API rtr_status rtr_descriptions_write(const rtr_corpus *c, const char *encoder, const char *encoder_hash,
                                          int32_t dim, const float *d_model, const float *d_strategy);
/* Read them back for the encoding named encoder (NULL: the only one);
 * caller frees both. */
RTR_API rtr_status rtr_descriptions_read(float **d_model, float **d_strategy, int32_t *dim, const rtr_corpus *c,
                                         const char *encoder);

/* ---------------------------------------------------------- row reader */

/* The columns a stage asks for. */
enum {
    RTR_COL_ID = 1 << 0,
    RTR_COL_TEXT = 1 << 1,
    RTR_COL_DATASET = 1 << 2,
    RTR_COL_SPLIT = 1 << 3,
    RTR_COL_CORRECT = 1 << 4,
    RTR_COL_TOKENS = 1 << 5,
    RTR_COL_COST = 1 << 6,
    RTR_COL_EMBEDDING = 1 << 7, /* query embeddings of the chosen encoding */
    RTR_COL_P_CORRECT = 1 << 8, /* the chosen routing table */
    RTR_COL_P_TOKENS = 1 << 9,
    RTR_COL_P_COST = 1 << 10 /* the table's predicted USD; absent (NULL) when it has none */
};

/* A range of a corpus's stored rows, counted over every shard in shard
 * order (shard i's rows follow shard i - 1's, filters aside): rows first ..
 * end - 1. A part's share of a corpus (rtr_part_range, dist.h). */
typedef struct {
    int64_t first, end;
} rtr_row_range;

/* Which rows and columns; the one filter every stage uses. */
typedef struct {
    unsigned columns;          /* RTR_COL_* */
    const char *split;         /* only rows of this split; NULL or "": all */
    const char *dataset;       /* only rows of this dataset; NULL: all */
    const char *skip_dataset;  /* leave out rows of this dataset; NULL: none */
    const char *encoder;       /* the encoding (embeddings/NAME); NULL: by encoder_hash, the table's, or the only one */
    const char *encoder_hash;  /* the encoding whose encoder hash this is; NULL: any */
    const char *table;         /* the routing table (tables/NAME); NULL: the only one */
    int shard;                 /* only this shard; < 0: all */
    const bool *shards;        /* else only the shards i with shards[i] (one per shard, e.g. rtr_part_shards'
                                  for this rank; the ids are then checked over these alone); NULL: all */
    const rtr_row_range *rows; /* else only these stored rows (a rank's or part's range; with shards, rows in
                                  both; copied at open); NULL: all. The ids are then checked over these alone,
                                  but under MPI (more than one rank) together with every other rank's pass over
                                  its range (rtr_part_range: the ranges cover the corpus), collectively at the
                                  pass's end, which every rank must reach: rank 0 merges the ranks' sorted ids
                                  and every rank returns its verdict */
    int64_t chunk_rows;        /* rows read at a time (before filtering); 0: 16384 */
    /* The ids' uniqueness check (every id read, across the shards read): a
     * 64-bit hash and the place of each id, 16 bytes, held up to id_spill
     * ids (0: 2^18, 4 MiB), then sorted into a temporary run in $TMPDIR;
     * checked when the last shard is done, by one merge of the runs, equal
     * hashes confirmed by the ids themselves. id_hash_bits (0: 64) keeps
     * fewer bits of the hash, for tests of that confirmation. */
    int64_t id_spill;
    int id_hash_bits;
    bool skip_id_check; /* the caller checks these rows' ids in another pass (route's cost scale: its routing pass) */
} rtr_row_query;

RTR_API rtr_row_query rtr_row_query_default(void);

/* Rows with the asked-for columns (others NULL). Strings are UTF-8 without
 * NUL; every value is checked as it is read: outcomes in range or NaN,
 * embeddings finite, table entries in range. */
typedef struct {
    int64_t n;
    int32_t k, dim;                         /* pairs; embedding width (0 without embeddings) */
    char **id, **text, **dataset, **split;  /* n each */
    float *correct, *tokens, *cost;         /* n x k, NaN: missing */
    float *emb;                             /* n x dim */
    float *p_correct, *p_tokens, *p_cost;   /* n x k */
    size_t emb_mapped; /* rtr_rows_gather: bytes of emb mapped from a temporary file (0: on the heap) */
} rtr_rows;

/* Where the chosen encoding and table come from (strings owned by the reader). */
typedef struct {
    const char *encoding;               /* the embeddings' folder (embeddings/NAME); NULL without */
    const char *encoder, *encoder_hash; /* NULL without embeddings (or a table) */
    int32_t dim;
    const char *table, *checkpoint, *checkpoint_hash; /* NULL without a table */
    bool table_has_cost;
} rtr_row_source;

/* One pass over the corpus in row order: each shard opened once with its
 * stage outputs, the asked-for columns read chunk_rows rows at a time and
 * the filter applied. A chunk never spans two shards, nor a multiple of
 * chunk_rows rows into its shard: a pass over a range (rtr_row_query.rows)
 * that starts there reads exactly the chunks a whole pass reads there. Opening resolves and
 * checks the encoding and table (complete, consistent, not stale): errors
 * name the folder, the file and the reason. */
typedef struct rtr_row_reader rtr_row_reader;
RTR_API rtr_status rtr_row_reader_open(rtr_row_reader **r, const rtr_corpus *c, const rtr_row_query *q);
/* The next chunk of selected rows (a view valid until the next call);
 * chunk->n == 0 at the end. *shard (optional) receives its shard and
 * *row0 (optional) the shard row of the chunk's first row read. The call
 * that ends the pass checks the ids read (RTR_ERR_FORMAT naming a repeated
 * id, its shard and row, and the other shard): a stage must read to the
 * end, and take that call's status, before it commits its output. */
RTR_API rtr_status rtr_row_reader_next(rtr_row_reader *r, rtr_rows *chunk, int *shard, int64_t *row0);
RTR_API const rtr_row_source *rtr_row_reader_source(const rtr_row_reader *r);
RTR_API void rtr_row_reader_close(rtr_row_reader *r);
/* One pass over every shard's query ids (a reader checks the ids of all
 * the shards it reads): for the stages that read each shard alone (encode,
 * score). RTR_ERR_INVALID naming the id and both shards. */
RTR_API rtr_status rtr_corpus_check_ids(const rtr_corpus *c);

/* The split and dataset names a caller was given, checked against those
 * the corpus in dir holds (one read of those two columns, stopping once
 * all are seen): a name no query has is RTR_ERR_INVALID, "DIR: no query in
 * split 'x' (splits: a, b, c)" (the first 20; dataset alike), or, when the
 * corpus has names that differ from x only in ASCII case (names are
 * compared exactly), "DIR: no query in split 'x'; the corpus has 'X'
 * (names are case-sensitive; splits: ...)". NULL or "" is not checked ("" is
 * every split); datasets: n names, each NULL or one to check. */
RTR_API rtr_status rtr_corpus_check_names(const char *dir, const char *split, const char *const *datasets, int n);
/* The error for a selection of split (NULL or "": any) and dataset (NULL:
 * any) of the corpus in dir that came out empty: rtr_corpus_check_names's
 * when a name is one no query has, else "DIR: no query in split 'x'" (of
 * dataset 'd': an exclusion or a row list emptied it). Always an error. */
RTR_API rtr_status rtr_corpus_no_query(const char *dir, const char *split, const char *dataset);

/* Every selected row in memory (an owned rtr_rows; free with rtr_rows_free).
 * Embeddings larger than emb_budget bytes (0: no limit) go to a
 * memory-mapped temporary file instead of the heap, so the page cache, not
 * the process, holds them. *src (optional) receives copies of the
 * provenance strings (free with rtr_row_source_free). RTR_ERR_INVALID
 * naming the split when no row is selected. */
RTR_API rtr_status rtr_rows_gather(rtr_rows *out, rtr_row_source *src, const rtr_corpus *c, const rtr_row_query *q,
                                   size_t emb_budget);
RTR_API void rtr_rows_free(rtr_rows *r);
RTR_API void rtr_row_source_free(rtr_row_source *s);

/* ---------------------------------------------------------------- upgrade */

/* Convert a corpus of schema version 1 (embeddings and routing tables
 * inside the shards) into a version 2 corpus out_dir, built in a temporary
 * directory and renamed into place: shards without them, the embeddings
 * under embeddings/ENCODER/ (the encoder attribute, or "v1") and the table
 * under tables/v1/. in_dir is only read. */
RTR_API rtr_status rtr_corpus_upgrade(const char *out_dir, const char *in_dir);

#ifdef __cplusplus
}
#endif
#endif
