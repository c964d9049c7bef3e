/* test_imports.c — the usage.import job end to end through real
 * billing-worker processes, PostgreSQL and Redis, driven the way the API
 * drives it: a CSV file in BILLING_STORAGE_DIR, a usage_imports row, a
 * usage.import job.  Pins down: the sample file (300 rows) imports exactly —
 * the rollup's sum per customer and metric equals a sum computed here from
 * the file with exact scaled integers — and a second import of it is 300
 * duplicates; a catalogue of bad rows with their line numbers, nothing
 * stored under on_error=abort and exactly the good rows under skip; header
 * errors fail the import at once naming the column; a missing file or an
 * unknown import is a dead job; and kill -9 of the worker in the middle of a
 * 200,000-row import: the retry resumes after the last committed chunk and
 * every event is stored exactly once with exact counts. */
#include "fmacros.h"
#include "jq.h"
#include "th.h"
#include "tw.h"
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#ifndef ML_TEST_DATA
#define ML_TEST_DATA "tests/data"
#endif

static const char *const k_customers[] = {"site-00001", "site-00002", "site-00003", "site-00004",
                                          "site-00005", "site-00006", "site-00007", "site-00008",
                                          "site-00009", "site-00010", "site-00011", "site-00012"};
static const char *const k_metrics[] = {"api_calls", "cpu_seconds", "storage_gb_hours",
                                        "vm_uptime_minutes"};

typedef struct fx {
    PGconn *pg;
    jq *q;
    long long org;
    char org_s[24];
} fx;

#define Q TH_Q

/* A fresh organization with 12 customers, 4 sum metrics and one unique_count
 * metric ("uniq_users"). */
static void fx_init(fx *f) {
    memset(f, 0, sizeof *f);
    f->pg = th_pg();
    f->q = tw_jq();
    char u[32], slug[64];
    th_unique(u);
    snprintf(slug, sizeof slug, "imp-%s", u);
    for (char *p = slug; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            *p = '-';
    PGresult *r =
        Q(f->pg, "INSERT INTO organizations (slug, name) VALUES ($1, $1) RETURNING id", slug);
    f->org = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    snprintf(f->org_s, sizeof f->org_s, "%lld", f->org);
    for (size_t i = 0; i < ML_ARRAY_LEN(k_customers); i++)
        PQclear(Q(f->pg, "INSERT INTO customers (org_id, external_id, name) VALUES ($1, $2, $2)",
                  f->org_s, k_customers[i]));
    for (size_t i = 0; i < ML_ARRAY_LEN(k_metrics); i++)
        PQclear(
            Q(f->pg,
              "INSERT INTO metrics (org_id, code, name, aggregation) VALUES ($1, $2, $2, 'sum')",
              f->org_s, k_metrics[i]));
    PQclear(Q(f->pg,
              "INSERT INTO metrics (org_id, code, name, aggregation, unique_property)"
              " VALUES ($1, 'uniq_users', 'Users', 'unique_count', 'user')",
              f->org_s));
}

static void fx_free(fx *f) {
    PQfinish(f->pg);
    jq_close(f->q);
}

static const char *storage_dir(void) {
    const char *s = getenv("BILLING_STORAGE_DIR");
    cr_assert(s && *s, "run through scripts/test (BILLING_STORAGE_DIR)");
    return s;
}

/* Writes data as <storage>/imports/<name>; returns the relative path. */
static void put_file(const char *rel, const char *data, size_t n) {
    char dir[512], path[768];
    snprintf(dir, sizeof dir, "%s/imports", storage_dir());
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s", dir);
    snprintf(path, sizeof path, "%s/%s", storage_dir(), rel);
    FILE *fp = fopen(path, "wb");
    cr_assert(fp, "open %s", path);
    cr_assert_eq(fwrite(data, 1, n, fp), n);
    cr_assert_eq(fclose(fp), 0);
}

/* Stores data as a new import of f's organization; id out (37 bytes). */
static void new_import(fx *f, const char *data, size_t n, const char *on_error, char *id) {
    char u[32], rel[96], size[24];
    th_unique(u);
    snprintf(rel, sizeof rel, "imports/%s.csv", u);
    if (data) put_file(rel, data, n);
    snprintf(size, sizeof size, "%zu", n);
    PGresult *r = Q(f->pg,
                    "INSERT INTO usage_imports (org_id, filename, file_path, size_bytes, on_error)"
                    " VALUES ($1, 'usage.csv', $2, $3, $4) RETURNING id",
                    f->org_s, rel, size, on_error);
    snprintf(id, 37, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

static void enqueue(fx *f, const char *import_id, char job[JQ_ID_MAX]) {
    char pay[128], err[256];
    snprintf(pay, sizeof pay, "{\"import_id\":\"%s\"}", import_id);
    jq_enqueue_opts o = {0};
    cr_assert_eq(jq_enqueue(f->q, "usage.import", f->org, pay, &o, job, NULL, err, sizeof err),
                 JQ_OK, "%s", err);
}

/* The usage_imports row as JSON (new reference). */
static json_t *import_row(fx *f, const char *id) {
    PGresult *r = Q(f->pg, "SELECT to_jsonb(i)::text FROM usage_imports i WHERE id = $1", id);
    cr_assert_eq(PQntuples(r), 1);
    json_t *j = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    cr_assert(j);
    return j;
}

static long long jint(const json_t *j, const char *k) {
    return json_integer_value(json_object_get(j, k));
}
static const char *jstr(const json_t *j, const char *k) {
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

/* Waits for the job to finish and returns the import row (new reference). */
static json_t *finish(fx *f, const char *import_id, const char *job, int max_ms) {
    char st[32];
    cr_assert_str_eq(tw_wait_final(f->q, job, max_ms, st), "succeeded", "job %s", job);
    json_t *row = import_row(f, import_id);
    json_t *j = tw_job(f->q, job);
    json_t *res = json_object_get(j, "result");
    /* the job's result repeats the row's final counts */
    cr_expect_str_eq(jstr(res, "import_id"), import_id);
    cr_expect_str_eq(jstr(res, "status"), jstr(row, "status"));
    static const char *const keys[] = {"rows", "imported", "duplicates", "rejected"};
    for (size_t i = 0; i < ML_ARRAY_LEN(keys); i++)
        cr_expect_eq(jint(res, keys[i]), jint(row, keys[i]), "result.%s", keys[i]);
    json_decref(j);
    cr_expect_eq(jint(row, "progress"), 100);
    cr_expect(json_is_string(json_object_get(row, "started_at")));
    cr_expect(json_is_string(json_object_get(row, "finished_at")));
    return row;
}

static long long org_int(fx *f, const char *sql) { return tw_pg_int(f->pg, sql, f->org_s, NULL); }

/* "123.250000000000" → 123250 (thousandths); asserts it is exact. */
static long long milli(const char *s) {
    long long ip = 0, fr = 0;
    int nf = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) ip = ip * 10 + (*p - '0');
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, nf++) {
            if (nf < 3)
                fr = fr * 10 + (*p - '0');
            else
                cr_assert_eq(*p, '0', "%s has more than 3 decimals", s);
        }
    }
    cr_assert_eq(*p, '\0', "bad decimal %s", s);
    for (; nf < 3; nf++) fr *= 10;
    return ip * 1000 + fr;
}

/* ---------------------------------------------------------------- tests */

typedef struct sum_key {
    char cust[16], met[24];
    long long milli, events;
} sum_key;

static sum_key *sum_find(sum_key *s, int *n, const char *c, const char *m) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(s[i].cust, c) && !strcmp(s[i].met, m)) return &s[i];
    cr_assert_lt(*n, 64);
    sum_key *k = &s[(*n)++];
    snprintf(k->cust, sizeof k->cust, "%s", c);
    snprintf(k->met, sizeof k->met, "%s", m);
    k->milli = k->events = 0;
    return k;
}

Test(imports, the_sample_file_imports_exactly_then_as_duplicates, .fini = tw_cleanup,
     .timeout = 60) {
    fx f;
    fx_init(&f);
    /* the sample file, and an independent sum per customer and metric */
    FILE *fp = fopen(ML_TEST_DATA "/usage_sample.csv", "rb");
    cr_assert(fp, "open %s", ML_TEST_DATA "/usage_sample.csv");
    static char data[65536];
    size_t n = fread(data, 1, sizeof data - 1, fp);
    fclose(fp);
    data[n] = '\0';
    sum_key want[64];
    int nwant = 0, lines = 0;
    char *save = NULL, *copy = strdup(data);
    for (char *ln = strtok_r(copy, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        if (lines++ == 0) {
            cr_assert_str_eq(ln, "customer_id,event_type,event_id,event_date,quantity");
            continue;
        }
        char c[32], m[32], id[64], at[64], qty[32];
        cr_assert_eq(sscanf(ln, "%31[^,],%31[^,],%63[^,],%63[^,],%31s", c, m, id, at, qty), 5, "%s",
                     ln);
        sum_key *k = sum_find(want, &nwant, c, m);
        k->milli += milli(qty);
        k->events++;
    }
    free(copy);
    cr_assert_eq(lines, 301);

    tw_pool *p = tw_start(2, NULL);
    char imp[37], job[JQ_ID_MAX];
    new_import(&f, data, n, "abort", imp);
    enqueue(&f, imp, job);
    json_t *row = finish(&f, imp, job, 30000);
    cr_expect_str_eq(jstr(row, "status"), "succeeded", "%s", jstr(row, "error"));
    cr_expect_eq(jint(row, "rows"), 300);
    cr_expect_eq(jint(row, "imported"), 300);
    cr_expect_eq(jint(row, "duplicates"), 0);
    cr_expect_eq(jint(row, "rejected"), 0);
    cr_expect_eq(jint(row, "done_rows"), 300);
    cr_expect_eq(json_array_size(json_object_get(row, "errors")), 0);
    cr_expect(json_is_null(json_object_get(row, "error")));
    json_decref(row);
    cr_expect_eq(org_int(&f, "SELECT count(*) FROM usage_events WHERE org_id = $1"), 300);

    /* the rollup per customer and metric equals the file's sums, exactly */
    const char *sql = "SELECT c.external_id, m.code, sum(r.quantity)::text, sum(r.events)"
                      " FROM usage_rollup r JOIN customers c ON c.id = r.customer_id"
                      " JOIN metrics m ON m.id = r.metric_id"
                      " WHERE r.org_id = $1 GROUP BY 1, 2";
    for (int round = 0; round < 2; round++) {
        PGresult *r = Q(f.pg, sql, f.org_s);
        cr_expect_eq(PQntuples(r), nwant);
        for (int i = 0; i < PQntuples(r); i++) {
            sum_key *k = sum_find(want, &nwant, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
            cr_expect_eq(milli(PQgetvalue(r, i, 2)), k->milli, "%s %s", k->cust, k->met);
            cr_expect_eq(strtoll(PQgetvalue(r, i, 3), NULL, 10), k->events, "%s %s", k->cust,
                         k->met);
        }
        PQclear(r);
        if (round == 1) break;
        /* the same file again: every row a duplicate, nothing changes */
        new_import(&f, data, n, "abort", imp);
        enqueue(&f, imp, job);
        row = finish(&f, imp, job, 30000);
        cr_expect_str_eq(jstr(row, "status"), "succeeded");
        cr_expect_eq(jint(row, "rows"), 300);
        cr_expect_eq(jint(row, "imported"), 0);
        cr_expect_eq(jint(row, "duplicates"), 300);
        json_decref(row);
        cr_expect_eq(org_int(&f, "SELECT count(*) FROM usage_events WHERE org_id = $1"), 300);
    }
    cr_expect_eq(tw_stop(p, 15000), 0);
    fx_free(&f);
}

/* The bad-input catalogue: lines and messages. */
#define T "2026-10-01T00:00:00Z"
static const char k_bad[] =
    "event_id,customer_id,event_type,event_date,quantity\n"     /* 1 */
    "g1,site-00001,api_calls," T ",1\n"                         /* 2 good */
    "b1,site-99999,api_calls," T ",1\n"                         /* 3 */
    "b2,site-00001,bogus_metric," T ",1\n"                      /* 4 */
    "b3,site-00001,api_calls,2026-10-01,1\n"                    /* 5 */
    "b4,site-00001,api_calls," T ",-2\n"                        /* 6 */
    "b5,site-00001,api_calls," T "\n"                           /* 7 */
    "\"g2\",\"site-00001\",\"api_calls\",\"" T "\",\"\"\r\n"    /* 8 good, quantity 1 */
    "\n"                                                        /* 9 */
    "\"b6\nsecond line\",site-00001,api_calls," T ",1\n"        /* 10-11 */
    "b7,site-00001,uniq_users," T ",1\n"                        /* 12 */
    ",site-00001,api_calls," T ",1\n"                           /* 13 */
    "b9,site-00001,api_calls,2099-01-01T00:00:00Z,1\n"          /* 14 */
    "b10,site-\xFF,api_calls," T ",1\n"                         /* 15 */
    "b11,site-00001,api_calls," T ",1.0000000000001\n"          /* 16 */
    "g3,site-00002,cpu_seconds,2026-10-02T00:00:00+02:00,2.5\n" /* 17 good */
    "b12,site-00001,api_calls," T ",\"1,5\"\n"                  /* 18 */
    "b13,\"site-00001,api_calls," T ",1\n";                     /* 19, unterminated */

typedef struct line_msg {
    int line;
    const char *msg;
} line_msg;

static const line_msg k_bad_errors[] = {
    {3, "unknown customer \"site-99999\""},
    {4, "unknown metric \"bogus_metric\""},
    {5, "event_date must be an RFC 3339 time with an offset, e.g. 2026-10-03T09:15:00Z"},
    {6, "quantity must be zero or more"},
    {7, "expected 5 fields, found 4"},
    {10, "event_id must not contain control characters"},
    {12, "metric \"uniq_users\" counts unique values of a property (unique_count); CSV rows "
         "carry no properties: send these events as JSON"},
    {13, "event_id must not be empty"},
    {14, "event_date must not be more than 5 minutes in the future"},
    {15, "not valid UTF-8"},
    {16, "quantity must have at most 12 decimal places"},
    {18, "quantity must be a decimal number such as \"12\" or \"0.125\""},
    {19, "unterminated quoted field"},
};
#define BAD_ROWS 16 /* data rows in k_bad */

static void expect_errors(const json_t *row) {
    const json_t *errs = json_object_get(row, "errors");
    cr_expect_eq(json_array_size(errs), ML_ARRAY_LEN(k_bad_errors));
    for (size_t i = 0; i < ML_ARRAY_LEN(k_bad_errors) && i < json_array_size(errs); i++) {
        const json_t *e = json_array_get(errs, i);
        cr_expect_eq(jint(e, "line"), k_bad_errors[i].line, "error %zu", i);
        cr_expect_str_eq(jstr(e, "message"), k_bad_errors[i].msg, "line %d", k_bad_errors[i].line);
    }
}

Test(imports, bad_rows_abort_stores_nothing_and_skip_stores_the_good_rows, .fini = tw_cleanup,
     .timeout = 60) {
    fx f;
    fx_init(&f);
    tw_pool *p = tw_start(2, NULL);
    char abort_id[37], skip_id[37], job_a[JQ_ID_MAX], job_s[JQ_ID_MAX];
    new_import(&f, k_bad, sizeof k_bad - 1, "abort", abort_id);
    enqueue(&f, abort_id, job_a);
    json_t *row = finish(&f, abort_id, job_a, 30000);
    cr_expect_str_eq(jstr(row, "status"), "failed");
    cr_expect_eq(jint(row, "rows"), BAD_ROWS);
    cr_expect_eq(jint(row, "imported"), 0);
    cr_expect_eq(jint(row, "duplicates"), 0);
    cr_expect_eq(jint(row, "rejected"), (long long)ML_ARRAY_LEN(k_bad_errors));
    char why[128];
    snprintf(why, sizeof why, "%zu of %d rows rejected; nothing was imported (on_error=abort)",
             ML_ARRAY_LEN(k_bad_errors), BAD_ROWS);
    cr_expect_str_eq(jstr(row, "error"), why);
    expect_errors(row);
    json_decref(row);
    cr_expect_eq(org_int(&f, "SELECT count(*) FROM usage_events WHERE org_id = $1"), 0,
                 "abort: nothing stored");
    cr_expect_eq(org_int(&f, "SELECT count(*) FROM usage_event_ids WHERE org_id = $1"), 0);
    cr_expect_eq(org_int(&f, "SELECT count(*) FROM usage_rollup WHERE org_id = $1"), 0);

    new_import(&f, k_bad, sizeof k_bad - 1, "skip", skip_id);
    enqueue(&f, skip_id, job_s);
    row = finish(&f, skip_id, job_s, 30000);
    cr_expect_str_eq(jstr(row, "status"), "succeeded");
    cr_expect_eq(jint(row, "rows"), BAD_ROWS);
    cr_expect_eq(jint(row, "imported"), 3);
    cr_expect_eq(jint(row, "duplicates"), 0);
    cr_expect_eq(jint(row, "rejected"), (long long)ML_ARRAY_LEN(k_bad_errors));
    expect_errors(row);
    json_decref(row);
    PGresult *r = Q(f.pg,
                    "SELECT e.event_id || ' ' || c.external_id || ' ' || m.code || ' ' ||"
                    " e.quantity::numeric(20,3) || ' ' || to_char(e.occurred_at AT TIME ZONE 'UTC',"
                    " 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM usage_events e"
                    " JOIN customers c ON c.id = e.customer_id JOIN metrics m ON m.id = e.metric_id"
                    " WHERE e.org_id = $1 ORDER BY e.event_id",
                    f.org_s);
    static const char *const want[] = {
        "g1 site-00001 api_calls 1.000 2026-10-01T00:00:00",
        "g2 site-00001 api_calls 1.000 2026-10-01T00:00:00",
        "g3 site-00002 cpu_seconds 2.500 2026-10-01T22:00:00",
    };
    cr_expect_eq(PQntuples(r), 3, "skip: exactly the good rows stored");
    for (int i = 0; i < PQntuples(r) && i < 3; i++) cr_expect_str_eq(PQgetvalue(r, i, 0), want[i]);
    PQclear(r);
    cr_expect_eq(tw_stop(p, 15000), 0);
    fx_free(&f);
}

typedef struct hdr_case {
    const char *csv;
    const char *on_error;
    const char *error;
} hdr_case;

Test(imports, header_errors_and_missing_inputs_fail_at_once, .fini = tw_cleanup, .timeout = 60) {
    fx f;
    fx_init(&f);
    tw_pool *p = tw_start(2, NULL);
    static const hdr_case cases[] = {
        {"customer_id,event_type,event_date,quantity\nsite-00001,api_calls," T ",1\n", "abort",
         "missing required column \"event_id\""},
        {"event_id,customer_id,event_date\ne1,site-00001," T "\n", "skip",
         "missing required column \"event_type\" (or \"metric\")"},
        {"event_id,customer_id,event_type,event_date,quantiy\ne1,site-00001,api_calls," T ",5\n",
         "skip",
         "unknown column \"quantiy\" (the columns are event_id, customer_id, event_type or "
         "metric, event_date or timestamp, quantity)"},
        {"event_id,customer_id,Metric,event_type,event_date\n", "abort",
         "duplicate column \"event_type\": \"metric\" is the same column"},
        {"", "abort", "the file is empty: a header row is required"},
    };
    enum { N = ML_ARRAY_LEN(cases) };
    char ids[N][37], jobs[N][JQ_ID_MAX];
    for (size_t i = 0; i < N; i++) {
        new_import(&f, cases[i].csv, strlen(cases[i].csv), cases[i].on_error, ids[i]);
        enqueue(&f, ids[i], jobs[i]);
    }
    for (size_t i = 0; i < N; i++) {
        json_t *row = finish(&f, ids[i], jobs[i], 20000);
        cr_expect_str_eq(jstr(row, "status"), "failed", "case %zu", i);
        cr_expect_str_eq(jstr(row, "error"), cases[i].error, "case %zu", i);
        cr_expect_eq(jint(row, "rows"), 0);
        cr_expect_eq(jint(row, "imported"), 0);
        json_decref(row);
        json_t *j = tw_job(f.q, jobs[i]);
        cr_expect_eq(jint(j, "attempts"), 1, "no retry for a rejected file");
        json_decref(j);
    }
    cr_expect_eq(org_int(&f, "SELECT count(*) FROM usage_events WHERE org_id = $1"), 0);

    /* a missing file: the job dies at once and the row says why */
    char gone[37], job[JQ_ID_MAX], st[32];
    new_import(&f, NULL, 10, "abort", gone);
    enqueue(&f, gone, job);
    cr_expect_str_eq(tw_wait_final(f.q, job, 20000, st), "dead");
    json_t *j = tw_job(f.q, job);
    cr_expect_eq(jint(j, "attempts"), 1);
    cr_expect(strstr(jstr(j, "error"), "the uploaded file is missing"), "%s", jstr(j, "error"));
    json_decref(j);
    json_t *row = import_row(&f, gone);
    cr_expect_str_eq(jstr(row, "status"), "failed");
    cr_expect_str_eq(jstr(row, "error"), "the uploaded file is missing");
    json_decref(row);

    /* an unknown import and a bad payload: dead at once */
    static const char *const bad[] = {
        "{\"import_id\":\"00000000-0000-4000-8000-000000000000\"}",
        "{\"import_id\":\"not-a-uuid\"}",
        "{\"import_id\":\"00000000-0000-4000-8000-000000000000\",\"x\":1}",
    };
    static const char *const why[] = {"unknown import", "must be a UUID", "unknown field \"x\""};
    for (size_t i = 0; i < ML_ARRAY_LEN(bad); i++) {
        tw_enqueue(f.q, "usage.import", bad[i], 0, job);
        cr_expect_str_eq(tw_wait_final(f.q, job, 20000, st), "dead", "%s", bad[i]);
        j = tw_job(f.q, job);
        cr_expect_eq(jint(j, "attempts"), 1);
        cr_expect(strstr(jstr(j, "error"), why[i]), "%s", jstr(j, "error"));
        json_decref(j);
    }
    cr_expect_eq(tw_stop(p, 15000), 0);
    fx_free(&f);
}

/* ---- kill -9 in the middle of a large import ---- */

#define BIG_ROWS 200000
#define BIG_DUP  97 /* every 97th row repeats an earlier event id */

/* Generates the big file; fills the expected distinct count and the sum of
 * the first occurrences' quantities (thousandths). */
static char *big_file(size_t *len, long long *distinct, long long *sum_milli) {
    size_t cap = (size_t)BIG_ROWS * 96 + 128;
    char *b = malloc(cap);
    cr_assert(b);
    size_t n = (size_t)snprintf(b, cap, "timestamp,quantity,metric,customer_id,event_id\r\n");
    *distinct = 0;
    *sum_milli = 0;
    const long long t0 = 1791072000; /* 2026-10-04T00:00:00Z */
    for (long long i = 0; i < BIG_ROWS; i++) {
        long long t = t0 + i * 7;
        char at[32];
        struct tm tm;
        time_t tt = (time_t)t;
        gmtime_r(&tt, &tm);
        strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
        char id[32];
        long long q;
        if (i % BIG_DUP == BIG_DUP - 1) { /* a duplicate: another quantity, must lose */
            snprintf(id, sizeof id, "big-%lld", i - 50);
            q = 999999;
        } else {
            snprintf(id, sizeof id, "big-%lld", i);
            q = (i % 1000) * 125; /* x.125 steps */
            (*distinct)++;
            *sum_milli += q;
        }
        n += (size_t)snprintf(b + n, cap - n, "%s,%lld.%03lld,%s,%s,%s\r\n", at, q / 1000, q % 1000,
                              k_metrics[i % 4], k_customers[i % 12], id);
        cr_assert_lt(n, cap);
    }
    *len = n;
    return b;
}

Test(imports, kill_9_mid_import_resumes_and_stores_every_event_once, .fini = tw_cleanup,
     .timeout = 120) {
    fx f;
    fx_init(&f);
    size_t n;
    long long distinct, sum_milli;
    char *data = big_file(&n, &distinct, &sum_milli);
    char imp[37], job[JQ_ID_MAX], st[32];
    new_import(&f, data, n, "abort", imp);
    free(data);
    static const char *const env[] = {"BILLING_IMPORT_CHUNK=2000", "BILLING_JOB_LEASE_MS=1500",
                                      NULL};
    tw_pool *p = tw_start(1, env);
    enqueue(&f, imp, job);

    /* wait until some chunks are committed, then kill -9 the worker */
    long long done = 0;
    for (int t = 0; t < 60000 && done < BIG_ROWS / 5; t += 10) {
        done = tw_pg_int(f.pg, "SELECT done_rows FROM usage_imports WHERE id = $1", imp, NULL);
        tw_msleep(10);
    }
    cr_assert_geq(done, BIG_ROWS / 5, "the import is loading");
    cr_assert_lt(done, BIG_ROWS, "killed before the end (done %lld)", done);
    pid_t kids[8];
    int nk = tw_children(p, kids, 8);
    cr_assert_eq(nk, 1);
    cr_assert_eq(kill(kids[0], SIGKILL), 0);
    long long at_kill =
        tw_pg_int(f.pg, "SELECT done_rows FROM usage_imports WHERE id = $1", imp, NULL);

    cr_assert_str_eq(tw_wait_final(f.q, job, 90000, st), "succeeded");
    json_t *j = tw_job(f.q, job);
    cr_expect_geq(jint(j, "attempts"), 2, "the job ran again after the kill");
    json_decref(j);
    json_t *row = import_row(&f, imp);
    cr_expect_str_eq(jstr(row, "status"), "succeeded", "%s", jstr(row, "error"));
    cr_expect_eq(jint(row, "rows"), BIG_ROWS);
    cr_expect_eq(jint(row, "done_rows"), BIG_ROWS);
    cr_expect_eq(jint(row, "imported") + jint(row, "duplicates"), BIG_ROWS);
    cr_expect_eq(jint(row, "imported"), distinct);
    cr_expect_eq(jint(row, "duplicates"), BIG_ROWS - distinct);
    cr_expect_eq(jint(row, "rejected"), 0);
    json_decref(row);
    cr_expect_eq(org_int(&f, "SELECT count(*) FROM usage_events WHERE org_id = $1"), distinct);
    cr_expect_eq(org_int(&f, "SELECT count(DISTINCT event_id) FROM usage_events WHERE org_id = $1"),
                 distinct, "every event stored once");
    PGresult *r = Q(f.pg,
                    "SELECT (SELECT sum(quantity) FROM usage_events WHERE org_id = $1)::text,"
                    " (SELECT sum(quantity) FROM usage_rollup WHERE org_id = $1)::text,"
                    " (SELECT sum(events) FROM usage_rollup WHERE org_id = $1)",
                    f.org_s);
    cr_expect_eq(milli(PQgetvalue(r, 0, 0)), sum_milli, "the first occurrences won");
    cr_expect_eq(milli(PQgetvalue(r, 0, 1)), sum_milli, "the rollup agrees");
    cr_expect_eq(strtoll(PQgetvalue(r, 0, 2), NULL, 10), distinct);
    PQclear(r);
    static const char *const resumed[] = {"\"msg\":\"usage import started\"",
                                          "\"resume_after\":", NULL};
    cr_expect_geq(th_count_lines(p->log, resumed), 2, "log %s", p->log);
    cr_log_info("killed at %lld committed rows", at_kill);
    cr_expect_eq(tw_stop(p, 15000), 0);
    fx_free(&f);
}
