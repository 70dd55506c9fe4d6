/* rtr corpus store: the catalog (models, strategies, pairs), HDF5 shards of
 * queries and outcomes, and the manifest that ties a corpus directory
 * together. Every later stage (encode, train, score, route) reads and extends
 * shards through this API. The on-disk schema is docs/FORMAT.md.
 *
 * Ownership: every struct filled by a *_load/_read/_open call owns its memory
 * and is released by the matching *_free/_close; nothing returned points into
 * a caller's buffer. */
#ifndef RTR_STORE_H
#define RTR_STORE_H

#include "rtr/rtr.h"
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RTR_SCHEMA_VERSION 1
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
RTR_API void rtr_catalog_free(rtr_catalog *cat);
/* Pair index of (model, strategy), or -1. */
RTR_API int32_t rtr_catalog_find_pair(const rtr_catalog *cat, const char *model, const char *strategy);
/* "model|strategy" for pair k (caller frees); names never contain "|". */
RTR_API char *rtr_catalog_pair_name(const rtr_catalog *cat, int32_t k);
/* Hash over names, descriptions, prices and pairs: identifies a catalog. */
RTR_API uint64_t rtr_catalog_hash(const rtr_catalog *cat);

/* ----------------------------------------------------------------- shards */

/* The queries and outcomes of one shard, in memory. Matrices are row-major
 * n x k (query-major, k = catalog n_pairs) with NaN marking a missing value. */
typedef struct {
    int64_t n;
    int32_t k;
    char **id, **text, **dataset, **split; /* n strings each (UTF-8) */
    float *correct; /* in [0,1], fractional allowed */
    float *tokens;  /* output tokens, >= 0 */
    float *cost;    /* USD, >= 0 */
} rtr_shard;

/* Allocate an empty shard of n queries x k pairs: strings NULL, outcomes NaN. */
RTR_API rtr_status rtr_shard_alloc(rtr_shard *sh, int64_t n, int32_t k);
RTR_API void rtr_shard_free(rtr_shard *sh);

/* Write a complete shard file (schema RTR_SCHEMA_VERSION) through a temporary
 * name; `path` appears only once the file is complete. */
RTR_API rtr_status rtr_shard_write(const char *path, const rtr_catalog *cat, const rtr_shard *sh);

/* Read a shard's queries and outcomes; cat (optional) receives its catalog.
 * Fails with RTR_ERR_UNSUPPORTED on another schema version, RTR_ERR_FORMAT
 * on a truncated or malformed file, naming the file and the object. */
RTR_API rtr_status rtr_shard_read(const char *path, rtr_shard *sh, rtr_catalog *cat);

/* Number of queries in a shard without reading it (checks the schema). */
RTR_API rtr_status rtr_shard_count(const char *path, int64_t *n);

/* A float32 matrix stored in a shard (e.g. "/embedding/query",
 * "/routing/p_correct") with string attributes. */
typedef struct {
    const char *name;         /* absolute dataset path, groups created as needed */
    const float *data;        /* rows x cols, row-major */
    int64_t rows, cols;
    int n_attrs;
    const char *const *attr_keys, *const *attr_vals;
} rtr_matrix_out;

/* Add or replace matrices in an existing shard without ever exposing a
 * half-written file: the shard is copied to a temporary name with the new
 * datasets and renamed over the original. */
RTR_API rtr_status rtr_shard_put_matrices(const char *path, const rtr_matrix_out *m, int count);

/* Read a float32 matrix (caller frees *data). *rows and *cols receive its shape;
 * RTR_ERR_FORMAT with a clear message when the dataset is absent. */
RTR_API rtr_status rtr_shard_read_matrix(const char *path, const char *name, float **data, int64_t *rows, int64_t *cols);
/* A float32 matrix of a shard read a block of rows at a time (query
 * embeddings streamed through `rtr score`), the file open in between.
 * rtr_matrix_reader_open fails as rtr_shard_read_matrix does (not a shard,
 * dataset absent or not a matrix) and gives the shape. A read of rows
 * [row0, row0 + rows) into out (rows x cols, caller-allocated) fails with
 * RTR_ERR_FORMAT naming the file, the dataset and the rows when the file is
 * truncated or corrupt there. Not thread-safe (neither is libhdf5).
 * rtr_matrix_reader_close releases everything (NULL: no-op). */
typedef struct rtr_matrix_reader rtr_matrix_reader;
RTR_API rtr_status rtr_matrix_reader_open(rtr_matrix_reader **r, const char *path, const char *name, int64_t *rows,
                                  int64_t *cols);
RTR_API rtr_status rtr_matrix_reader_read(rtr_matrix_reader *r, int64_t row0, int64_t rows, float *out);
RTR_API void rtr_matrix_reader_close(rtr_matrix_reader *r);

/* Whether the shard opens as an rtr shard: RTR_OK, or the error naming the
 * file (missing, truncated or corrupt, other schema) — for callers whose
 * next message would otherwise blame a missing dataset. */
RTR_API rtr_status rtr_shard_check(const char *path);
/* Whether a dataset exists in the shard. */
RTR_API bool rtr_shard_has(const char *path, const char *name);
/* A string attribute of a dataset or group (caller frees); NULL when absent. */
RTR_API char *rtr_shard_read_attr(const char *path, const char *object, const char *key);

/* ----------------------------------------------------------------- corpus */

/* A corpus is a directory: manifest.json plus shard-NNNNN.h5 files. */
typedef struct rtr_corpus rtr_corpus;

RTR_API rtr_status rtr_corpus_open(rtr_corpus **out, const char *dir);
RTR_API void rtr_corpus_close(rtr_corpus *c);
RTR_API const rtr_catalog *rtr_corpus_catalog(const rtr_corpus *c);
RTR_API int rtr_corpus_n_shards(const rtr_corpus *c);
RTR_API int64_t rtr_corpus_n_queries(const rtr_corpus *c);
RTR_API int64_t rtr_corpus_shard_queries(const rtr_corpus *c, int i);
/* Full path of shard i; valid while the corpus is open. */
RTR_API const char *rtr_corpus_shard_path(const rtr_corpus *c, int i);
RTR_API const char *rtr_corpus_dir(const rtr_corpus *c);

/* Whether dir holds a corpus (a manifest.json). */
RTR_API bool rtr_corpus_exists(const char *dir);

/* Manifest writer used by ingest: shard file names relative to dir. */
RTR_API rtr_status rtr_manifest_write(const char *dir, const rtr_catalog *cat, int n_shards,
                              const char *const *files, const int64_t *counts, int64_t shard_size);

#ifdef __cplusplus
}
#endif
#endif
