/* test_dec.c — unit tests for shared/dec.c (exact decimals).
 *
 * DESIGN — Table-driven.  Every table row stores its strings inline (char
 * arrays, never pointers: Debian's Criterion 2.4.1 crashes on pointers in
 * ParameterizedTest parameters under PIE).  Decimals are written as strings,
 * parsed with dec_parse_cstr and compared by their formatted form, which pins
 * both the value and the scale ("1.50" is not "1.5").  Beside the hand-written
 * edge tables there are
 *   - brute-force checks of dec_round / dec_div / dec_add / dec_cmp over small
 *     ranges against an int64 reference written independently of dec.c;
 *   - big_*_cases, 38-digit rows generated once with Python's unbounded
 *     integers (seeded; exercises dec_div's long-division path).
 * Every failing operation must leave *out untouched: checked with a sentinel.
 */
#include "fmacros.h"
#include "dec.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>

#define NINES38 "99999999999999999999999999999999999999"
#define ZEROS36 "000000000000000000000000000000000000"
#define ZEROS35 "00000000000000000000000000000000000"

#define HE DEC_ROUND_HALF_EVEN
#define HU DEC_ROUND_HALF_UP
#define DN DEC_ROUND_DOWN
#define UP DEC_ROUND_UP
#define FL DEC_ROUND_FLOOR
#define CE DEC_ROUND_CEILING

/* ---- helpers ---------------------------------------------------------- */

static dec_t P(const char *s) {
    dec_t d;
    int rc = dec_parse_cstr(&d, s);
    cr_assert_eq(rc, DEC_OK, "dec_parse(\"%s\") = %d (%s)", s, rc, dec_strerror(rc));
    return d;
}

/* Formats into buf (DEC_FMT_MAX bytes) and returns it. */
static const char *F(const dec_t *d, char *buf) {
    int n = dec_format(d, buf, DEC_FMT_MAX);
    cr_assert(n >= 0, "dec_format failed");
    cr_assert_eq((size_t)n, strlen(buf));
    return buf;
}

static dec_t sentinel(void) {
    dec_t d;
    d.c = 424242;
    d.scale = 3;
    return d;
}

static bool is_sentinel(const dec_t *d) { return d->c == 424242 && d->scale == 3; }

/* Checks an operation's result: rc, and either the formatted value or an
 * untouched out. */
static void check_result(const char *what, int rc, int want_rc, const dec_t *out,
                         const char *want) {
    char buf[DEC_FMT_MAX];
    cr_assert_eq(rc, want_rc, "%s: rc %d (%s), want %d (%s)", what, rc, dec_strerror(rc), want_rc,
                 dec_strerror(want_rc));
    if (want_rc == DEC_OK) {
        cr_assert_str_eq(F(out, buf), want, "%s: got %s, want %s", what, buf, want);
        cr_assert(out->scale >= 0 && out->scale <= DEC_MAX_SCALE);
    } else {
        cr_assert(is_sentinel(out), "%s: out modified on error", what);
    }
}

/* int64 reference rounding of n/d (d != 0), written independently of dec.c:
 * signed truncating division, then a correction by mode. */
static int64_t ref_div(int64_t n, int64_t d, dec_rounding r) {
    if (d < 0) {
        n = -n;
        d = -d;
    }
    int64_t q = n / d, rem = n % d; /* q truncated toward zero */
    if (rem == 0) return q;
    int64_t sgn = n < 0 ? -1 : 1;
    int64_t twice = 2 * (rem < 0 ? -rem : rem);
    switch (r) {
    case DEC_ROUND_DOWN:
        return q;
    case DEC_ROUND_UP:
        return q + sgn;
    case DEC_ROUND_FLOOR:
        return n < 0 ? q - 1 : q;
    case DEC_ROUND_CEILING:
        return n > 0 ? q + 1 : q;
    case DEC_ROUND_HALF_UP:
        return twice >= d ? q + sgn : q;
    case DEC_ROUND_HALF_EVEN:
        if (twice > d || (twice == d && q % 2 != 0)) return q + sgn;
        return q;
    }
    cr_assert_fail("bad mode");
    return 0;
}

static const int64_t p10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

static dec_t mk(int64_t c, int scale) {
    dec_t d;
    d.c = c;
    d.scale = scale;
    return d;
}

/* ---- dec_parse -------------------------------------------------------- */

struct parse_ok_case {
    char in[96];
    char want[DEC_FMT_MAX];
    int scale;
};

static struct parse_ok_case parse_ok_cases[] = {
    {"0", "0", 0},
    {"-0", "0", 0},
    {"+0", "0", 0},
    {"-0.00", "0.00", 2},
    {"0.0", "0.0", 1},
    {"007", "7", 0},
    {"-007.50", "-7.50", 2},
    {"12.50", "12.50", 2},
    {"+12.5", "12.5", 1},
    {"-0.050", "-0.050", 3},
    {"1250", "1250", 0},
    {"1.5e3", "1500", 0},
    {"1.5E3", "1500", 0},
    {"1.5e+3", "1500", 0},
    {"-1.5e3", "-1500", 0},
    {"15e-1", "1.5", 1},
    {"15E-1", "1.5", 1},
    {"1.50e1", "15.0", 1},
    {"1.5e1", "15", 0},
    {"1.5e0", "1.5", 1},
    {"1.5e-0", "1.5", 1},
    {"5e-0", "5", 0},
    {"100e-2", "1.00", 2},
    {"0.001e3", "1", 0},
    {"1e-36", "0." ZEROS35 "1", 36},
    {"-1e-36", "-0." ZEROS35 "1", 36},
    {"0." ZEROS35 "1", "0." ZEROS35 "1", 36},
    {"1e37", "1" ZEROS36 "0", 0},
    {NINES38, NINES38, 0},
    {"-" NINES38, "-" NINES38, 0},
    {"+" NINES38, NINES38, 0},
    {"9.9999999999999999999999999999999999999e37", NINES38, 0},
    {"99.999999999999999999999999999999999999", "99.999999999999999999999999999999999999", 36},
    {"12345678901234567890123456789012345678e-36", "12.345678901234567890123456789012345678", 36},
    {"0.0000000000000000000000000001e28", "1", 0},
    {"0e100", "0", 0},
    {"0e99999999999999999999999999999", "0", 0},
    {"-0e5", "0", 0},
    {"0e-36", "0." ZEROS36, 36},
    {"0.00e1", "0.0", 1},
    {"0.00e2", "0", 0},
    {"000000000000000000000000000000000000000000000001", "1", 0},
    {"-00000000000000000000000000000000000000000000000000.5", "-0.5", 1},
    {"000000000000000000000000000000000000000000" NINES38 "", NINES38, 0},
    {"1e0000000000000000000000000000000000000000005", "100000", 0},
    {"1e-00000000000000000000000000000000000000000005", "0.00001", 5},
};

ParameterizedTestParameters(dec_parse, ok) {
    return cr_make_param_array(struct parse_ok_case, parse_ok_cases, ML_ARRAY_LEN(parse_ok_cases));
}

ParameterizedTest(struct parse_ok_case *p, dec_parse, ok) {
    dec_t d = sentinel();
    char buf[DEC_FMT_MAX];
    int rc = dec_parse_cstr(&d, p->in);
    cr_assert_eq(rc, DEC_OK, "parse(%s) = %d", p->in, rc);
    cr_assert_str_eq(F(&d, buf), p->want, "parse(%s) -> %s, want %s", p->in, buf, p->want);
    cr_assert_eq(d.scale, p->scale, "parse(%s) scale %d, want %d", p->in, d.scale, p->scale);
    /* dec_parse with an explicit length agrees with the C-string form. */
    dec_t e = sentinel();
    cr_assert_eq(dec_parse(&e, p->in, strlen(p->in)), DEC_OK);
    cr_assert(e.c == d.c && e.scale == d.scale);
}

struct parse_err_case {
    char in[96];
    int rc;
};

static struct parse_err_case parse_err_cases[] = {
    {"", DEC_ESYNTAX},
    {"-", DEC_ESYNTAX},
    {"+", DEC_ESYNTAX},
    {".", DEC_ESYNTAX},
    {".5", DEC_ESYNTAX},
    {"-.5", DEC_ESYNTAX},
    {"5.", DEC_ESYNTAX},
    {"-5.", DEC_ESYNTAX},
    {"5.e3", DEC_ESYNTAX},
    {"1..2", DEC_ESYNTAX},
    {"1.2.3", DEC_ESYNTAX},
    {"e5", DEC_ESYNTAX},
    {"-e5", DEC_ESYNTAX},
    {"1e", DEC_ESYNTAX},
    {"1E", DEC_ESYNTAX},
    {"1e+", DEC_ESYNTAX},
    {"1e-", DEC_ESYNTAX},
    {"1.5e", DEC_ESYNTAX},
    {"1e5.5", DEC_ESYNTAX},
    {"1e--5", DEC_ESYNTAX},
    {"1ee5", DEC_ESYNTAX},
    {"1e5e5", DEC_ESYNTAX},
    {" 1", DEC_ESYNTAX},
    {"1 ", DEC_ESYNTAX},
    {"\t1", DEC_ESYNTAX},
    {"1\n", DEC_ESYNTAX},
    {"- 1", DEC_ESYNTAX},
    {"1,5", DEC_ESYNTAX},
    {"1_000", DEC_ESYNTAX},
    {"1'000", DEC_ESYNTAX},
    {"0x10", DEC_ESYNTAX},
    {"0X1F", DEC_ESYNTAX},
    {"inf", DEC_ESYNTAX},
    {"-inf", DEC_ESYNTAX},
    {"Infinity", DEC_ESYNTAX},
    {"nan", DEC_ESYNTAX},
    {"NaN", DEC_ESYNTAX},
    {"--1", DEC_ESYNTAX},
    {"+-1", DEC_ESYNTAX},
    {"-+1", DEC_ESYNTAX},
    {"1-", DEC_ESYNTAX},
    {"1+1", DEC_ESYNTAX},
    {"12a", DEC_ESYNTAX},
    {"a12", DEC_ESYNTAX},
    {"\xd9\xa1", DEC_ESYNTAX},                /* ARABIC-INDIC DIGIT ONE */
    {"\xef\xbc\x91", DEC_ESYNTAX},            /* FULLWIDTH DIGIT ONE */
    {"1e99999999999999999999x", DEC_ESYNTAX}, /* syntax is checked first */
    {"1" ZEROS36 "00x", DEC_ESYNTAX},
    /* 39 significant digits */
    {"1" ZEROS36 "00", DEC_EOVERFLOW},
    {"-1" ZEROS36 "00", DEC_EOVERFLOW},
    {"123456789012345678901234567890123456789", DEC_EOVERFLOW},
    {"1" NINES38, DEC_EOVERFLOW},
    {"1e38", DEC_EOVERFLOW},
    {"-1e38", DEC_EOVERFLOW},
    {"0.1e39", DEC_EOVERFLOW},
    {"9.9999999999999999999999999999999999999e38", DEC_EOVERFLOW},
    {"1e99999999999999999999999999", DEC_EOVERFLOW},
    {"99.9999999999999999999999999999999999999", DEC_ESCALE}, /* 37 places */
    /* more than 36 places */
    {"1e-37", DEC_ESCALE},
    {"-1e-37", DEC_ESCALE},
    {"0.0" ZEROS35 "1", DEC_ESCALE},
    {"0.0" ZEROS36, DEC_ESCALE},
    {"0e-37", DEC_ESCALE},
    {"1.0" ZEROS36, DEC_ESCALE},
    {"123e-38", DEC_ESCALE},
    {"1e-99999999999999999999", DEC_ESCALE},
    {"10e-37", DEC_ESCALE}, /* the value fits, but the scale as written does not */
};

ParameterizedTestParameters(dec_parse, errors) {
    return cr_make_param_array(struct parse_err_case, parse_err_cases,
                               ML_ARRAY_LEN(parse_err_cases));
}

ParameterizedTest(struct parse_err_case *p, dec_parse, errors) {
    dec_t d = sentinel();
    int rc = dec_parse_cstr(&d, p->in);
    cr_assert_eq(rc, p->rc, "parse(\"%s\") = %d (%s), want %d", p->in, rc, dec_strerror(rc), p->rc);
    cr_assert(is_sentinel(&d), "parse(\"%s\") modified out on error", p->in);
}

Test(dec_parse, length_is_respected) {
    dec_t d = sentinel();
    char buf[DEC_FMT_MAX];
    cr_assert_eq(dec_parse(&d, "12", 1), DEC_OK);
    cr_assert_str_eq(F(&d, buf), "1");
    cr_assert_eq(dec_parse(&d, "1.25xyz", 3), DEC_OK);
    cr_assert_str_eq(F(&d, buf), "1.2");
    cr_assert_eq(dec_parse(&d, "1.25xyz", 4), DEC_OK);
    cr_assert_str_eq(F(&d, buf), "1.25");
    cr_assert_eq(dec_parse(&d, "1.25xyz", 5), DEC_ESYNTAX);
    cr_assert_eq(dec_parse(&d, "7e3", 2), DEC_ESYNTAX);
    d = sentinel();
    cr_assert_eq(dec_parse(&d, "1\0", 2), DEC_ESYNTAX); /* embedded NUL */
    cr_assert_eq(dec_parse(&d,
                           "\0"
                           "1",
                           2),
                 DEC_ESYNTAX);
    cr_assert_eq(dec_parse(&d, "", 0), DEC_ESYNTAX);
    cr_assert_eq(dec_parse(&d, NULL, 0), DEC_ESYNTAX);
    cr_assert(is_sentinel(&d));
}

/* Inputs far longer than any table row. */
Test(dec_parse, very_long_inputs) {
    enum { N = 100000 };
    char *s = malloc(N + 64);
    cr_assert_not_null(s);
    char buf[DEC_FMT_MAX];
    dec_t d;

    /* 100000 leading zeros, then 1.5 */
    memset(s, '0', N);
    memcpy(s + N, "1.5", 4);
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_OK);
    cr_assert_str_eq(F(&d, buf), "1.5");

    /* leading zeros then 38 nines: still 38 significant digits */
    memcpy(s + N, NINES38, sizeof NINES38);
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_OK);
    cr_assert_str_eq(F(&d, buf), NINES38);

    /* ... and 39 nines */
    memcpy(s + N, "9" NINES38, sizeof NINES38 + 1);
    d = sentinel();
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_EOVERFLOW);
    cr_assert(is_sentinel(&d));

    /* 100000 significant digits */
    memset(s, '7', N);
    s[N] = '\0';
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_EOVERFLOW);
    cr_assert(is_sentinel(&d));

    /* 0.000…0 with 100000 places */
    s[0] = '0';
    s[1] = '.';
    memset(s + 2, '0', N);
    s[N + 2] = '\0';
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_ESCALE);
    /* … cancelled by the exponent: the scale is exactly 100000 - 99998 = 2 */
    memcpy(s + N + 2, "e99998", 7);
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_OK);
    cr_assert_str_eq(F(&d, buf), "0.00");
    memcpy(s + N + 2, "e100000", 8);
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_OK);
    cr_assert_str_eq(F(&d, buf), "0");
    memcpy(s + N + 2, "e99963", 7); /* scale 37 */
    d = sentinel();
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_ESCALE);
    cr_assert(is_sentinel(&d));

    /* an exponent with 100000 digits */
    memcpy(s, "1e-", 3);
    memset(s + 3, '0', N);
    memcpy(s + 3 + N, "5", 2);
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_OK);
    cr_assert_str_eq(F(&d, buf), "0.00001");
    memset(s + 3, '9', N + 1); /* 1e-999…9: far beyond any scale */
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_ESCALE);
    s[2] = '+';
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_EOVERFLOW);
    s[0] = '0';
    cr_assert_eq(dec_parse_cstr(&d, s), DEC_OK);
    cr_assert_str_eq(F(&d, buf), "0");
    free(s);
}

/* Every digit count 1..38 at every scale 0..36 parses and formats back. */
Test(dec_parse, roundtrip_all_widths) {
    char in[64], buf[DEC_FMT_MAX];
    int checked = 0;
    for (int digits = 1; digits <= DEC_MAX_DIGITS; digits++) {
        for (int scale = 0; scale <= DEC_MAX_SCALE; scale++) {
            for (int neg = 0; neg <= 1; neg++) {
                /* digits "123456789123…", point placed `scale` from the end */
                char coef[DEC_MAX_DIGITS + DEC_MAX_SCALE + 2];
                int n = 0;
                for (int k = 0; k < digits; k++) coef[n++] = (char)('1' + k % 9);
                while (n < scale + 1) { /* leading zeros for "0.00…" */
                    memmove(coef + 1, coef, (size_t)n);
                    coef[0] = '0';
                    n++;
                }
                int o = 0;
                if (neg) in[o++] = '-';
                for (int k = 0; k < n; k++) {
                    if (k == n - scale) in[o++] = '.';
                    in[o++] = coef[k];
                }
                in[o] = '\0';
                dec_t d = P(in);
                cr_assert_eq(d.scale, scale);
                cr_assert_str_eq(F(&d, buf), in);
                cr_assert_eq(dec_sign(&d), neg ? -1 : 1);
                checked++;
            }
        }
    }
    cr_assert_eq(checked, 38 * 37 * 2);
}

/* ---- dec_format ------------------------------------------------------- */

struct format_case {
    int64_t c;
    int scale;
    char want[DEC_FMT_MAX];
};

static struct format_case format_cases[] = {
    {0, 0, "0"},
    {0, 1, "0.0"},
    {0, 2, "0.00"},
    {0, 36, "0." ZEROS36},
    {5, 1, "0.5"},
    {-5, 1, "-0.5"},
    {-50, 3, "-0.050"},
    {1250, 0, "1250"},
    {1250, 2, "12.50"},
    {-1250, 4, "-0.1250"},
    {100, 2, "1.00"},
    {7, 0, "7"},
    {-7, 0, "-7"},
    {1, 36, "0." ZEROS35 "1"},
    {-1, 36, "-0." ZEROS35 "1"},
    {123456, 3, "123.456"},
    {123456, 6, "0.123456"},
    {123456, 7, "0.0123456"},
    {INT64_MAX, 0, "9223372036854775807"},
    {INT64_MIN, 0, "-9223372036854775808"},
    {INT64_MIN, 18, "-9.223372036854775808"},
    {INT64_MIN, 19, "-0.9223372036854775808"},
    {INT64_MIN, 20, "-0.09223372036854775808"},
};

ParameterizedTestParameters(dec_format, values) {
    return cr_make_param_array(struct format_case, format_cases, ML_ARRAY_LEN(format_cases));
}

ParameterizedTest(struct format_case *p, dec_format, values) {
    dec_t d = mk(p->c, p->scale);
    char buf[DEC_FMT_MAX];
    size_t len = strlen(p->want);
    int n = dec_format(&d, buf, sizeof buf);
    cr_assert_eq(n, (int)len);
    cr_assert_str_eq(buf, p->want);
    /* exactly len + 1 bytes is enough; len bytes is not */
    char small[DEC_FMT_MAX];
    cr_assert_eq(dec_format(&d, small, len + 1), (int)len);
    cr_assert_str_eq(small, p->want);
    memset(small, 'x', sizeof small);
    cr_assert_eq(dec_format(&d, small, len), -1);
    cr_assert_eq(small[0], '\0', "a failed format leaves an empty string");
    cr_assert_eq(dec_format(&d, small, 1), -1);
    cr_assert_eq(dec_format(&d, NULL, 0), -1);
    /* and parses back to the same coefficient and scale */
    dec_t e = P(buf);
    cr_assert(e.c == d.c && e.scale == d.scale);
}

/* The widest values need DEC_FMT_MAX at most. */
Test(dec_format, widest_fit_fmt_max) {
    static const char *const widest[] = {
        "-" NINES38,
        "-99.999999999999999999999999999999999999",
        "-0." ZEROS35 "1",
        "-0.999999999999999999999999999999999999",
    };
    for (size_t k = 0; k < ML_ARRAY_LEN(widest); k++) {
        dec_t d = P(widest[k]);
        char buf[DEC_FMT_MAX];
        int n = dec_format(&d, buf, sizeof buf);
        cr_assert_eq(n, (int)strlen(widest[k]));
        cr_assert_lt(n, DEC_FMT_MAX);
        cr_assert_str_eq(buf, widest[k]);
    }
}

Test(dec_format, never_negative_zero) {
    char buf[DEC_FMT_MAX];
    dec_t z = P("-0.00"), out = sentinel();
    cr_assert_str_eq(F(&z, buf), "0.00");
    cr_assert_eq(dec_neg(&out, &z), DEC_OK);
    cr_assert_str_eq(F(&out, buf), "0.00");
    dec_t a = P("-1.5"), b = P("1.5");
    cr_assert_eq(dec_add(&out, &a, &b), DEC_OK);
    cr_assert_str_eq(F(&out, buf), "0.0");
    cr_assert_eq(dec_mul(&out, &a, &z), DEC_OK);
    cr_assert_str_eq(F(&out, buf), "0.000");
    dec_t tiny = P("-0.001");
    cr_assert_eq(dec_round(&out, &tiny, 2, DEC_ROUND_HALF_EVEN), DEC_OK);
    cr_assert_str_eq(F(&out, buf), "0.00");
    cr_assert_eq(dec_sign(&out), 0);
    cr_assert(dec_is_zero(&out));
}

/* ---- add / sub / mul -------------------------------------------------- */

struct bin_case {
    char a[DEC_FMT_MAX];
    char b[DEC_FMT_MAX];
    char want[DEC_FMT_MAX];
    int rc;
};
struct div_case {
    char a[DEC_FMT_MAX];
    char b[DEC_FMT_MAX];
    int scale;
    int mode;
    char want[DEC_FMT_MAX];
    int rc;
};

static struct bin_case add_cases[] = {
    {"1.5", "2.25", "3.75", DEC_OK},
    {"1.50", "2", "3.50", DEC_OK},
    {"2", "1.50", "3.50", DEC_OK},
    {"0.1", "0.2", "0.3", DEC_OK},
    {"-1.5", "1.5", "0.0", DEC_OK},
    {"1", "-1.00", "0.00", DEC_OK},
    {"-0.005", "0.004", "-0.001", DEC_OK},
    {"-2.5", "-2.5", "-5.0", DEC_OK},
    {"12.345", "-12.345", "0.000", DEC_OK},
    {"0", "0", "0", DEC_OK},
    {"-0.00", "0.0", "0.00", DEC_OK},
    {"100", "0.01", "100.01", DEC_OK},
    {"-100", "0.01", "-99.99", DEC_OK},
    {"0." ZEROS35 "1", "0." ZEROS35 "1", "0." ZEROS35 "2", DEC_OK},
    {NINES38, "-1", "99999999999999999999999999999999999998", DEC_OK},
    {"-" NINES38, NINES38, "0", DEC_OK},
    {"99999999999999999999999999999999999998", "1", NINES38, DEC_OK},
    {NINES38, "1", "", DEC_EOVERFLOW},
    {"-" NINES38, "-1", "", DEC_EOVERFLOW},
    {NINES38, "0.1", "", DEC_EOVERFLOW},
    {"1" ZEROS36, "0." ZEROS35 "1", "", DEC_EOVERFLOW}, /* 73 digits */
    {"50000000000000000000000000000000000000", "50000000000000000000000000000000000000", "",
     DEC_EOVERFLOW},
    /* Aligning a to scale 1 gives 1.8e38: beyond int128, yet the sum fits. */
    {"18000000000000000000000000000000000000", "-9000000000000000000000000000000000000.0",
     "9000000000000000000000000000000000000.0", DEC_OK},
    {"-9000000000000000000000000000000000000.0", "18000000000000000000000000000000000000",
     "9000000000000000000000000000000000000.0", DEC_OK},
    /* aligned a = 10^39 - 10: beyond 2^128; the true sum needs 39 digits */
    {NINES38, "-9999999999999999999999999999999999999.9", "", DEC_EOVERFLOW},
    /* a huge, b tiny, opposite signs */
    {"10000000000000000000000000000000000", "-0.001", "9999999999999999999999999999999999.999",
     DEC_OK},
};

static struct bin_case sub_cases[] = {
    {"3.75", "2.25", "1.50", DEC_OK},
    {"2", "1.50", "0.50", DEC_OK},
    {"1.50", "2", "-0.50", DEC_OK},
    {"1.5", "1.5", "0.0", DEC_OK},
    {"-1", "1", "-2", DEC_OK},
    {"-1", "-1", "0", DEC_OK},
    {"0", "0.001", "-0.001", DEC_OK},
    {"0.001", "-0", "0.001", DEC_OK},
    {"-" NINES38, "-1", "-99999999999999999999999999999999999998", DEC_OK},
    {NINES38, NINES38, "0", DEC_OK},
    {"-" NINES38, "1", "", DEC_EOVERFLOW},
    {NINES38, "-1", "", DEC_EOVERFLOW},
    {"-" NINES38, NINES38, "", DEC_EOVERFLOW},
    {"18000000000000000000000000000000000000", "9000000000000000000000000000000000000.0",
     "9000000000000000000000000000000000000.0", DEC_OK},
    {"-18000000000000000000000000000000000000", "-9000000000000000000000000000000000000.0",
     "-9000000000000000000000000000000000000.0", DEC_OK},
    {"0." ZEROS35 "1", "1", "-0.999999999999999999999999999999999999", DEC_OK},
};

static struct bin_case mul_cases[] = {
    {"1.5", "2", "3.0", DEC_OK},
    {"1.25", "-0.4", "-0.500", DEC_OK},
    {"-3", "-3", "9", DEC_OK},
    {"0", "-5.5", "0.0", DEC_OK},
    {"-0.00", "7", "0.00", DEC_OK},
    {"-5.5", "0", "0.0", DEC_OK},
    {"1234.5678", "-8765.4321", "-10821520.22374638", DEC_OK},
    {"12.50", "3", "37.50", DEC_OK},
    {"0.10", "0.10", "0.0100", DEC_OK},
    {"0.000000000000000001", "0.000000000000000001", "0." ZEROS35 "1", DEC_OK}, /* 18 + 18 */
    {"0.0000000000000000001", "0.000000000000000001", "", DEC_ESCALE},          /* 19 + 18 */
    {"0.0000000000000000000", "0.00000000000000000", "0." ZEROS36, DEC_OK},
    {"0.0000000000000000000", "0.000000000000000000", "", DEC_ESCALE}, /* even for zero */
    {"9999999999999999999", "9999999999999999999", "99999999999999999980000000000000000001",
     DEC_OK},
    {NINES38, "-1", "-" NINES38, DEC_OK},
    {NINES38, "0.1", "9999999999999999999999999999999999999.9", DEC_OK},
    {"10000000000000000000", "10000000000000000000", "", DEC_EOVERFLOW}, /* 10^38 */
    {"-10000000000000000000", "10000000000000000000", "", DEC_EOVERFLOW},
    {"18446744073709551616", "18446744073709551616", "", DEC_EOVERFLOW}, /* 2^128 */
    {"13043817825332782212", "13043817825332782212", "", DEC_EOVERFLOW}, /* ~2^127 */
    {NINES38, NINES38, "", DEC_EOVERFLOW},
    {"-" NINES38, NINES38, "", DEC_EOVERFLOW},
    {NINES38, "1.1", "", DEC_EOVERFLOW},
};

/* Generated once with Python integers (seeded): 38-digit rows.
 * div rows in the long-division path: 26 */
static const struct div_case big_div_cases[] = {
    {"-2110000460903642611.4", "-0.0000001057237762742", 26, DEC_ROUND_UP, "", DEC_EOVERFLOW},
    {"9103.167899910112068054731174", "0.000000000000000000000000000000052", 25, DEC_ROUND_DOWN, "",
     DEC_EOVERFLOW},
    {"0.0000000000000000000007963949", "-15696161427.57183271445", 3, DEC_ROUND_CEILING, "0.000",
     DEC_OK},
    {"-8246716858256379980815195.647394772", "0.0000000000043140", 0, DEC_ROUND_FLOOR,
     "-1911617259679272132780527502873150673", DEC_OK},
    {"-37308960941768359936687448.93", "76833604.2746236543777066033", 19, DEC_ROUND_HALF_UP,
     "-485581293419689783.6566253488795917455", DEC_OK},
    {"3011109517987566923595.62837", "-0.000000089389264702408473619", 24, DEC_ROUND_DOWN, "",
     DEC_EOVERFLOW},
    {"-0.00000000005333734064801", "4658082756906251547220.700965173675920", 33, DEC_ROUND_UP,
     "-0.000000000000000000000000000000012", DEC_OK},
    {"0.000000000000001118157", "0.00000000002227606632", 31, DEC_ROUND_DOWN,
     "0.0000501954422265340068353684089", DEC_OK},
    {"0.000000000099351", "-0.000035800636058658176554983629", 29, DEC_ROUND_FLOOR,
     "-0.00000277511829223415531649115", DEC_OK},
    {"9365.3075688465621873282", "-2", 10, DEC_ROUND_HALF_EVEN, "-4682.6537844233", DEC_OK},
    {"58339219862941.552234630", "0.074932", 25, DEC_ROUND_UP, "", DEC_EOVERFLOW},
    {"450.1610321519065865378585263213015", "0.00000000000000000075169", 31, DEC_ROUND_FLOOR, "",
     DEC_EOVERFLOW},
    {"8797982", "-79.944905171431207780952", 22, DEC_ROUND_CEILING,
     "-110050.5652128037263737149519", DEC_OK},
    {"261485364518348538733928.6818344899", "-66965350267106802496.3824106137", 15, DEC_ROUND_UP,
     "-3904.786034499239184", DEC_OK},
    {"-284930859", "0.00000000000000015783271821765", 2, DEC_ROUND_UP,
     "-1805271189761065418315257.76", DEC_OK},
    {"0.00000000000091", "0.000000000000011154449368058334", 5, DEC_ROUND_DOWN, "81.58179", DEC_OK},
    {"-4467813831647637814174926256.4677941", "576656996833621474438.028297832578", 26,
     DEC_ROUND_DOWN, "-7747783.96200870634046364687691072", DEC_OK},
    {"0.00000000000000033670", "-0.000000000000682234078", 16, DEC_ROUND_HALF_UP,
     "-0.0004935256253793", DEC_OK},
    {"-8730893306212.0444392252910601", "1.6083602544760219625773028", 33, DEC_ROUND_UP, "",
     DEC_EOVERFLOW},
    {"-674238309323689.2457", "-0.1", 24, DEC_ROUND_FLOOR, "", DEC_EOVERFLOW},
    {"7656491715945824319872111391988211.07", "0.0000000000985753207082098028679", 0, DEC_ROUND_UP,
     "", DEC_EOVERFLOW},
    {"-0.161400519819234", "15349410.53446530938366681071353570339", 17, DEC_ROUND_CEILING,
     "-0.00000001051509564", DEC_OK},
    {"-0.00000000000000000098135978", "-44539964162.0424212932273684201", 18, DEC_ROUND_HALF_EVEN,
     "0.000000000000000000", DEC_OK},
    {"27985660187734785634.4898194497160", "584111225281.187678059085283003858", 26, DEC_ROUND_UP,
     "47911526.05270110135524860878272016", DEC_OK},
    {"-191156.88", "-8390832406120477.4303500153", 1, DEC_ROUND_FLOOR, "0.0", DEC_OK},
    {"-319636.965569760247569585596542324", "-56760048799.2638849842799142516314", 9,
     DEC_ROUND_DOWN, "0.000005631", DEC_OK},
    {"0.842", "0.000000000673117502839873024289508", 36, DEC_ROUND_CEILING, "", DEC_EOVERFLOW},
    {"-0.000000000094990200", "-598805210398.23525205058427316632", 31, DEC_ROUND_CEILING,
     "0.0000000000000000000001586328883", DEC_OK},
    {"-518875374964361.6", "-49545534214679670667", 29, DEC_ROUND_UP,
     "0.00001047269714998099374298501", DEC_OK},
    {"34452647838157576908.585039530630", "0.000000002187574818", 20, DEC_ROUND_DOWN, "",
     DEC_EOVERFLOW},
    {"-0.00000000000000000000000275494510", "7796856752254062923328823175295565765", 11,
     DEC_ROUND_HALF_UP, "0.00000000000", DEC_OK},
    {"17240721665294188099474422805.97547", "9476917.42355761752288020038592958", 5,
     DEC_ROUND_CEILING, "1819233079148436076473.97271", DEC_OK},
    {"0.00989605153178418", "-2207173353601.5281381730939000537365", 11, DEC_ROUND_HALF_UP,
     "0.00000000000", DEC_OK},
    {"0.00054", "46786427155475448363156682.8935900", 3, DEC_ROUND_FLOOR, "0.000", DEC_OK},
    {"74719482930016037.79108914335", "-0.00000000000615334422999612", 1, DEC_ROUND_HALF_UP,
     "-12142906383455026092024263178.8", DEC_OK},
    {"673027421.737229", "0.00000797851091079484009865109062", 8, DEC_ROUND_HALF_EVEN,
     "84355016777207.14555532", DEC_OK},
    {"0.000009472902621706485", "-0.000000000033", 18, DEC_ROUND_DOWN, "-287057.655203226818181818",
     DEC_OK},
    {"0.00000000000561911037372021065799", "5322621775944957.98506267", 8, DEC_ROUND_UP,
     "0.00000001", DEC_OK},
    {"0.00000000000000000005744357", "0.0000000000000000009441237687533", 7, DEC_ROUND_CEILING,
     "0.0608433", DEC_OK},
    {"-0.000000000000653346791979725947271", "-0.00000000000007018409", 5, DEC_ROUND_HALF_UP,
     "9.30904", DEC_OK},
    {"-4964391429081693534920", "-0.000558982266375839259990", 11, DEC_ROUND_UP,
     "8881125086969786004543212.53290675992", DEC_OK},
    {"-4775806926837772373682757556.213490", "5721974482212143042604.615755801615", 32,
     DEC_ROUND_UP, "-834643.17110890405258443963215972837644", DEC_OK},
    {"768566.3489106408258562793332196630", "707751738.91597924207", 12, DEC_ROUND_HALF_EVEN,
     "0.001085926472", DEC_OK},
    {"0.0064466903303187733415532141103485", "-626120220459063340655540.9038899934923", 19,
     DEC_ROUND_FLOOR, "-0.0000000000000000001", DEC_OK},
    {"-0.0000000000816", "0.00000000000095340339848532393404733", 25, DEC_ROUND_FLOOR,
     "-85.5881153031741545915562503", DEC_OK},
    {"2404346352680756209707830.960", "638285446594.030448437675979", 4, DEC_ROUND_UP,
     "3766882615780.5160", DEC_OK},
    {"53336391874093942444829849", "0.00000000840356316071403827317031", 0, DEC_ROUND_DOWN,
     "6346878205597020644143415543522286", DEC_OK},
    {"6.0219590325449320916038901453567", "0.000004", 11, DEC_ROUND_HALF_UP, "1505489.75813623302",
     DEC_OK},
    {"-0.000000084197834", "-0.0000000886397", 28, DEC_ROUND_HALF_UP,
     "0.9498885262472684361521981685", DEC_OK},
    {"7386751196.033", "0.110273643684894985914617320267187173", 19, DEC_ROUND_FLOOR,
     "66985645428.9341589763982777216", DEC_OK},
    {"-1515039847.344873", "-85277935075567520479788.650621269368", 25, DEC_ROUND_CEILING,
     "0.0000000000000177659068082", DEC_OK},
    {"0.00000000000000000000000559360", "67646920589338212822842754901.503", 34, DEC_ROUND_HALF_UP,
     "0.0000000000000000000000000000000000", DEC_OK},
    {"-0.00000000000000074314259", "74.12625390835271864212473096", 12, DEC_ROUND_DOWN,
     "0.000000000000", DEC_OK},
    {"18223203488.383506246", "-138142290.59942111706610816159543893", 14, DEC_ROUND_HALF_UP,
     "-131.91618156402476", DEC_OK},
    {"-0.00000070560018", "-0.374004568447012488040101145181645", 26, DEC_ROUND_CEILING,
     "0.00000188660845221725329788", DEC_OK},
    {"-0.0000000000052134120730504240169", "428433244794", 14, DEC_ROUND_UP, "-0.00000000000001",
     DEC_OK},
    {"-307651199563035.195750743001408853", "0.000928233884092715590230225106105", 0,
     DEC_ROUND_HALF_EVEN, "-331437156987371735", DEC_OK},
    {"0.00000812945728", "-406323747061270829920549771.532", 35, DEC_ROUND_DOWN,
     "-0.00000000000000000000000000000002000", DEC_OK},
    {"6240250.034016250568311512", "-46775703930851514.2044665210357", 27, DEC_ROUND_FLOOR,
     "-0.000000000133407934239561787", DEC_OK},
    {"499.085152772222862953", "-0.871576192022475294821794", 34, DEC_ROUND_UP,
     "-572.6236642766774626129825321387522833", DEC_OK},
};
static const struct bin_case big_add_cases[] = {
    {"-0.0000000007370665", "-0.000000000000000380", "-0.000000000737066880", DEC_OK},
    {"-25.245932079032645556816543747442499725", "-0.0000000000000000403",
     "-25.245932079032645597116543747442499725", DEC_OK},
    {"176.5870392146730", "62879351900109822167727", "62879351900109822167903.5870392146730",
     DEC_OK},
    {"-0.94060065442683965986534080590", "6511.352056308503707",
     "6510.41145565407686734013465919410", DEC_OK},
    {"-62459.2539742679", "0.00000000000000000000000000000000955", "", DEC_EOVERFLOW},
    {"-777804133373790557852.3190", "-62971543646162800203.9859", "-840775677019953358056.3049",
     DEC_OK},
    {"2.08694596177538935511600627175", "-353.274789336", "-351.18784337422461064488399372825",
     DEC_OK},
    {"0.0000000000000000000000000000884615", "-84028599989305480114.588444609602924840", "",
     DEC_EOVERFLOW},
    {"0.0000000876508861", "-0.0000000000000000000000997243", "0.0000000876508860999999002757",
     DEC_OK},
    {"-7520835438319.033171394395782648080588", "-0.0000000000073723885682",
     "-7520835438319.033171394403155036648788", DEC_OK},
    {"0.0001577", "6577537427647564111589368686.920733", "6577537427647564111589368686.9208907",
     DEC_OK},
    {"-0.000000149206380069", "992430574.6595725538810415854", "992430574.6595724046746615164",
     DEC_OK},
    {"0.00000039", "0.0000000009216451718", "0.0000003909216451718", DEC_OK},
    {"49504004785679281466132757634059888.04", "-86892976309791.9129", "", DEC_EOVERFLOW},
    {"-598091027101250741779847059754223272", "32783437385624450370792684924175549",
     "-565307589715626291409054374830047723", DEC_OK},
    {"0.00000000000000000000001855079", "-0.0000000000000000003895860024",
     "-0.00000000000000000038956745161", DEC_OK},
    {"-0.00000759467623037130893137466582", "0.000000000000000073",
     "-0.00000759467623029830893137466582", DEC_OK},
    {"0.000000000000000064", "0.0000000000795248189", "0.0000000000795248829", DEC_OK},
    {"953811687.18639069544149724935", "-0.000000000000000008330650594",
     "953811687.186390695441497241019349406", DEC_OK},
    {"0.000000317507959", "3310666015956070973.9584622199", "3310666015956070973.958462537407959",
     DEC_OK},
    {"-364323.910583", "-514064652889459.1473900", "-514064653253783.0579730", DEC_OK},
    {"-594794861551478432632080.798", "-425968935751478754155.906", "-595220830487229911386236.704",
     DEC_OK},
    {"0.000006254960430568", "-1396615641.2232604232019613", "-1396615641.223254168241530732",
     DEC_OK},
    {"-82573.6193594477", "-336777616058558848909775949.85839925369",
     "-336777616058558848909858523.47775870139", DEC_OK},
};
static const struct bin_case big_sub_cases[] = {
    {"-77", "-1662746894302164793508229496573", "1662746894302164793508229496496", DEC_OK},
    {"-0.03628202341402885855", "-6876387346204397.9686509187108326763",
     "6876387346204397.93236889529680381775", DEC_OK},
    {"-442.2850", "0.01728431366", "-442.30228431366", DEC_OK},
    {"-0.000000000005040751340364437622", "73148.49904458698252111567424863107",
     "-73148.499044586987561867014613068692", DEC_OK},
    {"-0.00000000003046232218287691", "0.0000000000000000927487670066",
     "-0.0000000000304624149316439166", DEC_OK},
    {"77006640.0128378639491640931839590", "-0.000084103040847688007569833",
     "77006640.012921966990011781191528833", DEC_OK},
    {"0.000000000000000000013324173447459616", "481329897.44782", "", DEC_EOVERFLOW},
    {"-0.0000000000000000000000001227529", "0.0001280868617514788947523536284",
     "-0.0001280868617514788947524763813", DEC_OK},
    {"0.000000026043062", "314596606302675.6", "-314596606302675.599999973956938", DEC_OK},
    {"0.00000000000000000000000000039471", "0.000000000594015717151056898857",
     "-0.00000000059401571715105689846229", DEC_OK},
    {"0.00000000000047836408894", "0.0000000000026399215118917", "-0.0000000000021615574229517",
     DEC_OK},
    {"0.000024410975087820100", "69766.923753598311174749295", "-69766.923729187336086929195",
     DEC_OK},
    {"-988706988946277057839890.86840", "580817073372332682993754740.6198",
     "-581805780361278960051594631.48820", DEC_OK},
    {"-139556813663247032047041678008392.3489", "-0.000000009016005533832", "", DEC_EOVERFLOW},
    {"-80599481142449092.13", "-8133033009228506490391243109188855",
     "8133033009228506409791761966739762.87", DEC_OK},
    {"-0.00074444147500", "47975317.266212691580416", "-47975317.266957133055416", DEC_OK},
    {"0.00000000723412", "0.00164325247230", "-0.00164324523818", DEC_OK},
    {"-0.03042673455321910455940244618", "-0.000000000000000005289297826",
     "-0.03042673455321909927010462018", DEC_OK},
    {"-720407545.87877971856", "57811287190719533630891153135778.677", "", DEC_EOVERFLOW},
    {"-0.00000001748445", "115201387887704465819674.063218862",
     "-115201387887704465819674.06321887948445", DEC_OK},
    {"367.0919847165354655183241115153483", "4.54", "362.5519847165354655183241115153483", DEC_OK},
    {"4426217360140306699556150.59271780", "41235536879373573364454790.9694147390",
     "-36809319519233266664898640.3766969390", DEC_OK},
    {"547449435256210.836728724458", "0.00000000000061042339",
     "547449435256210.83672872445738957661", DEC_OK},
    {"-8571783073680252.95709881519", "-3968878625.5540686166715",
     "-8571779104801627.4030301985185", DEC_OK},
};
static const struct bin_case big_mul_cases[] = {
    {"-17518118679.293", "-0.000000000000480972", "0.008425724577416912796", DEC_OK},
    {"0.000000000000000008", "-1106378378.463447", "-0.000000008851027027707576", DEC_OK},
    {"-99884980004903.59222133277214", "-0.000000994056", "99291263.68375444526916917014239984",
     DEC_OK},
    {"6070.94500360703", "-0.7", "-4249.661502524921", DEC_OK},
    {"7936882752.415", "0.00000000000060", "0.00476212965144900", DEC_OK},
    {"74473197.5292", "0.000000003", "0.2234195925876", DEC_OK},
    {"0.0000000000000071850", "78.77231", "0.000000000000565979047350", DEC_OK},
    {"-2.7051800551", "-0.000005850", "0.0000158253033223350", DEC_OK},
    {"45995260429634618834.80", "-0.000000000052", "-2391753542.34100017940960", DEC_OK},
    {"0.02035554219959338", "-0.177", "-0.00360293096932802826", DEC_OK},
    {"0.000000000000008", "-0.00000000011782082", "-0.00000000000000000000000094256656", DEC_OK},
    {"0.0000000008409", "0.324785", "0.0000000002731117065", DEC_OK},
    {"147335257267819.939166399149669", "-0.0000000000000001400",
     "-0.0206269360174947914832958809536600", DEC_OK},
    {"-3.614684565489173649", "-0.00069746469", "0.00252111484991669119745595381", DEC_OK},
    {"-92213.988540738776410661", "7.305864283442", "-673702.885313513299946777679494575162",
     DEC_OK},
    {"-0.000000000000169", "-0.0000018887402209", "0.0000000000000000003191970973321", DEC_OK},
    {"2100910", "0.000000000751", "0.001577783410", DEC_OK},
    {"-0.0000001772409", "-0.00002939508987800", "0.000000000005210012185557610200", DEC_OK},
    {"-0.00000370265265601", "-2179234762.5", "8068.949381439946547625", DEC_OK},
    {"-0.0000000000248570", "5809541767063761.70", "-144407.779703903924576900", DEC_OK},
    {"0.01", "-73334886304868.789919642", "-733348863048.68789919642", DEC_OK},
    {"3.39013", "4714.61369254355156397018", "15983.1533175026704635622263234", DEC_OK},
    {"-1", "-0.00000000091754", "0.00000000091754", DEC_OK},
    {"-0.0005", "0.0000000000002", "-0.00000000000000010", DEC_OK},
};

static void run_bin(const char *op, const struct bin_case *p,
                    int (*fn)(dec_t *, const dec_t *, const dec_t *)) {
    dec_t a = P(p->a), b = P(p->b), out = sentinel();
    char what[200];
    snprintf(what, sizeof what, "%s(%s, %s)", op, p->a, p->b);
    check_result(what, fn(&out, &a, &b), p->rc, &out, p->want);
}

ParameterizedTestParameters(dec_add, table) {
    return cr_make_param_array(struct bin_case, add_cases, ML_ARRAY_LEN(add_cases));
}
ParameterizedTest(struct bin_case *p, dec_add, table) {
    run_bin("add", p, dec_add);
    /* a + b == b + a */
    dec_t a = P(p->a), b = P(p->b), x = sentinel(), y = sentinel();
    cr_assert_eq(dec_add(&x, &a, &b), dec_add(&y, &b, &a));
    cr_assert(x.c == y.c && x.scale == y.scale);
}

/* Generated rows run in one test: each row names itself on failure. */
Test(dec_add, big) {
    for (size_t k = 0; k < ML_ARRAY_LEN(big_add_cases); k++)
        run_bin("add", &big_add_cases[k], dec_add);
}

ParameterizedTestParameters(dec_sub, table) {
    return cr_make_param_array(struct bin_case, sub_cases, ML_ARRAY_LEN(sub_cases));
}
ParameterizedTest(struct bin_case *p, dec_sub, table) { run_bin("sub", p, dec_sub); }

Test(dec_sub, big) {
    for (size_t k = 0; k < ML_ARRAY_LEN(big_sub_cases); k++)
        run_bin("sub", &big_sub_cases[k], dec_sub);
}

ParameterizedTestParameters(dec_mul, table) {
    return cr_make_param_array(struct bin_case, mul_cases, ML_ARRAY_LEN(mul_cases));
}
ParameterizedTest(struct bin_case *p, dec_mul, table) {
    run_bin("mul", p, dec_mul);
    dec_t a = P(p->a), b = P(p->b), x = sentinel(), y = sentinel();
    cr_assert_eq(dec_mul(&x, &a, &b), dec_mul(&y, &b, &a));
    cr_assert(x.c == y.c && x.scale == y.scale);
}

Test(dec_mul, big) {
    for (size_t k = 0; k < ML_ARRAY_LEN(big_mul_cases); k++)
        run_bin("mul", &big_mul_cases[k], dec_mul);
}

/* Small values at scales 0..3 against int64 arithmetic. */
Test(dec_add, brute_force_vs_int64) {
    for (int64_t x = -120; x <= 120; x += 7) {
        for (int64_t y = -120; y <= 120; y += 11) {
            for (int sa = 0; sa <= 3; sa++) {
                for (int sb = 0; sb <= 3; sb++) {
                    dec_t a = mk(x, sa), b = mk(y, sb), sum = sentinel(), diff = sentinel(),
                          prod = sentinel();
                    int s = sa > sb ? sa : sb;
                    int64_t ax = x * p10[s - sa], by = y * p10[s - sb];
                    cr_assert_eq(dec_add(&sum, &a, &b), DEC_OK);
                    cr_assert(sum.c == ax + by && sum.scale == s);
                    cr_assert_eq(dec_sub(&diff, &a, &b), DEC_OK);
                    cr_assert(diff.c == ax - by && diff.scale == s);
                    cr_assert_eq(dec_mul(&prod, &a, &b), DEC_OK);
                    cr_assert(prod.c == x * y && prod.scale == sa + sb);
                    int want = ax < by ? -1 : (ax > by ? 1 : 0);
                    cr_assert_eq(dec_cmp(&a, &b), want, "cmp(%lld/10^%d, %lld/10^%d)", (long long)x,
                                 sa, (long long)y, sb);
                }
            }
        }
    }
}

/* ---- dec_div ---------------------------------------------------------- */

static struct div_case div_cases[] = {
    {"1", "3", 2, HE, "0.33", DEC_OK},
    {"2", "3", 2, HE, "0.67", DEC_OK},
    {"-2", "3", 2, HE, "-0.67", DEC_OK},
    {"2", "-3", 2, HE, "-0.67", DEC_OK},
    {"-2", "-3", 2, HE, "0.67", DEC_OK},
    {"-1", "-3", 3, HE, "0.333", DEC_OK},
    {"1", "-3", 3, FL, "-0.334", DEC_OK},
    {"1", "-3", 3, CE, "-0.333", DEC_OK},
    /* 1/3 and -1/3 to 0 places, every mode */
    {"1", "3", 0, HE, "0", DEC_OK},
    {"1", "3", 0, HU, "0", DEC_OK},
    {"1", "3", 0, DN, "0", DEC_OK},
    {"1", "3", 0, UP, "1", DEC_OK},
    {"1", "3", 0, FL, "0", DEC_OK},
    {"1", "3", 0, CE, "1", DEC_OK},
    {"-1", "3", 0, HE, "0", DEC_OK},
    {"-1", "3", 0, HU, "0", DEC_OK},
    {"-1", "3", 0, DN, "0", DEC_OK},
    {"-1", "3", 0, UP, "-1", DEC_OK},
    {"-1", "3", 0, FL, "-1", DEC_OK},
    {"-1", "3", 0, CE, "0", DEC_OK},
    /* exact ties: 2.5, -2.5, 3.5, -3.5 */
    {"10", "4", 0, HE, "2", DEC_OK},
    {"10", "4", 0, HU, "3", DEC_OK},
    {"10", "4", 0, DN, "2", DEC_OK},
    {"10", "4", 0, UP, "3", DEC_OK},
    {"10", "4", 0, FL, "2", DEC_OK},
    {"10", "4", 0, CE, "3", DEC_OK},
    {"-10", "4", 0, HE, "-2", DEC_OK},
    {"-10", "4", 0, HU, "-3", DEC_OK},
    {"-10", "4", 0, DN, "-2", DEC_OK},
    {"-10", "4", 0, UP, "-3", DEC_OK},
    {"-10", "4", 0, FL, "-3", DEC_OK},
    {"-10", "4", 0, CE, "-2", DEC_OK},
    {"14", "4", 0, HE, "4", DEC_OK},
    {"14", "4", 0, HU, "4", DEC_OK},
    {"14", "4", 0, DN, "3", DEC_OK},
    {"14", "4", 0, UP, "4", DEC_OK},
    {"14", "4", 0, FL, "3", DEC_OK},
    {"14", "4", 0, CE, "4", DEC_OK},
    {"-14", "4", 0, HE, "-4", DEC_OK},
    {"-14", "4", 0, HU, "-4", DEC_OK},
    {"-14", "4", 0, DN, "-3", DEC_OK},
    {"-14", "4", 0, UP, "-4", DEC_OK},
    {"-14", "4", 0, FL, "-4", DEC_OK},
    {"-14", "4", 0, CE, "-3", DEC_OK},
    {"14", "-4", 0, HE, "-4", DEC_OK},
    {"-14", "-4", 0, HE, "4", DEC_OK},
    /* below and above half */
    {"9", "4", 0, HE, "2", DEC_OK},
    {"9", "4", 0, HU, "2", DEC_OK},
    {"9", "4", 0, UP, "3", DEC_OK},
    {"-9", "4", 0, HE, "-2", DEC_OK},
    {"-9", "4", 0, FL, "-3", DEC_OK},
    {"-9", "4", 0, CE, "-2", DEC_OK},
    {"11", "4", 0, HE, "3", DEC_OK},
    {"11", "4", 0, DN, "2", DEC_OK},
    {"-11", "4", 0, HE, "-3", DEC_OK},
    {"-11", "4", 0, CE, "-2", DEC_OK},
    /* ties at the second place */
    {"0.125", "1", 2, HE, "0.12", DEC_OK},
    {"0.125", "1", 2, HU, "0.13", DEC_OK},
    {"0.125", "1", 2, DN, "0.12", DEC_OK},
    {"0.125", "1", 2, UP, "0.13", DEC_OK},
    {"0.125", "1", 2, FL, "0.12", DEC_OK},
    {"0.125", "1", 2, CE, "0.13", DEC_OK},
    {"-0.125", "1", 2, HE, "-0.12", DEC_OK},
    {"-0.125", "1", 2, HU, "-0.13", DEC_OK},
    {"-0.125", "1", 2, DN, "-0.12", DEC_OK},
    {"-0.125", "1", 2, UP, "-0.13", DEC_OK},
    {"-0.125", "1", 2, FL, "-0.13", DEC_OK},
    {"-0.125", "1", 2, CE, "-0.12", DEC_OK},
    {"0.135", "1", 2, HE, "0.14", DEC_OK},
    {"1", "8", 2, HE, "0.12", DEC_OK},
    {"1", "8", 2, HU, "0.13", DEC_OK},
    {"3", "8", 2, HE, "0.38", DEC_OK},
    {"-3", "8", 2, HE, "-0.38", DEC_OK},
    {"1", "8", 3, HE, "0.125", DEC_OK},
    {"1", "8", 3, UP, "0.125", DEC_OK},
    /* exact quotients never bump, whatever the mode */
    {"6", "3", 0, UP, "2", DEC_OK},
    {"6", "3", 0, CE, "2", DEC_OK},
    {"-6", "3", 0, FL, "-2", DEC_OK},
    {"6", "3", 4, UP, "2.0000", DEC_OK},
    /* zero results are never negative */
    {"0", "7", 5, HE, "0.00000", DEC_OK},
    {"-0.00", "-7", 2, FL, "0.00", DEC_OK},
    {"-0.001", "1", 2, DN, "0.00", DEC_OK},
    {"-0.001", "1", 2, CE, "0.00", DEC_OK},
    {"-0.001", "1", 2, HE, "0.00", DEC_OK},
    {"-0.001", "1", 2, FL, "-0.01", DEC_OK},
    {"-0.005", "1", 2, HE, "0.00", DEC_OK},
    {"-0.005", "1", 2, HU, "-0.01", DEC_OK},
    /* different scales: e = scale + scale(b) - scale(a) of every sign */
    {"1.00", "0.5", 0, HE, "2", DEC_OK},
    {"1", "0.003", 1, HE, "333.3", DEC_OK},
    {"7.5", "2", 0, HE, "4", DEC_OK},    /* 3.75, e < 0 */
    {"0.05", "1", 1, HE, "0.0", DEC_OK}, /* tie, even */
    {"0.05", "1", 1, HU, "0.1", DEC_OK},
    {"0.15", "1", 1, HE, "0.2", DEC_OK},
    {"0.25", "1", 1, HE, "0.2", DEC_OK},
    {"0.35", "1", 1, HE, "0.4", DEC_OK},
    {"-0.25", "1", 1, HE, "-0.2", DEC_OK},
    {"12.50", "2.5", 2, HE, "5.00", DEC_OK},
    {"100", "0.01", 0, HE, "10000", DEC_OK},
    {"0.01", "100", 4, HE, "0.0001", DEC_OK},
    {"0.01", "100", 3, HE, "0.000", DEC_OK},
    {"0.01", "100", 3, UP, "0.001", DEC_OK},
    {"10", "3", 36, HE, "3.333333333333333333333333333333333333", DEC_OK},
    {"20", "3", 36, HE, "6.666666666666666666666666666666666667", DEC_OK},
    {"-20", "3", 36, DN, "-6.666666666666666666666666666666666666", DEC_OK},
    {"1", "7", 36, HE, "0.142857142857142857142857142857142857", DEC_OK},
    /* divisor * 10^-e beyond 2^128: quotient 0, a remainder below half */
    {"0." ZEROS35 "1", NINES38, 0, HE, "0", DEC_OK},
    {"0." ZEROS35 "1", NINES38, 0, HU, "0", DEC_OK},
    {"0." ZEROS35 "1", NINES38, 0, DN, "0", DEC_OK},
    {"0." ZEROS35 "1", NINES38, 0, UP, "1", DEC_OK},
    {"0." ZEROS35 "1", NINES38, 0, FL, "0", DEC_OK},
    {"0." ZEROS35 "1", NINES38, 0, CE, "1", DEC_OK},
    {"-0." ZEROS35 "1", NINES38, 0, FL, "-1", DEC_OK},
    {"-0." ZEROS35 "1", NINES38, 0, CE, "0", DEC_OK},
    {"0." ZEROS36, NINES38, 0, UP, "0", DEC_OK},
    /* 10^72 / (10^38 - 1): the dividend needs 240 bits, the quotient fits */
    {"1", "99.999999999999999999999999999999999999", 36, HE,
     "0.010000000000000000000000000000000000", DEC_OK},
    {"1", "99.999999999999999999999999999999999999", 36, UP,
     "0.010000000000000000000000000000000001", DEC_OK},
    {"-1", "99.999999999999999999999999999999999999", 36, FL,
     "-0.010000000000000000000000000000000001", DEC_OK},
    {NINES38, "99.999999999999999999999999999999999999", 0, HE, "1" ZEROS36, DEC_OK},
    {NINES38, NINES38, 36, HE, "1." ZEROS36, DEC_OK},
    {"9999999999999999999999999999999999999.9", "0.1", 0, HE, NINES38, DEC_OK},
    /* quotients of 39+ digits */
    {NINES38, "0.1", 0, HE, "", DEC_EOVERFLOW},
    {NINES38, "0.5", 0, HE, "", DEC_EOVERFLOW},
    {"50000000000000000000000000000000000000", "0.5", 0, HE, "", DEC_EOVERFLOW},
    {"1", "3", 36, HE, "0.333333333333333333333333333333333333", DEC_OK},
    {"100", "3", 36, HE, "33.333333333333333333333333333333333333", DEC_OK},
    {"1000", "3", 36, HE, "", DEC_EOVERFLOW},
    {"1", "0." ZEROS35 "1", 2, HE, "", DEC_EOVERFLOW},
    /* quotients of 72+ digits: long division must stop before q wraps 2^128 */
    {"1", "0." ZEROS35 "1", 36, HE, "", DEC_EOVERFLOW},
    {NINES38, "0." ZEROS35 "1", 36, HE, "", DEC_EOVERFLOW},
    {"-" NINES38, "0." ZEROS35 "1", 0, FL, "", DEC_EOVERFLOW},
    {"340282366920938463463374607431768211.45", "0.01", 36, HE, "", DEC_EOVERFLOW},
    {"1", "0." ZEROS35 "1", 1, HE, "10" ZEROS35 ".0", DEC_OK},
    /* argument errors */
    {"1", "0", 2, HE, "", DEC_EDIVZERO},
    {"0", "0.00", 2, HE, "", DEC_EDIVZERO},
    {"-5", "-0", 0, FL, "", DEC_EDIVZERO},
    {"1", "3", 37, HE, "", DEC_ESCALE},
    {"1", "3", -1, HE, "", DEC_ESCALE},
    {"1", "3", 2, 6, "", DEC_ESYNTAX},
    {"1", "3", 2, -1, "", DEC_ESYNTAX},
};

static void run_div(const struct div_case *p) {
    dec_t a = P(p->a), b = P(p->b), out = sentinel();
    char what[256];
    snprintf(what, sizeof what, "div(%s, %s, %d, mode %d)", p->a, p->b, p->scale, p->mode);
    check_result(what, dec_div(&out, &a, &b, p->scale, (dec_rounding)p->mode), p->rc, &out,
                 p->want);
    if (p->rc == DEC_OK) cr_assert_eq(out.scale, p->scale);
}

ParameterizedTestParameters(dec_div, table) {
    return cr_make_param_array(struct div_case, div_cases, ML_ARRAY_LEN(div_cases));
}
ParameterizedTest(struct div_case *p, dec_div, table) { run_div(p); }

Test(dec_div, big) {
    for (size_t k = 0; k < ML_ARRAY_LEN(big_div_cases); k++) run_div(&big_div_cases[k]);
}

/* Every mode, small values at every relative scale, against int64. */
Test(dec_div, brute_force_vs_int64) {
    long n = 0;
    for (int64_t x = -60; x <= 60; x++) {
        for (int64_t y = -13; y <= 13; y++) {
            if (y == 0) continue;
            for (int sa = 0; sa <= 2; sa++) {
                for (int sb = 0; sb <= 2; sb++) {
                    for (int s = 0; s <= 3; s++) {
                        int e = s + sb - sa;
                        int64_t num = e >= 0 ? x * p10[e] : x;
                        int64_t den = e >= 0 ? y : y * p10[-e];
                        for (int r = DEC_ROUND_HALF_EVEN; r <= DEC_ROUND_CEILING; r++) {
                            dec_t a = mk(x, sa), b = mk(y, sb), out = sentinel();
                            cr_assert_eq(dec_div(&out, &a, &b, s, (dec_rounding)r), DEC_OK);
                            int64_t want = ref_div(num, den, (dec_rounding)r);
                            cr_assert(out.c == want && out.scale == s,
                                      "div(%lld/10^%d, %lld/10^%d, %d, mode %d) = %lld, want %lld",
                                      (long long)x, sa, (long long)y, sb, s, r, (long long)out.c,
                                      (long long)want);
                            n++;
                        }
                    }
                }
            }
        }
    }
    cr_assert_eq(n, 121L * 26 * 3 * 3 * 4 * 6);
}

Test(dec_div, aliasing) {
    char buf[DEC_FMT_MAX];
    dec_t a = P("10"), b = P("4");
    cr_assert_eq(dec_div(&a, &a, &b, 1, DEC_ROUND_HALF_EVEN), DEC_OK);
    cr_assert_str_eq(F(&a, buf), "2.5");
    cr_assert_eq(dec_div(&b, &a, &b, 2, DEC_ROUND_HALF_EVEN), DEC_OK);
    cr_assert_str_eq(F(&b, buf), "0.62");
    cr_assert_eq(dec_div(&a, &a, &a, 0, DEC_ROUND_HALF_EVEN), DEC_OK);
    cr_assert_str_eq(F(&a, buf), "1");
}

/* ---- dec_round -------------------------------------------------------- */

struct round_case {
    char a[DEC_FMT_MAX];
    int places;
    int mode;
    char want[DEC_FMT_MAX];
    int rc;
};

static struct round_case round_cases[] = {
    /* half-even ties */
    {"0.125", 2, HE, "0.12", DEC_OK},
    {"0.135", 2, HE, "0.14", DEC_OK},
    {"0.115", 2, HE, "0.12", DEC_OK},
    {"0.105", 2, HE, "0.10", DEC_OK},
    {"-0.125", 2, HE, "-0.12", DEC_OK},
    {"-0.135", 2, HE, "-0.14", DEC_OK},
    {"2.5", 0, HE, "2", DEC_OK},
    {"-2.5", 0, HE, "-2", DEC_OK},
    {"3.5", 0, HE, "4", DEC_OK},
    {"-3.5", 0, HE, "-4", DEC_OK},
    {"0.5", 0, HE, "0", DEC_OK},
    {"-0.5", 0, HE, "0", DEC_OK},
    {"1.5", 0, HE, "2", DEC_OK},
    {"2.675", 2, HE, "2.68", DEC_OK},
    {"2.665", 2, HE, "2.66", DEC_OK},
    {"1.2345", 3, HE, "1.234", DEC_OK},
    {"1.2355", 3, HE, "1.236", DEC_OK},
    {"-0.005", 2, HE, "0.00", DEC_OK},
    {"-0.015", 2, HE, "-0.02", DEC_OK},
    {"2.50000000000000", 0, HE, "2", DEC_OK},
    /* near ties */
    {"2.51", 0, HE, "3", DEC_OK},
    {"2.4999", 0, HE, "2", DEC_OK},
    {"2.50000000000001", 0, HE, "3", DEC_OK},
    {"1.23450001", 3, HE, "1.235", DEC_OK},
    {"-1.23450001", 3, HE, "-1.235", DEC_OK},
    {"1.23449999", 3, HU, "1.234", DEC_OK},
    /* every place of one number */
    {"0.5555555555", 0, HE, "1", DEC_OK},
    {"0.5555555555", 1, HE, "0.6", DEC_OK},
    {"0.5555555555", 2, HE, "0.56", DEC_OK},
    {"0.5555555555", 3, HE, "0.556", DEC_OK},
    {"0.5555555555", 4, HE, "0.5556", DEC_OK},
    {"0.5555555555", 5, HE, "0.55556", DEC_OK},
    {"0.5555555555", 6, HE, "0.555556", DEC_OK},
    {"0.5555555555", 7, HE, "0.5555556", DEC_OK},
    {"0.5555555555", 8, HE, "0.55555556", DEC_OK},
    {"0.5555555555", 9, HE, "0.555555556", DEC_OK}, /* exact tie, 5 is odd */
    {"0.5555555555", 10, HE, "0.5555555555", DEC_OK},
    {"0.5555555555", 11, HE, "0.55555555550", DEC_OK},
    {"0.4444444445", 9, HE, "0.444444444", DEC_OK}, /* exact tie, 4 is even */
    {"0.4444444445", 9, HU, "0.444444445", DEC_OK},
    {"0.4444444445", 8, HE, "0.44444444", DEC_OK},
    {"0.4444444445", 0, HE, "0", DEC_OK},
    /* every mode, ties and non-ties, both signs */
    {"1.25", 1, HE, "1.2", DEC_OK},
    {"1.25", 1, HU, "1.3", DEC_OK},
    {"1.25", 1, DN, "1.2", DEC_OK},
    {"1.25", 1, UP, "1.3", DEC_OK},
    {"1.25", 1, FL, "1.2", DEC_OK},
    {"1.25", 1, CE, "1.3", DEC_OK},
    {"-1.25", 1, HE, "-1.2", DEC_OK},
    {"-1.25", 1, HU, "-1.3", DEC_OK},
    {"-1.25", 1, DN, "-1.2", DEC_OK},
    {"-1.25", 1, UP, "-1.3", DEC_OK},
    {"-1.25", 1, FL, "-1.3", DEC_OK},
    {"-1.25", 1, CE, "-1.2", DEC_OK},
    {"1.35", 1, HE, "1.4", DEC_OK},
    {"-1.35", 1, HE, "-1.4", DEC_OK},
    {"1.21", 1, HE, "1.2", DEC_OK},
    {"1.21", 1, HU, "1.2", DEC_OK},
    {"1.21", 1, DN, "1.2", DEC_OK},
    {"1.21", 1, UP, "1.3", DEC_OK},
    {"1.21", 1, FL, "1.2", DEC_OK},
    {"1.21", 1, CE, "1.3", DEC_OK},
    {"-1.21", 1, HE, "-1.2", DEC_OK},
    {"-1.21", 1, HU, "-1.2", DEC_OK},
    {"-1.21", 1, DN, "-1.2", DEC_OK},
    {"-1.21", 1, UP, "-1.3", DEC_OK},
    {"-1.21", 1, FL, "-1.3", DEC_OK},
    {"-1.21", 1, CE, "-1.2", DEC_OK},
    {"1.29", 1, HE, "1.3", DEC_OK},
    {"1.29", 1, HU, "1.3", DEC_OK},
    {"1.29", 1, DN, "1.2", DEC_OK},
    {"1.29", 1, UP, "1.3", DEC_OK},
    {"1.29", 1, FL, "1.2", DEC_OK},
    {"1.29", 1, CE, "1.3", DEC_OK},
    {"-1.29", 1, HE, "-1.3", DEC_OK},
    {"-1.29", 1, HU, "-1.3", DEC_OK},
    {"-1.29", 1, DN, "-1.2", DEC_OK},
    {"-1.29", 1, UP, "-1.3", DEC_OK},
    {"-1.29", 1, FL, "-1.3", DEC_OK},
    {"-1.29", 1, CE, "-1.2", DEC_OK},
    {"1.20", 1, UP, "1.2", DEC_OK},
    {"-1.20", 1, FL, "-1.2", DEC_OK},
    {"1.20", 1, CE, "1.2", DEC_OK},
    {"-1.20", 1, UP, "-1.2", DEC_OK},
    {"0.001", 2, DN, "0.00", DEC_OK},
    {"0.001", 2, UP, "0.01", DEC_OK},
    {"-0.001", 2, UP, "-0.01", DEC_OK},
    {"-0.001", 2, CE, "0.00", DEC_OK},
    /* rounding to more places than present pads, whatever the mode */
    {"1.5", 3, HE, "1.500", DEC_OK},
    {"1.5", 3, UP, "1.500", DEC_OK},
    {"-1.5", 3, FL, "-1.500", DEC_OK},
    {"7", 2, HE, "7.00", DEC_OK},
    {"-7", 36, HE, "-7." ZEROS36, DEC_OK},
    {"1", 36, CE, "1." ZEROS36, DEC_OK},
    {"0", 5, HE, "0.00000", DEC_OK},
    {"-0.0", 3, HE, "0.000", DEC_OK},
    {"1.25", 2, HE, "1.25", DEC_OK}, /* same places: unchanged */
    {NINES38, 0, HE, NINES38, DEC_OK},
    {NINES38, 1, HE, "", DEC_EOVERFLOW},
    {"9999999999999999999999999999999999999.9", 2, HE, "", DEC_EOVERFLOW},
    {"10", 36, HE, "10." ZEROS36, DEC_OK},
    {"100", 36, HE, "", DEC_EOVERFLOW},
    /* the widest values */
    {"9999999999999999999999999999999999999.9", 0, HE, "1" ZEROS36 "0", DEC_OK},
    {"-9999999999999999999999999999999999999.9", 0, HU, "-1" ZEROS36 "0", DEC_OK},
    {"99.999999999999999999999999999999999999", 0, HE, "100", DEC_OK},
    {"99.999999999999999999999999999999999999", 35, HE, "100." ZEROS35, DEC_OK},
    {"99.999999999999999999999999999999999999", 35, DN, "99.99999999999999999999999999999999999",
     DEC_OK},
    {"0." ZEROS35 "1", 0, HE, "0", DEC_OK},
    {"0." ZEROS35 "1", 0, UP, "1", DEC_OK},
    {"-0." ZEROS35 "1", 0, FL, "-1", DEC_OK},
    {"-0." ZEROS35 "1", 0, CE, "0", DEC_OK},
    {"0.5" ZEROS35, 0, HE, "0", DEC_OK},
    {"0.5" ZEROS35, 0, HU, "1", DEC_OK},
    {"0.5" ZEROS35 "1", 0, HE, "", DEC_ESCALE}, /* 37 places: does not parse */
    /* argument errors */
    {"1.5", 37, HE, "", DEC_ESCALE},
    {"1.5", -1, HE, "", DEC_ESCALE},
    {"1.5", 0, 6, "", DEC_ESYNTAX},
    {"1.5", 0, 42, "", DEC_ESYNTAX},
};

ParameterizedTestParameters(dec_round, table) {
    return cr_make_param_array(struct round_case, round_cases, ML_ARRAY_LEN(round_cases));
}

ParameterizedTest(struct round_case *p, dec_round, table) {
    dec_t a = sentinel(), out = sentinel();
    int prc = dec_parse_cstr(&a, p->a);
    if (prc != DEC_OK) { /* rows whose input cannot even be a dec_t */
        cr_assert_eq(prc, p->rc);
        return;
    }
    char what[200];
    snprintf(what, sizeof what, "round(%s, %d, mode %d)", p->a, p->places, p->mode);
    check_result(what, dec_round(&out, &a, p->places, (dec_rounding)p->mode), p->rc, &out, p->want);
    if (p->rc == DEC_OK) {
        cr_assert_eq(out.scale, p->places);
        /* dec_div by 1 rounds the same way */
        dec_t one = dec_from_int(1), q = sentinel();
        cr_assert_eq(dec_div(&q, &a, &one, p->places, (dec_rounding)p->mode), DEC_OK);
        cr_assert(q.c == out.c && q.scale == out.scale);
    }
}

/* Every coefficient -2000..2000 at scales 0..3, to places 0..4, every mode. */
Test(dec_round, brute_force_vs_int64) {
    long n = 0;
    for (int64_t c = -2000; c <= 2000; c++) {
        for (int s = 0; s <= 3; s++) {
            for (int places = 0; places <= 4; places++) {
                for (int r = DEC_ROUND_HALF_EVEN; r <= DEC_ROUND_CEILING; r++) {
                    dec_t a = mk(c, s), out = sentinel();
                    cr_assert_eq(dec_round(&out, &a, places, (dec_rounding)r), DEC_OK);
                    int64_t want = places >= s ? c * p10[places - s]
                                               : ref_div(c, p10[s - places], (dec_rounding)r);
                    cr_assert(out.c == want && out.scale == places,
                              "round(%lld/10^%d, %d, mode %d) = %lld, want %lld", (long long)c, s,
                              places, r, (long long)out.c, (long long)want);
                    n++;
                }
            }
        }
    }
    cr_assert_eq(n, 4001L * 4 * 5 * 6);
}

Test(dec_round, aliasing) {
    char buf[DEC_FMT_MAX];
    dec_t a = P("2.345");
    cr_assert_eq(dec_round(&a, &a, 2, DEC_ROUND_HALF_EVEN), DEC_OK);
    cr_assert_str_eq(F(&a, buf), "2.34");
    cr_assert_eq(dec_round(&a, &a, 4, DEC_ROUND_HALF_EVEN), DEC_OK);
    cr_assert_str_eq(F(&a, buf), "2.3400");
}

/* ---- dec_cmp / dec_min / dec_max ---------------------------------------- */

struct cmp_case {
    char a[DEC_FMT_MAX];
    char b[DEC_FMT_MAX];
    int want;
};

static struct cmp_case cmp_cases[] = {
    {"1.50", "1.5", 0},
    {"1.5", "1.50", 0},
    {"0", "-0.00", 0},
    {"0.00", "0", 0},
    {"-2.0", "-2", 0},
    {"100", "100." ZEROS35, 0},
    {"1", "2", -1},
    {"-1", "-2", 1},
    {"-1", "1", -1},
    {"-0.001", "0", -1},
    {"0", "0.001", -1},
    {"0.1", "0.09", 1},
    {"-0.1", "-0.09", -1},
    {"1.0000000001", "1", 1},
    {"0.999999999", "1", -1},
    {"0." ZEROS35 "1", "0", 1},
    {"-0." ZEROS35 "1", "0", -1},
    {"0." ZEROS35 "1", "0." ZEROS35 "2", -1},
    {NINES38, "99999999999999999999999999999999999998", 1},
    {"-" NINES38, "-99999999999999999999999999999999999998", -1},
    {"-" NINES38, NINES38, -1},
    /* aligning a overflows 128 bits */
    {NINES38, "9999999999999999999999999999999999999.9", 1},
    {"-" NINES38, "-9999999999999999999999999999999999999.9", -1},
    {NINES38, "99.999999999999999999999999999999999999", 1},
    {"-" NINES38, "-99.999999999999999999999999999999999999", -1},
    {"1" ZEROS36, "0." ZEROS35 "1", 1},
    /* aligned a = 1.8e38: past int128 but within unsigned 128 */
    {"18000000000000000000000000000000000000", "1800000000000000000000000000000000000.0", 1},
    {"-18000000000000000000000000000000000000", "-1800000000000000000000000000000000000.0", -1},
};

ParameterizedTestParameters(dec_cmp, table) {
    return cr_make_param_array(struct cmp_case, cmp_cases, ML_ARRAY_LEN(cmp_cases));
}

ParameterizedTest(struct cmp_case *p, dec_cmp, table) {
    dec_t a = P(p->a), b = P(p->b);
    char buf[DEC_FMT_MAX];
    cr_assert_eq(dec_cmp(&a, &b), p->want, "cmp(%s, %s)", p->a, p->b);
    cr_assert_eq(dec_cmp(&b, &a), -p->want, "cmp(%s, %s)", p->b, p->a);
    cr_assert_eq(dec_cmp(&a, &a), 0);
    dec_t lo = dec_min(&a, &b), hi = dec_max(&a, &b);
    /* on equal values both return a, so its scale is kept */
    const char *want_lo = p->want > 0 ? p->b : p->a;
    const char *want_hi = p->want < 0 ? p->b : p->a;
    dec_t wl = P(want_lo), wh = P(want_hi);
    char want_buf[DEC_FMT_MAX];
    cr_assert_str_eq(F(&lo, buf), F(&wl, want_buf), "min(%s, %s)", p->a, p->b);
    cr_assert_str_eq(F(&hi, buf), F(&wh, want_buf), "max(%s, %s)", p->a, p->b);
}

Test(dec_cmp, min_max_ties_return_first) {
    char buf[DEC_FMT_MAX];
    dec_t a = P("1.50"), b = P("1.5");
    dec_t m = dec_min(&a, &b);
    cr_assert_str_eq(F(&m, buf), "1.50");
    m = dec_max(&a, &b);
    cr_assert_str_eq(F(&m, buf), "1.50");
    m = dec_min(&b, &a);
    cr_assert_str_eq(F(&m, buf), "1.5");
    m = dec_max(&b, &a);
    cr_assert_str_eq(F(&m, buf), "1.5");
}

/* ---- dec_normalize / dec_places / dec_rescale ----------------------------- */

struct norm_case {
    char a[DEC_FMT_MAX];
    char want[DEC_FMT_MAX];
    int places;
};

static struct norm_case norm_cases[] = {
    {"1.500", "1.5", 1},
    {"2.00", "2", 0},
    {"0.000", "0", 0},
    {"-0.0", "0", 0},
    {"0", "0", 0},
    {"100", "100", 0},
    {"100.00", "100", 0},
    {"1.0100", "1.01", 2},
    {"-12.340", "-12.34", 2},
    {"5", "5", 0},
    {"0.000000000000000000000000000000000010", "0.00000000000000000000000000000000001", 35},
    {"0." ZEROS35 "1", "0." ZEROS35 "1", 36},
    {"10." ZEROS36, "10", 0},
    {"-" NINES38, "-" NINES38, 0},
    {"99.999999999999999999999999999999999990", "99.99999999999999999999999999999999999", 35},
};

ParameterizedTestParameters(dec_normalize, table) {
    return cr_make_param_array(struct norm_case, norm_cases, ML_ARRAY_LEN(norm_cases));
}

ParameterizedTest(struct norm_case *p, dec_normalize, table) {
    dec_t a = P(p->a);
    char buf[DEC_FMT_MAX];
    dec_t n = dec_normalize(&a);
    cr_assert_str_eq(F(&n, buf), p->want, "normalize(%s)", p->a);
    cr_assert_eq(n.scale, p->places);
    cr_assert_eq(dec_places(&a), p->places, "places(%s)", p->a);
    cr_assert_eq(dec_cmp(&n, &a), 0);
    dec_t nn = dec_normalize(&n); /* idempotent */
    cr_assert(nn.c == n.c && nn.scale == n.scale);
}

struct rescale_case {
    char a[DEC_FMT_MAX];
    int scale;
    char want[DEC_FMT_MAX];
    int rc;
};

static struct rescale_case rescale_cases[] = {
    {"1.5", 3, "1.500", DEC_OK},
    {"1.500", 1, "1.5", DEC_OK},
    {"1.500", 3, "1.500", DEC_OK},
    {"1.500", 0, "", DEC_EINEXACT},
    {"1.510", 1, "", DEC_EINEXACT},
    {"1.510", 2, "1.51", DEC_OK},
    {"2.00", 0, "2", DEC_OK},
    {"0.000", 0, "0", DEC_OK},
    {"-3.10", 1, "-3.1", DEC_OK},
    {"-3.10", 0, "", DEC_EINEXACT},
    {"-0.001", 2, "", DEC_EINEXACT},
    {"0." ZEROS35 "1", 35, "", DEC_EINEXACT},
    {"0." ZEROS35 "1", 36, "0." ZEROS35 "1", DEC_OK},
    {"1." ZEROS36, 0, "1", DEC_OK},
    {"1", 36, "1." ZEROS36, DEC_OK},
    {"-1", 36, "-1." ZEROS36, DEC_OK},
    {"9999999999999999999999999999999999999", 1, "9999999999999999999999999999999999999.0", DEC_OK},
    {NINES38, 1, "", DEC_EOVERFLOW},
    {"100", 36, "", DEC_EOVERFLOW},
    {"1", 37, "", DEC_ESCALE},
    {"1", -1, "", DEC_ESCALE},
};

ParameterizedTestParameters(dec_rescale, table) {
    return cr_make_param_array(struct rescale_case, rescale_cases, ML_ARRAY_LEN(rescale_cases));
}

ParameterizedTest(struct rescale_case *p, dec_rescale, table) {
    dec_t a = P(p->a), out = sentinel();
    char what[160];
    snprintf(what, sizeof what, "rescale(%s, %d)", p->a, p->scale);
    check_result(what, dec_rescale(&out, &a, p->scale), p->rc, &out, p->want);
    if (p->rc == DEC_OK) {
        cr_assert_eq(out.scale, p->scale);
        cr_assert_eq(dec_cmp(&out, &a), 0, "rescale changed the value");
    }
}

/* ---- dec_to_int / dec_from_int ---------------------------------------- */

struct to_int_case {
    char a[DEC_FMT_MAX];
    bool ok;
    int64_t want;
};

static struct to_int_case to_int_cases[] = {
    {"0", true, 0},
    {"-0.000", true, 0},
    {"5.00", true, 5},
    {"-5.00", true, -5},
    {"5.01", false, 0},
    {"0.5", false, 0},
    {"-0.5", false, 0},
    {"0." ZEROS35 "1", false, 0},
    {"9223372036854775807", true, INT64_MAX},
    {"9223372036854775807.000", true, INT64_MAX},
    {"9223372036854775807.001", false, 0},
    {"9223372036854775808", false, 0},
    {"-9223372036854775808", true, INT64_MIN},
    {"-9223372036854775808.0", true, INT64_MIN},
    {"-9223372036854775809", false, 0},
    {"18446744073709551616", false, 0},
    {"1e20", false, 0},
    {NINES38, false, 0},
    {"-" NINES38, false, 0},
    {"1." ZEROS36, true, 1},
    {"12.3e1", true, 123},
};

ParameterizedTestParameters(dec_to_int, table) {
    return cr_make_param_array(struct to_int_case, to_int_cases, ML_ARRAY_LEN(to_int_cases));
}

ParameterizedTest(struct to_int_case *p, dec_to_int, table) {
    dec_t a = P(p->a);
    int64_t v = 77;
    cr_assert_eq(dec_to_int(&a, &v), p->ok, "to_int(%s)", p->a);
    if (p->ok)
        cr_assert_eq(v, p->want, "to_int(%s) = %lld", p->a, (long long)v);
    else
        cr_assert_eq(v, 77, "to_int(%s) wrote out on failure", p->a);
}

Test(dec_from_int, edges) {
    static const struct {
        int64_t v;
        char want[24];
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {-1, "-1"},
        {1000, "1000"},
        {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
        {INT64_MIN + 1, "-9223372036854775807"},
    };
    for (size_t k = 0; k < ML_ARRAY_LEN(cases); k++) {
        char buf[DEC_FMT_MAX];
        dec_t d = dec_from_int(cases[k].v);
        cr_assert_eq(d.scale, 0);
        cr_assert_str_eq(F(&d, buf), cases[k].want);
        int64_t back = 0;
        cr_assert(dec_to_int(&d, &back));
        cr_assert_eq(back, cases[k].v);
        dec_t neg = sentinel();
        cr_assert_eq(dec_neg(&neg, &d), DEC_OK); /* even -INT64_MIN fits */
        cr_assert(neg.c == -(d.c) && neg.scale == 0);
    }
    /* INT64_MAX + 1 and INT64_MIN - 1 are exact decimals but not int64s */
    dec_t max = dec_from_int(INT64_MAX), min = dec_from_int(INT64_MIN), one = dec_from_int(1);
    dec_t out = sentinel();
    int64_t v = 5;
    cr_assert_eq(dec_add(&out, &max, &one), DEC_OK);
    cr_assert_not(dec_to_int(&out, &v));
    cr_assert_eq(dec_sub(&out, &min, &one), DEC_OK);
    cr_assert_not(dec_to_int(&out, &v));
    cr_assert_eq(dec_mul(&out, &min, &min), DEC_OK); /* 2^126 */
    char buf[DEC_FMT_MAX];
    cr_assert_str_eq(F(&out, buf), "85070591730234615865843651857942052864");
    cr_assert_eq(v, 5);
}

/* ---- small functions -------------------------------------------------- */

Test(dec_misc, zero_sign_neg) {
    char buf[DEC_FMT_MAX];
    dec_t z = dec_zero();
    cr_assert(z.c == 0 && z.scale == 0);
    cr_assert(dec_is_zero(&z));
    cr_assert_eq(dec_sign(&z), 0);
    static const struct {
        char a[DEC_FMT_MAX];
        int sign;
        char neg[DEC_FMT_MAX];
    } cases[] = {
        {"0", 0, "0"},
        {"-0.00", 0, "0.00"},
        {"1.5", 1, "-1.5"},
        {"-1.5", -1, "1.5"},
        {"0." ZEROS35 "1", 1, "-0." ZEROS35 "1"},
        {NINES38, 1, "-" NINES38},
        {"-" NINES38, -1, NINES38},
    };
    for (size_t k = 0; k < ML_ARRAY_LEN(cases); k++) {
        dec_t a = P(cases[k].a), n = sentinel();
        cr_assert_eq(dec_sign(&a), cases[k].sign, "sign(%s)", cases[k].a);
        cr_assert_eq(dec_is_zero(&a), cases[k].sign == 0);
        cr_assert_eq(dec_neg(&n, &a), DEC_OK);
        cr_assert_str_eq(F(&n, buf), cases[k].neg);
        cr_assert_eq(dec_neg(&a, &a), DEC_OK); /* in place */
        cr_assert_eq(dec_cmp(&a, &n), 0);
    }
}

Test(dec_misc, strerror_distinct) {
    static const int codes[] = {DEC_OK,       DEC_ESYNTAX,  DEC_EOVERFLOW, DEC_ESCALE,
                                DEC_EDIVZERO, DEC_EINEXACT, 12345};
    for (size_t i = 0; i < ML_ARRAY_LEN(codes); i++) {
        const char *si = dec_strerror(codes[i]);
        cr_assert_not_null(si);
        cr_assert_gt(strlen(si), 0);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(si, dec_strerror(codes[j]), "codes %d and %d", codes[i], codes[j]);
    }
}

Test(dec_misc, add_sub_aliasing) {
    char buf[DEC_FMT_MAX];
    dec_t a = P("1.25"), b = P("0.5");
    cr_assert_eq(dec_add(&a, &a, &b), DEC_OK);
    cr_assert_str_eq(F(&a, buf), "1.75");
    cr_assert_eq(dec_sub(&b, &a, &b), DEC_OK);
    cr_assert_str_eq(F(&b, buf), "1.25");
    cr_assert_eq(dec_mul(&a, &a, &a), DEC_OK);
    cr_assert_str_eq(F(&a, buf), "3.0625");
    cr_assert_eq(dec_sub(&a, &a, &a), DEC_OK);
    cr_assert_str_eq(F(&a, buf), "0.0000");
}

/* A small invoice: 3 lines, each quantity * unit price rounded to cents. */
Test(dec_misc, invoice_line_totals) {
    static const struct {
        char qty[24];
        char price[24];
        char line[24];
    } lines[] = {
        {"1234.567", "0.0125", "15.43"}, /* 15.4320875 */
        {"3", "19.995", "59.98"},        /* 59.985: tie, half-even keeps 8 */
        {"0.5", "0.01", "0.00"},         /* 0.005: tie, rounds to even 0 */
    };
    char buf[DEC_FMT_MAX];
    dec_t total = dec_zero();
    for (size_t k = 0; k < ML_ARRAY_LEN(lines); k++) {
        dec_t q = P(lines[k].qty), pr = P(lines[k].price), amt, rounded;
        cr_assert_eq(dec_mul(&amt, &q, &pr), DEC_OK);
        cr_assert_eq(dec_round(&rounded, &amt, 2, DEC_ROUND_HALF_EVEN), DEC_OK);
        cr_assert_str_eq(F(&rounded, buf), lines[k].line);
        cr_assert_eq(dec_add(&total, &total, &rounded), DEC_OK);
    }
    cr_assert_str_eq(F(&total, buf), "75.41");
}
