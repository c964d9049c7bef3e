/* repo_invoices.c — invoices, their lifecycle, audit trail and disputes
 * (migration 0007).  See repo_invoices.h for the contract.
 *
 * DESIGN — The lifecycle is the table k_rules: for each action, the states
 * it leaves and the state it reaches.  repo_inv_transition locks the invoice
 * (SELECT … FOR UPDATE), asks the table, writes the new status with its
 * timestamp and version + 1 (for issue: the next number, taken from
 * invoice_counters by INSERT … ON CONFLICT DO UPDATE … RETURNING in the same
 * statement, so the counter row lock is held until COMMIT and a rollback
 * returns the number), inserts the invoice_actions row and reads the invoice
 * back — all in one transaction.  The actor is the user row (id and email),
 * never a value from the client.
 *
 * Reads: the full invoice is four statements (header, lines, sub-lines, late
 * usage) whatever the number of lines.  Late usage is one statement per
 * invoice: for each metric of its usage lines, the period's usage now
 * (ml_usage_total) against what was billed — the line's quantity, raised by
 * the adjusted_to of adjustment lines on other non-void invoices that name
 * this one as their source.
 *
 * Listings are keyset pages: invoices and disputes newest first by
 * (created_at, id) with the cursor "<created_at µs>:<uuid>", the audit trail
 * oldest first by its bigint id.
 */
#include "fmacros.h"
#include "repo_invoices.h"
#include "repo_reports.h"
#include "repo_util.h"
#include <stdlib.h>

/* ======================================================================= */
/* lifecycle rules (pure)                                                   */

typedef struct inv_rule {
    const char *action; /* invoice_actions.action */
    const char *verb;   /* in messages */
    const char *from[5];
    const char *to;
} inv_rule;

static const inv_rule k_rules[REPO_INV_NACTIONS] = {
    [REPO_INV_SUBMIT] = {"submit", "submit", {"draft"}, "pending_approval"},
    [REPO_INV_APPROVE] = {"approve", "approve", {"pending_approval"}, "approved"},
    [REPO_INV_REJECT] = {"reject", "reject", {"pending_approval"}, "draft"},
    /* draft → issued only without require_approval (checked below) */
    [REPO_INV_ISSUE] = {"issue", "issue", {"approved", "draft"}, "issued"},
    [REPO_INV_VOID] = {"void", "void", {"draft", "pending_approval", "approved", "issued"}, "void"},
    [REPO_INV_MARK_PAID] = {"mark_paid", "mark paid", {"issued"}, "paid"},
};

static const char *const k_statuses[] = {"draft", "pending_approval", "approved", "issued", "paid",
                                         "void"};

const char *repo_inv_action_name(repo_inv_action a) {
    return (unsigned)a < REPO_INV_NACTIONS ? k_rules[a].action : "?";
}

const char *repo_inv_action_verb(repo_inv_action a) {
    return (unsigned)a < REPO_INV_NACTIONS ? k_rules[a].verb : "?";
}

bool repo_inv_is_status(const char *s) {
    for (size_t i = 0; i < ML_ARRAY_LEN(k_statuses); i++)
        if (!strcmp(s, k_statuses[i])) return true;
    return false;
}

const char *repo_inv_next(repo_inv_action a, const char *from, bool require_approval, int *why) {
    *why = REPO_INV_ILLEGAL;
    if ((unsigned)a >= REPO_INV_NACTIONS) return NULL;
    const inv_rule *rl = &k_rules[a];
    for (size_t i = 0; i < ML_ARRAY_LEN(rl->from) && rl->from[i]; i++) {
        if (strcmp(rl->from[i], from) != 0) continue;
        if (a == REPO_INV_ISSUE && !strcmp(from, "draft") && require_approval) {
            *why = REPO_INV_NEEDS_APPROVAL;
            return NULL;
        }
        *why = REPO_INV_OK;
        return rl->to;
    }
    return NULL;
}

/* ======================================================================= */
/* helpers                                                                  */

static void org_text(long long org_id, char out[24]) { snprintf(out, 24, "%lld", org_id); }

/* Removes key from every object of rows. */
static void drop_key(json_t *rows, const char *key) {
    size_t i;
    json_t *v;
    json_array_foreach(rows, i, v) json_object_del(v, key);
}

/* The acting user's email into out; REPO_ERR (e filled) if the user is gone. */
static int actor_email(db *d, db_err *e, const repo_inv_actor *who, char out[256]) {
    PGresult *r = DB_EXEC(d, e, "SELECT email FROM users WHERE id = $1::uuid", who->user_id);
    if (!r) return REPO_ERR;
    int rc = REPO_OK;
    if (PQntuples(r) == 1) {
        snprintf(out, 256, "%s", PQgetvalue(r, 0, 0));
    } else {
        memset(e, 0, sizeof *e);
        snprintf(e->msg, sizeof e->msg, "the acting user %s no longer exists", who->user_id);
        rc = REPO_ERR;
    }
    PQclear(r);
    return rc;
}

static int audit(db *d, db_err *e, const char *invoice_id, const char *org, const char *action,
                 const char *from, const char *to, const repo_inv_actor *who, const char *email,
                 const char *comment) {
    return DB_CMD(d, e,
                  "INSERT INTO invoice_actions (invoice_id, org_id, action, from_status, "
                  "to_status, actor_id, actor, comment) VALUES ($1::uuid, $2::bigint, $3, $4, $5, "
                  "$6::uuid, $7, $8)",
                  invoice_id, org, action, from, to, who->user_id, email, comment) == 0
               ? REPO_OK
               : REPO_ERR;
}

/* Rolls back and passes rc on. */
static int undo(db *d, int rc) {
    db_rollback(d);
    return rc;
}

/* ======================================================================= */
/* the full invoice                                                          */

#define INV_SUMMARY_COLS                                                                           \
    "i.id, i.number, i.status, json_build_object('id', c.external_id, 'name', c.name) AS "         \
    "customer, i.period_start, i.period_end, i.currency, i.subtotal, i.tax, i.total, i.version, "  \
    "i.generated_at, i.issued_at, i.paid_at, i.voided_at, i.created_at, i.updated_at, "            \
    "o.slug AS organization"
#define INV_JOINS                                                                                  \
    " FROM invoices i JOIN customers c ON c.org_id = i.org_id AND c.id = i.customer_id "           \
    " JOIN organizations o ON o.id = i.org_id "

static int load_lines(db *d, db_err *e, const char *id, json_t *inv) {
    PGresult *r = DB_EXEC(
        d, e,
        "SELECT l.id AS _id, l.position, l.kind, l.description, l.metric_code AS metric, l.model, "
        "l.quantity, l.billable_quantity, l.unit_price, l.amount, l.amount_exact, "
        "CASE WHEN l.source_invoice_id IS NULL THEN NULL "
        "     ELSE json_build_object('id', l.source_invoice_id, 'number', s.number) END "
        "  AS source_invoice, l.adjusted_from, l.adjusted_to "
        "FROM invoice_lines l LEFT JOIN invoices s ON s.id = l.source_invoice_id "
        "WHERE l.invoice_id = $1::uuid ORDER BY l.position",
        id);
    if (!r) return REPO_ERR;
    json_t *lines = db_rows_json(r);
    PQclear(r);
    if (!lines) return repo_oom(e);
    r = DB_EXEC(d, e,
                "SELECT s.line_id::text AS _line, s.position, s.kind, s.description, "
                "s.day::text AS day, s.tier, s.tier_from, s.tier_to, s.quantity, s.unit_price, "
                "s.flat_fee, s.amount FROM invoice_sub_lines s WHERE s.invoice_id = $1::uuid "
                "ORDER BY s.line_id, s.position",
                id);
    if (!r) {
        json_decref(lines);
        return REPO_ERR;
    }
    json_t *subs = db_rows_json(r);
    PQclear(r);
    json_t *by_line = json_object();
    bool oom = !subs || !by_line;
    size_t i;
    json_t *v;
    if (!oom) {
        json_array_foreach(subs, i, v) {
            const char *lid = json_string_value(json_object_get(v, "_line"));
            if (!lid) continue;
            json_t *arr = json_object_get(by_line, lid);
            if (!arr) {
                arr = json_array();
                if (!arr || json_object_set_new(by_line, lid, arr)) {
                    oom = true;
                    break;
                }
            }
            json_object_del(v, "_line");
            if (json_array_append(arr, v)) {
                oom = true;
                break;
            }
        }
    }
    if (!oom) {
        json_array_foreach(lines, i, v) {
            char key[24];
            snprintf(key, sizeof key, "%lld",
                     (long long)json_integer_value(json_object_get(v, "_id")));
            json_object_del(v, "_id");
            json_t *arr = json_object_get(by_line, key);
            if (json_object_set_new(v, "sub_lines", arr ? json_incref(arr) : json_array())) {
                oom = true;
                break;
            }
        }
    }
    json_decref(subs);
    json_decref(by_line);
    if (oom) {
        json_decref(lines);
        return repo_oom(e);
    }
    /* json_object_set_new consumes lines even when it fails */
    return json_object_set_new(inv, "lines", lines) ? repo_oom(e) : REPO_OK;
}

/* Late usage of an issued invoice: one statement for all its usage lines.
 * Every metric whose usage of the period now exceeds what this invoice billed
 * is listed — also once later invoices' adjustments cover it, so the view
 * keeps showing where it was billed: billed (on this invoice), current, late
 * (current - billed), adjusted (the part adjustments on other non-void
 * invoices bill, adjusted_on lists them) and unbilled (still to be billed). */
static int load_late_usage(db *d, db_err *e, const char *id, json_t *inv) {
    PGresult *r = DB_EXEC(
        d, e,
        "WITH inv AS (SELECT org_id, customer_id, period_start, period_end FROM invoices "
        "              WHERE id = $1::uuid), "
        "u AS (SELECT l.metric_id, min(l.metric_code) AS metric, max(l.quantity) AS billed "
        "        FROM invoice_lines l WHERE l.invoice_id = $1::uuid AND l.kind = 'usage' "
        "         AND l.metric_id IS NOT NULL GROUP BY l.metric_id), "
        "adj1 AS (SELECT a.metric_id, ai.id, ai.number, ai.status, ai.created_at, "
        "                max(a.adjusted_to) AS adjusted_to "
        "           FROM invoice_lines a JOIN invoices ai ON ai.id = a.invoice_id "
        "          WHERE a.source_invoice_id = $1::uuid AND a.kind = 'adjustment' "
        "            AND a.invoice_id <> $1::uuid AND ai.status <> 'void' "
        "            AND a.metric_id IS NOT NULL "
        "          GROUP BY a.metric_id, ai.id, ai.number, ai.status, ai.created_at), "
        "adj AS (SELECT metric_id, max(adjusted_to) AS adjusted_to, "
        "               json_agg(json_build_object('id', id, 'number', number, 'status', status) "
        "                        ORDER BY created_at, id) AS adjusted_on "
        "          FROM adj1 GROUP BY metric_id), "
        "t AS (SELECT u.metric, coalesce(u.billed, 0) AS billed, "
        "             greatest(coalesce(u.billed, 0), coalesce(adj.adjusted_to, 0)) AS covered, "
        "             ml_usage_total(inv.org_id, inv.customer_id, u.metric_id, "
        "                            inv.period_start, inv.period_end) AS cur, "
        "             coalesce(adj.adjusted_on, '[]'::json) AS adjusted_on "
        "        FROM u CROSS JOIN inv LEFT JOIN adj ON adj.metric_id = u.metric_id) "
        "SELECT metric, trim_scale(billed) AS billed_quantity, trim_scale(cur) AS "
        "current_quantity, "
        "       trim_scale(cur - billed) AS late_quantity, "
        "       trim_scale(least(covered, cur) - billed) AS adjusted_quantity, "
        "       trim_scale(greatest(cur - covered, 0)) AS unbilled_quantity, adjusted_on "
        "  FROM t WHERE cur > billed ORDER BY metric",
        id);
    if (!r) return REPO_ERR;
    json_t *rows = db_rows_json(r);
    PQclear(r);
    if (!rows) return repo_oom(e);
    return json_object_set_new(inv, "late_usage", rows) ? repo_oom(e) : REPO_OK;
}

int repo_inv_get(db *d, db_err *e, long long org_id, const char *id, json_t **out) {
    char org[24];
    org_text(org_id, org);
    *out = NULL;
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    PGresult *r = DB_EXEC(
        d, e,
        "SELECT " INV_SUMMARY_COLS ", trim_scale(i.tax_rate)::text AS tax_rate, i.notes, "
        "c.require_approval, json_build_object("
        "  'open', (SELECT count(*) FROM invoice_disputes x WHERE x.invoice_id = i.id "
        "             AND x.status = 'open'), "
        "  'total', (SELECT count(*) FROM invoice_disputes x WHERE x.invoice_id = i.id)) "
        "  AS disputes " INV_JOINS "WHERE ($1::bigint = 0 OR i.org_id = $1) AND i.id = $2::uuid",
        org, id);
    json_t *inv = NULL;
    int rc = repo_one(r, e, &inv);
    if (rc != REPO_OK) return rc;
    /* the real id text, as stored */
    const char *iid = json_string_value(json_object_get(inv, "id"));
    char idtxt[40];
    snprintf(idtxt, sizeof idtxt, "%s", iid ? iid : id);
    rc = load_lines(d, e, idtxt, inv);
    if (rc == REPO_OK) {
        if (json_is_null(json_object_get(inv, "issued_at")))
            rc = json_object_set_new(inv, "late_usage", json_array()) ? repo_oom(e) : REPO_OK;
        else
            rc = load_late_usage(d, e, idtxt, inv);
    }
    if (rc != REPO_OK) {
        json_decref(inv);
        return rc;
    }
    *out = inv;
    return REPO_OK;
}

/* ======================================================================= */
/* listings                                                                  */

int repo_inv_list(db *d, db_err *e, long long org_id, const repo_inv_filter *f, int limit,
                  const char *after, json_t **rows, char **next) {
    char org[24], lim[16], us[24], cid[40];
    org_text(org_id, org);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    *rows = NULL;
    *next = NULL;
    if (after && !repo_split_cursor(after, us, cid)) return REPO_INVALID;
    PGresult *r = DB_EXEC(
        d, e,
        "SELECT " INV_SUMMARY_COLS ", (extract(epoch FROM i.created_at) * 1000000)::bigint::text "
        "|| ':' || i.id::text AS _cursor" INV_JOINS "WHERE ($1::bigint = 0 OR i.org_id = $1) "
        "AND ($2::text IS NULL OR c.external_id = $2) "
        "AND ($3::text[] IS NULL OR i.status = ANY ($3::text[])) "
        "AND ($4::timestamptz IS NULL OR i.period_start >= $4::timestamptz) "
        "AND ($5::timestamptz IS NULL OR i.period_start < $5::timestamptz) "
        "AND ($6::bigint IS NULL OR (i.created_at, i.id) < ('epoch'::timestamptz + $6::bigint * "
        "interval '1 microsecond', $7::uuid)) "
        "ORDER BY i.created_at DESC, i.id DESC LIMIT $8",
        org, f->customer, f->statuses_pg, f->period_from, f->period_to, after ? us : NULL,
        after ? cid : NULL, lim);
    int rc = repo_page(r, e, limit, "_cursor", rows, next);
    if (rc != REPO_OK) return rc;
    drop_key(*rows, "_cursor");
    return REPO_OK;
}

/* REPO_OK if invoice id is visible to org, REPO_NOT_FOUND, REPO_ERR. */
static int invoice_visible(db *d, db_err *e, const char *org, const char *id) {
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    PGresult *r = DB_EXEC(d, e,
                          "SELECT 1 FROM invoices WHERE ($1::bigint = 0 OR org_id = $1) "
                          "AND id = $2::uuid",
                          org, id);
    if (!r) return REPO_ERR;
    int rc = PQntuples(r) == 1 ? REPO_OK : REPO_NOT_FOUND;
    PQclear(r);
    return rc;
}

int repo_inv_actions(db *d, db_err *e, long long org_id, const char *id, int limit,
                     const char *after, json_t **rows, char **next) {
    char org[24], lim[16];
    org_text(org_id, org);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    *rows = NULL;
    *next = NULL;
    if (after && (!*after || strlen(after) > 18 || strspn(after, "0123456789") != strlen(after)))
        return REPO_INVALID;
    int rc = invoice_visible(d, e, org, id);
    if (rc != REPO_OK) return rc;
    PGresult *r = DB_EXEC(d, e,
                          "SELECT a.id, a.action, a.from_status, a.to_status, a.actor, a.comment, "
                          "a.created_at FROM invoice_actions a WHERE a.invoice_id = $1::uuid "
                          "AND ($2::bigint IS NULL OR a.id > $2::bigint) ORDER BY a.id LIMIT $3",
                          id, after, lim);
    return repo_page(r, e, limit, "id", rows, next);
}

/* ======================================================================= */
/* transitions                                                               */

int repo_inv_transition(db *d, db_err *e, long long org_id, const char *id, repo_inv_action a,
                        const repo_inv_actor *who, const char *comment, json_t **out, repo_field *f,
                        int *why) {
    char org[24], inv_org[24], from[24], email[256];
    org_text(org_id, org);
    *out = NULL;
    *why = REPO_INV_OK;
    if (!repo_is_uuid(id) || (unsigned)a >= REPO_INV_NACTIONS) return REPO_NOT_FOUND;
    if (db_begin(d, e)) return REPO_ERR;
    PGresult *r = DB_EXEC(d, e,
                          "SELECT i.status, i.org_id, c.require_approval FROM invoices i "
                          "JOIN customers c ON c.org_id = i.org_id AND c.id = i.customer_id "
                          "WHERE ($1::bigint = 0 OR i.org_id = $1) AND i.id = $2::uuid "
                          "FOR UPDATE OF i",
                          org, id);
    if (!r) return undo(d, REPO_ERR);
    if (PQntuples(r) == 0) {
        PQclear(r);
        return undo(d, REPO_NOT_FOUND);
    }
    snprintf(from, sizeof from, "%s", PQgetvalue(r, 0, 0));
    snprintf(inv_org, sizeof inv_org, "%s", PQgetvalue(r, 0, 1));
    bool require_approval = PQgetvalue(r, 0, 2)[0] == 't';
    PQclear(r);

    const char *to = repo_inv_next(a, from, require_approval, why);
    if (!to) {
        repo_set_field(f, "status", from);
        return undo(d, REPO_CONFLICT);
    }
    if (actor_email(d, e, who, email) != REPO_OK) return undo(d, REPO_ERR);

    if (a == REPO_INV_ISSUE) {
        /* the counter row stays locked until COMMIT: concurrent issues of
         * the organization queue here, and a rollback returns the number */
        r = DB_EXEC(d, e,
                    "WITH n AS (INSERT INTO invoice_counters (org_id, year, last) "
                    "  VALUES ($1::bigint, extract(year FROM now() AT TIME ZONE 'UTC')::int, 1) "
                    "  ON CONFLICT (org_id, year) DO UPDATE SET last = invoice_counters.last + 1 "
                    "  RETURNING year, last) "
                    "UPDATE invoices i SET status = 'issued', issued_at = now(), "
                    "  version = i.version + 1, number = o.invoice_prefix || '-' || "
                    "  n.year::text || '-' || "
                    "  lpad(n.last::text, greatest(6, length(n.last::text)), '0') "
                    "FROM n, organizations o WHERE o.id = i.org_id AND i.id = $2::uuid "
                    "RETURNING i.number",
                    inv_org, id);
    } else {
        r = DB_EXEC(d, e,
                    "UPDATE invoices SET status = $2::text, version = version + 1, "
                    "paid_at = CASE WHEN $2::text = 'paid' THEN now() ELSE paid_at END, "
                    "voided_at = CASE WHEN $2::text = 'void' THEN now() ELSE voided_at END "
                    "WHERE id = $1::uuid RETURNING id",
                    id, to);
    }
    if (!r) return undo(d, REPO_ERR);
    int n = PQntuples(r);
    PQclear(r);
    if (ML_NEVER(n != 1)) return undo(d, REPO_NOT_FOUND); /* locked above */

    if (audit(d, e, id, inv_org, k_rules[a].action, from, to, who, email, comment) != REPO_OK)
        return undo(d, REPO_ERR);
    /* an issued invoice always has its PDF requested (the API enqueues the
     * render after COMMIT; repo_reports.h) */
    if (a == REPO_INV_ISSUE && repo_rep_issue_insert(d, e, id) != 0) return undo(d, REPO_ERR);
    int rc = repo_inv_get(d, e, 0, id, out);
    if (rc != REPO_OK) return undo(d, rc);
    if (db_commit(d, e)) {
        json_decref(*out);
        *out = NULL;
        return undo(d, REPO_ERR);
    }
    return REPO_OK;
}

/* ======================================================================= */
/* disputes                                                                  */

#define DISPUTE_COLS                                                                               \
    "dp.id, json_build_object('id', i.id, 'number', i.number, 'status', i.status) AS invoice, "    \
    "dp.status, dp.opened_by, dp.resolved_by, dp.resolved_at, o.slug AS organization, "            \
    "dp.created_at, dp.updated_at"
#define DISPUTE_JOINS                                                                              \
    " FROM invoice_disputes dp JOIN invoices i ON i.id = dp.invoice_id "                           \
    " JOIN organizations o ON o.id = dp.org_id "
#define MESSAGE_COLS "m.id, m.dispute_id, m.author, m.author_role, m.body AS message, m.created_at"

int repo_inv_dispute_get(db *d, db_err *e, long long org_id, const char *id, json_t **out) {
    char org[24];
    org_text(org_id, org);
    *out = NULL;
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    PGresult *r = DB_EXEC(d, e,
                          "SELECT " DISPUTE_COLS DISPUTE_JOINS
                          "WHERE ($1::bigint = 0 OR dp.org_id = $1) AND dp.id = $2::uuid",
                          org, id);
    json_t *dp = NULL;
    int rc = repo_one(r, e, &dp);
    if (rc != REPO_OK) return rc;
    r = DB_EXEC(d, e,
                "SELECT " MESSAGE_COLS " FROM invoice_dispute_messages m "
                "WHERE m.dispute_id = $1::uuid ORDER BY m.id",
                id);
    if (!r) {
        json_decref(dp);
        return REPO_ERR;
    }
    json_t *msgs = db_rows_json(r);
    PQclear(r);
    if (!msgs || json_object_set_new(dp, "messages", msgs)) {
        json_decref(dp);
        return repo_oom(e);
    }
    *out = dp;
    return REPO_OK;
}

int repo_inv_disputes_list(db *d, db_err *e, long long org_id, const char *status,
                           const char *invoice_id, int limit, const char *after, json_t **rows,
                           char **next) {
    char org[24], lim[16], us[24], cid[40];
    org_text(org_id, org);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    *rows = NULL;
    *next = NULL;
    if (after && !repo_split_cursor(after, us, cid)) return REPO_INVALID;
    PGresult *r = DB_EXEC(
        d, e,
        "SELECT " DISPUTE_COLS ", (SELECT count(*) FROM invoice_dispute_messages m "
        "  WHERE m.dispute_id = dp.id) AS messages_count, "
        "(extract(epoch FROM dp.created_at) * 1000000)::bigint::text || ':' || dp.id::text "
        "  AS _cursor" DISPUTE_JOINS "WHERE ($1::bigint = 0 OR dp.org_id = $1) "
        "AND ($2::text IS NULL OR dp.status = $2) "
        "AND ($3::uuid IS NULL OR dp.invoice_id = $3::uuid) "
        "AND ($4::bigint IS NULL OR (dp.created_at, dp.id) < ('epoch'::timestamptz + $4::bigint * "
        "interval '1 microsecond', $5::uuid)) "
        "ORDER BY dp.created_at DESC, dp.id DESC LIMIT $6",
        org, status, invoice_id, after ? us : NULL, after ? cid : NULL, lim);
    int rc = repo_page(r, e, limit, "_cursor", rows, next);
    if (rc != REPO_OK) return rc;
    drop_key(*rows, "_cursor");
    return REPO_OK;
}

/* org_id of a message row: null when a platform admin wrote it. */
static const char *msg_org(const repo_inv_actor *who, const char *org) {
    return !strcmp(who->role, "admin") ? NULL : org;
}

int repo_inv_dispute_open(db *d, db_err *e, long long org_id, const char *invoice_id,
                          const repo_inv_actor *who, const char *message, json_t **out) {
    char org[24], inv_org[24], status[24], email[256], did[40], comment[64];
    org_text(org_id, org);
    *out = NULL;
    if (!repo_is_uuid(invoice_id)) return REPO_NOT_FOUND;
    if (db_begin(d, e)) return REPO_ERR;
    PGresult *r = DB_EXEC(d, e,
                          "SELECT status, org_id FROM invoices WHERE ($1::bigint = 0 OR org_id = "
                          "$1) AND id = $2::uuid FOR UPDATE",
                          org, invoice_id);
    if (!r) return undo(d, REPO_ERR);
    if (PQntuples(r) == 0) {
        PQclear(r);
        return undo(d, REPO_NOT_FOUND);
    }
    snprintf(status, sizeof status, "%s", PQgetvalue(r, 0, 0));
    snprintf(inv_org, sizeof inv_org, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    if (actor_email(d, e, who, email) != REPO_OK) return undo(d, REPO_ERR);
    r = DB_EXEC(d, e,
                "INSERT INTO invoice_disputes (org_id, invoice_id, opened_by) "
                "VALUES ($1::bigint, $2::uuid, $3) RETURNING id",
                inv_org, invoice_id, email);
    if (!r) return undo(d, REPO_ERR);
    snprintf(did, sizeof did, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (DB_CMD(d, e,
               "INSERT INTO invoice_dispute_messages (dispute_id, org_id, author_id, author, "
               "author_role, body) VALUES ($1::uuid, $2::bigint, $3::uuid, $4, $5, $6)",
               did, msg_org(who, inv_org), who->user_id, email, who->role, message))
        return undo(d, REPO_ERR);
    snprintf(comment, sizeof comment, "dispute %s", did);
    if (audit(d, e, invoice_id, inv_org, "dispute_open", status, status, who, email, comment) !=
        REPO_OK)
        return undo(d, REPO_ERR);
    int rc = repo_inv_dispute_get(d, e, 0, did, out);
    if (rc != REPO_OK) return undo(d, rc);
    if (db_commit(d, e)) {
        json_decref(*out);
        *out = NULL;
        return undo(d, REPO_ERR);
    }
    return REPO_OK;
}

/* Locks dispute id: its org, invoice, the invoice's status and its own
 * status.  REPO_OK / REPO_NOT_FOUND / REPO_ERR (inside a transaction). */
static int lock_dispute(db *d, db_err *e, const char *org, const char *id, char dorg[24],
                        char inv[40], char inv_status[24], char status[16]) {
    PGresult *r = DB_EXEC(d, e,
                          "SELECT dp.org_id, dp.invoice_id, i.status, dp.status "
                          "FROM invoice_disputes dp JOIN invoices i ON i.id = dp.invoice_id "
                          "WHERE ($1::bigint = 0 OR dp.org_id = $1) AND dp.id = $2::uuid "
                          "FOR UPDATE OF dp",
                          org, id);
    if (!r) return REPO_ERR;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return REPO_NOT_FOUND;
    }
    snprintf(dorg, 24, "%s", PQgetvalue(r, 0, 0));
    snprintf(inv, 40, "%s", PQgetvalue(r, 0, 1));
    snprintf(inv_status, 24, "%s", PQgetvalue(r, 0, 2));
    snprintf(status, 16, "%s", PQgetvalue(r, 0, 3));
    PQclear(r);
    return REPO_OK;
}

/* Begins a transaction with dispute id locked and still open (else
 * REPO_CONFLICT naming its status), and the actor's email: REPO_OK with the
 * transaction open, or the failure after rolling back. */
static int begin_on_open_dispute(db *d, db_err *e, const char *org, const char *id,
                                 const repo_inv_actor *who, repo_field *f, char dorg[24],
                                 char inv[40], char inv_status[24], char email[256]) {
    char status[16];
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    if (db_begin(d, e)) return REPO_ERR;
    int rc = lock_dispute(d, e, org, id, dorg, inv, inv_status, status);
    if (rc != REPO_OK) return undo(d, rc);
    if (strcmp(status, "open") != 0) {
        repo_set_field(f, "status", status);
        return undo(d, REPO_CONFLICT);
    }
    if (actor_email(d, e, who, email) != REPO_OK) return undo(d, REPO_ERR);
    return REPO_OK;
}

int repo_inv_dispute_message(db *d, db_err *e, long long org_id, const char *id,
                             const repo_inv_actor *who, const char *message, json_t **out,
                             repo_field *f) {
    char org[24], dorg[24], inv[40], inv_status[24], email[256];
    org_text(org_id, org);
    *out = NULL;
    int rc = begin_on_open_dispute(d, e, org, id, who, f, dorg, inv, inv_status, email);
    if (rc != REPO_OK) return rc;
    PGresult *r = DB_EXEC(d, e,
                          "WITH m AS (INSERT INTO invoice_dispute_messages (dispute_id, org_id, "
                          "author_id, author, author_role, body) VALUES ($1::uuid, $2::bigint, "
                          "$3::uuid, $4, $5, $6) RETURNING *), "
                          "t AS (UPDATE invoice_disputes SET status = status WHERE id = $1::uuid) "
                          "SELECT " MESSAGE_COLS " FROM m",
                          id, msg_org(who, dorg), who->user_id, email, who->role, message);
    rc = repo_one(r, e, out);
    if (rc != REPO_OK) return undo(d, rc == REPO_NOT_FOUND ? REPO_ERR : rc);
    if (db_commit(d, e)) {
        json_decref(*out);
        *out = NULL;
        return undo(d, REPO_ERR);
    }
    return REPO_OK;
}

int repo_inv_dispute_resolve(db *d, db_err *e, long long org_id, const char *id,
                             const repo_inv_actor *who, const char *comment, json_t **out,
                             repo_field *f) {
    char org[24], dorg[24], inv[40], inv_status[24], email[256];
    org_text(org_id, org);
    *out = NULL;
    int rc = begin_on_open_dispute(d, e, org, id, who, f, dorg, inv, inv_status, email);
    if (rc != REPO_OK) return rc;
    if (DB_CMD(d, e,
               "UPDATE invoice_disputes SET status = 'resolved', resolved_by = $2, "
               "resolved_at = now() WHERE id = $1::uuid",
               id, email))
        return undo(d, REPO_ERR);
    if (comment &&
        DB_CMD(d, e,
               "INSERT INTO invoice_dispute_messages (dispute_id, org_id, author_id, author, "
               "author_role, body) VALUES ($1::uuid, $2::bigint, $3::uuid, $4, $5, $6)",
               id, msg_org(who, dorg), who->user_id, email, who->role, comment))
        return undo(d, REPO_ERR);
    if (audit(d, e, inv, dorg, "dispute_resolve", inv_status, inv_status, who, email, comment) !=
        REPO_OK)
        return undo(d, REPO_ERR);
    rc = repo_inv_dispute_get(d, e, 0, id, out);
    if (rc != REPO_OK) return undo(d, rc);
    if (db_commit(d, e)) {
        json_decref(*out);
        *out = NULL;
        return undo(d, REPO_ERR);
    }
    return REPO_OK;
}
