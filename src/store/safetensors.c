/* safetensors reader (mmap + cJSON header, strict validation) and F32 writer.
 * See include/rtr/safetensors.h for the format and the contracts. */
#include "rtr/safetensors.h"
#include "common/json.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct rtr_safetensors {
    char *label;          /* file name used in messages */
    void *map;            /* mmap'ed file, or NULL for open_memory */
    size_t map_len;
    const uint8_t *buf;   /* data buffer (after the header) */
    size_t buf_len;
    cJSON *header;        /* owns the strings the tensors point at */
    rtr_st_tensor *tensors; /* sorted by data offset */
    size_t n;
};

static const struct {
    const char *name;
    rtr_dtype dtype;
    size_t size;
} dtypes[] = {
    {"F32", RTR_DTYPE_F32, 4}, {"F16", RTR_DTYPE_F16, 2}, {"BF16", RTR_DTYPE_BF16, 2},
    {"F64", RTR_DTYPE_F64, 8}, {"I64", RTR_DTYPE_I64, 8}, {"I32", RTR_DTYPE_I32, 4},
    {"I16", RTR_DTYPE_I16, 2}, {"I8", RTR_DTYPE_I8, 1},   {"U8", RTR_DTYPE_U8, 1},
    {"BOOL", RTR_DTYPE_BOOL, 1},
};

static size_t dtype_size(rtr_dtype d) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (dtypes[i].dtype == d) return dtypes[i].size;
    return 0;
}

/* A JSON number that is a non-negative integer below 2^53. */
static bool json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d < 9007199254740992.0) || floor(d) != d) return false;
    *out = (uint64_t)d;
    return true;
}

static int cmp_offset(const void *a, const void *b) {
    const rtr_st_tensor *x = a, *y = b;
    const uint8_t *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const rtr_st_tensor *const *)a)->name, (*(const rtr_st_tensor *const *)b)->name);
}

/* Fill t from one header entry; offsets are checked against buf_len. */
static rtr_status parse_entry(rtr_safetensors *st, const cJSON *e, rtr_st_tensor *t) {
    const char *L = st->label, *name = e->string;
    if (!cJSON_IsObject(e)) return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': entry is not an object", L, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': missing field 'dtype'", L, name);
    size_t k = 0;
    while (k < sizeof dtypes / sizeof *dtypes && strcmp(dtypes[k].name, dt->valuestring)) k++;
    if (k == sizeof dtypes / sizeof *dtypes)
        return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", L, name, dt->valuestring);
    t->name = name;
    t->dtype = dtypes[k].dtype;
    if (!cJSON_IsArray(shape)) return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': missing field 'shape'", L, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > RTR_ST_MAX_DIMS)
        return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': shape has %d dims (max %d)", L, name, ndim, RTR_ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        uint64_t d;
        if (!json_uint(cJSON_GetArrayItem(shape, i), &d) || d > ((uint64_t)1 << 40))
            return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a valid dimension", L, name, i);
        t->shape[i] = (int64_t)d;
        if (d && numel > UINT64_MAX / 16 / d)
            return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': shape too large", L, name);
        numel *= d;
    }
    t->numel = (int64_t)numel;
    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(cJSON_GetArrayItem(offs, 0), &begin) || !json_uint(cJSON_GetArrayItem(offs, 1), &end))
        return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': field 'data_offsets' is not [begin, end]", L, name);
    if (begin > end || end > st->buf_len)
        return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] outside the %zu-byte data buffer",
                        L, name, (unsigned long long)begin, (unsigned long long)end, st->buf_len);
    if (end - begin != numel * dtype_size(t->dtype))
        return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': %llu bytes in data_offsets but shape x dtype needs %llu",
                        L, name, (unsigned long long)(end - begin), (unsigned long long)(numel * dtype_size(t->dtype)));
    t->data = st->buf + begin;
    t->nbytes = (size_t)(end - begin);
    return RTR_OK;
}

/* Parse and validate the header of the image at st->map/st->map_len. */
static rtr_status parse(rtr_safetensors *st, const uint8_t *img, size_t len) {
    const char *L = st->label;
    if (len < 8) return rtr_fail(RTR_ERR_FORMAT, "%s: truncated: %zu bytes, no header length", L, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | img[i];
    if (hlen > RTR_ST_MAX_HEADER || hlen > len - 8)
        return rtr_fail(RTR_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes) or the %u-byte limit",
                        L, (unsigned long long)hlen, len, RTR_ST_MAX_HEADER);
    st->buf = img + 8 + hlen;
    st->buf_len = len - 8 - (size_t)hlen;
    /* the one checked parse needs a terminated text: a copy; a NUL byte
     * inside would end it early (what follows unread), so it is refused */
    const char *nul = memchr(img + 8, 0, (size_t)hlen), *why = "";
    if (nul) return rtr_fail(RTR_ERR_FORMAT, "%s: header holds a NUL byte at byte %zu", L, (size_t)(nul - (const char *)img));
    char *text = rtr_malloc((size_t)hlen + 1);
    if (!text) return RTR_ERR_NOMEM;
    memcpy(text, img + 8, (size_t)hlen);
    text[hlen] = '\0';
    st->header = rtr_json_parse(text, &why, NULL);
    free(text);
    if (!st->header || !cJSON_IsObject(st->header))
        return rtr_fail(RTR_ERR_FORMAT, "%s: header is not a JSON object%s", L, why);
    size_t count = 0;
    for (const cJSON *e = st->header->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) return rtr_fail(RTR_ERR_FORMAT, "%s: __metadata__ is not an object", L);
            for (const cJSON *m = e->child; m; m = m->next)
                if (!cJSON_IsString(m))
                    return rtr_fail(RTR_ERR_FORMAT, "%s: __metadata__ '%s' is not a string", L, m->string);
        } else {
            count++;
        }
    }
    st->tensors = rtr_calloc(count, sizeof *st->tensors);
    if (!st->tensors) return RTR_ERR_NOMEM;
    for (const cJSON *e = st->header->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        rtr_status s = parse_entry(st, e, &st->tensors[st->n]);
        if (s) return s;
        st->n++;
    }
    /* the tensors must tile the buffer exactly: no gap, overlap or tail */
    qsort(st->tensors, st->n, sizeof *st->tensors, cmp_offset);
    size_t pos = 0;
    for (size_t i = 0; i < st->n; i++) {
        size_t begin = (size_t)((const uint8_t *)st->tensors[i].data - st->buf);
        if (begin != pos)
            return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': data starts at %zu, expected %zu (gap or overlap)",
                            L, st->tensors[i].name, begin, pos);
        pos = begin + st->tensors[i].nbytes;
    }
    if (pos != st->buf_len)
        return rtr_fail(RTR_ERR_FORMAT, "%s: data buffer is %zu bytes but the tensors cover %zu", L, st->buf_len, pos);
    const rtr_st_tensor **byname = rtr_malloc(st->n * sizeof *byname);
    if (!byname) return RTR_ERR_NOMEM;
    for (size_t i = 0; i < st->n; i++) byname[i] = &st->tensors[i];
    qsort(byname, st->n, sizeof *byname, cmp_name);
    rtr_status s = RTR_OK;
    for (size_t i = 1; i < st->n && !s; i++)
        if (strcmp(byname[i - 1]->name, byname[i]->name) == 0)
            s = rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s' appears twice", L, byname[i]->name);
    free(byname);
    return s;
}

static rtr_status finish_open(rtr_safetensors *st, const uint8_t *img, size_t len, rtr_safetensors **out) {
    rtr_status s = st->label ? parse(st, img, len) : RTR_ERR_NOMEM;
    if (s) {
        rtr_safetensors_close(st);
        return s;
    }
    *out = st;
    return RTR_OK;
}

rtr_status rtr_safetensors_open_memory(rtr_safetensors **out, const void *data, size_t len,
                                       const char *label) {
    *out = NULL;
    rtr_safetensors *st = rtr_calloc(1, sizeof *st);
    if (!st) return RTR_ERR_NOMEM;
    st->label = rtr_strdup(label ? label : "<memory>");
    return finish_open(st, data, len, out);
}

rtr_status rtr_safetensors_open(rtr_safetensors **out, const char *path) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return rtr_fail(RTR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return rtr_fail(RTR_ERR_IO, "%s: not a regular file", path);
    }
    rtr_safetensors *st = rtr_calloc(1, sizeof *st);
    if (!st) {
        close(fd);
        return RTR_ERR_NOMEM;
    }
    st->label = rtr_strdup(path);
    if (sb.st_size > 0) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            rtr_safetensors_close(st);
            return rtr_fail(RTR_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        }
        st->map = m;
        st->map_len = (size_t)sb.st_size;
    }
    close(fd);
    return finish_open(st, st->map, st->map_len, out);
}

void rtr_safetensors_close(rtr_safetensors *st) {
    if (!st) return;
    if (st->map) munmap(st->map, st->map_len);
    cJSON_Delete(st->header);
    free(st->tensors);
    free(st->label);
    free(st);
}

size_t rtr_safetensors_count(const rtr_safetensors *st) { return st->n; }

const rtr_st_tensor *rtr_safetensors_tensor(const rtr_safetensors *st, size_t i) {
    return i < st->n ? &st->tensors[i] : NULL;
}

const rtr_st_tensor *rtr_safetensors_find(const rtr_safetensors *st, const char *name) {
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *rtr_safetensors_metadata(const rtr_safetensors *st, const char *key) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(st->header, "__metadata__");
    const cJSON *v = m ? cJSON_GetObjectItemCaseSensitive(m, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const void *rtr_safetensors_data(const rtr_safetensors *st, size_t *nbytes) {
    *nbytes = st->buf_len;
    return st->buf;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000 | man << 13;
    } else if (exp) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else if (man) { /* subnormal: renormalise */
        int e = -1;
        do { e++; man <<= 1; } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

rtr_status rtr_safetensors_read_f32(const rtr_safetensors *st, float *dst, const char *name,
                                    int ndim, const int64_t *shape) {
    const rtr_st_tensor *t = rtr_safetensors_find(st, name);
    if (!t) return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s' not found", st->label, name);
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = shape[i] < 0 || shape[i] == t->shape[i];
    if (!ok) {
        char want[128] = "", got[128] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "", (long long)shape[i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        return rtr_fail(RTR_ERR_FORMAT, "%s: tensor '%s': shape [%s], expected [%s]", st->label, name, got, want);
    }
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case RTR_DTYPE_F32:
        memcpy(dst, p, t->nbytes);
        break;
    case RTR_DTYPE_F16:
    case RTR_DTYPE_BF16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            if (t->dtype == RTR_DTYPE_F16) {
                dst[i] = half_to_float(h);
            } else {
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&dst[i], &bits, sizeof bits);
            }
        }
        break;
    default:
        return rtr_fail(RTR_ERR_UNSUPPORTED, "%s: tensor '%s': dtype is not F32, F16 or BF16", st->label, name);
    }
    return RTR_OK;
}

rtr_status rtr_safetensors_write(const char *path, const rtr_st_write_tensor *tensors, size_t n,
                                 const char *const *meta_keys, const char *const *meta_values,
                                 size_t n_meta) {
    cJSON *h = cJSON_CreateObject();
    if (!h) return rtr_fail(RTR_ERR_NOMEM, "%s: out of memory building the header", path);
    rtr_status s = RTR_OK;
    if (n_meta) {
        cJSON *m = cJSON_AddObjectToObject(h, "__metadata__");
        for (size_t i = 0; m && i < n_meta; i++)
            if (!cJSON_AddStringToObject(m, meta_keys[i], meta_values[i])) m = NULL;
        if (!m) s = rtr_fail(RTR_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n && !s; i++) {
        const rtr_st_write_tensor *t = &tensors[i];
        if (!t->name || strcmp(t->name, "__metadata__") == 0 || cJSON_GetObjectItemCaseSensitive(h, t->name) ||
            t->ndim < 0 || t->ndim > RTR_ST_MAX_DIMS) {
            s = rtr_fail(RTR_ERR_INVALID, "%s: tensor %zu ('%s'): bad or duplicate name or ndim", path, i,
                         t->name ? t->name : "(null)");
            break;
        }
        uint64_t numel = 1;
        cJSON *e = cJSON_AddObjectToObject(h, t->name);
        cJSON *shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
        for (int d = 0; shape && d < t->ndim; d++) {
            numel *= (uint64_t)t->shape[d];
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        }
        cJSON *offs = shape ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
        if (!offs || !cJSON_AddStringToObject(e, "dtype", "F32")) {
            s = rtr_fail(RTR_ERR_NOMEM, "%s: out of memory building the header", path);
            break;
        }
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += numel * 4;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    }
    char *json = s ? NULL : cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (s) return s;
    if (!json) return rtr_fail(RTR_ERR_NOMEM, "%s: out of memory printing the header", path);
    /* pad the header with spaces so the data buffer starts 8-byte aligned */
    size_t jlen = strlen(json), hlen = (jlen + 7) / 8 * 8;
    char *tmp = rtr_tmp_path(path);
    FILE *f = tmp ? fopen(tmp, "wb") : NULL;
    if (!f) {
        s = tmp ? rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno)) : RTR_ERR_NOMEM;
        free(json);
        free(tmp);
        return s;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(json, 1, jlen, f) == jlen;
    for (size_t i = jlen; ok && i < hlen; i++) ok = fputc(' ', f) != EOF;
    for (size_t i = 0; ok && i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++) numel *= (size_t)tensors[i].shape[d];
        ok = fwrite(tensors[i].data, sizeof(float), numel, f) == numel;
    }
    ok = fclose(f) == 0 && ok;
    free(json);
    if (ok) {
        s = rtr_commit_file(tmp, path);
    } else {
        unlink(tmp);
        s = rtr_fail(RTR_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    }
    free(tmp);
    return s;
}
