/* What the rtr commands share beyond option parsing (args.h): the routing
 * options of route, sweep and eval, the --json summary line and the error
 * line. Each command is options -> one library call -> print. */
#ifndef RTR_CLI_H
#define RTR_CLI_H

#include "cli/args.h"
#include "common/json.h"
#include "rtr/route.h"

/* The routing options as given on the command line. */
typedef struct {
    const char *table, *split, *cost, *pair_cost, *exclude, *checkpoint_hash;
    double max_tokens, cost_scale;
} cli_route;

/* The rtr_opt entries of cli_route x (split's help names its default). */
#define CLI_ROUTE_OPTS(x)                                                                                         \
    {"table", RTR_OPT_STR, &(x).table, "routing table to use (rtr score --name; default: the corpus's only one)"}, \
    {"split", RTR_OPT_STR, &(x).split, "the queries of this split, or all (default: test when the corpus has it, else all)"}, \
    {"cost", RTR_OPT_STR, &(x).cost, "cost model: tokens (predicted output tokens), usd or user"},              \
    {"pair-cost", RTR_OPT_STR, &(x).pair_cost, "JSON {\"model|strategy\": cost} for --cost user"},              \
    {"exclude", RTR_OPT_STR, &(x).exclude, "never route to these (comma-separated pairs, models, strategies)"}, \
    {"max-tokens", RTR_OPT_NONNEG, &(x).max_tokens, "never route to a pair predicted above this many tokens (0: no cap)"}, \
    {"cost-scale", RTR_OPT_NONNEG, &(x).cost_scale, "divide costs by this against lambda (0: largest per-pair mean cost)"}, \
    {"checkpoint-hash", RTR_OPT_STR, &(x).checkpoint_hash, "refuse routing tables scored by another checkpoint"}

/* --threads of every command that computes on the CPU backend: set with
 * cli_set_threads right after parsing (before the backend starts). */
#define CLI_OPT_THREADS(dest) {"threads", RTR_OPT_THREADS, (dest), "CPU threads (0: all)"}
void cli_set_threads(long n);

/* cli_route into rtr_route_options (o points into c's strings).
 * RTR_ERR_INVALID for an unknown cost model (the numbers' ranges are the
 * parser's, args.h; the library checks them again). */
rtr_status cli_route_options(const cli_route *c, rtr_route_options *o);

/* Print o as one line on stdout (the --json summary) and delete it. */
void cli_print_json(cJSON *o);

/* --split of route, sweep and eval: one rule for the three (docs/CLI.md).
 * `all` (or "") is every query; not given (NULL) is CLI_SPLIT_DEFAULT, the
 * queries training never saw, when some query of the corpus is in it, else
 * every query: a production corpus (no split; ingest puts its queries in
 * train) routes everything. */
#define CLI_SPLIT_ALL "all"
#define CLI_SPLIT_DEFAULT "test"

/* The split rtr CMD works on, from --split as given, into *split (NULL:
 * every query). A name is checked against the corpus in dir
 * (rtr_corpus_check_names); not given, the corpus's splits are read (up to
 * the first test row), and when it falls back to every query, fallback
 * (when not NULL) says on stderr what that means for the command ("rtr:
 * CMD: DIR: no query in split 'test' (splits: ...): FALLBACK ..."), a note
 * --quiet silences. */
rtr_status cli_split(const char *cmd, const char *dir, const char *given, const char *fallback, const char **split);

/* "rtr CMD: error: <rtr_last_error()>" on stderr; returns exit status 1. */
int cli_error(const char *cmd);

/* v in printf format fmt (one double conversion, may carry text around
 * it) into buf, or `missing` when v is not finite: the printed summaries
 * never say "nan" (docs/CLI.md: "—" for a value that does not exist,
 * "never" for a cost never reached). Returns the text. */
const char *cli_num(char *buf, size_t n, const char *fmt, double v, const char *missing);
#define CLI_NUM(buf, fmt, v) cli_num((buf), sizeof(buf), (fmt), (v), "—")

/* The printf field width that shows s in `columns` columns: printf pads
 * by bytes, and "—" is one column of three bytes (UTF-8). */
int cli_width(const char *s, int columns);

#endif
