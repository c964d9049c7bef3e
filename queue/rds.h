/* rds.h — Redis URL parsing and a blocking connection that reconnects
 * (prefix rds_).
 *
 * DESIGN — rds_url_parse is pure.  An rds wraps a hiredis redisContext used by
 * one thread at a time, with connect and command timeouts; after an I/O error
 * the context is dropped and the next rds_cmd reconnects (and re-selects the
 * database).  hiredis 0.14: no TLS, no RESP3 — keep Redis on loopback.
 */
#ifndef ML_RDS_H
#define ML_RDS_H
#include <hiredis/hiredis.h>
#include <stdbool.h>

typedef struct rds_url {
    char host[256];
    int port;
    int db;
    char password[256];
} rds_url;

/* redis://[:password@]host[:port][/db] ; returns 0 or -1 with err. */
int rds_url_parse(const char *url, rds_url *out, char *err, size_t errlen);

typedef struct rds rds;
rds *rds_open(const char *url, int timeout_ms, char *err, size_t errlen); /* NULL on bad URL/oom */
void rds_close(rds *r);
/* Connects if needed: 0 ok, -1 (err filled). */
int rds_ensure(rds *r, char *err, size_t errlen);
/* redisCommand with reconnect on a dropped connection.  Returns the reply
 * (caller frees with freeReplyObject) or NULL (err filled).  An error reply
 * (REDIS_REPLY_ERROR) is returned as a reply, not NULL. */
redisReply *rds_cmd(rds *r, char *err, size_t errlen, const char *fmt, ...);
redisReply *rds_cmdargv(rds *r, char *err, size_t errlen, int argc, const char **argv,
                        const size_t *argvlen);
redisContext *rds_ctx(rds *r);
bool rds_ping(rds *r);

#endif
