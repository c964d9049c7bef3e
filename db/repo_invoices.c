/* repo_invoices.c — PLACEHOLDER (issue 5): invoice lifecycle repository. */
#include "fmacros.h"
typedef int ml_repo_invoices_placeholder;
