/* Shard store and catalog: schema round trip, adding matrices, and the bad
 * inputs a reader must reject (another schema version, a truncated file,
 * malformed catalogs). */
#include "rtr/store.h"
#include "test.h"
#include "common/util.h"

#include <hdf5.h>
#include <string.h>
#include <unistd.h>

static const char *CATALOG =
    "{\"models\":[{\"name\":\"m-small\",\"description\":\"a small model\",\"price_in\":0.1,\"price_out\":0.4},"
    "{\"name\":\"m-large\",\"description\":\"a large model \\u00e9\\u4e2d\"}],"
    "\"strategies\":[{\"name\":\"direct\",\"description\":\"answer only\"},{\"name\":\"cot\",\"description\":\"think\"}],"
    "\"pairs\":[[\"m-small\",\"direct\"],[\"m-small\",\"cot\"],[\"m-large\",\"cot\"]]}";

static void make_shard(rtr_shard *sh, int64_t n, int32_t k) {
    CHECK(rtr_shard_alloc(sh, n, k) == RTR_OK);
    for (int64_t i = 0; i < n; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "q%lld", (long long)i);
        sh->id[i] = rtr_strdup(buf);
        sh->text[i] = rtr_sprintf("What is %lld + 1? \xe2\x88\x91 caf\xc3\xa9", (long long)i);
        sh->dataset[i] = rtr_strdup(i % 2 ? "gsm8k" : "math");
        sh->split[i] = rtr_strdup(i % 3 ? "train" : "test");
        for (int32_t j = 0; j < k; j++) {
            size_t c = (size_t)i * (size_t)k + (size_t)j;
            if ((i + j) % 5 == 0) continue; /* leave some missing */
            sh->correct[c] = (float)((i * 7 + j) % 4) / 3.0f;
            sh->tokens[c] = (float)(i * 10 + j);
            sh->cost[c] = (float)(i + j) * 1e-4f;
        }
    }
}

static bool same_float(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

static void test_catalog_round_trip(void) {
    rtr_catalog a, b;
    CHECK(rtr_catalog_parse_json(&a, CATALOG, "inline") == RTR_OK);
    CHECK(a.n_models == 2 && a.n_strategies == 2 && a.n_pairs == 3);
    CHECK(rtr_catalog_find_pair(&a, "m-large", "cot") == 2);
    CHECK(rtr_catalog_find_pair(&a, "m-large", "direct") == -1);
    CHECK(isnan(a.models[1].price_in) && a.models[0].price_out == 0.4);
    char *json = rtr_catalog_to_json(&a);
    CHECK(rtr_catalog_parse_json(&b, json, "round trip") == RTR_OK);
    CHECK(rtr_catalog_hash(&a) == rtr_catalog_hash(&b));
    CHECK(!strcmp(b.models[1].description, a.models[1].description));
    char *pn = rtr_catalog_pair_name(&b, 1);
    CHECK(!strcmp(pn, "m-small|cot"));
    free(pn);
    free(json);
    rtr_catalog_free(&a);
    rtr_catalog_free(&b);
}

static void test_catalog_full_grid(void) {
    rtr_catalog c;
    CHECK(rtr_catalog_parse_json(&c, "{\"models\":[{\"name\":\"a\"},{\"name\":\"b\"}],"
                                     "\"strategies\":[{\"name\":\"x\"},{\"name\":\"y\"},{\"name\":\"z\"}]}",
                                 "grid") == RTR_OK);
    CHECK(c.n_pairs == 6);
    CHECK(rtr_catalog_find_pair(&c, "b", "x") == 3);
    CHECK(!strcmp(c.models[0].description, "a")); /* description defaults to the name */
    rtr_catalog_free(&c);
}

static void expect_catalog_error(const char *json, const char *needle) {
    rtr_catalog c;
    rtr_status s = rtr_catalog_parse_json(&c, json, "bad.json");
    CHECK_MSG(s == RTR_ERR_FORMAT, "accepted: %s", json);
    CHECK_MSG(strstr(rtr_last_error(), needle) != NULL, "message '%s' lacks '%s'", rtr_last_error(), needle);
    CHECK_MSG(strstr(rtr_last_error(), "bad.json") != NULL, "message '%s' lacks the file", rtr_last_error());
}

static void test_catalog_errors(void) {
    expect_catalog_error("{\"models\": [", "not valid JSON");
    expect_catalog_error("{\"strategies\":[{\"name\":\"x\"}]}", "\"models\"");
    expect_catalog_error("{\"models\":[{\"name\":\"a\"},{\"name\":\"a\"}],\"strategies\":[{\"name\":\"x\"}]}",
                         "duplicate name");
    expect_catalog_error("{\"models\":[{\"name\":\"a|b\"}],\"strategies\":[{\"name\":\"x\"}]}", "models[0]");
    expect_catalog_error("{\"models\":[{\"name\":\"a\",\"price_in\":-1}],\"strategies\":[{\"name\":\"x\"}]}",
                         "price_in");
    expect_catalog_error("{\"models\":[{\"name\":\"a\"}],\"strategies\":[{\"name\":\"x\"}],\"pairs\":[[\"a\",\"y\"]]}",
                         "unknown strategy");
    expect_catalog_error("{\"models\":[{\"name\":\"ok\xff\xfe\"}],\"strategies\":[{\"name\":\"x\"}]}", "invalid UTF-8");
}

static void test_shard_round_trip(void) {
    rtr_catalog cat, back_cat;
    CHECK(rtr_catalog_parse_json(&cat, CATALOG, "inline") == RTR_OK);
    rtr_shard sh, back;
    make_shard(&sh, 37, cat.n_pairs);
    const char *path = "rt_shard.h5";
    CHECK(rtr_shard_write(path, &cat, &sh) == RTR_OK);
    int64_t n = -1;
    CHECK(rtr_shard_count(path, &n) == RTR_OK && n == 37);
    CHECK(rtr_shard_read(path, &back, &back_cat) == RTR_OK);
    CHECK(back.n == 37 && back.k == 3);
    CHECK(rtr_catalog_hash(&cat) == rtr_catalog_hash(&back_cat));
    for (int64_t i = 0; i < back.n; i++) {
        CHECK(!strcmp(back.id[i], sh.id[i]));
        CHECK(!strcmp(back.text[i], sh.text[i]));
        CHECK(!strcmp(back.dataset[i], sh.dataset[i]));
        CHECK(!strcmp(back.split[i], sh.split[i]));
    }
    for (size_t c = 0; c < 37 * 3; c++) {
        CHECK(same_float(back.correct[c], sh.correct[c]));
        CHECK(same_float(back.tokens[c], sh.tokens[c]));
        CHECK(same_float(back.cost[c], sh.cost[c]));
    }
    CHECK(!rtr_path_exists("rt_shard.h5.tmp") && access(path, R_OK) == 0);
    rtr_shard_free(&back);
    rtr_catalog_free(&back_cat);
    rtr_shard_free(&sh);
    rtr_catalog_free(&cat);
}

static void test_shard_put_matrices(void) {
    rtr_catalog cat;
    CHECK(rtr_catalog_parse_json(&cat, CATALOG, "inline") == RTR_OK);
    rtr_shard sh;
    make_shard(&sh, 5, cat.n_pairs);
    const char *path = "put_shard.h5";
    CHECK(rtr_shard_write(path, &cat, &sh) == RTR_OK);
    float emb[5 * 4], emb2[5 * 4];
    for (int i = 0; i < 20; i++) { emb[i] = (float)i * 0.5f; emb2[i] = -(float)i; }
    const char *keys[] = {"encoder", "encoder_hash"}, *vals[] = {"test-enc", "abc123"};
    rtr_matrix_out m = {"/embedding/query", emb, 5, 4, 2, keys, vals};
    CHECK(rtr_shard_put_matrices(path, &m, 1) == RTR_OK);
    rtr_matrix_out r = {"/routing/p_correct", emb, 5, 4, 0, NULL, NULL};
    CHECK(rtr_shard_put_matrices(path, &r, 1) == RTR_OK);
    /* Replace the embedding: the other datasets and attributes must survive. */
    vals[1] = "def456";
    m.data = emb2;
    CHECK(rtr_shard_put_matrices(path, &m, 1) == RTR_OK);
    float *got = NULL;
    int64_t rows = 0, cols = 0;
    CHECK(rtr_shard_read_matrix(path, "/embedding/query", &got, &rows, &cols) == RTR_OK);
    CHECK(rows == 5 && cols == 4 && got && got[7] == -7.0f);
    free(got);
    CHECK(rtr_shard_has(path, "/routing/p_correct"));
    CHECK(!rtr_shard_has(path, "/routing/tokens"));
    char *h = rtr_shard_read_attr(path, "/embedding/query", "encoder_hash");
    CHECK(h && !strcmp(h, "def456"));
    free(h);
    rtr_shard back;
    CHECK(rtr_shard_read(path, &back, NULL) == RTR_OK && back.n == 5 && !strcmp(back.text[3], sh.text[3]));
    rtr_shard_free(&back);
    CHECK(rtr_shard_read_matrix(path, "/embedding/none", &got, &rows, &cols) == RTR_ERR_FORMAT);
    CHECK(strstr(rtr_last_error(), "/embedding/none") != NULL);
    rtr_shard_free(&sh);
    rtr_catalog_free(&cat);
}

static void test_shard_bad_files(void) {
    rtr_catalog cat;
    CHECK(rtr_catalog_parse_json(&cat, CATALOG, "inline") == RTR_OK);
    rtr_shard sh, back;
    make_shard(&sh, 2000, cat.n_pairs);
    CHECK(rtr_shard_write("ver_shard.h5", &cat, &sh) == RTR_OK);
    CHECK(rtr_shard_write("trunc_shard.h5", &cat, &sh) == RTR_OK);
    rtr_shard_free(&sh);
    rtr_catalog_free(&cat);

    /* Another schema version: rewrite the version attribute. */
    hid_t f = H5Fopen("ver_shard.h5", H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "rtr_schema_version", H5P_DEFAULT);
    int64_t v = RTR_SCHEMA_VERSION + 1;
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Fclose(f);
    CHECK(rtr_shard_read("ver_shard.h5", &back, NULL) == RTR_ERR_UNSUPPORTED);
    CHECK(strstr(rtr_last_error(), "ver_shard.h5") && strstr(rtr_last_error(), "rtr_schema_version"));

    /* A truncated file (a copy cut in half, as a killed transfer leaves it). */
    char *data;
    size_t len;
    CHECK(rtr_read_file("trunc_shard.h5", &data, &len) == RTR_OK);
    FILE *o = fopen("trunc_shard.h5", "wb");
    fwrite(data, 1, len / 2, o);
    fclose(o);
    free(data);
    rtr_status s = rtr_shard_read("trunc_shard.h5", &back, NULL);
    CHECK(s == RTR_ERR_FORMAT);
    CHECK(strstr(rtr_last_error(), "trunc_shard.h5") != NULL);

    CHECK(rtr_shard_read("no_such_shard.h5", &back, NULL) == RTR_ERR_IO);
    o = fopen("not_hdf5.h5", "wb");
    fputs("hello", o);
    fclose(o);
    CHECK(rtr_shard_read("not_hdf5.h5", &back, NULL) == RTR_ERR_FORMAT);
}

TEST_MAIN(T(test_catalog_round_trip), T(test_catalog_full_grid), T(test_catalog_errors), T(test_shard_round_trip),
          T(test_shard_put_matrices), T(test_shard_bad_files))
