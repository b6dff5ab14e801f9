/* `outpostd test`: runs busted specs inside the engine. */
#ifndef OP_TESTRUNNER_H
#define OP_TESTRUNNER_H

#include "config/config.h"

/* args: busted options and paths.  cfg (may be NULL: no services) starts
 * the engine's services, so specs use the real primitives.  Prints busted's
 * TAP and, last, "N passed, N failed".  Returns the process exit status. */
int op_test_run(const op_config_t *cfg, const char *lua_dir, const char *config_path, int argc,
                char **argv);

#endif
