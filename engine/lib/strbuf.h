/* A growable text buffer for answers built once and sent whole: the
 * Prometheus text, `outpostctl stats`, an explain trace.  Not for the
 * request path (it allocates as it grows); the log formats into fixed
 * buffers instead (core/log_format.h). */
#ifndef OP_STRBUF_H
#define OP_STRBUF_H

#include <stddef.h>

typedef struct {
    char *p;    /* NUL-terminated while n < cap */
    size_t n;   /* bytes written, without the NUL */
    size_t cap; /* bytes allocated */
} op_sb_t;

/* An empty buffer with room for cap bytes. */
void op_sb_init(op_sb_t *b, size_t cap);

/* Appends printf-style, growing the buffer as needed. */
void op_sb_printf(op_sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s (NULL: empty) as a JSON string with its quotes, escaped as the
 * log's JSON lines are (op_log_fmt_json_str): any byte a client sent
 * gives valid JSON and valid UTF-8. */
void op_sb_json(op_sb_t *b, const char *s);

#endif
