/* listener NAME { }: its schema rows, the parsing of listen addresses and
 * the rules between listeners (a listener's services exist, no two share
 * an address).  The settings are op_listener_conf_t (listener_config.h). */
#include "core/listener_config.h"

#include "config/config_schema.h"
#include "core/mem.h"
#include "lib/netset.h"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define fail op__config_fail
#define find_child op__config_find_child
#define LST(f) offsetof(op_listener_conf_t, f)

static int parse_port(const char *s, int *port)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return -1;
    *port = atoi(s);
    return *port >= 1 && *port <= 65535 ? 0 : -1;
}

/* Parses listen into kind and path, or host and port, which listener.c
 * binds; only address literals, so a listener never waits for DNS. */
static int check_listen(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    op_listener_conf_t *l = obj;
    const char *v = l->listen;
    if (strncmp(v, "unix:", 5) == 0) {
        size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
        if (v[5] == '\0')
            return fail(c, at, where, "listen '%s': missing socket path, e.g. unix:/run/outpost/policy.sock", v);
        l->kind = OP_LISTEN_UNIX;
        l->path = op__config_abs_path(c->cfg->dir, v + 5);
        if (strlen(l->path) > max)
            return fail(c, at, where, "listen '%s': socket path %s is %zu bytes long; the system limit is %zu",
                        v, l->path, strlen(l->path), max);
        return 0;
    }
    if (strncmp(v, "tcp:", 4) != 0)
        return fail(c, at, where, "listen '%s': expected unix:PATH, tcp:IPV4:PORT or tcp:[IPV6]:PORT%s", v,
                    strncmp(v, "inet:", 5) == 0 ? " (Postfix's inet: is tcp: here)" : "");

    const char *h = v + 4, *port;
    size_t hlen;
    int family;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (close == NULL)
            return fail(c, at, where, "listen '%s': missing ']' after the IPv6 address", v);
        if (close[1] != ':' || close[2] == '\0')
            return fail(c, at, where, "listen '%s': missing port (expected tcp:[IPV6]:PORT)", v);
        h++;
        hlen = (size_t)(close - h);
        port = close + 2;
        family = AF_INET6;
    } else {
        const char *colon = strrchr(h, ':');
        if (colon == NULL || colon[1] == '\0')
            return fail(c, at, where, "listen '%s': missing port (expected tcp:HOST:PORT, e.g. tcp:127.0.0.1:10040)", v);
        hlen = (size_t)(colon - h);
        if (memchr(h, ':', hlen) != NULL)
            return fail(c, at, where, "listen '%s': an IPv6 address needs brackets, e.g. tcp:[::1]:10040", v);
        port = colon + 1;
        family = AF_INET;
    }
    char host[INET6_ADDRSTRLEN];
    unsigned char bin[sizeof(struct in6_addr)];
    if (hlen < sizeof host) {
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    if (hlen >= sizeof host || inet_pton(family, host, bin) != 1)
        return fail(c, at, where,
                    "listen '%s': '%.*s' is not an %s address (host names are not accepted, "
                    "so that a listener never depends on DNS)",
                    v, (int)hlen, h, family == AF_INET ? "IPv4" : "IPv6");
    if (parse_port(port, &l->port) < 0)
        return fail(c, at, where, "listen '%s': bad port '%s' (1-65535)", v, port);
    l->kind = OP_LISTEN_TCP;
    l->host = op_strdup(host);
    return 0;
}

static int check_allow_from(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    const op_listener_conf_t *l = obj;
    op_netset_t *set = op_netset_new();
    char why[256];
    int rc = 0;
    for (size_t i = 0; i < l->nallow_from && rc == 0; i++)
        if (op_netset_add(set, l->allow_from[i], NULL, why, sizeof why) != 0)
            rc = fail(c, at, where, "allow_from: %s", why);
    op_netset_free(set);
    return rc;
}

/* allow_context entries: "SERVICE" or "SERVICE:TENANT", both names.
 * Whether the services exist is checked once every section is read. */
static int check_allow_context(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    op_listener_conf_t *l = obj;
    l->contexts = op_calloc(l->nallow_context ? l->nallow_context : 1, sizeof *l->contexts);
    for (size_t i = 0; i < l->nallow_context; i++) {
        const char *v = l->allow_context[i], *colon = strchr(v, ':');
        const op_conf_node_t *el = i < at->nchildren ? &at->children[i] : at;
        op_listener_context_t *x = &l->contexts[l->ncontexts++];
        x->text = op_strdup(v);
        x->service = colon ? op_strndup(v, (size_t)(colon - v)) : op_strdup(v);
        x->tenant = colon ? op_strdup(colon + 1) : NULL;
        if (!op__config_valid_name(x->service) || (x->tenant && !op__config_valid_name(x->tenant)))
            return fail(c, el, where, "allow_context: bad entry '%s' (SERVICE or SERVICE:TENANT, "
                        "each letters, digits, '.', '_', '-')", v);
    }
    return 0;
}

static int check_unknown_action(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    return op__config_check_action(c, at, where, "unknown_context_action",
                                   ((op_listener_conf_t *)obj)->unknown_context_action);
}

static const key_def_t rows[] = {
    {.key = "listen", .type = T_STRING, .flags = F_REQUIRED,
     .doc_def = "required", .doc_type = "address", .off = LST(listen), .check = check_listen,
     .descr = "`unix:PATH` (relative to this file's directory), `tcp:IPV4:PORT` or "
              "`tcp:[IPV6]:PORT`; host names are not accepted."},
    {.key = "protocol", .type = T_ENUM, .def = "policy",
     .values = "policy|milter", .off = LST(protocol),
     .descr = "`policy`: Postfix policy delegation (SMTPD_POLICY_README); `milter`: the milter "
              "protocol (Postfix `smtpd_milters`, Sendmail `INPUT_MAIL_FILTER`), see docs/milter.md."},
    {.key = "service", .type = T_STRING, .flags = F_REQUIRED | F_NAME,
     .doc_def = "required", .doc_type = "service name", .off = LST(service),
     .descr = "Service that answers requests on this listener."},
    {.key = "tenant", .type = T_STRING, .def = "", .off = LST(tenant),
     .descr = "Tenant label handed to the policy with every request from this listener."},
    {.key = "allow_context", .type = T_LIST,
     .doc_def = "empty", .doc_type = "list of SERVICE or SERVICE:TENANT", .off = LST(allow_context),
     .count_off = LST(nallow_context), .check = check_allow_context,
     .descr = "The `policy_context` values Postfix may send (`check_policy_service { ADDRESS, "
              "policy_context=VALUE }`), so one endpoint serves several services and tenants: "
              "`SERVICE` selects that service with this listener's `tenant`, `SERVICE:TENANT` the "
              "service with that tenant. An empty `policy_context`, or one equal to `service`, "
              "means `service` and `tenant`; any other value is answered "
              "`unknown_context_action` and logged, never by another policy."},
    {.key = "unknown_context_action", .type = T_STRING,
     .def = "451 4.3.5 policy service: unknown policy_context", .flags = F_NONEMPTY,
     .off = LST(unknown_context_action), .check = check_unknown_action,
     .descr = "The answer to a `policy_context` that `allow_context` does not list: a Postfix "
              "access(5) action. The log says which value came, once per value per minute."},
    {.key = "socket_mode", .type = T_MODE, .def = "0660",
     .flags = F_UNIX_ONLY, .off = LST(socket_mode),
     .descr = "Permission bits of a unix socket (octal)."},
    {.key = "socket_owner", .type = T_STRING, .doc_def = "the daemon's user",
     .flags = F_UNIX_ONLY | F_NONEMPTY, .off = LST(socket_owner),
     .descr = "Owner of a unix socket."},
    {.key = "socket_group", .type = T_STRING, .doc_def = "the daemon's group",
     .flags = F_UNIX_ONLY | F_NONEMPTY, .off = LST(socket_group),
     .descr = "Group of a unix socket, e.g. `postfix`."},
    {.key = "max_connections", .type = T_INTEGER, .def = "0", .lo = 0, .hi = 1048576,
     .doc_def = "0 (only the daemon's cap)", .off = LST(max_connections),
     .descr = "Most connections open at once on this listener; past it a new connection "
              "is closed unanswered. Whatever this says, TCP listeners together never take "
              "the quarter of `daemon { max_connections }` kept for unix listeners."},
    {.key = "max_per_peer", .type = T_INTEGER, .def = "256", .lo = 0, .hi = 1048576,
     .flags = F_TCP_ONLY, .doc_def = "256 (0: no cap)", .off = LST(max_per_peer),
     .descr = "tcp: most connections open at once from one client address on this "
              "listener. Postfix opens one per smtpd (or cleanup) process."},
    {.key = "allow_from", .type = T_LIST, .flags = F_TCP_ONLY, .doc_def = "empty: any",
     .doc_type = "list of networks", .off = LST(allow_from), .count_off = LST(nallow_from),
     .check = check_allow_from,
     .descr = "tcp: networks (`192.0.2.0/24`, `2001:db8::/32`, or addresses) whose clients "
              "may connect; others are closed at once, unanswered. Empty: any address."},
};

static int check_kind_only(ctx_t *c, const op_conf_node_t *block, const char *where, void *obj)
{
    const op_listener_conf_t *l = obj;
    for (size_t i = 0; i < block->nchildren; i++) {
        const op_conf_node_t *n = &block->children[i];
        unsigned flags = op__config_find_key(&op_listener_section, n->key)->flags;
        if ((flags & F_UNIX_ONLY) && l->kind != OP_LISTEN_UNIX)
            return fail(c, n, where, "%s applies only to unix: listeners, not to %s", n->key, l->listen);
        if ((flags & F_TCP_ONLY) && l->kind != OP_LISTEN_TCP)
            return fail(c, n, where, "%s applies only to tcp: listeners, not to %s", n->key, l->listen);
    }
    return 0;
}

static void listener_free(void *obj)
{
    op_listener_conf_t *l = obj;
    free(l->path);
    free(l->host);
    for (size_t i = 0; i < l->ncontexts; i++) {
        free(l->contexts[i].text);
        free(l->contexts[i].service);
        free(l->contexts[i].tenant);
    }
    free(l->contexts);
}

/* What opening a unix listener needs at the start (listener.c, before
 * the daemon changes users): the socket's directory, created when
 * missing, and the owner and group the socket is given. */
static int listener_preflight(ctx_t *c)
{
    const op_config_t *cfg = c->cfg;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const op_listener_conf_t *l = &cfg->listeners[i];
        char where[96];
        snprintf(where, sizeof where, "listener '%s'", l->name);
        if (l->kind != OP_LISTEN_UNIX)
            continue;
        if (l->socket_owner != NULL && getpwnam(l->socket_owner) == NULL)
            return fail(c, op__config_key_node(cfg, "listener", i, "socket_owner"), where,
                        "socket_owner: user '%s' does not exist", l->socket_owner);
        if (l->socket_group != NULL && getgrnam(l->socket_group) == NULL)
            return fail(c, op__config_key_node(cfg, "listener", i, "socket_group"), where,
                        "socket_group: group '%s' does not exist", l->socket_group);
        char *dir = op_strdup(l->path), *slash = strrchr(dir, '/');
        if (slash != NULL && slash != dir)
            *slash = '\0';
        int rc = op__config_creatable_dir(c, op__config_key_node(cfg, "listener", i, "listen"), where,
                                          "the directory of the socket", dir);
        free(dir);
        if (rc < 0)
            return -1;
    }
    return 0;
}

const op_conf_section_t op_listener_section = {
    .name = "listener", .named = 1, .repeatable = 1,
    .descr = "`listener NAME { }`: a socket on which Postfix connects. Repeatable, "
             "at least one; names and listen addresses must be unique.",
    .keys = OP_CONF_ROWS(rows), .size = sizeof(op_listener_conf_t),
    .check = check_kind_only, .free = listener_free, .preflight = listener_preflight,
};

_Static_assert(sizeof(op_proto_t) == sizeof(int), "enums are stored through an int");
_Static_assert(OP_PROTO_POLICY == 0, "protocol values are the index in the schema's list");
_Static_assert(OP_PROTO_MILTER == 1, "protocol values are the index in the schema's list");
_Static_assert(offsetof(op_listener_conf_t, line) == offsetof(op_conf_item_t, line),
               "a named section's struct begins with op_conf_item_t's fields");

static int same_address(const op_listener_conf_t *a, const op_listener_conf_t *b)
{
    if (a->kind != b->kind)
        return 0;
    if (a->kind == OP_LISTEN_UNIX)
        return strcmp(a->path, b->path) == 0;
    unsigned char ba[sizeof(struct in6_addr)] = {0}, bb[sizeof(struct in6_addr)] = {0};
    int fa = strchr(a->host, ':') ? AF_INET6 : AF_INET, fb = strchr(b->host, ':') ? AF_INET6 : AF_INET;
    /* Compared in binary, so that [::1] and [0:0::1] are the same socket. */
    return a->port == b->port && fa == fb && inet_pton(fa, a->host, ba) == 1 &&
           inet_pton(fb, b->host, bb) == 1 && memcmp(ba, bb, sizeof ba) == 0;
}

int op__listener_config_check(ctx_t *c)
{
    const op_config_t *cfg = c->cfg;
    const op_conf_node_t *const *nodes = op__config_nodes(c, &op_listener_section);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const op_listener_conf_t *l = &cfg->listeners[i];
        const op_conf_node_t *block = nodes[i];
        char where[96];
        snprintf(where, sizeof where, "listener '%s'", l->name);
        if (op_config_service(cfg, l->service) == NULL)
            return op__config_undefined_service(c, find_child(block, "service"), where, l->service);
        for (size_t j = 0; j < l->ncontexts; j++)
            if (op_config_service(cfg, l->contexts[j].service) == NULL)
                return op__config_undefined_service(c, &find_child(block, "allow_context")->children[j],
                                                    where, l->contexts[j].service);
        for (size_t j = 0; j < i; j++)
            if (same_address(l, &cfg->listeners[j]))
                return fail(c, find_child(block, "listen"), where,
                            "listen address %s is already used by listener '%s' (line %d)",
                            l->listen, cfg->listeners[j].name, find_child(nodes[j], "listen")->line);
    }
    return 0;
}
