/* ingest.c — the usage batcher.  See ingest.h.
 *
 * DESIGN (how) — The batcher holds the waiting items (one per request;
 * shared with every loop thread under mu), at most one batch in flight (one
 * EVALSHA), and the batches whose answer came back.  Every change of state
 * that may let work proceed (a new item, a reply, a finished handshake, a
 * lost connection) only records it and activates kick_ev; on_kick then sends
 * the next batch (written at once with redisAsyncHandleWrite, so Redis starts
 * on it while we reply) and answers the finished ones.  Nothing is sent or
 * answered from inside a hiredis callback, and hiredis callbacks never see
 * our structures half-changed.
 *
 * A NULL reply means hiredis is tearing the context down itself (I/O error,
 * Redis gone): we forget the context and never free it.  We free it
 * (redisAsyncFree) only from our own events: the timeout, a failed
 * handshake, api_ingest_free.  A context we have forgotten may still call
 * back (its pending replies, NULL): g->ac != ac tells those apart.
 */
#include "fmacros.h"
#include "ingest.h"
#include "log.h"
#include "ts.h"
#include <event2/event.h>
#include <hiredis/async.h>
#include <pthread.h>
#include <stdlib.h>

#define INGEST_JOB_EVENTS 10000
#define INGEST_JOB_BYTES  (4u << 20)
#define INGEST_MAX_QUEUED 200000 /* events waiting or in flight */
#define INGEST_TIMEOUT_MS 5000   /* a handshake or an enqueue without answer */

typedef struct item {
    api_req *r;
    long long org;
    char *rows;
    size_t len, n;
    int64_t min_us, max_us;
    int job; /* index into its batch's jobs */
    struct item *next;
} item;

/* One EVALSHA: the items it answers and the jobs it enqueues. */
typedef struct batch {
    api_ingest *g;
    item *items;
    jq_new *jobs;
    char **payloads;
    int njobs;
    char *cmd; /* RESP; kept for a resend after NOSCRIPT */
    size_t cmdlen;
    bool resent;
    int rc;          /* JQ_OK or JQ_ERR once answered */
    const char *why; /* of a JQ_ERR, for the client */
    struct batch *next;
} batch;

enum { ST_DOWN, ST_CONNECTING, ST_READY };

struct api_ingest {
    /* ---- any loop thread, under mu ---- */
    pthread_mutex_t mu;
    item *head, *tail; /* waiting for the next batch */
    size_t queued;     /* events waiting or in flight */
    bool busy;         /* a batch is in flight: its answer kicks */
    /* ---- the owner loop's thread ---- */
    struct event_base *base;
    rds_url u;
    char *script; /* the enqueue script as SCRIPT LOAD takes it */
    size_t script_len;
    char sha[41];
    redisAsyncContext *ac;
    int state;
    int hs_left; /* handshake replies still due */
    bool hs_failed;
    batch *inflight;
    batch *done_head, *done_tail; /* answered by Redis (or failed), not yet replied */
    struct event *kick_ev;
    struct event *tmo_ev;
};

/* ---- payload -------------------------------------------------------------
 * {"v":1,"min":"<ts>","max":"<ts>","rows":"<rows>"} written directly: the
 * format worker/ingest.c reads, as json_pack + json_dumps wrote it. */

static bool payload_begin(buf *b, size_t rows_len, int64_t min_us, int64_t max_us) {
    char a[TS_FMT_MAX], z[TS_FMT_MAX];
    if (ts_format(min_us, a, sizeof a) < 0 || ts_format(max_us, z, sizeof z) < 0) return false;
    /* rows are mostly plain text; tabs and newlines double */
    buf_reserve(b, rows_len + rows_len / 8 + 2 * TS_FMT_MAX + 48);
    buf_adds(b, "{\"v\":1,\"min\":\"");
    buf_add_json_escaped(b, a, strlen(a));
    buf_adds(b, "\",\"max\":\"");
    buf_add_json_escaped(b, z, strlen(z));
    buf_adds(b, "\",\"rows\":\"");
    return true;
}

static char *payload_end(buf *b) {
    buf_adds(b, "\"}");
    if (b->oom) {
        buf_free(b);
        return NULL;
    }
    return buf_steal(b, NULL);
}

char *api_ingest_payload(const char *rows, size_t len, int64_t min_us, int64_t max_us) {
    buf b;
    buf_init(&b);
    if (!payload_begin(&b, len, min_us, max_us)) return NULL;
    buf_add_json_escaped(&b, rows, len);
    return payload_end(&b);
}

/* ---- replies ------------------------------------------------------------ */

/* Fills it's reply and lets go of its request: sent right here for a request
 * of this loop, handed to its own loop otherwise (api_complete). */
static void answer(item *it, int rc, const char *job_id, const char *why) {
    if (rc == JQ_OK) {
        char body[32 + JQ_ID_MAX + 24];
        int n = snprintf(body, sizeof body, "{\"accepted\":%zu,\"job_id\":\"%s\"}", it->n, job_id);
        api_raw(it->r, 202, "application/json", body, (size_t)n);
    } else {
        api_header(it->r, "Retry-After", "1");
        api_err(it->r, 503, "unavailable", "usage not accepted: %s", why);
    }
    api_complete(it->r);
    free(it->rows);
    free(it);
}

static void batch_free(batch *b) {
    for (int i = 0; i < b->njobs; i++) free(b->payloads[i]);
    free(b->payloads);
    free(b->jobs);
    if (b->cmd) redisFreeCommand(b->cmd);
    free(b);
}

static void answer_batch(api_ingest *g, batch *b) {
    size_t events = 0;
    for (item *it = b->items; it;) {
        item *next = it->next;
        events += it->n;
        answer(it, b->rc, b->rc == JQ_OK ? b->jobs[it->job].id : NULL, b->why);
        it = next;
    }
    batch_free(b);
    pthread_mutex_lock(&g->mu);
    g->queued -= events;
    pthread_mutex_unlock(&g->mu);
}

static void kick(api_ingest *g) { event_active(g->kick_ev, EV_TIMEOUT, 0); }

/* b is answered (rc, why): off the wire, onto the done list. */
static void batch_done(api_ingest *g, batch *b, int rc, const char *why) {
    b->rc = rc;
    b->why = why;
    if (g->inflight == b) {
        g->inflight = NULL;
        evtimer_del(g->tmo_ev);
        pthread_mutex_lock(&g->mu);
        g->busy = false;
        pthread_mutex_unlock(&g->mu);
    }
    b->next = NULL;
    if (g->done_tail)
        g->done_tail->next = b;
    else
        g->done_head = b;
    g->done_tail = b;
    kick(g);
}

static item *take_waiting(api_ingest *g) {
    pthread_mutex_lock(&g->mu);
    item *list = g->head;
    g->head = g->tail = NULL;
    pthread_mutex_unlock(&g->mu);
    return list;
}

/* The waiting items fail (503) without being sent. */
static void fail_waiting(api_ingest *g, const char *why) {
    item *list = take_waiting(g);
    if (!list) return;
    batch *b = calloc(1, sizeof *b);
    if (!b) { /* answer them here: nothing else needs memory */
        size_t events = 0;
        while (list) {
            item *next = list->next;
            events += list->n;
            answer(list, JQ_ERR, NULL, "out of memory");
            list = next;
        }
        pthread_mutex_lock(&g->mu);
        g->queued -= events;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    b->g = g;
    b->items = list;
    batch_done(g, b, JQ_ERR, why);
}

/* ---- the connection ------------------------------------------------------
 * A libevent binding for the async context (hiredis' adapters/libevent.h,
 * with its allocations checked and persistent events). */

typedef struct evpair {
    redisAsyncContext *ac;
    struct event *rev, *wev;
} evpair;

static void ev_on_read(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    redisAsyncHandleRead(((evpair *)arg)->ac);
}
static void ev_on_write(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    redisAsyncHandleWrite(((evpair *)arg)->ac);
}
static void ev_add_read(void *p) { event_add(((evpair *)p)->rev, NULL); }
static void ev_del_read(void *p) { event_del(((evpair *)p)->rev); }
static void ev_add_write(void *p) { event_add(((evpair *)p)->wev, NULL); }
static void ev_del_write(void *p) { event_del(((evpair *)p)->wev); }
static void ev_cleanup(void *p) {
    evpair *e = p;
    event_free(e->rev);
    event_free(e->wev);
    free(e);
}

static int attach(redisAsyncContext *ac, struct event_base *base) {
    evpair *e = calloc(1, sizeof *e);
    if (!e) return -1;
    e->ac = ac;
    e->rev = event_new(base, ac->c.fd, EV_READ | EV_PERSIST, ev_on_read, e);
    e->wev = event_new(base, ac->c.fd, EV_WRITE | EV_PERSIST, ev_on_write, e);
    if (!e->rev || !e->wev) {
        if (e->rev) event_free(e->rev);
        if (e->wev) event_free(e->wev);
        free(e);
        return -1;
    }
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = e;
    /* write: tells when the connect completed */
    if (event_add(e->rev, NULL) || event_add(e->wev, NULL)) return -1; /* freed with ac */
    return 0;
}

/* Forgets the context and frees it: its pending replies come back NULL. */
static void drop(api_ingest *g) {
    redisAsyncContext *ac = g->ac;
    g->ac = NULL;
    g->state = ST_DOWN;
    evtimer_del(g->tmo_ev);
    if (ac) redisAsyncFree(ac);
}

/* hiredis tears ac down itself (connect failed, connection lost). */
static void lost(api_ingest *g, const redisAsyncContext *ac, const char *what) {
    if (g->ac != ac) return;
    LOG_KV(LOG_WARN, "usage batcher: redis connection lost", LF_S("when", what),
           LF_S("error", ac->errstr ? ac->errstr : ""));
    bool connecting = g->state == ST_CONNECTING;
    g->ac = NULL;
    g->state = ST_DOWN;
    evtimer_del(g->tmo_ev);
    if (connecting) fail_waiting(g, "the job queue is unreachable");
    kick(g);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    if (status != REDIS_OK) lost(ac->data, ac, "connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    ML_UNUSED(status);
    lost(ac->data, ac, "disconnect");
}

static const char k_hs_auth[] = "AUTH", k_hs_select[] = "SELECT", k_hs_script[] = "SCRIPT LOAD";

static void on_handshake(redisAsyncContext *ac, void *reply, void *priv) {
    api_ingest *g = ac->data;
    redisReply *rep = reply;
    if (!rep) { /* torn down: on_connect / on_disconnect say so */
        lost(g, ac, priv);
        return;
    }
    if (g->ac != ac || g->state != ST_CONNECTING) return;
    bool ok = rep->type != REDIS_REPLY_ERROR;
    if (priv == k_hs_script) {
        ok = ok && rep->type == REDIS_REPLY_STRING && rep->len == 40;
        if (ok) memcpy(g->sha, rep->str, 41);
    }
    if (!ok) {
        LOG_KV(LOG_WARN, "usage batcher: redis refused the handshake", LF_S("command", priv),
               LF_S("error", rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply"));
        g->hs_failed = true;
    }
    if (--g->hs_left > 0) return;
    if (g->hs_failed) {
        drop(g); /* inside a callback: hiredis frees it when we return */
        fail_waiting(g, "the job queue refused the connection");
        return;
    }
    g->state = ST_READY;
    evtimer_del(g->tmo_ev);
    kick(g);
}

static bool send_script(api_ingest *g, redisCallbackFn *fn, const char *tag) {
    const char *argv[] = {"SCRIPT", "LOAD", g->script};
    size_t lens[] = {6, 4, g->script_len};
    return redisAsyncCommandArgv(g->ac, fn, (void *)tag, 3, argv, lens) == REDIS_OK;
}

static void arm_timeout(api_ingest *g) {
    struct timeval tv = {INGEST_TIMEOUT_MS / 1000, (INGEST_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(g->tmo_ev, &tv);
}

/* Starts a connection and its handshake; on failure the waiting items fail. */
static void connect_redis(api_ingest *g) {
    redisAsyncContext *ac = redisAsyncConnect(g->u.host, g->u.port);
    if (!ac || ac->err) {
        LOG_KV(LOG_WARN, "usage batcher: cannot connect to redis",
               LF_S("error", ac ? ac->errstr : "out of memory"));
        if (ac) redisAsyncFree(ac);
        fail_waiting(g, "the job queue is unreachable");
        return;
    }
    ac->data = g;
    if (attach(ac, g->base) != 0) {
        redisAsyncFree(ac);
        fail_waiting(g, "out of memory");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    g->ac = ac;
    g->state = ST_CONNECTING;
    g->hs_left = 0;
    g->hs_failed = false;
    arm_timeout(g);
    bool ok = true;
    if (g->u.password[0]) {
        ok = redisAsyncCommand(ac, on_handshake, (void *)k_hs_auth, "AUTH %s", g->u.password) ==
             REDIS_OK;
        g->hs_left += ok;
    }
    if (ok && g->u.db) {
        ok = redisAsyncCommand(ac, on_handshake, (void *)k_hs_select, "SELECT %d", g->u.db) ==
             REDIS_OK;
        g->hs_left += ok;
    }
    if (ok) {
        ok = send_script(g, on_handshake, k_hs_script);
        g->hs_left += ok;
    }
    if (!ok) {
        drop(g);
        fail_waiting(g, "out of memory");
    }
}

static void on_reload(redisAsyncContext *ac, void *reply, void *priv) {
    ML_UNUSED(ac);
    ML_UNUSED(priv);
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        LOG_KV(LOG_WARN, "usage batcher: SCRIPT LOAD failed", LF_S("error", rep->str));
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv) {
    batch *b = priv;
    api_ingest *g = b->g;
    redisReply *rep = reply;
    char err[256];
    int rc;
    if (!rep) {
        snprintf(err, sizeof err, "redis: %s",
                 ac->errstr && ac->errstr[0] ? ac->errstr : "no answer (connection dropped)");
        rc = JQ_ERR;
    } else {
        rc = jq_enqueue_reply(rep, b->jobs, (size_t)b->njobs, err, sizeof err);
    }
    if (rc == JQ_NOSCRIPT && !b->resent && g->ac == ac) {
        /* SCRIPT FLUSH: nothing was run; load it again and resend, in order */
        b->resent = true;
        if (send_script(g, on_reload, k_hs_script) &&
            redisAsyncFormattedCommand(ac, on_reply, b, b->cmd, b->cmdlen) == REDIS_OK)
            return;
        rc = JQ_ERR;
    }
    if (rc != JQ_OK) LOG_KV(LOG_WARN, "usage enqueue failed", LF_S("error", err));
    batch_done(g, b, rc == JQ_OK ? JQ_OK : JQ_ERR, "the job queue is unreachable");
    if (!rep) lost(g, ac, "enqueue");
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    api_ingest *g = arg;
    if (!g->ac) return;
    LOG_KV(LOG_WARN, "usage batcher: redis did not answer",
           LF_S("when", g->state == ST_CONNECTING ? "handshake" : "enqueue"),
           LF_I("timeout_ms", INGEST_TIMEOUT_MS));
    drop(g); /* the batch in flight comes back NULL: 503 */
    fail_waiting(g, "the job queue did not answer");
}

/* ---- batches ------------------------------------------------------------- */

/* Jobs (consecutive items of one org merged, arrival order kept) and the
 * EVALSHA command for b's items.  0, or -1 when out of memory. */
static int build(api_ingest *g, batch *b) {
    size_t nitems = 0;
    for (item *it = b->items; it; it = it->next) nitems++;
    b->jobs = calloc(nitems, sizeof *b->jobs);
    b->payloads = calloc(nitems, sizeof *b->payloads);
    if (!b->jobs || !b->payloads) return -1;
    for (item *it = b->items; it;) {
        long long org = it->org;
        size_t events = 0, bytes = 0;
        int64_t mn = it->min_us, mx = it->max_us;
        item *start = it, *end = it;
        while (end && end->org == org &&
               (end == start ||
                (events + end->n <= INGEST_JOB_EVENTS && bytes + end->len <= INGEST_JOB_BYTES))) {
            events += end->n;
            bytes += end->len;
            if (end->min_us < mn) mn = end->min_us;
            if (end->max_us > mx) mx = end->max_us;
            end->job = b->njobs;
            end = end->next;
        }
        buf p;
        buf_init(&p);
        if (!payload_begin(&p, bytes, mn, mx)) {
            buf_free(&p);
            return -1;
        }
        for (it = start; it != end; it = it->next) buf_add_json_escaped(&p, it->rows, it->len);
        char *s = payload_end(&p);
        if (!s) return -1;
        b->payloads[b->njobs] = s;
        b->jobs[b->njobs] = (jq_new){
            .type = API_INGEST_TYPE,
            .org = org,
            .payload = s,
            .opts = {.max_attempts = API_INGEST_MAX_ATTEMPTS, .keep_ms = API_INGEST_KEEP_MS}};
        b->njobs++;
    }
    char err[128];
    return jq_enqueue_command(g->sha, b->jobs, (size_t)b->njobs, &b->cmd, &b->cmdlen, err,
                              sizeof err) == JQ_OK
               ? 0
               : -1;
}

/* Sends every waiting item as one batch (the connection is ready). */
static void send_batch(api_ingest *g) {
    batch *b = calloc(1, sizeof *b);
    if (!b) {
        fail_waiting(g, "out of memory");
        return;
    }
    pthread_mutex_lock(&g->mu);
    item *list = g->head;
    g->head = g->tail = NULL;
    g->busy = list != NULL;
    pthread_mutex_unlock(&g->mu);
    if (!list) {
        free(b);
        return;
    }
    b->g = g;
    b->items = list;
    if (build(g, b) != 0) {
        g->inflight = b; /* batch_done clears g->busy */
        batch_done(g, b, JQ_ERR, "out of memory");
        return;
    }
    if (redisAsyncFormattedCommand(g->ac, on_reply, b, b->cmd, b->cmdlen) != REDIS_OK) {
        g->inflight = b; /* batch_done clears g->busy */
        batch_done(g, b, JQ_ERR, "the job queue is unreachable");
        drop(g);
        return;
    }
    g->inflight = b; /* g->busy since the list was taken */
    arm_timeout(g);
    /* write now (not at the next loop turn): Redis works while we reply.  On
     * an I/O error hiredis tears the context down right here, and b comes
     * back through on_reply. */
    redisAsyncHandleWrite(g->ac);
}

static void on_kick(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    api_ingest *g = arg;
    pthread_mutex_lock(&g->mu);
    bool waiting = g->head != NULL;
    pthread_mutex_unlock(&g->mu);
    if (waiting && !g->inflight) {
        if (g->state == ST_DOWN) connect_redis(g);
        if (g->state == ST_READY) send_batch(g);
    }
    while (g->done_head) {
        batch *b = g->done_head;
        g->done_head = b->next;
        if (!g->done_head) g->done_tail = NULL;
        answer_batch(g, b);
    }
}

/* ---- public --------------------------------------------------------------- */

api_ingest *api_ingest_new(struct event_base *base, const cfg *c, char *err, size_t errlen) {
    api_ingest *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&g->mu, NULL);
    g->base = base;
    if (rds_url_parse(c->redis_url, &g->u, err, errlen) != 0) goto fail;
    g->script = jq_enqueue_script(&g->script_len, err, errlen);
    g->kick_ev = event_new(base, -1, 0, on_kick, g);
    g->tmo_ev = evtimer_new(base, on_timeout, g);
    if (!g->script || !g->kick_ev || !g->tmo_ev) {
        if (g->script) snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return g;
fail:
    api_ingest_free(g);
    return NULL;
}

void api_ingest_free(api_ingest *g) {
    if (!g) return;
    if (g->ac) drop(g); /* the batch in flight comes back NULL */
    fail_waiting(g, "the server is shutting down");
    while (g->done_head) {
        batch *b = g->done_head;
        g->done_head = b->next;
        answer_batch(g, b);
    }
    if (g->kick_ev) event_free(g->kick_ev);
    if (g->tmo_ev) event_free(g->tmo_ev);
    free(g->script);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void api_ingest_submit(api_req *r, long long org, char *rows, size_t len, size_t n, int64_t min_us,
                       int64_t max_us) {
    api_pending(r);
    api_ingest *g = api_loop_ingest(r->loop);
    item *it = g ? malloc(sizeof *it) : NULL;
    bool kick_it = false;
    if (it) {
        *it = (item){.r = r,
                     .org = org,
                     .rows = rows,
                     .len = len,
                     .n = n,
                     .min_us = min_us,
                     .max_us = max_us};
        pthread_mutex_lock(&g->mu);
        if (g->queued + n <= INGEST_MAX_QUEUED) {
            if (g->tail)
                g->tail->next = it;
            else
                g->head = it;
            g->tail = it;
            g->queued += n;
            kick_it = !g->busy; /* else the answer in flight kicks */
        } else {
            free(it);
            it = NULL;
        }
        pthread_mutex_unlock(&g->mu);
    }
    if (!it) {
        free(rows);
        api_header(r, "Retry-After", "1");
        api_err(r, 503, "unavailable", "too much usage waiting for the job queue; retry shortly");
        api_complete(r);
        return;
    }
    if (kick_it) kick(g); /* event_active: safe from any thread */
}
