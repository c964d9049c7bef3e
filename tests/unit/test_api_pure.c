/* test_api_pure.c — the pure helpers of api/: route matching, cookies,
 * cursors, role names, and the route table's own consistency. */
#include "fmacros.h"
#include "api.h"
#include <criterion/criterion.h>
#include <stdlib.h>

static void free_pv(char **pv, int n) {
    for (int i = 0; i < n; i++) free(pv[i]);
}

Test(match, literal_params_rest_and_decoding) {
    static const struct {
        char pattern[40];
        char path[60];
        int ok;
        int n;
        char p0[40];
        char p1[40];
    } t[] = {
        {"/healthz", "/healthz", 1, 0, "", ""},
        {"/healthz", "/healthz/", 0, 0, "", ""},
        {"/healthz", "/health", 0, 0, "", ""},
        {"/v1/customers/{id}", "/v1/customers/site-1", 1, 1, "site-1", ""},
        {"/v1/customers/{id}", "/v1/customers/", 0, 0, "", ""},
        {"/v1/customers/{id}", "/v1/customers/a/b", 0, 0, "", ""},
        {"/v1/customers/{id}", "/v1/customers/a%2Fb", 1, 1, "a/b", ""},
        {"/v1/customers/{id}", "/v1/customers/Z%C3%BCrich", 1, 1, "Z\xc3\xbcrich", ""},
        {"/v1/x/{a}/y/{b}", "/v1/x/1/y/2", 1, 2, "1", "2"},
        {"/v1/x/{a}/y/{b}", "/v1/x/1/z/2", 0, 0, "", ""},
        {"/ui/{*}", "/ui/app.js", 1, 1, "app.js", ""},
        {"/ui/{*}", "/ui/", 1, 1, "", ""},
        {"/ui/{*}", "/u", 0, 0, "", ""},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(t); i++) {
        char *pv[API_MAX_PARAMS];
        int n = -1;
        bool ok = api_match_path(t[i].pattern, t[i].path, pv, &n);
        cr_expect_eq(ok, (bool)t[i].ok, "%s vs %s", t[i].pattern, t[i].path);
        if (!ok || !t[i].ok) continue;
        cr_expect_eq(n, t[i].n);
        if (n > 0) cr_expect_str_eq(pv[0], t[i].p0);
        if (n > 1) cr_expect_str_eq(pv[1], t[i].p1);
        free_pv(pv, n);
    }
}

Test(cookie, finds_the_named_cookie) {
    api_req r;
    memset(&r, 0, sizeof r);
    char c[] = "a=1; meterline_session=ms_abc; meterline_session_x=no; b=2";
    r.h_cookie = c;
    char *v = api_cookie_dup(&r, "meterline_session");
    cr_assert_not_null(v);
    cr_expect_str_eq(v, "ms_abc");
    free(v);
    v = api_cookie_dup(&r, "b");
    cr_expect_str_eq(v, "2");
    free(v);
    cr_expect_null(api_cookie_dup(&r, "meterline"));
    char c2[] = "junk;;=;x";
    r.h_cookie = c2;
    cr_expect_null(api_cookie_dup(&r, "x"));
    r.h_cookie = NULL;
    cr_expect_null(api_cookie_dup(&r, "x"));
}

Test(cursor, round_trip_and_rejects_garbage) {
    static const char *const vals[] = {"42", "site-00001", "Zürich", "a b/c?d", ""};
    for (size_t i = 0; i < ML_ARRAY_LEN(vals); i++) {
        char *e = api_cursor_encode(vals[i]);
        cr_assert_not_null(e);
        cr_expect_eq(strspn(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     strlen(e), "url-safe: %s", e);
        char *d = api_cursor_decode(e);
        cr_assert_not_null(d);
        cr_expect_str_eq(d, vals[i]);
        free(e);
        free(d);
    }
    cr_expect_null(api_cursor_decode("!!!"));
    cr_expect_null(api_cursor_decode("AA=="), "padding is not our encoding");
    cr_expect_null(api_cursor_decode("AA"), "a NUL byte inside is refused");
}

Test(roles, names_round_trip) {
    static const unsigned roles[] = {ROLE_ADMIN, ROLE_OWNER, ROLE_FINANCE, ROLE_APPROVER,
                                     ROLE_VIEWER};
    for (size_t i = 0; i < ML_ARRAY_LEN(roles); i++)
        cr_expect_eq(api_role_parse(api_role_name(roles[i])), roles[i]);
    cr_expect_eq(api_role_parse("root"), 0u);
    cr_expect_str_eq(api_role_name(0), "none");
}

Test(routes, table_is_consistent) {
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route *r = &api_routes[i];
        cr_expect(r->fn && r->name && r->pattern[0] == '/', "route %zu", i);
        if (r->flags & RT_INLINE)
            cr_expect(r->flags & RT_PUBLIC, "%s: inline routes cannot authenticate", r->name);
        if (!(r->flags & RT_PUBLIC))
            cr_expect(r->roles & ROLE_ADMIN, "%s: platform admins may do everything", r->name);
        if (r->flags & RT_JSON) cr_expect(r->max_body != 0, "%s: JSON route needs a body", r->name);
        if (!strcmp(r->method, "GET"))
            cr_expect_eq(r->max_body, 0, "%s: GET takes no body", r->name);
        if (r->flags & RT_ALL_ORGS) cr_expect(r->flags & RT_ORG, "%s", r->name);
        for (size_t j = 0; j < i; j++)
            cr_expect(strcmp(r->method, api_routes[j].method) ||
                          strcmp(r->pattern, api_routes[j].pattern),
                      "duplicate route %s %s", r->method, r->pattern);
    }
}
