/* test_jx.c — strict JSON loading, marked numbers, error lists and
 * table-driven validation (jx_).
 *
 * Every input is parsed from an exact-size heap copy, so ASan reports any read
 * past len.  For malformed input jansson itself is the oracle: jx_loadb must
 * fail exactly where and how json_loadb fails on the original text, even when
 * marked numbers were inserted before the error.  Tables are plain static
 * arrays walked inside each Test with cr_expect.
 */
#include "fmacros.h"
#include "jx.h"
#include <criterion/criterion.h>
#include <stdlib.h>

#define ERRLEN 256

/* ---- helpers ---------------------------------------------------------- */

static json_t *load_n(const char *s, size_t n, char *err) {
    char *p = malloc(n ? n : 1);
    json_t *v;
    cr_assert_not_null(p);
    memcpy(p, s, n);
    v = jx_loadb(p, n, err, ERRLEN);
    free(p);
    return v;
}

static json_t *load(const char *s, char *err) { return load_n(s, strlen(s), err); }

/* What json_loadb says about s, formatted the way jx_loadb reports it;
 * returns the jansson error code, or -1 if jansson accepts s. */
static int jansson_says(const char *s, size_t n, char *out, size_t cap) {
    json_error_t je;
    json_t *v = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (v) {
        json_decref(v);
        return -1;
    }
    snprintf(out, cap, "%s at line %d column %d", je.text, je.line, je.column);
    return (int)json_error_code(&je);
}

/* jx_dumps(v, JSON_COMPACT) into out. */
static void dump(const json_t *v, char *out, size_t cap) {
    char *s = jx_dumps(v, JSON_COMPACT);
    cr_assert_not_null(s);
    snprintf(out, cap, "%s", s);
    free(s);
}

/* "field: message; field: message" for the kept errors. */
static void errs_text(const jx_errs *e, char *out, size_t cap) {
    json_t *arr = jx_errs_json(e);
    size_t i, w = 0;
    json_t *it;
    cr_assert_not_null(arr);
    out[0] = '\0';
    json_array_foreach(arr, i, it) {
        int n = snprintf(out + w, cap - w, "%s%s: %s", i ? "; " : "",
                         json_string_value(json_object_get(it, "field")),
                         json_string_value(json_object_get(it, "message")));
        cr_assert(n >= 0 && (size_t)n < cap - w, "errs_text buffer too small");
        w += (size_t)n;
    }
    json_decref(arr);
}

/* ---- jx_loadb: numbers ------------------------------------------------ */

/* Loading then jx_dumps gives every number back with its exact text. */
Test(jx_loadb, numbers_keep_their_exact_text) {
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"[1.5]", "[1.5]"},
        {"[1.50]", "[1.50]"},
        {"[0.1, 0.2, 0.30000000000000004]", "[0.1,0.2,0.30000000000000004]"},
        {"[-0.0, 0.0, -0, 0]", "[-0.0,0.0,0,0]"},
        {"[1e5, 1E5, 1e+5, 1e-5, 1E-05, -1.25e-10]", "[1e5,1E5,1e+5,1e-5,1E-05,-1.25e-10]"},
        {"[1e400, -1e-400, 1.7976931348623157e309]", "[1e400,-1e-400,1.7976931348623157e309]"},
        {"[12345678901234567890.123456789012345678901]",
         "[12345678901234567890.123456789012345678901]"},
        {"[9223372036854775807, -9223372036854775808]",
         "[9223372036854775807,-9223372036854775808]"},
        {"[9223372036854775808, -9223372036854775809]",
         "[9223372036854775808,-9223372036854775809]"},
        {"[99999999999999999999999999999999999999999]",
         "[99999999999999999999999999999999999999999]"},
        {"{\"a\":1.5,\"b\":{\"c\":[2.25,{\"d\":-3e2}]}}",
         "{\"a\":1.5,\"b\":{\"c\":[2.25,{\"d\":-3e2}]}}"},
        {"{ \"a\" :\t1.5 ,\n\"b\"\r\n:\n-2.5\n}", "{\"a\":1.5,\"b\":-2.5}"},
        {"[[[[1.5]]],[[2.5],3.5]]", "[[[[1.5]]],[[2.5],3.5]]"},
        {"[1.5,true,false,null,\"x\",{},[]]", "[1.5,true,false,null,\"x\",{},[]]"},
        {"  {\"a\":1.5}  \n", "{\"a\":1.5}"},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char err[ERRLEN], out[512];
        json_t *v = load(rows[i].in, err);
        cr_expect_not_null(v, "%s: %s", rows[i].in, err);
        if (!v) continue;
        dump(v, out, sizeof out);
        cr_expect_str_eq(out, rows[i].out, "%s", rows[i].in);
        json_decref(v);
    }
}

enum { K_INT, K_MARK, K_STR };

/* Which numbers stay jansson integers and which become marked strings. */
Test(jx_loadb, number_kinds) {
    static const struct {
        const char *in;
        int kind;
        const char *text;
    } rows[] = {
        {"[0]", K_INT, "0"},
        {"[-0]", K_INT, "0"},
        {"[42]", K_INT, "42"},
        {"[-42]", K_INT, "-42"},
        {"[9223372036854775807]", K_INT, "9223372036854775807"},
        {"[-9223372036854775808]", K_INT, "-9223372036854775808"},
        {"[1000000000000000000]", K_INT, "1000000000000000000"},
        {"[9223372036854775808]", K_MARK, "9223372036854775808"},
        {"[-9223372036854775809]", K_MARK, "-9223372036854775809"},
        {"[10000000000000000000]", K_MARK, "10000000000000000000"},
        {"[123456789012345678901234567890]", K_MARK, "123456789012345678901234567890"},
        {"[1.5]", K_MARK, "1.5"},
        {"[-0.5]", K_MARK, "-0.5"},
        {"[0.0]", K_MARK, "0.0"},
        {"[1e2]", K_MARK, "1e2"},
        {"[1E2]", K_MARK, "1E2"},
        {"[1e+2]", K_MARK, "1e+2"},
        {"[1e-2]", K_MARK, "1e-2"},
        {"[0e0]", K_MARK, "0e0"},
        {"[-1.5E+10]", K_MARK, "-1.5E+10"},
        {"{\"q\": 12.50}", K_MARK, "12.50"},
        {"[ 1.5 ]", K_MARK, "1.5"},
        {"[\n\t1.5\r\n]", K_MARK, "1.5"},
        {"[\"1.5\"]", K_STR, "1.5"},
        {"[\"-1e5\"]", K_STR, "-1e5"},
        {"[\"99999999999999999999\"]", K_STR, "99999999999999999999"},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char err[ERRLEN], buf[32];
        json_t *root = load(rows[i].in, err), *v;
        const char *t;
        cr_expect_not_null(root, "%s: %s", rows[i].in, err);
        if (!root) continue;
        v = json_is_array(root) ? json_array_get(root, 0) : json_object_get(root, "q");
        t = jx_number_text(v, buf, sizeof buf);
        switch (rows[i].kind) {
        case K_INT:
            cr_expect(json_is_integer(v), "%s: not an integer", rows[i].in);
            cr_expect(t && strcmp(t, rows[i].text) == 0, "%s: text %s", rows[i].in,
                      t ? t : "(null)");
            break;
        case K_MARK:
            cr_expect(json_is_string(v) && json_string_value(v)[0] == JX_NUM_MARK, "%s: not marked",
                      rows[i].in);
            cr_expect(!jx_is_string(v), "%s: marked number taken for a string", rows[i].in);
            cr_expect(t && strcmp(t, rows[i].text) == 0, "%s: text %s", rows[i].in,
                      t ? t : "(null)");
            break;
        case K_STR:
            cr_expect(jx_is_string(v), "%s: not a plain string", rows[i].in);
            cr_expect_null(t, "%s: a string has no number text", rows[i].in);
            cr_expect_str_eq(json_string_value(v), rows[i].text, "%s", rows[i].in);
            break;
        }
        json_decref(root);
    }
}

/* Digits, quotes and backslashes inside strings are never rewritten. */
Test(jx_loadb, digits_inside_strings_are_untouched) {
    static const struct {
        const char *in;
        size_t idx;
        const char *str;
    } rows[] = {
        {"[\"1.5\"]", 0, "1.5"},
        {"[\"a 1.5 b\", 2.5]", 0, "a 1.5 b"},
        {"[\"\\\"1.5\\\"\", 2.5]", 0, "\"1.5\""},
        {"[\"\\\\\", 1.5]", 0, "\\"},
        {"[\"\\\\\\\"1.5\", 2.5]", 0, "\\\"1.5"},
        {"[\"1.5\\\\\", \"2.5\"]", 1, "2.5"},
        {"[\"[1.5, 2.5]\"]", 0, "[1.5, 2.5]"},
        {"[\"{\\\"a\\\":1.5}\"]", 0, "{\"a\":1.5}"},
        {"[\"\\u00311.5\"]", 0, "11.5"},
        {"[\"\\u0022, 1.5\"]", 0, "\", 1.5"},
        {"[\"\\/1e5\\/\"]", 0, "/1e5/"},
        {"[\"\\b\\f\\n\\r\\t1.5\"]", 0, "\b\f\n\r\t1.5"},
        {"[\"\\\\u0001\"]", 0, "\\u0001"},
        {"[\"a\\u0001\"]", 0, "a\001"},
        {"[\"\xc3\xa9 1.5\"]", 0, "\xc3\xa9 1.5"},
        {"[\"\\ud83d\\ude00 2.5\"]", 0, "\xf0\x9f\x98\x80 2.5"},
        {"{\"1.5\": \"2.5\"}", 0, "2.5"},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char err[ERRLEN];
        json_t *root = load(rows[i].in, err), *v;
        cr_expect_not_null(root, "%s: %s", rows[i].in, err);
        if (!root) continue;
        v = json_is_array(root) ? json_array_get(root, rows[i].idx) : json_object_get(root, "1.5");
        cr_expect(jx_is_string(v), "%s: element is not a plain string", rows[i].in);
        if (json_is_string(v))
            cr_expect_str_eq(json_string_value(v), rows[i].str, "%s", rows[i].in);
        json_decref(root);
    }
}

/* ---- jx_loadb: malformed input ---------------------------------------- */

/* Malformed inputs (many with decimals before the fault, which jx rewrites)
 * fail with jansson's own message, line and column for the original text. */
Test(jx_loadb, malformed_json_fails_like_jansson) {
    static const struct {
        const char *in;
        size_t len;
    } rows[] = {
        {"{", 0},
        {"}", 0},
        {"[", 0},
        {"]", 0},
        {"{\"a\"}", 0},
        {"{\"a\":}", 0},
        {"{\"a\":1.5,}", 0},
        {"[1.5,]", 0},
        {"[,1.5]", 0},
        {"[1 2]", 0},
        {"[1.5 2.5]", 0},
        {"{\"a\" 1.5}", 0},
        {"{\"a\":1.5 \"b\":2}", 0},
        {"{1.5:2}", 0},
        {"{1:2}", 0},
        /* a number where a key belongs must not become a string key */
        {"{\"a\":1, 1.5: 2}", 0},
        {"{\"a\":1, 1.5 : 2}", 0},
        {"{\"a\":1,1.5}", 0},
        {"{\"a\":1,1.5,\"b\":2}", 0},
        {"{\"a\":1.5:2}", 0},
        {"[1.5:2]", 0},
        {"{\"a\":[1.5}", 0},
        {"[{\"a\":1.5]", 0},
        {"[1.5}", 0},
        {"{\"a\":1.5]", 0},
        {"[\"abc]", 0},
        {"[\"a\\\"]", 0},
        {"[\"a\\\\\"b\"]", 0},
        {"[\"\\x\"]", 0},
        {"[\"\\u12\"]", 0},
        {"[\"\\ud800\"]", 0},
        {"[\"\\udc00\"]", 0},
        {"[\"a\nb\"]", 0},
        {"[\"a\tb\"]", 0},
        {"[tru]", 0},
        {"[true1.5]", 0},
        {"[nul]", 0},
        {"[True]", 0},
        {"[1.5e]", 0},
        {"[1.5e+]", 0},
        {"[1.]", 0},
        {"[-]", 0},
        {"[--1]", 0},
        {"[-a]", 0},
        {"[01.5]", 0},
        {"[00]", 0},
        {"[-01]", 0},
        {"[1.5.5]", 0},
        {"[0x10]", 0},
        {"[.5]", 0},
        {"[+1.5]", 0},
        {"[1.5x]", 0},
        {"[1.5\"a\"]", 0},
        {"[1.5[]]", 0},
        {"[1.5{}]", 0},
        {"[1.5,\n 2.5,\n x]", 0},
        {"{\"\xc3\xa9\":1.5, \"\xc3\xbc\": x}", 0},
        {"[1.5, \"\xe2\x82\xac\", 2.5, ?]", 0},
        /* top level must be an object or array */
        {"1.5", 0},
        {"\"x\"", 0},
        {"true", 0},
        {"null", 0},
        {"-", 0},
        {"  2.5  ", 0},
        /* trailing garbage */
        {"{} x", 0},
        {"{}{}", 0},
        {"[1.5]]", 0},
        {"[1.5] 2.5", 0},
        {"{}\n\n,", 0},
        {"[1.5, 2.5]\n  extra", 0},
        {"{\"a\":1.5}}", 0},
        {"[1.5]\t[2.5]", 0},
        {"[] \0", 4},
        {"[1.5]\0", 6},
        /* invalid UTF-8 anywhere */
        {"[\"\xff\"]", 0},
        {"[\"\xc3\"]", 0},
        {"[\"\xc3(\"]", 0},
        {"[\"\xed\xa0\x80\"]", 0},
        {"[\"\xc0\xaf\"]", 0},
        {"[\"\xf4\x90\x80\x80\"]", 0},
        {"[1.5,\"\xff\"]", 0},
        {"[1.5,\xff]", 0},
        {"{\"\xff\":1.5}", 0},
        {"[2.5, \"\xe2\x82\"]", 0},
        /* control bytes and NUL outside strings */
        {"[1.5,\x01]", 0},
        {"\0", 1},
        {"[\0]", 3},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        size_t n = rows[i].len ? rows[i].len : strlen(rows[i].in);
        char err[ERRLEN], want[ERRLEN];
        int code = jansson_says(rows[i].in, n, want, sizeof want);
        json_t *v = load_n(rows[i].in, n, err);
        cr_expect_neq(code, -1, "row %zu: jansson accepts it (bad test row)", i);
        cr_expect_null(v, "row %zu accepted: %s", i, rows[i].in);
        json_decref(v);
        cr_expect_str_eq(err, want, "row %zu (%s)", i, rows[i].in);
    }
}

/* Pins the message format, and positions after numbers jansson itself could
 * not parse (so it cannot serve as the oracle). */
Test(jx_loadb, error_messages) {
    static const struct {
        const char *in, *err;
    } rows[] = {
        {"{\"a\":1.5 x}", "'}' expected near 'x' at line 1 column 10"},
        {"{\"a\":123 x}", "'}' expected near 'x' at line 1 column 10"},
        {"[1.5,\n 2.5, \"\xc3\xa9\", x]", "invalid token near 'x' at line 2 column 12"},
        {"{\"a\":1e400,}", "string or '}' expected near '}' at line 1 column 12"},
        {"[99999999999999999999, ]", "unexpected token near ']' at line 1 column 24"},
        {"[1e999, -1e999, 1e999", "']' expected near end of file at line 1 column 21"},
        {"[1.5", "']' expected near end of file at line 1 column 4"},
        {"[1.5] x", "end of file expected near 'x' at line 1 column 7"},
        {"{\"a\":\"\\u0000\"}", "a string may not contain \\u0000 at line 1 column 13"},
        {"[1.5, \"a\\u0000b\"]", "a string may not contain \\u0000 at line 1 column 16"},
        {"{\"\\u0000\":1}",
         "NUL byte in object key not supported near '\"\\u0000\"' at line 1 column 9"},
    };
    /* Raw NUL bytes, some of which json_loadb itself would skip. */
    static const struct {
        const char *in;
        size_t len;
        const char *err;
    } nuls[] = {
        {"[1.5\0]", 6, "NUL byte at line 1 column 5"},
        {"[1\0]", 4, "NUL byte at line 1 column 3"},
        {"[true\0]", 7, "NUL byte at line 1 column 6"},
        {"{\"a\":1}\n\0", 9, "end of file expected near end of file at line 2 column 1"},
        {"[\"a\0\"]", 5, "control character 0x0 near '\"a' at line 1 column 3"},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(nuls); i++) {
        char err[ERRLEN];
        json_t *v = load_n(nuls[i].in, nuls[i].len, err);
        cr_expect_null(v, "NUL row %zu accepted", i);
        json_decref(v);
        cr_expect_str_eq(err, nuls[i].err, "NUL row %zu", i);
    }
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char err[ERRLEN];
        json_t *v = load(rows[i].in, err);
        cr_expect_null(v, "%s accepted", rows[i].in);
        json_decref(v);
        cr_expect_str_eq(err, rows[i].err, "%s", rows[i].in);
    }
}

Test(jx_loadb, duplicate_keys_at_any_depth_are_named) {
    static const struct {
        const char *in, *err;
    } rows[] = {
        {"{\"a\":1,\"a\":2}", "duplicate object key \"a\" at line 1 column 10"},
        {"{\"a\":1.5,\"a\":2.5}", "duplicate object key \"a\" at line 1 column 12"},
        {"{\"x\":{\"a\":1,\"a\":2}}", "duplicate object key \"a\" at line 1 column 15"},
        {"[{\"k\":1.5,\"k\":2.5}]", "duplicate object key \"k\" at line 1 column 13"},
        {"[0.5,[1.5,{\"k\":1.5,\"j\":2,\"k\":2.5}]]",
         "duplicate object key \"k\" at line 1 column 28"},
        {"{\"a\":1,\"b\":{\"c\":[{\"d\":1,\"d\":1}]}}",
         "duplicate object key \"d\" at line 1 column 27"},
        {"{\"a\\\"b\":1,\"a\\\"b\":2}", "duplicate object key \"a\\\"b\" at line 1 column 16"},
        {"{\"\xc3\xa9\":1,\"\xc3\xa9\":2}",
         "duplicate object key \"\xc3\xa9\" at line 1 column 10"},
        {"{\"a\":1,\"\\u0061\":2}", "duplicate object key \"\\u0061\" at line 1 column 15"},
        {"{\n \"a\": 1.5,\n \"a\": 2\n}", "duplicate object key \"a\" at line 3 column 4"},
        {"{\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":1,"
         "\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":2}",
         "duplicate object key \"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk..."
         " at line 1 column 152"},
    };
    static const char *const ok[] = {
        "[{\"a\":1},{\"a\":2}]",
        "{\"a\":{\"a\":1}}",
        "{\"a\":1,\"A\":2}",
        "{\"a\":1,\"a \":2}",
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char err[ERRLEN];
        json_t *v = load(rows[i].in, err);
        cr_expect_null(v, "%s accepted", rows[i].in);
        json_decref(v);
        cr_expect_str_eq(err, rows[i].err, "%s", rows[i].in);
    }
    for (size_t i = 0; i < ML_ARRAY_LEN(ok); i++) {
        char err[ERRLEN];
        json_t *v = load(ok[i], err);
        cr_expect_not_null(v, "%s: %s", ok[i], err);
        json_decref(v);
    }
}

Test(jx_loadb, empty_body_is_an_error) {
    static const char *const rows[] = {"", " ", "\n", " \t\r\n "};
    char err[ERRLEN];
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        json_t *v = load(rows[i], err);
        cr_expect_null(v);
        json_decref(v);
        cr_expect_str_eq(err, "empty body", "row %zu", i);
    }
    cr_expect_null(jx_loadb(NULL, 0, err, sizeof err));
    cr_expect_str_eq(err, "empty body");
    cr_expect_null(jx_loadb("{}", 0, err, sizeof err));
    cr_expect_str_eq(err, "empty body");
}

/* U+0001 at the start of a string would read as a marked number. */
Test(jx_loadb, strings_may_not_begin_with_u0001) {
    static const struct {
        const char *in, *err;
    } rows[] = {
        {"[\"\\u0001\"]", "a string may not begin with U+0001 at line 1 column 2"},
        {"[\"\\u00011.5\"]", "a string may not begin with U+0001 at line 1 column 2"},
        {"{\"\\u0001a\":1}", "a string may not begin with U+0001 at line 1 column 2"},
        {"{\"a\":2.5,\n\"b\":\"\\u0001x\"}",
         "a string may not begin with U+0001 at line 2 column 5"},
    };
    static const char *const ok[] = {"[\"a\\u0001\"]", "[\"\\\\u0001\"]", "[\"\\u0002\"]",
                                     "[\"\\u00010\\u0001\"]"};
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char err[ERRLEN];
        json_t *v = load(rows[i].in, err);
        cr_expect_null(v, "%s accepted", rows[i].in);
        json_decref(v);
        cr_expect_str_eq(err, rows[i].err, "%s", rows[i].in);
    }
    for (size_t i = 0; i < ML_ARRAY_LEN(ok); i++) {
        char err[ERRLEN];
        json_t *v = load(ok[i], err);
        if (i < 3) {
            cr_expect_not_null(v, "%s: %s", ok[i], err);
            cr_expect(jx_is_string(json_array_get(v, 0)), "%s", ok[i]);
        } else {
            cr_expect_null(v, "%s accepted", ok[i]); /* starts with it too */
        }
        json_decref(v);
    }
}

Test(jx_loadb, error_buffer_edge_cases) {
    char small[8];
    cr_expect_null(jx_loadb("[1.5", 4, NULL, 0));
    cr_expect_null(jx_loadb("[1.5", 4, small, sizeof small));
    cr_expect_eq(strlen(small), sizeof small - 1);
    cr_expect_str_eq(small, "']' exp");
}

static char *nest(size_t depth, const char *inner) {
    size_t n = strlen(inner);
    char *s = malloc(2 * depth + n + 1);
    cr_assert_not_null(s);
    memset(s, '[', depth);
    memcpy(s + depth, inner, n);
    memset(s + depth + n, ']', depth);
    s[2 * depth + n] = '\0';
    return s;
}

Test(jx_loadb, nesting_limit) {
    char err[ERRLEN], want[ERRLEN];
    char *ok = nest(JSON_PARSER_MAX_DEPTH - 1, "1.5");
    char *deep = nest(JSON_PARSER_MAX_DEPTH, "1.5");
    char *deeper = nest(100000, "2.5");
    json_t *v = load(ok, err), *x;
    cr_assert_not_null(v, "%s", err);
    x = v;
    for (int i = 1; i < JSON_PARSER_MAX_DEPTH - 1; i++) x = json_array_get(x, 0);
    x = json_array_get(x, 0);
    cr_expect(x && !jx_is_string(x) && jx_number_text(x, NULL, 0) &&
                  strcmp(jx_number_text(x, NULL, 0), "1.5") == 0,
              "innermost value not marked");
    json_decref(v);

    cr_expect_null(load(deep, err));
    cr_expect_neq(jansson_says(deep, strlen(deep), want, sizeof want), -1);
    cr_expect_str_eq(err, want);
    cr_expect_null(load(deeper, err));
    cr_expect_neq(jansson_says(deeper, strlen(deeper), want, sizeof want), -1);
    cr_expect_str_eq(err, want);
    free(ok);
    free(deep);
    free(deeper);
}

Test(jx_loadb, ten_thousand_events) {
    enum { N = 10000 };
    size_t cap = N * 96 + 32, w = 0;
    char *s = malloc(cap), err[ERRLEN], buf[32];
    json_t *v, *ev;
    cr_assert_not_null(s);
    w += (size_t)snprintf(s + w, cap - w, "{\"events\":[");
    for (int i = 0; i < N; i++)
        w += (size_t)snprintf(s + w, cap - w,
                              "%s{\"event_id\":\"e%d\",\"quantity\":%d.%02d,\"n\":%d}",
                              i ? "," : "", i, i, i % 100, i);
    w += (size_t)snprintf(s + w, cap - w, "]}");
    cr_assert_lt(w, cap);
    v = load_n(s, w, err);
    cr_assert_not_null(v, "%s", err);
    ev = json_array_get(json_object_get(v, "events"), 1234);
    cr_expect_str_eq(jx_number_text(json_object_get(ev, "quantity"), buf, sizeof buf), "1234.34");
    cr_expect_eq(json_integer_value(json_object_get(ev, "n")), 1234);
    cr_expect_eq(json_array_size(json_object_get(v, "events")), N);
    json_decref(v);
    free(s);
}

/* ---- differential and generated tests --------------------------------- */

static uint64_t rng_next(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

/* Compares jx_loadb with json_loadb on s: same verdict; on failure the same
 * message unless jansson choked on a number jx no longer hands it. */
static bool differs_from_jansson(const char *s, size_t n, char *why, size_t cap) {
    char err[ERRLEN], want[ERRLEN];
    int code = jansson_says(s, n, want, sizeof want);
    json_t *v = load_n(s, n, err);
    bool bad = false;
    if (code == json_error_numeric_overflow) {
        json_decref(v);
        return false;
    }
    if (code == -1) {
        bad = !v && strncmp(err, "a string may not begin with U+0001", 34) != 0;
        if (bad) snprintf(why, cap, "jx rejects (%s)", err);
    } else if (v) {
        bad = true;
        snprintf(why, cap, "jx accepts, jansson: %s", want);
    } else if (code == json_error_duplicate_key) {
        bad = strncmp(err, "duplicate object key \"", 22) != 0 ||
              strcmp(strstr(err, " at line "), strstr(want, " at line ")) != 0;
        if (bad) snprintf(why, cap, "jx: %s / jansson: %s", err, want);
    } else if (code != json_error_null_character) {
        bad = strcmp(err, want) != 0;
        if (bad) snprintf(why, cap, "jx: %s / jansson: %s", err, want);
    }
    json_decref(v);
    return bad;
}

/* Random short strings over JSON's lexical alphabet. */
Test(jx_fuzz, random_token_soup_agrees_with_jansson) {
    static const char alpha[] = "[]{}:,\"\\ \n0119-+.eEautx\xc3\xa9";
    uint64_t x = 12345;
    size_t bad = 0;
    for (int it = 0; it < 200000; it++) {
        char s[32], why[600];
        size_t n = 1 + rng_next(&x) % 24;
        s[0] = rng_next(&x) % 2 ? '[' : '{';
        for (size_t i = 1; i < n; i++) s[i] = alpha[rng_next(&x) % (sizeof alpha - 1)];
        if (differs_from_jansson(s, n, why, sizeof why) && bad++ < 5)
            cr_expect(0, "%.*s: %s", (int)n, s, why);
    }
    cr_expect_eq(bad, 0, "%zu disagreements", bad);
}

/* Single-byte mutations of valid documents full of numbers. */
Test(jx_fuzz, mutated_documents_agree_with_jansson) {
    static const char *const seeds[] = {
        "{\"a\":1.5,\"b\":[1,-2.5e3,{\"c\":0.25}],\"d\":\"x\\\"1.5\",\"e\":-0.0}",
        "[1.5, 2E+2, \"\\\\\", -3, 0.001, {\"k\": [4.5e-1, true, null]}]",
        "{\"events\":[{\"q\":12.50,\"t\":\"2026-10-01\"},{\"q\":1e3}]}",
        "[0,-0,0.0,1e1,12345678901234567890.5,\"\\u00311.5\"]",
    };
    const char muts[] = "0123456789.eE+-\"\\,:[]{} x";
    uint64_t x = 777;
    size_t bad = 0;
    for (int it = 0; it < 200000; it++) {
        const char *seed = seeds[rng_next(&x) % ML_ARRAY_LEN(seeds)];
        size_t n = strlen(seed), at = rng_next(&x) % n, k = 1 + rng_next(&x) % 3;
        char s[160], why[600];
        memcpy(s, seed, n);
        for (size_t j = 0; j < k; j++) {
            char c = muts[rng_next(&x) % (sizeof muts - 1)];
            int op = (int)(rng_next(&x) % 3);
            at = (at + rng_next(&x) % 5) % n;
            if (op == 0) { /* replace */
                s[at] = c;
            } else if (op == 1 && n + 1 < sizeof s) { /* insert */
                memmove(s + at + 1, s + at, n - at);
                s[at] = c;
                n++;
            } else if (n > 1) { /* delete */
                memmove(s + at, s + at + 1, n - at - 1);
                n--;
                if (at >= n) at = n - 1;
            }
        }
        if (differs_from_jansson(s, n, why, sizeof why) && bad++ < 5)
            cr_expect(0, "%.*s: %s", (int)n, s, why);
    }
    cr_expect_eq(bad, 0, "%zu disagreements", bad);
}

typedef struct gen {
    char in[8192], out[8192];
    size_t ni, no;
    uint64_t x;
} gen;

static void gen_both(gen *g, const char *in, const char *out) {
    size_t a = strlen(in), b = strlen(out);
    cr_assert(g->ni + a < sizeof g->in && g->no + b < sizeof g->out);
    memcpy(g->in + g->ni, in, a);
    memcpy(g->out + g->no, out, b);
    g->ni += a;
    g->no += b;
}

static void gen_ws(gen *g) {
    static const char *const ws[] = {"", "", "", " ", "\n", "\t", "\r\n", "  "};
    gen_both(g, ws[rng_next(&g->x) % ML_ARRAY_LEN(ws)], "");
}

static void gen_digits(gen *g, char *p, size_t n, bool lead) {
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('0' + (lead && i == 0 ? 1 + rng_next(&g->x) % 9 : rng_next(&g->x) % 10));
    p[n] = '\0';
}

static void gen_number(gen *g) {
    char t[96] = "", d[48];
    int kind = (int)(rng_next(&g->x) % 5);
    if (kind == 0) { /* int64 in canonical form */
        size_t n = 1 + rng_next(&g->x) % 18;
        gen_digits(g, d, n, true);
        snprintf(t, sizeof t, "%s%s", rng_next(&g->x) % 2 ? "-" : "", d);
    } else if (kind == 1) { /* beyond int64 */
        gen_digits(g, d, 20 + rng_next(&g->x) % 20, true);
        snprintf(t, sizeof t, "%s%s", rng_next(&g->x) % 2 ? "-" : "", d);
    } else { /* fraction and/or exponent */
        static const char *const e[] = {"e", "E", "e+", "e-", "E+", "E-"};
        char ip[24], fp[24] = "", ex[24] = "";
        bool frac = kind != 4, expo = kind != 2;
        if (rng_next(&g->x) % 3 == 0)
            snprintf(ip, sizeof ip, "0");
        else
            gen_digits(g, ip, 1 + rng_next(&g->x) % 6, true);
        if (frac) {
            fp[0] = '.';
            gen_digits(g, fp + 1, 1 + rng_next(&g->x) % 8, false);
        }
        if (expo) {
            size_t k = (size_t)snprintf(ex, sizeof ex, "%s", e[rng_next(&g->x) % 6]);
            gen_digits(g, ex + k, 1 + rng_next(&g->x) % 3, false);
        }
        snprintf(t, sizeof t, "%s%s%s%s", rng_next(&g->x) % 2 ? "-" : "", ip, fp, ex);
    }
    if (strcmp(t, "-0") == 0) snprintf(t, sizeof t, "0");
    gen_both(g, t, t);
}

/* A string whose input spelling uses escapes and whose expected spelling is
 * what jansson's compact dump writes. */
static void gen_string(gen *g, const char *key) {
    static const struct {
        const char *in, *out;
    } ch[] = {
        {"a", "a"},
        {"1", "1"},
        {"5", "5"},
        {".", "."},
        {"-", "-"},
        {"e", "e"},
        {" ", " "},
        {"\\\"", "\\\""},
        {"\\\\", "\\\\"},
        {"\\/", "/"},
        {"/", "/"},
        {"\\u0061", "a"},
        {"\\u0031", "1"},
        {"\\n", "\\n"},
        {"\\t", "\\t"},
        {"\xc3\xa9", "\xc3\xa9"},
        {"[", "["},
        {"]", "]"},
        {"{", "{"},
        {"}", "}"},
        {":", ":"},
        {",", ","},
        {"\\u00e9", "\xc3\xa9"},
        {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"},
    };
    size_t n = rng_next(&g->x) % 8;
    gen_both(g, "\"", "\"");
    if (key) gen_both(g, key, key);
    for (size_t i = 0; i < n; i++) {
        size_t k = rng_next(&g->x) % ML_ARRAY_LEN(ch);
        gen_both(g, ch[k].in, ch[k].out);
    }
    gen_both(g, "\"", "\"");
}

static void gen_value(gen *g, int depth) {
    int kind = (int)(rng_next(&g->x) % (depth > 4 ? 4 : 6));
    if (kind == 0 || kind == 1) {
        gen_number(g);
    } else if (kind == 2) {
        gen_string(g, NULL);
    } else if (kind == 3) {
        static const char *const lit[] = {"true", "false", "null"};
        const char *l = lit[rng_next(&g->x) % 3];
        gen_both(g, l, l);
    } else {
        bool obj = kind == 4;
        size_t n = rng_next(&g->x) % 5;
        gen_both(g, obj ? "{" : "[", obj ? "{" : "[");
        for (size_t i = 0; i < n; i++) {
            gen_ws(g);
            if (i) {
                gen_both(g, ",", ",");
                gen_ws(g);
            }
            if (obj) {
                char key[16];
                snprintf(key, sizeof key, "k%zu", i);
                gen_string(g, key);
                gen_ws(g);
                gen_both(g, ":", ":");
                gen_ws(g);
            }
            gen_value(g, depth + 1);
        }
        gen_ws(g);
        gen_both(g, obj ? "}" : "]", obj ? "}" : "]");
    }
}

/* Random valid documents: every number and string comes back verbatim. */
Test(jx_fuzz, generated_documents_round_trip) {
    static gen g;
    size_t bad = 0;
    g.x = 4242;
    for (int it = 0; it < 3000; it++) {
        char err[ERRLEN], *got;
        json_t *v;
        g.ni = g.no = 0;
        gen_ws(&g);
        if (rng_next(&g.x) % 2) { /* top level must be a container */
            gen_both(&g, "[", "[");
            gen_value(&g, 1);
            gen_both(&g, "]", "]");
        } else {
            gen_both(&g, "{", "{");
            gen_string(&g, "k");
            gen_both(&g, ":", ":");
            gen_value(&g, 1);
            gen_both(&g, "}", "}");
        }
        gen_ws(&g);
        g.in[g.ni] = g.out[g.no] = '\0';
        v = load_n(g.in, g.ni, err);
        if (!v) {
            if (bad++ < 5) cr_expect(0, "%s: %s", g.in, err);
            continue;
        }
        got = jx_dumps(v, JSON_COMPACT);
        if (!got || strcmp(got, g.out) != 0) {
            if (bad++ < 5) cr_expect(0, "in:   %s\nwant: %s\ngot:  %s", g.in, g.out, got);
        }
        free(got);
        json_decref(v);
    }
    cr_expect_eq(bad, 0, "%zu failures", bad);
}

/* ---- values ----------------------------------------------------------- */

Test(jx_values, number_text_and_is_string) {
    static const struct {
        size_t idx;
        const char *text;
        bool is_str;
    } rows[] = {
        {0, "0", false},
        {1, "-7", false},
        {2, "1.50", false},
        {3, NULL, true},
        {4, NULL, true},
        {5, "1e400", false},
        {6, "9223372036854775808", false},
        {7, NULL, true},
        {8, NULL, false},
        {9, NULL, false},
        {10, NULL, false},
        {11, NULL, false},
    };
    char err[ERRLEN];
    json_t *v = load("[0,-7,1.50,\"1.50\",\"\",1e400,9223372036854775808,\"a\\u0001\","
                     "true,null,{},[]]",
                     err);
    cr_assert_not_null(v, "%s", err);
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char buf[24];
        json_t *x = json_array_get(v, rows[i].idx);
        const char *t = jx_number_text(x, buf, sizeof buf);
        if (rows[i].text)
            cr_expect(t && strcmp(t, rows[i].text) == 0, "[%zu] %s", i, t);
        else
            cr_expect_null(t, "[%zu] %s", i, t);
        cr_expect_eq(jx_is_string(x), rows[i].is_str, "[%zu]", i);
    }
    json_decref(v);
}

/* Values built in code rather than loaded. */
Test(jx_values, built_values) {
    json_t *marked = json_string("\x01"
                                 "2.5"),
           *notnum = json_string("\x01"
                                 "abc");
    json_t *bare = json_string("\x01"), *nul = json_stringn("a\0b", 3), *real = json_real(1.5);
    json_t *min = json_integer(INT64_MIN);
    char buf[24];
    cr_expect_str_eq(jx_number_text(marked, NULL, 0), "2.5");
    cr_expect(!jx_is_string(marked));
    cr_expect_null(jx_number_text(notnum, buf, sizeof buf));
    cr_expect(jx_is_string(notnum));
    cr_expect_null(jx_number_text(bare, buf, sizeof buf));
    cr_expect(!jx_is_string(nul), "a string with NUL is not a plain string");
    cr_expect_null(jx_number_text(real, buf, sizeof buf), "doubles have no exact text");
    cr_expect_str_eq(jx_number_text(min, buf, sizeof buf), "-9223372036854775808");
    cr_expect_null(jx_number_text(NULL, buf, sizeof buf));
    cr_expect(!jx_is_string(NULL));
    json_decref(marked);
    json_decref(notnum);
    json_decref(bare);
    json_decref(nul);
    json_decref(real);
    json_decref(min);
}

Test(jx_values, accessors) {
    static const char doc[] =
        "{\"s\":\"x\",\"i\":5,\"neg\":-3,\"d\":1.50,\"ds\":\"2.5\",\"b\":true,\"f\":false,"
        "\"n\":null,\"arr\":[1],\"big\":99999999999999999999,\"bad\":\"1.2.3\",\"e\":\"\","
        "\"neg0\":-0.0}";
    static const struct {
        const char *key, *str;
        long long i;
        int b;
        int drc;
        const char *dec;
    } rows[] = {
        /* key     jx_str  jx_int(def 99) jx_bool(def -1=unset) jx_dec */
        {"s", "x", 99, -1, DEC_ESYNTAX, NULL},
        {"i", NULL, 5, -1, DEC_OK, "5"},
        {"neg", NULL, -3, -1, DEC_OK, "-3"},
        {"d", NULL, 99, -1, DEC_OK, "1.50"},
        {"ds", "2.5", 99, -1, DEC_OK, "2.5"},
        {"b", NULL, 99, 1, DEC_ESYNTAX, NULL},
        {"f", NULL, 99, 0, DEC_ESYNTAX, NULL},
        {"n", NULL, 99, -1, 1, NULL},
        {"missing", NULL, 99, -1, 1, NULL},
        {"arr", NULL, 99, -1, DEC_ESYNTAX, NULL},
        {"big", NULL, 99, -1, DEC_OK, "99999999999999999999"},
        {"bad", "1.2.3", 99, -1, DEC_ESYNTAX, NULL},
        {"e", "", 99, -1, DEC_ESYNTAX, NULL},
        {"neg0", NULL, 99, -1, DEC_OK, "0.0"},
    };
    char err[ERRLEN];
    json_t *o = load(doc, err);
    cr_assert_not_null(o, "%s", err);
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        const char *k = rows[i].key, *s = jx_str(o, k);
        dec_t d = dec_from_int(777);
        int rc = jx_dec(o, k, &d);
        char buf[DEC_FMT_MAX];
        if (rows[i].str)
            cr_expect(s && strcmp(s, rows[i].str) == 0, "jx_str(%s) = %s", k, s);
        else
            cr_expect_null(s, "jx_str(%s) = %s", k, s);
        cr_expect_eq(jx_int(o, k, 99), rows[i].i, "jx_int(%s)", k);
        if (rows[i].b < 0) {
            cr_expect_eq(jx_bool(o, k, true), true, "jx_bool(%s) default", k);
            cr_expect_eq(jx_bool(o, k, false), false, "jx_bool(%s) default", k);
        } else {
            cr_expect_eq(jx_bool(o, k, !rows[i].b), (bool)rows[i].b, "jx_bool(%s)", k);
        }
        cr_expect_eq(rc, rows[i].drc, "jx_dec(%s) = %d", k, rc);
        cr_expect_gt(dec_format(&d, buf, sizeof buf), 0);
        cr_expect_str_eq(buf, rows[i].dec ? rows[i].dec : "777", "jx_dec(%s) value", k);
    }
    cr_expect_null(jx_str(NULL, "s"));
    cr_expect_eq(jx_int(NULL, "i", 4), 4);
    cr_expect_eq(jx_bool(json_array_get(json_object_get(o, "arr"), 0), "b", true), true);
    json_decref(o);
}

Test(jx_values, dumps_unmarks_numbers_only) {
    static const struct {
        const char *in;
        size_t flags;
        const char *out;
    } rows[] = {
        {"{\"a\":1.50,\"b\":[1e5,-0.0,\"1.5\"]}", JSON_COMPACT,
         "{\"a\":1.50,\"b\":[1e5,-0.0,\"1.5\"]}"},
        {"[\"\xc3\xa9\",2.5]", JSON_COMPACT | JSON_ENSURE_ASCII, "[\"\\u00E9\",2.5]"},
        {"[\"a\\u0001\",2.5]", JSON_COMPACT, "[\"a\\u0001\",2.5]"},
        {"{\"q\":2.5}", JSON_INDENT(2), "{\n  \"q\": 2.5\n}"},
        {"[99999999999999999999]", 0, "[99999999999999999999]"},
    };
    char err[ERRLEN];
    json_t *arr;
    char *s;
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        json_t *v = load(rows[i].in, err);
        cr_assert_not_null(v, "%s: %s", rows[i].in, err);
        s = jx_dumps(v, rows[i].flags);
        cr_expect(s && strcmp(s, rows[i].out) == 0, "%s -> %s", rows[i].in, s);
        free(s);
        json_decref(v);
    }
    /* Built values: only \x01 + a valid number is unmarked. */
    arr = json_pack("[s,s,s,s]",
                    "\x01"
                    "abc",
                    "\x01"
                    "2.5",
                    "\x01",
                    "\x01"
                    "1.5\"");
    cr_assert_not_null(arr);
    s = jx_dumps(arr, JSON_COMPACT);
    cr_expect_str_eq(s, "[\"\\u0001abc\",2.5,\"\\u0001\",\"\\u00011.5\\\"\"]");
    free(s);
    json_decref(arr);
    arr = json_string("\x01"
                      "-7.25");
    s = jx_dumps(arr, JSON_ENCODE_ANY);
    cr_expect_str_eq(s, "-7.25");
    free(s);
    json_decref(arr);
}

Test(jx_values, utf8_len) {
    static const struct {
        const char *s;
        size_t n;
        long long want;
    } rows[] = {
        {"", 0, 0},
        {"abc", 3, 3},
        {"a\0b", 3, 3},
        {"\xc3\xa9", 2, 1},
        {"\xe2\x82\xac", 3, 1},
        {"\xf0\x9f\x98\x80", 4, 1},
        {"\xf4\x8f\xbf\xbf", 4, 1},
        {"\xef\xbf\xbf", 3, 1},
        {"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10, 4},
        {"\xff", 1, -1},
        {"\x80", 1, -1},
        {"\xc3", 1, -1},
        {"\xc3\xa9", 1, -1}, /* cut by len */
        {"\xc3(", 2, -1},
        {"\xc0\x80", 2, -1}, /* overlong NUL */
        {"\xc1\xbf", 2, -1},
        {"\xe0\x9f\xbf", 3, -1}, /* overlong */
        {"\xed\xa0\x80", 3, -1}, /* surrogate */
        {"\xed\xbf\xbf", 3, -1},
        {"\xf0\x8f\xbf\xbf", 4, -1}, /* overlong */
        {"\xf4\x90\x80\x80", 4, -1}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, -1},
        {"\xe2\x82", 2, -1},
        {"abc\xe2\x82", 5, -1},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char *p = malloc(rows[i].n ? rows[i].n : 1);
        cr_assert_not_null(p);
        memcpy(p, rows[i].s, rows[i].n);
        cr_expect_eq(jx_utf8_len(p, rows[i].n), rows[i].want, "row %zu", i);
        free(p);
    }
}

/* ---- jx_errs ---------------------------------------------------------- */

Test(jx_errs, field_paths) {
    static const struct {
        const char *prefix, *name, *field;
    } rows[] = {
        {NULL, "quantity", "quantity"},
        {"", "quantity", "quantity"},
        {"events[3]", "quantity", "events[3].quantity"},
        {"plan.charges[0]", "tiers", "plan.charges[0].tiers"},
        {"body", "", "body"},
        {"body", NULL, "body"},
        {NULL, NULL, ""},
    };
    jx_errs *e = jx_errs_new();
    json_t *arr;
    cr_assert_not_null(e);
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++)
        jx_errs_addp(e, rows[i].prefix, rows[i].name, "row %zu", i);
    jx_errs_add(e, "x", "must be between %d and %d", 1, 10);
    arr = jx_errs_json(e);
    cr_assert_not_null(arr);
    cr_expect_eq(json_array_size(arr), ML_ARRAY_LEN(rows) + 1);
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        json_t *it = json_array_get(arr, i);
        char msg[16];
        snprintf(msg, sizeof msg, "row %zu", i);
        cr_expect_str_eq(json_string_value(json_object_get(it, "field")), rows[i].field);
        cr_expect_str_eq(json_string_value(json_object_get(it, "message")), msg);
        cr_expect_eq(json_object_size(it), 2);
    }
    cr_expect_str_eq(
        json_string_value(json_object_get(json_array_get(arr, ML_ARRAY_LEN(rows)), "message")),
        "must be between 1 and 10");
    json_decref(arr);
    jx_errs_free(e);
}

Test(jx_errs, keeps_at_most_max_but_counts_all) {
    jx_errs *e = jx_errs_new();
    json_t *arr;
    cr_assert_not_null(e);
    cr_expect_eq(jx_errs_count(e), 0);
    arr = jx_errs_json(e);
    cr_expect(json_is_array(arr) && json_array_size(arr) == 0);
    json_decref(arr);
    for (int i = 0; i < 1000000; i++) jx_errs_addp(e, "events", "q", "error %d", i);
    cr_expect_eq(jx_errs_count(e), 1000000);
    arr = jx_errs_json(e);
    cr_assert_not_null(arr);
    cr_expect_eq(json_array_size(arr), JX_ERRS_MAX);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "message")),
                     "error 0");
    cr_expect_str_eq(
        json_string_value(json_object_get(json_array_get(arr, JX_ERRS_MAX - 1), "message")),
        "error 999");
    json_decref(arr);
    jx_errs_free(e);
    jx_errs_free(NULL);
    cr_expect_eq(jx_errs_count(NULL), 0);
    cr_expect_null(jx_errs_json(NULL));
}

/* Hostile field names stay bounded and valid UTF-8. */
Test(jx_errs, fields_are_clipped_and_sanitized) {
    char longf[1000], accent[300];
    jx_errs *e = jx_errs_new();
    json_t *arr;
    const char *f;
    cr_assert_not_null(e);
    memset(longf, 'a', sizeof longf - 1);
    longf[sizeof longf - 1] = '\0';
    memset(accent, 'b', 255);
    memcpy(accent + 255, "\xc3\xa9", 3);
    jx_errs_add(e, longf, "m");
    jx_errs_add(e,
                "a\xff"
                "b\xc3",
                "bad \xed\xa0\x80 utf8");
    jx_errs_add(e, accent, "m");
    accent[254] = '\0'; /* 254 + "." puts a 3-byte character at bytes 255..257 */
    jx_errs_addp(e, accent, "\xe2\x82\xac\xe2\x82\xac", "m");
    arr = jx_errs_json(e);
    cr_assert_not_null(arr);
    f = json_string_value(json_object_get(json_array_get(arr, 0), "field"));
    cr_expect_eq(strlen(f), 256 + 3);
    cr_expect_str_eq(f + 256, "...");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(arr, 1), "field")), "a?b?");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(arr, 1), "message")),
                     "bad ??? utf8");
    f = json_string_value(json_object_get(json_array_get(arr, 2), "field"));
    cr_expect_eq(strlen(f), 255 + 3, "a code point is never split");
    cr_expect_geq(jx_utf8_len(f, strlen(f)), 0);
    /* prefix + "." + name runs past the limit inside a 3-byte character */
    f = json_string_value(json_object_get(json_array_get(arr, 3), "field"));
    cr_expect_eq(strlen(f), 255 + 3, "%s", f);
    cr_expect_str_eq(f + 254, "....", "%s", f);
    json_decref(arr);
    jx_errs_free(e);
}

/* ---- jx_check --------------------------------------------------------- */

static const jx_field spec_req[] = {
    {"name", JX_STRING, JX_REQUIRED, 1, 5},
    {"must", JX_ANY, JX_REQUIRED | JX_NULLABLE, 0, 0},
    {NULL, 0, 0, 0, 0},
};

static const jx_field spec_types[] = {
    {"note", JX_STRING, JX_NULLABLE, 0, 0},
    {"code", JX_STRING, 0, 0, 3},
    {"qty", JX_DECIMAL, JX_NONNEG, 0, 0},
    {"delta", JX_DECIMAL, JX_NULLABLE, 0, 0},
    {"count", JX_INT, 0, 1, 10},
    {"n", JX_INT, JX_NONNEG, 0, 0},
    {"flag", JX_BOOL, 0, 0, 0},
    {"obj", JX_OBJECT, JX_NULLABLE, 0, 0},
    {"list", JX_ARRAY, 0, 1, 3},
    {"tags", JX_ARRAY, 0, 0, 0},
    {"any", JX_ANY, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};

Test(jx_check, table) {
    static const struct {
        const jx_field *spec;
        const char *in, *errs;
    } rows[] = {
        /* required, nullable, string length in code points */
        {spec_req, "{\"name\":\"ab\",\"must\":null}", ""},
        {spec_req, "{}", "name: is required; must: is required"},
        {spec_req, "{\"name\":null,\"must\":1}", "name: must not be null"},
        {spec_req, "{\"name\":\"\",\"must\":1}", "name: must be at least 1 characters"},
        {spec_req, "{\"name\":\"abcde\",\"must\":1}", ""},
        {spec_req, "{\"name\":\"abcdef\",\"must\":1}", "name: must be at most 5 characters"},
        {spec_req, "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\",\"must\":1}", ""},
        {spec_req, "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\",\"must\":1}",
         "name: must be at most 5 characters"},
        {spec_req,
         "{\"name\":\"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\","
         "\"must\":[]}",
         ""},
        {spec_req, "{\"name\":1.5,\"must\":1}", "name: must be a string"},
        {spec_req, "{\"name\":12,\"must\":1}", "name: must be a string"},
        {spec_req, "{\"name\":true,\"must\":1}", "name: must be a string"},
        {spec_req, "{\"name\":[\"ab\"],\"must\":1}", "name: must be a string"},
        /* everything valid, and everything absent */
        {spec_types, "{}", ""},
        {spec_types,
         "{\"note\":\"x\",\"code\":\"abc\",\"qty\":\"12.50\",\"delta\":-5.5,"
         "\"count\":5,\"n\":0,\"flag\":false,\"obj\":{\"x\":1},\"list\":[1],"
         "\"tags\":[],\"any\":[1,{\"a\":2.5}]}",
         ""},
        {spec_types, "{\"note\":null,\"obj\":null,\"delta\":null}", ""},
        /* JX_STRING */
        {spec_types, "{\"note\":1}", "note: must be a string"},
        {spec_types, "{\"note\":1e5}", "note: must be a string"},
        {spec_types, "{\"note\":{}}", "note: must be a string"},
        {spec_types, "{\"code\":\"\"}", ""},
        {spec_types, "{\"code\":\"abcd\"}", "code: must be at most 3 characters"},
        {spec_types, "{\"code\":null}", "code: must not be null"},
        /* JX_DECIMAL and JX_NONNEG */
        {spec_types, "{\"qty\":12.50}", ""},
        {spec_types, "{\"qty\":12}", ""},
        {spec_types, "{\"qty\":0}", ""},
        {spec_types, "{\"qty\":\"-0\"}", ""},
        {spec_types, "{\"qty\":-0.0}", ""},
        {spec_types, "{\"qty\":1.5e3}", ""},
        {spec_types, "{\"qty\":99999999999999999999}", ""},
        {spec_types, "{\"qty\":12345678901234567890123456789012345678}", ""},
        {spec_types, "{\"qty\":-1}", "qty: must not be negative"},
        {spec_types, "{\"qty\":-0.001}", "qty: must not be negative"},
        {spec_types, "{\"qty\":\"-3\"}", "qty: must not be negative"},
        {spec_types, "{\"qty\":-1e-30}", "qty: must not be negative"},
        {spec_types, "{\"qty\":\"abc\"}", "qty: must be a decimal number"},
        {spec_types, "{\"qty\":\"\"}", "qty: must be a decimal number"},
        {spec_types, "{\"qty\":\" 1\"}", "qty: must be a decimal number"},
        {spec_types, "{\"qty\":\"1.\"}", "qty: must be a decimal number"},
        {spec_types, "{\"qty\":true}", "qty: must be a decimal number"},
        {spec_types, "{\"qty\":[1]}", "qty: must be a decimal number"},
        {spec_types, "{\"qty\":null}", "qty: must not be null"},
        {spec_types, "{\"qty\":1e400}", "qty: has too many digits (at most 38)"},
        {spec_types, "{\"qty\":123456789012345678901234567890123456789}",
         "qty: has too many digits (at most 38)"},
        {spec_types, "{\"qty\":1e-40}", "qty: has too many decimal places (at most 36)"},
        {spec_types, "{\"delta\":-5.5}", ""},
        {spec_types, "{\"delta\":\"-5.5\"}", ""},
        /* JX_INT: bounds, non-negative, range */
        {spec_types, "{\"count\":1}", ""},
        {spec_types, "{\"count\":10}", ""},
        {spec_types, "{\"count\":0}", "count: must be between 1 and 10"},
        {spec_types, "{\"count\":11}", "count: must be between 1 and 10"},
        {spec_types, "{\"count\":-5}", "count: must be between 1 and 10"},
        {spec_types, "{\"count\":5.0}", "count: must be an integer"},
        {spec_types, "{\"count\":1e1}", "count: must be an integer"},
        {spec_types, "{\"count\":\"5\"}", "count: must be an integer"},
        {spec_types, "{\"count\":true}", "count: must be an integer"},
        {spec_types, "{\"count\":99999999999999999999}", "count: is out of range"},
        {spec_types, "{\"count\":-99999999999999999999}", "count: is out of range"},
        {spec_types, "{\"n\":-1}", "n: must not be negative"},
        {spec_types, "{\"n\":-9223372036854775808}", "n: must not be negative"},
        {spec_types, "{\"n\":9223372036854775807}", ""},
        /* JX_BOOL, JX_OBJECT, JX_ARRAY, JX_ANY */
        {spec_types, "{\"flag\":true}", ""},
        {spec_types, "{\"flag\":1}", "flag: must be a boolean"},
        {spec_types, "{\"flag\":\"true\"}", "flag: must be a boolean"},
        {spec_types, "{\"flag\":null}", "flag: must not be null"},
        {spec_types, "{\"obj\":[]}", "obj: must be an object"},
        {spec_types, "{\"obj\":\"{}\"}", "obj: must be an object"},
        {spec_types, "{\"list\":[]}", "list: must have at least 1 items"},
        {spec_types, "{\"list\":[1,2,3]}", ""},
        {spec_types, "{\"list\":[1,2,3,4]}", "list: must have at most 3 items"},
        {spec_types, "{\"list\":{}}", "list: must be an array"},
        {spec_types, "{\"tags\":[1,2,3,4,5,6,7,8,9,10,11,12]}", ""},
        {spec_types, "{\"tags\":\"a,b\"}", "tags: must be an array"},
        {spec_types, "{\"any\":1.5}", ""},
        {spec_types, "{\"any\":\"x\"}", ""},
        {spec_types, "{\"any\":null}", "any: must not be null"},
        /* unknown fields (case-sensitive), listed first in body order */
        {spec_types, "{\"zzz\":1}", "zzz: unknown field"},
        {spec_types, "{\"Qty\":1}", "Qty: unknown field"},
        {spec_types, "{\"b\":1,\"qty\":-1,\"a\":null}",
         "b: unknown field; a: unknown field; qty: must not be negative"},
        {spec_types, "{\"\":1}", ": unknown field"},
        /* all problems at once */
        {spec_types,
         "{\"note\":1,\"qty\":\"x\",\"count\":0,\"flag\":\"no\",\"obj\":1,"
         "\"list\":{},\"x\":null}",
         "x: unknown field; note: must be a string; qty: must be a decimal number; "
         "count: must be between 1 and 10; flag: must be a boolean; obj: must be an object; "
         "list: must be an array"},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char err[ERRLEN], got[1024];
        json_t *v = load(rows[i].in, err);
        jx_errs *e = jx_errs_new();
        size_t n;
        cr_assert_not_null(e);
        cr_expect_not_null(v, "%s: %s", rows[i].in, err);
        if (!v) {
            jx_errs_free(e);
            continue;
        }
        n = jx_check(v, rows[i].spec, NULL, e);
        errs_text(e, got, sizeof got);
        cr_expect_str_eq(got, rows[i].errs, "%s", rows[i].in);
        cr_expect_eq(n, jx_errs_count(e), "%s: returned %zu", rows[i].in, n);
        json_decref(v);
        jx_errs_free(e);
    }
}

Test(jx_check, prefixes_and_non_objects) {
    static const struct {
        const char *in, *prefix, *errs;
    } rows[] = {
        {"[]", NULL, "body: must be an object"},
        {"[]", "", "body: must be an object"},
        {"[1.5]", "events[2]", "events[2]: must be an object"},
        {"{\"qty\":-1,\"zz\":1}", "events[3]",
         "events[3].zz: unknown field; events[3].qty: must not be negative"},
        {"{\"count\":0}", "plan.charges[0]", "plan.charges[0].count: must be between 1 and 10"},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(rows); i++) {
        char err[ERRLEN], got[512];
        json_t *v = load(rows[i].in, err);
        jx_errs *e = jx_errs_new();
        cr_assert_not_null(v, "%s", err);
        cr_assert_not_null(e);
        cr_expect_gt(jx_check(v, spec_types, rows[i].prefix, e), 0);
        errs_text(e, got, sizeof got);
        cr_expect_str_eq(got, rows[i].errs, "%s", rows[i].in);
        json_decref(v);
        jx_errs_free(e);
    }
    {
        jx_errs *e = jx_errs_new();
        json_t *s = json_string("x");
        char got[128];
        cr_assert_not_null(e);
        cr_expect_eq(jx_check(NULL, spec_types, NULL, e), 1);
        cr_expect_eq(jx_check(s, spec_types, "meta", e), 1);
        errs_text(e, got, sizeof got);
        cr_expect_str_eq(got, "body: must be an object; meta: must be an object");
        json_decref(s);
        jx_errs_free(e);
    }
}

/* How a handler validates a batch: one list, every event, indexed paths. */
Test(jx_check, batch_of_events_collects_every_error) {
    static const jx_field top[] = {
        {"events", JX_ARRAY, JX_REQUIRED, 1, 10000},
        {NULL, 0, 0, 0, 0},
    };
    static const jx_field event[] = {
        {"event_id", JX_STRING, JX_REQUIRED, 1, 128},
        {"quantity", JX_DECIMAL, JX_NONNEG, 0, 0},
        {"properties", JX_OBJECT, 0, 0, 0},
        {NULL, 0, 0, 0, 0},
    };
    char err[ERRLEN], got[1024];
    json_t *v = load("{\"events\":[{\"event_id\":\"a\",\"quantity\":1.5},"
                     "{\"quantity\":-2.5,\"x\":1},5,"
                     "{\"event_id\":\"\",\"quantity\":\"1e-99\",\"properties\":[]}]}",
                     err);
    jx_errs *e = jx_errs_new();
    size_t i, added = 0;
    json_t *ev;
    cr_assert_not_null(v, "%s", err);
    cr_assert_not_null(e);
    cr_expect_eq(jx_check(v, top, NULL, e), 0);
    json_array_foreach(json_object_get(v, "events"), i, ev) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "events[%zu]", i);
        added += jx_check(ev, event, prefix, e);
    }
    errs_text(e, got, sizeof got);
    cr_expect_str_eq(got, "events[1].x: unknown field; events[1].event_id: is required; "
                          "events[1].quantity: must not be negative; events[2]: must be an object; "
                          "events[3].event_id: must be at least 1 characters; "
                          "events[3].quantity: has too many decimal places (at most 36); "
                          "events[3].properties: must be an object");
    cr_expect_eq(added, 7);
    cr_expect_eq(jx_errs_count(e), 7);
    json_decref(v);
    jx_errs_free(e);
}
