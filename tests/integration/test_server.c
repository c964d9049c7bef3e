/* test_server.c — the server's promises: loops never wait on PostgreSQL, a
 * client leaving mid-request is harmless, readiness follows PostgreSQL and
 * Redis, SIGTERM finishes in-flight requests, request ids, /metrics.
 *
 * "Slow queries" are made real: the test takes an ACCESS EXCLUSIVE lock on
 * customers from its own connection, so every GET /v1/customers waits in
 * PostgreSQL until the test commits.
 */
#include "fmacros.h"
#include "th.h"
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void msleep(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static PGconn *lock_customers(void) {
    PGconn *c = th_pg();
    PGresult *r = PQexec(c, "BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    return c;
}

static void unlock(PGconn *c) {
    PGresult *r = PQexec(c, "COMMIT");
    PQclear(r);
    PQfinish(c);
}

typedef struct slow_call {
    const th_server *srv;
    const char *token;
    atomic_long status;
    atomic_bool done;
    pthread_t th;
} slow_call;

static void *slow_main(void *arg) {
    slow_call *c = arg;
    th_resp r = th_auth(c->srv, c->token, "GET", "/v1/customers", NULL);
    atomic_store(&c->status, r.status);
    th_resp_free(&r);
    atomic_store(&c->done, true);
    return NULL;
}

Test(server, healthz_answers_while_every_db_thread_waits_on_postgres, .timeout = 120) {
    static const char *const env[] = {"BILLING_DB_THREADS=2", "BILLING_API_THREADS=1", NULL};
    th_server *srv = th_start(env);
    char token[64];
    th_signup(srv, token, NULL, NULL);
    PGconn *lock = lock_customers();
    enum { N = 4 }; /* more than the database threads: some also queue */
    slow_call calls[N];
    for (int i = 0; i < N; i++) {
        calls[i].srv = srv;
        calls[i].token = token;
        atomic_init(&calls[i].status, 0);
        atomic_init(&calls[i].done, false);
        cr_assert_eq(pthread_create(&calls[i].th, NULL, slow_main, &calls[i]), 0);
    }
    msleep(500);
    /* every database thread is now stuck behind the lock */
    for (int k = 0; k < 20; k++) {
        th_resp r = th_req(srv, "GET", "/healthz", NULL, NULL);
        cr_expect_eq(r.status, 200);
        cr_expect_lt(r.seconds, 2.0, "healthz took %.3f s while DB threads were busy", r.seconds);
        th_resp_free(&r);
    }
    th_resp m = th_req(srv, "GET", "/metrics", NULL, NULL);
    cr_expect(strstr(m.body, "meterline_db_pool_in_use 2") != NULL,
              "both database threads are busy: %s",
              strstr(m.body, "db_pool") ? strstr(m.body, "db_pool") : "");
    th_resp_free(&m);
    for (int i = 0; i < N; i++)
        cr_expect(!atomic_load(&calls[i].done), "request %d finished while the table was locked",
                  i);
    unlock(lock);
    for (int i = 0; i < N; i++) {
        pthread_join(calls[i].th, NULL);
        cr_expect_eq(atomic_load(&calls[i].status), 200, "held request %d", i);
    }
    cr_expect_eq(th_stop(srv), 0);
}

/* Sends a request on a raw socket and closes it without reading. */
static void send_and_hang_up(const th_server *srv, const char *token) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)srv->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /v1/customers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\n\r\n",
                     token);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    msleep(50);
    close(fd);
}

Test(server, client_that_leaves_while_waiting_on_postgres_is_harmless, .timeout = 120) {
    th_server *srv = th_start(NULL);
    char token[64];
    th_signup(srv, token, NULL, NULL);
    PGconn *lock = lock_customers();
    for (int i = 0; i < 12; i++) send_and_hang_up(srv, token);
    msleep(300);
    unlock(lock);
    msleep(500);
    /* still serving, database threads still working */
    th_resp r = th_auth(srv, token, "GET", "/v1/customers", NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    /* exit 0 under ASan/LSan: nothing leaked, nothing touched after free */
    char log_path[256];
    snprintf(log_path, sizeof log_path, "%s", srv->log_path);
    cr_expect_eq(th_stop(srv), 0, "see %s for sanitizer reports", log_path);
    /* the server noticed every departure (and skipped work not yet started) */
    FILE *f = fopen(log_path, "r");
    cr_assert(f);
    char line[2048];
    int gone = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "\"route\":\"customers_list\"") && strstr(line, "\"client\":\"gone\""))
            gone++;
    fclose(f);
    cr_expect_eq(gone, 12, "requests logged as gone: %d", gone);
}

static long wait_ready(const th_server *srv, long want, int max_ms, th_resp *last) {
    long st = 0;
    for (int t = 0; t < max_ms; t += 100) {
        th_resp r = th_req(srv, "GET", "/readyz", NULL, NULL);
        st = r.status;
        if (st == want) {
            if (last)
                *last = r;
            else
                th_resp_free(&r);
            return st;
        }
        th_resp_free(&r);
        msleep(100);
    }
    return st;
}

Test(server, readiness_follows_redis_and_postgres, .timeout = 180) {
    th_server *srv = th_start(NULL);
    char token[64];
    th_signup(srv, token, NULL, NULL);
    cr_assert_eq(wait_ready(srv, 200, 5000, NULL), 200);

    cr_assert_eq(th_svc("redis stop"), 0, "scripts/svc redis stop");
    th_resp r;
    cr_expect_eq(wait_ready(srv, 503, 8000, &r), 503, "readyz while Redis is down");
    if (r.status == 503) {
        char ra[16];
        cr_expect(th_header(&r, "Retry-After", ra, sizeof ra));
        cr_expect_str_eq(th_err_code(&r), "unavailable");
        cr_expect(th_has_field_error(&r, "redis"));
        cr_expect(!th_has_field_error(&r, "postgres"));
        th_resp_free(&r);
    }
    th_resp h = th_req(srv, "GET", "/healthz", NULL, NULL);
    cr_expect_eq(h.status, 200, "healthz is about the process, not its dependencies");
    th_resp_free(&h);
    cr_assert_eq(th_svc("redis start"), 0, "scripts/svc redis start");
    cr_expect_eq(wait_ready(srv, 200, 8000, NULL), 200, "readyz after Redis came back");

    cr_assert_eq(th_svc("pg stop"), 0, "scripts/svc pg stop");
    cr_expect_eq(wait_ready(srv, 503, 8000, &r), 503, "readyz while PostgreSQL is down");
    if (r.status == 503) {
        cr_expect(th_has_field_error(&r, "postgres"));
        th_resp_free(&r);
    }
    th_resp me = th_auth(srv, token, "GET", "/v1/me", NULL);
    cr_expect_eq(me.status, 503, "a request needing PostgreSQL: %s", me.body);
    char ra[16];
    cr_expect(th_header(&me, "Retry-After", ra, sizeof ra));
    th_resp_free(&me);
    cr_assert_eq(th_svc("pg start"), 0, "scripts/svc pg start");
    cr_expect_eq(wait_ready(srv, 200, 10000, NULL), 200, "readyz after PostgreSQL came back");
    /* database threads reconnect on their own */
    long st = 0;
    for (int i = 0; i < 10 && st != 200; i++) {
        me = th_auth(srv, token, "GET", "/v1/me", NULL);
        st = me.status;
        th_resp_free(&me);
    }
    cr_expect_eq(st, 200, "requests work again after PostgreSQL restarted");
    cr_expect_eq(th_stop(srv), 0);
}

Test(server, sigterm_finishes_in_flight_requests_then_exits_0, .timeout = 120) {
    th_server *srv = th_start(NULL);
    char token[64];
    th_signup(srv, token, NULL, NULL);
    PGconn *lock = lock_customers();
    slow_call c = {.srv = srv, .token = token};
    atomic_init(&c.status, 0);
    atomic_init(&c.done, false);
    cr_assert_eq(pthread_create(&c.th, NULL, slow_main, &c), 0);
    msleep(300);
    th_signal(srv, SIGTERM);
    msleep(300);
    cr_expect(!atomic_load(&c.done), "the in-flight request is still waiting");
    /* no new connections are accepted while draining */
    th_resp r = th_req(srv, "GET", "/healthz", NULL, NULL);
    cr_expect(r.status == 0 || r.status == 503, "new request during drain got %ld", r.status);
    th_resp_free(&r);
    unlock(lock);
    pthread_join(c.th, NULL);
    cr_expect_eq(atomic_load(&c.status), 200, "the in-flight request was answered");
    cr_expect_eq(th_stop(srv), 0, "clean exit after draining");
}

Test(server, request_ids_metrics_openapi_and_ui, .timeout = 60) {
    th_server *srv = th_start(NULL);
    const char *h[] = {"X-Request-Id: trace-abc.123", NULL};
    th_resp r = th_req(srv, "GET", "/healthz", h, NULL);
    char id[80];
    cr_assert(th_header(&r, "X-Request-Id", id, sizeof id));
    cr_expect_str_eq(id, "trace-abc.123", "a client's request id is kept");
    th_resp_free(&r);
    const char *bad[] = {"X-Request-Id: has spaces and \"quotes\"", NULL};
    r = th_req(srv, "GET", "/nope", bad, NULL);
    cr_expect_eq(r.status, 404);
    cr_expect_str_eq(th_err_code(&r), "not_found");
    cr_assert(th_header(&r, "X-Request-Id", id, sizeof id));
    cr_expect_eq(strlen(id), 32, "an unusable id is replaced by a generated one: %s", id);
    th_resp_free(&r);

    /* healthz was called twice: th_start's readiness probe and ours */
    r = th_req(srv, "GET", "/metrics", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_expect(strstr(r.body, "meterline_http_requests_total{route=\"healthz\",code=\"200\"} 2"),
              "%s", r.body);
    cr_expect(strstr(r.body, "meterline_http_requests_total{route=\"unmatched\",code=\"404\"} 1"));
    cr_expect(strstr(
        r.body, "meterline_http_request_duration_seconds_bucket{route=\"healthz\",le=\"+Inf\"} 2"));
    cr_expect(strstr(r.body, "meterline_db_pool_size "));
    th_resp_free(&r);

    r = th_req(srv, "GET", "/v1/openapi.json", NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(th_str(r.json, "openapi"), "3.1.0");
    th_resp_free(&r);
    r = th_req(srv, "GET", "/", NULL, NULL);
    cr_expect_eq(r.status, 200);
    char ct[64];
    cr_expect(th_header(&r, "Content-Type", ct, sizeof ct) && strstr(ct, "text/html"));
    th_resp_free(&r);

    /* the request shows up in the JSON-lines log with its id */
    char log_path[256];
    snprintf(log_path, sizeof log_path, "%s", srv->log_path);
    cr_expect_eq(th_stop(srv), 0);
    FILE *f = fopen(log_path, "r");
    cr_assert(f);
    char line[2048];
    bool seen = false;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "\"request_id\":\"trace-abc.123\"") && strstr(line, "\"status\":200") &&
            line[0] == '{')
            seen = true;
    fclose(f);
    cr_expect(seen, "a JSON log line carries the request id");
}

Test(server, migrate_is_idempotent, .timeout = 60) {
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "%s migrate 2>&1", th_api_bin());
    for (int run = 0; run < 2; run++) {
        FILE *p = popen(cmd, "r");
        cr_assert(p);
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        int st = pclose(p);
        cr_expect_eq(st, 0, "migrate run %d: %s", run, out);
        cr_expect(strstr(out, "\"msg\":\"database is up to date\",\"applied\":0") != NULL,
                  "the test database is already migrated, so nothing is applied: %s", out);
    }
}
