/* The scanners' wire formats over buffers, without I/O (fuzzed:
 * spec/fuzz/fuzz_scan_codec.c): clamd's INSTREAM framing and its one-line
 * answer, an HTTP/1.1 response, and rspamd's /checkv2 JSON reply.  scan.c
 * moves the bytes. */
#ifndef OP_SCAN_CODEC_H
#define OP_SCAN_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* ---- clamd --------------------------------------------------------- */

typedef enum {
    OP_CLAMD_CLEAN,    /* "stream: OK" */
    OP_CLAMD_INFECTED, /* "stream: NAME FOUND": detail is NAME */
    OP_CLAMD_ERROR,    /* "... ERROR", or an answer we cannot read: detail says what */
} op_clamd_status_t;

typedef struct {
    op_clamd_status_t status;
    char detail[128];
} op_clamd_result_t;

/* The command that opens an INSTREAM session ("zINSTREAM" and its NUL). */
#define OP_CLAMD_INSTREAM "zINSTREAM"
#define OP_CLAMD_INSTREAM_LEN 10

/* The 4-byte big-endian length that precedes each chunk (0 ends the stream). */
void op_clamd_chunk_header(uint32_t len, unsigned char out[4]);

/* Reads clamd's answer: buf holds the bytes up to (not including) the
 * terminating NUL or newline.  Always fills *out; returns 0 when the answer
 * had a known form, -1 when not (status ERROR, detail "malformed answer").
 * A signature name is kept to printable ASCII without spaces. */
int op_clamd_parse(const char *buf, size_t len, op_clamd_result_t *out);

/* ---- HTTP/1.1 responses -------------------------------------------- */

#define OP_HTTP_MAX_HEADER 8192 /* status line and header fields */
#define OP_HTTP_MAX_FIELDS 64

enum {
    OP_HTTP_MORE = 0,          /* not complete yet */
    OP_HTTP_DONE = 1,          /* complete: status, body_off, body_len */
    OP_HTTP_EMALFORMED = -1,   /* not an HTTP/1.x response */
    OP_HTTP_ETOOBIG = -2,      /* header over OP_HTTP_MAX_HEADER or fields, body over max_body */
    OP_HTTP_EUNSUPPORTED = -3, /* a transfer coding (chunked, ...) we do not ask for nor read */
    OP_HTTP_ETRUNCATED = -4,   /* the connection ended before the body did */
};

typedef struct {
    int status;      /* 100..599 */
    size_t body_off; /* where the body begins in the buffer */
    size_t body_len;
} op_http_response_t;

/* Parses the response in buf[0..len).  eof: the server closed the
 * connection (a body without Content-Length ends there).  max_body bounds
 * the body.  Returns one of the codes above; call again with more bytes
 * while it returns OP_HTTP_MORE.  Interim 1xx responses are refused
 * (we send no Expect). */
int op_http_parse_response(const char *buf, size_t len, int eof, size_t max_body,
                           op_http_response_t *r);

/* 1 when s can be an HTTP header field value: no CR, LF, NUL or other
 * control byte but tab, at most 998 bytes. */
int op_http_value_ok(const char *s);

/* ---- rspamd /checkv2 ----------------------------------------------- */

#define OP_RSPAMD_MAX_SYMBOLS 48
#define OP_RSPAMD_JSON_DEPTH 16

typedef struct {
    char name[64];
    double score;
} op_rspamd_symbol_t;

typedef struct {
    char action[32];   /* "no action", "greylist", "add header", "rewrite subject", "soft reject", "reject" */
    double score;
    double required;   /* required_score */
    int skipped;       /* is_skipped */
    size_t nsymbols;   /* kept: the highest-scoring first, at most OP_RSPAMD_MAX_SYMBOLS */
    size_t symbols_seen;
    op_rspamd_symbol_t symbols[OP_RSPAMD_MAX_SYMBOLS];
} op_rspamd_result_t;

/* Reads a /checkv2 body (a JSON object).  0 when it is one with an
 * "action" string and a "score" number; -1 otherwise (malformed JSON,
 * nesting over OP_RSPAMD_JSON_DEPTH, a missing field).  Names are kept to
 * printable ASCII; symbols are sorted by score, highest first. */
int op_rspamd_parse(const char *json, size_t len, op_rspamd_result_t *out);

#endif
