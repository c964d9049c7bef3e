/* mpart.c — streaming multipart/form-data parser.  See mpart.h.
 *
 * DESIGN — The delimiter is matched as "\n--boundary" with a separately
 * held CR in front, so CRLF and bare LF bodies take the same path.  A
 * boundary may not contain LF, so the pattern's only LF is its first byte
 * and a failed partial match can never hide the start of another one: the
 * matched prefix is released as content (it is a prefix of the pattern, so
 * it needs no buffer) and the mismatching byte is examined afresh.  After a
 * full match, "--" closes the body, blanks + line end open the next part;
 * any other byte means the "delimiter" was content after all and it is
 * released (senders must pick a boundary that does not occur in the
 * content, but a file with a boundary-like line should not be cut short).
 * Callers: api/upload.c on the loop thread; the unit tests.
 */
#include "fmacros.h"
#include "mpart.h"
#include <strings.h>

enum { M_PREAMBLE, M_AFTER, M_HEAD, M_BODY, M_DONE, M_ERROR };

int mp_init(mp_parser *p, const char *boundary) {
    memset(p, 0, sizeof *p);
    size_t n = strlen(boundary);
    if (n == 0 || n > MP_BOUNDARY_MAX || strpbrk(boundary, "\r\n")) return -1;
    memcpy(p->delim, "\n--", 3);
    memcpy(p->delim + 3, boundary, n);
    p->dlen = n + 3;
    p->state = M_PREAMBLE;
    p->match = 1; /* the body may start with "--boundary": a virtual LF before it */
    return 0;
}

static int fail(mp_parser *p, const char *msg) {
    p->state = M_ERROR;
    p->err = msg;
    return -1;
}

static int emit(mp_parser *p, int prev, mp_cb cb, void *ud, const char *d, size_t n) {
    if (!n || prev != M_BODY) return 0;
    mp_part part = {p->name, p->has_filename ? p->filename : NULL, p->ctype};
    if (cb(ud, MP_PART_DATA, &part, d, n)) return fail(p, "stopped");
    return 0;
}

/* Copies src[0..n) into dst (cap bytes incl. NUL), truncating. */
static void copy_trunc(char *dst, size_t cap, const char *src, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Next ";key=value" parameter of a header value at *s (up to end).  The
 * value is unquoted into val (truncated to vcap).  false at the end. */
static bool next_param(const char **s, const char *end, char *key, size_t kcap, char *val,
                       size_t vcap) {
    const char *p = *s;
    while (p < end && *p != ';') {
        if (*p == '"') { /* skip a quoted string of the type part */
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\' && p + 1 < end) p++;
        }
        if (p < end) p++;
    }
    if (p >= end) return false;
    p++; /* ';' */
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    const char *k = p;
    while (p < end && *p != '=' && *p != ';') p++;
    const char *ke = p;
    while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
    copy_trunc(key, kcap, k, (size_t)(ke - k));
    size_t vn = 0;
    if (p < end && *p == '=') {
        p++;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (p < end && *p == '"') {
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end) p++;
                if (vn + 1 < vcap) val[vn++] = *p;
            }
            if (p < end) p++;
        } else {
            const char *v = p;
            while (p < end && *p != ';') p++;
            const char *ve = p;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            for (; v < ve; v++)
                if (vn + 1 < vcap) val[vn++] = *v;
        }
    }
    val[vn] = '\0';
    *s = p;
    return true;
}

int mp_boundary(const char *ct, size_t ctlen, char *out, size_t cap) {
    const char *end = ct + ctlen;
    while (ct < end && (*ct == ' ' || *ct == '\t')) ct++;
    static const char type[] = "multipart/form-data";
    size_t tl = sizeof type - 1;
    if ((size_t)(end - ct) < tl || strncasecmp(ct, type, tl) != 0) return -1;
    const char *s = ct + tl;
    if (s < end && *s != ';' && *s != ' ' && *s != '\t') return -1;
    char key[32], val[MP_BOUNDARY_MAX + 2];
    while (next_param(&s, end, key, sizeof key, val, sizeof val)) {
        if (strcasecmp(key, "boundary") != 0) continue;
        size_t n = strlen(val);
        if (n == 0 || n > MP_BOUNDARY_MAX || n + 1 > cap || strpbrk(val, "\r\n")) return -1;
        memcpy(out, val, n + 1);
        return 0;
    }
    return -1;
}

/* Parses the part headers in p->head (complete). */
static void parse_part_head(mp_parser *p) {
    p->name[0] = p->filename[0] = p->ctype[0] = '\0';
    p->has_filename = false;
    const char *s = p->head, *end = p->head + p->head_len;
    while (s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        const char *le = eol;
        if (le > s && le[-1] == '\r') le--;
        const char *colon = memchr(s, ':', (size_t)(le - s));
        if (colon) {
            size_t kl = (size_t)(colon - s);
            const char *v = colon + 1;
            while (v < le && (*v == ' ' || *v == '\t')) v++;
            const char *ve = le;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            if (kl == 19 && !strncasecmp(s, "Content-Disposition", 19)) {
                char key[32], val[512];
                const char *q = v;
                while (next_param(&q, ve, key, sizeof key, val, sizeof val)) {
                    if (!strcasecmp(key, "name")) {
                        copy_trunc(p->name, sizeof p->name, val, strlen(val));
                    } else if (!strcasecmp(key, "filename")) {
                        /* a client path ("C:\x\y.csv") leaves only its last component */
                        const char *b = val;
                        for (const char *c = val; *c; c++)
                            if (*c == '/' || *c == '\\') b = c + 1;
                        copy_trunc(p->filename, sizeof p->filename, b, strlen(b));
                        p->has_filename = true;
                    }
                }
            } else if (kl == 12 && !strncasecmp(s, "Content-Type", 12)) {
                copy_trunc(p->ctype, sizeof p->ctype, v, (size_t)(ve - v));
            }
        }
        s = eol + 1;
    }
}

/* Scans content (preamble or part body) for the delimiter from buf[*i]. */
static int scan(mp_parser *p, const char *buf, size_t len, size_t *ip, mp_cb cb, void *ud) {
    int st = p->state;
    size_t i = *ip;
    while (i < len) {
        if (p->match == 0) {
            const char *nl = memchr(buf + i, '\n', len - i);
            size_t end = nl ? (size_t)(nl - buf) : len;
            if (end > i) {
                size_t run_end = end;
                bool hold = buf[end - 1] == '\r';
                if (hold) run_end--;
                if (p->cr) {
                    p->cr = false;
                    if (emit(p, st, cb, ud, "\r", 1)) return -1;
                }
                if (emit(p, st, cb, ud, buf + i, run_end - i)) return -1;
                p->cr = hold;
            }
            if (!nl) {
                i = len;
                break;
            }
            i = end + 1;
            p->match = 1;
            continue;
        }
        if (buf[i] == p->delim[p->match]) {
            i++;
            if (++p->match == p->dlen) {
                p->delim_cr = p->cr;
                p->cr = false;
                p->match = 0;
                p->after = 0;
                p->state = M_AFTER;
                *ip = i;
                return 0;
            }
            continue;
        }
        /* not a delimiter: the held bytes are content */
        if (p->cr) {
            p->cr = false;
            if (emit(p, st, cb, ud, "\r", 1)) return -1;
        }
        size_t m = p->match;
        p->match = 0;
        if (emit(p, st, cb, ud, p->delim, m)) return -1;
    }
    *ip = i;
    return 0;
}

int mp_feed(mp_parser *p, const char *buf, size_t len, mp_cb cb, void *ud) {
    size_t i = 0;
    while (i < len) {
        switch (p->state) {
        case M_ERROR:
            return -1;
        case M_DONE:
            return 0; /* the epilogue is ignored */
        case M_PREAMBLE:
        case M_BODY:
            if (scan(p, buf, len, &i, cb, ud)) return -1;
            break;
        case M_AFTER: {
            char c = buf[i];
            bool confirmed = false;
            if (p->after == 0 || p->after == 1) {
                if (c == '-' && p->after == 0) {
                    p->after = 1;
                    i++;
                    break;
                }
                if (c == '-' && p->after == 1) {
                    if (p->in_part) {
                        mp_part part = {p->name, p->has_filename ? p->filename : NULL, p->ctype};
                        p->in_part = false;
                        if (cb(ud, MP_PART_END, &part, NULL, 0)) return fail(p, "stopped");
                    }
                    p->state = M_DONE;
                    i++;
                    break;
                }
                if (p->after == 0 && (c == ' ' || c == '\t')) {
                    p->after = 2;
                    i++;
                    break;
                }
                if (p->after == 0 && c == '\r') {
                    p->after = 3;
                    i++;
                    break;
                }
                if (p->after == 0 && c == '\n') {
                    confirmed = true;
                    i++;
                } else {
                    /* "\n--boundary" followed by something else: content */
                    int prev = p->in_part ? M_BODY : M_PREAMBLE;
                    bool dash = p->after == 1;
                    p->state = prev;
                    if (p->delim_cr && emit(p, prev, cb, ud, "\r", 1)) return -1;
                    if (emit(p, prev, cb, ud, p->delim, p->dlen)) return -1;
                    if (dash && emit(p, prev, cb, ud, "-", 1)) return -1;
                    break; /* c is examined again as content */
                }
            } else if (p->after == 2) {
                if (c == ' ' || c == '\t') {
                    i++;
                    break;
                }
                if (c == '\r') {
                    p->after = 3;
                    i++;
                    break;
                }
                if (c != '\n') return fail(p, "malformed multipart delimiter line");
                confirmed = true;
                i++;
            } else {
                if (c != '\n') return fail(p, "malformed multipart delimiter line");
                confirmed = true;
                i++;
            }
            if (confirmed) {
                if (p->in_part) {
                    mp_part part = {p->name, p->has_filename ? p->filename : NULL, p->ctype};
                    p->in_part = false;
                    if (cb(ud, MP_PART_END, &part, NULL, 0)) return fail(p, "stopped");
                }
                p->state = M_HEAD;
                p->head_len = 0;
            }
            break;
        }
        case M_HEAD: {
            /* copy up to the end of the part headers (an empty line) */
            while (i < len) {
                char c = buf[i++];
                if (p->head_len + 1 >= sizeof p->head)
                    return fail(p, "multipart part headers too large");
                p->head[p->head_len++] = c;
                if (c != '\n') continue;
                /* the line just ended: empty? */
                size_t e = p->head_len - 1; /* index of '\n' */
                size_t ls = e;
                while (ls > 0 && p->head[ls - 1] != '\n') ls--;
                size_t ll = e - ls;
                if (ll == 0 || (ll == 1 && p->head[ls] == '\r')) {
                    p->head_len = ls; /* drop the empty line */
                    p->head[p->head_len] = '\0';
                    parse_part_head(p);
                    p->state = M_BODY;
                    p->match = 0;
                    p->cr = false;
                    p->in_part = true;
                    mp_part part = {p->name, p->has_filename ? p->filename : NULL, p->ctype};
                    if (cb(ud, MP_PART_BEGIN, &part, NULL, 0)) return fail(p, "stopped");
                    break;
                }
            }
            break;
        }
        }
    }
    return p->state == M_ERROR ? -1 : 0;
}

int mp_finish(mp_parser *p) {
    if (p->state == M_DONE) return 0;
    if (p->state != M_ERROR) p->err = "the multipart body ends before its closing boundary";
    return -1;
}
