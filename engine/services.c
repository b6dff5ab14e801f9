#include "services.h"

#include "control.h"
#include "counters.h"
#include "log.h"

static op_services_t running_services;
op_services_t *op_services;
int op_services_private_state;

int op_services_start(uv_loop_t *loop, const op_config_t *cfg, char *err, size_t errlen)
{
    running_services.loop = loop;
    op_services = &running_services;
    running_services.counters = op_services_private_state
                                    ? op_counters_open_private(loop, cfg, err, errlen)
                                    : op_counters_open(loop, cfg, err, errlen);
    if (running_services.counters == NULL)
        return -1;
    if (!op_services_private_state &&
        (running_services.control = op_control_start(loop, cfg, err, errlen)) == NULL)
        return -1;
    return 0;
}

void op_services_reload(const op_config_t *cfg)
{
    if (running_services.counters != NULL)
        op_counters_configure(running_services.counters, cfg);
    if (running_services.control != NULL)
        op_control_reload(running_services.control, cfg);
}

void op_services_stop(void)
{
    op_control_stop(running_services.control);
    running_services.control = NULL;
    op_counters_close(running_services.counters);
    running_services.counters = NULL;
    op_services = NULL;
}
