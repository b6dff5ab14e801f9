/* A connection from the MTA speaking the policy delegation protocol:
 * reads, parses, starts one request per query, and writes the answers back
 * in the order the queries came, however the requests finish. */
#ifndef OP_CONN_H
#define OP_CONN_H

#include "core/daemon.h"
#include "core/listener.h"

/* Accepts a pending connection on l. */
void op_conn_accept(op_listener_t *l);

/* Closes connections silent for longer than idle_ms (0: none) and, while the
 * daemon drains, those with nothing in flight. */
void op_conn_sweep(op_daemon_t *d, uint64_t idle_ms);

/* Drain: stop reading new queries on every connection; close those idle. */
void op_conn_drain_all(op_daemon_t *d);

/* Drain deadline passed: answer what is in flight with the default action
 * and close. */
void op_conn_abort_all(op_daemon_t *d);

#endif
