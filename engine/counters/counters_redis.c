/* The Redis backend (backend.h): counters shared by every node that names
 * the same Redis (OP7).  Each operation is one call of one server-side
 * script (counters_redis.lua, built into the binary) on the connection of
 * counters_redis_conn.c; the script reads the window and writes in one
 * atomic step on the server, so nodes never admit more than the maximum
 * between them, and an answer is given only once the server acknowledged
 * the write.  Misuse (an unknown limit, a bad argument) is answered at
 * once; everything else answers OP_COUNTERS_STARTED and completes from
 * the loop.  While the connection is down a request's operation fails at
 * once (EIO: `unavailable`), or, for a limit with on_error = accept, is
 * admitted uncounted with a warning. */
#include "counters/backend.h"
#include "counters/counters_redis.h"

#include "core/log.h"
#include "core/mem.h"

#include "counters_redis_lua.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *name;
    int64_t max, max_override, resolution, nbuckets;
    int on_error;
} rlimit_t;

typedef struct {
    uv_loop_t *loop;
    op_rconn_t *conn;
    uv_timer_t *sweep;
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

static const rlimit_t *find_limit(const op_redis_t *r, const char *name)
{
    for (size_t i = 0; i < r->nlimits; i++)
        if (strcmp(r->limits[i].name, name) == 0)
            return &r->limits[i];
    return NULL;
}

static int key_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= OP_COUNTERS_MAX_KEY;
}

static int64_t clock_arg(const op_redis_t *r)
{
    return r->clock != NULL ? r->clock(r->clock_data) : 0;
}

/* P + tag + parts joined by ':' */
static void key_arg(op_rcmd_t *cmd, const op_redis_t *r, const char *tag, const char *a,
                    const char *b)
{
    size_t n = strlen(r->prefix) + strlen(tag) + (a ? strlen(a) + 1 : 0) + (b ? strlen(b) + 1 : 0);
    char *k = op_malloc(n + 1);
    char *p = k;
    p = stpcpy(p, r->prefix);
    p = stpcpy(p, tag);
    if (a != NULL)
        p = stpcpy(stpcpy(p, a), b != NULL ? ":" : "");
    if (b != NULL)
        p = stpcpy(p, b);
    op_rcmd_arg(cmd, k, (size_t)(p - k));
    free(k);
}

static void pair_arg(op_rcmd_t *cmd, const char *limit, const char *subject)
{
    size_t a = strlen(limit), b = strlen(subject);
    char *k = op_malloc(a + b + 2);
    memcpy(k, limit, a);
    k[a] = '\t';
    memcpy(k + a + 1, subject, b + 1);
    op_rcmd_arg(cmd, k, a + b + 1);
    free(k);
}

static void head(op_rcmd_t *cmd, int nkeys)
{
    op_rcmd_int(cmd, nkeys);
}

static void argv_head(op_rcmd_t *cmd, const op_redis_t *r, const char *op)
{
    op_rcmd_str(cmd, op);
    op_rcmd_int(cmd, clock_arg(r));
    op_rcmd_str(cmd, r->prefix);
}

static rop_t *rop_new(op_redis_t *r, rkind_t kind)
{
    rop_t *o = op_calloc(1, sizeof *o);
    o->r = r;
    o->kind = kind;
    o->cmd.data = o;
    return o;
}

static void rop_free(rop_t *o)
{
    op_rcmd_clear(&o->cmd);
    free(o);
}

static int64_t int_of(const redisReply *e)
{
    if (e == NULL)
        return 0;
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

static const char *str_of(const redisReply *e)
{
    return e != NULL && e->type == REDIS_REPLY_STRING ? e->str : "";
}

/* ---- what requests wait for ---- */

static int64_t local_now(void)
{
    return (int64_t)time(NULL);
}

/* on_error = accept: admitted without counting, and said so. */
static void accept_uncounted(op_redis_t *r, const rlimit_t *l, const char *subject,
                             op_counters_answer_t *a)
{
    memset(a, 0, sizeof *a);
    a->ok = 1;
    a->max = l->max;
    a->remaining = l->max;
    a->next_free = r->clock ? r->clock(r->clock_data) : local_now();
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
        a->ok = int_of(reply->element[0]) != 0;
        a->max = int_of(reply->element[1]);
        a->used = int_of(reply->element[2]);
        a->remaining = int_of(reply->element[3]);
        a->next_free = int_of(reply->element[4]);
        int64_t src = int_of(reply->element[5]);
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
    rop_free(o);
    call->cb(call);
}

static int start_count(op_redis_t *r, rkind_t kind, const char *limit, const char *subject,
                       const char *instance, int64_t n, int64_t dir_max, op_counters_call_t *call)
{
    const rlimit_t *l = find_limit(r, limit);
    if (l == NULL)
        return OP_COUNTERS_ENOLIMIT;
    if (!key_ok(subject) || n < 0 || (instance != NULL && !key_ok(instance)))
        return OP_COUNTERS_EINVAL;
    rop_t *o = rop_new(r, kind);
    o->call = call;
    o->lim = *l;
    snprintf(o->subject, sizeof o->subject, "%s", subject);
    op_rcmd_t *c = &o->cmd;
    c->cb = on_count;
    head(c, kind == R_RESERVE ? 5 : 3);
    key_arg(c, r, "w:", limit, subject);
    key_arg(c, r, "o:", limit, subject);
    key_arg(c, r, "t:", limit, NULL);
    if (kind == R_RESERVE) {
        key_arg(c, r, "r:", instance, NULL);
        key_arg(c, r, "rd", NULL, NULL);
    }
    argv_head(c, r, "count");
    op_rcmd_str(c, kind == R_CHECK ? "c" : kind == R_ADD ? "a" : "r");
    op_rcmd_int(c, l->resolution);
    op_rcmd_int(c, l->nbuckets);
    op_rcmd_int(c, l->max);
    op_rcmd_int(c, l->max_override);
    op_rcmd_int(c, dir_max);
    op_rcmd_int(c, n);
    op_rcmd_str(c, subject);
    if (kind == R_RESERVE) {
        int64_t timeout = (int64_t)(r->reservation_timeout + 0.999);
        op_rcmd_str(c, instance);
        pair_arg(c, limit, subject);
        op_rcmd_int(c, timeout);
        op_rcmd_int(c, 2 * timeout + 3600); /* the record outlives its deadline: the sweep settles it */
    }
    int rc = op_rconn_send(r->conn, c);
    if (rc == 0)
        return OP_COUNTERS_STARTED;
    rop_free(o);
    if (l->on_error == OP_LIMIT_ON_ERROR_ACCEPT) {
        accept_uncounted(r, l, subject, &call->answer);
        return 0;
    }
    return rc;
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
        call->committed = o->kind == R_COMMIT ? int_of(reply->element[0]) : 0;
        call->released = int_of(reply->element[1]);
    }
    call->rc = rc;
    rop_free(o);
    call->cb(call);
}

static int start_settle(op_redis_t *r, rkind_t kind, const char *instance, int64_t keep,
                        op_counters_call_t *call)
{
    call->committed = call->released = 0;
    if (!key_ok(instance))
        return OP_COUNTERS_EINVAL;
    rop_t *o = rop_new(r, kind);
    o->call = call;
    op_rcmd_t *c = &o->cmd;
    c->cb = on_settle;
    head(c, 2);
    key_arg(c, r, "r:", instance, NULL);
    key_arg(c, r, "rd", NULL, NULL);
    argv_head(c, r, "settle");
    op_rcmd_int(c, keep);
    op_rcmd_str(c, instance);
    int rc = op_rconn_send(r->conn, c);
    if (rc == 0)
        return OP_COUNTERS_STARTED;
    rop_free(o);
    return rc;
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
                    "reservation_timeout", (long long)int_of(reply->element[i + 3]),
                    str_of(reply->element[i + 1]), str_of(reply->element[i + 2]),
                    str_of(reply->element[i]));
    }
    rop_free(o);
}

static int64_t r_expire(void *s)
{
    op_redis_t *r = s;
    if (!op_rconn_up(r->conn))
        return 0;
    rop_t *o = rop_new(r, R_EXPIRE);
    op_rcmd_t *c = &o->cmd;
    c->cb = on_expire;
    head(c, 1);
    key_arg(c, r, "rd", NULL, NULL);
    argv_head(c, r, "expire");
    op_rcmd_int(c, 1000);
    if (op_rconn_send(r->conn, c) < 0)
        rop_free(o);
    return 0; /* released later, on the server; logged then */
}

static void on_sweep(uv_timer_t *t)
{
    r_expire(t->data);
}

/* ---- the operator's ---- */

static void admin_done(rop_t *o, int rc)
{
    op_counters_admin_t *a = o->admin;
    a->rc = rc;
    rop_free(o);
    a->cb(a);
}

static void on_admin(op_rcmd_t *cmd, const redisReply *reply)
{
    rop_t *o = cmd->data;
    op_counters_admin_t *a = o->admin;
    if (reply == NULL) {
        admin_done(o, cmd->rc < 0 ? cmd->rc : OP_COUNTERS_EIO);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(a->err, sizeof a->err, "the counters store failed (see the daemon's log)");
        admin_done(o, OP_COUNTERS_EIO);
        return;
    }
    switch (a->op) {
    case OP_ADMIN_SHOW: {
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 7)
            break;
        op_counters_answer_t *ans = &a->answer;
        memset(ans, 0, sizeof *ans);
        ans->ok = int_of(reply->element[0]) != 0;
        ans->max = int_of(reply->element[1]);
        ans->used = int_of(reply->element[2]);
        ans->remaining = int_of(reply->element[3]);
        ans->next_free = int_of(reply->element[4]);
        int64_t src = int_of(reply->element[5]);
        ans->source = src == 2 ? OP_MAX_OPERATOR : OP_MAX_DEFAULT;
        ans->window = o->lim.nbuckets * o->lim.resolution;
        ans->resolution = o->lim.resolution;
        a->reserved = int_of(reply->element[6]);
        admin_done(o, 0);
        return;
    }
    case OP_ADMIN_RESET:
        op_notice("counters: %s %s reset", a->limit, a->subject);
        admin_done(o, 0);
        return;
    case OP_ADMIN_OVERRIDE_SET:
        op_notice("counters: override %s %s max=%lld until=%lld by %s: %s", a->limit, a->subject,
                  (long long)a->max, (long long)a->until, a->who, a->reason);
        admin_done(o, 0);
        return;
    case OP_ADMIN_OVERRIDE_CLEAR:
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
            admin_done(o, OP_COUNTERS_ENOTFOUND);
            return;
        }
        op_notice("counters: override %s %s cleared (was max=%lld by %s: %s)", a->limit,
                  a->subject, (long long)int_of(reply->element[0]), str_of(reply->element[1]),
                  str_of(reply->element[2]));
        admin_done(o, 0);
        return;
    case OP_ADMIN_OVERRIDE_LIST: {
        if (reply->type != REDIS_REPLY_ARRAY)
            break;
        int64_t now = o->r->clock ? o->r->clock(o->r->clock_data) : local_now();
        size_t n = reply->elements / 7;
        a->overrides = op_calloc(n ? n : 1, sizeof *a->overrides);
        for (size_t i = 0; i < n; i++) {
            redisReply **e = reply->element + 7 * i;
            op_counters_override_t *ov = &a->overrides[a->noverrides++];
            snprintf(ov->limit, sizeof ov->limit, "%s", str_of(e[0]));
            snprintf(ov->subject, sizeof ov->subject, "%s", str_of(e[1]));
            ov->max = int_of(e[2]);
            ov->until = int_of(e[3]);
            ov->set_at = int_of(e[4]);
            snprintf(ov->who, sizeof ov->who, "%s", str_of(e[5]));
            snprintf(ov->reason, sizeof ov->reason, "%s", str_of(e[6]));
            ov->expired = ov->until != 0 && ov->until <= now;
        }
        admin_done(o, 0);
        return;
    }
    case OP_ADMIN_TOP: {
        if (reply->type != REDIS_REPLY_ARRAY)
            break;
        size_t n = reply->elements / 3;
        a->top = op_calloc(n ? n : 1, sizeof *a->top);
        for (size_t i = 0; i < n && i < a->n; i++) {
            op_counters_top_t *t = &a->top[a->ntop++];
            snprintf(t->subject, sizeof t->subject, "%s", str_of(reply->element[3 * i]));
            t->used = int_of(reply->element[3 * i + 1]);
            t->max = int_of(reply->element[3 * i + 2]);
        }
        admin_done(o, 0);
        return;
    }
    }
    admin_done(o, OP_COUNTERS_EIO);
}

/* Audit text: tabs and line ends would break the control protocol's lines. */
static void clean(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            *s = ' ';
}

static int r_admin(void *s, op_counters_admin_t *a)
{
    op_redis_t *r = s;
    const rlimit_t *l = NULL;
    if (a->op != OP_ADMIN_OVERRIDE_LIST || a->limit[0] != '\0') {
        if ((l = find_limit(r, a->limit)) == NULL) {
            snprintf(a->err, sizeof a->err, "no limit '%.400s' in the configuration", a->limit);
            return OP_COUNTERS_ENOLIMIT;
        }
    }
    int with_subject = a->op != OP_ADMIN_OVERRIDE_LIST && a->op != OP_ADMIN_TOP;
    if (with_subject && !key_ok(a->subject)) {
        snprintf(a->err, sizeof a->err, "bad subject or maximum");
        return OP_COUNTERS_EINVAL;
    }
    int64_t now = r->clock ? r->clock(r->clock_data) : local_now();
    if (a->op == OP_ADMIN_OVERRIDE_SET) {
        if (a->max < 0) {
            snprintf(a->err, sizeof a->err, "bad subject or maximum");
            return OP_COUNTERS_EINVAL;
        }
        if (a->max > l->max_override) {
            snprintf(a->err, sizeof a->err, "%lld is above max_override %lld of limit %.300s (raise "
                     "max_override in the configuration first)", (long long)a->max,
                     (long long)l->max_override, l->name);
            return OP_COUNTERS_EINVAL;
        }
        if (a->until != 0 && a->until <= now) {
            snprintf(a->err, sizeof a->err, "--until is in the past");
            return OP_COUNTERS_EINVAL;
        }
        if (a->reason[0] == '\0') {
            snprintf(a->err, sizeof a->err, "a reason is required");
            return OP_COUNTERS_EINVAL;
        }
        clean(a->who);
        clean(a->reason);
    }
    if (a->op == OP_ADMIN_TOP && (a->n < 1 || a->n > 1000))
        return OP_COUNTERS_EINVAL;
    rop_t *o = rop_new(r, R_ADMIN);
    o->admin = a;
    if (l != NULL)
        o->lim = *l;
    op_rcmd_t *c = &o->cmd;
    c->cb = on_admin;
    switch (a->op) {
    case OP_ADMIN_SHOW:
        head(c, 2);
        key_arg(c, r, "w:", a->limit, a->subject);
        key_arg(c, r, "o:", a->limit, a->subject);
        argv_head(c, r, "show");
        op_rcmd_int(c, l->resolution);
        op_rcmd_int(c, l->nbuckets);
        op_rcmd_int(c, l->max);
        op_rcmd_int(c, l->max_override);
        break;
    case OP_ADMIN_RESET:
        head(c, 2);
        key_arg(c, r, "w:", a->limit, a->subject);
        key_arg(c, r, "t:", a->limit, NULL);
        argv_head(c, r, "reset");
        op_rcmd_int(c, l->resolution * l->nbuckets);
        op_rcmd_str(c, a->subject);
        break;
    case OP_ADMIN_OVERRIDE_SET:
        head(c, 2);
        key_arg(c, r, "o:", a->limit, a->subject);
        key_arg(c, r, "ol", NULL, NULL);
        argv_head(c, r, "oset");
        op_rcmd_int(c, a->max);
        op_rcmd_int(c, a->until);
        op_rcmd_str(c, a->who);
        op_rcmd_str(c, a->reason);
        pair_arg(c, a->limit, a->subject);
        break;
    case OP_ADMIN_OVERRIDE_CLEAR:
        head(c, 2);
        key_arg(c, r, "o:", a->limit, a->subject);
        key_arg(c, r, "ol", NULL, NULL);
        argv_head(c, r, "oclear");
        pair_arg(c, a->limit, a->subject);
        break;
    case OP_ADMIN_OVERRIDE_LIST:
        head(c, 1);
        key_arg(c, r, "ol", NULL, NULL);
        argv_head(c, r, "olist");
        op_rcmd_str(c, a->limit);
        break;
    case OP_ADMIN_TOP:
        head(c, 1);
        key_arg(c, r, "t:", a->limit, NULL);
        argv_head(c, r, "top");
        op_rcmd_int(c, l->resolution);
        op_rcmd_int(c, l->nbuckets);
        op_rcmd_int(c, l->max);
        op_rcmd_int(c, (int64_t)a->n);
        op_rcmd_str(c, a->limit);
        break;
    }
    int rc = op_rconn_send(r->conn, c);
    if (rc == 0)
        return OP_COUNTERS_STARTED;
    rop_free(o);
    snprintf(a->err, sizeof a->err, "the counters store failed (see the daemon's log)");
    return rc;
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
    return r->clock ? r->clock(r->clock_data) : local_now();
}

static int r_has_limit(void *s, const char *limit)
{
    return find_limit(s, limit) != NULL;
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
    .admin = r_admin,
};
