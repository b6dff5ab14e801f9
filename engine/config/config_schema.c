/* The tables of config_schema.h: what outpost.conf accepts.  The
 * reference in docs/config.md is generated from them. */
#include "config/config_schema.h"

#include "proto/proto_policy.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define CFG(f) offsetof(op_config_t, f)
#define LST(f) offsetof(op_listener_conf_t, f)
#define SVC(f) offsetof(op_service_conf_t, f)
#define LIM(f) offsetof(op_limit_conf_t, f)

const section_def_t op__config_sections[] = {
    {"daemon", 0, 0, "Process-wide settings. Optional, at most once."},
    {"request_limits", 0, 0,
     "Bounds on one policy request; a client that exceeds them is disconnected "
     "without a reply. Optional, at most once."},
    {"listener", 1, 1,
     "`listener NAME { }`: a socket on which Postfix connects. Repeatable, "
     "at least one; names and listen addresses must be unique."},
    {"service", 1, 1,
     "`service NAME { }`: a policy and how it runs. Repeatable, at least one; "
     "names must be unique."},
    {"dns", 0, 0,
     "The DNS resolver and its cache, shared by every request (`outpost.dns`). Optional, "
     "at most once. The cache survives reloads; new servers, timeout and tries apply to "
     "queries sent after a reload."},
    {"smtp_verify", 0, 0,
     "The SMTP call-out `outpost.smtp.verify` (MO5): how it connects and how long its "
     "verdicts are cached. Optional, at most once; the cache survives reloads."},
    {"counters", 0, 0,
     "The persistent counters behind `outpost.limit` (see [limits.md](limits.md)). Optional, "
     "at most once."},
    {"limit", 1, 1,
     "`limit NAME { }`: a rate limit policies count against with `outpost.limit`: at most "
     "`max` per subject in any `window`, counted in buckets of `resolution`. Repeatable; "
     "names must be unique."},
    {"control", 0, 0,
     "The control socket `outpostctl` talks to. Optional, at most once."},
    {"ldap", 0, 0,
     "The LDAP directory `outpost.ldap` searches (engine/lookup/ldap_service.c): servers, binding, "
     "connection pool, timeouts and the answer cache. Optional, at most once; without "
     "`uris` there is no LDAP service and `outpost.ldap.search` raises."},
    {"directory", 0, 0,
     "How `lua/lib/directory.lua` finds users, addresses, local domains and function "
     "accounts in the LDAP directory: base DN, filter templates (`%s`/`%1` placeholders, "
     "see docs/lua-api.md) and attribute names, so any mail schema fits. Optional, at most once."},
};

const key_def_t op__config_schema[] = {
    {.section = "daemon", .key = "user", .type = T_STRING, .doc_def = "none",
     .flags = F_NONEMPTY, .off = CFG(user),
     .descr = "User to run as after the sockets are bound; none keeps the user outpostd was started as."},
    {.section = "daemon", .key = "group", .type = T_STRING, .doc_def = "none",
     .flags = F_NONEMPTY, .off = CFG(group),
     .descr = "Group to run as; none means the primary group of `user`."},
    {.section = "daemon", .key = "state_dir", .type = T_PATH, .def = "/var/lib/outpost",
     .off = CFG(state_dir),
     .descr = "Directory for state kept across restarts; must be writable by `user`."},
    {.section = "daemon", .key = "lua_dir", .type = T_PATH, .def = "/usr/share/outpost/lua",
     .off = CFG(lua_dir),
     .descr = "Directory holding the Lua library (`lib/`) and the policies (`policies/`)."},
    {.section = "daemon", .key = "lists_dir", .type = T_PATH, .def = "lists",
     .off = CFG(lists_dir),
     .descr = "Directory of the data lists policies read when they load (`outpost.lists`): "
              "networks, block lists, local domains. Default: `lists/` beside this file."},
    {.section = "daemon", .key = "drain_timeout", .type = T_DURATION, .def = "10s",
     .lo = 0, .off = CFG(drain_timeout),
     .descr = "On SIGTERM, how long requests in flight may take to finish before outpostd exits."},
    {.section = "daemon", .key = "log_level", .type = T_ENUM, .def = "info",
     .values = "debug|info|notice|warning|error", .code = op__config_log_level_code,
     .off = CFG(log_level), .descr = "Least severe level that is logged."},
    {.section = "daemon", .key = "log_decisions", .type = T_BOOL, .def = "yes",
     .off = CFG(log_decisions), .descr = "Log one line per request with its decision."},
    {.section = "daemon", .key = "max_connections", .type = T_INTEGER, .def = "1024",
     .lo = 1, .hi = 1048576, .off = CFG(max_connections),
     .descr = "Most client connections open at once."},
    {.section = "daemon", .key = "idle_timeout", .type = T_DURATION, .def = "600s",
     .flags = F_ABOVE_LO, .lo = 0, .off = CFG(idle_timeout),
     .descr = "Close a connection that sends nothing for this long. Longer than Postfix's "
              "`smtpd_policy_service_max_idle` (300s) so that Postfix, not outpostd, "
              "closes idle connections."},

    {.section = "request_limits", .key = "max_line", .type = T_INTEGER,
     .def = STR(OP_POLICY_MAX_LINE_DEFAULT), .lo = 1, .hi = 16777216, .off = CFG(max_line),
     .descr = "Longest request line (`name=value`) in bytes."},
    {.section = "request_limits", .key = "max_attrs", .type = T_INTEGER,
     .def = STR(OP_POLICY_MAX_ATTRS_DEFAULT), .lo = 1, .hi = 65536, .off = CFG(max_attrs),
     .descr = "Most attributes in one request."},
    {.section = "request_limits", .key = "max_request", .type = T_INTEGER,
     .def = STR(OP_POLICY_MAX_REQUEST_DEFAULT), .lo = 1, .hi = 16777216, .off = CFG(max_request),
     .descr = "Longest request in bytes, line ends included."},

    {.section = "listener", .key = "listen", .type = T_STRING, .flags = F_REQUIRED,
     .doc_def = "required", .doc_type = "address", .off = LST(listen), .check = op__config_check_listen,
     .descr = "`unix:PATH` (relative to this file's directory), `tcp:IPV4:PORT` or "
              "`tcp:[IPV6]:PORT`; host names are not accepted."},
    {.section = "listener", .key = "protocol", .type = T_ENUM, .def = "policy",
     .values = "policy|milter", .off = LST(protocol),
     .descr = "`policy`: Postfix policy delegation (SMTPD_POLICY_README); `milter`: the milter "
              "protocol (Postfix `smtpd_milters`, Sendmail `INPUT_MAIL_FILTER`), see docs/milter.md."},
    {.section = "listener", .key = "service", .type = T_STRING, .flags = F_REQUIRED | F_NAME,
     .doc_def = "required", .doc_type = "service name", .off = LST(service),
     .descr = "Service that answers requests on this listener."},
    {.section = "listener", .key = "tenant", .type = T_STRING, .def = "", .off = LST(tenant),
     .descr = "Tenant label handed to the policy with every request from this listener."},
    {.section = "listener", .key = "allow_context", .type = T_LIST, .flags = F_NAME,
     .doc_def = "empty", .doc_type = "list of service names", .off = LST(allow_context),
     .count_off = LST(nallow_context),
     .descr = "Services a request may select: when Postfix sends `policy_context` equal to "
              "one of these names, that service answers instead of `service`."},
    {.section = "listener", .key = "socket_mode", .type = T_MODE, .def = "0660",
     .flags = F_UNIX_ONLY, .off = LST(socket_mode),
     .descr = "Permission bits of a unix socket (octal)."},
    {.section = "listener", .key = "socket_owner", .type = T_STRING, .doc_def = "the daemon's user",
     .flags = F_UNIX_ONLY | F_NONEMPTY, .off = LST(socket_owner),
     .descr = "Owner of a unix socket."},
    {.section = "listener", .key = "socket_group", .type = T_STRING, .doc_def = "the daemon's group",
     .flags = F_UNIX_ONLY | F_NONEMPTY, .off = LST(socket_group),
     .descr = "Group of a unix socket, e.g. `postfix`."},

    {.section = "service", .key = "policy", .type = T_STRING, .flags = F_NONEMPTY,
     .doc_def = "the service NAME", .doc_type = "name or path", .off = SVC(policy),
     .descr = "Policy file. A name (no `/`) means `<lua_dir>/policies/NAME.lua`; a value with "
              "`/` is a path relative to this file's directory."},
    {.section = "service", .key = "deadline", .type = T_DURATION, .def = "10s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 90, .off = SVC(deadline),
     .descr = "Time the policy has to answer one request before `default_action` is sent. "
              "At most 90s: Postfix's policy client gives up after 100s."},
    {.section = "service", .key = "default_action", .type = T_STRING,
     .def = "451 4.3.5 policy service unavailable, try again later", .flags = F_NONEMPTY,
     .off = SVC(default_action), .check = op__config_check_action,
     .descr = "Answer when the policy fails or misses its deadline: a Postfix access(5) action "
              "on one line, at most 1000 bytes."},
    {.section = "service", .key = "checks", .type = T_LIST, .doc_def = "every check enforced",
     .doc_type = "list of ID=MODE", .off = SVC(checks), .count_off = SVC(nchecks),
     .check = op__config_check_modes,
     .descr = "Mode of each check of the policy by requirement id: `enforce` (answer), "
              "`log-only` (log what it would answer, go on), `off`, and for end-of-message checks "
              "`tag` (add a header `X-Outpost-ID:` saying what it found, go on); "
              "e.g. `[MO3=log-only, PO8=log-only, G4=tag]`."},
    {.section = "service", .key = "tenant_checks", .type = T_LIST, .doc_def = "empty",
     .doc_type = "list of TENANT:ID=MODE", .off = SVC(tenant_checks),
     .count_off = SVC(ntenant_checks), .check = op__config_check_tenant_modes,
     .descr = "Modes for requests of one tenant, over `checks`; e.g. `[lm:AO5=log-only]`."},

    {.section = "dns", .key = "servers", .type = T_LIST, .doc_def = "the system's (/etc/resolv.conf)",
     .doc_type = "list of addresses", .off = CFG(dns_servers), .count_off = CFG(ndns_servers),
     .check = op__config_check_dns_servers,
     .descr = "Recursive resolvers to ask, in order: `IP`, `IP:PORT` or `[IPV6]:PORT` "
              "(quoted inside the list: `[\"[::1]:53\"]`)."},
    {.section = "dns", .key = "timeout", .type = T_DURATION, .def = "2s", .flags = F_ABOVE_LO,
     .lo = 0, .hi = 60, .off = CFG(dns_timeout),
     .descr = "Time one try waits for an answer before the next try (or server)."},
    {.section = "dns", .key = "tries", .type = T_INTEGER, .def = "2", .lo = 1, .hi = 10,
     .off = CFG(dns_tries), .descr = "Tries per query, per server, before `timeout` is the answer."},
    {.section = "dns", .key = "cache_size", .type = T_INTEGER, .def = "100k", .lo = 0,
     .hi = 16777216, .off = CFG(dns_cache_size),
     .descr = "Most answers kept in the cache; the least recently used go first. 0 turns "
              "caching off (lookups of one name in flight still share one query)."},
    {.section = "dns", .key = "max_ttl", .type = T_DURATION, .def = "1d", .lo = 0,
     .off = CFG(dns_max_ttl), .descr = "Longest time an answer is cached, whatever its TTL."},
    {.section = "dns", .key = "negative_max_ttl", .type = T_DURATION, .def = "1h", .lo = 0,
     .off = CFG(dns_negative_max_ttl),
     .descr = "Longest time NXDOMAIN and NODATA are cached; their TTL is min(SOA TTL, SOA "
              "minimum) (RFC 2308), and without an SOA they are not cached."},

    {.section = "smtp_verify", .key = "helo", .type = T_STRING, .def = "localhost",
     .flags = F_NONEMPTY, .off = CFG(smtp_helo),
     .descr = "Name the call-out gives in EHLO; use the host's name in DNS."},
    {.section = "smtp_verify", .key = "host", .type = T_STRING, .doc_def = "none: the domain's MX",
     .flags = F_NONEMPTY, .off = CFG(smtp_host),
     .descr = "Ask this host (IP address or name) instead of the address's MX; a policy's "
              "`opts.host` overrides it."},
    {.section = "smtp_verify", .key = "port", .type = T_INTEGER, .def = "25", .lo = 1,
     .hi = 65535, .off = CFG(smtp_port), .descr = "SMTP port to connect to."},
    {.section = "smtp_verify", .key = "connect_timeout", .type = T_DURATION, .def = "10s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 300, .off = CFG(smtp_connect_timeout),
     .descr = "Time to wait for the TCP connection."},
    {.section = "smtp_verify", .key = "step_timeout", .type = T_DURATION, .def = "30s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 600, .off = CFG(smtp_step_timeout),
     .descr = "Time to wait for each reply (greeting, EHLO, MAIL, RCPT); past it the verdict "
              "is tempfail."},
    {.section = "smtp_verify", .key = "positive_ttl", .type = T_DURATION, .def = "7d", .lo = 0,
     .off = CFG(smtp_positive_ttl), .descr = "How long an accepted address is cached."},
    {.section = "smtp_verify", .key = "negative_ttl", .type = T_DURATION, .def = "1h", .lo = 0,
     .off = CFG(smtp_negative_ttl), .descr = "How long a rejected (5xx) address is cached."},
    {.section = "smtp_verify", .key = "tempfail_ttl", .type = T_DURATION, .def = "5m", .lo = 0,
     .off = CFG(smtp_tempfail_ttl),
     .descr = "How long a temporary failure (4xx, timeout, no connection) is cached, so MTA "
              "retries do not hammer a server that is down."},
    {.section = "smtp_verify", .key = "per_destination", .type = T_INTEGER, .def = "4", .lo = 1,
     .hi = 1000, .off = CFG(smtp_per_destination),
     .descr = "Most call-out sessions open at once to one server (IP and port); more wait in line."},
    {.section = "smtp_verify", .key = "cache_size", .type = T_INTEGER, .def = "100k", .lo = 0,
     .hi = 16777216, .off = CFG(smtp_cache_size),
     .descr = "Most verdicts kept; the least recently used go first."},

    {.section = "counters", .key = "path", .type = T_PATH, .doc_def = "`<state_dir>/counters`",
     .off = CFG(counters_path),
     .descr = "RocksDB directory of the counters; must be writable by the daemon's user."},
    {.section = "counters", .key = "reservation_timeout", .type = T_DURATION, .def = "30m",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 86400, .off = CFG(reservation_timeout),
     .descr = "A reservation (`limit.reserve`) that is neither committed nor released within "
              "this time is released: the client went away or the message was rejected later."},
    {.section = "counters", .key = "sync", .type = T_BOOL, .def = "no", .off = CFG(counters_sync),
     .descr = "Flush the write-ahead log to disk (fsync) before answering. `no` survives a crash "
              "or `kill -9` of outpostd; `yes` also survives a power loss, at the cost of one "
              "fsync per turn of the event loop that counted (writes are committed in groups)."},
    {.section = "counters", .key = "cache_size", .type = T_INTEGER, .def = "250k", .lo = 1,
     .hi = 100000000, .off = CFG(counters_cache_entries),
     .descr = "Most (limit, subject) windows kept in memory, so that a check reads no disk "
              "(about 150 bytes each); beyond it, windows are read again from the store."},

    {.section = "limit", .key = "max", .type = T_INTEGER, .flags = F_REQUIRED, .doc_def = "required",
     .lo = 0, .hi = 1e9, .off = LIM(max),
     .descr = "Default maximum per subject within one window."},
    {.section = "limit", .key = "window", .type = T_DURATION, .def = "24h", .lo = 1, .hi = 31 * 86400,
     .off = LIM(window), .descr = "Length of the sliding window."},
    {.section = "limit", .key = "resolution", .type = T_DURATION, .def = "15m", .lo = 1,
     .hi = 31 * 86400, .off = LIM(resolution),
     .descr = "Bucket size: the window slides in steps of this size. Whole seconds; must divide "
              "`window`, into at most 10000 buckets."},
    {.section = "limit", .key = "max_override", .type = T_INTEGER, .doc_def = "`max`",
     .lo = 0, .hi = 1e9, .off = LIM(max_override),
     .descr = "Highest maximum an override may give a subject: a value from the directory "
              "passed by the policy is capped at it, an `outpostctl limit set` above it is refused."},

    {.section = "control", .key = "socket", .type = T_PATH, .doc_def = "`<state_dir>/control.sock`",
     .off = CFG(control_socket), .descr = "Unix socket of `outpostctl`."},
    {.section = "control", .key = "mode", .type = T_MODE, .def = "0660", .off = CFG(control_mode),
     .descr = "Permission bits of the control socket (octal)."},
    {.section = "control", .key = "group", .type = T_STRING, .doc_def = "none", .flags = F_NONEMPTY,
     .off = CFG(control_group),
     .descr = "Admin group: its members may use `outpostctl` besides root and the daemon's "
              "user. The socket gets this group, and each client's credentials are checked."},

    /* ldap { } */
    {.section = "ldap", .key = "uris", .type = T_LIST, .doc_def = "empty",
     .doc_type = "list of URIs", .off = CFG(ldap_uris), .count_off = CFG(nldap_uris),
     .descr = "Servers, tried in order: `ldap://HOST:PORT/` or `ldaps://HOST:PORT/`. A connection "
              "uses the first that answers; when it breaks, the next attempt starts again at the first."},
    {.section = "ldap", .key = "bind_dn", .type = T_STRING, .doc_def = "none (anonymous)",
     .flags = F_NONEMPTY, .off = CFG(ldap_bind_dn),
     .descr = "DN for a simple bind; without it connections bind anonymously."},
    {.section = "ldap", .key = "bind_password_file", .type = T_PATH, .doc_def = "none",
     .off = CFG(ldap_bind_password_file),
     .descr = "File holding the bind password (one line; a trailing newline is ignored), "
              "read at start and at every reload. Keep it readable by outpostd only."},
    {.section = "ldap", .key = "starttls", .type = T_BOOL, .def = "no", .off = CFG(ldap_starttls),
     .descr = "Send StartTLS on `ldap://` connections before binding; a failure fails the connection."},
    {.section = "ldap", .key = "ca_file", .type = T_PATH, .doc_def = "the system's CAs",
     .off = CFG(ldap_ca_file),
     .descr = "CA certificates (PEM) that verify the server for `ldaps://` and StartTLS."},
    {.section = "ldap", .key = "pool_size", .type = T_INTEGER, .def = "2", .lo = 1, .hi = 64,
     .off = CFG(ldap_pool_size),
     .descr = "Connections kept open; searches go to the least busy. Applied at restart."},
    {.section = "ldap", .key = "timeout", .type = T_DURATION, .def = "5s", .flags = F_ABOVE_LO,
     .lo = 0, .hi = 90, .off = CFG(ldap_timeout),
     .descr = "Default time a search may take (`timeout=` of a search overrides it); then it "
              "answers `nil, \"timeout\"`."},
    {.section = "ldap", .key = "connect_timeout", .type = T_DURATION, .def = "3s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 60, .off = CFG(ldap_connect_timeout),
     .descr = "Time to connect, StartTLS and bind to one server before trying the next."},
    {.section = "ldap", .key = "reconnect_min", .type = T_DURATION, .def = "100ms",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 3600, .off = CFG(ldap_reconnect_min),
     .descr = "Wait before reconnecting after a connection failed; doubles with every failure "
              "in a row up to `reconnect_max`."},
    {.section = "ldap", .key = "reconnect_max", .type = T_DURATION, .def = "10s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 3600, .off = CFG(ldap_reconnect_max),
     .descr = "Longest wait between reconnection attempts."},
    {.section = "ldap", .key = "size_limit", .type = T_INTEGER, .def = "100", .lo = 1,
     .hi = 100000, .off = CFG(ldap_size_limit),
     .descr = "Most entries one search returns; more answer `nil, \"sizelimit\"`."},
    {.section = "ldap", .key = "cache_size", .type = T_INTEGER, .def = "10000", .lo = 0,
     .hi = 10000000, .off = CFG(ldap_cache_size),
     .descr = "Most answers kept in the cache (least recently used go first); 0 turns the cache off. "
              "The cache lives in the service and survives reloads."},
    {.section = "ldap", .key = "cache_ttl", .type = T_DURATION, .def = "60s", .lo = 0,
     .hi = 86400, .off = CFG(ldap_cache_ttl),
     .descr = "How long an answer with entries is reused."},
    {.section = "ldap", .key = "negative_ttl", .type = T_DURATION, .def = "30s", .lo = 0,
     .hi = 86400, .off = CFG(ldap_negative_ttl),
     .descr = "How long an answer without entries (or `nosuchobject`) is reused. Errors are never cached."},

    /* directory { } */
    {.section = "directory", .key = "base", .type = T_STRING, .def = "dc=example,dc=org",
     .flags = F_NONEMPTY, .off = CFG(dir_base), .descr = "Base DN of every directory search (subtree)."},
    {.section = "directory", .key = "user_filter", .type = T_STRING,
     .def = "(&(objectClass=inetOrgPerson)(uid=%s))", .flags = F_NONEMPTY, .off = CFG(dir_user_filter),
     .descr = "Finds a user by login name (`%s`): `directory.user(uid)`."},
    {.section = "directory", .key = "address_filter", .type = T_STRING,
     .def = "(|(mail=%1)(mailLocalAddress=%1))", .flags = F_NONEMPTY, .off = CFG(dir_address_filter),
     .descr = "Finds whatever receives mail at an address (`%1`): `directory.mailbox_exists(address)`."},
    {.section = "directory", .key = "domain_filter", .type = T_STRING,
     .def = "(&(objectClass=domainRelatedObject)(associatedDomain=%s))", .flags = F_NONEMPTY,
     .off = CFG(dir_domain_filter),
     .descr = "Finds a local mail domain (`%s`, in normal form): `directory.is_local_domain(domain)`."},
    {.section = "directory", .key = "protected_filter", .type = T_STRING,
     .def = "(&(|(mail=%1)(mailLocalAddress=%1))(mailAuthRequired=TRUE))", .flags = F_NONEMPTY,
     .off = CFG(dir_protected_filter),
     .descr = "Finds a recipient that accepts only authenticated senders (`%1`): "
              "`directory.requires_authenticated_sender(address)`."},
    {.section = "directory", .key = "function_filter", .type = T_STRING,
     .def = "(&(objectClass=outpostFunctionAccount)(uid=%s))", .flags = F_NONEMPTY,
     .off = CFG(dir_function_filter),
     .descr = "Finds an application's function account by login name (`%s`): "
              "`directory.function_account(uid)`."},
    {.section = "directory", .key = "sender_attrs", .type = T_LIST, .def = NULL,
     .doc_def = "[mail, mailLocalAddress]", .doc_type = "list of attribute names",
     .off = CFG(dir_sender_attrs), .count_off = CFG(ndir_sender_attrs),
     .descr = "Attributes holding the addresses an account may send as."},
    {.section = "directory", .key = "limit_attr", .type = T_STRING, .def = "mailSendLimit",
     .flags = F_NONEMPTY, .off = CFG(dir_limit_attr),
     .descr = "Integer attribute: a user's recipient limit per 24 h (PO7 tier) or a function "
              "account's agreed send limit (AO8)."},
    {.section = "directory", .key = "lock_attr", .type = T_STRING, .def = "pwdAccountLockedTime",
     .flags = F_NONEMPTY, .off = CFG(dir_lock_attr),
     .descr = "An account with this attribute is locked (PO3, AO3); operational attributes work."},
    {.section = "directory", .key = "networks_attr", .type = T_STRING, .def = "mailAllowedNetwork",
     .flags = F_NONEMPTY, .off = CFG(dir_networks_attr),
     .descr = "A function account's allowed client networks (CIDR), AO5."},
    {.section = "directory", .key = "tenants_attr", .type = T_STRING, .def = "mailServiceTenant",
     .flags = F_NONEMPTY, .off = CFG(dir_tenants_attr),
     .descr = "The appout tenants a function account is enabled for."},
    {.section = "directory", .key = "default_limit", .type = T_INTEGER, .def = "250", .lo = 1,
     .hi = 10000000, .off = CFG(dir_default_limit),
     .descr = "A user's recipient limit per 24 h when the directory names none (PO7)."},
};

const size_t op__config_nsections = sizeof op__config_sections / sizeof op__config_sections[0];
const size_t op__config_nkeys = sizeof op__config_schema / sizeof op__config_schema[0];

_Static_assert(sizeof op__config_schema / sizeof op__config_schema[0] <= OP__CONFIG_MAX_KEYS,
               "raise OP__CONFIG_MAX_KEYS");
_Static_assert(sizeof op__config_sections / sizeof op__config_sections[0] <= OP__CONFIG_MAX_SECTIONS,
               "raise OP__CONFIG_MAX_SECTIONS");
_Static_assert(sizeof(op_proto_t) == sizeof(int), "enums are stored through an int");
_Static_assert(OP_PROTO_POLICY == 0, "protocol values are the index in the schema's list");
_Static_assert(OP_PROTO_MILTER == 1, "protocol values are the index in the schema's list");
