/* bench_queue.c — throughput and latency of the job queue (queue/jq) with
 * no-op jobs.  A benchmark, not a test: tests/bench/run-queue drives it
 * against a throw-away Redis; ctest never runs it.
 *
 *   bench_queue enqueue --jobs N [--batch B]        enqueue_jobs_per_s
 *   bench_queue drain   --jobs N [--timeout-s S]    processed_jobs_per_s (the
 *                       jobs are run by billing-worker or `consume`; this
 *                       only watches jq_stats) and checks nothing was lost
 *                       or run twice
 *   bench_queue latency [--interval-us U] [--seconds S]
 *                       one job every U µs (payload {"t0_us":…}, taken just
 *                       before jq_enqueue); enqueue→start from the
 *                       "started_us" the consumer writes into the result
 *   bench_queue probe   exit 0 if the consumer's noop results carry
 *                       started_us, 1 if not, 2 if nothing ran the job
 *   bench_queue consume [--procs P] [--batch B]
 *                       a reference consumer with exactly the worker's
 *                       primitives: jq_reserve a batch, run it, jq_ack_many,
 *                       jq_wait when idle; until SIGTERM
 *
 * Common options: --redis URL (default $BILLING_REDIS_URL), --type T (noop),
 * --workers N, --run K and --label K=V (copied into every JSON line).  One JSON object
 * per line on stdout; diagnostics on stderr.
 *
 * DESIGN — Processed rate is measured over the window between the first poll
 * that sees a finished job and the poll that sees the last one (10 ms polls),
 * so consumer start-up is not counted; the error is at most 2 polls.
 */
#include "fmacros.h"
#include "jq.h"
#include "ts.h"
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *g_redis;
static const char *g_type = "noop";
static int g_workers = -1;
static int g_run = 0;       /* --run N: which repetition (0 = not said) */
static char g_labels[1024]; /* ,"k":"v" pairs for every JSON line */
static volatile sig_atomic_t g_stop;

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_queue: %s: %s\n", what, err);
    exit(1);
}

static void msleep(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void emit(const char *metric, double value, long long jobs, const char *extra) {
    printf("{\"bench\":\"queue\",\"system\":\"meterline\"");
    if (g_workers >= 0) printf(",\"workers\":%d", g_workers);
    printf(",\"metric\":\"%s\",\"value\":%.*f,\"jobs\":%lld", metric, value >= 100 ? 0 : 1, value,
           jobs);
    if (g_run > 0) printf(",\"run\":%d", g_run);
    printf("%s%s}\n", g_labels, extra ? extra : "");
    fflush(stdout);
}

static jq *open_q(void) {
    char err[256];
    jq *q = jq_open(g_redis, err, sizeof err);
    if (!q) die("jq_open", err);
    return q;
}

/* one counter of jq_stats for g_type (0 if the type is unknown yet) */
static long long stat_of(jq *q, const char *name) {
    char *s = NULL, err[256];
    if (jq_stats(q, &s, err, sizeof err) != JQ_OK) die("jq_stats", err);
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    long long v = json_integer_value(json_object_get(json_object_get(j, g_type), name));
    json_decref(j);
    return v;
}

/* ------------------------------------------------------------- enqueue */

static int cmd_enqueue(long long njobs, int batch) {
    jq *q = open_q();
    char err[256];
    jq_new *b = calloc((size_t)batch, sizeof *b);
    if (!b) die("enqueue", "out of memory");
    for (int i = 0; i < batch; i++) {
        b[i].type = g_type;
        b[i].payload = "{}";
        /* like the BullMQ side's removeOnComplete: nothing kept once done */
        b[i].opts.keep_ms = JQ_REMOVE_ON_SUCCESS;
    }
    /* the scripts load on first use: keep that out of the timing */
    if (jq_stats(q, &(char *){NULL}, err, sizeof err) != JQ_OK) die("jq_stats", err);
    double t0 = mono_s();
    for (long long done = 0; done < njobs;) {
        int n = njobs - done < batch ? (int)(njobs - done) : batch;
        if (jq_enqueue_many(q, b, (size_t)n, err, sizeof err) != JQ_OK) die("jq_enqueue_many", err);
        done += n;
    }
    double dt = mono_s() - t0;
    char extra[64];
    snprintf(extra, sizeof extra, ",\"batch\":%d,\"seconds\":%.3f", batch, dt);
    emit("enqueue_jobs_per_s", (double)njobs / dt, njobs, extra);
    free(b);
    jq_close(q);
    return 0;
}

/* --------------------------------------------------------------- drain */

static int cmd_drain(long long njobs, int timeout_s) {
    jq *q = open_q();
    double deadline = mono_s() + timeout_s;
    long long c0 = -1, c = 0;
    double t0 = 0, t1 = 0;
    for (;;) {
        c = stat_of(q, "succeeded_total");
        double now = mono_s();
        if (c0 < 0 && c > 0) {
            c0 = c;
            t0 = now;
        }
        if (c >= njobs) {
            t1 = now;
            break;
        }
        if (now > deadline) {
            fprintf(stderr, "bench_queue drain: timed out with %lld of %lld jobs done\n", c, njobs);
            return 1;
        }
        msleep(10);
    }
    /* at-least-once bookkeeping after the run: nothing queued, active,
     * delayed or dead, no lease left, and every job succeeded exactly once
     * (a re-run would push succeeded_total past njobs) */
    msleep(50);
    long long succ = stat_of(q, "succeeded_total"), queued = stat_of(q, "queued"),
              active = stat_of(q, "active"), delayed = stat_of(q, "delayed"),
              dead = stat_of(q, "dead"), retried = stat_of(q, "retried_total");
    char err[256];
    redisReply *r = rds_cmd(jq_rds(q), err, sizeof err, "ZCARD bq:{billing}:leases");
    if (!r) die("ZCARD", err);
    long long leases = r->integer;
    freeReplyObject(r);
    bool ok = succ == njobs && queued == 0 && active == 0 && delayed == 0 && dead == 0 &&
              retried == 0 && leases == 0;
    double rate = t1 > t0 ? (double)(c - c0) / (t1 - t0) : 0;
    char extra[320];
    snprintf(extra, sizeof extra,
             ",\"seconds\":%.3f,\"check\":\"%s\",\"succeeded_total\":%lld,\"queued\":%lld,"
             "\"active\":%lld,\"delayed\":%lld,\"dead\":%lld,\"retried_total\":%lld,"
             "\"leases\":%lld",
             t1 - t0, ok ? "ok" : "FAILED", succ, queued, active, delayed, dead, retried, leases);
    emit("processed_jobs_per_s", rate, njobs, extra);
    jq_close(q);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------- latency */

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static long long pct(const long long *v, size_t n, double p) {
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999); /* nearest rank */
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

/* started_us from a finished job's result; -1 if missing, -2 if not done */
static long long started_us_of(jq *q, const char *id) {
    char *s = NULL, err[256];
    int rc = jq_get(q, id, &s, err, sizeof err);
    if (rc != JQ_OK) return -2;
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    const char *st = json_string_value(json_object_get(j, "state"));
    long long v = -2;
    if (st && !strcmp(st, "succeeded")) {
        json_t *su = json_object_get(json_object_get(j, "result"), "started_us");
        v = json_is_integer(su) ? json_integer_value(su) : -1;
    }
    json_decref(j);
    return v;
}

static int cmd_latency(long interval_us, double seconds, const char *consumer) {
    jq *q = open_q();
    char err[256];
    size_t n = (size_t)(seconds * 1e6 / (double)interval_us);
    if (n < 1) n = 1;
    char(*ids)[JQ_ID_MAX] = calloc(n, JQ_ID_MAX);
    long long *t0 = calloc(n, sizeof *t0), *lat = calloc(n, sizeof *lat);
    if (!ids || !t0 || !lat) die("latency", "out of memory");
    if (jq_stats(q, &(char *){NULL}, err, sizeof err) != JQ_OK) die("jq_stats", err);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (size_t i = 0; i < n; i++) {
        char payload[64];
        t0[i] = ts_now();
        snprintf(payload, sizeof payload, "{\"t0_us\":%lld}", t0[i]);
        if (jq_enqueue(q, g_type, 0, payload, NULL, ids[i], NULL, err, sizeof err) != JQ_OK)
            die("jq_enqueue", err);
        next.tv_nsec += interval_us * 1000L;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
        }
    }
    size_t got = 0;
    double deadline = mono_s() + 30;
    for (size_t i = 0; i < n; i++) {
        long long s;
        while ((s = started_us_of(q, ids[i])) == -2 && mono_s() < deadline) msleep(5);
        if (s == -1) {
            fprintf(stderr, "bench_queue latency: job %s has no started_us in its result\n",
                    ids[i]);
            return 2;
        }
        if (s < 0) {
            fprintf(stderr, "bench_queue latency: job %s did not finish\n", ids[i]);
            return 1;
        }
        lat[got++] = s - t0[i];
    }
    qsort(lat, got, sizeof *lat, cmp_ll);
    char extra[512];
    snprintf(extra, sizeof extra, ",\"interval_us\":%ld,\"consumer\":\"%s\"", interval_us,
             consumer);
    emit("latency_us_p50", (double)pct(lat, got, 50), (long long)got, extra);
    emit("latency_us_p90", (double)pct(lat, got, 90), (long long)got, extra);
    emit("latency_us_p99", (double)pct(lat, got, 99), (long long)got, extra);
    emit("latency_us_max", (double)lat[got - 1], (long long)got, extra);
    free(ids);
    free(t0);
    free(lat);
    jq_close(q);
    return 0;
}

static int cmd_probe(int timeout_s) {
    jq *q = open_q();
    char err[256], id[JQ_ID_MAX];
    char payload[64];
    snprintf(payload, sizeof payload, "{\"t0_us\":%lld}", (long long)ts_now());
    if (jq_enqueue(q, g_type, 0, payload, NULL, id, NULL, err, sizeof err) != JQ_OK)
        die("jq_enqueue", err);
    double deadline = mono_s() + timeout_s;
    long long s;
    while ((s = started_us_of(q, id)) == -2 && mono_s() < deadline) msleep(10);
    jq_close(q);
    return s >= 0 ? 0 : s == -1 ? 1 : 2;
}

/* ------------------------------------------------------------- consume */

static void on_term(int sig) {
    (void)sig;
    g_stop = 1;
}

static int consume_one(int slot, int batch) {
    jq *q = open_q();
    char err[256], worker[128], host[64] = "bench";
    gethostname(host, sizeof host - 1);
    snprintf(worker, sizeof worker, "%s:%d:bench%d", host, (int)getpid(), slot);
    const char *types[] = {g_type};
    jq_job *jobs = calloc((size_t)batch, sizeof *jobs);
    const char **ids = calloc((size_t)batch, sizeof *ids);
    const char **res = calloc((size_t)batch, sizeof *res);
    char(*rbuf)[48] = calloc((size_t)batch, 48);
    int *st = calloc((size_t)batch, sizeof *st);
    if (!jobs || !ids || !res || !rbuf || !st) die("consume", "out of memory");
    while (!g_stop) {
        int n = jq_reserve(q, types, 1, worker, jobs, batch, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "bench_queue consume: %s\n", err);
            msleep(100);
            continue;
        }
        if (n == 0) {
            if (jq_wait(q, types, 1, 1000, err, sizeof err) == JQ_ERR) msleep(100);
            continue;
        }
        for (int i = 0; i < n; i++) {
            /* the no-op handler: note when it started */
            snprintf(rbuf[i], 48, "{\"started_us\":%lld}", (long long)ts_now());
            ids[i] = jobs[i].id;
            res[i] = rbuf[i];
        }
        if (jq_ack_many(q, worker, ids, res, (size_t)n, st, err, sizeof err) != JQ_OK)
            fprintf(stderr, "bench_queue consume: ack: %s\n", err);
        for (int i = 0; i < n; i++) jq_job_clear(&jobs[i]);
    }
    jq_close(q);
    return 0;
}

static int cmd_consume(int procs, int batch) {
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pid_t kids[256];
    if (procs < 1 || procs > 256) die("consume", "--procs 1..256");
    for (int i = 0; i < procs; i++) {
        kids[i] = fork();
        if (kids[i] == 0) _exit(consume_one(i, batch));
        if (kids[i] < 0) die("fork", strerror(errno));
    }
    while (!g_stop) pause();
    for (int i = 0; i < procs; i++) kill(kids[i], SIGTERM);
    for (int i = 0; i < procs; i++) waitpid(kids[i], NULL, 0);
    return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
    fprintf(stderr,
            "usage: bench_queue enqueue|drain|latency|probe|consume [options]\n"
            "  --redis URL --type T --workers N --label K=V --jobs N --batch B\n"
            "  --timeout-s S --interval-us U --seconds S --procs P --consumer NAME --run K\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *cmd = argv[1];
    long long jobs = 200000;
    int batch = 1000, timeout_s = 120, procs = 1;
    long interval_us = 5000;
    double seconds = 5;
    const char *consumer = "billing-worker";
    g_redis = getenv("BILLING_REDIS_URL");
    static const struct option opts[] = {{"redis", 1, 0, 'r'},
                                         {"type", 1, 0, 't'},
                                         {"workers", 1, 0, 'w'},
                                         {"label", 1, 0, 'l'},
                                         {"jobs", 1, 0, 'n'},
                                         {"batch", 1, 0, 'b'},
                                         {"timeout-s", 1, 0, 'T'},
                                         {"interval-us", 1, 0, 'i'},
                                         {"seconds", 1, 0, 's'},
                                         {"procs", 1, 0, 'p'},
                                         {"consumer", 1, 0, 'c'},
                                         {"run", 1, 0, 'R'},
                                         {0, 0, 0, 0}};
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'r':
            g_redis = optarg;
            break;
        case 't':
            g_type = optarg;
            break;
        case 'w':
            g_workers = atoi(optarg);
            break;
        case 'l': {
            const char *eq = strchr(optarg, '=');
            if (!eq) usage();
            size_t len = strlen(g_labels);
            snprintf(g_labels + len, sizeof g_labels - len, ",\"%.*s\":\"%s\"", (int)(eq - optarg),
                     optarg, eq + 1);
            break;
        }
        case 'n':
            jobs = atoll(optarg);
            break;
        case 'b':
            batch = atoi(optarg);
            break;
        case 'T':
            timeout_s = atoi(optarg);
            break;
        case 'i':
            interval_us = atol(optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'p':
            procs = atoi(optarg);
            break;
        case 'c':
            consumer = optarg;
            break;
        case 'R':
            g_run = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (optind != argc || !g_redis || jobs < 1 || batch < 1 || batch > 100000 || interval_us < 1)
        usage();
    if (!strcmp(cmd, "enqueue")) return cmd_enqueue(jobs, batch);
    if (!strcmp(cmd, "drain")) return cmd_drain(jobs, timeout_s);
    if (!strcmp(cmd, "latency")) return cmd_latency(interval_us, seconds, consumer);
    if (!strcmp(cmd, "probe")) return cmd_probe(timeout_s);
    if (!strcmp(cmd, "consume")) return cmd_consume(procs, batch);
    usage();
    return 2;
}
