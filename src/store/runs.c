/* Sorted runs and their k-way merge (runs.h): the λ path's switch events
 * and the row reader's query ids go through them when they outgrow their
 * buffer in memory. */
#include "store/runs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

#define RUN_BUF_BYTES ((size_t)1 << 16)

void sorted_run_close(sorted_run *r) {
    if (r->f) fclose(r->f); /* unlinked at creation: its space goes with it */
    free(r->buf);
    memset(r, 0, sizeof *r);
}

static const char *run_cur(const sorted_run *r) {
    if (r->next >= r->n) return NULL;
    return r->mem ? r->mem + r->next * r->rec : r->buf + (r->next - r->base) * r->rec;
}

/* Make the current record readable (a file run reads the next block). */
static rtr_status run_fill(sorted_run *r) {
    if (r->mem || r->next >= r->n || r->next < r->base + r->have) return RTR_OK;
    size_t want = RUN_BUF_BYTES / r->rec;
    if (want > r->n - r->next) want = r->n - r->next;
    if (!r->buf && !(r->buf = rtr_malloc(RUN_BUF_BYTES))) return RTR_ERR_NOMEM;
    if (r->pull) { /* as many as the source has ready; none: its end */
        size_t got = 0;
        rtr_status st = r->pull(r->pull_ctx, r->buf, want, &got, r->next == 0);
        if (st) return st;
        if (!got) r->n = r->next;
        r->base = r->next;
        r->have = got;
        return RTR_OK;
    }
    if (fread(r->buf, r->rec, want, r->f) != want)
        return rtr_fail(RTR_ERR_IO, "a temporary run file reads short (%s)", ferror(r->f) ? strerror(errno) : "truncated");
    r->base = r->next;
    r->have = want;
    return RTR_OK;
}

static rtr_status run_rewind(sorted_run *r) {
    r->next = r->base = r->have = 0;
    if (r->pull) r->n = SIZE_MAX; /* until the source says it has ended */
    if (r->f && fseek(r->f, 0, SEEK_SET) != 0)
        return rtr_fail(RTR_ERR_IO, "cannot rewind a temporary run file: %s", strerror(errno));
    return run_fill(r);
}

static uint64_t run_key(const sorted_run *r) {
    uint64_t k;
    memcpy(&k, run_cur(r), sizeof k);
    return k;
}

static bool heap_less(const run_merge *m, int a, int b) {
    if (m->cmp) {
        int c = m->cmp(run_cur(&m->runs[a]), run_cur(&m->runs[b]));
        return c < 0 || (c == 0 && a < b);
    }
    uint64_t ka = run_key(&m->runs[a]), kb = run_key(&m->runs[b]);
    return ka < kb || (ka == kb && a < b);
}

static void heap_down(run_merge *m, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, s = i;
        if (l < m->nh && heap_less(m, m->heap[l], m->heap[s])) s = l;
        if (r < m->nh && heap_less(m, m->heap[r], m->heap[s])) s = r;
        if (s == i) return;
        int t = m->heap[i];
        m->heap[i] = m->heap[s];
        m->heap[s] = t;
        i = s;
    }
}

rtr_status run_merge_open(run_merge *m, sorted_run *runs, int n) {
    *m = (run_merge){.runs = runs, .n = n, .heap = rtr_malloc(sizeof(int) * (size_t)(n ? n : 1))};
    return m->heap ? RTR_OK : RTR_ERR_NOMEM;
}

void run_merge_free(run_merge *m) {
    free(m->heap);
    m->heap = NULL;
}

rtr_status run_merge_start(run_merge *m) {
    m->nh = 0;
    for (int i = 0; i < m->n; i++) {
        rtr_status st = run_rewind(&m->runs[i]);
        if (st) return st;
        if (run_cur(&m->runs[i])) m->heap[m->nh++] = i;
    }
    for (int i = m->nh / 2 - 1; i >= 0; i--) heap_down(m, i);
    return RTR_OK;
}

rtr_status run_merge_next(run_merge *m, const char **rec) {
    *rec = NULL;
    if (!m->nh) return RTR_OK;
    sorted_run *r = &m->runs[m->heap[0]];
    memcpy(m->cur, run_cur(r), r->rec);
    r->next++;
    rtr_status st = run_fill(r);
    if (st) return st;
    if (!run_cur(r)) m->heap[0] = m->heap[--m->nh];
    heap_down(m, 0);
    *rec = m->cur;
    return RTR_OK;
}

rtr_status run_temp_file(FILE **out, const char *what) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    char *path = rtr_sprintf("%s/rtr-run-XXXXXX", dir);
    if (!path) return RTR_ERR_NOMEM;
    int fd = mkstemp(path);
    rtr_status st = fd < 0 ? rtr_fail(RTR_ERR_IO, "%s: cannot create a temporary file in %s: %s (set TMPDIR)", what,
                                      dir, strerror(errno))
                           : RTR_OK;
    if (!st) unlink(path);
    free(path);
    if (st) return st;
    if (!(*out = fdopen(fd, "w+b"))) {
        close(fd);
        return rtr_fail(RTR_ERR_IO, "%s: cannot open a temporary file: %s", what, strerror(errno));
    }
    return RTR_OK;
}

/* Every run of the list merged into one (the same order: stable on the key). */
static rtr_status run_files_compact(run_files *l) {
    run_merge m;
    FILE *f = NULL;
    rtr_status st = run_merge_open(&m, l->runs, l->n);
    m.cmp = l->cmp;
    if (!st) st = run_temp_file(&f, l->what);
    if (!st) st = run_merge_start(&m);
    size_t n = 0;
    const char *rec;
    while (!st && !(st = run_merge_next(&m, &rec)) && rec) {
        if (fwrite(rec, l->rec, 1, f) != 1) break; /* the flush below reports it */
        n++;
    }
    run_merge_free(&m);
    if (st) {
        if (f) fclose(f);
        return st;
    }
    for (int i = 0; i < l->n; i++) sorted_run_close(&l->runs[i]);
    l->n = 0;
    return run_files_push(l, f, n);
}

rtr_status run_files_push(run_files *l, FILE *f, size_t n) {
    rtr_status st = fflush(f) == 0 && !ferror(f)
                        ? RTR_OK
                        : rtr_fail(RTR_ERR_IO, "%s: cannot write a temporary file (disk full? set TMPDIR): %s", l->what,
                                   strerror(errno));
    if (!st && l->n >= RUN_MAX_FILES) st = run_files_compact(l);
    sorted_run *r = st ? NULL : rtr_realloc(l->runs, sizeof *r * (size_t)(l->n + 1));
    if (!st && !r) st = RTR_ERR_NOMEM;
    if (st) {
        fclose(f);
        return st;
    }
    l->runs = r;
    l->runs[l->n++] = (sorted_run){.f = f, .n = n, .rec = l->rec};
    return RTR_OK;
}

void run_files_free(run_files *l) {
    for (int i = 0; i < l->n; i++) sorted_run_close(&l->runs[i]);
    free(l->runs);
    l->runs = NULL;
    l->n = 0;
}

/* ------------------------------------------------------------ a sorter */

void run_sorter_init(run_sorter *s, size_t rec, size_t max_held, run_cmp cmp, const char *what) {
    *s = (run_sorter){.files = {.rec = rec, .what = what, .cmp = cmp}, .max_held = max_held ? max_held : 1};
}

/* The records held, sorted (qsort is not stable: cmp must order every two
 * records that differ), written as a run on disk. */
static rtr_status sorter_spill(run_sorter *s) {
    qsort(s->buf, s->n, s->files.rec, s->files.cmp);
    FILE *f;
    rtr_status st = run_temp_file(&f, s->files.what);
    if (st) return st;
    if (s->n) fwrite(s->buf, s->files.rec, s->n, f); /* a short write sets ferror: run_files_push reports it */
    st = run_files_push(&s->files, f, s->n);
    s->n = 0;
    return st;
}

rtr_status run_sorter_add(run_sorter *s, const void *rec) {
    if (s->n == s->cap) {
        if (s->n >= s->max_held) {
            rtr_status st = sorter_spill(s);
            if (st) return st;
        } else { /* grown as needed, so that a small input takes little */
            size_t cap = s->cap ? 2 * s->cap : 4096;
            if (cap > s->max_held) cap = s->max_held;
            char *b = rtr_realloc(s->buf, cap * s->files.rec);
            if (!b) return RTR_ERR_NOMEM;
            s->buf = b;
            s->cap = cap;
        }
    }
    memcpy(s->buf + s->n++ * s->files.rec, rec, s->files.rec);
    return RTR_OK;
}

rtr_status run_sorter_merge(run_sorter *s, run_merge **m) {
    rtr_status st = RTR_OK;
    sorted_run *runs = &s->mem;
    int n_runs = 1;
    if (s->files.n) { /* the rest spilled too: the merge reads only the files */
        if (s->n) st = sorter_spill(s);
        free(s->buf), s->buf = NULL;
        s->cap = 0;
        runs = s->files.runs, n_runs = s->files.n;
    } else {
        if (s->n) qsort(s->buf, s->n, s->files.rec, s->files.cmp); /* buf is NULL when nothing was added */
        s->mem = (sorted_run){.mem = s->buf, .n = s->n, .rec = s->files.rec};
    }
    if (!st) st = run_merge_open(&s->m, runs, n_runs);
    s->m.cmp = s->files.cmp;
    *m = st ? NULL : &s->m;
    return st;
}

void run_sorter_free(run_sorter *s) {
    run_merge_free(&s->m);
    run_files_free(&s->files);
    free(s->buf);
    memset(s, 0, sizeof *s);
}
