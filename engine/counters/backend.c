/* The counters handle (counters.h): which backend keeps the counts, and
 * the calls that reach it (backend.h).  One indirect call per operation;
 * nothing here allocates after open.
 *
 * One backend for every limit (counters { backend }) is the common case:
 * each operation is one indirect call.  When a limit names another
 * (`limit NAME { backend = ... }`), the handle holds a store per backend
 * in use and a table from limit name to store: check, add, reserve and
 * the operator's calls go to the limit's store; commit, release and
 * expire, which name no limit, go to every store and add up (a call of
 * its own per store, joined before the caller's cb fires). */
#include "counters/backend.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdlib.h>

#include <string.h>

struct op_counters {
    const op_counters_backend_t *be; /* the store of every limit (nstores == 1) */
    void *store;
    /* per-limit backends: a second store, and which limit is where */
    int nstores;
    const op_counters_backend_t *bes[2];
    void *stores[2];
    char **route_name;
    int *route;
    size_t nroutes;
};

op_counters_t *op_counters_wrap(const op_counters_backend_t *be, void *store)
{
    op_counters_t *c = op_calloc(1, sizeof *c);
    c->be = be;
    c->store = store;
    c->nstores = 1;
    c->bes[0] = be;
    c->stores[0] = store;
    return c;
}

static const op_counters_backend_t *backend_named(int which)
{
    return which == OP_COUNTERS_BACKEND_REDIS ? &op_counters_redis : &op_counters_rocksdb;
}

static void set_routes(op_counters_t *c, const op_counters_conf_t *cfg)
{
    for (size_t i = 0; i < c->nroutes; i++)
        free(c->route_name[i]);
    free(c->route_name);
    free(c->route);
    c->route_name = op_calloc(cfg->nlimits + 1, sizeof *c->route_name);
    c->route = op_calloc(cfg->nlimits + 1, sizeof *c->route);
    c->nroutes = cfg->nlimits;
    for (size_t i = 0; i < cfg->nlimits; i++) {
        int b = cfg->limits[i].backend ? cfg->limits[i].backend - 1 : cfg->backend;
        c->route_name[i] = op_strdup(cfg->limits[i].name);
        c->route[i] = c->bes[1] != NULL && backend_named(b) == c->bes[1] ? 1 : 0;
    }
}

/* The store of a limit: its index, or -1 when no limit has that name. */
static int store_of(const op_counters_t *c, const char *limit)
{
    if (c->nstores == 1)
        return 0;
    for (size_t i = 0; i < c->nroutes; i++)
        if (strcmp(c->route_name[i], limit) == 0)
            return c->route[i];
    return -1;
}

/* counters { backend }: one backend for every limit. */
static const op_counters_backend_t *backend_of(const op_counters_conf_t *cfg)
{
    return cfg->backend == OP_COUNTERS_BACKEND_REDIS ? &op_counters_redis : &op_counters_rocksdb;
}

static op_counters_t *open_backend(uv_loop_t *loop, const op_counters_conf_t *cfg, int private_state,
                                   char *err, size_t errlen)
{
    const op_counters_backend_t *be = backend_of(cfg), *other = NULL;
    for (size_t i = 0; i < cfg->nlimits; i++)
        if (cfg->limits[i].backend != 0 && backend_named(cfg->limits[i].backend - 1) != be)
            other = backend_named(cfg->limits[i].backend - 1);
    void *store = be->open(loop, cfg, private_state, err, errlen);
    if (store == NULL)
        return NULL;
    op_counters_t *c = op_counters_wrap(be, store);
    if (other != NULL) {
        void *s2 = other->open(loop, cfg, private_state, err, errlen);
        if (s2 == NULL) {
            op_counters_close(c);
            return NULL;
        }
        c->nstores = 2;
        c->bes[1] = other;
        c->stores[1] = s2;
        set_routes(c, cfg);
    }
    return c;
}

op_counters_t *op_counters_open(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err, size_t errlen)
{
    return open_backend(loop, cfg, 0, err, errlen);
}

op_counters_t *op_counters_open_private(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err,
                                        size_t errlen)
{
    return open_backend(loop, cfg, OP_COUNTERS_PRIVATE, err, errlen);
}

op_counters_t *op_counters_open_read_only(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err,
                                          size_t errlen)
{
    return open_backend(loop, cfg, OP_COUNTERS_READ_ONLY, err, errlen);
}

/* A reload keeps the stores the daemon started with: a limit that names
 * a backend not open stays with the first. */
void op_counters_configure(op_counters_t *c, const op_counters_conf_t *cfg)
{
    for (int i = 0; i < c->nstores; i++)
        c->bes[i]->configure(c->stores[i], cfg);
    if (c->nstores > 1)
        set_routes(c, cfg);
}

void op_counters_close(op_counters_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->nstores; i++)
        c->bes[i]->close(c->stores[i]);
    for (size_t i = 0; i < c->nroutes; i++)
        free(c->route_name[i]);
    free(c->route_name);
    free(c->route);
    free(c);
}

int op_counters_may_wait(const op_counters_t *c)
{
    return c->be->may_wait || (c->nstores > 1 && c->bes[1]->may_wait);
}

const char *op_counters_backend_name(const op_counters_t *c)
{
    return c->nstores > 1 ? "mixed" : c->be->name;
}

int op_counters_has_limit(const op_counters_t *c, const char *limit)
{
    int i = store_of(c, limit);
    return i >= 0 && c->bes[i]->has_limit(c->stores[i], limit);
}

int64_t op_counters_now(op_counters_t *c)
{
    return c->be->now(c->store);
}

/* A backend that cannot wait must not say it started: its caller may have
 * put the call on the stack. */
static int answered(const op_counters_t *c, int rc)
{
    OP_ASSERT(rc != OP_COUNTERS_STARTED || op_counters_may_wait(c));
    return rc;
}

#define ROUTE(c, limit, i)                                                         \
    int i = store_of(c, limit);                                                    \
    if (i < 0)                                                                     \
        return OP_COUNTERS_ENOLIMIT

int op_counters_check(op_counters_t *c, const char *limit, const char *subject, int64_t n,
                      int64_t dir_max, op_counters_call_t *call)
{
    ROUTE(c, limit, i);
    return answered(c, c->bes[i]->check(c->stores[i], limit, subject, n, dir_max, call));
}

int op_counters_add(op_counters_t *c, const char *limit, const char *subject, int64_t n,
                    int64_t dir_max, op_counters_call_t *call)
{
    ROUTE(c, limit, i);
    return answered(c, c->bes[i]->add(c->stores[i], limit, subject, n, dir_max, call));
}

int op_counters_reserve(op_counters_t *c, const char *limit, const char *subject,
                        const char *instance, int64_t n, int64_t dir_max, op_counters_call_t *call)
{
    ROUTE(c, limit, i);
    return answered(c, c->bes[i]->reserve(c->stores[i], limit, subject, instance, n, dir_max, call));
}

/* commit and release with two stores: the store that answers at once is
 * added to the other's answer, which may come later. */
typedef struct {
    op_counters_call_t sub;
    op_counters_call_t *outer;
    int64_t committed, released;
    int rc;
} join_t;

static void join_done(op_counters_call_t *sub)
{
    join_t *j = sub->data;
    op_counters_call_t *outer = j->outer;
    outer->rc = sub->rc < 0 ? sub->rc : j->rc;
    outer->committed = j->committed + (sub->rc == 0 ? sub->committed : 0);
    outer->released = j->released + (sub->rc == 0 ? sub->released : 0);
    free(j);
    outer->cb(outer);
}

static int settle_all(op_counters_t *c, const char *instance, int64_t keep, int commit,
                      op_counters_call_t *call)
{
    if (c->nstores == 1)
        return answered(c, commit ? c->be->commit(c->store, instance, keep, call)
                                  : c->be->release(c->store, instance, call));
    /* the store that answers at once first (RocksDB) */
    int now = c->bes[0]->may_wait ? 1 : 0, later = 1 - now;
    op_counters_call_t first = {0};
    int rc = commit ? c->bes[now]->commit(c->stores[now], instance, keep, &first)
                    : c->bes[now]->release(c->stores[now], instance, &first);
    if (rc == OP_COUNTERS_EINVAL)
        return rc;
    join_t *j = op_calloc(1, sizeof *j);
    j->outer = call;
    j->rc = rc < 0 ? rc : 0;
    j->committed = rc == 0 ? first.committed : 0;
    j->released = rc == 0 ? first.released : 0;
    j->sub.cb = join_done;
    j->sub.data = j;
    int rc2 = commit ? c->bes[later]->commit(c->stores[later], instance, keep, &j->sub)
                     : c->bes[later]->release(c->stores[later], instance, &j->sub);
    if (rc2 == OP_COUNTERS_STARTED)
        return rc2;
    call->committed = j->committed + (rc2 == 0 ? j->sub.committed : 0);
    call->released = j->released + (rc2 == 0 ? j->sub.released : 0);
    rc = rc2 < 0 ? rc2 : j->rc;
    free(j);
    return rc;
}

int op_counters_commit(op_counters_t *c, const char *instance, int64_t keep,
                       op_counters_call_t *call)
{
    return settle_all(c, instance, keep, 1, call);
}

int op_counters_release(op_counters_t *c, const char *instance, op_counters_call_t *call)
{
    return settle_all(c, instance, 0, 0, call);
}

int64_t op_counters_expire(op_counters_t *c)
{
    int64_t n = 0;
    for (int i = 0; i < c->nstores; i++)
        n += c->bes[i]->expire(c->stores[i]);
    return n;
}

int op_counters_show(op_counters_t *c, const char *limit, const char *subject,
                     op_counters_answer_t *a, int64_t *reserved)
{
    ROUTE(c, limit, i);
    return c->bes[i]->show(c->stores[i], limit, subject, a, reserved);
}

int op_counters_reset(op_counters_t *c, const char *limit, const char *subject)
{
    ROUTE(c, limit, i);
    return c->bes[i]->reset(c->stores[i], limit, subject);
}

int op_counters_override_set(op_counters_t *c, const char *limit, const char *subject,
                             int64_t max, int64_t until, const char *who, const char *reason,
                             char *err, size_t errlen)
{
    int i = store_of(c, limit);
    if (i < 0) {
        snprintf(err, errlen, "no limit '%.400s' in the configuration", limit);
        return OP_COUNTERS_ENOLIMIT;
    }
    return c->bes[i]->override_set(c->stores[i], limit, subject, max, until, who, reason, err,
                                   errlen);
}

int op_counters_override_clear(op_counters_t *c, const char *limit, const char *subject)
{
    ROUTE(c, limit, i);
    return c->bes[i]->override_clear(c->stores[i], limit, subject);
}

/* limit NULL (every limit): the first store's (the other's are listed by
 * naming their limits, outpostctl limit show NAME). */
int op_counters_override_list(op_counters_t *c, const char *limit,
                              int (*fn)(const op_counters_override_t *o, void *data), void *data)
{
    int i = limit != NULL ? store_of(c, limit) : 0;
    if (i < 0)
        return OP_COUNTERS_ENOLIMIT;
    return c->bes[i]->override_list(c->stores[i], limit, fn, data);
}

int op_counters_top(op_counters_t *c, const char *limit, op_counters_top_t *out, size_t n)
{
    ROUTE(c, limit, i);
    return c->bes[i]->top(c->stores[i], limit, out, n);
}

uint64_t op_counters_disk_bytes(op_counters_t *c)
{
    uint64_t n = 0;
    for (int i = 0; i < c->nstores; i++)
        n += c->bes[i]->disk_bytes(c->stores[i]);
    return n;
}

const char *op_counters_health(op_counters_t *c)
{
    for (int i = 0; i < c->nstores; i++) {
        const char *h = c->bes[i]->health != NULL ? c->bes[i]->health(c->stores[i]) : NULL;
        if (h != NULL)
            return h;
    }
    return NULL;
}

static int collect_override(const op_counters_override_t *o, void *data)
{
    op_counters_admin_t *a = data;
    a->overrides = op_realloc(a->overrides, (a->noverrides + 1) * sizeof *a->overrides);
    a->overrides[a->noverrides++] = *o;
    return 0;
}

/* A backend without the call form answers at once through its functions. */
static int admin_at_once(op_counters_t *c, op_counters_admin_t *a);

int op_counters_admin(op_counters_t *c, op_counters_admin_t *a)
{
    a->rc = 0;
    a->err[0] = '\0';
    a->top = NULL;
    a->ntop = 0;
    a->overrides = NULL;
    a->noverrides = 0;
    int i = a->limit[0] != '\0' ? store_of(c, a->limit) : 0;
    if (i < 0) {
        snprintf(a->err, sizeof a->err, "no limit '%.400s' in the configuration", a->limit);
        a->rc = OP_COUNTERS_ENOLIMIT;
        return a->rc;
    }
    const op_counters_backend_t *be = c->bes[i];
    int rc = be->admin != NULL ? be->admin(c->stores[i], a) : admin_at_once(c, a);
    OP_ASSERT(rc != OP_COUNTERS_STARTED || be->admin != NULL);
    if (rc != OP_COUNTERS_STARTED)
        a->rc = rc < 0 ? rc : 0;
    return rc;
}

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
