/* test_usage_db.c — the exactly-once usage insert path (db/usage.c) against
 * a real PostgreSQL: duplicates inside a batch, across batches, replays of a
 * whole batch, concurrent replays, two organizations, month boundaries; and
 * the 15-minute rollup equals an independent sum computed here with exact
 * decimals, bucket by bucket. */
#include "fmacros.h"
#include "dec.h"
#include "repo.h"
#include "th.h"
#include "ts.h"
#include "usage.h"
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>

#define NCUST 3
#define NMET  2

typedef struct fixture {
    db *d;
    long long org;
    long long cust[NCUST], met[NMET];
} fixture;

static db *open_db(void) {
    db *d = db_open(getenv("BILLING_DATABASE_URL"));
    cr_assert(d && db_ok(d), "run through scripts/test");
    return d;
}

static void make_org(fixture *f) {
    f->d = open_db();
    db_err e;
    char u[32], name[64];
    th_unique(u);
    snprintf(name, sizeof name, "usage %s", u);
    json_t *o = NULL, *out = NULL;
    cr_assert_eq(repo_org_create(f->d, &e, name, &f->org, &o), REPO_OK, "%s", e.msg);
    json_decref(o);
    repo_field rf;
    for (int i = 0; i < NCUST; i++) {
        char ext[16];
        snprintf(ext, sizeof ext, "c%d", i);
        json_t *c = json_pack("{s:s, s:s}", "external_id", ext, "name", ext);
        cr_assert_eq(repo_customer_create(f->d, &e, f->org, c, &out, &rf), REPO_OK, "%s", e.msg);
        f->cust[i] = json_integer_value(json_object_get(out, "id"));
        json_decref(c);
        json_decref(out);
    }
    json_t *ids = NULL;
    for (int i = 0; i < NMET; i++) {
        char code[16];
        snprintf(code, sizeof code, "m%d", i);
        json_t *m = json_pack("{s:s, s:s, s:s}", "code", code, "name", code, "aggregation", "sum");
        cr_assert_eq(repo_metric_create(f->d, &e, f->org, m, &out, &rf), REPO_OK, "%s", e.msg);
        json_decref(m);
        json_decref(out);
    }
    cr_assert_eq(repo_metric_ids(f->d, &e, f->org, &ids), REPO_OK);
    f->met[0] = json_integer_value(json_object_get(ids, "m0"));
    f->met[1] = json_integer_value(json_object_get(ids, "m1"));
    json_decref(ids);
}

typedef struct ev {
    char id[32];
    char qty[40];
    char at[TS_FMT_MAX];
    int c, m;
    int64_t us;
} ev;

static uint64_t rnd_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* n events from 2026-10-31T20:00Z over 8 hours (crossing into November). */
static ev *gen(int n, int first_id, uint64_t seed) {
    ev *v = calloc((size_t)n, sizeof *v);
    cr_assert(v);
    int64_t start = ts_days_from_civil(2026, 10, 31) * 86400000000LL + 20LL * 3600000000LL;
    for (int i = 0; i < n; i++) {
        snprintf(v[i].id, sizeof v[i].id, "e-%d", first_id + i);
        v[i].c = (int)(rnd_next(&seed) % NCUST);
        v[i].m = (int)(rnd_next(&seed) % NMET);
        v[i].us = start + (int64_t)(rnd_next(&seed) % (8ULL * 3600 * 1000000));
        ts_format(v[i].us, v[i].at, sizeof v[i].at);
        /* integers, and fractions down to the 12th decimal place */
        snprintf(v[i].qty, sizeof v[i].qty, "%llu.%012llu",
                 (unsigned long long)(rnd_next(&seed) % 1000),
                 (unsigned long long)(rnd_next(&seed) % 1000000000000ULL));
    }
    return v;
}

static db_usage_result insert(db *d, const fixture *f, const ev *v, int n) {
    db_usage_row *rows = calloc((size_t)n, sizeof *rows);
    cr_assert(rows);
    for (int i = 0; i < n; i++)
        rows[i] = (db_usage_row){
            f->org, f->cust[v[i].c], f->met[v[i].m], v[i].id, v[i].qty, v[i].at, NULL};
    db_err e;
    db_usage_result res;
    cr_assert_eq(db_usage_insert(d, &e, rows, (size_t)n, "2026-10-31T00:00:00Z",
                                 "2026-11-01T23:59:59Z", &res),
                 0, "%s", e.msg);
    free(rows);
    return res;
}

/* Compares usage_rollup of the org with the sums of the given (unique) events. */
static void check_rollup(const fixture *f, const ev *v, int n) {
    enum { NB = 8 * 4 }; /* 15-minute buckets in 8 hours */
    static dec_t sum[NCUST][NMET][NB];
    static long long cnt[NCUST][NMET][NB];
    int64_t start = ts_days_from_civil(2026, 10, 31) * 86400000000LL + 20LL * 3600000000LL;
    memset(cnt, 0, sizeof cnt);
    for (int c = 0; c < NCUST; c++)
        for (int m = 0; m < NMET; m++)
            for (int b = 0; b < NB; b++) sum[c][m][b] = dec_zero();
    for (int i = 0; i < n; i++) {
        int b = (int)((v[i].us - start) / (15LL * 60 * 1000000));
        dec_t q;
        cr_assert_eq(dec_parse_cstr(&q, v[i].qty), DEC_OK);
        cr_assert_eq(dec_add(&sum[v[i].c][v[i].m][b], &sum[v[i].c][v[i].m][b], &q), DEC_OK);
        cnt[v[i].c][v[i].m][b]++;
    }
    db_err e;
    char org[24];
    snprintf(org, sizeof org, "%lld", f->org);
    PGresult *r = DB_EXEC(f->d, &e,
                          "SELECT customer_id, metric_id, "
                          "(extract(epoch FROM bucket)::bigint * 1000000)::text, quantity::text, "
                          "events FROM usage_rollup WHERE org_id = $1",
                          org);
    cr_assert(r, "%s", e.msg);
    int rows_seen = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        long long cid = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        long long mid = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        int64_t bus = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        int c = -1, m = -1;
        for (int k = 0; k < NCUST; k++)
            if (f->cust[k] == cid) c = k;
        for (int k = 0; k < NMET; k++)
            if (f->met[k] == mid) m = k;
        cr_assert(c >= 0 && m >= 0);
        cr_assert_eq((bus - start) % (15LL * 60 * 1000000), 0, "bucket on a 15-minute boundary");
        int b = (int)((bus - start) / (15LL * 60 * 1000000));
        cr_assert(b >= 0 && b < NB);
        dec_t got;
        cr_assert_eq(dec_parse_cstr(&got, PQgetvalue(r, i, 3)), DEC_OK);
        char want_s[DEC_FMT_MAX];
        dec_format(&sum[c][m][b], want_s, sizeof want_s);
        cr_expect_eq(dec_cmp(&got, &sum[c][m][b]), 0, "c%d m%d bucket %d: %s != %s", c, m, b,
                     PQgetvalue(r, i, 3), want_s);
        cr_expect_eq(strtoll(PQgetvalue(r, i, 4), NULL, 10), cnt[c][m][b]);
        rows_seen++;
    }
    PQclear(r);
    int want_rows = 0;
    for (int c = 0; c < NCUST; c++)
        for (int m = 0; m < NMET; m++)
            for (int b = 0; b < NB; b++) want_rows += cnt[c][m][b] > 0;
    cr_expect_eq(rows_seen, want_rows, "one rollup row per non-empty bucket");
}

static long long count_events(const fixture *f) {
    db_err e;
    char org[24];
    snprintf(org, sizeof org, "%lld", f->org);
    PGresult *r = DB_EXEC(f->d, &e, "SELECT count(*) FROM usage_events WHERE org_id = $1", org);
    cr_assert(r);
    long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

Test(usage_db, every_event_counted_once_and_rollup_is_exact, .timeout = 120) {
    fixture f;
    make_org(&f);
    enum { N = 4000 };
    ev *v = gen(N, 0, 42);
    /* batch 1: the first 2500 events, plus 300 in-batch repeats of some of
     * them carrying different quantities (the first occurrence must win) */
    ev *b1 = calloc(2800, sizeof *b1);
    memcpy(b1, v, 2500 * sizeof *v);
    for (int i = 0; i < 300; i++) {
        b1[2500 + i] = v[i * 7];
        snprintf(b1[2500 + i].qty, sizeof b1[2500 + i].qty, "999999");
    }
    db_usage_result r1 = insert(f.d, &f, b1, 2800);
    cr_expect_eq(r1.inserted, 2500);
    cr_expect_eq(r1.duplicates, 300);
    /* batch 2: events 2000..3999: 500 seen before, 1500 new */
    db_usage_result r2 = insert(f.d, &f, v + 2000, 2000);
    cr_expect_eq(r2.inserted, 1500);
    cr_expect_eq(r2.duplicates, 500);
    /* a retried job: batch 1 again changes nothing */
    db_usage_result r3 = insert(f.d, &f, b1, 2800);
    cr_expect_eq(r3.inserted, 0);
    cr_expect_eq(count_events(&f), N);
    check_rollup(&f, v, N);

    /* the batch crossed a month: both partitions exist and hold the rows */
    db_err e;
    PGresult *r = DB_EXEC0(f.d, &e,
                           "SELECT count(*) FROM pg_class WHERE relname IN "
                           "('usage_events_2026_10', 'usage_events_2026_11')");
    cr_assert(r);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "2");
    PQclear(r);
    free(b1);
    free(v);
    db_close(f.d);
}

typedef struct racer {
    const fixture *f;
    const ev *v;
    int n;
    db_usage_result res;
} racer;

static void *race_main(void *arg) {
    racer *x = arg;
    db *d = open_db();
    x->res = insert(d, x->f, x->v, x->n);
    db_close(d);
    return NULL;
}

Test(usage_db, concurrent_replays_of_one_batch_store_it_once, .timeout = 120) {
    fixture f;
    make_org(&f);
    enum { N = 3000, R = 4 };
    ev *v = gen(N, 100000, 7);
    racer rs[R];
    pthread_t th[R];
    for (int i = 0; i < R; i++) {
        rs[i] = (racer){&f, v, N, {0, 0, 0}};
        cr_assert_eq(pthread_create(&th[i], NULL, race_main, &rs[i]), 0);
    }
    long long total = 0;
    for (int i = 0; i < R; i++) {
        pthread_join(th[i], NULL);
        total += rs[i].res.inserted;
    }
    cr_expect_eq(total, N, "across %d concurrent copies, each event inserted once", R);
    cr_expect_eq(count_events(&f), N);
    check_rollup(&f, v, N);
    free(v);
    db_close(f.d);
}

Test(usage_db, the_same_event_id_in_two_organizations_is_two_events) {
    fixture a, b;
    make_org(&a);
    make_org(&b);
    ev *v = gen(50, 555, 3);
    cr_expect_eq(insert(a.d, &a, v, 50).inserted, 50);
    cr_expect_eq(insert(b.d, &b, v, 50).inserted, 50);
    cr_expect_eq(count_events(&a), 50);
    cr_expect_eq(count_events(&b), 50);
    free(v);
    db_close(a.d);
    db_close(b.d);
}

Test(usage_db, a_failing_batch_writes_nothing) {
    fixture f;
    make_org(&f);
    ev *v = gen(20, 9000, 9);
    snprintf(v[19].qty, sizeof v[19].qty, "-1"); /* violates quantity >= 0 */
    db_usage_row rows[20];
    for (int i = 0; i < 20; i++)
        rows[i] =
            (db_usage_row){f.org, f.cust[v[i].c], f.met[v[i].m], v[i].id, v[i].qty, v[i].at, NULL};
    db_err e;
    db_usage_result res;
    cr_expect_eq(
        db_usage_insert(f.d, &e, rows, 20, "2026-10-31T00:00:00Z", "2026-11-01T23:59:59Z", &res),
        -1);
    cr_expect_eq(count_events(&f), 0, "nothing of the batch was stored");
    /* and the event ids were not burnt: the corrected batch goes in whole */
    snprintf(v[19].qty, sizeof v[19].qty, "1");
    cr_expect_eq(insert(f.d, &f, v, 20).inserted, 20);
    free(v);
    db_close(f.d);
}

/* The bytes COPY text format escapes (backslash, tab, LF, CR) arrive intact
 * through both entry points: rows (db_usage_insert) and pre-rendered text
 * (db_usage_row_text + db_usage_insert_copy, the usage.ingest path). */
Test(usage_db, copy_escapes_round_trip_through_both_paths) {
    fixture f;
    make_org(&f);
    const char *props = "{\r\n\t\"p\": \"a\\\\b\\tc\\nd\"}"; /* whitespace + JSON escapes */
    db_usage_row row = {f.org, f.cust[0], f.met[0], "row\\id\t1", "1.5", "2026-10-31T10:00:00Z",
                        props};
    db_err e;
    db_usage_result res;
    cr_assert_eq(db_usage_insert(f.d, &e, &row, 1, row.occurred_at, row.occurred_at, &res), 0, "%s",
                 e.msg);
    cr_expect_eq(res.inserted, 1);
    buf t;
    buf_init(&t);
    db_usage_row_text(&t, f.cust[1], f.met[0], "chunk\\id\r\n2", "0.000000000001",
                      "2026-10-31T10:05:00Z", props);
    db_usage_row_text(&t, f.cust[1], f.met[0], "chunk-3", "2", "2026-10-31T10:06:00Z", NULL);
    cr_assert(!t.oom);
    db_usage_chunk ch = {f.org, t.p, t.len};
    cr_assert_eq(
        db_usage_insert_copy(f.d, &e, &ch, 1, "2026-10-31T10:05:00Z", "2026-10-31T10:06:00Z", &res),
        0, "%s", e.msg);
    cr_expect_eq(res.inserted, 2);
    buf_free(&t);
    char org[24];
    snprintf(org, sizeof org, "%lld", f.org);
    PGresult *r =
        DB_EXEC(f.d, &e,
                "SELECT string_agg(event_id || '|' || quantity::text || '|' ||"
                " coalesce(properties->>'p', 'NULL'), ';' ORDER BY event_id COLLATE \"C\")"
                " FROM usage_events WHERE org_id = $1",
                org);
    cr_assert(r, "%s", e.msg);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "chunk-3|2.000000000000|NULL;"
                                          "chunk\\id\r\n2|0.000000000001|a\\b\tc\nd;"
                                          "row\\id\t1|1.500000000000|a\\b\tc\nd");
    PQclear(r);
    db_close(f.d);
}
