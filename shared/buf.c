/* buf.c — growable byte buffer.  See buf.h for the contract (sticky oom). */
#include "fmacros.h"
#include "buf.h"
#include <stdarg.h>
#include <stdlib.h>

void buf_init(buf *b) {
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void buf_free(buf *b) {
    if (!b) return;
    free(b->p);
    buf_init(b);
}

bool buf_reserve(buf *b, size_t extra) {
    if (b->oom) return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return true;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    char *np = realloc(b->p, ncap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = ncap;
    return true;
}

void buf_add(buf *b, const void *p, size_t n) {
    if (!buf_reserve(b, n)) return;
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void buf_adds(buf *b, const char *s) { buf_add(b, s, strlen(s)); }
void buf_addc(buf *b, char c) { buf_add(b, &c, 1); }

void buf_printf(buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        buf_add(b, tmp, (size_t)n);
        return;
    }
    if (!buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_add_json_escaped(buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        buf_add(b, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"':
            buf_adds(b, "\\\"");
            break;
        case '\\':
            buf_adds(b, "\\\\");
            break;
        case '\n':
            buf_adds(b, "\\n");
            break;
        case '\r':
            buf_adds(b, "\\r");
            break;
        case '\t':
            buf_adds(b, "\\t");
            break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_add(b, e, 6);
        }
        }
    }
    buf_add(b, s + start, n - start);
}

char *buf_steal(buf *b, size_t *len) {
    if (b->oom) {
        buf_free(b);
        if (len) *len = 0;
        return NULL;
    }
    if (!b->p && !buf_reserve(b, 0)) {
        if (len) *len = 0;
        return NULL;
    }
    char *p = b->p;
    if (len) *len = b->len;
    buf_init(b);
    return p;
}
