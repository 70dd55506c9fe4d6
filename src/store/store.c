/* HDF5 shard store and corpus manifest (schema: docs/FORMAT.md).
 *
 * A shard holds up to shard_size queries: their ids and texts, the outcome
 * matrices, the catalog, and whatever later stages add (/embedding,
 * /routing). Files are always written under a temporary name and renamed, so
 * a path that exists is a complete file. All HDF5 calls happen on one thread:
 * Debian's libhdf5 is not built thread-safe. */
#include "rtr/store.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHARD_SCHEMA "rtr-shard"
#define CORPUS_SCHEMA "rtr-corpus"

/* HDF5 prints its own error stack by default; rtr reports errors itself. */
static void h5_quiet(void) {
    static int done;
    if (!done) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); done = 1; }
}

/* ------------------------------------------------------------ in memory */

rtr_status rtr_shard_alloc(rtr_shard *sh, int64_t n, int32_t k) {
    memset(sh, 0, sizeof *sh);
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

/* ------------------------------------------------------ HDF5 primitives */

static hid_t utf8_vlen_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static rtr_status write_str_attr(hid_t loc, const char *key, const char *val) {
    hid_t t = utf8_vlen_type(), sp = H5Screate(H5S_SCALAR);
    H5Adelete(loc, key); /* replacing is fine; absence is the usual case */
    hid_t a = H5Acreate2(loc, key, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, t, &val);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return e < 0 ? rtr_fail(RTR_ERR_IO, "cannot write attribute %s", key) : RTR_OK;
}

static rtr_status write_i64_attr(hid_t loc, const char *key, int64_t val) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, key, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT64, &val);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return e < 0 ? rtr_fail(RTR_ERR_IO, "cannot write attribute %s", key) : RTR_OK;
}

/* Read a scalar string attribute, fixed or variable length (caller frees). */
static char *read_str_attr(hid_t loc, const char *key) {
    if (H5Aexists(loc, key) <= 0) return NULL;
    hid_t a = H5Aopen(loc, key, H5P_DEFAULT);
    if (a < 0) return NULL;
    hid_t ft = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(ft) == H5T_STRING) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t mt = utf8_vlen_type();
            char *v = NULL;
            if (H5Aread(a, mt, &v) >= 0 && v) {
                out = rtr_strdup(v);
                H5free_memory(v);
            }
            H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(ft);
            out = rtr_calloc(n + 1, 1);
            if (out && H5Aread(a, ft, out) < 0) { free(out); out = NULL; }
        }
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

static bool read_i64_attr(hid_t loc, const char *key, int64_t *val) {
    if (H5Aexists(loc, key) <= 0) return false;
    hid_t a = H5Aopen(loc, key, H5P_DEFAULT);
    bool ok = a >= 0 && H5Aread(a, H5T_NATIVE_INT64, val) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok;
}

/* Create intermediate groups of an absolute path like "/a/b/name". */
static rtr_status ensure_parent_groups(hid_t file, const char *path) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) {
            hid_t g = H5Gcreate2(file, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g < 0) return rtr_fail(RTR_ERR_IO, "cannot create group %s", buf);
            H5Gclose(g);
        }
        *p = '/';
    }
    return RTR_OK;
}

/* Chunked, shuffled, deflated dataset; rows extendable so n = 0 works. */
static hid_t create_chunked(hid_t file, const char *name, hid_t type, int rank, const hsize_t *dims, size_t elem) {
    if (ensure_parent_groups(file, name)) return -1;
    hsize_t maxdims[2] = {H5S_UNLIMITED, rank > 1 ? dims[1] : 0};
    hsize_t chunk[2];
    size_t row_bytes = elem * (rank > 1 && dims[1] ? dims[1] : 1);
    hsize_t rows = (hsize_t)(1 << 20) / row_bytes; /* ~1 MiB chunks */
    chunk[0] = rows < 1 ? 1 : rows;
    if (dims[0] && chunk[0] > dims[0]) chunk[0] = dims[0];
    if (rank > 1) chunk[1] = dims[1] ? dims[1] : 1;
    hid_t sp = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 4);
    hid_t d = H5Dcreate2(file, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

static rtr_status write_strings(hid_t file, const char *name, char *const *v, int64_t n) {
    hid_t t = utf8_vlen_type();
    hsize_t dims[1] = {(hsize_t)n};
    hid_t d = create_chunked(file, name, t, 1, dims, sizeof(char *));
    herr_t e = d < 0 ? -1 : (n ? H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : 0);
    if (d >= 0) H5Dclose(d);
    H5Tclose(t);
    return e < 0 ? rtr_fail(RTR_ERR_IO, "cannot write dataset %s", name) : RTR_OK;
}

static rtr_status write_numeric(hid_t file, const char *name, hid_t ftype, hid_t mtype, const void *v, int rank,
                                int64_t rows, int64_t cols, size_t elem) {
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t d = create_chunked(file, name, ftype, rank, dims, elem);
    herr_t e = d < 0 ? -1 : (rows && (rank == 1 || cols) ? H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : 0);
    if (d >= 0) H5Dclose(d);
    return e < 0 ? rtr_fail(RTR_ERR_IO, "cannot write dataset %s", name) : RTR_OK;
}

/* Read a 1-D string dataset of exactly n rows into freshly allocated strings. */
static rtr_status read_strings(hid_t file, const char *name, char **out, int64_t n) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return rtr_fail(RTR_ERR_FORMAT, "missing dataset %s", name);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[1] = {0};
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
    rtr_status s = RTR_OK;
    if (rank != 1 || (int64_t)dims[0] != n) s = rtr_fail(RTR_ERR_FORMAT, "dataset %s: expected %lld rows", name, (long long)n);
    hid_t t = utf8_vlen_type();
    char **tmp = s ? NULL : rtr_calloc((size_t)n, sizeof(char *));
    if (!s && !tmp) s = RTR_ERR_NOMEM;
    if (!s && n && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp) < 0)
        s = rtr_fail(RTR_ERR_FORMAT, "cannot read dataset %s (truncated file?)", name);
    for (int64_t i = 0; !s && i < n; i++)
        if (!(out[i] = rtr_strdup(tmp[i] ? tmp[i] : ""))) s = RTR_ERR_NOMEM;
    if (tmp && n) H5Dvlen_reclaim(t, sp, H5P_DEFAULT, tmp);
    free(tmp);
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    return s;
}

/* Read a float dataset whose shape must be exactly rows x cols. */
static rtr_status read_floats_shape(hid_t file, const char *name, float *out, int64_t rows, int64_t cols) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return rtr_fail(RTR_ERR_FORMAT, "missing dataset %s", name);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    rtr_status s = RTR_OK;
    if (rank != 2 || (int64_t)dims[0] != rows || (int64_t)dims[1] != cols)
        s = rtr_fail(RTR_ERR_FORMAT, "dataset %s: expected shape %lld x %lld", name, (long long)rows, (long long)cols);
    else if (rows && cols && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        s = rtr_fail(RTR_ERR_FORMAT, "cannot read dataset %s (truncated file?)", name);
    H5Sclose(sp);
    H5Dclose(d);
    return s;
}

/* Open a shard read-only and check its schema. */
static rtr_status shard_open(const char *path, hid_t *out, int64_t *n) {
    h5_quiet();
    if (!rtr_path_exists(path)) return rtr_fail(RTR_ERR_IO, "%s: no such file", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return rtr_fail(RTR_ERR_FORMAT, "%s: not a readable HDF5 file (truncated or corrupt)", path);
    char *schema = read_str_attr(f, "rtr_schema");
    int64_t version = -1, count = -1;
    rtr_status s = RTR_OK;
    if (!schema || strcmp(schema, SHARD_SCHEMA) != 0)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute rtr_schema: not an rtr shard", path);
    else if (!read_i64_attr(f, "rtr_schema_version", &version))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute rtr_schema_version missing", path);
    else if (version != RTR_SCHEMA_VERSION)
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: attribute rtr_schema_version: shard schema version %lld, this rtr reads %d",
                     path, (long long)version, RTR_SCHEMA_VERSION);
    else if (!read_i64_attr(f, "n_queries", &count) || count < 0)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute n_queries missing or negative", path);
    free(schema);
    if (s) { H5Fclose(f); return s; }
    *out = f;
    if (n) *n = count;
    return RTR_OK;
}

/* ------------------------------------------------------------ catalog I/O */

static rtr_status write_catalog(hid_t f, const rtr_catalog *cat) {
    char *json = rtr_catalog_to_json(cat);
    if (!json) return RTR_ERR_NOMEM;
    rtr_status s = write_str_attr(f, "catalog_json", json);
    free(json);
    /* The same catalog as plain datasets, for readers without a JSON parser. */
    const rtr_catalog_entry *groups[2] = {cat->models, cat->strategies};
    const int counts[2] = {cat->n_models, cat->n_strategies};
    const char *names[2] = {"models", "strategies"};
    for (int g = 0; g < 2 && !s; g++) {
        int n = counts[g];
        char **nm = rtr_malloc(sizeof(char *) * (size_t)n), **ds = rtr_malloc(sizeof(char *) * (size_t)n);
        double *pin = rtr_malloc(sizeof(double) * (size_t)n), *pout = rtr_malloc(sizeof(double) * (size_t)n);
        if (!nm || !ds || !pin || !pout) s = RTR_ERR_NOMEM;
        for (int i = 0; !s && i < n; i++) {
            nm[i] = groups[g][i].name;
            ds[i] = groups[g][i].description;
            pin[i] = groups[g][i].price_in;
            pout[i] = groups[g][i].price_out;
        }
        char path[64];
        snprintf(path, sizeof path, "/catalog/%s/name", names[g]);
        if (!s) s = write_strings(f, path, nm, n);
        snprintf(path, sizeof path, "/catalog/%s/description", names[g]);
        if (!s) s = write_strings(f, path, ds, n);
        snprintf(path, sizeof path, "/catalog/%s/price_in", names[g]);
        if (!s) s = write_numeric(f, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, pin, 1, n, 1, sizeof(double));
        snprintf(path, sizeof path, "/catalog/%s/price_out", names[g]);
        if (!s) s = write_numeric(f, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, pout, 1, n, 1, sizeof(double));
        free(nm); free(ds); free(pin); free(pout);
    }
    if (!s) s = write_numeric(f, "/catalog/pairs/model", H5T_STD_I32LE, H5T_NATIVE_INT32, cat->pair_model, 1,
                              cat->n_pairs, 1, sizeof(int32_t));
    if (!s) s = write_numeric(f, "/catalog/pairs/strategy", H5T_STD_I32LE, H5T_NATIVE_INT32, cat->pair_strategy, 1,
                              cat->n_pairs, 1, sizeof(int32_t));
    return s;
}

/* Close a file written under tmp; on success rename it over path, else
 * remove it. Frees tmp; returns the first failure. */
static rtr_status finish_tmp(hid_t f, rtr_status s, char *tmp, const char *path) {
    if (H5Fclose(f) < 0 && !s) s = rtr_fail(RTR_ERR_IO, "%s: close failed", tmp);
    if (s) {
        unlink(tmp);
        rtr_fail_prefix(s, "%s: ", path);
    } else {
        s = rtr_commit_file(tmp, path);
    }
    free(tmp);
    return s;
}

/* ------------------------------------------------------------ shard write */

rtr_status rtr_shard_write(const char *path, const rtr_catalog *cat, const rtr_shard *sh) {
    h5_quiet();
    if (sh->k != cat->n_pairs)
        return rtr_fail(RTR_ERR_INVALID, "%s: shard has %d pairs, catalog %d", path, sh->k, cat->n_pairs);
    char *tmp = rtr_tmp_path(path);
    if (!tmp) return RTR_ERR_NOMEM;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        rtr_status s = rtr_fail(RTR_ERR_IO, "%s: cannot create", tmp);
        free(tmp);
        return s;
    }
    rtr_status s = write_str_attr(f, "rtr_schema", SHARD_SCHEMA);
    if (!s) s = write_i64_attr(f, "rtr_schema_version", RTR_SCHEMA_VERSION);
    if (!s) s = write_i64_attr(f, "n_queries", sh->n);
    if (!s) s = write_i64_attr(f, "n_pairs", sh->k);
    if (!s) s = write_catalog(f, cat);
    if (!s) s = write_strings(f, "/queries/id", sh->id, sh->n);
    if (!s) s = write_strings(f, "/queries/text", sh->text, sh->n);
    if (!s) s = write_strings(f, "/queries/dataset", sh->dataset, sh->n);
    if (!s) s = write_strings(f, "/queries/split", sh->split, sh->n);
    const char *names[3] = {"/outcomes/correct", "/outcomes/tokens", "/outcomes/cost"};
    const float *mats[3] = {sh->correct, sh->tokens, sh->cost};
    for (int i = 0; i < 3 && !s; i++)
        s = write_numeric(f, names[i], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, mats[i], 2, sh->n, sh->k, sizeof(float));
    return finish_tmp(f, s, tmp, path);
}

/* ------------------------------------------------------------- shard read */

rtr_status rtr_shard_count(const char *path, int64_t *n) {
    hid_t f;
    rtr_status s = shard_open(path, &f, n);
    if (!s) H5Fclose(f);
    return s;
}

rtr_status rtr_shard_read(const char *path, rtr_shard *sh, rtr_catalog *cat) {
    hid_t f;
    int64_t n;
    memset(sh, 0, sizeof *sh);
    rtr_status s = shard_open(path, &f, &n);
    if (s) return s;
    rtr_catalog local = {0};
    char *json = read_str_attr(f, "catalog_json");
    if (!json) s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute catalog_json missing", path);
    else s = rtr_catalog_parse_json(&local, json, path);
    free(json);
    if (!s) s = rtr_shard_alloc(sh, n, local.n_pairs);
    if (!s) s = read_strings(f, "/queries/id", sh->id, n);
    if (!s) s = read_strings(f, "/queries/text", sh->text, n);
    if (!s) s = read_strings(f, "/queries/dataset", sh->dataset, n);
    if (!s) s = read_strings(f, "/queries/split", sh->split, n);
    if (!s) s = read_floats_shape(f, "/outcomes/correct", sh->correct, n, sh->k);
    if (!s) s = read_floats_shape(f, "/outcomes/tokens", sh->tokens, n, sh->k);
    if (!s) s = read_floats_shape(f, "/outcomes/cost", sh->cost, n, sh->k);
    H5Fclose(f);
    if (s) {
        rtr_catalog_free(&local); /* a no-op when parsing failed */
        rtr_shard_free(sh);
        return rtr_fail_prefix(s, "%s: ", path);
    }
    if (cat) *cat = local;
    else rtr_catalog_free(&local);
    return RTR_OK;
}

struct rtr_matrix_reader {
    hid_t file, dset, space;
    int64_t rows, cols;
    char *path, *name;
};

void rtr_matrix_reader_close(rtr_matrix_reader *r) {
    if (!r) return;
    if (r->space >= 0) H5Sclose(r->space);
    if (r->dset >= 0) H5Dclose(r->dset);
    if (r->file >= 0) H5Fclose(r->file);
    free(r->path);
    free(r->name);
    free(r);
}

rtr_status rtr_matrix_reader_open(rtr_matrix_reader **out, const char *path, const char *name, int64_t *rows,
                                  int64_t *cols) {
    *out = NULL;
    rtr_matrix_reader *r = rtr_calloc(1, sizeof *r);
    if (!r) return RTR_ERR_NOMEM;
    r->file = r->dset = r->space = -1;
    rtr_status s = shard_open(path, &r->file, NULL);
    if (s) r->file = -1;
    if (!s && !((r->path = rtr_strdup(path)) && (r->name = rtr_strdup(name)))) s = RTR_ERR_NOMEM;
    if (!s) {
        /* a storage chunk cut by two reads stays cached for the second */
        hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
        H5Pset_chunk_cache(dapl, H5D_CHUNK_CACHE_NSLOTS_DEFAULT, 16u << 20, H5D_CHUNK_CACHE_W0_DEFAULT);
        if (H5Lexists(r->file, name, H5P_DEFAULT) > 0) r->dset = H5Dopen2(r->file, name, dapl);
        H5Pclose(dapl);
        if (r->dset < 0) s = rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s is missing", path, name);
    }
    hsize_t dims[2] = {0, 0};
    if (!s) {
        r->space = H5Dget_space(r->dset);
        if (H5Sget_simple_extent_ndims(r->space) != 2) s = rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s is not a matrix", path, name);
        else H5Sget_simple_extent_dims(r->space, dims, NULL);
    }
    if (s) {
        rtr_matrix_reader_close(r);
        return s;
    }
    r->rows = (int64_t)dims[0];
    r->cols = (int64_t)dims[1];
    *rows = r->rows;
    *cols = r->cols;
    *out = r;
    return RTR_OK;
}

rtr_status rtr_matrix_reader_read(rtr_matrix_reader *r, int64_t row0, int64_t rows, float *out) {
    if (row0 < 0 || rows < 0 || row0 > r->rows - rows)
        return rtr_fail(RTR_ERR_INVALID, "%s: rows %lld to %lld of dataset %s: it has %lld", r->path, (long long)row0,
                        (long long)(row0 + rows - 1), r->name, (long long)r->rows);
    if (!rows || !r->cols) return RTR_OK;
    hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)rows, (hsize_t)r->cols};
    hid_t mem = H5Screate_simple(2, count, NULL);
    herr_t e = H5Sselect_hyperslab(r->space, H5S_SELECT_SET, start, NULL, count, NULL);
    if (e >= 0) e = H5Dread(r->dset, H5T_NATIVE_FLOAT, mem, r->space, H5P_DEFAULT, out);
    H5Sclose(mem);
    return e < 0 ? rtr_fail(RTR_ERR_FORMAT, "%s: cannot read rows %lld to %lld of dataset %s (truncated or corrupt file?)",
                            r->path, (long long)row0, (long long)(row0 + rows - 1), r->name)
                 : RTR_OK;
}

/* The whole matrix is one read of the chunked reader. */
rtr_status rtr_shard_read_matrix(const char *path, const char *name, float **data, int64_t *rows, int64_t *cols) {
    rtr_matrix_reader *r;
    int64_t nr, nc;
    rtr_status s = rtr_matrix_reader_open(&r, path, name, &nr, &nc);
    if (s) return s;
    float *buf = rtr_malloc((size_t)(nr * nc) * sizeof(float));
    s = buf ? rtr_matrix_reader_read(r, 0, nr, buf) : RTR_ERR_NOMEM;
    rtr_matrix_reader_close(r);
    if (s) {
        free(buf);
        return s;
    }
    *data = buf;
    *rows = nr;
    *cols = nc;
    return RTR_OK;
}

rtr_status rtr_shard_check(const char *path) {
    hid_t f;
    rtr_status s = shard_open(path, &f, NULL);
    if (s == RTR_OK) H5Fclose(f);
    return s;
}

bool rtr_shard_has(const char *path, const char *name) {
    hid_t f;
    if (shard_open(path, &f, NULL)) return false;
    bool yes = H5Lexists(f, name, H5P_DEFAULT) > 0;
    H5Fclose(f);
    return yes;
}

char *rtr_shard_read_attr(const char *path, const char *object, const char *key) {
    hid_t f;
    if (shard_open(path, &f, NULL)) return NULL;
    char *v = NULL;
    if (H5Lexists(f, object, H5P_DEFAULT) > 0 || !strcmp(object, "/")) {
        hid_t o = H5Oopen(f, object, H5P_DEFAULT);
        if (o >= 0) {
            v = read_str_attr(o, key);
            H5Oclose(o);
        }
    }
    H5Fclose(f);
    return v;
}

/* ------------------------------------------------- shard update (copy) */

static herr_t copy_attr(hid_t loc, const char *name, const H5A_info_t *info, void *dst_ptr) {
    (void)info;
    hid_t dst = *(hid_t *)dst_ptr;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    hid_t mt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
    hssize_t npts = H5Sget_simple_extent_npoints(sp);
    void *buf = malloc(H5Tget_size(mt) * (size_t)(npts > 0 ? npts : 1));
    herr_t e = buf ? H5Aread(a, mt, buf) : -1;
    if (e >= 0) {
        hid_t b = H5Acreate2(dst, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);
        e = b < 0 ? -1 : H5Awrite(b, mt, buf);
        if (b >= 0) H5Aclose(b);
        if (H5Tis_variable_str(mt) > 0 || H5Tdetect_class(mt, H5T_VLEN) > 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
    }
    free(buf);
    H5Tclose(mt);
    H5Tclose(ft);
    H5Sclose(sp);
    H5Aclose(a);
    return e < 0 ? -1 : 0;
}

typedef struct {
    hid_t dst;
    const char *prefix; /* "/" or "/group/" */
    const rtr_matrix_out *m;
    int count;
    bool failed;
} copy_ctx;

static bool is_replaced(const copy_ctx *c, const char *path) {
    for (int i = 0; i < c->count; i++)
        if (!strcmp(c->m[i].name, path)) return true;
    return false;
}

/* Is `path` a group that holds one of the replaced datasets? */
static bool holds_replaced(const copy_ctx *c, const char *path) {
    size_t n = strlen(path);
    for (int i = 0; i < c->count; i++)
        if (!strncmp(c->m[i].name, path, n) && c->m[i].name[n] == '/') return true;
    return false;
}

static herr_t copy_link(hid_t src_group, const char *name, const H5L_info_t *info, void *ctx_ptr) {
    (void)info;
    copy_ctx *c = ctx_ptr;
    char path[512];
    snprintf(path, sizeof path, "%s%s", c->prefix, name);
    if (is_replaced(c, path)) return 0;
    if (!holds_replaced(c, path)) {
        if (H5Ocopy(src_group, name, c->dst, path, H5P_DEFAULT, H5P_DEFAULT) < 0) c->failed = true;
        return c->failed ? -1 : 0;
    }
    /* A group with a replaced member: recreate it, copy its attributes and
     * the members that stay. */
    hid_t sg = H5Gopen2(src_group, name, H5P_DEFAULT);
    hid_t dg = H5Gcreate2(c->dst, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (sg < 0 || dg < 0 || H5Aiterate2(sg, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, copy_attr, &dg) < 0) c->failed = true;
    char prefix[520];
    snprintf(prefix, sizeof prefix, "%s/", path);
    copy_ctx sub = *c;
    sub.prefix = prefix;
    if (!c->failed && H5Literate(sg, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, copy_link, &sub) < 0) c->failed = true;
    c->failed |= sub.failed;
    if (sg >= 0) H5Gclose(sg);
    if (dg >= 0) H5Gclose(dg);
    return c->failed ? -1 : 0;
}

rtr_status rtr_shard_put_matrices(const char *path, const rtr_matrix_out *m, int count) {
    hid_t src;
    rtr_status s = shard_open(path, &src, NULL);
    if (s) return s;
    for (int i = 0; i < count; i++)
        if (m[i].name[0] != '/' || strlen(m[i].name) >= 256) {
            H5Fclose(src);
            return rtr_fail(RTR_ERR_INVALID, "%s: dataset name %s must be an absolute path", path, m[i].name);
        }
    char *tmp = rtr_tmp_path(path);
    hid_t dst = tmp ? H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (dst < 0) {
        H5Fclose(src);
        s = tmp ? rtr_fail(RTR_ERR_IO, "%s: cannot create", tmp) : RTR_ERR_NOMEM;
        free(tmp);
        return s;
    }
    copy_ctx ctx = {dst, "/", m, count, false};
    if (H5Aiterate2(src, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, copy_attr, &dst) < 0 ||
        H5Literate(src, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, copy_link, &ctx) < 0 || ctx.failed)
        s = rtr_fail(RTR_ERR_IO, "%s: copying the shard failed", path);
    for (int i = 0; i < count && !s; i++) {
        s = write_numeric(dst, m[i].name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, m[i].data, 2, m[i].rows, m[i].cols,
                          sizeof(float));
        hid_t d = s ? -1 : H5Dopen2(dst, m[i].name, H5P_DEFAULT);
        for (int a = 0; a < m[i].n_attrs && !s; a++) s = write_str_attr(d, m[i].attr_keys[a], m[i].attr_vals[a]);
        if (d >= 0) H5Dclose(d);
    }
    H5Fclose(src);
    return finish_tmp(dst, s, tmp, path);
}

/* ----------------------------------------------------------------- corpus */

struct rtr_corpus {
    char *dir;
    rtr_catalog cat;
    int n_shards;
    char **paths;
    int64_t *counts;
    int64_t n_queries;
};

static char *manifest_path(const char *dir) { return rtr_sprintf("%s/manifest.json", dir); }

bool rtr_corpus_exists(const char *dir) {
    char *p = manifest_path(dir);
    bool yes = p && rtr_path_exists(p);
    free(p);
    return yes;
}

rtr_status rtr_manifest_write(const char *dir, const rtr_catalog *cat, int n_shards, const char *const *files,
                              const int64_t *counts, int64_t shard_size) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", CORPUS_SCHEMA);
    cJSON_AddNumberToObject(root, "version", RTR_SCHEMA_VERSION);
    int64_t total = 0;
    for (int i = 0; i < n_shards; i++) total += counts[i];
    cJSON_AddNumberToObject(root, "n_queries", (double)total);
    cJSON_AddNumberToObject(root, "shard_size", (double)shard_size);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)rtr_catalog_hash(cat));
    cJSON_AddStringToObject(root, "catalog_hash", hash);
    char *cj = rtr_catalog_to_json(cat);
    cJSON_AddItemToObject(root, "catalog", cj ? cJSON_Parse(cj) : cJSON_CreateNull());
    free(cj);
    cJSON *arr = cJSON_AddArrayToObject(root, "shards");
    for (int i = 0; i < n_shards; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", files[i]);
        cJSON_AddNumberToObject(o, "n_queries", (double)counts[i]);
        cJSON_AddItemToArray(arr, o);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char *path = manifest_path(dir);
    rtr_status s = text && path ? rtr_write_file_atomic(path, text, strlen(text)) : RTR_ERR_NOMEM;
    free(text);
    free(path);
    return s;
}

void rtr_corpus_close(rtr_corpus *c) {
    if (!c) return;
    for (int i = 0; i < c->n_shards; i++) free(c->paths[i]);
    free(c->paths);
    free(c->counts);
    rtr_catalog_free(&c->cat);
    free(c->dir);
    free(c);
}

rtr_status rtr_corpus_open(rtr_corpus **out, const char *dir) {
    *out = NULL;
    char *mpath = manifest_path(dir), *text = NULL;
    if (!mpath) return RTR_ERR_NOMEM;
    if (!rtr_path_exists(mpath)) {
        rtr_status s = rtr_fail(RTR_ERR_IO, "%s: not a corpus (no manifest.json)", dir);
        free(mpath);
        return s;
    }
    rtr_status s = rtr_read_file(mpath, &text, NULL);
    if (s) { free(mpath); return s; }
    cJSON *root = cJSON_Parse(text);
    free(text);
    rtr_corpus *c = rtr_calloc(1, sizeof *c);
    if (!c) { cJSON_Delete(root); free(mpath); return RTR_ERR_NOMEM; }
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *catalog = cJSON_GetObjectItemCaseSensitive(root, "catalog");
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive(root, "shards");
    if (!root) s = rtr_fail(RTR_ERR_FORMAT, "%s: not valid JSON", mpath);
    else if (!cJSON_IsString(schema) || strcmp(schema->valuestring, CORPUS_SCHEMA))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: field schema: expected \"%s\"", mpath, CORPUS_SCHEMA);
    else if (!cJSON_IsNumber(version) || version->valueint != RTR_SCHEMA_VERSION)
        s = rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field version: corpus schema version %g, this rtr reads %d", mpath,
                     cJSON_IsNumber(version) ? version->valuedouble : -1.0, RTR_SCHEMA_VERSION);
    else if (!cJSON_IsObject(catalog) || !cJSON_IsArray(shards))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: fields catalog and shards are required", mpath);
    if (!s) {
        char *cj = cJSON_PrintUnformatted(catalog);
        s = cj ? rtr_catalog_parse_json(&c->cat, cj, mpath) : RTR_ERR_NOMEM;
        free(cj);
    }
    int n = s ? 0 : cJSON_GetArraySize(shards);
    if (!s) {
        c->dir = rtr_strdup(dir);
        c->paths = rtr_calloc((size_t)n, sizeof(char *));
        c->counts = rtr_calloc((size_t)n, sizeof(int64_t));
        if (!c->dir || !c->paths || !c->counts) s = RTR_ERR_NOMEM;
    }
    for (int i = 0; i < n && !s; i++) {
        const cJSON *it = cJSON_GetArrayItem(shards, i);
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(it, "file");
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(it, "n_queries");
        if (!cJSON_IsString(file) || strchr(file->valuestring, '/') || !cJSON_IsNumber(cnt) || cnt->valuedouble < 0) {
            s = rtr_fail(RTR_ERR_FORMAT, "%s: shards[%d]: needs a plain file name and n_queries", mpath, i);
            break;
        }
        c->paths[i] = rtr_sprintf("%s/%s", dir, file->valuestring);
        c->counts[i] = (int64_t)cnt->valuedouble;
        c->n_queries += c->counts[i];
        c->n_shards = i + 1;
        if (!c->paths[i]) s = RTR_ERR_NOMEM;
    }
    cJSON_Delete(root);
    free(mpath);
    if (s) { rtr_corpus_close(c); return s; }
    *out = c;
    return RTR_OK;
}

const rtr_catalog *rtr_corpus_catalog(const rtr_corpus *c) { return &c->cat; }
int rtr_corpus_n_shards(const rtr_corpus *c) { return c->n_shards; }
int64_t rtr_corpus_n_queries(const rtr_corpus *c) { return c->n_queries; }
int64_t rtr_corpus_shard_queries(const rtr_corpus *c, int i) { return c->counts[i]; }
const char *rtr_corpus_shard_path(const rtr_corpus *c, int i) { return c->paths[i]; }
const char *rtr_corpus_dir(const rtr_corpus *c) { return c->dir; }
