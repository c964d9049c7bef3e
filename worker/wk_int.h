/* wk_int.h — pieces of a billing-worker process shared by its job loop
 * (child.c) and its heartbeat thread (beat.c).  Internal to worker/.
 */
#ifndef ML_WK_INT_H
#define ML_WK_INT_H
#include "cfg.h"
#include "handlers.h"
#include "jq.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit code of a worker process killed by its own job timeout. */
#define WK_EXIT_TIMEOUT 3

int64_t wk_mono_us(void); /* CLOCK_MONOTONIC in microseconds */
void wk_sleep_ms(long ms);

/* ---- dependency health (dep.c) ----
 * What one process believes of Redis or PostgreSQL.  Calls that fail are
 * retried by their caller; the tracker only decides what to log: "down" once
 * when an outage begins (two failures in a row, so one stale connection that
 * reconnects at once is no outage) and "up" with the outage's length when a
 * call succeeds again — once per outage, whichever thread notices.  The
 * first state seen at start is logged too.  Thread-safe. */
typedef struct wk_dep {
    pthread_mutex_t mu;
    const char *msg; /* log message, e.g. "worker redis" */
    int slot;
    int up; /* -1 unknown, 0 down, 1 up */
    int fails;
    int64_t down_since_us;
} wk_dep;
void wk_dep_init(wk_dep *d, const char *msg, int slot);
void wk_dep_destroy(wk_dep *d);
void wk_dep_ok(wk_dep *d);
void wk_dep_fail(wk_dep *d, const char *err);

/* Retry pacing: the first retry is immediate (the connection was just
 * re-made), then 50 ms doubling to 1 s.  Never a busy loop. */
typedef struct wk_backoff {
    int tries;
} wk_backoff;
void wk_backoff_sleep(wk_backoff *b);

/* The per-job log line: {"msg":"job","id","type","attempt","duration_us",
 * "outcome": ok|retry|dead|lost, "error"?, "worker"}. */
void wk_log_job(const char *id, const char *type, int attempt, int64_t duration_us,
                const char *outcome, const char *error, const char *worker);

/* ---- held jobs and the heartbeat thread (beat.c) ----
 * The job loop registers every job it reserves until its ack/fail is
 * answered.  The heartbeat thread, on its own Redis connection so a long job
 * cannot starve it, extends the lease of every held job each lease/3, runs
 * jq_promote and jq_reap about once a second, and enforces handler timeouts:
 * a job running past its timeout is failed (retryable, "timeout after N ms")
 * and the process _exits with WK_EXIT_TIMEOUT at once. */
typedef struct wk_beat wk_beat;
/* Starts the thread.  capacity = most jobs held at once.  NULL with err. */
wk_beat *wk_beat_start(const cfg *c, const char *worker, wk_dep *redis, int capacity, char *err,
                       size_t errlen);
/* Stops and joins the thread; NULL ok. */
void wk_beat_stop(wk_beat *b);
/* A reserved job is held (heartbeats start).  max_attempts is the job's
 * effective limit (job and table).  False if the set is full (a bug). */
bool wk_beat_hold(wk_beat *b, const jq_job *j, const wk_handler *h, int max_attempts);
/* The handler starts / returned: its timeout clock runs in between.
 * wk_beat_ran never returns if the heartbeat thread is timing the job out
 * (the process is about to exit). */
void wk_beat_run(wk_beat *b, const char *id);
void wk_beat_ran(wk_beat *b, const char *id);
/* Forget a job (acked, failed or given up). */
void wk_beat_release(wk_beat *b, const char *id);

#endif
