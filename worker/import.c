/* import.c — the usage.import job: load an uploaded CSV file of usage events
 * (prefix imp_ inside, wk_job_usage_import outside).  See handlers.h.
 *
 * DESIGN — The API stored the file under BILLING_STORAGE_DIR, inserted a
 * usage_imports row and enqueued {"import_id": …}.  This handler streams the
 * file in IMP_BLOCK blocks through the pure reader (csvr.h), so memory stays
 * bounded whatever the file size: one block, one record, one chunk of
 * checked rows, and the customer/metric caches.
 *
 *   on_error = abort: pass 1 reads the whole file and checks every row
 *     (including that its customer and metric exist), writing nothing; any
 *     bad row fails the import with the first 100 errors.  Pass 2 loads it.
 *   on_error = skip: one pass; good rows are loaded, bad rows counted and
 *     listed.
 * Loading goes in chunks of BILLING_IMPORT_CHUNK data rows through
 * db_usage_insert_tx — the same exactly-once path as JSON events — whose
 * hook advances usage_imports (done_rows, imported, duplicates, rejected,
 * errors, progress) in the same transaction.  The hook only matches the row
 * while done_rows still has the value this run started the chunk from, so a
 * second worker running the same import (an expired lease) cannot count a
 * chunk twice: its transaction rolls back.  A retried job (kill -9, lease
 * expiry, PostgreSQL outage) re-reads the file, skips the done_rows rows
 * already committed and carries on with exact counts.  An event_id repeated
 * in the file or stored before is a duplicate (the usage_event_ids ledger).
 *
 * "now" for the 5-minutes-ahead timestamp rule is the import's started_at
 * (first attempt), so every attempt and both passes judge rows alike.
 * Outcomes: a rejected file or rows → import failed, job succeeded with
 * status "failed" in its result (re-running cannot help); unknown import,
 * missing file → job dead at once (and the row failed when there is one);
 * PostgreSQL down → wk_fail_db (waits, spends no attempt); other database
 * or read errors → retried.  Runs on the job-loop thread of a worker.
 */
#include "fmacros.h"
#include "handlers.h"
#include "csvr.h"
#include "log.h"
#include "ts.h"
#include "usage.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMP_BLOCK       (256 * 1024)
#define IMP_MAX_ERRORS  100
#define IMP_CACHE_MAX   65536 /* entries per cache before it is emptied */
#define IMP_ID_MAX      (UEV_ID_MAX_CHARS * 4 + 1)
#define IMP_PROGRESS_US 1000000
#define IMP_MSG_MAX     256

/* ---- a small string → id cache (customers, metrics) ---- */

typedef struct imp_ent {
    char *key; /* NULL = free slot */
    size_t len;
    long long id; /* 0 = does not exist */
    bool unique_count;
} imp_ent;

typedef struct imp_cache {
    imp_ent *e;
    size_t cap, n;
} imp_cache;

static uint64_t imp_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void imp_cache_free(imp_cache *c) {
    for (size_t i = 0; i < c->cap; i++) free(c->e[i].key);
    free(c->e);
    memset(c, 0, sizeof *c);
}

static imp_ent *imp_cache_find(const imp_cache *c, const char *s, size_t n) {
    if (!c->cap) return NULL;
    for (size_t i = imp_hash(s, n) & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        imp_ent *e = &c->e[i];
        if (!e->key) return NULL;
        if (e->len == n && !memcmp(e->key, s, n)) return e;
    }
}

/* Adds s (not present); -1 when out of memory. */
static int imp_cache_add(imp_cache *c, const char *s, size_t n, long long id, bool uc) {
    if (c->n >= IMP_CACHE_MAX) imp_cache_free(c);
    if (2 * (c->n + 1) > c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        imp_ent *ne = calloc(cap, sizeof *ne);
        if (!ne) return -1;
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->e[i].key) continue;
            size_t k = imp_hash(c->e[i].key, c->e[i].len) & (cap - 1);
            while (ne[k].key) k = (k + 1) & (cap - 1);
            ne[k] = c->e[i];
        }
        free(c->e);
        c->e = ne;
        c->cap = cap;
    }
    char *key = malloc(n + 1);
    if (!key) return -1;
    memcpy(key, s, n);
    key[n] = '\0';
    size_t k = imp_hash(s, n) & (c->cap - 1);
    while (c->e[k].key) k = (k + 1) & (c->cap - 1);
    c->e[k] = (imp_ent){key, n, id, uc};
    c->n++;
    return 0;
}

/* ---- the job ---- */

typedef struct imp_ev { /* one checked row waiting in the chunk */
    long long customer_id, metric_id;
    char event_id[IMP_ID_MAX];
    char quantity[UEV_QTY_MAX];
    char occurred_at[TS_FMT_MAX];
    int64_t us;
} imp_ev;

typedef struct imp {
    wk_ctx *ctx;
    wk_result *res;
    db *d;
    csv_reader *rd;
    char id[40];
    long long org;
    char org_s[24];
    bool skip;      /* on_error = skip */
    int pass;       /* 1 = check only (abort), 2 = load */
    int64_t now_us; /* the import's started_at */
    long long size; /* file bytes */
    long long bytes;
    size_t chunk;
    /* counts of the current pass */
    long long base_done; /* data rows committed before this run */
    long long done;      /* data rows committed (usage_imports.done_rows) */
    long long rejected;  /* pass 1: bad rows */
    long long imported, duplicates;
    long long stored_errors; /* entries in usage_imports.errors */
    json_t *errors;          /* pass 1: the first 100; load pass: this chunk's */
    /* the chunk being filled */
    imp_ev *evs;
    db_usage_row *rows;
    size_t nev;
    long long chunk_rows, chunk_rejected;
    int64_t min_us, max_us;
    imp_cache cust, met;
    /* failure inside a reader callback */
    bool failed;
    wk_status st;
    int64_t last_progress_us;
} imp;

/* A path relative to the storage directory made of plain components. */
static bool rel_path_ok(const char *p) {
    if (!*p || *p == '/') return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += n + (e ? 1 : 0);
    }
    return true;
}

static long long col_ll(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static wk_status imp_stop(imp *m, wk_status st) {
    m->failed = true;
    m->st = st;
    return st;
}

/* The job result from a usage_imports row's final columns:
 * status, rows, imported, duplicates, rejected. */
static wk_status result_from(imp *m, const PGresult *r, int c0) {
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "import_id", m->id, "status",
                  PQgetvalue(r, 0, c0), "rows", (json_int_t)col_ll(r, 0, c0 + 1), "imported",
                  (json_int_t)col_ll(r, 0, c0 + 2), "duplicates", (json_int_t)col_ll(r, 0, c0 + 3),
                  "rejected", (json_int_t)col_ll(r, 0, c0 + 4));
    LOG_KV(LOG_INFO, "usage import finished", LF_S("import_id", m->id),
           LF_S("status", PQgetvalue(r, 0, c0)), LF_I("rows", col_ll(r, 0, c0 + 1)),
           LF_I("imported", col_ll(r, 0, c0 + 2)), LF_I("duplicates", col_ll(r, 0, c0 + 3)),
           LF_I("rejected", col_ll(r, 0, c0 + 4)));
    return wk_ok_json(m->res, o);
}

#define IMP_FINAL_COLS "status, rows, imported, duplicates, rejected"

/* Marks the import failed with `error` (rows/rejected NULL = unchanged,
 * errors NULL = unchanged).  Returns the job status to end with: WK_OK with
 * the result, or ret_st (WK_PERMANENT for a missing file) after marking. */
static wk_status mark_failed(imp *m, const char *error, const long long *rows,
                             const long long *rejected, const json_t *errors, wk_status ret_st) {
    char rows_s[24], rej_s[24];
    if (rows) snprintf(rows_s, sizeof rows_s, "%lld", *rows);
    if (rejected) snprintf(rej_s, sizeof rej_s, "%lld", *rejected);
    char *errs = errors ? json_dumps(errors, JSON_COMPACT) : NULL;
    if (errors && !errs) return wk_fail(m->res, WK_RETRY, "out of memory");
    db_err e;
    PGresult *r = DB_EXEC(m->d, &e,
                          "UPDATE usage_imports SET status = 'failed', progress = 100,"
                          " finished_at = now(), error = $2,"
                          " rows = coalesce($3::bigint, rows),"
                          " rejected = coalesce($4::bigint, rejected),"
                          " errors = coalesce($5::jsonb, errors)"
                          " WHERE id = $1 AND status IN ('queued', 'running')"
                          " RETURNING " IMP_FINAL_COLS,
                          m->id, error, rows ? rows_s : NULL, rejected ? rej_s : NULL, errs);
    free(errs);
    if (!r) return wk_fail_db(m->res, &e, "mark the import failed");
    wk_status st;
    if (ret_st != WK_OK)
        st = wk_fail(m->res, ret_st, "import %s: %s", m->id, error);
    else if (PQntuples(r) == 1)
        st = result_from(m, r, 0);
    else
        st = wk_fail(m->res, WK_RETRY, "import %s changed while it was being failed", m->id);
    PQclear(r);
    return st;
}

static int report(imp *m, int pct, const char *msg, bool force) {
    int64_t now = ts_now();
    if (!force && now - m->last_progress_us < IMP_PROGRESS_US) return 0;
    m->last_progress_us = now;
    if (m->pass == 1) { /* pass 2 moves the row's progress with each chunk */
        char p[16];
        snprintf(p, sizeof p, "%d", pct);
        db_err e;
        if (DB_CMD(m->d, &e,
                   "UPDATE usage_imports SET progress = greatest(progress, $2::int)"
                   " WHERE id = $1 AND status = 'running'",
                   m->id, p)) {
            imp_stop(m, wk_fail_db(m->res, &e, "record progress"));
            return -1;
        }
    }
    if (m->ctx->progress(m->ctx, pct, msg) == JQ_LOST) {
        imp_stop(m, wk_fail(m->res, WK_RETRY, "the job's lease was lost during the import"));
        return -1;
    }
    return 0;
}

static int pct_of(const imp *m) {
    long long b = m->size > 0 ? m->bytes * 100 / m->size : 100;
    if (b > 100) b = 100;
    int p = m->skip ? (int)b : m->pass == 1 ? (int)(b / 2) : 50 + (int)(b / 2);
    return p > 99 ? 99 : p;
}

/* Resolves the row's customer and metric.  0 ok, 1 row error (msg), -1
 * stop (m->st set). */
static int resolve(imp *m, const csv_event *ev, long long *cid, long long *mid, char *msg,
                   size_t msglen) {
    char q[96];
    imp_ent *c = imp_cache_find(&m->cust, ev->customer, ev->customer_len);
    if (!c) {
        db_err e;
        PGresult *r =
            DB_EXEC(m->d, &e, "SELECT id FROM customers WHERE org_id = $1 AND external_id = $2",
                    m->org_s, ev->customer);
        if (!r) return imp_stop(m, wk_fail_db(m->res, &e, "look up a customer")), -1;
        long long id = PQntuples(r) == 1 ? col_ll(r, 0, 0) : 0;
        PQclear(r);
        if (imp_cache_add(&m->cust, ev->customer, ev->customer_len, id, false))
            return imp_stop(m, wk_fail(m->res, WK_RETRY, "out of memory")), -1;
        c = imp_cache_find(&m->cust, ev->customer, ev->customer_len);
        if (ML_NEVER(!c)) return imp_stop(m, wk_fail(m->res, WK_RETRY, "cache")), -1;
    }
    if (!c->id) {
        csv_quote(q, sizeof q, ev->customer, ev->customer_len);
        snprintf(msg, msglen, "unknown customer %s", q);
        return 1;
    }
    *cid = c->id;
    imp_ent *t = imp_cache_find(&m->met, ev->metric, ev->metric_len);
    if (!t) {
        db_err e;
        PGresult *r = DB_EXEC(m->d, &e,
                              "SELECT id, aggregation = 'unique_count' FROM metrics"
                              " WHERE org_id = $1 AND code = $2",
                              m->org_s, ev->metric);
        if (!r) return imp_stop(m, wk_fail_db(m->res, &e, "look up a metric")), -1;
        long long id = PQntuples(r) == 1 ? col_ll(r, 0, 0) : 0;
        bool uc = id && PQgetvalue(r, 0, 1)[0] == 't';
        PQclear(r);
        if (imp_cache_add(&m->met, ev->metric, ev->metric_len, id, uc))
            return imp_stop(m, wk_fail(m->res, WK_RETRY, "out of memory")), -1;
        t = imp_cache_find(&m->met, ev->metric, ev->metric_len);
        if (ML_NEVER(!t)) return imp_stop(m, wk_fail(m->res, WK_RETRY, "cache")), -1;
    }
    csv_quote(q, sizeof q, ev->metric, ev->metric_len);
    if (!t->id) {
        snprintf(msg, msglen, "unknown metric %s", q);
        return 1;
    }
    if (t->unique_count) {
        snprintf(msg, msglen,
                 "metric %s counts unique values of a property (unique_count); CSV rows carry "
                 "no properties: send these events as JSON",
                 q);
        return 1;
    }
    *mid = t->id;
    return 0;
}

static int add_error(imp *m, long long line, const char *msg, long long room) {
    if ((long long)json_array_size(m->errors) >= room) return 0;
    json_t *o = json_pack("{s:I, s:s}", "line", (json_int_t)line, "message", msg);
    if (!o || json_array_append_new(m->errors, o)) {
        imp_stop(m, wk_fail(m->res, WK_RETRY, "out of memory"));
        return -1;
    }
    return 0;
}

typedef struct hook_arg {
    imp *m;
    const char *errors; /* JSON array text of this chunk's errors */
} hook_arg;

/* In the chunk's transaction: advance the import row, or roll back when
 * another run moved it on. */
static int chunk_hook(db *d, db_err *e, const db_usage_result *res, void *arg) {
    hook_arg *h = arg;
    imp *m = h->m;
    char prev[24], done[24], ins[24], dup[24], rej[24], pct[16];
    snprintf(prev, sizeof prev, "%lld", m->done);
    snprintf(done, sizeof done, "%lld", m->done + m->chunk_rows);
    snprintf(ins, sizeof ins, "%lld", res->inserted);
    snprintf(dup, sizeof dup, "%lld", res->duplicates);
    snprintf(rej, sizeof rej, "%lld", m->chunk_rejected);
    snprintf(pct, sizeof pct, "%d", pct_of(m));
    PGresult *r = DB_EXEC(d, e,
                          "UPDATE usage_imports SET done_rows = $3::bigint,"
                          " imported = imported + $4::bigint, duplicates = duplicates + $5::bigint,"
                          " rejected = rejected + $6::bigint, errors = errors || $7::jsonb,"
                          " progress = greatest(progress, $8::int),"
                          " rows = greatest(rows, $3::bigint)"
                          " WHERE id = $1 AND done_rows = $2::bigint AND status = 'running'"
                          " RETURNING 1",
                          m->id, prev, done, ins, dup, rej, h->errors, pct);
    if (!r) return -1;
    int n = PQntuples(r);
    PQclear(r);
    if (n != 1) {
        memset(e, 0, sizeof *e);
        snprintf(e->msg, sizeof e->msg,
                 "import %s moved on (another run committed rows %s.. first)", m->id, prev);
        return -1;
    }
    return 0;
}

/* Commits the chunk (its good rows and its counts) in one transaction. */
static int flush(imp *m) {
    if (m->chunk_rows == 0) return 0;
    for (size_t i = 0; i < m->nev; i++) {
        imp_ev *v = &m->evs[i];
        m->rows[i] = (db_usage_row){.org_id = m->org,
                                    .customer_id = v->customer_id,
                                    .metric_id = v->metric_id,
                                    .event_id = v->event_id,
                                    .quantity = v->quantity,
                                    .occurred_at = v->occurred_at,
                                    .properties = NULL};
    }
    char lo[TS_FMT_MAX] = "", hi[TS_FMT_MAX] = "";
    if (m->nev &&
        (ts_format(m->min_us, lo, sizeof lo) < 0 || ts_format(m->max_us, hi, sizeof hi) < 0))
        return imp_stop(m, wk_fail(m->res, WK_RETRY, "time out of range")), -1;
    char *errs = json_dumps(m->errors, JSON_COMPACT);
    if (!errs) return imp_stop(m, wk_fail(m->res, WK_RETRY, "out of memory")), -1;
    hook_arg h = {m, errs};
    db_err e;
    db_usage_result out;
    int rc = db_usage_insert_tx(m->d, &e, m->rows, m->nev, lo, hi, chunk_hook, &h, &out);
    free(errs);
    if (rc) return imp_stop(m, wk_fail_db(m->res, &e, "load a chunk")), -1;
    m->done += m->chunk_rows;
    m->imported += out.inserted;
    m->duplicates += out.duplicates;
    m->stored_errors += (long long)json_array_size(m->errors);
    json_array_clear(m->errors);
    m->nev = 0;
    m->chunk_rows = m->chunk_rejected = 0;
    char msg[96];
    snprintf(msg, sizeof msg, "loaded %lld rows", m->done);
    return report(m, pct_of(m), msg, false);
}

static int on_row(void *arg, const csv_row *row) {
    imp *m = arg;
    if (row->index <= m->base_done) return 0; /* committed by an earlier run */
    char msg[IMP_MSG_MAX];
    csv_event ev;
    long long cid = 0, mid = 0;
    int bad = csv_row_event(m->rd, row, m->now_us, &ev, msg, sizeof msg) ? 1 : 0;
    if (!bad) {
        bad = resolve(m, &ev, &cid, &mid, msg, sizeof msg);
        if (bad < 0) return 1;
    }
    if (m->pass == 1) {
        if (!bad) return 0;
        m->rejected++;
        return add_error(m, row->line, msg, IMP_MAX_ERRORS) ? 1 : 0;
    }
    if (bad) {
        if (ML_NEVER(!m->skip)) { /* pass 1 accepted every row */
            imp_stop(
                m, wk_fail(m->res, WK_RETRY, "line %lld: %s (accepted by pass 1)", row->line, msg));
            return 1;
        }
        m->chunk_rejected++;
        if (add_error(m, row->line, msg, IMP_MAX_ERRORS - m->stored_errors)) return 1;
    } else {
        imp_ev *v = &m->evs[m->nev++];
        v->customer_id = cid;
        v->metric_id = mid;
        memcpy(v->event_id, ev.event_id, ev.event_id_len); /* <= 512 bytes: uev checked */
        v->event_id[ev.event_id_len] = '\0';
        memcpy(v->quantity, ev.quantity, sizeof v->quantity);
        memcpy(v->occurred_at, ev.occurred_at, sizeof v->occurred_at);
        v->us = ev.occurred_us;
        if (m->nev == 1 || ev.occurred_us < m->min_us) m->min_us = ev.occurred_us;
        if (m->nev == 1 || ev.occurred_us > m->max_us) m->max_us = ev.occurred_us;
    }
    m->chunk_rows++;
    if ((size_t)m->chunk_rows >= m->chunk && flush(m)) return 1;
    return 0;
}

/* Reads the whole file through a fresh reader (one pass).  WK_OK when the
 * pass ran to the end (file errors included: csv_reader_error says), else
 * the status to return. */
static wk_status read_pass(imp *m, int fd, int *csv_rc) {
    *csv_rc = CSV_OK;
    if (lseek(fd, 0, SEEK_SET) < 0) return wk_fail(m->res, WK_RETRY, "lseek: %s", strerror(errno));
    csv_reader_free(m->rd);
    m->rd = csv_reader_new(on_row, m);
    char *blk = malloc(IMP_BLOCK);
    if (!m->rd || !blk) {
        free(blk);
        return wk_fail(m->res, WK_RETRY, "out of memory");
    }
    m->bytes = 0;
    wk_status st = WK_OK;
    int rc = CSV_OK;
    for (;;) {
        ssize_t n = read(fd, blk, IMP_BLOCK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            st = wk_fail(m->res, WK_RETRY, "read the uploaded file: %s", strerror(errno));
            break;
        }
        if (n == 0) {
            rc = csv_reader_finish(m->rd);
            break;
        }
        m->bytes += n;
        rc = csv_reader_feed(m->rd, blk, (size_t)n);
        if (rc) break;
        if (m->pass == 1 && report(m, pct_of(m), "checking rows", false)) {
            st = m->st;
            break;
        }
    }
    free(blk);
    if (st != WK_OK) return st;
    if (m->failed) return m->st;
    if (rc == CSV_ERR_NOMEM) return wk_fail(m->res, WK_RETRY, "%s", csv_reader_error(m->rd));
    *csv_rc = rc;
    return WK_OK;
}

static wk_status run(imp *m) {
    db_err e;
    PGresult *r =
        DB_EXEC(m->d, &e,
                "SELECT org_id, file_path, on_error, done_rows, size_bytes,"
                " jsonb_array_length(errors), " IMP_FINAL_COLS " FROM usage_imports WHERE id = $1",
                m->id);
    if (!r) return wk_fail_db(m->res, &e, "read the import");
    if (PQntuples(r) != 1) {
        PQclear(r);
        return wk_fail(m->res, WK_PERMANENT, "unknown import %s", m->id);
    }
    long long org = col_ll(r, 0, 0);
    if (m->ctx->job->org && m->ctx->job->org != org) {
        PQclear(r);
        return wk_fail(m->res, WK_PERMANENT, "import %s belongs to another organization", m->id);
    }
    const char *status = PQgetvalue(r, 0, 6);
    if (!strcmp(status, "succeeded") || !strcmp(status, "failed")) {
        wk_status st = result_from(m, r, 6); /* an earlier run finished it */
        PQclear(r);
        return st;
    }
    m->org = org;
    snprintf(m->org_s, sizeof m->org_s, "%lld", org);
    char path[1200];
    bool path_ok = rel_path_ok(PQgetvalue(r, 0, 1));
    snprintf(path, sizeof path, "%s/%s", m->ctx->cfg->storage_dir, PQgetvalue(r, 0, 1));
    m->skip = !strcmp(PQgetvalue(r, 0, 2), "skip");
    m->done = m->base_done = col_ll(r, 0, 3);
    m->size = col_ll(r, 0, 4);
    m->stored_errors = col_ll(r, 0, 5);
    PQclear(r);

    r = DB_EXEC(m->d, &e,
                "UPDATE usage_imports SET status = 'running',"
                " started_at = coalesce(started_at, now()), job_id = coalesce(job_id, $2)"
                " WHERE id = $1 AND status IN ('queued', 'running')"
                " RETURNING (extract(epoch FROM started_at) * 1000000)::bigint",
                m->id, m->ctx->job->id);
    if (!r) return wk_fail_db(m->res, &e, "mark the import running");
    if (PQntuples(r) != 1) {
        PQclear(r);
        return wk_fail(m->res, WK_RETRY, "import %s finished meanwhile", m->id);
    }
    m->now_us = col_ll(r, 0, 0);
    PQclear(r);

    if (!path_ok) return mark_failed(m, "invalid file path", NULL, NULL, NULL, WK_PERMANENT);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return mark_failed(m, "the uploaded file is missing", NULL, NULL, NULL, WK_PERMANENT);
        return wk_fail(m->res, WK_RETRY, "open the uploaded file: %s", strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0) m->size = (long long)sb.st_size;
    LOG_KV(LOG_INFO, "usage import started", LF_S("import_id", m->id), LF_I("org", org),
           LF_I("bytes", m->size), LF_S("on_error", m->skip ? "skip" : "abort"),
           LF_I("resume_after", m->base_done), LF_I("attempt", m->ctx->job->attempts));

    wk_status st;
    int rc;
    if (!m->skip && m->base_done == 0) { /* pass 1: check everything, write nothing */
        m->pass = 1;
        st = read_pass(m, fd, &rc);
        if (st != WK_OK) goto out;
        long long rows = csv_reader_rows(m->rd);
        if (rc == CSV_ERR_FILE) {
            st = mark_failed(m, csv_reader_error(m->rd), NULL, NULL, NULL, WK_OK);
            goto out;
        }
        if (m->rejected > 0) {
            char why[160];
            snprintf(why, sizeof why,
                     "%lld of %lld rows rejected; nothing was imported (on_error=abort)",
                     m->rejected, rows);
            st = mark_failed(m, why, &rows, &m->rejected, m->errors, WK_OK);
            goto out;
        }
        char rows_s[24];
        snprintf(rows_s, sizeof rows_s, "%lld", rows);
        if (db_cmd(m->d, &e,
                   "UPDATE usage_imports SET rows = $2::bigint, progress = greatest(progress, 50)"
                   " WHERE id = $1 AND status = 'running'",
                   2, (const char *const[]){m->id, rows_s})) {
            st = wk_fail_db(m->res, &e, "record the row count");
            goto out;
        }
        json_array_clear(m->errors);
    }
    m->pass = 2;
    st = read_pass(m, fd, &rc);
    if (st != WK_OK) goto out;
    if (rc == CSV_ERR_FILE) {
        st = mark_failed(m, csv_reader_error(m->rd), NULL, NULL, NULL, WK_OK);
        goto out;
    }
    if (flush(m)) {
        st = m->st;
        goto out;
    }
    long long rows = csv_reader_rows(m->rd);
    if (m->done != rows) { /* cannot happen: every row is in a chunk */
        st = wk_fail(m->res, WK_RETRY, "import %s: %lld rows read, %lld committed", m->id, rows,
                     m->done);
        goto out;
    }
    char rows_s[24];
    snprintf(rows_s, sizeof rows_s, "%lld", rows);
    r = DB_EXEC(m->d, &e,
                "UPDATE usage_imports SET status = 'succeeded', progress = 100,"
                " finished_at = now(), rows = $2::bigint, error = NULL"
                " WHERE id = $1 AND status = 'running' AND done_rows = $2::bigint"
                " RETURNING " IMP_FINAL_COLS,
                m->id, rows_s);
    if (!r) {
        st = wk_fail_db(m->res, &e, "finish the import");
        goto out;
    }
    if (PQntuples(r) == 1)
        st = result_from(m, r, 0);
    else
        st = wk_fail(m->res, WK_RETRY, "import %s moved on before it could finish", m->id);
    PQclear(r);
    if (st == WK_OK && m->ctx->progress(m->ctx, 100, "done") == JQ_LOST)
        LOG_KV(LOG_WARN, "usage import: lease lost at the end", LF_S("import_id", m->id));
out:
    close(fd);
    return st;
}

wk_status wk_job_usage_import(wk_ctx *ctx, wk_result *res) {
    static const char *const allowed[] = {"import_id", NULL};
    if (!wk_payload_only(ctx->payload, allowed, res)) return WK_PERMANENT;
    const char *id = json_string_value(json_object_get(ctx->payload, "import_id"));
    if (!id || !wk_is_uuid(id))
        return wk_fail(res, WK_PERMANENT, "payload: import_id must be a UUID");
    if (ML_NEVER(!ctx->cfg)) return wk_fail(res, WK_PERMANENT, "no configuration");
    imp m = {.ctx = ctx, .res = res, .d = ctx->db};
    snprintf(m.id, sizeof m.id, "%s", id);
    for (char *p = m.id; *p; p++)
        if (*p >= 'A' && *p <= 'F') *p = (char)(*p - 'A' + 'a');
    m.chunk = ctx->cfg->import_chunk > 0 ? (size_t)ctx->cfg->import_chunk : 5000;
    m.errors = json_array();
    m.evs = calloc(m.chunk, sizeof *m.evs);
    m.rows = calloc(m.chunk, sizeof *m.rows);
    wk_status st;
    if (!m.errors || !m.evs || !m.rows)
        st = wk_fail(res, WK_RETRY, "out of memory");
    else
        st = run(&m);
    if (st != WK_OK)
        LOG_KV(LOG_WARN, "usage import stopped", LF_S("import_id", m.id), LF_S("error", res->error),
               LF_I("committed_rows", m.done));
    csv_reader_free(m.rd);
    imp_cache_free(&m.cust);
    imp_cache_free(&m.met);
    json_decref(m.errors);
    free(m.evs);
    free(m.rows);
    return st;
}
