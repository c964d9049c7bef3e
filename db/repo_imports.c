/* repo_imports.c — usage_imports rows (CSV uploads; migration 0004).
 *
 * DESIGN — See repo.h.  The API inserts a row once the uploaded file is
 * durable in storage (status queued), then records the id of the
 * usage.import job it enqueued; the worker owns the row afterwards (status,
 * counters, errors).  Every query filters on the caller's organization;
 * org_id 0 in the listing means every organization (platform admins).  Ids
 * are uuids: a malformed id is simply "not found", never an SQL error.
 * Listing is newest first with a keyset cursor "<created_at µs>:<id>".
 */
#include "fmacros.h"
#include "repo.h"
#include "repo_util.h"
#include <stdlib.h>

#define IMP_COLS                                                                                   \
    "i.id, i.status, i.progress, i.rows, i.imported, i.duplicates, i.rejected, i.errors, "         \
    "i.error, i.filename, i.size_bytes, i.sha256, i.on_error, i.job_id, o.slug AS organization, "  \
    "i.created_at, i.started_at, i.finished_at"

static void org_text(long long org_id, char out[24]) { snprintf(out, 24, "%lld", org_id); }

int repo_import_create(db *d, db_err *e, long long org_id, const repo_import_new *in) {
    char org[24], size[24];
    org_text(org_id, org);
    snprintf(size, sizeof size, "%lld", in->size_bytes);
    return db_cmd(d, e,
                  "INSERT INTO usage_imports (id, org_id, created_by, filename, file_path, "
                  "size_bytes, sha256, on_error) VALUES ($1::uuid, $2, $3, $4, $5, $6::bigint, $7, "
                  "$8)",
                  8,
                  (const char *const[]){in->id, org, in->created_by, in->filename, in->file_path,
                                        size, in->sha256, in->on_error}) == 0
               ? REPO_OK
               : REPO_ERR;
}

int repo_import_set_job(db *d, db_err *e, long long org_id, const char *id, const char *job_id) {
    char org[24];
    org_text(org_id, org);
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    PGresult *r =
        DB_EXEC(d, e,
                "UPDATE usage_imports SET job_id = $3 WHERE org_id = $1 AND id = $2::uuid "
                "RETURNING id",
                org, id, job_id);
    if (!r) return REPO_ERR;
    int rc = PQntuples(r) == 1 ? REPO_OK : REPO_NOT_FOUND;
    PQclear(r);
    return rc;
}

int repo_import_delete(db *d, db_err *e, long long org_id, const char *id) {
    char org[24];
    org_text(org_id, org);
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    return DB_CMD(d, e, "DELETE FROM usage_imports WHERE org_id = $1 AND id = $2::uuid", org, id) ==
                   0
               ? REPO_OK
               : REPO_ERR;
}

int repo_import_get(db *d, db_err *e, long long org_id, const char *id, json_t **out) {
    char org[24];
    org_text(org_id, org);
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    PGresult *r = DB_EXEC(d, e,
                          "SELECT " IMP_COLS " FROM usage_imports i "
                          "JOIN organizations o ON o.id = i.org_id "
                          "WHERE ($1::bigint = 0 OR i.org_id = $1) AND i.id = $2::uuid",
                          org, id);
    return repo_one(r, e, out);
}

/* "<digits>:<uuid>" → the two parts; false if malformed. */
int repo_imports_list(db *d, db_err *e, long long org_id, int limit, const char *after,
                      json_t **rows, char **next) {
    char org[24], lim[16], us[24], id[40];
    org_text(org_id, org);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    if (after && !repo_split_cursor(after, us, id)) return REPO_INVALID;
    PGresult *r = DB_EXEC(
        d, e,
        "SELECT " IMP_COLS ", (extract(epoch FROM i.created_at) * 1000000)::bigint::text || ':' "
        "|| i.id::text AS _cursor FROM usage_imports i JOIN organizations o ON o.id = i.org_id "
        "WHERE ($1::bigint = 0 OR i.org_id = $1) "
        "AND ($2::bigint IS NULL OR (i.created_at, i.id) < ('epoch'::timestamptz + $2::bigint * "
        "interval '1 microsecond', $3::uuid)) "
        "ORDER BY i.created_at DESC, i.id DESC LIMIT $4",
        org, after ? us : NULL, after ? id : NULL, lim);
    int rc = repo_page(r, e, limit, "_cursor", rows, next);
    if (rc != REPO_OK) return rc;
    size_t i;
    json_t *v;
    json_array_foreach(*rows, i, v) json_object_del(v, "_cursor");
    return REPO_OK;
}
