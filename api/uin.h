/* uin.h — parsing a POST /v1/usage body into events (prefix uin_).
 *
 * DESIGN — Pure: a parsed JSON body (jx_loadb) in, a batch of normalized
 * events or the full list of problems out.  The body is one event object or
 * {"events": [ … ]} with 1..UIN_MAX_EVENTS events.  Aliases: metric /
 * event_type, timestamp / event_date (giving both is an error).  quantity
 * defaults to 1 and timestamp to now_us.  Field rules come from shared/uev.h;
 * properties is an object of at most UIN_PROPS_MAX bytes as compact JSON.
 * Errors are named "events[3].quantity" (batch) or "quantity" (one event).
 * Resolving customer and metric in the organization is the caller's job.
 * Strings in the batch are borrowed from the JSON: keep it alive.
 */
#ifndef ML_UIN_H
#define ML_UIN_H
#include "jx.h"
#include "uev.h"
#include <stdbool.h>
#include <stdint.h>

#define UIN_MAX_EVENTS 10000
#define UIN_PROPS_MAX  8192

typedef struct uin_event {
    const char *event_id;
    const char *customer; /* external_id */
    const char *metric;   /* metric code */
    char quantity[UEV_QTY_MAX];
    int64_t ts_us;
    char *properties;    /* malloc'd compact JSON object, or NULL */
    const json_t *props; /* the properties object (borrowed), or NULL */
} uin_event;

typedef struct uin_batch {
    uin_event *ev;
    size_t n;
    bool single; /* the body was one event */
    int64_t min_us, max_us;
    char *arena; /* uin_fast_batch: the events' strings (malloc'd), else NULL */
} uin_batch;

/* 0 with *out filled (n >= 1), or -1 with every problem in e (out empty).
 * Out of memory is reported as an error on "body". */
int uin_parse(const json_t *body, int64_t now_us, uin_batch *out, jx_errs *e);
void uin_batch_free(uin_batch *b);

#endif
