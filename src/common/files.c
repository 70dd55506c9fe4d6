/* Cleaning up after killed runs (files.h). */
#include "common/files.h"
#include "common/util.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

void rtr_host_name(char host[RTR_HOST_MAX]) {
    char raw[256] = {0};
    struct utsname u;
    if (gethostname(raw, sizeof raw - 1) != 0 || !raw[0]) snprintf(raw, sizeof raw, "%s", uname(&u) == 0 ? u.nodename : "");
    size_t n = 0;
    bool changed = false;
    for (const char *c = raw; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-';
        changed |= !ok;
        if (n < RTR_HOST_MAX - 1) host[n++] = ok ? *c : '_';
    }
    host[n] = '\0';
    if (!n) {
        snprintf(host, RTR_HOST_MAX, "unknown");
        return;
    }
    if (changed || strlen(raw) > 47) {
        uint32_t h = 2166136261u; /* FNV-1a of the whole raw name */
        for (const unsigned char *c = (const unsigned char *)raw; *c; c++) h = (h ^ *c) * 16777619u;
        snprintf(host + (n < 38 ? n : 38), RTR_HOST_MAX - 38, "-%08x", (unsigned)h);
    }
}

char *rtr_tmp_name(const char *path, const char *host, long pid) { return rtr_sprintf("%s.tmp.%s.%ld", path, host, pid); }

/* Whether process pid of this machine is gone: none, or a zombie (its
 * parent, often init after mpirun, has not reaped it yet: it writes nothing). */
static bool writer_gone(long pid) {
    if (kill((pid_t)pid, 0) != 0) return errno == ESRCH;
    char path[64], line[512], state = 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(line, 1, sizeof line - 1, f) : 0;
    if (f) fclose(f);
    line[n] = '\0';
    /* "pid (comm) S ...": the state follows the last ')' (comm may hold one) */
    const char *close = strrchr(line, ')');
    if (close && close[1] == ' ') state = close[2];
    return state == 'Z';
}

/* Whether s is 1 to 9 decimal digits: a pid_t, which every writer of ours has. */
static bool is_pid(const char *s) {
    size_t n = strspn(s, "0123456789");
    return n > 0 && n <= 9 && !s[n];
}

/* The temporaries ("*.tmp.*") of one folder, as read by one scan of it.
 * encode and score write one output per shard into one folder, and a scan
 * of the folder per output made a run O(shards^2) in directory entries read
 * (docs/robustness.md, session 9): one scan now serves every output of the
 * folder once. An output asked about a second time (a process writing it
 * again: a later stage, the Python binding's next call) rescans, so its
 * temporaries left since are seen; one of another output that appeared
 * after the scan (a writer killed since) is left for a later run, as one
 * whose writer died after the last scan always was. */
typedef struct {
    char *dir;
    char **names;       /* NULL once handled */
    size_t n, cap;
    bool scanned;       /* names hold a scan (a folder not there yet has none) */
    rtr_strset served;  /* outputs handled since the scan */
} tmp_folder;

/* Library calls on several threads may write outputs at once. */
static pthread_mutex_t folders_lock = PTHREAD_MUTEX_INITIALIZER;
static tmp_folder *folders;
static size_t n_folders;

static void forget_names(tmp_folder *f) {
    for (size_t i = 0; i < f->n; i++) free(f->names[i]);
    f->n = 0;
    rtr_strset_free(&f->served);
    memset(&f->served, 0, sizeof f->served);
}

/* Read f->dir's temporaries into f (false: the folder cannot be read, or
 * memory ran out; then nothing is removed, as when no scan could be made). */
static bool scan(tmp_folder *f) {
    forget_names(f);
    f->scanned = false;
    DIR *d = opendir(f->dir);
    bool ok = d != NULL;
    for (struct dirent *e; ok && (e = readdir(d));) {
        if (!strstr(e->d_name, ".tmp.")) continue;
        if (f->n == f->cap) {
            size_t c = f->cap ? 2 * f->cap : 8;
            char **nn = realloc(f->names, c * sizeof *nn);
            if (!(ok = nn != NULL)) break;
            f->names = nn, f->cap = c;
        }
        ok = (f->names[f->n] = rtr_strdup(e->d_name)) != NULL;
        if (ok) f->n++;
    }
    if (d) closedir(d);
    if (!ok) forget_names(f);
    return f->scanned = ok;
}

/* The scan of dir that serves output base: the last one, unless base was
 * served by it already (then a new one). NULL when none can be made. */
static tmp_folder *folder_for(const char *dir, const char *base) {
    tmp_folder *f = NULL;
    for (size_t i = 0; i < n_folders && !f; i++)
        if (!strcmp(folders[i].dir, dir)) f = &folders[i];
    if (!f) {
        tmp_folder *grown = realloc(folders, (n_folders + 1) * sizeof *folders);
        char *copy = grown ? rtr_strdup(dir) : NULL;
        if (grown) folders = grown;
        if (!copy) return NULL;
        f = &folders[n_folders++];
        memset(f, 0, sizeof *f);
        f->dir = copy;
    }
    if (!f->scanned && !scan(f)) return NULL;
    int32_t seen;
    int r = rtr_strset_insert(&f->served, base, 0, &seen);
    if (r == 1 && (!scan(f) || rtr_strset_insert(&f->served, base, 0, &seen) < 0)) return NULL;
    return r < 0 ? NULL : f;
}

void rtr_remove_stale_tmp(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? rtr_strdup(path) : rtr_strdup(".");
    if (!dir) return;
    if (slash) dir[slash - path] = '\0';
    if (!*dir) dir[0] = '/', dir[1] = '\0'; /* "/x": strdup left room for both */
    const char *base = slash ? slash + 1 : path;
    size_t bl = strlen(base);
    char here[RTR_HOST_MAX];
    rtr_host_name(here);
    pthread_mutex_lock(&folders_lock);
    tmp_folder *f = folder_for(dir, base);
    for (size_t i = 0; f && i < f->n; i++) {
        const char *name = f->names[i];
        if (!name || strncmp(name, base, bl) || strncmp(name + bl, ".tmp.", 5)) continue;
        const char *host = name + bl + 5, *pid = host, *dot = strrchr(name, '.');
        bool remove = true;
        if (!is_pid(host)) { /* not the host-less form: <host>.<pid> */
            size_t hl = dot > host ? (size_t)(dot - host) : 0;
            if (!hl || !is_pid(dot + 1)) continue; /* another name holding ".tmp.": not a temporary */
            pid = dot + 1;
            if (hl != strlen(here) || strncmp(host, here, hl)) {
                rtr_note("%s/%s: a temporary written on host %.*s, not this one (%s): left for a run there to "
                         "remove (or remove it by hand once that job is gone)", dir, name, (int)hl, host, here);
                remove = false;
            }
        }
        /* handled: a dead writer's is removed, a live one's stays (its
         * writer removes or renames it) and this scan asks about it no more */
        if (remove && writer_gone(atol(pid))) {
            char *p = rtr_sprintf("%s/%s", dir, name);
            if (p) rtr_remove_tree(p);
            free(p);
        }
        free(f->names[i]);
        f->names[i] = NULL;
    }
    pthread_mutex_unlock(&folders_lock);
    free(dir);
}
