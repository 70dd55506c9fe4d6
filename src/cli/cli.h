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
    {"split", RTR_OPT_STR, &(x).split, "route only the queries of this split (\"\" = all)"},                      \
    {"cost", RTR_OPT_STR, &(x).cost, "cost model: tokens (predicted output tokens), usd or user"},              \
    {"pair-cost", RTR_OPT_STR, &(x).pair_cost, "JSON {\"model|strategy\": cost} for --cost user"},              \
    {"exclude", RTR_OPT_STR, &(x).exclude, "never route to these (comma-separated pairs, models, strategies)"}, \
    {"max-tokens", RTR_OPT_NONNEG, &(x).max_tokens, "never route to a pair predicted above this many tokens (0: no cap)"}, \
    {"cost-scale", RTR_OPT_NONNEG, &(x).cost_scale, "divide costs by this against lambda (0: largest per-pair mean cost)"}, \
    {"checkpoint-hash", RTR_OPT_STR, &(x).checkpoint_hash, "refuse routing tables scored by another checkpoint"}

/* cli_route into rtr_route_options (o points into c's strings).
 * RTR_ERR_INVALID for an unknown cost model (the numbers' ranges are the
 * parser's, args.h; the library checks them again). */
rtr_status cli_route_options(const cli_route *c, rtr_route_options *o);

/* Print o as one line on stdout (the --json summary) and delete it. */
void cli_print_json(cJSON *o);

/* "rtr CMD: error: <rtr_last_error()>" on stderr; returns exit status 1. */
int cli_error(const char *cmd);

#endif
