/* Logging: one line per event on stderr.
 *
 * When stderr is not a terminal (systemd, a supervisor, a test harness), each
 * line starts with a syslog priority prefix "<N>" that journald understands;
 * on a terminal it starts with a timestamp instead.  The ladder follows
 * Postfix: info, notice, warning, error, fatal (exit 1), panic (abort: a bug). */
#ifndef OP_LOG_H
#define OP_LOG_H

#include <stdarg.h>
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
