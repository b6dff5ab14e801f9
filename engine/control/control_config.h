/* control { }: the section of outpost.conf that configures the control
 * socket (control.c). */
#ifndef OP_CONTROL_CONFIG_H
#define OP_CONTROL_CONFIG_H

#include "config/config.h"

typedef struct {
    char *socket; /* NULL = <state_dir>/control.sock */
    int mode;
    char *group;  /* admin group, NULL = root and the daemon's user only */
} op_control_conf_t;

extern const struct op_conf_section op_control_section;

/* The control { } settings of cfg, defaults applied; they live as long as cfg. */
const op_control_conf_t *op_control_config(const op_config_t *cfg);

#endif
