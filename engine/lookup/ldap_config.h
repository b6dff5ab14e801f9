/* ldap { }: the section of outpost.conf that configures the LDAP service
 * (ldap_service.h).  ldap_settings.c turns it into the service's working
 * settings (with the bind password read from its file). */
#ifndef OP_LDAP_CONFIG_H
#define OP_LDAP_CONFIG_H

#include "config/config.h"

#include <stddef.h>

typedef struct {
    char **uris;               /* none: no LDAP service */
    size_t nuris;
    char *bind_dn;             /* NULL: anonymous */
    char *bind_password_file;  /* absolute */
    int starttls;
    char *ca_file;             /* absolute, NULL: the system's */
    size_t pool_size;
    double timeout;
    double connect_timeout;
    double reconnect_min;
    double reconnect_max;
    size_t size_limit;
    size_t cache_size;
    double cache_ttl;
    double negative_ttl;
} op_ldap_config_t;

extern const struct op_conf_section op_ldap_section;

/* The ldap { } settings of cfg, defaults applied; they live as long as cfg. */
const op_ldap_config_t *op_ldap_config(const op_config_t *cfg);

#endif
