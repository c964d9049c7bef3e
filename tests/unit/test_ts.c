/* test_ts.c — RFC 3339 parsing/formatting and civil-date arithmetic (ts_).
 *
 * Expected epoch values were computed independently (Python's datetime), not
 * with the code under test.  Tables are plain static arrays walked inside each
 * Test with cr_expect, so one bad row does not hide the others.
 */
#include "fmacros.h"
#include "ts.h"
#include <criterion/criterion.h>
#include <inttypes.h>

#define S 1000000LL /* microseconds per second */

typedef struct ts_ok_case {
    const char *in;
    int64_t us;
} ts_ok_case;

static const ts_ok_case parse_ok[] = {
    {"1970-01-01T00:00:00Z", 0},
    {"1970-01-01T00:00:00.000001Z", 1},
    {"1969-12-31T23:59:59.999999Z", -1},
    {"1969-07-20T20:17:40Z", -14182940 * S},
    {"2000-01-01T00:00:00Z", 946684800 * S},
    /* leap years */
    {"2024-02-29T00:00:00Z", 1709164800 * S},
    {"2000-02-29T12:34:56Z", 951827696 * S},
    {"1600-02-29T00:00:00Z", -11670998400 * S},
    {"1900-03-01T00:00:00Z", -2203891200 * S},
    {"2100-02-28T23:59:59Z", 4107542399 * S},
    /* offsets, including ones that cross midnight and the year */
    {"2026-10-01T13:00:00+05:30", 1790839800 * S},
    {"2026-10-01T13:00:00-03:45", 1790873100 * S},
    {"2026-10-01T13:00:00+05:45", 1790838900 * S},
    {"2026-10-01T00:15:00+05:45", 1790793000 * S},
    {"2026-12-31T22:00:00-03:00", 1798765200 * S},
    {"2026-10-01T13:00:00+23:59", 1790773260 * S},
    {"2026-10-01T13:00:00-23:59", 1790945940 * S},
    {"2026-10-01T13:00:00+00:00", 1790859600 * S},
    {"2026-10-01T13:00:00-00:00", 1790859600 * S},
    /* separators and zone letter case */
    {"2026-10-01t13:00:00Z", 1790859600 * S},
    {"2026-10-01 13:00:00Z", 1790859600 * S},
    {"2026-10-01T13:00:00z", 1790859600 * S},
    /* fractions of 1..9 digits; past microseconds truncated, not rounded */
    {"1970-01-01T00:00:00.1Z", 100000},
    {"1970-01-01T00:00:00.12Z", 120000},
    {"1970-01-01T00:00:00.123Z", 123000},
    {"1970-01-01T00:00:00.1234Z", 123400},
    {"1970-01-01T00:00:00.12345Z", 123450},
    {"1970-01-01T00:00:00.123456Z", 123456},
    {"1970-01-01T00:00:00.1234567Z", 123456},
    {"1970-01-01T00:00:00.12345678Z", 123456},
    {"1970-01-01T00:00:00.123456789Z", 123456},
    {"1970-01-01T00:00:00.999999999Z", 999999},
    {"1970-01-01T00:00:00.000000999Z", 0},
    {"1970-01-01T00:00:00.5+01:00", -3600 * S + 500000},
    /* range ends: years 0001..9999 in UTC */
    {"0001-01-01T00:00:00Z", -62135596800 * S},
    {"9999-12-31T23:59:59.999999Z", 253402300799999999LL},
    {"0001-01-01T00:00:00-01:00", -62135593200 * S},
    {"9999-12-31T23:59:59+00:01", 253402300739 * S},
    /* leap second: 23:59:60 UTC on a month's last day, folded to :59.999999 */
    {"2016-12-31T23:59:60Z", 1483228799999999LL},
    {"2016-12-31T23:59:60.5Z", 1483228799999999LL},
    {"2016-12-31T18:59:60-05:00", 1483228799999999LL},
    {"2017-01-01T05:29:60+05:30", 1483228799999999LL},
    {"2015-06-30T23:59:60Z", 1435708799999999LL},
};

Test(ts_parse, accepts_valid_forms) {
    for (size_t i = 0; i < ML_ARRAY_LEN(parse_ok); i++) {
        const ts_ok_case *c = &parse_ok[i];
        int64_t got = 42;
        int rc = ts_parse(c->in, strlen(c->in), &got);
        cr_expect_eq(rc, 0, "ts_parse(%s) failed", c->in);
        cr_expect_eq(got, c->us, "ts_parse(%s) = %" PRId64 ", want %" PRId64, c->in, got, c->us);
    }
}

static const char *const parse_bad[] = {
    /* impossible dates */
    "2026-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2100-02-29T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2024-06-31T00:00:00Z",
    "2024-09-31T00:00:00Z",
    "2024-11-31T00:00:00Z",
    "2024-01-32T00:00:00Z",
    "2024-00-10T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-01-00T00:00:00Z",
    "0000-01-01T00:00:00Z",
    /* out-of-range time fields */
    "2024-01-01T24:00:00Z",
    "2024-01-01T23:60:00Z",
    "2024-01-01T23:59:61Z",
    "2024-01-01T99:00:00Z",
    /* second 60 where no leap second can be */
    "2024-01-01T12:00:60Z",
    "2026-10-30T23:59:60Z",
    "2016-12-31T23:58:60Z",
    "2016-12-31T23:59:60+01:00",
    "2016-12-31T23:59:60-00:01",
    /* offsets */
    "2024-01-01T00:00:00+24:00",
    "2024-01-01T00:00:00-24:00",
    "2024-01-01T00:00:00+05:60",
    "2024-01-01T00:00:00+0530",
    "2024-01-01T00:00:00+05",
    "2024-01-01T00:00:00+5:30",
    "2024-01-01T00:00:00+05:3",
    "2024-01-01T00:00:00+05:30Z",
    "2024-01-01T00:00:00 +05:30",
    "2024-01-01T00:00:00UTC",
    "2024-01-01T00:00:00GMT+1",
    /* missing zone, empty or bad fraction */
    "2024-01-01T00:00:00",
    "2024-01-01T00:00:00.5",
    "2024-01-01T00:00:00.Z",
    "2024-01-01T00:00:00.1234567890Z",
    "2024-01-01T00:00:00,5Z",
    "2024-01-01T00:00:00.5.5Z",
    "2024-01-01T00:00:00.-5Z",
    "2024-01-01T00:00Z",
    /* separators and widths */
    "2024/01/01T00:00:00Z",
    "2024-01-01X00:00:00Z",
    "2024-01-01_00:00:00Z",
    "2024-01-01T00-00-00Z",
    "2024-01-01T00.00.00Z",
    "2024-01-01  00:00:00Z",
    "2024-1-01T00:00:00Z",
    "2024-01-1T00:00:00Z",
    "24-01-01T00:00:00Z",
    "2024-01-01T0:00:00Z",
    "+2024-01-01T00:00:00Z",
    "-2024-01-01T00:00:00Z",
    "12024-01-01T00:00:00Z",
    "2024-01-01T00:00:00.\xd9\xa1Z",
    /* garbage around it */
    " 2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00Z ",
    "2024-01-01T00:00:00ZZ",
    "2024-01-01T00:00:00Z\n",
    /* years that leave 0001..9999 once the offset is applied */
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59-00:01",
    "9999-12-31T23:59:59.999999-00:01",
    /* too short */
    "",
    "2",
    "2024-01-01",
    "2024-01-01T",
    "2024-01-01T00:00:0Z",
    "Z",
};

Test(ts_parse, rejects_invalid_forms) {
    for (size_t i = 0; i < ML_ARRAY_LEN(parse_bad); i++) {
        const char *in = parse_bad[i];
        int64_t got = 42;
        cr_expect_eq(ts_parse(in, strlen(in), &got), -1, "ts_parse accepted \"%s\"", in);
        cr_expect_eq(got, 42, "ts_parse wrote *out on error for \"%s\"", in);
    }
}

Test(ts_parse, reads_only_len_bytes) {
    /* Exact-size heap copies: ASan reports any read past len. */
    static const struct {
        const char *in;
        size_t len;
        int rc;
        int64_t us;
    } rows[] = {
        {"2024-02-29T00:00:00Zjunk", 20, 0, 1709164800 * S},
        {"2024-02-29T00:00:00.5Z", 22, 0, 1709164800 * S + 500000},
        {"2024-02-29T00:00:00.5Z", 21, -1, 0}, /* "...00.5" without zone */
        {"2024-02-29T00:00:00Z", 19, -1, 0},
        {"2024-02-29T00:00:00+05:30", 24, -1, 0},
        {"2024-02-29T00:00:00+05:30", 25, 0, 1709145000 * S},
        {"2024-02-29T00:00:00.123456789", 29, -1, 0},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char *p = malloc(rows[i].len ? rows[i].len : 1);
        int64_t got = 0;
        int rc;
        cr_assert_not_null(p);
        memcpy(p, rows[i].in, rows[i].len);
        rc = ts_parse(p, rows[i].len, &got);
        cr_expect_eq(rc, rows[i].rc, "row %zu: rc %d", i, rc);
        if (rc == 0) cr_expect_eq(got, rows[i].us, "row %zu: %" PRId64, i, got);
        free(p);
    }
}

Test(ts_parse, null_arguments_fail) {
    int64_t got;
    cr_expect_eq(ts_parse(NULL, 20, &got), -1);
    cr_expect_eq(ts_parse("2024-02-29T00:00:00Z", 20, NULL), -1);
    cr_expect_eq(ts_parse_date_or_time(NULL, 10, &got), -1);
}

Test(ts_parse_date_or_time, accepts_dates_and_times) {
    static const struct {
        const char *in;
        int rc;
        int64_t us;
    } rows[] = {
        {"2024-02-29", 0, 1709164800 * S},
        {"2000-02-29", 0, 951782400 * S},
        {"1970-01-01", 0, 0},
        {"0001-01-01", 0, -62135596800 * S},
        {"2024-02-29T00:00:00Z", 0, 1709164800 * S},
        {"2026-10-01T13:00:00+05:30", 0, 1790839800 * S},
        {"2026-02-29", -1, 0},
        {"1900-02-29", -1, 0},
        {"2024-13-01", -1, 0},
        {"2024-2-29", -1, 0},
        {"2024-02-291", -1, 0},
        {"20240229", -1, 0},
        {"2024/02/29", -1, 0},
        {"0000-01-01", -1, 0},
        {"2024-02-29 ", -1, 0},
        {"", -1, 0},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        int64_t got = 7;
        int rc = ts_parse_date_or_time(rows[i].in, strlen(rows[i].in), &got);
        cr_expect_eq(rc, rows[i].rc, "\"%s\": rc %d", rows[i].in, rc);
        if (rows[i].rc == 0)
            cr_expect_eq(got, rows[i].us, "\"%s\": %" PRId64, rows[i].in, got);
        else
            cr_expect_eq(got, 7, "\"%s\": *out written on error", rows[i].in);
    }
}

Test(ts_format, formats_sub_seconds_as_3_or_6_digits) {
    static const struct {
        int64_t us;
        const char *out;
    } rows[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1, "1970-01-01T00:00:00.000001Z"},
        {10, "1970-01-01T00:00:00.000010Z"},
        {1000, "1970-01-01T00:00:00.001Z"},
        {100000, "1970-01-01T00:00:00.100Z"},
        {120000, "1970-01-01T00:00:00.120Z"},
        {123000, "1970-01-01T00:00:00.123Z"},
        {123400, "1970-01-01T00:00:00.123400Z"},
        {123456, "1970-01-01T00:00:00.123456Z"},
        {999999, "1970-01-01T00:00:00.999999Z"},
        {S, "1970-01-01T00:00:01Z"},
        {-1, "1969-12-31T23:59:59.999999Z"},
        {-1000, "1969-12-31T23:59:59.999Z"},
        {-S, "1969-12-31T23:59:59Z"},
        {-86400 * S, "1969-12-31T00:00:00Z"},
        {-86400 * S - 1, "1969-12-30T23:59:59.999999Z"},
        {1709164800 * S, "2024-02-29T00:00:00Z"},
        {951827696 * S, "2000-02-29T12:34:56Z"},
        {1790839800 * S, "2026-10-01T07:30:00Z"},
        {1790859600 * S + 123456, "2026-10-01T13:00:00.123456Z"},
        {-2203891200 * S, "1900-03-01T00:00:00Z"},
        {-62135596800 * S, "0001-01-01T00:00:00Z"},
        {253402300799999999LL, "9999-12-31T23:59:59.999999Z"},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char buf[TS_FMT_MAX];
        int n = ts_format(rows[i].us, buf, sizeof buf);
        cr_expect_eq(n, (int)strlen(rows[i].out), "%" PRId64 ": length %d", rows[i].us, n);
        if (n >= 0) cr_expect_str_eq(buf, rows[i].out, "%" PRId64, rows[i].us);
    }
}

Test(ts_format, rejects_out_of_range_and_small_buffers) {
    static const int64_t bad[] = {
        -62135596800 * S - 1,
        253402300799999999LL + 1,
        INT64_MIN,
        INT64_MAX,
    };
    char buf[TS_FMT_MAX + 8];
    for (size_t i = 0; i < ML_ARRAY_LEN(bad); i++)
        cr_expect_eq(ts_format(bad[i], buf, sizeof buf), -1, "%" PRId64, bad[i]);
    cr_expect_eq(ts_format(0, buf, TS_FMT_MAX - 1), -1);
    cr_expect_eq(ts_format(0, NULL, TS_FMT_MAX), -1);
    cr_expect_eq(ts_format(253402300799999999LL, buf, TS_FMT_MAX), 27);
}

/* Canonical strings survive parse -> format unchanged. */
Test(ts_roundtrip, canonical_strings) {
    static const char *const rows[] = {
        "1970-01-01T00:00:00Z",        "2024-02-29T23:59:59.999Z",    "2000-02-29T00:00:00.000001Z",
        "0001-01-01T00:00:00Z",        "9999-12-31T23:59:59.999999Z", "1600-03-01T12:00:00.500Z",
        "1969-12-31T23:59:59.123456Z", "2026-10-01T13:00:00Z",
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        int64_t us;
        char buf[TS_FMT_MAX];
        cr_assert_eq(ts_parse(rows[i], strlen(rows[i]), &us), 0, "%s", rows[i]);
        cr_expect_gt(ts_format(us, buf, sizeof buf), 0, "%s", rows[i]);
        cr_expect_str_eq(buf, rows[i]);
    }
}

/* Every instant survives format -> parse: a pseudo-random sweep of the range. */
Test(ts_roundtrip, instants_across_the_range) {
    const int64_t lo = -62135596800 * S, hi = 253402300799999999LL;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t bad = 0;
    for (int i = 0; i < 200000; i++) {
        int64_t us, back = 0;
        char buf[TS_FMT_MAX];
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        us = lo + (int64_t)((x >> 1) % (uint64_t)(hi - lo + 1));
        if (i % 3 == 0) us -= us % 1000; /* exercise the ".mmm" form too */
        if (i % 5 == 0) us -= us % S;    /* and whole seconds */
        if (us < lo) us = lo;
        if (ts_format(us, buf, sizeof buf) < 0 || ts_parse(buf, strlen(buf), &back) != 0 ||
            back != us) {
            if (bad++ < 5) cr_expect(0, "round trip failed for %" PRId64 " (%s)", us, buf);
        }
    }
    cr_expect_eq(bad, 0, "%zu instants did not round-trip", bad);
}

Test(ts_civil, known_days) {
    static const struct {
        int y;
        unsigned m, d;
        int64_t days;
    } rows[] = {
        {1970, 1, 1, 0},    {1969, 12, 31, -1},      {2000, 3, 1, 11017},  {2000, 2, 29, 11016},
        {1, 1, 1, -719162}, {9999, 12, 31, 2932896}, {2024, 2, 29, 19782}, {1600, 2, 29, -135081},
        {0, 3, 1, -719468}, {-1, 12, 31, -719529},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        int y;
        unsigned m, d;
        int64_t z = ts_days_from_civil(rows[i].y, rows[i].m, rows[i].d);
        cr_expect_eq(z, rows[i].days, "%d-%u-%u -> %" PRId64, rows[i].y, rows[i].m, rows[i].d, z);
        ts_civil_from_days(rows[i].days, &y, &m, &d);
        cr_expect(y == rows[i].y && m == rows[i].m && d == rows[i].d, "%" PRId64 " -> %d-%u-%u",
                  rows[i].days, y, m, d);
    }
}

/* Walks every day of 0001..9999 with a naive calendar (not the algorithm
 * under test) and checks both directions. */
Test(ts_civil, every_day_of_years_1_to_9999) {
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t z = ts_days_from_civil(1, 1, 1);
    size_t bad = 0;
    for (int y = 1; y <= 9999; y++) {
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for (unsigned m = 1; m <= 12; m++) {
            unsigned n = dim[m - 1] + (m == 2 && leap);
            for (unsigned d = 1; d <= n; d++, z++) {
                int yy;
                unsigned mm, dd;
                ts_civil_from_days(z, &yy, &mm, &dd);
                if (ts_days_from_civil(y, m, d) != z || yy != y || mm != m || dd != d) {
                    if (bad++ < 5)
                        cr_expect(0, "mismatch at %d-%u-%u (day %" PRId64 ")", y, m, d, z);
                }
            }
        }
    }
    cr_expect_eq(bad, 0);
    cr_expect_eq(z, ts_days_from_civil(10000, 1, 1));
}

Test(ts_civil, extreme_days_do_not_overflow) {
    int y;
    unsigned m, d;
    ts_civil_from_days(INT64_MAX, &y, &m, &d);
    cr_expect(y > 1000000 && m >= 1 && m <= 12 && d >= 1 && d <= 31, "%d-%u-%u", y, m, d);
    ts_civil_from_days(INT64_MIN, &y, &m, &d);
    cr_expect(y < -1000000 && m >= 1 && m <= 12 && d >= 1 && d <= 31, "%d-%u-%u", y, m, d);
}

Test(ts_now, is_a_plausible_present) {
    int64_t a = ts_now(), b = ts_now();
    cr_expect_gt(a, 1704067200 * S, "before 2024: %" PRId64, a); /* 2024-01-01 */
    cr_expect_lt(a, 4102444800 * S, "after 2100: %" PRId64, a);  /* 2100-01-01 */
    cr_expect_geq(b, a);
}
