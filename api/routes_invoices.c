/* routes_invoices.c — invoices as people read and move them:
 * GET /v1/invoices, GET /v1/invoices/{id}, GET /v1/invoices/{id}/actions,
 * POST /v1/invoices/{id}/submit|approve|reject|issue|void|mark-paid,
 * POST /v1/invoices/{id}/disputes, GET /v1/disputes, GET /v1/disputes/{id},
 * POST /v1/disputes/{id}/messages, POST /v1/disputes/{id}/resolve.
 *
 * DESIGN — Handlers glue request → repository (db/repo_invoices.c) → reply;
 * the lifecycle rules, the numbering and the audit trail live in the
 * repository, each write in one transaction.  The route table decides who
 * may call a transition (finance-side roles for submit/issue/void/mark-paid,
 * approvers for approve/reject; API keys never); dispute rules finer than a
 * route row are checked here:
 *   open a dispute      organization users but viewers (platform admins
 *                       answer disputes, they do not open them)
 *   post a message      organization users but viewers, platform admins
 *   resolve             owner, finance, platform admins
 *   read                everyone allowed by the route (viewers, read keys)
 * Platform admins act in any organization: with no ?org= their org_id is 0
 * and objects are found by id alone.  Another organization's object, like a
 * malformed id, is 404.
 *
 * An illegal transition is 409 conflict naming the current state, in the
 * message ("invoice is paid; cannot approve") and as details
 * [{"field": "status", "message": "paid"}].
 *
 * Query parameters are parsed apart from I/O (parse_*); unknown parameters
 * are 400, meaningless values 422, each naming the parameter.
 */
#include "fmacros.h"
#include "api.h"
#include "repo_invoices.h"
#include "routes.h"
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdlib.h>

#define MESSAGE_MAX 10000 /* invoice_dispute_messages.body */
#define COMMENT_MAX 4000  /* invoice_actions.comment */

/* ======================================================================= */
/* query strings (pure)                                                      */

enum { QP_MAX = 8 };
typedef struct qparams {
    const char *const *names; /* allowed, NULL-terminated (at most QP_MAX) */
    char *val[QP_MAX];
} qparams;

static void qp_free(qparams *p) {
    for (int i = 0; i < QP_MAX; i++) free(p->val[i]);
}

static const char *qp_get(const qparams *p, const char *name) {
    for (int i = 0; p->names[i]; i++)
        if (!strcmp(p->names[i], name)) return p->val[i];
    return NULL;
}

/* 400 bad_request naming the parameter. */
static void bad_param(api_req *r, const char *field, const char *msg) {
    char full[256];
    snprintf(full, sizeof full, "%s: %s", field, msg);
    api_json(r, 400,
             json_pack("{s:{s:s, s:s, s:[{s:s, s:s}]}}", "error", "code", "bad_request", "message",
                       full, "details", "field", field, "message", msg));
}

/* Reads the query into p: unknown or repeated names are 400.  0, or -1
 * when it replied. */
static int qp_read(api_req *r, qparams *p) {
    memset(p->val, 0, sizeof p->val);
    if (!r->query) return 0;
    struct evkeyvalq q;
    if (evhttp_parse_query_str(r->query, &q) != 0) {
        evhttp_clear_headers(&q);
        api_err(r, 400, "bad_request", "the query string is malformed");
        return -1;
    }
    int rc = 0;
    for (struct evkeyval *kv = q.tqh_first; kv && rc == 0; kv = kv->next.tqe_next) {
        int idx = -1;
        for (int i = 0; i < QP_MAX && p->names[i]; i++)
            if (!strcmp(p->names[i], kv->key)) idx = i;
        if (idx < 0) {
            bad_param(r, kv->key, "unknown parameter");
            rc = -1;
        } else if (p->val[idx]) {
            bad_param(r, kv->key, "given more than once");
            rc = -1;
        } else if (!(p->val[idx] = strdup(kv->value))) {
            api_err(r, 503, "unavailable", "out of memory");
            rc = -1;
        }
    }
    evhttp_clear_headers(&q);
    if (rc) qp_free(p);
    return rc;
}

/* The six states in one order, and the two views as masks over it. */
static const char *const k_states[] = {"draft", "pending_approval", "approved", "issued", "paid",
                                       "void"};
#define ST_ALL     0x3fu
#define ST_CURRENT 0x0fu /* draft, pending_approval, approved, issued (unpaid) */
#define ST_PAST    0x30u /* paid, void */

/* "draft,issued" → mask; 0 if some entry is not a state. */
static unsigned parse_statuses(const char *s) {
    unsigned mask = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        bool hit = false;
        for (size_t i = 0; i < ML_ARRAY_LEN(k_states); i++) {
            if (strlen(k_states[i]) == n && !strncmp(k_states[i], s, n)) {
                mask |= 1u << i;
                hit = true;
            }
        }
        if (!hit) return 0;
        s += n;
        if (*s == ',' && !*++s) return 0; /* trailing comma */
    }
    return mask;
}

/* mask → "{draft,issued}" (the states are plain words). */
static void statuses_pg(unsigned mask, char *out, size_t cap) {
    size_t n = 0;
    out[n++] = '{';
    for (size_t i = 0; i < ML_ARRAY_LEN(k_states); i++) {
        if (!(mask & (1u << i))) continue;
        int w = snprintf(out + n, cap - n, "%s%s", n > 1 ? "," : "", k_states[i]);
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
    snprintf(out + n, cap - n, "}");
}

/* "YYYY-MM" → [first of the month, first of the next) as RFC 3339. */
static bool parse_month(const char *s, char from[32], char to[32]) {
    if (strlen(s) != 7 || s[4] != '-' || strspn(s, "0123456789") != 4 ||
        strspn(s + 5, "0123456789") != 2)
        return false;
    int y = atoi(s), m = atoi(s + 5);
    if (y < 1 || y > 9998 || m < 1 || m > 12) return false;
    snprintf(from, 32, "%04d-%02d-01T00:00:00Z", y, m);
    snprintf(to, 32, "%04d-%02d-01T00:00:00Z", m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1);
    return true;
}

static bool blank(const char *s) { return s[strspn(s, " \t\r\n")] == '\0'; }

static bool is_uuid(const char *s) {
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (strlen(s) != sizeof shape - 1) return false;
    for (size_t i = 0; shape[i]; i++) {
        bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                   (s[i] >= 'A' && s[i] <= 'F');
        if (shape[i] == '-' ? s[i] != '-' : !hex) return false;
    }
    return true;
}

/* ======================================================================= */
/* replies                                                                   */

static void reply_page(api_req *r, int rc, const db_err *de, json_t *rows, const char *next,
                       const char *what) {
    if (rc == REPO_OK)
        api_page_reply(r, rows, next);
    else if (rc == REPO_INVALID)
        bad_param(r, "cursor", "not a valid cursor");
    else
        api_reply_repo(r, rc, de, NULL, what);
}

/* 409 conflict: message, details [{"field": "status", "message": state}]. */
static void reply_state_conflict(api_req *r, const char *state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_state_conflict(api_req *r, const char *state, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_json(r, 409,
             json_pack("{s:{s:s, s:s, s:[{s:s, s:s}]}}", "error", "code", "conflict", "message",
                       msg, "details", "field", "status", "message", state));
}

static void forbid(api_req *r, const char *what) {
    api_err(r, 403, "forbidden", "role %s may not %s", api_role_name(r->who.role), what);
}

/* The caller as the repository records it; false (403 replied) for API
 * keys, which no route here lets through — a guard, not a rule. */
static bool actor_of(api_req *r, repo_inv_actor *who) {
    if (ML_NEVER(r->who.kind != WHO_SESSION)) {
        api_err(r, 403, "forbidden", "API keys may not change invoices or disputes");
        return false;
    }
    who->user_id = r->who.user_id;
    who->role = api_role_name(r->who.role);
    return true;
}

/* ======================================================================= */
/* invoices: reads                                                           */

void h_invoices_get(api_req *r) {
    db_err de;
    json_t *out = NULL;
    int rc = repo_inv_get(r->db, &de, r->who.org_id, r->pv[0], &out);
    if (rc == REPO_OK)
        api_json(r, 200, out);
    else
        api_reply_repo(r, rc, &de, NULL, "invoice");
}

static const char *const k_list_params[] = {"customer_id", "status", "view", "period",
                                            "limit",       "cursor", "org",  NULL};

void h_invoices_list(api_req *r) {
    qparams q = {.names = k_list_params};
    if (qp_read(r, &q)) return;
    const char *cust = qp_get(&q, "customer_id"), *status = qp_get(&q, "status"),
               *view = qp_get(&q, "view"), *period = qp_get(&q, "period");
    unsigned mask = ST_ALL;
    char from[32], to[32], pg[128];
    repo_inv_filter f = {0};
    if (cust && (!*cust || strlen(cust) > 128)) {
        api_invalid1(r, "customer_id", "must be a customer's external_id (1 to 128 characters)");
        goto out;
    }
    f.customer = cust;
    if (status) {
        unsigned m = parse_statuses(status);
        if (!m) {
            api_invalid1(r, "status",
                         "must be one or a comma-separated list of draft, pending_approval, "
                         "approved, issued, paid, void");
            goto out;
        }
        mask &= m;
    }
    if (view) {
        if (!strcmp(view, "current"))
            mask &= ST_CURRENT;
        else if (!strcmp(view, "past"))
            mask &= ST_PAST;
        else {
            api_invalid1(r, "view", "must be current or past");
            goto out;
        }
    }
    if (mask != ST_ALL) {
        statuses_pg(mask, pg, sizeof pg);
        f.statuses_pg = pg;
    }
    if (period) {
        if (!parse_month(period, from, to)) {
            api_invalid1(r, "period", "must be a month as YYYY-MM");
            goto out;
        }
        f.period_from = from;
        f.period_to = to;
    }
    int limit;
    char *cursor;
    if (api_page_params(r, &limit, &cursor)) goto out;
    db_err de;
    json_t *rows = NULL;
    char *next = NULL;
    int rc = repo_inv_list(r->db, &de, r->who.org_id, &f, limit, cursor, &rows, &next);
    reply_page(r, rc, &de, rows, next, "invoice");
    free(next);
    free(cursor);
out:
    qp_free(&q);
}

void h_invoices_actions(api_req *r) {
    int limit;
    char *cursor;
    if (api_page_params(r, &limit, &cursor)) return;
    db_err de;
    json_t *rows = NULL;
    char *next = NULL;
    int rc = repo_inv_actions(r->db, &de, r->who.org_id, r->pv[0], limit, cursor, &rows, &next);
    reply_page(r, rc, &de, rows, next, "invoice");
    free(next);
    free(cursor);
}

/* ======================================================================= */
/* invoices: lifecycle                                                       */

static const jx_field k_comment_body[] = {
    {"comment", JX_STRING, JX_NULLABLE, 0, COMMENT_MAX},
    {NULL, 0, 0, 0, 0},
};

static void check_reject(const json_t *body, jx_errs *e) {
    if (jx_errs_hasp(e, NULL, "comment")) return;
    const char *c = jx_str(body, "comment");
    if (!c || blank(c)) jx_errs_add(e, "comment", "a rejection needs a comment saying why");
}

static void transition(api_req *r, repo_inv_action a) {
    repo_inv_actor who;
    if (!actor_of(r, &who)) return;
    if (!api_validate(r, k_comment_body, a == REPO_INV_REJECT ? check_reject : NULL)) return;
    const char *comment = jx_str(r->json, "comment");
    if (comment && blank(comment)) comment = NULL;
    db_err de;
    repo_field f;
    json_t *out = NULL;
    int why = 0;
    int rc =
        repo_inv_transition(r->db, &de, r->who.org_id, r->pv[0], a, &who, comment, &out, &f, &why);
    if (rc == REPO_OK) {
        api_json(r, 200, out);
    } else if (rc == REPO_CONFLICT && why == REPO_INV_NEEDS_APPROVAL) {
        reply_state_conflict(r, f.message,
                             "invoice is %s; cannot issue: the customer requires approval "
                             "(submit it and have it approved first)",
                             f.message);
    } else if (rc == REPO_CONFLICT) {
        reply_state_conflict(r, f.message, "invoice is %s; cannot %s", f.message,
                             repo_inv_action_verb(a));
    } else {
        api_reply_repo(r, rc, &de, NULL, "invoice");
    }
}

void h_invoices_submit(api_req *r) { transition(r, REPO_INV_SUBMIT); }
void h_invoices_approve(api_req *r) { transition(r, REPO_INV_APPROVE); }
void h_invoices_reject(api_req *r) { transition(r, REPO_INV_REJECT); }
void h_invoices_issue(api_req *r) {
    transition(r, REPO_INV_ISSUE);
    if (r->status == 200) api_reports_issued(r, r->pv[0]); /* render its PDF */
}
void h_invoices_void(api_req *r) { transition(r, REPO_INV_VOID); }
void h_invoices_mark_paid(api_req *r) { transition(r, REPO_INV_MARK_PAID); }

/* ======================================================================= */
/* disputes                                                                  */

static const jx_field k_message_body[] = {
    {"message", JX_STRING, JX_REQUIRED, 1, MESSAGE_MAX},
    {NULL, 0, 0, 0, 0},
};

static void check_message(const json_t *body, jx_errs *e) {
    if (jx_errs_hasp(e, NULL, "message")) return;
    const char *m = jx_str(body, "message");
    if (m && blank(m)) jx_errs_add(e, "message", "must not be empty");
}

void h_disputes_create(api_req *r) {
    unsigned role = r->who.role;
    if (role == ROLE_VIEWER || role == ROLE_ADMIN) {
        forbid(r, role == ROLE_ADMIN ? "open a dispute (platform admins answer disputes; the "
                                       "organization's users open them)"
                                     : "open a dispute");
        return;
    }
    repo_inv_actor who;
    if (!actor_of(r, &who)) return;
    if (!api_validate(r, k_message_body, check_message)) return;
    db_err de;
    json_t *out = NULL;
    int rc = repo_inv_dispute_open(r->db, &de, r->who.org_id, r->pv[0], &who,
                                   jx_str(r->json, "message"), &out);
    if (rc != REPO_OK) {
        api_reply_repo(r, rc, &de, NULL, "invoice");
        return;
    }
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/disputes/%s", json_string_value(json_object_get(out, "id")));
    api_header(r, "Location", loc);
    api_json(r, 201, out);
}

static const char *const k_dispute_params[] = {"status", "invoice_id", "limit",
                                               "cursor", "org",        NULL};

void h_disputes_list(api_req *r) {
    qparams q = {.names = k_dispute_params};
    if (qp_read(r, &q)) return;
    const char *status = qp_get(&q, "status"), *inv = qp_get(&q, "invoice_id");
    if (status && strcmp(status, "open") != 0 && strcmp(status, "resolved") != 0) {
        api_invalid1(r, "status", "must be open or resolved");
        goto out;
    }
    if (inv && !is_uuid(inv)) {
        api_invalid1(r, "invoice_id", "must be an invoice id (uuid)");
        goto out;
    }
    int limit;
    char *cursor;
    if (api_page_params(r, &limit, &cursor)) goto out;
    db_err de;
    json_t *rows = NULL;
    char *next = NULL;
    int rc =
        repo_inv_disputes_list(r->db, &de, r->who.org_id, status, inv, limit, cursor, &rows, &next);
    reply_page(r, rc, &de, rows, next, "dispute");
    free(next);
    free(cursor);
out:
    qp_free(&q);
}

void h_disputes_get(api_req *r) {
    db_err de;
    json_t *out = NULL;
    int rc = repo_inv_dispute_get(r->db, &de, r->who.org_id, r->pv[0], &out);
    if (rc == REPO_OK)
        api_json(r, 200, out);
    else
        api_reply_repo(r, rc, &de, NULL, "dispute");
}

void h_disputes_message(api_req *r) {
    if (r->who.role == ROLE_VIEWER) {
        forbid(r, "write in a dispute");
        return;
    }
    repo_inv_actor who;
    if (!actor_of(r, &who)) return;
    if (!api_validate(r, k_message_body, check_message)) return;
    db_err de;
    repo_field f;
    json_t *out = NULL;
    int rc = repo_inv_dispute_message(r->db, &de, r->who.org_id, r->pv[0], &who,
                                      jx_str(r->json, "message"), &out, &f);
    if (rc == REPO_OK)
        api_json(r, 201, out);
    else if (rc == REPO_CONFLICT)
        reply_state_conflict(r, f.message, "dispute is %s; it takes no more messages", f.message);
    else
        api_reply_repo(r, rc, &de, NULL, "dispute");
}

void h_disputes_resolve(api_req *r) {
    unsigned role = r->who.role;
    if (!(role & (ROLE_ADMIN | ROLE_OWNER | ROLE_FINANCE))) {
        forbid(r, "resolve a dispute");
        return;
    }
    repo_inv_actor who;
    if (!actor_of(r, &who)) return;
    if (!api_validate(r, k_comment_body, NULL)) return;
    const char *comment = jx_str(r->json, "comment");
    if (comment && blank(comment)) comment = NULL;
    db_err de;
    repo_field f;
    json_t *out = NULL;
    int rc = repo_inv_dispute_resolve(r->db, &de, r->who.org_id, r->pv[0], &who, comment, &out, &f);
    if (rc == REPO_OK)
        api_json(r, 200, out);
    else if (rc == REPO_CONFLICT)
        reply_state_conflict(r, f.message, "dispute is %s already", f.message);
    else
        api_reply_repo(r, rc, &de, NULL, "dispute");
}
