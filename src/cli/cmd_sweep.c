/* `rtr sweep CORPUS_DIR --out DIR`: the sweep stage (rtr_sweep_corpus,
 * src/route/sweep.c): the exact accuracy-versus-cost path over λ, its
 * Pareto front, the reference routers and metrics, into DIR/path.csv,
 * DIR/grid.csv (--grid), DIR/summary.json and DIR/plot.svg. The envelopes
 * behind the path are computed on a backend (--device). */
#include "cli/cli.h"
#include "rtr/stages.h"
#include "common/util.h"
#include "rtr/dist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* DIR/summary.json to stdout as sweep wrote it (rank 0 writes it; the
 * other ranks' stdout goes nowhere, docs/SCALING.md). */
static rtr_status print_summary(const char *out) {
    if (rtr_dist_rank() > 0) return RTR_OK;
    char *path = rtr_sprintf("%s/summary.json", out), buf[1 << 16];
    FILE *f = path ? fopen(path, "rb") : NULL;
    rtr_status st = !path ? RTR_ERR_NOMEM : f ? RTR_OK : rtr_fail(RTR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    for (size_t n; !st && (n = fread(buf, 1, sizeof buf, f)) > 0;) fwrite(buf, 1, n, stdout);
    if (f && ferror(f)) st = rtr_fail(RTR_ERR_IO, "%s: read error", path);
    if (f) fclose(f);
    if (!st) putchar('\n');
    free(path);
    return st;
}

int cmd_sweep(int argc, char **argv) {
    rtr_sweep_params sp = rtr_sweep_default_params();
    const char *out = NULL, *device = "auto";
    long grid = 0, threads = 0;
    cli_route cli = {.cost = "tokens"};
    const rtr_opt opts[] = {
        {"out", RTR_OPT_REQUIRED, &out, "output directory (path.csv, grid.csv, summary.json, plot.svg)"},
        {"grid", RTR_OPT_GRID, &grid, "also tabulate N evenly spaced lambdas in [0,1] (0: none)"},
        RTR_OPT_DEVICE(&device),
        CLI_OPT_THREADS(&threads),
        CLI_ROUTE_OPTS(cli),
        {0},
    };
    const rtr_cmd_spec spec = {"sweep", "CORPUS_DIR --out DIR",
                               "The exact accuracy-vs-cost path over lambda in [0,1]: one point per switch of\n"
                               "any query's choice, predicted and (with outcomes) realised, its Pareto front,\n"
                               "reference routers and AIQ/APGR/CPT metrics (docs/ROUTING.md). DIR appears whole\n"
                               "or not at all; an earlier sweep's DIR is replaced.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.pos[0];
    cli_set_threads(threads);
    sp.grid = grid;
    rtr_backend be = {0};
    rtr_sweep_summary s = {0};
    rtr_status st = cli_route_options(&cli, &sp.o);
    if (!st) st = cli_split("sweep", dir, cli.split, "every query is swept", &sp.o.split);
    if (!st) st = rtr_backend_init(&be, device);
    if (!st) st = rtr_sweep_corpus(&be, out, &s, dir, &sp);
    if (st) {
        rtr_backend_free(&be);
        return cli_error("sweep");
    }
    if (a.json) { /* the summary as written: the front grows with the path, so it is never held */
        st = print_summary(out);
    } else {
        printf("exact path on %s: %lld queries x %d pairs, %lld switches, %lld points, %lld on the Pareto front\n",
               be.device, (long long)s.n_queries, (int)s.k, (long long)s.n_switches, (long long)s.n_points,
               (long long)s.n_front);
        printf("lambda 0: accuracy %.4f cost %.6g   lambda 1: accuracy %.4f cost %.6g (%s)\n", s.acc0, s.cost0, s.acc1,
               s.cost1, s.realised ? "realised" : "predicted");
        if (s.best_single) {
            printf("best single %s: accuracy %.4f cost %.6g; oracle: accuracy %.4f cost %.6g\n", s.best_single,
                   s.best_acc, s.best_cost, s.oracle_acc, s.oracle_cost);
            char b[8][32]; /* a threshold never reached prints as never, a metric that does not exist as — */
            printf("AIQ %s (single pairs %s, x_max %s)  APGR %s  CPT50 %s  CPT80 %s  cost-to-match %s  oracle gap %s\n",
                   CLI_NUM(b[0], "%.4f", s.aiq), CLI_NUM(b[1], "%.4f", s.aiq_single), CLI_NUM(b[2], "%.6g", s.x_max),
                   CLI_NUM(b[3], "%.4f", s.apgr), cli_num(b[4], sizeof b[4], "%.4f", s.cpt50, "never"),
                   cli_num(b[5], sizeof b[5], "%.4f", s.cpt80, "never"),
                   cli_num(b[6], sizeof b[6], "%.4f", s.cost_to_match, "never"), CLI_NUM(b[7], "%.4f", s.oracle_gap));
        }
        printf("wrote %s/{path.csv,%ssummary.json,plot.svg}\n", out, grid > 0 ? "grid.csv," : "");
    }
    rtr_sweep_summary_free(&s);
    rtr_backend_free(&be);
    return st ? cli_error("sweep") : 0;
}
