/* test_invoices.c — the invoice lifecycle API, its audit trail, numbering,
 * disputes, listings and late usage, over real HTTP against a real
 * billing-api, PostgreSQL and Redis.
 *
 * The invoice generator is not what is tested here: invoices (and their
 * lines) are inserted straight into PostgreSQL in the state a test needs
 * (seed_invoice), then moved and read through the API.  Expectations are
 * written from the contract (API.md, DESIGN.md, the task), never read back
 * from the code:
 *   lifecycle   submit draft→pending_approval; approve pending_approval→
 *               approved; reject pending_approval→draft (comment required);
 *               issue approved→issued, or draft→issued when the customer does
 *               not require approval; void from draft, pending_approval,
 *               approved, issued; mark-paid issued→paid.  Anything else 409.
 *   roles       submit/issue/void/mark-paid: owner, finance, platform admin;
 *               approve/reject: owner, approver, platform admin; viewer and
 *               API keys never (403).
 *   disputes    open: organization users but viewers; post: those and
 *               platform admins; resolve: owner, finance, platform admins.
 * After a 200 the invoice is in the new state with exactly one new
 * invoice_actions row (actor, from, to, comment); after a 403 or 409 nothing
 * changed (status, version, updated_at, trail).
 */
#include "fmacros.h"
#include "th.h"
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static th_server *srv;
static PGconn *pg;

static void setup(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    srv = th_start(NULL);
    pg = th_pg();
}
static void setup_many_threads(void) {
    static const char *const env[] = {"BILLING_DB_THREADS=8", NULL};
    curl_global_init(CURL_GLOBAL_ALL);
    srv = th_start(env);
    pg = th_pg();
}
static void teardown(void) {
    PQfinish(pg);
    cr_expect_eq(th_stop(srv), 0, "billing-api must exit 0 on SIGTERM");
}

/* ---- SQL helpers ---------------------------------------------------------- */

#define PGQ(sql, ...)                                                                              \
    pgq((sql), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),                \
        (const char *const[]){__VA_ARGS__})

#define PGQ0(sql) pgq((sql), 0, NULL)

static PGresult *pgq(const char *sql, int n, const char *const *params) {
    return th_pgq(pg, sql, n, params);
}

/* First column of the first row (copied into out; "" for NULL). */
static void pgv(char *out, size_t cap, PGresult *r) {
    cr_assert_gt(PQntuples(r), 0, "query returned no row");
    snprintf(out, cap, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
}

static long long pgi(PGresult *r) {
    char v[64];
    pgv(v, sizeof v, r);
    return atoll(v);
}

/* ---- HTTP helpers ---------------------------------------------------------- */

static th_resp call(const char *token, const char *method, const char *path, const char *body) {
    return th_auth(srv, token, method, path, body);
}

static void expect_status(th_resp *r, long want, const char *what) {
    cr_expect_eq(r->status, want, "%s: want %ld, got %ld %s", what, want, r->status, r->body);
}

/* ---- principals and organizations ----------------------------------------- */

enum { P_OWNER, P_FINANCE, P_APPROVER, P_VIEWER, P_ADMIN, P_KEY, P_N };
static const char *const k_pname[P_N] = {"owner",  "finance", "approver",
                                         "viewer", "admin",   "api key"};

typedef struct principal {
    char tok[128];
    char email[128];
    char id[64];
} principal;

typedef struct world {
    long long org_id;
    char org[24]; /* org_id as text */
    char slug[64];
    principal p[P_N];
} world;

static void me(principal *p) {
    th_resp r = call(p->tok, "GET", "/v1/me", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(p->email, sizeof p->email, "%s", th_str(r.json, "user.email"));
    snprintf(p->id, sizeof p->id, "%s", th_str(r.json, "user.id"));
    th_resp_free(&r);
}

static void make_admin(principal *p) {
    char u[32], cmd[512], body[256];
    th_unique(u);
    snprintf(p->email, sizeof p->email, "inv-admin-%s@example.test", u);
    snprintf(cmd, sizeof cmd, "echo '%s' | %s create-admin --email %s --password-stdin >/dev/null",
             TH_PASSWORD, th_api_bin(), p->email);
    cr_assert_eq(system(cmd), 0, "create-admin");
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", p->email, TH_PASSWORD);
    th_resp r = th_req(srv, "POST", "/v1/sessions", NULL, body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(p->tok, sizeof p->tok, "%s", th_str(r.json, "token"));
    th_resp_free(&r);
    me(p);
}

/* A new organization with an owner, finance, approver, viewer, a read API
 * key and a platform admin (who belongs to none). */
static void make_world(world *w) {
    memset(w, 0, sizeof *w);
    char t[64];
    th_signup(srv, t, w->slug, NULL);
    snprintf(w->p[P_OWNER].tok, sizeof w->p[P_OWNER].tok, "%s", t);
    me(&w->p[P_OWNER]);
    static const char *const roles[] = {NULL, "finance", "approver", "viewer"};
    for (int i = P_FINANCE; i <= P_VIEWER; i++) {
        th_user_with_role(srv, w->p[P_OWNER].tok, roles[i], t);
        snprintf(w->p[i].tok, sizeof w->p[i].tok, "%s", t);
        me(&w->p[i]);
    }
    make_admin(&w->p[P_ADMIN]);
    th_resp r = call(w->p[P_OWNER].tok, "POST", "/v1/api-keys",
                     "{\"name\":\"inv read\",\"scopes\":[\"read\"]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(w->p[P_KEY].tok, sizeof w->p[P_KEY].tok, "%s", th_str(r.json, "key"));
    th_resp_free(&r);
    r = call(w->p[P_OWNER].tok, "GET", "/v1/me", NULL);
    w->org_id = json_integer_value(th_get(r.json, "organization.id"));
    th_resp_free(&r);
    cr_assert_gt(w->org_id, 0);
    snprintf(w->org, sizeof w->org, "%lld", w->org_id);
}

/* A customer of w (straight into the table); its id text into id. */
static void make_customer(const world *w, const char *ext, bool require_approval, char id[24]) {
    pgv(id, 24,
        PGQ("INSERT INTO customers (org_id, external_id, name, require_approval) "
            "VALUES ($1, $2, $3, $4::boolean) RETURNING id",
            w->org, ext, ext, require_approval ? "true" : "false"));
}

static void make_metric(const world *w, const char *code, char id[24]) {
    pgv(id, 24,
        PGQ("INSERT INTO metrics (org_id, code, name, aggregation) VALUES ($1, $2, $2, 'sum') "
            "RETURNING id",
            w->org, code));
}

/* ---- seeding invoices -------------------------------------------------------- */

static const char *const k_states[] = {"draft", "pending_approval", "approved", "issued", "paid",
                                       "void"};
enum { S_DRAFT, S_PENDING, S_APPROVED, S_ISSUED, S_PAID, S_VOID, S_N };

/* An invoice of customer cust in state st for [start, end) with a base fee
 * line and a usage line (with two day sub-lines); its id into id.  Issued
 * and paid invoices get a seed number "SEED-<id>". */
static void seed_invoice_at(const world *w, const char *cust, int st, const char *start,
                            const char *end, char id[40]) {
    char uuid[40];
    pgv(uuid, sizeof uuid, PGQ0("SELECT gen_random_uuid()"));
    pgv(id, 40,
        PGQ("INSERT INTO invoices (id, org_id, customer_id, period_start, period_end, status, "
            "currency, subtotal, tax_rate, tax, total, notes, number, issued_at, paid_at, "
            "voided_at) "
            "VALUES ($6::uuid, $1, $2, $3::timestamptz, $4::timestamptz, $5, 'USD', 62.50, "
            "0.200000, 12.50, 75.00, 'seeded', "
            "CASE WHEN $5 IN ('issued', 'paid') THEN 'SEED-' || $6 END, "
            "CASE WHEN $5 IN ('issued', 'paid') THEN now() - interval '1 day' END, "
            "CASE WHEN $5 = 'paid' THEN now() END, CASE WHEN $5 = 'void' THEN now() END) "
            "RETURNING id",
            w->org, cust, start, end, k_states[st], uuid));
    PQclear(PGQ("INSERT INTO invoice_lines (invoice_id, org_id, position, kind, description, "
                "amount) VALUES ($1::uuid, $2, 0, 'base_fee', 'Base fee', 50.00)",
                id, w->org));
    char line[24];
    pgv(line, sizeof line,
        PGQ("INSERT INTO invoice_lines (invoice_id, org_id, position, kind, description, "
            "metric_code, model, quantity, billable_quantity, unit_price, amount_exact, amount) "
            "VALUES ($1::uuid, $2, 1, 'usage', 'API calls', 'calls', 'per_unit', 1250, 1250, "
            "0.01, 12.5, 12.50) RETURNING id",
            id, w->org));
    PQclear(PGQ("INSERT INTO invoice_sub_lines (line_id, invoice_id, position, kind, description, "
                "day, quantity) VALUES ($1::bigint, $2::uuid, 0, 'day', 'day 1', "
                "$3::timestamptz::date, 1000), ($1::bigint, $2::uuid, 1, 'day', 'day 2', "
                "($3::timestamptz + interval '1 day')::date, 250)",
                line, id, start));
}

/* Distinct one-day periods so that a customer's invoices never overlap. */
static int g_day;
static void seed_invoice(const world *w, const char *cust, int st, char id[40]) {
    char s[40], e[40];
    int d = g_day++;
    time_t t = (time_t)(1577836800 + (long long)d * 86400); /* 2020-01-01 + d days */
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT00:00:00Z", &tm);
    t += 86400;
    gmtime_r(&t, &tm);
    strftime(e, sizeof e, "%Y-%m-%dT00:00:00Z", &tm);
    seed_invoice_at(w, cust, st, s, e, id);
}

typedef struct inv_row {
    char status[24], version[16], updated_at[64], number[64], issued_at[64], paid_at[64],
        voided_at[64];
    long long actions;
} inv_row;

static void read_row(const char *id, inv_row *o) {
    PGresult *r = PGQ("SELECT status, version, updated_at, coalesce(number, ''), "
                      "coalesce(issued_at::text, ''), coalesce(paid_at::text, ''), "
                      "coalesce(voided_at::text, ''), "
                      "(SELECT count(*) FROM invoice_actions a WHERE a.invoice_id = i.id) "
                      "FROM invoices i WHERE id = $1::uuid",
                      id);
    cr_assert_eq(PQntuples(r), 1);
    snprintf(o->status, sizeof o->status, "%s", PQgetvalue(r, 0, 0));
    snprintf(o->version, sizeof o->version, "%s", PQgetvalue(r, 0, 1));
    snprintf(o->updated_at, sizeof o->updated_at, "%s", PQgetvalue(r, 0, 2));
    snprintf(o->number, sizeof o->number, "%s", PQgetvalue(r, 0, 3));
    snprintf(o->issued_at, sizeof o->issued_at, "%s", PQgetvalue(r, 0, 4));
    snprintf(o->paid_at, sizeof o->paid_at, "%s", PQgetvalue(r, 0, 5));
    snprintf(o->voided_at, sizeof o->voided_at, "%s", PQgetvalue(r, 0, 6));
    o->actions = atoll(PQgetvalue(r, 0, 7));
    PQclear(r);
}

/* ---- the contract, written out -------------------------------------------- */

enum { A_SUBMIT, A_APPROVE, A_REJECT, A_ISSUE, A_VOID, A_MARK_PAID, A_N };
static const char *const k_path_action[A_N] = {"submit", "approve", "reject",
                                               "issue",  "void",    "mark-paid"};
static const char *const k_trail_action[A_N] = {"submit", "approve", "reject",
                                                "issue",  "void",    "mark_paid"};

/* k_next[state][action]: the state reached, or NULL (409).  "issue" from a
 * draft is only for customers without require_approval (see want_status). */
static const char *const k_next[S_N][A_N] = {
    /*                 submit              approve     reject   issue     void    mark-paid */
    [S_DRAFT] = {"pending_approval", NULL, NULL, "issued", "void", NULL},
    [S_PENDING] = {NULL, "approved", "draft", NULL, "void", NULL},
    [S_APPROVED] = {NULL, NULL, NULL, "issued", "void", NULL},
    [S_ISSUED] = {NULL, NULL, NULL, NULL, "void", "paid"},
    [S_PAID] = {NULL, NULL, NULL, NULL, NULL, NULL},
    [S_VOID] = {NULL, NULL, NULL, NULL, NULL, NULL},
};

/* who may call each action */
static bool may(int p, int a) {
    switch (p) {
    case P_OWNER:
    case P_ADMIN:
        return true;
    case P_FINANCE:
        return a == A_SUBMIT || a == A_ISSUE || a == A_VOID || a == A_MARK_PAID;
    case P_APPROVER:
        return a == A_APPROVE || a == A_REJECT;
    default: /* viewer, API keys */
        return false;
    }
}

static int want_status(int p, int s, int a, bool require_approval) {
    if (!may(p, a)) return 403;
    if (!k_next[s][a]) return 409;
    if (a == A_ISSUE && s == S_DRAFT && require_approval) return 409;
    return 200;
}

/* POST /v1/invoices/{id}/<action> as token, with body. */
static th_resp act(const char *token, const char *id, int a, const char *body) {
    char path[160];
    snprintf(path, sizeof path, "/v1/invoices/%s/%s", id, k_path_action[a]);
    return call(token, "POST", path, body);
}

/* The invoice_actions row of id with the largest id. */
typedef struct trail_row {
    char action[24], from[24], to[24], actor_id[64], actor[128], comment[256];
    bool comment_null;
} trail_row;

static void last_trail(const char *id, trail_row *t) {
    PGresult *r = PGQ("SELECT action, coalesce(from_status, ''), to_status, "
                      "coalesce(actor_id::text, ''), actor, comment FROM invoice_actions "
                      "WHERE invoice_id = $1::uuid ORDER BY id DESC LIMIT 1",
                      id);
    cr_assert_eq(PQntuples(r), 1, "no invoice_actions row");
    snprintf(t->action, sizeof t->action, "%s", PQgetvalue(r, 0, 0));
    snprintf(t->from, sizeof t->from, "%s", PQgetvalue(r, 0, 1));
    snprintf(t->to, sizeof t->to, "%s", PQgetvalue(r, 0, 2));
    snprintf(t->actor_id, sizeof t->actor_id, "%s", PQgetvalue(r, 0, 3));
    snprintf(t->actor, sizeof t->actor, "%s", PQgetvalue(r, 0, 4));
    t->comment_null = PQgetisnull(r, 0, 5);
    snprintf(t->comment, sizeof t->comment, "%s", PQgetvalue(r, 0, 5));
    PQclear(r);
}

/* One call of the matrix: state s, action a, principal p. */
static void matrix_cell(world *w, const char *cust, bool ra, int p, int s, int a) {
    char id[40], body[160], comment[96];
    seed_invoice(w, cust, s, id);
    inv_row before, after;
    read_row(id, &before);
    snprintf(comment, sizeof comment, "%s %s by %s", k_path_action[a], k_states[s], k_pname[p]);
    snprintf(body, sizeof body, "{\"comment\":\"%s\"}", comment);
    int want = want_status(p, s, a, ra);
    th_resp r = act(w->p[p].tok, id, a, body);
    cr_expect_eq(r.status, want, "%s %s on a %s invoice (require_approval %d): want %d, got %ld %s",
                 k_pname[p], k_path_action[a], k_states[s], ra, want, r.status, r.body);
    read_row(id, &after);
    if (want == 200 && r.status == 200) {
        const char *to = k_next[s][a];
        cr_expect_str_eq(th_str(r.json, "status"), to, "reply status");
        cr_expect_str_eq(th_str(r.json, "id"), id);
        cr_expect(json_is_array(th_get(r.json, "lines")), "the reply is the full invoice");
        cr_expect_str_eq(after.status, to, "%s %s %s: stored status", k_pname[p], k_path_action[a],
                         k_states[s]);
        cr_expect_eq(atoi(after.version), atoi(before.version) + 1, "version + 1");
        cr_expect_eq(after.actions, before.actions + 1, "exactly one new invoice_actions row");
        trail_row t;
        last_trail(id, &t);
        cr_expect_str_eq(t.action, k_trail_action[a]);
        cr_expect_str_eq(t.from, k_states[s]);
        cr_expect_str_eq(t.to, to);
        cr_expect_str_eq(t.actor, w->p[p].email, "actor is the user's email");
        cr_expect_str_eq(t.actor_id, w->p[p].id, "actor_id is the user's id");
        cr_expect_str_eq(t.comment, comment);
        if (!strcmp(to, "issued")) {
            cr_expect_neq(after.issued_at[0], '\0', "issued_at set");
            cr_expect(strncmp(after.number, "INV-", 4) == 0, "number %s", after.number);
            cr_expect_str_eq(th_str(r.json, "number"), after.number);
        }
        if (!strcmp(to, "paid")) cr_expect_neq(after.paid_at[0], '\0', "paid_at set");
        if (!strcmp(to, "void")) cr_expect_neq(after.voided_at[0], '\0', "voided_at set");
        if (strcmp(to, "issued") && strcmp(to, "paid") && !before.issued_at[0])
            cr_expect_eq(after.issued_at[0], '\0', "issued_at stays null");
    } else {
        cr_expect_str_eq(after.status, before.status, "a refused call changed the status");
        cr_expect_str_eq(after.version, before.version, "a refused call changed the version");
        cr_expect_str_eq(after.updated_at, before.updated_at, "a refused call touched the row");
        cr_expect_str_eq(after.number, before.number, "a refused call changed the number");
        cr_expect_eq(after.actions, before.actions, "a refused call wrote an action");
        if (want == 403) cr_expect_str_eq(th_err_code(&r), "forbidden");
        if (want == 409) {
            cr_expect_str_eq(th_err_code(&r), "conflict");
            char needle[64];
            snprintf(needle, sizeof needle, "invoice is %s", k_states[s]);
            cr_expect(strstr(th_str(r.json, "error.message"), needle) != NULL,
                      "409 must name the current state: %s", r.body);
            cr_expect_str_eq(th_str(r.json, "error.details.0.field"), "status");
            cr_expect_str_eq(th_str(r.json, "error.details.0.message"), k_states[s]);
        }
    }
    th_resp_free(&r);
}

/* ---- workflow matrix -------------------------------------------------------- */

TestSuite(invoices, .init = setup, .fini = teardown, .timeout = 280);

static void run_matrix(bool require_approval) {
    world w;
    make_world(&w);
    char cust[24], u[32], ext[64];
    snprintf(ext, sizeof ext, "cust-%s", th_unique(u));
    make_customer(&w, ext, require_approval, cust);
    for (int p = 0; p < P_N; p++)
        for (int s = 0; s < S_N; s++)
            for (int a = 0; a < A_N; a++) matrix_cell(&w, cust, require_approval, p, s, a);
}

Test(invoices, workflow_matrix_every_state_action_and_role) { run_matrix(false); }

Test(invoices, workflow_matrix_for_a_customer_that_requires_approval) { run_matrix(true); }

Test(invoices, require_approval_blocks_issue_from_draft_until_approved) {
    world w;
    make_world(&w);
    char cust[24], id[40];
    make_customer(&w, "needs-approval", true, cust);
    seed_invoice(&w, cust, S_DRAFT, id);
    const char *fin = w.p[P_FINANCE].tok;
    th_resp r = act(fin, id, A_ISSUE, "{}");
    expect_status(&r, 409, "issue a draft that needs approval");
    cr_expect_str_eq(th_err_code(&r), "conflict");
    cr_expect(strstr(th_str(r.json, "error.message"), "approval") != NULL, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "error.details.0.message"), "draft");
    th_resp_free(&r);

    r = act(fin, id, A_SUBMIT, "{}");
    expect_status(&r, 200, "submit");
    cr_expect_str_eq(th_str(r.json, "status"), "pending_approval");
    th_resp_free(&r);
    r = act(fin, id, A_ISSUE, "{}");
    expect_status(&r, 409, "issue while pending");
    th_resp_free(&r);
    r = act(w.p[P_APPROVER].tok, id, A_APPROVE, "{\"comment\":\"ok\"}");
    expect_status(&r, 200, "approve");
    cr_expect_str_eq(th_str(r.json, "status"), "approved");
    cr_expect(json_is_true(th_get(r.json, "require_approval")));
    th_resp_free(&r);
    r = act(fin, id, A_ISSUE, "{}");
    expect_status(&r, 200, "issue after approval");
    cr_expect_str_eq(th_str(r.json, "status"), "issued");
    char want[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(want, sizeof want, "INV-%04d-000001", tm.tm_year + 1900);
    cr_expect_str_eq(th_str(r.json, "number"), want, "the organization's first number");
    th_resp_free(&r);

    /* the trail, oldest first, through the API */
    char path[128];
    snprintf(path, sizeof path, "/v1/invoices/%s/actions", id);
    r = call(w.p[P_VIEWER].tok, "GET", path, NULL);
    expect_status(&r, 200, "actions");
    json_t *d = th_get(r.json, "data");
    cr_assert_eq(json_array_size(d), 3, "%s", r.body);
    static const char *const acts[] = {"submit", "approve", "issue"};
    static const char *const froms[] = {"draft", "pending_approval", "approved"};
    static const char *const tos[] = {"pending_approval", "approved", "issued"};
    const int who[] = {P_FINANCE, P_APPROVER, P_FINANCE};
    for (size_t i = 0; i < 3; i++) {
        json_t *a = json_array_get(d, i);
        cr_expect_str_eq(th_str(a, "action"), acts[i]);
        cr_expect_str_eq(th_str(a, "from_status"), froms[i]);
        cr_expect_str_eq(th_str(a, "to_status"), tos[i]);
        cr_expect_str_eq(th_str(a, "actor"), w.p[who[i]].email);
        cr_expect(json_is_integer(th_get(a, "id")));
        const char *ts = th_str(a, "created_at");
        cr_expect(strlen(ts) > 0 && ts[strlen(ts) - 1] == 'Z', "created_at %s", ts);
    }
    cr_expect_str_eq(th_str(json_array_get(d, 1), "comment"), "ok");
    cr_expect(json_is_null(th_get(json_array_get(d, 0), "comment")));
    th_resp_free(&r);
    /* paged one at a time: the same three, in order */
    char cursor[256] = "", cpath[512];
    for (size_t i = 0; i < 3; i++) {
        snprintf(cpath, sizeof cpath, "/v1/invoices/%s/actions?limit=1%s%s", id,
                 *cursor ? "&cursor=" : "", cursor);
        r = call(w.p[P_KEY].tok, "GET", cpath, NULL);
        expect_status(&r, 200, "actions page");
        cr_expect_str_eq(th_str(r.json, "data.0.action"), acts[i]);
        json_t *nc = th_get(r.json, "next_cursor");
        if (i < 2) cr_assert(json_is_string(nc), "page %zu must have a next_cursor", i);
        snprintf(cursor, sizeof cursor, "%s", json_is_string(nc) ? json_string_value(nc) : "");
        th_resp_free(&r);
    }
}

Test(invoices, transition_bodies_are_validated) {
    world w;
    make_world(&w);
    char cust[24], id[40];
    make_customer(&w, "val", false, cust);
    seed_invoice(&w, cust, S_PENDING, id);
    inv_row before, after;
    read_row(id, &before);
    const char *ap = w.p[P_APPROVER].tok;
    static const char *const bad_reject[] = {"{}", "{\"comment\":null}", "{\"comment\":\"\"}",
                                             "{\"comment\":\"   \"}"};
    for (size_t i = 0; i < ML_ARRAY_LEN(bad_reject); i++) {
        th_resp r = act(ap, id, A_REJECT, bad_reject[i]);
        expect_status(&r, 422, bad_reject[i]);
        cr_expect(th_has_field_error(&r, "comment"), "%s: %s", bad_reject[i], r.body);
        th_resp_free(&r);
    }
    th_resp r = act(ap, id, A_APPROVE, "{\"comment\":\"x\",\"extra\":1}");
    expect_status(&r, 422, "unknown field");
    cr_expect(th_has_field_error(&r, "extra"), "%s", r.body);
    th_resp_free(&r);
    r = act(ap, id, A_APPROVE, "{\"comment\":5}");
    expect_status(&r, 422, "comment not a string");
    th_resp_free(&r);
    char big[4001 + 32];
    memcpy(big, "{\"comment\":\"", 12);
    memset(big + 12, 'a', 4001);
    memcpy(big + 12 + 4001, "\"}", 3);
    r = act(ap, id, A_APPROVE, big);
    expect_status(&r, 422, "comment over 4000");
    th_resp_free(&r);
    read_row(id, &after);
    cr_expect_str_eq(after.status, before.status);
    cr_expect_eq(after.actions, 0);
    /* a malformed or unknown id is 404 */
    r = act(ap, "not-a-uuid", A_APPROVE, "{}");
    expect_status(&r, 404, "malformed id");
    th_resp_free(&r);
    r = act(ap, "00000000-0000-4000-8000-000000000000", A_APPROVE, "{}");
    expect_status(&r, 404, "unknown id");
    th_resp_free(&r);
    /* and the good reject */
    r = act(ap, id, A_REJECT, "{\"comment\":\"wrong tax rate\"}");
    expect_status(&r, 200, "reject with a comment");
    cr_expect_str_eq(th_str(r.json, "status"), "draft");
    th_resp_free(&r);
}

/* ---- isolation and platform admins ------------------------------------------ */

Test(invoices, another_org_gets_404_and_admins_act_anywhere) {
    world a, b;
    make_world(&a);
    make_world(&b);
    char cust[24], id[40], path[200];
    make_customer(&a, "iso", false, cust);
    seed_invoice(&a, cust, S_DRAFT, id);
    snprintf(path, sizeof path, "/v1/invoices/%s", id);
    for (int p = P_OWNER; p <= P_VIEWER; p++) {
        th_resp r = call(b.p[p].tok, "GET", path, NULL);
        expect_status(&r, 404, "B GET A's invoice");
        cr_expect_str_eq(th_err_code(&r), "not_found");
        th_resp_free(&r);
    }
    th_resp r = call(b.p[P_KEY].tok, "GET", path, NULL);
    expect_status(&r, 404, "B key GET A's invoice");
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/invoices/%s/actions", id);
    r = call(b.p[P_OWNER].tok, "GET", path, NULL);
    expect_status(&r, 404, "B GET A's trail");
    th_resp_free(&r);
    for (int x = 0; x < A_N; x++) {
        r = act(b.p[P_OWNER].tok, id, x, "{\"comment\":\"hijack\"}");
        expect_status(&r, 404, k_path_action[x]);
        th_resp_free(&r);
    }
    snprintf(path, sizeof path, "/v1/invoices/%s/disputes", id);
    r = call(b.p[P_OWNER].tok, "POST", path, "{\"message\":\"hijack\"}");
    expect_status(&r, 404, "B opens a dispute on A's invoice");
    th_resp_free(&r);
    inv_row row;
    read_row(id, &row);
    cr_expect_str_eq(row.status, "draft");
    cr_expect_eq(row.actions, 0);
    cr_expect_eq(pgi(PGQ("SELECT count(*) FROM invoice_disputes WHERE invoice_id = $1::uuid", id)),
                 0);

    /* a platform admin naming B is 404 on A's invoice too */
    snprintf(path, sizeof path, "/v1/invoices/%s/submit?org=%s", id, b.slug);
    r = call(a.p[P_ADMIN].tok, "POST", path, "{}");
    expect_status(&r, 404, "admin ?org=B on A's invoice");
    th_resp_free(&r);
    /* naming A, or no organization at all, it works */
    snprintf(path, sizeof path, "/v1/invoices/%s?org=%s", id, a.slug);
    r = call(a.p[P_ADMIN].tok, "GET", path, NULL);
    expect_status(&r, 200, "admin ?org=A");
    th_resp_free(&r);
    snprintf(path, sizeof path, "/v1/invoices/%s/submit?org=%s", id, a.slug);
    r = call(a.p[P_ADMIN].tok, "POST", path, "{}");
    expect_status(&r, 200, "admin ?org=A submit");
    th_resp_free(&r);
    r = act(a.p[P_ADMIN].tok, id, A_APPROVE, "{}");
    expect_status(&r, 200, "admin without ?org approves");
    cr_expect_str_eq(th_str(r.json, "organization"), a.slug);
    th_resp_free(&r);
    /* the admin's actions are recorded in A's organization */
    cr_expect_eq(pgi(PGQ("SELECT count(*) FROM invoice_actions WHERE invoice_id = $1::uuid AND "
                         "org_id = $2 AND actor = $3",
                         id, a.org, a.p[P_ADMIN].email)),
                 2);
    /* issuing through the admin numbers it in A's sequence */
    r = act(a.p[P_ADMIN].tok, id, A_ISSUE, "{}");
    expect_status(&r, 200, "admin issues");
    cr_expect(strstr(th_str(r.json, "number"), "-000001") != NULL, "%s", th_str(r.json, "number"));
    th_resp_free(&r);
    cr_expect_eq(pgi(PGQ("SELECT last FROM invoice_counters WHERE org_id = $1", a.org)), 1);
    cr_expect_eq(pgi(PGQ("SELECT count(*) FROM invoice_counters WHERE org_id = $1", b.org)), 0);
}

/* ---- numbering ---------------------------------------------------------------- */

typedef struct issue_job {
    const char *token;
    char (*ids)[40];
    int from, to;        /* [from, to) of ids */
    char (*numbers)[64]; /* out, per id */
    long status_bad;     /* first non-200 status, 0 if none */
} issue_job;

static void *issue_thread(void *arg) {
    issue_job *j = arg;
    for (int i = j->from; i < j->to; i++) {
        char path[160];
        snprintf(path, sizeof path, "/v1/invoices/%s/issue", j->ids[i]);
        th_resp r = th_auth(srv, j->token, "POST", path, "{}");
        if (r.status != 200 && !j->status_bad) j->status_bad = r.status;
        const char *n = r.json ? json_string_value(json_object_get(r.json, "number")) : NULL;
        snprintf(j->numbers[i], 64, "%s", n ? n : "");
        th_resp_free(&r);
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

TestSuite(numbering, .init = setup_many_threads, .fini = teardown, .timeout = 280);

#define NISSUE   200
#define NTHREADS 8

Test(numbering, concurrent_issues_are_gapless_and_unique_per_organization) {
    world w, w2;
    make_world(&w);
    make_world(&w2);
    char u[32], prefix[16];
    th_unique(u);
    snprintf(prefix, sizeof prefix, "N%.6s", u);
    for (char *c = prefix; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    PQclear(PGQ("UPDATE organizations SET invoice_prefix = $2 WHERE id = $1", w.org, prefix));
    char cust[24];
    make_customer(&w, "num", false, cust);
    static char ids[NISSUE][40], numbers[NISSUE][64];
    for (int i = 0; i < NISSUE; i++) seed_invoice(&w, cust, i % 2 ? S_APPROVED : S_DRAFT, ids[i]);

    pthread_t th[NTHREADS];
    issue_job jobs[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        jobs[t] = (issue_job){w.p[t % 2 ? P_FINANCE : P_OWNER].tok, ids,     t * NISSUE / NTHREADS,
                              (t + 1) * NISSUE / NTHREADS,          numbers, 0};
        cr_assert_eq(pthread_create(&th[t], NULL, issue_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(th[t], NULL);
        cr_expect_eq(jobs[t].status_bad, 0, "thread %d got a %ld", t, jobs[t].status_bad);
    }
    char year[8];
    pgv(year, sizeof year,
        PGQ("SELECT DISTINCT extract(year FROM issued_at AT TIME ZONE 'UTC')::int::text "
            "FROM invoices WHERE org_id = $1",
            w.org));
    qsort(numbers, NISSUE, sizeof numbers[0], cmp_str);
    for (int i = 0; i < NISSUE; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s-%s-%06d", prefix, year, i + 1);
        cr_expect_str_eq(numbers[i], want, "sorted number %d", i);
    }
    /* what the replies said is what is stored, each number once */
    cr_expect_eq(pgi(PGQ("SELECT count(DISTINCT number) FROM invoices WHERE org_id = $1 AND "
                         "status = 'issued'",
                         w.org)),
                 NISSUE);
    cr_expect_eq(pgi(PGQ("SELECT last FROM invoice_counters WHERE org_id = $1 AND year = $2::int",
                         w.org, year)),
                 NISSUE);
    cr_expect_eq(pgi(PGQ("SELECT count(*) FROM invoice_actions WHERE org_id = $1 AND "
                         "action = 'issue'",
                         w.org)),
                 NISSUE);

    /* the second organization counts on its own */
    char cust2[24], id2[3][40];
    make_customer(&w2, "num2", false, cust2);
    for (int i = 0; i < 3; i++) {
        seed_invoice(&w2, cust2, S_DRAFT, id2[i]);
        th_resp r = act(w2.p[P_FINANCE].tok, id2[i], A_ISSUE, "{}");
        expect_status(&r, 200, "org 2 issue");
        char want[64];
        snprintf(want, sizeof want, "INV-%s-%06d", year, i + 1);
        cr_expect_str_eq(th_str(r.json, "number"), want);
        th_resp_free(&r);
    }
    cr_expect_eq(pgi(PGQ("SELECT last FROM invoice_counters WHERE org_id = $1", w.org)), NISSUE,
                 "org 2's issues moved org 1's counter");
}

typedef struct race_job {
    const char *token, *id;
    long status;
    char number[64];
} race_job;

static void *race_thread(void *arg) {
    race_job *j = arg;
    char path[160];
    snprintf(path, sizeof path, "/v1/invoices/%s/issue", j->id);
    th_resp r = th_auth(srv, j->token, "POST", path, "{}");
    j->status = r.status;
    const char *n = r.json ? json_string_value(json_object_get(r.json, "number")) : NULL;
    snprintf(j->number, sizeof j->number, "%s", n ? n : "");
    th_resp_free(&r);
    return NULL;
}

Test(numbering, racing_issues_of_one_invoice_issue_it_once) {
    world w;
    make_world(&w);
    char cust[24], ids[5][40];
    make_customer(&w, "race", false, cust);
    for (int k = 0; k < 5; k++) {
        seed_invoice(&w, cust, S_APPROVED, ids[k]);
        pthread_t th[NTHREADS];
        race_job jobs[NTHREADS];
        for (int t = 0; t < NTHREADS; t++) {
            jobs[t] = (race_job){w.p[t % 2 ? P_FINANCE : P_OWNER].tok, ids[k], 0, ""};
            cr_assert_eq(pthread_create(&th[t], NULL, race_thread, &jobs[t]), 0);
        }
        int ok = 0, conflict = 0;
        const char *num = "";
        for (int t = 0; t < NTHREADS; t++) {
            pthread_join(th[t], NULL);
            if (jobs[t].status == 200) {
                ok++;
                num = jobs[t].number;
            } else if (jobs[t].status == 409) {
                conflict++;
            }
        }
        cr_expect_eq(ok, 1, "round %d: %d of %d racing issues succeeded", k, ok, NTHREADS);
        cr_expect_eq(conflict, NTHREADS - 1, "round %d: the others must be 409", k);
        char want[16];
        snprintf(want, sizeof want, "-%06d", k + 1);
        cr_expect(strlen(num) > 7 && !strcmp(num + strlen(num) - 7, want), "round %d: number %s", k,
                  num);
        inv_row row;
        read_row(ids[k], &row);
        cr_expect_str_eq(row.status, "issued");
        cr_expect_str_eq(row.number, num);
        cr_expect_eq(row.actions, 1, "round %d: one issue in the trail", k);
    }
    cr_expect_eq(pgi(PGQ("SELECT last FROM invoice_counters WHERE org_id = $1", w.org)), 5,
                 "refused racers took numbers");
}

Test(numbering, a_failed_issue_gives_its_number_back) {
    world w;
    make_world(&w);
    char cust[24], ids[3][40], fn[64], u[32];
    make_customer(&w, "rb", false, cust);
    for (int i = 0; i < 3; i++) seed_invoice(&w, cust, S_DRAFT, ids[i]);
    /* a trigger that fails the audit insert of one marked issue of this
     * organization: the issuing transaction fails after taking its number */
    snprintf(fn, sizeof fn, "inv_test_fail_%s", th_unique(u));
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
             "IF NEW.org_id = %s AND NEW.comment = 'fail me' THEN "
             "RAISE EXCEPTION 'test failure'; END IF; RETURN NEW; END $f$",
             fn, w.org);
    PQclear(pgq(sql, 0, NULL));
    snprintf(sql, sizeof sql,
             "CREATE TRIGGER %s BEFORE INSERT ON invoice_actions FOR EACH ROW EXECUTE FUNCTION "
             "%s()",
             fn, fn);
    PQclear(pgq(sql, 0, NULL));

    th_resp r = act(w.p[P_FINANCE].tok, ids[0], A_ISSUE, "{}");
    expect_status(&r, 200, "first issue");
    char first[64];
    snprintf(first, sizeof first, "%s", th_str(r.json, "number"));
    th_resp_free(&r);
    r = act(w.p[P_FINANCE].tok, ids[1], A_ISSUE, "{\"comment\":\"fail me\"}");
    expect_status(&r, 500, "the failing issue");
    th_resp_free(&r);
    inv_row row;
    read_row(ids[1], &row);
    cr_expect_str_eq(row.status, "draft", "the failed issue left its invoice a draft");
    cr_expect_str_eq(row.number, "");
    r = act(w.p[P_FINANCE].tok, ids[2], A_ISSUE, "{}");
    expect_status(&r, 200, "third issue");
    const char *third = th_str(r.json, "number");
    size_t n = strlen(first);
    cr_assert(n > 6);
    cr_expect(!strncmp(first, third, n - 6) && !strcmp(third + n - 6, "000002"),
              "after %s and a failed issue the next is %s (want …000002)", first, third);
    th_resp_free(&r);
    snprintf(sql, sizeof sql, "DROP TRIGGER %s ON invoice_actions", fn);
    PQclear(pgq(sql, 0, NULL));
    snprintf(sql, sizeof sql, "DROP FUNCTION %s()", fn);
    PQclear(pgq(sql, 0, NULL));
    r = act(w.p[P_FINANCE].tok, ids[1], A_ISSUE, "{\"comment\":\"fail me\"}");
    expect_status(&r, 200, "the same issue once the trigger is gone");
    cr_expect(strstr(th_str(r.json, "number"), "-000003") != NULL, "%s", r.body);
    th_resp_free(&r);
}

/* ---- reading an invoice --------------------------------------------------------- */

Test(invoices, get_returns_the_full_invoice) {
    world w;
    make_world(&w);
    char cust[24], id[40], src[40], path[160];
    make_customer(&w, "shape", false, cust);
    seed_invoice_at(&w, cust, S_ISSUED, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", src);
    seed_invoice_at(&w, cust, S_DRAFT, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", id);
    PQclear(PGQ("INSERT INTO invoice_lines (invoice_id, org_id, position, kind, description, "
                "metric_code, quantity, amount, source_invoice_id, adjusted_from, adjusted_to) "
                "VALUES ($1::uuid, $2, 2, 'adjustment', 'Late usage', 'calls', 10, 0.10, "
                "$3::uuid, 1250, 1260)",
                id, w.org, src));
    snprintf(path, sizeof path, "/v1/invoices/%s", id);
    th_resp r = call(w.p[P_KEY].tok, "GET", path, NULL);
    expect_status(&r, 200, "GET with a read key");
    json_t *j = r.json;
    cr_expect_str_eq(th_str(j, "id"), id);
    cr_expect(json_is_null(th_get(j, "number")));
    cr_expect_str_eq(th_str(j, "status"), "draft");
    cr_expect_str_eq(th_str(j, "customer.id"), "shape", "customer.id is the external_id");
    cr_expect_str_eq(th_str(j, "customer.name"), "shape");
    cr_expect_str_eq(th_str(j, "period_start"), "2026-02-01T00:00:00Z");
    cr_expect_str_eq(th_str(j, "period_end"), "2026-03-01T00:00:00Z");
    cr_expect_str_eq(th_str(j, "currency"), "USD");
    cr_expect_str_eq(th_str(j, "subtotal"), "62.50", "decimals are exact strings");
    cr_expect_str_eq(th_str(j, "tax"), "12.50");
    cr_expect_str_eq(th_str(j, "total"), "75.00");
    cr_expect_str_eq(th_str(j, "tax_rate"), "0.2");
    cr_expect_str_eq(th_str(j, "notes"), "seeded");
    cr_expect_eq(json_integer_value(th_get(j, "version")), 1);
    static const char *const nulls[] = {"issued_at", "paid_at", "voided_at"};
    for (size_t i = 0; i < ML_ARRAY_LEN(nulls); i++)
        cr_expect(json_is_null(th_get(j, nulls[i])), "%s must be null", nulls[i]);
    static const char *const times[] = {"generated_at", "created_at", "updated_at"};
    for (size_t i = 0; i < ML_ARRAY_LEN(times); i++) {
        const char *t = th_str(j, times[i]);
        cr_expect(strlen(t) >= 20 && t[10] == 'T' && t[strlen(t) - 1] == 'Z', "%s: %s", times[i],
                  t);
    }
    cr_expect(json_is_false(th_get(j, "require_approval")));
    cr_expect_eq(json_integer_value(th_get(j, "disputes.open")), 0);
    cr_expect_eq(json_integer_value(th_get(j, "disputes.total")), 0);
    cr_expect_eq(json_array_size(th_get(j, "late_usage")), 0);
    json_t *lines = th_get(j, "lines");
    cr_assert_eq(json_array_size(lines), 3, "%s", r.body);
    cr_expect_eq(json_integer_value(th_get(lines, "0.position")), 0);
    cr_expect_str_eq(th_str(lines, "0.kind"), "base_fee");
    cr_expect_str_eq(th_str(lines, "0.amount"), "50.00");
    cr_expect(json_is_null(th_get(lines, "0.metric")));
    cr_expect(json_is_null(th_get(lines, "0.quantity")));
    cr_expect(json_is_null(th_get(lines, "0.source_invoice")));
    cr_expect_eq(json_array_size(th_get(lines, "0.sub_lines")), 0);
    cr_expect_str_eq(th_str(lines, "1.kind"), "usage");
    cr_expect_str_eq(th_str(lines, "1.metric"), "calls");
    cr_expect_str_eq(th_str(lines, "1.model"), "per_unit");
    cr_expect_str_eq(th_str(lines, "1.quantity"), "1250");
    cr_expect_str_eq(th_str(lines, "1.billable_quantity"), "1250");
    cr_expect_str_eq(th_str(lines, "1.unit_price"), "0.01");
    cr_expect_str_eq(th_str(lines, "1.amount_exact"), "12.5");
    cr_expect_str_eq(th_str(lines, "1.amount"), "12.50");
    json_t *subs = th_get(lines, "1.sub_lines");
    cr_assert_eq(json_array_size(subs), 2, "%s", r.body);
    cr_expect_str_eq(th_str(subs, "0.kind"), "day");
    cr_expect_str_eq(th_str(subs, "0.day"), "2026-02-01");
    cr_expect_str_eq(th_str(subs, "0.quantity"), "1000");
    cr_expect_str_eq(th_str(subs, "1.day"), "2026-02-02");
    cr_expect_str_eq(th_str(subs, "1.quantity"), "250");
    cr_expect(json_is_null(th_get(subs, "0.tier")));
    cr_expect(json_is_null(th_get(subs, "0.amount")));
    cr_expect_str_eq(th_str(lines, "2.kind"), "adjustment");
    cr_expect_str_eq(th_str(lines, "2.source_invoice.id"), src);
    char num[80];
    snprintf(num, sizeof num, "SEED-%s", src);
    cr_expect_str_eq(th_str(lines, "2.source_invoice.number"), num);
    th_resp_free(&r);
}

/* ---- late usage ----------------------------------------------------------------- */

/* qty units of metric for customer at t, into the raw events and both rollups. */
static void add_usage(const world *w, const char *cust, const char *metric, const char *t,
                      const char *qty) {
    char u[32], ev[64];
    snprintf(ev, sizeof ev, "late-%s", th_unique(u));
    PQclear(PGQ("SELECT ml_usage_ensure_partitions($1::timestamptz, $1::timestamptz)", t));
    PQclear(PGQ("INSERT INTO usage_event_ids (org_id, event_id, occurred_at) "
                "VALUES ($1, $2, $3::timestamptz)",
                w->org, ev, t));
    PQclear(PGQ("INSERT INTO usage_events (org_id, customer_id, metric_id, event_id, quantity, "
                "occurred_at) VALUES ($1, $2, $3, $4, $5::numeric, $6::timestamptz)",
                w->org, cust, metric, ev, qty, t));
    PQclear(PGQ("INSERT INTO usage_rollup (org_id, customer_id, metric_id, bucket, quantity, "
                "events, max_quantity) VALUES ($1, $2, $3, date_bin('15 minutes', "
                "$4::timestamptz, 'epoch'), $5::numeric, 1, $5::numeric) "
                "ON CONFLICT (org_id, customer_id, metric_id, bucket) DO UPDATE SET "
                "quantity = usage_rollup.quantity + EXCLUDED.quantity, "
                "events = usage_rollup.events + 1, "
                "max_quantity = greatest(usage_rollup.max_quantity, EXCLUDED.max_quantity)",
                w->org, cust, metric, t, qty));
    PQclear(PGQ("INSERT INTO usage_rollup_hour (org_id, customer_id, metric_id, bucket, quantity, "
                "events, max_quantity) VALUES ($1, $2, $3, date_bin('1 hour', "
                "$4::timestamptz, 'epoch'), $5::numeric, 1, $5::numeric) "
                "ON CONFLICT (org_id, customer_id, metric_id, bucket) DO UPDATE SET "
                "quantity = usage_rollup_hour.quantity + EXCLUDED.quantity, "
                "events = usage_rollup_hour.events + 1, "
                "max_quantity = greatest(usage_rollup_hour.max_quantity, EXCLUDED.max_quantity)",
                w->org, cust, metric, t, qty));
}

static th_resp get_invoice(const world *w, const char *id) {
    char path[160];
    snprintf(path, sizeof path, "/v1/invoices/%s", id);
    th_resp r = call(w->p[P_VIEWER].tok, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    return r;
}

Test(invoices, late_usage_shows_what_arrived_after_issue) {
    world w;
    make_world(&w);
    char cust[24], metric[24], iss[40], draft[40], adj[40];
    make_customer(&w, "late", false, cust);
    make_metric(&w, "calls", metric);
    seed_invoice_at(&w, cust, S_ISSUED, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", iss);
    seed_invoice_at(&w, cust, S_DRAFT, "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z", draft);
    PQclear(PGQ("UPDATE invoice_lines SET metric_id = $2 WHERE invoice_id IN ($1::uuid, $3::uuid) "
                "AND kind = 'usage'",
                iss, metric, draft));
    /* what was billed (1250), then nothing is late */
    add_usage(&w, cust, metric, "2026-03-05T10:20:00Z", "1000");
    add_usage(&w, cust, metric, "2026-03-31T23:59:59Z", "250");
    add_usage(&w, cust, metric, "2026-04-01T00:00:00Z", "999"); /* the next period */
    add_usage(&w, cust, metric, "2026-02-28T23:59:59Z", "999"); /* the previous one */
    th_resp r = get_invoice(&w, iss);
    cr_expect_eq(json_array_size(th_get(r.json, "late_usage")), 0, "%s", r.body);
    th_resp_free(&r);

    /* 30.5 arrive late */
    add_usage(&w, cust, metric, "2026-03-10T00:00:00Z", "30.5");
    r = get_invoice(&w, iss);
    json_t *lu = th_get(r.json, "late_usage");
    cr_assert_eq(json_array_size(lu), 1, "%s", r.body);
    cr_expect_str_eq(th_str(lu, "0.metric"), "calls");
    cr_expect_str_eq(th_str(lu, "0.billed_quantity"), "1250");
    cr_expect_str_eq(th_str(lu, "0.current_quantity"), "1280.5");
    cr_expect_str_eq(th_str(lu, "0.late_quantity"), "30.5");
    cr_expect_str_eq(th_str(lu, "0.adjusted_quantity"), "0");
    cr_expect_str_eq(th_str(lu, "0.unbilled_quantity"), "30.5");
    cr_expect_eq(json_array_size(th_get(lu, "0.adjusted_on")), 0);
    th_resp_free(&r);
    /* a draft with the same late usage in its period shows none (it would be
     * regenerated) */
    add_usage(&w, cust, metric, "2026-05-10T00:00:00Z", "5000");
    r = get_invoice(&w, draft);
    cr_expect_eq(json_array_size(th_get(r.json, "late_usage")), 0, "%s", r.body);
    th_resp_free(&r);

    /* the next invoice bills 20 of it as an adjustment: 10.5 are still late */
    seed_invoice_at(&w, cust, S_DRAFT, "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z", adj);
    PQclear(PGQ("INSERT INTO invoice_lines (invoice_id, org_id, position, kind, description, "
                "metric_id, metric_code, quantity, amount, source_invoice_id, adjusted_from, "
                "adjusted_to) VALUES ($1::uuid, $2, 5, 'adjustment', 'Late usage of March', $3, "
                "'calls', 20, 0.20, $4::uuid, 1250, 1270)",
                adj, w.org, metric, iss));
    r = get_invoice(&w, iss);
    lu = th_get(r.json, "late_usage");
    cr_assert_eq(json_array_size(lu), 1, "%s", r.body);
    cr_expect_str_eq(th_str(lu, "0.billed_quantity"), "1250");
    cr_expect_str_eq(th_str(lu, "0.late_quantity"), "30.5");
    cr_expect_str_eq(th_str(lu, "0.adjusted_quantity"), "20");
    cr_expect_str_eq(th_str(lu, "0.unbilled_quantity"), "10.5");
    cr_expect_eq(json_array_size(th_get(lu, "0.adjusted_on")), 1);
    cr_expect_str_eq(th_str(lu, "0.adjusted_on.0.id"), adj);
    cr_expect_str_eq(th_str(lu, "0.adjusted_on.0.status"), "draft");
    cr_expect(json_is_null(th_get(lu, "0.adjusted_on.0.number")));
    th_resp_free(&r);
    /* voiding the adjusting invoice puts the whole 30.5 back */
    th_resp v = act(w.p[P_FINANCE].tok, adj, A_VOID, "{}");
    expect_status(&v, 200, "void the adjusting invoice");
    th_resp_free(&v);
    r = get_invoice(&w, iss);
    lu = th_get(r.json, "late_usage");
    cr_assert_eq(json_array_size(lu), 1, "%s", r.body);
    cr_expect_str_eq(th_str(lu, "0.late_quantity"), "30.5");
    cr_expect_str_eq(th_str(lu, "0.unbilled_quantity"), "30.5");
    cr_expect_eq(json_array_size(th_get(lu, "0.adjusted_on")), 0);
    th_resp_free(&r);
    /* still shown once the invoice is paid */
    v = act(w.p[P_FINANCE].tok, iss, A_MARK_PAID, "{}");
    expect_status(&v, 200, "mark paid");
    th_resp_free(&v);
    r = get_invoice(&w, iss);
    cr_expect_eq(json_array_size(th_get(r.json, "late_usage")), 1, "%s", r.body);
    th_resp_free(&r);
    /* an adjustment covering everything leaves nothing unbilled; the late
     * usage stays listed with the invoice that bills it */
    char adj2[40];
    seed_invoice_at(&w, cust, S_DRAFT, "2026-04-01T00:00:00Z", "2026-04-15T00:00:00Z", adj2);
    PQclear(PGQ("INSERT INTO invoice_lines (invoice_id, org_id, position, kind, description, "
                "metric_id, metric_code, quantity, amount, source_invoice_id, adjusted_from, "
                "adjusted_to) VALUES ($1::uuid, $2, 5, 'adjustment', 'Late usage', $3, 'calls', "
                "30.5, 0.31, $4::uuid, 1250, 1280.5)",
                adj2, w.org, metric, iss));
    r = get_invoice(&w, iss);
    lu = th_get(r.json, "late_usage");
    cr_assert_eq(json_array_size(lu), 1, "%s", r.body);
    cr_expect_str_eq(th_str(lu, "0.late_quantity"), "30.5");
    cr_expect_str_eq(th_str(lu, "0.adjusted_quantity"), "30.5");
    cr_expect_str_eq(th_str(lu, "0.unbilled_quantity"), "0");
    cr_expect_str_eq(th_str(lu, "0.adjusted_on.0.id"), adj2);
    th_resp_free(&r);
}

/* ---- disputes ---------------------------------------------------------------------- */

Test(invoices, disputes_flow) {
    world w, b;
    make_world(&w);
    make_world(&b);
    char cust[24], id[40], path[200], did[40];
    make_customer(&w, "disp", false, cust);
    seed_invoice(&w, cust, S_ISSUED, id);
    snprintf(path, sizeof path, "/v1/invoices/%s/disputes", id);

    /* who may open */
    th_resp r = call(w.p[P_VIEWER].tok, "POST", path, "{\"message\":\"wrong\"}");
    expect_status(&r, 403, "viewer opens");
    th_resp_free(&r);
    r = call(w.p[P_KEY].tok, "POST", path, "{\"message\":\"wrong\"}");
    expect_status(&r, 403, "API key opens");
    th_resp_free(&r);
    r = call(w.p[P_ADMIN].tok, "POST", path, "{\"message\":\"wrong\"}");
    expect_status(&r, 403, "platform admin opens");
    th_resp_free(&r);
    static const char *const bad[] = {"{}", "{\"message\":\"\"}", "{\"message\":\"  \\n \"}",
                                      "{\"message\":null}", "{\"message\":\"x\",\"y\":1}"};
    for (size_t i = 0; i < ML_ARRAY_LEN(bad); i++) {
        r = call(w.p[P_OWNER].tok, "POST", path, bad[i]);
        expect_status(&r, 422, bad[i]);
        cr_expect(th_has_field_error(&r, i == 4 ? "y" : "message"), "%s: %s", bad[i], r.body);
        th_resp_free(&r);
    }
    {
        size_t n = 10001;
        char *big = malloc(n + 32);
        cr_assert(big);
        memcpy(big, "{\"message\":\"", 12);
        memset(big + 12, 'z', n);
        memcpy(big + 12 + n, "\"}", 3);
        r = call(w.p[P_OWNER].tok, "POST", path, big);
        expect_status(&r, 422, "10001 characters");
        cr_expect(th_has_field_error(&r, "message"), "%s", r.body);
        th_resp_free(&r);
        free(big);
    }
    cr_expect_eq(pgi(PGQ("SELECT count(*) FROM invoice_disputes WHERE invoice_id = $1::uuid", id)),
                 0, "a refused open wrote a dispute");

    r = call(w.p[P_APPROVER].tok, "POST", path,
             "{\"message\":\"The March usage looks doubled — «ça» 100%\"}");
    expect_status(&r, 201, "approver opens");
    snprintf(did, sizeof did, "%s", th_str(r.json, "id"));
    cr_expect_str_eq(th_str(r.json, "status"), "open");
    cr_expect_str_eq(th_str(r.json, "invoice.id"), id);
    cr_expect_str_eq(th_str(r.json, "opened_by"), w.p[P_APPROVER].email);
    cr_expect_eq(json_array_size(th_get(r.json, "messages")), 1);
    cr_expect_str_eq(th_str(r.json, "messages.0.message"),
                     "The March usage looks doubled — «ça» 100%");
    cr_expect_str_eq(th_str(r.json, "messages.0.author"), w.p[P_APPROVER].email);
    cr_expect_str_eq(th_str(r.json, "messages.0.author_role"), "approver");
    th_resp_free(&r);
    trail_row t;
    last_trail(id, &t);
    cr_expect_str_eq(t.action, "dispute_open");
    cr_expect_str_eq(t.from, "issued");
    cr_expect_str_eq(t.to, "issued");
    cr_expect_str_eq(t.actor, w.p[P_APPROVER].email);

    /* the thread */
    char mpath[200], rpath[200], gpath[200];
    snprintf(mpath, sizeof mpath, "/v1/disputes/%s/messages", did);
    snprintf(rpath, sizeof rpath, "/v1/disputes/%s/resolve", did);
    snprintf(gpath, sizeof gpath, "/v1/disputes/%s", did);
    r = call(w.p[P_VIEWER].tok, "POST", mpath, "{\"message\":\"me too\"}");
    expect_status(&r, 403, "viewer posts");
    th_resp_free(&r);
    r = call(w.p[P_ADMIN].tok, "POST", mpath, "{\"message\":\"Looking into it.\"}");
    expect_status(&r, 201, "admin replies without ?org");
    cr_expect_str_eq(th_str(r.json, "author"), w.p[P_ADMIN].email);
    cr_expect_str_eq(th_str(r.json, "author_role"), "admin");
    cr_expect_str_eq(th_str(r.json, "message"), "Looking into it.");
    th_resp_free(&r);
    r = call(w.p[P_FINANCE].tok, "POST", mpath, "{\"message\":\"Thanks\"}");
    expect_status(&r, 201, "finance posts");
    th_resp_free(&r);
    r = call(w.p[P_OWNER].tok, "POST", mpath, "{\"message\":\"\"}");
    expect_status(&r, 422, "empty message");
    cr_expect(th_has_field_error(&r, "message"));
    th_resp_free(&r);
    r = call(w.p[P_VIEWER].tok, "GET", gpath, NULL);
    expect_status(&r, 200, "viewer reads");
    json_t *m = th_get(r.json, "messages");
    cr_assert_eq(json_array_size(m), 3, "%s", r.body);
    cr_expect_str_eq(th_str(m, "0.author_role"), "approver");
    cr_expect_str_eq(th_str(m, "1.author_role"), "admin");
    cr_expect_str_eq(th_str(m, "2.author_role"), "finance");
    th_resp_free(&r);
    cr_expect(pgi(PGQ("SELECT count(*) FROM invoice_dispute_messages WHERE dispute_id = $1::uuid "
                      "AND org_id IS NULL AND author_role = 'admin'",
                      did)) == 1,
              "an admin's message carries no organization");

    /* other organizations see nothing */
    r = call(b.p[P_OWNER].tok, "GET", gpath, NULL);
    expect_status(&r, 404, "B reads A's dispute");
    th_resp_free(&r);
    r = call(b.p[P_OWNER].tok, "POST", mpath, "{\"message\":\"hi\"}");
    expect_status(&r, 404, "B posts in A's dispute");
    th_resp_free(&r);
    r = call(b.p[P_OWNER].tok, "POST", rpath, "{}");
    expect_status(&r, 404, "B resolves A's dispute");
    th_resp_free(&r);
    r = call(b.p[P_OWNER].tok, "GET", "/v1/disputes?limit=1000", NULL);
    expect_status(&r, 200, "B lists");
    cr_expect(strstr(r.body, did) == NULL, "B's list shows A's dispute");
    th_resp_free(&r);

    /* listings */
    char lpath[200];
    snprintf(lpath, sizeof lpath, "/v1/disputes?status=open&invoice_id=%s", id);
    r = call(w.p[P_KEY].tok, "GET", lpath, NULL);
    expect_status(&r, 200, "key lists open");
    cr_expect_eq(json_array_size(th_get(r.json, "data")), 1, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "data.0.id"), did);
    cr_expect_eq(json_integer_value(th_get(r.json, "data.0.messages_count")), 3);
    th_resp_free(&r);
    r = call(w.p[P_ADMIN].tok, "GET", "/v1/disputes?status=open&limit=1000", NULL);
    expect_status(&r, 200, "admin lists all");
    cr_expect(strstr(r.body, did) != NULL, "the admin's list lacks the dispute");
    th_resp_free(&r);
    static const char *const bad_q[] = {"/v1/disputes?status=closed", "/v1/disputes?invoice_id=x",
                                        "/v1/disputes?bogus=1"};
    static const char *const bad_f[] = {"status", "invoice_id", "bogus"};
    static const long bad_s[] = {422, 422, 400};
    for (size_t i = 0; i < ML_ARRAY_LEN(bad_q); i++) {
        r = call(w.p[P_OWNER].tok, "GET", bad_q[i], NULL);
        expect_status(&r, bad_s[i], bad_q[i]);
        cr_expect(th_has_field_error(&r, bad_f[i]), "%s: %s", bad_q[i], r.body);
        th_resp_free(&r);
    }
    r = get_invoice(&w, id);
    cr_expect_eq(json_integer_value(th_get(r.json, "disputes.open")), 1);
    cr_expect_eq(json_integer_value(th_get(r.json, "disputes.total")), 1);
    th_resp_free(&r);

    /* resolving: owner, finance and admins only */
    r = call(w.p[P_APPROVER].tok, "POST", rpath, "{}");
    expect_status(&r, 403, "approver resolves");
    th_resp_free(&r);
    r = call(w.p[P_VIEWER].tok, "POST", rpath, "{}");
    expect_status(&r, 403, "viewer resolves");
    th_resp_free(&r);
    r = call(w.p[P_FINANCE].tok, "POST", rpath, "{\"comment\":\"Credited\",\"x\":1}");
    expect_status(&r, 422, "unknown field");
    th_resp_free(&r);
    cr_expect_eq(pgi(PGQ("SELECT count(*) FROM invoice_disputes WHERE id = $1::uuid AND "
                         "status = 'open'",
                         did)),
                 1, "a refused resolve resolved");
    r = call(w.p[P_FINANCE].tok, "POST", rpath, "{\"comment\":\"Credited on the next invoice\"}");
    expect_status(&r, 200, "finance resolves");
    cr_expect_str_eq(th_str(r.json, "status"), "resolved");
    cr_expect_str_eq(th_str(r.json, "resolved_by"), w.p[P_FINANCE].email);
    cr_expect(json_is_string(th_get(r.json, "resolved_at")));
    m = th_get(r.json, "messages");
    cr_expect_eq(json_array_size(m), 4, "the comment closes the thread: %s", r.body);
    cr_expect_str_eq(th_str(m, "3.message"), "Credited on the next invoice");
    th_resp_free(&r);
    last_trail(id, &t);
    cr_expect_str_eq(t.action, "dispute_resolve");
    cr_expect_str_eq(t.actor, w.p[P_FINANCE].email);
    cr_expect_str_eq(t.comment, "Credited on the next invoice");

    r = call(w.p[P_OWNER].tok, "POST", mpath, "{\"message\":\"one more\"}");
    expect_status(&r, 409, "message on a resolved dispute");
    cr_expect_str_eq(th_err_code(&r), "conflict");
    cr_expect(strstr(th_str(r.json, "error.message"), "resolved") != NULL, "%s", r.body);
    th_resp_free(&r);
    r = call(w.p[P_ADMIN].tok, "POST", mpath, "{\"message\":\"one more\"}");
    expect_status(&r, 409, "admin message on a resolved dispute");
    th_resp_free(&r);
    r = call(w.p[P_OWNER].tok, "POST", rpath, "{}");
    expect_status(&r, 409, "resolve twice");
    th_resp_free(&r);
    cr_expect_eq(pgi(PGQ("SELECT count(*) FROM invoice_dispute_messages WHERE dispute_id = "
                         "$1::uuid",
                         did)),
                 4, "a refused message was stored");

    snprintf(lpath, sizeof lpath, "/v1/disputes?status=open&invoice_id=%s", id);
    r = call(w.p[P_OWNER].tok, "GET", lpath, NULL);
    cr_expect_eq(json_array_size(th_get(r.json, "data")), 0, "%s", r.body);
    th_resp_free(&r);
    snprintf(lpath, sizeof lpath, "/v1/disputes?status=resolved&invoice_id=%s", id);
    r = call(w.p[P_OWNER].tok, "GET", lpath, NULL);
    cr_expect_eq(json_array_size(th_get(r.json, "data")), 1, "%s", r.body);
    th_resp_free(&r);

    /* a second dispute: an admin resolves it without ?org */
    r = call(w.p[P_OWNER].tok, "POST", path, "{\"message\":\"again\"}");
    expect_status(&r, 201, "owner opens another");
    char did2[40];
    snprintf(did2, sizeof did2, "%s", th_str(r.json, "id"));
    th_resp_free(&r);
    snprintf(rpath, sizeof rpath, "/v1/disputes/%s/resolve", did2);
    r = call(w.p[P_ADMIN].tok, "POST", rpath, "{}");
    expect_status(&r, 200, "admin resolves");
    cr_expect_str_eq(th_str(r.json, "resolved_by"), w.p[P_ADMIN].email);
    cr_expect_eq(json_array_size(th_get(r.json, "messages")), 1, "no comment, no message");
    th_resp_free(&r);
    cr_expect_eq(pgi(PGQ("SELECT count(*) FROM invoice_actions WHERE invoice_id = $1::uuid AND "
                         "action = 'dispute_resolve' AND org_id = $2",
                         id, w.org)),
                 2);
    r = get_invoice(&w, id);
    cr_expect_eq(json_integer_value(th_get(r.json, "disputes.open")), 0);
    cr_expect_eq(json_integer_value(th_get(r.json, "disputes.total")), 2);
    cr_expect_str_eq(th_str(r.json, "status"), "issued", "disputes do not move the invoice");
    th_resp_free(&r);
}

/* ---- listings --------------------------------------------------------------------- */

/* All ids of GET path (one page of up to 1000) in order, into ids; count. */
static size_t list_ids(const char *token, const char *path, char (*ids)[40], size_t cap) {
    th_resp r = call(token, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "GET %s: %ld %s", path, r.status, r.body);
    json_t *d = th_get(r.json, "data");
    cr_assert(json_is_array(d));
    size_t n = json_array_size(d);
    cr_assert_leq(n, cap);
    for (size_t i = 0; i < n; i++) snprintf(ids[i], 40, "%s", th_str(json_array_get(d, i), "id"));
    cr_expect(json_is_null(th_get(r.json, "next_cursor")), "GET %s: not one page", path);
    th_resp_free(&r);
    return n;
}

static bool has_id(char (*ids)[40], size_t n, const char *id) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ids[i], id)) return true;
    return false;
}

Test(invoices, listings_filter_page_and_isolate) {
    world w, b;
    make_world(&w);
    make_world(&b);
    char c1[24], c2[24], bc[24];
    make_customer(&w, "list-1", false, c1);
    make_customer(&w, "list-2", false, c2);
    make_customer(&b, "list-1", false, bc);
    /* c1: one invoice per state, months 2025-01..06; c2: two in 2025-03 */
    char ids[S_N][40], c2a[40], c2b[40], bid[40];
    for (int s = 0; s < S_N; s++) {
        char st[40], en[40];
        snprintf(st, sizeof st, "2025-%02d-01T00:00:00Z", s + 1);
        snprintf(en, sizeof en, "2025-%02d-01T00:00:00Z", s + 2);
        seed_invoice_at(&w, c1, s, st, en, ids[s]);
    }
    seed_invoice_at(&w, c2, S_ISSUED, "2025-03-01T00:00:00Z", "2025-03-16T00:00:00Z", c2a);
    seed_invoice_at(&w, c2, S_PAID, "2025-03-16T00:00:00Z", "2025-04-01T00:00:00Z", c2b);
    seed_invoice_at(&b, bc, S_DRAFT, "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z", bid);
    const char *own = w.p[P_VIEWER].tok;
    static char got[64][40];

    /* everything, newest first */
    size_t n = list_ids(own, "/v1/invoices?limit=1000", got, 64);
    cr_expect_eq(n, 8);
    cr_expect_str_eq(got[0], c2b, "newest first");
    cr_expect_str_eq(got[7], ids[0], "oldest last");
    cr_expect(!has_id(got, n, bid), "A sees B's invoice");
    th_resp r = call(own, "GET", "/v1/invoices?limit=1", NULL);
    cr_expect_eq(json_object_size(json_array_get(th_get(r.json, "data"), 0)) > 0, 1);
    cr_expect_null(th_get(r.json, "data.0.lines"), "listing rows are summaries");
    cr_expect_str_eq(th_str(r.json, "data.0.customer.id"), "list-2");
    cr_expect_str_eq(th_str(r.json, "data.0.organization"), w.slug);
    cr_expect_str_eq(th_str(r.json, "data.0.total"), "75.00");
    th_resp_free(&r);

    /* views */
    n = list_ids(own, "/v1/invoices?view=current&limit=1000", got, 64);
    cr_expect_eq(n, 5, "draft, pending, approved, issued (c1) + issued (c2)");
    for (int s = 0; s < S_N; s++)
        cr_expect_eq(has_id(got, n, ids[s]), s <= S_ISSUED, "current view and %s", k_states[s]);
    cr_expect(has_id(got, n, c2a));
    n = list_ids(own, "/v1/invoices?view=past&limit=1000", got, 64);
    cr_expect_eq(n, 3);
    cr_expect(has_id(got, n, ids[S_PAID]) && has_id(got, n, ids[S_VOID]) && has_id(got, n, c2b));
    /* statuses, alone and with a view */
    n = list_ids(own, "/v1/invoices?status=draft,paid&limit=1000", got, 64);
    cr_expect_eq(n, 3);
    cr_expect(has_id(got, n, ids[S_DRAFT]) && has_id(got, n, ids[S_PAID]) && has_id(got, n, c2b));
    n = list_ids(own, "/v1/invoices?status=draft,paid&view=past&limit=1000", got, 64);
    cr_expect_eq(n, 2);
    n = list_ids(own, "/v1/invoices?status=pending_approval", got, 64);
    cr_expect_eq(n, 1);
    cr_expect_str_eq(got[0], ids[S_PENDING]);
    /* customer and period */
    n = list_ids(own, "/v1/invoices?customer_id=list-2&limit=1000", got, 64);
    cr_expect_eq(n, 2);
    cr_expect(has_id(got, n, c2a) && has_id(got, n, c2b));
    n = list_ids(own, "/v1/invoices?customer_id=list-2&view=current", got, 64);
    cr_expect_eq(n, 1);
    cr_expect_str_eq(got[0], c2a);
    n = list_ids(own, "/v1/invoices?period=2025-03&limit=1000", got, 64);
    cr_expect_eq(n, 3, "c1's March and c2's two halves");
    cr_expect(has_id(got, n, ids[2]) && has_id(got, n, c2a) && has_id(got, n, c2b));
    n = list_ids(own, "/v1/invoices?period=2025-12", got, 64);
    cr_expect_eq(n, 0);
    n = list_ids(own, "/v1/invoices?customer_id=nobody", got, 64);
    cr_expect_eq(n, 0);

    /* bad parameters name themselves */
    static const char *const bad_q[] = {
        "/v1/invoices?status=drafty",  "/v1/invoices?status=draft,",
        "/v1/invoices?status=",        "/v1/invoices?view=future",
        "/v1/invoices?period=2025-13", "/v1/invoices?period=2025-3",
        "/v1/invoices?period=March",   "/v1/invoices?customer_id=",
        "/v1/invoices?limit=0",        "/v1/invoices?cursor=%%%",
        "/v1/invoices?colour=red",     "/v1/invoices?status=draft&status=paid",
    };
    static const char *const bad_f[] = {"status", "status", "status", "view",
                                        "period", "period", "period", "customer_id",
                                        NULL,     NULL,     "colour", "status"};
    static const long bad_s[] = {422, 422, 422, 422, 422, 422, 422, 422, 400, 400, 400, 400};
    for (size_t i = 0; i < ML_ARRAY_LEN(bad_q); i++) {
        r = call(own, "GET", bad_q[i], NULL);
        expect_status(&r, bad_s[i], bad_q[i]);
        if (bad_f[i]) cr_expect(th_has_field_error(&r, bad_f[i]), "%s: %s", bad_q[i], r.body);
        th_resp_free(&r);
    }

    /* pages of 3 cover everything exactly once, in the same order */
    static char all[64][40];
    size_t total = list_ids(own, "/v1/invoices?limit=1000", all, 64);
    char cursor[512] = "";
    size_t seen = 0;
    for (int page = 0; page < 10; page++) {
        char path[700];
        snprintf(path, sizeof path, "/v1/invoices?limit=3%s%s", *cursor ? "&cursor=" : "", cursor);
        r = call(w.p[P_KEY].tok, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "%s", r.body);
        json_t *d = th_get(r.json, "data");
        for (size_t i = 0; i < json_array_size(d); i++, seen++) {
            cr_assert_lt(seen, total, "more rows paged than listed");
            cr_expect_str_eq(th_str(json_array_get(d, i), "id"), all[seen], "row %zu", seen);
        }
        json_t *nc = th_get(r.json, "next_cursor");
        bool more = json_is_string(nc);
        if (more) snprintf(cursor, sizeof cursor, "%s", json_string_value(nc));
        th_resp_free(&r);
        if (!more) break;
    }
    cr_expect_eq(seen, total, "paging saw %zu of %zu", seen, total);

    /* B sees only its own; the admin sees both, or one with ?org */
    n = list_ids(b.p[P_OWNER].tok, "/v1/invoices?limit=1000", got, 64);
    cr_expect_eq(n, 1);
    cr_expect_str_eq(got[0], bid);
    n = list_ids(b.p[P_OWNER].tok, "/v1/invoices?customer_id=list-1&limit=1000", got, 64);
    cr_expect_eq(n, 1, "B's customer list-1 has one invoice; A's list-1 is not B's");
    r = call(w.p[P_ADMIN].tok, "GET", "/v1/invoices?period=2025-03&limit=1000", NULL);
    expect_status(&r, 200, "admin lists all organizations");
    cr_expect(strstr(r.body, bid) && strstr(r.body, c2a), "admin sees both organizations");
    bool slug_b = false;
    json_t *d = th_get(r.json, "data");
    for (size_t i = 0; i < json_array_size(d); i++)
        if (!strcmp(th_str(json_array_get(d, i), "id"), bid))
            slug_b = !strcmp(th_str(json_array_get(d, i), "organization"), b.slug);
    cr_expect(slug_b, "admin rows carry the organization's slug");
    th_resp_free(&r);
    char path[200];
    snprintf(path, sizeof path, "/v1/invoices?org=%s&limit=1000", b.slug);
    n = list_ids(w.p[P_ADMIN].tok, path, got, 64);
    cr_expect_eq(n, 1);
    cr_expect_str_eq(got[0], bid);
}
