/* db.h — one PostgreSQL connection with reconnect, parameterized queries only
 * (prefix db_).
 *
 * DESIGN — A db owns a PGconn for one thread at a time.  Every query goes
 * through db_exec (PQexecParams with $n text parameters, result status checked;
 * the PGresult is returned only when it is COMMAND_OK / TUPLES_OK).  Failures
 * fill a db_err with the SQLSTATE, the message and the violated constraint so
 * callers can map them (23505 -> conflict, connection lost -> unavailable).
 * A lost connection is re-established on the next db_ensure/db_exec; a query
 * that failed because the connection broke is NOT retried here (the caller
 * knows whether it is safe).  Sessions run in UTC.
 * db/ knows no HTTP, no jobs and no Redis.
 */
#ifndef ML_DB_H
#define ML_DB_H
#include <libpq-fe.h>
#include <stdbool.h>
#include <jansson.h>

typedef struct db db;

typedef struct db_err {
    char sqlstate[6]; /* "" when not from the server */
    char constraint[64];
    char column[64];
    char msg[512];
    bool conn_lost; /* the connection is (or was) down: retry later */
} db_err;

/* Never NULL unless out of memory; the first connection attempt may fail, in
 * which case db_ensure reconnects later. */
db *db_open(const char *url);
void db_close(db *d); /* NULL ok */
/* Connects / reconnects if needed.  0 ok, -1 with e filled. */
int db_ensure(db *d, db_err *e);
PGconn *db_conn(db *d);
bool db_ok(const db *d);

/* PQexecParams(sql, n text params).  NULL params are SQL NULL.  Returns the
 * result (caller PQclears) or NULL with e filled. */
PGresult *db_exec(db *d, db_err *e, const char *sql, int n, const char *const *params);
/* Variadic convenience: DB_EXEC(d, e, sql, p1, p2, ...) */
#define DB_EXEC(d, e, sql, ...)                                                                    \
    db_exec((d), (e), (sql), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),  \
            (const char *const[]){__VA_ARGS__})
#define DB_EXEC0(d, e, sql) db_exec((d), (e), (sql), 0, NULL)
/* Runs a command and discards the result: 0 ok, -1 with e. */
int db_cmd(db *d, db_err *e, const char *sql, int n, const char *const *params);
#define DB_CMD(d, e, sql, ...)                                                                     \
    db_cmd((d), (e), (sql), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),   \
           (const char *const[]){__VA_ARGS__})

/* db_exec / db_cmd through a statement prepared once per connection (planned
 * once, then only executed): for hot statements run many times by one
 * connection.  sql must be a string literal (the cache keys on its address);
 * up to 64 per connection, beyond that plain db_exec. */
PGresult *db_exec_prep(db *d, db_err *e, const char *sql, int n, const char *const *params);
int db_cmd_prep(db *d, db_err *e, const char *sql, int n, const char *const *params);
/* db_exec_prep with every result column in binary format (PQgetvalue gives
 * the type's send representation: big-endian int8, numeric base-10000
 * digits, timestamptz as int64 µs since 2000-01-01): for hot statements
 * whose caller decodes the values itself.  Parameters stay text. */
PGresult *db_exec_prep_bin(db *d, db_err *e, const char *sql, int n, const char *const *params);
#define DB_EXECP_BIN(d, e, sql, ...)                                                               \
    db_exec_prep_bin((d), (e), (sql),                                                              \
                     (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),          \
                     (const char *const[]){__VA_ARGS__})
#define DB_EXECP(d, e, sql, ...)                                                                   \
    db_exec_prep((d), (e), (sql), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), \
                 (const char *const[]){__VA_ARGS__})
#define DB_CMDP(d, e, sql, ...)                                                                    \
    db_cmd_prep((d), (e), (sql), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), \
                (const char *const[]){__VA_ARGS__})
int db_begin(db *d, db_err *e);
int db_commit(db *d, db_err *e);
void db_rollback(db *d); /* best effort */

/* SQLSTATE helpers */
bool db_err_is(const db_err *e, const char *sqlstate);
#define DB_UNIQUE_VIOLATION "23505"
#define DB_FK_VIOLATION     "23503"
#define DB_CHECK_VIOLATION  "23514"

/* Row -> JSON object keyed by column name: int2/4/8 -> integer, bool -> bool,
 * numeric -> string (exact), timestamptz -> "…Z" string, json/jsonb -> parsed,
 * NULL -> null, everything else -> string.  New reference or NULL (oom). */
json_t *db_row_json(const PGresult *r, int row);
/* All rows as an array (new reference or NULL). */
json_t *db_rows_json(const PGresult *r);

#endif
