/* JSON helpers shared by the library's file writers (evaluation file, sweep
 * summary) and the CLI's --json summaries. Internal. */
#ifndef RTR_JSON_H
#define RTR_JSON_H

#include <cjson/cJSON.h>

/* Add a number, or null when it is NaN or infinite (JSON has no spelling
 * for them). */
void rtr_json_add_number(cJSON *o, const char *key, double v);

#endif
