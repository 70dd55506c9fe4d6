/* `rtr upgrade`: a corpus of schema version 1 (docs/FORMAT.md, "Version
 * 1") into version 2. Version 1 kept embeddings and the one routing table
 * inside the shards and stored strings as HDF5 variable-length strings;
 * this file is the only place that reads that layout. The new corpus is
 * built in a temporary directory and renamed into place; the old one is
 * only read. */
#include "common/json.h"
#include "common/util.h"
#include "store/store_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define UPGRADE_ROWS 16384

/* A string attribute of object obj in a version 1 file (fixed or variable
 * length); NULL when absent or not a string (version 1 wrote some of them
 * only on some files). */
static char *v1_attr(hid_t f, const char *obj, const char *key) {
    char *out = NULL;
    if (!h5_exists(f, obj) && strcmp(obj, "/")) return NULL;
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    if (o >= 0 && H5Aexists(o, key) > 0 && h5_get_str_v1(o, obj, key, &out)) out = NULL;
    if (o >= 0) H5Oclose(o);
    H5Eclear2(H5E_DEFAULT);
    return out;
}

/* Rows [row0, row0 + m) of a version 1 string dataset of rows rows, copied into out. */
static rtr_status v1_strings(hid_t f, const char *path, const char *name, int64_t rows, int64_t row0, int64_t m,
                             char **out) {
    hid_t d;
    rtr_status s = h5_string_dataset(f, path, name, rows, &d);
    if (s) return s;
    hid_t t = H5Tcopy(H5T_C_S1), fs = H5Dget_space(d), ft = H5Dget_type(d);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5Tget_cset(ft));
    H5Tclose(ft);
    hsize_t start[1] = {(hsize_t)row0}, count[1] = {(hsize_t)m};
    hid_t ms = H5Screate_simple(1, count, NULL);
    char **tmp = rtr_calloc((size_t)m, sizeof *tmp);
    if (!tmp) s = RTR_ERR_NOMEM;
    if (!s && (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
               H5Dread(d, t, ms, fs, H5P_DEFAULT, tmp) < 0))
        s = h5_fail(RTR_ERR_FORMAT, "%s: cannot read rows %lld.. of dataset %s", path, (long long)row0, name);
    for (int64_t i = 0; !s && i < m; i++)
        if (!(out[i] = rtr_strdup(tmp[i] ? tmp[i] : ""))) s = RTR_ERR_NOMEM;
    if (tmp && !s) H5Dvlen_reclaim(t, ms, H5P_DEFAULT, tmp);
    free(tmp);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(t);
    H5Dclose(d);
    return s;
}

/* Rows [row0, row0 + m) of a version 1 float matrix with cols columns. */
static rtr_status v1_floats(hid_t f, const char *path, const char *name, int64_t rows, int64_t cols, int64_t row0,
                            int64_t m, float *out) {
    hid_t d;
    rtr_status s = h5_dataset(f, path, name, H5_F32, rows, cols, &d, NULL);
    if (s) return s;
    s = h5_read_rows(d, H5_F32, row0, m, cols, out, path, name);
    H5Dclose(d);
    return s;
}

/* The columns of one version 1 matrix dataset (-1 when absent). */
static int64_t v1_cols(hid_t f, const char *name) {
    if (!h5_exists(f, name)) return -1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), sp = d < 0 ? -1 : H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return (int64_t)dims[1];
}

/* The version 1 shards' rows into version 2 shard files under dir. */
static rtr_status upgrade_shard(const char *dir, const char *in_path, const char *file, int64_t n,
                                const rtr_catalog *cat, uint64_t *hash) {
    hid_t f;
    rtr_status s = h5_open(in_path, &f);
    if (s) return s;
    int64_t v = 0, rows = -1;
    if (h5_get_i64(f, in_path, "rtr_schema_version", &v) || v != 1)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: not a schema version 1 shard", in_path);
    if (!s && (h5_get_i64(f, in_path, "n_queries", &rows) || rows != n))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: n_queries %lld, the manifest says %lld", in_path, (long long)rows, (long long)n);
    char *out = rtr_sprintf("%s/%s", dir, file);
    rtr_shard_writer *w = NULL;
    if (!s) s = out ? rtr_shard_writer_open(&w, out, cat) : RTR_ERR_NOMEM;
    static const char *const str_names[4] = {"/queries/id", "/queries/text", "/queries/dataset", "/queries/split"};
    for (int64_t r0 = 0; r0 < n && !s; r0 += UPGRADE_ROWS) {
        int64_t m = n - r0 < UPGRADE_ROWS ? n - r0 : UPGRADE_ROWS;
        rtr_shard b;
        s = rtr_shard_alloc(&b, m, cat->n_pairs);
        char **cols[4] = {b.id, b.text, b.dataset, b.split};
        for (int c = 0; c < 4 && !s; c++) s = v1_strings(f, in_path, str_names[c], n, r0, m, cols[c]);
        float *mats[3] = {b.correct, b.tokens, b.cost};
        for (int c = 0; c < 3 && !s; c++) s = v1_floats(f, in_path, STORE_OUTCOMES[c], n, cat->n_pairs, r0, m, mats[c]);
        if (!s) s = rtr_shard_writer_append(w, &b);
        rtr_shard_free(&b);
    }
    h5_close(f, in_path);
    free(out);
    if (s) {
        rtr_shard_writer_abort(w);
        return s;
    }
    return rtr_shard_writer_commit(w, NULL, hash);
}

/* An encoder name usable as a folder: other characters become '_'. */
static char *folder_name(const char *encoder) {
    char *s = rtr_strdup(encoder && *encoder && *encoder != '.' ? encoder : "v1");
    for (char *p = s; p && *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p)) *p = '_';
    if (s && strlen(s) > 128) s[128] = '\0';
    return s;
}

/* Copy a version 1 matrix of shard i (n x cols) into an output writer's column col. */
static rtr_status copy_rows(hid_t f, const char *path, const char *const *names, int nm, int64_t n, int64_t cols,
                            rtr_output_writer *w) {
    float *buf[3] = {NULL, NULL, NULL};
    rtr_status s = RTR_OK;
    for (int m = 0; m < nm && !s; m++)
        if (!(buf[m] = rtr_malloc(sizeof(float) * (size_t)UPGRADE_ROWS * (size_t)cols))) s = RTR_ERR_NOMEM;
    for (int64_t r0 = 0; r0 < n && !s; r0 += UPGRADE_ROWS) {
        int64_t m = n - r0 < UPGRADE_ROWS ? n - r0 : UPGRADE_ROWS;
        for (int c = 0; c < nm && !s; c++) s = v1_floats(f, path, names[c], n, cols, r0, m, buf[c]);
        if (!s) s = rtr_output_writer_append(w, m, (const float *const *)buf);
    }
    for (int m = 0; m < 3; m++) free(buf[m]);
    return s;
}

/* The embeddings and routing table of version 1 shard i into c's outputs. */
static rtr_status upgrade_outputs(const rtr_corpus *c, int i, const char *in_path) {
    hid_t f;
    rtr_status s = h5_open(in_path, &f);
    if (s) return s;
    int64_t n = c->counts[i], dim = v1_cols(f, DS_EMB), k = c->cat.n_pairs;
    char *enc = v1_attr(f, DS_EMB, "encoder"), *ench = v1_attr(f, DS_EMB, "encoder_hash");
    char *name = folder_name(enc);
    if (!name) s = RTR_ERR_NOMEM;
    if (!s && dim > 0) {
        rtr_output_writer *w;
        const char *names[1] = {DS_EMB};
        s = rtr_embedding_writer_open(&w, c, i, name, ench ? ench : "", (int32_t)dim);
        if (!s) s = copy_rows(f, in_path, names, 1, n, dim, w);
        if (!s) s = rtr_output_writer_commit(w);
        else rtr_output_writer_abort(w);
        /* version 1 repeated the description embeddings in every shard: the first one's serve */
        if (!s && i == 0 && v1_cols(f, DS_MODEL_DESC) == dim && v1_cols(f, DS_STRATEGY_DESC) == dim) {
            float *dm = rtr_malloc(sizeof(float) * (size_t)c->cat.n_models * (size_t)dim);
            float *ds = rtr_malloc(sizeof(float) * (size_t)c->cat.n_strategies * (size_t)dim);
            s = dm && ds ? RTR_OK : RTR_ERR_NOMEM;
            if (!s) s = v1_floats(f, in_path, DS_MODEL_DESC, c->cat.n_models, dim, 0, c->cat.n_models, dm);
            if (!s) s = v1_floats(f, in_path, DS_STRATEGY_DESC, c->cat.n_strategies, dim, 0, c->cat.n_strategies, ds);
            if (!s) s = rtr_descriptions_write(c, name, ench ? ench : "", (int32_t)dim, dm, ds);
            free(dm);
            free(ds);
        }
    }
    if (!s && v1_cols(f, DS_P_CORRECT) == k && v1_cols(f, DS_P_TOKENS) == k) {
        char *ck = v1_attr(f, DS_P_CORRECT, "checkpoint_hash");
        if (!ck) ck = v1_attr(f, "/routing", "checkpoint_hash");
        bool cost = v1_cols(f, DS_P_COST) == k;
        rtr_table_meta meta = {"v1", "", ck ? ck : "", dim > 0 ? name : "", ench ? ench : "", cost};
        rtr_output_writer *w;
        const char *names[3] = {DS_P_CORRECT, DS_P_TOKENS, DS_P_COST};
        s = rtr_table_writer_open(&w, c, i, &meta);
        if (!s) s = copy_rows(f, in_path, names, cost ? 3 : 2, n, k, w);
        if (!s) s = rtr_output_writer_commit(w);
        else rtr_output_writer_abort(w);
        free(ck);
    }
    h5_close(f, in_path);
    free(enc), free(ench), free(name);
    return s;
}

rtr_status rtr_corpus_upgrade(const char *out_dir, const char *in_dir) {
    h5_init();
    char *mpath = rtr_sprintf("%s/manifest.json", in_dir), *text = NULL;
    if (!mpath) return RTR_ERR_NOMEM;
    rtr_status s = rtr_read_file(mpath, &text, NULL);
    const char *why = "";
    cJSON *root = s ? NULL : rtr_json_parse(text, &why, NULL);
    free(text);
    if (!s && !root) s = rtr_fail(RTR_ERR_FORMAT, "%s: not valid JSON%s", mpath, why);
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *catalog = cJSON_GetObjectItemCaseSensitive(root, "catalog");
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive(root, "shards");
    const cJSON *ss = cJSON_GetObjectItemCaseSensitive(root, "shard_size");
    if (!s && !cJSON_IsObject(root)) s = rtr_fail(RTR_ERR_FORMAT, "%s: not a JSON object", mpath);
    if (!s && (!cJSON_IsNumber(version) || version->valuedouble != 1))
        s = rtr_fail(RTR_ERR_INVALID, "%s: field version: only schema version 1 corpora need upgrading", mpath);
    int64_t shard_size = 0; /* a whole number: casting 1e300 to an integer is undefined */
    if (!s && (!cJSON_IsObject(catalog) || !cJSON_IsArray(shards) || !cJSON_GetArraySize(shards) ||
               !rtr_json_integer(ss, &shard_size) || shard_size < 1))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: fields catalog, shards and shard_size (a whole number >= 1) are required", mpath);
    rtr_catalog cat = {0};
    if (!s) {
        char *cj = cJSON_PrintUnformatted(catalog);
        s = cj ? rtr_catalog_parse_json(&cat, cj, mpath) : RTR_ERR_NOMEM;
        free(cj);
    }
    if (!s && rtr_path_exists(out_dir)) s = rtr_fail(RTR_ERR_EXISTS, "%s: already exists", out_dir);
    char *tmp = s ? NULL : rtr_tmp_path(out_dir);
    if (!s && (!tmp || mkdir(tmp, 0755) != 0))
        s = tmp ? rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno)) : RTR_ERR_NOMEM;
    int n = s ? 0 : cJSON_GetArraySize(shards);
    char **files = rtr_calloc((size_t)(n ? n : 1), sizeof *files), **paths = rtr_calloc((size_t)(n ? n : 1), sizeof *paths);
    int64_t *counts = rtr_calloc((size_t)(n ? n : 1), sizeof *counts);
    uint64_t *hashes = rtr_calloc((size_t)(n ? n : 1), sizeof *hashes);
    if (!s && (!files || !paths || !counts || !hashes)) s = RTR_ERR_NOMEM;
    for (int i = 0; i < n && !s; i++) {
        const cJSON *it = cJSON_GetArrayItem(shards, i);
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(it, "file"), *cnt = cJSON_GetObjectItemCaseSensitive(it, "n_queries");
        int64_t count;
        if (!cJSON_IsString(file) || strchr(file->valuestring, '/') || !rtr_json_integer(cnt, &count) || count < 1) {
            s = rtr_fail(RTR_ERR_FORMAT, "%s: shards[%d]: needs a plain file name and n_queries (a whole number >= 1)", mpath, i);
            break;
        }
        files[i] = rtr_strdup(file->valuestring);
        paths[i] = rtr_sprintf("%s/%s", in_dir, file->valuestring);
        counts[i] = count;
        s = files[i] && paths[i] ? upgrade_shard(tmp, paths[i], files[i], counts[i], &cat, &hashes[i]) : RTR_ERR_NOMEM;
    }
    if (!s) s = rtr_manifest_write(tmp, &cat, n, (const char *const *)files, counts, hashes, shard_size);
    rtr_corpus *c = NULL;
    if (!s) s = rtr_corpus_open(&c, tmp);
    for (int i = 0; i < n && !s; i++) s = upgrade_outputs(c, i, paths[i]);
    rtr_corpus_close(c);
    if (!s && rename(tmp, out_dir) != 0)
        s = rtr_fail(RTR_ERR_IO, "%s: cannot rename into place: %s", out_dir, strerror(errno));
    if (s && tmp) rtr_remove_tree(tmp);
    for (int i = 0; files && paths && i < n; i++) {
        free(files[i]);
        free(paths[i]);
    }
    free(files), free(paths), free(counts), free(hashes);
    free(tmp);
    free(mpath);
    rtr_catalog_free(&cat);
    cJSON_Delete(root);
    return s;
}
