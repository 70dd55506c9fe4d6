/* The evaluation report: an HTML page with inline SVG plots and a markdown
 * summary, rendered from the JSON file `rtr eval` writes, and each plot as a
 * figure to reuse (SVG, CSV of its curves, PNG and PDF through rsvg-convert
 * when it is installed). docs/REPORT.md describes the page and the files. */
#ifndef RTR_REPORT_H
#define RTR_REPORT_H

#include "rtr/rtr.h"
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { RTR_COST_AXIS_AUTO, RTR_COST_AXIS_LINEAR, RTR_COST_AXIS_LOG } rtr_cost_axis;

typedef struct {
    const char *html_path;   /* the page (required) */
    const char *md_path;     /* the markdown summary; NULL: none */
    /* A directory (created when missing) for the figures: per plot NAME.svg,
     * NAME.csv and, when rsvg-convert is on PATH, NAME.png and NAME.pdf; the
     * page links them by their path relative to the page. NULL: none. */
    const char *figures_dir;
    rtr_cost_axis cost_axis; /* AUTO: logarithmic when costs span more than a decade */
    /* Set by the call: whether PNG and PDF were written (false when
     * rsvg-convert is not installed or no figures were asked for). */
    bool wrote_png_pdf;
} rtr_report_options;

/* Render eval_json (docs/ROUTING.md, "Evaluation file"; intervals as in
 * docs/REPORT.md) as o describes. Every file goes through a temporary name;
 * on failure the page and summary are not written. RTR_ERR_FORMAT naming
 * the file when it is not an evaluation file; RTR_ERR_IO when a file cannot
 * be written or rsvg-convert fails. */
RTR_API rtr_status rtr_report_render(const char *eval_json, rtr_report_options *o);

/* The page and (md_path not NULL) the summary only, default options. */
RTR_API rtr_status rtr_report_write(const char *html_path, const char *md_path, const char *eval_json);

#ifdef __cplusplus
}
#endif
#endif
