/* `rtr gen-demo`: write the embedded demo corpus's catalog and outcomes. */
#include "cli/args.h"
#include "rtr/demo.h"
#include "common/util.h"

#include <stdlib.h>
#include <sys/stat.h>

int cmd_gen_demo(int argc, char **argv) {
    long n = 20000, seed = 1;
    double test_fraction = 0.2;
    const rtr_opt opts[] = {
        {"queries", RTR_OPT_INT, &n, "number of queries"},
        {"seed", RTR_OPT_INT, &seed, "random seed (same seed, same files)"},
        {"test-fraction", RTR_OPT_DOUBLE, &test_fraction, "fraction of queries in the test split"},
        {0},
    };
    const rtr_cmd_spec spec = {"gen-demo", "[options] OUT_DIR",
                               "Write OUT_DIR/catalog.json and OUT_DIR/outcomes.jsonl: arithmetic word problems\n"
                               "(more steps, larger numbers and distractors make them harder) with outcomes of\n"
                               "4 demo models x 4 strategies drawn from the latent model in docs/DEMO.md.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    if (n < 1) { fprintf(stderr, "rtr gen-demo: --queries must be at least 1\n"); return 2; }
    mkdir(dir, 0755);
    char *cat = rtr_sprintf("%s/catalog.json", dir), *out = rtr_sprintf("%s/outcomes.jsonl", dir);
    double t0 = rtr_now();
    rtr_status s = cat && out ? rtr_demo_generate(cat, out, n, (uint64_t)seed, test_fraction) : RTR_ERR_NOMEM;
    if (s) fprintf(stderr, "rtr gen-demo: error: %s\n", rtr_last_error());
    else if (a.json)
        printf("{\"catalog\":\"%s\",\"outcomes\":\"%s\",\"n_queries\":%ld,\"seed\":%ld,\"seconds\":%.3f}\n", cat, out, n,
               seed, rtr_now() - t0);
    else
        fprintf(stderr, "rtr gen-demo: %ld queries -> %s, %s (%.2f s)\n", n, cat, out, rtr_now() - t0);
    free(cat);
    free(out);
    return s ? 1 : 0;
}
