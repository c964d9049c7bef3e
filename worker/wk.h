/* wk.h — billing-worker: supervisor and worker processes (prefix wk_). */
#ifndef ML_WK_H
#define ML_WK_H
#include "cfg.h"
#include <signal.h>

/* Set by SIGTERM/SIGINT in a worker child: reserve no more, finish the jobs
 * in hand, then exit 0. */
extern volatile sig_atomic_t wk_stop;

/* Forks c->workers children running wk_child_main, restarts any that dies
 * (exponential backoff 0.5 s .. 30 s, reset after a minute of uptime), and on
 * SIGTERM/SIGINT stops them (SIGTERM, then SIGKILL after the grace period).
 * Returns the exit code for the supervisor process. */
int wk_supervise(const cfg *c);
/* One worker process (child.c): owns its PostgreSQL and Redis connections,
 * runs the jobs of the handler table (handlers.h) until SIGTERM.  Returns 0
 * after a requested stop; exits WK_EXIT_TIMEOUT (3) when a job times out. */
int wk_child_main(const cfg *c, int index);

#endif
