/* Cleaning up after killed runs (files.h). */
#include "common/files.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

void rtr_remove_stale_tmp(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? rtr_strdup(path) : rtr_strdup(".");
    if (!dir) return;
    if (slash) dir[slash - path] = '\0';
    const char *base = slash ? slash + 1 : path;
    size_t bl = strlen(base);
    DIR *d = opendir(*dir ? dir : "/");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *rest = e->d_name + bl;
        if (strncmp(e->d_name, base, bl) || strncmp(rest, ".tmp.", 5) || !rest[5] ||
            strspn(rest + 5, "0123456789") != strlen(rest + 5))
            continue;
        long pid = atol(rest + 5);
        /* only a dead writer's file: a live one (this run included) may still be writing */
        if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            char *p = rtr_sprintf("%s/%s", dir, e->d_name);
            if (p) rtr_remove_tree(p);
            free(p);
        }
    }
    if (d) closedir(d);
    free(dir);
}

