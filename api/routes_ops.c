/* routes_ops.c — /healthz, /readyz, /metrics, /v1/openapi.json and the UI.
 *
 * DESIGN — All RT_INLINE: they run on the event-loop thread and never block.
 * /readyz reads the health thread's last PostgreSQL/Redis check (server.c)
 * instead of querying, so it answers instantly even when every database
 * thread is busy.  Static files (openapi.json and the api/ui files) are compiled in.
 */
#include "fmacros.h"
#include "api.h"
#include "embed.h"
#include "routes.h"

extern const ml_embedded api_static[];

void h_healthz(api_req *r) {
    static const char ok[] = "{\"status\":\"ok\"}";
    api_raw(r, 200, "application/json", ok, sizeof ok - 1);
}

void h_readyz(api_req *r) {
    const api_health *h = api_server_health(r->srv);
    bool pg = atomic_load(&h->pg_ok), rs = atomic_load(&h->redis_ok);
    if (pg && rs) {
        api_json(r, 200,
                 json_pack("{s:s, s:s, s:s}", "status", "ready", "postgres", "ok", "redis", "ok"));
        return;
    }
    json_t *d = json_array();
    if (!pg)
        json_array_append_new(
            d, json_pack("{s:s, s:s}", "field", "postgres", "message", "not answering"));
    if (!rs)
        json_array_append_new(
            d, json_pack("{s:s, s:s}", "field", "redis", "message", "not answering"));
    api_header(r, "Retry-After", "5");
    api_json(r, 503,
             json_pack("{s:{s:s, s:s, s:o}}", "error", "code", "unavailable", "message",
                       !pg && !rs ? "PostgreSQL and Redis are unavailable"
                       : !pg      ? "PostgreSQL is unavailable"
                                  : "Redis is unavailable",
                       "details", d ? d : json_array()));
}

void h_metrics_prom(api_req *r) {
    buf b;
    buf_init(&b);
    api_metrics_render(&b, r->srv);
    api_raw(r, 200, "text/plain; version=0.0.4", b.p ? b.p : "", b.len);
    if (b.oom) api_err(r, 503, "unavailable", "out of memory");
    buf_free(&b);
}

void h_openapi(api_req *r) {
    const ml_embedded *f = ml_embed_find(api_static, "openapi.json");
    if (!f) {
        api_err(r, 404, "not_found", "no OpenAPI document in this build");
        return;
    }
    api_raw(r, 200, "application/json", f->data, f->len);
}

static const char *mime_of(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    if (!strcmp(dot, ".png")) return "image/png";
    if (!strcmp(dot, ".json")) return "application/json";
    return "application/octet-stream";
}

void h_ui(api_req *r) {
    char name[160];
    if (r->npv == 0 || !r->pv[0][0])
        snprintf(name, sizeof name, "ui/index.html");
    else
        snprintf(name, sizeof name, "ui/%s", r->pv[0]);
    /* only names we compiled in are served: no path is ever opened */
    const ml_embedded *f = ml_embed_find(api_static, name);
    if (!f) {
        api_err(r, 404, "not_found", "no such file");
        return;
    }
    api_raw(r, 200, mime_of(name), f->data, f->len);
    api_header(r, "Content-Security-Policy",
               "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
               "frame-ancestors 'none'");
    api_header(r, "X-Frame-Options", "DENY");
}
