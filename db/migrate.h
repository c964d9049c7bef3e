/* migrate.h — applies the numbered SQL files of db/migrations (prefix db_migrate).
 *
 * DESIGN — Migrations are compiled into the binary (cmake/Embed.cmake) and
 * applied in file-name order, each inside its own transaction together with
 * its row in schema_migrations, under a session advisory lock so two
 * concurrent `billing-api migrate` runs serialize.  Applied versions are
 * skipped, so re-running is a no-op.  The SQL files are trusted text of ours:
 * they are the one place that runs multi-statement SQL (PQexec, no parameters).
 */
#ifndef ML_MIGRATE_H
#define ML_MIGRATE_H
#include "db.h"

/* Returns the number of migrations applied (0 when up to date) or -1 with e. */
int db_migrate(db *d, db_err *e);
/* Highest migration version compiled in (e.g. 1 for 0001_*.sql). */
int db_migrate_latest(void);

#endif
