/* dep.c — dependency health, retry pacing and the per-job log line of a
 * worker process.  See wk_int.h.
 *
 * DESIGN — A wk_dep is shared by the job loop and the heartbeat thread under
 * its own mutex; it only decides what to log, never whether to retry (the
 * callers retry, paced by wk_backoff).  Lines are logged with the mutex held,
 * so the "down" and "up" lines of one dependency never cross.
 */
#include "fmacros.h"
#include "wk_int.h"
#include "log.h"
#include <errno.h>
#include <time.h>
#include <unistd.h>

int64_t wk_mono_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

void wk_sleep_ms(long ms) {
    if (ms <= 0) return;
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) && errno == EINTR) {
    }
}

void wk_dep_init(wk_dep *d, const char *msg, int slot) {
    pthread_mutex_init(&d->mu, NULL);
    d->msg = msg;
    d->slot = slot;
    d->up = -1;
    d->fails = 0;
    d->down_since_us = 0;
}

void wk_dep_destroy(wk_dep *d) { pthread_mutex_destroy(&d->mu); }

void wk_dep_ok(wk_dep *d) {
    pthread_mutex_lock(&d->mu);
    if (d->up != 1) {
        if (d->up == 0)
            LOG_KV(LOG_INFO, d->msg, LF_S("state", "up"), LF_I("slot", d->slot),
                   LF_I("pid", getpid()),
                   LF_I("down_ms", (wk_mono_us() - d->down_since_us) / 1000));
        else
            LOG_KV(LOG_INFO, d->msg, LF_S("state", "up"), LF_I("slot", d->slot),
                   LF_I("pid", getpid()));
        d->up = 1;
    }
    d->fails = 0;
    pthread_mutex_unlock(&d->mu);
}

void wk_dep_fail(wk_dep *d, const char *err) {
    pthread_mutex_lock(&d->mu);
    if (d->fails++ == 0) d->down_since_us = wk_mono_us();
    if (d->up != 0 && (d->fails >= 2 || d->up == -1)) {
        d->up = 0;
        LOG_KV(LOG_WARN, d->msg, LF_S("state", "down"), LF_I("slot", d->slot),
               LF_I("pid", getpid()), LF_S("error", err));
    }
    pthread_mutex_unlock(&d->mu);
}

void wk_backoff_sleep(wk_backoff *b) {
    long ms = 0;
    if (b->tries > 0) {
        ms = 50L << (b->tries - 1 < 5 ? b->tries - 1 : 5);
        if (ms > 1000) ms = 1000;
    }
    b->tries++;
    wk_sleep_ms(ms);
}

void wk_log_job(const char *id, const char *type, int attempt, int64_t duration_us,
                const char *outcome, const char *error, const char *worker) {
    bool ok = !strcmp(outcome, "ok");
    LOG_KV(ok ? LOG_INFO : LOG_WARN, "job", LF_S("id", id), LF_S("type", type),
           LF_I("attempt", attempt), LF_I("duration_us", duration_us), LF_S("outcome", outcome),
           error && *error ? LF_S("error", error) : (log_field){0}, LF_S("worker", worker));
}
