/* hframe.c — incremental HTTP/1.1 request framing.  See hframe.h.
 *
 * DESIGN — One state machine over bytes; no I/O, no global state, so any
 * split of the input across calls gives the same events (the unit tests feed
 * every split position).  The head is copied into a buffer owned by the
 * parser (bounded by HF_HEAD_MAX) because it may arrive in pieces; body bytes
 * are never copied: HF_DATA points into the caller's buffer.  Chunk framing
 * (size lines, extensions, CRLF after data, trailers) is consumed here and
 * never reaches the caller.  Who calls it: the loop thread of billing-api
 * (api/upload.c), one parser per connection.
 */
#include "fmacros.h"
#include "hframe.h"
#include <stdlib.h>
#include <strings.h>

enum { S_START, S_HEAD, S_BODY, S_CHUNK, S_DONE, S_ERROR };
enum {
    C_SIZE,       /* hex digits of a chunk size */
    C_SIZE_WS,    /* blanks after the digits */
    C_EXT,        /* chunk extension, up to the line end */
    C_SIZE_LF,    /* CR seen at the end of the size line */
    C_DATA,       /* chunk data */
    C_DATA_END,   /* CR or LF after chunk data */
    C_DATA_LF,    /* CR seen after chunk data */
    C_TRAILER,    /* start of a trailer line (or the final empty line) */
    C_TRAILER_IN, /* inside a trailer line */
    C_TRAILER_LF, /* CR at the start of a line: the final LF follows */
};

#define CHUNK_LINE_MAX 4096

void hf_init(hf_parser *p) {
    memset(p, 0, sizeof *p);
    p->state = S_START;
    p->content_length = -1;
}

void hf_free(hf_parser *p) {
    free(p->head);
    p->head = NULL;
    p->head_cap = p->head_len = 0;
}

static int fail(hf_parser *p, const char *msg, int *ev) {
    p->state = S_ERROR;
    p->err = msg;
    *ev = HF_ERROR;
    return 0;
}

static bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool hf_value_is(const char *v, size_t vlen, const char *s) {
    return strlen(s) == vlen && strncasecmp(v, s, vlen) == 0;
}

const char *hf_get(const hf_parser *p, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    for (int i = 0; i < p->nhdr; i++) {
        const hf_header *h = &p->hdr[i];
        if (h->name_len == nl && strncasecmp(p->head + h->name, name, nl) == 0) {
            *vlen = h->value_len;
            return p->head + h->value;
        }
    }
    return NULL;
}

/* Parses the complete head in p->head.  NULL ok, else an error message. */
static const char *parse_head(hf_parser *p) {
    char *s = p->head, *end = p->head + p->head_len;
    /* request line */
    char *eol = memchr(s, '\n', (size_t)(end - s));
    if (!eol) return "malformed request line";
    char *le = eol;
    if (le > s && le[-1] == '\r') le--;
    char *sp1 = memchr(s, ' ', (size_t)(le - s));
    if (!sp1 || sp1 == s || sp1 - s >= (long)sizeof p->method) return "malformed request line";
    for (char *c = s; c < sp1; c++)
        if (!is_tchar((unsigned char)*c)) return "malformed request method";
    memcpy(p->method, s, (size_t)(sp1 - s));
    p->method[sp1 - s] = '\0';
    char *t = sp1 + 1;
    char *sp2 = memchr(t, ' ', (size_t)(le - t));
    if (!sp2 || sp2 == t) return "malformed request line";
    for (char *c = t; c < sp2; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f) return "malformed request target";
    p->target = (size_t)(t - p->head);
    p->target_len = (size_t)(sp2 - t);
    size_t vl = (size_t)(le - (sp2 + 1));
    if (vl == 8 && !memcmp(sp2 + 1, "HTTP/1.1", 8))
        p->minor = 1;
    else if (vl == 8 && !memcmp(sp2 + 1, "HTTP/1.0", 8))
        p->minor = 0;
    else
        return "unsupported HTTP version";

    /* header lines */
    p->nhdr = 0;
    bool has_te = false;
    for (s = eol + 1; s < end;) {
        eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) return "malformed header line";
        le = eol;
        if (le > s && le[-1] == '\r') le--;
        if (le == s) break; /* the empty line */
        if (*s == ' ' || *s == '\t') return "obsolete header line folding";
        char *colon = s;
        while (colon < le && is_tchar((unsigned char)*colon)) colon++;
        if (colon == s || colon == le || *colon != ':') return "malformed header line";
        char *v = colon + 1, *ve = le;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        if (memchr(v, '\0', (size_t)(ve - v))) return "NUL in header value";
        if (p->nhdr == HF_MAX_HEADERS) return "too many header lines";
        hf_header *h = &p->hdr[p->nhdr++];
        h->name = (size_t)(s - p->head);
        h->name_len = (size_t)(colon - s);
        h->value = (size_t)(v - p->head);
        h->value_len = (size_t)(ve - v);
        if (h->name_len == 14 && !strncasecmp(s, "Content-Length", 14)) {
            size_t n = h->value_len;
            if (n == 0 || n > 18 || strspn(v, "0123456789") < n) return "malformed Content-Length";
            long long cl = 0;
            for (size_t i = 0; i < n; i++) cl = cl * 10 + (v[i] - '0');
            if (p->content_length >= 0 && p->content_length != cl)
                return "conflicting Content-Length headers";
            p->content_length = cl;
        } else if (h->name_len == 17 && !strncasecmp(s, "Transfer-Encoding", 17)) {
            if (has_te || !hf_value_is(v, h->value_len, "chunked"))
                return "unsupported Transfer-Encoding";
            has_te = true;
        }
        s = eol + 1;
    }
    if (has_te && p->minor == 0) return "Transfer-Encoding in an HTTP/1.0 request";
    if (has_te && p->content_length >= 0) return "both Content-Length and Transfer-Encoding";
    p->chunked = has_te;
    return NULL;
}

static int head_add(hf_parser *p, const char *b, size_t n) {
    if (p->head_len + n + 1 > p->head_cap) {
        size_t cap = p->head_cap ? p->head_cap : 1024;
        while (cap < p->head_len + n + 1) cap *= 2;
        if (cap > HF_HEAD_MAX + 1) cap = HF_HEAD_MAX + 1;
        char *nh = realloc(p->head, cap);
        if (!nh) return -1;
        p->head = nh;
        p->head_cap = cap;
    }
    memcpy(p->head + p->head_len, b, n);
    p->head_len += n;
    p->head[p->head_len] = '\0';
    return 0;
}

/* Head bytes: consumes up to and including the end of the head. */
static long feed_head(hf_parser *p, const char *buf, size_t len, int *ev) {
    size_t i = 0;
    if (p->head_len == 0)
        while (i < len && (buf[i] == '\r' || buf[i] == '\n')) i++; /* empty lines first */
    size_t start = i;
    bool done = false;
    for (; i < len; i++) {
        char c = buf[i];
        if (c == '\n') {
            if (p->nl == 1 || p->nl == 2) {
                done = true;
                i++;
                break;
            }
            p->nl = 1;
        } else if (c == '\r') {
            p->nl = p->nl == 1 ? 2 : 0;
        } else {
            p->nl = 0;
        }
    }
    size_t n = i - start;
    if (p->head_len + n > HF_HEAD_MAX) return fail(p, "request head too large", ev), (long)i;
    if (n && head_add(p, buf + start, n) != 0) {
        fail(p, "out of memory", ev);
        return -1;
    }
    if (!done) {
        *ev = HF_NEED_MORE;
        return (long)i;
    }
    const char *err = parse_head(p);
    if (err) return fail(p, err, ev), (long)i;
    p->body_total = 0;
    if (p->chunked) {
        p->state = S_CHUNK;
        p->cstate = C_SIZE;
        p->remaining = 0;
        p->hexdigits = 0;
        p->line_len = 0;
    } else if (p->content_length > 0) {
        p->state = S_BODY;
        p->remaining = p->content_length;
    } else {
        p->state = S_DONE;
    }
    *ev = HF_HEAD;
    return (long)i;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Chunked body: consumes framing; stops at data (HF_DATA) or the end. */
static long feed_chunked(hf_parser *p, const char *buf, size_t len, int *ev, const char **data,
                         size_t *dlen) {
    size_t i = 0;
    while (i < len) {
        char c = buf[i];
        switch (p->cstate) {
        case C_SIZE: {
            int h = hexval(c);
            if (h >= 0) {
                if (++p->hexdigits > 15) return fail(p, "chunk size too large", ev), (long)i;
                p->remaining = p->remaining * 16 + h;
                i++;
                continue;
            }
            if (p->hexdigits == 0) return fail(p, "malformed chunk size", ev), (long)i;
            p->cstate = C_SIZE_WS;
            continue; /* re-examine c */
        }
        case C_SIZE_WS:
            if (c == ' ' || c == '\t') {
                i++;
            } else if (c == ';') {
                p->cstate = C_EXT;
                i++;
            } else if (c == '\r') {
                p->cstate = C_SIZE_LF;
                i++;
            } else if (c == '\n') {
                p->cstate = C_SIZE_LF;
                continue; /* handled below */
            } else {
                return fail(p, "malformed chunk size line", ev), (long)i;
            }
            break;
        case C_EXT:
            if (c == '\n') {
                p->cstate = C_SIZE_LF;
                continue;
            }
            if (c == '\0') return fail(p, "NUL in chunk extension", ev), (long)i;
            i++;
            break;
        case C_SIZE_LF:
            if (c != '\n') return fail(p, "malformed chunk size line", ev), (long)i;
            i++;
            p->line_len = 0;
            p->hexdigits = 0;
            if (p->remaining == 0) {
                p->cstate = C_TRAILER;
            } else {
                p->cstate = C_DATA;
            }
            continue;
        case C_DATA: {
            size_t n = len - i;
            if ((long long)n > p->remaining) n = (size_t)p->remaining;
            p->remaining -= (long long)n;
            p->body_total += (long long)n;
            if (p->remaining == 0) p->cstate = C_DATA_END;
            *data = buf + i;
            *dlen = n;
            *ev = HF_DATA;
            return (long)(i + n);
        }
        case C_DATA_END:
            if (c == '\r') {
                p->cstate = C_DATA_LF;
                i++;
            } else if (c == '\n') {
                p->cstate = C_SIZE;
                i++;
            } else {
                return fail(p, "chunk data not followed by a line end", ev), (long)i;
            }
            break;
        case C_DATA_LF:
            if (c != '\n') return fail(p, "chunk data not followed by a line end", ev), (long)i;
            p->cstate = C_SIZE;
            i++;
            break;
        case C_TRAILER:
            if (c == '\n') {
                p->state = S_START;
                *ev = HF_DONE;
                return (long)(i + 1);
            }
            p->cstate = c == '\r' ? C_TRAILER_LF : C_TRAILER_IN;
            i++;
            break;
        case C_TRAILER_LF:
            if (c != '\n') return fail(p, "malformed trailer", ev), (long)i;
            p->state = S_START;
            *ev = HF_DONE;
            return (long)(i + 1);
        case C_TRAILER_IN:
            if (c == '\n') p->cstate = C_TRAILER;
            i++;
            break;
        }
        if (p->cstate != C_DATA &&
            ++p->line_len > (p->cstate >= C_TRAILER ? HF_HEAD_MAX : CHUNK_LINE_MAX))
            return fail(p, "chunk framing line too long", ev), (long)i;
    }
    *ev = HF_NEED_MORE;
    return (long)i;
}

long hf_feed(hf_parser *p, const char *buf, size_t len, int *ev, const char **data, size_t *dlen) {
    *data = NULL;
    *dlen = 0;
    switch (p->state) {
    case S_ERROR:
        *ev = HF_ERROR;
        return 0;
    case S_START:
        p->head_len = 0;
        p->nl = 0;
        p->nhdr = 0;
        p->content_length = -1;
        p->chunked = false;
        p->method[0] = '\0';
        p->state = S_HEAD;
        /* fall through */
    case S_HEAD:
        if (len == 0) {
            *ev = HF_NEED_MORE;
            return 0;
        }
        return feed_head(p, buf, len, ev);
    case S_BODY: {
        if (len == 0) {
            *ev = HF_NEED_MORE;
            return 0;
        }
        size_t n = len;
        if ((long long)n > p->remaining) n = (size_t)p->remaining;
        p->remaining -= (long long)n;
        p->body_total += (long long)n;
        if (p->remaining == 0) p->state = S_DONE;
        *data = buf;
        *dlen = n;
        *ev = HF_DATA;
        return (long)n;
    }
    case S_CHUNK:
        return feed_chunked(p, buf, len, ev, data, dlen);
    case S_DONE:
    default:
        p->state = S_START;
        *ev = HF_DONE;
        return 0;
    }
}
