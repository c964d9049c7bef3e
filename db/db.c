/* db.c — PostgreSQL connection wrapper.  See db.h.
 *
 * Thread use: a db is used by one thread at a time (the API gives each
 * database thread its own; each worker process has its own).
 */
#include "fmacros.h"
#include "db.h"
#include "log.h"
#include <stdlib.h>

/* type OIDs from pg_type.h (stable across versions) */
enum {
    OID_BOOL = 16,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_JSON = 114,
    OID_TIMESTAMPTZ = 1184,
    OID_NUMERIC = 1700,
    OID_JSONB = 3802
};

/* Statements prepared on the current connection by db_exec_prep, keyed by
 * the address of their SQL text (a string literal). */
#define DB_MAX_PREP 64
struct db {
    char *url;
    PGconn *conn;
    const char *prep[DB_MAX_PREP];
    int nprep;
};

static void fill_err(db_err *e, PGconn *c, const PGresult *r) {
    memset(e, 0, sizeof *e);
    const char *m = r ? PQresultErrorMessage(r) : NULL;
    if (!m || !*m) m = c ? PQerrorMessage(c) : "no connection";
    snprintf(e->msg, sizeof e->msg, "%s", m);
    size_t n = strlen(e->msg);
    while (n && (e->msg[n - 1] == '\n' || e->msg[n - 1] == ' ')) e->msg[--n] = '\0';
    if (r) {
        const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (s) snprintf(e->sqlstate, sizeof e->sqlstate, "%s", s);
        s = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
        if (s) snprintf(e->constraint, sizeof e->constraint, "%s", s);
        s = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
        if (s) snprintf(e->column, sizeof e->column, "%s", s);
    }
    /* class 08 = connection exception; 57P0x = admin shutdown / crash */
    e->conn_lost = !c || PQstatus(c) != CONNECTION_OK || !strncmp(e->sqlstate, "08", 2) ||
                   !strncmp(e->sqlstate, "57P", 3);
}

db *db_open(const char *url) {
    db *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->url = strdup(url);
    if (!d->url) {
        free(d);
        return NULL;
    }
    db_err e;
    (void)db_ensure(d, &e);
    return d;
}

void db_close(db *d) {
    if (!d) return;
    if (d->conn) PQfinish(d->conn);
    free(d->url);
    free(d);
}

PGconn *db_conn(db *d) { return d->conn; }
bool db_ok(const db *d) { return d->conn && PQstatus(d->conn) == CONNECTION_OK; }

/* Server NOTICEs go to the debug log, not raw to stderr. */
static void on_notice(void *arg, const char *msg) {
    ML_UNUSED(arg);
    char m[512];
    snprintf(m, sizeof m, "%s", msg);
    m[strcspn(m, "\n")] = '\0';
    LOG_KV(LOG_DEBUG, "postgres notice", LF_S("notice", m));
}

int db_ensure(db *d, db_err *e) {
    if (db_ok(d)) return 0;
    d->nprep = 0; /* prepared statements die with their connection */
    if (d->conn) {
        PQfinish(d->conn);
        d->conn = NULL;
    }
    /* expand_dbname lets url be a URI or a conninfo string; connect_timeout
     * bounds a connect to an unreachable host. */
    const char *const keys[] = {"dbname", "connect_timeout", NULL};
    const char *const vals[] = {d->url, "5", NULL};
    d->conn = PQconnectdbParams(keys, vals, 1);
    if (!d->conn || PQstatus(d->conn) != CONNECTION_OK) {
        fill_err(e, d->conn, NULL);
        e->conn_lost = true;
        if (d->conn) {
            PQfinish(d->conn);
            d->conn = NULL;
        }
        return -1;
    }
    PQsetNoticeProcessor(d->conn, on_notice, NULL);
    /* Session defaults: UTC output. */
    PGresult *r = PQexecParams(d->conn,
                               "SELECT set_config('TimeZone', 'UTC', false), "
                               "set_config('application_name', 'meterline', false)",
                               0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fill_err(e, d->conn, r);
        PQclear(r);
        PQfinish(d->conn);
        d->conn = NULL;
        return -1;
    }
    PQclear(r);
    return 0;
}

/* r if it succeeded; else NULL with e filled, dropping a lost connection. */
static PGresult *checked(db *d, db_err *e, PGresult *r) {
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    fill_err(e, d->conn, r);
    PQclear(r);
    if (e->conn_lost) {
        LOG_KV(LOG_WARN, "database connection lost", LF_S("error", e->msg));
        PQfinish(d->conn);
        d->conn = NULL;
        d->nprep = 0;
    }
    return NULL;
}

PGresult *db_exec(db *d, db_err *e, const char *sql, int n, const char *const *params) {
    if (db_ensure(d, e)) return NULL;
    return checked(d, e, PQexecParams(d->conn, sql, n, NULL, params, NULL, NULL, 0));
}

/* db_exec_prep / db_exec_prep_bin: results in text (0) or binary (1). */
static PGresult *exec_prep(db *d, db_err *e, const char *sql, int n, const char *const *params,
                           int result_format) {
    if (db_ensure(d, e)) return NULL;
    int i = 0;
    while (i < d->nprep && d->prep[i] != sql) i++;
    char name[16];
    snprintf(name, sizeof name, "ml_p%d", i);
    if (i == d->nprep) {
        if (d->nprep == DB_MAX_PREP)
            return checked(d, e,
                           PQexecParams(d->conn, sql, n, NULL, params, NULL, NULL, result_format));
        PGresult *p = checked(d, e, PQprepare(d->conn, name, sql, n, NULL));
        if (!p) return NULL;
        PQclear(p);
        d->prep[d->nprep++] = sql;
    }
    return checked(d, e, PQexecPrepared(d->conn, name, n, params, NULL, NULL, result_format));
}

PGresult *db_exec_prep(db *d, db_err *e, const char *sql, int n, const char *const *params) {
    return exec_prep(d, e, sql, n, params, 0);
}

PGresult *db_exec_prep_bin(db *d, db_err *e, const char *sql, int n, const char *const *params) {
    return exec_prep(d, e, sql, n, params, 1);
}

int db_cmd_prep(db *d, db_err *e, const char *sql, int n, const char *const *params) {
    PGresult *r = db_exec_prep(d, e, sql, n, params);
    if (!r) return -1;
    PQclear(r);
    return 0;
}

int db_cmd(db *d, db_err *e, const char *sql, int n, const char *const *params) {
    PGresult *r = db_exec(d, e, sql, n, params);
    if (!r) return -1;
    PQclear(r);
    return 0;
}

int db_begin(db *d, db_err *e) { return db_cmd(d, e, "BEGIN", 0, NULL); }
int db_commit(db *d, db_err *e) { return db_cmd(d, e, "COMMIT", 0, NULL); }
void db_rollback(db *d) {
    if (!db_ok(d)) return;
    PGresult *r = PQexecParams(d->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
    PQclear(r);
}

bool db_err_is(const db_err *e, const char *sqlstate) { return !strcmp(e->sqlstate, sqlstate); }

/* "2026-10-01 13:00:00.123+00" -> "2026-10-01T13:00:00.123Z" (session is UTC). */
static json_t *ts_json(const char *v) {
    char out[40];
    size_t n = strlen(v);
    if (n < 19 || n >= sizeof out) return json_string(v);
    size_t k = n;
    if (n > 3 && v[n - 3] == '+' && v[n - 2] == '0' && v[n - 1] == '0') k = n - 3;
    memcpy(out, v, k);
    out[10] = 'T';
    out[k] = 'Z';
    out[k + 1] = '\0';
    return json_string(out);
}

json_t *db_row_json(const PGresult *r, int row) {
    json_t *o = json_object();
    if (!o) return NULL;
    int nf = PQnfields(r);
    for (int i = 0; i < nf; i++) {
        const char *name = PQfname(r, i);
        json_t *v;
        if (PQgetisnull(r, row, i)) {
            v = json_null();
        } else {
            const char *s = PQgetvalue(r, row, i);
            switch (PQftype(r, i)) {
            case OID_INT2:
            case OID_INT4:
            case OID_INT8:
                v = json_integer(strtoll(s, NULL, 10));
                break;
            case OID_BOOL:
                v = json_boolean(s[0] == 't');
                break;
            case OID_TIMESTAMPTZ:
                v = ts_json(s);
                break;
            case OID_JSON:
            case OID_JSONB:
                v = json_loads(s, JSON_DECODE_ANY, NULL);
                break;
            default: /* text, numeric (exact string), uuid, ... */
                v = json_string(s);
            }
        }
        if (!v || json_object_set_new(o, name, v)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *db_rows_json(const PGresult *r) {
    json_t *a = json_array();
    if (!a) return NULL;
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = db_row_json(r, i);
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}
