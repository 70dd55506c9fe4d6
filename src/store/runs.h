/* Sorted runs of fixed-size records, in memory or in unlinked temporary
 * files, read back in key order by one k-way merge: how the stages keep
 * memory bounded when what they sort grows with the corpus (the λ path's
 * switch events, the query ids checked for uniqueness). A record's key is
 * the uint64 in its first 8 bytes. Internal. */
#ifndef RTR_RUNS_H
#define RTR_RUNS_H

#include "rtr/rtr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The most bytes one record may have. */
#define RUN_MAX_REC 64

/* A source a run pulls its records from, a block at a time (records
 * produced elsewhere: another MPI rank's, as it sends them): at most max
 * records into buf, *got 0 at the end; first is set on a walk's first
 * call, when the source starts over. */
typedef rtr_status (*run_pull_fn)(void *ctx, char *buf, size_t max, size_t *got, bool first);

/* A run of records sorted on their key: in memory (mem), in a temporary
 * file (f) read back a block of 64 KiB at a time, or pulled from a source
 * (pull, n then SIZE_MAX until it ends) 64 KiB at a time. */
typedef struct {
    const char *mem;
    FILE *f;
    run_pull_fn pull;
    void *pull_ctx;
    size_t n, rec;   /* records, bytes per record */
    size_t next;     /* the current record */
    char *buf;       /* f's records [base, base + have) */
    size_t base, have;
} sorted_run;

void sorted_run_close(sorted_run *r);

/* An order on whole records (qsort's contract), for records whose order
 * needs more than the key (ties broken by other fields). */
typedef int (*run_cmp)(const void *a, const void *b);

/* The k-way merge of runs: every record in key order (or cmp's, when set
 * after run_merge_open), equal ones in run order, so runs of consecutive
 * rows (or of ranks in order) merge into the order one stable sort of all
 * of them gives. */
typedef struct {
    sorted_run *runs;
    int n, nh;
    int *heap; /* runs with a record left, the least (key, run) on top */
    run_cmp cmp;
    char cur[RUN_MAX_REC];
} run_merge;

rtr_status run_merge_open(run_merge *m, sorted_run *runs, int n);
/* (Re)start at every run's first record; a merge may be walked many times. */
rtr_status run_merge_start(run_merge *m);
/* The next record (a copy, valid until the next call); *rec NULL at the end. */
rtr_status run_merge_next(run_merge *m, const char **rec);
void run_merge_free(run_merge *m);

/* A temporary file, unlinked at once: nothing is left behind, whatever
 * happens to the process. In $TMPDIR (else /tmp); `what` names the user in
 * errors. */
rtr_status run_temp_file(FILE **out, const char *what);

/* The runs on disk of one sorter: at most RUN_MAX_FILES, past which they
 * are merged into one (so a merge's buffers stay bounded). */
#define RUN_MAX_FILES 64
typedef struct {
    sorted_run *runs;
    int n;
    size_t rec;
    const char *what;
    run_cmp cmp; /* the runs' order (NULL: the key) */
} run_files;

/* Add the run f holds (n records, written in key order) to the list, first
 * merging the list into one run when it is full; f is the list's (closed
 * on error). */
rtr_status run_files_push(run_files *l, FILE *f, size_t n);
void run_files_free(run_files *l);

/* Records sorted by cmp in bounded memory: add holds up to max_held of
 * them, sorts them and writes them as a run on disk when full; merge gives
 * every record added, in order (stable: equal records in the order added),
 * from the buffer alone when nothing was spilled. The merge stays valid
 * until free and may be walked again (run_merge_start). */
typedef struct {
    run_files files;
    char *buf;
    size_t n, cap, max_held;
    sorted_run mem;
    run_merge m;
} run_sorter;

void run_sorter_init(run_sorter *s, size_t rec, size_t max_held, run_cmp cmp, const char *what);
rtr_status run_sorter_add(run_sorter *s, const void *rec);
rtr_status run_sorter_merge(run_sorter *s, run_merge **m);
void run_sorter_free(run_sorter *s);

#endif
