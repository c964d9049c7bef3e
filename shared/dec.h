/* dec.h — exact decimal numbers for money and quantities (prefix dec_).
 *
 * DESIGN — A dec_t is a signed 128-bit coefficient and a decimal scale:
 * value = c / 10^scale, 0 <= scale <= DEC_MAX_SCALE.  |c| < 10^DEC_MAX_DIGITS,
 * so every value has at most 38 significant digits.  Every operation is exact
 * or reports DEC_EOVERFLOW / DEC_ESCALE; nothing rounds unless the caller asks
 * (dec_round, dec_div).  No float or double anywhere.  All functions are pure
 * and thread-safe.  Scale is kept as given ("12.50" stays scale 2) so money
 * formats with its currency's minor unit; dec_normalize strips trailing zeros.
 */
#ifndef ML_DEC_H
#define ML_DEC_H
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define DEC_MAX_SCALE  36
#define DEC_MAX_DIGITS 38
#define DEC_FMT_MAX    48 /* enough for sign, 38 digits, point, leading "0." and NUL */

enum {
    DEC_OK = 0,
    DEC_ESYNTAX = -1,   /* not a decimal number */
    DEC_EOVERFLOW = -2, /* result needs more than DEC_MAX_DIGITS digits */
    DEC_ESCALE = -3,    /* result needs more than DEC_MAX_SCALE places */
    DEC_EDIVZERO = -4,
    DEC_EINEXACT = -5, /* dec_rescale would lose digits */
};

typedef struct dec {
    __extension__ __int128 c; /* coefficient */
    int32_t scale;            /* 0..DEC_MAX_SCALE */
} dec_t;

typedef enum dec_rounding {
    DEC_ROUND_HALF_EVEN = 0, /* banker's rounding: the default for money */
    DEC_ROUND_HALF_UP,       /* half away from zero */
    DEC_ROUND_DOWN,          /* toward zero (truncate) */
    DEC_ROUND_UP,            /* away from zero */
    DEC_ROUND_FLOOR,         /* toward -infinity */
    DEC_ROUND_CEILING,       /* toward +infinity */
} dec_rounding;

/* Parses s[0..len): [+-]? digits [. digits]? ([eE] [+-]? digits)?  Also ".5" and
 * "5." are rejected (digits are required on both sides of a point).  No spaces,
 * no hex, no inf/nan.  Exponents are applied exactly ("1.5e3" -> 1500 scale 0,
 * "15e-1" -> 1.5 scale 1).  Leading zeros are allowed ("007").  "-0" parses to
 * zero.  Returns DEC_OK or a DEC_E* code; *out is untouched on error. */
int dec_parse(dec_t *out, const char *s, size_t len);
int dec_parse_cstr(dec_t *out, const char *s);

/* Writes the plain decimal form with exactly d->scale fractional digits, no
 * exponent ("-0.050", "1250", "0.5").  Zero is "0" (or "0.00" at scale 2), never
 * "-0".  Returns the length written (excluding NUL); needs cap >= DEC_FMT_MAX
 * to be always sufficient; returns -1 if cap is too small. */
int dec_format(const dec_t *d, char *buf, size_t cap);

dec_t dec_zero(void);
dec_t dec_from_int(int64_t v);
/* Value as int64 if it is integral and fits; else returns false. */
bool dec_to_int(const dec_t *d, int64_t *out);

int dec_add(dec_t *out, const dec_t *a, const dec_t *b); /* scale = max of both */
int dec_sub(dec_t *out, const dec_t *a, const dec_t *b);
int dec_mul(dec_t *out, const dec_t *a, const dec_t *b); /* scale = sum; DEC_ESCALE if > max */
/* a / b rounded to `scale` places with mode r. */
int dec_div(dec_t *out, const dec_t *a, const dec_t *b, int scale, dec_rounding r);
int dec_neg(dec_t *out, const dec_t *a);
int dec_cmp(const dec_t *a, const dec_t *b); /* -1, 0, 1 — by value: 1.50 == 1.5 */
int dec_sign(const dec_t *a);                /* -1, 0, 1 */
bool dec_is_zero(const dec_t *a);
dec_t dec_min(const dec_t *a, const dec_t *b);
dec_t dec_max(const dec_t *a, const dec_t *b);

/* Rounds to `places` (0..DEC_MAX_SCALE) with mode r; the result has scale
 * exactly `places` (padding with zeros when the input had fewer). */
int dec_round(dec_t *out, const dec_t *a, int places, dec_rounding r);
/* Exact change of scale: pads, or drops only zero digits, else DEC_EINEXACT. */
int dec_rescale(dec_t *out, const dec_t *a, int scale);
/* Strips trailing fractional zeros ("1.500" -> "1.5", "2.00" -> "2"). */
dec_t dec_normalize(const dec_t *a);
/* Number of fractional digits after normalizing ("1.500" -> 1). */
int dec_places(const dec_t *a);

const char *dec_strerror(int code);

#endif
