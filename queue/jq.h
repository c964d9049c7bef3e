/* jq.h — the job queue over Redis (prefix jq_).
 *
 * DESIGN — A job is a Redis hash; every state change is one Lua script, so a
 * job is never half-moved.  All keys share the hash tag {billing}
 * ("bq:{billing}:…") so the whole queue lives in one Redis Cluster slot.
 *
 *   bq:{billing}:seq             INCR → job ids ("1", "2", …)
 *   bq:{billing}:job:<id>        hash: type org payload state attempts
 *                                max_attempts progress progress_msg result error
 *                                worker lease_until created_at started_at
 *                                finished_at run_at dedupe
 *   bq:{billing}:ready:<type>    list of ids waiting (LPUSH in, RPOP out: FIFO)
 *   bq:{billing}:wake:<type>     list of tokens; an idle worker BLPOPs it
 *   bq:{billing}:delayed         zset id → run_at (ms): scheduled and retries
 *   bq:{billing}:leases          zset id → lease deadline (ms) of active jobs
 *   bq:{billing}:dead            zset id → time it died (ms)
 *   bq:{billing}:dedupe:<key>    string → id, while that job is not finished
 *   bq:{billing}:types           set of job types ever enqueued
 *   bq:{billing}:stats           hash "<type>:<state>" gauges and
 *                                "<type>:succeeded_total" / ":failed_total" /
 *                                ":retried_total" / ":dead_total" counters
 *   bq:{billing}:reaper          single-flight lock of the lease reaper
 *
 * Enqueue and ack exist in batch form (one script run for many jobs): the
 * single-job calls are batches of one, so there is one code path.
 *
 * States: queued → active → succeeded | delayed (retry) | dead; delayed →
 * queued when due; dead → queued on jq_retry.  A job that is not acked before
 * its lease ends (worker killed, stuck, partitioned) is put back by the reaper
 * and counts as an attempt.  Finished jobs (succeeded, dead) expire after the
 * retention time (default 7 days) so Redis does not grow without bound; the
 * PostgreSQL rows that jobs produce are the lasting record.
 *
 * AT-LEAST-ONCE: the queue never loses a job, and never promises to run it
 * only once.  A worker can die after its handler's effect is committed and
 * before its ack; the job then runs again.  Every handler MUST be idempotent
 * (e.g. keyed inserts with ON CONFLICT DO NOTHING, or a "done" marker written
 * in the same transaction as the effect).  An ack or fail from a worker that
 * no longer holds the job (its lease expired and the job moved on) is refused
 * with JQ_LOST and changes nothing.
 *
 * Scripts are loaded once per connection with SCRIPT LOAD and called with
 * EVALSHA; on NOSCRIPT (Redis restarted or SCRIPT FLUSH) they are loaded again
 * and the call is retried once.  Times are milliseconds since the epoch,
 * taken from the caller's clock (pass 0 to use the client's current time).
 *
 * Threads: a jq wraps one rds connection and is used by one thread at a time;
 * a worker keeps one for its job loop and another for heartbeats.
 */
#ifndef ML_JQ_H
#define ML_JQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "rds.h"

#define JQ_DEFAULT_LEASE_MS     30000
#define JQ_DEFAULT_RETENTION_MS (7LL * 24 * 3600 * 1000)
#define JQ_DEFAULT_MAX_ATTEMPTS 5
#define JQ_ID_MAX               24
#define JQ_TYPE_MAX             64
#define JQ_REMOVE_ON_SUCCESS    (-1) /* jq_enqueue_opts.keep_ms: delete at ack */

enum {
    JQ_OK = 0,
    JQ_ERR = -1,      /* Redis unreachable or script error: err filled */
    JQ_LOST = 1,      /* the job is not (any more) active with this worker */
    JQ_NOT_FOUND = 2, /* no such job (or it expired) */
    JQ_BAD_STATE = 3, /* e.g. jq_retry of a job that is not dead */
    JQ_NOSCRIPT = 4,  /* jq_enqueue_reply only: the script is not loaded */
};

typedef struct jq jq;

/* Opens a queue client on its own Redis connection.  NULL only on a bad URL
 * or out of memory (err filled); the connection itself is made lazily and
 * re-made after errors. */
jq *jq_open(const char *redis_url, char *err, size_t errlen);
void jq_close(jq *q); /* NULL ok */
rds *jq_rds(jq *q);
/* Lease and retention used by this client (defaults above). */
void jq_set_lease_ms(jq *q, int64_t ms);
void jq_set_retention_ms(jq *q, int64_t ms);

typedef struct jq_enqueue_opts {
    int max_attempts;       /* 0 = JQ_DEFAULT_MAX_ATTEMPTS */
    int64_t delay_ms;       /* > 0: delayed job, runs at now + delay */
    const char *dedupe_key; /* NULL = none; else an unfinished job with the
                               same key is returned instead of a new one */
    int64_t keep_ms;        /* once succeeded, keep the job this long; 0 = the
                               acking client's retention; JQ_REMOVE_ON_SUCCESS =
                               delete at ack (BullMQ's removeOnComplete) */
} jq_enqueue_opts;

/* Enqueues a job of `type` for organization `org` (0 = none) with a JSON
 * payload.  Writes the id; *existing is set when dedupe returned an earlier
 * job (may be NULL).  JQ_OK or JQ_ERR. */
int jq_enqueue(jq *q, const char *type, long long org, const char *payload,
               const jq_enqueue_opts *opts, char id[JQ_ID_MAX], bool *existing, char *err,
               size_t errlen);

/* Batch enqueue in one round trip and one script run: the same rules as
 * jq_enqueue for each job; ids (and existing) are written back into jobs. */
typedef struct jq_new {
    const char *type;
    long long org;
    const char *payload;
    jq_enqueue_opts opts;
    char id[JQ_ID_MAX]; /* out */
    bool existing;      /* out: dedupe returned an earlier job */
} jq_new;
int jq_enqueue_many(jq *q, jq_new *jobs, size_t n, char *err, size_t errlen);
#define JQ_ENQUEUE_MAX 100000 /* jobs per batch */

/* The same batch enqueue on a connection of the caller's own (billing-api's
 * loop threads use hiredis async contexts): the script to SCRIPT LOAD once
 * per connection (malloc'd text, lib.lua prepended; NULL when out of memory,
 * err filled), the EVALSHA command for jobs in RESP form (*cmd malloc'd,
 * free with redisFreeCommand; for redisAsyncFormattedCommand; JQ_OK or
 * JQ_ERR), and the decoding of its reply into jobs[].id / existing: JQ_OK,
 * JQ_NOSCRIPT (load the script and send the command again) or JQ_ERR (err
 * filled).  Pure but for the clock (now) read by jq_enqueue_command. */
char *jq_enqueue_script(size_t *len, char *err, size_t errlen);
int jq_enqueue_command(const char *sha, const jq_new *jobs, size_t n, char **cmd, size_t *len,
                       char *err, size_t errlen);
int jq_enqueue_reply(const redisReply *rep, jq_new *jobs, size_t n, char *err, size_t errlen);

typedef struct jq_job {
    char id[JQ_ID_MAX];
    char type[JQ_TYPE_MAX];
    long long org;
    char *payload; /* malloc'd JSON text */
    int attempts;  /* including this one */
    int max_attempts;
    int64_t lease_until;
} jq_job;
void jq_job_clear(jq_job *j); /* frees payload */

/* Reserves up to `max` jobs of the given types (tried in order) for worker
 * `worker`, each with a lease of the client's lease time.  Due delayed jobs
 * are promoted first.  Returns the number reserved (0 = none ready) or
 * JQ_ERR. */
int jq_reserve(jq *q, const char *const *types, size_t ntypes, const char *worker, jq_job *out,
               int max, char *err, size_t errlen);
/* Blocks up to timeout_ms until a job of one of the types may be ready (a
 * wake token, or the timeout).  0 = woken, 1 = timed out, JQ_ERR. */
int jq_wait(jq *q, const char *const *types, size_t ntypes, int timeout_ms, char *err,
            size_t errlen);

/* Extends the lease of an active job held by worker. JQ_OK / JQ_LOST / JQ_ERR. */
int jq_heartbeat(jq *q, const char *id, const char *worker, char *err, size_t errlen);
/* Records progress (0..100, clamped) and a short message (may be NULL). */
int jq_progress(jq *q, const char *id, const char *worker, int pct, const char *msg, char *err,
                size_t errlen);
/* Success with a JSON result (NULL = "{}").  JQ_OK / JQ_LOST / JQ_ERR. */
int jq_ack(jq *q, const char *id, const char *worker, const char *result, char *err, size_t errlen);
/* Acks n jobs held by worker in one round trip; status[i] is JQ_OK or JQ_LOST.
 * Returns JQ_OK (statuses filled) or JQ_ERR.  results may be NULL. */
int jq_ack_many(jq *q, const char *worker, const char *const *ids, const char *const *results,
                size_t n, int *status, char *err, size_t errlen);
/* Failure.  permanent → dead at once; else retried after backoff (see
 * jq_backoff_ms) unless the attempts are used up, then dead.  *dead (may be
 * NULL) tells which.  JQ_OK / JQ_LOST / JQ_ERR. */
int jq_fail(jq *q, const char *id, const char *worker, const char *error, bool permanent,
            bool *dead, char *err, size_t errlen);

/* Moves due delayed jobs to their ready lists; returns how many or JQ_ERR. */
int jq_promote(jq *q, char *err, size_t errlen);
/* Puts jobs whose lease expired back (or dead when out of attempts).
 * Single-flight: if another client is reaping, returns 0 at once.  Returns
 * how many jobs were reaped or JQ_ERR. */
int jq_reap(jq *q, char *err, size_t errlen);
/* A dead job back to queued with a fresh set of attempts.
 * JQ_OK / JQ_NOT_FOUND / JQ_BAD_STATE / JQ_ERR. */
int jq_retry(jq *q, const char *id, char *err, size_t errlen);

/* The job hash as a JSON object text (malloc'd) with numbers as numbers,
 * payload/result embedded as JSON; JQ_NOT_FOUND if gone. */
int jq_get(jq *q, const char *id, char **json, char *err, size_t errlen);
/* {"<type>": {"queued": n, "active": n, "delayed": n, "dead": n,
 *  "succeeded_total": n, "failed_total": n, "retried_total": n,
 *  "dead_total": n}, ...} as JSON text (malloc'd). */
int jq_stats(jq *q, char **json, char *err, size_t errlen);

/* Retry delay for the given attempt (1-based): exponential from base_ms,
 * doubling per attempt, capped at cap_ms, with "full jitter" in
 * [d/2, d] drawn from rnd (a uniform 64-bit value).  Pure. */
int64_t jq_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint64_t rnd);

#endif
