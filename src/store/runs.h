/* Sorted runs of fixed-size records, in memory or in unlinked temporary
 * files, read back in key order by one k-way merge: how the stages keep
 * memory bounded when what they sort grows with the corpus (the λ path's
 * switch events, the query ids checked for uniqueness). A record's key is
 * the uint64 in its first 8 bytes. Internal. */
#ifndef RTR_RUNS_H
#define RTR_RUNS_H

#include "rtr/rtr.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The most bytes one record may have. */
#define RUN_MAX_REC 64

/* A run of records sorted on their key: in memory (mem), or in a temporary
 * file (f) read back a block of 64 KiB at a time. */
typedef struct {
    const char *mem;
    FILE *f;
    size_t n, rec;   /* records, bytes per record */
    size_t next;     /* the current record */
    char *buf;       /* f's records [base, base + have) */
    size_t base, have;
} sorted_run;

void sorted_run_close(sorted_run *r);

/* The k-way merge of runs: every record in key order, equal keys in run
 * order, so runs of consecutive rows (or of ranks in order) merge into the
 * order one stable sort of all of them gives. */
typedef struct {
    sorted_run *runs;
    int n, nh;
    int *heap; /* runs with a record left, the least (key, run) on top */
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
} run_files;

/* Add the run f holds (n records, written in key order) to the list, first
 * merging the list into one run when it is full; f is the list's (closed
 * on error). */
rtr_status run_files_push(run_files *l, FILE *f, size_t n);
void run_files_free(run_files *l);

#endif
