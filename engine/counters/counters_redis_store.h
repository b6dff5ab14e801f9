/* Internal to counters_redis*.c: the Redis backend's state, an operation
 * in flight, and the helpers that build a call of the script
 * (counters_redis.lua) and read its answer.  The requests' operations are
 * in counters_redis.c, the operator's in counters_redis_admin.c. */
#ifndef OP_COUNTERS_REDIS_STORE_H
#define OP_COUNTERS_REDIS_STORE_H

#include "counters/backend.h"
#include "counters/counters_redis.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    int64_t max, max_override, resolution, nbuckets;
    int on_error;
} rlimit_t;

typedef struct op__rbatch op__rbatch_t;

typedef struct {
    uv_loop_t *loop;
    op_rconn_t *conn;
    uv_timer_t *sweep;
    op__rbatch_t *batch; /* the requests' operations of this loop turn */
    uv_check_t *batch_check;
    uv_idle_t *batch_idle;
    char *prefix;
    rlimit_t *limits;
    size_t nlimits;
    double reservation_timeout;
    op_counters_clock_fn clock; /* NULL: the server's clock */
    void *clock_data;
    int64_t accepted_uncounted;
} op_redis_t;

/* An operation in flight: a request's call or an operator's. */
typedef enum { R_CHECK, R_ADD, R_RESERVE, R_COMMIT, R_RELEASE, R_EXPIRE, R_ADMIN } rkind_t;

typedef struct {
    op_rcmd_t cmd;
    op_redis_t *r;
    rkind_t kind;
    op_counters_call_t *call;
    op_counters_admin_t *admin;
    rlimit_t lim; /* a copy: a reload may replace the limits meanwhile */
    char subject[OP_COUNTERS_MAX_KEY + 1];
} rop_t;

const rlimit_t *op__redis_find_limit(const op_redis_t *r, const char *name);
/* The time the backend counts on: the test clock, else this host's. */
int64_t op__redis_now(const op_redis_t *r);
/* Arguments of a call: the key P + tag + a[:b]; "limit\tsubject"; the
 * operation, the clock (0: the server's) and the prefix, which every call
 * starts its ARGV with. */
void op__redis_key_arg(op_rcmd_t *cmd, const op_redis_t *r, const char *tag, const char *a,
                       const char *b);
void op__redis_pair_arg(op_rcmd_t *cmd, const char *limit, const char *subject);
void op__redis_argv_head(op_rcmd_t *cmd, const op_redis_t *r, const char *op);
rop_t *op__redis_rop_new(op_redis_t *r, rkind_t kind);
void op__redis_rop_free(rop_t *o);
/* Batches (counters_redis_batch.c): a request's operation joins this
 * turn's batch, whose command it gets to write its arguments into (after
 * its mode letter, as the script's `batch` reads them), then says it is
 * done (a full batch leaves at once).  o->cmd.cb answers it, with its own
 * element of the batch's answer.  clock: the clock argument (a batch has
 * one; another value starts another batch). */
/* At most 8 operations per call: a call holds redis-server for the whole
 * batch and its answers leave together, so a long batch makes every
 * request in it wait for the last (at 64 per call, make bench saw 30
 * requests per call and ~0.9 ms per call); 8 keeps most of the saving
 * per operation (callgrind: 20% at 8, 25% at 64; docs/performance.md). */
#define RBATCH_MAX 8
op_rcmd_t *op__redis_batch_add(op_redis_t *r, rop_t *o, int64_t clock);
void op__redis_batch_added(op_redis_t *r);
/* Sends the open batch now (before a call that must follow it). */
void op__redis_batch_flush(op_redis_t *r);
void op__redis_batch_init(op_redis_t *r);
/* Fails the open batch's operations (ECANCELLED) and closes the handles. */
void op__redis_batch_close(op_redis_t *r);
/* The operator's call (backend.h's admin). */
int op__redis_admin(void *store, op_counters_admin_t *a);

/* The first argument after the SHA: how many of the rest are keys. */
static inline void op__redis_nkeys(op_rcmd_t *cmd, int n)
{
    op_rcmd_int(cmd, n);
}

static inline int op__redis_key_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= OP_COUNTERS_MAX_KEY;
}

static inline int64_t op__redis_int_of(const redisReply *e)
{
    if (e == NULL)
        return 0;
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

static inline const char *op__redis_str_of(const redisReply *e)
{
    return e != NULL && e->type == REDIS_REPLY_STRING ? e->str : "";
}

#endif
