/* report.c — the report.render job: one reports row → one PDF file in
 * storage (prefix rep_ inside, wk_job_report_render outside).  See
 * handlers.h for the handler contract and db/migrations/0008_reports.sql for
 * the row.
 *
 * DESIGN — {report_id} (organization = the job's org).  One run:
 *   1. start: the row goes running (attempts + 1, started_at, error cleared)
 *      unless it already finished — then the job is a duplicate and succeeds
 *      with the row's outcome (nothing is rendered twice);
 *   2. template: the built-in default (templates/invoice.json) merged with
 *      organizations.template; an invalid override fails the report for good
 *      with the loader's message (it names the field);
 *   3. model, read from PostgreSQL as it is now:
 *        invoice  repo_inv_get (header, lines + sub-lines, late usage,
 *                 totals) + bill-to from the customer (name, email,
 *                 billing_address); the seller is the template's block when
 *                 the organization's template has one, else the organization
 *                 name;
 *        usage    the customer's metrics with usage in [from, to) or a charge
 *                 in its plan: totals with ml_usage_total (the invoices'
 *                 own rule), per-day and per-hour values from
 *                 usage_rollup_hour (sum / events / max by aggregation), and
 *                 for unique_count metrics distinct values from usage_events;
 *   4. render into memory (templates/pdf.h; deterministic: the same data
 *      gives the same bytes, so a retry writes the same file);
 *   5. write: any .<id>.pdf.*.tmp left by an earlier attempt is swept, the
 *      bytes go to .<id>.pdf.<pid>.tmp in <storage>/<org>/<yyyy>/<mm>/
 *      (yyyy/mm of the report's created_at: stable across retries), fsync,
 *      rename to <id>.pdf, fsync the directory (and the ones above it);
 *   6. the row goes succeeded with file_path, filename, size, sha256 and the
 *      invoice number printed — in one UPDATE that only moves an unfinished
 *      row, so a racing duplicate is harmless.
 * Progress: the job's (jq) and the row's, at most every REP_PROGRESS_US.
 * Failures: a missing report/invoice/customer, a bad template or a model the
 * renderer refuses → the row failed, job dead (WK_PERMANENT).  Storage I/O
 * and database errors → retried; on the last attempt the row is marked
 * failed too.  PostgreSQL down → wk_fail_db (waits, spends no attempt).
 * A kill -9 at any point leaves at most a temp file, swept by the retry;
 * the visible <id>.pdf only ever appears whole (rename).
 *
 * Test knob (documented here, not for production): ML_TEST_REPORT_SLOW_MS=N
 * makes step 5 write half of the temp file, fsync it and sleep N ms (with
 * progress) before writing the rest, so a test can kill -9 the worker while
 * a partial temp file exists.
 */
#include "fmacros.h"
#include "handlers.h"
#include "log.h"
#include "pdf.h"
#include "repo_invoices.h"
#include "ts.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REP_PROGRESS_US 300000
#define DAY_US          86400000000LL
#define HOUR_US         3600000000LL

typedef struct rep {
    wk_ctx *ctx;
    wk_result *res;
    char id[40];
    char org[24];
    char kind[16];
    char invoice_id[40];
    char customer_id[24];
    int64_t from_us, to_us, created_us;
    int64_t last_progress_us;
    int span_lo, span_hi; /* the renderer's progress maps into [lo, hi] */
    /* strings the model borrows, freed at the end */
    char **pool;
    size_t npool, cappool;
} rep;

/* ---- small helpers ------------------------------------------------------ */

/* Keeps s alive until rep_free; NULL if out of memory (or s NULL). */
static const char *keep(rep *m, char *s) {
    if (!s) return NULL;
    if (m->npool == m->cappool) {
        size_t cap = m->cappool ? m->cappool * 2 : 64;
        char **p = realloc(m->pool, cap * sizeof *p);
        if (!p) {
            free(s);
            return NULL;
        }
        m->pool = p;
        m->cappool = cap;
    }
    m->pool[m->npool++] = s;
    return s;
}

/* A decimal text without trailing fractional zeros ("1.500" → "1.5",
 * "2.000" → "2"); NULL stays NULL. */
static const char *dtrim(rep *m, const char *s) {
    if (!s) return NULL;
    if (!strchr(s, '.')) return s;
    char *c = strdup(s);
    if (!c) return s;
    size_t n = strlen(c);
    while (n && c[n - 1] == '0') c[--n] = '\0';
    if (n && c[n - 1] == '.') c[--n] = '\0';
    return keep(m, c) ? c : s;
}

static const char *jstr(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

/* "YYYY-MM-DD" of t µs into out[11]. */
static void day_of(int64_t t, char out[11]) {
    char b[TS_FMT_MAX];
    if (ts_format(t, b, sizeof b) < 10) b[0] = '\0';
    snprintf(out, 11, "%.10s", b);
}

/* The date of an RFC 3339 text (minus 1 µs when last_day: the last day of
 * an exclusive end), kept in the pool; NULL if s is NULL or unparsable. */
static const char *date_of(rep *m, const char *s, bool last_day) {
    int64_t t;
    if (!s || ts_parse_date_or_time(s, strlen(s), &t) != 0) return NULL;
    char *d = malloc(11);
    if (!d) return NULL;
    day_of(last_day ? t - 1 : t, d);
    return keep(m, d);
}

static void rep_free(rep *m) {
    for (size_t i = 0; i < m->npool; i++) free(m->pool[i]);
    free(m->pool);
}

/* Best effort: progress of the job and of the row. */
static void progress(rep *m, int pct, const char *msg, bool force) {
    int64_t now = ts_now();
    if (!force && now - m->last_progress_us < REP_PROGRESS_US) return;
    m->last_progress_us = now;
    char p[16];
    snprintf(p, sizeof p, "%d", pct);
    db_err e;
    if (DB_CMD(m->ctx->db, &e,
               "UPDATE reports SET progress = greatest(progress, $3::int) WHERE id = $1::uuid "
               "AND org_id = $2 AND status = 'running'",
               m->id, m->org, p))
        LOG_KV(LOG_WARN, "cannot record report progress", LF_S("report_id", m->id),
               LF_S("error", e.msg));
    m->ctx->progress(m->ctx, pct, msg);
}

static void on_render_progress(void *arg, size_t done, size_t total) {
    rep *m = arg;
    int pct = m->span_lo;
    if (total)
        pct += (int)((long long)(m->span_hi - m->span_lo) * (long long)done / (long long)total);
    progress(m, pct, "rendering", false);
}

/* The row failed for good (or on the last attempt): best effort. */
static void mark_failed(rep *m, const char *error) {
    db_err e;
    if (DB_CMD(m->ctx->db, &e,
               "UPDATE reports SET status = 'failed', error = $3, finished_at = now() "
               "WHERE id = $1::uuid AND org_id = $2 AND status IN ('queued', 'running')",
               m->id, m->org, error))
        LOG_KV(LOG_WARN, "cannot mark a report failed", LF_S("report_id", m->id),
               LF_S("error", e.msg));
}

static wk_status permanent(rep *m, const char *fmt, const char *arg) {
    wk_fail(m->res, WK_PERMANENT, fmt, arg);
    mark_failed(m, m->res->error);
    return WK_PERMANENT;
}

/* A retryable failure (res already filled): the last attempt fails the row
 * (unless PostgreSQL is down: the loop waits for it, spending nothing). */
static wk_status retry(rep *m, wk_status st) {
    if (st == WK_RETRY && m->ctx->last_attempt && !m->res->unavailable)
        mark_failed(m, m->res->error);
    return st;
}

/* ---- 1. start ------------------------------------------------------------- */

/* WK_OK with *go: render; WK_OK without: already finished (res set). */
static wk_status start(rep *m, bool *go) {
    *go = false;
    db_err e;
    PGresult *r = DB_EXEC(
        m->ctx->db, &e,
        "UPDATE reports SET status = 'running', attempts = attempts + 1, started_at = now(), "
        "  error = NULL WHERE id = $1::uuid AND org_id = $2 AND status IN ('queued', 'running') "
        "RETURNING kind, coalesce(invoice_id::text, ''), coalesce(customer_id::text, ''), "
        "  coalesce((extract(epoch FROM period_from) * 1000000)::bigint, 0), "
        "  coalesce((extract(epoch FROM period_to) * 1000000)::bigint, 0), "
        "  (extract(epoch FROM created_at) * 1000000)::bigint",
        m->id, m->org);
    if (!r) return wk_fail_db(m->res, &e, "start report");
    if (PQntuples(r) == 1) {
        snprintf(m->kind, sizeof m->kind, "%s", PQgetvalue(r, 0, 0));
        snprintf(m->invoice_id, sizeof m->invoice_id, "%s", PQgetvalue(r, 0, 1));
        snprintf(m->customer_id, sizeof m->customer_id, "%s", PQgetvalue(r, 0, 2));
        m->from_us = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        m->to_us = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
        m->created_us = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
        PQclear(r);
        *go = true;
        return WK_OK;
    }
    PQclear(r);
    r = DB_EXEC(m->ctx->db, &e,
                "SELECT status, coalesce(error, '') FROM reports WHERE id = $1::uuid "
                "AND org_id = $2",
                m->id, m->org);
    if (!r) return wk_fail_db(m->res, &e, "read report");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return wk_fail(m->res, WK_PERMANENT, "no report %s in organization %s", m->id, m->org);
    }
    /* a duplicate delivery of a finished report: its outcome, nothing more */
    wk_status st = wk_ok_json(m->res, json_pack("{s:s, s:s, s:s}", "report_id", m->id, "status",
                                                PQgetvalue(r, 0, 0), "error", PQgetvalue(r, 0, 1)));
    PQclear(r);
    return st;
}

/* The process's renderer: a worker process renders on its one job-loop
 * thread, so one renderer (libharu's handle, DejaVu Sans parsed once) serves
 * every report it renders.  NULL only when out of memory (the job is then
 * retried). */
static pdf_renderer *renderer(void) {
    static pdf_renderer *r;
    if (!r) r = pdf_renderer_new();
    return r;
}

/* ---- 2. template ------------------------------------------------------------ */

static wk_status load_template(rep *m, pdf_template **t, bool *own_seller, char *org_name,
                               size_t cap) {
    db_err e;
    PGresult *r = DB_EXEC(m->ctx->db, &e,
                          "SELECT name, template::text, coalesce(template ? 'seller', false) "
                          "FROM organizations WHERE id = $1",
                          m->org);
    if (!r) return wk_fail_db(m->res, &e, "read organization");
    if (PQntuples(r) != 1) {
        PQclear(r);
        return permanent(m, "organization %s is gone", m->org);
    }
    snprintf(org_name, cap, "%s", PQgetvalue(r, 0, 0));
    *own_seller = PQgetvalue(r, 0, 2)[0] == 't';
    const char *ovr = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
    size_t dlen = 0;
    const char *def = pdf_template_default(&dlen);
    char err[400];
    int rc = pdf_template_load(def, dlen, ovr, ovr ? strlen(ovr) : 0, t, err, sizeof err);
    PQclear(r);
    if (rc != 0) return permanent(m, "template: %s", err);
    return WK_OK;
}

/* ---- 3a. the invoice model ------------------------------------------------- */

/* "0.200000" → "20", "0.075" → "7.5" (the rate in percent, trimmed);
 * false if rate is not a plain decimal. */
static bool percent_text(const char *rate, char *out, size_t cap) {
    const char *dot = strchr(rate, '.');
    size_t il = dot ? (size_t)(dot - rate) : strlen(rate);
    const char *frac = dot ? dot + 1 : "";
    size_t fl = strlen(frac);
    if (il == 0 || il > 30 || fl > 30 || strspn(rate, "0123456789") != il ||
        strspn(frac, "0123456789") != fl)
        return false;
    char f2[3] = {fl > 0 ? frac[0] : '0', fl > 1 ? frac[1] : '0', '\0'};
    char d[96];
    snprintf(d, sizeof d, "%.*s%s.%s", (int)il, rate, f2, fl > 2 ? frac + 2 : "");
    size_t k = strlen(d);
    while (d[k - 1] == '0') d[--k] = '\0';
    if (d[k - 1] == '.') d[--k] = '\0';
    const char *p = d;
    while (p[0] == '0' && p[1] && p[1] != '.') p++;
    snprintf(out, cap, "%s", p);
    return true;
}

static wk_status render_invoice(rep *m, const pdf_template *t, bool own_seller,
                                const char *org_name, buf *out, char *number, size_t ncap,
                                char *filename, size_t fcap) {
    db_err e;
    json_t *inv = NULL;
    int rc = repo_inv_get(m->ctx->db, &e, atoll(m->org), m->invoice_id, &inv);
    if (rc == REPO_NOT_FOUND) return permanent(m, "invoice %s is gone", m->invoice_id);
    if (rc != REPO_OK) return wk_fail_db(m->res, &e, "read invoice");
    PGresult *r =
        DB_EXEC(m->ctx->db, &e,
                "SELECT c.name, c.email, coalesce(array_to_json(array_remove(ARRAY["
                "  nullif(btrim(c.billing_address ->> 'line1'), ''), "
                "  nullif(btrim(c.billing_address ->> 'line2'), ''), "
                "  nullif(btrim(concat_ws(' ', c.billing_address ->> 'postal_code', "
                "                         c.billing_address ->> 'city')), ''), "
                "  nullif(btrim(c.billing_address ->> 'region'), ''), "
                "  nullif(btrim(c.billing_address ->> 'country'), '')], NULL))::text, '[]') "
                "FROM invoices i JOIN customers c ON c.org_id = i.org_id AND c.id = i.customer_id "
                "WHERE i.id = $1::uuid AND i.org_id = $2",
                m->invoice_id, m->org);
    if (!r) {
        json_decref(inv);
        return wk_fail_db(m->res, &e, "read customer");
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        json_decref(inv);
        return permanent(m, "the customer of invoice %s is gone", m->invoice_id);
    }
    const char *cname = keep(m, strdup(PQgetvalue(r, 0, 0)));
    const char *cemail = PQgetisnull(r, 0, 1) ? NULL : keep(m, strdup(PQgetvalue(r, 0, 1)));
    json_t *addr = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
    PQclear(r);
    progress(m, 20, "invoice loaded", true);

    json_t *lines = json_object_get(inv, "lines"), *late = json_object_get(inv, "late_usage");
    size_t nl = json_array_size(lines), nlate = json_array_size(late), nad = json_array_size(addr);
    pdf_line *pl = calloc(nl ? nl : 1, sizeof *pl);
    pdf_late_usage *plate = calloc(nlate ? nlate : 1, sizeof *plate);
    const char **padr = calloc(nad ? nad : 1, sizeof *padr);
    pdf_sub_line **subs = calloc(nl ? nl : 1, sizeof *subs);
    wk_status st = WK_OK;
    if (!pl || !plate || !padr || !subs || !cname) {
        st = wk_fail(m->res, WK_RETRY, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nad; i++) padr[i] = json_string_value(json_array_get(addr, i));
    for (size_t i = 0; i < nl; i++) {
        json_t *l = json_array_get(lines, i);
        const char *q =
            jstr(l, "billable_quantity") ? jstr(l, "billable_quantity") : jstr(l, "quantity");
        pl[i] = (pdf_line){.kind = jstr(l, "kind"),
                           .description = jstr(l, "description"),
                           .quantity = dtrim(m, q),
                           .unit_price = dtrim(m, jstr(l, "unit_price")),
                           .amount = jstr(l, "amount")};
        json_t *sl = json_object_get(l, "sub_lines");
        size_t ns = json_array_size(sl);
        if (!ns) continue;
        subs[i] = calloc(ns, sizeof **subs);
        if (!subs[i]) {
            st = wk_fail(m->res, WK_RETRY, "out of memory");
            goto out;
        }
        for (size_t k = 0; k < ns; k++) {
            json_t *s = json_array_get(sl, k);
            subs[i][k] = (pdf_sub_line){.description = jstr(s, "description"),
                                        .quantity = dtrim(m, jstr(s, "quantity")),
                                        .unit_price = dtrim(m, jstr(s, "unit_price")),
                                        .amount = dtrim(m, jstr(s, "amount"))};
        }
        pl[i].sub_lines = subs[i];
        pl[i].n_sub_lines = ns;
    }
    for (size_t i = 0; i < nlate; i++) {
        json_t *l = json_array_get(late, i);
        plate[i] = (pdf_late_usage){.metric = jstr(l, "metric"),
                                    .billed = jstr(l, "billed_quantity"),
                                    .current = jstr(l, "current_quantity"),
                                    .late = jstr(l, "late_quantity")};
    }
    const char *rate = jstr(inv, "tax_rate"), *tax = jstr(inv, "tax");
    char pct[48], tax_label[64];
    bool no_tax = rate && tax && !strcmp(dtrim(m, rate), "0") && !strcmp(dtrim(m, tax), "0");
    if (rate && percent_text(rate, pct, sizeof pct))
        snprintf(tax_label, sizeof tax_label, "Tax %s%%", pct);
    else
        snprintf(tax_label, sizeof tax_label, "Tax");
    pdf_party seller = {.name = org_name};
    pdf_invoice pi = {
        .number = jstr(inv, "number"),
        .status = jstr(inv, "status"),
        .currency = jstr(inv, "currency"),
        .issue_date = date_of(m, jstr(inv, "issued_at"), false),
        .due_date = NULL,
        .period_start = date_of(m, jstr(inv, "period_start"), false),
        .period_end = date_of(m, jstr(inv, "period_end"), true),
        .seller = own_seller ? NULL : &seller,
        .bill_to = {.name = cname, .address = padr, .n_address = nad, .email = cemail},
        .lines = pl,
        .n_lines = nl,
        .subtotal = jstr(inv, "subtotal"),
        .tax_label = tax_label,
        .tax = no_tax ? NULL : tax,
        .total = jstr(inv, "total"),
        .late_usage = plate,
        .n_late_usage = nlate,
        .notes = jstr(inv, "notes"),
        .progress = on_render_progress,
        .progress_arg = m,
    };
    snprintf(number, ncap, "%s", pi.number ? pi.number : "");
    if (pi.number)
        snprintf(filename, fcap, "invoice-%s.pdf", pi.number);
    else
        snprintf(filename, fcap, "invoice-draft-%.8s.pdf", m->invoice_id);
    m->span_lo = 25;
    m->span_hi = 85;
    char err[400];
    if (!renderer())
        st = wk_fail(m->res, WK_RETRY, "out of memory");
    else if (pdf_renderer_invoice(renderer(), t, &pi, out, err, sizeof err) != 0)
        st = permanent(m, "render: %s", err);
    else if (out->oom)
        st = wk_fail(m->res, WK_RETRY, "out of memory");
out:
    if (subs)
        for (size_t i = 0; i < nl; i++) free(subs[i]);
    free(subs);
    free(pl);
    free(plate);
    free(padr);
    json_decref(addr);
    json_decref(inv);
    return st;
}

/* ---- 3b. the usage model ---------------------------------------------------- */

typedef struct rep_metric {
    long long id;
    pdf_metric pm;
    const char **daily, **hourly;
} rep_metric;

static int metric_index(const rep_metric *ms, size_t n, long long id) {
    for (size_t i = 0; i < n; i++)
        if (ms[i].id == id) return (int)i;
    return -1;
}

/* Fills values[metric][idx] from rows (metric_id, idx, value text) of r,
 * which stays alive (the model points into it). */
static void fill_series(PGresult *r, rep_metric *ms, size_t nm, bool hourly, size_t n) {
    for (int i = 0; i < PQntuples(r); i++) {
        int k = metric_index(ms, nm, atoll(PQgetvalue(r, i, 0)));
        long idx = atol(PQgetvalue(r, i, 1));
        if (k < 0 || idx < 0 || (size_t)idx >= n) continue;
        (hourly ? ms[k].hourly : ms[k].daily)[idx] = PQgetvalue(r, i, 2);
    }
}

static wk_status render_usage(rep *m, const pdf_template *t, buf *out, char *filename,
                              size_t fcap) {
    db_err e;
    wk_status st = WK_OK;
    PGresult *cust = NULL, *mets = NULL, *hours = NULL, *days = NULL;
    rep_metric *ms = NULL;
    size_t nm_alloc = 0;
    char *hour_labels = NULL, *day_labels = NULL;
    const char **hl = NULL, **dl = NULL;
    pdf_metric *pm = NULL;
    char from[TS_FMT_MAX], to[TS_FMT_MAX], day0s[24];
    ts_format(m->from_us, from, sizeof from);
    ts_format(m->to_us, to, sizeof to);
    int64_t day0 = m->from_us - ((m->from_us % DAY_US) + DAY_US) % DAY_US;
    int64_t dayn = (m->to_us - 1) - (((m->to_us - 1) % DAY_US) + DAY_US) % DAY_US;
    size_t n_days = (size_t)((dayn - day0) / DAY_US + 1);
    size_t n_hours = (size_t)((m->to_us - m->from_us) / HOUR_US);
    snprintf(day0s, sizeof day0s, "%lld", (long long)(day0 / 1000000));

    cust = DB_EXEC(m->ctx->db, &e,
                   "SELECT name, external_id FROM customers WHERE org_id = $1 AND id = $2", m->org,
                   m->customer_id);
    if (!cust) return wk_fail_db(m->res, &e, "read customer");
    if (PQntuples(cust) != 1) {
        PQclear(cust);
        return permanent(m, "customer %s is gone", m->customer_id);
    }
    mets = DB_EXEC(
        m->ctx->db, &e,
        "SELECT m.id, m.code, m.name, m.unit, "
        "       trim_scale(ml_usage_total($1, $2, m.id, $3::timestamptz, $4::timestamptz))::text "
        "  FROM metrics m WHERE m.org_id = $1 AND ("
        "   m.id IN (SELECT h.metric_id FROM usage_rollup_hour h WHERE h.org_id = $1 "
        "             AND h.customer_id = $2 AND h.bucket >= $3::timestamptz "
        "             AND h.bucket < $4::timestamptz) "
        "   OR m.id IN (SELECT pc.metric_id FROM plan_charges pc JOIN customers c "
        "                 ON c.org_id = pc.org_id AND c.plan_id = pc.plan_id "
        "                WHERE c.org_id = $1 AND c.id = $2)) "
        " ORDER BY m.code",
        m->org, m->customer_id, from, to);
    if (!mets) {
        st = wk_fail_db(m->res, &e, "read metrics");
        goto out;
    }
    hours = DB_EXEC(
        m->ctx->db, &e,
        "SELECT h.metric_id, ((extract(epoch FROM h.bucket) - extract(epoch FROM "
        "         $3::timestamptz)) / 3600)::bigint, "
        "       trim_scale(CASE m.aggregation WHEN 'sum' THEN h.quantity "
        "         WHEN 'count' THEN h.events::numeric ELSE h.max_quantity END)::text "
        "  FROM usage_rollup_hour h JOIN metrics m ON m.org_id = h.org_id AND m.id = h.metric_id "
        " WHERE h.org_id = $1 AND h.customer_id = $2 AND h.bucket >= $3::timestamptz "
        "   AND h.bucket < $4::timestamptz AND m.aggregation <> 'unique_count' "
        "UNION ALL "
        "SELECT e.metric_id, ((extract(epoch FROM date_bin('1 hour', e.occurred_at, "
        "         timestamptz 'epoch')) - extract(epoch FROM $3::timestamptz)) / 3600)::bigint, "
        "       count(DISTINCT e.properties ->> m.unique_property)::text "
        "  FROM usage_events e JOIN metrics m ON m.org_id = e.org_id AND m.id = e.metric_id "
        " WHERE e.org_id = $1 AND e.customer_id = $2 AND e.occurred_at >= $3::timestamptz "
        "   AND e.occurred_at < $4::timestamptz AND m.aggregation = 'unique_count' "
        "   AND e.properties ->> m.unique_property IS NOT NULL "
        " GROUP BY 1, 2",
        m->org, m->customer_id, from, to);
    if (!hours) {
        st = wk_fail_db(m->res, &e, "read hourly usage");
        goto out;
    }
    days = DB_EXEC(
        m->ctx->db, &e,
        "SELECT h.metric_id, ((extract(epoch FROM date_bin('1 day', h.bucket, "
        "         timestamptz 'epoch')) - $5::bigint) / 86400)::bigint, "
        "       trim_scale(CASE min(m.aggregation) WHEN 'sum' THEN sum(h.quantity) "
        "         WHEN 'count' THEN sum(h.events)::numeric ELSE max(h.max_quantity) END)::text "
        "  FROM usage_rollup_hour h JOIN metrics m ON m.org_id = h.org_id AND m.id = h.metric_id "
        " WHERE h.org_id = $1 AND h.customer_id = $2 AND h.bucket >= $3::timestamptz "
        "   AND h.bucket < $4::timestamptz AND m.aggregation <> 'unique_count' "
        " GROUP BY 1, 2 "
        "UNION ALL "
        "SELECT e.metric_id, ((extract(epoch FROM date_bin('1 day', e.occurred_at, "
        "         timestamptz 'epoch')) - $5::bigint) / 86400)::bigint, "
        "       count(DISTINCT e.properties ->> m.unique_property)::text "
        "  FROM usage_events e JOIN metrics m ON m.org_id = e.org_id AND m.id = e.metric_id "
        " WHERE e.org_id = $1 AND e.customer_id = $2 AND e.occurred_at >= $3::timestamptz "
        "   AND e.occurred_at < $4::timestamptz AND m.aggregation = 'unique_count' "
        "   AND e.properties ->> m.unique_property IS NOT NULL "
        " GROUP BY 1, 2",
        m->org, m->customer_id, from, to, day0s);
    if (!days) {
        st = wk_fail_db(m->res, &e, "read daily usage");
        goto out;
    }
    progress(m, 20, "usage loaded", true);

    size_t nm = (size_t)PQntuples(mets);
    ms = calloc(nm ? nm : 1, sizeof *ms);
    nm_alloc = ms ? nm : 0;
    pm = calloc(nm ? nm : 1, sizeof *pm);
    hour_labels = malloc(n_hours * TS_FMT_MAX + 1);
    day_labels = malloc(n_days * 11 + 1);
    hl = calloc(n_hours + 1, sizeof *hl);
    dl = calloc(n_days + 1, sizeof *dl);
    if (!ms || !pm || !hour_labels || !day_labels || !hl || !dl) {
        st = wk_fail(m->res, WK_RETRY, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_hours; i++) {
        hl[i] = hour_labels + i * TS_FMT_MAX;
        ts_format(m->from_us + (int64_t)i * HOUR_US, hour_labels + i * TS_FMT_MAX, TS_FMT_MAX);
    }
    for (size_t i = 0; i < n_days; i++) {
        dl[i] = day_labels + i * 11;
        day_of(day0 + (int64_t)i * DAY_US, day_labels + i * 11);
    }
    for (size_t i = 0; i < nm; i++) {
        ms[i].id = atoll(PQgetvalue(mets, (int)i, 0));
        ms[i].daily = calloc(n_days + 1, sizeof *ms[i].daily);
        ms[i].hourly = calloc(n_hours + 1, sizeof *ms[i].hourly);
        if (!ms[i].daily || !ms[i].hourly) {
            st = wk_fail(m->res, WK_RETRY, "out of memory");
            goto out;
        }
    }
    fill_series(hours, ms, nm, true, n_hours);
    fill_series(days, ms, nm, false, n_days);
    for (size_t i = 0; i < nm; i++)
        pm[i] =
            (pdf_metric){.code = PQgetvalue(mets, (int)i, 1),
                         .name = PQgetvalue(mets, (int)i, 2),
                         .unit = PQgetisnull(mets, (int)i, 3) ? NULL : PQgetvalue(mets, (int)i, 3),
                         .total = PQgetvalue(mets, (int)i, 4),
                         .daily = ms[i].daily,
                         .hourly = ms[i].hourly};
    char d_from[11], d_to[11], d_gen[11];
    day_of(m->from_us, d_from);
    day_of(m->to_us - 1, d_to);
    day_of(m->created_us, d_gen); /* the request's date: the same on every retry */
    pdf_usage u = {.customer_name = PQgetvalue(cust, 0, 0),
                   .customer_id = PQgetvalue(cust, 0, 1),
                   .from = d_from,
                   .to = d_to,
                   .days = dl,
                   .n_days = n_days,
                   .hours = hl,
                   .n_hours = n_hours,
                   .metrics = pm,
                   .n_metrics = nm,
                   .generated_on = d_gen,
                   .progress = on_render_progress,
                   .progress_arg = m};
    snprintf(filename, fcap, "usage-%s-%s.pdf", d_from, d_to);
    m->span_lo = 25;
    m->span_hi = 85;
    char err[400];
    if (!renderer())
        st = wk_fail(m->res, WK_RETRY, "out of memory");
    else if (pdf_renderer_usage(renderer(), t, &u, out, err, sizeof err) != 0)
        st = permanent(m, "render: %s", err);
    else if (out->oom)
        st = wk_fail(m->res, WK_RETRY, "out of memory");
out:
    for (size_t i = 0; ms && i < nm_alloc; i++) {
        free(ms[i].daily);
        free(ms[i].hourly);
    }
    free(ms);
    free(pm);
    free(hour_labels);
    free(day_labels);
    free(hl);
    free(dl);
    PQclear(days);
    PQclear(hours);
    PQclear(mets);
    PQclear(cust);
    return st;
}

/* ---- 5. the file -------------------------------------------------------------- */

static int fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* mkdir -p of root/a/b/c (root must exist or be creatable), each level
 * fsynced into its parent when it was made. */
static int make_dirs(const char *root, const char *rel, char *err, size_t errlen) {
    char path[1024], parent[1024];
    if (mkdir(root, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %.300s: %s", root, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s", root);
    const char *p = rel;
    while (*p) {
        size_t n = strcspn(p, "/");
        snprintf(parent, sizeof parent, "%s", path);
        size_t l = strlen(path);
        snprintf(path + l, sizeof path - l, "/%.*s", (int)n, p);
        if (mkdir(path, 0750) == 0) {
            if (fsync_dir(parent) != 0) {
                snprintf(err, errlen, "fsync %.300s: %s", parent, strerror(errno));
                return -1;
            }
        } else if (errno != EEXIST) {
            snprintf(err, errlen, "mkdir %.300s: %s", path, strerror(errno));
            return -1;
        }
        p += n;
        if (*p == '/') p++;
    }
    return 0;
}

/* Removes the temp files of report id in dir (earlier attempts). */
static void sweep_tmp(const char *dir, const char *id) {
    DIR *d = opendir(dir);
    if (!d) return;
    char prefix[64];
    snprintf(prefix, sizeof prefix, ".%s.pdf.", id);
    size_t pl = strlen(prefix);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n > pl + 4 && !strncmp(de->d_name, prefix, pl) && !strcmp(de->d_name + n - 4, ".tmp")) {
            char p[1024];
            int k = snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            if (k < 0 || (size_t)k >= sizeof p) continue;
            if (unlink(p) == 0)
                LOG_KV(LOG_INFO, "removed a stale report temp file", LF_S("path", p));
        }
    }
    closedir(d);
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes pdf to <storage>/<rel> through a temp file; 0 or -1 (err). */
static int store(rep *m, const buf *pdf, const char *rel_dir, const char *rel, char *err,
                 size_t errlen) {
    const char *root = m->ctx->cfg->storage_dir;
    char dir[1024], tmp[1200], final[1200];
    if (make_dirs(root, rel_dir, err, errlen) != 0) return -1;
    snprintf(dir, sizeof dir, "%s/%s", root, rel_dir);
    snprintf(final, sizeof final, "%s/%s", root, rel);
    snprintf(tmp, sizeof tmp, "%s/.%s.pdf.%ld.tmp", dir, m->id, (long)getpid());
    sweep_tmp(dir, m->id);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "open %.300s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t first = pdf->len;
    const char *slow = getenv("ML_TEST_REPORT_SLOW_MS");
    long slow_ms = slow ? atol(slow) : 0;
    if (slow_ms > 0) first = pdf->len / 2;
    int rc = write_all(fd, pdf->p, first);
    if (rc == 0 && slow_ms > 0) { /* test knob: see the top of this file */
        rc = fsync(fd);
        for (long waited = 0; rc == 0 && waited < slow_ms; waited += 100) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
            progress(m, 88, "writing (slowed down for a test)", false);
        }
        if (rc == 0) rc = write_all(fd, pdf->p + first, pdf->len - first);
    }
    if (rc == 0) rc = fsync(fd);
    int e = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        snprintf(err, errlen, "write %.300s: %s", tmp, strerror(e));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, final) != 0) {
        snprintf(err, errlen, "rename %.300s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (fsync_dir(dir) != 0) {
        snprintf(err, errlen, "fsync %.300s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the handler ------------------------------------------------------------ */

static void safe_name(char *s) {
    for (; *s; s++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", *s))
            *s = '_';
}

wk_status wk_job_report_render(wk_ctx *ctx, wk_result *res) {
    static const char *const allowed[] = {"report_id", NULL};
    if (!wk_payload_only(ctx->payload, allowed, res)) return WK_PERMANENT;
    const char *id = json_string_value(json_object_get(ctx->payload, "report_id"));
    if (!wk_is_uuid(id)) return wk_fail(res, WK_PERMANENT, "payload: report_id must be a UUID");
    if (ctx->job->org <= 0) return wk_fail(res, WK_PERMANENT, "job has no organization");

    rep m = {.ctx = ctx, .res = res};
    snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.org, sizeof m.org, "%lld", ctx->job->org);
    bool go = false;
    wk_status st = start(&m, &go);
    if (st != WK_OK || !go) return retry(&m, st);
    progress(&m, 5, "started", true);

    pdf_template *t = NULL;
    bool own_seller = false;
    char org_name[256], number[64] = "", filename[128] = "", err[512];
    buf pdf;
    buf_init(&pdf);
    st = load_template(&m, &t, &own_seller, org_name, sizeof org_name);
    if (st == WK_OK) {
        if (!strcmp(m.kind, "invoice"))
            st = render_invoice(&m, t, own_seller, org_name, &pdf, number, sizeof number, filename,
                                sizeof filename);
        else
            st = render_usage(&m, t, &pdf, filename, sizeof filename);
    }
    pdf_template_free(t);
    if (st != WK_OK) goto out;
    progress(&m, 88, "writing", true);

    /* <org>/<yyyy>/<mm>/<id>.pdf, the month of the request */
    char day[11], rel_dir[64], rel[128];
    day_of(m.created_us, day);
    snprintf(rel_dir, sizeof rel_dir, "%s/%.4s/%.2s", m.org, day, day + 5);
    snprintf(rel, sizeof rel, "%s/%s.pdf", rel_dir, m.id);
    if (store(&m, &pdf, rel_dir, rel, err, sizeof err) != 0) {
        LOG_KV(LOG_WARN, "cannot store a report", LF_S("report_id", m.id), LF_S("error", err));
        st = wk_fail(res, WK_RETRY, "storage: %s", err);
        goto out;
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[crypto_hash_sha256_BYTES * 2 + 1], size[24];
    crypto_hash_sha256(h, (const unsigned char *)pdf.p, pdf.len);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(size, sizeof size, "%zu", pdf.len);
    safe_name(filename);
    db_err e;
    if (DB_CMD(ctx->db, &e,
               "UPDATE reports SET status = 'succeeded', progress = 100, file_path = $3, "
               "  filename = $4, size_bytes = $5::bigint, sha256 = $6, invoice_number = $7, "
               "  error = NULL, finished_at = now() "
               "WHERE id = $1::uuid AND org_id = $2 AND status IN ('queued', 'running')",
               m.id, m.org, rel, filename, size, hex, number[0] ? number : NULL)) {
        st = wk_fail_db(res, &e, "mark report succeeded");
        goto out;
    }
    ctx->progress(ctx, 100, "done");
    st = wk_ok_json(res,
                    json_pack("{s:s, s:s, s:s, s:I, s:s}", "report_id", m.id, "status", "succeeded",
                              "file", rel, "size_bytes", (json_int_t)pdf.len, "sha256", hex));
out:
    buf_free(&pdf);
    rep_free(&m);
    return retry(&m, st);
}
