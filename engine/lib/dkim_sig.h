/* The DKIM-Signature header field's tag list (RFC 6376 3.2, 3.5), read
 * without I/O: the milter parses each signature at end of headers to know
 * which key records (s=._domainkey.d=) to fetch while the body streams, and
 * the policy reports d=, s= and a= in its decision line.  Verifying is
 * libopendkim's (lookup/dkim.c); this parser only has to agree with it on
 * which signatures are worth a key lookup, so anything it refuses is a
 * signature that cannot verify ("permerror").
 *
 * Spans point into the caller's buffer (not NUL-terminated) and are
 * trimmed of the folding white space around a value; the space inside a
 * value (b=, bh=, h=) stays. */
#ifndef OP_DKIM_SIG_H
#define OP_DKIM_SIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *p; /* NULL: the tag is absent */
    size_t len;
} op_dkim_span_t;

typedef enum {
    OP_DKIM_ALG_UNKNOWN = 0,
    OP_DKIM_ALG_RSA_SHA256,
    OP_DKIM_ALG_RSA_SHA1,      /* parsed, refused by RFC 8301: not verified */
    OP_DKIM_ALG_ED25519_SHA256,
} op_dkim_alg_t;

typedef enum {
    OP_DKIM_CANON_SIMPLE = 0,
    OP_DKIM_CANON_RELAXED,
} op_dkim_canon_t;

typedef struct {
    op_dkim_span_t v, a, b, bh, c, d, h, i, l, q, s, t, x;
    op_dkim_alg_t alg;
    op_dkim_canon_t hcanon, bcanon;
    int has_l, has_t, has_x;
    uint64_t body_len;          /* l= */
    uint64_t sig_time, expires; /* t=, x=: seconds since the epoch */
} op_dkim_sig_t;

/* Parses the value of one DKIM-Signature field (what follows the colon,
 * folded or not).  Returns 0, or -1 with a short reason in err: syntax
 * (a tag name that is not ALPHA *(ALPHA / DIGIT / "_"), a value with a
 * byte outside VALCHAR and white space, no "="), a duplicate tag, a
 * required tag missing (v a b bh d h s), v other than 1, an a= or c= this
 * engine does not know, h= without "from", a number too long for l= t= x=
 * (RFC: up to 76 and 12 digits; over 2^63 here), x= before t=, an i=
 * whose domain is not d= or below it, a d= or s= that is no domain name.
 * Unknown tags are ignored, as the RFC says. */
int op_dkim_sig_parse(const char *value, size_t len, op_dkim_sig_t *out, char *err,
                      size_t errlen);

/* The name of the key record of sig: "<s>._domainkey.<d>" in the normal
 * form of lib/names.h, so two signatures of one key share one cache entry.
 * Returns its length, or -1 when it does not fit in OP_NAME_MAX or is no
 * name. */
int op_dkim_key_name(const op_dkim_sig_t *sig, char *out, size_t cap);

#endif
