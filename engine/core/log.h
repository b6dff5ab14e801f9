/* Logging: one line per event, to one target (log { target }):
 *
 * - stderr (the default).  On a terminal each line starts with the time;
 *   under systemd (JOURNAL_STREAM names stderr) with a syslog priority
 *   prefix "<N>" that journald reads, the journal adding its own time;
 *   anywhere else (a file, a pipe, a supervisor) with an RFC 3339 time.
 * - syslog: datagrams to /dev/log (or log { socket }) in the form glibc's
 *   syslog(3) sends, facility mail, ident outpostd: mail.log beside Postfix.
 * - journal: the journal's native protocol, each field of a structured
 *   line (op_log_fields) a journal field of its own (QUEUE_ID=, CHECK=).
 *
 * format = json makes a text line (stderr, syslog) one JSON object.  The
 * sockets are non-blocking: a line the receiver has no room for is dropped
 * and counted (op_log_dropped), the loop never waits for a log reader.
 * The ladder follows Postfix: info, notice, warning, error, fatal (exit 1),
 * panic (abort: a bug). */
#ifndef OP_LOG_H
#define OP_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    OP_LOG_DEBUG = 7,
    OP_LOG_INFO = 6,
    OP_LOG_NOTICE = 5,
    OP_LOG_WARNING = 4,
    OP_LOG_ERR = 3,
    OP_LOG_CRIT = 2,
} op_log_level_t;

void op_log_set_level(op_log_level_t level);
op_log_level_t op_log_get_level(void);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int op_log_level_parse(const char *name, op_log_level_t *out);
int op_log_enabled(op_log_level_t level);

void op_log(op_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void op_logv(op_log_level_t level, const char *fmt, va_list ap);

/* A field of a structured line: its key (lower case, [a-z0-9_]) and
 * value.  Text shows it as key=value, JSON as a key of its own, the
 * journal as the field KEY= (upper-cased). */
enum {
    OP_LF_QUOTE = 1 << 0, /* text: always quoted (fields that always were) */
    OP_LF_NUM = 1 << 1,   /* a decimal number: bare in JSON */
};
#define OP_LOG_FIELD_MAX 200 /* bytes of a value kept unless the field says */

typedef struct {
    const char *key;
    const char *value;
    size_t len;
    unsigned flags; /* OP_LF_* */
    unsigned max;   /* bytes of the value kept; 0: OP_LOG_FIELD_MAX */
} op_log_field_t;

/* A line with fields (the decision lines): rendered once, for the
 * target, in a buffer on the stack; text "msg key=value ...". */
void op_log_fields(op_log_level_t level, const char *msg, const op_log_field_t *f, size_t n);

/* Where lines go (log { } in outpost.conf, core/log_config.c). */
typedef enum { OP_LOG_TO_STDERR, OP_LOG_TO_SYSLOG, OP_LOG_TO_JOURNAL } op_log_target_t;
typedef enum { OP_LOG_TEXT, OP_LOG_JSON } op_log_format_t;

typedef struct {
    int target;         /* op_log_target_t */
    int format;         /* op_log_format_t */
    int facility;       /* syslog: LOG_MAIL, ... (shifted, as <syslog.h>) */
    const char *ident;  /* syslog and journal: SYSLOG_IDENTIFIER */
    const char *socket; /* syslog, journal: the datagram socket; NULL: the system's */
} op_log_sink_t;

/* Sends the lines that follow to s's target (copied).  Opening the
 * socket cannot fail for want of a reader: a line nobody receives goes to
 * stderr instead, and the first such line says why. */
void op_log_set_sink(const op_log_sink_t *s);
/* Lines dropped because the target's socket was full, since the start. */
unsigned long long op_log_dropped(void);

#define op_debug(...) op_log(OP_LOG_DEBUG, __VA_ARGS__)
#define op_info(...) op_log(OP_LOG_INFO, __VA_ARGS__)
#define op_notice(...) op_log(OP_LOG_NOTICE, __VA_ARGS__)
#define op_warn(...) op_log(OP_LOG_WARNING, __VA_ARGS__)
#define op_error(...) op_log(OP_LOG_ERR, __VA_ARGS__)

/* A rate limit for a log line that a client can repeat at will (a reset,
 * a refusal): at most OP_LOG_BURST lines of that kind per second, then
 * one line saying how many were suppressed once the second is over.  The
 * caller keeps one op_log_limit_t per kind of line. */
#define OP_LOG_BURST 10

typedef struct {
    uint64_t window;     /* the second (ms of the loop's clock / 1000) being counted */
    unsigned logged;     /* lines written in that second */
    unsigned long suppressed; /* lines dropped since the last one written */
} op_log_limit_t;

/* Logs like op_log unless the limit is reached; now_ms is the loop's
 * clock (uv_now).  A line that does get through after some were dropped
 * says how many. */
void op_log_limited(op_log_limit_t *lim, uint64_t now_ms, op_log_level_t level,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Once the second is over, says how many lines of the kind were dropped
 * (if any): a storm that ends is still counted.  Called from a timer. */
void op_log_limit_flush(op_log_limit_t *lim, uint64_t now_ms, op_log_level_t level,
                        const char *what);

/* A condition the daemon cannot go on from (bad config at start): exit(1). */
void op_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* A bug: an invariant of our own code is broken.  Logs and aborts. */
void op_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Invariant check that stays in release builds (never a bare assert). */
#define OP_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            op_panic("%s:%d: assertion failed: %s", __FILE__, __LINE__, #cond);\
    } while (0)

#endif
