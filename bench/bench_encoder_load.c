/* bench_encoder_load — what loading an encoder costs a process, with the
 * weights hash computed (an empty cache folder: the first process on a
 * machine, or after the file changed) and read from its cache entry
 * (src/encoder/weights_hash.h), interleaved (cold, warm, cold, warm, ...):
 * medians with min-max, the hash alone, and the load average.
 *
 *     bench_encoder_load MODEL_DIR [ROUNDS (5)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "common/util.h"
#include "rtr/encoder.h"

static double load_once(const char *model, char *hash_out) {
    rtr_encoder_params p = rtr_encoder_default_params();
    p.device = "cpu";
    rtr_encoder *enc = NULL;
    double t0 = rtr_now();
    if (rtr_encoder_load(&enc, model, &p) != RTR_OK) {
        fprintf(stderr, "bench_encoder_load: %s\n", rtr_last_error());
        exit(1);
    }
    double t = rtr_now() - t0;
    snprintf(hash_out, 17, "%s", rtr_encoder_hash(enc));
    rtr_encoder_free(enc);
    return t;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) return fprintf(stderr, "usage: bench_encoder_load MODEL_DIR [ROUNDS]\n"), 2;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (rounds < 1 || rounds > 64) return fprintf(stderr, "bench_encoder_load: rounds in 1 .. 64\n"), 2;
    char dir[] = "/tmp/bench_encoder_loadXXXXXX";
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    setenv("RTR_CACHE_DIR", dir, 1);
    double cold[64], warm[64], l0[3], l1[3];
    char h_cold[17], h_warm[17], first[17] = "";
    if (getloadavg(l0, 3) < 1) l0[0] = -1;
    load_once(argv[1], first); /* page cache warm for both kinds */
    for (int r = 0; r < rounds; r++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -f %s/weights-*", dir);
        if (system(cmd) != 0) return 1;
        cold[r] = load_once(argv[1], h_cold);
        warm[r] = load_once(argv[1], h_warm);
        if (strcmp(h_cold, first) || strcmp(h_warm, first))
            return fprintf(stderr, "bench_encoder_load: hash %s / %s, first %s\n", h_cold, h_warm, first), 1;
        fprintf(stderr, "round %d: hashed %.3f s, cached %.3f s\n", r + 1, cold[r], warm[r]);
    }
    if (getloadavg(l1, 3) < 1) l1[0] = -1;
    qsort(cold, (size_t)rounds, sizeof *cold, cmp_double);
    qsort(warm, (size_t)rounds, sizeof *warm, cmp_double);
    double mc = cold[rounds / 2], mw = warm[rounds / 2];
    printf("encoder load %s (hash %s), %d interleaved rounds, load average %.2f at start, %.2f at the end\n", argv[1],
           first, rounds, l0[0], l1[0]);
    printf("weights hashed:       median %.3f s (min %.3f, max %.3f)\n", mc, cold[0], cold[rounds - 1]);
    printf("hash from its cache:  median %.3f s (min %.3f, max %.3f)\n", mw, warm[0], warm[rounds - 1]);
    printf("saved per process: %.3f s (%.2fx faster load)\n", mc - mw, mc / mw);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) != 0;
}
