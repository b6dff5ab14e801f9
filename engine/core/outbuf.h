/* Buffered writing to a libuv stream: answers collect in a buffer and
 * leave with one uv_try_write; what the kernel does not take at once goes
 * out with uv_write from a second buffer, while new answers keep
 * collecting in the first.  Shared by the policy and milter connections. */
#ifndef OP_OUTBUF_H
#define OP_OUTBUF_H

#include <stddef.h>
#include <uv.h>

typedef struct op_outbuf op_outbuf_t;

/* A uv_write finished: status 0, or a libuv error (the caller closes). */
typedef void (*op_outbuf_cb)(op_outbuf_t *ob, int status);

struct op_outbuf {
    uv_stream_t *stream;
    char *buf;         /* collecting */
    size_t len, cap;
    char *wbuf;        /* libuv's while writing */
    size_t wcap;
    uv_write_t wreq;
    int writing;
    op_outbuf_cb on_written;
    void *data;
    op_outbuf_t *held_next, **held_prev; /* waiting for the barrier */
    size_t held_len;   /* of len, what the barrier's run under way covers */
};

void op_outbuf_init(op_outbuf_t *ob, uv_stream_t *stream, op_outbuf_cb on_written, void *data);
void op_outbuf_free(op_outbuf_t *ob);

/* Room for n more bytes at buf + len; add them with op_outbuf_commit. */
char *op_outbuf_reserve(op_outbuf_t *ob, size_t n);
void op_outbuf_commit(op_outbuf_t *ob, size_t n);
void op_outbuf_append(op_outbuf_t *ob, const char *data, size_t n);

/* Sends what collected.  Returns 0 (sent, or a write is under way and
 * on_written will be called), or a libuv error: the caller closes. */
int op_outbuf_flush(op_outbuf_t *ob);

/* Nothing collected and nothing being written. */
int op_outbuf_idle(const op_outbuf_t *ob);

/* The barrier: answers must not leave before the writes they report are
 * durable (the counters' group commit, docs/limits.md).  A store with
 * writes not yet made durable arms the barrier; every flush then holds its
 * output, and once per loop iteration (after the poll phase) `run` makes
 * the writes durable and the held output leaves together.  When run fails
 * (< 0), the held output is dropped and each buffer's on_written gets
 * UV_EIO: its connection closes without the answers.  One barrier per
 * process; op_outbuf_barrier(NULL, NULL, NULL) removes it. */
void op_outbuf_barrier(uv_loop_t *loop, int (*run)(void *data), void *data);
void op_outbuf_barrier_arm(void);
/* run may also answer OP_OUTBUF_PENDING: the writes are under way (on
 * another thread); the held output waits until op_outbuf_barrier_done
 * reports how they ended (0 or < 0), and no other run starts meanwhile. */
#define OP_OUTBUF_PENDING 1
void op_outbuf_barrier_done(int rc);

#endif
