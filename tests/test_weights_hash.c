/* src/encoder/weights_hash.c: the cached weights hash equals rtr_hash64 of
 * the bytes; a second call reads the entry (shown by planting a different
 * value under the same key, which it then returns); a change to the file
 * (same size) moves its stamps and is hashed again; small files and an
 * unusable cache folder are hashed, never cached. */
#include "common/util.h"
#include "encoder/weights_hash.h"
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { BYTES = 1 << 20 };

static int entries(const char *dir, char *name, size_t cap) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') n++, snprintf(name, cap, "%s/%s", dir, e->d_name);
    if (d) closedir(d);
    return n;
}

static void test_cached_hash(void) {
    char dir[] = RTR_BINARY_DIR "/test_weights_hashXXXXXX", path[512], cache[512], entry[1024] = "";
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    setenv("RTR_CACHE_DIR", cache, 1);
    unsigned char *bytes = malloc(BYTES);
    for (int i = 0; i < BYTES; i++) bytes[i] = (unsigned char)(test_urand() * 256);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, bytes, BYTES) == BYTES);
    const unsigned char *map = mmap(NULL, BYTES, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(map != MAP_FAILED);
    uint64_t want = rtr_hash64(RTR_FNV_SEED, bytes, BYTES);
    int cached = -1;

    /* below min_cached: hashed, nothing written */
    CHECK(rtr_weights_hash(path, map, BYTES, BYTES + 1, &cached) == want && !cached);
    CHECK(entries(cache, entry, sizeof entry) == 0);
    /* first call hashes and writes one entry; the second reads it */
    CHECK(rtr_weights_hash(path, map, BYTES, 4096, &cached) == want && !cached);
    CHECK(entries(cache, entry, sizeof entry) == 1);
    CHECK(rtr_weights_hash(path, map, BYTES, 4096, &cached) == want && cached == 1);
    /* the value really comes from the entry: plant another under the same key */
    char line[512];
    FILE *f = fopen(entry, "r");
    CHECK(f && fgets(line, sizeof line, f));
    fclose(f);
    char *last = strrchr(line, ' ');
    CHECK(last && strlen(last) == 18);
    memcpy(last + 1, "00000000000000aa", 16);
    f = fopen(entry, "w");
    CHECK(f && fputs(line, f) >= 0);
    fclose(f);
    CHECK(rtr_weights_hash(path, map, BYTES, 4096, &cached) == 0xaa && cached == 1);
    /* a hashed length other than the entry's is not its key */
    CHECK(rtr_weights_hash(path, map, BYTES - 1, 4096, &cached) == rtr_hash64(RTR_FNV_SEED, bytes, BYTES - 1) &&
          !cached);

    /* one byte changed in place, same size: the stamps move, the bytes are hashed again */
    usleep(20000); /* past the file system's timestamp granularity */
    unsigned char b = (unsigned char)(bytes[777] ^ 1);
    CHECK(pwrite(fd, &b, 1, 777) == 1);
    bytes[777] = b;
    uint64_t changed = rtr_hash64(RTR_FNV_SEED, bytes, BYTES);
    CHECK(changed != want);
    CHECK(rtr_weights_hash(path, map, BYTES, 4096, &cached) == changed && !cached);
    CHECK(rtr_weights_hash(path, map, BYTES, 4096, &cached) == changed && cached == 1);

    /* a cache folder that cannot be made: hashed every time */
    setenv("RTR_CACHE_DIR", "/proc/no-such-dir/rtr", 1);
    CHECK(rtr_weights_hash(path, map, BYTES, 4096, &cached) == changed && !cached);
    CHECK(rtr_weights_hash(path, map, BYTES, 4096, &cached) == changed && !cached);
    unsetenv("RTR_CACHE_DIR");

    munmap((void *)map, BYTES);
    close(fd);
    free(bytes);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

TEST_MAIN(T(test_cached_hash))
