/* ingest.h — the usage batcher: many accepted POST /v1/usage requests, one
 * job enqueue (prefix api_ingest_).
 *
 * DESIGN — One batcher for the server, living on loop 0's thread with a
 * hiredis async context attached to that loop's event_base: no thread of
 * its own, no blocking call.  The RT_FAST handler on any loop thread adds
 * its validated, resolved events (db_usage_row_text rows) to the batcher's
 * waiting list (a mutex) and, when no enqueue is in flight, activates the
 * batcher's event.  While one enqueue is in flight the next requests
 * accumulate; when its reply comes they are all taken, merged per
 * organization into usage.ingest jobs of at most INGEST_JOB_EVENTS events /
 * INGEST_JOB_BYTES, and enqueued in ONE EVALSHA of the queue's enqueue
 * script (jq_enqueue_command: the same script and reply as jq_enqueue_many).
 * One connection and one script run per round for the whole server keeps
 * Redis' work (and its fsyncs) per event low.  Each request is answered 202
 * {accepted, job_id} (the job holding its events) only after that script
 * returned OK — with Redis on appendfsync always, the job is on disk — or
 * 503 with Retry-After when Redis refused, was unreachable or did not
 * answer within INGEST_TIMEOUT_MS, in which case nothing of that request was
 * (knowingly) enqueued.  Loop 0's own requests are answered on the spot;
 * another loop's go back through its completion list (api_complete).  No
 * timer: a lone request is flushed at the end of its loop iteration; under
 * load batches grow by themselves (group commit).  Requests that arrive while
 * more than INGEST_MAX_QUEUED events wait are refused at once (503), so a
 * stalled Redis cannot eat the server's memory.
 *
 * The connection is made on first use and after any error: AUTH / SELECT /
 * SCRIPT LOAD first, and no job is sent before all three answered OK (a job
 * must never land in the wrong database).  A NOSCRIPT reply (SCRIPT FLUSH)
 * loads the script again and resends the batch once.
 *
 * Threads: api_ingest_submit runs on any loop thread, everything else on
 * loop 0's (api_ingest_payload anywhere); api_ingest_free runs after the
 * loops stopped and answers what is left with 503.
 */
#ifndef ML_API_INGEST_H
#define ML_API_INGEST_H
#include "api.h"

#define API_INGEST_TYPE         "usage.ingest"
#define API_INGEST_KEEP_MS      (10LL * 60 * 1000) /* finished ingest jobs: 10 min */
#define API_INGEST_MAX_ATTEMPTS 20

struct event_base;
typedef struct api_ingest api_ingest;

/* The batcher, on the loop running base (NULL on a bad Redis URL or out of
 * memory, err filled).  Connects lazily. */
api_ingest *api_ingest_new(struct event_base *base, const cfg *c, char *err, size_t errlen);
/* After the loop stopped: answers what is left (503) and frees.  NULL ok. */
void api_ingest_free(api_ingest *g);
/* The batcher (server.c; the same for every loop). */
api_ingest *api_loop_ingest(api_loop *l);
/* Any loop thread: takes r (api_pending is called here) and rows (malloc'd,
 * freed here): n events of org, times within [min_us, max_us]. */
void api_ingest_submit(api_req *r, long long org, char *rows, size_t len, size_t n, int64_t min_us,
                       int64_t max_us);
/* The usage.ingest payload for rows (malloc'd JSON text or NULL). */
char *api_ingest_payload(const char *rows, size_t len, int64_t min_us, int64_t max_us);

#endif
