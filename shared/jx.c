/* jx.c — strict JSON input and table-driven validation.  See jx.h.
 *
 * DESIGN — Three parts, all pure (no I/O, no globals, thread-safe):
 *
 * 1. A pre-pass tokenizer (jx_scan_*) walks the raw body the way jansson's
 *    lexer does — strings with their escapes, the JSON number grammar, and a
 *    bit stack of open containers — and finds the number tokens jansson could
 *    not hold exactly: any number with a fraction or an exponent, and integers
 *    outside int64.  Each is rewritten as "\u0001<token>" (a *marked string*)
 *    and the copy is parsed with JSON_REJECT_DUPLICATES.
 *    Invariant: the rewritten text is valid JSON iff the original is (save for
 *    the int64/double overflows we exist to avoid).  A token is rewritten only
 *    in value position (after '[' , ':' or an array's ',') and only when the
 *    next significant byte is ',' ']' '}' or end of input, so a rewrite can
 *    never turn a number into an object key, and anything malformed is left
 *    untouched for jansson to reject with its own message.  Errors from the
 *    rewritten copy have their position mapped back to the original text and
 *    line/column recomputed the way jansson counts them (columns in code
 *    points).  A string that itself begins with U+0001 is refused, so after
 *    jx_loadb a leading 0x01 always means "number we marked".  A raw NUL
 *    byte is refused too (jansson 2.14 silently skips one after a token).
 *
 * 2. jx_errs: a bounded list of {field, message}; strings are copied as valid
 *    UTF-8 and capped in length so a hostile body cannot make the 422 reply
 *    unbounded.  Allocation failures are sticky and reported by jx_errs_json.
 *
 * 3. jx_check and the accessors read jansson values, treating marked strings
 *    as numbers and never converting anything to double.
 */
#include "fmacros.h"
#include "jx.h"
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>

#define JX_FIELD_MAX 256 /* bytes kept of a field path in an error */
#define JX_MSG_MAX   512 /* bytes kept of an error message */
#define JX_KEY_SHOW  64  /* bytes of a duplicate key quoted in the message */
#define JX_MARK_PRE  7   /* strlen("\"\\u0001") */
#define JX_MARK_ADD  8   /* bytes a rewrite adds: prefix + closing quote */

/* ---- small lexical helpers -------------------------------------------- */

static bool jx_isdigit(char c) { return c >= '0' && c <= '9'; }
static bool jx_isws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Length of the JSON number token at p[0..n) (greedy, as jansson scans it),
 * or 0 if the bytes there are not a valid number.  *is_int tells whether it
 * has neither fraction nor exponent. */
static size_t jx_num_len(const char *p, size_t n, bool *is_int) {
    size_t i = 0;
    bool integer = true;
    if (i < n && p[i] == '-') i++;
    if (i >= n || !jx_isdigit(p[i])) return 0;
    if (p[i] == '0') {
        i++;
        if (i < n && jx_isdigit(p[i])) return 0; /* "01": invalid */
    } else {
        while (i < n && jx_isdigit(p[i])) i++;
    }
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n || !jx_isdigit(p[i])) return 0; /* "1." */
        while (i < n && jx_isdigit(p[i])) i++;
        integer = false;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-')) i++;
        if (i >= n || !jx_isdigit(p[i])) return 0; /* "1e", "1e+" */
        while (i < n && jx_isdigit(p[i])) i++;
        integer = false;
    }
    if (is_int) *is_int = integer;
    return i;
}

/* True when p[0..n) is exactly one JSON number token. */
static bool jx_is_numtext(const char *p, size_t n) { return n > 0 && jx_num_len(p, n, NULL) == n; }

/* Does the valid integer token p[0..n) fit in int64 (json_int_t)? */
static bool jx_int_fits(const char *p, size_t n) {
    bool neg = p[0] == '-';
    const char *d = p + neg;
    size_t nd = n - neg;
    const char *lim = neg ? "9223372036854775808" : "9223372036854775807";
    if (nd != 19) return nd < 19;
    return memcmp(d, lim, 19) <= 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid there
 * (overlongs, surrogates and code points above U+10FFFF are invalid). */
static size_t jx_utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

long long jx_utf8_len(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    long long count = 0;
    size_t i = 0;
    if (len > 0 && s == NULL) return -1;
    while (i < len) {
        size_t k = jx_utf8_seq(u + i, len - i);
        if (k == 0) return -1;
        i += k;
        count++;
    }
    return count;
}

/* ---- pre-pass tokenizer ----------------------------------------------- */

enum { JX_TOK_END = 0, JX_TOK_NUM, JX_TOK_MARKSTR };

/* Containers deeper than this are never rewritten: jansson refuses a value
 * at depth > JSON_PARSER_MAX_DEPTH, and leaving the token alone keeps its
 * error message identical. */
#define JX_SCAN_DEPTH JSON_PARSER_MAX_DEPTH

typedef struct jx_scan {
    const char *buf;
    size_t len, pos;
    size_t depth;                               /* open containers */
    unsigned char obj[(JX_SCAN_DEPTH + 7) / 8]; /* bit d-1: container d is an object */
    char prev;                                  /* last significant byte outside strings */
} jx_scan;

static void jx_scan_init(jx_scan *s, const char *buf, size_t len) {
    memset(s, 0, sizeof *s);
    s->buf = buf;
    s->len = len;
}

/* Is the innermost open container an object?  Only meaningful while depth
 * is within the tracked range. */
static bool jx_scan_top_is_obj(const jx_scan *s) {
    size_t d = s->depth - 1;
    return (s->obj[d / 8] >> (d % 8)) & 1;
}

/* Next token of interest: JX_TOK_NUM (a number to mark; *start and *n give the
 * token) or JX_TOK_MARKSTR (a string whose content begins with the escape
 * \u0001; *start is its opening quote), or JX_TOK_END. */
static int jx_scan_next(jx_scan *s, size_t *start, size_t *n) {
    const char *b = s->buf;
    while (s->pos < s->len) {
        char c = b[s->pos];
        if (jx_isws(c)) {
            s->pos++;
        } else if (c == '"') {
            size_t i = s->pos + 1;
            bool marked = s->len - i >= 6 && memcmp(b + i, "\\u0001", 6) == 0;
            size_t at = s->pos;
            while (i < s->len && b[i] != '"') i += b[i] == '\\' ? 2 : 1;
            s->pos = i < s->len ? i + 1 : s->len;
            s->prev = '"';
            if (marked) {
                *start = at;
                *n = s->pos - at;
                return JX_TOK_MARKSTR;
            }
        } else if (c == '{' || c == '[') {
            s->depth++;
            if (s->depth <= JX_SCAN_DEPTH) {
                size_t d = s->depth - 1;
                if (c == '{')
                    s->obj[d / 8] |= (unsigned char)(1u << (d % 8));
                else
                    s->obj[d / 8] &= (unsigned char)~(1u << (d % 8));
            }
            s->prev = c;
            s->pos++;
        } else if (c == '}' || c == ']') {
            if (s->depth > 0) s->depth--;
            s->prev = c;
            s->pos++;
        } else if (c == '-' || jx_isdigit(c)) {
            bool is_int = true;
            size_t at = s->pos;
            size_t k = jx_num_len(b + at, s->len - at, &is_int);
            bool value_pos, ends_value;
            size_t j;
            if (k == 0) { /* malformed: jansson rejects it */
                s->prev = c;
                s->pos++;
                continue;
            }
            value_pos = s->depth >= 1 && s->depth < JX_SCAN_DEPTH &&
                        (s->prev == '[' || (s->prev == ':' && jx_scan_top_is_obj(s)) ||
                         (s->prev == ',' && !jx_scan_top_is_obj(s)));
            j = at + k;
            while (j < s->len && jx_isws(b[j])) j++;
            ends_value = j == s->len || b[j] == ',' || b[j] == ']' || b[j] == '}';
            s->pos = at + k;
            s->prev = b[s->pos - 1];
            if (value_pos && ends_value && (!is_int || !jx_int_fits(b + at, k))) {
                *start = at;
                *n = k;
                return JX_TOK_NUM;
            }
        } else {
            s->prev = c;
            s->pos++;
        }
    }
    return JX_TOK_END;
}

/* Maps a byte offset in the rewritten text back to the original. */
static size_t jx_map_pos(const char *buf, size_t len, size_t p) {
    jx_scan s;
    size_t o, n, shift = 0;
    int t;
    jx_scan_init(&s, buf, len);
    while ((t = jx_scan_next(&s, &o, &n)) != JX_TOK_END) {
        size_t r;
        if (t != JX_TOK_NUM) continue;
        r = o + shift;
        if (p <= r) return p - shift;
        if (p < r + n + JX_MARK_ADD) {
            size_t off = p - r;
            if (off <= JX_MARK_PRE) return o;
            off -= JX_MARK_PRE;
            return o + (off < n ? off : n);
        }
        shift += JX_MARK_ADD;
    }
    return p - shift;
}

/* Line and column after consuming buf[0..q), counted as jansson does:
 * lines from 1, columns in code points (first bytes of UTF-8 sequences). */
static void jx_linecol(const char *buf, size_t q, int *line, int *col) {
    int l = 1, c = 0;
    for (size_t i = 0; i < q; i++) {
        unsigned char u = (unsigned char)buf[i];
        if (u == '\n') {
            l++;
            c = 0;
        } else if (u < 0x80 || (u >= 0xC2 && u <= 0xF4)) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* Start of the string token of buf that ends (closing quote included) at
 * offset end, or end if none does. */
static size_t jx_string_ending_at(const char *buf, size_t len, size_t end) {
    size_t i = 0;
    while (i < len && i < end) {
        if (buf[i] == '"') {
            size_t st = i++;
            while (i < len && buf[i] != '"') i += buf[i] == '\\' ? 2 : 1;
            if (i < len) i++;
            if (i == end) return st;
        } else {
            i++;
        }
    }
    return end;
}

/* Copies s[0..n) into out (cap > 0) cut at a UTF-8 boundary to at most max
 * bytes, with "..." when cut.  Returns out. */
static char *jx_clip(char *out, size_t cap, const char *s, size_t n, size_t max) {
    size_t i = 0;
    bool cut = false;
    if (max + 4 > cap) max = cap > 4 ? cap - 4 : 0;
    while (i < n) {
        size_t k = jx_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) k = 1;
        if (i + k > max) {
            cut = true;
            break;
        }
        i += k;
    }
    memcpy(out, s, i);
    if (cut) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

static void jx_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void jx_seterr(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    if (!err || errlen == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Writes the message for a jansson failure on text (the rewritten copy when
 * rewritten is true) back in terms of the original buffer. */
static void jx_report(const char *orig, size_t len, bool rewritten, const json_error_t *je,
                      char *err, size_t errlen) {
    int line = je->line, col = je->column;
    size_t q;
    if (je->line < 0 || je->position < 0) { /* e.g. out of memory */
        jx_seterr(err, errlen, "%s", je->text);
        return;
    }
    q = rewritten ? jx_map_pos(orig, len, (size_t)je->position) : (size_t)je->position;
    if (q > len) q = len;
    if (rewritten) jx_linecol(orig, q, &line, &col);
    if (json_error_code(je) == json_error_duplicate_key) {
        /* jansson stops right after the key; quote it from the original. */
        size_t st = jx_string_ending_at(orig, len, q);
        char key[JX_KEY_SHOW + 8];
        if (st < q) {
            jx_clip(key, sizeof key, orig + st, q - st, JX_KEY_SHOW);
            jx_seterr(err, errlen, "duplicate object key %s at line %d column %d", key, line, col);
            return;
        }
    }
    if (json_error_code(je) == json_error_null_character)
        jx_seterr(err, errlen, "a string may not contain \\u0000 at line %d column %d", line, col);
    else
        jx_seterr(err, errlen, "%s at line %d column %d", je->text, line, col);
}

json_t *jx_loadb(const char *buf, size_t len, char *err, size_t errlen) {
    jx_scan s;
    json_error_t je;
    json_t *root;
    char *copy = NULL;
    const char *nul;
    size_t o, n, nums = 0, w = 0, from = 0, markstr = SIZE_MAX, i;
    int t;

    if (err && errlen) err[0] = '\0';
    if (!buf) len = 0;
    for (i = 0; i < len && jx_isws(buf[i]); i++) {
    }
    if (i == len) {
        jx_seterr(err, errlen, "empty body");
        return NULL;
    }

    /* Pass 1: count rewrites; note the first string starting with U+0001. */
    jx_scan_init(&s, buf, len);
    while ((t = jx_scan_next(&s, &o, &n)) != JX_TOK_END) {
        if (t == JX_TOK_NUM)
            nums++;
        else if (markstr == SIZE_MAX)
            markstr = o;
    }

    if (nums > 0) {
        /* Pass 2: copy with every marked token wrapped in "\u0001...". */
        if (len > (SIZE_MAX - 1) / 9 || !(copy = malloc(len + nums * JX_MARK_ADD + 1))) {
            jx_seterr(err, errlen, "out of memory");
            return NULL;
        }
        jx_scan_init(&s, buf, len);
        while ((t = jx_scan_next(&s, &o, &n)) != JX_TOK_END) {
            if (t != JX_TOK_NUM) continue;
            memcpy(copy + w, buf + from, o - from);
            w += o - from;
            memcpy(copy + w, "\"\\u0001", JX_MARK_PRE);
            w += JX_MARK_PRE;
            memcpy(copy + w, buf + o, n);
            w += n;
            copy[w++] = '"';
            from = o + n;
        }
        memcpy(copy + w, buf + from, len - from);
        w += len - from;
        copy[w] = '\0';
    }

    root = json_loadb(copy ? copy : buf, copy ? w : len, JSON_REJECT_DUPLICATES, &je);
    free(copy);
    if (!root) {
        jx_report(buf, len, nums > 0, &je, err, errlen);
        return NULL;
    }
    /* jansson skips a raw NUL after some tokens ("[1\0]" loads): refuse it. */
    if ((nul = memchr(buf, '\0', len)) != NULL) {
        int line, col;
        jx_linecol(buf, (size_t)(nul - buf) + 1, &line, &col);
        json_decref(root);
        jx_seterr(err, errlen, "NUL byte at line %d column %d", line, col);
        return NULL;
    }
    if (markstr != SIZE_MAX) {
        int line, col;
        jx_linecol(buf, markstr + 1, &line, &col);
        json_decref(root);
        jx_seterr(err, errlen, "a string may not begin with U+0001 at line %d column %d", line,
                  col);
        return NULL;
    }
    return root;
}

/* ---- values ----------------------------------------------------------- */

/* If v is a marked number, its token text (NUL-terminated) and length. */
static const char *jx_marked(const json_t *v, size_t *n) {
    const char *s;
    size_t len;
    if (!json_is_string(v)) return NULL;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len < 2 || s[0] != JX_NUM_MARK || !jx_is_numtext(s + 1, len - 1)) return NULL;
    if (n) *n = len - 1;
    return s + 1;
}

const char *jx_number_text(const json_t *v, char *buf, size_t cap) {
    const char *m = jx_marked(v, NULL);
    if (m) return m;
    if (json_is_integer(v)) {
        assert(buf && cap >= 24);
        if (!buf || cap < 24) return NULL;
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return NULL;
}

bool jx_is_string(const json_t *v) {
    return json_is_string(v) && !jx_marked(v, NULL) &&
           strlen(json_string_value(v)) == json_string_length(v);
}

/* Decimal value of a number or numeric string: DEC_OK, a DEC_E* code, or 1
 * when v has no decimal reading at all (null, bool, object, double...). */
static int jx_dec_of(const json_t *v, dec_t *out) {
    char tmp[32];
    size_t n;
    const char *m = jx_marked(v, &n);
    if (m) return dec_parse(out, m, n);
    if (json_is_integer(v)) {
        m = jx_number_text(v, tmp, sizeof tmp);
        return dec_parse(out, m, strlen(m));
    }
    if (json_is_string(v)) {
        if (!jx_is_string(v)) return DEC_ESYNTAX; /* NUL inside */
        return dec_parse(out, json_string_value(v), json_string_length(v));
    }
    return 1;
}

const char *jx_str(const json_t *obj, const char *key) {
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return jx_is_string(v) ? json_string_value(v) : NULL;
}

int jx_dec(const json_t *obj, const char *key, dec_t *out) {
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    int rc;
    if (!v || json_is_null(v)) return 1;
    rc = jx_dec_of(v, out);
    return rc == 1 ? DEC_ESYNTAX : rc;
}

long long jx_int(const json_t *obj, const char *key, long long def) {
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

bool jx_bool(const json_t *obj, const char *key, bool def) {
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_boolean(v) ? json_is_true(v) : def;
}

char *jx_dumps(const json_t *v, size_t flags) {
    char *s = json_dumps(v, flags);
    size_t r = 0, w = 0, len;
    if (!s) return NULL;
    len = strlen(s);
    /* Compact in place: every "\u0001<number>" becomes <number>. */
    while (r < len) {
        if (s[r] != '"') {
            s[w++] = s[r++];
            continue;
        }
        size_t st = r++;
        while (r < len && s[r] != '"') r += s[r] == '\\' ? 2 : 1;
        r = r < len ? r + 1 : len;
        if (r - st > JX_MARK_ADD && memcmp(s + st, "\"\\u0001", JX_MARK_PRE) == 0 &&
            jx_is_numtext(s + st + JX_MARK_PRE, r - st - JX_MARK_ADD)) {
            memmove(s + w, s + st + JX_MARK_PRE, r - st - JX_MARK_ADD);
            w += r - st - JX_MARK_ADD;
        } else {
            memmove(s + w, s + st, r - st);
            w += r - st;
        }
    }
    s[w] = '\0';
    return s;
}

/* ---- error list ------------------------------------------------------- */

typedef struct jx_err {
    char *field, *msg;
} jx_err;

struct jx_errs {
    size_t count;  /* every error ever added */
    size_t n, cap; /* kept (n <= JX_ERRS_MAX) */
    jx_err *v;
    bool oom;
};

jx_errs *jx_errs_new(void) { return calloc(1, sizeof(jx_errs)); }

void jx_errs_free(jx_errs *e) {
    if (!e) return;
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].field);
        free(e->v[i].msg);
    }
    free(e->v);
    free(e);
}

size_t jx_errs_count(const jx_errs *e) { return e ? e->count : 0; }

/* Heap copy of s as valid UTF-8 (invalid bytes -> '?'), at most max bytes
 * plus "..." when cut. */
static char *jx_clean_dup(const char *s, size_t max) {
    size_t n = strlen(s), i = 0, w = 0;
    char *out = malloc((n < max ? n : max) + 4);
    if (!out) return NULL;
    while (i < n) {
        size_t k = jx_utf8_seq((const unsigned char *)s + i, n - i);
        if (w + (k ? k : 1) > max) {
            memcpy(out + w, "...", 3);
            w += 3;
            break;
        }
        if (k == 0) {
            out[w++] = '?';
            i++;
        } else {
            memcpy(out + w, s + i, k);
            w += k;
            i += k;
        }
    }
    out[w] = '\0';
    return out;
}

static void jx_errs_put(jx_errs *e, const char *prefix, const char *name, const char *fmt,
                        va_list ap) {
    /* Staging wider than what is kept, so the UTF-8-aware clip decides the cut. */
    char field[JX_FIELD_MAX + 16], msg[JX_MSG_MAX + 16];
    jx_err it;
    assert(e);
    if (!e) return;
    e->count++;
    if (e->n >= JX_ERRS_MAX) return;
    if (e->n == e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 8;
        jx_err *nv;
        if (nc > JX_ERRS_MAX) nc = JX_ERRS_MAX;
        nv = realloc(e->v, nc * sizeof *nv);
        if (!nv) {
            e->oom = true;
            return;
        }
        e->v = nv;
        e->cap = nc;
    }
    if (!prefix) prefix = "";
    if (!name) name = "";
    snprintf(field, sizeof field, "%s%s%s", prefix, prefix[0] && name[0] ? "." : "", name);
    vsnprintf(msg, sizeof msg, fmt, ap);
    it.field = jx_clean_dup(field, JX_FIELD_MAX);
    it.msg = jx_clean_dup(msg, JX_MSG_MAX);
    if (!it.field || !it.msg) {
        free(it.field);
        free(it.msg);
        e->oom = true;
        return;
    }
    e->v[e->n++] = it;
}

void jx_errs_add(jx_errs *e, const char *field, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    jx_errs_put(e, NULL, field, fmt, ap);
    va_end(ap);
}

void jx_errs_addp(jx_errs *e, const char *prefix, const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    jx_errs_put(e, prefix, name, fmt, ap);
    va_end(ap);
}

bool jx_errs_hasp(const jx_errs *e, const char *prefix, const char *name) {
    if (!e) return false;
    if (!prefix) prefix = "";
    if (!name) name = "";
    size_t pl = strlen(prefix);
    bool dot = prefix[0] && name[0];
    for (size_t i = 0; i < e->n; i++) {
        const char *f = e->v[i].field;
        if (strncmp(f, prefix, pl) != 0) continue;
        f += pl;
        if (dot && *f++ != '.') continue;
        if (strcmp(f, name) == 0) return true;
    }
    return false;
}

json_t *jx_errs_json(const jx_errs *e) {
    json_t *arr;
    if (!e || e->oom) return NULL;
    if (!(arr = json_array())) return NULL;
    for (size_t i = 0; i < e->n; i++) {
        json_t *o = json_object();
        if (!o || json_object_set_new(o, "field", json_string(e->v[i].field)) ||
            json_object_set_new(o, "message", json_string(e->v[i].msg)) ||
            json_array_append_new(arr, o)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* ---- table-driven validation ------------------------------------------ */

/* Checks one present, non-null value against its spec entry; adds at most
 * one error. */
static void jx_check_value(const json_t *v, const jx_field *f, const char *prefix, jx_errs *e) {
    const char *nm = f->name;
    switch (f->type) {
    case JX_STRING: {
        long long cp;
        if (!jx_is_string(v)) {
            jx_errs_addp(e, prefix, nm, "must be a string");
            return;
        }
        cp = jx_utf8_len(json_string_value(v), json_string_length(v));
        if (cp < 0)
            jx_errs_addp(e, prefix, nm, "must be valid UTF-8");
        else if (f->min > 0 && cp < f->min)
            jx_errs_addp(e, prefix, nm, "must be at least %lld characters", f->min);
        else if (f->max > 0 && cp > f->max)
            jx_errs_addp(e, prefix, nm, "must be at most %lld characters", f->max);
        return;
    }
    case JX_DECIMAL: {
        dec_t d;
        int rc = jx_dec_of(v, &d);
        if (rc == DEC_EOVERFLOW)
            jx_errs_addp(e, prefix, nm, "has too many digits (at most %d)", DEC_MAX_DIGITS);
        else if (rc == DEC_ESCALE)
            jx_errs_addp(e, prefix, nm, "has too many decimal places (at most %d)", DEC_MAX_SCALE);
        else if (rc != DEC_OK)
            jx_errs_addp(e, prefix, nm, "must be a decimal number");
        else if ((f->flags & JX_NONNEG) && d.c < 0)
            jx_errs_addp(e, prefix, nm, "must not be negative");
        return;
    }
    case JX_INT: {
        long long x;
        size_t n;
        const char *m = jx_marked(v, &n);
        if (!json_is_integer(v)) {
            bool is_int = false;
            if (m) jx_num_len(m, n, &is_int);
            if (is_int) /* an integer outside int64 */
                jx_errs_addp(e, prefix, nm, "is out of range");
            else
                jx_errs_addp(e, prefix, nm, "must be an integer");
            return;
        }
        x = (long long)json_integer_value(v);
        if (f->max > f->min && (x < f->min || x > f->max))
            jx_errs_addp(e, prefix, nm, "must be between %lld and %lld", f->min, f->max);
        else if ((f->flags & JX_NONNEG) && x < 0)
            jx_errs_addp(e, prefix, nm, "must not be negative");
        return;
    }
    case JX_BOOL:
        if (!json_is_boolean(v)) jx_errs_addp(e, prefix, nm, "must be a boolean");
        return;
    case JX_OBJECT:
        if (!json_is_object(v)) jx_errs_addp(e, prefix, nm, "must be an object");
        return;
    case JX_ARRAY: {
        long long sz;
        if (!json_is_array(v)) {
            jx_errs_addp(e, prefix, nm, "must be an array");
            return;
        }
        sz = (long long)json_array_size(v);
        if (f->min > 0 && sz < f->min)
            jx_errs_addp(e, prefix, nm, "must have at least %lld items", f->min);
        else if (f->max > 0 && sz > f->max)
            jx_errs_addp(e, prefix, nm, "must have at most %lld items", f->max);
        return;
    }
    case JX_ANY:
        return;
    }
    assert(!"unknown jx_type");
}

size_t jx_check(const json_t *v, const jx_field *spec, const char *prefix, jx_errs *e) {
    size_t before = jx_errs_count(e);
    json_t *obj = (json_t *)v; /* jansson's iterators take non-const */
    const char *key;
    json_t *val;

    assert(spec && e);
    if (!json_is_object(v)) {
        jx_errs_add(e, prefix && prefix[0] ? prefix : "body", "must be an object");
        return jx_errs_count(e) - before;
    }
    json_object_foreach(obj, key, val) {
        const jx_field *f = spec;
        while (f->name && strcmp(f->name, key) != 0) f++;
        if (!f->name) jx_errs_addp(e, prefix, key, "unknown field");
    }
    for (const jx_field *f = spec; f->name; f++) {
        const json_t *x = json_object_get(v, f->name);
        if (!x) {
            if (f->flags & JX_REQUIRED) jx_errs_addp(e, prefix, f->name, "is required");
        } else if (json_is_null(x)) {
            if (!(f->flags & JX_NULLABLE)) jx_errs_addp(e, prefix, f->name, "must not be null");
        } else {
            jx_check_value(x, f, prefix, e);
        }
    }
    return jx_errs_count(e) - before;
}
