/* The option parser every `rtr` command shares (src/cli/args.c, compiled
 * into this test: the rtr binary is not a library): one rule for numbers
 * (a value that does not parse, is not finite or is out of the kind's range
 * is a usage error that quotes the value as given), the closest known
 * option suggested for an unknown one, --quiet, --help aligned with no
 * "nan" default, and the --out extension message. */
#include "test.h"

#include "cli/args.c"

#include <string.h>
#include <unistd.h>

/* stderr (or stdout) of a call, captured through a temporary file. */
static char captured[8192];
static int saved_fd = -1;
static FILE *cap_file;

static void capture_begin(FILE *stream) {
    fflush(stream);
    cap_file = tmpfile();
    saved_fd = dup(fileno(stream));
    dup2(fileno(cap_file), fileno(stream));
}

static const char *capture_end(FILE *stream) {
    fflush(stream);
    dup2(saved_fd, fileno(stream));
    close(saved_fd);
    rewind(cap_file);
    size_t n = fread(captured, 1, sizeof captured - 1, cap_file);
    captured[n] = 0;
    fclose(cap_file);
    return captured;
}

static long shard_size = 4096, threads = 0;
static double lambda = NAN, lr = 1e-3, frac = 0.1, shift = 0;
static const char *out_path = NULL;
static bool force = false;
static const rtr_opt OPTS[] = {
    {"shard-size", RTR_OPT_COUNT, &shard_size, "queries per shard"},
    {"threads", RTR_OPT_INT, &threads, "CPU threads (0: all)"},
    {"lambda", RTR_OPT_UNIT, &lambda, "trade-off"},
    {"lr", RTR_OPT_POSITIVE, &lr, "learning rate"},
    {"val-frac", RTR_OPT_NONNEG, &frac, "held-out share"},
    {"shift", RTR_OPT_DOUBLE, &shift, "any number"},
    {"out", RTR_OPT_STR, &out_path, "output file"},
    {"force", RTR_OPT_FLAG, &force, "redo"},
    {0},
};
static const rtr_cmd_spec SPEC = {"demo", "[options] DIR", "A command for the test.", OPTS, 0, 1};

/* Parse a NULL-terminated list of arguments; stderr into captured. */
static int parse_args(rtr_args *a, ...) {
    char *argv[32] = {"demo"};
    int argc = 1;
    va_list ap;
    va_start(ap, a);
    for (char *s; (s = va_arg(ap, char *)) && argc < 31;) argv[argc++] = s;
    va_end(ap);
    shard_size = 4096, threads = 0, lambda = NAN, lr = 1e-3, frac = 0.1, shift = 0, out_path = NULL, force = false;
    capture_begin(stderr);
    int rc = rtr_args_parse(&SPEC, argc, argv, a);
    capture_end(stderr);
    return rc;
}

static void test_numbers_one_rule(void) {
    rtr_args a;
    /* Not a number and out of range: the same usage error, the value quoted. */
    CHECK(parse_args(&a, "--shard-size", "10abc", NULL) == 2);
    CHECK_MSG(strstr(captured, "--shard-size '10abc': expected an integer >= 1"), "%s", captured);
    CHECK(parse_args(&a, "--shard-size", "0", NULL) == 2);
    CHECK_MSG(strstr(captured, "--shard-size '0': expected an integer >= 1"), "%s", captured);
    CHECK(parse_args(&a, "--shard-size", "4096", NULL) == 0 && shard_size == 4096);
    CHECK(parse_args(&a, "--threads", "0", NULL) == 0 && threads == 0);
    CHECK(parse_args(&a, "--threads", "-1", NULL) == 2 && strstr(captured, "'-1'"));
    CHECK(parse_args(&a, "--threads", "99999999999999999999999", NULL) == 2);
    /* The value printed as given, not rounded by %g. */
    CHECK(parse_args(&a, "--lambda", "1.0000001", NULL) == 2);
    CHECK_MSG(strstr(captured, "--lambda '1.0000001': expected a number in [0, 1]"), "%s", captured);
    CHECK(parse_args(&a, "--lambda=0.25", NULL) == 0 && lambda == 0.25);
    CHECK(parse_args(&a, NULL) == 0 && isnan(lambda));
    /* nan and inf are refused everywhere, even where any number goes. */
    const char *bad[] = {"nan", "NaN", "inf", "-inf", "infinity", "1e999", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_MSG(parse_args(&a, "--shift", bad[i], NULL) == 2, "--shift %s", bad[i]);
        CHECK_MSG(parse_args(&a, "--lambda", bad[i], NULL) == 2, "--lambda %s", bad[i]);
    }
    CHECK(parse_args(&a, "--shift", "-2.5", NULL) == 0 && shift == -2.5);
    CHECK(parse_args(&a, "--lr", "0", NULL) == 2 && strstr(captured, "a number > 0"));
    CHECK(parse_args(&a, "--val-frac", "0", NULL) == 0 && frac == 0);
    CHECK(parse_args(&a, "--val-frac", "-0.1", NULL) == 2 && strstr(captured, "a number >= 0"));
    CHECK(parse_args(&a, "--lr", NULL) == 2 && strstr(captured, "--lr needs a value"));
}

static void test_did_you_mean(void) {
    rtr_args a;
    CHECK(parse_args(&a, "--lamda", "0.5", NULL) == 2);
    CHECK_MSG(strstr(captured, "unknown option '--lamda'; did you mean --lambda?"), "%s", captured);
    CHECK(parse_args(&a, "--lamda=0.5", NULL) == 2 && strstr(captured, "did you mean --lambda?"));
    CHECK(parse_args(&a, "-lambda", "0.5", NULL) == 2 && strstr(captured, "did you mean --lambda?"));
    CHECK(parse_args(&a, "--shard", "8", NULL) == 2 && strstr(captured, "did you mean --shard-size?"));
    CHECK(parse_args(&a, "--jsno", NULL) == 2 && strstr(captured, "did you mean --json?"));
    CHECK(parse_args(&a, "--quite", NULL) == 2 && strstr(captured, "did you mean --quiet?"));
    CHECK(parse_args(&a, "--xyzzy", NULL) == 2 && !strstr(captured, "did you mean"));
    const char *commands[] = {"gen-demo", "ingest", "info", "encode", "sweep", "route", "eval", "eval-predictor"};
    CHECK(rtr_closest_name("sweeep", commands, 8) && !strcmp(rtr_closest_name("sweeep", commands, 8), "sweep"));
    CHECK(rtr_closest_name("eval-predicter", commands, 8) &&
          !strcmp(rtr_closest_name("eval-predicter", commands, 8), "eval-predictor"));
    CHECK(rtr_closest_name("ingset", commands, 8) && !strcmp(rtr_closest_name("ingset", commands, 8), "ingest"));
    CHECK(rtr_closest_name("banana", commands, 8) == NULL);
}

static void test_quiet_json_positionals(void) {
    rtr_args a;
    CHECK(parse_args(&a, "--quiet", "dir", NULL) == 0 && a.quiet && rtr_quiet() && a.npos == 1 && !strcmp(a.pos[0], "dir"));
    CHECK(parse_args(&a, "-q", "--json", NULL) == 0 && a.quiet && a.json);
    CHECK(parse_args(&a, NULL) == 0 && !a.quiet && !rtr_quiet());
    CHECK(parse_args(&a, "a", "b", NULL) == 2 && strstr(captured, "wrong number of arguments"));
    CHECK(parse_args(&a, "--force=yes", NULL) == 2 && strstr(captured, "--force takes no value"));
}

static void test_help_aligned(void) {
    capture_begin(stdout);
    rtr_args_help(&SPEC, stdout);
    const char *h = capture_end(stdout);
    int column = -1, lines = 0;
    for (const char *l = strstr(h, "\n  --"); l; l = strstr(l + 1, "\n  --")) {
        const char *p = l + 3;
        while (*p && *p != ' ') p++;            /* the option */
        if (p[0] == ' ' && p[1] != ' ' && p[1] != '-') p = strchr(p + 1, ' '); /* its metavariable */
        if (!strncmp(p, " -q", 3)) p += 3;      /* "--quiet, -q" */
        while (*p == ' ') p++;
        int col = (int)(p - (l + 1));
        CHECK_MSG(column < 0 || col == column, "help column %d vs %d at: %.40s", col, column, l + 1);
        column = col;
        lines++;
    }
    CHECK_MSG(lines == 11, "8 options and --json, --quiet, --help: %d lines\n%s", lines, h);
    CHECK_MSG(!strstr(h, "nan"), "an unset number shows no default: %s", h);
    CHECK(strstr(h, "(default: 4096) [an integer >= 1]") != NULL);
}

static void test_out_extension(void) {
    const char *exts[] = {".csv", ".jsonl", ".h5", NULL};
    capture_begin(stderr);
    int rc = rtr_args_check_ext(&SPEC, "out", "x.parquet", exts);
    capture_end(stderr);
    CHECK(rc == 2);
    CHECK_MSG(strstr(captured, "--out 'x.parquet': unsupported extension '.parquet'; use .csv, .jsonl or .h5"), "%s",
              captured);
    capture_begin(stderr);
    rc = rtr_args_check_ext(&SPEC, "out", "dir.v2/decisions", exts);
    capture_end(stderr);
    CHECK(rc == 2 && strstr(captured, "no file extension; use .csv, .jsonl or .h5"));
    CHECK(rtr_args_check_ext(&SPEC, "out", "a/b.jsonl", exts) == 0);
    CHECK(rtr_args_check_ext(&SPEC, "out", "b.h5", exts) == 0);
}

TEST_MAIN(T(test_numbers_one_rule), T(test_did_you_mean), T(test_quiet_json_positionals), T(test_help_aligned),
          T(test_out_extension))
