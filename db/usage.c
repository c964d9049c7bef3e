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

static const char k_stage[] =
    "CREATE TEMP TABLE IF NOT EXISTS usage_stage ("
    " seq bigint NOT NULL, org_id bigint NOT NULL, customer_id bigint NOT NULL,"
    " metric_id bigint NOT NULL, event_id text NOT NULL, quantity numeric NOT NULL,"
    " occurred_at timestamptz NOT NULL, properties jsonb) ON COMMIT DELETE ROWS";

static const char k_move[] =
    "WITH s AS ("
    "  SELECT DISTINCT ON (org_id, event_id) org_id, customer_id, metric_id, event_id,"
    "         quantity, occurred_at, properties"
    "  FROM usage_stage ORDER BY org_id, event_id, seq),"
    " ids AS ("
    "  INSERT INTO usage_event_ids (org_id, event_id, occurred_at)"
    "  SELECT org_id, event_id, occurred_at FROM s ORDER BY org_id, event_id"
    "  ON CONFLICT DO NOTHING RETURNING org_id, event_id),"
    " new AS (SELECT s.* FROM s JOIN ids USING (org_id, event_id)),"
    " ev AS ("
    "  INSERT INTO usage_events (org_id, customer_id, metric_id, event_id, quantity,"
    "                            occurred_at, properties)"
    "  SELECT org_id, customer_id, metric_id, event_id, quantity, occurred_at, properties"
    "  FROM new RETURNING 1),"
    " ru AS ("
    "  INSERT INTO usage_rollup AS r (org_id, customer_id, metric_id, bucket, quantity,"
    "                                 events, max_quantity)"
    "  SELECT org_id, customer_id, metric_id,"
    "         date_bin('15 minutes', occurred_at, timestamptz '1970-01-01 00:00:00+00'),"
    "         sum(quantity), count(*), max(quantity)"
    "  FROM new GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    "  ON CONFLICT (org_id, customer_id, metric_id, bucket) DO UPDATE SET"
    "    quantity = r.quantity + EXCLUDED.quantity, events = r.events + EXCLUDED.events,"
    "    max_quantity = greatest(r.max_quantity, EXCLUDED.max_quantity)"
    "  RETURNING 1),"
    /* the hourly level (migration 0005), for exactly the same new rows */
    " rh AS ("
    "  INSERT INTO usage_rollup_hour AS h (org_id, customer_id, metric_id, bucket, quantity,"
    "                                      events, max_quantity)"
    "  SELECT org_id, customer_id, metric_id,"
    "         date_bin('1 hour', occurred_at, timestamptz '1970-01-01 00:00:00+00'),"
    "         sum(quantity), count(*), max(quantity)"
    "  FROM new GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    "  ON CONFLICT (org_id, customer_id, metric_id, bucket) DO UPDATE SET"
    "    quantity = h.quantity + EXCLUDED.quantity, events = h.events + EXCLUDED.events,"
    "    max_quantity = greatest(h.max_quantity, EXCLUDED.max_quantity))"
    "SELECT (SELECT count(*) FROM ev), (SELECT count(*) FROM ru)";

static void add_field(buf *b, const char *s) {
    if (!s) {
        buf_adds(b, "\\N");
        return;
    }
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '\\': buf_adds(b, "\\\\"); break;
        case '\t': buf_adds(b, "\\t"); break;
        case '\n': buf_adds(b, "\\n"); break;
        case '\r': buf_adds(b, "\\r"); break;
        default: buf_addc(b, *p);
        }
    }
}

static int copy_rows(db *d, db_err *e, const db_usage_row *rows, size_t n) {
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
    buf b;
    buf_init(&b);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const db_usage_row *x = &rows[i];
        buf_printf(&b, "%zu\t%lld\t%lld\t%lld\t", i, x->org_id, x->customer_id, x->metric_id);
        add_field(&b, x->event_id);
        buf_addc(&b, '\t');
        add_field(&b, x->quantity);
        buf_addc(&b, '\t');
        add_field(&b, x->occurred_at);
        buf_addc(&b, '\t');
        add_field(&b, x->properties);
        buf_addc(&b, '\n');
        if (b.oom) rc = -2;
        else if (b.len >= 256 * 1024 || i + 1 == n) {
            if (PQputCopyData(c, b.p, (int)b.len) != 1) rc = -1;
            b.len = 0;
        }
    }
    buf_free(&b);
    if (PQputCopyEnd(c, rc ? "aborted by client" : NULL) != 1 && rc == 0) rc = -1;
    r = PQgetResult(c);
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

int db_usage_insert(db *d, db_err *e, const db_usage_row *rows, size_t n,
                    const char *occurred_min, const char *occurred_max, db_usage_result *out) {
    return db_usage_insert_tx(d, e, rows, n, occurred_min, occurred_max, NULL, NULL, out);
}

int db_usage_insert_tx(db *d, db_err *e, const db_usage_row *rows, size_t n,
                       const char *occurred_min, const char *occurred_max, db_usage_tx_hook hook,
                       void *arg, db_usage_result *out) {
    memset(out, 0, sizeof *out);
    out->rows = (long long)n;
    if (n == 0 && !hook) return 0;
    if (db_begin(d, e)) return -1;
    PGresult *r = NULL;
    if (n > 0) {
        if (db_cmd(d, e, k_stage, 0, NULL) ||
            DB_CMD(d, e, "SELECT ml_usage_ensure_partitions($1::timestamptz, $2::timestamptz)",
                   occurred_min, occurred_max) ||
            copy_rows(d, e, rows, n) || !(r = db_exec(d, e, k_move, 0, NULL)))
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
