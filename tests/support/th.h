/* th.h — integration-test harness: a real billing-api process and a real HTTP
 * client (prefix th_).
 *
 * DESIGN — Each test suite starts its own billing-api (the binary this build
 * made, ML_API_BIN) on a free loopback port against the PostgreSQL and Redis
 * that scripts/test started (BILLING_DATABASE_URL, BILLING_REDIS_URL), so a
 * suite may restart or signal its server freely.  Requests go through libcurl;
 * replies are captured whole (status, headers, body, parsed JSON).  Test data
 * is made unique with random suffixes, so suites never collide.
 */
#ifndef ML_TH_H
#define ML_TH_H
#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include <libpq-fe.h>

typedef struct th_server {
    pid_t pid;
    int port;
    char base[64];      /* "http://127.0.0.1:PORT" */
    char log_path[256]; /* server stderr */
} th_server;

/* Starts billing-api with the test environment plus extra "K=V" entries
 * (NULL-terminated, may be NULL); waits for /healthz.  Aborts the test on
 * failure. */
th_server *th_start(const char *const *extra_env);
/* SIGTERM and wait; returns the exit status (0 = clean) or -1. */
int th_stop(th_server *s);
/* Sends sig without waiting. */
void th_signal(th_server *s, int sig);

typedef struct th_resp {
    long status;
    char *headers; /* raw header block */
    char *body;
    size_t body_len;
    json_t *json;   /* NULL unless the body parsed as JSON */
    double seconds; /* total time */
} th_resp;

/* method, path (appended to the server base), NULL-terminated extra header
 * lines ("Authorization: Bearer x"), body (NULL = none).  A JSON content type
 * is added when body is set and no Content-Type header is given. */
th_resp th_req(const th_server *s, const char *method, const char *path, const char *const *headers,
               const char *body);
/* Same with a Bearer token (may be NULL). */
th_resp th_auth(const th_server *s, const char *token, const char *method, const char *path,
                const char *body);
void th_resp_free(th_resp *r);
/* A libcurl write callback that collects what it is given into a th_body
 * (userdata): p grows with each call and stays NUL-terminated. */
typedef struct th_body {
    char *p;
    size_t n;
} th_body;
size_t th_curl_collect(char *ptr, size_t size, size_t nmemb, void *ud);
/* Value of header name (case-insensitive) in r, copied into out; false if absent. */
bool th_header(const th_resp *r, const char *name, char *out, size_t cap);
/* json path helper: th_str(r.json, "user.email") */
const char *th_str(const json_t *j, const char *path);
json_t *th_get(const json_t *j, const char *path);
/* The error.code of an error reply, or "". */
const char *th_err_code(const th_resp *r);
/* True if error.details has an entry for field. */
bool th_has_field_error(const th_resp *r, const char *field);

/* Signs up a new organization with a unique email; fills token (>= 64 bytes),
 * org slug (>= 64) and email (>= 128), any may be NULL.  Password is
 * TH_PASSWORD. */
#define TH_PASSWORD "correct horse battery"
void th_signup(const th_server *s, char *token, char *slug, char *email);
/* Creates a user with role in the org of owner_token and logs in; token out. */
void th_user_with_role(const th_server *s, const char *owner_token, const char *role, char *token);
/* Unique suffix for names. */
const char *th_unique(char buf[32]);

/* Path of the billing-api binary under test. */
const char *th_api_bin(void);
/* Path of the billing-worker binary under test. */
const char *th_worker_bin(void);
/* Number of lines in file path containing every one of the NULL-terminated needles. */
int th_count_lines(const char *path, const char *const *needles);

/* A direct libpq connection to the test database (for locks, checks). */
PGconn *th_pg(void);
/* PQexecParams with text parameters; the test fails (naming the statement
 * and PostgreSQL's message) unless it succeeded.  The caller PQclears. */
PGresult *th_pgq(PGconn *c, const char *sql, int n, const char *const *params);
/* TH_Q(conn, sql, p1, p2, ...) */
#define TH_Q(c, sql, ...)                                                                          \
    th_pgq((c), (sql), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),        \
           (const char *const[]){__VA_ARGS__})
/* Runs scripts/svc (ML_SVC) with args, e.g. th_svc("redis stop"); returns exit code. */
int th_svc(const char *args);

#endif
