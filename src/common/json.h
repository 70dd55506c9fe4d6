/* JSON helpers shared by the library's file writers (evaluation file, sweep
 * summary) and the CLI's --json summaries. Internal. */
#ifndef RTR_JSON_H
#define RTR_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* Add a number, or null when it is NaN or infinite (JSON has no spelling
 * for them). */
void rtr_json_add_number(cJSON *o, const char *key, double v);

/* The first key that appears twice among obj's members (cJSON would
 * silently keep the first value), or NULL. */
const char *rtr_json_duplicate_key(const cJSON *obj);

/* A JSON number that is an integer within ±2^53 (not 1.5, not 1e300). */
bool rtr_json_integer(const cJSON *v, int64_t *out);

#endif
