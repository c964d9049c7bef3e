/* stream.c — streamed replies from a database thread (see stream.h).
 *
 * DESIGN — A streamed request has an api_stream shared by two threads: the
 * database thread that runs the handler (the producer) and the event-loop
 * thread that owns the evhttp connection (the only one that touches evhttp).
 * They meet under st->mu:
 *
 *   producer: appends bytes to st->pending, adds them to st->unsent, and
 *             activates st->ev (once per batch: st->scheduled).  It blocks
 *             while st->unsent > API_STREAM_MAX_UNSENT (backpressure), and
 *             returns -1 once st->gone is set.
 *   loop:     on st->ev, sends the headers (evhttp_send_reply_start) the
 *             first time, then hands the pending bytes to evhttp as one
 *             chunk (evhttp_send_reply_chunk_with_cb), and re-measures.
 *
 * st->unsent = bytes in st->pending + bytes still queued inside libevent:
 * the connection bufferevent's output plus, when it is a filter over the
 * socket bufferevent (upload.c), the socket bufferevent's output — a filter
 * passes bytes down at once, so its own output being empty says nothing
 * about the socket.  The loop thread re-measures after each chunk, in the
 * chunk callback (the connection's output drained) and on a 2 ms timer
 * while anything is still queued, and wakes the producer.  So at most ~1 MB
 * (plus one chunk) of a reply sits in memory.
 *
 * The end: the handler returns, the server's finish() (loop thread) calls
 * api_stream_finish, which flushes what is left and either ends the reply
 * (evhttp_send_reply_end: the terminating chunk) or — when the handler
 * called api_stream_fail or returned without api_stream_end — frees the
 * connection, so a chunked reply stops without its terminator and the
 * client sees an error rather than a complete-looking short file.  If the
 * stream failed before its headers went out, the ordinary error reply is
 * sent instead.  Only then is the stream freed: the producer never touches
 * it after the handler returned.
 *
 * The client leaving: once the headers are out, the connection's close
 * callback is ours (stream_on_close).  libevent calls it from
 * evhttp_connection_free; on a write error or timeout of a request whose
 * reply is not finished (userdone unset), evhttp_connection_fail_ has first
 * detached the request from the connection (req->evcon = NULL, no longer in
 * its queue), so libevent will not free it: then we do
 * (evhttp_request_free).  Either way r->ev is forgotten, r->gone and
 * st->gone are set and the producer is woken.  Before the headers went out
 * the server's own watch / close callback handles it (r->ev becomes NULL);
 * the loop callback notices and sets st->gone.
 */
#include "fmacros.h"
#include "stream.h"
#include "log.h"
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct api_stream {
    api_req *r;
    struct event *ev;   /* on r's loop; activated by the producer */
    struct event *tick; /* on r's loop: re-measures while bytes are queued */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* ---- under mu ---- */
    buf pending;    /* produced, not yet handed to evhttp */
    size_t unsent;  /* pending.len + bytes queued in libevent */
    bool scheduled; /* ev activated and not yet run */
    bool ended;     /* producer: api_stream_end */
    bool failed;    /* producer: api_stream_fail */
    bool gone;      /* loop: the client left */
    /* ---- loop thread only ---- */
    bool started; /* headers sent */
};

/* ---- loop thread ------------------------------------------------------- */

static void wake_gone(api_stream *st) {
    pthread_mutex_lock(&st->mu);
    st->gone = true;
    st->unsent = st->pending.len; /* nothing handed will ever be written */
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void stream_on_close(struct evhttp_connection *evcon, void *arg) {
    ML_UNUSED(evcon);
    api_stream *st = arg;
    api_req *r = st->r;
    struct evhttp_request *ev = r->ev;
    r->ev = NULL;
    atomic_store(&r->gone, true);
    /* detached by evhttp_connection_fail_ (see DESIGN): ours to free */
    if (ev && !evhttp_request_get_connection(ev)) evhttp_request_free(ev);
    wake_gone(st);
}

/* Bytes of the reply queued inside libevent (see DESIGN). */
static size_t queued(const api_stream *st) {
    struct evhttp_connection *evcon = st->r->ev ? evhttp_request_get_connection(st->r->ev) : NULL;
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (!bev) return 0;
    size_t n = evbuffer_get_length(bufferevent_get_output(bev));
    struct bufferevent *under = bufferevent_get_underlying(bev);
    if (under) n += evbuffer_get_length(bufferevent_get_output(under));
    return n;
}

static void remeasure(api_stream *st) {
    size_t q = queued(st);
    pthread_mutex_lock(&st->mu);
    st->unsent = st->pending.len + q;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    if (q > 0 && !evtimer_pending(st->tick, NULL)) {
        struct timeval tv = {0, 2000};
        evtimer_add(st->tick, &tv);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    remeasure(arg);
}

static void on_drained(struct evhttp_connection *evcon, void *arg) {
    ML_UNUSED(evcon);
    remeasure(arg);
}

static void start_reply(api_stream *st) {
    api_req *r = st->r;
    struct evhttp_request *ev = r->ev;
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    if (r->watch) { /* from now on write errors tell us the client left */
        event_free(r->watch);
        r->watch = NULL;
    }
    if (evcon) evhttp_connection_set_closecb(evcon, stream_on_close, st);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(ev);
    evhttp_add_header(oh, "X-Request-Id", r->request_id);
    evhttp_add_header(oh, "Content-Type", r->ctype ? r->ctype : "application/octet-stream");
    evhttp_add_header(oh, "Cache-Control", "no-store");
    evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
    for (int i = 0; i < r->nh; i++) evhttp_add_header(oh, r->hk[i], r->hv[i]);
    evhttp_send_reply_start(ev, r->status, NULL);
    st->started = true;
}

/* Hands b (taken from pending) to evhttp.  Returns false if out of memory. */
static bool hand(api_stream *st, buf *b) {
    api_req *r = st->r;
    if (!b->len) return true;
    struct evbuffer *eb = evbuffer_new();
    if (!eb || evbuffer_add(eb, b->p, b->len) != 0) {
        if (eb) evbuffer_free(eb);
        return false;
    }
    evhttp_send_reply_chunk_with_cb(r->ev, eb, on_drained, st);
    evbuffer_free(eb);
    remeasure(st);
    return true;
}

/* Takes the pending bytes out under the lock. */
static void take_pending(api_stream *st, buf *out) {
    pthread_mutex_lock(&st->mu);
    *out = st->pending;
    buf_init(&st->pending);
    st->scheduled = false;
    pthread_mutex_unlock(&st->mu);
}

static void abort_connection(api_req *r) {
    struct evhttp_request *ev = r->ev;
    r->ev = NULL;
    atomic_store(&r->gone, true);
    struct evhttp_connection *evcon = ev ? evhttp_request_get_connection(ev) : NULL;
    if (evcon) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        evhttp_connection_free(evcon); /* frees ev too */
    } else if (ev) {
        evhttp_request_free(ev);
    }
}

static void on_stream_ev(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    api_stream *st = arg;
    api_req *r = st->r;
    buf b;
    take_pending(st, &b);
    if (!r->ev) {
        buf_free(&b);
        wake_gone(st);
        return;
    }
    if (!st->started) start_reply(st);
    if (r->ev && !hand(st, &b)) {
        LOG_KV(LOG_ERROR, "streamed reply: out of memory", LF_S("request_id", r->request_id));
        abort_connection(r);
        wake_gone(st);
    }
    buf_free(&b);
}

static void stream_free(api_stream *st) {
    if (!st) return;
    if (st->ev) event_free(st->ev);
    if (st->tick) event_free(st->tick);
    buf_free(&st->pending);
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

int api_stream_finish(api_req *r) {
    api_stream *st = r->stream;
    buf b;
    take_pending(st, &b);
    pthread_mutex_lock(&st->mu);
    bool ok = st->ended && !st->failed && !b.oom;
    pthread_mutex_unlock(&st->mu);
    int rc = API_STREAM_DROPPED;
    if (r->ev && !st->started && !ok) {
        rc = API_STREAM_NOT_STARTED; /* nothing went out: send r's error reply */
        if (r->status < 400) api_err(r, 500, "internal", "the reply could not be produced");
    } else if (r->ev) {
        if (!st->started) start_reply(st);
        if (r->ev && ok && !hand(st, &b)) ok = false;
        if (r->ev && ok) {
            struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
            if (evcon) evhttp_connection_set_closecb(evcon, NULL, NULL);
            evhttp_send_reply_end(r->ev); /* the terminating chunk; evhttp frees ev */
            r->ev = NULL;
            rc = API_STREAM_SENT;
        } else if (r->ev) {
            LOG_KV(LOG_WARN, "streamed reply aborted", LF_S("request_id", r->request_id));
            abort_connection(r);
        }
    }
    buf_free(&b);
    r->stream = NULL;
    stream_free(st);
    return rc;
}

void api_stream_discard(api_req *r) {
    stream_free(r->stream);
    r->stream = NULL;
}

/* ---- producer (database thread) ---------------------------------------- */

static void kick(api_stream *st, bool need) {
    if (need) event_active(st->ev, 0, 0);
}

int api_stream_begin(api_req *r, int status, const char *ctype) {
    if (ML_NEVER(r->stream)) return -1;
    api_stream *st = calloc(1, sizeof *st);
    if (!st) return -1;
    st->r = r;
    buf_init(&st->pending);
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st);
        return -1;
    }
    if (pthread_cond_init(&st->cv, NULL) != 0) {
        pthread_mutex_destroy(&st->mu);
        free(st);
        return -1;
    }
    st->ev = event_new(api_loop_base(r->loop), -1, 0, on_stream_ev, st);
    st->tick = evtimer_new(api_loop_base(r->loop), on_tick, st);
    if (!st->ev || !st->tick) {
        stream_free(st);
        return -1;
    }
    r->status = status;
    r->ctype = ctype;
    buf_free(&r->out);
    r->stream = st;
    st->scheduled = true;
    kick(st, true);
    return atomic_load(&r->gone) ? -1 : 0;
}

int api_stream_write(api_req *r, const void *p, size_t n) {
    api_stream *st = r->stream;
    if (ML_NEVER(!st)) return -1;
    pthread_mutex_lock(&st->mu);
    while (!st->gone && st->unsent > API_STREAM_MAX_UNSENT) {
        /* timed: also notices a request the server marked gone */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&st->cv, &st->mu, &ts);
        if (atomic_load(&r->gone)) break;
    }
    if (st->gone || atomic_load(&r->gone) || st->failed) {
        pthread_mutex_unlock(&st->mu);
        return -1;
    }
    buf_add(&st->pending, p, n);
    if (st->pending.oom) {
        st->failed = true;
        pthread_mutex_unlock(&st->mu);
        return -1;
    }
    st->unsent += n;
    bool need = !st->scheduled;
    st->scheduled = true;
    pthread_mutex_unlock(&st->mu);
    kick(st, need);
    return 0;
}

int api_stream_end(api_req *r) {
    api_stream *st = r->stream;
    if (ML_NEVER(!st)) return -1;
    pthread_mutex_lock(&st->mu);
    st->ended = true;
    bool gone = st->gone;
    pthread_mutex_unlock(&st->mu);
    return gone || atomic_load(&r->gone) ? -1 : 0;
}

void api_stream_fail(api_req *r) {
    api_stream *st = r->stream;
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->failed = true;
    pthread_mutex_unlock(&st->mu);
}
