#include "core/services.h"

#include "lookup/dns.h"
#include "control/control.h"
#include "counters/counters.h"
#include "lookup/txnlink.h"
#include "lookup/ldap_service.h"
#include "core/log.h"
#include "lookup/smtp.h"

#include <stdio.h>

static op_services_t running_services;
op_services_t *op_services;
int op_services_private_state;

static void dns_conf_of(const op_config_t *cfg, op_dns_conf_t *dc)
{
    dc->servers = cfg->dns_servers;
    dc->nservers = cfg->ndns_servers;
    dc->timeout = cfg->dns_timeout;
    dc->tries = (int)cfg->dns_tries;
    dc->cache_size = cfg->dns_cache_size;
    dc->max_ttl = cfg->dns_max_ttl;
    dc->negative_max_ttl = cfg->dns_negative_max_ttl;
}

static void smtp_conf_of(const op_config_t *cfg, op_smtp_conf_t *sc)
{
    sc->helo = cfg->smtp_helo;
    sc->connect_timeout = cfg->smtp_connect_timeout;
    sc->step_timeout = cfg->smtp_step_timeout;
    sc->positive_ttl = cfg->smtp_positive_ttl;
    sc->negative_ttl = cfg->smtp_negative_ttl;
    sc->tempfail_ttl = cfg->smtp_tempfail_ttl;
    sc->per_destination = cfg->smtp_per_destination;
    sc->cache_size = cfg->smtp_cache_size;
}

int op_services_start(uv_loop_t *loop, const op_config_t *cfg, char *err, size_t errlen)
{
    running_services.loop = loop;
    op_dns_conf_t dc;
    dns_conf_of(cfg, &dc);
    running_services.dns = op_dns_new(loop, &dc, err, errlen);
    if (running_services.dns == NULL)
        return -1;
    op_smtp_conf_t sc;
    smtp_conf_of(cfg, &sc);
    running_services.smtp = op_smtp_new(loop, &sc, err, errlen);
    snprintf(running_services.smtp_host, sizeof running_services.smtp_host, "%s",
             cfg->smtp_host ? cfg->smtp_host : "");
    running_services.smtp_port = (int)cfg->smtp_port;
    op_services = &running_services;
    running_services.counters = op_services_private_state
                                    ? op_counters_open_private(loop, cfg, err, errlen)
                                    : op_counters_open(loop, cfg, err, errlen);
    if (running_services.counters == NULL)
        return -1;
    if (!op_services_private_state &&
        (running_services.control = op_control_start(loop, cfg, err, errlen)) == NULL)
        return -1;
    err[0] = '\0';
    running_services.ldap = op_ldap_start(loop, cfg, err, errlen);
    if (running_services.ldap == NULL && err[0] != '\0')
        return -1;
    running_services.txnlink = op_txnlink_new(OP_TXNLINK_ENTRIES, OP_TXNLINK_TTL_MS);
    return 0;
}

void op_services_reload(const op_config_t *cfg)
{
    char err[512];
    op_dns_conf_t dc;
    dns_conf_of(cfg, &dc);
    if (running_services.dns != NULL && op_dns_reconfigure(running_services.dns, &dc, err, sizeof err) != 0)
        op_error("reload: %s; the DNS settings stay as they were", err);
    op_smtp_conf_t sc;
    smtp_conf_of(cfg, &sc);
    op_smtp_reconfigure(running_services.smtp, &sc);
    snprintf(running_services.smtp_host, sizeof running_services.smtp_host, "%s",
             cfg->smtp_host ? cfg->smtp_host : "");
    running_services.smtp_port = (int)cfg->smtp_port;
    if (running_services.counters != NULL)
        op_counters_configure(running_services.counters, cfg);
    if (running_services.control != NULL)
        op_control_reload(running_services.control, cfg);
    if (running_services.ldap != NULL && cfg->nldap_uris == 0)
        op_notice("ldap: no uris any more: the LDAP service stops at the next restart, "
                  "until then it keeps its previous settings");
    else if (running_services.ldap != NULL && op_ldap_reload(running_services.ldap, cfg, err, sizeof err) < 0)
        op_error("%s; the LDAP service keeps its previous settings", err);
    else if (running_services.ldap == NULL && cfg->nldap_uris > 0)
        op_notice("ldap: the LDAP service starts at the next restart");
}

void op_services_stop(void)
{
    op_smtp_free(running_services.smtp);
    running_services.smtp = NULL;
    op_dns_free(running_services.dns);
    running_services.dns = NULL;
    op_control_stop(running_services.control);
    running_services.control = NULL;
    op_counters_close(running_services.counters);
    running_services.counters = NULL;
    op_ldap_stop(running_services.ldap);
    running_services.ldap = NULL;
    op_txnlink_free(running_services.txnlink);
    running_services.txnlink = NULL;
    op_services = NULL;
}
