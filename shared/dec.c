/* dec.c — exact decimal numbers for money and quantities (prefix dec_).
 *
 * DESIGN — A dec_t is value = c / 10^scale with a signed 128-bit coefficient.
 * Invariants, asserted on entry and re-established before every store:
 *   |c| < 10^38 (DEC_MAX_DIGITS)   and   0 <= scale <= DEC_MAX_SCALE (36).
 * Since 10^38 < 2^127, the magnitude of any valid coefficient fits a signed
 * __int128, and twice it still fits an unsigned one.  All arithmetic is done on
 * (sign, unsigned magnitude) pairs in unsigned __int128 with
 * __builtin_*_overflow checks, so an intermediate that does not fit 128 bits
 * is either proven to make the result too large (DEC_EOVERFLOW) or avoided:
 *   - add/sub/cmp align scales by multiplying one magnitude by 10^k; if that
 *     overflows 2^128 the aligned value is > 3.4e38 while the other is < 1e38,
 *     so the sum cannot fit and the comparison is decided.
 *   - div computes the quotient by long division, one decimal digit at a time,
 *     with a remainder that never exceeds the divisor (< 2^127), so it never
 *     reports an overflow the exact, rounded result would not have.
 * Nothing rounds unless the caller asks (dec_round, dec_div).  No float or
 * double anywhere.  Every function is pure and thread-safe, and writes *out
 * only on success, after reading its inputs, so out may alias a or b.
 *
 * Invalid arguments that are not dec_t values (scale/places outside 0..36,
 * an unknown rounding mode) are reported as DEC_ESCALE / DEC_ESYNTAX; an
 * invalid dec_t is a caller bug (assert, and ML_NEVER guard in release).
 */
#include "fmacros.h"
#include "dec.h"

#include <assert.h>

__extension__ typedef __int128 dec_i128;
__extension__ typedef unsigned __int128 dec_u128;

/* 10^n for n = 0..38.  10^38 < 2^127, so every entry fits both 128-bit types. */
#define DEC_P19   10000000000000000000ULL
#define DEC_HI(n) ((dec_u128)DEC_P19 * n##ULL)
static const dec_u128 dec_p10[DEC_MAX_DIGITS + 1] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
    DEC_P19,
    DEC_HI(10),
    DEC_HI(100),
    DEC_HI(1000),
    DEC_HI(10000),
    DEC_HI(100000),
    DEC_HI(1000000),
    DEC_HI(10000000),
    DEC_HI(100000000),
    DEC_HI(1000000000),
    DEC_HI(10000000000),
    DEC_HI(100000000000),
    DEC_HI(1000000000000),
    DEC_HI(10000000000000),
    DEC_HI(100000000000000),
    DEC_HI(1000000000000000),
    DEC_HI(10000000000000000),
    DEC_HI(100000000000000000),
    DEC_HI(1000000000000000000),
    DEC_HI(10000000000000000000),
};
#undef DEC_HI
#undef DEC_P19

#define DEC_LIMIT (dec_p10[DEC_MAX_DIGITS]) /* every |c| is below this */

/* Exponents saturate here: far beyond any scale or any input length, so a
 * saturated exponent still gives the right answer, and int64 cannot overflow. */
#define DEC_EXP_CAP INT64_C(100000000000000000)

/* ---- helpers ---------------------------------------------------------- */

static bool dec_valid(const dec_t *d) {
    if (d->scale < 0 || d->scale > DEC_MAX_SCALE) return false;
    dec_u128 m = d->c < 0 ? (dec_u128)0 - (dec_u128)d->c : (dec_u128)d->c;
    return m < DEC_LIMIT;
}

static dec_u128 dec_mag(dec_i128 c) {
    /* Valid coefficients are far from INT128_MIN; unsigned negation is safe anyway. */
    return c < 0 ? (dec_u128)0 - (dec_u128)c : (dec_u128)c;
}

/* Builds a dec_t from sign and magnitude; the magnitude must be < 10^38. */
static dec_t dec_make(bool neg, dec_u128 mag, int scale) {
    assert(mag < DEC_LIMIT);
    dec_t d;
    d.c = neg ? -(dec_i128)mag : (dec_i128)mag;
    d.scale = (int32_t)scale;
    return d;
}

static bool dec_mode_valid(dec_rounding r) {
    switch (r) {
    case DEC_ROUND_HALF_EVEN:
    case DEC_ROUND_HALF_UP:
    case DEC_ROUND_DOWN:
    case DEC_ROUND_UP:
    case DEC_ROUND_FLOOR:
    case DEC_ROUND_CEILING:
        return true;
    }
    return false;
}

/* Whether a truncated magnitude q must be bumped by one.  rem/den is the
 * discarded fraction (0 <= rem < den); neg is the sign of the exact result. */
static bool dec_bump(dec_rounding r, bool neg, dec_u128 q, dec_u128 rem, dec_u128 den) {
    if (rem == 0) return false;
    dec_u128 other = den - rem; /* compare 2*rem with den without overflow */
    int half = rem < other ? -1 : (rem == other ? 0 : 1);
    switch (r) {
    case DEC_ROUND_HALF_EVEN:
        return half > 0 || (half == 0 && (q & 1) != 0);
    case DEC_ROUND_HALF_UP:
        return half >= 0;
    case DEC_ROUND_DOWN:
        return false;
    case DEC_ROUND_UP:
        return true;
    case DEC_ROUND_FLOOR:
        return neg;
    case DEC_ROUND_CEILING:
        return !neg;
    }
    return false;
}

/* *out = m * 10^k; false if it does not fit 128 bits. */
static bool dec_scale_up(dec_u128 *out, dec_u128 m, int k) {
    assert(k >= 0 && k <= DEC_MAX_DIGITS);
    return !__builtin_mul_overflow(m, dec_p10[k], out);
}

/* a + b, with b's sign flipped when negate_b. */
static int dec_addsub(dec_t *out, const dec_t *a, const dec_t *b, bool negate_b) {
    assert(dec_valid(a) && dec_valid(b));
    if (ML_NEVER(!dec_valid(a) || !dec_valid(b))) return DEC_EOVERFLOW;
    int s = a->scale > b->scale ? a->scale : b->scale;
    bool an = a->c < 0, bn = (b->c < 0) != negate_b;
    dec_u128 am, bm;
    /* One side fails to align only if it exceeds 2^128 > 3*10^38 while the
     * other is < 10^38: the sum is then >= 2*10^38 whatever the signs. */
    if (!dec_scale_up(&am, dec_mag(a->c), s - a->scale)) return DEC_EOVERFLOW;
    if (!dec_scale_up(&bm, dec_mag(b->c), s - b->scale)) return DEC_EOVERFLOW;
    dec_u128 m;
    bool neg;
    if (an == bn) {
        if (__builtin_add_overflow(am, bm, &m)) return DEC_EOVERFLOW;
        neg = an;
    } else if (am >= bm) {
        m = am - bm;
        neg = an;
    } else {
        m = bm - am;
        neg = bn;
    }
    if (m >= DEC_LIMIT) return DEC_EOVERFLOW;
    *out = dec_make(neg && m != 0, m, s);
    return DEC_OK;
}

/* ---- parse / format --------------------------------------------------- */

static bool dec_isdigit(char ch) { return ch >= '0' && ch <= '9'; }

/* Appends the digits p[0..n) to *m; false once more than 38 are significant. */
static bool dec_accum(dec_u128 *m, int *sig, const char *p, size_t n) {
    for (size_t k = 0; k < n; k++) {
        int dig = p[k] - '0';
        if (*sig == 0 && dig == 0) continue;
        if (++*sig > DEC_MAX_DIGITS) return false;
        *m = *m * 10 + (dec_u128)dig;
    }
    return true;
}

int dec_parse(dec_t *out, const char *s, size_t len) {
    assert(out != NULL && (s != NULL || len == 0));
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';

    size_t int_beg = i;
    while (i < len && dec_isdigit(s[i])) i++;
    size_t int_end = i;
    if (int_end == int_beg) return DEC_ESYNTAX;

    size_t frac_beg = i, frac_end = i;
    if (i < len && s[i] == '.') {
        frac_beg = ++i;
        while (i < len && dec_isdigit(s[i])) i++;
        frac_end = i;
        if (frac_end == frac_beg) return DEC_ESYNTAX;
    }

    int64_t expo = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < len && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        size_t exp_beg = i;
        while (i < len && dec_isdigit(s[i])) {
            expo = expo * 10 + (s[i] - '0');
            if (expo > DEC_EXP_CAP) expo = DEC_EXP_CAP;
            i++;
        }
        if (i == exp_beg) return DEC_ESYNTAX;
        if (eneg) expo = -expo;
    }
    if (i != len) return DEC_ESYNTAX;

    /* Syntax is valid.  Scale = fractional digits - exponent. */
    size_t nfrac = frac_end - frac_beg;
    int64_t scale = (nfrac > (size_t)DEC_EXP_CAP ? DEC_EXP_CAP : (int64_t)nfrac) - expo;
    if (scale > DEC_MAX_SCALE) return DEC_ESCALE;

    /* Coefficient: all digits, leading zeros skipped, at most 38 significant. */
    dec_u128 m = 0;
    int sig = 0;
    if (!dec_accum(&m, &sig, s + int_beg, int_end - int_beg) ||
        !dec_accum(&m, &sig, s + frac_beg, frac_end - frac_beg))
        return DEC_EOVERFLOW;
    if (scale < 0) {
        /* Positive net exponent: fold it into the coefficient. */
        if (m != 0) {
            if ((int64_t)sig - scale > DEC_MAX_DIGITS) return DEC_EOVERFLOW;
            m *= dec_p10[-scale];
        }
        scale = 0;
    }
    assert(m < DEC_LIMIT);
    *out = dec_make(neg && m != 0, m, (int)scale);
    return DEC_OK;
}

int dec_parse_cstr(dec_t *out, const char *s) {
    assert(s != NULL);
    return dec_parse(out, s, strlen(s));
}

int dec_format(const dec_t *d, char *buf, size_t cap) {
    assert(d != NULL && (buf != NULL || cap == 0));
    if (ML_NEVER(!dec_valid(d))) {
        if (cap > 0) buf[0] = '\0';
        return -1;
    }
    char dig[DEC_MAX_DIGITS + 1];
    int n = 0;
    dec_u128 m = dec_mag(d->c);
    do {
        dig[n++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m != 0);
    /* Pad with leading zeros so there is at least one integer digit. */
    int scale = d->scale;
    int ndig = n > scale ? n : scale + 1;
    bool neg = d->c < 0;
    size_t need = (size_t)neg + (size_t)ndig + (scale > 0 ? 1u : 0u);
    if (need + 1 > cap) {
        if (cap > 0) buf[0] = '\0';
        return -1;
    }
    size_t o = 0;
    if (neg) buf[o++] = '-';
    for (int k = ndig - 1; k >= 0; k--) {
        buf[o++] = k < n ? dig[k] : '0';
        if (k == scale && scale > 0) buf[o++] = '.';
    }
    buf[o] = '\0';
    assert(o == need);
    return (int)o;
}

/* ---- construction / conversion ---------------------------------------- */

dec_t dec_zero(void) {
    dec_t d;
    d.c = 0;
    d.scale = 0;
    return d;
}

dec_t dec_from_int(int64_t v) {
    dec_t d;
    d.c = v;
    d.scale = 0;
    return d;
}

bool dec_to_int(const dec_t *d, int64_t *out) {
    assert(dec_valid(d));
    dec_i128 p = (dec_i128)dec_p10[d->scale];
    if (d->c % p != 0) return false;
    dec_i128 q = d->c / p;
    if (q < INT64_MIN || q > INT64_MAX) return false;
    *out = (int64_t)q;
    return true;
}

/* ---- arithmetic ------------------------------------------------------- */

int dec_add(dec_t *out, const dec_t *a, const dec_t *b) { return dec_addsub(out, a, b, false); }

int dec_sub(dec_t *out, const dec_t *a, const dec_t *b) { return dec_addsub(out, a, b, true); }

int dec_mul(dec_t *out, const dec_t *a, const dec_t *b) {
    assert(dec_valid(a) && dec_valid(b));
    if (ML_NEVER(!dec_valid(a) || !dec_valid(b))) return DEC_EOVERFLOW;
    int s = a->scale + b->scale;
    if (s > DEC_MAX_SCALE) return DEC_ESCALE;
    dec_u128 m;
    if (__builtin_mul_overflow(dec_mag(a->c), dec_mag(b->c), &m)) return DEC_EOVERFLOW;
    if (m >= DEC_LIMIT) return DEC_EOVERFLOW;
    *out = dec_make(((a->c < 0) != (b->c < 0)) && m != 0, m, s);
    return DEC_OK;
}

int dec_div(dec_t *out, const dec_t *a, const dec_t *b, int scale, dec_rounding r) {
    assert(dec_valid(a) && dec_valid(b));
    if (ML_NEVER(!dec_valid(a) || !dec_valid(b))) return DEC_EOVERFLOW;
    if (scale < 0 || scale > DEC_MAX_SCALE) return DEC_ESCALE;
    if (!dec_mode_valid(r)) return DEC_ESYNTAX;
    if (b->c == 0) return DEC_EDIVZERO;

    /* q = |a.c| * 10^e / |b.c|, or |a.c| / (|b.c| * 10^-e) when e < 0. */
    int e = scale + b->scale - a->scale; /* -36 .. 72 */
    bool neg = (a->c < 0) != (b->c < 0);
    dec_u128 num = dec_mag(a->c), den = dec_mag(b->c);
    dec_u128 q, rem;
    if (e < 0) {
        if (!dec_scale_up(&den, den, -e)) {
            /* den > 2^128 > 2 * num: quotient 0, remainder below half. */
            q = 0;
            rem = num;
            den = (dec_u128)-1; /* any den > 2*rem gives the same rounding */
        } else {
            q = num / den;
            rem = num % den;
        }
    } else {
        dec_u128 n2;
        if (e <= DEC_MAX_DIGITS && dec_scale_up(&n2, num, e)) {
            q = n2 / den;
            rem = n2 % den;
        } else {
            /* Long division: bring down e zero digits.  rem < den < 2^127,
             * so rem + rem never overflows and 10*rem is built by additions. */
            q = num / den;
            rem = num % den;
            for (int k = 0; k < e; k++) {
                dec_u128 r10 = 0;
                unsigned digit = 0;
                for (int t = 0; t < 10; t++) {
                    r10 += rem;
                    if (r10 >= den) {
                        r10 -= den;
                        digit++;
                    }
                }
                rem = r10;
                /* q only grows: once q >= 10^37 the next digit makes it too big. */
                if (q >= dec_p10[DEC_MAX_DIGITS - 1]) return DEC_EOVERFLOW;
                q = q * 10 + digit;
            }
        }
    }
    if (q >= DEC_LIMIT) return DEC_EOVERFLOW;
    /* A bump cannot reach 10^38: that needs |a/b| * 10^scale in
     * (10^38 - 1, 10^38), which a 38-digit dividend cannot produce. */
    if (dec_bump(r, neg, q, rem, den)) q++;
    if (ML_NEVER(q >= DEC_LIMIT)) return DEC_EOVERFLOW;
    *out = dec_make(neg && q != 0, q, scale);
    return DEC_OK;
}

int dec_neg(dec_t *out, const dec_t *a) {
    assert(dec_valid(a));
    if (ML_NEVER(!dec_valid(a))) return DEC_EOVERFLOW;
    dec_t d = *a;
    d.c = -d.c; /* |c| < 10^38: cannot overflow */
    *out = d;
    return DEC_OK;
}

int dec_cmp(const dec_t *a, const dec_t *b) {
    assert(dec_valid(a) && dec_valid(b));
    int sa = dec_sign(a), sb = dec_sign(b);
    if (sa != sb) return sa < sb ? -1 : 1;
    if (sa == 0) return 0;
    int s = a->scale > b->scale ? a->scale : b->scale;
    dec_u128 am, bm;
    bool afit = dec_scale_up(&am, dec_mag(a->c), s - a->scale);
    bool bfit = dec_scale_up(&bm, dec_mag(b->c), s - b->scale);
    int mc; /* magnitude comparison; at most one side can fail to fit */
    if (!afit)
        mc = 1;
    else if (!bfit)
        mc = -1;
    else
        mc = am < bm ? -1 : (am > bm ? 1 : 0);
    return sa > 0 ? mc : -mc;
}

int dec_sign(const dec_t *a) { return a->c < 0 ? -1 : (a->c > 0 ? 1 : 0); }

bool dec_is_zero(const dec_t *a) { return a->c == 0; }

/* On equal values (1.50 vs 1.5) both return a. */
dec_t dec_min(const dec_t *a, const dec_t *b) { return dec_cmp(b, a) < 0 ? *b : *a; }

dec_t dec_max(const dec_t *a, const dec_t *b) { return dec_cmp(b, a) > 0 ? *b : *a; }

/* ---- scale ------------------------------------------------------------ */

int dec_round(dec_t *out, const dec_t *a, int places, dec_rounding r) {
    assert(dec_valid(a));
    if (ML_NEVER(!dec_valid(a))) return DEC_EOVERFLOW;
    if (places < 0 || places > DEC_MAX_SCALE) return DEC_ESCALE;
    if (!dec_mode_valid(r)) return DEC_ESYNTAX;
    if (places >= a->scale) return dec_rescale(out, a, places);
    dec_u128 den = dec_p10[a->scale - places];
    dec_u128 m = dec_mag(a->c);
    dec_u128 q = m / den, rem = m % den;
    bool neg = a->c < 0;
    if (dec_bump(r, neg, q, rem, den)) q++; /* q < 10^37: stays < 10^38 */
    *out = dec_make(neg && q != 0, q, places);
    return DEC_OK;
}

int dec_rescale(dec_t *out, const dec_t *a, int scale) {
    assert(dec_valid(a));
    if (ML_NEVER(!dec_valid(a))) return DEC_EOVERFLOW;
    if (scale < 0 || scale > DEC_MAX_SCALE) return DEC_ESCALE;
    dec_u128 m = dec_mag(a->c);
    bool neg = a->c < 0;
    if (scale >= a->scale) {
        if (!dec_scale_up(&m, m, scale - a->scale) || m >= DEC_LIMIT) return DEC_EOVERFLOW;
    } else {
        dec_u128 den = dec_p10[a->scale - scale];
        if (m % den != 0) return DEC_EINEXACT;
        m /= den;
    }
    *out = dec_make(neg, m, scale);
    return DEC_OK;
}

dec_t dec_normalize(const dec_t *a) {
    assert(dec_valid(a));
    dec_t d = *a;
    if (d.c == 0) {
        d.scale = 0;
        return d;
    }
    while (d.scale > 0 && d.c % 10 == 0) {
        d.c /= 10;
        d.scale--;
    }
    return d;
}

int dec_places(const dec_t *a) { return dec_normalize(a).scale; }

const char *dec_strerror(int code) {
    switch (code) {
    case DEC_OK:
        return "ok";
    case DEC_ESYNTAX:
        return "not a decimal number";
    case DEC_EOVERFLOW:
        return "decimal overflow: more than 38 digits";
    case DEC_ESCALE:
        return "decimal scale: more than 36 places";
    case DEC_EDIVZERO:
        return "division by zero";
    case DEC_EINEXACT:
        return "rescale would lose digits";
    }
    return "unknown decimal error";
}
