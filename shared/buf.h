/* buf.h — growable byte buffer (prefix buf_).
 *
 * DESIGN — A buf owns a heap block that always stays NUL-terminated.  Appends
 * never fail silently: on allocation failure the buffer enters a sticky error
 * state (buf->oom), further appends are no-ops, and the caller checks once at
 * the end.  Not thread-safe; one owner at a time.
 */
#ifndef ML_BUF_H
#define ML_BUF_H
#include <stddef.h>
#include <stdbool.h>

typedef struct buf {
    char *p;
    size_t len, cap;
    bool oom;
} buf;

void buf_init(buf *b);
void buf_free(buf *b); /* back to empty; NULL-safe */
bool buf_reserve(buf *b, size_t extra);
void buf_add(buf *b, const void *p, size_t n);
void buf_adds(buf *b, const char *s);
void buf_addc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as JSON string contents (no quotes), escaping ", \ and controls. */
void buf_add_json_escaped(buf *b, const char *s, size_t n);
/* Takes ownership of the block (never NULL unless oom); b becomes empty. */
char *buf_steal(buf *b, size_t *len);

#endif
