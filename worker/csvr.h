/* csvr.h — the streaming CSV reader of usage imports (prefix csv_).
 *
 * DESIGN — Pure code over memory, no I/O: the caller reads the file in
 * blocks of any size and feeds them; the reader calls back once per data
 * record with its fields mapped to the import's columns and the physical
 * line where the record starts.  Memory is bounded whatever the input: one
 * record's fields (each at most CSV_FIELD_MAX bytes) plus libcsv's field
 * buffer; a block is never copied.  Splitting the same input at any byte
 * gives the same callbacks.
 *
 * The format (API.md, "Usage"):
 *   - a header row is required; columns in any order, names case-insensitive
 *     with surrounding spaces trimmed: event_id, customer_id, event_type (or
 *     metric), event_date (or timestamp), optional quantity.  A missing
 *     required column, a column named twice (aliases included) or an unknown
 *     column rejects the file (CSV_ERR_FILE; the message names the column):
 *     an unknown column is refused rather than ignored, because a typo such
 *     as "quantiy" would otherwise bill every row as 1;
 *   - RFC 4180 records as libcsv reads them (quoted fields with commas,
 *     quotes and newlines; CRLF or LF); a UTF-8 BOM is skipped; blank lines
 *     anywhere are skipped and not counted as rows;
 *   - a record with the wrong number of fields, not UTF-8, or with an
 *     unterminated quote at the end of the input is a row error
 *     (csv_row.error), never a file error;
 *   - a field longer than CSV_FIELD_MAX bytes (in practice an unterminated
 *     quote swallowing the file) rejects the file, with the line where that
 *     record starts.
 * Lines are counted by LF; the header is line 1 when the file starts with
 * it; a record's line is the line of its first byte, however many newlines
 * its quoted fields hold and however many blank lines precede it.
 *
 * csv_row_event then applies the usage event rules (shared/uev.h) to one
 * row: event_id, quantity (empty or absent = 1), timestamp (not after now +
 * 5 minutes).  Resolving customer and metric belongs to the caller.
 *
 * A reader is used by one thread at a time.  Names avoid libcsv's own csv_*
 * functions (csv_init, csv_parse, …): ours are csv_reader_*, csv_row_*.
 */
#ifndef ML_CSVR_H
#define ML_CSVR_H
#include "ts.h"
#include "uev.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    CSV_COL_EVENT_ID,
    CSV_COL_CUSTOMER_ID,
    CSV_COL_METRIC,    /* "event_type" or "metric" */
    CSV_COL_TIMESTAMP, /* "event_date" or "timestamp" */
    CSV_COL_QUANTITY,  /* optional */
    CSV_NCOLS
};

#define CSV_FIELD_MAX 65536 /* bytes of one field */
#define CSV_ROW_MSG   128   /* room for a row error message */

typedef struct csv_row {
    long long line;           /* physical line where the record starts */
    long long index;          /* data row number, 1-based (blank lines skipped) */
    const char *error;        /* NULL, or why the record is unusable */
    const char *v[CSV_NCOLS]; /* NUL-terminated values (valid during the
                                 callback); "" for an absent quantity column */
    size_t len[CSV_NCOLS];
} csv_row;

/* Called for every data record.  0 goes on; anything else stops the reader
 * (feed/finish then return CSV_ERR_STOPPED). */
typedef int (*csv_row_fn)(void *arg, const csv_row *row);

enum {
    CSV_OK = 0,
    CSV_ERR_FILE = -1,    /* the file is rejected: csv_reader_error says why */
    CSV_ERR_STOPPED = -2, /* the callback asked to stop */
    CSV_ERR_NOMEM = -3,
};

typedef struct csv_reader csv_reader;

/* NULL when out of memory. */
csv_reader *csv_reader_new(csv_row_fn fn, void *arg);
void csv_reader_free(csv_reader *r); /* NULL ok */
/* Feeds the next n bytes.  CSV_OK or an error; after an error every call
 * returns it again. */
int csv_reader_feed(csv_reader *r, const void *p, size_t n);
/* End of input: the last record (without a final newline) is delivered;
 * a missing header row is CSV_ERR_FILE.  Call once. */
int csv_reader_finish(csv_reader *r);
/* The file-level error message ("" if none). */
const char *csv_reader_error(const csv_reader *r);
/* Data records delivered so far. */
long long csv_reader_rows(const csv_reader *r);
/* Whether the header row was read and accepted. */
bool csv_reader_has_header(const csv_reader *r);
/* The header's spelling of a column ("event_type" or "metric", …), lower
 * case; the canonical name before the header is read or when absent. */
const char *csv_reader_colname(const csv_reader *r, int col);

/* One row checked by the usage event rules. */
typedef struct csv_event {
    const char *event_id, *customer, *metric; /* into the row: copy them */
    size_t event_id_len, customer_len, metric_len;
    char quantity[UEV_QTY_MAX];   /* normalized decimal text */
    char occurred_at[TS_FMT_MAX]; /* RFC 3339 UTC */
    int64_t occurred_us;
} csv_event;

/* 0 with ev filled, or -1 with a message in msg (the first bad field, named
 * as in the header).  now_us bounds timestamps (5 minutes ahead at most). */
int csv_row_event(const csv_reader *r, const csv_row *row, int64_t now_us, csv_event *ev, char *msg,
                  size_t msglen);

/* Writes s[0..len) as "s" for a message, cut at a character boundary after
 * at most 64 bytes ("…" marks the cut).  s must be valid UTF-8. */
void csv_quote(char *out, size_t cap, const char *s, size_t len);

#endif
