/* The routing stage (include/rtr/stages.h): one decision per query of a
 * corpus, streamed a chunk at a time from its routing table into a
 * decisions file (rtr_route_corpus), and texts routed in memory through an
 * encoder and a checkpoint (rtr_route_texts). At λ each query takes its
 * highest λ·p − (1−λ)·c (rtr_route_argmax on a backend); under a budget the
 * exact λ path gives the largest λ whose predicted mean cost fits
 * (rtr_path_budget), and each query takes its envelope's pair there. */
#include "rtr/stages.h"
#include "common/files.h"
#include "common/util.h"
#include "route/route_data.h"
#include "rtr/dist.h"
#include "store/h5.h"
#include "store/runs.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

rtr_route_params rtr_route_default_params(void) {
    rtr_route_params p = {0};
    p.o.cost_model = RTR_COST_TOKENS;
    p.lambda = 0.5;
    p.budget = NAN;
    return p;
}

/* ----------------------------------------------------------- decisions */

/* A decisions file being written: CSV, JSON lines or HDF5, chosen by the
 * extension, under a temporary name until committed. */
typedef enum { DEC_CSV, DEC_JSONL, DEC_H5 } dec_format;

typedef struct {
    dec_format fmt;
    char *path, *tmp;
    const rtr_catalog *cat;
    FILE *f;
    hid_t h5, d[7]; /* id, dataset, split, pair, p_correct, pred_tokens, pred_cost */
    int64_t n;
    float *col;
    size_t col_cap;
} dec_writer;

static const char *const DEC_COLS[7] = {"id", "dataset", "split", "pair", "p_correct", "pred_tokens", "pred_cost"};
static const char DEC_CSV_HEAD[] = "id,dataset,split,model,strategy,p_correct,pred_tokens,pred_cost\n";

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcmp(s + n - m, suffix);
}

static void dec_abort(dec_writer *w) {
    if (w->f) fclose(w->f);
    for (int i = 0; i < 7; i++)
        if (w->d[i] >= 0) H5Dclose(w->d[i]);
    if (w->h5 >= 0) h5_close(w->h5, w->tmp);
    if (w->tmp) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w->col);
    memset(w, 0, sizeof *w);
    w->h5 = -1;
    for (int i = 0; i < 7; i++) w->d[i] = -1;
}

/* The format path's extension names, and whether path can be written. */
static rtr_status dec_format_of(const char *path, dec_format *fmt) {
    *fmt = ends_with(path, ".h5") ? DEC_H5 : ends_with(path, ".jsonl") ? DEC_JSONL : DEC_CSV;
    if (*fmt == DEC_CSV && !ends_with(path, ".csv"))
        return rtr_fail(RTR_ERR_INVALID, "%s: decisions go to FILE.csv, FILE.jsonl or FILE.h5", path);
    if (rtr_is_dir(path)) return rtr_fail(RTR_ERR_IO, "%s: is a directory", path);
    return RTR_OK;
}

static rtr_status dec_open(dec_writer *w, const char *path, const rtr_catalog *cat) {
    memset(w, 0, sizeof *w);
    w->h5 = -1;
    for (int i = 0; i < 7; i++) w->d[i] = -1;
    w->cat = cat;
    rtr_status s = dec_format_of(path, &w->fmt);
    if (s) return s;
    s = (w->path = rtr_strdup(path)) && (w->tmp = rtr_tmp_path(path)) ? RTR_OK : RTR_ERR_NOMEM;
    if (s) return s;
    if (w->fmt != DEC_H5) {
        if (!(w->f = fopen(w->tmp, "w"))) s = rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
        else if (w->fmt == DEC_CSV) fputs(DEC_CSV_HEAD, w->f);
    } else {
        const h5_kind kinds[7] = {H5_VSTR, H5_VSTR, H5_VSTR, H5_I32, H5_F32, H5_F32, H5_F32};
        s = h5_create(w->tmp, &w->h5);
        for (int i = 0; i < 7 && !s; i++) s = h5_make(w->h5, DEC_COLS[i], kinds[i], 0, kinds[i] == H5_F32 ? 0 : 1, &w->d[i]);
        /* the pair names the "pair" column indexes */
        char **names = s ? NULL : rtr_calloc((size_t)cat->n_pairs, sizeof *names);
        hid_t dn = -1;
        if (!s && !names) s = RTR_ERR_NOMEM;
        for (int32_t j = 0; !s && j < cat->n_pairs; j++)
            if (!(names[j] = rtr_catalog_pair_name(cat, j))) s = RTR_ERR_NOMEM;
        if (!s) s = h5_make(w->h5, "pairs", H5_VSTR, 0, 1, &dn);
        if (!s) s = h5_append(dn, H5_VSTR, 0, cat->n_pairs, 1, names, "pairs");
        if (dn >= 0) H5Dclose(dn);
        for (int32_t j = 0; names && j < cat->n_pairs; j++) free(names[j]);
        free(names);
    }
    if (s) dec_abort(w);
    return s;
}

/* One CSV field, quoted when it holds a separator, quote or line break. */
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* One chunk's decisions as an HDF5 file holds them: n rows' strings, the
 * pair chosen and its three estimates (p_correct, pred_tokens, pred_cost). */
typedef struct {
    int64_t n;
    char *const *str[3]; /* id, dataset, split */
    const int32_t *pair;
    const float *est[3];
} dec_rows;

/* The chunk's rows appended to the HDF5 file's columns: the same calls
 * whichever rank routed the chunk, so the file is one process's. */
static rtr_status dec_h5_append(dec_writer *w, const dec_rows *r) {
    rtr_status s = RTR_OK;
    for (int c = 0; c < 3 && !s; c++) s = h5_append(w->d[c], H5_VSTR, w->n, r->n, 1, r->str[c], DEC_COLS[c]);
    if (!s) s = h5_append(w->d[3], H5_I32, w->n, r->n, 1, r->pair, DEC_COLS[3]);
    for (int c = 0; c < 3 && !s; c++) s = h5_append(w->d[4 + c], H5_F32, w->n, r->n, 0, r->est[c], DEC_COLS[4 + c]);
    w->n += r->n;
    return s ? rtr_fail_prefix(s, "%s: ", w->tmp) : RTR_OK;
}

/* Under MPI a rank other than 0 keeps its HDF5 decisions, a chunk at a
 * time, in a temporary file of its own (w->f) until rank 0 takes them
 * (dec_stream_out): the chunk's rows n and string bytes, then its pairs,
 * its three estimate columns and its strings (NUL-terminated, column by
 * column). Rank 0 appends each chunk as it comes, the unit one process
 * appends, so the file's layout is one process's. */
static rtr_status dec_rows_save(dec_writer *w, const dec_rows *r) {
    int64_t head[2] = {r->n, 0};
    for (int c = 0; c < 3; c++)
        for (int64_t i = 0; i < r->n; i++) head[1] += (int64_t)strlen(r->str[c][i]) + 1;
    fwrite(head, sizeof head, 1, w->f);
    fwrite(r->pair, sizeof *r->pair, (size_t)r->n, w->f);
    for (int c = 0; c < 3; c++) fwrite(r->est[c], sizeof(float), (size_t)r->n, w->f);
    for (int c = 0; c < 3; c++)
        for (int64_t i = 0; i < r->n; i++) fwrite(r->str[c][i], 1, strlen(r->str[c][i]) + 1, w->f);
    w->n += r->n;
    return ferror(w->f) ? rtr_fail(RTR_ERR_IO, "route's decisions: cannot write a temporary file (disk full? set TMPDIR)")
                        : RTR_OK;
}

/* Decisions of n queries: choice[i] among the k pairs, with their predictions. */
static rtr_status dec_add(dec_writer *w, int64_t n, char *const *id, char *const *dataset, char *const *split,
                          const int32_t *choice, const float *p, const float *tokens, const float *cost) {
    const rtr_catalog *cat = w->cat;
    size_t k = (size_t)cat->n_pairs;
    if (w->fmt == DEC_H5) {
        if ((size_t)(3 * n) > w->col_cap) {
            float *c = rtr_realloc(w->col, sizeof *c * (size_t)(3 * n));
            if (!c) return RTR_ERR_NOMEM;
            w->col = c;
            w->col_cap = (size_t)(3 * n);
        }
        const float *src[3] = {p, tokens, cost};
        dec_rows r = {n, {id, dataset, split}, choice, {w->col, w->col + n, w->col + 2 * n}};
        for (int c = 0; c < 3; c++)
            for (int64_t i = 0; i < n; i++) w->col[c * n + i] = src[c][(size_t)i * k + (size_t)choice[i]];
        return w->h5 >= 0 ? dec_h5_append(w, &r) : dec_rows_save(w, &r);
    }
    for (int64_t i = 0; i < n; i++) {
        int32_t j = choice[i];
        size_t at = (size_t)i * k + (size_t)j;
        const char *model = cat->models[cat->pair_model[j]].name, *strategy = cat->strategies[cat->pair_strategy[j]].name;
        if (w->fmt == DEC_JSONL) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", id[i]);
            cJSON_AddStringToObject(o, "dataset", dataset[i]);
            cJSON_AddStringToObject(o, "split", split[i]);
            cJSON_AddStringToObject(o, "model", model);
            cJSON_AddStringToObject(o, "strategy", strategy);
            cJSON_AddNumberToObject(o, "p_correct", p[at]);
            cJSON_AddNumberToObject(o, "pred_tokens", tokens[at]);
            cJSON_AddNumberToObject(o, "pred_cost", cost[at]);
            char *text = cJSON_PrintUnformatted(o);
            if (text) { fputs(text, w->f); fputc('\n', w->f); }
            free(text);
            cJSON_Delete(o);
        } else {
            const char *cols[] = {id[i], dataset[i], split[i], model, strategy};
            for (int c = 0; c < 5; c++) { csv_field(w->f, cols[c]); fputc(',', w->f); }
            fprintf(w->f, "%.9g,%.9g,%.9g\n", p[at], tokens[at], cost[at]);
        }
    }
    w->n += n;
    return ferror(w->f) ? rtr_fail(RTR_ERR_IO, "%s: write failed", w->tmp) : RTR_OK;
}

static rtr_status dec_commit(dec_writer *w, double lambda, const char *cost_model, double cost_scale,
                             const char *checkpoint_hash) {
    rtr_status s = RTR_OK;
    if (w->fmt == DEC_H5) {
        s = h5_put_f64(w->h5, "lambda", lambda);
        if (!s) s = h5_put_f64(w->h5, "cost_scale", cost_scale);
        if (!s) s = h5_put_str(w->h5, "cost_model", cost_model);
        if (!s) s = h5_put_str(w->h5, "checkpoint_hash", checkpoint_hash ? checkpoint_hash : "");
        for (int i = 0; i < 7; i++) H5Dclose(w->d[i]), w->d[i] = -1;
        rtr_status c = h5_close(w->h5, w->tmp);
        w->h5 = -1;
        if (!s) s = c;
    } else {
        bool bad = ferror(w->f) != 0;
        bad |= fclose(w->f) != 0;
        w->f = NULL;
        if (bad) s = rtr_fail(RTR_ERR_IO, "%s: write failed (disk full?)", w->tmp);
    }
    if (!s) s = rtr_commit_file(w->tmp, w->path);
    dec_abort(w); /* frees; the temporary name is gone once renamed */
    return s;
}

/* ----------------------------------------------------------- decisions */

/* rtr_route_argmax on backend b, host arrays in and out (on the host: as they are). */
static rtr_status argmax_on(rtr_backend *b, int32_t *choice, const float *p, const float *c, double lambda, int64_t n,
                            int32_t k) {
    const rtr_backend_iface *f = b->iface;
    if (rtr_backend_is_host(b)) return f->route_argmax(b->ctx, choice, p, c, lambda, n, k);
    size_t nk = (size_t)n * (size_t)k * sizeof(float);
    float *dp = NULL, *dc = NULL;
    int32_t *dch = NULL;
    rtr_status st = rtr_backend_alloc(b, (void **)&dp, nk);
    if (!st) st = rtr_backend_alloc(b, (void **)&dc, nk);
    if (!st) st = rtr_backend_alloc(b, (void **)&dch, (size_t)n * sizeof *dch);
    if (!st) st = rtr_backend_upload(b, dp, p, nk);
    if (!st) st = rtr_backend_upload(b, dc, c, nk);
    if (!st) st = f->route_argmax(b->ctx, dch, dp, dc, lambda, n, k);
    if (!st) st = rtr_backend_download(b, choice, dch, (size_t)n * sizeof *dch);
    rtr_backend_free_mem(b, dp);
    rtr_backend_free_mem(b, dc);
    rtr_backend_free_mem(b, dch);
    return st;
}

/* What the decisions add up to, accumulated chunk by chunk. */
typedef struct {
    double pa, pc, ra, rc;
    int64_t n, missing;
    bool truth;
} route_sums;

static void sums_add(route_sums *a, int64_t *count, int64_t n, int32_t k, const int32_t *choice, const float *p,
                     const float *cost, const float *tc, const float *tk) {
    for (int64_t i = 0; i < n; i++) {
        size_t at = (size_t)i * (size_t)k + (size_t)choice[i];
        a->pa += p[at];
        a->pc += cost[at];
        count[choice[i]]++;
        if (!tc) continue;
        if (!isnan(tc[at])) a->truth = true;
        if (isnan(tc[at]) || isnan(tk[at])) { a->missing++; continue; }
        a->ra += tc[at];
        a->rc += tk[at];
    }
    a->n += n;
}

/* The summary's double sums one record per chunk routed (pa, pc, ra, rc),
 * each chunk's from zero; sums_total adds them in row order. */
typedef struct {
    double *v;
    size_t n, cap; /* records */
} chunk_sums;

static rtr_status chunk_sums_push(chunk_sums *cs, const route_sums *c) {
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? 2 * cs->cap : 64;
        double *v = rtr_realloc(cs->v, cap * 4 * sizeof *v);
        if (!v) return RTR_ERR_NOMEM;
        cs->v = v, cs->cap = cap;
    }
    double *v = cs->v + 4 * cs->n++;
    v[0] = c->pa, v[1] = c->pc, v[2] = c->ra, v[3] = c->rc;
    return RTR_OK;
}

/* The job's sums into a: the counts added over the ranks, the chunks'
 * records gathered on rank 0 in rank order, which is row order (rank r
 * routes the r-th range of rows, rtr_part_range, cut where a chunk ends),
 * added there in that order and sent to every rank. One process adds the
 * same records in the same order, so the figures are equal to the last bit
 * for any number of ranks (a row-by-row total could not be split). */
static rtr_status sums_total(route_sums *a, int64_t *count, int32_t k, const chunk_sums *cs) {
    int64_t ints[3] = {a->n, a->missing, a->truth};
    rtr_status st = rtr_dist_sum_i64(ints, 3);
    if (!st) st = rtr_dist_sum_i64(count, (size_t)k);
    void *all = NULL;
    size_t len = 0;
    if (!st) st = rtr_dist_gather(&all, &len, NULL, cs->v, cs->n * 4 * sizeof(double));
    double t[4] = {0, 0, 0, 0};
    const double *v = all;
    for (size_t i = 0; !st && i + 4 <= len / sizeof *v; i += 4)
        for (int j = 0; j < 4; j++) t[j] += v[i + (size_t)j];
    free(all);
    if (!st) st = rtr_dist_bcast(t, sizeof t, 0);
    *a = (route_sums){.pa = t[0], .pc = t[1], .ra = t[2], .rc = t[3], .n = ints[0], .missing = ints[1],
                      .truth = ints[2] != 0};
    return st;
}

static rtr_status summary_init(rtr_route_summary *s, const rtr_catalog *cat) {
    s->k = cat->n_pairs;
    s->count = rtr_calloc((size_t)s->k, sizeof *s->count);
    s->pair_names = rtr_calloc((size_t)s->k, sizeof *s->pair_names);
    if (!s->count || !s->pair_names) return RTR_ERR_NOMEM;
    for (int32_t j = 0; j < s->k; j++)
        if (!(s->pair_names[j] = rtr_catalog_pair_name(cat, j))) return RTR_ERR_NOMEM;
    return RTR_OK;
}

static void summary_finish(rtr_route_summary *s, const route_sums *a) {
    s->n_queries = a->n;
    s->pred_acc = a->pa / (double)a->n;
    s->pred_cost = a->pc / (double)a->n;
    s->acc = s->cost = NAN;
    s->n_missing = 0;
    if (a->truth && a->missing < a->n) {
        s->acc = a->ra / (double)(a->n - a->missing);
        s->cost = a->rc / (double)(a->n - a->missing);
    }
    if (a->truth) s->n_missing = a->missing;
}

void rtr_route_summary_free(rtr_route_summary *s) {
    for (int32_t j = 0; s->pair_names && j < s->k; j++) free(s->pair_names[j]);
    free(s->pair_names);
    free(s->count);
    free(s->checkpoint_hash);
    memset(s, 0, sizeof *s);
}

static rtr_status check_params(const rtr_route_params *prm) {
    if (isnan(prm->budget) && !(prm->lambda >= 0 && prm->lambda <= 1))
        return rtr_fail(RTR_ERR_INVALID, "--lambda %.17g is outside [0, 1]", prm->lambda);
    if (!isnan(prm->budget) && !(prm->budget >= 0 && isfinite(prm->budget)))
        return rtr_fail(RTR_ERR_INVALID, "--budget %g must be a finite number >= 0", prm->budget);
    return RTR_OK;
}

/* Under a budget: the path's largest λ whose predicted mean cost fits (a pass over the table). */
static rtr_status budget_lambda(rtr_backend *b, route_source *rs, const rtr_route_params *prm, double *lambda) {
    rtr_path_builder *pb = NULL;
    rtr_status st = rtr_path_builder_open(b, &pb, rtr_corpus_catalog(rs->corp)->n_pairs, false, 0);
    if (!st) st = route_source_begin(rs, 0);
    route_chunk ch;
    /* under MPI rs reads this rank's shards only; the ranks' breakpoints are merged */
    while (!st && !(st = route_source_next(rs, &ch)) && ch.n) {
        rtr_route_table t = route_chunk_table(&ch, false);
        st = rtr_path_builder_add(pb, &t);
    }
    if (st) {
        rtr_path_builder_free(pb);
        return st;
    }
    /* a pass over the path's points, never holding them (under MPI on rank 0, streamed from every rank) */
    return rtr_path_builder_budget(pb, prm->budget, prm->budget_total, lambda);
}

/* One chunk's choices: the envelope's pair at λ under a budget (the path's
 * own choice at its switch points), else the argmax. */
static rtr_status chunk_choose(rtr_backend *b, int32_t *choice, const route_chunk *ch, bool by_budget, double lambda) {
    return by_budget ? rtr_envelope_choose_on(b, choice, ch->p, ch->c, lambda, ch->n, ch->k, 0)
                     : argmax_on(b, choice, ch->p, ch->c, lambda, ch->n, ch->k);
}

#define DEC_COLUMNS (RTR_COL_ID | RTR_COL_DATASET | RTR_COL_SPLIT)

/* Route every row rs yields (under MPI the rank's range, rs->rows) into w,
 * adding the counts to a and count and each chunk's sums to cs. */
static rtr_status route_rows(rtr_backend *b, route_source *rs, dec_writer *w, bool by_budget, double lambda,
                             int32_t *choice, route_sums *a, chunk_sums *cs, int64_t *count) {
    route_chunk ch;
    rtr_status st = route_source_begin(rs, DEC_COLUMNS);
    while (!st && !(st = route_source_next(rs, &ch)) && ch.n) {
        route_sums c = {0};
        st = chunk_choose(b, choice, &ch, by_budget, lambda);
        if (!st) st = dec_add(w, ch.n, ch.id, ch.dataset, ch.split, choice, ch.p, ch.tokens, ch.cost);
        if (!st) sums_add(&c, count, ch.n, ch.k, choice, ch.p, ch.cost, ch.true_correct, ch.true_cost);
        if (!st) st = chunk_sums_push(cs, &c);
        a->n += c.n, a->missing += c.missing, a->truth |= c.truth;
    }
    return st;
}

/* Tests only (tests/test_route_sweep_mpi.py, test_route_h5_mpi.py):
 * RTR_TEST_KILL_RANK=r makes rank r die (SIGKILL) once its decisions are in
 * the temporary file and before the ranks' barrier (CSV, JSON lines), or
 * once routed and before it sends them to rank 0 (HDF5): the window in
 * which a crash leaves the temporary, a known point where a kill from
 * outside is a timing guess. */
static void test_kill_point(void) {
    const char *r = getenv("RTR_TEST_KILL_RANK");
    char *end;
    long rank = r && *r ? strtol(r, &end, 10) : -1;
    /* a whole number only: "yes" or "" must not read as rank 0 */
    if (r && *r && !*end && rank == rtr_dist_rank()) raise(SIGKILL);
}

/* This rank's n bytes of decisions, in its segment file seg, to offset at of the one file tmp (pread and pwrite:
 * no shared file pointer). */
static rtr_status segment_copy(FILE *seg, const char *tmp, int64_t n, int64_t at) {
    int fd = open(tmp, O_WRONLY);
    if (fd < 0) return rtr_fail(RTR_ERR_IO, "%s: cannot open to write this rank's decisions: %s", tmp, strerror(errno));
    char *buf = rtr_malloc((size_t)1 << 20);
    rtr_status st = buf ? RTR_OK : RTR_ERR_NOMEM;
    for (int64_t done = 0; !st && done < n;) {
        size_t want = (size_t)(n - done < (int64_t)1 << 20 ? n - done : (int64_t)1 << 20);
        ssize_t got = pread(fileno(seg), buf, want, (off_t)done);
        if (got <= 0 || pwrite(fd, buf, (size_t)got, (off_t)(at + done)) != got)
            st = rtr_fail(RTR_ERR_IO, "%s: write failed (disk full?): %s", tmp, strerror(errno));
        else done += got;
    }
    if (!st && fsync(fd) != 0) st = rtr_fail(RTR_ERR_IO, "%s: write failed (disk full?): %s", tmp, strerror(errno));
    close(fd);
    free(buf);
    return st;
}

/* The decisions under MPI (CSV and JSON lines): each rank has routed its
 * range of rows (rtr_part_range) into a segment file of its own, `mine`
 * bytes. The ranks' sizes summed over the ranks give each its offset in
 * the one file (the ranges follow each other in rank order, and so do
 * their rows in the file); rank 0 creates that file under its temporary
 * name (the header, then its final size), every rank writes its bytes at
 * its offset (the file must be on a filesystem the ranks share, as the
 * corpus is), and rank 0 renames it once every rank has (a barrier; a rank
 * that fails stops the job, leaving only the temporary, which the next run
 * removes). The bytes are one process's. */
static rtr_status decisions_place(FILE *seg, int64_t mine, dec_format fmt, const char *out_path) {
    int size = rtr_dist_size(), rank = rtr_dist_rank();
    int64_t *bytes = rtr_calloc((size_t)size, sizeof *bytes);
    rtr_status st = bytes ? RTR_OK : RTR_ERR_NOMEM;
    if (!st) bytes[rank] = mine, st = rtr_dist_sum_i64(bytes, (size_t)size);
    int64_t head = fmt == DEC_CSV ? (int64_t)strlen(DEC_CSV_HEAD) : 0, at = head, total = head;
    for (int r = 0; !st && r < size; r++) {
        at += r < rank ? bytes[r] : 0;
        total += bytes[r];
    }
    free(bytes);
    /* the file's temporary name is rank 0's, host and pid (the ranks may run
     * on several machines): every rank writes into the one file */
    struct {
        int64_t pid;
        char host[RTR_HOST_MAX];
    } writer = {(int64_t)getpid(), {0}};
    int64_t made = 0;
    char *tmp = NULL;
    rtr_host_name(writer.host);
    if (!st) st = rtr_dist_bcast(&writer, sizeof writer, 0);
    if (!st && !(tmp = rtr_tmp_name(out_path, writer.host, (long)writer.pid))) st = RTR_ERR_NOMEM;
    if (!st && rank == 0) {
        rtr_remove_stale_tmp(out_path);
        FILE *f = fopen(tmp, "w");
        bool bad = !f || fwrite(DEC_CSV_HEAD, 1, (size_t)head, f) != (size_t)head || fflush(f) != 0 ||
                   ftruncate(fileno(f), (off_t)total) != 0;
        if (f && fclose(f) != 0) bad = true;
        st = bad ? rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno)) : RTR_OK;
        made = !st;
    }
    if (tmp && (!st || rank == 0)) {
        rtr_status c = rtr_dist_bcast(&made, sizeof made, 0); /* rank 0 failed: the others stop too */
        if (!st) st = c;
        if (!st && !made) st = rtr_fail(RTR_ERR_IO, "%s: rank 0 could not create it", tmp);
    }
    if (!st) st = segment_copy(seg, tmp, mine, at);
    if (!st) test_kill_point();
    if (!st) st = rtr_dist_barrier();
    if (!st && rank == 0) st = rtr_commit_file(tmp, out_path);
    if (st && made) unlink(tmp);
    free(tmp);
    return st;
}

/* HDF5 decisions under MPI: a rank's chunks (dec_rows_save), in messages of
 * 64 KiB, to rank 0. */
#define DEC_STREAM_BYTES ((size_t)1 << 16)
#define DEC_STREAM_TAG 72

/* A rank other than 0: its saved chunks, bytes long, streamed to rank 0
 * (which takes them once the ranks before have been written). */
static rtr_status dec_stream_out(FILE *seg, int64_t bytes) {
    rtr_dist_stream out;
    rtr_dist_stream_open(&out, rtr_dist_rank(), 1, DEC_STREAM_BYTES, DEC_STREAM_TAG);
    char *buf = rtr_malloc(DEC_STREAM_BYTES);
    rtr_status st = buf ? RTR_OK : RTR_ERR_NOMEM;
    for (int64_t done = 0; !st && done < bytes;) {
        size_t want = (size_t)(bytes - done) < DEC_STREAM_BYTES ? (size_t)(bytes - done) : DEC_STREAM_BYTES;
        ssize_t got = pread(fileno(seg), buf, want, (off_t)done);
        if (got <= 0) st = rtr_fail(RTR_ERR_IO, "route's decisions: a temporary file reads short: %s", strerror(errno));
        else st = rtr_dist_stream_put(&out, buf, (size_t)got), done += got;
    }
    if (!st) st = rtr_dist_stream_end(&out);
    rtr_dist_stream_close(&out);
    free(buf);
    return st;
}

/* Rank 0: rank `from`'s chunks, appended to w one at a time as they come
 * (one chunk held: what one process holds of its decisions too). */
static rtr_status dec_stream_in(dec_writer *w, int from) {
    rtr_dist_stream in;
    rtr_dist_stream_open(&in, from, 1, DEC_STREAM_BYTES, DEC_STREAM_TAG);
    char *mem = NULL, **ptr = NULL;
    size_t mem_cap = 0, ptr_cap = 0, got = 0;
    rtr_status st = RTR_OK;
    for (;;) {
        int64_t head[2];
        st = rtr_dist_stream_read(&in, head, sizeof head, &got);
        if (st || !got) break; /* the stream's end */
        size_t n = (size_t)head[0], fixed = n * (sizeof(int32_t) + 3 * sizeof(float)), need = fixed + (size_t)head[1];
        if (got != sizeof head || head[0] <= 0 || head[1] < 3 * head[0] || head[0] > ((int64_t)1 << 40)) {
            st = rtr_fail(RTR_ERR_FORMAT, "route's decisions: rank %d sent a malformed chunk", from);
            break;
        }
        if (need > mem_cap) {
            char *m = rtr_realloc(mem, need);
            if (!m) { st = RTR_ERR_NOMEM; break; }
            mem = m, mem_cap = need;
        }
        if (3 * n > ptr_cap) {
            char **q = rtr_realloc(ptr, 3 * n * sizeof *q);
            if (!q) { st = RTR_ERR_NOMEM; break; }
            ptr = q, ptr_cap = 3 * n;
        }
        st = rtr_dist_stream_read(&in, mem, need, &got);
        if (!st && got != need) st = rtr_fail(RTR_ERR_FORMAT, "route's decisions: rank %d's stream ends inside a chunk", from);
        /* the strings' starts, each checked to end inside the chunk */
        char *at = mem + fixed, *end = mem + need;
        for (size_t i = 0; !st && i < 3 * n; i++) {
            char *z = at < end ? memchr(at, '\0', (size_t)(end - at)) : NULL;
            if (!z) st = rtr_fail(RTR_ERR_FORMAT, "route's decisions: rank %d sent a malformed chunk", from);
            else ptr[i] = at, at = z + 1;
        }
        if (st) break;
        /* the columns are 4-byte aligned: the chunk starts a fresh allocation and the pairs and floats come first */
        const float *est = (const float *)(mem + n * sizeof(int32_t));
        dec_rows r = {(int64_t)n, {ptr, ptr + n, ptr + 2 * n}, (const int32_t *)mem, {est, est + n, est + 2 * n}};
        if ((st = dec_h5_append(w, &r))) break;
    }
    rtr_dist_stream_close(&in);
    free(mem);
    free(ptr);
    return st;
}

/* HDF5 decisions under MPI: rank 0 has routed its rows into the file (its
 * temporary name) and appends every other rank's, in rank order, which is
 * row order; each other rank sends what it saved in seg (bytes long). */
static rtr_status decisions_gather_h5(dec_writer *w, FILE *seg, int64_t bytes) {
    rtr_status st = RTR_OK;
    if (rtr_dist_rank() != 0) {
        test_kill_point();
        return dec_stream_out(seg, bytes);
    }
    for (int r = 1; !st && r < rtr_dist_size(); r++) st = dec_stream_in(w, r);
    return st;
}

rtr_status rtr_route_corpus(rtr_backend *b, const char *out_path, rtr_route_summary *s, const char *corpus_dir,
                            const rtr_route_params *prm) {
    memset(s, 0, sizeof *s);
    rtr_status st = check_params(prm);
    if (st) return st;
    route_source rs;
    route_load_params lp = {.o = prm->o};
    st = route_source_open(&rs, corpus_dir, &lp, prm->chunk_rows);
    if (st) return st;
    const rtr_catalog *cat = rtr_corpus_catalog(rs.corp);
    bool by_budget = !isnan(prm->budget);
    dec_writer w;
    int32_t *choice = rtr_malloc(sizeof *choice * (size_t)rs.chunk_rows);
    st = choice ? summary_init(s, cat) : RTR_ERR_NOMEM;
    /* under MPI the cost scale comes from each rank's whole shards (its
     * per-shard sums keep one process's bits), the budget's path and the
     * decisions from each rank's range of rows, cut where a chunk ends
     * (route_rows' sums); the first pass over the ranges checks the ids, each
     * rank its own, together (the row reader: a range's pass under MPI) */
    bool *mine = NULL;
    rtr_part part;
    rtr_row_range range;
    dec_format fmt = DEC_CSV;
    bool ranks = rtr_dist_size() > 1;
    if (!st) st = dec_format_of(out_path, &fmt);
    if (!st && ranks) st = rtr_part_shards(&mine, &part, rs.corp, NULL);
    if (!st && ranks) st = rtr_part_range(&range, &part, rs.corp, NULL, rs.chunk_rows);
    rs.shards = mine;
    if (!st) st = route_source_scale(&rs);
    rs.shards = NULL;
    free(mine);
    if (ranks) rs.rows = &range;
    s->lambda = prm->lambda;
    s->chosen_by = "--lambda";
    if (!st && by_budget) {
        st = budget_lambda(b, &rs, prm, &s->lambda);
        s->chosen_by = prm->budget_total ? "--budget total, largest lambda within it" : "--budget mean, largest lambda within it";
        rs.prm.ids_checked = true; /* the budget's pass checked them (under MPI every rank its range's, together) */
    }
    /* the decisions, each rank its range: into the file itself by its one
     * writer (alone, or rank 0 for HDF5 under MPI), else into a segment of
     * the rank's own, placed in the file by bytes (CSV, JSON lines) or
     * streamed to rank 0 (HDF5, whose columns are appended) */
    route_sums sums = {0};
    chunk_sums cs = {0};
    bool open = false, writer = rtr_dist_rank() == 0 && (!ranks || fmt == DEC_H5);
    FILE *seg = NULL;
    memset(&w, 0, sizeof w);
    if (!st && ranks && !writer) st = run_temp_file(&seg, "route's decisions");
    if (!writer) w = (dec_writer){.fmt = fmt, .cat = cat, .f = seg, .h5 = -1};
    if (!st && writer) st = dec_open(&w, out_path, cat);
    open = !st && writer;
    if (!st) st = route_rows(b, &rs, &w, by_budget, s->lambda, choice, &sums, &cs, s->count);
    int64_t seg_bytes = seg ? ftello(seg) : 0;
    if (!st && seg && (fflush(seg) != 0 || ferror(seg)))
        st = rtr_fail(RTR_ERR_IO, "route's decisions: cannot write a temporary file (disk full? set TMPDIR): %s",
                      strerror(errno));
    if (!st) st = sums_total(&sums, s->count, cat->n_pairs, &cs);
    free(cs.v);
    if (!st && !sums.n)
        st = rtr_corpus_no_query(corpus_dir, prm->o.split, NULL);
    if (!st && ranks && fmt != DEC_H5) st = decisions_place(seg, seg_bytes, fmt, out_path);
    if (!st && ranks && fmt == DEC_H5) st = decisions_gather_h5(&w, seg, seg_bytes);
    if (seg) fclose(seg);
    if (!writer) free(w.col);
    s->cost_scale = rs.cost_scale;
    if (!st && !(s->checkpoint_hash = rtr_strdup(rs.checkpoint_hash))) st = RTR_ERR_NOMEM;
    if (!st && writer) st = dec_commit(&w, s->lambda, rtr_cost_model_name(prm->o.cost_model), rs.cost_scale, rs.checkpoint_hash);
    else if (open) dec_abort(&w);
    if (!st) summary_finish(s, &sums);
    else rtr_route_summary_free(s);
    free(choice);
    route_source_close(&rs);
    return st;
}

/* ------------------------------------------------------- texts in memory */

void rtr_text_routes_free(rtr_text_routes *r) {
    free(r->choice);
    free(r->p_correct);
    free(r->tokens);
    free(r->cost);
    rtr_catalog_free(&r->cat);
    memset(r, 0, sizeof *r);
}

rtr_status rtr_route_texts(rtr_backend *b, rtr_text_routes *out, rtr_encoder *enc, const rtr_predictor *p,
                           const char *const *texts, int64_t n, const rtr_route_params *prm) {
    memset(out, 0, sizeof *out);
    rtr_status st = check_params(prm);
    char hash[17];
    rtr_predictor_hash_hex(p, hash);
    if (!st && p->encoder_hash && strcmp(p->encoder_hash, rtr_encoder_hash(enc)))
        st = rtr_fail(RTR_ERR_INVALID, "the checkpoint was trained on embeddings of encoder %s; %s is encoder %s",
                      p->encoder_hash, rtr_encoder_name(enc), rtr_encoder_hash(enc));
    if (!st && rtr_encoder_dim(enc) != p->D)
        st = rtr_fail(RTR_ERR_INVALID, "the checkpoint expects %d-dim embeddings, %s gives %d", p->D,
                      rtr_encoder_name(enc), rtr_encoder_dim(enc));
    if (!st && prm->o.checkpoint_hash && strcmp(hash, prm->o.checkpoint_hash))
        st = rtr_fail(RTR_ERR_INVALID, "the checkpoint has hash '%s', not '%s' (--checkpoint-hash)", hash,
                      prm->o.checkpoint_hash);
    if (!st) st = p->catalog_json ? rtr_catalog_parse_json(&out->cat, p->catalog_json, "checkpoint")
                                  : rtr_fail(RTR_ERR_FORMAT, "no catalog in the checkpoint metadata");
    if (!st && n < 1) st = rtr_fail(RTR_ERR_INVALID, "no query to route");
    int32_t k = out->cat.n_pairs;
    size_t nk = (size_t)(n > 0 ? n : 1) * (size_t)k;
    float *emb = NULL, *pc = NULL, *c = NULL;
    route_prep x = {0};
    if (!st) {
        emb = rtr_malloc(sizeof *emb * (size_t)n * (size_t)p->D);
        pc = rtr_malloc(sizeof *pc * nk);
        c = rtr_malloc(sizeof *c * nk);
        out->choice = rtr_malloc(sizeof *out->choice * (size_t)n);
        out->p_correct = rtr_malloc(sizeof(float) * nk);
        out->tokens = rtr_malloc(sizeof(float) * nk);
        out->cost = rtr_malloc(sizeof(float) * nk);
        if (!emb || !pc || !c || !out->choice || !out->p_correct || !out->tokens || !out->cost) st = RTR_ERR_NOMEM;
    }
    if (!st) st = rtr_encoder_encode(enc, emb, texts, NULL, (size_t)n);
    if (!st) st = rtr_predictor_score_backend(b, pc, out->tokens, p, emb, n, 0);
    if (!st) st = route_prep_init(&x, &out->cat, &prm->o);
    if (!st) st = route_costs(&x, n, out->tokens, NULL, texts, out->cost);
    if (!st) st = route_allowed(&x, n, pc, out->tokens, NULL, out->p_correct);
    /* The scale: given (the corpus's, for its decisions), else the
     * checkpoint's, so that a text's decision never depends on the texts
     * routed with it: rtr_route_cost_scale of one row, each pair at its
     * training mean tokens in this cost model (no text: a USD cost leaves
     * the input tokens out); a checkpoint that keeps no means: these texts'. */
    out->cost_scale = prm->o.cost_scale;
    if (!st && !(prm->o.cost_scale > 0) && p->pair_mean_tokens) {
        st = route_costs(&x, 1, p->pair_mean_tokens, NULL, NULL, c); /* c: scratch until filled below */
        if (!st) st = rtr_route_cost_scale(&out->cost_scale, c, 1, k);
    } else if (!st && !(prm->o.cost_scale > 0)) {
        st = rtr_route_cost_scale(&out->cost_scale, out->cost, n, k);
    }
    if (!st) st = route_scale_costs(c, out->cost, (size_t)n * (size_t)k, out->cost_scale);
    out->lambda = prm->lambda;
    if (!st && !isnan(prm->budget)) {
        rtr_route_table t = {n, k, out->p_correct, c, out->cost, NULL, NULL};
        rtr_path path;
        int64_t pt = 0;
        st = rtr_path_compute_on(b, &path, &t, 0);
        if (!st) {
            st = rtr_path_budget(&pt, &path, prm->budget_total ? prm->budget / (double)n : prm->budget);
            if (!st) out->lambda = path.lambda[pt];
            rtr_path_free(&path);
        }
        if (!st) st = rtr_envelope_choose_on(b, out->choice, out->p_correct, c, out->lambda, n, k, 0);
    } else if (!st) {
        st = argmax_on(b, out->choice, out->p_correct, c, out->lambda, n, k);
    }
    route_prep_free(&x);
    free(emb);
    free(pc);
    free(c);
    if (st) rtr_text_routes_free(out);
    else out->n = n, out->k = k;
    return st;
}

rtr_status rtr_text_routes_write(const char *out_path, const rtr_text_routes *r, const char *const *ids,
                                 const char *cost_model, const char *checkpoint_hash) {
    char **empty = rtr_malloc(sizeof *empty * (size_t)(r->n ? r->n : 1));
    if (!empty) return RTR_ERR_NOMEM;
    for (int64_t i = 0; i < r->n; i++) empty[i] = "";
    dec_writer w;
    rtr_status st = dec_open(&w, out_path, &r->cat);
    if (!st) {
        st = dec_add(&w, r->n, (char *const *)ids, empty, empty, r->choice, r->p_correct, r->tokens, r->cost);
        if (!st) st = dec_commit(&w, r->lambda, cost_model, r->cost_scale, checkpoint_hash);
        else dec_abort(&w);
    }
    free(empty);
    return st;
}
