/* Helpers shared by the rtr commands (cli.h). */
#include "cli/cli.h"
#include "common/util.h"
#include "rtr/store.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rtr_status cli_route_options(const cli_route *c, rtr_route_options *o) {
    memset(o, 0, sizeof *o);
    o->table = c->table;
    o->split = c->split;
    o->pair_cost_path = c->pair_cost;
    o->exclude = c->exclude;
    o->max_tokens = c->max_tokens;
    o->checkpoint_hash = c->checkpoint_hash;
    o->cost_scale = c->cost_scale;
    return rtr_cost_model_parse(&o->cost_model, c->cost ? c->cost : "tokens");
}

void cli_print_json(cJSON *o) {
    char *text = cJSON_PrintUnformatted(o);
    if (text) puts(text);
    free(text);
    cJSON_Delete(o);
}

const char *cli_num(char *buf, size_t n, const char *fmt, double v, const char *missing) {
    if (!isfinite(v)) return missing;
    snprintf(buf, n, fmt, v);
    return buf;
}

int cli_width(const char *s, int columns) {
    int extra = 0;
    for (; *s; s++) extra += ((unsigned char)*s & 0xC0) == 0x80; /* continuation bytes take no column */
    return columns + extra;
}

rtr_status cli_split(const char *cmd, const char *dir, const char *given, const char *fallback, const char **split) {
    *split = NULL;
    if (given && (!*given || !strcmp(given, CLI_SPLIT_ALL))) return RTR_OK;
    if (given) {
        rtr_status st = rtr_corpus_check_names(dir, given, NULL, 0);
        if (!st) *split = given;
        return st;
    }
    rtr_status st = rtr_corpus_check_names(dir, CLI_SPLIT_DEFAULT, NULL, 0);
    if (!st) *split = CLI_SPLIT_DEFAULT;
    if (st != RTR_ERR_INVALID) return st;
    /* the library's sentence: the splits it has, and any that differ only in case */
    if (fallback) rtr_note("%s: %s: %s (--split S picks a split)", cmd, rtr_last_error(), fallback);
    return RTR_OK;
}

void cli_set_threads(long n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads((int)n); /* at most RTR_OPT_MAX_THREADS (the parser checked) */
#else
#error "the CLI is built with OpenMP, as the library (CMakeLists.txt), so --threads takes effect"
#endif
}

int cli_error(const char *cmd) {
    fprintf(stderr, "rtr %s: error: %s\n", cmd, rtr_last_error());
    return 1;
}
