/* The Redis backend (backend.h): counters shared by every node that names
 * the same Redis (OP7).  Each operation runs in one server-side script
 * (counters_redis.lua, built into the binary) on the connection of
 * counters_redis_conn.c, with the other requests' operations of the same
 * loop turn in one call of it (counters_redis_batch.c); the script reads
 * the window and writes in one atomic step on the server, so nodes never admit more than the maximum
 * between them, and an answer is given only once the server acknowledged
 * the write.  Misuse (an unknown limit, a bad argument) is answered at
 * once; everything else answers OP_COUNTERS_STARTED and completes from
 * the loop.  While the connection is down a request's operation fails at
 * once (EIO: `unavailable`), or, for a limit with on_error = accept, is
 * admitted uncounted with a warning. */
#include "counters/counters_redis_store.h"

#include "core/log.h"
#include "core/mem.h"

#include "counters_redis_lua.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const rlimit_t *op__redis_find_limit(const op_redis_t *r, const char *name)
{
    for (size_t i = 0; i < r->nlimits; i++)
        if (strcmp(r->limits[i].name, name) == 0)
            return &r->limits[i];
    return NULL;
}

int64_t op__redis_now(const op_redis_t *r)
{
    return r->clock != NULL ? r->clock(r->clock_data) : (int64_t)time(NULL);
}

static int64_t clock_arg(const op_redis_t *r)
{
    return r->clock != NULL ? r->clock(r->clock_data) : 0;
}

/* P + tag + parts joined by ':', written straight into the command */
void op__redis_key_arg(op_rcmd_t *cmd, const op_redis_t *r, const char *tag, const char *a,
                       const char *b)
{
    size_t lp = strlen(r->prefix), lt = strlen(tag), la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    size_t n = lp + lt + (a ? la + (b ? 1 : 0) : 0) + lb;
    char *p = op_rcmd_arg_space(cmd, n);
    memcpy(p, r->prefix, lp);
    memcpy(p += lp, tag, lt);
    p += lt;
    if (a != NULL) {
        memcpy(p, a, la);
        p += la;
        if (b != NULL)
            *p++ = ':';
    }
    if (b != NULL)
        memcpy(p, b, lb);
}

void op__redis_pair_arg(op_rcmd_t *cmd, const char *limit, const char *subject)
{
    size_t a = strlen(limit), b = strlen(subject);
    char *k = op_rcmd_arg_space(cmd, a + b + 1);
    memcpy(k, limit, a);
    k[a] = '\t';
    memcpy(k + a + 1, subject, b);
}

void op__redis_argv_head(op_rcmd_t *cmd, const op_redis_t *r, const char *op)
{
    op_rcmd_str(cmd, op);
    op_rcmd_int(cmd, clock_arg(r));
    op_rcmd_str(cmd, r->prefix);
}

rop_t *op__redis_rop_new(op_redis_t *r, rkind_t kind)
{
    rop_t *o = op_calloc(1, sizeof *o);
    o->r = r;
    o->kind = kind;
    o->cmd.data = o;
    return o;
}

void op__redis_rop_free(rop_t *o)
{
    op_rcmd_clear(&o->cmd);
    free(o);
}

/* ---- what requests wait for ---- */

/* on_error = accept: admitted without counting, and said so. */
static void accept_uncounted(op_redis_t *r, const rlimit_t *l, const char *subject,
                             op_counters_answer_t *a)
{
    memset(a, 0, sizeof *a);
    a->ok = 1;
    a->max = l->max;
    a->remaining = l->max;
    a->next_free = op__redis_now(r);
    a->window = l->nbuckets * l->resolution;
    a->resolution = l->resolution;
    a->source = OP_MAX_DEFAULT;
    r->accepted_uncounted++;
    op_warn("counters: redis unavailable: limit %s (on_error = accept) admits %s UNCOUNTED "
            "(%lld so far)", l->name, subject, (long long)r->accepted_uncounted);
}

static void on_count(op_rcmd_t *cmd, const redisReply *reply)
{
    rop_t *o = cmd->data;
    op_counters_call_t *call = o->call;
    op_counters_answer_t *a = &call->answer;
    int rc = cmd->rc;
    if (reply != NULL && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 6))
        rc = OP_COUNTERS_EIO;
    if (reply != NULL && rc == 0) {
        memset(a, 0, sizeof *a);
        a->ok = op__redis_int_of(reply->element[0]) != 0;
        a->max = op__redis_int_of(reply->element[1]);
        a->used = op__redis_int_of(reply->element[2]);
        a->remaining = op__redis_int_of(reply->element[3]);
        a->next_free = op__redis_int_of(reply->element[4]);
        int64_t src = op__redis_int_of(reply->element[5]);
        a->source = src == 2 ? OP_MAX_OPERATOR : src == 1 ? OP_MAX_DIRECTORY : OP_MAX_DEFAULT;
        a->window = o->lim.nbuckets * o->lim.resolution;
        a->resolution = o->lim.resolution;
    } else if (rc == OP_COUNTERS_EIO && o->lim.on_error == OP_LIMIT_ON_ERROR_ACCEPT) {
        accept_uncounted(o->r, &o->lim, o->subject, a);
        rc = 0;
    } else if (rc == 0) {
        rc = OP_COUNTERS_EIO;
    }
    call->rc = rc;
    op__redis_rop_free(o);
    call->cb(call);
}

/* The connection is down (backing off): the call fails now, as it would
 * have without a batch, or, for on_error = accept, is admitted. */
static int refuse(op_redis_t *r, const rlimit_t *l, const char *subject,
                  op_counters_call_t *call)
{
    if (l != NULL && l->on_error == OP_LIMIT_ON_ERROR_ACCEPT) {
        accept_uncounted(r, l, subject, &call->answer);
        return 0;
    }
    return OP_COUNTERS_EIO;
}

static int start_count(op_redis_t *r, rkind_t kind, const char *limit, const char *subject,
                       const char *instance, int64_t n, int64_t dir_max, op_counters_call_t *call)
{
    const rlimit_t *l = op__redis_find_limit(r, limit);
    if (l == NULL)
        return OP_COUNTERS_ENOLIMIT;
    if (!op__redis_key_ok(subject) || n < 0 || (instance != NULL && !op__redis_key_ok(instance)))
        return OP_COUNTERS_EINVAL;
    if (!op_rconn_up(r->conn))
        return refuse(r, l, subject, call);
    rop_t *o = op__redis_rop_new(r, kind);
    o->call = call;
    o->lim = *l;
    snprintf(o->subject, sizeof o->subject, "%s", subject);
    o->cmd.cb = on_count;
    /* the script's batch reads: mode, limit, subject, resolution,
     * buckets, max, max_override, dir_max, n [, instance, timeout, margin] */
    op_rcmd_t *c = op__redis_batch_add(r, o, clock_arg(r));
    op_rcmd_str(c, kind == R_CHECK ? "c" : kind == R_ADD ? "a" : "r");
    op_rcmd_str(c, limit);
    op_rcmd_str(c, subject);
    op_rcmd_int(c, l->resolution);
    op_rcmd_int(c, l->nbuckets);
    op_rcmd_int(c, l->max);
    op_rcmd_int(c, l->max_override);
    op_rcmd_int(c, dir_max);
    op_rcmd_int(c, n);
    if (kind == R_RESERVE) {
        int64_t timeout = (int64_t)(r->reservation_timeout + 0.999);
        op_rcmd_str(c, instance);
        op_rcmd_int(c, timeout);
        /* the record outlives its deadline by this much (a safety net: the
         * sweep settles it at its deadline), as the key of an older version
         * did (twice the timeout and an hour after it was made) */
        op_rcmd_int(c, timeout + 3600);
    }
    op__redis_batch_added(r);
    return OP_COUNTERS_STARTED;
}

static int r_check(void *s, const char *limit, const char *subject, int64_t n, int64_t dir_max,
                   op_counters_call_t *call)
{
    return start_count(s, R_CHECK, limit, subject, NULL, n, dir_max, call);
}

static int r_add(void *s, const char *limit, const char *subject, int64_t n, int64_t dir_max,
                 op_counters_call_t *call)
{
    return start_count(s, R_ADD, limit, subject, NULL, n, dir_max, call);
}

static int r_reserve(void *s, const char *limit, const char *subject, const char *instance,
                     int64_t n, int64_t dir_max, op_counters_call_t *call)
{
    return start_count(s, R_RESERVE, limit, subject, instance, n, dir_max, call);
}

static void on_settle(op_rcmd_t *cmd, const redisReply *reply)
{
    rop_t *o = cmd->data;
    op_counters_call_t *call = o->call;
    int rc = cmd->rc;
    if (reply != NULL && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2))
        rc = OP_COUNTERS_EIO;
    if (reply != NULL && rc == 0) {
        call->committed = o->kind == R_COMMIT ? op__redis_int_of(reply->element[0]) : 0;
        call->released = op__redis_int_of(reply->element[1]);
    }
    call->rc = rc;
    op__redis_rop_free(o);
    call->cb(call);
}

static int start_settle(op_redis_t *r, rkind_t kind, const char *instance, int64_t keep,
                        op_counters_call_t *call)
{
    call->committed = call->released = 0;
    if (!op__redis_key_ok(instance))
        return OP_COUNTERS_EINVAL;
    if (!op_rconn_up(r->conn))
        return OP_COUNTERS_EIO;
    rop_t *o = op__redis_rop_new(r, kind);
    o->call = call;
    o->cmd.cb = on_settle;
    op_rcmd_t *c = op__redis_batch_add(r, o, clock_arg(r));
    op_rcmd_str(c, "s");
    op_rcmd_str(c, instance);
    op_rcmd_int(c, keep);
    op__redis_batch_added(r);
    return OP_COUNTERS_STARTED;
}

static int r_commit(void *s, const char *instance, int64_t keep, op_counters_call_t *call)
{
    return start_settle(s, R_COMMIT, instance, keep, call);
}

static int r_release(void *s, const char *instance, op_counters_call_t *call)
{
    return start_settle(s, R_RELEASE, instance, 0, call);
}

/* ---- the reservation timeout: every node sweeps; the script settles each
 * due instance once, whichever node gets there first ---- */

static void on_expire(op_rcmd_t *cmd, const redisReply *reply)
{
    rop_t *o = cmd->data;
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 3 < reply->elements; i += 4)
            op_info("counters: released %lld of %s for %s (instance %s): not committed within "
                    "reservation_timeout", (long long)op__redis_int_of(reply->element[i + 3]),
                    op__redis_str_of(reply->element[i + 1]), op__redis_str_of(reply->element[i + 2]),
                    op__redis_str_of(reply->element[i]));
    }
    op__redis_rop_free(o);
}

static int64_t r_expire(void *s)
{
    op_redis_t *r = s;
    if (!op_rconn_up(r->conn))
        return 0;
    op__redis_batch_flush(r); /* after what this turn's requests did */
    rop_t *o = op__redis_rop_new(r, R_EXPIRE);
    op_rcmd_t *c = &o->cmd;
    c->cb = on_expire;
    op__redis_nkeys(c, 1);
    op__redis_key_arg(c, r, "rd", NULL, NULL);
    op__redis_argv_head(c, r, "expire");
    op_rcmd_int(c, 1000);
    if (op_rconn_send(r->conn, c) < 0)
        op__redis_rop_free(o);
    return 0; /* released later, on the server; logged then */
}

static void on_sweep(uv_timer_t *t)
{
    r_expire(t->data);
}

/* The synchronous operator functions cannot wait for the server: they
 * answer EIO (control_cmd.c uses r_admin, the call form). */
static int r_show(void *s, const char *limit, const char *subject, op_counters_answer_t *a,
                  int64_t *reserved)
{
    (void)s, (void)limit, (void)subject, (void)a;
    *reserved = 0;
    return OP_COUNTERS_EIO;
}

static int r_reset(void *s, const char *limit, const char *subject)
{
    (void)s, (void)limit, (void)subject;
    return OP_COUNTERS_EIO;
}

static int r_override_set(void *s, const char *limit, const char *subject, int64_t max,
                          int64_t until, const char *who, const char *reason, char *err,
                          size_t errlen)
{
    (void)s, (void)limit, (void)subject, (void)max, (void)until, (void)who, (void)reason;
    snprintf(err, errlen, "the redis backend answers the operator's calls through op_counters_admin");
    return OP_COUNTERS_EIO;
}

static int r_override_clear(void *s, const char *limit, const char *subject)
{
    (void)s, (void)limit, (void)subject;
    return OP_COUNTERS_EIO;
}

static int r_override_list(void *s, const char *limit,
                           int (*fn)(const op_counters_override_t *o, void *data), void *data)
{
    (void)s, (void)limit, (void)fn, (void)data;
    return OP_COUNTERS_EIO;
}

static int r_top(void *s, const char *limit, op_counters_top_t *out, size_t n)
{
    (void)s, (void)limit, (void)out, (void)n;
    return OP_COUNTERS_EIO;
}

static uint64_t r_disk_bytes(void *s)
{
    (void)s;
    return 0;
}

static const char *r_health(void *s)
{
    op_redis_t *r = s;
    return op_rconn_health(r->conn);
}

/* ---- life ---- */

static void set_limits(op_redis_t *r, const op_counters_conf_t *cfg)
{
    for (size_t i = 0; i < r->nlimits; i++)
        free(r->limits[i].name);
    free(r->limits);
    r->limits = op_calloc(cfg->nlimits ? cfg->nlimits : 1, sizeof *r->limits);
    r->nlimits = 0;
    for (size_t i = 0; i < cfg->nlimits; i++) {
        const op_limit_conf_t *lc = &cfg->limits[i];
        rlimit_t *l = &r->limits[r->nlimits++];
        l->name = op_strdup(lc->name);
        l->max = (int64_t)lc->max;
        l->max_override = (int64_t)(lc->max_override ? lc->max_override : lc->max);
        l->resolution = (int64_t)lc->resolution;
        l->nbuckets = (int64_t)(lc->window / lc->resolution);
        l->on_error = lc->on_error;
    }
    r->reservation_timeout = cfg->reservation_timeout > 0 ? cfg->reservation_timeout : 1800;
}

static void *r_open(uv_loop_t *loop, const op_counters_conf_t *cfg, int private_state, char *err,
                    size_t errlen)
{
    static const op_redis_conf_t defaults = {0};
    const op_redis_conf_t *rc = cfg->redis != NULL ? cfg->redis : &defaults;
    op_rconn_t *conn = op_rconn_new(loop, rc, counters_redis_lua, err, errlen);
    if (conn == NULL)
        return NULL;
    op_redis_t *r = op_calloc(1, sizeof *r);
    r->loop = loop;
    r->conn = conn;
    const char *prefix = rc->prefix != NULL ? rc->prefix : "outpost:";
    if (private_state == OP_COUNTERS_PRIVATE) {
        /* `outpostd test`: keys of its own, which expire with their windows */
        char p[512];
        snprintf(p, sizeof p, "%stest-%d-%lld:", prefix, (int)getpid(), (long long)time(NULL));
        r->prefix = op_strdup(p);
    } else {
        r->prefix = op_strdup(prefix);
    }
    set_limits(r, cfg);
    r->sweep = op_calloc(1, sizeof *r->sweep);
    uv_timer_init(loop, r->sweep);
    r->sweep->data = r;
    if (private_state != OP_COUNTERS_READ_ONLY) /* a reader settles nothing */
        uv_timer_start(r->sweep, on_sweep, 1000, 1000);
    uv_unref((uv_handle_t *)r->sweep);
    op__redis_batch_init(r);
    return r;
}

static void r_configure(void *s, const op_counters_conf_t *cfg)
{
    set_limits(s, cfg);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void r_close(void *s)
{
    op_redis_t *r = s;
    op__redis_batch_close(r);
    op_rconn_free(r->conn);
    uv_close((uv_handle_t *)r->sweep, free_handle);
    for (size_t i = 0; i < r->nlimits; i++)
        free(r->limits[i].name);
    free(r->limits);
    free(r->prefix);
    free(r);
}

static int64_t r_now(void *s)
{
    op_redis_t *r = s;
    return op__redis_now(r);
}

static int r_has_limit(void *s, const char *limit)
{
    return op__redis_find_limit(s, limit) != NULL;
}

void op_redis_set_clock(void *store, op_counters_clock_fn fn, void *data)
{
    op_redis_t *r = store;
    r->clock = fn;
    r->clock_data = data;
}

const op_counters_backend_t op_counters_redis = {
    .name = "redis",
    .may_wait = 1,
    .open = r_open,
    .configure = r_configure,
    .close = r_close,
    .now = r_now,
    .has_limit = r_has_limit,
    .check = r_check,
    .add = r_add,
    .reserve = r_reserve,
    .commit = r_commit,
    .release = r_release,
    .expire = r_expire,
    .show = r_show,
    .reset = r_reset,
    .override_set = r_override_set,
    .override_clear = r_override_clear,
    .override_list = r_override_list,
    .top = r_top,
    .disk_bytes = r_disk_bytes,
    .health = r_health,
    .admin = op__redis_admin,
};
