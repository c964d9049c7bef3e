/* handlers.h — billing-worker's job handlers and the table that binds job
 * types to them (prefix wk_).
 *
 * DESIGN — One row per job type in worker/handlers.c:
 *   {type, handler, max attempts, timeout ms, batch}
 * A worker process reserves only the types in the table, runs each job with
 * its handler on the job-loop thread, then acks or fails it.  Adding a job
 * type is writing its handler (in its own file, declared below) and adding
 * one row.
 *
 * IDEMPOTENCE — The queue delivers at least once: a job runs again when its
 * worker dies after the effect committed and before the ack, when its lease
 * expired, or when a timeout killed the process.  Every handler MUST be
 * idempotent: key its writes (INSERT … ON CONFLICT DO NOTHING on a natural
 * key, or a "done" marker written in the same transaction as the effect),
 * write files to a temp name and rename them, and never assume that the
 * previous attempt did nothing.
 *
 * A handler:
 *   - reads ctx->payload (a parsed JSON object; validate it, reject unknown
 *     fields with a permanent error) and ctx->job (id, org, attempt);
 *   - uses ctx->db, the process's one PostgreSQL connection (it reconnects by
 *     itself); leave it outside a transaction when returning;
 *   - may call ctx->progress (best effort; JQ_LOST means the job moved on to
 *     another worker: stop and return WK_RETRY);
 *   - returns WK_OK with res->json (malloc'd JSON text, NULL = "{}"),
 *     WK_RETRY (retried with backoff until its attempts are used up) or
 *     WK_PERMANENT (dead at once: bad input, a missing row) with res->error.
 *     A failure because PostgreSQL is unreachable sets res->unavailable
 *     (wk_fail_db does): the loop waits for the database and runs the
 *     handler again in place, spending no attempt.
 *   - must return within its timeout.  A C handler cannot be interrupted
 *     safely, so a job still running past its timeout is failed (retryable)
 *     by the heartbeat thread and the process exits at once; the supervisor
 *     starts a fresh one.
 * Handlers run on one thread per process; they never see signals (SIGTERM
 * waits for them to finish).
 */
#ifndef ML_WK_HANDLERS_H
#define ML_WK_HANDLERS_H
#include "cfg.h"
#include "db.h"
#include "jq.h"
#include <jansson.h>
#include <stdbool.h>

typedef enum { WK_OK = 0, WK_RETRY = 1, WK_PERMANENT = 2 } wk_status;

typedef struct wk_ctx wk_ctx;
struct wk_ctx {
    const jq_job *job;     /* id, type, org, attempts (this one included) */
    db *db;                /* this process's PostgreSQL connection */
    jq *jq;                /* this loop's queue client (a handler may enqueue) */
    bool last_attempt;     /* a retryable failure now makes the job dead */
    const json_t *payload; /* the job's payload, a JSON object (borrowed) */
    const char *worker;    /* "<hostname>:<pid>" */
    const struct cfg *cfg; /* the process's configuration (storage dir, …) */
    /* Records progress 0..100 with a message (may be NULL).  Returns JQ_OK,
     * JQ_LOST (the job is not ours any more) or JQ_ERR (not recorded). */
    int (*progress)(wk_ctx *ctx, int pct, const char *msg);
    void *loop; /* the job loop's; handlers leave it alone */
};

typedef struct wk_result {
    char *json;       /* WK_OK: malloc'd JSON result text, NULL = "{}" */
    char error[512];  /* WK_RETRY / WK_PERMANENT: why */
    bool unavailable; /* WK_RETRY because PostgreSQL is unreachable */
} wk_result;

typedef wk_status (*wk_handler_fn)(wk_ctx *ctx, wk_result *res);
/* A handler that takes several jobs of its type at once (all reserved
 * together, consecutive in the batch) and succeeds or fails for all of them:
 * jobs[i]'s parsed payload is payloads[i]; ctx->job is jobs[0] and
 * ctx->payload NULL.  On WK_OK every job gets res->json as its result.  Jobs
 * whose payload is not a JSON object never reach it. */
typedef wk_status (*wk_many_fn)(wk_ctx *ctx, const jq_job *const *jobs,
                                const json_t *const *payloads, size_t n, wk_result *res);

typedef struct wk_handler {
    const char *type;
    wk_handler_fn fn;
    int max_attempts; /* a retryable failure on this attempt (or later) is
                         final, whatever the job was enqueued with */
    int timeout_ms;   /* one run's wall time before the process is killed */
    int batch;        /* most jobs of this type reserved at once (also capped
                         by BILLING_JOB_BATCH); 1 for long jobs, more for
                         short ones */
    wk_many_fn many;  /* if set, used instead of fn for runs of jobs */
    /* with many: checks one job's payload first; false (res->error set) =
     * that job fails permanently on its own, the others go on */
    bool (*check)(const jq_job *j, const json_t *payload, wk_result *res);
} wk_handler;

/* The table (worker/handlers.c). */
extern const wk_handler wk_handlers[];
extern const size_t wk_handlers_len;
/* The row for type, or NULL. */
const wk_handler *wk_handler_find(const char *type);

/* Helpers for handlers. */
/* Fills res->error (printf-style) and returns st. */
wk_status wk_fail(wk_result *res, wk_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A database error: WK_RETRY, with res->unavailable when the connection is
 * down (so the loop waits for PostgreSQL instead of spending an attempt). */
wk_status wk_fail_db(wk_result *res, const db_err *e, const char *what);
/* Sets res->json from obj (steals the reference): WK_OK, or WK_RETRY when
 * out of memory. */
wk_status wk_ok_json(wk_result *res, json_t *obj);
/* True if s (may be NULL) is a UUID in text form (8-4-4-4-12 hex digits). */
bool wk_is_uuid(const char *s);
/* Rejects members of payload not in the NULL-terminated allowed list:
 * true if all known, else false with res->error set. */
bool wk_payload_only(const json_t *payload, const char *const *allowed, wk_result *res);

/* Built-in types for tests and benchmarks (worker/builtin.c):
 *   noop   any object → {}
 *   sleep  {"ms": 0..600000, "effect": "<key>"?} → sleeps; with an effect,
 *          records it once in job_effects and every run in job_runs
 *   fail   {"permanent": bool?, "times": N?} → fails attempts 1..N (default:
 *          every attempt), then succeeds */
wk_status wk_job_noop(wk_ctx *ctx, wk_result *res);
wk_status wk_job_sleep(wk_ctx *ctx, wk_result *res);
wk_status wk_job_fail(wk_ctx *ctx, wk_result *res);

/* usage.ingest (worker/ingest.c): {"v":1, "min", "max", "rows"} payloads of
 * billing-api (db_usage_row_text rows); many jobs → one exactly-once insert. */
wk_status wk_job_usage_ingest(wk_ctx *ctx, wk_result *res);
wk_status wk_jobs_usage_ingest(wk_ctx *ctx, const jq_job *const *jobs,
                               const json_t *const *payloads, size_t n, wk_result *res);
bool wk_check_usage_ingest(const jq_job *j, const json_t *payload, wk_result *res);

/* usage.import (worker/import.c): {"import_id": "<uuid>"} loads the CSV file
 * of that usage_imports row → {import_id, status, rows, imported, duplicates,
 * rejected}.  Resumes after the last committed chunk when retried. */
wk_status wk_job_usage_import(wk_ctx *ctx, wk_result *res);

/* invoice.generate (worker/invoice.c): {customer_id, period_start, period_end,
 * actor_id?, run_id?} → {invoice_id, status, outcome, total, currency, lines};
 * billing.run: {run_id, actor_id?} → fans out one invoice.generate per
 * customer with a plan → {run_id, queued}. */
wk_status wk_job_invoice_generate(wk_ctx *ctx, wk_result *res);
wk_status wk_job_billing_run(wk_ctx *ctx, wk_result *res);

/* report.render (worker/report.c): {report_id} renders that reports row's
 * invoice or usage PDF into storage → {report_id, status, file, size_bytes,
 * sha256}; a finished report is not rendered again. */
wk_status wk_job_report_render(wk_ctx *ctx, wk_result *res);

#endif
