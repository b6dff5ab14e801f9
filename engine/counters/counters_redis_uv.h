/* hiredis's async API on a libuv loop, for the Redis backend's connection
 * (counters_redis_conn.c).  Debian's hiredis 0.14 ships an adapter whose
 * poll callback drops libuv's errors, so a refused connect would never be
 * reported; this one handles the events asked for then, and hiredis finds
 * the error itself.  Knows nothing of commands or servers. */
#ifndef OP_COUNTERS_REDIS_UV_H
#define OP_COUNTERS_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Hands ac's events to a uv_poll on its socket (unref'd: the daemon's
 * loop ends without waiting for Redis); hiredis frees it through its
 * cleanup hook.  0, or -1 when the poll cannot be made. */
int op__redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
