/* auth.c — who is calling, and may they call this route (api_authorize).
 *
 * DESIGN — Runs on a database thread before every non-public handler, and is
 * the only place that enforces the route table's rules:
 *   1. credentials: "Authorization: Bearer <token>" (a session token or an
 *      API key "mk_…") or the meterline_session cookie.  Tokens are looked up
 *      by SHA-256; the raw value is never stored or logged.  None/unknown/
 *      expired → 401.
 *   2. CSRF: a cookie-authenticated request that changes state (anything but
 *      GET/HEAD) must come from our own origin: Origin (or Referer) must match
 *      BILLING_PUBLIC_ORIGIN or the Host header, and Sec-Fetch-Site, when the
 *      browser sends it, must be same-origin.  Bearer tokens are not sent
 *      automatically by browsers and need no such check.
 *   3. permission: a user's role must be in route->roles; an API key needs
 *      one of route->scopes (routes with scopes 0 refuse keys) → 403.
 *   4. organization: r->who.org_id is the caller's organization.  A platform
 *      admin picks one with ?org=<slug> (404 if unknown); RT_ORG routes need
 *      it unless RT_ALL_ORGS, where org_id 0 means every organization.  A
 *      non-admin naming another organization gets 404, like any other
 *      object of another organization.
 */
#include "fmacros.h"
#include "api.h"
#include "log.h"
#include "repo.h"
#include "rnd.h"
#include <stdlib.h>
#include "tcache.h"
#include <pthread.h>
#include <strings.h>

static char *bearer_token(const api_req *r, bool *via_cookie) {
    *via_cookie = false;
    const char *h = r->h_authorization;
    if (h) {
        if (strncasecmp(h, "Bearer ", 7) != 0) return NULL;
        h += 7;
        while (*h == ' ') h++;
        return *h ? strdup(h) : NULL;
    }
    char *c = api_cookie_dup(r, "meterline_session");
    if (c && *c) {
        *via_cookie = true;
        return c;
    }
    free(c);
    return NULL;
}

/* scheme://host[:port] of an Origin or Referer value, compared with what we
 * expect. */
static bool origin_matches(const api_req *r, const char *origin) {
    if (!origin) return false;
    const char *sep = strstr(origin, "://");
    if (!sep) return false;
    const char *host = sep + 3;
    size_t hl = strcspn(host, "/?#");
    size_t n = (size_t)(host - origin) + hl; /* scheme://host[:port] */
    if (r->cfg->public_origin[0])
        return strlen(r->cfg->public_origin) == n && !strncasecmp(origin, r->cfg->public_origin, n);
    return r->h_host && strlen(r->h_host) == hl && !strncasecmp(host, r->h_host, hl);
}

static bool csrf_ok(const api_req *r) {
    if (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD")) return true;
    if (r->h_sec_fetch_site && strcmp(r->h_sec_fetch_site, "same-origin") != 0) return false;
    if (r->h_origin) return origin_matches(r, r->h_origin);
    return origin_matches(r, r->h_referer);
}

/* ---- credential cache ----------------------------------------------------
 * token hash → principal for AUTH_TTL_US.  A logout or key revocation in this
 * process drops the entry at once (api_auth_forget*); another billing-api
 * process sharing the database notices within the TTL. */
#define AUTH_TTL_US  (5 * 1000000LL)
#define AUTH_MAX_ENT 65536

typedef struct cached_principal {
    repo_principal p;
    bool is_key;
} cached_principal;

static tc *g_auth;
static pthread_once_t g_auth_once = PTHREAD_ONCE_INIT;
static void auth_cache_init(void) { g_auth = tc_new(AUTH_MAX_ENT, AUTH_TTL_US); }
static tc *auth_cache(void) {
    pthread_once(&g_auth_once, auth_cache_init);
    return g_auth;
}

void api_auth_forget(const char *token_hash) {
    if (auth_cache()) tc_del(auth_cache(), token_hash);
}

static bool same_id(const char *key, const void *val, void *arg) {
    ML_UNUSED(key);
    return !strcmp(((const cached_principal *)val)->p.id, (const char *)arg);
}

void api_auth_forget_id(const char *id) {
    if (auth_cache()) tc_del_if(auth_cache(), same_id, (void *)id);
}

/* Fills r->who from the credentials: 1 done, 0 not cached (needs the
 * database; only when d is NULL), -1 replied. */
static int resolve(api_req *r, db *d) {
    bool via_cookie;
    char *tok = bearer_token(r, &via_cookie);
    if (!tok) {
        api_header(r, "WWW-Authenticate", "Bearer");
        api_err(r, 401, "unauthenticated", "sign in or send Authorization: Bearer <token>");
        return -1;
    }
    api_who *w = &r->who;
    memset(w, 0, sizeof *w);
    w->via_cookie = via_cookie;
    rnd_sha256_hex(tok, strlen(tok), w->token_hash);
    bool is_key = strncmp(tok, "mk_", 3) == 0;
    free(tok);

    cached_principal cp;
    tc *cache = auth_cache();
    if (!cache || !tc_get(cache, w->token_hash, &cp, sizeof cp)) {
        if (!d) return 0;
        db_err e;
        memset(&cp, 0, sizeof cp);
        cp.is_key = is_key;
        int rc = is_key ? repo_apikey_lookup(d, &e, w->token_hash, &cp.p)
                        : repo_session_lookup(d, &e, w->token_hash, &cp.p);
        if (rc == REPO_ERR) {
            api_db_fail(r, &e);
            return -1;
        }
        if (rc == REPO_NOT_FOUND) {
            api_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
            api_err(r, 401, "unauthenticated", "the token is invalid, expired or revoked");
            return -1;
        }
        if (cache) tc_put(cache, w->token_hash, &cp, sizeof cp); /* best effort */
    }
    const repo_principal *p = &cp.p;
    w->kind = is_key ? WHO_APIKEY : WHO_SESSION;
    snprintf(w->user_id, sizeof w->user_id, "%s", p->id);
    w->org_id = p->org_id;
    snprintf(w->org_slug, sizeof w->org_slug, "%s", p->org_slug);
    if (is_key) {
        w->scopes =
            (p->scope_read ? SCOPE_READ : 0u) | (p->scope_usage_write ? SCOPE_USAGE_WRITE : 0u);
    } else {
        w->role = api_role_parse(p->role);
    }
    return 1;
}

/* CSRF, role/scope and organization rules once r->who is known (d may be
 * NULL on a loop thread: then an admin's ?org= needs the database → 0). */
static int check(api_req *r, db *d) {
    api_who *w = &r->who;
    bool via_cookie = w->via_cookie, is_key = w->kind == WHO_APIKEY;
    db_err e;
    int rc;
    if (via_cookie && !csrf_ok(r)) {
        api_err(r, 403, "forbidden",
                "cross-origin request refused: a browser session may only change data "
                "from this site");
        return -1;
    }
    const api_route *rt = r->route;
    if (is_key ? !(rt->scopes & w->scopes) : !(rt->roles & w->role)) {
        if (is_key)
            api_err(r, 403, "forbidden", "this API key's scopes do not allow %s %s", r->method,
                    rt->pattern);
        else
            api_err(r, 403, "forbidden", "role %s may not %s %s", api_role_name(w->role), r->method,
                    rt->pattern);
        return -1;
    }

    char *org = api_query_dup(r, "org");
    if (w->role == ROLE_ADMIN) {
        if (org && *org) {
            if (!d) {
                free(org);
                return 0;
            }
            long long id;
            rc = repo_org_by_slug(d, &e, org, &id);
            if (rc != REPO_OK) {
                free(org);
                if (rc == REPO_ERR)
                    api_db_fail(r, &e);
                else
                    api_err(r, 404, "not_found", "no such organization");
                return -1;
            }
            w->org_id = id;
            snprintf(w->org_slug, sizeof w->org_slug, "%s", org);
        } else if ((rt->flags & RT_ORG) && !(rt->flags & RT_ALL_ORGS)) {
            free(org);
            api_err(r, 400, "bad_request",
                    "platform admins must choose an organization with ?org=<slug>");
            return -1;
        }
    } else if (org && *org && strcmp(org, w->org_slug) != 0) {
        free(org);
        api_err(r, 404, "not_found", "no such organization");
        return -1;
    }
    free(org);
    return 1;
}

int api_authorize(api_req *r) {
    int rc = resolve(r, r->db);
    if (rc == 1) rc = check(r, r->db);
    return rc < 0 ? -1 : 0;
}

int api_authorize_fast(api_req *r) {
    int rc = resolve(r, NULL);
    if (rc == 1) rc = check(r, NULL);
    return rc;
}
