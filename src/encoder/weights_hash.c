/* Cached weights hash: src/encoder/weights_hash.h. */
#include "encoder/weights_hash.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#define ENTRY_FORMAT "rtr-weights-hash-1"

typedef struct {
    unsigned long long size, mtime_s, mtime_ns, ctime_s, ctime_ns, n;
} entry_key;

static int key_of(const char *path, size_t n, entry_key *k, unsigned long long *dev, unsigned long long *ino) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    *k = (entry_key){(unsigned long long)st.st_size, (unsigned long long)st.st_mtim.tv_sec,
                     (unsigned long long)st.st_mtim.tv_nsec, (unsigned long long)st.st_ctim.tv_sec,
                     (unsigned long long)st.st_ctim.tv_nsec, (unsigned long long)n};
    *dev = (unsigned long long)st.st_dev, *ino = (unsigned long long)st.st_ino;
    return 0;
}

/* The cache folder (created, mode 0700, where missing), or NULL. */
static char *cache_dir(void) {
    const char *env = getenv("RTR_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char *dir = env && *env ? rtr_strdup(env)
                : xdg && *xdg ? rtr_sprintf("%s/rtr", xdg)
                : home && *home ? rtr_sprintf("%s/.cache/rtr", home)
                : NULL;
    if (!dir) return NULL;
    /* each missing ancestor in turn (at most a few levels: ~/.cache/rtr) */
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(dir, 0700) != 0 && errno != EEXIST) { free(dir); return NULL; }
            *p = '/';
        }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) { free(dir); return NULL; }
    return dir;
}

uint64_t rtr_weights_hash(const char *path, const void *data, size_t n, size_t min_cached, int *from_cache) {
    if (from_cache) *from_cache = 0;
    entry_key k0, k1, got;
    unsigned long long dev, ino, dev1, ino1;
    char *dir = n >= min_cached && key_of(path, n, &k0, &dev, &ino) == 0 ? cache_dir() : NULL;
    char *entry = dir ? rtr_sprintf("%s/weights-%llx-%llx", dir, dev, ino) : NULL;
    free(dir);
    uint64_t h = 0;
    FILE *f = entry ? fopen(entry, "r") : NULL;
    if (f) {
        char fmt[32];
        int ok = fscanf(f, "%31s %llu %llu %llu %llu %llu %llu %" SCNx64, fmt, &got.size, &got.mtime_s, &got.mtime_ns,
                        &got.ctime_s, &got.ctime_ns, &got.n, &h) == 8 &&
                 !strcmp(fmt, ENTRY_FORMAT) && !memcmp(&got, &k0, sizeof got);
        fclose(f);
        if (ok) {
            if (from_cache) *from_cache = 1;
            free(entry);
            return h;
        }
    }
    h = rtr_hash64(RTR_FNV_SEED, data, n);
    /* only a file that stayed the same while hashed gets an entry */
    if (entry && key_of(path, n, &k1, &dev1, &ino1) == 0 && dev1 == dev && ino1 == ino &&
        !memcmp(&k0, &k1, sizeof k0)) {
        /* threads of one process share the temporary's name (host and pid):
         * one writes at a time, or a rename could take another's half */
        static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&write_lock);
        char *tmp = rtr_tmp_path(entry); /* a killed run's is removed by the next */
        FILE *w = tmp ? fopen(tmp, "w") : NULL;
        if (w) {
            int ok = fprintf(w, "%s %llu %llu %llu %llu %llu %llu %016" PRIx64 "\n", ENTRY_FORMAT, k0.size,
                             k0.mtime_s, k0.mtime_ns, k0.ctime_s, k0.ctime_ns, k0.n, h) > 0;
            ok = fclose(w) == 0 && ok;
            if (!ok || rename(tmp, entry) != 0) remove(tmp);
        }
        pthread_mutex_unlock(&write_lock);
        free(tmp);
    }
    free(entry);
    return h;
}
