/* uin.c — POST /v1/usage body → events.  See uin.h. */
#include "fmacros.h"
#include "uin.h"
#include <stdio.h>
#include <stdlib.h>

static const char *const k_fields[] = {"event_id",   "customer_id", "metric",
                                       "event_type", "quantity",    "timestamp",
                                       "event_date", "properties",  NULL};

static bool known(const char *k) {
    for (const char *const *f = k_fields; *f; f++)
        if (!strcmp(*f, k)) return true;
    return false;
}

/* A required string member (NULL if bad; error added). */
static const char *req_string(const json_t *o, const char *key, const char *pfx, jx_errs *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        jx_errs_addp(e, pfx, key, "is required");
        return NULL;
    }
    if (!jx_is_string(v)) {
        jx_errs_addp(e, pfx, key, "must be a string");
        return NULL;
    }
    return json_string_value(v);
}

/* One of two aliases (at most one given); *name is the key used. */
static json_t *alias(const json_t *o, const char *a, const char *b, const char **name,
                     const char *pfx, jx_errs *e, bool *bad) {
    json_t *va = json_object_get(o, a), *vb = json_object_get(o, b);
    *bad = false;
    if (va && vb) {
        jx_errs_addp(e, pfx, b, "give either %s or %s, not both", a, b);
        *bad = true;
        return NULL;
    }
    *name = vb ? b : a;
    return vb ? vb : va;
}

static void parse_one(const json_t *o, const char *pfx, int64_t now_us, uin_event *ev, jx_errs *e) {
    if (!json_is_object(o)) {
        jx_errs_add(e, pfx && *pfx ? pfx : "body", "must be an object");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (!known(k)) jx_errs_addp(e, pfx, k, "unknown field");
    }
    ev->event_id = req_string(o, "event_id", pfx, e);
    if (ev->event_id) {
        const char *m = uev_event_id(ev->event_id, strlen(ev->event_id));
        if (m) jx_errs_addp(e, pfx, "event_id", "%s", m);
    }
    ev->customer = req_string(o, "customer_id", pfx, e);
    if (ev->customer && (!*ev->customer || jx_utf8_len(ev->customer, strlen(ev->customer)) > 128))
        jx_errs_addp(e, pfx, "customer_id", "must be 1 to 128 characters");

    bool bad;
    const char *name = "metric";
    v = alias(o, "metric", "event_type", &name, pfx, e, &bad);
    if (!bad) {
        if (!v || json_is_null(v))
            jx_errs_addp(e, pfx, "metric", "is required");
        else if (!jx_is_string(v) || !*json_string_value(v))
            jx_errs_addp(e, pfx, name, "must be a metric code");
        else
            ev->metric = json_string_value(v);
    }

    v = json_object_get(o, "quantity");
    if (!v || json_is_null(v)) {
        memcpy(ev->quantity, "1", 2);
    } else {
        char nb[32];
        const char *t = jx_number_text(v, nb, sizeof nb);
        if (!t && jx_is_string(v)) t = json_string_value(v);
        const char *m = t ? uev_quantity(t, strlen(t), ev->quantity)
                          : "must be a decimal number or a string such as \"0.125\"";
        if (m) jx_errs_addp(e, pfx, "quantity", "%s", m);
    }

    name = "timestamp";
    v = alias(o, "timestamp", "event_date", &name, pfx, e, &bad);
    if (!bad) {
        if (!v || json_is_null(v)) {
            ev->ts_us = now_us;
        } else if (!jx_is_string(v)) {
            jx_errs_addp(e, pfx, name, "must be an RFC 3339 string");
        } else {
            const char *s = json_string_value(v);
            const char *m = uev_timestamp(s, strlen(s), now_us, &ev->ts_us);
            if (m) jx_errs_addp(e, pfx, name, "%s", m);
        }
    }

    v = json_object_get(o, "properties");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v)) {
            jx_errs_addp(e, pfx, "properties", "must be an object");
        } else {
            ev->properties = jx_dumps(v, JSON_COMPACT);
            if (!ev->properties)
                jx_errs_addp(e, pfx, "properties", "cannot be stored (out of memory)");
            else if (strlen(ev->properties) > UIN_PROPS_MAX)
                jx_errs_addp(e, pfx, "properties", "must be at most %d bytes as JSON",
                             UIN_PROPS_MAX);
            else
                ev->props = v;
        }
    }
}

void uin_batch_free(uin_batch *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) free(b->ev[i].properties);
    free(b->ev);
    free(b->arena);
    memset(b, 0, sizeof *b);
}

int uin_parse(const json_t *body, int64_t now_us, uin_batch *out, jx_errs *e) {
    memset(out, 0, sizeof *out);
    size_t before = jx_errs_count(e);
    const json_t *arr = NULL;
    if (json_is_object(body) && json_object_get(body, "events")) {
        if (json_object_size(body) != 1) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)body, k, v) {
                if (strcmp(k, "events"))
                    jx_errs_add(e, k, "unknown field (a batch is {\"events\": [...]})");
            }
        }
        arr = json_object_get(body, "events");
        if (!json_is_array(arr)) {
            jx_errs_add(e, "events", "must be an array of events");
            return -1;
        }
        if (json_array_size(arr) == 0) {
            jx_errs_add(e, "events", "must hold at least one event");
            return -1;
        }
        if (json_array_size(arr) > UIN_MAX_EVENTS) {
            jx_errs_add(e, "events", "must hold at most %d events (got %zu)", UIN_MAX_EVENTS,
                        json_array_size(arr));
            return -1;
        }
    } else if (!json_is_object(body)) {
        jx_errs_add(e, "body", "must be an event object or {\"events\": [...]}");
        return -1;
    }
    size_t n = arr ? json_array_size(arr) : 1;
    out->ev = calloc(n, sizeof *out->ev);
    if (!out->ev) {
        jx_errs_add(e, "body", "too large to process (out of memory)");
        return -1;
    }
    out->n = n;
    out->single = arr == NULL;
    for (size_t i = 0; i < n; i++) {
        char pfx[32] = "";
        if (arr) snprintf(pfx, sizeof pfx, "events[%zu]", i);
        parse_one(arr ? json_array_get(arr, i) : body, pfx, now_us, &out->ev[i], e);
        int64_t t = out->ev[i].ts_us;
        if (i == 0 || t < out->min_us) out->min_us = t;
        if (i == 0 || t > out->max_us) out->max_us = t;
    }
    if (jx_errs_count(e) != before) {
        uin_batch_free(out);
        return -1;
    }
    return 0;
}
