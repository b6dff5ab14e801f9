/* listener NAME { }: the settings of one listening socket (listener.c),
 * the schema rows that check them and the rules between listeners
 * (listener_config.c).  Included by config/config.h, which keeps the
 * listeners of a configuration in op_config_t. */
#ifndef OP_LISTENER_CONFIG_H
#define OP_LISTENER_CONFIG_H

#include <stddef.h>

typedef enum {
    OP_LISTEN_UNIX,
    OP_LISTEN_TCP,
} op_listen_kind_t;

typedef enum {
    OP_PROTO_POLICY, /* Postfix policy delegation */
    OP_PROTO_MILTER, /* milter protocol version 6 */
} op_proto_t;

/* One entry of allow_context: a policy_context value Postfix may send,
 * "SERVICE" or "SERVICE:TENANT". */
typedef struct {
    char *text;          /* as listed: what policy_context must equal */
    char *service;
    char *tenant;        /* NULL: the listener's */
} op_listener_context_t;

typedef struct {
    char *name;          /* listener NAME { } */
    const char *file;    /* where it was defined, for messages */
    int line;
    op_listen_kind_t kind;
    char *listen;        /* as written: "unix:PATH" or "tcp:HOST:PORT" */
    char *path;          /* unix: absolute socket path */
    char *host;          /* tcp: address literal, "[::1]" brackets removed */
    int port;            /* tcp */
    op_proto_t protocol;
    char *service;       /* default service of requests on this listener */
    char *tenant;        /* "" when not given */
    char **allow_context; /* as written; parsed into contexts */
    size_t nallow_context;
    op_listener_context_t *contexts; /* what Postfix's policy_context may select */
    size_t ncontexts;
    char *unknown_context_action; /* the answer to any other non-empty policy_context */
    int socket_mode;     /* unix: permission bits, default 0660 */
    char *socket_owner;  /* unix: user name, NULL = the daemon's user */
    char *socket_group;  /* unix: group name, NULL = the daemon's group */
    size_t max_connections; /* open at once on this listener; 0: only the daemon's cap */
    size_t max_per_peer; /* tcp: open at once from one address */
    char **allow_from;   /* tcp: networks that may connect; none: any */
    size_t nallow_from;
} op_listener_conf_t;

struct op__config_ctx;
/* After every section is read: each listener's services exist and no two
 * listeners share an address.  Returns 0 or -1 with the load's error set. */
int op__listener_config_check(struct op__config_ctx *c);

#endif
