/* test_jobs_outage.c — worker processes ride out a restart of Redis
 * (SIGTERM shutdown; the AOF keeps the queue) and of PostgreSQL while jobs
 * flow: no process crashes, each logs the outage once and its end, and every
 * job finishes with exactly one effect.  A database restart spends no
 * attempt: the handler is run again in place once PostgreSQL is back. */
#include "fmacros.h"
#include "jq.h"
#include "th.h"
#include "tw.h"
#include <criterion/criterion.h>
#include <stdlib.h>
#include <time.h>

enum { N = 1500 };
static char g_id[N][JQ_ID_MAX];

static void enqueue_all(jq *q, const char *prefix) {
    char pay[256];
    unsigned seed = 11;
    for (int i = 0; i < N; i++) {
        snprintf(pay, sizeof pay, "{\"ms\":%u,\"effect\":\"%s%d\"}", rand_r(&seed) % 6, prefix, i);
        tw_enqueue(q, "sleep", pay, 25, g_id[i]);
    }
}

static void wait_effects(const char *prefix, long long want) {
    PGconn *pg = th_pg();
    long long n = 0;
    for (int t = 0; t < 15000 && n < want; t += 20) {
        n = tw_pg_int(pg, "SELECT count(*) FROM job_effects WHERE starts_with(key, $1)", prefix,
                      NULL);
        tw_msleep(20);
    }
    PQfinish(pg);
    cr_assert_geq(n, want, "jobs are flowing (%lld effects)", n);
}

/* Every job succeeded with one effect of its own; returns the most attempts. */
static long long check_all(jq *q, const char *prefix) {
    cr_assert_eq(tw_wait_all_final(q, g_id, N, 40000), N, "every job finished");
    long long most = 0;
    int ok = 0;
    for (int i = 0; i < N; i++) {
        json_t *j = tw_job(q, g_id[i]);
        const char *s = json_string_value(json_object_get(j, "state"));
        if (s && !strcmp(s, "succeeded"))
            ok++;
        else
            cr_expect(false, "job %s is %s: %s", g_id[i], s ? s : "gone",
                      json_string_value(json_object_get(j, "error")));
        long long a = json_integer_value(json_object_get(j, "attempts"));
        if (a > most) most = a;
        json_decref(j);
    }
    cr_expect_eq(ok, N);
    PGconn *pg = th_pg();
    cr_expect_eq(
        tw_pg_int(pg, "SELECT count(*) FROM job_effects WHERE starts_with(key, $1)", prefix, NULL),
        N, "one effect per job");
    char key[96];
    for (int i = 0; i < N; i += 37) { /* a sample: each effect is its own job's */
        snprintf(key, sizeof key, "%s%d", prefix, i);
        cr_expect_eq(tw_pg_int(pg,
                               "SELECT count(*) FROM job_effects WHERE key = $1 AND job_id = $2",
                               key, g_id[i]),
                     1);
    }
    PQfinish(pg);
    return most;
}

static void check_logs(const char *log, const char *dep) {
    char m[64];
    snprintf(m, sizeof m, "\"msg\":\"worker %s\"", dep);
    const char *const down[] = {m, "\"state\":\"down\"", NULL};
    const char *const back[] = {m, "\"state\":\"up\"", "\"down_ms\":", NULL};
    const char *const crashed[] = {"\"msg\":\"worker exited; restarting\"", NULL};
    int nd = th_count_lines(log, down), nb = th_count_lines(log, back);
    cr_expect_geq(nd, 1, "the outage of %s was noticed (log %s)", dep, log);
    cr_expect_eq(nb, nd, "each process that saw %s go down saw it come back", dep);
    cr_expect_leq(nd, 2, "logged once per process per outage, not per call");
    cr_expect_eq(th_count_lines(log, crashed), 0, "no worker process died");
}

Test(outage, redis_restart_while_jobs_flow, .fini = tw_cleanup, .timeout = 90) {
    jq *q = tw_jq();
    char u[32], prefix[64];
    th_unique(u);
    snprintf(prefix, sizeof prefix, "redis-%s-", u);
    static const char *const env[] = {"BILLING_JOB_LEASE_MS=5000", NULL};
    tw_pool *p = tw_start(2, env);
    enqueue_all(q, prefix);
    wait_effects(prefix, 50);

    cr_assert_eq(th_svc("redis stop"), 0, "stop Redis");
    tw_msleep(1500);
    cr_assert_eq(th_svc("redis start"), 0, "start Redis");

    check_all(q, prefix);
    check_logs(p->log, "redis");
    cr_expect_eq(tw_stop(p, 15000), 0);
    jq_close(q);
}

Test(outage, postgres_restart_while_jobs_flow, .fini = tw_cleanup, .timeout = 90) {
    jq *q = tw_jq();
    char u[32], prefix[64];
    th_unique(u);
    snprintf(prefix, sizeof prefix, "pg-%s-", u);
    tw_pool *p = tw_start(2, NULL);
    enqueue_all(q, prefix);
    wait_effects(prefix, 50);

    cr_assert_eq(th_svc("pg stop"), 0, "stop PostgreSQL");
    tw_msleep(1500);
    cr_assert_eq(th_svc("pg start"), 0, "start PostgreSQL");

    long long most = check_all(q, prefix);
    cr_expect_eq(most, 1, "a database restart spends no attempt");
    check_logs(p->log, "postgres");
    cr_expect_eq(tw_stop(p, 15000), 0);
    jq_close(q);
}
