/* test_mpart.c — shared/mpart.c: streaming multipart/form-data, fed in
 * every split (two pieces at each position and byte by byte); the parts must
 * be the same as for one feed.  Boundary-like text inside the content, CRLF
 * and bare LF bodies, malformed bodies. */
#include "fmacros.h"
#include "mpart.h"
#include "buf.h"
#include <criterion/criterion.h>
#include <stdlib.h>

static int on_part(void *ud, int what, const mp_part *p, const char *d, size_t n) {
    buf *b = ud;
    char h[700];
    if (what == MP_PART_BEGIN) {
        snprintf(h, sizeof h, "[%s|%s|%s:", p->name, p->filename ? p->filename : "-",
                 p->content_type);
        buf_add(b, h, strlen(h));
    } else if (what == MP_PART_DATA) {
        buf_add(b, d, n);
    } else {
        buf_add(b, "]", 1);
    }
    return 0;
}

/* Transcript, or "ERR:<msg>". */
static char *run(const char *boundary, const char *in, size_t n, const size_t *cuts, size_t ncuts) {
    mp_parser *p = malloc(sizeof *p);
    cr_assert(p && mp_init(p, boundary) == 0);
    buf b;
    buf_init(&b);
    size_t start = 0;
    int rc = 0;
    for (size_t k = 0; k <= ncuts && rc == 0; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        rc = mp_feed(p, in + start, end - start, on_part, &b);
        start = end;
    }
    if (rc == 0) rc = mp_finish(p);
    char *s;
    if (rc) {
        size_t l = strlen(p->err) + 5;
        s = malloc(l);
        snprintf(s, l, "ERR:%s", p->err);
    } else {
        buf_add(&b, "", 1);
        s = strdup(b.p ? b.p : "");
    }
    buf_free(&b);
    free(p);
    return s;
}

static void check_splits(const char *boundary, const char *in, const char *want) {
    size_t n = strlen(in);
    char *whole = run(boundary, in, n, NULL, 0);
    cr_assert_str_eq(whole, want);
    free(whole);
    for (size_t i = 0; i <= n; i++) {
        size_t cut[1] = {i};
        char *t = run(boundary, in, n, cut, 1);
        cr_assert_str_eq(t, want, "split at %zu", i);
        free(t);
    }
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    for (size_t i = 0; i < n; i++) cuts[i] = i;
    char *t = run(boundary, in, n, cuts, n);
    cr_assert_str_eq(t, want, "byte by byte");
    free(t);
    free(cuts);
}

Test(mpart, two_parts_crlf_with_preamble_and_epilogue) {
    check_splits("AaB03x",
                 "preamble\r\n--AaB03x\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n"
                 "hi\r\n--AaB03x  \r\ncontent-disposition: form-data; name=file; "
                 "filename=\"a;b.csv\"\r\nContent-Type: text/csv\r\n\r\nx,y\r\n1,2\r\n"
                 "\r\n--AaB03x--\r\nepilogue --AaB03x\r\n",
                 "[note|-|:hi][file|a;b.csv|text/csv:x,y\r\n1,2\r\n]");
}

Test(mpart, boundary_like_text_inside_content) {
    check_splits("b0und",
                 "--b0und\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                 "--b0und at start of a line but no CRLF before\r\n"
                 "\r\n--b0unX\r\n"
                 "\r\r\n-\r\n--\r\n--b\r\n--b0un\r\n"
                 "\r\n--b0undary-ish\r\n"
                 "\r\n--b0und-x\r\n"
                 "\r\n--b0und--\r\n",
                 "[file|-|:--b0und at start of a line but no CRLF before\r\n"
                 "\r\n--b0unX\r\n"
                 "\r\r\n-\r\n--\r\n--b\r\n--b0un\r\n"
                 "\r\n--b0undary-ish\r\n"
                 "\r\n--b0und-x\r\n]");
}

Test(mpart, bare_lf_body) {
    check_splits(
        "zz",
        "--zz\nContent-Disposition: form-data; name=\"file\"; filename=\"C:\\\\x\\\\u.csv\"\n\n"
        "a\nb\n--zz--\n",
        "[file|u.csv|:a\nb]");
}

Test(mpart, empty_part) {
    check_splits("q", "--q\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n\r\n--q--",
                 "[file|-|:]");
}

Test(mpart, malformed) {
    char *t = run("q", "--q\r\nX: y\r\n\r\nabc", 16, NULL, 0);
    cr_expect(!strncmp(t, "ERR:", 4), "no closing boundary: %s", t);
    free(t);
    const char in2[] = "--q \r x\r\n\r\n--q--";
    t = run("q", in2, sizeof in2 - 1, NULL, 0);
    cr_expect(!strncmp(t, "ERR:", 4), "junk after the delimiter: %s", t);
    free(t);
    size_t n = MP_HEAD_MAX + 64;
    char *big = malloc(n);
    memcpy(big, "--q\r\nX: ", 8);
    memset(big + 8, 'a', n - 8);
    t = run("q", big, n, NULL, 0);
    cr_expect(!strncmp(t, "ERR:", 4) && strstr(t, "too large"), "%s", t);
    free(t);
    free(big);
    mp_parser p;
    cr_expect_eq(mp_init(&p, ""), -1);
}

Test(mpart, boundary_parameter) {
    char b[MP_BOUNDARY_MAX + 1];
    const char *ct = "multipart/form-data; charset=utf-8; boundary=\"a b;c\"";
    cr_assert_eq(mp_boundary(ct, strlen(ct), b, sizeof b), 0);
    cr_expect_str_eq(b, "a b;c");
    ct = "Multipart/Form-Data;boundary=xyz";
    cr_assert_eq(mp_boundary(ct, strlen(ct), b, sizeof b), 0);
    cr_expect_str_eq(b, "xyz");
    ct = "multipart/form-data";
    cr_expect_eq(mp_boundary(ct, strlen(ct), b, sizeof b), -1);
    ct = "multipart/mixed; boundary=x";
    cr_expect_eq(mp_boundary(ct, strlen(ct), b, sizeof b), -1);
}
