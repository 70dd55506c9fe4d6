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

/* A hint for JSON text that failed to parse at at (cJSON_ParseWithOpts's end; the
 * text starts at text, NULL when unknown, and ends at end): "lone UTF-16
 * surrogate \ud800 (...)" for a \u escape of half a surrogate pair (cJSON
 * cannot turn it into UTF-8), "nesting deeper than 1000 arrays and
 * objects" (CJSON_NESTING_LIMIT), "NaN and Infinity are not JSON ..." when
 * a NaN, Infinity or -Infinity stands there (Python's json.dumps writes
 * them for float('nan') and float('inf')), "the object is not closed ..."
 * when only white space follows (a pretty-printed or cut object); ""
 * otherwise, so it can always follow a message. The text may be in a
 * thread-local buffer, valid until the thread's next call. */
const char *rtr_json_error_hint(const char *text, const char *at, const char *end);

/* The first \u escape inside a string of the JSON text [text, end) that
 * is not followed by 4 hex digits (its backslash), or NULL. cJSON 1.7.15
 * decodes one as U+0000, ending the string there ("a\uzzzzb" read as "a"),
 * so a parse that succeeded must be checked with it. */
const char *rtr_json_bad_escape(const char *text, const char *end);

/* The first escape \u0000 in the JSON text (its backslash), or NULL: cJSON
 * decodes it to a NUL byte and the string ends there, so two distinct
 * names or ids could become one. An escape is a backslash preceded by an
 * even number of backslashes. For texts of names (outcome lines, the
 * catalog); a model's tokenizer files may hold any string. */
const char *rtr_json_escaped_nul(const char *text);

/* cJSON_Parse of a whole file's text: NULL also when text other than white
 * space follows the value (cJSON_Parse stops after the first value, so a
 * catalog or config.json with a second object appended kept the first
 * silently). *why, on failure, is a phrase that can follow a message
 * (" at line 3, column 17: lone UTF-16 surrogate \ud800 (...)", with
 * rtr_json_error_hint's words when it has some, or "\\u is not followed by
 * 4 hex digits" (rtr_json_bad_escape; cJSON took it); ": more text after the
 * JSON value, at line 3 (one JSON value per file)"; ": the file is
 * empty ..."); "" on success. *line (when not NULL) is the line where a
 * value failed to parse, 0 otherwise (cJSON's error position is a global
 * that an empty text leaves stale). Not reentrant across threads for *why. */
cJSON *rtr_json_parse(const char *text, const char **why, int *line);

#endif
