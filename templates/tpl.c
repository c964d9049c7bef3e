/* tpl.c — layout templates: parse, merge the organization's override over the
 * default, validate, and precompute what every render needs.
 *
 * DESIGN — Pure over memory (the default template and logo are compiled in;
 * see pdf_assets).  Both documents are parsed with JSON_REJECT_DUPLICATES.
 * The override is merged over the default recursively for objects (so
 * {"page": {"margins": {"left": 20}}} changes one margin); any other value
 * (string, number, array, null) replaces the default's.  The merged result is
 * validated once; the first problem is reported as "<field>: <message>" with
 * the full path ("page.margins.left: must be between 0 and 200 points").
 * Unknown keys are rejected at every level.  A loaded template is immutable
 * and may be shared between threads.
 */
#include "fmacros.h"
#include "pdf_int.h"
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>

#define PDF_LOGO_MAX   (512 * 1024)
#define PDF_LOGO_MAX_H 72.0f

static const struct {
    const char *key, *fallback;
} pdf_label_keys[PDF_L_N] = {
    [PDF_L_INVOICE] = {"invoice", "Invoice"},
    [PDF_L_DRAFT] = {"draft", "Draft"},
    [PDF_L_BILL_TO] = {"bill_to", "Bill to"},
    [PDF_L_NUMBER] = {"number", "Invoice number"},
    [PDF_L_STATUS] = {"status", "Status"},
    [PDF_L_ISSUE_DATE] = {"issue_date", "Issue date"},
    [PDF_L_DUE_DATE] = {"due_date", "Due date"},
    [PDF_L_PERIOD] = {"period", "Billing period"},
    [PDF_L_DESCRIPTION] = {"description", "Description"},
    [PDF_L_QUANTITY] = {"quantity", "Quantity"},
    [PDF_L_UNIT_PRICE] = {"unit_price", "Unit price"},
    [PDF_L_AMOUNT] = {"amount", "Amount"},
    [PDF_L_SUBTOTAL] = {"subtotal", "Subtotal"},
    [PDF_L_TAX] = {"tax", "Tax"},
    [PDF_L_TOTAL] = {"total", "Total"},
    [PDF_L_LATE_USAGE] = {"late_usage", "Late usage"},
    [PDF_L_METRIC] = {"metric", "Metric"},
    [PDF_L_BILLED] = {"billed", "Billed"},
    [PDF_L_CURRENT] = {"current", "Current"},
    [PDF_L_LATE] = {"late", "Late"},
    [PDF_L_NOTES] = {"notes", "Notes"},
    [PDF_L_TAX_ID] = {"tax_id", "Tax ID"},
    [PDF_L_USAGE_REPORT] = {"usage_report", "Usage report"},
    [PDF_L_CUSTOMER] = {"customer", "Customer"},
    [PDF_L_RANGE] = {"range", "Period"},
    [PDF_L_GENERATED] = {"generated", "Generated on"},
    [PDF_L_TOTALS] = {"totals", "Totals"},
    [PDF_L_UNIT] = {"unit", "Unit"},
    [PDF_L_DAILY] = {"daily", "Daily usage"},
    [PDF_L_HOURLY] = {"hourly", "Hourly usage"},
    [PDF_L_HOUR] = {"hour", "Hour"},
    [PDF_L_CONTINUED] = {"continued", "continued"},
};

static const char *const pdf_col_names[PDF_COL_N] = {"description", "quantity", "unit_price",
                                                     "amount"};
static const char *const pdf_date_formats[] = {
    [PDF_DF_ISO] = "YYYY-MM-DD",       [PDF_DF_DOT] = "DD.MM.YYYY",
    [PDF_DF_SLASH_DMY] = "DD/MM/YYYY", [PDF_DF_SLASH_MDY] = "MM/DD/YYYY",
    [PDF_DF_LONG_DMY] = "D MMMM YYYY", [PDF_DF_LONG_MDY] = "MMMM D, YYYY",
};

static int tfail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tfail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *pdf_template_default(size_t *len) {
    const ml_embedded *e = ml_embed_find(pdf_assets, "invoice.json");
    if (ML_NEVER(!e)) {
        if (len) *len = 0;
        return "";
    }
    if (len) *len = e->len;
    return e->data;
}

/* Recursive merge of src over dst (both objects). */
static int merge(json_t *dst, json_t *src) {
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) {
        json_t *d = json_object_get(dst, k);
        if (d && json_is_object(d) && json_is_object(v)) {
            if (merge(d, v) < 0) return -1;
        } else if (json_object_set(dst, k, v) < 0) {
            return -1;
        }
    }
    return 0;
}

static int only_keys(const json_t *o, const char *path, const char *const *keys, size_t n,
                     char *err, size_t errlen) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        size_t i;
        for (i = 0; i < n; i++)
            if (strcmp(k, keys[i]) == 0) break;
        if (i == n) return tfail(err, errlen, "%s%s%s: unknown key", path, *path ? "." : "", k);
    }
    return 0;
}

/* A plain string without NUL, at most max bytes; NULL value allowed when
 * nullable (then *out = NULL). */
static int get_str(const json_t *o, const char *key, const char *path, bool required, bool nullable,
                   size_t max, const char **out, char *err, size_t errlen) {
    json_t *v = json_object_get(o, key);
    const char *dot = *path ? "." : "";
    *out = NULL;
    if (!v) {
        if (required) return tfail(err, errlen, "%s%s%s: is required", path, dot, key);
        return 0;
    }
    if (json_is_null(v) && nullable) return 0;
    if (!json_is_string(v)) return tfail(err, errlen, "%s%s%s: must be a string", path, dot, key);
    size_t n = json_string_length(v);
    if (strlen(json_string_value(v)) != n)
        return tfail(err, errlen, "%s%s%s: must not contain NUL", path, dot, key);
    if (n > max)
        return tfail(err, errlen, "%s%s%s: must be at most %zu bytes", path, dot, key, max);
    *out = json_string_value(v);
    return 0;
}

static int get_points(const json_t *o, const char *key, const char *path, double lo, double hi,
                      bool required, double dflt, HPDF_REAL *out, char *err, size_t errlen) {
    json_t *v = json_object_get(o, key);
    const char *dot = *path ? "." : "";
    if (!v) {
        if (required) return tfail(err, errlen, "%s%s%s: is required", path, dot, key);
        *out = (HPDF_REAL)dflt;
        return 0;
    }
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi)
        return tfail(err, errlen, "%s%s%s: must be between %g and %g points", path, dot, key, lo,
                     hi);
    *out = (HPDF_REAL)json_number_value(v);
    return 0;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* PNG signature + IHDR: width and height, else -1. */
static int png_size(const unsigned char *p, size_t n, uint32_t *w, uint32_t *h) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 33 || memcmp(p, sig, 8) != 0 || memcmp(p + 12, "IHDR", 4) != 0) return -1;
    *w = (uint32_t)p[16] << 24 | (uint32_t)p[17] << 16 | (uint32_t)p[18] << 8 | p[19];
    *h = (uint32_t)p[20] << 24 | (uint32_t)p[21] << 16 | (uint32_t)p[22] << 8 | p[23];
    return (*w && *h) ? 0 : -1;
}

static int load_logo(pdf_template *t, const json_t *root, char *err, size_t errlen) {
    const char *s;
    if (get_str(root, "logo", "", false, true, 4 * PDF_LOGO_MAX / 3 + 64, &s, err, errlen) < 0)
        return -1;
    if (!s || !*s) return 0;
    const ml_embedded *e = ml_embed_find(pdf_assets, s);
    if (e && strcmp(s, "invoice.json") != 0) {
        t->logo = malloc(e->len ? e->len : 1);
        if (!t->logo) return tfail(err, errlen, "logo: out of memory");
        memcpy(t->logo, e->data, e->len);
        t->logo_len = e->len;
    } else {
        const char *b64 = s;
        if (strncmp(b64, "data:image/png;base64,", 22) == 0) b64 += 22;
        size_t n = strlen(b64);
        t->logo = malloc(n / 4 * 3 + 4);
        if (!t->logo) return tfail(err, errlen, "logo: out of memory");
        if (sodium_base642bin(t->logo, n / 4 * 3 + 4, b64, n, " \t\r\n", &t->logo_len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            t->logo_len == 0)
            return tfail(err, errlen,
                         "logo: must be a file in templates/, a base64 PNG or "
                         "data:image/png;base64,…");
        if (t->logo_len > PDF_LOGO_MAX)
            return tfail(err, errlen, "logo: must be at most %d bytes", PDF_LOGO_MAX);
    }
    uint32_t pw, ph;
    if (png_size(t->logo, t->logo_len, &pw, &ph) < 0)
        return tfail(err, errlen, "logo: not a PNG image");
    /* geometry, not money: floats are fine here */
    t->logo_h = t->logo_w * (HPDF_REAL)ph / (HPDF_REAL)pw;
    if (t->logo_h > PDF_LOGO_MAX_H) {
        t->logo_w = t->logo_w * PDF_LOGO_MAX_H / t->logo_h;
        t->logo_h = PDF_LOGO_MAX_H;
    }
    return 0;
}

static void probe_handler(HPDF_STATUS e, HPDF_STATUS d, void *arg) {
    ML_UNUSED(d);
    HPDF_STATUS *st = arg;
    if (!*st) *st = e;
}

/* Helvetica widths for every WinAnsi byte, the code pages (pdf_cp_init), and
 * a trial decode of the logo. */
static int probe(pdf_template *t, char *err, size_t errlen) {
    HPDF_STATUS st = 0;
    HPDF_Doc doc = HPDF_New(probe_handler, &st);
    if (!doc) return tfail(err, errlen, "template: libharu: out of memory");
    static const char *const names[2] = {"Helvetica", "Helvetica-Bold"};
    for (int b = 0; b < 2; b++) {
        HPDF_Font f = HPDF_GetFont(doc, names[b], "WinAnsiEncoding");
        if (!f) {
            HPDF_Free(doc);
            return tfail(err, errlen, "template: libharu: no %s (error 0x%04X)", names[b],
                         (unsigned)st);
        }
        for (int i = 0; i < 256; i++) {
            HPDF_INT w = pdf_cp1252[i] ? HPDF_Font_GetUnicodeWidth(f, pdf_cp1252[i]) : 0;
            t->helv_w[b][i] = (int16_t)(w > 0 && w < 3000 ? w : 0);
        }
    }
    st = pdf_cp_init(t, doc);
    if (st) {
        HPDF_Free(doc);
        return tfail(err, errlen, "template: libharu: no code page encoders (error 0x%04X)",
                     (unsigned)st);
    }
    if (t->logo) {
        HPDF_Image im = HPDF_LoadPngImageFromMem(doc, t->logo, (HPDF_UINT)t->logo_len);
        if (!im) {
            HPDF_Free(doc);
            return tfail(err, errlen, "logo: not a PNG libharu can read (error 0x%04X)",
                         (unsigned)st);
        }
    }
    HPDF_Free(doc);
    return 0;
}

static int validate(pdf_template *t, char *err, size_t errlen) {
    const json_t *root = t->root;
    static const char *const root_keys[] = {"page",       "brand_color", "logo",
                                            "logo_width", "seller",      "footer",
                                            "columns",    "date_format", "labels"};
    if (only_keys(root, "", root_keys, ML_ARRAY_LEN(root_keys), err, errlen) < 0) return -1;

    /* page */
    const json_t *page = json_object_get(root, "page");
    if (!page) return tfail(err, errlen, "page: is required");
    if (!json_is_object(page)) return tfail(err, errlen, "page: must be an object");
    static const char *const page_keys[] = {"size", "margins"};
    if (only_keys(page, "page", page_keys, 2, err, errlen) < 0) return -1;
    const char *size;
    if (get_str(page, "size", "page", true, false, 16, &size, err, errlen) < 0) return -1;
    if (strcmp(size, "A4") == 0) {
        t->page_w = 595.276f, t->page_h = 841.89f;
    } else if (strcmp(size, "Letter") == 0) {
        t->page_w = 612, t->page_h = 792;
    } else {
        return tfail(err, errlen, "page.size: must be \"A4\" or \"Letter\"");
    }
    const json_t *m = json_object_get(page, "margins");
    if (!m) return tfail(err, errlen, "page.margins: is required");
    if (!json_is_object(m)) return tfail(err, errlen, "page.margins: must be an object");
    static const char *const mkeys[] = {"top", "right", "bottom", "left"};
    if (only_keys(m, "page.margins", mkeys, 4, err, errlen) < 0) return -1;
    HPDF_REAL *mv[4] = {&t->m_top, &t->m_right, &t->m_bottom, &t->m_left};
    for (int i = 0; i < 4; i++)
        if (get_points(m, mkeys[i], "page.margins", 0, 200, true, 0, mv[i], err, errlen) < 0)
            return -1;

    /* brand colour */
    const char *bc;
    if (get_str(root, "brand_color", "", true, false, 7, &bc, err, errlen) < 0) return -1;
    if (strlen(bc) != 7 || bc[0] != '#')
        return tfail(err, errlen, "brand_color: must look like \"#1F5FAD\"");
    for (int i = 0; i < 3; i++) {
        int hi = hexval(bc[1 + 2 * i]), lo = hexval(bc[2 + 2 * i]);
        if (hi < 0 || lo < 0) return tfail(err, errlen, "brand_color: must look like \"#1F5FAD\"");
        t->brand[i] = (HPDF_REAL)(hi * 16 + lo) / 255.0f;
    }

    /* logo */
    if (get_points(root, "logo_width", "", 0, 300, false, 120, &t->logo_w, err, errlen) < 0)
        return -1;
    if (load_logo(t, root, err, errlen) < 0) return -1;

    /* seller */
    const json_t *s = json_object_get(root, "seller");
    if (!s) return tfail(err, errlen, "seller: is required");
    if (!json_is_object(s)) return tfail(err, errlen, "seller: must be an object");
    static const char *const skeys[] = {"name", "address", "tax_id", "email"};
    if (only_keys(s, "seller", skeys, 4, err, errlen) < 0) return -1;
    if (get_str(s, "name", "seller", true, false, 200, &t->seller_name, err, errlen) < 0) return -1;
    if (get_str(s, "tax_id", "seller", false, true, 100, &t->seller_tax_id, err, errlen) < 0)
        return -1;
    if (get_str(s, "email", "seller", false, true, 200, &t->seller_email, err, errlen) < 0)
        return -1;
    const json_t *addr = json_object_get(s, "address");
    if (addr && !json_is_null(addr)) {
        if (!json_is_array(addr) || json_array_size(addr) > 8)
            return tfail(err, errlen, "seller.address: must be an array of at most 8 strings");
        t->n_seller_addr = json_array_size(addr);
        t->seller_addr = calloc(t->n_seller_addr + 1, sizeof *t->seller_addr);
        if (!t->seller_addr) return tfail(err, errlen, "template: out of memory");
        for (size_t i = 0; i < t->n_seller_addr; i++) {
            const json_t *l = json_array_get(addr, i);
            if (!json_is_string(l) || strlen(json_string_value(l)) != json_string_length(l) ||
                json_string_length(l) > 200)
                return tfail(err, errlen,
                             "seller.address[%zu]: must be a string of at most 200 bytes", i);
            t->seller_addr[i] = json_string_value(l);
        }
    }

    /* footer */
    if (get_str(root, "footer", "", false, true, 500, &t->footer, err, errlen) < 0) return -1;

    /* columns */
    const json_t *cols = json_object_get(root, "columns");
    if (!cols) return tfail(err, errlen, "columns: is required");
    if (!json_is_array(cols) || json_array_size(cols) > PDF_COL_N)
        return tfail(err, errlen, "columns: must be an array of column names");
    bool seen[PDF_COL_N] = {false};
    for (size_t i = 0; i < json_array_size(cols); i++) {
        const json_t *c = json_array_get(cols, i);
        int k = -1;
        for (int j = 0; j < PDF_COL_N && json_is_string(c); j++)
            if (strcmp(json_string_value(c), pdf_col_names[j]) == 0) k = j;
        if (k < 0)
            return tfail(err, errlen,
                         "columns[%zu]: must be one of description, quantity, unit_price, amount",
                         i);
        if (seen[k])
            return tfail(err, errlen, "columns[%zu]: \"%s\" appears twice", i, pdf_col_names[k]);
        seen[k] = true;
        t->cols[t->n_cols++] = k;
    }
    if (!seen[PDF_COL_DESCRIPTION] || !seen[PDF_COL_AMOUNT])
        return tfail(err, errlen, "columns: must include \"description\" and \"amount\"");

    /* date format */
    const char *df;
    if (get_str(root, "date_format", "", true, false, 32, &df, err, errlen) < 0) return -1;
    t->date_format = -1;
    for (size_t i = 0; i < ML_ARRAY_LEN(pdf_date_formats); i++)
        if (strcmp(df, pdf_date_formats[i]) == 0) t->date_format = (int)i;
    if (t->date_format < 0)
        return tfail(err, errlen,
                     "date_format: must be one of YYYY-MM-DD, DD.MM.YYYY, DD/MM/YYYY, "
                     "MM/DD/YYYY, D MMMM YYYY, MMMM D, YYYY");

    /* labels */
    for (int i = 0; i < PDF_L_N; i++) t->labels[i] = pdf_label_keys[i].fallback;
    const json_t *labels = json_object_get(root, "labels");
    if (labels && !json_is_null(labels)) {
        if (!json_is_object(labels)) return tfail(err, errlen, "labels: must be an object");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)labels, k, v) {
            int i;
            for (i = 0; i < PDF_L_N; i++)
                if (strcmp(k, pdf_label_keys[i].key) == 0) break;
            if (i == PDF_L_N) return tfail(err, errlen, "labels.%s: unknown key", k);
            const char *lv;
            if (get_str(labels, k, "labels", true, false, 60, &lv, err, errlen) < 0) return -1;
            if (!*lv) return tfail(err, errlen, "labels.%s: must not be empty", k);
            t->labels[i] = lv;
        }
    }

    /* the page must leave room for content */
    if (t->page_w - t->m_left - t->m_right < 300)
        return tfail(err, errlen, "page.margins: left + right leave less than 300 points");
    if (t->page_h - t->m_top - t->m_bottom < 400)
        return tfail(err, errlen, "page.margins: top + bottom leave less than 400 points");
    return probe(t, err, errlen);
}

int pdf_template_load(const char *json, size_t len, const char *override_json, size_t override_len,
                      pdf_template **out, char *err, size_t errlen) {
    json_error_t je;
    *out = NULL;
    if (!json) return tfail(err, errlen, "template: missing");
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return tfail(err, errlen, "template: invalid JSON at line %d: %s", je.line, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return tfail(err, errlen, "template: must be a JSON object");
    }
    if (override_json) {
        json_t *ov = json_loadb(override_json, override_len, JSON_REJECT_DUPLICATES, &je);
        if (!ov) {
            json_decref(root);
            return tfail(err, errlen, "template override: invalid JSON at line %d: %s", je.line,
                         je.text);
        }
        int rc = json_is_object(ov) ? merge(root, ov) : -2;
        json_decref(ov);
        if (rc < 0) {
            json_decref(root);
            return tfail(err, errlen,
                         rc == -2 ? "template override: must be a JSON object"
                                  : "template: out of memory");
        }
    }
    pdf_template *t = calloc(1, sizeof *t);
    if (!t) {
        json_decref(root);
        return tfail(err, errlen, "template: out of memory");
    }
    t->root = root;
    if (validate(t, err, errlen) < 0) {
        pdf_template_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void pdf_template_free(pdf_template *t) {
    if (!t) return;
    free(t->logo);
    free(t->seller_addr);
    json_decref(t->root);
    free(t);
}

int pdf_template_check_override(const char *override_json, size_t override_len, char *err,
                                size_t errlen) {
    size_t n;
    const char *d = pdf_template_default(&n);
    pdf_template *t;
    if (pdf_template_load(d, n, override_json ? override_json : "{}",
                          override_json ? override_len : 2, &t, err, errlen) < 0)
        return -1;
    pdf_template_free(t);
    return 0;
}

static const char *const pdf_months[12] = {"January",   "February", "March",    "April",
                                           "May",       "June",     "July",     "August",
                                           "September", "October",  "November", "December"};

const char *pdf_date(const pdf_template *t, const char *ymd, char *out, size_t cap) {
    if (!ymd) {
        if (cap) out[0] = 0;
        return out;
    }
    int y, mo, d;
    char tail;
    if (strlen(ymd) != 10 || sscanf(ymd, "%4d-%2d-%2d%c", &y, &mo, &d, &tail) != 3 || mo < 1 ||
        mo > 12 || d < 1 || d > 31 || ymd[4] != '-' || ymd[7] != '-') {
        snprintf(out, cap, "%s", ymd);
        return out;
    }
    switch (t->date_format) {
    case PDF_DF_DOT:
        snprintf(out, cap, "%02d.%02d.%04d", d, mo, y);
        break;
    case PDF_DF_SLASH_DMY:
        snprintf(out, cap, "%02d/%02d/%04d", d, mo, y);
        break;
    case PDF_DF_SLASH_MDY:
        snprintf(out, cap, "%02d/%02d/%04d", mo, d, y);
        break;
    case PDF_DF_LONG_DMY:
        snprintf(out, cap, "%d %s %04d", d, pdf_months[mo - 1], y);
        break;
    case PDF_DF_LONG_MDY:
        snprintf(out, cap, "%s %d, %04d", pdf_months[mo - 1], d, y);
        break;
    default:
        snprintf(out, cap, "%04d-%02d-%02d", y, mo, d);
        break;
    }
    return out;
}
