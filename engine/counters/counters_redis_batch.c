/* The Redis backend's batches (counters_redis_store.h): the requests'
 * operations (check, add, reserve, commit, release) that one turn of the
 * loop starts go to Redis as one call of the script (its `batch`
 * operation), which runs them in order and answers each.  Inside
 * redis-server a call costs a fixed part (EVALSHA's arguments and reply,
 * the script's start, TIME, the AOF's MULTI/EXEC) about as large as a
 * reservation's own work (docs/performance.md, "Third round"); a batch
 * pays it once.
 *
 * An operation never waits past the turn that started it: the batch
 * leaves from a check handle, right after the poll phase in which the
 * requests' callbacks ran, or at once when it holds RBATCH_MAX operations;
 * while one is open an idle handle keeps the next poll from blocking (an
 * operation started after the check phase leaves on the next turn's).
 * The batch is one atomic step on the server, so each operation is too;
 * each keeps its own answer and errors (the script runs each in a pcall);
 * a batch that fails (no connection, no answer within command_timeout)
 * fails every operation in it as a call of its own would fail. */
#include "counters/counters_redis_store.h"

#include "core/mem.h"

struct op__rbatch {
    op_rcmd_t cmd;
    op_redis_t *r;
    int64_t clock;         /* the clock argument every operation shares */
    size_t n;
    rop_t *ops[RBATCH_MAX];
};

static void on_idle(uv_idle_t *h)
{
    (void)h; /* only there so the poll does not block while a batch is open */
}

/* The server's answer (or the failure) of the whole batch, to each
 * operation in order, through its own callback. */
static void on_batch(op_rcmd_t *cmd, const redisReply *reply)
{
    op__rbatch_t *b = cmd->data;
    int whole = reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == b->n;
    for (size_t i = 0; i < b->n; i++) {
        rop_t *o = b->ops[i];
        o->cmd.rc = cmd->rc;
        /* an answer that is not one per operation fails each (the
         * callbacks read a non-array reply as EIO) */
        o->cmd.cb(&o->cmd, whole ? reply->element[i] : reply);
    }
    op_rcmd_clear(&b->cmd);
    free(b);
}

void op__redis_batch_flush(op_redis_t *r)
{
    op__rbatch_t *b = r->batch;
    if (b == NULL)
        return;
    r->batch = NULL;
    uv_check_stop(r->batch_check);
    uv_idle_stop(r->batch_idle);
    if (op_rconn_send(r->conn, &b->cmd) < 0) {
        b->cmd.rc = OP_COUNTERS_EIO;
        on_batch(&b->cmd, NULL);
    }
}

static void on_check(uv_check_t *h)
{
    op__redis_batch_flush(h->data);
}

op_rcmd_t *op__redis_batch_add(op_redis_t *r, rop_t *o, int64_t clock)
{
    if (r->batch != NULL && (r->batch->clock != clock || r->batch->n == RBATCH_MAX))
        op__redis_batch_flush(r);
    op__rbatch_t *b = r->batch;
    if (b == NULL) {
        b = op_calloc(1, sizeof *b);
        b->r = r;
        b->clock = clock;
        b->cmd.data = b;
        b->cmd.cb = on_batch;
        op__redis_nkeys(&b->cmd, 0);
        op_rcmd_str(&b->cmd, "batch");
        op_rcmd_int(&b->cmd, clock);
        op_rcmd_str(&b->cmd, r->prefix);
        r->batch = b;
        uv_check_start(r->batch_check, on_check);
        uv_idle_start(r->batch_idle, on_idle);
    }
    b->ops[b->n++] = o;
    return &b->cmd;
}

void op__redis_batch_added(op_redis_t *r)
{
    if (r->batch != NULL && r->batch->n == RBATCH_MAX)
        op__redis_batch_flush(r);
}

void op__redis_batch_init(op_redis_t *r)
{
    r->batch_check = op_calloc(1, sizeof *r->batch_check);
    r->batch_idle = op_calloc(1, sizeof *r->batch_idle);
    uv_check_init(r->loop, r->batch_check);
    uv_idle_init(r->loop, r->batch_idle);
    r->batch_check->data = r->batch_idle->data = r;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

void op__redis_batch_close(op_redis_t *r)
{
    op__rbatch_t *b = r->batch;
    r->batch = NULL;
    if (b != NULL) {
        b->cmd.rc = OP_COUNTERS_ECANCELLED;
        on_batch(&b->cmd, NULL);
    }
    uv_close((uv_handle_t *)r->batch_check, free_handle);
    uv_close((uv_handle_t *)r->batch_idle, free_handle);
}
