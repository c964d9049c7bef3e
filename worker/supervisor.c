/* supervisor.c — billing-worker's parent process.
 *
 * DESIGN — The supervisor does no work itself and holds no connections: it
 * only forks BILLING_WORKERS children, watches them with waitpid, and
 * restarts a child that exits or is killed, with per-slot exponential backoff
 * (0.5 s doubling to 30 s; reset once a child has lived 60 s) so a crash loop
 * cannot spin.  SIGTERM/SIGINT → SIGTERM to every child, which finishes its
 * current job and exits; after BILLING_SHUTDOWN_GRACE_S the rest get SIGKILL
 * (their jobs come back when their leases expire).  Exit 0 after a requested
 * stop.  Signals are handled with a self-pipe-free design: the handlers only
 * set flags, and the main loop sleeps in sigsuspend-like short waits.
 */
#include "fmacros.h"
#include "wk.h"
#include "log.h"
#include "ts.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_term;
static volatile sig_atomic_t g_chld;

static void on_term(int sig) {
    ML_UNUSED(sig);
    g_term = 1;
}
static void on_chld(int sig) {
    ML_UNUSED(sig);
    g_chld = 1;
}

typedef struct slot {
    pid_t pid;
    int64_t started_us;
    int64_t restart_at_us; /* 0 = not waiting */
    int64_t backoff_us;
} slot;

static pid_t spawn(const cfg *c, int i) {
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        _exit(wk_child_main(c, i));
    }
    if (pid < 0) LOG_KV(LOG_ERROR, "fork failed", LF_S("error", strerror(errno)));
    return pid;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* interrupted by signals: fine */
}

int wk_supervise(const cfg *c) {
    int n = c->workers;
    slot *s = calloc((size_t)(n > 0 ? n : 1), sizeof *s);
    if (!s) return 1;
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    LOG_KV(LOG_INFO, "supervisor started", LF_I("pid", getpid()), LF_I("workers", n));
    for (int i = 0; i < n; i++) {
        s[i].pid = spawn(c, i);
        s[i].started_us = ts_now();
        s[i].backoff_us = 500000;
        if (s[i].pid < 0) s[i].restart_at_us = ts_now() + s[i].backoff_us;
    }
    while (!g_term) {
        g_chld = 0;
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                if (s[i].pid != pid) continue;
                int64_t now = ts_now();
                if (now - s[i].started_us > 60 * 1000000LL) s[i].backoff_us = 500000;
                LOG_KV(LOG_WARN, "worker exited; restarting", LF_I("slot", i), LF_I("pid", pid),
                       LF_I("exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : -1),
                       LF_I("signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0),
                       LF_I("restart_in_ms", s[i].backoff_us / 1000));
                s[i].pid = 0;
                s[i].restart_at_us = now + s[i].backoff_us;
                s[i].backoff_us = s[i].backoff_us * 2 > 30000000 ? 30000000 : s[i].backoff_us * 2;
            }
        }
        int64_t now = ts_now();
        for (int i = 0; i < n; i++) {
            if (s[i].pid == 0 && s[i].restart_at_us && now >= s[i].restart_at_us) {
                s[i].pid = spawn(c, i);
                s[i].started_us = now;
                s[i].restart_at_us = s[i].pid > 0 ? 0 : now + s[i].backoff_us;
                if (s[i].pid < 0) s[i].pid = 0;
            }
        }
        if (!g_term && !g_chld) sleep_ms(100);
    }

    LOG_KV(LOG_INFO, "supervisor stopping", LF_I("pid", getpid()));
    for (int i = 0; i < n; i++)
        if (s[i].pid > 0) kill(s[i].pid, SIGTERM);
    int64_t deadline = ts_now() + (int64_t)c->shutdown_grace_s * 1000000;
    for (;;) {
        int alive = 0;
        for (int i = 0; i < n; i++) {
            if (s[i].pid <= 0) continue;
            int status;
            pid_t r = waitpid(s[i].pid, &status, WNOHANG);
            if (r == s[i].pid || (r < 0 && errno == ECHILD))
                s[i].pid = 0;
            else
                alive++;
        }
        if (!alive) break;
        if (ts_now() >= deadline) {
            for (int i = 0; i < n; i++) {
                if (s[i].pid > 0) {
                    LOG_KV(LOG_WARN, "worker did not stop in time; killing", LF_I("pid", s[i].pid));
                    kill(s[i].pid, SIGKILL);
                    waitpid(s[i].pid, NULL, 0);
                    s[i].pid = 0;
                }
            }
            break;
        }
        sleep_ms(20);
    }
    free(s);
    LOG_KV(LOG_INFO, "supervisor stopped", LF_I("pid", getpid()));
    return 0;
}
