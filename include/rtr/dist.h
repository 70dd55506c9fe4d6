/* Work split across processes (docs/SCALING.md): the ranks of an `mpirun`
 * job, or the parts of a job array run without MPI (`--part i/n`). One
 * function decides which shards a part takes (whole shards, balanced by
 * their number of queries: the stages that write a file per shard, and
 * sums that must keep their per-shard order), one which rows it takes (a
 * contiguous range of the corpus's rows: the stages that only read), so
 * ranks and parts split a corpus the same way.
 *
 * Built without MPI (RTR_MPI=OFF, or AUTO without Open MPI) every call is
 * single-rank code: rank 0 of 1, collectives leave their buffers as they
 * are. Built with MPI, rtr_dist_init joins the job only when the process
 * was started by a launcher (mpirun, srun with PMIx); a plain `rtr ...`
 * stays rank 0 of 1 and never touches MPI.
 *
 * Errors: collectives cannot tell a rank that stopped from a slow one, so a
 * rank that fails prints its own message and calls rtr_dist_abort, which
 * stops every rank (MPI_Abort): nobody waits forever in a collective. */
#ifndef RTR_DIST_H
#define RTR_DIST_H

#include "rtr/backend.h"
#include "rtr/rtr.h"
#include "rtr/store.h"
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Join the MPI job when launched by one (argc/argv as main's; may be NULL).
 * Idempotent. RTR_ERR_UNSUPPORTED when an MPI launcher started this process
 * but rtr was built without MPI: each process would redo the whole job. */
RTR_API rtr_status rtr_dist_init(int *argc, char ***argv);
/* Leave the job (MPI_Finalize); a no-op when rtr_dist_init did not join one. */
RTR_API void rtr_dist_finalize(void);
/* Stop every rank with exit status code (MPI_Abort; exit() when alone).
 * The caller has printed its error first. */
RTR_API void rtr_dist_abort(int code);
RTR_API int rtr_dist_rank(void);
RTR_API int rtr_dist_size(void);
/* Whether rtr was built with MPI. */
RTR_API bool rtr_dist_built(void);

/* Collectives over every rank (each a no-op alone): a barrier, and sums of
 * n values in place (every rank ends with the same sums; rank order is the
 * reduction's, so a sum equals the one-process sum up to rounding). */
RTR_API rtr_status rtr_dist_barrier(void);
RTR_API rtr_status rtr_dist_sum_f64(double *x, size_t n);
RTR_API rtr_status rtr_dist_sum_f32(float *x, size_t n);
RTR_API rtr_status rtr_dist_sum_i64(int64_t *x, size_t n);
/* Whether rtr was built with NCCL (RTR_NCCL): sums of device memory. */
RTR_API bool rtr_dist_nccl_built(void);
/* Load NCCL (once; the binary does not link it, docs/SCALING.md): the file
 * RTR_NCCL_LIBRARY names when set, else libnccl.so.MAJOR through the
 * loader's search, then in the folder the build found it in.
 * RTR_ERR_UNSUPPORTED saying what was tried when it is not there, or when
 * rtr was built without NCCL. rtr_dist_nccl_sum_f32 calls it first. */
RTR_API rtr_status rtr_dist_nccl_load(void);
/* Sum n floats at x, memory of the CUDA backend b, in place over every rank
 * with ncclAllReduce, after b's queued work; complete on return. The
 * communicator is set up on first use (ncclGetUniqueId on rank 0, sent
 * over MPI) and ends with rtr_dist_finalize. RTR_ERR_UNSUPPORTED without NCCL. */
RTR_API rtr_status rtr_dist_nccl_sum_f32(rtr_backend *b, float *x, size_t n);
/* Every rank's block of bytes, in rank order, on rank 0 (*all, caller
 * frees; *len its size, counts[r] rank r's bytes when counts is not NULL:
 * room for rtr_dist_size()); other ranks get *all = NULL, *len = 0. */
RTR_API rtr_status rtr_dist_gather(void **all, size_t *len, size_t *counts, const void *mine, size_t n);
/* Every rank's block of bytes, in rank order, on every rank (*all, caller
 * frees; *len its size): rtr_dist_gather, then rank 0's result to the
 * others. For what every rank must hold whole and is bounded (eval's
 * bootstrap sample). */
RTR_API rtr_status rtr_dist_gather_all(void **all, size_t *len, const void *mine, size_t n);
/* root's n bytes to every rank. */
RTR_API rtr_status rtr_dist_bcast(void *buf, size_t n, int root);
/* Point to point, for streams (the λ path's breakpoints, route.h): n bytes
 * (< 2 GiB) to rank `to`, returning once buf may be reused; and the next
 * message from rank `from` with the same tag into buf (room for cap bytes:
 * RTR_ERR_FORMAT naming the rank when it sent more), its size in *got.
 * Messages between two ranks with one tag arrive in the order sent. */
RTR_API rtr_status rtr_dist_send(const void *buf, size_t n, int to, int tag);
RTR_API rtr_status rtr_dist_recv(void *buf, size_t cap, size_t *got, int from, int tag);

/* A stream of bytes from one rank to rank 0, in messages of `cap` bytes: a
 * message shorter than cap is the stream's last (an empty one when the last
 * full one ended it), so neither side needs its length beforehand, and
 * rank 0 holds one message of each stream it reads, however long the
 * stream: what the others' records (the λ path's breakpoints, route's HDF5
 * decisions, the id check's sorted hashes) travel in. Rank 0 reads the
 * streams one after another in rank order (rtr_dist_stream_read), or side by
 * side as sorted runs pulled a message at a time (rtr_dist_stream_next, the
 * k-way merge of store/runs.h). A sender blocks in a send until rank 0
 * takes the message, so it must not wait on rank 0 meanwhile. */
typedef struct {
    int rank, tag; /* the sending rank (on rank 0: whose stream this is), and the messages' tag */
    size_t rec;    /* bytes of a record: every message holds whole ones (1: a stream of bytes) */
    size_t cap;    /* bytes of a full message, a multiple of rec */
    char *buf;     /* the sender's message being filled, or rank 0's last message read */
    size_t n, at;  /* bytes in buf; the receiver's next byte in it */
    bool ended;    /* the receiver has had the last message */
} rtr_dist_stream;

/* Either end of rank `rank`'s stream of records of rec bytes, in messages
 * of cap bytes (rounded down to whole records, at least one), tag as
 * rtr_dist_send's (one per kind of stream). Close with rtr_dist_stream_close. */
RTR_API void rtr_dist_stream_open(rtr_dist_stream *s, int rank, size_t rec, size_t cap, int tag);
/* The sender: n more bytes, sent a full message at a time. */
RTR_API rtr_status rtr_dist_stream_put(rtr_dist_stream *s, const void *data, size_t n);
/* The sender: the bytes held, as the last (short) message. The stream may
 * then be sent again from its start (another pass of rank 0's). */
RTR_API rtr_status rtr_dist_stream_end(rtr_dist_stream *s);
/* Rank 0: the next message whole into buf (room for cap bytes), *got its
 * bytes, 0 once the stream has ended. */
RTR_API rtr_status rtr_dist_stream_next(rtr_dist_stream *s, void *buf, size_t *got);
/* Rank 0: the next n bytes into out, across messages; *got < n only at the stream's end. */
RTR_API rtr_status rtr_dist_stream_read(rtr_dist_stream *s, void *out, size_t n, size_t *got);
/* Rank 0: expect the stream again from its start (its sender's next pass). */
RTR_API void rtr_dist_stream_restart(rtr_dist_stream *s);
/* Rank 0: the stream ctx as a sorted run's source (store/runs.h's
 * run_pull_fn): its next message's records (at most max, room for a whole
 * message), *got 0 at its end; first restarts it (another walk). */
RTR_API rtr_status rtr_dist_stream_pull(void *ctx, char *buf, size_t max, size_t *got, bool first);
RTR_API void rtr_dist_stream_close(rtr_dist_stream *s);

/* Which share of a corpus this process computes: part `index` of `count`
 * (count 0: the whole corpus, or under MPI the rank's share). */
typedef struct {
    int index, count;
} rtr_part;

/* Parse "i/n" (0 <= i < n <= 100000). RTR_ERR_INVALID quoting the text. */
RTR_API rtr_status rtr_part_parse(rtr_part *p, const char *text);
/* The share this process computes: *given when it names one (then the job
 * must be one rank: RTR_ERR_INVALID otherwise), else rank r of size s as
 * part r of s (count 1 alone). */
RTR_API rtr_status rtr_part_resolve(rtr_part *out, const rtr_part *given);

/* owner[i] = the part (0 .. n_parts - 1) that takes shard i of n_shards,
 * whose sizes are n_queries[i]: shards in decreasing size (ties by index),
 * each to the part with the fewest queries so far (ties: the lowest part).
 * Deterministic: every part computes the same owners. RTR_ERR_NOMEM
 * (all owners 0) when the sort's memory is not there. */
RTR_API rtr_status rtr_part_owners(int *owner, const int64_t *n_queries, int n_shards, int n_parts);

/* Part `index` of `count` as a range of stored rows (store.h's
 * rtr_row_range: every shard's rows, shard after shard), for shards of
 * n_rows[i] rows: the parts' ranges follow each other in part order and
 * cover every row exactly once, each within one grain of total / count
 * rows, whatever the shards. A range starts at a shard's first row or at a
 * multiple of `grain` rows into a shard (the nearest to the even split;
 * grain <= 1: any row), so a reader's chunks of `grain` rows each lie in one
 * part; parts beyond about total / grain get no rows (sweep, route and
 * train cut at 16,384-row chunks: 20,000 rows on 4 ranks leave two idle).
 * Deterministic. */
RTR_API rtr_row_range rtr_part_rows(const int64_t *n_rows, int n_shards, int64_t grain, int index, int count);
/* This process's range of corpus c: rtr_part_rows for the part
 * rtr_part_resolve(given) gives (to *part). */
RTR_API rtr_status rtr_part_range(rtr_row_range *range, rtr_part *part, const rtr_corpus *c, const rtr_part *given,
                                  int64_t grain);

/* The shards of corpus c this process takes: mine[i] (n_shards, caller
 * frees) for the part rtr_part_resolve(given) gives, which goes to *part. */
RTR_API rtr_status rtr_part_shards(bool **mine, rtr_part *part, const rtr_corpus *c, const rtr_part *given);

/* The shards of c for which done(c, i, ctx) is false after a split run: how
 * many, and a note on stderr naming them (the first few) unless none. */
RTR_API int rtr_part_missing(const rtr_corpus *c, bool (*done)(const rtr_corpus *c, int i, void *ctx), void *ctx,
                             const char *what);

/* The rows a part holds of a job's row space (every selected row of a
 * corpus in corpus order: shard by shard, each shard's rows in order, the
 * order one process gathers them in), cut into units of consecutive rows
 * (whole shards, or the parts' ranges of rows, rtr_part_range): the rows of
 * its units, held as consecutive local rows in that same order.
 * Data-parallel training splits its rows by the ranks' ranges
 * (docs/SCALING.md). */
typedef struct {
    int64_t n;       /* rows of the whole job */
    int64_t n_local; /* rows this part holds */
    int n_shards, part; /* n_shards: the units */
    int64_t *start;  /* n_shards + 1: unit i's rows are global rows start[i] .. start[i + 1] */
    int64_t *local;  /* n_shards: the local row of unit i's first row on the part that holds it */
    int *owner;      /* n_shards: the part holding unit i */
} rtr_row_share;

/* Part `part`'s share when unit i has rows[i] selected rows and owner[i]
 * holds it (both as every part sees them). Free with rtr_row_share_free. */
RTR_API rtr_status rtr_row_share_init(rtr_row_share *s, const int64_t *rows, const int *owner, int n_shards, int part);
/* The local row of global row g, or -1 when another part holds it. */
RTR_API int64_t rtr_row_share_local(const rtr_row_share *s, int64_t g);
RTR_API void rtr_row_share_free(rtr_row_share *s);

#ifdef __cplusplus
}
#endif
#endif
