/* jq.c — the job queue client.  See jq.h for the data model and guarantees.
 *
 * DESIGN — Thin C over the Lua scripts in queue/lua/ (compiled in): each
 * operation builds its ARGV, runs one EVALSHA and decodes the reply.  The
 * scripts' SHA1s are learned with SCRIPT LOAD on first use; a NOSCRIPT reply
 * (Redis restarted, SCRIPT FLUSH) reloads them all and retries the call once,
 * which is safe because a NOSCRIPT call did nothing.  Knows no SQL.
 */
#include "fmacros.h"
#include "jq.h"
#include "embed.h"
#include "ts.h"
#include <jansson.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

extern const ml_embedded jq_scripts[];

#define JQ_PREFIX "bq:{billing}:"

enum {
    S_ENQUEUE,
    S_RESERVE,
    S_HEARTBEAT,
    S_PROGRESS,
    S_ACK,
    S_FAIL,
    S_PROMOTE,
    S_REAP,
    S_RETRY,
    S_COUNT
};
static const char *const k_names[S_COUNT] = {
    "lua/enqueue_many.lua", "lua/reserve.lua",  "lua/heartbeat.lua",
    "lua/progress.lua",     "lua/ack_many.lua", "lua/fail.lua",
    "lua/promote.lua",      "lua/reap.lua",     "lua/retry.lua",
};

struct jq {
    rds *r;
    char sha[S_COUNT][41];
    bool loaded;
    int64_t lease_ms;
    int64_t retention_ms;
    uint64_t rnd; /* xorshift state for backoff jitter and reaper tokens */
};

static int64_t now_ms(void) { return ts_now() / 1000; }

static uint64_t next_rnd(jq *q) {
    q->rnd ^= q->rnd << 13;
    q->rnd ^= q->rnd >> 7;
    q->rnd ^= q->rnd << 17;
    return q->rnd;
}

jq *jq_open(const char *redis_url, char *err, size_t errlen) {
    jq *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->r = rds_open(redis_url, 5000, err, errlen);
    if (!q->r) {
        free(q);
        return NULL;
    }
    q->lease_ms = JQ_DEFAULT_LEASE_MS;
    q->retention_ms = JQ_DEFAULT_RETENTION_MS;
    q->rnd = (uint64_t)ts_now() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)q;
    if (!q->rnd) q->rnd = 0x9E3779B97F4A7C15ULL;
    return q;
}

void jq_close(jq *q) {
    if (!q) return;
    rds_close(q->r);
    free(q);
}

rds *jq_rds(jq *q) { return q->r; }
void jq_set_lease_ms(jq *q, int64_t ms) { q->lease_ms = ms > 0 ? ms : JQ_DEFAULT_LEASE_MS; }
void jq_set_retention_ms(jq *q, int64_t ms) {
    q->retention_ms = ms > 0 ? ms : JQ_DEFAULT_RETENTION_MS;
}

/* Script i as SCRIPT LOAD takes it: lua/lib.lua (the shared helpers), a
 * newline, the script.  malloc'd (NULL: out of memory or not compiled in,
 * err filled). */
static char *script_text(int i, size_t *len, char *err, size_t errlen) {
    const ml_embedded *lib = ml_embed_find(jq_scripts, "lua/lib.lua");
    const ml_embedded *s = ml_embed_find(jq_scripts, k_names[i]);
    if (ML_NEVER(!lib || !s)) {
        snprintf(err, errlen, "script %s is not compiled in", lib ? k_names[i] : "lua/lib.lua");
        return NULL;
    }
    *len = lib->len + 1 + s->len;
    char *text = malloc(*len + 1);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(text, lib->data, lib->len);
    text[lib->len] = '\n';
    memcpy(text + lib->len + 1, s->data, s->len);
    text[*len] = '\0';
    return text;
}

/* Loads every script. */
static int load_scripts(jq *q, char *err, size_t errlen) {
    for (int i = 0; i < S_COUNT; i++) {
        size_t len;
        char *text = script_text(i, &len, err, errlen);
        if (!text) return JQ_ERR;
        const char *argv[] = {"SCRIPT", "LOAD", text};
        size_t lens[] = {6, 4, len};
        redisReply *rep = rds_cmdargv(q->r, err, errlen, 3, argv, lens);
        free(text);
        if (!rep) return JQ_ERR;
        bool ok = rep->type == REDIS_REPLY_STRING && rep->len == 40;
        if (ok)
            memcpy(q->sha[i], rep->str, 41);
        else
            snprintf(err, errlen, "SCRIPT LOAD %s: %s", k_names[i],
                     rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        freeReplyObject(rep);
        if (!ok) return JQ_ERR;
    }
    q->loaded = true;
    return JQ_OK;
}

/* EVALSHA script 1 <prefix> argv...; NULL on error (err filled).  A Lua error
 * reply is turned into NULL too. */
static redisReply *run(jq *q, int script, int argc, const char **argv, const size_t *lens,
                       char *err, size_t errlen) {
    if (!q->loaded && load_scripts(q, err, errlen)) return NULL;
    const char **a = malloc(sizeof *a * (size_t)(argc + 4));
    size_t *l = malloc(sizeof *l * (size_t)(argc + 4));
    redisReply *out = NULL;
    if (!a || !l) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        a[0] = "EVALSHA";
        a[1] = q->sha[script];
        a[2] = "1";
        a[3] = JQ_PREFIX;
        for (int i = 0; i < 4; i++) l[i] = strlen(a[i]);
        for (int i = 0; i < argc; i++) {
            a[4 + i] = argv[i];
            l[4 + i] = lens ? lens[i] : strlen(argv[i]);
        }
        redisReply *rep = rds_cmdargv(q->r, err, errlen, argc + 4, a, l);
        if (!rep) goto done;
        if (rep->type != REDIS_REPLY_ERROR) {
            out = rep;
            goto done;
        }
        bool noscript = strncmp(rep->str, "NOSCRIPT", 8) == 0;
        snprintf(err, errlen, "%s: %s", k_names[script], rep->str);
        freeReplyObject(rep);
        if (!noscript || attempt == 1 || load_scripts(q, err, errlen)) goto done;
    }
done:
    free(a);
    free(l);
    return out;
}

static long long int_reply(redisReply *rep) {
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -999;
    freeReplyObject(rep);
    return v;
}

static const char *elem_str(const redisReply *r, char *buf, size_t cap) {
    if (r->type == REDIS_REPLY_STRING) return r->str;
    if (r->type == REDIS_REPLY_INTEGER) {
        snprintf(buf, cap, "%lld", r->integer);
        return buf;
    }
    return "";
}

/* The enqueue script's ARGV for jobs: now n, then 7 per job (see
 * lua/enqueue_many.lua).  argv has 2 + 7n slots; nums (4 per job) and
 * snow/sn hold the numbers it points into. */
static void enqueue_args(const jq_new *jobs, size_t n, const char **argv, char (*nums)[4][24],
                         char snow[24], char sn[24]) {
    snprintf(snow, 24, "%lld", (long long)now_ms());
    snprintf(sn, 24, "%zu", n);
    argv[0] = snow;
    argv[1] = sn;
    for (size_t i = 0; i < n; i++) {
        const jq_new *j = &jobs[i];
        snprintf(nums[i][0], 24, "%lld", j->org);
        snprintf(nums[i][1], 24, "%d",
                 j->opts.max_attempts > 0 ? j->opts.max_attempts : JQ_DEFAULT_MAX_ATTEMPTS);
        snprintf(nums[i][2], 24, "%lld", (long long)(j->opts.delay_ms > 0 ? j->opts.delay_ms : 0));
        /* Lua side: '' = default retention, '0' = delete at ack, else ms */
        if (j->opts.keep_ms != 0)
            snprintf(nums[i][3], 24, "%lld",
                     j->opts.keep_ms < 0 ? 0LL : (long long)j->opts.keep_ms);
        const char **a = argv + 2 + 7 * i;
        a[0] = j->type;
        a[1] = nums[i][0];
        a[2] = j->payload ? j->payload : "{}";
        a[3] = nums[i][1];
        a[4] = nums[i][2];
        a[5] = j->opts.dedupe_key ? j->opts.dedupe_key : "";
        a[6] = j->opts.keep_ms != 0 ? nums[i][3] : "";
    }
}

int jq_enqueue_reply(const redisReply *rep, jq_new *jobs, size_t n, char *err, size_t errlen) {
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: %s", k_names[S_ENQUEUE], rep->str);
        return strncmp(rep->str, "NOSCRIPT", 8) == 0 ? JQ_NOSCRIPT : JQ_ERR;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 * n) {
        snprintf(err, errlen, "enqueue: unexpected reply");
        return JQ_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        char b[32];
        const char *id = elem_str(rep->element[2 * i], b, sizeof b);
        snprintf(jobs[i].id, sizeof jobs[i].id, "%.*s", JQ_ID_MAX - 1, id);
        jobs[i].existing = rep->element[2 * i + 1]->integer == 1;
    }
    return JQ_OK;
}

int jq_enqueue_many(jq *q, jq_new *jobs, size_t n, char *err, size_t errlen) {
    if (n == 0) return JQ_OK;
    if (n > JQ_ENQUEUE_MAX) {
        snprintf(err, errlen, "batch too large");
        return JQ_ERR;
    }
    int argc = 2 + 7 * (int)n;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    char(*nums)[4][24] = calloc(n, sizeof *nums); /* org, max_attempts, delay, keep */
    char snow[24], sn[24];
    int rc = JQ_ERR;
    if (!argv || !nums) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    enqueue_args(jobs, n, argv, nums, snow, sn);
    redisReply *rep = run(q, S_ENQUEUE, argc, argv, NULL, err, errlen);
    if (!rep) goto out;
    rc = jq_enqueue_reply(rep, jobs, n, err, errlen);
    freeReplyObject(rep);
out:
    free(argv);
    free(nums);
    return rc;
}

char *jq_enqueue_script(size_t *len, char *err, size_t errlen) {
    return script_text(S_ENQUEUE, len, err, errlen);
}

int jq_enqueue_command(const char *sha, const jq_new *jobs, size_t n, char **cmd, size_t *len,
                       char *err, size_t errlen) {
    *cmd = NULL;
    *len = 0;
    if (n == 0 || n > JQ_ENQUEUE_MAX) {
        snprintf(err, errlen, n ? "batch too large" : "no jobs");
        return JQ_ERR;
    }
    int argc = 4 + 2 + 7 * (int)n;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    char(*nums)[4][24] = calloc(n, sizeof *nums);
    char snow[24], sn[24];
    int rc = JQ_ERR;
    if (!argv || !nums) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    argv[0] = "EVALSHA";
    argv[1] = sha;
    argv[2] = "1";
    argv[3] = JQ_PREFIX;
    enqueue_args(jobs, n, argv + 4, nums, snow, sn);
    char *c = NULL;
    long long l = redisFormatCommandArgv(&c, argc, argv, NULL);
    if (l < 0 || !c) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    *cmd = c;
    *len = (size_t)l;
    rc = JQ_OK;
out:
    free(argv);
    free(nums);
    return rc;
}

int jq_enqueue(jq *q, const char *type, long long org, const char *payload,
               const jq_enqueue_opts *opts, char id[JQ_ID_MAX], bool *existing, char *err,
               size_t errlen) {
    jq_new j = {.type = type, .org = org, .payload = payload};
    if (opts) j.opts = *opts;
    int rc = jq_enqueue_many(q, &j, 1, err, errlen);
    if (rc == JQ_OK) {
        memcpy(id, j.id, JQ_ID_MAX);
        if (existing) *existing = j.existing;
    }
    return rc;
}

void jq_job_clear(jq_job *j) {
    free(j->payload);
    memset(j, 0, sizeof *j);
}

int jq_reserve(jq *q, const char *const *types, size_t ntypes, const char *worker, jq_job *out,
               int max, char *err, size_t errlen) {
    if (ntypes == 0 || max <= 0) return 0;
    if (ntypes > 32) {
        snprintf(err, errlen, "too many job types");
        return JQ_ERR;
    }
    char snow[24], slease[24], smax[16], sn[16];
    snprintf(snow, sizeof snow, "%lld", (long long)now_ms());
    snprintf(slease, sizeof slease, "%lld", (long long)q->lease_ms);
    snprintf(smax, sizeof smax, "%d", max);
    snprintf(sn, sizeof sn, "%zu", ntypes);
    const char *argv[5 + 32] = {worker, snow, slease, smax, sn};
    for (size_t i = 0; i < ntypes; i++) argv[5 + i] = types[i];
    redisReply *rep = run(q, S_RESERVE, 5 + (int)ntypes, argv, NULL, err, errlen);
    if (!rep) return JQ_ERR;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 7 != 0 ||
        rep->elements / 7 > (size_t)max) {
        snprintf(err, errlen, "reserve: unexpected reply");
        freeReplyObject(rep);
        return JQ_ERR;
    }
    int n = (int)(rep->elements / 7);
    for (int i = 0; i < n; i++) {
        redisReply **e = rep->element + 7 * i;
        char b[32];
        jq_job *j = &out[i];
        memset(j, 0, sizeof *j);
        snprintf(j->id, sizeof j->id, "%.*s", JQ_ID_MAX - 1, elem_str(e[0], b, sizeof b));
        snprintf(j->type, sizeof j->type, "%.*s", JQ_TYPE_MAX - 1, elem_str(e[1], b, sizeof b));
        j->org = strtoll(elem_str(e[2], b, sizeof b), NULL, 10);
        j->payload = strdup(elem_str(e[3], b, sizeof b));
        j->attempts = (int)strtol(elem_str(e[4], b, sizeof b), NULL, 10);
        j->max_attempts = (int)strtol(elem_str(e[5], b, sizeof b), NULL, 10);
        j->lease_until = strtoll(elem_str(e[6], b, sizeof b), NULL, 10);
        if (!j->payload) {
            /* The job is reserved; without memory to run it, let its lease
             * lapse and the reaper hand it out again. */
            snprintf(err, errlen, "out of memory");
            for (int k = 0; k <= i; k++) jq_job_clear(&out[k]);
            freeReplyObject(rep);
            return JQ_ERR;
        }
    }
    freeReplyObject(rep);
    return n;
}

int jq_wait(jq *q, const char *const *types, size_t ntypes, int timeout_ms, char *err,
            size_t errlen) {
    if (ntypes == 0 || ntypes > 32) return 1;
    if (timeout_ms > 4000) timeout_ms = 4000; /* below the connection's 5 s timeout */
    if (timeout_ms < 1) timeout_ms = 1;
    char keys[32][JQ_TYPE_MAX + 32];
    const char *argv[34];
    argv[0] = "BLPOP";
    for (size_t i = 0; i < ntypes; i++) {
        snprintf(keys[i], sizeof keys[i], JQ_PREFIX "wake:%s", types[i]);
        argv[1 + i] = keys[i];
    }
    char t[24];
    snprintf(t, sizeof t, "%d.%03d", timeout_ms / 1000, timeout_ms % 1000);
    argv[1 + ntypes] = t;
    redisReply *rep = rds_cmdargv(q->r, err, errlen, (int)ntypes + 2, argv, NULL);
    if (!rep) return JQ_ERR;
    int rc = rep->type == REDIS_REPLY_ARRAY ? 0 : rep->type == REDIS_REPLY_NIL ? 1 : JQ_ERR;
    if (rc == JQ_ERR) snprintf(err, errlen, "BLPOP: %s", rep->str ? rep->str : "bad reply");
    freeReplyObject(rep);
    return rc;
}

static int held_or_lost(redisReply *rep) {
    if (!rep) return JQ_ERR;
    long long v = int_reply(rep);
    return v == 1 ? JQ_OK : v == 0 ? JQ_LOST : JQ_ERR;
}

int jq_heartbeat(jq *q, const char *id, const char *worker, char *err, size_t errlen) {
    char snow[24], slease[24];
    snprintf(snow, sizeof snow, "%lld", (long long)now_ms());
    snprintf(slease, sizeof slease, "%lld", (long long)q->lease_ms);
    const char *argv[] = {id, worker, snow, slease};
    return held_or_lost(run(q, S_HEARTBEAT, 4, argv, NULL, err, errlen));
}

int jq_progress(jq *q, const char *id, const char *worker, int pct, const char *msg, char *err,
                size_t errlen) {
    char sp[8];
    snprintf(sp, sizeof sp, "%d", pct < 0 ? 0 : pct > 100 ? 100 : pct);
    const char *argv[] = {id, worker, sp, msg ? msg : ""};
    return held_or_lost(run(q, S_PROGRESS, 4, argv, NULL, err, errlen));
}

int jq_ack_many(jq *q, const char *worker, const char *const *ids, const char *const *results,
                size_t n, int *status, char *err, size_t errlen) {
    if (n == 0) return JQ_OK;
    int argc = 4 + 2 * (int)n;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    if (!argv) {
        snprintf(err, errlen, "out of memory");
        return JQ_ERR;
    }
    char snow[24], sret[24], sn[24];
    snprintf(snow, sizeof snow, "%lld", (long long)now_ms());
    snprintf(sret, sizeof sret, "%lld", (long long)q->retention_ms);
    snprintf(sn, sizeof sn, "%zu", n);
    argv[0] = worker;
    argv[1] = snow;
    argv[2] = sret;
    argv[3] = sn;
    for (size_t i = 0; i < n; i++) {
        argv[4 + 2 * i] = ids[i];
        argv[5 + 2 * i] = results && results[i] ? results[i] : "{}";
    }
    redisReply *rep = run(q, S_ACK, argc, argv, NULL, err, errlen);
    free(argv);
    if (!rep) return JQ_ERR;
    int rc = JQ_ERR;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == n) {
        for (size_t i = 0; i < n; i++) status[i] = rep->element[i]->integer == 1 ? JQ_OK : JQ_LOST;
        rc = JQ_OK;
    } else {
        snprintf(err, errlen, "ack: unexpected reply");
    }
    freeReplyObject(rep);
    return rc;
}

int jq_ack(jq *q, const char *id, const char *worker, const char *result, char *err,
           size_t errlen) {
    int st = JQ_ERR;
    if (jq_ack_many(q, worker, &id, &result, 1, &st, err, errlen) != JQ_OK) return JQ_ERR;
    return st;
}

int64_t jq_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint64_t rnd) {
    if (attempt < 1) attempt = 1;
    if (base_ms < 1) base_ms = 1;
    if (cap_ms < base_ms) cap_ms = base_ms;
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < cap_ms; i++) d = d > cap_ms / 2 ? cap_ms : d * 2;
    if (d > cap_ms) d = cap_ms;
    int64_t half = d / 2;
    return half + (int64_t)(rnd % (uint64_t)(d - half + 1));
}

int jq_fail(jq *q, const char *id, const char *worker, const char *error, bool permanent,
            bool *dead, char *err, size_t errlen) {
    /* the attempt number is only known to Redis; base the backoff on the
     * job's attempts as the script sees them: fetch it first (cheap) */
    char key[JQ_ID_MAX + 32];
    snprintf(key, sizeof key, JQ_PREFIX "job:%s", id);
    redisReply *a = rds_cmd(q->r, err, errlen, "HGET %s attempts", key);
    if (!a) return JQ_ERR;
    int attempts = a->type == REDIS_REPLY_STRING ? atoi(a->str) : 1;
    freeReplyObject(a);
    char snow[24], sback[24], sret[24];
    snprintf(snow, sizeof snow, "%lld", (long long)now_ms());
    snprintf(sback, sizeof sback, "%lld",
             (long long)jq_backoff_ms(attempts, 1000, 5 * 60 * 1000, next_rnd(q)));
    snprintf(sret, sizeof sret, "%lld", (long long)q->retention_ms);
    const char *argv[] = {id,    worker, error ? error : "failed", permanent ? "1" : "0", snow,
                          sback, sret};
    redisReply *rep = run(q, S_FAIL, 7, argv, NULL, err, errlen);
    if (!rep) return JQ_ERR;
    long long v = int_reply(rep);
    if (dead) *dead = v == 2;
    return v == 1 || v == 2 ? JQ_OK : v == 0 ? JQ_LOST : JQ_ERR;
}

int jq_promote(jq *q, char *err, size_t errlen) {
    char snow[24];
    snprintf(snow, sizeof snow, "%lld", (long long)now_ms());
    const char *argv[] = {snow, "1000"};
    redisReply *rep = run(q, S_PROMOTE, 2, argv, NULL, err, errlen);
    return rep ? (int)int_reply(rep) : JQ_ERR;
}

int jq_reap(jq *q, char *err, size_t errlen) {
    char snow[24], tok[24], sret[24];
    snprintf(snow, sizeof snow, "%lld", (long long)now_ms());
    snprintf(tok, sizeof tok, "%llx", (unsigned long long)next_rnd(q));
    snprintf(sret, sizeof sret, "%lld", (long long)q->retention_ms);
    const char *argv[] = {snow, tok, "5000", sret, "1000"};
    redisReply *rep = run(q, S_REAP, 5, argv, NULL, err, errlen);
    if (!rep) return JQ_ERR;
    long long v = int_reply(rep);
    return v < 0 ? 0 : (int)v;
}

int jq_retry(jq *q, const char *id, char *err, size_t errlen) {
    const char *argv[] = {id};
    redisReply *rep = run(q, S_RETRY, 1, argv, NULL, err, errlen);
    if (!rep) return JQ_ERR;
    long long v = int_reply(rep);
    return v == 0 ? JQ_OK : v == 2 ? JQ_NOT_FOUND : v == 3 ? JQ_BAD_STATE : JQ_ERR;
}

static const char *const k_int_fields[] = {
    "org",        "attempts",        "max_attempts", "progress", "created_at",
    "started_at", "last_started_at", "finished_at",  "run_at",   "lease_until",
    NULL};

int jq_get(jq *q, const char *id, char **json, char *err, size_t errlen) {
    char key[JQ_ID_MAX + 32];
    if (strlen(id) >= JQ_ID_MAX || strspn(id, "0123456789") != strlen(id) || !*id)
        return JQ_NOT_FOUND;
    snprintf(key, sizeof key, JQ_PREFIX "job:%s", id);
    redisReply *rep = rds_cmd(q->r, err, errlen, "HGETALL %s", key);
    if (!rep) return JQ_ERR;
    if (rep->type == REDIS_REPLY_ERROR) { /* e.g. LOADING right after a restart */
        snprintf(err, errlen, "HGETALL: %s", rep->str);
        freeReplyObject(rep);
        return JQ_ERR;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
        freeReplyObject(rep);
        return JQ_NOT_FOUND;
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    for (size_t i = 0; o && i + 1 < rep->elements; i += 2) {
        const char *k = rep->element[i]->str, *v = rep->element[i + 1]->str;
        if (!k || !v) continue;
        json_t *jv = NULL;
        for (const char *const *f = k_int_fields; *f && !jv; f++)
            if (!strcmp(k, *f)) jv = json_integer(strtoll(v, NULL, 10));
        if (!jv && (!strcmp(k, "payload") || !strcmp(k, "result")))
            jv = json_loads(v, JSON_DECODE_ANY, NULL);
        if (!jv) jv = json_string(v);
        if (jv) json_object_set_new(o, k, jv);
    }
    freeReplyObject(rep);
    *json = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!*json) {
        snprintf(err, errlen, "out of memory");
        return JQ_ERR;
    }
    return JQ_OK;
}

int jq_stats(jq *q, char **json, char *err, size_t errlen) {
    redisReply *types = rds_cmd(q->r, err, errlen, "SMEMBERS " JQ_PREFIX "types");
    if (!types) return JQ_ERR;
    redisReply *st = rds_cmd(q->r, err, errlen, "HGETALL " JQ_PREFIX "stats");
    if (!st || types->type == REDIS_REPLY_ERROR || st->type == REDIS_REPLY_ERROR) {
        const redisReply *bad = types->type == REDIS_REPLY_ERROR ? types : st;
        if (bad) snprintf(err, errlen, "stats: %s", bad->str); /* else err is rds_cmd's */
        freeReplyObject(types);
        if (st) freeReplyObject(st);
        return JQ_ERR;
    }
    static const char *const names[] = {"queued",        "active",          "delayed",
                                        "dead",          "succeeded_total", "failed_total",
                                        "retried_total", "dead_total"};
    json_t *o = json_object();
    for (size_t i = 0; o && types->type == REDIS_REPLY_ARRAY && i < types->elements; i++) {
        json_t *t = json_object();
        for (size_t k = 0; t && k < ML_ARRAY_LEN(names); k++)
            json_object_set_new(t, names[k], json_integer(0));
        if (t) json_object_set_new(o, types->element[i]->str, t);
    }
    for (size_t i = 0; o && st->type == REDIS_REPLY_ARRAY && i + 1 < st->elements; i += 2) {
        const char *f = st->element[i]->str;
        const char *colon = f ? strrchr(f, ':') : NULL;
        if (!colon) continue;
        char typ[JQ_TYPE_MAX];
        snprintf(typ, sizeof typ, "%.*s", (int)(colon - f), f);
        json_t *t = json_object_get(o, typ);
        if (t)
            json_object_set_new(t, colon + 1,
                                json_integer(strtoll(st->element[i + 1]->str, NULL, 10)));
    }
    freeReplyObject(types);
    freeReplyObject(st);
    *json = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (!*json) {
        snprintf(err, errlen, "out of memory");
        return JQ_ERR;
    }
    return JQ_OK;
}
