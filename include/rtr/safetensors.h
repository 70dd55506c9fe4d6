/* safetensors files: a memory-mapped reader (encoder weights, predictor
 * checkpoints) and a small F32 writer (predictor checkpoints).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"key": "string value", ...}}, then the data buffer; offsets
 * are relative to the buffer, tensors cover it exactly without overlap. The
 * reader checks all of this against the file size and reports the file and
 * tensor name at fault. */
#ifndef RTR_SAFETENSORS_H
#define RTR_SAFETENSORS_H

#include "rtr/rtr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RTR_ST_MAX_DIMS 8
/* Header size limit: larger headers are rejected as malformed (untrusted input). */
#define RTR_ST_MAX_HEADER (100u << 20)

typedef enum {
    RTR_DTYPE_F32 = 0,
    RTR_DTYPE_F16,
    RTR_DTYPE_BF16,
    RTR_DTYPE_F64,
    RTR_DTYPE_I64,
    RTR_DTYPE_I32,
    RTR_DTYPE_I16,
    RTR_DTYPE_I8,
    RTR_DTYPE_U8,
    RTR_DTYPE_BOOL
} rtr_dtype;

/* One tensor of an open file. Pointers stay valid until the file is closed. */
typedef struct {
    const char *name;
    rtr_dtype dtype;
    int ndim;
    int64_t shape[RTR_ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* into the mapping; not necessarily aligned */
    size_t nbytes;
} rtr_st_tensor;

typedef struct rtr_safetensors rtr_safetensors;

/* Map and validate path. On success *out owns the mapping (close with
 * rtr_safetensors_close). Errors: RTR_ERR_IO (missing/unreadable),
 * RTR_ERR_FORMAT (truncated, bad JSON, offsets/shape/dtype inconsistent). */
RTR_API rtr_status rtr_safetensors_open(rtr_safetensors **out, const char *path);

/* Validate an in-memory image (same checks as open). The file does not copy
 * or own `data`, which must outlive it; `label` names it in messages. Used
 * by the fuzz harness and tests. */
RTR_API rtr_status rtr_safetensors_open_memory(rtr_safetensors **out, const void *data, size_t len,
                                       const char *label);

RTR_API void rtr_safetensors_close(rtr_safetensors *st);

/* Number of tensors, and the i-th in file order (by offset). */
RTR_API size_t rtr_safetensors_count(const rtr_safetensors *st);
RTR_API const rtr_st_tensor *rtr_safetensors_tensor(const rtr_safetensors *st, size_t i);
/* Tensor by name, or NULL. */
RTR_API const rtr_st_tensor *rtr_safetensors_find(const rtr_safetensors *st, const char *name);
/* A "__metadata__" string value, or NULL. Valid until close. */
RTR_API const char *rtr_safetensors_metadata(const rtr_safetensors *st, const char *key);
/* The whole data buffer (for hashing the weights). */
RTR_API const void *rtr_safetensors_data(const rtr_safetensors *st, size_t *nbytes);

/* Copy tensor `name` into dst as float32 (F32/F16/BF16 converted), checking
 * it exists with exactly the ndim/shape given (shape[i] < 0 matches any).
 * dst holds numel floats. Errors name the file and the tensor. */
RTR_API rtr_status rtr_safetensors_read_f32(const rtr_safetensors *st, float *dst, const char *name,
                                    int ndim, const int64_t *shape);

/* A float32 tensor to write: data points at numel = Π shape floats. */
typedef struct {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[RTR_ST_MAX_DIMS];
} rtr_st_write_tensor;

/* Write tensors (F32, in the given order) and metadata string pairs
 * (meta_keys[i] -> meta_values[i], n_meta may be 0) to path, through a
 * temporary name renamed on success, so a failed write leaves no file.
 * Names must be unique and not "__metadata__". */
RTR_API rtr_status rtr_safetensors_write(const char *path, const rtr_st_write_tensor *tensors, size_t n,
                                 const char *const *meta_keys, const char *const *meta_values,
                                 size_t n_meta);

#ifdef __cplusplus
}
#endif
#endif
