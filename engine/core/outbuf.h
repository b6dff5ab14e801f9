/* Buffered writing to a libuv stream: answers collect in a buffer and
 * leave with one uv_try_write; what the kernel does not take at once goes
 * out with uv_write from a second buffer, while new answers keep
 * collecting in the first.  Shared by the policy and milter connections.
 * An answer that reports counter writes carries their durability ticket
 * (durable.h): a flush holds the output until those writes are durable.
 * Output without a ticket never waits for the store. */
#ifndef OP_OUTBUF_H
#define OP_OUTBUF_H

#include "core/durable.h"

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
    op_durable_waiter_t durable; /* waiting for the barrier */
    size_t held_len;   /* of len, what the barrier's sync under way covers */
    uint64_t ticket;   /* the latest durability ticket of the answers in buf (0 none) */
};

void op_outbuf_init(op_outbuf_t *ob, uv_stream_t *stream, op_outbuf_cb on_written, void *data);
void op_outbuf_free(op_outbuf_t *ob);

/* Room for n more bytes at buf + len; add them with op_outbuf_commit. */
char *op_outbuf_reserve(op_outbuf_t *ob, size_t n);
void op_outbuf_commit(op_outbuf_t *ob, size_t n);
void op_outbuf_append(op_outbuf_t *ob, const char *data, size_t n);
/* The answer about to be added reports writes of this durability ticket
 * (op_durable_ticket): the output waits until they are durable. */
void op_outbuf_need(op_outbuf_t *ob, uint64_t ticket);

/* Sends what collected (or holds it while the barrier is armed).  Returns
 * 0 (sent, held, or a write is under way and on_written will be called),
 * or a libuv error: the caller closes.  Held output that the barrier
 * drops (the writes failed) reaches on_written as UV_EIO. */
int op_outbuf_flush(op_outbuf_t *ob);

/* Nothing collected and nothing being written. */
int op_outbuf_idle(const op_outbuf_t *ob);

#endif
