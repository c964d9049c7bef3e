/* test_imports_api.c — POST/GET /v1/usage/imports over real HTTP: the body
 * streamed to disk by the connection filter (api/upload.c), stored
 * byte-identical under BILLING_STORAGE_DIR, the usage_imports row and the
 * usage.import job; refused bodies (413 JSON, 415, 401) leave no file; a
 * 200 MB upload keeps billing-api's peak memory flat.  No worker runs: the
 * job stays queued. */
#include "fmacros.h"
#include "th.h"
#include "rnd.h"
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

static th_server *srv;
static char tok[64], slug[64];

/* Under AddressSanitizer freed memory sits in a quarantine (256 MB by
 * default) and counts in VmHWM: keep it small so the memory test measures
 * what the server holds. */
static const char *const *asan_env(void) {
    static char opt[512];
    static const char *env[2];
    const char *cur = getenv("ASAN_OPTIONS");
    snprintf(opt, sizeof opt, "ASAN_OPTIONS=%s%squarantine_size_mb=8", cur ? cur : "",
             cur && *cur ? ":" : "");
    env[0] = opt;
    env[1] = NULL;
    return env;
}

static void setup(void) {
    srv = th_start(asan_env());
    th_signup(srv, tok, slug, NULL);
}
static void teardown(void) { cr_expect_eq(th_stop(srv), 0, "billing-api must exit 0 on SIGTERM"); }

/* ---- a small libcurl client: body from memory or generated ------------- */

typedef struct src {
    const char *p;
    size_t n, off;
    long long gen_total, gen_off; /* generated CSV when gen_total > 0 */
    pid_t watch_pid;              /* sample VmHWM of this pid while sending */
    long max_hwm_kb;
} src;

static long vm_hwm_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud) {
    src *s = ud;
    size_t cap = size * nmemb;
    if (s->gen_total > 0) {
        size_t n = 0;
        static const char line[] = "ev-0000000000,cust-1,api_calls,2026-01-01T00:00:00Z,1\n";
        while (n + sizeof line - 1 <= cap && s->gen_off < s->gen_total) {
            memcpy(buf + n, line, sizeof line - 1);
            n += sizeof line - 1;
            s->gen_off += (long long)(sizeof line - 1);
        }
        if (s->watch_pid && (s->gen_off & ((16 << 20) - 1)) < (long long)n) {
            long kb = vm_hwm_kb(s->watch_pid);
            if (kb > s->max_hwm_kb) s->max_hwm_kb = kb;
        }
        return n;
    }
    size_t n = s->n - s->off < cap ? s->n - s->off : cap;
    memcpy(buf, s->p + s->off, n);
    s->off += n;
    return n;
}

typedef struct reply {
    long status;
    json_t *json;
    char *body;
} reply;

static void reply_free(reply *r) {
    json_decref(r->json);
    free(r->body);
}

/* POST path with body (or generated data) as content type ct; chunked when
 * asked.  Uses handle c when given (keep-alive). */
static reply post_file(CURL *c, const char *path, const char *ct, src *s, bool chunked,
                       const char *token) {
    bool own = !c;
    if (own) c = curl_easy_init();
    cr_assert(c);
    char url[512], auth[128], cth[128];
    snprintf(url, sizeof url, "%s%s", srv->base, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    snprintf(cth, sizeof cth, "Content-Type: %s", ct);
    struct curl_slist *hl = NULL;
    if (token) hl = curl_slist_append(hl, auth);
    hl = curl_slist_append(hl, cth);
    hl = curl_slist_append(hl, "Expect:");
    if (chunked) hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
    th_body b = {0};
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, s);
    if (!chunked)
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(s->gen_total > 0 ? s->gen_total : (long long)s->n));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_curl_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    reply r = {0};
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    if (own) curl_easy_cleanup(c);
    r.body = b.p ? b.p : strdup("");
    r.json = json_loads(r.body, 0, NULL);
    return r;
}

/* The stored file and sha256 of import id (from the row). */
static char *stored_file(const char *id, size_t *len, char sha[65]) {
    PGconn *pg = th_pg();
    const char *pv[] = {id};
    PGresult *res = PQexecParams(pg, "SELECT file_path, sha256 FROM usage_imports WHERE id = $1", 1,
                                 NULL, pv, NULL, NULL, 0);
    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "no row for %s", id);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", getenv("BILLING_STORAGE_DIR"), PQgetvalue(res, 0, 0));
    snprintf(sha, 65, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    PQfinish(pg);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "stored file %s missing", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    cr_assert(p && fread(p, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static int tmp_files(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tmp", getenv("BILLING_STORAGE_DIR"));
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static char *make_csv(size_t rows, size_t *len) {
    size_t cap = rows * 80 + 128, n = 0;
    char *p = malloc(cap);
    cr_assert(p);
    n += (size_t)snprintf(p, cap, "event_id,customer_id,metric,timestamp,quantity\r\n");
    for (size_t i = 0; i < rows; i++)
        n += (size_t)snprintf(p + n, cap - n, "e-%zu,cust-%zu,api_calls,2026-01-01T00:00:00Z,%zu\n",
                              i, i % 7, i);
    *len = n;
    return p;
}

static void expect_stored(const char *id, const char *data, size_t n) {
    size_t len;
    char sha[65], want[RND_HASH_HEX];
    char *got = stored_file(id, &len, sha);
    rnd_sha256_hex(data, n, want);
    cr_expect_eq(len, n, "stored %zu bytes, sent %zu", len, n);
    cr_expect(len == n && !memcmp(got, data, n), "stored file differs from the upload");
    cr_expect_str_eq(sha, want, "row sha256");
    free(got);
}

TestSuite(imports, .init = setup, .fini = teardown, .timeout = 120);

Test(imports, csv_body_stored_byte_identical_with_row_and_job) {
    size_t n;
    char *csv = make_csv(3000, &n);
    src s = {csv, n, 0, 0, 0, 0, 0};
    reply r = post_file(NULL, "/v1/usage/imports?on_error=skip", "text/csv", &s, false, tok);
    cr_assert_eq(r.status, 202, "%s", r.body);
    const char *id = th_str(r.json, "import_id");
    cr_expect_str_eq(th_str(r.json, "status"), "queued");
    expect_stored(id, csv, n);
    char path[128];
    snprintf(path, sizeof path, "/v1/usage/imports/%s", id);
    th_resp g = th_auth(srv, tok, "GET", path, NULL);
    cr_expect_eq(g.status, 200, "%s", g.body);
    cr_expect_str_eq(th_str(g.json, "on_error"), "skip");
    cr_expect_str_eq(th_str(g.json, "status"), "queued");
    cr_expect_eq(json_integer_value(th_get(g.json, "size_bytes")), (json_int_t)n);
    cr_expect_str_eq(th_str(g.json, "job_id"), th_str(r.json, "job_id"));
    th_resp_free(&g);
    /* the job is queued, of type usage.import, for this organization */
    snprintf(path, sizeof path, "/v1/jobs/%s", th_str(r.json, "job_id"));
    g = th_auth(srv, tok, "GET", path, NULL);
    cr_expect_eq(g.status, 200, "%s", g.body);
    cr_expect_str_eq(th_str(g.json, "type"), "usage.import");
    th_resp_free(&g);
    /* newest first in the listing */
    g = th_auth(srv, tok, "GET", "/v1/usage/imports?limit=1", NULL);
    cr_expect_eq(g.status, 200);
    cr_expect_str_eq(th_str(g.json, "data.0.id"), id);
    th_resp_free(&g);
    reply_free(&r);
    free(csv);
}

Test(imports, multipart_file_part_only_with_boundary_like_lines) {
    static const char csv[] = "event_id,customer_id,metric\r\n"
                              "--XyZ-not-the-boundary,c,m\r\n"
                              "\r\n--XyZbound,c,m\r\n" /* a prefix of the delimiter, then more */
                              "last,c,m\n";
    char body[1024];
    int n =
        snprintf(body, sizeof body,
                 "preamble\r\n--XyZbound\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n"
                 "hello\r\n--XyZbound\r\nContent-Disposition: form-data; name=\"file\"; "
                 "filename=\"C:\\\\data\\\\usage.csv\"\r\nContent-Type: text/csv\r\n\r\n%s\r\n"
                 "--XyZbound--\r\nepilogue",
                 csv);
    src s = {body, (size_t)n, 0, 0, 0, 0, 0};
    reply r = post_file(NULL, "/v1/usage/imports", "multipart/form-data; boundary=XyZbound", &s,
                        true, tok);
    cr_assert_eq(r.status, 202, "%s", r.body);
    expect_stored(th_str(r.json, "import_id"), csv, sizeof csv - 1);
    char path[128];
    snprintf(path, sizeof path, "/v1/usage/imports/%s", th_str(r.json, "import_id"));
    th_resp g = th_auth(srv, tok, "GET", path, NULL);
    cr_expect_str_eq(th_str(g.json, "filename"), "usage.csv");
    th_resp_free(&g);
    reply_free(&r);
}

Test(imports, chunked_upload_then_json_on_the_same_connection) {
    size_t n;
    char *csv = make_csv(20000, &n);
    CURL *c = curl_easy_init();
    src s = {csv, n, 0, 0, 0, 0, 0};
    reply r = post_file(c, "/v1/usage/imports", "text/csv; charset=utf-8", &s, true, tok);
    cr_assert_eq(r.status, 202, "%s", r.body);
    expect_stored(th_str(r.json, "import_id"), csv, n);
    reply_free(&r);
    /* keep-alive: a JSON request right after, on the same connection */
    char url[256], auth[128];
    snprintf(url, sizeof url, "%s/v1/me", srv->base);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
    struct curl_slist *hl = curl_slist_append(NULL, auth);
    th_body b = {0};
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_curl_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    long st = 0, conns = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    cr_expect_eq(st, 200, "%s", b.p ? b.p : "");
    cr_expect_eq(conns, 0, "the second request needed a new connection");
    curl_slist_free_all(hl);
    free(b.p);
    curl_easy_cleanup(c);
    free(csv);
}

Test(imports, refused_uploads_leave_no_file) {
    int before = tmp_files();
    static const char csv[] = "event_id,customer_id,metric\ne,c,m\n";
    src s = {csv, sizeof csv - 1, 0, 0, 0, 0, 0};
    reply r = post_file(NULL, "/v1/usage/imports", "application/json", &s, false, tok);
    cr_expect_eq(r.status, 415, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "error.code"), "unsupported_media_type");
    reply_free(&r);
    s.off = 0;
    r = post_file(NULL, "/v1/usage/imports", "text/csv", &s, false, "mk_not-a-key");
    cr_expect_eq(r.status, 401, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "error.code"), "unauthenticated");
    reply_free(&r);
    s.off = 0;
    r = post_file(NULL, "/v1/usage/imports", "text/csv", &s, false, NULL);
    cr_expect_eq(r.status, 401, "%s", r.body);
    reply_free(&r);
    s.off = 0;
    r = post_file(NULL, "/v1/usage/imports?on_error=maybe", "text/csv", &s, false, tok);
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect(json_is_array(th_get(r.json, "error.details")));
    cr_expect_str_eq(th_str(r.json, "error.details.0.field"), "on_error");
    reply_free(&r);
    src e = {"", 0, 0, 0, 0, 0, 0};
    r = post_file(NULL, "/v1/usage/imports", "text/csv", &e, false, tok);
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "error.details.0.field"), "file");
    reply_free(&r);
    static const char mp[] =
        "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n";
    src m = {mp, sizeof mp - 1, 0, 0, 0, 0, 0};
    r = post_file(NULL, "/v1/usage/imports", "multipart/form-data; boundary=b", &m, false, tok);
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "error.details.0.field"), "file");
    reply_free(&r);
    usleep(100 * 1000);
    cr_expect_eq(tmp_files(), before, "a refused upload left a spool file behind");
}

Test(imports, another_orgs_import_is_404) {
    static const char csv[] = "event_id,customer_id,metric\ne,c,m\n";
    src s = {csv, sizeof csv - 1, 0, 0, 0, 0, 0};
    reply r = post_file(NULL, "/v1/usage/imports", "text/csv", &s, false, tok);
    cr_assert_eq(r.status, 202, "%s", r.body);
    char other[64], path[128];
    th_signup(srv, other, NULL, NULL);
    snprintf(path, sizeof path, "/v1/usage/imports/%s", th_str(r.json, "import_id"));
    th_resp g = th_auth(srv, other, "GET", path, NULL);
    cr_expect_eq(g.status, 404, "%s", g.body);
    cr_expect_str_eq(th_err_code(&g), "not_found");
    th_resp_free(&g);
    g = th_auth(srv, tok, "GET", "/v1/usage/imports/not-a-uuid", NULL);
    cr_expect_eq(g.status, 404, "%s", g.body);
    th_resp_free(&g);
    reply_free(&r);
}

Test(imports, upload_of_200mb_keeps_memory_flat, .timeout = 240) {
    long before = vm_hwm_kb(srv->pid);
    cr_assert_gt(before, 0);
    src s = {NULL, 0, 0, 200LL << 20, 0, srv->pid, 0};
    s.gen_total -= s.gen_total % 55; /* whole lines */
    reply r = post_file(NULL, "/v1/usage/imports", "text/csv", &s, false, tok);
    cr_assert_eq(r.status, 202, "%s", r.body);
    long after = vm_hwm_kb(srv->pid);
    if (s.max_hwm_kb > after) after = s.max_hwm_kb;
    cr_expect_lt(after - before, 60 * 1024, "VmHWM grew by %ld kB during a 200 MB upload",
                 after - before);
    size_t len;
    char sha[65];
    /* check the size from the row without reading 200 MB back */
    char path[128];
    snprintf(path, sizeof path, "/v1/usage/imports/%s", th_str(r.json, "import_id"));
    th_resp g = th_auth(srv, tok, "GET", path, NULL);
    cr_expect_eq(json_integer_value(th_get(g.json, "size_bytes")), (json_int_t)s.gen_total);
    th_resp_free(&g);
    (void)len;
    (void)sha;
    /* the file is 200 MB: remove it */
    PGconn *pg = th_pg();
    const char *pv[] = {th_str(r.json, "import_id")};
    PGresult *res = PQexecParams(pg, "SELECT file_path FROM usage_imports WHERE id = $1", 1, NULL,
                                 pv, NULL, NULL, 0);
    if (PQntuples(res) == 1) {
        char fp[1024];
        snprintf(fp, sizeof fp, "%s/%s", getenv("BILLING_STORAGE_DIR"), PQgetvalue(res, 0, 0));
        unlink(fp);
    }
    PQclear(res);
    PQfinish(pg);
    reply_free(&r);
}

/* ---- limits: a server with small ones ---------------------------------- */

static th_server *small;
static void setup_small(void) {
    static const char *const env[] = {"BILLING_MAX_UPLOAD=100000", "BILLING_MAX_BODY=2048", NULL};
    small = th_start(env);
    srv = small;
    th_signup(small, tok, slug, NULL);
}
static void teardown_small(void) { cr_expect_eq(th_stop(small), 0); }

TestSuite(limits, .init = setup_small, .fini = teardown_small, .timeout = 60);

Test(limits, over_limit_bodies_get_json_413) {
    int before = tmp_files();
    size_t n;
    char *csv = make_csv(5000, &n); /* > 100000 bytes */
    src s = {csv, n, 0, 0, 0, 0, 0};
    reply r = post_file(NULL, "/v1/usage/imports", "text/csv", &s, false, tok);
    cr_expect_eq(r.status, 413, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "error.code"), "payload_too_large");
    reply_free(&r);
    s.off = 0; /* chunked: the limit is passed while streaming */
    r = post_file(NULL, "/v1/usage/imports", "text/csv", &s, true, tok);
    cr_expect_eq(r.status, 413, "%s", r.body);
    cr_expect_str_eq(th_str(r.json, "error.code"), "payload_too_large");
    reply_free(&r);
    /* a JSON route: over its limit is our JSON 413, never libevent's HTML */
    char *big = malloc(200000);
    cr_assert(big);
    memset(big, ' ', 199999);
    big[0] = '{';
    big[199998] = '}';
    big[199999] = '\0';
    th_resp j = th_auth(small, tok, "POST", "/v1/customers", big);
    cr_expect_eq(j.status, 413, "%s", j.body);
    cr_expect_str_eq(th_err_code(&j), "payload_too_large");
    th_resp_free(&j);
    free(big);
    /* and the connection-level limit still leaves ordinary requests alone */
    j = th_auth(small, tok, "GET", "/v1/me", NULL);
    cr_expect_eq(j.status, 200);
    th_resp_free(&j);
    usleep(100 * 1000);
    cr_expect_eq(tmp_files(), before, "a refused upload left a spool file behind");
    free(csv);
}

/* ---- spools a killed billing-api left behind ---------------------------- */

static void touch_file(const char *path, time_t mtime) {
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    fputs("event_id\n", f);
    fclose(f);
    struct utimbuf t = {mtime, mtime};
    cr_assert_eq(utime(path, &t), 0);
}

Test(sweep, stale_spools_are_removed_at_start_fresh_ones_and_others_kept, .timeout = 60) {
    char dir[1024], old[1100], fresh[1100], other[1100];
    snprintf(dir, sizeof dir, "%s/tmp", getenv("BILLING_STORAGE_DIR"));
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    char u[32];
    th_unique(u);
    snprintf(old, sizeof old, "%s/upl-old-%s.part", dir, u);
    snprintf(fresh, sizeof fresh, "%s/upl-new-%s.part", dir, u);
    snprintf(other, sizeof other, "%s/keep-%s.part", dir, u);
    time_t now = time(NULL);
    touch_file(old, now - 2 * 3600);   /* a crashed server's, two hours old */
    touch_file(fresh, now - 60);       /* another server's upload in progress */
    touch_file(other, now - 2 * 3600); /* not our name */
    th_server *s = th_start(NULL);
    cr_expect_neq(access(old, F_OK), 0, "the stale spool is gone");
    cr_expect_eq(access(fresh, F_OK), 0, "a live upload's spool is kept");
    cr_expect_eq(access(other, F_OK), 0, "files that are not spools are kept");
    cr_expect_eq(th_stop(s), 0);
    unlink(fresh);
    unlink(other);
}
