/* invoice.c — the invoice layout.
 *
 * Page 1: letterhead (logo, seller), title with the number, bill-to block and
 * the meta block (number, status, dates, period); then the line table (sub-
 * lines indented, smaller, gray), totals, late usage, notes.  Later pages
 * start with "Invoice N (continued)" and the repeated header row.  Footer and
 * "Page n of m" are stamped on every page at the end (pdf_ctx_finish).
 * Amounts are printed exactly as the model gives them.
 */
#include "fmacros.h"
#include "pdf_int.h"
#include <stdlib.h>

static const struct {
    const char *status;
    const char *watermark;
    const char *shown;
} pdf_statuses[] = {
    {"draft", "DRAFT", "Draft"},    {"pending_approval", "DRAFT", "Pending approval"},
    {"approved", NULL, "Approved"}, {"issued", NULL, "Issued"},
    {"paid", NULL, "Paid"},         {"void", "VOID", "Void"},
};

static HPDF_REAL col_width(int col) {
    switch (col) {
    case PDF_COL_QUANTITY:
        return 72;
    case PDF_COL_UNIT_PRICE:
        return 82;
    case PDF_COL_AMOUNT:
        return 92;
    default:
        return 0;
    }
}

static const char *cell_of(int col, const char *desc, const char *qty, const char *up,
                           const char *amt) {
    switch (col) {
    case PDF_COL_DESCRIPTION:
        return desc;
    case PDF_COL_QUANTITY:
        return qty;
    case PDF_COL_UNIT_PRICE:
        return up;
    default:
        return amt;
    }
}

/* Bill-to (left) and meta (right) blocks side by side. */
static void draw_parties(pdf_ctx *c, const pdf_invoice *inv, const char *status_shown) {
    const pdf_template *t = c->t;
    HPDF_REAL y0 = c->y, half = (c->right - c->left) / 2;
    /* bill to */
    HPDF_REAL y = y0 - 9;
    pdf_fill_brand(c);
    pdf_text(c, t->labels[PDF_L_BILL_TO], PDF_BOLD, 8.5f, c->left, y, PDF_LEFT);
    pdf_fill_rgb(c, 0, 0, 0);
    y -= 14;
    y -= 12.5f * (HPDF_REAL)(pdf_text_box(c, inv->bill_to.name, PDF_BOLD, 10.5f, 12.5f, c->left, y,
                                          half - 20, PDF_LEFT, 3));
    for (size_t i = 0; i < inv->bill_to.n_address; i++)
        y -= 11 * (HPDF_REAL)pdf_text_box(c, inv->bill_to.address[i], PDF_REG, 9, 11, c->left, y,
                                          half - 20, PDF_LEFT, 2);
    if (inv->bill_to.tax_id && *inv->bill_to.tax_id) {
        char tmp[160];
        snprintf(tmp, sizeof tmp, "%s: %s", t->labels[PDF_L_TAX_ID], inv->bill_to.tax_id);
        y -= 11 *
             (HPDF_REAL)pdf_text_box(c, tmp, PDF_REG, 9, 11, c->left, y, half - 20, PDF_LEFT, 1);
    }
    if (inv->bill_to.email && *inv->bill_to.email)
        y -= 11 * (HPDF_REAL)pdf_text_box(c, inv->bill_to.email, PDF_REG, 9, 11, c->left, y,
                                          half - 20, PDF_LEFT, 1);
    HPDF_REAL yl = y;

    /* meta: label left in gray, value right-aligned */
    char d1[40], d2[40], period[96];
    const char *rows[5][2];
    size_t nr = 0;
    rows[nr][0] = t->labels[PDF_L_NUMBER];
    rows[nr++][1] = inv->number ? inv->number : t->labels[PDF_L_DRAFT];
    rows[nr][0] = t->labels[PDF_L_STATUS];
    rows[nr++][1] = status_shown;
    if (inv->issue_date) {
        rows[nr][0] = t->labels[PDF_L_ISSUE_DATE];
        rows[nr++][1] = pdf_date(t, inv->issue_date, d1, sizeof d1);
    }
    if (inv->due_date) {
        rows[nr][0] = t->labels[PDF_L_DUE_DATE];
        rows[nr++][1] = pdf_date(t, inv->due_date, d2, sizeof d2);
    }
    if (inv->period_start || inv->period_end) {
        char a[40], b[40];
        snprintf(period, sizeof period, "%s \xE2\x80\x93 %s",
                 pdf_date(t, inv->period_start, a, sizeof a),
                 pdf_date(t, inv->period_end, b, sizeof b));
        rows[nr][0] = t->labels[PDF_L_PERIOD];
        rows[nr++][1] = period;
    }
    y = y0 - 9;
    HPDF_REAL mx = c->left + half + 20;
    for (size_t i = 0; i < nr; i++, y -= 13) {
        pdf_fill_rgb(c, 0.4f, 0.4f, 0.4f);
        pdf_text(c, rows[i][0], PDF_REG, 9, mx, y, PDF_LEFT);
        pdf_fill_rgb(c, 0, 0, 0);
        pdf_text_box(c, rows[i][1], PDF_BOLD, 9, 11, mx + 90, y, c->right - mx - 90, PDF_RIGHT, 1);
    }
    c->y = (y < yl ? y : yl) - 14;
}

static void draw_totals(pdf_ctx *c, const pdf_invoice *inv) {
    const pdf_template *t = c->t;
    char tmp[160];
    HPDF_REAL bw = 240, x0 = c->right - bw;
    HPDF_REAL h = 14 * 3 + 16;
    pdf_need(c, h + 8);
    HPDF_REAL y = c->y - 16;
    pdf_text(c, t->labels[PDF_L_SUBTOTAL], PDF_REG, 9.5f, x0, y, PDF_LEFT);
    pdf_text(c, inv->subtotal, PDF_REG, 9.5f, c->right - 4, y, PDF_RIGHT);
    y -= 14;
    if (inv->tax) {
        pdf_text(c, inv->tax_label ? inv->tax_label : t->labels[PDF_L_TAX], PDF_REG, 9.5f, x0, y,
                 PDF_LEFT);
        pdf_text(c, inv->tax, PDF_REG, 9.5f, c->right - 4, y, PDF_RIGHT);
        y -= 8;
    } else {
        y += 6;
    }
    pdf_hline(c, x0, c->right, y, 0.8f, 0.2f);
    y -= 15;
    pdf_fill_brand(c);
    pdf_text(c, t->labels[PDF_L_TOTAL], PDF_BOLD, 12, x0, y, PDF_LEFT);
    snprintf(tmp, sizeof tmp, "%s %s", inv->total ? inv->total : "",
             inv->currency ? inv->currency : "");
    pdf_text(c, tmp, PDF_BOLD, 12, c->right - 4, y, PDF_RIGHT);
    pdf_fill_rgb(c, 0, 0, 0);
    c->y = y - 18;
}

static void draw_late(pdf_ctx *c, const pdf_invoice *inv) {
    const pdf_template *t = c->t;
    if (!inv->n_late_usage) return;
    pdf_section(c, t->labels[PDF_L_LATE_USAGE], 40);
    pdf_table tb;
    pdf_table_init(&tb, c);
    HPDF_REAL w = c->right - c->left, nw = 90;
    tb.ncols = 4;
    tb.cols[0] = (pdf_col){c->left, w - 3 * nw, PDF_LEFT};
    for (int i = 1; i < 4; i++)
        tb.cols[i] = (pdf_col){c->left + w - (HPDF_REAL)(4 - i) * nw, nw, PDF_RIGHT};
    tb.heads[0] = t->labels[PDF_L_METRIC];
    tb.heads[1] = t->labels[PDF_L_BILLED];
    tb.heads[2] = t->labels[PDF_L_CURRENT];
    tb.heads[3] = t->labels[PDF_L_LATE];
    pdf_table_header(&tb);
    for (size_t i = 0; i < inv->n_late_usage && !c->failed; i++) {
        const pdf_late_usage *l = &inv->late_usage[i];
        const char *cells[4] = {l->metric, l->billed, l->current, l->late};
        pdf_table_row(&tb, cells, PDF_REG, 9, 0, 0, true);
    }
    pdf_table_done(&tb);
    c->y -= 10;
}

static void draw_notes(pdf_ctx *c, const pdf_invoice *inv) {
    if (!inv->notes || !*inv->notes) return;
    pdf_section(c, c->t->labels[PDF_L_NOTES], 12);
    buf nb;
    buf_init(&nb);
    pdf_enc e = pdf_encode(c, inv->notes, &nb, true);
    HPDF_REAL w = c->right - c->left;
    size_t n = pdf_wrap(c, e, PDF_REG, 9, w, NULL, 0);
    pdf_span *sp = calloc(n ? n : 1, sizeof *sp);
    if (!sp) {
        pdf_fail(c, "out of memory");
    } else {
        pdf_wrap(c, e, PDF_REG, 9, w, sp, n);
        for (size_t i = 0; i < n && !c->failed; i++) {
            pdf_need(c, 11.5f);
            pdf_draw(c, e, sp[i], PDF_REG, 9, c->left, c->y - 9, PDF_LEFT);
            c->y -= 11.5f;
        }
    }
    free(sp);
    buf_free(&nb);
}

int pdf_render_invoice(const pdf_template *t, const pdf_invoice *inv, buf *out, char *err,
                       size_t errlen) {
    pdf_renderer r = {0};
    int rc = pdf_renderer_invoice(&r, t, inv, out, err, errlen);
    pdf_renderer_release(&r);
    return rc;
}

int pdf_renderer_invoice(pdf_renderer *r, const pdf_template *t, const pdf_invoice *inv, buf *out,
                         char *err, size_t errlen) {
    if (!r) {
        snprintf(err, errlen, "pdf: a renderer is required");
        return -1;
    }
    if (!t || !inv || !out) {
        snprintf(err, errlen, "pdf: template, invoice and output are required");
        return -1;
    }
    if ((inv->n_lines && !inv->lines) || (inv->n_late_usage && !inv->late_usage) ||
        (inv->bill_to.n_address && !inv->bill_to.address)) {
        snprintf(err, errlen, "pdf: invoice: a count without its array");
        return -1;
    }
    const char *watermark = NULL, *shown = NULL;
    for (size_t i = 0; i < ML_ARRAY_LEN(pdf_statuses); i++)
        if (inv->status && strcmp(inv->status, pdf_statuses[i].status) == 0) {
            watermark = pdf_statuses[i].watermark;
            shown = pdf_statuses[i].shown;
        }
    if (!shown) {
        snprintf(err, errlen, "pdf: invoice.status: unknown status \"%s\"",
                 inv->status ? inv->status : "(null)");
        return -1;
    }
    size_t total_rows = inv->n_lines, done = 0;
    for (size_t i = 0; i < inv->n_lines; i++) {
        if (inv->lines[i].n_sub_lines && !inv->lines[i].sub_lines) {
            snprintf(err, errlen, "pdf: invoice.lines[%zu]: n_sub_lines without sub_lines", i);
            return -1;
        }
        total_rows += inv->lines[i].n_sub_lines;
    }

    pdf_ctx c;
    if (pdf_ctx_begin(&c, r, t, err, errlen) < 0) {
        pdf_ctx_end(&c);
        return -1;
    }
    c.watermark = watermark;
    pdf_party seller = {t->seller_name, t->seller_addr, t->n_seller_addr, t->seller_email,
                        t->seller_tax_id};
    if (inv->seller) seller = *inv->seller;

    char title[200], cont[240];
    snprintf(title, sizeof title, "%s %s", t->labels[PDF_L_INVOICE],
             inv->number ? inv->number : t->labels[PDF_L_DRAFT]);
    snprintf(cont, sizeof cont, "%s \xE2\x80\x94 %s (%s)", seller.name ? seller.name : "", title,
             t->labels[PDF_L_CONTINUED]);
    c.cont = cont;

    pdf_new_page(&c);
    pdf_draw_letterhead(&c, &seller);
    pdf_fill_brand(&c);
    pdf_text(&c, title, PDF_BOLD, 20, c.left, c.y - 18, PDF_LEFT);
    pdf_fill_rgb(&c, 0, 0, 0);
    c.y -= 34;
    draw_parties(&c, inv, shown);

    /* the line table */
    pdf_table tb;
    pdf_table_init(&tb, &c);
    HPDF_REAL fixed = 0;
    for (size_t i = 0; i < t->n_cols; i++) fixed += col_width(t->cols[i]);
    HPDF_REAL x = c.left;
    char amount_head[120];
    snprintf(amount_head, sizeof amount_head, "%s%s%s%s", t->labels[PDF_L_AMOUNT],
             inv->currency ? " (" : "", inv->currency ? inv->currency : "",
             inv->currency ? ")" : "");
    for (size_t i = 0; i < t->n_cols; i++) {
        int k = t->cols[i];
        HPDF_REAL w = k == PDF_COL_DESCRIPTION ? c.right - c.left - fixed : col_width(k);
        tb.cols[i] = (pdf_col){x, w, k == PDF_COL_DESCRIPTION ? PDF_LEFT : PDF_RIGHT};
        tb.heads[i] = k == PDF_COL_DESCRIPTION  ? t->labels[PDF_L_DESCRIPTION]
                      : k == PDF_COL_QUANTITY   ? t->labels[PDF_L_QUANTITY]
                      : k == PDF_COL_UNIT_PRICE ? t->labels[PDF_L_UNIT_PRICE]
                                                : amount_head;
        x += w;
    }
    tb.ncols = t->n_cols;
    pdf_need(&c, 60);
    pdf_table_header(&tb);
    for (size_t i = 0; i < inv->n_lines && !c.failed; i++) {
        const pdf_line *l = &inv->lines[i];
        const char *cells[PDF_COL_N];
        for (size_t k = 0; k < t->n_cols; k++)
            cells[k] = cell_of(t->cols[k], l->description, l->quantity, l->unit_price, l->amount);
        pdf_table_row(&tb, cells, PDF_REG, 9, 0, 0, true);
        pdf_progress(inv->progress, inv->progress_arg, ++done, total_rows);
        for (size_t j = 0; j < l->n_sub_lines && !c.failed; j++) {
            const pdf_sub_line *s = &l->sub_lines[j];
            for (size_t k = 0; k < t->n_cols; k++)
                cells[k] =
                    cell_of(t->cols[k], s->description, s->quantity, s->unit_price, s->amount);
            pdf_table_row(&tb, cells, PDF_REG, 8, 0.33f, 14, false);
            pdf_progress(inv->progress, inv->progress_arg, ++done, total_rows);
        }
    }
    pdf_table_done(&tb);
    if (total_rows == 0) pdf_progress(inv->progress, inv->progress_arg, 0, 0);
    pdf_hline(&c, c.left, c.right, c.y, 0.6f, 0.5f);

    draw_totals(&c, inv);
    draw_late(&c, inv);
    draw_notes(&c, inv);

    int rc = pdf_ctx_finish(&c, out, err, errlen);
    pdf_ctx_end(&c);
    return rc;
}
