/* log { }: where the log goes and in what form (log.h).  daemon {
 * log_level } still sets the level when log { level } is not given. */
#ifndef OP_LOG_CONFIG_H
#define OP_LOG_CONFIG_H

#include "config/config.h"

typedef struct {
    int target;   /* op_log_target_t */
    int format;   /* op_log_format_t */
    int level;    /* op_log_level_t; 0: daemon { log_level } */
    int facility; /* LOG_MAIL, ... */
    char *ident;
    char *socket; /* NULL: the target's system socket */
} op_log_conf_t;

extern const struct op_conf_section op_log_section;

const op_log_conf_t *op_log_config(const op_config_t *cfg);

/* Makes cfg's level and target current (at start and on each reload). */
void op_log_config_apply(const op_config_t *cfg);

#endif
