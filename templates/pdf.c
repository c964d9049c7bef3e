/* pdf.c — libharu renderer entry points (see pdf.h).  Stubs until the
 * renderer lands: every entry point fails with "not implemented yet". */
#include "fmacros.h"
#include "pdf.h"
#include <hpdf.h>

const char *pdf_libharu_version(void) { return HPDF_GetVersion(); }

static int pdf_stub(char *err, size_t errlen)
{
    if (err && errlen) snprintf(err, errlen, "pdf: renderer not implemented yet");
    return -1;
}

int pdf_template_load(const char *json, size_t len, const char *override_json,
                      size_t override_len, pdf_template **out, char *err, size_t errlen)
{
    ML_UNUSED(json), ML_UNUSED(len), ML_UNUSED(override_json), ML_UNUSED(override_len);
    if (out) *out = NULL;
    return pdf_stub(err, errlen);
}
void pdf_template_free(pdf_template *t) { ML_UNUSED(t); }
const char *pdf_template_default(size_t *len)
{
    if (len) *len = 2;
    return "{}";
}
int pdf_template_check_override(const char *override_json, size_t override_len, char *err,
                                size_t errlen)
{
    ML_UNUSED(override_json), ML_UNUSED(override_len);
    return pdf_stub(err, errlen);
}
int pdf_render_invoice(const pdf_template *t, const pdf_invoice *inv, buf *out, char *err,
                       size_t errlen)
{
    ML_UNUSED(t), ML_UNUSED(inv), ML_UNUSED(out);
    return pdf_stub(err, errlen);
}
int pdf_render_usage(const pdf_template *t, const pdf_usage *u, buf *out, char *err,
                     size_t errlen)
{
    ML_UNUSED(t), ML_UNUSED(u), ML_UNUSED(out);
    return pdf_stub(err, errlen);
}
