/* cfg.c — the configuration table.
 *
 * DESIGN — Each row binds a BILLING_* variable and a --flag to one field of
 * struct cfg with its type, bounds and default.  Defaults that depend on the
 * machine ("number of cores") are written as the tokens "@cores" and
 * "@2cores"; "@repo" expands to the source tree this binary was built from
 * (ML_REPO_DIR), which is where scripts/run keeps ./var.
 */
#include "fmacros.h"
#include "cfg.h"
#include "log.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef ML_REPO_DIR
#define ML_REPO_DIR "."
#endif

typedef enum { CT_STR, CT_INT, CT_LEVEL, CT_BOOL } cfg_type;

typedef struct cfg_opt {
    const char *env;
    const char *flag;
    cfg_type type;
    long long min, max;
    const char *def;
    size_t off;
    size_t size; /* for strings: capacity of the field */
    const char *help;
} cfg_opt;

#define S(f) offsetof(cfg, f), sizeof(((cfg *)0)->f)
#define I(f) offsetof(cfg, f), 0

static const cfg_opt g_opts[] = {
    {"BILLING_LISTEN", "--listen", CT_STR, 0, 0, "127.0.0.1:8080", S(listen),
     "HTTP listen address host:port"},
    {"BILLING_DATABASE_URL", "--database-url", CT_STR, 0, 0,
     "postgresql:///meterline?host=@repo/var/run&port=5433", S(database_url),
     "PostgreSQL connection URL"},
    {"BILLING_REDIS_URL", "--redis-url", CT_STR, 0, 0, "redis://127.0.0.1:6380/0", S(redis_url),
     "Redis URL redis://host:port/db"},
    {"BILLING_STORAGE_DIR", "--storage-dir", CT_STR, 0, 0, "./var/storage", S(storage_dir),
     "directory for generated files (PDFs, uploads)"},
    {"BILLING_PUBLIC_ORIGIN", "--public-origin", CT_STR, 0, 0, "", S(public_origin),
     "origin browsers use (https://billing.example.com); empty = from Host"},
    {"BILLING_API_THREADS", "--api-threads", CT_INT, 1, 256, "@cores", I(api_threads),
     "event-loop threads of billing-api"},
    {"BILLING_DB_THREADS", "--db-threads", CT_INT, 1, 512, "@2cores", I(db_threads),
     "database threads (one PostgreSQL connection each)"},
    {"BILLING_WORKERS", "--workers", CT_INT, 0, 256, "@cores", I(workers),
     "billing-worker processes"},
    {"BILLING_LOG_LEVEL", "--log-level", CT_LEVEL, 0, 3, "info", I(log_level),
     "debug | info | warn | error (JSON lines on stderr)"},
    {"BILLING_SESSION_TTL_HOURS", "--session-ttl-hours", CT_INT, 1, 24 * 366, "336",
     I(session_ttl_hours), "lifetime of a login session"},
    {"BILLING_LOGIN_MAX_FAILURES", "--login-max-failures", CT_INT, 1, 1000000, "5",
     I(login_max_failures), "failed logins per email+address before 429"},
    {"BILLING_LOGIN_WINDOW_S", "--login-window-s", CT_INT, 1, 86400, "900", I(login_window_s),
     "window of the login failure counter, seconds"},
    {"BILLING_MAX_BODY", "--max-body", CT_INT, 1024, 1LL << 32, "10485760", I(max_body),
     "JSON body limit in bytes"},
    {"BILLING_MAX_UPLOAD", "--max-upload", CT_INT, 1, 1LL << 40, "1073741824", I(max_upload),
     "CSV upload limit in bytes (streamed to disk, never held in memory)"},
    {"BILLING_SHUTDOWN_GRACE_S", "--shutdown-grace-s", CT_INT, 0, 3600, "20", I(shutdown_grace_s),
     "SIGTERM: seconds to finish in-flight work"},
    {"BILLING_COOKIE_SECURE", "--cookie-secure", CT_BOOL, 0, 1, "0", I(cookie_secure),
     "mark the session cookie Secure (behind HTTPS)"},
    {"BILLING_JOB_LEASE_MS", "--job-lease-ms", CT_INT, 300, 3600000, "30000", I(job_lease_ms),
     "billing-worker: job lease in ms; a job whose worker stops heartbeating is re-run after it"},
    {"BILLING_JOB_BATCH", "--job-batch", CT_INT, 1, 256, "128", I(job_batch),
     "billing-worker: most jobs a worker process reserves at once (per handler batch group)"},
    {"BILLING_JOB_TIMEOUT_MS", "--job-timeout-ms", CT_INT, 0, 86400000, "0", I(job_timeout_ms),
     "billing-worker: caps every job type's timeout in ms; 0 = each type's own"},
    {"BILLING_IMPORT_CHUNK", "--import-chunk", CT_INT, 1, 20000, "5000", I(import_chunk),
     "billing-worker: usage.import rows per committed chunk (a retried import resumes after it)"},
};

static int set_opt(cfg *c, const cfg_opt *o, const char *val, const char *src, char *err,
                   size_t errlen) {
    char *field = (char *)c + o->off;
    if (o->type == CT_STR) {
        char tmp[1100];
        const char *v = val;
        const char *at = strstr(val, "@repo");
        if (at) {
            snprintf(tmp, sizeof tmp, "%.*s%s%s", (int)(at - val), val, ML_REPO_DIR, at + 5);
            v = tmp;
        }
        size_t n = strlen(v);
        if (n >= o->size) {
            snprintf(err, errlen, "%s: value too long (max %zu bytes)", src, o->size - 1);
            return -1;
        }
        memcpy(field, v, n + 1);
        return 0;
    }
    long long x;
    if (o->type == CT_LEVEL) {
        x = log_level_parse(val);
        if (x < 0) {
            snprintf(err, errlen, "%s: expected debug, info, warn or error, got \"%s\"", src, val);
            return -1;
        }
    } else if (o->type == CT_BOOL) {
        if (!strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes"))
            x = 1;
        else if (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no"))
            x = 0;
        else {
            snprintf(err, errlen, "%s: expected true or false, got \"%s\"", src, val);
            return -1;
        }
    } else {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        if (cores < 1) cores = 1;
        if (!strcmp(val, "@cores"))
            x = cores;
        else if (!strcmp(val, "@2cores"))
            x = 2 * cores;
        else {
            char *end;
            errno = 0;
            x = strtoll(val, &end, 10);
            if (errno || end == val || *end) {
                snprintf(err, errlen, "%s: expected an integer, got \"%s\"", src, val);
                return -1;
            }
        }
        if (x < o->min || x > o->max) {
            snprintf(err, errlen, "%s: %lld is out of range %lld..%lld", src, x, o->min, o->max);
            return -1;
        }
    }
    if (o->off == offsetof(cfg, max_body) || o->off == offsetof(cfg, max_upload))
        *(long long *)field = x;
    else
        *(int *)field = (int)x;
    return 0;
}

int cfg_load(cfg *c, int argc, char **argv, int first, char **pos, int *npos, char *err,
             size_t errlen) {
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < ML_ARRAY_LEN(g_opts); i++)
        if (set_opt(c, &g_opts[i], g_opts[i].def, "default", err, errlen)) return -1;
    for (size_t i = 0; i < ML_ARRAY_LEN(g_opts); i++) {
        const char *v = getenv(g_opts[i].env);
        if (v && *v && set_opt(c, &g_opts[i], v, g_opts[i].env, err, errlen)) return -1;
    }
    int np = 0;
    for (int a = first; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0) {
            if (pos) pos[np] = argv[a];
            np++;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t nl = eq ? (size_t)(eq - arg) : strlen(arg);
        const cfg_opt *o = NULL;
        for (size_t i = 0; i < ML_ARRAY_LEN(g_opts); i++)
            if (strlen(g_opts[i].flag) == nl && !strncmp(g_opts[i].flag, arg, nl)) o = &g_opts[i];
        if (!o) {
            /* not ours: leave it to the caller (subcommand flags) */
            if (pos) pos[np] = argv[a];
            np++;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (a + 1 >= argc) {
                snprintf(err, errlen, "%s needs a value", o->flag);
                return -1;
            }
            val = argv[++a];
        }
        if (set_opt(c, o, val, o->flag, err, errlen)) return -1;
    }
    if (npos) *npos = np;
    return 0;
}

void cfg_help(FILE *out) {
    fprintf(out, "Configuration (environment variable / flag, default):\n");
    for (size_t i = 0; i < ML_ARRAY_LEN(g_opts); i++) {
        const char *d = g_opts[i].def;
        if (!strcmp(d, "@cores"))
            d = "number of cores";
        else if (!strcmp(d, "@2cores"))
            d = "2 x number of cores";
        fprintf(out, "  %-28s %-22s %s\n      default: %s\n", g_opts[i].env, g_opts[i].flag,
                g_opts[i].help, *d ? d : "(empty)");
    }
}
