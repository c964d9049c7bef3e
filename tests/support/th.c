/* th.c — integration-test harness.  See th.h. */
#include "fmacros.h"
#include "th.h"
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ML_API_BIN
#error "ML_API_BIN must be defined by the build"
#endif

const char *th_api_bin(void) { return ML_API_BIN; }
const char *th_worker_bin(void) { return ML_WORKER_BIN; }

int th_count_lines(const char *path, const char *const *needles) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        bool all = true;
        for (const char *const *x = needles; *x && all; x++) all = strstr(line, *x) != NULL;
        if (all) n++;
    }
    fclose(f);
    return n;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t l = sizeof a;
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &l) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void msleep(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

th_server *th_start(const char *const *extra_env) {
    cr_assert(getenv("BILLING_DATABASE_URL") && getenv("BILLING_REDIS_URL"),
              "run integration tests through scripts/test (BILLING_DATABASE_URL/REDIS_URL unset)");
    th_server *s = calloc(1, sizeof *s);
    cr_assert(s);
    static int seq;
    s->port = free_port();
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    const char *dir = getenv("ML_ARTIFACTS") ? getenv("ML_ARTIFACTS") : "/tmp";
    snprintf(s->log_path, sizeof s->log_path, "%s/billing-api-%d-%d.log", dir, (int)getpid(),
             seq++);
    char listen[64];
    snprintf(listen, sizeof listen, "BILLING_LISTEN=127.0.0.1:%d", s->port);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(s->log_path, "w", stderr);
        (void)f;
        setenv("BILLING_LISTEN", listen + strlen("BILLING_LISTEN="), 1);
        if (!getenv("BILLING_API_THREADS")) setenv("BILLING_API_THREADS", "2", 1);
        if (!getenv("BILLING_DB_THREADS")) setenv("BILLING_DB_THREADS", "4", 1);
        for (const char *const *e = extra_env; e && *e; e++) putenv((char *)*e);
        execl(ML_API_BIN, "billing-api", "serve", (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 200; i++) {
        th_resp r = th_req(s, "GET", "/healthz", NULL, NULL);
        long st = r.status;
        th_resp_free(&r);
        if (st == 200) return s;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            cr_assert_fail("billing-api exited at start (see %s)", s->log_path);
        msleep(50);
    }
    cr_assert_fail("billing-api did not answer /healthz (see %s)", s->log_path);
    return NULL;
}

void th_signal(th_server *s, int sig) { kill(s->pid, sig); }

int th_stop(th_server *s) {
    if (!s) return -1;
    kill(s->pid, SIGTERM);
    int status = 0, rc = -1;
    for (int i = 0; i < 600; i++) {
        pid_t w = waitpid(s->pid, &status, WNOHANG);
        if (w == s->pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        msleep(50);
    }
    if (rc == -1) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    free(s);
    return rc;
}

size_t th_curl_collect(char *ptr, size_t size, size_t nmemb, void *ud) {
    th_body *k = ud;
    size_t add = size * nmemb;
    char *np = realloc(k->p, k->n + add + 1);
    if (!np) return 0;
    memcpy(np + k->n, ptr, add);
    k->n += add;
    np[k->n] = '\0';
    k->p = np;
    return add;
}

th_resp th_req(const th_server *s, const char *method, const char *path, const char *const *headers,
               const char *body) {
    th_resp r = {0};
    CURL *c = curl_easy_init();
    cr_assert(c);
    char url[1024];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    th_body b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    bool has_ct = false;
    for (const char *const *x = headers; x && *x; x++) {
        hl = curl_slist_append(hl, *x);
        if (!strncasecmp(*x, "Content-Type:", 13)) has_ct = true;
    }
    if (body && !has_ct) hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD")) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_curl_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, th_curl_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r.seconds);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r.headers = h.p ? h.p : strdup("");
    r.body = b.p ? b.p : strdup("");
    r.body_len = b.n;
    r.json = json_loadb(r.body, r.body_len, 0, NULL);
    return r;
}

th_resp th_auth(const th_server *s, const char *token, const char *method, const char *path,
                const char *body) {
    char h[256];
    snprintf(h, sizeof h, "Authorization: Bearer %s", token ? token : "");
    const char *hs[] = {h, NULL};
    return th_req(s, method, path, token ? hs : NULL, body);
}

void th_resp_free(th_resp *r) {
    free(r->headers);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

bool th_header(const th_resp *r, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            snprintf(out, cap, "%.*s", (int)(ll - (size_t)(v - p)), v);
            return true;
        }
        if (!eol) break;
        p = eol + 2;
    }
    return false;
}

json_t *th_get(const json_t *j, const char *path) {
    char key[128];
    const char *p = path;
    json_t *cur = (json_t *)j;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        if (json_is_array(cur))
            cur = json_array_get(cur, (size_t)atoi(key));
        else
            cur = json_object_get(cur, key);
        p += n;
        if (*p == '.') p++;
    }
    return cur;
}

const char *th_str(const json_t *j, const char *path) {
    const char *s = json_string_value(th_get(j, path));
    return s ? s : "";
}

const char *th_err_code(const th_resp *r) { return th_str(r->json, "error.code"); }

bool th_has_field_error(const th_resp *r, const char *field) {
    json_t *d = th_get(r->json, "error.details");
    size_t i;
    json_t *v;
    json_array_foreach(d, i, v) {
        if (!strcmp(th_str(v, "field"), field)) return true;
    }
    return false;
}

const char *th_unique(char buf[32]) {
    static unsigned seq;
    snprintf(buf, 32, "%x%x%x", (unsigned)getpid(), (unsigned)time(NULL) & 0xffffff, seq++);
    return buf;
}

void th_signup(const th_server *s, char *token, char *slug, char *email) {
    char u[32], body[512], em[128];
    th_unique(u);
    snprintf(em, sizeof em, "owner-%s@example.test", u);
    snprintf(body, sizeof body,
             "{\"org_name\":\"Org %s\",\"name\":\"Owner %s\",\"email\":\"%s\",\"password\":\"%s\"}",
             u, u, em, TH_PASSWORD);
    th_resp r = th_req(s, "POST", "/v1/signup", NULL, body);
    cr_assert_eq(r.status, 201, "signup: %ld %s", r.status, r.body);
    if (token) snprintf(token, 64, "%s", th_str(r.json, "token"));
    if (slug) snprintf(slug, 64, "%s", th_str(r.json, "organization.slug"));
    if (email) snprintf(email, 128, "%s", em);
    th_resp_free(&r);
}

void th_user_with_role(const th_server *s, const char *owner_token, const char *role, char *token) {
    char u[32], body[512], em[128];
    th_unique(u);
    snprintf(em, sizeof em, "%s-%s@example.test", role, u);
    snprintf(body, sizeof body,
             "{\"name\":\"%s %s\",\"email\":\"%s\",\"password\":\"%s\",\"role\":\"%s\"}", role, u,
             em, TH_PASSWORD, role);
    th_resp r = th_auth(s, owner_token, "POST", "/v1/users", body);
    cr_assert_eq(r.status, 201, "create %s: %ld %s", role, r.status, r.body);
    th_resp_free(&r);
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", em, TH_PASSWORD);
    r = th_req(s, "POST", "/v1/sessions", NULL, body);
    cr_assert_eq(r.status, 201, "login %s: %ld %s", role, r.status, r.body);
    snprintf(token, 64, "%s", th_str(r.json, "token"));
    th_resp_free(&r);
}

PGconn *th_pg(void) {
    const char *const keys[] = {"dbname", NULL};
    const char *const vals[] = {getenv("BILLING_DATABASE_URL"), NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    cr_assert(c && PQstatus(c) == CONNECTION_OK, "test cannot connect to PostgreSQL");
    return c;
}

PGresult *th_pgq(PGconn *c, const char *sql, int n, const char *const *params) {
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        PQclear(r);
        cr_assert_fail("%s\n-> %s", sql, msg);
    }
    return r;
}

int th_svc(const char *args) {
    const char *svc = getenv("ML_SVC");
    cr_assert(svc, "ML_SVC is not set (run through scripts/test)");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>&1", svc, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
