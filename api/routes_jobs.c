/* routes_jobs.c — GET /v1/jobs/{id}, GET /v1/admin/queues and
 * POST /v1/admin/jobs/{id}/retry.
 *
 * DESIGN — Jobs live in Redis (queue/jq.h), not in PostgreSQL; handlers reach
 * them through their database thread's job-queue client, r->jq.
 *
 * Ownership: a job belongs to the organization in its `org` field.  Anyone
 * else gets exactly the 404 of a missing (or expired) job, so sequential ids
 * cannot be probed across organizations.  Jobs with org 0 (platform work)
 * belong to no organization.  A platform admin without ?org sees every job;
 * with ?org=<slug> only that organization's, as on every RT_ORG route.
 *
 * The reply is a fixed projection of the job hash (job_view): id, type,
 * state, progress and its message, attempts, max_attempts, error, result and
 * the times as RFC 3339 UTC (the queue stores ms since the epoch).  The
 * payload, worker name, lease and dedupe key are internal and never leave
 * the server, not even for the job's own organization.
 *
 * Errors: a Redis that cannot be reached (connect refused, connection
 * dropped or timed out) or that answers LOADING/BUSY is 503 unavailable with
 * Retry-After; any other queue error is a 500 logged with the request id.
 */
#include "fmacros.h"
#include "api.h"
#include "log.h"
#include "routes.h"
#include "repo.h"
#include "ts.h"
#include <stdlib.h>

#define RETRY_AFTER_S "2"

/* ---- helpers ------------------------------------------------------------ */

/* Queue ids are decimal ("1", "2", …); anything else names no job. */
static bool valid_job_id(const char *id) {
    size_t n = strlen(id);
    return n >= 1 && n <= 19 && strspn(id, "0123456789") == n;
}

static void reply_not_found(api_req *r) { api_err(r, 404, "not_found", "no such job"); }

/* Replies to a JQ_ERR: 503 when Redis is unreachable or briefly unable to
 * serve, else 500. */
static void reply_queue_err(api_req *r, const char *err) {
    bool down = !rds_ctx(jq_rds(r->jq)) || strstr(err, "LOADING") || strstr(err, "BUSY") ||
                strstr(err, "MASTERDOWN") || strstr(err, "TRYAGAIN");
    if (down) {
        LOG_KV(LOG_WARN, "job queue unavailable", LF_S("request_id", r->request_id),
               LF_S("error", err));
        api_header(r, "Retry-After", RETRY_AFTER_S);
        api_err(r, 503, "unavailable", "the job queue is unavailable; retry later");
        return;
    }
    LOG_KV(LOG_ERROR, "job queue error", LF_S("request_id", r->request_id), LF_S("error", err));
    api_err(r, 500, "internal", "internal error (request %s)", r->request_id);
}

/* The job hash as JSON, or NULL after replying (404 when it does not exist,
 * or, with check_org, when the caller may not see it). */
static json_t *load_job(api_req *r, const char *id, bool check_org) {
    if (!valid_job_id(id)) {
        reply_not_found(r);
        return NULL;
    }
    char *text = NULL, err[256];
    int rc = jq_get(r->jq, id, &text, err, sizeof err);
    if (rc == JQ_NOT_FOUND) {
        reply_not_found(r);
        return NULL;
    }
    if (rc != JQ_OK) {
        reply_queue_err(r, err);
        return NULL;
    }
    json_error_t je;
    json_t *job = json_loads(text, 0, &je);
    free(text);
    if (!json_is_object(job)) {
        json_decref(job);
        snprintf(err, sizeof err, "job %s: unreadable hash: %s", id, je.text);
        reply_queue_err(r, err);
        return NULL;
    }
    if (check_org) {
        bool all = r->who.role == ROLE_ADMIN && r->who.org_id == 0;
        json_t *org = json_object_get(job, "org");
        bool mine =
            r->who.org_id != 0 && json_is_integer(org) && json_integer_value(org) == r->who.org_id;
        if (!all && !mine) {
            json_decref(job);
            reply_not_found(r); /* exactly as if it did not exist */
            return NULL;
        }
    }
    return job;
}

/* A queue time (ms since the epoch) as RFC 3339, or null when unset. */
static json_t *time_of(const json_t *job, const char *key) {
    json_t *v = json_object_get(job, key);
    json_int_t ms = json_is_integer(v) ? json_integer_value(v) : 0;
    char b[TS_FMT_MAX];
    if (ms <= 0 || ms > INT64_MAX / 1000 || ts_format((int64_t)ms * 1000, b, sizeof b) < 0)
        return json_null();
    return json_string(b);
}

/* A non-empty string field, or null. */
static json_t *text_of(const json_t *job, const char *key) {
    const char *s = json_string_value(json_object_get(job, key));
    return s && *s ? json_string(s) : json_null();
}

static json_int_t int_of(const json_t *job, const char *key) {
    return json_integer_value(json_object_get(job, key)); /* 0 when absent */
}

/* What the API shows of a job; steals nothing.  NULL only when out of
 * memory (api_json then replies 503). */
static json_t *job_view(const json_t *job) {
    json_t *result = json_object_get(job, "result");
    return json_pack("{s:O, s:o, s:o, s:I, s:o, s:I, s:I, s:o, s:O, s:o, s:o, s:o, s:o}", "id",
                     json_object_get(job, "id"), "type", text_of(job, "type"), "state",
                     text_of(job, "state"), "progress", int_of(job, "progress"), "progress_msg",
                     text_of(job, "progress_msg"), "attempts", int_of(job, "attempts"),
                     "max_attempts", int_of(job, "max_attempts"), "error", text_of(job, "error"),
                     "result", result ? result : json_null(), "created_at",
                     time_of(job, "created_at"), "started_at", time_of(job, "started_at"),
                     "finished_at", time_of(job, "finished_at"), "run_at", time_of(job, "run_at"));
}

/* ---- handlers ----------------------------------------------------------- */

/* A billing.run job finishes once it has queued one invoice.generate job per
 * customer; the run's own progress (done / failed / total, counted from its
 * items in PostgreSQL) is shown on the job as billing_run, and the job's
 * progress is the run's once the fan-out is over.  Best effort: the job view
 * stands alone if the row cannot be read. */
static void add_billing_run(api_req *r, const json_t *job, json_t *view) {
    const char *type = json_string_value(json_object_get(job, "type"));
    const json_t *payload = json_object_get(job, "payload");
    const char *run_id = json_string_value(json_object_get(payload, "run_id"));
    if (!view || !type || strcmp(type, "billing.run") || !run_id) return;
    json_t *run = NULL;
    db_err de;
    long long org = (long long)json_integer_value(json_object_get(job, "org"));
    if (repo_billing_run_get(r->db, &de, org, run_id, &run) != REPO_OK) return;
    json_t *keep = json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(run, "id"), "status",
        json_object_get(run, "status"), "total", json_object_get(run, "total"), "done",
        json_object_get(run, "done"), "failed", json_object_get(run, "failed"), "skipped",
        json_object_get(run, "skipped"), "progress", json_object_get(run, "progress"),
        "finished_at", json_object_get(run, "finished_at"));
    const char *state = json_string_value(json_object_get(job, "state"));
    if (keep && state && !strcmp(state, "succeeded")) {
        json_object_set(view, "progress", json_object_get(run, "progress"));
        char msg[96];
        snprintf(msg, sizeof msg, "%lld of %lld customers done, %lld failed",
                 (long long)json_integer_value(json_object_get(run, "done")),
                 (long long)json_integer_value(json_object_get(run, "total")),
                 (long long)json_integer_value(json_object_get(run, "failed")));
        json_object_set_new(view, "progress_msg", json_string(msg));
    }
    if (keep) json_object_set_new(view, "billing_run", keep);
    json_decref(run);
}

void h_jobs_get(api_req *r) {
    json_t *job = load_job(r, r->pv[0], true);
    if (!job) return;
    json_t *view = job_view(job);
    add_billing_run(r, job, view);
    api_json(r, 200, view);
    json_decref(job);
}

void h_admin_queues(api_req *r) {
    char *text = NULL, err[256];
    int rc = jq_stats(r->jq, &text, err, sizeof err);
    if (rc != JQ_OK) {
        reply_queue_err(r, err);
        return;
    }
    json_t *stats = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(stats)) {
        json_decref(stats);
        reply_queue_err(r, "unreadable stats");
        return;
    }
    api_json(r, 200, json_pack("{s:o}", "data", stats));
}

void h_admin_job_retry(api_req *r) {
    const char *id = r->pv[0];
    if (!valid_job_id(id)) {
        reply_not_found(r);
        return;
    }
    char err[256];
    int rc = jq_retry(r->jq, id, err, sizeof err);
    if (rc == JQ_NOT_FOUND) {
        reply_not_found(r);
        return;
    }
    if (rc == JQ_BAD_STATE) {
        json_t *job = load_job(r, id, false); /* for its state; 404 if it just expired */
        if (!job) return;
        const char *st = json_string_value(json_object_get(job, "state"));
        char msg[160];
        snprintf(msg, sizeof msg, "job %s is %s: only a dead job can be retried", id,
                 st ? st : "in an unknown state");
        api_json(r, 409,
                 json_pack("{s:{s:s, s:s, s:[{s:s, s:s}]}}", "error", "code", "conflict", "message",
                           msg, "details", "field", "state", "message", st ? st : "unknown"));
        json_decref(job);
        return;
    }
    if (rc != JQ_OK) {
        reply_queue_err(r, err);
        return;
    }
    LOG_KV(LOG_INFO, "dead job retried", LF_S("request_id", r->request_id), LF_S("job", id),
           LF_S("by", r->who.user_id));
    json_t *job = load_job(r, id, false);
    if (!job) return;
    api_json(r, 200, job_view(job));
    json_decref(job);
}
