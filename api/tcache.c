/* tcache.c — bounded TTL cache.  See tcache.h. */
#include "fmacros.h"
#include "tcache.h"
#include "ts.h"
#include <pthread.h>
#include <stdlib.h>

typedef struct tc_ent {
    struct tc_ent *next;
    uint64_t hash;
    int64_t expires_us;
    size_t len;
    char *key;
    unsigned char val[];
} tc_ent;

struct tc {
    pthread_mutex_t mu;
    tc_ent **slots;
    size_t nslots, count, max;
    int64_t ttl_us;
};

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

tc *tc_new(size_t max_entries, int64_t ttl_us) {
    tc *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->nslots = 64;
    while (c->nslots < max_entries) c->nslots <<= 1;
    c->slots = calloc(c->nslots, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    c->max = max_entries ? max_entries : 1;
    c->ttl_us = ttl_us;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void ent_free(tc_ent *e) {
    free(e->key);
    free(e);
}

static void clear_locked(tc *c, bool only_expired, int64_t now) {
    for (size_t i = 0; i < c->nslots; i++) {
        tc_ent **pp = &c->slots[i];
        while (*pp) {
            tc_ent *e = *pp;
            if (!only_expired || e->expires_us <= now) {
                *pp = e->next;
                ent_free(e);
                c->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

void tc_free(tc *c) {
    if (!c) return;
    clear_locked(c, false, 0);
    free(c->slots);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* The link pointing at key's entry (or at the NULL ending its chain). */
static tc_ent **find_locked(tc *c, const char *key, uint64_t h) {
    tc_ent **pp = &c->slots[h & (c->nslots - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key))) pp = &(*pp)->next;
    return pp;
}

bool tc_get(tc *c, const char *key, void *val, size_t len) {
    uint64_t h = fnv1a(key);
    int64_t now = ts_now();
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    tc_ent **pp = find_locked(c, key, h);
    tc_ent *e = *pp;
    if (e && e->expires_us <= now) {
        *pp = e->next;
        ent_free(e);
        c->count--;
    } else if (e && e->len == len) {
        memcpy(val, e->val, len);
        hit = true;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

int tc_put(tc *c, const char *key, const void *val, size_t len) {
    uint64_t h = fnv1a(key);
    tc_ent *n = malloc(sizeof *n + len);
    char *k = strdup(key);
    if (!n || !k) {
        free(n);
        free(k);
        return -1;
    }
    n->hash = h;
    n->key = k;
    n->len = len;
    memcpy(n->val, val, len);
    int64_t now = ts_now();
    n->expires_us = now + c->ttl_us;
    pthread_mutex_lock(&c->mu);
    tc_ent **pp = find_locked(c, key, h);
    if (*pp) { /* replace */
        tc_ent *old = *pp;
        n->next = old->next;
        *pp = n;
        ent_free(old);
    } else {
        if (c->count >= c->max) {
            clear_locked(c, true, now);
            if (c->count >= c->max) clear_locked(c, false, now);
            pp = find_locked(c, key, h);
        }
        n->next = NULL;
        *pp = n;
        c->count++;
    }
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void tc_del(tc *c, const char *key) {
    uint64_t h = fnv1a(key);
    pthread_mutex_lock(&c->mu);
    tc_ent **pp = find_locked(c, key, h);
    if (*pp) {
        tc_ent *e = *pp;
        *pp = e->next;
        ent_free(e);
        c->count--;
    }
    pthread_mutex_unlock(&c->mu);
}

void tc_del_if(tc *c, bool (*pred)(const char *key, const void *val, void *arg), void *arg) {
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nslots; i++) {
        tc_ent **pp = &c->slots[i];
        while (*pp) {
            tc_ent *e = *pp;
            if (pred(e->key, e->val, arg)) {
                *pp = e->next;
                ent_free(e);
                c->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
}

size_t tc_count(tc *c) {
    pthread_mutex_lock(&c->mu);
    size_t n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}
