/* child.c — one billing-worker process: the job loop.
 *
 * DESIGN — A worker process owns one PostgreSQL connection (handlers use it;
 * db reconnects by itself) and two Redis connections: one jq client for this
 * loop and one for the heartbeat thread (beat.c).  Its id is
 * "<hostname>:<pid>".  The loop:
 *   1. unless stopping, reserves jobs of the table's types — one jq_reserve
 *      per batch group (types sharing a batch size), each taking at most
 *      min(batch, BILLING_JOB_BATCH) jobs — and registers them with the
 *      heartbeat thread; nothing ready → jq_wait up to 1 s for a wake token;
 *   2. runs each reserved job with its handler (payload parsed as a JSON
 *      object with duplicate keys rejected; the handler's timeout clock runs
 *      only while the handler does);
 *   3. fails it at once (permanent errors and the last allowed attempt →
 *      dead; else retried with backoff), or keeps its success to ack with
 *      the batch's others in one jq_ack_many; logs one "job" line per job.
 * SIGTERM/SIGINT only set wk_stop: the loop stops reserving, finishes and
 * acks the jobs in hand, and exits 0 (the supervisor SIGKILLs after
 * BILLING_SHUTDOWN_GRACE_S; leases bring such jobs back).
 *
 * Outages — every Redis call is retried, paced by wk_backoff (immediate, then
 * 50 ms doubling to 1 s) and logged once per outage through wk_dep: reserve
 * and wait until Redis answers (or a stop is asked), an ack/fail for up to
 * two leases (its job comes back through the reaper if it never lands; an
 * answer of JQ_LOST after a retry is checked against the job, since the
 * first try may have landed before the connection broke).  A handler that
 * fails because PostgreSQL is unreachable (res->unavailable) is run again in
 * place once db_ensure connects — for up to DB_WAIT_US, and not after a stop
 * is asked — so a database restart spends no attempt.
 */
#include "fmacros.h"
#include "wk.h"
#include "wk_int.h"
#include "db.h"
#include "log.h"
#include <stdlib.h>
#include <unistd.h>

volatile sig_atomic_t wk_stop;

#define WAIT_MS      1000
#define ACK_FLUSH_US 20000 /* successes wait at most this long for their batched ack */
#define DB_WAIT_US   (30 * 1000000LL)
#define MAX_TYPES    32

static void on_term(int sig) {
    ML_UNUSED(sig);
    wk_stop = 1;
}

typedef struct group {
    const char *types[MAX_TYPES];
    size_t n;
    int max;
} group;

typedef struct loop {
    const cfg *c;
    int slot;
    char worker[320];
    db *db;
    jq *q;
    wk_beat *beat;
    wk_dep redis, pg;
    group groups[MAX_TYPES];
    size_t ngroups;
    const char *types[MAX_TYPES]; /* all of them, for jq_wait */
    size_t ntypes;
    jq_job *jobs;
    int cap;
    /* successes not acked yet: acked together with one jq_ack_many at the
     * end of the reserved batch, or between two jobs once the oldest has
     * waited ACK_FLUSH_US.  A slow handler still delays the acks of the jobs
     * that finished before it; they stay held (and heartbeated) meanwhile,
     * so only the moment they show as succeeded moves, never their fate. */
    struct pending {
        const jq_job *j;
        char *json;
        int64_t duration_us;
    } * pend;
    int npend;
    int64_t pend_since_us;
} loop;

/* Groups the table's types by their batch size (capped by BILLING_JOB_BATCH). */
static int make_groups(loop *w) {
    if (ML_NEVER(wk_handlers_len > MAX_TYPES)) return -1;
    for (size_t i = 0; i < wk_handlers_len; i++) {
        const wk_handler *h = &wk_handlers[i];
        int m = h->batch < w->c->job_batch ? h->batch : w->c->job_batch;
        if (m < 1) m = 1;
        group *g = NULL;
        for (size_t k = 0; k < w->ngroups && !g; k++)
            if (w->groups[k].max == m) g = &w->groups[k];
        if (!g) {
            g = &w->groups[w->ngroups++];
            g->max = m;
            w->cap += m;
        }
        g->types[g->n++] = h->type;
        w->types[w->ntypes++] = h->type;
    }
    return 0;
}

static int ctx_progress(wk_ctx *ctx, int pct, const char *msg) {
    loop *w = ctx->loop;
    char err[256];
    int rc = jq_progress(w->q, ctx->job->id, w->worker, pct, msg, err, sizeof err);
    if (rc == JQ_ERR)
        wk_dep_fail(&w->redis, err);
    else
        wk_dep_ok(&w->redis);
    return rc;
}

/* Waits for PostgreSQL after a handler found it unreachable; true when a
 * connection is up again. */
static bool wait_db(loop *w) {
    wk_backoff b = {.tries = 1}; /* the handler's call was the first try */
    int64_t until = wk_mono_us() + DB_WAIT_US;
    for (;;) {
        db_err e;
        if (db_ensure(w->db, &e) == 0) {
            wk_dep_ok(&w->pg);
            return true;
        }
        wk_dep_fail(&w->pg, e.msg);
        if (wk_stop || wk_mono_us() >= until) return false;
        wk_backoff_sleep(&b);
    }
}

/* After an ack/fail was retried and answered JQ_LOST: did the first try
 * land?  True if the job is in the state that call would have left it in,
 * recorded by this worker. */
static bool landed(loop *w, const char *id, bool ack, const char *error, bool *dead) {
    char *s = NULL, err[256];
    if (jq_get(w->q, id, &s, err, sizeof err) != JQ_OK) return false;
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    const char *st = json_string_value(json_object_get(j, "state"));
    const char *wk = json_string_value(json_object_get(j, "worker"));
    const char *e = json_string_value(json_object_get(j, "error"));
    bool mine = st && wk && !strcmp(wk, w->worker);
    bool ok = false;
    if (mine && ack)
        ok = !strcmp(st, "succeeded");
    else if (mine && e && !strcmp(e, error) && (!strcmp(st, "delayed") || !strcmp(st, "dead"))) {
        ok = true;
        *dead = !strcmp(st, "dead");
    }
    json_decref(j);
    return ok;
}

/* Runs one Redis call until Redis answers (anything but JQ_ERR) or two
 * leases have passed, reporting the outage through wk_dep.  *retried tells
 * whether more than one try was needed (a JQ_LOST after a retry may mean the
 * first try landed). */
typedef int (*redis_call)(loop *w, void *arg, char *err, size_t errlen);
static int with_retries(loop *w, redis_call call, void *arg, bool *retried, char *err,
                        size_t errlen) {
    wk_backoff b = {0};
    int64_t until = wk_mono_us() + 2LL * w->c->job_lease_ms * 1000;
    *retried = false;
    for (;;) {
        int rc = call(w, arg, err, errlen);
        if (rc != JQ_ERR) {
            wk_dep_ok(&w->redis);
            return rc;
        }
        wk_dep_fail(&w->redis, err);
        if (wk_mono_us() >= until) return JQ_ERR;
        *retried = true;
        wk_backoff_sleep(&b);
    }
}

typedef struct fail_call {
    const jq_job *j;
    const char *error;
    bool permanent;
    bool dead;
} fail_call;

static int call_fail(loop *w, void *arg, char *err, size_t errlen) {
    fail_call *f = arg;
    return jq_fail(w->q, f->j->id, w->worker, f->error, f->permanent, &f->dead, err, errlen);
}

/* Fails j (retried later, or dead), forgets it, logs its line. */
static void fail_job(loop *w, const jq_job *j, int max_attempts, wk_status st, const wk_result *res,
                     int64_t duration_us) {
    fail_call f = {j, res->error, st == WK_PERMANENT || j->attempts >= max_attempts, false};
    char err[256] = "";
    bool retried;
    int rc = with_retries(w, call_fail, &f, &retried, err, sizeof err);
    if (rc == JQ_LOST && retried && landed(w, j->id, false, res->error, &f.dead)) rc = JQ_OK;
    wk_beat_release(w->beat, j->id);

    char line[1024];
    const char *outcome;
    if (rc == JQ_OK) {
        outcome = f.dead ? "dead" : "retry";
        snprintf(line, sizeof line, "%s", res->error);
    } else {
        outcome = "lost";
        snprintf(line, sizeof line, "%s%s; %s",
                 rc == JQ_LOST ? "lease lost: the job moved on" : "result not recorded: ",
                 rc == JQ_LOST ? "" : err, res->error);
    }
    wk_log_job(j->id, j->type, j->attempts, duration_us, outcome, line, w->worker);
}

/* The attempts a job may use: its own limit, capped by the table's. */
static int attempts_allowed(const jq_job *j, const wk_handler *h) {
    int m = j->max_attempts;
    if (h && (m <= 0 || h->max_attempts < m)) m = h->max_attempts;
    return m > 0 ? m : 1;
}

typedef struct ack_call {
    const char **ids, **res;
    int *status;
    size_t n;
} ack_call;

static int call_ack(loop *w, void *arg, char *err, size_t errlen) {
    ack_call *a = arg;
    return jq_ack_many(w->q, w->worker, a->ids, a->res, a->n, a->status, err, errlen);
}

/* Acks every pending success in one script run (with retries), then forgets
 * and logs each. */
static void ack_pending(loop *w) {
    int n = w->npend;
    if (n == 0) return;
    ack_call a = {calloc((size_t)n, sizeof *a.ids), calloc((size_t)n, sizeof *a.res),
                  calloc((size_t)n, sizeof *a.status), (size_t)n};
    char err[256] = "out of memory";
    int rc = JQ_ERR;
    bool retried = false;
    if (a.ids && a.res && a.status) {
        for (int i = 0; i < n; i++) {
            a.ids[i] = w->pend[i].j->id;
            a.res[i] = w->pend[i].json;
        }
        rc = with_retries(w, call_ack, &a, &retried, err, sizeof err);
    }
    for (int i = 0; i < n; i++) {
        const jq_job *j = w->pend[i].j;
        int st = rc == JQ_ERR ? JQ_ERR : a.status[i];
        bool dead = false;
        if (st == JQ_LOST && retried && landed(w, j->id, true, "", &dead)) st = JQ_OK;
        wk_beat_release(w->beat, j->id);
        char line[512] = "";
        if (st != JQ_OK)
            snprintf(line, sizeof line, "%s%s",
                     st == JQ_LOST ? "lease lost: the job moved on" : "result not recorded: ",
                     st == JQ_LOST ? "" : err);
        wk_log_job(j->id, j->type, j->attempts, w->pend[i].duration_us, st == JQ_OK ? "ok" : "lost",
                   line, w->worker);
        free(w->pend[i].json);
    }
    w->npend = 0;
    free(a.ids);
    free(a.res);
    free(a.status);
}

static void run_job(loop *w, const jq_job *j) {
    const wk_handler *h = wk_handler_find(j->type);
    int max_attempts = attempts_allowed(j, h);
    wk_result res = {0};
    wk_status st;
    int64_t t0 = wk_mono_us();
    json_error_t je;
    json_t *payload = NULL;
    if (ML_NEVER(!h)) {
        st = wk_fail(&res, WK_PERMANENT, "no handler for job type %s", j->type);
    } else if (!(payload = json_loads(j->payload, JSON_REJECT_DUPLICATES, &je)) ||
               !json_is_object(payload)) {
        st = wk_fail(&res, WK_PERMANENT, "payload is not a JSON object%s%s", payload ? "" : ": ",
                     payload ? "" : je.text);
    } else {
        wk_ctx ctx = {.job = j,
                      .db = w->db,
                      .jq = w->q,
                      .last_attempt = j->attempts >= attempts_allowed(j, h),
                      .payload = payload,
                      .worker = w->worker,
                      .cfg = w->c,
                      .progress = ctx_progress,
                      .loop = w};
        for (;;) {
            free(res.json);
            memset(&res, 0, sizeof res);
            wk_beat_run(w->beat, j->id);
            st = h->fn(&ctx, &res);
            wk_beat_ran(w->beat, j->id);
            if (st == WK_OK || st == WK_PERMANENT || !res.unavailable) break;
            wk_dep_fail(&w->pg, res.error);
            if (!wait_db(w)) break;
        }
    }
    json_decref(payload);
    int64_t t1 = wk_mono_us();
    if (st == WK_OK) { /* acked with the rest of the batch (ack_pending) */
        if (ML_NEVER(w->npend == w->cap)) ack_pending(w);
        if (w->npend == 0) w->pend_since_us = t1;
        w->pend[w->npend++] = (struct pending){j, res.json, t1 - t0};
        return;
    }
    fail_job(w, j, max_attempts, st, &res, t1 - t0);
    free(res.json);
}

/* Runs jobs[0..n) (same type, h->many set) with one handler call. */
static void run_many(loop *w, const wk_handler *h, jq_job *jobs, int n) {
    const jq_job **js = calloc((size_t)n, sizeof *js);
    json_t **pl = calloc((size_t)n, sizeof *pl);
    int m = 0;
    int64_t t0 = wk_mono_us();
    for (int i = 0; i < n; i++) {
        json_error_t je;
        json_t *p = js && pl ? json_loads(jobs[i].payload, JSON_REJECT_DUPLICATES, &je) : NULL;
        wk_result res = {0};
        if (p && json_is_object(p) && (!h->check || h->check(&jobs[i], p, &res))) {
            js[m] = &jobs[i];
            pl[m++] = p;
            continue;
        }
        wk_status st = !js || !pl     ? wk_fail(&res, WK_RETRY, "out of memory")
                       : res.error[0] ? WK_PERMANENT
                                      : wk_fail(&res, WK_PERMANENT, "payload is not a JSON object");
        json_decref(p);
        fail_job(w, &jobs[i], attempts_allowed(&jobs[i], h), st, &res, wk_mono_us() - t0);
    }
    wk_result res = {0};
    wk_status st = WK_OK;
    if (m > 0) {
        wk_ctx ctx = {.job = js[0],
                      .db = w->db,
                      .jq = w->q,
                      .cfg = w->c,
                      .payload = NULL,
                      .worker = w->worker,
                      .progress = ctx_progress,
                      .loop = w};
        for (;;) {
            free(res.json);
            memset(&res, 0, sizeof res);
            for (int i = 0; i < m; i++) wk_beat_run(w->beat, js[i]->id);
            st = h->many(&ctx, js, (const json_t *const *)pl, (size_t)m, &res);
            for (int i = 0; i < m; i++) wk_beat_ran(w->beat, js[i]->id);
            if (st == WK_OK || st == WK_PERMANENT || !res.unavailable) break;
            wk_dep_fail(&w->pg, res.error);
            if (!wait_db(w)) break;
        }
    }
    int64_t t1 = wk_mono_us();
    for (int i = 0; i < m; i++) {
        json_decref(pl[i]);
        if (st == WK_OK) {
            char *copy = res.json ? strdup(res.json) : NULL;
            if (ML_NEVER(w->npend == w->cap)) ack_pending(w);
            if (w->npend == 0) w->pend_since_us = t1;
            w->pend[w->npend++] = (struct pending){js[i], copy, t1 - t0};
        } else {
            fail_job(w, js[i], attempts_allowed(js[i], h), st, &res, t1 - t0);
        }
    }
    free(res.json);
    free(js);
    free(pl);
}

/* Reserves from every group; the number held, or JQ_ERR if Redis failed
 * before anything was reserved. */
static int reserve(loop *w, char *err, size_t errlen) {
    int n = 0;
    for (size_t g = 0; g < w->ngroups; g++) {
        int k = jq_reserve(w->q, w->groups[g].types, w->groups[g].n, w->worker, w->jobs + n,
                           w->groups[g].max, err, errlen);
        if (k == JQ_ERR) {
            if (n == 0) return JQ_ERR;
            break; /* run what we hold; the next round retries */
        }
        for (int i = n; i < n + k; i++) {
            const wk_handler *h = wk_handler_find(w->jobs[i].type);
            if (ML_NEVER(!h ||
                         !wk_beat_hold(w->beat, &w->jobs[i], h, attempts_allowed(&w->jobs[i], h))))
                LOG_KV(LOG_ERROR, "cannot hold a reserved job", LF_S("id", w->jobs[i].id));
        }
        n += k;
    }
    return n;
}

static void job_loop(loop *w) {
    wk_backoff b = {0};
    char err[256];
    while (!wk_stop) {
        int n = reserve(w, err, sizeof err);
        if (n == JQ_ERR) {
            wk_dep_fail(&w->redis, err);
            wk_backoff_sleep(&b);
            continue;
        }
        wk_dep_ok(&w->redis);
        b.tries = 0;
        if (n == 0) {
            if (jq_wait(w->q, w->types, w->ntypes, WAIT_MS, err, sizeof err) == JQ_ERR) {
                wk_dep_fail(&w->redis, err);
                wk_backoff_sleep(&b);
            }
            continue;
        }
        for (int i = 0; i < n;) { /* even when stopping: these are in hand */
            const wk_handler *h = wk_handler_find(w->jobs[i].type);
            int k = i + 1;
            if (h && h->many) {
                while (k < n && !strcmp(w->jobs[k].type, w->jobs[i].type)) k++;
                run_many(w, h, &w->jobs[i], k - i);
            } else {
                run_job(w, &w->jobs[i]);
            }
            i = k;
            if (w->npend && wk_mono_us() - w->pend_since_us >= ACK_FLUSH_US) ack_pending(w);
        }
        ack_pending(w);
        for (int i = 0; i < n; i++) jq_job_clear(&w->jobs[i]);
    }
}

int wk_child_main(const cfg *c, int index) {
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    static loop w; /* one per process */
    memset(&w, 0, sizeof w);
    w.c = c;
    w.slot = index;
    char host[256];
    if (gethostname(host, sizeof host)) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(w.worker, sizeof w.worker, "%s:%d", host, (int)getpid());
    wk_dep_init(&w.redis, "worker redis", index);
    wk_dep_init(&w.pg, "worker postgres", index);
    LOG_KV(LOG_INFO, "worker started", LF_I("slot", index), LF_I("pid", getpid()),
           LF_S("worker", w.worker));

    int rc = 1;
    char err[256] = "out of memory";
    if (make_groups(&w)) {
        snprintf(err, sizeof err, "too many job types");
        goto out;
    }
    w.jobs = calloc((size_t)w.cap, sizeof *w.jobs);
    w.pend = calloc((size_t)w.cap, sizeof *w.pend);
    w.db = db_open(c->database_url);
    w.q = jq_open(c->redis_url, err, sizeof err);
    if (!w.jobs || !w.pend || !w.db || !w.q) goto out;
    jq_set_lease_ms(w.q, c->job_lease_ms);

    db_err e;
    if (db_ensure(w.db, &e) == 0)
        wk_dep_ok(&w.pg);
    else
        wk_dep_fail(&w.pg, e.msg);
    redisReply *pong = rds_cmd(jq_rds(w.q), err, sizeof err, "PING");
    if (pong && pong->type == REDIS_REPLY_STATUS)
        wk_dep_ok(&w.redis);
    else
        wk_dep_fail(&w.redis, pong ? "unexpected PING reply" : err);
    if (pong) freeReplyObject(pong);

    w.beat = wk_beat_start(c, w.worker, &w.redis, w.cap, err, sizeof err);
    if (!w.beat) goto out;
    job_loop(&w);
    rc = 0;
out:
    if (rc) LOG_KV(LOG_ERROR, "worker cannot start", LF_S("error", err), LF_I("slot", index));
    wk_beat_stop(w.beat);
    jq_close(w.q);
    db_close(w.db);
    free(w.jobs);
    free(w.pend);
    wk_dep_destroy(&w.redis);
    wk_dep_destroy(&w.pg);
    if (!rc) LOG_KV(LOG_INFO, "worker stopped", LF_I("slot", index), LF_I("pid", getpid()));
    return rc;
}
