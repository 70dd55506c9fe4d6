/* `rtr report`: evaluation JSON -> self-contained HTML page + markdown. */
#include "cli/args.h"
#include "rtr/report.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

int cmd_report(int argc, char **argv) {
    const char *html = NULL, *md = NULL;
    const rtr_opt opts[] = {
        {"out", RTR_OPT_STR, &html, "HTML page to write (default: EVAL with .html)"},
        {"markdown", RTR_OPT_STR, &md, "markdown summary to write (default: EVAL with .md)"},
        {0},
    };
    const rtr_cmd_spec spec = {"report", "[options] EVAL.json",
                               "Render the evaluation file written by `rtr eval` as one self-contained HTML\n"
                               "page (Pareto curves of RTR and every baseline, per-pair accuracy and cost, the\n"
                               "mix of chosen pairs along lambda, calibration) and a markdown summary.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *in = a.pos[0];
    size_t n = strlen(in);
    size_t stem = n > 5 && !strcmp(in + n - 5, ".json") ? n - 5 : n;
    char *h = html ? rtr_strdup(html) : rtr_sprintf("%.*s.html", (int)stem, in);
    char *m = md ? rtr_strdup(md) : rtr_sprintf("%.*s.md", (int)stem, in);
    rtr_status s = h && m ? rtr_report_write(in, h, m) : RTR_ERR_NOMEM;
    if (s) fprintf(stderr, "rtr report: error: %s\n", rtr_last_error());
    else if (a.json) printf("{\"html\":\"%s\",\"markdown\":\"%s\"}\n", h, m);
    else fprintf(stderr, "rtr report: %s, %s\n", h, m);
    free(h);
    free(m);
    return s ? 1 : 0;
}
