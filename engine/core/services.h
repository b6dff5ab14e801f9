/* The engine's services: the I/O primitives policies use (DNS, LDAP,
 * counters, ...), started once per process and shared by every generation,
 * so their caches and connections survive reloads.
 *
 * Each service is a C API that knows nothing of Lua (engine/lookup/dns.h,
 * engine/lookup/ldap_service.h, ...); its lua_api_<module>.c binds it and finds it through
 * op_services.  The daemon starts them after dropping privileges (so files
 * they create belong to the daemon's user) and before the first generation
 * loads; `outpostd test` starts them from the configuration given with -c,
 * so specs use the real services. */
#ifndef OP_SERVICES_H
#define OP_SERVICES_H

#include "config/config.h"

#include <uv.h>

typedef struct op_services {
    uv_loop_t *loop;
    /* One pointer per service, NULL until started.  Add yours here and in
     * services.c; keep the order of start and the reverse for stop. */
    struct op_dns *dns; /* engine/lookup/dns.h */
    struct op_smtp *smtp; /* engine/lookup/smtp.h */
    char smtp_host[256];  /* smtp_verify { host }, "": the address's MX */
    int smtp_port;
    struct op_counters *counters; /* counters.h: outpost.limit */
    struct op_control *control;   /* control.h: the outpostctl socket */
    struct op_ldap *ldap; /* engine/lookup/ldap_service.h; NULL without ldap { uris } */
    struct op_txnlink *txnlink; /* txnlink.h: outpost.txnlink, policy <-> milter */
    struct op_scanner *clamd;   /* scan.h: outpost.scan (AO6); NULL without clamd { address } */
    struct op_scanner *rspamd;  /* scan.h; NULL without rspamd { address } */
    /* Read-only state (`outpostd ask --dry-run`) whose counters could not
     * be opened: why; "" otherwise. */
    char counters_unavailable[512];
    struct op_metrics_server *metrics; /* metrics_server.h: NULL without metrics { listen } */
} op_services_t;

/* Set by `outpostd test` (1) before op_services_start: state that a daemon
 * with the same configuration may own (the counters store, the control
 * socket) is replaced by private state or not started.  2 (`outpostd ask
 * --dry-run`): the daemon's counters are opened read-only, and when they
 * cannot be, the services start without them (counters_unavailable says
 * why); no control socket. */
extern int op_services_private_state;

/* The running services (NULL before op_services_start). */
extern op_services_t *op_services;

/* Starts every service from cfg.  Returns 0, or -1 with a message. */
int op_services_start(uv_loop_t *loop, const op_config_t *cfg, char *err, size_t errlen);

/* A reload produced cfg: services apply what they can change at run time
 * (cache sizes, timeouts, servers) and log what needs a restart.  Called
 * only after the new generation loaded, so a broken reload changes nothing. */
void op_services_reload(const op_config_t *cfg);

/* Stops every service; callbacks of operations in flight fire with a
 * cancellation result or not at all, as each service documents. */
void op_services_stop(void);

#endif
