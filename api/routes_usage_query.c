/* routes_usage_query.c — reading usage back: GET /v1/usage (raw events as
 * JSON pages or one streamed CSV file) and GET /v1/usage/aggregate (time
 * buckets from the rollups).  Prefix uq_ (handlers h_usage_*).
 *
 * DESIGN — Each handler runs on a database thread: parse the query string
 * (pure functions over strings: uq_parse_*, every problem names its
 * parameter — 400 for syntax, 422 for meaning), resolve codes to ids inside
 * the caller's organization, run parameterized SQL, reply.  User text only
 * ever reaches PostgreSQL as $n parameters; the few SQL variants are fixed
 * strings chosen by validated enums.  Quantities stay exact decimals from
 * PostgreSQL to the client: text, except on the hottest path (one
 * customer by the hour, k_agg_sql_cust), which reads binary results and
 * writes each numeric's base-10000 digits as decimal text itself
 * (uq_numeric_text: integers only, the same text as trim_scale(v)::text).
 * Never a float.
 *
 * Raw events are ordered newest first by the keyset (occurred_at, org_id,
 * event_id), unique since event ids are unique per organization; the cursor
 * is that key of the last row, so a page boundary is stable under
 * concurrent inserts (new rows land before or after it, never shift it).
 * The CSV export reads the same query through a server-side cursor (FETCH
 * batches of 2000 rows) and hands ~64 KB pieces to api_stream_write,
 * which blocks while ~1 MB is unsent: neither libpq nor the server ever
 * holds the whole result.
 *
 * Aggregates never scan raw events, except for unique_count metrics (a
 * distinct count cannot be rolled up).  Buckets are local-time hours, days
 * or months of `tz`.  A bucket's start, for a rollup bucket t (15-minute or
 * hourly, UTC-aligned), is
 *     hour:       t - (local(t) - date_trunc('hour', local(t)))
 *     day/month:  date_trunc(g, local(t)) AT TIME ZONE tz
 * (hours by elapsed time so the repeated hour of a DST fall-back stays two
 * buckets; days and months through the calendar so a 23- or 25-hour day is
 * one bucket).  Every real UTC offset is a multiple of 15 minutes, so every
 * local bucket is an exact union of 15-minute rollup buckets; when every
 * bucket boundary of the answer is a whole UTC hour (UTC, New York, …, not
 * Kolkata or Kathmandu) the hourly rollup (usage_rollup_hour, 4× fewer
 * rows) is read instead.  from and to must be bucket boundaries in tz (422
 * otherwise): a partial bucket would silently look like a whole one.
 *
 * Time-zone names are checked against pg_timezone_names, read once per
 * process and kept sorted in memory (uq_tz_*).
 */
#include "fmacros.h"
#include "api.h"
#include "buf.h"
#include "log.h"
#include "routes.h"
#include "stream.h"
#include "ts.h"
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>

#define UQ_CHUNK       (64 * 1024) /* bytes per api_stream_write */
#define UQ_MAX_BUCKETS 10000
#define US_PER_MIN     60000000LL
#define US_PER_HOUR    3600000000LL
#define US_PER_DAY     86400000000LL

/* ======================================================================= */
/* query-string parsing (pure)                                              */

enum { UQ_MAXP = 12 };

typedef struct uq_params {
    const char *const *names; /* allowed names, NULL-terminated */
    char *val[UQ_MAXP];       /* decoded values (malloc'd) or NULL */
} uq_params;

static void uq_params_free(uq_params *p) {
    for (int i = 0; i < UQ_MAXP; i++) free(p->val[i]);
}

static const char *uq_get(const uq_params *p, const char *name) {
    for (int i = 0; p->names[i]; i++)
        if (!strcmp(p->names[i], name)) return p->val[i];
    return NULL;
}

/* A problem with one parameter: 400 bad_request (syntax) or 422
 * validation_failed (meaning); details name the parameter either way. */
static void uq_bad(api_req *r, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void uq_bad(api_req *r, int status, const char *field, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (status == 422) {
        api_invalid1(r, field, "%s", msg);
        return;
    }
    char full[320];
    snprintf(full, sizeof full, "%s: %s", field, msg);
    api_json(r, 400,
             json_pack("{s:{s:s, s:s, s:[{s:s, s:s}]}}", "error", "code", "bad_request", "message",
                       full, "details", "field", field, "message", msg));
}

/* Splits the raw query into the allowed names; unknown or repeated names are
 * refused.  0, or -1 when it replied. */
static int uq_read_params(api_req *r, uq_params *p) {
    memset(p->val, 0, sizeof p->val);
    if (!r->query) return 0;
    struct evkeyvalq q; /* initialized by evhttp_parse_query_str */
    if (evhttp_parse_query_str(r->query, &q) != 0) {
        evhttp_clear_headers(&q);
        api_err(r, 400, "bad_request", "the query string is malformed");
        return -1;
    }
    int rc = 0;
    struct evkeyval *kv;
    for (kv = q.tqh_first; kv; kv = kv->next.tqe_next) {
        int idx = -1;
        for (int i = 0; p->names[i] && i < UQ_MAXP; i++)
            if (!strcmp(p->names[i], kv->key)) idx = i;
        if (idx < 0) {
            uq_bad(r, 400, kv->key, "unknown parameter");
            rc = -1;
            break;
        }
        if (p->val[idx]) {
            uq_bad(r, 400, kv->key, "given more than once");
            rc = -1;
            break;
        }
        p->val[idx] = strdup(kv->value);
        if (!p->val[idx]) {
            api_err(r, 503, "unavailable", "out of memory");
            rc = -1;
            break;
        }
    }
    evhttp_clear_headers(&q);
    if (rc) uq_params_free(p);
    return rc;
}

/* RFC 3339 time → µs; false if not one. */
static bool uq_parse_time(const char *s, int64_t *us) {
    return s && ts_parse(s, strlen(s), us) == 0;
}

/* Fills from/to (0/INT64 when absent).  0, or -1 when it replied. */
static int uq_parse_range(api_req *r, const uq_params *p, bool required, int64_t *from, int64_t *to,
                          bool *has_from, bool *has_to) {
    const char *f = uq_get(p, "from"), *t = uq_get(p, "to");
    *has_from = f != NULL;
    *has_to = t != NULL;
    if (f && !uq_parse_time(f, from)) {
        uq_bad(r, 400, "from", "must be an RFC 3339 time such as 2026-10-01T00:00:00Z");
        return -1;
    }
    if (t && !uq_parse_time(t, to)) {
        uq_bad(r, 400, "to", "must be an RFC 3339 time such as 2026-11-01T00:00:00Z");
        return -1;
    }
    if (required && !f) {
        uq_bad(r, 422, "from", "is required");
        return -1;
    }
    if (required && !t) {
        uq_bad(r, 422, "to", "is required");
        return -1;
    }
    if (f && t && *to <= *from) {
        uq_bad(r, 422, "to", "must be later than from");
        return -1;
    }
    return 0;
}

static bool uq_nonempty_ok(const char *s, size_t max) {
    size_t n = strlen(s);
    return n >= 1 && n <= max;
}

/* ======================================================================= */
/* time zones: pg_timezone_names, cached                                    */

static pthread_mutex_t uq_tz_mu = PTHREAD_MUTEX_INITIALIZER;
static char **uq_tz_names; /* sorted (strcmp); process lifetime */
static size_t uq_tz_n;

static int uq_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1 known, 0 unknown, -1 database error (e filled). */
static int uq_tz_known(db *d, db_err *e, const char *name) {
    pthread_mutex_lock(&uq_tz_mu);
    if (!uq_tz_names) {
        PGresult *res = DB_EXEC0(d, e, "SELECT name FROM pg_timezone_names");
        if (!res) {
            pthread_mutex_unlock(&uq_tz_mu);
            return -1;
        }
        size_t n = (size_t)PQntuples(res);
        char **v = calloc(n ? n : 1, sizeof *v);
        bool ok = v != NULL;
        for (size_t i = 0; ok && i < n; i++) ok = (v[i] = strdup(PQgetvalue(res, (int)i, 0)));
        PQclear(res);
        if (!ok) {
            for (size_t i = 0; v && i < n; i++) free(v[i]);
            free(v);
            pthread_mutex_unlock(&uq_tz_mu);
            memset(e, 0, sizeof *e);
            snprintf(e->msg, sizeof e->msg, "out of memory");
            return -1;
        }
        qsort(v, n, sizeof *v, uq_cmp_str);
        uq_tz_names = v;
        uq_tz_n = n;
    }
    bool found = bsearch(&name, uq_tz_names, uq_tz_n, sizeof *uq_tz_names, uq_cmp_str) != NULL;
    pthread_mutex_unlock(&uq_tz_mu);
    return found ? 1 : 0;
}

/* ======================================================================= */
/* customer / metric codes → ids                                            */

/* A metric of the organization: id, code and which rollup column reports it
 * ('s' sum → quantity, 'c' count → events, 'm' max → max_quantity). */
typedef struct uq_metric {
    long long id;
    char agg;
    char code[65];
} uq_metric;

typedef struct uq_ids {
    char *cust;         /* "{1,2}" bigint[] text, NULL = no filter */
    char *metric;       /* same */
    bool has_unique;    /* a unique_count metric is in scope */
    uq_metric *metrics; /* one organization: its other metrics in scope */
    size_t nmetrics;
    char *metric_ids; /* their ids as "{1,2}" (NULL when none) */
} uq_ids;

static void uq_ids_free(uq_ids *x) {
    free(x->metrics);
    free(x->metric_ids);
    free(x->cust);
    free(x->metric);
}

/* Parses "id agg code,id agg code,…" (uq_resolve) into x->metrics and
 * x->metric_ids.  NULL text = none.  0, or -1 when out of memory. */
static int uq_metric_map(const char *t, uq_ids *x) {
    if (!t || !*t) return 0;
    size_t n = 1;
    for (const char *c = t; *c; c++) n += *c == ',';
    x->metrics = calloc(n, sizeof *x->metrics);
    x->metric_ids = malloc(n * 21 + 3);
    if (!x->metrics || !x->metric_ids) return -1;
    size_t len = 0;
    x->metric_ids[len++] = '{';
    for (const char *c = t; *c;) {
        uq_metric *m = &x->metrics[x->nmetrics];
        char *end;
        m->id = strtoll(c, &end, 10);
        if (end[0] != ' ' || !end[1] || end[2] != ' ')
            break; /* cannot happen: codes have no space */
        m->agg = end[1];
        c = end + 3;
        size_t k = strcspn(c, ",");
        snprintf(m->code, sizeof m->code, "%.*s", (int)(k < 64 ? k : 64), c);
        len += (size_t)snprintf(x->metric_ids + len, 22, "%s%lld", x->nmetrics ? "," : "", m->id);
        x->nmetrics++;
        c += k;
        if (*c == ',') c++;
    }
    x->metric_ids[len++] = '}';
    x->metric_ids[len] = '\0';
    return 0;
}

/* uq_resolve's lookup: $1 org (0 = every organization), $2 customer
 * external id, $3 metric code (NULL = no filter).  Columns: the customer
 * ids, the metric ids (bigint[] text), whether a unique_count metric is in
 * scope, and "id agg code,…" of the other metrics of one organization
 * (uq_metric_map). */
#define UQ_RESOLVE_SQL(ORG)                                                                        \
    "SELECT (SELECT array_agg(id)::text FROM customers"                                            \
    "         WHERE " ORG " AND external_id = $2::text),"                                          \
    "       (SELECT array_agg(id)::text FROM metrics"                                              \
    "         WHERE " ORG " AND code = $3::text),"                                                 \
    "       EXISTS (SELECT 1 FROM metrics WHERE " ORG                                              \
    "                  AND ($3::text IS NULL OR code = $3::text)"                                  \
    "                  AND aggregation = 'unique_count'),"                                         \
    "       (SELECT string_agg(id::text || ' ' || substr(aggregation, 1, 1) || ' ' || code, ','"   \
    "                          ORDER BY id) FROM metrics"                                          \
    "         WHERE $1::bigint <> 0 AND org_id = $1::bigint AND aggregation <> 'unique_count'"     \
    "           AND ($3::text IS NULL OR code = $3::text))"
/* Two statements, because "$1 = 0 OR org_id = $1" has no generic plan that
 * uses an index: PostgreSQL would plan it afresh on every execution (a few
 * hundred µs, more than it runs).  One organization — nearly every request —
 * gets a plan once per connection. */
static const char k_resolve_sql_org[] = UQ_RESOLVE_SQL("org_id = $1::bigint");
static const char k_resolve_sql_all[] = UQ_RESOLVE_SQL("($1::bigint = 0 OR org_id = $1::bigint)");

/* Resolves ?customer_id= and ?metric= in r->who.org_id (0 = every org).  In
 * one organization an unknown one is 422 naming the field; across all
 * organizations it simply matches nothing.  0, or -1 when it replied. */
static int uq_resolve(api_req *r, const char *cust, const char *metric, uq_ids *out) {
    memset(out, 0, sizeof *out);
    if (cust && !uq_nonempty_ok(cust, 128)) {
        uq_bad(r, 400, "customer_id", "must be 1-128 characters");
        return -1;
    }
    if (metric && !uq_nonempty_ok(metric, 64)) {
        uq_bad(r, 400, "metric", "must be 1-64 characters");
        return -1;
    }
    char org[24];
    snprintf(org, sizeof org, "%lld", r->who.org_id);
    db_err e;
    PGresult *res = DB_EXECP(r->db, &e, r->who.org_id ? k_resolve_sql_org : k_resolve_sql_all, org,
                             cust, metric);
    if (!res) {
        api_db_fail(r, &e);
        return -1;
    }
    bool all = r->who.org_id == 0;
    int rc = 0;
    if (cust && PQgetisnull(res, 0, 0) && !all) {
        uq_bad(r, 422, "customer_id", "no customer with this external id in the organization");
        rc = -1;
    } else if (metric && PQgetisnull(res, 0, 1) && !all) {
        uq_bad(r, 422, "metric", "no metric with this code in the organization");
        rc = -1;
    } else {
        if (cust) out->cust = strdup(PQgetisnull(res, 0, 0) ? "{}" : PQgetvalue(res, 0, 0));
        if (metric) out->metric = strdup(PQgetisnull(res, 0, 1) ? "{}" : PQgetvalue(res, 0, 1));
        out->has_unique = PQgetvalue(res, 0, 2)[0] == 't';
        bool oom = uq_metric_map(PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3), out) != 0;
        if ((cust && !out->cust) || (metric && !out->metric) || oom) {
            api_err(r, 503, "unavailable", "out of memory");
            uq_ids_free(out);
            rc = -1;
        }
    }
    PQclear(res);
    return rc;
}

/* ======================================================================= */
/* GET /v1/usage                                                            */

/* Newest first; $6..$8 = the key of the last row seen; $9 = limit (NULL =
 * all). */
static const char k_list_sql[] =
    "SELECT e.event_id, c.external_id, m.code, trim_scale(e.quantity)::text,"
    "       (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.properties::text,"
    "       (extract(epoch FROM e.received_at) * 1000000)::bigint, o.slug, e.org_id"
    "  FROM usage_events e"
    "  JOIN customers c ON c.id = e.customer_id"
    "  JOIN metrics m ON m.id = e.metric_id"
    "  JOIN organizations o ON o.id = e.org_id"
    " WHERE ($1::bigint = 0 OR e.org_id = $1::bigint)"
    "   AND ($2::bigint[] IS NULL OR e.customer_id = ANY ($2::bigint[]))"
    "   AND ($3::bigint[] IS NULL OR e.metric_id = ANY ($3::bigint[]))"
    "   AND ($4::timestamptz IS NULL OR e.occurred_at >= $4::timestamptz)"
    "   AND ($5::timestamptz IS NULL OR e.occurred_at < $5::timestamptz)"
    "   AND ($6::timestamptz IS NULL"
    "        OR (e.occurred_at, e.org_id, e.event_id) < ($6::timestamptz, $7::bigint, $8::text))"
    " ORDER BY e.occurred_at DESC, e.org_id DESC, e.event_id DESC"
    " LIMIT $9::bigint";

enum { L_EVENT, L_CUST, L_METRIC, L_QTY, L_AT, L_PROPS, L_RECV, L_SLUG, L_ORG };

static const char *const k_list_params[] = {"customer_id", "metric", "from", "to", "limit",
                                            "cursor",      "format", "org",  NULL};

/* Cursor text: "<occurred_us> <org_id> <event_id>" (event_id last: it may
 * hold spaces).  Pure. */
static bool uq_cursor_parse(const char *c, int64_t *us, long long *org, const char **event_id) {
    char *end;
    errno = 0;
    long long a = strtoll(c, &end, 10);
    if (end == c || *end != ' ' || errno) return false;
    const char *p = end + 1;
    long long b = strtoll(p, &end, 10);
    if (end == p || *end != ' ' || errno || b < 0) return false;
    if (!end[1]) return false;
    *us = a;
    *org = b;
    *event_id = end + 1;
    return true;
}

static bool wants_csv(const api_req *r, const char *format) {
    if (format) return !strcmp(format, "csv");
    return r->h_accept && strcasestr(r->h_accept, "text/csv") != NULL;
}

/* RFC 4180 field: quoted when it holds , " CR or LF; " doubled. */
static void csv_field(buf *b, const char *s) {
    if (!s[strcspn(s, ",\"\r\n")]) {
        buf_adds(b, s);
        return;
    }
    buf_addc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"') buf_addc(b, '"');
        buf_addc(b, *p);
    }
    buf_addc(b, '"');
}

static void add_time(buf *b, const char *us_text) {
    char t[TS_FMT_MAX];
    if (ts_format(strtoll(us_text, NULL, 10), t, sizeof t) < 0) t[0] = '\0';
    buf_adds(b, t);
}

static void csv_row(buf *b, const PGresult *res, int i, bool with_org) {
    if (with_org) {
        csv_field(b, PQgetvalue(res, i, L_SLUG));
        buf_addc(b, ',');
    }
    csv_field(b, PQgetvalue(res, i, L_EVENT));
    buf_addc(b, ',');
    csv_field(b, PQgetvalue(res, i, L_CUST));
    buf_addc(b, ',');
    csv_field(b, PQgetvalue(res, i, L_METRIC));
    buf_addc(b, ',');
    buf_adds(b, PQgetvalue(res, i, L_QTY));
    buf_addc(b, ',');
    add_time(b, PQgetvalue(res, i, L_AT));
    buf_addc(b, ',');
    if (!PQgetisnull(res, i, L_PROPS)) csv_field(b, PQgetvalue(res, i, L_PROPS));
    buf_addc(b, ',');
    add_time(b, PQgetvalue(res, i, L_RECV));
    buf_adds(b, "\r\n");
}

static void json_str(buf *b, const char *s) {
    buf_addc(b, '"');
    buf_add_json_escaped(b, s, strlen(s));
    buf_addc(b, '"');
}

static void json_row(buf *b, const PGresult *res, int i, bool with_org) {
    buf_adds(b, "{");
    if (with_org) {
        buf_adds(b, "\"org\":");
        json_str(b, PQgetvalue(res, i, L_SLUG));
        buf_addc(b, ',');
    }
    buf_adds(b, "\"event_id\":");
    json_str(b, PQgetvalue(res, i, L_EVENT));
    buf_adds(b, ",\"customer_id\":");
    json_str(b, PQgetvalue(res, i, L_CUST));
    buf_adds(b, ",\"metric\":");
    json_str(b, PQgetvalue(res, i, L_METRIC));
    buf_adds(b, ",\"quantity\":");
    json_str(b, PQgetvalue(res, i, L_QTY));
    buf_adds(b, ",\"timestamp\":\"");
    add_time(b, PQgetvalue(res, i, L_AT));
    /* jsonb's text output is valid JSON: passed through as is, so numbers
     * inside properties keep their exact text */
    buf_adds(b, "\",\"properties\":");
    buf_adds(b, PQgetisnull(res, i, L_PROPS) ? "null" : PQgetvalue(res, i, L_PROPS));
    buf_adds(b, ",\"received_at\":\"");
    add_time(b, PQgetvalue(res, i, L_RECV));
    buf_adds(b, "\"}");
}

typedef struct uq_list_q {
    char org[24], from[TS_FMT_MAX], to[TS_FMT_MAX], after_at[TS_FMT_MAX], after_org[24];
    const char *after_event;
    char limit[24];
    const char *v[9];
} uq_list_q;

static void list_bind(uq_list_q *q, const api_req *r, const uq_ids *ids, bool has_from,
                      int64_t from, bool has_to, int64_t to) {
    snprintf(q->org, sizeof q->org, "%lld", r->who.org_id);
    q->v[0] = q->org;
    q->v[1] = ids->cust;
    q->v[2] = ids->metric;
    q->v[3] = has_from && ts_format(from, q->from, sizeof q->from) > 0 ? q->from : NULL;
    q->v[4] = has_to && ts_format(to, q->to, sizeof q->to) > 0 ? q->to : NULL;
    q->v[5] = q->v[6] = q->v[7] = q->v[8] = NULL;
}

/* rows per FETCH of the CSV export: ~300 KB of result at a time */
static const char k_fetch_sql[] = "FETCH 2000 FROM uq_csv";

/* The CSV file: every matching row, through a server-side cursor. */
static void list_csv(api_req *r, uq_list_q *q) {
    db_err e;
    bool with_org = r->who.org_id == 0;
    if (db_begin(r->db, &e)) {
        api_db_fail(r, &e);
        return;
    }
    buf sql;
    buf_init(&sql);
    buf_adds(&sql, "DECLARE uq_csv NO SCROLL CURSOR FOR ");
    buf_adds(&sql, k_list_sql);
    if (sql.oom) {
        db_rollback(r->db);
        api_err(r, 503, "unavailable", "out of memory");
        return;
    }
    int rc = db_cmd(r->db, &e, sql.p, 9, q->v);
    buf_free(&sql);
    PGresult *res = rc ? NULL : DB_EXEC0(r->db, &e, k_fetch_sql);
    if (!res) {
        db_rollback(r->db);
        api_db_fail(r, &e);
        return;
    }
    char disp[160];
    snprintf(disp, sizeof disp, "attachment; filename=\"usage-%s.csv\"",
             with_org ? "all" : r->who.org_slug);
    api_header(r, "Content-Disposition", disp);
    buf b;
    buf_init(&b);
    bool ok = api_stream_begin(r, 200, "text/csv; charset=utf-8") == 0;
    buf_adds(&b, with_org ? "org," : "");
    buf_adds(&b, "event_id,customer_id,metric,quantity,timestamp,properties,received_at\r\n");
    long long rows = 0;
    while (ok && res) {
        int n = PQntuples(res);
        for (int i = 0; ok && i < n; i++) {
            csv_row(&b, res, i, with_org);
            if (b.oom)
                ok = false;
            else if (b.len >= UQ_CHUNK) {
                ok = api_stream_write(r, b.p, b.len) == 0;
                b.len = 0;
            }
        }
        rows += n;
        PQclear(res);
        res = NULL;
        if (ok && n > 0) {
            res = DB_EXEC0(r->db, &e, k_fetch_sql);
            if (!res) {
                LOG_KV(LOG_ERROR, "usage export: fetch failed", LF_S("request_id", r->request_id),
                       LF_S("error", e.msg));
                ok = false;
            }
        }
    }
    PQclear(res);
    if (ok && b.len) ok = api_stream_write(r, b.p, b.len) == 0;
    buf_free(&b);
    if (ok && db_commit(r->db, &e) == 0) {
        api_stream_end(r);
    } else {
        db_rollback(r->db);
        api_stream_fail(r); /* the client gets no complete-looking file */
        LOG_KV(LOG_INFO, "usage export stopped", LF_S("request_id", r->request_id),
               LF_I("rows", rows), LF_S("client", atomic_load(&r->gone) ? "gone" : "ok"));
    }
}

void h_usage_list(api_req *r) {
    uq_params p = {.names = k_list_params};
    if (uq_read_params(r, &p)) return;
    uq_ids ids = {0};
    int64_t from = 0, to = 0;
    bool has_from, has_to;
    const char *format = uq_get(&p, "format");
    if (format && strcmp(format, "csv") && strcmp(format, "json")) {
        uq_bad(r, 400, "format", "must be csv or json");
        goto out;
    }
    if (uq_parse_range(r, &p, false, &from, &to, &has_from, &has_to)) goto out;
    if (uq_resolve(r, uq_get(&p, "customer_id"), uq_get(&p, "metric"), &ids)) goto out;
    uq_list_q q;
    list_bind(&q, r, &ids, has_from, from, has_to, to);
    if (wants_csv(r, format)) { /* every row: limit and cursor do not apply */
        list_csv(r, &q);
        goto out;
    }
    int limit = 50;
    const char *ls = uq_get(&p, "limit");
    if (ls) {
        char *end;
        long v = strtol(ls, &end, 10);
        if (!*ls || *end || v < 1 || v > 1000) {
            uq_bad(r, 400, "limit", "must be an integer from 1 to 1000");
            goto out;
        }
        limit = (int)v;
    }
    const char *cs = uq_get(&p, "cursor");
    char *cur = cs && *cs ? api_cursor_decode(cs) : NULL;
    if (cs && *cs) {
        int64_t aus;
        long long aorg;
        if (!cur || !uq_cursor_parse(cur, &aus, &aorg, &q.after_event) ||
            ts_format(aus, q.after_at, sizeof q.after_at) < 0) {
            free(cur);
            uq_bad(r, 400, "cursor", "is not valid");
            goto out;
        }
        snprintf(q.after_org, sizeof q.after_org, "%lld", aorg);
        q.v[5] = q.after_at;
        q.v[6] = q.after_org;
        q.v[7] = q.after_event;
    }
    snprintf(q.limit, sizeof q.limit, "%d", limit + 1);
    q.v[8] = q.limit;
    db_err e;
    PGresult *res = db_exec(r->db, &e, k_list_sql, 9, q.v);
    free(cur);
    if (!res) {
        api_db_fail(r, &e);
        goto out;
    }
    int n = PQntuples(res);
    bool more = n > limit;
    if (more) n = limit;
    bool with_org = r->who.org_id == 0;
    buf b;
    buf_init(&b);
    buf_adds(&b, "{\"data\":[");
    for (int i = 0; i < n; i++) {
        if (i) buf_addc(&b, ',');
        json_row(&b, res, i, with_org);
    }
    buf_adds(&b, "],\"next_cursor\":");
    if (more) {
        buf key;
        buf_init(&key);
        buf_printf(&key, "%s %s %s", PQgetvalue(res, n - 1, L_AT), PQgetvalue(res, n - 1, L_ORG),
                   PQgetvalue(res, n - 1, L_EVENT));
        char *enc = key.oom ? NULL : api_cursor_encode(key.p);
        if (!enc)
            b.oom = true;
        else
            json_str(&b, enc);
        free(enc);
        buf_free(&key);
    } else {
        buf_adds(&b, "null");
    }
    buf_addc(&b, '}');
    PQclear(res);
    if (b.oom)
        api_err(r, 503, "unavailable", "out of memory");
    else
        api_raw(r, 200, "application/json", b.p, b.len);
    buf_free(&b);
out:
    uq_ids_free(&ids);
    uq_params_free(&p);
}

/* ======================================================================= */
/* GET /v1/usage/aggregate                                                  */

/* The start of the local bucket holding instant T whose local time (T AT
 * TIME ZONE tz, computed once per row) is L (see DESIGN); tz and g are
 * parameter placeholders. */
#define UQ_F(T, L, TZ, G)                                                                          \
    "(CASE WHEN " G " = 'hour' THEN " T " - (" L " - date_trunc('hour', " L "))"                   \
    " ELSE date_trunc(" G ", " L ") AT TIME ZONE " TZ " END)"

/* $1 from, $2 to, $3 tz, $4 granularity: the bucket starts in [from, to],
 * µs, ascending.  from and to are bucket boundaries iff they are the first
 * and the last.  Hours: the 15-minute instants whose local minute is 0 (a
 * repeated local hour gives two); days and months: the local calendar. */
static const char k_buckets_sql[] =
    "SELECT (extract(epoch FROM b.s) * 1000000)::bigint FROM ("
    "  SELECT x AS s"
    "    FROM generate_series($1::timestamptz, $2::timestamptz, interval '15 minutes') x"
    "   WHERE $4::text = 'hour' AND date_part('minute', x AT TIME ZONE $3::text) = 0"
    "  UNION ALL"
    "  SELECT d AT TIME ZONE $3::text"
    "    FROM generate_series(date_trunc($4::text, $1::timestamptz AT TIME ZONE $3::text),"
    "                         $2::timestamptz AT TIME ZONE $3::text, ('1 ' || $4::text)::interval) "
    "d"
    "   WHERE $4::text <> 'hour') b"
    " WHERE b.s >= $1::timestamptz AND b.s <= $2::timestamptz ORDER BY 1";

/* y, the general case: rollup rows mapped to local buckets and summed. */
#define UQ_Y_MAP                                                                                   \
    "  SELECT x.org_id, x.cid, CASE WHEN $9::bool THEN x.mid END AS mid, m.aggregation AS agg,"    \
    "         " UQ_F("x.t", "(x.t AT TIME ZONE $6::text)", "$6::text",                             \
                     "$7::text") " AS s,"                                                          \
                                 "         sum(x.q) AS q, sum(x.n) AS n, max(x.mx) AS mx"          \
                                 "    FROM x JOIN metrics m ON m.id = x.mid AND m.aggregation <> " \
                                 "'unique_count'"                                                  \
                                 "   GROUP BY 1, 2, 3, 4, 5"

/* y when each hourly rollup row is one bucket (hour granularity, every
 * boundary a whole UTC hour): no time-zone arithmetic and no second
 * grouping — x already has one row per series and hour ($9 is false only
 * with a single metric). */
#define UQ_Y_DIRECT                                                                                \
    "  SELECT x.org_id, x.cid, CASE WHEN $9::bool THEN x.mid END AS mid, m.aggregation AS agg,"    \
    "         x.t AS s, x.q, x.n, x.mx"                                                            \
    "    FROM x JOIN metrics m ON m.id = x.mid AND m.aggregation <> 'unique_count'"

/* $1 org (0 = all), $2 customer ids, $3 metric ids, $4 from, $5 to, $6 tz,
 * $7 granularity, $8 by customer, $9 by metric, $10 unique_count metrics in
 * scope.
 * Rollup rows are first summed per (org, [customer], metric, rollup bucket),
 * then mapped to local buckets: the time-zone arithmetic runs on the reduced
 * set. */
#define UQ_AGG_SQL(TABLE, Y)                                                                       \
    "WITH x AS ("                                                                                  \
    "  SELECT r.org_id, CASE WHEN $8::bool THEN r.customer_id END AS cid, r.metric_id AS mid,"     \
    "         r.bucket AS t, sum(r.quantity) AS q, sum(r.events) AS n, max(r.max_quantity) AS mx"  \
    "    FROM " TABLE " r"                                                                         \
    "   WHERE ($1::bigint = 0 OR r.org_id = $1::bigint)"                                           \
    "     AND ($2::bigint[] IS NULL OR r.customer_id = ANY ($2::bigint[]))"                        \
    "     AND ($3::bigint[] IS NULL OR r.metric_id = ANY ($3::bigint[]))"                          \
    "     AND r.bucket >= $4::timestamptz AND r.bucket < $5::timestamptz"                          \
    "   GROUP BY 1, 2, 3, 4),"                                                                     \
    " y AS (" Y "  UNION ALL"                                                                      \
    "  SELECT e.org_id, CASE WHEN $8::bool THEN e.customer_id END,"                                \
    "         CASE WHEN $9::bool THEN e.metric_id END, 'unique_count',"                            \
    "         " UQ_F("e.occurred_at", "(e.occurred_at AT TIME ZONE $6::text)", "$6::text",         \
                     "$7::text") ","                                                               \
                                 "         count(DISTINCT e.properties ->> "                       \
                                 "m.unique_property), count(*), NULL"                              \
                                 "    FROM usage_events e"                                         \
                                 "    JOIN metrics m ON m.id = e.metric_id AND m.aggregation "     \
                                 "= 'unique_count'"                                                \
                                 "   WHERE $10::bool AND ($1::bigint = 0 OR e.org_id = "           \
                                 "$1::bigint)"                                                     \
                                 "     AND ($2::bigint[] IS NULL OR e.customer_id = ANY "          \
                                 "($2::bigint[]))"                                                 \
                                 "     AND ($3::bigint[] IS NULL OR e.metric_id = ANY "            \
                                 "($3::bigint[]))"                                                 \
                                 "     AND e.occurred_at >= $4::timestamptz AND e.occurred_at "    \
                                 "< $5::timestamptz"                                               \
                                 "   GROUP BY 1, 2, 3, 4, 5)"                                      \
                                 "SELECT o.slug, c.external_id, mt.code, (extract(epoch FROM "     \
                                 "y.s) * 1000000)::bigint,"                                        \
                                 "       CASE y.agg WHEN 'sum' THEN trim_scale(y.q)::text "        \
                                 "WHEN 'max' THEN trim_scale(y.mx)::text"                          \
                                 "                  WHEN 'count' THEN y.n::text ELSE "             \
                                 "y.q::text END, y.n::text"                                        \
                                 "  FROM y JOIN organizations o ON o.id = y.org_id"                \
                                 "  LEFT JOIN customers c ON c.id = y.cid LEFT JOIN metrics "      \
                                 "mt ON mt.id = y.mid" /* ordered in C: agg_render */

static const char k_agg_sql_15m[] = UQ_AGG_SQL("usage_rollup", UQ_Y_MAP);
static const char k_agg_sql_hour[] = UQ_AGG_SQL("usage_rollup_hour", UQ_Y_MAP);
static const char k_agg_sql_direct[] = UQ_AGG_SQL("usage_rollup_hour", UQ_Y_DIRECT);

/* The common case — hourly buckets on whole UTC hours of one organization,
 * each output series one customer (one asked for, or all grouped by
 * customer) and one metric, no unique_count in scope — needs neither
 * grouping nor the union: every hourly rollup row is one output row.  Same
 * columns as UQ_AGG_SQL.  The customer and metric are scalars ($2, $3; NULL
 * = all), never "= ANY (array)": with an array the planner filters the
 * organization's whole month instead of seeking the customer in the
 * primary key.  $1 org, $4 from, $5 to. */
static const char k_agg_sql_rows[] =
    "SELECT NULL::text, c.external_id, m.code, (extract(epoch FROM r.bucket))::bigint * 1000000,"
    "       CASE m.aggregation WHEN 'max' THEN trim_scale(r.max_quantity)::text"
    "                          WHEN 'count' THEN r.events::text"
    "                          ELSE trim_scale(r.quantity)::text END, r.events::text"
    "  FROM usage_rollup_hour r"
    "  JOIN metrics m ON m.id = r.metric_id AND m.aggregation <> 'unique_count'"
    "  JOIN customers c ON c.id = r.customer_id"
    " WHERE r.org_id = $1::bigint"
    "   AND ($2::bigint IS NULL OR r.customer_id = $2::bigint)"
    "   AND ($3::bigint IS NULL OR r.metric_id = $3::bigint)"
    "   AND r.bucket >= $4::timestamptz AND r.bucket < $5::timestamptz";

/* "{5}" — one id: copied without the braces into out. */
static bool one_id(const char *arr, char out[24]) {
    size_t n = arr ? strlen(arr) : 0;
    if (n < 3 || n > 22 || arr[0] != '{' || arr[n - 1] != '}' || strchr(arr, ',')) return false;
    memcpy(out, arr + 1, n - 2);
    out[n - 2] = '\0';
    return true;
}

enum { A_SLUG, A_CUST, A_METRIC, A_START, A_QTY, A_EVENTS };

static const char *const k_agg_params[] = {"from",     "to", "granularity", "customer_id", "metric",
                                           "group_by", "tz", "fill",        "org",         NULL};

typedef struct uq_agg {
    const char *gran; /* "hour" | "day" | "month" */
    bool by_customer, by_metric, fill_zero;
    const char *tz;
} uq_agg;

/* granularity, group_by, fill, tz syntax.  Pure; returns the bad parameter
 * or NULL, with a message in msg. */
static const char *uq_parse_agg(const uq_params *p, uq_agg *a, char *msg, size_t cap) {
    const char *g = uq_get(p, "granularity");
    a->gran = "day";
    if (g) {
        static const char *const grans[] = {"hour", "day", "month"};
        a->gran = NULL;
        for (size_t i = 0; i < ML_ARRAY_LEN(grans); i++)
            if (!strcmp(g, grans[i])) a->gran = grans[i];
        if (!a->gran) {
            snprintf(msg, cap, "must be hour, day or month");
            return "granularity";
        }
    }
    a->by_customer = a->by_metric = false;
    const char *gb = uq_get(p, "group_by");
    if (gb) {
        const char *s = gb;
        for (;;) {
            size_t n = strcspn(s, ",");
            if (n == 8 && !strncmp(s, "customer", 8) && !a->by_customer)
                a->by_customer = true;
            else if (n == 6 && !strncmp(s, "metric", 6) && !a->by_metric)
                a->by_metric = true;
            else if (!(n == 0 && !s[0] && s == gb)) {
                snprintf(msg, cap, "must be a comma-separated list of customer, metric");
                return "group_by";
            }
            if (!s[n]) break;
            s += n + 1;
        }
    }
    const char *f = uq_get(p, "fill");
    a->fill_zero = false;
    if (f) {
        if (!strcmp(f, "zero"))
            a->fill_zero = true;
        else if (strcmp(f, "none")) {
            snprintf(msg, cap, "must be zero or none");
            return "fill";
        }
    }
    a->tz = uq_get(p, "tz");
    if (!a->tz) a->tz = "UTC";
    if (!uq_nonempty_ok(a->tz, 64)) {
        snprintf(msg, cap, "must be an IANA time zone such as Europe/Berlin");
        return "tz";
    }
    return NULL;
}

/* Upper bound of the number of buckets in [from, to), from elapsed time
 * alone (a local day is at least 23 h, a local month at least 27 days). */
static int64_t uq_bucket_bound(const char *gran, int64_t from, int64_t to) {
    int64_t span = to - from;
    int64_t unit = !strcmp(gran, "hour")  ? US_PER_HOUR / 2 /* 30-minute DST shifts */
                   : !strcmp(gran, "day") ? 23 * US_PER_HOUR
                                          : 27 * US_PER_DAY;
    return span / unit + 2;
}

static void agg_row(buf *b, bool *first, const char *slug, const char *cust, const char *metric,
                    int64_t start, int64_t end, const char *qty, const char *events) {
    char s[TS_FMT_MAX], e[TS_FMT_MAX];
    if (ts_format(start, s, sizeof s) < 0) s[0] = '\0';
    if (ts_format(end, e, sizeof e) < 0) e[0] = '\0';
    if (!*first) buf_addc(b, ',');
    *first = false;
    buf_adds(b, "{\"bucket_start\":\"");
    buf_adds(b, s);
    buf_adds(b, "\",\"bucket_end\":\"");
    buf_adds(b, e);
    buf_addc(b, '"');
    if (slug) {
        buf_adds(b, ",\"org\":");
        json_str(b, slug);
    }
    if (cust) {
        buf_adds(b, ",\"customer_id\":");
        json_str(b, cust);
    }
    if (metric) {
        buf_adds(b, ",\"metric\":");
        json_str(b, metric);
    }
    buf_adds(b, ",\"quantity\":");
    json_str(b, qty);
    buf_adds(b, ",\"events\":");
    buf_adds(b, events);
    buf_addc(b, '}');
}

static const char *val_or_null(const PGresult *res, int i, int col) {
    return PQgetisnull(res, i, col) ? NULL : PQgetvalue(res, i, col);
}

/* A result row's series key and bucket, for ordering in C (cheaper than
 * PostgreSQL sorting wide rows): series by org, customer, metric (byte
 * order), then time. */
typedef struct uq_key {
    const char *slug, *cust, *metric; /* NULL when not grouped by it */
    int64_t s;
    const char *qty, *events;
} uq_key;

static int uq_strcmp0(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : ""); }

static int uq_key_cmp(const void *pa, const void *pb) {
    const uq_key *a = pa, *b = pb;
    int c = uq_strcmp0(a->slug, b->slug);
    if (!c) c = uq_strcmp0(a->cust, b->cust);
    if (!c) c = uq_strcmp0(a->metric, b->metric);
    if (!c) c = (a->s > b->s) - (a->s < b->s);
    return c;
}

/* Writes n keyed rows as JSON (sorting ord), series by series in time
 * order, with the empty buckets of each series (and of the single series
 * when there is no grouping) when fill is set.  starts[0..nb) ascending; to
 * ends the last. */
static void agg_emit(buf *b, uq_key *ord, size_t n, const int64_t *starts, size_t nb, int64_t to,
                     bool single, bool fill) {
    bool first = true;
    if (n == 0 && single && fill) {
        for (size_t k = 0; k < nb; k++)
            agg_row(b, &first, NULL, NULL, NULL, starts[k], k + 1 < nb ? starts[k + 1] : to, "0",
                    "0");
        return;
    }
    qsort(ord, n, sizeof *ord, uq_key_cmp);
    size_t i = 0;
    while (i < n) {
        const uq_key *g = &ord[i];
        size_t k = 0;
        while (i < n && !uq_strcmp0(ord[i].slug, g->slug) && !uq_strcmp0(ord[i].cust, g->cust) &&
               !uq_strcmp0(ord[i].metric, g->metric)) {
            int64_t s = ord[i].s;
            while (k < nb && starts[k] < s) { /* empty buckets before this row */
                if (fill)
                    agg_row(b, &first, g->slug, g->cust, g->metric, starts[k],
                            k + 1 < nb ? starts[k + 1] : to, "0", "0");
                k++;
            }
            int64_t end = k < nb && starts[k] == s && k + 1 < nb ? starts[k + 1] : to;
            if (ML_NEVER(k >= nb || starts[k] != s)) /* a row outside the bucket list */
                end = s;
            agg_row(b, &first, g->slug, g->cust, g->metric, s, end, ord[i].qty, ord[i].events);
            if (k < nb && starts[k] == s) k++;
            i++;
        }
        for (; fill && k < nb; k++)
            agg_row(b, &first, g->slug, g->cust, g->metric, starts[k],
                    k + 1 < nb ? starts[k + 1] : to, "0", "0");
    }
}

/* The rows of a UQ_AGG_SQL-shaped result as JSON (agg_emit).  false if out
 * of memory. */
static bool agg_render(buf *b, const PGresult *res, const int64_t *starts, size_t nb, int64_t to,
                       bool with_org, bool by_cust, bool by_metric, bool fill) {
    int n = PQntuples(res);
    uq_key *ord = malloc((size_t)(n ? n : 1) * sizeof *ord);
    if (!ord) return false;
    for (int j = 0; j < n; j++)
        ord[j] = (uq_key){with_org ? val_or_null(res, j, A_SLUG) : NULL,
                          by_cust ? val_or_null(res, j, A_CUST) : NULL,
                          by_metric ? val_or_null(res, j, A_METRIC) : NULL,
                          strtoll(PQgetvalue(res, j, A_START), NULL, 10),
                          PQgetvalue(res, j, A_QTY),
                          PQgetvalue(res, j, A_EVENTS)};
    agg_emit(b, ord, (size_t)n, starts, nb, to, !with_org && !by_cust && !by_metric, fill);
    free(ord);
    return true;
}

/* ---- one customer, hourly, whole UTC hours: the hottest query -------------
 * The rollup rows of one customer come straight from the primary key (an
 * index-only scan: no join, no function of a column but the CASE) in
 * binary (the send format: no numeric_out on the server, no strtoll here):
 * metric id, hour, the one numeric column the metric reports (max_quantity
 * for max metrics, nothing for count metrics — their figure is events —
 * quantity for sum metrics: a numeric costs the server more to send than
 * the scan costs to read) and events.  The metric's code and aggregation
 * come from uq_resolve's map, which also chose $6 and $7.  Rows come in
 * primary-key order, never sorted by the server (an ORDER BY adds a sort
 * node: the metric list is an array condition); agg_render_cust orders
 * them.  $1 org, $2 customer, $3 metric ids (bigint[]), $4 from, $5 to,
 * $6 the ids of max metrics, $7 those of count metrics. */
static const char k_agg_sql_cust[] =
    "SELECT r.metric_id, r.bucket,"
    "       CASE WHEN r.metric_id = ANY ($6::bigint[]) THEN r.max_quantity"
    "            WHEN r.metric_id = ANY ($7::bigint[]) THEN NULL ELSE r.quantity END,"
    "       r.events"
    "  FROM usage_rollup_hour r"
    " WHERE r.org_id = $1::bigint AND r.customer_id = $2::bigint"
    "   AND r.metric_id = ANY ($3::bigint[])"
    "   AND r.bucket >= $4::timestamptz AND r.bucket < $5::timestamptz";

enum { C_METRIC, C_BUCKET, C_VALUE, C_EVENTS, C_NCOLS };
/* their type OIDs (pg_type.h): int8, timestamptz, numeric, int8 */
static const Oid k_cust_types[C_NCOLS] = {20, 1184, 1700, 20};

/* "{3,7}": the ids of the metrics aggregated by agg ("{}" when none), for
 * $6 / $7 of k_agg_sql_cust.  NULL if out of memory (caller frees). */
static char *uq_ids_with_agg(const uq_ids *x, char agg) {
    char *s = malloc(x->nmetrics * 21 + 3);
    if (!s) return NULL;
    size_t len = 0;
    s[len++] = '{';
    for (size_t i = 0; i < x->nmetrics; i++)
        if (x->metrics[i].agg == agg)
            len += (size_t)snprintf(s + len, 22, "%s%lld", len > 1 ? "," : "", x->metrics[i].id);
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

#define UQ_PG_EPOCH_US 946684800000000LL /* 2000-01-01 (PostgreSQL's epoch) in Unix µs */
#define UQ_NUM_MAX     64                /* a decimal as text; numeric(38,12) needs 40 */

static int64_t uq_be64(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | u[i];
    return (int64_t)v; /* two's complement: the send format of int8 */
}

static unsigned uq_be16(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return (unsigned)u[0] << 8 | u[1];
}

/* An integer in decimal; out holds at least 21 bytes.  Returns the length. */
static size_t uq_i64_text(int64_t v, char *out) {
    char t[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        t[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0) out[k++] = '-';
    while (n) out[k++] = t[--n];
    return k;
}

/* A numeric in PostgreSQL's binary send format (int16 ndigits, int16 weight,
 * uint16 sign, uint16 dscale, then ndigits base-10000 digits, the first of
 * weight 10000^weight) as the text of trim_scale(v)::text: numeric_out's
 * digits (integer part, then exactly dscale fraction digits) with the
 * trailing fraction zeros and a bare point dropped — "12.5", "3", "0",
 * "0.000000000001".  Integer arithmetic on the digits only, never a float.
 * Pure.  Returns the length written to out (NUL-terminated), or -1 if p is
 * not a well-formed numeric or the text needs cap bytes or more. */
static int uq_numeric_text(const char *p, size_t len, char *out, size_t cap) {
    if (len < 8 || cap < 12) return -1;
    unsigned ndigits = uq_be16(p), sign = uq_be16(p + 4), dscale = uq_be16(p + 6);
    int weight = (int16_t)uq_be16(p + 2);
    if (len != 8 + 2 * (size_t)ndigits) return -1;
    const char *dg = p + 8;
    if (sign == 0xC000) return snprintf(out, cap, "NaN");
    if (sign == 0xD000) return snprintf(out, cap, "Infinity");
    if (sign == 0xF000) return snprintf(out, cap, "-Infinity");
    if ((sign != 0x0000 && sign != 0x4000) || dscale > 0x3FFF) return -1;
    for (unsigned i = 0; i < ndigits; i++)
        if (uq_be16(dg + 2 * i) > 9999) return -1;
    /* integer part: weight+1 groups (one "0" when weight < 0); fraction:
     * dscale digits; sign, point and NUL */
    size_t need = (weight >= 0 ? 4 * ((size_t)weight + 1) : 1) + dscale + 3;
    if (need > cap) return -1;
    size_t k = 0;
    if (sign == 0x4000) out[k++] = '-';
    int d;
    if (weight < 0) {
        d = weight + 1;
        out[k++] = '0';
    } else {
        for (d = 0; d <= weight; d++) {
            unsigned v = (unsigned)d < ndigits ? uq_be16(dg + 2 * d) : 0;
            char g[4] = {(char)('0' + v / 1000), (char)('0' + v / 100 % 10),
                         (char)('0' + v / 10 % 10), (char)('0' + v % 10)};
            int from = 0;
            if (d == 0) /* no leading zeros, but one digit at least */
                while (from < 3 && g[from] == '0') from++;
            for (int i = from; i < 4; i++) out[k++] = g[i];
        }
    }
    if (dscale > 0) {
        size_t point = k;
        out[k++] = '.';
        for (unsigned i = 0; i < dscale; d++) {
            unsigned v = d >= 0 && (unsigned)d < ndigits ? uq_be16(dg + 2 * d) : 0;
            char g[4] = {(char)('0' + v / 1000), (char)('0' + v / 100 % 10),
                         (char)('0' + v / 10 % 10), (char)('0' + v % 10)};
            for (int j = 0; j < 4 && i < dscale; j++, i++) out[k++] = g[j];
        }
        while (k > point + 1 && out[k - 1] == '0') k--;
        if (k == point + 1) k = point;
    }
    out[k] = '\0';
    return (int)k;
}

/* One output row of the one-customer path: its series (rank of the metric
 * in code order), its bucket index and its result row. */
typedef struct uq_crow {
    uint32_t rank; /* series */
    uint32_t k;    /* bucket */
    uint32_t mi;   /* the row's metric in uq_ids.metrics */
    int row;
} uq_crow;

static int uq_crow_cmp(const void *pa, const void *pb) {
    const uq_crow *a = pa, *b = pb;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    return (a->k > b->k) - (a->k < b->k);
}

static int uq_metric_code_cmp(const void *pa, const void *pb, void *arg) {
    const uq_metric *m = arg;
    return strcmp(m[*(const uint32_t *)pa].code, m[*(const uint32_t *)pb].code);
}

/* The formatted bucket boundaries, each formatted once (lazily: with fill
 * unset only the boundaries of rows are needed). */
typedef struct uq_tstab {
    char (*s)[TS_FMT_MAX];
    int8_t *len; /* -1 = not formatted yet */
    const int64_t *starts;
    size_t nb;
    int64_t to;
} uq_tstab;

/* Boundary k (k == nb: to). */
static const char *uq_ts(uq_tstab *t, size_t k, size_t *len) {
    if (t->len[k] < 0) {
        int n = ts_format(k < t->nb ? t->starts[k] : t->to, t->s[k], TS_FMT_MAX);
        if (n < 0) { /* out of range: an empty string, as ever */
            t->s[k][0] = '\0';
            n = 0;
        }
        t->len[k] = (int8_t)n;
    }
    *len = (size_t)t->len[k];
    return t->s[k];
}

static char *uq_put(char *w, const char *s, size_t n) {
    memcpy(w, s, n);
    return w + n;
}
#define UQ_PUTL(w, lit) uq_put((w), (lit), sizeof(lit) - 1)

/* Bytes one row may take besides its series text: the literal parts, two
 * boundaries, a quantity, an event count and the comma before it. */
#define UQ_ROW_MAX                                                                                 \
    (sizeof "{\"bucket_start\":\"\",\"bucket_end\":\"\",\"quantity\":\"\",\"events\":}," +         \
     2 * TS_FMT_MAX + UQ_NUM_MAX + 24)

/* Appends one row (no bounds checks: the caller reserved UQ_ROW_MAX +
 * midlen).  mid is the series text (",\"customer_id\":…,\"metric\":…"). */
static char *uq_row(char *w, bool *first, uq_tstab *t, size_t k, const char *mid, size_t midlen,
                    const char *qty, size_t qlen, const char *ev, size_t evlen) {
    size_t n;
    const char *s;
    if (!*first) *w++ = ',';
    *first = false;
    w = UQ_PUTL(w, "{\"bucket_start\":\"");
    s = uq_ts(t, k, &n);
    w = uq_put(w, s, n);
    w = UQ_PUTL(w, "\",\"bucket_end\":\"");
    s = uq_ts(t, k + 1, &n);
    w = uq_put(w, s, n);
    *w++ = '"';
    w = uq_put(w, mid, midlen);
    w = UQ_PUTL(w, ",\"quantity\":\"");
    w = uq_put(w, qty, qlen);
    w = UQ_PUTL(w, "\",\"events\":");
    w = uq_put(w, ev, evlen);
    *w++ = '}';
    return w;
}

/* Renders one customer's rows (k_agg_sql_cust, binary) with the metric map
 * of uq_resolve: the same JSON as agg_emit over the same rows — series in
 * metric-code byte order, each in time order, empty buckets as "0" when
 * fill is set — built in one pass into one reservation.  cust is the
 * customer's external id when grouped by customer; the metric's code is
 * shown when grouped by metric (without, one metric is in scope).  Rows
 * arrive in primary-key order, (metric id, bucket): a counting sort by
 * code rank is all the ordering they need (anything else is sorted).
 * starts[0..nb) ascending, to ends the last.  0, -1 out of memory, -2 a
 * result this code does not understand (cannot happen). */
static int agg_render_cust(buf *b, const PGresult *res, const uq_ids *ids, const char *cust,
                           bool by_metric, const int64_t *starts, size_t nb, int64_t to,
                           bool fill) {
    assert(nb > 0);
    int n = PQntuples(res);
    if (PQnfields(res) != C_NCOLS) return -2;
    for (int c = 0; c < C_NCOLS; c++)
        if (PQftype(res, c) != k_cust_types[c] || PQfformat(res, c) != 1) return -2;
    size_t nm = ids->nmetrics ? ids->nmetrics : 1;
    int rc = -1;
    uq_crow *rows = malloc((size_t)(n ? n : 1) * sizeof *rows);
    uq_crow *sorted = malloc((size_t)(n ? n : 1) * sizeof *sorted);
    uint32_t *by_code = malloc(nm * sizeof *by_code);
    uint32_t *rank = malloc(nm * sizeof *rank);
    size_t *first_of = calloc(nm + 1, sizeof *first_of);
    uq_tstab t = {malloc((nb + 1) * sizeof *t.s), malloc(nb + 1), starts, nb, to};
    buf mid;
    buf_init(&mid);
    if (!rows || !sorted || !by_code || !rank || !first_of || !t.s || !t.len) goto out;
    memset(t.len, -1, nb + 1);
    /* series order: metric codes in byte order (strcmp, as uq_key_cmp) */
    for (size_t i = 0; i < ids->nmetrics; i++) by_code[i] = (uint32_t)i;
    if (by_metric && ids->nmetrics > 1)
        qsort_r(by_code, ids->nmetrics, sizeof *by_code, uq_metric_code_cmp, ids->metrics);
    for (size_t i = 0; i < ids->nmetrics; i++) rank[by_code[i]] = by_metric ? (uint32_t)i : 0;

    size_t m = 0, last = 0;
    for (int j = 0; j < n; j++) {
        if (PQgetlength(res, j, C_METRIC) != 8 || PQgetlength(res, j, C_BUCKET) != 8) {
            rc = -2;
            goto out;
        }
        long long mid_id = uq_be64(PQgetvalue(res, j, C_METRIC));
        if (last >= ids->nmetrics || ids->metrics[last].id != mid_id) {
            last = ids->nmetrics;
            for (size_t i = 0; i < ids->nmetrics; i++)
                if (ids->metrics[i].id == mid_id) last = i;
        }
        if (ML_NEVER(last >= ids->nmetrics)) continue; /* a metric not asked for */
        /* the bucket: whole UTC hours (the table's CHECK), so exact µs */
        int64_t pg_us = uq_be64(PQgetvalue(res, j, C_BUCKET));
        if (pg_us > INT64_MAX - UQ_PG_EPOCH_US || pg_us < INT64_MIN + UQ_PG_EPOCH_US) {
            rc = -2;
            goto out;
        }
        int64_t s = pg_us + UQ_PG_EPOCH_US;
        size_t lo = 0, hi = nb; /* first start >= s */
        while (lo < hi) {
            size_t md = lo + (hi - lo) / 2;
            if (starts[md] < s)
                lo = md + 1;
            else
                hi = md;
        }
        if (ML_NEVER(lo == nb || starts[lo] != s)) { /* a row outside the bucket list */
            rc = -2;
            goto out;
        }
        rows[m++] = (uq_crow){rank[last], (uint32_t)lo, (uint32_t)last, j};
    }
    /* counting sort by series (stable: each series keeps its scan order) */
    uint32_t ns = by_metric ? (uint32_t)ids->nmetrics : 1;
    if (ns == 0) ns = 1;
    for (size_t i = 0; i < m; i++) first_of[rows[i].rank + 1]++;
    for (uint32_t s = 0; s < ns; s++) first_of[s + 1] += first_of[s];
    for (size_t i = 0; i < m; i++) sorted[first_of[rows[i].rank]++] = rows[i];
    for (size_t i = 1; i < m; i++) /* time order within a series */
        if (uq_crow_cmp(&sorted[i - 1], &sorted[i]) > 0) {
            qsort(sorted, m, sizeof *sorted, uq_crow_cmp);
            break;
        }

    /* one reservation for the whole answer */
    size_t series_text = 0;
    if (cust) series_text += sizeof ",\"customer_id\":\"\"" + 6 * strlen(cust);
    if (by_metric) series_text += sizeof ",\"metric\":\"\"" + 6 * 64;
    size_t nrows = m;
    if (fill) nrows = (m ? ns : 1) * nb;
    if (nrows > SIZE_MAX / (UQ_ROW_MAX + series_text) - 8) goto out;
    if (!buf_reserve(b, nrows * (UQ_ROW_MAX + series_text) + 8)) goto out;

    char *w = b->p + b->len;
    bool first = true;
    char qty[UQ_NUM_MAX], ev[24];
    if (m == 0) {
        if (fill && !cust && !by_metric) /* the single series, all empty */
            for (size_t k = 0; k < nb; k++) w = uq_row(w, &first, &t, k, "", 0, "0", 1, "0", 1);
        b->len = (size_t)(w - b->p);
        b->p[b->len] = '\0';
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < m;) {
        /* the series text: ,"customer_id":"…","metric":"…" (grouped by
         * metric, a series is one metric) */
        const uq_metric *me = &ids->metrics[sorted[i].mi];
        mid.len = 0;
        if (cust) {
            buf_adds(&mid, ",\"customer_id\":");
            json_str(&mid, cust);
        }
        if (by_metric) {
            buf_adds(&mid, ",\"metric\":");
            json_str(&mid, me->code);
        }
        if (mid.oom) goto out;
        const char *ms = mid.p ? mid.p : "";
        size_t k = 0;
        uint32_t series = sorted[i].rank;
        for (; i < m && sorted[i].rank == series; i++) {
            int j = sorted[i].row;
            size_t kk = sorted[i].k;
            for (; fill && k < kk; k++) w = uq_row(w, &first, &t, k, ms, mid.len, "0", 1, "0", 1);
            /* the reported value: events (count), else the value column
             * (max_quantity or quantity, chosen by the query) */
            if (PQgetlength(res, j, C_EVENTS) != 8) {
                rc = -2;
                goto out;
            }
            size_t evlen = uq_i64_text(uq_be64(PQgetvalue(res, j, C_EVENTS)), ev);
            const uq_metric *rm = &ids->metrics[sorted[i].mi];
            const char *qp = ev;
            size_t qlen = evlen;
            if (rm->agg != 'c') {
                int ql =
                    PQgetisnull(res, j, C_VALUE)
                        ? -1
                        : uq_numeric_text(PQgetvalue(res, j, C_VALUE),
                                          (size_t)PQgetlength(res, j, C_VALUE), qty, sizeof qty);
                if (ql < 0) {
                    rc = -2;
                    goto out;
                }
                qp = qty;
                qlen = (size_t)ql;
            }
            w = uq_row(w, &first, &t, kk, ms, mid.len, qp, qlen, ev, evlen);
            k = kk + 1;
        }
        for (; fill && k < nb; k++) w = uq_row(w, &first, &t, k, ms, mid.len, "0", 1, "0", 1);
    }
    b->len = (size_t)(w - b->p);
    b->p[b->len] = '\0';
    rc = 0;
out:
    buf_free(&mid);
    free(rows);
    free(sorted);
    free(by_code);
    free(rank);
    free(first_of);
    free(t.s);
    free(t.len);
    return rc;
}

void h_usage_aggregate(api_req *r) {
    uq_params p = {.names = k_agg_params};
    if (uq_read_params(r, &p)) return;
    uq_ids ids = {0};
    int64_t *starts = NULL;
    char *max_ids = NULL, *count_ids = NULL;
    PGresult *res = NULL;
    db_err e;
    int64_t from = 0, to = 0;
    bool has_from, has_to;
    uq_agg a;
    char msg[160];
    const char *bad = uq_parse_agg(&p, &a, msg, sizeof msg);
    if (bad) {
        uq_bad(r, 400, bad, "%s", msg);
        goto out;
    }
    if (uq_parse_range(r, &p, true, &from, &to, &has_from, &has_to)) goto out;
    if (from % (15 * US_PER_MIN) != 0) {
        uq_bad(r, 422, "from", "must be a bucket boundary (the start of a local %s) in %s", a.gran,
               a.tz);
        goto out;
    }
    if (to % (15 * US_PER_MIN) != 0) {
        uq_bad(r, 422, "to", "must be a bucket boundary (the start of a local %s) in %s", a.gran,
               a.tz);
        goto out;
    }
    if (uq_bucket_bound(a.gran, from, to) > 3 * UQ_MAX_BUCKETS) {
        uq_bad(r, 422, "to", "the range holds more than %d %s buckets", UQ_MAX_BUCKETS, a.gran);
        goto out;
    }
    int known = uq_tz_known(r->db, &e, a.tz);
    if (known < 0) {
        api_db_fail(r, &e);
        goto out;
    }
    if (!known) {
        uq_bad(r, 422, "tz", "unknown time zone; use an IANA name such as America/New_York");
        goto out;
    }
    const char *metric = uq_get(&p, "metric");
    if (uq_resolve(r, uq_get(&p, "customer_id"), metric, &ids)) goto out;
    /* metrics aggregate differently: without one metric, one series each */
    if (!metric) a.by_metric = true;
    bool with_org = r->who.org_id == 0;

    char sfrom[TS_FMT_MAX], sto[TS_FMT_MAX];
    if (ts_format(from, sfrom, sizeof sfrom) < 0 || ts_format(to, sto, sizeof sto) < 0) {
        uq_bad(r, 422, "from", "is out of range");
        goto out;
    }
    /* UTC hours need no time-zone database: computed here, which saves a
     * round trip on the most common query; every other case asks
     * PostgreSQL for the local calendar. */
    bool utc_hours = !strcmp(a.tz, "UTC") && !strcmp(a.gran, "hour");
    size_t nb = 0;
    int64_t first = -1, last = -1;
    if (utc_hours) {
        if (from % US_PER_HOUR == 0 && to % US_PER_HOUR == 0 && to > from) {
            nb = (size_t)((to - from) / US_PER_HOUR) + 1;
            first = from;
            last = to;
        }
    } else {
        res = DB_EXEC(r->db, &e, k_buckets_sql, sfrom, sto, a.tz, a.gran);
        if (!res) {
            api_db_fail(r, &e);
            goto out;
        }
        nb = (size_t)PQntuples(res);
        first = nb ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
        last = nb ? strtoll(PQgetvalue(res, (int)nb - 1, 0), NULL, 10) : -1;
    }
    if (first != from || last != to || nb < 2) {
        uq_bad(r, 422, first != from ? "from" : "to",
               "must be a bucket boundary (the start of a local %s) in %s", a.gran, a.tz);
        goto out;
    }
    nb--; /* the last row is `to` itself */
    if (nb > UQ_MAX_BUCKETS) {
        uq_bad(r, 422, "to", "the range holds %zu %s buckets; at most %d are allowed", nb, a.gran,
               UQ_MAX_BUCKETS);
        goto out;
    }
    starts = malloc(nb * sizeof *starts);
    if (!starts) {
        api_err(r, 503, "unavailable", "out of memory");
        goto out;
    }
    /* the hourly rollup serves when every boundary is a whole UTC hour */
    bool hourly = to % US_PER_HOUR == 0;
    for (size_t k = 0; k < nb; k++) {
        starts[k] = utc_hours ? from + (int64_t)k * US_PER_HOUR
                              : strtoll(PQgetvalue(res, (int)k, 0), NULL, 10);
        if (starts[k] % US_PER_HOUR) hourly = false;
    }
    /* and then an hourly bucket is exactly one rollup row */
    bool row_is_bucket = hourly && !strcmp(a.gran, "hour");
    PQclear(res);
    res = NULL;

    char org[24];
    snprintf(org, sizeof org, "%lld", r->who.org_id);
    const char *v[10] = {org,
                         ids.cust,
                         ids.metric,
                         sfrom,
                         sto,
                         a.tz,
                         a.gran,
                         a.by_customer ? "true" : "false",
                         a.by_metric ? "true" : "false",
                         ids.has_unique ? "true" : "false"};
    char one_cust[24], one_metric[24];
    bool rows_are_output = row_is_bucket && !with_org && !ids.has_unique &&
                           (ids.cust ? one_id(ids.cust, one_cust) : a.by_customer) &&
                           (ids.metric ? one_id(ids.metric, one_metric) : a.by_metric);
    const char *vr[5] = {org, ids.cust ? one_cust : NULL, ids.metric ? one_metric : NULL, sfrom,
                         sto};
    /* one customer: its rollup rows straight from the primary key */
    bool one_cust_rows = rows_are_output && ids.cust && ids.metric_ids && ids.nmetrics > 0;
    if (one_cust_rows) {
        max_ids = uq_ids_with_agg(&ids, 'm');
        count_ids = uq_ids_with_agg(&ids, 'c');
        if (!max_ids || !count_ids) {
            api_err(r, 503, "unavailable", "out of memory");
            goto out;
        }
    }
    if (one_cust_rows)
        res = DB_EXECP_BIN(r->db, &e, k_agg_sql_cust, org, one_cust, ids.metric_ids, sfrom, sto,
                           max_ids, count_ids);
    else
        res = rows_are_output ? db_exec(r->db, &e, k_agg_sql_rows, 5, vr)
                              : db_exec(r->db, &e,
                                        row_is_bucket ? k_agg_sql_direct
                                        : hourly      ? k_agg_sql_hour
                                                      : k_agg_sql_15m,
                                        10, v);
    if (!res) {
        api_db_fail(r, &e);
        goto out;
    }
    buf b;
    buf_init(&b);
    /* one allocation for the usual reply (~130 bytes a bucket), not a dozen
     * reallocations and their page faults */
    size_t want = (a.fill_zero ? nb : (size_t)PQntuples(res)) * 140 + 64;
    if (!one_cust_rows && want < 4u << 20) buf_reserve(&b, want); /* that one reserves itself */
    buf_adds(&b, "{\"data\":[");
    int rrc = 0; /* -1 out of memory, -2 a result not understood */
    if (one_cust_rows)
        rrc = agg_render_cust(&b, res, &ids, a.by_customer ? uq_get(&p, "customer_id") : NULL,
                              a.by_metric, starts, nb, to, a.fill_zero);
    else if (!agg_render(&b, res, starts, nb, to, with_org, a.by_customer, a.by_metric,
                         a.fill_zero))
        rrc = -1;
    buf_adds(&b, "]}");
    if (ML_NEVER(rrc == -2)) {
        LOG_KV(LOG_ERROR, "usage aggregate: unexpected rollup result",
               LF_S("request_id", r->request_id));
        api_err(r, 500, "internal", "internal error (request %s)", r->request_id);
    } else if (rrc || b.oom)
        api_err(r, 503, "unavailable", "out of memory");
    else
        api_raw(r, 200, "application/json", b.p, b.len);
    buf_free(&b);
out:
    PQclear(res);
    free(starts);
    free(max_ids);
    free(count_ids);
    uq_ids_free(&ids);
    uq_params_free(&p);
}
