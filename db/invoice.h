/* invoice.h — invoice generation: a customer's usage of a period priced with
 * the customer's plan and written as one invoice (prefix inv_).
 *
 * DESIGN — inv_generate runs ONE transaction on the caller's connection:
 *   1. an advisory lock per (organization, customer) serializes generations
 *      of the same customer (a billing run and a manual POST racing);
 *   2. the customer, its plan and tax rate; the non-void invoice of exactly
 *      this period, locked FOR UPDATE (an overlapping one of another period
 *      is an input error: the same usage must never be billed twice);
 *   3. an issued / paid invoice is left alone (INV_LOCKED) — never touched;
 *   4. usage per charge (ml_usage_total: rollups, unique_count from raw
 *      events), usage per UTC day for the sub-lines, and the late usage of the
 *      customer's earlier issued invoices not yet billed by an adjustment on
 *      another non-void invoice;
 *   5. prices everything with the pure engine (shared/price.h): one line per
 *      charge (sub-lines per tier for graduated/volume, else per day), a
 *      minimum true-up line where a minimum applies, the plan's base fee, one
 *      'adjustment' line per late-usage charge (priced with the pricing that
 *      invoice was billed with: T(now) − T(billed), T = rounded amount +
 *      true-up), and the tax line;
 *   6. compares the content's SHA-256 with the stored one: equal → nothing
 *      but a 'regenerate' audit row (INV_UNCHANGED); else the lines are
 *      replaced, version bumped, a pending/approved invoice goes back to draft
 *      (its approval covered other amounts), and the audit row says so.
 * With run_id it also records the customer's outcome in billing_run_items
 * and advances the run's counters, in the same transaction.
 * Periods are [start, end) at whole UTC hours (the API checks); days are UTC.
 * The caller's connection must be outside a transaction; it is again on
 * return.  Not thread-safe per db (one connection, one thread).
 */
#ifndef ML_INVOICE_H
#define ML_INVOICE_H
#include "db.h"
#include <stdbool.h>
#include <stddef.h>

enum {
    INV_OK = 0,
    INV_EDB = -1,    /* database error: e filled (retry) */
    INV_EINPUT = -2, /* cannot be generated as asked: err says why (permanent) */
};

typedef enum inv_outcome {
    INV_CREATED = 0, /* a new draft */
    INV_UPDATED,     /* an open invoice refreshed with different content */
    INV_UNCHANGED,   /* an open invoice, same content */
    INV_LOCKED,      /* issued / paid: left as it is */
} inv_outcome;

typedef struct inv_gen {
    long long org_id;
    long long customer_id;
    const char *period_start; /* RFC 3339, whole UTC hour */
    const char *period_end;
    const char *actor;    /* a user's email, or "system" */
    const char *actor_id; /* the user's id (uuid), or NULL */
    const char *run_id;   /* billing run (uuid), or NULL */
} inv_gen;

typedef struct inv_gen_out {
    inv_outcome outcome;
    char invoice_id[40];
    char status[24];
    char currency[4];
    char total[64];
    int lines;
} inv_gen_out;

int inv_generate(db *d, db_err *e, const inv_gen *in, inv_gen_out *out, char *err, size_t errlen);
const char *inv_outcome_name(inv_outcome o);

/* A billing run's customer that will not be generated (its job is dead):
 * item → failed with the error, run counters advanced, once. */
int inv_run_item_failed(db *d, db_err *e, const char *run_id, long long customer_id,
                        const char *error);

/* The fan-out of billing run run_id (organization org_id): writes a queued
 * item per customer with a plan (once), sets total / skipped / running, and
 * returns the customer ids still queued (malloc'd, *n of them) and the run's
 * period.  INV_EINPUT when the run does not exist. */
int inv_run_fan_out(db *d, db_err *e, long long org_id, const char *run_id, long long **ids,
                    size_t *n, char period_start[40], char period_end[40], char *err,
                    size_t errlen);
/* The run failed as a whole (the fan-out could not finish). */
int inv_run_failed(db *d, db_err *e, const char *run_id, const char *error);

#endif
