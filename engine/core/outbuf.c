#include "core/outbuf.h"

#include "core/mem.h"

#include <string.h>

void op_outbuf_init(op_outbuf_t *ob, uv_stream_t *stream, op_outbuf_cb on_written, void *data)
{
    memset(ob, 0, sizeof *ob);
    ob->stream = stream;
    ob->on_written = on_written;
    ob->data = data;
}

static struct {
    uv_check_t check;
    uv_idle_t idle;
    int inited, armed, busy;
    int (*run)(void *data);
    void *data;
    op_outbuf_t *held;     /* waiting for the next run */
    op_outbuf_t *writing;  /* waiting for the run under way (busy) */
} barrier;

static void unhold(op_outbuf_t *ob)
{
    if (ob->held_prev == NULL)
        return;
    *ob->held_prev = ob->held_next;
    if (ob->held_next != NULL)
        ob->held_next->held_prev = ob->held_prev;
    ob->held_next = NULL;
    ob->held_prev = NULL;
}

void op_outbuf_free(op_outbuf_t *ob)
{
    unhold(ob);
    free(ob->buf);
    free(ob->wbuf);
    ob->buf = ob->wbuf = NULL;
    ob->len = ob->cap = ob->wcap = 0;
}

char *op_outbuf_reserve(op_outbuf_t *ob, size_t n)
{
    if (ob->cap - ob->len < n) {
        size_t cap = ob->cap ? ob->cap : 4096;
        while (cap - ob->len < n)
            cap *= 2;
        ob->buf = op_realloc(ob->buf, cap);
        ob->cap = cap;
    }
    return ob->buf + ob->len;
}

void op_outbuf_commit(op_outbuf_t *ob, size_t n)
{
    ob->len += n;
}

void op_outbuf_append(op_outbuf_t *ob, const char *data, size_t n)
{
    memcpy(op_outbuf_reserve(ob, n), data, n);
    ob->len += n;
}

static void on_write(uv_write_t *w, int status)
{
    op_outbuf_t *ob = w->data;
    ob->writing = 0;
    ob->on_written(ob, status);
}

static int send_now(op_outbuf_t *ob);
static void hold(op_outbuf_t *ob);

static void on_idle(uv_idle_t *h)
{
    (void)h; /* only there so the poll does not block while writes wait */
}

int op_outbuf_flush(op_outbuf_t *ob)
{
    if (ob->writing || ob->len == 0)
        return 0;
    if (barrier.armed || ob->held_prev != NULL) {
        hold(ob);
        return 0;
    }
    return send_now(ob);
}

/* Lets a list of held buffers go: sent, or dropped with UV_EIO when the
 * writes they waited for failed. */
static void release(op_outbuf_t *list, int rc)
{
    if (list != NULL)
        list->held_prev = &list;
    while (list != NULL) {
        op_outbuf_t *ob = list;
        unhold(ob);
        if (rc < 0)
            ob->len = 0;
        /* on_written as after a write: the connection reads on, or
         * closes when it drains or on error */
        ob->on_written(ob, rc < 0 ? UV_EIO : send_now(ob));
    }
}

/* After the poll phase: the iteration's writes become durable, then what
 * waited for them leaves.  While a run is under way (on another thread),
 * the next waits for it to end (op_outbuf_barrier_done). */
static void on_check(uv_check_t *h)
{
    (void)h;
    uv_idle_stop(&barrier.idle);
    if (!barrier.armed || barrier.busy)
        return;
    barrier.armed = 0;
    int rc = barrier.run ? barrier.run(barrier.data) : 0;
    /* What the callbacks below hold again waits for the next barrier. */
    op_outbuf_t *list = barrier.held;
    barrier.held = NULL;
    if (rc == OP_OUTBUF_PENDING) {
        barrier.busy = 1;
        barrier.writing = list;
        if (list != NULL)
            list->held_prev = &barrier.writing;
        for (op_outbuf_t *ob = list; ob != NULL; ob = ob->held_next)
            ob->held_len = ob->len;
        return;
    }
    release(list, rc);
}

static void hold(op_outbuf_t *ob)
{
    if (ob->held_prev != NULL)
        return;
    ob->held_next = barrier.held;
    if (barrier.held != NULL)
        barrier.held->held_prev = &ob->held_next;
    barrier.held = ob;
    ob->held_prev = &barrier.held;
}

/* Answers added while the run was under way report writes of the next
 * run: only the first held_len bytes leave now, the rest waits. */
static void release_writing(op_outbuf_t *list, int rc)
{
    if (list != NULL)
        list->held_prev = &list;
    while (list != NULL) {
        op_outbuf_t *ob = list;
        unhold(ob);
        size_t rest = ob->len - ob->held_len;
        if (rc < 0) {
            ob->len = 0;
            ob->on_written(ob, UV_EIO);
            continue;
        }
        int st = 0;
        if (rest == 0) {
            st = send_now(ob);
        } else if (!ob->writing) {
            ob->len = ob->held_len;
            st = send_now(ob); /* leaves len 0: the prefix went, or waits in wbuf */
            memmove(ob->buf, ob->buf + ob->held_len, rest);
            ob->len = rest;
            hold(ob);
            barrier.armed = 1; /* the next run lets it go, even with nothing to write */
        } else {
            hold(ob); /* a write is under way: all of it goes with the next run */
            barrier.armed = 1;
        }
        ob->on_written(ob, st);
    }
}

void op_outbuf_barrier_done(int rc)
{
    if (!barrier.busy)
        return;
    barrier.busy = 0;
    op_outbuf_t *list = barrier.writing;
    barrier.writing = NULL;
    release_writing(list, rc);
    if (barrier.armed)
        uv_idle_start(&barrier.idle, on_idle); /* the next run, at once */
}


void op_outbuf_barrier(uv_loop_t *loop, int (*run)(void *data), void *data)
{
    if (loop != NULL && !barrier.inited) {
        uv_check_init(loop, &barrier.check);
        uv_idle_init(loop, &barrier.idle);
        uv_unref((uv_handle_t *)&barrier.check);
        uv_unref((uv_handle_t *)&barrier.idle);
        uv_check_start(&barrier.check, on_check);
        barrier.inited = 1;
    }
    int rc = 0;
    if (run == NULL && barrier.armed && barrier.run != NULL)
        rc = barrier.run(barrier.data); /* the last writes of a store going away */
    if (run == NULL && barrier.inited) {
        /* what still waits leaves now (or, if those writes failed, never);
         * a store going away ended its run first (op_outbuf_barrier_done) */
        op_outbuf_t *list = barrier.held;
        barrier.held = NULL;
        release(list, rc == OP_OUTBUF_PENDING ? 0 : rc);
        uv_close((uv_handle_t *)&barrier.check, NULL);
        uv_close((uv_handle_t *)&barrier.idle, NULL);
        barrier.inited = 0;
    }
    barrier.run = run;
    barrier.data = data;
    barrier.armed = 0;
}

void op_outbuf_barrier_arm(void)
{
    if (!barrier.inited || barrier.armed)
        return;
    barrier.armed = 1;
    uv_idle_start(&barrier.idle, on_idle);
}

static int send_now(op_outbuf_t *ob)
{
    if (ob->writing || ob->len == 0)
        return 0;
    uv_buf_t b = uv_buf_init(ob->buf, (unsigned)ob->len);
    int n = uv_try_write(ob->stream, &b, 1);
    if (n >= 0 && (size_t)n == ob->len) {
        ob->len = 0;
        return 0;
    }
    if (n < 0 && n != UV_EAGAIN)
        return n;
    size_t sent = n > 0 ? (size_t)n : 0, rest = ob->len - sent;
    if (ob->wcap < rest) {
        free(ob->wbuf);
        ob->wcap = rest;
        ob->wbuf = op_malloc(rest);
    }
    memcpy(ob->wbuf, ob->buf + sent, rest);
    ob->len = 0;
    ob->wreq.data = ob;
    uv_buf_t wb = uv_buf_init(ob->wbuf, (unsigned)rest);
    int rc = uv_write(&ob->wreq, ob->stream, &wb, 1, on_write);
    if (rc != 0)
        return rc;
    ob->writing = 1;
    return 0;
}

int op_outbuf_idle(const op_outbuf_t *ob)
{
    return !ob->writing && ob->len == 0;
}
