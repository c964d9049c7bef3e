/* tw.h — integration-test harness for billing-worker and its jobs (prefix tw_).
 *
 * DESIGN — A test starts a real billing-worker (the binary this build made)
 * as a pool: the supervisor plus its worker processes, with the test
 * environment and extra "K=V" variables, its stderr in ML_ARTIFACTS.  The
 * supervisor gets SIGTERM if the test process dies (PR_SET_PDEATHSIG), and
 * tw_cleanup (a .fini) kills whatever a failed test left, so one failure
 * never leaves workers eating the next suite's jobs.  Jobs are enqueued and
 * watched with the queue library itself (jq) against the same Redis.
 */
#ifndef ML_TW_H
#define ML_TW_H
#include "jq.h"
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct tw_pool {
    pid_t pid;     /* the supervisor */
    char log[256]; /* its stderr (and its children's) */
} tw_pool;

/* Starts billing-worker with `workers` processes plus extra "K=V" entries
 * (NULL-terminated, may be NULL) and waits until every process reached Redis.
 * Aborts the test on failure. */
tw_pool *tw_start(int workers, const char *const *env);
/* SIGTERM to the supervisor; waits up to max_ms.  Returns its exit code, or
 * -1 if it had to be killed.  Frees p. */
int tw_stop(tw_pool *p, int max_ms);
/* Kills every pool still running (SIGKILL to supervisors and their children). */
void tw_cleanup(void);
/* pids of the live worker processes of p (children of the supervisor). */
int tw_children(const tw_pool *p, pid_t *out, int max);

void tw_msleep(long ms);
/* Waits until the log has >= want lines with every needle; returns the count. */
int tw_wait_lines(const char *path, const char *const *needles, int want, int max_ms);

jq *tw_jq(void);
/* Enqueues (asserting success); max_attempts 0 = default. */
void tw_enqueue(jq *q, const char *type, const char *payload, int max_attempts, char id[JQ_ID_MAX]);
/* The job as JSON (new reference), NULL if gone. */
json_t *tw_job(jq *q, const char *id);
/* Waits up to max_ms for a finished state (succeeded or dead); writes the
 * last state seen ("gone" if the job vanished) and returns it. */
const char *tw_wait_final(jq *q, const char *id, int max_ms, char out[32]);
/* Waits until every job is finished; returns how many are, at the end. */
int tw_wait_all_final(jq *q, char (*ids)[JQ_ID_MAX], int n, int max_ms);

/* First column of the first row of a query with up to 2 text parameters
 * (NULL = unused) as an integer; asserts the query works.  Connections come
 * from th_pg. */
long long tw_pg_int(PGconn *c, const char *sql, const char *p1, const char *p2);

#endif
