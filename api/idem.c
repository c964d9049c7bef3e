/* idem.c — Idempotency-Key for POSTs (api_idem_begin / api_idem_end).
 *
 * DESIGN — A client that retries a POST (timeout, dropped connection) must
 * get the first answer back, not a second effect.  For an authenticated POST
 * carrying Idempotency-Key (or, as an alias, X-Request-Id) the database thread
 * runs, before the handler, one Lua script on Redis over the hash
 *   bq:{billing}:idem:<org_id>:<sha256(key)>  {fp, st, ct, body}
 * where fp = sha256(method, path, query, body — for a streamed upload, the
 * file's size and sha256):
 *   - absent → created with st = 0 ("running") and a short TTL (IDEM_RUN_MS):
 *     the handler runs (CLAIMED);
 *   - same fp, finished → the stored status, content type and body are
 *     replayed with Idempotent-Replayed: true (REPLIED);
 *   - same fp, still running → 409 conflict + Retry-After (REPLIED);
 *   - another fp → 409 idempotency_key_reused (REPLIED).
 * After the handler, an answer that the same request would get again (2xx,
 * and the deterministic 4xx: 400 404 409 413 415 422) is stored for 24 h; any
 * other (401/403 — credentials can change, 429, 5xx) deletes the claim so
 * the retry runs afresh.  A billing-api that dies between claim and answer
 * leaves a claim that expires after IDEM_RUN_MS; handlers stay safe to re-run
 * anyway (usage events are deduplicated by event_id).  Public routes (signup,
 * login) take no key: nothing scopes it before authentication.
 * Redis down → 503 rather than running the request without protection.
 */
#include "fmacros.h"
#include "api.h"
#include "log.h"
#include "rnd.h"
#include <stdlib.h>

#define IDEM_RUN_MS  60000LL
#define IDEM_KEEP_MS (24LL * 3600 * 1000)

static const char k_begin[] = "local v = redis.call('HMGET', KEYS[1], 'fp', 'st', 'ct', 'body')\n"
                              "if not v[1] then\n"
                              "  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'st', '0')\n"
                              "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                              "  return {0}\n"
                              "end\n"
                              "if v[1] ~= ARGV[1] then return {1} end\n"
                              "if v[2] == '0' then return {2} end\n"
                              "return {3, v[2], v[3] or '', v[4] or ''}\n";

static bool valid_key(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n > 255) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7E) return false;
    return true;
}

static bool storable(int st) {
    return (st >= 200 && st < 300) || st == 400 || st == 404 || st == 409 || st == 413 ||
           st == 415 || st == 422;
}

int api_idem_begin(api_req *r) {
    r->idem = API_IDEM_NONE;
    if (!r->h_idem_key || strcmp(r->method, "POST") || (r->route->flags & RT_PUBLIC))
        return API_IDEM_NONE;
    if (!valid_key(r->h_idem_key)) {
        api_err(r, 400, "bad_request", "Idempotency-Key must be 1 to 255 visible ASCII characters");
        return API_IDEM_REPLIED;
    }
    char kh[65];
    rnd_sha256_hex(r->h_idem_key, strlen(r->h_idem_key), kh);
    snprintf(r->idem_key, sizeof r->idem_key, "bq:{billing}:idem:%lld:%s", r->who.org_id, kh);
    buf b;
    buf_init(&b);
    buf_printf(&b, "%s %s?%s\n", r->method, r->path, r->query ? r->query : "");
    if (r->body_len) buf_add(&b, r->body, r->body_len);
    if (r->upload) /* a streamed file: its digest stands for the body */
        buf_printf(&b, "upload %d %lld %s", r->upload->state, r->upload->size, r->upload->sha256);
    if (b.oom) {
        buf_free(&b);
        api_err(r, 503, "unavailable", "out of memory");
        return API_IDEM_REPLIED;
    }
    rnd_sha256_hex(b.p, b.len, r->idem_fp);
    buf_free(&b);

    char err[256];
    redisReply *rep = rds_cmd(r->redis, err, sizeof err, "EVAL %s 1 %s %s %lld", k_begin,
                              r->idem_key, r->idem_fp, IDEM_RUN_MS);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER) {
        LOG_KV(LOG_WARN, "idempotency check failed",
               LF_S("error", rep && rep->str ? rep->str : err));
        if (rep) freeReplyObject(rep);
        api_header(r, "Retry-After", "1");
        api_err(r, 503, "unavailable", "cannot check the Idempotency-Key (Redis unreachable)");
        return API_IDEM_REPLIED;
    }
    long long what = rep->element[0]->integer;
    int rc = API_IDEM_REPLIED;
    if (what == 0) {
        r->idem = rc = API_IDEM_CLAIMED;
    } else if (what == 1) {
        api_err(r, 409, "idempotency_key_reused",
                "this Idempotency-Key was used for a different request in the last 24 hours");
    } else if (what == 2) {
        api_header(r, "Retry-After", "1");
        api_err(r, 409, "conflict",
                "a request with this Idempotency-Key is still being processed; retry shortly");
    } else if (rep->elements == 4) {
        int st = atoi(rep->element[1]->str ? rep->element[1]->str : "0");
        const redisReply *ct = rep->element[2], *body = rep->element[3];
        snprintf(r->idem_ct, sizeof r->idem_ct, "%s", ct->len ? ct->str : "application/json");
        api_raw(r, st ? st : 500, r->idem_ct, body->str, body->len);
        api_header(r, "Idempotent-Replayed", "true");
    } else {
        api_err(r, 500, "internal", "unexpected idempotency record");
    }
    freeReplyObject(rep);
    return rc;
}

void api_idem_end(api_req *r) {
    if (r->idem != API_IDEM_CLAIMED) return;
    char err[256], st[16], ms[24];
    redisReply *rep;
    if (storable(r->status)) {
        snprintf(st, sizeof st, "%d", r->status);
        snprintf(ms, sizeof ms, "%lld", IDEM_KEEP_MS);
        const char *ct = r->ctype ? r->ctype : "application/json";
        const char *argv[] = {"HSET", r->idem_key, "fp", r->idem_fp, "st",
                              st,     "ct",        ct,   "body",     r->out.len ? r->out.p : ""};
        size_t lens[] = {4, strlen(r->idem_key), 2, strlen(r->idem_fp), 2, strlen(st),
                         2, strlen(ct),          4, r->out.len};
        rep = rds_cmdargv(r->redis, err, sizeof err, 10, argv, lens);
        if (rep) freeReplyObject(rep);
        rep = rep ? rds_cmd(r->redis, err, sizeof err, "PEXPIRE %s %s", r->idem_key, ms) : NULL;
    } else {
        rep = rds_cmd(r->redis, err, sizeof err, "DEL %s", r->idem_key);
    }
    /* Not stored: a retry runs the request again, which handlers allow. */
    if (!rep)
        LOG_KV(LOG_WARN, "idempotency record not written", LF_S("error", err));
    else
        freeReplyObject(rep);
}
