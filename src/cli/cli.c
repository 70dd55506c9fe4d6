/* Helpers shared by the rtr commands (cli.h). */
#include "cli/cli.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rtr_status cli_route_options(const cli_route *c, rtr_route_options *o) {
    memset(o, 0, sizeof *o);
    o->table = c->table;
    o->split = c->split;
    o->pair_cost_path = c->pair_cost;
    o->exclude = c->exclude;
    o->max_tokens = c->max_tokens;
    o->checkpoint_hash = c->checkpoint_hash;
    o->cost_scale = c->cost_scale;
    return rtr_cost_model_parse(c->cost ? c->cost : "tokens", &o->cost_model);
}

void cli_print_json(cJSON *o) {
    char *text = cJSON_PrintUnformatted(o);
    if (text) puts(text);
    free(text);
    cJSON_Delete(o);
}

int cli_error(const char *cmd) {
    fprintf(stderr, "rtr %s: error: %s\n", cmd, rtr_last_error());
    return 1;
}
