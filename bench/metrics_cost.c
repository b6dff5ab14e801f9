/* What the metrics registry costs a request (core/metrics.h): the calls
 * a policy request makes (op_metrics_request_on or op_metrics_request at
 * dispatch, op_metrics_answer when it answers), timed over many requests
 * with the label sets of a real configuration, so the cost of "metrics
 * off" vs "on" in `make bench` can be put next to the registry's own (both
 * count).  Two figures: "route", a request on its listener's own binding
 * (labels resolved when the listener was bound), and "lookup", one whose
 * policy_context picked the service (its labels hashed per request).
 *
 *   build/rel/bench-metrics_cost [REQUESTS [route|lookup]]   default 5,000,000, both
 * (one alone: its instructions under callgrind, bench/instructions.sh's
 * measure, less the run with 0 requests). */
#include "core/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    static const char *const services[] = {"postout", "mailout", "appout-stage1"};
    static const char *const tenants[] = {"lrz", "lm", "tu"};
    static const char *const checks[] = {"-", "PO1", "PO3", "PO5", "PO7", "MO4", "AO3"};
    static const char *const actions[] = {"DUNNO", "REJECT 5.7.1 no", "DEFER 4.5.3 later"};
    op_metrics_init();
    op_metrics_route_t *routes[3];
    for (int k = 0; k < 3; k++)
        routes[k] = op_metrics_route("submission", services[k], tenants[k], "policy");
    const char *only = argc > 2 ? argv[2] : NULL;
    for (int lookup = 0; lookup < 2; lookup++) {
        if (only != NULL && strcmp(only, lookup ? "lookup" : "route") != 0)
            continue;
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            op_metrics_req_t r = lookup ? op_metrics_request("submission", services[i % 3], tenants[i % 3], "policy")
                                        : op_metrics_request_on(routes[i % 3]);
            const char *a = actions[i % 3];
            op_metrics_answer(r, a, strlen(a), checks[i % 7], "policy", (uint64_t)(i % 5000));
        }
        double dt = now_s() - t0;
        printf("%-6s requests=%ld seconds=%.3f ns_per_request=%.1f\n", lookup ? "lookup" : "route", n, dt,
               dt * 1e9 / (double)n);
    }
    return 0;
}
