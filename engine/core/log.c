#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static op_log_level_t current_level = OP_LOG_INFO;
static int stderr_is_tty = -1;

static const struct {
    const char *name;
    op_log_level_t level;
} level_names[] = {
    {"debug", OP_LOG_DEBUG},     {"info", OP_LOG_INFO},
    {"notice", OP_LOG_NOTICE},   {"warning", OP_LOG_WARNING},
    {"error", OP_LOG_ERR},       {"crit", OP_LOG_CRIT},
};

void op_log_set_level(op_log_level_t level) { current_level = level; }
op_log_level_t op_log_get_level(void) { return current_level; }

int op_log_level_parse(const char *name, op_log_level_t *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(level_names[i].name, name) == 0) {
            *out = level_names[i].level;
            return 0;
        }
    }
    return -1;
}

int op_log_enabled(op_log_level_t level) { return level <= current_level; }

static const char *level_name(op_log_level_t level)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (level_names[i].level == level)
            return level_names[i].name;
    return "?";
}

void op_logv(op_log_level_t level, const char *fmt, va_list ap)
{
    if (!op_log_enabled(level))
        return;
    if (stderr_is_tty < 0)
        stderr_is_tty = isatty(STDERR_FILENO);

    /* Build the whole line first so concurrent writers (test harnesses
     * reading several processes) never see interleaved halves. */
    char line[4096];
    int n;
    if (stderr_is_tty) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s: ", tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_name(level));
    } else {
        n = snprintf(line, sizeof line, "<%d>%s: ", (int)level, level_name(level));
    }
    if (n < 0)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* A log line is one line: a newline inside a message would let request
     * data forge log entries. */
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void op_log(op_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    op_logv(level, fmt, ap);
    va_end(ap);
}

void op_log_limited(op_log_limit_t *lim, uint64_t now_ms, op_log_level_t level,
                    const char *fmt, ...)
{
    if (!op_log_enabled(level))
        return;
    uint64_t window = now_ms / 1000;
    if (window != lim->window) {
        lim->window = window;
        lim->logged = 0;
    }
    if (lim->logged >= OP_LOG_BURST) {
        lim->suppressed++;
        return;
    }
    lim->logged++;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (lim->suppressed > 0) {
        op_log(level, "%s (and %lu more like it suppressed)", msg, lim->suppressed);
        lim->suppressed = 0;
    } else {
        op_log(level, "%s", msg);
    }
}

void op_log_limit_flush(op_log_limit_t *lim, uint64_t now_ms, op_log_level_t level,
                        const char *what)
{
    if (lim->suppressed == 0 || now_ms / 1000 == lim->window)
        return;
    op_log(level, "%lu more lines like the last \"%s\" suppressed", lim->suppressed, what);
    lim->suppressed = 0;
}

void op_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    op_logv(OP_LOG_CRIT, fmt, ap);
    va_end(ap);
    exit(1);
}

void op_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    op_logv(OP_LOG_CRIT, fmt, ap);
    va_end(ap);
    abort();
}
