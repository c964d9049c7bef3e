/* uev.c — usage event field rules.  See uev.h. */
#include "fmacros.h"
#include "uev.h"
#include "ts.h"
#include <string.h>

const char *uev_event_id(const char *s, size_t len) {
    if (len == 0) return "must not be empty";
    size_t chars = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        unsigned cp;
        size_t n;
        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < len) {
            cp = ((c & 0x1Fu) << 6) | ((unsigned char)s[i + 1] & 0x3Fu);
            n = 2;
        } else if ((c & 0xF0) == 0xE0 && i + 2 < len) {
            cp = 0x10000; /* beyond the C1 range: no need to decode */
            n = 3;
        } else if ((c & 0xF8) == 0xF0 && i + 3 < len) {
            cp = 0x10000;
            n = 4;
        } else {
            return "must be valid UTF-8";
        }
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
            return "must not contain control characters";
        i += n;
        if (++chars > UEV_ID_MAX_CHARS) return "must be at most 128 characters";
    }
    return NULL;
}

const char *uev_quantity(const char *s, size_t len, char out[UEV_QTY_MAX]) {
    size_t i = 0;
    if (len && s[0] == '+') i++;
    if (i < len && s[i] == '-') return "must be zero or more";
    size_t int0 = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    size_t int1 = i, fr0 = i, fr1 = i;
    if (i < len && s[i] == '.') {
        fr0 = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
        fr1 = i;
    }
    if (int1 == int0 && fr1 == fr0) return "must be a decimal number such as \"12\" or \"0.125\"";
    if (i < len) {
        if (s[i] == 'e' || s[i] == 'E') return "must be a plain decimal (no exponent)";
        return "must be a decimal number such as \"12\" or \"0.125\"";
    }
    while (int0 < int1 && s[int0] == '0') int0++;
    while (fr1 > fr0 && s[fr1 - 1] == '0') fr1--;
    if (fr1 - fr0 > UEV_QTY_SCALE) return "must have at most 12 decimal places";
    if (int1 - int0 > UEV_QTY_INT_DIGITS) return "is too large (at most 26 integer digits)";
    size_t o = 0;
    if (int1 == int0) out[o++] = '0';
    memcpy(out + o, s + int0, int1 - int0);
    o += int1 - int0;
    if (fr1 > fr0) {
        out[o++] = '.';
        memcpy(out + o, s + fr0, fr1 - fr0);
        o += fr1 - fr0;
    }
    out[o] = '\0';
    return NULL;
}

const char *uev_timestamp(const char *s, size_t len, int64_t now_us, int64_t *us) {
    if (ts_parse(s, len, us) != 0)
        return "must be an RFC 3339 time with an offset, e.g. 2026-10-03T09:15:00Z";
    if (*us < UEV_MIN_US) return "must not be before 2000-01-01";
    if (*us > now_us + UEV_FUTURE_US) return "must not be more than 5 minutes in the future";
    return NULL;
}
