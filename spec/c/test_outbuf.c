/* outbuf and the durability barrier (core/durable.h): held answers leave
 * only once the writes they report are durable, over a real socket pair. */
#include "ctest.h"
#include "ctest_loop.h"
#include "core/outbuf.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int run_answer, runs, written_status, written_calls;

static int run(void *data)
{
    (void)data;
    runs++;
    return run_answer;
}

static void on_written(op_outbuf_t *ob, int status)
{
    (void)ob;
    written_calls++;
    written_status = status;
}


/* What the peer received so far. */
static void received(int fd, char *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = '\0';
}

typedef struct {
    uv_loop_t loop;
    uv_pipe_t pipe;
    op_outbuf_t ob;
    int peer;
} rig_t;

static void rig_up(rig_t *r)
{
    int fds[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    uv_loop_init(&r->loop);
    uv_pipe_init(&r->loop, &r->pipe, 0);
    CHECK_INT(uv_pipe_open(&r->pipe, fds[0]), 0);
    r->peer = fds[1];
    op_outbuf_init(&r->ob, (uv_stream_t *)&r->pipe, on_written, NULL);
    op_durable_register(&r->loop, run, NULL);
}

static void rig_down(rig_t *r)
{
    op_outbuf_free(&r->ob);
    op_durable_register(NULL, NULL, NULL);
    uv_close((uv_handle_t *)&r->pipe, NULL);
    uv_run(&r->loop, UV_RUN_NOWAIT);
    CHECK_INT(uv_loop_close(&r->loop), 0);
    close(r->peer);
}

CTEST(answers_wait_for_the_barrier)
{
    rig_t r;
    char got[64];
    rig_up(&r);
    op_outbuf_append(&r.ob, "A", 1);
    CHECK_INT(op_outbuf_flush(&r.ob), 0); /* not armed: leaves at once */
    received(r.peer, got, sizeof got);
    CHECK_STR(got, "A");
    op_durable_arm();
    op_outbuf_need(&r.ob, op_durable_ticket());
    op_outbuf_append(&r.ob, "B", 1);
    CHECK_INT(op_outbuf_flush(&r.ob), 0);
    received(r.peer, got, sizeof got);
    CHECK_STR(got, ""); /* held */
    run_answer = 0;
    ctest_turn(&r.loop);
    CHECK_INT(runs, 1);
    received(r.peer, got, sizeof got);
    CHECK_STR(got, "B");
    rig_down(&r);
}

/* A run under way (on another thread): answers added meanwhile report the
 * next run's writes, so only what was held when it started leaves. */
CTEST(a_run_under_way_lets_go_only_what_it_covers)
{
    rig_t r;
    char got[64];
    rig_up(&r);
    op_durable_arm();
    op_outbuf_need(&r.ob, op_durable_ticket());
    op_outbuf_append(&r.ob, "C", 1);
    op_outbuf_flush(&r.ob);
    run_answer = OP_DURABLE_PENDING;
    ctest_turn(&r.loop);
    CHECK_INT(runs, 1);
    op_durable_arm(); /* the next request's write */
    op_outbuf_need(&r.ob, op_durable_ticket());
    op_outbuf_append(&r.ob, "D", 1);
    op_outbuf_flush(&r.ob);
    ctest_turn(&r.loop);
    CHECK_INT(runs, 1); /* no second run while the first is under way */
    received(r.peer, got, sizeof got);
    CHECK_STR(got, "");
    op_durable_done(0);
    received(r.peer, got, sizeof got);
    CHECK_STR(got, "C");
    run_answer = 0;
    ctest_turn(&r.loop);
    CHECK_INT(runs, 2);
    received(r.peer, got, sizeof got);
    CHECK_STR(got, "D");
    rig_down(&r);
}

CTEST(a_failed_run_drops_the_held_answers)
{
    rig_t r;
    char got[64];
    rig_up(&r);
    op_durable_arm();
    op_outbuf_need(&r.ob, op_durable_ticket());
    op_outbuf_append(&r.ob, "E", 1);
    op_outbuf_flush(&r.ob);
    run_answer = OP_DURABLE_PENDING;
    ctest_turn(&r.loop);
    op_durable_done(-5);
    CHECK_INT(written_calls, 1);
    CHECK_INT(written_status, UV_EIO); /* the connection closes */
    received(r.peer, got, sizeof got);
    CHECK_STR(got, "");
    CHECK(op_outbuf_idle(&r.ob));
    rig_down(&r);
}

/* Issue 14: while the store writes (or is stuck writing), an answer that
 * reports no counter write leaves at once; one that does waits for its
 * own sync, and is dropped if that sync fails even after its request
 * moved on (a ticket of a failed sync never leaves). */
CTEST(answers_without_a_ticket_never_wait)
{
    rig_t r, other;
    char got[64];
    rig_up(&r);
    op_durable_arm();
    op_outbuf_need(&r.ob, op_durable_ticket());
    op_outbuf_append(&r.ob, "F", 1);
    op_outbuf_flush(&r.ob);
    run_answer = OP_DURABLE_PENDING;
    ctest_turn(&r.loop); /* the sync starts and does not end */
    int fds[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    uv_pipe_init(&r.loop, &other.pipe, 0);
    CHECK_INT(uv_pipe_open(&other.pipe, fds[0]), 0);
    op_outbuf_init(&other.ob, (uv_stream_t *)&other.pipe, on_written, NULL);
    op_durable_arm(); /* another request counted meanwhile */
    op_outbuf_append(&other.ob, "G", 1); /* this one did not */
    CHECK_INT(op_outbuf_flush(&other.ob), 0);
    received(fds[1], got, sizeof got);
    CHECK_STR(got, "G");
    received(r.peer, got, sizeof got);
    CHECK_STR(got, ""); /* F waits */
    uint64_t t = op_durable_ticket(); /* a write in the sync that will fail */
    op_durable_done(-5);
    CHECK_INT(written_status, UV_EIO);
    CHECK_INT(op_durable_ticket_state(t), 1);
    run_answer = -5;
    ctest_turn(&r.loop);
    CHECK_INT(op_durable_ticket_state(t), -1);
    op_outbuf_need(&other.ob, t);
    op_outbuf_append(&other.ob, "H", 1);
    CHECK_INT(op_outbuf_flush(&other.ob), UV_EIO); /* never leaves */
    op_outbuf_free(&other.ob);
    uv_close((uv_handle_t *)&other.pipe, NULL);
    close(fds[1]);
    rig_down(&r);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
