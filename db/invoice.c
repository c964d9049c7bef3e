/* invoice.c — invoice generation and billing-run bookkeeping.  See invoice.h.
 *
 * The content of an invoice is built as a JSON array of line objects (each
 * with its sub_lines), decimals as strings.  The same text is hashed (the
 * content SHA-256 that makes a regeneration with the same result a no-op) and
 * handed to PostgreSQL, which writes every line and sub-line in one statement
 * (jsonb_to_recordset), so an invoice costs a handful of round trips however
 * many lines it has.
 */
#include "fmacros.h"
#include "invoice.h"
#include "jx.h"
#include "price.h"
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>

#define MAX_CHARGES 1000

const char *inv_outcome_name(inv_outcome o) {
    switch (o) {
    case INV_CREATED:
        return "created";
    case INV_UPDATED:
        return "updated";
    case INV_UNCHANGED:
        return "unchanged";
    case INV_LOCKED:
        return "locked";
    }
    return "?";
}

static int fail_input(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_input(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return INV_EINPUT;
}

static int oom(db_err *e) {
    memset(e, 0, sizeof *e);
    snprintf(e->msg, sizeof e->msg, "out of memory");
    return INV_EDB;
}

/* "12.500" -> "12.5", "3.000" -> "3"; leaves integers alone. */
static void trim_zeros(char *s) {
    char *dot = strchr(s, '.');
    if (!dot) return;
    char *end = s + strlen(s);
    while (end > dot + 1 && end[-1] == '0') *--end = '\0';
    if (end == dot + 1) *dot = '\0';
}

static json_t *jdec(const dec_t *d, bool trim) {
    char b[DEC_FMT_MAX];
    if (dec_format(d, b, sizeof b) < 0) return NULL;
    if (trim) trim_zeros(b);
    return json_string(b);
}

static json_t *jtext(const char *s) { return s ? json_string(s) : json_null(); }

static const char *col(const PGresult *r, int row, int c) {
    return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

/* Adds member k = v to o (v stolen); false when v is NULL (out of memory). */
static bool put(json_t *o, const char *k, json_t *v) {
    return v && json_object_set_new(o, k, v) == 0;
}

/* ---- the generation state ------------------------------------------------ */

typedef struct gen {
    db *d;
    db_err *e;
    const inv_gen *in;
    char *err;
    size_t errlen;
    char org[24], cust[24];
    int minor;
    char currency[4];
    char plan_id[24];
    char plan_name[256];
    char base_fee[64];
    char tax_rate[32];
    char existing_id[40]; /* "" = none */
    char existing_status[24];
    char existing_sha[72];
    char existing_total[64];
    json_t *lines;  /* the content */
    dec_t *amounts; /* rounded non-tax line amounts */
    size_t namounts, camounts;
    prc_plan_charge *pc; /* heap: ~11 KB */
    prc_result *pr;      /* heap: ~25 KB */
    PGresult *usage;     /* Q_USAGE: the period's usage per metric and day */
} gen;

static bool add_amount(gen *g, const dec_t *a) {
    if (g->namounts == g->camounts) {
        size_t n = g->camounts ? g->camounts * 2 : 16;
        dec_t *p = realloc(g->amounts, n * sizeof *p);
        if (!p) return false;
        g->amounts = p;
        g->camounts = n;
    }
    g->amounts[g->namounts++] = *a;
    return true;
}

/* A new line object with its position, kind and description. */
static json_t *line_new(gen *g, const char *kind, const char *desc) {
    json_t *l = json_object();
    if (!l) return NULL;
    if (!put(l, "position", json_integer((json_int_t)json_array_size(g->lines))) ||
        !put(l, "kind", json_string(kind)) || !put(l, "description", json_string(desc)) ||
        json_array_append_new(g->lines, l) != 0)
        return NULL;
    return l;
}

/* The pricing snapshot of a charge row (model, decimals, tiers) as an object. */
static json_t *pricing_json(const char *model, const char *unit_price, const char *included,
                            const char *package_size, const char *minimum, json_t *tiers) {
    json_t *p = json_object();
    if (!p) return NULL;
    if (!put(p, "model", json_string(model)) || !put(p, "unit_price", jtext(unit_price)) ||
        !put(p, "included_units", jtext(included)) ||
        !put(p, "package_size", jtext(package_size)) || !put(p, "minimum", jtext(minimum)) ||
        !put(p, "tiers", tiers ? json_incref(tiers) : json_null())) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static const char *jget(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

/* Loads a pricing snapshot (pricing_json) into g->pc. */
static int load_pricing(gen *g, const json_t *p, const char *what) {
    char perr[256];
    const json_t *tiers = json_object_get(p, "tiers");
    if (prc_charge_load(g->pc, jget(p, "model") ? jget(p, "model") : "", jget(p, "unit_price"),
                        jget(p, "included_units"), jget(p, "package_size"), jget(p, "minimum"),
                        json_is_null(tiers) ? NULL : tiers, perr, sizeof perr) != PRC_OK)
        return fail_input(g->err, g->errlen, "%s: %s", what, perr);
    return INV_OK;
}

/* T(q): what charge g->pc bills for q — rounded amount plus minimum true-up. */
static int charge_total(gen *g, const dec_t *q, dec_t *out, const char *what) {
    char perr[256];
    int rc = prc_charge(g->minor, g->pc, q, g->pr, perr, sizeof perr);
    if (rc != PRC_OK) return fail_input(g->err, g->errlen, "%s: %s", what, perr);
    if (dec_add(out, &g->pr->amount, &g->pr->true_up) != DEC_OK)
        return fail_input(g->err, g->errlen, "%s: amount overflows", what);
    return INV_OK;
}

/* ---- steps ---------------------------------------------------------------- */

#define Q_LOCK "SELECT pg_advisory_xact_lock(hashtextextended('invoice:' || $1 || ':' || $2, 0))"

#define Q_CUSTOMER                                                                                 \
    "SELECT c.plan_id, p.currency, p.base_fee::text, p.name, coalesce(c.tax_rate, "                \
    "o.tax_rate)::text,"                                                                           \
    "       c.currency, c.name "                                                                   \
    "  FROM customers c JOIN organizations o ON o.id = c.org_id "                                  \
    "  LEFT JOIN plans p ON p.org_id = c.org_id AND p.id = c.plan_id "                             \
    " WHERE c.org_id = $1 AND c.id = $2"

static int load_customer(gen *g) {
    PGresult *r = DB_EXECP(g->d, g->e, Q_CUSTOMER, g->org, g->cust);
    if (!r) return INV_EDB;
    int rc = INV_OK;
    if (PQntuples(r) != 1) {
        rc = fail_input(g->err, g->errlen, "customer %s does not exist", g->cust);
    } else if (PQgetisnull(r, 0, 0)) {
        rc = fail_input(g->err, g->errlen, "customer \"%s\" has no plan", PQgetvalue(r, 0, 6));
    } else {
        snprintf(g->plan_id, sizeof g->plan_id, "%s", PQgetvalue(r, 0, 0));
        snprintf(g->currency, sizeof g->currency, "%s", PQgetvalue(r, 0, 1));
        snprintf(g->base_fee, sizeof g->base_fee, "%s", PQgetvalue(r, 0, 2));
        snprintf(g->plan_name, sizeof g->plan_name, "%s", PQgetvalue(r, 0, 3));
        snprintf(g->tax_rate, sizeof g->tax_rate, "%s", PQgetvalue(r, 0, 4));
        const char *ccur = col(r, 0, 5);
        char perr[128];
        if (ccur && strcmp(ccur, g->currency))
            rc = fail_input(g->err, g->errlen,
                            "customer \"%s\" is billed in %s but its plan is priced in %s",
                            PQgetvalue(r, 0, 6), ccur, g->currency);
        else if (prc_minor_units(g->currency, &g->minor, perr, sizeof perr) != PRC_OK)
            rc = fail_input(g->err, g->errlen, "plan %s: %s", g->plan_name, perr);
    }
    PQclear(r);
    return rc;
}

#define Q_EXISTING                                                                                 \
    "SELECT id, status, coalesce(content_sha, ''), period_start = $3 AND period_end = $4,"         \
    "       total::text, coalesce(number, ''), period_start, period_end "                          \
    "  FROM invoices "                                                                             \
    " WHERE org_id = $1 AND customer_id = $2 AND status <> 'void' "                                \
    "   AND tstzrange(period_start, period_end) && tstzrange($3, $4) "                             \
    " ORDER BY period_start FOR UPDATE"

static int load_existing(gen *g) {
    PGresult *r =
        DB_EXECP(g->d, g->e, Q_EXISTING, g->org, g->cust, g->in->period_start, g->in->period_end);
    if (!r) return INV_EDB;
    int rc = INV_OK;
    g->existing_id[0] = '\0';
    for (int i = 0; i < PQntuples(r) && rc == INV_OK; i++) {
        if (strcmp(PQgetvalue(r, i, 3), "t")) {
            const char *num = PQgetvalue(r, i, 5);
            rc = fail_input(g->err, g->errlen,
                            "the period overlaps invoice %s (%s to %s, %s); void it first",
                            num[0] ? num : PQgetvalue(r, i, 0), PQgetvalue(r, i, 6),
                            PQgetvalue(r, i, 7), PQgetvalue(r, i, 1));
            break;
        }
        snprintf(g->existing_id, sizeof g->existing_id, "%s", PQgetvalue(r, i, 0));
        snprintf(g->existing_status, sizeof g->existing_status, "%s", PQgetvalue(r, i, 1));
        snprintf(g->existing_sha, sizeof g->existing_sha, "%s", PQgetvalue(r, i, 2));
        snprintf(g->existing_total, sizeof g->existing_total, "%s", PQgetvalue(r, i, 4));
    }
    PQclear(r);
    return rc;
}

/* The customer's usage in the period from the hourly rollup, in one index
 * scan: per metric and UTC day, and (day NULL) per metric for the period —
 * sum of quantities, number of events and largest quantity; the caller picks
 * the column of the metric's aggregation.  unique_count metrics are counted
 * from the raw events instead (Q_UNIQUE_DAYS, and ml_usage_total in
 * Q_CHARGES for the period). */
#define Q_USAGE                                                                                    \
    "SELECT metric_id, ((bucket AT TIME ZONE 'UTC')::date)::text AS day,"                          \
    "       trim_scale(sum(quantity))::text, sum(events)::text, "                                  \
    "trim_scale(max(max_quantity))::text "                                                         \
    "  FROM usage_rollup_hour "                                                                    \
    " WHERE org_id = $1 AND customer_id = $2 AND bucket >= $3 AND bucket < $4 "                    \
    " GROUP BY GROUPING SETS ((metric_id, 2), (metric_id)) ORDER BY 1, 2"

#define Q_UNIQUE_DAYS                                                                              \
    "SELECT e.metric_id, ((e.occurred_at AT TIME ZONE 'UTC')::date)::text,"                        \
    "       count(DISTINCT e.properties ->> m.unique_property)::text, NULL, NULL "                 \
    "  FROM usage_events e JOIN metrics m ON m.org_id = e.org_id AND m.id = e.metric_id "          \
    " WHERE e.org_id = $1 AND e.customer_id = $2 AND e.occurred_at >= $3 AND e.occurred_at < $4 "  \
    "   AND m.aggregation = 'unique_count' AND e.properties ->> m.unique_property IS NOT NULL "    \
    " GROUP BY 1, 2 ORDER BY 1, 2"

/* Column of a Q_USAGE row holding the value of an aggregation. */
static int agg_col(const char *agg) {
    return !strcmp(agg, "count") ? 3 : !strcmp(agg, "max") ? 4 : 2;
}

/* The day sub-lines of metric_id (a JSON array) from usage result u. */
static json_t *day_subs(const PGresult *u, const char *metric_id, int vcol) {
    json_t *a = json_array();
    if (!a || !u) return a;
    int n = PQntuples(u);
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(u, i, 1) || strcmp(PQgetvalue(u, i, 0), metric_id)) continue;
        json_t *s = json_object();
        if (!s || json_array_append_new(a, s) != 0 ||
            !put(s, "position", json_integer((json_int_t)json_array_size(a) - 1)) ||
            !put(s, "kind", json_string("day")) ||
            !put(s, "description", json_string(PQgetvalue(u, i, 1))) ||
            !put(s, "day", json_string(PQgetvalue(u, i, 1))) ||
            !put(s, "quantity", json_string(PQgetvalue(u, i, vcol)))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* The period total of metric_id in usage result u ("0" when none). */
static const char *period_total(const PGresult *u, const char *metric_id, int vcol) {
    int n = PQntuples(u);
    for (int i = 0; i < n; i++)
        if (PQgetisnull(u, i, 1) && !strcmp(PQgetvalue(u, i, 0), metric_id))
            return PQgetvalue(u, i, vcol);
    return "0";
}

/* The tier sub-lines of the last priced charge (g->pr). */
static json_t *tier_subs(gen *g) {
    json_t *a = json_array();
    if (!a) return NULL;
    for (size_t i = 0; i < g->pr->nsubs; i++) {
        const prc_sub *t = &g->pr->subs[i];
        char desc[160], from[DEC_FMT_MAX], to[DEC_FMT_MAX], ex[PRC_EXACT_MAX];
        if (dec_format(&t->from, from, sizeof from) < 0 || dec_format(&t->to, to, sizeof to) < 0)
            goto fail;
        trim_zeros(from);
        trim_zeros(to);
        if (t->open)
            snprintf(desc, sizeof desc, "Tier %zu (above %s)", t->tier + 1, from);
        else
            snprintf(desc, sizeof desc, "Tier %zu (%s to %s)", t->tier + 1, from, to);
        snprintf(ex, sizeof ex, "%s", t->amount_exact);
        trim_zeros(ex);
        json_t *s = json_object();
        if (!s || json_array_append_new(a, s) != 0 ||
            !put(s, "position", json_integer((json_int_t)i)) ||
            !put(s, "kind", json_string("tier")) || !put(s, "description", json_string(desc)) ||
            !put(s, "tier", json_integer((json_int_t)t->tier + 1)) ||
            !put(s, "tier_from", json_string(from)) ||
            !put(s, "tier_to", t->open ? json_null() : json_string(to)) ||
            !put(s, "quantity", jdec(&t->units, true)) ||
            !put(s, "unit_price", jdec(&t->unit_price, true)) ||
            !put(s, "flat_fee", jdec(&t->flat_fee, true)) || !put(s, "amount", json_string(ex)))
            goto fail;
    }
    return a;
fail:
    json_decref(a);
    return NULL;
}

#define Q_CHARGES                                                                                  \
    "SELECT pc.id, m.id, m.code, m.name, pc.model, trim_scale(pc.unit_price)::text,"               \
    "       trim_scale(pc.included_units)::text, trim_scale(pc.package_size)::text,"               \
    "       trim_scale(pc.minimum)::text, pc.tiers::text, m.aggregation,"                          \
    "       CASE WHEN m.aggregation = 'unique_count' THEN"                                         \
    "            trim_scale(ml_usage_total($1, $2, m.id, $3, $4))::text END "                      \
    "  FROM plan_charges pc JOIN metrics m ON m.org_id = pc.org_id AND m.id = pc.metric_id "       \
    " WHERE pc.org_id = $1 AND pc.plan_id = $5 ORDER BY pc.position"

static int price_charges(gen *g) {
    PGresult *r = DB_EXECP(g->d, g->e, Q_CHARGES, g->org, g->cust, g->in->period_start,
                           g->in->period_end, g->plan_id);
    if (!r) return INV_EDB;
    PGresult *uniq = NULL;
    bool any_unique = false;
    for (int i = 0; i < PQntuples(r); i++) any_unique |= !PQgetisnull(r, i, 11);
    if (any_unique && !(uniq = DB_EXECP(g->d, g->e, Q_UNIQUE_DAYS, g->org, g->cust,
                                        g->in->period_start, g->in->period_end))) {
        PQclear(r);
        return INV_EDB;
    }
    int rc = INV_OK;
    for (int i = 0; i < PQntuples(r) && rc == INV_OK; i++) {
        const char *charge_id = PQgetvalue(r, i, 0), *metric_id = PQgetvalue(r, i, 1);
        const char *code = PQgetvalue(r, i, 2), *mname = PQgetvalue(r, i, 3);
        const char *model = PQgetvalue(r, i, 4), *agg = PQgetvalue(r, i, 10);
        bool unique = !PQgetisnull(r, i, 11);
        int vcol = unique ? 2 : agg_col(agg);
        const char *qty = unique ? PQgetvalue(r, i, 11) : period_total(g->usage, metric_id, vcol);
        char what[128], jerr[128];
        snprintf(what, sizeof what, "charge %d (%s)", i + 1, code);
        json_t *tiers = NULL;
        const char *tt = col(r, i, 9);
        if (tt && !(tiers = jx_loadb(tt, strlen(tt), jerr, sizeof jerr))) {
            rc = fail_input(g->err, g->errlen, "%s: tiers: %s", what, jerr);
            break;
        }
        json_t *pricing =
            pricing_json(model, col(r, i, 5), col(r, i, 6), col(r, i, 7), col(r, i, 8), tiers);
        json_decref(tiers);
        if (!pricing) {
            rc = oom(g->e);
            break;
        }
        dec_t q, tot;
        if (dec_parse_cstr(&q, qty) != DEC_OK) {
            json_decref(pricing);
            rc = fail_input(g->err, g->errlen, "%s: usage %s is not a decimal", what, qty);
            break;
        }
        if ((rc = load_pricing(g, pricing, what)) != INV_OK ||
            (rc = charge_total(g, &q, &tot, what)) != INV_OK) {
            json_decref(pricing);
            break;
        }
        char desc[512], ex[PRC_EXACT_MAX];
        if (g->pc->model == PRC_PACKAGE) {
            char pk[DEC_FMT_MAX];
            if (dec_format(&g->pr->packages, pk, sizeof pk) < 0) pk[0] = '\0';
            snprintf(desc, sizeof desc, "%s (%s package%s)", mname, pk, strcmp(pk, "1") ? "s" : "");
        } else {
            snprintf(desc, sizeof desc, "%s", mname);
        }
        snprintf(ex, sizeof ex, "%s", g->pr->amount_exact);
        trim_zeros(ex);
        bool tiered = g->pc->model == PRC_GRADUATED || g->pc->model == PRC_VOLUME;
        json_t *l = line_new(g, "usage", desc);
        json_t *subs = tiered ? tier_subs(g) : day_subs(unique ? uniq : g->usage, metric_id, vcol);
        bool ok = l && subs && put(l, "charge_id", json_string(charge_id)) &&
                  put(l, "metric_id", json_string(metric_id)) &&
                  put(l, "metric_code", json_string(code)) && put(l, "model", json_string(model)) &&
                  put(l, "quantity", json_string(qty)) &&
                  put(l, "billable_quantity", jdec(&g->pr->billable, true)) &&
                  put(l, "unit_price", tiered ? json_null() : jtext(col(r, i, 5))) &&
                  put(l, "amount_exact", json_string(ex)) &&
                  put(l, "amount", jdec(&g->pr->amount, false)) &&
                  put(l, "pricing", json_incref(pricing)) && put(l, "sub_lines", subs) &&
                  add_amount(g, &g->pr->amount);
        if (!ok) {
            if (!l || !subs) json_decref(subs);
            json_decref(pricing);
            rc = oom(g->e);
            break;
        }
        if (g->pr->has_true_up) {
            char mdesc[512], mn[DEC_FMT_MAX];
            dec_t mr;
            if (dec_round(&mr, &g->pc->minimum, g->minor, DEC_ROUND_HALF_EVEN) != DEC_OK ||
                dec_format(&mr, mn, sizeof mn) < 0)
                snprintf(mn, sizeof mn, "%s", col(r, i, 8));
            snprintf(mdesc, sizeof mdesc, "Minimum for %s (%s %s)", mname, mn, g->currency);
            json_t *m = line_new(g, "minimum", mdesc);
            if (!m || !put(m, "charge_id", json_string(charge_id)) ||
                !put(m, "metric_id", json_string(metric_id)) ||
                !put(m, "metric_code", json_string(code)) ||
                !put(m, "amount", jdec(&g->pr->true_up, false)) ||
                !add_amount(g, &g->pr->true_up)) {
                json_decref(pricing);
                rc = oom(g->e);
                break;
            }
        }
        json_decref(pricing);
    }
    PQclear(r);
    PQclear(uniq);
    return rc;
}

/* Late usage of the customer's earlier issued invoices: for each of their
 * usage lines, what is billed so far (the line's quantity, raised by
 * adjustments on other non-void invoices) against the usage now. */
#define Q_LATE                                                                                     \
    "SELECT l.invoice_id, coalesce(i.number, ''), l.charge_id, l.metric_id, l.metric_code,"        \
    "       l.pricing::text, trim_scale(greatest(l.quantity, coalesce(("                           \
    "         SELECT max(a.adjusted_to) FROM invoice_lines a JOIN invoices ai ON ai.id = "         \
    "a.invoice_id"                                                                                 \
    "          WHERE a.source_invoice_id = l.invoice_id AND a.kind = 'adjustment'"                 \
    "            AND a.charge_id IS NOT DISTINCT FROM l.charge_id AND a.metric_id = l.metric_id"   \
    "            AND ai.status <> 'void' AND ai.id IS DISTINCT FROM $4::uuid), "                   \
    "l.quantity)))::text,"                                                                         \
    "       trim_scale(ml_usage_total(i.org_id, i.customer_id, l.metric_id, i.period_start,"       \
    "                                 i.period_end))::text,"                                       \
    "       to_char(i.period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD'),"                             \
    "       to_char(i.period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD'), l.description "                \
    "  FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "                               \
    " WHERE i.org_id = $1 AND i.customer_id = $2 AND i.status IN ('issued', 'paid') "              \
    "   AND i.period_end <= $3 AND l.kind = 'usage' AND l.pricing IS NOT NULL "                    \
    " ORDER BY i.period_start, l.position"

static int add_adjustments(gen *g) {
    PGresult *r = DB_EXECP(g->d, g->e, Q_LATE, g->org, g->cust, g->in->period_start,
                           g->existing_id[0] ? g->existing_id : NULL);
    if (!r) return INV_EDB;
    int rc = INV_OK;
    for (int i = 0; i < PQntuples(r) && rc == INV_OK; i++) {
        dec_t billed, now;
        if (dec_parse_cstr(&billed, PQgetvalue(r, i, 6)) != DEC_OK ||
            dec_parse_cstr(&now, PQgetvalue(r, i, 7)) != DEC_OK) {
            rc = fail_input(g->err, g->errlen, "late usage: bad quantity");
            break;
        }
        if (dec_cmp(&now, &billed) <= 0) continue;
        const char *src = PQgetvalue(r, i, 0), *num = PQgetvalue(r, i, 1);
        char what[160], jerr[128];
        snprintf(what, sizeof what, "late usage of invoice %s (%s)", num[0] ? num : src,
                 PQgetvalue(r, i, 4));
        const char *pt = PQgetvalue(r, i, 5);
        json_t *pricing = jx_loadb(pt, strlen(pt), jerr, sizeof jerr);
        if (!pricing) {
            rc = fail_input(g->err, g->errlen, "%s: pricing: %s", what, jerr);
            break;
        }
        dec_t t_now, t_billed, amount, late;
        if ((rc = load_pricing(g, pricing, what)) != INV_OK ||
            (rc = charge_total(g, &now, &t_now, what)) != INV_OK ||
            (rc = charge_total(g, &billed, &t_billed, what)) != INV_OK) {
            json_decref(pricing);
            break;
        }
        if (dec_sub(&amount, &t_now, &t_billed) != DEC_OK ||
            dec_sub(&late, &now, &billed) != DEC_OK) {
            json_decref(pricing);
            rc = fail_input(g->err, g->errlen, "%s: amount overflows", what);
            break;
        }
        char desc[512];
        snprintf(desc, sizeof desc, "Late usage: %s, %s to %s (invoice %s)", PQgetvalue(r, i, 10),
                 PQgetvalue(r, i, 8), PQgetvalue(r, i, 9), num[0] ? num : src);
        json_t *l = line_new(g, "adjustment", desc);
        bool ok = l && put(l, "charge_id", jtext(col(r, i, 2))) &&
                  put(l, "metric_id", json_string(PQgetvalue(r, i, 3))) &&
                  put(l, "metric_code", json_string(PQgetvalue(r, i, 4))) &&
                  put(l, "model", jtext(jget(pricing, "model"))) &&
                  put(l, "quantity", jdec(&late, true)) && put(l, "amount", jdec(&amount, false)) &&
                  put(l, "pricing", json_incref(pricing)) &&
                  put(l, "source_invoice_id", json_string(src)) &&
                  put(l, "adjusted_from", json_string(PQgetvalue(r, i, 6))) &&
                  put(l, "adjusted_to", json_string(PQgetvalue(r, i, 7))) && add_amount(g, &amount);
        json_decref(pricing);
        if (!ok) rc = oom(g->e);
    }
    PQclear(r);
    return rc;
}

/* Base fee first (position 0), then the charges, adjustments, tax. */
static int build(gen *g, dec_t *subtotal, dec_t *tax, dec_t *total) {
    char perr[256];
    dec_t fee;
    if (prc_base_fee(g->minor, g->base_fee, &fee, perr, sizeof perr) != PRC_OK)
        return fail_input(g->err, g->errlen, "plan %s: base_fee: %s", g->plan_name, perr);
    if (!dec_is_zero(&fee)) {
        char desc[300];
        snprintf(desc, sizeof desc, "Base fee: %s", g->plan_name);
        json_t *l = line_new(g, "base_fee", desc);
        if (!l || !put(l, "amount", jdec(&fee, false)) || !add_amount(g, &fee)) return oom(g->e);
    }
    if (!(g->usage = DB_EXECP(g->d, g->e, Q_USAGE, g->org, g->cust, g->in->period_start,
                              g->in->period_end)))
        return INV_EDB;
    int rc = price_charges(g);
    if (rc == INV_OK) rc = add_adjustments(g);
    if (rc != INV_OK) return rc;
    dec_t rate;
    if (dec_parse_cstr(&rate, g->tax_rate) != DEC_OK)
        return fail_input(g->err, g->errlen, "tax rate %s is not a decimal", g->tax_rate);
    if (prc_totals(g->minor, g->amounts, g->namounts, &rate, subtotal, tax, total, perr,
                   sizeof perr) != PRC_OK)
        return fail_input(g->err, g->errlen, "totals: %s", perr);
    if (!dec_is_zero(&rate)) {
        dec_t pct, hundred = dec_from_int(100);
        char p[DEC_FMT_MAX], desc[96];
        if (dec_mul(&pct, &rate, &hundred) != DEC_OK || dec_format(&pct, p, sizeof p) < 0)
            snprintf(p, sizeof p, "?");
        trim_zeros(p);
        snprintf(desc, sizeof desc, "Tax (%s%%)", p);
        json_t *l = line_new(g, "tax", desc);
        if (!l || !put(l, "amount", jdec(tax, false))) return oom(g->e);
    }
    return INV_OK;
}

#define W_NEW                                                                                      \
    "INSERT INTO invoices (org_id, customer_id, plan_id, period_start, period_end, currency,"      \
    "                      subtotal, tax_rate, tax, total, content_sha) "                          \
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id"

#define W_UPDATE                                                                                   \
    "UPDATE invoices SET plan_id = $3, currency = $4, subtotal = $5, tax_rate = $6, tax = $7,"     \
    "       total = $8, content_sha = $9, version = version + 1, generated_at = now(),"            \
    "       status = 'draft' "                                                                     \
    " WHERE org_id = $1 AND id = $2"

#define W_DELETE_LINES "DELETE FROM invoice_lines WHERE invoice_id = $1"

#define W_LINES                                                                                    \
    "WITH x AS (SELECT * FROM jsonb_to_recordset($3::jsonb) AS x(position int, kind text,"         \
    "             description text, charge_id bigint, metric_id bigint, metric_code text,"         \
    "             model text, quantity numeric, billable_quantity numeric, unit_price numeric,"    \
    "             amount_exact numeric, amount numeric, pricing jsonb, source_invoice_id uuid,"    \
    "             adjusted_from numeric, adjusted_to numeric, sub_lines jsonb)),"                  \
    "     l AS (INSERT INTO invoice_lines (invoice_id, org_id, position, kind, description,"       \
    "             charge_id, metric_id, metric_code, model, quantity, billable_quantity,"          \
    "             unit_price, amount_exact, amount, pricing, source_invoice_id, adjusted_from,"    \
    "             adjusted_to) "                                                                   \
    "           SELECT $1, $2, position, kind, description, charge_id, metric_id, metric_code,"    \
    "                  model, quantity, billable_quantity, unit_price, amount_exact, amount,"      \
    "                  pricing, source_invoice_id, adjusted_from, adjusted_to FROM x "             \
    "           RETURNING id, position) "                                                          \
    "INSERT INTO invoice_sub_lines (line_id, invoice_id, position, kind, description, day, tier,"  \
    "                               tier_from, tier_to, quantity, unit_price, flat_fee, amount) "  \
    "SELECT l.id, $1, s.position, s.kind, s.description, s.day, s.tier, s.tier_from, s.tier_to,"   \
    "       s.quantity, s.unit_price, s.flat_fee, s.amount "                                       \
    "  FROM x JOIN l ON l.position = x.position "                                                  \
    "  CROSS JOIN LATERAL jsonb_to_recordset(x.sub_lines) AS s(position int, kind text,"           \
    "       description text, day date, tier int, tier_from numeric, tier_to numeric,"             \
    "       quantity numeric, unit_price numeric, flat_fee numeric, amount numeric)"

#define W_ACTION                                                                                   \
    "INSERT INTO invoice_actions (invoice_id, org_id, action, from_status, to_status, actor_id,"   \
    "                             actor, comment) "                                                \
    "VALUES ($1, $2, $3, $4, $5, $6, coalesce((SELECT email FROM users WHERE id = $6), $7), $8)"

#define W_RUN_ITEM                                                                                 \
    "UPDATE billing_run_items SET outcome = $3, invoice_id = $4, error = $5, finished_at = now() " \
    " WHERE run_id = $1 AND customer_id = $2 AND outcome = 'queued'"

static int run_item(db *d, db_err *e, const char *run_id, const char *cust, const char *outcome,
                    const char *invoice_id, const char *error) {
    return db_cmd_prep(d, e, W_RUN_ITEM, 5,
                       (const char *const[]){run_id, cust, outcome, invoice_id, error}) == 0
               ? INV_OK
               : INV_EDB;
}

static int write_invoice(gen *g, inv_gen_out *out, const char *content, const char *sha,
                         const dec_t *subtotal, const dec_t *tax, const dec_t *total) {
    char st[DEC_FMT_MAX], tx[DEC_FMT_MAX], tt[DEC_FMT_MAX];
    if (dec_format(subtotal, st, sizeof st) < 0 || dec_format(tax, tx, sizeof tx) < 0 ||
        dec_format(total, tt, sizeof tt) < 0)
        return oom(g->e);
    snprintf(out->total, sizeof out->total, "%s", tt);
    snprintf(out->currency, sizeof out->currency, "%s", g->currency);
    out->lines = (int)json_array_size(g->lines);
    const char *actor = g->in->actor ? g->in->actor : "system";
    char comment[256];

    if (g->existing_id[0] && !strcmp(g->existing_sha, sha)) {
        out->outcome = INV_UNCHANGED;
        snprintf(out->invoice_id, sizeof out->invoice_id, "%s", g->existing_id);
        snprintf(out->status, sizeof out->status, "%s", g->existing_status);
        snprintf(comment, sizeof comment, "unchanged (total %s %s)", tt, g->currency);
        return DB_CMDP(g->d, g->e, W_ACTION, g->existing_id, g->org, "regenerate",
                       g->existing_status, g->existing_status, g->in->actor_id, actor, comment) == 0
                   ? INV_OK
                   : INV_EDB;
    }
    if (g->existing_id[0]) {
        out->outcome = INV_UPDATED;
        snprintf(out->invoice_id, sizeof out->invoice_id, "%s", g->existing_id);
        if (DB_CMDP(g->d, g->e, W_UPDATE, g->org, g->existing_id, g->plan_id, g->currency, st,
                    g->tax_rate, tx, tt, sha) != 0 ||
            DB_CMDP(g->d, g->e, W_DELETE_LINES, g->existing_id) != 0)
            return INV_EDB;
        bool withdrawn = strcmp(g->existing_status, "draft") != 0;
        snprintf(comment, sizeof comment, "total %s -> %s %s%s", g->existing_total, tt, g->currency,
                 withdrawn ? "; the approval no longer applies: back to draft" : "");
        if (DB_CMDP(g->d, g->e, W_ACTION, g->existing_id, g->org, "regenerate", g->existing_status,
                    "draft", g->in->actor_id, actor, comment) != 0)
            return INV_EDB;
    } else {
        out->outcome = INV_CREATED;
        PGresult *r = DB_EXECP(g->d, g->e, W_NEW, g->org, g->cust, g->plan_id, g->in->period_start,
                               g->in->period_end, g->currency, st, g->tax_rate, tx, tt, sha);
        if (!r) return INV_EDB;
        snprintf(out->invoice_id, sizeof out->invoice_id, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        snprintf(comment, sizeof comment, "total %s %s", tt, g->currency);
        if (DB_CMDP(g->d, g->e, W_ACTION, out->invoice_id, g->org, "generate", NULL, "draft",
                    g->in->actor_id, actor, comment) != 0)
            return INV_EDB;
    }
    snprintf(out->status, sizeof out->status, "draft");
    return DB_CMDP(g->d, g->e, W_LINES, out->invoice_id, g->org, content) == 0 ? INV_OK : INV_EDB;
}

static int generate(gen *g, inv_gen_out *out) {
    if (db_begin(g->d, g->e) != 0) return INV_EDB;
    int rc = DB_CMDP(g->d, g->e, Q_LOCK, g->org, g->cust) == 0 ? INV_OK : INV_EDB;
    if (rc == INV_OK) rc = load_customer(g);
    if (rc == INV_OK) rc = load_existing(g);
    if (rc == INV_OK && g->existing_id[0] &&
        (!strcmp(g->existing_status, "issued") || !strcmp(g->existing_status, "paid"))) {
        out->outcome = INV_LOCKED;
        snprintf(out->invoice_id, sizeof out->invoice_id, "%s", g->existing_id);
        snprintf(out->status, sizeof out->status, "%s", g->existing_status);
        snprintf(out->total, sizeof out->total, "%s", g->existing_total);
        snprintf(out->currency, sizeof out->currency, "%s", g->currency);
        if (g->in->run_id)
            rc = run_item(g->d, g->e, g->in->run_id, g->cust, "locked", g->existing_id, NULL);
        if (rc == INV_OK) rc = db_commit(g->d, g->e) == 0 ? INV_OK : INV_EDB;
        if (rc != INV_OK) db_rollback(g->d);
        return rc;
    }
    dec_t subtotal, tax, total;
    if (rc == INV_OK) rc = build(g, &subtotal, &tax, &total);
    char *content = NULL;
    if (rc == INV_OK && !(content = json_dumps(g->lines, JSON_COMPACT))) rc = oom(g->e);
    if (rc == INV_OK) {
        /* the hash covers everything a regeneration could change */
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_state s;
        crypto_hash_sha256_init(&s);
        const char *parts[] = {g->plan_id, "\n", g->currency, "\n", g->tax_rate, "\n", content};
        for (size_t i = 0; i < ML_ARRAY_LEN(parts); i++)
            crypto_hash_sha256_update(&s, (const unsigned char *)parts[i], strlen(parts[i]));
        crypto_hash_sha256_final(&s, h);
        char sha[2 * sizeof h + 1];
        sodium_bin2hex(sha, sizeof sha, h, sizeof h);
        rc = write_invoice(g, out, content, sha, &subtotal, &tax, &total);
    }
    free(content);
    if (rc == INV_OK && g->in->run_id)
        rc = run_item(g->d, g->e, g->in->run_id, g->cust, inv_outcome_name(out->outcome),
                      out->invoice_id, NULL);
    if (rc == INV_OK) rc = db_commit(g->d, g->e) == 0 ? INV_OK : INV_EDB;
    if (rc != INV_OK) db_rollback(g->d);
    return rc;
}

int inv_generate(db *d, db_err *e, const inv_gen *in, inv_gen_out *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    memset(e, 0, sizeof *e);
    err[0] = '\0';
    gen g = {.d = d, .e = e, .in = in, .err = err, .errlen = errlen};
    snprintf(g.org, sizeof g.org, "%lld", in->org_id);
    snprintf(g.cust, sizeof g.cust, "%lld", in->customer_id);
    g.lines = json_array();
    g.pc = malloc(sizeof *g.pc);
    g.pr = malloc(sizeof *g.pr);
    int rc = g.lines && g.pc && g.pr ? generate(&g, out) : oom(e);
    json_decref(g.lines);
    free(g.amounts);
    free(g.pc);
    free(g.pr);
    PQclear(g.usage);
    return rc;
}

int inv_run_item_failed(db *d, db_err *e, const char *run_id, long long customer_id,
                        const char *error) {
    char cust[24];
    snprintf(cust, sizeof cust, "%lld", customer_id);
    return run_item(d, e, run_id, cust, "failed", NULL, error);
}

#define Q_RUN_ITEMS                                                                                \
    "INSERT INTO billing_run_items (run_id, customer_id) "                                         \
    "SELECT r.id, c.id FROM billing_runs r JOIN customers c ON c.org_id = r.org_id "               \
    " WHERE r.id = $1 AND r.org_id = $2 AND c.plan_id IS NOT NULL "                                \
    "ON CONFLICT DO NOTHING"
#define Q_RUN_START                                                                                \
    "UPDATE billing_runs r SET total = (SELECT count(*) FROM billing_run_items WHERE run_id = "    \
    "r.id),"                                                                                       \
    "       skipped = (SELECT count(*) FROM customers c WHERE c.org_id = r.org_id"                 \
    "                     AND c.plan_id IS NULL),"                                                 \
    "       status = CASE WHEN status = 'queued' THEN 'running' ELSE status END,"                  \
    "       started_at = coalesce(started_at, now()) "                                             \
    " WHERE id = $1 AND org_id = $2 "                                                              \
    "RETURNING period_start, period_end, total"
#define Q_RUN_FINISH_EMPTY                                                                         \
    "UPDATE billing_runs SET status = 'succeeded', finished_at = now() "                           \
    " WHERE id = $1 AND total = 0 AND finished_at IS NULL"
#define Q_RUN_QUEUED                                                                               \
    "SELECT customer_id FROM billing_run_items WHERE run_id = $1 AND outcome = 'queued' "          \
    " ORDER BY customer_id"

int inv_run_fan_out(db *d, db_err *e, long long org_id, const char *run_id, long long **ids,
                    size_t *n, char period_start[40], char period_end[40], char *err,
                    size_t errlen) {
    *ids = NULL;
    *n = 0;
    err[0] = '\0';
    char org[24];
    snprintf(org, sizeof org, "%lld", org_id);
    if (db_begin(d, e) != 0) return INV_EDB;
    int rc = DB_CMD(d, e, Q_RUN_ITEMS, run_id, org) == 0 ? INV_OK : INV_EDB;
    PGresult *r = NULL;
    if (rc == INV_OK && !(r = DB_EXEC(d, e, Q_RUN_START, run_id, org))) rc = INV_EDB;
    if (rc == INV_OK && PQntuples(r) != 1)
        rc = fail_input(err, errlen, "billing run %s does not exist", run_id);
    if (rc == INV_OK) {
        snprintf(period_start, 40, "%s", PQgetvalue(r, 0, 0));
        snprintf(period_end, 40, "%s", PQgetvalue(r, 0, 1));
        if (DB_CMD(d, e, Q_RUN_FINISH_EMPTY, run_id) != 0) rc = INV_EDB;
    }
    PQclear(r);
    r = NULL;
    if (rc == INV_OK) rc = db_commit(d, e) == 0 ? INV_OK : INV_EDB;
    if (rc != INV_OK) {
        db_rollback(d);
        return rc;
    }
    if (!(r = DB_EXEC(d, e, Q_RUN_QUEUED, run_id))) return INV_EDB;
    size_t k = (size_t)PQntuples(r);
    long long *v = k ? malloc(k * sizeof *v) : NULL;
    if (k && !v) {
        PQclear(r);
        return oom(e);
    }
    for (size_t i = 0; i < k; i++) v[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
    PQclear(r);
    *ids = v;
    *n = k;
    return INV_OK;
}

int inv_run_failed(db *d, db_err *e, const char *run_id, const char *error) {
    return DB_CMD(d, e,
                  "UPDATE billing_runs SET status = 'failed', error = $2, finished_at = now() "
                  " WHERE id = $1 AND finished_at IS NULL",
                  run_id, error) == 0
               ? INV_OK
               : INV_EDB;
}
