/* test_openapi.c — the embedded OpenAPI document (api/openapi.json) against
 * the route table (api/routes.c).
 *
 * The document is loaded from the table compiled into the API library
 * (api_static), exactly what GET /v1/openapi.json serves.  Checks: it is JSON
 * and OpenAPI 3.1.0; every route of the table (but the UI's) is described
 * with its method, and nothing that is not in the table is; every operation
 * has a unique operationId and responses; every $ref points at an existing
 * component; each operation's x-roles / x-api-key-scopes / security say what
 * the route table enforces; every {name} of a path is a declared path
 * parameter.
 */
#include "fmacros.h"
#include "api.h"
#include "embed.h"
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

extern const ml_embedded api_static[];

static const char *const k_methods[] = {"get",   "put",  "post",    "delete",
                                        "patch", "head", "options", "trace"};

/* ---- helpers ---------------------------------------------------------- */

static json_t *load_doc(void) {
    const ml_embedded *f = ml_embed_find(api_static, "openapi.json");
    cr_assert_not_null(f, "openapi.json is not embedded in the API library");
    json_error_t je;
    json_t *doc = json_loadb(f->data, f->len, JSON_REJECT_DUPLICATES, &je);
    cr_assert_not_null(doc, "openapi.json is not valid JSON: %s at line %d column %d", je.text,
                       je.line, je.column);
    cr_assert(json_is_object(doc), "openapi.json is not a JSON object");
    return doc;
}

static bool is_ui_route(const api_route *rt) {
    return !strcmp(rt->pattern, "/") || !strcmp(rt->pattern, "/ui/{*}");
}

static void lower(const char *in, char *out, size_t cap) {
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++) out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

static bool is_http_method(const char *k) {
    for (size_t i = 0; i < sizeof k_methods / sizeof k_methods[0]; i++)
        if (!strcmp(k, k_methods[i])) return true;
    return false;
}

/* The route of the table for (method in lower case, pattern), or NULL. */
static const api_route *find_route(const char *method, const char *pattern) {
    for (size_t i = 0; i < api_nroutes; i++) {
        char m[16];
        lower(api_routes[i].method, m, sizeof m);
        if (!strcmp(m, method) && !strcmp(api_routes[i].pattern, pattern)) return &api_routes[i];
    }
    return NULL;
}

/* Resolves a local JSON pointer ("#/a/b~1c") in doc, or NULL. */
static json_t *resolve_ptr(json_t *doc, const char *ref) {
    if (strncmp(ref, "#/", 2) != 0) return NULL;
    json_t *cur = doc;
    const char *p = ref + 2;
    while (cur && *p) {
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof tok) {
            if (p[0] == '~' && p[1] == '0') {
                tok[n++] = '~';
                p += 2;
            } else if (p[0] == '~' && p[1] == '1') {
                tok[n++] = '/';
                p += 2;
            } else
                tok[n++] = *p++;
        }
        tok[n] = '\0';
        if (*p == '/') p++;
        cur = json_is_object(cur) ? json_object_get(cur, tok) : NULL;
    }
    return cur;
}

/* String member of obj, or "(missing)". */
static const char *str_of(const json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "(missing)";
}

/* Follows a {"$ref": ...} object (once) to what it names. */
static json_t *deref(json_t *doc, json_t *v) {
    const char *ref = json_string_value(json_object_get(v, "$ref"));
    return ref ? resolve_ptr(doc, ref) : v;
}

/* Walks every value under v; each "$ref" must name an existing component. */
static void check_refs(json_t *doc, json_t *v, const char *where, size_t *nrefs) {
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (!strcmp(k, "$ref") && json_is_string(x)) {
                const char *ref = json_string_value(x);
                (*nrefs)++;
                cr_expect(!strncmp(ref, "#/components/", 13),
                          "%s: $ref %s does not point into #/components/", where, ref);
                cr_expect_not_null(resolve_ptr(doc, ref), "%s: $ref %s does not resolve", where,
                                   ref);
            } else {
                char w[512];
                snprintf(w, sizeof w, "%s/%s", where, k);
                check_refs(doc, x, w, nrefs);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            char w[512];
            snprintf(w, sizeof w, "%s/%zu", where, i);
            check_refs(doc, x, w, nrefs);
        }
    }
}

/* True if the JSON array of strings arr contains s. */
static bool has_string(const json_t *arr, const char *s) {
    size_t i;
    json_t *x;
    json_array_foreach(arr, i,
                       x) if (json_is_string(x) && !strcmp(json_string_value(x), s)) return true;
    return false;
}

/* ---- tests ------------------------------------------------------------ */

Test(openapi, parses_as_openapi_3_1) {
    json_t *doc = load_doc();
    cr_expect_str_eq(str_of(doc, "openapi"), "3.1.0");
    json_t *info = json_object_get(doc, "info");
    cr_assert(json_is_object(info), "info is missing");
    cr_expect_str_eq(str_of(info, "title"), "Meterline");
    cr_expect_str_eq(str_of(info, "version"), "0.1.0");
    cr_expect(json_is_object(json_object_get(doc, "paths")), "paths is missing");
    cr_expect(json_is_object(json_object_get(doc, "components")), "components is missing");
    json_decref(doc);
}

Test(openapi, every_route_is_described) {
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    cr_assert(json_is_object(paths));
    size_t checked = 0;
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route *rt = &api_routes[i];
        if (is_ui_route(rt)) continue;
        char m[16];
        lower(rt->method, m, sizeof m);
        json_t *item = json_object_get(paths, rt->pattern);
        cr_expect(json_is_object(item), "route %s %s: path is not in openapi.json", rt->method,
                  rt->pattern);
        cr_expect(json_is_object(json_object_get(item, m)),
                  "route %s %s: method %s is not described", rt->method, rt->pattern, m);
        checked++;
    }
    cr_expect_gt(checked, 0);
    json_decref(doc);
}

Test(openapi, describes_only_routes_that_exist) {
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item) {
        const char *k;
        json_t *o;
        json_object_foreach(item, k, o) {
            if (!is_http_method(k)) continue;
            cr_expect_not_null(find_route(k, path), "%s %s is described but not in routes.c", k,
                               path);
        }
    }
    json_decref(doc);
}

Test(openapi, operations_have_unique_ids_and_responses) {
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    json_t *seen = json_object();
    const char *path;
    json_t *item;
    size_t nops = 0;
    json_object_foreach(paths, path, item) {
        const char *k;
        json_t *o;
        json_object_foreach(item, k, o) {
            if (!is_http_method(k)) continue;
            nops++;
            const char *id = json_string_value(json_object_get(o, "operationId"));
            cr_expect(id && *id, "%s %s has no operationId", k, path);
            if (id && *id) {
                cr_expect_null(json_object_get(seen, id), "operationId %s is used twice", id);
                json_object_set_new(seen, id, json_true());
            }
            json_t *rs = json_object_get(o, "responses");
            cr_expect(json_is_object(rs) && json_object_size(rs) > 0, "%s %s has no responses", k,
                      path);
        }
    }
    cr_expect_gt(nops, 0);
    json_decref(seen);
    json_decref(doc);
}

Test(openapi, every_ref_resolves) {
    json_t *doc = load_doc();
    size_t nrefs = 0;
    check_refs(doc, doc, "#", &nrefs);
    cr_expect_gt(nrefs, 0, "no $ref at all: components are not used");
    json_decref(doc);
}

/* x-roles, x-api-key-scopes and security must say what auth.c enforces from
 * the route table. */
Test(openapi, roles_and_scopes_match_the_route_table) {
    static const struct {
        unsigned bit;
        const char *name;
    } scopes[] = {{SCOPE_READ, "read"}, {SCOPE_USAGE_WRITE, "usage:write"}};
    static const unsigned roles[] = {ROLE_ADMIN, ROLE_OWNER, ROLE_FINANCE, ROLE_APPROVER,
                                     ROLE_VIEWER};
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route *rt = &api_routes[i];
        char m[16];
        lower(rt->method, m, sizeof m);
        json_t *o = json_object_get(json_object_get(paths, rt->pattern), m);
        if (!o) continue; /* reported by every_route_is_described */
        json_t *xr = json_object_get(o, "x-roles");
        json_t *xs = json_object_get(o, "x-api-key-scopes");
        json_t *sec = json_object_get(o, "security");
        cr_expect(json_is_array(xr), "%s %s: x-roles missing", m, rt->pattern);
        cr_expect(json_is_array(xs), "%s %s: x-api-key-scopes missing", m, rt->pattern);
        bool public = rt->flags & RT_PUBLIC;
        if (public) {
            cr_expect(json_is_array(sec) && json_array_size(sec) == 0,
                      "%s %s is public: security must be []", m, rt->pattern);
            cr_expect_eq(json_array_size(xr), 0, "%s %s is public: x-roles must be empty", m,
                         rt->pattern);
            cr_expect_eq(json_array_size(xs), 0, "%s %s is public: x-api-key-scopes must be empty",
                         m, rt->pattern);
            continue;
        }
        cr_expect(!json_is_array(sec) || json_array_size(sec) > 0,
                  "%s %s needs credentials but security is []", m, rt->pattern);
        size_t nroles = 0;
        for (size_t j = 0; j < sizeof roles / sizeof roles[0]; j++) {
            bool want = rt->roles & roles[j];
            nroles += want;
            cr_expect_eq(has_string(xr, api_role_name(roles[j])), want, "%s %s: x-roles %s %s", m,
                         rt->pattern, want ? "lacks" : "wrongly lists", api_role_name(roles[j]));
        }
        cr_expect_eq(json_array_size(xr), nroles, "%s %s: x-roles has extra entries", m,
                     rt->pattern);
        size_t nscopes = 0;
        for (size_t j = 0; j < sizeof scopes / sizeof scopes[0]; j++) {
            bool want = rt->scopes & scopes[j].bit;
            nscopes += want;
            cr_expect_eq(has_string(xs, scopes[j].name), want, "%s %s: x-api-key-scopes %s %s", m,
                         rt->pattern, want ? "lacks" : "wrongly lists", scopes[j].name);
        }
        cr_expect_eq(json_array_size(xs), nscopes, "%s %s: x-api-key-scopes has extra entries", m,
                     rt->pattern);
    }
    json_decref(doc);
}

/* Every {name} of a described path is a required path parameter of each of
 * its operations (directly or through $ref), and vice versa. */
Test(openapi, path_parameters_are_declared) {
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item) {
        const char *k;
        json_t *o;
        json_object_foreach(item, k, o) {
            if (!is_http_method(k)) continue;
            size_t ntemplated = 0, ndeclared = 0;
            for (const char *p = strchr(path, '{'); p; p = strchr(p + 1, '{')) {
                const char *e = strchr(p, '}');
                cr_assert_not_null(e, "%s: unbalanced {", path);
                char name[64];
                snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
                ntemplated++;
                bool found = false;
                size_t i;
                json_t *prm;
                json_array_foreach(json_object_get(o, "parameters"), i, prm) {
                    json_t *rp = deref(doc, prm);
                    const char *in = json_string_value(json_object_get(rp, "in"));
                    const char *nm = json_string_value(json_object_get(rp, "name"));
                    if (in && nm && !strcmp(in, "path") && !strcmp(nm, name)) {
                        found = true;
                        cr_expect(json_is_true(json_object_get(rp, "required")),
                                  "%s %s: path parameter %s must be required", k, path, name);
                    }
                }
                cr_expect(found, "%s %s: path parameter {%s} is not declared", k, path, name);
            }
            size_t i;
            json_t *prm;
            json_array_foreach(json_object_get(o, "parameters"), i, prm) {
                const char *in = json_string_value(json_object_get(deref(doc, prm), "in"));
                if (in && !strcmp(in, "path")) ndeclared++;
            }
            cr_expect_eq(ndeclared, ntemplated,
                         "%s %s: %zu path parameters declared, %zu in the path", k, path, ndeclared,
                         ntemplated);
        }
    }
    json_decref(doc);
}

/* JSON request bodies reject unknown fields (jx_check), and so must the
 * schemas that describe them. */
Test(openapi, request_bodies_reject_unknown_fields) {
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item) {
        const char *k;
        json_t *o;
        json_object_foreach(item, k, o) {
            if (!is_http_method(k)) continue;
            const api_route *rt = find_route(k, path);
            json_t *rb = json_object_get(o, "requestBody");
            if (rt && (rt->flags & RT_JSON))
                cr_expect_not_null(rb, "%s %s takes a JSON body but has no requestBody", k, path);
            if (!rb || (rt && (rt->flags & RT_UPLOAD))) continue; /* uploads: a file, not JSON */
            json_t *schema = deref(
                doc,
                json_object_get(json_object_get(json_object_get(rb, "content"), "application/json"),
                                "schema"));
            cr_expect(json_is_object(schema), "%s %s: no application/json request schema", k, path);
            /* one schema, or a oneOf whose every alternative is closed */
            json_t *alts = json_object_get(schema, "oneOf");
            size_t nalt = json_is_array(alts) ? json_array_size(alts) : 1;
            for (size_t a = 0; a < nalt; a++) {
                json_t *sc = json_is_array(alts) ? deref(doc, json_array_get(alts, a)) : schema;
                cr_expect(json_is_false(json_object_get(sc, "additionalProperties")),
                          "%s %s: request schema must set additionalProperties: false", k, path);
            }
        }
    }
    json_decref(doc);
}
