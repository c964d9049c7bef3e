/* metrics.c — Prometheus counters for billing-api.
 *
 * DESIGN — Fixed-size arrays of relaxed atomics indexed by route (the route
 * table index; one extra slot for "unmatched") × status code slot × latency
 * bucket, allocated once at start-up.  Observing is lock-free and allocation-
 * free on every thread; rendering reads the atomics without stopping anyone,
 * so a scrape may see a request counted in one series and not yet in another.
 *
 * Job-queue figures live in Redis, and /metrics runs on the event loop where
 * nothing may wait on Redis.  So the health thread (server.c) takes jq_stats
 * about once a second and hands the JSON to api_metrics_set_queue, which
 * renders the Prometheus lines right there and swaps the finished text in
 * under a mutex; a scrape holds that mutex only to copy the text.  Gauges
 * (meterline_queue_jobs{type,state}) and counters
 * (meterline_queue_jobs_total{type,outcome}) therefore lag by up to a second
 * plus one health tick; meterline_queue_snapshot_age_seconds says by how
 * much, and grows while Redis is down (the last snapshot is kept).
 */
#include "fmacros.h"
#include "api.h"
#include "ts.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

static const int k_codes[] = {200, 201, 202, 204, 304, 400, 401, 403, 404, 405,
                              409, 413, 415, 422, 429, 499, 500, 503, 0 /* other */};
#define NCODES ((int)ML_ARRAY_LEN(k_codes))
/* latency bucket upper bounds in microseconds */
static const long long k_le_us[] = {500,    1000,   2500,   5000,    10000,   25000,   50000,
                                    100000, 250000, 500000, 1000000, 2500000, 10000000};
#define NBUCKETS ((int)ML_ARRAY_LEN(k_le_us))

typedef struct route_stats {
    atomic_llong count[NCODES];
    atomic_llong bucket[NBUCKETS]; /* non-cumulative; summed when rendered */
    atomic_llong sum_us;
    atomic_llong total;
} route_stats;

static route_stats *g_stats;
static size_t g_nroutes;

/* job-queue snapshot: rendered text and when it was taken (0 = never) */
static pthread_mutex_t g_queue_mu = PTHREAD_MUTEX_INITIALIZER;
static char *g_queue_text;
static size_t g_queue_len;
static int64_t g_queue_at_us;
static void render_queue(buf *b);

int api_metrics_init(size_t nroutes) {
    g_nroutes = nroutes;
    g_stats = calloc(nroutes + 1, sizeof *g_stats);
    return g_stats ? 0 : -1;
}

void api_metrics_observe(int route_idx, int status, int64_t dur_us) {
    if (!g_stats || route_idx < 0 || (size_t)route_idx > g_nroutes) return;
    route_stats *st = &g_stats[route_idx];
    int c = NCODES - 1;
    for (int i = 0; i < NCODES - 1; i++)
        if (k_codes[i] == status) c = i;
    atomic_fetch_add_explicit(&st->count[c], 1, memory_order_relaxed);
    for (int b = 0; b < NBUCKETS; b++) {
        if (dur_us <= k_le_us[b]) {
            atomic_fetch_add_explicit(&st->bucket[b], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&st->sum_us, dur_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->total, 1, memory_order_relaxed);
}

static const char *route_label(size_t i) {
    return i < g_nroutes ? api_routes[i].name : "unmatched";
}

void api_metrics_render(buf *b, const api_server *s) {
    buf_adds(b, "# HELP meterline_http_requests_total HTTP requests by route and status code.\n"
                "# TYPE meterline_http_requests_total counter\n");
    for (size_t i = 0; g_stats && i <= g_nroutes; i++) {
        for (int c = 0; c < NCODES; c++) {
            long long v = atomic_load_explicit(&g_stats[i].count[c], memory_order_relaxed);
            if (!v) continue;
            if (k_codes[c])
                buf_printf(b, "meterline_http_requests_total{route=\"%s\",code=\"%d\"} %lld\n",
                           route_label(i), k_codes[c], v);
            else
                buf_printf(b, "meterline_http_requests_total{route=\"%s\",code=\"other\"} %lld\n",
                           route_label(i), v);
        }
    }
    buf_adds(b, "# HELP meterline_http_request_duration_seconds Time from request parsed to "
                "reply handed to the socket.\n"
                "# TYPE meterline_http_request_duration_seconds histogram\n");
    for (size_t i = 0; g_stats && i <= g_nroutes; i++) {
        long long total = atomic_load_explicit(&g_stats[i].total, memory_order_relaxed);
        if (!total) continue;
        long long cum = 0;
        const char *name = route_label(i);
        for (int k = 0; k < NBUCKETS; k++) {
            cum += atomic_load_explicit(&g_stats[i].bucket[k], memory_order_relaxed);
            long long us = k_le_us[k];
            buf_printf(b,
                       "meterline_http_request_duration_seconds_bucket{route=\"%s\",le=\"%lld.%"
                       "06lld\"} %lld\n",
                       name, us / 1000000, us % 1000000, cum);
        }
        buf_printf(
            b, "meterline_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %lld\n",
            name, total);
        long long sum = atomic_load_explicit(&g_stats[i].sum_us, memory_order_relaxed);
        buf_printf(b, "meterline_http_request_duration_seconds_sum{route=\"%s\"} %lld.%06lld\n",
                   name, sum / 1000000, sum % 1000000);
        buf_printf(b, "meterline_http_request_duration_seconds_count{route=\"%s\"} %lld\n", name,
                   total);
    }
    buf_printf(b,
               "# HELP meterline_db_pool_in_use Database threads busy with a request.\n"
               "# TYPE meterline_db_pool_in_use gauge\n"
               "meterline_db_pool_in_use %d\n"
               "# HELP meterline_db_pool_size Database threads (one connection each).\n"
               "# TYPE meterline_db_pool_size gauge\n"
               "meterline_db_pool_size %d\n",
               api_server_db_busy(s), api_server_db_threads(s));
    const api_health *h = api_server_health(s);
    buf_printf(b,
               "# HELP meterline_dependency_up 1 when the dependency answered its last check.\n"
               "# TYPE meterline_dependency_up gauge\n"
               "meterline_dependency_up{dependency=\"postgres\"} %d\n"
               "meterline_dependency_up{dependency=\"redis\"} %d\n",
               atomic_load(&h->pg_ok) ? 1 : 0, atomic_load(&h->redis_ok) ? 1 : 0);
    render_queue(b);
}

/* ---- job-queue snapshot ------------------------------------------------- */

/* A label value with Prometheus escaping (\\, \", \n). */
static void prom_label(buf *b, const char *v) {
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            buf_adds(b, "\\\\");
        else if (*p == '"')
            buf_adds(b, "\\\"");
        else if (*p == '\n')
            buf_adds(b, "\\n");
        else
            buf_addc(b, *p);
    }
}

static const char *const k_queue_states[] = {"queued", "active", "delayed", "dead"};
static const char *const k_queue_outcomes[] = {"succeeded", "failed", "retried", "dead"};

int api_metrics_set_queue(const char *stats_json, int64_t at_us) {
    json_t *o = stats_json ? json_loads(stats_json, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    buf b;
    buf_init(&b);
    buf_adds(&b, "# HELP meterline_queue_jobs Jobs in the queue by type and state (snapshot).\n"
                 "# TYPE meterline_queue_jobs gauge\n");
    const char *type;
    json_t *t;
    json_object_foreach(o, type, t) {
        for (size_t i = 0; i < ML_ARRAY_LEN(k_queue_states); i++) {
            buf_adds(&b, "meterline_queue_jobs{type=\"");
            prom_label(&b, type);
            buf_printf(&b, "\",state=\"%s\"} %lld\n", k_queue_states[i],
                       (long long)json_integer_value(json_object_get(t, k_queue_states[i])));
        }
    }
    buf_adds(&b, "# HELP meterline_queue_jobs_total Job attempts by type and outcome: succeeded, "
                 "failed (any failed attempt), retried (a failure scheduled for retry), dead.\n"
                 "# TYPE meterline_queue_jobs_total counter\n");
    json_object_foreach(o, type, t) {
        for (size_t i = 0; i < ML_ARRAY_LEN(k_queue_outcomes); i++) {
            char key[32];
            snprintf(key, sizeof key, "%s_total", k_queue_outcomes[i]);
            buf_adds(&b, "meterline_queue_jobs_total{type=\"");
            prom_label(&b, type);
            buf_printf(&b, "\",outcome=\"%s\"} %lld\n", k_queue_outcomes[i],
                       (long long)json_integer_value(json_object_get(t, key)));
        }
    }
    json_decref(o);
    size_t len = 0;
    char *text = buf_steal(&b, &len); /* NULL if an append ran out of memory */
    if (!text) return -1;
    pthread_mutex_lock(&g_queue_mu);
    char *old = g_queue_text;
    g_queue_text = text;
    g_queue_len = len;
    g_queue_at_us = at_us;
    pthread_mutex_unlock(&g_queue_mu);
    free(old);
    return 0;
}

static void render_queue(buf *b) {
    pthread_mutex_lock(&g_queue_mu);
    int64_t at = g_queue_at_us;
    if (g_queue_text) buf_add(b, g_queue_text, g_queue_len);
    pthread_mutex_unlock(&g_queue_mu);
    if (!at) return; /* no snapshot yet: no queue series at all */
    int64_t age = ts_now() - at;
    if (age < 0) age = 0;
    buf_printf(b,
               "# HELP meterline_queue_snapshot_age_seconds Age of the queue figures above.\n"
               "# TYPE meterline_queue_snapshot_age_seconds gauge\n"
               "meterline_queue_snapshot_age_seconds %lld.%06lld\n",
               (long long)(age / 1000000), (long long)(age % 1000000));
}
