/* test_validation.c — what the API refuses and how: the exact status, the
 * error.code and, for 422, exactly the fields named in error.details; plus
 * what it accepts at the edges (decimal forms, content types, body limits),
 * PATCH semantics, pagination and literal search.
 *
 * Cases live in tables ({what, method, path, content type, body, status,
 * code, fields, message part}); each table runs against a fresh organization
 * that owns one metric ("calls") and two plans ("basic", "pro") and no
 * customers, and after every table the organization must still hold exactly
 * that: a refused request writes nothing.
 */
#include "fmacros.h"
#include "th.h"
#include <criterion/criterion.h>
#include <stdlib.h>

static th_server *srv;
static char owner[64];

static void setup(void) {
    srv = th_start(NULL);
    th_signup(srv, owner, NULL, NULL);
    th_resp r = th_auth(srv, owner, "POST", "/v1/metrics",
                        "{\"code\":\"calls\",\"name\":\"Calls\",\"aggregation\":\"sum\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, owner, "POST", "/v1/plans",
                "{\"code\":\"basic\",\"name\":\"Basic\",\"currency\":\"USD\",\"charges\":"
                "[{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":\"0.01\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, owner, "POST", "/v1/plans",
                "{\"code\":\"pro\",\"name\":\"Pro\",\"currency\":\"USD\",\"charges\":[]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
}
static void teardown(void) { cr_expect_eq(th_stop(srv), 0, "billing-api must exit 0 on SIGTERM"); }

TestSuite(validation, .init = setup, .fini = teardown);

/* ---- the case runner ---------------------------------------------------- */

#define NOCT "" /* send no Content-Type at all */

typedef struct vcase {
    const char *what;
    const char *method, *path;
    const char *ctype; /* NULL = application/json, NOCT = none */
    const char *body;  /* NULL = no body */
    int status;
    const char *code;      /* error.code; NULL for a success */
    const char *fields[6]; /* 422: exactly these fields are named */
    const char *msg;       /* part of error.message, or NULL */
} vcase;

/* Sends c with the owner's token and checks status, code, fields, message. */
static void run_case(const vcase *c) {
    char auth[128], ct[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", owner);
    const char *h[3] = {auth, NULL, NULL};
    if (c->ctype) {
        if (c->ctype[0])
            snprintf(ct, sizeof ct, "Content-Type: %s", c->ctype);
        else
            snprintf(ct, sizeof ct, "Content-Type:"); /* curl: drop the header */
        h[1] = ct;
    }
    th_resp r = th_req(srv, c->method, c->path, h, c->body);
    cr_expect_eq(r.status, c->status, "[%s] %s %s: want %d, got %ld %s", c->what, c->method,
                 c->path, c->status, r.status, r.body);
    if (c->code) {
        cr_expect(json_is_object(r.json), "[%s] error body is not JSON: %s", c->what, r.body);
        cr_expect_str_eq(th_err_code(&r), c->code, "[%s] error.code in %s", c->what, r.body);
        cr_expect(json_is_string(th_get(r.json, "error.message")), "[%s] no message", c->what);
        cr_expect(json_is_array(th_get(r.json, "error.details")), "[%s] no details", c->what);
        char ctype[128];
        cr_expect(th_header(&r, "Content-Type", ctype, sizeof ctype) &&
                      !strncmp(ctype, "application/json", 16),
                  "[%s] errors are JSON", c->what);
    }
    size_t want = 0;
    for (; want < ML_ARRAY_LEN(c->fields) && c->fields[want]; want++)
        cr_expect(th_has_field_error(&r, c->fields[want]), "[%s] no error for field %s: %s",
                  c->what, c->fields[want], r.body);
    if (c->status == 422) {
        json_t *d = th_get(r.json, "error.details");
        cr_expect_eq(json_array_size(d), want, "[%s] want %zu field errors, got %s", c->what, want,
                     r.body);
    }
    if (c->msg)
        cr_expect(strstr(th_str(r.json, "error.message"), c->msg) != NULL,
                  "[%s] message should mention '%s': %s", c->what, c->msg, r.body);
    th_resp_free(&r);
}

static size_t list_len(const char *path) {
    th_resp r = th_auth(srv, owner, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "GET %s: %ld %s", path, r.status, r.body);
    size_t n = json_array_size(th_get(r.json, "data"));
    th_resp_free(&r);
    return n;
}

/* The fixture organization is untouched: no customer, 1 metric, 2 plans, its
 * owner as the only user, no API key. */
static void expect_nothing_written(const char *table) {
    cr_expect_eq(list_len("/v1/customers?limit=1000"), 0, "[%s] a refused request wrote a customer",
                 table);
    cr_expect_eq(list_len("/v1/metrics?limit=1000"), 1, "[%s] a refused request wrote a metric",
                 table);
    cr_expect_eq(list_len("/v1/plans?limit=1000"), 2, "[%s] a refused request wrote a plan", table);
    cr_expect_eq(list_len("/v1/users?limit=1000"), 1, "[%s] a refused request wrote a user", table);
    cr_expect_eq(list_len("/v1/api-keys"), 0, "[%s] a refused request made an API key", table);
}

static void run_table(const char *name, const vcase *t, size_t n) {
    for (size_t i = 0; i < n; i++) run_case(&t[i]);
    expect_nothing_written(name);
}
#define RUN(t) run_table(#t, t, ML_ARRAY_LEN(t))

#define CUST    "/v1/customers"
#define PLANS   "/v1/plans"
#define METRICS "/v1/metrics"
#define BR      "bad_request"
#define VF      "validation_failed"

/* ---- 400: not JSON, not an object --------------------------------------- */

static const vcase k_syntax[] = {
    {"not JSON", "POST", CUST, NULL, "external_id=a&name=A", 400, BR, {0}, "invalid JSON"},
    {"truncated", "POST", CUST, NULL, "{\"external_id\":\"a\",\"name\":\"A\"", 400, BR, {0}, NULL},
    {"truncated in a string", "POST", CUST, NULL, "{\"external_id\":\"a", 400, BR, {0}, NULL},
    {"trailing garbage",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\"} x",
     400,
     BR,
     {0},
     NULL},
    {"two documents",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\"}{}",
     400,
     BR,
     {0},
     NULL},
    {"trailing comma",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",}",
     400,
     BR,
     {0},
     NULL},
    {"single quotes", "POST", CUST, NULL, "{'external_id':'a','name':'A'}", 400, BR, {0}, NULL},
    {"duplicate key at top level",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"name\":\"B\"}",
     400,
     BR,
     {0},
     "\"name\""},
    {"duplicate key nested",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"billing_address\":{\"city\":\"X\",\"city\":\"Y\"}}",
     400,
     BR,
     {0},
     "\"city\""},
    {"duplicate key in an array element",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"d\",\"name\":\"D\",\"currency\":\"USD\",\"charges\":[{\"metric\":\"calls\","
     "\"model\":\"per_unit\",\"unit_price\":1,\"unit_price\":2}]}",
     400,
     BR,
     {0},
     "\"unit_price\""},
    {"duplicate key message says duplicate",
     "POST",
     METRICS,
     NULL,
     "{\"code\":\"a\",\"code\":\"b\",\"name\":\"N\",\"aggregation\":\"sum\"}",
     400,
     BR,
     {0},
     "duplicate"},
    {"top-level array",
     "POST",
     CUST,
     NULL,
     "[{\"external_id\":\"a\",\"name\":\"A\"}]",
     400,
     BR,
     {0},
     "object"},
    {"top-level string", "POST", CUST, NULL, "\"a\"", 400, BR, {0}, NULL},
    {"top-level number", "POST", CUST, NULL, "42", 400, BR, {0}, NULL},
    {"top-level null", "POST", CUST, NULL, "null", 400, BR, {0}, NULL},
    {"empty body", "POST", CUST, NULL, "", 400, BR, {0}, NULL},
    {"whitespace body", "POST", CUST, NULL, "  \n\t ", 400, BR, {0}, NULL},
    {"empty body on PATCH", "PATCH", CUST "/nobody", NULL, "", 400, BR, {0}, NULL},
    {"empty body on plans", "POST", PLANS, NULL, "", 400, BR, {0}, NULL},
    {"invalid UTF-8 byte in a string",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"Z\xff\xfe\"}",
     400,
     BR,
     {0},
     NULL},
    {"overlong UTF-8 in a string",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"\xc0\xaf\"}",
     400,
     BR,
     {0},
     NULL},
    {"UTF-8 surrogate bytes in a string",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"\xed\xa0\x80\"}",
     400,
     BR,
     {0},
     NULL},
    {"truncated UTF-8 sequence",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"\xe2\x82\"}",
     400,
     BR,
     {0},
     NULL},
    {"lone surrogate escape",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"\\ud800\"}",
     400,
     BR,
     {0},
     NULL},
    {"\\u0000 in a string",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"a\\u0000b\"}",
     400,
     BR,
     {0},
     NULL},
    {"leading zero number",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"z\",\"name\":\"Z\",\"currency\":\"USD\",\"base_fee\":01,\"charges\":[]}",
     400,
     BR,
     {0},
     NULL},
    {"NaN",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"z\",\"name\":\"Z\",\"currency\":\"USD\",\"base_fee\":NaN,\"charges\":[]}",
     400,
     BR,
     {0},
     NULL},
    {"number with a dangling dot",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"z\",\"name\":\"Z\",\"currency\":\"USD\",\"base_fee\":1.,\"charges\":[]}",
     400,
     BR,
     {0},
     NULL},
    {"string starting with U+0001",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"\\u00011.5\"}",
     400,
     BR,
     {0},
     NULL},
};

Test(validation, bodies_that_are_not_a_json_object_are_400) { RUN(k_syntax); }

/* ---- 422: unknown fields, types, required ------------------------------- */

static const vcase k_fields[] = {
    {"one unknown field",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"nickname\":\"x\"}",
     422,
     VF,
     {"nickname"},
     NULL},
    {"each unknown field named",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"nickname\":\"x\",\"Name\":\"y\",\"foo\":null}",
     422,
     VF,
     {"nickname", "Name", "foo"},
     NULL},
    {"unknown nested in address",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"billing_address\":{\"street\":\"x\"}}",
     422,
     VF,
     {"billing_address.street"},
     NULL},
    {"unknown in a charge",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"u\",\"name\":\"U\",\"currency\":\"USD\",\"charges\":[{\"metric\":\"calls\","
     "\"model\":\"per_unit\",\"unit_price\":\"1\",\"price\":\"1\"}]}",
     422,
     VF,
     {"charges[0].price"},
     NULL},
    {"unknown in a tier",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"u\",\"name\":\"U\",\"currency\":\"USD\",\"charges\":[{\"metric\":\"calls\","
     "\"model\":\"graduated\",\"tiers\":[{\"up_to\":null,\"unit_price\":\"1\",\"to\":5}]}]}",
     422,
     VF,
     {"charges[0].tiers[0].to"},
     NULL},
    {"unknown on metrics",
     "POST",
     METRICS,
     NULL,
     "{\"code\":\"u\",\"name\":\"U\",\"aggregation\":\"sum\",\"window\":\"day\"}",
     422,
     VF,
     {"window"},
     NULL},
    {"unknown on api-keys",
     "POST",
     "/v1/api-keys",
     NULL,
     "{\"name\":\"k\",\"scopes\":[\"read\"],\"expires\":1}",
     422,
     VF,
     {"expires"},
     NULL},
    {"unknown on users",
     "POST",
     "/v1/users",
     NULL,
     "{\"name\":\"u\",\"email\":\"u@example.test\",\"password\":\"long enough\",\"role\":"
     "\"viewer\",\"admin\":true}",
     422,
     VF,
     {"admin"},
     NULL},
    {"required fields of a customer",
     "POST",
     CUST,
     NULL,
     "{}",
     422,
     VF,
     {"external_id", "name"},
     NULL},
    {"required fields of a plan",
     "POST",
     PLANS,
     NULL,
     "{}",
     422,
     VF,
     {"code", "name", "currency", "charges"},
     NULL},
    {"required fields of a metric",
     "POST",
     METRICS,
     NULL,
     "{}",
     422,
     VF,
     {"code", "name", "aggregation"},
     NULL},
    {"required fields of a charge",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"r\",\"name\":\"R\",\"currency\":\"USD\",\"charges\":[{}]}",
     422,
     VF,
     {"charges[0].metric", "charges[0].model"},
     NULL},
    {"null for a non-nullable string",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":null}",
     422,
     VF,
     {"name"},
     NULL},
    {"null for a bool",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"require_approval\":null}",
     422,
     VF,
     {"require_approval"},
     NULL},
    /* string fields given other types */
    {"string given number",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":123,\"name\":\"A\"}",
     422,
     VF,
     {"external_id"},
     "1 invalid field"},
    {"string given decimal number",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":1.5}",
     422,
     VF,
     {"name"},
     NULL},
    {"string given bool",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":true}",
     422,
     VF,
     {"name"},
     NULL},
    {"string given object",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":{}}",
     422,
     VF,
     {"name"},
     NULL},
    {"string given array",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":[\"a\"],\"name\":\"A\"}",
     422,
     VF,
     {"external_id"},
     NULL},
    /* bool */
    {"bool given string",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"require_approval\":\"true\"}",
     422,
     VF,
     {"require_approval"},
     NULL},
    {"bool given number",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"require_approval\":1}",
     422,
     VF,
     {"require_approval"},
     NULL},
    /* object */
    {"object given array",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"billing_address\":[]}",
     422,
     VF,
     {"billing_address"},
     NULL},
    {"object given string",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"billing_address\":\"Main St 1\"}",
     422,
     VF,
     {"billing_address"},
     NULL},
    {"nested string given number",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"billing_address\":{\"postal_code\":8001}}",
     422,
     VF,
     {"billing_address.postal_code"},
     NULL},
    /* array */
    {"array given object",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"charges\":{}}",
     422,
     VF,
     {"charges"},
     NULL},
    {"array given string",
     "POST",
     "/v1/api-keys",
     NULL,
     "{\"name\":\"k\",\"scopes\":\"read\"}",
     422,
     VF,
     {"scopes"},
     NULL},
    {"array element not an object",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"charges\":[\"calls\"]}",
     422,
     VF,
     {"charges[0]"},
     NULL},
    {"tiers given object",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"charges\":[{\"metric\":\"calls\","
     "\"model\":\"graduated\",\"tiers\":{}}]}",
     422,
     VF,
     {"charges[0].tiers"},
     NULL},
    {"empty scopes",
     "POST",
     "/v1/api-keys",
     NULL,
     "{\"name\":\"k\",\"scopes\":[]}",
     422,
     VF,
     {"scopes"},
     NULL},
    {"repeated scope",
     "POST",
     "/v1/api-keys",
     NULL,
     "{\"name\":\"k\",\"scopes\":[\"read\",\"read\"]}",
     422,
     VF,
     {"scopes[1]"},
     NULL},
    {"scope given number",
     "POST",
     "/v1/api-keys",
     NULL,
     "{\"name\":\"k\",\"scopes\":[1]}",
     422,
     VF,
     {"scopes[0]"},
     NULL},
    /* decimal */
    {"decimal given \"abc\"",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":\"abc\",\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"decimal given \"1e999\"",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":\"1e999\",\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"decimal given number 1e999",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":1e999,\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"decimal given true",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":true,\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"decimal given object",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":{},\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"decimal given empty string",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":\"\",\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"decimal given \" 1\"",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":\" 1\",\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"decimal given \"NaN\"",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":\"NaN\",\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"decimal given \"Infinity\"",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":\"Infinity\","
     "\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"decimal given a huge integer",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":"
     "123456789012345678901234567890123456789012,\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"decimal over 18 integer digits",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"base_fee\":\"1234567890123456789\","
     "\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"tax_rate given \"abc\"",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"tax_rate\":\"abc\"}",
     422,
     VF,
     {"tax_rate"},
     NULL},
    {"tax_rate given false",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"tax_rate\":false}",
     422,
     VF,
     {"tax_rate"},
     NULL},
    {"tax_rate over 1",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"tax_rate\":1.5}",
     422,
     VF,
     {"tax_rate"},
     NULL},
    {"tax_rate negative",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"tax_rate\":\"-0.1\"}",
     422,
     VF,
     {"tax_rate"},
     NULL},
    {"tax_rate 7 places",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"tax_rate\":\"0.1234567\"}",
     422,
     VF,
     {"tax_rate"},
     NULL},
    {"every error reported at once",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":1,\"name\":\"\",\"email\":\"x\",\"currency\":\"usd\",\"extra\":0}",
     422,
     VF,
     {"external_id", "name", "email", "currency", "extra"},
     "5 invalid fields"},
};

Test(validation, unknown_fields_wrong_types_and_missing_fields_are_422) { RUN(k_fields); }

/* ---- 422: values -------------------------------------------------------- */

#define PLAN_WITH(charge)                                                                          \
    "{\"code\":\"v\",\"name\":\"V\",\"currency\":\"USD\",\"charges\":[" charge "]}"
#define TIERED(model, tiers) "{\"metric\":\"calls\",\"model\":\"" model "\",\"tiers\":[" tiers "]}"

static const vcase k_values[] = {
    {"negative base_fee",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"v\",\"name\":\"V\",\"currency\":\"USD\",\"base_fee\":\"-1\",\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"negative unit_price",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":-0.5}"),
     422,
     VF,
     {"charges[0].unit_price"},
     NULL},
    {"negative minimum",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":1,\"minimum\":\"-5\"}"),
     422,
     VF,
     {"charges[0].minimum"},
     NULL},
    {"negative included_units",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":1,"
               "\"included_units\":-1}"),
     422,
     VF,
     {"charges[0].included_units"},
     NULL},
    {"negative tier price",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH(TIERED("graduated", "{\"up_to\":null,\"unit_price\":\"-1\"}")),
     422,
     VF,
     {"charges[0].tiers[0].unit_price"},
     NULL},
    {"13 decimal places",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":\"0.0000000000001\"}"),
     422,
     VF,
     {"charges[0].unit_price"},
     NULL},
    {"13 decimal places as a number",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"v\",\"name\":\"V\",\"currency\":\"USD\",\"base_fee\":1.1234567890123,"
     "\"charges\":[]}",
     422,
     VF,
     {"base_fee"},
     NULL},
    {"tiers out of order",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH(TIERED("graduated", "{\"up_to\":100,\"unit_price\":1},{\"up_to\":50,"
                                   "\"unit_price\":1},{\"up_to\":null,\"unit_price\":1}")),
     422,
     VF,
     {"charges[0].tiers[1].up_to"},
     NULL},
    {"tiers with equal bounds",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH(TIERED("volume", "{\"up_to\":100,\"unit_price\":1},{\"up_to\":\"100.0\","
                                "\"unit_price\":1},{\"up_to\":null,\"unit_price\":1}")),
     422,
     VF,
     {"charges[0].tiers[1].up_to"},
     NULL},
    {"open tier not last",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH(TIERED("graduated", "{\"up_to\":null,\"unit_price\":1},{\"up_to\":100,"
                                   "\"unit_price\":1}")),
     422,
     VF,
     {"charges[0].tiers[0].up_to", "charges[0].tiers[1].up_to"},
     NULL},
    {"last tier closed",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH(TIERED("graduated", "{\"up_to\":100,\"unit_price\":1}")),
     422,
     VF,
     {"charges[0].tiers[0].up_to"},
     NULL},
    {"tier up_to zero",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH(TIERED("graduated", "{\"up_to\":0,\"unit_price\":1},{\"up_to\":null,"
                                   "\"unit_price\":1}")),
     422,
     VF,
     {"charges[0].tiers[0].up_to"},
     NULL},
    {"tier without up_to",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH(TIERED("graduated", "{\"unit_price\":1}")),
     422,
     VF,
     {"charges[0].tiers[0].up_to"},
     NULL},
    {"tier without unit_price",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH(TIERED("graduated", "{\"up_to\":null}")),
     422,
     VF,
     {"charges[0].tiers[0].unit_price"},
     NULL},
    {"missing tiers for graduated",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"graduated\"}"),
     422,
     VF,
     {"charges[0].tiers"},
     NULL},
    {"empty tiers for volume",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH(TIERED("volume", "")),
     422,
     VF,
     {"charges[0].tiers"},
     NULL},
    {"unit_price given for volume",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"volume\",\"unit_price\":\"1\",\"tiers\":[{"
               "\"up_to\":null,\"unit_price\":\"1\"}]}"),
     422,
     VF,
     {"charges[0].unit_price"},
     NULL},
    {"tiers given for per_unit",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":\"1\",\"tiers\":[{"
               "\"up_to\":null,\"unit_price\":\"1\"}]}"),
     422,
     VF,
     {"charges[0].tiers"},
     NULL},
    {"per_unit without unit_price",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"per_unit\"}"),
     422,
     VF,
     {"charges[0].unit_price"},
     NULL},
    {"package without package_size",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"package\",\"unit_price\":\"10\"}"),
     422,
     VF,
     {"charges[0].package_size"},
     NULL},
    {"package_size zero",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"package\",\"unit_price\":\"10\","
               "\"package_size\":0}"),
     422,
     VF,
     {"charges[0].package_size"},
     NULL},
    {"package_size on per_unit",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":\"10\","
               "\"package_size\":100}"),
     422,
     VF,
     {"charges[0].package_size"},
     NULL},
    {"unknown model",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"flat\",\"unit_price\":\"10\"}"),
     422,
     VF,
     {"charges[0].model"},
     NULL},
    {"unknown metric in the second charge",
     "POST",
     PLANS,
     NULL,
     PLAN_WITH("{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":\"1\"},"
               "{\"metric\":\"nope\",\"model\":\"per_unit\",\"unit_price\":\"1\"}"),
     422,
     VF,
     {"charges[1].metric"},
     NULL},
    {"aggregation invalid",
     "POST",
     METRICS,
     NULL,
     "{\"code\":\"m\",\"name\":\"M\",\"aggregation\":\"avg\"}",
     422,
     VF,
     {"aggregation"},
     NULL},
    {"aggregation upper case",
     "POST",
     METRICS,
     NULL,
     "{\"code\":\"m\",\"name\":\"M\",\"aggregation\":\"SUM\"}",
     422,
     VF,
     {"aggregation"},
     NULL},
    {"unique_count without unique_property",
     "POST",
     METRICS,
     NULL,
     "{\"code\":\"m\",\"name\":\"M\",\"aggregation\":\"unique_count\"}",
     422,
     VF,
     {"unique_property"},
     NULL},
    {"unique_property without unique_count",
     "POST",
     METRICS,
     NULL,
     "{\"code\":\"m\",\"name\":\"M\",\"aggregation\":\"sum\",\"unique_property\":\"user\"}",
     422,
     VF,
     {"unique_property"},
     NULL},
    {"metric code with a space",
     "POST",
     METRICS,
     NULL,
     "{\"code\":\"m x\",\"name\":\"M\",\"aggregation\":\"sum\"}",
     422,
     VF,
     {"code"},
     NULL},
    {"plan code with a slash",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"a/b\",\"name\":\"V\",\"currency\":\"USD\",\"charges\":[]}",
     422,
     VF,
     {"code"},
     NULL},
    {"currency lower case",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"v\",\"name\":\"V\",\"currency\":\"usd\",\"charges\":[]}",
     422,
     VF,
     {"currency"},
     NULL},
    {"currency not ISO 4217",
     "POST",
     PLANS,
     NULL,
     "{\"code\":\"v\",\"name\":\"V\",\"currency\":\"XYZ\",\"charges\":[]}",
     422,
     VF,
     {"currency"},
     NULL},
    {"currency too short",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"currency\":\"US\"}",
     422,
     VF,
     {"currency"},
     NULL},
    {"customer currency lower case",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"currency\":\"usd\"}",
     422,
     VF,
     {"currency"},
     NULL},
    {"customer currency XYZ",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"currency\":\"XYZ\"}",
     422,
     VF,
     {"currency"},
     NULL},
    {"email without @",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"email\":\"billing.example.test\"}",
     422,
     VF,
     {"email"},
     NULL},
    {"email without domain dot",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"email\":\"a@b\"}",
     422,
     VF,
     {"email"},
     NULL},
    {"email with two @",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"email\":\"a@b@c.test\"}",
     422,
     VF,
     {"email"},
     NULL},
    {"email with a space",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"email\":\"a b@c.test\"}",
     422,
     VF,
     {"email"},
     NULL},
    {"user email invalid",
     "POST",
     "/v1/users",
     NULL,
     "{\"name\":\"u\",\"email\":\"nope\",\"password\":\"long enough\",\"role\":\"viewer\"}",
     422,
     VF,
     {"email"},
     NULL},
    {"user role admin",
     "POST",
     "/v1/users",
     NULL,
     "{\"name\":\"u\",\"email\":\"r@example.test\",\"password\":\"long enough\",\"role\":"
     "\"admin\"}",
     422,
     VF,
     {"role"},
     NULL},
    {"user password short",
     "POST",
     "/v1/users",
     NULL,
     "{\"name\":\"u\",\"email\":\"r@example.test\",\"password\":\"short\",\"role\":\"viewer\"}",
     422,
     VF,
     {"password"},
     NULL},
    {"empty name",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"\"}",
     422,
     VF,
     {"name"},
     NULL},
    {"empty external_id",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"\",\"name\":\"A\"}",
     422,
     VF,
     {"external_id"},
     NULL},
    {"unknown plan",
     "POST",
     CUST,
     NULL,
     "{\"external_id\":\"a\",\"name\":\"A\",\"plan\":\"gold\"}",
     422,
     VF,
     {"plan"},
     NULL},
};

Test(validation, invalid_values_are_422_naming_the_field) { RUN(k_values); }

/* Bodies built at run time: string lengths at and over their bounds. */
static char *padded(const char *unit, int n) {
    size_t ul = strlen(unit);
    char *s = malloc(ul * (size_t)n + 1);
    cr_assert(s);
    for (int i = 0; i < n; i++) memcpy(s + ul * (size_t)i, unit, ul);
    s[ul * (size_t)n] = '\0';
    return s;
}

Test(validation, strings_are_bounded_in_characters_not_bytes) {
    struct {
        const char *path, *fmt, *unit, *field;
        int max;
    } k[] = {
        {CUST, "{\"external_id\":\"ok-%d\",\"name\":\"%s\"}", "x", "name", 200},
        {CUST, "{\"external_id\":\"ok-%d\",\"name\":\"%s\"}", "\xc3\xa9", "name", 200},
        /* seq below is always two digits: 2 + 126 = 128, 1 + 2 + 61 = 64 */
        {CUST, "{\"external_id\":\"%d%s\",\"name\":\"N\"}", "e", "external_id", 126},
        {METRICS, "{\"code\":\"m%d%s\",\"name\":\"M\",\"aggregation\":\"sum\"}", "c", "code", 61},
        {METRICS, "{\"code\":\"u%d\",\"name\":\"M\",\"aggregation\":\"sum\",\"unit\":\"%s\"}",
         "\xe2\x82\xac", "unit", 32},
    };
    int seq = 10;
    for (size_t i = 0; i < ML_ARRAY_LEN(k); i++) {
        for (int over = 0; over < 2; over++) {
            char *s = padded(k[i].unit, k[i].max + over);
            size_t cap = strlen(s) + 256;
            char *body = malloc(cap);
            cr_assert(body);
            snprintf(body, cap, k[i].fmt, seq++, s);
            th_resp r = th_auth(srv, owner, "POST", k[i].path, body);
            if (over) {
                cr_expect_eq(r.status, 422, "%s over its bound: %ld %.300s", k[i].field, r.status,
                             r.body);
                cr_expect_str_eq(th_err_code(&r), VF);
                cr_expect(th_has_field_error(&r, k[i].field), "%s: %.300s", k[i].field, r.body);
                cr_expect_eq(json_array_size(th_get(r.json, "error.details")), 1);
            } else {
                cr_expect_eq(r.status, 201, "%s at its bound: %ld %.300s", k[i].field, r.status,
                             r.body);
            }
            th_resp_free(&r);
            free(body);
            free(s);
        }
    }
}

/* ---- query parameters --------------------------------------------------- */

static const vcase k_query[] = {
    {"limit=0", "GET", CUST "?limit=0", NULL, NULL, 400, BR, {0}, "limit"},
    {"limit=1001", "GET", CUST "?limit=1001", NULL, NULL, 400, BR, {0}, "limit"},
    {"limit=abc", "GET", CUST "?limit=abc", NULL, NULL, 400, BR, {0}, "limit"},
    {"limit=-1", "GET", CUST "?limit=-1", NULL, NULL, 400, BR, {0}, "limit"},
    {"limit=5x", "GET", CUST "?limit=5x", NULL, NULL, 400, BR, {0}, "limit"},
    {"limit empty", "GET", CUST "?limit=", NULL, NULL, 400, BR, {0}, "limit"},
    {"limit=1e3", "GET", CUST "?limit=1e3", NULL, NULL, 400, BR, {0}, "limit"},
    {"limit=1000 ok", "GET", CUST "?limit=1000", NULL, NULL, 200, NULL, {0}, NULL},
    {"limit=1 ok", "GET", CUST "?limit=1", NULL, NULL, 200, NULL, {0}, NULL},
    {"metrics limit=0", "GET", METRICS "?limit=0", NULL, NULL, 400, BR, {0}, "limit"},
    {"plans limit=1001", "GET", PLANS "?limit=1001", NULL, NULL, 400, BR, {0}, "limit"},
    {"users limit=abc", "GET", "/v1/users?limit=abc", NULL, NULL, 400, BR, {0}, "limit"},
    {"cursor not base64", "GET", CUST "?cursor=!!!", NULL, NULL, 400, BR, {0}, "cursor"},
    {"cursor not a position", "GET", CUST "?cursor=YWJj", NULL, NULL, 400, BR, {0}, "cursor"},
    {"metrics cursor not a position",
     "GET",
     METRICS "?cursor=YWJj",
     NULL,
     NULL,
     400,
     BR,
     {0},
     "cursor"},
    {"plans cursor not base64", "GET", PLANS "?cursor=%25%25", NULL, NULL, 400, BR, {0}, "cursor"},
    {"cursor with NUL", "GET", CUST "?cursor=AA", NULL, NULL, 400, BR, {0}, "cursor"},
};

Test(validation, bad_paging_parameters_are_400) { RUN(k_query); }

/* ---- routing, methods, content types, sizes ----------------------------- */

static const vcase k_http[] = {
    {"unknown route", "GET", "/v1/nope", NULL, NULL, 404, "not_found", {0}, NULL},
    {"unknown nested route", "GET", CUST "/a/b", NULL, NULL, 404, "not_found", {0}, NULL},
    {"unknown route with POST", "POST", "/v2/customers", NULL, "{}", 404, "not_found", {0}, NULL},
    {"trailing slash", "GET", CUST "/", NULL, NULL, 404, "not_found", {0}, NULL},
    {"unknown customer", "GET", CUST "/nobody", NULL, NULL, 404, "not_found", {0}, NULL},
    {"unknown metric", "GET", METRICS "/nothing", NULL, NULL, 404, "not_found", {0}, NULL},
    {"unknown plan", "GET", PLANS "/gold", NULL, NULL, 404, "not_found", {0}, NULL},
    {"API key id not a uuid",
     "DELETE",
     "/v1/api-keys/not-a-uuid",
     NULL,
     NULL,
     404,
     "not_found",
     {0},
     NULL},
    {"API key id unknown",
     "DELETE",
     "/v1/api-keys/00000000-0000-4000-8000-000000000000",
     NULL,
     NULL,
     404,
     "not_found",
     {0},
     NULL},
    {"text/plain",
     "POST",
     CUST,
     "text/plain",
     "{\"external_id\":\"a\",\"name\":\"A\"}",
     415,
     "unsupported_media_type",
     {0},
     NULL},
    {"no Content-Type",
     "POST",
     CUST,
     NOCT,
     "{\"external_id\":\"a\",\"name\":\"A\"}",
     415,
     "unsupported_media_type",
     {0},
     NULL},
    {"application/jsonx",
     "POST",
     CUST,
     "application/jsonx",
     "{\"external_id\":\"a\",\"name\":\"A\"}",
     415,
     "unsupported_media_type",
     {0},
     NULL},
    {"application/json-patch+json",
     "PATCH",
     CUST "/a",
     "application/json-patch+json",
     "{\"name\":\"A\"}",
     415,
     "unsupported_media_type",
     {0},
     NULL},
    {"form encoded",
     "POST",
     METRICS,
     "application/x-www-form-urlencoded",
     "{\"code\":\"a\",\"name\":\"A\",\"aggregation\":\"sum\"}",
     415,
     "unsupported_media_type",
     {0},
     NULL},
    {"text/json",
     "POST",
     PLANS,
     "text/json",
     "{\"code\":\"a\",\"name\":\"A\",\"currency\":\"USD\",\"charges\":[]}",
     415,
     "unsupported_media_type",
     {0},
     NULL},
};

Test(validation, routes_and_content_types) { RUN(k_http); }

Test(validation, wrong_method_is_405_with_allow) {
    struct {
        const char *method, *path, *allow[3];
    } k[] = {
        {"PUT", CUST, {"GET", "POST", NULL}},
        {"DELETE", CUST, {"GET", "POST", NULL}},
        {"DELETE", "/v1/me", {"GET", NULL, NULL}},
        {"POST", METRICS "/calls", {"GET", NULL, NULL}},
        {"PUT", CUST "/a", {"GET", "PATCH", NULL}},
        {"GET", "/v1/api-keys/abc", {"DELETE", NULL, NULL}},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(k); i++) {
        th_resp r = th_auth(srv, owner, k[i].method, k[i].path, NULL);
        cr_expect_eq(r.status, 405, "%s %s: %ld %s", k[i].method, k[i].path, r.status, r.body);
        cr_expect_str_eq(th_err_code(&r), "method_not_allowed", "%s %s", k[i].method, k[i].path);
        char allow[128];
        cr_expect(th_header(&r, "Allow", allow, sizeof allow), "%s %s: no Allow header",
                  k[i].method, k[i].path);
        size_t n = 0;
        for (; n < 3 && k[i].allow[n]; n++)
            cr_expect(strstr(allow, k[i].allow[n]) != NULL, "%s %s: Allow '%s' lacks %s",
                      k[i].method, k[i].path, allow, k[i].allow[n]);
        /* nothing more than those: commas + 1 */
        size_t commas = 0;
        for (const char *p = allow; *p; p++) commas += *p == ',';
        cr_expect_eq(commas + 1, n, "%s %s: Allow '%s'", k[i].method, k[i].path, allow);
        th_resp_free(&r);
    }
}

Test(validation, json_content_type_with_parameters_is_accepted) {
    static const char *const types[] = {"application/json; charset=utf-8",
                                        "application/json;charset=UTF-8", "Application/JSON"};
    char auth[128], ct[128], body[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", owner);
    for (size_t i = 0; i < ML_ARRAY_LEN(types); i++) {
        snprintf(ct, sizeof ct, "Content-Type: %s", types[i]);
        snprintf(body, sizeof body, "{\"external_id\":\"ct-%zu\",\"name\":\"CT\"}", i);
        const char *h[] = {auth, ct, NULL};
        th_resp r = th_req(srv, "POST", CUST, h, body);
        cr_expect_eq(r.status, 201, "%s: %ld %s", types[i], r.status, r.body);
        th_resp_free(&r);
    }
}

/* A body of exactly n bytes: a valid metric padded with spaces. */
static char *metric_body(size_t n, const char *code) {
    char head[128];
    int hl = snprintf(head, sizeof head, "{\"code\":\"%s\",\"name\":\"M\",\"aggregation\":\"sum\"",
                      code);
    cr_assert((size_t)hl + 1 <= n);
    char *b = malloc(n + 1);
    cr_assert(b);
    memcpy(b, head, (size_t)hl);
    memset(b + hl, ' ', n - (size_t)hl - 1);
    b[n - 1] = '}';
    b[n] = '\0';
    return b;
}

Test(validation, bodies_over_the_route_limit_are_413) {
    /* POST /v1/metrics takes 16 KiB: exactly that is fine, one byte more is not */
    char *b = metric_body(16 * 1024, "at-limit");
    th_resp r = th_auth(srv, owner, "POST", METRICS, b);
    cr_expect_eq(r.status, 201, "16384 bytes: %ld %s", r.status, r.body);
    th_resp_free(&r);
    free(b);
    b = metric_body(16 * 1024 + 1, "over-limit");
    r = th_auth(srv, owner, "POST", METRICS, b);
    cr_expect_eq(r.status, 413, "16385 bytes: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "payload_too_large", "%s", r.body);
    th_resp_free(&r);
    free(b);
    r = th_auth(srv, owner, "GET", "/v1/metrics/over-limit", NULL);
    cr_expect_eq(r.status, 404);
    th_resp_free(&r);
    /* customers take 64 KiB */
    b = metric_body(64 * 1024 + 10, "x");
    r = th_auth(srv, owner, "POST", CUST, b);
    cr_expect_eq(r.status, 413, "%ld %.200s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "payload_too_large");
    th_resp_free(&r);
    free(b);
    /* a route without a body refuses one */
    r = th_auth(srv, owner, "GET", "/v1/me", "{}");
    cr_expect_eq(r.status, 413, "GET with a body: %ld %s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "payload_too_large");
    th_resp_free(&r);
    /* and the size check does not need credentials to be cheap */
    b = metric_body(300 * 1024, "x");
    r = th_req(srv, "POST", PLANS, NULL, b);
    cr_expect_eq(r.status, 413, "%ld %.200s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "payload_too_large");
    th_resp_free(&r);
    free(b);
}

/* Over BILLING_MAX_BODY libevent refuses the body itself, before any route
 * runs, from its Content-Length: the status is 413 but the body is libevent's
 * own HTML page (libevent 2.1 has no hook to shape that reply). */
Test(validation, bodies_over_the_global_limit_are_413, .timeout = 120) {
    size_t n = 10 * 1024 * 1024 + 4096;
    char *b = metric_body(n, "huge");
    for (int i = 0; i < 3; i++) {
        th_resp r = th_auth(srv, owner, "POST", PLANS, b);
        cr_expect_eq(r.status, 413, "over 10 MB, try %d: %ld %.200s", i, r.status, r.body);
        th_resp_free(&r);
    }
    free(b);
    /* just over the route's own limit (256 KiB for plans) the 413 is ours, JSON */
    b = metric_body(256 * 1024 + 1, "x");
    th_resp r = th_auth(srv, owner, "POST", PLANS, b);
    cr_expect_eq(r.status, 413, "%ld %.200s", r.status, r.body);
    cr_expect_str_eq(th_err_code(&r), "payload_too_large", "%.300s", r.body);
    th_resp_free(&r);
    free(b);
    /* the server is fine afterwards */
    r = th_auth(srv, owner, "GET", "/v1/me", NULL);
    cr_expect_eq(r.status, 200);
    th_resp_free(&r);
}

/* ---- decimals in, canonical strings out --------------------------------- */

Test(validation, decimals_as_strings_or_numbers_are_the_same) {
    struct {
        const char *in, *out;
    } k[] = {
        {"\"12.50\"", "12.5"},
        {"12.50", "12.5"},
        {"12.5", "12.5"},
        {"\"12\"", "12"},
        {"12", "12"},
        {"\"0.000\"", "0"},
        {"1E2", "100"},
        {"\"1.5e1\"", "15"},
        {"0.000000000001", "0.000000000001"},
        {"\"999999999999999999\"", "999999999999999999"},
        {"\"12.500000000000\"", "12.5"},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(k); i++) {
        char body[512], path[64];
        snprintf(body, sizeof body,
                 "{\"code\":\"d%zu\",\"name\":\"D\",\"currency\":\"USD\",\"base_fee\":%s,"
                 "\"charges\":[{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":%s}]}",
                 i, k[i].in, k[i].in);
        th_resp r = th_auth(srv, owner, "POST", PLANS, body);
        cr_expect_eq(r.status, 201, "%s: %ld %s", k[i].in, r.status, r.body);
        cr_expect_str_eq(th_str(r.json, "base_fee"), k[i].out, "base_fee %s: %s", k[i].in, r.body);
        cr_expect_str_eq(th_str(r.json, "charges.0.unit_price"), k[i].out, "unit_price %s: %s",
                         k[i].in, r.body);
        th_resp_free(&r);
        snprintf(path, sizeof path, "/v1/plans/d%zu", i);
        r = th_auth(srv, owner, "GET", path, NULL);
        cr_expect_str_eq(th_str(r.json, "base_fee"), k[i].out, "stored base_fee %s", k[i].in);
        th_resp_free(&r);
    }
    /* tiers and the customer's tax rate take both forms too */
    th_resp r = th_auth(srv, owner, "POST", PLANS,
                        "{\"code\":\"tiers\",\"name\":\"T\",\"currency\":\"EUR\",\"charges\":[{"
                        "\"metric\":\"calls\",\"model\":\"graduated\",\"tiers\":["
                        "{\"up_to\":1000,\"unit_price\":\"0.10\",\"flat_fee\":5.00},"
                        "{\"up_to\":\"10000.0\",\"unit_price\":0.050},"
                        "{\"up_to\":null,\"unit_price\":\"0.01\"}]}]}");
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "charges.0.tiers.0.up_to"), "1000", "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "charges.0.tiers.0.unit_price"), "0.1");
    cr_expect_str_eq(th_str(r.json, "charges.0.tiers.0.flat_fee"), "5");
    cr_expect_str_eq(th_str(r.json, "charges.0.tiers.1.up_to"), "10000");
    cr_expect_str_eq(th_str(r.json, "charges.0.tiers.1.unit_price"), "0.05");
    cr_expect(json_is_null(th_get(r.json, "charges.0.tiers.2.up_to")));
    th_resp_free(&r);
    r = th_auth(srv, owner, "POST", CUST,
                "{\"external_id\":\"tax-a\",\"name\":\"A\",\"tax_rate\":0.20}");
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "tax_rate"), "0.2", "%s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, owner, "POST", CUST,
                "{\"external_id\":\"tax-b\",\"name\":\"B\",\"tax_rate\":\"0.200\"}");
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "tax_rate"), "0.2", "%s", r.body);
    th_resp_free(&r);
}

/* ---- nothing partial ---------------------------------------------------- */

Test(validation, a_refused_plan_leaves_nothing_behind) {
    const char *bad = "{\"code\":\"partial\",\"name\":\"P\",\"currency\":\"USD\",\"charges\":["
                      "{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":\"1\"},"
                      "{\"metric\":\"calls\",\"model\":\"graduated\",\"tiers\":[{\"up_to\":null,"
                      "\"unit_price\":1}]},"
                      "{\"metric\":\"missing\",\"model\":\"per_unit\",\"unit_price\":\"1\"}]}";
    th_resp r = th_auth(srv, owner, "POST", PLANS, bad);
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect_str_eq(th_err_code(&r), VF);
    cr_expect(th_has_field_error(&r, "charges[2].metric"), "%s", r.body);
    th_resp_free(&r);
    r = th_auth(srv, owner, "GET", "/v1/plans/partial", NULL);
    cr_expect_eq(r.status, 404, "plan with a bad charge was kept: %s", r.body);
    cr_expect_str_eq(th_err_code(&r), "not_found");
    th_resp_free(&r);
    /* one bad charge among good ones in validation, too */
    r = th_auth(srv, owner, "POST", PLANS,
                "{\"code\":\"partial\",\"name\":\"P\",\"currency\":\"USD\",\"charges\":["
                "{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":\"1\"},"
                "{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":\"-1\"}]}");
    cr_expect_eq(r.status, 422);
    cr_expect(th_has_field_error(&r, "charges[1].unit_price"), "%s", r.body);
    th_resp_free(&r);
    expect_nothing_written("partial plan");
    /* the code is free: the same plan, fixed, is created with all its charges */
    r = th_auth(srv, owner, "POST", PLANS,
                "{\"code\":\"partial\",\"name\":\"P\",\"currency\":\"USD\",\"charges\":["
                "{\"metric\":\"calls\",\"model\":\"per_unit\",\"unit_price\":\"1\"},"
                "{\"metric\":\"calls\",\"model\":\"graduated\",\"tiers\":[{\"up_to\":null,"
                "\"unit_price\":1}]}]}");
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect_eq(json_array_size(th_get(r.json, "charges")), 2, "%s", r.body);
    th_resp_free(&r);
    /* and a duplicate is 409, naming code */
    r = th_auth(srv, owner, "POST", PLANS,
                "{\"code\":\"partial\",\"name\":\"P\",\"currency\":\"USD\",\"charges\":[]}");
    cr_expect_eq(r.status, 409, "%s", r.body);
    cr_expect_str_eq(th_err_code(&r), "conflict");
    cr_expect(th_has_field_error(&r, "code"), "%s", r.body);
    th_resp_free(&r);
}

/* ---- PATCH customers ---------------------------------------------------- */

static th_resp patch(const char *path, const char *body) {
    return th_auth(srv, owner, "PATCH", path, body);
}

Test(validation, patch_customer) {
    th_resp r = th_auth(srv, owner, "POST", CUST,
                        "{\"external_id\":\"p1\",\"name\":\"Before\",\"email\":\"b@example.test\","
                        "\"plan\":\"basic\",\"currency\":\"EUR\",\"billing_address\":{\"city\":"
                        "\"Bern\"}}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_expect(json_is_false(th_get(r.json, "require_approval")));
    th_resp_free(&r);

    r = patch(CUST "/p1", "{\"name\":\"After\"}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "name"), "After");
    cr_expect_str_eq(th_str(r.json, "email"), "b@example.test", "untouched fields stay");
    cr_expect_str_eq(th_str(r.json, "plan"), "basic");
    cr_expect_str_eq(th_str(r.json, "currency"), "EUR");
    cr_expect_str_eq(th_str(r.json, "billing_address.city"), "Bern");
    cr_expect_str_eq(th_str(r.json, "external_id"), "p1");
    th_resp_free(&r);

    r = patch(CUST "/p1", "{\"plan\":\"pro\",\"require_approval\":true}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "plan"), "pro");
    cr_expect(json_is_true(th_get(r.json, "require_approval")), "%s", r.body);
    th_resp_free(&r);

    r = patch(CUST "/p1", "{\"email\":null}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(json_is_null(th_get(r.json, "email")), "null clears email: %s", r.body);
    cr_expect_str_eq(th_str(r.json, "name"), "After");
    th_resp_free(&r);
    r = th_auth(srv, owner, "GET", CUST "/p1", NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(json_is_null(th_get(r.json, "email")), "stored: %s", r.body);
    cr_expect_str_eq(th_str(r.json, "plan"), "pro");
    cr_expect(json_is_true(th_get(r.json, "require_approval")));
    th_resp_free(&r);

    r = patch(CUST "/p1", "{\"plan\":null,\"require_approval\":false}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(json_is_null(th_get(r.json, "plan")), "null removes the plan: %s", r.body);
    cr_expect(json_is_false(th_get(r.json, "require_approval")));
    th_resp_free(&r);

    r = patch(CUST "/p1", "{}");
    cr_expect_eq(r.status, 200, "empty PATCH changes nothing: %s", r.body);
    cr_expect_str_eq(th_str(r.json, "name"), "After");
    th_resp_free(&r);

    /* refusals — and none of them changes anything */
    static const vcase k[] = {
        {"external_id in PATCH",
         "PATCH",
         CUST "/p1",
         NULL,
         "{\"external_id\":\"p2\",\"name\":\"Nope\"}",
         422,
         VF,
         {"external_id"},
         NULL},
        {"external_id alone",
         "PATCH",
         CUST "/p1",
         NULL,
         "{\"external_id\":\"p1\"}",
         422,
         VF,
         {"external_id"},
         NULL},
        {"external_id with other errors",
         "PATCH",
         CUST "/p1",
         NULL,
         "{\"external_id\":\"p2\",\"name\":5,\"bogus\":1}",
         422,
         VF,
         {"external_id", "name", "bogus"},
         NULL},
        {"name null", "PATCH", CUST "/p1", NULL, "{\"name\":null}", 422, VF, {"name"}, NULL},
        {"name empty", "PATCH", CUST "/p1", NULL, "{\"name\":\"\"}", 422, VF, {"name"}, NULL},
        {"unknown plan",
         "PATCH",
         CUST "/p1",
         NULL,
         "{\"plan\":\"gold\",\"name\":\"Nope\"}",
         422,
         VF,
         {"plan"},
         NULL},
        {"bad email", "PATCH", CUST "/p1", NULL, "{\"email\":\"nope\"}", 422, VF, {"email"}, NULL},
        {"require_approval null",
         "PATCH",
         CUST "/p1",
         NULL,
         "{\"require_approval\":null}",
         422,
         VF,
         {"require_approval"},
         NULL},
        {"currency lower",
         "PATCH",
         CUST "/p1",
         NULL,
         "{\"currency\":\"eur\"}",
         422,
         VF,
         {"currency"},
         NULL},
        {"tax_rate abc",
         "PATCH",
         CUST "/p1",
         NULL,
         "{\"tax_rate\":\"abc\"}",
         422,
         VF,
         {"tax_rate"},
         NULL},
        {"unknown field",
         "PATCH",
         CUST "/p1",
         NULL,
         "{\"nickname\":\"x\"}",
         422,
         VF,
         {"nickname"},
         NULL},
        {"array body", "PATCH", CUST "/p1", NULL, "[]", 400, BR, {0}, NULL},
        {"unknown customer",
         "PATCH",
         CUST "/nobody",
         NULL,
         "{\"name\":\"X\"}",
         404,
         "not_found",
         {0},
         NULL},
    };
    for (size_t i = 0; i < ML_ARRAY_LEN(k); i++) run_case(&k[i]);
    r = th_auth(srv, owner, "GET", CUST "/p1", NULL);
    cr_expect_str_eq(th_str(r.json, "name"), "After", "a refused PATCH changed the name");
    cr_expect_str_eq(th_str(r.json, "external_id"), "p1");
    cr_expect(json_is_null(th_get(r.json, "plan")));
    cr_expect_str_eq(th_str(r.json, "currency"), "EUR");
    th_resp_free(&r);
    r = th_auth(srv, owner, "GET", CUST "/p2", NULL);
    cr_expect_eq(r.status, 404, "external_id was renamed by a refused PATCH");
    th_resp_free(&r);

    /* null clears the nullable ones */
    r = patch(CUST "/p1", "{\"currency\":null,\"billing_address\":null,\"tax_rate\":null}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(json_is_null(th_get(r.json, "currency")), "%s", r.body);
    cr_expect(json_is_null(th_get(r.json, "billing_address")), "%s", r.body);
    th_resp_free(&r);
}

Test(validation, external_ids_with_reserved_characters_round_trip) {
    /* "a/b c?d%ü" — path parameters are percent-decoded, '/' included */
    th_resp r =
        th_auth(srv, owner, "POST", CUST, "{\"external_id\":\"a/b c?d%\u00fc\",\"name\":\"Odd\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    const char *path = CUST "/a%2Fb%20c%3Fd%25%C3%BC";
    r = th_auth(srv, owner, "GET", path, NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "external_id"), "a/b c?d%\xc3\xbc");
    th_resp_free(&r);
    r = th_auth(srv, owner, "PATCH", path, "{\"name\":\"Odder\"}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "name"), "Odder");
    th_resp_free(&r);
    r = th_auth(srv, owner, "GET", CUST "/a/b%20c%3Fd%25%C3%BC", NULL);
    cr_expect_eq(r.status, 404, "a raw '/' is a path separator: %ld", r.status);
    th_resp_free(&r);
}

/* ---- pagination and search ---------------------------------------------- */

Test(validation, pagination_walks_every_customer_once) {
    char body[128];
    for (int i = 0; i < 7; i++) {
        snprintf(body, sizeof body, "{\"external_id\":\"pg-%d\",\"name\":\"Page %d\"}", i, i);
        th_resp r = th_auth(srv, owner, "POST", CUST, body);
        cr_assert_eq(r.status, 201, "%s", r.body);
        th_resp_free(&r);
    }
    char path[512] = CUST "?limit=3";
    int seen[7] = {0};
    static const size_t want[] = {3, 3, 1};
    int order = -1;
    for (size_t page = 0; page < 3; page++) {
        th_resp r = th_auth(srv, owner, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "page %zu: %s", page, r.body);
        json_t *data = th_get(r.json, "data");
        cr_expect_eq(json_array_size(data), want[page], "page %zu: %s", page, r.body);
        size_t i;
        json_t *v;
        json_array_foreach(data, i, v) {
            int k = -1;
            cr_assert_eq(sscanf(th_str(v, "external_id"), "pg-%d", &k), 1);
            cr_assert(k >= 0 && k < 7);
            seen[k]++;
            cr_expect_gt(k, order, "creation order: pg-%d after pg-%d", k, order);
            order = k;
        }
        json_t *next = th_get(r.json, "next_cursor");
        cr_assert(next != NULL, "next_cursor must always be present");
        if (page < 2) {
            cr_assert(json_is_string(next) && json_string_length(next) > 0,
                      "page %zu must have a next_cursor: %s", page, r.body);
            snprintf(path, sizeof path, CUST "?limit=3&cursor=%s", json_string_value(next));
        } else {
            cr_expect(json_is_null(next), "the last page's next_cursor is null: %s", r.body);
        }
        th_resp_free(&r);
    }
    for (int k = 0; k < 7; k++) cr_expect_eq(seen[k], 1, "pg-%d seen %d times", k, seen[k]);

    /* exactly a multiple of the limit: the last full page may point to an
     * empty one, but never repeats */
    th_resp r = th_auth(srv, owner, "GET", CUST "?limit=7", NULL);
    cr_expect_eq(json_array_size(th_get(r.json, "data")), 7);
    cr_expect(json_is_null(th_get(r.json, "next_cursor")), "7 of 7: %s", r.body);
    th_resp_free(&r);
}

static size_t search(const char *q, const char *must, const char *must_not) {
    char path[256];
    snprintf(path, sizeof path, CUST "?limit=1000&q=%s", q);
    th_resp r = th_auth(srv, owner, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "q=%s: %s", q, r.body);
    json_t *data = th_get(r.json, "data");
    bool has = false, has_not = false;
    size_t i;
    json_t *v;
    json_array_foreach(data, i, v) {
        if (must && !strcmp(th_str(v, "external_id"), must)) has = true;
        if (must_not && !strcmp(th_str(v, "external_id"), must_not)) has_not = true;
    }
    if (must) cr_expect(has, "q=%s should find %s: %s", q, must, r.body);
    if (must_not) cr_expect(!has_not, "q=%s must not find %s: %s", q, must_not, r.body);
    size_t n = json_array_size(data);
    th_resp_free(&r);
    return n;
}

Test(validation, search_treats_percent_and_underscore_literally) {
    static const char *const names[][2] = {
        {"pct", "100% pure"}, {"nopct", "100 pure"}, {"under", "a_b"},
        {"axb", "axb"},       {"bslash", "x\\\\y"},  {"xy", "xy"},
    };
    char body[256];
    for (size_t i = 0; i < ML_ARRAY_LEN(names); i++) {
        snprintf(body, sizeof body, "{\"external_id\":\"%s\",\"name\":\"%s\"}", names[i][0],
                 names[i][1]);
        th_resp r = th_auth(srv, owner, "POST", CUST, body);
        cr_assert_eq(r.status, 201, "%s", r.body);
        th_resp_free(&r);
    }
    cr_expect_eq(search("%25", "pct", "nopct"), 1, "q=%% matches only the name with %%");
    cr_expect_eq(search("100%25", "pct", "nopct"), 1);
    cr_expect_eq(search("_", "under", "axb"), 1, "q=_ matches only the name with _");
    cr_expect_eq(search("a_b", "under", "axb"), 1);
    cr_expect_eq(search("%5C", "bslash", "xy"), 1, "q=\\ is a backslash, not an escape");
    cr_expect_eq(search("x%5Cy", "bslash", "xy"), 1);
    cr_expect_eq(search("PURE", "pct", NULL), 2, "search is case-insensitive");
    cr_expect_eq(search("nopct", "nopct", NULL), 1, "external_id is searched too");
    cr_expect_eq(search("zzz", NULL, NULL), 0);
    cr_expect_eq(search("", NULL, NULL), ML_ARRAY_LEN(names), "empty q is no filter");
}
