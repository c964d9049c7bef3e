/* test_invoice_gen.c — invoice generation end to end: real billing-api,
 * billing-worker processes, PostgreSQL and Redis.
 *
 * Pins down:
 *  - property: 2,000 customers, each with its own random plan made through
 *    POST /v1/plans (every model, random tiers with flat fees, included
 *    units, minimums, base fees, USD/EUR/JPY/KWD) and random usage stored
 *    through the real insert path (quantities landing exactly on tier bounds
 *    on purpose), billed by one POST /v1/billing-runs: every line, true-up,
 *    subtotal, tax and total equals a brute-force computation written here
 *    independently (128-bit fixed point at scale 24, its own tier walk and
 *    half-even rounding) to the minor unit; the run counts done = total; a
 *    second run changes nothing (same content hash, same version);
 *  - late usage: usage arriving after an invoice is issued leaves it as it
 *    is and is billed as an adjustment on the next invoice — priced with the
 *    earlier invoice's pricing even after the plan changed — and only the
 *    part not billed yet by an earlier adjustment;
 *  - a pending or approved invoice whose usage changed goes back to draft
 *    (audited), an unchanged one keeps its state; sub-lines per day add up;
 *  - bad requests (periods, customers without plan, unknown customers,
 *    overlapping periods, months) get precise 422s or a dead job naming why,
 *    and a billing run with a failing customer counts it as failed.
 */
#include "fmacros.h"
#include "jq.h"
#include "th.h"
#include "tw.h"
#include "usage.h"
#include <criterion/criterion.h>
#include <stdlib.h>

static th_server *srv;
static void setup(void) { srv = th_start(NULL); }
static void teardown(void) {
    cr_expect_eq(th_stop(srv), 0);
    tw_cleanup();
}

typedef __int128 i128;
#define E12 ((i128)1000000000000LL)

/* ---- small helpers -------------------------------------------------------- */

#define Q TH_Q

static void must(th_resp *r, long status, const char *what) {
    cr_assert_eq(r->status, status, "%s: HTTP %ld, want %ld: %s", what, r->status, status,
                 r->body ? r->body : "");
}

static i128 p10(int n) {
    i128 v = 1;
    while (n-- > 0) v *= 10;
    return v;
}

/* Fixed-point value v at `scale` places as text ("12.50", "0", "-3.000"). */
static void fx_fmt(i128 v, int scale, char *out, size_t cap) {
    char digits[64];
    int n = 0;
    bool neg = v < 0;
    unsigned __int128 u = neg ? (unsigned __int128)(-v) : (unsigned __int128)v;
    do {
        digits[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    while (n <= scale) digits[n++] = '0';
    size_t k = 0;
    if (neg && v != 0) out[k++] = '-';
    for (int i = n - 1; i >= 0 && k + 2 < cap; i--) {
        out[k++] = digits[i];
        if (i == scale && scale > 0) out[k++] = '.';
    }
    out[k] = '\0';
}

/* v at scale `from` rounded half-even to scale `to` (to <= from). */
static i128 round_he(i128 v, int from, int to) {
    i128 d = p10(from - to);
    bool neg = v < 0;
    i128 a = neg ? -v : v;
    i128 q = a / d, r = a % d;
    if (2 * r > d || (2 * r == d && (q & 1))) q++;
    return neg ? -q : q;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) { /* xorshift64* — deterministic */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}
static long long rnd_in(long long lo, long long hi) {
    return lo + (long long)(rnd() % (uint64_t)(hi - lo + 1));
}

/* A random decimal >= 0 at scale 12 with at most `places` places and a value
 * below `max_int`. */
static i128 rnd_dec(long long max_int, int places) {
    i128 ip = rnd_in(0, max_int - 1);
    i128 fp = places > 0 ? rnd_in(0, (long long)p10(places) - 1) : 0;
    return ip * E12 + fp * p10(12 - places);
}

/* ---- the brute-force reference ------------------------------------------ */

enum { M_PER_UNIT, M_GRADUATED, M_VOLUME, M_PACKAGE };
static const char *const k_models[] = {"per_unit", "graduated", "volume", "package"};

typedef struct tier {
    i128 up_to; /* scale 12; -1 = open */
    i128 price, fee;
} tier;

typedef struct charge {
    int metric; /* index into k_metric_codes */
    int model;
    i128 price, included, package;
    bool has_min;
    i128 minimum;
    int ntiers;
    tier tiers[4];
} charge;

typedef struct plan {
    char code[40];
    const char *currency;
    int minor;
    i128 base_fee;
    int ncharges;
    charge ch[3];
} plan;

/* Exact amount at scale 24 of charge c for quantity q (scale 12). */
static i128 ref_exact(const charge *c, i128 q) {
    i128 b = q - c->included;
    if (b < 0) b = 0;
    switch (c->model) {
    case M_PER_UNIT:
        return b * c->price;
    case M_PACKAGE: {
        i128 packs = (b + c->package - 1) / c->package;
        return packs * c->price * E12;
    }
    case M_GRADUATED: {
        i128 sum = 0, lo = 0;
        for (int i = 0; i < c->ntiers; i++) {
            bool open = c->tiers[i].up_to < 0;
            i128 hi = open ? b : c->tiers[i].up_to;
            i128 top = b < hi ? b : hi;
            i128 units = top - lo;
            if (units > 0) sum += units * c->tiers[i].price + c->tiers[i].fee * E12;
            if (open) break;
            lo = hi;
        }
        return sum;
    }
    case M_VOLUME: {
        if (b == 0) return 0;
        for (int i = 0; i < c->ntiers; i++)
            if (c->tiers[i].up_to < 0 || b <= c->tiers[i].up_to)
                return b * c->tiers[i].price + c->tiers[i].fee * E12;
        cr_assert_fail("volume tiers without an open last tier");
    }
    }
    return 0;
}

/* The rounded charge amount and its minimum true-up at the minor unit. */
static void ref_charge(const charge *c, int minor, i128 q, i128 *amount, i128 *true_up) {
    *amount = round_he(ref_exact(c, q), 24, minor);
    *true_up = 0;
    if (c->has_min) {
        i128 m = round_he(c->minimum, 12, minor);
        if (*amount < m) *true_up = m - *amount;
    }
}

/* ---- random plans ---------------------------------------------------------- */

static const char *const k_metric_codes[] = {"m_calls", "m_gb", "m_cpu", "m_peak"};
static const char *const k_metric_aggs[] = {"sum", "sum", "count", "max"};
static const struct {
    const char *code;
    int minor;
} k_currencies[] = {{"USD", 2}, {"EUR", 2}, {"JPY", 0}, {"KWD", 3}};

static void rnd_plan(plan *p, int idx, const char *tag) {
    memset(p, 0, sizeof *p);
    snprintf(p->code, sizeof p->code, "p%s-%d", tag, idx);
    int cur = (int)rnd_in(0, 3);
    p->currency = k_currencies[cur].code;
    p->minor = k_currencies[cur].minor;
    p->base_fee = rnd_in(0, 2) ? rnd_dec(200, (int)rnd_in(0, 4)) : 0;
    p->ncharges = (int)rnd_in(1, 3);
    int first = (int)rnd_in(0, 3);
    for (int k = 0; k < p->ncharges; k++) {
        charge *c = &p->ch[k];
        c->metric = (first + k) % 4;
        c->model = (int)rnd_in(0, 3);
        c->included = rnd_in(0, 2) == 0 ? rnd_dec(50, (int)rnd_in(0, 2)) : 0;
        c->has_min = rnd_in(0, 3) == 0;
        if (c->has_min) c->minimum = rnd_dec(300, (int)rnd_in(0, 5));
        if (c->model == M_PER_UNIT || c->model == M_PACKAGE)
            c->price = rnd_dec(rnd_in(0, 1) ? 3 : 100, (int)rnd_in(0, 6));
        if (c->model == M_PACKAGE) {
            c->package = rnd_dec(rnd_in(1, 3) == 1 ? 10 : 500, (int)rnd_in(0, 2));
            if (c->package == 0) c->package = E12;
        }
        if (c->model == M_GRADUATED || c->model == M_VOLUME) {
            c->ntiers = (int)rnd_in(1, 4);
            i128 bound = 0;
            for (int t = 0; t < c->ntiers; t++) {
                tier *tt = &c->tiers[t];
                if (t == c->ntiers - 1) {
                    tt->up_to = -1;
                } else {
                    bound += rnd_dec(400, (int)rnd_in(0, 3)) + E12 / 1000;
                    tt->up_to = bound;
                }
                tt->price = rnd_dec(5, (int)rnd_in(0, 6));
                tt->fee = rnd_in(0, 2) == 0 ? rnd_dec(20, (int)rnd_in(0, 3)) : 0;
            }
        }
    }
}

static json_t *jfx(i128 v) {
    char b[64];
    fx_fmt(v, 12, b, sizeof b);
    return json_string(b);
}

static char *plan_json(const plan *p) {
    json_t *charges = json_array();
    for (int k = 0; k < p->ncharges; k++) {
        const charge *c = &p->ch[k];
        json_t *o = json_pack("{s:s, s:s}", "metric", k_metric_codes[c->metric], "model",
                              k_models[c->model]);
        if (c->included) json_object_set_new(o, "included_units", jfx(c->included));
        if (c->has_min) json_object_set_new(o, "minimum", jfx(c->minimum));
        if (c->model == M_PER_UNIT || c->model == M_PACKAGE)
            json_object_set_new(o, "unit_price", jfx(c->price));
        if (c->model == M_PACKAGE) json_object_set_new(o, "package_size", jfx(c->package));
        if (c->ntiers) {
            json_t *ts = json_array();
            for (int t = 0; t < c->ntiers; t++) {
                json_t *to = json_object();
                json_object_set_new(to, "up_to",
                                    c->tiers[t].up_to < 0 ? json_null() : jfx(c->tiers[t].up_to));
                json_object_set_new(to, "unit_price", jfx(c->tiers[t].price));
                if (c->tiers[t].fee) json_object_set_new(to, "flat_fee", jfx(c->tiers[t].fee));
                json_array_append_new(ts, to);
            }
            json_object_set_new(o, "tiers", ts);
        }
        json_array_append_new(charges, o);
    }
    json_t *root =
        json_pack("{s:s, s:s, s:s, s:o, s:o}", "code", p->code, "name", p->code, "currency",
                  p->currency, "base_fee", jfx(p->base_fee), "charges", charges);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

/* ---- the organization ------------------------------------------------------ */

typedef struct world {
    char token[128];
    char slug[64];
    long long org;
    char org_s[24];
    long long metric_id[5]; /* k_metric_codes, then m_users (unique_count of "user") */
    PGconn *pg;
    db *d;
} world;

static void world_init(world *w) {
    memset(w, 0, sizeof *w);
    th_signup(srv, w->token, w->slug, NULL);
    w->pg = th_pg();
    PGresult *r = Q(w->pg, "SELECT id FROM organizations WHERE slug = $1", w->slug);
    w->org = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    snprintf(w->org_s, sizeof w->org_s, "%lld", w->org);
    PQclear(Q(w->pg, "UPDATE organizations SET tax_rate = 0.07 WHERE id = $1", w->org_s));
    for (int i = 0; i < 4; i++) {
        char body[160];
        snprintf(body, sizeof body,
                 "{\"code\":\"%s\",\"name\":\"Metric %s\",\"aggregation\":\"%s\"}",
                 k_metric_codes[i], k_metric_codes[i], k_metric_aggs[i]);
        th_resp rr = th_auth(srv, w->token, "POST", "/v1/metrics", body);
        must(&rr, 201, "create metric");
        th_resp_free(&rr);
        r = Q(w->pg, "SELECT id FROM metrics WHERE org_id = $1 AND code = $2", w->org_s,
              k_metric_codes[i]);
        w->metric_id[i] = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    th_resp ru = th_auth(srv, w->token, "POST", "/v1/metrics",
                         "{\"code\":\"m_users\",\"name\":\"Active users\","
                         "\"aggregation\":\"unique_count\",\"unique_property\":\"user\"}");
    must(&ru, 201, "create unique_count metric");
    th_resp_free(&ru);
    r = Q(w->pg, "SELECT id FROM metrics WHERE org_id = $1 AND code = 'm_users'", w->org_s);
    w->metric_id[4] = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    w->d = db_open(getenv("BILLING_DATABASE_URL"));
    cr_assert_not_null(w->d);
}

static void world_free(world *w) {
    db_close(w->d);
    PQfinish(w->pg);
}

static long long customer_id(world *w, const char *ext) {
    PGresult *r =
        Q(w->pg, "SELECT id FROM customers WHERE org_id = $1 AND external_id = $2", w->org_s, ext);
    cr_assert_eq(PQntuples(r), 1, "customer %s", ext);
    long long id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return id;
}

/* Stores events through the real insert path (db_usage_insert). */
typedef struct ev {
    long long cust;
    int metric;
    char id[48];
    char qty[48];
    char at[32];
    const char *props; /* JSON object text or NULL */
} ev;

static void store(world *w, const ev *evs, size_t n) {
    db_usage_row *rows = calloc(n, sizeof *rows);
    cr_assert_not_null(rows);
    for (size_t i = 0; i < n; i++)
        rows[i] = (db_usage_row){w->org,      evs[i].cust, w->metric_id[evs[i].metric],
                                 evs[i].id,   evs[i].qty,  evs[i].at,
                                 evs[i].props};
    db_err e;
    db_usage_result res;
    cr_assert_eq(
        db_usage_insert(w->d, &e, rows, n, "2026-09-01T00:00:00Z", "2026-12-31T00:00:00Z", &res), 0,
        "insert: %s", e.msg);
    free(rows);
}

static void post_ok(world *w, const char *path, const char *body, long want, char *out_id,
                    const char *id_key) {
    th_resp r = th_auth(srv, w->token, "POST", path, body);
    must(&r, want, path);
    if (out_id) snprintf(out_id, 64, "%s", th_str(r.json, id_key));
    th_resp_free(&r);
}

/* POST /v1/billing-runs and wait until it finishes; returns its JSON. */
static json_t *run_month(world *w, const char *month, int max_ms) {
    char body[64], id[64], path[128];
    snprintf(body, sizeof body, "{\"period\":\"%s\"}", month);
    post_ok(w, "/v1/billing-runs", body, 202, id, "id");
    snprintf(path, sizeof path, "/v1/billing-runs/%s", id);
    for (int waited = 0; waited < max_ms; waited += 100) {
        th_resp r = th_auth(srv, w->token, "GET", path, NULL);
        must(&r, 200, "get run");
        const char *st = th_str(r.json, "status");
        if (!strcmp(st, "succeeded") || !strcmp(st, "failed")) {
            json_t *j = json_incref(r.json);
            th_resp_free(&r);
            return j;
        }
        th_resp_free(&r);
        tw_msleep(100);
    }
    cr_assert_fail("billing run %s did not finish in %d ms", id, max_ms);
    return NULL;
}

/* POST /v1/invoices and wait for its job; returns the job's final state. */
static const char *generate(world *w, const char *ext, const char *from, const char *to,
                            char state[32], char *error, size_t errcap) {
    char body[256], job[64];
    snprintf(body, sizeof body,
             "{\"customer_id\":\"%s\",\"period_start\":\"%s\",\"period_end\":\"%s\"}", ext, from,
             to);
    post_ok(w, "/v1/invoices", body, 202, job, "job_id");
    jq *q = tw_jq();
    tw_wait_final(q, job, 30000, state);
    if (error) {
        json_t *j = tw_job(q, job);
        snprintf(error, errcap, "%s", th_str(j, "error") ? th_str(j, "error") : "");
        json_decref(j);
    }
    jq_close(q);
    return state;
}

/* ---- the property test ------------------------------------------------------ */

#define NCUST 2000

Test(invoice_gen, random_plans_bill_exactly_like_a_brute_force_reference, .init = setup,
     .fini = teardown, .timeout = 600) {
    world w;
    world_init(&w);
    static plan plans[NCUST];
    static i128 usage[NCUST][4]; /* billed quantity per metric, scale 12 */
    static i128 taxr[NCUST];     /* scale 6 */
    static long long cids[NCUST];
    static const char *const k_tax[] = {NULL, "0", "0.0825", "0.19", "0.2"};
    static const i128 k_tax_v[] = {70000, 0, 82500, 190000, 200000};
    size_t cap = NCUST * 12, n = 0;
    ev *evs = calloc(cap, sizeof *evs);
    cr_assert_not_null(evs);
    for (int i = 0; i < NCUST; i++) {
        rnd_plan(&plans[i], i, w.slug);
        char *pj = plan_json(&plans[i]);
        th_resp r = th_auth(srv, w.token, "POST", "/v1/plans", pj);
        must(&r, 201, pj);
        th_resp_free(&r);
        free(pj);
        char body[160], ext[32];
        snprintf(ext, sizeof ext, "c%04d", i);
        snprintf(body, sizeof body,
                 "{\"external_id\":\"%s\",\"name\":\"Customer %d\",\"plan\":\"%s\"}", ext, i,
                 plans[i].code);
        r = th_auth(srv, w.token, "POST", "/v1/customers", body);
        must(&r, 201, body);
        th_resp_free(&r);
        cids[i] = customer_id(&w, ext);
        int t = (int)rnd_in(0, 4);
        taxr[i] = k_tax_v[t];
        if (k_tax[t]) {
            char id[24];
            snprintf(id, sizeof id, "%lld", cids[i]);
            PQclear(Q(w.pg, "UPDATE customers SET tax_rate = $2 WHERE id = $1", id, k_tax[t]));
        }
        /* usage: a few events per charged metric, sometimes landing exactly on
         * a tier bound (or the included units), sometimes none at all */
        for (int k = 0; k < plans[i].ncharges; k++) {
            const charge *c = &plans[i].ch[k];
            int m = c->metric;
            int nev = (int)rnd_in(0, 3);
            i128 target = -1;
            if (rnd_in(0, 4) == 0) {
                target = c->included;
                if (c->ntiers > 1) target += c->tiers[rnd_in(0, c->ntiers - 2)].up_to;
                if (rnd_in(0, 1)) target += E12 / 1000000000000LL; /* + 1e-12 */
                nev = 1;
            }
            for (int e = 0; e < nev; e++) {
                ev *x = &evs[n++];
                x->cust = cids[i];
                x->metric = m;
                snprintf(x->id, sizeof x->id, "p-%d-%d-%d", i, k, e);
                i128 q;
                if (!strcmp(k_metric_aggs[m], "count"))
                    q = E12; /* a count metric counts events */
                else if (target >= 0)
                    q = target;
                else
                    q = rnd_dec(rnd_in(0, 1) ? 40 : 3000, (int)rnd_in(0, 3));
                fx_fmt(q, 12, x->qty, sizeof x->qty);
                int day = (int)rnd_in(1, 31), hour = (int)rnd_in(0, 23), min = (int)rnd_in(0, 59);
                snprintf(x->at, sizeof x->at, "2026-10-%02dT%02d:%02d:00Z", day, hour, min);
                if (!strcmp(k_metric_aggs[m], "sum"))
                    usage[i][m] += q;
                else if (!strcmp(k_metric_aggs[m], "count"))
                    usage[i][m] += E12;
                else if (q > usage[i][m])
                    usage[i][m] = q;
            }
        }
        /* usage outside the period must not count */
        ev *x = &evs[n++];
        *x = (ev){.cust = cids[i], .metric = plans[i].ch[0].metric};
        snprintf(x->id, sizeof x->id, "p-%d-out", i);
        snprintf(x->qty, sizeof x->qty, "999");
        snprintf(x->at, sizeof x->at, "2026-11-01T00:00:00Z");
        cr_assert(n + 12 < cap);
    }
    store(&w, evs, n);
    free(evs);

    tw_pool *pool = tw_start(2, NULL);
    json_t *run = run_month(&w, "2026-10", 300000);
    cr_expect_str_eq(th_str(run, "status"), "succeeded", "%s", json_dumps(run, 0));
    cr_expect_eq(json_integer_value(th_get(run, "total")), NCUST);
    cr_expect_eq(json_integer_value(th_get(run, "done")), NCUST);
    cr_expect_eq(json_integer_value(th_get(run, "failed")), 0);
    json_decref(run);

    /* every invoice against the reference */
    PGresult *inv = Q(w.pg,
                      "SELECT c.external_id, i.id, i.currency, i.subtotal::text, i.tax::text, "
                      "       i.total::text, i.status, i.version, i.content_sha "
                      "  FROM invoices i JOIN customers c ON c.id = i.customer_id "
                      " WHERE i.org_id = $1 ORDER BY c.external_id",
                      w.org_s);
    cr_assert_eq(PQntuples(inv), NCUST);
    int mismatches = 0;
    for (int i = 0; i < NCUST; i++) {
        const plan *p = &plans[i];
        const char *iid = PQgetvalue(inv, i, 1);
        cr_expect_str_eq(PQgetvalue(inv, i, 2), p->currency);
        cr_expect_str_eq(PQgetvalue(inv, i, 6), "draft");
        PGresult *ls = Q(w.pg,
                         "SELECT kind, coalesce(metric_code, ''), amount::text,"
                         "       coalesce(trim_scale(quantity)::text, '') "
                         "  FROM invoice_lines WHERE invoice_id = $1 ORDER BY position",
                         iid);
        /* expected lines, in order */
        char want[16][3][64];
        int nw = 0;
        i128 sub = 0;
        if (p->base_fee) {
            i128 f = round_he(p->base_fee, 12, p->minor);
            if (f) {
                snprintf(want[nw][0], 64, "base_fee");
                want[nw][1][0] = '\0';
                fx_fmt(f, p->minor, want[nw][2], 64);
                nw++;
                sub += f;
            }
        }
        for (int k = 0; k < p->ncharges; k++) {
            i128 a, tu;
            ref_charge(&p->ch[k], p->minor, usage[i][p->ch[k].metric], &a, &tu);
            snprintf(want[nw][0], 64, "usage");
            snprintf(want[nw][1], 64, "%s", k_metric_codes[p->ch[k].metric]);
            fx_fmt(a, p->minor, want[nw][2], 64);
            nw++;
            sub += a;
            if (tu) {
                snprintf(want[nw][0], 64, "minimum");
                snprintf(want[nw][1], 64, "%s", k_metric_codes[p->ch[k].metric]);
                fx_fmt(tu, p->minor, want[nw][2], 64);
                nw++;
                sub += tu;
            }
        }
        i128 tax = round_he(sub * taxr[i], p->minor + 6, p->minor);
        if (taxr[i]) {
            snprintf(want[nw][0], 64, "tax");
            want[nw][1][0] = '\0';
            fx_fmt(tax, p->minor, want[nw][2], 64);
            nw++;
        }
        bool same = PQntuples(ls) == nw;
        for (int l = 0; same && l < nw; l++)
            same = !strcmp(PQgetvalue(ls, l, 0), want[l][0]) &&
                   !strcmp(PQgetvalue(ls, l, 1), want[l][1]) &&
                   !strcmp(PQgetvalue(ls, l, 2), want[l][2]);
        char ws[64], wt[64], wtot[64];
        fx_fmt(sub, p->minor, ws, sizeof ws);
        fx_fmt(tax, p->minor, wt, sizeof wt);
        fx_fmt(sub + tax, p->minor, wtot, sizeof wtot);
        same = same && !strcmp(PQgetvalue(inv, i, 3), ws) && !strcmp(PQgetvalue(inv, i, 4), wt) &&
               !strcmp(PQgetvalue(inv, i, 5), wtot);
        if (!same && mismatches++ < 5) {
            char *pj = plan_json(p);
            cr_expect_fail(
                "customer %d (plan %s, tax rate %d ppm): want %d lines, subtotal %s tax %s "
                "total %s; got %d lines, %s %s %s; first want line %s %s %s",
                i, pj, (int)taxr[i], nw, ws, wt, wtot, PQntuples(ls), PQgetvalue(inv, i, 3),
                PQgetvalue(inv, i, 4), PQgetvalue(inv, i, 5), nw ? want[0][0] : "",
                nw ? want[0][1] : "", nw ? want[0][2] : "");
            for (int l = 0; l < PQntuples(ls); l++)
                cr_log_warn("  got %s %s %s (q %s) | want %s %s %s", PQgetvalue(ls, l, 0),
                            PQgetvalue(ls, l, 1), PQgetvalue(ls, l, 2), PQgetvalue(ls, l, 3),
                            l < nw ? want[l][0] : "-", l < nw ? want[l][1] : "-",
                            l < nw ? want[l][2] : "-");
            free(pj);
        }
        PQclear(ls);
    }
    cr_expect_eq(mismatches, 0, "%d of %d invoices differ from the reference", mismatches, NCUST);

    /* sub-lines: per-day quantities of sum metrics add up to the line */
    PGresult *bad = Q(w.pg,
                      "SELECT l.id FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
                      "  JOIN invoice_sub_lines s ON s.line_id = l.id AND s.kind = 'day' "
                      " WHERE i.org_id = $1 AND l.metric_code IN ('m_calls', 'm_gb') "
                      " GROUP BY l.id, l.quantity HAVING sum(s.quantity) <> l.quantity",
                      w.org_s);
    cr_expect_eq(PQntuples(bad), 0, "%d usage lines whose day sub-lines do not add up",
                 PQntuples(bad));
    PQclear(bad);
    PGresult *tiers = Q(w.pg,
                        "SELECT l.id FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
                        "  JOIN invoice_sub_lines s ON s.line_id = l.id AND s.kind = 'tier' "
                        " WHERE i.org_id = $1 GROUP BY l.id, l.amount_exact "
                        "HAVING sum(s.amount) <> l.amount_exact",
                        w.org_s);
    cr_expect_eq(PQntuples(tiers), 0, "%d tiered lines whose tier sub-lines do not add up",
                 PQntuples(tiers));
    PQclear(tiers);

    /* a second run changes nothing: same content hash, same version */
    json_t *again = run_month(&w, "2026-10", 300000);
    cr_expect_eq(json_integer_value(th_get(again, "done")), NCUST);
    json_decref(again);
    PGresult *inv2 = Q(w.pg,
                       "SELECT c.external_id, i.version, i.content_sha, i.total::text "
                       "  FROM invoices i JOIN customers c ON c.id = i.customer_id "
                       " WHERE i.org_id = $1 ORDER BY c.external_id",
                       w.org_s);
    cr_assert_eq(PQntuples(inv2), NCUST);
    int changed = 0;
    for (int i = 0; i < NCUST; i++)
        if (strcmp(PQgetvalue(inv, i, 7), PQgetvalue(inv2, i, 1)) ||
            strcmp(PQgetvalue(inv, i, 8), PQgetvalue(inv2, i, 2)) ||
            strcmp(PQgetvalue(inv, i, 5), PQgetvalue(inv2, i, 3)))
            changed++;
    cr_expect_eq(changed, 0, "%d invoices changed on a second run", changed);
    long long regen = tw_pg_int(w.pg,
                                "SELECT count(*) FROM invoice_actions WHERE org_id = $1::bigint "
                                "AND action = 'regenerate' AND comment LIKE 'unchanged%'",
                                w.org_s, NULL);
    cr_expect_eq(regen, NCUST, "one 'unchanged' audit row per invoice");
    PQclear(inv);
    PQclear(inv2);
    cr_expect_eq(tw_stop(pool, 20000), 0);
    world_free(&w);
}

/* ---- late usage --------------------------------------------------------------- */

static void make_customer(world *w, const char *ext, const char *plan_code, const char *extra) {
    char body[256];
    snprintf(body, sizeof body, "{\"external_id\":\"%s\",\"name\":\"%s\",\"plan\":\"%s\"%s}", ext,
             ext, plan_code, extra ? extra : "");
    th_resp r = th_auth(srv, w->token, "POST", "/v1/customers", body);
    must(&r, 201, body);
    th_resp_free(&r);
}

static void make_plan(world *w, const char *json) {
    th_resp r = th_auth(srv, w->token, "POST", "/v1/plans", json);
    must(&r, 201, json);
    th_resp_free(&r);
}

static void usage1(world *w, long long cust, int metric, const char *id, const char *qty,
                   const char *at) {
    ev e = {.cust = cust, .metric = metric};
    snprintf(e.id, sizeof e.id, "%s", id);
    snprintf(e.qty, sizeof e.qty, "%s", qty);
    snprintf(e.at, sizeof e.at, "%s", at);
    store(w, &e, 1);
}

/* The invoice of customer ext starting at from: id, status, version, total. */
static PGresult *invoice_of(world *w, const char *ext, const char *from) {
    PGresult *r =
        Q(w->pg,
          "SELECT i.id, i.status, i.version, i.total::text, i.subtotal::text, i.tax::text "
          "  FROM invoices i JOIN customers c ON c.id = i.customer_id "
          " WHERE i.org_id = $1 AND c.external_id = $2 AND i.period_start = $3 "
          "   AND i.status <> 'void'",
          w->org_s, ext, from);
    cr_assert_eq(PQntuples(r), 1, "one invoice of %s from %s", ext, from);
    return r;
}

static void issue_sql(world *w, const char *invoice_id, const char *number) {
    PQclear(Q(w->pg,
              "UPDATE invoices SET status = 'issued', number = $2, issued_at = now() WHERE id = $1",
              invoice_id, number));
}

/* "kind metric amount from->to" of every line, joined with "; ". */
static void lines_text(world *w, const char *invoice_id, char *out, size_t cap) {
    PGresult *r = Q(w->pg,
                    "SELECT string_agg(kind || ' ' || coalesce(metric_code, '-') || ' ' || "
                    "  amount::text || coalesce(' ' || trim_scale(adjusted_from)::text || '->' || "
                    "  trim_scale(adjusted_to)::text, ''), '; ' ORDER BY position) "
                    "  FROM invoice_lines WHERE invoice_id = $1",
                    invoice_id);
    snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

Test(invoice_gen, late_usage_is_billed_once_on_the_next_invoice_with_the_old_pricing, .init = setup,
     .fini = teardown, .timeout = 180) {
    world w;
    world_init(&w);
    make_plan(
        &w, "{\"code\":\"late\",\"name\":\"Late\",\"currency\":\"USD\",\"charges\":["
            "{\"metric\":\"m_calls\",\"model\":\"per_unit\",\"unit_price\":\"0.5\"},"
            "{\"metric\":\"m_gb\",\"model\":\"graduated\",\"tiers\":["
            "{\"up_to\":\"10\",\"unit_price\":\"1\"},{\"up_to\":null,\"unit_price\":\"0.1\"}]}]}");
    make_plan(&w, "{\"code\":\"dear\",\"name\":\"Dear\",\"currency\":\"USD\",\"charges\":["
                  "{\"metric\":\"m_calls\",\"model\":\"per_unit\",\"unit_price\":\"100\"},"
                  "{\"metric\":\"m_gb\",\"model\":\"per_unit\",\"unit_price\":\"100\"}]}");
    make_customer(&w, "L1", "late", NULL);
    long long c = customer_id(&w, "L1");
    usage1(&w, c, 0, "a1", "6", "2026-10-02T10:00:00Z");
    usage1(&w, c, 0, "a2", "4", "2026-10-20T23:59:59Z");
    usage1(&w, c, 1, "b1", "8", "2026-10-05T00:00:00Z");
    tw_pool *pool = tw_start(1, NULL);
    char st[32], err[512], lines[1024];

    generate(&w, "L1", "2026-10-01", "2026-11-01", st, err, sizeof err);
    cr_assert_str_eq(st, "succeeded", "%s", err);
    PGresult *oct = invoice_of(&w, "L1", "2026-10-01 00:00:00+00");
    cr_expect_str_eq(PQgetvalue(oct, 0, 3), "13.91"); /* 5.00 + 8.00, tax 7% 0.91 */
    char oct_id[40];
    snprintf(oct_id, sizeof oct_id, "%s", PQgetvalue(oct, 0, 0));
    PQclear(oct);
    issue_sql(&w, oct_id, "T-2026-000001");

    /* late usage for October, then the plan changes */
    usage1(&w, c, 0, "a3", "4", "2026-10-31T23:00:00Z");
    usage1(&w, c, 1, "b2", "5", "2026-10-15T12:00:00Z");
    th_resp r = th_auth(srv, w.token, "PATCH", "/v1/customers/L1", "{\"plan\":\"dear\"}");
    must(&r, 200, "change plan");
    th_resp_free(&r);

    /* the issued invoice is never touched */
    generate(&w, "L1", "2026-10-01", "2026-11-01", st, err, sizeof err);
    cr_expect_str_eq(st, "succeeded", "%s", err);
    oct = invoice_of(&w, "L1", "2026-10-01 00:00:00+00");
    cr_expect_str_eq(PQgetvalue(oct, 0, 1), "issued");
    cr_expect_str_eq(PQgetvalue(oct, 0, 2), "1");
    cr_expect_str_eq(PQgetvalue(oct, 0, 3), "13.91");
    PQclear(oct);

    /* November: its own usage at the new plan + October's late usage at the
     * old pricing: calls 4 x 0.5 = 2.00; gb 8 -> 13 crosses the tier:
     * (10 + 0.3) - 8 = 2.30 */
    usage1(&w, c, 0, "n1", "1", "2026-11-03T08:00:00Z");
    generate(&w, "L1", "2026-11-01", "2026-12-01", st, err, sizeof err);
    cr_assert_str_eq(st, "succeeded", "%s", err);
    PGresult *nov = invoice_of(&w, "L1", "2026-11-01 00:00:00+00");
    char nov_id[40];
    snprintf(nov_id, sizeof nov_id, "%s", PQgetvalue(nov, 0, 0));
    lines_text(&w, nov_id, lines, sizeof lines);
    cr_expect_str_eq(lines,
                     "usage m_calls 100.00; usage m_gb 0.00; adjustment m_calls 2.00 10->14; "
                     "adjustment m_gb 2.30 8->13; tax - 7.30");
    cr_expect_str_eq(PQgetvalue(nov, 0, 4), "104.30");
    cr_expect_str_eq(PQgetvalue(nov, 0, 3), "111.60");
    PQclear(nov);
    long long src = tw_pg_int(w.pg,
                              "SELECT count(*) FROM invoice_lines WHERE invoice_id = $1::uuid "
                              "AND source_invoice_id = $2::uuid",
                              nov_id, oct_id);
    cr_expect_eq(src, 2, "both adjustments point at the October invoice");

    /* regenerating November bills the same late usage, not twice */
    generate(&w, "L1", "2026-11-01", "2026-12-01", st, err, sizeof err);
    nov = invoice_of(&w, "L1", "2026-11-01 00:00:00+00");
    cr_expect_str_eq(PQgetvalue(nov, 0, 2), "1", "unchanged content keeps the version");
    PQclear(nov);
    issue_sql(&w, nov_id, "T-2026-000002");

    /* more late October usage: December bills only what November did not */
    usage1(&w, c, 0, "a4", "2", "2026-10-10T10:00:00Z");
    generate(&w, "L1", "2026-12-01", "2027-01-01", st, err, sizeof err);
    cr_assert_str_eq(st, "succeeded", "%s", err);
    PGresult *dec = invoice_of(&w, "L1", "2026-12-01 00:00:00+00");
    char dec_id[40];
    snprintf(dec_id, sizeof dec_id, "%s", PQgetvalue(dec, 0, 0));
    PQclear(dec);
    lines_text(&w, dec_id, lines, sizeof lines);
    cr_expect_str_eq(lines, "usage m_calls 0.00; usage m_gb 0.00; adjustment m_calls 1.00 14->16; "
                            "tax - 0.07");

    /* voiding December releases its adjustment to the next invoice */
    PQclear(
        Q(w.pg, "UPDATE invoices SET status = 'void', voided_at = now() WHERE id = $1", dec_id));
    generate(&w, "L1", "2027-01-01", "2027-02-01", st, err, sizeof err);
    PGresult *jan = invoice_of(&w, "L1", "2027-01-01 00:00:00+00");
    lines_text(&w, PQgetvalue(jan, 0, 0), lines, sizeof lines);
    PQclear(jan);
    cr_expect_str_eq(lines, "usage m_calls 0.00; usage m_gb 0.00; adjustment m_calls 1.00 14->16; "
                            "tax - 0.07");
    cr_expect_eq(tw_stop(pool, 20000), 0);
    world_free(&w);
}

/* ---- approvals and regeneration --------------------------------------------------- */

Test(invoice_gen, changed_usage_sends_an_approved_invoice_back_to_draft, .init = setup,
     .fini = teardown, .timeout = 120) {
    world w;
    world_init(&w);
    make_plan(&w,
              "{\"code\":\"ap\",\"name\":\"Ap\",\"currency\":\"JPY\",\"base_fee\":\"1000\","
              "\"charges\":[{\"metric\":\"m_calls\",\"model\":\"package\",\"unit_price\":\"500\","
              "\"package_size\":\"100\",\"included_units\":\"50\"}]}");
    make_customer(&w, "A1", "ap", NULL);
    long long c = customer_id(&w, "A1");
    usage1(&w, c, 0, "x1", "151", "2026-10-02T10:00:00Z"); /* 101 billable: 2 packages */
    tw_pool *pool = tw_start(1, NULL);
    char st[32], err[512], lines[1024];
    generate(&w, "A1", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", st, err, sizeof err);
    cr_assert_str_eq(st, "succeeded", "%s", err);
    PGresult *r = invoice_of(&w, "A1", "2026-10-01 00:00:00+00");
    char id[40];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    cr_expect_str_eq(PQgetvalue(r, 0, 3), "2140"); /* 1000 + 1000, tax 7% = 140 */
    PQclear(r);
    lines_text(&w, id, lines, sizeof lines);
    cr_expect_str_eq(lines, "base_fee - 1000; usage m_calls 1000; tax - 140");
    long long days = tw_pg_int(w.pg,
                               "SELECT count(*) FROM invoice_sub_lines WHERE invoice_id = $1::uuid "
                               "AND kind = 'day' AND day = '2026-10-02' AND quantity = 151",
                               id, NULL);
    cr_expect_eq(days, 1, "one day sub-line with the day's usage");

    PQclear(Q(w.pg, "UPDATE invoices SET status = 'approved' WHERE id = $1", id));
    generate(&w, "A1", "2026-10-01", "2026-11-01", st, err, sizeof err);
    r = invoice_of(&w, "A1", "2026-10-01 00:00:00+00");
    cr_expect_str_eq(PQgetvalue(r, 0, 1), "approved", "same content: the approval stands");
    PQclear(r);

    usage1(&w, c, 0, "x2", "100", "2026-10-30T10:00:00Z"); /* 201 billable: 3 packages */
    generate(&w, "A1", "2026-10-01", "2026-11-01", st, err, sizeof err);
    r = invoice_of(&w, "A1", "2026-10-01 00:00:00+00");
    cr_expect_str_eq(PQgetvalue(r, 0, 1), "draft", "new amounts withdraw the approval");
    cr_expect_str_eq(PQgetvalue(r, 0, 2), "2");
    cr_expect_str_eq(PQgetvalue(r, 0, 3), "2675"); /* 1000 + 1500, tax 175 */
    PQclear(r);
    r = Q(w.pg,
          "SELECT action, coalesce(from_status, ''), to_status, actor, comment "
          "  FROM invoice_actions WHERE invoice_id = $1 ORDER BY id",
          id);
    cr_assert_eq(PQntuples(r), 3);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "generate");
    cr_expect_str_eq(PQgetvalue(r, 1, 1), "approved");
    cr_expect_str_eq(PQgetvalue(r, 1, 2), "approved");
    cr_expect_str_eq(PQgetvalue(r, 2, 1), "approved");
    cr_expect_str_eq(PQgetvalue(r, 2, 2), "draft");
    cr_expect(strstr(PQgetvalue(r, 2, 4), "2140 -> 2675 JPY") != NULL, "%s", PQgetvalue(r, 2, 4));
    cr_expect(strstr(PQgetvalue(r, 2, 3), "@") != NULL, "the actor is the requesting user: %s",
              PQgetvalue(r, 2, 3));
    PQclear(r);
    cr_expect_eq(tw_stop(pool, 20000), 0);
    world_free(&w);
}

/* ---- bad requests --------------------------------------------------------------- */

typedef struct bad {
    const char *body;
    const char *field;
} bad;

static const bad k_bad_gen[] = {
    {"{\"period_start\":\"2026-10-01\",\"period_end\":\"2026-11-01\"}", "customer_id"},
    {"{\"customer_id\":\"G1\",\"period_start\":\"2026-13-01\",\"period_end\":\"2026-11-01\"}",
     "period_start"},
    {"{\"customer_id\":\"G1\",\"period_start\":\"2026-10-01T00:30:00Z\",\"period_end\":\"2026-11-"
     "01\"}",
     "period_start"},
    {"{\"customer_id\":\"G1\",\"period_start\":\"2026-10-01\",\"period_end\":\"2026-10-01\"}",
     "period_end"},
    {"{\"customer_id\":\"G1\",\"period_start\":\"2026-01-01\",\"period_end\":\"2027-01-03\"}",
     "period_end"},
    {"{\"customer_id\":\"G1\",\"period_start\":\"1999-12-01\",\"period_end\":\"2000-01-01\"}",
     "period_start"},
    {"{\"customer_id\":\"nobody\",\"period_start\":\"2026-10-01\",\"period_end\":\"2026-11-01\"}",
     "customer_id"},
    {"{\"customer_id\":\"NOPLAN\",\"period_start\":\"2026-10-01\",\"period_end\":\"2026-11-01\"}",
     "customer_id"},
    {"{\"customer_id\":\"G1\",\"period_start\":\"2026-10-01\",\"period_end\":\"2026-11-01\","
     "\"extra\":1}",
     "extra"},
    {"{\"customer_id\":7,\"period_start\":\"2026-10-01\",\"period_end\":\"2026-11-01\"}",
     "customer_id"},
};

static const bad k_bad_run[] = {
    {"{\"period\":\"2026-1\"}", "period"},
    {"{\"period\":\"2026-13\"}", "period"},
    {"{\"period\":\"1999-12\"}", "period"},
    {"{\"period\":\"2026-10-01\"}", "period"},
    {"{}", "period"},
    {"{\"period\":\"2026-10\",\"x\":true}", "x"},
};

Test(invoice_gen, bad_requests_are_precise_and_billing_runs_count_failures, .init = setup,
     .fini = teardown, .timeout = 120) {
    world w;
    world_init(&w);
    make_plan(
        &w, "{\"code\":\"g\",\"name\":\"G\",\"currency\":\"USD\",\"base_fee\":\"5\","
            "\"charges\":[{\"metric\":\"m_calls\",\"model\":\"per_unit\",\"unit_price\":\"1\"}]}");
    make_customer(&w, "G1", "g", NULL);
    make_customer(&w, "G2", "g", NULL);
    make_customer(&w, "EUR1", "g", ",\"currency\":\"EUR\""); /* cannot be priced in USD */
    th_resp r = th_auth(srv, w.token, "POST", "/v1/customers",
                        "{\"external_id\":\"NOPLAN\",\"name\":\"No plan\"}");
    must(&r, 201, "customer without plan");
    th_resp_free(&r);

    for (size_t i = 0; i < ML_ARRAY_LEN(k_bad_gen); i++) {
        r = th_auth(srv, w.token, "POST", "/v1/invoices", k_bad_gen[i].body);
        cr_expect_eq(r.status, 422, "%s -> %ld %s", k_bad_gen[i].body, r.status, r.body);
        cr_expect(th_has_field_error(&r, k_bad_gen[i].field), "%s names %s: %s", k_bad_gen[i].body,
                  k_bad_gen[i].field, r.body);
        th_resp_free(&r);
    }
    for (size_t i = 0; i < ML_ARRAY_LEN(k_bad_run); i++) {
        r = th_auth(srv, w.token, "POST", "/v1/billing-runs", k_bad_run[i].body);
        cr_expect_eq(r.status, 422, "%s -> %ld %s", k_bad_run[i].body, r.status, r.body);
        cr_expect(th_has_field_error(&r, k_bad_run[i].field), "%s names %s: %s", k_bad_run[i].body,
                  k_bad_run[i].field, r.body);
        th_resp_free(&r);
    }
    r = th_auth(srv, w.token, "POST", "/v1/invoices", "not json");
    cr_expect_eq(r.status, 400, "%s", r.body);
    th_resp_free(&r);
    long long none =
        tw_pg_int(w.pg, "SELECT count(*) FROM invoices WHERE org_id = $1::bigint", w.org_s, NULL);
    cr_expect_eq(none, 0);

    /* a second POST of the same month while the first is unfinished is that run */
    char id1[64], id2[64];
    post_ok(&w, "/v1/billing-runs", "{\"period\":\"2026-10\"}", 202, id1, "id");
    post_ok(&w, "/v1/billing-runs", "{\"period\":\"2026-10\"}", 200, id2, "id");
    cr_expect_str_eq(id1, id2);

    tw_pool *pool = tw_start(2, NULL);
    char path[128];
    snprintf(path, sizeof path, "/v1/billing-runs/%s", id1);
    json_t *run = NULL;
    for (int waited = 0; waited < 30000 && !run; waited += 100) {
        r = th_auth(srv, w.token, "GET", path, NULL);
        must(&r, 200, "get run");
        if (strcmp(th_str(r.json, "status"), "queued") &&
            strcmp(th_str(r.json, "status"), "running"))
            run = json_incref(r.json);
        th_resp_free(&r);
        if (!run) tw_msleep(100);
    }
    cr_assert_not_null(run, "the run finished");
    cr_expect_str_eq(th_str(run, "status"), "failed");
    cr_expect_eq(json_integer_value(th_get(run, "total")), 3);
    cr_expect_eq(json_integer_value(th_get(run, "done")), 2);
    cr_expect_eq(json_integer_value(th_get(run, "failed")), 1);
    cr_expect_eq(json_integer_value(th_get(run, "skipped")), 1, "NOPLAN has no plan");
    cr_expect_eq(json_integer_value(th_get(run, "progress")), 100);
    /* the run's job shows the run's progress */
    char jpath[96];
    snprintf(jpath, sizeof jpath, "/v1/jobs/%s", th_str(run, "job_id"));
    r = th_auth(srv, w.token, "GET", jpath, NULL);
    must(&r, 200, "the billing run's job");
    cr_expect_str_eq(th_str(r.json, "type"), "billing.run");
    cr_expect_eq(json_integer_value(th_get(r.json, "billing_run.total")), 3, "%s", r.body);
    cr_expect_eq(json_integer_value(th_get(r.json, "billing_run.done")), 2, "%s", r.body);
    cr_expect_eq(json_integer_value(th_get(r.json, "billing_run.failed")), 1, "%s", r.body);
    cr_expect_eq(json_integer_value(th_get(r.json, "progress")), 100, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "progress_msg"), "2 of 3 customers done, 1 failed");
    th_resp_free(&r);
    json_t *f = json_array_get(th_get(run, "failures"), 0);
    cr_expect_str_eq(th_str(f, "customer_id"), "EUR1");
    cr_expect(strstr(th_str(f, "error"), "EUR") != NULL, "%s", th_str(f, "error"));
    json_decref(run);

    /* listing */
    r = th_auth(srv, w.token, "GET", "/v1/billing-runs?limit=1", NULL);
    must(&r, 200, "list runs");
    cr_expect_eq(json_array_size(th_get(r.json, "data")), 1);
    cr_expect_str_eq(th_str(json_array_get(th_get(r.json, "data"), 0), "id"), id1);
    th_resp_free(&r);

    /* an overlapping period of another length is refused by the job */
    char st[32], err[512];
    generate(&w, "G1", "2026-10-15", "2026-11-15", st, err, sizeof err);
    cr_expect_str_eq(st, "dead");
    cr_expect(strstr(err, "overlaps") != NULL, "%s", err);
    long long n =
        tw_pg_int(w.pg,
                  "SELECT count(*) FROM invoices i JOIN customers c ON c.id = i.customer_id"
                  " WHERE i.org_id = $1::bigint AND c.external_id = 'G1'",
                  w.org_s, NULL);
    cr_expect_eq(n, 1);

    /* other organizations' billing runs are not found */
    char other[128];
    th_signup(srv, other, NULL, NULL);
    r = th_auth(srv, other, "GET", path, NULL);
    cr_expect_eq(r.status, 404);
    th_resp_free(&r);
    r = th_auth(
        srv, other, "POST", "/v1/invoices",
        "{\"customer_id\":\"G1\",\"period_start\":\"2026-10-01\",\"period_end\":\"2026-11-01\"}");
    cr_expect_eq(r.status, 422, "another organization's customer is unknown: %s", r.body);
    th_resp_free(&r);
    cr_expect_eq(tw_stop(pool, 20000), 0);
    world_free(&w);
}

Test(invoice_gen, unique_count_bills_distinct_values_of_the_period, .init = setup, .fini = teardown,
     .timeout = 120) {
    world w;
    world_init(&w);
    make_plan(&w, "{\"code\":\"u\",\"name\":\"U\",\"currency\":\"USD\",\"charges\":["
                  "{\"metric\":\"m_users\",\"model\":\"per_unit\",\"unit_price\":\"2\"}]}");
    make_customer(&w, "U1", "u", NULL);
    long long c = customer_id(&w, "U1");
    static const struct {
        const char *id, *user, *at;
    } k[] = {
        {"u1", "{\"user\":\"ann\"}", "2026-10-01T01:00:00Z"},
        {"u2", "{\"user\":\"bob\"}", "2026-10-01T02:00:00Z"},
        {"u3", "{\"user\":\"ann\"}", "2026-10-02T03:00:00Z"},
        {"u4", "{\"user\":\"cid\"}", "2026-10-31T23:59:59Z"},
        {"u5", "{\"other\":\"dan\"}", "2026-10-05T00:00:00Z"}, /* no user: not counted */
        {"u6", "{\"user\":\"eve\"}", "2026-11-01T00:00:00Z"},  /* next period */
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(k); i++) {
        ev e = {.cust = c, .metric = 4, .props = k[i].user};
        snprintf(e.id, sizeof e.id, "%s", k[i].id);
        snprintf(e.qty, sizeof e.qty, "1");
        snprintf(e.at, sizeof e.at, "%s", k[i].at);
        store(&w, &e, 1);
    }
    tw_pool *pool = tw_start(1, NULL);
    char st[32], err[512], lines[512];
    generate(&w, "U1", "2026-10-01", "2026-11-01", st, err, sizeof err);
    cr_assert_str_eq(st, "succeeded", "%s", err);
    PGresult *r = invoice_of(&w, "U1", "2026-10-01 00:00:00+00");
    char id[40];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    lines_text(&w, id, lines, sizeof lines);
    cr_expect_str_eq(lines, "usage m_users 6.00; tax - 0.42"); /* ann, bob, cid */
    r = Q(w.pg,
          "SELECT string_agg(day::text || '=' || trim_scale(quantity)::text, ' ' ORDER BY day) "
          "  FROM invoice_sub_lines WHERE invoice_id = $1 AND kind = 'day'",
          id);
    cr_expect_str_eq(PQgetvalue(r, 0, 0), "2026-10-01=2 2026-10-02=1 2026-10-31=1");
    PQclear(r);
    cr_expect_eq(tw_stop(pool, 20000), 0);
    world_free(&w);
}
