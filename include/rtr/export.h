/* RTR_API marks the symbols librtr.so exports; everything else in the
 * library is built with hidden visibility. Programs using the library (and
 * the static archive the rtr binary and the tests link) see the same
 * declarations. */
#ifndef RTR_EXPORT_H
#define RTR_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define RTR_API __attribute__((visibility("default")))
#else
#define RTR_API
#endif

#endif
