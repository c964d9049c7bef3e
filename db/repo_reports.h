/* repo_reports.h — report rows as the API reads and requests them (prefix
 * repo_rep_; migration 0008).
 *
 * DESIGN — Same rules as repo.h: every function takes the caller's org_id
 * and filters on it; org_id 0 means any organization (platform admins acting
 * without ?org=).  Ids are uuids; a malformed id is "not found".
 *
 * A request is keyed by request_key ("invoice:<invoice id>:<version>",
 * "usage:<customer id>:<from>:<to>" with canonical RFC 3339 bounds), unique
 * among unfinished reports (a partial unique index): creating a report whose
 * key is queued or running returns that one (*existing).  The worker
 * (worker/report.c) owns a row once its job runs: status, progress, file.
 *
 * repo_rep_issue_insert is the issue hook: repo_inv_transition calls it
 * inside the issuing transaction, so an issued invoice always has its
 * report row; billing-api enqueues the job after COMMIT
 * (repo_rep_invoice_queued) and GET /v1/invoices/{id}/pdf re-enqueues a
 * queued one whose job went missing.
 */
#ifndef ML_REPO_REPORTS_H
#define ML_REPO_REPORTS_H
#include "repo.h"
#include <stdbool.h>

typedef struct repo_rep_new {
    const char *kind;       /* "invoice" | "usage" */
    const char *invoice_id; /* invoice: a uuid (else REPO_INVALID, field invoice_id) */
    const char *customer;   /* usage: external id (else REPO_INVALID, field customer_id) */
    const char *from, *to;  /* usage: canonical RFC 3339 ("2026-10-01T00:00:00Z") */
    const char *created_by; /* user or API key id, or "issue" */
} repo_rep_new;

/* Inserts a queued report, or finds the unfinished one with the same
 * request (*existing).  id[40] out.  REPO_OK / REPO_INVALID (f names the
 * field) / REPO_ERR.  org_id must be a real organization. */
int repo_rep_create(db *d, db_err *e, long long org_id, const repo_rep_new *in, char id[40],
                    bool *existing, repo_field *f);
int repo_rep_set_job(db *d, db_err *e, long long org_id, const char *id, const char *job_id);

/* The report as the API shows it (see routes_reports.c). */
int repo_rep_get(db *d, db_err *e, long long org_id, const char *id, json_t **out);

typedef struct repo_rep_filter {
    const char *status;   /* or NULL */
    const char *kind;     /* or NULL */
    const char *customer; /* external id (usage reports and invoices' customers), or NULL */
} repo_rep_filter;
/* Newest first; after = the previous page's cursor (REPO_INVALID if malformed). */
int repo_rep_list(db *d, db_err *e, long long org_id, const repo_rep_filter *f, int limit,
                  const char *after, json_t **rows, char **next);

/* What a download needs. */
typedef struct repo_rep_file {
    char id[40];
    long long org_id;
    char status[16];
    char file_path[256]; /* relative to BILLING_STORAGE_DIR ("" unless succeeded) */
    char filename[128];
    char sha256[65];
    long long size_bytes;
    char job_id[32]; /* "" if none recorded */
} repo_rep_file;
int repo_rep_file_get(db *d, db_err *e, long long org_id, const char *id, repo_rep_file *out);

/* An unfinished report whose job died (the worker could not record it, e.g.
 * its last attempt timed out) → failed with error.  REPO_OK (moved),
 * REPO_NOT_FOUND (not unfinished any more), REPO_ERR. */
int repo_rep_fail_unfinished(db *d, db_err *e, long long org_id, const char *id, const char *error);

/* ---- invoices ---- */
/* Issue hook, inside the issuing transaction (the invoice row is locked and
 * already issued): inserts the invoice's report request.  0 / -1 (e). */
int repo_rep_issue_insert(db *d, db_err *e, const char *invoice_id);

/* The newest queued report of invoice id without a recorded job — what the
 * issue hook inserted — (id, its org); REPO_NOT_FOUND when none. */
int repo_rep_invoice_queued(db *d, db_err *e, long long org_id, const char *invoice_id, char id[40],
                            long long *report_org);

/* What GET /v1/invoices/{id}/pdf decides on. */
typedef struct repo_rep_pdf {
    long long org_id;    /* the invoice's */
    char status[24];     /* the invoice's */
    bool issued;         /* it has a number */
    repo_rep_file ready; /* newest succeeded report with a number (id "" = none) */
    /* the newest report requested since the issue (id "" = none) */
    char last_id[40];
    char last_status[16];
    char last_error[256];
    bool last_has_job;
} repo_rep_pdf;
int repo_rep_invoice_pdf(db *d, db_err *e, long long org_id, const char *invoice_id,
                         repo_rep_pdf *out);

#endif
