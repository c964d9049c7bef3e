/* test_reports.c — PDF reports end to end: real billing-api, billing-worker
 * processes, PostgreSQL and Redis; the PDFs are read back with pdftotext.
 *
 * Pins down (from API.md "Reports and jobs", issue 6 and the report brief):
 *  - POST /v1/reports → 202 {id, status queued, status_url, download_url};
 *    the same request while it is queued → 200 with the same id; the
 *    download is 409 until the report succeeded; another organization gets
 *    404 for the report, its download and the invoice PDF, and 422 when it
 *    names this organization's invoice or customer in a request;
 *  - GET ?wait=N holds the answer while nothing changes (≈ N s), answers as
 *    soon as the status changes, ends early when the client leaves (logged
 *    as gone) and does not hold up a SIGTERM drain;
 *  - the download: Content-Type application/pdf, Content-Length = the
 *    bytes = size_bytes, Content-Disposition attachment with a filename built
 *    from our own dates / numbers, ETag = "sha256 of the bytes", and
 *    If-None-Match → 304 without a body; pdftotext finds the customer name
 *    (Latin-1 letters), the usage total, the invoice number and total;
 *  - issuing an invoice (POST /v1/invoices/{id}/issue) renders its PDF:
 *    GET /v1/invoices/{id}/pdf is 409 (Retry-After) until then, then 200
 *    with the number in its text; a draft's is 409 naming "draft";
 *  - a report whose enqueue was lost gets its job on the next read; one
 *    whose job died unrecorded (a timed-out last attempt) reads as failed
 *    with the job's error;
 *  - kill -9 of the worker while it writes the file (ML_TEST_REPORT_SLOW_MS,
 *    see worker/report.c): the job is retried and leaves exactly one
 *    complete file, no temp file, the row succeeded after two attempts.
 */
#include "fmacros.h"
#include "jq.h"
#include "th.h"
#include "tw.h"
#include "usage.h"
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static th_server *srv;
static void setup(void) { srv = th_start(NULL); }
static void teardown(void) {
    if (srv) cr_expect_eq(th_stop(srv), 0, "billing-api must exit 0 on SIGTERM");
    tw_cleanup();
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define Q TH_Q

static void must(th_resp *r, long status, const char *what) {
    cr_assert_eq(r->status, status, "%s: HTTP %ld, want %ld: %s", what, r->status, status,
                 r->body ? r->body : "");
}

/* ---- an organization with usage ------------------------------------------ */

typedef struct world {
    char token[128];
    char slug[64];
    long long org;
    char org_s[24];
    long long calls_id; /* metric api_calls (sum) */
    long long cust_id;  /* customer "zh" (Zürich Höfe) */
    PGconn *pg;
    db *d;
} world;

static void world_init(world *w) {
    memset(w, 0, sizeof *w);
    th_signup(srv, w->token, w->slug, NULL);
    w->pg = th_pg();
    PGresult *r = Q(w->pg, "SELECT id FROM organizations WHERE slug = $1", w->slug);
    w->org = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    snprintf(w->org_s, sizeof w->org_s, "%lld", w->org);
    th_resp rr = th_auth(srv, w->token, "POST", "/v1/metrics",
                         "{\"code\":\"api_calls\",\"name\":\"API calls\",\"aggregation\":\"sum\","
                         "\"unit\":\"calls\"}");
    must(&rr, 201, "create metric");
    th_resp_free(&rr);
    rr = th_auth(srv, w->token, "POST", "/v1/plans",
                 "{\"code\":\"calls\",\"name\":\"Calls\",\"currency\":\"EUR\",\"charges\":["
                 "{\"metric\":\"api_calls\",\"model\":\"per_unit\",\"unit_price\":\"0.5\"}]}");
    must(&rr, 201, "create plan");
    th_resp_free(&rr);
    rr = th_auth(srv, w->token, "POST", "/v1/customers",
                 "{\"external_id\":\"zh\",\"name\":\"Zürich Höfe\",\"plan\":\"calls\","
                 "\"email\":\"ap@zuerich-hoefe.example\",\"billing_address\":{\"line1\":"
                 "\"Bahnhofstrasse 1\",\"postal_code\":\"8001\",\"city\":\"Zürich\","
                 "\"country\":\"Switzerland\"}}");
    must(&rr, 201, "create customer");
    th_resp_free(&rr);
    r = Q(w->pg, "SELECT id FROM metrics WHERE org_id = $1 AND code = 'api_calls'", w->org_s);
    w->calls_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = Q(w->pg, "SELECT id FROM customers WHERE org_id = $1 AND external_id = 'zh'", w->org_s);
    w->cust_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    w->d = db_open(getenv("BILLING_DATABASE_URL"));
    cr_assert_not_null(w->d);
    /* October 2026: 1000.25 + 234.25 = 1234.5 calls on two days */
    db_usage_row rows[] = {
        {w->org, w->cust_id, w->calls_id, "ev-1", "1000.25", "2026-10-02T10:15:00Z", NULL},
        {w->org, w->cust_id, w->calls_id, "ev-2", "234.25", "2026-10-03T23:59:00Z", NULL},
        {w->org, w->cust_id, w->calls_id, "ev-out", "7", "2026-11-01T00:00:00Z", NULL},
    };
    db_err e;
    db_usage_result res;
    cr_assert_eq(db_usage_insert(w->d, &e, rows, ML_ARRAY_LEN(rows), "2026-10-01T00:00:00Z",
                                 "2026-11-30T00:00:00Z", &res),
                 0, "insert usage: %s", e.msg);
}

static void world_free(world *w) {
    db_close(w->d);
    PQfinish(w->pg);
}

/* ---- reports over HTTP ------------------------------------------------------ */

#define USAGE_BODY                                                                                 \
    "{\"kind\":\"usage\",\"customer_id\":\"zh\",\"from\":\"2026-10-01\",\"to\":\"2026-11-01\"}"

static json_t *get_report(world *w, const char *id, int wait, double *took) {
    char path[160];
    snprintf(path, sizeof path, "/v1/reports/%s%s", id, wait ? "?wait=" : "");
    if (wait) snprintf(path + strlen(path), sizeof path - strlen(path), "%d", wait);
    double t0 = mono_s();
    th_resp r = th_auth(srv, w->token, "GET", path, NULL);
    if (took) *took = mono_s() - t0;
    must(&r, 200, path);
    json_t *j = json_incref(r.json);
    th_resp_free(&r);
    return j;
}

/* Long-polls until the report finished; returns it. */
static json_t *wait_done(world *w, const char *id, int max_s) {
    double t0 = mono_s();
    while (mono_s() - t0 < max_s) {
        json_t *j = get_report(w, id, 5, NULL);
        const char *st = th_str(j, "status");
        if (!strcmp(st, "succeeded") || !strcmp(st, "failed")) return j;
        json_decref(j);
    }
    cr_assert_fail("report %s did not finish in %d s", id, max_s);
    return NULL;
}

static void sha256_hex(const void *p, size_t n, char out[65]) {
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, p, n);
    sodium_bin2hex(out, 65, h, sizeof h);
}

/* pdftotext of the bytes (malloc'd text). */
static char *pdf_text(const void *p, size_t n) {
    char path[256], cmd[600];
    const char *dir = getenv("ML_ARTIFACTS") ? getenv("ML_ARTIFACTS") : "/tmp";
    char u[32];
    snprintf(path, sizeof path, "%s/report-%s.pdf", dir, th_unique(u));
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(p, 1, n, f) == n && fclose(f) == 0, "write %s", path);
    snprintf(cmd, sizeof cmd, "pdftotext -enc UTF-8 '%s' - 2>&1", path);
    FILE *pp = popen(cmd, "r");
    cr_assert(pp);
    th_body b = {0};
    char chunk[4096];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, pp)) > 0) th_curl_collect(chunk, 1, k, &b);
    int rc = pclose(pp);
    cr_assert_eq(rc, 0, "pdftotext %s failed: %s", path, b.p ? b.p : "");
    return b.p ? b.p : strdup("");
}

/* Downloads path and checks every header against the report row; returns
 * the response (caller frees). */
static th_resp download_checked(world *w, const char *path, const json_t *rep,
                                const char *want_filename) {
    th_resp d = th_auth(srv, w->token, "GET", path, NULL);
    must(&d, 200, path);
    char v[256], etag[80];
    cr_expect(th_header(&d, "Content-Type", v, sizeof v) && !strcmp(v, "application/pdf"),
              "Content-Type %s", v);
    cr_expect(th_header(&d, "Content-Length", v, sizeof v), "Content-Length present");
    cr_expect_eq(atoll(v), (long long)d.body_len, "Content-Length %s = body %zu", v, d.body_len);
    cr_expect_eq((long long)d.body_len, json_integer_value(json_object_get(rep, "size_bytes")),
                 "the body is size_bytes long");
    char want[200];
    snprintf(want, sizeof want, "attachment; filename=\"%s\"", want_filename);
    cr_expect(th_header(&d, "Content-Disposition", v, sizeof v) && !strcmp(v, want),
              "Content-Disposition: got %s, want %s", v, want);
    char hex[65];
    sha256_hex(d.body, d.body_len, hex);
    snprintf(etag, sizeof etag, "\"%s\"", hex);
    cr_expect(th_header(&d, "ETag", v, sizeof v) && !strcmp(v, etag), "ETag %s, bytes %s", v, etag);
    cr_expect_str_eq(th_str(rep, "sha256"), hex, "sha256 of the row = of the bytes");
    cr_expect(d.body_len > 4 && !memcmp(d.body, "%PDF", 4), "the body is a PDF");
    cr_expect(th_header(&d, "Cache-Control", v, sizeof v) && !strcmp(v, "private, no-cache"),
              "a download may be cached and revalidated by its ETag: Cache-Control %s", v);
    return d;
}

/* ---- the full flow: usage report ------------------------------------------ */

Test(reports, usage_report_queue_poll_long_poll_download_etag_and_isolation, .init = setup,
     .fini = teardown, .timeout = 120) {
    world w;
    world_init(&w);

    /* queued, nobody working yet */
    th_resp r = th_auth(srv, w.token, "POST", "/v1/reports", USAGE_BODY);
    must(&r, 202, "POST usage report");
    char id[40], status_url[96], download_url[128];
    snprintf(id, sizeof id, "%s", th_str(r.json, "id"));
    cr_expect_str_eq(th_str(r.json, "status"), "queued");
    snprintf(status_url, sizeof status_url, "/v1/reports/%s", id);
    snprintf(download_url, sizeof download_url, "/v1/reports/%s/download", id);
    cr_expect_str_eq(th_str(r.json, "status_url"), status_url);
    cr_expect_str_eq(th_str(r.json, "download_url"), download_url);
    cr_expect_str_eq(th_str(r.json, "kind"), "usage");
    cr_expect_str_eq(th_str(r.json, "customer_id"), "zh");
    cr_expect_str_eq(th_str(r.json, "from"), "2026-10-01T00:00:00Z");
    cr_expect_str_eq(th_str(r.json, "to"), "2026-11-01T00:00:00Z");
    th_resp_free(&r);

    /* the same request while queued (an RFC 3339 spelling of the same range) */
    r = th_auth(srv, w.token, "POST", "/v1/reports",
                "{\"kind\":\"usage\",\"customer_id\":\"zh\",\"from\":\"2026-10-01T02:00:00+02:00\","
                "\"to\":\"2026-11-01T00:00:00Z\"}");
    must(&r, 200, "the same request again");
    cr_expect_str_eq(th_str(r.json, "id"), id, "the same report");
    th_resp_free(&r);

    /* not ready: 409 with Retry-After */
    r = th_auth(srv, w.token, "GET", download_url, NULL);
    cr_expect_eq(r.status, 409, "download before it is ready: %ld %s", r.status, r.body);
    char v[256];
    cr_expect(th_header(&r, "Retry-After", v, sizeof v), "409 while queued has Retry-After");
    th_resp_free(&r);

    /* long poll with nothing changing: about N seconds, still queued */
    double took;
    json_t *j = get_report(&w, id, 2, &took);
    cr_expect_str_eq(th_str(j, "status"), "queued");
    cr_expect(took >= 1.8 && took < 4.0, "?wait=2 without a change took %.2f s", took);
    json_decref(j);

    /* another organization: 404 everywhere, 422 naming our objects */
    char other[128];
    th_signup(srv, other, NULL, NULL);
    r = th_auth(srv, other, "GET", status_url, NULL);
    cr_expect_eq(r.status, 404, "another org's report: %ld", r.status);
    th_resp_free(&r);
    r = th_auth(srv, other, "GET", download_url, NULL);
    cr_expect_eq(r.status, 404, "another org's download: %ld", r.status);
    th_resp_free(&r);
    r = th_auth(srv, other, "POST", "/v1/reports", USAGE_BODY);
    cr_expect_eq(r.status, 422, "another org's customer: %ld", r.status);
    cr_expect(th_has_field_error(&r, "customer_id"), "%s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, other, "GET", "/v1/reports", NULL);
    must(&r, 200, "other's list");
    cr_expect_eq(json_array_size(th_get(r.json, "data")), 0, "another org lists none of ours");
    th_resp_free(&r);

    /* a worker (slowed while writing, so "running" lasts >= 1.5 s) */
    static const char *const env[] = {"ML_TEST_REPORT_SLOW_MS=1500", NULL};
    tw_pool *pool = tw_start(1, env);
    j = get_report(&w, id, 10, &took);
    cr_expect_neq(strcmp(th_str(j, "status"), "queued"), 0, "the long poll saw the change");
    cr_expect_lt(took, 8.0, "?wait=10 answered when the status changed (%.2f s)", took);
    bool running = !strcmp(th_str(j, "status"), "running");
    json_decref(j);
    if (running) {
        j = get_report(&w, id, 10, &took);
        cr_expect_str_eq(th_str(j, "status"), "succeeded", "running → succeeded");
        cr_expect_geq(took, 0.5, "it waited while running (%.2f s)", took);
        cr_expect_lt(took, 8.0, "and answered at the change (%.2f s)", took);
        json_decref(j);
    }
    json_t *rep = wait_done(&w, id, 60);
    cr_assert_str_eq(th_str(rep, "status"), "succeeded", "report: %s",
                     json_dumps(rep, JSON_COMPACT));
    cr_expect_eq(json_integer_value(json_object_get(rep, "progress")), 100);
    cr_expect_eq(json_integer_value(json_object_get(rep, "attempts")), 1);
    cr_expect(json_is_string(json_object_get(rep, "finished_at")));

    th_resp d = download_checked(&w, download_url, rep, "usage-2026-10-01-2026-10-31.pdf");
    char *text = pdf_text(d.body, d.body_len);
    cr_expect(strstr(text, "Zürich Höfe"), "customer name in the PDF:\n%s", text);
    cr_expect(strstr(text, "1234.5"), "the month's total 1234.5 in the PDF:\n%s", text);
    cr_expect(strstr(text, "1000.25"), "2 October's 1000.25 in the PDF:\n%s", text);
    free(text);

    /* If-None-Match: 304 without a body; another tag: the file again */
    char h_auth[200], h_inm[120];
    snprintf(h_auth, sizeof h_auth, "Authorization: Bearer %s", w.token);
    snprintf(h_inm, sizeof h_inm, "If-None-Match: \"%s\"", th_str(rep, "sha256"));
    const char *hs[] = {h_auth, h_inm, NULL};
    r = th_req(srv, "GET", download_url, hs, NULL);
    cr_expect_eq(r.status, 304, "If-None-Match with the ETag: %ld", r.status);
    cr_expect_eq(r.body_len, 0, "a 304 has no body");
    th_resp_free(&r);
    const char *hs2[] = {h_auth, "If-None-Match: \"0000\"", NULL};
    r = th_req(srv, "GET", download_url, hs2, NULL);
    cr_expect_eq(r.status, 200, "another tag: %ld", r.status);
    cr_expect_eq(r.body_len, d.body_len);
    th_resp_free(&r);
    th_resp_free(&d);

    /* finished: the same request is a new report now */
    r = th_auth(srv, w.token, "POST", "/v1/reports", USAGE_BODY);
    must(&r, 202, "the same request after it finished");
    cr_expect_str_neq(th_str(r.json, "id"), id);
    th_resp_free(&r);
    r = th_auth(srv, w.token, "GET", "/v1/reports?kind=usage&customer_id=zh&status=succeeded",
                NULL);
    must(&r, 200, "list");
    json_t *data = th_get(r.json, "data");
    cr_expect_eq(json_array_size(data), 1, "one succeeded usage report of zh: %s", r.body);
    cr_expect_str_eq(th_str(json_array_get(data, 0), "id"), id);
    th_resp_free(&r);
    json_decref(rep);
    cr_expect_eq(tw_stop(pool, 15000), 0);
    world_free(&w);
}

/* ---- invoices ------------------------------------------------------------- */

/* Generates zh's October invoice through the API and the worker; id out. */
static void october_invoice(world *w, char id[40]) {
    th_resp r = th_auth(srv, w->token, "POST", "/v1/invoices",
                        "{\"customer_id\":\"zh\",\"period_start\":\"2026-10-01\","
                        "\"period_end\":\"2026-11-01\"}");
    must(&r, 202, "generate");
    char job[JQ_ID_MAX], st[32];
    snprintf(job, sizeof job, "%s", th_str(r.json, "job_id"));
    th_resp_free(&r);
    jq *q = tw_jq();
    cr_assert_str_eq(tw_wait_final(q, job, 30000, st), "succeeded");
    jq_close(q);
    r = th_auth(srv, w->token, "GET", "/v1/invoices?customer_id=zh", NULL);
    must(&r, 200, "list invoices");
    snprintf(id, 40, "%s", th_str(json_array_get(th_get(r.json, "data"), 0), "id"));
    cr_expect_str_eq(th_str(json_array_get(th_get(r.json, "data"), 0), "total"), "617.25",
                     "1234.5 calls at 0.5");
    th_resp_free(&r);
}

Test(reports, issuing_an_invoice_renders_its_pdf_served_at_invoices_pdf, .init = setup,
     .fini = teardown, .timeout = 120) {
    world w;
    world_init(&w);
    tw_pool *pool = tw_start(1, NULL);
    char inv[40], path[128];
    october_invoice(&w, inv);
    cr_expect_eq(tw_stop(pool, 15000), 0);
    pool = NULL;

    /* a draft has no PDF */
    snprintf(path, sizeof path, "/v1/invoices/%s/pdf", inv);
    th_resp r = th_auth(srv, w.token, "GET", path, NULL);
    cr_expect_eq(r.status, 409, "draft PDF: %ld %s", r.status, r.body);
    cr_expect(r.body && strstr(r.body, "draft"), "the 409 names the status: %s", r.body);
    th_resp_free(&r);

    /* a report of the draft (kind invoice) while no worker runs: queued */
    char body[160], rid[40];
    snprintf(body, sizeof body, "{\"kind\":\"invoice\",\"invoice_id\":\"%s\"}", inv);
    r = th_auth(srv, w.token, "POST", "/v1/reports", body);
    must(&r, 202, "invoice report of the draft");
    snprintf(rid, sizeof rid, "%s", th_str(r.json, "id"));
    cr_expect_str_eq(th_str(r.json, "invoice_id"), inv);
    th_resp_free(&r);

    /* another organization may not name it */
    char other[128];
    th_signup(srv, other, NULL, NULL);
    r = th_auth(srv, other, "POST", "/v1/reports", body);
    cr_expect_eq(r.status, 422, "another org's invoice: %ld", r.status);
    cr_expect(th_has_field_error(&r, "invoice_id"), "%s", r.body);
    th_resp_free(&r);

    /* issue: the PDF is requested in the same transaction, not rendered yet */
    char ip[128];
    snprintf(ip, sizeof ip, "/v1/invoices/%s/issue", inv);
    r = th_auth(srv, w.token, "POST", ip, "{}");
    must(&r, 200, "issue");
    char number[64];
    snprintf(number, sizeof number, "%s", th_str(r.json, "number"));
    cr_assert(number[0], "issued with a number");
    th_resp_free(&r);
    PGresult *pr = Q(w.pg,
                     "SELECT count(*) FROM reports WHERE invoice_id = $1::uuid "
                     "AND created_by = 'issue' AND job_id IS NOT NULL",
                     inv);
    cr_expect_str_eq(PQgetvalue(pr, 0, 0), "1", "the issue inserted its report and enqueued it");
    PQclear(pr);
    r = th_auth(srv, w.token, "GET", path, NULL);
    cr_expect_eq(r.status, 409, "not rendered yet: %ld %s", r.status, r.body);
    char v[64];
    cr_expect(th_header(&r, "Retry-After", v, sizeof v), "with Retry-After");
    /* the 409 names the report to long-poll */
    pr =
        Q(w.pg, "SELECT id FROM reports WHERE invoice_id = $1::uuid AND created_by = 'issue'", inv);
    char want_url[96];
    snprintf(want_url, sizeof want_url, "/v1/reports/%s", PQgetvalue(pr, 0, 0));
    cr_expect_str_eq(th_str(r.json, "error.details.0.report_id"), PQgetvalue(pr, 0, 0), "%s",
                     r.body);
    cr_expect_str_eq(th_str(r.json, "error.details.0.status_url"), want_url);
    PQclear(pr);
    th_resp_free(&r);
    r = th_auth(srv, other, "GET", path, NULL);
    cr_expect_eq(r.status, 404, "another org's invoice PDF: %ld", r.status);
    th_resp_free(&r);

    /* a worker renders both; the invoice PDF is served once ready */
    pool = tw_start(1, NULL);
    th_resp d = {0};
    for (int i = 0; i < 300; i++) {
        d = th_auth(srv, w.token, "GET", path, NULL);
        if (d.status != 409) break;
        th_resp_free(&d);
        tw_msleep(100);
    }
    must(&d, 200, "the issued invoice's PDF");
    pr = Q(w.pg,
           "SELECT id FROM reports WHERE invoice_id = $1::uuid AND status = 'succeeded' "
           "AND invoice_number IS NOT NULL ORDER BY finished_at DESC LIMIT 1",
           inv);
    char served[40];
    snprintf(served, sizeof served, "%s", PQgetvalue(pr, 0, 0));
    PQclear(pr);
    json_t *rep = get_report(&w, served, 0, NULL);
    char fname[96];
    snprintf(fname, sizeof fname, "invoice-%s.pdf", number);
    th_resp d2 = download_checked(&w, path, rep, fname);
    cr_expect_eq(d2.body_len, d.body_len, "the same file twice");
    char *text = pdf_text(d2.body, d2.body_len);
    cr_expect(strstr(text, number), "the number %s in the PDF:\n%s", number, text);
    cr_expect(strstr(text, "617.25"), "the total in the PDF:\n%s", text);
    cr_expect(strstr(text, "Zürich Höfe"), "the customer in the PDF:\n%s", text);
    cr_expect(strstr(text, "Bahnhofstrasse 1"), "the bill-to address:\n%s", text);
    free(text);
    json_decref(rep);
    th_resp_free(&d);

    /* the report of the same invoice asked for before the issue rendered
     * too (what the invoice is when the job runs) */
    rep = wait_done(&w, rid, 60);
    cr_expect_str_eq(th_str(rep, "status"), "succeeded");
    json_decref(rep);

    /* 304 on the invoice PDF too */
    char h_auth[200], h_inm[120];
    snprintf(h_auth, sizeof h_auth, "Authorization: Bearer %s", w.token);
    char etag[80];
    th_header(&d2, "ETag", etag, sizeof etag);
    snprintf(h_inm, sizeof h_inm, "If-None-Match: W/%s", etag);
    const char *hs[] = {h_auth, h_inm, NULL};
    r = th_req(srv, "GET", path, hs, NULL);
    cr_expect_eq(r.status, 304, "If-None-Match on the invoice PDF: %ld", r.status);
    th_resp_free(&r);
    th_resp_free(&d2);
    cr_expect_eq(tw_stop(pool, 15000), 0);
    world_free(&w);
}

/* ---- lost and dead jobs heal on the next read ----------------------------- */

Test(reports, a_lost_enqueue_is_healed_and_a_dead_job_fails_its_report_on_read, .init = setup,
     .fini = teardown, .timeout = 120) {
    world w;
    world_init(&w);
    /* as if the queue had been down when it was requested: a row, no job */
    char cust[24], lost[40];
    snprintf(cust, sizeof cust, "%lld", w.cust_id);
    PGresult *pr = Q(w.pg,
                     "INSERT INTO reports (org_id, kind, customer_id, period_from, period_to, "
                     "request_key, created_by) VALUES ($1, 'usage', $2::bigint, '2026-10-02', "
                     "'2026-10-04', 'usage:' || $2::text || ':lost', 'test') RETURNING id",
                     w.org_s, cust);
    snprintf(lost, sizeof lost, "%s", PQgetvalue(pr, 0, 0));
    PQclear(pr);
    json_t *j = get_report(&w, lost, 0, NULL);
    cr_expect_str_eq(th_str(j, "status"), "queued");
    cr_expect(json_is_string(json_object_get(j, "job_id")), "the read enqueued its job: %s",
              json_dumps(j, JSON_COMPACT));
    json_decref(j);

    /* a report whose job died without the worker recording it */
    char dead_id[40], u[32], type[64], job[JQ_ID_MAX], err[256];
    th_resp r = th_auth(srv, w.token, "POST", "/v1/reports",
                        "{\"kind\":\"usage\",\"customer_id\":\"zh\",\"from\":\"2026-10-01\","
                        "\"to\":\"2026-10-02\"}");
    must(&r, 202, "POST");
    snprintf(dead_id, sizeof dead_id, "%s", th_str(r.json, "id"));
    th_resp_free(&r);
    jq *q = tw_jq();
    snprintf(type, sizeof type, "t.reports.dead.%s", th_unique(u));
    cr_assert_eq(jq_enqueue(q, type, w.org, "{}", NULL, job, NULL, err, sizeof err), JQ_OK);
    const char *types[] = {type};
    jq_job jj;
    cr_assert_eq(jq_reserve(q, types, 1, "test", &jj, 1, err, sizeof err), 1, "%s", err);
    jq_job_clear(&jj);
    bool dead = false;
    cr_assert_eq(
        jq_fail(q, job, "test", "job timeout after 300000 ms", true, &dead, err, sizeof err),
        JQ_OK);
    cr_assert(dead);
    jq_close(q);
    PQclear(Q(w.pg, "UPDATE reports SET status = 'running', job_id = $2 WHERE id = $1::uuid",
              dead_id, job));
    j = get_report(&w, dead_id, 5, NULL);
    cr_expect_str_eq(th_str(j, "status"), "failed", "a dead job fails its report");
    cr_expect(th_str(j, "error") && strstr(th_str(j, "error"), "job timeout"),
              "with the job's error: %s", th_str(j, "error"));
    json_decref(j);

    /* the healed one renders once a worker runs */
    tw_pool *pool = tw_start(1, NULL);
    j = wait_done(&w, lost, 60);
    cr_expect_str_eq(th_str(j, "status"), "succeeded");
    json_decref(j);
    cr_expect_eq(tw_stop(pool, 15000), 0);
    world_free(&w);
}

/* ---- kill -9 while the file is being written ------------------------------- */

/* Names in dir (a report's month directory): *pdfs with ".pdf" at the end
 * and no leading dot, *tmps ending in ".tmp". */
static void count_files(const char *dir, const char *id, int *pdfs, int *tmps) {
    *pdfs = *tmps = 0;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, id)) continue;
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".tmp")) (*tmps)++;
        if (e->d_name[0] != '.' && n > 4 && !strcmp(e->d_name + n - 4, ".pdf")) (*pdfs)++;
    }
    closedir(d);
}

Test(reports, kill_9_while_writing_is_retried_into_one_complete_file, .init = setup,
     .fini = teardown, .timeout = 120) {
    world w;
    world_init(&w);
    th_resp r = th_auth(srv, w.token, "POST", "/v1/reports", USAGE_BODY);
    must(&r, 202, "POST");
    char id[40];
    snprintf(id, sizeof id, "%s", th_str(r.json, "id"));
    th_resp_free(&r);
    PGresult *pr = Q(w.pg,
                     "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY/MM') FROM reports "
                     "WHERE id = $1::uuid",
                     id);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s/%s", getenv("BILLING_STORAGE_DIR"), w.org_s,
             PQgetvalue(pr, 0, 0));
    PQclear(pr);

    static const char *const env[] = {"ML_TEST_REPORT_SLOW_MS=3000", "BILLING_JOB_LEASE_MS=1500",
                                      NULL};
    tw_pool *pool = tw_start(1, env);
    /* wait for the half-written temp file */
    int pdfs = 0, tmps = 0;
    for (int i = 0; i < 200 && tmps == 0; i++) {
        tw_msleep(25);
        count_files(dir, id, &pdfs, &tmps);
    }
    cr_assert_eq(tmps, 1, "a temp file while writing (dir %s)", dir);
    cr_assert_eq(pdfs, 0, "no visible file before the rename");
    pid_t kids[4];
    int n = tw_children(pool, kids, 4);
    cr_assert_eq(n, 1);
    cr_assert_eq(kill(kids[0], SIGKILL), 0);
    tw_msleep(200);
    count_files(dir, id, &pdfs, &tmps);
    cr_expect_eq(pdfs, 0, "the killed run left no visible file");
    cr_expect_eq(tmps, 1, "only its partial temp file");

    json_t *rep = wait_done(&w, id, 60);
    cr_assert_str_eq(th_str(rep, "status"), "succeeded");
    cr_expect_eq(json_integer_value(json_object_get(rep, "attempts")), 2, "retried once");
    count_files(dir, id, &pdfs, &tmps);
    cr_expect_eq(pdfs, 1, "one file");
    cr_expect_eq(tmps, 0, "no temp file left");
    /* the stored file is whole: its hash is the row's, pdftotext reads it */
    char path[700];
    snprintf(path, sizeof path, "%s/%s.pdf", dir, id);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s", path);
    struct stat sb;
    cr_assert_eq(fstat(fileno(f), &sb), 0);
    char *bytes = malloc((size_t)sb.st_size);
    cr_assert_eq(fread(bytes, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
    fclose(f);
    char hex[65];
    sha256_hex(bytes, (size_t)sb.st_size, hex);
    cr_expect_str_eq(hex, th_str(rep, "sha256"));
    cr_expect_eq((long long)sb.st_size, json_integer_value(json_object_get(rep, "size_bytes")));
    char *text = pdf_text(bytes, (size_t)sb.st_size);
    cr_expect(strstr(text, "1234.5"), "the retried file is complete:\n%s", text);
    free(text);
    free(bytes);
    char dl[128];
    snprintf(dl, sizeof dl, "/v1/reports/%s/download", id);
    th_resp d = download_checked(&w, dl, rep, "usage-2026-10-01-2026-10-31.pdf");
    th_resp_free(&d);
    json_decref(rep);
    cr_expect_eq(tw_stop(pool, 15000), 0);
    world_free(&w);
}

/* ---- bad requests; long polls end with the client and with the server ------- */

static const struct {
    char body[200];
    char field[24];
} k_bad[] = {
    {"{}", "kind"},
    {"{\"kind\":\"pdf\"}", "kind"},
    {"{\"kind\":\"usage\",\"customer_id\":\"zh\",\"to\":\"2026-11-01\"}", "from"},
    {"{\"kind\":\"usage\",\"customer_id\":\"zh\",\"from\":\"2026-11-01\",\"to\":\"2026-10-01\"}",
     "to"},
    {"{\"kind\":\"usage\",\"customer_id\":\"zh\",\"from\":\"2025-01-01\",\"to\":\"2026-01-03\"}",
     "to"},
    {"{\"kind\":\"usage\",\"customer_id\":\"zh\",\"from\":\"2026-10-01T00:30:00Z\","
     "\"to\":\"2026-11-01\"}",
     "from"},
    {"{\"kind\":\"usage\",\"customer_id\":\"nobody\",\"from\":\"2026-10-01\",\"to\":\"2026-11-"
     "01\"}",
     "customer_id"},
    {"{\"kind\":\"usage\",\"invoice_id\":\"x\",\"customer_id\":\"zh\",\"from\":\"2026-10-01\","
     "\"to\":\"2026-11-01\"}",
     "invoice_id"},
    {"{\"kind\":\"invoice\"}", "invoice_id"},
    {"{\"kind\":\"invoice\",\"invoice_id\":\"00000000-0000-4000-8000-000000000000\"}",
     "invoice_id"},
    {"{\"kind\":\"invoice\",\"invoice_id\":\"00000000-0000-4000-8000-000000000000\","
     "\"from\":\"2026-10-01\"}",
     "from"},
    {"{\"kind\":\"usage\",\"customer_id\":\"zh\",\"from\":\"2026-10-01\",\"to\":\"2026-11-01\","
     "\"color\":\"red\"}",
     "color"},
};

typedef struct poller {
    world *w;
    char path[160];
    long status;
    double took;
} poller;

static void *poll_main(void *arg) {
    poller *p = arg;
    double t0 = mono_s();
    th_resp r = th_auth(srv, p->w->token, "GET", p->path, NULL);
    p->took = mono_s() - t0;
    p->status = r.status;
    th_resp_free(&r);
    return NULL;
}

Test(reports, bad_requests_and_long_polls_that_end_with_the_client_or_the_server, .init = setup,
     .fini = teardown, .timeout = 120) {
    world w;
    world_init(&w);
    for (size_t i = 0; i < ML_ARRAY_LEN(k_bad); i++) {
        th_resp r = th_auth(srv, w.token, "POST", "/v1/reports", k_bad[i].body);
        cr_expect_eq(r.status, 422, "%s: %ld %s", k_bad[i].body, r.status, r.body);
        cr_expect(th_has_field_error(&r, k_bad[i].field), "%s names %s: %s", k_bad[i].body,
                  k_bad[i].field, r.body);
        th_resp_free(&r);
    }
    th_resp r = th_auth(srv, w.token, "POST", "/v1/reports", USAGE_BODY);
    must(&r, 202, "POST");
    char id[40], path[160];
    snprintf(id, sizeof id, "%s", th_str(r.json, "id"));
    th_resp_free(&r);
    static const char *const bad_wait[] = {"31", "-1", "abc", "", "2.5"};
    for (size_t i = 0; i < ML_ARRAY_LEN(bad_wait); i++) {
        snprintf(path, sizeof path, "/v1/reports/%s?wait=%s", id, bad_wait[i]);
        r = th_auth(srv, w.token, "GET", path, NULL);
        cr_expect_eq(r.status, 422, "wait=%s: %ld", bad_wait[i], r.status);
        cr_expect(th_has_field_error(&r, "wait"), "%s", r.body);
        th_resp_free(&r);
    }
    r = th_auth(srv, w.token, "GET", "/v1/reports?status=done", NULL);
    cr_expect_eq(r.status, 422, "status filter: %ld", r.status);
    th_resp_free(&r);
    r = th_auth(srv, w.token, "GET", "/v1/reports/not-a-uuid", NULL);
    cr_expect_eq(r.status, 404);
    th_resp_free(&r);

    /* a client that gives up: its long poll is dropped at once, not after 20 s */
    snprintf(path, sizeof path, "%s/v1/reports/%s?wait=20", srv->base, id);
    char h_auth[200];
    snprintf(h_auth, sizeof h_auth, "Authorization: Bearer %s", w.token);
    CURL *c = curl_easy_init();
    struct curl_slist *hl = curl_slist_append(NULL, h_auth);
    th_body b = {0};
    curl_easy_setopt(c, CURLOPT_URL, path);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 700L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_curl_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    cr_expect_eq(curl_easy_perform(c), CURLE_OPERATION_TIMEDOUT, "the client gave up");
    curl_easy_cleanup(c);
    curl_slist_free_all(hl);
    free(b.p);
    static const char *const gone[] = {"\"route\":\"reports_get\"", "\"client\":\"gone\"", NULL};
    int seen = 0;
    for (int i = 0; i < 40 && !seen; i++) {
        tw_msleep(50);
        seen = th_count_lines(srv->log_path, gone);
    }
    cr_expect_eq(seen, 1, "the abandoned long poll ended within 2 s (log %s)", srv->log_path);

    /* SIGTERM while a long poll waits: it gets its answer, the drain is quick */
    poller p = {.w = &w};
    snprintf(p.path, sizeof p.path, "/v1/reports/%s?wait=25", id);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, poll_main, &p), 0);
    tw_msleep(600);
    double t0 = mono_s();
    int rc = th_stop(srv);
    double stop = mono_s() - t0;
    srv = NULL;
    pthread_join(th, NULL);
    cr_expect_eq(rc, 0, "clean exit");
    cr_expect_lt(stop, 5.0, "SIGTERM with a long poll pending took %.2f s", stop);
    cr_expect_eq(p.status, 200, "the long poll got its answer: %ld", p.status);
    cr_expect_lt(p.took, 6.0, "before its 25 s (%.2f s)", p.took);
    world_free(&w);
}

/* ---- the organization's template override ------------------------------------ */

static const struct {
    const char *body, *field;
} k_bad_tpl[] = {
    {"{\"template\":{\"page\":{\"margins\":{\"left\":500}}}}", "template.page.margins.left"},
    {"{\"template\":{\"brand_color\":\"red\"}}", "template.brand_color"},
    {"{\"template\":{\"colour\":\"#112233\"}}", "template.colour"},
    {"{\"template\":{\"columns\":[\"quantity\"]}}", "template.columns"},
    {"{\"template\":\"not an object\"}", "template"},
    {"{}", "template"},
};

Test(reports, an_organization_template_is_validated_stored_and_used, .init = setup,
     .fini = teardown, .timeout = 120) {
    world w;
    world_init(&w);
    th_resp r = th_auth(srv, w.token, "GET", "/v1/organization/template", NULL);
    must(&r, 200, "get template");
    cr_expect(json_is_null(th_get(r.json, "template")), "no override yet: %s", r.body);
    cr_expect(json_is_object(th_get(r.json, "default.page")), "the default is shown: %s", r.body);
    th_resp_free(&r);

    for (size_t i = 0; i < ML_ARRAY_LEN(k_bad_tpl); i++) {
        r = th_auth(srv, w.token, "PUT", "/v1/organization/template", k_bad_tpl[i].body);
        cr_expect_eq(r.status, 422, "%s -> %ld %s", k_bad_tpl[i].body, r.status, r.body);
        cr_expect(th_has_field_error(&r, k_bad_tpl[i].field), "%s names %s: %s", k_bad_tpl[i].body,
                  k_bad_tpl[i].field, r.body);
        th_resp_free(&r);
    }
    PGresult *pr = Q(w.pg, "SELECT template IS NULL FROM organizations WHERE id = $1", w.org_s);
    cr_expect_str_eq(PQgetvalue(pr, 0, 0), "t", "nothing stored by a refused PUT");
    PQclear(pr);

    /* viewers read but may not write */
    char viewer[128];
    th_user_with_role(srv, w.token, "viewer", viewer);
    r = th_auth(srv, viewer, "PUT", "/v1/organization/template", "{\"template\":null}");
    cr_expect_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);

    r = th_auth(srv, w.token, "PUT", "/v1/organization/template",
                "{\"template\":{\"seller\":{\"name\":\"Höfe Billing AG\",\"address\":"
                "[\"Seestrasse 9\",\"8002 Zürich\"]},\"footer\":\"Payable within 30 days "
                "— thank you\"}}");
    must(&r, 200, "put template");
    cr_expect_str_eq(th_str(r.json, "template.seller.name"), "Höfe Billing AG");
    th_resp_free(&r);
    r = th_auth(srv, viewer, "GET", "/v1/organization/template", NULL);
    must(&r, 200, "a viewer reads it");
    cr_expect_str_eq(th_str(r.json, "template.footer"), "Payable within 30 days — thank you");
    th_resp_free(&r);

    /* the next render uses it */
    tw_pool *pool = tw_start(1, NULL);
    char inv[40], body[160];
    october_invoice(&w, inv);
    snprintf(body, sizeof body, "{\"kind\":\"invoice\",\"invoice_id\":\"%s\"}", inv);
    r = th_auth(srv, w.token, "POST", "/v1/reports", body);
    must(&r, 202, "invoice report");
    char rid[40], dl[128];
    snprintf(rid, sizeof rid, "%s", th_str(r.json, "id"));
    th_resp_free(&r);
    json_t *rep = wait_done(&w, rid, 60);
    cr_assert_str_eq(th_str(rep, "status"), "succeeded", "%s", json_dumps(rep, 0));
    json_decref(rep);
    snprintf(dl, sizeof dl, "/v1/reports/%s/download", rid);
    r = th_auth(srv, w.token, "GET", dl, NULL);
    must(&r, 200, "download");
    char *text = pdf_text(r.body, r.body_len);
    cr_expect(strstr(text, "Höfe Billing AG") != NULL, "the seller of the override: %s", text);
    cr_expect(strstr(text, "Seestrasse 9") != NULL, "its address");
    cr_expect(strstr(text, "Payable within 30 days") != NULL, "its footer");
    free(text);
    th_resp_free(&r);

    /* null removes it */
    r = th_auth(srv, w.token, "PUT", "/v1/organization/template", "{\"template\":null}");
    must(&r, 200, "drop template");
    cr_expect(json_is_null(th_get(r.json, "template")));
    th_resp_free(&r);
    pr = Q(w.pg, "SELECT template IS NULL FROM organizations WHERE id = $1", w.org_s);
    cr_expect_str_eq(PQgetvalue(pr, 0, 0), "t");
    PQclear(pr);
    cr_expect_eq(tw_stop(pool, 15000), 0);
    world_free(&w);
}
