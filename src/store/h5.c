/* HDF5 primitives of the store (h5.h). */
#include "store/h5.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file whose close failed (a full disk) stays open inside HDF5, and
 * HDF5's exit handler would close it again and crash: rtr closes its files
 * itself, so the handler is not installed (this must come before any other
 * HDF5 call). */
static void h5_init_once(void) {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, h5_init_once);
}

typedef struct {
    char text[300];
    bool have;
} h5_err;

/* The innermost entry of the stack is the first one walked upward; of a
 * failed system call only the system's message is kept. */
static herr_t err_walk(unsigned n, const H5E_error2_t *e, void *ctx) {
    h5_err *x = ctx;
    if (n != 0 || !e->desc) return 0;
    const char *desc = e->desc, *sys = strstr(desc, "error message = '");
    size_t len = strcspn(desc, "\n");
    if (sys) {
        desc = sys + strlen("error message = '");
        len = strcspn(desc, "'\n");
    }
    snprintf(x->text, sizeof x->text, "%s: %.*s", e->func_name ? e->func_name : "?", (int)len, desc);
    x->have = true;
    return 0;
}

rtr_status h5_fail(rtr_status s, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h5_err e = {{0}, false};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, err_walk, &e);
    H5Eclear2(H5E_DEFAULT);
    return e.have ? rtr_fail(s, "%s (HDF5: %s)", msg, e.text) : rtr_fail(s, "%s", msg);
}

static hid_t strong_fapl(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    return fapl;
}

rtr_status h5_create(const char *path, hid_t *f) {
    h5_init();
    hid_t fapl = strong_fapl();
    /* The 1.10 file format: its superblock, object headers and chunk indexes
     * carry checksums that HDF5 verifies when it reads them, so damage to a
     * file rtr wrote is refused ("incorrect metadata checksum"). HDF5's
     * default, the earliest format, has none, and HDF5 1.10.8 (Debian 12's)
     * decodes a damaged object header as it is: fuzz_shard made it divide by
     * a zero chunk size (SIGFPE in H5D__chunk_set_info). h5py reads this
     * format (it needs HDF5 >= 1.10). */
    if (fapl >= 0 && H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0) {
        H5Pclose(fapl);
        fapl = -1;
    }
    /* no modification times in the root group's header (this format keeps
     * them there): the same data makes the same bytes */
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fcpl >= 0 && H5Pset_obj_track_times(fcpl, 0) < 0) {
        H5Pclose(fcpl);
        fcpl = -1;
    }
    *f = fapl < 0 || fcpl < 0 ? -1 : H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (fapl >= 0) H5Pclose(fapl);
    return *f < 0 ? h5_fail(RTR_ERR_IO, "%s: cannot create", path) : RTR_OK;
}

rtr_status h5_open(const char *path, hid_t *f) {
    h5_init();
    *f = -1;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? rtr_fail(RTR_ERR_IO, "%s: no such file", path)
                               : rtr_fail(RTR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return rtr_fail(RTR_ERR_IO, "%s: is a directory, not a file", path);
    /* a named pipe nobody writes to would block the open forever */
    if (!S_ISREG(sb.st_mode)) return rtr_fail(RTR_ERR_IO, "%s: not a regular file (a pipe or a device?)", path);
    /* HDF5 says only that its open failed: a shard the user may not read was
     * called truncated or corrupt */
    int fd = open(path, O_RDONLY);
    if (fd < 0) return rtr_fail(RTR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    close(fd);
    hid_t fapl = strong_fapl();
    *f = fapl < 0 ? -1 : H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    return *f < 0 ? h5_fail(RTR_ERR_FORMAT, "%s: not a readable HDF5 file (truncated or corrupt)", path) : RTR_OK;
}

rtr_status h5_close(hid_t f, const char *path) {
    if (f < 0) return RTR_OK;
    if (H5Fclose(f) >= 0) return RTR_OK;
    return h5_fail(RTR_ERR_IO, "%s: cannot write the file out (disk full?)", path);
}

/* ------------------------------------------------------------- attributes */

static rtr_status put_attr(hid_t f, const char *key, hid_t type, const void *val) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp < 0 ? -1 : H5Acreate2(f, key, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, type, val);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return e < 0 ? h5_fail(RTR_ERR_IO, "cannot write attribute %s", key) : RTR_OK;
}

rtr_status h5_put_str(hid_t f, const char *key, const char *val) {
    /* marked UTF-8 below, and refused by every reader when it is not */
    size_t bad;
    if (!rtr_utf8_valid(val, strlen(val), &bad))
        return rtr_fail(RTR_ERR_INVALID, "attribute %s: not valid UTF-8 at byte %zu", key, bad);
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return h5_fail(RTR_ERR_IO, "cannot write attribute %s", key);
    H5Tset_size(t, strlen(val) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, H5T_CSET_UTF8);
    rtr_status s = put_attr(f, key, t, val);
    H5Tclose(t);
    return s;
}

rtr_status h5_put_f64(hid_t f, const char *key, double val) {
    hid_t t = H5Tcopy(H5T_IEEE_F64LE);
    rtr_status s = t < 0 ? h5_fail(RTR_ERR_IO, "cannot write attribute %s", key) : put_attr(f, key, t, &val);
    if (t >= 0) H5Tclose(t);
    return s;
}

rtr_status h5_put_i64(hid_t f, const char *key, int64_t val) {
    hid_t t = H5Tcopy(H5T_STD_I64LE);
    rtr_status s = t < 0 ? h5_fail(RTR_ERR_IO, "cannot write attribute %s", key) : put_attr(f, key, t, &val);
    if (t >= 0) H5Tclose(t);
    return s;
}

/* Open attribute key of object o (the root group when o is the file):
 * RTR_ERR_FORMAT when absent. One value: a scalar, or the one element of a
 * 1-element array (h5py writes `attrs[k] = [v]` so). */
static rtr_status open_attr(hid_t o, const char *path, const char *key, hid_t *a, hid_t *t) {
    *a = *t = -1;
    if (H5Aexists(o, key) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return rtr_fail(RTR_ERR_FORMAT, "%s: attribute %s is missing", path, key);
    }
    *a = H5Aopen(o, key, H5P_DEFAULT);
    *t = *a < 0 ? -1 : H5Aget_type(*a);
    hid_t sp = *a < 0 ? -1 : H5Aget_space(*a);
    H5S_class_t cls = sp < 0 ? H5S_NO_CLASS : H5Sget_simple_extent_type(sp);
    bool one = cls == H5S_SCALAR || (cls == H5S_SIMPLE && H5Sget_simple_extent_npoints(sp) == 1);
    if (sp >= 0) H5Sclose(sp);
    if (*t < 0 || !one) {
        if (*t >= 0) H5Tclose(*t);
        if (*a >= 0) H5Aclose(*a);
        *a = *t = -1;
        return h5_fail(RTR_ERR_FORMAT, "%s: attribute %s is unreadable or not a single value", path, key);
    }
    return RTR_OK;
}

/* A variable-length string attribute (h5py's default for a str): HDF5
 * copies it out of the file's global heap. HDF5 1.10's reader of a heap
 * collection loops forever on a damaged one (an object of index 0 and size
 * 0: the shard fuzzer hung in H5HG_read, tests/fuzz/regress/shard/
 * vlen-attr-heap-loop), so only `rtr upgrade`, whose version-1 files wrote
 * them so, reads one. */
static rtr_status get_vlen_str(hid_t a, hid_t t, const char *path, const char *key, char **val) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    char *v = NULL;
    herr_t e = mt < 0 ? -1 : H5Tset_size(mt, H5T_VARIABLE);
    /* the memory type keeps the file's character set: HDF5 converts
     * between strings of one set only */
    if (e >= 0) e = H5Tset_cset(mt, H5Tget_cset(t));
    if (e >= 0) e = H5Aread(a, mt, &v);
    if (mt >= 0) H5Tclose(mt);
    if (e < 0) return h5_fail(RTR_ERR_FORMAT, "%s: attribute %s cannot be read", path, key);
    rtr_status s = RTR_OK;
    if (!v) s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute %s is a null string", path, key);
    else if (strlen(v) > (1u << 20)) s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute %s is implausibly long", path, key);
    else if (!rtr_utf8_valid(v, strlen(v), NULL))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute %s is not valid UTF-8: rewrite it as UTF-8 text", path, key);
    else if (!(*val = rtr_strdup(v))) s = RTR_ERR_NOMEM;
    if (v) H5free_memory(v);
    return s;
}

static rtr_status get_str(hid_t o, const char *path, const char *key, char **val, bool vlen_ok) {
    *val = NULL;
    hid_t a, t;
    rtr_status s = open_attr(o, path, key, &a, &t);
    if (s) return s;
    size_t n = H5Tget_size(t);
    htri_t vl = H5Tget_class(t) == H5T_STRING ? H5Tis_variable_str(t) : -1;
    if (vl < 0 || (!vl && (n == 0 || n > (1u << 20)))) {
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute %s is not a string", path, key);
    } else if (vl && !vlen_ok) {
        s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute %s is a variable-length string (h5py writes a str so): rtr reads "
                     "fixed-length strings only (HDF5 1.10 can hang on a damaged one); write it with numpy.bytes_(...)",
                     path, key);
    } else if (vl) {
        s = get_vlen_str(a, t, path, key, val);
    } else {
        char *buf = rtr_calloc(n + 1, 1);
        if (!buf) s = RTR_ERR_NOMEM;
        /* read as the type it is stored in: the n bytes, whatever the padding */
        else if (H5Aread(a, t, buf) < 0) s = h5_fail(RTR_ERR_FORMAT, "%s: attribute %s cannot be read", path, key);
        /* a space-padded string (Fortran's, MATLAB's) ends at its last non-space */
        else if (H5Tget_strpad(t) == H5T_STR_SPACEPAD)
            for (size_t i = n; i > 0 && (buf[i - 1] == ' ' || buf[i - 1] == '\0'); i--) buf[i - 1] = '\0';
        /* names and hashes rtr prints and writes into JSON and CSV: bytes of
         * another encoding (Latin-1 from a C or MATLAB writer) would pass
         * into eval.json, `info` and route's files, which then do not parse */
        size_t bad, len = s ? 0 : strlen(buf);
        /* a NUL ends a C string: bytes after it would be dropped unseen, so a
         * hash "h\0xyz" would compare equal to "h" */
        for (size_t i = len; !s && i < n; i++)
            if (buf[i]) s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute %s has a NUL at byte %zu followed by more text", path, key, len);
        if (!s && !rtr_utf8_valid(buf, len, &bad))
            s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute %s is not valid UTF-8 (byte %zu): rewrite it as UTF-8 text",
                         path, key, bad);
        if (s) free(buf);
        else *val = buf;
    }
    H5Tclose(t);
    H5Aclose(a);
    return s;
}

rtr_status h5_get_str(hid_t o, const char *path, const char *key, char **val) { return get_str(o, path, key, val, false); }

rtr_status h5_get_str_v1(hid_t o, const char *path, const char *key, char **val) { return get_str(o, path, key, val, true); }

rtr_status h5_get_i64(hid_t o, const char *path, const char *key, int64_t *val) {
    hid_t a, t;
    rtr_status s = open_attr(o, path, key, &a, &t);
    if (s) return s;
    /* an integer, not a float that would be truncated into one */
    if (H5Tget_class(t) != H5T_INTEGER) s = rtr_fail(RTR_ERR_FORMAT, "%s: attribute %s is not an integer", path, key);
    else if (H5Aread(a, H5T_NATIVE_INT64, val) < 0) s = h5_fail(RTR_ERR_FORMAT, "%s: attribute %s cannot be read", path, key);
    H5Tclose(t);
    H5Aclose(a);
    return s;
}

/* --------------------------------------------------------------- datasets */

/* The variable-length UTF-8 string type, made once for the process. */
static hid_t vstr;
static void vstr_make(void) {
    vstr = H5Tcopy(H5T_C_S1);
    H5Tset_size(vstr, H5T_VARIABLE);
    H5Tset_cset(vstr, H5T_CSET_UTF8);
}
static hid_t vstr_type(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, vstr_make);
    return vstr;
}

static hid_t mem_type(h5_kind k) {
    switch (k) {
    case H5_F32: return H5T_NATIVE_FLOAT;
    case H5_I64: return H5T_NATIVE_INT64;
    case H5_I32: return H5T_NATIVE_INT32;
    case H5_VSTR: return vstr_type();
    default: return H5T_NATIVE_UINT8;
    }
}
static hid_t file_type(h5_kind k) {
    switch (k) {
    case H5_F32: return H5T_IEEE_F32LE;
    case H5_I64: return H5T_STD_I64LE;
    case H5_I32: return H5T_STD_I32LE;
    case H5_VSTR: return vstr_type();
    default: return H5T_STD_U8LE;
    }
}
static size_t elem_size(h5_kind k) {
    return k == H5_F32 || k == H5_I32 ? 4 : k == H5_I64 ? 8 : k == H5_VSTR ? sizeof(char *) : 1;
}
/* Float matrices have two dimensions; a float column (cols 0) and the others one. */
static int rank_of(h5_kind k, int64_t cols) { return k == H5_F32 && cols > 0 ? 2 : 1; }

/* 1 when name is in f, 0 when it is not, -1 when HDF5 could not tell (a
 * damaged group: its error is left on HDF5's stack for h5_fail). */
static int find(hid_t f, const char *name) {
    /* H5Lexists needs every parent to exist: test the path one level at a time */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", name);
    htri_t yes = 1;
    for (char *p = buf + 1; yes > 0; p++) {
        char *slash = strchr(p, '/');
        if (slash) *slash = '\0';
        yes = H5Lexists(f, buf, H5P_DEFAULT);
        if (!slash) break;
        *slash = '/';
        p = slash;
    }
    return yes > 0 ? 1 : yes == 0 ? 0 : -1;
}

bool h5_exists(hid_t f, const char *name) {
    bool yes = find(f, name) > 0;
    H5Eclear2(H5E_DEFAULT);
    return yes;
}

/* The groups above dataset name, created where missing without modification
 * times (HDF5's intermediate groups would carry them: the same data would
 * not make the same bytes). */
static herr_t make_parents(hid_t f, const char *name) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", name);
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    herr_t e = gcpl < 0 ? -1 : H5Pset_obj_track_times(gcpl, 0);
    for (char *slash = strchr(buf + 1, '/'); e >= 0 && slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        int there = find(f, buf);
        if (there < 0) e = -1;
        if (there == 0) {
            hid_t g = H5Gcreate2(f, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            e = g < 0 ? -1 : H5Gclose(g);
        }
        *slash = '/';
    }
    if (gcpl >= 0) H5Pclose(gcpl);
    return e;
}

static rtr_status make(hid_t f, const char *name, h5_kind kind, int64_t rows, int64_t cols, bool deflate, hid_t *d) {
    int rank = rank_of(kind, cols);
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols}, maxdims[2] = {H5S_UNLIMITED, (hsize_t)cols}, chunk[2];
    size_t row_bytes = elem_size(kind) * (size_t)(rank > 1 && cols > 0 ? cols : 1);
    hsize_t crows = (hsize_t)(1 << 20) / row_bytes; /* ~1 MiB chunks */
    chunk[0] = crows < 1 ? 1 : crows;
    if (rows > 0 && chunk[0] > (hsize_t)rows) chunk[0] = (hsize_t)rows;
    chunk[1] = cols > 0 ? (hsize_t)cols : 1;
    hid_t sp = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    herr_t e = sp < 0 || dcpl < 0 ? -1 : make_parents(f, name);
    if (e >= 0) e = H5Pset_chunk(dcpl, rank, chunk);
    /* no modification times in the object header: the same data makes the
     * same bytes, run to run and however ranks split the rows */
    if (e >= 0) e = H5Pset_obj_track_times(dcpl, 0);
    if (e >= 0 && deflate) e = H5Pset_shuffle(dcpl);
    if (e >= 0 && deflate) e = H5Pset_deflate(dcpl, 4);
    if (e >= 0 && !deflate) e = H5Pset_fletcher32(dcpl); /* a damaged chunk still fails its read */
    *d = e < 0 ? -1 : H5Dcreate2(f, name, file_type(kind), sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    return *d < 0 ? h5_fail(RTR_ERR_IO, "cannot create dataset %s", name) : RTR_OK;
}

rtr_status h5_make(hid_t f, const char *name, h5_kind kind, int64_t rows, int64_t cols, hid_t *d) {
    return make(f, name, kind, rows, cols, true, d);
}

rtr_status h5_make_dense(hid_t f, const char *name, int64_t rows, int64_t cols, hid_t *d) {
    return make(f, name, H5_F32, rows, cols, false, d);
}

/* Read or write rows [row0, row0 + rows) of d. */
static herr_t rows_io(hid_t d, h5_kind kind, int64_t row0, int64_t rows, int64_t cols, void *buf, bool write) {
    int rank = rank_of(kind, cols);
    hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(rank, count, NULL);
    herr_t e = fs < 0 || ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    if (e >= 0) e = write ? H5Dwrite(d, mem_type(kind), ms, fs, H5P_DEFAULT, buf)
                          : H5Dread(d, mem_type(kind), ms, fs, H5P_DEFAULT, buf);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return e;
}

rtr_status h5_append(hid_t d, h5_kind kind, int64_t at, int64_t rows, int64_t cols, const void *data,
                     const char *name) {
    if (rows <= 0) return RTR_OK;
    hsize_t dims[2] = {(hsize_t)(at + rows), (hsize_t)cols};
    if (H5Dset_extent(d, dims) < 0 || rows_io(d, kind, at, rows, cols, (void *)data, true) < 0)
        return h5_fail(RTR_ERR_IO, "cannot write rows %lld.. of dataset %s", (long long)at, name);
    return RTR_OK;
}

rtr_status h5_write_rows(hid_t d, h5_kind kind, int64_t row0, int64_t rows, int64_t cols, const void *data,
                         const char *name) {
    if (rows <= 0) return RTR_OK;
    if (rows_io(d, kind, row0, rows, cols, (void *)data, true) < 0)
        return h5_fail(RTR_ERR_IO, "cannot write rows %lld.. of dataset %s", (long long)row0, name);
    return RTR_OK;
}

/* Open dataset name of f, RTR_ERR_FORMAT naming it when missing. */
static rtr_status open_dataset(hid_t f, const char *path, const char *name, hid_t *d) {
    *d = -1;
    int there = find(f, name);
    /* "missing" would send the user looking for a writer that left it out */
    if (there < 0) return h5_fail(RTR_ERR_FORMAT, "%s: dataset %s cannot be looked up (damaged file?)", path, name);
    H5Eclear2(H5E_DEFAULT);
    if (!there) return rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s is missing", path, name);
    /* a streamed read that cuts a storage chunk (about 1 MiB) keeps it cached
     * for the next; a few chunks per dataset, not more: a stage holds many open */
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (dapl >= 0) H5Pset_chunk_cache(dapl, H5D_CHUNK_CACHE_NSLOTS_DEFAULT, 4u << 20, H5D_CHUNK_CACHE_W0_DEFAULT);
    *d = H5Dopen2(f, name, dapl >= 0 ? dapl : H5P_DEFAULT);
    if (dapl >= 0) H5Pclose(dapl);
    return *d < 0 ? h5_fail(RTR_ERR_FORMAT, "%s: dataset %s cannot be opened", path, name) : RTR_OK;
}

/* The end of opening a checked dataset: its type and space closed, HDF5's
 * error stack cleared, and *d closed (-1) when the check s failed. */
static rtr_status opened(hid_t *d, hid_t t, hid_t sp, rtr_status s) {
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    H5Eclear2(H5E_DEFAULT);
    if (s) {
        H5Dclose(*d);
        *d = -1;
    }
    return s;
}

/* A compact or contiguous dataset's raw data must hold exactly its elements
 * (need bytes in the file): HDF5 1.10 trusts a damaged layout message and
 * copies from a NULL buffer (a compact dataset of 6 int64 with 0 bytes
 * stored crashed the shard fuzzer in H5Dread). Chunked storage may hold
 * less (compression, chunks never written read as fill). */
static rtr_status storage_check(hid_t d, const char *path, const char *name, unsigned long long need) {
    hid_t pl = H5Dget_create_plist(d);
    H5D_layout_t layout = pl < 0 ? H5D_LAYOUT_ERROR : H5Pget_layout(pl);
    if (pl >= 0) H5Pclose(pl);
    unsigned long long stored = (unsigned long long)H5Dget_storage_size(d);
    if ((layout == H5D_COMPACT || layout == H5D_CONTIGUOUS) && stored != need)
        return rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s stores %llu bytes where its elements need %llu (damaged file?)",
                        path, name, stored, need);
    if (layout != H5D_COMPACT && layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED)
        return rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s has no layout rtr can read (damaged file?)", path, name);
    return RTR_OK;
}

rtr_status h5_dataset(hid_t f, const char *path, const char *name, h5_kind kind, int64_t rows, int64_t cols,
                      hid_t *d, int64_t *got_rows) {
    rtr_status s = open_dataset(f, path, name, d);
    if (s) return s;
    hid_t t = H5Dget_type(*d), sp = H5Dget_space(*d);
    hsize_t dims[2] = {0, 0};
    int rank = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (rank >= 1 && rank <= 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5T_class_t cls = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
    size_t size = t < 0 ? 0 : H5Tget_size(t);
    if (cls != (kind == H5_F32 ? H5T_FLOAT : H5T_INTEGER) || size != elem_size(kind))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s is not %s", path, name,
                     kind == H5_F32 ? "float32" : kind == H5_I64 ? "int64" : "uint8");
    else if (rank != rank_of(kind, cols) || (rows >= 0 && (int64_t)dims[0] != rows) || (rank == 2 && (int64_t)dims[1] != cols))
        s = rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s has %d dimension(s), %lld x %lld; expected %lld x %lld", path, name,
                     rank, (long long)dims[0], rank == 2 ? (long long)dims[1] : 1LL, (long long)rows,
                     rank_of(kind, cols) == 2 ? (long long)cols : 1LL);
    if (!s) s = storage_check(*d, path, name, (unsigned long long)dims[0] * (rank == 2 ? dims[1] : 1) * size);
    if (!s && got_rows) *got_rows = (int64_t)dims[0];
    return opened(d, t, sp, s);
}

rtr_status h5_string_dataset(hid_t f, const char *path, const char *name, int64_t rows, hid_t *d) {
    rtr_status s = open_dataset(f, path, name, d);
    if (s) return s;
    hid_t t = H5Dget_type(*d), sp = H5Dget_space(*d), fcpl = H5Fget_create_plist(f);
    hsize_t dims[1] = {0};
    int rank = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (rank == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
    size_t addr = 8, size = t < 0 ? 0 : H5Tget_size(t);
    if (fcpl >= 0) H5Pget_sizes(fcpl, &addr, NULL);
    /* a variable-length element is stored as a global heap id: its sequence
     * length (4 bytes), the heap collection's address and an index (4) */
    bool vl = t >= 0 && H5Tis_variable_str(t) > 0;
    if (t < 0 || H5Tget_class(t) != H5T_STRING)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s is not a string dataset", path, name);
    else if (rank != 1 || (int64_t)dims[0] != rows)
        s = rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s has %d dimension(s), %lld rows; expected %lld", path, name, rank,
                     (long long)dims[0], (long long)rows);
    else
        s = storage_check(*d, path, name, (unsigned long long)dims[0] * (vl ? 8 + addr : size));
    if (fcpl >= 0) H5Pclose(fcpl);
    return opened(d, t, sp, s);
}

rtr_status h5_read_rows(hid_t d, h5_kind kind, int64_t row0, int64_t rows, int64_t cols, void *out,
                        const char *path, const char *name) {
    if (rows <= 0) return RTR_OK;
    if (rows_io(d, kind, row0, rows, cols, out, false) < 0)
        return h5_fail(RTR_ERR_FORMAT, "%s: cannot read rows %lld to %lld of dataset %s (truncated or corrupt file?)",
                       path, (long long)row0, (long long)(row0 + rows - 1), name);
    return RTR_OK;
}

/* ---------------------------------------------------------------- blobs */

rtr_status h5_put_blob(hid_t f, const char *name, const char *data, size_t len) {
    hid_t d;
    rtr_status s = h5_make(f, name, H5_U8, (int64_t)len, 1, &d);
    if (s) return s;
    s = h5_write_rows(d, H5_U8, 0, (int64_t)len, 1, data, name);
    H5Dclose(d);
    return s;
}

rtr_status h5_get_blob(hid_t f, const char *path, const char *name, char **data, size_t *len) {
    *data = NULL;
    hid_t d;
    int64_t n = 0;
    rtr_status s = h5_dataset(f, path, name, H5_U8, -1, 1, &d, &n);
    if (s) return s;
    char *buf = n > (1 << 26) ? NULL : rtr_malloc((size_t)n + 1);
    if (!buf) s = n > (1 << 26) ? rtr_fail(RTR_ERR_FORMAT, "%s: dataset %s is implausibly large", path, name) : RTR_ERR_NOMEM;
    if (!s) s = h5_read_rows(d, H5_U8, 0, n, 1, buf, path, name);
    H5Dclose(d);
    if (s) { free(buf); return s; }
    buf[n] = '\0';
    *data = buf;
    *len = (size_t)n;
    return RTR_OK;
}
