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
#include <strings.h> /* strcasecmp */

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

const char *cli_shown(const char *s) {
    static char *ring[8];
    static unsigned next;
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++) n += *p < 0x20 || *p == 0x7F || (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F);
    if (!n) return s;
    char *out = malloc(strlen(s) + 6 * n + 1), *o = out; /* "\u0085" (6) for a C1's 2 bytes */
    if (!out) return s;
    for (p = (const unsigned char *)s; *p; p++) {
        const char *named = *p == '\n' ? "\\n" : *p == '\t' ? "\\t" : *p == '\r' ? "\\r" : NULL;
        if (named) o += sprintf(o, "%s", named);
        else if (*p < 0x20 || *p == 0x7F) o += sprintf(o, "\\x%02x", *p);
        else if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) o += sprintf(o, "\\u%04x", p[1]), p++;
        else *o++ = (char)*p;
    }
    *o = '\0';
    free(ring[next % 8]);
    ring[next++ % 8] = out;
    return out;
}

int cli_width(const char *s, int columns) {
    int extra = 0;
    for (; *s; s++) extra += ((unsigned char)*s & 0xC0) == 0x80; /* continuation bytes take no column */
    return columns + extra;
}

/* Distinct names, in order of first appearance. */
typedef struct {
    char **name;
    int n, cap;
} name_set;

static rtr_status names_add(name_set *s, const char *x) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], x)) return RTR_OK;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        char **p = realloc(s->name, (size_t)cap * sizeof *p);
        if (!p) return RTR_ERR_NOMEM;
        s->name = p, s->cap = cap;
    }
    if (!(s->name[s->n] = rtr_strdup(x))) return RTR_ERR_NOMEM;
    s->n++;
    return RTR_OK;
}

static bool names_has(const name_set *s, const char *x) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], x)) return true;
    return false;
}

static void names_free(name_set *s) {
    for (int i = 0; i < s->n; i++) free(s->name[i]);
    free(s->name);
}

/* The names of s that differ from x only in ASCII case, as "'Train'" or
 * "'Train' and 'TRAIN'" into b (nothing when none): split and dataset names
 * are compared exactly, and a log written with "Train" reads as absent. */
static void case_variants(rtr_buf *b, const name_set *s, const char *x) {
    int n = 0;
    for (int i = 0; i < s->n; i++)
        if (!strcasecmp(s->name[i], x) && strcmp(s->name[i], x))
            rtr_buf_printf(b, "%s'%s'", n++ ? " and " : "", cli_shown(s->name[i]));
}

/* "dir: no query in KIND 'x' (KINDs: a, b, c)": the first 20 names; with
 * "; the corpus has 'X' (names are case-sensitive; ..." when one differs
 * only in case. */
static rtr_status no_such(const char *dir, const char *kind, const char *x, const name_set *s) {
    rtr_buf b = {0}, near = {0};
    for (int i = 0; i < s->n && i < 20; i++) rtr_buf_printf(&b, "%s%s", i ? ", " : "", cli_shown(s->name[i]));
    if (s->n > 20) rtr_buf_printf(&b, ", and %d more", s->n - 20);
    case_variants(&near, s, x);
    rtr_status st = b.failed || near.failed ? RTR_ERR_NOMEM
                    : near.buf ? rtr_fail(RTR_ERR_INVALID, "%s: no query in %s '%s'; the corpus has %s (names are "
                                          "case-sensitive; %ss: %s)", dir, kind, x, near.buf, kind, b.buf)
                               : rtr_fail(RTR_ERR_INVALID, "%s: no query in %s '%s' (%ss: %s)", dir, kind, x, kind,
                                          b.buf ? b.buf : "none");
    rtr_buf_free(&b);
    rtr_buf_free(&near);
    return st;
}

/* The distinct split and dataset names of the corpus in dir (one read of
 * those two columns), or those up to the first row of split `stop` when
 * stop is not NULL. */
static rtr_status corpus_names(const char *dir, name_set *splits, name_set *sets, const char *stop) {
    rtr_corpus *c = NULL;
    rtr_row_reader *r = NULL;
    rtr_row_query q = rtr_row_query_default();
    q.columns = RTR_COL_DATASET | RTR_COL_SPLIT;
    q.skip_id_check = true; /* the command's own pass over the rows checks the ids */
    rtr_rows ch;
    rtr_status st = rtr_corpus_open(&c, dir);
    if (!st) st = rtr_row_reader_open(&r, c, &q);
    bool found = false;
    while (!st && !found && !(st = rtr_row_reader_next(r, &ch, NULL, NULL)) && ch.n)
        for (int64_t i = 0; i < ch.n && !st && !found; i++) {
            if (!(st = names_add(splits, ch.split[i]))) st = names_add(sets, ch.dataset[i]);
            found = stop && !strcmp(ch.split[i], stop);
        }
    rtr_row_reader_close(r);
    rtr_corpus_close(c);
    return st;
}

rtr_status cli_check_names(const char *dir, const char *split, const char *const *datasets, int n) {
    bool any = split && *split;
    for (int i = 0; i < n; i++) any |= datasets[i] != NULL;
    if (!any) return RTR_OK;
    name_set splits = {0}, sets = {0};
    rtr_status st = corpus_names(dir, &splits, &sets, NULL);
    if (!st && split && *split && !names_has(&splits, split)) st = no_such(dir, "split", split, &splits);
    for (int i = 0; !st && i < n; i++)
        if (datasets[i] && !names_has(&sets, datasets[i])) st = no_such(dir, "dataset", datasets[i], &sets);
    names_free(&splits);
    names_free(&sets);
    return st;
}

rtr_status cli_split(const char *cmd, const char *dir, const char *given, const char *fallback, const char **split) {
    *split = NULL;
    if (given && (!*given || !strcmp(given, CLI_SPLIT_ALL))) return RTR_OK;
    if (given) {
        rtr_status st = cli_check_names(dir, given, NULL, 0);
        if (!st) *split = given;
        return st;
    }
    name_set splits = {0}, sets = {0};
    rtr_status st = corpus_names(dir, &splits, &sets, CLI_SPLIT_DEFAULT);
    if (!st && names_has(&splits, CLI_SPLIT_DEFAULT)) *split = CLI_SPLIT_DEFAULT;
    else if (!st && fallback) {
        rtr_buf near = {0};
        case_variants(&near, &splits, CLI_SPLIT_DEFAULT);
        rtr_note("%s: %s has no query in split '%s'%s%s%s: %s (--split S picks a split)", cmd, dir, CLI_SPLIT_DEFAULT,
                 near.buf ? " (it has " : "", near.buf ? near.buf : "", near.buf ? "; names are case-sensitive)" : "",
                 fallback);
        rtr_buf_free(&near);
    }
    names_free(&splits);
    names_free(&sets);
    return st;
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
