/* uin_fast.c — one flat usage event without jansson.  See uin_fast.h. */
#include "fmacros.h"
#include "uin_fast.h"
#include <stdlib.h>

enum { F_EVENT_ID, F_CUSTOMER, F_METRIC, F_EVENT_TYPE, F_QUANTITY, F_TIMESTAMP, F_EVENT_DATE, F_N };

static const struct {
    const char *name;
    size_t len;
} k_keys[F_N] = {
    [F_EVENT_ID] = {"event_id", 8},      [F_CUSTOMER] = {"customer_id", 11},
    [F_METRIC] = {"metric", 6},          [F_EVENT_TYPE] = {"event_type", 10},
    [F_QUANTITY] = {"quantity", 8},      [F_TIMESTAMP] = {"timestamp", 9},
    [F_EVENT_DATE] = {"event_date", 10},
};

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Whitespace, then c: the position after c and the whitespace that
 * follows, or NULL. */
static const char *expect(const char *p, const char *end, char c) {
    p = skip_ws(p, end);
    return p < end && *p == c ? skip_ws(p + 1, end) : NULL;
}

/* A string of printable ASCII without escapes at p ('"' … '"'): *s, *n its
 * contents (borrowed).  The position after it, or NULL. */
static const char *plain_string(const char *p, const char *end, const char **s, size_t *n) {
    if (p >= end || *p != '"') return NULL;
    const char *q = ++p;
    while (q < end && *q != '"') {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20 || c >= 0x7f || c == '\\') return NULL;
        q++;
    }
    if (q >= end) return NULL;
    *s = p;
    *n = (size_t)(q - p);
    return q + 1;
}

/* A JSON number of the plain form 0 | [1-9][0-9]* with an optional .[0-9]+
 * (no sign, no exponent). */
static const char *plain_number(const char *p, const char *end, const char **s, size_t *n) {
    const char *q = p;
    if (q >= end || *q < '0' || *q > '9') return NULL;
    if (*q == '0')
        q++;
    else
        while (q < end && *q >= '0' && *q <= '9') q++;
    if (q < end && *q == '.') {
        const char *f = ++q;
        while (q < end && *q >= '0' && *q <= '9') q++;
        if (q == f) return NULL;
    }
    if (q < end && (*q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))) return NULL;
    if (q - p > 24) return NULL;
    *s = p;
    *n = (size_t)(q - p);
    return q;
}

/* Copies s[0..n) into the arena a at *used (of cap), NUL-terminated. */
static const char *keep(char *a, size_t cap, size_t *used, const char *s, size_t n) {
    if (*used + n + 1 > cap) return NULL;
    char *d = a + *used;
    memcpy(d, s, n);
    d[n] = '\0';
    *used += n + 1;
    return d;
}

/* One flat event object at p ('{' … '}'), checked by the rules of uin.c
 * parse_one, into *ev (properties NULL) with its strings kept in the arena
 * a (cap bytes, *used so far).  The position after the '}', or NULL. */
static const char *flat_event(const char *p, const char *end, int64_t now_us, uin_event *ev,
                              char *a, size_t cap, size_t *used) {
    const char *val[F_N] = {0};
    size_t vlen[F_N] = {0};
    if (p >= end || *p != '{') return NULL;
    p = skip_ws(p + 1, end);
    for (;;) { /* an empty object lacks event_id: declined below */
        const char *k, *v;
        size_t kl, vl;
        if (p < end && *p == '}') break;
        if (!(p = plain_string(p, end, &k, &kl))) return NULL;
        int f = -1;
        for (int i = 0; i < F_N; i++)
            if (k_keys[i].len == kl && memcmp(k_keys[i].name, k, kl) == 0) f = i;
        if (f < 0 || val[f]) return NULL; /* unknown (or properties), or a duplicate */
        if (!(p = expect(p, end, ':'))) return NULL;
        if (p < end && *p == '"')
            p = plain_string(p, end, &v, &vl);
        else if (f == F_QUANTITY) /* short: as jx_number_text gives it */
            p = plain_number(p, end, &v, &vl);
        else
            return NULL;
        if (!p) return NULL;
        val[f] = v;
        vlen[f] = vl;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            if (p < end && *p == '}') return NULL; /* trailing comma */
            continue;
        }
        if (p >= end || *p != '}') return NULL;
    }

    /* the rules of uin.c parse_one, for the fields present */
    if (!val[F_EVENT_ID] || !val[F_CUSTOMER]) return NULL;
    if (!val[F_METRIC] == !val[F_EVENT_TYPE]) return NULL; /* none, or both */
    if (val[F_TIMESTAMP] && val[F_EVENT_DATE]) return NULL;
    int mf = val[F_METRIC] ? F_METRIC : F_EVENT_TYPE;
    int tf = val[F_TIMESTAMP] ? F_TIMESTAMP : F_EVENT_DATE;
    if (uev_event_id(val[F_EVENT_ID], vlen[F_EVENT_ID])) return NULL;
    if (vlen[F_CUSTOMER] == 0 || vlen[F_CUSTOMER] > 128) return NULL; /* ASCII: bytes = chars */
    if (vlen[mf] == 0) return NULL;
    memset(ev, 0, sizeof *ev);
    if (val[F_QUANTITY]) {
        /* uev_quantity reads exactly len bytes */
        if (uev_quantity(val[F_QUANTITY], vlen[F_QUANTITY], ev->quantity)) return NULL;
    } else {
        memcpy(ev->quantity, "1", 2);
    }
    if (val[tf]) {
        if (uev_timestamp(val[tf], vlen[tf], now_us, &ev->ts_us)) return NULL;
    } else {
        ev->ts_us = now_us;
    }
    ev->event_id = keep(a, cap, used, val[F_EVENT_ID], vlen[F_EVENT_ID]);
    ev->customer = keep(a, cap, used, val[F_CUSTOMER], vlen[F_CUSTOMER]);
    ev->metric = keep(a, cap, used, val[mf], vlen[mf]);
    return ev->event_id && ev->customer && ev->metric ? p + 1 : NULL;
}

bool uin_fast_parse(const char *body, size_t len, int64_t now_us, uin_fast *out) {
    if (!body || len == 0 || len >= UIN_FAST_MAX) return false;
    const char *end = body + len;
    size_t used = 0;
    const char *p =
        flat_event(skip_ws(body, end), end, now_us, &out->ev, out->buf, sizeof out->buf, &used);
    return p && skip_ws(p, end) == end;
}

bool uin_fast_batch(const char *body, size_t len, int64_t now_us, uin_batch *out) {
    memset(out, 0, sizeof *out);
    if (!body || len == 0) return false;
    const char *p, *end = body + len, *k;
    size_t kl, cap = 0, used = 0;
    if (!(p = expect(body, end, '{')) || !(p = plain_string(p, end, &k, &kl)) || kl != 6 ||
        memcmp(k, "events", 6) != 0 || !(p = expect(p, end, ':')) || !(p = expect(p, end, '[')))
        return false;
    /* a kept string takes its length + 1 (NUL) here and its length + 2
     * (quotes) in the body: len bytes hold them all */
    if (!(out->arena = malloc(len))) return false;
    for (;;) {
        if (out->n == cap) {
            if (cap == UIN_MAX_EVENTS) goto decline; /* too many: the full path says so */
            size_t ncap = cap ? cap * 2 : 64;
            if (ncap > UIN_MAX_EVENTS) ncap = UIN_MAX_EVENTS;
            uin_event *grown = realloc(out->ev, ncap * sizeof *grown);
            if (!grown) goto decline;
            out->ev = grown;
            cap = ncap;
        }
        uin_event *ev = &out->ev[out->n];
        if (!(p = flat_event(p, end, now_us, ev, out->arena, len, &used))) goto decline;
        if (out->n == 0 || ev->ts_us < out->min_us) out->min_us = ev->ts_us;
        if (out->n == 0 || ev->ts_us > out->max_us) out->max_us = ev->ts_us;
        out->n++;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']') break;
        goto decline;
    }
    if (!(p = expect(p + 1, end, '}')) || p != end) goto decline;
    return true;
decline:
    uin_batch_free(out);
    return false;
}
