/* DKIM verification of one message (RFC 6376, RFC 8463) with Debian's
 * libopendkim, fed as the milter receives the message, with no I/O of its
 * own: the library never resolves anything.
 *
 *   op_dkim_msg_header()   each header field, as it arrives
 *   op_dkim_msg_eoh()      end of headers: the signatures are read (our
 *                          tag parser, lib/dkim_sig.h) and op_dkim_msg_key()
 *                          names the key records the caller should fetch
 *                          now, while the body streams (dkim_keys.c does it
 *                          through the DNS service and its cache)
 *   op_dkim_msg_body()     each body chunk: hashed and dropped, never kept
 *   op_dkim_msg_set_key()  a fetched record (or why there is none)
 *   op_dkim_msg_eom()      once every key is set: verifies, one verdict per
 *                          signature, top first
 *
 * libopendkim gets the records through its key-lookup callback
 * (dkim_set_key_lookup) at end of message; DELAYSIGPROC keeps it from
 * asking at end of headers, before anything was fetched. */
#ifndef OP_DKIM_VERIFY_H
#define OP_DKIM_VERIFY_H

#include <stddef.h>

/* RFC 8601's dkim results. */
typedef enum {
    OP_DKIM_PASS = 0,
    OP_DKIM_FAIL,      /* the signature or body hash does not match, revoked key, expired */
    OP_DKIM_TEMPERROR, /* the key record could not be fetched now (timeout, SERVFAIL) */
    OP_DKIM_PERMERROR, /* a malformed signature or key record, no key, rsa-sha1 (RFC 8301) */
} op_dkim_result_t;

/* At most this many signatures per message are verified (each costs a
 * key lookup and a public-key operation); the rest are reported
 * "permerror" with reason "too many signatures". */
#define OP_DKIM_MAX_SIGS 8

typedef struct {
    op_dkim_result_t result;
    char d[254];          /* the signing domain as signed (empty when unreadable) */
    char s[64];           /* the selector (cut at 63 bytes) */
    char alg[16];         /* a= */
    const char *reason;   /* static text: why not pass, "" for a pass */
    int testing;          /* the key record says t=y */
} op_dkim_verdict_t;

/* The status of a key record the caller fetched. */
typedef enum {
    OP_DKIM_KEY_PENDING = 0, /* not set yet */
    OP_DKIM_KEY_OK,          /* text holds the record */
    OP_DKIM_KEY_NONE,        /* NXDOMAIN, NODATA: no key */
    OP_DKIM_KEY_TEMPFAIL,    /* timeout, SERVFAIL, ...: try again later */
} op_dkim_key_status_t;

typedef struct op_dkim_msg op_dkim_msg_t;

/* NULL only when libopendkim cannot start (logged). */
op_dkim_msg_t *op_dkim_msg_new(void);
void op_dkim_msg_free(op_dkim_msg_t *m);

/* One header field: its name and its value as the milter gives them (the
 * value without the colon, folded with LF or CRLF; leading space or not:
 * relaxed canonicalization does not care, and Postfix's milter keeps the
 * value as it was after "Name:" minus one space, which is put back). */
void op_dkim_msg_header(op_dkim_msg_t *m, const char *name, size_t nlen, const char *value,
                        size_t vlen);

/* End of headers.  Returns the number of key records to fetch (0: no
 * signature worth a lookup). */
size_t op_dkim_msg_eoh(op_dkim_msg_t *m);

/* The i-th key record's name, "<s>._domainkey.<d>" in normal form. */
const char *op_dkim_msg_key(const op_dkim_msg_t *m, size_t i);

/* Sets the i-th key record: text (len bytes) when status is OK; the first
 * TXT record of the name, as DKIM keys have one. */
void op_dkim_msg_set_key(op_dkim_msg_t *m, size_t i, op_dkim_key_status_t status,
                         const char *text, size_t len);

/* A body chunk (CRLF line ends, as the milter gets the body). */
void op_dkim_msg_body(op_dkim_msg_t *m, const char *buf, size_t len);

/* Verifies, once (later calls return the same verdicts).  Keys still
 * pending count as temperror.  Returns the number of verdicts (0: the
 * message has no DKIM-Signature); *out stays valid until op_dkim_msg_free. */
size_t op_dkim_msg_eom(op_dkim_msg_t *m, const op_dkim_verdict_t **out);

/* The stable token of a result: "pass", "fail", "temperror", "permerror". */
const char *op_dkim_result_token(op_dkim_result_t r);

#endif
