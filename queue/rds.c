/* rds.c — Redis connection helper.  See rds.h. */
#include "fmacros.h"
#include "rds.h"
#include <stdarg.h>
#include <stdlib.h>
#include <errno.h>

struct rds {
    rds_url u;
    int timeout_ms;
    redisContext *c;
};

int rds_url_parse(const char *url, rds_url *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->port = 6379;
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0) {
        snprintf(err, errlen, "redis URL must start with redis://");
        return -1;
    }
    p += 8;
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t n = (size_t)(at - pw);
        if (n >= sizeof out->password) {
            snprintf(err, errlen, "redis password too long");
            return -1;
        }
        memcpy(out->password, pw, n);
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof out->host) {
        snprintf(err, errlen, "redis URL has no host");
        return -1;
    }
    memcpy(out->host, p, hl);
    if (strspn(out->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
        hl) {
        snprintf(err, errlen, "redis URL has a bad host");
        return -1;
    }
    p += hl;
    if (*p == ':') {
        char *end;
        errno = 0;
        long port = strtol(p + 1, &end, 10);
        if (errno || end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/')) {
            snprintf(err, errlen, "redis URL has a bad port");
            return -1;
        }
        out->port = (int)port;
        p = end;
    }
    if (*p == '/') {
        p++;
        if (*p) {
            char *end;
            long db = strtol(p, &end, 10);
            if (*end || db < 0 || db > 1000000) {
                snprintf(err, errlen, "redis URL has a bad database number");
                return -1;
            }
            out->db = (int)db;
        }
    } else if (*p) {
        snprintf(err, errlen, "redis URL has trailing characters");
        return -1;
    }
    return 0;
}

rds *rds_open(const char *url, int timeout_ms, char *err, size_t errlen) {
    rds *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (rds_url_parse(url, &r->u, err, errlen)) {
        free(r);
        return NULL;
    }
    r->timeout_ms = timeout_ms;
    return r;
}

void rds_close(rds *r) {
    if (!r) return;
    if (r->c) redisFree(r->c);
    free(r);
}

redisContext *rds_ctx(rds *r) { return r->c; }

static void drop(rds *r) {
    if (r->c) redisFree(r->c);
    r->c = NULL;
}

int rds_ensure(rds *r, char *err, size_t errlen) {
    if (r->c && !r->c->err) return 0;
    drop(r);
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    r->c = redisConnectWithTimeout(r->u.host, r->u.port, tv);
    if (!r->c || r->c->err) {
        snprintf(err, errlen, "redis %s:%d: %s", r->u.host, r->u.port,
                 r->c ? r->c->errstr : "out of memory");
        drop(r);
        return -1;
    }
    if (redisSetTimeout(r->c, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis: cannot set timeout");
        drop(r);
        return -1;
    }
    if (r->u.password[0]) {
        redisReply *rep = redisCommand(r->c, "AUTH %s", r->u.password);
        bool ok = rep && rep->type != REDIS_REPLY_ERROR;
        if (rep) freeReplyObject(rep);
        if (!ok) {
            snprintf(err, errlen, "redis: AUTH failed");
            drop(r);
            return -1;
        }
    }
    if (r->u.db) {
        redisReply *rep = redisCommand(r->c, "SELECT %d", r->u.db);
        bool ok = rep && rep->type != REDIS_REPLY_ERROR;
        if (rep) freeReplyObject(rep);
        if (!ok) {
            snprintf(err, errlen, "redis: SELECT %d failed", r->u.db);
            drop(r);
            return -1;
        }
    }
    return 0;
}

static redisReply *finish(rds *r, void *rep, char *err, size_t errlen) {
    if (!rep) {
        snprintf(err, errlen, "redis: %s", r->c && r->c->errstr[0] ? r->c->errstr : "no reply");
        drop(r);
        return NULL;
    }
    return rep;
}

redisReply *rds_cmd(rds *r, char *err, size_t errlen, const char *fmt, ...) {
    if (rds_ensure(r, err, errlen)) return NULL;
    va_list ap;
    va_start(ap, fmt);
    void *rep = redisvCommand(r->c, fmt, ap);
    va_end(ap);
    return finish(r, rep, err, errlen);
}

redisReply *rds_cmdargv(rds *r, char *err, size_t errlen, int argc, const char **argv,
                        const size_t *argvlen) {
    if (rds_ensure(r, err, errlen)) return NULL;
    return finish(r, redisCommandArgv(r->c, argc, argv, argvlen), err, errlen);
}

bool rds_ping(rds *r) {
    char err[256];
    redisReply *rep = rds_cmd(r, err, sizeof err, "PING");
    bool ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (rep) freeReplyObject(rep);
    return ok;
}
