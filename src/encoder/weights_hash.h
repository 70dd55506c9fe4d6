/* The encoder's weights hash (rtr_hash64, FNV-1a from RTR_FNV_SEED, over
 * the tensor bytes of model.safetensors) without hashing a large file again
 * in every process: the value is kept in a small cache file per weights file,
 * keyed by the file's identity and change stamps. */
#ifndef RTR_ENCODER_WEIGHTS_HASH_H
#define RTR_ENCODER_WEIGHTS_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The hash of data[0..n), the bytes of the file at path. At n >= min_cached
 * it comes from the cache entry of that file when the entry's key still
 * matches: device, inode, size, mtime and ctime (nanoseconds), and n. Any
 * write to the file moves its mtime and ctime, and ctime cannot be set back
 * by a user, so a matching entry is the hash of the bytes there now;
 * otherwise the bytes are hashed and the entry written (temporary name,
 * then rename; only when the file did not change while it was hashed).
 * The cache folder is $RTR_CACHE_DIR, else $XDG_CACHE_HOME/rtr, else
 * $HOME/.cache/rtr; one that cannot be read or written only costs the
 * hashing. *from_cache (may be NULL) says whether the entry was used. */
uint64_t rtr_weights_hash(const char *path, const void *data, size_t n, size_t min_cached, int *from_cache);

#endif
