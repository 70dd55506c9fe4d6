/* libFuzzer harness: command-line parsing of every `rtr` command. The input
 * is a command line, NUL-separated: the command's name, then its arguments
 * (a name that is no command is skipped). Run
 * in an empty scratch directory with stdin at end of file, so whatever the
 * options, a command finds no corpus, model or file to work on: it must
 * answer 0 (--help), 1 or 2, never crash. gen-demo and ingest are left out:
 * they make outputs from nothing (gen-demo --queries 1e9 fills the disk) and
 * their options go through the same parser (src/cli/args.c) as the others'. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    const char *root = fuzz_root();
    if (chdir(root) != 0) abort();
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    const fuzz_command *cmd = NULL;
    for (int i = 0; i < FUZZ_N_COMMANDS; i++)
        if (!strcmp(buf, fuzz_commands[i].name)) cmd = &fuzz_commands[i];
    if (!cmd || fuzz_skipped(cmd->name) || !strcmp(cmd->name, "gen-demo") || !strcmp(cmd->name, "ingest")) {
        free(buf);
        return 0;
    }
    char *argv[66];
    int argc = 0;
    argv[argc++] = (char *)cmd->name;
    for (char *s = buf + strlen(buf) + 1; s < buf + size && argc < 64; s += strlen(s) + 1) argv[argc++] = s;
    argv[argc] = NULL;
    int rc = cmd->fn(argc, argv);
    FUZZ_ASSERT(rc == 0 || rc == 1 || rc == 2, "rtr %s exited %d", cmd->name, rc);
    free(buf);
    /* anything a command made here (an output of a command that got far) goes */
    DIR *d = opendir(root);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            char p[600];
            snprintf(p, sizeof p, "%s/%s", root, e->d_name);
            fuzz_rmtree(p);
        }
    if (d) closedir(d);
    return 0;
}
