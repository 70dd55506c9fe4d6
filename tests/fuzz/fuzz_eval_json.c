/* libFuzzer harness: evaluation files (`rtr eval` output) rendered by
 * rtr_report_write, what `rtr report` runs. An accepted file gives both the
 * HTML page and the markdown summary; a refused one leaves neither. */
#include "fuzz_common.h"
#include "rtr/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char in[512], html[512], md[512];
    fuzz_path(in, "eval.json");
    fuzz_path(html, "eval.html");
    fuzz_path(md, "eval.md");
    fuzz_write(in, data, size);
    rtr_status st = rtr_report_write(html, md, in);
    if (st != RTR_OK) fuzz_refused("eval.json");
    if (st == RTR_OK)
        FUZZ_ASSERT(access(html, F_OK) == 0 && access(md, F_OK) == 0, "report accepted but wrote no page");
    else
        FUZZ_ASSERT(access(html, F_OK) != 0 && access(md, F_OK) != 0, "report refused but left a page");
    FUZZ_ASSERT(!fuzz_has_tmp(fuzz_root()), "report left a temporary");
    remove(html);
    remove(md);
    return 0;
}
