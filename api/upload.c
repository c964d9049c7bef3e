/* upload.c — streamed request bodies for billing-api (prefix upl_).
 *
 * DESIGN — libevent 2.1's evhttp reads a whole request body into memory
 * before it calls us, and answers an over-limit body with its own HTML 413.
 * So every accepted connection gets a bufferevent_filter over its socket
 * bufferevent (evhttp_set_bevcb), and the filter's input function frames the
 * byte stream itself with the pure parser shared/hframe.c before evhttp sees
 * anything:
 *
 *   - an ordinary request whose body fits its route's limit passes through
 *     unchanged (head, then body bytes as they arrive; a chunked body is
 *     de-chunked into memory, bounded by that limit, and handed on with a
 *     Content-Length);
 *   - a request of an RT_UPLOAD route (POST /v1/usage/imports) has its body
 *     written to a spool file under BILLING_STORAGE_DIR/tmp/ as it arrives
 *     (de-chunked; for multipart/form-data only the content of the part named
 *     "file", via the pure streaming parser shared/mpart.c), with its SHA-256
 *     computed on the way; evhttp gets the head only when the body is
 *     complete, rewritten with Content-Length: 0;
 *   - a body over its route's limit (Content-Length, or the streamed total
 *     passing it), an upload of a type we do not take or without any
 *     credentials, is read and discarded: evhttp gets the head at once with
 *     Content-Length: 0, so our handler answers (JSON 413, 415, 401) while
 *     the rest of the body is still being dropped, and the connection stays
 *     usable for the next request.
 *
 * While the filter holds an upload's head, evhttp is still waiting for a
 * request line, so it keeps reading; memory stays bounded by the socket
 * reads in flight (bufferevent max single read) plus one head (64 KB).
 * Disk writes happen here on the loop thread (page cache); the handler fsyncs
 * on a database thread.
 *
 * How the handler finds its spool: every rewritten head carries the header
 * X-Meterline-Upload: <connection nonce>.<sequence>, and the filter keeps a
 * queue of records (api_upload) per connection.  upl_take, called from the
 * request callback, finds the connection's state through the socket fd
 * (a per-loop table, checked against the bufferevent pointer) and takes the
 * record with that sequence.  The header is stripped from every head a
 * client sends, and the nonce (random per connection) makes a header that
 * slipped through useless.  A record never taken (evhttp refused the request
 * itself, or the client left) is freed with the connection and its spool
 * deleted; so is a half-written spool: no temporary file outlives its
 * request.
 *
 * Why not the suggested alternative of a header callback: evhttp 2.1 has no
 * hook between head and body (evhttp_set_newreqcb is 2.2), and reading the
 * body ourselves behind evhttp's back would put its connection in a state it
 * aborts on.  The filter sits below evhttp and needs no libevent internals.
 *
 * A malformed head is handed to evhttp untouched and everything after it
 * passes through (evhttp answers 400 and closes); a malformed chunked body
 * becomes a request flagged API_UPL_BAD_FRAMING with Connection: close.
 *
 * Expect: 100-continue on an upload: the filter only runs while evhttp is
 * reading (it disables reading while it handles a request), so when nothing
 * we emitted is still waiting in evhttp's input, every earlier reply has
 * been handed to the socket and "100 Continue" can be written to it in
 * order; otherwise the client's own timeout sends the body anyway.
 *
 * Threads: everything here runs on the connection's loop thread.
 */
#include "fmacros.h"
#include "upload.h"
#include "hframe.h"
#include "log.h"
#include "mpart.h"
#include "rnd.h"
#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define UPL_HEADER   "X-Meterline-Upload"
#define UPL_MAX_READ (256 * 1024) /* one socket read; bounds memory per connection */
#define UPL_IOV      16

enum { M_HEAD, M_PASS, M_BUFFER, M_SPOOL, M_DISCARD, M_RAW, M_DROP };

typedef struct upl_rec {
    unsigned seq;
    api_upload *u;
    struct upl_rec *next;
} upl_rec;

typedef struct upl_conn upl_conn;

struct upl_loop {
    const cfg *cfg;
    char tmpdir[600];
    upl_conn **byfd; /* socket fd -> connection (this loop's only) */
    size_t nfd;
};

struct upl_conn {
    upl_loop *L;
    struct bufferevent *bev;   /* the filter evhttp uses */
    struct bufferevent *under; /* the socket */
    int fd;                    /* registered in L->byfd, or -1 */
    char nonce[33];
    unsigned seq;
    hf_parser hp;
    int mode;
    long long limit;
    bool upload;
    struct evbuffer *body; /* M_BUFFER: de-chunked body */
    api_upload *cur;       /* M_SPOOL: the upload being written */
    int sfd;               /* its spool file, or -1 */
    crypto_hash_sha256_state sha;
    mp_parser *mp;
    bool in_file, file_seen, io_err;
    upl_rec *rq_head, *rq_tail; /* records emitted, not yet taken */
    struct event *flush_ev;     /* pushes evhttp's output on (see out_cb) */
    bool flush_pending;
    struct event *wr_ev; /* the socket is writable again (see out_filter) */
    bool in_flush;       /* out_filter may write (see there) */
};

/* ------------------------------------------------------------------------ */
/* files                                                                     */

int upl_mkdirs(const char *path, unsigned mode) {
    char p[1024];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) return -1;
        p[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int upl_fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

void api_upload_free(api_upload *u) {
    if (!u) return;
    if (u->path) {
        if (unlink(u->path) != 0 && errno != ENOENT)
            LOG_KV(LOG_WARN, "cannot delete spool file", LF_S("path", u->path),
                   LF_S("error", strerror(errno)));
        free(u->path);
    }
    free(u);
}

/* ------------------------------------------------------------------------ */
/* records                                                                   */

static api_upload *rec_new(int state, long long limit) {
    api_upload *u = calloc(1, sizeof *u);
    if (u) {
        u->state = state;
        u->limit = limit;
    }
    return u;
}

/* Queues u under a new sequence number; returns it (0 = out of memory: u
 * freed). */
static unsigned rec_push(upl_conn *c, api_upload *u) {
    upl_rec *q = calloc(1, sizeof *q);
    if (!q) {
        api_upload_free(u);
        return 0;
    }
    if (++c->seq == 0) c->seq = 1;
    q->seq = c->seq;
    q->u = u;
    if (c->rq_tail)
        c->rq_tail->next = q;
    else
        c->rq_head = q;
    c->rq_tail = q;
    return q->seq;
}

/* ------------------------------------------------------------------------ */
/* heads                                                                     */

static bool is_hdr(const hf_parser *p, const hf_header *h, const char *name) {
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(p->head + h->name, name, n) == 0;
}

/* The request head again, without Content-Length, Transfer-Encoding, Expect
 * and our own header, with Content-Length: cl, our header for record seq
 * (0 = none) and optionally Connection: close. */
static int emit_head(upl_conn *c, struct evbuffer *dst, long long cl, unsigned seq, bool close) {
    const hf_parser *p = &c->hp;
    const char *eol = memchr(p->head, '\n', p->head_len);
    if (!eol) return -1;
    size_t ll = (size_t)(eol - p->head);
    if (ll && p->head[ll - 1] == '\r') ll--;
    int rc = evbuffer_add(dst, p->head, ll);
    rc |= evbuffer_add(dst, "\r\n", 2);
    for (int i = 0; i < p->nhdr; i++) {
        const hf_header *h = &p->hdr[i];
        if (is_hdr(p, h, "Content-Length") || is_hdr(p, h, "Transfer-Encoding") ||
            is_hdr(p, h, "Expect") || is_hdr(p, h, UPL_HEADER) ||
            (close && is_hdr(p, h, "Connection")))
            continue;
        rc |= evbuffer_add(dst, p->head + h->name, h->name_len);
        rc |= evbuffer_add(dst, ": ", 2);
        rc |= evbuffer_add(dst, p->head + h->value, h->value_len);
        rc |= evbuffer_add(dst, "\r\n", 2);
    }
    rc |= evbuffer_add_printf(dst, "Content-Length: %lld\r\n", cl) < 0;
    if (seq) rc |= evbuffer_add_printf(dst, UPL_HEADER ": %s.%u\r\n", c->nonce, seq) < 0;
    if (close) rc |= evbuffer_add(dst, "Connection: close\r\n", 19);
    rc |= evbuffer_add(dst, "\r\n", 2);
    return rc ? -1 : 0;
}

/* Hands evhttp the head now (Content-Length: 0) with record u. */
static int emit_flagged(upl_conn *c, struct evbuffer *dst, api_upload *u, bool close) {
    unsigned seq = rec_push(c, u);
    if (!seq) return -1;
    return emit_head(c, dst, 0, seq, close);
}

/* ------------------------------------------------------------------------ */
/* spooling                                                                  */

static void spool_abort(upl_conn *c) {
    if (c->sfd >= 0) close(c->sfd);
    c->sfd = -1;
    api_upload_free(c->cur);
    c->cur = NULL;
    free(c->mp);
    c->mp = NULL;
}

static int spool_write(upl_conn *c, const char *d, size_t n) {
    crypto_hash_sha256_update(&c->sha, (const unsigned char *)d, n);
    c->cur->size += (long long)n;
    while (n) {
        ssize_t w = write(c->sfd, d, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(c->cur->error, sizeof c->cur->error, "cannot write the upload: %s",
                     strerror(w < 0 ? errno : EIO));
            return -1;
        }
        d += w;
        n -= (size_t)w;
    }
    return 0;
}

static int on_part(void *ud, int what, const mp_part *part, const char *data, size_t len) {
    upl_conn *c = ud;
    if (what == MP_PART_BEGIN) {
        if (!c->file_seen && !strcmp(part->name, "file")) {
            c->in_file = c->file_seen = true;
            if (part->filename)
                snprintf(c->cur->filename, sizeof c->cur->filename, "%s", part->filename);
        }
    } else if (what == MP_PART_DATA) {
        if (c->in_file && spool_write(c, data, len) != 0) {
            c->io_err = true;
            return -1;
        }
    } else {
        c->in_file = false;
    }
    return 0;
}

/* Media type of a Content-Type value, lower-case, without parameters. */
static void media_type(const char *v, size_t n, char *out, size_t cap) {
    while (n && (*v == ' ' || *v == '\t')) v++, n--;
    size_t k = 0;
    for (size_t i = 0; i < n && v[i] != ';' && v[i] != ' ' && v[i] != '\t' && k + 1 < cap; i++)
        out[k++] = (char)((v[i] >= 'A' && v[i] <= 'Z') ? v[i] + 32 : v[i]);
    out[k] = '\0';
}

/* Starts spooling an upload, or returns the record that refuses it. */
static api_upload *upload_begin(upl_conn *c, struct evbuffer *dst) {
    hf_parser *p = &c->hp;
    size_t vl = 0;
    const char *ct = hf_get(p, "Content-Type", &vl);
    char mt[64] = "";
    if (ct) media_type(ct, vl, mt, sizeof mt);
    char boundary[MP_BOUNDARY_MAX + 1];
    int kind = 0;
    if (!strcmp(mt, "text/csv") || !strcmp(mt, "application/csv")) {
        kind = API_UPL_CSV;
    } else if (!strcmp(mt, "multipart/form-data")) {
        if (mp_boundary(ct, vl, boundary, sizeof boundary) != 0) {
            api_upload *u = rec_new(API_UPL_BAD_BODY, c->limit);
            if (u) {
                u->kind = API_UPL_MULTIPART;
                snprintf(u->error, sizeof u->error,
                         "multipart/form-data needs a boundary parameter (1-70 characters)");
            }
            return u;
        }
        kind = API_UPL_MULTIPART;
    } else {
        return rec_new(API_UPL_UNSUPPORTED, c->limit);
    }
    if (!hf_get(p, "Authorization", &vl) && !hf_get(p, "Cookie", &vl)) {
        api_upload *u = rec_new(API_UPL_NO_AUTH, c->limit);
        if (u) u->kind = kind;
        return u;
    }
    api_upload *u = rec_new(API_UPL_OK, c->limit);
    if (!u) return NULL;
    u->kind = kind;
    char name[33], path[700];
    rnd_hex16(name);
    snprintf(path, sizeof path, "%s/upl-%s.part", c->L->tmpdir, name);
    u->path = strdup(path);
    if (kind == API_UPL_MULTIPART) {
        c->mp = malloc(sizeof *c->mp);
        if (c->mp && mp_init(c->mp, boundary) != 0) {
            free(c->mp);
            c->mp = NULL;
        }
    }
    c->sfd = u->path ? open(u->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    if (!u->path || c->sfd < 0 || (kind == API_UPL_MULTIPART && !c->mp)) {
        int e = u->path ? errno : ENOMEM;
        if (c->sfd >= 0) {
            close(c->sfd);
            unlink(path);
            e = ENOMEM;
        }
        c->sfd = -1;
        free(c->mp);
        c->mp = NULL;
        free(u->path);
        u->path = NULL;
        LOG_KV(LOG_ERROR, "cannot create spool file", LF_S("path", path),
               LF_S("error", strerror(e)));
        u->state = API_UPL_IO;
        snprintf(u->error, sizeof u->error, "cannot store the upload");
        return u;
    }
    crypto_hash_sha256_init(&c->sha);
    c->in_file = c->file_seen = c->io_err = false;
    c->cur = u;
    c->mode = M_SPOOL;
    /* Expect: 100-continue, when evhttp has nothing of ours queued */
    const char *ex = hf_get(p, "Expect", &vl);
    if (ex && p->minor == 1 && hf_value_is(ex, vl, "100-continue") &&
        evbuffer_get_length(dst) == 0 &&
        bufferevent_write(c->under, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0)
        log_msg(LOG_WARN, "cannot send 100 Continue");
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* the framing events                                                        */

/* Path of a request target (origin or absolute form) into out. */
static void target_path(const hf_parser *p, char *out, size_t cap) {
    const char *t = p->head + p->target;
    size_t n = p->target_len;
    if (n > 8 && (!strncasecmp(t, "http://", 7) || !strncasecmp(t, "https://", 8))) {
        const char *s = memchr(t + 8, '/', n - 8);
        if (!s) {
            snprintf(out, cap, "/");
            return;
        }
        n -= (size_t)(s - t);
        t = s;
    }
    size_t k = strcspn(t, "?# ");
    if (k > n) k = n;
    snprintf(out, cap, "%.*s", (int)k, t);
}

static const api_route *route_for(const char *method, const char *path) {
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route *rt = &api_routes[i];
        if (strcmp(rt->method, method) != 0 &&
            !(strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0))
            continue;
        char *pv[API_MAX_PARAMS];
        int npv = 0;
        bool hit = api_match_path(rt->pattern, path, pv, &npv);
        for (int k = 0; k < npv; k++) free(pv[k]);
        if (hit) return rt;
    }
    return NULL;
}

static int on_head(upl_conn *c, struct evbuffer *dst) {
    hf_parser *p = &c->hp;
    const cfg *cf = c->L->cfg;
    char path[1024];
    target_path(p, path, sizeof path);
    const api_route *rt = route_for(p->method, path);
    c->upload = rt && (rt->flags & RT_UPLOAD);
    c->limit = c->upload ? cf->max_upload
               : rt      ? (rt->max_body < 0 ? cf->max_body : rt->max_body)
                         : cf->max_body;
    size_t vl;
    bool ours = hf_get(p, UPL_HEADER, &vl) != NULL;
    long long cl = p->content_length < 0 ? 0 : p->content_length;
    if (cl > c->limit) {
        api_upload *u = rec_new(API_UPL_TOO_LARGE, c->limit);
        if (!u) return -1;
        u->size = cl;
        c->mode = M_DISCARD;
        return emit_flagged(c, dst, u, false);
    }
    if (!c->upload) {
        if (p->chunked) {
            c->body = evbuffer_new();
            c->mode = M_BUFFER;
            return c->body ? 0 : -1;
        }
        c->mode = M_PASS;
        if (ours) return emit_head(c, dst, cl, 0, false);
        return evbuffer_add(dst, p->head, p->head_len);
    }
    api_upload *refused = upload_begin(c, dst);
    if (c->mode == M_SPOOL) return 0;
    if (!refused) return -1;
    c->mode = M_DISCARD;
    return emit_flagged(c, dst, refused, false);
}

static int on_data(upl_conn *c, struct evbuffer *dst, const char *d, size_t n) {
    switch (c->mode) {
    case M_PASS:
        return evbuffer_add(dst, d, n);
    case M_BUFFER:
        if (c->hp.body_total > c->limit) {
            evbuffer_free(c->body);
            c->body = NULL;
            api_upload *u = rec_new(API_UPL_TOO_LARGE, c->limit);
            if (!u) return -1;
            u->size = c->hp.body_total;
            c->mode = M_DISCARD;
            return emit_flagged(c, dst, u, false);
        }
        return evbuffer_add(c->body, d, n);
    case M_SPOOL: {
        int bad = 0;
        if (c->hp.body_total > c->limit) {
            bad = API_UPL_TOO_LARGE;
        } else if (c->mp) {
            if (mp_feed(c->mp, d, n, on_part, c) != 0)
                bad = c->io_err ? API_UPL_IO : API_UPL_BAD_BODY;
        } else if (spool_write(c, d, n) != 0) {
            bad = API_UPL_IO;
        }
        if (!bad) return 0;
        api_upload *u = rec_new(bad, c->limit);
        if (!u) return -1;
        u->kind = c->cur->kind;
        if (bad == API_UPL_TOO_LARGE) u->size = c->hp.body_total;
        if (bad == API_UPL_BAD_BODY)
            snprintf(u->error, sizeof u->error, "malformed multipart body: %s", c->mp->err);
        if (bad == API_UPL_IO) snprintf(u->error, sizeof u->error, "%s", c->cur->error);
        if (bad == API_UPL_IO)
            LOG_KV(LOG_ERROR, "cannot write spool file", LF_S("error", c->cur->error));
        spool_abort(c);
        c->mode = M_DISCARD;
        return emit_flagged(c, dst, u, false);
    }
    default:
        return 0; /* M_DISCARD */
    }
}

static int on_done(upl_conn *c, struct evbuffer *dst) {
    int mode = c->mode;
    c->mode = M_HEAD;
    if (mode == M_BUFFER) {
        size_t n = evbuffer_get_length(c->body);
        int rc = emit_head(c, dst, (long long)n, 0, false);
        if (rc == 0) rc = evbuffer_add_buffer(dst, c->body);
        evbuffer_free(c->body);
        c->body = NULL;
        return rc;
    }
    if (mode != M_SPOOL) return 0;
    api_upload *u = c->cur;
    c->cur = NULL;
    if (c->mp && mp_finish(c->mp) != 0) {
        u->state = API_UPL_BAD_BODY;
        snprintf(u->error, sizeof u->error, "malformed multipart body: %s", c->mp->err);
    } else if (c->mp && !c->file_seen) {
        u->state = API_UPL_BAD_BODY;
        u->missing_file = true;
        snprintf(u->error, sizeof u->error, "the multipart body has no part named file");
    }
    free(c->mp);
    c->mp = NULL;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&c->sha, h);
    sodium_bin2hex(u->sha256, sizeof u->sha256, h, sizeof h);
    if (close(c->sfd) != 0 && u->state == API_UPL_OK) {
        u->state = API_UPL_IO;
        snprintf(u->error, sizeof u->error, "cannot write the upload: %s", strerror(errno));
    }
    c->sfd = -1;
    if (u->state != API_UPL_OK && u->path) {
        unlink(u->path);
        free(u->path);
        u->path = NULL;
    }
    return emit_flagged(c, dst, u, false);
}

static int on_error(upl_conn *c, struct evbuffer *dst) {
    if (c->mode == M_HEAD) {
        /* a malformed head: evhttp sees it as it came and answers 400 */
        c->mode = M_RAW;
        return c->hp.head_len ? evbuffer_add(dst, c->hp.head, c->hp.head_len) : 0;
    }
    bool head_out = c->mode == M_PASS || c->mode == M_DISCARD;
    int kind = c->cur ? c->cur->kind : 0;
    spool_abort(c);
    if (c->body) evbuffer_free(c->body);
    c->body = NULL;
    c->mode = M_DROP;
    if (head_out) return 0;
    api_upload *u = rec_new(API_UPL_BAD_FRAMING, c->limit);
    if (!u) return -1;
    u->kind = kind;
    snprintf(u->error, sizeof u->error, "malformed request body: %s", c->hp.err);
    return emit_flagged(c, dst, u, true);
}

/* Runs the framing over b[0..len). -1 on out of memory. */
static int process(upl_conn *c, const char *b, size_t len, struct evbuffer *dst) {
    size_t off = 0;
    for (;;) {
        if (c->mode == M_RAW) return off < len ? evbuffer_add(dst, b + off, len - off) : 0;
        if (c->mode == M_DROP) return 0;
        int ev;
        const char *d;
        size_t dl;
        long n = hf_feed(&c->hp, b + off, len - off, &ev, &d, &dl);
        if (n < 0) return -1;
        off += (size_t)n;
        int rc = 0;
        switch (ev) {
        case HF_NEED_MORE:
            return 0;
        case HF_HEAD:
            rc = on_head(c, dst);
            break;
        case HF_DATA:
            rc = on_data(c, dst, d, dl);
            break;
        case HF_DONE:
            rc = on_done(c, dst);
            break;
        default:
            rc = on_error(c, dst);
            break;
        }
        if (rc != 0) return -1;
    }
}

/* ------------------------------------------------------------------------ */
/* the filter                                                                */

static void register_fd(upl_conn *c) {
    evutil_socket_t fd = bufferevent_getfd(c->under);
    if (fd < 0) return;
    upl_loop *L = c->L;
    if ((size_t)fd >= L->nfd) {
        size_t n = L->nfd ? L->nfd : 256;
        while (n <= (size_t)fd) n *= 2;
        upl_conn **nb = realloc(L->byfd, n * sizeof *nb);
        if (!nb) return; /* upl_take then finds nothing: uploads answer 400 */
        memset(nb + L->nfd, 0, (n - L->nfd) * sizeof *nb);
        L->byfd = nb;
        L->nfd = n;
    }
    L->byfd[fd] = c;
    c->fd = (int)fd;
}

static enum bufferevent_filter_result in_filter(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *ctx) {
    ML_UNUSED(limit);
    upl_conn *c = ctx;
    /* Only while evhttp reads (BEV_NORMAL runs only when reading is
     * enabled); a flush must never push a request at it mid-reply. */
    if (mode != BEV_NORMAL || evbuffer_get_length(src) == 0) return BEV_NEED_MORE;
    if (c->fd < 0) register_fd(c);
    while (evbuffer_get_length(src)) {
        struct evbuffer_iovec v[UPL_IOV];
        int n = evbuffer_peek(src, -1, NULL, v, UPL_IOV);
        if (n > UPL_IOV) n = UPL_IOV;
        size_t used = 0;
        for (int i = 0; i < n; i++) {
            if (process(c, v[i].iov_base, v[i].iov_len, dst) != 0) {
                log_msg(LOG_ERROR, "upload filter: out of memory");
                return BEV_ERROR;
            }
            used += v[i].iov_len;
        }
        evbuffer_drain(src, used);
    }
    return BEV_OK; /* also resets evhttp's read timeout while a body streams */
}

/* Output: straight from the filter's output buffer to the socket.  evhttp
 * counts a reply as written when the FILTER's output is empty; it then
 * shuts the socket down at once on "Connection: close" (and when it drops a
 * connection).  Bytes moved on into the socket bufferevent would still be
 * waiting there and be lost, so none are: what the kernel does not take stays
 * in the filter's output, and a one-shot write event on the socket resumes
 * (flush_cb) when it can take more.  The socket bufferevent's own output is
 * never used. */
static void on_writable(evutil_socket_t fd, short what, void *arg);

static enum bufferevent_filter_result out_filter(struct evbuffer *src, struct evbuffer *dst,
                                                 ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                 void *ctx) {
    ML_UNUSED(dst);
    ML_UNUSED(limit);
    ML_UNUSED(mode);
    upl_conn *c = ctx;
    /* Only from flush_cb / on_writable, i.e. after the current callback:
     * libevent runs this at once when evhttp adds bytes while writing is
     * enabled (a streamed reply), and evhttp may set the "written" callback
     * only after adding them (evhttp_send_reply_end) — a reply counted as
     * written before that would never complete, and the connection would
     * never read its next request. */
    if (!c->in_flush) return BEV_NEED_MORE;
    evutil_socket_t fd = bufferevent_getfd(c->under);
    if (fd < 0) return evbuffer_get_length(src) ? BEV_ERROR : BEV_OK;
    while (evbuffer_get_length(src) > 0) {
        int n = evbuffer_write(src, fd);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return BEV_ERROR;
        /* the kernel's buffer is full: resume when the socket is writable */
        if (!c->wr_ev)
            c->wr_ev = event_new(bufferevent_get_base(c->bev), fd, EV_WRITE, on_writable, c);
        if (!c->wr_ev || event_add(c->wr_ev, NULL) != 0) return BEV_ERROR;
        return BEV_NEED_MORE; /* (BEV_OK would make libevent call again at once) */
    }
    return BEV_OK;
}

/* evhttp writes a reply into the filter's output and only then enables
 * writing; a filter bufferevent moves output on when data is added while
 * writing is enabled, not when writing gets enabled.  So every addition
 * schedules one flush for after the current callback (holding a reference,
 * so the bufferevent cannot be finalized meanwhile). */
static void flush_cb(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    upl_conn *c = arg;
    struct bufferevent *bev = c->bev;
    c->flush_pending = false;
    c->in_flush = true;
    bufferevent_flush(bev, EV_WRITE, BEV_NORMAL);
    c->in_flush = false;     /* c is alive: the reference taken in out_cb */
    bufferevent_decref(bev); /* may free c */
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
    ML_UNUSED(fd);
    ML_UNUSED(what);
    upl_conn *c = arg;
    struct bufferevent *bev = c->bev;
    bufferevent_incref(bev);
    c->in_flush = true;
    bufferevent_flush(bev, EV_WRITE, BEV_NORMAL);
    c->in_flush = false;
    bufferevent_decref(bev); /* may free c */
}

static void out_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg) {
    ML_UNUSED(b);
    upl_conn *c = arg;
    if (info->n_added == 0 || c->flush_pending) return;
    c->flush_pending = true;
    bufferevent_incref(c->bev);
    event_active(c->flush_ev, 0, 0);
}

static void conn_free(void *ctx) {
    upl_conn *c = ctx;
    if (!c) return;
    if (c->flush_ev) event_free(c->flush_ev);
    if (c->wr_ev) event_free(c->wr_ev);
    if (c->fd >= 0 && (size_t)c->fd < c->L->nfd && c->L->byfd[c->fd] == c) c->L->byfd[c->fd] = NULL;
    spool_abort(c);
    if (c->body) evbuffer_free(c->body);
    while (c->rq_head) {
        upl_rec *q = c->rq_head;
        c->rq_head = q->next;
        api_upload_free(q->u);
        free(q);
    }
    hf_free(&c->hp);
    free(c);
}

static struct bufferevent *make_bev(struct event_base *base, void *arg) {
    upl_loop *L = arg;
    upl_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL; /* evhttp falls back to a plain socket bufferevent */
    c->L = L;
    c->fd = -1;
    c->sfd = -1;
    c->mode = M_HEAD;
    hf_init(&c->hp);
    rnd_hex16(c->nonce);
    c->under = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->under) {
        free(c);
        return NULL;
    }
    bufferevent_set_max_single_read(c->under, UPL_MAX_READ);
    c->flush_ev = event_new(base, -1, 0, flush_cb, c);
    if (!c->flush_ev) {
        bufferevent_free(c->under);
        free(c);
        return NULL;
    }
    c->bev = bufferevent_filter_new(c->under, in_filter, out_filter, BEV_OPT_CLOSE_ON_FREE,
                                    conn_free, c);
    if (!c->bev) {
        event_free(c->flush_ev);
        bufferevent_free(c->under);
        free(c);
        return NULL;
    }
    if (!evbuffer_add_cb(bufferevent_get_output(c->bev), out_cb, c)) {
        bufferevent_free(c->bev); /* conn_free frees c */
        return NULL;
    }
    return c->bev;
}

upl_loop *upl_loop_new(struct evhttp *http, const cfg *c, char *err, size_t errlen) {
    upl_loop *L = calloc(1, sizeof *L);
    if (!L) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    L->cfg = c;
    snprintf(L->tmpdir, sizeof L->tmpdir, "%s/tmp", c->storage_dir);
    if (upl_mkdirs(L->tmpdir, 0750) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", L->tmpdir, strerror(errno));
        free(L);
        return NULL;
    }
    evhttp_set_bevcb(http, make_bev, L);
    return L;
}

int upl_sweep(const char *storage_dir, long long older_than_s) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tmp", storage_dir);
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    time_t cutoff = time(NULL) - (time_t)older_than_s;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, "upl-", 4) != 0 || n < 9 || strcmp(de->d_name + n - 5, ".part"))
            continue; /* only our spool names */
        char path[1400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < cutoff &&
            unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

void upl_loop_free(upl_loop *u) {
    if (!u) return;
    free(u->byfd);
    free(u);
}

api_upload *upl_take(upl_loop *u, struct evhttp_request *ev) {
    struct evkeyvalq *ih = evhttp_request_get_input_headers(ev);
    const char *v = ih ? evhttp_find_header(ih, UPL_HEADER) : NULL;
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    if (!v || !evcon || !u) return NULL;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0 || (size_t)fd >= u->nfd) return NULL;
    upl_conn *c = u->byfd[fd];
    if (!c || c->bev != bev) return NULL;
    const char *dot = strchr(v, '.');
    if (!dot || (size_t)(dot - v) != strlen(c->nonce) || strncmp(v, c->nonce, strlen(c->nonce)))
        return NULL;
    char *end;
    unsigned long seq = strtoul(dot + 1, &end, 10);
    if (*end || seq == 0) return NULL;
    /* records before it were never dispatched (evhttp answered itself) */
    while (c->rq_head && c->rq_head->seq != seq) {
        upl_rec *q = c->rq_head;
        c->rq_head = q->next;
        api_upload_free(q->u);
        free(q);
    }
    if (!c->rq_head) {
        c->rq_tail = NULL;
        return NULL;
    }
    upl_rec *q = c->rq_head;
    c->rq_head = q->next;
    if (!c->rq_head) c->rq_tail = NULL;
    api_upload *r = q->u;
    free(q);
    evhttp_remove_header(ih, UPL_HEADER);
    return r;
}
