/* Command-line option parsing shared by every `rtr <command>`: each command
 * declares a table of options; parsing, value checks, `--help` text and
 * usage errors (exit status 2) come from that one table, so every command
 * reads its options the same way (docs/CLI.md). */
#ifndef RTR_ARGS_H
#define RTR_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "rtr/eval.h"   /* RTR_EVAL_MIN_BOOTSTRAP_QUERIES */
#include "rtr/stages.h" /* RTR_SWEEP_MAX_GRID */

/* What an option's value is; the kind carries the accepted range, so a
 * value that does not parse and one out of range are the same usage error,
 * with the same words (and `--help` states a bound tighter than an int's).
 * Numbers must be finite (nan and inf are refused). A DOUBLE-like option
 * whose dest starts as NaN is "not given" until the command line sets it
 * (its --help line then shows no default). The integer kinds come first. */
typedef enum {
    RTR_OPT_FLAG,         /* bool, no value */
    RTR_OPT_STR,          /* const char* */
    RTR_OPT_REQUIRED,     /* const char*; absence is a usage error */
    RTR_OPT_INT,          /* long in 0 .. INT_MAX (sizes; 0 often means "automatic"): commands
                           * store sizes in an int, where a larger one wrapped */
    RTR_OPT_COUNT,        /* long in 1 .. INT_MAX */
    RTR_OPT_SEED,         /* long >= 0, any size */
    RTR_OPT_ROWS,         /* long in 1 .. RTR_OPT_MAX_ROWS (rows a stage holds at once) */
    RTR_OPT_THREADS,      /* long in 0 .. RTR_OPT_MAX_THREADS (0: all cores) */
    RTR_OPT_NEIGHBOURS,   /* long in 1 .. RTR_OPT_MAX_NEIGHBOURS (a kNN router's k) */
    RTR_OPT_RESAMPLES,    /* long in 0 .. RTR_OPT_MAX_RESAMPLES (bootstrap resamples; 0: none) */
    RTR_OPT_GRID,         /* long in 0 .. RTR_OPT_MAX_GRID (λ values tabulated; 0: none) */
    RTR_OPT_BOOT_QUERIES, /* long in RTR_OPT_MIN_BOOT_QUERIES .. INT_MAX (an m-out-of-n bootstrap's m) */
    RTR_OPT_DOUBLE,       /* double, any finite value */
    RTR_OPT_NONNEG,       /* double >= 0 */
    RTR_OPT_POSITIVE,     /* double > 0 */
    RTR_OPT_UNIT          /* double in [0, 1] (lambda, fractions) */
} rtr_opt_kind;

/* The encoder's bound (src/encoder/encoder.c): libgomp died of SIGSEGV when
 * route, sweep or eval asked it for 100000 threads. */
#define RTR_OPT_MAX_THREADS 1024
/* Rows of a chunk a stage reads and computes at once (score --chunk-rows):
 * a chunk's buffers grow with it (2^24 rows of 384-d float embeddings alone
 * are 24 GiB), so a larger value asks for memory no machine here has. */
#define RTR_OPT_MAX_ROWS (1L << 24)
/* eval --knn: the search keeps each query's k best in an insertion list
 * (src/eval/knn.c), O(k) per training row it passes, so a k near the
 * training split's size costs its square. */
#define RTR_OPT_MAX_NEIGHBOURS 100000
/* eval --bootstrap: a resample costs O(queries x pairs); 100 times the
 * default 1,000 is finer than a percentile interval's third digit. */
#define RTR_OPT_MAX_RESAMPLES 100000
/* sweep --grid: grid.csv rows (include/rtr/stages.h). */
#define RTR_OPT_MAX_GRID RTR_SWEEP_MAX_GRID
/* eval --bootstrap-queries: the library's bound (include/rtr/eval.h says why). */
#define RTR_OPT_MIN_BOOT_QUERIES RTR_EVAL_MIN_BOOTSTRAP_QUERIES

typedef struct {
    const char *name; /* long name without the dashes: "out" for --out */
    rtr_opt_kind kind;
    void *dest;       /* bool*, const char**, long* or double* by kind */
    const char *help; /* one line; the default is printed from *dest */
} rtr_opt;

/* The --device option of every command that computes (include/rtr/backend.h). */
#define RTR_OPT_DEVICE(dest) {"device", RTR_OPT_STR, (dest), "cpu, cuda or auto (CUDA when a GPU answers)"}

typedef struct {
    const char *name;     /* command name */
    const char *usage;    /* "[options] CORPUS_DIR" */
    const char *summary;  /* one paragraph */
    const rtr_opt *opts;  /* terminated by {0} */
    int min_pos, max_pos; /* positional argument count (max_pos < 0: unbounded) */
} rtr_cmd_spec;

typedef struct {
    char **pos; /* positional arguments: argv is reordered so they follow argv[0] */
    int npos;
    bool json;  /* --json, accepted by every command */
    bool quiet; /* --quiet (-q), accepted by every command; also sets rtr_set_quiet */
} rtr_args;

/* Parse argv (argv[0] is the command name). Every command also accepts
 * --help, --json and --quiet. Returns 0 to continue, 2 on a usage error
 * (message printed: unknown option with the closest known one, a value that
 * does not parse or is out of the kind's range quoted as given, a missing
 * required option, wrong number of positionals), or -1 when --help was
 * printed. */
int rtr_args_parse(const rtr_cmd_spec *spec, int argc, char **argv, rtr_args *out);
void rtr_args_help(const rtr_cmd_spec *spec, FILE *out);

/* Check that path ends in one of exts (".csv", ... NULL-terminated). 0 when
 * it does; else prints "rtr CMD: --OPT 'x.parquet': unsupported extension
 * '.parquet'; use .csv, .jsonl or .h5" and returns 2 (a usage error). */
int rtr_args_check_ext(const rtr_cmd_spec *spec, const char *opt, const char *path, const char *const *exts);

#endif
