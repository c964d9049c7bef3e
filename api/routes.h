/* routes.h — handler functions named in the route table (routes.c). */
#ifndef ML_ROUTES_H
#define ML_ROUTES_H
#include "api.h"
#include "repo.h"

/* ops (routes_ops.c) */
void h_healthz(api_req *r);
void h_readyz(api_req *r);
void h_metrics_prom(api_req *r);
void h_openapi(api_req *r);
void h_ui(api_req *r);

/* accounts (routes_auth.c) */
void h_signup(api_req *r);
void h_login(api_req *r);
void h_logout(api_req *r);
void h_me(api_req *r);
void h_users_create(api_req *r);
void h_users_list(api_req *r);
void h_keys_create(api_req *r);
void h_keys_list(api_req *r);
void h_keys_delete(api_req *r);
void h_orgs_list(api_req *r);

/* the organization's PDF template override (routes_org.c) */
void h_org_template_get(api_req *r);
void h_org_template_put(api_req *r);

/* catalog (routes_catalog.c) */
void h_customers_create(api_req *r);
void h_customers_list(api_req *r);
void h_customers_get(api_req *r);
void h_customers_update(api_req *r);
void h_metrics_create(api_req *r);
void h_metrics_list(api_req *r);
void h_metrics_get(api_req *r);
void h_plans_create(api_req *r);
void h_plans_list(api_req *r);
void h_plans_get(api_req *r);

/* usage ingest (routes_usage.c) */
void h_usage_ingest(api_req *r);

/* usage read back (routes_usage_query.c) */
void h_usage_list(api_req *r);
void h_usage_aggregate(api_req *r);

/* CSV usage imports (routes_imports.c) */
void h_imports_create(api_req *r);
void h_imports_get(api_req *r);
void h_imports_list(api_req *r);

/* invoice generation jobs (routes_billing.c) */
void h_invoices_generate(api_req *r);
void h_billing_runs_create(api_req *r);
void h_billing_runs_list(api_req *r);
void h_billing_runs_get(api_req *r);

/* invoices, their lifecycle and disputes (routes_invoices.c) */
void h_invoices_list(api_req *r);
void h_invoices_get(api_req *r);
void h_invoices_actions(api_req *r);
void h_invoices_submit(api_req *r);
void h_invoices_approve(api_req *r);
void h_invoices_reject(api_req *r);
void h_invoices_issue(api_req *r);
void h_invoices_void(api_req *r);
void h_invoices_mark_paid(api_req *r);
void h_disputes_create(api_req *r);
void h_disputes_list(api_req *r);
void h_disputes_get(api_req *r);
void h_disputes_message(api_req *r);
void h_disputes_resolve(api_req *r);

/* PDF reports and invoice PDFs (routes_reports.c) */
void h_reports_create(api_req *r);
void h_reports_get(api_req *r);
void h_reports_list(api_req *r);
void h_reports_download(api_req *r);
void h_invoices_pdf(api_req *r);
/* After a successful issue of invoice_id: enqueues the render of the report
 * row the issuing transaction inserted (failures are logged; reading the
 * invoice's PDF heals them). */
void api_reports_issued(api_req *r, const char *invoice_id);

/* jobs (routes_jobs.c) */
void h_jobs_get(api_req *r);
void h_admin_queues(api_req *r);
void h_admin_job_retry(api_req *r);

/* shared helpers (routes_auth.c) */
bool api_valid_email(const char *s);
/* Maps a repository result code to the API reply (404/409/422/500/503). */
void api_reply_repo(api_req *r, int rc, const db_err *e, const repo_field *f, const char *what);

#endif
