/* sd_notify(3) for the daemon (notify.h). */
#include "core/notify.h"

#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

static char last_status[256];
static uv_timer_t ping;
static int pinging;

static int managed(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    return s != NULL && *s != '\0';
}

/* One message; a failure is logged once, never fatal: the daemon serves
 * mail whether or not its manager hears about it. */
static void send_msg(const char *msg)
{
    static int warned;
    int rc = sd_notify(0, msg);
    if (rc < 0 && !warned) {
        warned = 1;
        op_warn("sd_notify: %s", strerror(-rc));
    }
}

static void remember(const char *status)
{
    snprintf(last_status, sizeof last_status, "%s", status);
}

void op_notify_ready(const char *status)
{
    if (!managed())
        return;
    char msg[320];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status);
    send_msg(msg);
    remember(status);
}

void op_notify_reloading(void)
{
    if (!managed())
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[96];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    send_msg(msg);
}

void op_notify_stopping(const char *status)
{
    if (!managed())
        return;
    char msg[320];
    snprintf(msg, sizeof msg, "STOPPING=1\nSTATUS=%s", status);
    send_msg(msg);
    remember(status);
}

void op_notify_status(const char *status)
{
    if (!managed() || strcmp(status, last_status) == 0)
        return;
    char msg[320];
    snprintf(msg, sizeof msg, "STATUS=%s", status);
    send_msg(msg);
    remember(status);
}

static void on_ping(uv_timer_t *t)
{
    (void)t;
    send_msg("WATCHDOG=1");
}

uint64_t op_notify_watchdog_start(uv_loop_t *loop)
{
    uint64_t usec = 0;
    if (!managed() || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    /* Half the interval, as sd_watchdog_enabled(3) advises; at least 1 ms. */
    uint64_t ms = usec / 2000 > 0 ? usec / 2000 : 1;
    uv_timer_init(loop, &ping);
    uv_timer_start(&ping, on_ping, ms, ms);
    uv_unref((uv_handle_t *)&ping);
    pinging = 1;
    send_msg("WATCHDOG=1");
    return usec;
}

void op_notify_watchdog_stop(void)
{
    if (!pinging)
        return;
    pinging = 0;
    uv_close((uv_handle_t *)&ping, NULL);
}
