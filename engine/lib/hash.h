/* hash.h — FNV-1a, the one hash of the engine's in-memory tables (the DNS,
 * LDAP and call-out caches, transaction links, counter overrides).
 *
 * Keys come from mail (addresses, domains), so a sender could aim at one
 * bucket; every table is bounded and evicts, so the worst case is slower
 * lookups in that table, not memory.  Chains stay short in practice.
 */
#ifndef OP_HASH_H
#define OP_HASH_H

#include <stddef.h>
#include <stdint.h>

#define OP_HASH_INIT 1469598103934665603ULL

/* continue the hash h over n bytes at p */
static inline uint64_t op_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* continue the hash h over the string s (without its NUL) */
static inline uint64_t op_hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

#endif
