/* api.h — what every handler of billing-api sees (prefix api_).
 *
 * DESIGN — A request is copied out of evhttp on its event-loop thread into an
 * api_req (method, path, path parameters, query, headers we use, body, parsed
 * JSON) and then handed either to its handler right there (routes flagged
 * RT_INLINE: no database, never blocking) or to a database thread that owns
 * one PostgreSQL connection, one Redis connection and one job-queue client
 * (jq, on a Redis connection of its own).  Handlers never touch evhttp: they
 * fill the reply fields through api_json / api_err / ..., and the loop thread
 * that owns the connection sends exactly one reply.  If the client has gone
 * away meanwhile, the reply is dropped and the request freed.
 *
 * The route table (routes.c) is the single place where authentication, roles,
 * API-key scopes, body limits and the organization requirement are declared;
 * server.c enforces them before a handler runs, so a handler may assume its
 * caller is allowed and r->who.org_id is the organization to act on.
 */
#ifndef ML_API_H
#define ML_API_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "buf.h"
#include "cfg.h"
#include "db.h"
#include "jq.h"
#include "jx.h"
#include "rds.h"

/* roles (bits) */
enum {
    ROLE_ADMIN = 1 << 0, /* platform staff: every organization */
    ROLE_OWNER = 1 << 1,
    ROLE_FINANCE = 1 << 2,
    ROLE_APPROVER = 1 << 3,
    ROLE_VIEWER = 1 << 4,
};
#define ROLES_ALL           (ROLE_ADMIN | ROLE_OWNER | ROLE_FINANCE | ROLE_APPROVER | ROLE_VIEWER)
#define ROLES_WRITE_CATALOG (ROLE_ADMIN | ROLE_OWNER | ROLE_FINANCE)
#define ROLES_OWNER         (ROLE_ADMIN | ROLE_OWNER)
#define ROLES_INVOICE_FINANCE                                                                      \
    (ROLE_ADMIN | ROLE_OWNER | ROLE_FINANCE) /* generate, issue, void, paid */
#define ROLES_INVOICE_APPROVE (ROLE_ADMIN | ROLE_OWNER | ROLE_APPROVER) /* approve, reject */

/* API-key scopes (bits) */
enum { SCOPE_READ = 1 << 0, SCOPE_USAGE_WRITE = 1 << 1 };

/* route flags */
enum {
    RT_INLINE = 1 << 0,   /* runs on the loop thread: no DB, no blocking */
    RT_JSON = 1 << 1,     /* body must be a JSON object (415 / 400 otherwise) */
    RT_ORG = 1 << 2,      /* acts on one organization: admins must give ?org=<slug> */
    RT_ALL_ORGS = 1 << 3, /* with RT_ORG: an admin without ?org sees all (org_id 0) */
    RT_PUBLIC = 1 << 4,   /* no authentication */
    RT_FAST = 1 << 5,     /* first tried on the loop thread with cached
                             credentials and r->db == NULL (see api_pending) */
    RT_UPLOAD = 1 << 6,   /* body streamed to a spool file by upload.c (r->upload);
                             limit BILLING_MAX_UPLOAD */
};

typedef struct api_req api_req;

/* A request body the connection filter (upload.c) streamed to a spool file
 * under BILLING_STORAGE_DIR/tmp/, or refused without holding it in memory.
 * Owned by the request: api_upload_free (on request free) deletes the spool
 * file unless the handler moved it away and set path to NULL. */
enum {
    API_UPL_OK = 0,      /* spooled: path, size, sha256 valid */
    API_UPL_TOO_LARGE,   /* over the route's limit: discarded (413) */
    API_UPL_BAD_FRAMING, /* malformed chunked body (400; the connection closes) */
    API_UPL_BAD_BODY,    /* malformed multipart or no part named file (error says) */
    API_UPL_UNSUPPORTED, /* Content-Type neither CSV nor multipart: discarded (415) */
    API_UPL_NO_AUTH,     /* no credentials at all: discarded unread (the 401 follows) */
    API_UPL_IO,          /* the spool file could not be written (503) */
};
enum { API_UPL_CSV = 1, API_UPL_MULTIPART = 2 };
typedef struct api_upload {
    int state;
    int kind;           /* API_UPL_CSV / API_UPL_MULTIPART (0 = neither) */
    char *path;         /* absolute spool path, or NULL */
    long long size;     /* file bytes (OK); body bytes declared or seen (TOO_LARGE) */
    long long limit;    /* the limit that applied */
    char sha256[65];    /* lowercase hex, computed while streaming */
    char filename[256]; /* multipart filename ("" if none) */
    bool missing_file;  /* BAD_BODY: the multipart body has no part named file */
    char error[160];
} api_upload;
void api_upload_free(api_upload *u);  /* NULL ok; unlinks u->path if set */
typedef struct api_stream api_stream; /* stream.h: streamed replies */
typedef void (*api_handler)(api_req *r);

typedef struct api_route {
    const char *method;
    const char *pattern; /* "/v1/customers/{id}"; "{*}" matches the rest */
    api_handler fn;
    unsigned roles;     /* who may call it (session users); ignored with RT_PUBLIC */
    unsigned scopes;    /* API-key scope that allows it; 0 = sessions only */
    long long max_body; /* bytes; 0 = no body; -1 = BILLING_MAX_BODY */
    unsigned flags;
    const char *name; /* label in logs and /metrics */
} api_route;

extern const api_route api_routes[];
extern const size_t api_nroutes;

enum { WHO_NONE = 0, WHO_SESSION, WHO_APIKEY };

typedef struct api_who {
    int kind;
    unsigned role;    /* ROLE_* of the user; 0 for API keys */
    unsigned scopes;  /* SCOPE_* of an API key */
    long long org_id; /* organization acted on; 0 = all (admin listing) */
    char org_slug[64];
    char user_id[40]; /* user or API key id */
    char token_hash[65];
    bool via_cookie;
} api_who;

typedef struct api_server api_server;
typedef struct api_loop api_loop;

#define API_MAX_PARAMS  4
#define API_MAX_HEADERS 8

struct api_req {
    /* ---- filled on the loop thread, read-only afterwards ---- */
    api_loop *loop;
    api_server *srv;
    const cfg *cfg;
    struct evhttp_request *ev; /* loop thread only; NULL once the client left */
    struct event *watch;       /* loop thread only: EOF watch while waiting */
    atomic_bool gone;          /* the client closed the connection */
    const api_route *route;
    int route_idx;
    char method[8];
    char *path;               /* raw path without query */
    char *pv[API_MAX_PARAMS]; /* decoded path parameters */
    int npv;
    char *query; /* raw query string or NULL */
    char *body;
    size_t body_len;
    json_t *json;
    struct uin_batch *fast_batch; /* RT_FAST: the batch body as uin_fast_batch read it */
    char request_id[65];
    char *h_authorization, *h_cookie, *h_origin, *h_host, *h_sec_fetch_site, *h_user_agent,
        *h_content_type, *h_referer, *h_accept;
    char *h_idem_key;          /* Idempotency-Key (or X-Request-Id) of the request */
    char *h_if_none_match;     /* If-None-Match (conditional downloads) */
    struct api_upload *upload; /* upload.c: the streamed body of an RT_UPLOAD route,
                                  or why a body was refused; NULL otherwise */
    char peer[64];
    int64_t t0_us;
    /* ---- database thread ---- */
    db *db;
    rds *redis;
    jq *jq; /* the thread's job-queue client (its own Redis connection) */
    api_who who;
    /* ---- reply ---- */
    int status;
    buf out;
    const char *ctype;
    char *hk[API_MAX_HEADERS], *hv[API_MAX_HEADERS];
    int nh;
    api_stream *stream; /* set by api_stream_begin (stream.h) */
    bool file_set;      /* api_file: the body is file_fd[0, file_len) */
    int file_fd;
    long long file_len;
    int64_t again_until_us; /* api_again: re-run the handler until then */
    struct event *again_ev; /* loop thread: the timer between runs */
    int again_runs;         /* runs of a long poll so far, minus one */
    char again_note[32];    /* the handler's own note, kept across runs */
    bool pending;           /* handed to another thread, which calls api_complete */
    atomic_int hold;        /* while pending: completes when it drops to 0 */
    bool defer_db;          /* RT_FAST handler on the loop thread: run me on a
                               database thread instead */
    int idem;               /* idempotency state (idem.c) */
    char idem_key[96];
    char idem_fp[65];
    char idem_ct[96]; /* content type of a replayed answer (r->ctype points here) */
    api_req *next;    /* queue link */
};

/* ---- handing a request on (RT_FAST routes, and any handler on a database
 * thread) ----
 * api_pending: the handler gave r to another thread, which fills the reply
 * and calls api_complete(r) exactly once (from any thread).  After
 * api_pending the handler must not touch r.  Set the flag before handing r
 * over.  api_defer_db: an RT_FAST handler on the loop thread (r->db == NULL)
 * asks to be run again on a database thread. */
static inline void api_pending(api_req *r) {
    r->pending = true;
    atomic_store(&r->hold, 2); /* the taker's api_complete + the server's release */
}
static inline void api_defer_db(api_req *r) { r->defer_db = true; }
void api_complete(api_req *r);

/* ---- idempotency (idem.c) ----
 * For POSTs of authenticated routes that carry Idempotency-Key (alias
 * X-Request-Id): the first request with a key runs and its answer is kept
 * 24 h; the same key and the same request again replays it with
 * Idempotent-Replayed: true; the same key with another method, path, query
 * or body → 409 idempotency_key_reused; while the first is still running →
 * 409 conflict with Retry-After.  Keys are per organization.  Called by the
 * server on database threads around the handler. */
enum { API_IDEM_NONE = 0, API_IDEM_CLAIMED = 1, API_IDEM_REPLIED = 2 };
int api_idem_begin(api_req *r);
void api_idem_end(api_req *r);

/* ---- long poll ----
 * api_again: the reply the handler just filled in is what the client gets if
 * nothing changes; the server keeps the request on its loop thread (a timer,
 * no database thread held) and runs the handler again on a database thread
 * about every API_AGAIN_MS, until a run no longer calls api_again, until_us
 * (ts_now clock) passes, the client leaves or the server shuts down — then
 * the last run's reply is sent. */
#define API_AGAIN_MS 200
static inline void api_again(api_req *r, int64_t until_us) { r->again_until_us = until_us; }

/* ---- file replies ----
 * api_file: the body is the first len bytes of the open file fd (taken over:
 * closed by the server), sent by the loop thread with evbuffer_add_file
 * (sendfile/mmap: never read into memory here).  Content-Length is len.  It
 * must be the handler's last reply call. */
void api_file(api_req *r, int status, const char *ctype, int fd, long long len);

/* ---- replies (exactly one per request; a later call replaces an earlier) ---- */
void api_json(api_req *r, int status, json_t *body); /* steals body */
void api_raw(api_req *r, int status, const char *ctype, const void *p, size_t n);
void api_no_content(api_req *r);
void api_err(api_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 422 validation_failed with details from e. */
void api_invalid(api_req *r, const jx_errs *e);
/* 422 with one {field, message}. */
void api_invalid1(api_req *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 503 when the connection was lost, else 500 (logged with the request id). */
void api_db_fail(api_req *r, const db_err *e);
void api_header(api_req *r, const char *k, const char *v);

/* Checks the JSON body against spec, then runs extra (may be NULL) for the
 * rules a table cannot say; every problem is collected.  Returns true when
 * valid; otherwise it has replied 422 (or 503) and returns false. */
typedef void (*api_check_fn)(const json_t *body, jx_errs *e);
bool api_validate(api_req *r, const jx_field *spec, api_check_fn extra);

/* ---- request accessors ---- */
/* Decoded query parameter or NULL (first occurrence). Caller frees. */
char *api_query_dup(const api_req *r, const char *key);
/* Reads ?limit= (1..1000, default 50) and ?cursor=; 0 ok, -1 replied 400. */
int api_page_params(api_req *r, int *limit, char **cursor);
/* {"data": rows, "next_cursor": next|null} — steals rows. */
void api_page_reply(api_req *r, json_t *rows, const char *next_cursor);
/* Cookie value by name (malloc'd) or NULL. */
char *api_cookie_dup(const api_req *r, const char *name);
const char *api_role_name(unsigned role);
unsigned api_role_parse(const char *name); /* 0 if unknown */

/* ---- server ---- */
typedef struct api_health {
    atomic_bool pg_ok, redis_ok;
} api_health;
const api_health *api_server_health(const api_server *s);
int api_server_db_busy(const api_server *s);
int api_server_db_threads(const api_server *s);

/* auth.c: resolves r->who from the Authorization header or cookie and checks
 * the route's roles/scopes/org/CSRF rules.  Returns 0 to go on, -1 when it has
 * replied (401/403/400/503). */
int api_authorize(api_req *r);
/* The same on a loop thread from the credential cache alone: 1 authorized
 * (r->who filled), 0 needs the database (run api_authorize on a database
 * thread), -1 replied (401/403/404). */
int api_authorize_fast(api_req *r);
/* Drop cached credentials: one token hash (logout), or every token of a user
 * or API key id (revocation). */
void api_auth_forget(const char *token_hash);
void api_auth_forget_id(const char *id);

/* metrics.c */
void api_metrics_observe(int route_idx, int status, int64_t dur_us);
void api_metrics_render(buf *b, const api_server *s);
int api_metrics_init(size_t nroutes);
/* Publishes a new job-queue snapshot (the JSON text of jq_stats, taken at
 * at_us) for /metrics.  Called by the health thread about once a second; the
 * text is rendered here, off the event loop, and swapped in under a mutex
 * that /metrics holds only to copy it.  0, or -1 if the JSON is not a stats
 * object or memory ran out (the previous snapshot stays). */
int api_metrics_set_queue(const char *stats_json, int64_t at_us);

/* match.c: matches a request path against a route pattern ("/v1/x/{id}",
 * "/ui/{*}").  On a match fills pv[0..*npv) with the decoded parameters
 * (malloc'd; the caller frees) and returns true.  A parameter never matches an
 * empty segment; "{*}" matches the rest (possibly empty).  Pure. */
bool api_match_path(const char *pattern, const char *path, char *pv[API_MAX_PARAMS], int *npv);

/* base64url cursors */
char *api_cursor_encode(const char *s); /* malloc'd */
char *api_cursor_decode(const char *c); /* malloc'd or NULL if invalid */

#endif
