/* csvr.c — the streaming CSV reader of usage imports.  See csvr.h.
 *
 * DESIGN — libcsv does the quoting; this file adds what libcsv does not know:
 * line numbers, the BOM, the header contract and bounded memory.
 *
 * Line numbers: libcsv reports fields and record ends, not offsets.  So each
 * block is fed to libcsv one physical line at a time (up to and including
 * each LF).  When no record is open and a line holds anything but blanks
 * (space, tab, CR, LF — what libcsv skips between records), a record starts
 * on that line; it ends at the record callback, however many LFs its quoted
 * fields swallowed.  A record that starts after a bare CR in the middle of a
 * line takes that line's number from its first field.  A block that ends in
 * the middle of a line simply continues the line at the next feed, so the
 * result never depends on where blocks are cut.
 *
 * Memory: libcsv's field buffer grows through limited_realloc, which refuses
 * to go much past CSV_FIELD_MAX, so an unterminated quote in a 1 GB file
 * fails at 64 KB instead of buffering the file.  Only the first CSV_MAXF
 * fields of a record are kept (a valid record has at most CSV_NCOLS); the
 * rest are counted.
 */
#include "fmacros.h"
#include "csvr.h"
#include "jx.h"
#include <csv.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>

#define CSV_MAXF  8    /* fields kept per record */
#define CSV_BLK   4096 /* libcsv buffer growth step */
#define ERR_MAX   320
#define QUOTE_MAX 64
/* libcsv.c's parser state "inside a field" (struct csv_parser.pstate); the
 * struct is public in csv.h, the state numbers have not changed since 3.0. */
#define LIBCSV_FIELD_BEGUN 2

typedef struct col_name {
    const char *name;
    int col;
} col_name;

static const col_name k_names[] = {
    {"event_id", CSV_COL_EVENT_ID},    {"customer_id", CSV_COL_CUSTOMER_ID},
    {"event_type", CSV_COL_METRIC},    {"metric", CSV_COL_METRIC},
    {"event_date", CSV_COL_TIMESTAMP}, {"timestamp", CSV_COL_TIMESTAMP},
    {"quantity", CSV_COL_QUANTITY},
};
static const char *const k_canonical[CSV_NCOLS] = {"event_id", "customer_id", "event_type",
                                                   "event_date", "quantity"};
static const char *const k_alias[CSV_NCOLS] = {NULL, NULL, "metric", "timestamp", NULL};

struct csv_reader {
    struct csv_parser p;
    csv_row_fn fn;
    void *arg;
    int status; /* sticky CSV_OK / CSV_ERR_* */
    char err[ERR_MAX];
    long long line;     /* line of the next byte fed */
    long long rec_line; /* line where the open record started; 0 = none open */
    long long rows;
    bool header_done;
    bool unterminated; /* set by finish: the last field lacks its closing quote */
    bool finished;
    /* header */
    size_t ncols;
    int map[CSV_MAXF]; /* field position -> CSV_COL_* */
    char names[CSV_NCOLS][16];
    /* the open record */
    size_t nf; /* fields seen */
    char *fb;  /* kept fields, each NUL-terminated */
    size_t fblen, fbcap;
    size_t off[CSV_MAXF], flen[CSV_MAXF];
    char rowmsg[CSV_ROW_MSG];
    /* BOM */
    unsigned char head[3];
    size_t nhead;
    bool bom_checked;
};

static void *limited_realloc(void *p, size_t n) {
    if (n > CSV_FIELD_MAX + CSV_BLK) return NULL; /* slack: a closing quote, spaces */
    return realloc(p, n);
}

static int fail(csv_reader *r, int st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(csv_reader *r, int st, const char *fmt, ...) {
    if (r->status) return r->status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->status = st;
    return st;
}

csv_reader *csv_reader_new(csv_row_fn fn, void *arg) {
    csv_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (csv_init(&r->p, 0) != 0) {
        free(r);
        return NULL;
    }
    csv_set_realloc_func(&r->p, limited_realloc);
    csv_set_blk_size(&r->p, CSV_BLK);
    r->fn = fn;
    r->arg = arg;
    r->line = 1;
    for (int c = 0; c < CSV_NCOLS; c++)
        snprintf(r->names[c], sizeof r->names[c], "%s", k_canonical[c]);
    return r;
}

void csv_reader_free(csv_reader *r) {
    if (!r) return;
    csv_free(&r->p);
    free(r->fb);
    free(r);
}

const char *csv_reader_error(const csv_reader *r) { return r->err; }
long long csv_reader_rows(const csv_reader *r) { return r->rows; }
bool csv_reader_has_header(const csv_reader *r) { return r->header_done; }
const char *csv_reader_colname(const csv_reader *r, int col) {
    return col >= 0 && col < CSV_NCOLS ? r->names[col] : "";
}

void csv_quote(char *out, size_t cap, const char *s, size_t len) {
    size_t n = len;
    bool cut = false;
    if (n > QUOTE_MAX) {
        n = QUOTE_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--; /* s[n] starts a char */
        cut = true;
    }
    snprintf(out, cap, "\"%.*s%s\"", (int)n, s, cut ? "\xE2\x80\xA6" : "");
}

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

static void record_reset(csv_reader *r) {
    r->nf = 0;
    r->fblen = 0;
    r->rec_line = 0;
}

static void header(csv_reader *r) {
    long long line = r->rec_line;
    if (r->unterminated)
        return (void)fail(r, CSV_ERR_FILE,
                          "line %lld: the header row has an unterminated quoted field", line);
    size_t kept = r->nf < CSV_MAXF ? r->nf : CSV_MAXF;
    bool seen[CSV_NCOLS] = {false};
    for (size_t i = 0; i < kept; i++) {
        const char *s = r->fb + r->off[i];
        size_t n = r->flen[i];
        if (jx_utf8_len(s, n) < 0)
            return (void)fail(r, CSV_ERR_FILE, "line %lld: the header row is not valid UTF-8",
                              line);
        trim(&s, &n);
        if (n == 0)
            return (void)fail(r, CSV_ERR_FILE, "line %lld: column %zu of the header has no name",
                              line, i + 1);
        const col_name *cn = NULL;
        for (size_t k = 0; k < ML_ARRAY_LEN(k_names) && !cn; k++)
            if (strlen(k_names[k].name) == n && !strncasecmp(k_names[k].name, s, n))
                cn = &k_names[k];
        if (!cn) {
            char q[QUOTE_MAX + 8];
            csv_quote(q, sizeof q, s, n);
            return (void)fail(r, CSV_ERR_FILE,
                              "unknown column %s (the columns are event_id, customer_id, "
                              "event_type or metric, event_date or timestamp, quantity)",
                              q);
        }
        if (seen[cn->col]) {
            if (!strcmp(r->names[cn->col], cn->name))
                return (void)fail(r, CSV_ERR_FILE, "duplicate column \"%s\"", cn->name);
            return (void)fail(r, CSV_ERR_FILE, "duplicate column \"%s\": \"%s\" is the same column",
                              cn->name, r->names[cn->col]);
        }
        seen[cn->col] = true;
        snprintf(r->names[cn->col], sizeof r->names[cn->col], "%s", cn->name);
        r->map[i] = cn->col;
    }
    /* more than CSV_MAXF columns: the first CSV_MAXF (> CSV_NCOLS) already
     * held an unknown or a duplicate */
    if (ML_NEVER(r->nf > kept))
        return (void)fail(r, CSV_ERR_FILE, "line %lld: too many columns", line);
    for (int c = 0; c < CSV_NCOLS; c++) {
        if (seen[c] || c == CSV_COL_QUANTITY) continue;
        if (k_alias[c])
            return (void)fail(r, CSV_ERR_FILE, "missing required column \"%s\" (or \"%s\")",
                              k_canonical[c], k_alias[c]);
        return (void)fail(r, CSV_ERR_FILE, "missing required column \"%s\"", k_canonical[c]);
    }
    r->ncols = r->nf;
    r->header_done = true;
}

static void data_row(csv_reader *r) {
    csv_row row = {.line = r->rec_line, .index = ++r->rows};
    for (int c = 0; c < CSV_NCOLS; c++) row.v[c] = "";
    if (r->unterminated) {
        row.error = "unterminated quoted field";
    } else if (r->nf != r->ncols) {
        snprintf(r->rowmsg, sizeof r->rowmsg, "expected %zu fields, found %zu", r->ncols, r->nf);
        row.error = r->rowmsg;
    } else {
        for (size_t i = 0; i < r->nf && !row.error; i++) {
            if (jx_utf8_len(r->fb + r->off[i], r->flen[i]) < 0)
                row.error = "not valid UTF-8";
            else if (memchr(r->fb + r->off[i], '\0', r->flen[i]))
                row.error = "contains a NUL byte";
        }
        for (size_t i = 0; i < r->nf && !row.error; i++) {
            row.v[r->map[i]] = r->fb + r->off[i];
            row.len[r->map[i]] = r->flen[i];
        }
    }
    if (row.error)
        for (int c = 0; c < CSV_NCOLS; c++) row.v[c] = "", row.len[c] = 0;
    if (r->fn(r->arg, &row) != 0) r->status = CSV_ERR_STOPPED;
}

static void on_field(void *s, size_t len, void *data) {
    csv_reader *r = data;
    if (r->status) return;
    if (r->rec_line == 0) r->rec_line = r->line;
    if (len > CSV_FIELD_MAX) {
        fail(r, CSV_ERR_FILE, "line %lld: a field is longer than %d bytes (an unterminated quote?)",
             r->rec_line, CSV_FIELD_MAX);
        return;
    }
    if (r->nf < CSV_MAXF) {
        if (r->fblen + len + 1 > r->fbcap) {
            size_t cap = r->fbcap ? r->fbcap : 256;
            while (cap < r->fblen + len + 1) cap *= 2;
            char *nb = realloc(r->fb, cap);
            if (!nb) {
                fail(r, CSV_ERR_NOMEM, "out of memory");
                return;
            }
            r->fb = nb;
            r->fbcap = cap;
        }
        if (len) memcpy(r->fb + r->fblen, s, len);
        r->fb[r->fblen + len] = '\0';
        r->off[r->nf] = r->fblen;
        r->flen[r->nf] = len;
        r->fblen += len + 1;
    }
    r->nf++;
}

static void on_row(int c, void *data) {
    ML_UNUSED(c);
    csv_reader *r = data;
    if (r->status) return;
    if (ML_NEVER(r->rec_line == 0)) r->rec_line = r->line;
    if (r->header_done)
        data_row(r);
    else
        header(r);
    record_reset(r);
}

static bool blank(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') return false;
    return true;
}

static int parse(csv_reader *r, const unsigned char *p, size_t n) {
    while (n > 0 && !r->status) {
        const unsigned char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) + 1 : n;
        if (r->rec_line == 0 && !blank(p, seg)) r->rec_line = r->line;
        size_t used = csv_parse(&r->p, p, seg, on_field, on_row, r);
        if (r->status) break;
        if (used < seg) {
            if (csv_get_buffer_size(&r->p) + 2 * CSV_BLK > CSV_FIELD_MAX)
                return fail(r, CSV_ERR_FILE,
                            "line %lld: a field is longer than %d bytes (an unterminated quote?)",
                            r->rec_line ? r->rec_line : r->line, CSV_FIELD_MAX);
            return fail(r, CSV_ERR_NOMEM, "out of memory (%s)", csv_strerror(csv_error(&r->p)));
        }
        if (nl) r->line++;
        p += seg;
        n -= seg;
    }
    return r->status;
}

int csv_reader_feed(csv_reader *r, const void *data, size_t n) {
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    const unsigned char *p = data;
    if (r->status) return r->status;
    if (ML_NEVER(r->finished)) return fail(r, CSV_ERR_NOMEM, "feed after finish");
    if (!r->bom_checked) {
        while (n > 0 && r->nhead < 3 && *p == bom[r->nhead]) {
            r->head[r->nhead++] = *p++;
            n--;
        }
        if (r->nhead == 3) {
            r->bom_checked = true; /* dropped */
        } else if (n > 0) {        /* not a BOM: what was held is data */
            r->bom_checked = true;
            if (r->nhead && parse(r, r->head, r->nhead)) return r->status;
        } else {
            return CSV_OK; /* a BOM prefix so far: wait for more */
        }
    }
    return parse(r, p, n);
}

int csv_reader_finish(csv_reader *r) {
    if (r->status) return r->status;
    if (ML_NEVER(r->finished)) return fail(r, CSV_ERR_NOMEM, "finish called twice");
    if (!r->bom_checked) {
        r->bom_checked = true;
        if (r->nhead && parse(r, r->head, r->nhead)) return r->status;
    }
    r->finished = true;
    r->unterminated = r->p.pstate == LIBCSV_FIELD_BEGUN && r->p.quoted;
    csv_fini(&r->p, on_field, on_row, r);
    if (r->status) return r->status;
    if (!r->header_done)
        return fail(r, CSV_ERR_FILE, "the file is empty: a header row is required");
    return CSV_OK;
}

int csv_row_event(const csv_reader *r, const csv_row *row, int64_t now_us, csv_event *ev, char *msg,
                  size_t msglen) {
    memset(ev, 0, sizeof *ev);
    if (row->error) {
        snprintf(msg, msglen, "%s", row->error);
        return -1;
    }
    const char *m;
    const char *id = row->v[CSV_COL_EVENT_ID];
    size_t idn = row->len[CSV_COL_EVENT_ID];
    if ((m = uev_event_id(id, idn))) {
        snprintf(msg, msglen, "%s %s", csv_reader_colname(r, CSV_COL_EVENT_ID), m);
        return -1;
    }
    static const int nonempty[] = {CSV_COL_CUSTOMER_ID, CSV_COL_METRIC, CSV_COL_TIMESTAMP};
    for (size_t i = 0; i < ML_ARRAY_LEN(nonempty); i++)
        if (row->len[nonempty[i]] == 0) {
            snprintf(msg, msglen, "%s must not be empty", csv_reader_colname(r, nonempty[i]));
            return -1;
        }
    if (row->len[CSV_COL_QUANTITY] == 0) {
        memcpy(ev->quantity, "1", 2);
    } else if ((m = uev_quantity(row->v[CSV_COL_QUANTITY], row->len[CSV_COL_QUANTITY],
                                 ev->quantity))) {
        snprintf(msg, msglen, "%s %s", csv_reader_colname(r, CSV_COL_QUANTITY), m);
        return -1;
    }
    if ((m = uev_timestamp(row->v[CSV_COL_TIMESTAMP], row->len[CSV_COL_TIMESTAMP], now_us,
                           &ev->occurred_us))) {
        snprintf(msg, msglen, "%s %s", csv_reader_colname(r, CSV_COL_TIMESTAMP), m);
        return -1;
    }
    if (ts_format(ev->occurred_us, ev->occurred_at, sizeof ev->occurred_at) < 0) {
        snprintf(msg, msglen, "%s is out of range", csv_reader_colname(r, CSV_COL_TIMESTAMP));
        return -1;
    }
    ev->event_id = id;
    ev->event_id_len = idn;
    ev->customer = row->v[CSV_COL_CUSTOMER_ID];
    ev->customer_len = row->len[CSV_COL_CUSTOMER_ID];
    ev->metric = row->v[CSV_COL_METRIC];
    ev->metric_len = row->len[CSV_COL_METRIC];
    return 0;
}
