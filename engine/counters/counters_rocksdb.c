/* The RocksDB store (counters_rocksdb.h) as a counter backend
 * (backend.h).  It never waits: every operation answers 0 or an error at
 * once, so the calls it gets may live on their callers' stacks. */
#include "counters/backend.h"
#include "counters/counters_rocksdb.h"

static void *rocks_open(uv_loop_t *loop, const op_counters_conf_t *cfg, int private_state, char *err,
                        size_t errlen)
{
    if (private_state == OP_COUNTERS_READ_ONLY)
        return op_rocks_open_read_only(cfg, err, errlen);
    return private_state ? op_rocks_open_private(loop, cfg, err, errlen)
                         : op_rocks_open(loop, cfg, err, errlen);
}

static void rocks_configure(void *s, const op_counters_conf_t *cfg)
{
    op_rocks_configure(s, cfg);
}

static void rocks_close(void *s)
{
    op_rocks_close(s);
}

static int64_t rocks_now(void *s)
{
    return op_rocks_now(s);
}

static int rocks_has_limit(void *s, const char *limit)
{
    return op_rocks_has_limit(s, limit);
}

static int rocks_check(void *s, const char *limit, const char *subject, int64_t n,
                       int64_t dir_max, op_counters_call_t *call)
{
    return op_rocks_check(s, limit, subject, n, dir_max, &call->answer);
}

static int rocks_add(void *s, const char *limit, const char *subject, int64_t n, int64_t dir_max,
                     op_counters_call_t *call)
{
    return op_rocks_add(s, limit, subject, n, dir_max, &call->answer);
}

static int rocks_reserve(void *s, const char *limit, const char *subject, const char *instance,
                         int64_t n, int64_t dir_max, op_counters_call_t *call)
{
    return op_rocks_reserve(s, limit, subject, instance, n, dir_max, &call->answer);
}

static int rocks_commit(void *s, const char *instance, int64_t keep, op_counters_call_t *call)
{
    return op_rocks_commit(s, instance, keep, &call->committed, &call->released);
}

static int rocks_release(void *s, const char *instance, op_counters_call_t *call)
{
    return op_rocks_release(s, instance, &call->released);
}

static int64_t rocks_expire(void *s)
{
    return op_rocks_expire(s);
}

static int rocks_show(void *s, const char *limit, const char *subject, op_counters_answer_t *a,
                      int64_t *reserved)
{
    *reserved = 0;
    int rc = op_rocks_check(s, limit, subject, 1, -1, a);
    return rc < 0 ? rc : op_rocks_reserved(s, limit, subject, reserved);
}

static int rocks_reset(void *s, const char *limit, const char *subject)
{
    return op_rocks_reset(s, limit, subject);
}

static int rocks_override_set(void *s, const char *limit, const char *subject, int64_t max,
                              int64_t until, const char *who, const char *reason, char *err,
                              size_t errlen)
{
    return op_rocks_override_set(s, limit, subject, max, until, who, reason, err, errlen);
}

static int rocks_override_clear(void *s, const char *limit, const char *subject)
{
    return op_rocks_override_clear(s, limit, subject);
}

static int rocks_override_list(void *s, const char *limit,
                               int (*fn)(const op_counters_override_t *o, void *data), void *data)
{
    return op_rocks_override_list(s, limit, fn, data);
}

static int rocks_top(void *s, const char *limit, op_counters_top_t *out, size_t n)
{
    return op_rocks_top(s, limit, out, n);
}

static uint64_t rocks_disk_bytes(void *s)
{
    return op_rocks_disk_bytes(s);
}

static const char *rocks_health(void *s)
{
    return op_rocks_health(s);
}

const op_counters_backend_t op_counters_rocksdb = {
    .name = "rocksdb",
    .may_wait = 0,
    .open = rocks_open,
    .configure = rocks_configure,
    .close = rocks_close,
    .now = rocks_now,
    .has_limit = rocks_has_limit,
    .check = rocks_check,
    .add = rocks_add,
    .reserve = rocks_reserve,
    .commit = rocks_commit,
    .release = rocks_release,
    .expire = rocks_expire,
    .show = rocks_show,
    .reset = rocks_reset,
    .override_set = rocks_override_set,
    .override_clear = rocks_override_clear,
    .override_list = rocks_override_list,
    .top = rocks_top,
    .disk_bytes = rocks_disk_bytes,
    .health = rocks_health,
};
