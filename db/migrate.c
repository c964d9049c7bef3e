/* migrate.c — schema migrations.  See migrate.h. */
#include "fmacros.h"
#include "migrate.h"
#include "embed.h"
#include "log.h"
#include <stdlib.h>

extern const ml_embedded db_migrations[];

static const char k_lock_key[] = "727001"; /* arbitrary advisory lock id */

static int version_of(const char *name) {
    /* "migrations/0001_accounts.sql" -> 1 */
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    return atoi(base);
}

int db_migrate_latest(void) {
    int v = 0;
    for (const ml_embedded *m = db_migrations; m->name; m++)
        if (version_of(m->name) > v) v = version_of(m->name);
    return v;
}

static int run_script(db *d, db_err *e, const char *sql) {
    PGresult *r = PQexec(db_conn(d), sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return 0;
    }
    memset(e, 0, sizeof *e);
    snprintf(e->msg, sizeof e->msg, "%s", PQresultErrorMessage(r));
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (s) snprintf(e->sqlstate, sizeof e->sqlstate, "%s", s);
    PQclear(r);
    return -1;
}

int db_migrate(db *d, db_err *e) {
    if (db_ensure(d, e)) return -1;
    if (DB_CMD(d, e, "SELECT pg_advisory_lock($1::bigint)", k_lock_key)) return -1;
    int applied = 0, rc = 0;
    if (db_cmd(d, e,
               "CREATE TABLE IF NOT EXISTS schema_migrations ("
               " version int PRIMARY KEY, name text NOT NULL,"
               " applied_at timestamptz NOT NULL DEFAULT now())",
               0, NULL)) {
        rc = -1;
        goto out;
    }
    for (const ml_embedded *m = db_migrations; m->name; m++) {
        char ver[16];
        snprintf(ver, sizeof ver, "%d", version_of(m->name));
        PGresult *r = DB_EXEC(d, e, "SELECT 1 FROM schema_migrations WHERE version = $1", ver);
        if (!r) {
            rc = -1;
            goto out;
        }
        int have = PQntuples(r) > 0;
        PQclear(r);
        if (have) continue;
        if (db_begin(d, e)) {
            rc = -1;
            goto out;
        }
        if (run_script(d, e, m->data) ||
            DB_CMD(d, e, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", ver,
                   m->name) ||
            db_commit(d, e)) {
            char what[sizeof e->msg];
            snprintf(what, sizeof what, "%.100s: %.400s", m->name, e->msg);
            memcpy(e->msg, what, sizeof what);
            db_rollback(d);
            rc = -1;
            goto out;
        }
        LOG_KV(LOG_INFO, "migration applied", LF_S("name", m->name));
        applied++;
    }
out:;
    db_err e2;
    (void)DB_CMD(d, &e2, "SELECT pg_advisory_unlock($1::bigint)", k_lock_key);
    return rc ? -1 : applied;
}
