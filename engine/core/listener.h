/* Listening sockets (unix and TCP), each bound to a service and tenant. */
#ifndef OP_LISTENER_H
#define OP_LISTENER_H

#include "config/config.h"
#include "core/daemon.h"
#include "core/log.h"

#include <stdint.h>

#include <uv.h>

/* A unix or TCP stream, as listeners and connections hold them. */
typedef union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
} op_stream_t;

struct op_listener {
    op_daemon_t *daemon;
    op_stream_t h;
    op_listen_kind_t kind;
    op_proto_t protocol; /* fixed for the listener's life, like its socket */
    char *name;
    char *listen;      /* as configured: identifies the listener across reloads */
    char *path;        /* unix socket path, unlinked on close */
    /* The binding; replaced on reload when the same listen address is still
     * configured. */
    char *service;
    char *tenant;
    struct op_metrics_route *metrics; /* its labels resolved (core/metrics.h); NULL: look them up */
    op_listener_context_t *contexts; /* allow_context: policy_context values it takes */
    size_t ncontexts;
    char *unknown_action;            /* the answer to any other policy_context */
    /* Unknown policy_context values logged in the last minute, so a
     * misconfigured Postfix costs one line per value per minute; bounded,
     * whatever the values (listener_context.c). */
    struct op__seen_context {
        uint64_t hash, at_ms;
        unsigned long repeats; /* answered since it was logged */
    } seen[32];
    op_log_limit_t seen_overflow;
    /* Caps (listener_config.h), followed on reload, and the counts they
     * bound. */
    size_t max_connections, max_per_peer;
    struct op_netset *allow_from; /* NULL: any address */
    size_t nconns;
    struct op__peer **peers;      /* tcp: connections open per client address */
    int closed;
    int refs;          /* the daemon's, and one per connection (which reads name, tenant) */
};

/* Connections open on a tcp listener from one client address: the
 * per-peer cap's count, shared by that address's sessions. */
typedef struct op__peer {
    struct op__peer *next;
    size_t n;
    char ip[46];
} op__peer_t;

/* The count of ip's connections on l, made at 0 when there is none. */
op__peer_t *op__listener_peer(op_listener_t *l, const char *ip);
/* How many connections ip has open on l (0 when unknown). */
size_t op__listener_peer_count(const op_listener_t *l, const char *ip);
/* A connection of p's closed: drops the count, and the entry at 0. */
void op__listener_peer_put(op_listener_t *l, op__peer_t *p);

/* Binds and listens; sets socket mode and owner for unix sockets.
 * Returns NULL with a message in err. */
op_listener_t *op_listener_open(op_daemon_t *d, const op_listener_conf_t *conf, char *err,
                                size_t errlen);
void op_listener_bind_conf(op_listener_t *l, const op_listener_conf_t *conf);
/* Stops accepting and unlinks the unix socket; drops the daemon's
 * reference.  The listener is freed when its handle is closed and the last
 * connection accepted on it has gone (connections drain after SIGTERM and
 * still log their listener's tenant). */
void op_listener_close(op_listener_t *l);
void op_listener_ref(op_listener_t *l);
void op_listener_unref(op_listener_t *l);

/* The service and tenant that answer a request on l with the given
 * policy_context (listener_context.c): the listener's for an empty one or
 * one equal to its service, else the allow_context entry it equals.
 * Returns -1 for a value the listener does not allow: answer
 * l->unknown_action and report it with op_listener_unknown_context. */
int op_listener_route(const op_listener_t *l, const char *context, size_t context_len,
                      const char **service, const char **tenant);
/* Logs that context was refused: once per distinct value per minute. */
void op_listener_unknown_context(op_listener_t *l, const char *peer, const char *context,
                                 size_t context_len, uint64_t now_ms);

#endif
