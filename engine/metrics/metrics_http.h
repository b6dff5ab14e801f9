/* The HTTP/1.1 request head the metrics endpoint reads, and the answers it
 * writes: a codec over buffers, no I/O (metrics_server.c does that;
 * spec/fuzz/fuzz_metrics_http.c fuzzes it).  Only what a scraper sends is
 * understood: a request line and header lines up to the empty line; a body
 * is never read. */
#ifndef OP_METRICS_HTTP_H
#define OP_METRICS_HTTP_H

#include <stddef.h>

#define OP_HTTP_MAX_HEAD 8192 /* longer: 400 */

enum {
    OP_HTTP_MORE = 0,      /* no complete head yet: read more */
    OP_HTTP_OK = 200,      /* GET /metrics */
    OP_HTTP_BAD = 400,     /* not an HTTP/1.x request head */
    OP_HTTP_NOT_FOUND = 404,
    OP_HTTP_METHOD = 405,  /* a method other than GET */
};

/* What the head in buf[0..len) asks for: one of the codes above.  A head
 * is complete at its empty line (CRLF CRLF, or LF LF). */
int op_http_parse(const char *buf, size_t len);

/* The status line and headers of an answer with code and a body of
 * body_len bytes (text/plain; version=0.0.4 for 200; Connection: close),
 * written into out (at least 256 bytes); returns its length. */
size_t op_http_head(char *out, size_t cap, int code, size_t body_len);

/* The body of an error answer (a short line of text). */
const char *op_http_error_body(int code);

#endif
