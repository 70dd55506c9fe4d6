/* The scale benchmark's encode stage without an encoder (bench_scale.sh):
 * seeded unit vectors of width D written as a corpus's query and
 * description embeddings through the store, the way `rtr encode` writes
 * them, so the write path is measured apart from the encoder's arithmetic.
 * Row i of the corpus gets the same vector in either build, so the stages
 * after it read identical data before and after.
 *
 *   schema 2 (this tree): each shard's texts read with the row reader, its
 *     embeddings written to embeddings/NAME/shard-NNNNN.h5, the
 *     descriptions once (src/encoder/encode_corpus.c's calls);
 *   schema 1 (built with -DRTR_SCALE_SCHEMA1 against the tree before commit
 *     ab40659): each shard read whole and rewritten with the three
 *     embedding matrices added (rtr_shard_put_matrices, as its cmd_encode.c).
 *
 *     bench_scale_embed CORPUS [D [NAME]] */
#include "rtr/store.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* splitmix64: the vector of a row depends on its corpus row number only */
static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A unit vector of width d for row r of stream s (sum of four uniforms per
 * component: near-Gaussian, so directions spread over the sphere). */
static void unit(float *v, int d, uint64_t s, uint64_t r) {
    double n2 = 0;
    for (int j = 0; j < d; j++) {
        uint64_t h = mix(s * 0x100000001b3ull ^ mix(r * (uint64_t)d + (uint64_t)j));
        double x = 0;
        for (int q = 0; q < 4; q++) x += (double)((h >> (16 * q)) & 0xffff) / 65535.0 - 0.5;
        v[j] = (float)x;
        n2 += x * x;
    }
    float inv = (float)(1.0 / sqrt(n2 > 0 ? n2 : 1));
    for (int j = 0; j < d; j++) v[j] *= inv;
}

static int fail(const char *what, rtr_status s) {
    fprintf(stderr, "bench_scale_embed: %s: %s: %s\n", what, rtr_status_name(s), rtr_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: bench_scale_embed CORPUS [D [NAME]]\n");
        return 2;
    }
    int d = argc > 2 ? atoi(argv[2]) : 384;
    const char *name = argc > 3 ? argv[3] : "synthetic", *hash = "5ca1e00000000384";
    if (d < 1 || d > 4096) {
        fprintf(stderr, "bench_scale_embed: D must be in 1..4096\n");
        return 2;
    }
    rtr_corpus *c = NULL;
    rtr_status s = rtr_corpus_open(&c, argv[1]);
    if (s) return fail(argv[1], s);
    const rtr_catalog *cat = rtr_corpus_catalog(c);
    float *dm = malloc(sizeof(float) * (size_t)cat->n_models * (size_t)d);
    float *ds = malloc(sizeof(float) * (size_t)cat->n_strategies * (size_t)d);
    if (!dm || !ds) return fail("descriptions", RTR_ERR_NOMEM);
    for (int32_t i = 0; i < cat->n_models; i++) unit(dm + (size_t)i * d, d, 1, (uint64_t)i);
    for (int32_t i = 0; i < cat->n_strategies; i++) unit(ds + (size_t)i * d, d, 2, (uint64_t)i);
    uint64_t row = 0;
#ifdef RTR_SCALE_SCHEMA1
    const char *keys[] = {"encoder", "encoder_hash"}, *vals[] = {name, hash};
    for (int i = 0; !s && i < rtr_corpus_n_shards(c); i++) {
        rtr_shard sh = {0};
        const char *path = rtr_corpus_shard_path(c, i);
        s = rtr_shard_read(path, &sh, NULL); /* the texts the encoder would read */
        float *emb = s ? NULL : malloc(sizeof(float) * (size_t)(sh.n ? sh.n : 1) * (size_t)d);
        if (!s && !emb) s = RTR_ERR_NOMEM;
        for (int64_t r = 0; !s && r < sh.n; r++) unit(emb + r * d, d, 0, row++);
        rtr_matrix_out m[3] = {{"/embedding/query", emb, sh.n, d, 2, keys, vals},
                               {"/embedding/model_desc", dm, cat->n_models, d, 2, keys, vals},
                               {"/embedding/strategy_desc", ds, cat->n_strategies, d, 2, keys, vals}};
        if (!s) s = rtr_shard_put_matrices(path, m, 3);
        free(emb);
        rtr_shard_free(&sh);
        if (s) fail(path, s);
    }
#else
    for (int i = 0; !s && i < rtr_corpus_n_shards(c); i++) {
        rtr_row_query q = rtr_row_query_default();
        q.columns = RTR_COL_TEXT; /* the texts the encoder would read */
        q.shard = i;
        q.chunk_rows = 1024; /* encode_corpus.c's step on the CPU */
        rtr_row_reader *r = NULL;
        rtr_output_writer *w = NULL;
        float *emb = malloc(sizeof(float) * 1024 * (size_t)d);
        s = emb ? rtr_row_reader_open(&r, c, &q) : RTR_ERR_NOMEM;
        if (!s) s = rtr_embedding_writer_open(&w, c, i, name, hash, d);
        for (rtr_rows ch = {0}; !s;) {
            if ((s = rtr_row_reader_next(r, &ch, NULL, NULL)) || ch.n == 0) break;
            for (int64_t k = 0; k < ch.n; k++) unit(emb + k * d, d, 0, row++);
            const float *cols[1] = {emb};
            s = rtr_output_writer_append(w, ch.n, cols);
        }
        if (!s) s = rtr_output_writer_finish(w);
        if (!s) s = rtr_output_writer_commit(w);
        else rtr_output_writer_abort(w);
        rtr_row_reader_close(r);
        free(emb);
        if (s) fail(rtr_corpus_shard_path(c, i), s);
    }
    if (!s) s = rtr_descriptions_write(c, name, hash, d, dm, ds);
    if (s) fail("descriptions", s);
#endif
    free(dm);
    free(ds);
    rtr_corpus_close(c);
    if (!s) printf("%llu queries x %d embedded\n", (unsigned long long)row, d);
    return s ? 1 : 0;
}
