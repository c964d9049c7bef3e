/* routes_billing.c — PLACEHOLDER while invoice generation is being built
 * (issue 5): every route answers 501. */
#include "fmacros.h"
#include "routes.h"

void h_invoices_generate(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
void h_billing_runs_create(api_req *r) { api_err(r, 501, "not_implemented", "not implemented yet"); }
