/* embed.h — files compiled into the binary by cmake/Embed.cmake.
 *
 * A table ends with an entry whose name is NULL.  data is NUL-terminated and
 * lives for the whole process.
 */
#ifndef ML_EMBED_H
#define ML_EMBED_H
#include <stddef.h>

typedef struct ml_embedded {
    const char *name; /* path relative to the folder that embedded it */
    const char *data;
    size_t len;
} ml_embedded;

/* Returns the entry named name in table, or NULL. */
const ml_embedded *ml_embed_find(const ml_embedded *table, const char *name);

#endif
