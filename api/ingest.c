/* ingest.c — the usage batcher.  See ingest.h. */
#include "fmacros.h"
#include "ingest.h"
#include "log.h"
#include "ts.h"
#include <pthread.h>
#include <stdlib.h>

#define INGEST_JOB_EVENTS 10000
#define INGEST_JOB_BYTES  (4u << 20)
#define INGEST_MAX_QUEUED 200000

typedef struct item {
    api_req *r;
    long long org;
    char *rows;
    size_t len, n;
    int64_t min_us, max_us;
    int job; /* index into the flush's jobs */
    struct item *next;
} item;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item *head, *tail;
    size_t queued; /* events */
    bool stop, started;
    pthread_t th;
    jq *q;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

char *api_ingest_payload(const char *rows, size_t len, int64_t min_us, int64_t max_us) {
    char a[TS_FMT_MAX], b[TS_FMT_MAX];
    if (ts_format(min_us, a, sizeof a) < 0 || ts_format(max_us, b, sizeof b) < 0) return NULL;
    json_t *o = json_pack("{s:i, s:s, s:s, s:s%}", "v", 1, "min", a, "max", b, "rows", rows, len);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static void reply_fail(item *it, const char *why) {
    api_header(it->r, "Retry-After", "1");
    api_err(it->r, 503, "unavailable", "usage not accepted: %s", why);
}

/* Enqueues the items (one org-merged job per run of items) and answers them. */
static void flush(item *list) {
    size_t nitems = 0;
    for (item *it = list; it; it = it->next) nitems++;
    jq_new *jobs = calloc(nitems, sizeof *jobs);
    char **payloads = calloc(nitems, sizeof *payloads);
    int njobs = 0;
    bool oom = !jobs || !payloads;
    /* Merge consecutive items of one org (arrival order kept per org). */
    for (item *it = list; it && !oom;) {
        long long org = it->org;
        buf rows;
        buf_init(&rows);
        size_t events = 0;
        int64_t mn = it->min_us, mx = it->max_us;
        item *start = it;
        while (it && it->org == org &&
               (it == start ||
                (events + it->n <= INGEST_JOB_EVENTS && rows.len + it->len <= INGEST_JOB_BYTES))) {
            buf_add(&rows, it->rows, it->len);
            events += it->n;
            if (it->min_us < mn) mn = it->min_us;
            if (it->max_us > mx) mx = it->max_us;
            it->job = njobs;
            it = it->next;
        }
        char *p = rows.oom ? NULL : api_ingest_payload(rows.p ? rows.p : "", rows.len, mn, mx);
        buf_free(&rows);
        if (!p) {
            oom = true;
            break;
        }
        payloads[njobs] = p;
        jobs[njobs] = (jq_new){
            .type = API_INGEST_TYPE,
            .org = org,
            .payload = p,
            .opts = {.max_attempts = API_INGEST_MAX_ATTEMPTS, .keep_ms = API_INGEST_KEEP_MS}};
        njobs++;
    }
    char err[256] = "out of memory";
    int rc = oom ? JQ_ERR : jq_enqueue_many(g.q, jobs, (size_t)njobs, err, sizeof err);
    if (rc != JQ_OK) LOG_KV(LOG_WARN, "usage enqueue failed", LF_S("error", err));
    for (item *it = list; it;) {
        item *next = it->next;
        if (rc == JQ_OK) {
            api_json(
                it->r, 202,
                json_pack("{s:I, s:s}", "accepted", (json_int_t)it->n, "job_id", jobs[it->job].id));
        } else {
            reply_fail(it, oom ? "out of memory" : "the job queue is unreachable");
        }
        api_complete(it->r);
        free(it->rows);
        free(it);
        it = next;
    }
    for (int i = 0; i < njobs; i++) free(payloads[i]);
    free(payloads);
    free(jobs);
}

static void *flusher(void *arg) {
    ML_UNUSED(arg);
    for (;;) {
        pthread_mutex_lock(&g.mu);
        while (!g.head && !g.stop) pthread_cond_wait(&g.cv, &g.mu);
        item *list = g.head;
        g.head = g.tail = NULL;
        g.queued = 0;
        bool stop = g.stop;
        pthread_mutex_unlock(&g.mu);
        if (list)
            flush(list);
        else if (stop)
            break;
    }
    return NULL;
}

int api_ingest_start(const cfg *c, char *err, size_t errlen) {
    g.q = jq_open(c->redis_url, err, errlen);
    if (!g.q) return -1;
    g.stop = false;
    if (pthread_create(&g.th, NULL, flusher, NULL)) {
        snprintf(err, errlen, "cannot start the usage flusher thread");
        jq_close(g.q);
        g.q = NULL;
        return -1;
    }
    g.started = true;
    return 0;
}

void api_ingest_stop(void) {
    if (!g.started) return;
    pthread_mutex_lock(&g.mu);
    g.stop = true;
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_join(g.th, NULL);
    jq_close(g.q);
    g.q = NULL;
    g.started = false;
}

void api_ingest_submit(api_req *r, long long org, char *rows, size_t len, size_t n, int64_t min_us,
                       int64_t max_us) {
    api_pending(r);
    item *it = calloc(1, sizeof *it);
    pthread_mutex_lock(&g.mu);
    bool refuse = !it || !g.started || g.stop || g.queued + n > INGEST_MAX_QUEUED;
    if (!refuse) {
        *it = (item){.r = r,
                     .org = org,
                     .rows = rows,
                     .len = len,
                     .n = n,
                     .min_us = min_us,
                     .max_us = max_us};
        if (g.tail)
            g.tail->next = it;
        else
            g.head = it;
        g.tail = it;
        g.queued += n;
        pthread_cond_signal(&g.cv);
    }
    pthread_mutex_unlock(&g.mu);
    if (refuse) {
        free(it);
        free(rows);
        api_header(r, "Retry-After", "1");
        api_err(r, 503, "unavailable", "too much usage waiting for the job queue; retry shortly");
        api_complete(r);
    }
}
