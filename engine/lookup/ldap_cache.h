/* The LDAP service's tables: answers by search (the cache, with TTLs and
 * an LRU bound) and searches in flight (for coalescing).  A hash table of
 * byte-string keys with a least-recently-used list; values are opaque and
 * released through the table's release function when they leave it.
 * Knows nothing of LDAP, so the unit tests drive it directly. */
#ifndef OP_LDAP_CACHE_H
#define OP_LDAP_CACHE_H

#include <stddef.h>

typedef struct op_ldap_cache op_ldap_cache_t;

/* max_entries 0: keeps nothing (put releases at once).  release may be NULL. */
op_ldap_cache_t *op_ldap_cache_new(size_t max_entries, void (*release)(void *value));
void op_ldap_cache_free(op_ldap_cache_t *c);

/* The value stored under key if it has not expired at now (seconds, any
 * monotonic clock), and makes it the most recently used; NULL otherwise.
 * An expired entry is dropped. */
void *op_ldap_cache_get(op_ldap_cache_t *c, const char *key, size_t keylen, double now);

/* Stores value under key until expires (replacing and releasing an older
 * value), then drops the least recently used entries beyond the bound. */
void op_ldap_cache_put(op_ldap_cache_t *c, const char *key, size_t keylen, void *value, double expires);

/* Removes key without releasing its value; returns the value or NULL. */
void *op_ldap_cache_take(op_ldap_cache_t *c, const char *key, size_t keylen);

/* A new bound, applied at once (reload). */
void op_ldap_cache_resize(op_ldap_cache_t *c, size_t max_entries);
void op_ldap_cache_clear(op_ldap_cache_t *c);
size_t op_ldap_cache_count(const op_ldap_cache_t *c);

#endif
