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

/* A hint for JSON text that failed to parse at at (cJSON_GetErrorPtr; the
 * text ends at end): "NaN and Infinity are not JSON ..." when a NaN,
 * Infinity or -Infinity stands there (Python's json.dumps writes them for
 * float('nan') and float('inf')), "the object is not closed ..." when
 * only white space follows (a pretty-printed or cut object); "" otherwise,
 * so it can always follow a message. */
const char *rtr_json_error_hint(const char *at, const char *end);

/* cJSON_Parse of a whole file's text: NULL also when text other than white
 * space follows the value (cJSON_Parse stops after the first value, so a
 * catalog or config.json with a second object appended kept the first
 * silently). *why, on failure, is a phrase that can follow a message
 * (": more text after the JSON value, at line 3 (one JSON value per
 * file)", or rtr_json_error_hint's); "" on success. *line (when not NULL)
 * is the line where a value failed to parse, 0 otherwise (cJSON's error
 * position is a global that an empty text leaves stale). Not reentrant
 * across threads for *why. */
cJSON *rtr_json_parse(const char *text, const char **why, int *line);

#endif
