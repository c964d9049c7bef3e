/* handlers.c — the job-type table of billing-worker.
 *
 * DESIGN — One row per job type: {type, handler, max attempts, timeout ms,
 * batch, many-jobs handler, payload check}.  A worker process reserves exactly these types, in this
 * order within a batch group (rows with the same batch share one reserve call). Later issues add
 * usage.ingest, usage.import, invoice.generate, billing.run and report.render as one row each;
 * their handlers live in their own files and are declared in handlers.h.  Read-only; any thread.
 */
#include "fmacros.h"
#include "handlers.h"
#include <stdarg.h>
#include <stdlib.h>

/* clang-format off */
const wk_handler wk_handlers[] = {
    /* type          handler              attempts timeout ms batch  many (+ check) */
    {"noop",         wk_job_noop,         5,       10000,     128,   NULL, NULL},
    {"sleep",        wk_job_sleep,        5,       120000,    4,     NULL, NULL},
    {"fail",         wk_job_fail,         3,       10000,     4,     NULL, NULL},
    {"usage.ingest", wk_job_usage_ingest, 20,      120000,    64,    wk_jobs_usage_ingest,
                                                                     wk_check_usage_ingest},
    {"usage.import", wk_job_usage_import, 5,       3600000,   1,     NULL, NULL},
    {"invoice.generate", wk_job_invoice_generate, 10, 300000, 8,   NULL, NULL},
    {"billing.run",  wk_job_billing_run,  10,      600000,    1,     NULL, NULL},
    {"report.render", wk_job_report_render, 5,     300000,    1,     NULL, NULL},
};
/* clang-format on */
const size_t wk_handlers_len = ML_ARRAY_LEN(wk_handlers);

const wk_handler *wk_handler_find(const char *type) {
    for (size_t i = 0; i < wk_handlers_len; i++)
        if (!strcmp(wk_handlers[i].type, type)) return &wk_handlers[i];
    return NULL;
}

wk_status wk_fail(wk_result *res, wk_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
    return st;
}

wk_status wk_fail_db(wk_result *res, const db_err *e, const char *what) {
    res->unavailable = e->conn_lost;
    return wk_fail(res, WK_RETRY, "%s: %s%s%s", what, e->msg, e->sqlstate[0] ? " SQLSTATE " : "",
                   e->sqlstate);
}

wk_status wk_ok_json(wk_result *res, json_t *obj) {
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!s) return wk_fail(res, WK_RETRY, "out of memory");
    free(res->json);
    res->json = s;
    return WK_OK;
}

bool wk_is_uuid(const char *s) {
    if (!s || strlen(s) != 36) return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

bool wk_payload_only(const json_t *payload, const char *const *allowed, wk_result *res) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)payload, k, v) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, k)) a++;
        if (!*a) {
            wk_fail(res, WK_PERMANENT, "payload: unknown field \"%.64s\"", k);
            return false;
        }
    }
    return true;
}
