/* pdf.h — the libharu renderer (prefix pdf_).  A model in, PDF bytes out.
 *
 * DESIGN — Pure: the renderer never queries a database and never touches the
 * file system (the default template and its logo are compiled in; DejaVu Sans
 * is read from fonts-dejavu-core only when a string needs it).  The caller
 * builds a model (pdf_invoice / pdf_usage) from its rows, renders into a
 * shared/buf.h buffer and writes that to a temp file + fsync + rename.
 *
 * - All text is UTF-8.  Invalid UTF-8 and code points libharu 2.3.0 cannot
 *   draw (outside the BMP) are replaced visibly, never a crash: by '?' in a
 *   string that is otherwise WinAnsi (drawn with built-in Helvetica), by
 *   U+FFFD in one drawn with the embedded DejaVu Sans.  Other strings are
 *   DejaVu Sans in a single-byte code page when one has all their
 *   characters (Greek, Cyrillic, Central European, …), else as UTF-8.
 * - Money and quantities are already-formatted decimal strings ("1234.50");
 *   the renderer prints them as given and never turns them into floats.
 *   Dates are "YYYY-MM-DD" (printed with the template's date_format).
 * - Deterministic: the same template + model gives byte-identical PDFs.
 * - Thread-safe: no mutable globals; one libharu document and error context
 *   per call (per pdf_renderer, below).  A pdf_template is immutable after
 *   load and may be shared across threads.
 *
 * Every function returns 0 on success, -1 on error with a message in err
 * (NUL-terminated, truncated to errlen).  Model pointers that are NULL are
 * treated as empty unless stated otherwise.
 */
#ifndef ML_PDF_H
#define ML_PDF_H
#include <stddef.h>
#include "buf.h"

const char *pdf_libharu_version(void);

/* ---- templates ------------------------------------------------------------
 * A template is JSON (see templates/invoice.json for every key):
 *   {"page": {"size": "A4"|"Letter",
 *             "margins": {"top","right","bottom","left": points 0..200}},
 *    "brand_color": "#RRGGBB",
 *    "logo": "logo.png" (a file compiled in from templates/) |
 *            "data:image/png;base64,..." | "<base64 PNG>" | null (no logo),
 *    "logo_width": points 0..300,
 *    "seller": {"name", "address": [lines], "tax_id", "email"},
 *    "footer": "text",
 *    "columns": ["description","quantity","unit_price","amount"] (subset, in
 *               this order; "description" and "amount" are required),
 *    "date_format": "YYYY-MM-DD" | "DD.MM.YYYY" | "DD/MM/YYYY" |
 *                   "MM/DD/YYYY" | "D MMMM YYYY" | "MMMM D, YYYY",
 *    "labels": {...}  (optional wording, e.g. "invoice": "Invoice")}
 * Unknown keys are rejected.  The organization override (the organizations.
 * template jsonb) is merged over the default one level deep: an object value
 * replaces only the keys it names (page.margins likewise), anything else
 * replaces the whole value.  Errors name the field:
 *   "margins.left: must be between 0 and 200 points". */
typedef struct pdf_template pdf_template;

/* Parses json[0..len) and, when override_json is not NULL, merges
 * override_json[0..override_len) over it, then validates the result.
 * On success *out is a new template (pdf_template_free it). */
int pdf_template_load(const char *json, size_t len, const char *override_json, size_t override_len,
                      pdf_template **out, char *err, size_t errlen);
void pdf_template_free(pdf_template *t); /* NULL ok */
/* The built-in default template JSON (templates/invoice.json, compiled in).
 * Static storage, NUL-terminated; *len gets its length when len != NULL. */
const char *pdf_template_default(size_t *len);
/* Convenience: validates an organization override against the default
 * (pdf_template_load(default, override) then free) — for an API that stores
 * the override and wants a 422 with the field name. */
int pdf_template_check_override(const char *override_json, size_t override_len, char *err,
                                size_t errlen);

/* Called every PDF_PROGRESS_EVERY rows (and once at the end) with the rows
 * done so far and the total, so a worker can report progress.  Runs on the
 * rendering thread; must not call back into the renderer. */
#define PDF_PROGRESS_EVERY 100
typedef void (*pdf_progress_fn)(void *arg, size_t done, size_t total);

/* ---- invoice model -------------------------------------------------------- */
typedef struct pdf_party {
    const char *name;
    const char *const *address; /* n_address lines */
    size_t n_address;
    const char *email;  /* may be NULL */
    const char *tax_id; /* may be NULL */
} pdf_party;

typedef struct pdf_sub_line {
    const char *description;
    const char *quantity, *unit_price, *amount; /* decimals as text; NULL = blank */
} pdf_sub_line;

typedef struct pdf_line {
    const char *kind; /* "usage" | "fixed" | "adjustment" | …; informative */
    const char *description;
    const char *quantity, *unit_price, *amount; /* decimals as text; NULL = blank */
    const pdf_sub_line *sub_lines;              /* printed indented under the line */
    size_t n_sub_lines;
} pdf_line;

typedef struct pdf_late_usage {
    const char *metric;
    const char *billed, *current, *late; /* decimals as text */
} pdf_late_usage;

typedef struct pdf_invoice {
    const char *number;                    /* NULL for drafts (printed as "Draft") */
    const char *status;                    /* draft|pending_approval|approved|issued|paid|void;
                                              draft and pending_approval get a "DRAFT"
                                              watermark, void a "VOID" one */
    const char *currency;                  /* "EUR" — printed next to totals */
    const char *issue_date;                /* YYYY-MM-DD; NULL = not issued yet */
    const char *due_date;                  /* YYYY-MM-DD or NULL */
    const char *period_start, *period_end; /* YYYY-MM-DD */
    const pdf_party *seller;               /* NULL = the template's seller block */
    pdf_party bill_to;
    const pdf_line *lines;
    size_t n_lines;
    const char *subtotal;
    const char *tax_label; /* "VAT 20%"; NULL = "Tax" */
    const char *tax;       /* NULL = no tax row */
    const char *total;
    const pdf_late_usage *late_usage;
    size_t n_late_usage;
    const char *notes;        /* free text, may contain '\n'; NULL = none */
    pdf_progress_fn progress; /* may be NULL; total = line rows (lines + sub-lines) */
    void *progress_arg;
} pdf_invoice;

/* Renders inv with template t and appends the PDF bytes to out. */
int pdf_render_invoice(const pdf_template *t, const pdf_invoice *inv, buf *out, char *err,
                       size_t errlen);

/* ---- usage report model --------------------------------------------------- */
typedef struct pdf_metric {
    const char *code;          /* "api_calls" */
    const char *name;          /* "API calls" (NULL = code) */
    const char *unit;          /* "requests" (may be NULL) */
    const char *total;         /* decimal text over the whole range */
    const char *const *daily;  /* n_days decimals aligned to pdf_usage.days (NULL entry = 0) */
    const char *const *hourly; /* n_hours decimals aligned to pdf_usage.hours (NULL entry = 0) */
} pdf_metric;

typedef struct pdf_usage {
    const char *customer_name;
    const char *customer_id; /* external id, may be NULL */
    const char *from, *to;   /* YYYY-MM-DD */
    const char *const *days; /* YYYY-MM-DD labels of the chart's x axis */
    size_t n_days;
    const char *const *hours; /* RFC 3339 hour labels "2024-05-01T13:00:00Z" */
    size_t n_hours;
    const pdf_metric *metrics;
    size_t n_metrics;
    const char *generated_on; /* YYYY-MM-DD printed in the header; NULL = omitted
                                 (never the wall clock: output is deterministic) */
    pdf_progress_fn progress; /* may be NULL; total = appendix rows (n_hours) */
    void *progress_arg;
} pdf_usage;

/* Renders u (totals, one daily bar chart per metric, hourly appendix). */
int pdf_render_usage(const pdf_template *t, const pdf_usage *u, buf *out, char *err, size_t errlen);

/* ---- renderers -------------------------------------------------------------
 * A renderer keeps libharu's document handle between renders, and with it
 * DejaVu Sans once loaded: a thread that renders many PDFs parses the font
 * once instead of per PDF.  The output is byte-identical to the one-shot
 * functions above (which are a renderer used once).  A renderer belongs to
 * one thread at a time — one per worker thread; templates may be shared.
 * After a failed render the renderer starts afresh on its next render. */
typedef struct pdf_renderer pdf_renderer;

pdf_renderer *pdf_renderer_new(void);    /* NULL: out of memory */
void pdf_renderer_free(pdf_renderer *r); /* NULL ok */
int pdf_renderer_invoice(pdf_renderer *r, const pdf_template *t, const pdf_invoice *inv, buf *out,
                         char *err, size_t errlen);
int pdf_renderer_usage(pdf_renderer *r, const pdf_template *t, const pdf_usage *u, buf *out,
                       char *err, size_t errlen);

#endif
