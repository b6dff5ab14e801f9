/* The counter backend seam (counters/backend.h): the handle dispatches to
 * a backend, the RocksDB backend answers at once, and an asynchronous
 * backend -- here a fake that answers one loop turn later -- completes
 * through the call's cb, which outpost.limit (lua_api_limit.c) turns into
 * a yield and a resume of the request. */
#include "counters/backend.h"
#include "core/mem.h"
#include "core/request.h"
#include "core/services.h"
#include "ctest.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

int luaopen_outpost_limit(lua_State *L);

/* ---- a fake backend that answers later: limit "rcpt", max 3 ---- */

enum { FAKE_CHECK, FAKE_ADD, FAKE_RESERVE, FAKE_COMMIT, FAKE_RELEASE };

typedef struct fake_op {
    struct fake_op *next;
    int kind;
    int64_t n;
    op_counters_call_t *call;
} fake_op_t;

typedef struct {
    uv_timer_t timer;
    fake_op_t *ops;      /* in flight, newest first */
    int64_t used, reserved;
    int fail;            /* the next completions report EIO */
    int starts, completions;
} fake_t;

static void fake_complete(fake_op_t *op, int rc, fake_t *f)
{
    op_counters_call_t *call = op->call;
    call->rc = rc;
    if (rc == 0 && (op->kind == FAKE_COMMIT || op->kind == FAKE_RELEASE)) {
        call->committed = op->kind == FAKE_COMMIT ? f->reserved : 0;
        call->released = op->kind == FAKE_RELEASE ? f->reserved : 0;
        f->reserved = 0;
    } else if (rc == 0) {
        op_counters_answer_t *a = &call->answer;
        memset(a, 0, sizeof *a);
        a->max = 3;
        a->ok = f->used + op->n <= a->max;
        if (a->ok && op->kind != FAKE_CHECK) {
            f->used += op->n;
            if (op->kind == FAKE_RESERVE)
                f->reserved += op->n;
        }
        a->used = f->used;
        a->remaining = a->max - f->used;
        a->next_free = a->ok ? 1000 : 2000;
        a->window = 3600;
        a->resolution = 60;
    }
    f->completions++;
    free(op);
    call->cb(call);
}

static void fake_turn(uv_timer_t *t)
{
    fake_t *f = t->data;
    fake_op_t *ops = f->ops;
    f->ops = NULL;
    for (fake_op_t *op = ops, *next; op != NULL; op = next) {
        next = op->next;
        fake_complete(op, f->fail ? OP_COUNTERS_EIO : 0, f);
    }
}

static int fake_start(fake_t *f, int kind, const char *limit, int64_t n, op_counters_call_t *call)
{
    if (limit != NULL && strcmp(limit, "rcpt") != 0)
        return OP_COUNTERS_ENOLIMIT; /* misuse: at once */
    if (kind == FAKE_CHECK && n == 0) {
        memset(&call->answer, 0, sizeof call->answer); /* nothing to ask the server */
        call->answer.ok = 1;
        call->answer.max = 3;
        return 0;
    }
    fake_op_t *op = op_calloc(1, sizeof *op);
    op->kind = kind;
    op->n = n;
    op->call = call;
    op->next = f->ops;
    f->ops = op;
    f->starts++;
    uv_timer_start(&f->timer, fake_turn, 0, 0);
    return OP_COUNTERS_STARTED;
}

static void *fake_open(uv_loop_t *loop, const op_counters_conf_t *cfg, int private_state, char *err,
                       size_t errlen)
{
    (void)cfg, (void)private_state, (void)err, (void)errlen;
    fake_t *f = op_calloc(1, sizeof *f);
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    return f;
}

static void fake_free(uv_handle_t *h)
{
    free(h->data);
}

static void fake_close(void *s)
{
    fake_t *f = s;
    fake_op_t *ops = f->ops;
    f->ops = NULL;
    for (fake_op_t *op = ops, *next; op != NULL; op = next) {
        next = op->next;
        fake_complete(op, OP_COUNTERS_ECANCELLED, f);
    }
    uv_close((uv_handle_t *)&f->timer, fake_free);
}

static int fake_has_limit(void *s, const char *limit)
{
    (void)s;
    return strcmp(limit, "rcpt") == 0;
}

static int64_t fake_now(void *s)
{
    (void)s;
    return 500;
}

static int fake_check(void *s, const char *limit, const char *subject, int64_t n,
                      int64_t dir_max, op_counters_call_t *call)
{
    (void)subject, (void)dir_max;
    return fake_start(s, FAKE_CHECK, limit, n, call);
}

static int fake_add(void *s, const char *limit, const char *subject, int64_t n, int64_t dir_max,
                    op_counters_call_t *call)
{
    (void)subject, (void)dir_max;
    return fake_start(s, FAKE_ADD, limit, n, call);
}

static int fake_reserve(void *s, const char *limit, const char *subject, const char *instance,
                        int64_t n, int64_t dir_max, op_counters_call_t *call)
{
    (void)subject, (void)instance, (void)dir_max;
    return fake_start(s, FAKE_RESERVE, limit, n, call);
}

static int fake_commit(void *s, const char *instance, int64_t keep, op_counters_call_t *call)
{
    (void)instance, (void)keep;
    return fake_start(s, FAKE_COMMIT, NULL, 0, call);
}

static int fake_release(void *s, const char *instance, op_counters_call_t *call)
{
    (void)instance;
    return fake_start(s, FAKE_RELEASE, NULL, 0, call);
}

static const op_counters_backend_t fake_backend = {
    .name = "fake",
    .may_wait = 1,
    .open = fake_open,
    .close = fake_close,
    .now = fake_now,
    .has_limit = fake_has_limit,
    .check = fake_check,
    .add = fake_add,
    .reserve = fake_reserve,
    .commit = fake_commit,
    .release = fake_release,
};

static uv_loop_t loop;
static fake_t *fake;

static op_counters_t *open_fake(void)
{
    char err[64];
    uv_loop_init(&loop);
    fake = fake_open(&loop, NULL, 0, err, sizeof err);
    return op_counters_wrap(&fake_backend, fake);
}

static void close_fake(op_counters_t *c)
{
    op_counters_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* ---- the handle over the fake ---- */

static int cb_fired;
static void on_call(op_counters_call_t *call)
{
    cb_fired++;
    *(int *)call->data = call->rc;
}

CTEST(an_asynchronous_backend_completes_through_the_call)
{
    op_counters_t *c = open_fake();
    CHECK_INT(op_counters_may_wait(c), 1);
    int rc = 99;
    op_counters_call_t call = {.cb = on_call, .data = &rc};
    cb_fired = 0;
    CHECK_INT(op_counters_add(c, "rcpt", "alice", 2, -1, &call), OP_COUNTERS_STARTED);
    CHECK_INT(cb_fired, 0); /* never inside the start call */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(cb_fired, 1);
    CHECK_INT(rc, 0);
    CHECK_INT(call.answer.ok, 1);
    CHECK_INT(call.answer.used, 2);
    /* misuse is answered at once and cb never fires */
    CHECK_INT(op_counters_add(c, "nope", "alice", 1, -1, &call), OP_COUNTERS_ENOLIMIT);
    /* an answer the backend has at hand comes at once too */
    CHECK_INT(op_counters_check(c, "rcpt", "alice", 0, -1, &call), 0);
    CHECK_INT(call.answer.ok, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(cb_fired, 1);
    CHECK_INT(fake->starts, 1);
    close_fake(c);
}

CTEST(closing_cancels_the_calls_in_flight)
{
    op_counters_t *c = open_fake();
    int rc1 = 99, rc2 = 99;
    op_counters_call_t a = {.cb = on_call, .data = &rc1}, b = {.cb = on_call, .data = &rc2};
    cb_fired = 0;
    CHECK_INT(op_counters_reserve(c, "rcpt", "alice", "i1", 1, -1, &a), OP_COUNTERS_STARTED);
    CHECK_INT(op_counters_release(c, "i1", &b), OP_COUNTERS_STARTED);
    close_fake(c);
    CHECK_INT(cb_fired, 2);
    CHECK_INT(rc1, OP_COUNTERS_ECANCELLED);
    CHECK_INT(rc2, OP_COUNTERS_ECANCELLED);
}

/* ---- outpost.limit over the fake: the request yields and resumes ---- */

static lua_State *L;

typedef struct {
    int finished, status;
} host_t;

static void on_finished(op_request_t *req, int status, void *data)
{
    (void)req;
    host_t *h = data;
    h->finished = 1;
    h->status = status;
}

static op_services_t services;

static void limit_open(op_counters_t *c)
{
    services.loop = &loop;
    services.counters = c;
    op_services = &services;
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_pushcfunction(L, luaopen_outpost_limit);
    lua_call(L, 0, 1);
    lua_setglobal(L, "limit");
}

/* Runs chunk in a host coroutine (where primitives may wait) until it
 * ends; its results stay on the returned coroutine's stack. */
static lua_State *run_chunk(const char *chunk, host_t *h)
{
    lua_State *co = lua_newthread(L);
    luaL_ref(L, LUA_REGISTRYINDEX);
    if (luaL_loadstring(co, chunk) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(co, -1));
        abort();
    }
    op_request_t *req = op_request_host_new(&loop, co, on_finished, h);
    op_request_host_resume(req, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    free(req);
    if (h->status != 0)
        fprintf(stderr, "  chunk failed: %s\n", lua_tostring(co, -1));
    return co;
}

static void limit_done(op_counters_t *c)
{
    lua_close(L);
    op_services = NULL;
    close_fake(c);
}

CTEST(limit_yields_for_an_asynchronous_backend)
{
    op_counters_t *c = open_fake();
    limit_open(c);
    host_t h = {0, 0};
    lua_State *co = run_chunk(
        "local a = limit.add('rcpt', 'alice', 2)\n"
        "local b = limit.reserve('rcpt', 'alice', 'i1', 1)\n"
        "local d = limit.add('rcpt', 'alice', 1)\n"
        "local k, r = limit.commit('i1')\n"
        "local z = limit.check('rcpt', 'alice', 0)\n"
        "return a.ok, a.used, a.limit, a.subject, b.ok, b.used, d.ok, d.next_free, k, r, z.ok\n",
        &h);
    CHECK_INT(h.finished, 1);
    CHECK_INT(h.status, 0);
    CHECK_INT(lua_gettop(co), 11);
    CHECK_INT(lua_toboolean(co, 1), 1);
    CHECK_INT(lua_tointeger(co, 2), 2);
    CHECK_STR(lua_tostring(co, 3), "rcpt");
    CHECK_STR(lua_tostring(co, 4), "alice");
    CHECK_INT(lua_toboolean(co, 5), 1);
    CHECK_INT(lua_tointeger(co, 6), 3);
    CHECK_INT(lua_toboolean(co, 7), 0);
    CHECK_INT(lua_tointeger(co, 8), 2000);
    CHECK_INT(lua_tointeger(co, 9), 1);  /* committed */
    CHECK_INT(lua_tointeger(co, 10), 0); /* released */
    CHECK_INT(lua_toboolean(co, 11), 1); /* answered at once, no wait */
    CHECK_INT(fake->starts, 4);
    CHECK_INT(fake->completions, 4);
    limit_done(c);
}

CTEST(limit_over_an_asynchronous_backend_reports_failures_and_misuse)
{
    op_counters_t *c = open_fake();
    limit_open(c);
    fake->fail = 1;
    host_t h = {0, 0};
    lua_State *co = run_chunk(
        "local r, err = limit.add('rcpt', 'alice')\n"
        "local n, err2 = limit.release('i1')\n"
        "local ok, msg = pcall(limit.add, 'nope', 'alice')\n"
        "local sorted = pcall(table.sort, {1, 2}, function(x, y)\n"
        "    limit.check('rcpt', 'alice'); return x < y end)\n"
        "return r, err, n, err2, ok, msg, sorted\n",
        &h);
    CHECK_INT(h.status, 0);
    CHECK(lua_isnil(co, 1));
    CHECK_STR(lua_tostring(co, 2), "unavailable");
    CHECK(lua_isnil(co, 3));
    CHECK_STR(lua_tostring(co, 4), "unavailable");
    CHECK_INT(lua_toboolean(co, 5), 0);
    CHECK(strstr(lua_tostring(co, 6), "no limit 'nope'") != NULL);
    CHECK_INT(lua_toboolean(co, 7), 0); /* cannot wait in a sort callback */
    CHECK_INT(fake->starts, 2);
    /* outside a request a backend that may wait is misuse too */
    lua_getglobal(L, "limit");
    lua_getfield(L, -1, "check");
    lua_pushliteral(L, "rcpt");
    lua_pushliteral(L, "alice");
    CHECK_INT(lua_pcall(L, 2, 1, 0), LUA_ERRRUN);
    CHECK(strstr(lua_tostring(L, -1), "cannot wait here") != NULL);
    limit_done(c);
}

CTEST(a_request_that_gave_up_leaves_its_record_to_the_completion)
{
    op_counters_t *c = open_fake();
    limit_open(c);
    host_t h = {0, 0};
    lua_State *co = lua_newthread(L);
    luaL_ref(L, LUA_REGISTRYINDEX);
    CHECK_INT(luaL_loadstring(co, "return limit.add('rcpt', 'alice')"), 0);
    op_request_t *req = op_request_host_new(&loop, co, on_finished, &h);
    op_request_host_resume(req, 0);
    CHECK(req->pending != NULL);
    /* what request.c does when a request gives up: detach, then cancel */
    op_pending_t *p = req->pending;
    req->pending = NULL;
    p->req = NULL;
    p->cancel(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(fake->completions, 1); /* freed the record (LeakSanitizer), resumed nothing */
    CHECK_INT(h.finished, 0);
    free(req);
    limit_done(c);
}

/* ---- the RocksDB backend through the handle ---- */

static char dir[64];

static op_counters_t *open_rocks(uv_loop_t *lp)
{
    static op_limit_conf_t limits[1];
    static op_counters_conf_t cfg;
    char err[512];
    snprintf(dir, sizeof dir, "/tmp/outpost-ctest-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    limits[0] = (op_limit_conf_t){.name = "rcpt", .max = 2, .window = 3600, .resolution = 60,
                                  .max_override = 4};
    cfg = (op_counters_conf_t){.state_dir = dir, .limits = limits, .nlimits = 1,
                        .reservation_timeout = 30};
    op_counters_t *c = op_counters_open(lp, &cfg, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    return c;
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static int count_override(const op_counters_override_t *o, void *data)
{
    (void)o;
    (*(int *)data)++;
    return 0;
}

CTEST(the_rocksdb_backend_answers_at_once)
{
    op_counters_t *c = open_rocks(NULL);
    op_counters_call_t call; /* on the stack: this backend never keeps it */
    char err[256];
    CHECK_INT(op_counters_may_wait(c), 0);
    CHECK_INT(op_counters_has_limit(c, "rcpt"), 1);
    CHECK_INT(op_counters_has_limit(c, "nope"), 0);
    CHECK_INT(op_counters_add(c, "rcpt", "alice", 1, -1, &call), 0);
    CHECK_INT(call.answer.used, 1);
    CHECK_INT(op_counters_reserve(c, "rcpt", "alice", "i1", 1, -1, &call), 0);
    CHECK_INT(call.answer.ok, 1);
    CHECK_INT(call.answer.remaining, 0);
    CHECK_INT(op_counters_check(c, "rcpt", "alice", 1, -1, &call), 0);
    CHECK_INT(call.answer.ok, 0);
    op_counters_answer_t a;
    int64_t reserved;
    CHECK_INT(op_counters_show(c, "rcpt", "alice", &a, &reserved), 0);
    CHECK_INT(a.used, 2);
    CHECK_INT(reserved, 1);
    CHECK_INT(op_counters_commit(c, "i1", 0, &call), 0);
    CHECK_INT(call.committed, 0);
    CHECK_INT(call.released, 1);
    CHECK_INT(op_counters_release(c, "i1", &call), 0);
    CHECK_INT(call.released, 0);
    CHECK_INT(op_counters_add(c, "nope", "alice", 1, -1, &call), OP_COUNTERS_ENOLIMIT);
    CHECK_INT(op_counters_override_set(c, "rcpt", "alice", 4, 0, "root", "ticket 1", err,
                                       sizeof err), 0);
    int n = 0;
    op_counters_override_list(c, NULL, count_override, &n);
    CHECK_INT(n, 1);
    op_counters_top_t top[2];
    CHECK_INT(op_counters_top(c, "rcpt", top, 2), 1);
    CHECK_INT(top[0].max, 4);
    CHECK_INT(op_counters_override_clear(c, "rcpt", "alice"), 0);
    CHECK_INT(op_counters_override_clear(c, "rcpt", "alice"), OP_COUNTERS_ENOTFOUND);
    CHECK_INT(op_counters_reset(c, "rcpt", "alice"), 0);
    CHECK_INT(op_counters_check(c, "rcpt", "alice", 1, -1, &call), 0);
    CHECK_INT(call.answer.used, 0);
    CHECK_INT(op_counters_expire(c), 0);
    CHECK(op_counters_disk_bytes(c) > 0);
    CHECK(op_counters_now(c) > 0);
    op_counters_close(c);
    remove_dir();
}

CTEST(limit_over_rocksdb_works_outside_a_request)
{
    uv_loop_init(&loop);
    op_counters_t *c = open_rocks(&loop);
    limit_open(c);
    CHECK_INT(luaL_dostring(L, "local r = limit.add('rcpt', 'alice'); return r.ok, r.used"), 0);
    CHECK_INT(lua_toboolean(L, -2), 1);
    CHECK_INT(lua_tointeger(L, -1), 1);
    lua_close(L);
    op_services = NULL;
    op_counters_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    remove_dir();
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
