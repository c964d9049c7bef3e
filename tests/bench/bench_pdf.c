/* bench_pdf.c — our side of tests/bench/run-pdf: invoices rendered to memory.
 *
 *   bench_pdf --html latin|greek          the equivalent HTML invoice (40 lines) on stdout,
 *                                         for Chromium's side
 *   bench_pdf --pdf latin|greek FILE      one PDF of it (to look at)
 *   bench_pdf [--seconds S] [--case NAME] measure (every case, or one); JSON lines:
 *     {"case":"latin_40",...}   40-line invoice, Latin customer (Helvetica only)
 *     {"case":"greek_40",...}   the same with a Greek customer (DejaVu embedded)
 *     {"case":"latin_40_renderer",...} / {"case":"greek_40_renderer",...}
 *                               the same through one pdf_renderer kept across renders
 *     {"case":"mixed_40",...}   a customer name mixing Greek and Latin-1 (DejaVu as UTF-8)
 *     {"case":"latin_1000",...} a 1,000-line invoice: ms per render (p50, max)
 *     {"case":"template_load",...} default template + an organization override
 *
 * The template is loaded once, as a worker that caches it per organization
 * would; template_load says what a reload costs.  The plain cases render
 * one-shot (pdf_render_invoice: libharu and DejaVu Sans set up per PDF), the
 * _renderer ones reuse one pdf_renderer.  Single thread.
 */
#include "fmacros.h"
#include "pdf.h"

#include <stdlib.h>
#include <time.h>

static const char *const latin_name = "Zürich Höfe Logistik AG";
static const char *const greek_name = "Αθήνα Ενέργεια Α.Ε.";
/* Greek and a "ü": no single-byte code page has both, so DejaVu Sans as UTF-8 */
static const char *const mixed_name = "Αθήνα Ενέργεια Zürich AG";
static const char *const addr[] = {"Bahnhofstrasse 1", "8001 Zürich", "Switzerland"};
static const char *const products[] = {"API calls", "Compute minutes",  "Storage GB-hours",
                                       "Trips",     "Data transfer GB", "Seats"};

typedef struct model {
    pdf_invoice inv;
    pdf_line *lines;
    char (*text)[4][48];
} model;

static void model_build(model *m, const char *customer, size_t n) {
    memset(m, 0, sizeof *m);
    m->lines = calloc(n, sizeof *m->lines);
    m->text = calloc(n, sizeof *m->text);
    if (!m->lines || !m->text) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(m->text[i][0], 48, "%s \xE2\x80\x94 tier %zu (site %04zu)",
                 products[i % ML_ARRAY_LEN(products)], i % 3 + 1, i + 1);
        snprintf(m->text[i][1], 48, "%zu", 1000 + i * 37);
        snprintf(m->text[i][2], 48, "0.%04zu", 100 + i % 50);
        snprintf(m->text[i][3], 48, "%zu.%02zu", 10 + i * 3, i % 100);
        m->lines[i] = (pdf_line){
            "usage", m->text[i][0], m->text[i][1], m->text[i][2], m->text[i][3], NULL, 0};
    }
    pdf_invoice *v = &m->inv;
    v->number = "INV-2024-0042";
    v->status = "issued";
    v->currency = "EUR";
    v->issue_date = "2024-06-01";
    v->due_date = "2024-06-15";
    v->period_start = "2024-05-01";
    v->period_end = "2024-05-31";
    v->bill_to = (pdf_party){customer, addr, 3, "ap@customer.example", "CHE-123.456.789"};
    v->lines = m->lines;
    v->n_lines = n;
    v->subtotal = "12345.67";
    v->tax_label = "VAT 8.1%";
    v->tax = "1000.00";
    v->total = "13345.67";
    v->notes = "Payment within 14 days to IBAN CH00 0000 0000 0000 0000 0. Thank you.";
}

static void model_free(model *m) {
    free(m->lines);
    free(m->text);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void html_escape(const char *s) {
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", stdout);
        else if (*s == '>')
            fputs("&gt;", stdout);
        else if (*s == '&')
            fputs("&amp;", stdout);
        else
            putchar(*s);
    }
}

/* The same invoice as HTML + CSS, laid out like the PDF (A4, same blocks). */
static void print_html(const pdf_invoice *v) {
    fputs("<!doctype html><html><head><meta charset=\"utf-8\"><style>"
          "@page{size:A4;margin:17mm 17mm 14mm 17mm}"
          "body{font-family:Helvetica,Arial,sans-serif;font-size:9pt;color:#000}"
          ".top{display:flex;justify-content:space-between}"
          ".logo{width:110px;height:30px;background:#1F5FAD;border-radius:6px}"
          ".seller{text-align:right}.seller b{font-size:11pt}"
          "h1{color:#1F5FAD;font-size:20pt;margin:16px 0}"
          ".parties{display:flex;justify-content:space-between}"
          ".meta td{padding:1px 8px}.meta td:first-child{color:#666}"
          "table.lines{width:100%;border-collapse:collapse;margin-top:14px}"
          "table.lines th{background:#1F5FAD;color:#fff;text-align:left;padding:4px}"
          "table.lines td{padding:4px;border-top:0.4pt solid #d0d0d0}"
          ".r{text-align:right}thead{display:table-header-group}"
          ".totals{width:240px;margin-left:auto;margin-top:10px}"
          ".totals .t{color:#1F5FAD;font-weight:bold;font-size:12pt}"
          "</style></head><body>",
          stdout);
    fputs("<div class=\"top\"><div class=\"logo\"></div><div class=\"seller\"><b>Meterline</b>"
          "<br>1 Meter Lane<br>10115 Berlin<br>Germany<br>billing@meterline.example</div></div>",
          stdout);
    printf("<h1>Invoice %s</h1><div class=\"parties\"><div><b style=\"color:#1F5FAD\">Bill "
           "to</b><br><b>",
           v->number);
    html_escape(v->bill_to.name);
    fputs("</b>", stdout);
    for (size_t i = 0; i < v->bill_to.n_address; i++) {
        fputs("<br>", stdout);
        html_escape(v->bill_to.address[i]);
    }
    printf("<br>%s</div><table class=\"meta\"><tr><td>Invoice number</td><td "
           "class=\"r\"><b>%s</b></td></tr><tr><td>Status</td><td class=\"r\"><b>Issued</b></td>"
           "</tr><tr><td>Issue date</td><td class=\"r\"><b>%s</b></td></tr><tr><td>Due "
           "date</td><td class=\"r\"><b>%s</b></td></tr><tr><td>Billing period</td><td "
           "class=\"r\"><b>%s – %s</b></td></tr></table></div>",
           v->bill_to.email, v->number, v->issue_date, v->due_date, v->period_start, v->period_end);
    printf("<table class=\"lines\"><thead><tr><th>Description</th><th class=\"r\">Quantity</th>"
           "<th class=\"r\">Unit price</th><th class=\"r\">Amount (%s)</th></tr></thead><tbody>",
           v->currency);
    for (size_t i = 0; i < v->n_lines; i++) {
        const pdf_line *l = &v->lines[i];
        fputs("<tr><td>", stdout);
        html_escape(l->description);
        printf("</td><td class=\"r\">%s</td><td class=\"r\">%s</td><td class=\"r\">%s</td></tr>",
               l->quantity, l->unit_price, l->amount);
    }
    printf("</tbody></table><table class=\"totals\"><tr><td>Subtotal</td><td "
           "class=\"r\">%s</td></tr><tr><td>%s</td><td class=\"r\">%s</td></tr><tr "
           "class=\"t\"><td>Total</td><td class=\"r\">%s %s</td></tr></table>",
           v->subtotal, v->tax_label, v->tax, v->total, v->currency);
    printf("<h3 style=\"color:#1F5FAD\">Notes</h3><p>%s</p>", v->notes);
    fputs("<div style=\"position:fixed;bottom:0;font-size:8pt;color:#555\">Thank you for your "
          "business. Questions about this document: billing@meterline.example</div>"
          "</body></html>\n",
          stdout);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One render: with r (a pdf_renderer kept across renders) or one-shot. */
static int render(pdf_renderer *r, const pdf_template *t, const pdf_invoice *inv, buf *b, char *err,
                  size_t errlen) {
    return r ? pdf_renderer_invoice(r, t, inv, b, err, errlen)
             : pdf_render_invoice(t, inv, b, err, errlen);
}

static void throughput(const pdf_template *t, pdf_renderer *r, const char *name,
                       const char *customer, double seconds) {
    model m;
    model_build(&m, customer, 40);
    buf b;
    buf_init(&b);
    char err[256];
    size_t n = 0, bytes = 0;
    for (int w = 0; w < 20; w++) { /* warm up */
        b.len = 0;
        if (render(r, t, &m.inv, &b, err, sizeof err) < 0) {
            fprintf(stderr, "render: %s\n", err);
            exit(1);
        }
    }
    double t0 = now(), t1;
    do {
        for (int k = 0; k < 10; k++) {
            b.len = 0;
            if (render(r, t, &m.inv, &b, err, sizeof err) < 0) {
                fprintf(stderr, "render: %s\n", err);
                exit(1);
            }
            n++;
        }
        bytes = b.len;
        t1 = now();
    } while (t1 - t0 < seconds);
    printf("{\"side\":\"libharu\",\"case\":\"%s\",\"lines\":40,\"renderer\":%s,\"renders\":%zu,"
           "\"seconds\":%.3f,\"pdfs_per_s\":%.1f,\"ms_per_pdf\":%.3f,\"bytes\":%zu}\n",
           name, r ? "true" : "false", n, t1 - t0, (double)n / (t1 - t0),
           (t1 - t0) * 1000 / (double)n, bytes);
    fflush(stdout);
    buf_free(&b);
    model_free(&m);
}

static void big(const pdf_template *t) {
    model m;
    model_build(&m, latin_name, 1000);
    buf b;
    buf_init(&b);
    char err[256];
    enum { RUNS = 30 };
    double ms[RUNS];
    for (int r = -3; r < RUNS; r++) {
        b.len = 0;
        double t0 = now();
        if (pdf_render_invoice(t, &m.inv, &b, err, sizeof err) < 0) {
            fprintf(stderr, "render: %s\n", err);
            exit(1);
        }
        if (r >= 0) ms[r] = (now() - t0) * 1000;
    }
    qsort(ms, RUNS, sizeof ms[0], cmp_double);
    printf("{\"side\":\"libharu\",\"case\":\"latin_1000\",\"lines\":1000,\"renders\":%d,"
           "\"ms_p50\":%.2f,\"ms_max\":%.2f,\"bytes\":%zu,\"goal_ms\":20}\n",
           RUNS, ms[RUNS / 2], ms[RUNS - 1], b.len);
    fflush(stdout);
    buf_free(&b);
    model_free(&m);
}

static void template_load(double seconds) {
    static const char ov[] =
        "{\"seller\": {\"name\": \"Acme GmbH\"}, \"brand_color\": \"#aa0011\"}";
    size_t len, n = 0;
    const char *d = pdf_template_default(&len);
    char err[256];
    double t0 = now(), t1;
    do {
        pdf_template *t;
        if (pdf_template_load(d, len, ov, sizeof ov - 1, &t, err, sizeof err) < 0) {
            fprintf(stderr, "template: %s\n", err);
            exit(1);
        }
        pdf_template_free(t);
        n++;
        t1 = now();
    } while (t1 - t0 < seconds);
    printf("{\"side\":\"libharu\",\"case\":\"template_load\",\"loads\":%zu,\"us_per_load\":%.1f}\n",
           n, (t1 - t0) * 1e6 / (double)n);
}

int main(int argc, char **argv) {
    double seconds = 3;
    size_t len;
    const char *d = pdf_template_default(&len);
    pdf_template *t;
    char err[256];
    if (pdf_template_load(d, len, NULL, 0, &t, err, sizeof err) < 0) {
        fprintf(stderr, "template: %s\n", err);
        return 1;
    }
    if (argc >= 3 && (strcmp(argv[1], "--html") == 0 || strcmp(argv[1], "--pdf") == 0)) {
        model m;
        model_build(&m, strcmp(argv[2], "greek") == 0 ? greek_name : latin_name, 40);
        int rc = 0;
        if (argv[1][2] == 'h') {
            print_html(&m.inv);
        } else {
            buf b;
            buf_init(&b);
            FILE *f = argc >= 4 ? fopen(argv[3], "wb") : NULL;
            if (!f || pdf_render_invoice(t, &m.inv, &b, err, sizeof err) < 0 ||
                fwrite(b.p, 1, b.len, f) != b.len || fclose(f) != 0) {
                fprintf(stderr, "cannot write the PDF: %s\n", f ? err : "no file");
                rc = 1;
            }
            buf_free(&b);
        }
        model_free(&m);
        pdf_template_free(t);
        return rc;
    }
    const char *only = NULL; /* --case NAME: one measurement (for profiling) */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--case") == 0)
            only = argv[i + 1];
    }
#define WANT(n) (!only || strcmp(only, n) == 0)
    pdf_renderer *r = pdf_renderer_new();
    if (!r) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    if (WANT("latin_40")) throughput(t, NULL, "latin_40", latin_name, seconds);
    if (WANT("greek_40")) throughput(t, NULL, "greek_40", greek_name, seconds);
    if (WANT("latin_40_renderer")) throughput(t, r, "latin_40_renderer", latin_name, seconds);
    if (WANT("greek_40_renderer")) throughput(t, r, "greek_40_renderer", greek_name, seconds);
    if (WANT("mixed_40")) throughput(t, NULL, "mixed_40", mixed_name, seconds);
    pdf_renderer_free(r);
    if (WANT("latin_1000")) big(t);
    if (WANT("template_load")) template_load(seconds / 3);
    pdf_template_free(t);
    return 0;
}
