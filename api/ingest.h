/* ingest.h — the usage batcher: many accepted POST /v1/usage requests, one
 * job enqueue (prefix api_ingest_).
 *
 * DESIGN — Validated, resolved events (db_usage_row_text rows) of requests
 * handled on the loop threads are handed to one flusher thread with its own
 * job-queue client.  While one enqueue is in flight the next requests
 * accumulate; the flusher then takes them all, merges them per organization
 * into usage.ingest jobs of at most INGEST_JOB_EVENTS events / INGEST_JOB_BYTES,
 * enqueues every job in ONE script run (jq_enqueue_many), and answers each
 * request 202 {accepted, job_id} (the job holding its events) — or 503 with
 * Retry-After when Redis refused, in which case nothing of that request was
 * enqueued.  No timer: a lone request is flushed at once; under load batches
 * grow by themselves (group commit), so Redis sees a few hundred scripts a
 * second instead of one per event.  The 202 is sent only after Redis
 * answered; with appendfsync always, that means the job is on disk.
 * Requests that wait while more than INGEST_MAX_QUEUED events are queued are
 * refused at once (503), so a stalled Redis cannot eat the server's memory.
 */
#ifndef ML_API_INGEST_H
#define ML_API_INGEST_H
#include "api.h"

#define API_INGEST_TYPE         "usage.ingest"
#define API_INGEST_KEEP_MS      (10LL * 60 * 1000) /* finished ingest jobs: 10 min */
#define API_INGEST_MAX_ATTEMPTS 20

int api_ingest_start(const cfg *c, char *err, size_t errlen);
/* Processes what is queued, then stops the flusher. */
void api_ingest_stop(void);
/* Takes r (api_pending is called here) and rows (malloc'd, freed here):
 * n events of org, times within [min_us, max_us]. */
void api_ingest_submit(api_req *r, long long org, char *rows, size_t len, size_t n, int64_t min_us,
                       int64_t max_us);
/* The usage.ingest payload for rows (malloc'd JSON text or NULL). */
char *api_ingest_payload(const char *rows, size_t len, int64_t min_us, int64_t max_us);

#endif
