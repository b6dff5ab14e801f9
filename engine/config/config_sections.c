/* The registry of the sections of outpost.conf, in the order
 * docs/config.md shows them, and the sections that are the configuration's
 * own: daemon { } and request_limits { } (process-wide, fields of
 * op_config_t).  Every other section lives with the module that uses it. */
#include "config/config_schema.h"
#include "config/paths.h"

#include "control/control_config.h"
#include "core/log_config.h"
#include "counters/counters_config.h"
#include "lookup/dns_config.h"
#include "lookup/ldap_config.h"
#include "lookup/scan_config.h"
#include "lookup/smtp_config.h"
#include "metrics/metrics_config.h"
#include "proto/proto_policy.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define CFG(f) offsetof(op_config_t, f)

extern const op_conf_section_t op_directory_section; /* lua/directory_config.c */

static const key_def_t daemon_rows[] = {
    {.key = "user", .type = T_STRING, .doc_def = "none",
     .flags = F_NONEMPTY, .off = CFG(user),
     .descr = "User to run as after the sockets are bound; none keeps the user outpostd was started as."},
    {.key = "group", .type = T_STRING, .doc_def = "none",
     .flags = F_NONEMPTY, .off = CFG(group),
     .descr = "Group to run as; none means the primary group of `user`."},
    {.key = "state_dir", .type = T_PATH, .def = OP_STATE_DIR,
     .off = CFG(state_dir),
     .descr = "Directory for state kept across restarts; must be writable by `user`."},
    {.key = "lua_dir", .type = T_PATH, .def = OP_LUA_DIR_DEFAULT,
     .off = CFG(lua_dir),
     .descr = "Directory holding the Lua library (`lib/`) and the policies (`policies/`)."},
    {.key = "site_lua_dir", .type = T_PATH, .doc_def = "none",
     .off = CFG(site_lua_dir),
     .descr = "The site's own Lua files: a file under its `lib/` or `policies/` is used instead "
              "of the file of the same name under `lua_dir`, so an edited policy survives "
              "upgrades of the shipped ones (the package sets `/etc/outpost/lua`)."},
    {.key = "lists_dir", .type = T_PATH, .def = "lists",
     .off = CFG(lists_dir),
     .descr = "Directory of the data lists policies read when they load (`outpost.lists`): "
              "networks, block lists, local domains. Default: `lists/` beside this file."},
    {.key = "drain_timeout", .type = T_DURATION, .def = "10s",
     .lo = 0, .off = CFG(drain_timeout),
     .descr = "On SIGTERM, how long requests in flight may take to finish before outpostd exits."},
    {.key = "log_level", .type = T_ENUM, .def = "info",
     .values = "debug|info|notice|warning|error", .code = op__config_log_level_code,
     .off = CFG(log_level),
     .descr = "Least severe level that is logged; `log { level }`, when given, replaces it."},
    {.key = "log_decisions", .type = T_BOOL, .def = "yes",
     .off = CFG(log_decisions), .descr = "Log one line per request with its decision."},
    {.key = "max_connections", .type = T_INTEGER, .def = "1024",
     .lo = 1, .hi = 1048576, .off = CFG(max_connections),
     .descr = "Most client connections open at once. A quarter of them is kept for unix "
              "listeners (Postfix's usual socket): connections to TCP listeners can take "
              "at most the other three quarters when a unix listener is configured."},
    {.key = "idle_timeout", .type = T_DURATION, .def = "600s",
     .flags = F_ABOVE_LO, .lo = 0, .off = CFG(idle_timeout),
     .descr = "Close a connection that sends nothing for this long. Longer than Postfix's "
              "`smtpd_policy_service_max_idle` (300s) so that Postfix, not outpostd, "
              "closes idle connections."},
    {.key = "request_timeout", .type = T_DURATION, .def = "30s",
     .flags = F_ABOVE_LO, .lo = 0, .off = CFG(request_timeout),
     .descr = "Close a connection whose request (a policy request, a milter packet) has "
              "begun to arrive but is not complete after this long, however slowly its "
              "bytes keep coming. Postfix sends a request at once."},
    {.key = "lua_jit", .type = T_ENUM, .def = "lib",
     .values = "no|yes|lib|false|true|off|on", .code = op__config_lua_jit_code,
     .off = CFG(lua_jit),
     .descr = "Where LuaJIT's JIT compiler may compile. `lib`: the engine's own libraries "
              "(`lua_dir`/lib) are compiled, while every function of a policy file and of "
              "`site_lua_dir` stays interpreted, so a policy's loops are stopped at its "
              "service's `cpu_budget` (docs/reliability.md). `no`: nowhere; every Lua loop "
              "runs in the interpreter. `yes`: everywhere; a loop the JIT compiled cannot be "
              "stopped, and outpostd exits at twice the budget for its supervisor to restart "
              "it. Instructions per request in our runs: postout 137k (no), 130k (lib), 118k "
              "(yes); docs/performance.md. `true`, `on`, `false`, `off` (the bool it was before "
              "`lib`) mean `yes` and `no`."},
    {.key = "lua_memory_max", .type = T_INTEGER, .def = "512M", .lo = 16777216,
     .off = CFG(lua_memory_max),
     .descr = "Most memory the Lua of one generation may hold. Past 7/8 of it the request "
              "running is stopped at its next instruction (the log names the check and "
              "file:line); one allocation past it fails. Either way the request answers its "
              "service's `default_action` and the memory is collected."},
};

static const key_def_t request_limits_rows[] = {
    {.key = "max_line", .type = T_INTEGER,
     .def = STR(OP_POLICY_MAX_LINE_DEFAULT), .lo = 1, .hi = 16777216, .off = CFG(max_line),
     .descr = "Longest request line (`name=value`) in bytes."},
    {.key = "max_attrs", .type = T_INTEGER,
     .def = STR(OP_POLICY_MAX_ATTRS_DEFAULT), .lo = 1, .hi = 65536, .off = CFG(max_attrs),
     .descr = "Most attributes in one request."},
    {.key = "max_request", .type = T_INTEGER,
     .def = STR(OP_POLICY_MAX_REQUEST_DEFAULT), .lo = 1, .hi = 16777216, .off = CFG(max_request),
     .descr = "Longest request in bytes, line ends included."},
};


static const op_conf_section_t daemon_section = {
    .name = "daemon", .descr = "Process-wide settings. Optional, at most once.",
    .keys = OP_CONF_ROWS(daemon_rows), .in_config = 1, .preflight = op__daemon_preflight,
};

static const op_conf_section_t request_limits_section = {
    .name = "request_limits",
    .descr = "Bounds on one policy request; a client that exceeds them is disconnected "
             "without a reply. Optional, at most once.",
    .keys = OP_CONF_ROWS(request_limits_rows), .in_config = 1,
};


const op_conf_section_t *const op__config_sections[] = {
    &daemon_section,
    &op_log_section,
    &request_limits_section,
    &op_listener_section,
    &op_service_section,
    &op_dns_section,
    &op_smtp_verify_section,
    &op_counters_section,
    &op_limit_section,
    &op_redis_section,
    &op_control_section,
    &op_metrics_section,
    &op_ldap_section,
    &op_directory_section,
    &op_clamd_section,
    &op_rspamd_section,
};

const size_t op__config_nsections = sizeof op__config_sections / sizeof op__config_sections[0];

_Static_assert(sizeof op__config_sections / sizeof op__config_sections[0] <= OP_CONFIG_MAX_SECTIONS,
               "raise OP_CONFIG_MAX_SECTIONS");
