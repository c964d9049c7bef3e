/* routes_catalog.c — customers, metrics and plans.
 *
 * DESIGN — Each handler validates its body against a jx_field table plus the
 * rules a table cannot say (currency codes, decimal precision, tier order),
 * collecting every problem for one 422, and then normalizes the input into a
 * fresh object whose decimals are canonical strings before the repository
 * sees it.  Amounts never pass through floating point: JSON numbers arrive as
 * their exact text (jx.h) and are parsed by dec_parse.
 */
#include "fmacros.h"
#include "api.h"
#include "cur.h"
#include "dec.h"
#include "repo.h"
#include "routes.h"
#include <stdlib.h>

#define PRICE_PLACES         12 /* numeric(30,12) */
#define PRICE_MAX_INT_DIGITS 18

/* ---- decimal helpers --------------------------------------------------- */

/* Validates obj[key] as a decimal >= 0 with at most `places` fractional
 * digits and max_int integer digits; on success stores the canonical string
 * into out[key].  Missing/null: nothing (required-ness is the table's job),
 * and nothing either when the table already refused the field (each bad
 * field is reported once). */
static void norm_dec(const json_t *obj, const char *key, const char *prefix, int places,
                     int max_int, bool positive, json_t *out, jx_errs *e) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v) || jx_errs_hasp(e, prefix, key)) return;
    dec_t d;
    int rc = jx_dec(obj, key, &d);
    if (rc != DEC_OK) {
        jx_errs_addp(e, prefix, key, "must be a decimal number such as \"12.50\"");
        return;
    }
    d = dec_normalize(&d);
    if (dec_sign(&d) < 0 || (positive && dec_is_zero(&d))) {
        jx_errs_addp(e, prefix, key, positive ? "must be greater than 0" : "must not be negative");
        return;
    }
    if (dec_places(&d) > places) {
        jx_errs_addp(e, prefix, key, "must have at most %d decimal places", places);
        return;
    }
    char s[DEC_FMT_MAX];
    if (dec_format(&d, s, sizeof s) < 0) {
        jx_errs_addp(e, prefix, key, "is not representable");
        return;
    }
    size_t intd = strcspn(s, ".");
    if ((int)intd > max_int) {
        jx_errs_addp(e, prefix, key, "must be less than 10^%d", max_int);
        return;
    }
    json_object_set_new(out, key, json_string(s));
}

static void copy_keys(const json_t *in, json_t *out, const char *const *keys) {
    for (; *keys; keys++) {
        json_t *v = json_object_get(in, *keys);
        if (v) json_object_set(out, *keys, v);
    }
}

static void check_currency(const json_t *obj, const char *key, const char *prefix, jx_errs *e) {
    const char *c = jx_str(obj, key);
    if (c && !jx_errs_hasp(e, prefix, key) && cur_minor_units(c) < 0)
        jx_errs_addp(e, prefix, key, "must be an ISO 4217 currency code such as USD");
}

static bool valid_code(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 64) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static void check_code(const json_t *obj, const char *key, const char *prefix, jx_errs *e) {
    const char *c = jx_str(obj, key);
    if (c && !jx_errs_hasp(e, prefix, key) && !valid_code(c))
        jx_errs_addp(e, prefix, key, "may only contain letters, digits, _ . : - (1-64 characters)");
}

/* Replies 400 if a numeric paging cursor is not a number. */
static bool int_cursor_ok(api_req *r, const char *cursor) {
    if (!cursor) return true;
    for (const char *p = cursor; *p; p++) {
        if (*p < '0' || *p > '9' || p - cursor > 18) {
            api_err(r, 400, "bad_request", "cursor is not valid");
            return false;
        }
    }
    return *cursor != '\0';
}

static bool reply_if_invalid(api_req *r, jx_errs *e) {
    if (!jx_errs_count(e)) return false;
    api_invalid(r, e);
    return true;
}

/* GET of one object by its key (path parameter) in the caller's org. */
typedef int (*repo_get_fn)(db *d, db_err *e, long long org_id, const char *key, json_t **out);
static void get_one(api_req *r, repo_get_fn fn, const char *what) {
    db_err de;
    json_t *out = NULL;
    int rc = fn(r->db, &de, r->who.org_id, r->pv[0], &out);
    if (rc == REPO_OK)
        api_json(r, 200, out);
    else
        api_reply_repo(r, rc, &de, NULL, what);
}

/* GET of a page of objects ordered by id (cursor = last id). */
typedef int (*repo_list_fn)(db *d, db_err *e, long long org_id, int limit, const char *after,
                            json_t **rows, char **next);
static void list_page(api_req *r, repo_list_fn fn, const char *what) {
    int limit;
    char *cursor;
    if (api_page_params(r, &limit, &cursor)) return;
    if (int_cursor_ok(r, cursor)) {
        db_err de;
        json_t *rows = NULL;
        char *next = NULL;
        int rc = fn(r->db, &de, r->who.org_id, limit, cursor, &rows, &next);
        if (rc == REPO_OK)
            api_page_reply(r, rows, next);
        else
            api_reply_repo(r, rc, &de, NULL, what);
        free(next);
    }
    free(cursor);
}

/* ---- customers -------------------------------------------------------- */

static const jx_field k_address[] = {
    {"line1", JX_STRING, JX_NULLABLE, 0, 200},
    {"line2", JX_STRING, JX_NULLABLE, 0, 200},
    {"city", JX_STRING, JX_NULLABLE, 0, 100},
    {"region", JX_STRING, JX_NULLABLE, 0, 100},
    {"postal_code", JX_STRING, JX_NULLABLE, 0, 32},
    {"country", JX_STRING, JX_NULLABLE, 0, 100},
    {NULL, 0, 0, 0, 0},
};

static const jx_field k_customer[] = {
    {"external_id", JX_STRING, JX_REQUIRED, 1, 128},
    {"name", JX_STRING, JX_REQUIRED, 1, 200},
    {"email", JX_STRING, JX_NULLABLE, 3, 254},
    {"currency", JX_STRING, JX_NULLABLE, 3, 3},
    {"plan", JX_STRING, JX_NULLABLE, 1, 64},
    {"billing_address", JX_OBJECT, JX_NULLABLE, 0, 0},
    {"require_approval", JX_BOOL, 0, 0, 0},
    {"tax_rate", JX_DECIMAL, JX_NULLABLE | JX_NONNEG, 0, 0},
    {NULL, 0, 0, 0, 0},
};

/* PATCH: same fields, none required, external_id not allowed. */
static const jx_field k_customer_patch[] = {
    {"name", JX_STRING, 0, 1, 200},
    {"email", JX_STRING, JX_NULLABLE, 3, 254},
    {"currency", JX_STRING, JX_NULLABLE, 3, 3},
    {"plan", JX_STRING, JX_NULLABLE, 1, 64},
    {"billing_address", JX_OBJECT, JX_NULLABLE, 0, 0},
    {"require_approval", JX_BOOL, 0, 0, 0},
    {"tax_rate", JX_DECIMAL, JX_NULLABLE | JX_NONNEG, 0, 0},
    {NULL, 0, 0, 0, 0},
};

static json_t *customer_input(api_req *r, const jx_field *spec, jx_errs *e) {
    const json_t *in = r->json;
    if (spec == k_customer_patch && json_object_get(in, "external_id")) {
        jx_errs_add(e, "external_id", "cannot be changed");
        json_t *tmp = json_deep_copy(in);
        if (tmp) {
            json_object_del(tmp, "external_id");
            jx_check(tmp, spec, NULL, e);
            json_decref(tmp);
        }
    } else {
        jx_check(in, spec, NULL, e);
    }
    const json_t *addr = json_object_get(in, "billing_address");
    if (json_is_object(addr)) jx_check(addr, k_address, "billing_address", e);
    const char *email = jx_str(in, "email");
    if (email && !jx_errs_hasp(e, NULL, "email") && !api_valid_email(email))
        jx_errs_add(e, "email", "must be an email address");
    check_currency(in, "currency", NULL, e);
    json_t *out = json_object();
    if (!out) return NULL;
    static const char *const keys[] = {"external_id",      "name", "email",
                                       "currency",         "plan", "billing_address",
                                       "require_approval", NULL};
    copy_keys(in, out, keys);
    const json_t *tr = json_object_get(in, "tax_rate");
    if (tr) {
        if (json_is_null(tr))
            json_object_set_new(out, "tax_rate", json_null());
        else
            norm_dec(in, "tax_rate", NULL, 6, 1, false, out, e);
        const char *t = jx_str(out, "tax_rate");
        dec_t d, one = dec_from_int(1);
        if (t && dec_parse_cstr(&d, t) == DEC_OK && dec_cmp(&d, &one) > 0)
            jx_errs_add(e, "tax_rate", "must be between 0 and 1 (0.2 = 20%%)");
    }
    return out;
}

void h_customers_create(api_req *r) {
    jx_errs *e = jx_errs_new();
    json_t *in = e ? customer_input(r, k_customer, e) : NULL;
    if (!in) {
        jx_errs_free(e);
        api_err(r, 503, "unavailable", "out of memory");
        return;
    }
    if (!reply_if_invalid(r, e)) {
        db_err de;
        repo_field f = {{0}, {0}};
        json_t *out = NULL;
        int rc = repo_customer_create(r->db, &de, r->who.org_id, in, &out, &f);
        if (rc == REPO_OK)
            api_json(r, 201, out);
        else
            api_reply_repo(r, rc, &de, &f, "customer");
    }
    json_decref(in);
    jx_errs_free(e);
}

void h_customers_update(api_req *r) {
    jx_errs *e = jx_errs_new();
    json_t *in = e ? customer_input(r, k_customer_patch, e) : NULL;
    if (!in) {
        jx_errs_free(e);
        api_err(r, 503, "unavailable", "out of memory");
        return;
    }
    if (!reply_if_invalid(r, e)) {
        db_err de;
        repo_field f = {{0}, {0}};
        json_t *out = NULL;
        int rc = repo_customer_update(r->db, &de, r->who.org_id, r->pv[0], in, &out, &f);
        if (rc == REPO_OK)
            api_json(r, 200, out);
        else
            api_reply_repo(r, rc, &de, &f, "customer");
    }
    json_decref(in);
    jx_errs_free(e);
}

void h_customers_get(api_req *r) { get_one(r, repo_customer_get, "customer"); }

void h_customers_list(api_req *r) {
    int limit;
    char *cursor;
    if (api_page_params(r, &limit, &cursor)) return;
    if (!int_cursor_ok(r, cursor)) {
        free(cursor);
        return;
    }
    char *q = api_query_dup(r, "q");
    char *like = NULL;
    if (q && *q) {
        /* escape LIKE metacharacters: the search is a plain substring */
        size_t n = strlen(q);
        like = malloc(2 * n + 3);
        if (like) {
            size_t k = 0;
            like[k++] = '%';
            for (size_t i = 0; i < n; i++) {
                if (q[i] == '%' || q[i] == '_' || q[i] == '\\') like[k++] = '\\';
                like[k++] = q[i];
            }
            like[k++] = '%';
            like[k] = '\0';
        }
    }
    db_err de;
    json_t *rows = NULL;
    char *next = NULL;
    int rc = (q && *q && !like) ? REPO_ERR
                                : repo_customers_list(r->db, &de, r->who.org_id, like, limit,
                                                      cursor, &rows, &next);
    if (rc == REPO_OK)
        api_page_reply(r, rows, next);
    else if (q && *q && !like)
        api_err(r, 503, "unavailable", "out of memory");
    else
        api_reply_repo(r, rc, &de, NULL, "customer");
    free(q);
    free(like);
    free(cursor);
    free(next);
}

/* ---- metrics ---------------------------------------------------------- */

static const jx_field k_metric[] = {
    {"code", JX_STRING, JX_REQUIRED, 1, 64},
    {"name", JX_STRING, JX_REQUIRED, 1, 200},
    {"aggregation", JX_STRING, JX_REQUIRED, 1, 16},
    {"unit", JX_STRING, JX_NULLABLE, 0, 32},
    {"unique_property", JX_STRING, JX_NULLABLE, 1, 64},
    {NULL, 0, 0, 0, 0},
};

static void check_metric(const json_t *body, jx_errs *e) {
    check_code(body, "code", NULL, e);
    const char *agg = jx_str(body, "aggregation");
    const char *up = jx_str(body, "unique_property");
    if (jx_errs_hasp(e, NULL, "aggregation")) agg = NULL; /* the table refused it already */
    if (agg && strcmp(agg, "sum") && strcmp(agg, "count") && strcmp(agg, "max") &&
        strcmp(agg, "unique_count"))
        jx_errs_add(e, "aggregation", "must be one of sum, count, max, unique_count");
    else if (agg && !strcmp(agg, "unique_count") && !up)
        jx_errs_add(e, "unique_property", "is required when aggregation is unique_count");
    else if (agg && strcmp(agg, "unique_count") && up)
        jx_errs_add(e, "unique_property", "is only allowed when aggregation is unique_count");
}

void h_metrics_create(api_req *r) {
    if (!api_validate(r, k_metric, check_metric)) return;
    db_err de;
    repo_field f = {{0}, {0}};
    json_t *out = NULL;
    int rc = repo_metric_create(r->db, &de, r->who.org_id, r->json, &out, &f);
    if (rc == REPO_OK)
        api_json(r, 201, out);
    else
        api_reply_repo(r, rc, &de, &f, "metric");
}

void h_metrics_get(api_req *r) { get_one(r, repo_metric_get, "metric"); }

void h_metrics_list(api_req *r) { list_page(r, repo_metrics_list, "metric"); }

/* ---- plans ------------------------------------------------------------ */

static const jx_field k_plan[] = {
    {"code", JX_STRING, JX_REQUIRED, 1, 64},
    {"name", JX_STRING, JX_REQUIRED, 1, 200},
    {"currency", JX_STRING, JX_REQUIRED, 3, 3},
    {"base_fee", JX_DECIMAL, JX_NULLABLE | JX_NONNEG, 0, 0},
    {"charges", JX_ARRAY, JX_REQUIRED, 0, 100},
    {NULL, 0, 0, 0, 0},
};

static const jx_field k_charge[] = {
    {"metric", JX_STRING, JX_REQUIRED, 1, 64},
    {"model", JX_STRING, JX_REQUIRED, 1, 16},
    {"unit_price", JX_DECIMAL, JX_NULLABLE | JX_NONNEG, 0, 0},
    {"included_units", JX_DECIMAL, JX_NULLABLE | JX_NONNEG, 0, 0},
    {"package_size", JX_DECIMAL, JX_NULLABLE | JX_NONNEG, 0, 0},
    {"tiers", JX_ARRAY, JX_NULLABLE, 1, 100},
    {"minimum", JX_DECIMAL, JX_NULLABLE | JX_NONNEG, 0, 0},
    {NULL, 0, 0, 0, 0},
};

static const jx_field k_tier[] = {
    {"up_to", JX_DECIMAL, JX_REQUIRED | JX_NULLABLE | JX_NONNEG, 0, 0},
    {"unit_price", JX_DECIMAL, JX_REQUIRED | JX_NONNEG, 0, 0},
    {"flat_fee", JX_DECIMAL, JX_NULLABLE | JX_NONNEG, 0, 0},
    {NULL, 0, 0, 0, 0},
};

static bool present(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return v && !json_is_null(v);
}

/* Validates and normalizes tiers: ascending up_to > 0, only the last open
 * (null).  Returns a new array or NULL (errors added). */
static json_t *norm_tiers(const json_t *tiers, const char *prefix, jx_errs *e) {
    json_t *out = json_array();
    if (!out) return NULL;
    size_t n = json_array_size(tiers), i;
    const json_t *t;
    dec_t prev = dec_zero();
    json_array_foreach(tiers, i, t) {
        char p[96];
        snprintf(p, sizeof p, "%s[%zu]", prefix, i);
        size_t before = jx_errs_count(e);
        if (jx_check(t, k_tier, p, e)) continue;
        json_t *nt = json_object();
        if (!nt) break;
        norm_dec(t, "up_to", p, PRICE_PLACES, 26, true, nt, e);
        norm_dec(t, "unit_price", p, PRICE_PLACES, PRICE_MAX_INT_DIGITS, false, nt, e);
        norm_dec(t, "flat_fee", p, PRICE_PLACES, PRICE_MAX_INT_DIGITS, false, nt, e);
        if (!json_object_get(nt, "up_to")) json_object_set_new(nt, "up_to", json_null());
        if (!json_object_get(nt, "flat_fee")) json_object_set_new(nt, "flat_fee", json_string("0"));
        if (jx_errs_count(e) == before) {
            const char *up = jx_str(nt, "up_to");
            if (!up && i + 1 < n) {
                jx_errs_addp(e, p, "up_to", "only the last tier may be open-ended (null)");
            } else if (up && i + 1 == n) {
                jx_errs_addp(e, p, "up_to", "the last tier must be open-ended (null)");
            } else if (up) {
                dec_t d;
                if (dec_parse_cstr(&d, up) == DEC_OK) {
                    if (i > 0 && dec_cmp(&d, &prev) <= 0)
                        jx_errs_addp(e, p, "up_to", "must be greater than the previous tier's");
                    prev = d;
                }
            }
        }
        json_array_append_new(out, nt);
    }
    return out;
}

static json_t *plan_input(const json_t *in, jx_errs *e) {
    jx_check(in, k_plan, NULL, e);
    check_code(in, "code", NULL, e);
    check_currency(in, "currency", NULL, e);
    json_t *out = json_object();
    json_t *charges = json_array();
    if (!out || !charges) {
        json_decref(out);
        json_decref(charges);
        return NULL;
    }
    static const char *const keys[] = {"code", "name", "currency", NULL};
    copy_keys(in, out, keys);
    norm_dec(in, "base_fee", NULL, PRICE_PLACES, PRICE_MAX_INT_DIGITS, false, out, e);
    json_object_set_new(out, "charges", charges);
    const json_t *arr = json_object_get(in, "charges");
    size_t i;
    const json_t *c;
    json_array_foreach(arr, i, c) {
        char p[32];
        snprintf(p, sizeof p, "charges[%zu]", i);
        if (jx_check(c, k_charge, p, e)) continue;
        json_t *nc = json_object();
        if (!nc) break;
        static const char *const ckeys[] = {"metric", "model", NULL};
        copy_keys(c, nc, ckeys);
        const char *model = jx_str(c, "model");
        bool tiered = model && (!strcmp(model, "graduated") || !strcmp(model, "volume"));
        bool package = model && !strcmp(model, "package");
        if (!model || (!tiered && !package && strcmp(model, "per_unit"))) {
            jx_errs_addp(e, p, "model", "must be one of per_unit, graduated, volume, package");
        } else if (tiered) {
            if (!present(c, "tiers"))
                jx_errs_addp(e, p, "tiers", "is required for the %s model", model);
            if (present(c, "unit_price"))
                jx_errs_addp(e, p, "unit_price", "is not used by the %s model (price the tiers)",
                             model);
        } else {
            if (!present(c, "unit_price"))
                jx_errs_addp(e, p, "unit_price", "is required for the %s model", model);
            if (present(c, "tiers"))
                jx_errs_addp(e, p, "tiers", "is only used by the graduated and volume models");
        }
        if (model && !package && present(c, "package_size"))
            jx_errs_addp(e, p, "package_size", "is only used by the package model");
        if (package && !present(c, "package_size"))
            jx_errs_addp(e, p, "package_size", "is required for the package model");
        norm_dec(c, "unit_price", p, PRICE_PLACES, PRICE_MAX_INT_DIGITS, false, nc, e);
        norm_dec(c, "included_units", p, PRICE_PLACES, 26, false, nc, e);
        norm_dec(c, "package_size", p, PRICE_PLACES, 26, true, nc, e);
        norm_dec(c, "minimum", p, PRICE_PLACES, PRICE_MAX_INT_DIGITS, false, nc, e);
        if (tiered && present(c, "tiers")) {
            char tp[64];
            snprintf(tp, sizeof tp, "%s.tiers", p);
            json_t *t = norm_tiers(json_object_get(c, "tiers"), tp, e);
            if (t) json_object_set_new(nc, "tiers", t);
        }
        json_array_append_new(charges, nc);
    }
    return out;
}

void h_plans_create(api_req *r) {
    jx_errs *e = jx_errs_new();
    json_t *in = e ? plan_input(r->json, e) : NULL;
    if (!in) {
        jx_errs_free(e);
        api_err(r, 503, "unavailable", "out of memory");
        return;
    }
    if (!reply_if_invalid(r, e)) {
        db_err de;
        repo_field f = {{0}, {0}};
        json_t *out = NULL;
        int rc = db_begin(r->db, &de) ? REPO_ERR : REPO_OK;
        if (rc == REPO_OK) rc = repo_plan_create(r->db, &de, r->who.org_id, in, &out, &f);
        if (rc == REPO_OK && db_commit(r->db, &de)) rc = REPO_ERR;
        if (rc != REPO_OK) {
            db_rollback(r->db);
            json_decref(out);
        }
        if (rc == REPO_OK)
            api_json(r, 201, out);
        else
            api_reply_repo(r, rc, &de, &f, "plan");
    }
    json_decref(in);
    jx_errs_free(e);
}

void h_plans_get(api_req *r) { get_one(r, repo_plan_get, "plan"); }

void h_plans_list(api_req *r) { list_page(r, repo_plans_list, "plan"); }
