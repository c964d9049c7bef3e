/* repo_catalog.c — customers, metrics and plans of an organization.
 *
 * DESIGN — See repo.h.  Inputs are objects the API has validated and
 * normalized (decimals as plain decimal strings, tiers sorted and checked).
 * org_id 0 in a listing means "every organization" (platform admins); every
 * other function requires a real org_id and filters on it.  References by
 * code (a customer's plan, a charge's metric) are resolved inside the caller's
 * organization only, so another organization's plan or metric is "unknown".
 */
#include "fmacros.h"
#include "repo.h"
#include "repo_util.h"
#include "jx.h"
#include <stdlib.h>

#define CUST_COLS                                                                                  \
    "c.id, c.external_id, c.name, c.email, c.currency, p.code AS plan, c.billing_address, "        \
    "c.require_approval, trim_scale(c.tax_rate)::text AS tax_rate, o.slug AS organization, "       \
    "c.created_at, c.updated_at"
#define CUST_JOINS                                                                                 \
    " LEFT JOIN plans p ON p.id = c.plan_id "                                                      \
    " JOIN organizations o ON o.id = c.org_id "

static void org_text(long long org_id, char out[24]) { snprintf(out, 24, "%lld", org_id); }

/* Resolves a plan code of the organization: REPO_OK with id text, or
 * REPO_INVALID with the field set. */
static int plan_id(db *d, db_err *e, const char *org, const char *code, char out[24],
                   repo_field *f) {
    PGresult *r = DB_EXEC(d, e, "SELECT id FROM plans WHERE org_id = $1 AND code = $2", org, code);
    if (!r) return REPO_ERR;
    int rc = REPO_INVALID;
    if (PQntuples(r) == 1) {
        snprintf(out, 24, "%s", PQgetvalue(r, 0, 0));
        rc = REPO_OK;
    } else {
        repo_set_field(f, "plan", "no plan with this code in your organization");
    }
    PQclear(r);
    return rc;
}

static char *json_text(const json_t *v) {
    if (!v || json_is_null(v)) return NULL;
    return jx_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

int repo_customer_create(db *d, db_err *e, long long org_id, const json_t *in, json_t **out,
                         repo_field *f) {
    char org[24], pid[24], n1[32];
    org_text(org_id, org);
    const char *plan = repo_text(in, "plan", n1, sizeof n1);
    if (plan) {
        int rc = plan_id(d, e, org, plan, pid, f);
        if (rc != REPO_OK) return rc;
    }
#define STR(k) json_string_value(json_object_get(in, k))
    char *addr = json_text(json_object_get(in, "billing_address"));
    const json_t *ra = json_object_get(in, "require_approval");
    PGresult *r = DB_EXEC(
        d, e,
        "WITH c AS (INSERT INTO customers (org_id, external_id, name, email, currency, plan_id, "
        "  billing_address, require_approval, tax_rate) VALUES ($1, $2, $3, $4, $5, $6::bigint, "
        "  $7::jsonb, $8::boolean, $9::numeric) "
        "  ON CONFLICT (org_id, external_id) DO NOTHING RETURNING *) "
        "SELECT " CUST_COLS " FROM c" CUST_JOINS,
        org, STR("external_id"), STR("name"), STR("email"), STR("currency"), plan ? pid : NULL,
        addr, json_is_true(ra) ? "true" : "false", STR("tax_rate"));
#undef STR
    free(addr);
    if (!r) return REPO_ERR;
    if (PQntuples(r) == 0) {
        PQclear(r);
        repo_set_field(f, "external_id", "a customer with this external_id already exists");
        return REPO_CONFLICT;
    }
    return repo_one(r, e, out);
}

int repo_customer_get(db *d, db_err *e, long long org_id, const char *external_id, json_t **out) {
    char org[24];
    org_text(org_id, org);
    PGresult *r = DB_EXEC(d, e,
                          "SELECT " CUST_COLS " FROM customers c" CUST_JOINS
                          "WHERE c.org_id = $1 AND c.external_id = $2",
                          org, external_id);
    return repo_one(r, e, out);
}

int repo_customers_list(db *d, db_err *e, long long org_id, const char *q, int limit,
                        const char *after, json_t **rows, char **next) {
    char org[24], lim[16];
    org_text(org_id, org);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    PGresult *r = DB_EXEC(d, e,
                          "SELECT " CUST_COLS " FROM customers c" CUST_JOINS
                          "WHERE ($1::bigint = 0 OR c.org_id = $1) "
                          "AND ($2::text IS NULL OR c.name ILIKE $2 ESCAPE '\\' OR c.external_id "
                          "ILIKE $2 ESCAPE '\\' OR c.email ILIKE $2 ESCAPE '\\') "
                          "AND ($3::bigint IS NULL OR c.id > $3::bigint) ORDER BY c.id LIMIT $4",
                          org, q, after, lim);
    return repo_page(r, e, limit, "id", rows, next);
}

int repo_customer_update(db *d, db_err *e, long long org_id, const char *external_id,
                         const json_t *in, json_t **out, repo_field *f) {
    char org[24], pid[24], n1[32];
    org_text(org_id, org);
    const json_t *planv = json_object_get(in, "plan");
    const char *plan = repo_text(in, "plan", n1, sizeof n1);
    if (plan) {
        int rc = plan_id(d, e, org, plan, pid, f);
        if (rc != REPO_OK) return rc;
    }
#define HAS(k) (json_object_get(in, k) ? "true" : "false")
#define STR(k) json_string_value(json_object_get(in, k))
    char *addr = json_text(json_object_get(in, "billing_address"));
    const json_t *ra = json_object_get(in, "require_approval");
    PGresult *r = DB_EXEC(
        d, e,
        "WITH c AS (UPDATE customers SET "
        " name = CASE WHEN $3::boolean THEN $4 ELSE name END, "
        " email = CASE WHEN $5::boolean THEN $6 ELSE email END, "
        " currency = CASE WHEN $7::boolean THEN $8 ELSE currency END, "
        " plan_id = CASE WHEN $9::boolean THEN $10::bigint ELSE plan_id END, "
        " billing_address = CASE WHEN $11::boolean THEN $12::jsonb ELSE billing_address END, "
        " require_approval = CASE WHEN $13::boolean THEN $14::boolean ELSE require_approval END, "
        " tax_rate = CASE WHEN $15::boolean THEN $16::numeric ELSE tax_rate END "
        " WHERE org_id = $1 AND external_id = $2 RETURNING *) "
        "SELECT " CUST_COLS " FROM c" CUST_JOINS,
        org, external_id, HAS("name"), STR("name"), HAS("email"), STR("email"), HAS("currency"),
        STR("currency"), planv ? "true" : "false", plan ? pid : NULL, HAS("billing_address"), addr,
        ra && json_is_boolean(ra) ? "true" : "false", ra && json_is_true(ra) ? "true" : "false",
        HAS("tax_rate"), STR("tax_rate"));
#undef HAS
#undef STR
    free(addr);
    return repo_one(r, e, out);
}

/* ---- metrics ---------------------------------------------------------- */

#define METRIC_COLS                                                                                \
    "m.code, m.name, m.aggregation, m.unit, m.unique_property, o.slug AS organization, "           \
    "m.created_at, m.updated_at"

int repo_metric_create(db *d, db_err *e, long long org_id, const json_t *in, json_t **out,
                       repo_field *f) {
    char org[24];
    org_text(org_id, org);
    PGresult *r = DB_EXEC(
        d, e,
        "WITH m AS (INSERT INTO metrics (org_id, code, name, aggregation, unit, unique_property) "
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, code) DO NOTHING RETURNING *) "
        "SELECT " METRIC_COLS " FROM m JOIN organizations o ON o.id = m.org_id",
        org, json_string_value(json_object_get(in, "code")),
        json_string_value(json_object_get(in, "name")),
        json_string_value(json_object_get(in, "aggregation")),
        json_string_value(json_object_get(in, "unit")),
        json_string_value(json_object_get(in, "unique_property")));
    if (!r) return REPO_ERR;
    if (PQntuples(r) == 0) {
        PQclear(r);
        repo_set_field(f, "code", "a metric with this code already exists");
        return REPO_CONFLICT;
    }
    return repo_one(r, e, out);
}

int repo_metric_get(db *d, db_err *e, long long org_id, const char *code, json_t **out) {
    char org[24];
    org_text(org_id, org);
    PGresult *r = DB_EXEC(d, e,
                          "SELECT " METRIC_COLS " FROM metrics m JOIN organizations o ON "
                          "o.id = m.org_id WHERE m.org_id = $1 AND m.code = $2",
                          org, code);
    return repo_one(r, e, out);
}

int repo_metrics_list(db *d, db_err *e, long long org_id, int limit, const char *after,
                      json_t **rows, char **next) {
    char org[24], lim[16];
    org_text(org_id, org);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    PGresult *r = DB_EXEC(d, e,
                          "SELECT m.id, " METRIC_COLS " FROM metrics m JOIN organizations o ON "
                          "o.id = m.org_id WHERE ($1::bigint = 0 OR m.org_id = $1) "
                          "AND ($2::bigint IS NULL OR m.id > $2::bigint) ORDER BY m.id LIMIT $3",
                          org, after, lim);
    return repo_page(r, e, limit, "id", rows, next);
}

/* ---- plans ------------------------------------------------------------ */

#define PLAN_SELECT                                                                                \
    "SELECT p.id, p.code, p.name, p.currency, trim_scale(p.base_fee)::text AS base_fee, "          \
    " COALESCE((SELECT jsonb_agg(jsonb_build_object("                                              \
    "   'metric', m.code, 'model', pc.model, "                                                     \
    "   'unit_price', trim_scale(pc.unit_price)::text, "                                           \
    "   'included_units', trim_scale(pc.included_units)::text, "                                   \
    "   'package_size', trim_scale(pc.package_size)::text, "                                       \
    "   'minimum', trim_scale(pc.minimum)::text, 'tiers', pc.tiers) ORDER BY pc.position) "        \
    "  FROM plan_charges pc JOIN metrics m ON m.id = pc.metric_id WHERE pc.plan_id = p.id), "      \
    "  '[]'::jsonb) AS charges, o.slug AS organization, p.created_at, p.updated_at "               \
    "FROM plans p JOIN organizations o ON o.id = p.org_id "

int repo_plan_create(db *d, db_err *e, long long org_id, const json_t *in, json_t **out,
                     repo_field *f) {
    char org[24];
    org_text(org_id, org);
    PGresult *r = DB_EXEC(d, e,
                          "INSERT INTO plans (org_id, code, name, currency, base_fee) "
                          "VALUES ($1, $2, $3, $4, COALESCE($5::numeric, 0)) "
                          "ON CONFLICT (org_id, code) DO NOTHING RETURNING id",
                          org, json_string_value(json_object_get(in, "code")),
                          json_string_value(json_object_get(in, "name")),
                          json_string_value(json_object_get(in, "currency")),
                          json_string_value(json_object_get(in, "base_fee")));
    if (!r) return REPO_ERR;
    if (PQntuples(r) == 0) {
        PQclear(r);
        repo_set_field(f, "code", "a plan with this code already exists");
        return REPO_CONFLICT;
    }
    char pid[24];
    snprintf(pid, sizeof pid, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    const json_t *charges = json_object_get(in, "charges");
    size_t i;
    const json_t *ch;
    json_array_foreach(charges, i, ch) {
        char pos[24];
        snprintf(pos, sizeof pos, "%zu", i);
        char *tiers = json_text(json_object_get(ch, "tiers"));
        const json_t *tv = json_object_get(ch, "tiers");
        if (tv && !json_is_null(tv) && !tiers) return repo_oom(e);
        r = DB_EXEC(
            d, e,
            "INSERT INTO plan_charges (org_id, plan_id, metric_id, position, model, unit_price, "
            " included_units, package_size, minimum, tiers) "
            "SELECT $1, $2, m.id, $4, $5, $6::numeric, COALESCE($7::numeric, 0), $8::numeric, "
            " $9::numeric, $10::jsonb FROM metrics m WHERE m.org_id = $1 AND m.code = $3 "
            "RETURNING id",
            org, pid, json_string_value(json_object_get(ch, "metric")), pos,
            json_string_value(json_object_get(ch, "model")),
            json_string_value(json_object_get(ch, "unit_price")),
            json_string_value(json_object_get(ch, "included_units")),
            json_string_value(json_object_get(ch, "package_size")),
            json_string_value(json_object_get(ch, "minimum")), tiers);
        free(tiers);
        if (!r) return REPO_ERR;
        int n = PQntuples(r);
        PQclear(r);
        if (n == 0) {
            char field[64];
            snprintf(field, sizeof field, "charges[%zu].metric", i);
            repo_set_field(f, field, "no metric with this code in your organization");
            return REPO_INVALID;
        }
    }
    return repo_plan_get(d, e, org_id, json_string_value(json_object_get(in, "code")), out);
}

int repo_plan_get(db *d, db_err *e, long long org_id, const char *code, json_t **out) {
    char org[24];
    org_text(org_id, org);
    PGresult *r = DB_EXEC(d, e, PLAN_SELECT "WHERE p.org_id = $1 AND p.code = $2", org, code);
    return repo_one(r, e, out);
}

int repo_plans_list(db *d, db_err *e, long long org_id, int limit, const char *after, json_t **rows,
                    char **next) {
    char org[24], lim[16];
    org_text(org_id, org);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    PGresult *r = DB_EXEC(d, e,
                          PLAN_SELECT "WHERE ($1::bigint = 0 OR p.org_id = $1) "
                                      "AND ($2::bigint IS NULL OR p.id > $2::bigint) "
                                      "ORDER BY p.id LIMIT $3",
                          org, after, lim);
    return repo_page(r, e, limit, "id", rows, next);
}

/* ---- id maps ---------------------------------------------------------- */

static int id_map(PGresult *r, db_err *e, json_t **map) {
    if (!r) return REPO_ERR;
    json_t *m = json_object();
    for (int i = 0; m && i < PQntuples(r); i++) {
        if (json_object_set_new(m, PQgetvalue(r, i, 0),
                                json_integer(strtoll(PQgetvalue(r, i, 1), NULL, 10)))) {
            json_decref(m);
            m = NULL;
        }
    }
    PQclear(r);
    if (!m) return repo_oom(e);
    *map = m;
    return REPO_OK;
}

int repo_customer_ids(db *d, db_err *e, long long org_id, json_t **map) {
    char org[24];
    org_text(org_id, org);
    return id_map(DB_EXEC(d, e, "SELECT external_id, id FROM customers WHERE org_id = $1", org),
                  e, map);
}

int repo_metric_ids(db *d, db_err *e, long long org_id, json_t **map) {
    char org[24];
    org_text(org_id, org);
    return id_map(DB_EXEC(d, e, "SELECT code, id FROM metrics WHERE org_id = $1", org), e, map);
}
