/* The one way to read a corpus (store.h, "row reader"): shard by shard,
 * each shard and its stage outputs opened once, the columns a stage asks
 * for read a chunk of rows at a time, every value checked as it is read,
 * and one filter (split, dataset, skipped dataset) applied in place. Every
 * stage streams through it; rtr_rows_gather collects a selection in memory
 * for the stages that need all of it (training, the baselines). */
#include "common/util.h"
#include "rtr/dist.h"
#include "store/runs.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strcasecmp */
#include <sys/mman.h>
#include <unistd.h>

#define DEFAULT_CHUNK_ROWS 16384

rtr_row_query rtr_row_query_default(void) {
    rtr_row_query q = {0};
    q.shard = -1;
    return q;
}

/* The float columns, in rtr_rows order, with where they live and what they may hold. */
enum { M_CORRECT, M_TOKENS, M_COST, M_EMB, M_PC, M_PT, M_PCOST, N_MATS };
static const unsigned MAT_COL[N_MATS] = {RTR_COL_CORRECT, RTR_COL_TOKENS, RTR_COL_COST, RTR_COL_EMBEDDING,
                                         RTR_COL_P_CORRECT, RTR_COL_P_TOKENS, RTR_COL_P_COST};
static const unsigned STR_COL[4] = {RTR_COL_ID, RTR_COL_TEXT, RTR_COL_DATASET, RTR_COL_SPLIT};

/* ------------------------------------------------------- unique ids */

/* Ids must be unique across the shards read (a shard edited to repeat an id
 * would be routed, scored and counted twice). Each id read leaves its hash
 * and its place, 16 bytes, in a buffer of bounded size; a full buffer is
 * sorted and written to a temporary run. The end of the pass merges the
 * runs (runs.h): ids with equal hashes are then compared themselves, read
 * again from their shards, so a collision never refuses a valid corpus.
 * ingest checks the shards it writes the same way (store_int.h). */
#define ID_ROW_BITS 40
#define ID_SPILL_DEFAULT ((int64_t)1 << 18)

static int id_rec_cmp(const void *x, const void *y) {
    const id_rec *a = x, *b = y; /* hash and place: the first 16 bytes of both record sizes */
    if (a->hash != b->hash) return a->hash < b->hash ? -1 : 1;
    return (a->at > b->at) - (a->at < b->at);
}

void id_check_init(id_check *ic, int64_t spill, int hash_bits, bool with_src) {
    *ic = (id_check){.mask = hash_bits > 0 && hash_bits < 64 ? ((uint64_t)1 << hash_bits) - 1 : ~(uint64_t)0,
                     .rec = with_src ? sizeof(id_rec) : offsetof(id_rec, src)};
    run_sorter_init(&ic->sorted, ic->rec, (size_t)(spill > 0 ? spill : ID_SPILL_DEFAULT), id_rec_cmp,
                    "query id check");
}

void id_check_free(id_check *ic) {
    run_sorter_free(&ic->sorted);
    memset(ic, 0, sizeof *ic);
}

rtr_status id_check_add(id_check *ic, const char *id, int shard, int64_t row, uint64_t src) {
    if ((uint64_t)shard >> (64 - ID_ROW_BITS) || (uint64_t)row >> ID_ROW_BITS)
        return rtr_fail(RTR_ERR_INVALID, "shard %d row %lld: beyond the id check's 2^24 shards of 2^40 rows", shard,
                        (long long)row);
    uint64_t h = rtr_hash64(RTR_FNV_SEED, id, strlen(id)) & ic->mask;
    id_rec e = {h, (uint64_t)shard << ID_ROW_BITS | (uint64_t)row, src};
    return run_sorter_add(&ic->sorted, &e);
}

int id_rec_shard(const id_rec *e) { return (int)(e->at >> ID_ROW_BITS); }
int64_t id_rec_row(const id_rec *e) { return (int64_t)(e->at & (((uint64_t)1 << ID_ROW_BITS) - 1)); }

/* The id at place `at` (a copy, caller frees), read again from its shard. */
static rtr_status id_at(const id_shards *sh, const id_rec *e, char **id) {
    int shard = id_rec_shard(e);
    hid_t f;
    char *arena = NULL, *out[1] = {NULL};
    size_t cap = 0;
    rtr_status s = h5_open(sh->paths[shard], &f);
    if (s) return s;
    s = store_read_strings(f, sh->paths[shard], 0, sh->counts[shard], id_rec_row(e), 1, &arena, &cap, out);
    h5_close(f, sh->paths[shard]);
    if (!s && !(*id = rtr_strdup(out[0]))) s = RTR_ERR_NOMEM;
    free(arena);
    return s;
}

/* The distinct ids of one hash met so far (more than one only on a collision). */
typedef struct {
    char **id;
    id_rec *e;
    size_t n, cap;
} id_group;

static void id_group_clear(id_group *g) {
    for (size_t i = 0; i < g->n; i++) free(g->id[i]);
    g->n = 0;
}

/* Record e of the group's hash: a repeat of an id in g (reported by sh->dup), else one more distinct id. */
static rtr_status id_group_add(id_group *g, const id_shards *sh, const id_rec *e) {
    char *id = NULL;
    rtr_status s = id_at(sh, e, &id);
    for (size_t i = 0; !s && i < g->n; i++)
        if (!strcmp(g->id[i], id)) s = sh->dup(sh->ctx, id, &g->e[i], e);
    if (!s && g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 4;
        char **ids = rtr_realloc(g->id, cap * sizeof *ids);
        if (ids) g->id = ids;
        id_rec *es = ids ? rtr_realloc(g->e, cap * sizeof *es) : NULL;
        if (es) g->e = es, g->cap = cap;
        else s = RTR_ERR_NOMEM;
    }
    if (s) {
        free(id);
        return s;
    }
    g->id[g->n] = id;
    g->e[g->n++] = *e;
    return RTR_OK;
}

/* Every record of m, in order (hash, then place), rec bytes each: the ids
 * of equal hashes compared themselves, a repeat reported by sh->dup. */
static rtr_status id_scan(run_merge *m, size_t rec_bytes, const id_shards *sh) {
    id_group g = {0};
    id_rec prev = {0}, e = {0};
    bool open = false; /* prev's hash has a group */
    const char *rec;
    rtr_status s = run_merge_start(m);
    for (int64_t i = 0; !s && !(s = run_merge_next(m, &rec)) && rec; i++) {
        memcpy(&e, rec, rec_bytes);
        if (i && e.hash == prev.hash) {
            if (!open) s = id_group_add(&g, sh, &prev), open = true;
            if (!s) s = id_group_add(&g, sh, &e);
        } else if (open) {
            id_group_clear(&g);
            open = false;
        }
        prev = e;
    }
    id_group_clear(&g);
    free(g.id), free(g.e);
    return s;
}

rtr_status id_check_finish(id_check *ic, const id_shards *sh) {
    ic->done = true;
    run_merge *m = NULL;
    rtr_status s = run_sorter_merge(&ic->sorted, &m);
    if (!s) s = id_scan(m, ic->rec, sh);
    id_check_free(ic);
    ic->done = true;
    return s;
}

/* ------------------------------------------- the check across MPI ranks */

/* Each rank's pass reads its own range of rows (rtr_part_range), so its
 * check alone would miss an id repeated in two ranks' rows; reading every id
 * on every rank to check them (s - 1 extra reads of every id in all) is
 * what this replaces. Each rank's sorted (hash, place) records go to rank 0
 * in messages of 64 KiB (rtr_dist_stream), which merges them with its own as
 * they arrive (a k-way merge of pulled runs, equal hashes in rank order,
 * which is place order: the ranks' ranges follow each other), so the
 * records, the repeat found and its message are one process's; rank 0
 * confirms equal hashes by the ids themselves (id_at reads any shard) and
 * sends its verdict to every rank, so that all return the same error. */
#define ID_STREAM_TAG 73

/* Rank 0's own records as a pulled run (runs.h): the next of its merge. */
typedef struct {
    run_merge *m;
    size_t rec;
} own_ids;

static rtr_status pull_own_ids(void *ctx, char *buf, size_t max, size_t *got, bool first) {
    own_ids *o = ctx;
    rtr_status s = first ? run_merge_start(o->m) : RTR_OK;
    const char *rec = NULL;
    for (*got = 0; !s && *got < max && !(s = run_merge_next(o->m, &rec)) && rec; ++*got)
        memcpy(buf + *got * o->rec, rec, o->rec);
    return s;
}

/* Rank 0: every rank's records merged and scanned; each stream read to its
 * end even after a repeat, since a rank still sending would wait for it
 * (*drained: they were, so the ranks can take the verdict). */
static rtr_status id_merge_ranks(run_merge *own, size_t rec, const id_shards *sh, bool *drained) {
    int size = rtr_dist_size();
    sorted_run *runs = rtr_calloc((size_t)size, sizeof *runs);
    rtr_dist_stream *src = rtr_calloc((size_t)size, sizeof *src);
    char *scratch = rtr_malloc((size_t)1 << 16);
    own_ids mine = {own, rec};
    run_merge all = {0};
    rtr_status s = runs && src && scratch ? run_merge_open(&all, runs, size) : RTR_ERR_NOMEM;
    for (int r = 0; !s && r < size; r++) {
        rtr_dist_stream_open(&src[r], r, rec, (size_t)1 << 16, ID_STREAM_TAG);
        runs[r] = (sorted_run){.pull = r ? rtr_dist_stream_pull : pull_own_ids, .pull_ctx = r ? (void *)&src[r] : (void *)&mine,
                               .rec = rec};
    }
    if (!s) s = id_scan(&all, rec, sh);
    *drained = all.heap != NULL;
    for (int r = 1; *drained && r < size; r++) {
        size_t got = 1;
        while (*drained && got) *drained = !rtr_dist_stream_next(&src[r], scratch, &got);
    }
    for (int r = 0; runs && r < size; r++) sorted_run_close(&runs[r]);
    for (int r = 0; src && r < size; r++) rtr_dist_stream_close(&src[r]);
    run_merge_free(&all);
    free(runs);
    free(src);
    free(scratch);
    return s;
}

static rtr_status id_check_finish_ranks(id_check *ic, const id_shards *sh) {
    ic->done = true;
    run_merge *m = NULL;
    rtr_status s = run_sorter_merge(&ic->sorted, &m);
    bool drained = false;
    if (!s && rtr_dist_rank() != 0) {
        rtr_dist_stream out;
        rtr_dist_stream_open(&out, rtr_dist_rank(), ic->rec, (size_t)1 << 16, ID_STREAM_TAG);
        const char *rec;
        s = run_merge_start(m);
        while (!s && !(s = run_merge_next(m, &rec)) && rec) s = rtr_dist_stream_put(&out, rec, ic->rec);
        if (!s) s = rtr_dist_stream_end(&out);
        rtr_dist_stream_close(&out);
    } else if (!s) {
        s = id_merge_ranks(m, ic->rec, sh, &drained);
    }
    id_check_free(ic);
    ic->done = true;
    /* a rank that failed otherwise stops the job (rtr_dist_abort): no verdict to wait for */
    if (s && (rtr_dist_rank() != 0 || !drained)) return s;
    /* rank 0's verdict, its message included, to every rank */
    struct {
        int64_t code;
        char msg[1024];
    } v = {s, ""};
    if (s) snprintf(v.msg, sizeof v.msg, "%s", rtr_last_error());
    rtr_status b = rtr_dist_bcast(&v, sizeof v, 0);
    if (b) return b;
    return v.code ? rtr_fail((rtr_status)v.code, "%s", v.msg) : RTR_OK;
}

/* The row reader's report of a repeated id: its shard and row, and the other shard. */
static rtr_status corpus_dup(void *ctx, const char *id, const id_rec *first, const id_rec *again) {
    const rtr_corpus *c = ctx;
    int a = id_rec_shard(first), b = id_rec_shard(again);
    return rtr_fail(RTR_ERR_FORMAT, "%s: row %lld: query id \"%s\" appears twice in the corpus: also in %s", c->paths[b],
                    (long long)id_rec_row(again), id, a == b ? "this shard" : c->paths[a]);
}

struct rtr_row_reader {
    const rtr_corpus *c;
    rtr_row_query q;
    rtr_row_range range; /* q.rows points here: the caller's range need not outlive the open */
    unsigned read; /* columns read: the asked-for ones and the filter's */
    rtr_output_info emb, tab;
    rtr_row_source src;
    int shard, end;
    int64_t base; /* the corpus row (rtr_row_range) of the current shard's first row */
    int64_t row;  /* next row of the current shard */
    hid_t f[3];  /* shard, embeddings, table file of the current shard */
    char *path[3];
    hid_t d[N_MATS];
    int32_t width[N_MATS];
    char *arena[4], **str[4];
    size_t arena_cap[4];
    float *mat[N_MATS];
    int64_t chunk;
    id_check ids;
};

static void close_shard(rtr_row_reader *r) {
    for (int m = 0; m < N_MATS; m++)
        if (r->d[m] >= 0) H5Dclose(r->d[m]), r->d[m] = -1;
    for (int i = 0; i < 3; i++) {
        if (r->f[i] >= 0) h5_close(r->f[i], r->path[i]);
        r->f[i] = -1;
        free(r->path[i]);
        r->path[i] = NULL;
    }
}

void rtr_row_reader_close(rtr_row_reader *r) {
    if (!r) return;
    close_shard(r);
    for (int c = 0; c < 4; c++) free(r->arena[c]), free(r->str[c]);
    for (int m = 0; m < N_MATS; m++) free(r->mat[m]);
    id_check_free(&r->ids);
    rtr_output_info_free(&r->emb, 1);
    rtr_output_info_free(&r->tab, 1);
    free(r);
}

rtr_status rtr_corpus_check_ids(const rtr_corpus *c) {
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_ID;
    rtr_row_reader *r = NULL;
    rtr_rows ch;
    rtr_status st = rtr_row_reader_open(&r, c, &q);
    while (!st && !(st = rtr_row_reader_next(r, &ch, NULL, NULL)) && ch.n) continue;
    rtr_row_reader_close(r);
    return st;
}

const rtr_row_source *rtr_row_reader_source(const rtr_row_reader *r) { return &r->src; }

/* Whether every file of the table carries /routing/cost (all or none). */
static rtr_status table_cost(rtr_row_reader *r, bool *has) {
    int with = 0;
    for (int i = 0; i < r->c->n_shards; i++) {
        char *path = store_output_path(r->c, TABLE_DIR, r->tab.name, r->c->files[i]);
        hid_t f;
        rtr_status s = path ? h5_open(path, &f) : RTR_ERR_NOMEM;
        if (!s) {
            with += h5_exists(f, DS_P_COST);
            h5_close(f, path);
        }
        free(path);
        if (s) return s;
    }
    if (with && with != r->c->n_shards)
        return rtr_fail(RTR_ERR_FORMAT, "%s/%s/%s: /routing/cost is in %d of %d shards: score it again", r->c->dir,
                        TABLE_DIR, r->tab.name, with, r->c->n_shards);
    *has = with > 0;
    return RTR_OK;
}

/* Resolve the table and the encoding the query asks for. */
static rtr_status resolve(rtr_row_reader *r) {
    const rtr_row_query *q = &r->q;
    rtr_status s = RTR_OK;
    if (q->columns & (RTR_COL_P_CORRECT | RTR_COL_P_TOKENS | RTR_COL_P_COST)) {
        s = store_output_resolve(&r->tab, r->c, TABLE_DIR, q->table, NULL);
        if (!s) {
            r->src.table = r->tab.name;
            r->src.checkpoint = r->tab.checkpoint;
            r->src.checkpoint_hash = r->tab.checkpoint_hash;
            r->src.encoder = r->tab.encoder;
            r->src.encoder_hash = r->tab.encoder_hash;
        }
        if (!s && (q->columns & RTR_COL_P_COST)) s = table_cost(r, &r->src.table_has_cost);
    }
    if (!s && (q->columns & RTR_COL_EMBEDDING)) {
        /* by name; else by hash; else the embeddings the table was scored from; else the only ones */
        const char *name = q->encoder, *hash = q->encoder ? NULL : q->encoder_hash;
        if (!name && !hash && r->src.table) name = r->tab.encoder, hash = NULL;
        s = store_output_resolve(&r->emb, r->c, EMB_DIR, name, hash);
        if (!s && r->src.table && strcmp(r->emb.encoder_hash, r->tab.encoder_hash))
            s = rtr_fail(RTR_ERR_INVALID, "%s: table %s was scored from embeddings of encoder hash %s, embeddings %s "
                         "are encoder hash %s", r->c->dir, r->tab.name, r->tab.encoder_hash, r->emb.name,
                         r->emb.encoder_hash);
        if (!s && q->encoder_hash && strcmp(r->emb.encoder_hash, q->encoder_hash))
            s = rtr_fail(RTR_ERR_INVALID, "%s: embeddings %s are encoder hash %s, not %s", r->c->dir, r->emb.name,
                         r->emb.encoder_hash, q->encoder_hash);
        if (!s) {
            r->src.encoding = r->emb.name;
            r->src.encoder = r->emb.encoder;
            r->src.encoder_hash = r->emb.encoder_hash;
            r->src.dim = r->emb.dim;
        }
    }
    return s;
}

rtr_status rtr_row_reader_open(rtr_row_reader **out, const rtr_corpus *c, const rtr_row_query *q) {
    *out = NULL;
    if (q->shard >= c->n_shards) return rtr_fail(RTR_ERR_INVALID, "%s: no shard %d", c->dir, q->shard);
    rtr_row_reader *r = rtr_calloc(1, sizeof *r);
    if (!r) return RTR_ERR_NOMEM;
    r->c = c;
    r->q = *q;
    if (q->rows) r->range = *q->rows, r->q.rows = &r->range;
    /* the ids whenever they are checked: a shard edited to repeat an id would
     * be routed, scored and counted twice (not otherwise: route's cost-scale
     * pass read every id of the corpus for nothing) */
    r->read = q->columns | (q->skip_id_check ? 0 : RTR_COL_ID);
    if (q->split && *q->split) r->read |= RTR_COL_SPLIT;
    if (q->dataset || q->skip_dataset) r->read |= RTR_COL_DATASET;
    for (int i = 0; i < 3; i++) r->f[i] = -1;
    for (int m = 0; m < N_MATS; m++) r->d[m] = -1;
    r->shard = q->shard >= 0 ? q->shard : 0;
    r->end = q->shard >= 0 ? q->shard + 1 : c->n_shards;
    for (int i = 0; i < r->shard; i++) r->base += c->counts[i];
    r->chunk = q->chunk_rows > 0 ? q->chunk_rows : DEFAULT_CHUNK_ROWS;
    id_check_init(&r->ids, q->id_spill, q->id_hash_bits, false);
    rtr_status s = resolve(r);
    if (!s && !r->src.table_has_cost) r->read &= ~(unsigned)RTR_COL_P_COST;
    int32_t k = c->cat.n_pairs;
    for (int m = 0; m < N_MATS; m++) r->width[m] = m == M_EMB ? r->src.dim : k;
    /* chunk buffers, allocated once */
    for (int col = 0; col < 4 && !s; col++)
        if ((r->read & STR_COL[col]) && !(r->str[col] = rtr_malloc(sizeof(char *) * (size_t)r->chunk))) s = RTR_ERR_NOMEM;
    for (int m = 0; m < N_MATS && !s; m++)
        if ((r->read & MAT_COL[m]) && !(r->mat[m] = rtr_malloc(sizeof(float) * (size_t)r->chunk * (size_t)r->width[m])))
            s = RTR_ERR_NOMEM;
    if (s) {
        rtr_row_reader_close(r);
        return s;
    }
    *out = r;
    return RTR_OK;
}

/* The rows lo .. hi - 1 of the current shard that the query's range holds. */
static void shard_rows(const rtr_row_reader *r, int64_t *lo, int64_t *hi) {
    int64_t n = r->c->counts[r->shard];
    *lo = 0, *hi = n;
    if (!r->q.rows) return;
    int64_t a = r->q.rows->first - r->base, b = r->q.rows->end - r->base;
    *lo = a < 0 ? 0 : a > n ? n : a;
    *hi = b < *lo ? *lo : b > n ? n : b;
}

static void next_shard(rtr_row_reader *r) {
    close_shard(r);
    r->base += r->c->counts[r->shard];
    r->shard++;
}

/* Open shard r->shard and the outputs the reader needs; its next row is `from`. */
static rtr_status open_shard(rtr_row_reader *r, int64_t from) {
    const rtr_corpus *c = r->c;
    int i = r->shard;
    int64_t n = c->counts[i];
    static const char *const mats[N_MATS] = {"/outcomes/correct", "/outcomes/tokens", "/outcomes/cost", DS_EMB,
                                             DS_P_CORRECT, DS_P_TOKENS, DS_P_COST};
    const int file_of[N_MATS] = {0, 0, 0, 1, 2, 2, 2};
    r->path[0] = rtr_strdup(c->paths[i]);
    if (r->read & RTR_COL_EMBEDDING) r->path[1] = store_output_path(c, EMB_DIR, r->emb.name, c->files[i]);
    if (r->read & (RTR_COL_P_CORRECT | RTR_COL_P_TOKENS | RTR_COL_P_COST))
        r->path[2] = store_output_path(c, TABLE_DIR, r->tab.name, c->files[i]);
    rtr_status s = r->path[0] ? RTR_OK : RTR_ERR_NOMEM;
    for (int f = 0; f < 3 && !s; f++)
        if (r->path[f]) s = h5_open(r->path[f], &r->f[f]);
    /* the outputs were checked when the reader opened; check again what could have changed since */
    if (!s && r->f[1] >= 0) s = store_side_check(r->f[1], r->path[1], EMB_SCHEMA, c, i);
    if (!s && r->f[2] >= 0) s = store_side_check(r->f[2], r->path[2], TABLE_SCHEMA, c, i);
    for (int m = 0; m < N_MATS && !s; m++)
        if (r->read & MAT_COL[m]) s = h5_dataset(r->f[file_of[m]], r->path[file_of[m]], mats[m], H5_F32, n, r->width[m], &r->d[m], NULL);
    r->row = from;
    return s;
}

/* Every value of rows x width floats v (rows from shard row row0) is one
 * column m may hold; RTR_ERR_FORMAT naming the file, dataset, row and pair. */
static rtr_status check_values(const rtr_row_reader *r, int m, const float *v, int64_t rows, int64_t row0) {
    static const char *const what[N_MATS] = {"/outcomes/correct", "/outcomes/tokens", "/outcomes/cost", DS_EMB,
                                             DS_P_CORRECT, DS_P_TOKENS, DS_P_COST};
    const int file_of[N_MATS] = {0, 0, 0, 1, 2, 2, 2};
    size_t w = (size_t)r->width[m], total = (size_t)rows * w;
    for (size_t i = 0; i < total; i++) {
        float x = v[i];
        bool ok;
        switch (m) {
        case M_CORRECT: ok = isnan(x) || (x >= 0 && x <= 1); break;
        case M_TOKENS:
        case M_COST: ok = isnan(x) || (x >= 0 && isfinite(x)); break;
        case M_EMB: ok = isfinite(x); break;
        case M_PC: ok = x >= 0 && x <= 1; break;
        default: ok = x >= 0 && isfinite(x); break;
        }
        if (!ok)
            return rtr_fail(m == M_EMB ? RTR_ERR_NUMERIC : RTR_ERR_FORMAT, "%s: dataset %s row %lld %s %zu: %g is %s",
                            r->path[file_of[m]], what[m], (long long)(row0 + (int64_t)(i / w)),
                            m == M_EMB ? "column" : "pair", i % w, (double)x,
                            m == M_EMB ? "not finite (NaN/inf)"
                            : m == M_CORRECT || m == M_PC ? "outside [0, 1]"
                                                          : "not a finite number >= 0");
    }
    return RTR_OK;
}

/* Row i of the chunk is selected by the filter. */
static bool selected(const rtr_row_reader *r, int64_t i) {
    const rtr_row_query *q = &r->q;
    if (q->split && *q->split && strcmp(r->str[3][i], q->split)) return false;
    if (q->dataset && strcmp(r->str[2][i], q->dataset)) return false;
    if (q->skip_dataset && !strcmp(r->str[2][i], q->skip_dataset)) return false;
    return true;
}

rtr_status rtr_row_reader_next(rtr_row_reader *r, rtr_rows *out, int *shard, int64_t *row0) {
    memset(out, 0, sizeof *out);
    out->k = r->c->cat.n_pairs;
    out->dim = r->src.dim;
    while (r->shard < r->end) {
        int64_t lo, hi;
        shard_rows(r, &lo, &hi);
        /* another part's shard, or none of its rows in the range: not opened */
        if (r->f[0] < 0 && ((r->q.shards && !r->q.shards[r->shard]) || (r->q.rows && lo == hi))) {
            next_shard(r);
            continue;
        }
        rtr_status s = RTR_OK;
        if (r->f[0] < 0) s = open_shard(r, lo);
        /* up to the next multiple of the chunk: a range's chunks are a whole pass's */
        int64_t n = r->c->counts[r->shard], at = r->row, m = hi - at, to_grid = r->chunk - at % r->chunk;
        if (m > to_grid) m = to_grid;
        if (!s && m <= 0) { /* this shard is done */
            next_shard(r);
            continue;
        }
        for (int col = 0; col < 4 && !s; col++)
            if (r->read & STR_COL[col])
                s = store_read_strings(r->f[0], r->path[0], col, n, at, m, &r->arena[col], &r->arena_cap[col], r->str[col]);
        for (int k = 0; k < N_MATS && !s; k++)
            if (r->read & MAT_COL[k]) {
                const int file_of[N_MATS] = {0, 0, 0, 1, 2, 2, 2};
                s = h5_read_rows(r->d[k], H5_F32, at, m, r->width[k], r->mat[k], r->path[file_of[k]],
                                 k == M_EMB ? DS_EMB : "table");
                if (!s) s = check_values(r, k, r->mat[k], m, at);
            }
        for (int64_t i = 0; i < m && !s && !r->q.skip_id_check; i++) s = id_check_add(&r->ids, r->str[0][i], r->shard, at + i, 0);
        if (s) return s;
        /* compact the selected rows to the front, in order */
        int64_t kept = 0;
        for (int64_t i = 0; i < m; i++) {
            if (!selected(r, i)) continue;
            if (kept != i) {
                for (int col = 0; col < 4; col++)
                    if (r->str[col]) r->str[col][kept] = r->str[col][i];
                for (int k = 0; k < N_MATS; k++)
                    if (r->mat[k]) memcpy(r->mat[k] + (size_t)kept * r->width[k], r->mat[k] + (size_t)i * r->width[k],
                                          sizeof(float) * (size_t)r->width[k]);
            }
            kept++;
        }
        if (shard) *shard = r->shard;
        if (row0) *row0 = at;
        r->row = at + m;
        if (!kept) continue;
        out->n = kept;
        const unsigned asked = r->q.columns;
        char **strs[4];
        for (int col = 0; col < 4; col++) strs[col] = asked & STR_COL[col] ? r->str[col] : NULL;
        out->id = strs[0], out->text = strs[1], out->dataset = strs[2], out->split = strs[3];
        float *mats[N_MATS];
        for (int k = 0; k < N_MATS; k++) mats[k] = asked & MAT_COL[k] ? r->mat[k] : NULL;
        out->correct = mats[M_CORRECT], out->tokens = mats[M_TOKENS], out->cost = mats[M_COST];
        out->emb = mats[M_EMB];
        out->p_correct = mats[M_PC], out->p_tokens = mats[M_PT], out->p_cost = mats[M_PCOST];
        return RTR_OK;
    }
    id_shards sh = {(const char *const *)r->c->paths, r->c->counts, corpus_dup, (void *)r->c};
    if (r->ids.done || r->q.skip_id_check) return RTR_OK;
    /* under MPI a range is one rank's share of a pass every rank makes: their ids are checked together */
    return r->q.rows && rtr_dist_size() > 1 ? id_check_finish_ranks(&r->ids, &sh) : id_check_finish(&r->ids, &sh);
}

/* --------------------------------------------------------------- gather */

void rtr_rows_free(rtr_rows *r) {
    char **strs[4] = {r->id, r->text, r->dataset, r->split};
    for (int c = 0; c < 4; c++) {
        for (int64_t i = 0; strs[c] && i < r->n; i++) free(strs[c][i]);
        free(strs[c]);
    }
    free(r->correct), free(r->tokens), free(r->cost);
    free(r->p_correct), free(r->p_tokens), free(r->p_cost);
    if (r->emb_mapped) munmap(r->emb, r->emb_mapped);
    else free(r->emb);
    memset(r, 0, sizeof *r);
}

void rtr_row_source_free(rtr_row_source *s) {
    free((char *)s->encoding), free((char *)s->encoder), free((char *)s->encoder_hash), free((char *)s->table);
    free((char *)s->checkpoint), free((char *)s->checkpoint_hash);
    memset(s, 0, sizeof *s);
}

/* Embeddings of up to cap rows in a temporary file of the corpus directory
 * (unlinked at once: it disappears with the mapping), mapped shared, so
 * they live in the page cache rather than the process's memory. */
static rtr_status map_embeddings(rtr_rows *out, const rtr_corpus *c, int64_t cap, int32_t dim) {
    size_t bytes = (size_t)(cap ? cap : 1) * (size_t)dim * sizeof(float);
    char *path = rtr_sprintf("%s/.rtr-embeddings.tmp.%ld", c->dir, (long)getpid());
    int fd = path ? open(path, O_RDWR | O_CREAT | O_EXCL, 0600) : -1;
    if (fd >= 0) unlink(path);
    rtr_status s = fd < 0 ? rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", path ? path : c->dir, strerror(errno)) : RTR_OK;
    if (!s && ftruncate(fd, (off_t)bytes) != 0) s = rtr_fail(RTR_ERR_IO, "%s: cannot size the embeddings file", path);
    void *p = s ? MAP_FAILED : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (!s && p == MAP_FAILED) s = rtr_fail(RTR_ERR_IO, "%s: cannot map the embeddings file", path);
    if (fd >= 0) close(fd);
    free(path);
    if (s) return s;
    out->emb = p;
    out->emb_mapped = bytes;
    return RTR_OK;
}

/* Grow the gathered arrays to hold `need` rows. */
static rtr_status gather_reserve(rtr_rows *o, unsigned cols, int64_t *cap, int64_t need) {
    if (need <= *cap) return RTR_OK;
    int64_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    char ***strs[4] = {&o->id, &o->text, &o->dataset, &o->split};
    for (int i = 0; i < 4; i++)
        if (cols & STR_COL[i]) {
            char **p = rtr_realloc(*strs[i], sizeof(char *) * (size_t)c);
            if (!p) return RTR_ERR_NOMEM;
            *strs[i] = p;
        }
    float **mats[N_MATS] = {&o->correct, &o->tokens, &o->cost, &o->emb, &o->p_correct, &o->p_tokens, &o->p_cost};
    for (int m = 0; m < N_MATS; m++) {
        if (!(cols & MAT_COL[m]) || (m == M_EMB && o->emb_mapped)) continue;
        size_t w = m == M_EMB ? (size_t)o->dim : (size_t)o->k;
        float *p = rtr_realloc(*mats[m], sizeof(float) * (size_t)c * w);
        if (!p) return RTR_ERR_NOMEM;
        *mats[m] = p;
    }
    *cap = c;
    return RTR_OK;
}

static rtr_status source_copy(rtr_row_source *dst, const rtr_row_source *src) {
    memset(dst, 0, sizeof *dst);
    const char *from[6] = {src->encoding, src->encoder, src->encoder_hash, src->table, src->checkpoint,
                           src->checkpoint_hash};
    const char **to[6] = {&dst->encoding, &dst->encoder, &dst->encoder_hash, &dst->table, &dst->checkpoint,
                          &dst->checkpoint_hash};
    for (int i = 0; i < 6; i++)
        if (from[i] && !(*to[i] = rtr_strdup(from[i]))) {
            rtr_row_source_free(dst);
            return RTR_ERR_NOMEM;
        }
    dst->dim = src->dim;
    dst->table_has_cost = src->table_has_cost;
    return RTR_OK;
}

rtr_status rtr_rows_gather(rtr_rows *out, rtr_row_source *src, const rtr_corpus *c, const rtr_row_query *q,
                           size_t emb_budget) {
    memset(out, 0, sizeof *out);
    if (src) memset(src, 0, sizeof *src);
    rtr_row_reader *r;
    rtr_status s = rtr_row_reader_open(&r, c, q);
    if (s) return s;
    unsigned cols = q->columns;
    if (!r->src.table_has_cost) cols &= ~(unsigned)RTR_COL_P_COST;
    out->k = c->cat.n_pairs;
    out->dim = r->src.dim;
    int64_t upper = 0, cap = 0;
    for (int i = r->shard; i < r->end; i++) upper += c->counts[i];
    if ((cols & RTR_COL_EMBEDDING) && emb_budget && (size_t)upper * (size_t)out->dim * sizeof(float) > emb_budget)
        s = map_embeddings(out, c, upper, out->dim);
    rtr_rows ch;
    while (!s && !(s = rtr_row_reader_next(r, &ch, NULL, NULL)) && ch.n) {
        if ((s = gather_reserve(out, cols, &cap, out->n + ch.n))) break;
        char **from[4] = {ch.id, ch.text, ch.dataset, ch.split}, **to[4] = {out->id, out->text, out->dataset, out->split};
        for (int i = 0; i < 4 && !s; i++)
            if (to[i]) memset(to[i] + out->n, 0, sizeof(char *) * (size_t)ch.n); /* freeable if a copy fails */
        for (int i = 0; i < 4 && !s; i++)
            for (int64_t j = 0; to[i] && j < ch.n && !s; j++)
                if (!(to[i][out->n + j] = rtr_strdup(from[i][j]))) s = RTR_ERR_NOMEM;
        if (s) {
            out->n += ch.n;
            break;
        }
        const float *mf[N_MATS] = {ch.correct, ch.tokens, ch.cost, ch.emb, ch.p_correct, ch.p_tokens, ch.p_cost};
        float *mt[N_MATS] = {out->correct, out->tokens, out->cost, out->emb, out->p_correct, out->p_tokens, out->p_cost};
        for (int m = 0; m < N_MATS; m++) {
            size_t w = m == M_EMB ? (size_t)out->dim : (size_t)out->k;
            if (mt[m] && mf[m]) memcpy(mt[m] + (size_t)out->n * w, mf[m], sizeof(float) * (size_t)ch.n * w);
        }
        out->n += ch.n;
    }
    if (!s && out->n == 0) s = rtr_corpus_no_query(c->dir, q->split, q->dataset);
    if (!s && src) s = source_copy(src, &r->src);
    rtr_row_reader_close(r);
    if (s) rtr_rows_free(out);
    return s;
}

/* ------------------------------------------------ split and dataset names */

/* Distinct names, in order of first appearance. */
typedef struct {
    char **name;
    int n, cap;
} name_set;

static rtr_status names_add(name_set *s, const char *x) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], x)) return RTR_OK;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        char **p = realloc(s->name, (size_t)cap * sizeof *p);
        if (!p) return RTR_ERR_NOMEM;
        s->name = p, s->cap = cap;
    }
    if (!(s->name[s->n] = rtr_strdup(x))) return RTR_ERR_NOMEM;
    s->n++;
    return RTR_OK;
}

static bool names_has(const name_set *s, const char *x) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], x)) return true;
    return false;
}

static void names_free(name_set *s) {
    for (int i = 0; i < s->n; i++) free(s->name[i]);
    free(s->name);
}

/* The names of s that differ from x only in ASCII case, as "'Train'" or
 * "'Train' and 'TRAIN'" into b (nothing when none): split and dataset names
 * are compared exactly, and a log written with "Train" reads as absent. */
static void case_variants(rtr_buf *b, const name_set *s, const char *x) {
    int n = 0;
    for (int i = 0; i < s->n; i++)
        if (!strcasecmp(s->name[i], x) && strcmp(s->name[i], x))
            rtr_buf_printf(b, "%s'%s'", n++ ? " and " : "", rtr_shown(s->name[i]));
}

/* "dir: no query in KIND 'x' (KINDs: a, b, c)": the first 20 names; with
 * "; the corpus has 'X' (names are case-sensitive; ..." when one differs
 * only in case. */
static rtr_status no_such(const char *dir, const char *kind, const char *x, const name_set *s) {
    rtr_buf b = {0}, near = {0};
    for (int i = 0; i < s->n && i < 20; i++) rtr_buf_printf(&b, "%s%s", i ? ", " : "", rtr_shown(s->name[i]));
    if (s->n > 20) rtr_buf_printf(&b, ", and %d more", s->n - 20);
    case_variants(&near, s, x);
    rtr_status st = b.failed || near.failed ? RTR_ERR_NOMEM
                    : near.buf ? rtr_fail(RTR_ERR_INVALID, "%s: no query in %s '%s'; the corpus has %s (names are "
                                          "case-sensitive; %ss: %s)", dir, kind, rtr_shown(x), near.buf, kind, b.buf)
                               : rtr_fail(RTR_ERR_INVALID, "%s: no query in %s '%s' (%ss: %s)", dir, kind, rtr_shown(x), kind,
                                          b.buf ? b.buf : "none");
    rtr_buf_free(&b);
    rtr_buf_free(&near);
    return st;
}

/* The distinct split and dataset names of the corpus in dir (one read of
 * those two columns), up to the row where split (when not NULL or "") and
 * each of the n datasets not NULL have all been seen. */
static rtr_status corpus_names(const char *dir, name_set *splits, name_set *sets, const char *split,
                               const char *const *datasets, int n) {
    rtr_corpus *c = NULL;
    rtr_row_reader *r = NULL;
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_DATASET | RTR_COL_SPLIT;
    q.skip_id_check = true; /* the caller's own pass over the rows checks the ids */
    rtr_rows ch;
    rtr_status st = rtr_corpus_open(&c, dir);
    if (!st) st = rtr_row_reader_open(&r, c, &q);
    bool found = false;
    while (!st && !found && !(st = rtr_row_reader_next(r, &ch, NULL, NULL)) && ch.n)
        for (int64_t i = 0; i < ch.n && !st && !found; i++) {
            if (!(st = names_add(splits, ch.split[i]))) st = names_add(sets, ch.dataset[i]);
            found = !split || !*split || names_has(splits, split);
            for (int j = 0; j < n && found; j++) found = !datasets[j] || names_has(sets, datasets[j]);
        }
    rtr_row_reader_close(r);
    rtr_corpus_close(c);
    return st;
}

rtr_status rtr_corpus_check_names(const char *dir, const char *split, const char *const *datasets, int n) {
    bool any = split && *split;
    for (int i = 0; i < n; i++) any |= datasets[i] != NULL;
    if (!any) return RTR_OK;
    name_set splits = {0}, sets = {0};
    rtr_status st = corpus_names(dir, &splits, &sets, split, datasets, n);
    if (!st && split && *split && !names_has(&splits, split)) st = no_such(dir, "split", split, &splits);
    for (int i = 0; !st && i < n; i++)
        if (datasets[i] && !names_has(&sets, datasets[i])) st = no_such(dir, "dataset", datasets[i], &sets);
    names_free(&splits);
    names_free(&sets);
    return st;
}

rtr_status rtr_corpus_no_query(const char *dir, const char *split, const char *dataset) {
    rtr_status st = rtr_corpus_check_names(dir, split, &dataset, 1);
    if (st == RTR_ERR_INVALID) return st; /* a name no query has: the names there are, and near misses */
    const char *what = split && *split ? rtr_shown(split) : "(any)";
    return dataset ? rtr_fail(RTR_ERR_INVALID, "%s: no query in split '%s' of dataset '%s'", dir, what,
                              rtr_shown(dataset))
                   : rtr_fail(RTR_ERR_INVALID, "%s: no query in split '%s'", dir, what);
}
