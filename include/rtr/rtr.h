/* rtr — public API root: status codes and error reporting shared by every
 * module. Library functions return an rtr_status (or NULL) and leave a
 * human-readable message, naming the file/line/field at fault, retrievable
 * with rtr_last_error(); only the CLI and the tests exit. */
#ifndef RTR_RTR_H
#define RTR_RTR_H

#include "rtr/export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RTR_VERSION_STRING "0.1.0"

typedef enum {
    RTR_OK = 0,
    RTR_ERR_IO,          /* a file could not be opened, read, written or renamed */
    RTR_ERR_FORMAT,      /* input that does not parse or breaks the schema       */
    RTR_ERR_INVALID,     /* an argument or value out of its allowed range        */
    RTR_ERR_NOMEM,       /* an allocation failed                                  */
    RTR_ERR_EXISTS,      /* refusing to overwrite existing output                 */
    RTR_ERR_UNSUPPORTED, /* valid but not handled (architecture, schema version)  */
    RTR_ERR_NUMERIC,     /* NaN/inf produced or found where a number is needed    */
    RTR_ERR_DEVICE       /* accelerator unavailable or a device call failed       */
} rtr_status;

/* Short name of a status ("io", "format", ...). Static storage. */
RTR_API const char *rtr_status_name(rtr_status s);

/* Message of the last failure on this thread. Valid until the next failing
 * call on the same thread; never NULL (empty when nothing failed). */
RTR_API const char *rtr_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
