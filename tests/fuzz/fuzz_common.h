/* Shared by the libFuzzer harnesses (tools/run-fuzz): a scratch directory per
 * process, files written from fuzz bytes, and a small but complete corpus
 * made by rtr's own commands (ingest, then embeddings, train and score) that
 * the corpus harnesses damage one file of and open through every reader.
 *
 * The commands are called through their entry points (cmd_<name>, listed in
 * src/cli/commands.h), exactly as `rtr <name> ...` runs them, so a harness
 * exercises what a user runs and survives changes inside the library. */
#ifndef RTR_FUZZ_COMMON_H
#define RTR_FUZZ_COMMON_H

#include "rtr/ingest.h"
#include "rtr/rtr.h"
#include "rtr/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <ftw.h>
#include <math.h>
#include <sanitizer/common_interface_defs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* HDF5 keeps freed blocks on free lists and hands them out again, so a block
 * HDF5 leaks while refusing a damaged file is reported with the stack of the
 * block's first use (rtr ingest writing the pristine corpus, say): with the
 * lists off each leak is reported where it happened, which is what
 * tests/lsan.supp names. Before any other HDF5 call, as rtr's
 * h5_init: H5dont_atexit only works then. */
__attribute__((constructor)) static void fuzz_hdf5_no_free_lists(void) {
    H5dont_atexit();
    H5set_free_list_limits(0, 0, 0, 0, 0, 0);
}

#define RTR_COMMAND(fn, name, summary) int cmd_##fn(int argc, char **argv);
#include "cli/commands.h"
#undef RTR_COMMAND

typedef struct {
    const char *name;
    int (*fn)(int, char **);
} fuzz_command;

static const fuzz_command fuzz_commands[] = {
#define RTR_COMMAND(fn, name, summary) {name, cmd_##fn},
#include "cli/commands.h"
#undef RTR_COMMAND
};
#define FUZZ_N_COMMANDS ((int)(sizeof fuzz_commands / sizeof *fuzz_commands))

/* A failed expectation: a crash for libFuzzer, with the reason. The reason
 * goes through the sanitizers' report channel too: tools/run-fuzz runs with
 * -close_fd_mask=3, which closes the harness's stderr, and a reason printed
 * only there was lost (a CI crash said "deadly signal" and nothing else). */
#define FUZZ_ASSERT(cond, ...)                                                      \
    do {                                                                            \
        if (!(cond)) {                                                              \
            char why_[1024];                                                        \
            int at_ = snprintf(why_, sizeof why_, "fuzz: %s:%d: %s: ", __FILE__,     \
                               __LINE__, #cond);                                    \
            if (at_ > 0 && (size_t)at_ < sizeof why_)                               \
                snprintf(why_ + at_, sizeof why_ - (size_t)at_, __VA_ARGS__);       \
            fprintf(stderr, "%s\n", why_);                                          \
            __sanitizer_report_error_summary(why_);                                 \
            abort();                                                                \
        }                                                                           \
    } while (0)

static char fuzz_root_[256];

static int fuzz_rm_one_(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* With $RTR_FUZZ_VERBOSE set, why an input was refused (to check by hand
 * that seeds reach past the first check). */
static void fuzz_refused(const char *what) {
    if (getenv("RTR_FUZZ_VERBOSE")) fprintf(stderr, "fuzz: %s refused: %s\n", what, rtr_last_error());
}

/* Remove a file or a directory tree (no error when absent). */
static void fuzz_rmtree(const char *path) { nftw(path, fuzz_rm_one_, 16, FTW_DEPTH | FTW_PHYS); }

static void fuzz_cleanup_(void) {
    if (fuzz_root_[0]) fuzz_rmtree(fuzz_root_);
}

/* This process's scratch directory (in /dev/shm when there is one), removed
 * at exit; stdin reads end at once (no command may wait on it). */
static const char *fuzz_root(void) {
    if (!fuzz_root_[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_root_, sizeof fuzz_root_, "%s/rtr_fuzz_XXXXXX", base);
        if (!mkdtemp(fuzz_root_)) { perror("mkdtemp"); abort(); }
        atexit(fuzz_cleanup_);
        int fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) { dup2(fd, 0); close(fd); }
    }
    return fuzz_root_;
}

/* "<root>/<name>" in a static buffer of its own per call site's slot. */
static const char *fuzz_path(char buf[512], const char *fmt, ...) {
    char rel[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(buf, 512, "%s/%s", fuzz_root(), rel);
    return buf;
}

static void fuzz_write(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size)) { perror(path); abort(); }
    fclose(f);
}

/* Whether command `name` is left out of this run: $RTR_FUZZ_SKIP lists
 * commands (comma-separated) with a known, reported failure, so the rest
 * can be fuzzed meanwhile (tools/run-fuzz says which, on every run). */
static int fuzz_skipped(const char *name) {
    const char *list = getenv("RTR_FUZZ_SKIP");
    size_t n = strlen(name);
    for (const char *p = list; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
        if (strcspn(p, ",") == n && !strncmp(p, name, n)) return 1;
        if (!p[strcspn(p, ",")]) break;
    }
    return 0;
}

/* Run `rtr argv[0] argv[1..]` through the command's entry point; its exit
 * status. */
static int fuzz_rtr_argv(int argc, char **argv) {
    for (int i = 0; i < FUZZ_N_COMMANDS; i++)
        if (!strcmp(fuzz_commands[i].name, argv[0])) return fuzz_commands[i].fn(argc, argv);
    fprintf(stderr, "fuzz: no command %s\n", argv[0]);
    abort();
}

/* The same with the arguments listed (NULL-terminated). */
static int fuzz_rtr(const char *name, ...) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)name;
    va_list ap;
    va_start(ap, name);
    for (const char *a; argc < 63 && (a = va_arg(ap, const char *));) argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return fuzz_rtr_argv(argc, argv);
}

/* Copy a file (whole). */
static void fuzz_copy(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    if (!f) { perror(from); abort(); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) abort();
    fclose(f);
    fuzz_write(to, buf, (size_t)n);
    free(buf);
}

/* The catalog of the fuzz corpora: 2 models x 2 strategies, prices given. */
static const char fuzz_catalog_json[] =
    "{\"models\": [{\"name\": \"m-small\", \"description\": \"a small model\", \"price_in\": 0.1, \"price_out\": 0.2},\n"
    "  {\"name\": \"m-large\", \"description\": \"a large model\", \"price_in\": 1.5, \"price_out\": 3}],\n"
    " \"strategies\": [{\"name\": \"direct\", \"description\": \"answer only\"},\n"
    "  {\"name\": \"cot\", \"description\": \"reason step by step\"}]}\n";

/* Outcome lines: n queries over two datasets, every third in the test split,
 * outcomes with a few missing; deterministic. */
static void fuzz_write_outcomes(const char *path, int n) {
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); abort(); }
    static const char *models[2] = {"m-small", "m-large"}, *strategies[2] = {"direct", "cot"};
    for (int i = 0; i < n; i++) {
        fprintf(f, "{\"id\": \"q%d\", \"text\": \"question %d: what is %d + %d?\", \"dataset\": \"%s\", \"split\": \"%s\", "
                   "\"outcomes\": [", i, i, i, 2 * i, i % 2 ? "arith" : "words", i % 3 == 2 ? "test" : "train");
        int first = 1;
        for (int m = 0; m < 2; m++)
            for (int s = 0; s < 2; s++) {
                if ((i + m + s) % 7 == 6) continue; /* missing outcome */
                fprintf(f, "%s{\"model\": \"%s\", \"strategy\": \"%s\", \"correct\": %d, \"tokens\": %d, \"cost\": %.6f}",
                        first ? "" : ", ", models[m], strategies[s], (i * 7 + m * 3 + s * 5) % 4 != 0 && (m || s || i % 2),
                        10 + 40 * s + 5 * m + i % 13, 1e-5 * (1 + m * 10) * (10 + 40 * s));
                first = 0;
            }
        fputs("]}\n", f);
    }
    fclose(f);
}

/* Unit-norm pseudo-random rows (a deterministic stand-in for an encoder). */
static void fuzz_unit_rows(float *x, int64_t rows, int64_t cols, uint32_t seed) {
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t c = 0; c < cols; c++) {
            seed = seed * 1664525u + 1013904223u;
            x[r * cols + c] = (float)((double)(seed >> 8) / (1 << 24) - 0.5);
            s += (double)x[r * cols + c] * x[r * cols + c];
        }
        for (int64_t c = 0; c < cols; c++) x[r * cols + c] /= (float)sqrt(s);
    }
}

#define FUZZ_DIM 8

/* Embeddings from fuzz_unit_rows written as `rtr encode` writes them
 * (schema 2): embeddings/fuzz-encoder/, one file per shard and the catalog's
 * descriptions, through the store's own writers. */
static void fuzz_add_embeddings(const char *dir) {
    static const char name[] = "fuzz-encoder", hash[] = "00000000000f0ecd";
    rtr_corpus *c = NULL;
    rtr_status st = rtr_corpus_open(&c, dir);
    const rtr_catalog *cat = st ? NULL : rtr_corpus_catalog(c);
    for (int s = 0; !st && s < rtr_corpus_n_shards(c); s++) {
        int64_t n = rtr_corpus_shard_queries(c, s);
        float *q = malloc(sizeof(float) * (size_t)(n * FUZZ_DIM));
        fuzz_unit_rows(q, n, FUZZ_DIM, 11u + (uint32_t)s);
        rtr_output_writer *w = NULL;
        st = rtr_embedding_writer_open(&w, c, s, name, hash, FUZZ_DIM);
        if (!st) st = rtr_output_writer_append(w, n, (const float *const[]){q});
        if (!st) st = rtr_output_writer_commit(w);
        else rtr_output_writer_abort(w);
        free(q);
    }
    if (!st) {
        float md[2 * FUZZ_DIM], sd[2 * FUZZ_DIM];
        fuzz_unit_rows(md, cat->n_models, FUZZ_DIM, 5);
        fuzz_unit_rows(sd, cat->n_strategies, FUZZ_DIM, 7);
        st = rtr_descriptions_write(c, name, hash, FUZZ_DIM, md, sd);
    }
    if (st) { fprintf(stderr, "fuzz: %s\n", rtr_last_error()); abort(); }
    rtr_corpus_close(c);
}

/* Copy a corpus folder with its stage outputs (embeddings/, tables/). */
static void fuzz_copy_tree(const char *from, const char *to) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp -R '%s' '%s'", from, to);
    if (system(cmd) != 0) { fprintf(stderr, "fuzz: %s failed\n", cmd); abort(); }
}

/* A complete corpus in <root>/<name>: 13 queries in shards of 5, embedded,
 * a tiny checkpoint <root>/<name>.safetensors trained on it and its routing
 * tables scored. Returns the corpus path (static). */
static const char *fuzz_make_corpus(const char *name) {
    static char dir[512];
    char cat[512], out[512], ck[512];
    fuzz_path(dir, "%s", name);
    fuzz_path(cat, "%s.catalog.json", name);
    fuzz_path(out, "%s.outcomes.jsonl", name);
    fuzz_path(ck, "%s.safetensors", name);
    fuzz_write(cat, fuzz_catalog_json, strlen(fuzz_catalog_json));
    fuzz_write_outcomes(out, 13);
    int rc = fuzz_rtr("ingest", "--catalog", cat, "--out", dir, "--shard-size", "5", out, NULL);
    if (!rc) fuzz_add_embeddings(dir);
    if (!rc)
        rc = fuzz_rtr("train", dir, "--out", ck, "--hidden", "8", "--learn-dim", "4", "--epochs", "2",
                      "--val-frac", "0.2", "--device", "cpu", NULL);
    if (!rc) rc = fuzz_rtr("score", "--checkpoint", ck, "--device", "cpu", dir, NULL);
    if (rc) { fprintf(stderr, "fuzz: could not build the corpus %s: %s\n", dir, rtr_last_error()); abort(); }
    /* RTR_FUZZ_SEED_OUT=DIR: also copy the corpus's files there (how the
     * committed seeds of the corpus and checkpoint harnesses were made) */
    const char *seeds = getenv("RTR_FUZZ_SEED_OUT");
    if (seeds && *seeds) {
        char from[600], to[600];
        const char *files[] = {"manifest.json", "shard-00000.h5", "shard-00001.h5", "shard-00002.h5"};
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            snprintf(from, sizeof from, "%s/%s", dir, files[i]);
            snprintf(to, sizeof to, "%s/%s", seeds, files[i]);
            fuzz_copy(from, to);
        }
        snprintf(to, sizeof to, "%s/checkpoint.safetensors", seeds);
        fuzz_copy(ck, to);
    }
    return dir;
}

/* Whether any entry of dir has ".tmp." in its name (a temporary left behind). */
static int fuzz_has_tmp(const char *dir) {
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d));) found |= strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return found;
}

/* Every reader of a corpus, as the commands run them: info, train,
 * eval-predictor, route (CSV, JSONL, HDF5), sweep, eval, and score (which
 * rewrites the corpus's tables). Each must exit 0, 1 or 2 (never crash); a command that fails
 * leaves no output under its final name; no temporary is left behind.
 * ck: a checkpoint that fits the undamaged corpus. */
static void fuzz_every_reader(const char *dir, const char *ck) {
    char out[512];
    struct { const char *name, *out; const char *args[12]; } runs[] = {
        {"info", NULL, {dir}},
        {"train", "t.safetensors", {dir, "--hidden", "4", "--learn-dim", "0", "--epochs", "1", "--device", "cpu"}},
        {"eval-predictor", NULL, {"--checkpoint", ck, dir, "--device", "cpu"}},
        {"route", "d.csv", {dir, "--lambda", "0.5", "--split", "", "--device", "cpu"}},
        {"route", "d.jsonl", {dir, "--budget", "1e9", "--device", "cpu"}},
        {"route", "d.h5", {dir, "--lambda", "1", "--cost", "usd", "--device", "cpu"}},
        {"sweep", "sw", {dir, "--grid", "3", "--split", "", "--device", "cpu"}},
        {"eval", "e.json", {dir, "--no-embedllm", "--bootstrap", "0", "--device", "cpu"}},
        {"score", NULL, {"--checkpoint", ck, dir, "--device", "cpu"}},
    };
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        if (fuzz_skipped(runs[r].name)) continue;
        char *argv[24];
        int argc = 0;
        argv[argc++] = (char *)runs[r].name;
        for (int a = 0; a < 12 && runs[r].args[a]; a++) argv[argc++] = (char *)runs[r].args[a];
        if (runs[r].out) {
            argv[argc++] = "--out";
            argv[argc++] = (char *)fuzz_path(out, "%s", runs[r].out);
        }
        argv[argc] = NULL;
        int rc = fuzz_rtr_argv(argc, argv);
        FUZZ_ASSERT(rc == 0 || rc == 1 || rc == 2, "rtr %s exited %d", runs[r].name, rc);
        if (runs[r].out) {
            FUZZ_ASSERT(rc == 0 || access(out, F_OK) != 0, "rtr %s failed (%d) but wrote %s", runs[r].name, rc, out);
            fuzz_rmtree(out);
        }
    }
    FUZZ_ASSERT(!fuzz_has_tmp(fuzz_root()) && !fuzz_has_tmp(dir), "a temporary file was left behind in %s", dir);
}

#endif
