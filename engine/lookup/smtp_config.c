/* smtp_verify { }: the schema rows of the SMTP call-out's settings,
 * converted into op_smtp_verify_conf_t. */
#include "lookup/smtp_config.h"

#include "config/config_schema.h"

#define SMTP(f) offsetof(op_smtp_verify_conf_t, smtp.f)
#define VFY(f) offsetof(op_smtp_verify_conf_t, f)

static const key_def_t rows[] = {
    {.key = "helo", .type = T_STRING, .def = "localhost",
     .flags = F_NONEMPTY, .off = SMTP(helo),
     .descr = "Name the call-out gives in EHLO; use the host's name in DNS."},
    {.key = "host", .type = T_STRING, .doc_def = "none: the domain's MX",
     .flags = F_NONEMPTY, .off = VFY(host),
     .descr = "Ask this host (IP address or name) instead of the address's MX; a policy's "
              "`opts.host` overrides it."},
    {.key = "port", .type = T_INTEGER, .def = "25", .lo = 1,
     .hi = 65535, .off = VFY(port), .descr = "SMTP port to connect to."},
    {.key = "connect_timeout", .type = T_DURATION, .def = "10s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 300, .off = SMTP(connect_timeout),
     .descr = "Time to wait for the TCP connection."},
    {.key = "step_timeout", .type = T_DURATION, .def = "30s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 600, .off = SMTP(step_timeout),
     .descr = "Time to wait for each reply (greeting, EHLO, MAIL, RCPT); past it the verdict "
              "is tempfail."},
    {.key = "positive_ttl", .type = T_DURATION, .def = "7d", .lo = 0,
     .off = SMTP(positive_ttl), .descr = "How long an accepted address is cached."},
    {.key = "negative_ttl", .type = T_DURATION, .def = "1h", .lo = 0,
     .off = SMTP(negative_ttl), .descr = "How long a rejected (5xx) address is cached."},
    {.key = "tempfail_ttl", .type = T_DURATION, .def = "5m", .lo = 0,
     .off = SMTP(tempfail_ttl),
     .descr = "How long a temporary failure (4xx, timeout, no connection) is cached, so MTA "
              "retries do not hammer a server that is down."},
    {.key = "per_destination", .type = T_INTEGER, .def = "4", .lo = 1,
     .hi = 1000, .off = SMTP(per_destination),
     .descr = "Most call-out sessions open at once to one server (IP and port); more wait in line."},
    {.key = "cache_size", .type = T_INTEGER, .def = "100k", .lo = 0,
     .hi = 16777216, .off = SMTP(cache_size),
     .descr = "Most verdicts kept; the least recently used go first."},
};

const op_conf_section_t op_smtp_verify_section = {
    .name = "smtp_verify",
    .descr = "The SMTP call-out `outpost.smtp.verify` (MO5): how it connects and how long its "
             "verdicts are cached. Optional, at most once; the cache survives reloads.",
    .keys = OP_CONF_ROWS(rows), .size = sizeof(op_smtp_verify_conf_t),
};

const op_smtp_verify_conf_t *op_smtp_verify_config(const op_config_t *cfg)
{
    return op_config_section(cfg, &op_smtp_verify_section);
}
