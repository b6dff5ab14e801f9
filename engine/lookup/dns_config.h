/* dns { }: the section of outpost.conf that configures the DNS service.
 * Its values convert straight into op_dns_conf_t (dns.h). */
#ifndef OP_DNS_CONFIG_H
#define OP_DNS_CONFIG_H

#include "config/config.h"
#include "lookup/dns.h"

extern const struct op_conf_section op_dns_section;

/* The dns { } settings of cfg, defaults applied; they live as long as cfg. */
const op_dns_conf_t *op_dns_config(const op_config_t *cfg);

#endif
