/* Scoring a predictor on a compute backend (CPU or CUDA): the same result as
 * rtr_predictor_score (train.c) computed with the backend's ops, so `rtr
 * score --device cuda` runs the fused heads on the GPU. Weights go up once;
 * queries stream through in chunks with pinned double buffers: while the
 * backend computes chunk i, the host reads chunk i + 1 (through the store's
 * row reader for `rtr score`) and uploads it beside the compute, then
 * writes out chunk i's scores (into the table file) while chunk i + 1
 * computes. One loop serves a corpus (rtr_score_corpus, the scoring stage),
 * one embeddings file (rtr_predictor_score_shard) and host arrays
 * (rtr_predictor_score_backend). */
#include "rtr/predictor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "predictor/predictor_int.h"
#include "rtr/stages.h"
#include "store/h5.h"

void rtr_predictor_fold_head(float *Wq_f, float *G, float *s, float *beta, const float *C, const float *W_q,
                             const float *w2, const float *b2, int K, int H, int D) {
    for (int j = 0; j < H; j++) {
        float m = fabsf(w2[j]);
        s[j] = w2[j] > 0.0f ? 1.0f : w2[j] < 0.0f ? -1.0f : 0.0f;
        for (int d = 0; d < D; d++) Wq_f[(size_t)j * D + d] = m * W_q[(size_t)j * D + d];
    }
    for (int k = 0; k < K; k++) {
        double acc = b2[0];
        for (int j = 0; j < H; j++) {
            G[(size_t)k * H + j] = -fabsf(w2[j]) * C[(size_t)k * H + j];
            acc += (double)w2[j] * C[(size_t)k * H + j];
        }
        beta[k] = (float)acc;
    }
}

/* Where the stream gets query embeddings and puts scores. Both are called
 * on the calling thread, in row order. */
typedef struct {
    /* rows [row0, row0 + rows) of the N x D embeddings into emb */
    rtr_status (*read)(void *ctx, int64_t row0, int64_t rows, float *emb);
    /* their scores, rows x K each (host memory, valid during the call) */
    rtr_status (*write)(void *ctx, int64_t row0, int64_t rows, const float *p_correct, const float *tokens);
    void *ctx;
} score_io;

/* One scoring stream. Backend memory: the weights, the embeddings of two
 * chunks (one computing, one uploading), one chunk's A and outputs (ops and
 * downloads run in order). Host memory (pinned): the embeddings and outputs
 * of two chunks on a device; on the host backend one of each, which the
 * ops read and write directly (no copies). */
typedef struct {
    rtr_backend *b;
    const rtr_predictor *p;
    const score_io *io;
    bool host;
    int64_t N, chunk;
    float *wq, *sg, *beta, *G, *E[2], *A, *out; /* folded weights and tables (rtr_heads_score) */
    float *hin[2], *hout[2];
} score_stream;

static void score_stream_free(score_stream *s) {
    float *dev[] = {s->wq, s->sg, s->beta, s->G, s->E[0], s->E[1], s->A, s->out};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) rtr_backend_free_mem(s->b, dev[i]);
    for (int sl = 0; sl < 2; sl++) {
        rtr_backend_host_free(s->b, s->hin[sl]);
        rtr_backend_host_free(s->b, s->hout[sl]);
    }
}

static rtr_status alloc_upload(rtr_backend *b, float **dev, const float *host, size_t n) {
    rtr_status st = rtr_backend_alloc(b, (void **)dev, n * sizeof(float));
    if (st == RTR_OK && host) st = rtr_backend_upload(b, *dev, host, n * sizeof(float));
    return st;
}

/* Both heads' folded tables (rtr_heads_score: |w2|·W_q, −|w2|·C, sign(w2) and
 * the per-pair bias), built on the host and uploaded once; the chunk
 * buffers. */
static rtr_status score_stream_alloc(score_stream *s) {
    const rtr_predictor *p = s->p;
    int H = p->H, D = p->D, K = p->n_pairs;
    size_t KH = (size_t)K * H, HD = (size_t)H * D, cD = (size_t)s->chunk * D, cK = (size_t)s->chunk * K;
    float *host = rtr_malloc(sizeof(float) * (2 * HD + 2 * H + 2 * (size_t)K + 3 * KH));
    if (!host) return RTR_ERR_NOMEM;
    float *wq = host, *sg = wq + 2 * HD, *beta = sg + 2 * H, *G = beta + 2 * K, *C = G + 2 * KH;
    for (int h = 0; h < 2; h++) {
        const rtr_head *hd = &p->head[h];
        rtr_predictor_pair_table(C, p, h);
        rtr_predictor_fold_head(wq + h * HD, G + h * KH, sg + (size_t)h * H, beta + (size_t)h * K, C, hd->W_q, hd->w2, hd->b2, K, H,
                                D);
    }
    rtr_status st = alloc_upload(s->b, &s->wq, wq, 2 * HD);
    if (!st) st = alloc_upload(s->b, &s->sg, sg, 2 * (size_t)H);
    if (!st) st = alloc_upload(s->b, &s->beta, beta, 2 * (size_t)K);
    if (!st) st = alloc_upload(s->b, &s->G, G, 2 * KH);
    if (!st) st = alloc_upload(s->b, &s->A, NULL, 2 * (size_t)s->chunk * H);
    free(host);
    for (int sl = 0; sl < (s->host ? 1 : 2) && !st; sl++) {
        st = rtr_backend_host_alloc(s->b, (void **)&s->hin[sl], cD * sizeof(float));
        if (!st) st = rtr_backend_host_alloc(s->b, (void **)&s->hout[sl], 2 * cK * sizeof(float));
        if (!st && !s->host) st = alloc_upload(s->b, &s->E[sl], NULL, cD);
    }
    if (!st && !s->host) st = alloc_upload(s->b, &s->out, NULL, 2 * cK);
    return st;
}

/* The slot of chunk j: alternating on a device, always 0 on the host. */
static int slot_of(const score_stream *s, int64_t j) { return s->host ? 0 : (int)(j % 2); }

static int64_t rows_of(const score_stream *s, int64_t j) {
    int64_t r0 = j * s->chunk;
    return s->N - r0 < s->chunk ? s->N - r0 : s->chunk;
}

/* Read chunk j into its pinned slot, check it, and upload it beside what
 * the backend is computing. */
static rtr_status score_stage(score_stream *s, int64_t j) {
    int sl = slot_of(s, j), D = s->p->D;
    int64_t r0 = j * s->chunk, n = rows_of(s, j);
    rtr_status st = s->io->read(s->io->ctx, r0, n, s->hin[sl]);
    for (size_t i = 0; !st && i < (size_t)n * D; i++)
        if (!isfinite(s->hin[sl][i]))
            st = rtr_fail(RTR_ERR_NUMERIC, "score: query embedding row %lld holds NaN/inf", (long long)(r0 + (int64_t)(i / D)));
    if (!st && !s->host) st = rtr_backend_upload_async(s->b, s->E[sl], s->hin[sl], (size_t)n * D * sizeof(float));
    return st;
}

/* Queue chunk j: A = E·(|w2|·W_q)ᵀ for both heads, rtr_heads_score, rtr_heads_activate,
 * and the download of its scores into its pinned slot (on the host the ops
 * read and write the slots themselves). */
static rtr_status score_run(score_stream *s, int64_t j) {
    const rtr_predictor *p = s->p;
    const rtr_backend_iface *f = s->b->iface;
    int sl = slot_of(s, j), H = p->H, D = p->D, K = p->n_pairs, n = (int)rows_of(s, j);
    size_t KH = (size_t)K * H, HD = (size_t)H * D, cH = (size_t)s->chunk * H, cK = (size_t)s->chunk * K;
    const float *E = s->host ? s->hin[sl] : s->E[sl];
    float *out = s->host ? s->hout[sl] : s->out;
    rtr_status st = RTR_OK;
    for (int h = 0; h < 2 && !st; h++)
        st = f->sgemm(s->b->ctx, false, true, n, H, D, 1.0f, E, D, s->wq + h * HD, D, 0.0f, s->A + h * cH, H);
    if (!st)
        st = f->heads_score(s->b->ctx, out, out + cK, s->A, s->A + cH, s->G, s->G + KH, s->sg, s->sg + H, s->beta,
                            s->beta + K, n, K, H);
    if (!st) st = f->heads_activate(s->b->ctx, out, out + cK, out, out + cK, p->cfg.token_target, p->token_scale, n, K);
    if (!st && !s->host) st = rtr_backend_download_async(s->b, s->hout[sl], s->out, 2 * cK * sizeof(float));
    return st;
}

/* The scoring loop. Chunk i + 1 is read and uploaded while chunk i
 * computes; chunk i's scores are written while chunk i + 1 computes. Only
 * synchronize orders host and backend. */
static rtr_status score_stream_run(rtr_backend *b, const rtr_predictor *p, int64_t N, int64_t chunk_rows,
                                   const score_io *io) {
    if (N <= 0) return RTR_OK;
    score_stream s = {.b = b, .p = p, .io = io, .host = rtr_backend_is_host(b), .N = N};
    s.chunk = chunk_rows > 0 ? chunk_rows : 16384;
    if (s.chunk > N) s.chunk = N;
    size_t cK = (size_t)s.chunk * p->n_pairs;
    int64_t nc = (N + s.chunk - 1) / s.chunk;
    rtr_status st = score_stream_alloc(&s);
    if (!st) st = score_stage(&s, 0);
    if (!st) st = score_run(&s, 0);
    for (int64_t i = 0; !st && i < nc; i++) {
        /* the host reads chunk i + 1 while the backend computes chunk i */
        if (i + 1 < nc) st = score_stage(&s, i + 1);
        rtr_status sy = rtr_backend_synchronize(b);
        if (!st) st = sy;
        if (!st && i + 1 < nc && !s.host) st = score_run(&s, i + 1);
        const float *out = s.hout[slot_of(&s, i)];
        if (!st) st = rtr_predictor_check_scores_(out, out + cK, i * s.chunk, rows_of(&s, i), p->n_pairs);
        if (!st) st = io->write(io->ctx, i * s.chunk, rows_of(&s, i), out, out + cK);
        /* the host has nothing to overlap: the next chunk computes after the write, into the same slot */
        if (!st && i + 1 < nc && s.host) st = score_run(&s, i + 1);
    }
    if (st) rtr_backend_synchronize(b); /* nothing in flight may outlive the buffers */
    score_stream_free(&s);
    return st;
}

/* ------------------------------------------- host arrays as the stream */

/* Where both streams put scores: two host arrays of N x K. The first
 * member of each stream's context, so one write serves both. */
typedef struct {
    float *p_correct, *tokens;
    int K;
} score_sink;

static rtr_status sink_write(void *ctx, int64_t row0, int64_t rows, const float *p_correct, const float *tokens) {
    const score_sink *a = ctx;
    size_t at = (size_t)row0 * a->K, n = (size_t)rows * a->K * sizeof(float);
    memcpy(a->p_correct + at, p_correct, n);
    memcpy(a->tokens + at, tokens, n);
    return RTR_OK;
}

typedef struct {
    score_sink out;
    const float *emb;
    int D;
} array_io;

static rtr_status array_read(void *ctx, int64_t row0, int64_t rows, float *emb) {
    const array_io *a = ctx;
    memcpy(emb, a->emb + (size_t)row0 * a->D, (size_t)rows * a->D * sizeof(float));
    return RTR_OK;
}

rtr_status rtr_predictor_score_backend(rtr_backend *b, float *p_correct, float *tokens, const rtr_predictor *p,
                                       const float *emb, int64_t N, int64_t chunk_rows) {
    array_io a = {{p_correct, tokens, p->n_pairs}, emb, p->D};
    score_io io = {array_read, sink_write, &a};
    return score_stream_run(b, p, N, chunk_rows, &io);
}

/* ------------------------------------- an embeddings file as the stream */

typedef struct {
    score_sink out;
    hid_t d;
    const char *path;
    int D;
} file_io;

static rtr_status file_read(void *ctx, int64_t row0, int64_t rows, float *emb) {
    file_io *a = ctx;
    return h5_read_rows(a->d, H5_F32, row0, rows, a->D, emb, a->path, "/embedding/query");
}

rtr_status rtr_predictor_score_shard(rtr_backend *b, int64_t *N, float **p_correct, float **tokens,
                                     const rtr_predictor *p, const char *path, int64_t chunk_rows) {
    *p_correct = *tokens = NULL;
    file_io a = {.out.K = p->n_pairs, .d = -1, .path = path, .D = p->D};
    hid_t f = -1;
    int64_t n = 0;
    rtr_status st = h5_open(path, &f);
    if (!st) st = h5_dataset(f, path, "/embedding/query", H5_F32, -1, p->D, &a.d, &n);
    size_t nk = (size_t)n * (size_t)p->n_pairs;
    if (!st) {
        a.out.p_correct = rtr_malloc((nk ? nk : 1) * sizeof(float));
        a.out.tokens = a.out.p_correct ? rtr_malloc((nk ? nk : 1) * sizeof(float)) : NULL;
        if (!a.out.tokens) st = RTR_ERR_NOMEM;
    }
    score_io io = {file_read, sink_write, &a};
    if (!st) st = score_stream_run(b, p, n, chunk_rows, &io);
    if (a.d >= 0) H5Dclose(a.d);
    if (f >= 0) h5_close(f, path);
    if (st) {
        free(a.out.p_correct);
        free(a.out.tokens);
        return st;
    }
    *N = n;
    *p_correct = a.out.p_correct;
    *tokens = a.out.tokens;
    return RTR_OK;
}

/* ------------------------------------------------ scoring a whole corpus */

/* One shard streamed from its embeddings (row reader) into its table file. */
typedef struct {
    rtr_row_reader *r;
    rtr_output_writer *w;
    int D;
} corpus_io;

static rtr_status corpus_read(void *ctx, int64_t row0, int64_t rows, float *emb) {
    corpus_io *a = ctx;
    rtr_rows ch;
    int64_t at = -1;
    rtr_status st = rtr_row_reader_next(a->r, &ch, NULL, &at);
    if (!st && (ch.n != rows || at != row0)) /* no filter: the reader's chunks are the stream's */
        st = rtr_fail(RTR_ERR_INVALID, "score: rows %lld.. read as %lld rows at %lld", (long long)row0, (long long)ch.n,
                      (long long)at);
    if (!st) memcpy(emb, ch.emb, sizeof(float) * (size_t)rows * (size_t)a->D);
    return st;
}

static rtr_status corpus_write(void *ctx, int64_t row0, int64_t rows, const float *p_correct, const float *tokens) {
    (void)row0;
    corpus_io *a = ctx;
    return rtr_output_writer_append(a->w, rows, (const float *const[]){p_correct, tokens});
}

/* The table name a checkpoint file gives by default: its file name
 * without directory and extension ("runs/predictor.safetensors" -> "predictor"). */
static void default_name(char out[129], const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, 129, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = '\0';
}

/* What rtr_part_missing asks: shard i's table file is from this checkpoint. */
typedef struct {
    const char *table, *checkpoint_hash;
} done_ctx;

static bool shard_done(const rtr_corpus *c, int i, void *ctx) {
    const done_ctx *d = ctx;
    rtr_output_info o;
    if (rtr_output_file_info(&o, c, "tables", d->table, i)) return false;
    bool done = o.checkpoint_hash && !strcmp(o.checkpoint_hash, d->checkpoint_hash);
    rtr_output_info_free(&o, 1);
    return done;
}

rtr_status rtr_score_corpus(rtr_backend *b, rtr_score_summary *sum, const char *corpus_dir, const rtr_predictor *p,
                            const rtr_score_params *prm) {
    memset(sum, 0, sizeof *sum);
    if (prm->name) snprintf(sum->table, sizeof sum->table, "%s", prm->name);
    else if (prm->checkpoint_path) default_name(sum->table, prm->checkpoint_path);
    if (!rtr_output_name_valid(sum->table))
        return rtr_fail(RTR_ERR_INVALID, "table name '%s': use 1..128 letters, digits, '.', '_', '-' (--name)", sum->table);
    rtr_predictor_hash_hex(p, sum->checkpoint_hash);
    rtr_corpus *c = NULL;
    rtr_status st = rtr_corpus_open(&c, corpus_dir);
    const rtr_catalog *cat = st ? NULL : rtr_corpus_catalog(c);
    if (!st && (rtr_catalog_hash(cat) != p->catalog_hash || cat->n_pairs != p->n_pairs))
        st = rtr_fail(RTR_ERR_INVALID, "%s: the corpus's catalog (%d pairs, hash %016llx) is not the catalog the "
                      "checkpoint was trained on (%d pairs, hash %016llx)", corpus_dir, cat->n_pairs,
                      (unsigned long long)rtr_catalog_hash(cat), p->n_pairs, (unsigned long long)p->catalog_hash);
    /* the embeddings of the checkpoint's encoder (any folder name) */
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_EMBEDDING;
    q.encoder_hash = p->encoder_hash;
    q.chunk_rows = prm->chunk_rows > 0 ? prm->chunk_rows : 16384;
    rtr_row_reader *probe = NULL;
    if (!st) st = rtr_row_reader_open(&probe, c, &q);
    const rtr_row_source *src = st ? NULL : rtr_row_reader_source(probe);
    if (!st && src->dim != p->D)
        st = rtr_fail(RTR_ERR_FORMAT, "%s: query embeddings (%s) have %d dims, the checkpoint %d", corpus_dir,
                      src->encoding, src->dim, p->D);
    if (!st) {
        snprintf(sum->encoder, sizeof sum->encoder, "%s", src->encoding);
        q.encoder = sum->encoder;
    }
    /* each shard is read alone below: its ids are checked unique across the corpus first */
    if (!st) st = rtr_corpus_check_ids(c);
    int n = st ? 0 : rtr_corpus_n_shards(c);
    rtr_part part = {0, 1};
    bool *mine = NULL;
    if (!st) st = rtr_part_shards(&mine, &part, c, &prm->part);
    rtr_output_writer **w = rtr_calloc((size_t)(n ? n : 1), sizeof *w);
    if (!st && !w) st = RTR_ERR_NOMEM;
    int64_t total = 0;
    for (int i = 0; !st && i < n; i++) total += mine[i] ? rtr_corpus_shard_queries(c, i) : 0;
    const char *ck = prm->checkpoint_path ? strrchr(prm->checkpoint_path, '/') : NULL;
    /* the file name is shown by info and eval, never compared (the hash is):
     * a name in another encoding is kept readable rather than refused */
    char *ck_name = prm->checkpoint_path ? rtr_utf8_scrub(ck ? ck + 1 : prm->checkpoint_path) : NULL;
    if (!st && prm->checkpoint_path && !ck_name) st = RTR_ERR_NOMEM;
    rtr_table_meta meta = {sum->table, ck_name, sum->checkpoint_hash,
                           src ? src->encoding : NULL, p->encoder_hash, false};
    rtr_progress prog;
    rtr_progress_init(&prog, "score", (double)total);
    /* every shard's file of this part written under its temporary name, then all renamed */
    for (int i = 0; i < n && !st; i++) {
        if (!mine[i]) continue;
        corpus_io a = {.D = p->D};
        q.shard = i;
        st = rtr_row_reader_open(&a.r, c, &q);
        if (!st) st = rtr_table_writer_open(&w[i], c, i, &meta);
        a.w = w[i];
        score_io io = {corpus_read, corpus_write, &a};
        if (!st) st = score_stream_run(b, p, rtr_corpus_shard_queries(c, i), q.chunk_rows, &io);
        if (!st) st = rtr_output_writer_finish(w[i]);
        rtr_row_reader_close(a.r);
        sum->n_queries += rtr_corpus_shard_queries(c, i);
        rtr_progress_update(&prog, (double)sum->n_queries);
    }
    rtr_progress_end(&prog);
    /* under MPI no rank renames before every rank has written its files (a
     * rank that failed has stopped the job: docs/SCALING.md) */
    if (!st) st = rtr_dist_barrier();
    for (int i = 0; i < n && !st; i++) {
        if (!w[i]) continue;
        st = rtr_output_writer_commit(w[i]); /* frees the writer either way */
        w[i] = NULL;
    }
    for (int i = 0; i < n; i++) rtr_output_writer_abort(w[i]);
    free(w);
    free(mine);
    free(ck_name);
    double nq = (double)sum->n_queries;
    if (!st) st = rtr_dist_sum_f64(&nq, 1);
    sum->n_queries = (int64_t)nq;
    if (!st && part.count > 1 && rtr_dist_rank() == 0) {
        done_ctx d = {sum->table, sum->checkpoint_hash};
        char what[160];
        snprintf(what, sizeof what, "tables/%s", sum->table);
        sum->shards_missing = rtr_part_missing(c, shard_done, &d, what);
    }
    rtr_row_reader_close(probe);
    rtr_corpus_close(c);
    sum->n_pairs = p->n_pairs;
    return st;
}
