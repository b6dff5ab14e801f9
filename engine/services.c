#include "services.h"

#include "ldap_service.h"
#include "log.h"

static op_services_t running_services;
op_services_t *op_services;

int op_services_start(uv_loop_t *loop, const op_config_t *cfg, char *err, size_t errlen)
{
    (void)cfg;
    (void)err;
    (void)errlen;
    running_services.loop = loop;
    op_services = &running_services;
    running_services.ldap = op_ldap_start(loop, cfg, err, errlen);
    if (running_services.ldap == NULL && err[0] != '\0')
        return -1;
    return 0;
}

void op_services_reload(const op_config_t *cfg)
{
    (void)cfg;
    char err[512];
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
    op_ldap_stop(running_services.ldap);
    running_services.ldap = NULL;
    op_services = NULL;
}
