/* Option parsing for `rtr <command>`; see args.h. */
#include "cli/args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const rtr_opt *find_opt(const rtr_opt *opts, const char *name, size_t len) {
    for (const rtr_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, name, len)) return o;
    return NULL;
}

static int set_value(const rtr_cmd_spec *spec, const rtr_opt *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case RTR_OPT_STR:
    case RTR_OPT_REQUIRED: *(const char **)o->dest = v; return 0;
    case RTR_OPT_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end) break;
        *(long *)o->dest = x;
        return 0;
    }
    case RTR_OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end) break;
        *(double *)o->dest = x;
        return 0;
    }
    case RTR_OPT_FLAG: break;
    }
    fprintf(stderr, "rtr %s: --%s: invalid value '%s'\n", spec->name, o->name, v);
    return 2;
}

static int parse(const rtr_cmd_spec *spec, int argc, char **argv, rtr_args *out) {
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !strcmp(a, "-")) { out->pos[out->npos++] = argv[i]; continue; }
        if (!strcmp(a, "--")) { only_pos = true; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { rtr_args_help(spec, stdout); return -1; }
        if (!strcmp(a, "--json")) { out->json = true; continue; }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "rtr %s: unknown option '%s' (see rtr %s --help)\n", spec->name, a, spec->name);
            return 2;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        const rtr_opt *o = find_opt(spec->opts, name, eq ? (size_t)(eq - name) : strlen(name));
        if (!o) {
            fprintf(stderr, "rtr %s: unknown option '%s' (see rtr %s --help)\n", spec->name, a, spec->name);
            return 2;
        }
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
    return 0;
}

int rtr_args_parse(const rtr_cmd_spec *spec, int argc, char **argv, rtr_args *out) {
    memset(out, 0, sizeof *out);
    out->pos = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!out->pos) return 2;
    int rc = parse(spec, argc, argv, out);
    /* Option values point at argv's strings, not its slots, so the slots can
     * take the positionals: callers then own nothing. */
    memcpy(argv + 1, out->pos, sizeof(char *) * (size_t)out->npos);
    free(out->pos);
    out->pos = argv + 1;
    return rc;
}

void rtr_args_help(const rtr_cmd_spec *spec, FILE *out) {
    fprintf(out, "usage: rtr %s %s\n\n%s\n\noptions:\n", spec->name, spec->usage, spec->summary);
    for (const rtr_opt *o = spec->opts; o && o->name; o++) {
        char left[64];
        const char *meta = o->kind == RTR_OPT_STR || o->kind == RTR_OPT_REQUIRED ? " S"
                           : o->kind == RTR_OPT_INT                          ? " N"
                           : o->kind == RTR_OPT_DOUBLE                       ? " X"
                                                                              : "";
        snprintf(left, sizeof left, "--%s%s", o->name, meta);
        fprintf(out, "  %-22s %s", left, o->help);
        switch (o->kind) {
        case RTR_OPT_STR:
            if (*(const char **)o->dest) fprintf(out, " (default: %s)", *(const char **)o->dest);
            break;
        case RTR_OPT_REQUIRED: fprintf(out, " (required)"); break;
        case RTR_OPT_INT: fprintf(out, " (default: %ld)", *(long *)o->dest); break;
        case RTR_OPT_DOUBLE: fprintf(out, " (default: %g)", *(double *)o->dest); break;
        case RTR_OPT_FLAG: break;
        }
        fputc('\n', out);
    }
    fprintf(out, "  %-22s %s\n  %-22s %s\n", "--json", "print the result summary as one JSON object on stdout",
            "--help", "show this help");
}
