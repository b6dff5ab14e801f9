/* The Redis backend's operator calls (backend.h's admin): show, reset,
 * the overrides with their audit trail, and top, each one call of the
 * script (counters_redis.lua), answered from the loop like a request's
 * (control/ waits for the callback). */
#include "counters/counters_redis_store.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>

static void admin_done(rop_t *o, int rc)
{
    op_counters_admin_t *a = o->admin;
    a->rc = rc;
    op__redis_rop_free(o);
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
        ans->ok = op__redis_int_of(reply->element[0]) != 0;
        ans->max = op__redis_int_of(reply->element[1]);
        ans->used = op__redis_int_of(reply->element[2]);
        ans->remaining = op__redis_int_of(reply->element[3]);
        ans->next_free = op__redis_int_of(reply->element[4]);
        int64_t src = op__redis_int_of(reply->element[5]);
        ans->source = src == 2 ? OP_MAX_OPERATOR : OP_MAX_DEFAULT;
        ans->window = o->lim.nbuckets * o->lim.resolution;
        ans->resolution = o->lim.resolution;
        a->reserved = op__redis_int_of(reply->element[6]);
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
                  a->subject, (long long)op__redis_int_of(reply->element[0]), op__redis_str_of(reply->element[1]),
                  op__redis_str_of(reply->element[2]));
        admin_done(o, 0);
        return;
    case OP_ADMIN_OVERRIDE_LIST: {
        if (reply->type != REDIS_REPLY_ARRAY)
            break;
        int64_t now = op__redis_now(o->r);
        size_t n = reply->elements / 7;
        a->overrides = op_calloc(n ? n : 1, sizeof *a->overrides);
        for (size_t i = 0; i < n; i++) {
            redisReply **e = reply->element + 7 * i;
            op_counters_override_t *ov = &a->overrides[a->noverrides++];
            snprintf(ov->limit, sizeof ov->limit, "%s", op__redis_str_of(e[0]));
            snprintf(ov->subject, sizeof ov->subject, "%s", op__redis_str_of(e[1]));
            ov->max = op__redis_int_of(e[2]);
            ov->until = op__redis_int_of(e[3]);
            ov->set_at = op__redis_int_of(e[4]);
            snprintf(ov->who, sizeof ov->who, "%s", op__redis_str_of(e[5]));
            snprintf(ov->reason, sizeof ov->reason, "%s", op__redis_str_of(e[6]));
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
            snprintf(t->subject, sizeof t->subject, "%s", op__redis_str_of(reply->element[3 * i]));
            t->used = op__redis_int_of(reply->element[3 * i + 1]);
            t->max = op__redis_int_of(reply->element[3 * i + 2]);
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

int op__redis_admin(void *s, op_counters_admin_t *a)
{
    op_redis_t *r = s;
    const rlimit_t *l = NULL;
    if (a->op != OP_ADMIN_OVERRIDE_LIST || a->limit[0] != '\0') {
        if ((l = op__redis_find_limit(r, a->limit)) == NULL) {
            snprintf(a->err, sizeof a->err, "no limit '%.400s' in the configuration", a->limit);
            return OP_COUNTERS_ENOLIMIT;
        }
    }
    int with_subject = a->op != OP_ADMIN_OVERRIDE_LIST && a->op != OP_ADMIN_TOP;
    if (with_subject && !op__redis_key_ok(a->subject)) {
        snprintf(a->err, sizeof a->err, "bad subject or maximum");
        return OP_COUNTERS_EINVAL;
    }
    int64_t now = op__redis_now(r);
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
    rop_t *o = op__redis_rop_new(r, R_ADMIN);
    o->admin = a;
    if (l != NULL)
        o->lim = *l;
    op_rcmd_t *c = &o->cmd;
    c->cb = on_admin;
    switch (a->op) {
    case OP_ADMIN_SHOW:
        op__redis_nkeys(c, 2);
        op__redis_key_arg(c, r, "w:", a->limit, a->subject);
        op__redis_key_arg(c, r, "o:", a->limit, a->subject);
        op__redis_argv_head(c, r, "show");
        op_rcmd_int(c, l->resolution);
        op_rcmd_int(c, l->nbuckets);
        op_rcmd_int(c, l->max);
        op_rcmd_int(c, l->max_override);
        break;
    case OP_ADMIN_RESET:
        op__redis_nkeys(c, 2);
        op__redis_key_arg(c, r, "w:", a->limit, a->subject);
        op__redis_key_arg(c, r, "t:", a->limit, NULL);
        op__redis_argv_head(c, r, "reset");
        op_rcmd_int(c, l->resolution * l->nbuckets);
        op_rcmd_str(c, a->subject);
        break;
    case OP_ADMIN_OVERRIDE_SET:
        op__redis_nkeys(c, 2);
        op__redis_key_arg(c, r, "o:", a->limit, a->subject);
        op__redis_key_arg(c, r, "ol", NULL, NULL);
        op__redis_argv_head(c, r, "oset");
        op_rcmd_int(c, a->max);
        op_rcmd_int(c, a->until);
        op_rcmd_str(c, a->who);
        op_rcmd_str(c, a->reason);
        op__redis_pair_arg(c, a->limit, a->subject);
        break;
    case OP_ADMIN_OVERRIDE_CLEAR:
        op__redis_nkeys(c, 2);
        op__redis_key_arg(c, r, "o:", a->limit, a->subject);
        op__redis_key_arg(c, r, "ol", NULL, NULL);
        op__redis_argv_head(c, r, "oclear");
        op__redis_pair_arg(c, a->limit, a->subject);
        break;
    case OP_ADMIN_OVERRIDE_LIST:
        op__redis_nkeys(c, 1);
        op__redis_key_arg(c, r, "ol", NULL, NULL);
        op__redis_argv_head(c, r, "olist");
        op_rcmd_str(c, a->limit);
        break;
    case OP_ADMIN_TOP:
        op__redis_nkeys(c, 1);
        op__redis_key_arg(c, r, "t:", a->limit, NULL);
        op__redis_argv_head(c, r, "top");
        op_rcmd_int(c, l->resolution);
        op_rcmd_int(c, l->nbuckets);
        op_rcmd_int(c, l->max);
        op_rcmd_int(c, (int64_t)a->n);
        op_rcmd_str(c, a->limit);
        break;
    }
    op__redis_batch_flush(r); /* the operator's call comes after this turn's requests */
    int rc = op_rconn_send(r->conn, c);
    if (rc == 0)
        return OP_COUNTERS_STARTED;
    op__redis_rop_free(o);
    snprintf(a->err, sizeof a->err, "the counters store failed (see the daemon's log)");
    return rc;
}
