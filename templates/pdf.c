/* pdf.c — what the renderer says about itself (see pdf.h for the API and
 * pdf_int.h for how the modules split the work). */
#include "fmacros.h"
#include "pdf.h"
#include <hpdf.h>

const char *pdf_libharu_version(void) { return HPDF_GetVersion(); }
