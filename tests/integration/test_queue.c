/* test_queue.c — the job queue (queue/jq.c + queue/lua) against a real Redis:
 * every transition, dedupe, delayed promotion, backoff bounds, dead after
 * max attempts, lease reaping, retry of dead jobs, retention expiry, stats
 * and recovery from SCRIPT FLUSH.  Each test uses its own job type. */
#include "fmacros.h"
#include "jq.h"
#include "th.h"
#include "ts.h"
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <time.h>

static void msleep(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static jq *open_q(void) {
    char err[256];
    const char *url = getenv("BILLING_REDIS_URL");
    cr_assert(url, "run through scripts/test");
    jq *q = jq_open(url, err, sizeof err);
    cr_assert(q, "%s", err);
    return q;
}

/* a job type unique to this test run */
static const char *utype(char buf[64], const char *name) {
    char u[32];
    snprintf(buf, 64, "t.%s.%s", name, th_unique(u));
    return buf;
}

static json_t *get_job(jq *q, const char *id) {
    char *s = NULL, err[256];
    int rc = jq_get(q, id, &s, err, sizeof err);
    if (rc == JQ_NOT_FOUND) return NULL;
    cr_assert_eq(rc, JQ_OK, "%s", err);
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    return j;
}

static const char *state_of(jq *q, const char *id, char out[32]) {
    json_t *j = get_job(q, id);
    snprintf(out, 32, "%s", j ? json_string_value(json_object_get(j, "state")) : "gone");
    json_decref(j);
    return out;
}

static long long stat_of(jq *q, const char *type, const char *name) {
    char *s = NULL, err[256];
    cr_assert_eq(jq_stats(q, &s, err, sizeof err), JQ_OK, "%s", err);
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    long long v = json_integer_value(json_object_get(json_object_get(j, type), name));
    json_decref(j);
    return v;
}

Test(queue, enqueue_reserve_progress_ack) {
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], err[256], st[32];
    utype(t, "basic");
    bool existing = true;
    cr_assert_eq(jq_enqueue(q, t, 42, "{\"n\":1}", NULL, id, &existing, err, sizeof err), JQ_OK,
                 "%s", err);
    cr_expect(!existing);
    cr_expect_str_eq(state_of(q, id, st), "queued");
    cr_expect_eq(stat_of(q, t, "queued"), 1);

    const char *types[] = {t};
    jq_job jobs[4];
    cr_assert_eq(jq_reserve(q, types, 1, "w1", jobs, 4, err, sizeof err), 1, "%s", err);
    cr_expect_str_eq(jobs[0].id, id);
    cr_expect_str_eq(jobs[0].type, t);
    cr_expect_eq(jobs[0].org, 42);
    cr_expect_str_eq(jobs[0].payload, "{\"n\":1}");
    cr_expect_eq(jobs[0].attempts, 1);
    cr_expect_eq(jobs[0].max_attempts, JQ_DEFAULT_MAX_ATTEMPTS);
    cr_expect_str_eq(state_of(q, id, st), "active");
    cr_expect_eq(stat_of(q, t, "queued"), 0);
    cr_expect_eq(stat_of(q, t, "active"), 1);
    cr_expect_eq(jq_reserve(q, types, 1, "w2", jobs + 1, 4, err, sizeof err), 0,
                 "an active job is not handed out twice");

    cr_expect_eq(jq_progress(q, id, "w1", 140, "halfway", err, sizeof err), JQ_OK);
    cr_expect_eq(jq_progress(q, id, "w2", 10, "not mine", err, sizeof err), JQ_LOST);
    cr_expect_eq(jq_heartbeat(q, id, "w1", err, sizeof err), JQ_OK);
    cr_expect_eq(jq_heartbeat(q, id, "w2", err, sizeof err), JQ_LOST);
    json_t *j = get_job(q, id);
    cr_expect_eq(json_integer_value(json_object_get(j, "progress")), 100, "clamped to 100");
    cr_expect_str_eq(json_string_value(json_object_get(j, "progress_msg")), "halfway");
    cr_expect_str_eq(json_string_value(json_object_get(j, "worker")), "w1");
    json_decref(j);

    cr_expect_eq(jq_ack(q, id, "w2", "{}", err, sizeof err), JQ_LOST, "only the holder acks");
    cr_assert_eq(jq_ack(q, id, "w1", "{\"ok\":true}", err, sizeof err), JQ_OK, "%s", err);
    cr_expect_eq(jq_ack(q, id, "w1", "{}", err, sizeof err), JQ_LOST,
                 "a second ack changes nothing");
    j = get_job(q, id);
    cr_expect_str_eq(json_string_value(json_object_get(j, "state")), "succeeded");
    cr_expect(json_is_true(json_object_get(json_object_get(j, "result"), "ok")));
    cr_expect(json_integer_value(json_object_get(j, "finished_at")) > 0);
    json_decref(j);
    cr_expect_eq(stat_of(q, t, "active"), 0);
    cr_expect_eq(stat_of(q, t, "succeeded_total"), 1);
    jq_job_clear(&jobs[0]);
    jq_close(q);
}

Test(queue, fifo_order_batches_and_several_types) {
    jq *q = open_q();
    char a[64], b[64], err[256], ids[6][JQ_ID_MAX];
    utype(a, "fifo-a");
    utype(b, "fifo-b");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(jq_enqueue(q, a, 1, "{}", NULL, ids[i], NULL, err, sizeof err), JQ_OK);
    cr_assert_eq(jq_enqueue(q, b, 1, "{}", NULL, ids[5], NULL, err, sizeof err), JQ_OK);
    const char *types[] = {a, b};
    jq_job jobs[8];
    cr_assert_eq(jq_reserve(q, types, 2, "w", jobs, 3, err, sizeof err), 3);
    for (int i = 0; i < 3; i++) cr_expect_str_eq(jobs[i].id, ids[i], "first in, first out");
    int n = jq_reserve(q, types, 2, "w", jobs + 3, 8, err, sizeof err);
    cr_assert_eq(n, 3, "the rest of a, then b");
    cr_expect_str_eq(jobs[5].id, ids[5]);
    cr_expect_str_eq(jobs[5].type, b);
    for (int i = 0; i < 6; i++) jq_job_clear(&jobs[i]);
    jq_close(q);
}

Test(queue, dedupe_returns_the_unfinished_job) {
    jq *q = open_q();
    char t[64], k[96], id1[JQ_ID_MAX], id2[JQ_ID_MAX], id3[JQ_ID_MAX], err[256];
    utype(t, "dedupe");
    snprintf(k, sizeof k, "report:%s", t);
    jq_enqueue_opts o = {.dedupe_key = k};
    bool ex = true;
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", &o, id1, &ex, err, sizeof err), JQ_OK);
    cr_expect(!ex);
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", &o, id2, &ex, err, sizeof err), JQ_OK);
    cr_expect(ex);
    cr_expect_str_eq(id2, id1, "same key while queued → same job");
    const char *types[] = {t};
    jq_job j;
    cr_assert_eq(jq_reserve(q, types, 1, "w", &j, 1, err, sizeof err), 1);
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", &o, id2, &ex, err, sizeof err), JQ_OK);
    cr_expect(ex && !strcmp(id2, id1), "same key while running → same job");
    cr_assert_eq(jq_ack(q, j.id, "w", NULL, err, sizeof err), JQ_OK);
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", &o, id3, &ex, err, sizeof err), JQ_OK);
    cr_expect(!ex && strcmp(id3, id1), "after it finished, the key makes a new job");
    jq_job_clear(&j);
    jq_close(q);
}

Test(queue, delayed_jobs_are_promoted_when_due) {
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], err[256], st[32];
    utype(t, "delay");
    jq_enqueue_opts o = {.delay_ms = 400};
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", &o, id, NULL, err, sizeof err), JQ_OK);
    cr_expect_str_eq(state_of(q, id, st), "delayed");
    cr_expect_eq(stat_of(q, t, "delayed"), 1);
    const char *types[] = {t};
    jq_job j;
    cr_expect_eq(jq_reserve(q, types, 1, "w", &j, 1, err, sizeof err), 0, "not before it is due");
    msleep(450);
    cr_expect_eq(jq_promote(q, err, sizeof err), 1, "promoted once due");
    cr_expect_str_eq(state_of(q, id, st), "queued");
    cr_expect_eq(stat_of(q, t, "delayed"), 0);
    cr_assert_eq(jq_reserve(q, types, 1, "w", &j, 1, err, sizeof err), 1);
    cr_expect_str_eq(j.id, id);
    jq_job_clear(&j);
    /* reserve also promotes on its own */
    o.delay_ms = 200;
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", &o, id, NULL, err, sizeof err), JQ_OK);
    msleep(250);
    cr_assert_eq(jq_reserve(q, types, 1, "w", &j, 1, err, sizeof err), 1);
    cr_expect_str_eq(j.id, id);
    jq_job_clear(&j);
    jq_close(q);
}

Test(queue, backoff_is_exponential_capped_and_jittered) {
    for (int attempt = 1; attempt <= 30; attempt++) {
        int64_t nominal = 1000;
        for (int i = 1; i < attempt && nominal < 300000; i++) nominal *= 2;
        if (nominal > 300000) nominal = 300000;
        int64_t lo = INT64_MAX, hi = 0;
        for (uint64_t r = 0; r < 2000; r++) {
            int64_t d = jq_backoff_ms(attempt, 1000, 300000, r * 0x9E3779B97F4A7C15ULL);
            cr_assert(d >= nominal / 2 && d <= nominal, "attempt %d: %lld not in [%lld, %lld]",
                      attempt, (long long)d, (long long)nominal / 2, (long long)nominal);
            if (d < lo) lo = d;
            if (d > hi) hi = d;
        }
        cr_expect(hi - lo > nominal / 4, "attempt %d: jitter spreads the delays", attempt);
    }
    cr_expect_eq(jq_backoff_ms(0, 1000, 300000, 0), 500, "attempt < 1 counts as 1");
    cr_expect_eq(jq_backoff_ms(3, 0, 0, 0), 0, "degenerate base/cap");
}

Test(queue, failures_retry_with_backoff_then_die_and_can_be_retried) {
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], err[256], st[32];
    utype(t, "fail");
    jq_enqueue_opts o = {.max_attempts = 2};
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", &o, id, NULL, err, sizeof err), JQ_OK);
    const char *types[] = {t};
    jq_job j;
    cr_assert_eq(jq_reserve(q, types, 1, "w", &j, 1, err, sizeof err), 1);
    jq_job_clear(&j);
    bool dead = true;
    int64_t before = ts_now() / 1000;
    cr_assert_eq(jq_fail(q, id, "w", "boom 1", false, &dead, err, sizeof err), JQ_OK, "%s", err);
    cr_expect(!dead);
    json_t *job = get_job(q, id);
    cr_expect_str_eq(json_string_value(json_object_get(job, "state")), "delayed");
    cr_expect_str_eq(json_string_value(json_object_get(job, "error")), "boom 1");
    int64_t run_at = json_integer_value(json_object_get(job, "run_at"));
    cr_expect(run_at - before >= 500 && run_at - before <= 1100,
              "first retry after 0.5-1 s: %lld ms", (long long)(run_at - before));
    json_decref(job);
    cr_expect_eq(jq_reserve(q, types, 1, "w", &j, 1, err, sizeof err), 0, "backoff holds it");
    msleep(1100);
    cr_assert_eq(jq_reserve(q, types, 1, "w", &j, 1, err, sizeof err), 1);
    cr_expect_eq(j.attempts, 2);
    jq_job_clear(&j);
    cr_assert_eq(jq_fail(q, id, "w", "boom 2", false, &dead, err, sizeof err), JQ_OK);
    cr_expect(dead, "out of attempts → dead");
    cr_expect_str_eq(state_of(q, id, st), "dead");
    cr_expect_eq(stat_of(q, t, "dead"), 1);
    cr_expect_eq(stat_of(q, t, "dead_total"), 1);
    cr_expect_eq(stat_of(q, t, "failed_total"), 2);
    cr_expect_eq(stat_of(q, t, "retried_total"), 1);

    cr_expect_eq(jq_retry(q, "999999999", err, sizeof err), JQ_NOT_FOUND);
    cr_assert_eq(jq_retry(q, id, err, sizeof err), JQ_OK, "%s", err);
    cr_expect_eq(jq_retry(q, id, err, sizeof err), JQ_BAD_STATE, "only dead jobs are retried");
    cr_expect_eq(stat_of(q, t, "dead"), 0);
    cr_assert_eq(jq_reserve(q, types, 1, "w", &j, 1, err, sizeof err), 1);
    cr_expect_eq(j.attempts, 1, "a retried job gets fresh attempts");
    cr_assert_eq(jq_fail(q, id, "w", "bad input", true, &dead, err, sizeof err), JQ_OK);
    cr_expect(dead, "a permanent error kills at once");
    jq_job_clear(&j);
    jq_close(q);
}

Test(queue, expired_leases_are_reaped_once_and_count_as_attempts) {
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], err[256], st[32];
    utype(t, "reap");
    jq_set_lease_ms(q, 300);
    jq_enqueue_opts o = {.max_attempts = 2};
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", &o, id, NULL, err, sizeof err), JQ_OK);
    const char *types[] = {t};
    jq_job j;
    cr_assert_eq(jq_reserve(q, types, 1, "crashed", &j, 1, err, sizeof err), 1);
    jq_job_clear(&j);
    msleep(150);
    cr_expect_eq(jq_heartbeat(q, id, "crashed", err, sizeof err), JQ_OK);
    msleep(200);
    (void)jq_reap(q, err, sizeof err);
    cr_expect_str_eq(state_of(q, id, st), "active", "a heartbeat kept the lease alive");
    msleep(350);
    /* another client reaps; the job goes back to the front of the queue */
    jq *q2 = open_q();
    jq_set_lease_ms(q2, 300);
    int reaped = -1;
    for (int i = 0; i < 20 && reaped <= 0; i++) {
        reaped = jq_reap(q2, err, sizeof err);
        if (reaped == 0) msleep(100); /* another suite's reaper may hold the lock */
    }
    cr_expect_eq(reaped, 1);
    cr_expect_str_eq(state_of(q, id, st), "queued");
    cr_expect_eq(jq_ack(q, id, "crashed", NULL, err, sizeof err), JQ_LOST,
                 "the old holder's late ack is refused");
    cr_assert_eq(jq_reserve(q2, types, 1, "rescuer", &j, 1, err, sizeof err), 1);
    cr_expect_eq(j.attempts, 2);
    jq_job_clear(&j);
    msleep(350);
    for (int i = 0; i < 20 && strcmp(state_of(q, id, st), "dead"); i++) {
        (void)jq_reap(q2, err, sizeof err);
        msleep(50);
    }
    cr_expect_str_eq(state_of(q, id, st), "dead", "lease expired on the last attempt");
    json_t *job = get_job(q, id);
    cr_expect(strstr(json_string_value(json_object_get(job, "error")), "lease expired"));
    json_decref(job);
    jq_close(q2);
    jq_close(q);
}

Test(queue, finished_jobs_expire_after_the_retention) {
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], id2[JQ_ID_MAX], err[256], st[32];
    utype(t, "retention");
    jq_set_retention_ms(q, 300);
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", NULL, id, NULL, err, sizeof err), JQ_OK);
    jq_enqueue_opts o = {.max_attempts = 1};
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", &o, id2, NULL, err, sizeof err), JQ_OK);
    const char *types[] = {t};
    jq_job j[2];
    cr_assert_eq(jq_reserve(q, types, 1, "w", j, 2, err, sizeof err), 2);
    cr_assert_eq(jq_ack(q, id, "w", NULL, err, sizeof err), JQ_OK);
    cr_assert_eq(jq_fail(q, id2, "w", "x", false, NULL, err, sizeof err), JQ_OK);
    cr_expect_str_eq(state_of(q, id2, st), "dead");
    msleep(400);
    cr_expect_str_eq(state_of(q, id, st), "gone", "a succeeded job expires");
    cr_expect_str_eq(state_of(q, id2, st), "gone", "a dead job expires too");
    for (int i = 0; i < 20 && stat_of(q, t, "dead") != 0; i++) {
        (void)jq_reap(q, err, sizeof err); /* drops expired dead entries */
        msleep(50);
    }
    cr_expect_eq(stat_of(q, t, "dead"), 0, "the dead gauge follows the expiry");
    cr_expect_eq(jq_retry(q, id2, err, sizeof err), JQ_NOT_FOUND);
    jq_job_clear(&j[0]);
    jq_job_clear(&j[1]);
    jq_close(q);
}

Test(queue, scripts_come_back_after_script_flush) {
    jq *q = open_q();
    char t[64], id[JQ_ID_MAX], err[256];
    utype(t, "noscript");
    cr_assert_eq(jq_enqueue(q, t, 1, "{}", NULL, id, NULL, err, sizeof err), JQ_OK);
    redisReply *r = rds_cmd(jq_rds(q), err, sizeof err, "SCRIPT FLUSH");
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SCRIPT FLUSH");
    freeReplyObject(r);
    const char *types[] = {t};
    jq_job j;
    cr_expect_eq(jq_reserve(q, types, 1, "w", &j, 1, err, sizeof err), 1,
                 "NOSCRIPT is answered by reloading: %s", err);
    cr_expect_eq(jq_ack(q, j.id, "w", NULL, err, sizeof err), JQ_OK);
    jq_job_clear(&j);
    jq_close(q);
}

Test(queue, wait_wakes_on_enqueue_and_times_out_otherwise) {
    jq *q = open_q(), *p = open_q();
    char t[64], id[JQ_ID_MAX], err[256];
    utype(t, "wait");
    const char *types[] = {t};
    int64_t t0 = ts_now();
    cr_expect_eq(jq_wait(q, types, 1, 200, err, sizeof err), 1, "nothing to do: timeout");
    cr_expect(ts_now() - t0 >= 150000);
    cr_assert_eq(jq_enqueue(p, t, 1, "{}", NULL, id, NULL, err, sizeof err), JQ_OK);
    cr_expect_eq(jq_wait(q, types, 1, 2000, err, sizeof err), 0, "a token was waiting");
    jq_close(q);
    jq_close(p);
}

Test(queue, batch_enqueue_and_batch_ack) {
    jq *q = open_q();
    char t[64], err[256], key[96];
    utype(t, "batch");
    snprintf(key, sizeof key, "k:%s", t);
    enum { N = 500 };
    static jq_new jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (jq_new){.type = t, .org = 7, .payload = "{\"i\":1}"};
        if (i == 3 || i == 4) jobs[i].opts.dedupe_key = key; /* 4 returns 3's job */
        if (i == 5) jobs[i].opts.delay_ms = 60000;
    }
    cr_assert_eq(jq_enqueue_many(q, jobs, N, err, sizeof err), JQ_OK, "%s", err);
    cr_expect(!jobs[3].existing);
    cr_expect(jobs[4].existing && !strcmp(jobs[4].id, jobs[3].id), "dedupe inside one batch");
    cr_expect_eq(stat_of(q, t, "queued"), N - 2);
    cr_expect_eq(stat_of(q, t, "delayed"), 1);
    const char *types[] = {t};
    static jq_job got[N];
    int n = jq_reserve(q, types, 1, "w", got, N, err, sizeof err);
    cr_assert_eq(n, N - 2, "%s", err);
    cr_expect_str_eq(got[0].id, jobs[0].id, "FIFO across a batch");
    static const char *ids[N];
    static int status[N];
    for (int i = 0; i < n; i++) ids[i] = got[i].id;
    ids[n] = "999999999"; /* not held: reported lost, the rest unaffected */
    cr_assert_eq(jq_ack_many(q, "w", ids, NULL, (size_t)n + 1, status, err, sizeof err), JQ_OK,
                 "%s", err);
    for (int i = 0; i < n; i++) cr_expect_eq(status[i], JQ_OK);
    cr_expect_eq(status[n], JQ_LOST);
    cr_expect_eq(stat_of(q, t, "active"), 0);
    cr_expect_eq(stat_of(q, t, "succeeded_total"), N - 2);
    for (int i = 0; i < n; i++) jq_job_clear(&got[i]);
    jq_close(q);
}

Test(queue, keep_ms_controls_how_long_a_succeeded_job_stays) {
    jq *q = open_q();
    char t[64], err[256], st[32];
    utype(t, "keep");
    jq_new jobs[3] = {
        {.type = t, .payload = "{}"},                                          /* default */
        {.type = t, .payload = "{}", .opts = {.keep_ms = JQ_REMOVE_ON_SUCCESS}}, /* at once */
        {.type = t, .payload = "{}", .opts = {.keep_ms = 300}},                /* 300 ms */
    };
    cr_assert_eq(jq_enqueue_many(q, jobs, 3, err, sizeof err), JQ_OK, "%s", err);
    const char *types[] = {t};
    jq_job got[3];
    cr_assert_eq(jq_reserve(q, types, 1, "w", got, 3, err, sizeof err), 3);
    const char *ids[] = {jobs[0].id, jobs[1].id, jobs[2].id};
    int status[3];
    cr_assert_eq(jq_ack_many(q, "w", ids, NULL, 3, status, err, sizeof err), JQ_OK);
    cr_expect_str_eq(state_of(q, jobs[0].id, st), "succeeded");
    cr_expect_str_eq(state_of(q, jobs[1].id, st), "gone", "removed on success");
    cr_expect_str_eq(state_of(q, jobs[2].id, st), "succeeded");
    msleep(400);
    cr_expect_str_eq(state_of(q, jobs[2].id, st), "gone", "kept 300 ms");
    cr_expect_str_eq(state_of(q, jobs[0].id, st), "succeeded", "default retention is days");
    cr_expect_eq(stat_of(q, t, "succeeded_total"), 3, "removed jobs still count");
    for (int i = 0; i < 3; i++) jq_job_clear(&got[i]);
    jq_close(q);
}
