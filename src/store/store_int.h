/* Internals shared by the store's files: the corpus handle, the names of
 * the on-disk objects (docs/FORMAT.md), the shard and stage-output header
 * checks, and the string-column reader. Not part of the public API. */
#ifndef RTR_STORE_INT_H
#define RTR_STORE_INT_H

#include "rtr/store.h"
#include "store/h5.h"
#include "store/runs.h"

#define SHARD_SCHEMA "rtr-shard"
#define CORPUS_SCHEMA "rtr-corpus"
#define EMB_SCHEMA "rtr-embeddings"
#define DESC_SCHEMA "rtr-descriptions"
#define TABLE_SCHEMA "rtr-table"
#define EMB_DIR "embeddings"
#define TABLE_DIR "tables"
#define DESC_FILE "descriptions.h5"

#define DS_CATALOG "/catalog_json"
#define DS_EMB "/embedding/query"
#define DS_MODEL_DESC "/embedding/model_desc"
#define DS_STRATEGY_DESC "/embedding/strategy_desc"
#define DS_P_CORRECT "/routing/p_correct"
#define DS_P_TOKENS "/routing/tokens"
#define DS_P_COST "/routing/cost"

/* The string columns (id, text, dataset, split) are two datasets each:
 * /queries/NAME/bytes (uint8, every string's UTF-8 bytes back to back) and
 * /queries/NAME/offsets (int64, n + 1 values: string i is bytes
 * [offsets[i], offsets[i+1])). */
extern const char *const STORE_STR_NAMES[4];    /* "id", "text", "dataset", "split" */
extern const char *const STORE_STR_BYTES[4];    /* "/queries/id/bytes", ... */
extern const char *const STORE_STR_OFFSETS[4];  /* "/queries/id/offsets", ... */
extern const char *const STORE_OUTCOMES[3];     /* "/outcomes/correct", "/outcomes/tokens", "/outcomes/cost" */

struct rtr_corpus {
    char *dir;
    rtr_catalog cat;
    char catalog_hash[17];
    int n_shards;
    char **paths, **files, **hashes;
    int64_t *counts, n_queries, shard_size;
    struct store_scans *scans; /* complete encodings already scanned (corpus.c) */
};

/* 16 lower-case hex digits. */
void store_hex(uint64_t h, char out[17]);

/* Check the header of shard file f at path: schema and version, n rows, k
 * pairs, catalog hash and content, content hash (NULL: not checked) and the
 * shapes of every dataset. RTR_ERR_FORMAT naming path and field. */
rtr_status store_shard_check(hid_t f, const char *path, int64_t n, int32_t k, const char *catalog_hash,
                             const char *shard_hash);

/* Check a stage-output file's header against shard i of c: schema, version,
 * shard file name, its content hash, row count, catalog hash. */
rtr_status store_side_check(hid_t f, const char *path, const char *schema, const rtr_corpus *c, int shard);

/* Strings of rows [row0, row0 + rows) of string column col of an open
 * shard (n rows in all): offsets and bytes read and checked (monotone, in
 * bounds, no NUL, valid UTF-8), then NUL-terminated in *arena with out[i]
 * pointing into it. *arena and *cap grow as needed (caller frees). */
rtr_status store_read_strings(hid_t f, const char *path, int col, int64_t n, int64_t row0, int64_t rows,
                              char **arena, size_t *cap, char **out);

/* Path of a stage output: DIR/kind/name/file (caller frees). */
char *store_output_path(const rtr_corpus *c, const char *kind, const char *name, const char *file);

/* The usable output of a kind (EMB_DIR or TABLE_DIR): by name, else (for
 * encodings) the complete one whose encoder hash is by_hash, else the only
 * one. Fills info (free with rtr_output_info_free(info, 1)); RTR_ERR_INVALID
 * naming the folder and the reason when it is absent, ambiguous,
 * incomplete, mixed or stale. */
rtr_status store_output_resolve(rtr_output_info *info, const rtr_corpus *c, const char *kind, const char *name,
                                const char *by_hash);

/* Query ids unique across shards in bounded memory (rows.c): each id's
 * 64-bit hash (hash_bits > 0 keeps only that many bits: tests force
 * collisions) and place (shard, row), with with_src a third word the
 * caller gives (ingest: the input file and line), held up to spill records
 * (0: 2^18) and sorted into temporary runs past that (runs.h); finish
 * merges them and compares the ids of equal hashes themselves, read again
 * from the shards, so a collision never refuses distinct ids. */
typedef struct {
    uint64_t hash, at, src; /* at: shard << 40 | row */
} id_rec;

typedef struct {
    run_sorter sorted; /* (hash, place) in that order */
    uint64_t mask;
    size_t rec; /* bytes a record: 16, or 24 with src */
    bool done;
} id_check;

/* Where finish reads ids back, and how it reports an id found twice
 * (first and again in place order; its status is finish's). */
typedef struct {
    const char *const *paths;
    const int64_t *counts;
    rtr_status (*dup)(void *ctx, const char *id, const id_rec *first, const id_rec *again);
    void *ctx;
} id_shards;

void id_check_init(id_check *ic, int64_t spill, int hash_bits, bool with_src);
rtr_status id_check_add(id_check *ic, const char *id, int shard, int64_t row, uint64_t src);
rtr_status id_check_finish(id_check *ic, const id_shards *sh); /* frees ic's buffers and runs */
void id_check_free(id_check *ic);
int id_rec_shard(const id_rec *e);
int64_t id_rec_row(const id_rec *e);

#endif
