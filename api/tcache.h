/* tcache.h — a small thread-safe cache: string key → fixed-size value, with a
 * time to live and a bounded number of entries (prefix tc_).
 *
 * DESIGN — One mutex, one chained hash table sized at creation.  Values are
 * copied in and out, so nothing handed out can be freed under a reader.  An
 * entry older than the TTL is a miss (and is dropped).  When the table holds
 * max entries, a put first drops every expired entry and, if still full,
 * empties the table: a cache that keeps its promise of bounded memory beats
 * a clever eviction policy here (its users re-fill it with one query).  Used
 * by billing-api for credentials (auth.c) and for customer and metric ids
 * (routes_usage.c); any thread may call it.
 */
#ifndef ML_TCACHE_H
#define ML_TCACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tc tc;

tc *tc_new(size_t max_entries, int64_t ttl_us); /* NULL when out of memory */
void tc_free(tc *c);                            /* NULL ok */
/* Copies the value (exactly len bytes were stored) into val; false on miss. */
bool tc_get(tc *c, const char *key, void *val, size_t len);
/* Stores (or replaces) key → val[0..len).  0, or -1 when out of memory (the
 * cache is then simply without the entry). */
int tc_put(tc *c, const char *key, const void *val, size_t len);
void tc_del(tc *c, const char *key);
/* Drops every entry for which pred(key, val, arg) is true. */
void tc_del_if(tc *c, bool (*pred)(const char *key, const void *val, void *arg), void *arg);
size_t tc_count(tc *c);

#endif
