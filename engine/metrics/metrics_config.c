/* metrics { }: its schema rows and the parsing of its listen address. */
#include "metrics/metrics_config.h"

#include "config/config_schema.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define MET(f) offsetof(op_metrics_conf_t, f)

/* tcp:IPV4:PORT or tcp:[IPV6]:PORT, address literals only (the endpoint
 * never waits for DNS). */
static int check_listen(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    op_metrics_conf_t *m = obj;
    const char *v = m->listen;
    if (strncmp(v, "tcp:", 4) != 0)
        return op__config_fail(c, at, where, "listen '%s': expected tcp:IPV4:PORT or tcp:[IPV6]:PORT", v);
    const char *h = v + 4, *port;
    size_t hlen;
    int family = AF_INET;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (close == NULL || close[1] != ':')
            return op__config_fail(c, at, where, "listen '%s': expected tcp:[IPV6]:PORT", v);
        h++;
        hlen = (size_t)(close - h);
        port = close + 2;
        family = AF_INET6;
    } else {
        const char *colon = strrchr(h, ':');
        if (colon == NULL)
            return op__config_fail(c, at, where, "listen '%s': missing port, e.g. tcp:127.0.0.1:9187", v);
        hlen = (size_t)(colon - h);
        port = colon + 1;
    }
    char host[INET6_ADDRSTRLEN];
    unsigned char bin[sizeof(struct in6_addr)];
    if (hlen >= sizeof host)
        return op__config_fail(c, at, where, "listen '%s': not an address", v);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (inet_pton(family, host, bin) != 1)
        return op__config_fail(c, at, where,
                               "listen '%s': '%s' is not an %s address (host names are not accepted)",
                               v, host, family == AF_INET ? "IPv4" : "IPv6");
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen || atoi(port) < 1 || atoi(port) > 65535)
        return op__config_fail(c, at, where, "listen '%s': bad port '%s' (1-65535)", v, port);
    m->host = op_strdup(host);
    m->port = atoi(port);
    return 0;
}

static const key_def_t rows[] = {
    {.key = "listen", .type = T_STRING, .doc_def = "none (no endpoint)", .doc_type = "address",
     .off = MET(listen), .check = check_listen,
     .descr = "`tcp:IPV4:PORT` or `tcp:[IPV6]:PORT` where `GET /metrics` answers in the "
              "Prometheus text format. The metrics carry no user or address, but they do show "
              "traffic, and the endpoint has no authentication: keep it on loopback or a "
              "management network, e.g. `tcp:127.0.0.1:9187`."},
    {.key = "max_connections", .type = T_INTEGER, .def = "8", .lo = 1, .hi = 1024,
     .off = MET(max_connections),
     .descr = "Most scrape connections open at once; one more is closed at once."},
    {.key = "timeout", .type = T_DURATION, .def = "10s", .lo = 0, .flags = F_ABOVE_LO,
     .off = MET(timeout),
     .descr = "A scrape connection is closed this long after it opened, whether or not its "
              "answer was read: a slow or stuck scraper never holds memory longer."},
};

static void free_conf(void *obj)
{
    free(((op_metrics_conf_t *)obj)->host);
}

const op_conf_section_t op_metrics_section = {
    .name = "metrics",
    .descr = "The Prometheus endpoint (docs/operations.md#metrics). Optional, at most once; "
             "without it (or without `listen`) there is no endpoint, and `outpostctl stats` "
             "still shows the same numbers. Its settings apply at start; a reload keeps the "
             "endpoint as it is.",
    .keys = OP_CONF_ROWS(rows), .size = sizeof(op_metrics_conf_t), .free = free_conf,
};

const op_metrics_conf_t *op_metrics_config(const op_config_t *cfg)
{
    return op_config_section(cfg, &op_metrics_section);
}
