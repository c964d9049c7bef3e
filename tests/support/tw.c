/* tw.c — billing-worker test harness.  See tw.h. */
#include "fmacros.h"
#include "tw.h"
#include "th.h"
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_POOLS 8
static pid_t g_pools[MAX_POOLS];

void tw_msleep(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int tw_wait_lines(const char *path, const char *const *needles, int want, int max_ms) {
    int n = 0;
    for (int t = 0; t <= max_ms; t += 50) {
        n = th_count_lines(path, needles);
        if (n >= want) break;
        tw_msleep(50);
    }
    return n;
}

static pid_t ppid_of(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* pid (comm) state ppid ... — comm may hold spaces and parens */
    const char *p = strrchr(buf, ')');
    int ppid;
    char st;
    if (!p || sscanf(p + 1, " %c %d", &st, &ppid) != 2) return -1;
    return st == 'Z' ? -1 : (pid_t)ppid;
}

static int children_of(pid_t parent, pid_t *out, int max) {
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        if (ppid_of((pid_t)pid) == parent) out[n++] = (pid_t)pid;
    }
    closedir(d);
    return n;
}

int tw_children(const tw_pool *p, pid_t *out, int max) { return children_of(p->pid, out, max); }

tw_pool *tw_start(int workers, const char *const *env) {
    cr_assert(getenv("BILLING_DATABASE_URL") && getenv("BILLING_REDIS_URL"),
              "run integration tests through scripts/test");
    tw_pool *p = calloc(1, sizeof *p);
    cr_assert(p);
    static int seq;
    const char *dir = getenv("ML_ARTIFACTS") ? getenv("ML_ARTIFACTS") : "/tmp";
    snprintf(p->log, sizeof p->log, "%s/billing-worker-%d-%d.log", dir, (int)getpid(), seq++);
    char nw[16];
    snprintf(nw, sizeof nw, "%d", workers);
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* the test process dying (a failed assert) stops the pool */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(125);
        if (!freopen(p->log, "w", stderr)) _exit(126);
        setenv("BILLING_WORKERS", nw, 1);
        for (const char *const *e = env; e && *e; e++) putenv((char *)*e);
        execl(th_worker_bin(), "billing-worker", (char *)NULL);
        _exit(127);
    }
    p->pid = pid;
    for (int i = 0; i < MAX_POOLS; i++)
        if (!g_pools[i]) {
            g_pools[i] = pid;
            break;
        }
    static const char *const up[] = {"\"msg\":\"worker redis\"", "\"state\":\"up\"", NULL};
    cr_assert_geq(tw_wait_lines(p->log, up, workers, 15000), workers,
                  "%d worker processes reach Redis (log %s)", workers, p->log);
    return p;
}

static void forget(pid_t pid) {
    for (int i = 0; i < MAX_POOLS; i++)
        if (g_pools[i] == pid) g_pools[i] = 0;
}

int tw_stop(tw_pool *p, int max_ms) {
    if (!p) return -1;
    cr_assert_eq(kill(p->pid, SIGTERM), 0);
    int status = 0;
    bool done = false;
    for (int t = 0; t <= max_ms && !done; t += 20) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid)
            done = true;
        else
            tw_msleep(20);
    }
    int rc = -1;
    if (!done) {
        pid_t kids[64];
        int n = children_of(p->pid, kids, 64);
        kill(p->pid, SIGKILL);
        for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
        waitpid(p->pid, NULL, 0);
    } else if (WIFEXITED(status)) {
        rc = WEXITSTATUS(status);
    }
    forget(p->pid);
    free(p);
    return rc;
}

void tw_cleanup(void) {
    for (int i = 0; i < MAX_POOLS; i++) {
        if (!g_pools[i]) continue;
        pid_t kids[64];
        int n = children_of(g_pools[i], kids, 64);
        kill(g_pools[i], SIGKILL);
        for (int k = 0; k < n; k++) kill(kids[k], SIGKILL);
        waitpid(g_pools[i], NULL, 0);
        g_pools[i] = 0;
    }
}

jq *tw_jq(void) {
    char err[256];
    const char *url = getenv("BILLING_REDIS_URL");
    cr_assert(url, "run through scripts/test");
    jq *q = jq_open(url, err, sizeof err);
    cr_assert(q, "%s", err);
    return q;
}

void tw_enqueue(jq *q, const char *type, const char *payload, int max_attempts,
                char id[JQ_ID_MAX]) {
    char err[256];
    jq_enqueue_opts o = {.max_attempts = max_attempts};
    cr_assert_eq(jq_enqueue(q, type, 0, payload, &o, id, NULL, err, sizeof err), JQ_OK,
                 "enqueue %s %s: %s", type, payload, err);
}

json_t *tw_job(jq *q, const char *id) {
    char *s = NULL, err[256];
    int rc = JQ_ERR;
    for (int i = 0; i < 50 && rc == JQ_ERR; i++) { /* Redis may be restarting */
        rc = jq_get(q, id, &s, err, sizeof err);
        if (rc == JQ_ERR) tw_msleep(100);
    }
    if (rc == JQ_NOT_FOUND) return NULL;
    cr_assert_eq(rc, JQ_OK, "jq_get %s: %s", id, err);
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    cr_assert(j);
    return j;
}

static bool final(const char *st) { return !strcmp(st, "succeeded") || !strcmp(st, "dead"); }

const char *tw_wait_final(jq *q, const char *id, int max_ms, char out[32]) {
    for (int t = 0;; t += 50) {
        json_t *j = tw_job(q, id);
        snprintf(out, 32, "%s", j ? json_string_value(json_object_get(j, "state")) : "gone");
        json_decref(j);
        if (!strcmp(out, "gone") || final(out) || t >= max_ms) return out;
        tw_msleep(50);
    }
}

int tw_wait_all_final(jq *q, char (*ids)[JQ_ID_MAX], int n, int max_ms) {
    int done = 0; /* ids[0..done) are finished: jobs finish roughly in order */
    for (int t = 0;; t += 100) {
        while (done < n) {
            json_t *j = tw_job(q, ids[done]);
            const char *st = j ? json_string_value(json_object_get(j, "state")) : "gone";
            bool f = st && final(st);
            json_decref(j);
            if (!f) break;
            done++;
        }
        if (done == n || t >= max_ms) return done;
        tw_msleep(100);
    }
}

long long tw_pg_int(PGconn *c, const char *sql, const char *p1, const char *p2) {
    const char *params[2] = {p1, p2};
    int n = p2 ? 2 : p1 ? 1 : 0;
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql,
              PQresultErrorMessage(r));
    long long v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}
