/* ts.c — RFC 3339 timestamps as int64 microseconds since the epoch.  See ts.h.
 *
 * DESIGN — Parsing is a fixed-layout scan ("YYYY-MM-DDTHH:MM:SS", optional
 * fraction, zone) over (s, len); nothing is read past len and no libc time
 * function is used, so results do not depend on TZ or locale.  Civil dates go
 * through Howard Hinnant's days_from_civil / civil_from_days (proleptic
 * Gregorian, exact for every int year).  Invariants:
 *   - every instant ts_parse accepts lies in years 0001..9999 *in UTC*, so it
 *     always formats back (an input of 0001-01-01T00:30+01:00 is refused);
 *   - second 60 is accepted only where RFC 3339 allows a leap second — at
 *     23:59:60 UTC on the last day of a month — and folded to :59.999999 so
 *     ordering is kept;
 *   - fraction digits past microseconds are truncated, never rounded.
 * All functions except ts_now are pure and thread-safe.
 */
#include "fmacros.h"
#include "ts.h"
#include <stdbool.h>
#include <time.h>

#define TS_US_PER_SEC INT64_C(1000000)
#define TS_US_PER_DAY (INT64_C(86400) * TS_US_PER_SEC)
/* ts_civil_from_days clamps its input here so the year always fits an int. */
#define TS_DAYS_LIMIT (INT64_C(1) << 39)

int64_t ts_days_from_civil(int y, unsigned m, unsigned d) {
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400; /* [0, 399] */
    int64_t mp = m > 2 ? (int64_t)m - 3 : (int64_t)m + 9;
    int64_t doy = (153 * mp + 2) / 5 + (int64_t)d - 1;   /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void ts_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d) {
    int64_t era, doe, yoe, doy, mp, yy;
    if (z > TS_DAYS_LIMIT) z = TS_DAYS_LIMIT;
    if (z < -TS_DAYS_LIMIT) z = -TS_DAYS_LIMIT;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;                                      /* [0, 146096] */
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    yy = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* [0, 365] */
    mp = (5 * doy + 2) / 153;                      /* [0, 11] */
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

static bool ts_is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned ts_days_in_month(int y, unsigned m) {
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && ts_is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n ASCII digits at s into *out. */
static bool ts_num(const char *s, size_t n, int *out) {
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD" at s (10 bytes available) with ranges checked. */
static bool ts_date(const char *s, int *y, int *mo, int *d) {
    if (!ts_num(s, 4, y) || s[4] != '-' || !ts_num(s + 5, 2, mo) || s[7] != '-' ||
        !ts_num(s + 8, 2, d))
        return false;
    return *y >= 1 && *y <= 9999 && *mo >= 1 && *mo <= 12 && *d >= 1 &&
           (unsigned)*d <= ts_days_in_month(*y, (unsigned)*mo);
}

/* First and last microsecond of years 0001..9999. */
static int64_t ts_min_us(void) { return ts_days_from_civil(1, 1, 1) * TS_US_PER_DAY; }
static int64_t ts_max_us(void) {
    return (ts_days_from_civil(9999, 12, 31) + 1) * TS_US_PER_DAY - 1;
}

int ts_parse(const char *s, size_t len, int64_t *out_us) {
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    int64_t frac = 0, secs, us;
    size_t i = 19;

    if (!s || !out_us || len < 20) return -1; /* shortest: ...SSZ */
    if (!ts_date(s, &y, &mo, &d)) return -1;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return -1;
    if (!ts_num(s + 11, 2, &h) || s[13] != ':' || !ts_num(s + 14, 2, &mi) || s[16] != ':' ||
        !ts_num(s + 17, 2, &sec))
        return -1;
    if (h > 23 || mi > 59 || sec > 60) return -1;

    if (s[i] == '.') {
        size_t k = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, k++)
            if (k < 6) frac = frac * 10 + (s[i] - '0');
        if (k < 1 || k > 9) return -1;
        for (; k < 6; k++) frac *= 10;
    }
    if (i >= len) return -1; /* no zone */
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        sign = s[i] == '-' ? -1 : 1;
        if (len - i < 6 || !ts_num(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !ts_num(s + i + 4, 2, &om))
            return -1;
        if (oh > 23 || om > 59) return -1;
        i += 6;
    } else {
        return -1;
    }
    if (i != len) return -1;

    secs = ts_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
           (sec == 60 ? 59 : sec) - (int64_t)sign * (oh * 3600 + om * 60);
    if (sec == 60) {
        /* A leap second: 23:59:60 UTC on the last day of a month. */
        int uy;
        unsigned um, ud;
        int64_t day = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
        if (secs - day * 86400 != 86399) return -1;
        ts_civil_from_days(day, &uy, &um, &ud);
        if (ud != ts_days_in_month(uy, um)) return -1;
        frac = TS_US_PER_SEC - 1;
    }
    us = secs * TS_US_PER_SEC + frac;
    if (us < ts_min_us() || us > ts_max_us()) return -1;
    *out_us = us;
    return 0;
}

int ts_parse_date_or_time(const char *s, size_t len, int64_t *out_us) {
    int y, mo, d;
    if (!s || !out_us) return -1;
    if (len != 10) return ts_parse(s, len, out_us);
    if (!ts_date(s, &y, &mo, &d)) return -1;
    *out_us = ts_days_from_civil(y, (unsigned)mo, (unsigned)d) * TS_US_PER_DAY;
    return 0;
}

/* n as exactly w decimal digits (n >= 0, n < 10^w). */
static char *put_digits(char *p, long n, int w) {
    for (int i = w - 1; i >= 0; i--) {
        p[i] = (char)('0' + n % 10);
        n /= 10;
    }
    return p + w;
}

/* Hand-written digits rather than snprintf: aggregate replies format two
 * times per bucket, thousands per request, and printf's format parsing was
 * the largest cost of serving them. */
int ts_format(int64_t us, char *buf, size_t cap) {
    int64_t day, rem, sod;
    int y;
    unsigned m, d;
    long frac;

    if (!buf || cap < TS_FMT_MAX) return -1;
    if (us < ts_min_us() || us > ts_max_us()) return -1;
    day = us / TS_US_PER_DAY;
    rem = us % TS_US_PER_DAY;
    if (rem < 0) {
        rem += TS_US_PER_DAY;
        day--;
    }
    ts_civil_from_days(day, &y, &m, &d);
    if (y < 0 || y > 9999) return -1;
    sod = rem / TS_US_PER_SEC;
    frac = (long)(rem % TS_US_PER_SEC);
    char *p = put_digits(buf, y, 4);
    *p++ = '-';
    p = put_digits(p, (long)m, 2);
    *p++ = '-';
    p = put_digits(p, (long)d, 2);
    *p++ = 'T';
    p = put_digits(p, (long)(sod / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (long)(sod / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (long)(sod % 60), 2);
    if (frac != 0) { /* ".123" when whole milliseconds, else ".123456" */
        *p++ = '.';
        p = frac % 1000 == 0 ? put_digits(p, frac / 1000, 3) : put_digits(p, frac, 6);
    }
    *p++ = 'Z';
    *p = '\0';
    return (int)(p - buf);
}

int64_t ts_now(void) {
    struct timespec t;
    if (clock_gettime(CLOCK_REALTIME, &t) != 0) return 0;
    return (int64_t)t.tv_sec * TS_US_PER_SEC + t.tv_nsec / 1000;
}
