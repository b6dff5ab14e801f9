/* `outpostd test`: runs busted specs inside the engine. */
#ifndef OP_TESTRUNNER_H
#define OP_TESTRUNNER_H

/* args: busted options and paths.  Prints busted's TAP and, last,
 * "N passed, N failed".  Returns the process exit status. */
int op_test_run(const char *lua_dir, const char *config_path, int argc, char **argv);

#endif
