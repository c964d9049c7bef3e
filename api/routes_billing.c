/* routes_billing.c — POST /v1/invoices (generate or refresh one customer's
 * draft), POST /v1/billing-runs (a draft for every customer of a month) and
 * GET /v1/billing-runs[/{id}].
 *
 * DESIGN — Generation is a job (worker/invoice.c, db/invoice.c): the
 * handler only validates, resolves the customer and enqueues.
 *   invoice.generate  {customer_id, period_start, period_end, actor_id} with a
 *                     dedupe key per (org, customer, period), so a double
 *                     click while one is pending shares its job;
 *   billing.run       {run_id, actor_id}: a billing_runs row is inserted first
 *                     (an unfinished run of the same month is returned
 *                     instead: 200), then its fan-out job.
 * Periods are [start, end): a date "2026-10-01" (midnight UTC) or an RFC 3339
 * time at a whole UTC hour, from 2000 on, at most 366 days long; a run's
 * period is a month "YYYY-MM".  The period parsing is pure (period_parse).
 */
#include "fmacros.h"
#include "api.h"
#include "log.h"
#include "routes.h"
#include "ts.h"
#include <stdlib.h>

#define HOUR_US       3600000000LL
#define MAX_PERIOD_US (366LL * 24 * HOUR_US)
#define Y2000_US      946684800000000LL /* 2000-01-01T00:00:00Z */

/* A period bound: a date or an RFC 3339 time at a whole UTC hour, >= 2000.
 * NULL, or why not. */
static const char *period_parse(const char *s, int64_t *us) {
    if (!s || ts_parse_date_or_time(s, strlen(s), us) != 0)
        return "must be a date (YYYY-MM-DD) or an RFC 3339 time";
    if (*us % HOUR_US != 0) return "must be a whole hour in UTC";
    if (*us < Y2000_US) return "must be in 2000 or later";
    return NULL;
}

/* "YYYY-MM" → [first of the month, first of the next) in µs. */
static bool month_parse(const char *s, int64_t *from, int64_t *to) {
    if (!s || strlen(s) != 7 || s[4] != '-' || strspn(s, "0123456789-") != 7) return false;
    int y = atoi(s), m = atoi(s + 5);
    if (y < 2000 || y > 9998 || m < 1 || m > 12) return false;
    *from = ts_days_from_civil(y, (unsigned)m, 1) * 24 * HOUR_US;
    *to = ts_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1u : (unsigned)m + 1, 1) * 24 * HOUR_US;
    return true;
}

static const jx_field k_generate[] = {
    {"customer_id", JX_STRING, JX_REQUIRED, 1, 128},
    {"period_start", JX_STRING, JX_REQUIRED, 1, 64},
    {"period_end", JX_STRING, JX_REQUIRED, 1, 64},
    {NULL, 0, 0, 0, 0},
};

static void check_generate(const json_t *body, jx_errs *e) {
    int64_t a = 0, b = 0;
    const char *why_a = NULL, *why_b = NULL;
    if (!jx_errs_hasp(e, NULL, "period_start") &&
        (why_a = period_parse(jx_str(body, "period_start"), &a)))
        jx_errs_add(e, "period_start", "%s", why_a);
    if (!jx_errs_hasp(e, NULL, "period_end") &&
        (why_b = period_parse(jx_str(body, "period_end"), &b)))
        jx_errs_add(e, "period_end", "%s", why_b);
    if (jx_errs_hasp(e, NULL, "period_start") || jx_errs_hasp(e, NULL, "period_end")) return;
    if (b <= a)
        jx_errs_add(e, "period_end", "must be after period_start");
    else if (b - a > MAX_PERIOD_US)
        jx_errs_add(e, "period_end", "a period is at most 366 days long");
}

/* Enqueues one job; replies 503 and returns false when the queue is down. */
static bool enqueue(api_req *r, const char *type, const char *payload, const char *dedupe,
                    char job[JQ_ID_MAX]) {
    jq_enqueue_opts opts = {0};
    opts.dedupe_key = dedupe;
    char err[256];
    if (jq_enqueue(r->jq, type, r->who.org_id, payload, &opts, job, NULL, err, sizeof err) == JQ_OK)
        return true;
    LOG_KV(LOG_WARN, "cannot enqueue", LF_S("request_id", r->request_id), LF_S("type", type),
           LF_S("error", err));
    api_header(r, "Retry-After", "2");
    api_err(r, 503, "unavailable", "the job queue is unavailable; retry later");
    return false;
}

static const char *actor_id(const api_req *r) {
    return r->who.kind == WHO_SESSION && r->who.user_id[0] ? r->who.user_id : NULL;
}

void h_invoices_generate(api_req *r) {
    if (!api_validate(r, k_generate, check_generate)) return;
    const char *ext = jx_str(r->json, "customer_id");
    int64_t a, b;
    period_parse(jx_str(r->json, "period_start"), &a);
    period_parse(jx_str(r->json, "period_end"), &b);
    long long cust = 0;
    bool has_plan = false;
    db_err de;
    int rc = repo_billing_customer(r->db, &de, r->who.org_id, ext, &cust, &has_plan);
    if (rc == REPO_NOT_FOUND) {
        api_invalid1(r, "customer_id", "no customer with this external id");
        return;
    }
    if (rc != REPO_OK) {
        api_db_fail(r, &de);
        return;
    }
    if (!has_plan) {
        api_invalid1(r, "customer_id", "the customer has no plan to price its usage with");
        return;
    }
    char ps[TS_FMT_MAX], pe[TS_FMT_MAX], payload[512], dedupe[160], job[JQ_ID_MAX];
    ts_format(a, ps, sizeof ps);
    ts_format(b, pe, sizeof pe);
    const char *who = actor_id(r);
    if (who)
        snprintf(payload, sizeof payload,
                 "{\"customer_id\":%lld,\"period_start\":\"%s\",\"period_end\":\"%s\","
                 "\"actor_id\":\"%s\"}",
                 cust, ps, pe, who);
    else
        snprintf(payload, sizeof payload,
                 "{\"customer_id\":%lld,\"period_start\":\"%s\",\"period_end\":\"%s\"}", cust, ps,
                 pe);
    snprintf(dedupe, sizeof dedupe, "gen:%lld:%lld:%s:%s", r->who.org_id, cust, ps, pe);
    if (!enqueue(r, "invoice.generate", payload, dedupe, job)) return;
    char url[64];
    snprintf(url, sizeof url, "/v1/jobs/%s", job);
    api_header(r, "Location", url);
    api_json(r, 202,
             json_pack("{s:s, s:s, s:s, s:s, s:s}", "job_id", job, "status_url", url, "customer_id",
                       ext, "period_start", ps, "period_end", pe));
}

static const jx_field k_run[] = {
    {"period", JX_STRING, JX_REQUIRED, 7, 7},
    {NULL, 0, 0, 0, 0},
};

static void check_run(const json_t *body, jx_errs *e) {
    int64_t a, b;
    if (!jx_errs_hasp(e, NULL, "period") && !month_parse(jx_str(body, "period"), &a, &b))
        jx_errs_add(e, "period", "must be a month YYYY-MM (2000 or later)");
}

void h_billing_runs_create(api_req *r) {
    if (!api_validate(r, k_run, check_run)) return;
    int64_t a, b;
    month_parse(jx_str(r->json, "period"), &a, &b);
    char ps[TS_FMT_MAX], pe[TS_FMT_MAX], id[40];
    ts_format(a, ps, sizeof ps);
    ts_format(b, pe, sizeof pe);
    const char *who = actor_id(r);
    bool existing = false;
    db_err de;
    int rc = repo_billing_run_create(r->db, &de, r->who.org_id, ps, pe, who ? who : "api", id,
                                     &existing);
    if (rc != REPO_OK) {
        api_db_fail(r, &de);
        return;
    }
    if (!existing) {
        char payload[160], dedupe[64], job[JQ_ID_MAX];
        if (who)
            snprintf(payload, sizeof payload, "{\"run_id\":\"%s\",\"actor_id\":\"%s\"}", id, who);
        else
            snprintf(payload, sizeof payload, "{\"run_id\":\"%s\"}", id);
        snprintf(dedupe, sizeof dedupe, "run:%s", id);
        if (!enqueue(r, "billing.run", payload, dedupe, job)) {
            if (repo_billing_run_delete(r->db, &de, r->who.org_id, id) != REPO_OK)
                LOG_KV(LOG_ERROR, "cannot delete a billing run without a job",
                       LF_S("request_id", r->request_id), LF_S("run_id", id),
                       LF_S("error", de.msg));
            return;
        }
        if (repo_billing_run_set_job(r->db, &de, r->who.org_id, id, job) != REPO_OK)
            LOG_KV(LOG_WARN, "cannot record the billing run's job id",
                   LF_S("request_id", r->request_id), LF_S("run_id", id), LF_S("error", de.msg));
    }
    json_t *out = NULL;
    rc = repo_billing_run_get(r->db, &de, r->who.org_id, id, &out);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, NULL, "billing run");
        return;
    }
    char url[80];
    snprintf(url, sizeof url, "/v1/billing-runs/%s", id);
    api_header(r, "Location", url);
    json_object_set_new(out, "status_url", json_string(url));
    api_json(r, existing ? 200 : 202, out);
}

void h_billing_runs_get(api_req *r) {
    db_err de;
    json_t *out = NULL;
    int rc = repo_billing_run_get(r->db, &de, r->who.org_id, r->pv[0], &out);
    if (rc == REPO_OK)
        api_json(r, 200, out);
    else
        api_reply_repo(r, rc, &de, NULL, "billing run");
}

void h_billing_runs_list(api_req *r) {
    int limit;
    char *cursor = NULL;
    if (api_page_params(r, &limit, &cursor) != 0) return;
    json_t *rows = NULL;
    char *next = NULL;
    db_err de;
    int rc = repo_billing_runs_list(r->db, &de, r->who.org_id, limit, cursor, &rows, &next);
    free(cursor);
    if (rc == REPO_INVALID) {
        api_err(r, 400, "bad_request", "cursor is not valid");
        return;
    }
    if (rc != REPO_OK) {
        api_db_fail(r, &de);
        return;
    }
    api_page_reply(r, rows, next);
    free(next);
}
