/* routes_invoices.c — PLACEHOLDER while the invoice lifecycle is being built
 * (issue 5): every route answers 501.  Replaced by the real handlers. */
#include "fmacros.h"
#include "routes.h"

void h_invoices_list(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_invoices_get(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_invoices_actions(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_invoices_submit(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_invoices_approve(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_invoices_reject(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_invoices_issue(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_invoices_void(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_invoices_mark_paid(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_disputes_create(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_disputes_list(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_disputes_get(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_disputes_message(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_disputes_resolve(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
