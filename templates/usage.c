/* usage.c — the usage report layout: totals, one daily bar chart per metric,
 * an hourly appendix.
 *
 * DESIGN — Chart scales are computed from the exact decimals (dec_t): the axis
 * maximum is the smallest "nice" multiple (1, 2 or 5 × 10^k, at most five
 * intervals) at or above the largest day; each bar's height is value / max in
 * integer ten-thousandths, and only that fraction becomes geometry (points).
 * Tick labels are exact decimals.  The appendix lists every given hour, up
 * to five metrics per table (more metrics give more tables), with the
 * header repeated on every page.
 */
#include "fmacros.h"
#include "pdf_int.h"
#include "dec.h"
#include <stdlib.h>

#define CHART_H           150.0f
#define AXIS_W            56.0f
#define METRICS_PER_TABLE 5

static int parse_dec(pdf_ctx *c, const char *s, dec_t *out, const char *what, size_t i, size_t j) {
    if (!s) {
        *out = dec_zero();
        return 0;
    }
    if (dec_parse_cstr(out, s) != DEC_OK) {
        pdf_fail(c, "usage.metrics[%zu].%s[%zu]: \"%.40s\" is not a decimal", i, what, j, s);
        return -1;
    }
    return 0;
}

/* Smallest step in {1,2,5}·10^k with step * 5 >= max; axis = ceil(max/step) steps. */
static void nice_axis(const dec_t *max, dec_t *step, int *nticks) {
    static const int m[3] = {1, 2, 5};
    dec_t five = dec_from_int(5);
    for (int k = -6; k <= 36; k++) {
        for (int i = 0; i < 3; i++) {
            dec_t s = {m[i], 0};
            if (k < 0)
                s.scale = -k;
            else
                for (int z = 0; z < k; z++) s.c *= 10;
            dec_t s5;
            if (dec_mul(&s5, &s, &five) != DEC_OK) continue;
            if (dec_cmp(&s5, max) >= 0) {
                *step = s;
                int n = 1;
                dec_t acc = s;
                while (dec_cmp(&acc, max) < 0 && n < 5) {
                    dec_add(&acc, &acc, &s);
                    n++;
                }
                *nticks = n;
                return;
            }
        }
    }
    *step = *max; /* beyond 5·10^36: one interval */
    *nticks = 1;
}

static void short_day(const char *d, char *out, size_t cap) {
    if (d && strlen(d) == 10 && d[4] == '-' && d[7] == '-')
        snprintf(out, cap, "%.5s", d + 5);
    else
        snprintf(out, cap, "%.10s", d ? d : "");
}

static void draw_chart(pdf_ctx *c, const pdf_usage *u, size_t mi) {
    const pdf_metric *m = &u->metrics[mi];
    const pdf_template *t = c->t;
    char title[300];
    snprintf(title, sizeof title, "%s \xE2\x80\x94 %s%s%s%s", t->labels[PDF_L_DAILY],
             m->name ? m->name : m->code, m->unit ? " (" : "", m->unit ? m->unit : "",
             m->unit ? ")" : "");
    pdf_section(c, title, CHART_H + 40);
    if (u->n_days == 0) {
        pdf_text(c, "No days in this range.", PDF_REG, 9, c->left, c->y - 10, PDF_LEFT);
        c->y -= 20;
        return;
    }
    dec_t *v = calloc(u->n_days, sizeof *v);
    if (!v) {
        pdf_fail(c, "out of memory");
        return;
    }
    dec_t max = dec_zero();
    for (size_t j = 0; j < u->n_days; j++) {
        if (parse_dec(c, m->daily ? m->daily[j] : NULL, &v[j], "daily", mi, j) < 0) break;
        if (dec_sign(&v[j]) < 0) v[j] = dec_zero(); /* usage is not negative; never draw down */
        max = dec_max(&max, &v[j]);
    }
    if (c->failed) {
        free(v);
        return;
    }
    dec_t step;
    int nt;
    if (dec_is_zero(&max)) {
        step = dec_from_int(1);
        nt = 1;
    } else {
        nice_axis(&max, &step, &nt);
    }
    dec_t axis = step, ntd = dec_from_int(nt);
    if (dec_mul(&axis, &step, &ntd) != DEC_OK) axis = max;

    HPDF_REAL x0 = c->left + AXIS_W, x1 = c->right - 8;
    HPDF_REAL y1 = c->y - 14, y0 = y1 - CHART_H;
    /* unit above the y axis */
    pdf_fill_rgb(c, 0.35f, 0.35f, 0.35f);
    if (m->unit) pdf_text(c, m->unit, PDF_REG, 7, x0 - 6, y1 + 4, PDF_RIGHT);
    /* grid + y ticks and labels */
    for (int i = 0; i <= nt; i++) {
        dec_t tick, id = dec_from_int(i);
        char lab[DEC_FMT_MAX];
        if (dec_mul(&tick, &step, &id) != DEC_OK) break;
        tick = dec_normalize(&tick);
        if (dec_format(&tick, lab, sizeof lab) < 0) break;
        HPDF_REAL y = y0 + CHART_H * (HPDF_REAL)i / (HPDF_REAL)nt;
        if (i > 0) pdf_hline(c, x0, x1, y, 0.3f, 0.85f);
        pdf_hline(c, x0 - 3, x0, y, 0.6f, 0.2f);
        pdf_text(c, lab, PDF_REG, 7, x0 - 5, y - 2.5f, PDF_RIGHT);
    }
    /* bars: one path, one fill */
    HPDF_REAL slot = (x1 - x0) / (HPDF_REAL)u->n_days, bw = slot * 0.7f;
    pdf_end_text(c);
    pdf_fill_brand(c);
    bool any = false;
    dec_t tenk = dec_from_int(10000);
    for (size_t j = 0; j < u->n_days && !c->failed; j++) {
        dec_t num, q;
        int64_t frac = 10000;
        if (dec_mul(&num, &v[j], &tenk) == DEC_OK &&
            dec_div(&q, &num, &axis, 0, DEC_ROUND_HALF_UP) == DEC_OK)
            dec_to_int(&q, &frac);
        if (frac <= 0) continue;
        if (frac > 10000) frac = 10000;
        HPDF_REAL h = CHART_H * (HPDF_REAL)frac / 10000.0f;
        pdf_ck(c,
               HPDF_Page_Rectangle(c->page, x0 + slot * (HPDF_REAL)j + (slot - bw) / 2, y0, bw, h),
               "HPDF_Page_Rectangle");
        any = true;
    }
    if (any && !c->failed) pdf_ck(c, HPDF_Page_Fill(c->page), "HPDF_Page_Fill");
    /* axes */
    pdf_vline(c, x0, y0, y1, 0.8f, 0.1f);
    pdf_hline(c, x0, x1, y0, 0.8f, 0.1f);
    /* x ticks + labels, as many as fit */
    pdf_fill_rgb(c, 0.2f, 0.2f, 0.2f);
    pdf_enc sample = pdf_encode(c, "00-00", &c->enc, false);
    HPDF_REAL lw = pdf_width(c, sample, PDF_REG, 7) + 6;
    size_t every = (size_t)(lw / slot) + 1;
    for (size_t j = 0; j < u->n_days && !c->failed; j += every) {
        char lab[16];
        HPDF_REAL cx = x0 + slot * ((HPDF_REAL)j + 0.5f);
        pdf_vline(c, cx, y0, y0 - 3, 0.6f, 0.2f);
        short_day(u->days ? u->days[j] : NULL, lab, sizeof lab);
        pdf_text(c, lab, PDF_REG, 7, cx, y0 - 11, PDF_CENTER);
    }
    pdf_fill_rgb(c, 0, 0, 0);
    free(v);
    c->y = y0 - 28;
}

static void hour_label(const char *h, char *out, size_t cap) {
    /* "2024-05-01T13:00:00Z" → "2024-05-01 13:00" */
    if (h && strlen(h) >= 16 && h[10] == 'T')
        snprintf(out, cap, "%.10s %.5s", h, h + 11);
    else
        snprintf(out, cap, "%.40s", h ? h : "");
}

static void draw_appendix(pdf_ctx *c, const pdf_usage *u) {
    const pdf_template *t = c->t;
    size_t total = u->n_hours * ((u->n_metrics + METRICS_PER_TABLE - 1) / METRICS_PER_TABLE),
           done = 0;
    for (size_t g = 0; g < u->n_metrics && !c->failed; g += METRICS_PER_TABLE) {
        size_t k = u->n_metrics - g < METRICS_PER_TABLE ? u->n_metrics - g : METRICS_PER_TABLE;
        pdf_new_page(c);
        if (c->failed) break;
        pdf_fill_brand(c);
        pdf_text(c, t->labels[PDF_L_HOURLY], PDF_BOLD, 14, c->left, c->y - 14, PDF_LEFT);
        pdf_fill_rgb(c, 0, 0, 0);
        c->y -= 26;
        pdf_table tb;
        pdf_table_init(&tb, c);
        HPDF_REAL hw = 110, mw = (c->right - c->left - hw) / (HPDF_REAL)k;
        tb.ncols = k + 1;
        tb.cols[0] = (pdf_col){c->left, hw, PDF_LEFT};
        tb.heads[0] = t->labels[PDF_L_HOUR];
        for (size_t i = 0; i < k; i++) {
            tb.cols[i + 1] = (pdf_col){c->left + hw + mw * (HPDF_REAL)i, mw, PDF_RIGHT};
            tb.heads[i + 1] =
                u->metrics[g + i].name ? u->metrics[g + i].name : u->metrics[g + i].code;
        }
        pdf_table_header(&tb);
        for (size_t h = 0; h < u->n_hours && !c->failed; h++) {
            char lab[48];
            const char *cells[PDF_TABLE_MAX_COLS];
            hour_label(u->hours ? u->hours[h] : NULL, lab, sizeof lab);
            cells[0] = lab;
            for (size_t i = 0; i < k; i++) {
                const pdf_metric *m = &u->metrics[g + i];
                cells[i + 1] = m->hourly && m->hourly[h] ? m->hourly[h] : "0";
            }
            pdf_table_row(&tb, cells, PDF_REG, 8, 0, 0, false);
            pdf_progress(u->progress, u->progress_arg, ++done, total);
        }
        pdf_table_done(&tb);
    }
}

int pdf_render_usage(const pdf_template *t, const pdf_usage *u, buf *out, char *err,
                     size_t errlen) {
    pdf_renderer r = {0};
    int rc = pdf_renderer_usage(&r, t, u, out, err, errlen);
    pdf_renderer_release(&r);
    return rc;
}

int pdf_renderer_usage(pdf_renderer *r, const pdf_template *t, const pdf_usage *u, buf *out,
                       char *err, size_t errlen) {
    if (!r) {
        snprintf(err, errlen, "pdf: a renderer is required");
        return -1;
    }
    if (!t || !u || !out) {
        snprintf(err, errlen, "pdf: template, report and output are required");
        return -1;
    }
    if ((u->n_metrics && !u->metrics) || (u->n_days && !u->days) || (u->n_hours && !u->hours)) {
        snprintf(err, errlen, "pdf: usage: a count without its array");
        return -1;
    }
    for (size_t i = 0; i < u->n_metrics; i++)
        if (!u->metrics[i].code) {
            snprintf(err, errlen, "pdf: usage.metrics[%zu].code: is required", i);
            return -1;
        }
    pdf_ctx c;
    if (pdf_ctx_begin(&c, r, t, err, errlen) < 0) {
        pdf_ctx_end(&c);
        return -1;
    }
    pdf_party seller = {t->seller_name, t->seller_addr, t->n_seller_addr, t->seller_email,
                        t->seller_tax_id};
    char cont[300], a[40], b[40], tmp[200];
    snprintf(cont, sizeof cont, "%s \xE2\x80\x94 %s (%s)", t->labels[PDF_L_USAGE_REPORT],
             u->customer_name ? u->customer_name : "", t->labels[PDF_L_CONTINUED]);
    c.cont = cont;
    pdf_new_page(&c);
    pdf_draw_letterhead(&c, &seller);
    pdf_fill_brand(&c);
    pdf_text(&c, t->labels[PDF_L_USAGE_REPORT], PDF_BOLD, 20, c.left, c.y - 18, PDF_LEFT);
    pdf_fill_rgb(&c, 0, 0, 0);
    c.y -= 34;

    /* customer, range, generated */
    const char *rows[4][2];
    size_t nr = 0;
    char range[100];
    snprintf(range, sizeof range, "%s \xE2\x80\x93 %s", pdf_date(t, u->from, a, sizeof a),
             pdf_date(t, u->to, b, sizeof b));
    rows[nr][0] = t->labels[PDF_L_CUSTOMER];
    rows[nr++][1] = u->customer_name ? u->customer_name : "";
    if (u->customer_id) {
        rows[nr][0] = "ID";
        rows[nr++][1] = u->customer_id;
    }
    rows[nr][0] = t->labels[PDF_L_RANGE];
    rows[nr++][1] = range;
    if (u->generated_on) {
        rows[nr][0] = t->labels[PDF_L_GENERATED];
        rows[nr++][1] = pdf_date(t, u->generated_on, tmp, sizeof tmp);
    }
    for (size_t i = 0; i < nr; i++) {
        pdf_fill_rgb(&c, 0.4f, 0.4f, 0.4f);
        pdf_text(&c, rows[i][0], PDF_REG, 9, c.left, c.y - 10, PDF_LEFT);
        pdf_fill_rgb(&c, 0, 0, 0);
        c.y -=
            13 * (HPDF_REAL)pdf_text_box(&c, rows[i][1], i == 0 ? PDF_BOLD : PDF_REG, 9.5f, 13,
                                         c.left + 90, c.y - 10, c.right - c.left - 90, PDF_LEFT, 2);
    }
    c.y -= 12;

    /* totals */
    pdf_section(&c, t->labels[PDF_L_TOTALS], 40);
    pdf_table tb;
    pdf_table_init(&tb, &c);
    HPDF_REAL w = c.right - c.left;
    tb.ncols = 4;
    tb.cols[0] = (pdf_col){c.left, w - 320, PDF_LEFT};
    tb.cols[1] = (pdf_col){c.left + w - 320, 120, PDF_LEFT};
    tb.cols[2] = (pdf_col){c.left + w - 200, 90, PDF_LEFT};
    tb.cols[3] = (pdf_col){c.left + w - 110, 110, PDF_RIGHT};
    tb.heads[0] = t->labels[PDF_L_METRIC];
    tb.heads[1] = "Code";
    tb.heads[2] = t->labels[PDF_L_UNIT];
    tb.heads[3] = t->labels[PDF_L_TOTAL];
    pdf_table_header(&tb);
    for (size_t i = 0; i < u->n_metrics && !c.failed; i++) {
        const pdf_metric *m = &u->metrics[i];
        const char *cells[4] = {m->name ? m->name : m->code, m->code, m->unit,
                                m->total ? m->total : "0"};
        pdf_table_row(&tb, cells, PDF_REG, 9, 0, 0, true);
    }
    pdf_table_done(&tb);
    c.y -= 16;

    for (size_t i = 0; i < u->n_metrics && !c.failed; i++) draw_chart(&c, u, i);
    if (u->n_hours && !c.failed) draw_appendix(&c, u);
    if (!u->n_hours) pdf_progress(u->progress, u->progress_arg, 0, 0);

    int rc = pdf_ctx_finish(&c, out, err, errlen);
    pdf_ctx_end(&c);
    return rc;
}
