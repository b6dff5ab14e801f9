/* Sets of IPv4 and IPv6 networks (CIDR prefixes), each with a label, and
 * longest-prefix lookup: "is this client inside the campus network, and in
 * which area?" (MO1, MO3, AO5), "is this MTA on the block list?" (MO2).
 *
 * A binary trie per address family: a lookup walks at most 32 or 128
 * nodes, whatever the size of the set, and allocates nothing. */
#ifndef OP_NETSET_H
#define OP_NETSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct op_netset op_netset_t;

op_netset_t *op_netset_new(void);
void op_netset_free(op_netset_t *s);

/* Adds "192.0.2.0/24", "2001:db8::/32" or a single address (a /32 or
 * /128) with a label (copied; may be NULL).  Host bits below the prefix
 * must be zero: "10.1.2.3/8" is refused, because it is almost always a
 * typo for a narrower network.  The same prefix twice keeps the later
 * label.  Returns 0, or -1 with a reason in err. */
int op_netset_add(op_netset_t *s, const char *cidr, const char *label, char *err, size_t errlen);

/* The label of the longest prefix containing the address (text form, IPv4
 * or IPv6; an IPv4-mapped IPv6 address matches IPv4 prefixes), "" for a
 * NULL label; NULL when no prefix contains it or the text is no address.
 * If prefix is not NULL it receives the matching prefix's length. */
const char *op_netset_match(const op_netset_t *s, const char *addr, int *prefix);

size_t op_netset_count(const op_netset_t *s);

#endif
