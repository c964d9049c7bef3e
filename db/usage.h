/* usage.h — the one path by which usage events enter PostgreSQL (prefix
 * db_usage_).
 *
 * DESIGN — A batch is COPY'd into a per-connection temporary staging table,
 * then one statement, inside one transaction: keeps the first occurrence of
 * each (org, event_id) in the batch, claims the event ids in the
 * usage_event_ids ledger (ON CONFLICT DO NOTHING), inserts exactly the rows
 * whose claim succeeded into usage_events, and adds exactly those rows to the
 * 15-minute usage_rollup.  An event id seen before — in this batch, another
 * batch, or months ago — is counted once, forever; running the same batch
 * twice (a retried job) changes nothing.  Concurrent batches are safe: a
 * competing claim waits for the other transaction and then loses.
 * Rows must be validated by the caller (known customer and metric of org_id,
 * quantity >= 0 with at most 12 decimal places, RFC 3339 time).
 */
#ifndef ML_USAGE_H
#define ML_USAGE_H
#include "db.h"
#include "buf.h"
#include <stddef.h>

typedef struct db_usage_row {
    long long org_id;
    long long customer_id;   /* customers.id */
    long long metric_id;     /* metrics.id */
    const char *event_id;    /* 1..128 printable characters */
    const char *quantity;    /* decimal text */
    const char *occurred_at; /* RFC 3339 */
    const char *properties;  /* JSON object text or NULL */
} db_usage_row;

typedef struct db_usage_result {
    long long rows;       /* rows handed in */
    long long inserted;   /* new events stored and counted */
    long long duplicates; /* rows - inserted */
} db_usage_result;

/* Inserts rows[0..n) in its own transaction.  0 ok, -1 with e (nothing
 * written).  occurred_min/max (RFC 3339) bound the batch's times, used to
 * create monthly partitions ahead of the insert. */
int db_usage_insert(db *d, db_err *e, const db_usage_row *rows, size_t n, const char *occurred_min,
                    const char *occurred_max, db_usage_result *out);

/* Runs inside db_usage_insert_tx's transaction after the rows went in (out
 * filled): write a checkpoint or a "done" marker atomically with them.
 * Return 0, or -1 with e filled to roll everything back. */
typedef int (*db_usage_tx_hook)(db *d, db_err *e, const db_usage_result *res, void *arg);

/* db_usage_insert with a hook (may be NULL) run before the commit. */
int db_usage_insert_tx(db *d, db_err *e, const db_usage_row *rows, size_t n,
                       const char *occurred_min, const char *occurred_max, db_usage_tx_hook hook,
                       void *arg, db_usage_result *out);

/* ---- pre-resolved rows (the usage.ingest job payload) ----
 * A row as text, in PostgreSQL COPY text format:
 *   customer_id \t metric_id \t event_id \t quantity \t occurred_at \t properties \n
 * (\N for no properties; backslash, tab, CR and LF escaped).  billing-api
 * writes these after validating and resolving the events; the worker hands
 * many jobs' rows to db_usage_insert_copy at once. */
void db_usage_row_text(buf *b, long long customer_id, long long metric_id, const char *event_id,
                       const char *quantity, const char *occurred_at, const char *properties);

typedef struct db_usage_chunk {
    long long org_id;
    const char *text; /* rows as above, each ending in \n */
    size_t len;
} db_usage_chunk;

/* Inserts every row of every chunk in one transaction, exactly once per
 * (org, event_id) — the first occurrence in chunk order wins.  occurred_min /
 * occurred_max bound all rows' times.  0, or -1 with e (nothing written). */
int db_usage_insert_copy(db *d, db_err *e, const db_usage_chunk *chunks, size_t n,
                         const char *occurred_min, const char *occurred_max, db_usage_result *out);

#endif
