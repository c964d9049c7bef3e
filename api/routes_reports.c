/* routes_reports.c — PDF reports: POST /v1/reports, GET /v1/reports[/{id}],
 * GET /v1/reports/{id}/download and GET /v1/invoices/{id}/pdf.
 *
 * DESIGN — A report is a row (db/repo_reports.c) plus a report.render job
 * {report_id} (worker/report.c) with the dedupe key "report:<id>", so
 * enqueueing the same report again while its job is unfinished returns that
 * job: every path below may "ensure" a job for a queued report without
 * creating a second one.
 *
 *   POST    validates, inserts (or finds the unfinished identical request:
 *           200 with it instead of 202), ensures the job.  If the queue is
 *           down the row stays queued and the answer is 503: the same POST
 *           again finds it and enqueues it then.
 *   GET     the row; ?wait=N (0..30 s) long-polls: while the status and the
 *           progress are the ones the first run saw, the handler asks the server to run it
 *           again (api_again: a timer on the loop thread, every ~200 ms, no
 *           database thread held between runs) until N seconds after the
 *           request arrived.
 *   healing  every read of an unfinished report (its GET, the invoice PDF)
 *           first checks its job (heal): none recorded or gone from Redis →
 *           enqueued again (a lost enqueue at POST or issue time heals on the
 *           next read); dead (e.g. its last attempt hit the timeout, so the
 *           worker never recorded the failure) → the row is failed with the
 *           job's error.  No report stays unfinished for ever.
 *   download  succeeded reports only (else 409, with Retry-After while
 *           unfinished); the file is handed to the loop thread as an fd
 *           (api_file: evbuffer_add_file, never read into memory here), with
 *           ETag "<sha256>" and If-None-Match → 304.  The name in
 *           Content-Disposition is the worker's, built from our ids and
 *           numbers only, and checked again here.
 *   invoice PDF  the newest succeeded report that has the invoice's number;
 *           an invoice never issued → 409 naming its status; else the newest
 *           report requested since the issue decides: unfinished → 409 with
 *           Retry-After (after heal), failed → 409 with the error (POST
 *           /v1/reports renders it again), none at all → one is requested
 *           now (409 with Retry-After).
 * Issuing: repo_inv_transition inserts the report row in the issuing
 * transaction; h_invoices_issue calls api_reports_issued after COMMIT to
 * enqueue it (a failure there is healed by the next read of the PDF).
 *
 * Roles: every organization role requests and reads reports (they only
 * render what the caller may already read); API keys with scope read may
 * read and download, not request (POST writes).
 */
#include "fmacros.h"
#include "api.h"
#include "log.h"
#include "repo_reports.h"
#include "routes.h"
#include "ts.h"
#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define RENDER_JOB      "report.render"
#define RENDER_ATTEMPTS 5
#define HOUR_US         3600000000LL
#define MAX_RANGE_US    (366LL * 24 * HOUR_US)
#define Y2000_US        946684800000000LL
#define WAIT_MAX_S      30

/* ======================================================================= */
/* pure helpers                                                              */

/* A usage bound: a date or an RFC 3339 time at a whole UTC hour, >= 2000.
 * NULL, or why not. */
static const char *bound_parse(const char *s, int64_t *us) {
    if (!s || ts_parse_date_or_time(s, strlen(s), us) != 0)
        return "must be a date (YYYY-MM-DD) or an RFC 3339 time";
    if (*us % HOUR_US != 0) return "must be a whole hour in UTC";
    if (*us < Y2000_US) return "must be in 2000 or later";
    return NULL;
}

/* true if s is a file name we would have made ([A-Za-z0-9._-], no leading
 * dot, 1..100 bytes). */
static bool safe_filename(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 100 || s[0] == '.') return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* true if p is a relative path without "." / ".." segments. */
static bool safe_relpath(const char *p) {
    if (!*p || *p == '/' || strstr(p, "..") || strstr(p, "//")) return false;
    return strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/") ==
           strlen(p);
}

/* If-None-Match (a list of entity tags, weak or strong, or "*") matches
 * etag ("\"<hex>\"")? */
static bool etag_matches(const char *inm, const char *etag) {
    if (!inm) return false;
    size_t el = strlen(etag);
    const char *p = inm;
    while (*p) {
        p += strspn(p, " \t,");
        if (!*p) break;
        if (*p == '*') return true;
        if (!strncmp(p, "W/", 2)) p += 2;
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t && (p[t - 1] == ' ' || p[t - 1] == '\t')) t--;
        if (t == el && !strncmp(p, etag, el)) return true;
        p += n;
    }
    return false;
}

/* ======================================================================= */
/* query strings                                                             */

static void bad_param(api_req *r, const char *field, const char *msg) {
    char full[256];
    snprintf(full, sizeof full, "%s: %s", field, msg);
    api_json(r, 400,
             json_pack("{s:{s:s, s:s, s:[{s:s, s:s}]}}", "error", "code", "bad_request", "message",
                       full, "details", "field", field, "message", msg));
}

enum { QP_MAX = 8 };
/* Reads the query into val[] (indexes of names): unknown or repeated names
 * are 400.  0, or -1 when it replied. */
static int qp_read(api_req *r, const char *const *names, char *val[QP_MAX]) {
    memset(val, 0, QP_MAX * sizeof *val);
    if (!r->query) return 0;
    struct evkeyvalq q;
    if (evhttp_parse_query_str(r->query, &q) != 0) {
        evhttp_clear_headers(&q);
        api_err(r, 400, "bad_request", "the query string is malformed");
        return -1;
    }
    int rc = 0;
    for (struct evkeyval *kv = q.tqh_first; kv && rc == 0; kv = kv->next.tqe_next) {
        int idx = -1;
        for (int i = 0; i < QP_MAX && names[i]; i++)
            if (!strcmp(names[i], kv->key)) idx = i;
        if (idx < 0) {
            bad_param(r, kv->key, "unknown parameter");
            rc = -1;
        } else if (val[idx]) {
            bad_param(r, kv->key, "given more than once");
            rc = -1;
        } else if (!(val[idx] = strdup(kv->value))) {
            api_err(r, 503, "unavailable", "out of memory");
            rc = -1;
        }
    }
    evhttp_clear_headers(&q);
    if (rc)
        for (int i = 0; i < QP_MAX; i++) {
            free(val[i]);
            val[i] = NULL;
        }
    return rc;
}

static void qp_free(char *val[QP_MAX]) {
    for (int i = 0; i < QP_MAX; i++) free(val[i]);
}

/* ======================================================================= */
/* jobs                                                                      */

/* Enqueues (or finds, by dedupe key) report id's render job and records its
 * id.  true, or false with err filled (the queue is down). */
static bool ensure_job(api_req *r, long long org, const char *id, char *err, size_t errlen) {
    char payload[96], dedupe[64], job[JQ_ID_MAX];
    snprintf(payload, sizeof payload, "{\"report_id\":\"%s\"}", id);
    snprintf(dedupe, sizeof dedupe, "report:%s", id);
    jq_enqueue_opts opts = {0};
    opts.dedupe_key = dedupe;
    opts.max_attempts = RENDER_ATTEMPTS;
    if (jq_enqueue(r->jq, RENDER_JOB, org, payload, &opts, job, NULL, err, errlen) != JQ_OK) {
        LOG_KV(LOG_WARN, "cannot enqueue a report render", LF_S("request_id", r->request_id),
               LF_S("report_id", id), LF_S("error", err));
        return false;
    }
    db_err de;
    if (repo_rep_set_job(r->db, &de, org, id, job) != REPO_OK)
        /* the job carries the report id: it renders anyway */
        LOG_KV(LOG_WARN, "cannot record a report's job id", LF_S("request_id", r->request_id),
               LF_S("report_id", id), LF_S("job_id", job), LF_S("error", de.msg));
    return true;
}

static void reply_queue_down(api_req *r) {
    api_header(r, "Retry-After", "2");
    api_err(r, 503, "unavailable", "the job queue is unavailable; retry later");
}

/* An unfinished report whose job is gone or dead cannot finish by itself:
 * a queued or running one whose job vanished (expired, lost with Redis'
 * data) gets a new job; one whose job died (its last attempt killed by the
 * timeout, so the worker never recorded it) is failed with the job's error.
 * true if the row changed (read it again). */
static bool heal(api_req *r, const char *id) {
    repo_rep_file f;
    db_err de;
    char err[256], *js = NULL;
    if (repo_rep_file_get(r->db, &de, r->who.org_id, id, &f) != REPO_OK) return false;
    if (strcmp(f.status, "queued") && strcmp(f.status, "running")) return false;
    if (!f.job_id[0]) { /* its enqueue was lost (queue down at POST or issue time) */
        ensure_job(r, f.org_id, id, err, sizeof err);
        return true;
    }
    int rc = jq_get(r->jq, f.job_id, &js, err, sizeof err);
    if (rc == JQ_NOT_FOUND) {
        LOG_KV(LOG_WARN, "a report's job is gone: enqueueing it again",
               LF_S("request_id", r->request_id), LF_S("report_id", id), LF_S("job_id", f.job_id));
        ensure_job(r, f.org_id, id, err, sizeof err);
        return true;
    }
    bool changed = false;
    json_t *j = rc == JQ_OK ? json_loads(js, 0, NULL) : NULL;
    const char *state = json_string_value(json_object_get(j, "state"));
    if (state && !strcmp(state, "dead")) {
        const char *why = json_string_value(json_object_get(j, "error"));
        char msg[400];
        snprintf(msg, sizeof msg, "the render job died: %s", why ? why : "unknown error");
        changed = repo_rep_fail_unfinished(r->db, &de, f.org_id, id, msg) == REPO_OK;
    }
    json_decref(j);
    free(js);
    return changed;
}

void api_reports_issued(api_req *r, const char *invoice_id) {
    char id[40], err[256];
    long long org = 0;
    db_err de;
    int rc = repo_rep_invoice_queued(r->db, &de, r->who.org_id, invoice_id, id, &org);
    if (rc == REPO_OK)
        ensure_job(r, org, id, err, sizeof err); /* logged; GET .../pdf heals it */
    else if (rc != REPO_NOT_FOUND)
        LOG_KV(LOG_WARN, "cannot find an issued invoice's report",
               LF_S("request_id", r->request_id), LF_S("invoice_id", invoice_id),
               LF_S("error", de.msg));
}

/* ======================================================================= */
/* POST /v1/reports                                                          */

static const jx_field k_create[] = {
    {"kind", JX_STRING, JX_REQUIRED, 1, 16},
    {"invoice_id", JX_STRING, 0, 1, 64},
    {"customer_id", JX_STRING, 0, 1, 128},
    {"from", JX_STRING, 0, 1, 64},
    {"to", JX_STRING, 0, 1, 64},
    {NULL, 0, 0, 0, 0},
};

static void check_create(const json_t *body, jx_errs *e) {
    if (jx_errs_hasp(e, NULL, "kind")) return;
    const char *kind = jx_str(body, "kind");
    bool inv = !strcmp(kind, "invoice");
    if (!inv && strcmp(kind, "usage") != 0) {
        jx_errs_add(e, "kind", "must be invoice or usage");
        return;
    }
    static const char *const inv_only[] = {"invoice_id"};
    static const char *const usage_only[] = {"customer_id", "from", "to"};
    for (size_t i = 0; i < ML_ARRAY_LEN(inv_only); i++) {
        bool has = json_object_get(body, inv_only[i]) != NULL;
        if (inv && !has) jx_errs_add(e, inv_only[i], "is required for kind invoice");
        if (!inv && has) jx_errs_add(e, inv_only[i], "is only for kind invoice");
    }
    for (size_t i = 0; i < ML_ARRAY_LEN(usage_only); i++) {
        bool has = json_object_get(body, usage_only[i]) != NULL;
        if (!inv && !has) jx_errs_add(e, usage_only[i], "is required for kind usage");
        if (inv && has) jx_errs_add(e, usage_only[i], "is only for kind usage");
    }
    if (inv) return;
    int64_t a = 0, b = 0;
    const char *why;
    bool ok = true;
    if (!jx_errs_hasp(e, NULL, "from") && (why = bound_parse(jx_str(body, "from"), &a))) {
        jx_errs_add(e, "from", "%s", why);
        ok = false;
    }
    if (!jx_errs_hasp(e, NULL, "to") && (why = bound_parse(jx_str(body, "to"), &b))) {
        jx_errs_add(e, "to", "%s", why);
        ok = false;
    }
    if (!ok || jx_errs_hasp(e, NULL, "from") || jx_errs_hasp(e, NULL, "to")) return;
    if (b <= a)
        jx_errs_add(e, "to", "must be after from");
    else if (b - a > MAX_RANGE_US)
        jx_errs_add(e, "to", "a report covers at most 366 days");
}

/* The report's JSON with status_url (and Location). */
static void reply_report(api_req *r, int status, json_t *rep) {
    const char *id = json_string_value(json_object_get(rep, "id"));
    char url[96];
    snprintf(url, sizeof url, "/v1/reports/%s", id ? id : "");
    json_object_set_new(rep, "status_url", json_string(url));
    if (status == 202 || status == 200) api_header(r, "Location", url);
    api_json(r, status, rep);
}

void h_reports_create(api_req *r) {
    if (!api_validate(r, k_create, check_create)) return;
    repo_rep_new in = {.kind = jx_str(r->json, "kind"),
                       .invoice_id = jx_str(r->json, "invoice_id"),
                       .customer = jx_str(r->json, "customer_id"),
                       .created_by = r->who.user_id[0] ? r->who.user_id : "api"};
    char from[TS_FMT_MAX], to[TS_FMT_MAX];
    if (!strcmp(in.kind, "usage")) {
        int64_t a, b;
        bound_parse(jx_str(r->json, "from"), &a);
        bound_parse(jx_str(r->json, "to"), &b);
        ts_format(a, from, sizeof from);
        ts_format(b, to, sizeof to);
        in.from = from;
        in.to = to;
    }
    char id[40], err[256];
    bool existing = false;
    db_err de;
    repo_field f = {{0}, {0}};
    int rc = repo_rep_create(r->db, &de, r->who.org_id, &in, id, &existing, &f);
    if (rc == REPO_INVALID) {
        api_invalid1(r, f.field, "%s", f.message);
        return;
    }
    if (rc != REPO_OK) {
        api_db_fail(r, &de);
        return;
    }
    json_t *rep = NULL;
    rc = repo_rep_get(r->db, &de, r->who.org_id, id, &rep);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, NULL, "report");
        return;
    }
    const char *st = json_string_value(json_object_get(rep, "status"));
    if (st && !strcmp(st, "queued") && json_is_null(json_object_get(rep, "job_id"))) {
        if (!ensure_job(r, r->who.org_id, id, err, sizeof err)) {
            json_decref(rep);
            reply_queue_down(r);
            return;
        }
        json_decref(rep); /* read back with its job id */
        rc = repo_rep_get(r->db, &de, r->who.org_id, id, &rep);
        if (rc != REPO_OK) {
            api_reply_repo(r, rc, &de, NULL, "report");
            return;
        }
    }
    reply_report(r, existing ? 200 : 202, rep);
}

/* ======================================================================= */
/* GET /v1/reports/{id}, GET /v1/reports                                    */

static const char *const k_get_params[] = {"wait", "org", NULL};

void h_reports_get(api_req *r) {
    char *q[QP_MAX];
    if (qp_read(r, k_get_params, q)) return;
    long wait = 0;
    if (q[0]) {
        char *end;
        errno = 0;
        wait = strtol(q[0], &end, 10);
        if (!*q[0] || *end || errno || wait < 0 || wait > WAIT_MAX_S) {
            api_invalid1(r, "wait", "must be a whole number of seconds from 0 to %d", WAIT_MAX_S);
            qp_free(q);
            return;
        }
    }
    qp_free(q);
    db_err de;
    json_t *rep = NULL;
    int rc = repo_rep_get(r->db, &de, r->who.org_id, r->pv[0], &rep);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, NULL, "report");
        return;
    }
    const char *st = json_string_value(json_object_get(rep, "status"));
    bool unfinished = st && (!strcmp(st, "queued") || !strcmp(st, "running"));
    if (unfinished && r->again_runs == 0 && heal(r, r->pv[0])) {
        json_decref(rep);
        rc = repo_rep_get(r->db, &de, r->who.org_id, r->pv[0], &rep);
        if (rc != REPO_OK) {
            api_reply_repo(r, rc, &de, NULL, "report");
            return;
        }
        st = json_string_value(json_object_get(rep, "status"));
        unfinished = st && (!strcmp(st, "queued") || !strcmp(st, "running"));
    }
    if (wait > 0 && unfinished) {
        /* long poll: hold while status and progress are what the first run saw */
        char now[sizeof r->again_note];
        snprintf(now, sizeof now, "%s:%lld", st,
                 (long long)json_integer_value(json_object_get(rep, "progress")));
        if (r->again_runs == 0) snprintf(r->again_note, sizeof r->again_note, "%s", now);
        if (!strcmp(r->again_note, now)) api_again(r, r->t0_us + (int64_t)wait * 1000000);
    }
    reply_report(r, 200, rep);
}

static const char *const k_list_params[] = {"status", "kind", "customer_id", "limit",
                                            "cursor", "org",  NULL};

void h_reports_list(api_req *r) {
    char *q[QP_MAX];
    if (qp_read(r, k_list_params, q)) return;
    repo_rep_filter f = {.status = q[0], .kind = q[1], .customer = q[2]};
    if (f.status && strcmp(f.status, "queued") && strcmp(f.status, "running") &&
        strcmp(f.status, "succeeded") && strcmp(f.status, "failed")) {
        api_invalid1(r, "status", "must be queued, running, succeeded or failed");
        goto out;
    }
    if (f.kind && strcmp(f.kind, "invoice") && strcmp(f.kind, "usage")) {
        api_invalid1(r, "kind", "must be invoice or usage");
        goto out;
    }
    if (f.customer && (!*f.customer || strlen(f.customer) > 128)) {
        api_invalid1(r, "customer_id", "must be a customer's external_id (1 to 128 characters)");
        goto out;
    }
    int limit;
    char *cursor;
    if (api_page_params(r, &limit, &cursor)) goto out;
    db_err de;
    json_t *rows = NULL;
    char *next = NULL;
    int rc = repo_rep_list(r->db, &de, r->who.org_id, &f, limit, cursor, &rows, &next);
    if (rc == REPO_OK)
        api_page_reply(r, rows, next);
    else if (rc == REPO_INVALID)
        bad_param(r, "cursor", "not a valid cursor");
    else
        api_reply_repo(r, rc, &de, NULL, "report");
    free(next);
    free(cursor);
out:
    qp_free(q);
}

/* ======================================================================= */
/* downloads                                                                 */

/* Replies with the file of a succeeded report (or 304). */
static void send_file(api_req *r, const repo_rep_file *f) {
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", f->sha256);
    if (!safe_relpath(f->file_path) || strlen(f->sha256) != 64) {
        LOG_KV(LOG_ERROR, "report row with an unusable file", LF_S("request_id", r->request_id),
               LF_S("report_id", f->id), LF_S("file_path", f->file_path));
        api_err(r, 500, "internal", "internal error (request %s)", r->request_id);
        return;
    }
    if (etag_matches(r->h_if_none_match, etag)) {
        api_header(r, "ETag", etag);
        api_raw(r, 304, NULL, NULL, 0);
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", r->cfg->storage_dir, f->file_path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size != f->size_bytes) {
        LOG_KV(LOG_ERROR, "report file missing or changed", LF_S("request_id", r->request_id),
               LF_S("report_id", f->id), LF_S("path", path),
               LF_S("error", fd < 0 ? strerror(errno) : "size differs from the record"));
        if (fd >= 0) close(fd);
        api_err(r, 500, "internal", "the report's file is unavailable (request %s)", r->request_id);
        return;
    }
    char disp[192];
    if (safe_filename(f->filename))
        snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", f->filename);
    else
        snprintf(disp, sizeof disp, "attachment; filename=\"report-%s.pdf\"", f->id);
    api_header(r, "Content-Disposition", disp);
    api_header(r, "ETag", etag);
    api_file(r, 200, "application/pdf", fd, (long long)sb.st_size);
}

void h_reports_download(api_req *r) {
    repo_rep_file f;
    db_err de;
    int rc = repo_rep_file_get(r->db, &de, r->who.org_id, r->pv[0], &f);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, NULL, "report");
        return;
    }
    if (strcmp(f.status, "succeeded") != 0) {
        bool unfinished = strcmp(f.status, "failed") != 0;
        if (unfinished) api_header(r, "Retry-After", "2");
        api_json(r, 409,
                 json_pack("{s:{s:s, s:s, s:[{s:s, s:s}]}}", "error", "code", "conflict", "message",
                           unfinished ? "the report is not ready yet; poll its status_url"
                                      : "the report failed; see its error",
                           "details", "field", "status", "message", f.status));
        return;
    }
    send_file(r, &f);
}

/* ======================================================================= */
/* GET /v1/invoices/{id}/pdf                                                 */

static void reply_not_ready(api_req *r, const char *report_id, const char *status) {
    char msg[160];
    snprintf(msg, sizeof msg, "the invoice PDF is being rendered (report %s is %s); retry shortly",
             report_id, status);
    char url[96];
    snprintf(url, sizeof url, "/v1/reports/%s", report_id);
    api_header(r, "Retry-After", "2");
    /* the report's id and status_url let a client long-poll it */
    api_json(r, 409,
             json_pack("{s:{s:s, s:s, s:[{s:s, s:s, s:s, s:s}]}}", "error", "code", "conflict",
                       "message", msg, "details", "field", "report", "message", status,
                       "report_id", report_id, "status_url", url));
}

void h_invoices_pdf(api_req *r) {
    repo_rep_pdf p;
    db_err de;
    char err[256];
    int rc = repo_rep_invoice_pdf(r->db, &de, r->who.org_id, r->pv[0], &p);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, NULL, "invoice");
        return;
    }
    if (!p.issued) {
        char msg[160];
        snprintf(msg, sizeof msg, "invoice is %s; only issued invoices have a PDF", p.status);
        api_json(r, 409,
                 json_pack("{s:{s:s, s:s, s:[{s:s, s:s}]}}", "error", "code", "conflict", "message",
                           msg, "details", "field", "status", "message", p.status));
        return;
    }
    if (p.ready.id[0]) {
        send_file(r, &p.ready);
        return;
    }
    if (p.last_id[0] && (!strcmp(p.last_status, "queued") || !strcmp(p.last_status, "running")) &&
        heal(r, p.last_id)) {
        rc = repo_rep_invoice_pdf(r->db, &de, r->who.org_id, r->pv[0], &p);
        if (rc != REPO_OK) {
            api_reply_repo(r, rc, &de, NULL, "invoice");
            return;
        }
    }
    if (p.last_id[0] && (!strcmp(p.last_status, "queued") || !strcmp(p.last_status, "running"))) {
        reply_not_ready(r, p.last_id, p.last_status);
        return;
    }
    if (p.last_id[0] && !strcmp(p.last_status, "failed")) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "rendering the invoice PDF failed (report %s: %s); POST /v1/reports to try again",
                 p.last_id, p.last_error);
        api_json(r, 409,
                 json_pack("{s:{s:s, s:s, s:[{s:s, s:s}]}}", "error", "code", "conflict", "message",
                           msg, "details", "field", "report", "message", "failed"));
        return;
    }
    /* issued without a report row (before reports existed): request one */
    repo_rep_new in = {.kind = "invoice", .invoice_id = r->pv[0], .created_by = "issue"};
    char id[40];
    bool existing;
    repo_field f;
    rc = repo_rep_create(r->db, &de, p.org_id, &in, id, &existing, &f);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc == REPO_INVALID ? REPO_NOT_FOUND : rc, &de, NULL, "invoice");
        return;
    }
    if (!ensure_job(r, p.org_id, id, err, sizeof err)) {
        reply_queue_down(r);
        return;
    }
    reply_not_ready(r, id, "queued");
}
