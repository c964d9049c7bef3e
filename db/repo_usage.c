/* repo_usage.c — lookups the usage ingest path needs (prefix repo_).
 *
 * DESIGN — One round trip resolves a whole batch: the names go in as one
 * text[] parameter (a PostgreSQL array literal built here, with every element
 * quoted — data, never SQL) and come back with their position, so unknown
 * names are simply absent.  Callers cache the answers (api/routes_usage.c).
 */
#include "fmacros.h"
#include "repo.h"
#include "repo_util.h"
#include "buf.h"
#include <stdlib.h>

/* {"a","b\"c"} */
static char *pg_text_array(const char *const *v, size_t n) {
    buf b;
    buf_init(&b);
    buf_addc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) buf_addc(&b, ',');
        buf_addc(&b, '"');
        for (const char *p = v[i]; *p; p++) {
            if (*p == '"' || *p == '\\') buf_addc(&b, '\\');
            buf_addc(&b, *p);
        }
        buf_addc(&b, '"');
    }
    buf_addc(&b, '}');
    buf_addc(&b, '\0');
    if (b.oom) {
        buf_free(&b);
        return NULL;
    }
    return b.p;
}

int repo_customer_refs(db *d, db_err *e, long long org_id, const char *const *ext, size_t n,
                       long long *ids) {
    memset(ids, 0, n * sizeof *ids);
    if (n == 0) return REPO_OK;
    char *arr = pg_text_array(ext, n);
    if (!arr) return repo_oom(e);
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    PGresult *r = DB_EXEC(d, e,
                          "SELECT u.i, c.id FROM unnest($2::text[]) WITH ORDINALITY AS u(ext, i)"
                          " JOIN customers c ON c.org_id = $1 AND c.external_id = u.ext",
                          org, arr);
    free(arr);
    if (!r) return REPO_ERR;
    for (int i = 0; i < PQntuples(r); i++) {
        long long k = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        if (k >= 1 && (size_t)k <= n) ids[k - 1] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    }
    PQclear(r);
    return REPO_OK;
}

int repo_metric_refs(db *d, db_err *e, long long org_id, const char *const *codes, size_t n,
                     repo_metric_ref *out) {
    memset(out, 0, n * sizeof *out);
    if (n == 0) return REPO_OK;
    char *arr = pg_text_array(codes, n);
    if (!arr) return repo_oom(e);
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    PGresult *r = DB_EXEC(d, e,
                          "SELECT u.i, m.id, m.aggregation, coalesce(m.unique_property, '')"
                          " FROM unnest($2::text[]) WITH ORDINALITY AS u(code, i)"
                          " JOIN metrics m ON m.org_id = $1 AND m.code = u.code",
                          org, arr);
    free(arr);
    if (!r) return REPO_ERR;
    for (int i = 0; i < PQntuples(r); i++) {
        long long k = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        if (k < 1 || (size_t)k > n) continue;
        repo_metric_ref *m = &out[k - 1];
        m->id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        snprintf(m->aggregation, sizeof m->aggregation, "%s", PQgetvalue(r, i, 2));
        snprintf(m->unique_property, sizeof m->unique_property, "%s", PQgetvalue(r, i, 3));
    }
    PQclear(r);
    return REPO_OK;
}
