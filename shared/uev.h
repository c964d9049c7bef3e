/* uev.h — the rules for one usage event's fields (prefix uev_).
 *
 * DESIGN — Pure functions over memory, shared by the JSON ingest path (api/)
 * and the CSV import job (worker/), so an event is valid or not by one
 * definition whichever way it arrives.  Each returns NULL when the value is
 * valid, else a static message fit for a 422 detail or a CSV row error
 * ("must be …").  Nothing here knows customers or metrics: resolving those in
 * the caller's organization is the caller's job.
 */
#ifndef ML_UEV_H
#define ML_UEV_H
#include <stddef.h>
#include <stdint.h>

#define UEV_ID_MAX_CHARS   128
#define UEV_QTY_MAX        48                   /* normalized quantity text + NUL */
#define UEV_QTY_SCALE      12                   /* fraction digits allowed */
#define UEV_QTY_INT_DIGITS 26                   /* numeric(38,12) */
#define UEV_FUTURE_US      (5LL * 60 * 1000000) /* how far ahead a timestamp may be */
#define UEV_MIN_US         946684800000000LL    /* 2000-01-01T00:00:00Z */

/* event_id: 1..128 characters (UTF-8 code points; s must be valid UTF-8), no
 * control characters (C0, DEL, C1). */
const char *uev_event_id(const char *s, size_t len);

/* quantity: a plain decimal >= 0 ("12", "0.125", ".5", "7."), no sign other
 * than a leading '+', no exponent, at most 12 fraction digits and 26 integer
 * digits.  Written normalized to out (leading zeros and trailing fraction
 * zeros dropped: "007.50" → "7.5", "0.000" → "0"). */
const char *uev_quantity(const char *s, size_t len, char out[UEV_QTY_MAX]);

/* timestamp: RFC 3339 with an offset (ts_parse), not before 2000-01-01 and
 * not more than 5 minutes after now_us.  *us is the instant. */
const char *uev_timestamp(const char *s, size_t len, int64_t now_us, int64_t *us);

#endif
