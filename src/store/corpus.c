/* The corpus directory (docs/FORMAT.md): the manifest and its validation
 * against every shard on open; the stage outputs beside the shards
 * (embeddings/ENCODER/, tables/NAME/), found, checked for completeness and
 * staleness, and written through temporary names. */
#include "common/json.h"
#include "common/util.h"
#include "store/store_int.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* -------------------------------------------------------------- manifest */

static char *manifest_path(const char *dir) { return rtr_sprintf("%s/manifest.json", dir); }

bool rtr_corpus_exists(const char *dir) {
    char *p = manifest_path(dir);
    bool yes = p && rtr_path_exists(p);
    free(p);
    return yes;
}

rtr_status rtr_manifest_write(const char *dir, const rtr_catalog *cat, int n_shards, const char *const *files,
                              const int64_t *counts, const uint64_t *hashes, int64_t shard_size) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", CORPUS_SCHEMA);
    cJSON_AddNumberToObject(root, "version", RTR_SCHEMA_VERSION);
    int64_t total = 0;
    for (int i = 0; i < n_shards; i++) total += counts[i];
    cJSON_AddNumberToObject(root, "n_queries", (double)total);
    cJSON_AddNumberToObject(root, "shard_size", (double)shard_size);
    char hex[17];
    store_hex(rtr_catalog_hash(cat), hex);
    cJSON_AddStringToObject(root, "catalog_hash", hex);
    char *cj = rtr_catalog_to_json(cat);
    cJSON_AddItemToObject(root, "catalog", cj ? cJSON_Parse(cj) : cJSON_CreateNull());
    free(cj);
    cJSON *arr = cJSON_AddArrayToObject(root, "shards");
    for (int i = 0; i < n_shards; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", files[i]);
        cJSON_AddNumberToObject(o, "n_queries", (double)counts[i]);
        store_hex(hashes[i], hex);
        cJSON_AddStringToObject(o, "hash", hex);
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

/* The complete encodings of a corpus handle already scanned, each with
 * the stamp of its folder then. score opens a row reader per shard, and
 * each resolved the encoding again, opening every shard's embeddings file:
 * O(shards^2) HDF5 opens (docs/robustness.md, session 9). A folder whose
 * stamp changed since (a file written, renamed or removed in it, by this
 * process or another) is scanned again; an incomplete or unusable set is
 * never kept. A file edited in place leaves the stamp as it was: the cache
 * lives as long as the handle (one command), and each shard's file is
 * checked again against its shard when a reader opens it. */
typedef struct {
    dev_t dev;
    ino_t ino;
    struct timespec mtime, ctime;
} folder_stamp;

struct store_scans {
    struct store_scan {
        folder_stamp stamp;
        rtr_output_info info;
    } *e;
    int n;
};

static void scans_free(struct store_scans *sc) {
    for (int i = 0; sc && i < sc->n; i++) rtr_output_info_free(&sc->e[i].info, 1);
    if (sc) free(sc->e);
    free(sc);
}

void rtr_corpus_close(rtr_corpus *c) {
    if (!c) return;
    for (int i = 0; i < c->n_shards; i++) {
        free(c->paths[i]);
        free(c->files[i]);
        free(c->hashes[i]);
    }
    free(c->paths);
    free(c->files);
    free(c->hashes);
    free(c->counts);
    scans_free(c->scans);
    rtr_catalog_free(&c->cat);
    free(c->dir);
    free(c);
}

/* A shard entry's file: a plain name in the corpus directory. */
static bool plain_name(const char *s) {
    return *s && *s != '.' && !strchr(s, '/') && strlen(s) < 256;
}

static bool hex16(const char *s) { return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16; }

/* The manifest's fields into c (shards not opened yet). */
static rtr_status manifest_parse(rtr_corpus *c, const cJSON *root, const char *mpath) {
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *catalog = cJSON_GetObjectItemCaseSensitive(root, "catalog");
    const cJSON *chash = cJSON_GetObjectItemCaseSensitive(root, "catalog_hash");
    const cJSON *nq = cJSON_GetObjectItemCaseSensitive(root, "n_queries");
    const cJSON *ss = cJSON_GetObjectItemCaseSensitive(root, "shard_size");
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive(root, "shards");
    int64_t v = 0, total = 0;
    const char *dup = rtr_json_duplicate_key(root);
    if (dup) return rtr_fail(RTR_ERR_FORMAT, "%s: field %s appears twice", mpath, dup);
    if (!cJSON_IsString(schema) || strcmp(schema->valuestring, CORPUS_SCHEMA))
        return rtr_fail(RTR_ERR_FORMAT, "%s: field schema: expected \"%s\"", mpath, CORPUS_SCHEMA);
    if (!rtr_json_integer(version, &v))
        return rtr_fail(RTR_ERR_FORMAT, "%s: field version: must be an integer", mpath);
    if (v == 1)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field version: corpus schema version 1, this rtr reads %d: convert it "
                        "with `rtr upgrade %s --out NEW_DIR`", mpath, RTR_SCHEMA_VERSION, c->dir);
    if (v != RTR_SCHEMA_VERSION)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "%s: field version: corpus schema version %lld, this rtr reads %d", mpath,
                        (long long)v, RTR_SCHEMA_VERSION);
    if (!cJSON_IsObject(catalog)) return rtr_fail(RTR_ERR_FORMAT, "%s: field catalog: must be an object", mpath);
    char *cj = cJSON_PrintUnformatted(catalog), *origin = rtr_sprintf("%s: field catalog", mpath);
    rtr_status s = cj && origin ? rtr_catalog_parse_json(&c->cat, cj, origin) : RTR_ERR_NOMEM;
    free(cj);
    free(origin);
    if (s) return s;
    store_hex(rtr_catalog_hash(&c->cat), c->catalog_hash);
    if (!cJSON_IsString(chash) || strcmp(chash->valuestring, c->catalog_hash))
        return rtr_fail(RTR_ERR_FORMAT, "%s: field catalog_hash: %s, but the catalog hashes to %s", mpath,
                        cJSON_IsString(chash) ? chash->valuestring : "(missing)", c->catalog_hash);
    if (!rtr_json_integer(ss, &c->shard_size) || c->shard_size < 1)
        return rtr_fail(RTR_ERR_FORMAT, "%s: field shard_size: must be an integer >= 1", mpath);
    int n = cJSON_IsArray(shards) ? cJSON_GetArraySize(shards) : 0;
    if (n < 1) return rtr_fail(RTR_ERR_FORMAT, "%s: field shards: must be a non-empty array", mpath);
    c->paths = rtr_calloc((size_t)n, sizeof(char *));
    c->files = rtr_calloc((size_t)n, sizeof(char *));
    c->hashes = rtr_calloc((size_t)n, sizeof(char *));
    c->counts = rtr_calloc((size_t)n, sizeof(int64_t));
    if (!c->paths || !c->files || !c->hashes || !c->counts) return RTR_ERR_NOMEM;
    int i = 0;
    for (const cJSON *it = shards->child; it; it = it->next, i++) {
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(it, "file");
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(it, "n_queries");
        const cJSON *hash = cJSON_GetObjectItemCaseSensitive(it, "hash");
        if (!cJSON_IsObject(it) || rtr_json_duplicate_key(it) || !cJSON_IsString(file) || !plain_name(file->valuestring))
            return rtr_fail(RTR_ERR_FORMAT, "%s: shards[%d].file: needs a plain file name", mpath, i);
        if (!rtr_json_integer(cnt, &c->counts[i]) || c->counts[i] < 1 || c->counts[i] > c->shard_size)
            return rtr_fail(RTR_ERR_FORMAT, "%s: shards[%d].n_queries: must be an integer in 1..shard_size", mpath, i);
        if (!cJSON_IsString(hash) || !hex16(hash->valuestring))
            return rtr_fail(RTR_ERR_FORMAT, "%s: shards[%d].hash: must be 16 hex digits", mpath, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(c->files[j], file->valuestring))
                return rtr_fail(RTR_ERR_FORMAT, "%s: shards[%d].file: %s is listed twice", mpath, i, file->valuestring);
        c->files[i] = rtr_strdup(file->valuestring);
        c->hashes[i] = rtr_strdup(hash->valuestring);
        c->paths[i] = rtr_sprintf("%s/%s", c->dir, file->valuestring);
        c->n_shards = i + 1;
        if (!c->files[i] || !c->hashes[i] || !c->paths[i]) return RTR_ERR_NOMEM;
        total += c->counts[i];
    }
    if (!rtr_json_integer(nq, &c->n_queries) || c->n_queries != total)
        return rtr_fail(RTR_ERR_FORMAT, "%s: field n_queries: must equal the shards' sum, %lld", mpath, (long long)total);
    return RTR_OK;
}

rtr_status rtr_corpus_open(rtr_corpus **out, const char *dir) {
    *out = NULL;
    h5_init();
    char *mpath = manifest_path(dir), *text = NULL;
    rtr_corpus *c = rtr_calloc(1, sizeof *c);
    if (!mpath || !c || !(c->dir = rtr_strdup(dir)) || !(c->scans = rtr_calloc(1, sizeof *c->scans))) {
        free(mpath);
        rtr_corpus_close(c);
        return RTR_ERR_NOMEM;
    }
    rtr_status s = RTR_OK;
    if (!rtr_is_dir(dir))
        s = rtr_fail(RTR_ERR_IO, "%s: not a corpus (%s)", dir,
                     rtr_path_exists(dir) ? "a file, not a corpus folder" : "no such directory");
    else if (!rtr_path_exists(mpath) || rtr_is_dir(mpath)) s = rtr_fail(RTR_ERR_IO, "%s: not a corpus (no manifest.json)", dir);
    if (!s) s = rtr_read_file(mpath, &text, NULL);
    const char *why = "";
    cJSON *root = s ? NULL : rtr_json_parse(text, &why, NULL);
    if (!s && !cJSON_IsObject(root)) s = rtr_fail(RTR_ERR_FORMAT, "%s: not a JSON object%s", mpath, why);
    if (!s) s = manifest_parse(c, root, mpath);
    cJSON_Delete(root);
    free(text);
    /* every shard's header against the manifest: nothing downstream trusts a count it did not check */
    for (int i = 0; i < c->n_shards && !s; i++) {
        hid_t f;
        s = h5_open(c->paths[i], &f);
        if (!s) {
            s = store_shard_check(f, c->paths[i], c->counts[i], c->cat.n_pairs, c->catalog_hash, c->hashes[i]);
            h5_close(f, c->paths[i]);
        }
    }
    free(mpath);
    if (s) {
        rtr_corpus_close(c);
        return s;
    }
    *out = c;
    return RTR_OK;
}

const rtr_catalog *rtr_corpus_catalog(const rtr_corpus *c) { return &c->cat; }
int rtr_corpus_n_shards(const rtr_corpus *c) { return c->n_shards; }
int64_t rtr_corpus_n_queries(const rtr_corpus *c) { return c->n_queries; }
int64_t rtr_corpus_shard_queries(const rtr_corpus *c, int i) { return c->counts[i]; }
const char *rtr_corpus_shard_path(const rtr_corpus *c, int i) { return c->paths[i]; }
const char *rtr_corpus_shard_file(const rtr_corpus *c, int i) { return c->files[i]; }
const char *rtr_corpus_shard_hash(const rtr_corpus *c, int i) { return c->hashes[i]; }
const char *rtr_corpus_dir(const rtr_corpus *c) { return c->dir; }

/* ---------------------------------------------------------- stage outputs */

bool rtr_output_name_valid(const char *name) {
    size_t n = strlen(name);
    return n >= 1 && n <= 128 && name[0] != '.' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

char *store_output_path(const rtr_corpus *c, const char *kind, const char *name, const char *file) {
    return file ? rtr_sprintf("%s/%s/%s/%s", c->dir, kind, name, file) : rtr_sprintf("%s/%s/%s", c->dir, kind, name);
}

void rtr_output_info_free(rtr_output_info *info, int n) {
    for (int i = 0; info && i < n; i++) {
        rtr_output_info *o = &info[i];
        free(o->name), free(o->encoder), free(o->encoder_hash), free(o->checkpoint), free(o->checkpoint_hash);
        free(o->problem);
        memset(o, 0, sizeof *o);
    }
}

/* Record the first problem only: it is what the user must fix first. */
static void set_problem(rtr_output_info *o, char *msg) {
    if (!o->problem) o->problem = msg;
    else free(msg);
}

/* One attribute that must agree across a set's files: the first file sets
 * it, a later one that differs makes the set mixed. */
static void agree(rtr_output_info *o, char **have, char *got, const char *what, const char *path) {
    if (!*have) {
        *have = got;
        return;
    }
    if (strcmp(*have, got))
        set_problem(o, rtr_sprintf("%s: %s %s, earlier shards %s (an interrupted run: run it again to finish)", path,
                                   what, got, *have));
    free(got);
}

/* Check one file of an encoding (shard >= 0) or its descriptions (shard < 0). */
static rtr_status scan_embedding_file(const rtr_corpus *c, rtr_output_info *o, const char *path, int shard) {
    hid_t f;
    char *enc = NULL, *hash = NULL;
    int64_t dim = 0;
    rtr_status s = h5_open(path, &f);
    if (s) return s;
    s = store_side_check(f, path, shard < 0 ? DESC_SCHEMA : EMB_SCHEMA, c, shard);
    if (!s) s = h5_get_str(f, path, "encoder", &enc);
    if (!s) s = h5_get_str(f, path, "encoder_hash", &hash);
    if (!s) s = h5_get_i64(f, path, "dim", &dim);
    if (!s && (dim < 1 || dim > 65536)) s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute dim: %lld", path, (long long)dim);
    hid_t d;
    if (shard >= 0) {
        if (!s) s = h5_dataset(f, path, DS_EMB, H5_F32, c->counts[shard], dim, &d, NULL);
        if (!s) H5Dclose(d);
    } else {
        if (!s) s = h5_dataset(f, path, DS_MODEL_DESC, H5_F32, c->cat.n_models, dim, &d, NULL);
        if (!s) H5Dclose(d);
        if (!s) s = h5_dataset(f, path, DS_STRATEGY_DESC, H5_F32, c->cat.n_strategies, dim, &d, NULL);
        if (!s) H5Dclose(d);
    }
    h5_close(f, path);
    if (!s) {
        agree(o, &o->encoder, enc, "encoder", path);
        agree(o, &o->encoder_hash, hash, "encoder hash", path);
        enc = hash = NULL;
        if (o->dim && o->dim != dim)
            set_problem(o, rtr_sprintf("%s: %lld-d embeddings, earlier shards %d-d", path, (long long)dim, (int)o->dim));
        o->dim = (int32_t)dim;
    }
    free(enc);
    free(hash);
    return s;
}

static rtr_status scan_table_file(const rtr_corpus *c, rtr_output_info *o, const char *path, int shard) {
    hid_t f;
    char *name = NULL, *ck = NULL, *ckh = NULL, *enc = NULL, *ench = NULL;
    int64_t k = 0;
    rtr_status s = h5_open(path, &f);
    if (s) return s;
    s = store_side_check(f, path, TABLE_SCHEMA, c, shard);
    if (!s) s = h5_get_str(f, path, "table", &name);
    if (!s && strcmp(name, o->name))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute table: '%s', but it lies in tables/%s", path, name, o->name);
    if (!s) s = h5_get_i64(f, path, "n_pairs", &k);
    if (!s && k != c->cat.n_pairs)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute n_pairs: %lld, the catalog has %d", path, (long long)k, c->cat.n_pairs);
    if (!s) s = h5_get_str(f, path, "checkpoint", &ck);
    if (!s) s = h5_get_str(f, path, "checkpoint_hash", &ckh);
    if (!s) s = h5_get_str(f, path, "encoder", &enc);
    if (!s) s = h5_get_str(f, path, "encoder_hash", &ench);
    const char *mats[2] = {DS_P_CORRECT, DS_P_TOKENS};
    for (int m = 0; m < 2 && !s; m++) {
        hid_t d;
        s = h5_dataset(f, path, mats[m], H5_F32, c->counts[shard], k, &d, NULL);
        if (!s) H5Dclose(d);
    }
    h5_close(f, path);
    if (!s) {
        agree(o, &o->checkpoint, ck, "checkpoint", path);
        agree(o, &o->checkpoint_hash, ckh, "checkpoint hash", path);
        agree(o, &o->encoder, enc, "encoder", path);
        agree(o, &o->encoder_hash, ench, "encoder hash", path);
        ck = ckh = enc = ench = NULL;
    }
    free(name), free(ck), free(ckh), free(enc), free(ench);
    return s;
}

/* A table scored from embeddings that have since been re-encoded (same
 * encoder folder, other weights) is stale: its predictions answer other
 * inputs. */
static void check_stale(const rtr_corpus *c, rtr_output_info *o) {
    if (!o->encoder || !o->encoder_hash || !rtr_output_name_valid(o->encoder)) return;
    for (int i = 0; i < c->n_shards && !o->problem; i++) {
        char *path = store_output_path(c, EMB_DIR, o->encoder, c->files[i]), *h = NULL;
        hid_t f;
        if (path && rtr_path_exists(path) && !h5_open(path, &f)) {
            if (!h5_get_str(f, path, "encoder_hash", &h) && strcmp(h, o->encoder_hash))
                set_problem(o, rtr_sprintf("stale: scored from %s embeddings of encoder hash %s, but %s now holds "
                                           "encoder hash %s (re-encoded): run `rtr score` again", o->encoder,
                                           o->encoder_hash, path, h));
            h5_close(f, path);
        }
        free(h);
        free(path);
    }
}

/* Whether file of the output kind/name exists: 0 yes, ENOENT no, or the
 * reason that cannot be told (the folder may not be searched: permissions,
 * a loop of links). Taken for missing, such a file made the set
 * "incomplete: run rtr score", which is not what is wrong. */
static int output_file_errno(const rtr_corpus *c, const char *kind, const char *name, const char *file) {
    char *path = store_output_path(c, kind, name, file);
    struct stat st;
    int err = !path ? ENOMEM : stat(path, &st) == 0 ? 0 : errno;
    free(path);
    return err;
}

/* What output_file_errno's err means for file (caller frees). */
static char *unsearchable(const char *file, int err) {
    return rtr_sprintf("cannot read the folder (looking up %s): %s", file, strerror(err));
}

/* Scan the output kind/name of c into o. */
static rtr_status scan_output(rtr_output_info *o, const rtr_corpus *c, const char *kind, const char *name) {
    memset(o, 0, sizeof *o);
    bool emb = !strcmp(kind, EMB_DIR);
    if (!(o->name = rtr_strdup(name))) return RTR_ERR_NOMEM;
    o->n_shards = c->n_shards;
    int first_missing = -1;
    for (int i = 0; i < c->n_shards; i++) {
        int err = output_file_errno(c, kind, name, c->files[i]);
        if (err && err != ENOENT) {
            set_problem(o, unsearchable(c->files[i], err));
            continue;
        }
        char *path = store_output_path(c, kind, name, c->files[i]);
        if (!path) return RTR_ERR_NOMEM;
        if (err) {
            if (first_missing < 0) first_missing = i;
        } else if ((emb ? scan_embedding_file(c, o, path, i) : scan_table_file(c, o, path, i)) == RTR_OK) {
            o->n_done++;
        } else {
            set_problem(o, rtr_strdup(rtr_last_error()));
        }
        free(path);
    }
    if (emb) {
        char *path = store_output_path(c, kind, name, DESC_FILE);
        if (!path) return RTR_ERR_NOMEM;
        int err = output_file_errno(c, kind, name, DESC_FILE);
        if (err && err != ENOENT)
            set_problem(o, unsearchable(DESC_FILE, err));
        else if (err)
            set_problem(o, rtr_sprintf("%s: missing (the catalog's description embeddings): run `rtr encode`", path));
        else if (scan_embedding_file(c, o, path, -1))
            set_problem(o, rtr_strdup(rtr_last_error()));
        free(path);
    }
    o->complete = o->n_done == c->n_shards;
    if (first_missing >= 0)
        set_problem(o, rtr_sprintf("%s/%s: incomplete, %d of %d shards (%s missing): run `rtr %s` to finish it",
                                   kind, name, o->n_done, c->n_shards, c->files[first_missing], emb ? "encode" : "score"));
    o->complete = o->complete && !o->problem;
    if (!emb && o->complete) check_stale(c, o);
    return RTR_OK;
}

static bool folder_stamp_of(const rtr_corpus *c, const char *kind, const char *name, folder_stamp *st) {
    char *dir = store_output_path(c, kind, name, NULL);
    struct stat sb;
    bool ok = dir && stat(dir, &sb) == 0;
    free(dir);
    if (ok) *st = (folder_stamp){sb.st_dev, sb.st_ino, sb.st_mtim, sb.st_ctim};
    return ok;
}

static bool same_stamp(const folder_stamp *a, const folder_stamp *b) {
    return a->dev == b->dev && a->ino == b->ino && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
           a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static rtr_status info_copy(rtr_output_info *to, const rtr_output_info *from) {
    *to = *from;
    to->name = to->encoder = to->encoder_hash = to->checkpoint = to->checkpoint_hash = to->problem = NULL;
    char **dst[6] = {&to->name, &to->encoder, &to->encoder_hash, &to->checkpoint, &to->checkpoint_hash, &to->problem};
    char *const src[6] = {from->name, from->encoder, from->encoder_hash, from->checkpoint, from->checkpoint_hash,
                          from->problem};
    for (int i = 0; i < 6; i++)
        if (src[i] && !(*dst[i] = rtr_strdup(src[i]))) {
            rtr_output_info_free(to, 1);
            return RTR_ERR_NOMEM;
        }
    return RTR_OK;
}

/* scan_output through the handle's store_scans (encodings only: a table's
 * staleness hangs on another folder, its encoding's). */
static rtr_status scan_output_cached(rtr_output_info *o, const rtr_corpus *c, const char *kind, const char *name) {
    folder_stamp st;
    if (strcmp(kind, EMB_DIR) || !c->scans || !folder_stamp_of(c, kind, name, &st)) return scan_output(o, c, kind, name);
    struct store_scans *sc = c->scans;
    struct store_scan *e = NULL;
    for (int i = 0; i < sc->n && !e; i++)
        if (!strcmp(sc->e[i].info.name, name)) e = &sc->e[i];
    if (e && same_stamp(&e->stamp, &st)) return info_copy(o, &e->info);
    rtr_status s = scan_output(o, c, kind, name);
    if (s || !o->complete || o->problem) return s;
    if (!e) {
        struct store_scan *grown = rtr_realloc(sc->e, sizeof *grown * (size_t)(sc->n + 1));
        if (!grown) return RTR_OK; /* not kept: scanned again next time */
        sc->e = grown;
        e = &sc->e[sc->n];
        memset(e, 0, sizeof *e);
        if (info_copy(&e->info, o)) return RTR_OK;
        sc->n++;
    } else {
        rtr_output_info fresh;
        if (info_copy(&fresh, o)) return RTR_OK;
        rtr_output_info_free(&e->info, 1);
        e->info = fresh;
    }
    e->stamp = st;
    return RTR_OK;
}

rtr_status rtr_output_file_info(rtr_output_info *o, const rtr_corpus *c, const char *kind, const char *name,
                                int shard) {
    memset(o, 0, sizeof *o);
    bool emb = !strcmp(kind, EMB_DIR);
    if ((!emb && strcmp(kind, TABLE_DIR)) || !rtr_output_name_valid(name) || shard < (emb ? -1 : 0) ||
        shard >= c->n_shards)
        return rtr_fail(RTR_ERR_INVALID, "output %s/%s of shard %d: no such output", kind, name, shard);
    const char *file = shard < 0 ? DESC_FILE : c->files[shard];
    char *path = store_output_path(c, kind, name, file);
    rtr_status s = path && (o->name = rtr_strdup(name)) ? RTR_OK : RTR_ERR_NOMEM;
    o->n_shards = c->n_shards;
    int err = s ? 0 : output_file_errno(c, kind, name, file);
    if (err == ENOENT) s = rtr_fail(RTR_ERR_IO, "%s: no such file", path);
    else if (err) s = rtr_fail(RTR_ERR_IO, "%s/%s/%s: cannot read the folder (looking up %s): %s", c->dir, kind, name,
                               file, strerror(err));
    if (!s) s = emb ? scan_embedding_file(c, o, path, shard) : scan_table_file(c, o, path, shard);
    free(path);
    if (s) {
        rtr_output_info_free(o, 1);
        return s;
    }
    o->n_done = 1;
    return RTR_OK;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The valid output names under DIR/kind that are folders, sorted, and those
 * that are not (a file, a dangling symbolic link: odd, when asked for);
 * with invalid, odd also has the entries whose names are not valid output
 * names (hidden ones, starting with '.', aside), which readers ignore but
 * `info` shows. Caller frees both. */
static rtr_status list_outputs(const rtr_corpus *c, const char *kind, char ***names, int *n, char ***odd, int *n_odd,
                               bool invalid) {
    *names = NULL;
    *n = 0;
    if (odd) *odd = NULL, *n_odd = 0;
    char *dir = rtr_sprintf("%s/%s", c->dir, kind);
    if (!dir) return RTR_ERR_NOMEM;
    DIR *d = opendir(dir);
    struct dirent *e;
    rtr_status s = RTR_OK;
    /* absent: no outputs of this kind yet; anything else (permissions, a
     * file of that name, a link to nowhere) must not read as "none: run rtr
     * encode" */
    struct stat ls;
    if (!d && errno != ENOENT) {
        s = rtr_fail(RTR_ERR_IO, "%s: cannot read the folder: %s", dir, strerror(errno));
    } else if (!d && !lstat(dir, &ls) && S_ISLNK(ls.st_mode)) {
        char *why = rtr_why_not_folder(dir);
        s = rtr_fail(RTR_ERR_IO, "%s: cannot read the folder: %s", dir, why ? why : "a link to nowhere");
        free(why);
    }
    int cap = 0, cap_odd = 0;
    while (d && !s) {
        errno = 0;
        if (!(e = readdir(d))) {
            if (errno) s = rtr_fail(RTR_ERR_IO, "%s: cannot read the folder: %s", dir, strerror(errno));
            break;
        }
        bool valid = rtr_output_name_valid(e->d_name);
        if (!valid && (!invalid || e->d_name[0] == '.')) continue;
        char *sub = rtr_sprintf("%s/%s", dir, e->d_name);
        if (!sub) { s = RTR_ERR_NOMEM; break; }
        bool folder = valid && rtr_is_dir(sub);
        free(sub);
        if (!folder && !odd) continue;
        char ***to = folder ? names : odd;
        int *k = folder ? n : n_odd, *kc = folder ? &cap : &cap_odd;
        if (*k == *kc) {
            *kc = *kc ? 2 * *kc : 8;
            char **nn = rtr_realloc(*to, sizeof *nn * (size_t)*kc);
            if (!nn) { s = RTR_ERR_NOMEM; break; }
            *to = nn;
        }
        if (!((*to)[*k] = rtr_strdup(e->d_name))) s = RTR_ERR_NOMEM;
        else (*k)++;
    }
    if (d) closedir(d);
    free(dir);
    if (*n > 1) qsort(*names, (size_t)*n, sizeof **names, name_cmp);
    if (odd && *n_odd > 1) qsort(*odd, (size_t)*n_odd, sizeof **odd, name_cmp);
    return s;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* "PATH: not a folder (a file); routing tables are ..." for an entry of
 * kind/ that list_outputs found not to be a folder (caller frees). */
static char *not_a_set(const rtr_corpus *c, const char *kind, const char *name) {
    char *path = store_output_path(c, kind, name, NULL), *why = path ? rtr_why_not_folder(path) : NULL;
    char *msg = rtr_sprintf("%s: %s; %s are a folder of files, one per shard", path, why ? why : "not a folder",
                            strcmp(kind, EMB_DIR) ? "routing tables" : "embeddings");
    free(path);
    free(why);
    return msg;
}

static int info_cmp(const void *a, const void *b) {
    return strcmp(((const rtr_output_info *)a)->name, ((const rtr_output_info *)b)->name);
}

rtr_status rtr_corpus_outputs(rtr_output_info **out, int *n, const rtr_corpus *c, const char *kind) {
    *out = NULL;
    *n = 0;
    if (strcmp(kind, EMB_DIR) && strcmp(kind, TABLE_DIR))
        return rtr_fail(RTR_ERR_INVALID, "outputs: kind '%s': expected %s or %s", kind, EMB_DIR, TABLE_DIR);
    char **names, **odd;
    int m, k;
    rtr_status s = list_outputs(c, kind, &names, &m, &odd, &k, true);
    rtr_output_info *info = s ? NULL : rtr_calloc((size_t)(m + k ? m + k : 1), sizeof *info);
    if (!s && !info) s = RTR_ERR_NOMEM;
    for (int i = 0; i < m && !s; i++) {
        s = scan_output(&info[i], c, kind, names[i]);
        if (s) rtr_output_info_free(&info[i], 1);
        else *n = i + 1;
    }
    /* listed, not usable: `info` said "none" of a set that is a file, and
     * nothing of a folder whose name the readers ignore */
    for (int i = 0; i < k && !s; i++) {
        rtr_output_info *o = &info[m + i];
        o->n_shards = c->n_shards;
        if (rtr_output_name_valid(odd[i])) o->name = rtr_strdup(odd[i]), o->problem = not_a_set(c, kind, odd[i]);
        else if ((o->name = rtr_utf8_scrub(odd[i]))) /* a name from the disk: JSON output needs UTF-8 */
            o->problem = rtr_sprintf("%s/%s: not a valid %s name (letters, digits, '.', '_', '-'), ignored", kind,
                                     o->name, strcmp(kind, EMB_DIR) ? "table" : "embeddings");
        if (!o->name || !o->problem) s = RTR_ERR_NOMEM;
        *n = m + i + 1;
    }
    free_names(names, m);
    free_names(odd, k);
    if (s) {
        rtr_output_info_free(info, *n);
        free(info);
        *n = 0;
        return s;
    }
    if (k) qsort(info, (size_t)*n, sizeof *info, info_cmp);
    *out = info;
    return RTR_OK;
}

/* "a, b, c" of the names (for messages; caller frees). */
static char *names_list(char **names, int n) {
    rtr_buf b = {0};
    for (int i = 0; i < n; i++) rtr_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
    return b.failed ? NULL : b.buf ? b.buf : rtr_strdup("");
}

rtr_status store_output_resolve(rtr_output_info *info, const rtr_corpus *c, const char *kind, const char *name,
                                const char *by_hash) {
    memset(info, 0, sizeof *info);
    bool emb = !strcmp(kind, EMB_DIR);
    const char *what = emb ? "embeddings" : "routing table", *stage = emb ? "rtr encode" : "rtr score";
    char **names, **odd;
    int n, k;
    rtr_status s = list_outputs(c, kind, &names, &n, &odd, &k, false);
    if (s) return s;
    char *list = names_list(names, n);
    const char *chosen = NULL;
    bool named_odd = false;
    for (int i = 0; name && i < k; i++) named_odd = named_odd || !strcmp(odd[i], name);
    if (name) {
        for (int i = 0; i < n && !chosen; i++)
            if (!strcmp(names[i], name)) chosen = names[i];
        /* a file (or a link to nowhere) where the folder would be is not
         * "no such table: run rtr score" */
        char *why = named_odd ? not_a_set(c, kind, name) : NULL;
        if (why) s = rtr_fail(RTR_ERR_INVALID, "%s", why);
        else if (!chosen && n)
            s = rtr_fail(RTR_ERR_INVALID, "%s: no %s named '%s' (it has: %s)", c->dir, what, name, list);
        else if (!chosen)
            s = rtr_fail(RTR_ERR_INVALID, "%s: no %s named '%s' (it has none: run `%s` first)", c->dir, what, name, stage);
        free(why);
    } else if (by_hash) {
        for (int i = 0; i < n && !chosen && !s; i++) {
            rtr_output_info o;
            s = scan_output_cached(&o, c, kind, names[i]);
            if (!s && !o.problem && o.encoder_hash && !strcmp(o.encoder_hash, by_hash)) chosen = names[i];
            rtr_output_info_free(&o, 1);
        }
        if (!s && !chosen)
            s = rtr_fail(RTR_ERR_INVALID, "%s: no complete embeddings of encoder hash %s (%s%s): run `rtr encode` with "
                         "that encoder", c->dir, by_hash, n ? "it has: " : "it has none", n ? list : "");
    } else if (n == 1) {
        chosen = names[0];
    } else if (n) {
        s = rtr_fail(RTR_ERR_INVALID, "%s: several %ss (%s): choose one (%s)", c->dir, what, list,
                     emb ? "--encoder" : "--table");
    } else {
        char *why = k ? not_a_set(c, kind, odd[0]) : NULL;
        s = rtr_fail(RTR_ERR_INVALID, "%s: no %s%s: run `%s` first%s%s%s", c->dir, what, emb ? "" : "s", stage,
                     why ? " (" : "", why ? why : "", why ? ")" : "");
        free(why);
    }
    if (!s) s = scan_output_cached(info, c, kind, chosen);
    if (!s && info->problem) s = rtr_fail(RTR_ERR_INVALID, "%s/%s/%s: %s", c->dir, kind, chosen, info->problem);
    if (s) rtr_output_info_free(info, 1);
    free(list);
    free_names(names, n);
    free_names(odd, k);
    return s;
}

/* ------------------------------------------------------- output writers */

struct rtr_output_writer {
    char *path, *tmp;
    hid_t f, d[3];
    int nd;
    int64_t rows, width, written;
    bool finished;
};

/* mkdir -p of DIR/kind/name. */
static rtr_status make_output_dir(const rtr_corpus *c, const char *kind, const char *name) {
    char *a = rtr_sprintf("%s/%s", c->dir, kind), *b = store_output_path(c, kind, name, NULL);
    rtr_status s = a && b ? RTR_OK : RTR_ERR_NOMEM;
    if (!s && mkdir(a, 0755) && errno != EEXIST) s = rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", a, strerror(errno));
    if (!s && mkdir(b, 0755) && errno != EEXIST) s = rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", b, strerror(errno));
    free(a);
    free(b);
    return s;
}

void rtr_output_writer_abort(rtr_output_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->nd; i++)
        if (w->d[i] >= 0) H5Dclose(w->d[i]);
    if (!w->finished) h5_close(w->f, w->tmp);
    unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* Create the temporary file of shard i's output with the common header. */
static rtr_status writer_open(rtr_output_writer **out, const rtr_corpus *c, int shard, const char *kind,
                              const char *name, const char *schema) {
    *out = NULL;
    if (shard < 0 || shard >= c->n_shards) return rtr_fail(RTR_ERR_INVALID, "%s: no shard %d", c->dir, shard);
    if (!rtr_output_name_valid(name))
        return rtr_fail(RTR_ERR_INVALID, "'%s': not a valid name (1..128 letters, digits, '.', '_', '-')", name);
    rtr_output_writer *w = rtr_calloc(1, sizeof *w);
    if (!w) return RTR_ERR_NOMEM;
    w->f = w->d[0] = w->d[1] = w->d[2] = -1;
    w->rows = c->counts[shard];
    rtr_status s = make_output_dir(c, kind, name);
    if (!s && !((w->path = store_output_path(c, kind, name, c->files[shard])) && (w->tmp = rtr_tmp_path(w->path))))
        s = RTR_ERR_NOMEM;
    if (!s) s = h5_create(w->tmp, &w->f);
    if (!s) s = h5_put_str(w->f, "rtr_schema", schema);
    if (!s) s = h5_put_i64(w->f, "rtr_schema_version", RTR_SCHEMA_VERSION);
    if (!s) s = h5_put_str(w->f, "shard", c->files[shard]);
    if (!s) s = h5_put_str(w->f, "shard_hash", c->hashes[shard]);
    if (!s) s = h5_put_i64(w->f, "n_queries", c->counts[shard]);
    if (!s) s = h5_put_str(w->f, "catalog_hash", c->catalog_hash);
    if (s) {
        if (w->tmp) rtr_fail_prefix(s, "%s: ", w->tmp);
        rtr_output_writer_abort(w);
        return s;
    }
    *out = w;
    return RTR_OK;
}

rtr_status rtr_embedding_writer_open(rtr_output_writer **out, const rtr_corpus *c, int shard, const char *encoder,
                                     const char *encoder_hash, int32_t dim) {
    if (dim < 1) return rtr_fail(RTR_ERR_INVALID, "embeddings of width %d", (int)dim);
    rtr_output_writer *w;
    rtr_status s = writer_open(&w, c, shard, EMB_DIR, encoder, EMB_SCHEMA);
    if (s) return s;
    w->width = dim;
    w->nd = 1;
    s = h5_put_str(w->f, "encoder", encoder);
    if (!s) s = h5_put_str(w->f, "encoder_hash", encoder_hash);
    if (!s) s = h5_put_i64(w->f, "dim", dim);
    if (!s) s = h5_make_dense(w->f, DS_EMB, w->rows, dim, &w->d[0]);
    if (s) {
        rtr_fail_prefix(s, "%s: ", w->tmp);
        rtr_output_writer_abort(w);
        return s;
    }
    *out = w;
    return RTR_OK;
}

rtr_status rtr_table_writer_open(rtr_output_writer **out, const rtr_corpus *c, int shard, const rtr_table_meta *m) {
    rtr_output_writer *w;
    rtr_status s = writer_open(&w, c, shard, TABLE_DIR, m->name, TABLE_SCHEMA);
    if (s) return s;
    w->width = c->cat.n_pairs;
    w->nd = m->with_cost ? 3 : 2;
    const char *mats[3] = {DS_P_CORRECT, DS_P_TOKENS, DS_P_COST};
    s = h5_put_str(w->f, "table", m->name);
    if (!s) s = h5_put_i64(w->f, "n_pairs", c->cat.n_pairs);
    if (!s) s = h5_put_str(w->f, "checkpoint", m->checkpoint ? m->checkpoint : "");
    if (!s) s = h5_put_str(w->f, "checkpoint_hash", m->checkpoint_hash ? m->checkpoint_hash : "");
    if (!s) s = h5_put_str(w->f, "encoder", m->encoder ? m->encoder : "");
    if (!s) s = h5_put_str(w->f, "encoder_hash", m->encoder_hash ? m->encoder_hash : "");
    for (int i = 0; i < w->nd && !s; i++) s = h5_make(w->f, mats[i], H5_F32, w->rows, w->width, &w->d[i]);
    if (s) {
        rtr_fail_prefix(s, "%s: ", w->tmp);
        rtr_output_writer_abort(w);
        return s;
    }
    *out = w;
    return RTR_OK;
}

rtr_status rtr_output_writer_append(rtr_output_writer *w, int64_t rows, const float *const *cols) {
    if (w->finished || rows < 0 || w->written + rows > w->rows)
        return rtr_fail(RTR_ERR_INVALID, "%s: %lld more rows than the shard's %lld", w->path,
                        (long long)(w->written + rows - w->rows), (long long)w->rows);
    for (int i = 0; i < w->nd; i++) {
        rtr_status s = h5_write_rows(w->d[i], H5_F32, w->written, rows, w->width, cols[i], "output");
        if (s) return rtr_fail_prefix(s, "%s: ", w->tmp);
    }
    w->written += rows;
    return RTR_OK;
}

rtr_status rtr_output_writer_finish(rtr_output_writer *w) {
    if (w->finished) return RTR_OK;
    if (w->written != w->rows)
        return rtr_fail(RTR_ERR_INVALID, "%s: %lld of %lld rows written", w->path, (long long)w->written,
                        (long long)w->rows);
    for (int i = 0; i < w->nd; i++) {
        H5Dclose(w->d[i]);
        w->d[i] = -1;
    }
    w->finished = true;
    return h5_close(w->f, w->tmp);
}

rtr_status rtr_output_writer_commit(rtr_output_writer *w) {
    rtr_status s = rtr_output_writer_finish(w);
    if (!s) s = rtr_commit_file(w->tmp, w->path);
    if (s) {
        rtr_output_writer_abort(w);
        return s;
    }
    free(w->path);
    free(w->tmp);
    free(w);
    return RTR_OK;
}

/* ----------------------------------------------------------- descriptions */

rtr_status rtr_descriptions_write(const rtr_corpus *c, const char *encoder, const char *encoder_hash, int32_t dim,
                                  const float *d_model, const float *d_strategy) {
    if (!rtr_output_name_valid(encoder))
        return rtr_fail(RTR_ERR_INVALID, "encoder name '%s': not a valid folder name (1..128 letters, digits, '.', "
                        "'_', '-')", encoder);
    char *path = store_output_path(c, EMB_DIR, encoder, DESC_FILE), *tmp = path ? rtr_tmp_path(path) : NULL;
    hid_t f = -1, d;
    rtr_status s = tmp ? make_output_dir(c, EMB_DIR, encoder) : RTR_ERR_NOMEM;
    if (!s) s = h5_create(tmp, &f);
    if (!s) s = h5_put_str(f, "rtr_schema", DESC_SCHEMA);
    if (!s) s = h5_put_i64(f, "rtr_schema_version", RTR_SCHEMA_VERSION);
    if (!s) s = h5_put_str(f, "catalog_hash", c->catalog_hash);
    if (!s) s = h5_put_str(f, "encoder", encoder);
    if (!s) s = h5_put_str(f, "encoder_hash", encoder_hash);
    if (!s) s = h5_put_i64(f, "dim", dim);
    if (!s) s = h5_make(f, DS_MODEL_DESC, H5_F32, c->cat.n_models, dim, &d);
    if (!s) s = h5_write_rows(d, H5_F32, 0, c->cat.n_models, dim, d_model, DS_MODEL_DESC);
    if (!s) H5Dclose(d);
    if (!s) s = h5_make(f, DS_STRATEGY_DESC, H5_F32, c->cat.n_strategies, dim, &d);
    if (!s) s = h5_write_rows(d, H5_F32, 0, c->cat.n_strategies, dim, d_strategy, DS_STRATEGY_DESC);
    if (!s) H5Dclose(d);
    rtr_status cs = f >= 0 ? h5_close(f, tmp) : RTR_OK;
    if (!s) s = cs;
    if (!s) s = rtr_commit_file(tmp, path);
    else if (tmp) unlink(tmp);
    if (s && tmp) rtr_fail_prefix(s, "%s: ", path);
    free(path);
    free(tmp);
    return s;
}

rtr_status rtr_descriptions_read(float **d_model, float **d_strategy, int32_t *dim, const rtr_corpus *c,
                                 const char *encoder) {
    *d_model = *d_strategy = NULL;
    rtr_output_info info;
    rtr_status s = store_output_resolve(&info, c, EMB_DIR, encoder, NULL);
    if (s) return s;
    char *path = store_output_path(c, EMB_DIR, info.name, DESC_FILE);
    hid_t f = -1, d;
    int32_t D = info.dim;
    s = path ? h5_open(path, &f) : RTR_ERR_NOMEM;
    float *dm = s ? NULL : rtr_malloc(sizeof(float) * (size_t)c->cat.n_models * (size_t)D);
    float *ds = s ? NULL : rtr_malloc(sizeof(float) * (size_t)c->cat.n_strategies * (size_t)D);
    if (!s && (!dm || !ds)) s = RTR_ERR_NOMEM;
    if (!s) s = h5_dataset(f, path, DS_MODEL_DESC, H5_F32, c->cat.n_models, D, &d, NULL);
    if (!s) {
        s = h5_read_rows(d, H5_F32, 0, c->cat.n_models, D, dm, path, DS_MODEL_DESC);
        H5Dclose(d);
    }
    if (!s) s = h5_dataset(f, path, DS_STRATEGY_DESC, H5_F32, c->cat.n_strategies, D, &d, NULL);
    if (!s) {
        s = h5_read_rows(d, H5_F32, 0, c->cat.n_strategies, D, ds, path, DS_STRATEGY_DESC);
        H5Dclose(d);
    }
    for (size_t i = 0; !s && i < (size_t)c->cat.n_models * (size_t)D; i++)
        if (!isfinite(dm[i])) s = rtr_fail(RTR_ERR_NUMERIC, "%s: %s holds NaN/inf", path, DS_MODEL_DESC);
    for (size_t i = 0; !s && i < (size_t)c->cat.n_strategies * (size_t)D; i++)
        if (!isfinite(ds[i])) s = rtr_fail(RTR_ERR_NUMERIC, "%s: %s holds NaN/inf", path, DS_STRATEGY_DESC);
    if (f >= 0) h5_close(f, path);
    free(path);
    rtr_output_info_free(&info, 1);
    if (s) {
        free(dm);
        free(ds);
        return s;
    }
    *d_model = dm;
    *d_strategy = ds;
    *dim = D;
    return RTR_OK;
}
