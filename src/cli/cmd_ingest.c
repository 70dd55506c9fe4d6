/* `rtr ingest`: catalog + JSONL outcome logs -> corpus of HDF5 shards. */
#include "cli/cli.h"
#include "rtr/ingest.h"
#include "common/util.h"

#include <stdlib.h>

int cmd_ingest(int argc, char **argv) {
    rtr_ingest_params p = rtr_ingest_default_params();
    const char *catalog = NULL, *out = NULL;
    long shard_size = (long)p.shard_size;
    const rtr_opt opts[] = {
        {"catalog", RTR_OPT_REQUIRED, &catalog, "catalog JSON (models, strategies, pairs; docs/DATA.md)"},
        {"out", RTR_OPT_REQUIRED, &out, "corpus directory to create (must not hold a corpus)"},
        {"shard-size", RTR_OPT_COUNT, &shard_size, "queries per HDF5 shard"},
        {"default-split", RTR_OPT_STR, &p.default_split, "split of lines that give none"},
        {"default-dataset", RTR_OPT_STR, &p.default_dataset, "dataset of lines that give none"},
        {0},
    };
    const rtr_cmd_spec spec = {"ingest", "--catalog CATALOG.json --out CORPUS_DIR OUTCOMES.jsonl...",
                               "Validate outcome logs (one JSON object per query per line, '-' for stdin) against\n"
                               "the catalog and write them as a corpus: manifest.json + shard-NNNNN.h5.\n"
                               "Nothing appears under CORPUS_DIR unless every line is valid.",
                               opts, 1, -1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    p.shard_size = shard_size;
    rtr_ingest_result r;
    double t0 = rtr_now();
    rtr_status s = rtr_ingest(&r, catalog, (const char *const *)a.pos, a.npos, out, &p);
    if (s) return cli_error("ingest");
    double dt = rtr_now() - t0;
    if (a.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "corpus", out);
        cJSON_AddNumberToObject(o, "n_queries", (double)r.n_queries);
        cJSON_AddNumberToObject(o, "n_outcomes", (double)r.n_outcomes);
        cJSON_AddNumberToObject(o, "n_without_outcomes", (double)r.n_without_outcomes);
        cJSON_AddNumberToObject(o, "n_shards", r.n_shards);
        cJSON_AddNumberToObject(o, "seconds", dt);
        cli_print_json(o);
    } else
        printf("ingested %lld queries, %lld outcomes, %d shard(s) -> %s (%.2f s)\n",
                (long long)r.n_queries, (long long)r.n_outcomes, r.n_shards, out, dt);
    return 0;
}
