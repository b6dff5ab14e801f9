/* Logging: one line per event on stderr.
 *
 * When stderr is not a terminal (systemd, a supervisor, a test harness), each
 * line starts with a syslog priority prefix "<N>" that journald understands;
 * on a terminal it starts with a timestamp instead.  The ladder follows
 * Postfix: info, notice, warning, error, fatal (exit 1), panic (abort: a bug). */
#ifndef OP_LOG_H
#define OP_LOG_H

#include <stdarg.h>

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
