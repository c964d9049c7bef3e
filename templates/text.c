/* text.c — the render context: libharu document, fonts, text and pages.
 *
 * DESIGN — Fonts are chosen per string by coverage, first match wins:
 *   1. every code point in WinAnsi (CP1252): converted to CP1252 and drawn
 *      with the built-in Helvetica (nothing embedded);
 *   2. every code point in one single-byte code page of pdf_cp_names
 *      (CP1253 Greek, CP1251 Cyrillic, CP1250 Central European, CP1254
 *      Turkish, CP1257 Baltic, in that order): DejaVu Sans embedded as a
 *      simple TrueType font with that encoding;
 *   3. anything else (scripts mixed in one string, other scripts): DejaVu
 *      Sans embedded as UTF-8 (HPDF_UseUTFEncodings, a Type0 font).
 * Why 2: libharu 2.3.0 builds the UTF-8 font by looking up all 65,536 code
 * points in the cmap and writes a 128 KB CIDToGIDMap — most of a Greek
 * invoice's render time; a code page font is 256 codes.  Every DejaVu font
 * of a document shares one font descriptor, so the font program is embedded
 * once however many encodings draw from it.  libharu writes no ToUnicode for
 * simple TrueType fonts, only /Differences glyph names, which do not give
 * every character back ("Delta" reads as U+2206): we add the ToUnicode CMap
 * (cp_to_unicode), and put the glyphs viewers pick for those names in the
 * subset too (pdf_dv_alias).  libharu 2.3.0 also subsets composite glyphs
 * only one level deep, so a precomposed letter's base letter is used first
 * (pdf_dv_base), in every DejaVu font.
 *
 * The font file is loaded on the first string that needs it, so a pure-Latin
 * document embeds no font at all; a pdf_renderer keeps it loaded across
 * renders.  libharu 2.3.0 cannot draw code points outside the BMP: those and
 * invalid UTF-8 become U+FFFD (which only the UTF-8 font has) in a DejaVu
 * string, or '?' when the rest of the string is WinAnsi (so one emoji does
 * not embed a font).
 *
 * Widths come from the fonts' own metrics (Helvetica's measured once per
 * template, DejaVu's cached per render: libharu marks a glyph for the subset
 * when it is measured, so a cache across renders would change the output)
 * and we wrap text ourselves; HPDF_Page_TextRect is never used (it
 * mishandles UTF-8).
 *
 * Errors: HPDF_New(pdf_on_error, renderer) — the handler records the first
 * error in the renderer's current ctx; every status is passed to pdf_ck;
 * helpers are no-ops once c->failed.  No mutable globals: one ctx per render
 * and one renderer per thread at a time.  Objects libharu has no call for
 * (the ToUnicode stream) use its object API from the installed headers
 * (hpdf_objects.h, hpdf_doc.h), checked like any other call.
 */
#include "fmacros.h"
#include "pdf_int.h"
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>

const uint16_t pdf_cp1252[256] = {
    0,
    0x0001,
    0x0002,
    0x0003,
    0x0004,
    0x0005,
    0x0006,
    0x0007,
    0x0008,
    0x0009,
    0x000A,
    0x000B,
    0x000C,
    0x000D,
    0x000E,
    0x000F,
    0x0010,
    0x0011,
    0x0012,
    0x0013,
    0x0014,
    0x0015,
    0x0016,
    0x0017,
    0x0018,
    0x0019,
    0x001A,
    0x001B,
    0x001C,
    0x001D,
    0x001E,
    0x001F,
    /* 0x20-0x7F: ASCII, filled below by the initialiser pattern */
    0x20,
    0x21,
    0x22,
    0x23,
    0x24,
    0x25,
    0x26,
    0x27,
    0x28,
    0x29,
    0x2A,
    0x2B,
    0x2C,
    0x2D,
    0x2E,
    0x2F,
    0x30,
    0x31,
    0x32,
    0x33,
    0x34,
    0x35,
    0x36,
    0x37,
    0x38,
    0x39,
    0x3A,
    0x3B,
    0x3C,
    0x3D,
    0x3E,
    0x3F,
    0x40,
    0x41,
    0x42,
    0x43,
    0x44,
    0x45,
    0x46,
    0x47,
    0x48,
    0x49,
    0x4A,
    0x4B,
    0x4C,
    0x4D,
    0x4E,
    0x4F,
    0x50,
    0x51,
    0x52,
    0x53,
    0x54,
    0x55,
    0x56,
    0x57,
    0x58,
    0x59,
    0x5A,
    0x5B,
    0x5C,
    0x5D,
    0x5E,
    0x5F,
    0x60,
    0x61,
    0x62,
    0x63,
    0x64,
    0x65,
    0x66,
    0x67,
    0x68,
    0x69,
    0x6A,
    0x6B,
    0x6C,
    0x6D,
    0x6E,
    0x6F,
    0x70,
    0x71,
    0x72,
    0x73,
    0x74,
    0x75,
    0x76,
    0x77,
    0x78,
    0x79,
    0x7A,
    0x7B,
    0x7C,
    0x7D,
    0x7E,
    0,
    /* 0x80-0x9F */
    0x20AC,
    0,
    0x201A,
    0x0192,
    0x201E,
    0x2026,
    0x2020,
    0x2021,
    0x02C6,
    0x2030,
    0x0160,
    0x2039,
    0x0152,
    0,
    0x017D,
    0,
    0,
    0x2018,
    0x2019,
    0x201C,
    0x201D,
    0x2022,
    0x2013,
    0x2014,
    0x02DC,
    0x2122,
    0x0161,
    0x203A,
    0x0153,
    0,
    0x017E,
    0x0178,
    /* 0xA0-0xFF: Latin-1 */
    0xA0,
    0xA1,
    0xA2,
    0xA3,
    0xA4,
    0xA5,
    0xA6,
    0xA7,
    0xA8,
    0xA9,
    0xAA,
    0xAB,
    0xAC,
    0xAD,
    0xAE,
    0xAF,
    0xB0,
    0xB1,
    0xB2,
    0xB3,
    0xB4,
    0xB5,
    0xB6,
    0xB7,
    0xB8,
    0xB9,
    0xBA,
    0xBB,
    0xBC,
    0xBD,
    0xBE,
    0xBF,
    0xC0,
    0xC1,
    0xC2,
    0xC3,
    0xC4,
    0xC5,
    0xC6,
    0xC7,
    0xC8,
    0xC9,
    0xCA,
    0xCB,
    0xCC,
    0xCD,
    0xCE,
    0xCF,
    0xD0,
    0xD1,
    0xD2,
    0xD3,
    0xD4,
    0xD5,
    0xD6,
    0xD7,
    0xD8,
    0xD9,
    0xDA,
    0xDB,
    0xDC,
    0xDD,
    0xDE,
    0xDF,
    0xE0,
    0xE1,
    0xE2,
    0xE3,
    0xE4,
    0xE5,
    0xE6,
    0xE7,
    0xE8,
    0xE9,
    0xEA,
    0xEB,
    0xEC,
    0xED,
    0xEE,
    0xEF,
    0xF0,
    0xF1,
    0xF2,
    0xF3,
    0xF4,
    0xF5,
    0xF6,
    0xF7,
    0xF8,
    0xF9,
    0xFA,
    0xFB,
    0xFC,
    0xFD,
    0xFE,
    0xFF,
};

/* Unicode → WinAnsi byte, 0 when there is none. */
static unsigned char to_cp1252(uint32_t cp) {
    if ((cp >= 0x20 && cp < 0x7F) || (cp >= 0xA0 && cp <= 0xFF)) return (unsigned char)cp;
    if (cp < 0x2000 && cp != 0x0192 && cp != 0x02C6 && cp != 0x0160 && cp != 0x0152 &&
        cp != 0x017D && cp != 0x02DC && cp != 0x0161 && cp != 0x0153 && cp != 0x017E &&
        cp != 0x0178)
        return 0;
    for (int i = 0x80; i < 0xA0; i++)
        if (pdf_cp1252[i] == cp) return (unsigned char)i;
    return 0;
}

/* Decodes one UTF-8 sequence at s[0..n); returns its length (>= 1) and the
 * code point, or 0xFFFFFFFF for an invalid sequence (length 1). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (b >= 0xC2 && b <= 0xDF)
        len = 2, v = b & 0x1F, min = 0x80;
    else if (b >= 0xE0 && b <= 0xEF)
        len = 3, v = b & 0x0F, min = 0x800;
    else if (b >= 0xF0 && b <= 0xF4)
        len = 4, v = b & 0x07, min = 0x10000;
    else {
        *cp = 0xFFFFFFFFu;
        return 1;
    }
    if (len > n) len = n; /* truncated at the end: checked below */
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) { /* a truncated sequence is one replacement */
            *cp = 0xFFFFFFFFu;
            return i;
        }
        v = v << 6 | (s[i] & 0x3F);
    }
    if (len < (b >= 0xF0 ? 4u : b >= 0xE0 ? 3u : 2u)) {
        *cp = 0xFFFFFFFFu;
        return len;
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFFFFFFu;
        return 1;
    }
    *cp = v;
    return len;
}

static void put_utf8(buf *b, uint32_t cp) {
    char u[3];
    if (cp < 0x80) {
        buf_addc(b, (char)cp);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F));
        buf_add(b, u, 2);
    } else {
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3F)),
        u[2] = (char)(0x80 | (cp & 0x3F));
        buf_add(b, u, 3);
    }
}

/* ---- errors ----------------------------------------------------------- */
void pdf_fail(pdf_ctx *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
}

void pdf_ck(pdf_ctx *c, HPDF_STATUS st, const char *what) {
    if (st == HPDF_OK) return;
    pdf_fail(c, "libharu: %s failed (error 0x%04X, detail %u)", what,
             (unsigned)(c->hpdf_err ? c->hpdf_err : st), (unsigned)c->hpdf_detail);
}

/* libharu's handler for a renderer's document: reports to its current render. */
static void pdf_on_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void *user_data) {
    pdf_renderer *r = user_data;
    pdf_ctx *c = r->cur;
    if (c && !c->hpdf_err) {
        c->hpdf_err = error_no;
        c->hpdf_detail = detail_no;
    }
}

/* ---- fonts ------------------------------------------------------------ */
const char *const pdf_cp_names[PDF_N_CP] = {"CP1253", "CP1251", "CP1250", "CP1254", "CP1257"};

/* Glyph names libharu writes in a code page's /Differences that the Adobe
 * Glyph List maps to another code point first ("Delta" is U+2206 before
 * U+0394): viewers then draw that code point's glyph, so the subset must
 * hold it too (the ToUnicode CMap keeps the text exact). */
static const uint16_t pdf_dv_alias[][2] = {
    {0x0394, 0x2206}, /* Delta: increment */
    {0x03A9, 0x2126}, /* Omega: ohm sign */
    {0x03BC, 0x00B5}, /* mu: micro sign */
};

/* libharu 2.3.0 adds a composite glyph's components to the subset but not
 * their components: once "Ά" (tonos + Alpha) is used, Alpha is marked and a
 * later "Α" never adds Latin "A", which Alpha is built from — a blank
 * glyph.  So a precomposed letter's base is used first (base-first order
 * puts every level in): precomposed Greek and Cyrillic → canonical base
 * (Unicode decompositions whose base is not ASCII), sorted. */
static const uint16_t pdf_dv_base[][2] = {
    {0x0385, 0x00A8}, {0x0386, 0x0391}, {0x0387, 0x00B7}, {0x0388, 0x0395}, {0x0389, 0x0397},
    {0x038A, 0x0399}, {0x038C, 0x039F}, {0x038E, 0x03A5}, {0x038F, 0x03A9}, {0x0390, 0x03CA},
    {0x03AA, 0x0399}, {0x03AB, 0x03A5}, {0x03AC, 0x03B1}, {0x03AD, 0x03B5}, {0x03AE, 0x03B7},
    {0x03AF, 0x03B9}, {0x03B0, 0x03CB}, {0x03CA, 0x03B9}, {0x03CB, 0x03C5}, {0x03CC, 0x03BF},
    {0x03CD, 0x03C5}, {0x03CE, 0x03C9}, {0x03D3, 0x03D2}, {0x03D4, 0x03D2}, {0x0400, 0x0415},
    {0x0401, 0x0415}, {0x0403, 0x0413}, {0x0407, 0x0406}, {0x040C, 0x041A}, {0x040D, 0x0418},
    {0x040E, 0x0423}, {0x0419, 0x0418}, {0x0439, 0x0438}, {0x0450, 0x0435}, {0x0451, 0x0435},
    {0x0453, 0x0433}, {0x0457, 0x0456}, {0x045C, 0x043A}, {0x045D, 0x0438}, {0x045E, 0x0443},
};

static int cp_rev_cmp(const void *a, const void *b) {
    const pdf_cp_rev *x = a, *y = b;
    if (x->u != y->u) return x->u < y->u ? -1 : 1;
    return (x->pages > y->pages) - (x->pages < y->pages); /* pages: one bit each here */
}

HPDF_STATUS pdf_cp_init(pdf_template *t, HPDF_Doc doc) {
    memset(t->cp_uni, 0, sizeof t->cp_uni);
    memset(t->cp_rev, 0, sizeof t->cp_rev);
    size_t n = 0; /* one entry per (page, byte) first, merged per code point below */
    for (int k = 0; k < PDF_N_CP; k++) {
        HPDF_Encoder en = HPDF_GetEncoder(doc, pdf_cp_names[k]);
        if (!en) return HPDF_GetError(doc) ? HPDF_GetError(doc) : HPDF_INVALID_ENCODER;
        for (int b = 0x20; b < 256; b++) {
            HPDF_UNICODE u = HPDF_Encoder_GetUnicode(en, (HPDF_UINT16)b);
            if (u < 0x20 || u == 0x7F || (u >= 0x80 && u < 0xA0) || u >= 0xFFFE) continue;
            if (b < 0x80 && u != (HPDF_UNICODE)b) continue; /* never: ASCII is shared */
            t->cp_uni[k][b] = u;
            if (b < 0x80) continue;
            if (ML_NEVER(n == ML_ARRAY_LEN(t->cp_rev))) return HPDF_INVALID_ENCODER;
            t->cp_rev[n].u = (uint16_t)u;
            t->cp_rev[n].pages = (uint8_t)(1u << k);
            t->cp_rev[n].byte[k] = (uint8_t)b;
            n++;
        }
    }
    qsort(t->cp_rev, n, sizeof t->cp_rev[0], cp_rev_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && t->cp_rev[m - 1].u == t->cp_rev[i].u) {
            pdf_cp_rev *d = &t->cp_rev[m - 1];
            for (int k = 0; k < PDF_N_CP; k++)
                if (t->cp_rev[i].pages & (1u << k) && !(d->pages & (1u << k))) {
                    d->pages |= (uint8_t)(1u << k);
                    d->byte[k] = t->cp_rev[i].byte[k];
                }
        } else {
            t->cp_rev[m++] = t->cp_rev[i];
        }
    }
    t->n_cp_rev = m;
    return 0;
}

static const pdf_cp_rev *cp_find(const pdf_template *t, uint32_t u) {
    size_t lo = 0, hi = t->n_cp_rev;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->cp_rev[mid].u < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->n_cp_rev && t->cp_rev[lo].u == u ? &t->cp_rev[lo] : NULL;
}

/* DejaVu Sans, loaded into the document on the first string that needs it.
 * One face per document: each face's tables are embedded, so bold
 * non-WinAnsi text is DejaVu Sans drawn fill + stroke (synthetic bold). */
static const char *dv_load(pdf_ctx *c) {
    if (c->dv_name || c->failed) return c->dv_name;
    static const char file[] = ML_DEJAVU_DIR "/DejaVuSans.ttf";
    if (!c->r->dv_name) c->r->dv_name = HPDF_LoadTTFontFromFile(c->doc, file, HPDF_TRUE);
    c->dv_name = c->r->dv_name; /* kept by the handle across HPDF_NewDoc */
    c->dv_w = malloc(65536 * sizeof(int16_t));
    if (!c->dv_name || !c->dv_w) {
        pdf_fail(c, "cannot load %s (install fonts-dejavu-core; libharu error 0x%04X)", file,
                 (unsigned)c->hpdf_err);
        return NULL;
    }
    memset(c->dv_w, 0xFF, 65536 * sizeof(int16_t)); /* -1: not measured yet */
    return c->dv_name;
}

/* The ToUnicode CMap of code page k: libharu 2.3.0 writes none for simple
 * TrueType fonts, and its glyph names alone do not give the text back
 * exactly (see pdf_dv_alias).  Built with libharu's object API (installed
 * headers hpdf_objects.h / hpdf_doc.h). */
static void cp_to_unicode(pdf_ctx *c, HPDF_Font f, int k) {
    const uint16_t *uni = c->t->cp_uni[k];
    buf cm, *b = &cm;
    buf_init(b);
    buf_printf(b,
               "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
               "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
               "/CMapName /Meterline-%s-UCS def\n/CMapType 2 def\n"
               "1 begincodespacerange\n<00> <FF>\nendcodespacerange\n"
               "1 beginbfrange\n<20> <7E> <0020>\nendbfrange\n",
               pdf_cp_names[k]);
    int n = 0;
    for (int i = 0x80; i < 256; i++) n += uni[i] != 0;
    for (int i = 0x80, in_block = 0; i < 256; i++) {
        if (!uni[i]) continue;
        if (in_block == 0) buf_printf(b, "%d beginbfchar\n", n > 100 ? 100 : n);
        buf_printf(b, "<%02X> <%04X>\n", (unsigned)i, (unsigned)uni[i]);
        n--;
        if (++in_block == 100 || n == 0) {
            buf_adds(b, "endbfchar\n");
            in_block = 0;
        }
    }
    buf_adds(b, "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    HPDF_Dict s = b->oom ? NULL : HPDF_DictStream_New(c->doc->mmgr, c->doc->xref);
    if (b->oom) {
        pdf_fail(c, "out of memory");
    } else if (!s) {
        pdf_ck(c, HPDF_GetError(c->doc) ? HPDF_GetError(c->doc) : HPDF_FAILD_TO_ALLOC_MEM,
               "HPDF_DictStream_New (ToUnicode)");
    } else {
        s->filter = f->filter;
        c->dv_tu[k] = s;
        pdf_ck(c, HPDF_Stream_Write(s->stream, (const HPDF_BYTE *)b->p, (HPDF_UINT)b->len),
               "HPDF_Stream_Write (ToUnicode)");
        pdf_ck(c, HPDF_Dict_Add(f, "ToUnicode", s), "HPDF_Dict_Add (ToUnicode)");
    }
    buf_free(b);
}

/* A document that needs the UTF-8 font is slow to make anyway (see dv_font)
 * and its CIDToGIDMap is 128 KB: there every DejaVu stream is compressed —
 * the font program, the map, the ToUnicode CMaps (libharu takes a stream's
 * filter from its font when it writes it). */
static void dv_compress(pdf_ctx *c) {
    c->dv_utf8->filter = HPDF_STREAM_FILTER_FLATE_DECODE;
    for (int k = 0; k < PDF_N_CP; k++) {
        if (c->dv_cp[k]) c->dv_cp[k]->filter = HPDF_STREAM_FILTER_FLATE_DECODE;
        if (c->dv_tu[k]) c->dv_tu[k]->filter = HPDF_STREAM_FILTER_FLATE_DECODE;
    }
}

/* The DejaVu font for encoding enc (a code page index or PDF_ENC_UTF8). */
static HPDF_Font dv_font(pdf_ctx *c, int enc) {
    HPDF_Font *slot = enc == PDF_ENC_UTF8 ? &c->dv_utf8 : &c->dv_cp[enc];
    if (*slot || c->failed) return *slot;
    const char *name = dv_load(c);
    if (!name) return NULL;
    if (enc == PDF_ENC_UTF8) {
        /* ~65,536 cmap lookups in libharu 2.3.0: only for mixed scripts.
         * The encoder stays registered on the handle (twice is an error). */
        if (!c->r->utf8) pdf_ck(c, HPDF_UseUTFEncodings(c->doc), "HPDF_UseUTFEncodings");
        if (c->failed) return NULL;
        c->r->utf8 = true;
    }
    const char *en = enc == PDF_ENC_UTF8 ? "UTF-8" : pdf_cp_names[enc];
    *slot = HPDF_GetFont(c->doc, name, en);
    if (!*slot) {
        pdf_fail(c, "cannot use DejaVu Sans as %s (libharu error 0x%04X)", en,
                 (unsigned)c->hpdf_err);
        return NULL;
    }
    if (enc != PDF_ENC_UTF8) cp_to_unicode(c, *slot, enc);
    if (c->dv_utf8) dv_compress(c);
    return c->failed ? NULL : *slot;
}

static HPDF_Font font_of(pdf_ctx *c, int enc, int style) {
    return enc == PDF_ENC_WINANSI ? c->helv[style] : dv_font(c, enc);
}

/* ---- encoding --------------------------------------------------------- */
/* Which encoding draws s: WinAnsi, else the first code page with every code
 * point, else UTF-8.  Replacements count: U+FFFD is in no code page. */
static int choose_enc(const pdf_template *t, const unsigned char *u, size_t n) {
    bool winansi = true;
    unsigned pages = (1u << PDF_N_CP) - 1;
    for (size_t i = 0; i < n && (winansi || pages);) {
        uint32_t cp;
        i += utf8_next(u + i, n - i, &cp);
        if (cp < 0x80) continue;               /* ASCII and controls (→ spaces) */
        if (cp >= 0x80 && cp < 0xA0) continue; /* C1 controls become spaces */
        if (cp == 0xFFFFFFFFu || cp > 0xFFFF) {
            pages = 0; /* U+FFFD unless the string stays WinAnsi ('?') */
            continue;
        }
        if (winansi && !to_cp1252(cp)) winansi = false;
        if (pages) {
            const pdf_cp_rev *r = cp_find(t, cp);
            pages &= r ? r->pages : 0;
        }
    }
    if (winansi) return PDF_ENC_WINANSI;
    for (int k = 0; k < PDF_N_CP; k++)
        if (pages & (1u << k)) return k;
    return PDF_ENC_UTF8;
}

/* Marks the alias glyph of u (see pdf_dv_alias) in the subset, once. */
static void mark_alias(pdf_ctx *c, HPDF_Font f, uint32_t u) {
    for (size_t a = 0; a < ML_ARRAY_LEN(pdf_dv_alias); a++) {
        if (pdf_dv_alias[a][0] != u || (c->dv_alias & (1u << a))) continue;
        c->dv_alias |= 1u << a;
        if (HPDF_Font_GetUnicodeWidth(f, pdf_dv_alias[a][1]) <= 0)
            pdf_fail(c, "libharu: no DejaVu Sans width for U+%04X", (unsigned)pdf_dv_alias[a][1]);
    }
}

/* Before u's glyph is first used in the document: its base letter's, and
 * that one's base first (see pdf_dv_base). */
static void mark_base(pdf_ctx *c, HPDF_Font f, uint32_t u) {
    size_t lo = 0, hi = ML_ARRAY_LEN(pdf_dv_base);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pdf_dv_base[mid][0] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == ML_ARRAY_LEN(pdf_dv_base) || pdf_dv_base[lo][0] != u) return;
    if (c->dv_based & ((uint64_t)1 << lo)) return;
    c->dv_based |= (uint64_t)1 << lo;
    uint32_t base = pdf_dv_base[lo][1];
    mark_base(c, f, base);
    if (HPDF_Font_GetUnicodeWidth(f, (HPDF_UNICODE)base) <= 0)
        pdf_fail(c, "libharu: no DejaVu Sans width for U+%04X", (unsigned)base);
}

pdf_enc pdf_encode(pdf_ctx *c, const char *s, buf *out, bool keep_newlines) {
    pdf_enc e = {"", 0, PDF_ENC_WINANSI};
    out->len = 0;
    if (out->p) out->p[0] = 0;
    if (!s || c->failed) return e;
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    int enc = choose_enc(c->t, u, n);
    HPDF_Font f = enc == PDF_ENC_WINANSI ? NULL : dv_font(c, enc); /* errors surface early */
    if (c->failed) return e;
    if (f) /* before any of the string's glyphs is measured or drawn */
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            i += utf8_next(u + i, n - i, &cp);
            if (cp >= 0x80 && cp <= 0xFFFF) mark_base(c, f, cp);
        }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += utf8_next(u + i, n - i, &cp);
        if (cp == '\n' && keep_newlines) {
            buf_addc(out, '\n');
        } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
            buf_addc(out, ' ');
        } else if (cp < 0x80) {
            buf_addc(out, (char)cp);
        } else if (enc == PDF_ENC_WINANSI) {
            buf_addc(out, cp == 0xFFFFFFFFu || cp > 0xFFFF ? '?' : (char)to_cp1252(cp));
        } else if (enc == PDF_ENC_UTF8) {
            put_utf8(out, cp == 0xFFFFFFFFu || cp > 0xFFFF ? 0xFFFD : cp);
        } else {
            const pdf_cp_rev *r = cp_find(c->t, cp);
            if (ML_NEVER(!r)) continue; /* choose_enc checked every code point */
            buf_addc(out, (char)r->byte[enc]);
            mark_alias(c, f, cp);
        }
    }
    if (out->oom) {
        pdf_fail(c, "out of memory");
        return e;
    }
    e.p = out->p ? out->p : "";
    e.len = out->len;
    e.enc = enc;
    return e;
}

/* Width of one character at p (1/1000 em); *adv gets its byte length. */
static int char_w(pdf_ctx *c, pdf_enc e, int style, size_t off, size_t *adv) {
    const unsigned char *p = (const unsigned char *)e.p + off;
    if (e.enc == PDF_ENC_WINANSI) {
        *adv = 1;
        return c->t->helv_w[style][*p];
    }
    uint32_t cp;
    if (e.enc == PDF_ENC_UTF8) {
        *adv = utf8_next(p, e.len - off, &cp);
        if (cp > 0xFFFF) cp = 0xFFFD; /* cannot happen: encode replaced them */
    } else {
        *adv = 1;
        cp = c->t->cp_uni[e.enc][*p];
    }
    HPDF_Font f = dv_font(c, e.enc);
    if (!f) return 0;
    int16_t *w = &c->dv_w[cp];
    if (*w < 0) {
        HPDF_INT v = HPDF_Font_GetUnicodeWidth(f, (HPDF_UNICODE)cp);
        *w = (int16_t)(v > 0 && v < 30000 ? v : 0);
    }
    return *w;
}

static HPDF_REAL span_w(pdf_ctx *c, pdf_enc e, pdf_span sp, int style, HPDF_REAL size) {
    long total = 0;
    for (size_t i = sp.off; i < sp.off + sp.len;) {
        size_t adv;
        total += char_w(c, e, style, i, &adv);
        i += adv;
    }
    return (HPDF_REAL)total * size / 1000.0f;
}

HPDF_REAL pdf_width(pdf_ctx *c, pdf_enc e, int style, HPDF_REAL size) {
    pdf_span all = {0, e.len};
    return span_w(c, e, all, style, size);
}

size_t pdf_wrap(pdf_ctx *c, pdf_enc e, int style, HPDF_REAL size, HPDF_REAL w, pdf_span *spans,
                size_t max) {
    size_t nl = 0;
    long limit = (long)(w * 1000.0f / size);
    size_t start = 0, brk = 0, brk_end = 0; /* brk: a space; line resumes at brk_end */
    long lw = 0, w_at_brk = 0;
#define EMIT(a, b)                                                                                 \
    do {                                                                                           \
        size_t a_ = (a), b_ = (b);                                                                 \
        while (b_ > a_ && e.p[b_ - 1] == ' ') b_--;                                                \
        if (nl < max) spans[nl] = (pdf_span){a_, b_ - a_};                                         \
        nl++;                                                                                      \
    } while (0)
    for (size_t i = 0; i < e.len;) {
        if (e.p[i] == '\n') {
            EMIT(start, i);
            start = ++i;
            brk = brk_end = start;
            lw = 0;
            continue;
        }
        size_t adv;
        long cw = char_w(c, e, style, i, &adv);
        if (lw + cw > limit && i > start && e.p[i] != ' ') {
            if (brk_end > start) {
                EMIT(start, brk);
                start = brk_end;
                lw -= w_at_brk;
            } else {
                EMIT(start, i);
                start = i;
                lw = 0;
            }
            brk = brk_end = start;
        }
        if (e.p[i] == ' ' && i == start) { /* no leading spaces on a wrapped line */
            start = brk = brk_end = i + adv;
            i += adv;
            continue;
        }
        lw += cw;
        if (e.p[i] == ' ') {
            brk = i;
            brk_end = i + adv;
            w_at_brk = lw;
        }
        i += adv;
    }
    if (start < e.len || nl == 0) EMIT(start, e.len);
#undef EMIT
    return nl;
}

/* ---- drawing ---------------------------------------------------------- */
static void begin_text(pdf_ctx *c) {
    if (c->in_text || c->failed) return;
    pdf_ck(c, HPDF_Page_BeginText(c->page), "HPDF_Page_BeginText");
    c->in_text = true;
    c->cur_font = NULL;
}

void pdf_end_text(pdf_ctx *c) {
    if (!c->in_text || c->failed) return;
    pdf_ck(c, HPDF_Page_EndText(c->page), "HPDF_Page_EndText");
    c->in_text = false;
}

void pdf_draw(pdf_ctx *c, pdf_enc e, pdf_span sp, int style, HPDF_REAL size, HPDF_REAL x,
              HPDF_REAL y, int align) {
    if (c->failed || sp.len == 0) return;
    HPDF_Font f = font_of(c, e.enc, style);
    if (!f) return;
    if (align == PDF_RIGHT)
        x -= span_w(c, e, sp, style, size);
    else if (align == PDF_CENTER)
        x -= span_w(c, e, sp, style, size) / 2;
    c->line.len = 0;
    buf_add(&c->line, e.p + sp.off, sp.len);
    buf_addc(&c->line, 0);
    if (c->line.oom) {
        pdf_fail(c, "out of memory");
        return;
    }
    begin_text(c);
    if (f != c->cur_font || size != c->cur_size) {
        pdf_ck(c, HPDF_Page_SetFontAndSize(c->page, f, size), "HPDF_Page_SetFontAndSize");
        c->cur_font = f;
        c->cur_size = size;
    }
    bool fake_bold = e.enc != PDF_ENC_WINANSI && style == PDF_BOLD;
    if (fake_bold) {
        HPDF_RGBColor fill = HPDF_Page_GetRGBFill(c->page);
        pdf_ck(c, HPDF_Page_SetRGBStroke(c->page, fill.r, fill.g, fill.b),
               "HPDF_Page_SetRGBStroke");
        pdf_ck(c, HPDF_Page_SetLineWidth(c->page, size * 0.04f), "HPDF_Page_SetLineWidth");
        pdf_ck(c, HPDF_Page_SetTextRenderingMode(c->page, HPDF_FILL_THEN_STROKE),
               "HPDF_Page_SetTextRenderingMode");
    }
    pdf_ck(c, HPDF_Page_TextOut(c->page, x, y, c->line.p), "HPDF_Page_TextOut");
    if (fake_bold)
        pdf_ck(c, HPDF_Page_SetTextRenderingMode(c->page, HPDF_FILL),
               "HPDF_Page_SetTextRenderingMode");
}

void pdf_text(pdf_ctx *c, const char *s, int style, HPDF_REAL size, HPDF_REAL x, HPDF_REAL y,
              int align) {
    pdf_enc e = pdf_encode(c, s, &c->enc, false);
    pdf_span all = {0, e.len};
    pdf_draw(c, e, all, style, size, x, y, align);
}

#define PDF_MAX_WRAP 64

size_t pdf_text_box(pdf_ctx *c, const char *s, int style, HPDF_REAL size, HPDF_REAL leading,
                    HPDF_REAL x, HPDF_REAL y, HPDF_REAL w, int align, size_t max_lines) {
    pdf_span sp[PDF_MAX_WRAP];
    pdf_enc e = pdf_encode(c, s, &c->enc, true);
    size_t n = pdf_wrap(c, e, style, size, w, sp, PDF_MAX_WRAP);
    if (n > PDF_MAX_WRAP) n = PDF_MAX_WRAP;
    if (n > max_lines) n = max_lines;
    HPDF_REAL ax = align == PDF_RIGHT ? x + w : align == PDF_CENTER ? x + w / 2 : x;
    for (size_t i = 0; i < n; i++)
        pdf_draw(c, e, sp[i], style, size, ax, y - leading * (HPDF_REAL)i, align);
    return n;
}

size_t pdf_text_lines(pdf_ctx *c, const char *s, int style, HPDF_REAL size, HPDF_REAL w) {
    pdf_span sp[1];
    if (!s || !*s) return 0;
    pdf_enc e = pdf_encode(c, s, &c->enc, true);
    size_t n = pdf_wrap(c, e, style, size, w, sp, 1);
    return n > PDF_MAX_WRAP ? PDF_MAX_WRAP : n;
}

void pdf_fill_rgb(pdf_ctx *c, HPDF_REAL r, HPDF_REAL g, HPDF_REAL b) {
    if (c->failed) return;
    pdf_ck(c, HPDF_Page_SetRGBFill(c->page, r, g, b), "HPDF_Page_SetRGBFill");
}

void pdf_fill_brand(pdf_ctx *c) { pdf_fill_rgb(c, c->t->brand[0], c->t->brand[1], c->t->brand[2]); }

void pdf_rect(pdf_ctx *c, HPDF_REAL x, HPDF_REAL y, HPDF_REAL w, HPDF_REAL h) {
    pdf_end_text(c);
    if (c->failed) return;
    pdf_ck(c, HPDF_Page_Rectangle(c->page, x, y, w, h), "HPDF_Page_Rectangle");
    pdf_ck(c, HPDF_Page_Fill(c->page), "HPDF_Page_Fill");
}

static void line(pdf_ctx *c, HPDF_REAL x0, HPDF_REAL y0, HPDF_REAL x1, HPDF_REAL y1,
                 HPDF_REAL width, HPDF_REAL gray) {
    pdf_end_text(c);
    if (c->failed) return;
    pdf_ck(c, HPDF_Page_SetGrayStroke(c->page, gray), "HPDF_Page_SetGrayStroke");
    pdf_ck(c, HPDF_Page_SetLineWidth(c->page, width), "HPDF_Page_SetLineWidth");
    pdf_ck(c, HPDF_Page_MoveTo(c->page, x0, y0), "HPDF_Page_MoveTo");
    pdf_ck(c, HPDF_Page_LineTo(c->page, x1, y1), "HPDF_Page_LineTo");
    pdf_ck(c, HPDF_Page_Stroke(c->page), "HPDF_Page_Stroke");
}

void pdf_hline(pdf_ctx *c, HPDF_REAL x0, HPDF_REAL x1, HPDF_REAL y, HPDF_REAL width,
               HPDF_REAL gray) {
    line(c, x0, y, x1, y, width, gray);
}

void pdf_vline(pdf_ctx *c, HPDF_REAL x, HPDF_REAL y0, HPDF_REAL y1, HPDF_REAL width,
               HPDF_REAL gray) {
    line(c, x, y0, x, y1, width, gray);
}

/* ---- pages ------------------------------------------------------------ */
static void watermark(pdf_ctx *c) {
    if (!c->watermark || c->failed) return;
    HPDF_Page p = c->page;
    HPDF_REAL size = 110;
    pdf_enc e = pdf_encode(c, c->watermark, &c->enc, false);
    HPDF_REAL w = pdf_width(c, e, PDF_BOLD, size);
    /* 45 degrees about the page centre; (w/2, cap height/2) back along the axes */
    const HPDF_REAL k = 0.70710678f;
    HPDF_REAL cx = c->t->page_w / 2, cy = c->t->page_h / 2, h = size * 0.36f;
    HPDF_REAL x = cx - k * (w / 2) + k * h, y = cy - k * (w / 2) - k * h;
    pdf_fill_rgb(c, 0.90f, 0.90f, 0.90f);
    begin_text(c);
    pdf_ck(c, HPDF_Page_SetFontAndSize(p, c->helv[PDF_BOLD], size), "HPDF_Page_SetFontAndSize");
    c->cur_font = c->helv[PDF_BOLD];
    c->cur_size = size;
    pdf_ck(c, HPDF_Page_SetTextMatrix(p, k, k, -k, k, x, y), "HPDF_Page_SetTextMatrix");
    pdf_ck(c, HPDF_Page_ShowText(p, e.p), "HPDF_Page_ShowText");
    pdf_end_text(c);
    pdf_fill_rgb(c, 0, 0, 0);
}

void pdf_new_page(pdf_ctx *c) {
    pdf_end_text(c);
    if (c->failed) return;
    if (c->n_pages == c->cap_pages) {
        size_t cap = c->cap_pages ? c->cap_pages * 2 : 16;
        HPDF_Page *np = realloc(c->pages, cap * sizeof *np);
        if (!np) {
            pdf_fail(c, "out of memory");
            return;
        }
        c->pages = np;
        c->cap_pages = cap;
    }
    HPDF_Page p = HPDF_AddPage(c->doc);
    if (!p) {
        pdf_ck(c, c->hpdf_err ? c->hpdf_err : HPDF_FAILD_TO_ALLOC_MEM, "HPDF_AddPage");
        return;
    }
    c->pages[c->n_pages++] = p;
    c->page = p;
    pdf_ck(c, HPDF_Page_SetWidth(p, c->t->page_w), "HPDF_Page_SetWidth");
    pdf_ck(c, HPDF_Page_SetHeight(p, c->t->page_h), "HPDF_Page_SetHeight");
    c->y = c->top;
    watermark(c);
}

bool pdf_need(pdf_ctx *c, HPDF_REAL h) {
    if (c->y - h >= c->bottom || c->failed) return false;
    pdf_new_page(c);
    if (c->cont) {
        pdf_fill_rgb(c, 0.4f, 0.4f, 0.4f);
        pdf_text_box(c, c->cont, PDF_REG, 8, 10, c->left, c->y - 8, c->right - c->left, PDF_LEFT,
                     1);
        pdf_fill_rgb(c, 0, 0, 0);
        c->y -= 20;
    }
    if (c->on_new_page) c->on_new_page(c, c->on_new_page_arg);
    return true;
}

void pdf_draw_letterhead(pdf_ctx *c, const pdf_party *seller) {
    const pdf_template *t = c->t;
    HPDF_REAL y = c->top, x = c->left;
    HPDF_REAL logo_bottom = y;
    if (c->logo) {
        pdf_end_text(c);
        pdf_ck(c, HPDF_Page_DrawImage(c->page, c->logo, x, y - t->logo_h, t->logo_w, t->logo_h),
               "HPDF_Page_DrawImage");
        logo_bottom = y - t->logo_h;
    }
    /* seller block, right-aligned */
    HPDF_REAL rx = c->right, sy = y - 11;
    pdf_fill_rgb(c, 0, 0, 0);
    pdf_text(c, seller->name, PDF_BOLD, 11, rx, sy, PDF_RIGHT);
    sy -= 13;
    for (size_t i = 0; i < seller->n_address; i++, sy -= 11)
        pdf_text(c, seller->address[i], PDF_REG, 9, rx, sy, PDF_RIGHT);
    char tmp[160];
    if (seller->tax_id && *seller->tax_id) {
        snprintf(tmp, sizeof tmp, "%s: %s", t->labels[PDF_L_TAX_ID], seller->tax_id);
        pdf_text(c, tmp, PDF_REG, 9, rx, sy, PDF_RIGHT);
        sy -= 11;
    }
    if (seller->email && *seller->email) {
        pdf_text(c, seller->email, PDF_REG, 9, rx, sy, PDF_RIGHT);
        sy -= 11;
    }
    c->y = (sy < logo_bottom ? sy : logo_bottom) - 16;
}

/* ---- begin / finish --------------------------------------------------- */
/* Page contents and images are compressed; font programs (HPDF_COMP_METADATA
 * covers them) are not, unless the document needs DejaVu as UTF-8
 * (dv_compress): deflating DejaVu Sans' ~140 KB of tables took half of a
 * Greek invoice's render time (see tests/bench/run-pdf). */
#define PDF_COMPRESSION (HPDF_COMP_TEXT | HPDF_COMP_IMAGE)

pdf_renderer *pdf_renderer_new(void) { return calloc(1, sizeof(pdf_renderer)); }

void pdf_renderer_release(pdf_renderer *r) {
    if (r->doc) HPDF_Free(r->doc);
    r->doc = NULL;
    r->dv_name = NULL;
    r->utf8 = false;
}

void pdf_renderer_free(pdf_renderer *r) {
    if (!r) return;
    pdf_renderer_release(r);
    free(r);
}

int pdf_ctx_begin(pdf_ctx *c, pdf_renderer *r, const pdf_template *t, char *err, size_t errlen) {
    assert(r && !r->cur); /* one render at a time per renderer */
    memset(c, 0, sizeof *c);
    c->t = t;
    c->r = r;
    r->cur = c;
    buf_init(&c->enc);
    buf_init(&c->line);
    c->top = t->page_h - t->m_top;
    c->bottom = t->m_bottom + 28; /* room for the footer line */
    c->left = t->m_left;
    c->right = t->page_w - t->m_right;
    if (!r->doc) {
        r->doc = HPDF_New(pdf_on_error, r); /* with an empty document */
        if (!r->doc) {
            snprintf(err, errlen, "pdf: libharu: out of memory");
            return -1;
        }
    } else {
        /* HPDF_NewDoc frees the last document (HPDF_FreeDoc) but keeps the
         * loaded font definitions (glyph marks cleared) and encoders */
        pdf_ck(c, HPDF_NewDoc(r->doc), "HPDF_NewDoc");
    }
    c->doc = r->doc;
    pdf_ck(c, HPDF_SetCompressionMode(c->doc, PDF_COMPRESSION), "HPDF_SetCompressionMode");
    c->helv[PDF_REG] = HPDF_GetFont(c->doc, "Helvetica", "WinAnsiEncoding");
    c->helv[PDF_BOLD] = HPDF_GetFont(c->doc, "Helvetica-Bold", "WinAnsiEncoding");
    if (!c->helv[0] || !c->helv[1])
        pdf_fail(c, "libharu: no Helvetica (error 0x%04X)", (unsigned)c->hpdf_err);
    if (t->logo && !c->failed) {
        c->logo = HPDF_LoadPngImageFromMem(c->doc, t->logo, (HPDF_UINT)t->logo_len);
        if (!c->logo)
            pdf_fail(c, "logo: libharu cannot read it (error 0x%04X)", (unsigned)c->hpdf_err);
    }
    if (c->failed) {
        snprintf(err, errlen, "pdf: %s", c->msg);
        return -1;
    }
    return 0;
}

int pdf_ctx_finish(pdf_ctx *c, buf *out, char *err, size_t errlen) {
    const pdf_template *t = c->t;
    pdf_end_text(c);
    /* stamp every page: rule, footer text, "Page n of m" */
    for (size_t i = 0; i < c->n_pages && !c->failed; i++) {
        c->page = c->pages[i];
        HPDF_REAL fy = t->m_bottom + 4;
        pdf_hline(c, c->left, c->right, t->m_bottom + 16, 0.5f, 0.75f);
        pdf_fill_rgb(c, 0.35f, 0.35f, 0.35f);
        char pg[64];
        snprintf(pg, sizeof pg, "Page %zu of %zu", i + 1, c->n_pages);
        pdf_text(c, pg, PDF_REG, 8, c->right, fy, PDF_RIGHT);
        if (t->footer && *t->footer)
            pdf_text_box(c, t->footer, PDF_REG, 8, 10, c->left, fy, c->right - c->left - 90,
                         PDF_LEFT, 1);
        pdf_end_text(c);
    }
    if (!c->failed) pdf_ck(c, HPDF_SaveToStream(c->doc), "HPDF_SaveToStream");
    if (!c->failed) {
        HPDF_UINT32 size = HPDF_GetStreamSize(c->doc);
        if (!buf_reserve(out, (size_t)size + 1)) {
            pdf_fail(c, "out of memory (%u bytes)", (unsigned)size);
        } else {
            HPDF_UINT32 got = size;
            pdf_ck(c, HPDF_ReadFromStream(c->doc, (HPDF_BYTE *)out->p + out->len, &got),
                   "HPDF_ReadFromStream");
            if (!c->failed && got != size) pdf_fail(c, "short read from libharu's stream");
            if (!c->failed) {
                out->len += got;
                out->p[out->len] = 0;
            }
        }
    }
    if (c->failed) {
        snprintf(err, errlen, "pdf: %s", c->msg);
        return -1;
    }
    return 0;
}

void pdf_ctx_end(pdf_ctx *c) {
    pdf_renderer *r = c->r;
    if (r) {
        /* after a failure libharu's state is not trusted: start afresh */
        if (c->failed)
            pdf_renderer_release(r);
        else if (r->doc)
            HPDF_FreeDoc(r->doc); /* the PDF's memory; fonts stay loaded */
        r->cur = NULL;
    }
    c->r = NULL;
    c->doc = NULL;
    free(c->pages);
    free(c->dv_w);
    buf_free(&c->enc);
    buf_free(&c->line);
    c->pages = NULL;
    c->dv_w = NULL;
}
