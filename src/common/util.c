/* Internal helpers: errors, allocation, atomic files, UTF-8, hashing,
 * progress. See util.h. */
#include "common/util.h"
#include "common/files.h"
#include "common/limits.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

static _Thread_local char err_msg[2048];

const char *rtr_status_name(rtr_status s) {
    static const char *names[] = {"ok", "io", "format", "invalid", "nomem",
                                  "exists", "unsupported", "numeric", "device"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "unknown";
}

const char *rtr_last_error(void) { return err_msg; }

rtr_status rtr_fail(rtr_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return s;
}

rtr_status rtr_fail_prefix(rtr_status s, const char *fmt, ...) {
    char prefix[1024], old[sizeof err_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    size_t pl = strlen(prefix), ol = strlen(old);
    if (pl + ol >= sizeof err_msg) ol = sizeof err_msg - 1 - pl; /* prefix < 1024 always fits */
    memcpy(err_msg, prefix, pl);
    memcpy(err_msg + pl, old, ol);
    err_msg[pl + ol] = 0;
    return s;
}

void *rtr_malloc(size_t n) {
    void *p = rtr_alloc_leaves_blas_room(n) ? malloc(n ? n : 1) : NULL;
    if (!p) rtr_fail(RTR_ERR_NOMEM, "out of memory allocating %zu bytes%s", n, rtr_as_limit_note());
    return p;
}

void *rtr_calloc(size_t count, size_t size) {
    bool room = !size || count <= SIZE_MAX / size ? rtr_alloc_leaves_blas_room(count * size) : true;
    void *p = room ? calloc(count ? count : 1, size ? size : 1) : NULL;
    if (!p) rtr_fail(RTR_ERR_NOMEM, "out of memory allocating %zu x %zu bytes%s", count, size, rtr_as_limit_note());
    return p;
}

void *rtr_realloc(void *p, size_t n) {
    void *q = rtr_alloc_leaves_blas_room(n) ? realloc(p, n ? n : 1) : NULL;
    if (!q) rtr_fail(RTR_ERR_NOMEM, "out of memory reallocating %zu bytes%s", n, rtr_as_limit_note());
    return q;
}

char *rtr_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = rtr_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *rtr_vsprintf(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = n >= 0 ? rtr_malloc((size_t)n + 1) : NULL;
    if (s) vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

char *rtr_sprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = rtr_vsprintf(fmt, ap);
    va_end(ap);
    return s;
}

static bool buf_reserve(rtr_buf *b, size_t extra) {
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *nb = rtr_realloc(b->buf, cap);
    if (!nb) { b->failed = true; return false; }
    b->buf = nb;
    b->cap = cap;
    return true;
}

void rtr_buf_printf(rtr_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void rtr_buf_append(rtr_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

void rtr_buf_xml(rtr_buf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': rtr_buf_append(b, "&lt;", 4); break;
        case '>': rtr_buf_append(b, "&gt;", 4); break;
        case '&': rtr_buf_append(b, "&amp;", 5); break;
        case '"': rtr_buf_append(b, "&quot;", 6); break;
        case '\'': rtr_buf_append(b, "&#39;", 5); break;
        default: rtr_buf_append(b, s, 1);
        }
    }
}

void rtr_buf_free(rtr_buf *b) {
    free(b->buf);
    memset(b, 0, sizeof *b);
}

rtr_status rtr_read_file(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return rtr_fail(RTR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = rtr_malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n + 1 < cap) break;
        cap *= 2;
        char *nb = rtr_realloc(buf, cap);
        if (!nb) { free(buf); buf = NULL; }
        else buf = nb;
    }
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (!buf) return RTR_ERR_NOMEM;
    /* fopen opens a directory; reading it fails with EISDIR: say that */
    if (err) { free(buf); return rtr_fail(RTR_ERR_IO, "%s: read error: %s", path, strerror(err)); }
    buf[n] = 0;
    *data = buf;
    if (len) *len = n;
    return RTR_OK;
}

/* Every output goes through here, so the temporaries of the same output left
 * by killed runs (SIGKILL, a power cut: a 2 GB outcomes.jsonl.tmp.PID of a
 * stopped gen-demo) are removed by the next run writing it, whatever the
 * command. */
char *rtr_tmp_path(const char *path) {
    char host[RTR_HOST_MAX];
    rtr_remove_stale_tmp(path);
    rtr_host_name(host);
    return rtr_tmp_name(path, host, (long)getpid());
}

rtr_status rtr_commit_file(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY);
    if (fd >= 0) { fsync(fd); close(fd); }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return rtr_fail(RTR_ERR_IO, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return RTR_OK;
}

rtr_status rtr_write_file_atomic(const char *path, const char *data, size_t len) {
    char *tmp = rtr_tmp_path(path);
    if (!tmp) return RTR_ERR_NOMEM;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rtr_status s = rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return s;
    }
    bool ok = fwrite(data, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    rtr_status s = ok ? rtr_commit_file(tmp, path) : rtr_fail(RTR_ERR_IO, "%s: write failed", tmp);
    if (!ok) unlink(tmp);
    free(tmp);
    return s;
}

bool rtr_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

bool rtr_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *rtr_why_not_folder(const char *path) {
    struct stat st, ls;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return NULL;
        bool link = lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode);
        return rtr_sprintf("not a folder (%s%s)", link ? "a symbolic link to " : "",
                           S_ISREG(st.st_mode) ? "a file" : "a special file");
    }
    int err = errno;
    if (lstat(path, &ls) || !S_ISLNK(ls.st_mode)) return rtr_strdup(strerror(err));
    char to[PATH_MAX];
    ssize_t n = readlink(path, to, sizeof to - 1);
    to[n < 0 ? 0 : n] = '\0';
    if (err == ENOENT) return rtr_sprintf("a symbolic link to '%s', which does not exist", to);
    /* ELOOP's strerror ("Too many levels of symbolic links") reads as no
     * sentence after "which"; say what it means */
    if (err == ELOOP) return rtr_sprintf("a symbolic link to '%s' that leads round a loop of links", to);
    return rtr_sprintf("a symbolic link to '%s', which cannot be reached (%s)", to, strerror(err));
}

void rtr_remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) { unlink(path); return; }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *sub = rtr_sprintf("%s/%s", path, e->d_name);
        if (sub) rtr_remove_tree(sub);
        free(sub);
    }
    closedir(d);
    rmdir(path);
}

const char *rtr_binary_kind(const void *data, size_t len) {
    static const struct {
        const char *magic;
        size_t n;
        const char *kind;
    } kinds[] = {
        {"\x1f\x8b", 2, "gzip-compressed (decompress it first: gunzip)"},
        {"\x28\xb5\x2f\xfd", 4, "zstd-compressed (decompress it first: unzstd)"},
        {"BZh", 3, "bzip2-compressed (decompress it first: bunzip2)"},
        {"\xfd" "7zXZ\x00", 6, "xz-compressed (decompress it first: unxz)"},
        {"PK\x03\x04", 4, "a zip archive (extract it first: unzip)"},
        {"PAR1", 4, "a Parquet file (convert it first: tools/convert-outcomes long)"},
        {"\x89HDF\r\n\x1a\n", 8, "an HDF5 file"},
        {"\xff\xfe", 2, "UTF-16 text (convert it to UTF-8 first: iconv -f UTF-16 -t UTF-8)"},
        {"\xfe\xff", 2, "UTF-16 text (convert it to UTF-8 first: iconv -f UTF-16 -t UTF-8)"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (len >= kinds[i].n && !memcmp(data, kinds[i].magic, kinds[i].n)) return kinds[i].kind;
    return NULL;
}

bool rtr_utf8_valid(const char *s, size_t len, size_t *bad_offset) {
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        i += (size_t)n;
    }
    return true;
}

/* The bytes of the well-formed sequence that lead byte c starts (0: c
 * starts none) and the range of its second byte (Unicode Table 3-7: the
 * second byte's range excludes overlongs, surrogates and code points past
 * U+10FFFF). */
static int utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

char *rtr_utf8_scrub(const char *s) {
    size_t len = strlen(s), o = 0;
    char *out = rtr_malloc(3 * len + 1); /* each invalid byte may become the 3 bytes of U+FFFD */
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char lo, hi;
        int n = utf8_lead(*p, &lo, &hi), k = 1;
        while (k < n && p[k] >= lo && p[k] <= hi) k++, lo = 0x80, hi = 0xBF;
        if (n && k == n) memcpy(out + o, p, (size_t)n), o += (size_t)n;
        else memcpy(out + o, "\xef\xbf\xbd", 3), o += 3; /* the maximal subpart p[0 .. k) */
        p += k;
    }
    out[o] = '\0';
    return out;
}

uint64_t rtr_hash64(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int rtr_strset_insert(rtr_strset *set, const char *s, int32_t tag, int32_t *seen_tag) {
    size_t len = strlen(s);
    uint64_t h = rtr_hash64(RTR_FNV_SEED, s, len);
    if (4 * (set->n + 1) > 3 * set->cap) { /* at most 3/4 full */
        size_t cap = set->cap ? 2 * set->cap : 1024;
        struct rtr_strset_slot *slot = rtr_calloc(cap, sizeof *slot);
        if (!slot) return -1;
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slot[i].off) continue;
            const char *t = set->arena + set->slot[i].off - 1;
            size_t j = rtr_hash64(RTR_FNV_SEED, t, strlen(t)) & (cap - 1);
            while (slot[j].off) j = (j + 1) & (cap - 1);
            slot[j] = set->slot[i];
        }
        free(set->slot);
        set->slot = slot;
        set->cap = cap;
    }
    size_t j = h & (set->cap - 1);
    for (; set->slot[j].off; j = (j + 1) & (set->cap - 1))
        if (set->slot[j].hash == (uint32_t)(h >> 32) && !strcmp(set->arena + set->slot[j].off - 1, s)) {
            if (seen_tag) *seen_tag = set->slot[j].tag;
            return 1;
        }
    if (set->used + len + 1 > set->arena_cap) {
        size_t cap = set->arena_cap ? set->arena_cap : 1 << 16;
        while (cap < set->used + len + 1) cap *= 2;
        char *a = rtr_realloc(set->arena, cap);
        if (!a) return -1;
        set->arena = a;
        set->arena_cap = cap;
    }
    memcpy(set->arena + set->used, s, len + 1);
    set->slot[j] = (struct rtr_strset_slot){set->used + 1, (uint32_t)(h >> 32), tag};
    set->used += len + 1;
    set->n++;
    return 0;
}

void rtr_strset_free(rtr_strset *set) {
    free(set->arena);
    free(set->slot);
    memset(set, 0, sizeof *set);
}

double rtr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool quiet_mode;
void rtr_set_quiet(bool quiet) { quiet_mode = quiet; }
bool rtr_quiet(void) { return quiet_mode; }

void rtr_note(const char *fmt, ...) {
    if (quiet_mode) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("rtr: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void rtr_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("rtr: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* 18000 -> "18,000" (counts in progress lines). */
static void fmt_count(char *out, size_t n, double v) {
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", v);
    size_t len = strlen(digits), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i && digits[i - 1] != '-' && (len - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
}

/* Seconds as "45s", "3m07s" or "2h05m". */
static void fmt_duration(char *out, size_t n, double s) {
    long t = (long)(s + 0.5);
    if (t < 60) snprintf(out, n, "%lds", t);
    else if (t < 3600) snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
}

void rtr_progress_init(rtr_progress *p, const char *label, double total) {
    const char *env = getenv("RTR_PROGRESS_SECONDS");
    char *end = NULL;
    double iv = env ? strtod(env, &end) : NAN;
    p->label = label;
    p->total = total;
    p->done = 0;
    p->start = p->last = rtr_now();
    p->shown = false;
    p->tty = isatty(STDERR_FILENO);
    p->interval = env && end != env && !*end && iv >= 0 && isfinite(iv) ? iv : 15.0;
}

static void progress_line(const rtr_progress *p, double t) {
    char done[32], total[32], rate[32], eta[32];
    double r = t > p->start ? p->done / (t - p->start) : 0;
    fmt_count(done, sizeof done, p->done);
    fmt_count(rate, sizeof rate, r);
    fprintf(stderr, "%s%s: %s", p->tty ? "\r" : "", p->label, done);
    if (p->total > 0) {
        fmt_count(total, sizeof total, p->total);
        fprintf(stderr, "/%s (%.1f%%)", total, 100.0 * p->done / p->total);
    }
    fprintf(stderr, ", %s/s", rate);
    if (p->total > 0 && r > 0) {
        fmt_duration(eta, sizeof eta, (p->total - p->done) / r);
        fprintf(stderr, ", ETA %s", p->total > p->done ? eta : "0s");
    }
    fputs(p->tty ? "\033[K" : "\n", stderr);
    fflush(stderr);
}

void rtr_progress_update(rtr_progress *p, double done) {
    p->done = done;
    if (quiet_mode) return;
    double t = rtr_now();
    if (p->tty ? t - p->start < 2.0 || t - p->last < 0.5 : t - p->last < p->interval) return;
    p->last = t;
    p->shown = true;
    progress_line(p, t);
}

void rtr_progress_end(rtr_progress *p) {
    if (!p->shown || quiet_mode) { p->shown = false; return; }
    if (p->tty) {
        progress_line(p, rtr_now()); /* the final count, then keep the line */
        fputc('\n', stderr);
    } else {
        char done[32], took[32], rate[32];
        double t = rtr_now() - p->start;
        fmt_count(done, sizeof done, p->done);
        fmt_duration(took, sizeof took, t);
        fmt_count(rate, sizeof rate, t > 0 ? p->done / t : 0);
        fprintf(stderr, "%s: %s in %s (%s/s)\n", p->label, done, took, rate);
    }
    p->shown = false;
}

/* Optimal string alignment distance (edits and swaps of neighbours). */
static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return (size_t)-1; /* no typo of a real name is that long */
    size_t d[65][65];
    for (size_t i = 0; i <= n; i++) d[i][0] = i;
    for (size_t j = 0; j <= m; j++) d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

const char *rtr_closest_name(const char *word, const char *const *candidates, size_t n) {
    const char *best = NULL, *prefix_of = NULL;
    size_t best_d = (size_t)-1, wl = strlen(word);
    int n_prefix = 0;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d) best_d = d, best = candidates[i];
        if (wl >= 3 && !strncmp(candidates[i], word, wl)) n_prefix++, prefix_of = candidates[i];
    }
    size_t longer = best ? (wl > strlen(best) ? wl : strlen(best)) : 0;
    size_t allowed = longer / 3 > 1 ? longer / 3 : 1;
    if (best && best_d <= allowed) return best;
    return n_prefix == 1 ? prefix_of : NULL; /* an abbreviation of exactly one name */
}

/* The control character at p (its code point), or -1. */
static int control_at(const unsigned char *p) {
    if (*p < 0x20 || *p == 0x7F) return *p;
    return *p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F ? p[1] : -1;
}

int rtr_control_char(const char *s, size_t *at) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (control_at(p) >= 0) {
            *at = (size_t)(p - (const unsigned char *)s);
            return control_at(p);
        }
    return -1;
}

/* rtr_shown's ring, one per thread (library calls on several threads each
 * write their own messages), freed when the thread ends. */
typedef struct {
    char *s[8];
    unsigned next;
} shown_ring;
static pthread_key_t shown_key;
static bool shown_key_made;

static void shown_ring_free(void *r) {
    shown_ring *ring = r;
    for (int i = 0; i < 8; i++) free(ring->s[i]);
    free(ring);
}
static void shown_key_make(void) { shown_key_made = !pthread_key_create(&shown_key, shown_ring_free); }

const char *rtr_shown(const char *s) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++) n += control_at(p) >= 0;
    if (!n) return s;
    pthread_once(&once, shown_key_make);
    shown_ring *ring = shown_key_made ? pthread_getspecific(shown_key) : NULL;
    if (shown_key_made && !ring && (ring = calloc(1, sizeof *ring)) && pthread_setspecific(shown_key, ring))
        free(ring), ring = NULL;
    char *out = ring ? malloc(strlen(s) + 6 * n + 1) : NULL, *o = out; /* "\u0085" (6) for a C1's 2 bytes */
    if (!out) return s;
    for (p = (const unsigned char *)s; *p; p++) {
        const char *named = *p == '\n' ? "\\n" : *p == '\t' ? "\\t" : *p == '\r' ? "\\r" : NULL;
        int c = control_at(p);
        if (named) o += sprintf(o, "%s", named);
        else if (c < 0) *o++ = (char)*p;
        else if (c < 0x80) o += sprintf(o, "\\x%02x", c);
        else o += sprintf(o, "\\u%04x", c), p++;
    }
    *o = '\0';
    free(ring->s[ring->next % 8]);
    ring->s[ring->next++ % 8] = out;
    return out;
}
