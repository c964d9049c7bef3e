/* routes_auth.c — signup, login/logout, me, users and API keys.
 *
 * DESIGN — Input is checked against jx_field tables first (every problem
 * reported at once, 422), then the handler does its I/O through repo_*.
 * Passwords are hashed with argon2id (libsodium) outside any transaction;
 * session tokens and API keys are 256-bit random values, returned once and
 * stored as SHA-256.  Failed logins are counted in Redis per email + client
 * address; over BILLING_LOGIN_MAX_FAILURES within BILLING_LOGIN_WINDOW_S the
 * answer is 429 with Retry-After, before the password is even checked.  If
 * Redis is down, login answers 503 rather than run without the limit.
 */
#include "fmacros.h"
#include "api.h"
#include "log.h"
#include "repo.h"
#include "rnd.h"
#include "routes.h"
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>

#define PASSWORD_MIN 8
#define PASSWORD_MAX 256

/* ---- shared validation ------------------------------------------------- */

bool api_valid_email(const char *s) {
    size_t n = strlen(s);
    if (n < 3 || n > 254) return false;
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@')) return false;
    const char *dot = strchr(at + 1, '.');
    if (!dot || dot == at + 1 || dot[1] == '\0' || s[n - 1] == '.') return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == ',' || *p == ';')
            return false;
    return true;
}

static void check_email(jx_errs *e, const json_t *body, const char *key) {
    const char *v = jx_str(body, key);
    if (v && !jx_errs_hasp(e, NULL, key) && !api_valid_email(v))
        jx_errs_add(e, key, "must be an email address like name@example.com");
}

static char *lower_dup(const char *s) {
    char *d = strdup(s);
    if (d)
        for (char *p = d; *p; p++) *p = (char)tolower((unsigned char)*p);
    return d;
}

static void set_session_cookie(api_req *r, const char *token, int max_age) {
    char c[256];
    snprintf(c, sizeof c, "meterline_session=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s",
             token, max_age, r->cfg->cookie_secure ? "; Secure" : "");
    api_header(r, "Set-Cookie", c);
}

/* Creates a session for user_id; on success fills token and expires_at. */
static int new_session(api_req *r, const char *user_id, char token[RND_TOKEN_MAX],
                       char expires_at[40]) {
    char hash[RND_HASH_HEX];
    db_err e;
    rnd_token("ms_", token);
    rnd_sha256_hex(token, strlen(token), hash);
    if (repo_session_create(r->db, &e, hash, user_id, r->cfg->session_ttl_hours, r->h_user_agent,
                            r->peer, expires_at) != REPO_OK) {
        api_db_fail(r, &e);
        return -1;
    }
    set_session_cookie(r, token, r->cfg->session_ttl_hours * 3600);
    return 0;
}

void api_reply_repo(api_req *r, int rc, const db_err *e, const repo_field *f, const char *what) {
    switch (rc) {
    case REPO_NOT_FOUND:
        api_err(r, 404, "not_found", "no such %s", what);
        break;
    case REPO_CONFLICT: {
        json_t *d = json_pack("[{s:s, s:s}]", "field", f->field, "message", f->message);
        api_json(r, 409,
                 json_pack("{s:{s:s, s:s, s:o}}", "error", "code", "conflict", "message",
                           f->message, "details", d ? d : json_array()));
        break;
    }
    case REPO_INVALID:
        api_invalid1(r, f->field, "%s", f->message);
        break;
    default:
        api_db_fail(r, e);
    }
}

/* ---- signup ----------------------------------------------------------- */

static const jx_field k_signup[] = {
    {"org_name", JX_STRING, JX_REQUIRED, 1, 200},
    {"name", JX_STRING, JX_REQUIRED, 1, 200},
    {"email", JX_STRING, JX_REQUIRED, 3, 254},
    {"password", JX_STRING, JX_REQUIRED, PASSWORD_MIN, PASSWORD_MAX},
    {NULL, 0, 0, 0, 0},
};

static void check_signup(const json_t *body, jx_errs *e) { check_email(e, body, "email"); }

void h_signup(api_req *r) {
    if (!api_validate(r, k_signup, check_signup)) return;
    char pwhash[RND_PWHASH_MAX];
    if (rnd_password_hash(jx_str(r->json, "password"), pwhash)) {
        api_err(r, 503, "unavailable", "out of memory");
        return;
    }

    db_err de;
    repo_field f = {{0}, {0}};
    json_t *org = NULL, *user = NULL;
    long long org_id = 0;
    if (db_begin(r->db, &de)) {
        api_db_fail(r, &de);
        return;
    }
    int rc = repo_org_create(r->db, &de, jx_str(r->json, "org_name"), &org_id, &org);
    if (rc == REPO_OK)
        rc = repo_user_create(r->db, &de, org_id, jx_str(r->json, "email"), jx_str(r->json, "name"),
                              pwhash, "owner", &user, &f);
    if (rc == REPO_OK && db_commit(r->db, &de)) rc = REPO_ERR;
    if (rc != REPO_OK) {
        db_rollback(r->db);
        json_decref(org);
        json_decref(user);
        {
            api_reply_repo(r, rc, &de, &f, "user");
            return;
        }
    }
    char token[RND_TOKEN_MAX], exp[40];
    const char *uid = json_string_value(json_object_get(user, "id"));
    if (new_session(r, uid, token, exp)) {
        json_decref(org);
        json_decref(user);
        return;
    }
    LOG_KV(LOG_INFO, "signup", LF_S("request_id", r->request_id), LF_S("user_id", uid),
           LF_I("org_id", org_id));
    api_json(r, 201,
             json_pack("{s:o, s:o, s:s, s:s}", "user", user, "organization", org, "token", token,
                       "expires_at", exp));
}

/* ---- login / logout --------------------------------------------------- */

static const jx_field k_login[] = {
    {"email", JX_STRING, JX_REQUIRED, 1, 254},
    {"password", JX_STRING, JX_REQUIRED, 1, PASSWORD_MAX},
    {NULL, 0, 0, 0, 0},
};

static pthread_once_t g_dummy_once = PTHREAD_ONCE_INIT;
static char g_dummy_hash[RND_PWHASH_MAX];
static void make_dummy(void) {
    if (rnd_password_hash("meterline-timing-equalizer", g_dummy_hash)) g_dummy_hash[0] = '\0';
}

/* Redis key of the failure counter for this email + address (hashed: no PII). */
static void rl_key(const api_req *r, const char *email, char out[96]) {
    char raw[512], h[RND_HASH_HEX];
    snprintf(raw, sizeof raw, "%s\n%s", email, r->peer);
    rnd_sha256_hex(raw, strlen(raw), h);
    snprintf(out, 96, "ml:loginfail:%s", h);
}

void h_login(api_req *r) {
    if (!api_validate(r, k_login, NULL)) return;
    char *email = lower_dup(jx_str(r->json, "email"));
    if (!email) {
        api_err(r, 503, "unavailable", "out of memory");
        return;
    }
    char key[96], rerr[256];
    rl_key(r, email, key);

    redisReply *rep = rds_cmd(r->redis, rerr, sizeof rerr, "GET %s", key);
    long long fails = 0;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        if (rep) freeReplyObject(rep);
        free(email);
        LOG_KV(LOG_WARN, "login refused: redis unavailable", LF_S("request_id", r->request_id),
               LF_S("error", rerr));
        api_header(r, "Retry-After", "2");
        {
            api_err(r, 503, "unavailable", "login is unavailable; retry later");
            return;
        }
    }
    if (rep->type == REDIS_REPLY_STRING) fails = strtoll(rep->str, NULL, 10);
    freeReplyObject(rep);
    if (fails >= r->cfg->login_max_failures) {
        long long ttl = r->cfg->login_window_s;
        rep = rds_cmd(r->redis, rerr, sizeof rerr, "TTL %s", key);
        if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) ttl = rep->integer;
        if (rep) freeReplyObject(rep);
        free(email);
        char ra[24];
        snprintf(ra, sizeof ra, "%lld", ttl);
        api_header(r, "Retry-After", ra);
        {
            api_err(r, 429, "rate_limited",
                    "too many failed logins for this account from your address; retry in %lld s",
                    ttl);
            return;
        }
    }

    db_err de;
    char uid[40], hash[RND_PWHASH_MAX + 64];
    int rc = repo_user_auth(r->db, &de, email, uid, hash, sizeof hash);
    if (rc == REPO_ERR) {
        free(email);
        {
            api_db_fail(r, &de);
            return;
        }
    }
    bool ok;
    if (rc == REPO_OK) {
        ok = rnd_password_verify(hash, jx_str(r->json, "password"));
    } else {
        /* same work for an unknown email, so timing does not reveal accounts */
        pthread_once(&g_dummy_once, make_dummy);
        (void)rnd_password_verify(g_dummy_hash, jx_str(r->json, "password"));
        ok = false;
    }
    free(email);
    if (!ok) {
        /* INCR then set the window on the first failure (atomic in a MULTI) */
        const char *argv1[] = {"MULTI"};
        rep = rds_cmdargv(r->redis, rerr, sizeof rerr, 1, argv1, NULL);
        if (rep) freeReplyObject(rep);
        rep = rds_cmd(r->redis, rerr, sizeof rerr, "INCR %s", key);
        if (rep) freeReplyObject(rep);
        rep = rds_cmd(r->redis, rerr, sizeof rerr, "EXPIRE %s %d NX", key, r->cfg->login_window_s);
        if (rep) freeReplyObject(rep);
        const char *argv2[] = {"EXEC"};
        rep = rds_cmdargv(r->redis, rerr, sizeof rerr, 1, argv2, NULL);
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            LOG_KV(LOG_WARN, "login failure not counted", LF_S("request_id", r->request_id),
                   LF_S("error", rep ? rep->str : rerr));
        if (rep) freeReplyObject(rep);
        LOG_KV(LOG_INFO, "login failed", LF_S("request_id", r->request_id), LF_S("peer", r->peer));
        api_header(r, "WWW-Authenticate", "Bearer");
        {
            api_err(r, 401, "unauthenticated", "email or password is wrong");
            return;
        }
    }
    rep = rds_cmd(r->redis, rerr, sizeof rerr, "DEL %s", key);
    if (rep) freeReplyObject(rep);

    char token[RND_TOKEN_MAX], exp[40];
    if (new_session(r, uid, token, exp)) return;
    json_t *user = NULL;
    rc = repo_user_get(r->db, &de, uid, &user);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, NULL, "user");
        return;
    }
    api_json(r, 201, json_pack("{s:s, s:o, s:s}", "token", token, "user", user, "expires_at", exp));
}

void h_logout(api_req *r) {
    db_err e;
    if (repo_session_delete(r->db, &e, r->who.token_hash) == REPO_ERR) {
        api_db_fail(r, &e);
        return;
    }
    api_auth_forget(r->who.token_hash);
    set_session_cookie(r, "", 0);
    api_no_content(r);
}

void h_me(api_req *r) {
    db_err e;
    json_t *org = json_null();
    if (r->who.org_id) {
        int rc = repo_org_get(r->db, &e, r->who.org_id, &org);
        if (rc != REPO_OK) {
            api_reply_repo(r, rc, &e, NULL, "organization");
            return;
        }
    }
    if (r->who.kind == WHO_APIKEY) {
        json_t *scopes = json_array();
        if (r->who.scopes & SCOPE_READ) json_array_append_new(scopes, json_string("read"));
        if (r->who.scopes & SCOPE_USAGE_WRITE)
            json_array_append_new(scopes, json_string("usage:write"));
        {
            api_json(r, 200,
                     json_pack("{s:n, s:{s:s, s:o}, s:o}", "user", "api_key", "id", r->who.user_id,
                               "scopes", scopes, "organization", org));
            return;
        }
    }
    json_t *user = NULL;
    int rc = repo_user_get(r->db, &e, r->who.user_id, &user);
    if (rc != REPO_OK) {
        json_decref(org);
        {
            api_reply_repo(r, rc, &e, NULL, "user");
            return;
        }
    }
    api_json(r, 200, json_pack("{s:o, s:o}", "user", user, "organization", org));
}

/* ---- users ------------------------------------------------------------ */

static const jx_field k_user[] = {
    {"name", JX_STRING, JX_REQUIRED, 1, 200},
    {"email", JX_STRING, JX_REQUIRED, 3, 254},
    {"password", JX_STRING, JX_REQUIRED, PASSWORD_MIN, PASSWORD_MAX},
    {"role", JX_STRING, JX_REQUIRED, 1, 16},
    {NULL, 0, 0, 0, 0},
};

/* users can be owners, finance, approvers or viewers — never platform admins */
static void check_user(const json_t *body, jx_errs *e) {
    check_email(e, body, "email");
    const char *role = jx_str(body, "role");
    unsigned rb = role ? api_role_parse(role) : 0;
    if (role && !jx_errs_hasp(e, NULL, "role") && (rb == 0 || rb == ROLE_ADMIN))
        jx_errs_add(e, "role", "must be one of owner, finance, approver, viewer");
}

void h_users_create(api_req *r) {
    if (!api_validate(r, k_user, check_user)) return;
    const char *role = jx_str(r->json, "role");
    char pwhash[RND_PWHASH_MAX];
    if (rnd_password_hash(jx_str(r->json, "password"), pwhash)) {
        api_err(r, 503, "unavailable", "out of memory");
        return;
    }
    db_err de;
    repo_field f = {{0}, {0}};
    json_t *user = NULL;
    int rc = repo_user_create(r->db, &de, r->who.org_id, jx_str(r->json, "email"),
                              jx_str(r->json, "name"), pwhash, role, &user, &f);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, &f, "user");
        return;
    }
    api_json(r, 201, user);
}

void h_users_list(api_req *r) {
    int limit;
    char *cursor;
    if (api_page_params(r, &limit, &cursor)) return;
    db_err e;
    json_t *rows = NULL;
    char *next = NULL;
    int rc = repo_users_list(r->db, &e, r->who.org_id, limit, cursor, &rows, &next);
    free(cursor);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &e, NULL, "user");
        return;
    }
    api_page_reply(r, rows, next);
    free(next);
}

/* ---- API keys --------------------------------------------------------- */

static const jx_field k_key[] = {
    {"name", JX_STRING, JX_REQUIRED, 1, 200},
    {"scopes", JX_ARRAY, JX_REQUIRED, 1, 2},
    {NULL, 0, 0, 0, 0},
};

/* Scope bits of a scopes array; each unknown or repeated entry is reported
 * when e is not NULL. */
static unsigned scope_bits(const json_t *scopes, jx_errs *e) {
    unsigned bits = 0;
    size_t i;
    const json_t *s;
    json_array_foreach(scopes, i, s) {
        const char *v = jx_is_string(s) ? json_string_value(s) : NULL;
        unsigned b = !v                          ? 0
                     : !strcmp(v, "read")        ? SCOPE_READ
                     : !strcmp(v, "usage:write") ? SCOPE_USAGE_WRITE
                                                 : 0;
        if (b && !(bits & b)) {
            bits |= b;
        } else if (e) {
            char field[32];
            snprintf(field, sizeof field, "scopes[%zu]", i);
            jx_errs_add(e, field, "must be \"read\" or \"usage:write\", each at most once");
        }
    }
    return bits;
}

static void check_key(const json_t *body, jx_errs *e) {
    (void)scope_bits(json_object_get(body, "scopes"), e);
}

void h_keys_create(api_req *r) {
    if (!api_validate(r, k_key, check_key)) return;
    unsigned bits = scope_bits(json_object_get(r->json, "scopes"), NULL);
    bool read = bits & SCOPE_READ, usage = bits & SCOPE_USAGE_WRITE;
    char key[RND_TOKEN_MAX], hash[RND_HASH_HEX], prefix[16];
    rnd_token("mk_", key);
    rnd_sha256_hex(key, strlen(key), hash);
    snprintf(prefix, sizeof prefix, "%.10s", key);
    const char *pg = read && usage ? "{read,usage:write}" : read ? "{read}" : "{usage:write}";
    db_err de;
    json_t *out = NULL;
    int rc = repo_apikey_create(r->db, &de, r->who.org_id, jx_str(r->json, "name"), hash, prefix,
                                pg, r->who.kind == WHO_SESSION ? r->who.user_id : NULL, &out);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, NULL, "api key");
        return;
    }
    json_object_set_new(out, "key", json_string(key));
    api_json(r, 201, out);
}

void h_keys_list(api_req *r) {
    db_err e;
    json_t *rows = NULL;
    int rc = repo_apikeys_list(r->db, &e, r->who.org_id, &rows);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &e, NULL, "api key");
        return;
    }
    api_page_reply(r, rows, NULL);
}

void h_keys_delete(api_req *r) {
    db_err e;
    int rc = repo_apikey_revoke(r->db, &e, r->who.org_id, r->pv[0]);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &e, NULL, "api key");
        return;
    }
    api_auth_forget_id(r->pv[0]);
    api_no_content(r);
}

/* ---- platform admin ---------------------------------------------------- */

void h_orgs_list(api_req *r) {
    int limit;
    char *cursor;
    if (api_page_params(r, &limit, &cursor)) return;
    db_err e;
    json_t *rows = NULL;
    char *next = NULL;
    int rc = repo_orgs_list(r->db, &e, limit, cursor, &rows, &next);
    free(cursor);
    if (rc == REPO_OK)
        api_page_reply(r, rows, next);
    else
        api_reply_repo(r, rc, &e, NULL, "organization");
    free(next);
}
