/* The few HDF5 operations the store is built from, each closing every object
 * it opens on every path and turning HDF5's error stack into rtr's message
 * (never printed raw). rtr writes no variable-length strings into a corpus:
 * attributes are fixed-length, and string columns are bytes plus offsets
 * (docs/FORMAT.md), so its own columns never send HDF5 into the global
 * heap. It reads fixed-length string attributes of any padding, scalar or
 * of one element; a variable-length one (h5py's str) only in `rtr upgrade`. All HDF5 calls
 * happen on one thread (Debian's libhdf5 is not thread-safe). Internal. */
#ifndef RTR_STORE_H5_H
#define RTR_STORE_H5_H

#include "rtr/rtr.h"

#include <hdf5.h>
#include <stdbool.h>

/* Turn off HDF5's own error printing and its exit handler (once; before
 * any other HDF5 call of the process). */
void h5_init(void);

/* rtr_fail(s, ...) with " (HDF5: <innermost error>)" appended when HDF5
 * recorded one; clears HDF5's stack. */
rtr_status h5_fail(rtr_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Files: created with H5F_CLOSE_STRONG (closing the file closes whatever
 * is still open in it). h5_open fails as RTR_ERR_IO when path is missing
 * or a directory, RTR_ERR_FORMAT when it is not HDF5. */
rtr_status h5_create(const char *path, hid_t *f);
rtr_status h5_open(const char *path, hid_t *f);
/* Close; RTR_ERR_IO naming path when HDF5 cannot flush (a full disk). */
rtr_status h5_close(hid_t f, const char *path);

/* Scalar attributes of the root group (put), of object o, the root group
 * when o is the file (get). A get takes a scalar or a 1-element array, and a
 * fixed-length string of any padding, ASCII or UTF-8. A
 * missing or mistyped attribute is RTR_ERR_FORMAT naming path and key.
 * Strings: caller frees. */
rtr_status h5_put_str(hid_t f, const char *key, const char *val);
rtr_status h5_put_i64(hid_t f, const char *key, int64_t val);
rtr_status h5_put_f64(hid_t f, const char *key, double val);
rtr_status h5_get_str(hid_t o, const char *path, const char *key, char **val);
/* h5_get_str that also reads a variable-length string (from the global
 * heap, which HDF5 1.10 can loop on when damaged): `rtr upgrade` only. */
rtr_status h5_get_str_v1(hid_t o, const char *path, const char *key, char **val);
rtr_status h5_get_i64(hid_t o, const char *path, const char *key, int64_t *val);

/* A whole byte string stored as a 1-D uint8 dataset (the catalog JSON). */
rtr_status h5_put_blob(hid_t f, const char *name, const char *data, size_t len);
rtr_status h5_get_blob(hid_t f, const char *path, const char *name, char **data, size_t *len);

/* Datasets of rows: a float32 matrix [rows x cols] (a 1-D float column
 * when cols is 0), a 1-D column of the other kinds (cols 1). Chunked (about 1 MiB), byte-shuffled and deflated; created with
 * 0 rows and grown by h5_append, or with their final row count. */
typedef enum {
    H5_F32,
    H5_I64,
    H5_U8,
    H5_I32,
    H5_VSTR /* variable-length UTF-8 strings (char *): write-only, for outputs users read with h5py */
} h5_kind;
rtr_status h5_make(hid_t f, const char *name, h5_kind kind, int64_t rows, int64_t cols, hid_t *d);
/* A float32 matrix of dense values (embeddings) chunked the same way but
 * stored uncompressed with a Fletcher-32 checksum per chunk: shuffle +
 * deflate saved only ~15% of their size (float mantissas do not compress)
 * and tripled the CPU time of every read (docs/FORMAT.md: 0.79 against
 * 0.25 CPU s, medians of 3 interleaved rounds), which training, scoring and
 * each kNN pass paid again. */
rtr_status h5_make_dense(hid_t f, const char *name, int64_t rows, int64_t cols, hid_t *d);
rtr_status h5_append(hid_t d, h5_kind kind, int64_t at, int64_t rows, int64_t cols, const void *data,
                     const char *name);
/* Write rows [row0, row0 + rows) of a dataset made with its final size. */
rtr_status h5_write_rows(hid_t d, h5_kind kind, int64_t row0, int64_t rows, int64_t cols, const void *data,
                         const char *name);

/* Open a dataset and check its rank and shape: rows (< 0: any, returned in
 * *got_rows when not NULL) and cols (for a matrix). RTR_ERR_FORMAT naming
 * path and dataset otherwise. */
rtr_status h5_dataset(hid_t f, const char *path, const char *name, h5_kind kind, int64_t rows, int64_t cols,
                      hid_t *d, int64_t *got_rows);
/* Open a one-dimensional string dataset (fixed or variable length) of
 * exactly rows rows whose stored bytes match them (schema version 1 shards
 * keep their text columns so). RTR_ERR_FORMAT naming path and dataset
 * otherwise. */
rtr_status h5_string_dataset(hid_t f, const char *path, const char *name, int64_t rows, hid_t *d);
/* Read rows [row0, row0 + rows) (cols each) into out. */
rtr_status h5_read_rows(hid_t d, h5_kind kind, int64_t row0, int64_t rows, int64_t cols, void *out,
                        const char *path, const char *name);

bool h5_exists(hid_t f, const char *name);

#endif
