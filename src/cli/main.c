/* rtr command-line entry point: dispatches `rtr <command>` to cmd_<name>()
 * (one file per command, listed in commands.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "common/limits.h"
#include "common/util.h"
#include "rtr/dist.h"
#include "rtr/rtr.h"

#define RTR_COMMAND(fn, name, summary) int cmd_##fn(int argc, char **argv);
#include "cli/commands.h"
#undef RTR_COMMAND

typedef struct {
    const char *name, *summary;
    int (*fn)(int, char **);
} command;

static const command commands[] = {
#define RTR_COMMAND(fn, name, summary) {name, summary, cmd_##fn},
#include "cli/commands.h"
#undef RTR_COMMAND
};

#define N_COMMANDS (sizeof commands / sizeof *commands)

/* Commands and options in one column, as each command's --help has them. */
static void usage(FILE *out) {
    int w = (int)strlen("--version");
    for (size_t i = 0; i < N_COMMANDS; i++)
        if ((int)strlen(commands[i].name) > w) w = (int)strlen(commands[i].name);
    fprintf(out, "usage: rtr <command> [options]\n       rtr --help | --version\n\n"
                 "rtr routes each query to the (LLM, reasoning strategy) pair with the best\n"
                 "lambda*accuracy - (1-lambda)*cost (Route-To-Reason, arXiv 2505.19435).\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-*s  %s\n", w, commands[i].name, commands[i].summary);
    fprintf(out, "\noptions:\n  %-*s  %s\n  %-*s  %s\n", w, "--help", "show this help", w, "--version",
            "print rtr's version");
    fprintf(out, "\n`rtr <command> --help` describes a command. Every command takes --json (its\n"
                 "summary as one JSON object on stdout) and --quiet (no progress or notes).\n"
                 "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

/* An unknown command: a usage error naming the closest command or option, if any. */
static int unknown_command(const char *word) {
    const char *names[N_COMMANDS + 2] = {"--help", "--version"};
    for (size_t i = 0; i < N_COMMANDS; i++) names[i + 2] = commands[i].name;
    const char *near = rtr_closest_name(word, names, N_COMMANDS + 2);
    fprintf(stderr, "rtr: unknown command '%s'", word);
    if (near) fprintf(stderr, "; did you mean %s?", near);
    fprintf(stderr, " (see rtr --help)\n");
    return 2;
}

/* Under mpirun every rank runs the command on its share (docs/SCALING.md):
 * rank 0 prints the results; a rank that fails has printed its error and
 * stops every rank, so none waits in a collective for it. */
static int run(const command *c, int argc, char **argv) {
    if (rtr_dist_init(&argc, &argv)) {
        fprintf(stderr, "rtr %s: error: %s\n", c->name, rtr_last_error());
        return 1;
    }
    if (rtr_dist_rank() > 0 && !freopen("/dev/null", "w", stdout)) return 1;
    static const char *const split[] = {"encode", "score", "route", "sweep", "train", "eval"};
    bool splits = false;
    for (size_t i = 0; i < sizeof split / sizeof *split; i++) splits |= !strcmp(c->name, split[i]);
    int rc = 2;
    if (rtr_dist_size() > 1 && !splits)
        fprintf(stderr, "rtr %s: does not split across MPI ranks (docs/SCALING.md): run it as one process\n", c->name);
    else
        rc = c->fn(argc - 1, argv + 1);
    /* output lost on a full or closed stdout is an error, for every command */
    if (!rc && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "rtr %s: error: stdout: write error (output lost)\n", c->name);
        rc = 1;
    }
    if (rc && rtr_dist_size() > 1) {
        fprintf(stderr, "rtr %s: rank %d of %d failed (above): stopping every rank\n", c->name, rtr_dist_rank(),
                rtr_dist_size());
        rtr_dist_abort(rc);
    }
    rtr_dist_finalize();
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { printf("rtr %s\n", RTR_VERSION_STRING); return 0; }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) rtr_exit(run(&commands[i], argc, argv));
    return unknown_command(argv[1]);
}
