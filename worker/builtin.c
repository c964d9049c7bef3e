/* builtin.c — the built-in job types of billing-worker, for tests and
 * benchmarks: noop, sleep, fail.  See handlers.h for the contract.
 *
 * DESIGN — `sleep` is the model of an idempotent handler with an effect:
 * one statement appends its run to job_runs and records the effect key in
 * job_effects with ON CONFLICT DO NOTHING, so however many times the job runs
 * the effect exists once, while every run stays visible.  The effect is
 * written before the sleep, so a worker killed in the middle of a sleep
 * leaves a committed effect and an un-acked job: exactly the case where a
 * re-run must not apply anything twice.  Sleeps survive signals (SIGTERM
 * lets the job finish) and report progress once a second when long.
 * Runs on the job-loop thread of a worker process.
 */
#include "fmacros.h"
#include "handlers.h"
#include "ts.h"
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define SLEEP_MAX_MS   600000
#define SLEEP_SLICE_MS 1000
#define EFFECT_MAX     200

wk_status wk_job_noop(wk_ctx *ctx, wk_result *res) {
    /* A payload with "t0_us" (tests/bench/run-queue) asks when the handler
     * started: {"started_us": wall clock µs}; anything else answers {}. */
    if (json_object_get(ctx->payload, "t0_us")) {
        char buf[48];
        snprintf(buf, sizeof buf, "{\"started_us\":%lld}", (long long)ts_now());
        res->json = strdup(buf); /* NULL (out of memory) = "{}" */
    }
    return WK_OK;
}

/* Sleeps until the CLOCK_MONOTONIC time *t, through signals. */
static void sleep_until(const struct timespec *t) {
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR) {
    }
}

static void add_ms(struct timespec *t, long ms) {
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

wk_status wk_job_sleep(wk_ctx *ctx, wk_result *res) {
    static const char *const allowed[] = {"ms", "effect", NULL};
    if (!wk_payload_only(ctx->payload, allowed, res)) return WK_PERMANENT;
    const json_t *jms = json_object_get(ctx->payload, "ms");
    const json_t *jeff = json_object_get(ctx->payload, "effect");
    if (!json_is_integer(jms) || json_integer_value(jms) < 0 ||
        json_integer_value(jms) > SLEEP_MAX_MS)
        return wk_fail(res, WK_PERMANENT, "payload: ms must be an integer 0..%d", SLEEP_MAX_MS);
    long ms = (long)json_integer_value(jms);
    const char *effect = NULL;
    if (jeff) {
        effect = json_string_value(jeff);
        if (!effect || !*effect || strlen(effect) > EFFECT_MAX)
            return wk_fail(res, WK_PERMANENT, "payload: effect must be a string of 1..%d bytes",
                           EFFECT_MAX);
    }

    bool first = false;
    if (effect) {
        char attempt[16];
        snprintf(attempt, sizeof attempt, "%d", ctx->job->attempts);
        db_err e;
        PGresult *r = DB_EXEC(ctx->db, &e,
                              "WITH run AS (INSERT INTO job_runs (job_id, key, worker, attempt) "
                              "VALUES ($1, $2, $3, $4)) "
                              "INSERT INTO job_effects (key, job_id) VALUES ($2, $1) "
                              "ON CONFLICT (key) DO NOTHING RETURNING job_id",
                              ctx->job->id, effect, ctx->worker, attempt);
        if (!r) return wk_fail_db(res, &e, "record the effect");
        first = PQntuples(r) == 1;
        PQclear(r);
    }

    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t))
        return wk_fail(res, WK_RETRY, "clock_gettime: %s", strerror(errno));
    for (long done = 0; done < ms;) {
        long step = ms - done < SLEEP_SLICE_MS ? ms - done : SLEEP_SLICE_MS;
        add_ms(&t, step);
        sleep_until(&t);
        done += step;
        if (ms >= SLEEP_SLICE_MS) {
            char msg[64];
            snprintf(msg, sizeof msg, "slept %ld of %ld ms", done, ms);
            if (ctx->progress(ctx, (int)(done * 100 / ms), msg) == JQ_LOST)
                return wk_fail(res, WK_RETRY, "the job's lease was lost while sleeping");
        }
    }

    json_t *o = json_pack("{s:I}", "slept_ms", (json_int_t)ms);
    if (o && effect) {
        json_object_set_new(o, "effect", json_string(effect));
        json_object_set_new(o, "first", json_boolean(first));
    }
    return wk_ok_json(res, o);
}

wk_status wk_job_fail(wk_ctx *ctx, wk_result *res) {
    static const char *const allowed[] = {"permanent", "times", NULL};
    if (!wk_payload_only(ctx->payload, allowed, res)) return WK_PERMANENT;
    const json_t *jp = json_object_get(ctx->payload, "permanent");
    const json_t *jt = json_object_get(ctx->payload, "times");
    if (jp && !json_is_boolean(jp))
        return wk_fail(res, WK_PERMANENT, "payload: permanent must be a boolean");
    if (jt && (!json_is_integer(jt) || json_integer_value(jt) < 0))
        return wk_fail(res, WK_PERMANENT, "payload: times must be an integer >= 0");
    bool permanent = json_is_true(jp);
    long long times = jt ? (long long)json_integer_value(jt) : -1; /* -1: every attempt */
    int attempt = ctx->job->attempts;
    if (times < 0 || attempt <= times)
        return wk_fail(res, permanent ? WK_PERMANENT : WK_RETRY,
                       "failing on purpose (attempt %d%s)", attempt,
                       permanent ? ", permanent" : "");
    return wk_ok_json(res, json_pack("{s:i}", "attempts", attempt));
}
