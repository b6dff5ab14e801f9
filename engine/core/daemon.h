/* The running daemon: the loop, the current generation, listeners and
 * connections, signals (SIGHUP reload, SIGTERM/SIGINT drain and exit). */
#ifndef OP_DAEMON_H
#define OP_DAEMON_H

#include "config/config.h"
#include "core/vm.h"

#include <stdint.h>
#include <uv.h>

typedef struct op_listener op_listener_t;
typedef struct op_session op_session_t;
typedef struct op_session_ops op_session_ops_t;

typedef struct op_daemon {
    uv_loop_t *loop;
    char *config_path;
    op_gen_t *current;
    uint64_t generations;     /* generations built so far */
    op_listener_t **listeners;
    size_t nlisteners;
    op_session_t *sessions;   /* doubly linked list of open connections, of any protocol */
    size_t nconns;
    size_t nconns_tcp;        /* of nconns, on tcp listeners */
    int stopping;
    int handles_closed;       /* the drain finished; the loop is ending */
    uv_signal_t sighup, sigterm, sigint;
    uv_timer_t sweep;         /* idle connections, drain deadline */
    uv_timer_t metrics_tick;  /* the last minute of `outpostctl stats` (core/metrics.h) */
    double gen_loaded;        /* when the current generation became current */
    uint64_t drain_deadline;  /* uv_now() ms when the drain gives up */
    double started;           /* epoch seconds, for outpostctl status */
} op_daemon_t;

/* Runs the daemon until SIGTERM; returns the exit status. */
int op_daemon_run(const char *config_path);

/* Loads config, libraries and policies exactly as a reload would; prints
 * the error (with FILE:LINE) and returns 1 on failure, 0 on success. */
int op_daemon_check(const char *config_path);

/* The protocol a listener's sessions speak (daemon.c is where the
 * protocols are wired in; the rest of core/ knows none). */
const op_session_ops_t *op_daemon_protocol(op_proto_t protocol);

/* Called by connections when they close (and when they finish draining). */
void op_daemon_conn_closed(op_daemon_t *d);

#endif
