/* The checks of single values the schema points to (listen addresses,
 * actions, check modes, DNS servers): what a value must look like beyond
 * its type, with a message that says what would be right. */
#include "config/config_schema.h"
#include "lookup/dns.h"

#include "core/mem.h"
#include "proto/proto_policy.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define fail op__config_fail
#define abs_path op__config_abs_path

static int parse_port(const char *s, int *port)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return -1;
    *port = atoi(s);
    return *port >= 1 && *port <= 65535 ? 0 : -1;
}

int op__config_check_listen(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    op_listener_conf_t *l = obj;
    const char *v = l->listen;
    if (strncmp(v, "unix:", 5) == 0) {
        size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
        if (v[5] == '\0')
            return fail(c, at, where, "listen '%s': missing socket path, e.g. unix:/run/outpost/policy.sock", v);
        l->kind = OP_LISTEN_UNIX;
        l->path = abs_path(c->cfg->dir, v + 5);
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

/* access(5) actions; a lowercase word is also accepted, as Postfix treats it
 * as the name of a restriction (reject_unverified_sender, ...). */
static int is_access_action(const char *word, size_t n, int whole)
{
    static const char *const actions[] = {
        "OK", "REJECT", "DEFER", "DEFER_IF_REJECT", "DEFER_IF_PERMIT", "BCC", "DISCARD",
        "DUNNO", "FILTER", "HOLD", "PREPEND", "REDIRECT", "INFO", "WARN",
    };
    if (strspn(word, "0123456789") >= n) /* "4NN text", "5NN text", or all digits (= OK) */
        return whole || (n == 3 && (word[0] == '4' || word[0] == '5'));
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strlen(actions[i]) == n && strncasecmp(actions[i], word, n) == 0)
            return 1;
    return strspn(word, "abcdefghijklmnopqrstuvwxyz0123456789_") >= n;
}

int op__config_check_dns_servers(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    const op_config_t *cfg = obj;
    for (size_t i = 0; i < cfg->ndns_servers; i++)
        if (op_dns_server_check(cfg->dns_servers[i]) != 0)
            return fail(c, at, where,
                        "servers: '%s' is not IP, IP:PORT or [IPV6]:PORT (host names are not "
                        "accepted: a resolver cannot look up its own servers)",
                        cfg->dns_servers[i]);
    return 0;
}

int op__config_check_action(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    const char *v = ((op_service_conf_t *)obj)->default_action;
    size_t len = strlen(v);
    if (len > OP_POLICY_MAX_ACTION)
        return fail(c, at, where, "default_action is %zu bytes long; Postfix accepts at most %d",
                    len, OP_POLICY_MAX_ACTION);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return fail(c, at, where, "default_action must be one line: no CR, LF or other control characters");
    if (v[0] == ' ')
        return fail(c, at, where, "default_action must not start with a space");
    size_t n = strcspn(v, " ");
    if (!is_access_action(v, n, n == len))
        return fail(c, at, where,
                    "default_action: '%.*s' is not a Postfix access(5) action "
                    "(e.g. DEFER_IF_PERMIT text, 451 4.3.5 text, DUNNO)",
                    (int)n, v);
    return 0;
}

/* "ID=MODE" (or "TENANT:ID=MODE" when with_tenant): a requirement id such
 * as PO1 or G3, and enforce, log-only, off or tag. */
static int check_mode_list(ctx_t *c, const op_conf_node_t *list, const char *where,
                           const char *key, int with_tenant)
{
    for (size_t i = 0; i < list->nchildren; i++) {
        const op_conf_node_t *el = &list->children[i];
        const char *v = el->value, *id = v;
        if (with_tenant) {
            const char *colon = strchr(v, ':');
            if (colon == NULL || colon == v)
                return fail(c, el, where, "%s: '%s' is not TENANT:ID=MODE", key, v);
            id = colon + 1;
        }
        const char *eq = strchr(id, '=');
        size_t n = 0;
        while (id + n < eq && id[n] >= 'A' && id[n] <= 'Z')
            n++;
        size_t d = 0;
        while (id + n + d < eq && id[n + d] >= '0' && id[n + d] <= '9')
            d++;
        if (eq == NULL || n == 0 || d == 0 || id + n + d != eq)
            return fail(c, el, where, "%s: '%s' is not %sID=MODE with an id like PO1 or G3", key,
                        v, with_tenant ? "TENANT:" : "");
        const char *mode = eq + 1;
        if (strcmp(mode, "enforce") != 0 && strcmp(mode, "log-only") != 0 &&
            strcmp(mode, "off") != 0 && strcmp(mode, "tag") != 0)
            return fail(c, el, where, "%s: '%s': the mode must be enforce, log-only, off or tag",
                        key, v);
    }
    return 0;
}

int op__config_check_modes(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    (void)obj;
    return check_mode_list(c, at, where, "checks", 0);
}

int op__config_check_tenant_modes(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    (void)obj;
    return check_mode_list(c, at, where, "tenant_checks", 1);
}

/* ---- sections ---- */

/* The counters keep whole-second buckets and scan a window bucket by
 * bucket, so the window must split into a bounded number of them. */
