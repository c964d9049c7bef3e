/* repo_accounts.c — organizations, users, sessions and API keys.
 *
 * DESIGN — See repo.h.  Tokens arrive here already hashed; this file never
 * sees a secret.  Listing functions page by a unique, ordered key (slug,
 * email) and fetch limit+1 rows to know whether a next page exists.
 */
#include "fmacros.h"
#include "repo.h"
#include "repo_util.h"
#include "rnd.h"
#include <ctype.h>
#include <stdlib.h>

#define ORG_COLS                                                                                   \
    "o.id, o.slug, o.name, o.invoice_prefix, o.currency, trim_scale(o.tax_rate)::text AS "         \
    "tax_rate, o.created_at, o.updated_at"
#define USER_COLS                                                                                  \
    "u.id, u.email, u.name, u.role, (SELECT slug FROM organizations WHERE id = u.org_id) AS "      \
    "organization, u.created_at, u.updated_at"

/* "Acme Trucks, Inc." -> "acme-trucks-inc" (at most 40 chars, never empty). */
static void slugify(const char *name, char out[48]) {
    size_t n = 0;
    bool dash = false;
    for (const unsigned char *p = (const unsigned char *)name; *p && n < 40; p++) {
        if (isalnum(*p) && *p < 128) {
            if (dash && n) out[n++] = '-';
            dash = false;
            out[n++] = (char)tolower(*p);
        } else {
            dash = true;
        }
    }
    while (n && out[n - 1] == '-') n--;
    if (n == 0) {
        memcpy(out, "org", 3);
        n = 3;
    }
    out[n] = '\0';
}

int repo_org_create(db *d, db_err *e, const char *name, long long *org_id, json_t **org) {
    char base[48], slug[64];
    slugify(name, base);
    for (int attempt = 0; attempt < 8; attempt++) {
        if (attempt == 0) {
            snprintf(slug, sizeof slug, "%s", base);
        } else {
            char rnd[33];
            rnd_hex16(rnd);
            snprintf(slug, sizeof slug, "%s-%.6s", base, rnd);
        }
        PGresult *r = DB_EXEC(d, e,
                              "INSERT INTO organizations AS o (slug, name) VALUES ($1, $2) "
                              "ON CONFLICT (slug) DO NOTHING RETURNING " ORG_COLS,
                              slug, name);
        if (!r) return REPO_ERR;
        if (PQntuples(r) == 1) {
            *org_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            *org = db_row_json(r, 0);
            PQclear(r);
            return *org ? REPO_OK : repo_oom(e);
        }
        PQclear(r);
    }
    snprintf(e->msg, sizeof e->msg, "could not find a free organization slug");
    return REPO_ERR;
}

int repo_org_by_slug(db *d, db_err *e, const char *slug, long long *org_id) {
    PGresult *r = DB_EXEC(d, e, "SELECT id FROM organizations WHERE slug = $1", slug);
    if (!r) return REPO_ERR;
    int rc = REPO_NOT_FOUND;
    if (PQntuples(r) == 1) {
        *org_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        rc = REPO_OK;
    }
    PQclear(r);
    return rc;
}

int repo_org_get(db *d, db_err *e, long long org_id, json_t **org) {
    char id[24];
    snprintf(id, sizeof id, "%lld", org_id);
    PGresult *r = DB_EXEC(d, e, "SELECT " ORG_COLS " FROM organizations o WHERE o.id = $1", id);
    return repo_one(r, e, org);
}

int repo_org_template_get(db *d, db_err *e, long long org_id, json_t **tpl) {
    char id[24];
    snprintf(id, sizeof id, "%lld", org_id);
    PGresult *r =
        DB_EXEC(d, e, "SELECT template FROM organizations WHERE id = $1", id);
    if (!r) return REPO_ERR;
    int rc = REPO_NOT_FOUND;
    *tpl = NULL;
    if (PQntuples(r) == 1) {
        json_t *row = db_row_json(r, 0);
        if (!row) {
            PQclear(r);
            return repo_oom(e);
        }
        *tpl = json_incref(json_object_get(row, "template"));
        json_decref(row);
        rc = REPO_OK;
    }
    PQclear(r);
    return rc;
}

int repo_org_template_set(db *d, db_err *e, long long org_id, const char *tpl_json) {
    char id[24];
    snprintf(id, sizeof id, "%lld", org_id);
    PGresult *r = DB_EXEC(d, e,
                          "UPDATE organizations SET template = $2::jsonb WHERE id = $1 RETURNING id",
                          id, tpl_json);
    if (!r) return REPO_ERR;
    int rc = PQntuples(r) == 1 ? REPO_OK : REPO_NOT_FOUND;
    PQclear(r);
    return rc;
}

int repo_orgs_list(db *d, db_err *e, int limit, const char *after_slug, json_t **rows,
                   char **next) {
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    PGresult *r = DB_EXEC(d, e,
                          "SELECT " ORG_COLS " FROM organizations o "
                          "WHERE ($1::text IS NULL OR o.slug > $1) ORDER BY o.slug LIMIT $2",
                          after_slug, lim);
    return repo_page(r, e, limit, "slug", rows, next);
}

int repo_user_create(db *d, db_err *e, long long org_id, const char *email, const char *name,
                     const char *pwhash, const char *role, json_t **user, repo_field *f) {
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    PGresult *r = DB_EXEC(d, e,
                          "INSERT INTO users AS u (org_id, email, name, password_hash, role) "
                          "VALUES (NULLIF($1::bigint, 0), lower($2), $3, $4, $5) "
                          "ON CONFLICT (email) DO NOTHING RETURNING " USER_COLS,
                          org, email, name, pwhash, role);
    if (!r) return REPO_ERR;
    if (PQntuples(r) == 0) {
        PQclear(r);
        repo_set_field(f, "email", "is already registered");
        return REPO_CONFLICT;
    }
    *user = db_row_json(r, 0);
    PQclear(r);
    return *user ? REPO_OK : repo_oom(e);
}

int repo_user_auth(db *d, db_err *e, const char *email, char id[40], char *pwhash, size_t pwcap) {
    PGresult *r =
        DB_EXEC(d, e, "SELECT id, password_hash FROM users WHERE email = lower($1)", email);
    if (!r) return REPO_ERR;
    int rc = REPO_NOT_FOUND;
    if (PQntuples(r) == 1) {
        snprintf(id, 40, "%s", PQgetvalue(r, 0, 0));
        snprintf(pwhash, pwcap, "%s", PQgetvalue(r, 0, 1));
        rc = REPO_OK;
    }
    PQclear(r);
    return rc;
}

int repo_user_get(db *d, db_err *e, const char *user_id, json_t **user) {
    PGresult *r = DB_EXEC(d, e, "SELECT " USER_COLS " FROM users u WHERE u.id = $1::uuid", user_id);
    return repo_one(r, e, user);
}

int repo_users_list(db *d, db_err *e, long long org_id, int limit, const char *after_email,
                    json_t **rows, char **next) {
    char org[24], lim[16];
    snprintf(org, sizeof org, "%lld", org_id);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    PGresult *r = DB_EXEC(d, e,
                          "SELECT " USER_COLS " FROM users u "
                          "WHERE ($1::bigint = 0 OR u.org_id = $1) "
                          "AND ($2::text IS NULL OR u.email > $2) ORDER BY u.email LIMIT $3",
                          org, after_email, lim);
    return repo_page(r, e, limit, "email", rows, next);
}

int repo_session_create(db *d, db_err *e, const char *token_hash, const char *user_id,
                        int ttl_hours, const char *user_agent, const char *address,
                        char expires_at[40]) {
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", ttl_hours);
    PGresult *r = DB_EXEC(d, e,
                          "INSERT INTO sessions (token_hash, user_id, expires_at, user_agent, "
                          "address) VALUES ($1, $2::uuid, now() + make_interval(hours => $3::int), "
                          "left($4, 300), $5) RETURNING expires_at",
                          token_hash, user_id, ttl, user_agent, address);
    if (!r) return REPO_ERR;
    json_t *row = db_row_json(r, 0);
    PQclear(r);
    if (!row) return repo_oom(e);
    snprintf(expires_at, 40, "%s", json_string_value(json_object_get(row, "expires_at")));
    json_decref(row);
    return REPO_OK;
}

long long repo_sessions_purge(db *d, db_err *e) {
    PGresult *r = DB_EXEC0(d, e, "DELETE FROM sessions WHERE expires_at < now()");
    if (!r) return -1;
    long long n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return n;
}

int repo_session_delete(db *d, db_err *e, const char *token_hash) {
    PGresult *r = DB_EXEC(d, e, "DELETE FROM sessions WHERE token_hash = $1", token_hash);
    if (!r) return REPO_ERR;
    int rc = atoi(PQcmdTuples(r)) > 0 ? REPO_OK : REPO_NOT_FOUND;
    PQclear(r);
    return rc;
}

int repo_session_lookup(db *d, db_err *e, const char *token_hash, repo_principal *p) {
    PGresult *r = DB_EXEC(d, e,
                          "SELECT u.id, u.role, COALESCE(u.org_id, 0), COALESCE(o.slug, '') "
                          "FROM sessions s JOIN users u ON u.id = s.user_id "
                          "LEFT JOIN organizations o ON o.id = u.org_id "
                          "WHERE s.token_hash = $1 AND s.expires_at > now()",
                          token_hash);
    if (!r) return REPO_ERR;
    int rc = REPO_NOT_FOUND;
    if (PQntuples(r) == 1) {
        memset(p, 0, sizeof *p);
        snprintf(p->id, sizeof p->id, "%s", PQgetvalue(r, 0, 0));
        snprintf(p->role, sizeof p->role, "%s", PQgetvalue(r, 0, 1));
        p->org_id = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        snprintf(p->org_slug, sizeof p->org_slug, "%s", PQgetvalue(r, 0, 3));
        rc = REPO_OK;
    }
    PQclear(r);
    return rc;
}

int repo_apikey_lookup(db *d, db_err *e, const char *key_hash, repo_principal *p) {
    /* last_used_at is written at most once a minute per key, not per request */
    PGresult *r = DB_EXEC(d, e,
                          "WITH k AS (SELECT id, org_id, scopes, last_used_at FROM api_keys "
                          "  WHERE key_hash = $1 AND revoked_at IS NULL), "
                          "t AS (UPDATE api_keys SET last_used_at = now() WHERE id = "
                          "  (SELECT id FROM k WHERE last_used_at IS NULL OR "
                          "   last_used_at < now() - interval '1 minute')) "
                          "SELECT k.id, k.org_id, o.slug, 'read' = ANY(k.scopes), "
                          "'usage:write' = ANY(k.scopes) FROM k JOIN organizations o ON "
                          "o.id = k.org_id",
                          key_hash);
    if (!r) return REPO_ERR;
    int rc = REPO_NOT_FOUND;
    if (PQntuples(r) == 1) {
        memset(p, 0, sizeof *p);
        snprintf(p->id, sizeof p->id, "%s", PQgetvalue(r, 0, 0));
        p->org_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        snprintf(p->org_slug, sizeof p->org_slug, "%s", PQgetvalue(r, 0, 2));
        p->scope_read = PQgetvalue(r, 0, 3)[0] == 't';
        p->scope_usage_write = PQgetvalue(r, 0, 4)[0] == 't';
        rc = REPO_OK;
    }
    PQclear(r);
    return rc;
}

#define KEY_COLS                                                                                   \
    "k.id, k.name, k.key_prefix AS prefix, to_jsonb(k.scopes) AS scopes, k.created_at, "           \
    "k.last_used_at, k.revoked_at"

int repo_apikey_create(db *d, db_err *e, long long org_id, const char *name, const char *key_hash,
                       const char *prefix, const char *scopes_pg, const char *created_by,
                       json_t **key) {
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    PGresult *r = DB_EXEC(d, e,
                          "INSERT INTO api_keys AS k (org_id, name, key_hash, key_prefix, "
                          "scopes, created_by) VALUES ($1, $2, $3, $4, $5::text[], $6::uuid) "
                          "RETURNING " KEY_COLS,
                          org, name, key_hash, prefix, scopes_pg, created_by);
    return repo_one(r, e, key);
}

int repo_apikeys_list(db *d, db_err *e, long long org_id, json_t **rows) {
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    PGresult *r = DB_EXEC(d, e,
                          "SELECT " KEY_COLS " FROM api_keys k WHERE k.org_id = $1 "
                          "ORDER BY k.created_at DESC, k.id",
                          org);
    if (!r) return REPO_ERR;
    *rows = db_rows_json(r);
    PQclear(r);
    return *rows ? REPO_OK : repo_oom(e);
}

int repo_apikey_revoke(db *d, db_err *e, long long org_id, const char *id) {
    if (!repo_is_uuid(id)) return REPO_NOT_FOUND;
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    PGresult *r = DB_EXEC(d, e,
                          "UPDATE api_keys SET revoked_at = now() WHERE id = $1::uuid "
                          "AND org_id = $2 AND revoked_at IS NULL",
                          id, org);
    if (!r) return REPO_ERR;
    int rc = atoi(PQcmdTuples(r)) > 0 ? REPO_OK : REPO_NOT_FOUND;
    PQclear(r);
    return rc;
}
