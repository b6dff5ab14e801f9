/* The counters handle (counters.h): which backend keeps the counts, and
 * the calls that reach it (backend.h).  One indirect call per operation;
 * nothing here allocates after open.
 *
 * Today every limit lives in one backend, RocksDB.  When a limit can name
 * its own (`limit NAME { backend = ... }`, issue 16), the handle will hold
 * one store per backend in use and a table from limit name to store, built
 * at configure: check, add, reserve and the operator's functions go to the
 * limit's store; commit, release and expire, which name no limit, go to
 * every store and add up (a call of its own per store, joined before the
 * caller's cb fires). */
#include "counters/backend.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdlib.h>

struct op_counters {
    const op_counters_backend_t *be;
    void *store;
};

op_counters_t *op_counters_wrap(const op_counters_backend_t *be, void *store)
{
    op_counters_t *c = op_calloc(1, sizeof *c);
    c->be = be;
    c->store = store;
    return c;
}

/* counters { backend }: one backend for every limit. */
static const op_counters_backend_t *backend_of(const op_counters_conf_t *cfg)
{
    return cfg->backend == OP_COUNTERS_BACKEND_REDIS ? &op_counters_redis : &op_counters_rocksdb;
}

static op_counters_t *open_backend(uv_loop_t *loop, const op_counters_conf_t *cfg, int private_state,
                                   char *err, size_t errlen)
{
    const op_counters_backend_t *be = backend_of(cfg);
    void *store = be->open(loop, cfg, private_state, err, errlen);
    return store != NULL ? op_counters_wrap(be, store) : NULL;
}

op_counters_t *op_counters_open(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err, size_t errlen)
{
    return open_backend(loop, cfg, 0, err, errlen);
}

op_counters_t *op_counters_open_private(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err,
                                        size_t errlen)
{
    return open_backend(loop, cfg, 1, err, errlen);
}

void op_counters_configure(op_counters_t *c, const op_counters_conf_t *cfg)
{
    c->be->configure(c->store, cfg);
}

void op_counters_close(op_counters_t *c)
{
    if (c == NULL)
        return;
    c->be->close(c->store);
    free(c);
}

int op_counters_may_wait(const op_counters_t *c)
{
    return c->be->may_wait;
}

const char *op_counters_backend_name(const op_counters_t *c)
{
    return c->be->name;
}

int op_counters_has_limit(const op_counters_t *c, const char *limit)
{
    return c->be->has_limit(c->store, limit);
}

int64_t op_counters_now(op_counters_t *c)
{
    return c->be->now(c->store);
}

/* A backend that cannot wait must not say it started: its caller may have
 * put the call on the stack. */
static int answered(const op_counters_t *c, int rc)
{
    OP_ASSERT(rc != OP_COUNTERS_STARTED || c->be->may_wait);
    return rc;
}

int op_counters_check(op_counters_t *c, const char *limit, const char *subject, int64_t n,
                      int64_t dir_max, op_counters_call_t *call)
{
    return answered(c, c->be->check(c->store, limit, subject, n, dir_max, call));
}

int op_counters_add(op_counters_t *c, const char *limit, const char *subject, int64_t n,
                    int64_t dir_max, op_counters_call_t *call)
{
    return answered(c, c->be->add(c->store, limit, subject, n, dir_max, call));
}

int op_counters_reserve(op_counters_t *c, const char *limit, const char *subject,
                        const char *instance, int64_t n, int64_t dir_max, op_counters_call_t *call)
{
    return answered(c, c->be->reserve(c->store, limit, subject, instance, n, dir_max, call));
}

int op_counters_commit(op_counters_t *c, const char *instance, int64_t keep,
                       op_counters_call_t *call)
{
    return answered(c, c->be->commit(c->store, instance, keep, call));
}

int op_counters_release(op_counters_t *c, const char *instance, op_counters_call_t *call)
{
    return answered(c, c->be->release(c->store, instance, call));
}

int64_t op_counters_expire(op_counters_t *c)
{
    return c->be->expire(c->store);
}

int op_counters_show(op_counters_t *c, const char *limit, const char *subject,
                     op_counters_answer_t *a, int64_t *reserved)
{
    return c->be->show(c->store, limit, subject, a, reserved);
}

int op_counters_reset(op_counters_t *c, const char *limit, const char *subject)
{
    return c->be->reset(c->store, limit, subject);
}

int op_counters_override_set(op_counters_t *c, const char *limit, const char *subject,
                             int64_t max, int64_t until, const char *who, const char *reason,
                             char *err, size_t errlen)
{
    return c->be->override_set(c->store, limit, subject, max, until, who, reason, err, errlen);
}

int op_counters_override_clear(op_counters_t *c, const char *limit, const char *subject)
{
    return c->be->override_clear(c->store, limit, subject);
}

int op_counters_override_list(op_counters_t *c, const char *limit,
                              int (*fn)(const op_counters_override_t *o, void *data), void *data)
{
    return c->be->override_list(c->store, limit, fn, data);
}

int op_counters_top(op_counters_t *c, const char *limit, op_counters_top_t *out, size_t n)
{
    return c->be->top(c->store, limit, out, n);
}

uint64_t op_counters_disk_bytes(op_counters_t *c)
{
    return c->be->disk_bytes(c->store);
}

const char *op_counters_health(op_counters_t *c)
{
    return c->be->health != NULL ? c->be->health(c->store) : NULL;
}

static int collect_override(const op_counters_override_t *o, void *data)
{
    op_counters_admin_t *a = data;
    a->overrides = op_realloc(a->overrides, (a->noverrides + 1) * sizeof *a->overrides);
    a->overrides[a->noverrides++] = *o;
    return 0;
}

/* A backend without the call form answers at once through its functions. */
static int admin_at_once(op_counters_t *c, op_counters_admin_t *a)
{
    switch (a->op) {
    case OP_ADMIN_SHOW:
        return op_counters_show(c, a->limit, a->subject, &a->answer, &a->reserved);
    case OP_ADMIN_RESET:
        return op_counters_reset(c, a->limit, a->subject);
    case OP_ADMIN_OVERRIDE_SET:
        return op_counters_override_set(c, a->limit, a->subject, a->max, a->until, a->who,
                                        a->reason, a->err, sizeof a->err);
    case OP_ADMIN_OVERRIDE_CLEAR:
        return op_counters_override_clear(c, a->limit, a->subject);
    case OP_ADMIN_OVERRIDE_LIST:
        return op_counters_override_list(c, a->limit[0] != '\0' ? a->limit : NULL,
                                         collect_override, a);
    case OP_ADMIN_TOP: {
        a->top = op_calloc(a->n > 0 ? a->n : 1, sizeof *a->top);
        int got = op_counters_top(c, a->limit, a->top, a->n);
        if (got < 0)
            return got;
        a->ntop = (size_t)got;
        return 0;
    }
    }
    return OP_COUNTERS_EINVAL;
}

int op_counters_admin(op_counters_t *c, op_counters_admin_t *a)
{
    a->rc = 0;
    a->err[0] = '\0';
    a->top = NULL;
    a->ntop = 0;
    a->overrides = NULL;
    a->noverrides = 0;
    int rc = c->be->admin != NULL ? c->be->admin(c->store, a) : admin_at_once(c, a);
    OP_ASSERT(rc != OP_COUNTERS_STARTED || c->be->admin != NULL);
    if (rc != OP_COUNTERS_STARTED)
        a->rc = rc < 0 ? rc : 0;
    return rc;
}

void op_counters_admin_free(op_counters_admin_t *a)
{
    free(a->top);
    free(a->overrides);
    a->top = NULL;
    a->overrides = NULL;
}

const char *op_counters_source_name(op_max_source_t s)
{
    return s == OP_MAX_OPERATOR ? "operator" : s == OP_MAX_DIRECTORY ? "directory" : "default";
}
