/* repo_invoices.h — invoices as the API reads and moves them: the full
 * invoice, listings, the lifecycle transitions with their audit trail, and
 * disputes (prefix repo_inv_; migration 0007).
 *
 * DESIGN — Same rules as repo.h: every function takes the caller's org_id and
 * filters on it, and org_id 0 means "any organization" (platform admins
 * acting without ?org=): an invoice or dispute is then looked up by id
 * alone, and whatever is written carries the row's own organization.  Ids
 * are uuids; a malformed id is "not found", never an SQL error.  Results are
 * jansson objects shaped as the API returns them (decimals as strings, times
 * RFC 3339 "Z", null where absent).
 *
 * Writes are one transaction each (this module calls db_begin/db_commit; the
 * caller must not be inside a transaction): the invoice (or dispute) row is
 * locked FOR UPDATE, the rule checked against what is locked, the change and
 * its invoice_actions row written, and the reply read back before COMMIT.
 * Issue takes the next number from invoice_counters in the same
 * transaction, so numbers are gapless: a rolled-back issue gives its number
 * back.  Lock order is always invoice, then counter — no deadlock between
 * concurrent issues.
 *
 * The transition rules are a table (repo_inv_next, pure).  Who may call a
 * transition (roles) is the route table's business, not this module's.
 */
#ifndef ML_REPO_INVOICES_H
#define ML_REPO_INVOICES_H
#include "repo.h"
#include <stdbool.h>

/* ---- lifecycle (pure) ---- */
typedef enum repo_inv_action {
    REPO_INV_SUBMIT = 0,
    REPO_INV_APPROVE,
    REPO_INV_REJECT,
    REPO_INV_ISSUE,
    REPO_INV_VOID,
    REPO_INV_MARK_PAID,
    REPO_INV_NACTIONS
} repo_inv_action;

/* Why a transition is refused. */
enum { REPO_INV_OK = 0, REPO_INV_ILLEGAL = 1, REPO_INV_NEEDS_APPROVAL = 2 };

/* invoice_actions.action of a ("mark_paid"), and its verb for messages
 * ("mark paid"). */
const char *repo_inv_action_name(repo_inv_action a);
const char *repo_inv_action_verb(repo_inv_action a);
/* The state action a leads to from state `from`, or NULL with *why set
 * (REPO_INV_ILLEGAL, or REPO_INV_NEEDS_APPROVAL for a draft issued while
 * the customer requires approval).  Pure. */
const char *repo_inv_next(repo_inv_action a, const char *from, bool require_approval, int *why);
/* True for the six states of an invoice. */
bool repo_inv_is_status(const char *s);

/* ---- reads ---- */
/* The full invoice: header, customer, lines with sub-lines, late usage
 * (issued invoices), dispute counts. */
int repo_inv_get(db *d, db_err *e, long long org_id, const char *id, json_t **out);

typedef struct repo_inv_filter {
    const char *customer;    /* external_id, or NULL */
    const char *statuses_pg; /* a text[] literal such as "{draft,issued}", or NULL */
    const char *period_from; /* period_start >= (RFC 3339), or NULL */
    const char *period_to;   /* period_start < (RFC 3339), or NULL */
} repo_inv_filter;
/* Newest first (created_at, id); after = the previous page's cursor
 * (REPO_INVALID if malformed).  Rows are summaries (no lines). */
int repo_inv_list(db *d, db_err *e, long long org_id, const repo_inv_filter *f, int limit,
                  const char *after, json_t **rows, char **next);
/* The audit trail of an invoice, oldest first; after = the last id of the
 * previous page.  REPO_NOT_FOUND if the invoice is not the org's. */
int repo_inv_actions(db *d, db_err *e, long long org_id, const char *id, int limit,
                     const char *after, json_t **rows, char **next);

/* ---- lifecycle (writes) ---- */
/* The caller of a write: a user (platform admin or organization user). */
typedef struct repo_inv_actor {
    const char *user_id; /* users.id */
    const char *role;    /* "admin", "owner", ... (dispute messages record it) */
} repo_inv_actor;

/* Applies action a to invoice id.  REPO_OK with *out = the invoice after the
 * change; REPO_NOT_FOUND; REPO_CONFLICT with f->field "status",
 * f->message the current state and *why (REPO_INV_ILLEGAL /
 * REPO_INV_NEEDS_APPROVAL); REPO_ERR. */
int repo_inv_transition(db *d, db_err *e, long long org_id, const char *id, repo_inv_action a,
                        const repo_inv_actor *who, const char *comment, json_t **out, repo_field *f,
                        int *why);

/* ---- disputes ---- */
/* Opens a dispute on invoice id with its first message (and the
 * 'dispute_open' action).  *out = the dispute with its messages. */
int repo_inv_dispute_open(db *d, db_err *e, long long org_id, const char *invoice_id,
                          const repo_inv_actor *who, const char *message, json_t **out);
/* The dispute with its messages, oldest first. */
int repo_inv_dispute_get(db *d, db_err *e, long long org_id, const char *id, json_t **out);
/* status "open" / "resolved" or NULL; invoice_id a uuid or NULL.  Newest
 * first; rows without messages (a message count instead). */
int repo_inv_disputes_list(db *d, db_err *e, long long org_id, const char *status,
                           const char *invoice_id, int limit, const char *after, json_t **rows,
                           char **next);
/* Adds a message: *out = the message; REPO_CONFLICT (f: status) when the
 * dispute is resolved. */
int repo_inv_dispute_message(db *d, db_err *e, long long org_id, const char *id,
                             const repo_inv_actor *who, const char *message, json_t **out,
                             repo_field *f);
/* Resolves it ('dispute_resolve' action; a comment is also added to the
 * thread as the last message).  *out = the dispute; REPO_CONFLICT (f:
 * status) when already resolved. */
int repo_inv_dispute_resolve(db *d, db_err *e, long long org_id, const char *id,
                             const repo_inv_actor *who, const char *comment, json_t **out,
                             repo_field *f);

#endif
