/* server.c — the HTTP server: event-loop threads, database threads, replies.
 *
 * DESIGN — One listening socket, dup'ed into BILLING_API_THREADS event loops
 * (one event_base + evhttp each; the kernel wakes one accept at a time).  A
 * loop thread parses a request into an api_req (api.h), matches the route
 * table, enforces body size and content type, parses JSON, then either runs
 * an RT_INLINE handler on the spot or pushes the request onto the database
 * queue.  BILLING_DB_THREADS database threads each own one PostgreSQL and one
 * Redis connection and a job-queue client (r->jq, on a Redis connection of
 * its own); they authorize, run the handler and push the finished request
 * onto its loop's completion list, waking the loop with event_active
 * (libevent is built thread-aware: evthread_use_pthreads).  The loop sends the
 * reply.  Nothing in a loop thread waits on PostgreSQL or Redis (loop 0
 * also runs the usage batcher's asynchronous Redis connection, ingest.h).
 *
 * A client may close its connection while its request waits.  libevent 2.1
 * stops reading a connection while its request is being handled, so it would
 * not notice; we watch the socket ourselves (one-shot EV_READ + MSG_PEEK):
 * end-of-file or an error means the client left, and we free the evhttp
 * connection (and with it the evhttp request) on the spot.  The connection's
 * close callback covers closes libevent sees itself.  Either way the request
 * is marked gone and its evhttp pointer forgotten on the loop thread; a
 * database thread skips a gone request that has not started, and the
 * completion path drops its reply.  Both are cleared before a reply is sent,
 * because the connection may carry later keep-alive requests.
 *
 * RT_FAST routes (POST /v1/usage) first run on the loop thread with
 * credentials from the auth cache and r->db == NULL: the handler answers,
 * asks for a database thread (api_defer_db), or hands the request on
 * (api_pending; the usage batcher answers it with api_complete).  A pending
 * request completes when both its taker and the thread that ran the handler
 * let go of it (r->hold); when the last of them is r's own loop thread, the
 * reply is sent right there, else r goes through the completion list.  A
 * body of the common flat shapes (one event, or a batch of them) skips
 * jansson (uin_fast.h, r->json NULL, a batch kept in r->fast_batch).
 * A POST with an Idempotency-Key always takes the database thread, where
 * api_idem_begin / api_idem_end wrap the handler.
 *
 * Request bodies reach evhttp through upload.c's per-connection filter,
 * which streams RT_UPLOAD bodies to spool files (r->upload) and turns a
 * body over its route's limit into a flagged empty request: our JSON 413.
 *
 * Health: a health thread checks PostgreSQL and Redis every 500 ms with its
 * own connections (and deletes expired sessions at start and every 10
 * minutes); /readyz reads the result without blocking.  The same
 * thread refreshes the job-queue snapshot for /metrics (jq_stats on its own
 * jq client) about once a second, and only when Redis has just answered a
 * PING, so an outage does not stall the health checks (a Redis that accepts
 * and then hangs can still hold the thread up to jq's 5 s timeout).  /metrics
 * renders the last snapshot, with its age, and never waits on Redis.
 *
 * Shutdown (SIGTERM/SIGINT, caught by sigwait in the main thread): stop
 * accepting, wait until every in-flight request has been answered (bounded by
 * BILLING_SHUTDOWN_GRACE_S), give the loops a moment to flush the last
 * replies, then stop the loops and threads.  (libevent 2.1 has no reliable
 * "reply fully written" signal: on_complete and the close callback can both
 * fire or neither, so the counter drops when a reply is handed to evhttp.)
 */
#include "fmacros.h"
#include "api.h"
#include "server.h"
#include "upload.h"
#include "stream.h"
#include "ingest.h"
#include "uin_fast.h"
#include "repo.h"
#include "log.h"
#include "rnd.h"
#include "ts.h"
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct api_loop {
    api_server *srv;
    pthread_t th;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *done_ev; /* activated by database threads */
    struct event *stop_ev; /* activated by main: stop accepting */
    pthread_mutex_t mu;
    api_req *done_head, *done_tail;
    upl_loop *upl;      /* upload.c: the connection filter's per-loop state */
    api_ingest *ingest; /* ingest.c: the usage batcher (one, on loop 0) */
};

struct api_server {
    const cfg *cfg;
    int lfd;
    int nloops;
    api_loop *loops;
    int ndb;
    pthread_t *dbth;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    api_req *qhead, *qtail;
    bool qstop;
    api_ingest *ingest; /* the usage batcher; its Redis connection is loop 0's */
    atomic_int inflight;
    atomic_int db_busy;
    atomic_bool stopping;
    api_health health;
    pthread_t health_th;
    pthread_mutex_t hmu;
    pthread_cond_t hcv;
    bool hstop;
};

const api_health *api_server_health(const api_server *s) { return &s->health; }
int api_server_db_busy(const api_server *s) { return atomic_load(&s->db_busy); }
int api_server_db_threads(const api_server *s) { return s->ndb; }
struct event_base *api_loop_base(api_loop *l) {
    return l->base;
}
api_ingest *api_loop_ingest(api_loop *l) { return l->ingest; }

/* The loop this thread runs (NULL on other threads). */
static _Thread_local api_loop *tl_loop;

/* ------------------------------------------------------------------------ */
/* request life cycle                                                        */

static void req_free(api_req *r) {
    if (!r) return;
    free(r->path);
    for (int i = 0; i < r->npv; i++) free(r->pv[i]);
    free(r->query);
    free(r->body);
    json_decref(r->json);
    if (r->fast_batch) {
        uin_batch_free(r->fast_batch);
        free(r->fast_batch);
    }
    free(r->h_authorization);
    free(r->h_cookie);
    free(r->h_origin);
    free(r->h_host);
    free(r->h_sec_fetch_site);
    free(r->h_user_agent);
    free(r->h_content_type);
    free(r->h_referer);
    free(r->h_accept);
    api_upload_free(r->upload); /* deletes a spool the handler did not keep */
    free(r->h_idem_key);
    free(r->h_if_none_match);
    if (r->file_set) close(r->file_fd);
    if (r->again_ev) event_free(r->again_ev);
    for (int i = 0; i < r->nh; i++) {
        free(r->hk[i]);
        free(r->hv[i]);
    }
    buf_free(&r->out);
    if (r->stream) api_stream_discard(r); /* shutdown: its loop is gone */
    free(r);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg) {
    ML_UNUSED(evcon);
    api_req *r = arg;
    r->ev = NULL; /* libevent frees it right after this callback */
    atomic_store(&r->gone, true);
}

/* The socket of a waiting request became readable: EOF/error = client left;
 * data = a pipelined request (leave it to evhttp; stop watching). */
static void on_peer_readable(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(what);
    api_req *r = arg;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return; /* one-shot: no longer watched */
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (event_add(r->watch, NULL) != 0) log_msg(LOG_WARN, "cannot re-arm peer watch");
        return;
    }
    struct evhttp_request *ev = r->ev;
    r->ev = NULL;
    atomic_store(&r->gone, true);
    struct evhttp_connection *evcon = ev ? evhttp_request_get_connection(ev) : NULL;
    if (evcon) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        evhttp_connection_free(evcon); /* frees ev too */
    }
}

static void watch_peer(api_req *r, struct evhttp_connection *evcon) {
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0) return;
    r->watch = event_new(r->loop->base, fd, EV_READ, on_peer_readable, r);
    if (r->watch && event_add(r->watch, NULL) != 0) {
        event_free(r->watch);
        r->watch = NULL;
    }
}

static void log_request(const api_req *r, int64_t dur_us, bool sent) {
    LOG_KV(r->status == 500   ? LOG_ERROR
           : r->status >= 500 ? LOG_WARN
                              : LOG_INFO,
           "request", LF_S("request_id", r->request_id), LF_S("method", r->method),
           LF_S("path", r->path ? r->path : ""),
           LF_S("route", r->route ? r->route->name : "unmatched"), LF_I("status", r->status),
           LF_I("dur_us", dur_us), LF_S("peer", r->peer), LF_I("org_id", r->who.org_id),
           LF_S("client", sent ? "ok" : "gone"));
}

static bool again_arm(api_req *r);

/* Sends r's reply on the loop thread and frees r (or, for a long poll that
 * is still waiting, parks it: again_arm). */
static void finish(api_req *r) {
    api_server *s = r->srv;
    if (r->status == 0) api_err(r, 500, "internal", "handler produced no reply");
    if (r->again_until_us && again_arm(r)) return;
    if (r->watch) {
        event_free(r->watch);
        r->watch = NULL;
    }
    int64_t dur = ts_now() - r->t0_us;
    api_metrics_observe(r->route_idx, r->status, dur);
    bool sent = false;
    int streamed = r->stream ? api_stream_finish(r) : 0; /* stream.c: end or abort */
    if (streamed && streamed != API_STREAM_NOT_STARTED) {
        sent = streamed == API_STREAM_SENT;
    } else if (r->ev) {
        struct evhttp_request *ev = r->ev;
        struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
        if (evcon) evhttp_connection_set_closecb(evcon, NULL, NULL);
        struct evkeyvalq *oh = evhttp_request_get_output_headers(ev);
        evhttp_add_header(oh, "X-Request-Id", r->request_id);
        if (r->status != 204 && r->status != 304)
            evhttp_add_header(oh, "Content-Type", r->ctype ? r->ctype : "application/json");
        /* files (PDF downloads, by ETag) may be kept by the client's own
         * cache and revalidated each time (If-None-Match → 304); nothing
         * else is stored */
        evhttp_add_header(oh, "Cache-Control",
                          r->file_set || r->status == 304 ? "private, no-cache" : "no-store");
        evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
        for (int i = 0; i < r->nh; i++) evhttp_add_header(oh, r->hk[i], r->hv[i]);
        if (atomic_load(&s->stopping)) evhttp_add_header(oh, "Connection", "close");
        struct evbuffer *b = evbuffer_new();
        if (b && r->file_set) {
            /* the evbuffer owns the fd from here, even when this fails */
            r->file_set = false;
            if (evbuffer_add_file(b, r->file_fd, 0, (ev_off_t)r->file_len) != 0) {
                evbuffer_free(b);
                b = NULL;
            }
        } else if (b && r->out.len && evbuffer_add(b, r->out.p, r->out.len) != 0) {
            evbuffer_free(b);
            b = NULL;
        }
        if (b) {
            evhttp_send_reply(ev, r->status, NULL, b);
            evbuffer_free(b);
        } else {
            evhttp_send_error(ev, 500, "out of memory");
        }
        sent = true;
    }
    atomic_fetch_sub(&s->inflight, 1);
    log_request(r, dur, sent);
    req_free(r);
}

static void on_done(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    api_loop *l = arg;
    pthread_mutex_lock(&l->mu);
    api_req *r = l->done_head;
    l->done_head = l->done_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (r) {
        api_req *n = r->next;
        finish(r);
        r = n;
    }
}

/* Any thread → r's loop thread. */
static void complete(api_req *r) {
    api_loop *l = r->loop;
    r->next = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->done_tail)
        l->done_tail->next = r;
    else
        l->done_head = r;
    l->done_tail = r;
    pthread_mutex_unlock(&l->mu);
    event_active(l->done_ev, 0, 0);
}

/* ------------------------------------------------------------------------ */
/* database threads                                                          */

typedef struct db_thread {
    api_server *s;
    int idx;
} db_thread;

static void run_handler(api_req *r) {
    if (!(r->route->flags & RT_PUBLIC) && api_authorize(r) != 0) return;
    int idem = api_idem_begin(r);
    if (idem == API_IDEM_REPLIED) return;
    r->route->fn(r);
    if (idem == API_IDEM_CLAIMED) api_idem_end(r);
}

/* A pending request completes when both its taker (api_complete) and the
 * thread that ran its handler (release) are done with it.  The last one on
 * r's own loop thread (the usage batcher, on_request) sends the reply on the
 * spot: no hand-off through the completion list. */
static void release(api_req *r) {
    if (atomic_fetch_sub(&r->hold, 1) != 1) return;
    if (tl_loop == r->loop)
        finish(r);
    else
        complete(r);
}

void api_complete(api_req *r) { release(r); }

void api_file(api_req *r, int status, const char *ctype, int fd, long long len) {
    if (r->file_set) close(r->file_fd);
    buf_free(&r->out);
    r->status = status;
    r->ctype = ctype;
    r->file_fd = fd;
    r->file_len = len;
    r->file_set = true;
}

static void *db_main(void *arg) {
    db_thread *t = arg;
    api_server *s = t->s;
    free(t);
    char err[256];
    db *d = db_open(s->cfg->database_url);
    rds *rd = rds_open(s->cfg->redis_url, 2000, err, sizeof err);
    if (!rd) LOG_KV(LOG_ERROR, "database thread: no Redis client", LF_S("error", err));
    jq *q = jq_open(s->cfg->redis_url, err, sizeof err);
    if (!q) LOG_KV(LOG_ERROR, "database thread: no job-queue client", LF_S("error", err));
    for (;;) {
        pthread_mutex_lock(&s->qmu);
        while (!s->qhead && !s->qstop) pthread_cond_wait(&s->qcv, &s->qmu);
        api_req *r = s->qhead;
        if (r) {
            s->qhead = r->next;
            if (!s->qhead) s->qtail = NULL;
        }
        pthread_mutex_unlock(&s->qmu);
        if (!r) break; /* stopping and queue drained */
        atomic_fetch_add(&s->db_busy, 1);
        if (atomic_load(&r->gone)) {
            r->status = 499; /* client closed request: skip the work */
        } else if (!d || !rd || !q) {
            api_err(r, 503, "unavailable", "server out of resources");
        } else {
            r->db = d;
            r->redis = rd;
            r->jq = q;
            run_handler(r);
            r->db = NULL;
            r->redis = NULL;
            r->jq = NULL;
        }
        atomic_fetch_sub(&s->db_busy, 1);
        if (r->pending)
            release(r); /* its taker calls api_complete too */
        else
            complete(r);
    }
    db_close(d);
    rds_close(rd);
    jq_close(q);
    return NULL;
}

static void enqueue_db(api_server *s, api_req *r) {
    r->next = NULL;
    pthread_mutex_lock(&s->qmu);
    if (s->qtail)
        s->qtail->next = r;
    else
        s->qhead = r;
    s->qtail = r;
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
}

/* ---- long polls (api_again) ---------------------------------------------
 * A handler that called api_again left a complete reply in r.  Instead of
 * sending it, finish() parks r here: a one-shot timer on r's loop holds it
 * (no database thread waits) and, when it fires, r goes back onto the
 * database queue with its reply cleared, so the handler runs again.  The
 * peer watch and close callback set up in on_request stay in place, so a
 * client that leaves is noticed (r->gone) and the next tick drops the
 * request; a stopping server sends the last reply at the next tick, so a
 * SIGTERM drain waits at most API_AGAIN_MS for a long poll. */
static void on_again(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    api_req *r = arg;
    if (atomic_load(&r->gone) || !r->ev || atomic_load(&r->srv->stopping)) {
        finish(r); /* the last run's reply (dropped if the client left) */
        return;
    }
    r->status = 0;
    r->ctype = NULL;
    buf_free(&r->out);
    for (int i = 0; i < r->nh; i++) {
        free(r->hk[i]);
        free(r->hv[i]);
    }
    r->nh = 0;
    r->again_runs++;
    enqueue_db(r->srv, r);
}

/* true: r is parked until the next run; false: send the reply now. */
static bool again_arm(api_req *r) {
    int64_t until = r->again_until_us;
    r->again_until_us = 0;
    if (r->stream || r->file_set || atomic_load(&r->gone) || !r->ev ||
        atomic_load(&r->srv->stopping))
        return false;
    int64_t left = until - ts_now();
    if (left <= 0) return false;
    if (left > API_AGAIN_MS * 1000LL) left = API_AGAIN_MS * 1000LL;
    if (!r->again_ev) r->again_ev = evtimer_new(r->loop->base, on_again, r);
    struct timeval tv = {(time_t)(left / 1000000), (suseconds_t)(left % 1000000)};
    return r->again_ev && evtimer_add(r->again_ev, &tv) == 0;
}

/* ------------------------------------------------------------------------ */
/* health thread                                                             */

#define QUEUE_SNAPSHOT_US 1000000               /* /metrics queue figures: about once a second */
#define SESSION_PURGE_US  (10 * 60 * 1000000LL) /* expired sessions deleted */

/* Takes a jq_stats snapshot for /metrics.  A failure keeps the previous one
 * (its age is exported) and is logged once per outage. */
static void refresh_queue_snapshot(jq *q, bool *failing) {
    char err[256], *json = NULL;
    int64_t at = ts_now();
    int rc = jq_stats(q, &json, err, sizeof err);
    if (rc == JQ_OK && api_metrics_set_queue(json, at) != 0) {
        rc = JQ_ERR;
        snprintf(err, sizeof err, "unusable stats reply");
    }
    free(json);
    if (rc != JQ_OK && !*failing) LOG_KV(LOG_WARN, "queue snapshot failed", LF_S("error", err));
    if (rc == JQ_OK && *failing) log_msg(LOG_INFO, "queue snapshot recovered");
    *failing = rc != JQ_OK;
}

static void *health_main(void *arg) {
    api_server *s = arg;
    char err[256];
    db *d = db_open(s->cfg->database_url);
    rds *rd = rds_open(s->cfg->redis_url, 1000, err, sizeof err);
    jq *q = jq_open(s->cfg->redis_url, err, sizeof err);
    if (!q) LOG_KV(LOG_ERROR, "health thread: no job-queue client", LF_S("error", err));
    int64_t next_snapshot = 0, next_purge = 0;
    bool snapshot_failing = false;
    pthread_mutex_lock(&s->hmu);
    while (!s->hstop) {
        pthread_mutex_unlock(&s->hmu);
        bool pg = false, rs = false;
        if (d) {
            db_err e;
            PGresult *res = DB_EXEC0(d, &e, "SELECT 1");
            pg = res != NULL;
            PQclear(res);
        }
        if (rd) rs = rds_ping(rd);
        if (pg != atomic_load(&s->health.pg_ok))
            LOG_KV(pg ? LOG_INFO : LOG_WARN, "postgres health", LF_S("state", pg ? "up" : "down"));
        if (rs != atomic_load(&s->health.redis_ok))
            LOG_KV(rs ? LOG_INFO : LOG_WARN, "redis health", LF_S("state", rs ? "up" : "down"));
        atomic_store(&s->health.pg_ok, pg);
        atomic_store(&s->health.redis_ok, rs);
        int64_t now = ts_now();
        if (pg && now >= next_purge) { /* at start, then every SESSION_PURGE_US */
            db_err e;
            long long n = repo_sessions_purge(d, &e);
            next_purge = now + SESSION_PURGE_US;
            if (n > 0) LOG_KV(LOG_INFO, "expired sessions purged", LF_I("sessions", n));
            if (n < 0) LOG_KV(LOG_WARN, "cannot purge expired sessions", LF_S("error", e.msg));
        }
        if (q && rs && now >= next_snapshot) {
            /* 50 ms of slack so a 500 ms tick that wakes a little early
             * still refreshes every second tick */
            next_snapshot = now + QUEUE_SNAPSHOT_US - 50000;
            refresh_queue_snapshot(q, &snapshot_failing);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->hmu);
        if (!s->hstop) pthread_cond_timedwait(&s->hcv, &s->hmu, &ts);
    }
    pthread_mutex_unlock(&s->hmu);
    db_close(d);
    rds_close(rd);
    jq_close(q);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* routing                                                                   */

/* The request headers kept in api_req: one pass over the headers instead of
 * an evhttp_find_header scan per name.  The first of a name counts, as with
 * evhttp_find_header.  off == SIZE_MAX: X-Request-Id, returned, not kept. */
static const struct {
    const char *name;
    size_t len;
    size_t off;
} k_req_headers[] = {
    {"Authorization", 13, offsetof(api_req, h_authorization)},
    {"Content-Type", 12, offsetof(api_req, h_content_type)},
    {"Host", 4, offsetof(api_req, h_host)},
    {"X-Request-Id", 12, SIZE_MAX},
    {"Idempotency-Key", 15, offsetof(api_req, h_idem_key)},
    {"Cookie", 6, offsetof(api_req, h_cookie)},
    {"Origin", 6, offsetof(api_req, h_origin)},
    {"Sec-Fetch-Site", 14, offsetof(api_req, h_sec_fetch_site)},
    {"User-Agent", 10, offsetof(api_req, h_user_agent)},
    {"Referer", 7, offsetof(api_req, h_referer)},
    {"Accept", 6, offsetof(api_req, h_accept)},
    {"If-None-Match", 13, offsetof(api_req, h_if_none_match)},
};

/* Copies the kept headers into r; returns X-Request-Id (borrowed) or NULL.
 * *oom is set when a copy failed. */
static const char *read_headers(api_req *r, const struct evkeyvalq *ih, bool *oom) {
    const char *rid = NULL;
    *oom = false;
    for (const struct evkeyval *h = ih->tqh_first; h; h = h->next.tqe_next) {
        size_t kl = strlen(h->key);
        for (size_t i = 0; i < ML_ARRAY_LEN(k_req_headers); i++) {
            if (k_req_headers[i].len != kl || strcasecmp(k_req_headers[i].name, h->key) != 0)
                continue;
            if (k_req_headers[i].off == SIZE_MAX) {
                if (!rid) rid = h->value;
            } else {
                char **f = (char **)(void *)((char *)r + k_req_headers[i].off);
                if (!*f && !(*f = strdup(h->value))) *oom = true;
            }
            break;
        }
    }
    return rid;
}

/* Returns the matching route index, or -1 (404) / -2 (405, allow filled). */
static int find_route(api_req *r, const char *path, char *allow, size_t allowlen) {
    allow[0] = '\0';
    bool path_seen = false;
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route *rt = &api_routes[i];
        api_req tmp;
        tmp.npv = 0;
        if (!api_match_path(rt->pattern, path, tmp.pv, &tmp.npv)) continue;
        if (strcmp(rt->method, r->method) == 0 ||
            (strcmp(r->method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0)) {
            for (int k = 0; k < tmp.npv; k++) r->pv[k] = tmp.pv[k];
            r->npv = tmp.npv;
            return (int)i;
        }
        for (int k = 0; k < tmp.npv; k++) free(tmp.pv[k]);
        size_t al = strlen(allow);
        if (!strstr(allow, rt->method))
            snprintf(allow + al, allowlen - al, "%s%s", al ? ", " : "", rt->method);
        path_seen = true;
    }
    return path_seen ? -2 : -1;
}

static const char *method_name(enum evhttp_cmd_type t) {
    switch (t) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

static bool valid_request_id(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

static bool is_json_type(const char *ct) {
    if (!ct) return false;
    size_t n = strcspn(ct, ";");
    while (n && ct[n - 1] == ' ') n--;
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* The handler will read this body without jansson (RT_FAST): one flat
 * event (read again there, which costs less than keeping it), or a batch of
 * them, kept in r->fast_batch. */
static bool fast_body(api_req *r) {
    uin_fast f;
    if (uin_fast_parse(r->body, r->body_len, r->t0_us, &f)) return true;
    uin_batch *b = malloc(sizeof *b);
    if (!b) return false; /* the full path says "out of memory" */
    if (!uin_fast_batch(r->body, r->body_len, r->t0_us, b)) {
        free(b);
        return false;
    }
    r->fast_batch = b;
    return true;
}

static void on_request(struct evhttp_request *ev, void *arg) {
    api_loop *l = arg;
    api_server *s = l->srv;
    api_req *r = calloc(1, sizeof *r);
    if (!r) {
        evhttp_send_error(ev, 503, "out of memory");
        return;
    }
    atomic_fetch_add(&s->inflight, 1);
    r->t0_us = ts_now();
    r->loop = l;
    r->srv = s;
    r->cfg = s->cfg;
    r->ev = ev;
    r->route_idx = (int)api_nroutes; /* "unmatched" */
    buf_init(&r->out);
    snprintf(r->method, sizeof r->method, "%s", method_name(evhttp_request_get_command(ev)));

    struct evkeyvalq *ih = evhttp_request_get_input_headers(ev);
    bool hoom;
    const char *rid = read_headers(r, ih, &hoom);
    if (rid && valid_request_id(rid))
        snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else
        rnd_hex16(r->request_id);

    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    if (evcon) {
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evcon, &addr, &port);
        if (addr) snprintf(r->peer, sizeof r->peer, "%s", addr);
    }

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    r->path = strdup(path && *path ? path : "/");
    if (query) r->query = strdup(query);
    r->upload = upl_take(l->upl, ev); /* a streamed or refused body (upload.c) */
    if (!r->h_idem_key && rid && valid_request_id(rid) && !(r->h_idem_key = strdup(rid)))
        hoom = true;
    if (!r->path || (query && !r->query) || hoom) {
        api_err(r, 503, "unavailable", "out of memory");
        finish(r);
        return;
    }

    char allow[128];
    int idx = find_route(r, r->path, allow, sizeof allow);
    if (idx == -1) {
        api_err(r, 404, "not_found", "no route for %s %s", r->method, r->path);
        finish(r);
        return;
    }
    if (idx == -2) {
        api_header(r, "Allow", allow);
        api_err(r, 405, "method_not_allowed", "%s is not allowed here (allowed: %s)", r->method,
                allow);
        finish(r);
        return;
    }
    r->route_idx = idx;
    r->route = &api_routes[idx];
    if (atomic_load(&s->stopping)) {
        api_header(r, "Retry-After", "1");
        api_err(r, 503, "unavailable", "server is shutting down");
        finish(r);
        return;
    }

    struct evbuffer *in = evhttp_request_get_input_buffer(ev);
    size_t blen = in ? evbuffer_get_length(in) : 0;
    long long maxb = r->route->max_body < 0 ? s->cfg->max_body : r->route->max_body;
    if (r->upload && r->upload->state == API_UPL_TOO_LARGE) {
        api_err(r, 413, "payload_too_large", "request body is %lld bytes; the limit here is %lld",
                r->upload->size, r->upload->limit);
        finish(r);
        return;
    }
    if (r->upload && r->upload->state == API_UPL_BAD_FRAMING) {
        api_err(r, 400, "bad_request", "%s", r->upload->error);
        finish(r);
        return;
    }
    if ((long long)blen > maxb) {
        api_err(r, 413, "payload_too_large", "request body is %zu bytes; the limit here is %lld",
                blen, maxb);
        finish(r);
        return;
    }
    if (r->route->flags & RT_JSON) {
        if (blen == 0) {
            api_err(r, 400, "bad_request", "a JSON object body is required");
            finish(r);
            return;
        }
        if (!is_json_type(r->h_content_type)) {
            api_err(r, 415, "unsupported_media_type",
                    "Content-Type must be application/json (got %s)",
                    r->h_content_type ? r->h_content_type : "none");
            finish(r);
            return;
        }
    }
    if (blen) {
        r->body = malloc(blen + 1);
        if (!r->body || evbuffer_remove(in, r->body, blen) != (int)blen) {
            api_err(r, 503, "unavailable", "cannot read body");
            finish(r);
            return;
        }
        r->body[blen] = '\0';
        r->body_len = blen;
    }
    /* RT_FAST (POST /v1/usage) without an Idempotency-Key: a body of the
     * common flat shapes is read without jansson (uin_fast.h).  Deciding
     * here keeps the order of the answers: a body that is not JSON is a 400
     * before credentials are looked at. */
    bool fast = (r->route->flags & RT_FAST) && !(r->h_idem_key && !strcmp(r->method, "POST"));
    if ((r->route->flags & RT_JSON) && !(fast && fast_body(r))) {
        char err[256];
        r->json = jx_loadb(r->body, r->body_len, err, sizeof err);
        if (!r->json) {
            api_err(r, 400, "bad_request", "invalid JSON: %s", err);
            finish(r);
            return;
        }
        if (!json_is_object(r->json)) {
            api_err(r, 400, "bad_request", "the body must be a JSON object");
            finish(r);
            return;
        }
    }

    if (r->route->flags & RT_INLINE) {
        r->route->fn(r);
        finish(r);
        return;
    }
    if (fast) {
        /* Credentials and lookups from caches, no waiting: the handler
         * replies, hands r on (api_pending: its taker completes it), or asks
         * for a database thread (api_defer_db). */
        int a = api_authorize_fast(r);
        if (a < 0) {
            finish(r);
            return;
        }
        if (a > 0) {
            r->route->fn(r);
            if (r->pending) {
                /* Handed on for a moment (the usage batcher answers within
                 * one Redis round trip): the close callback suffices; no
                 * peer watch, which would cost two epoll_ctl calls per
                 * request on the hottest route. */
                if (evcon) evhttp_connection_set_closecb(evcon, on_conn_close, r);
                release(r);
                return;
            }
            if (!r->defer_db) {
                finish(r);
                return;
            }
            r->defer_db = false;
        }
    }
    if (evcon) {
        evhttp_connection_set_closecb(evcon, on_conn_close, r);
        watch_peer(r, evcon);
    }
    enqueue_db(s, r);
}

/* ------------------------------------------------------------------------ */
/* loops                                                                     */

static void on_stop(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    api_loop *l = arg;
    if (l->bound) {
        evhttp_del_accept_socket(l->http, l->bound);
        l->bound = NULL;
    }
}

static void *loop_main(void *arg) {
    api_loop *l = arg;
    tl_loop = l;
    event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int listen_socket(const char *hostport, char *err, size_t errlen) {
    char host[128];
    const char *colon = strrchr(hostport, ':');
    if (!colon) {
        snprintf(err, errlen, "BILLING_LISTEN must be host:port (got %s)", hostport);
        return -1;
    }
    size_t hl = (size_t)(colon - hostport);
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 1 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (rc) {
        snprintf(err, errlen, "BILLING_LISTEN %s: %s", hostport, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024) ||
        evutil_make_socket_nonblocking(fd)) {
        snprintf(err, errlen, "listen on %s: %s", hostport, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int loop_init(api_server *s, api_loop *l, char *err, size_t errlen) {
    l->srv = s;
    pthread_mutex_init(&l->mu, NULL);
    l->base = event_base_new();
    l->http = l->base ? evhttp_new(l->base) : NULL;
    if (!l->http) {
        snprintf(err, errlen, "cannot create event loop");
        return -1;
    }
    l->done_ev = event_new(l->base, -1, 0, on_done, l);
    l->stop_ev = event_new(l->base, -1, 0, on_stop, l);
    if (!l->done_ev || !l->stop_ev) {
        snprintf(err, errlen, "cannot create events");
        return -1;
    }
    evhttp_set_gencb(l->http, on_request, l);
    l->upl = upl_loop_new(l->http, s->cfg, err, errlen); /* streams bodies (upload.c) */
    if (!l->upl) return -1;
    if (l == &s->loops[0]) { /* the usage batcher lives on loop 0 (ingest.c) */
        s->ingest = api_ingest_new(l->base, s->cfg, err, errlen);
        if (!s->ingest) return -1;
    }
    l->ingest = s->ingest;
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_max_headers_size(l->http, 64 * 1024);
    /* upload.c refuses (JSON 413) or streams every body over its route's
     * limit before evhttp sees it; evhttp's own limit (an HTML 413) only
     * needs to let the largest in-memory route limit through */
    long long evmax = s->cfg->max_body;
    for (size_t i = 0; i < api_nroutes; i++)
        if (api_routes[i].max_body > evmax) evmax = api_routes[i].max_body;
    evhttp_set_max_body_size(l->http, (ev_ssize_t)evmax);
    evhttp_set_timeout(l->http, 120);
    int fd = dup(s->lfd);
    if (fd < 0 || evutil_make_socket_closeonexec(fd)) {
        snprintf(err, errlen, "dup: %s", strerror(errno));
        return -1;
    }
    l->bound = evhttp_accept_socket_with_handle(l->http, fd);
    if (!l->bound) {
        close(fd);
        snprintf(err, errlen, "cannot accept on the listening socket");
        return -1;
    }
    return 0;
}

static void loop_destroy(api_loop *l) {
    if (l == &l->srv->loops[0]) { /* its events live on this base; normally
                                     freed already (api_server_run) */
        api_ingest_free(l->srv->ingest);
        l->srv->ingest = NULL;
    }
    l->ingest = NULL;
    if (l->http) evhttp_free(l->http);
    if (l->done_ev) event_free(l->done_ev);
    if (l->stop_ev) event_free(l->stop_ev);
    /* after the base: freeing evhttp's connections finalizes their filters
     * (upload.c conn_free, which uses l->upl) only when the base runs its
     * finalizers */
    if (l->base) event_base_free(l->base);
    upl_loop_free(l->upl);
    pthread_mutex_destroy(&l->mu);
}

int api_server_run(const cfg *c) {
    char err[512];
    if (evthread_use_pthreads() != 0) {
        log_msg(LOG_ERROR, "libevent without thread support");
        return 1;
    }
    if (api_metrics_init(api_nroutes)) {
        log_msg(LOG_ERROR, "out of memory");
        return 1;
    }
    /* Block the signals we handle in every thread we create; main sigwaits. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    api_server *s = calloc(1, sizeof *s);
    if (!s) return 1;
    s->cfg = c;
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    pthread_mutex_init(&s->hmu, NULL);
    pthread_cond_init(&s->hcv, NULL);
    int rc = 1;
    s->lfd = listen_socket(c->listen, err, sizeof err);
    if (s->lfd < 0) {
        LOG_KV(LOG_ERROR, "cannot listen", LF_S("error", err));
        goto out_free;
    }
    int swept = upl_sweep(c->storage_dir, UPL_SWEEP_AGE_S);
    if (swept > 0) LOG_KV(LOG_INFO, "removed stale upload spools", LF_I("files", swept));
    s->nloops = c->api_threads;
    s->ndb = c->db_threads;
    s->loops = calloc((size_t)s->nloops, sizeof *s->loops);
    s->dbth = calloc((size_t)s->ndb, sizeof *s->dbth);
    if (!s->loops || !s->dbth) goto out_close;
    int nl = 0, nd = 0;
    bool health = false;
    for (; nl < s->nloops; nl++) {
        if (loop_init(s, &s->loops[nl], err, sizeof err)) {
            LOG_KV(LOG_ERROR, "cannot start", LF_S("error", err));
            loop_destroy(&s->loops[nl]);
            goto out_stop;
        }
        if (pthread_create(&s->loops[nl].th, NULL, loop_main, &s->loops[nl])) {
            loop_destroy(&s->loops[nl]);
            goto out_stop;
        }
    }
    for (; nd < s->ndb; nd++) {
        db_thread *t = malloc(sizeof *t);
        if (!t) goto out_stop;
        t->s = s;
        t->idx = nd;
        if (pthread_create(&s->dbth[nd], NULL, db_main, t)) {
            free(t);
            goto out_stop;
        }
    }
    if (pthread_create(&s->health_th, NULL, health_main, s) == 0) health = true;
    LOG_KV(LOG_INFO, "listening", LF_S("listen", c->listen), LF_I("api_threads", s->nloops),
           LF_I("db_threads", s->ndb), LF_I("pid", getpid()));

    int sig = 0;
    sigwait(&set, &sig);
    LOG_KV(LOG_INFO, "shutting down", LF_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
           LF_I("in_flight", atomic_load(&s->inflight)));
    rc = 0;

out_stop:
    atomic_store(&s->stopping, true);
    for (int i = 0; i < nl; i++) event_active(s->loops[i].stop_ev, 0, 0);
    /* the loops close their dups; with ours closed too, connects are refused */
    if (s->lfd >= 0) close(s->lfd);
    s->lfd = -1;
    {
        int64_t deadline = ts_now() + (int64_t)c->shutdown_grace_s * 1000000;
        while (atomic_load(&s->inflight) > 0 && ts_now() < deadline) {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (atomic_load(&s->inflight) > 0)
            LOG_KV(LOG_WARN, "grace period over", LF_I("in_flight", atomic_load(&s->inflight)));
        struct timespec flush = {0, 250 * 1000000L};
        nanosleep(&flush, NULL);
    }
    pthread_mutex_lock(&s->qmu);
    s->qstop = true;
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    for (int i = 0; i < nd; i++) pthread_join(s->dbth[i], NULL);
    for (int i = 0; i < nl; i++) {
        event_base_loopexit(s->loops[i].base, NULL);
        pthread_join(s->loops[i].th, NULL);
    }
    /* Requests completed after the loops stopped (grace over; the usage
     * batcher answers what it still holds with 503): free them. */
    api_ingest_free(s->ingest);
    s->ingest = NULL;
    for (int i = 0; i < nl; i++) {
        api_req *r = s->loops[i].done_head;
        while (r) {
            api_req *n = r->next;
            if (r->watch) event_free(r->watch);
            req_free(r);
            r = n;
        }
        loop_destroy(&s->loops[i]);
    }
    if (health) {
        pthread_mutex_lock(&s->hmu);
        s->hstop = true;
        pthread_cond_broadcast(&s->hcv);
        pthread_mutex_unlock(&s->hmu);
        pthread_join(s->health_th, NULL);
    }
    LOG_KV(LOG_INFO, "stopped", LF_I("pid", getpid()));
out_close:
    if (s->lfd >= 0) close(s->lfd);
    free(s->loops);
    free(s->dbth);
out_free:
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    pthread_mutex_destroy(&s->hmu);
    pthread_cond_destroy(&s->hcv);
    free(s);
    libevent_global_shutdown();
    return rc;
}
