/* test_pdf.c — unit tests for templates/ (the libharu renderer).
 *
 * DESIGN — Every PDF is read back with poppler-utils: `pdftotext -layout`
 * for the text, `pdfinfo` for the page count, `pdffonts` for which fonts are
 * embedded.  Models are built in memory from small builders (strings go into
 * an arena freed after each test).  Template validation is table-driven
 * (strings inline: Criterion 2.4.1 and pointers in parameters do not mix).
 */
#include "fmacros.h"
#include "pdf.h"

#include <hpdf.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- arena + shell helpers -------------------------------------------- */
static void **arena;
static size_t n_arena, cap_arena;
static char tmpdir[64];

static void *keep(void *p) {
    cr_assert(p, "out of memory");
    if (n_arena == cap_arena) {
        cap_arena = cap_arena ? cap_arena * 2 : 256;
        arena = realloc(arena, cap_arena * sizeof *arena);
        cr_assert(arena);
    }
    arena[n_arena++] = p;
    return p;
}

static char *S(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *S(const char *fmt, ...) {
    va_list ap;
    char *s;
    va_start(ap, fmt);
    int rc = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert(rc >= 0);
    return keep(s);
}

static void *A(size_t n, size_t size) { return keep(calloc(n ? n : 1, size)); }

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_pdf.XXXXXX");
    cr_assert(mkdtemp(tmpdir), "mkdtemp");
}

static void teardown(void) {
    for (size_t i = 0; i < n_arena; i++) free(arena[i]);
    free(arena);
    arena = NULL;
    n_arena = cap_arena = 0;
    if (!getenv("ML_PDF_KEEP")) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) cr_log_warn("could not remove %s", tmpdir);
    } else {
        cr_log_info("PDFs kept in %s", tmpdir);
    }
}

/* Runs a shell command, returns its stdout (arena-owned). */
static char *sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sh(const char *fmt, ...) {
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *f = popen(cmd, "r");
    cr_assert(f, "popen %s", cmd);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    cr_assert(out);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            out = realloc(out, cap);
            cr_assert(out);
        }
    }
    out[len] = 0;
    int st = pclose(f);
    cr_assert_eq(st, 0, "command failed (%d): %s", st, cmd);
    return keep(out);
}

static const char *write_pdf(const char *name, const buf *b) {
    char *path = S("%s/%s.pdf", tmpdir, name);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b->p, 1, b->len, f), b->len);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static int pages_of(const char *path) {
    char *info = sh("pdfinfo '%s'", path);
    char *p = strstr(info, "\nPages:");
    cr_assert(p, "no Pages in pdfinfo output:\n%s", info);
    return atoi(p + 7);
}

static size_t count_mem(const buf *b, const char *needle) {
    size_t n = 0, nl = strlen(needle);
    for (const char *p = b->p; (p = memmem(p, b->len - (size_t)(p - b->p), needle, nl)); p += nl)
        n++;
    return n;
}

static size_t count(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static pdf_template *load_tpl(const char *override) {
    size_t n;
    const char *d = pdf_template_default(&n);
    pdf_template *t = NULL;
    char err[256] = "";
    int rc =
        pdf_template_load(d, n, override, override ? strlen(override) : 0, &t, err, sizeof err);
    cr_assert_eq(rc, 0, "template: %s", err);
    cr_assert(t);
    return t;
}

/* ---- model builders --------------------------------------------------- */
static const char *addr2[] = {"Bahnhofstrasse 1", "8001 Zürich"};

/* An invoice with n lines "Line item 0001" …, amounts "1<i>.25"; line i has
 * subs sub-lines. */
static pdf_invoice make_invoice(const char *customer, size_t n, size_t subs) {
    pdf_invoice inv = {0};
    inv.number = "INV-2024-0042";
    inv.status = "issued";
    inv.currency = "EUR";
    inv.issue_date = "2024-06-01";
    inv.due_date = "2024-06-15";
    inv.period_start = "2024-05-01";
    inv.period_end = "2024-05-31";
    inv.bill_to.name = customer;
    inv.bill_to.address = addr2;
    inv.bill_to.n_address = 2;
    inv.bill_to.email = "ap@customer.example";
    pdf_line *lines = A(n, sizeof *lines);
    for (size_t i = 0; i < n; i++) {
        lines[i].kind = "usage";
        lines[i].description = S("Line item %04zu", i + 1);
        lines[i].quantity = S("%zu", 1000 + i);
        lines[i].unit_price = "0.0125";
        lines[i].amount = S("%zu.25", 100 + i);
        if (subs) {
            pdf_sub_line *sl = A(subs, sizeof *sl);
            for (size_t j = 0; j < subs; j++) {
                sl[j].description = S("2024-05-%02zu", j + 1);
                sl[j].quantity = S("%zu", 10 + j);
                sl[j].amount = S("0.%02zu", j + 1);
            }
            lines[i].sub_lines = sl;
            lines[i].n_sub_lines = subs;
        }
    }
    inv.lines = lines;
    inv.n_lines = n;
    inv.subtotal = "1234.56";
    inv.tax_label = "VAT 19%";
    inv.tax = "234.57";
    inv.total = "1469.13";
    return inv;
}

static const char *render_inv(const char *name, const pdf_template *t, const pdf_invoice *inv,
                              buf *b) {
    char err[256] = "";
    buf_init(b);
    int rc = pdf_render_invoice(t, inv, b, err, sizeof err);
    cr_assert_eq(rc, 0, "render: %s", err);
    cr_assert(b->len > 100);
    cr_assert(memcmp(b->p, "%PDF-", 5) == 0);
    return write_pdf(name, b);
}

static char *text_of(const char *path) { return sh("pdftotext -layout '%s' -", path); }

/* pdffonts lines naming a font (skipping the two header lines). */
static char *fonts_of(const char *path) { return sh("pdffonts '%s' | tail -n +3", path); }

/* ---- templates -------------------------------------------------------- */
Test(pdf_template, default_loads_and_is_embedded, .init = setup, .fini = teardown) {
    size_t n = 0;
    const char *d = pdf_template_default(&n);
    cr_assert_gt(n, 100);
    cr_assert_eq(strlen(d), n);
    cr_assert(strstr(d, "\"brand_color\""));
    pdf_template *t = load_tpl(NULL);
    pdf_template_free(t);
    pdf_template_free(NULL);
}

typedef struct tpl_case {
    char override[200];
    char want[100]; /* substring of the error; "" = must load */
} tpl_case;

static tpl_case tpl_cases[] = {
    {"{\"page\": {\"margins\": {\"left\": 250}}}",
     "page.margins.left: must be between 0 and 200 points"},
    {"{\"page\": {\"margins\": {\"top\": -1}}}", "page.margins.top: must be between 0 and 200"},
    {"{\"page\": {\"margins\": {\"top\": \"10\"}}}", "page.margins.top: must be between"},
    {"{\"page\": {\"margins\": {\"inner\": 10}}}", "page.margins.inner: unknown key"},
    {"{\"page\": {\"size\": \"A3\"}}", "page.size: must be \"A4\" or \"Letter\""},
    {"{\"page\": {\"orientation\": \"landscape\"}}", "page.orientation: unknown key"},
    {"{\"page\": {\"margins\": {\"left\": 160, \"right\": 160}}}", "page.margins: left + right"},
    {"{\"brand_color\": \"blue\"}", "brand_color: must look like"},
    {"{\"brand_color\": \"#12345G\"}", "brand_color: must look like"},
    {"{\"colour\": \"#ffffff\"}", "colour: unknown key"},
    {"{\"seller\": {\"nmae\": \"x\"}}", "seller.nmae: unknown key"},
    {"{\"seller\": {\"name\": 5}}", "seller.name: must be a string"},
    {"{\"seller\": {\"address\": [\"a\", 7]}}", "seller.address[1]: must be a string"},
    {"{\"seller\": null}", "seller: must be an object"},
    {"{\"columns\": [\"description\"]}", "columns: must include \"description\" and \"amount\""},
    {"{\"columns\": [\"description\", \"amount\", \"price\"]}", "columns[2]: must be one of"},
    {"{\"columns\": [\"description\", \"amount\", \"amount\"]}",
     "columns[2]: \"amount\" appears twice"},
    {"{\"date_format\": \"YYYY\"}", "date_format: must be one of"},
    {"{\"logo\": \"not base64 !!\"}", "logo: must be a file in templates/, a base64 PNG"},
    {"{\"logo\": \"aGVsbG8gd29ybGQ=\"}", "logo: not a PNG image"},
    {"{\"logo_width\": 301}", "logo_width: must be between 0 and 300 points"},
    {"{\"labels\": {\"foo\": \"x\"}}", "labels.foo: unknown key"},
    {"{\"labels\": {\"total\": \"\"}}", "labels.total: must not be empty"},
    {"{\"footer\": 12}", "footer: must be a string"},
    {"[1, 2]", "template override: must be a JSON object"},
    {"{\"footer\": \"a\", \"footer\": \"b\"}", "template override: invalid JSON"},
    {"{\"page\": {", "template override: invalid JSON"},
    /* valid overrides */
    {"{\"page\": {\"margins\": {\"left\": 20}}}", ""},
    {"{\"page\": {\"size\": \"Letter\"}, \"brand_color\": \"#aa0011\"}", ""},
    {"{\"logo\": null, \"footer\": null}", ""},
    {"{\"columns\": [\"amount\", \"description\"]}", ""},
    {"{\"date_format\": \"MMMM D, YYYY\", \"labels\": {\"invoice\": \"Rechnung\"}}", ""},
    {"{}", ""},
};

ParameterizedTestParameters(pdf_template, validation) {
    return cr_make_param_array(tpl_case, tpl_cases, ML_ARRAY_LEN(tpl_cases));
}

ParameterizedTest(tpl_case *tc, pdf_template, validation) {
    size_t n;
    const char *d = pdf_template_default(&n);
    pdf_template *t = (pdf_template *)1;
    char err[256] = "";
    int rc = pdf_template_load(d, n, tc->override, strlen(tc->override), &t, err, sizeof err);
    if (tc->want[0]) {
        cr_expect_eq(rc, -1, "%s: loaded", tc->override);
        cr_expect_null(t);
        cr_expect(strstr(err, tc->want), "%s: error \"%s\", want \"%s\"", tc->override, err,
                  tc->want);
    } else {
        cr_expect_eq(rc, 0, "%s: %s", tc->override, err);
        pdf_template_free(t);
    }
    cr_expect_eq(pdf_template_check_override(tc->override, strlen(tc->override), err, sizeof err),
                 tc->want[0] ? -1 : 0, "check_override %s", tc->override);
}

Test(pdf_template, base_itself_is_validated, .init = setup, .fini = teardown) {
    static const char base[] = "{\"page\": {\"size\": \"A4\"}}";
    pdf_template *t;
    char err[256] = "";
    cr_assert_eq(pdf_template_load(base, strlen(base), NULL, 0, &t, err, sizeof err), -1);
    cr_expect(strstr(err, "page.margins: is required"), "%s", err);
}

Test(pdf_template, override_merges_and_shows, .init = setup, .fini = teardown) {
    /* the logo given as a data: URL of the default logo, base64 */
    FILE *f = fopen(ML_TEMPLATES_DIR "/logo.png", "rb");
    cr_assert(f);
    unsigned char png[8192];
    size_t n = fread(png, 1, sizeof png, f);
    fclose(f);
    cr_assert_gt(n, 0);
    char *b64 = A(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), 1);
    sodium_bin2base64(b64, sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), png, n,
                      sodium_base64_VARIANT_ORIGINAL);
    const char *ov = S("{\"seller\": {\"name\": \"Acme Metering GmbH\"},"
                       " \"columns\": [\"description\", \"amount\"],"
                       " \"date_format\": \"DD.MM.YYYY\", \"footer\": \"Bank: IBAN DE00 1234\","
                       " \"labels\": {\"invoice\": \"Rechnung\"},"
                       " \"logo\": \"data:image/png;base64,%s\"}",
                       b64);
    pdf_template *t = load_tpl(ov);
    pdf_invoice inv = make_invoice("Zürich Höfe AG", 3, 0);
    buf b;
    char *txt = text_of(render_inv("override", t, &inv, &b));
    cr_expect(strstr(txt, "Acme Metering GmbH"), "seller name from the override");
    cr_expect(strstr(txt, "10115 Berlin"), "default address kept by the one-level merge");
    cr_expect(strstr(txt, "Rechnung INV-2024-0042"), "label override");
    cr_expect(strstr(txt, "01.06.2024"), "date format DD.MM.YYYY");
    cr_expect(strstr(txt, "01.05.2024 \xE2\x80\x93 31.05.2024"), "period");
    cr_expect(strstr(txt, "Bank: IBAN DE00 1234"), "footer");
    cr_expect_null(strstr(txt, "Unit price"), "hidden column has no header");
    cr_expect_null(strstr(txt, "0.0125"), "hidden column has no values");
    cr_expect(strstr(txt, "Amount (EUR)"));
    cr_expect(strstr(sh("pdfimages -list '%s/override.pdf' | tail -n +3 | wc -l", tmpdir), "1"),
              "logo image present");
    buf_free(&b);
    pdf_template_free(t);

    /* no logo at all */
    t = load_tpl("{\"logo\": null}");
    render_inv("nologo", t, &inv, &b);
    cr_expect(strstr(sh("pdfimages -list '%s/nologo.pdf' | tail -n +3 | wc -l", tmpdir), "0"));
    buf_free(&b);
    pdf_template_free(t);
}

Test(pdf_template, letter_size_pages, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl("{\"page\": {\"size\": \"Letter\"}}");
    pdf_invoice inv = make_invoice("Acme", 2, 0);
    buf b;
    char *info = sh("pdfinfo '%s'", render_inv("letter", t, &inv, &b));
    cr_expect(strstr(info, "612 x 792 pts"), "%s", info);
    buf_free(&b);
    pdf_template_free(t);
    t = load_tpl(NULL);
    info = sh("pdfinfo '%s'", render_inv("a4", t, &inv, &b));
    cr_expect(strstr(info, "595.276 x 841.89 pts"), "%s", info);
    buf_free(&b);
    pdf_template_free(t);
}

/* ---- invoices: text, fonts -------------------------------------------- */
Test(pdf_invoice, latin1_uses_helvetica_and_amounts_exact, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice("Zürich Höfe", 5, 0);
    pdf_late_usage late[] = {{"api_calls", "1000", "1250.5", "250.5"}};
    inv.late_usage = late;
    inv.n_late_usage = 1;
    inv.notes = "Payment within 14 days.\nReverse charge: déjà vu «Grüße» – 5 €.";
    buf b;
    const char *path = render_inv("latin", t, &inv, &b);
    char *txt = text_of(path);
    cr_expect(strstr(txt, "Zürich Höfe"), "customer name:\n%s", txt);
    cr_expect(strstr(txt, "8001 Zürich"));
    cr_expect(strstr(txt, "Invoice INV-2024-0042"));
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof want, "%d.25", 100 + i);
        cr_expect_eq(count(txt, want), 1, "amount %s", want);
        snprintf(want, sizeof want, "Line item %04d", i + 1);
        cr_expect_eq(count(txt, want), 1, "%s", want);
    }
    cr_expect(strstr(txt, "1234.56"), "subtotal");
    cr_expect(strstr(txt, "VAT 19%"), "tax label");
    cr_expect(strstr(txt, "234.57"), "tax");
    cr_expect(strstr(txt, "1469.13 EUR"), "total with currency");
    cr_expect(strstr(txt, "Late usage"));
    cr_expect(strstr(txt, "1250.5"));
    cr_expect(strstr(txt, "250.5"));
    cr_expect(strstr(txt, "Reverse charge: déjà vu «Grüße» – 5 €."), "notes in WinAnsi");
    cr_expect(strstr(txt, "2024-05-01 \xE2\x80\x93 2024-05-31"), "period");
    cr_expect(strstr(txt, "Page 1 of 1"));
    cr_expect_null(strstr(txt, "DRAFT"), "issued: no watermark");
    char *fonts = fonts_of(path);
    cr_expect(strstr(fonts, "Helvetica"), "%s", fonts);
    cr_expect_null(strstr(fonts, "DejaVu"), "nothing embedded for Latin text:\n%s", fonts);
    cr_expect_null(strstr(fonts, " yes "), "no embedded font:\n%s", fonts);
    cr_expect_lt(b.len, 20000, "a Latin invoice stays small (%zu bytes)", b.len);
    buf_free(&b);
    pdf_template_free(t);
}

/* Which font draws a name: DejaVu Sans in a single-byte code page (a simple
 * "TrueType" font) when one code page has every character, else DejaVu Sans
 * as UTF-8 ("CID TrueType"); the text comes back exactly either way. */
typedef struct script_case {
    char name[80];
    char file[24];
    char type[16]; /* pdffonts type of the DejaVu font */
} script_case;

static script_case script_cases[] = {
    {"Αθήνα Ενέργεια", "greek", "TrueType"},
    /* Delta, Omega, mu: glyph names the Adobe Glyph List maps elsewhere first */
    {"Δήμος Ωραιοκάστρου — μελέτη", "greek_agl", "TrueType"},
    {"Москва Логистика", "cyrillic", "TrueType"},
    {"Київ Енергія ЄҐ", "ukrainian", "TrueType"},
    {"Łódź Spółka z o.o.", "polish", "TrueType"},
    {"İstanbul Çağ Ltd. Şti.", "turkish", "TrueType"},
    {"Athens Αθήνα S.A.", "ascii_greek", "TrueType"},
    {"Zürich Αθήνα AG", "latin1_greek", "CID TrueType"},
    {"Αθήνα Москва", "greek_cyrillic", "CID TrueType"},
};

ParameterizedTestParameters(pdf_invoice, non_latin_embeds_dejavu) {
    return cr_make_param_array(script_case, script_cases, ML_ARRAY_LEN(script_cases));
}

ParameterizedTest(script_case *sc, pdf_invoice, non_latin_embeds_dejavu, .init = setup,
                  .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice(sc->name, 3, 0);
    buf b;
    const char *path = render_inv(sc->file, t, &inv, &b);
    char *txt = text_of(path);
    cr_expect(strstr(txt, sc->name), "%s comes back:\n%s", sc->name, txt);
    cr_expect(strstr(txt, "1469.13 EUR"));
    cr_expect(strstr(txt, "Line item 0003"));
    char *fonts = fonts_of(path);
    cr_expect(strstr(fonts, "DejaVuSans,Book"), "the name embeds DejaVu Sans:\n%s", fonts);
    cr_expect_null(strstr(fonts, "DejaVuSans-Bold"), "one face only (bold is synthetic):\n%s",
                   fonts);
    cr_expect_eq(count(fonts, "DejaVu"), 1, "one DejaVu font:\n%s", fonts);
    bool cid = strcmp(sc->type, "CID TrueType") == 0;
    cr_expect(strstr(fonts, sc->type), "%s:\n%s", sc->type, fonts);
    if (!cid) cr_expect_null(strstr(fonts, "CID"), "a code page, not UTF-8:\n%s", fonts);
    cr_expect(strstr(fonts, " yes yes yes "), "embedded, subset, with ToUnicode:\n%s", fonts);
    cr_expect_eq(count_mem(&b, "/FontFile2"), 1, "one font program");
    cr_expect_eq(count_mem(&b, "/CIDToGIDMap"), cid ? 1 : 0);
    /* font streams are compressed only with the (slow anyway) UTF-8 font */
    cr_expect_lt(b.len, cid ? 120000 : 200000, "%zu bytes", b.len);
    cr_expect(strstr(fonts, "Helvetica"), "Latin strings stay Helvetica:\n%s", fonts);
    buf_free(&b);
    pdf_template_free(t);
}

/* Greek and Cyrillic strings in one document: two code-page fonts (and a
 * UTF-8 one for the string that mixes them) over one embedded font program. */
Test(pdf_invoice, code_pages_share_one_font_program, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    static const char *const addr[] = {"Проспект Мира 1", "129090 Москва"};
    pdf_invoice inv = make_invoice("Αθήνα Ενέργεια", 2, 0);
    inv.bill_to.address = addr;
    inv.notes = "Ευχαριστούμε — Спасибо.";
    buf b;
    const char *path = render_inv("two_pages", t, &inv, &b);
    char *txt = text_of(path);
    cr_expect(strstr(txt, "Αθήνα Ενέργεια"), "%s", txt);
    cr_expect(strstr(txt, "Проспект Мира 1"), "%s", txt);
    cr_expect(strstr(txt, "129090 Москва"), "%s", txt);
    cr_expect(strstr(txt, "Ευχαριστούμε — Спасибо."), "%s", txt);
    char *fonts = fonts_of(path);
    cr_expect_eq(count(fonts, "DejaVuSans,Book"), 3, "CP1253, CP1251 and UTF-8:\n%s", fonts);
    cr_expect_eq(count(fonts, "CID TrueType"), 1, "%s", fonts);
    cr_expect_eq(count(fonts, " yes yes yes "), 3, "%s", fonts);
    cr_expect_eq(count_mem(&b, "/FontFile2"), 1, "one font program for the three fonts");
    cr_expect_eq(count_mem(&b, "/Type /FontDescriptor"), 1, "one descriptor");
    cr_expect_lt(b.len, 120000, "with the UTF-8 font every font stream is compressed");
    buf_free(&b);
    pdf_template_free(t);
}

/* Every character of every code page the renderer uses comes back exactly
 * from pdftotext and is drawn (ink inside its pdftotext -bbox box): libharu
 * 2.3.0 writes glyph names and no ToUnicode for simple TrueType fonts. */
typedef struct cp_case {
    char name[16];
} cp_case;

static cp_case cp_cases[] = {{"CP1253"}, {"CP1251"}, {"CP1250"}, {"CP1254"}, {"CP1257"}};

ParameterizedTestParameters(pdf_invoice, code_page_characters_drawn_and_exact) {
    return cr_make_param_array(cp_case, cp_cases, ML_ARRAY_LEN(cp_cases));
}

static void put_utf8(buf *b, unsigned u) {
    if (u < 0x80) {
        buf_addc(b, (char)u);
    } else if (u < 0x800) {
        buf_addc(b, (char)(0xC0 | u >> 6));
        buf_addc(b, (char)(0x80 | (u & 0x3F)));
    } else {
        buf_addc(b, (char)(0xE0 | u >> 12));
        buf_addc(b, (char)(0x80 | (u >> 6 & 0x3F)));
        buf_addc(b, (char)(0x80 | (u & 0x3F)));
    }
}

/* Page 1 of a PDF at 144 dpi (2 pixels per point, gray) and its words'
 * boxes (pdftotext -bbox). */
typedef struct page_img {
    int w, h;
    unsigned char *px;
    const char *bbox;
} page_img;

static page_img render_page(const char *path) {
    page_img im = {0};
    sh("pdftoppm -r 144 -gray -f 1 -l 1 -singlefile '%s' '%s/page'", path, tmpdir);
    FILE *f = fopen(S("%s/page.pgm", tmpdir), "rb");
    cr_assert(f);
    int maxv;
    cr_assert_eq(fscanf(f, "P5 %d %d %d", &im.w, &im.h, &maxv), 3);
    fgetc(f);
    size_t n = (size_t)im.w * (size_t)im.h;
    im.px = A(n, 1);
    cr_assert_eq(fread(im.px, 1, n, f), n);
    fclose(f);
    im.bbox = sh("pdftotext -f 1 -l 1 -bbox '%s' -", path);
    return im;
}

/* Dark pixels inside the last box of a word that is exactly word, -1 when
 * there is none. */
static int ink_of(const page_img *im, const char *word) {
    size_t len = strlen(word);
    const char *p = NULL;
    for (const char *q = im->bbox; (q = strstr(q, "<word ")); q++) {
        const char *gt = strchr(q, '>');
        if (gt && strncmp(gt + 1, word, len) == 0 && strncmp(gt + 1 + len, "</word>", 7) == 0)
            p = q;
    }
    double x0, y0, x1, y1;
    if (!p || sscanf(p, "<word xMin=\"%lf\" yMin=\"%lf\" xMax=\"%lf\" yMax=\"%lf\"", &x0, &y0, &x1,
                     &y1) != 4)
        return -1;
    int ink = 0;
    for (int y = (int)(y0 * 2); y <= (int)(y1 * 2) && y < im->h; y++)
        for (int x = (int)(x0 * 2); x <= (int)(x1 * 2) && x < im->w; x++)
            if (im->px[(size_t)y * (size_t)im->w + (size_t)x] < 160) ink++;
    return ink;
}

static char *strip_space(const char *s) {
    char *o = keep(malloc(strlen(s) + 1)), *q = o;
    for (; *s; s++)
        if (*s != ' ' && *s != '\n' && *s != '\f') *q++ = *s;
    *q = 0;
    return o;
}

ParameterizedTest(cp_case *cc, pdf_invoice, code_page_characters_drawn_and_exact, .init = setup,
                  .fini = teardown) {
    HPDF_Doc doc = HPDF_New(NULL, NULL);
    cr_assert(doc);
    HPDF_Encoder en = HPDF_GetEncoder(doc, cc->name);
    cr_assert(en, "libharu has %s", cc->name);
    buf chars; /* every printable character above 0x7F, space-separated */
    buf_init(&chars);
    size_t n = 0;
    for (int i = 0x80; i < 256; i++) {
        unsigned u = HPDF_Encoder_GetUnicode(en, (HPDF_UINT16)i);
        if (u < 0xA1 || u == 0xAD || u >= 0xFFFE) continue; /* controls, NBSP, soft hyphen */
        put_utf8(&chars, u);
        buf_addc(&chars, ' ');
        n++;
    }
    HPDF_Free(doc);
    cr_assert(!chars.oom && n > 60, "%zu characters", n);
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice("Acme", 1, 0);
    inv.notes = chars.p;
    buf b;
    const char *path = render_inv(cc->name, t, &inv, &b);
    char *fonts = fonts_of(path);
    cr_expect_null(strstr(fonts, "CID"), "drawn in %s, not as UTF-8:\n%s", cc->name, fonts);
    char *txt = strip_space(text_of(path));
    char *want = strip_space(chars.p);
    cr_expect(strstr(txt, want), "%s comes back exactly:\nwant %s\ngot  %s", cc->name, want, txt);
    /* ink: each character is one word of the notes */
    page_img im = render_page(path);
    for (size_t i = 0, off = 0; i < n; i++) {
        size_t len = (unsigned char)want[off] < 0xE0 ? 2 : 3;
        char c[4] = {0};
        memcpy(c, want + off, len);
        off += len;
        cr_expect_gt(ink_of(&im, c), 0, "%s: %s is drawn", cc->name, c);
    }
    buf_free(&chars);
    buf_free(&b);
    pdf_template_free(t);
}

/* libharu 2.3.0 subsets composite glyphs one level deep: "Ά" before "Α"
 * used to leave Alpha's Latin "A" out (a blank letter), in code pages and
 * in UTF-8 alike. */
typedef struct order_case {
    char notes[96];
    char file[16];
} order_case;

static order_case order_cases[] = {
    {"Ά Α Έ Ε Ή Η ΐ ϊ ι Ό Ο Ύ Υ", "greek"},
    {"Ё Е Ї І Й И ё е ў у", "cyrillic"},
    {"Ά Α Ё Е ΐ ϊ ι ў у", "mixed"},
};

ParameterizedTestParameters(pdf_invoice, letters_drawn_after_their_accented_forms) {
    return cr_make_param_array(order_case, order_cases, ML_ARRAY_LEN(order_cases));
}

ParameterizedTest(order_case *oc, pdf_invoice, letters_drawn_after_their_accented_forms,
                  .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice("Acme", 1, 0);
    inv.notes = oc->notes;
    buf b;
    const char *path = render_inv(oc->file, t, &inv, &b);
    cr_expect(strstr(strip_space(text_of(path)), strip_space(oc->notes)), "%s", oc->notes);
    page_img im = render_page(path);
    char *words = S("%s", oc->notes), *save = NULL;
    for (char *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save))
        cr_expect_gt(ink_of(&im, w), 0, "%s: %s is drawn", oc->file, w);
    buf_free(&b);
    pdf_template_free(t);
}

Test(pdf_invoice, dejavu_embedded_for_non_latin_notes_only, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice("Acme", 2, 0);
    inv.notes = "Οι τιμές περιλαμβάνουν ΦΠΑ.";
    buf b;
    const char *path = render_inv("notes_greek", t, &inv, &b);
    char *fonts = fonts_of(path);
    cr_expect(strstr(fonts, "DejaVuSans,Book"), "regular DejaVu for the notes:\n%s", fonts);
    cr_expect_eq(count(fonts, "DejaVu"), 1, "one DejaVu face:\n%s", fonts);
    cr_expect(strstr(text_of(path), "Οι τιμές περιλαμβάνουν ΦΠΑ."));
    buf_free(&b);
    pdf_template_free(t);
}

Test(pdf_invoice, non_bmp_and_invalid_utf8_replaced, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice("Rocket \xF0\x9F\x9A\x80 Ltd", 2, 0);
    pdf_line *l = (pdf_line *)inv.lines;
    l[0].description = "Bad \xFF\xFE bytes \xE2\x82 here";
    l[1].description = "Ωmega \xF0\x9F\x98\x80 smile";
    buf b;
    const char *path = render_inv("emoji", t, &inv, &b);
    char *txt = text_of(path);
    cr_expect(strstr(txt, "Rocket ? Ltd"), "emoji in Latin text becomes '?':\n%s", txt);
    cr_expect(strstr(txt, "Bad ?? bytes ? here"), "invalid UTF-8 becomes '?'");
    cr_expect(strstr(txt, "Ωmega \xEF\xBF\xBD smile"), "emoji in Greek text becomes U+FFFD");
    cr_expect_null(strstr(txt, "\xF0\x9F"), "no 4-byte sequence survives");
    buf_free(&b);
    pdf_template_free(t);
}

/* ---- invoices: pages -------------------------------------------------- */
Test(pdf_invoice, thousand_lines_paginate_with_header_and_page_numbers, .init = setup,
     .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice("Zürich Höfe", 1000, 0);
    buf b;
    const char *path = render_inv("thousand", t, &inv, &b);
    int pages = pages_of(path);
    cr_assert_gt(pages, 10);
    cr_assert_lt(pages, 40);
    /* page by page: pdftotext -f n -l n */
    int prev_last = 0, per_page = -1;
    for (int p = 1; p <= pages; p++) {
        char *txt = sh("pdftotext -layout -f %d -l %d '%s' -", p, p, path);
        char want[64];
        snprintf(want, sizeof want, "Page %d of %d", p, pages);
        cr_expect_eq(count(txt, want), 1, "page %d: \"%s\"", p, want);
        cr_expect_eq(count(txt, "Description"), 1, "page %d: header row", p);
        cr_expect(strstr(txt, "Amount (EUR)"), "page %d: header row", p);
        if (p > 1) cr_expect(strstr(txt, "Invoice INV-2024-0042 (continued)"), "page %d", p);
        /* lines on this page: consecutive, continuing the previous page */
        int first = 0, last = 0, n = 0;
        for (const char *q = txt; (q = strstr(q, "Line item ")); q += 10) {
            int k = atoi(q + 10);
            if (!first) first = k;
            cr_expect_eq(k, (last ? last : prev_last) + 1, "page %d: line %d after %d", p, k,
                         last ? last : prev_last);
            last = k;
            n++;
        }
        if (p < pages) cr_expect_gt(n, 0, "page %d has lines", p);
        /* full pages after the first hold the same number of rows */
        if (p > 1 && p < pages && n) {
            if (per_page < 0) per_page = n;
            cr_expect_eq(n, per_page, "page %d holds %d rows, page 2 held %d", p, n, per_page);
        }
        if (n) prev_last = last;
    }
    cr_expect_eq(prev_last, 1000, "every line printed once, in order");
    /* the page count follows from the rows per page */
    cr_assert_gt(per_page, 0);
    char *first_page = sh("pdftotext -layout -f 1 -l 1 '%s' -", path);
    int on_first = (int)count(first_page, "Line item ");
    int rest = 1000 - on_first;
    int expect = 1 + (rest + per_page - 1) / per_page;
    char *last_page = sh("pdftotext -layout -f %d -l %d '%s' -", pages, pages, path);
    if (!strstr(last_page, "Line item ")) expect++; /* totals spilled onto a page of their own */
    cr_expect_eq(pages, expect, "pages %d, expected %d (%d + %d per page)", pages, expect, on_first,
                 per_page);
    cr_expect(strstr(last_page, "1469.13 EUR"), "totals on the last page");
    buf_free(&b);
    pdf_template_free(t);
}

Test(pdf_invoice, sub_lines_indented, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice("Acme", 2, 3);
    buf b;
    char *txt = text_of(render_inv("subs", t, &inv, &b));
    const char *main_line = strstr(txt, "Line item 0001");
    const char *sub = strstr(txt, "2024-05-01 ");
    cr_assert(main_line && sub, "%s", txt);
    /* columns: distance from the start of each text line */
    const char *ml0 = main_line, *sl0 = sub;
    while (ml0 > txt && ml0[-1] != '\n') ml0--;
    while (sl0 > txt && sl0[-1] != '\n') sl0--;
    cr_expect_gt(sub - sl0, main_line - ml0, "sub-line starts right of its line:\n%s", txt);
    cr_expect_eq(count(txt, "2024-05-03 "), 2, "3 sub-lines under each of 2 lines");
    cr_expect(strstr(txt, "0.03"));
    buf_free(&b);
    pdf_template_free(t);
}

typedef struct wm_case {
    char status[24];
    char mark[8]; /* "" = none */
} wm_case;

static wm_case wm_cases[] = {
    {"draft", "DRAFT"}, {"pending_approval", "DRAFT"},
    {"approved", ""},   {"issued", ""},
    {"paid", ""},       {"void", "VOID"},
};

ParameterizedTestParameters(pdf_invoice, watermark) {
    return cr_make_param_array(wm_case, wm_cases, ML_ARRAY_LEN(wm_cases));
}

ParameterizedTest(wm_case *wc, pdf_invoice, watermark, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice("Acme", 60, 0);
    inv.status = wc->status;
    if (strcmp(wc->status, "draft") == 0) inv.number = NULL;
    buf b;
    const char *path = render_inv(wc->status, t, &inv, &b);
    int pages = pages_of(path);
    cr_assert_gt(pages, 1);
    /* the diagonal watermark comes out of `pdftotext -raw` one letter a line,
     * first on its page (it is drawn first, under everything) */
    char *raw = sh("pdftotext -raw '%s' -", path);
    char *txt = text_of(path);
    if (wc->mark[0]) {
        char want[32] = "", *w = want;
        for (const char *m = wc->mark; *m; m++) *w++ = *m, *w++ = '\n';
        cr_expect_eq(count(raw, want), (size_t)pages, "%s: one %s per page:\n%.300s", wc->status,
                     wc->mark, raw);
        cr_expect_eq(strncmp(raw, want, strlen(want)), 0, "watermark first");
    } else {
        cr_expect_null(strstr(raw, "D\nR\nA\nF\nT\n"));
        cr_expect_null(strstr(raw, "V\nO\nI\nD\n"));
    }
    if (!inv.number) cr_expect(strstr(txt, "Invoice Draft"), "a draft has no number");
    buf_free(&b);
    pdf_template_free(t);
}

Test(pdf_invoice, deterministic_bytes, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    const char *names[] = {"Zürich Höfe", "Αθήνα Ενέργεια"};
    for (size_t k = 0; k < 2; k++) {
        pdf_invoice inv = make_invoice(names[k], 120, 2);
        inv.status = "draft";
        buf a, b;
        buf_init(&a);
        buf_init(&b);
        char err[256];
        cr_assert_eq(pdf_render_invoice(t, &inv, &a, err, sizeof err), 0, "%s", err);
        usleep(1100 * 1000); /* a clock in the file would tick */
        cr_assert_eq(pdf_render_invoice(t, &inv, &b, err, sizeof err), 0, "%s", err);
        cr_expect_eq(a.len, b.len, "%s: same length", names[k]);
        cr_expect(a.len == b.len && memcmp(a.p, b.p, a.len) == 0, "%s: same bytes", names[k]);
        cr_expect_null(memmem(a.p, a.len, "CreationDate", 12), "no creation date");
        /* and the bytes do depend on the model */
        ((pdf_line *)inv.lines)[7].amount = "107.26";
        buf c;
        buf_init(&c);
        cr_assert_eq(pdf_render_invoice(t, &inv, &c, err, sizeof err), 0, "%s", err);
        cr_expect(c.len != a.len || memcmp(a.p, c.p, a.len) != 0, "a changed amount changes bytes");
        buf_free(&a);
        buf_free(&b);
        buf_free(&c);
    }
    pdf_template_free(t);
}

/* ---- renderers --------------------------------------------------------- */
/* A pdf_renderer keeps DejaVu Sans loaded between renders (HPDF_FreeDoc /
 * HPDF_NewDoc): what it renders is byte for byte what the one-shot
 * functions render, whatever it rendered before — also after a failure. */
static const char *const renderer_names[] = {"Αθήνα Ενέργεια", "Zürich Höfe", "Αθήνα Москва",
                                             "Москва Логистика", "Ά Α Ё Е Łódź"};
#define N_RENDERER_NAMES ML_ARRAY_LEN(renderer_names)

static pdf_usage make_usage(size_t n_metrics);

static void one_shot_refs(const pdf_template *t, pdf_invoice *inv, buf *want) {
    char err[256];
    for (size_t k = 0; k < N_RENDERER_NAMES; k++) {
        inv[k] = make_invoice(renderer_names[k], 30, 1);
        inv[k].notes = renderer_names[(k + 1) % N_RENDERER_NAMES];
        buf_init(&want[k]);
        cr_assert_eq(pdf_render_invoice(t, &inv[k], &want[k], err, sizeof err), 0, "%s", err);
    }
}

static bool same(const buf *a, const buf *b) {
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

Test(pdf_renderer, same_bytes_as_one_shot_in_any_order, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv[N_RENDERER_NAMES];
    buf want[N_RENDERER_NAMES], got, usage_want;
    one_shot_refs(t, inv, want);
    pdf_usage u = make_usage(1);
    char err[256];
    buf_init(&usage_want);
    cr_assert_eq(pdf_render_usage(t, &u, &usage_want, err, sizeof err), 0, "%s", err);
    pdf_renderer *r = pdf_renderer_new();
    cr_assert(r);
    buf_init(&got);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < N_RENDERER_NAMES; i++) {
            size_t k = pass ? N_RENDERER_NAMES - 1 - i : i;
            got.len = 0;
            cr_assert_eq(pdf_renderer_invoice(r, t, &inv[k], &got, err, sizeof err), 0, "%s", err);
            cr_expect(same(&got, &want[k]), "pass %d: %s: same bytes as one-shot", pass,
                      renderer_names[k]);
            if (k == 2) {
                got.len = 0;
                cr_assert_eq(pdf_renderer_usage(r, t, &u, &got, err, sizeof err), 0, "%s", err);
                cr_expect(same(&got, &usage_want), "pass %d: usage report", pass);
            }
        }
        /* a render that fails half-way (a bad decimal in the chart) */
        pdf_metric *m = (pdf_metric *)u.metrics;
        const char *const *daily = m[0].daily;
        const char *bad[31];
        for (int d = 0; d < 31; d++) bad[d] = "1,5";
        m[0].daily = bad;
        got.len = 0;
        cr_expect_eq(pdf_renderer_usage(r, t, &u, &got, err, sizeof err), -1);
        cr_expect(strstr(err, "usage.metrics[0].daily[0]"), "%s", err);
        m[0].daily = daily;
    }
    pdf_renderer_free(r);
    pdf_renderer_free(NULL);
    for (size_t k = 0; k < N_RENDERER_NAMES; k++) buf_free(&want[k]);
    buf_free(&got);
    buf_free(&usage_want);
    pdf_template_free(t);
}

typedef struct renderer_thread {
    pthread_t th;
    const pdf_template *t; /* shared by every thread */
    const pdf_invoice *inv;
    const buf *want;
    size_t renders, mismatches, errors;
} renderer_thread;

static void *renderer_thread_main(void *arg) {
    renderer_thread *rt = arg;
    pdf_renderer *r = pdf_renderer_new();
    if (!r) {
        rt->errors++;
        return NULL;
    }
    buf got;
    buf_init(&got);
    char err[256];
    for (int round = 0; round < 3; round++)
        for (size_t k = 0; k < N_RENDERER_NAMES; k++) {
            got.len = 0;
            if (pdf_renderer_invoice(r, rt->t, &rt->inv[k], &got, err, sizeof err) != 0)
                rt->errors++;
            else if (!same(&got, &rt->want[k]))
                rt->mismatches++;
            rt->renders++;
        }
    buf_free(&got);
    pdf_renderer_free(r);
    return NULL;
}

Test(pdf_renderer, one_per_thread_concurrently, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv[N_RENDERER_NAMES];
    buf want[N_RENDERER_NAMES];
    one_shot_refs(t, inv, want);
    renderer_thread th[4];
    for (size_t i = 0; i < ML_ARRAY_LEN(th); i++) {
        th[i] = (renderer_thread){.t = t, .inv = inv, .want = want};
        cr_assert_eq(pthread_create(&th[i].th, NULL, renderer_thread_main, &th[i]), 0);
    }
    for (size_t i = 0; i < ML_ARRAY_LEN(th); i++) {
        cr_assert_eq(pthread_join(th[i].th, NULL), 0);
        cr_expect_eq(th[i].errors, 0, "thread %zu: render errors", i);
        cr_expect_eq(th[i].mismatches, 0, "thread %zu: bytes differ from one-shot", i);
        cr_expect_eq(th[i].renders, 3 * N_RENDERER_NAMES);
    }
    for (size_t k = 0; k < N_RENDERER_NAMES; k++) buf_free(&want[k]);
    pdf_template_free(t);
}

static void count_progress(void *arg, size_t done, size_t total) {
    size_t *st = arg; /* [calls, last done, last total, monotonic violations] */
    if (done < st[1]) st[3]++;
    st[0]++;
    st[1] = done;
    st[2] = total;
}

Test(pdf_invoice, progress_reported, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice("Acme", 250, 1);
    size_t st[4] = {0};
    inv.progress = count_progress;
    inv.progress_arg = st;
    buf b;
    render_inv("progress", t, &inv, &b);
    cr_expect_eq(st[2], 500, "total rows = lines + sub-lines");
    cr_expect_eq(st[1], 500, "ends at the total");
    cr_expect_eq(st[0], 5, "every %d rows", PDF_PROGRESS_EVERY);
    cr_expect_eq(st[3], 0, "monotonic");
    buf_free(&b);
    pdf_template_free(t);
}

Test(pdf_invoice, bad_models_are_errors, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_invoice inv = make_invoice("Acme", 2, 0);
    buf b;
    buf_init(&b);
    char err[256] = "";
    inv.status = "sent";
    cr_expect_eq(pdf_render_invoice(t, &inv, &b, err, sizeof err), -1);
    cr_expect(strstr(err, "invoice.status"), "%s", err);
    inv.status = "issued";
    inv.lines = NULL;
    cr_expect_eq(pdf_render_invoice(t, &inv, &b, err, sizeof err), -1);
    cr_expect_eq(b.len, 0, "nothing written on error");
    /* long unbreakable text and huge numbers still render */
    inv = make_invoice("Acme", 1, 0);
    char *longword = A(3001, 1);
    memset(longword, 'W', 3000);
    ((pdf_line *)inv.lines)[0].description = longword;
    ((pdf_line *)inv.lines)[0].amount = "123456789012345678901234567890.123456";
    cr_expect_eq(pdf_render_invoice(t, &inv, &b, err, sizeof err), 0, "%s", err);
    buf_free(&b);
    pdf_template_free(t);
}

/* ---- usage reports ---------------------------------------------------- */
static pdf_usage make_usage(size_t n_metrics) {
    pdf_usage u = {0};
    u.customer_name = "Москва Логистика";
    u.customer_id = "cust_42";
    u.from = "2024-05-01";
    u.to = "2024-05-31";
    u.generated_on = "2024-06-01";
    const char **days = A(31, sizeof *days);
    for (int d = 0; d < 31; d++) days[d] = S("2024-05-%02d", d + 1);
    const char **hours = A(31 * 24, sizeof *hours);
    for (int h = 0; h < 31 * 24; h++) hours[h] = S("2024-05-%02dT%02d:00:00Z", h / 24 + 1, h % 24);
    u.days = days;
    u.n_days = 31;
    u.hours = hours;
    u.n_hours = 31 * 24;
    pdf_metric *m = A(n_metrics, sizeof *m);
    for (size_t i = 0; i < n_metrics; i++) {
        m[i].code = S("metric_%zu", i);
        m[i].name = S("Metric %zu", i);
        m[i].unit = i == 0 ? "requests" : "GB";
        const char **daily = A(31, sizeof *daily), **hourly = A(31 * 24, sizeof *hourly);
        for (int d = 0; d < 31; d++)
            daily[d] = i == 0 ? S("%d", 10 * d + 30) /* max 330 → axis 0..400 by 100 */
                              : S("0.%02d", d % 26); /* max 0.25 → by 0.05 */
        for (int h = 0; h < 31 * 24; h++) hourly[h] = i == 0 ? S("%d", h) : NULL;
        m[i].daily = daily;
        m[i].hourly = hourly;
        m[i].total = i == 0 ? "5580" : "7.15";
    }
    u.metrics = m;
    u.n_metrics = n_metrics;
    return u;
}

Test(pdf_usage, month_report_chart_and_appendix, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_usage u = make_usage(2);
    size_t st[4] = {0};
    u.progress = count_progress;
    u.progress_arg = st;
    buf b;
    buf_init(&b);
    char err[256] = "";
    cr_assert_eq(pdf_render_usage(t, &u, &b, err, sizeof err), 0, "%s", err);
    const char *path = write_pdf("usage", &b);
    int pages = pages_of(path);
    char *p1 = sh("pdftotext -layout -f 1 -l 1 '%s' -", path);
    cr_expect(strstr(p1, "Usage report"));
    cr_expect(strstr(p1, "Москва Логистика"), "%s", p1);
    cr_expect(strstr(p1, "cust_42"));
    cr_expect(strstr(p1, "2024-05-01 \xE2\x80\x93 2024-05-31"));
    cr_expect(strstr(p1, "5580"), "metric total");
    cr_expect(strstr(p1, "7.15"), "metric total");
    /* chart 1: y ticks 0..400 step 100, x labels, unit */
    char *all = text_of(path);
    cr_expect(strstr(all, "Daily usage \xE2\x80\x94 Metric 0 (requests)"));
    for (int v = 0; v <= 400; v += 100) {
        char want[16];
        snprintf(want, sizeof want, " %d\n", v);
        cr_expect(strstr(all, want), "y tick %d", v);
    }
    cr_expect_null(strstr(all, " 500\n"), "axis stops at the first nice step above the max");
    cr_expect(strstr(all, "05-01"), "x label of the first day");
    cr_expect(strstr(all, "05-31") || strstr(all, "05-29") || strstr(all, "05-30"),
              "x labels run to the end of the month");
    /* chart 2: exact decimal ticks */
    for (const char *const *tk = (const char *const[]){"0.05", "0.1", "0.15", "0.2", "0.25", NULL};
         *tk; tk++)
        cr_expect(strstr(all, *tk), "y tick %s", *tk);
    /* vector bars: the first chart page's content has filled rectangles */
    /* appendix */
    cr_expect(strstr(all, "Hourly usage"));
    cr_expect(strstr(all, "2024-05-01 00:00"));
    cr_expect(strstr(all, "2024-05-31 23:00"));
    const char *lastrow = strstr(all, "2024-05-31 23:00");
    cr_expect(lastrow && strstr(lastrow, " 743 "), "last hourly value");
    cr_expect_gt(pages, 10, "744 hourly rows span many pages (got %d)", pages);
    for (int p = 1; p <= pages; p++) {
        char want[48];
        snprintf(want, sizeof want, "Page %d of %d", p, pages);
        cr_expect(strstr(all, want), "%s", want);
    }
    char *last = sh("pdftotext -layout -f %d -l %d '%s' -", pages, pages, path);
    cr_expect(strstr(last, "Hour "), "appendix header repeated on the last page");
    cr_expect(strstr(last, "(continued)"));
    cr_expect_eq(st[1], 744);
    cr_expect_eq(st[2], 744);
    cr_expect_eq(st[3], 0);
    buf_free(&b);
    pdf_template_free(t);
}

Test(pdf_usage, chart_drawn_as_vectors, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl("{\"logo\": null}");
    pdf_usage u = make_usage(1);
    u.n_hours = 0;
    buf b;
    buf_init(&b);
    char err[256] = "";
    cr_assert_eq(pdf_render_usage(t, &u, &b, err, sizeof err), 0, "%s", err);
    const char *path = write_pdf("chart", &b);
    cr_expect_eq(pages_of(path), 1);
    cr_expect_eq(count(sh("pdfimages -list '%s' | tail -n +3", path), "\n"), 0,
                 "no raster image: the chart is vector paths");
    /* brand blue (#1F5FAD) pixels exist in the chart area */
    sh("pdftoppm -r 30 -f 1 -l 1 -singlefile '%s' '%s/chart'", path, tmpdir);
    FILE *f = fopen(S("%s/chart.ppm", tmpdir), "rb");
    cr_assert(f);
    int w, h, maxv;
    cr_assert_eq(fscanf(f, "P6 %d %d %d", &w, &h, &maxv), 3);
    fgetc(f);
    size_t blue = 0;
    unsigned char px[3];
    while (fread(px, 1, 3, f) == 3)
        if (px[0] == 0x1f && px[1] == 0x5f && px[2] == 0xad) blue++;
    fclose(f);
    cr_expect_gt(blue, 50, "bars in the brand colour: %zu pixels", blue);
    buf_free(&b);
    pdf_template_free(t);
}

Test(pdf_usage, zero_usage_and_many_metrics, .init = setup, .fini = teardown) {
    pdf_template *t = load_tpl(NULL);
    pdf_usage u = make_usage(7);
    pdf_metric *m = (pdf_metric *)u.metrics;
    m[0].daily = NULL; /* all zero */
    u.n_hours = 48;
    buf b;
    buf_init(&b);
    char err[256] = "";
    cr_assert_eq(pdf_render_usage(t, &u, &b, err, sizeof err), 0, "%s", err);
    char *all = text_of(write_pdf("zero", &b));
    cr_expect_eq(count(all, "Hourly usage"), 2, "7 metrics → two appendix tables of ≤ 5");
    cr_expect(strstr(all, "Metric 6"));
    /* a bad decimal is an error naming the field */
    const char *bad[31];
    for (int i = 0; i < 31; i++) bad[i] = "1";
    bad[3] = "1,5";
    m[2].daily = bad;
    buf_free(&b);
    cr_expect_eq(pdf_render_usage(t, &u, &b, err, sizeof err), -1);
    cr_expect(strstr(err, "usage.metrics[2].daily[3]"), "%s", err);
    buf_free(&b);
    pdf_template_free(t);
}
