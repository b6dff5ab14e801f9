/* log { }: the schema rows of the log's settings (log_config.h). */
#include "core/log_config.h"

#include "config/config_schema.h"
#include "core/log.h"

#include <string.h>
#include <sys/un.h>
#include <syslog.h>

#define LOGC(f) offsetof(op_log_conf_t, f)

static int facility_code(const char *v)
{
    static const struct {
        const char *name;
        int code;
    } f[] = {
        {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},
        {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
        {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
        {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (strcmp(f[i].name, v) == 0)
            return f[i].code;
    return LOG_MAIL;
}

/* The path must fit a sockaddr_un, or lines would go to a cut path. */
static int check_socket(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    const char *p = ((op_log_conf_t *)obj)->socket;
    struct sockaddr_un a;
    if (p != NULL && strlen(p) >= sizeof a.sun_path)
        return op__config_fail(c, at, where, "socket: '%s' is longer than a unix socket path "
                               "may be (%zu bytes)", p, sizeof a.sun_path - 1);
    return 0;
}

static const key_def_t rows[] = {
    {.key = "target", .type = T_ENUM, .def = "stderr", .values = "stderr|syslog|journal",
     .off = LOGC(target),
     .descr = "Where log lines go. `stderr`: on a terminal each line starts with the time "
              "of day; under systemd (`JOURNAL_STREAM` names stderr) with a priority prefix "
              "`<N>` the journal reads, the journal adding the time; anywhere else (a file, a "
              "pipe) with an RFC 3339 time (`2026-12-07T16:21:03.123+00:00`). `syslog`: "
              "datagrams to `socket` in the form syslog(3) sends (RFC 3164, `<PRI>Dec  7 "
              "16:21:03 outpostd[PID]: ...`), so they land in mail.log beside Postfix's. "
              "`journal`: the journal's native protocol, each field of a decision line a "
              "journal field of its own (`QUEUE_ID=`, `CHECK=`, `SERVICE=`, `TENANT=`, "
              "`REQ=`, ...). The sockets never block the daemon: a line the reader has no "
              "room for is dropped and counted (a warning says how many once lines pass "
              "again); while nobody reads the socket, lines go to stderr."},
    {.key = "format", .type = T_ENUM, .def = "text", .values = "text|json",
     .off = LOGC(format),
     .descr = "`text`: `level: message key=value ...`. `json`: one JSON object per line "
              "(JSON Lines) with `ts`, `level`, `msg` and, for decision lines, each field as "
              "a key of its own; any byte a client sent is escaped, bytes that are not UTF-8 "
              "become U+FFFD. For `stderr` and `syslog` (the journal has fields of its own)."},
    {.key = "level", .type = T_ENUM, .doc_def = "`daemon { log_level }` (`info`)",
     .values = "debug|info|notice|warning|error", .code = op__config_log_level_code,
     .off = LOGC(level),
     .descr = "Least severe level that is logged; when given, it replaces `daemon { "
              "log_level }`."},
    {.key = "facility", .type = T_ENUM, .def = "mail",
     .values = "mail|daemon|user|local0|local1|local2|local3|local4|local5|local6|local7",
     .code = facility_code, .off = LOGC(facility),
     .descr = "syslog facility of the lines (`syslog`, and `SYSLOG_FACILITY=` in the journal)."},
    {.key = "ident", .type = T_STRING, .def = "outpostd", .flags = F_NONEMPTY,
     .off = LOGC(ident),
     .descr = "The program name of the lines in syslog (`outpostd[PID]:`) and the journal's "
              "`SYSLOG_IDENTIFIER=`."},
    {.key = "socket", .type = T_PATH,
     .doc_def = "`/dev/log` (syslog), `/run/systemd/journal/socket` (journal)",
     .off = LOGC(socket), .check = check_socket,
     .descr = "The unix datagram socket lines are sent to, for `syslog` and `journal`."},
};

const op_conf_section_t op_log_section = {
    .name = "log",
    .descr = "Where the log goes and in what form. Optional, at most once; without it, "
             "text on stderr at `daemon { log_level }`. A reload applies a change.",
    .keys = OP_CONF_ROWS(rows), .size = sizeof(op_log_conf_t),
};

const op_log_conf_t *op_log_config(const op_config_t *cfg)
{
    return op_config_section(cfg, &op_log_section);
}

void op_log_config_apply(const op_config_t *cfg)
{
    const op_log_conf_t *lc = op_log_config(cfg);
    op_log_set_level((op_log_level_t)(lc->level ? lc->level : cfg->log_level));
    op_log_sink_t s = {lc->target, lc->format, lc->facility, lc->ident, lc->socket};
    op_log_set_sink(&s);
}
