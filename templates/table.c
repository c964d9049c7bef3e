/* table.c — tables that break across pages with their header repeated.
 *
 * A row is measured first (every cell wrapped in its column), then
 * pdf_need() makes room for it: a page break draws the continuation title
 * and, through c->on_new_page, this table's header row again.  A row taller
 * than a whole page is cut to what fits an empty page.
 */
#include "fmacros.h"
#include "pdf_int.h"

#define HEAD_H    18.0f
#define PAD       4.0f
#define MAX_LINES 64

static void on_page(pdf_ctx *c, void *arg) {
    ML_UNUSED(c);
    pdf_table_header(arg);
}

void pdf_table_init(pdf_table *tb, pdf_ctx *c) {
    memset(tb, 0, sizeof *tb);
    tb->c = c;
    for (size_t i = 0; i < PDF_TABLE_MAX_COLS; i++) buf_init(&tb->cell[i]);
}

void pdf_table_header(pdf_table *tb) {
    pdf_ctx *c = tb->c;
    c->on_new_page = on_page;
    c->on_new_page_arg = tb;
    pdf_fill_brand(c);
    pdf_rect(c, c->left, c->y - HEAD_H, c->right - c->left, HEAD_H);
    pdf_fill_rgb(c, 1, 1, 1);
    for (size_t i = 0; i < tb->ncols; i++) {
        const pdf_col *col = &tb->cols[i];
        pdf_text_box(c, tb->heads[i], PDF_BOLD, 8.5f, 10, col->x + PAD, c->y - 12.5f,
                     col->w - 2 * PAD, col->align, 1);
    }
    pdf_fill_rgb(c, 0, 0, 0);
    c->y -= HEAD_H + 2;
    tb->rule_next = false;
}

void pdf_table_row(pdf_table *tb, const char *const *cells, int style, HPDF_REAL size,
                   HPDF_REAL gray, HPDF_REAL indent, bool rule) {
    pdf_ctx *c = tb->c;
    pdf_enc e[PDF_TABLE_MAX_COLS];
    pdf_span sp[PDF_TABLE_MAX_COLS][MAX_LINES];
    size_t n[PDF_TABLE_MAX_COLS], lines = 1;
    HPDF_REAL leading = size * 1.25f;
    if (c->failed) return;
    for (size_t i = 0; i < tb->ncols; i++) {
        HPDF_REAL in = i == 0 ? indent : 0;
        e[i] = pdf_encode(c, cells[i], &tb->cell[i], true);
        n[i] = e[i].len
                   ? pdf_wrap(c, e[i], style, size, tb->cols[i].w - 2 * PAD - in, sp[i], MAX_LINES)
                   : 0;
        if (n[i] > MAX_LINES) n[i] = MAX_LINES;
        if (n[i] > lines) lines = n[i];
    }
    HPDF_REAL room = c->top - c->bottom - HEAD_H - 30;
    if ((HPDF_REAL)lines * leading + 2 * PAD > room) lines = (size_t)((room - 2 * PAD) / leading);
    HPDF_REAL h = (HPDF_REAL)lines * leading + (rule ? 2 * PAD : PAD);
    if (pdf_need(c, h)) rule = false;
    if (rule && tb->rule_next) pdf_hline(c, c->left, c->right, c->y, 0.4f, 0.82f);
    tb->rule_next = true;
    HPDF_REAL base = c->y - (rule ? PAD : PAD / 2) - size * 0.8f;
    pdf_fill_rgb(c, gray, gray, gray);
    for (size_t i = 0; i < tb->ncols; i++) {
        const pdf_col *col = &tb->cols[i];
        HPDF_REAL in = i == 0 ? indent : 0;
        HPDF_REAL x = col->align == PDF_RIGHT ? col->x + col->w - PAD : col->x + PAD + in;
        for (size_t l = 0; l < n[i] && l < lines; l++)
            pdf_draw(c, e[i], sp[i][l], style, size, x, base - leading * (HPDF_REAL)l, col->align);
    }
    if (gray != 0) pdf_fill_rgb(c, 0, 0, 0);
    c->y -= h;
}

void pdf_table_done(pdf_table *tb) {
    pdf_ctx *c = tb->c;
    if (c->on_new_page_arg == tb) {
        c->on_new_page = NULL;
        c->on_new_page_arg = NULL;
    }
    for (size_t i = 0; i < PDF_TABLE_MAX_COLS; i++) buf_free(&tb->cell[i]);
}

void pdf_section(pdf_ctx *c, const char *title, HPDF_REAL keep) {
    pdf_need(c, 24 + keep);
    pdf_fill_brand(c);
    pdf_text(c, title, PDF_BOLD, 11, c->left, c->y - 12, PDF_LEFT);
    pdf_fill_rgb(c, 0, 0, 0);
    c->y -= 20;
}
