/* The session layer (core/session.h) with a line protocol of the test's
 * own, over a real unix socket: answers, back-pressure with messages in
 * flight, the idle sweep, drain and abort, max_connections. */
#include "ctest.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/session.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- the test protocol: "x\n" answers "ok:x\n"; "hold\n" stays in
 * flight until the test answers it; at most two in flight ---- */

typedef struct {
    op_session_t session;
    int held;
} line_session_t;

static int test_open(op_session_t *s)
{
    s->in_max = 4096;
    return 0;
}

static int can_take(const op_session_t *s)
{
    return ((const line_session_t *)s)->held < 2;
}

static ssize_t feed(op_session_t *s, const char *in, size_t len)
{
    const char *nl = memchr(in, '\n', len);
    if (nl == NULL)
        return 0;
    size_t n = (size_t)(nl - in);
    if (n == 4 && memcmp(in, "hold", 4) == 0) {
        ((line_session_t *)s)->held++;
    } else if (n == 3 && memcmp(in, "bad", 3) == 0) {
        return -1;
    } else {
        op_outbuf_append(&s->out, "ok:", 3);
        op_outbuf_append(&s->out, in, n + 1);
    }
    return (ssize_t)(n + 1);
}

static int busy(const op_session_t *s)
{
    return ((const line_session_t *)s)->held > 0;
}

static void abort_inflight(op_session_t *s)
{
    line_session_t *ls = (line_session_t *)s;
    for (; ls->held > 0; ls->held--)
        op_outbuf_append(&s->out, "aborted\n", 8);
}

static int cancelled;

static void cancel(op_session_t *s)
{
    (void)s;
    cancelled++;
}

static void nothing(op_session_t *s)
{
    (void)s;
}

static const op_session_ops_t line_ops = {
    .name = "line",
    .size = sizeof(line_session_t),
    .read_chunk = 64,
    .open = test_open,
    .can_take = can_take,
    .feed = feed,
    .may_read = can_take,
    .busy = busy,
    .abort = abort_inflight,
    .cancel = cancel,
    .free = nothing,
};

/* The test answers one held message, as a request ending on its own. */
static void answer_held(op_session_t *s)
{
    ((line_session_t *)s)->held--;
    op_outbuf_append(&s->out, "ok:held\n", 8);
    op_session_answered(s);
}

/* ---- the rig: a daemon with one unix listener ---- */

typedef struct {
    op_daemon_t d;
    op_config_t cfg;
    op_gen_t gen;
    op_listener_t *l;
    char dir[48], path[64];
} rig_t;

static void on_connection(uv_stream_t *server, int status)
{
    CHECK_INT(status, 0);
    op_session_accept(server->data, &line_ops);
}

static void rig_up(rig_t *r, size_t max_connections)
{
    memset(r, 0, sizeof *r);
    op_log_set_level(OP_LOG_ERR);
    signal(SIGPIPE, SIG_IGN); /* as the daemon: a peer gone is a write error */
    r->d.loop = uv_default_loop();
    r->cfg.max_connections = max_connections;
    r->gen.cfg = &r->cfg;
    r->d.current = &r->gen;
    /* what op_daemon_conn_closed closes once a drain ends */
    uv_signal_init(r->d.loop, &r->d.sighup);
    uv_signal_init(r->d.loop, &r->d.sigterm);
    uv_signal_init(r->d.loop, &r->d.sigint);
    uv_timer_init(r->d.loop, &r->d.sweep);
    strcpy(r->dir, "/tmp/test_session.XXXXXX");
    CHECK(mkdtemp(r->dir) != NULL);
    snprintf(r->path, sizeof r->path, "%s/sock", r->dir);
    op_listener_t *l = op_calloc(1, sizeof *l);
    l->daemon = &r->d;
    l->kind = OP_LISTEN_UNIX;
    l->refs = 1;
    l->name = op_strdup("test");
    l->listen = op_strdup(r->path);
    l->service = op_strdup("svc");
    l->tenant = op_strdup("");
    uv_pipe_init(r->d.loop, &l->h.pipe, 0);
    l->h.handle.data = l;
    CHECK_INT(uv_pipe_bind(&l->h.pipe, r->path), 0);
    CHECK_INT(uv_listen(&l->h.stream, 8, on_connection), 0);
    r->l = l;
}

static void spin(rig_t *r)
{
    for (int i = 0; i < 5; i++) {
        uv_run(r->d.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void rig_down(rig_t *r)
{
    r->d.stopping = 1;
    op_session_abort_all(&r->d);
    uv_close(&r->l->h.handle, NULL);
    spin(r);
    if (!r->d.handles_closed) {
        uv_close((uv_handle_t *)&r->d.sighup, NULL);
        uv_close((uv_handle_t *)&r->d.sigterm, NULL);
        uv_close((uv_handle_t *)&r->d.sigint, NULL);
        uv_close((uv_handle_t *)&r->d.sweep, NULL);
    }
    spin(r);
    op_listener_unref(r->l);
    CHECK_INT(uv_loop_close(r->d.loop), 0);
    unlink(r->path);
    rmdir(r->dir);
}

static int client(rig_t *r)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", r->path);
    CHECK_INT(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    spin(r); /* accepted */
    return fd;
}

static void say(rig_t *r, int fd, const char *text)
{
    CHECK_INT(write(fd, text, strlen(text)), (long long)strlen(text));
    spin(r);
}

/* What the client received so far; "<closed>" appended at EOF. */
static void heard(rig_t *r, int fd, char *buf, size_t cap)
{
    size_t at = 0;
    spin(r);
    for (;;) {
        ssize_t n = recv(fd, buf + at, cap - 1 - at, MSG_DONTWAIT);
        if (n > 0) {
            at += (size_t)n;
            continue;
        }
        if (n == 0)
            at += (size_t)snprintf(buf + at, cap - at, "<closed>");
        break;
    }
    buf[at] = '\0';
}

CTEST(answers_leave_in_order)
{
    rig_t r;
    char got[256];
    rig_up(&r, 10);
    int fd = client(&r);
    CHECK_INT(r.d.nconns, 1);
    say(&r, fd, "a\nb\n");
    heard(&r, fd, got, sizeof got);
    CHECK_STR(got, "ok:a\nok:b\n");
    close(fd);
    spin(&r);
    CHECK_INT(r.d.nconns, 0);
    CHECK(r.d.sessions == NULL);
    rig_down(&r);
}

/* Two in flight: the third message waits in the buffer, reading stops,
 * and an answer lets it through. */
CTEST(back_pressure_with_messages_in_flight)
{
    rig_t r;
    char got[256];
    rig_up(&r, 10);
    int fd = client(&r);
    say(&r, fd, "hold\nhold\nx\n");
    op_session_t *s = r.d.sessions;
    CHECK(s != NULL);
    CHECK_INT(((line_session_t *)s)->held, 2);
    CHECK_INT(s->reading, 0);
    CHECK_INT(s->in_len, 2); /* "x\n" waits */
    heard(&r, fd, got, sizeof got);
    CHECK_STR(got, "");
    answer_held(s);
    heard(&r, fd, got, sizeof got);
    CHECK_STR(got, "ok:held\nok:x\n");
    CHECK_INT(s->reading, 1);
    CHECK_INT(s->in_len, 0);
    close(fd);
    rig_down(&r);
}

CTEST(a_malformed_message_closes_without_reply)
{
    rig_t r;
    char got[256];
    rig_up(&r, 10);
    int fd = client(&r);
    say(&r, fd, "a\nbad\nc\n");
    heard(&r, fd, got, sizeof got);
    CHECK_STR(got, "<closed>");
    CHECK_INT(cancelled, 1);
    CHECK_INT(r.d.nconns, 0);
    close(fd);
    rig_down(&r);
}

/* Only a silent session with nothing in flight is swept. */
CTEST(idle_sweep)
{
    rig_t r;
    char got[256];
    rig_up(&r, 10);
    int idle = client(&r), held = client(&r);
    say(&r, held, "hold\n");
    usleep(30 * 1000);
    uv_update_time(r.d.loop);
    op_session_sweep(&r.d, 0); /* 0: no idle timeout */
    CHECK_INT(r.d.nconns, 2);
    op_session_sweep(&r.d, 10);
    heard(&r, idle, got, sizeof got);
    CHECK_STR(got, "<closed>");
    heard(&r, held, got, sizeof got);
    CHECK_STR(got, "");
    CHECK_INT(r.d.nconns, 1);
    close(idle);
    close(held);
    rig_down(&r);
}

/* Draining closes what is idle at once and the rest once answered; the
 * drain deadline answers what is left with the default. */
CTEST(drain_then_abort)
{
    rig_t r;
    char got[256];
    rig_up(&r, 10);
    int idle = client(&r), one = client(&r), two = client(&r);
    say(&r, one, "hold\n");
    say(&r, two, "hold\n");
    op_session_t *s_one = r.d.sessions->next; /* the list is newest first */
    r.d.stopping = 1;
    op_session_drain_all(&r.d);
    heard(&r, idle, got, sizeof got);
    CHECK_STR(got, "<closed>");
    answer_held(s_one);
    heard(&r, one, got, sizeof got);
    CHECK_STR(got, "ok:held\n<closed>");
    CHECK_INT(r.d.nconns, 1);
    op_session_abort_all(&r.d);
    heard(&r, two, got, sizeof got);
    CHECK_STR(got, "aborted\n<closed>");
    CHECK_INT(r.d.nconns, 0);
    CHECK_INT(r.d.handles_closed, 1); /* the daemon's drain ended */
    close(idle);
    close(one);
    close(two);
    rig_down(&r);
}

CTEST(max_connections_refuses)
{
    rig_t r;
    char got[256];
    rig_up(&r, 1);
    int first = client(&r), second = client(&r);
    heard(&r, second, got, sizeof got);
    CHECK_STR(got, "<closed>");
    say(&r, first, "a\n");
    heard(&r, first, got, sizeof got);
    CHECK_STR(got, "ok:a\n");
    CHECK_INT(r.d.nconns, 1);
    close(first);
    close(second);
    rig_down(&r);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
