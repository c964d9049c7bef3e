/* repo_billing.c — what POST /v1/invoices and /v1/billing-runs need from
 * PostgreSQL: the customer a generation is for, and billing_runs rows
 * (migration 0007).  The generation itself is db/invoice.c.
 */
#include "fmacros.h"
#include "repo.h"
#include "repo_util.h"
#include <stdlib.h>

int repo_billing_customer(db *d, db_err *e, long long org_id, const char *external_id,
                          long long *id, bool *has_plan) {
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    PGresult *r = DB_EXEC(d, e,
                          "SELECT id, plan_id IS NOT NULL FROM customers "
                          " WHERE org_id = $1 AND external_id = $2",
                          org, external_id);
    if (!r) return REPO_ERR;
    int rc = REPO_NOT_FOUND;
    if (PQntuples(r) == 1) {
        *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *has_plan = PQgetvalue(r, 0, 1)[0] == 't';
        rc = REPO_OK;
    }
    PQclear(r);
    return rc;
}

int repo_billing_run_create(db *d, db_err *e, long long org_id, const char *period_start,
                            const char *period_end, const char *created_by, char id[40],
                            bool *existing) {
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    /* an advisory lock per organization, taken in its own statement (so the
     * next one's snapshot sees a run a concurrent POST just committed), makes
     * "find an unfinished run of the period, else insert one" atomic */
    if (db_begin(d, e) != 0) return REPO_ERR;
    PGresult *r = NULL;
    if (DB_CMD(d, e, "SELECT pg_advisory_xact_lock(727008, $1::bigint::int)", org) != 0 ||
        !(r = DB_EXEC(d, e,
                      "WITH old AS (SELECT id FROM billing_runs b WHERE org_id = $1 "
                      "               AND period_start = $2 AND period_end = $3 "
                      "               AND finished_at IS NULL AND (total IS NULL OR total > "
                      "                 (SELECT count(*) FROM billing_run_items i"
                      "                   WHERE i.run_id = b.id AND i.outcome <> 'queued'))"
                      "             ORDER BY created_at DESC LIMIT 1),"
                      "     ins AS (INSERT INTO billing_runs (org_id, period_start, period_end,"
                      "                                       created_by) "
                      "             SELECT $1, $2, $3, coalesce((SELECT email FROM users"
                      "                                           WHERE id::text = $4), $4) "
                      "              WHERE NOT EXISTS (SELECT 1 FROM old) RETURNING id) "
                      "SELECT id, false FROM ins UNION ALL SELECT id, true FROM old",
                      org, period_start, period_end, created_by))) {
        db_rollback(d);
        return REPO_ERR;
    }
    int rc = REPO_ERR;
    if (PQntuples(r) == 1) {
        snprintf(id, 40, "%s", PQgetvalue(r, 0, 0));
        *existing = PQgetvalue(r, 0, 1)[0] == 't';
        rc = REPO_OK;
    } else {
        memset(e, 0, sizeof *e);
        snprintf(e->msg, sizeof e->msg, "billing run insert returned %d rows", PQntuples(r));
    }
    PQclear(r);
    if (rc == REPO_OK && db_commit(d, e) != 0) rc = REPO_ERR;
    if (rc != REPO_OK) db_rollback(d);
    return rc;
}

int repo_billing_run_set_job(db *d, db_err *e, long long org_id, const char *id,
                             const char *job_id) {
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    return DB_CMD(d, e, "UPDATE billing_runs SET job_id = $3 WHERE org_id = $1 AND id = $2::uuid",
                  org, id, job_id) == 0
               ? REPO_OK
               : REPO_ERR;
}

int repo_billing_run_delete(db *d, db_err *e, long long org_id, const char *id) {
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    return DB_CMD(d, e,
                  "DELETE FROM billing_runs WHERE org_id = $1 AND id = $2::uuid AND job_id IS NULL",
                  org, id) == 0
               ? REPO_OK
               : REPO_ERR;
}

/* done / failed / finished come from the items (see migration 0007) */
#define RUN_FROM                                                                                   \
    "billing_runs b JOIN organizations o ON o.id = b.org_id "                                      \
    "CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE outcome NOT IN ('queued', 'failed')) AS "   \
    "done,"                                                                                        \
    "                           count(*) FILTER (WHERE outcome = 'failed') AS failed,"             \
    "                           max(finished_at) AS last "                                         \
    "                      FROM billing_run_items WHERE run_id = b.id) s"
#define RUN_COLS                                                                                   \
    "b.id, o.slug AS organization, to_char(b.period_start AT TIME ZONE 'UTC', 'YYYY-MM') AS "      \
    "period,"                                                                                      \
    "b.period_start, b.period_end,"                                                                \
    "CASE WHEN b.status = 'failed' OR b.total IS NULL THEN b.status"                               \
    "     WHEN s.done + s.failed < b.total THEN 'running'"                                         \
    "     WHEN s.failed > 0 THEN 'failed' ELSE 'succeeded' END AS status,"                         \
    "b.total, s.done, s.failed, b.skipped,"                                                        \
    "CASE WHEN b.total > 0 THEN ((s.done + s.failed) * 100 / b.total)::int "                       \
    "     WHEN b.total = 0 THEN 100 ELSE 0 END AS progress,"                                       \
    "CASE WHEN s.failed > 0 THEN s.failed || ' customer(s) failed' ELSE b.error END AS error,"     \
    "b.job_id, b.created_by, b.created_at, b.started_at,"                                          \
    "CASE WHEN b.finished_at IS NOT NULL THEN b.finished_at"                                       \
    "     WHEN b.total IS NOT NULL AND s.done + s.failed >= b.total"                               \
    "     THEN greatest(s.last, b.started_at) END AS finished_at"

int repo_billing_run_get(db *d, db_err *e, long long org_id, const char *id, json_t **out) {
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    PGresult *r =
        DB_EXEC(d, e,
                "SELECT " RUN_COLS ","
                " (SELECT coalesce(json_agg(json_build_object('customer_id', c.external_id,"
                "          'error', i.error) ORDER BY c.external_id), '[]')"
                "    FROM (SELECT * FROM billing_run_items WHERE run_id = b.id"
                "            AND outcome = 'failed' LIMIT 100) i"
                "    JOIN customers c ON c.id = i.customer_id) AS failures "
                "  FROM " RUN_FROM " WHERE ($1::bigint = 0 OR b.org_id = $1) AND b.id = $2::uuid",
                org, id);
    return repo_one(r, e, out);
}

int repo_billing_runs_list(db *d, db_err *e, long long org_id, int limit, const char *after,
                           json_t **rows, char **next) {
    char org[24], lim[16], us[24], id[40];
    snprintf(org, sizeof org, "%lld", org_id);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    if (after && !repo_split_cursor(after, us, id)) return REPO_INVALID;
    PGresult *r = DB_EXEC(
        d, e,
        "SELECT " RUN_COLS ", (extract(epoch FROM b.created_at) * 1000000)::bigint::text || ':' "
        "|| b.id::text AS _cursor FROM " RUN_FROM " "
        "WHERE ($1::bigint = 0 OR b.org_id = $1) "
        "AND ($2::bigint IS NULL OR (b.created_at, b.id) < ('epoch'::timestamptz + $2::bigint * "
        "interval '1 microsecond', $3::uuid)) "
        "ORDER BY b.created_at DESC, b.id DESC LIMIT $4",
        org, after ? us : NULL, after ? id : NULL, lim);
    int rc = repo_page(r, e, limit, "_cursor", rows, next);
    if (rc != REPO_OK) return rc;
    size_t i;
    json_t *v;
    json_array_foreach(*rows, i, v) json_object_del(v, "_cursor");
    return REPO_OK;
}
