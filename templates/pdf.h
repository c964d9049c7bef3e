/* pdf.h — the libharu renderer (prefix pdf_).  A model in, PDF bytes out; it
 * never queries.  Filled in by the PDF issue; today it only reports the
 * libharu version it was built against, so the worker links it. */
#ifndef ML_PDF_H
#define ML_PDF_H
const char *pdf_libharu_version(void);
#endif
