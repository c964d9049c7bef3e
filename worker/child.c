/* child.c — one billing-worker process.
 *
 * DESIGN — Owns one PostgreSQL and one Redis connection for its whole life
 * and reconnects when either drops.  Job handling arrives with the queue
 * issue; until then a child keeps its connections healthy (checked every
 * second, state changes logged) and exits 0 on SIGTERM.  wk_stop is the only
 * state a signal handler touches.
 */
#include "fmacros.h"
#include "wk.h"
#include "db.h"
#include "log.h"
#include "rds.h"
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t wk_stop;

static void on_term(int sig) {
    ML_UNUSED(sig);
    wk_stop = 1;
}

int wk_child_main(const cfg *c, int index) {
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    char err[256];
    db *d = db_open(c->database_url);
    rds *r = rds_open(c->redis_url, 2000, err, sizeof err);
    if (!d || !r) {
        LOG_KV(LOG_ERROR, "worker cannot start", LF_S("error", d ? err : "out of memory"));
        db_close(d);
        rds_close(r);
        return 1;
    }
    LOG_KV(LOG_INFO, "worker started", LF_I("slot", index), LF_I("pid", getpid()));
    int pg_up = -1, rs_up = -1;
    while (!wk_stop) {
        db_err e;
        int pg = db_ensure(d, &e) == 0;
        int rs = rds_ping(r);
        if (pg != pg_up)
            LOG_KV(pg ? LOG_INFO : LOG_WARN, "worker postgres", LF_S("state", pg ? "up" : "down"),
                   LF_I("slot", index));
        if (rs != rs_up)
            LOG_KV(rs ? LOG_INFO : LOG_WARN, "worker redis", LF_S("state", rs ? "up" : "down"),
                   LF_I("slot", index));
        pg_up = pg;
        rs_up = rs;
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    db_close(d);
    rds_close(r);
    LOG_KV(LOG_INFO, "worker stopped", LF_I("slot", index), LF_I("pid", getpid()));
    return 0;
}
