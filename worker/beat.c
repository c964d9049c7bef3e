/* beat.c — the held-job set and the heartbeat thread of a worker process.
 * See wk_int.h.
 *
 * DESIGN — The job loop and this thread share one small array of held jobs
 * under a mutex; the thread owns its own jq client (its own Redis
 * connection), so a handler that runs for minutes, or a loop blocked in
 * BLPOP, never delays a heartbeat.  Each pass of the thread, woken every
 * 50 ms (or at once by wk_beat_stop):
 *   - timeouts: a job whose handler has run longer than its timeout is
 *     failed (retryable unless it was the last attempt) and the process
 *     _exits(WK_EXIT_TIMEOUT) with the mutex held, so the loop can neither
 *     ack that job nor start another; the supervisor starts a fresh process
 *     and the job's other attempts run there or elsewhere;
 *   - every lease/3: jq_heartbeat for every held job (its id is copied out
 *     and the call made without the mutex); JQ_LOST is logged once and the
 *     job is no longer beaten: its lease expired and it moved on (its ack
 *     will be refused), or an ack whose reply was lost already landed;
 *   - about every second (jittered so processes do not align): jq_promote
 *     (wakes loops for due retries) and jq_reap (single-flight in Redis).
 * Redis errors are reported to the shared wk_dep and retried on the next
 * pass.  SIGTERM/SIGINT are blocked in this thread: they reach the loop.
 */
#include "fmacros.h"
#include "wk_int.h"
#include "log.h"
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define TICK_US       50000
#define MAINT_US      800000 /* + up to 400 ms of jitter */
#define HB_RETRY_US   250000
#define FAIL_TRIES    3
#define FAIL_RETRY_MS 200

typedef struct held {
    bool used;
    bool lost;
    char id[JQ_ID_MAX];
    char type[JQ_TYPE_MAX];
    int attempt;
    int max_attempts;
    int timeout_ms;
    int64_t run_start_us; /* monotonic; 0 while the handler is not running */
} held;

struct wk_beat {
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit;
    jq *q;
    char worker[320];
    wk_dep *redis;
    int64_t lease_us;
    int timeout_cap_ms;
    int cap;
    held *h;
    char (*ids)[JQ_ID_MAX]; /* heartbeat snapshot */
    uint64_t rnd;
};

static uint64_t next_rnd(wk_beat *b) {
    b->rnd ^= b->rnd << 13;
    b->rnd ^= b->rnd >> 7;
    b->rnd ^= b->rnd << 17;
    return b->rnd;
}

static held *find(wk_beat *b, const char *id) {
    for (int i = 0; i < b->cap; i++)
        if (b->h[i].used && !strcmp(b->h[i].id, id)) return &b->h[i];
    return NULL;
}

/* Called with the mutex held; never returns. */
static void time_out(wk_beat *b, held *x, int64_t now) {
    char msg[64], err[256], line[512];
    snprintf(msg, sizeof msg, "timeout after %d ms", x->timeout_ms);
    bool permanent = x->attempt >= x->max_attempts, dead = false;
    int rc = JQ_ERR;
    for (int i = 0; i < FAIL_TRIES && rc == JQ_ERR; i++) {
        if (i) wk_sleep_ms(FAIL_RETRY_MS);
        rc = jq_fail(b->q, x->id, b->worker, msg, permanent, &dead, err, sizeof err);
    }
    if (rc == JQ_ERR)
        snprintf(line, sizeof line,
                 "%s; the failure was not recorded (%s): the job returns "
                 "when its lease ends",
                 msg, err);
    else
        snprintf(line, sizeof line, "%s", msg);
    wk_log_job(x->id, x->type, x->attempt, now - x->run_start_us,
               rc == JQ_OK ? (dead ? "dead" : "retry") : "lost", line, b->worker);
    LOG_KV(LOG_ERROR, "job timed out; worker process exits", LF_S("id", x->id),
           LF_S("type", x->type), LF_I("timeout_ms", x->timeout_ms), LF_I("pid", getpid()));
    _exit(WK_EXIT_TIMEOUT);
}

static void check_timeouts(wk_beat *b) {
    int64_t now = wk_mono_us();
    for (int i = 0; i < b->cap; i++) {
        held *x = &b->h[i];
        if (x->used && x->run_start_us && now - x->run_start_us > (int64_t)x->timeout_ms * 1000)
            time_out(b, x, now);
    }
}

/* Heartbeats every held job; false if Redis failed (retry sooner). */
static bool heartbeat_all(wk_beat *b) {
    pthread_mutex_lock(&b->mu);
    int n = 0;
    for (int i = 0; i < b->cap; i++)
        if (b->h[i].used && !b->h[i].lost) memcpy(b->ids[n++], b->h[i].id, JQ_ID_MAX);
    pthread_mutex_unlock(&b->mu);
    bool ok = true;
    char err[256];
    for (int i = 0; i < n && ok; i++) {
        int rc = jq_heartbeat(b->q, b->ids[i], b->worker, err, sizeof err);
        if (rc == JQ_ERR) {
            wk_dep_fail(b->redis, err);
            ok = false;
        } else if (rc == JQ_LOST) {
            pthread_mutex_lock(&b->mu);
            held *x = find(b, b->ids[i]);
            if (x && !x->lost) {
                x->lost = true;
                LOG_KV(LOG_WARN, "heartbeat: job no longer held by this worker", LF_S("id", x->id),
                       LF_S("type", x->type), LF_I("attempt", x->attempt),
                       LF_S("worker", b->worker));
            }
            pthread_mutex_unlock(&b->mu);
        }
    }
    if (ok && n) wk_dep_ok(b->redis);
    return ok;
}

static void maintain(wk_beat *b) {
    char err[256];
    if (jq_promote(b->q, err, sizeof err) == JQ_ERR) {
        wk_dep_fail(b->redis, err);
        return;
    }
    int n = jq_reap(b->q, err, sizeof err);
    if (n == JQ_ERR) {
        wk_dep_fail(b->redis, err);
        return;
    }
    wk_dep_ok(b->redis);
    if (n > 0)
        LOG_KV(LOG_WARN, "reaped jobs whose lease expired", LF_I("jobs", n),
               LF_S("worker", b->worker));
}

static void *beat_main(void *arg) {
    wk_beat *b = arg;
    int64_t hb_every = b->lease_us / 3;
    int64_t now = wk_mono_us();
    int64_t next_hb = now + hb_every;
    int64_t next_maint = now + (int64_t)(next_rnd(b) % MAINT_US);
    pthread_mutex_lock(&b->mu);
    while (!b->quit) {
        check_timeouts(b);
        now = wk_mono_us();
        if (now >= next_hb) {
            pthread_mutex_unlock(&b->mu);
            bool ok = heartbeat_all(b);
            pthread_mutex_lock(&b->mu);
            next_hb = wk_mono_us() + (ok || hb_every < HB_RETRY_US ? hb_every : HB_RETRY_US);
            continue;
        }
        if (now >= next_maint) {
            pthread_mutex_unlock(&b->mu);
            maintain(b);
            pthread_mutex_lock(&b->mu);
            next_maint = wk_mono_us() + MAINT_US + (int64_t)(next_rnd(b) % (MAINT_US / 2));
            continue;
        }
        int64_t wake = now + TICK_US;
        if (next_hb < wake) wake = next_hb;
        if (next_maint < wake) wake = next_maint;
        struct timespec ts = {(time_t)(wake / 1000000), (long)(wake % 1000000) * 1000};
        (void)pthread_cond_timedwait(&b->cv, &b->mu, &ts); /* timeout or wakeup: same */
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void free_beat(wk_beat *b) {
    jq_close(b->q);
    free(b->h);
    free(b->ids);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

wk_beat *wk_beat_start(const cfg *c, const char *worker, wk_dep *redis, int capacity, char *err,
                       size_t errlen) {
    wk_beat *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(b->worker, sizeof b->worker, "%s", worker);
    b->redis = redis;
    b->lease_us = (int64_t)c->job_lease_ms * 1000;
    b->timeout_cap_ms = c->job_timeout_ms;
    b->cap = capacity > 0 ? capacity : 1;
    b->rnd = ((uint64_t)getpid() << 32) ^ (uint64_t)wk_mono_us() ^ 0x9E3779B97F4A7C15ULL;
    b->h = calloc((size_t)b->cap, sizeof *b->h);
    b->ids = calloc((size_t)b->cap, sizeof *b->ids);
    b->q = jq_open(c->redis_url, err, errlen);
    if (!b->h || !b->ids || !b->q) {
        if (!b->h || !b->ids) snprintf(err, errlen, "out of memory");
        free_beat(b);
        return NULL;
    }
    jq_set_lease_ms(b->q, c->job_lease_ms);
    /* signals go to the job loop, not here */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&b->th, NULL, beat_main, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        snprintf(err, errlen, "pthread_create: %s", strerror(rc));
        free_beat(b);
        return NULL;
    }
    b->started = true;
    return b;
}

void wk_beat_stop(wk_beat *b) {
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->quit = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (b->started) pthread_join(b->th, NULL);
    free_beat(b);
}

bool wk_beat_hold(wk_beat *b, const jq_job *j, const wk_handler *h, int max_attempts) {
    pthread_mutex_lock(&b->mu);
    held *x = NULL;
    for (int i = 0; i < b->cap && !x; i++)
        if (!b->h[i].used) x = &b->h[i];
    if (x) {
        memset(x, 0, sizeof *x);
        x->used = true;
        memcpy(x->id, j->id, sizeof x->id);
        memcpy(x->type, j->type, sizeof x->type);
        x->attempt = j->attempts;
        x->max_attempts = max_attempts;
        x->timeout_ms = h->timeout_ms;
        if (b->timeout_cap_ms > 0 && b->timeout_cap_ms < x->timeout_ms)
            x->timeout_ms = b->timeout_cap_ms;
    }
    pthread_mutex_unlock(&b->mu);
    return x != NULL;
}

void wk_beat_run(wk_beat *b, const char *id) {
    pthread_mutex_lock(&b->mu);
    held *x = find(b, id);
    if (x) x->run_start_us = wk_mono_us();
    pthread_mutex_unlock(&b->mu);
}

void wk_beat_ran(wk_beat *b, const char *id) {
    pthread_mutex_lock(&b->mu); /* blocks for good while time_out runs */
    held *x = find(b, id);
    if (x) x->run_start_us = 0;
    pthread_mutex_unlock(&b->mu);
}

void wk_beat_release(wk_beat *b, const char *id) {
    pthread_mutex_lock(&b->mu);
    held *x = find(b, id);
    if (x) x->used = false;
    pthread_mutex_unlock(&b->mu);
}
