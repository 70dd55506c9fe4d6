/* rtr command-line entry point: dispatches `rtr <command>` to cmd_<name>()
 * (one file per command, listed in commands.h). */
#include <stdio.h>
#include <string.h>

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

static void usage(FILE *out) {
    fprintf(out, "usage: rtr <command> [options]\n\n"
                 "rtr routes each query to the (LLM, reasoning strategy) pair with the best\n"
                 "lambda*accuracy - (1-lambda)*cost (Route-To-Reason, arXiv 2505.19435).\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`rtr <command> --help` describes a command. Every command takes --json.\n"
                 "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { printf("rtr %s\n", RTR_VERSION_STRING); return 0; }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "rtr: unknown command '%s' (see rtr --help)\n", argv[1]);
    return 2;
}
