/* LDAP search filters built from a template, so that no request value is
 * ever concatenated into a filter.
 *
 * A template is a filter with placeholders:
 *   %s      the next argument (the first %s is argument 1, the second 2, ...)
 *   %1..%9  argument N, may repeat: "(|(mail=%1)(mailLocalAddress=%1))"
 *   %%      a literal %
 * Every argument is escaped per RFC 4515 before it is substituted: * ( ) \
 * NUL, every other control byte and every byte >= 0x80 become \XX, so a
 * value can only ever be one assertion value and never widen the filter.
 * Every argument must be used, and no placeholder may name a missing one. */
#ifndef OP_LDAP_FILTER_H
#define OP_LDAP_FILTER_H

#include <stddef.h>

#define OP_LDAP_FILTER_MAX 4096 /* longest expanded filter, bytes with the NUL */
#define OP_LDAP_FILTER_ARGS 9

typedef struct {
    const char *data;
    size_t len;
} op_ldap_arg_t;

/* Expands tmpl with args into out (NUL-terminated).  Returns the length, or
 * -1 with a message in err (a bad placeholder, an argument count that does
 * not match, a result longer than outlen, unbalanced parentheses). */
int op_ldap_filter_expand(const char *tmpl, const op_ldap_arg_t *args, size_t nargs, char *out,
                          size_t outlen, char *err, size_t errlen);

/* Escapes one value per RFC 4515 into out; returns the length or -1 when it
 * does not fit. */
int op_ldap_filter_escape(const char *v, size_t len, char *out, size_t outlen);

#endif
