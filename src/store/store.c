/* HDF5 shards (schema: docs/FORMAT.md): rows in memory, the shard writer
 * ingest appends blocks to, the header check every open makes, and the
 * string-column reader. A shard is written once, under a temporary name
 * renamed when complete, and never rewritten: later stages write beside it
 * (outputs.c). All HDF5 calls happen on one thread. */
#include "common/util.h"
#include "store/store_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const STORE_STR_NAMES[4] = {"id", "text", "dataset", "split"};
const char *const STORE_STR_BYTES[4] = {"/queries/id/bytes", "/queries/text/bytes", "/queries/dataset/bytes",
                                        "/queries/split/bytes"};
const char *const STORE_STR_OFFSETS[4] = {"/queries/id/offsets", "/queries/text/offsets", "/queries/dataset/offsets",
                                          "/queries/split/offsets"};
const char *const STORE_OUTCOMES[3] = {"/outcomes/correct", "/outcomes/tokens", "/outcomes/cost"};

void store_hex(uint64_t h, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)h); }

/* ------------------------------------------------------------ in memory */

rtr_status rtr_shard_alloc(rtr_shard *sh, int64_t n, int32_t k) {
    memset(sh, 0, sizeof *sh);
    if (n < 0 || k < 1) return rtr_fail(RTR_ERR_INVALID, "rows: %lld x %d is not a shape", (long long)n, (int)k);
    sh->n = n;
    sh->k = k;
    size_t cells = (size_t)n * (size_t)k;
    sh->id = rtr_calloc((size_t)n, sizeof(char *));
    sh->text = rtr_calloc((size_t)n, sizeof(char *));
    sh->dataset = rtr_calloc((size_t)n, sizeof(char *));
    sh->split = rtr_calloc((size_t)n, sizeof(char *));
    sh->correct = rtr_malloc(cells * sizeof(float));
    sh->tokens = rtr_malloc(cells * sizeof(float));
    sh->cost = rtr_malloc(cells * sizeof(float));
    if (!sh->id || !sh->text || !sh->dataset || !sh->split || !sh->correct || !sh->tokens || !sh->cost) {
        rtr_shard_free(sh);
        return RTR_ERR_NOMEM;
    }
    for (size_t i = 0; i < cells; i++) sh->correct[i] = sh->tokens[i] = sh->cost[i] = NAN;
    return RTR_OK;
}

void rtr_shard_free(rtr_shard *sh) {
    if (!sh) return;
    char **cols[] = {sh->id, sh->text, sh->dataset, sh->split};
    for (int c = 0; c < 4; c++) {
        if (!cols[c]) continue;
        for (int64_t i = 0; i < sh->n; i++) free(cols[c][i]);
        free(cols[c]);
    }
    free(sh->correct);
    free(sh->tokens);
    free(sh->cost);
    memset(sh, 0, sizeof *sh);
}

/* ---------------------------------------------------------- shard writer */

struct rtr_shard_writer {
    char *path, *tmp;
    hid_t f, bytes[4], offsets[4], mats[3];
    int32_t k;
    int64_t n, nbytes[4];
    uint64_t hash;
    char *buf; /* one block's string bytes */
    int64_t *offs;
    size_t buf_cap, offs_cap;
};

static void writer_free(rtr_shard_writer *w) {
    for (int c = 0; c < 4; c++) {
        if (w->bytes[c] >= 0) H5Dclose(w->bytes[c]);
        if (w->offsets[c] >= 0) H5Dclose(w->offsets[c]);
    }
    for (int c = 0; c < 3; c++)
        if (w->mats[c] >= 0) H5Dclose(w->mats[c]);
    free(w->path);
    free(w->tmp);
    free(w->buf);
    free(w->offs);
    free(w);
}

void rtr_shard_writer_abort(rtr_shard_writer *w) {
    if (!w) return;
    hid_t f = w->f;
    char *tmp = w->tmp;
    w->tmp = NULL;
    writer_free(w);
    h5_close(f, tmp ? tmp : "");
    if (tmp) unlink(tmp);
    free(tmp);
}

rtr_status rtr_shard_writer_open(rtr_shard_writer **out, const char *path, const rtr_catalog *cat) {
    *out = NULL;
    rtr_shard_writer *w = rtr_calloc(1, sizeof *w);
    if (!w) return RTR_ERR_NOMEM;
    w->f = -1;
    for (int c = 0; c < 4; c++) w->bytes[c] = w->offsets[c] = -1;
    for (int c = 0; c < 3; c++) w->mats[c] = -1;
    w->k = cat->n_pairs;
    w->hash = RTR_FNV_SEED;
    char *json = rtr_catalog_to_json(cat), hex[17];
    store_hex(rtr_catalog_hash(cat), hex);
    rtr_status s = json && (w->path = rtr_strdup(path)) && (w->tmp = rtr_tmp_path(path)) ? RTR_OK : RTR_ERR_NOMEM;
    if (!s) s = h5_create(w->tmp, &w->f);
    if (!s) s = h5_put_str(w->f, "rtr_schema", SHARD_SCHEMA);
    if (!s) s = h5_put_i64(w->f, "rtr_schema_version", RTR_SCHEMA_VERSION);
    if (!s) s = h5_put_i64(w->f, "n_pairs", w->k);
    if (!s) s = h5_put_str(w->f, "catalog_hash", hex);
    if (!s) s = h5_put_blob(w->f, DS_CATALOG, json, strlen(json));
    int64_t zero = 0;
    for (int c = 0; c < 4 && !s; c++) {
        s = h5_make(w->f, STORE_STR_BYTES[c], H5_U8, 0, 1, &w->bytes[c]);
        if (!s) s = h5_make(w->f, STORE_STR_OFFSETS[c], H5_I64, 0, 1, &w->offsets[c]);
        if (!s) s = h5_append(w->offsets[c], H5_I64, 0, 1, 1, &zero, STORE_STR_OFFSETS[c]);
    }
    for (int c = 0; c < 3 && !s; c++) s = h5_make(w->f, STORE_OUTCOMES[c], H5_F32, 0, w->k, &w->mats[c]);
    free(json);
    if (s) {
        rtr_fail_prefix(s, "%s: ", path);
        rtr_shard_writer_abort(w);
        return s;
    }
    *out = w;
    return RTR_OK;
}

/* Grow *buf to hold need bytes. */
static bool reserve(void **buf, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *b = rtr_realloc(*buf, c);
    if (!b) return false;
    *buf = b;
    *cap = c;
    return true;
}

rtr_status rtr_shard_writer_append(rtr_shard_writer *w, const rtr_shard *rows) {
    if (rows->k != w->k)
        return rtr_fail(RTR_ERR_INVALID, "%s: rows have %d pairs, the catalog %d", w->path, rows->k, w->k);
    int64_t m = rows->n;
    if (m <= 0) return RTR_OK;
    size_t K = (size_t)w->k;
    /* the content hash: every row's strings (NUL-separated) and outcomes */
    for (int64_t i = 0; i < m; i++) {
        const char *cols[4] = {rows->id[i], rows->text[i], rows->dataset[i], rows->split[i]};
        for (int c = 0; c < 4; c++) w->hash = rtr_hash64(w->hash, cols[c] ? cols[c] : "", strlen(cols[c] ? cols[c] : "") + 1);
        w->hash = rtr_hash64(w->hash, rows->correct + i * K, K * sizeof(float));
        w->hash = rtr_hash64(w->hash, rows->tokens + i * K, K * sizeof(float));
        w->hash = rtr_hash64(w->hash, rows->cost + i * K, K * sizeof(float));
    }
    char **strs[4] = {rows->id, rows->text, rows->dataset, rows->split};
    rtr_status s = RTR_OK;
    for (int c = 0; c < 4 && !s; c++) {
        size_t total = 0;
        for (int64_t i = 0; i < m; i++) total += strs[c][i] ? strlen(strs[c][i]) : 0;
        if (!reserve((void **)&w->buf, &w->buf_cap, total ? total : 1) ||
            !reserve((void **)&w->offs, &w->offs_cap, (size_t)m * sizeof(int64_t)))
            return RTR_ERR_NOMEM;
        size_t at = 0;
        for (int64_t i = 0; i < m; i++) {
            size_t len = strs[c][i] ? strlen(strs[c][i]) : 0;
            memcpy(w->buf + at, strs[c][i] ? strs[c][i] : "", len);
            at += len;
            w->offs[i] = w->nbytes[c] + (int64_t)at;
        }
        s = h5_append(w->bytes[c], H5_U8, w->nbytes[c], (int64_t)total, 1, w->buf, STORE_STR_BYTES[c]);
        if (!s) s = h5_append(w->offsets[c], H5_I64, w->n + 1, m, 1, w->offs, STORE_STR_OFFSETS[c]);
        w->nbytes[c] += (int64_t)total;
    }
    const float *mats[3] = {rows->correct, rows->tokens, rows->cost};
    for (int c = 0; c < 3 && !s; c++) s = h5_append(w->mats[c], H5_F32, w->n, m, w->k, mats[c], STORE_OUTCOMES[c]);
    if (s) return rtr_fail_prefix(s, "%s: ", w->tmp);
    w->n += m;
    return RTR_OK;
}

rtr_status rtr_shard_writer_commit(rtr_shard_writer *w, int64_t *n, uint64_t *hash) {
    char hex[17];
    store_hex(w->hash, hex);
    rtr_status s = h5_put_i64(w->f, "n_queries", w->n);
    if (!s) s = h5_put_str(w->f, "shard_hash", hex);
    if (s) {
        rtr_fail_prefix(s, "%s: ", w->tmp);
        rtr_shard_writer_abort(w);
        return s;
    }
    if (n) *n = w->n;
    if (hash) *hash = w->hash;
    hid_t f = w->f;
    char *tmp = w->tmp, *path = w->path;
    w->tmp = w->path = NULL;
    writer_free(w); /* datasets first: the file closes last */
    s = h5_close(f, tmp);
    if (s) unlink(tmp);
    else s = rtr_commit_file(tmp, path);
    free(tmp);
    free(path);
    return s;
}

rtr_status rtr_shard_write(const char *path, const rtr_catalog *cat, const rtr_shard *sh) {
    rtr_shard_writer *w;
    rtr_status s = rtr_shard_writer_open(&w, path, cat);
    if (s) return s;
    s = rtr_shard_writer_append(w, sh);
    if (s) {
        rtr_shard_writer_abort(w);
        return s;
    }
    return rtr_shard_writer_commit(w, NULL, NULL);
}

/* ----------------------------------------------------------- shard checks */

rtr_status store_shard_check(hid_t f, const char *path, int64_t n, int32_t k, const char *catalog_hash,
                             const char *shard_hash) {
    char *schema = NULL, *ch = NULL, *sh = NULL, *json = NULL;
    int64_t version = 0, rows = -1, pairs = -1;
    size_t len = 0;
    rtr_status s = h5_get_str(f, path, "rtr_schema", &schema);
    if (!s && strcmp(schema, SHARD_SCHEMA))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute rtr_schema: '%s', not an rtr shard", path, schema);
    if (!s) s = h5_get_i64(f, path, "rtr_schema_version", &version);
    if (!s && version != RTR_SCHEMA_VERSION)
        s = rtr_fail(version == 1 ? RTR_ERR_UNSUPPORTED : RTR_ERR_FORMAT,
                     "%s: attribute rtr_schema_version: shard schema version %lld, this rtr reads %d%s", path,
                     (long long)version, RTR_SCHEMA_VERSION, version == 1 ? " (run `rtr upgrade`)" : "");
    if (!s) s = h5_get_i64(f, path, "n_queries", &rows);
    if (!s && rows != n)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute n_queries: %lld, the manifest says %lld", path, (long long)rows,
                     (long long)n);
    if (!s) s = h5_get_i64(f, path, "n_pairs", &pairs);
    if (!s && pairs != k)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute n_pairs: %lld, the catalog has %d", path, (long long)pairs, (int)k);
    if (!s) s = h5_get_str(f, path, "catalog_hash", &ch);
    if (!s && strcmp(ch, catalog_hash))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute catalog_hash: %s, the manifest's catalog is %s", path, ch, catalog_hash);
    if (!s) s = h5_get_str(f, path, "shard_hash", &sh);
    if (!s && shard_hash && strcmp(sh, shard_hash))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute shard_hash: %s, the manifest says %s (a shard from another corpus?)",
                     path, sh, shard_hash);
    /* the catalog's content, not only its hash attribute */
    if (!s) s = h5_get_blob(f, path, DS_CATALOG, &json, &len);
    if (!s) {
        rtr_catalog cat;
        char *origin = rtr_sprintf("%s: dataset %s", path, DS_CATALOG);
        s = origin ? rtr_catalog_parse_json(&cat, json, origin) : RTR_ERR_NOMEM;
        char hex[17];
        if (!s) {
            store_hex(rtr_catalog_hash(&cat), hex);
            if (strcmp(hex, catalog_hash))
                s = rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s: a catalog of hash %s, the manifest's is %s", path,
                             DS_CATALOG, hex, catalog_hash);
            rtr_catalog_free(&cat);
        }
        free(origin);
    }
    for (int c = 0; c < 4 && !s; c++) {
        hid_t d;
        s = h5_dataset(f, path, STORE_STR_OFFSETS[c], H5_I64, n + 1, 1, &d, NULL);
        if (!s) H5Dclose(d);
        if (!s) s = h5_dataset(f, path, STORE_STR_BYTES[c], H5_U8, -1, 1, &d, NULL);
        if (!s) H5Dclose(d);
    }
    for (int c = 0; c < 3 && !s; c++) {
        hid_t d;
        s = h5_dataset(f, path, STORE_OUTCOMES[c], H5_F32, n, k, &d, NULL);
        if (!s) H5Dclose(d);
    }
    free(schema);
    free(ch);
    free(sh);
    free(json);
    return s;
}

rtr_status store_side_check(hid_t f, const char *path, const char *schema, const rtr_corpus *c, int shard) {
    char *sc = NULL, *file = NULL, *sh = NULL, *ch = NULL;
    int64_t version = 0, rows = -1;
    rtr_status s = h5_get_str(f, path, "rtr_schema", &sc);
    if (!s && strcmp(sc, schema))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute rtr_schema: '%s', expected '%s'", path, sc, schema);
    if (!s) s = h5_get_i64(f, path, "rtr_schema_version", &version);
    if (!s && version != RTR_SCHEMA_VERSION)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute rtr_schema_version: %lld, this rtr reads %d", path,
                     (long long)version, RTR_SCHEMA_VERSION);
    if (!s) s = h5_get_str(f, path, "catalog_hash", &ch);
    if (!s && strcmp(ch, c->catalog_hash))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute catalog_hash: %s, the corpus's catalog is %s", path, ch,
                     c->catalog_hash);
    if (shard >= 0) {
        if (!s) s = h5_get_str(f, path, "shard", &file);
        if (!s && strcmp(file, c->files[shard]))
            s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute shard: '%s', expected '%s'", path, file, c->files[shard]);
        if (!s) s = h5_get_str(f, path, "shard_hash", &sh);
        if (!s && strcmp(sh, c->hashes[shard]))
            s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute shard_hash: %s, but %s now has content hash %s (computed "
                         "from another version of the shard: recompute it)", path, sh, c->files[shard], c->hashes[shard]);
        if (!s) s = h5_get_i64(f, path, "n_queries", &rows);
        if (!s && rows != c->counts[shard])
            s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute n_queries: %lld, the shard has %lld", path, (long long)rows,
                         (long long)c->counts[shard]);
    }
    free(sc);
    free(file);
    free(sh);
    free(ch);
    return s;
}

/* ------------------------------------------------------- string columns */

rtr_status store_read_strings(hid_t f, const char *path, int col, int64_t n, int64_t row0, int64_t rows,
                              char **arena, size_t *cap, char **out) {
    if (rows <= 0) return RTR_OK;
    hid_t doff, dbytes;
    int64_t total = 0;
    rtr_status s = h5_dataset(f, path, STORE_STR_OFFSETS[col], H5_I64, n + 1, 1, &doff, NULL);
    if (s) return s;
    s = h5_dataset(f, path, STORE_STR_BYTES[col], H5_U8, -1, 1, &dbytes, &total);
    if (s) {
        H5Dclose(doff);
        return s;
    }
    int64_t *off = rtr_malloc(sizeof *off * (size_t)(rows + 1));
    if (!off) s = RTR_ERR_NOMEM;
    if (!s) s = h5_read_rows(doff, H5_I64, row0, rows + 1, 1, off, path, STORE_STR_OFFSETS[col]);
    /* offsets must be monotone and inside the bytes: a corrupt file can name any */
    for (int64_t i = 0; !s && i < rows; i++)
        if (off[i] < 0 || off[i + 1] < off[i] || off[i + 1] > total || (row0 + i == 0 && off[0] != 0))
            s = rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s row %lld: offsets %lld..%lld outside 0..%lld", path,
                         STORE_STR_OFFSETS[col], (long long)(row0 + i), (long long)off[i], (long long)off[i + 1],
                         (long long)total);
    size_t len = s ? 0 : (size_t)(off[rows] - off[0]), need = len + (size_t)rows + 1;
    if (!s && need > *cap) {
        char *a = rtr_realloc(*arena, need);
        if (!a) s = RTR_ERR_NOMEM;
        else *arena = a, *cap = need;
    }
    /* the bytes land at the end of the arena and move down as each string gets its NUL */
    char *raw = s ? NULL : *arena + rows + 1;
    if (!s) s = h5_read_rows(dbytes, H5_U8, off[0], (int64_t)len, 1, raw, path, STORE_STR_BYTES[col]);
    char *dst = *arena;
    for (int64_t i = 0; !s && i < rows; i++) {
        size_t a = (size_t)(off[i] - off[0]), m = (size_t)(off[i + 1] - off[i]), bad;
        if (memchr(raw + a, 0, m) || !rtr_utf8_valid(raw + a, m, &bad))
            s = rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s row %lld: not a valid UTF-8 string", path,
                         STORE_STR_BYTES[col], (long long)(row0 + i));
        else {
            memmove(dst, raw + a, m);
            dst[m] = '\0';
            out[i] = dst;
            dst += m + 1;
        }
    }
    free(off);
    H5Dclose(doff);
    H5Dclose(dbytes);
    return s;
}
