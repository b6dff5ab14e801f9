/* Logging (log.h): the level, the targets, rate-limited lines. */
#include "core/log.h"

#include "core/log_format.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A line's text is cut here (request data in it is bounded per field). */
#define OP_LOG_LINE_MAX 4096

static op_log_level_t current_level = OP_LOG_INFO;

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

/* Where lines go: stderr until the configuration says otherwise. */
static op_log_sink_t sink = {OP_LOG_TO_STDERR, OP_LOG_TEXT, 2 << 3 /* LOG_MAIL */, "outpostd", NULL};
static char sink_ident[64] = "outpostd";
static int sock_fd = -1;
static struct sockaddr_un sock_addr;
static socklen_t sock_addr_len;
static unsigned long long dropped, dropped_unreported;
static int unreachable; /* the last line went to stderr instead */

enum { STDERR_PLAIN, STDERR_TTY, STDERR_JOURNAL };
static int stderr_kind = -1;

/* systemd connects stderr to the journal and says so in JOURNAL_STREAM
 * (device:inode of that stream, systemd.exec(5)); a child that inherited
 * the variable but not the stream must not believe it. */
static int detect_stderr(void)
{
    if (isatty(STDERR_FILENO))
        return STDERR_TTY;
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        return STDERR_JOURNAL;
    return STDERR_PLAIN;
}

void op_log_set_sink(const op_log_sink_t *s)
{
    sink = *s;
    if (sink.target == OP_LOG_TO_JOURNAL)
        sink.format = OP_LOG_TEXT; /* fields of its own; MESSAGE= is the text line */
    snprintf(sink_ident, sizeof sink_ident, "%s", s->ident ? s->ident : "outpostd");
    sink.ident = sink_ident;
    sink.socket = NULL;
    if (sock_fd >= 0) {
        close(sock_fd);
        sock_fd = -1;
    }
    stderr_kind = detect_stderr();
    if (s->target == OP_LOG_TO_STDERR)
        return;
    const char *path = s->socket ? s->socket
                       : s->target == OP_LOG_TO_SYSLOG ? "/dev/log"
                                                       : "/run/systemd/journal/socket";
    memset(&sock_addr, 0, sizeof sock_addr);
    sock_addr.sun_family = AF_UNIX;
    snprintf(sock_addr.sun_path, sizeof sock_addr.sun_path, "%s", path);
    sock_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sock_addr.sun_path) + 1);
    /* Not connected: each line is a sendto, so a syslogd or journald that
     * restarts (a new socket at the same path) is found again with no
     * reconnect logic. */
    sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sink.socket = sock_addr.sun_path;
    unreachable = 0;
}

unsigned long long op_log_dropped(void) { return dropped; }

static void write_stderr(const char *line, size_t len)
{
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* The start of a stderr line, by what stderr is. */
static size_t stderr_prefix(char *out, size_t cap, op_log_level_t level, const struct timespec *ts,
                            const struct tm *tm)
{
    if (stderr_kind < 0)
        stderr_kind = detect_stderr();
    if (stderr_kind == STDERR_JOURNAL)
        return (size_t)snprintf(out, cap, "<%d>", (int)level);
    if (sink.format == OP_LOG_JSON)
        return 0; /* the object has its "ts" */
    if (stderr_kind == STDERR_TTY)
        return (size_t)snprintf(out, cap, "%02d:%02d:%02d.%03ld ", tm->tm_hour, tm->tm_min,
                                tm->tm_sec, ts->tv_nsec / 1000000);
    size_t n = op_log_fmt_rfc3339(out, 0, cap, tm, ts->tv_nsec);
    out[n++] = ' ';
    out[n] = '\0';
    return n;
}

/* The body of a text line: "level: msg key=value ...", or the JSON
 * object.  msg has no line ends (op_logv replaced them). */
static size_t render_body(char *out, size_t at, size_t cap, op_log_level_t level, const char *msg,
                          size_t msglen, const op_log_field_t *f, size_t n, const struct tm *tm,
                          long nsec)
{
    if (sink.format == OP_LOG_JSON) {
        /* at is a short prefix here: the fixed parts fit */
        at += (size_t)snprintf(out + at, cap - at, "{\"ts\":\"");
        at = op_log_fmt_rfc3339(out, at, cap, tm, nsec);
        at += (size_t)snprintf(out + at, cap - at, "\",\"level\":\"%s\",\"msg\":", level_name(level));
        at = op_log_fmt_json_str(out, at, cap - 1, msg, msglen);
        for (size_t i = 0; i < n; i++)
            at = op_log_fmt_json_field(out, at, cap - 1, &f[i]);
        out[at++] = '}';
        out[at] = '\0';
        return at;
    }
    at += (size_t)snprintf(out + at, cap - at, "%s: ", level_name(level));
    size_t m = msglen < cap - at - 1 ? msglen : cap - at - 1;
    memcpy(out + at, msg, m);
    at += m;
    out[at] = '\0';
    for (size_t i = 0; i < n; i++)
        at = op_log_fmt_kv(out, at, cap, &f[i]);
    return at;
}

/* A datagram to the syslog or journal socket, never waiting: a full
 * socket drops the line (counted, and said in the next line that passes);
 * a socket nobody reads (no syslogd, no journald) sends the line to
 * stderr instead. */
static void send_line(const char *buf, size_t len, op_log_level_t level, const char *text,
                      size_t text_len)
{
    ssize_t r = sock_fd < 0 ? -1
                            : sendto(sock_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                                     (const struct sockaddr *)&sock_addr, sock_addr_len);
    if (r >= 0) {
        unreachable = 0;
        if (dropped_unreported > 0) {
            unsigned long long d = dropped_unreported;
            dropped_unreported = 0;
            op_warn("log: %llu lines dropped: the %s socket %s had no room for them",
                    d, sink.target == OP_LOG_TO_SYSLOG ? "syslog" : "journal", sink.socket);
        }
        return;
    }
    if (sock_fd >= 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
        dropped++;
        dropped_unreported++;
        return;
    }
    int e = sock_fd < 0 ? EBADF : errno;
    char line[OP_LOG_LINE_MAX + 256];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    size_t at = stderr_prefix(line, sizeof line, OP_LOG_WARNING, &ts, &tm);
    if (!unreachable) {
        unreachable = 1;
        char msg[256];
        int ml = snprintf(msg, sizeof msg, "log: cannot send to %s (%s); lines go to stderr until "
                          "it takes them again", sink.socket ? sink.socket : "?", strerror(e));
        at = render_body(line, at, sizeof line - 1, OP_LOG_WARNING, msg,
                         ml < 0 ? 0 : ml < (int)sizeof msg ? (size_t)ml : sizeof msg - 1, NULL, 0,
                         &tm, ts.tv_nsec);
        line[at++] = '\n';
        write_stderr(line, at);
        at = stderr_prefix(line, sizeof line, level, &ts, &tm);
    }
    size_t m = text_len < sizeof line - at - 1 ? text_len : sizeof line - at - 1;
    memcpy(line + at, text, m);
    at += m;
    line[at++] = '\n';
    write_stderr(line, at);
}

/* Renders one line for the target and writes or sends it. */
static void emit(op_log_level_t level, const char *msg, size_t msglen, const op_log_field_t *f,
                 size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);

    if (sink.target == OP_LOG_TO_JOURNAL) {
        /* MESSAGE is the text line; every field is a journal field too. */
        char text[OP_LOG_LINE_MAX];
        size_t tlen = msglen < sizeof text - 1 ? msglen : sizeof text - 1;
        memcpy(text, msg, tlen);
        text[tlen] = '\0';
        for (size_t i = 0; i < n; i++)
            tlen = op_log_fmt_kv(text, tlen, sizeof text, &f[i]);
        char dg[2 * OP_LOG_LINE_MAX];
        char num[32];
        size_t at = op_log_fmt_journal(dg, 0, sizeof dg, "MESSAGE", text, tlen);
        at = op_log_fmt_journal(dg, at, sizeof dg, "PRIORITY", num,
                                (size_t)snprintf(num, sizeof num, "%d", (int)level));
        at = op_log_fmt_journal(dg, at, sizeof dg, "SYSLOG_FACILITY", num,
                                (size_t)snprintf(num, sizeof num, "%d", sink.facility >> 3));
        at = op_log_fmt_journal(dg, at, sizeof dg, "SYSLOG_IDENTIFIER", sink.ident, strlen(sink.ident));
        at = op_log_fmt_journal(dg, at, sizeof dg, "SYSLOG_PID", num,
                                (size_t)snprintf(num, sizeof num, "%ld", (long)getpid()));
        for (size_t i = 0; i < n; i++) {
            size_t len = f[i].len, max = f[i].max ? f[i].max : OP_LOG_FIELD_MAX;
            at = op_log_fmt_journal(dg, at, sizeof dg, f[i].key, f[i].value, len < max ? len : max);
        }
        char shown[OP_LOG_LINE_MAX + 16];
        size_t sl = (size_t)snprintf(shown, sizeof shown, "%s: %s", level_name(level), text);
        send_line(dg, at, level, shown, sl < sizeof shown ? sl : sizeof shown - 1);
        return;
    }

    char line[OP_LOG_LINE_MAX + 128];
    if (sink.target == OP_LOG_TO_SYSLOG) {
        size_t hdr = op_log_fmt_syslog_header(line, 0, sizeof line, sink.facility, (int)level, &tm,
                                              sink.ident, (long)getpid());
        size_t at = render_body(line, hdr, sizeof line - 1, level, msg, msglen, f, n, &tm, ts.tv_nsec);
        send_line(line, at, level, line + hdr, at - hdr);
        return;
    }
    size_t at = stderr_prefix(line, sizeof line, level, &ts, &tm);
    at = render_body(line, at, sizeof line - 1, level, msg, msglen, f, n, &tm, ts.tv_nsec);
    line[at++] = '\n';
    write_stderr(line, at);
}

void op_log_fields(op_log_level_t level, const char *msg, const op_log_field_t *f, size_t n)
{
    if (!op_log_enabled(level))
        return;
    emit(level, msg, strlen(msg), f, n);
}

void op_logv(op_log_level_t level, const char *fmt, va_list ap)
{
    if (!op_log_enabled(level))
        return;
    /* Build the whole message first so concurrent writers (test harnesses
     * reading several processes) never see interleaved halves. */
    char msg[OP_LOG_LINE_MAX];
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    size_t len = m < 0 ? 0 : (size_t)m;
    if (len > sizeof msg - 1)
        len = sizeof msg - 1;
    /* A log line is one line: a newline inside a message would let request
     * data forge log entries. */
    for (size_t i = 0; i < len; i++)
        if (msg[i] == '\n' || msg[i] == '\r')
            msg[i] = ' ';
    emit(level, msg, len, NULL, 0);
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
