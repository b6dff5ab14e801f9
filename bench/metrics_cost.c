/* What the metrics registry costs a request (core/metrics.h): the calls
 * a policy request makes (op_metrics_request at dispatch, op_metrics_answer
 * when it answers), timed over many requests with the label sets of a
 * real configuration, so the cost of "metrics off" vs "on" in `make bench`
 * can be put next to the registry's own (both count).
 *
 *   build/rel/bench-metrics_cost [REQUESTS]   default 5,000,000 */
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
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        op_metrics_req_t r = op_metrics_request("submission", services[i % 3], tenants[i % 3], "policy");
        const char *a = actions[i % 3];
        op_metrics_answer(r, a, strlen(a), checks[i % 7], "policy", (uint64_t)(i % 5000));
    }
    double dt = now_s() - t0;
    printf("requests=%ld seconds=%.3f ns_per_request=%.1f\n", n, dt, dt * 1e9 / (double)n);
    return 0;
}
