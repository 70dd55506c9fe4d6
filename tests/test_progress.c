/* Progress of long work on stderr (src/common/util.c): periodic lines with
 * count, share, rate and ETA when stderr is a file (a cluster job's log),
 * every RTR_PROGRESS_SECONDS, and a closing line; one live line rewritten in
 * place on a terminal (a pseudo-terminal here); nothing at all when quiet;
 * notes silenced by quiet too. And rtr_utf8_scrub (src/common/util.c),
 * against Python's bytes.decode("utf-8", errors="replace"). */
#include "test.h"
#include "common/util.h"

#include <fcntl.h>
#include <pty.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char out[16384];

/* Run `steps` updates 20 ms apart with stderr on fd; what fd received. */
static const char *run_progress(int fd, int read_fd, int steps, double total) {
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    rtr_progress p;
    rtr_progress_init(&p, "work", total);
    for (int i = 1; i <= steps; i++) {
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
        rtr_progress_update(&p, i);
    }
    rtr_progress_end(&p);
    rtr_note("a note");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    lseek(read_fd, 0, SEEK_SET);
    ssize_t n = 0, got;
    while ((got = read(read_fd, out + n, sizeof out - 1 - (size_t)n)) > 0) n += got;
    out[n > 0 ? n : 0] = 0;
    return out;
}

static int temp_fd(void) {
    char path[] = "/tmp/rtr_progress_XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    return fd;
}

static void test_log_lines(void) {
    setenv("RTR_PROGRESS_SECONDS", "0.1", 1);
    rtr_set_quiet(false);
    int fd = temp_fd();
    double t0 = rtr_now();
    const char *s = run_progress(fd, fd, 30, 30);
    double took = rtr_now() - t0;
    close(fd);
    CHECK_MSG(!strchr(s, '\r'), "no carriage returns in a log: %s", s);
    int lines = 0;
    for (const char *l = s; (l = strstr(l, "work: ")); l++) {
        long done, total;
        double pct, rate;
        char eta[16];
        if (sscanf(l, "work: %ld/%ld (%lf%%), %lf/s, ETA %15s", &done, &total, &pct, &rate, eta) == 5) {
            lines++;
            CHECK_MSG(total == 30 && done > 0 && done <= 30 && fabs(pct - 100.0 * done / 30) < 0.06 && rate > 5,
                      "line: %.60s", l);
        }
    }
    /* 30 steps of 20 ms (longer on a loaded machine) at 0.1 s intervals:
     * about one line per interval elapsed, never one per step. */
    CHECK_MSG(lines >= 2 && lines <= took / 0.1 + 2 && lines < 20, "%d periodic lines in %.2f s:\n%s", lines, took,
              s);
    CHECK_MSG(strstr(s, "work: 30 in ") && strstr(s, "/s)\n"), "closing line: %s", s);
    CHECK_MSG(strstr(s, "rtr: a note\n"), "note: %s", s);
}

static void test_interval_respected(void) {
    setenv("RTR_PROGRESS_SECONDS", "5", 1);
    int fd = temp_fd();
    const char *s = run_progress(fd, fd, 10, 10);
    close(fd);
    CHECK_MSG(!strstr(s, "work:"), "0.2 s of work under a 5 s interval prints nothing: %s", s);
    setenv("RTR_PROGRESS_SECONDS", "nonsense", 1); /* falls back to the default (15 s) */
    fd = temp_fd();
    s = run_progress(fd, fd, 5, 0);
    close(fd);
    CHECK_MSG(!strstr(s, "work:"), "an invalid interval falls back to the default: %s", s);
}

static void test_no_total(void) {
    setenv("RTR_PROGRESS_SECONDS", "0.05", 1);
    int fd = temp_fd();
    const char *s = run_progress(fd, fd, 10, 0);
    close(fd);
    long done;
    double rate;
    const char *l = strstr(s, "work: ");
    CHECK_MSG(l && sscanf(l, "work: %ld, %lf/s", &done, &rate) == 2 && !strstr(s, "ETA"), "no total, no ETA: %s", s);
}

static void test_quiet(void) {
    setenv("RTR_PROGRESS_SECONDS", "0", 1);
    rtr_set_quiet(true);
    int fd = temp_fd();
    const char *s = run_progress(fd, fd, 5, 5);
    close(fd);
    rtr_set_quiet(false);
    CHECK_MSG(!*s, "quiet prints nothing: %s", s);
}

static void test_terminal_live_line(void) {
    int master, slave;
    if (openpty(&master, &slave, NULL, NULL, NULL) != 0) TEST_SKIP("no pseudo-terminal");
    fcntl(master, F_SETFL, O_NONBLOCK);
    /* The live line waits two seconds before it shows, then every 0.5 s. */
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(slave, STDERR_FILENO);
    rtr_progress p;
    rtr_progress_init(&p, "work", 200);
    for (int i = 1; i <= 140; i++) {
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
        rtr_progress_update(&p, i);
    }
    rtr_progress_end(&p);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = 0, got;
    while ((got = read(master, out + n, sizeof out - 1 - (size_t)n)) > 0) n += got;
    out[n > 0 ? n : 0] = 0;
    close(master);
    close(slave);
    int rewrites = 0;
    for (const char *c = out; (c = strstr(c, "\rwork: ")); c++) rewrites++;
    CHECK_MSG(rewrites >= 2 && strstr(out, "\033[K"), "%d live rewrites: %s", rewrites, out);
    CHECK_MSG(strstr(out, "\rwork: 140/200 (70.0%)"), "the final count: %s", out);
    CHECK_MSG(n > 0 && (out[n - 1] == '\n' || out[n - 2] == '\r'), "the line is kept at the end");
}

/* One U+FFFD per maximal subpart of an ill-formed sequence (a cut 4-byte
 * sequence gave 3 before): the expected strings are what Python's
 * bytes.decode("utf-8", errors="replace") gives for each input. */
static void test_utf8_scrub(void) {
#define R "\xef\xbf\xbd"
    const char *cases[][2] = {
        {"plain caf\xc3\xa9 \xf0\x9f\x98\x80", "plain caf\xc3\xa9 \xf0\x9f\x98\x80"}, /* valid: unchanged */
        {"a\xc3" "b", "a" R "b"},                   /* cut 2-byte */
        {"a\xe2\x82" "b", "a" R "b"},               /* cut 3-byte */
        {"a\xf0\x9f\x98" "b", "a" R "b"},           /* cut 4-byte: one, not three */
        {"a\xf0\x9f\x98", "a" R},                   /* cut at the end */
        {"a\xf0\x9f\xf0\x9f\x98\x80", "a" R "\xf0\x9f\x98\x80"}, /* cut, then a whole one */
        {"a\xc0\xaf" "b", "a" R R "b"},             /* overlong 2-byte: C0 starts nothing */
        {"a\xe0\x80\xaf" "b", "a" R R R "b"},       /* overlong 3-byte: E0 needs A0..BF next */
        {"a\xf0\x80\x80\xaf", "a" R R R R},         /* overlong 4-byte */
        {"a\xed\xa0\x80" "b", "a" R R R "b"},       /* a surrogate (U+D800) encoded */
        {"a\xf4\x90\x80\x80", "a" R R R R},         /* past U+10FFFF */
        {"\x80\xbf\xff\xfe", R R R R},              /* lone continuations, bytes no sequence uses */
        {"caf\xe9", "caf" R},                        /* Latin-1 */
    };
#undef R
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = rtr_utf8_scrub(cases[i][0]);
        CHECK_MSG(got && !strcmp(got, cases[i][1]), "case %zu: got '%s'", i, got ? got : "(null)");
        CHECK(got && rtr_utf8_valid(got, strlen(got), NULL));
        free(got);
    }
}

TEST_MAIN(T(test_log_lines), T(test_interval_respected), T(test_no_total), T(test_quiet), T(test_terminal_live_line),
          T(test_utf8_scrub))
