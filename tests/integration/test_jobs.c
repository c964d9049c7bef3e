/* test_jobs.c — billing-worker runs jobs end to end: every built-in type
 * through real worker processes against real Redis and PostgreSQL; retries
 * then dead; permanent errors dead at once; the table's attempt cap; bad
 * payloads; handler timeouts that kill the process and are retried by
 * another; SIGTERM that drains the jobs in hand and reserves no more. */
#include "fmacros.h"
#include "jq.h"
#include "th.h"
#include "tw.h"
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

static long long jint(const json_t *j, const char *k) {
    return json_integer_value(json_object_get(j, k));
}
static const char *jstr(const json_t *j, const char *k) {
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

/* Number of "job" log lines for id with the given outcome. */
static int job_lines(const char *log, const char *id, const char *outcome) {
    char a[64], b[64];
    snprintf(a, sizeof a, "\"id\":\"%s\"", id);
    snprintf(b, sizeof b, "\"outcome\":\"%s\"", outcome);
    const char *const needles[] = {"\"msg\":\"job\"", a, b, NULL};
    return th_count_lines(log, needles);
}

Test(jobs, every_builtin_type_end_to_end, .fini = tw_cleanup, .timeout = 60) {
    jq *q = tw_jq();
    PGconn *pg = th_pg();
    char u[32], key[96], pay[256], st[32];
    th_unique(u);
    snprintf(key, sizeof key, "e2e-%s", u);
    tw_pool *p = tw_start(2, NULL);

    enum {
        NOOP,
        SLEEP,
        SLEEP_EFFECT,
        FLAKY,
        FAIL_MAX2,
        FAIL_CAP,
        PERMANENT,
        BAD_FIELD,
        NOT_JSON,
        N
    };
    char id[N][JQ_ID_MAX];
    tw_enqueue(q, "noop", "{}", 0, id[NOOP]);
    tw_enqueue(q, "sleep", "{\"ms\":50}", 0, id[SLEEP]);
    snprintf(pay, sizeof pay, "{\"ms\":1200,\"effect\":\"%s\"}", key);
    tw_enqueue(q, "sleep", pay, 0, id[SLEEP_EFFECT]);
    tw_enqueue(q, "fail", "{\"times\":2}", 5, id[FLAKY]);
    tw_enqueue(q, "fail", "{\"times\":10}", 2, id[FAIL_MAX2]);
    tw_enqueue(q, "fail", "{\"times\":10}", 5, id[FAIL_CAP]);
    tw_enqueue(q, "fail", "{\"times\":10,\"permanent\":true}", 5, id[PERMANENT]);
    tw_enqueue(q, "sleep", "{\"ms\":1,\"color\":\"red\"}", 5, id[BAD_FIELD]);
    tw_enqueue(q, "noop", "this is not json", 5, id[NOT_JSON]);

    /* noop: {} */
    cr_expect_str_eq(tw_wait_final(q, id[NOOP], 10000, st), "succeeded");
    json_t *j = tw_job(q, id[NOOP]);
    cr_expect(json_is_object(json_object_get(j, "result")) &&
                  json_object_size(json_object_get(j, "result")) == 0,
              "noop answers {}");
    cr_expect_eq(jint(j, "attempts"), 1);
    cr_expect_eq(jint(j, "progress"), 100);
    json_decref(j);

    /* sleep without an effect touches no table */
    cr_expect_str_eq(tw_wait_final(q, id[SLEEP], 10000, st), "succeeded");
    j = tw_job(q, id[SLEEP]);
    cr_expect_eq(jint(json_object_get(j, "result"), "slept_ms"), 50);
    cr_expect_eq(tw_pg_int(pg, "SELECT count(*) FROM job_runs WHERE job_id = $1", id[SLEEP], NULL),
                 0);
    json_decref(j);

    /* sleep with an effect: one effect, one run, progress reported */
    cr_expect_str_eq(tw_wait_final(q, id[SLEEP_EFFECT], 10000, st), "succeeded");
    j = tw_job(q, id[SLEEP_EFFECT]);
    json_t *res = json_object_get(j, "result");
    cr_expect_eq(jint(res, "slept_ms"), 1200);
    cr_expect_str_eq(jstr(res, "effect"), key);
    cr_expect(json_is_true(json_object_get(res, "first")), "the first run records the effect");
    cr_expect_str_eq(jstr(j, "progress_msg"), "slept 1200 of 1200 ms");
    json_decref(j);
    cr_expect_eq(tw_pg_int(pg, "SELECT count(*) FROM job_effects WHERE key = $1 AND job_id = $2",
                           key, id[SLEEP_EFFECT]),
                 1);
    cr_expect_eq(
        tw_pg_int(pg, "SELECT count(*) FROM job_runs WHERE key = $1 AND attempt = 1", key, NULL),
        1);

    /* fail twice, then succeed on the third attempt (backoff ~0.5-1 s, 1-2 s) */
    cr_expect_str_eq(tw_wait_final(q, id[FLAKY], 15000, st), "succeeded");
    j = tw_job(q, id[FLAKY]);
    cr_expect_eq(jint(j, "attempts"), 3);
    cr_expect_eq(jint(json_object_get(j, "result"), "attempts"), 3);
    json_decref(j);
    cr_expect_eq(job_lines(p->log, id[FLAKY], "retry"), 2, "two retries logged");
    cr_expect_eq(job_lines(p->log, id[FLAKY], "ok"), 1);

    /* out of attempts: the job's own limit (2) ... */
    cr_expect_str_eq(tw_wait_final(q, id[FAIL_MAX2], 15000, st), "dead");
    j = tw_job(q, id[FAIL_MAX2]);
    cr_expect_eq(jint(j, "attempts"), 2);
    cr_expect(strstr(jstr(j, "error"), "failing on purpose"), "%s", jstr(j, "error"));
    json_decref(j);
    cr_expect_eq(job_lines(p->log, id[FAIL_MAX2], "retry"), 1);
    cr_expect_eq(job_lines(p->log, id[FAIL_MAX2], "dead"), 1);
    /* ... or the table's cap for the type (fail: 3) below the job's 5 */
    cr_expect_str_eq(tw_wait_final(q, id[FAIL_CAP], 15000, st), "dead");
    j = tw_job(q, id[FAIL_CAP]);
    cr_expect_eq(jint(j, "attempts"), 3, "the handler table caps attempts");
    json_decref(j);

    /* permanent, unknown field, not JSON: dead on the first attempt */
    int dead_at_once[] = {PERMANENT, BAD_FIELD, NOT_JSON};
    const char *why[] = {"failing on purpose", "unknown field \"color\"", "not a JSON object"};
    for (int i = 0; i < 3; i++) {
        const char *jid = id[dead_at_once[i]];
        cr_expect_str_eq(tw_wait_final(q, jid, 10000, st), "dead", "job %s", jid);
        j = tw_job(q, jid);
        cr_expect_eq(jint(j, "attempts"), 1, "job %s dies at once", jid);
        cr_expect(strstr(jstr(j, "error"), why[i]), "%s", jstr(j, "error"));
        json_decref(j);
        cr_expect_eq(job_lines(p->log, jid, "dead"), 1);
    }

    /* the log line carries the fields the issue asks for */
    char a[64];
    snprintf(a, sizeof a, "\"id\":\"%s\"", id[SLEEP_EFFECT]);
    const char *const fields[] = {"\"msg\":\"job\"",    a,
                                  "\"type\":\"sleep\"", "\"attempt\":1",
                                  "\"duration_us\":",   "\"outcome\":\"ok\"",
                                  "\"worker\":\"",      NULL};
    cr_expect_eq(th_count_lines(p->log, fields), 1, "one complete job line (log %s)", p->log);

    cr_expect_eq(tw_stop(p, 15000), 0);
    PQfinish(pg);
    jq_close(q);
}

Test(jobs, a_timeout_kills_the_process_and_another_retries, .fini = tw_cleanup, .timeout = 60) {
    jq *q = tw_jq();
    PGconn *pg = th_pg();
    char u[32], key[96], pay[256], st[32], id[JQ_ID_MAX], id2[JQ_ID_MAX];
    th_unique(u);
    snprintf(key, sizeof key, "timeout-%s", u);
    static const char *const env[] = {"BILLING_JOB_TIMEOUT_MS=800", NULL};
    tw_pool *p = tw_start(2, env);

    snprintf(pay, sizeof pay, "{\"ms\":4000,\"effect\":\"%s\"}", key);
    tw_enqueue(q, "sleep", pay, 2, id);
    cr_assert_str_eq(tw_wait_final(q, id, 20000, st), "dead");
    json_t *j = tw_job(q, id);
    cr_expect_eq(jint(j, "attempts"), 2);
    cr_expect_str_eq(jstr(j, "error"), "timeout after 800 ms");
    json_decref(j);
    cr_expect_eq(tw_pg_int(pg, "SELECT count(*) FROM job_runs WHERE key = $1", key, NULL), 2,
                 "both attempts ran");
    cr_expect_eq(
        tw_pg_int(pg, "SELECT count(DISTINCT worker) FROM job_runs WHERE key = $1", key, NULL), 2,
        "the retry ran in another process");
    cr_expect_eq(job_lines(p->log, id, "retry"), 1);
    cr_expect_eq(job_lines(p->log, id, "dead"), 1);
    static const char *const exited[] = {"\"msg\":\"worker exited; restarting\"", "\"exit_code\":3",
                                         NULL};
    cr_expect_eq(tw_wait_lines(p->log, exited, 2, 5000), 2,
                 "each timeout ended its process with exit code 3");

    /* the pool still works: restarted processes take new jobs */
    tw_enqueue(q, "noop", "{}", 0, id2);
    cr_expect_str_eq(tw_wait_final(q, id2, 15000, st), "succeeded");
    cr_expect_eq(tw_stop(p, 15000), 0);
    PQfinish(pg);
    jq_close(q);
}

Test(jobs, sigterm_finishes_the_jobs_in_hand_and_takes_no_more, .fini = tw_cleanup, .timeout = 60) {
    jq *q = tw_jq();
    PGconn *pg = th_pg();
    char u[32], prefix[64], pay[256], st[32];
    th_unique(u);
    snprintf(prefix, sizeof prefix, "drain-%s-", u);
    static const char *const env[] = {"BILLING_SHUTDOWN_GRACE_S=20", NULL};
    tw_pool *p = tw_start(2, env);

    /* 2 processes hold at most 2 x 4 (the sleep type's batch): some stay queued */
    enum { N = 12 };
    char id[N][JQ_ID_MAX];
    for (int i = 0; i < N; i++) {
        snprintf(pay, sizeof pay, "{\"ms\":1000,\"effect\":\"%s%d\"}", prefix, i);
        tw_enqueue(q, "sleep", pay, 0, id[i]);
    }
    long long runs = 0;
    for (int t = 0; t < 10000 && runs < 2; t += 20) {
        runs =
            tw_pg_int(pg, "SELECT count(*) FROM job_runs WHERE starts_with(key, $1)", prefix, NULL);
        tw_msleep(20);
    }
    cr_assert_geq(runs, 2, "jobs are in flight");

    char log[256];
    snprintf(log, sizeof log, "%s", p->log);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_expect_eq(tw_stop(p, 25000), 0, "the supervisor exits 0 after SIGTERM");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_lt(secs, 15.0, "stopped within the grace period, no SIGKILL (%.1f s)", secs);
    static const char *const killed[] = {"did not stop in time", NULL};
    static const char *const stopped[] = {"\"msg\":\"worker stopped\"", NULL};
    cr_expect_eq(th_count_lines(log, killed), 0, "no worker was killed (log %s)", log);
    cr_expect_eq(th_count_lines(log, stopped), 2, "both workers stopped by themselves");

    int succeeded = 0, queued = 0;
    for (int i = 0; i < N; i++) {
        json_t *j = tw_job(q, id[i]);
        const char *s = jstr(j, "state");
        char key[96];
        snprintf(key, sizeof key, "%s%d", prefix, i);
        long long r = tw_pg_int(pg, "SELECT count(*) FROM job_runs WHERE key = $1", key, NULL);
        if (!strcmp(s, "succeeded")) {
            succeeded++;
            cr_expect_eq(r, 1, "job %s ran once and was acked", id[i]);
        } else if (!strcmp(s, "queued")) {
            queued++;
            cr_expect_eq(r, 0, "job %s was never started", id[i]);
        } else {
            cr_expect(false, "job %s is %s: no job is left active or failed", id[i], s);
        }
        json_decref(j);
    }
    cr_expect_geq(succeeded, 2, "the jobs in flight were finished and acked");
    cr_expect_gt(queued, 0, "after SIGTERM no more jobs were reserved");
    cr_expect_eq(succeeded + queued, N);

    /* the next start takes the queued rest */
    tw_pool *p2 = tw_start(2, env);
    cr_expect_eq(tw_wait_all_final(q, id, N, 20000), N);
    for (int i = 0; i < N; i++) cr_expect_str_eq(tw_wait_final(q, id[i], 0, st), "succeeded");
    cr_expect_eq(
        tw_pg_int(pg, "SELECT count(*) FROM job_effects WHERE starts_with(key, $1)", prefix, NULL),
        N);
    cr_expect_eq(tw_stop(p2, 25000), 0);
    PQfinish(pg);
    jq_close(q);
}
