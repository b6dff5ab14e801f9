/* Postfix policy delegation protocol (SMTPD_POLICY_README): a pure codec
 * over buffers, no I/O.
 *
 * A request is a sequence of "name=value\n" lines ended by an empty line.
 * The parser is incremental: the caller keeps the unconsumed bytes of a
 * connection in one buffer and calls op_policy_parse() whenever more arrive;
 * the parser remembers how far it has looked, so a request that trickles in
 * byte by byte costs O(n), not O(n^2).
 *
 * Strict bounds protect the daemon from hostile or broken clients: a line
 * longer than max_line, more than max_attrs attributes or a request longer
 * than max_request is an error, as is a NUL byte, a line without '=', an
 * empty or invalid attribute name, a duplicated name or a request with no
 * attribute at all.  The caller logs the error and closes the connection
 * without a reply; Postfix then retries on a new connection.
 *
 * A "\r\n" line end is accepted as "\n" (telnet and hand-written clients). */
#ifndef OP_PROTO_POLICY_H
#define OP_PROTO_POLICY_H

#include <stddef.h>
#include <sys/types.h>

/* Postfix's own client limits are far below these. */
#define OP_POLICY_MAX_LINE_DEFAULT 4096
#define OP_POLICY_MAX_ATTRS_DEFAULT 128
#define OP_POLICY_MAX_REQUEST_DEFAULT 65536
#define OP_POLICY_MAX_NAME 64

/* Error codes returned (negated) by op_policy_parse. */
enum {
    OP_POLICY_ELINE = 1,   /* a line longer than max_line */
    OP_POLICY_EATTRS,      /* more than max_attrs attributes */
    OP_POLICY_ESIZE,       /* request longer than max_request */
    OP_POLICY_ENUL,        /* NUL byte */
    OP_POLICY_ESYNTAX,     /* line without '=', or a bare CR */
    OP_POLICY_ENAME,       /* empty, too long or invalid attribute name */
    OP_POLICY_EDUP,        /* the same attribute twice in one request */
    OP_POLICY_EEMPTY,      /* empty line with no attribute before it */
};

typedef struct {
    size_t max_line;    /* bytes of one line, without its "\n" */
    size_t max_attrs;   /* attributes in one request */
    size_t max_request; /* bytes of one request, including line ends */
} op_policy_limits_t;

typedef struct {
    const char *name; /* points into the caller's buffer, not terminated */
    size_t name_len;
    const char *value; /* points into the caller's buffer, not terminated */
    size_t value_len;
} op_policy_attr_t;

typedef struct {
    op_policy_limits_t limits;
    size_t scanned;    /* bytes of the current request already examined */
    size_t line_start; /* offset of the line being scanned */
    size_t nattrs;
    op_policy_attr_t *attrs; /* capacity limits.max_attrs (private data follows) */
    /* The name cache (proto_policy.c says how it is used): */
    size_t ncached; /* names kept from the requests before, in order */
    size_t matched; /* leading attributes of this request that are those names */
    int hashed;     /* this request's names are in the duplicate table */
} op_policy_parser_t;

/* limits may be NULL for the defaults; a zero field also takes its default.
 * Limits beyond what can be reached are clamped (max_line to max_request,
 * max_attrs to max_request / 3), which changes no result; max_attrs is also
 * capped at 4096 (the attribute array is allocated here, whole). */
void op_policy_parser_init(op_policy_parser_t *p, const op_policy_limits_t *limits);
void op_policy_parser_free(op_policy_parser_t *p);

/* buf[0..len) holds the unconsumed bytes of the connection; the current
 * request starts at buf[0], and the caller must pass the same bytes again
 * (possibly with more appended, possibly at another address) until the
 * parser returns non-zero.
 *
 * Returns:
 *   > 0  a complete request of that many bytes; its attributes are
 *        op_policy_attrs(p) and stay valid until buf changes.  The parser is
 *        reset for the next request, which starts at buf[returned].
 *   0    need more bytes.
 *   < 0  -OP_POLICY_E*: the stream is malformed; the parser must not be used
 *        again on this connection; later calls return the same error.
 *
 * At end of file with bytes still pending (a last call returned 0 and buf is
 * not empty), the request is truncated: the caller treats that as an error.
 *
 * The error reported is that of the first offending byte of the stream, so
 * it does not depend on how the bytes were split between calls. */
ssize_t op_policy_parse(op_policy_parser_t *p, const char *buf, size_t len);

/* The attributes of the request just returned (> 0), in request order;
 * meaningless at any other time. */
size_t op_policy_nattrs(const op_policy_parser_t *p);
const op_policy_attr_t *op_policy_attrs(const op_policy_parser_t *p);

/* A human-readable text for a negative return of op_policy_parse. */
const char *op_policy_strerror(ssize_t err);

/* Writes "action=<action>\n\n" into out (cap bytes) and returns its length,
 * or 0 when cap is too small.  Bytes of action below 0x20 (CR, LF, NUL, TAB,
 * ...) and DEL (0x7f) are replaced with a space so a reply can never end
 * early or smuggle a second line; the action is cut at OP_POLICY_MAX_ACTION
 * bytes (before the replacement, so the output is at most 1009 bytes). */
#define OP_POLICY_MAX_ACTION 1000
size_t op_policy_encode(char *out, size_t cap, const char *action, size_t action_len);

#endif
