/* test_jobs_crash.c — kill -9 of worker processes loses no job and applies
 * none twice: a process killed in the middle of a job with a committed
 * effect → the job is reaped after its lease and completes exactly once;
 * thousands of jobs while random processes are killed every ~300 ms → every
 * job succeeds with exactly one effect. */
#include "fmacros.h"
#include "jq.h"
#include "th.h"
#include "tw.h"
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

Test(crash, a_job_killed_midway_is_reaped_and_completes_once, .fini = tw_cleanup, .timeout = 60) {
    jq *q = tw_jq();
    PGconn *pg = th_pg();
    char u[32], key[96], pay[256], st[32], id[JQ_ID_MAX];
    th_unique(u);
    snprintf(key, sizeof key, "crash-%s", u);
    static const char *const env[] = {"BILLING_JOB_LEASE_MS=1500", NULL};
    tw_pool *p = tw_start(2, env);

    snprintf(pay, sizeof pay, "{\"ms\":2500,\"effect\":\"%s\"}", key);
    tw_enqueue(q, "sleep", pay, 0, id);
    /* the run row is written with the effect, before the sleep */
    long long runs = 0;
    for (int t = 0; t < 10000 && runs < 1; t += 20) {
        runs = tw_pg_int(pg, "SELECT count(*) FROM job_runs WHERE key = $1", key, NULL);
        tw_msleep(20);
    }
    cr_assert_eq(runs, 1, "the job started");
    PGresult *r = PQexecParams(pg, "SELECT worker FROM job_runs WHERE key = $1", 1, NULL,
                               (const char *const[]){key}, NULL, NULL, 0);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
    const char *colon = strrchr(PQgetvalue(r, 0, 0), ':');
    cr_assert(colon, "worker id is host:pid");
    pid_t victim = (pid_t)atoi(colon + 1);
    PQclear(r);
    pid_t kids[16];
    int n = tw_children(p, kids, 16), mine = 0;
    for (int i = 0; i < n; i++) mine |= kids[i] == victim;
    cr_assert(mine, "the job runs in worker process %d of this pool", (int)victim);
    cr_assert_eq(kill(victim, SIGKILL), 0);

    double t0 = mono_s();
    cr_assert_str_eq(tw_wait_final(q, id, 20000, st), "succeeded");
    double took = mono_s() - t0;
    json_t *j = tw_job(q, id);
    cr_expect_eq(json_integer_value(json_object_get(j, "attempts")), 2,
                 "the reaped run counts as an attempt");
    json_t *res = json_object_get(j, "result");
    cr_expect(json_is_false(json_object_get(res, "first")),
              "the re-run found the effect already there");
    json_decref(j);
    cr_expect_eq(
        tw_pg_int(pg, "SELECT count(*) FROM job_effects WHERE key = $1 AND job_id = $2", key, id),
        1, "the effect exists once");
    cr_expect_eq(tw_pg_int(pg, "SELECT count(*) FROM job_runs WHERE key = $1", key, NULL), 2,
                 "job_runs shows the re-run");
    cr_expect_eq(
        tw_pg_int(pg, "SELECT count(DISTINCT worker) FROM job_runs WHERE key = $1", key, NULL), 2);
    cr_expect_geq(took, 2.5, "re-run only after the lease expired (%.2f s)", took);
    cr_expect_lt(took, 10.0, "and soon after (%.2f s)", took);
    static const char *const reaped[] = {"\"msg\":\"reaped jobs whose lease expired\"", NULL};
    cr_expect_geq(th_count_lines(p->log, reaped), 1, "a worker reaped it (log %s)", p->log);
    cr_expect_eq(tw_stop(p, 15000), 0);
    PQfinish(pg);
    jq_close(q);
}

typedef struct killer {
    tw_pool *p;
    double until;
    atomic_int done; /* jobs all finished: stop */
    int kills;       /* while jobs were still running */
} killer;

static void *killer_main(void *arg) {
    killer *k = arg;
    unsigned seed = (unsigned)getpid();
    for (;;) {
        tw_msleep(200 + rand_r(&seed) % 200);
        if (mono_s() >= k->until || atomic_load(&k->done)) break;
        pid_t kids[16];
        int n = tw_children(k->p, kids, 16);
        if (n > 0 && kill(kids[rand_r(&seed) % (unsigned)n], SIGKILL) == 0) k->kills++;
    }
    return NULL;
}

Test(crash, random_kill_9s_during_thousands_of_jobs_lose_none_and_repeat_none, .fini = tw_cleanup,
     .timeout = 90) {
    enum { N = 2000 };
    jq *q = tw_jq();
    PGconn *pg = th_pg();
    char u[32], prefix[64], pay[256];
    th_unique(u);
    snprintf(prefix, sizeof prefix, "chaos-%s-", u);
    static const char *const env[] = {"BILLING_JOB_LEASE_MS=1500", "BILLING_SHUTDOWN_GRACE_S=10",
                                      NULL};
    double t0 = mono_s();
    tw_pool *p = tw_start(3, env);

    static char id[N][JQ_ID_MAX];
    unsigned seed = 7;
    for (int i = 0; i < N; i++) {
        snprintf(pay, sizeof pay, "{\"ms\":%u,\"effect\":\"%s%d\"}", rand_r(&seed) % 6, prefix, i);
        tw_enqueue(q, "sleep", pay, 25, id[i]);
    }
    killer k = {.p = p, .until = mono_s() + 4.0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, killer_main, &k), 0);
    int finished = tw_wait_all_final(q, id, N, 45000);
    atomic_store(&k.done, 1);
    pthread_join(th, NULL);
    double took = mono_s() - t0;
    cr_log_info("chaos: %d jobs, %d kills, %.1f s", N, k.kills, took);
    cr_expect_geq(k.kills, 3, "the killer hit busy worker processes (%d kills)", k.kills);
    cr_assert_eq(finished, N, "every job finished (%d of %d)", finished, N);

    int ok = 0;
    long long max_attempts = 0;
    for (int i = 0; i < N; i++) {
        json_t *j = tw_job(q, id[i]);
        const char *s = json_string_value(json_object_get(j, "state"));
        if (s && !strcmp(s, "succeeded"))
            ok++;
        else
            cr_expect(false, "job %s is %s: %s", id[i], s ? s : "gone",
                      json_string_value(json_object_get(j, "error")));
        long long a = json_integer_value(json_object_get(j, "attempts"));
        if (a > max_attempts) max_attempts = a;
        json_decref(j);
    }
    cr_expect_eq(ok, N, "every job succeeded");

    /* exactly one effect per job, written by that job */
    size_t cap = (size_t)N * (JQ_ID_MAX + 80) + 16;
    char *keys = malloc(cap), *ids = malloc(cap);
    cr_assert(keys && ids);
    size_t kl = 0, il = 0;
    keys[kl++] = '{';
    ids[il++] = '{';
    for (int i = 0; i < N; i++) {
        kl += (size_t)snprintf(keys + kl, cap - kl, "%s%s%d", i ? "," : "", prefix, i);
        il += (size_t)snprintf(ids + il, cap - il, "%s%s", i ? "," : "", id[i]);
    }
    snprintf(keys + kl, cap - kl, "}");
    snprintf(ids + il, cap - il, "}");
    cr_expect_eq(
        tw_pg_int(pg, "SELECT count(*) FROM job_effects WHERE starts_with(key, $1)", prefix, NULL),
        N, "one effect row per job");
    cr_expect_eq(tw_pg_int(pg,
                           "SELECT count(*) FROM unnest($1::text[], $2::text[]) AS t(key, job_id)"
                           " JOIN job_effects e ON e.key = t.key AND e.job_id = t.job_id",
                           keys, ids),
                 N, "each written by its own job");
    free(keys);
    free(ids);
    long long runs =
        tw_pg_int(pg, "SELECT count(*) FROM job_runs WHERE starts_with(key, $1)", prefix, NULL);
    cr_log_info("chaos: %lld runs for %d jobs (%lld re-runs), most attempts %lld", runs, N,
                runs - N, max_attempts);
    cr_expect_geq(runs, N);
    static const char *const reaped[] = {"\"msg\":\"reaped jobs whose lease expired\"", NULL};
    cr_expect_geq(th_count_lines(p->log, reaped), 1,
                  "jobs held by killed processes came back through the reaper (log %s)", p->log);
    cr_expect_lt(took, 60.0, "bounded time (%.1f s)", took);
    cr_expect_eq(tw_stop(p, 20000), 0);
    PQfinish(pg);
    jq_close(q);
}
