/* The store: catalog round trip and errors; shards written a block at a
 * time and read back through the row reader (every column, chunk sizes
 * that cut shards, the filter); the content hash; stage outputs beside the
 * shards (complete, incomplete, mixed, stale, named); validation on open
 * of every manifest and shard field a user or a disk can spoil; values
 * checked as read; embeddings gathered onto the heap or memory-mapped;
 * temporaries of killed runs removed. */
#include "corpus_fixture.h"
#include "common/files.h"

#include <hdf5.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *CATALOG =
    "{\"models\":[{\"name\":\"m-small\",\"description\":\"a small model\",\"price_in\":0.1,\"price_out\":0.4},"
    "{\"name\":\"m-large\",\"description\":\"a large model \\u00e9\\u4e2d\"}],"
    "\"strategies\":[{\"name\":\"direct\",\"description\":\"answer only\"},{\"name\":\"cot\",\"description\":\"think\"}],"
    "\"pairs\":[[\"m-small\",\"direct\"],[\"m-small\",\"cot\"],[\"m-large\",\"cot\"]]}";

/* Rows whose every value says where it came from: shard `tag`, row i. */
static void make_rows(rtr_shard *sh, int64_t n, int32_t k, int tag) {
    CHECK(rtr_shard_alloc(sh, n, k) == RTR_OK);
    for (int64_t i = 0; i < n; i++) {
        sh->id[i] = rtr_sprintf("q%d-%lld", tag, (long long)i);
        sh->text[i] = rtr_sprintf("What is %lld + 1? \xe2\x88\x91 caf\xc3\xa9%s", (long long)i, i % 7 ? "" : " ,\"quoted\"");
        sh->dataset[i] = rtr_strdup(i % 2 ? "gsm8k" : "math");
        sh->split[i] = rtr_strdup(i % 3 ? "train" : "test");
        for (int32_t j = 0; j < k; j++) {
            size_t c = (size_t)i * (size_t)k + (size_t)j;
            if ((i + j) % 5 == 0) continue; /* leave some missing */
            sh->correct[c] = (float)((i * 7 + j) % 4) / 3.0f;
            sh->tokens[c] = (float)(tag * 1000 + i * 10 + j);
            sh->cost[c] = (float)(i + j) * 1e-4f;
        }
    }
}

static bool same_float(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

static void test_catalog_round_trip(void) {
    rtr_catalog a, b, c;
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
    /* the copy is deep: the same hash, and it outlives the original */
    CHECK(rtr_catalog_copy(&c, &a) == RTR_OK);
    rtr_catalog_free(&a);
    CHECK(rtr_catalog_hash(&c) == rtr_catalog_hash(&b) && !strcmp(c.strategies[1].name, "cot") && c.pair_model[2] == 1);
    free(pn);
    free(json);
    rtr_catalog_free(&b);
    rtr_catalog_free(&c);
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
    expect_catalog_error("{\"models\":[{\"name\":\"a\"}],\"strategies\":[{\"name\":\"x\"}]}\n{}",
                         "more text after the JSON value, at line 2");
    expect_catalog_error(" \n", "the file is empty");
    expect_catalog_error("{\"strategies\":[{\"name\":\"x\"}]}", "\"models\"");
    expect_catalog_error("{\"models\":[{\"name\":\"a\"},{\"name\":\"a\"}],\"strategies\":[{\"name\":\"x\"}]}",
                         "duplicate name");
    expect_catalog_error("{\"models\":[{\"name\":\"a|b\"}],\"strategies\":[{\"name\":\"x\"}]}", "models[0]");
    expect_catalog_error("{\"models\":[{\"name\":\"a\",\"price_in\":-1}],\"strategies\":[{\"name\":\"x\"}]}",
                         "price_in");
    expect_catalog_error("{\"models\":[{\"name\":\"a\"}],\"strategies\":[{\"name\":\"x\"}],\"pairs\":[[\"a\",\"y\"]]}",
                         "unknown strategy");
    expect_catalog_error("{\"models\":[{\"name\":\"ok\xff\xfe\"}],\"strategies\":[{\"name\":\"x\"}]}", "invalid UTF-8");
    /* a parse error names its line and column (characters, not bytes) and,
     * where cJSON's failure says nothing, the problem: half a surrogate
     * pair (high alone, high before a non-surrogate, low alone), a \u
     * without 4 hex digits, nesting past cJSON's limit (was "not valid
     * JSON" alone) */
    expect_catalog_error("{\"models\": [\n  {\"name\": \"\xc3\xa9\\ud800\"}]}",
                         "not valid JSON at line 2, column 14: lone UTF-16 surrogate \\ud800 (a high surrogate");
    expect_catalog_error("{\"models\": [{\"name\": \"a\\uD83D\\u0041\"}]}", "lone UTF-16 surrogate \\uD83D");
    expect_catalog_error("{\"models\": [{\"name\": \"a\\udc00\"}]}",
                         "column 24: lone UTF-16 surrogate \\udc00 (a low surrogate");
    /* cJSON takes that one, as U+0000: the name was read as "a" */
    expect_catalog_error("{\"models\": [{\"name\": \"a\\u12g4\"}]}",
                         "at line 1, column 24: \\u is not followed by 4 hex digits");
    char deep[2100];
    int n = snprintf(deep, sizeof deep, "{\"models\": ");
    for (int i = 0; i < 1010; i++) deep[n++] = '[';
    deep[n] = 0;
    expect_catalog_error(deep, "at line 1, column 1011: nesting deeper than 1000 arrays and objects");
    /* a pair is fine */
    rtr_catalog ok;
    CHECK_MSG(rtr_catalog_parse_json(&ok, "{\"models\":[{\"name\":\"a\\ud83d\\ude00\"}],\"strategies\":[{\"name\":\"x\"}]}",
                                     "pair") == RTR_OK, "%s", rtr_last_error());
    rtr_catalog_free(&ok);
}

/* A two-shard corpus (37 and 20 rows), its rows kept for comparison. */
static char *two_shards(const char *name, rtr_catalog *cat, rtr_shard rows[2]) {
    char *dir = fixture_dir(name);
    CHECK(rtr_catalog_parse_json(cat, CATALOG, "inline") == RTR_OK);
    make_rows(&rows[0], 37, cat->n_pairs, 0);
    make_rows(&rows[1], 20, cat->n_pairs, 1);
    CHECK(fixture_corpus(dir, cat, rows, 2, 8) == RTR_OK);
    return dir;
}

static void free_two(char *dir, rtr_catalog *cat, rtr_shard rows[2]) {
    rtr_remove_tree(dir);
    free(dir);
    rtr_shard_free(&rows[0]);
    rtr_shard_free(&rows[1]);
    rtr_catalog_free(cat);
}

/* Every column of every row, read in chunks of `chunk` rows, equals what was written. */
static void check_all_rows(const rtr_corpus *c, const rtr_shard rows[2], int64_t chunk) {
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_ID | RTR_COL_TEXT | RTR_COL_DATASET | RTR_COL_SPLIT | RTR_COL_CORRECT | RTR_COL_TOKENS | RTR_COL_COST;
    q.chunk_rows = chunk;
    rtr_row_reader *r;
    CHECK(rtr_row_reader_open(&r, c, &q) == RTR_OK);
    rtr_rows ch;
    int shard = -1;
    int64_t row0 = -1, seen[2] = {0, 0};
    size_t bad = 0;
    while (rtr_row_reader_next(r, &ch, &shard, &row0) == RTR_OK && ch.n) {
        CHECK(ch.n <= chunk && row0 == seen[shard]);
        const rtr_shard *w = &rows[shard];
        for (int64_t i = 0; i < ch.n; i++) {
            int64_t at = row0 + i;
            bad += strcmp(ch.id[i], w->id[at]) || strcmp(ch.text[i], w->text[at]) || strcmp(ch.dataset[i], w->dataset[at]) ||
                   strcmp(ch.split[i], w->split[at]);
            for (int j = 0; j < ch.k; j++) {
                size_t a = (size_t)i * ch.k + j, b = (size_t)at * ch.k + j;
                bad += !same_float(ch.correct[a], w->correct[b]) || !same_float(ch.tokens[a], w->tokens[b]) ||
                       !same_float(ch.cost[a], w->cost[b]);
            }
        }
        seen[shard] += ch.n;
    }
    CHECK_MSG(bad == 0 && seen[0] == 37 && seen[1] == 20, "chunks of %lld: %zu differences, %lld + %lld rows",
              (long long)chunk, bad, (long long)seen[0], (long long)seen[1]);
    rtr_row_reader_close(r);
}

static void test_rows_round_trip(void) {
    rtr_catalog cat;
    rtr_shard rows[2];
    char *dir = two_shards("rows", &cat, rows);
    rtr_corpus *c;
    CHECK(rtr_corpus_open(&c, dir) == RTR_OK);
    CHECK(rtr_corpus_n_shards(c) == 2 && rtr_corpus_n_queries(c) == 57 && rtr_corpus_shard_queries(c, 1) == 20);
    for (int64_t chunk = 1; chunk <= 64; chunk = chunk * 3 + 1) check_all_rows(c, rows, chunk);

    /* the filter: only test rows of dataset math, then everything but math */
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_ID | RTR_COL_TOKENS;
    q.split = "test";
    q.dataset = "math";
    q.chunk_rows = 5;
    rtr_rows all;
    CHECK(rtr_rows_gather(&all, NULL, c, &q, 0) == RTR_OK);
    int64_t want = 0;
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < rows[s].n; i++) want += !strcmp(rows[s].split[i], "test") && !strcmp(rows[s].dataset[i], "math");
    CHECK(all.n == want && all.split == NULL && all.text == NULL && all.correct == NULL);
    CHECK(!strcmp(all.id[0], "q0-0") && !strcmp(all.id[1], "q0-6") && all.tokens[3] == 60);
    rtr_rows_free(&all);
    q.split = NULL;
    q.dataset = NULL;
    q.skip_dataset = "math";
    CHECK(rtr_rows_gather(&all, NULL, c, &q, 0) == RTR_OK && all.n == 18 + 10 && !strcmp(all.id[0], "q0-1"));
    rtr_rows_free(&all);
    q.skip_dataset = NULL;
    q.split = "validation";
    CHECK(rtr_rows_gather(&all, NULL, c, &q, 0) == RTR_ERR_INVALID && strstr(rtr_last_error(), "validation"));
    /* the library's message names near misses in case as the CLI's does
     * (was only "no query in split 'TEST'") */
    q.split = "TEST";
    CHECK(rtr_rows_gather(&all, NULL, c, &q, 0) == RTR_ERR_INVALID);
    CHECK_MSG(strstr(rtr_last_error(), "no query in split 'TEST'; the corpus has 'test' (names are case-sensitive; "
                                       "splits: ") && strstr(rtr_last_error(), dir), "%s", rtr_last_error());
    q.split = "test";
    q.dataset = "Math";
    CHECK(rtr_rows_gather(&all, NULL, c, &q, 0) == RTR_ERR_INVALID);
    CHECK_MSG(strstr(rtr_last_error(), "no query in dataset 'Math'; the corpus has 'math'"), "%s", rtr_last_error());
    q.dataset = NULL;
    q.split = "";
    q.shard = 1; /* "" is every split; one shard only */
    CHECK(rtr_rows_gather(&all, NULL, c, &q, 0) == RTR_OK && all.n == 20 && !strcmp(all.id[0], "q1-0"));
    rtr_rows_free(&all);
    rtr_corpus_close(c);
    free_two(dir, &cat, rows);
}

/* Ids read by a reader with these knobs, to the end: its status (and rows read in *n). */
static rtr_status read_ids(const rtr_corpus *c, int64_t spill, int bits, int64_t *n) {
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_ID;
    q.chunk_rows = 6;
    q.id_spill = spill;
    q.id_hash_bits = bits;
    rtr_row_reader *r;
    rtr_rows ch;
    rtr_status s = rtr_row_reader_open(&r, c, &q);
    *n = 0;
    while (!s && !(s = rtr_row_reader_next(r, &ch, NULL, NULL)) && ch.n) *n += ch.n;
    rtr_row_reader_close(r);
    return s;
}

/* Ids are checked unique across the shards with bounded memory: a buffer of
 * id_spill ids sorted into temporary runs (a $TMPDIR that cannot be written
 * fails the read once the buffer is full, and only then), merged at the
 * end; a hash kept to 3 bits (collisions everywhere) refuses no valid
 * corpus, and a repeated id is named with its row and both shards, within
 * a run or across runs. */
static void test_unique_ids(void) {
    rtr_catalog cat;
    rtr_shard rows[2];
    char *dir = two_shards("ids", &cat, rows);
    rtr_corpus *c;
    CHECK(rtr_corpus_open(&c, dir) == RTR_OK);
    int64_t spills[] = {0, 1, 5, 56, 57}, n;
    int bits[] = {0, 3};
    for (int i = 0; i < 5; i++)
        for (int b = 0; b < 2; b++)
            CHECK_MSG(read_ids(c, spills[i], bits[b], &n) == RTR_OK && n == 57, "spill %lld, %d bits: %s",
                      (long long)spills[i], bits[b], rtr_last_error());
    char *saved = getenv("TMPDIR") ? rtr_strdup(getenv("TMPDIR")) : NULL;
    setenv("TMPDIR", "/nonexistent-rtr-dir", 1);
    CHECK(read_ids(c, 0, 0, &n) == RTR_OK && n == 57); /* 57 ids fit the default buffer: nothing on disk */
    CHECK(read_ids(c, 57, 0, &n) == RTR_OK);           /* nor a buffer of exactly 57 */
    CHECK(read_ids(c, 20, 0, &n) == RTR_ERR_IO && strstr(rtr_last_error(), "query id check") &&
          strstr(rtr_last_error(), "TMPDIR"));
    if (saved) setenv("TMPDIR", saved, 1);
    else unsetenv("TMPDIR");
    free(saved);
    rtr_corpus_close(c);
    free_two(dir, &cat, rows);

    /* shard 1 row 5 repeats shard 0 row 30; then shard 0 row 20 repeats its row 3 */
    const char *repeat[2] = {"q0-30", "q0-3"};
    for (int d = 0; d < 2; d++) {
        char *ddir = fixture_dir(d ? "ids-within" : "ids-across");
        CHECK(rtr_catalog_parse_json(&cat, CATALOG, "inline") == RTR_OK);
        make_rows(&rows[0], 37, cat.n_pairs, 0);
        make_rows(&rows[1], 20, cat.n_pairs, 1);
        rtr_shard *sh = &rows[d ? 0 : 1];
        int64_t at = d ? 20 : 5;
        free(sh->id[at]);
        sh->id[at] = rtr_strdup(repeat[d]);
        CHECK(fixture_corpus(ddir, &cat, rows, 2, 8) == RTR_OK);
        CHECK(rtr_corpus_open(&c, ddir) == RTR_OK);
        for (int i = 0; i < 5; i++)
            for (int b = 0; b < 2; b++) {
                rtr_status s = read_ids(c, spills[i], bits[b], &n);
                const char *e = rtr_last_error();
                char *quoted = rtr_sprintf("\"%s\"", repeat[d]), *row = rtr_sprintf("row %lld:", (long long)at);
                bool named = s == RTR_ERR_FORMAT && strstr(e, quoted) && strstr(e, row) &&
                             strstr(e, d ? "shard-00000.h5: row" : "shard-00001.h5: row") &&
                             strstr(e, d ? "also in this shard" : "shard-00000.h5");
                CHECK_MSG(named, "%s, spill %lld, %d bits: status %d: %s", repeat[d], (long long)spills[i], bits[b],
                          (int)s, e);
                free(quoted);
                free(row);
            }
        CHECK(rtr_corpus_check_ids(c) == RTR_ERR_FORMAT && strstr(rtr_last_error(), repeat[d]));
        /* a pass whose caller checks the ids in another (route's cost scale) reads them unchecked */
        rtr_row_query q = rtr_row_query_default();
        q.columns = RTR_COL_ID;
        q.skip_id_check = true;
        rtr_rows all;
        CHECK(rtr_rows_gather(&all, NULL, c, &q, 0) == RTR_OK && all.n == 57);
        rtr_rows_free(&all);
        rtr_corpus_close(c);
        free_two(ddir, &cat, rows);
    }
}

static void test_content_hash(void) {
    rtr_catalog cat;
    CHECK(rtr_catalog_parse_json(&cat, CATALOG, "inline") == RTR_OK);
    rtr_shard a;
    make_rows(&a, 30, cat.n_pairs, 0);
    uint64_t h[3];
    int64_t n;
    const int64_t blocks[3] = {30, 7, 30};
    for (int t = 0; t < 3; t++) {
        char *path = rtr_sprintf("%s/hash_%d_%d.h5", RTR_BINARY_DIR, (int)getpid(), t);
        if (t == 2) a.tokens[29 * 3 + 2] += 1; /* one value of the last row */
        rtr_shard_writer *w;
        CHECK(rtr_shard_writer_open(&w, path, &cat) == RTR_OK);
        for (int64_t r0 = 0; r0 < 30; r0 += blocks[t]) {
            int64_t m = 30 - r0 < blocks[t] ? 30 - r0 : blocks[t];
            rtr_shard part = {m, 3, a.id + r0, a.text + r0, a.dataset + r0, a.split + r0, a.correct + r0 * 3,
                              a.tokens + r0 * 3, a.cost + r0 * 3};
            CHECK(rtr_shard_writer_append(w, &part) == RTR_OK);
        }
        CHECK(rtr_shard_writer_commit(w, &n, &h[t]) == RTR_OK && n == 30);
        char *tmp = rtr_tmp_path(path);
        CHECK(!rtr_path_exists(tmp) && rtr_path_exists(path));
        free(tmp);
        unlink(path);
        free(path);
    }
    CHECK_MSG(h[0] == h[1], "blocks of 30 and 7 hash differently");
    CHECK_MSG(h[2] != h[0], "a changed value keeps the hash");
    rtr_shard_free(&a);
    rtr_catalog_free(&cat);
}

static float emb_value(int s, int64_t i, int t) { return (float)(s * 1000 + i * 10 + t); }
static float emb_zero(int s, int64_t i, int t) { (void)s, (void)i, (void)t; return 0.5f; }
static float table_value(int s, int64_t i, int j, int which) {
    return which ? (float)(100 * (j + 1) + s) : (float)(0.25 + 0.1 * j + 0.001 * (double)i);
}

static void test_outputs(void) {
    rtr_catalog cat;
    rtr_shard rows[2];
    char *dir = two_shards("outputs", &cat, rows);
    rtr_corpus *c;
    CHECK(rtr_corpus_open(&c, dir) == RTR_OK);
    rtr_output_info *info;
    int n;
    CHECK(rtr_corpus_outputs(&info, &n, c, "embeddings") == RTR_OK && n == 0);
    free(info);
    /* a table without embeddings asked for reads; asking for embeddings names the stage to run */
    rtr_table_meta meta = {"alpha", "a.safetensors", "cafe", "enc", "h1", false};
    CHECK(fixture_table(c, &meta, table_value) == RTR_OK);
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_P_CORRECT | RTR_COL_P_TOKENS | RTR_COL_P_COST;
    rtr_rows got;
    rtr_row_source src;
    CHECK(rtr_rows_gather(&got, &src, c, &q, 0) == RTR_OK && got.n == 57 && got.p_cost == NULL);
    CHECK(got.p_tokens[40 * 3 + 2] == 301 && fabsf(got.p_correct[1] - 0.35f) < 1e-6f);
    CHECK(!strcmp(src.table, "alpha") && !strcmp(src.checkpoint_hash, "cafe") && !src.table_has_cost);
    rtr_rows_free(&got);
    rtr_row_source_free(&src);
    q.columns = RTR_COL_EMBEDDING;
    CHECK(rtr_rows_gather(&got, NULL, c, &q, 0) == RTR_ERR_INVALID && strstr(rtr_last_error(), "rtr encode"));

    /* embeddings enc of hash h1: complete; read on the heap and memory-mapped alike */
    CHECK(fixture_embeddings(c, "enc", "h1", 4, emb_value) == RTR_OK);
    CHECK(rtr_corpus_outputs(&info, &n, c, "embeddings") == RTR_OK && n == 1);
    CHECK(info[0].complete && !info[0].problem && info[0].dim == 4 && !strcmp(info[0].encoder_hash, "h1"));
    rtr_output_info_free(info, n);
    free(info);
    rtr_rows mapped;
    CHECK(rtr_rows_gather(&got, NULL, c, &q, 0) == RTR_OK && got.emb_mapped == 0);
    CHECK(rtr_rows_gather(&mapped, NULL, c, &q, 64) == RTR_OK && mapped.emb_mapped > 0);
    CHECK(got.n == 57 && got.dim == 4 && got.emb[38 * 4 + 3] == 1013 && !memcmp(got.emb, mapped.emb, sizeof(float) * 57 * 4));
    rtr_rows_free(&got);
    rtr_rows_free(&mapped);
    float *dm, *ds;
    int32_t dim;
    CHECK(rtr_descriptions_read(&dm, &ds, &dim, c, NULL) == RTR_OK && dim == 4 && dm[7] == 1.0f && ds[0] == 0);
    free(dm), free(ds);

    /* a second table: several, so one must be named */
    rtr_table_meta beta = {"beta", "b.safetensors", "beef", "enc", "h1", true};
    rtr_output_writer *w;
    CHECK(rtr_table_writer_open(&w, c, 0, &beta) == RTR_OK);
    rtr_output_writer_abort(w); /* nothing left behind */
    CHECK(fixture_table(c, &beta, table_value) == RTR_OK);
    q.columns = RTR_COL_P_CORRECT;
    CHECK(rtr_rows_gather(&got, NULL, c, &q, 0) == RTR_ERR_INVALID && strstr(rtr_last_error(), "alpha, beta"));
    q.table = "gamma";
    CHECK(rtr_rows_gather(&got, NULL, c, &q, 0) == RTR_ERR_INVALID && strstr(rtr_last_error(), "gamma"));
    q.table = "beta";
    q.columns = RTR_COL_P_CORRECT | RTR_COL_P_COST | RTR_COL_EMBEDDING;
    CHECK(rtr_rows_gather(&got, &src, c, &q, 0) == RTR_OK && got.p_cost && !strcmp(src.encoding, "enc"));
    rtr_rows_free(&got);
    rtr_row_source_free(&src);

    /* re-encoding shard 1 with other weights: the encoding is mixed until
     * finished, and both tables scored from h1 are stale from then on */
    rtr_output_writer *e;
    float row[4 * 20] = {0};
    CHECK(rtr_embedding_writer_open(&e, c, 1, "enc", "h2", 4) == RTR_OK);
    CHECK(rtr_output_writer_append(e, 20, (const float *const[]){row}) == RTR_OK && rtr_output_writer_commit(e) == RTR_OK);
    CHECK(rtr_corpus_outputs(&info, &n, c, "embeddings") == RTR_OK && n == 1 && !info[0].complete);
    CHECK(info[0].problem && strstr(info[0].problem, "h2") && strstr(info[0].problem, "h1"));
    rtr_output_info_free(info, n);
    free(info);
    CHECK(rtr_corpus_outputs(&info, &n, c, "tables") == RTR_OK && n == 2);
    CHECK(info[0].problem && strstr(info[0].problem, "stale") && strstr(info[1].problem, "stale"));
    rtr_output_info_free(info, n);
    free(info);
    q.columns = RTR_COL_P_CORRECT;
    CHECK(rtr_rows_gather(&got, NULL, c, &q, 0) == RTR_ERR_INVALID && strstr(rtr_last_error(), "rtr score"));
    /* an incomplete encoding: one shard's file missing */
    CHECK(fixture_embeddings(c, "other", "h9", 2, emb_zero) == RTR_OK);
    char *gone = rtr_sprintf("%s/embeddings/other/shard-00001.h5", dir);
    CHECK(unlink(gone) == 0);
    free(gone);
    q.columns = RTR_COL_EMBEDDING;
    q.encoder = "other";
    CHECK(rtr_rows_gather(&got, NULL, c, &q, 0) == RTR_ERR_INVALID && strstr(rtr_last_error(), "1 of 2 shards"));
    rtr_corpus_close(c);

    /* outputs of these shards beside shards of other content (the corpus
     * ingested again from changed logs): computed from other data, refused */
    rtr_catalog cat2;
    rtr_shard rows2[2];
    char *dir2 = two_shards("outputs2", &cat2, rows2);
    rtr_shard_free(&rows2[1]);
    make_rows(&rows2[1], 20, cat2.n_pairs, 7);
    CHECK(fixture_corpus(dir2, &cat2, rows2, 2, 8) == RTR_OK);
    char *cmd = rtr_sprintf("cp -r '%s/tables' '%s/'", dir, dir2);
    CHECK(system(cmd) == 0);
    CHECK(rtr_corpus_open(&c, dir2) == RTR_OK);
    q = rtr_row_query_default();
    q.columns = RTR_COL_P_CORRECT;
    q.table = "alpha";
    CHECK(rtr_rows_gather(&got, NULL, c, &q, 0) == RTR_ERR_INVALID && strstr(rtr_last_error(), "shard-00001.h5") &&
          strstr(rtr_last_error(), "shard_hash"));
    rtr_corpus_close(c);
    free(cmd);
    free_two(dir2, &cat2, rows2);
    free_two(dir, &cat, rows);
}

/* Rewrite manifest.json of dir replacing `from` by `to` (once). */
static void spoil_manifest(const char *dir, const char *from, const char *to) {
    char *path = rtr_sprintf("%s/manifest.json", dir), *text;
    CHECK(rtr_read_file(path, &text, NULL) == RTR_OK);
    char *at = strstr(text, from);
    CHECK_MSG(at != NULL, "manifest lacks %s", from);
    if (at) {
        FILE *f = fopen(path, "w");
        fwrite(text, 1, (size_t)(at - text), f);
        fputs(to, f);
        fputs(at + strlen(from), f);
        fclose(f);
    }
    free(text);
    free(path);
}

static void expect_open_error(const char *dir, rtr_status want, const char *n1, const char *n2) {
    rtr_corpus *c = NULL;
    rtr_status s = rtr_corpus_open(&c, dir);
    CHECK_MSG(s == want && strstr(rtr_last_error(), n1) && strstr(rtr_last_error(), n2), "status %d: %s (want %s, %s)",
              (int)s, rtr_last_error(), n1, n2);
    rtr_corpus_close(c);
}

static void test_validation_on_open(void) {
    struct { const char *from, *to, *n1, *n2; rtr_status want; } cases[] = {
        {"\"n_queries\":\t37", "\"n_queries\":\t36", "n_queries", "sum, 56", RTR_ERR_FORMAT},
        {"\"n_queries\":\t57", "\"n_queries\":\t56", "shard-00000.h5", "the manifest says 36", RTR_ERR_FORMAT},
        {"\"n_queries\":\t37", "\"n_queries\":\t0", "shards[0].n_queries", "1..shard_size", RTR_ERR_FORMAT},
        {"\"n_queries\":\t37", "\"n_queries\":\t36.5", "shards[0].n_queries", "integer", RTR_ERR_FORMAT},
        {"\"version\":\t2", "\"version\":\t2.5", "version", "integer", RTR_ERR_FORMAT},
        {"\"version\":\t2", "\"version\":\t1", "rtr upgrade", "version 1", RTR_ERR_UNSUPPORTED},
        {"\"catalog_hash\":\t\"", "\"catalog_hash\":\t\"0", "catalog_hash", "hashes to", RTR_ERR_FORMAT},
        {"\"file\":\t\"shard-00001.h5\"", "\"file\":\t\"shard-00000.h5\"", "listed twice", "shard-00000.h5", RTR_ERR_FORMAT},
        {"\"file\":\t\"shard-00001.h5\"", "\"file\":\t\"../shard-00001.h5\"", "shards[1].file", "plain", RTR_ERR_FORMAT},
        {"\"n_queries\":\t57", "\"n_queries\":\t58", "n_queries", "sum", RTR_ERR_FORMAT},
        {"\"m-large\"", "\"m-LARGE\"", "manifest.json", "pairs", RTR_ERR_FORMAT},
        {"\"schema\":", "\"schema\": \"x\", \"schema\":", "schema", "twice", RTR_ERR_FORMAT},
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        rtr_catalog cat;
        rtr_shard rows[2];
        char *dir = two_shards("validate", &cat, rows);
        spoil_manifest(dir, cases[t].from, cases[t].to);
        if (t == 1) spoil_manifest(dir, "\"n_queries\":\t37", "\"n_queries\":\t36"); /* consistent, but not the shard's */
        expect_open_error(dir, cases[t].want, cases[t].n1, cases[t].n2);
        free_two(dir, &cat, rows);
    }
    /* a shard's hash in the manifest that is not the file's content, a shard
     * swapped with another corpus's, a shard that is a directory */
    rtr_catalog cat;
    rtr_shard rows[2];
    char *dir = two_shards("validate", &cat, rows);
    char *man = rtr_sprintf("%s/manifest.json", dir), *text;
    CHECK(rtr_read_file(man, &text, NULL) == RTR_OK);
    char *h = strstr(text, "\"hash\":\t\"");
    CHECK(h != NULL);
    if (h) h[9] = h[9] == '0' ? '1' : '0';
    CHECK(rtr_write_file_atomic(man, text, strlen(text)) == RTR_OK);
    expect_open_error(dir, RTR_ERR_FORMAT, "shard-00000.h5", "shard_hash");
    free(text);
    free(man);
    char *s0 = rtr_sprintf("%s/shard-00000.h5", dir);
    unlink(s0);
    mkdir(s0, 0755);
    expect_open_error(dir, RTR_ERR_IO, "shard-00000.h5", "directory");
    free(s0);
    free_two(dir, &cat, rows);
}

/* Overwrite elements [at, at + n) of a 1-D or 2-D dataset of shard 0 with bytes of x. */
static void poke(const char *path, const char *name, hid_t type, hsize_t row, hsize_t col, const void *x) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), d = H5Dopen2(f, name, H5P_DEFAULT), fs = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(fs);
    hsize_t start[2] = {row, col}, count[2] = {1, 1};
    hid_t ms = H5Screate_simple(rank, count, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    CHECK(H5Dwrite(d, type, ms, fs, H5P_DEFAULT, x) >= 0);
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d), H5Fclose(f);
}

static void expect_read_error(const char *dir, unsigned columns, rtr_status want, const char *n1, const char *n2) {
    rtr_corpus *c;
    CHECK(rtr_corpus_open(&c, dir) == RTR_OK);
    rtr_row_query q = rtr_row_query_default();
    q.columns = columns;
    rtr_rows got;
    rtr_status s = rtr_rows_gather(&got, NULL, c, &q, 0);
    CHECK_MSG(s == want && strstr(rtr_last_error(), n1) && strstr(rtr_last_error(), n2), "status %d: %s (want %s, %s)",
              (int)s, rtr_last_error(), n1, n2);
    if (s == RTR_OK) rtr_rows_free(&got);
    rtr_corpus_close(c);
}

static void test_values_checked_as_read(void) {
    rtr_catalog cat;
    rtr_shard rows[2];
    char *dir = two_shards("values", &cat, rows);
    char *s0 = rtr_sprintf("%s/shard-00000.h5", dir);
    float five = 5, neg = -1, inf = INFINITY;
    int64_t big = 1 << 30, back = 3;
    poke(s0, "/outcomes/correct", H5T_NATIVE_FLOAT, 12, 1, &five);
    expect_read_error(dir, RTR_COL_CORRECT, RTR_ERR_FORMAT, "/outcomes/correct row 12 pair 1", "outside [0, 1]");
    expect_read_error(dir, RTR_COL_TOKENS, RTR_OK, "", ""); /* a stage that does not read the column is not stopped */
    poke(s0, "/outcomes/tokens", H5T_NATIVE_FLOAT, 3, 2, &neg);
    expect_read_error(dir, RTR_COL_TOKENS, RTR_ERR_FORMAT, "shard-00000.h5", "row 3 pair 2");
    poke(s0, "/outcomes/cost", H5T_NATIVE_FLOAT, 30, 0, &inf);
    expect_read_error(dir, RTR_COL_COST, RTR_ERR_FORMAT, "/outcomes/cost row 30", "finite");
    /* string offsets pointing outside the bytes, or backwards: an error, never a read out of bounds */
    poke(s0, "/queries/text/offsets", H5T_NATIVE_INT64, 5, 0, &big);
    expect_read_error(dir, RTR_COL_TEXT, RTR_ERR_FORMAT, "/queries/text/offsets row 4", "outside");
    unsigned char nul = 0;
    poke(s0, "/queries/dataset/bytes", H5T_NATIVE_UINT8, 2, 0, &nul);
    expect_read_error(dir, RTR_COL_DATASET, RTR_ERR_FORMAT, "/queries/dataset/bytes row 0", "UTF-8");
    /* the ids last: every reader reads them (their uniqueness), whatever columns it asks for */
    poke(s0, "/queries/id/offsets", H5T_NATIVE_INT64, 9, 0, &back);
    expect_read_error(dir, RTR_COL_ID, RTR_ERR_FORMAT, "/queries/id/offsets row 8", "outside");
    free(s0);
    free_two(dir, &cat, rows);
}

static void test_bad_files(void) {
    rtr_catalog cat;
    rtr_shard rows[2];
    char *dir = two_shards("badfiles", &cat, rows);
    char *s1 = rtr_sprintf("%s/shard-00001.h5", dir), *data;
    size_t len;
    /* a truncated shard (a copy cut in half, as a killed transfer leaves it) */
    CHECK(rtr_read_file(s1, &data, &len) == RTR_OK);
    FILE *o = fopen(s1, "wb");
    fwrite(data, 1, len / 2, o);
    fclose(o);
    expect_open_error(dir, RTR_ERR_FORMAT, "shard-00001.h5", "truncated or corrupt");
    /* not HDF5 at all, and missing */
    o = fopen(s1, "wb");
    fputs("hello", o);
    fclose(o);
    expect_open_error(dir, RTR_ERR_FORMAT, "shard-00001.h5", "not a readable HDF5 file");
    unlink(s1);
    expect_open_error(dir, RTR_ERR_IO, "shard-00001.h5", "no such file");
    /* the whole file written back: opens again */
    o = fopen(s1, "wb");
    fwrite(data, 1, len, o);
    fclose(o);
    rtr_corpus *c;
    CHECK(rtr_corpus_open(&c, dir) == RTR_OK);
    rtr_corpus_close(c);
    /* another schema version in a shard's attribute */
    hid_t f = H5Fopen(s1, H5F_ACC_RDWR, H5P_DEFAULT), a = H5Aopen(f, "rtr_schema_version", H5P_DEFAULT);
    int64_t v = 1;
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a), H5Fclose(f);
    expect_open_error(dir, RTR_ERR_UNSUPPORTED, "rtr_schema_version", "rtr upgrade");
    expect_open_error("/nonexistent/corpus", RTR_ERR_IO, "/nonexistent/corpus", "no such directory");
    expect_open_error(s1, RTR_ERR_IO, s1, "a file, not a corpus folder");
    free(data);
    free(s1);
    free_two(dir, &cat, rows);
}

static void test_stale_temporaries(void) {
    char *dir = fixture_dir("stale");
    char *out = rtr_sprintf("%s/out.h5", dir);
    /* pids above the kernel's maximum (4194304 at most) are never alive */
    char *dead = rtr_sprintf("%s.tmp.%d", out, 4194304 + 77), *live = rtr_sprintf("%s.tmp.%d", out, (int)getpid());
    char *other = rtr_sprintf("%s/other.h5.tmp.%d", dir, 4194304 + 78), *odd = rtr_sprintf("%s.tmp.12x", out);
    char *dead_dir = rtr_sprintf("%s.tmp.%d", out, 4194304 + 79), *inner = rtr_sprintf("%s/f", dead_dir);
    const char *files[] = {dead, live, other, odd};
    for (int i = 0; i < 4; i++) {
        FILE *f = fopen(files[i], "w");
        fputs("x", f);
        fclose(f);
    }
    mkdir(dead_dir, 0755);
    FILE *f = fopen(inner, "w");
    fclose(f);
    rtr_remove_stale_tmp(out);
    CHECK(!rtr_path_exists(dead) && !rtr_path_exists(dead_dir)); /* a dead writer's file and folder */
    CHECK(rtr_path_exists(live) && rtr_path_exists(other) && rtr_path_exists(odd)); /* nothing else */
    rtr_remove_tree(dir);
    free(dir), free(out), free(dead), free(live), free(other), free(odd), free(dead_dir), free(inner);
}

/* Temporaries named by host and pid (rtr_tmp_path, and route's decisions
 * file that MPI ranks share): a run removes those of this host whose
 * writer is gone, a zombie not yet reaped included, in both name forms; a
 * live writer's stays, and so does one of another host (whatever its pid:
 * it names a process of that machine). */
static void test_host_temporaries(void) {
    char *dir = fixture_dir("stale_hosts"), host[RTR_HOST_MAX];
    rtr_host_name(host);
    CHECK(host[0] && strlen(host) < RTR_HOST_MAX && strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                  "0123456789-") == strlen(host));
    pid_t child = fork();
    if (child == 0) _exit(0);
    usleep(100000); /* it has exited: a zombie until waited for */
    char *out = rtr_sprintf("%s/out.csv", dir), *mine = rtr_tmp_path(out);
    char *zombie = rtr_tmp_name(out, host, (long)child), *zombie_old = rtr_sprintf("%s.tmp.%ld", out, (long)child);
    char *live = rtr_tmp_name(out, host, (long)getpid()), *other = rtr_tmp_name(out, "elsewhere-node", (long)child);
    char *want = rtr_sprintf("%s.tmp.%s.%ld", out, host, (long)getpid());
    CHECK(!strcmp(live, want) && !strcmp(mine, want));
    char *files[4] = {zombie, zombie_old, live, other};
    for (int i = 0; i < 4; i++) {
        FILE *f = fopen(files[i], "w");
        CHECK(f != NULL);
        if (f) fclose(f);
    }
    rtr_remove_stale_tmp(out);
    CHECK_MSG(!rtr_path_exists(zombie) && !rtr_path_exists(zombie_old), "a zombie writer's temporaries are removed");
    CHECK(rtr_path_exists(live) && rtr_path_exists(other));
    waitpid(child, NULL, 0);
    for (int i = 0; i < 4; i++) free(files[i]);
    rtr_remove_tree(dir);
    free(dir), free(out), free(mine), free(want);
}

TEST_MAIN(T(test_catalog_round_trip), T(test_catalog_full_grid), T(test_catalog_errors), T(test_rows_round_trip), T(test_unique_ids),
          T(test_content_hash), T(test_outputs), T(test_validation_on_open), T(test_values_checked_as_read),
          T(test_bad_files), T(test_stale_temporaries), T(test_host_temporaries))
