/* The service manager's side channel (sd_notify(3), through libsystemd):
 * readiness, reloads, stopping, a one-line status, and the watchdog ping
 * of WatchdogSec=.  Without NOTIFY_SOCKET in the environment (not started
 * by systemd) every call does nothing.  Knows no protocol and no Lua: the
 * daemon says when, and what the status line reads.
 *
 * sd_notify sends one datagram on a blocking socket; a manager that stopped
 * reading could make it wait.  So messages are few: state changes, the
 * status when it changed (at most once a second, from the sweep), and the
 * watchdog ping at half of WATCHDOG_USEC, from the loop, so that a stuck
 * loop stops pinging and systemd restarts the daemon. */
#ifndef OP_NOTIFY_H
#define OP_NOTIFY_H

#include <stdint.h>
#include <uv.h>

/* READY=1 with the status line. */
void op_notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC, microseconds), as
 * systemd wants it before a reload's READY=1. */
void op_notify_reloading(void);
/* STOPPING=1 with the status line. */
void op_notify_stopping(const char *status);
/* STATUS=, only when it differs from the last one sent. */
void op_notify_status(const char *status);

/* When the manager asks for a watchdog (sd_watchdog_enabled: WatchdogSec=),
 * pings WATCHDOG=1 from a timer on loop every half interval; the timer
 * does not keep the loop alive.  Returns the interval in microseconds, or
 * 0 when none is asked for. */
uint64_t op_notify_watchdog_start(uv_loop_t *loop);
void op_notify_watchdog_stop(void);

#endif
