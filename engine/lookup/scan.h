/* The content scanners (AO6): clamd's INSTREAM and rspamd's /checkv2, as
 * asynchronous clients on libuv over a unix socket or TCP.  One
 * op_scanner_t per scanner; each scan is one connection:
 *
 *  - at most max_connections at once per scanner; more wait in line (a
 *    waiter that gives up leaves the line);
 *  - connect_timeout for the connection, timeout for the rest (sending
 *    the message and reading the answer);
 *  - at most max_size bytes of a message are sent (clamd: also at most
 *    stream_max, clamd's StreamMaxLength): the result says it was cut;
 *  - answers are read by scan_codec.c, bounded by max_reply; an answer
 *    that cannot be read is an error result, never a crash.
 *
 * No Lua in here: lua_api_scan.c binds it (`require "outpost.scan"`). */
#ifndef OP_SCAN_H
#define OP_SCAN_H

#include "lookup/scan_codec.h"

#include <stddef.h>
#include <uv.h>

typedef enum { OP_SCAN_CLAMD, OP_SCAN_RSPAMD } op_scan_kind_t;

typedef struct {
    const char *address;     /* "unix:/path" or "tcp:IP:PORT" ("tcp:[v6]:PORT") */
    double connect_timeout;  /* seconds */
    double timeout;          /* seconds, from connected to answered */
    size_t max_connections;
    size_t max_size;         /* bytes of a message sent at most */
    size_t stream_max;       /* clamd: its StreamMaxLength (0: max_size) */
    size_t chunk_size;       /* clamd: INSTREAM chunk */
    size_t max_reply;        /* rspamd: bytes of answer read at most */
} op_scanner_conf_t;

typedef struct op_scanner op_scanner_t;
typedef struct op_scan op_scan_t;

typedef struct {
    int ok;              /* 1: the scanner answered (clamd's ERROR is ok = 0) */
    char error[160];     /* ok = 0: "clamd: timeout", "rspamd: connect: ECONNREFUSED", ... */
    size_t sent;         /* message bytes sent */
    int truncated;       /* the message was longer than what was sent */
    double elapsed;      /* seconds from the start (line included) to the answer */
    op_clamd_result_t clamd;
    op_rspamd_result_t rspamd;
} op_scan_result_t;

/* What rspamd is told of the message (HTTP headers of /checkv2); each may
 * be NULL.  Values with control bytes are left out. */
typedef struct {
    const char *ip, *helo, *from, *user, *queue_id;
    const char *const *rcpts;
    size_t nrcpts;
} op_scan_meta_t;

typedef void (*op_scan_cb)(op_scan_t *scan, const op_scan_result_t *res, void *data);

/* NULL and a message in err when conf cannot work (a bad address). */
op_scanner_t *op_scanner_new(uv_loop_t *loop, op_scan_kind_t kind, const op_scanner_conf_t *conf,
                             char *err, size_t errlen);
/* New settings apply to scans started from now on. 0, or -1 and err. */
int op_scanner_reconfigure(op_scanner_t *s, const op_scanner_conf_t *conf, char *err, size_t errlen);
/* Scans in flight end: their callbacks fire with error "cancelled" before
 * this returns; memory goes when their handles are closed. */
void op_scanner_free(op_scanner_t *s);

/* 0 when address names a unix socket or an IP and port. */
int op_scan_address_ok(const char *address);

/* Starts scanning msg[0..len) (copied); cb fires once from the loop,
 * never from inside this call, unless op_scan_cancel comes first.
 * meta: rspamd only, copied.  NULL when the scanner is stopping. */
op_scan_t *op_scan_start(op_scanner_t *s, const char *msg, size_t len, const op_scan_meta_t *meta,
                         op_scan_cb cb, void *data);
/* The callback never fires; the connection is closed. */
void op_scan_cancel(op_scan_t *scan);

typedef struct {
    unsigned long scans, errors, timeouts, queued;
    size_t active, active_max, waiting;
} op_scanner_stats_t;
void op_scanner_stats(const op_scanner_t *s, op_scanner_stats_t *out);

#endif
