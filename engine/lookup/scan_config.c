/* clamd { } and rspamd { }: the schema rows of the scanners' settings,
 * converted into op_scanner_conf_t (scan.h). */
#include "lookup/scan_config.h"

#include "config/config_schema.h"

#define SC(f) offsetof(op_scanner_conf_t, f)

static int check_address(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    const op_scanner_conf_t *sc = obj;
    if (sc->address != NULL && op_scan_address_ok(sc->address) != 0)
        return op__config_fail(c, at, where, "address %s is not unix:/path or tcp:IP:PORT",
                               sc->address);
    return 0;
}

#define COMMON_ROWS(what, port)                                                                  \
    {.key = "address", .type = T_STRING, .doc_def = "none: " what " is off",                    \
     .flags = F_NONEMPTY, .off = SC(address), .check = check_address,                          \
     .descr = "Where " what " listens: `unix:/path` or `tcp:IP:PORT` (e.g. `tcp:127.0.0.1:" port \
              "`). Without it the scanner is off and `outpost.scan` answers `nil, \"off\"`."},  \
    {.key = "connect_timeout", .type = T_DURATION, .def = "2s", .flags = F_ABOVE_LO, .lo = 0,    \
     .hi = 300, .off = SC(connect_timeout),                                                      \
     .descr = "Time to wait for the connection to " what "."},                                  \
    {.key = "timeout", .type = T_DURATION, .def = "8s", .flags = F_ABOVE_LO, .lo = 0, .hi = 600, \
     .off = SC(timeout),                                                                         \
     .descr = "Time from connected to answered (sending the message, scanning, the answer). "   \
              "Keep it under the `deadline` of the service that scans, so a slow scanner "      \
              "answers the check's 4xx rather than the service's default action."},             \
    {.key = "max_connections", .type = T_INTEGER, .def = "16", .lo = 1, .hi = 10000,            \
     .off = SC(max_connections),                                                                 \
     .descr = "Most scans open at once to " what "; more wait in line, within their request's " \
              "deadline."},                                                                      \
    {.key = "max_size", .type = T_INTEGER, .def = "10M", .lo = 1024, .hi = 1073741824,          \
     .off = SC(max_size),                                                                        \
     .descr = "Most bytes of a message sent to " what "; the rest is not scanned and the "      \
              "result says so (`truncated`)."}

static const key_def_t clamd_rows[] = {
    COMMON_ROWS("clamd", "3310"),
    {.key = "stream_max", .type = T_INTEGER, .def = "10M", .lo = 1024, .hi = 4294967295.0,
     .off = SC(stream_max),
     .descr = "clamd's `StreamMaxLength`: at most this much of a message is streamed, since "
              "clamd refuses a longer stream with an error. Set it to clamd's value (its "
              "default is 100M in clamav 1.x; Debian's clamd.conf says 25M)."},
    {.key = "chunk_size", .type = T_INTEGER, .def = "64k", .lo = 1, .hi = 16777216,
     .off = SC(chunk_size), .descr = "Bytes per INSTREAM chunk."},
};

static const key_def_t rspamd_rows[] = {
    COMMON_ROWS("rspamd", "11333"),
    {.key = "max_reply", .type = T_INTEGER, .def = "256k", .lo = 1024, .hi = 16777216,
     .off = SC(max_reply),
     .descr = "Most bytes of rspamd's answer read (its JSON body); a longer one is an error."},
};

const op_conf_section_t op_clamd_section = {
    .name = "clamd",
    .descr = "The virus scanner of AO6 (`outpost.scan.clamd`): clamd's INSTREAM over a unix "
             "socket or TCP. Optional, at most once; without `address` the scanner is off.",
    .keys = OP_CONF_ROWS(clamd_rows), .size = sizeof(op_scanner_conf_t), .lua = 1,
};

const op_conf_section_t op_rspamd_section = {
    .name = "rspamd",
    .descr = "The spam scanner of AO6 (`outpost.scan.rspamd`): rspamd's `/checkv2` on its "
             "normal worker, over HTTP/1.1 (unix socket or TCP). Optional, at most once; "
             "without `address` the scanner is off.",
    .keys = OP_CONF_ROWS(rspamd_rows), .size = sizeof(op_scanner_conf_t), .lua = 1,
};

const op_scanner_conf_t *op_clamd_config(const op_config_t *cfg)
{
    return op_config_section(cfg, &op_clamd_section);
}

const op_scanner_conf_t *op_rspamd_config(const op_config_t *cfg)
{
    return op_config_section(cfg, &op_rspamd_section);
}
