/* repo.h — repositories: the SQL of every entity, scoped by organization
 * (prefix repo_).
 *
 * DESIGN — Every function that reads or writes tenant data takes the caller's
 * org_id and filters on it, so one organization can never see or touch
 * another's rows: a row of another organization is simply "not found".  Input
 * has been validated by the caller (types, lengths, decimal syntax); the
 * database constraints are the second line of defence.  Results are jansson
 * objects shaped as the API returns them (decimals as strings, times as
 * RFC 3339 "Z"), built by db_row_json from column aliases.
 *
 * Return codes: REPO_OK, REPO_NOT_FOUND, REPO_CONFLICT (unique key taken; the
 * field is named in *field), REPO_INVALID (a reference such as a plan or
 * metric code does not exist; *field names it), or REPO_ERR with e filled.
 */
#ifndef ML_REPO_H
#define ML_REPO_H
#include "db.h"
#include <jansson.h>

enum { REPO_OK = 0, REPO_NOT_FOUND = 1, REPO_CONFLICT = 2, REPO_INVALID = 3, REPO_ERR = -1 };

/* Out-parameter naming the offending field for REPO_CONFLICT / REPO_INVALID. */
typedef struct repo_field {
    char field[96];
    char message[160];
} repo_field;

/* ---- organizations ---- */
/* Creates an organization with a unique slug derived from name (a suffix is
 * added on collision).  *org_id and *org (new reference) on success. */
int repo_org_create(db *d, db_err *e, const char *name, long long *org_id, json_t **org);
int repo_org_by_slug(db *d, db_err *e, const char *slug, long long *org_id);
int repo_org_get(db *d, db_err *e, long long org_id, json_t **org);
/* The organization's PDF template override (organizations.template): *tpl a
 * new reference, JSON null when none.  REPO_OK / REPO_NOT_FOUND / REPO_ERR. */
int repo_org_template_get(db *d, db_err *e, long long org_id, json_t **tpl);
/* Stores an override (JSON object text, already validated) or NULL to drop it. */
int repo_org_template_set(db *d, db_err *e, long long org_id, const char *tpl_json);
int repo_orgs_list(db *d, db_err *e, int limit, const char *after_slug, json_t **rows, char **next);

/* ---- users and sessions ---- */
int repo_user_create(db *d, db_err *e, long long org_id /* 0 = admin */, const char *email,
                     const char *name, const char *pwhash, const char *role, json_t **user,
                     repo_field *f);
/* For login: id, password hash, role. */
int repo_user_auth(db *d, db_err *e, const char *email, char id[40], char *pwhash, size_t pwcap);
int repo_user_get(db *d, db_err *e, const char *user_id, json_t **user);
int repo_users_list(db *d, db_err *e, long long org_id, int limit, const char *after_email,
                    json_t **rows, char **next);

int repo_session_create(db *d, db_err *e, const char *token_hash, const char *user_id,
                        int ttl_hours, const char *user_agent, const char *address,
                        char expires_at[40]);
int repo_session_delete(db *d, db_err *e, const char *token_hash);
/* Deletes expired sessions (lookups already refuse them); how many, or -1. */
long long repo_sessions_purge(db *d, db_err *e);

typedef struct repo_principal {
    char id[40];      /* user or API key id */
    char role[16];    /* user role; "" for API keys */
    long long org_id; /* 0 for platform admins */
    char org_slug[64];
    int scope_read, scope_usage_write; /* API keys */
} repo_principal;
int repo_session_lookup(db *d, db_err *e, const char *token_hash, repo_principal *p);
int repo_apikey_lookup(db *d, db_err *e, const char *key_hash, repo_principal *p);

/* ---- API keys ---- */
int repo_apikey_create(db *d, db_err *e, long long org_id, const char *name, const char *key_hash,
                       const char *prefix, const char *scopes_pg, const char *created_by,
                       json_t **key);
int repo_apikeys_list(db *d, db_err *e, long long org_id, json_t **rows);
int repo_apikey_revoke(db *d, db_err *e, long long org_id, const char *id);

/* ---- customers ---- */
/* in: validated object (external_id, name, email, currency, plan, billing_address,
 * require_approval). */
int repo_customer_create(db *d, db_err *e, long long org_id, const json_t *in, json_t **out,
                         repo_field *f);
int repo_customer_get(db *d, db_err *e, long long org_id, const char *external_id, json_t **out);
/* q: LIKE pattern matched against name, external_id and email (NULL = all);
 * after = id of the last row of the previous page. */
int repo_customers_list(db *d, db_err *e, long long org_id, const char *q, int limit,
                        const char *after, json_t **rows, char **next);
int repo_customer_update(db *d, db_err *e, long long org_id, const char *external_id,
                         const json_t *in, json_t **out, repo_field *f);

/* ---- metrics ---- */
int repo_metric_create(db *d, db_err *e, long long org_id, const json_t *in, json_t **out,
                       repo_field *f);
int repo_metric_get(db *d, db_err *e, long long org_id, const char *code, json_t **out);
int repo_metrics_list(db *d, db_err *e, long long org_id, int limit, const char *after,
                      json_t **rows, char **next);

/* Maps of the organization's customers (external_id -> id) and metrics
 * (code -> id), as JSON objects of integers: the lookups usage ingestion
 * needs. */
int repo_customer_ids(db *d, db_err *e, long long org_id, json_t **map);
int repo_metric_ids(db *d, db_err *e, long long org_id, json_t **map);

/* ---- plans ---- */
/* in: validated plan with charges; tiers already normalized.  The caller wraps
 * it in a transaction (db_begin / db_commit) so a failing charge leaves no plan. */
int repo_plan_create(db *d, db_err *e, long long org_id, const json_t *in, json_t **out,
                     repo_field *f);
int repo_plan_get(db *d, db_err *e, long long org_id, const char *code, json_t **out);
int repo_plans_list(db *d, db_err *e, long long org_id, int limit, const char *after, json_t **rows,
                    char **next);

/* ---- usage ingest lookups (repo_usage.c) ---- */
/* ids[i] = customers.id of external id ext[i] in the org, 0 if unknown. */
int repo_customer_refs(db *d, db_err *e, long long org_id, const char *const *ext, size_t n,
                       long long *ids);
typedef struct repo_metric_ref {
    long long id; /* 0 = unknown */
    char aggregation[16];
    char unique_property[129]; /* "" unless aggregation is unique_count */
} repo_metric_ref;
int repo_metric_refs(db *d, db_err *e, long long org_id, const char *const *codes, size_t n,
                     repo_metric_ref *out);

/* ---- usage imports (repo_imports.c) ---- */
typedef struct repo_import_new {
    const char *id;         /* uuid we generated */
    const char *created_by; /* user or API key id */
    const char *filename;   /* client's file name (valid UTF-8, <= 255 bytes) or NULL */
    const char *file_path;  /* relative to BILLING_STORAGE_DIR */
    long long size_bytes;
    const char *sha256;
    const char *on_error; /* "abort" | "skip" */
} repo_import_new;
int repo_import_create(db *d, db_err *e, long long org_id, const repo_import_new *in);
int repo_import_set_job(db *d, db_err *e, long long org_id, const char *id, const char *job_id);
int repo_import_delete(db *d, db_err *e, long long org_id, const char *id);
/* org_id 0 = any organization (admins). */
int repo_import_get(db *d, db_err *e, long long org_id, const char *id, json_t **out);
/* Newest first; after = the previous page's cursor (REPO_INVALID if malformed). */
int repo_imports_list(db *d, db_err *e, long long org_id, int limit, const char *after,
                      json_t **rows, char **next);

/* ---- invoice generation requests and billing runs (repo_billing.c) ---- */
/* The customer with external_id in org: its id and whether it has a plan.
 * REPO_OK / REPO_NOT_FOUND / REPO_ERR. */
int repo_billing_customer(db *d, db_err *e, long long org_id, const char *external_id,
                          long long *id, bool *has_plan);
/* A billing run of org for [period_start, period_end): an unfinished run of
 * the same period is returned instead of a new one (*existing).  id[40] out. */
int repo_billing_run_create(db *d, db_err *e, long long org_id, const char *period_start,
                            const char *period_end, const char *created_by, char id[40],
                            bool *existing);
int repo_billing_run_set_job(db *d, db_err *e, long long org_id, const char *id,
                             const char *job_id);
/* A queued run whose job could not be enqueued. */
int repo_billing_run_delete(db *d, db_err *e, long long org_id, const char *id);
/* org_id 0 = any organization (admins). */
int repo_billing_run_get(db *d, db_err *e, long long org_id, const char *id, json_t **out);
int repo_billing_runs_list(db *d, db_err *e, long long org_id, int limit, const char *after,
                           json_t **rows, char **next);
/* "<µs since epoch>:<uuid>" cursors of (created_at, id) keyset listings. */
bool repo_split_cursor(const char *c, char us[24], char id[40]);

#endif
