/* Cleaning up after killed runs (files.h). */
#include "common/files.h"
#include "common/util.h"

#include <dirent.h>
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

void rtr_remove_stale_tmp(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? rtr_strdup(path) : rtr_strdup(".");
    if (!dir) return;
    if (slash) dir[slash - path] = '\0';
    const char *base = slash ? slash + 1 : path;
    size_t bl = strlen(base);
    char here[RTR_HOST_MAX];
    rtr_host_name(here);
    DIR *d = opendir(*dir ? dir : "/");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *rest = e->d_name + bl, *dot = strrchr(e->d_name, '.');
        if (strncmp(e->d_name, base, bl) || strncmp(rest, ".tmp.", 5)) continue;
        const char *host = rest + 5, *pid = host;
        size_t hl = 0;
        if (!is_pid(host)) { /* not the host-less form: <host>.<pid> */
            if (dot <= host || !is_pid(dot + 1)) continue;
            hl = (size_t)(dot - host), pid = dot + 1;
            if (hl != strlen(here) || strncmp(host, here, hl)) {
                rtr_note("%s/%s: a temporary written on host %.*s, not this one (%s): left for a run there to "
                         "remove (or remove it by hand once that job is gone)", dir, e->d_name, (int)hl, host, here);
                continue;
            }
        }
        if (writer_gone(atol(pid))) {
            char *p = rtr_sprintf("%s/%s", dir, e->d_name);
            if (p) rtr_remove_tree(p);
            free(p);
        }
    }
    if (d) closedir(d);
    free(dir);
}

