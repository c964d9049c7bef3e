/* uin_fast.h — the common POST /v1/usage body without jansson (prefix
 * uin_fast_).
 *
 * DESIGN — Most usage posts are one flat event of short ASCII strings:
 *   {"event_id":"…","customer_id":"…","metric":"…","quantity":"1.5"}
 * uin_fast_parse reads exactly that shape — one object of the known scalar
 * fields (event_id, customer_id, metric | event_type, quantity as a string
 * or a plain JSON number, timestamp | event_date), each at most once, string
 * values and keys of printable ASCII without escapes, no properties, no
 * nulls — and accepts it only when every field passes the rules uin_parse
 * applies (shared/uev.h).  Anything else is declined, and the caller takes
 * the full path (jx_loadb + uin_parse), which gives every malformed or
 * invalid body its usual answer.  So for any body the fast path yields the
 * event uin_parse would, or nothing.  Pure; out->ev's strings point into
 * out->buf.
 *
 * uin_fast_batch reads {"events": [ … ]} of 1..UIN_MAX_EVENTS such events
 * (nothing else in the object) the same way, into a uin_batch whose strings
 * live in one arena of the body's size: one pass, three allocations,
 * instead of a jansson tree with an allocation per value (most of the API's
 * time per batched event went there).
 */
#ifndef ML_UIN_FAST_H
#define ML_UIN_FAST_H
#include "uin.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UIN_FAST_MAX 1024 /* longer bodies take the full path */

typedef struct uin_fast {
    char buf[UIN_FAST_MAX]; /* the event's strings, NUL-terminated */
    uin_event ev;           /* properties NULL */
} uin_fast;

bool uin_fast_parse(const char *body, size_t len, int64_t now_us, uin_fast *out);

/* true with *out filled (free with uin_batch_free), or false with *out empty
 * (declined: the full path answers). */
bool uin_fast_batch(const char *body, size_t len, int64_t now_us, uin_batch *out);

#endif
