#include "services.h"

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
    return 0;
}

void op_services_reload(const op_config_t *cfg)
{
    (void)cfg;
}

void op_services_stop(void)
{
    op_services = NULL;
}
