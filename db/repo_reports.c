/* repo_reports.c — report rows (migration 0008).  See repo_reports.h.
 *
 * DESIGN — A create is one INSERT … ON CONFLICT (org_id, request_key) WHERE
 * status IN ('queued', 'running') DO NOTHING: the partial unique index makes
 * "the same request while one is unfinished" a conflict, and the loser reads
 * the winner.  The unfinished one can finish between the two statements; the
 * create then simply tries again (a new row is then right).
 *
 * The API's JSON is built here from column aliases: optional members
 * (invoice_id, invoice_number, customer_id, from, to) are left out when
 * null.  The customer of an invoice report is its invoice's customer, so
 * ?customer_id= finds both kinds.  Listing is newest first with the keyset
 * cursor "<created_at µs>:<uuid>".
 */
#include "fmacros.h"
#include "repo_reports.h"
#include "repo_util.h"
#include <stdlib.h>

static void org_text(long long org_id, char out[24]) { snprintf(out, 24, "%lld", org_id); }

#define REP_COLS                                                                                   \
    "r.id, r.kind, r.status, r.progress, r.attempts, r.error, r.created_at, r.started_at, "        \
    "r.finished_at, r.size_bytes, r.sha256, r.invoice_id, r.invoice_number, "                      \
    "c.external_id AS customer_id, r.period_from AS \"from\", r.period_to AS \"to\", "             \
    "r.job_id, o.slug AS organization"
#define REP_JOINS                                                                                  \
    " FROM reports r JOIN organizations o ON o.id = r.org_id "                                     \
    " LEFT JOIN invoices i ON i.id = r.invoice_id "                                                \
    " LEFT JOIN customers c ON c.org_id = r.org_id AND c.id = coalesce(r.customer_id, "            \
    "   i.customer_id) "

/* Drops null optional members and adds download_url. */
static int shape(json_t *o, db_err *e) {
    static const char *const opt[] = {"invoice_id", "invoice_number", "customer_id", "from", "to"};
    for (size_t i = 0; i < ML_ARRAY_LEN(opt); i++)
        if (json_is_null(json_object_get(o, opt[i]))) json_object_del(o, opt[i]);
    const char *id = json_string_value(json_object_get(o, "id"));
    char url[96];
    snprintf(url, sizeof url, "/v1/reports/%s/download", id ? id : "");
    return json_object_set_new(o, "download_url", json_string(url)) ? repo_oom(e) : REPO_OK;
}

int repo_rep_create(db *d, db_err *e, long long org_id, const repo_rep_new *in, char id[40],
                    bool *existing, repo_field *f) {
    char org[24];
    org_text(org_id, org);
    *existing = false;
    id[0] = '\0';
    bool inv = !strcmp(in->kind, "invoice");
    if (inv && !repo_is_uuid(in->invoice_id)) {
        repo_set_field(f, "invoice_id", "no invoice with this id");
        return REPO_INVALID;
    }
    char suffix[128]; /* ":<from>:<to>" of a usage request */
    snprintf(suffix, sizeof suffix, ":%s:%s", inv ? "" : in->from, inv ? "" : in->to);
    for (int tries = 0; tries < 5; tries++) {
        PGresult *r;
        if (inv)
            r = DB_EXEC(d, e,
                        "WITH t AS (SELECT id, version FROM invoices WHERE org_id = $1 "
                        "             AND id = $2::uuid), "
                        "ins AS (INSERT INTO reports (org_id, kind, invoice_id, invoice_version, "
                        "          request_key, created_by) "
                        "        SELECT $1, 'invoice', id, version, "
                        "               'invoice:' || id::text || ':' || version::text, $3 FROM t "
                        "        ON CONFLICT (org_id, request_key) "
                        "          WHERE status IN ('queued', 'running') DO NOTHING "
                        "        RETURNING id) "
                        "SELECT (SELECT count(*) FROM t), (SELECT id FROM ins), "
                        "       (SELECT 'invoice:' || id::text || ':' || version::text FROM t)",
                        org, in->invoice_id, in->created_by);
        else
            r = DB_EXEC(d, e,
                        "WITH t AS (SELECT id FROM customers WHERE org_id = $1 "
                        "             AND external_id = $2), "
                        "ins AS (INSERT INTO reports (org_id, kind, customer_id, period_from, "
                        "          period_to, request_key, created_by) "
                        "        SELECT $1, 'usage', id, $3::timestamptz, $4::timestamptz, "
                        "               'usage:' || id::text || $6::text, $5 FROM t "
                        "        ON CONFLICT (org_id, request_key) "
                        "          WHERE status IN ('queued', 'running') DO NOTHING "
                        "        RETURNING id) "
                        "SELECT (SELECT count(*) FROM t), (SELECT id FROM ins), "
                        "       (SELECT 'usage:' || id::text || $6::text FROM t)",
                        org, in->customer, in->from, in->to, in->created_by, suffix);
        if (!r) return REPO_ERR;
        if (atoll(PQgetvalue(r, 0, 0)) == 0) {
            PQclear(r);
            if (inv)
                repo_set_field(f, "invoice_id", "no invoice with this id");
            else
                repo_set_field(f, "customer_id", "no customer with this external id");
            return REPO_INVALID;
        }
        if (!PQgetisnull(r, 0, 1)) {
            snprintf(id, 40, "%s", PQgetvalue(r, 0, 1));
            PQclear(r);
            return REPO_OK;
        }
        char key[256];
        snprintf(key, sizeof key, "%s", PQgetvalue(r, 0, 2));
        PQclear(r);
        r = DB_EXEC(d, e,
                    "SELECT id FROM reports WHERE org_id = $1 AND request_key = $2 "
                    "AND status IN ('queued', 'running')",
                    org, key);
        if (!r) return REPO_ERR;
        if (PQntuples(r) == 1) {
            snprintf(id, 40, "%s", PQgetvalue(r, 0, 0));
            PQclear(r);
            *existing = true;
            return REPO_OK;
        }
        PQclear(r); /* it finished meanwhile: insert again */
    }
    memset(e, 0, sizeof *e);
    snprintf(e->msg, sizeof e->msg, "report request kept racing with its own completion");
    return REPO_ERR;
}

int repo_rep_set_job(db *d, db_err *e, long long org_id, const char *id, const char *job_id) {
    char org[24];
    org_text(org_id, org);
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    PGresult *r = DB_EXEC(d, e,
                          "UPDATE reports SET job_id = $3 WHERE ($1::bigint = 0 OR org_id = $1) "
                          "AND id = $2::uuid RETURNING id",
                          org, id, job_id);
    if (!r) return REPO_ERR;
    int rc = PQntuples(r) == 1 ? REPO_OK : REPO_NOT_FOUND;
    PQclear(r);
    return rc;
}

int repo_rep_get(db *d, db_err *e, long long org_id, const char *id, json_t **out) {
    char org[24];
    org_text(org_id, org);
    *out = NULL;
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    PGresult *r = DB_EXEC(d, e,
                          "SELECT " REP_COLS REP_JOINS
                          "WHERE ($1::bigint = 0 OR r.org_id = $1) AND r.id = $2::uuid",
                          org, id);
    int rc = repo_one(r, e, out);
    if (rc != REPO_OK) return rc;
    rc = shape(*out, e);
    if (rc != REPO_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int repo_rep_list(db *d, db_err *e, long long org_id, const repo_rep_filter *f, int limit,
                  const char *after, json_t **rows, char **next) {
    char org[24], lim[16], us[24], cid[40];
    org_text(org_id, org);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    *rows = NULL;
    *next = NULL;
    if (after && !repo_split_cursor(after, us, cid)) return REPO_INVALID;
    PGresult *r = DB_EXEC(
        d, e,
        "SELECT " REP_COLS ", (extract(epoch FROM r.created_at) * 1000000)::bigint::text "
        "|| ':' || r.id::text AS _cursor" REP_JOINS "WHERE ($1::bigint = 0 OR r.org_id = $1) "
        "AND ($2::text IS NULL OR r.status = $2) AND ($3::text IS NULL OR r.kind = $3) "
        "AND ($4::text IS NULL OR c.external_id = $4) "
        "AND ($5::bigint IS NULL OR (r.created_at, r.id) < ('epoch'::timestamptz + $5::bigint * "
        "interval '1 microsecond', $6::uuid)) "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT $7",
        org, f->status, f->kind, f->customer, after ? us : NULL, after ? cid : NULL, lim);
    int rc = repo_page(r, e, limit, "_cursor", rows, next);
    if (rc != REPO_OK) return rc;
    size_t i;
    json_t *v;
    json_array_foreach(*rows, i, v) {
        json_object_del(v, "_cursor");
        if (shape(v, e) != REPO_OK) {
            json_decref(*rows);
            *rows = NULL;
            free(*next);
            *next = NULL;
            return REPO_ERR;
        }
    }
    return REPO_OK;
}

/* Copies row i of a "id, org_id, status, file_path, filename, sha256,
 * size_bytes, job_id" result into out. */
static void file_row(const PGresult *r, int i, int col, repo_rep_file *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", PQgetvalue(r, i, col));
    out->org_id = atoll(PQgetvalue(r, i, col + 1));
    snprintf(out->status, sizeof out->status, "%s", PQgetvalue(r, i, col + 2));
    snprintf(out->file_path, sizeof out->file_path, "%s", PQgetvalue(r, i, col + 3));
    snprintf(out->filename, sizeof out->filename, "%s", PQgetvalue(r, i, col + 4));
    snprintf(out->sha256, sizeof out->sha256, "%s", PQgetvalue(r, i, col + 5));
    out->size_bytes = atoll(PQgetvalue(r, i, col + 6));
    snprintf(out->job_id, sizeof out->job_id, "%s", PQgetvalue(r, i, col + 7));
}

#define FILE_COLS(t)                                                                               \
    t ".id, " t ".org_id, " t ".status, " t ".file_path, " t ".filename, " t ".sha256, " t         \
      ".size_bytes, " t ".job_id"

int repo_rep_file_get(db *d, db_err *e, long long org_id, const char *id, repo_rep_file *out) {
    char org[24];
    org_text(org_id, org);
    memset(out, 0, sizeof *out);
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    PGresult *r = DB_EXEC(
        d, e,
        "SELECT " FILE_COLS("r") " FROM reports r "
                                 "WHERE ($1::bigint = 0 OR r.org_id = $1) AND r.id = $2::uuid",
        org, id);
    if (!r) return REPO_ERR;
    int rc = REPO_NOT_FOUND;
    if (PQntuples(r) == 1) {
        file_row(r, 0, 0, out);
        rc = REPO_OK;
    }
    PQclear(r);
    return rc;
}

int repo_rep_fail_unfinished(db *d, db_err *e, long long org_id, const char *id,
                             const char *error) {
    char org[24];
    org_text(org_id, org);
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    PGresult *r = DB_EXEC(d, e,
                          "UPDATE reports SET status = 'failed', error = $3, finished_at = now() "
                          "WHERE ($1::bigint = 0 OR org_id = $1) AND id = $2::uuid "
                          "AND status IN ('queued', 'running') RETURNING id",
                          org, id, error);
    if (!r) return REPO_ERR;
    int rc = PQntuples(r) == 1 ? REPO_OK : REPO_NOT_FOUND;
    PQclear(r);
    return rc;
}

int repo_rep_issue_insert(db *d, db_err *e, const char *invoice_id) {
    return DB_CMD(d, e,
                  "INSERT INTO reports (org_id, kind, invoice_id, invoice_version, request_key, "
                  "  created_by) "
                  "SELECT org_id, 'invoice', id, version, "
                  "       'invoice:' || id::text || ':' || version::text, 'issue' "
                  "  FROM invoices WHERE id = $1::uuid "
                  "ON CONFLICT (org_id, request_key) WHERE status IN ('queued', 'running') "
                  "DO NOTHING",
                  invoice_id);
}

int repo_rep_invoice_queued(db *d, db_err *e, long long org_id, const char *invoice_id, char id[40],
                            long long *report_org) {
    char org[24];
    org_text(org_id, org);
    id[0] = '\0';
    if (!repo_is_uuid(invoice_id)) return REPO_NOT_FOUND;
    PGresult *r = DB_EXEC(d, e,
                          "SELECT id, org_id FROM reports WHERE ($1::bigint = 0 OR org_id = $1) "
                          "AND invoice_id = $2::uuid AND status = 'queued' AND job_id IS NULL "
                          "ORDER BY created_at DESC, id DESC LIMIT 1",
                          org, invoice_id);
    if (!r) return REPO_ERR;
    int rc = REPO_NOT_FOUND;
    if (PQntuples(r) == 1) {
        snprintf(id, 40, "%s", PQgetvalue(r, 0, 0));
        *report_org = atoll(PQgetvalue(r, 0, 1));
        rc = REPO_OK;
    }
    PQclear(r);
    return rc;
}

int repo_rep_invoice_pdf(db *d, db_err *e, long long org_id, const char *invoice_id,
                         repo_rep_pdf *out) {
    char org[24];
    org_text(org_id, org);
    memset(out, 0, sizeof *out);
    if (!repo_is_uuid(invoice_id)) return REPO_NOT_FOUND;
    PGresult *r = DB_EXEC(
        d, e,
        "SELECT i.org_id, i.status, i.number IS NOT NULL, "
        "       l.id, l.status, coalesce(l.error, ''), l.job_id IS NOT NULL, " FILE_COLS(
            "s") "  FROM invoices i "
                 "  LEFT JOIN LATERAL (SELECT * FROM reports x WHERE x.invoice_id = i.id "
                 "                       AND x.created_at >= i.issued_at "
                 "                     ORDER BY x.created_at DESC, x.id DESC LIMIT 1) l ON true "
                 "  LEFT JOIN LATERAL (SELECT * FROM reports x WHERE x.invoice_id = i.id "
                 "                       AND x.status = 'succeeded' AND x.invoice_number IS NOT "
                 "NULL "
                 "                     ORDER BY x.finished_at DESC, x.id DESC LIMIT 1) s ON true "
                 " WHERE ($1::bigint = 0 OR i.org_id = $1) AND i.id = $2::uuid",
        org, invoice_id);
    if (!r) return REPO_ERR;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return REPO_NOT_FOUND;
    }
    out->org_id = atoll(PQgetvalue(r, 0, 0));
    snprintf(out->status, sizeof out->status, "%s", PQgetvalue(r, 0, 1));
    out->issued = PQgetvalue(r, 0, 2)[0] == 't';
    if (!PQgetisnull(r, 0, 3)) {
        snprintf(out->last_id, sizeof out->last_id, "%s", PQgetvalue(r, 0, 3));
        snprintf(out->last_status, sizeof out->last_status, "%s", PQgetvalue(r, 0, 4));
        snprintf(out->last_error, sizeof out->last_error, "%s", PQgetvalue(r, 0, 5));
        out->last_has_job = PQgetvalue(r, 0, 6)[0] == 't';
    }
    if (!PQgetisnull(r, 0, 7)) file_row(r, 0, 7, &out->ready);
    PQclear(r);
    return REPO_OK;
}
