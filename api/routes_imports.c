/* routes_imports.c — CSV usage imports: POST /v1/usage/imports,
 * GET /v1/usage/imports/{id}, GET /v1/usage/imports.
 *
 * DESIGN — By the time the POST handler runs (on a database thread, after
 * authorization), the connection filter (upload.c) has already streamed the
 * body to a spool file under BILLING_STORAGE_DIR/tmp/ and described it in
 * r->upload (or recorded why it refused it).  The handler only decides and
 * moves: it checks the upload, renames the spool to
 * <storage>/<org_id>/imports/<yyyy>/<mm>/<uuid>.csv (the uuid is ours; no
 * part of a path ever comes from the client), fsyncs the file and its
 * directories, inserts the usage_imports row (status queued), enqueues a
 * usage.import job {"import_id"} with dedupe key "import:<uuid>" and stores
 * the job id in the row.  Order matters: file and row first, then the job,
 * so a job never names a missing row; if the enqueue fails the row and the
 * file are deleted and the client gets 503 (nothing happened).  Any other
 * failure deletes the file too; a spool that never gets this far is deleted
 * with the request (api_upload_free).
 *
 * The worker (worker/import.c) owns the row after that: status, progress,
 * counters and errors.  GETs read the row; another organization's id, like a
 * malformed one, is 404.
 */
#include "fmacros.h"
#include "api.h"
#include "log.h"
#include "repo.h"
#include "rnd.h"
#include "routes.h"
#include "upload.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define IMPORT_JOB "usage.import"

/* True if s is valid UTF-8 without control characters. */
static bool clean_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80             ? 0
                : (c & 0xe0) == 0xc0 ? 1
                : (c & 0xf0) == 0xe0 ? 2
                : (c & 0xf8) == 0xf0 ? 3
                                     : -1;
        if (n < 0 || (n == 0 && (c < 0x20 || c == 0x7f))) return false;
        if (n == 1 && c < 0xc2) return false; /* overlong */
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80) return false;
    }
    return true;
}

static int fsync_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Replies for an upload the filter refused or could not store; false if
 * the upload is usable. */
static bool reply_refused(api_req *r, const api_upload *u) {
    if (!u) {
        api_err(r, 400, "bad_request",
                "the request body could not be read as an upload; send the file as text/csv or "
                "multipart/form-data");
        return true;
    }
    switch (u->state) {
    case API_UPL_OK:
        return false;
    case API_UPL_UNSUPPORTED:
        api_err(r, 415, "unsupported_media_type",
                "Content-Type must be text/csv, application/csv or multipart/form-data (got %s)",
                r->h_content_type ? r->h_content_type : "none");
        return true;
    case API_UPL_BAD_BODY:
        if (u->missing_file)
            api_invalid1(r, "file", "a multipart part named file with the CSV is required");
        else
            api_err(r, 400, "bad_request", "%s", u->error);
        return true;
    case API_UPL_IO:
        api_header(r, "Retry-After", "5");
        api_err(r, 503, "unavailable", "the upload could not be stored; retry later");
        return true;
    case API_UPL_NO_AUTH:
        api_err(r, 401, "unauthenticated", "credentials are required");
        return true;
    default:
        api_err(r, 400, "bad_request", "%s", u->error[0] ? u->error : "unreadable upload");
        return true;
    }
}

void h_imports_create(api_req *r) {
    api_upload *u = r->upload;
    if (reply_refused(r, u)) return;
    char *oe = api_query_dup(r, "on_error");
    const char *on_error = oe ? oe : "abort";
    if (strcmp(on_error, "abort") != 0 && strcmp(on_error, "skip") != 0) {
        api_invalid1(r, "on_error", "must be abort or skip");
        free(oe);
        return;
    }
    if (u->size == 0) {
        api_invalid1(r, "file", "the file is empty");
        free(oe);
        return;
    }

    char id[RND_UUID_MAX], rel[160], abs[800], dir[800];
    rnd_uuid(id);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    const char *root = r->cfg->storage_dir;
    snprintf(dir, sizeof dir, "%s/%lld/imports/%04d/%02d", root, r->who.org_id, tm.tm_year + 1900,
             tm.tm_mon + 1);
    snprintf(rel, sizeof rel, "%lld/imports/%04d/%02d/%s.csv", r->who.org_id, tm.tm_year + 1900,
             tm.tm_mon + 1, id);
    snprintf(abs, sizeof abs, "%s/%s", root, rel);
    if (upl_mkdirs(dir, 0750) != 0 || rename(u->path, abs) != 0) {
        LOG_KV(LOG_ERROR, "cannot store upload", LF_S("request_id", r->request_id),
               LF_S("path", abs), LF_S("error", strerror(errno)));
        api_header(r, "Retry-After", "5");
        api_err(r, 503, "unavailable", "the upload could not be stored; retry later");
        free(oe);
        return;
    }
    free(u->path); /* moved: no longer a spool to delete */
    u->path = NULL;

    /* durable before anyone is told about it */
    char d1[800], d2[800], d3[800];
    snprintf(d1, sizeof d1, "%s/%lld/imports/%04d", root, r->who.org_id, tm.tm_year + 1900);
    snprintf(d2, sizeof d2, "%s/%lld/imports", root, r->who.org_id);
    snprintf(d3, sizeof d3, "%s/%lld", root, r->who.org_id);
    if (fsync_file(abs) != 0 || upl_fsync_dir(dir) != 0 || upl_fsync_dir(d1) != 0 ||
        upl_fsync_dir(d2) != 0 || upl_fsync_dir(d3) != 0 || upl_fsync_dir(root) != 0) {
        LOG_KV(LOG_ERROR, "cannot fsync upload", LF_S("request_id", r->request_id),
               LF_S("path", abs), LF_S("error", strerror(errno)));
        unlink(abs);
        api_header(r, "Retry-After", "5");
        api_err(r, 503, "unavailable", "the upload could not be stored; retry later");
        free(oe);
        return;
    }

    const char *fname = u->filename[0] && clean_utf8(u->filename) ? u->filename : NULL;
    repo_import_new in = {id, r->who.user_id, fname, rel, u->size, u->sha256, on_error};
    db_err de;
    int rc = repo_import_create(r->db, &de, r->who.org_id, &in);
    free(oe);
    if (rc != REPO_OK) {
        unlink(abs);
        api_db_fail(r, &de);
        return;
    }

    char payload[80], dedupe[64], job[JQ_ID_MAX], err[256];
    snprintf(payload, sizeof payload, "{\"import_id\":\"%s\"}", id);
    snprintf(dedupe, sizeof dedupe, "import:%s", id);
    jq_enqueue_opts opts = {0};
    opts.dedupe_key = dedupe;
    if (jq_enqueue(r->jq, IMPORT_JOB, r->who.org_id, payload, &opts, job, NULL, err, sizeof err) !=
        JQ_OK) {
        LOG_KV(LOG_WARN, "cannot enqueue import", LF_S("request_id", r->request_id),
               LF_S("import_id", id), LF_S("error", err));
        if (repo_import_delete(r->db, &de, r->who.org_id, id) != REPO_OK)
            LOG_KV(LOG_ERROR, "cannot delete import row without a job",
                   LF_S("request_id", r->request_id), LF_S("import_id", id), LF_S("error", de.msg));
        unlink(abs);
        api_header(r, "Retry-After", "2");
        api_err(r, 503, "unavailable", "the job queue is unavailable; retry later");
        return;
    }
    if (repo_import_set_job(r->db, &de, r->who.org_id, id, job) != REPO_OK)
        /* the job carries the import id, so the import still runs */
        LOG_KV(LOG_WARN, "cannot record the import's job id", LF_S("request_id", r->request_id),
               LF_S("import_id", id), LF_S("job_id", job), LF_S("error", de.msg));

    char loc[96];
    snprintf(loc, sizeof loc, "/v1/usage/imports/%s", id);
    api_header(r, "Location", loc);
    api_json(r, 202,
             json_pack("{s:s, s:s, s:s}", "import_id", id, "job_id", job, "status", "queued"));
}

void h_imports_get(api_req *r) {
    db_err de;
    json_t *out = NULL;
    int rc = repo_import_get(r->db, &de, r->who.org_id, r->pv[0], &out);
    if (rc == REPO_OK)
        api_json(r, 200, out);
    else
        api_reply_repo(r, rc, &de, NULL, "import");
}

void h_imports_list(api_req *r) {
    int limit;
    char *cursor;
    if (api_page_params(r, &limit, &cursor)) return;
    db_err de;
    json_t *rows = NULL;
    char *next = NULL;
    int rc = repo_imports_list(r->db, &de, r->who.org_id, limit, cursor, &rows, &next);
    if (rc == REPO_OK)
        api_page_reply(r, rows, next);
    else if (rc == REPO_INVALID)
        api_err(r, 400, "bad_request", "cursor is not valid");
    else
        api_reply_repo(r, rc, &de, NULL, "import");
    free(next);
    free(cursor);
}
