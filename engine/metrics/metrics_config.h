/* metrics { }: the section of outpost.conf that turns on the Prometheus
 * endpoint (metrics_server.c).  Absent, or without listen, there is no
 * endpoint; the registry (core/metrics.h) counts either way, for
 * `outpostctl stats`. */
#ifndef OP_METRICS_CONFIG_H
#define OP_METRICS_CONFIG_H

#include "config/config.h"

#include <stddef.h>

typedef struct {
    char *listen;     /* tcp:HOST:PORT, NULL: no endpoint */
    char *host;       /* parsed from listen: an address literal */
    int port;
    size_t max_connections;
    double timeout;   /* seconds a scrape connection may live */
} op_metrics_conf_t;

extern const struct op_conf_section op_metrics_section;

/* The settings of cfg, defaults applied; they live as long as cfg. */
const op_metrics_conf_t *op_metrics_config(const op_config_t *cfg);

#endif
