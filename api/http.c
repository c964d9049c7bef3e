/* http.c — reply builders and request accessors shared by all handlers.
 *
 * DESIGN — Pure with respect to evhttp: these functions only read and write
 * the api_req, so they can run on any thread that owns the request.  Errors
 * always take the API.md shape {"error": {"code", "message", "details"}}.
 */
#include "fmacros.h"
#include "api.h"
#include "log.h"
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>

static void set_body(api_req *r, int status, const char *ctype, const void *p, size_t n) {
    buf_free(&r->out);
    buf_add(&r->out, p, n);
    r->status = status;
    r->ctype = ctype;
}

static void oom_reply(api_req *r) {
    static const char m[] =
        "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\",\"details\":[]}}";
    buf_free(&r->out);
    buf_add(&r->out, m, sizeof m - 1); /* 72 bytes: small enough to succeed or be empty */
    r->status = 503;
    r->ctype = "application/json";
}

void api_raw(api_req *r, int status, const char *ctype, const void *p, size_t n) {
    set_body(r, status, ctype, p, n);
    if (r->out.oom) oom_reply(r);
}

void api_json(api_req *r, int status, json_t *body) {
    /* NULL body = a json_pack/json_* allocation failed upstream */
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (!s) {
        oom_reply(r);
        return;
    }
    api_raw(r, status, "application/json", s, strlen(s));
    free(s);
}

void api_no_content(api_req *r) { set_body(r, 204, NULL, NULL, 0); }

static void error_reply(api_req *r, int status, const char *code, const char *msg,
                        json_t *details) {
    json_t *o = json_pack("{s:{s:s, s:s, s:o}}", "error", "code", code, "message", msg, "details",
                          details ? details : json_array());
    api_json(r, status, o);
}

void api_err(api_req *r, int status, const char *code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    error_reply(r, status, code, msg, NULL);
}

void api_invalid(api_req *r, const jx_errs *e) {
    size_t n = jx_errs_count(e);
    char msg[128];
    snprintf(msg, sizeof msg, "%zu invalid field%s", n, n == 1 ? "" : "s");
    error_reply(r, 422, "validation_failed", msg, jx_errs_json(e));
}

void api_invalid1(api_req *r, const char *field, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jx_errs *e = jx_errs_new();
    if (!e) {
        api_err(r, 503, "unavailable", "out of memory");
        return;
    }
    jx_errs_add(e, field, "%s", msg);
    api_invalid(r, e);
    jx_errs_free(e);
}

void api_db_fail(api_req *r, const db_err *e) {
    if (e->conn_lost) {
        api_header(r, "Retry-After", "2");
        api_err(r, 503, "unavailable", "the database is unavailable; retry later");
        return;
    }
    LOG_KV(LOG_ERROR, "database error", LF_S("request_id", r->request_id),
           LF_S("sqlstate", e->sqlstate), LF_S("constraint", e->constraint), LF_S("error", e->msg));
    api_err(r, 500, "internal", "internal error (request %s)", r->request_id);
}

void api_header(api_req *r, const char *k, const char *v) {
    for (int i = 0; i < r->nh; i++) {
        if (strcasecmp(r->hk[i], k) == 0) {
            char *nv = strdup(v);
            if (nv) {
                free(r->hv[i]);
                r->hv[i] = nv;
            }
            return;
        }
    }
    if (r->nh == API_MAX_HEADERS) {
        LOG_KV(LOG_ERROR, "too many reply headers", LF_S("header", k));
        return;
    }
    char *kk = strdup(k), *vv = strdup(v);
    if (!kk || !vv) {
        free(kk);
        free(vv);
        return;
    }
    r->hk[r->nh] = kk;
    r->hv[r->nh] = vv;
    r->nh++;
}

char *api_query_dup(const api_req *r, const char *key) {
    if (!r->query) return NULL;
    struct evkeyvalq q;
    if (evhttp_parse_query_str(r->query, &q) != 0) {
        evhttp_clear_headers(&q);
        return NULL;
    }
    const char *v = evhttp_find_header(&q, key);
    char *out = v ? strdup(v) : NULL;
    evhttp_clear_headers(&q);
    return out;
}

int api_page_params(api_req *r, int *limit, char **cursor) {
    *limit = 50;
    *cursor = NULL;
    char *l = api_query_dup(r, "limit");
    if (l) {
        char *end;
        long v = strtol(l, &end, 10);
        bool bad = *l == '\0' || *end || v < 1 || v > 1000;
        free(l);
        if (bad) {
            api_err(r, 400, "bad_request", "limit must be an integer from 1 to 1000");
            return -1;
        }
        *limit = (int)v;
    }
    char *c = api_query_dup(r, "cursor");
    if (c && *c) {
        *cursor = api_cursor_decode(c);
        free(c);
        if (!*cursor) {
            api_err(r, 400, "bad_request", "cursor is not valid");
            return -1;
        }
    } else {
        free(c);
    }
    return 0;
}

void api_page_reply(api_req *r, json_t *rows, const char *next_cursor) {
    json_t *nc = json_null();
    if (next_cursor) {
        char *enc = api_cursor_encode(next_cursor);
        if (enc) {
            nc = json_string(enc);
            free(enc);
        }
    }
    api_json(r, 200, json_pack("{s:o, s:o}", "data", rows, "next_cursor", nc));
}

char *api_cookie_dup(const api_req *r, const char *name) {
    const char *p = r->h_cookie;
    size_t nl = strlen(name);
    while (p && *p) {
        while (*p == ' ' || *p == ';') p++;
        const char *eq = strchr(p, '=');
        const char *semi = strchr(p, ';');
        if (!eq || (semi && semi < eq)) {
            p = semi;
            continue;
        }
        size_t kl = (size_t)(eq - p);
        const char *v = eq + 1;
        size_t vl = semi ? (size_t)(semi - v) : strlen(v);
        if (kl == nl && strncmp(p, name, nl) == 0) return strndup(v, vl);
        p = semi;
    }
    return NULL;
}

static const struct {
    unsigned role;
    const char *name;
} k_roles[] = {
    {ROLE_ADMIN, "admin"},       {ROLE_OWNER, "owner"},   {ROLE_FINANCE, "finance"},
    {ROLE_APPROVER, "approver"}, {ROLE_VIEWER, "viewer"},
};

const char *api_role_name(unsigned role) {
    for (size_t i = 0; i < ML_ARRAY_LEN(k_roles); i++)
        if (k_roles[i].role == role) return k_roles[i].name;
    return "none";
}

unsigned api_role_parse(const char *name) {
    for (size_t i = 0; i < ML_ARRAY_LEN(k_roles); i++)
        if (strcmp(k_roles[i].name, name) == 0) return k_roles[i].role;
    return 0;
}

char *api_cursor_encode(const char *s) {
    size_t n = strlen(s);
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    if (!out) return NULL;
    sodium_bin2base64(out, cap, (const unsigned char *)s, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

char *api_cursor_decode(const char *c) {
    size_t n = strlen(c);
    unsigned char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t len = 0;
    if (sodium_base642bin(out, n, c, n, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        memchr(out, '\0', len)) {
        free(out);
        return NULL;
    }
    out[len] = '\0';
    return (char *)out;
}

bool api_validate(api_req *r, const jx_field *spec, api_check_fn extra) {
    jx_errs *e = jx_errs_new();
    if (!e) {
        api_err(r, 503, "unavailable", "out of memory");
        return false;
    }
    jx_check(r->json, spec, NULL, e);
    if (extra) extra(r->json, e);
    bool ok = jx_errs_count(e) == 0;
    if (!ok) api_invalid(r, e);
    jx_errs_free(e);
    return ok;
}
