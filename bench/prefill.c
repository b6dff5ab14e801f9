/* bench-prefill: fills outpostd's counter store with N subjects quickly,
 * through the engine's counters API (the same code the daemon runs), so
 * that bench/scaling.sh can measure the daemon with 1M subjects in RocksDB
 * without first sending it a million requests.
 *
 *   bench-prefill -c CONFIG -l LIMIT -n N [--first K] [--format FMT]
 *
 * Adds 1 to LIMIT for each subject printf(FMT, k), k in [K, K+N) (default
 * user%llu@example.org, the subjects of bench-loadgen's sasl_username), one
 * operation each, as a request would.  The store is that of CONFIG
 * (counters.path or <state_dir>/counters); the daemon must not run. */
#include "config/config.h"
#include "counters/counters.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
    fputs("usage: bench-prefill -c CONFIG -l LIMIT -n N [--first K] [--format FMT]\n"
          "Adds 1 to LIMIT for N subjects (FMT with k in [K,K+N), default\n"
          "user%llu@example.org) in the counter store of CONFIG.  The daemon must\n"
          "not run on that store.\n",
          out);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *limit = NULL, *fmt = "user%llu@example.org";
    unsigned long long n = 0, first = 0;
    static const struct option longopts[] = {
        {"first", required_argument, NULL, 'f'},
        {"format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:n:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 'l': limit = optarg; break;
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 'f': first = strtoull(optarg, NULL, 10); break;
        case 'F': fmt = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!conf || !limit || n == 0 || optind < argc) {
        usage(stderr);
        return 2;
    }
    /* FMT takes exactly one unsigned long long */
    const char *pct = strchr(fmt, '%');
    if (!pct || strncmp(pct, "%llu", 4) != 0 || strchr(pct + 1, '%')) {
        fprintf(stderr, "bench-prefill: --format wants exactly one %%llu\n");
        return 2;
    }

    char err[512];
    op_config_t *cfg = op_config_load(conf, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "bench-prefill: %s\n", err);
        return 1;
    }
    op_counters_conf_t cc;
    op_counters_conf_of(cfg, &cc);
    op_counters_t *c = op_counters_open(NULL, &cc, err, sizeof err);
    if (!c) {
        fprintf(stderr, "bench-prefill: %s\n", err);
        op_config_free(cfg);
        return 1;
    }
    if (!op_counters_has_limit(c, limit)) {
        fprintf(stderr, "bench-prefill: no limit %s in %s\n", limit, conf);
        op_counters_close(c);
        op_config_free(cfg);
        return 1;
    }
    double t0 = now_s();
    int rc = 0;
    for (unsigned long long k = first; k < first + n; k++) {
        char subject[OP_COUNTERS_MAX_KEY + 1];
        snprintf(subject, sizeof subject, fmt, k);
        op_counters_call_t call; /* without a loop the backend answers at once */
        int r = op_counters_add(c, limit, subject, 1, -1, &call);
        if (r != 0 || !call.answer.ok) {
            fprintf(stderr, "bench-prefill: %s: add failed (%d, ok %d)\n", subject, r,
                    r == 0 ? call.answer.ok : 0);
            rc = 1;
            break;
        }
    }
    double secs = now_s() - t0;
    printf("prefill: %llu subjects in %.1f s (%.0f/s), store %.1f MiB\n", n, secs,
           secs > 0 ? (double)n / secs : 0.0, (double)op_counters_disk_bytes(c) / 1048576.0);
    op_counters_close(c);
    op_config_free(cfg);
    return rc;
}
