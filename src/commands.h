/* The list of `rtr` commands: one line each, name and one-line summary.
 * Each command lives in src/cmd_<name>.c as `int cmd_<name>(int argc, char **argv)`
 * returning the process exit status (0 ok, 1 failure, 2 usage error). */
RTR_COMMAND(gen_demo, "gen-demo", "generate the embedded demo corpus (catalog + outcomes JSONL)")
RTR_COMMAND(ingest, "ingest", "build a corpus of HDF5 shards from a catalog and outcome logs")
RTR_COMMAND(info, "info", "summarise a corpus: queries per dataset/split, per-pair outcomes")
