/* The control socket: a unix socket on which outpostctl sends one command
 * line and reads one answer (docs/limits.md, `outpostctl --help`).
 *
 * Who may talk: root, the daemon's own user, and members of control.group.
 * The socket's mode and group keep others out; the peer's credentials
 * (SO_PEERCRED) are checked again on every connection, so a too-open mode
 * does not let them in.
 *
 * Protocol, one line each way and then the daemon closes:
 *   request:  FORMAT TAB WORD [TAB ARG]... LF      FORMAT is text or json
 *   answer:   "ok" LF BODY, or "error" SP EXIT SP MESSAGE LF
 * EXIT is the exit status outpostctl should end with (1 failed, 2 usage,
 * 4 permission denied, 5 reloaded but a restart is needed); BODY is text
 * or one JSON document. */
#ifndef OP_CONTROL_H
#define OP_CONTROL_H

#include "config/config.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct op_control op_control_t;

typedef struct {
    uint64_t generation;
    size_t connections;
    double started;      /* epoch seconds */
} op_control_status_t;

/* What only the daemon can do; set by daemon.c.  Without hooks (outpostd
 * test) status and reload answer that no daemon runs. */
typedef struct {
    /* 0; 1 when applied but some changes need a restart (named in err);
     * -1 with the error in err */
    int (*reload)(void *data, char *err, size_t errlen);
    void (*status)(void *data, op_control_status_t *st);
    void *data;
} op_control_hooks_t;

void op_control_set_hooks(const op_control_hooks_t *hooks);

op_control_t *op_control_start(uv_loop_t *loop, const op_config_t *cfg, char *err, size_t errlen);
/* Applies a reloaded mode and group; a new path needs a restart. */
void op_control_reload(op_control_t *ctl, const op_config_t *cfg);
void op_control_stop(op_control_t *ctl);

/* A command's answer, a malloc'ed string, when it came later. */
typedef void (*op_control_done_cb)(char *answer, void *data);

/* One command (fields after FORMAT), answered into a malloc'ed string:
 * the protocol without the socket, for tests.  uid is the caller's.  A
 * counters command on a backend that waits for its server (Redis)
 * returns NULL and answers through done, once, later, from the loop;
 * the fields need not outlive the call. */
/* `stats`: the answer text ("ok\n" and the numbers), JSON when json
 * (control_stats.c). */
char *op__control_stats(int json);

char *op_control_execute(char **fields, size_t nfields, int json, unsigned uid,
                         op_control_done_cb done, void *data);

#endif
