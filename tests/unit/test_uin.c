/* test_uin.c — the jansson-free reader of one flat usage event (uin_fast)
 * against the full reader (jx_loadb + uin_parse).
 *
 * The fast path's promise (api/uin_fast.h): for any body it yields exactly
 * the event the full path would, or declines.  Checked three ways: common
 * bodies it must take (and agree on), bodies it must leave to the full path,
 * and every one-byte mutation of a few valid bodies (whatever it takes, the
 * full path takes with the same event). */
#include "fmacros.h"
#include "uin.h"
#include "uin_fast.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* 2026-10-03T09:20:00Z: timestamps in the bodies are a little before it */
static const int64_t k_now = 1791019200LL * 1000000LL;

/* The full path: 1 with *ev (strings copied into store) when the body is
 * one valid event, 0 otherwise. */
typedef struct full_ev {
    char event_id[200], customer[200], metric[200], quantity[UEV_QTY_MAX];
    int64_t ts_us;
    bool has_props;
} full_ev;

static int full_parse(const char *body, size_t len, full_ev *out) {
    char err[128];
    json_t *j = jx_loadb(body, len, err, sizeof err);
    if (!j) return 0;
    jx_errs *e = jx_errs_new();
    cr_assert_not_null(e);
    uin_batch b;
    int ok = uin_parse(j, k_now, &b, e) == 0 && b.single && b.n == 1;
    if (ok) {
        snprintf(out->event_id, sizeof out->event_id, "%s", b.ev[0].event_id);
        snprintf(out->customer, sizeof out->customer, "%s", b.ev[0].customer);
        snprintf(out->metric, sizeof out->metric, "%s", b.ev[0].metric);
        memcpy(out->quantity, b.ev[0].quantity, sizeof out->quantity);
        out->ts_us = b.ev[0].ts_us;
        out->has_props = b.ev[0].properties != NULL;
        uin_batch_free(&b);
    }
    jx_errs_free(e);
    json_decref(j);
    return ok;
}

/* When the fast path takes the body, the full path must take it too, with
 * the same event.  Returns whether the fast path took it. */
static bool agree(const char *body, size_t len) {
    uin_fast f;
    if (!uin_fast_parse(body, len, k_now, &f)) return false;
    full_ev g;
    cr_assert(full_parse(body, len, &g), "fast path took a body the full path refuses: %.*s",
              (int)len, body);
    cr_assert_str_eq(f.ev.event_id, g.event_id, "event_id of %.*s", (int)len, body);
    cr_assert_str_eq(f.ev.customer, g.customer, "customer of %.*s", (int)len, body);
    cr_assert_str_eq(f.ev.metric, g.metric, "metric of %.*s", (int)len, body);
    cr_assert_str_eq(f.ev.quantity, g.quantity, "quantity of %.*s", (int)len, body);
    cr_assert_eq(f.ev.ts_us, g.ts_us, "timestamp of %.*s", (int)len, body);
    cr_assert_null(f.ev.properties);
    cr_assert(!g.has_props);
    return true;
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
        cr_assert(agree(bodies[i], strlen(bodies[i])), "declined: %s", bodies[i]);
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
        /* valid, but not the flat shape */
        "{\"event_id\":\"p\",\"customer_id\":\"acme\",\"metric\":\"m\",\"properties\":{\"region\":"
        "\"eu\"}}",
        "{\"events\":[{\"event_id\":\"b\",\"customer_id\":\"acme\",\"metric\":\"m\"}]}",
        "{\"event_id\":\"a\\u0062\",\"customer_id\":\"acme\",\"metric\":\"m\"}",
        "{\"event_id\":\"\xc3\xa9t\xc3\xa9\",\"customer_id\":\"acme\",\"metric\":\"m\"}",
        "{\"event_id\":\"n\",\"customer_id\":\"acme\",\"metric\":\"m\",\"quantity\":null}",
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
        "[]",
        "",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        uin_fast f;
        cr_assert(!uin_fast_parse(bodies[i], strlen(bodies[i]), k_now, &f), "took: %s", bodies[i]);
    }
    /* the single events among the valid ones: the full path takes them */
    static const size_t valid[] = {0, 2, 4};
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        full_ev g;
        const char *b = bodies[valid[i]];
        cr_assert(full_parse(b, strlen(b), &g), "full path refused: %s", b);
    }
    /* 129-character customer ids and over-long bodies are declined too */
    char big[UIN_FAST_MAX + 64];
    int n = snprintf(big, sizeof big,
                     "{\"event_id\":\"a\",\"customer_id\":\"%0129d\",\"metric\":\"m\"}", 0);
    uin_fast f;
    cr_assert(!uin_fast_parse(big, (size_t)n, k_now, &f));
    n = snprintf(big, sizeof big,
                 "{\"event_id\":\"a\",\"customer_id\":\"%01000d\",\"metric\":\"m\"}", 0);
    cr_assert_gt(n, UIN_FAST_MAX);
    cr_assert(!uin_fast_parse(big, (size_t)n, k_now, &f));
}

/* Every one-byte change (replace by one of a set of telling bytes, delete,
 * insert) of valid bodies: whatever the fast path takes, the full path takes
 * with the same event. */
Test(uin_fast, every_one_byte_mutation_agrees_with_the_full_path) {
    static const char *bases[] = {
        "{\"event_id\":\"e-1\",\"customer_id\":\"acme\",\"metric\":\"api\",\"quantity\":\"10.50\","
        "\"timestamp\":\"2026-10-03T09:15:00Z\"}",
        "{\"event_id\":\"e\",\"customer_id\":\"c\",\"event_type\":\"t\",\"quantity\":105.25,"
        "\"event_date\":\"2026-10-03T09:15:00.123456+05:45\"}",
    };
    static const char subs[] = "\"\\{}[]:,. 0159+-eEZzT\t\x7f\x01\xc3\xff";
    size_t taken = 0, tried = 0;
    char m[512];
    for (size_t b = 0; b < sizeof bases / sizeof *bases; b++) {
        const char *s = bases[b];
        size_t len = strlen(s);
        cr_assert_lt(len + 1, sizeof m);
        for (size_t i = 0; i < len; i++) {
            for (size_t k = 0; k < sizeof subs - 1; k++) { /* replace */
                memcpy(m, s, len);
                m[i] = subs[k];
                taken += agree(m, len);
                tried++;
                memcpy(m, s, i); /* insert before i */
                m[i] = subs[k];
                memcpy(m + i + 1, s + i, len - i);
                taken += agree(m, len + 1);
                tried++;
            }
            memcpy(m, s, i); /* delete */
            memcpy(m + i, s + i + 1, len - i - 1);
            taken += agree(m, len - 1);
            tried++;
        }
    }
    /* many mutants are still valid (ids, digits, spaces): the check bites */
    cr_assert_gt(taken, 200, "only %zu of %zu mutants taken", taken, tried);
}
