/* test_worker.c — billing-worker's supervisor: starts N connected worker
 * processes, restarts one that is killed, and stops cleanly on SIGTERM. */
#include "fmacros.h"
#include "th.h"
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void msleep(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until th_count_lines(path, needles) >= want; returns the count. */
static int wait_lines(const char *path, const char *const *needles, int want, int max_ms) {
    int n = 0;
    for (int t = 0; t < max_ms; t += 50) {
        n = th_count_lines(path, needles);
        if (n >= want) break;
        msleep(50);
    }
    return n;
}

/* pid of the n-th (0-based) "worker started" line. */
static pid_t started_pid(const char *path, int nth) {
    FILE *f = fopen(path, "r");
    cr_assert(f);
    char line[2048];
    pid_t pid = 0;
    int k = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"msg\":\"worker started\"")) continue;
        const char *p = strstr(line, "\"pid\":");
        if (p && k++ == nth) pid = (pid_t)atoi(p + 6);
    }
    fclose(f);
    return pid;
}

Test(worker, supervises_restarts_and_stops_cleanly, .timeout = 120) {
    char log[256];
    snprintf(log, sizeof log, "%s/billing-worker-%d.log",
             getenv("ML_ARTIFACTS") ? getenv("ML_ARTIFACTS") : "/tmp", (int)getpid());
    cr_assert(getenv("BILLING_DATABASE_URL"), "run through scripts/test");
    pid_t sup = fork();
    cr_assert(sup >= 0);
    if (sup == 0) {
        if (!freopen(log, "w", stderr)) _exit(126);
        setenv("BILLING_WORKERS", "2", 1);
        setenv("BILLING_SHUTDOWN_GRACE_S", "10", 1);
        execl(th_worker_bin(), "billing-worker", (char *)NULL);
        _exit(127);
    }
    static const char *const started[] = {"\"msg\":\"worker started\"", NULL};
    static const char *const pg_up[] = {"\"msg\":\"worker postgres\"", "\"state\":\"up\"", NULL};
    static const char *const rs_up[] = {"\"msg\":\"worker redis\"", "\"state\":\"up\"", NULL};
    cr_assert_eq(wait_lines(log, started, 2, 10000), 2, "two workers start (log %s)", log);
    cr_expect_eq(wait_lines(log, pg_up, 2, 10000), 2, "each worker connects to PostgreSQL");
    cr_expect_eq(wait_lines(log, rs_up, 2, 10000), 2, "each worker connects to Redis");

    pid_t victim = started_pid(log, 0);
    cr_assert(victim > 0);
    cr_assert_eq(kill(victim, SIGKILL), 0);
    static const char *const restarting[] = {"\"msg\":\"worker exited; restarting\"",
                                             "\"signal\":9", NULL};
    cr_expect_eq(wait_lines(log, restarting, 1, 5000), 1, "the supervisor notices the crash");
    cr_expect_eq(wait_lines(log, started, 3, 5000), 3, "and starts a replacement");
    pid_t repl = started_pid(log, 2);
    cr_expect(repl > 0 && repl != victim);
    cr_expect_eq(kill(victim, 0), -1, "the killed worker was reaped");

    cr_assert_eq(kill(sup, SIGTERM), 0);
    int status = -1;
    for (int t = 0; t < 15000; t += 50) {
        if (waitpid(sup, &status, WNOHANG) == sup) break;
        msleep(50);
    }
    cr_assert(WIFEXITED(status), "the supervisor exits on SIGTERM");
    cr_expect_eq(WEXITSTATUS(status), 0);
    static const char *const stopped[] = {"\"msg\":\"worker stopped\"", NULL};
    cr_expect_eq(th_count_lines(log, stopped), 2, "both live workers stopped cleanly");
    cr_expect_eq(kill(repl, 0), -1, "no worker is left behind");
}
