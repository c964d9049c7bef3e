/* cfg.h — configuration from the environment and flags (prefix cfg_).
 *
 * DESIGN — One table (cfg.c) lists every option: {env name, flag, type,
 * min, max, default, field}.  Defaults are applied first, then BILLING_*
 * variables, then --flags; every value is range-checked and an error names the
 * variable or flag.  cfg_help prints the table, so --help can never drift from
 * what is parsed.  Loaded once at start-up; read-only afterwards.
 */
#ifndef ML_CFG_H
#define ML_CFG_H
#include <stdio.h>

typedef struct cfg {
    char listen[128]; /* host:port */
    char database_url[1024];
    char redis_url[512];
    char storage_dir[512];
    char public_origin[256]; /* for cookie CSRF checks; "" = derive from Host */
    int api_threads;
    int db_threads;
    int workers;
    int log_level; /* LOG_* */
    int session_ttl_hours;
    int login_max_failures; /* per email + address, per window */
    int login_window_s;
    long long max_body; /* default JSON body limit, bytes */
    long long max_upload; /* streamed upload limit (POST /v1/usage/imports), bytes */
    int shutdown_grace_s;
    int cookie_secure;  /* add Secure to the session cookie */
    int job_lease_ms;   /* billing-worker: lease of a reserved job (heartbeats every third) */
    int job_batch;      /* billing-worker: most jobs one reserve takes */
    int job_timeout_ms; /* billing-worker: caps every handler's timeout; 0 = the table's */
    int import_chunk;   /* billing-worker: usage.import rows per committed chunk */
} cfg;

/* Fills c from defaults, env, then argv[first..argc) flags.  Unknown flags
 * are errors.  Positional (non-flag) arguments are left for the caller and
 * reported through *npos/pos (pos may be NULL).  Returns 0, or -1 with a
 * message in err. */
int cfg_load(cfg *c, int argc, char **argv, int first, char **pos, int *npos, char *err,
             size_t errlen);
void cfg_help(FILE *out);

#endif
