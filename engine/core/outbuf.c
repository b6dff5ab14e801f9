#include "core/outbuf.h"

#include "core/mem.h"

#include <string.h>

static void covered(op_durable_waiter_t *w);
static void released(op_durable_waiter_t *w, int rc);

void op_outbuf_init(op_outbuf_t *ob, uv_stream_t *stream, op_outbuf_cb on_written, void *data)
{
    memset(ob, 0, sizeof *ob);
    ob->stream = stream;
    ob->on_written = on_written;
    ob->data = data;
    ob->durable.covered = covered;
    ob->durable.released = released;
}

void op_outbuf_free(op_outbuf_t *ob)
{
    op_durable_cancel(&ob->durable);
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

void op_outbuf_need(op_outbuf_t *ob, uint64_t ticket)
{
    if (ticket > ob->ticket)
        ob->ticket = ticket;
}

/* Output waits only for the sync its own answers' writes are in: a
 * connection whose answers counted nothing never waits for the store. */
int op_outbuf_flush(op_outbuf_t *ob)
{
    if (ob->writing || ob->len == 0)
        return 0;
    if (op_durable_waiting(&ob->durable))
        return 0; /* released() sends it */
    int st = op_durable_ticket_state(ob->ticket);
    if (st > 0) {
        op_durable_wait_for(&ob->durable, ob->ticket);
        return 0;
    }
    if (st < 0) { /* its writes failed while the request still ran */
        ob->len = 0;
        ob->ticket = 0;
        return UV_EIO;
    }
    ob->ticket = 0;
    return send_now(ob);
}

#define OUTBUF_OF(w) ((op_outbuf_t *)((char *)(w) - offsetof(op_outbuf_t, durable)))

static void covered(op_durable_waiter_t *w)
{
    op_outbuf_t *ob = OUTBUF_OF(w);
    ob->held_len = ob->len;
}

/* The writes the held output reported are durable (rc 0) or failed.
 * Answers added while the sync was under way report writes of the next
 * one: only the first held_len bytes leave now, the rest waits.  Then
 * on_written as after a write: the connection reads on, or closes when it
 * drains or on error. */
static void released(op_durable_waiter_t *w, int rc)
{
    op_outbuf_t *ob = OUTBUF_OF(w);
    size_t rest = ob->len - ob->held_len;
    if (rc < 0) {
        ob->len = 0;
        ob->ticket = 0;
        ob->on_written(ob, UV_EIO);
        return;
    }
    int st = 0, later = op_durable_ticket_state(ob->ticket);
    if (rest == 0 || later <= 0) {
        st = later < 0 ? UV_EIO : send_now(ob);
        ob->ticket = 0;
    } else if (!ob->writing) {
        ob->len = ob->held_len;
        st = send_now(ob); /* leaves len 0: the prefix went, or waits in wbuf */
        memmove(ob->buf, ob->buf + ob->held_len, rest);
        ob->len = rest;
        op_durable_wait_for(&ob->durable, ob->ticket);
    } else {
        op_durable_wait_for(&ob->durable, ob->ticket); /* a write is under way: all of it goes later */
    }
    ob->on_written(ob, st);
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
