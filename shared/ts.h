/* ts.h — timestamps as int64 microseconds since the Unix epoch, UTC (prefix ts_).
 *
 * DESIGN — RFC 3339 in, RFC 3339 "Z" out.  Pure functions: no time zone
 * database, no locale, no libc time parsing (strptime/timegm are locale- and
 * TZ-sensitive); civil-date arithmetic is done with the days-from-civil
 * algorithm.  ts_now() is the only function that reads a clock.
 */
#ifndef ML_TS_H
#define ML_TS_H
#include <stdint.h>
#include <stddef.h>

#define TS_FMT_MAX 32 /* "2026-10-01T13:00:00.123456Z" + NUL */

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|z|+hh:mm|-hh:mm)" (a 't' or a single
 * space also accepted as separator).  frac has 1..9 digits; digits past
 * microseconds are truncated.  Validates ranges (month 1-12, day within the
 * month incl. leap years, hour 0-23, minute 0-59, second 0-60 where 60 is
 * accepted only as a leap second and folded to :59.999999, offset within
 * ±23:59).  Years 0001-9999.  Returns 0 on success, -1 on error. */
int ts_parse(const char *s, size_t len, int64_t *out_us);
/* Also accepts a plain date "YYYY-MM-DD" (midnight UTC). */
int ts_parse_date_or_time(const char *s, size_t len, int64_t *out_us);

/* Writes "YYYY-MM-DDTHH:MM:SSZ", or with ".ffffff" (trailing zeros trimmed to
 * 3 or 6 digits: ".123Z", ".123456Z") when there are sub-seconds.  Returns the
 * length, or -1 if cap < TS_FMT_MAX or out of the year 1..9999 range. */
int ts_format(int64_t us, char *buf, size_t cap);

int64_t ts_now(void); /* CLOCK_REALTIME in microseconds */
/* Days since 1970-01-01 for a civil date, and back.  Proleptic Gregorian. */
int64_t ts_days_from_civil(int y, unsigned m, unsigned d);
void ts_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d);

#endif
