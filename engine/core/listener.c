#include "core/listener.h"

#include "core/log.h"
#include "core/metrics.h"
#include "core/session.h"
#include "core/mem.h"
#include "lib/netset.h"
#include "lib/siphash.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void on_connection(uv_stream_t *server, int status)
{
    op_listener_t *l = server->data;
    if (status < 0) {
        /* Out of descriptors, libuv refuses each connection in turn:
         * one line each would flood the log. */
        static op_log_limit_t lim;
        op_log_limited(&lim, uv_now(l->daemon->loop), OP_LOG_WARNING,
                       "listener %s: accept failed: %s", l->name, uv_strerror(status));
        return;
    }
    op_session_accept(l, op_daemon_protocol(l->protocol));
}

static void free_contexts(op_listener_context_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].text);
        free(v[i].service);
        free(v[i].tenant);
    }
    free(v);
}

#define PEER_BUCKETS 256

/* Keyed (siphash.h): a client choosing its IPv6 addresses must not be
 * able to put them all in one bucket. */
static size_t peer_bucket(const char *ip)
{
    return (size_t)(op_siphash(ip, strlen(ip)) % PEER_BUCKETS);
}

size_t op__listener_peer_count(const op_listener_t *l, const char *ip)
{
    if (l->peers == NULL)
        return 0;
    for (const op__peer_t *p = l->peers[peer_bucket(ip)]; p != NULL; p = p->next)
        if (strcmp(p->ip, ip) == 0)
            return p->n;
    return 0;
}

op__peer_t *op__listener_peer(op_listener_t *l, const char *ip)
{
    if (l->peers == NULL)
        l->peers = op_calloc(PEER_BUCKETS, sizeof *l->peers);
    op__peer_t **b = &l->peers[peer_bucket(ip)];
    for (op__peer_t *p = *b; p != NULL; p = p->next)
        if (strcmp(p->ip, ip) == 0)
            return p;
    op__peer_t *p = op_calloc(1, sizeof *p);
    snprintf(p->ip, sizeof p->ip, "%s", ip);
    p->next = *b;
    *b = p;
    return p;
}

void op__listener_peer_put(op_listener_t *l, op__peer_t *p)
{
    if (--p->n > 0)
        return;
    op__peer_t **pp = &l->peers[peer_bucket(p->ip)];
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    free(p);
}

void op_listener_bind_conf(op_listener_t *l, const op_listener_conf_t *conf)
{
    free(l->service);
    free(l->tenant);
    free(l->unknown_action);
    free_contexts(l->contexts, l->ncontexts);
    l->service = op_strdup(conf->service);
    l->tenant = op_strdup(conf->tenant ? conf->tenant : "");
    l->metrics = op_metrics_route(l->name, l->service, l->tenant,
                                  l->protocol == OP_PROTO_MILTER ? "milter" : "policy");
    l->unknown_action = op_strdup(conf->unknown_context_action);
    l->ncontexts = conf->ncontexts;
    l->contexts = op_calloc(conf->ncontexts ? conf->ncontexts : 1, sizeof *l->contexts);
    for (size_t i = 0; i < conf->ncontexts; i++) {
        const op_listener_context_t *x = &conf->contexts[i];
        l->contexts[i] = (op_listener_context_t){op_strdup(x->text), op_strdup(x->service),
                                                 x->tenant ? op_strdup(x->tenant) : NULL};
    }
    l->max_connections = conf->max_connections;
    l->max_per_peer = conf->max_per_peer;
    op_netset_free(l->allow_from);
    l->allow_from = NULL;
    if (conf->nallow_from > 0) {
        char why[256];
        l->allow_from = op_netset_new();
        for (size_t i = 0; i < conf->nallow_from; i++)
            if (op_netset_add(l->allow_from, conf->allow_from[i], NULL, why, sizeof why) != 0)
                op_panic("listener %s: allow_from %s passed the config check: %s", l->name,
                         conf->allow_from[i], why);
    }
}

/* A leftover socket file from a crashed daemon may be replaced; a socket a
 * live daemon still answers on, or any other kind of file, may not. */
static int clear_stale_socket(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket; refusing to replace it", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int live = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    if (live) {
        snprintf(err, errlen, "%s: another process is listening on this socket", path);
        return -1;
    }
    unlink(path);
    return 0;
}

static int make_parent_dir(const char *path)
{
    char *dir = op_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; *p; p++) {
            if (*p == '/') {
                *p = '\0';
                mkdir(dir, 0755);
                *p = '/';
            }
        }
        mkdir(dir, 0755);
    }
    free(dir);
    return 0;
}

static int set_socket_owner(const op_listener_conf_t *conf, char *err, size_t errlen)
{
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    if (conf->socket_owner != NULL) {
        struct passwd *pw = getpwnam(conf->socket_owner);
        if (pw == NULL) {
            snprintf(err, errlen, "socket_owner %s: no such user", conf->socket_owner);
            return -1;
        }
        uid = pw->pw_uid;
    }
    if (conf->socket_group != NULL) {
        struct group *gr = getgrnam(conf->socket_group);
        if (gr == NULL) {
            snprintf(err, errlen, "socket_group %s: no such group", conf->socket_group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(conf->path, uid, gid) != 0) {
        snprintf(err, errlen, "chown %s: %s", conf->path, strerror(errno));
        return -1;
    }
    if (chmod(conf->path, (mode_t)conf->socket_mode) != 0) {
        snprintf(err, errlen, "chmod %s: %s", conf->path, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_unix(op_listener_t *l, const op_listener_conf_t *conf, char *err, size_t errlen)
{
    if (strlen(conf->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, errlen, "%s: socket path too long", conf->path);
        return -1;
    }
    make_parent_dir(conf->path);
    if (clear_stale_socket(conf->path, err, errlen) != 0)
        return -1;
    uv_pipe_init(l->daemon->loop, &l->h.pipe, 0);
    l->h.handle.data = l;
    /* Nobody but the owner may connect until the mode is set. */
    mode_t old = umask(0177);
    int rc = uv_pipe_bind(&l->h.pipe, conf->path);
    umask(old);
    if (rc != 0) {
        snprintf(err, errlen, "bind %s: %s", conf->path, uv_strerror(rc));
        return -1;
    }
    l->path = op_strdup(conf->path);
    return set_socket_owner(conf, err, errlen);
}

static int open_tcp(op_listener_t *l, const op_listener_conf_t *conf, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    int rc = strchr(conf->host, ':') != NULL
                 ? uv_ip6_addr(conf->host, conf->port, (struct sockaddr_in6 *)&sa)
                 : uv_ip4_addr(conf->host, conf->port, (struct sockaddr_in *)&sa);
    if (rc != 0) {
        snprintf(err, errlen, "%s: bad address: %s", conf->listen, uv_strerror(rc));
        return -1;
    }
    uv_tcp_init(l->daemon->loop, &l->h.tcp);
    l->h.handle.data = l;
    rc = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&sa, 0);
    if (rc != 0) {
        snprintf(err, errlen, "bind %s: %s", conf->listen, uv_strerror(rc));
        return -1;
    }
    return 0;
}

void op_listener_ref(op_listener_t *l)
{
    l->refs++;
}

void op_listener_unref(op_listener_t *l)
{
    if (--l->refs > 0)
        return;
    free(l->name);
    free(l->listen);
    free(l->path);
    free(l->service);
    free(l->tenant);
    free(l->unknown_action);
    free_contexts(l->contexts, l->ncontexts);
    op_netset_free(l->allow_from);
    free(l->peers); /* empty: each connection gave its count back */
    free(l);
}

static void listener_closed(uv_handle_t *h)
{
    op_listener_unref(h->data);
}

op_listener_t *op_listener_open(op_daemon_t *d, const op_listener_conf_t *conf, char *err,
                                size_t errlen)
{
    op_listener_t *l = op_calloc(1, sizeof *l);
    l->refs = 1;
    l->daemon = d;
    l->kind = conf->kind;
    l->protocol = conf->protocol;
    l->name = op_strdup(conf->name);
    l->listen = op_strdup(conf->listen);
    op_listener_bind_conf(l, conf);
    int rc = conf->kind == OP_LISTEN_UNIX ? open_unix(l, conf, err, errlen)
                                          : open_tcp(l, conf, err, errlen);
    if (rc == 0) {
        /* The backlog absorbs Postfix's burst of new connections at start. */
        rc = uv_listen(&l->h.stream, 511, on_connection);
        if (rc != 0)
            snprintf(err, errlen, "listen %s: %s", conf->listen, uv_strerror(rc));
    }
    if (rc != 0) {
        l->h.handle.data = l;
        if (l->h.handle.loop != NULL) { /* initialised: free in the close callback */
            l->closed = 1;
            uv_close(&l->h.handle, listener_closed);
        } else {
            op_listener_unref(l);
        }
        return NULL;
    }
    return l;
}

void op_listener_close(op_listener_t *l)
{
    if (l->closed)
        return;
    l->closed = 1;
    if (l->path != NULL)
        unlink(l->path);
    uv_close(&l->h.handle, listener_closed);
}
