/* `rtr report`: evaluation JSON -> self-contained HTML page, markdown
 * summary and the figures (rtr_report_render, docs/REPORT.md). */
#include "cli/args.h"
#include "rtr/report.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int cmd_report(int argc, char **argv) {
    const char *html = NULL, *md = NULL, *figures = NULL, *axis = "auto";
    bool no_figures = false;
    const rtr_opt opts[] = {
        {"out", RTR_OPT_STR, &html, "HTML page to write (default: EVAL with .html)"},
        {"markdown", RTR_OPT_STR, &md, "markdown summary to write (default: EVAL with .md)"},
        {"figures", RTR_OPT_STR, &figures, "directory for each plot as SVG, CSV, PNG, PDF (default: PAGE_figures)"},
        {"no-figures", RTR_OPT_FLAG, &no_figures, "write the page and the summary only"},
        {"cost-axis", RTR_OPT_STR, &axis, "auto, linear or log (auto: log when costs span more than a decade)"},
        {0},
    };
    const rtr_cmd_spec spec = {"report", "[options] EVAL.json",
                               "Render the evaluation file written by `rtr eval` as one self-contained HTML\n"
                               "page (every router's accuracy-versus-cost curve and operating point, the single\n"
                               "pairs, the mix of chosen pairs along lambda, calibration, intervals where the\n"
                               "file has them), a markdown summary, and each plot as a figure: SVG and a CSV\n"
                               "of its curves, PNG and PDF too when rsvg-convert (librsvg2-bin) is installed.",
                               opts, 1, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    rtr_report_options o = {0};
    if (!strcmp(axis, "auto")) o.cost_axis = RTR_COST_AXIS_AUTO;
    else if (!strcmp(axis, "linear")) o.cost_axis = RTR_COST_AXIS_LINEAR;
    else if (!strcmp(axis, "log")) o.cost_axis = RTR_COST_AXIS_LOG;
    else {
        fprintf(stderr, "rtr report: --cost-axis '%s': expected auto, linear or log\n", axis);
        return 2;
    }
    const char *in = a.pos[0];
    size_t n = strlen(in), stem = n > 5 && !strcmp(in + n - 5, ".json") ? n - 5 : n;
    char *h = html ? rtr_strdup(html) : rtr_sprintf("%.*s.html", (int)stem, in);
    char *m = md ? rtr_strdup(md) : rtr_sprintf("%.*s.md", (int)stem, in);
    size_t hl = h ? strlen(h) : 0, hstem = hl > 5 && !strcmp(h + hl - 5, ".html") ? hl - 5 : hl;
    char *f = no_figures ? NULL : figures ? rtr_strdup(figures) : h ? rtr_sprintf("%.*s_figures", (int)hstem, h) : NULL;
    o.html_path = h, o.md_path = m, o.figures_dir = f;
    rtr_status s = h && m && (f || no_figures) ? rtr_report_render(in, &o) : RTR_ERR_NOMEM;
    if (s) {
        fprintf(stderr, "rtr report: error: %s\n", rtr_last_error());
    } else if (a.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "html", h);
        cJSON_AddStringToObject(j, "markdown", m);
        if (f) {
            cJSON_AddStringToObject(j, "figures", f);
            const char *fmts[] = {"svg", "csv", "png", "pdf"};
            cJSON_AddItemToObject(j, "figure_formats", cJSON_CreateStringArray(fmts, o.wrote_png_pdf ? 4 : 2));
        } else {
            cJSON_AddNullToObject(j, "figures");
        }
        char *line = cJSON_PrintUnformatted(j);
        if (line) puts(line);
        free(line);
        cJSON_Delete(j);
    } else {
        printf("rtr report: %s, %s\n", h, m);
        if (f) printf("figures: %s/ (SVG and CSV%s)\n", f, o.wrote_png_pdf ? ", PNG and PDF" : "");
    }
    if (!s && f && !o.wrote_png_pdf)
        rtr_note("rsvg-convert not found, so the figures are SVG and CSV only (PNG and PDF: apt-get install "
                 "librsvg2-bin)");
    free(h);
    free(m);
    free(f);
    return s ? 1 : 0;
}
