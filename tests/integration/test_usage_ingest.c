/* test_usage_ingest.c — POST /v1/usage end to end: a real billing-api, real
 * billing-worker processes, real Redis and PostgreSQL.
 *
 * What it pins down:
 *   - exactness: generated events sent in batches and as single events, with
 *     duplicates inside batches, replays of whole batches and Idempotency-Key
 *     replays mixed in, end up in usage_rollup exactly as an independent
 *     per-15-minute sum computed here (quantities as scaled integers);
 *   - the bad-input catalogue: every bad event is a 422 naming the field,
 *     and a batch with one bad event enqueues nothing;
 *   - Idempotency-Key semantics, API-key scopes, cache invalidation (a new
 *     customer is found at once, logout / revocation stop a token at once);
 *   - crashes: kill -9 of workers during ingestion, kill -9 of Redis after
 *     the 202s, kill -9 of the API while clients send: every event answered
 *     202 is stored exactly once.
 */
#include "fmacros.h"
#include "buf.h"
#include "th.h"
#include "ts.h"
#include "tw.h"
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static th_server *srv;

static void setup(void) { srv = th_start(NULL); }
static void teardown(void) {
    if (srv) cr_expect_eq(th_stop(srv), 0, "billing-api must exit 0 on SIGTERM");
    tw_cleanup();
}

TestSuite(ingest, .init = setup, .fini = teardown, .timeout = 240);

/* ---- helpers ------------------------------------------------------------ */

#define NCUST 5

typedef struct org {
    char owner[64], slug[64];
    long long id;
} org;

static void must(th_resp r, long status, const char *what) {
    cr_assert_eq(r.status, status, "%s: %ld %s", what, r.status, r.body);
    th_resp_free(&r);
}

static void make_org(org *o) {
    th_signup(srv, o->owner, o->slug, NULL);
    th_resp r = th_auth(srv, o->owner, "GET", "/v1/me", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    o->id = json_integer_value(th_get(r.json, "organization.id"));
    th_resp_free(&r);
    char body[256];
    for (int c = 0; c < NCUST; c++) {
        snprintf(body, sizeof body, "{\"external_id\":\"site-%05d\",\"name\":\"Site %d\"}", c + 1,
                 c + 1);
        must(th_auth(srv, o->owner, "POST", "/v1/customers", body), 201, "customer");
    }
    must(th_auth(srv, o->owner, "POST", "/v1/metrics",
                 "{\"code\":\"api_calls\",\"name\":\"API calls\",\"aggregation\":\"sum\"}"),
         201, "metric");
    must(th_auth(srv, o->owner, "POST", "/v1/metrics",
                 "{\"code\":\"gb_hours\",\"name\":\"Storage\",\"aggregation\":\"sum\"}"),
         201, "metric");
    must(th_auth(srv, o->owner, "POST", "/v1/metrics",
                 "{\"code\":\"users\",\"name\":\"Users\",\"aggregation\":\"unique_count\","
                 "\"unique_property\":\"user\"}"),
         201, "metric");
}

static th_resp post(const char *token, const char *body, const char *idem) {
    char auth[160], key[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    snprintf(key, sizeof key, "Idempotency-Key: %s", idem ? idem : "");
    const char *h[] = {auth, idem ? key : NULL, NULL};
    return th_req(srv, "POST", "/v1/usage", h, body);
}

static long long q1(const char *sql, long long org_id) {
    PGconn *c = th_pg();
    char o[24];
    snprintf(o, sizeof o, "%lld", org_id);
    const char *p[] = {o};
    PGresult *r = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    long long v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

static long long stored(long long org_id) {
    return q1("SELECT count(*) FROM usage_events WHERE org_id = $1", org_id);
}

/* Waits until org has want events stored (or the deadline); returns the count. */
static long long wait_stored(long long org_id, long long want, int max_ms) {
    long long n = 0;
    for (int t = 0; t < max_ms; t += 100) {
        n = stored(org_id);
        if (n >= want) break;
        tw_msleep(100);
    }
    return n;
}

typedef struct ev {
    int cust, metric; /* metric 0 api_calls, 1 gb_hours */
    long long milli;  /* quantity * 1000 */
    int64_t ts_us;
} ev;

static const char *k_metric[] = {"api_calls", "gb_hours"};

static void ev_json(buf *b, const char *prefix, int id, const ev *e) {
    char ts[TS_FMT_MAX];
    ts_format(e->ts_us, ts, sizeof ts);
    const char *q = id % 3 ? "\"" : ""; /* a string, or a JSON number */
    buf_printf(b,
               "{\"event_id\":\"%s-%d\",\"customer_id\":\"site-%05d\",\"%s\":\"%s\","
               "\"quantity\":%s%lld.%03lld%s,\"%s\":\"%s\"}",
               prefix, id, e->cust + 1, id % 2 ? "metric" : "event_type", k_metric[e->metric], q,
               e->milli / 1000, e->milli % 1000, q, id % 2 ? "timestamp" : "event_date", ts);
}

/* ---- exactness ----------------------------------------------------------- */

#define NEV      12000
#define BATCH    400
#define NBUCKETS (3 * 24 * 4 + 2)

Test(ingest, exact_rollup_with_duplicates_and_replays) {
    org o;
    make_org(&o);
    tw_pool *pool = tw_start(2, NULL);
    unsigned seed = 12345;
    int64_t now = ts_now();
    int64_t base = (now - 3LL * 86400 * 1000000) / 900000000 * 900000000;
    ev *evs = calloc(NEV, sizeof *evs);
    cr_assert(evs);
    /* expected[cust][metric][bucket] sums (milli) and counts */
    static long long want_q[NCUST][2][NBUCKETS], want_n[NCUST][2][NBUCKETS];
    memset(want_q, 0, sizeof want_q);
    memset(want_n, 0, sizeof want_n);
    for (int i = 0; i < NEV; i++) {
        ev *e = &evs[i];
        e->cust = rand_r(&seed) % NCUST;
        e->metric = rand_r(&seed) % 2;
        e->milli = (long long)(rand_r(&seed) % 5000000); /* 0 .. 4999.999 */
        e->ts_us = base + (int64_t)(rand_r(&seed) % (3u * 86400)) * 1000000 +
                   (int64_t)(rand_r(&seed) % 1000000);
        int b = (int)((e->ts_us - base) / 900000000);
        cr_assert(b >= 0 && b < NBUCKETS);
        want_q[e->cust][e->metric][b] += e->milli;
        want_n[e->cust][e->metric][b]++;
    }
    /* batches: each with 20 events repeated from earlier batches (same
     * content: a client's retry) and, every 5th batch, the previous body sent
     * again; every 7th batch sent twice with one Idempotency-Key */
    char *prev = NULL;
    int batches = 0, replays = 0;
    for (int start = 0; start < NEV - 200; start += BATCH) {
        int end = start + BATCH < NEV - 200 ? start + BATCH : NEV - 200;
        buf b;
        buf_init(&b);
        buf_adds(&b, "{\"events\":[");
        for (int i = start; i < end; i++) {
            if (i > start) buf_addc(&b, ',');
            ev_json(&b, "e", i, &evs[i]);
        }
        for (int k = 0; k < 20 && start > 0; k++) {
            int i = rand_r(&seed) % start;
            buf_addc(&b, ',');
            ev_json(&b, "e", i, &evs[i]);
        }
        buf_adds(&b, "]}");
        cr_assert(!b.oom);
        char key[64];
        snprintf(key, sizeof key, "batch-%lld-%d", o.id, batches);
        bool with_key = batches % 7 == 3;
        th_resp r = post(o.owner, b.p, with_key ? key : NULL);
        cr_assert_eq(r.status, 202, "batch %d: %ld %s", batches, r.status, r.body);
        cr_assert_eq(json_integer_value(th_get(r.json, "accepted")),
                     end - start + (start ? 20 : 0));
        char job[32];
        snprintf(job, sizeof job, "%s", th_str(r.json, "job_id"));
        th_resp_free(&r);
        if (with_key) {
            r = post(o.owner, b.p, key);
            cr_assert_eq(r.status, 202, "%s", r.body);
            char h[16] = "";
            cr_expect(th_header(&r, "Idempotent-Replayed", h, sizeof h) && !strcmp(h, "true"));
            cr_expect_str_eq(th_str(r.json, "job_id"), job, "a replay answers the first job");
            th_resp_free(&r);
            replays++;
        }
        if (prev && batches % 5 == 4) {
            r = post(o.owner, prev, NULL);
            cr_assert_eq(r.status, 202, "%s", r.body);
            th_resp_free(&r);
        }
        free(prev);
        prev = b.p;
        batches++;
    }
    free(prev);
    /* the last 200 as single events, each sent twice */
    for (int i = NEV - 200; i < NEV; i++) {
        buf b;
        buf_init(&b);
        ev_json(&b, "e", i, &evs[i]);
        for (int k = 0; k < 2; k++) {
            th_resp r = post(o.owner, b.p, NULL);
            cr_assert_eq(r.status, 202, "single %d: %s", i, r.body);
            cr_expect_eq(json_integer_value(th_get(r.json, "accepted")), 1);
            th_resp_free(&r);
        }
        buf_free(&b);
    }
    cr_assert_gt(replays, 0);
    cr_assert_eq(wait_stored(o.id, NEV, 60000), NEV, "every distinct event stored");
    tw_msleep(500); /* duplicates still in flight must add nothing */
    cr_assert_eq(stored(o.id), NEV, "and nothing twice");

    /* the rollup, bucket by bucket, against the sums computed above */
    PGconn *c = th_pg();
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", o.id);
    const char *p[] = {oid};
    PGresult *res = PQexecParams(
        c,
        "SELECT substr(cu.external_id, 6)::int - 1, m.code,"
        "       (extract(epoch FROM r.bucket) * 1000000)::bigint, (r.quantity * 1000)::bigint,"
        "       r.events"
        " FROM usage_rollup r JOIN customers cu ON cu.id = r.customer_id"
        " JOIN metrics m ON m.id = r.metric_id WHERE r.org_id = $1",
        1, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    int cells = 0;
    for (int cu = 0; cu < NCUST; cu++)
        for (int m = 0; m < 2; m++)
            for (int b = 0; b < NBUCKETS; b++) cells += want_n[cu][m][b] > 0;
    cr_assert_eq(PQntuples(res), cells, "one rollup row per non-empty bucket");
    for (int i = 0; i < PQntuples(res); i++) {
        int cu = atoi(PQgetvalue(res, i, 0));
        int m = strcmp(PQgetvalue(res, i, 1), "api_calls") ? 1 : 0;
        int64_t bucket = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        int b = (int)((bucket - base) / 900000000);
        cr_assert(cu >= 0 && cu < NCUST && b >= 0 && b < NBUCKETS &&
                      (bucket - base) % 900000000 == 0,
                  "bucket %s", PQgetvalue(res, i, 2));
        cr_expect_eq(strtoll(PQgetvalue(res, i, 3), NULL, 10), want_q[cu][m][b],
                     "sum of site %d %s bucket %d", cu + 1, k_metric[m], b);
        cr_expect_eq(strtoll(PQgetvalue(res, i, 4), NULL, 10), want_n[cu][m][b],
                     "count of site %d %s bucket %d", cu + 1, k_metric[m], b);
    }
    PQclear(res);
    PQfinish(c);

    /* and the same through GET /v1/usage/aggregate: hourly, per customer and
     * metric, over whole UTC hours around the data */
    int64_t h0 = base / 3600000000LL * 3600000000LL;
    int64_t h1 =
        (base + (int64_t)NBUCKETS * 900000000LL) / 3600000000LL * 3600000000LL + 3600000000LL;
    char f0[TS_FMT_MAX], f1[TS_FMT_MAX], path[256];
    ts_format(h0, f0, sizeof f0);
    ts_format(h1, f1, sizeof f1);
    snprintf(path, sizeof path,
             "/v1/usage/aggregate?from=%s&to=%s&granularity=hour&group_by=customer,metric", f0, f1);
    th_resp ar = th_auth(srv, o.owner, "GET", path, NULL);
    cr_assert_eq(ar.status, 200, "%s", ar.body);
    long long got_total = 0;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(ar.json, "data"), i, row) {
        const char *cust = th_str(row, "customer_id"), *met = th_str(row, "metric");
        int cu = atoi(cust + 5) - 1, m = strcmp(met, "api_calls") ? 1 : 0;
        int64_t t;
        const char *st = th_str(row, "bucket_start");
        cr_assert(!ts_parse(st, strlen(st), &t));
        long long want_h = 0, want_hn = 0;
        for (int b = 0; b < NBUCKETS; b++) { /* the four quarters of hour t */
            int64_t q = base + (int64_t)b * 900000000LL;
            if (q >= t && q < t + 3600000000LL) {
                want_h += want_q[cu][m][b];
                want_hn += want_n[cu][m][b];
            }
        }
        /* quantity is a decimal string: compare as milli-units */
        const char *qs = th_str(row, "quantity");
        long long whole = strtoll(qs, NULL, 10), milli = 0;
        const char *dot = strchr(qs, '.');
        if (dot) {
            char frac[4] = "000";
            for (int k = 0; k < 3 && dot[1 + k]; k++) frac[k] = dot[1 + k];
            cr_assert(strlen(dot + 1) <= 3, "quantity %s has more than 3 decimals", qs);
            milli = strtoll(frac, NULL, 10);
        }
        cr_expect_eq(whole * 1000 + milli, want_h, "aggregate %s %s %s: %s", cust, met, st, qs);
        cr_expect_eq(json_integer_value(json_object_get(row, "events")), want_hn);
        got_total += want_hn;
    }
    cr_expect_eq(got_total, NEV, "the aggregate covers every event");
    th_resp_free(&ar);
    free(evs);
    cr_expect_eq(tw_stop(pool, 20000), 0);
}

/* ---- bad input ------------------------------------------------------------ */

typedef struct bad_case {
    const char *body;
    int status;
    const char *field; /* expected in error.details ("" = none checked) */
} bad_case;

#define GOOD "\"customer_id\":\"site-00001\",\"metric\":\"api_calls\""
static const bad_case k_bad[] = {
    {"{" GOOD "}", 422, "event_id"},
    {"{\"event_id\":\"\"," GOOD "}", 422, "event_id"},
    {"{\"event_id\":\"a\\u0007b\"," GOOD "}", 422, "event_id"},
    {"{\"event_id\":7," GOOD "}", 422, "event_id"},
    {"{\"event_id\":\"x\",\"metric\":\"api_calls\"}", 422, "customer_id"},
    {"{\"event_id\":\"x\",\"customer_id\":\"site-00001\"}", 422, "metric"},
    {"{\"event_id\":\"x\"," GOOD ",\"event_type\":\"api_calls\"}", 422, "event_type"},
    {"{\"event_id\":\"x\"," GOOD ",\"quantity\":-1}", 422, "quantity"},
    {"{\"event_id\":\"x\"," GOOD ",\"quantity\":\"-0.5\"}", 422, "quantity"},
    {"{\"event_id\":\"x\"," GOOD ",\"quantity\":1e3}", 422, "quantity"},
    {"{\"event_id\":\"x\"," GOOD ",\"quantity\":\"0.1234567890123\"}", 422, "quantity"},
    {"{\"event_id\":\"x\"," GOOD ",\"quantity\":\"123456789012345678901234567\"}", 422, "quantity"},
    {"{\"event_id\":\"x\"," GOOD ",\"quantity\":true}", 422, "quantity"},
    {"{\"event_id\":\"x\"," GOOD ",\"quantity\":\"12abc\"}", 422, "quantity"},
    {"{\"event_id\":\"x\"," GOOD ",\"timestamp\":\"yesterday\"}", 422, "timestamp"},
    {"{\"event_id\":\"x\"," GOOD ",\"timestamp\":\"2026-10-03T09:15:00\"}", 422, "timestamp"},
    {"{\"event_id\":\"x\"," GOOD ",\"event_date\":\"2099-01-01T00:00:00Z\"}", 422, "event_date"},
    {"{\"event_id\":\"x\"," GOOD ",\"timestamp\":\"1999-12-31T23:59:59Z\"}", 422, "timestamp"},
    {"{\"event_id\":\"x\"," GOOD ",\"timestamp\":\"2026-02-30T00:00:00Z\"}", 422, "timestamp"},
    {"{\"event_id\":\"x\"," GOOD ",\"timestamp\":\"2026-10-03T09:15:00Z\","
     "\"event_date\":\"2026-10-03T09:15:00Z\"}",
     422, "event_date"},
    {"{\"event_id\":\"x\"," GOOD ",\"properties\":[1]}", 422, "properties"},
    {"{\"event_id\":\"x\"," GOOD ",\"colour\":\"red\"}", 422, "colour"},
    {"{\"event_id\":\"x\",\"customer_id\":\"nobody\",\"metric\":\"api_calls\"}", 422,
     "customer_id"},
    {"{\"event_id\":\"x\",\"customer_id\":\"site-00001\",\"metric\":\"nothing\"}", 422, "metric"},
    {"{\"event_id\":\"x\",\"customer_id\":\"site-00001\",\"metric\":\"users\"}", 422, "properties"},
    {"{\"event_id\":\"x\",\"customer_id\":\"site-00001\",\"metric\":\"users\","
     "\"properties\":{\"other\":1}}",
     422, "properties"},
    {"{\"events\":{}}", 422, "events"},
    {"{\"events\":[]}", 422, "events"},
    {"{\"events\":[1]}", 422, "events[0]"},
    {"{\"events\":[{\"event_id\":\"ok\"," GOOD "}],\"extra\":1}", 422, "extra"},
    {"{\"events\":[{\"event_id\":\"ok\"," GOOD "},{\"event_id\":\"bad\"," GOOD
     ",\"quantity\":\"x\"}]}",
     422, "events[1].quantity"},
    {"{\"events\":[{\"event_id\":\"a\"," GOOD "},{\"event_id\":\"b\",\"customer_id\":\"zz\","
     "\"metric\":\"api_calls\"}]}",
     422, "events[1].customer_id"},
    {"[1,2]", 400, ""},
    {"{\"event_id\":", 400, ""},
    {"{\"event_id\":\"x\",\"event_id\":\"y\"," GOOD "}", 400, ""},
};

Test(ingest, bad_input_catalogue_enqueues_nothing) {
    org o;
    make_org(&o);
    long long before = q1("SELECT count(*) FROM usage_events WHERE org_id = $1", o.id);
    for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
        th_resp r = post(o.owner, k_bad[i].body, NULL);
        cr_expect_eq(r.status, k_bad[i].status, "case %zu %s: got %ld %s", i, k_bad[i].body,
                     r.status, r.body);
        if (k_bad[i].field[0])
            cr_expect(th_has_field_error(&r, k_bad[i].field), "case %zu: no error on %s in %s", i,
                      k_bad[i].field, r.body);
        th_resp_free(&r);
    }
    /* every error at once: three bad events, three details */
    th_resp r = post(o.owner,
                     "{\"events\":[{\"event_id\":\"\"," GOOD "},{\"event_id\":\"b\"," GOOD
                     ",\"quantity\":-2},{\"event_id\":\"c\",\"customer_id\":\"site-00001\","
                     "\"metric\":\"api_calls\",\"timestamp\":\"x\"}]}",
                     NULL);
    cr_assert_eq(r.status, 422);
    cr_expect_eq(json_array_size(th_get(r.json, "error.details")), 3, "%s", r.body);
    th_resp_free(&r);
    /* too many events */
    buf b;
    buf_init(&b);
    buf_adds(&b, "{\"events\":[");
    for (int i = 0; i <= 10000; i++)
        buf_printf(&b, "%s{\"event_id\":\"m%d\"," GOOD "}", i ? "," : "", i);
    buf_adds(&b, "]}");
    r = post(o.owner, b.p, NULL);
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(th_has_field_error(&r, "events"));
    th_resp_free(&r);
    buf_free(&b);
    /* wrong content type */
    char auth[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", o.owner);
    const char *h[] = {auth, "Content-Type: text/plain", NULL};
    r = th_req(srv, "POST", "/v1/usage", h, "{\"event_id\":\"x\"," GOOD "}");
    cr_expect_eq(r.status, 415, "%s", r.body);
    th_resp_free(&r);
    /* nothing was enqueued: start a worker and see nothing arrive */
    tw_pool *pool = tw_start(1, NULL);
    tw_msleep(1500);
    cr_expect_eq(stored(o.id), before, "a rejected batch stores nothing");
    cr_expect_eq(tw_stop(pool, 20000), 0);
}

/* ---- idempotency, credentials, caches ------------------------------------- */

Test(ingest, idempotency_key) {
    org o;
    make_org(&o);
    const char *a = "{\"event_id\":\"i-1\"," GOOD "}";
    const char *b2 = "{\"event_id\":\"i-2\"," GOOD "}";
    th_resp r1 = post(o.owner, a, "key-1");
    cr_assert_eq(r1.status, 202, "%s", r1.body);
    th_resp r2 = post(o.owner, a, "key-1");
    cr_assert_eq(r2.status, 202, "%s", r2.body);
    cr_expect_str_eq(r2.body, r1.body, "the first answer, replayed");
    char h[16] = "";
    cr_expect(th_header(&r2, "Idempotent-Replayed", h, sizeof h) && !strcmp(h, "true"));
    cr_expect(!th_header(&r1, "Idempotent-Replayed", h, sizeof h));
    th_resp_free(&r1);
    th_resp_free(&r2);
    th_resp r = post(o.owner, b2, "key-1");
    cr_expect_eq(r.status, 409);
    cr_expect_str_eq(th_err_code(&r), "idempotency_key_reused");
    th_resp_free(&r);
    /* X-Request-Id is an alias */
    char auth[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", o.owner);
    const char *hx[] = {auth, "X-Request-Id: req-77", NULL};
    r1 = th_req(srv, "POST", "/v1/usage", hx, b2);
    r2 = th_req(srv, "POST", "/v1/usage", hx, b2);
    cr_expect_eq(r1.status, 202);
    cr_expect_str_eq(r2.body, r1.body);
    th_resp_free(&r1);
    th_resp_free(&r2);
    /* any POST: creating a customer twice with one key is one customer */
    const char *hk[] = {auth, "Idempotency-Key: cust-1", NULL};
    r1 = th_req(srv, "POST", "/v1/customers", hk, "{\"external_id\":\"idem-c\",\"name\":\"C\"}");
    r2 = th_req(srv, "POST", "/v1/customers", hk, "{\"external_id\":\"idem-c\",\"name\":\"C\"}");
    cr_expect_eq(r1.status, 201, "%s", r1.body);
    cr_expect_eq(r2.status, 201, "replayed, not a 409 duplicate: %s", r2.body);
    th_resp_free(&r1);
    th_resp_free(&r2);
    /* keys are per organization */
    org o2;
    make_org(&o2);
    r = post(o2.owner, b2, "key-1");
    cr_expect_eq(r.status, 202, "another org's key-1 is another key: %s", r.body);
    th_resp_free(&r);
}

Test(ingest, keys_roles_and_caches) {
    org o;
    make_org(&o);
    th_resp r = th_auth(srv, o.owner, "POST", "/v1/api-keys",
                        "{\"name\":\"ingest\",\"scopes\":[\"usage:write\"]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    char key[128], key_id[64];
    snprintf(key, sizeof key, "%s", th_str(r.json, "key"));
    snprintf(key_id, sizeof key_id, "%s", th_str(r.json, "id"));
    th_resp_free(&r);
    r = th_auth(srv, o.owner, "POST", "/v1/api-keys", "{\"name\":\"ro\",\"scopes\":[\"read\"]}");
    char ro[128];
    snprintf(ro, sizeof ro, "%s", th_str(r.json, "key"));
    th_resp_free(&r);
    const char *one = "{\"event_id\":\"k-1\"," GOOD "}";
    r = post(key, one, NULL);
    cr_assert_eq(r.status, 202, "usage:write key: %s", r.body);
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s", th_str(r.json, "job_id"));
    th_resp_free(&r);
    r = th_auth(srv, key, "GET", path, NULL);
    cr_expect_eq(r.status, 200, "a usage:write key polls its job: %s", r.body);
    th_resp_free(&r);
    r = post(ro, one, NULL);
    cr_expect_eq(r.status, 403, "read key: %s", r.body);
    th_resp_free(&r);
    char viewer[128];
    th_user_with_role(srv, o.owner, "viewer", viewer);
    r = post(viewer, one, NULL);
    cr_expect_eq(r.status, 403);
    th_resp_free(&r);
    /* an unknown customer, then created: found at once */
    const char *nc =
        "{\"event_id\":\"k-2\",\"customer_id\":\"late-site\",\"metric\":\"api_calls\"}";
    r = post(key, nc, NULL);
    cr_expect_eq(r.status, 422);
    th_resp_free(&r);
    must(th_auth(srv, o.owner, "POST", "/v1/customers",
                 "{\"external_id\":\"late-site\",\"name\":\"Late\"}"),
         201, "customer");
    r = post(key, nc, NULL);
    cr_expect_eq(r.status, 202, "%s", r.body);
    th_resp_free(&r);
    /* revocation and logout take effect at once, cache or not */
    char del[128];
    snprintf(del, sizeof del, "/v1/api-keys/%s", key_id);
    must(th_auth(srv, o.owner, "DELETE", del, NULL), 204, "revoke");
    r = post(key, one, NULL);
    cr_expect_eq(r.status, 401, "revoked key: %s", r.body);
    th_resp_free(&r);
    char fin[128];
    th_user_with_role(srv, o.owner, "finance", fin);
    r = post(fin, "{\"event_id\":\"k-3\"," GOOD "}", NULL);
    cr_expect_eq(r.status, 202, "%s", r.body);
    th_resp_free(&r);
    must(th_auth(srv, fin, "DELETE", "/v1/sessions/current", NULL), 204, "logout");
    r = post(fin, "{\"event_id\":\"k-4\"," GOOD "}", NULL);
    cr_expect_eq(r.status, 401, "logged out: %s", r.body);
    th_resp_free(&r);
}

/* ---- crashes -------------------------------------------------------------- */

/* n batches of per events with ids "<tag>-<batch>-<i>"; returns how many
 * were answered 202 (stops at the first other answer when stop_on_fail). */
static int send_batches(const char *token, const char *tag, int n, int per, bool stop_on_fail,
                        bool *accepted) {
    int ok = 0;
    int64_t now = ts_now();
    for (int k = 0; k < n; k++) {
        buf b;
        buf_init(&b);
        buf_adds(&b, "{\"events\":[");
        for (int i = 0; i < per; i++) {
            ev e = {i % NCUST, i % 2, 1000 + i, now - (int64_t)(k * per + i) * 1000000};
            char id[64];
            snprintf(id, sizeof id, "%s-%d", tag, k);
            if (i) buf_addc(&b, ',');
            ev_json(&b, id, i, &e);
        }
        buf_adds(&b, "]}");
        th_resp r = post(token, b.p, NULL);
        buf_free(&b);
        bool good = r.status == 202;
        th_resp_free(&r);
        if (accepted) accepted[k] = good;
        if (good)
            ok++;
        else if (stop_on_fail)
            break;
    }
    return ok;
}

Test(ingest, kill9_workers_during_ingestion) {
    org o;
    make_org(&o);
    static const char *const env[] = {"BILLING_JOB_LEASE_MS=3000", NULL};
    tw_pool *pool = tw_start(2, env);
    int total = 0;
    for (int round = 0; round < 4; round++) {
        char tag[16];
        snprintf(tag, sizeof tag, "w%d", round);
        total += send_batches(o.owner, tag, 15, 500, true, NULL) * 500;
        pid_t kids[8];
        int nk = 0;
        for (int t = 0; t < 100 && nk < 2; t++) { /* killed ones are restarted */
            nk = tw_children(pool, kids, 8);
            if (nk < 2) tw_msleep(100);
        }
        cr_assert_gt(nk, 0);
        kill(kids[round % nk], SIGKILL); /* mid-stream: jobs in hand are reaped */
    }
    cr_assert_eq(total, 4 * 15 * 500, "every batch accepted");
    /* leases of the killed workers' jobs (3 s here) bring them back */
    cr_assert_eq(wait_stored(o.id, total, 90000), total, "every accepted event stored");
    tw_msleep(300);
    cr_expect_eq(stored(o.id), total, "exactly once");
    cr_expect_eq(q1("SELECT sum(events) FROM usage_rollup WHERE org_id = $1", o.id), total,
                 "counted once in the rollup");
    cr_expect_eq(tw_stop(pool, 20000), 0);
}

Test(ingest, kill9_redis_after_202) {
    org o;
    make_org(&o);
    /* no workers: the jobs sit in Redis when it dies */
    int ok = send_batches(o.owner, "r", 20, 200, true, NULL);
    cr_assert_eq(ok, 20);
    cr_assert_eq(th_svc("redis stop --kill"), 0);
    cr_assert_eq(th_svc("redis start"), 0);
    tw_pool *pool = tw_start(2, NULL);
    cr_assert_eq(wait_stored(o.id, 4000, 60000), 4000, "every 202 survived kill -9 of Redis");
    /* and the API talks to the new Redis */
    int again = 0;
    for (int t = 0; t < 50 && !again; t++) {
        again = send_batches(o.owner, "r2", 1, 10, true, NULL);
        if (!again) tw_msleep(200);
    }
    cr_expect_eq(again, 1);
    cr_expect_eq(wait_stored(o.id, 4010, 30000), 4010);
    cr_expect_eq(tw_stop(pool, 20000), 0);
}

Test(ingest, kill9_api_while_clients_send) {
    org o;
    make_org(&o);
    int accepted = 0;
    long long want = 0;
    for (int k = 0; k < 60; k++) {
        char tag[16];
        snprintf(tag, sizeof tag, "a%d", k);
        bool ok = false;
        send_batches(o.owner, tag, 1, 50, false, &ok);
        if (ok) {
            accepted++;
            want += 50;
        }
        if (k == 40) th_signal(srv, SIGKILL); /* mid-stream */
    }
    cr_assert_eq(accepted, 41, "batches before the kill were accepted, none after");
    int st = 0;
    waitpid(srv->pid, &st, 0);
    cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    free(srv); /* th_start's; th_stop would have freed it */
    srv = th_start(NULL);
    tw_pool *pool = tw_start(1, NULL);
    cr_assert_eq(wait_stored(o.id, want, 60000), want, "every 202 before kill -9 is stored");
    tw_msleep(300);
    cr_expect_eq(stored(o.id), want);
    cr_expect_eq(tw_stop(pool, 20000), 0);
}

/* ---- the team's sample batch (../shared/data/usage_batch.json) ----------- */

Test(ingest, sample_batch_body) {
    org o;
    make_org(&o); /* site-00001.. and api_calls, gb_hours, users */
    must(th_auth(srv, o.owner, "POST", "/v1/metrics",
                 "{\"code\":\"vm_uptime_minutes\",\"name\":\"VM\",\"aggregation\":\"sum\"}"),
         201, "metric");
    must(th_auth(srv, o.owner, "POST", "/v1/metrics",
                 "{\"code\":\"storage_gb_hours\",\"name\":\"GB\",\"aggregation\":\"sum\"}"),
         201, "metric");
    FILE *f = fopen(ML_TEST_DATA "/usage_batch.json", "rb");
    cr_assert(f, "tests/data/usage_batch.json");
    char body[4096];
    size_t n = fread(body, 1, sizeof body - 1, f);
    fclose(f);
    body[n] = '\0';
    th_resp r = post(o.owner, body, NULL);
    cr_assert_eq(r.status, 202, "%s", r.body);
    cr_expect_eq(json_integer_value(th_get(r.json, "accepted")), 4);
    th_resp_free(&r);
    tw_pool *pool = tw_start(1, NULL);
    cr_assert_eq(wait_stored(o.id, 4, 30000), 4);
    /* exact values back: quantity, the offset time in UTC, properties */
    PGconn *c = th_pg();
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", o.id);
    const char *p[] = {oid};
    PGresult *res = PQexecParams(
        c,
        "SELECT string_agg(event_id || '|' || quantity::text || '|' ||"
        " to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') || '|' ||"
        " coalesce(properties->>'site', ''), ';' ORDER BY event_id)"
        " FROM usage_events WHERE org_id = $1",
        1, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    cr_expect_str_eq(PQgetvalue(res, 0, 0),
                     "evt-0001|120.000000000000|2026-10-03T09:15:00.000|;"
                     "evt-0002|60.000000000000|2026-10-03T09:59:59.999|;"
                     "evt-0003|7.000000000000|2026-10-03T08:00:00.000|Zürich yard 4;"
                     "evt-0004|0.125000000000|2026-10-31T23:59:59.000|");
    PQclear(res);
    PQfinish(c);
    cr_expect_eq(tw_stop(pool, 20000), 0);
}
