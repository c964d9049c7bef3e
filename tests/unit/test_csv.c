/* test_csv.c — the pure CSV reader of usage imports (worker/csvr.c): header
 * aliases, case, spaces and BOM; missing, duplicate and unknown columns;
 * quoted commas, quotes and newlines; line numbers across quoted newlines,
 * CRLF and blank lines; field-count, encoding and unterminated-quote row
 * errors; the 64 KB field bound; the usage event rules per row; and the same
 * callbacks whatever the input is cut into (every split point, byte by
 * byte). */
#include "fmacros.h"
#include "buf.h"
#include "csvr.h"
#include "jx.h"
#include <criterion/criterion.h>
#include <stdlib.h>

#define H "event_id,customer_id,event_type,event_date,quantity\n"
#define T "2026-10-01T00:00:00Z"

typedef struct sink {
    buf b;
    csv_reader *r;
    int stop_at; /* stop when this row index arrives; 0 = never */
} sink;

/* Each row as "L<line> #<index> v1|v2|v3|v4|v5" or "L<line> #<index> !<error>". */
static int collect(void *arg, const csv_row *row) {
    sink *s = arg;
    buf_printf(&s->b, "L%lld #%lld ", row->line, row->index);
    if (row->error) {
        buf_printf(&s->b, "!%s\n", row->error);
    } else {
        for (int c = 0; c < CSV_NCOLS; c++) {
            cr_assert_eq(strlen(row->v[c]), row->len[c], "values are NUL-terminated");
            buf_add(&s->b, row->v[c], row->len[c]);
            buf_addc(&s->b, c + 1 < CSV_NCOLS ? '|' : '\n');
        }
    }
    return s->stop_at && row->index == s->stop_at;
}

static int end(sink *s, int rc) {
    if (rc == CSV_OK) rc = csv_reader_finish(s->r);
    buf_printf(&s->b, "rc=%d rows=%lld err=%s", rc, csv_reader_rows(s->r), csv_reader_error(s->r));
    return rc;
}

/* Feeds in[0..n) cut at the given offsets; returns the transcript (free it). */
static char *run_cuts(const char *in, size_t n, const size_t *cuts, size_t ncuts) {
    sink s = {0};
    buf_init(&s.b);
    s.r = csv_reader_new(collect, &s);
    cr_assert(s.r);
    size_t at = 0;
    int rc = CSV_OK;
    for (size_t i = 0; i <= ncuts && rc == CSV_OK; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        rc = csv_reader_feed(s.r, in + at, to - at);
        at = to;
    }
    end(&s, rc);
    csv_reader_free(s.r);
    cr_assert(!s.b.oom);
    return buf_steal(&s.b, NULL);
}

static char *run(const char *in) { return run_cuts(in, strlen(in), NULL, 0); }

static char *run_bytewise(const char *in, size_t n) {
    sink s = {0};
    buf_init(&s.b);
    s.r = csv_reader_new(collect, &s);
    cr_assert(s.r);
    int rc = CSV_OK;
    for (size_t i = 0; i < n && rc == CSV_OK; i++) rc = csv_reader_feed(s.r, in + i, 1);
    end(&s, rc);
    csv_reader_free(s.r);
    return buf_steal(&s.b, NULL);
}

static void expect_run(const char *in, const char *want) {
    char *got = run(in);
    cr_expect_str_eq(got, want, "input:\n%s", in);
    free(got);
}

Test(csv_header, aliases_case_spaces_bom_crlf) {
    expect_run("\xEF\xBB\xBF Customer_ID ,EVENT_TYPE,\tevent_id ,Event_Date,QUANTITY\r\n"
               "c1,m1,e1," T ",2\r\n",
               "L2 #1 e1|c1|m1|" T "|2\nrc=0 rows=1 err=");
    expect_run("metric,timestamp,event_id,customer_id\n"
               "m1," T ",e1,c1\n",
               "L2 #1 e1|c1|m1|" T "|\nrc=0 rows=1 err=");
    expect_run("\"event_id\",\"customer_id\",\"Metric\",\"TimeStamp\"\ne1,c1,m1," T,
               "L2 #1 e1|c1|m1|" T "|\nrc=0 rows=1 err=");
    /* a header alone: zero rows, fine */
    expect_run(H, "rc=0 rows=0 err=");
    /* blank lines before the header: it is still the header, line numbers count them */
    expect_run("\n\r\n  \n" H "e1,c1,m1," T ",1\n", "L5 #1 e1|c1|m1|" T "|1\nrc=0 rows=1 err=");
}

Test(csv_header, names_as_spelled_in_the_header) {
    sink s = {0};
    buf_init(&s.b);
    s.r = csv_reader_new(collect, &s);
    cr_assert_str_eq(csv_reader_colname(s.r, CSV_COL_METRIC), "event_type");
    const char *in = "Metric,TIMESTAMP,event_id,customer_id\n";
    cr_assert_eq(csv_reader_feed(s.r, in, strlen(in)), CSV_OK);
    cr_assert(csv_reader_has_header(s.r));
    cr_expect_str_eq(csv_reader_colname(s.r, CSV_COL_METRIC), "metric");
    cr_expect_str_eq(csv_reader_colname(s.r, CSV_COL_TIMESTAMP), "timestamp");
    cr_expect_str_eq(csv_reader_colname(s.r, CSV_COL_QUANTITY), "quantity");
    csv_reader_free(s.r);
    buf_free(&s.b);
}

typedef struct bad_header {
    const char *in;
    const char *err;
} bad_header;

Test(csv_header, rejected_headers_name_the_column) {
    static const bad_header cases[] = {
        {"customer_id,event_type,event_date\n", "missing required column \"event_id\""},
        {"event_id,event_type,event_date,quantity\n", "missing required column \"customer_id\""},
        {"event_id,customer_id,event_date\n",
         "missing required column \"event_type\" (or \"metric\")"},
        {"event_id,customer_id,metric\n",
         "missing required column \"event_date\" (or \"timestamp\")"},
        {"event_id,customer_id,metric,event_type,event_date\n",
         "duplicate column \"event_type\": \"metric\" is the same column"},
        {"event_id,customer_id,timestamp,metric,Event_Date\n",
         "duplicate column \"event_date\": \"timestamp\" is the same column"},
        {"event_id,customer_id,metric,event_date,EVENT_ID\n", "duplicate column \"event_id\""},
        {"event_id,customer_id,metric,event_date,quantity,quantity\n",
         "duplicate column \"quantity\""},
        {"event_id,customer_id,metric,event_date,quantiy\n",
         "unknown column \"quantiy\" (the columns are event_id, customer_id, event_type or "
         "metric, event_date or timestamp, quantity)"},
        {"event_id,customer_id,metric,event_date,properties\ne1,c1,m1," T ",{}\n",
         "unknown column \"properties\" (the columns are event_id, customer_id, event_type or "
         "metric, event_date or timestamp, quantity)"},
        {"a,b,c,d,e,f,g,h,i,j,k\n",
         "unknown column \"a\" (the columns are event_id, customer_id, event_type or metric, "
         "event_date or timestamp, quantity)"},
        {"event_id,,customer_id,metric,event_date\n", "line 1: column 2 of the header has no name"},
        {"event_id,customer_id,metric,event_date,\n", "line 1: column 5 of the header has no name"},
        {"\n\nevent_id,customer_id,metric,event_dat\xC3\n",
         "line 3: the header row is not valid UTF-8"},
        {"", "the file is empty: a header row is required"},
        {"\xEF\xBB\xBF", "the file is empty: a header row is required"},
        {"\r\n\n   \n", "the file is empty: a header row is required"},
        {"event_id,\"customer_id", "line 1: the header row has an unterminated quoted field"},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(cases); i++) {
        char *got = run(cases[i].in);
        char want[512];
        snprintf(want, sizeof want, "rc=%d rows=0 err=%s", CSV_ERR_FILE, cases[i].err);
        cr_expect_str_eq(got, want, "case %zu", i);
        free(got);
    }
}

/* The catalogue of records: quoted commas, quotes, newlines; blank lines;
 * CRLF; wrong field counts; line numbers of records that span lines. */
static const char k_mixed[] = "\xEF\xBB\xBF"
                              "event_id,customer_id,event_type,event_date,quantity\r\n"    /* 1 */
                              "e1,c1,m1," T ",1\r\n"                                       /* 2 */
                              "\r\n"                                                       /* 3 */
                              "\"e2\",\"c \"\"quoted\"\", with comma\",m1," T ",\"2.5\"\n" /* 4 */
                              "\"e3\",\"multi\nline\r\ncustomer\",m1," T ",3\n"            /* 5-7 */
                              "e4,c1,m1," T "\n"                                           /* 8 */
                              "   \n"                                                      /* 9 */
                              "\n"                                                         /* 10 */
                              "e5,c1,m1," T ",1,extra\n"                                   /* 11 */
                              "\"e6\n\n\",c1,m1," T ",\n"  /* 12-14 */
                              "e7,\"\xFF\",m1," T ",1\n"   /* 15 */
                              " e8 , c1 ,m1, " T " , 4 \n" /* 16 */
                              ",,,,\n"                     /* 17 */
                              "e9,c9,m9," T ",9";          /* 18, no newline */

static const char k_mixed_want[] = "L2 #1 e1|c1|m1|" T "|1\n"
                                   "L4 #2 e2|c \"quoted\", with comma|m1|" T "|2.5\n"
                                   "L5 #3 e3|multi\nline\r\ncustomer|m1|" T "|3\n"
                                   "L8 #4 !expected 5 fields, found 4\n"
                                   "L11 #5 !expected 5 fields, found 6\n"
                                   "L12 #6 e6\n\n|c1|m1|" T "|\n"
                                   "L15 #7 !not valid UTF-8\n"
                                   "L16 #8 e8|c1|m1|" T "|4\n"
                                   "L17 #9 ||||\n"
                                   "L18 #10 e9|c9|m9|" T "|9\n"
                                   "rc=0 rows=10 err=";

Test(csv_rows, quoted_fields_blank_lines_and_line_numbers) {
    char *got = run(k_mixed);
    cr_expect_str_eq(got, k_mixed_want);
    free(got);
}

Test(csv_rows, every_split_point_gives_the_same_rows) {
    size_t n = sizeof k_mixed - 1;
    char *whole = run(k_mixed);
    cr_assert_str_eq(whole, k_mixed_want);
    for (size_t k = 0; k <= n; k++) {
        char *got = run_cuts(k_mixed, n, &k, 1);
        cr_assert_str_eq(got, whole, "cut at byte %zu", k);
        free(got);
    }
    /* two cuts close together (inside the BOM, inside "" escapes, CR|LF) */
    for (size_t a = 0; a + 3 <= n; a += 7) {
        size_t cuts[2] = {a, a + 2};
        char *got = run_cuts(k_mixed, n, cuts, 2);
        cr_assert_str_eq(got, whole, "cuts at %zu and %zu", a, a + 2);
        free(got);
    }
    char *bytes = run_bytewise(k_mixed, n);
    cr_expect_str_eq(bytes, whole, "byte by byte");
    free(bytes);
    free(whole);
}

Test(csv_rows, split_points_of_rejected_headers_and_partial_boms) {
    static const char *const inputs[] = {
        "\xEF\xBB"
        "event_id,customer_id,metric,event_date\ne1,c1,m1," T "\n",
        "\xEF"
        "event_id\n",
        "\xEF\xBB\xBF\xEF\xBB\xBF" H,
        "event_id,customer_id,metric,event_date,quantiy\n",
        H "e1,\"c1",
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(inputs); i++) {
        size_t n = strlen(inputs[i]);
        char *whole = run(inputs[i]);
        for (size_t k = 0; k <= n; k++) {
            char *got = run_cuts(inputs[i], n, &k, 1);
            cr_assert_str_eq(got, whole, "input %zu cut at %zu", i, k);
            free(got);
        }
        free(whole);
    }
    /* a partial BOM is data: the header's first name is not event_id */
    char *got = run("\xEF\xBB"
                    "event_id,customer_id,metric,event_date\n");
    cr_expect(strstr(got, "not valid UTF-8"), "%s", got);
    free(got);
    /* a second BOM is data too: an unknown column */
    got = run("\xEF\xBB\xBF\xEF\xBB\xBF" H);
    cr_expect(strstr(got, "unknown column \"\xEF\xBB\xBF"
                          "event_id\""),
              "%s", got);
    free(got);
}

Test(csv_rows, row_errors_nul_and_unterminated_quote) {
    char in[256];
    size_t n = (size_t)snprintf(in, sizeof in, H "e1,c1,m1," T ",1\n");
    static const char row2[] = "e2,c\0x,m1," T ",1\n";
    memcpy(in + n, row2, sizeof row2 - 1);
    n += sizeof row2 - 1;
    char *got = run_cuts(in, n, NULL, 0);
    cr_expect_str_eq(got, "L2 #1 e1|c1|m1|" T "|1\nL3 #2 !contains a NUL byte\nrc=0 rows=2 err=");
    free(got);
    expect_run(H "e1,c1,m1," T ",1\n\ne2,\"c1,m1," T ",1\n\n",
               "L2 #1 e1|c1|m1|" T "|1\nL4 #2 !unterminated quoted field\nrc=0 rows=2 err=");
}

Test(csv_rows, a_huge_field_fails_the_file_with_its_line) {
    size_t big = CSV_FIELD_MAX + 100;
    size_t cap = big + 256;
    char *in = malloc(cap);
    cr_assert(in);
    size_t n = (size_t)snprintf(in, cap, H "e1,c1,m1," T ",1\n\n\"");
    memset(in + n, 'x', big);
    n += big;
    char *got = run_cuts(in, n, NULL, 0);
    char want[256];
    snprintf(want, sizeof want,
             "L2 #1 e1|c1|m1|" T "|1\nrc=%d rows=1 err=line 4: a field is longer than %d bytes "
             "(an unterminated quote?)",
             CSV_ERR_FILE, CSV_FIELD_MAX);
    cr_expect_str_eq(got, want);
    free(got);
    /* an unquoted field just over the limit, fed in pieces */
    n = (size_t)snprintf(in, cap, H);
    memset(in + n, 'y', big);
    n += big;
    size_t cuts[3] = {10, 60000, 65600};
    got = run_cuts(in, n, cuts, 3);
    snprintf(want, sizeof want,
             "rc=%d rows=0 err=line 2: a field is longer than %d bytes (an unterminated quote?)",
             CSV_ERR_FILE, CSV_FIELD_MAX);
    cr_expect_str_eq(got, want);
    free(got);
    /* exactly at the limit is fine (a field error, not a file error) */
    n = (size_t)snprintf(in, cap, H "\"");
    memset(in + n, 'z', CSV_FIELD_MAX);
    n += CSV_FIELD_MAX;
    memcpy(in + n, "\",c,m," T ",1\n", 6 + sizeof T - 1 + 3);
    n += 6 + sizeof T - 1 + 3;
    got = run_cuts(in, n, NULL, 0);
    cr_expect(strstr(got, "rc=0 rows=1"), "%.200s", got);
    free(got);
    free(in);
}

static int stop_second(void *arg, const csv_row *row) {
    int *seen = arg;
    (*seen)++;
    return row->index == 2;
}

Test(csv_rows, the_callback_can_stop_the_reader) {
    int seen = 0;
    csv_reader *r = csv_reader_new(stop_second, &seen);
    const char *in = H "a,c,m," T ",1\nb,c,m," T ",1\nc,c,m," T ",1\n";
    cr_expect_eq(csv_reader_feed(r, in, strlen(in)), CSV_ERR_STOPPED);
    cr_expect_eq(seen, 2);
    cr_expect_eq(csv_reader_feed(r, "x", 1), CSV_ERR_STOPPED, "sticky");
    csv_reader_free(r);
    csv_reader_free(NULL);
}

/* ---- csv_row_event ---- */

typedef struct ev_case {
    const char *header;
    const char *line;
    const char *err; /* NULL = valid */
    const char *qty, *at;
} ev_case;

typedef struct ev_sink {
    csv_reader *r;
    const ev_case *c;
    int n;
} ev_sink;

#define NOW_US 1800000000000000LL /* 2027-01-15 */

static int check_event(void *arg, const csv_row *row) {
    ev_sink *s = arg;
    csv_event ev;
    char msg[256];
    int rc = csv_row_event(s->r, row, NOW_US, &ev, msg, sizeof msg);
    s->n++;
    if (s->c->err) {
        cr_expect_eq(rc, -1, "%s", s->c->line);
        cr_expect_str_eq(msg, s->c->err, "%s", s->c->line);
    } else {
        cr_expect_eq(rc, 0, "%s: %s", s->c->line, msg);
        if (rc == 0) {
            cr_expect_str_eq(ev.quantity, s->c->qty, "%s", s->c->line);
            cr_expect_str_eq(ev.occurred_at, s->c->at, "%s", s->c->line);
            cr_expect_eq(ev.event_id_len, strlen(ev.event_id));
            cr_expect_str_eq(ev.customer, "c1");
        }
    }
    return 0;
}

Test(csv_event, usage_event_rules_per_row) {
    static const ev_case cases[] = {
        {H, "e1,c1,m1," T ",12.50", NULL, "12.5", T},
        {H, "e1,c1,m1," T ",", NULL, "1", T},
        {H, "e1,c1,m1,2026-10-01T02:00:00.5+02:00,007", NULL, "7", "2026-10-01T00:00:00.500Z"},
        {"event_id,customer_id,metric,timestamp\n", "e1,c1,m1," T, NULL, "1", T},
        {H, "e1,c1,m1," T ",-1", "quantity must be zero or more", NULL, NULL},
        {H, "e1,c1,m1," T ",1e3", "quantity must be a plain decimal (no exponent)", NULL, NULL},
        {H, "e1,c1,m1," T ",0.0000000000001", "quantity must have at most 12 decimal places", NULL,
         NULL},
        {H, ",c1,m1," T ",1", "event_id must not be empty", NULL, NULL},
        {H, "\"e\te\",c1,m1," T ",1", "event_id must not contain control characters", NULL, NULL},
        {H, "e1,,m1," T ",1", "customer_id must not be empty", NULL, NULL},
        {H, "e1,c1,," T ",1", "event_type must not be empty", NULL, NULL},
        {"event_id,customer_id,metric,timestamp\n", "e1,c1,,", "metric must not be empty", NULL,
         NULL},
        {H, "e1,c1,m1,,1", "event_date must not be empty", NULL, NULL},
        {H, "e1,c1,m1,2026-10-01,1",
         "event_date must be an RFC 3339 time with an offset, e.g. 2026-10-03T09:15:00Z", NULL,
         NULL},
        {"event_id,customer_id,metric,timestamp,quantity\n", "e1,c1,m1,1999-12-31T23:59:59Z,1",
         "timestamp must not be before 2000-01-01", NULL, NULL},
        {H, "e1,c1,m1,2030-01-01T00:00:00Z,1",
         "event_date must not be more than 5 minutes in the future", NULL, NULL},
        {H, "e1,c1,m1," T, "expected 5 fields, found 4", NULL, NULL},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(cases); i++) {
        ev_sink s = {.c = &cases[i]};
        s.r = csv_reader_new(check_event, &s);
        cr_assert(s.r);
        char in[512];
        int n = snprintf(in, sizeof in, "%s%s\n", cases[i].header, cases[i].line);
        cr_assert_eq(csv_reader_feed(s.r, in, (size_t)n), CSV_OK);
        cr_assert_eq(csv_reader_finish(s.r), CSV_OK);
        cr_expect_eq(s.n, 1, "case %zu", i);
        csv_reader_free(s.r);
    }
}

Test(csv_misc, quote_cuts_at_a_character_boundary) {
    char out[128];
    csv_quote(out, sizeof out, "site-1", 6);
    cr_expect_str_eq(out, "\"site-1\"");
    char s[100];
    memset(s, 'a', 63);
    memcpy(s + 63, "\xC3\xA9", 2); /* é across byte 64 */
    memset(s + 65, 'b', 10);
    csv_quote(out, sizeof out, s, 75);
    cr_expect_eq(strlen(out), 1 + 63 + 3 + 1, "%s", out);
    cr_expect_eq(jx_utf8_len(out, strlen(out)), 1 + 63 + 1 + 1, "still UTF-8");
    cr_expect_str_eq(out + 64, "\xE2\x80\xA6\"");
}
