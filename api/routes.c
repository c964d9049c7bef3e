/* routes.c — the route table: every endpoint of billing-api in one place.
 *
 * DESIGN — {method, pattern, handler, roles, API-key scopes, max body, flags,
 * name}.  server.c matches in table order (first match wins, so literal paths
 * come before parameterized ones) and enforces body limits and content types;
 * auth.c enforces roles, scopes, the organization and CSRF.  Handlers assume
 * all of that has passed.  `name` labels logs and /metrics.
 */
#include "fmacros.h"
#include "routes.h"

#define KB       1024LL
#define NOBODY   0
#define JSONBODY (-1) /* BILLING_MAX_BODY */

const api_route api_routes[] = {
    /* operations */
    {"GET", "/healthz", h_healthz, 0, 0, NOBODY, RT_INLINE | RT_PUBLIC, "healthz"},
    {"GET", "/readyz", h_readyz, 0, 0, NOBODY, RT_INLINE | RT_PUBLIC, "readyz"},
    {"GET", "/metrics", h_metrics_prom, 0, 0, NOBODY, RT_INLINE | RT_PUBLIC, "metrics"},
    {"GET", "/v1/openapi.json", h_openapi, 0, 0, NOBODY, RT_INLINE | RT_PUBLIC, "openapi"},

    /* accounts */
    {"POST", "/v1/signup", h_signup, 0, 0, 16 * KB, RT_JSON | RT_PUBLIC, "signup"},
    {"POST", "/v1/sessions", h_login, 0, 0, 16 * KB, RT_JSON | RT_PUBLIC, "login"},
    {"DELETE", "/v1/sessions/current", h_logout, ROLES_ALL, 0, NOBODY, 0, "logout"},
    {"GET", "/v1/me", h_me, ROLES_ALL, SCOPE_READ | SCOPE_USAGE_WRITE, NOBODY, 0, "me"},
    {"POST", "/v1/users", h_users_create, ROLES_OWNER, 0, 16 * KB, RT_JSON | RT_ORG,
     "users_create"},
    {"GET", "/v1/users", h_users_list, ROLES_OWNER, 0, NOBODY, RT_ORG | RT_ALL_ORGS, "users_list"},
    {"POST", "/v1/api-keys", h_keys_create, ROLES_OWNER, 0, 16 * KB, RT_JSON | RT_ORG,
     "api_keys_create"},
    {"GET", "/v1/api-keys", h_keys_list, ROLES_OWNER, 0, NOBODY, RT_ORG, "api_keys_list"},
    {"DELETE", "/v1/api-keys/{id}", h_keys_delete, ROLES_OWNER, 0, NOBODY, RT_ORG,
     "api_keys_delete"},
    {"GET", "/v1/admin/organizations", h_orgs_list, ROLE_ADMIN, 0, NOBODY, 0, "orgs_list"},
    {"GET", "/v1/organization/template", h_org_template_get, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG,
     "org_template_get"},
    {"PUT", "/v1/organization/template", h_org_template_put, ROLES_OWNER, 0, 640 * KB,
     RT_JSON | RT_ORG, "org_template_put"},

    /* customers, metrics, plans */
    {"POST", "/v1/customers", h_customers_create, ROLES_WRITE_CATALOG, 0, 64 * KB, RT_JSON | RT_ORG,
     "customers_create"},
    {"GET", "/v1/customers", h_customers_list, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG | RT_ALL_ORGS,
     "customers_list"},
    {"GET", "/v1/customers/{external_id}", h_customers_get, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG,
     "customers_get"},
    {"PATCH", "/v1/customers/{external_id}", h_customers_update, ROLES_WRITE_CATALOG, 0, 64 * KB,
     RT_JSON | RT_ORG, "customers_update"},
    {"POST", "/v1/metrics", h_metrics_create, ROLES_WRITE_CATALOG, 0, 16 * KB, RT_JSON | RT_ORG,
     "metrics_create"},
    {"GET", "/v1/metrics", h_metrics_list, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG | RT_ALL_ORGS,
     "metrics_list"},
    {"GET", "/v1/metrics/{code}", h_metrics_get, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG,
     "metrics_get"},
    {"POST", "/v1/plans", h_plans_create, ROLES_WRITE_CATALOG, 0, 256 * KB, RT_JSON | RT_ORG,
     "plans_create"},
    {"GET", "/v1/plans", h_plans_list, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG | RT_ALL_ORGS,
     "plans_list"},
    {"GET", "/v1/plans/{code}", h_plans_get, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG, "plans_get"},

    /* usage */
    {"POST", "/v1/usage", h_usage_ingest, ROLES_WRITE_CATALOG, SCOPE_USAGE_WRITE, -1,
     RT_JSON | RT_ORG | RT_FAST, "usage_ingest"},

    /* usage read back (routes_usage_query.c) */
    {"GET", "/v1/usage/aggregate", h_usage_aggregate, ROLES_ALL, SCOPE_READ, NOBODY,
     RT_ORG | RT_ALL_ORGS, "usage_aggregate"},
    {"GET", "/v1/usage", h_usage_list, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG | RT_ALL_ORGS,
     "usage_list"},

    /* CSV imports (routes_imports.c); the body is streamed to disk by upload.c */
    {"POST", "/v1/usage/imports", h_imports_create, ROLES_WRITE_CATALOG, SCOPE_USAGE_WRITE,
     JSONBODY, RT_ORG | RT_UPLOAD, "imports_create"},
    {"GET", "/v1/usage/imports", h_imports_list, ROLES_ALL, SCOPE_READ, NOBODY,
     RT_ORG | RT_ALL_ORGS, "imports_list"},
    {"GET", "/v1/usage/imports/{id}", h_imports_get, ROLES_ALL, SCOPE_READ | SCOPE_USAGE_WRITE,
     NOBODY, RT_ORG | RT_ALL_ORGS, "imports_get"},

    /* invoice generation (routes_billing.c): jobs that create or refresh drafts */
    {"POST", "/v1/invoices", h_invoices_generate, ROLES_INVOICE_FINANCE, 0, 16 * KB,
     RT_JSON | RT_ORG, "invoices_generate"},
    {"POST", "/v1/billing-runs", h_billing_runs_create, ROLES_INVOICE_FINANCE, 0, 16 * KB,
     RT_JSON | RT_ORG, "billing_runs_create"},
    {"GET", "/v1/billing-runs", h_billing_runs_list, ROLES_ALL, SCOPE_READ, NOBODY,
     RT_ORG | RT_ALL_ORGS, "billing_runs_list"},
    {"GET", "/v1/billing-runs/{id}", h_billing_runs_get, ROLES_ALL, SCOPE_READ, NOBODY,
     RT_ORG | RT_ALL_ORGS, "billing_runs_get"},

    /* invoices: read, lifecycle, audit trail, disputes (routes_invoices.c) */
    {"GET", "/v1/invoices", h_invoices_list, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG | RT_ALL_ORGS,
     "invoices_list"},
    {"GET", "/v1/invoices/{id}", h_invoices_get, ROLES_ALL, SCOPE_READ, NOBODY,
     RT_ORG | RT_ALL_ORGS, "invoices_get"},
    {"GET", "/v1/invoices/{id}/actions", h_invoices_actions, ROLES_ALL, SCOPE_READ, NOBODY,
     RT_ORG | RT_ALL_ORGS, "invoices_actions"},
    {"POST", "/v1/invoices/{id}/submit", h_invoices_submit, ROLES_INVOICE_FINANCE, 0, 16 * KB,
     RT_JSON | RT_ORG | RT_ALL_ORGS, "invoices_submit"},
    {"POST", "/v1/invoices/{id}/approve", h_invoices_approve, ROLES_INVOICE_APPROVE, 0, 16 * KB,
     RT_JSON | RT_ORG | RT_ALL_ORGS, "invoices_approve"},
    {"POST", "/v1/invoices/{id}/reject", h_invoices_reject, ROLES_INVOICE_APPROVE, 0, 16 * KB,
     RT_JSON | RT_ORG | RT_ALL_ORGS, "invoices_reject"},
    {"POST", "/v1/invoices/{id}/issue", h_invoices_issue, ROLES_INVOICE_FINANCE, 0, 16 * KB,
     RT_JSON | RT_ORG | RT_ALL_ORGS, "invoices_issue"},
    {"POST", "/v1/invoices/{id}/void", h_invoices_void, ROLES_INVOICE_FINANCE, 0, 16 * KB,
     RT_JSON | RT_ORG | RT_ALL_ORGS, "invoices_void"},
    {"POST", "/v1/invoices/{id}/mark-paid", h_invoices_mark_paid, ROLES_INVOICE_FINANCE, 0,
     16 * KB, RT_JSON | RT_ORG | RT_ALL_ORGS, "invoices_mark_paid"},
    {"POST", "/v1/invoices/{id}/disputes", h_disputes_create, ROLES_ALL, 0, 64 * KB,
     RT_JSON | RT_ORG | RT_ALL_ORGS, "disputes_create"},
    {"GET", "/v1/disputes", h_disputes_list, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG | RT_ALL_ORGS,
     "disputes_list"},
    {"GET", "/v1/disputes/{id}", h_disputes_get, ROLES_ALL, SCOPE_READ, NOBODY,
     RT_ORG | RT_ALL_ORGS, "disputes_get"},
    {"POST", "/v1/disputes/{id}/messages", h_disputes_message, ROLES_ALL, 0, 64 * KB,
     RT_JSON | RT_ORG | RT_ALL_ORGS, "disputes_message"},
    {"POST", "/v1/disputes/{id}/resolve", h_disputes_resolve, ROLES_ALL, 0, 16 * KB,
     RT_JSON | RT_ORG | RT_ALL_ORGS, "disputes_resolve"},

    /* PDF reports (routes_reports.c): every role requests and reads, read keys read */
    {"POST", "/v1/reports", h_reports_create, ROLES_ALL, 0, 16 * KB, RT_JSON | RT_ORG,
     "reports_create"},
    {"GET", "/v1/reports", h_reports_list, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG | RT_ALL_ORGS,
     "reports_list"},
    {"GET", "/v1/reports/{id}", h_reports_get, ROLES_ALL, SCOPE_READ, NOBODY, RT_ORG | RT_ALL_ORGS,
     "reports_get"},
    {"GET", "/v1/reports/{id}/download", h_reports_download, ROLES_ALL, SCOPE_READ, NOBODY,
     RT_ORG | RT_ALL_ORGS, "reports_download"},
    {"GET", "/v1/invoices/{id}/pdf", h_invoices_pdf, ROLES_ALL, SCOPE_READ, NOBODY,
     RT_ORG | RT_ALL_ORGS, "invoices_pdf"},

    /* jobs (the queue in Redis) */
    {"GET", "/v1/jobs/{id}", h_jobs_get, ROLES_ALL, SCOPE_READ | SCOPE_USAGE_WRITE, NOBODY,
     RT_ORG | RT_ALL_ORGS, "jobs_get"},
    {"GET", "/v1/admin/queues", h_admin_queues, ROLE_ADMIN, 0, NOBODY, 0, "admin_queues"},
    {"POST", "/v1/admin/jobs/{id}/retry", h_admin_job_retry, ROLE_ADMIN, 0, NOBODY, 0,
     "admin_job_retry"},

    /* web UI (static, embedded) */
    {"GET", "/", h_ui, 0, 0, NOBODY, RT_INLINE | RT_PUBLIC, "ui"},
    {"GET", "/ui/{*}", h_ui, 0, 0, NOBODY, RT_INLINE | RT_PUBLIC, "ui"},
};

const size_t api_nroutes = ML_ARRAY_LEN(api_routes);
