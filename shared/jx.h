/* jx.h — JSON input for handlers: strict parsing and table-driven validation
 * (prefix jx_).
 *
 * DESIGN — jx_loadb parses with JSON_REJECT_DUPLICATES after a pure pre-pass
 * that turns every number token that jansson could not hold exactly (any
 * number with '.', 'e' or 'E', and integers outside int64) into a *marked
 * string*: a JSON string whose first byte is JX_NUM_MARK followed by the raw
 * token text.  So decimals never pass through a double: jx_number_text() gives
 * the exact text back, and dec_parse reads it.  Plain integers stay jansson
 * integers.  Ordinary string accessors treat a marked string as a number (a
 * type error for a string field).  Strings containing NUL (\u0000) and raw NUL
 * bytes are rejected by jx_loadb; the validators also refuse NUL in strings
 * built in code.
 *
 * Validation collects every problem into a jx_errs list ([{field, message}],
 * the `details` of a 422) instead of stopping at the first, so a client sees
 * all its mistakes at once.  Field paths look like "events[3].quantity".
 * All functions are pure (no I/O) and thread-safe.
 */
#ifndef ML_JX_H
#define ML_JX_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "dec.h"

#define JX_NUM_MARK '\x01'

/* Parses buf[0..len) (need not be NUL-terminated).  On error returns NULL and
 * writes a message naming the line and column (or the duplicate key) into
 * err.  An empty (or all-whitespace) body is an error, and so is a string
 * that begins with U+0001 (it would be mistaken for a marked number).  Top
 * level may be an object or an array. */
json_t *jx_loadb(const char *buf, size_t len, char *err, size_t errlen);

/* Raw text of a number value (integer or marked string), else NULL.  For an
 * integer it is formatted into buf (cap >= 24). */
const char *jx_number_text(const json_t *v, char *buf, size_t cap);
/* True for a plain JSON string (not a marked number) without NUL bytes. */
bool jx_is_string(const json_t *v);
/* json_dumps(v, flags), but every marked number is written back as the bare
 * number token it came from (use it, not json_dumps, to store or echo a
 * loaded value such as event properties).  free() the result; NULL on error. */
char *jx_dumps(const json_t *v, size_t flags);

/* ---- error list ------------------------------------------------------- */
typedef struct jx_errs jx_errs;
jx_errs *jx_errs_new(void);
void jx_errs_free(jx_errs *e); /* NULL ok */
size_t jx_errs_count(const jx_errs *e);
/* Adds {field, message}.  At most JX_ERRS_MAX are kept (the count keeps
 * growing).  Allocation failure is remembered and reported by jx_errs_json. */
#define JX_ERRS_MAX 1000
void jx_errs_add(jx_errs *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with the field built as prefix + name (prefix may be NULL or ""):
 * jx_errs_addp(e, "events[3]", "quantity", ...) names "events[3].quantity". */
void jx_errs_addp(jx_errs *e, const char *prefix, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* New reference to a JSON array [{"field": ..., "message": ...}, ...] of the
 * kept entries; NULL if an allocation failed (now or in an earlier add). */
json_t *jx_errs_json(const jx_errs *e);
/* True if a kept entry names prefix + name (joined as jx_errs_addp does).
 * Lets a rule a table cannot say skip a field the table already refused, so
 * a client sees each bad field once. */
bool jx_errs_hasp(const jx_errs *e, const char *prefix, const char *name);

/* ---- table-driven object validation ----------------------------------- */
typedef enum jx_type {
    JX_STRING,  /* plain string; min/max bound its length in UTF-8 code points
                   (each bound applies when > 0) */
    JX_DECIMAL, /* number or numeric string, parsed exactly by dec_parse;
                   min/max unused; JX_NONNEG rejects negatives */
    JX_INT,     /* JSON integer; min/max bound the value when max > min */
    JX_BOOL,
    JX_OBJECT,
    JX_ARRAY, /* min/max bound the number of elements (each when > 0) */
    JX_ANY,
} jx_type;

enum {
    JX_REQUIRED = 1 << 0, /* must be present (and not null unless JX_NULLABLE) */
    JX_NULLABLE = 1 << 1, /* null is accepted */
    JX_NONNEG = 1 << 2,   /* JX_DECIMAL / JX_INT: >= 0 */
};

typedef struct jx_field {
    const char *name;
    jx_type type;
    unsigned flags;
    long long min, max;
} jx_field;

/* Checks that v is an object, that it has no key outside spec (each unknown
 * key -> "unknown field"), that required fields are there, and each present
 * field's type and bounds.  spec ends with {NULL}.  Field names in errors are
 * prefix + "." + name (or just name when prefix is NULL/"").  If v is not an
 * object the error is on `prefix` (or "body").  Returns the number of errors
 * added. */
size_t jx_check(const json_t *v, const jx_field *spec, const char *prefix, jx_errs *e);

/* Accessors for already-checked objects.  Missing/null/wrong type -> NULL/def. */
const char *jx_str(const json_t *obj, const char *key);
/* Parses obj[key] (number or numeric string) into *out; returns DEC_OK,
 * a DEC_E* code, or 1 when the key is missing or null. */
int jx_dec(const json_t *obj, const char *key, dec_t *out);
long long jx_int(const json_t *obj, const char *key, long long def);
bool jx_bool(const json_t *obj, const char *key, bool def);

/* UTF-8 validation and code point count; returns -1 if s is not valid UTF-8. */
long long jx_utf8_len(const char *s, size_t len);

#endif
