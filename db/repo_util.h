/* repo_util.h — small helpers shared by the repo_*.c files (internal to db/). */
#ifndef ML_REPO_UTIL_H
#define ML_REPO_UTIL_H
#include "repo.h"
#include <stdbool.h>

int repo_oom(db_err *e); /* fills e, REPO_ERR */
/* r NULL -> REPO_ERR; 0 rows -> REPO_NOT_FOUND; else *out = row 0.  Clears r. */
int repo_one(PGresult *r, db_err *e, json_t **out);
/* Rows of a "LIMIT limit+1" query -> *rows (at most limit) and *next = the
 * value of key_col in the last returned row when there are more.  Clears r. */
int repo_page(PGresult *r, db_err *e, int limit, const char *key_col, json_t **rows, char **next);
void repo_set_field(repo_field *f, const char *field, const char *message);
bool repo_is_uuid(const char *s);
/* Text of a JSON string/number/bool member, or NULL when absent or null.
 * Numbers must be marked numbers or integers (see jx.h); writes into buf. */
const char *repo_text(const json_t *obj, const char *key, char *buf, size_t cap);

#endif
