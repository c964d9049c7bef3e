/* pdf_int.h — internals shared by the renderer's modules (not for callers).
 *
 *   tpl.c      template JSON: merge, validate, the pdf_template struct
 *   text.c     UTF-8 → font choice (Helvetica/WinAnsi, DejaVu in a single-byte
 *              code page, DejaVu/UTF-8), widths, wrapping, drawing; the
 *              render context and its pages
 *   invoice.c  the invoice layout
 *   usage.c    the usage report layout and its bar charts
 *
 * A render owns one pdf_ctx: one HPDF_Doc created with HPDF_New(handler, ctx),
 * whose handler records the first libharu error in the ctx (no longjmp).
 * Errors are sticky like buf's oom: every libharu call's status goes through
 * pdf_ck(), drawing helpers do nothing once c->failed is set, and the layout
 * code checks c->failed at row boundaries and at the end.
 */
#ifndef ML_PDF_INT_H
#define ML_PDF_INT_H
#include <hpdf.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "buf.h"
#include "pdf.h"

#ifndef ML_DEJAVU_DIR
#define ML_DEJAVU_DIR "/usr/share/fonts/truetype/dejavu"
#endif

/* ---- code pages -------------------------------------------------------
 * The single-byte code pages (libharu encoder names) that DejaVu Sans is
 * drawn in when a string is not WinAnsi, tried in this order (text.c). */
#define PDF_N_CP 5
extern const char *const pdf_cp_names[PDF_N_CP];

/* A code point above U+007F that at least one code page has: which pages
 * (bit k = pdf_cp_names[k]) and its byte in each. */
typedef struct pdf_cp_rev {
    uint16_t u;
    uint8_t pages;
    uint8_t byte[PDF_N_CP];
} pdf_cp_rev;
_Static_assert(PDF_N_CP <= 8, "pdf_cp_rev.pages has a bit per code page");

/* ---- template -------------------------------------------------------- */
enum { PDF_COL_DESCRIPTION, PDF_COL_QUANTITY, PDF_COL_UNIT_PRICE, PDF_COL_AMOUNT, PDF_COL_N };
enum {
    PDF_DF_ISO,       /* YYYY-MM-DD */
    PDF_DF_DOT,       /* DD.MM.YYYY */
    PDF_DF_SLASH_DMY, /* DD/MM/YYYY */
    PDF_DF_SLASH_MDY, /* MM/DD/YYYY */
    PDF_DF_LONG_DMY,  /* D MMMM YYYY */
    PDF_DF_LONG_MDY,  /* MMMM D, YYYY */
};
/* Wording; the order matches pdf_label_keys in tpl.c. */
enum {
    PDF_L_INVOICE,
    PDF_L_DRAFT,
    PDF_L_BILL_TO,
    PDF_L_NUMBER,
    PDF_L_STATUS,
    PDF_L_ISSUE_DATE,
    PDF_L_DUE_DATE,
    PDF_L_PERIOD,
    PDF_L_DESCRIPTION,
    PDF_L_QUANTITY,
    PDF_L_UNIT_PRICE,
    PDF_L_AMOUNT,
    PDF_L_SUBTOTAL,
    PDF_L_TAX,
    PDF_L_TOTAL,
    PDF_L_LATE_USAGE,
    PDF_L_METRIC,
    PDF_L_BILLED,
    PDF_L_CURRENT,
    PDF_L_LATE,
    PDF_L_NOTES,
    PDF_L_TAX_ID,
    PDF_L_USAGE_REPORT,
    PDF_L_CUSTOMER,
    PDF_L_RANGE,
    PDF_L_GENERATED,
    PDF_L_TOTALS,
    PDF_L_UNIT,
    PDF_L_DAILY,
    PDF_L_HOURLY,
    PDF_L_HOUR,
    PDF_L_CONTINUED,
    PDF_L_N
};

struct pdf_template {
    json_t *root; /* the merged, validated JSON; the strings below point into it */
    HPDF_REAL page_w, page_h;
    HPDF_REAL m_top, m_right, m_bottom, m_left;
    HPDF_REAL brand[3];  /* 0..1 */
    unsigned char *logo; /* PNG bytes (owned), NULL = no logo */
    size_t logo_len;
    HPDF_REAL logo_w, logo_h; /* drawn size in points */
    const char *seller_name, *seller_tax_id, *seller_email;
    const char **seller_addr;
    size_t n_seller_addr;
    const char *footer;
    int cols[PDF_COL_N];
    size_t n_cols;
    int date_format;
    const char *labels[PDF_L_N];
    /* Helvetica / Helvetica-Bold advance widths (1/1000 em) per WinAnsi byte,
     * measured once at load so renders need no lookups. */
    int16_t helv_w[2][256];
    /* The code pages, read from libharu's encoders at load (pdf_cp_init):
     * byte → Unicode (0 = not used), and the reverse for code points above
     * U+007F, sorted by code point (ASCII is the same in every page). */
    uint16_t cp_uni[PDF_N_CP][256];
    pdf_cp_rev cp_rev[PDF_N_CP * 128];
    size_t n_cp_rev;
};

/* WinAnsi (CP1252) byte → Unicode; 0 for bytes without a character. */
extern const uint16_t pdf_cp1252[256];
/* Files compiled in from templates/ (invoice.json, logo.png). */
#include "embed.h"
extern const ml_embedded pdf_assets[];

/* Fills t->cp_uni / t->cp_rev from doc's encoders (tpl.c's probe document);
 * returns the failing libharu status, 0 on success. */
HPDF_STATUS pdf_cp_init(pdf_template *t, HPDF_Doc doc);

/* ---- renderer (pdf.h) ------------------------------------------------ *
 * The libharu handle a renderer keeps between renders: HPDF_New once,
 * HPDF_NewDoc per render, HPDF_FreeDoc after it; the handle keeps the font
 * definitions it loaded (DejaVu Sans parsed once) and its encoders.  The
 * one-shot pdf_render_* use a renderer on the stack, released after. */
struct pdf_ctx;
struct pdf_renderer {
    HPDF_Doc doc;        /* NULL until the first render and after a failed one */
    struct pdf_ctx *cur; /* the render in progress: libharu's handler reports to it */
    const char *dv_name; /* DejaVu Sans loaded into doc (its fontdef's name), or NULL */
    bool utf8;           /* HPDF_UseUTFEncodings done on doc */
};
/* Frees r's libharu handle (r itself stays usable). */
void pdf_renderer_release(pdf_renderer *r);

/* ---- render context -------------------------------------------------- */
enum { PDF_REG = 0, PDF_BOLD = 1 };
enum { PDF_LEFT, PDF_RIGHT, PDF_CENTER };

typedef struct pdf_ctx {
    pdf_renderer *r;
    HPDF_Doc doc; /* r->doc */
    const pdf_template *t;
    bool failed;
    char msg[200];
    HPDF_STATUS hpdf_err, hpdf_detail;
    HPDF_Font helv[2];
    const char *dv_name;       /* DejaVu Sans loaded into doc (on first need) */
    HPDF_Font dv_utf8;         /* …as UTF-8 (Type0), made on first need */
    HPDF_Font dv_cp[PDF_N_CP]; /* …in code page k (simple TrueType), likewise */
    HPDF_Dict dv_tu[PDF_N_CP]; /* their ToUnicode streams */
    unsigned dv_alias;         /* alias glyphs already marked (bits of pdf_dv_alias) */
    uint64_t dv_based;         /* bases already marked (bits of pdf_dv_base) */
    int16_t *dv_w;             /* widths per BMP code point, -1 = unknown */
    HPDF_Page *pages;
    size_t n_pages, cap_pages;
    HPDF_Page page;        /* current page */
    HPDF_REAL y;           /* layout cursor (baseline space), from the top down */
    HPDF_REAL top, bottom; /* content limits on every page */
    HPDF_REAL left, right;
    HPDF_Image logo;
    const char *watermark; /* "DRAFT" / "VOID" / NULL */
    /* what a page break draws: the continuation title c->cont (gray, small),
     * then on_new_page (a table's header row) */
    const char *cont;
    void (*on_new_page)(struct pdf_ctx *c, void *arg);
    void *on_new_page_arg;
    buf enc;  /* encoded text scratch */
    buf line; /* one wrapped line, NUL-terminated */
    /* text state inside a BT … ET, to skip redundant Tf */
    bool in_text;
    HPDF_Font cur_font;
    HPDF_REAL cur_size;
} pdf_ctx;

/* An encoded string: bytes for one font. */
enum {
    PDF_ENC_WINANSI = -2, /* Helvetica, CP1252 bytes */
    PDF_ENC_UTF8 = -1,    /* DejaVu Sans (Type0), UTF-8 */
    /* 0 .. PDF_N_CP-1: DejaVu Sans, bytes in code page pdf_cp_names[enc] */
};
typedef struct pdf_enc {
    const char *p;
    size_t len;
    int enc; /* PDF_ENC_* or a code page index */
} pdf_enc;

/* A wrapped line: a slice of an encoded string. */
typedef struct pdf_span {
    size_t off, len;
} pdf_span;

void pdf_fail(pdf_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records a non-OK libharu status (the handler usually has already). */
void pdf_ck(pdf_ctx *c, HPDF_STATUS st, const char *what);

/* Begins a render on r: a new libharu document, compression, fonts, logo. */
int pdf_ctx_begin(pdf_ctx *c, pdf_renderer *r, const pdf_template *t, char *err, size_t errlen);
/* Stamps footer + "Page n of m" on every page and saves into out. */
int pdf_ctx_finish(pdf_ctx *c, buf *out, char *err, size_t errlen);
/* Frees the render's document (r keeps its handle unless c failed) and
 * everything else (after finish or on error). */
void pdf_ctx_end(pdf_ctx *c);

/* Adds a page (watermark drawn first, under everything) and resets y. */
void pdf_new_page(pdf_ctx *c);
/* Makes room for h points: a new page (and its on_new_page) when needed.
 * Returns true when a page break happened. */
bool pdf_need(pdf_ctx *c, HPDF_REAL h);

/* UTF-8 → encoded text (into out, replacing its contents).  Chooses
 * Helvetica when every code point is in WinAnsi, else DejaVu in the first
 * code page that has every code point, else DejaVu as UTF-8 (BMP only;
 * invalid UTF-8 and non-BMP code points become U+FFFD, or '?' when the rest
 * is WinAnsi).  Control characters become spaces, except '\n' when
 * keep_newlines.  The result stays valid until out changes. */
pdf_enc pdf_encode(pdf_ctx *c, const char *s, buf *out, bool keep_newlines);
HPDF_REAL pdf_width(pdf_ctx *c, pdf_enc e, int style, HPDF_REAL size);
/* Greedy word wrap of e into lines no wider than w (words longer than w are
 * broken between characters; '\n' forces a break).  Writes up to max spans;
 * returns the number of lines (which may exceed max: the rest is dropped). */
size_t pdf_wrap(pdf_ctx *c, pdf_enc e, int style, HPDF_REAL size, HPDF_REAL w, pdf_span *spans,
                size_t max);
/* Draws a slice of e with its baseline at (x, y): align LEFT at x, RIGHT
 * ending at x, CENTER around x. */
void pdf_draw(pdf_ctx *c, pdf_enc e, pdf_span sp, int style, HPDF_REAL size, HPDF_REAL x,
              HPDF_REAL y, int align);
/* Encode + draw one line (no wrapping; clipped to nothing). */
void pdf_text(pdf_ctx *c, const char *s, int style, HPDF_REAL size, HPDF_REAL x, HPDF_REAL y,
              int align);
/* Encode + wrap + draw at most max_lines lines from baseline y downwards;
 * returns the number of lines drawn. */
size_t pdf_text_box(pdf_ctx *c, const char *s, int style, HPDF_REAL size, HPDF_REAL leading,
                    HPDF_REAL x, HPDF_REAL y, HPDF_REAL w, int align, size_t max_lines);
/* Number of wrapped lines s needs in width w. */
size_t pdf_text_lines(pdf_ctx *c, const char *s, int style, HPDF_REAL size, HPDF_REAL w);

/* Colours and shapes (leave any text object first). */
void pdf_fill_rgb(pdf_ctx *c, HPDF_REAL r, HPDF_REAL g, HPDF_REAL b);
void pdf_fill_brand(pdf_ctx *c);
void pdf_rect(pdf_ctx *c, HPDF_REAL x, HPDF_REAL y, HPDF_REAL w, HPDF_REAL h);
void pdf_hline(pdf_ctx *c, HPDF_REAL x0, HPDF_REAL x1, HPDF_REAL y, HPDF_REAL width,
               HPDF_REAL gray);
void pdf_vline(pdf_ctx *c, HPDF_REAL x, HPDF_REAL y0, HPDF_REAL y1, HPDF_REAL width,
               HPDF_REAL gray);
void pdf_end_text(pdf_ctx *c);

/* "2024-05-01" in the template's date format (into out, cap >= 32); an
 * unparseable date is copied as is.  NULL → "". */
const char *pdf_date(const pdf_template *t, const char *ymd, char *out, size_t cap);

/* The header block both documents share (logo + seller); returns nothing,
 * moves c->y below it. */
void pdf_draw_letterhead(pdf_ctx *c, const pdf_party *seller);

/* ---- tables (table.c) ------------------------------------------------- */
#define PDF_TABLE_MAX_COLS 8
typedef struct pdf_col {
    HPDF_REAL x, w; /* left edge and width */
    int align;      /* PDF_LEFT / PDF_RIGHT */
} pdf_col;

typedef struct pdf_table {
    pdf_ctx *c;
    pdf_col cols[PDF_TABLE_MAX_COLS];
    const char *heads[PDF_TABLE_MAX_COLS];
    size_t ncols;
    bool rule_next; /* draw a separator above the next row */
    buf cell[PDF_TABLE_MAX_COLS];
} pdf_table;

/* Sets c->on_new_page so a page break repeats the header row (after c->cont);
 * pdf_table_done removes the hook and frees the cells. */
void pdf_table_init(pdf_table *tb, pdf_ctx *c);
void pdf_table_header(pdf_table *tb);
/* One row: cells (NULL = blank) wrapped in their columns; the first column
 * is indented by indent points.  rule: a thin separator above the row. */
void pdf_table_row(pdf_table *tb, const char *const *cells, int style, HPDF_REAL size,
                   HPDF_REAL gray, HPDF_REAL indent, bool rule);
void pdf_table_done(pdf_table *tb);
/* A section title in the brand colour; keeps `keep` points below it on the page. */
void pdf_section(pdf_ctx *c, const char *title, HPDF_REAL keep);

/* Progress: calls fn every PDF_PROGRESS_EVERY rows and at the end. */
static inline void pdf_progress(pdf_progress_fn fn, void *arg, size_t done, size_t total) {
    if (fn && (done % PDF_PROGRESS_EVERY == 0 || done == total)) fn(arg, done, total);
}

#endif
