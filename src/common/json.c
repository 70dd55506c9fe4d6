/* JSON helpers (json.h). */
#include "common/json.h"

#include <math.h>

void rtr_json_add_number(cJSON *o, const char *key, double v) {
    if (isnan(v) || isinf(v)) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, v);
}
