/* Small corpora built with the store's own writers, for the C tests of the
 * store and of routing: shards from rows in memory, the manifest, and
 * stage outputs (embeddings with their descriptions, routing tables). */
#ifndef RTR_CORPUS_FIXTURE_H
#define RTR_CORPUS_FIXTURE_H

#include "rtr/store.h"
#include "common/util.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh directory under the build tree (removed first when it exists). */
static inline char *fixture_dir(const char *name) {
    char *dir = rtr_sprintf("%s/fixture_%s_%d", RTR_BINARY_DIR, name, (int)getpid());
    rtr_remove_tree(dir);
    mkdir(dir, 0755);
    return dir;
}

/* Write rows[s] as shard s of a corpus in dir (appended block rows at a
 * time) and the manifest; returns RTR_OK or the first failure. */
static inline rtr_status fixture_corpus(const char *dir, const rtr_catalog *cat, const rtr_shard *rows, int n_shards,
                                        int64_t block) {
    char **files = calloc((size_t)n_shards, sizeof *files);
    int64_t *counts = calloc((size_t)n_shards, sizeof *counts);
    uint64_t *hashes = calloc((size_t)n_shards, sizeof *hashes);
    rtr_status s = RTR_OK;
    int64_t most = 1;
    for (int i = 0; i < n_shards && !s; i++) {
        files[i] = rtr_sprintf("shard-%05d.h5", i);
        char *path = rtr_sprintf("%s/%s", dir, files[i]);
        rtr_shard_writer *w;
        s = rtr_shard_writer_open(&w, path, cat);
        for (int64_t r0 = 0; !s && r0 < rows[i].n; r0 += block) {
            int64_t m = rows[i].n - r0 < block ? rows[i].n - r0 : block;
            size_t K = (size_t)rows[i].k;
            rtr_shard part = {m, rows[i].k, rows[i].id + r0, rows[i].text + r0, rows[i].dataset + r0, rows[i].split + r0,
                              rows[i].correct + r0 * K, rows[i].tokens + r0 * K, rows[i].cost + r0 * K};
            s = rtr_shard_writer_append(w, &part);
        }
        if (s) rtr_shard_writer_abort(w);
        else s = rtr_shard_writer_commit(w, &counts[i], &hashes[i]);
        if (counts[i] > most) most = counts[i];
        free(path);
    }
    if (!s) s = rtr_manifest_write(dir, cat, n_shards, (const char *const *)files, counts, hashes, most);
    for (int i = 0; i < n_shards; i++) free(files[i]);
    free(files), free(counts), free(hashes);
    return s;
}

/* Embeddings NAME for every shard of c: shard s row i column t is
 * value(s, i, t); descriptions of zeros plus one. */
static inline rtr_status fixture_embeddings(const rtr_corpus *c, const char *name, const char *hash, int32_t dim,
                                            float (*value)(int s, int64_t i, int t)) {
    const rtr_catalog *cat = rtr_corpus_catalog(c);
    float *dm = calloc((size_t)cat->n_models * (size_t)dim, sizeof *dm), *ds = calloc((size_t)cat->n_strategies * (size_t)dim, sizeof *ds);
    for (size_t i = 0; i < (size_t)cat->n_models * (size_t)dim; i++) dm[i] = 1.0f;
    rtr_status st = rtr_descriptions_write(c, name, hash, dim, dm, ds);
    for (int s = 0; !st && s < rtr_corpus_n_shards(c); s++) {
        int64_t n = rtr_corpus_shard_queries(c, s);
        float *e = malloc(sizeof *e * (size_t)n * (size_t)dim);
        for (int64_t i = 0; i < n; i++)
            for (int t = 0; t < dim; t++) e[i * dim + t] = value(s, i, t);
        rtr_output_writer *w;
        st = rtr_embedding_writer_open(&w, c, s, name, hash, dim);
        if (!st) st = rtr_output_writer_append(w, n, (const float *const[]){e});
        if (!st) st = rtr_output_writer_commit(w);
        else rtr_output_writer_abort(w);
        free(e);
    }
    free(dm), free(ds);
    return st;
}

/* A routing table for every shard of c: p_correct and tokens of shard s,
 * row i, pair j from value(s, i, j, 0) and value(s, i, j, 1); with_cost
 * adds predicted USD of tokens x 1e-6. */
static inline rtr_status fixture_table(const rtr_corpus *c, const rtr_table_meta *meta,
                                       float (*value)(int s, int64_t i, int j, int which)) {
    int32_t k = rtr_corpus_catalog(c)->n_pairs;
    rtr_status st = RTR_OK;
    for (int s = 0; !st && s < rtr_corpus_n_shards(c); s++) {
        int64_t n = rtr_corpus_shard_queries(c, s);
        size_t nk = (size_t)n * (size_t)k;
        float *p = malloc(sizeof *p * nk), *t = malloc(sizeof *t * nk), *u = malloc(sizeof *u * nk);
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < k; j++) {
                p[i * k + j] = value(s, i, j, 0), t[i * k + j] = value(s, i, j, 1);
                u[i * k + j] = t[i * k + j] * 1e-6f;
            }
        rtr_output_writer *w;
        st = rtr_table_writer_open(&w, c, s, meta);
        if (!st) st = rtr_output_writer_append(w, n, (const float *const[]){p, t, u});
        if (!st) st = rtr_output_writer_commit(w);
        else rtr_output_writer_abort(w);
        free(p), free(t), free(u);
    }
    return st;
}

#endif
