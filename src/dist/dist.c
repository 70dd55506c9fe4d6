/* Ranks, collectives and the shard split (include/rtr/dist.h). Without
 * RTR_HAVE_MPI (the build found no MPI) the collectives are the one-rank
 * identities; the split is the same code either way. */
#include "rtr/dist.h"
#include "common/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef RTR_HAVE_MPI
#include <mpi.h>
#endif
#ifdef RTR_HAVE_NCCL
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>
#include <stdio.h>
#endif

static int g_rank = 0, g_size = 1;
static bool g_joined = false;

/* Set by the launchers that start MPI jobs (Open MPI's mpirun, PMIx/PMI
 * launchers such as srun): a process started by none of them is alone. */
static bool launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return true;
    return false;
}

bool rtr_dist_built(void) {
#ifdef RTR_HAVE_MPI
    return true;
#else
    return false;
#endif
}

rtr_status rtr_dist_init(int *argc, char ***argv) {
    if (g_joined || !launched_by_mpi()) return RTR_OK;
#ifdef RTR_HAVE_MPI
    int provided = 0;
    /* only the main thread calls MPI; OpenMP threads compute between calls */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return rtr_fail(RTR_ERR_IO, "MPI_Init_thread failed");
    /* errors come back as codes, so a failing collective is reported, not fatal in MPI */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_joined = true;
    return RTR_OK;
#else
    (void)argc;
    (void)argv;
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n && atoi(n) > 1)
        return rtr_fail(RTR_ERR_UNSUPPORTED, "started by an MPI launcher (%s ranks) but rtr was built without MPI: "
                        "rebuild with Open MPI (-DRTR_MPI=ON) or split with --part i/n", n);
    return RTR_OK;
#endif
}

static void nccl_close(void);

void rtr_dist_finalize(void) {
    nccl_close();
#ifdef RTR_HAVE_MPI
    if (g_joined) MPI_Finalize();
#endif
    g_joined = false;
    g_rank = 0;
    g_size = 1;
}

void rtr_dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
#ifdef RTR_HAVE_MPI
    if (g_joined && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

int rtr_dist_rank(void) { return g_rank; }
int rtr_dist_size(void) { return g_size; }

#ifdef RTR_HAVE_MPI
static rtr_status mpi_check(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return RTR_OK;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return rtr_fail(RTR_ERR_IO, "rank %d: %s failed: %s", g_rank, what, msg);
}
#endif

rtr_status rtr_dist_barrier(void) {
#ifdef RTR_HAVE_MPI
    if (g_size > 1) return mpi_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
    return RTR_OK;
}

#ifdef RTR_HAVE_MPI
static rtr_status sum_in_place(void *x, size_t n, MPI_Datatype type) {
    if (g_size > 1 && n)
        return mpi_check(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    return RTR_OK;
}
#else
#define sum_in_place(x, n, type) ((void)(x), (void)(n), RTR_OK)
#endif

rtr_status rtr_dist_sum_f64(double *x, size_t n) { return sum_in_place(x, n, MPI_DOUBLE); }

rtr_status rtr_dist_sum_f32(float *x, size_t n) { return sum_in_place(x, n, MPI_FLOAT); }

rtr_status rtr_dist_sum_i64(int64_t *x, size_t n) { return sum_in_place(x, n, MPI_INT64_T); }

rtr_status rtr_dist_bcast(void *buf, size_t n, int root) {
#ifdef RTR_HAVE_MPI
    if (g_size > 1 && n) {
        /* in pieces: MPI counts are int */
        for (size_t at = 0; at < n; at += (size_t)1 << 30) {
            size_t m = n - at < (size_t)1 << 30 ? n - at : (size_t)1 << 30;
            rtr_status st = mpi_check(MPI_Bcast((char *)buf + at, (int)m, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
            if (st) return st;
        }
    }
#endif
    (void)buf;
    (void)n;
    (void)root;
    return RTR_OK;
}

rtr_status rtr_dist_send(const void *buf, size_t n, int to, int tag) {
#ifdef RTR_HAVE_MPI
    if (g_size > 1 && n < (size_t)1 << 31)
        return mpi_check(MPI_Send(buf, (int)n, MPI_BYTE, to, tag, MPI_COMM_WORLD), "MPI_Send");
#endif
    (void)buf, (void)tag;
    return rtr_fail(RTR_ERR_UNSUPPORTED, "rank %d: send of %zu bytes to rank %d of %d", g_rank, n, to, g_size);
}

rtr_status rtr_dist_recv(void *buf, size_t cap, size_t *got, int from, int tag) {
    *got = 0;
#ifdef RTR_HAVE_MPI
    if (g_size > 1) {
        MPI_Status s;
        int count = 0;
        rtr_status st = mpi_check(MPI_Probe(from, tag, MPI_COMM_WORLD, &s), "MPI_Probe");
        if (!st) st = mpi_check(MPI_Get_count(&s, MPI_BYTE, &count), "MPI_Get_count");
        if (!st && (size_t)count > cap)
            st = rtr_fail(RTR_ERR_FORMAT, "rank %d: rank %d sent %d bytes, at most %zu expected", g_rank, from, count, cap);
        if (!st) st = mpi_check(MPI_Recv(buf, count, MPI_BYTE, from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
        if (!st) *got = (size_t)count;
        return st;
    }
#endif
    (void)buf, (void)cap, (void)tag;
    return rtr_fail(RTR_ERR_UNSUPPORTED, "rank %d: receive from rank %d of %d", g_rank, from, g_size);
}

/* ------------------------------------------------------------- streams */

void rtr_dist_stream_open(rtr_dist_stream *s, int rank, size_t rec, size_t cap, int tag) {
    rec = rec ? rec : 1;
    *s = (rtr_dist_stream){.rank = rank, .tag = tag, .rec = rec, .cap = cap / rec > 1 ? cap / rec * rec : rec};
}

void rtr_dist_stream_close(rtr_dist_stream *s) {
    free(s->buf);
    memset(s, 0, sizeof *s);
}

static rtr_status stream_buf(rtr_dist_stream *s) {
    if (!s->buf && !(s->buf = rtr_malloc(s->cap))) return RTR_ERR_NOMEM;
    return RTR_OK;
}

rtr_status rtr_dist_stream_put(rtr_dist_stream *s, const void *data, size_t n) {
    rtr_status st = stream_buf(s);
    for (const char *p = data; !st && n;) {
        size_t m = s->cap - s->n < n ? s->cap - s->n : n;
        memcpy(s->buf + s->n, p, m);
        s->n += m, p += m, n -= m;
        if (s->n == s->cap) st = rtr_dist_send(s->buf, s->n, 0, s->tag), s->n = 0;
    }
    return st;
}

rtr_status rtr_dist_stream_end(rtr_dist_stream *s) {
    rtr_status st = stream_buf(s); /* an empty stream still sends its (empty) last message */
    if (!st) st = rtr_dist_send(s->buf, s->n, 0, s->tag);
    s->n = 0;
    return st;
}

rtr_status rtr_dist_stream_next(rtr_dist_stream *s, void *buf, size_t *got) {
    *got = 0;
    if (s->ended) return RTR_OK;
    rtr_status st = rtr_dist_recv(buf, s->cap, got, s->rank, s->tag);
    if (!st && *got % s->rec)
        st = rtr_fail(RTR_ERR_FORMAT, "rank %d sent %zu bytes, not whole records of %zu", s->rank, *got, s->rec);
    s->ended = st || *got < s->cap;
    return st;
}

rtr_status rtr_dist_stream_pull(void *ctx, char *buf, size_t max, size_t *got, bool first) {
    rtr_dist_stream *s = ctx;
    if (first) rtr_dist_stream_restart(s);
    *got = 0;
    if (max * s->rec < s->cap) /* a message is received whole */
        return rtr_fail(RTR_ERR_INVALID, "rank %d's stream: messages of %zu bytes, room for %zu", s->rank, s->cap,
                        max * s->rec);
    size_t bytes = 0;
    rtr_status st = rtr_dist_stream_next(s, buf, &bytes);
    *got = bytes / s->rec;
    return st;
}

rtr_status rtr_dist_stream_read(rtr_dist_stream *s, void *out, size_t n, size_t *got) {
    *got = 0;
    rtr_status st = stream_buf(s);
    while (!st && *got < n) {
        if (s->at == s->n) { /* this message read: the next, unless that was the last */
            s->at = 0;
            st = rtr_dist_stream_next(s, s->buf, &s->n);
            if (st || !s->n) break;
        }
        size_t m = s->n - s->at < n - *got ? s->n - s->at : n - *got;
        memcpy((char *)out + *got, s->buf + s->at, m);
        s->at += m, *got += m;
    }
    return st;
}

void rtr_dist_stream_restart(rtr_dist_stream *s) {
    s->ended = false;
    s->n = s->at = 0;
}

rtr_status rtr_dist_gather(void **all, size_t *len, size_t *counts, const void *mine, size_t n) {
    *all = NULL;
    *len = 0;
    if (g_size == 1) {
        if (!(*all = rtr_malloc(n ? n : 1))) return RTR_ERR_NOMEM;
        if (n) memcpy(*all, mine, n);
        *len = n;
        if (counts) counts[0] = n;
        return RTR_OK;
    }
#ifdef RTR_HAVE_MPI
    /* Point to point in rank order (each block may exceed an int count);
     * the sizes first, so rank 0 allocates once. */
    uint64_t mine_n = n, *sizes = g_rank == 0 ? rtr_calloc((size_t)g_size, sizeof *sizes) : NULL;
    if (g_rank == 0 && !sizes) return RTR_ERR_NOMEM;
    rtr_status st = mpi_check(MPI_Gather(&mine_n, 1, MPI_UINT64_T, sizes, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Gather");
    const size_t piece = (size_t)1 << 30;
    if (g_rank != 0) {
        for (size_t at = 0; !st && at < n; at += piece) {
            size_t m = n - at < piece ? n - at : piece;
            st = mpi_check(MPI_Send((const char *)mine + at, (int)m, MPI_BYTE, 0, 7, MPI_COMM_WORLD), "MPI_Send");
        }
        return st;
    }
    size_t total = 0;
    for (int r = 0; r < g_size; r++) total += (size_t)sizes[r];
    char *buf = st ? NULL : rtr_malloc(total ? total : 1);
    if (!st && !buf) st = RTR_ERR_NOMEM;
    size_t off = 0;
    for (int r = 0; !st && r < g_size; r++) {
        if (counts) counts[r] = (size_t)sizes[r];
        if (r == 0) {
            if (n) memcpy(buf, mine, n);
        } else {
            for (size_t at = 0; !st && at < sizes[r]; at += piece) {
                size_t m = (size_t)sizes[r] - at < piece ? (size_t)sizes[r] - at : piece;
                st = mpi_check(MPI_Recv(buf + off + at, (int)m, MPI_BYTE, r, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
            }
        }
        off += (size_t)sizes[r];
    }
    free(sizes);
    if (st) {
        free(buf);
        return st;
    }
    *all = buf;
    *len = total;
    return RTR_OK;
#else
    return rtr_fail(RTR_ERR_UNSUPPORTED, "rtr_dist_gather: %d ranks without MPI", g_size);
#endif
}

rtr_status rtr_dist_gather_all(void **all, size_t *len, const void *mine, size_t n) {
    rtr_status st = rtr_dist_gather(all, len, NULL, mine, n);
    if (g_size == 1 || st) return st;
    uint64_t total = *len;
    st = rtr_dist_bcast(&total, sizeof total, 0);
    if (!st && g_rank != 0 && !(*all = rtr_malloc(total ? (size_t)total : 1))) st = RTR_ERR_NOMEM;
    if (!st) st = rtr_dist_bcast(*all, (size_t)total, 0);
    if (st) {
        free(*all);
        *all = NULL;
        *len = 0;
        return st;
    }
    *len = (size_t)total;
    return RTR_OK;
}

/* ------------------------------------------------------------- NCCL */

bool rtr_dist_nccl_built(void) {
#ifdef RTR_HAVE_NCCL
    return true;
#else
    return false;
#endif
}

#ifdef RTR_HAVE_NCCL
/* NCCL is loaded when a rank first sums device memory, not by the dynamic
 * loader at start: libnccl is ~218 MB of address space, which every
 * command of a CUDA + MPI build would map otherwise (`rtr route` then
 * failed under ulimit -v 600 MiB). Its five functions, resolved once. */
#define NCCL_FUNCS(X) X(ncclGetUniqueId) X(ncclCommInitRank) X(ncclAllReduce) X(ncclCommDestroy) X(ncclGetErrorString)
static struct {
#define NCCL_MEMBER(f) __typeof__(&f) f;
    NCCL_FUNCS(NCCL_MEMBER)
#undef NCCL_MEMBER
} nccl_api;
static char nccl_error[600]; /* why loading failed; empty once loaded */
static bool nccl_tried = false;

#define NCCL_STR2(x) #x
#define NCCL_STR(x) NCCL_STR2(x)
/* The soname of the NCCL rtr was built against. */
#define NCCL_SONAME "libnccl.so." NCCL_STR(NCCL_MAJOR)

/* RTR_NCCL_LIBRARY when set (that file only); else the soname through the
 * loader's search (RUNPATH, LD_LIBRARY_PATH, the cache), then the folder
 * the build found it in (RTR_NCCL_DIR: NCCL beside the CUDA toolkit is
 * often outside the cache). The first error says what was tried. */
static void nccl_load(void) {
    nccl_tried = true;
    const char *env = getenv("RTR_NCCL_LIBRARY");
    void *h = NULL;
    if (env && *env) {
        if (!(h = dlopen(env, RTLD_NOW | RTLD_LOCAL)))
            snprintf(nccl_error, sizeof nccl_error, "RTR_NCCL_LIBRARY=%s could not be loaded (%s)", env, dlerror());
    } else if (!(h = dlopen(NCCL_SONAME, RTLD_NOW | RTLD_LOCAL)) &&
               !(h = dlopen(RTR_NCCL_DIR "/" NCCL_SONAME, RTLD_NOW | RTLD_LOCAL))) {
        snprintf(nccl_error, sizeof nccl_error,
                 "%s was found neither by the loader nor in %s (%s): install NCCL, or set LD_LIBRARY_PATH or "
                 "RTR_NCCL_LIBRARY", NCCL_SONAME, RTR_NCCL_DIR, dlerror());
    }
    if (!h) return;
#define NCCL_RESOLVE(f)                                                                                         \
    if (!(nccl_api.f = (__typeof__(nccl_api.f))dlsym(h, #f))) {                                                 \
        snprintf(nccl_error, sizeof nccl_error, "%s has no %s: not an NCCL rtr can use", env && *env ? env : NCCL_SONAME, #f); \
        memset(&nccl_api, 0, sizeof nccl_api);                                                                  \
        dlclose(h);                                                                                             \
        return;                                                                                                 \
    }
    NCCL_FUNCS(NCCL_RESOLVE)
#undef NCCL_RESOLVE
}

static ncclComm_t g_nccl;
static bool g_nccl_open = false;

static rtr_status nccl_check(ncclResult_t rc, const char *what) {
    if (rc == ncclSuccess) return RTR_OK;
    return rtr_fail(RTR_ERR_DEVICE, "rank %d: %s failed: %s", g_rank, what, nccl_api.ncclGetErrorString(rc));
}
#endif

rtr_status rtr_dist_nccl_load(void) {
#ifdef RTR_HAVE_NCCL
    if (!nccl_tried) nccl_load(); /* only the main thread calls into dist (MPI_THREAD_FUNNELED) */
    return nccl_error[0] ? rtr_fail(RTR_ERR_UNSUPPORTED, "NCCL: %s", nccl_error) : RTR_OK;
#else
    return rtr_fail(RTR_ERR_UNSUPPORTED, "rtr was built without NCCL (RTR_NCCL)");
#endif
}

static void nccl_close(void) {
#ifdef RTR_HAVE_NCCL
    if (g_nccl_open) nccl_api.ncclCommDestroy(g_nccl);
    g_nccl_open = false;
#endif
}

rtr_status rtr_dist_nccl_sum_f32(rtr_backend *b, float *x, size_t n) {
#ifdef RTR_HAVE_NCCL
    if (g_size == 1 || !n) return RTR_OK;
    rtr_status st = rtr_dist_nccl_load();
    if (st) return st;
    if (!g_nccl_open) {
        /* the communicator's id from rank 0, over MPI (the job's bootstrap) */
        ncclUniqueId id;
        memset(&id, 0, sizeof id);
        st = g_rank == 0 ? nccl_check(nccl_api.ncclGetUniqueId(&id), "ncclGetUniqueId") : RTR_OK;
        if (!st) st = rtr_dist_bcast(&id, sizeof id, 0);
        if (!st) st = nccl_check(nccl_api.ncclCommInitRank(&g_nccl, g_size, id, g_rank), "ncclCommInitRank");
        if (st) return st;
        g_nccl_open = true;
    }
    /* after the backend's queued work, on the default stream; complete on return */
    st = rtr_backend_synchronize(b);
    if (!st) st = nccl_check(nccl_api.ncclAllReduce(x, x, n, ncclFloat, ncclSum, g_nccl, 0), "ncclAllReduce");
    if (!st && cudaStreamSynchronize(0) != cudaSuccess)
        st = rtr_fail(RTR_ERR_DEVICE, "rank %d: ncclAllReduce: %s", g_rank, cudaGetErrorString(cudaGetLastError()));
    return st;
#else
    (void)b;
    (void)x;
    (void)n;
    return rtr_dist_nccl_load();
#endif
}

/* ------------------------------------------------------------- parts */

rtr_status rtr_part_parse(rtr_part *p, const char *text) {
    char *end = NULL;
    long i = strtol(text, &end, 10), n = -1;
    if (end != text && *end == '/') {
        char *e2 = NULL;
        n = strtol(end + 1, &e2, 10);
        if (e2 == end + 1 || *e2) n = -1;
    }
    if (!(n >= 1 && n <= 100000 && i >= 0 && i < n))
        return rtr_fail(RTR_ERR_INVALID, "--part '%s': use I/N with 0 <= I < N <= 100000 (part I of N)", text);
    p->index = (int)i;
    p->count = (int)n;
    return RTR_OK;
}

rtr_status rtr_part_resolve(rtr_part *out, const rtr_part *given) {
    if (given && given->count > 0) {
        if (g_size > 1)
            return rtr_fail(RTR_ERR_INVALID, "--part %d/%d under %d MPI ranks: split with one or the other", given->index,
                            given->count, g_size);
        *out = *given;
        return RTR_OK;
    }
    out->index = g_rank;
    out->count = g_size;
    return RTR_OK;
}

typedef struct {
    int64_t n;
    int i;
} shard_size;

static int by_size_desc(const void *a, const void *b) {
    const shard_size *x = a, *y = b;
    if (x->n != y->n) return x->n > y->n ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

rtr_status rtr_part_owners(int *owner, const int64_t *n_queries, int n_shards, int n_parts) {
    for (int i = 0; i < n_shards; i++) owner[i] = 0;
    if (n_parts <= 1 || n_shards <= 0) return RTR_OK;
    shard_size *s = rtr_malloc(sizeof *s * (size_t)n_shards);
    int64_t *load = s ? rtr_calloc((size_t)n_parts, sizeof *load) : NULL;
    if (!load) {
        free(s);
        return RTR_ERR_NOMEM;
    }
    for (int i = 0; i < n_shards; i++) s[i] = (shard_size){n_queries[i], i};
    qsort(s, (size_t)n_shards, sizeof *s, by_size_desc);
    for (int t = 0; t < n_shards; t++) {
        int best = 0;
        for (int p = 1; p < n_parts; p++)
            if (load[p] < load[best]) best = p;
        owner[s[t].i] = best;
        load[best] += s[t].n;
    }
    free(s);
    free(load);
    return RTR_OK;
}

rtr_status rtr_part_shards(bool **mine, rtr_part *part, const rtr_corpus *c, const rtr_part *given) {
    *mine = NULL;
    rtr_status st = rtr_part_resolve(part, given);
    if (st) return st;
    int n = rtr_corpus_n_shards(c);
    int64_t *size = rtr_malloc(sizeof *size * (size_t)(n ? n : 1));
    int *owner = rtr_malloc(sizeof *owner * (size_t)(n ? n : 1));
    bool *m = rtr_malloc(sizeof *m * (size_t)(n ? n : 1));
    st = size && owner && m ? RTR_OK : RTR_ERR_NOMEM;
    for (int i = 0; !st && i < n; i++) size[i] = rtr_corpus_shard_queries(c, i);
    if (!st) st = rtr_part_owners(owner, size, n, part->count);
    for (int i = 0; !st && i < n; i++) m[i] = owner[i] == part->index;
    free(size);
    free(owner);
    if (st) {
        free(m);
        return st;
    }
    *mine = m;
    return RTR_OK;
}

/* Where part p of `count` starts: the allowed row (a shard's first, or a
 * multiple of grain into a shard) nearest to p / count of the rows. Monotone
 * in p, so consecutive cuts bound ranges that cover every row once. */
static int64_t part_cut(const int64_t *n_rows, int n_shards, int64_t grain, int p, int count) {
    int64_t total = 0;
    for (int i = 0; i < n_shards; i++) total += n_rows[i];
    if (p <= 0) return 0;
    if (p >= count) return total;
    int64_t t = total / count * p + total % count * p / count, base = 0, g = grain > 1 ? grain : 1;
    for (int i = 0; i < n_shards; base += n_rows[i++]) {
        if (t >= base + n_rows[i]) continue; /* in a later shard (an empty shard never holds it) */
        int64_t o = (t - base + g / 2) / g * g; /* the nearest multiple, halves up */
        return base + (o < n_rows[i] ? o : n_rows[i]);
    }
    return total;
}

rtr_row_range rtr_part_rows(const int64_t *n_rows, int n_shards, int64_t grain, int index, int count) {
    return (rtr_row_range){part_cut(n_rows, n_shards, grain, index, count),
                           part_cut(n_rows, n_shards, grain, index + 1, count)};
}

rtr_status rtr_part_range(rtr_row_range *range, rtr_part *part, const rtr_corpus *c, const rtr_part *given,
                          int64_t grain) {
    rtr_status st = rtr_part_resolve(part, given);
    int n = rtr_corpus_n_shards(c);
    int64_t *rows = st ? NULL : rtr_malloc(sizeof *rows * (size_t)(n ? n : 1));
    if (!st && !rows) st = RTR_ERR_NOMEM;
    for (int i = 0; !st && i < n; i++) rows[i] = rtr_corpus_shard_queries(c, i);
    if (!st) *range = rtr_part_rows(rows, n, grain, part->index, part->count);
    free(rows);
    return st;
}

int rtr_part_missing(const rtr_corpus *c, bool (*done)(const rtr_corpus *c, int i, void *ctx), void *ctx,
                     const char *what) {
    int n = rtr_corpus_n_shards(c), missing = 0;
    rtr_buf names = {0};
    for (int i = 0; i < n; i++) {
        if (done(c, i, ctx)) continue;
        if (missing < 5) rtr_buf_printf(&names, "%s%s", missing ? ", " : "", rtr_corpus_shard_file(c, i));
        missing++;
    }
    if (missing)
        rtr_note("%s: %d of %d shards still missing (%s%s): run the other parts", what, missing, n,
                 names.buf ? names.buf : "", missing > 5 ? ", ..." : "");
    rtr_buf_free(&names);
    return missing;
}

/* ------------------------------------------------------------- row shares */

rtr_status rtr_row_share_init(rtr_row_share *s, const int64_t *rows, const int *owner, int n_shards, int part) {
    memset(s, 0, sizeof *s);
    s->n_shards = n_shards, s->part = part;
    s->start = rtr_malloc(sizeof *s->start * ((size_t)n_shards + 1));
    s->local = rtr_malloc(sizeof *s->local * ((size_t)n_shards + 1));
    s->owner = rtr_malloc(sizeof *s->owner * ((size_t)n_shards + 1));
    if (!s->start || !s->local || !s->owner) {
        rtr_row_share_free(s);
        return RTR_ERR_NOMEM;
    }
    /* each part's rows in shard order: a running count per part (parts are few) */
    int n_parts = 1;
    for (int i = 0; i < n_shards; i++) n_parts = owner[i] + 1 > n_parts ? owner[i] + 1 : n_parts;
    int64_t *held = rtr_calloc((size_t)n_parts, sizeof *held);
    if (!held) {
        rtr_row_share_free(s);
        return RTR_ERR_NOMEM;
    }
    s->start[0] = 0;
    for (int i = 0; i < n_shards; i++) {
        s->start[i + 1] = s->start[i] + rows[i];
        s->owner[i] = owner[i];
        s->local[i] = held[owner[i]];
        held[owner[i]] += rows[i];
    }
    s->n = s->start[n_shards];
    s->n_local = part < n_parts ? held[part] : 0;
    free(held);
    return RTR_OK;
}

int64_t rtr_row_share_local(const rtr_row_share *s, int64_t g) {
    if (g < 0 || g >= s->n) return -1;
    /* the last shard starting at or before g: never an empty one, whose next starts there too */
    int lo = 0, hi = s->n_shards - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s->start[mid] <= g) lo = mid;
        else hi = mid - 1;
    }
    return s->owner[lo] == s->part ? s->local[lo] + (g - s->start[lo]) : -1;
}

void rtr_row_share_free(rtr_row_share *s) {
    free(s->start);
    free(s->local);
    free(s->owner);
    memset(s, 0, sizeof *s);
}
