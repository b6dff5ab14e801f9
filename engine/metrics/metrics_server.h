/* The Prometheus endpoint: a TCP listener on the loop that answers
 * `GET /metrics` with the registry's text (core/metrics.h) and closes.
 * It never blocks the loop: the answer is rendered at once (a few hundred
 * microseconds), then written by libuv as the scraper reads it; each
 * connection lives at most metrics { timeout } and at most
 * metrics { max_connections } are open, so a slow or stuck scraper holds
 * one bounded buffer for a bounded time and never delays a request. */
#ifndef OP_METRICS_SERVER_H
#define OP_METRICS_SERVER_H

#include "metrics/metrics_config.h"

#include <stddef.h>
#include <uv.h>

typedef struct op_metrics_server op_metrics_server_t;

/* Starts the endpoint of conf: the server; NULL with err[0] == '\0' when
 * conf has no listen (no endpoint); NULL with the error in err when it
 * cannot listen. */
op_metrics_server_t *op_metrics_server_start(uv_loop_t *loop, const op_metrics_conf_t *conf, char *err,
                                             size_t errlen);
/* Closes the listener and every scrape connection (NULL: nothing). */
void op_metrics_server_stop(op_metrics_server_t *s);

#endif
