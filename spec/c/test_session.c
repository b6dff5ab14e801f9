/* The session layer (core/session.h) with a line protocol of the test's
 * own, over a real unix socket: answers, back-pressure with messages in
 * flight, the idle sweep, drain and abort, max_connections. */
#include "ctest.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/session.h"
#include "lib/netset.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>

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
    op_session_sweep(&r.d, 0, 0); /* 0: no idle timeout */
    CHECK_INT(r.d.nconns, 2);
    op_session_sweep(&r.d, 10, 0);
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

CTEST(listener_max_connections_refuses)
{
    rig_t r;
    char got[256];
    rig_up(&r, 10);
    r.l->max_connections = 1;
    int first = client(&r), second = client(&r);
    heard(&r, second, got, sizeof got);
    CHECK_STR(got, "<closed>");
    CHECK_INT(r.l->nconns, 1);
    close(first);
    spin(&r);
    CHECK_INT(r.l->nconns, 0);
    int third = client(&r);
    say(&r, third, "c\n");
    heard(&r, third, got, sizeof got);
    CHECK_STR(got, "ok:c\n");
    close(second);
    close(third);
    rig_down(&r);
}

/* A slowloris: bytes trickle in, so the session is never idle, but its
 * request never completes; request_timeout closes it.  A session whose
 * requests complete keeps its slot. */
CTEST(request_timeout_closes_a_slowloris)
{
    rig_t r;
    char got[256];
    rig_up(&r, 10);
    int slow = client(&r), fine = client(&r);
    for (int i = 0; i < 4; i++) {
        say(&r, slow, "z");  /* refreshes last_active each time */
        say(&r, fine, "a\n");
        usleep(15 * 1000);
        uv_update_time(r.d.loop);
        op_session_sweep(&r.d, 40, 0); /* idle: 40 ms, never reached */
    }
    heard(&r, slow, got, sizeof got);
    CHECK_STR(got, ""); /* without request_timeout the slowloris stays */
    op_session_sweep(&r.d, 40, 30);
    heard(&r, slow, got, sizeof got);
    CHECK_STR(got, "<closed>");
    heard(&r, fine, got, sizeof got);
    CHECK_STR(got, "ok:a\nok:a\nok:a\nok:a\n");
    CHECK_INT(r.d.nconns, 1);
    close(slow);
    close(fine);
    rig_down(&r);
}

/* ---- TCP: allow_from, max_per_peer, the share kept for unix ---- */

static op_listener_t *tcp_listener(rig_t *r, int *port)
{
    op_listener_t *l = op_calloc(1, sizeof *l);
    l->daemon = &r->d;
    l->kind = OP_LISTEN_TCP;
    l->refs = 1;
    l->name = op_strdup("tcp");
    l->listen = op_strdup("tcp:127.0.0.1:0");
    l->service = op_strdup("svc");
    l->tenant = op_strdup("");
    uv_tcp_init(r->d.loop, &l->h.tcp);
    l->h.handle.data = l;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    CHECK_INT(uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&sa, 0), 0);
    CHECK_INT(uv_listen(&l->h.stream, 4096, on_connection), 0);
    int len = sizeof sa;
    uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return l;
}

static void tcp_down(rig_t *r, op_listener_t *l)
{
    r->d.stopping = 1;
    op_session_abort_all(&r->d);
    uv_close(&l->h.handle, NULL);
    spin(r);
    op_listener_unref(l);
    free(r->d.listeners);
    r->d.listeners = NULL;
    r->d.nlisteners = 0;
    rig_down(r);
}

static int tcp_client(rig_t *r, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    CHECK_INT(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    spin(r);
    return fd;
}

CTEST(allow_from_refuses_a_peer_outside)
{
    rig_t r;
    char got[256], err[128];
    int port;
    rig_up(&r, 10);
    op_listener_t *l = tcp_listener(&r, &port);
    l->allow_from = op_netset_new();
    CHECK_INT(op_netset_add(l->allow_from, "192.0.2.0/24", NULL, err, sizeof err), 0);
    int out = tcp_client(&r, port);
    heard(&r, out, got, sizeof got);
    CHECK_STR(got, "<closed>");
    CHECK_INT(r.d.nconns, 0);
    CHECK_INT(op_netset_add(l->allow_from, "127.0.0.0/8", NULL, err, sizeof err), 0);
    int in = tcp_client(&r, port);
    say(&r, in, "a\n");
    heard(&r, in, got, sizeof got);
    CHECK_STR(got, "ok:a\n");
    close(out);
    close(in);
    tcp_down(&r, l);
}

CTEST(max_per_peer_refuses_the_extra_connection)
{
    rig_t r;
    char got[256];
    int port, fd[3];
    rig_up(&r, 10);
    op_listener_t *l = tcp_listener(&r, &port);
    l->max_per_peer = 2;
    for (int i = 0; i < 3; i++)
        fd[i] = tcp_client(&r, port);
    heard(&r, fd[2], got, sizeof got);
    CHECK_STR(got, "<closed>");
    CHECK_INT(r.d.nconns, 2);
    CHECK_INT(op__listener_peer_count(l, "127.0.0.1"), 2);
    close(fd[0]); /* gives its count back: a new one fits */
    spin(&r);
    CHECK_INT(op__listener_peer_count(l, "127.0.0.1"), 1);
    int again = tcp_client(&r, port);
    say(&r, again, "b\n");
    heard(&r, again, got, sizeof got);
    CHECK_STR(got, "ok:b\n");
    close(fd[1]);
    close(fd[2]);
    close(again);
    tcp_down(&r, l);
}

/* 2,000 idle TCP connections fill what TCP may take; the unix listener
 * keeps its quarter of max_connections and answers at once. */
CTEST(tcp_flood_leaves_the_unix_listener_its_slots)
{
    enum { FLOOD = 2000, MAX = 1024 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * FLOOD + 64 && rl.rlim_max >= 2 * FLOOD + 64) {
        rl.rlim_cur = 2 * FLOOD + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    CHECK(rl.rlim_cur >= 2 * FLOOD + 64);
    if (rl.rlim_cur < 2 * FLOOD + 64)
        return;
    rig_t r;
    char got[256];
    int port;
    rig_up(&r, MAX);
    op_listener_t *l = tcp_listener(&r, &port);
    r.d.listeners = op_calloc(2, sizeof *r.d.listeners);
    r.d.listeners[0] = r.l;
    r.d.listeners[1] = l;
    r.d.nlisteners = 2;
    static int flood[FLOOD];
    for (int i = 0; i < FLOOD; i++) {
        flood[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        CHECK_INT(connect(flood[i], (struct sockaddr *)&sa, sizeof sa), 0);
        if (i % 64 == 0)
            uv_run(r.d.loop, UV_RUN_NOWAIT);
    }
    for (int i = 0; i < 20 && r.d.nconns_tcp < MAX - MAX / 4; i++)
        spin(&r);
    spin(&r);
    CHECK_INT(r.d.nconns_tcp, MAX - MAX / 4);
    CHECK_INT(r.d.nconns, MAX - MAX / 4);
    uint64_t t0 = op_session_now_us();
    int fd = client(&r);
    say(&r, fd, "a\n");
    heard(&r, fd, got, sizeof got);
    uint64_t took = op_session_now_us() - t0;
    CHECK_STR(got, "ok:a\n");
    CHECK(took < 100 * 1000);
    for (int i = 0; i < FLOOD; i++)
        close(flood[i]);
    close(fd);
    tcp_down(&r, l);
}

/* A storm of one kind of line: 10 a second get through, then a count of
 * what was dropped. */
CTEST(log_rate_limit_counts_what_it_suppressed)
{
    char path[] = "/tmp/test_session_log.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    op_log_set_level(OP_LOG_INFO);
    op_log_limit_t lim = {0};
    for (int i = 0; i < 25; i++)
        op_log_limited(&lim, 5000 + (uint64_t)i, OP_LOG_INFO, "reset %d", i);
    op_log_limit_flush(&lim, 5900, OP_LOG_INFO, "reset"); /* same second: nothing yet */
    op_log_limit_flush(&lim, 6001, OP_LOG_INFO, "reset");
    op_log_limited(&lim, 6002, OP_LOG_INFO, "reset again");
    for (int i = 0; i < 12; i++)
        op_log_limited(&lim, 7000, OP_LOG_INFO, "burst");
    op_log_limited(&lim, 8000, OP_LOG_INFO, "later");
    dup2(saved, 2);
    close(saved);
    op_log_set_level(OP_LOG_ERR);
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    buf[n > 0 ? n : 0] = '\0';
    int lines = 0;
    for (char *p = buf; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    CHECK_INT(lines, 10 + 1 + 1 + 10 + 1);
    CHECK(strstr(buf, "reset 9\n") != NULL);
    CHECK(strstr(buf, "reset 10") == NULL);
    CHECK(strstr(buf, "15 more lines like the last \"reset\" suppressed") != NULL);
    CHECK(strstr(buf, "later (and 2 more like it suppressed)") != NULL);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
