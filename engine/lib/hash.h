/* hash.h — FNV-1a, unkeyed, for the counters' in-memory tables.
 *
 * Anyone who knows FNV can choose keys that share a bucket; the lookup
 * caches and the transaction links, whose keys senders choose, use the
 * keyed SipHash of siphash.h instead.  The counters' subjects come from
 * mail too and should move to it (their tables are bounded, so the worst
 * case is slower lookups, not memory).
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
