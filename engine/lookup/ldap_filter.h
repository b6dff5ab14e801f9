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
 * not match, a result longer than outlen, unbalanced parentheses).
 *
 * A template is compiled (op_ldap_filter_compile) at its first use and kept
 * in a small memo of this thread's last templates, so a search with a
 * template seen before only copies its literal pieces and escapes its
 * arguments.  Any case the compiled form does not answer (an invalid
 * template, a wrong argument count, an empty or too long result) goes to
 * the reference expansion, which gives the message. */
int op_ldap_filter_expand(const char *tmpl, const op_ldap_arg_t *args, size_t nargs, char *out,
                          size_t outlen, char *err, size_t errlen);

/* A compiled template: literal runs (with %% already made %) and the
 * argument after each. */
#define OP_LDAP_FILTER_TMPL_MAX 512 /* longest template compiled, bytes */
typedef struct {
    unsigned used;   /* bit i: argument i + 1 appears */
    unsigned npieces;
    struct {
        unsigned short lit_len; /* bytes of lit taken by this piece */
        signed char arg;        /* argument index after them, or -1 (the last piece) */
    } pieces[OP_LDAP_FILTER_TMPL_MAX / 2 + 1];
    char lit[OP_LDAP_FILTER_TMPL_MAX];
} op_ldap_filter_t;

/* Compiles tmpl (at most OP_LDAP_FILTER_TMPL_MAX bytes): 0, or -1 when it
 * is invalid or too long (op_ldap_filter_expand then says why). */
int op_ldap_filter_compile(const char *tmpl, op_ldap_filter_t *f);

/* Fills a compiled template: the length, or -1 when args do not match it
 * (a missing or unused argument), the result is empty or does not fit in
 * outlen bytes with its NUL.  No message: op_ldap_filter_expand has it. */
/* The expansion without the compiled form, byte by byte: what
 * op_ldap_filter_expand falls back to, and the specs' reference. */
int op__ldap_filter_expand_ref(const char *tmpl, const op_ldap_arg_t *args, size_t nargs,
                               char *out, size_t outlen, char *err, size_t errlen);

int op_ldap_filter_fill(const op_ldap_filter_t *f, const op_ldap_arg_t *args, size_t nargs,
                        char *out, size_t outlen);

/* Escapes one value per RFC 4515 into out; returns the length or -1 when it
 * does not fit. */
int op_ldap_filter_escape(const char *v, size_t len, char *out, size_t outlen);

#endif
