/* dns { }: the schema rows of the DNS service's settings, converted into
 * op_dns_conf_t, and the check of the server addresses. */
#include "lookup/dns_config.h"

#include "config/config_schema.h"

#include "core/log.h"

#include <string.h>

#define fail op__config_fail
#define DNS(f) offsetof(op_dns_conf_t, f)

static int check_servers(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    const op_dns_conf_t *d = obj;
    for (size_t i = 0; i < d->nservers; i++)
        if (op_dns_server_check(d->servers[i]) != 0)
            return fail(c, at, where,
                        "servers: '%s' is not IP, IP:PORT or [IPV6]:PORT (host names are not "
                        "accepted: a resolver cannot look up its own servers)",
                        d->servers[i]);
    return 0;
}

/* A lookup gives up after timeout × tries (dns.c).  A service whose
 * deadline comes first still answers at its deadline (the deadline cancels
 * the lookup: the default action), but its policy never hears "timeout";
 * say so when the configuration (with a dns { }) is loaded.  Not an
 * error: a short deadline that cuts DNS short is a legitimate choice. */
static int check_budget(ctx_t *c)
{
    /* Only when dns { } is written: a configuration without it may well
     * not use DNS, and short deadlines are then no news. */
    const op_conf_node_t *root = c->cfg->root;
    int written = 0;
    for (size_t i = 0; root != NULL && i < root->nchildren; i++)
        written |= strcmp(root->children[i].key, "dns") == 0;
    if (!written)
        return 0;
    const op_dns_conf_t *d = op_config_section(c->cfg, &op_dns_section);
    double budget = d->timeout * d->tries;
    const op_service_conf_t *shortest = NULL;
    for (size_t i = 0; i < c->cfg->nservices; i++)
        if (shortest == NULL || c->cfg->services[i].deadline < shortest->deadline)
            shortest = &c->cfg->services[i];
    if (shortest != NULL && budget >= shortest->deadline)
        op_warn("%s: dns: timeout × tries is %gs, not under service '%s''s deadline %gs: "
                "when the DNS servers are silent, that service's requests end at their "
                "deadline with the default action before the policy hears 'timeout'",
                c->cfg->path, budget, shortest->name, shortest->deadline);
    return 0;
}

static const key_def_t rows[] = {
    {.key = "servers", .type = T_LIST, .doc_def = "the system's (/etc/resolv.conf)",
     .doc_type = "list of addresses", .off = DNS(servers), .count_off = DNS(nservers),
     .check = check_servers,
     .descr = "Recursive resolvers to ask, in order: `IP`, `IP:PORT` or `[IPV6]:PORT` "
              "(quoted inside the list: `[\"[::1]:53\"]`)."},
    {.key = "timeout", .type = T_DURATION, .def = "2s", .flags = F_ABOVE_LO,
     .lo = 0, .hi = 60, .off = DNS(timeout),
     .descr = "Time the first try waits for an answer before the next try (or server); "
              "c-ares waits twice as long on each later round. A lookup gives up with "
              "`timeout` after `timeout × tries` in all; keep that under the services' "
              "`deadline` (the load warns otherwise), or their deadline ends the wait first."},
    {.key = "tries", .type = T_INTEGER, .def = "2", .flags = F_INT, .lo = 1, .hi = 10,
     .off = DNS(tries), .descr = "Rounds of tries (each server once a round); the whole "
                                 "lookup still ends after `timeout × tries`."},
    {.key = "cache_size", .type = T_INTEGER, .def = "100k", .lo = 0,
     .hi = 16777216, .off = DNS(cache_size),
     .descr = "Most answers kept in the cache; the least recently used go first. 0 turns "
              "caching off (lookups of one name in flight still share one query)."},
    {.key = "max_ttl", .type = T_DURATION, .def = "1d", .lo = 0,
     .off = DNS(max_ttl), .descr = "Longest time an answer is cached, whatever its TTL."},
    {.key = "negative_max_ttl", .type = T_DURATION, .def = "1h", .lo = 0,
     .off = DNS(negative_max_ttl),
     .descr = "Longest time NXDOMAIN and NODATA are cached; their TTL is min(SOA TTL, SOA "
              "minimum) (RFC 2308), and without an SOA they are not cached."},
};

const op_conf_section_t op_dns_section = {
    .name = "dns",
    .descr = "The DNS resolver and its cache, shared by every request (`outpost.dns`). Optional, "
             "at most once. The cache survives reloads; new servers, timeout and tries apply to "
             "queries sent after a reload.",
    .keys = OP_CONF_ROWS(rows), .size = sizeof(op_dns_conf_t), .finish = check_budget,
};

const op_dns_conf_t *op_dns_config(const op_config_t *cfg)
{
    return op_config_section(cfg, &op_dns_section);
}
