/* test_usage_query.c — reading usage back through a real billing-api:
 * GET /v1/usage (pages, filters, the streamed CSV export) and
 * GET /v1/usage/aggregate (local-time buckets from the rollups).
 *
 * Each test signs up its own organization through the API (customers and
 * metrics by POST) and stores events with db_usage_insert, the real
 * exactly-once path.  Every aggregate is checked against an independent
 * computation here: exact integers scaled by 10^6 (quantities have at most
 * six decimals), buckets from libc's time-zone code (TZ + localtime_r /
 * mktime, not PostgreSQL's), compared bucket by bucket — hour, day and month,
 * in UTC, America/New_York across both DST changes (25- and 23-hour days),
 * Asia/Kolkata (+05:30) and Asia/Kathmandu (+05:45), for sum, count, max and
 * unique_count, with group_by and fill=zero.  One customer by the hour (the
 * binary fast path) is also checked on edge decimals stored straight into
 * the rollup (0, 10^-12, 12 decimals, 38 digits, negative maxima, the
 * largest bigint), against literal expectations and against the text path.
 *
 * The CSV export of 200,000 rows must stream: the server's peak RSS (VmHWM)
 * may grow by less than 40 MB (the server runs with a small ASan quarantine
 * so that freed memory counts as free); a client that hangs up mid-file
 * leaves a healthy server, and a database failure after the headers went out
 * makes the transfer fail instead of ending like a complete file.
 */
#include "fmacros.h"
#include "th.h"
#include "ts.h"
#include "usage.h"
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NC     3
#define NM     4
#define NUSERS 20
#define SCALE  1000000LL

enum { G_HOUR, G_DAY, G_MONTH };
static const char *const k_gran[] = {"hour", "day", "month"};
static const char *const k_cust[NC] = {"acme", "b,co\"x", "c3"};
static const char *const k_met[NM] = {"m_sum", "m_cnt", "m_max", "m_uniq"};
static const char *const k_agg[NM] = {"sum", "count", "max", "unique_count"};

static th_server *srv;
static const char *const k_env[] = {
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=4", NULL};
static void setup(void) { srv = th_start(k_env); }
static void teardown(void) {
    cr_expect_eq(th_stop(srv), 0, "billing-api must exit 0 (ASan clean)");
}

TestSuite(usage_query, .init = setup, .fini = teardown, .timeout = 280);

/* ---- the organization --------------------------------------------------- */

typedef struct world {
    char tok[128], slug[64];
    long long org, cust[NC], met[NM];
} world;

static long long one_id(PGconn *pg, const char *sql, const char *a, const char *b) {
    const char *p[2] = {a, b};
    PGresult *r = PQexecParams(pg, sql, b ? 2 : 1, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(pg));
    cr_assert_eq(PQntuples(r), 1, "%s", sql);
    long long id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return id;
}

static void post_ok(const world *w, const char *path, const char *body) {
    th_resp r = th_auth(srv, w->tok, "POST", path, body);
    cr_assert_eq(r.status, 201, "POST %s: %ld %s", path, r.status, r.body);
    th_resp_free(&r);
}

static void make_world(world *w) {
    th_signup(srv, w->tok, w->slug, NULL);
    char body[256];
    for (int i = 0; i < NC; i++) {
        json_t *o = json_pack("{s:s, s:s}", "external_id", k_cust[i], "name", "C");
        char *s = json_dumps(o, JSON_COMPACT);
        post_ok(w, "/v1/customers", s);
        free(s);
        json_decref(o);
    }
    for (int i = 0; i < NM; i++) {
        snprintf(body, sizeof body, "{\"code\":\"%s\",\"name\":\"M\",\"aggregation\":\"%s\"%s}",
                 k_met[i], k_agg[i],
                 !strcmp(k_agg[i], "unique_count") ? ",\"unique_property\":\"user\"" : "");
        post_ok(w, "/v1/metrics", body);
    }
    PGconn *pg = th_pg();
    w->org = one_id(pg, "SELECT id FROM organizations WHERE slug = $1", w->slug, NULL);
    char org[24];
    snprintf(org, sizeof org, "%lld", w->org);
    for (int i = 0; i < NC; i++)
        w->cust[i] = one_id(pg, "SELECT id FROM customers WHERE org_id = $1 AND external_id = $2",
                            org, k_cust[i]);
    for (int i = 0; i < NM; i++)
        w->met[i] =
            one_id(pg, "SELECT id FROM metrics WHERE org_id = $1 AND code = $2", org, k_met[i]);
    PQfinish(pg);
}

/* ---- events --------------------------------------------------------------- */

typedef struct ev {
    char id[40], qty[32], at[TS_FMT_MAX], props[48];
    int c, m, user; /* user -1: no "user" property */
    int64_t us, q;  /* q: quantity × 10^6 */
} ev;

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int64_t at_us(const char *rfc3339) {
    int64_t us;
    cr_assert_eq(ts_parse(rfc3339, strlen(rfc3339), &us), 0, "%s", rfc3339);
    return us;
}

/* Two windows: around New York's fall-back (2026-11-01) and spring-forward
 * (2027-03-14). */
static const char *const k_win[][2] = {
    {"2026-10-28T00:00:00Z", "2026-11-05T00:00:00Z"},
    {"2027-03-11T00:00:00Z", "2027-03-17T00:00:00Z"},
};

static ev *gen(int n, const char *prefix, uint64_t seed) {
    ev *v = calloc((size_t)n, sizeof *v);
    cr_assert(v);
    for (int i = 0; i < n; i++) {
        ev *x = &v[i];
        snprintf(x->id, sizeof x->id, "%s-%d", prefix, i);
        x->c = (int)(rnd(&seed) % NC);
        x->m = (int)(rnd(&seed) % NM);
        int w = (int)(rnd(&seed) % 2);
        int64_t a = at_us(k_win[w][0]), b = at_us(k_win[w][1]);
        x->us = a + (int64_t)(rnd(&seed) % (uint64_t)(b - a));
        if (i % 7 == 0) x->us -= x->us % 1000000; /* whole seconds too */
        ts_format(x->us, x->at, sizeof x->at);
        long long ip = (long long)(rnd(&seed) % 1000), fp = (long long)(rnd(&seed) % 1000000);
        x->q = ip * SCALE + fp;
        snprintf(x->qty, sizeof x->qty, "%lld.%06lld", ip, fp);
        x->user = i % 11 == 0 ? -1 : (int)(rnd(&seed) % NUSERS);
        if (x->user >= 0)
            snprintf(x->props, sizeof x->props, "{\"user\":\"u%d\",\"n\":1.10}", x->user);
        else
            snprintf(x->props, sizeof x->props, "{\"other\":true}");
    }
    return v;
}

static void insert(const world *w, const ev *v, int n) {
    db *d = db_open(getenv("BILLING_DATABASE_URL"));
    cr_assert(d && db_ok(d));
    enum { BATCH = 20000 };
    db_usage_row *rows = calloc(BATCH, sizeof *rows);
    cr_assert(rows);
    for (int off = 0; off < n; off += BATCH) {
        int k = n - off < BATCH ? n - off : BATCH;
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (int i = 0; i < k; i++) {
            const ev *x = &v[off + i];
            rows[i] =
                (db_usage_row){w->org, w->cust[x->c], w->met[x->m], x->id, x->qty, x->at, x->props};
            if (x->us < lo) lo = x->us;
            if (x->us > hi) hi = x->us;
        }
        char a[TS_FMT_MAX], b[TS_FMT_MAX];
        ts_format(lo, a, sizeof a);
        ts_format(hi, b, sizeof b);
        db_err e;
        db_usage_result res;
        cr_assert_eq(db_usage_insert(d, &e, rows, (size_t)k, a, b, &res), 0, "%s", e.msg);
        cr_assert_eq(res.inserted, k);
    }
    free(rows);
    db_close(d);
}

/* ---- the independent computation --------------------------------------- */

/* Buckets of [from, to) in tz with libc: starts in seconds. */
static int c_buckets(const char *tz, int g, int64_t from, int64_t to, int64_t *st, int cap) {
    setenv("TZ", tz, 1);
    tzset();
    int n = 0;
    for (time_t t = (time_t)from; t < to;) {
        cr_assert_lt(n, cap);
        st[n++] = t;
        if (g == G_HOUR) {
            t += 3600;
            continue;
        }
        struct tm lt;
        localtime_r(&t, &lt);
        struct tm m = {0};
        m.tm_year = lt.tm_year;
        m.tm_mon = g == G_MONTH ? lt.tm_mon + 1 : lt.tm_mon;
        m.tm_mday = g == G_MONTH ? 1 : lt.tm_mday + 1;
        m.tm_isdst = -1;
        t = mktime(&m);
    }
    return n;
}

static int find_bucket(const int64_t *st, int nb, int64_t t) {
    int lo = 0, hi = nb - 1, ans = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (st[mid] <= t) {
            ans = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return ans;
}

/* "123.45" → 123450000 (×10^6); canonical: no trailing fractional zeros. */
static int64_t scaled(const char *s) {
    char *end;
    long long ip = strtoll(s, &end, 10);
    int64_t v = ip * SCALE;
    if (*end == '.') {
        const char *f = end + 1;
        size_t n = strlen(f);
        cr_assert(n >= 1 && n <= 6 && f[n - 1] != '0', "quantity %s is not canonical", s);
        int64_t frac = strtoll(f, NULL, 10);
        for (size_t i = n; i < 6; i++) frac *= 10;
        v += frac;
    } else {
        cr_assert_eq(*end, '\0', "quantity %s", s);
    }
    return v;
}

typedef struct acc {
    int64_t sum, max;
    long long n;
    uint32_t users;
} acc;

typedef struct aq {
    const char *tz;
    int g;
    const char *from, *to;
    int cust, met; /* index or -1 */
    bool by_cust, fill;
} aq;

static aq mkq(const char *tz, int g, const char *from, const char *to, int cust, int met,
              bool by_cust, bool fill) {
    return (aq){tz, g, from, to, cust, met, by_cust, fill};
}

/* the same in a static slot, for check_agg's pointer */
static const aq *mkqp(const char *tz, int g, const char *from, const char *to, int cust, int met,
                      bool by_cust, bool fill) {
    static aq q;
    q = mkq(tz, g, from, to, cust, met, by_cust, fill);
    return &q;
}

/* A string member, or NULL when absent (th_str gives ""). */
static const char *opt(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static int popcount(uint32_t x) { return __builtin_popcount(x); }

/* GET /v1/usage/aggregate for q, checked against v[0..n). Returns the reply
 * (caller frees) for extra checks. */
static th_resp check_agg(const world *w, const ev *v, int n, const aq *q) {
    char url[512];
    snprintf(url, sizeof url, "/v1/usage/aggregate?from=%s&to=%s&granularity=%s&tz=%s%s%s%s%s%s",
             q->from, q->to, k_gran[q->g], q->tz, q->cust >= 0 ? "&customer_id=" : "",
             q->cust >= 0 ? k_cust[q->cust] : "", q->met >= 0 ? "&metric=" : "",
             q->met >= 0 ? k_met[q->met] : "", q->by_cust ? "&group_by=customer" : "");
    if (q->fill) strncat(url, "&fill=zero", sizeof url - strlen(url) - 1);
    th_resp r = th_auth(srv, w->tok, "GET", url, NULL);
    cr_assert_eq(r.status, 200, "%s: %ld %s", url, r.status, r.body);
    int64_t from = at_us(q->from) / 1000000, to = at_us(q->to) / 1000000;
    static int64_t st[12000];
    int nb = c_buckets(q->tz, q->g, from, to, st, 12000);
    bool by_met = q->met < 0;
    int ncg = q->by_cust ? NC : 1, nmg = by_met ? NM : 1;
    acc *e = calloc((size_t)(ncg * nmg * nb), sizeof *e);
    cr_assert(e);
#define E(c, m, b) e[((c)*nmg + (m)) * nb + (b)]
    for (int i = 0; i < n; i++) {
        const ev *x = &v[i];
        int64_t t = x->us / 1000000;
        if (x->us < from * 1000000 || x->us >= to * 1000000) continue;
        if ((q->cust >= 0 && x->c != q->cust) || (q->met >= 0 && x->m != q->met)) continue;
        int b = find_bucket(st, nb, t);
        cr_assert(b >= 0);
        acc *a = &E(q->by_cust ? x->c : 0, by_met ? x->m : 0, b);
        a->sum += x->q;
        if (x->q > a->max) a->max = x->q;
        a->n++;
        if (x->user >= 0) a->users |= 1u << x->user;
    }
    json_t *data = json_object_get(r.json, "data");
    cr_assert(json_is_array(data), "%s", r.body);
    char *seen = calloc((size_t)(ncg * nmg * nb), 1);
    cr_assert(seen);
    size_t idx;
    json_t *row;
    json_array_foreach(data, idx, row) {
        const char *bs = th_str(row, "bucket_start"), *be = th_str(row, "bucket_end");
        cr_assert(bs && be, "row %zu of %s", idx, url);
        int64_t s = at_us(bs) / 1000000, en = at_us(be) / 1000000;
        int b = find_bucket(st, nb, s);
        cr_assert(b >= 0 && st[b] == s, "%s: %s is not a bucket start in %s", url, bs, q->tz);
        cr_assert_eq(en, b + 1 < nb ? st[b + 1] : to, "%s: bucket_end of %s", url, bs);
        int c = 0, m = 0;
        const char *cs = opt(row, "customer_id"), *ms = opt(row, "metric");
        cr_assert_eq(cs != NULL, q->by_cust, "%s: customer_id field", url);
        cr_assert_eq(ms != NULL, by_met, "%s: metric field", url);
        cr_assert_null(json_object_get(row, "org"));
        if (cs)
            for (c = 0; c < NC && strcmp(k_cust[c], cs); c++) {
            }
        if (ms)
            for (m = 0; m < NM && strcmp(k_met[m], ms); m++) {
            }
        cr_assert(c < NC && m < NM);
        cr_assert(!seen[(c * nmg + m) * nb + b], "%s: bucket %s twice", url, bs);
        seen[(c * nmg + m) * nb + b] = 1;
        const acc *a = &E(c, m, b);
        int agg = by_met ? m : q->met;
        int64_t want = !strcmp(k_agg[agg], "sum")     ? a->sum
                       : !strcmp(k_agg[agg], "count") ? a->n * SCALE
                       : !strcmp(k_agg[agg], "max")   ? a->max
                                                      : popcount(a->users) * SCALE;
        cr_expect_eq(scaled(th_str(row, "quantity")), want, "%s: %s %s %s quantity %s, want %lld",
                     url, bs, cs ? cs : "", ms ? ms : "", th_str(row, "quantity"), (long long)want);
        cr_expect_eq(json_integer_value(json_object_get(row, "events")), a->n, "%s: %s events", url,
                     bs);
        if (!q->fill) cr_expect_gt(a->n, 0, "%s: empty bucket %s without fill", url, bs);
    }
    /* every non-empty bucket was answered; with fill every bucket of every
     * group that has events (or of the single series) */
    for (int c = 0; c < ncg; c++)
        for (int m = 0; m < nmg; m++) {
            bool any = false;
            for (int b = 0; b < nb; b++) any |= E(c, m, b).n > 0;
            bool single = !q->by_cust && !by_met;
            for (int b = 0; b < nb; b++) {
                bool must = E(c, m, b).n > 0 || (q->fill && (any || single));
                cr_expect_eq(seen[(c * nmg + m) * nb + b], must, "%s: group %d/%d bucket %d %s",
                             url, c, m, b, must ? "missing" : "unexpected");
            }
        }
#undef E
    free(seen);
    free(e);
    return r;
}

static void agg(const world *w, const ev *v, int n, aq q) {
    th_resp r = check_agg(w, v, n, &q);
    th_resp_free(&r);
}

#define NEV 4000

/* ---- aggregates ----------------------------------------------------------- */

Test(usage_query, aggregate_utc_hour_day_month_every_aggregation) {
    world w;
    make_world(&w);
    ev *v = gen(NEV, "a", 0x9e3779b97f4a7c15ULL);
    insert(&w, v, NEV);
    agg(&w, v, NEV,
        mkq("UTC", G_HOUR, "2026-10-28T00:00:00Z", "2026-11-05T00:00:00Z", -1, -1, false, false));
    agg(&w, v, NEV,
        mkq("UTC", G_DAY, "2026-10-28T00:00:00Z", "2026-11-05T00:00:00Z", -1, -1, false, false));
    agg(&w, v, NEV,
        mkq("UTC", G_MONTH, "2026-10-01T00:00:00Z", "2027-04-01T00:00:00Z", -1, -1, false, false));
    for (int m = 0; m < NM; m++) /* one metric: a single series */
        agg(&w, v, NEV,
            mkq("UTC", G_HOUR, "2026-10-30T00:00:00Z", "2026-11-02T00:00:00Z", -1, m, false,
                false));
    free(v);
}

Test(usage_query, aggregate_new_york_across_dst) {
    world w;
    make_world(&w);
    ev *v = gen(NEV, "ny", 12345);
    insert(&w, v, NEV);
    const char *tz = "America/New_York";
    /* local midnights: EDT (-4) before 2026-11-01, EST (-5) after */
    th_resp r = check_agg(
        &w, v, NEV,
        mkqp(tz, G_DAY, "2026-10-29T04:00:00Z", "2026-11-04T05:00:00Z", -1, 0, false, true));
    json_t *data = json_object_get(r.json, "data");
    bool saw25 = false;
    size_t i;
    json_t *row;
    json_array_foreach(data, i, row) {
        int64_t d = at_us(th_str(row, "bucket_end")) - at_us(th_str(row, "bucket_start"));
        if (!strcmp(th_str(row, "bucket_start"), "2026-11-01T04:00:00Z")) {
            cr_expect_eq(d, 25LL * 3600 * 1000000, "2026-11-01 in New York lasts 25 hours");
            saw25 = true;
        } else {
            cr_expect_eq(d, 24LL * 3600 * 1000000);
        }
    }
    cr_expect(saw25);
    th_resp_free(&r);
    r = check_agg(
        &w, v, NEV,
        mkqp(tz, G_DAY, "2027-03-12T05:00:00Z", "2027-03-16T04:00:00Z", -1, 0, false, true));
    bool saw23 = false;
    json_array_foreach(json_object_get(r.json, "data"), i, row) {
        if (!strcmp(th_str(row, "bucket_start"), "2027-03-14T05:00:00Z")) {
            cr_expect_eq(at_us(th_str(row, "bucket_end")), at_us("2027-03-15T04:00:00Z"),
                         "2027-03-14 in New York lasts 23 hours");
            saw23 = true;
        }
    }
    cr_expect(saw23);
    th_resp_free(&r);
    /* hours of the 25-hour day: 01:00 local twice, so 25 buckets */
    r = check_agg(
        &w, v, NEV,
        mkqp(tz, G_HOUR, "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", -1, 0, false, true));
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 25);
    th_resp_free(&r);
    r = check_agg(
        &w, v, NEV,
        mkqp(tz, G_HOUR, "2027-03-14T05:00:00Z", "2027-03-15T04:00:00Z", -1, 0, false, true));
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 23);
    th_resp_free(&r);
    /* every metric, grouped by customer too; months across both changes */
    agg(&w, v, NEV,
        mkq(tz, G_HOUR, "2026-10-28T04:00:00Z", "2026-11-05T05:00:00Z", -1, -1, true, false));
    agg(&w, v, NEV,
        mkq(tz, G_DAY, "2027-03-11T05:00:00Z", "2027-03-17T04:00:00Z", -1, -1, false, false));
    agg(&w, v, NEV,
        mkq(tz, G_MONTH, "2026-10-01T04:00:00Z", "2027-04-01T04:00:00Z", -1, -1, true, false));
    free(v);
}

Test(usage_query, aggregate_kolkata_and_kathmandu) {
    world w;
    make_world(&w);
    ev *v = gen(NEV, "in", 777);
    insert(&w, v, NEV);
    /* +05:30: local hours start at :30 UTC, days at 18:30 UTC */
    agg(&w, v, NEV,
        mkq("Asia/Kolkata", G_HOUR, "2026-10-28T18:30:00Z", "2026-11-04T18:30:00Z", -1, -1, false,
            false));
    agg(&w, v, NEV,
        mkq("Asia/Kolkata", G_DAY, "2026-10-27T18:30:00Z", "2026-11-04T18:30:00Z", -1, -1, true,
            false));
    agg(&w, v, NEV,
        mkq("Asia/Kolkata", G_DAY, "2026-10-27T18:30:00Z", "2026-11-04T18:30:00Z", 1, 3, false,
            true));
    /* +05:45 */
    agg(&w, v, NEV,
        mkq("Asia/Kathmandu", G_HOUR, "2026-10-28T00:15:00Z", "2026-11-04T18:15:00Z", -1, -1, true,
            false));
    agg(&w, v, NEV,
        mkq("Asia/Kathmandu", G_DAY, "2026-10-27T18:15:00Z", "2026-11-04T18:15:00Z", -1, -1, false,
            false));
    agg(&w, v, NEV,
        mkq("Asia/Kathmandu", G_MONTH, "2026-09-30T18:15:00Z", "2027-03-31T18:15:00Z", -1, -1,
            false, false));
    free(v);
}

Test(usage_query, aggregate_group_by_filters_and_fill) {
    world w;
    make_world(&w);
    ev *v = gen(NEV, "g", 4242);
    insert(&w, v, NEV);
    const char *f = "2026-10-31T00:00:00Z", *t = "2026-11-03T00:00:00Z";
    for (int m = 0; m < NM; m++) {
        agg(&w, v, NEV, mkq("UTC", G_HOUR, f, t, 0, m, false, true)); /* single series, filled */
        agg(&w, v, NEV, mkq("UTC", G_HOUR, f, t, -1, m, true, true)); /* per customer, filled */
        agg(&w, v, NEV, mkq("UTC", G_DAY, f, t, 2, m, true, false));
        /* one customer by the hour is answered from its rollup rows alone
         * (k_agg_sql_cust): named by customer, unfilled */
        agg(&w, v, NEV, mkq("UTC", G_HOUR, f, t, 2, m, true, false));
    }
    agg(&w, v, NEV, mkq("UTC", G_HOUR, f, t, 1, -1, true, true));
    /* group_by=customer,metric with a metric filter still names the metric */
    th_resp r = th_auth(srv, w.tok, "GET",
                        "/v1/usage/aggregate?from=2026-10-31T00:00:00Z&to=2026-11-01T00:00:00Z"
                        "&granularity=day&metric=m_sum&group_by=customer,metric",
                        NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *row0 = json_array_get(json_object_get(r.json, "data"), 0);
    cr_expect_str_eq(th_str(row0, "metric"), "m_sum");
    cr_expect(opt(row0, "customer_id") != NULL);
    th_resp_free(&r);
    /* a single series with no events at all, filled: every bucket is "0" */
    r = th_auth(srv, w.tok, "GET",
                "/v1/usage/aggregate?from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z"
                "&granularity=hour&metric=m_sum&fill=zero",
                NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 24);
    cr_expect_str_eq(th_str(json_array_get(json_object_get(r.json, "data"), 5), "quantity"), "0");
    th_resp_free(&r);
    free(v);
}

/* ---- one customer by the hour: binary rollup values ------------------------
 * k_agg_sql_cust reads the rollup in PostgreSQL's binary format and writes
 * the decimals itself (base-10000 digits → text, trailing zeros dropped).
 * Edge values, stored straight into usage_rollup_hour, must come out as
 * trim_scale(v)::text would print them; and the whole answer must equal
 * the one the text path (k_agg_sql_rows: every customer, trim_scale in SQL)
 * gives for the same customer.  The organization has no unique_count metric
 * (else the fast path does not apply), and its metric codes sort in another
 * order than their ids (series come in code order). */

typedef struct edge {
    const char *in, *out;
} edge;

/* sum metric: quantity (numeric(38,12), >= 0) */
static const edge k_sum_edges[] = {
    {"0", "0"},
    {"0.000000000000", "0"},
    {"0.000000000001", "0.000000000001"},
    {"0.00001", "0.00001"},
    {"0.0001", "0.0001"},
    {"0.1", "0.1"},
    {"1.10", "1.1"},
    {"5.000000000000", "5"},
    {"12.345678901234", "12.345678901234"},
    {"9999.9999", "9999.9999"},
    {"10000", "10000"},
    {"10000.0001", "10000.0001"},
    {"100.000100010001", "100.000100010001"},
    {"100000000", "100000000"},
    {"123456789.000000000001", "123456789.000000000001"},
    {"1000000000000.5", "1000000000000.5"},
    {"20000000000000000000000000", "20000000000000000000000000"},
    {"99999999999999999999999999.999999999999", "99999999999999999999999999.999999999999"},
};

/* max metric: max_quantity (may be negative) */
static const edge k_max_edges[] = {
    {"-5.5", "-5.5"},
    {"-0.000000000001", "-0.000000000001"},
    {"-10000", "-10000"},
    {"0", "0"},
    {"7.250", "7.25"},
    {"-99999999999999999999999999.999999999999", "-99999999999999999999999999.999999999999"},
};

static th_resp agg_get(const char *tok, const char *query) {
    char url[512];
    snprintf(url, sizeof url, "/v1/usage/aggregate?%s", query);
    th_resp r = th_auth(srv, tok, "GET", url, NULL);
    cr_assert_eq(r.status, 200, "%s: %ld %s", url, r.status, r.body);
    return r;
}

/* The rows of data whose customer_id is cust (all when cust is NULL). */
static json_t *rows_of(const th_resp *r, const char *cust) {
    json_t *out = json_array(), *row;
    cr_assert(out);
    size_t i;
    json_array_foreach(json_object_get(r->json, "data"), i, row) {
        if (!cust || !strcmp(th_str(row, "customer_id"), cust))
            cr_assert_eq(json_array_append(out, row), 0);
    }
    return out;
}

Test(usage_query, aggregate_one_customer_binary_values_are_exact) {
    char tok[128], slug[64];
    th_signup(srv, tok, slug, NULL);
    static const char *const custs[] = {"b,co\"x", "plain"};
    for (size_t i = 0; i < ML_ARRAY_LEN(custs); i++) {
        json_t *o = json_pack("{s:s, s:s}", "external_id", custs[i], "name", "C");
        char *s = json_dumps(o, JSON_COMPACT);
        th_resp r = th_auth(srv, tok, "POST", "/v1/customers", s);
        cr_assert_eq(r.status, 201, "%s", r.body);
        th_resp_free(&r);
        free(s);
        json_decref(o);
    }
    /* created in this order (ids ascending), answered in code order */
    static const char *const codes[] = {"z_sum", "a_cnt", "m_max", "k_sum"};
    static const char *const aggs[] = {"sum", "count", "max", "sum"};
    for (size_t i = 0; i < ML_ARRAY_LEN(codes); i++) {
        char body[160];
        snprintf(body, sizeof body, "{\"code\":\"%s\",\"name\":\"M\",\"aggregation\":\"%s\"}",
                 codes[i], aggs[i]);
        th_resp r = th_auth(srv, tok, "POST", "/v1/metrics", body);
        cr_assert_eq(r.status, 201, "%s", r.body);
        th_resp_free(&r);
    }
    PGconn *pg = th_pg();
    /* $1 slug, $2 customer, $3 metric code, $4 hour of 2026-10-05, $5
     * quantity, $6 events, $7 max_quantity */
    static const char ins[] =
        "INSERT INTO usage_rollup_hour (org_id, customer_id, metric_id, bucket, quantity, events,"
        "                               max_quantity)"
        "SELECT o.id, c.id, m.id, timestamptz '2026-10-05T00:00:00Z' + $4::int * interval '1 hour',"
        "       $5::numeric, $6::bigint, $7::numeric"
        "  FROM organizations o JOIN customers c ON c.org_id = o.id AND c.external_id = $2"
        "  JOIN metrics m ON m.org_id = o.id AND m.code = $3 WHERE o.slug = $1";
    char h[8], nev[24];
    for (size_t i = 0; i < ML_ARRAY_LEN(k_sum_edges); i++) {
        snprintf(h, sizeof h, "%zu", i);
        snprintf(nev, sizeof nev, "%zu", i + 1);
        PQclear(TH_Q(pg, ins, slug, custs[0], "z_sum", h, k_sum_edges[i].in, nev, "1"));
        /* the other sum metric in every other hour (gaps for fill) */
        if (i % 2) PQclear(TH_Q(pg, ins, slug, custs[0], "k_sum", h, k_sum_edges[i].in, nev, "1"));
        PQclear(TH_Q(pg, ins, slug, custs[1], "z_sum", h, "3", "1", "3"));
    }
    for (size_t i = 0; i < ML_ARRAY_LEN(k_max_edges); i++) {
        snprintf(h, sizeof h, "%zu", i + 3);
        PQclear(TH_Q(pg, ins, slug, custs[0], "m_max", h, "0", "2", k_max_edges[i].in));
    }
    /* counts: events, up to the largest bigint */
    PQclear(TH_Q(pg, ins, slug, custs[0], "a_cnt", "0", "1", "1", "1"));
    PQclear(TH_Q(pg, ins, slug, custs[0], "a_cnt", "23", "5", "9223372036854775807", "5"));
    PQfinish(pg);

    static const char day[] = "from=2026-10-05T00:00:00Z&to=2026-10-06T00:00:00Z&granularity=hour";
    char q[256];
    /* (1) the values, as PostgreSQL prints them */
    snprintf(q, sizeof q, "%s&customer_id=b%%2Cco%%22x&metric=z_sum", day);
    th_resp r = agg_get(tok, q);
    json_t *data = json_object_get(r.json, "data");
    cr_assert_eq(json_array_size(data), ML_ARRAY_LEN(k_sum_edges), "%s", r.body);
    for (size_t i = 0; i < ML_ARRAY_LEN(k_sum_edges); i++) {
        json_t *row = json_array_get(data, i);
        cr_expect_str_eq(th_str(row, "quantity"), k_sum_edges[i].out, "sum of %s",
                         k_sum_edges[i].in);
        cr_expect_eq(json_integer_value(json_object_get(row, "events")), (json_int_t)i + 1);
        cr_expect_null(json_object_get(row, "metric"), "one metric, not grouped by metric");
    }
    th_resp_free(&r);
    snprintf(q, sizeof q, "%s&customer_id=b%%2Cco%%22x&metric=m_max", day);
    r = agg_get(tok, q);
    data = json_object_get(r.json, "data");
    cr_assert_eq(json_array_size(data), ML_ARRAY_LEN(k_max_edges), "%s", r.body);
    for (size_t i = 0; i < ML_ARRAY_LEN(k_max_edges); i++)
        cr_expect_str_eq(th_str(json_array_get(data, i), "quantity"), k_max_edges[i].out,
                         "max of %s", k_max_edges[i].in);
    th_resp_free(&r);
    snprintf(q, sizeof q, "%s&customer_id=b%%2Cco%%22x&metric=a_cnt&fill=zero", day);
    r = agg_get(tok, q);
    data = json_object_get(r.json, "data");
    cr_assert_eq(json_array_size(data), 24, "%s", r.body);
    cr_expect_str_eq(th_str(json_array_get(data, 0), "quantity"), "1");
    cr_expect_str_eq(th_str(json_array_get(data, 1), "quantity"), "0");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(data, 1), "events")), 0);
    cr_expect_str_eq(th_str(json_array_get(data, 23), "quantity"), "9223372036854775807");
    th_resp_free(&r);

    /* (2) every metric, with and without fill: the same rows as the text
     * path's answer for every customer, series in code order */
    static const char *const fills[] = {"", "&fill=zero"};
    for (size_t f = 0; f < ML_ARRAY_LEN(fills); f++) {
        snprintf(q, sizeof q, "%s&customer_id=b%%2Cco%%22x&group_by=customer,metric%s", day,
                 fills[f]);
        th_resp one = agg_get(tok, q);
        snprintf(q, sizeof q, "%s&group_by=customer,metric%s", day, fills[f]);
        th_resp all = agg_get(tok, q);
        json_t *a = rows_of(&one, NULL), *b = rows_of(&all, custs[0]);
        cr_expect(json_array_size(a) > 0);
        cr_expect(json_equal(a, b), "one customer:\n%s\nevery customer:\n%s", one.body, all.body);
        const char *prev = "";
        size_t i;
        json_t *row;
        json_array_foreach(a, i, row) {
            const char *m = th_str(row, "metric");
            cr_expect(strcmp(prev, m) <= 0, "series %s after %s", m, prev);
            prev = m;
        }
        if (f == 1) /* four series of 24 hours */
            cr_expect_eq(json_array_size(a), 4 * 24);
        json_decref(a);
        json_decref(b);
        th_resp_free(&one);
        th_resp_free(&all);
    }
    /* (3) a customer with no rows: nothing, or 24 zero buckets as a single
     * series */
    snprintf(q, sizeof q, "%s&customer_id=plain&metric=m_max&fill=zero", day);
    r = agg_get(tok, q);
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 24, "%s", r.body);
    th_resp_free(&r);
    snprintf(q, sizeof q, "%s&customer_id=plain&metric=m_max&fill=zero&group_by=metric", day);
    r = agg_get(tok, q);
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 0, "%s", r.body);
    th_resp_free(&r);
}

Test(usage_query, aggregate_bucket_limit) {
    world w;
    make_world(&w);
    /* 10,000 hours from 2026-01-01T00Z ends 2027-02-21T16:00Z */
    th_resp r = th_auth(srv, w.tok, "GET",
                        "/v1/usage/aggregate?from=2026-01-01T00:00:00Z&to=2027-02-21T16:00:00Z"
                        "&granularity=hour&metric=m_sum&fill=zero",
                        NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 10000);
    th_resp_free(&r);
    r = th_auth(srv, w.tok, "GET",
                "/v1/usage/aggregate?from=2026-01-01T00:00:00Z&to=2027-02-21T17:00:00Z"
                "&granularity=hour&metric=m_sum",
                NULL);
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(th_has_field_error(&r, "to"), "%s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, w.tok, "GET",
                "/v1/usage/aggregate?from=1000-01-01T00:00:00Z&to=9000-01-01T00:00:00Z"
                "&granularity=month",
                NULL);
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(th_has_field_error(&r, "to"), "%s", r.body);
    th_resp_free(&r);
}

typedef struct bad {
    const char *path;
    long status;
    const char *field;
} bad;

Test(usage_query, every_bad_parameter_is_named) {
    world w;
    make_world(&w);
#define AG       "/v1/usage/aggregate?"
#define OK_RANGE "from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z"
    static const bad k_bad[] = {
        {AG "to=2026-10-02T00:00:00Z", 422, "from"},
        {AG "from=2026-10-01T00:00:00Z", 422, "to"},
        {AG "from=yesterday&to=2026-10-02T00:00:00Z", 400, "from"},
        {AG "from=2026-10-01T00:00:00Z&to=2026-13-02T00:00:00Z", 400, "to"},
        {AG "from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z", 422, "to"},
        {AG "from=2026-10-02T00:00:00Z&to=2026-10-02T00:00:00Z", 422, "to"},
        {AG OK_RANGE "&granularity=week", 400, "granularity"},
        {AG OK_RANGE "&group_by=plan", 400, "group_by"},
        {AG OK_RANGE "&group_by=customer,customer", 400, "group_by"},
        {AG OK_RANGE "&fill=previous", 400, "fill"},
        {AG OK_RANGE "&tz=Mars/Olympus_Mons", 422, "tz"},
        {AG OK_RANGE "&tz=", 400, "tz"},
        {AG OK_RANGE "&customer_id=nobody", 422, "customer_id"},
        {AG OK_RANGE "&metric=nothing", 422, "metric"},
        {AG OK_RANGE "&limit=5", 400, "limit"},
        {AG OK_RANGE "&granularity=day&granularity=hour", 400, "granularity"},
        /* not on a bucket boundary in the zone */
        {AG "from=2026-10-01T00:30:00Z&to=2026-10-02T00:00:00Z&granularity=hour", 422, "from"},
        {AG "from=2026-10-01T00:00:07Z&to=2026-10-02T00:00:00Z&granularity=hour", 422, "from"},
        {AG "from=2026-10-01T00:00:00Z&to=2026-10-02T01:00:00Z&granularity=day", 422, "to"},
        {AG OK_RANGE "&granularity=hour&tz=Asia/Kolkata", 422, "from"},
        {AG "from=2026-10-01T00:00:00Z&to=2026-11-15T00:00:00Z&granularity=month", 422, "to"},
        {"/v1/usage?from=soon", 400, "from"},
        {"/v1/usage?to=2026-10-02", 400, "to"},
        {"/v1/usage?from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z", 422, "to"},
        {"/v1/usage?limit=0", 400, "limit"},
        {"/v1/usage?limit=1001", 400, "limit"},
        {"/v1/usage?cursor=not-a-cursor", 400, "cursor"},
        {"/v1/usage?cursor=MTIz", 400, "cursor"}, /* "123": decodes, but is no key */
        {"/v1/usage?format=xml", 400, "format"},
        {"/v1/usage?customer_id=nobody", 422, "customer_id"},
        {"/v1/usage?metric=nothing", 422, "metric"},
        {"/v1/usage?granularity=hour", 400, "granularity"},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(k_bad); i++) {
        th_resp r = th_auth(srv, w.tok, "GET", k_bad[i].path, NULL);
        cr_expect_eq(r.status, k_bad[i].status, "%s: %ld %s", k_bad[i].path, r.status, r.body);
        cr_expect(th_has_field_error(&r, k_bad[i].field), "%s: no error for %s in %s",
                  k_bad[i].path, k_bad[i].field, r.body);
        th_resp_free(&r);
    }
}

/* ---- raw events ------------------------------------------------------------ */

Test(usage_query, pages_return_every_event_exactly_once) {
    world w;
    make_world(&w);
    enum { N = 600 };
    ev *v = gen(N, "p", 99);
    for (int i = 0; i < N; i += 5) { /* ties on occurred_at: the event id breaks them */
        for (int k = 1; k < 5 && i + k < N; k++) {
            v[i + k].us = v[i].us;
            memcpy(v[i + k].at, v[i].at, sizeof v[i].at);
        }
    }
    insert(&w, v, N);
    char *seen = calloc(N, 1);
    cr_assert(seen);
    char path[512];
    snprintf(path, sizeof path, "/v1/usage?limit=37");
    int pages = 0, rows = 0;
    int64_t last = INT64_MAX;
    ev *late = gen(50, "late", 5);
    for (;;) {
        th_resp r = th_auth(srv, w.tok, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "%s %s", path, r.body);
        json_t *data = json_object_get(r.json, "data");
        size_t i;
        json_t *row;
        json_array_foreach(data, i, row) {
            const char *id = th_str(row, "event_id");
            int64_t t = at_us(th_str(row, "timestamp"));
            cr_assert_leq(t, last, "newest first");
            last = t;
            if (!strncmp(id, "late-", 5)) continue; /* inserted meanwhile, older than the cursor */
            int k = atoi(id + 2);
            cr_assert(k >= 0 && k < N && !strcmp(id, v[k].id), "unknown event %s", id);
            cr_assert(!seen[k], "event %s twice", id);
            seen[k] = 1;
            rows++;
            cr_expect_str_eq(th_str(row, "customer_id"), k_cust[v[k].c]);
            cr_expect_str_eq(th_str(row, "metric"), k_met[v[k].m]);
            cr_expect_eq(scaled(th_str(row, "quantity")), v[k].q);
            cr_expect_str_eq(th_str(row, "timestamp"), v[k].at);
            cr_expect(json_is_object(json_object_get(row, "properties")));
            cr_expect(opt(row, "received_at") != NULL);
        }
        /* the exact text of numbers in properties survives */
        if (pages == 0) cr_expect(strstr(r.body, "1.10") != NULL, "%s", r.body);
        pages++;
        const char *next = opt(r.json, "next_cursor");
        if (pages == 3) insert(&w, late, 50); /* concurrent inserts between pages */
        if (!next) {
            th_resp_free(&r);
            break;
        }
        snprintf(path, sizeof path, "/v1/usage?limit=37&cursor=%s", next);
        th_resp_free(&r);
    }
    cr_expect_eq(rows, N, "every event once");
    cr_expect_geq(pages, (N + 36) / 37);
    /* filters: one customer and metric in a range */
    th_resp r = th_auth(srv, w.tok, "GET",
                        "/v1/usage?customer_id=acme&metric=m_max&from=2026-10-29T00:00:00Z"
                        "&to=2026-11-01T00:00:00Z&limit=1000",
                        NULL);
    cr_assert_eq(r.status, 200);
    int want = 0;
    for (int k = 0; k < N + 50; k++) {
        const ev *x = k < N ? &v[k] : &late[k - N];
        want += x->c == 0 && x->m == 2 && x->us >= at_us("2026-10-29T00:00:00Z") &&
                x->us < at_us("2026-11-01T00:00:00Z");
    }
    cr_expect_eq((int)json_array_size(json_object_get(r.json, "data")), want);
    th_resp_free(&r);
    free(late);
    free(seen);
    free(v);
}

/* ---- the CSV export -------------------------------------------------------- */

static long vm_hwm_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

typedef struct sink {
    size_t bytes, lines, stop_after;
    char head[4096];
    size_t head_len;
    char tail[2];
    bool terminate; /* kill the export's database session at the first byte */
    int terminated;
} sink;

static size_t on_csv(char *p, size_t sz, size_t nm, void *arg) {
    sink *s = arg;
    size_t n = sz * nm;
    for (size_t i = 0; i < n; i++) s->lines += p[i] == '\n';
    size_t room = sizeof s->head - 1 - s->head_len;
    size_t k = n < room ? n : room;
    memcpy(s->head + s->head_len, p, k);
    s->head_len += k;
    s->head[s->head_len] = '\0';
    if (n >= 2)
        memcpy(s->tail, p + n - 2, 2);
    else if (n == 1) {
        s->tail[0] = s->tail[1];
        s->tail[1] = p[0];
    }
    s->bytes += n;
    if (s->terminate && !s->terminated) {
        PGconn *pg = th_pg();
        PGresult *r = PQexec(pg, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                 " WHERE query LIKE 'FETCH 2000 FROM uq_csv%'"
                                 " AND pid <> pg_backend_pid()");
        s->terminated = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
        PQclear(r);
        PQfinish(pg);
    }
    if (s->stop_after && s->bytes >= s->stop_after) return 0; /* hang up */
    return n;
}

static CURLcode export_csv(const world *w, const char *query, sink *s, long *status, char *ctype,
                           char *disp) {
    CURL *c = curl_easy_init();
    cr_assert(c);
    char url[256], auth[200];
    snprintf(url, sizeof url, "%s/v1/usage%s", srv->base, query);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->tok);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Accept: text/csv");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_csv);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(ctype, 128, "%s", ct ? ct : "");
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    (void)disp;
    return rc;
}

static void healthy(const world *w) {
    th_resp r = th_req(srv, "GET", "/healthz", NULL, NULL);
    cr_expect_eq(r.status, 200);
    th_resp_free(&r);
    r = th_auth(srv, w->tok, "GET", "/v1/usage?limit=3", NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 3);
    th_resp_free(&r);
}

Test(usage_query, csv_export_streams_with_bounded_memory, .timeout = 600) {
    world w;
    make_world(&w);
    enum { N = 200000 };
    ev *v = gen(N, "x", 31337);
    insert(&w, v, N);
    healthy(&w); /* warm: threads, connections, caches */
    long hwm0 = vm_hwm_kb(srv->pid);
    sink s = {0};
    long status = 0;
    char ctype[128], disp[256];
    CURLcode rc = export_csv(&w, "", &s, &status, ctype, disp);
    long hwm1 = vm_hwm_kb(srv->pid);
    cr_assert_eq(rc, CURLE_OK, "%s", curl_easy_strerror(rc));
    cr_expect_eq(status, 200);
    cr_expect(!strncmp(ctype, "text/csv", 8), "%s", ctype);
    cr_expect_eq(s.lines, (size_t)N + 1, "header + every row");
    cr_expect(!strncmp(s.head,
                       "event_id,customer_id,metric,quantity,timestamp,properties,"
                       "received_at\r\n",
                       70),
              "%.200s", s.head);
    cr_expect(s.tail[0] == '\r' && s.tail[1] == '\n');
    cr_expect(strstr(s.head, ",\"b,co\"\"x\",") != NULL || strstr(s.head, ",acme,") != NULL);
    cr_expect(strstr(s.head, "\"{\"\"n\"\": 1.10, \"\"user\"\"") != NULL ||
                  strstr(s.head, "\"{\"\"other\"\": true}\"") != NULL,
              "properties are one quoted field: %.300s", s.head);
    fprintf(stderr, "csv export: %zu bytes, VmHWM %ld kB -> %ld kB (+%ld kB)\n", s.bytes, hwm0,
            hwm1, hwm1 - hwm0);
    cr_expect_lt(hwm1 - hwm0, 40L * 1024, "VmHWM grew by %ld kB exporting %zu bytes", hwm1 - hwm0,
                 s.bytes);
    cr_expect_gt(s.bytes, 20u * 1024 * 1024, "the file is bigger than the memory bound");

    /* a quoted customer with a filter: ?format=csv, no Accept */
    th_resp r = th_auth(srv, w.tok, "GET",
                        "/v1/usage?format=csv&customer_id=b%2Cco%22x"
                        "&from=2026-11-01T00:00:00Z&to=2026-11-01T01:00:00Z",
                        NULL);
    cr_expect_eq(r.status, 200);
    char cd[256];
    cr_expect(th_header(&r, "Content-Disposition", cd, sizeof cd) && strstr(cd, "attachment"));
    int want = 0;
    for (int k = 0; k < N; k++)
        want += v[k].c == 1 && v[k].us >= at_us("2026-11-01T00:00:00Z") &&
                v[k].us < at_us("2026-11-01T01:00:00Z");
    int lines = 0;
    for (const char *p = r.body; p && *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, want + 1, "%.300s", r.body);
    cr_expect(want == 0 || strstr(r.body, ",\"b,co\"\"x\",") != NULL, "%.300s", r.body);
    th_resp_free(&r);

    /* the client hangs up after 2 MB: the server stops and stays healthy */
    sink s2 = {.stop_after = 2u * 1024 * 1024};
    rc = export_csv(&w, "", &s2, &status, ctype, disp);
    cr_expect_eq(rc, CURLE_WRITE_ERROR);
    bool stopped = false;
    for (int i = 0; i < 100 && !stopped; i++) {
        const char *const needles[] = {"usage export stopped", "\"gone\"", NULL};
        stopped = th_count_lines(srv->log_path, needles) > 0;
        if (!stopped) usleep(100000);
    }
    cr_expect(stopped, "the export noticed the client left (see %s)", srv->log_path);
    healthy(&w);

    /* the database fails mid-file: the transfer must not end cleanly */
    sink s3 = {.terminate = true};
    rc = export_csv(&w, "", &s3, &status, ctype, disp);
    cr_expect_eq(s3.terminated, 1, "the export's session was found");
    cr_expect_neq(rc, CURLE_OK, "a truncated export must not look complete (%zu bytes)", s3.bytes);
    cr_expect_lt(s3.lines, (size_t)N + 1);
    healthy(&w);
    free(v);
}

/* ---- who sees what ------------------------------------------------------------ */

Test(usage_query, admins_see_all_organizations_readers_their_own) {
    world a, b;
    make_world(&a);
    make_world(&b);
    ev *va = gen(200, "oa", 1), *vb = gen(300, "ob", 2);
    insert(&a, va, 200);
    insert(&b, vb, 300);
    /* an API key with scope read */
    th_resp r =
        th_auth(srv, a.tok, "POST", "/v1/api-keys", "{\"name\":\"r\",\"scopes\":[\"read\"]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    char key[128];
    snprintf(key, sizeof key, "%s", th_str(r.json, "key"));
    th_resp_free(&r);
    r = th_auth(srv, key, "GET", "/v1/usage?limit=1000", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 200, "only its own org");
    th_resp_free(&r);
    char viewer[128];
    th_user_with_role(srv, a.tok, "viewer", viewer);
    r = th_auth(srv, viewer, "GET",
                "/v1/usage/aggregate?from=2026-10-01T00:00:00Z"
                "&to=2026-11-01T00:00:00Z&granularity=month",
                NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    /* another organization named by a non-admin: 404 */
    char path[256];
    snprintf(path, sizeof path, "/v1/usage?org=%s", b.slug);
    r = th_auth(srv, a.tok, "GET", path, NULL);
    cr_expect_eq(r.status, 404);
    th_resp_free(&r);

    char u[32], email[96], cmd[512], body[256], admin[128];
    th_unique(u);
    snprintf(email, sizeof email, "uq-admin-%s@example.test", u);
    snprintf(cmd, sizeof cmd, "echo '%s' | %s create-admin --email %s --password-stdin >/dev/null",
             TH_PASSWORD, th_api_bin(), email);
    cr_assert_eq(system(cmd), 0, "create-admin");
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, TH_PASSWORD);
    r = th_req(srv, "POST", "/v1/sessions", NULL, body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(admin, sizeof admin, "%s", th_str(r.json, "token"));
    th_resp_free(&r);
    /* one org with ?org= */
    snprintf(path, sizeof path, "/v1/usage?org=%s&limit=1000", b.slug);
    r = th_auth(srv, admin, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 300);
    cr_expect_null(json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "org"));
    th_resp_free(&r);
    /* every org: rows name their org; a's and b's sums come out separately */
    r = th_auth(srv, admin, "GET",
                "/v1/usage/aggregate?from=2026-10-01T00:00:00Z&to=2027-04-01T00:00:00Z"
                "&granularity=month&metric=m_sum",
                NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    int64_t sa = 0, sb = 0, wa = 0, wb = 0;
    for (int i = 0; i < 200; i++) wa += va[i].m == 0 ? va[i].q : 0;
    for (int i = 0; i < 300; i++) wb += vb[i].m == 0 ? vb[i].q : 0;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(r.json, "data"), i, row) {
        const char *org = opt(row, "org");
        cr_assert(org, "rows of an all-organization aggregate name the org");
        if (!strcmp(org, a.slug)) sa += scaled(th_str(row, "quantity"));
        if (!strcmp(org, b.slug)) sb += scaled(th_str(row, "quantity"));
    }
    cr_expect_eq(sa, wa);
    cr_expect_eq(sb, wb);
    th_resp_free(&r);
    r = th_auth(srv, admin, "GET", "/v1/usage?limit=5", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(opt(json_array_get(json_object_get(r.json, "data"), 0), "org") != NULL);
    th_resp_free(&r);
    free(va);
    free(vb);
}

/* Regression: the upload filter under evhttp (api/upload.c) once wrote a
 * streamed reply's last chunk before evhttp armed its "written" callback, so
 * the reply never completed and the next request on the keep-alive
 * connection was never read; and bytes still queued when evhttp closed a
 * "Connection: close" connection were lost.  One curl handle reuses its
 * connection: export, then JSON, then export again; then an export with
 * Connection: close must arrive whole. */
static size_t count_bytes(char *p, size_t sz, size_t nm, void *arg) {
    ML_UNUSED(p);
    *(size_t *)arg += sz * nm;
    return sz * nm;
}

Test(usage_query, keep_alive_after_streamed_reply_and_close_delivers_everything) {
    world w;
    make_world(&w);
    enum { N = 20000 };
    ev *v = gen(N, "ka", 99);
    insert(&w, v, N);
    free(v);
    CURL *c = curl_easy_init();
    cr_assert(c);
    char auth[200], url[256];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", w.tok);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count_bytes);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    const char *paths[] = {"/v1/usage?format=csv", "/v1/me", "/v1/usage?format=csv",
                           "/v1/usage?limit=1"};
    size_t first = 0;
    for (int i = 0; i < 4; i++) {
        size_t got = 0;
        long status = 0, connects = -1;
        snprintf(url, sizeof url, "%s%s", srv->base, paths[i]);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
        CURLcode rc = curl_easy_perform(c);
        cr_assert_eq(rc, CURLE_OK, "request %d (%s): %s", i, paths[i], curl_easy_strerror(rc));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
        cr_expect_eq(status, 200, "request %d", i);
        if (i > 0) cr_expect_eq(connects, 0, "request %d reused the connection", i);
        if (i == 0) first = got;
        if (i == 2) cr_expect_eq(got, first, "the second export is the same size");
    }
    cr_expect_gt(first, (size_t)N * 20, "the export holds every row");
    /* Connection: close — evhttp closes right after the reply */
    h = curl_slist_append(h, "Connection: close");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    snprintf(url, sizeof url, "%s/v1/usage?format=csv", srv->base);
    curl_easy_setopt(c, CURLOPT_URL, url);
    size_t got = 0;
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    cr_expect_eq(curl_easy_perform(c), CURLE_OK);
    cr_expect_eq(got, first, "a closing connection still gets the whole file");
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}
