/* The row reader over a range of rows (rtr_row_query.rows, what an MPI
 * rank reads under rtr_part_range): the parts' ranges read one after the
 * other give exactly the rows of one whole pass, in order, with and
 * without a filter; each chunk of a range cut at multiples of the chunk is
 * a chunk of the whole pass (same shard, first row and rows), so sums kept
 * per chunk come out the same on any split, and a range cut anywhere
 * still ends its chunks where the whole pass does; shards outside a range are
 * not opened (a missing one is not noticed); ids are checked within it. */
#include "corpus_fixture.h"
#include "rtr/dist.h"

#include <string.h>

static const char *CATALOG =
    "{\"models\":[{\"name\":\"a\"},{\"name\":\"b\"}],\"strategies\":[{\"name\":\"x\"}],\"pairs\":[[\"a\",\"x\"],[\"b\",\"x\"]]}";

enum { N_SHARDS = 3 };
static const int64_t SIZES[N_SHARDS] = {37, 20, 45};

/* Rows q<shard>-<row>, every third in split "test". */
static void make_rows(rtr_shard *sh, int64_t n, int32_t k, int tag) {
    CHECK(rtr_shard_alloc(sh, n, k) == RTR_OK);
    for (int64_t i = 0; i < n; i++) {
        sh->id[i] = rtr_sprintf("q%d-%lld", tag, (long long)i);
        sh->text[i] = rtr_sprintf("text %lld", (long long)i);
        sh->dataset[i] = rtr_strdup("d");
        sh->split[i] = rtr_strdup(i % 3 ? "train" : "test");
        for (int32_t j = 0; j < k; j++) sh->correct[(size_t)i * (size_t)k + (size_t)j] = (float)(j % 2);
    }
}

/* One chunk as a reader gave it: where it starts and how many rows. */
typedef struct {
    int shard;
    int64_t row0, n;
    char first[32];
} chunk_at;

/* Every chunk of a pass over `range` (NULL: whole) into out (room for cap); the ids joined into ids. */
static int read_chunks(const rtr_corpus *c, const rtr_row_range *range, int64_t chunk, const char *split, chunk_at *out,
                       int cap, rtr_buf *ids) {
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_ID;
    q.chunk_rows = chunk;
    q.split = split;
    q.rows = range;
    rtr_row_reader *r = NULL;
    rtr_rows ch;
    int n = 0, shard;
    int64_t row0;
    rtr_status st = rtr_row_reader_open(&r, c, &q);
    while (!st && !(st = rtr_row_reader_next(r, &ch, &shard, &row0)) && ch.n) {
        if (n < cap) {
            out[n] = (chunk_at){shard, row0, ch.n, {0}};
            snprintf(out[n].first, sizeof out[n].first, "%s", ch.id[0]);
        }
        n++;
        for (int64_t i = 0; i < ch.n; i++) rtr_buf_printf(ids, "%s,", ch.id[i]);
    }
    CHECK_MSG(st == RTR_OK, "%s", rtr_last_error());
    rtr_row_reader_close(r);
    return n;
}

static void test_ranges_make_the_whole(void) {
    char *dir = fixture_dir("part_rows");
    rtr_catalog cat;
    rtr_shard rows[N_SHARDS];
    CHECK(rtr_catalog_parse_json(&cat, CATALOG, "inline") == RTR_OK);
    for (int i = 0; i < N_SHARDS; i++) make_rows(&rows[i], SIZES[i], cat.n_pairs, i);
    CHECK(fixture_corpus(dir, &cat, rows, N_SHARDS, 8) == RTR_OK);
    rtr_corpus *c = NULL;
    CHECK(rtr_corpus_open(&c, dir) == RTR_OK);
    const char *splits[2] = {NULL, "test"};
    const int64_t chunks[3] = {1, 4, 7};
    for (int si = 0; c && si < 2; si++)
        for (int ci = 0; ci < 3; ci++) {
            chunk_at whole[128], part[128];
            rtr_buf all = {0};
            int n_whole = read_chunks(c, NULL, chunks[ci], splits[si], whole, 128, &all);
            for (int count = 1; count <= 5; count++) {
                rtr_buf joined = {0};
                int at = 0;
                for (int p = 0; p < count; p++) {
                    rtr_row_range r = rtr_part_rows(SIZES, N_SHARDS, chunks[ci], p, count);
                    int n = read_chunks(c, &r, chunks[ci], splits[si], part, 128, &joined);
                    /* a range's chunks are the whole pass's chunks, in order */
                    for (int j = 0; j < n; j++, at++)
                        CHECK_MSG(at < n_whole && part[j].shard == whole[at].shard && part[j].row0 == whole[at].row0 &&
                                      part[j].n == whole[at].n && !strcmp(part[j].first, whole[at].first),
                                  "split %s chunk %lld, part %d/%d: chunk %d (shard %d row %lld, %lld rows) is not the "
                                  "whole pass's", splits[si] ? splits[si] : "-", (long long)chunks[ci], p, count, j,
                                  part[j].shard, (long long)part[j].row0, (long long)part[j].n);
                }
                CHECK_MSG(at == n_whole && joined.len == all.len && !memcmp(joined.buf, all.buf, all.len),
                          "split %s chunk %lld, %d parts: %d chunks against %d, ids %s", splits[si] ? splits[si] : "-",
                          (long long)chunks[ci], count, at, n_whole, joined.len == all.len ? "equal length" : "differ");
                rtr_buf_free(&joined);
            }
            rtr_buf_free(&all);
        }
    /* a range cut at any row (train's, grain 1): its chunks still end where
     * the whole pass's do, at multiples of the chunk into the shard */
    for (int p = 0; c && p < 5; p++) {
        rtr_row_range r = rtr_part_rows(SIZES, N_SHARDS, 1, p, 5);
        chunk_at got[64];
        rtr_buf ids = {0};
        int n = read_chunks(c, &r, 4, NULL, got, 64, &ids);
        for (int j = 0; j < n && j < 64; j++)
            CHECK_MSG(got[j].row0 / 4 == (got[j].row0 + got[j].n - 1) / 4, "part %d/5 by rows: chunk at shard %d row %lld "
                      "of %lld rows crosses a multiple of 4", p, got[j].shard, (long long)got[j].row0, (long long)got[j].n);
        rtr_buf_free(&ids);
    }
    /* a range inside shard 2 opens no other shard: shard 0 removed goes unnoticed */
    char *gone = rtr_sprintf("%s/shard-00000.h5", dir);
    CHECK(unlink(gone) == 0);
    rtr_row_range last = {SIZES[0] + SIZES[1] + 5, SIZES[0] + SIZES[1] + 9};
    chunk_at one[4];
    rtr_buf ids = {0};
    CHECK(c && read_chunks(c, &last, 16384, NULL, one, 4, &ids) == 1 && one[0].shard == 2 && one[0].row0 == 5 &&
          one[0].n == 4 && !strcmp(ids.buf, "q2-5,q2-6,q2-7,q2-8,"));
    rtr_buf_free(&ids);
    /* the reader keeps its own copy of the range: the caller's may go out
     * of scope once the reader is open (train's gather_share) */
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_ID;
    rtr_row_range scoped = last;
    q.rows = &scoped;
    rtr_row_reader *rd = NULL;
    rtr_rows ch;
    CHECK(c && rtr_row_reader_open(&rd, c, &q) == RTR_OK);
    scoped = (rtr_row_range){0, SIZES[0]}; /* what the stack slot holds later */
    CHECK(rd && rtr_row_reader_next(rd, &ch, NULL, NULL) == RTR_OK && ch.n == 4 && !strcmp(ch.id[0], "q2-5"));
    rtr_row_reader_close(rd);
    free(gone);
    rtr_corpus_close(c);
    for (int i = 0; i < N_SHARDS; i++) rtr_shard_free(&rows[i]);
    rtr_catalog_free(&cat);
    rtr_remove_tree(dir);
    free(dir);
}

TEST_MAIN(T(test_ranges_make_the_whole))
