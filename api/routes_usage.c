/* routes_usage.c — POST /v1/usage: validate, resolve, enqueue (h_usage_ingest).
 *
 * DESIGN — The route is RT_FAST: it first runs on the loop thread with
 * r->db == NULL, credentials from the auth cache and customer / metric ids
 * from the catalog cache below; the rows go to the batcher (ingest.h), which
 * answers.  Anything the caches cannot answer (a customer seen for the first
 * time, an unknown one, an admin's ?org=, an Idempotency-Key) runs the same
 * handler again on a database thread, which resolves the names in one query
 * per kind, fills the caches and enqueues the batch itself with r->jq.
 *
 * The common bodies — one flat event of plain ASCII strings, or a batch of
 * them — are read without jansson (uin_fast.h; server.c then leaves r->json
 * NULL, and keeps a batch in r->fast_batch); any other body goes through
 * jx_loadb + uin_parse.
 *
 * All-or-nothing: any invalid event → 422 listing every bad field, nothing
 * enqueued.  Customers and metrics are never deleted and external_id / code
 * never change, so a cached id stays right; entries still expire after
 * CAT_TTL_US as a safety net, and unknown names are never cached (a customer
 * created a moment ago is found).
 */
#include "fmacros.h"
#include "routes.h"
#include "ingest.h"
#include "log.h"
#include "tcache.h"
#include "ts.h"
#include "uin.h"
#include "uin_fast.h"
#include "usage.h"
#include <pthread.h>
#include <stdlib.h>

#define CAT_TTL_US  (10LL * 60 * 1000000)
#define CAT_MAX_ENT 262144

static tc *g_cat;
static pthread_once_t g_cat_once = PTHREAD_ONCE_INIT;
static void cat_init(void) { g_cat = tc_new(CAT_MAX_ENT, CAT_TTL_US); }
static tc *cat(void) {
    pthread_once(&g_cat_once, cat_init);
    return g_cat;
}

static void cat_key(char *k, size_t cap, char kind, long long org, const char *name) {
    snprintf(k, cap, "%c:%lld:%s", kind, org, name);
}

typedef struct resolved {
    long long customer;
    repo_metric_ref metric;
} resolved;

/* ---- a per-thread front for the catalog cache --------------------------
 * A loop thread sees the same few customers and metrics again and again;
 * a small direct-mapped table of what the shared cache answered saves the
 * key formatting, the mutex and the hash per lookup.  Entries live
 * TL_TTL_US (names never change meaning; see the top), misses are never
 * kept. */
#define TL_SLOTS  64
#define TL_NAME   64 /* longer names always ask the shared cache */
#define TL_TTL_US 1000000LL

typedef struct tl_ent {
    int64_t until; /* 0 = empty */
    long long org;
    char kind;
    char name[TL_NAME + 1];
    union {
        long long customer;
        repo_metric_ref metric;
    } v;
} tl_ent;

static _Thread_local tl_ent tl_cat[TL_SLOTS];

static tl_ent *tl_slot(char kind, long long org, const char *name, size_t len) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)org ^ ((uint64_t)(unsigned char)kind << 56);
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)name[i]) * 1099511628211ULL;
    return &tl_cat[(h ^ (h >> 29)) % TL_SLOTS];
}

/* Copies len bytes of the value for (kind, org, name) into val; false on miss. */
static bool cat_get(char kind, long long org, const char *name, void *val, size_t len,
                    int64_t now) {
    size_t nl = strlen(name);
    tl_ent *t = nl <= TL_NAME ? tl_slot(kind, org, name, nl) : NULL;
    if (t && t->until > now && t->kind == kind && t->org == org && !strcmp(t->name, name)) {
        memcpy(val, &t->v, len);
        return true;
    }
    tc *c = cat();
    char k[300];
    cat_key(k, sizeof k, kind, org, name);
    if (!c || !tc_get(c, k, val, len)) return false;
    if (t) {
        t->until = now + TL_TTL_US;
        t->org = org;
        t->kind = kind;
        memcpy(t->name, name, nl + 1);
        memcpy(&t->v, val, len);
    }
    return true;
}

/* Fills res[] from the cache; returns how many lookups missed. */
static size_t from_cache(long long org, const uin_batch *b, resolved *res) {
    size_t miss = 0;
    int64_t now = ts_now();
    for (size_t i = 0; i < b->n; i++) {
        if (!cat_get('c', org, b->ev[i].customer, &res[i].customer, sizeof res[i].customer, now)) {
            res[i].customer = 0;
            miss++;
        }
        if (!cat_get('m', org, b->ev[i].metric, &res[i].metric, sizeof res[i].metric, now)) {
            res[i].metric.id = 0;
            miss++;
        }
    }
    return miss;
}

/* Looks the misses up (database thread) and caches what it found. */
static int from_db(api_req *r, const uin_batch *b, resolved *res) {
    long long org = r->who.org_id;
    size_t nc = 0, nm = 0;
    const char **cn = calloc(b->n, sizeof *cn), **mn = calloc(b->n, sizeof *mn);
    size_t *ci = calloc(b->n, sizeof *ci), *mi = calloc(b->n, sizeof *mi);
    long long *cid = calloc(b->n, sizeof *cid);
    repo_metric_ref *mref = calloc(b->n, sizeof *mref);
    int rc = -1;
    db_err e;
    if (!cn || !mn || !ci || !mi || !cid || !mref) {
        api_err(r, 503, "unavailable", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (!res[i].customer) {
            ci[nc] = i;
            cn[nc++] = b->ev[i].customer;
        }
        if (!res[i].metric.id) {
            mi[nm] = i;
            mn[nm++] = b->ev[i].metric;
        }
    }
    if (repo_customer_refs(r->db, &e, org, cn, nc, cid) != REPO_OK ||
        repo_metric_refs(r->db, &e, org, mn, nm, mref) != REPO_OK) {
        api_db_fail(r, &e);
        goto out;
    }
    tc *c = cat();
    char k[300];
    for (size_t j = 0; j < nc; j++) {
        res[ci[j]].customer = cid[j];
        if (cid[j] && c) {
            cat_key(k, sizeof k, 'c', org, cn[j]);
            tc_put(c, k, &cid[j], sizeof cid[j]);
        }
    }
    for (size_t j = 0; j < nm; j++) {
        res[mi[j]].metric = mref[j];
        if (mref[j].id && c) {
            cat_key(k, sizeof k, 'm', org, mn[j]);
            tc_put(c, k, &mref[j], sizeof mref[j]);
        }
    }
    rc = 0;
out:
    free(cn);
    free(mn);
    free(ci);
    free(mi);
    free(cid);
    free(mref);
    return rc;
}

/* No problem for check_resolved to report. */
static bool all_resolved(const uin_batch *b, const resolved *res) {
    for (size_t i = 0; i < b->n; i++)
        if (!res[i].customer || !res[i].metric.id || res[i].metric.unique_property[0]) return false;
    return true;
}

/* Unknown names and unique_count events without their property. */
static void check_resolved(const uin_batch *b, const resolved *res, jx_errs *e) {
    for (size_t i = 0; i < b->n; i++) {
        char pfx[32] = "";
        if (!b->single) snprintf(pfx, sizeof pfx, "events[%zu]", i);
        const uin_event *ev = &b->ev[i];
        if (!res[i].customer)
            jx_errs_addp(e, pfx, "customer_id", "unknown customer \"%.128s\"", ev->customer);
        const repo_metric_ref *m = &res[i].metric;
        if (!m->id) {
            jx_errs_addp(e, pfx, "metric", "unknown metric \"%.64s\"", ev->metric);
        } else if (m->unique_property[0]) {
            json_t *v = ev->props ? json_object_get(ev->props, m->unique_property) : NULL;
            if (!v || json_is_null(v))
                jx_errs_addp(e, pfx, "properties",
                             "must include \"%s\": metric %.64s counts unique values of it",
                             m->unique_property, ev->metric);
        }
    }
}

static char *rows_text(const uin_batch *b, const resolved *res, size_t *len) {
    buf t;
    buf_init(&t);
    buf_reserve(&t, 160 * b->n); /* a typical row; grows if need be */
    for (size_t i = 0; i < b->n; i++) {
        const uin_event *ev = &b->ev[i];
        char ts[TS_FMT_MAX];
        if (ts_format(ev->ts_us, ts, sizeof ts) < 0) {
            buf_free(&t);
            return NULL;
        }
        db_usage_row_text(&t, res[i].customer, res[i].metric.id, ev->event_id, ev->quantity, ts,
                          ev->properties);
    }
    if (t.oom) {
        buf_free(&t);
        return NULL;
    }
    *len = t.len;
    return t.p ? t.p : strdup("");
}

/* Database thread: enqueue one job with r->jq and answer. */
static void enqueue_here(api_req *r, char *rows, size_t len, const uin_batch *b) {
    char *payload = api_ingest_payload(rows, len, b->min_us, b->max_us);
    free(rows);
    if (!payload) {
        api_err(r, 503, "unavailable", "out of memory");
        return;
    }
    char id[JQ_ID_MAX], err[256];
    jq_enqueue_opts o = {.max_attempts = API_INGEST_MAX_ATTEMPTS, .keep_ms = API_INGEST_KEEP_MS};
    int rc =
        jq_enqueue(r->jq, API_INGEST_TYPE, r->who.org_id, payload, &o, id, NULL, err, sizeof err);
    free(payload);
    if (rc != JQ_OK) {
        LOG_KV(LOG_WARN, "usage enqueue failed", LF_S("error", err));
        api_header(r, "Retry-After", "1");
        api_err(r, 503, "unavailable", "usage not accepted: the job queue is unreachable");
        return;
    }
    api_json(r, 202, json_pack("{s:I, s:s}", "accepted", (json_int_t)b->n, "job_id", id));
}

/* The body as JSON when server.c left it to us (RT_FAST and not the flat
 * shape uin_fast reads): the same checks and answers as server.c's. */
static int load_json(api_req *r) {
    char err[256];
    r->json = jx_loadb(r->body, r->body_len, err, sizeof err);
    if (!r->json) {
        api_err(r, 400, "bad_request", "invalid JSON: %s", err);
        return -1;
    }
    if (!json_is_object(r->json)) {
        api_err(r, 400, "bad_request", "the body must be a JSON object");
        return -1;
    }
    return 0;
}

void h_usage_ingest(api_req *r) {
    if (r->who.org_id == 0) { /* ROLE_ADMIN without ?org= cannot reach here (RT_ORG) */
        api_err(r, 400, "bad_request", "choose an organization with ?org=<slug>");
        return;
    }
    jx_errs *e = NULL;
    uin_batch b = {0};
    uin_fast f;
    bool fast = false;
    resolved one, *res = &one;
    int64_t now = ts_now();
    if (r->fast_batch) {
        b = *r->fast_batch; /* read by server.c; r keeps it (this may be a rerun) */
        fast = true;
    } else if (!r->json) {
        fast = uin_fast_parse(r->body, r->body_len, now, &f);
        if (!fast && load_json(r) != 0) return;
        if (fast)
            b = (uin_batch){
                .ev = &f.ev, .n = 1, .single = true, .min_us = f.ev.ts_us, .max_us = f.ev.ts_us};
    }
    if (!fast) {
        e = jx_errs_new();
        if (!e) {
            api_err(r, 503, "unavailable", "out of memory");
            return;
        }
        if (uin_parse(r->json, now, &b, e) != 0) {
            api_invalid(r, e);
            goto out;
        }
    }
    if (b.n > 1 && !(res = calloc(b.n, sizeof *res))) {
        api_err(r, 503, "unavailable", "out of memory");
        goto out;
    }
    if (b.n == 1) memset(&one, 0, sizeof one);
    if (from_cache(r->who.org_id, &b, res) > 0) {
        if (!r->db) {
            api_defer_db(r);
            goto out;
        }
        if (from_db(r, &b, res) != 0) goto out;
    }
    if (!all_resolved(&b, res)) {
        if (!e && !(e = jx_errs_new())) {
            api_err(r, 503, "unavailable", "out of memory");
            goto out;
        }
        check_resolved(&b, res, e);
        if (jx_errs_count(e)) {
            api_invalid(r, e);
            goto out;
        }
    }
    size_t len = 0;
    char *rows = rows_text(&b, res, &len);
    if (!rows) {
        api_err(r, 503, "unavailable", "out of memory");
        goto out;
    }
    if (r->db)
        enqueue_here(r, rows, len, &b);
    else
        api_ingest_submit(r, r->who.org_id, rows, len, b.n, b.min_us, b.max_us); /* r is gone */
out:
    if (res != &one) free(res);
    if (!fast) uin_batch_free(&b);
    jx_errs_free(e);
}
