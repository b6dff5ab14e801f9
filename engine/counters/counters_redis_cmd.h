/* Internal to counters_redis*.c: the framing of a script call built with
 * op_rcmd_* (counters_redis.h) into the one RESP command that goes to
 * hiredis (counters_redis_cmd.c; no I/O there, so spec/c/test_redis_cmd.c
 * checks its bytes). */
#ifndef OP_COUNTERS_REDIS_CMD_H
#define OP_COUNTERS_REDIS_CMD_H

#include "counters/counters_redis.h"

#include <stddef.h>
#include <stdint.h>

/* v in decimal at p, which has room for 20 digits and a sign: its length. */
size_t op__rcmd_put_int(char *p, int64_t v);

/* The whole command: *N, the verb (EVALSHA or EVAL), its body (the SHA or
 * the script), then cmd's arguments.  Written into the head room in front
 * of the arguments when it fits (*heap = NULL: nothing to free), else into
 * a buffer of its own (*heap: free it once hiredis has copied it).  NULL
 * when cmd has no arguments (not a call of the script). */
const char *op__rcmd_frame(op_rcmd_t *cmd, const char *verb, const char *body, size_t *len,
                           char **heap);

#endif
