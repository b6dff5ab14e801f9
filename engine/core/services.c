#include "core/services.h"

#include "lookup/dns.h"
#include "lookup/dns_config.h"
#include "control/control.h"
#include "counters/counters.h"
#include "counters/counters_config.h"
#include "lookup/txnlink.h"
#include "lookup/ldap_config.h"
#include "lookup/ldap_service.h"
#include "core/log.h"
#include "lookup/smtp.h"
#include "lookup/smtp_config.h"
#include "lookup/scan.h"
#include "lookup/scan_config.h"
#include "metrics/metrics_config.h"
#include "metrics/metrics_server.h"

#include <stdio.h>
#include <string.h>

static op_services_t running_services;
static char metrics_listen[128]; /* what the endpoint was started with, "" for none */
op_services_t *op_services;
int op_services_private_state;

/* What a policy's smtp.verify() uses when it names no destination. */
static void set_smtp_destination(const op_smtp_verify_conf_t *sv)
{
    snprintf(running_services.smtp_host, sizeof running_services.smtp_host, "%s",
             sv->host ? sv->host : "");
    running_services.smtp_port = (int)sv->port;
}

/* clamd { } and rspamd { }: a scanner runs while its section has an
 * address; a reload starts, reconfigures or stops it (scans in flight end
 * with "cancelled"). */
static int scanner_apply(op_scanner_t **slot, op_scan_kind_t kind, const op_scanner_conf_t *sc,
                         char *err, size_t errlen)
{
    if (sc->address == NULL) {
        op_scanner_free(*slot);
        *slot = NULL;
        return 0;
    }
    if (*slot != NULL)
        return op_scanner_reconfigure(*slot, sc, err, errlen);
    *slot = op_scanner_new(running_services.loop, kind, sc, err, errlen);
    return *slot != NULL ? 0 : -1;
}

int op_services_start(uv_loop_t *loop, const op_config_t *cfg, char *err, size_t errlen)
{
    running_services.loop = loop;
    running_services.dns = op_dns_new(loop, op_dns_config(cfg), err, errlen);
    if (running_services.dns == NULL)
        return -1;
    const op_smtp_verify_conf_t *sv = op_smtp_verify_config(cfg);
    running_services.smtp = op_smtp_new(loop, &sv->smtp, err, errlen);
    set_smtp_destination(sv);
    op_services = &running_services;
    op_counters_conf_t cc;
    op_counters_conf_of(cfg, &cc);
    running_services.counters_unavailable[0] = '\0';
    if (op_services_private_state == 2) {
        running_services.counters = op_counters_open_read_only(loop, &cc, err, errlen);
        if (running_services.counters == NULL) {
            snprintf(running_services.counters_unavailable,
                     sizeof running_services.counters_unavailable, "%s", err);
            op_notice("%s: the counts are not available, limits are not evaluated", err);
        }
    } else {
        running_services.counters = op_services_private_state
                                        ? op_counters_open_private(loop, &cc, err, errlen)
                                        : op_counters_open(loop, &cc, err, errlen);
        if (running_services.counters == NULL)
            return -1;
    }
    if (!op_services_private_state &&
        (running_services.control = op_control_start(loop, cfg, err, errlen)) == NULL)
        return -1;
    if (!op_services_private_state &&
        (running_services.metrics = op_metrics_server_start(loop, op_metrics_config(cfg), err, errlen)) == NULL &&
        err[0] != '\0')
        return -1;
    snprintf(metrics_listen, sizeof metrics_listen, "%s",
             running_services.metrics != NULL ? op_metrics_config(cfg)->listen : "");
    err[0] = '\0';
    running_services.ldap = op_ldap_start(loop, cfg, err, errlen);
    if (running_services.ldap == NULL && err[0] != '\0')
        return -1;
    running_services.txnlink = op_txnlink_new(OP_TXNLINK_ENTRIES, OP_TXNLINK_TTL_MS);
    if (scanner_apply(&running_services.clamd, OP_SCAN_CLAMD, op_clamd_config(cfg), err, errlen) != 0 ||
        scanner_apply(&running_services.rspamd, OP_SCAN_RSPAMD, op_rspamd_config(cfg), err, errlen) != 0)
        return -1;
    return 0;
}

void op_services_reload(const op_config_t *cfg)
{
    char err[512];
    if (running_services.dns != NULL &&
        op_dns_reconfigure(running_services.dns, op_dns_config(cfg), err, sizeof err) != 0)
        op_error("reload: %s; the DNS settings stay as they were", err);
    const op_smtp_verify_conf_t *sv = op_smtp_verify_config(cfg);
    op_smtp_reconfigure(running_services.smtp, &sv->smtp);
    set_smtp_destination(sv);
    if (running_services.counters != NULL) {
        op_counters_conf_t cc;
        op_counters_conf_of(cfg, &cc);
        op_counters_configure(running_services.counters, &cc);
    }
    if (running_services.control != NULL)
        op_control_reload(running_services.control, cfg);
    const char *ml = op_metrics_config(cfg)->listen;
    if (!op_services_private_state && strcmp(metrics_listen, ml ? ml : "") != 0)
        op_warn("reload: metrics { listen } changed (%s -> %s): the endpoint changes at the next "
                "restart; until then it stays %s", *metrics_listen ? metrics_listen : "none",
                ml ? ml : "none", *metrics_listen ? "where it is" : "off");
    if (running_services.ldap != NULL && op_ldap_config(cfg)->nuris == 0)
        op_notice("ldap: no uris any more: the LDAP service stops at the next restart, "
                  "until then it keeps its previous settings");
    else if (running_services.ldap != NULL && op_ldap_reload(running_services.ldap, cfg, err, sizeof err) < 0)
        op_error("%s; the LDAP service keeps its previous settings", err);
    else if (running_services.ldap == NULL && op_ldap_config(cfg)->nuris > 0)
        op_notice("ldap: the LDAP service starts at the next restart");
    if (scanner_apply(&running_services.clamd, OP_SCAN_CLAMD, op_clamd_config(cfg), err, sizeof err) != 0 ||
        scanner_apply(&running_services.rspamd, OP_SCAN_RSPAMD, op_rspamd_config(cfg), err, sizeof err) != 0)
        op_error("reload: %s; the scanner keeps its previous settings", err);
}

void op_services_stop(void)
{
    op_scanner_free(running_services.clamd);
    running_services.clamd = NULL;
    op_scanner_free(running_services.rspamd);
    running_services.rspamd = NULL;
    op_smtp_free(running_services.smtp);
    running_services.smtp = NULL;
    op_dns_free(running_services.dns);
    running_services.dns = NULL;
    op_control_stop(running_services.control);
    running_services.control = NULL;
    op_metrics_server_stop(running_services.metrics);
    running_services.metrics = NULL;
    op_counters_close(running_services.counters);
    running_services.counters = NULL;
    op_ldap_stop(running_services.ldap);
    running_services.ldap = NULL;
    op_txnlink_free(running_services.txnlink);
    running_services.txnlink = NULL;
    op_services = NULL;
}
