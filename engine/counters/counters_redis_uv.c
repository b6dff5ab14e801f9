/* hiredis's async API on uv_poll (counters_redis_uv.h says why ours). */
#include "counters/counters_redis_uv.h"

#include "core/mem.h"

#include <stdlib.h>

typedef struct {
    uv_poll_t poll;
    redisAsyncContext *ac;
    int events;
} poll_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
    poll_t *p = h->data;
    int ev = status < 0 ? p->events : events;
    if (p->ac != NULL && (ev & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac != NULL && (ev & UV_WRITABLE)) /* the read may have freed it */
        redisAsyncHandleWrite(p->ac);
}

static void poll_set(poll_t *p, int add, int ev)
{
    int was = p->events;
    p->events = add ? p->events | ev : p->events & ~ev;
    if (p->events == was)
        return;
    if (p->events != 0)
        uv_poll_start(&p->poll, p->events, on_poll);
    else
        uv_poll_stop(&p->poll);
}

static void add_read(void *d) { poll_set(d, 1, UV_READABLE); }
static void del_read(void *d) { poll_set(d, 0, UV_READABLE); }
static void add_write(void *d) { poll_set(d, 1, UV_WRITABLE); }
static void del_write(void *d) { poll_set(d, 0, UV_WRITABLE); }

static void poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void poll_cleanup(void *d)
{
    poll_t *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, poll_closed);
}

int op__redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    poll_t *p = op_calloc(1, sizeof *p);
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return -1;
    }
    uv_unref((uv_handle_t *)&p->poll); /* the daemon's loop ends without waiting for Redis */
    p->poll.data = p;
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = poll_cleanup;
    return 0;
}
