/* The evaluation report: an HTML page with inline SVG plots and a markdown
 * summary, rendered from the JSON file `rtr eval` writes. */
#ifndef RTR_REPORT_H
#define RTR_REPORT_H

#include "rtr/rtr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Render eval_json (docs/ROUTING.md, "Evaluation file") to html_path and,
 * when md_path is not NULL, md_path; both written through temporary names.
 * RTR_ERR_FORMAT naming the file when it is not an evaluation file. */
RTR_API rtr_status rtr_report_write(const char *eval_json, const char *html_path, const char *md_path);

#ifdef __cplusplus
}
#endif
#endif
