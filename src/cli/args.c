/* Option parsing for `rtr <command>`; see args.h. */
#include "cli/args.h"
#include "common/util.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Options every command takes besides its own table. */
static const char *const COMMON[] = {"help", "json", "quiet"};
#define N_COMMON (sizeof COMMON / sizeof *COMMON)

static const rtr_opt *find_opt(const rtr_opt *opts, const char *name, size_t len) {
    for (const rtr_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, name, len)) return o;
    return NULL;
}

static bool is_number_kind(rtr_opt_kind k) { return k >= RTR_OPT_INT; }
static bool is_integer_kind(rtr_opt_kind k) { return k >= RTR_OPT_INT && k < RTR_OPT_DOUBLE; }

/* The range of each integer kind: the one place its bound is written. */
static const struct {
    long lo, hi;
} INT_RANGE[RTR_OPT_DOUBLE] = {
    [RTR_OPT_INT] = {0, INT_MAX},
    [RTR_OPT_COUNT] = {1, INT_MAX},
    [RTR_OPT_SEED] = {0, LONG_MAX},
    [RTR_OPT_ROWS] = {1, RTR_OPT_MAX_ROWS},
    [RTR_OPT_THREADS] = {0, RTR_OPT_MAX_THREADS},
    [RTR_OPT_NEIGHBOURS] = {1, RTR_OPT_MAX_NEIGHBOURS},
    [RTR_OPT_RESAMPLES] = {0, RTR_OPT_MAX_RESAMPLES},
    [RTR_OPT_GRID] = {0, RTR_OPT_MAX_GRID},
    [RTR_OPT_BOOT_QUERIES] = {RTR_OPT_MIN_BOOT_QUERIES, INT_MAX},
};

/* Whether --help states the kind's range: an integer bounded tighter than
 * an int, or a number whose lower bound is not the plain ">= 0". */
static bool range_said(rtr_opt_kind k) {
    if (is_integer_kind(k)) return INT_RANGE[k].lo > 0 || INT_RANGE[k].hi < INT_MAX;
    return k == RTR_OPT_POSITIVE || k == RTR_OPT_UNIT;
}

/* What a kind accepts, for messages and --help: "an integer >= 1, at most
 * 16777216" (buf holds an integer kind's words); the upper bound is said
 * when tighter than an int's, or when high (the value passed it). */
static const char *kind_wants(rtr_opt_kind k, bool high, char *buf, size_t n) {
    if (is_integer_kind(k)) {
        int w = snprintf(buf, n, "an integer >= %ld", INT_RANGE[k].lo);
        if ((high || INT_RANGE[k].hi < INT_MAX) && w > 0 && (size_t)w < n)
            snprintf(buf + w, n - (size_t)w, ", at most %ld", INT_RANGE[k].hi);
        return buf;
    }
    switch (k) {
    case RTR_OPT_DOUBLE: return "a finite number";
    case RTR_OPT_NONNEG: return "a number >= 0";
    case RTR_OPT_POSITIVE: return "a number > 0";
    case RTR_OPT_UNIT: return "a number in [0, 1]";
    default: return "a value";
    }
}

static bool in_range(rtr_opt_kind k, double x) {
    switch (k) {
    case RTR_OPT_NONNEG: return x >= 0;
    case RTR_OPT_POSITIVE: return x > 0;
    case RTR_OPT_UNIT: return x >= 0 && x <= 1;
    default: return true;
    }
}

/* One rule for every number: it parses completely, is finite and lies in
 * the kind's range, else the value is quoted back as given (exit 2). */
static int set_value(const rtr_cmd_spec *spec, const rtr_opt *o, const char *v) {
    if (!is_number_kind(o->kind)) { *(const char **)o->dest = v; return 0; }
    char *end = NULL;
    errno = 0;
    double x = NAN;
    long l = 0;
    if (is_integer_kind(o->kind)) l = strtol(v, &end, 10), x = (double)l;
    else x = strtod(v, &end);
    /* strtod's ERANGE on underflow (1e-320: a subnormal, or 0) still gives the
     * nearest double, in range; refused, it was called out of [0, 1] */
    if (errno == ERANGE && !is_integer_kind(o->kind) && fabs(x) <= DBL_MIN) errno = 0;
    bool integer = is_integer_kind(o->kind);
    if (errno || end == v || *end || !isfinite(x) || !in_range(o->kind, x) ||
        (integer && (l < INT_RANGE[o->kind].lo || l > INT_RANGE[o->kind].hi))) {
        char buf[64];
        bool high = integer && !errno && l > INT_RANGE[o->kind].hi;
        fprintf(stderr, "rtr %s: --%s '%s': expected %s\n", spec->name, o->name, v,
                kind_wants(o->kind, high, buf, sizeof buf));
        return 2;
    }
    if (is_integer_kind(o->kind)) *(long *)o->dest = l;
    else *(double *)o->dest = x;
    return 0;
}

static void unknown_option(const rtr_cmd_spec *spec, const char *arg) {
    const char *name = arg + strspn(arg, "-");
    size_t len = strcspn(name, "=");
    char word[128];
    snprintf(word, sizeof word, "%.*s", (int)(len < sizeof word ? len : sizeof word - 1), name);
    const char *names[128];
    size_t n = 0;
    for (const rtr_opt *o = spec->opts; o && o->name && n < 128 - N_COMMON; o++) names[n++] = o->name;
    for (size_t i = 0; i < N_COMMON; i++) names[n++] = COMMON[i];
    const char *near = rtr_closest_name(word, names, n);
    fprintf(stderr, "rtr %s: unknown option '%s'", spec->name, arg);
    if (near) fprintf(stderr, "; did you mean --%s?", near);
    fprintf(stderr, " (see rtr %s --help)\n", spec->name);
}

/* The options that name an output, and those that name an input file or
 * folder; every positional argument is an input too. The others (names,
 * titles, splits) are not paths and never clash. */
static const char *const OUTPUT_OPTS[] = {"out", "markdown", "figures"};
static const char *const INPUT_OPTS[] = {"checkpoint", "model", "catalog"};

static bool named(const char *name, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, names[i])) return true;
    return false;
}

/* Whether path lies in the corpus folder dir at a place the corpus owns: its
 * manifest, a shard, or anything under embeddings/ or tables/ (both
 * existing; symbolic links resolved). Any other file there (a checkpoint a
 * user keeps beside the shards) is the user's to replace. */
static bool corpus_owned(const char *path, const char *dir) {
    char rp[PATH_MAX], rd[PATH_MAX];
    if (!realpath(path, rp) || !realpath(dir, rd)) return false;
    size_t n = strlen(rd);
    if (strncmp(rp, rd, n) || (rp[n] != '/' && n != 1)) return false;
    char *manifest = rtr_sprintf("%s/manifest.json", rd);
    bool corpus = manifest && rtr_path_exists(manifest);
    free(manifest);
    const char *rel = rp + (n == 1 ? 1 : n + 1);
    size_t top = strcspn(rel, "/");
    return corpus && (!strcmp(rel, "manifest.json") || (!rel[top] && !strncmp(rel, "shard-", 6)) ||
                      (top == 10 && !strncmp(rel, "embeddings", 10)) || (top == 6 && !strncmp(rel, "tables", 6)));
}

/* An existing output that is an input (also through a symbolic link) or a
 * file a corpus given as input owns: the output, renamed into place, would
 * replace it. Refused as a usage error before anything is read. */
static int out_clashes(const rtr_cmd_spec *spec, const char *opt, const char *out, const struct stat *so,
                       const char *in) {
    struct stat si;
    if (!in || stat(in, &si)) return 0;
    bool same = si.st_dev == so->st_dev && si.st_ino == so->st_ino;
    if (!same && !(S_ISDIR(si.st_mode) && corpus_owned(out, in))) return 0;
    fprintf(stderr, "rtr %s: --%s '%s' %s '%s': the output would replace it; write it elsewhere\n", spec->name, opt,
            out, same ? "is the input" : "is a file of the input corpus", in);
    return 2;
}

static int check_out(const rtr_cmd_spec *spec, const rtr_args *a) {
    int rc = 0;
    for (const rtr_opt *o = spec->opts; o && o->name && !rc; o++) {
        if ((o->kind != RTR_OPT_STR && o->kind != RTR_OPT_REQUIRED) || !named(o->name, OUTPUT_OPTS, 3)) continue;
        const char *out = *(const char **)o->dest;
        struct stat so;
        if (!out || stat(out, &so)) continue; /* a new path replaces nothing */
        for (int i = 0; i < a->npos && !rc; i++) rc = out_clashes(spec, o->name, out, &so, a->pos[i]);
        for (const rtr_opt *in = spec->opts; in && in->name && !rc; in++)
            if ((in->kind == RTR_OPT_STR || in->kind == RTR_OPT_REQUIRED) && named(in->name, INPUT_OPTS, 3))
                rc = out_clashes(spec, o->name, out, &so, *(const char **)in->dest);
    }
    return rc;
}

static int parse(const rtr_cmd_spec *spec, int argc, char **argv, rtr_args *out) {
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !strcmp(a, "-")) { out->pos[out->npos++] = argv[i]; continue; }
        if (!strcmp(a, "--")) { only_pos = true; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { rtr_args_help(spec, stdout); return -1; }
        if (!strcmp(a, "--json")) { out->json = true; continue; }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) { out->quiet = true; continue; }
        const char *name = a + 2, *eq = strchr(name, '=');
        const rtr_opt *o = strncmp(a, "--", 2) ? NULL : find_opt(spec->opts, name, eq ? (size_t)(eq - name) : strlen(name));
        if (!o) { unknown_option(spec, a); return 2; }
        if (o->kind == RTR_OPT_FLAG) {
            if (eq) { fprintf(stderr, "rtr %s: --%s takes no value\n", spec->name, o->name); return 2; }
            *(bool *)o->dest = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) { fprintf(stderr, "rtr %s: --%s needs a value\n", spec->name, o->name); return 2; }
        if (set_value(spec, o, v)) return 2;
    }
    for (const rtr_opt *o = spec->opts; o && o->name; o++)
        if (o->kind == RTR_OPT_REQUIRED && !*(const char **)o->dest) {
            fprintf(stderr, "rtr %s: --%s is required (see rtr %s --help)\n", spec->name, o->name, spec->name);
            return 2;
        }
    if (out->npos < spec->min_pos || (spec->max_pos >= 0 && out->npos > spec->max_pos)) {
        fprintf(stderr, "rtr %s: wrong number of arguments\nusage: rtr %s %s\n", spec->name, spec->name, spec->usage);
        return 2;
    }
    return check_out(spec, out);
}

int rtr_args_parse(const rtr_cmd_spec *spec, int argc, char **argv, rtr_args *out) {
    memset(out, 0, sizeof *out);
    out->pos = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!out->pos) return 2;
    int rc = parse(spec, argc, argv, out);
    rtr_set_quiet(out->quiet);
    /* Option values point at argv's strings, not its slots, so the slots can
     * take the positionals: callers then own nothing. */
    memcpy(argv + 1, out->pos, sizeof(char *) * (size_t)out->npos);
    free(out->pos);
    out->pos = argv + 1;
    return rc;
}

static void option_left(char *left, size_t n, const rtr_opt *o) {
    const char *meta = o->kind == RTR_OPT_FLAG ? "" : o->kind == RTR_OPT_STR || o->kind == RTR_OPT_REQUIRED ? " S"
                       : is_integer_kind(o->kind) ? " N" : " X";
    snprintf(left, n, "--%s%s", o->name, meta);
}

void rtr_args_help(const rtr_cmd_spec *spec, FILE *out) {
    fprintf(out, "usage: rtr %s %s\n\n%s\n\noptions:\n", spec->name, spec->usage, spec->summary);
    char left[96];
    int width = (int)strlen("--quiet, -q");
    for (const rtr_opt *o = spec->opts; o && o->name; o++) {
        option_left(left, sizeof left, o);
        if ((int)strlen(left) > width) width = (int)strlen(left);
    }
    for (const rtr_opt *o = spec->opts; o && o->name; o++) {
        option_left(left, sizeof left, o);
        fprintf(out, "  %-*s  %s", width, left, o->help);
        if (o->kind == RTR_OPT_STR && *(const char **)o->dest) fprintf(out, " (default: %s)", *(const char **)o->dest);
        else if (o->kind == RTR_OPT_REQUIRED) fprintf(out, " (required)");
        else if (is_integer_kind(o->kind)) fprintf(out, " (default: %ld)", *(long *)o->dest);
        else if (is_number_kind(o->kind) && !isnan(*(double *)o->dest)) fprintf(out, " (default: %g)", *(double *)o->dest);
        char buf[64];
        if (range_said(o->kind)) fprintf(out, " [%s]", kind_wants(o->kind, false, buf, sizeof buf));
        fputc('\n', out);
    }
    fprintf(out, "  %-*s  %s\n  %-*s  %s\n  %-*s  %s\n", width, "--json",
            "print the result summary as one JSON object on stdout", width, "--quiet, -q",
            "no progress or notes on stderr (errors and warnings still)", width, "--help", "show this help");
}

int rtr_args_check_ext(const rtr_cmd_spec *spec, const char *opt, const char *path, const char *const *exts) {
    size_t pl = strlen(path);
    for (const char *const *e = exts; *e; e++) {
        size_t el = strlen(*e);
        if (pl > el && !strcmp(path + pl - el, *e)) return 0;
    }
    const char *slash = strrchr(path, '/'), *dot = strrchr(slash ? slash : path, '.');
    fprintf(stderr, "rtr %s: --%s '%s': ", spec->name, opt, path);
    if (dot) fprintf(stderr, "unsupported extension '%s'; use ", dot);
    else fprintf(stderr, "no file extension; use ");
    for (const char *const *e = exts; *e; e++) fprintf(stderr, "%s%s", *e, !e[1] ? "\n" : !e[2] ? " or " : ", ");
    return 2;
}
