/* Domain names as the engine compares them: one normal form for DNS
 * lookups, cache keys, counters and the directory, so `Example.ORG.`,
 * `example.org` and `exämple.org`'s A-label can never count as different
 * subjects. */
#ifndef OP_NAMES_H
#define OP_NAMES_H

#include <stddef.h>

#define OP_NAME_MAX 253 /* presentation form, without the trailing dot */

/* Writes the normal form of a domain name into out (cap >= OP_NAME_MAX+1):
 * lower case, no trailing dot, U-labels converted to A-labels (IDNA 2008,
 * UTS#46 non-transitional, as browsers and MTAs do).  Returns 0, or -1 when
 * the name cannot be valid: empty, an empty label, a label over 63 bytes,
 * a name over 253 bytes, or bytes a host name cannot hold (space, control
 * characters, '@', '/', ...).  Underscores are allowed (_dmarc, SRV). */
int op_name_normalize(const char *in, size_t len, char *out, size_t cap);

#endif
