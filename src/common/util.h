/* Internal helpers shared by every module: error recording, checked
 * allocation, atomic file output (temporary name + rename), small string and
 * JSON utilities, and the stderr progress line. Not part of the public API. */
#ifndef RTR_UTIL_H
#define RTR_UTIL_H

#include "rtr/rtr.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#if defined(__GNUC__)
#define RTR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RTR_PRINTF(a, b)
#endif

/* Record a failure message for rtr_last_error() and return s, so a failing
 * path reads `return rtr_fail(RTR_ERR_IO, "%s: cannot open", path);`. */
rtr_status rtr_fail(rtr_status s, const char *fmt, ...) RTR_PRINTF(2, 3);
/* Prefix the current message with more context ("file.h5: " + message). */
rtr_status rtr_fail_prefix(rtr_status s, const char *fmt, ...) RTR_PRINTF(2, 3);

/* Checked allocation: NULL only after recording RTR_ERR_NOMEM. */
void *rtr_malloc(size_t n);
void *rtr_calloc(size_t count, size_t size);
void *rtr_realloc(void *p, size_t n);
char *rtr_strdup(const char *s);
char *rtr_sprintf(const char *fmt, ...) RTR_PRINTF(1, 2);
char *rtr_vsprintf(const char *fmt, va_list ap);

/* Growable string buffer for building JSON, CSV, SVG and HTML text. On
 * allocation failure it records RTR_ERR_NOMEM and sets failed; later appends
 * are ignored, so callers check `failed` once at the end. */
typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} rtr_buf;
void rtr_buf_printf(rtr_buf *b, const char *fmt, ...) RTR_PRINTF(2, 3);
void rtr_buf_append(rtr_buf *b, const char *s, size_t n);
/* Append s with the five XML special characters escaped (HTML/SVG text). */
void rtr_buf_xml(rtr_buf *b, const char *s);
void rtr_buf_free(rtr_buf *b);

/* Whole-file read into a NUL-terminated buffer (caller frees). */
rtr_status rtr_read_file(const char *path, char **data, size_t *len);

/* Atomic output. rtr_tmp_path gives "<path>.tmp.<host>.<pid>" (caller
 * frees), having removed those of path's dead writers on this machine
 * (files.h's rtr_remove_stale_tmp);
 * rtr_commit_file fsyncs it and renames it over path. */
char *rtr_tmp_path(const char *path);
rtr_status rtr_commit_file(const char *tmp, const char *path);
/* Write a whole buffer to path through a temporary name. */
rtr_status rtr_write_file_atomic(const char *path, const char *data, size_t len);

bool rtr_path_exists(const char *path);
bool rtr_is_dir(const char *path);
/* Why path is not a folder, for a message after the path: "not a folder
 * (a file)", "a symbolic link to 'x', which does not exist", "a symbolic
 * link to 'x' that leads round a loop of links", or the stat error; NULL
 * when it is one (or no memory). Caller frees. */
char *rtr_why_not_folder(const char *path);
/* Remove a directory tree (best effort, used to clean up failed outputs). */
void rtr_remove_tree(const char *path);

/* Valid UTF-8 check (utf8proc's decoder); on failure *bad_offset is the byte
 * offset of the first invalid sequence. */
bool rtr_utf8_valid(const char *s, size_t len, size_t *bad_offset);
/* A copy of s (NUL-terminated) with each maximal subpart of an ill-formed
 * UTF-8 sequence replaced by one U+FFFD (Unicode's and WHATWG's practice,
 * and Python's errors="replace": a cut 4-byte sequence is one U+FFFD, an
 * overlong or surrogate-encoded one a U+FFFD per byte); for a name rtr only
 * shows (a checkpoint's file name). Caller frees; NULL: no memory. */
char *rtr_utf8_scrub(const char *s);

/* s as text output may show it: control characters (C0, DEL, C1), which a
 * terminal acts on (ESC sequences recolour or retitle it, CR and LF break
 * the table), written as escapes ("\\n", "\\t", "\\r", "\\x1b",
 * "\\u0085"), the rest as is. Corpus strings (dataset and split names,
 * attributes other tools wrote, folder names) may hold them; JSON output escapes
 * them already. Returns s itself when nothing needs escaping, else a copy
 * valid until this thread's 8th later call (a ring per thread, so one
 * printf may take several); s on no memory. */
const char *rtr_shown(const char *s);
/* The first control character of the UTF-8 string s (C0, DEL or C1:
 * U+0000-U+001F, U+007F, U+0080-U+009F, which a terminal acts on), its
 * byte offset in *at; -1 when there is none. Model, strategy, dataset and
 * split names refuse them; rtr_shown escapes them. */
int rtr_control_char(const char *s, size_t *at);

/* What the first bytes of a file say it is when it is not text rtr reads
 * (a compressed file or archive, UTF-16, Parquet, HDF5): a phrase for a
 * message, "gzip-compressed (decompress it first: gunzip)"; NULL for
 * anything else. A log given gzip'd was "invalid UTF-8 at byte 1". */
const char *rtr_binary_kind(const void *data, size_t len);

/* 64-bit FNV-1a, used for catalog/weights/checkpoint hashes. Chainable. */
#define RTR_FNV_SEED 0xcbf29ce484222325ULL
uint64_t rtr_hash64(uint64_t h, const void *data, size_t len);

/* A set of strings, each kept with an integer tag (where it was seen), for
 * the uniqueness of query ids over a whole corpus: the strings are copied
 * into one growing arena and the open-addressed table holds their offsets,
 * so a set of N ids costs their bytes plus about 32 bytes each, and one
 * insert is O(1) expected. Zero-initialise; rtr_strset_free when done. */
typedef struct {
    char *arena;
    size_t used, arena_cap;
    struct rtr_strset_slot {
        uint64_t off; /* offset + 1 into arena; 0: empty */
        uint32_t hash; /* low bits of the string's hash, to skip most strcmp */
        int32_t tag;
    } *slot;
    size_t cap, n;
} rtr_strset;
/* Insert s with tag: 0 when it was new, 1 when it was present (*seen_tag is
 * the tag it was first inserted with; the set is unchanged), -1 out of memory. */
int rtr_strset_insert(rtr_strset *set, const char *s, int32_t tag, int32_t *seen_tag);
void rtr_strset_free(rtr_strset *set);

/* Seconds since an arbitrary point (monotonic). */
double rtr_now(void);

/* Quiet mode (`--quiet` on every command): no progress and no notes on
 * stderr; errors and warnings are still printed. Process-wide. */
void rtr_set_quiet(bool quiet);
bool rtr_quiet(void);
/* An informational line on stderr ("rtr: " + message), unless quiet. */
void rtr_note(const char *fmt, ...) RTR_PRINTF(1, 2);
/* A warning on stderr ("rtr: warning: " + message), also when quiet: input
 * that was accepted but is probably not what its author meant. */
void rtr_warn(const char *fmt, ...) RTR_PRINTF(1, 2);

/* The candidate closest to word by edit distance (insertions, deletions,
 * substitutions and swaps of neighbours), or NULL when none is close enough
 * to be a likely typo (distance at most a third of the longer word, and at
 * least 1 allowed), or the one candidate word abbreviates. For "did you
 * mean" hints: options, commands, catalog keys. */
const char *rtr_closest_name(const char *word, const char *const *candidates, size_t n);

/* Progress of long work on stderr, silent when quiet. On a terminal one live
 * line (rewritten in place twice a second) once the work has taken more than
 * two seconds; otherwise (a log file, a cluster job) one line every
 * RTR_PROGRESS_SECONDS seconds (environment, default 15) and a closing line.
 * Lines carry the count, the rate and, when total > 0, the share and the ETA:
 * "encode: 4,096/18,000 (22.8%), 127/s, ETA 1m50s". Not thread-safe: update
 * from one thread. */
typedef struct {
    const char *label;
    double total, done, start, last;
    bool shown, tty;
    double interval;
} rtr_progress;
void rtr_progress_init(rtr_progress *p, const char *label, double total);
void rtr_progress_update(rtr_progress *p, double done);
void rtr_progress_end(rtr_progress *p);

#endif
