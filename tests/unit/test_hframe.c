/* test_hframe.c — shared/hframe.c: HTTP/1.1 request framing, fed in every
 * possible split (two pieces at each position, and byte by byte); the events
 * must be the same as for one feed. */
#include "fmacros.h"
#include "hframe.h"
#include "buf.h"
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>

/* Transcript of the events: "H<method> <target> cl=<n> ch=<0|1>|D<bytes>|E|X<err>" where
 * consecutive data spans are merged. */
static void feed_all(hf_parser *p, const char *in, size_t n, const size_t *cuts, size_t ncuts,
                     buf *out) {
    size_t start = 0;
    bool in_data = false;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        size_t off = start;
        for (;;) {
            int ev;
            const char *d;
            size_t dl;
            long c = hf_feed(p, in + off, end - off, &ev, &d, &dl);
            cr_assert_geq(c, 0);
            off += (size_t)c;
            if (ev == HF_NEED_MORE) {
                cr_assert_eq(off, end, "NEED_MORE must consume everything");
                break;
            }
            if (ev == HF_DATA) {
                if (!in_data) buf_add(out, "D", 1);
                buf_add(out, d, dl);
                in_data = true;
                continue;
            }
            in_data = false;
            if (ev == HF_HEAD) {
                char h[256];
                snprintf(h, sizeof h, "|H%s %.*s cl=%lld ch=%d|", p->method, (int)p->target_len,
                         p->head + p->target, p->content_length, p->chunked);
                buf_add(out, h, strlen(h));
            } else if (ev == HF_DONE) {
                buf_add(out, "|E", 2);
            } else {
                buf_add(out, "|X", 2);
                buf_add(out, p->err, strlen(p->err));
                return;
            }
        }
        start = end;
    }
}

static char *run(const char *in, size_t n, const size_t *cuts, size_t ncuts) {
    hf_parser p;
    hf_init(&p);
    buf b;
    buf_init(&b);
    feed_all(&p, in, n, cuts, ncuts, &b);
    buf_add(&b, "", 1);
    hf_free(&p);
    char *s = strdup(b.p);
    buf_free(&b);
    return s;
}

static void check_splits(const char *in, const char *want) {
    size_t n = strlen(in);
    char *whole = run(in, n, NULL, 0);
    cr_assert_str_eq(whole, want);
    for (size_t i = 0; i <= n; i++) {
        size_t cut[1] = {i};
        char *t = run(in, n, cut, 1);
        cr_assert_str_eq(t, want, "split at %zu", i);
        free(t);
    }
    size_t *cuts = malloc(n * sizeof *cuts);
    for (size_t i = 0; i < n; i++) cuts[i] = i;
    char *t = run(in, n, cuts, n);
    cr_assert_str_eq(t, want, "byte by byte");
    free(t);
    free(cuts);
    free(whole);
}

Test(hframe, pipelined_requests_content_length_and_none) {
    check_splits("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                 "POST /v1/x?y=1 HTTP/1.1\r\nContent-Length: 5\r\nHost: a\r\n\r\nhello"
                 "\r\n\nDELETE /z HTTP/1.0\n\n",
                 "|HGET /healthz cl=-1 ch=0||E|HPOST /v1/x?y=1 cl=5 ch=0|Dhello|E"
                 "|HDELETE /z cl=-1 ch=0||E");
}

Test(hframe, chunked_with_extensions_and_trailers) {
    check_splits("POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5;name=val\r\nhello\r\n"
                 "0A \r\n0123456789\r\n"
                 "1\nX\n"
                 "0\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n"
                 "GET /next HTTP/1.1\r\n\r\n",
                 "|HPOST /up cl=-1 ch=1|Dhello0123456789X|E|HGET /next cl=-1 ch=0||E");
}

Test(hframe, lf_only_heads) {
    check_splits("PUT /a HTTP/1.1\nContent-Length: 2\nX: y\n\nok", "|HPUT /a cl=2 ch=0|Dok|E");
}

Test(hframe, header_lookup) {
    hf_parser p;
    hf_init(&p);
    const char in[] = "POST /a HTTP/1.1\r\nContent-Type:  text/csv ; x=1 \r\nEmpty:\r\n\r\n";
    int ev;
    const char *d;
    size_t dl, vl;
    hf_feed(&p, in, sizeof in - 1, &ev, &d, &dl);
    cr_assert_eq(ev, HF_HEAD);
    const char *v = hf_get(&p, "content-type", &vl);
    cr_assert(v);
    cr_expect_eq(vl, strlen("text/csv ; x=1"));
    cr_expect(!strncmp(v, "text/csv ; x=1", vl));
    v = hf_get(&p, "Empty", &vl);
    cr_expect(v && vl == 0);
    cr_expect_null(hf_get(&p, "Missing", &vl));
    hf_free(&p);
}

typedef struct bad {
    char in[160];
    char err[64];
} bad;
static bad k_bad[] = {
    {"GET /a HTTP/2.0\r\n\r\n", "unsupported HTTP version"},
    {"GET  HTTP/1.1\r\n\r\n", "malformed request line"},
    {"GET /a HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", "obsolete header line folding"},
    {"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "conflicting"},
    {"POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "malformed Content-Length"},
    {"POST /a HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "both"},
    {"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported Transfer"},
    {"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0"},
    {"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"},
    {"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc", "not followed"},
    {"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", "too large"},
    {"GET /a HTTP/1.1\r\nBad Header: x\r\n\r\n", "malformed header line"},
};
ParameterizedTestParameters(hframe, malformed) {
    return cr_make_param_array(bad, k_bad, ML_ARRAY_LEN(k_bad));
}
ParameterizedTest(bad *b, hframe, malformed) {
    size_t n = strlen(b->in);
    for (size_t i = 0; i <= n; i++) {
        size_t cut[1] = {i};
        char *t = run(b->in, n, cut, 1);
        char *x = strstr(t, "|X");
        cr_assert(x, "%s: no error at split %zu (%s)", b->in, i, t);
        cr_expect(strstr(x, b->err), "%s: error %s, want %s", b->in, x, b->err);
        free(t);
    }
}

Test(hframe, head_too_large) {
    size_t n = HF_HEAD_MAX + 100;
    char *in = malloc(n + 1);
    memcpy(in, "GET /a HTTP/1.1\r\nX: ", 20);
    memset(in + 20, 'a', n - 20);
    in[n] = '\0';
    char *t = run(in, n, NULL, 0);
    cr_expect(strstr(t, "too large"), "%s", t);
    free(t);
    free(in);
}
