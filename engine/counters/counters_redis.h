/* The Redis backend's connection (counters_redis_conn.c): one connection
 * on hiredis's asynchronous API, watched by the loop (uv_poll), that runs
 * the backend's script (counters_redis.lua) by SHA for the backend
 * (counters_redis.c).
 *
 * The connection finds its server (the first of `servers` that answers,
 * or the primary the Sentinels name), authenticates, selects the db and
 * loads the script (SCRIPT LOAD, once per connection) before it takes
 * commands; commands that arrive meanwhile wait for it.  Every command
 * has a deadline (command_timeout): past it, or on READONLY (a replica),
 * the connection is dropped, everything on it fails, and it is made again
 * after a backoff (50 ms doubling to reconnect_max).  While it is down
 * (between a failure and the next attempt) a command is refused at once,
 * so a request answers without waiting for a server that is away. */
#ifndef OP_COUNTERS_REDIS_H
#define OP_COUNTERS_REDIS_H

#include "counters/counters_config.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct op_rconn op_rconn_t;
typedef struct op_rcmd op_rcmd_t;

/* A command ended: reply is the server's answer (perhaps an error reply),
 * or NULL when the command failed (cmd->rc: OP_COUNTERS_EIO, or
 * OP_COUNTERS_ECANCELLED when the connection was freed). */
typedef void (*op_rcmd_cb)(op_rcmd_t *cmd, const redisReply *reply);

/* Room kept in front of a command's arguments for its head (the argument
 * count, EVALSHA and the SHA), so that the command goes to hiredis as one
 * piece without a copy of the arguments. */
#define OP_RCMD_HEAD 80
/* What a command keeps inline: a count's arguments fit, so building one
 * allocates nothing. */
#define OP_RCMD_INLINE 1024

/* One call of the script: its arguments after the SHA (numkeys, keys,
 * ARGV), encoded as the protocol sends them (RESP bulk strings) in buf,
 * after OP_RCMD_HEAD bytes; owned by the command (op_rcmd_arg copies). */
struct op_rcmd {
    op_rcmd_t *next, *prev; /* the connection's */
    uint64_t deadline;      /* loop time, ms */
    int argc;
    char *buf;              /* inline, or on the heap when they outgrow it */
    size_t len, cap;        /* len counts from buf, head room included */
    int rc;
    int noscript;           /* sent again as EVAL once */
    op_rcmd_cb cb;
    void *data;
    char inline_buf[OP_RCMD_INLINE];
};

void op_rcmd_arg(op_rcmd_t *cmd, const char *s, size_t len);
void op_rcmd_str(op_rcmd_t *cmd, const char *s);
void op_rcmd_int(op_rcmd_t *cmd, int64_t v);
/* An argument of len bytes that the caller writes at the pointer returned. */
char *op_rcmd_arg_space(op_rcmd_t *cmd, size_t len);
/* Frees the arguments (not cmd itself); cmd can take new ones. */
void op_rcmd_clear(op_rcmd_t *cmd);

op_rconn_t *op_rconn_new(uv_loop_t *loop, const op_redis_conf_t *cfg, const char *script,
                         char *err, size_t errlen);
/* 0: cmd->cb fires once, later, from the loop.  < 0: the connection is
 * down now (cb never fires). */
int op_rconn_send(op_rconn_t *rc, op_rcmd_t *cmd);
/* Whether commands are taken now (the connection is not backing off). */
int op_rconn_up(const op_rconn_t *rc);
/* NULL when connected, else why not. */
const char *op_rconn_health(const op_rconn_t *rc);
/* Fails every command with OP_COUNTERS_ECANCELLED, then closes. */
void op_rconn_free(op_rconn_t *rc);

/* Tests: the backend's clock (a store of op_counters_redis); without it
 * the scripts read the server's TIME, one clock for every node. */
void op_redis_set_clock(void *store, int64_t (*fn)(void *data), void *data);

#endif
