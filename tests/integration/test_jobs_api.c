/* test_jobs_api.c — GET /v1/jobs/{id}, GET /v1/admin/queues,
 * POST /v1/admin/jobs/{id}/retry and the queue series of /metrics, over real
 * HTTP against a real billing-api and Redis.
 *
 * The test is its own fake worker: it enqueues jobs straight into the queue
 * with jq (org = the id of a signed-up organization, from GET /v1/me),
 * reserves, reports progress, acks and fails them, and checks after each step
 * what the API shows.  Times are checked exactly: the API's RFC 3339 string
 * must be the queue's millisecond value (read back with jq_get) formatted by
 * ts_format, and that value must lie between the test's clock before and
 * after the step.  Each test uses job types of its own, so exact counts hold
 * whatever else is in the queue.
 */
#include "fmacros.h"
#include "jq.h"
#include "th.h"
#include "ts.h"
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static th_server *srv;

static void setup(void) { srv = th_start(NULL); }
static void teardown(void) { cr_expect_eq(th_stop(srv), 0, "billing-api must exit 0 on SIGTERM"); }

TestSuite(jobs, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ------------------------------------------------------------ */

static void msleep(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int64_t now_ms(void) { return ts_now() / 1000; }

static jq *open_q(void) {
    char err[256];
    const char *url = getenv("BILLING_REDIS_URL");
    cr_assert(url, "run through scripts/test");
    jq *q = jq_open(url, err, sizeof err);
    cr_assert(q, "%s", err);
    return q;
}

static const char *utype(char buf[64], const char *name) {
    char u[32];
    snprintf(buf, 64, "t.api.%s.%s", name, th_unique(u));
    return buf;
}

typedef struct org {
    char owner[64], slug[64];
    long long id;
} org;

static void make_org(org *o) {
    th_signup(srv, o->owner, o->slug, NULL);
    th_resp r = th_auth(srv, o->owner, "GET", "/v1/me", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    o->id = json_integer_value(th_get(r.json, "organization.id"));
    cr_assert_gt(o->id, 0, "no organization.id in %s", r.body);
    th_resp_free(&r);
}

/* A platform admin (billing-api create-admin) logged in; token out. */
static void make_admin(char token[128]) {
    char u[32], email[96], cmd[512], body[256];
    th_unique(u);
    snprintf(email, sizeof email, "jobs-admin-%s@example.test", u);
    snprintf(cmd, sizeof cmd, "echo '%s' | %s create-admin --email %s --password-stdin >/dev/null",
             TH_PASSWORD, th_api_bin(), email);
    cr_assert_eq(system(cmd), 0, "create-admin");
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, TH_PASSWORD);
    th_resp r = th_req(srv, "POST", "/v1/sessions", NULL, body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(token, 128, "%s", th_str(r.json, "token"));
    th_resp_free(&r);
}

static void make_key(const char *owner, const char *scope, char key[128]) {
    char body[128];
    snprintf(body, sizeof body, "{\"name\":\"%s key\",\"scopes\":[\"%s\"]}", scope, scope);
    th_resp r = th_auth(srv, owner, "POST", "/v1/api-keys", body);
    cr_assert_eq(r.status, 201, "create key: %ld %s", r.status, r.body);
    snprintf(key, 128, "%s", th_str(r.json, "key"));
    th_resp_free(&r);
}

static void enqueue(jq *q, const char *type, long long org_id, const char *payload,
                    int max_attempts, int64_t delay_ms, char id[JQ_ID_MAX]) {
    char err[256];
    jq_enqueue_opts o = {.max_attempts = max_attempts, .delay_ms = delay_ms};
    cr_assert_eq(jq_enqueue(q, type, org_id, payload, &o, id, NULL, err, sizeof err), JQ_OK, "%s",
                 err);
}

/* Reserves exactly the job want of type as worker. */
static void reserve(jq *q, const char *type, const char *worker, const char *want) {
    char err[256];
    const char *types[] = {type};
    jq_job j;
    cr_assert_eq(jq_reserve(q, types, 1, worker, &j, 1, err, sizeof err), 1, "reserve %s: %s", want,
                 err);
    cr_assert_str_eq(j.id, want);
    jq_job_clear(&j);
}

/* The queue's own view of a job (jq_get). */
static json_t *raw_job(jq *q, const char *id) {
    char *s = NULL, err[256];
    cr_assert_eq(jq_get(q, id, &s, err, sizeof err), JQ_OK, "jq_get %s: %s", id, err);
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    cr_assert(json_is_object(j));
    return j;
}

static th_resp get_job(const char *token, const char *id) {
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    return th_auth(srv, token, "GET", path, NULL);
}

/* GET the job as token; 200 expected; the reply's JSON (caller decrefs). */
static json_t *job_ok(const char *token, const char *id) {
    th_resp r = get_job(token, id);
    cr_assert_eq(r.status, 200, "GET /v1/jobs/%s: %ld %s", id, r.status, r.body);
    json_t *j = json_incref(r.json);
    th_resp_free(&r);
    cr_assert(json_is_object(j));
    return j;
}

/* api[key] is null when the queue has no such time, else the queue's
 * milliseconds formatted as RFC 3339, within [lo, hi] (ms) when lo > 0. */
static void expect_time(const json_t *api, const json_t *raw, const char *key, bool set, int64_t lo,
                        int64_t hi) {
    json_t *v = json_object_get(api, key);
    cr_assert_not_null(v, "reply lacks %s", key);
    if (!set) {
        cr_expect(json_is_null(v), "%s must be null, is %s", key,
                  json_is_string(v) ? json_string_value(v) : "not a string");
        return;
    }
    cr_assert(json_is_string(v), "%s must be an RFC 3339 string", key);
    json_int_t ms = json_integer_value(json_object_get(raw, key));
    cr_assert_gt(ms, 0, "the queue has no %s", key);
    char want[TS_FMT_MAX];
    cr_assert_gt(ts_format((int64_t)ms * 1000, want, sizeof want), 0);
    cr_expect_str_eq(json_string_value(v), want, "%s", key);
    const char *s = json_string_value(v);
    cr_expect_eq(s[strlen(s) - 1], 'Z', "%s is not UTC: %s", key, s);
    int64_t us;
    cr_assert_eq(ts_parse(s, strlen(s), &us), 0, "%s does not parse: %s", key, s);
    cr_expect_eq(us, (int64_t)ms * 1000, "%s round trip", key);
    if (lo > 0)
        cr_expect(ms >= lo && ms <= hi, "%s = %lld not within [%lld, %lld]", key, (long long)ms,
                  (long long)lo, (long long)hi);
}

static void expect_null(const json_t *j, const char *key) {
    json_t *v = json_object_get(j, key);
    cr_expect(v && json_is_null(v), "%s must be present and null", key);
}

/* The fields of the contract and nothing internal. */
static void expect_shape(const json_t *j) {
    static const char *const keys[] = {
        "id",    "type",   "state",      "progress",   "progress_msg", "attempts", "max_attempts",
        "error", "result", "created_at", "started_at", "finished_at",  "run_at"};
    for (size_t i = 0; i < ML_ARRAY_LEN(keys); i++)
        cr_expect_not_null(json_object_get(j, keys[i]), "job reply lacks %s", keys[i]);
    cr_expect_eq(json_object_size(j), ML_ARRAY_LEN(keys), "job reply has extra fields");
    static const char *const internal[] = {"payload", "worker", "lease_until", "dedupe", "org"};
    for (size_t i = 0; i < ML_ARRAY_LEN(internal); i++)
        cr_expect_null(json_object_get(j, internal[i]), "job reply shows %s", internal[i]);
}

static void expect_404(th_resp *r, const char *what) {
    cr_expect_eq(r->status, 404, "%s: %ld %s", what, r->status, r->body);
    cr_expect_str_eq(th_err_code(r), "not_found", "%s", what);
}

/* ---- job life cycle ------------------------------------------------------ */

Test(jobs, queued_active_with_progress_succeeded_with_result) {
    org a;
    make_org(&a);
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], err[256];
    utype(t, "life");
    int64_t t0 = now_ms();
    enqueue(q, t, a.id, "{\"secret\":\"payload-marker-7f3a\"}", 3, 0, id);
    int64_t t1 = now_ms();

    /* queued */
    th_resp r = get_job(a.owner, id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.body, "payload-marker-7f3a") == NULL, "the payload leaked: %s", r.body);
    th_resp_free(&r);
    json_t *j = job_ok(a.owner, id), *raw = raw_job(q, id);
    expect_shape(j);
    cr_expect_str_eq(th_str(j, "id"), id);
    cr_expect_str_eq(th_str(j, "type"), t);
    cr_expect_str_eq(th_str(j, "state"), "queued");
    cr_expect_eq(json_integer_value(th_get(j, "progress")), 0);
    cr_expect(json_is_integer(th_get(j, "progress")));
    cr_expect_eq(json_integer_value(th_get(j, "attempts")), 0);
    cr_expect(json_is_integer(th_get(j, "attempts")));
    cr_expect_eq(json_integer_value(th_get(j, "max_attempts")), 3);
    expect_null(j, "progress_msg");
    expect_null(j, "error");
    expect_null(j, "result");
    expect_time(j, raw, "created_at", true, t0, t1);
    expect_time(j, raw, "run_at", true, t0, t1);
    cr_expect_str_eq(th_str(j, "run_at"), th_str(j, "created_at"));
    expect_time(j, raw, "started_at", false, 0, 0);
    expect_time(j, raw, "finished_at", false, 0, 0);
    json_decref(j);
    json_decref(raw);

    /* active, with progress */
    int64_t t2 = now_ms();
    reserve(q, t, "fake-worker", id);
    int64_t t3 = now_ms();
    j = job_ok(a.owner, id);
    raw = raw_job(q, id);
    cr_expect_str_eq(th_str(j, "state"), "active");
    cr_expect_eq(json_integer_value(th_get(j, "attempts")), 1);
    cr_expect_eq(json_integer_value(th_get(j, "progress")), 0);
    expect_time(j, raw, "started_at", true, t2, t3);
    expect_time(j, raw, "finished_at", false, 0, 0);
    char *dump = json_dumps(j, 0);
    cr_assert_not_null(dump);
    cr_expect(strstr(dump, "fake-worker") == NULL, "the worker name leaked: %s", dump);
    free(dump);
    json_decref(j);
    json_decref(raw);
    cr_assert_eq(jq_progress(q, id, "fake-worker", 40, "rows 400/1000", err, sizeof err), JQ_OK,
                 "%s", err);
    j = job_ok(a.owner, id);
    cr_expect_str_eq(th_str(j, "state"), "active");
    cr_expect_eq(json_integer_value(th_get(j, "progress")), 40);
    cr_expect_str_eq(th_str(j, "progress_msg"), "rows 400/1000");
    json_decref(j);

    /* succeeded, with its result */
    int64_t t4 = now_ms();
    cr_assert_eq(
        jq_ack(q, id, "fake-worker", "{\"rows\":1000,\"file\":\"r.pdf\"}", err, sizeof err), JQ_OK,
        "%s", err);
    int64_t t5 = now_ms();
    j = job_ok(a.owner, id);
    raw = raw_job(q, id);
    expect_shape(j);
    cr_expect_str_eq(th_str(j, "state"), "succeeded");
    cr_expect_eq(json_integer_value(th_get(j, "progress")), 100);
    cr_expect_eq(json_integer_value(th_get(j, "attempts")), 1);
    cr_expect(json_is_object(th_get(j, "result")), "result must be the JSON object itself");
    cr_expect_eq(json_integer_value(th_get(j, "result.rows")), 1000);
    cr_expect_str_eq(th_str(j, "result.file"), "r.pdf");
    expect_null(j, "error");
    expect_time(j, raw, "finished_at", true, t4, t5);
    expect_time(j, raw, "started_at", true, t2, t3);
    json_decref(j);
    json_decref(raw);

    /* every organization role and a read key see it; a usage:write key may not */
    static const char *const roles[] = {"finance", "approver", "viewer"};
    for (size_t i = 0; i < ML_ARRAY_LEN(roles); i++) {
        char tok[64];
        th_user_with_role(srv, a.owner, roles[i], tok);
        r = get_job(tok, id);
        cr_expect_eq(r.status, 200, "%s: %ld %s", roles[i], r.status, r.body);
        cr_expect_str_eq(th_str(r.json, "state"), "succeeded", "%s", roles[i]);
        th_resp_free(&r);
    }
    char key[128];
    make_key(a.owner, "read", key);
    r = get_job(key, id);
    cr_expect_eq(r.status, 200, "read key: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_str(r.json, "id"), id);
    th_resp_free(&r);
    make_key(a.owner, "usage:write", key);
    r = get_job(key, id);
    cr_expect_eq(r.status, 200, "usage:write key (it polls its usage jobs): %ld %s", r.status,
                 r.body);
    th_resp_free(&r);
    jq_close(q);
}

Test(jobs, failed_attempt_is_delayed_then_dead_then_admin_retry_requeues) {
    org a;
    make_org(&a);
    char admin[128];
    make_admin(admin);
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], err[256], path[128];
    utype(t, "fail");
    enqueue(q, t, a.id, "{}", 2, 0, id);
    snprintf(path, sizeof path, "/v1/admin/jobs/%s/retry", id);

    /* attempt 1 fails: delayed for a retry, the error shown */
    reserve(q, t, "w1", id);
    th_resp r = th_auth(srv, admin, "POST", path, NULL);
    cr_expect_eq(r.status, 409, "retry of an active job: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "conflict");
    cr_expect(strstr(th_str(r.json, "error.message"), "active") != NULL, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "error.details.0.message"), "active");
    th_resp_free(&r);
    bool dead = true;
    int64_t t0 = now_ms();
    cr_assert_eq(jq_fail(q, id, "w1", "upstream timed out", false, &dead, err, sizeof err), JQ_OK,
                 "%s", err);
    int64_t t1 = now_ms();
    cr_assert(!dead);
    json_t *j = job_ok(a.owner, id), *raw = raw_job(q, id);
    cr_expect_str_eq(th_str(j, "state"), "delayed");
    cr_expect_str_eq(th_str(j, "error"), "upstream timed out");
    cr_expect_eq(json_integer_value(th_get(j, "attempts")), 1);
    expect_time(j, raw, "finished_at", false, 0, 0);
    /* the retry is due after the first backoff: 0.5–1 s */
    expect_time(j, raw, "run_at", true, t0 + 500, t1 + 1000);
    json_decref(j);
    json_decref(raw);
    r = th_auth(srv, admin, "POST", path, NULL);
    cr_expect_eq(r.status, 409, "retry of a delayed job: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_str(r.json, "error.details.0.message"), "delayed");
    th_resp_free(&r);

    /* attempt 2 (the last) fails: dead */
    msleep(1100);
    reserve(q, t, "w2", id);
    j = job_ok(a.owner, id);
    cr_expect_str_eq(th_str(j, "state"), "active");
    cr_expect_eq(json_integer_value(th_get(j, "attempts")), 2);
    json_decref(j);
    int64_t t2 = now_ms();
    cr_assert_eq(jq_fail(q, id, "w2", "invoice 17 has no customer", false, &dead, err, sizeof err),
                 JQ_OK, "%s", err);
    int64_t t3 = now_ms();
    cr_assert(dead);
    j = job_ok(a.owner, id);
    raw = raw_job(q, id);
    expect_shape(j);
    cr_expect_str_eq(th_str(j, "state"), "dead");
    cr_expect_str_eq(th_str(j, "error"), "invoice 17 has no customer");
    cr_expect_eq(json_integer_value(th_get(j, "attempts")), 2);
    cr_expect_eq(json_integer_value(th_get(j, "max_attempts")), 2);
    expect_null(j, "result");
    expect_time(j, raw, "finished_at", true, t2, t3);
    json_decref(j);
    json_decref(raw);

    /* only a platform admin may retry it */
    r = th_auth(srv, a.owner, "POST", path, NULL);
    cr_expect_eq(r.status, 403, "owner retry: %ld %s", r.status, r.body);
    th_resp_free(&r);
    j = job_ok(a.owner, id);
    cr_expect_str_eq(th_str(j, "state"), "dead", "a refused retry revived the job");
    json_decref(j);

    /* the admin's retry: 200 with the job, queued again with fresh attempts */
    r = th_auth(srv, admin, "POST", path, NULL);
    cr_expect_eq(r.status, 200, "admin retry: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_str(r.json, "id"), id);
    cr_expect_str_eq(th_str(r.json, "state"), "queued");
    cr_expect_eq(json_integer_value(th_get(r.json, "attempts")), 0);
    expect_time(r.json, NULL, "finished_at", false, 0, 0);
    th_resp_free(&r);
    j = job_ok(a.owner, id);
    cr_expect_str_eq(th_str(j, "state"), "queued", "the owner sees it queued again");
    json_decref(j);
    /* a worker can take it again */
    reserve(q, t, "w3", id);
    cr_assert_eq(jq_ack(q, id, "w3", NULL, err, sizeof err), JQ_OK, "%s", err);
    j = job_ok(a.owner, id);
    cr_expect_str_eq(th_str(j, "state"), "succeeded");
    cr_expect(json_is_object(th_get(j, "result")) && json_object_size(th_get(j, "result")) == 0,
              "an ack without a result shows {}");
    json_decref(j);

    /* not dead → 409 naming the state; missing → 404 */
    r = th_auth(srv, admin, "POST", path, NULL);
    cr_expect_eq(r.status, 409, "retry of a succeeded job: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "conflict");
    cr_expect(strstr(th_str(r.json, "error.message"), "succeeded") != NULL, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "error.details.0.field"), "state");
    cr_expect_str_eq(th_str(r.json, "error.details.0.message"), "succeeded");
    th_resp_free(&r);
    static const char *const missing[] = {"/v1/admin/jobs/9000000000000000001/retry",
                                          "/v1/admin/jobs/abc/retry", "/v1/admin/jobs/-1/retry",
                                          "/v1/admin/jobs/1x/retry"};
    for (size_t i = 0; i < ML_ARRAY_LEN(missing); i++) {
        r = th_auth(srv, admin, "POST", missing[i], NULL);
        expect_404(&r, missing[i]);
        th_resp_free(&r);
    }
    jq_close(q);
}

/* ---- who sees which job ----------------------------------------------------- */

Test(jobs, ids_that_are_not_digits_are_404) {
    org a;
    make_org(&a);
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], path[128];
    utype(t, "ids");
    enqueue(q, t, a.id, "{}", 0, 0, id);
    const char *bad[] = {"abc", "-1", "1e3", "0x1", "%20", "9000000000000000000000000", "1.0"};
    for (size_t i = 0; i < ML_ARRAY_LEN(bad); i++) {
        snprintf(path, sizeof path, "/v1/jobs/%s", bad[i]);
        th_resp r = th_auth(srv, a.owner, "GET", path, NULL);
        expect_404(&r, path);
        th_resp_free(&r);
    }
    /* the id itself, and with a suffix, for contrast */
    snprintf(path, sizeof path, "/v1/jobs/%sx", id);
    th_resp r = th_auth(srv, a.owner, "GET", path, NULL);
    expect_404(&r, path);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    r = th_auth(srv, a.owner, "GET", path, NULL);
    cr_expect_eq(r.status, 200, "%s: %ld %s", path, r.status, r.body);
    th_resp_free(&r);
    jq_close(q);
}

Test(jobs, another_orgs_job_is_404_admins_see_every_job) {
    org a, b;
    make_org(&a);
    make_org(&b);
    char admin[128];
    make_admin(admin);
    jq *q = open_q();
    char t[64], ja[JQ_ID_MAX], jsys[JQ_ID_MAX], path[256];
    utype(t, "iso");
    enqueue(q, t, a.id, "{\"customer\":\"a-secret\"}", 0, 0, ja);
    enqueue(q, t, 0, "{}", 0, 0, jsys); /* platform work: no organization */

    th_resp none = get_job(b.owner, "9000000000000000002");
    cr_assert_eq(none.status, 404);
    th_resp r = get_job(b.owner, ja);
    expect_404(&r, "B's owner reads A's job");
    cr_expect_str_eq(r.body, none.body, "the 404 must look like a missing job's");
    cr_expect(strstr(r.body, "a-secret") == NULL);
    th_resp_free(&r);
    char bkey[128];
    make_key(b.owner, "read", bkey);
    r = get_job(bkey, ja);
    expect_404(&r, "B's read key reads A's job");
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s?org=%s", ja, a.slug);
    r = th_auth(srv, b.owner, "GET", path, NULL);
    expect_404(&r, "B's owner names A's org");
    th_resp_free(&r);
    r = get_job(a.owner, ja);
    cr_expect_eq(r.status, 200, "A reads its own job: %s", r.body);
    th_resp_free(&r);
    /* a job of no organization is no organization's */
    r = get_job(a.owner, jsys);
    expect_404(&r, "an owner reads a platform job");
    th_resp_free(&r);

    /* admins: every job without ?org; with ?org only that organization's */
    r = get_job(admin, ja);
    cr_expect_eq(r.status, 200, "admin reads A's job: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_str(r.json, "id"), ja);
    cr_expect(strstr(r.body, "a-secret") == NULL, "payloads are not shown, even to admins");
    th_resp_free(&r);
    r = get_job(admin, jsys);
    cr_expect_eq(r.status, 200, "admin reads a platform job: %ld %s", r.status, r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s?org=%s", ja, a.slug);
    r = th_auth(srv, admin, "GET", path, NULL);
    cr_expect_eq(r.status, 200, "admin ?org=A: %ld %s", r.status, r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s?org=%s", ja, b.slug);
    r = th_auth(srv, admin, "GET", path, NULL);
    expect_404(&r, "admin ?org=B reads A's job");
    th_resp_free(&r);
    th_resp_free(&none);
    jq_close(q);
}

/* ---- counts: /v1/admin/queues and /metrics --------------------------------- */

/* A type with exactly: queued 1, active 1, delayed 1, dead 1; succeeded 1,
 * failed 1, retried 0, dead 1 in total.  active_id out (to finish it later). */
static void fill_type(jq *q, const char *t, long long org_id, char active_id[JQ_ID_MAX]) {
    char ids[4][JQ_ID_MAX], delayed[JQ_ID_MAX], err[256];
    for (int i = 0; i < 4; i++) enqueue(q, t, org_id, "{}", 0, 0, ids[i]);
    enqueue(q, t, org_id, "{}", 0, 3600 * 1000, delayed);
    reserve(q, t, "w", ids[0]);
    reserve(q, t, "w", ids[1]);
    reserve(q, t, "w", ids[2]);
    cr_assert_eq(jq_ack(q, ids[0], "w", NULL, err, sizeof err), JQ_OK, "%s", err);
    bool dead = false;
    cr_assert_eq(jq_fail(q, ids[1], "w", "bad input", true, &dead, err, sizeof err), JQ_OK, "%s",
                 err);
    cr_assert(dead);
    snprintf(active_id, JQ_ID_MAX, "%s", ids[2]);
}

Test(jobs, admin_queues_counts_per_type_and_state) {
    org a;
    make_org(&a);
    char admin[128], active[JQ_ID_MAX];
    make_admin(admin);
    jq *q = open_q();
    char t[64], t2[64];
    utype(t, "counts");
    utype(t2, "other");
    fill_type(q, t, a.id, active);
    char one[JQ_ID_MAX];
    enqueue(q, t2, a.id, "{}", 0, 0, one);

    th_resp r = th_auth(srv, admin, "GET", "/v1/admin/queues", NULL);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    json_t *c = json_object_get(th_get(r.json, "data"), t);
    cr_assert(json_is_object(c), "no counts for %s in %s", t, r.body);
    static const struct {
        const char *k;
        long long v;
    } want[] = {{"queued", 1},        {"active", 1},          {"delayed", 1},
                {"dead", 1},          {"succeeded_total", 1}, {"failed_total", 1},
                {"retried_total", 0}, {"dead_total", 1}};
    for (size_t i = 0; i < ML_ARRAY_LEN(want); i++) {
        json_t *v = json_object_get(c, want[i].k);
        cr_expect(json_is_integer(v), "%s.%s missing", t, want[i].k);
        cr_expect_eq(json_integer_value(v), want[i].v, "%s.%s", t, want[i].k);
    }
    cr_expect_eq(json_integer_value(th_get(json_object_get(th_get(r.json, "data"), t2), "queued")),
                 1, "%s.queued", t2);
    th_resp_free(&r);

    /* platform admins only */
    char key[128], viewer[64];
    make_key(a.owner, "read", key);
    th_user_with_role(srv, a.owner, "viewer", viewer);
    const char *nobody[] = {a.owner, viewer, key};
    for (size_t i = 0; i < ML_ARRAY_LEN(nobody); i++) {
        r = th_auth(srv, nobody[i], "GET", "/v1/admin/queues", NULL);
        cr_expect_eq(r.status, 403, "caller %zu: %ld %s", i, r.status, r.body);
        cr_expect_str_eq(th_err_code(&r), "forbidden");
        th_resp_free(&r);
    }
    r = th_req(srv, "GET", "/v1/admin/queues", NULL, NULL);
    cr_expect_eq(r.status, 401);
    th_resp_free(&r);
    jq_close(q);
}

/* The value of the exposition line that starts with series (name{labels}),
 * or -1 if absent. */
static long long series_value(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, series, n) && p[n] == ' ') return strtoll(p + n + 1, NULL, 10);
        p = strchr(p, '\n');
        if (p) p++;
    }
    return -1;
}

/* Polls /metrics (up to 5 s) until series == want; the last value seen. */
static long long wait_series(const char *series, long long want) {
    long long v = -1;
    for (int i = 0; i < 50; i++) {
        th_resp m = th_req(srv, "GET", "/metrics", NULL, NULL);
        cr_assert_eq(m.status, 200);
        v = series_value(m.body, series);
        th_resp_free(&m);
        if (v == want) return v;
        msleep(100);
    }
    return v;
}

Test(jobs, metrics_show_queue_gauges_and_counters_after_refresh) {
    org a;
    make_org(&a);
    jq *q = open_q();
    char t[64], active[JQ_ID_MAX], err[256], s[256];
    utype(t, "prom");
    /* right after enqueueing nothing of this type can be in the snapshot yet */
    th_resp m = th_req(srv, "GET", "/metrics", NULL, NULL);
    cr_assert_eq(m.status, 200);
    cr_expect(strstr(m.body, t) == NULL, "type %s in /metrics before it existed", t);
    th_resp_free(&m);
    fill_type(q, t, a.id, active);

    snprintf(s, sizeof s, "meterline_queue_jobs{type=\"%s\",state=\"active\"}", t);
    cr_assert_eq(wait_series(s, 1), 1, "%s never became 1", s);
    m = th_req(srv, "GET", "/metrics", NULL, NULL);
    static const struct {
        const char *state;
        long long v;
    } gauges[] = {{"queued", 1}, {"active", 1}, {"delayed", 1}, {"dead", 1}};
    for (size_t i = 0; i < ML_ARRAY_LEN(gauges); i++) {
        snprintf(s, sizeof s, "meterline_queue_jobs{type=\"%s\",state=\"%s\"}", t, gauges[i].state);
        cr_expect_eq(series_value(m.body, s), gauges[i].v, "%s", s);
    }
    static const struct {
        const char *outcome;
        long long v;
    } counters[] = {{"succeeded", 1}, {"failed", 1}, {"retried", 0}, {"dead", 1}};
    for (size_t i = 0; i < ML_ARRAY_LEN(counters); i++) {
        snprintf(s, sizeof s, "meterline_queue_jobs_total{type=\"%s\",outcome=\"%s\"}", t,
                 counters[i].outcome);
        cr_expect_eq(series_value(m.body, s), counters[i].v, "%s", s);
    }
    cr_expect(strstr(m.body, "# TYPE meterline_queue_jobs gauge\n") != NULL);
    cr_expect(strstr(m.body, "# TYPE meterline_queue_jobs_total counter\n") != NULL);
    cr_expect(strstr(m.body, "\nmeterline_queue_snapshot_age_seconds ") != NULL);
    th_resp_free(&m);

    /* the snapshot follows the queue: finish the active job */
    cr_assert_eq(jq_ack(q, active, "w", NULL, err, sizeof err), JQ_OK, "%s", err);
    snprintf(s, sizeof s, "meterline_queue_jobs_total{type=\"%s\",outcome=\"succeeded\"}", t);
    cr_expect_eq(wait_series(s, 2), 2, "%s after the ack", s);
    snprintf(s, sizeof s, "meterline_queue_jobs{type=\"%s\",state=\"active\"}", t);
    cr_expect_eq(wait_series(s, 0), 0, "%s after the ack", s);
    jq_close(q);
}

/* Holds every Redis client for ms with CLIENT PAUSE from a connection of its own. */
typedef struct pause_arg {
    int ms;
    int rc;
} pause_arg;

static void *pause_main(void *arg) {
    pause_arg *p = arg;
    jq *q = open_q();
    char err[256];
    redisReply *rep = rds_cmd(jq_rds(q), err, sizeof err, "CLIENT PAUSE %d ALL", p->ms);
    p->rc = rep && rep->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (rep) freeReplyObject(rep);
    jq_close(q);
    return NULL;
}

Test(jobs, metrics_never_wait_on_redis) {
    org a;
    make_org(&a);
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], s[256];
    utype(t, "stall");
    enqueue(q, t, a.id, "{}", 0, 0, id);
    snprintf(s, sizeof s, "meterline_queue_jobs{type=\"%s\",state=\"queued\"}", t);
    cr_assert_eq(wait_series(s, 1), 1);
    jq_close(q);

    /* Redis stalls every client for 3 s: the health thread's checks hang
     * (and the snapshot is not refreshed), and /metrics must still answer at
     * once from the last snapshot */
    pause_arg pa = {3000, -1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, pause_main, &pa), 0);
    pthread_join(th, NULL);
    cr_assert_eq(pa.rc, 0, "CLIENT PAUSE failed");
    msleep(1200); /* the health thread is now stuck in a Redis call */
    int64_t t0 = ts_now();
    th_resp m = th_req(srv, "GET", "/metrics", NULL, NULL);
    int64_t took = ts_now() - t0;
    cr_expect_eq(m.status, 200);
    cr_expect_lt(took, 500000, "/metrics took %lld us while Redis stalled", (long long)took);
    cr_expect_eq(series_value(m.body, s), 1, "the last snapshot is still shown");
    /* the age says the snapshot is stale */
    static const char age_series[] = "\nmeterline_queue_snapshot_age_seconds ";
    const char *age = strstr(m.body, age_series);
    cr_assert_not_null(age);
    age += sizeof age_series - 1;
    cr_expect_gt(strtod(age, NULL), 0.9, "snapshot age during the stall: %.12s", age);
    th_resp_free(&m);
    /* and after the stall the job is still readable */
    th_resp r = get_job(a.owner, id);
    cr_expect_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
}

Test(jobs, redis_down_is_503_with_retry_after, .timeout = 120) {
    org a;
    make_org(&a);
    char admin[128];
    make_admin(admin);
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], path[128];
    utype(t, "down");
    enqueue(q, t, a.id, "{}", 0, 0, id);
    jq_close(q);
    th_resp r = get_job(a.owner, id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);

    cr_assert_eq(th_svc("redis stop"), 0, "scripts/svc redis stop");
    char jpath[128];
    snprintf(jpath, sizeof jpath, "/v1/jobs/%s", id);
    snprintf(path, sizeof path, "/v1/admin/jobs/%s/retry", id);
    const struct {
        const char *token, *method, *path;
    } calls[] = {
        {a.owner, "GET", jpath}, {admin, "GET", "/v1/admin/queues"}, {admin, "POST", path}};
    for (size_t i = 0; i < ML_ARRAY_LEN(calls); i++) {
        r = th_auth(srv, calls[i].token, calls[i].method, calls[i].path, NULL);
        cr_expect_eq(r.status, 503, "%s %s with Redis down: %ld %s", calls[i].method, calls[i].path,
                     r.status, r.body);
        cr_expect_str_eq(th_err_code(&r), "unavailable", "%s", calls[i].path);
        char ra[16];
        cr_expect(th_header(&r, "Retry-After", ra, sizeof ra) && atoi(ra) > 0, "%s: no Retry-After",
                  calls[i].path);
        th_resp_free(&r);
    }
    int64_t t0 = ts_now();
    th_resp m = th_req(srv, "GET", "/metrics", NULL, NULL);
    cr_expect_eq(m.status, 200, "/metrics with Redis down");
    cr_expect_lt(ts_now() - t0, 500000, "/metrics is slow with Redis down");
    th_resp_free(&m);

    cr_assert_eq(th_svc("redis start"), 0, "scripts/svc redis start");
    long st = 0;
    for (int i = 0; i < 50 && st != 200; i++) {
        r = get_job(a.owner, id);
        st = r.status;
        th_resp_free(&r);
        if (st != 200) msleep(100);
    }
    cr_expect_eq(st, 200, "the job is readable again after Redis came back");
}
