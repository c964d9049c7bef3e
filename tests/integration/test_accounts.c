/* test_accounts.c — signup, login, logout, sessions, cookies, API keys, rate
 * limits and platform admins, over real HTTP against a real billing-api. */
#include "fmacros.h"
#include "th.h"
#include <criterion/criterion.h>
#include <stdlib.h>
#include <unistd.h>

static th_server *srv;

/* A low failure limit so the rate-limit test is quick. */
static void setup(void) {
    static const char *const env[] = {"BILLING_LOGIN_MAX_FAILURES=3", "BILLING_LOGIN_WINDOW_S=60",
                                      NULL};
    srv = th_start(env);
}
static void teardown(void) { cr_expect_eq(th_stop(srv), 0, "billing-api must exit 0 on SIGTERM"); }

TestSuite(accounts, .init = setup, .fini = teardown);

Test(accounts, signup_returns_owner_org_and_working_token) {
    char u[32], body[512];
    th_unique(u);
    snprintf(body, sizeof body,
             "{\"org_name\":\"Zürich Höfe %s\",\"name\":\"Zoë\",\"email\":\"Z-%s@Example.test\","
             "\"password\":\"%s\"}",
             u, u, TH_PASSWORD);
    th_resp r = th_req(srv, "POST", "/v1/signup", NULL, body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "user.role"), "owner");
    char want_email[96];
    snprintf(want_email, sizeof want_email, "z-%s@example.test", u);
    cr_expect_str_eq(th_str(r.json, "user.email"), want_email, "emails are stored lower-case");
    cr_expect(strncmp(th_str(r.json, "organization.slug"), "z-rich-h-fe-", 12) == 0 ||
                  strncmp(th_str(r.json, "organization.slug"), "zurich", 6) == 0 ||
                  strlen(th_str(r.json, "organization.slug")) > 0,
              "slug: %s", th_str(r.json, "organization.slug"));
    cr_expect_null(th_get(r.json, "user.password_hash"), "the hash never leaves the server");
    char cookie[256];
    cr_assert(th_header(&r, "Set-Cookie", cookie, sizeof cookie));
    cr_expect(strstr(cookie, "HttpOnly") && strstr(cookie, "SameSite=Strict"), "%s", cookie);
    char token[128];
    snprintf(token, sizeof token, "%s", th_str(r.json, "token"));
    th_resp_free(&r);

    r = th_auth(srv, token, "GET", "/v1/me", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "user.email"), want_email);
    th_resp_free(&r);

    /* same email again → 409 naming the field */
    r = th_req(srv, "POST", "/v1/signup", NULL, body);
    cr_expect_eq(r.status, 409, "%s", r.body);
    cr_expect(th_has_field_error(&r, "email"));
    th_resp_free(&r);
}

Test(accounts, signup_validation_names_every_field) {
    th_resp r = th_req(srv, "POST", "/v1/signup", NULL,
                       "{\"org_name\":\"\",\"email\":\"not-an-email\",\"password\":\"short\"}");
    cr_assert_eq(r.status, 422, "%s", r.body);
    cr_expect_str_eq(th_err_code(&r), "validation_failed");
    cr_expect(th_has_field_error(&r, "org_name"));
    cr_expect(th_has_field_error(&r, "name"), "missing name is reported");
    cr_expect(th_has_field_error(&r, "email"));
    cr_expect(th_has_field_error(&r, "password"));
    th_resp_free(&r);
}

Test(accounts, login_logout_and_token_revoked) {
    char token[64], email[128], body[256];
    th_signup(srv, token, NULL, email);
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, TH_PASSWORD);
    th_resp r = th_req(srv, "POST", "/v1/sessions", NULL, body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "user.email"), email);
    cr_expect(strlen(th_str(r.json, "expires_at")) > 0);
    char t2[128];
    snprintf(t2, sizeof t2, "%s", th_str(r.json, "token"));
    th_resp_free(&r);

    r = th_auth(srv, t2, "DELETE", "/v1/sessions/current", NULL);
    cr_expect_eq(r.status, 204, "%s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, t2, "GET", "/v1/me", NULL);
    cr_expect_eq(r.status, 401, "a logged-out token must stop working: %s", r.body);
    cr_expect_str_eq(th_err_code(&r), "unauthenticated");
    th_resp_free(&r);
    /* the other session is untouched */
    r = th_auth(srv, token, "GET", "/v1/me", NULL);
    cr_expect_eq(r.status, 200);
    th_resp_free(&r);
}

Test(accounts, wrong_password_and_unknown_email_look_the_same) {
    char email[128], body[256];
    th_signup(srv, NULL, NULL, email);
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"wrong password\"}", email);
    th_resp a = th_req(srv, "POST", "/v1/sessions", NULL, body);
    th_resp b = th_req(srv, "POST", "/v1/sessions", NULL,
                       "{\"email\":\"nobody-at-all@example.test\",\"password\":\"whatever1\"}");
    cr_expect_eq(a.status, 401);
    cr_expect_eq(b.status, 401);
    cr_expect_str_eq(th_str(a.json, "error.message"), th_str(b.json, "error.message"));
    th_resp_free(&a);
    th_resp_free(&b);
}

Test(accounts, no_or_bad_credentials_are_401) {
    th_resp r = th_req(srv, "GET", "/v1/me", NULL, NULL);
    cr_expect_eq(r.status, 401);
    th_resp_free(&r);
    r = th_auth(srv, "ms_not-a-real-token", "GET", "/v1/me", NULL);
    cr_expect_eq(r.status, 401);
    th_resp_free(&r);
    r = th_auth(srv, "mk_not-a-real-key", "GET", "/v1/customers", NULL);
    cr_expect_eq(r.status, 401);
    th_resp_free(&r);
    const char *basic[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
    r = th_req(srv, "GET", "/v1/me", basic, NULL);
    cr_expect_eq(r.status, 401);
    th_resp_free(&r);
}

Test(accounts, failed_logins_are_rate_limited_per_email_and_address) {
    char email[128], other[128], body[256];
    th_signup(srv, NULL, NULL, email);
    th_signup(srv, NULL, NULL, other);
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"wrong password\"}", email);
    for (int i = 0; i < 3; i++) {
        th_resp r = th_req(srv, "POST", "/v1/sessions", NULL, body);
        cr_expect_eq(r.status, 401, "attempt %d: %s", i, r.body);
        th_resp_free(&r);
    }
    th_resp r = th_req(srv, "POST", "/v1/sessions", NULL, body);
    cr_assert_eq(r.status, 429, "%s", r.body);
    cr_expect_str_eq(th_err_code(&r), "rate_limited");
    char ra[32];
    cr_assert(th_header(&r, "Retry-After", ra, sizeof ra));
    cr_expect(atoi(ra) > 0 && atoi(ra) <= 60, "Retry-After %s", ra);
    th_resp_free(&r);
    /* even the right password is refused while limited */
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, TH_PASSWORD);
    r = th_req(srv, "POST", "/v1/sessions", NULL, body);
    cr_expect_eq(r.status, 429);
    th_resp_free(&r);
    /* another account from the same address is not affected */
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", other, TH_PASSWORD);
    r = th_req(srv, "POST", "/v1/sessions", NULL, body);
    cr_expect_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
}

static void cookie_of(const th_resp *r, char *out, size_t cap) {
    char sc[256];
    cr_assert(th_header(r, "Set-Cookie", sc, sizeof sc));
    snprintf(out, cap, "Cookie: %.*s", (int)strcspn(sc, ";"), sc);
}

Test(accounts, cookie_session_requires_same_origin_for_changes) {
    char email[128], body[256], cookie[256], origin[128], host[128];
    th_signup(srv, NULL, NULL, email);
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, TH_PASSWORD);
    th_resp r = th_req(srv, "POST", "/v1/sessions", NULL, body);
    cr_assert_eq(r.status, 201);
    cookie_of(&r, cookie, sizeof cookie);
    th_resp_free(&r);
    snprintf(origin, sizeof origin, "Origin: %s", srv->base);
    snprintf(host, sizeof host, "Host: 127.0.0.1:%d", srv->port);

    const char *get[] = {cookie, NULL};
    r = th_req(srv, "GET", "/v1/me", get, NULL);
    cr_expect_eq(r.status, 200, "the cookie authenticates reads: %s", r.body);
    th_resp_free(&r);

    const char *metric = "{\"code\":\"c1\",\"name\":\"C\",\"aggregation\":\"sum\"}";
    const char *no_origin[] = {cookie, NULL};
    r = th_req(srv, "POST", "/v1/metrics", no_origin, metric);
    cr_expect_eq(r.status, 403, "cookie POST without Origin: %s", r.body);
    th_resp_free(&r);
    const char *evil[] = {cookie, "Origin: https://evil.example", NULL};
    r = th_req(srv, "POST", "/v1/metrics", evil, metric);
    cr_expect_eq(r.status, 403, "cross-origin cookie POST: %s", r.body);
    th_resp_free(&r);
    const char *cross[] = {cookie, origin, "Sec-Fetch-Site: cross-site", NULL};
    r = th_req(srv, "POST", "/v1/metrics", cross, metric);
    cr_expect_eq(r.status, 403, "Sec-Fetch-Site cross-site: %s", r.body);
    th_resp_free(&r);
    const char *same[] = {cookie, origin, host, "Sec-Fetch-Site: same-origin", NULL};
    r = th_req(srv, "POST", "/v1/metrics", same, metric);
    cr_expect_eq(r.status, 201, "same-origin cookie POST: %s", r.body);
    th_resp_free(&r);

    /* logout through the cookie clears it and ends the session */
    const char *out[] = {cookie, origin, NULL};
    r = th_req(srv, "DELETE", "/v1/sessions/current", out, NULL);
    cr_expect_eq(r.status, 204);
    char sc[256];
    cr_expect(th_header(&r, "Set-Cookie", sc, sizeof sc) && strstr(sc, "Max-Age=0"));
    th_resp_free(&r);
    r = th_req(srv, "GET", "/v1/me", get, NULL);
    cr_expect_eq(r.status, 401);
    th_resp_free(&r);
}

Test(accounts, api_keys_have_scopes_are_shown_once_and_revocable) {
    char owner[64];
    th_signup(srv, owner, NULL, NULL);
    th_resp r =
        th_auth(srv, owner, "POST", "/v1/api-keys", "{\"name\":\"reader\",\"scopes\":[\"read\"]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    char key[128], id[64];
    snprintf(key, sizeof key, "%s", th_str(r.json, "key"));
    snprintf(id, sizeof id, "%s", th_str(r.json, "id"));
    cr_expect(strncmp(key, "mk_", 3) == 0);
    th_resp_free(&r);
    r = th_auth(srv, owner, "POST", "/v1/api-keys",
                "{\"name\":\"ingest\",\"scopes\":[\"usage:write\"]}");
    cr_assert_eq(r.status, 201);
    char ingest[128];
    snprintf(ingest, sizeof ingest, "%s", th_str(r.json, "key"));
    th_resp_free(&r);

    r = th_auth(srv, owner, "GET", "/v1/api-keys", NULL);
    cr_assert_eq(r.status, 200);
    cr_expect_eq(json_array_size(th_get(r.json, "data")), 2);
    cr_expect(strstr(r.body, key) == NULL, "the key is never listed again");
    th_resp_free(&r);

    r = th_auth(srv, key, "GET", "/v1/customers", NULL);
    cr_expect_eq(r.status, 200, "read scope reads: %s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, key, "POST", "/v1/customers", "{\"external_id\":\"a\",\"name\":\"A\"}");
    cr_expect_eq(r.status, 403, "read scope cannot write: %s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, ingest, "GET", "/v1/customers", NULL);
    cr_expect_eq(r.status, 403, "usage:write cannot read customers: %s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, key, "POST", "/v1/api-keys", "{\"name\":\"x\",\"scopes\":[\"read\"]}");
    cr_expect_eq(r.status, 403, "a key cannot mint keys");
    th_resp_free(&r);

    char path[128];
    snprintf(path, sizeof path, "/v1/api-keys/%s", id);
    r = th_auth(srv, owner, "DELETE", path, NULL);
    cr_expect_eq(r.status, 204);
    th_resp_free(&r);
    r = th_auth(srv, key, "GET", "/v1/customers", NULL);
    cr_expect_eq(r.status, 401, "a revoked key stops working");
    th_resp_free(&r);
    r = th_auth(srv, owner, "DELETE", path, NULL);
    cr_expect_eq(r.status, 404, "revoking twice");
    th_resp_free(&r);

    r = th_auth(srv, owner, "POST", "/v1/api-keys", "{\"name\":\"x\",\"scopes\":[\"admin\"]}");
    cr_expect_eq(r.status, 422);
    cr_expect(th_has_field_error(&r, "scopes[0]"));
    th_resp_free(&r);
}

Test(accounts, platform_admin_sees_every_organization) {
    char u[32], email[96], cmd[512];
    th_unique(u);
    snprintf(email, sizeof email, "admin-%s@example.test", u);
    snprintf(cmd, sizeof cmd, "echo '%s' | %s create-admin --email %s --password-stdin >/dev/null",
             TH_PASSWORD, th_api_bin(), email);
    cr_assert_eq(system(cmd), 0, "create-admin");
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, TH_PASSWORD);
    th_resp r = th_req(srv, "POST", "/v1/sessions", NULL, body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    char admin[128];
    snprintf(admin, sizeof admin, "%s", th_str(r.json, "token"));
    th_resp_free(&r);

    char owner[64], slug[64];
    th_signup(srv, owner, slug, NULL);
    r = th_auth(srv, owner, "POST", "/v1/customers", "{\"external_id\":\"adm-1\",\"name\":\"A\"}");
    cr_assert_eq(r.status, 201);
    th_resp_free(&r);

    char path[256];
    snprintf(path, sizeof path, "/v1/customers/adm-1?org=%s", slug);
    r = th_auth(srv, admin, "GET", path, NULL);
    cr_expect_eq(r.status, 200, "admin reads with ?org: %s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, admin, "GET", "/v1/customers/adm-1", NULL);
    cr_expect_eq(r.status, 400, "admin must pick an org for a single object: %s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, admin, "GET", "/v1/customers?limit=1000", NULL);
    cr_expect_eq(r.status, 200, "admin lists across organizations: %s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, admin, "GET", "/v1/admin/organizations?limit=1000", NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, slug) != NULL);
    th_resp_free(&r);
    r = th_auth(srv, owner, "GET", "/v1/admin/organizations", NULL);
    cr_expect_eq(r.status, 403, "owners are not platform admins");
    th_resp_free(&r);
    r = th_auth(srv, admin, "GET", "/v1/customers?org=no-such-org-xyz", NULL);
    cr_expect_eq(r.status, 404);
    th_resp_free(&r);

    /* duplicate admin is refused */
    cr_expect_neq(system(cmd), 0);
}

/* Expired sessions are refused at once and deleted by the server's health
 * thread (at start, then every 10 minutes); live ones stay. */
Test(accounts, expired_sessions_are_purged) {
    char token[128], email[128];
    th_signup(srv, token, NULL, email);
    PGconn *c = th_pg();
    const char *p[] = {email};
    /* a second, already expired session for the same user */
    PGresult *r = PQexecParams(c,
                               "INSERT INTO sessions (token_hash, user_id, expires_at)"
                               " SELECT encode(sha256(gen_random_uuid()::text::bytea), 'hex'), id,"
                               "        now() - interval '1 minute'"
                               " FROM users WHERE email = $1 RETURNING token_hash",
                               1, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    char hash[80];
    snprintf(hash, sizeof hash, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    th_server *s2 = th_start(NULL); /* purges at start */
    const char *ph[] = {hash};
    int left = -1;
    for (int i = 0; i < 50 && left != 0; i++) {
        r = PQexecParams(c, "SELECT count(*) FROM sessions WHERE token_hash = $1", 1, NULL, ph,
                         NULL, NULL, 0);
        left = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (left) usleep(100000);
    }
    cr_expect_eq(left, 0, "the expired session was deleted");
    th_resp me = th_auth(s2, token, "GET", "/v1/me", NULL);
    cr_expect_eq(me.status, 200, "the live session still works: %s", me.body);
    th_resp_free(&me);
    cr_expect_eq(th_stop(s2), 0);
    PQfinish(c);
}
