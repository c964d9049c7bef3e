/* test_matrix.c — who may call what, and nobody sees another organization.
 *
 * Role matrix: every authenticated route of the contract is one row of
 * k_rows below, with the principals the contract (API.md) allows:
 *   owner     everything of the organization
 *   finance   writes customers, metrics and plans; reads everything but users/keys
 *   approver  read only          viewer   read only
 *   only the owner manages users and API keys; platform-admin routes: nobody here
 *   key read         GETs of customers, metrics, plans, usage, jobs and GET /v1/me
 *   key usage:write  GET /v1/me, POST /v1/usage, CSV imports, GET /v1/jobs/{id}
 *   jobs             GET /v1/jobs/{id}: every role, read and usage:write keys; the queue's
 *                    admin routes (counts, retry of a dead job): nobody here
 *   invoices         generate (POST /v1/invoices, billing runs), submit, issue, void,
 *                    mark-paid: owner and finance; approve, reject: owner and approver;
 *                    reading invoices, their trail, billing runs and disputes: every role
 *                    and read keys; opening a dispute and writing in one: every role but
 *                    viewer; resolving one: owner and finance.  API keys never change
 *                    an invoice or a dispute.
 *   reports          requesting a PDF report: every role (viewers too), no API key;
 *                    reading reports, downloads and invoice PDFs: every role and
 *                    read keys.
 * The expectation is written from that contract, never read from api_routes[]
 * at run time, so a wrong entry in the route table fails here.  The table is
 * checked against api_routes[] only for coverage: a new authenticated route
 * without a row fails `table_covers_every_authenticated_route`.
 *
 * Each row's probe is a real, valid request, so an allowed caller gets one
 * exact status (201/200/204), a refused one exactly 403 forbidden — and for
 * writes the test checks that a 403 wrote nothing.  Invoice transitions act
 * on a fresh invoice seeded (with SQL) in the state the row names, and the
 * test checks its state afterwards: moved iff allowed; resolving acts on a
 * fresh open dispute, resolved iff allowed.
 *
 * Isolation: organization B (its owner and its read key) addressing A's
 * objects by id or code always gets 404, B's listings never show them, codes
 * resolve inside the caller's organization only (422), and ?org=<other> is 404.
 * Jobs live in Redis: each world enqueues its own with jq (org = its id), one
 * left queued and one made dead by a fake worker.
 */
#include "fmacros.h"
#include "th.h"
#include "api.h"
#include "jq.h"
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdlib.h>

static th_server *srv;

static void setup(void) { srv = th_start(NULL); }
static void teardown(void) { cr_expect_eq(th_stop(srv), 0, "billing-api must exit 0 on SIGTERM"); }

/* ---- principals --------------------------------------------------------- */

enum { P_OWNER, P_FINANCE, P_APPROVER, P_VIEWER, P_KEY_READ, P_KEY_USAGE, P_N };
static const char *const k_pname[P_N] = {"owner",  "finance",  "approver",
                                         "viewer", "key:read", "key:usage:write"};

#define B(p)        (1u << (p))
#define ROLES4      (B(P_OWNER) | B(P_FINANCE) | B(P_APPROVER) | B(P_VIEWER))
#define WRITERS     (B(P_OWNER) | B(P_FINANCE))
#define OWNER_ONLY  B(P_OWNER)
#define READERS     (ROLES4 | B(P_KEY_READ))
#define NOBODY_HERE 0u

/* row flags */
enum {
    ENDS_SESSION = 1 << 0,  /* the call logs out: use a throw-away session */
    NEEDS_KEY = 1 << 1,     /* {key} is a fresh API key made for this call */
    KEEPS_DEAD = 1 << 2,    /* a refused call left {dead} dead (an allowed one revived it) */
    CSV_BODY = 1 << 3,      /* the body is a CSV file (Content-Type: text/csv) */
    NEEDS_DISPUTE = 1 << 4, /* {newdisp} is a fresh open dispute: resolved iff allowed */
};

typedef struct row {
    const char *method;
    const char *pattern; /* the contract's path, as the route table spells it */
    const char *path;    /* request path; {u} {cust} {metric} {plan} {key} {job} {dead} */
    const char *body;    /* NULL = no body; same placeholders */
    int ok;              /* exact status an allowed caller gets for this probe */
    unsigned allow;      /* principals allowed (B(P_*)), from the contract */
    unsigned flags;
    const char *check; /* for writes: GET as owner afterwards; 200 iff allowed */
} row;

/* Invoice transitions: {newinv} is a fresh invoice in state `from`, in state
 * `to` after an allowed call and still in `from` after a refused one. */
typedef struct inv_move {
    const char *pattern, *from, *to;
} inv_move;
static const inv_move k_moves[] = {
    {"/v1/invoices/{id}/submit", "draft", "pending_approval"},
    {"/v1/invoices/{id}/approve", "pending_approval", "approved"},
    {"/v1/invoices/{id}/reject", "pending_approval", "draft"},
    {"/v1/invoices/{id}/issue", "approved", "issued"},
    {"/v1/invoices/{id}/void", "draft", "void"},
    {"/v1/invoices/{id}/mark-paid", "issued", "paid"},
};

static const inv_move *move_of(const char *pattern) {
    for (size_t i = 0; i < ML_ARRAY_LEN(k_moves); i++)
        if (!strcmp(k_moves[i].pattern, pattern)) return &k_moves[i];
    return NULL;
}

#define INVOICE_APPROVERS (B(P_OWNER) | B(P_APPROVER))
#define DISPUTE_WRITERS   (B(P_OWNER) | B(P_FINANCE) | B(P_APPROVER))

static const row k_rows[] = {
    /* accounts */
    {"DELETE", "/v1/sessions/current", "/v1/sessions/current", NULL, 204, ROLES4, ENDS_SESSION,
     NULL},
    {"GET", "/v1/me", "/v1/me", NULL, 200, ROLES4 | B(P_KEY_READ) | B(P_KEY_USAGE), 0, NULL},
    {"POST", "/v1/users", "/v1/users",
     "{\"name\":\"U {u}\",\"email\":\"mx-{u}@example.test\",\"password\":\"" TH_PASSWORD
     "\",\"role\":\"viewer\"}",
     201, OWNER_ONLY, 0, NULL},
    {"GET", "/v1/users", "/v1/users", NULL, 200, OWNER_ONLY, 0, NULL},
    {"POST", "/v1/api-keys", "/v1/api-keys", "{\"name\":\"k {u}\",\"scopes\":[\"read\"]}", 201,
     OWNER_ONLY, 0, NULL},
    {"GET", "/v1/api-keys", "/v1/api-keys", NULL, 200, OWNER_ONLY, 0, NULL},
    {"DELETE", "/v1/api-keys/{id}", "/v1/api-keys/{key}", NULL, 204, OWNER_ONLY, NEEDS_KEY, NULL},
    {"GET", "/v1/admin/organizations", "/v1/admin/organizations", NULL, 200, NOBODY_HERE, 0, NULL},
    /* the organization's PDF template override: everyone reads, the owner writes */
    {"GET", "/v1/organization/template", "/v1/organization/template", NULL, 200, READERS, 0, NULL},
    {"PUT", "/v1/organization/template", "/v1/organization/template",
     "{\"template\":{\"footer\":\"Thank you {u}\"}}", 200, OWNER_ONLY, 0, NULL},
    /* customers */
    {"POST", "/v1/customers", "/v1/customers", "{\"external_id\":\"c-{u}\",\"name\":\"C {u}\"}",
     201, WRITERS, 0, "/v1/customers/c-{u}"},
    {"GET", "/v1/customers", "/v1/customers", NULL, 200, READERS, 0, NULL},
    {"GET", "/v1/customers/{external_id}", "/v1/customers/{cust}", NULL, 200, READERS, 0, NULL},
    {"PATCH", "/v1/customers/{external_id}", "/v1/customers/{cust}", "{\"name\":\"Renamed {u}\"}",
     200, WRITERS, 0, NULL},
    /* metrics */
    {"POST", "/v1/metrics", "/v1/metrics",
     "{\"code\":\"m-{u}\",\"name\":\"M\",\"aggregation\":\"sum\"}", 201, WRITERS, 0,
     "/v1/metrics/m-{u}"},
    {"GET", "/v1/metrics", "/v1/metrics", NULL, 200, READERS, 0, NULL},
    {"GET", "/v1/metrics/{code}", "/v1/metrics/{metric}", NULL, 200, READERS, 0, NULL},
    /* plans */
    {"POST", "/v1/plans", "/v1/plans",
     "{\"code\":\"p-{u}\",\"name\":\"P\",\"currency\":\"USD\",\"charges\":[{\"metric\":"
     "\"{metric}\",\"model\":\"per_unit\",\"unit_price\":\"0.01\"}]}",
     201, WRITERS, 0, "/v1/plans/p-{u}"},
    {"GET", "/v1/plans", "/v1/plans", NULL, 200, READERS, 0, NULL},
    {"GET", "/v1/plans/{code}", "/v1/plans/{plan}", NULL, 200, READERS, 0, NULL},
    /* usage */
    {"POST", "/v1/usage", "/v1/usage",
     "{\"event_id\":\"mx-{u}\",\"customer_id\":\"{cust}\",\"metric\":\"{metric}\"}", 202,
     WRITERS | B(P_KEY_USAGE), 0, NULL},
    /* usage read back: every role and read keys */
    {"GET", "/v1/usage", "/v1/usage?customer_id={cust}&limit=10", NULL, 200, READERS, 0, NULL},
    {"GET", "/v1/usage/aggregate",
     "/v1/usage/aggregate?from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z&granularity=hour", NULL,
     200, READERS, 0, NULL},
    /* CSV imports (the GET of one probes a missing id: 404 when allowed) */
    {"POST", "/v1/usage/imports", "/v1/usage/imports", "event_id,customer_id,metric\nm-{u},c,m\n",
     202, WRITERS | B(P_KEY_USAGE), CSV_BODY, NULL},
    {"GET", "/v1/usage/imports", "/v1/usage/imports", NULL, 200, READERS, 0, NULL},
    {"GET", "/v1/usage/imports/{id}", "/v1/usage/imports/00000000-0000-4000-8000-000000000000",
     NULL, 404, READERS | B(P_KEY_USAGE), 0, NULL},
    /* PDF reports (the GETs of one probe a missing id: 404 when allowed; the
     * draft invoice has no PDF: 409 when allowed) */
    {"POST", "/v1/reports", "/v1/reports", "{\"kind\":\"invoice\",\"invoice_id\":\"{inv}\"}", 202,
     ROLES4, 0, NULL},
    {"GET", "/v1/reports", "/v1/reports", NULL, 200, READERS, 0, NULL},
    {"GET", "/v1/reports/{id}", "/v1/reports/00000000-0000-4000-8000-000000000000", NULL, 404,
     READERS, 0, NULL},
    {"GET", "/v1/reports/{id}/download",
     "/v1/reports/00000000-0000-4000-8000-000000000000/download", NULL, 404, READERS, 0, NULL},
    {"GET", "/v1/invoices/{id}/pdf", "/v1/invoices/{inv}/pdf", NULL, 409, READERS, 0, NULL},
    /* jobs */
    {"GET", "/v1/jobs/{id}", "/v1/jobs/{job}", NULL, 200, READERS | B(P_KEY_USAGE), 0, NULL},
    {"GET", "/v1/admin/queues", "/v1/admin/queues", NULL, 200, NOBODY_HERE, 0, NULL},
    {"POST", "/v1/admin/jobs/{id}/retry", "/v1/admin/jobs/{dead}/retry", NULL, 200, NOBODY_HERE,
     KEEPS_DEAD, NULL},
    /* invoice generation: jobs (202) */
    {"POST", "/v1/invoices", "/v1/invoices",
     "{\"customer_id\":\"{cust}\",\"period_start\":\"2026-10-01\",\"period_end\":\"2026-11-01\"}",
     202, WRITERS, 0, NULL},
    {"POST", "/v1/billing-runs", "/v1/billing-runs", "{\"period\":\"2026-10\"}", 202, WRITERS, 0,
     NULL},
    {"GET", "/v1/billing-runs", "/v1/billing-runs", NULL, 200, READERS, 0, NULL},
    {"GET", "/v1/billing-runs/{id}", "/v1/billing-runs/00000000-0000-4000-8000-000000000000", NULL,
     404, READERS, 0, NULL},
    /* invoices: read */
    {"GET", "/v1/invoices", "/v1/invoices", NULL, 200, READERS, 0, NULL},
    {"GET", "/v1/invoices/{id}", "/v1/invoices/{inv}", NULL, 200, READERS, 0, NULL},
    {"GET", "/v1/invoices/{id}/actions", "/v1/invoices/{inv}/actions", NULL, 200, READERS, 0, NULL},
    /* invoices: lifecycle, each on a fresh invoice in the state it leaves */
    {"POST", "/v1/invoices/{id}/submit", "/v1/invoices/{newinv}/submit", "{}", 200, WRITERS, 0,
     NULL},
    {"POST", "/v1/invoices/{id}/approve", "/v1/invoices/{newinv}/approve", "{}", 200,
     INVOICE_APPROVERS, 0, NULL},
    {"POST", "/v1/invoices/{id}/reject", "/v1/invoices/{newinv}/reject", "{\"comment\":\"no\"}",
     200, INVOICE_APPROVERS, 0, NULL},
    {"POST", "/v1/invoices/{id}/issue", "/v1/invoices/{newinv}/issue", "{}", 200, WRITERS, 0, NULL},
    {"POST", "/v1/invoices/{id}/void", "/v1/invoices/{newinv}/void", "{}", 200, WRITERS, 0, NULL},
    {"POST", "/v1/invoices/{id}/mark-paid", "/v1/invoices/{newinv}/mark-paid", "{}", 200, WRITERS,
     0, NULL},
    /* disputes */
    {"POST", "/v1/invoices/{id}/disputes", "/v1/invoices/{inv}/disputes",
     "{\"message\":\"why {u}?\"}", 201, DISPUTE_WRITERS, 0, NULL},
    {"GET", "/v1/disputes", "/v1/disputes", NULL, 200, READERS, 0, NULL},
    {"GET", "/v1/disputes/{id}", "/v1/disputes/{disp}", NULL, 200, READERS, 0, NULL},
    {"POST", "/v1/disputes/{id}/messages", "/v1/disputes/{disp}/messages",
     "{\"message\":\"and {u}\"}", 201, DISPUTE_WRITERS, 0, NULL},
    {"POST", "/v1/disputes/{id}/resolve", "/v1/disputes/{newdisp}/resolve", "{}", 200, WRITERS,
     NEEDS_DISPUTE, NULL},
};

/* ---- helpers ------------------------------------------------------------ */

typedef struct world {
    char slug[64];
    char tok[P_N][128];   /* session tokens and API keys */
    char email[P_N][128]; /* session principals */
    char cust[64], metric[64], plan[64];
    long long org_id;
    char job[JQ_ID_MAX], dead[JQ_ID_MAX]; /* a queued and a dead job of the org */
    char cust_id[24];                     /* customers.id of cust */
    char inv[40], disp[40];               /* a draft invoice and an open dispute on it */
    int ninv;                             /* invoices seeded so far (distinct periods) */
    char newinv[40], newdisp[40];         /* the fresh ones of the current row */
} world;

/* tmpl with {u} {cust} {metric} {plan} {key} {job} {dead} {inv} {disp} {newinv}
 * {newdisp} replaced; malloc'd. */
static char *subst(const char *tmpl, const world *w, const char *u, const char *key) {
    if (!tmpl) return NULL;
    size_t cap = strlen(tmpl) * 2 + 512, n = 0;
    char *out = malloc(cap);
    cr_assert(out);
    for (const char *p = tmpl; *p;) {
        const char *v = NULL;
        size_t skip = 0;
        static const char *const names[] = {"{u}",    "{cust}",   "{metric}", "{plan}",
                                            "{key}",  "{job}",    "{dead}",   "{inv}",
                                            "{disp}", "{newinv}", "{newdisp}"};
        const char *vals[] = {u,       w->cust, w->metric, w->plan,   key ? key : "", w->job,
                              w->dead, w->inv,  w->disp,   w->newinv, w->newdisp};
        for (size_t i = 0; i < ML_ARRAY_LEN(names); i++) {
            size_t l = strlen(names[i]);
            if (!strncmp(p, names[i], l)) {
                v = vals[i];
                skip = l;
                break;
            }
        }
        if (v) {
            size_t l = strlen(v);
            cr_assert(n + l + 1 < cap);
            memcpy(out + n, v, l);
            n += l;
            p += skip;
        } else {
            cr_assert(n + 2 < cap);
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

static void copy_str(char *dst, size_t cap, const char *src) {
    cr_assert(strlen(src) < cap, "value too long: %s", src);
    snprintf(dst, cap, "%s", src);
}

static void login(const char *email, char out[128]) {
    char body[512];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, TH_PASSWORD);
    th_resp r = th_req(srv, "POST", "/v1/sessions", NULL, body);
    cr_assert_eq(r.status, 201, "login %s: %ld %s", email, r.status, r.body);
    copy_str(out, 128, th_str(r.json, "token"));
    th_resp_free(&r);
}

/* Owner creates an API key; id and key out (either may be NULL). */
static void make_key(const char *owner, const char *scope, char id[64], char key[128]) {
    char body[128];
    snprintf(body, sizeof body, "{\"name\":\"%s key\",\"scopes\":[\"%s\"]}", scope, scope);
    th_resp r = th_auth(srv, owner, "POST", "/v1/api-keys", body);
    cr_assert_eq(r.status, 201, "create key: %ld %s", r.status, r.body);
    if (id) copy_str(id, 64, th_str(r.json, "id"));
    if (key) copy_str(key, 128, th_str(r.json, "key"));
    th_resp_free(&r);
}

static void post_ok(const char *token, const char *path, const char *body) {
    th_resp r = th_auth(srv, token, "POST", path, body);
    cr_assert_eq(r.status, 201, "POST %s %s: %ld %s", path, body, r.status, r.body);
    th_resp_free(&r);
}

static jq *open_q(void) {
    char err[256];
    const char *url = getenv("BILLING_REDIS_URL");
    cr_assert(url, "run through scripts/test");
    jq *q = jq_open(url, err, sizeof err);
    cr_assert(q, "%s", err);
    return q;
}

/* Two jobs of w's organization, straight into the queue: w->job stays
 * queued; w->dead is reserved and failed for good by a fake worker. */
static void make_jobs(world *w, const char *u) {
    jq *q = open_q();
    char type[64], err[256];
    snprintf(type, sizeof type, "t.matrix.%s", u);
    cr_assert_eq(jq_enqueue(q, type, w->org_id, "{}", NULL, w->job, NULL, err, sizeof err), JQ_OK,
                 "%s", err);
    char t2[80];
    snprintf(t2, sizeof t2, "%s.dead", type);
    cr_assert_eq(jq_enqueue(q, t2, w->org_id, "{}", NULL, w->dead, NULL, err, sizeof err), JQ_OK,
                 "%s", err);
    const char *types[] = {t2};
    jq_job j;
    cr_assert_eq(jq_reserve(q, types, 1, "matrix", &j, 1, err, sizeof err), 1, "%s", err);
    cr_assert_str_eq(j.id, w->dead);
    jq_job_clear(&j);
    bool dead = false;
    cr_assert_eq(jq_fail(q, w->dead, "matrix", "boom", true, &dead, err, sizeof err), JQ_OK, "%s",
                 err);
    cr_assert(dead);
    jq_close(q);
}

/* The state of job id as the owner of w sees it ("" if not 200). */
static void job_state(const world *w, const char *id, char out[32]) {
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    th_resp r = th_auth(srv, w->tok[P_OWNER], "GET", path, NULL);
    snprintf(out, 32, "%s", r.status == 200 ? th_str(r.json, "state") : "");
    th_resp_free(&r);
}

/* ---- invoices and disputes, straight into PostgreSQL -------------------- */

static PGresult *pg_exec(PGconn *c, const char *sql, int n, const char *const *params) {
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
        PQclear(r);
        cr_assert_fail("%s: %s", sql, msg);
    }
    return r;
}

/* First value of a one-row query into out. */
static void pg_one(const char *sql, int n, const char *const *params, char *out, size_t cap) {
    PGconn *c = th_pg();
    PGresult *r = pg_exec(c, sql, n, params);
    bool one = PQntuples(r) == 1;
    if (one) snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    cr_assert(one, "%s: not one row", sql);
}

/* A fresh invoice of w's customer in state st (its own month), id into out. */
static void seed_invoice(world *w, const char *st, char out[40]) {
    char org[24], month[8];
    snprintf(org, sizeof org, "%lld", w->org_id);
    snprintf(month, sizeof month, "%d", w->ninv++);
    const char *p[] = {org, w->cust_id, st, month};
    pg_one("INSERT INTO invoices (org_id, customer_id, period_start, period_end, status, currency, "
           "number, issued_at) VALUES ($1, $2, '2020-01-01'::timestamptz + $4::int * interval "
           "'1 month', '2020-01-01'::timestamptz + ($4::int + 1) * interval '1 month', $3, 'USD', "
           "CASE WHEN $3 = 'issued' THEN 'MX-' || $4 END, CASE WHEN $3 = 'issued' THEN now() END) "
           "RETURNING id",
           4, p, out, 40);
}

static void seed_dispute(const world *w, char out[40]) {
    char org[24];
    snprintf(org, sizeof org, "%lld", w->org_id);
    const char *p[] = {org, w->inv};
    pg_one("WITH d AS (INSERT INTO invoice_disputes (org_id, invoice_id, opened_by) "
           "VALUES ($1, $2::uuid, 'seed') RETURNING id), "
           "m AS (INSERT INTO invoice_dispute_messages (dispute_id, org_id, author, author_role, "
           "body) SELECT id, $1, 'seed', 'owner', 'seeded' FROM d) SELECT id FROM d",
           2, p, out, 40);
}

static void row_state(const char *table, const char *id, char out[32]) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT status FROM %s WHERE id = $1::uuid", table);
    const char *p[] = {id};
    pg_one(sql, 1, p, out, 32);
}

/* A new organization with one of each principal and a customer, metric,
 * plan, two jobs, a draft invoice and an open dispute to address. */
static void make_world(world *w) {
    char u[32], body[512];
    th_unique(u);
    th_signup(srv, w->tok[P_OWNER], w->slug, w->email[P_OWNER]);
    static const char *const roles[] = {NULL, "finance", "approver", "viewer"};
    for (int p = P_FINANCE; p <= P_VIEWER; p++) {
        char t[64];
        th_user_with_role(srv, w->tok[P_OWNER], roles[p], t);
        copy_str(w->tok[p], sizeof w->tok[p], t);
        th_resp r = th_auth(srv, t, "GET", "/v1/me", NULL);
        cr_assert_eq(r.status, 200, "%s", r.body);
        cr_assert_str_eq(th_str(r.json, "user.role"), roles[p]);
        copy_str(w->email[p], sizeof w->email[p], th_str(r.json, "user.email"));
        th_resp_free(&r);
    }
    make_key(w->tok[P_OWNER], "read", NULL, w->tok[P_KEY_READ]);
    make_key(w->tok[P_OWNER], "usage:write", NULL, w->tok[P_KEY_USAGE]);
    th_resp me = th_auth(srv, w->tok[P_OWNER], "GET", "/v1/me", NULL);
    cr_assert_eq(me.status, 200, "%s", me.body);
    w->org_id = json_integer_value(th_get(me.json, "organization.id"));
    cr_assert_gt(w->org_id, 0, "no organization.id in %s", me.body);
    th_resp_free(&me);
    make_jobs(w, u);
    snprintf(w->cust, sizeof w->cust, "cust-%s", u);
    snprintf(w->metric, sizeof w->metric, "calls-%s", u);
    snprintf(w->plan, sizeof w->plan, "plan-%s", u);
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"name\":\"Calls\",\"aggregation\":\"sum\"}",
             w->metric);
    post_ok(w->tok[P_OWNER], "/v1/metrics", body);
    snprintf(body, sizeof body,
             "{\"code\":\"%s\",\"name\":\"Plan\",\"currency\":\"USD\",\"charges\":[{\"metric\":"
             "\"%s\",\"model\":\"per_unit\",\"unit_price\":\"0.5\"}]}",
             w->plan, w->metric);
    post_ok(w->tok[P_OWNER], "/v1/plans", body);
    snprintf(body, sizeof body, "{\"external_id\":\"%s\",\"name\":\"Cust\",\"plan\":\"%s\"}",
             w->cust, w->plan);
    post_ok(w->tok[P_OWNER], "/v1/customers", body);
    char org[24];
    snprintf(org, sizeof org, "%lld", w->org_id);
    const char *p[] = {org, w->cust};
    pg_one("SELECT id FROM customers WHERE org_id = $1 AND external_id = $2", 2, p, w->cust_id,
           sizeof w->cust_id);
    seed_invoice(w, "draft", w->inv);
    seed_dispute(w, w->disp);
}

/* th_auth, with a CSV content type for CSV_BODY rows. */
static th_resp call_row(const row *rw, const char *token, const char *path, const char *body) {
    if (!(rw->flags & CSV_BODY)) return th_auth(srv, token, rw->method, path, body);
    char h[256];
    snprintf(h, sizeof h, "Authorization: Bearer %s", token ? token : "");
    const char *hs[] = {h, "Content-Type: text/csv", NULL};
    return th_req(srv, rw->method, path, token ? hs : hs + 1, body);
}

static bool is_key(int p) { return p == P_KEY_READ || p == P_KEY_USAGE; }

/* Runs every row as principal p and checks the exact outcome. */
static void run_matrix(int p) {
    world w;
    memset(&w, 0, sizeof w);
    make_world(&w);
    for (size_t i = 0; i < ML_ARRAY_LEN(k_rows); i++) {
        const row *rw = &k_rows[i];
        bool allowed = rw->allow & B(p);
        char u[32], key_id[64] = "", key[128] = "", token[128];
        th_unique(u);
        copy_str(token, sizeof token, w.tok[p]);
        if ((rw->flags & ENDS_SESSION) && !is_key(p)) login(w.email[p], token);
        if (rw->flags & NEEDS_KEY) make_key(w.tok[P_OWNER], "read", key_id, key);
        const inv_move *mv = move_of(rw->pattern);
        if (mv) seed_invoice(&w, mv->from, w.newinv);
        if (rw->flags & NEEDS_DISPUTE) seed_dispute(&w, w.newdisp);
        char *path = subst(rw->path, &w, u, key_id);
        char *body = subst(rw->body, &w, u, key_id);
        th_resp r = call_row(rw, token, path, body);
        if (allowed) {
            cr_expect_eq(r.status, rw->ok,
                         "%s %s as %s: allowed by the contract, want %d, got %ld %s", rw->method,
                         rw->pattern, k_pname[p], rw->ok, r.status, r.body);
        } else {
            cr_expect_eq(r.status, 403, "%s %s as %s: forbidden by the contract, got %ld %s",
                         rw->method, rw->pattern, k_pname[p], r.status, r.body);
            cr_expect_str_eq(th_err_code(&r), "forbidden", "%s %s as %s", rw->method, rw->pattern,
                             k_pname[p]);
        }
        th_resp_free(&r);

        /* side effects: a 403 changed nothing, an allowed call did its job */
        if (rw->check) {
            char *chk = subst(rw->check, &w, u, key_id);
            r = th_auth(srv, w.tok[P_OWNER], "GET", chk, NULL);
            cr_expect_eq(r.status, allowed ? 200 : 404, "%s %s as %s: afterwards GET %s -> %ld",
                         rw->method, rw->pattern, k_pname[p], chk, r.status);
            th_resp_free(&r);
            free(chk);
        }
        if (rw->flags & NEEDS_KEY) {
            r = th_auth(srv, key, "GET", "/v1/me", NULL);
            cr_expect_eq(r.status, allowed ? 401 : 200, "%s %s as %s: the key afterwards -> %ld",
                         rw->method, rw->pattern, k_pname[p], r.status);
            th_resp_free(&r);
        }
        if (rw->flags & ENDS_SESSION) {
            r = th_auth(srv, token, "GET", "/v1/me", NULL);
            cr_expect_eq(r.status, allowed ? 401 : 200, "%s %s as %s: the token afterwards -> %ld",
                         rw->method, rw->pattern, k_pname[p], r.status);
            th_resp_free(&r);
        }
        if (rw->flags & KEEPS_DEAD) {
            char st[32];
            job_state(&w, w.dead, st);
            cr_expect_str_eq(st, allowed ? "queued" : "dead", "%s %s as %s: the job afterwards",
                             rw->method, rw->pattern, k_pname[p]);
        }
        if (mv) {
            char st[32];
            row_state("invoices", w.newinv, st);
            cr_expect_str_eq(st, allowed ? mv->to : mv->from, "%s %s as %s: the invoice afterwards",
                             rw->method, rw->pattern, k_pname[p]);
        }
        if (rw->flags & NEEDS_DISPUTE) {
            char st[32];
            row_state("invoice_disputes", w.newdisp, st);
            cr_expect_str_eq(st, allowed ? "resolved" : "open",
                             "%s %s as %s: the dispute afterwards", rw->method, rw->pattern,
                             k_pname[p]);
        }
        if (!strcmp(rw->method, "PATCH") && !allowed) {
            r = th_auth(srv, w.tok[P_OWNER], "GET", path, NULL);
            cr_expect_str_eq(th_str(r.json, "name"), "Cust", "a refused PATCH changed the name");
            th_resp_free(&r);
        }
        free(path);
        free(body);
    }
    /* the principal's own credential still works (no row ended it by mistake) */
    th_resp r = th_auth(srv, w.tok[p], "GET", "/v1/me", NULL);
    cr_expect_eq(r.status, 200, "%s after the matrix: %ld", k_pname[p], r.status);
    th_resp_free(&r);
}

/* ---- role matrix -------------------------------------------------------- */

TestSuite(matrix, .init = setup, .fini = teardown);

Test(matrix, table_covers_every_authenticated_route) {
    cr_assert_gt(api_nroutes, 0);
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route *rt = &api_routes[i];
        if (rt->flags & RT_PUBLIC) continue;
        bool found = false;
        for (size_t k = 0; k < ML_ARRAY_LEN(k_rows) && !found; k++)
            found =
                !strcmp(k_rows[k].method, rt->method) && !strcmp(k_rows[k].pattern, rt->pattern);
        cr_expect(found, "route %s %s (%s) requires auth but has no row in the role matrix",
                  rt->method, rt->pattern, rt->name);
    }
    /* and every row is a real, authenticated route (no stale or public rows) */
    for (size_t k = 0; k < ML_ARRAY_LEN(k_rows); k++) {
        const api_route *hit = NULL;
        for (size_t i = 0; i < api_nroutes && !hit; i++)
            if (!strcmp(k_rows[k].method, api_routes[i].method) &&
                !strcmp(k_rows[k].pattern, api_routes[i].pattern))
                hit = &api_routes[i];
        cr_expect(hit != NULL, "matrix row %s %s is not in api_routes[]", k_rows[k].method,
                  k_rows[k].pattern);
        if (hit)
            cr_expect(!(hit->flags & RT_PUBLIC), "%s %s must require authentication",
                      k_rows[k].method, k_rows[k].pattern);
    }
}

Test(matrix, owner) { run_matrix(P_OWNER); }
Test(matrix, finance) { run_matrix(P_FINANCE); }
Test(matrix, approver) { run_matrix(P_APPROVER); }
Test(matrix, viewer) { run_matrix(P_VIEWER); }
Test(matrix, api_key_read) { run_matrix(P_KEY_READ); }
Test(matrix, api_key_usage_write) { run_matrix(P_KEY_USAGE); }

Test(matrix, every_authenticated_route_is_401_without_valid_credentials) {
    world w;
    memset(&w, 0, sizeof w);
    make_world(&w);
    char key_id[64];
    make_key(w.tok[P_OWNER], "read", key_id, NULL);
    static const char *const bad[] = {NULL, "ms_not-a-real-session-token", "mk_not-a-real-api-key",
                                      ""};
    for (size_t i = 0; i < ML_ARRAY_LEN(k_rows); i++) {
        const row *rw = &k_rows[i];
        char u[32];
        th_unique(u);
        const inv_move *mv = move_of(rw->pattern);
        if (mv) seed_invoice(&w, mv->from, w.newinv);
        if (rw->flags & NEEDS_DISPUTE) seed_dispute(&w, w.newdisp);
        char *path = subst(rw->path, &w, u, key_id);
        char *body = subst(rw->body, &w, u, key_id);
        for (size_t b = 0; b < ML_ARRAY_LEN(bad); b++) {
            th_resp r;
            if (bad[b] && !*bad[b]) {
                const char *h[] = {"Authorization: Bearer ", NULL};
                r = th_req(srv, rw->method, path, h, body);
            } else {
                r = th_auth(srv, bad[b], rw->method, path, body);
            }
            cr_expect_eq(r.status, 401, "%s %s with credential '%s': %ld %s", rw->method,
                         rw->pattern, bad[b] ? bad[b] : "(none)", r.status, r.body);
            cr_expect_str_eq(th_err_code(&r), "unauthenticated", "%s %s", rw->method, rw->pattern);
            char wa[128];
            cr_expect(th_header(&r, "WWW-Authenticate", wa, sizeof wa) && !strncmp(wa, "Bearer", 6),
                      "%s %s: 401 without WWW-Authenticate: Bearer", rw->method, rw->pattern);
            th_resp_free(&r);
        }
        if (rw->check) {
            char *chk = subst(rw->check, &w, u, key_id);
            th_resp r = th_auth(srv, w.tok[P_OWNER], "GET", chk, NULL);
            cr_expect_eq(r.status, 404, "an unauthenticated %s %s wrote %s", rw->method,
                         rw->pattern, chk);
            th_resp_free(&r);
            free(chk);
        }
        if (rw->flags & KEEPS_DEAD) {
            char st[32];
            job_state(&w, w.dead, st);
            cr_expect_str_eq(st, "dead", "an unauthenticated %s %s revived the job", rw->method,
                             rw->pattern);
        }
        if (mv) {
            char st[32];
            row_state("invoices", w.newinv, st);
            cr_expect_str_eq(st, mv->from, "an unauthenticated %s %s moved the invoice", rw->method,
                             rw->pattern);
        }
        if (rw->flags & NEEDS_DISPUTE) {
            char st[32];
            row_state("invoice_disputes", w.newdisp, st);
            cr_expect_str_eq(st, "open", "an unauthenticated %s %s resolved the dispute",
                             rw->method, rw->pattern);
        }
        free(path);
        free(body);
    }
    /* the key survived every unauthenticated DELETE */
    th_resp r = th_auth(srv, w.tok[P_OWNER], "GET", "/v1/api-keys", NULL);
    cr_expect(strstr(r.body, key_id) != NULL);
    json_t *rows = th_get(r.json, "data");
    size_t k;
    json_t *v;
    json_array_foreach(rows, k, v) {
        if (!strcmp(th_str(v, "id"), key_id))
            cr_expect(json_is_null(th_get(v, "revoked_at")), "key revoked without credentials");
    }
    th_resp_free(&r);
}

/* ---- isolation ---------------------------------------------------------- */

typedef struct pair {
    world a;
    char a_key_id[64], a_key[128], a_user_email[128];
    char b_owner[128], b_slug[64], b_read[128];
} pair;

static void make_pair(pair *p) {
    memset(p, 0, sizeof *p);
    make_world(&p->a);
    make_key(p->a.tok[P_OWNER], "read", p->a_key_id, p->a_key);
    copy_str(p->a_user_email, sizeof p->a_user_email, p->a.email[P_VIEWER]);
    char t[64];
    th_signup(srv, t, p->b_slug, NULL);
    copy_str(p->b_owner, sizeof p->b_owner, t);
    make_key(p->b_owner, "read", NULL, p->b_read);
}

TestSuite(isolation, .init = setup, .fini = teardown);

Test(isolation, another_orgs_objects_are_404_by_id_or_code) {
    pair p;
    make_pair(&p);
    char path[256];
    const char *readers[] = {p.b_owner, p.b_read};
    const char *rname[] = {"B owner", "B read key"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/v1/customers/%s", p.a.cust);
        th_resp r = th_auth(srv, readers[i], "GET", path, NULL);
        cr_expect_eq(r.status, 404, "%s GET A's customer: %ld %s", rname[i], r.status, r.body);
        cr_expect_str_eq(th_err_code(&r), "not_found");
        th_resp_free(&r);
        snprintf(path, sizeof path, "/v1/metrics/%s", p.a.metric);
        r = th_auth(srv, readers[i], "GET", path, NULL);
        cr_expect_eq(r.status, 404, "%s GET A's metric: %ld %s", rname[i], r.status, r.body);
        cr_expect_str_eq(th_err_code(&r), "not_found");
        th_resp_free(&r);
        snprintf(path, sizeof path, "/v1/plans/%s", p.a.plan);
        r = th_auth(srv, readers[i], "GET", path, NULL);
        cr_expect_eq(r.status, 404, "%s GET A's plan: %ld %s", rname[i], r.status, r.body);
        cr_expect_str_eq(th_err_code(&r), "not_found");
        th_resp_free(&r);
    }
    snprintf(path, sizeof path, "/v1/customers/%s", p.a.cust);
    th_resp r = th_auth(srv, p.b_owner, "PATCH", path, "{\"name\":\"Hijacked\"}");
    cr_expect_eq(r.status, 404, "B owner PATCH A's customer: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "not_found");
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/api-keys/%s", p.a_key_id);
    r = th_auth(srv, p.b_owner, "DELETE", path, NULL);
    cr_expect_eq(r.status, 404, "B owner DELETE A's API key: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "not_found");
    th_resp_free(&r);

    /* nothing of A changed */
    snprintf(path, sizeof path, "/v1/customers/%s", p.a.cust);
    r = th_auth(srv, p.a.tok[P_OWNER], "GET", path, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(th_str(r.json, "name"), "Cust", "B's PATCH reached A's customer");
    cr_expect_str_eq(th_str(r.json, "organization"), p.a.slug);
    th_resp_free(&r);
    r = th_auth(srv, p.a_key, "GET", "/v1/me", NULL);
    cr_expect_eq(r.status, 200, "B's DELETE revoked A's key: %ld", r.status);
    th_resp_free(&r);
    /* and A can still do it itself (the 404 above was not "no such id") */
    snprintf(path, sizeof path, "/v1/api-keys/%s", p.a_key_id);
    r = th_auth(srv, p.a.tok[P_OWNER], "DELETE", path, NULL);
    cr_expect_eq(r.status, 204);
    th_resp_free(&r);
}

Test(isolation, another_orgs_jobs_are_404_like_missing_ones) {
    pair p;
    make_pair(&p);
    char path[256], missing[256];
    /* an id that certainly names no job: far beyond the queue's sequence */
    snprintf(missing, sizeof missing, "/v1/jobs/9%018d", 0);
    th_resp none = th_auth(srv, p.b_owner, "GET", missing, NULL);
    cr_assert_eq(none.status, 404, "%s", none.body);
    const char *ids[] = {p.a.job, p.a.dead};
    const char *readers[] = {p.b_owner, p.b_read};
    const char *rname[] = {"B owner", "B read key"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "/v1/jobs/%s", ids[k]);
        for (int i = 0; i < 2; i++) {
            th_resp r = th_auth(srv, readers[i], "GET", path, NULL);
            cr_expect_eq(r.status, 404, "%s GET A's job %s: %ld %s", rname[i], ids[k], r.status,
                         r.body);
            cr_expect_str_eq(r.body, none.body, "the 404 must not tell an existing job apart");
            th_resp_free(&r);
        }
        /* naming A's organization does not help */
        snprintf(path, sizeof path, "/v1/jobs/%s?org=%s", ids[k], p.a.slug);
        th_resp r = th_auth(srv, p.b_owner, "GET", path, NULL);
        cr_expect_eq(r.status, 404, "B owner %s: %ld %s", path, r.status, r.body);
        th_resp_free(&r);
        /* and the job is there: A's own read key sees it */
        snprintf(path, sizeof path, "/v1/jobs/%s", ids[k]);
        r = th_auth(srv, p.a_key, "GET", path, NULL);
        cr_expect_eq(r.status, 200, "A reads its own job %s: %ld %s", ids[k], r.status, r.body);
        cr_expect_str_eq(th_str(r.json, "id"), ids[k]);
        th_resp_free(&r);
    }
    th_resp_free(&none);
}

/* True if any row of list (GET path as token) has field == value. */
static bool list_has(const char *token, const char *path, const char *field, const char *value,
                     const char *org_slug_all) {
    th_resp r = th_auth(srv, token, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "GET %s: %ld %s", path, r.status, r.body);
    json_t *rows = th_get(r.json, "data");
    cr_assert(json_is_array(rows), "GET %s: no data array", path);
    bool hit = false;
    size_t i;
    json_t *v;
    json_array_foreach(rows, i, v) {
        if (!strcmp(th_str(v, field), value)) hit = true;
        if (org_slug_all && json_object_get(v, "organization"))
            cr_expect_str_eq(th_str(v, "organization"), org_slug_all, "GET %s row %zu", path, i);
    }
    th_resp_free(&r);
    return hit;
}

Test(isolation, lists_never_show_another_orgs_objects) {
    pair p;
    make_pair(&p);
    /* B has objects of its own, so an empty list proves nothing by itself */
    post_ok(p.b_owner, "/v1/customers", "{\"external_id\":\"b-own\",\"name\":\"B\"}");
    post_ok(p.b_owner, "/v1/metrics",
            "{\"code\":\"b-own\",\"name\":\"B\",\"aggregation\":\"count\"}");
    post_ok(p.b_owner, "/v1/plans",
            "{\"code\":\"b-own\",\"name\":\"B\",\"currency\":\"EUR\",\"charges\":[]}");
    const char *tokens[] = {p.b_owner, p.b_read};
    for (int i = 0; i < 2; i++) {
        cr_expect(
            !list_has(tokens[i], "/v1/customers?limit=1000", "external_id", p.a.cust, p.b_slug));
        cr_expect(
            list_has(tokens[i], "/v1/customers?limit=1000", "external_id", "b-own", p.b_slug));
        cr_expect(!list_has(tokens[i], "/v1/metrics?limit=1000", "code", p.a.metric, p.b_slug));
        cr_expect(list_has(tokens[i], "/v1/metrics?limit=1000", "code", "b-own", p.b_slug));
        cr_expect(!list_has(tokens[i], "/v1/plans?limit=1000", "code", p.a.plan, p.b_slug));
        cr_expect(list_has(tokens[i], "/v1/plans?limit=1000", "code", "b-own", p.b_slug));
    }
    /* search does not reach across either */
    char path[256];
    snprintf(path, sizeof path, "/v1/customers?q=%s", p.a.cust);
    cr_expect(!list_has(p.b_owner, path, "external_id", p.a.cust, p.b_slug));
    cr_expect(!list_has(p.b_owner, "/v1/users?limit=1000", "email", p.a_user_email, p.b_slug));
    cr_expect(!list_has(p.b_owner, "/v1/users?limit=1000", "email", p.a.email[P_OWNER], p.b_slug));
    cr_expect(!list_has(p.b_owner, "/v1/api-keys", "id", p.a_key_id, NULL));
    /* A sees its own (the lookups above can find things) */
    cr_expect(
        list_has(p.a.tok[P_OWNER], "/v1/users?limit=1000", "email", p.a_user_email, p.a.slug));
    cr_expect(list_has(p.a.tok[P_OWNER], "/v1/api-keys", "id", p.a_key_id, NULL));
}

Test(isolation, codes_resolve_only_inside_the_callers_org) {
    pair p;
    make_pair(&p);
    char body[512], u[32];
    th_unique(u);
    snprintf(body, sizeof body, "{\"external_id\":\"x-%s\",\"name\":\"X\",\"plan\":\"%s\"}", u,
             p.a.plan);
    th_resp r = th_auth(srv, p.b_owner, "POST", "/v1/customers", body);
    cr_expect_eq(r.status, 422, "B customer on A's plan: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "validation_failed");
    cr_expect(th_has_field_error(&r, "plan"), "%s", r.body);
    th_resp_free(&r);
    char path[256];
    snprintf(path, sizeof path, "/v1/customers/x-%s", u);
    r = th_auth(srv, p.b_owner, "GET", path, NULL);
    cr_expect_eq(r.status, 404, "the refused customer was written anyway");
    th_resp_free(&r);

    /* PATCH onto A's plan: same */
    post_ok(p.b_owner, "/v1/customers", "{\"external_id\":\"b-cust\",\"name\":\"B\"}");
    snprintf(body, sizeof body, "{\"plan\":\"%s\"}", p.a.plan);
    r = th_auth(srv, p.b_owner, "PATCH", "/v1/customers/b-cust", body);
    cr_expect_eq(r.status, 422, "B PATCH onto A's plan: %ld %s", r.status, r.body);
    cr_expect(th_has_field_error(&r, "plan"), "%s", r.body);
    th_resp_free(&r);

    snprintf(body, sizeof body,
             "{\"code\":\"bp-%s\",\"name\":\"B\",\"currency\":\"USD\",\"charges\":[{\"metric\":"
             "\"%s\",\"model\":\"per_unit\",\"unit_price\":\"1\"}]}",
             u, p.a.metric);
    r = th_auth(srv, p.b_owner, "POST", "/v1/plans", body);
    cr_expect_eq(r.status, 422, "B plan on A's metric: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "validation_failed");
    cr_expect(th_has_field_error(&r, "charges[0].metric"), "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/plans/bp-%s", u);
    r = th_auth(srv, p.b_owner, "GET", path, NULL);
    cr_expect_eq(r.status, 404, "the refused plan was written anyway: %s", r.body);
    th_resp_free(&r);
}

Test(isolation, org_query_naming_another_org_is_404) {
    pair p;
    make_pair(&p);
    static const char *const paths[] = {"/v1/me", "/v1/customers", "/v1/metrics", "/v1/plans"};
    char path[256];
    for (size_t i = 0; i < ML_ARRAY_LEN(paths); i++) {
        snprintf(path, sizeof path, "%s?org=%s", paths[i], p.a.slug);
        th_resp r = th_auth(srv, p.b_owner, "GET", path, NULL);
        cr_expect_eq(r.status, 404, "B owner %s: %ld %s", path, r.status, r.body);
        cr_expect_str_eq(th_err_code(&r), "not_found");
        th_resp_free(&r);
        r = th_auth(srv, p.b_read, "GET", path, NULL);
        cr_expect_eq(r.status, 404, "B read key %s: %ld %s", path, r.status, r.body);
        th_resp_free(&r);
    }
    snprintf(path, sizeof path, "/v1/customers/%s?org=%s", p.a.cust, p.a.slug);
    th_resp r = th_auth(srv, p.b_owner, "GET", path, NULL);
    cr_expect_eq(r.status, 404, "%s: %ld %s", path, r.status, r.body);
    th_resp_free(&r);
    r = th_auth(srv, p.b_owner, "POST", "/v1/customers?org=nonexistent-org-zz",
                "{\"external_id\":\"q\",\"name\":\"Q\"}");
    cr_expect_eq(r.status, 404, "unknown org slug: %ld %s", r.status, r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/customers?org=%s", p.a.slug);
    r = th_auth(srv, p.b_owner, "POST", path, "{\"external_id\":\"q\",\"name\":\"Q\"}");
    cr_expect_eq(r.status, 404, "POST into A via ?org: %ld %s", r.status, r.body);
    th_resp_free(&r);
    r = th_auth(srv, p.a.tok[P_OWNER], "GET", "/v1/customers/q", NULL);
    cr_expect_eq(r.status, 404, "B wrote into A through ?org");
    th_resp_free(&r);
    /* naming one's own organization is fine */
    snprintf(path, sizeof path, "/v1/customers?org=%s", p.b_slug);
    r = th_auth(srv, p.b_owner, "GET", path, NULL);
    cr_expect_eq(r.status, 200, "own ?org: %ld %s", r.status, r.body);
    th_resp_free(&r);
}

Test(isolation, same_codes_live_independently_in_two_orgs) {
    char a[64], b[64], u[32], body[512], path[256];
    th_signup(srv, a, NULL, NULL);
    th_signup(srv, b, NULL, NULL);
    th_unique(u);
    const char *owners[] = {a, b};
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof body, "{\"code\":\"m-%s\",\"name\":\"M%d\",\"aggregation\":\"sum\"}",
                 u, i);
        post_ok(owners[i], "/v1/metrics", body);
        snprintf(
            body, sizeof body,
            "{\"code\":\"p-%s\",\"name\":\"P%d\",\"currency\":\"USD\",\"charges\":[{\"metric\":"
            "\"m-%s\",\"model\":\"per_unit\",\"unit_price\":\"%d\"}]}",
            u, i, u, i + 1);
        post_ok(owners[i], "/v1/plans", body);
        snprintf(body, sizeof body, "{\"external_id\":\"c-%s\",\"name\":\"C%d\",\"plan\":\"p-%s\"}",
                 u, i, u);
        post_ok(owners[i], "/v1/customers", body);
    }
    /* each org sees its own version */
    for (int i = 0; i < 2; i++) {
        char want[8];
        snprintf(want, sizeof want, "C%d", i);
        snprintf(path, sizeof path, "/v1/customers/c-%s", u);
        th_resp r = th_auth(srv, owners[i], "GET", path, NULL);
        cr_expect_eq(r.status, 200);
        cr_expect_str_eq(th_str(r.json, "name"), want);
        th_resp_free(&r);
        snprintf(path, sizeof path, "/v1/plans/p-%s", u);
        r = th_auth(srv, owners[i], "GET", path, NULL);
        cr_expect_eq(r.status, 200);
        snprintf(want, sizeof want, "%d", i + 1);
        cr_expect_str_eq(th_str(r.json, "charges.0.unit_price"), want, "%s", r.body);
        th_resp_free(&r);
    }
    /* a duplicate inside one org is still a conflict */
    snprintf(body, sizeof body, "{\"external_id\":\"c-%s\",\"name\":\"again\"}", u);
    th_resp r = th_auth(srv, a, "POST", "/v1/customers", body);
    cr_expect_eq(r.status, 409, "%s", r.body);
    cr_expect_str_eq(th_err_code(&r), "conflict");
    th_resp_free(&r);
}
