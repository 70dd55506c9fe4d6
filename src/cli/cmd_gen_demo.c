/* `rtr gen-demo`: write the embedded demo corpus's catalog and outcomes. */
#include "cli/cli.h"
#include "rtr/demo.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cmd_gen_demo(int argc, char **argv) {
    long n = 20000, seed = 1;
    double test_fraction = 0.2;
    const rtr_opt opts[] = {
        {"queries", RTR_OPT_COUNT, &n, "number of queries"},
        {"seed", RTR_OPT_SEED, &seed, "random seed (same seed, same files)"},
        {"test-fraction", RTR_OPT_UNIT, &test_fraction, "fraction of queries in the test split"},
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
    char *cat = rtr_sprintf("%s/catalog.json", dir), *out = rtr_sprintf("%s/outcomes.jsonl", dir);
    double t0 = rtr_now();
    rtr_status s = cat && out ? RTR_OK : RTR_ERR_NOMEM;
    /* the folder's own error (a read-only parent): the files' "no such file" hid it */
    if (!s && mkdir(dir, 0755) != 0 && errno != EEXIST)
        s = rtr_fail(RTR_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    /* never replace a file: OUT_DIR may hold a user's own catalog or log */
    for (int i = 0; i < 2 && !s; i++)
        if (rtr_path_exists(i ? out : cat))
            s = rtr_fail(RTR_ERR_IO, "%s exists (gen-demo never replaces a file: remove it or choose another folder)",
                         i ? out : cat);
    if (!s) s = rtr_demo_generate(cat, out, n, (uint64_t)seed, test_fraction);
    if (s) {
        cli_error("gen-demo");
    } else if (a.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "catalog", cat);
        cJSON_AddStringToObject(o, "outcomes", out);
        cJSON_AddNumberToObject(o, "n_queries", (double)n);
        cJSON_AddNumberToObject(o, "seed", (double)seed);
        cJSON_AddNumberToObject(o, "seconds", rtr_now() - t0);
        cli_print_json(o);
    } else
        printf("wrote %ld queries -> %s, %s (%.2f s)\n", n, cat, out, rtr_now() - t0);
    free(cat);
    free(out);
    return s ? 1 : 0;
}
