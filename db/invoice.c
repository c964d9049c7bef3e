/* invoice.c — PLACEHOLDER (issue 5): invoice generation. */
#include "fmacros.h"
typedef int ml_invoice_placeholder;
