/* demo.c — demo data: "Demo Trucking" with an owner login, twelve sites as
 * customers, the four metrics of ../shared/tools/gen_usage.py, a plan that
 * uses every charge model, and a month of usage (the previous calendar month).
 *
 * DESIGN — Goes through the same repositories and the same usage insert path
 * as the API and workers, so demo rows obey the same rules.  The catalog is
 * written in one transaction, only if the organization "demo-trucking" does
 * not exist yet.  The usage is generated deterministically, the way
 * gen_usage.py does it (seeded PRNG, same metric ranges and fractional
 * quantities, integer arithmetic only), with event ids demo-<month>-<n>; it is
 * loaded every time and deduplicated by event id, so a second run (or a run
 * after a failure half-way) adds exactly what is missing.
 *
 * Then the invoices, through inv_generate (db/invoice.h) on this connection,
 * synchronously: a draft of the usage month for every customer, and one
 * paid example — site-00001's invoice of the month before (base fee and the
 * storage minimum: no usage then), issued and marked paid by the demo owner.
 * inv_generate is idempotent (same customer and period → one invoice, an
 * unchanged draft stays as it is, an issued one is never touched) and the
 * example only moves forward from the state it is found in (draft → issue,
 * issued → mark paid, paid → nothing), so a second run changes nothing but
 * the drafts' audit trails ("regenerate" rows).
 */
#include "fmacros.h"
#include "demo.h"
#include "jx.h"
#include "invoice.h"
#include "log.h"
#include "repo.h"
#include "repo_invoices.h"
#include "rnd.h"
#include "ts.h"
#include "usage.h"
#include <stdlib.h>

static const char *const k_metrics[] = {
    "{\"code\":\"api_calls\",\"name\":\"API calls\",\"aggregation\":\"sum\",\"unit\":\"call\"}",
    "{\"code\":\"vm_uptime_minutes\",\"name\":\"VM "
    "uptime\",\"aggregation\":\"sum\",\"unit\":\"minute\"}",
    "{\"code\":\"cpu_seconds\",\"name\":\"CPU time\",\"aggregation\":\"sum\",\"unit\":\"second\"}",
    "{\"code\":\"storage_gb_hours\",\"name\":\"Storage\",\"aggregation\":\"sum\",\"unit\":\"GB-"
    "hour\"}",
};

static const char k_plan[] =
    "{\"code\":\"fleet-standard\",\"name\":\"Fleet Standard\",\"currency\":\"USD\","
    "\"base_fee\":\"49.00\",\"charges\":["
    "{\"metric\":\"api_calls\",\"model\":\"graduated\",\"included_units\":\"1000\","
    " \"tiers\":[{\"up_to\":\"10000\",\"unit_price\":\"0.002\",\"flat_fee\":\"0\"},"
    "            {\"up_to\":null,\"unit_price\":\"0.001\",\"flat_fee\":\"0\"}]},"
    "{\"metric\":\"vm_uptime_minutes\",\"model\":\"per_unit\",\"unit_price\":\"0.0008\"},"
    "{\"metric\":\"cpu_seconds\",\"model\":\"package\",\"unit_price\":\"0.50\","
    " \"package_size\":\"3600\"},"
    "{\"metric\":\"storage_gb_hours\",\"model\":\"volume\",\"minimum\":\"5.00\","
    " \"tiers\":[{\"up_to\":\"1000\",\"unit_price\":\"0.0002\",\"flat_fee\":\"0\"},"
    "            {\"up_to\":null,\"unit_price\":\"0.00015\",\"flat_fee\":\"0\"}]}]}";

static const char *const k_cities[] = {"Phoenix", "Dallas",         "Denver",  "Atlanta",
                                       "Reno",    "Columbus",       "Memphis", "Tucson",
                                       "Laredo",  "Salt Lake City", "Fresno",  "Zürich"};

#define DEMO_EVENTS 30000
#define DEMO_CHUNK 5000

/* splitmix64: small, fast, deterministic */
static uint64_t next_rand(uint64_t *st) {
    uint64_t z = (*st += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static const struct {
    const char *code;
    int lo, hi;
} k_ranges[] = {{"api_calls", 1, 50}, {"vm_uptime_minutes", 1, 60}, {"cpu_seconds", 1, 3600},
                {"storage_gb_hours", 1, 500}};
static const char *const k_fracs[] = {"", "", "", ".5", ".25", ".125"};

typedef struct demo_text {
    char event_id[40];
    char quantity[24];
    char at[TS_FMT_MAX];
} demo_text;

/* The calendar month `back` months before the current one (UTC). */
static void month_back(int back, int *y, unsigned *m) {
    unsigned day;
    ts_civil_from_days(ts_now() / 86400000000LL, y, m, &day);
    for (int i = 0; i < back; i++) {
        if (--*m == 0) {
            *m = 12;
            --*y;
        }
    }
}

/* [start, end) of month m of year y, RFC 3339. */
static void month_period(int y, unsigned m, char start[TS_FMT_MAX], char end[TS_FMT_MAX]) {
    ts_format(ts_days_from_civil(y, m, 1) * 86400000000LL, start, TS_FMT_MAX);
    ts_format(ts_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86400000000LL, end,
              TS_FMT_MAX);
}

/* Generates and loads the previous calendar month's usage. */
static int load_usage(db *d, long long org_id, char *err, size_t errlen) {
    db_err e;
    json_t *cust = NULL, *met = NULL;
    if (repo_customer_ids(d, &e, org_id, &cust) != REPO_OK ||
        repo_metric_ids(d, &e, org_id, &met) != REPO_OK) {
        json_decref(cust);
        snprintf(err, errlen, "%s", e.msg);
        return -1;
    }
    int y;
    unsigned m;
    month_back(1, &y, &m);
    unsigned days = (unsigned)(ts_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) -
                               ts_days_from_civil(y, m, 1));
    int64_t start = ts_days_from_civil(y, m, 1) * 86400000000LL;
    int64_t span_ms = (int64_t)days * 86400000LL;
    char tmin[TS_FMT_MAX], tmax[TS_FMT_MAX];
    ts_format(start, tmin, sizeof tmin);
    ts_format(start + span_ms * 1000 - 1, tmax, sizeof tmax);

    db_usage_row *rows = calloc(DEMO_CHUNK, sizeof *rows);
    demo_text *txt = calloc(DEMO_CHUNK, sizeof *txt);
    int rc = rows && txt ? 0 : -1;
    if (rc) snprintf(err, errlen, "out of memory");
    uint64_t st = 7;
    long long inserted = 0;
    for (int base = 0; rc == 0 && base < DEMO_EVENTS; base += DEMO_CHUNK) {
        size_t n = 0;
        for (int i = base; i < base + DEMO_CHUNK && i < DEMO_EVENTS; i++, n++) {
            char ext[16];
            snprintf(ext, sizeof ext, "site-%05d", (int)(next_rand(&st) % 12) + 1);
            size_t k = (size_t)(next_rand(&st) % ML_ARRAY_LEN(k_ranges));
            int64_t at = start + (int64_t)(next_rand(&st) % (uint64_t)span_ms) * 1000;
            int q = k_ranges[k].lo +
                    (int)(next_rand(&st) % (uint64_t)(k_ranges[k].hi - k_ranges[k].lo + 1));
            const char *frac = k_fracs[next_rand(&st) % ML_ARRAY_LEN(k_fracs)];
            snprintf(txt[n].event_id, sizeof txt[n].event_id, "demo-%04d%02u-%06d", y, m, i);
            snprintf(txt[n].quantity, sizeof txt[n].quantity, "%d%s", q, frac);
            ts_format(at, txt[n].at, sizeof txt[n].at);
            rows[n] = (db_usage_row){org_id,
                                     json_integer_value(json_object_get(cust, ext)),
                                     json_integer_value(json_object_get(met, k_ranges[k].code)),
                                     txt[n].event_id, txt[n].quantity, txt[n].at, NULL};
            if (!rows[n].customer_id || !rows[n].metric_id) {
                snprintf(err, errlen, "demo customer %s or metric %s is missing", ext,
                         k_ranges[k].code);
                rc = -1;
                break;
            }
        }
        db_usage_result res;
        if (rc == 0 && db_usage_insert(d, &e, rows, n, tmin, tmax, &res)) {
            snprintf(err, errlen, "usage: %s", e.msg);
            rc = -1;
        }
        if (rc == 0) inserted += res.inserted;
    }
    free(rows);
    free(txt);
    json_decref(cust);
    json_decref(met);
    if (rc == 0)
        LOG_KV(LOG_INFO, "demo usage loaded", LF_S("from", tmin), LF_I("events", DEMO_EVENTS),
               LF_I("new", inserted));
    return rc;
}

/* Customer ext's invoice of month `back` (created or refreshed); its status
 * in out.  1 = generated, 0 = skipped (cannot be generated as asked: logged),
 * -1 = database error (err). */
static int demo_invoice(db *d, long long org_id, json_t *cust, const char *ext, int back,
                        inv_gen_out *out, char *err, size_t errlen) {
    int y;
    unsigned m;
    char start[TS_FMT_MAX], end[TS_FMT_MAX], why[256];
    month_back(back, &y, &m);
    month_period(y, m, start, end);
    long long cid = json_integer_value(json_object_get(cust, ext));
    if (!cid) {
        LOG_KV(LOG_WARN, "demo invoice skipped: no such customer", LF_S("customer", ext));
        return 0;
    }
    inv_gen in = {.org_id = org_id,
                  .customer_id = cid,
                  .period_start = start,
                  .period_end = end,
                  .actor = "system"};
    db_err e;
    int rc = inv_generate(d, &e, &in, out, why, sizeof why);
    if (rc == INV_EDB) {
        snprintf(err, errlen, "invoice of %s: %s", ext, e.msg);
        return -1;
    }
    if (rc == INV_EINPUT) { /* e.g. the customer was taken off its plan */
        LOG_KV(LOG_WARN, "demo invoice skipped", LF_S("customer", ext), LF_S("why", why));
        return 0;
    }
    return 1;
}

/* Moves the example invoice forward from `status` to paid (issue, mark paid)
 * as the demo owner; a paid (or void) one is left alone. */
static int demo_pay(db *d, long long org_id, const char *id, const char *status, char *err,
                    size_t errlen) {
    static const struct {
        const char *from;
        repo_inv_action a;
    } k_steps[] = {{"draft", REPO_INV_ISSUE}, {"issued", REPO_INV_MARK_PAID}};
    db_err e;
    char owner_id[40], hash[RND_PWHASH_MAX];
    int rc = repo_user_auth(d, &e, DEMO_EMAIL, owner_id, hash, sizeof hash);
    if (rc != REPO_OK) {
        snprintf(err, errlen, "demo owner: %s", rc == REPO_ERR ? e.msg : "not found");
        return -1;
    }
    repo_inv_actor who = {.user_id = owner_id, .role = "owner"};
    char cur[24];
    snprintf(cur, sizeof cur, "%s", status);
    for (size_t i = 0; i < ML_ARRAY_LEN(k_steps); i++) {
        if (strcmp(cur, k_steps[i].from) != 0) continue;
        json_t *inv = NULL;
        repo_field f = {{0}, {0}};
        int why;
        rc =
            repo_inv_transition(d, &e, org_id, id, k_steps[i].a, &who, "demo data", &inv, &f, &why);
        if (rc != REPO_OK) {
            snprintf(err, errlen, "demo invoice %s: %s", repo_inv_action_verb(k_steps[i].a),
                     rc == REPO_ERR ? e.msg : f.message);
            return -1;
        }
        snprintf(cur, sizeof cur, "%s", json_string_value(json_object_get(inv, "status")));
        json_decref(inv);
    }
    return 0;
}

/* A draft of the usage month for every customer, and the paid example. */
static int load_invoices(db *d, long long org_id, char *err, size_t errlen) {
    db_err e;
    json_t *cust = NULL;
    if (repo_customer_ids(d, &e, org_id, &cust) != REPO_OK) {
        snprintf(err, errlen, "%s", e.msg);
        return -1;
    }
    int counts[INV_LOCKED + 1] = {0};
    int rc = 0;
    inv_gen_out out;
    for (int i = 1; rc >= 0 && i <= 12; i++) {
        char ext[16];
        snprintf(ext, sizeof ext, "site-%05d", i);
        rc = demo_invoice(d, org_id, cust, ext, 1, &out, err, errlen);
        if (rc == 1) counts[out.outcome]++;
    }
    if (rc >= 0) rc = demo_invoice(d, org_id, cust, "site-00001", 2, &out, err, errlen);
    if (rc == 1) rc = demo_pay(d, org_id, out.invoice_id, out.status, err, errlen);
    json_decref(cust);
    if (rc < 0) return -1;
    LOG_KV(LOG_INFO, "demo invoices", LF_I("created", counts[INV_CREATED]),
           LF_I("updated", counts[INV_UPDATED]), LF_I("unchanged", counts[INV_UNCHANGED]),
           LF_I("issued_left_alone", counts[INV_LOCKED]));
    return 0;
}

/* The usage, then the invoices that bill it. */
static int load_data(db *d, long long org_id, char *err, size_t errlen) {
    if (load_usage(d, org_id, err, errlen)) return -1;
    return load_invoices(d, org_id, err, errlen);
}

int demo_load(db *d, char *err, size_t errlen) {
    db_err e;
    long long org_id;
    int rc = repo_org_by_slug(d, &e, "demo-trucking", &org_id);
    if (rc == REPO_OK) {
        LOG_KV(LOG_INFO, "demo catalog already loaded", LF_I("org_id", org_id));
        return load_data(d, org_id, err, errlen);
    }
    if (rc == REPO_ERR) {
        snprintf(err, errlen, "%s", e.msg);
        return -1;
    }
    char hash[RND_PWHASH_MAX];
    if (rnd_password_hash(DEMO_PASSWORD, hash)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (db_begin(d, &e)) goto fail;
    json_t *org = NULL, *out = NULL;
    repo_field f = {{0}, {0}};
    if (repo_org_create(d, &e, "Demo Trucking", &org_id, &org) != REPO_OK) goto fail;
    json_decref(org);
    if (repo_user_create(d, &e, org_id, DEMO_EMAIL, "Dana Demo", hash, "owner", &out, &f) !=
        REPO_OK)
        goto fail_field;
    json_decref(out);
    for (size_t i = 0; i < ML_ARRAY_LEN(k_metrics); i++) {
        char je[128];
        json_t *m = jx_loadb(k_metrics[i], strlen(k_metrics[i]), je, sizeof je);
        rc = m ? repo_metric_create(d, &e, org_id, m, &out, &f) : REPO_ERR;
        json_decref(m);
        if (rc != REPO_OK) goto fail_field;
        json_decref(out);
    }
    json_t *plan = json_loads(k_plan, 0, NULL);
    rc = plan ? repo_plan_create(d, &e, org_id, plan, &out, &f) : REPO_ERR;
    json_decref(plan);
    if (rc != REPO_OK) goto fail_field;
    json_decref(out);
    for (int i = 1; i <= 12; i++) {
        char ext[16], name[64];
        snprintf(ext, sizeof ext, "site-%05d", i);
        snprintf(name, sizeof name, "%s yard %d", k_cities[i - 1], i);
        json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:b}", "external_id", ext, "name",
                              name, "currency", "USD", "plan", "fleet-standard", "billing_address",
                              "city", k_cities[i - 1], "country", i == 12 ? "CH" : "US",
                              "require_approval", i % 4 == 0);
        rc = c ? repo_customer_create(d, &e, org_id, c, &out, &f) : REPO_ERR;
        json_decref(c);
        if (rc != REPO_OK) goto fail_field;
        json_decref(out);
    }
    if (db_commit(d, &e)) goto fail;
    LOG_KV(LOG_INFO, "demo catalog loaded", LF_I("org_id", org_id));
    return load_data(d, org_id, err, errlen);
fail_field:
    if (rc != REPO_ERR) {
        db_rollback(d);
        snprintf(err, errlen, "%s: %s", f.field, f.message);
        return -1;
    }
fail:
    db_rollback(d);
    snprintf(err, errlen, "%s", e.msg);
    return -1;
}
