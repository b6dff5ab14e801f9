/* What the daemon fixes at start and only a restart changes: the listeners'
 * sockets (bound, chowned and chmodded as root, before the privileges are
 * dropped) and the identity and state directory it took.  A reload compares
 * the new configuration against it, so `outpostctl reload` can say exactly
 * what it could not apply instead of reporting success. */
#ifndef OP_FIXED_H
#define OP_FIXED_H

#include "config/config.h"

#include <stddef.h>

typedef struct op_fixed op_fixed_t;

/* A copy of what cfg fixes; cfg may be freed afterwards. */
op_fixed_t *op_fixed_save(const op_config_t *cfg);
void op_fixed_free(op_fixed_t *f);

/* Names each change of cfg against f that needs a restart, "; " between
 * them, into out (cut short at outlen); returns how many there are. */
size_t op_fixed_diff(const op_fixed_t *f, const op_config_t *cfg, char *out, size_t outlen);

#endif
