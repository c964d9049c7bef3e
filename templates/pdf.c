/* pdf.c — libharu renderer entry points (see pdf.h). */
#include "fmacros.h"
#include "pdf.h"
#include <hpdf.h>

const char *pdf_libharu_version(void) { return HPDF_GetVersion(); }
