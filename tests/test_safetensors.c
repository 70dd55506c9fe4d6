/* safetensors reader and writer: round trip, dtype conversion, and every kind
 * of bad input the reader must refuse with a message naming file and field. */
#include "rtr/safetensors.h"
#include "test.h"

#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[256];

static void remove_tmp_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
}

static const char *tmp_file(const char *name) {
    static char path[512];
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/rtr_test_st_XXXXXX");
        if (!mkdtemp(tmp_dir)) abort();
        atexit(remove_tmp_dir);
    }
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return path;
}

/* An in-memory image: 8-byte length + header + data bytes. */
static size_t make_image(uint8_t *out, const char *header, const void *data, size_t data_len) {
    size_t hl = strlen(header);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(out + 8, header, hl);
    memcpy(out + 8 + hl, data, data_len);
    return 8 + hl + data_len;
}

/* Open an image and expect failure whose message contains `needle`. */
static void expect_bad(const char *header, size_t data_len, const char *needle) {
    static uint8_t img[4096], zeros[1024];
    size_t n = make_image(img, header, zeros, data_len);
    rtr_safetensors *st = NULL;
    rtr_status s = rtr_safetensors_open_memory(&st, img, n, "bad.safetensors");
    CHECK_MSG(s == RTR_ERR_FORMAT && st == NULL, "header %s accepted", header);
    CHECK_MSG(strstr(rtr_last_error(), needle) && strstr(rtr_last_error(), "bad.safetensors"),
              "message '%s' lacks '%s'", rtr_last_error(), needle);
}

static void test_round_trip(void) {
    float a[6] = {1, -2, 3.5f, 4, 5, 6}, b[3] = {7, 8, 9};
    rtr_st_write_tensor ts[] = {{"w.a", a, 2, {2, 3}}, {"b", b, 1, {3}}};
    const char *k[] = {"config"}, *v[] = {"{\"hidden\": 3}"};
    const char *path = tmp_file("rt.safetensors");
    CHECK(rtr_safetensors_write(path, ts, 2, k, v, 1) == RTR_OK);
    rtr_safetensors *st = NULL;
    CHECK(rtr_safetensors_open(&st, path) == RTR_OK);
    if (!st) return;
    CHECK(rtr_safetensors_count(st) == 2);
    const rtr_st_tensor *t = rtr_safetensors_find(st, "w.a");
    CHECK(t && t->dtype == RTR_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    CHECK(strcmp(rtr_safetensors_metadata(st, "config"), v[0]) == 0);
    CHECK(rtr_safetensors_metadata(st, "nope") == NULL);
    float got[6] = {0};
    CHECK(rtr_safetensors_read_f32(st, got, "w.a", 2, (int64_t[]){2, -1}) == RTR_OK);
    CHECK(memcmp(got, a, sizeof a) == 0);
    CHECK(rtr_safetensors_read_f32(st, got, "b", 1, (int64_t[]){3}) == RTR_OK && got[2] == 9);
    CHECK(rtr_safetensors_read_f32(st, got, "b", 1, (int64_t[]){4}) == RTR_ERR_FORMAT);
    CHECK(strstr(rtr_last_error(), "'b'") && strstr(rtr_last_error(), "[3]"));
    CHECK(rtr_safetensors_read_f32(st, got, "missing", 1, (int64_t[]){3}) == RTR_ERR_FORMAT);
    size_t nb;
    rtr_safetensors_data(st, &nb);
    CHECK(nb == sizeof a + sizeof b);
    rtr_safetensors_close(st);
    /* no temporary left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", tmp_dir);
    CHECK(system(cmd) != 0);
}

static void test_half_types(void) {
    /* F16: 1.0, -2.0, 65504, 2^-24 (smallest subnormal); BF16: 1.0, -3.0 */
    uint16_t f16[4] = {0x3c00, 0xc000, 0x7bff, 0x0001}, bf16[2] = {0x3f80, 0xc040};
    uint8_t data[12], img[512];
    memcpy(data, f16, 8);
    memcpy(data + 8, bf16, 4);
    size_t n = make_image(img,
                          "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                          "\"g\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]}}",
                          data, sizeof data);
    rtr_safetensors *st = NULL;
    CHECK(rtr_safetensors_open_memory(&st, img, n, "half") == RTR_OK);
    if (!st) return;
    float out[4];
    CHECK(rtr_safetensors_read_f32(st, out, "h", 1, (int64_t[]){4}) == RTR_OK);
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 65504.0f && out[3] == ldexpf(1.0f, -24));
    CHECK(rtr_safetensors_read_f32(st, out, "g", 1, (int64_t[]){2}) == RTR_OK);
    CHECK(out[0] == 1.0f && out[1] == -3.0f);
    CHECK(rtr_safetensors_tensor(st, 0)->dtype == RTR_DTYPE_F16); /* sorted by offset */
    rtr_safetensors_close(st);
}

static void test_bad_headers(void) {
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "not a JSON object");
    expect_bad("[1,2]", 0, "not a JSON object");
    expect_bad("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'Q4'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'a': 8 bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "outside");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "outside");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "'shape'");
    expect_bad("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'dtype'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap or overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "cover 4");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "gap or overlap");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dims");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}}", 4,
               "shape");
    /* cJSON read a \\u without 4 hex digits as NUL, cutting the string, and
     * ignored text after the object: both were accepted */
    expect_bad("{\"__metadata__\":{\"k\":\"a\\uzzzzb\"}}", 0, "column 24: \\u is not followed by 4 hex digits");
    expect_bad("{\"__metadata__\":{}} {}", 0, "more text after the JSON value");
}

static void test_truncated_and_missing(void) {
    rtr_safetensors *st = NULL;
    CHECK(rtr_safetensors_open(&st, tmp_file("does-not-exist")) == RTR_ERR_IO && !st);
    CHECK(strstr(rtr_last_error(), "does-not-exist") != NULL);
    /* header length claims more than the file holds */
    uint8_t img[64] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK(rtr_safetensors_open_memory(&st, img, 10, "t") == RTR_ERR_FORMAT);
    CHECK(strstr(rtr_last_error(), "header length") != NULL);
    CHECK(rtr_safetensors_open_memory(&st, img, 5, "t") == RTR_ERR_FORMAT);
    CHECK(strstr(rtr_last_error(), "truncated") != NULL);
    /* a real file cut short: the data buffer no longer covers the tensors */
    float a[4] = {1, 2, 3, 4};
    rtr_st_write_tensor t = {"a", a, 1, {4}};
    const char *path = tmp_file("cut.safetensors");
    CHECK(rtr_safetensors_write(path, &t, 1, NULL, NULL, 0) == RTR_OK);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    CHECK(truncate(path, size - 3) == 0);
    CHECK(rtr_safetensors_open(&st, path) == RTR_ERR_FORMAT && !st);
    CHECK(strstr(rtr_last_error(), "cut.safetensors") && strstr(rtr_last_error(), "'a'"));
    CHECK(truncate(path, 0) == 0);
    CHECK(rtr_safetensors_open(&st, path) == RTR_ERR_FORMAT);
}

static void test_write_rejects(void) {
    float a[1] = {1};
    rtr_st_write_tensor ts[] = {{"x", a, 1, {1}}, {"x", a, 1, {1}}};
    const char *path = tmp_file("dup.safetensors");
    CHECK(rtr_safetensors_write(path, ts, 2, NULL, NULL, 0) == RTR_ERR_INVALID);
    CHECK(access(path, F_OK) != 0);
    CHECK(rtr_safetensors_write("/nonexistent-dir/x.safetensors", ts, 1, NULL, NULL, 0) == RTR_ERR_IO);
}

/* Fuzz seeds and past crash inputs (tools/run-fuzz) must open or fail
 * cleanly; the seed is a valid file. */
static void test_fuzz_inputs(void) {
    const char *dirs[] = {RTR_SOURCE_DIR "/tests/fuzz/corpus/safetensors", RTR_SOURCE_DIR "/tests/fuzz/regress/safetensors"};
    int seen = 0;
    for (int d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        for (struct dirent *e; dir && (e = readdir(dir));) {
            if (e->d_name[0] == '.') continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            rtr_safetensors *st = NULL;
            rtr_status s = rtr_safetensors_open(&st, path);
            CHECK_MSG(s == RTR_OK || s == RTR_ERR_FORMAT, "%s: status %d", path, s);
            if (d == 0) CHECK_MSG(s == RTR_OK, "seed %s: %s", path, rtr_last_error());
            rtr_safetensors_close(st);
            seen++;
        }
        if (dir) closedir(dir);
    }
    CHECK(seen >= 1);
}

TEST_MAIN(T(test_fuzz_inputs), T(test_round_trip), T(test_half_types), T(test_bad_headers), T(test_truncated_and_missing),
          T(test_write_rejects))
