/* usage.c — staging COPY + exactly-once insert of usage events.  See usage.h.
 *
 * The COPY text format needs \, tab, newline and carriage return escaped in
 * field values; NULL is \N.  Values reach PostgreSQL only as COPY data or $n
 * parameters, never inside SQL text.
 */
#include "fmacros.h"
#include "usage.h"
#include "buf.h"
#include <stdlib.h>

/* Staging (the COPY target) and the new rows' rollup deltas: temporary,
 * per connection, emptied at commit.  event_id is COLLATE "C" like the ledger
 * (byte order: the fast comparison; equality is the same in any
 * deterministic collation). */
static const char k_stage[] =
    "CREATE TEMP TABLE IF NOT EXISTS usage_stage ("
    " seq bigint NOT NULL, org_id bigint NOT NULL, customer_id bigint NOT NULL,"
    " metric_id bigint NOT NULL, event_id text COLLATE \"C\" NOT NULL, quantity numeric NOT NULL,"
    " occurred_at timestamptz NOT NULL, properties jsonb) ON COMMIT DELETE ROWS";
static const char k_delta[] =
    "CREATE TEMP TABLE IF NOT EXISTS usage_delta ("
    " org_id bigint NOT NULL, customer_id bigint NOT NULL, metric_id bigint NOT NULL,"
    " bucket timestamptz NOT NULL, quantity numeric NOT NULL, events bigint NOT NULL,"
    " max_quantity numeric NOT NULL) ON COMMIT DELETE ROWS";

/* Step 1 — the bulk of the work, which concurrent batches do in parallel:
 * keep the first occurrence of each (org, event_id) of the batch, claim the
 * ids in the ledger, store exactly the claimed rows, and sum them per
 * 15-minute bucket into usage_delta. */
static const char k_move[] =
    "WITH s AS ("
    "  SELECT DISTINCT ON (org_id, event_id) org_id, customer_id, metric_id, event_id,"
    "         quantity, occurred_at, properties"
    "  FROM usage_stage ORDER BY org_id, event_id, seq),"
    " ids AS ("
    "  INSERT INTO usage_event_ids (org_id, event_id, occurred_at)"
    "  SELECT org_id, event_id, occurred_at FROM s ORDER BY org_id, event_id"
    "  ON CONFLICT DO NOTHING RETURNING org_id, event_id),"
    " ev AS ("
    "  INSERT INTO usage_events (org_id, customer_id, metric_id, event_id, quantity,"
    "                            occurred_at, properties)"
    "  SELECT org_id, customer_id, metric_id, event_id, quantity, occurred_at, properties"
    "  FROM s JOIN ids USING (org_id, event_id)"
    "  RETURNING org_id, customer_id, metric_id, quantity, occurred_at)"
    "INSERT INTO usage_delta"
    " SELECT org_id, customer_id, metric_id,"
    "        date_bin('15 minutes', occurred_at, timestamptz '1970-01-01 00:00:00+00'),"
    "        sum(quantity), count(*), max(quantity)"
    " FROM ev GROUP BY 1, 2, 3, 4";

/* Step 2 — last before the commit, so the rollup rows (which concurrent
 * batches share) stay locked for milliseconds, not for the whole batch: add
 * the deltas to the 15-minute rollup and, summed per UTC hour (a quarter
 * never straddles an hour), to the hourly level (migration 0005).  Rows in a
 * fixed order: two batches never wait on each other in a cycle. */
static const char k_rollup[] =
    "WITH ru AS ("
    "  INSERT INTO usage_rollup AS r (org_id, customer_id, metric_id, bucket, quantity,"
    "                                 events, max_quantity)"
    "  SELECT * FROM usage_delta ORDER BY 1, 2, 3, 4"
    "  ON CONFLICT (org_id, customer_id, metric_id, bucket) DO UPDATE SET"
    "    quantity = r.quantity + EXCLUDED.quantity, events = r.events + EXCLUDED.events,"
    "    max_quantity = greatest(r.max_quantity, EXCLUDED.max_quantity)"
    "  RETURNING 1),"
    " rh AS ("
    "  INSERT INTO usage_rollup_hour AS h (org_id, customer_id, metric_id, bucket, quantity,"
    "                                      events, max_quantity)"
    "  SELECT org_id, customer_id, metric_id,"
    "         date_bin('1 hour', bucket, timestamptz '1970-01-01 00:00:00+00'),"
    "         sum(quantity), sum(events), max(max_quantity)"
    "  FROM usage_delta GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    "  ON CONFLICT (org_id, customer_id, metric_id, bucket) DO UPDATE SET"
    "    quantity = h.quantity + EXCLUDED.quantity, events = h.events + EXCLUDED.events,"
    "    max_quantity = greatest(h.max_quantity, EXCLUDED.max_quantity)"
    "  RETURNING 1)"
    "SELECT coalesce((SELECT sum(events) FROM usage_delta), 0),"
    "       (SELECT count(*) FROM ru), (SELECT count(*) FROM rh)";

/* Appends s escaped for COPY text (\N for NULL): runs of plain bytes are
 * copied at once (this runs for every field of every accepted event). */
static void add_field(buf *b, const char *s) {
    if (!s) {
        buf_add(b, "\\N", 2);
        return;
    }
    for (;;) {
        size_t n = strcspn(s, "\\\t\n\r");
        buf_add(b, s, n);
        s += n;
        if (!*s) return;
        char esc[2] = {'\\', *s == '\t' ? 't' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : '\\'};
        buf_add(b, esc, 2);
        s++;
    }
}

/* Appends v in decimal and then c. */
static void add_id(buf *b, long long v, char c) {
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    *--p = c;
    do *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) *--p = '-';
    buf_add(b, p, (size_t)(tmp + sizeof tmp - p));
}

static int copy_begin(db *d, db_err *e) {
    PGconn *c = db_conn(d);
    PGresult *r = PQexecParams(c,
                               "COPY usage_stage (seq, org_id, customer_id, metric_id, event_id, "
                               "quantity, occurred_at, properties) FROM STDIN",
                               0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        PQclear(r);
        memset(e, 0, sizeof *e);
        snprintf(e->msg, sizeof e->msg, "COPY: %s", PQerrorMessage(c));
        e->conn_lost = PQstatus(c) != CONNECTION_OK;
        return -1;
    }
    PQclear(r);
    return 0;
}

/* Sends b (when rc == 0 and it is big enough, or at the end) and empties it. */
static int copy_flush(db *d, buf *b, bool force, int rc) {
    if (rc) return rc;
    if (b->oom) return -2;
    if (b->len && (force || b->len >= 256 * 1024)) {
        if (PQputCopyData(db_conn(d), b->p, (int)b->len) != 1) return -1;
        b->len = 0;
    }
    return 0;
}

/* Ends the COPY (aborting it when rc != 0) and fills e on failure. */
static int copy_end(db *d, db_err *e, int rc) {
    PGconn *c = db_conn(d);
    if (PQputCopyEnd(c, rc ? "aborted by client" : NULL) != 1 && rc == 0) rc = -1;
    PGresult *r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0) rc = -1;
    memset(e, 0, sizeof *e);
    if (rc) {
        snprintf(e->msg, sizeof e->msg, "COPY: %s", rc == -2 ? "out of memory" : PQerrorMessage(c));
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (st) snprintf(e->sqlstate, sizeof e->sqlstate, "%s", st);
        e->conn_lost = PQstatus(c) != CONNECTION_OK;
    }
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL) PQclear(r);
    return rc ? -1 : 0;
}

static int copy_rows(db *d, db_err *e, const db_usage_row *rows, size_t n) {
    if (copy_begin(d, e)) return -1;
    buf b;
    buf_init(&b);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const db_usage_row *x = &rows[i];
        add_id(&b, (long long)i, '\t');
        add_id(&b, x->org_id, '\t');
        db_usage_row_text(&b, x->customer_id, x->metric_id, x->event_id, x->quantity,
                          x->occurred_at, x->properties);
        rc = copy_flush(d, &b, i + 1 == n, rc);
    }
    buf_free(&b);
    return copy_end(d, e, rc);
}

void db_usage_row_text(buf *b, long long customer_id, long long metric_id, const char *event_id,
                       const char *quantity, const char *occurred_at, const char *properties) {
    add_id(b, customer_id, '\t');
    add_id(b, metric_id, '\t');
    add_field(b, event_id);
    buf_add(b, "\t", 1);
    add_field(b, quantity);
    buf_add(b, "\t", 1);
    add_field(b, occurred_at);
    buf_add(b, "\t", 1);
    add_field(b, properties);
    buf_add(b, "\n", 1);
}

/* Streams the chunks' lines with "seq\torg\t" in front of each. */
static int copy_chunks(db *d, db_err *e, const db_usage_chunk *ch, size_t n, long long *rows) {
    if (copy_begin(d, e)) return -1;
    buf b;
    buf_init(&b);
    int rc = 0;
    long long seq = 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        const char *p = ch[k].text, *end = p + ch[k].len;
        while (p < end && rc == 0) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) {
                rc = -3; /* a row must end with a newline */
                break;
            }
            add_id(&b, seq++, '\t');
            add_id(&b, ch[k].org_id, '\t');
            buf_add(&b, p, (size_t)(nl - p) + 1);
            p = nl + 1;
            rc = copy_flush(d, &b, false, rc);
        }
    }
    rc = copy_flush(d, &b, true, rc);
    buf_free(&b);
    *rows = seq;
    if (rc == -3) {
        copy_end(d, e, -1);
        snprintf(e->msg, sizeof e->msg, "COPY: a usage row does not end with a newline");
        return -1;
    }
    return copy_end(d, e, rc);
}

/* Fills usage_stage from one kind of source; *rows = rows staged. */
typedef int (*stage_fn)(db *d, db_err *e, const void *src, size_t n, long long *rows);

static int stage_rows(db *d, db_err *e, const void *src, size_t n, long long *rows) {
    *rows = (long long)n;
    return copy_rows(d, e, src, n);
}

static int stage_chunks(db *d, db_err *e, const void *src, size_t n, long long *rows) {
    return copy_chunks(d, e, src, n, rows);
}

/* The one transaction behind every insert: stage, claim and store
 * (k_move), roll up (k_rollup), the caller's hook, commit. */
static int insert(db *d, db_err *e, stage_fn stage, const void *src, size_t n,
                  const char *occurred_min, const char *occurred_max, db_usage_tx_hook hook,
                  void *arg, db_usage_result *out) {
    memset(out, 0, sizeof *out);
    if (n == 0 && !hook) return 0;
    if (db_begin(d, e)) return -1;
    PGresult *r = NULL;
    if (n > 0) {
        if (db_cmd(d, e, k_stage, 0, NULL) || db_cmd(d, e, k_delta, 0, NULL) ||
            DB_CMD(d, e, "SELECT ml_usage_ensure_partitions($1::timestamptz, $2::timestamptz)",
                   occurred_min, occurred_max) ||
            stage(d, e, src, n, &out->rows) || db_cmd(d, e, k_move, 0, NULL) ||
            !(r = db_exec(d, e, k_rollup, 0, NULL)))
            goto fail;
        out->inserted = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        out->duplicates = out->rows - out->inserted;
        PQclear(r);
    }
    if (hook && hook(d, e, out, arg)) goto fail;
    if (db_commit(d, e)) goto fail;
    return 0;
fail:
    db_rollback(d);
    return -1;
}

int db_usage_insert(db *d, db_err *e, const db_usage_row *rows, size_t n, const char *occurred_min,
                    const char *occurred_max, db_usage_result *out) {
    return insert(d, e, stage_rows, rows, n, occurred_min, occurred_max, NULL, NULL, out);
}

int db_usage_insert_tx(db *d, db_err *e, const db_usage_row *rows, size_t n,
                       const char *occurred_min, const char *occurred_max, db_usage_tx_hook hook,
                       void *arg, db_usage_result *out) {
    return insert(d, e, stage_rows, rows, n, occurred_min, occurred_max, hook, arg, out);
}

int db_usage_insert_copy(db *d, db_err *e, const db_usage_chunk *chunks, size_t n,
                         const char *occurred_min, const char *occurred_max, db_usage_result *out) {
    return insert(d, e, stage_chunks, chunks, n, occurred_min, occurred_max, NULL, NULL, out);
}
