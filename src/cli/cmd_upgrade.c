/* `rtr upgrade OLD_DIR --out NEW_DIR`: a corpus of schema version 1
 * (embeddings and the routing table inside the shards) converted into a
 * version 2 corpus (rtr_corpus_upgrade, src/store/upgrade.c); OLD_DIR is
 * only read. Every other command refuses a version 1 corpus and names this
 * one. */
#include "cli/cli.h"
#include "rtr/store.h"
#include "common/util.h"

int cmd_upgrade(int argc, char **argv) {
    const char *out = NULL;
    const rtr_opt opts[] = {{"out", RTR_OPT_REQUIRED, &out, "the version 2 corpus to create (must not exist)"}, {0}};
    const rtr_cmd_spec spec = {"upgrade", "OLD_CORPUS_DIR --out NEW_CORPUS_DIR",
                               "Convert a corpus of schema version 1 into version 2 (docs/FORMAT.md): the same\n"
                               "queries and outcomes, its embeddings under embeddings/ENCODER/ and its routing\n"
                               "table under tables/v1/. The old corpus is left as it is.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    double t0 = rtr_now();
    if (rtr_corpus_upgrade(out, a.pos[0])) return cli_error("upgrade");
    if (a.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "corpus", out);
        cJSON_AddStringToObject(o, "from", a.pos[0]);
        cJSON_AddNumberToObject(o, "seconds", rtr_now() - t0);
        cli_print_json(o);
    } else {
        printf("upgraded %s -> %s (schema version %d) in %.2fs\n", a.pos[0], out, RTR_SCHEMA_VERSION, rtr_now() - t0);
    }
    return 0;
}
