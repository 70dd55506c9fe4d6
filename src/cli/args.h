/* Command-line option parsing shared by every `rtr <command>`: each command
 * declares a table of options; parsing, `--help` text and usage errors
 * (exit status 2) come from that one table. */
#ifndef RTR_ARGS_H
#define RTR_ARGS_H

#include <stdbool.h>
#include <stdio.h>

/* RTR_OPT_REQUIRED is a string option whose absence is a usage error. */
typedef enum { RTR_OPT_FLAG, RTR_OPT_STR, RTR_OPT_REQUIRED, RTR_OPT_INT, RTR_OPT_DOUBLE } rtr_opt_kind;

typedef struct {
    const char *name; /* long name without the dashes: "out" for --out */
    rtr_opt_kind kind;
    void *dest;       /* bool*, const char**, long*, double* by kind */
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
} rtr_args;

/* Parse argv (argv[0] is the command name). Every command also accepts
 * --help and --json. Returns 0 to continue, 2 on a usage error (message
 * printed: unknown option, bad value, missing required option, wrong number
 * of positionals), or -1 when --help was printed. */
int rtr_args_parse(const rtr_cmd_spec *spec, int argc, char **argv, rtr_args *out);
void rtr_args_help(const rtr_cmd_spec *spec, FILE *out);

#endif
