/* The control socket's transport: listening, credentials, one line in and
 * one answer out.  The commands are in control_cmd.c. */
#include "control/control.h"

#include "control/control_config.h"

#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* explain carries a whole Postfix request (at most 64 KiB, 128 attributes
 * by default) on its line */
#define MAX_LINE 65536
#define CLIENT_TIMEOUT_MS 10000 /* a client that sends no line in time is dropped */
/* an answer that comes later (a counters command on Redis, an explain
 * that waits for lookups: bounded by its service's deadline) */
#define LATER_TIMEOUT_MS 120000
#define MAX_FIELDS 256

struct op_control {
    uv_pipe_t server;
    uv_loop_t *loop;
    char *path;
    gid_t admin_gid;
    int has_admin_group;
};

typedef struct {
    uv_pipe_t pipe;
    uv_timer_t timer;
    int open_handles; /* freed when both handles are closed */
    op_control_t *ctl;
    char buf[MAX_LINE + 1];
    size_t n;
    int answered;
    uv_write_t wr;
    char *answer;
    unsigned uid;
    int denied;       /* answered with the refusal once its line is read */
} client_t;

/* open_handles also counts a command whose answer comes later. */
static void client_unref(client_t *cl)
{
    if (--cl->open_handles > 0)
        return;
    free(cl->answer);
    free(cl);
}

static void client_free(uv_handle_t *h)
{
    client_unref(h->data);
}

static void client_close(client_t *cl)
{
    if (uv_is_closing((uv_handle_t *)&cl->pipe))
        return;
    uv_close((uv_handle_t *)&cl->timer, client_free);
    uv_close((uv_handle_t *)&cl->pipe, client_free);
}

static void on_timeout(uv_timer_t *t)
{
    client_close(t->data);
}

static void on_written(uv_write_t *wr, int status)
{
    (void)status;
    client_close(wr->data);
}

static void answer(client_t *cl, char *text)
{
    cl->answered = 1;
    uv_read_stop((uv_stream_t *)&cl->pipe);
    cl->answer = text;
    uv_buf_t b = uv_buf_init(text, (unsigned)strlen(text));
    cl->wr.data = cl;
    if (uv_write(&cl->wr, (uv_stream_t *)&cl->pipe, &b, 1, on_written) != 0)
        client_close(cl);
}

static char *error_text(int code, const char *msg)
{
    size_t len = strlen(msg) + 32;
    char *t = op_malloc(len);
    snprintf(t, len, "error %d %s\n", code, msg);
    return t;
}

static int in_group(uid_t uid, gid_t gid, gid_t want)
{
    if (gid == want)
        return 1;
    struct passwd *pw = getpwuid(uid);
    if (pw == NULL)
        return 0;
    gid_t groups[256];
    int n = 256;
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (groups[i] == want)
            return 1;
    return 0;
}

/* A counters command answered from the loop (a backend that waits for its
 * server); the client may have gone meanwhile (its timeout). */
static void answer_later(char *text, void *data)
{
    client_t *cl = data;
    if (uv_is_closing((uv_handle_t *)&cl->pipe))
        free(text);
    else
        answer(cl, text);
    client_unref(cl);
}

static void on_line(client_t *cl, char *line)
{
    if (cl->denied) {
        answer(cl, error_text(4, "permission denied: outpostctl needs root or the admin group"));
        return;
    }
    char *fields[MAX_FIELDS];
    size_t n = 0;
    for (char *p = line; n < MAX_FIELDS;) {
        fields[n++] = p;
        p = strchr(p, '\t');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    if (n < 2 || (strcmp(fields[0], "text") != 0 && strcmp(fields[0], "json") != 0)) {
        answer(cl, error_text(2, "malformed request"));
        return;
    }
    cl->open_handles++; /* an answer that comes later finds the client */
    char *text = op_control_execute(fields + 1, n - 1, strcmp(fields[0], "json") == 0, cl->uid,
                                    answer_later, cl);
    if (text == NULL) {
        cl->answered = 1;
        uv_read_stop((uv_stream_t *)&cl->pipe);
        uv_timer_start(&cl->timer, on_timeout, LATER_TIMEOUT_MS, 0);
        return;
    }
    cl->open_handles--;
    answer(cl, text);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    client_t *cl = h->data;
    *buf = uv_buf_init(cl->buf + cl->n, (unsigned)(MAX_LINE - cl->n));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    client_t *cl = s->data;
    if (cl->answered)
        return;
    if (nread < 0) {
        client_close(cl);
        return;
    }
    cl->n += (size_t)nread;
    char *nl = memchr(cl->buf, '\n', cl->n);
    if (nl != NULL) {
        *nl = '\0';
        on_line(cl, cl->buf);
    } else if (cl->n >= MAX_LINE) {
        answer(cl, error_text(2, "request line too long"));
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    op_control_t *ctl = server->data;
    if (status < 0)
        return;
    client_t *cl = op_calloc(1, sizeof *cl);
    cl->ctl = ctl;
    uv_pipe_init(ctl->loop, &cl->pipe, 0);
    uv_timer_init(ctl->loop, &cl->timer);
    cl->pipe.data = cl->timer.data = cl;
    cl->open_handles = 2;
    if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0) {
        client_close(cl);
        return;
    }
    uv_timer_start(&cl->timer, on_timeout, CLIENT_TIMEOUT_MS, 0);
    struct ucred cred;
    socklen_t len = sizeof cred;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&cl->pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        client_close(cl);
        return;
    }
    cl->uid = cred.uid;
    if (cred.uid != 0 && cred.uid != geteuid() &&
        !(ctl->has_admin_group && in_group(cred.uid, cred.gid, ctl->admin_gid))) {
        op_warn("control: refused uid %u (pid %d): not root, the daemon's user or in the admin group",
                (unsigned)cred.uid, (int)cred.pid);
        /* Read the request first: a reply to an unread request could
         * reach the client as a broken pipe instead of the message. */
        cl->denied = 1;
    }
    uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read);
}

static void apply_access(op_control_t *ctl, const op_config_t *config)
{
    const op_control_conf_t *cfg = op_control_config(config);
    ctl->has_admin_group = 0;
    if (cfg->group != NULL) {
        struct group *gr = getgrnam(cfg->group);
        if (gr == NULL) {
            op_warn("control: group %s does not exist; only root and the daemon's user may connect",
                    cfg->group);
        } else {
            ctl->admin_gid = gr->gr_gid;
            ctl->has_admin_group = 1;
            if (chown(ctl->path, (uid_t)-1, gr->gr_gid) != 0)
                op_warn("control: chgrp %s %s: %s", cfg->group, ctl->path, strerror(errno));
        }
    }
    if (chmod(ctl->path, (mode_t)cfg->mode) != 0)
        op_warn("control: chmod %s: %s", ctl->path, strerror(errno));
}

static int socket_alive(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return 0;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    int alive = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return alive;
}

static void server_free(uv_handle_t *h)
{
    op_control_t *ctl = h->data;
    free(ctl->path);
    free(ctl);
}

op_control_t *op_control_start(uv_loop_t *loop, const op_config_t *cfg, char *err, size_t errlen)
{
    op_control_t *ctl = op_calloc(1, sizeof *ctl);
    ctl->loop = loop;
    const op_control_conf_t *cc = op_control_config(cfg);
    if (cc->socket != NULL) {
        ctl->path = op_strdup(cc->socket);
    } else {
        ctl->path = op_malloc(strlen(cfg->state_dir) + sizeof "/control.sock");
        sprintf(ctl->path, "%s/control.sock", cfg->state_dir);
    }
    /* Replace a socket left by a daemon that died, never a live one. */
    if (socket_alive(ctl->path)) {
        snprintf(err, errlen, "control: %s is in use: another outpostd runs with this state",
                 ctl->path);
        free(ctl->path);
        free(ctl);
        return NULL;
    }
    unlink(ctl->path);
    uv_pipe_init(loop, &ctl->server, 0);
    ctl->server.data = ctl;
    mode_t old = umask(0177);
    int rc = uv_pipe_bind(&ctl->server, ctl->path);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ctl->server, 16, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "control: cannot listen on %s: %s", ctl->path, uv_strerror(rc));
        uv_close((uv_handle_t *)&ctl->server, server_free);
        return NULL;
    }
    apply_access(ctl, cfg);
    uv_unref((uv_handle_t *)&ctl->server); /* the daemon's lifetime is not ours to hold */
    op_info("control: listening on %s", ctl->path);
    return ctl;
}

void op_control_reload(op_control_t *ctl, const op_config_t *cfg)
{
    apply_access(ctl, cfg);
}

void op_control_stop(op_control_t *ctl)
{
    if (ctl == NULL)
        return;
    unlink(ctl->path);
    uv_close((uv_handle_t *)&ctl->server, server_free);
}
