/* routes_org.c — the organization's PDF template override:
 * GET /v1/organization/template and PUT /v1/organization/template.
 *
 * DESIGN — Invoices and usage reports are laid out by the built-in template
 * (templates/invoice.json) merged with the organization's override
 * (organizations.template; see templates/pdf.h for the format and the merge).
 * PUT {template: {...} | null} validates the override exactly as the renderer
 * will load it (pdf_template_check_override) before storing it, so a stored
 * override never fails a render; a bad one is 422 naming the field inside it
 * ("template.page.margins.left").  null removes the override.  GET answers
 * {template, default}: the stored override (or null) and the built-in
 * default it is merged over.  Owners (and platform admins with ?org=) write;
 * every role reads.  Reports already rendered keep their bytes; the next
 * render uses the new template.
 */
#include "fmacros.h"
#include "api.h"
#include "pdf.h"
#include "routes.h"
#include <stdlib.h>

#define TPL_MAX_BYTES (512 * 1024) /* a logo as base64 included */

/* {template, default} */
static void reply_template(api_req *r, json_t *tpl) {
    size_t dlen = 0;
    const char *def = pdf_template_default(&dlen);
    json_t *d = def ? json_loadb(def, dlen, 0, NULL) : NULL;
    json_t *out = json_pack("{s:o, s:o}", "template", tpl ? tpl : json_null(), "default",
                            d ? d : json_null());
    if (!out) {
        api_err(r, 503, "unavailable", "out of memory");
        return;
    }
    api_json(r, 200, out);
}

void h_org_template_get(api_req *r) {
    db_err de;
    json_t *tpl = NULL;
    int rc = repo_org_template_get(r->db, &de, r->who.org_id, &tpl);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, NULL, "organization");
        return;
    }
    reply_template(r, tpl);
}

static const jx_field k_put[] = {
    {"template", JX_OBJECT, JX_REQUIRED | JX_NULLABLE, 0, 0},
    {NULL, 0, 0, 0, 0},
};

void h_org_template_put(api_req *r) {
    if (!api_validate(r, k_put, NULL)) return;
    json_t *tpl = json_object_get(r->json, "template");
    char *text = NULL;
    if (!json_is_null(tpl)) {
        text = json_dumps(tpl, JSON_COMPACT);
        if (!text) {
            api_err(r, 503, "unavailable", "out of memory");
            return;
        }
        if (strlen(text) > TPL_MAX_BYTES) {
            free(text);
            api_invalid1(r, "template", "is larger than %d KB", TPL_MAX_BYTES / 1024);
            return;
        }
        char err[512];
        if (pdf_template_check_override(text, strlen(text), err, sizeof err) != 0) {
            /* "page.margins.left: must be …" → field template.page.margins.left */
            const char *colon = strstr(err, ": ");
            char field[256];
            if (colon && (size_t)(colon - err) < sizeof field - 10) {
                snprintf(field, sizeof field, "template.%.*s", (int)(colon - err), err);
                api_invalid1(r, field, "%s", colon + 2);
            } else {
                api_invalid1(r, "template", "%s", err);
            }
            free(text);
            return;
        }
    }
    db_err de;
    int rc = repo_org_template_set(r->db, &de, r->who.org_id, text);
    free(text);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, NULL, "organization");
        return;
    }
    reply_template(r, json_incref(tpl));
}
