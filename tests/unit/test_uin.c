/* test_uin.c — the jansson-free readers of flat usage events (uin_fast:
 * one event, or a batch) against the full reader (jx_loadb + uin_parse).
 *
 * The fast path's promise (api/uin_fast.h): for any body it yields exactly
 * the events the full path would, or declines.  Checked three ways: common
 * bodies it must take (and agree on), bodies it must leave to the full path,
 * and every one-byte mutation of a few valid bodies (whatever it takes, the
 * full path takes with the same events). */
#include "fmacros.h"
#include "uin.h"
#include "uin_fast.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-10-03T09:20:00Z: timestamps in the bodies are a little before it */
static const int64_t k_now = 1791019200LL * 1000000LL;

/* fb, what the fast path read from body, equals what the full path
 * (jx_loadb + uin_parse) reads from it, event by event. */
static void same_as_full(const uin_batch *fb, const char *body, size_t len) {
    char err[128];
    json_t *j = jx_loadb(body, len, err, sizeof err);
    cr_assert_not_null(j, "fast path took a body that is not JSON (%s): %.*s", err, (int)len, body);
    jx_errs *e = jx_errs_new();
    cr_assert_not_null(e);
    uin_batch g;
    cr_assert_eq(uin_parse(j, k_now, &g, e), 0, "fast path took a body the full path refuses: %.*s",
                 (int)len, body);
    cr_assert_eq(fb->n, g.n, "events of %.*s", (int)len, body);
    cr_assert_eq(fb->single, g.single, "shape of %.*s", (int)len, body);
    cr_assert_eq(fb->min_us, g.min_us, "min of %.*s", (int)len, body);
    cr_assert_eq(fb->max_us, g.max_us, "max of %.*s", (int)len, body);
    for (size_t i = 0; i < g.n; i++) {
        const uin_event *f = &fb->ev[i], *x = &g.ev[i];
        cr_assert_str_eq(f->event_id, x->event_id, "event_id %zu of %.*s", i, (int)len, body);
        cr_assert_str_eq(f->customer, x->customer, "customer %zu of %.*s", i, (int)len, body);
        cr_assert_str_eq(f->metric, x->metric, "metric %zu of %.*s", i, (int)len, body);
        cr_assert_str_eq(f->quantity, x->quantity, "quantity %zu of %.*s", i, (int)len, body);
        cr_assert_eq(f->ts_us, x->ts_us, "timestamp %zu of %.*s", i, (int)len, body);
        cr_assert_null(f->properties);
        cr_assert_null(x->properties);
    }
    uin_batch_free(&g);
    jx_errs_free(e);
    json_decref(j);
}

enum { TOOK_NONE, TOOK_ONE, TOOK_BATCH };

/* Whichever fast reader takes the body must agree with the full path (and
 * at most one takes it).  Returns which took it. */
static int agree(const char *body, size_t len) {
    uin_fast f;
    uin_batch fb;
    bool one = uin_fast_parse(body, len, k_now, &f);
    bool many = uin_fast_batch(body, len, k_now, &fb);
    cr_assert(!(one && many), "both readers took %.*s", (int)len, body);
    if (one) {
        uin_batch v = {
            .ev = &f.ev, .n = 1, .single = true, .min_us = f.ev.ts_us, .max_us = f.ev.ts_us};
        same_as_full(&v, body, len);
        return TOOK_ONE;
    }
    if (!many) {
        cr_assert(fb.n == 0 && !fb.ev && !fb.arena, "a declined batch leaves nothing behind");
        return TOOK_NONE;
    }
    same_as_full(&fb, body, len);
    uin_batch_free(&fb);
    return TOOK_BATCH;
}

Test(uin_fast, takes_the_common_flat_bodies_and_agrees) {
    static const char *bodies[] = {
        "{\"event_id\":\"e-1\",\"customer_id\":\"acme\",\"metric\":\"api_calls\",\"quantity\":\"1."
        "5\"}",
        "{\"event_id\":\"e-2\",\"customer_id\":\"acme\",\"metric\":\"api_calls\",\"quantity\":2}",
        "{\"event_id\":\"e-3\",\"customer_id\":\"acme\",\"metric\":\"gb\",\"quantity\":0."
        "000000000001,"
        "\"timestamp\":\"2026-10-03T09:15:00Z\"}",
        " {\n \"customer_id\" : \"c\" , \"event_type\":\"trips\", \"event_id\":\"x\",\r\n"
        " \"event_date\":\"2026-10-03T11:15:00+02:00\" }\n",
        "{\"event_id\":\"e-5\",\"customer_id\":\"acme\",\"metric\":\"m\"}", /* quantity 1, now */
        "{\"event_id\":\"e-6\",\"customer_id\":\"acme\",\"metric\":\"m\",\"quantity\":\"+007."
        "2500\"}",
        "{\"event_id\":\"e-7\",\"customer_id\":\"acme\",\"metric\":\"m\",\"quantity\":0}",
        "{\"event_id\":\"e-8\",\"customer_id\":\"acme\",\"metric\":\"m\",\"quantity\":"
        "\"12345678901234567890123456\"}",
    };
    static const char *qty[] = {
        "1.5", "2", "0.000000000001", "1", "1", "7.25", "0", "12345678901234567890123456"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        cr_assert_eq(agree(bodies[i], strlen(bodies[i])), TOOK_ONE, "declined: %s", bodies[i]);
        uin_fast f;
        cr_assert(uin_fast_parse(bodies[i], strlen(bodies[i]), k_now, &f));
        cr_assert_str_eq(f.ev.quantity, qty[i], "body %zu", i);
    }
    uin_fast f;
    const char *b = bodies[3];
    cr_assert(uin_fast_parse(b, strlen(b), k_now, &f));
    cr_assert_str_eq(f.ev.metric, "trips");
    cr_assert_eq(f.ev.ts_us, 1791019200LL * 1000000LL - 5 * 60 * 1000000LL);
    b = bodies[4];
    cr_assert(uin_fast_parse(b, strlen(b), k_now, &f));
    cr_assert_eq(f.ev.ts_us, k_now);
}

Test(uin_fast, leaves_everything_else_to_the_full_path) {
    static const char *bodies[] = {
        /* valid, but not a flat shape */
        "{\"event_id\":\"p\",\"customer_id\":\"acme\",\"metric\":\"m\",\"properties\":{\"region\":"
        "\"eu\"}}",
        "{\"event_id\":\"a\\u0062\",\"customer_id\":\"acme\",\"metric\":\"m\"}",
        "{\"event_id\":\"\xc3\xa9t\xc3\xa9\",\"customer_id\":\"acme\",\"metric\":\"m\"}",
        "{\"event_id\":\"n\",\"customer_id\":\"acme\",\"metric\":\"m\",\"quantity\":null}",
        "{\"events\":[{\"event_id\":\"b\",\"customer_id\":\"acme\",\"metric\":\"m\"},"
        "{\"event_id\":\"p\",\"customer_id\":\"acme\",\"metric\":\"m\",\"properties\":{}}]}",
        /* invalid: the full path names the problem */
        "{\"event_id\":\"x\",\"customer_id\":\"acme\",\"metric\":\"m\",\"quantity\":1e3}",
        "{\"event_id\":\"d\",\"event_id\":\"d\",\"customer_id\":\"acme\",\"metric\":\"m\"}",
        "{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\",\"event_type\":\"m\"}",
        "{\"event_id\":\"a\",\"customer_id\":\"acme\"}",
        "{\"event_id\":\"a\",\"customer_id\":\"\",\"metric\":\"m\"}",
        "{\"event_id\":\"\",\"customer_id\":\"acme\",\"metric\":\"m\"}",
        "{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\",\"quantity\":\"-1\"}",
        "{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\",\"quantity\":\"0."
        "0000000000001\"}",
        "{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\",\"quantity\":1,}",
        "{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\",\"timestamp\":\"2026-10-"
        "03T09:30:00Z\"}",
        "{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\",\"timestamp\":\"2026-10-03 "
        "09:15\"}",
        "{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\",\"colour\":\"red\"}",
        "{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\"} x",
        "{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\"",
        "{\"events\":[]}",
        "{\"events\":{}}",
        "{\"events\":[{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\"},]}",
        "{\"events\":[{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\"}],\"x\":1}",
        "{\"events\":[{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\"}]",
        "{\"events\":[{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\"}]}}",
        "{\"events\":[{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\"},"
        "{\"event_id\":\"b\",\"customer_id\":\"acme\",\"metric\":\"m\",\"quantity\":\"x\"}]}",
        "{\"events\":[{\"event_id\":\"a\",\"customer_id\":\"acme\",\"metric\":\"m\"}],"
        "\"events\":[{\"event_id\":\"b\",\"customer_id\":\"acme\",\"metric\":\"m\"}]}",
        "[]",
        "",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++)
        cr_assert_eq(agree(bodies[i], strlen(bodies[i])), TOOK_NONE, "took: %s", bodies[i]);
    /* 129-character customer ids and over-long single bodies are declined too */
    char big[UIN_FAST_MAX + 64];
    int n = snprintf(big, sizeof big,
                     "{\"event_id\":\"a\",\"customer_id\":\"%0129d\",\"metric\":\"m\"}", 0);
    cr_assert_eq(agree(big, (size_t)n), TOOK_NONE);
    n = snprintf(big, sizeof big,
                 "{\"event_id\":\"a\",\"customer_id\":\"%01000d\",\"metric\":\"m\"}", 0);
    cr_assert_gt(n, UIN_FAST_MAX);
    cr_assert_eq(agree(big, (size_t)n), TOOK_NONE);
}

/* A batch body of n events: ids b-0.., spread over customers, metrics
 * (both names), quantities (strings and numbers) and times. */
static char *batch_body(size_t n, size_t *len) {
    size_t cap = 64 + n * 200, o = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    o += (size_t)snprintf(s + o, cap - o, " { \"events\" : [\n");
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(
            s + o, cap - o,
            "%s{\"event_id\":\"b-%zu\",\"customer_id\":\"site-%05zu\",\"%s\":\"m%zu\","
            "\"quantity\":%s%zu.%03zu%s,\"timestamp\":\"2026-10-03T0%zu:%02zu:00Z\"}",
            i ? ",\n" : "", i, i % 7, i % 2 ? "metric" : "event_type", i % 3, i % 4 ? "\"" : "",
            i % 100, i % 997, i % 4 ? "\"" : "", i % 9, i % 60);
    }
    o += (size_t)snprintf(s + o, cap - o, "] } ");
    cr_assert_lt(o, cap);
    *len = o;
    return s;
}

Test(uin_fast, takes_batches_of_flat_events_and_agrees) {
    static const size_t sizes[] = {1, 2, 3, 64, 65, 1000, UIN_MAX_EVENTS};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t len;
        char *s = batch_body(sizes[k], &len);
        cr_assert_eq(agree(s, len), TOOK_BATCH, "%zu events declined", sizes[k]);
        uin_batch b;
        cr_assert(uin_fast_batch(s, len, k_now, &b));
        cr_assert_eq(b.n, sizes[k]);
        cr_assert(!b.single);
        char want[24];
        snprintf(want, sizeof want, "m%zu", (sizes[k] - 1) % 3);
        cr_assert_str_eq(b.ev[sizes[k] - 1].metric, want);
        uin_batch_free(&b);
        free(s);
    }
    /* one more than a batch may hold: the full path's error names it */
    size_t len;
    char *s = batch_body(UIN_MAX_EVENTS + 1, &len);
    cr_assert_eq(agree(s, len), TOOK_NONE);
    free(s);
}

/* Every one-byte change (replace by one of a set of telling bytes, delete,
 * insert) of valid bodies, one event and a batch: whatever a fast reader
 * takes, the full path takes with the same events. */
Test(uin_fast, every_one_byte_mutation_agrees_with_the_full_path) {
    static const char *bases[] = {
        "{\"event_id\":\"e-1\",\"customer_id\":\"acme\",\"metric\":\"api\",\"quantity\":\"10.50\","
        "\"timestamp\":\"2026-10-03T09:15:00Z\"}",
        "{\"event_id\":\"e\",\"customer_id\":\"c\",\"event_type\":\"t\",\"quantity\":105.25,"
        "\"event_date\":\"2026-10-03T09:15:00.123456+05:45\"}",
        "{\"events\":[{\"event_id\":\"e\",\"customer_id\":\"c\",\"metric\":\"t\",\"quantity\":1},"
        " {\"event_id\":\"f\",\"customer_id\":\"d\",\"event_type\":\"u\",\"timestamp\":\"2026-10-"
        "03T09:15:00Z\"}]}",
    };
    static const char subs[] = "\"\\{}[]:,. 0159+-eEZzT\t\x7f\x01\xc3\xff";
    size_t taken[3] = {0}, tried = 0;
    char m[512];
    for (size_t b = 0; b < sizeof bases / sizeof *bases; b++) {
        const char *s = bases[b];
        size_t len = strlen(s);
        cr_assert_lt(len + 1, sizeof m);
        for (size_t i = 0; i < len; i++) {
            for (size_t k = 0; k < sizeof subs - 1; k++) { /* replace */
                memcpy(m, s, len);
                m[i] = subs[k];
                taken[agree(m, len)]++;
                tried++;
                memcpy(m, s, i); /* insert before i */
                m[i] = subs[k];
                memcpy(m + i + 1, s + i, len - i);
                taken[agree(m, len + 1)]++;
                tried++;
            }
            memcpy(m, s, i); /* delete */
            memcpy(m + i, s + i + 1, len - i - 1);
            taken[agree(m, len - 1)]++;
            tried++;
        }
    }
    /* many mutants are still valid (ids, digits, spaces): the check bites */
    cr_assert_gt(taken[TOOK_ONE], 200, "only %zu of %zu mutants taken", taken[TOOK_ONE], tried);
    cr_assert_gt(taken[TOOK_BATCH], 100, "only %zu batch mutants taken", taken[TOOK_BATCH]);
}
