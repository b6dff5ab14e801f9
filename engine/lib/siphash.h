/* siphash.h — SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast
 * short-input PRF", 2012), the keyed hash of the tables whose keys come
 * from mail: the lookup caches (DNS names, LDAP searches, call-out
 * addresses), the transaction links and the counters' in-memory tables
 * (subjects).
 *
 * With a key no sender can know, a sender cannot choose names that all land
 * in one bucket and turn every lookup of a table into a walk of one long
 * chain.  The process key comes from getrandom() when the program starts,
 * so it differs from run to run (a table's order is never stable: nothing
 * may depend on it). */
#ifndef OP_SIPHASH_H
#define OP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define OP_SIPHASH_KEY_LEN 16

/* SipHash-2-4 of len bytes at msg under the 128-bit key (as bytes, the
 * paper's k0 and k1 read little-endian). */
uint64_t op_siphash_2_4(const unsigned char key[OP_SIPHASH_KEY_LEN], const void *msg, size_t len);

/* The same under the process key. */
uint64_t op_siphash(const void *msg, size_t len);

#endif
