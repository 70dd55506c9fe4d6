/* The list of `rtr` commands: one line each, name and one-line summary.
 * Each command lives in src/cli/cmd_<name>.c as `int cmd_<name>(int argc, char **argv)`
 * returning the process exit status (0 ok, 1 failure, 2 usage error). */
RTR_COMMAND(gen_demo, "gen-demo", "generate the embedded demo corpus (catalog + outcomes JSONL)")
RTR_COMMAND(ingest, "ingest", "build a corpus of HDF5 shards from a catalog and outcome logs")
RTR_COMMAND(info, "info", "summarise a corpus: queries per dataset/split, per-pair outcomes, encodings, tables")
RTR_COMMAND(upgrade, "upgrade", "convert a corpus of schema version 1 into version 2")
RTR_COMMAND(encode, "encode", "embed the queries and catalog descriptions (embeddings/ENCODER/, beside the shards)")
RTR_COMMAND(embed, "embed", "embed lines of stdin with a sentence encoder, one JSON array per line")
RTR_COMMAND(eval, "eval", "evaluate RTR against every baseline on a split (AIQ, APGR, CPT, oracle gap)")
RTR_COMMAND(report, "report", "render an evaluation file as an HTML page with plots and a markdown summary")
RTR_COMMAND(train, "train", "train the correctness/token predictor on an encoded corpus")
RTR_COMMAND(score, "score", "a named routing table (p_correct, tokens) for every query and pair (tables/NAME/)")
RTR_COMMAND(eval_predictor, "eval-predictor", "prediction quality per pair vs the naive per-pair predictor")
RTR_COMMAND(route, "route", "choose a pair per query at a lambda or under a cost budget")
RTR_COMMAND(sweep, "sweep", "exact accuracy-vs-cost path over lambda, Pareto front, reference routers")
