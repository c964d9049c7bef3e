/* bench_aggregate.c — GET /v1/usage/aggregate against a loaded database
 * (tests/bench/run-aggregate sets everything up; not a test, never run by
 * ctest).  Prefix ba_.
 *
 * DESIGN — One process, one keep-alive HTTP connection (libcurl) and one
 * PostgreSQL connection (libpq), so the figures are latencies of single
 * requests, not throughput.  It measures:
 *   customer_month_hourly  one customer, one month, hourly, every metric
 *                          (BA_RUNS runs after BA_WARM warm-ups): p50, p99
 *   org_month_hourly       the whole organization, one month, hourly,
 *                          grouped by metric, through the endpoint (median of
 *                          BA_ORG_RUNS), against the equivalent GROUP BY over
 *                          raw usage_events (sum, count and max per metric and
 *                          UTC hour; median of BA_RAW_RUNS) in the same run
 *   org_month_hourly_kolkata  the same month in Asia/Kolkata (+05:30): its
 *                          boundaries are not whole UTC hours, so it reads the
 *                          15-minute rollup (for comparison)
 * Each measurement is one JSON line on stdout; progress goes to stderr.
 *
 * A/B mode (BA_AB_URL=<second base URL>, e.g. a baseline billing-api on the
 * same database): customer_month_hourly alternates request by request
 * between BASE_URL ("a") and BA_AB_URL ("b"), each on its own keep-alive
 * connection, so both see the same machine load; one line per side.  The
 * machine is shared and noisy: only interleaved figures compare.
 * BA_ONLY_CUSTOMER=1 stops after customer_month_hourly.
 *
 * Usage: bench_aggregate BASE_URL TOKEN ORG_ID CUSTOMER_EXTERNAL_ID DB_URL
 */
#include "fmacros.h"
#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static int64_t ba_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int ba_env_int(const char *k, int def) {
    const char *v = getenv(k);
    return v && *v ? atoi(v) : def;
}

static size_t ba_count(char *p, size_t sz, size_t nm, void *arg) {
    (void)p;
    *(size_t *)arg += sz * nm;
    return sz * nm;
}

static int ba_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double ba_pct(int64_t *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, ba_cmp);
    int i = (int)(p * (n - 1) + 0.5);
    return (double)v[i] / 1000.0; /* ms (a report figure, not a quantity) */
}

/* GET url; returns µs, or -1 on failure.  bytes out. */
static int64_t ba_get(CURL *c, const char *url, size_t *bytes) {
    *bytes = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, bytes);
    int64_t t0 = ba_now_us();
    CURLcode rc = curl_easy_perform(c);
    int64_t dt = ba_now_us() - t0;
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) {
        fprintf(stderr, "[bench] GET %s: %s, status %ld\n", url, curl_easy_strerror(rc), status);
        return -1;
    }
    return dt;
}

static int ba_series(CURL *c, const char *url, int warm, int runs, int64_t *v, size_t *bytes) {
    for (int i = 0; i < warm; i++)
        if (ba_get(c, url, bytes) < 0) return -1;
    for (int i = 0; i < runs; i++)
        if ((v[i] = ba_get(c, url, bytes)) < 0) return -1;
    return 0;
}

static CURL *ba_client(struct curl_slist *h) {
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ba_count);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    return c;
}

static void ba_report_customer(const char *side, int64_t *v, int runs, size_t bytes) {
    double p50 = ba_pct(v, runs, 0.50), p99 = ba_pct(v, runs, 0.99);
    printf("{\"bench\":\"customer_month_hourly\",%s%s%s\"runs\":%d,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"min_ms\":%.3f,\"max_ms\":%.3f,\"reply_bytes\":%zu,"
           "\"goal_p50_ms\":5}\n",
           side ? "\"side\":\"" : "", side ? side : "", side ? "\"," : "", runs, p50, p99,
           (double)v[0] / 1000.0, (double)v[runs - 1] / 1000.0, bytes);
    fflush(stdout);
}

/* The same path on two servers, alternating (which one goes first
 * alternates too); va/vb get the latencies. */
static int ba_ab(CURL *ca, CURL *cb, const char *base_a, const char *base_b, const char *path,
                 int warm, int runs, int64_t *va, int64_t *vb, size_t *bytes_a, size_t *bytes_b) {
    char ua[768], ub[768];
    snprintf(ua, sizeof ua, "%s%s", base_a, path);
    snprintf(ub, sizeof ub, "%s%s", base_b, path);
    for (int i = 0; i < warm; i++)
        if (ba_get(ca, ua, bytes_a) < 0 || ba_get(cb, ub, bytes_b) < 0) return -1;
    for (int i = 0; i < runs; i++) {
        if (i % 2) {
            if ((vb[i] = ba_get(cb, ub, bytes_b)) < 0 || (va[i] = ba_get(ca, ua, bytes_a)) < 0)
                return -1;
        } else {
            if ((va[i] = ba_get(ca, ua, bytes_a)) < 0 || (vb[i] = ba_get(cb, ub, bytes_b)) < 0)
                return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s BASE_URL TOKEN ORG_ID CUSTOMER_ID DB_URL\n", argv[0]);
        return 2;
    }
    const char *base = argv[1], *token = argv[2], *org = argv[3], *cust = argv[4];
    int warm = ba_env_int("BA_WARM", 20), runs = ba_env_int("BA_RUNS", 300);
    int org_runs = ba_env_int("BA_ORG_RUNS", 7), raw_runs = ba_env_int("BA_RAW_RUNS", 3);
    if (runs < 1 || org_runs < 1 || raw_runs < 1) return 2;
    const char *ab = getenv("BA_AB_URL");
    if (ab && !*ab) ab = NULL;
    bool only_customer = ba_env_int("BA_ONLY_CUSTOMER", 0) != 0;
    int maxn = runs > org_runs ? runs : org_runs;
    int64_t *v = calloc((size_t)maxn, sizeof *v);
    int64_t *vb = calloc((size_t)maxn, sizeof *vb);
    if (!v || !vb || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) return 1;
    char auth[256];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    if (!h) return 1;
    CURL *c = ba_client(h), *cb = ab ? ba_client(h) : NULL;
    if (!c || (ab && !cb)) return 1;
    char url[512], path[512];
    size_t bytes = 0, bytes_b = 0;
    int rc = 1;

    /* (a) one customer-month, hourly, every metric */
    snprintf(path, sizeof path,
             "/v1/usage/aggregate?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z"
             "&granularity=hour&customer_id=%s",
             cust);
    snprintf(url, sizeof url, "%s%s", base, path);
    fprintf(stderr, "[bench] customer-month hourly: %d warm-ups, %d runs%s\n", warm, runs,
            ab ? " (A/B, interleaved)" : "");
    if (ab) {
        if (ba_ab(c, cb, base, ab, path, warm, runs, v, vb, &bytes, &bytes_b)) goto out;
        ba_report_customer("a", v, runs, bytes);
        ba_report_customer("b", vb, runs, bytes_b);
    } else {
        if (ba_series(c, url, warm, runs, v, &bytes)) goto out;
        ba_report_customer(NULL, v, runs, bytes);
    }
    if (only_customer) {
        rc = 0;
        goto out;
    }

    /* (b) the whole organization's month, hourly, through the endpoint */
    snprintf(url, sizeof url,
             "%s/v1/usage/aggregate?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z"
             "&granularity=hour",
             base);
    fprintf(stderr, "[bench] organization-month hourly: %d runs\n", org_runs);
    if (ba_series(c, url, 1, org_runs, v, &bytes)) goto out;
    double api_ms = ba_pct(v, org_runs, 0.5);
    size_t api_bytes = bytes;

    /* ... and the equivalent GROUP BY over the raw events */
    PGconn *pg = PQconnectdb(argv[5]);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "[bench] %s", PQerrorMessage(pg));
        PQfinish(pg);
        goto out;
    }
    static const char raw_sql[] =
        "SELECT date_trunc('hour', occurred_at), metric_id, sum(quantity), count(*),"
        "       max(quantity)"
        "  FROM usage_events"
        " WHERE org_id = $1::bigint AND occurred_at >= '2026-10-01T00:00:00Z'"
        "   AND occurred_at < '2026-11-01T00:00:00Z'"
        " GROUP BY 1, 2";
    const char *params[1] = {org};
    int raw_rows = 0;
    fprintf(stderr, "[bench] raw GROUP BY: %d runs\n", raw_runs);
    int64_t raw[16];
    if (raw_runs > 16) raw_runs = 16;
    for (int i = 0; i < raw_runs; i++) {
        int64_t t0 = ba_now_us();
        PGresult *r = PQexecParams(pg, raw_sql, 1, NULL, params, NULL, NULL, 0);
        raw[i] = ba_now_us() - t0;
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "[bench] raw query: %s", PQerrorMessage(pg));
            PQclear(r);
            PQfinish(pg);
            goto out;
        }
        raw_rows = PQntuples(r);
        PQclear(r);
    }
    PQfinish(pg);
    double raw_ms = ba_pct(raw, raw_runs, 0.5);
    printf("{\"bench\":\"org_month_hourly\",\"api_runs\":%d,\"api_median_ms\":%.3f,"
           "\"api_reply_bytes\":%zu,\"raw_runs\":%d,\"raw_group_by_median_ms\":%.3f,"
           "\"raw_rows\":%d,\"speedup\":%.1f,\"goal_speedup\":20}\n",
           org_runs, api_ms, api_bytes, raw_runs, raw_ms, raw_rows, raw_ms / api_ms);
    fflush(stdout);

    /* (c) for comparison: a zone whose boundaries are not whole UTC hours */
    snprintf(url, sizeof url,
             "%s/v1/usage/aggregate?from=2026-09-30T18:30:00Z&to=2026-10-31T18:30:00Z"
             "&granularity=hour&tz=Asia/Kolkata",
             base);
    if (ba_series(c, url, 1, org_runs, v, &bytes)) goto out;
    printf("{\"bench\":\"org_month_hourly_kolkata\",\"rollup\":\"15min\",\"runs\":%d,"
           "\"api_median_ms\":%.3f,\"speedup_vs_raw_utc\":%.1f}\n",
           org_runs, ba_pct(v, org_runs, 0.5), raw_ms / ba_pct(v, org_runs, 0.5));
    fflush(stdout);
    rc = 0;
out:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (cb) curl_easy_cleanup(cb);
    curl_global_cleanup();
    free(v);
    free(vb);
    return rc;
}
